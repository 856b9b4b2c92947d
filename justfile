# dau's tasks. `just --list` shows them. Install just with `cargo install just --locked`.

# Run the tests (the same command CI runs)
test:
    cargo test

# What CI runs: formatting, lints, tests (and installs what they need)
ci:
    bash .ci/run

# The demo on its embedded sample lake
demo:
    cargo run --release -- demo

# Check dau against DuckDB, Polars, DataFusion, chDB on 25M/250M-event lakes, then time them (bench/run.sh)
bench:
    bash bench/run.sh

# Time dau on a lake in a GCS bucket whose every request waits 30 ms (bench/remote.sh)
bench-remote:
    bash bench/remote.sh

# Make a small sample lake in testdata/sample (not committed)
testdata:
    cargo run --release -- gen --out testdata/sample --users 5000 --days 30
