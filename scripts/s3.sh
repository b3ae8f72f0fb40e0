#!/usr/bin/env bash
# Installs (PyPI `moto[server]`, in a venv) and starts a throwaway S3-compatible server on
# 127.0.0.1 for the tests. Prints its endpoint URL on stdout (everything else goes to stderr).
# Idempotent: a server already answering on the port is reused.
#   RACER_CACHE_DIR  where the venv lives (default ~/.cache/racer), as moto/
#   RACER_S3_PORT    port (default 59000)
set -euo pipefail
cache=${RACER_CACHE_DIR:-$HOME/.cache/racer}
port=${RACER_S3_PORT:-59000}
venv=$cache/moto
endpoint="http://127.0.0.1:$port"

if curl -fsS -o /dev/null "$endpoint/" 2>/dev/null; then
  echo "$endpoint"
  exit 0
fi
if [ ! -x "$venv/bin/moto_server" ]; then
  echo "setting up moto[server] (PyPI) in $venv..." >&2
  if ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
    echo "installing python3-venv (Debian package)..." >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq python3-venv >&2
  fi
  mkdir -p "$cache"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q 'moto[server]>=5,<6' >&2
fi
mkdir -p "$cache/moto-run"
nohup "$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$cache/moto-run/server.log" 2>&1 &
for _ in $(seq 1 100); do
  if curl -fsS -o /dev/null "$endpoint/" 2>/dev/null; then
    echo "$endpoint"
    exit 0
  fi
  sleep 0.2
done
echo "moto_server did not answer on $endpoint; see $cache/moto-run/server.log" >&2
exit 1
