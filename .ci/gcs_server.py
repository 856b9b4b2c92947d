"""gcp-storage-emulator (a GCS JSON-API server) with its connection backlog raised from Python's 5
to 1024: a query keeps many requests to a bucket in flight at once, and with a backlog of 5 the
kernel drops the rest, each then waiting a second to try again. The tests and bench/remote.sh start
it with the test venv's python; the arguments are the emulator's (`start --port ...`)."""

import socketserver

socketserver.TCPServer.request_queue_size = 1024

from gcp_storage_emulator.__main__ import main  # noqa: E402

main()
