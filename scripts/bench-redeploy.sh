#!/usr/bin/env bash
# Redeploy under load, with and without a CPU hog (issue 19): one fresh server (SQLite), the
# bundled example with 2 replicas, `wrk` through the proxy for the whole run while `racer rerun
# --no-rebuild` rolls the app --redeploys times; with --hog N, N busy loops at the server's own
# priority keep the cores saturated (as a build or a test suite beside it would). Prints the
# requests, failures (socket errors + non-2xx), p50/p99/p99.9/p99.99 and the worst latency, per
# case. A request over 2 s is what issue 19 calls a stall.
#
# Usage: cargo build --release --bins && scripts/build-example.sh && scripts/bench-redeploy.sh [options]
#   --hog N          busy loops to run beside it (default: one case with 0, one with the core count)
#   --redeploys N    rollouts during the load (default 6)
#   --connections N  wrk connections (default 8)
# Needs: docker, wrk, curl, jq. Environment: RACER_BIN_DIR (default target/release).
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-$root/target/release}
hogs=""
redeploys=6
conns=8
while [ $# -gt 0 ]; do
  case $1 in
    --hog) hogs=$2; shift ;;
    --redeploys) redeploys=$2; shift ;;
    --connections) conns=$2; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "bench-redeploy: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $redeploys =~ ^[1-9][0-9]?$ ]] || { echo "bench-redeploy: --redeploys must be 1-99" >&2; exit 2; }
[[ $conns =~ ^[1-9][0-9]{0,2}$ ]] || { echo "bench-redeploy: --connections must be 1-999" >&2; exit 2; }
cores=$(nproc)
[ -n "$hogs" ] || hogs="0 $cores"
for h in $hogs; do [[ $h =~ ^[0-9]$ ]] || { echo "bench-redeploy: --hog must be 0-9" >&2; exit 2; }; done
die() { echo "bench-redeploy: FAIL: $*" >&2; exit 1; }
for b in racer racerctl racer-server; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing; run: cargo build --release --bins"
done
for t in docker curl jq wrk; do command -v "$t" >/dev/null || die "$t is not installed"; done
[ -x "$root/examples/hello/hello" ] || "$root/scripts/build-example.sh"

tmp=$(mktemp -d /tmp/racer-bench-redeploy.XXXXXX)
data=$tmp/data
install_id=""
hog_pids=()
cleanup() {
  local rc=$?
  set +e
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; done
  "$tmp/bin/racerctl" --data-dir "$data" server stop >/dev/null 2>&1
  if [ -n "$install_id" ]; then
    local ids
    ids=$(docker ps -aq --filter "label=racer.install=$install_id")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
    ids=$(docker images -q --filter "label=racer.install=$install_id" | sort -u)
    [ -z "$ids" ] || docker rmi -f $ids >/dev/null 2>&1
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$tmp/bin" "$tmp/app"
cp "$bin_dir/racer" "$bin_dir/racerctl" "$bin_dir/racer-server" "$tmp/bin/"
cp "$root/examples/hello/Dockerfile" "$root/examples/hello/.dockerignore" "$root/examples/hello/hello" "$tmp/app/"
export RACER_DATA_DIR=$data
"$tmp/bin/racerctl" server start --port 0 --proxy-port 0 >/dev/null
proxy=$(jq -r .proxy_url "$data/server.json")
install_id=$("$tmp/bin/racerctl" info --json | jq -r .install_id)
app=rd-$(basename "$tmp" | tr -cd 'a-z0-9' | tail -c 6)
"$tmp/bin/racer" run --project-name "$app" --path "$tmp/app" --instances 2 >/dev/null
url="$proxy/apps/$app/"
curl -fsS -o /dev/null "$url" || die "the app does not answer at $url"

cat > "$tmp/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %.2f %.2f %.2f %.2f %.2f\n", summary.requests,
    e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency:percentile(99.99) / 1000, latency.max / 1000))
end
EOF

printf '\n%-6s %-9s %9s %8s %8s %8s %9s %9s %9s\n' hogs redeploys requests failed p50_ms p99_ms p99.9_ms p99.99_ms max_ms
for h in $hogs; do
  hog_pids=()
  for _ in $(seq 1 "$h"); do
    sh -c 'while :; do :; done' &
    hog_pids+=($!)
  done
  # Long enough to cover every rollout; wrk stops at --duration, the rollouts run meanwhile.
  duration=$((redeploys * 8 + 4))
  wrk -t2 -c"$conns" -d"${duration}s" --timeout 30s -s "$tmp/report.lua" "$url" > "$tmp/wrk.out" 2>&1 &
  wrk_pid=$!
  sleep 2
  for i in $(seq 1 "$redeploys"); do
    "$tmp/bin/racer" rerun --project-name "$app" --no-rebuild --env "ROUND=$h-$i" >/dev/null \
      || die "rollout $i failed"
  done
  wait "$wrk_pid" || die "wrk failed: $(cat "$tmp/wrk.out")"
  for p in "${hog_pids[@]}"; do kill "$p" 2>/dev/null; done
  hog_pids=()
  read -r _ reqs errs non2xx p50 p99 p999 p9999 max < <(grep '^RESULT' "$tmp/wrk.out") \
    || die "no result: $(cat "$tmp/wrk.out")"
  printf '%-6s %-9s %9s %8s %8s %8s %9s %9s %9s\n' "$h" "$redeploys" "$reqs" "$((errs + non2xx))" \
    "$p50" "$p99" "$p999" "$p9999" "$max"
done
echo
slow=$(grep -c "slow upstream try" "$data/server.log" 2>/dev/null || true)
echo "proxy tries over 1 s (server log): ${slow:-0}"
grep "slow upstream try" "$data/server.log" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | awk '{$1=""; print}' | sort | uniq -c | sort -rn | head -5
echo "machine: $(nproc) cores; $(uname -r); binaries: $bin_dir"
