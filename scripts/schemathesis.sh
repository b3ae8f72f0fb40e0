#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis (PyPI, pinned in scripts/schemathesis-env.sh) against a
# racer-server of its own: a temp data directory (SQLite), the API and the proxy on free loopback
# ports, an admin token made here. Every phase runs: the document's examples, the coverage
# phase (each schema's edges and each declared answer), fuzzing, and the stateful phase, which
# follows the document's links (create app → its status, deployments, logs, scale, delete;
# create token → revoke; ...) to reach past the 404s. Every check runs: no 5xx, every status,
# content type, header and body as the document declares, bad input refused.
# Exits non-zero on any failure; the JUnit and NDJSON reports stay in the report directory.
#   RACER_SCHEMATHESIS              the `st` to use (default: $(scripts/schemathesis-env.sh))
#   RACER_SERVER_BIN                the racer-server to run (default: cargo build, debug)
#   RACER_SCHEMATHESIS_MAX_TIME     seconds for the whole run, half of it stateful (default 150)
#   RACER_SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase (default 25)
#   RACER_SCHEMATHESIS_SEED         a seed, to repeat a run (default: random)
#   RACER_SCHEMATHESIS_REPORT       where the reports go, an absolute path (default: the temp
#                                   dir's report/, kept when the run fails)
#   RACER_KEEP_TEST_DIRS=1          keep the temp data directory (and the server's log)
# Extra arguments are passed to `st run`.
set -euo pipefail
cd "$(dirname "$0")/.."

st=${RACER_SCHEMATHESIS:-}
if [ -z "$st" ]; then
  st=$(scripts/schemathesis-env.sh)
fi
server=${RACER_SERVER_BIN:-}
if [ -z "$server" ]; then
  echo "building racer-server..." >&2
  cargo build -q -p racer-server --bin racer-server >&2
  target=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  server=$target/debug/racer-server
fi
max_time=${RACER_SCHEMATHESIS_MAX_TIME:-150}
max_examples=${RACER_SCHEMATHESIS_MAX_EXAMPLES:-25}

dir=$(mktemp -d "${TMPDIR:-/tmp}/racer-schemathesis.XXXXXX")
report=${RACER_SCHEMATHESIS_REPORT:-$dir/report}
pid=
install=
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  # Whatever the run made on the engine (pools, replicas): this install's, found by label.
  if [ -n "$install" ] && command -v docker >/dev/null; then
    ids=$(docker ps -aq --filter "label=racer.install=$install" 2>/dev/null || true)
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086
      docker rm -f $ids >/dev/null 2>&1 || true
    fi
  fi
  if [ "${RACER_KEEP_TEST_DIRS:-}" = 1 ]; then
    echo "kept $dir (server log: $dir/server.log)" >&2
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT

token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
RACER_ADMIN_TOKEN=$token RUST_LOG=${RUST_LOG:-warn} "$server" \
  --data-dir "$dir/data" --port 0 --proxy-port 0 --host-ports 31000-31999 \
  --rollout-deadline 10 >"$dir/server.log" 2>&1 &
pid=$!
api=
for _ in $(seq 1 300); do
  if [ -f "$dir/data/server.json" ]; then
    api=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["api_url"])' \
      "$dir/data/server.json")
    break
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "racer-server exited:" >&2
    cat "$dir/server.log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$api" ]; then
  echo "racer-server did not start within 30 s:" >&2
  cat "$dir/server.log" >&2
  exit 1
fi
install=$(curl -fsS -H "Authorization: Bearer $token" "$api/api/v1/info" |
  python3 -c 'import json, sys; print(json.load(sys.stdin).get("install_id") or "")')
echo "racer-server at $api (install $install); schemathesis for at most ${max_time}s" >&2

seed=()
if [ -n "${RACER_SCHEMATHESIS_SEED:-}" ]; then
  seed=(--seed "$RACER_SCHEMATHESIS_SEED")
fi
# Two runs, so that the stateful phase has half the time whatever the others take: the examples,
# coverage and fuzzing phases, then the stateful phase alone. The event stream never ends by
# design (its own tests cover it); everything else is fuzzed. The outer timeout is a backstop:
# st's own --max-time ends each run.
# One worker: with two, hypothesis parses lambda sources (ast) from two threads at once, which
# CPython before 3.11.9 can fail at ("AST constructor recursion depth mismatch"), a flaky error
# of the tool, not of the server.
# st keeps what `st replay` needs in ./.schemathesis: it runs in the temp dir, not the checkout.
config=$PWD/scripts/schemathesis.toml
cd "$dir"
status=0
half=$(((max_time + 1) / 2))
for phases in examples,coverage,fuzzing stateful; do
  echo "== schemathesis: $phases (at most ${half}s)" >&2
  timeout --kill-after 10 $((half + 120)) "$st" --config-file "$config" run "$api/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks all \
    --phases "$phases" \
    --max-examples "$max_examples" \
    --max-time "$half" \
    --request-timeout 15 \
    --workers 1 \
    --exclude-path /api/v1/events/stream \
    --report junit,ndjson --report-dir "$report/$phases" \
    --no-color --generation-database none \
    "${seed[@]}" "$@" || status=$?
done
if [ "$status" -ne 0 ]; then
  echo "schemathesis failed (exit $status); reports in $report" >&2
  if grep -q "panicked" "$dir/server.log"; then
    echo "the server panicked:" >&2
    grep -A5 "panicked" "$dir/server.log" >&2
  fi
  RACER_KEEP_TEST_DIRS=${RACER_KEEP_TEST_DIRS:-1}
fi
exit "$status"
