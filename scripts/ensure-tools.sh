#!/usr/bin/env bash
# Installs the Debian packages the tests and benchmarks use, if missing.
set -euo pipefail
need=()
command -v git >/dev/null 2>&1 || need+=(git)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v ip >/dev/null 2>&1 || need+=(iproute2)  # the clusters test gives its second dockerd a bridge
command -v openssl >/dev/null 2>&1 || need+=(openssl)  # certificates of the TLS cluster test
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the dashboard's browser tests
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v pebble >/dev/null 2>&1 || need+=(pebble)  # the ACME test server (issue 19)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]} (Debian packages)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${need[@]}" >&2
fi
