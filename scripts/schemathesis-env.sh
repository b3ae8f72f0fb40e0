#!/usr/bin/env bash
# Sets up schemathesis (the PyPI package, pinned) in a virtual environment, for the API fuzzing
# of scripts/schemathesis.sh and crates/server/tests/schemathesis.rs, and prints the path of its
# `st` command on stdout (everything else goes to stderr). Idempotent: a venv whose `st` has the
# pinned version is reused as is.
#   RACER_CACHE_DIR  where the venv lives (default ~/.cache/racer), as schemathesis-<version>/
set -euo pipefail

version=4.32.5
cache=${RACER_CACHE_DIR:-$HOME/.cache/racer}
venv=$cache/schemathesis-$version
st=$venv/bin/st

check() {
  [ -x "$st" ] || return 1
  local got
  got=$("$st" --version 2>/dev/null) || return 1
  [ "$got" = "st, version $version" ]
}

if check; then
  echo "$st"
  exit 0
fi

echo "setting up schemathesis $version in $venv..." >&2
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  echo "installing python3-venv (Debian package)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq python3-venv >&2
fi

rm -rf "$venv"
mkdir -p "$cache"
python3 -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version" >&2

if ! check; then
  echo "schemathesis $version does not run from $venv:" >&2
  "$st" --version >&2 || true
  exit 1
fi
echo "schemathesis $version ready" >&2
echo "$st"
