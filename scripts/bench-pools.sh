#!/usr/bin/env bash
# Warm pools benchmark (issue 15), one run against one fresh local server (SQLite, release build):
#   1. warm claim -> first proxied 200 from the claimed container: POST /api/v1/pools/P/claims,
#      then GET its /web/<claim>/ route with the token every 2 ms until 200; --reps times (default
#      30), each from a pool with ready containers (released between reps, outside the timing)
#   2. the same image started cold in the same run: racer's own cold claim (a pool of size 0),
#      and the peer: raw `docker run -d` of the image, polled on its container IP until 200
#   3. pool refill rate: resize 0 -> 20, time until 20 are ready (containers/s)
#   4. workspace restore and push of 100 MB in 1,000 files against a local S3 server (moto, from
#      PyPI via scripts/s3.sh), next to the baseline `aws s3 sync` (awscli from PyPI) both ways
# Prints a table with the targets; exits non-zero only if the benchmark itself is invalid.
#
# Usage: cargo build --release --bins && scripts/bench-pools.sh [--reps N] [--no-workspace]
# Only 127.0.0.1 and the local Docker engine are contacted.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-$root/target/release}
reps=30
workspace=1
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift ;;
    --no-workspace) workspace=0 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "bench-pools: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $reps =~ ^[1-9][0-9]{0,2}$ ]] || { echo "bench-pools: --reps must be 1-999" >&2; exit 2; }
die() { echo "bench-pools: FAIL: $*" >&2; exit 1; }
log() { echo "bench-pools: $*" >&2; }
for b in racer racerctl racer-server; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing; run: cargo build --release --bins"
done
for t in docker curl jq awk; do command -v "$t" >/dev/null || die "$t is not installed"; done

