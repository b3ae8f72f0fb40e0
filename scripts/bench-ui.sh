#!/usr/bin/env bash
# Dashboard benchmark (issue 16), against one fresh local server (release build, SQLite):
#   1. the apps page with 1,000 apps: GET /ui/ (first page, 50 apps) and GET /ui/?cursor=… (a
#      later page) --reps times each (default 300) over one keep-alive connection; the time is
#      curl's time to the first byte on loopback (the server's time plus a loopback round trip)
#   2. what the dashboard adds to the server binary: the size of the symbols of racer_server::ui
#      (text and data of its functions, from `nm --size-sort`) against the whole binary
# Usage: cargo build --release --bins && scripts/bench-ui.sh [--reps N]
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-$root/target/release}
reps=300
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "bench-ui: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
die() { echo "bench-ui: FAIL: $*" >&2; exit 1; }
for b in racerctl racer-server; do [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing"; done
tmp=$(mktemp -d /tmp/racer-bench-ui.XXXXXX)
data=$tmp/data
cleanup() { "$bin_dir/racerctl" --data-dir "$data" server stop --force >/dev/null 2>&1 || true; rm -rf "$tmp"; }
trap cleanup EXIT
"$bin_dir/racerctl" --data-dir "$data" server start --port 0 --proxy-port 0 >/dev/null
api=$(jq -r .api_url "$data/server.json")
token=$(cat "$data/admin.token")
# 1,000 apps (records only: the page reads the store).
for i in $(seq -w 1 1000); do
  printf '{"name":"app-%s"}\n' "$i"
done | while read -r body; do
  curl -sf -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d "$body" "$api/api/v1/apps" || die "create failed"
done
cookie="racer_ui=$token"
cursor=$(curl -sf -H "Authorization: Bearer $token" "$api/api/v1/apps?limit=50" | jq -r .next_cursor)
page() { # URL -> one time_starttransfer (ms) per line, REPS requests on one connection
  local args=() i
  for i in $(seq 1 "$reps"); do args+=(-o /dev/null -w '%{http_code} %{size_download} %{time_starttransfer}\n' "$1"); done
  # Every answer must be the page itself (200, the full size), not a redirect to the login.
  curl -s -H "Cookie: $cookie" "${args[@]}" | awk '$1 != 200 || $2 < 10000 {print "bad answer: " $0 > "/dev/stderr"; exit 1} {printf "%.3f\n", $3*1000}'
}
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END{i=int((NR-1)*p/100)+1; printf "%.2f", a[i]}'; }
first=$(page "$api/ui/")
later=$(page "$api/ui/?cursor=$cursor")
curl -sf -H "Cookie: $cookie" "$api/ui/" | grep -q 'href="/ui/apps/app-0001"' || die "the page does not list the apps"
f50=$(pct 50 <<<"$first"); f99=$(pct 99 <<<"$first")
l50=$(pct 50 <<<"$later"); l99=$(pct 99 <<<"$later")
size=$(stat -c %s "$bin_dir/racer-server")
ui=$(nm --size-sort -C "$bin_dir/racer-server" 2>/dev/null | grep 'racer_server::ui::' | while read -r sz _; do echo $((16#$sz)); done | awk '{s+=$1} END{print s+0}')
echo
echo "| measure | target | result |"
echo "|---|---|---|"
echo "| apps page, 1,000 apps, first page (50), $reps requests | p99 <= 10 ms | p50 $f50 ms, p99 $f99 ms: $(awk -v p="$f99" 'BEGIN{print (p<=10)?"PASS":"MISS"}') |"
echo "| apps page, 1,000 apps, a later page, $reps requests | p99 <= 10 ms | p50 $l50 ms, p99 $l99 ms: $(awk -v p="$l99" 'BEGIN{print (p<=10)?"PASS":"MISS"}') |"
echo "| dashboard code in racer-server (symbols of racer_server::ui) | <= 2 MB | $(awk -v u="$ui" 'BEGIN{printf "%.0f KiB", u/1024}') of a $(awk -v s="$size" 'BEGIN{printf "%.1f MiB", s/1048576}') binary: $(awk -v u="$ui" 'BEGIN{print (u<=2*1048576)?"PASS":"MISS"}') |"
