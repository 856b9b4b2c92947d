#!/usr/bin/env bash
# The storage servers the cloud tests start, from PyPI, in one virtualenv; prints its folder.
# Idempotent: installs only what is missing. Called by .ci/run and by the tests themselves.
set -euo pipefail
venv="${DAU_TEST_VENV:-$HOME/.cache/dau/test-venv}"
if [ ! -x "$venv/bin/gcp-storage-emulator" ] || [ ! -x "$venv/bin/moto_server" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check \
    'gcp-storage-emulator==2026.7.19' 'moto[server]==5.2.5' >&2
fi
echo "$venv"
