#!/usr/bin/env bash
# Builds the bundled example app (examples/hello): a static Rust HTTP server that runs FROM scratch.
# The target is this machine's own (x86_64, aarch64, …): the image runs on the local engine.
set -euo pipefail
cd "$(dirname "$0")/../examples/hello"
if [ ! -f Cargo.toml ]; then exit 0; fi
target=$(rustc -vV | sed -n 's/^host: //p')
if [ -z "$target" ]; then
  echo "build-example.sh: cannot tell this machine's target from 'rustc -vV'" >&2
  exit 1
fi
# A static binary: the image is FROM scratch, with no libc to link against at run time.
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --quiet \
  --target-dir "${CARGO_TARGET_DIR:-../../target}/example" --target "$target"
cp "${CARGO_TARGET_DIR:-../../target}/example/$target/release/hello" ./hello
