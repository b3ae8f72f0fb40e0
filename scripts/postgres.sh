#!/usr/bin/env bash
# Installs (Debian package) and starts a throwaway PostgreSQL server on 127.0.0.1 for the tests.
# Prints the database URL on stdout. Idempotent: a server already running in the dir is reused.
#   RACER_PG_DIR   where the cluster lives (default /tmp/racer-pg)
#   RACER_PG_PORT  port (default 55432)
set -euo pipefail
dir=${RACER_PG_DIR:-/tmp/racer-pg}
port=${RACER_PG_PORT:-55432}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "installing postgresql (Debian package)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
fi

run_pg() {
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres >&2
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "$(id -u)" = 0 ]; then
  mkdir -p "$dir"; chown postgres "$dir" 2>/dev/null || true
fi
if [ ! -f "$dir/PG_VERSION" ]; then
  run_pg "$bindir/initdb" -D "$dir" -U postgres --auth=trust --no-sync >/dev/null
fi
if ! run_pg "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
  run_pg "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 30 \
    -o "-h 127.0.0.1 -p $port -k /tmp -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    start >/dev/null
fi
echo "postgres://postgres@127.0.0.1:$port/postgres"
