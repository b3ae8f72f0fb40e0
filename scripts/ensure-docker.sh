#!/usr/bin/env bash
# Makes sure a Docker engine answers; starts dockerd in the background if none does.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "installing docker.io (Debian package)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq docker.io >&2
fi
echo "starting dockerd in the background (log: /tmp/racer-dockerd.log)" >&2
nohup dockerd >/tmp/racer-dockerd.log 2>&1 &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 0.5
done
echo "the Docker engine did not come up; see /tmp/racer-dockerd.log" >&2
tail -n 20 /tmp/racer-dockerd.log >&2 || true
exit 1
