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

# Time dau on a generated ~25M-event, 60-day lake (hyperfine); results in bench/out/
bench:
    bash bench/run.sh

# Make a small sample lake in testdata/sample (not committed)
testdata:
    cargo run --release -- gen --out testdata/sample --users 5000 --days 30