tmp=$(mktemp -d /tmp/racer-bench-pools.XXXXXX)
data=$tmp/data
image=racer-bench-pool:$$
peer=""
cleanup() {
  local rc=$?
  set +e
  "$bin_dir/racerctl" --data-dir "$data" server stop --force >/dev/null 2>&1
  local ids
  ids=$(docker ps -aq --filter "label=racer.pool")
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
  [ -z "$peer" ] || docker rm -f "$peer" >/dev/null 2>&1
  docker rmi -f "$image" >/dev/null 2>&1
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

us() { REPLY=${EPOCHREALTIME/./}; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END{i=int((NR-1)*p/100)+1; printf "%.1f", a[i]/1000}'; }

[ -x "$root/examples/hello/hello" ] || "$root/scripts/build-example.sh"
docker build -q -t "$image" "$root/examples/hello" >/dev/null

s3=""
if [ "$workspace" = 1 ]; then
  s3=$("$root/scripts/s3.sh")
fi
export AWS_ACCESS_KEY_ID=bench-key AWS_SECRET_ACCESS_KEY=bench-secret AWS_DEFAULT_REGION=us-east-1
"$bin_dir/racerctl" --data-dir "$data" server start --port 0 --proxy-port 0 \
  ${s3:+--s3-endpoint "$s3"} --workspace-sync-interval 1 >/dev/null
api=$(jq -r .api_url "$data/server.json")
token=$(cat "$data/admin.token")
auth=(-H "Authorization: Bearer $token")
racer() { RACER_DATA_DIR=$data "$bin_dir/racer" "$@"; }

ready() { racer pools show "$1" --json | jq -r .ready; }
wait_ready() { # POOL N DEADLINE_S
  local i
  for i in $(seq 1 $(($3 * 50))); do
    [ "$(ready "$1")" -ge "$2" ] && return 0
    sleep 0.02
  done
  return 1
}

claim_to_200() { # POOL -> sets MS (claim to first 200), CLAIM, WARM
  local t0 t1 body url tok code
  us; t0=$REPLY
  body=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d '{}' "$api/api/v1/pools/$1/claims") \
    || die "claim of $1 failed"
  url=$(jq -r .urls.web <<<"$body"); tok=$(jq -r .token <<<"$body")
  CLAIM=$(jq -r .id <<<"$body"); WARM=$(jq -r .warm <<<"$body")
  for _ in $(seq 1 5000); do
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Racer-Claim-Token: $tok" "$url") || code=0
    [ "$code" = 200 ] && break
    sleep 0.002
  done
  [ "$code" = 200 ] || die "claim $CLAIM never answered 200"
  us; t1=$REPLY
  MS=$((t1 - t0))
}

# 1. warm claims. The loop is one python3 process (keep-alive connections, no process spawned
# per request), so the time is racer's: the claim request, then GETs of the claim's route until
# the first 200. Releases happen between reps, outside the timing.
racer pools create warm --image "$image" --size 5 --port web=8000 --health-path /health >/dev/null
wait_ready warm 5 60 || die "pool warm never had 5 ready"
warm_out=$(python3 - "$api" "$token" "$reps" <<'PY'
import http.client, json, sys, time, urllib.parse
api, token, reps = sys.argv[1], sys.argv[2], int(sys.argv[3])
u = urllib.parse.urlparse(api)
c = http.client.HTTPConnection(u.hostname, u.port)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
def call(m, p, b=None):
    c.request(m, p, body=b, headers=h); r = c.getresponse(); return r.status, r.read()
def ready():
    return json.loads(call("GET", "/api/v1/pools/warm")[1])["ready"]
out = []
for i in range(reps):
    for _ in range(3000):
        if ready() >= 3: break
        time.sleep(0.02)
    t0 = time.perf_counter()
    st, body = call("POST", "/api/v1/pools/warm/claims", "{}")
    assert st == 201, body
    claim = json.loads(body)
    assert claim["warm"], "rep %d was not warm" % i
    w = urllib.parse.urlparse(claim["urls"]["web"])
    p = http.client.HTTPConnection(w.hostname, w.port)
    for _ in range(10000):
        p.request("GET", w.path, headers={"X-Racer-Claim-Token": claim["token"]})
        r = p.getresponse(); r.read()
        if r.status == 200: break
        time.sleep(0.001)
    assert r.status == 200, "claim never answered"
    out.append((time.perf_counter() - t0) * 1e6)
    p.close()
    call("POST", "/api/v1/claims/%s/release" % claim["id"])
print("\n".join("%d" % x for x in out))
PY
) || die "the warm claims failed"
warm_p50=$(pct 50 <<<"$warm_out")
warm_p99=$(pct 99 <<<"$warm_out")

# 2. cold: racer's cold claim, and raw docker run
racer pools create cold --image "$image" --size 0 --port web=8000 --health-path /health >/dev/null
cold=(); raw=()
for i in $(seq 1 5); do
  claim_to_200 cold
  [ "$WARM" = false ] || die "cold rep $i was warm"
  cold+=("$MS")
  racer claims release "$CLAIM" >/dev/null
  us; t0=$REPLY
  peer=$(docker run -d --label racer-bench=pools "$image")
  ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$peer")
  for _ in $(seq 1 5000); do
    curl -sf -o /dev/null "http://$ip:8000/" && break
    sleep 0.002
  done
  us; raw+=($((REPLY - t0)))
  docker rm -f "$peer" >/dev/null; peer=""
done
cold_p50=$(printf '%s\n' "${cold[@]}" | pct 50)
raw_p50=$(printf '%s\n' "${raw[@]}" | pct 50)

# 3. refill rate
racer pools resize cold --size 20 >/dev/null
us; t0=$REPLY
wait_ready cold 20 120 || die "20 never ready"
us; refill_s=$(awk -v u=$((REPLY - t0)) 'BEGIN{printf "%.2f", u/1e6}')
refill_rate=$(awk -v s="$refill_s" 'BEGIN{printf "%.1f", 20/s}')
racer pools delete cold >/dev/null
racer pools delete warm >/dev/null

row() { printf '| %s | %s | %s |\n' "$1" "$2" "$3"; }
echo
echo "| measure | target | result |"
echo "|---|---|---|"
row "warm claim -> first proxied 200 ($reps claims)" "p99 <= 50 ms" "p50 $warm_p50 ms, p99 $warm_p99 ms: $(awk -v p="$warm_p99" 'BEGIN{print (p<=50)?"PASS":"MISS"}')"
row "cold claim (no ready container) -> first 200, 5 runs" "(peer)" "p50 $cold_p50 ms"
row "raw docker run -d of the same image -> first 200, 5 runs" "(peer)" "p50 $raw_p50 ms (warm is $(awk -v a="$raw_p50" -v b="$warm_p50" 'BEGIN{printf "%.0f", a/b}')x faster)"
row "pool refill 0 -> 20 ready" "" "$refill_s s, $refill_rate containers/s"

[ "$workspace" = 1 ] || exit 0

# 4. workspace: 1,000 files of 100 KiB (100 MB)
venv=${RACER_CACHE_DIR:-$HOME/.cache/racer}/moto
if [ ! -x "$venv/bin/aws" ]; then
  log "installing awscli (PyPI) into $venv for the baseline"
  "$venv/bin/pip" install -q awscli >&2 || log "awscli did not install: no baseline"
fi
files=$tmp/ws; mkdir -p "$files"
for i in $(seq 1 1000); do head -c 102400 /dev/urandom >"$files/f$i.bin"; done
bucket=bench-$$
curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" "$s3/$bucket" >/dev/null
aws_push="n/a"; aws_pull="n/a"
if [ -x "$venv/bin/aws" ]; then
  us; t0=$REPLY
  "$venv/bin/aws" --endpoint-url "$s3" s3 sync "$files" "s3://$bucket/base" >/dev/null
  us; aws_push=$(awk -v u=$((REPLY - t0)) 'BEGIN{printf "%.1f", 100/(u/1e6)}')
  mkdir -p "$tmp/pulled"
  us; t0=$REPLY
  "$venv/bin/aws" --endpoint-url "$s3" s3 sync "s3://$bucket/base" "$tmp/pulled" >/dev/null
  us; aws_pull=$(awk -v u=$((REPLY - t0)) 'BEGIN{printf "%.1f", 100/(u/1e6)}')
else
  # No baseline tool: seed the prefix with racer itself (a claim that pushes), below.
  :
fi
racer pools create ws --image "$image" --size 1 --port web=8000 --health-path /health >/dev/null
wait_ready ws 1 60 || die "pool ws never ready"
# Restore: a claim of the seeded prefix.
body=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d "{\"workspace\":\"s3://$bucket/base\"}" "$api/api/v1/pools/ws/claims") || die "workspace claim failed"
rb=$(jq -r .workspace.restored_bytes <<<"$body"); rms=$(jq -r .workspace.restore_ms <<<"$body")
restore=$(awk -v b="$rb" -v ms="$rms" 'BEGIN{printf "%.1f", (b/1e6)/(ms/1000)}')
racer claims release "$(jq -r .id <<<"$body")" >/dev/null
# Push: files copied into a fresh claim's workspace, timed until every object is in the bucket.
wait_ready ws 1 60 || die "pool ws did not refill"
body=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -d "{\"workspace\":\"s3://$bucket/pushed\"}" "$api/api/v1/pools/ws/claims") || die "push claim failed"
cid=$(jq -r .container <<<"$body")
docker cp "$files/." "$cid:/workspace/" >/dev/null
us; t0=$REPLY
for _ in $(seq 1 600); do
  n=$(curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    "$s3/$bucket?list-type=2&prefix=pushed/" | grep -o '<KeyCount>[0-9]*' | grep -o '[0-9]*$' || echo 0)
  [ "${n:-0}" -ge 1000 ] && break
  sleep 0.2
done
us; push=$(awk -v u=$((REPLY - t0)) 'BEGIN{printf "%.1f", 100/(u/1e6)}')
[ "${n:-0}" -ge 1000 ] || die "the push never completed ($n of 1000)"
row "workspace restore, 100 MB in 1,000 files (claim answers after it)" "" "$restore MB/s (aws s3 sync down: $aws_pull MB/s)"
row "workspace push, 100 MB in 1,000 files (copied in, until all in the bucket; 1 s interval)" "" "$push MB/s (aws s3 sync up: $aws_push MB/s)"
