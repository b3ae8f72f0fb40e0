#!/usr/bin/env bash
# Builds the bundled example app (examples/hello): a static Rust HTTP server that runs FROM scratch.
set -euo pipefail
cd "$(dirname "$0")/../examples/hello"
if [ ! -f Cargo.toml ]; then exit 0; fi
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
  --target-dir "${CARGO_TARGET_DIR:-../../target}/example" --target x86_64-unknown-linux-gnu
cp "${CARGO_TARGET_DIR:-../../target}/example/x86_64-unknown-linux-gnu/release/hello" ./hello
