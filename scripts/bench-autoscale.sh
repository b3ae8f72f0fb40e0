#!/usr/bin/env bash
# Autoscaler reaction benchmark (issue 6): load step → scale-out decision → new replica ready →
# the metric back under its target, then load stop → scale-in. One fresh local server (SQLite),
# the real Docker engine, the example app (examples/hello) as a prebuilt image.
#
# The app is registered with `scaling.policy.mode: auto`, minReplicas 1, maxReplicas 3, a short
# window and cooldown, a target of --rps requests/s per replica and a p95 target of --p95 ms. A
# bounded, paced `wrk` load (loopback only: --connections connections, each sending one request
# every --pace ms, for --duration s) goes through racer's proxy to the app. So the offered load is
# about connections × 1000 / pace requests/s, chosen so that one replica is over the RPS target
# and two are under it. While it runs the script scrapes `GET /metrics` every 250 ms
# (replicas desired and ready, the proxy's request counter and latency histogram for the app) and
# afterwards reads the `app.autoscaled.out`/`.in` events. From those it timestamps:
#   load start; the scale-out event; the second replica in the proxy's rotation; the first
#   250 ms scrape interval after that in which both RPS per ready replica and p95 (from the
#   histogram's difference) are under their targets; load stop; the scale-in event; back to one
#   replica.
# Prints a table with targets and PASS/MISS; exits non-zero only if the benchmark itself is
# invalid (no scale-out at all, a failed deployment), not on a MISS.
#
# Usage: cargo build --release --bins && scripts/build-example.sh && scripts/bench-autoscale.sh [options]
#   --write           replace the section "## Autoscaler reaction (issue 6)" of docs/BENCHMARKS.md
#   --window S        scaling.policy.windowSeconds (default 3)
#   --cooldown S      scaling.policy.cooldownSeconds (default 5)
#   --rps N           http.targetRPSPerReplica (default 125)
#   --p95 MS          http.maxP95LatencyMs (default 250)
#   --connections N   wrk connections (default 8)
#   --pace MS         delay between one connection's requests (default 40)
#   --duration S      length of the load (default 25)
# Environment: RACER_BIN_DIR (default target/release, or $CARGO_TARGET_DIR/release).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-${CARGO_TARGET_DIR:-$root/target}/release}
write=0 window=3 cooldown=5 rps=125 p95=250 conns=8 pace=40 duration=25
while [ $# -gt 0 ]; do
  case $1 in
    --write) write=1 ;;
    --window) window=$2; shift ;;
    --cooldown) cooldown=$2; shift ;;
    --rps) rps=$2; shift ;;
    --p95) p95=$2; shift ;;
    --connections) conns=$2; shift ;;
    --pace) pace=$2; shift ;;
    --duration) duration=$2; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "bench-autoscale: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
for v in "$window" "$cooldown" "$rps" "$p95" "$conns" "$pace" "$duration"; do
  [[ $v =~ ^[1-9][0-9]*$ ]] || { echo "bench-autoscale: options take positive integers" >&2; exit 2; }
done
[ "$duration" -le 120 ] || { echo "bench-autoscale: --duration is at most 120 s" >&2; exit 2; }

die() { echo "bench-autoscale: FAIL: $*" >&2; exit 1; }
log() { echo "bench-autoscale: $(date -u +%T) $*" >&2; }

for b in racer racerctl racer-server; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing; run: cargo build --release --bins"
done
for t in docker curl jq awk wrk; do command -v "$t" >/dev/null || die "$t is not installed (scripts/ensure-tools.sh)"; done
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (scripts/ensure-docker.sh)"
[ -x "$root/examples/hello/hello" ] || "$root/scripts/build-example.sh"
[ -x "$root/examples/hello/hello" ] || die "examples/hello/hello missing (scripts/build-example.sh)"

tmp=$(mktemp -d /tmp/racer-bench-autoscale.XXXXXX)
run_id=$(basename "$tmp" | tr -cd 'a-zA-Z0-9' | tr 'A-Z' 'a-z' | tail -c 7)
data=$tmp/data
image=racer-bench-autoscale:$run_id
app=auto-$run_id
install_id=""

cleanup() {
  local rc=$?
  set +e
  [ -z "${sampler_pid:-}" ] || kill "$sampler_pid" 2>/dev/null
  [ -z "${wrk_pid:-}" ] || kill "$wrk_pid" 2>/dev/null
  if [ -f "$data/server.json" ]; then
    local pid
    pid=$(jq -r .pid "$data/server.json" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      "$tmp/bin/racerctl" --data-dir "$data" server stop --force >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null
    fi
  fi
  if [ -n "$install_id" ]; then
    local ids
    ids=$(docker ps -aq --filter "label=racer.install=$install_id")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
    ids=$(docker images -q --filter "label=racer.install=$install_id" | sort -u)
    [ -z "$ids" ] || docker rmi -f $ids >/dev/null 2>&1
  fi
  docker rmi -f "$image" >/dev/null 2>&1
  [ "$rc" = 0 ] || cp "$data/server.log" /tmp/racer-bench-autoscale-server.log 2>/dev/null
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$tmp/bin" "$tmp/ctx"
cp "$bin_dir/racer" "$bin_dir/racerctl" "$bin_dir/racer-server" "$tmp/bin/"
racer="$tmp/bin/racer"
racerctl="$tmp/bin/racerctl"
cp "$root/examples/hello/hello" "$root/examples/hello/Dockerfile" "$tmp/ctx/"
docker build -q -t "$image" --label "racer-bench.run=$run_id" "$tmp/ctx" >/dev/null || die "docker build of the example failed"

host_base=$((30000 + (RANDOM % 80) * 100))
"$racerctl" --data-dir "$data" server start --port 0 --proxy-port 0 \
  --host-ports "$host_base-$((host_base + 99))" >/dev/null || die "the server did not start (see $data/server.log)"
server_pid=$(jq -r .pid "$data/server.json")
api=$(jq -r .api_url "$data/server.json")
token=$(cat "$data/admin.token")
install_id=$("$racerctl" --data-dir "$data" info --json | jq -r .install_id)
[ -n "$install_id" ] && [ "$install_id" != null ] || die "no install_id from racerctl info"
log "server pid $server_pid, install $install_id"

cat >"$tmp/app.yaml" <<EOF
apiVersion: racer/v1
kind: App
metadata:
  name: $app
spec:
  image: $image
  ports:
    - containerPort: 8000
  health:
    httpGet:
      path: /health
  resources:
    cpu: 0.5
    memory: 64Mi
  scaling:
    minReplicas: 1
    maxReplicas: 3
    policy:
      mode: auto
      windowSeconds: $window
      cooldownSeconds: $cooldown
      scaleOutThresholdPct: 100
      scaleInThresholdPct: 50
      http:
        targetRPSPerReplica: $rps
        maxP95LatencyMs: $p95
  termination:
    drainSeconds: 1
EOF
"$racer" --data-dir "$data" apply -f "$tmp/app.yaml" >/dev/null || die "racer apply failed (see $data/server.log)"
url=$("$racer" --data-dir "$data" status --project-name "$app" --json | jq -r '.urls[1]')
[ -n "$url" ] && [ "$url" != null ] || die "no URL for $app"
curl -sf -m 5 "$url" >/dev/null || die "$url does not answer"
log "$app answers at $url"

us() { REPLY=${EPOCHREALTIME/./}; }
# The sampler: every 250 ms one line "µs desired ready total b1 ... b13" for the app (b = the
# proxy's cumulative latency bucket counts, le 1 ms ... +Inf).
sampler() {
  while :; do
    local t m
    t=${EPOCHREALTIME/./}
    m=$(curl -s -m 2 -H "Authorization: Bearer $token" "$api/metrics") || m=""
    awk -v t="$t" -v a="app=\"$app\"" '
      index($1, a) == 0 { next }
      $1 ~ /^racer_app_replicas_desired\{/ { d = $2 }
      $1 ~ /^racer_app_replicas_ready\{/ { r = $2 }
      $1 ~ /^racer_proxy_requests_total\{/ { tot += $2 }
      $1 ~ /^racer_proxy_request_duration_seconds_bucket\{/ { b[++n] = $2 }
      END { printf "%s %d %d %d", t, d, r, tot; for (i = 1; i <= n; i++) printf " %d", b[i]; printf "\n" }
    ' <<<"$m"
    sleep 0.25
  done
}
sampler >"$tmp/samples" &
sampler_pid=$!
sleep 3 # a quiet baseline

cat >"$tmp/pace.lua" <<EOF
function delay()
  return $pace
end
EOF
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
us; t_load=$REPLY
log "load: wrk -t1 -c$conns -d${duration}s, one request per connection every $pace ms (about $((conns * 1000 / pace)) req/s offered)"
wrk -t1 -c"$conns" -d"${duration}s" --latency -s "$tmp/pace.lua" "$url" >"$tmp/wrk.out" 2>&1 &
wrk_pid=$!
load_during=""
( sleep $((duration / 2)); cut -d' ' -f1-3 /proc/loadavg >"$tmp/load-during" ) &
wait "$wrk_pid" || die "wrk failed: $(cat "$tmp/wrk.out")"
wrk_pid=""
us; t_stop=$REPLY
load_during=$(cat "$tmp/load-during" 2>/dev/null || echo "?")
log "load stopped; waiting for the scale-in"
# Scale-in: the window of low load, then one step per cooldown.
deadline=$(( $(date +%s) + 60 + window + 2 * cooldown ))
while :; do
  last=$(tail -n 1 "$tmp/samples")
  set -- $last
  [ "${2:-0}" = 1 ] && [ "${3:-0}" = 1 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || { log "not back to 1 replica within the deadline"; break; }
  sleep 0.5
done
sleep 1
kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""

curl -sf -H "Authorization: Bearer $token" "$api/api/v1/events?app=$app&kind=app.autoscaled.&limit=200" >"$tmp/events.json" \
  || die "cannot read the events"
ev_us() { # ev_us KIND AFTER_US: µs of the first event of KIND at or after AFTER_US
  jq -r --arg k "$1" '.items[] | select(.kind == $k) | .at' "$tmp/events.json" | while read -r at; do
    t=$(date -d "$at" +%s%6N); [ "$t" -ge "$2" ] && { echo "$t"; break; }
  done
}
ev_msg() { jq -r --arg k "$1" '[.items[] | select(.kind == $k)][0].message // ""' "$tmp/events.json"; }
t_out=$(ev_us app.autoscaled.out "$t_load")
[ -n "$t_out" ] || die "no app.autoscaled.out event during the load (samples: $(wc -l <"$tmp/samples"))"
t_in=$(ev_us app.autoscaled.in "$t_stop")
outs=$(jq '[.items[] | select(.kind == "app.autoscaled.out")] | length' "$tmp/events.json")
ins=$(jq '[.items[] | select(.kind == "app.autoscaled.in")] | length' "$tmp/events.json")

# From the samples: ready ≥ 2 after the event; then the first interval with both metrics under
# target; back to 1 after the load.
read -r t_ready t_under under_rps under_p95 peak_rps peak_p95 t_one max_ready <<<"$(awk \
  -v out="$t_out" -v stop="$t_stop" -v load="$t_load" -v rt="$rps" -v pt="$p95" '
  BEGIN { split("1 2 5 10 25 50 100 250 500 1000 2500 5000 1e9", le, " ") }
  function p95ms(    i, n, need) {
    n = cur[17] - prv[17]; if (n <= 0) return -1
    need = n * 0.95
    for (i = 5; i <= 17; i++) if (cur[i] - prv[i] >= need) return le[i - 4] + 0
    return 1e9
  }
  {
    for (i = 1; i <= NF; i++) cur[i] = $i
    if (NR > 1 && cur[1] > prv[1]) {
      secs = (cur[1] - prv[1]) / 1e6
      r = (cur[4] - prv[4]) / secs
      per = (cur[3] > 0) ? r / cur[3] : r
      p = p95ms()
      if (cur[1] >= load && cur[1] <= stop) {
        if (per > peak_rps) peak_rps = per
        if (p > peak_p95) peak_p95 = p
        if (cur[3] > max_ready) max_ready = cur[3]
      }
      if (!t_ready && cur[1] >= out && cur[3] >= 2) t_ready = cur[1]
      if (t_ready && !t_under && cur[1] > t_ready && cur[1] <= stop && per < rt && p >= 0 && p < pt) {
        t_under = cur[1]; urps = per; up95 = p
      }
      if (!t_one && cur[1] > stop && cur[3] == 1 && cur[2] == 1) t_one = cur[1]
    }
    for (i = 1; i <= NF; i++) prv[i] = cur[i]
  }
  END { printf "%.0f %.0f %.0f %s %.0f %s %.0f %d\n", t_ready, t_under, urps, up95 + 0, peak_rps, peak_p95 + 0, t_one, max_ready }
' "$tmp/samples")"

ms() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a == 0 || b == 0) print "-"; else printf "%.0f", (b - a) / 1000 }'; }
d_out=$(ms "$t_load" "$t_out")
d_start=$(ms "$t_out" "$t_ready")
d_ready=$(ms "$t_load" "$t_ready")
d_under=$(ms "$t_load" "$t_under")
d_in=$(ms "$t_stop" "${t_in:-0}")
d_one=$(ms "$t_stop" "$t_one")
# Targets: the decision within windowSeconds + one autoscaler interval (1 s); metric back under
# target within that + the replica's start (measured: scale-out event → in rotation).
t_dec=$(( window * 1000 + 1000 ))
pf() { awk -v v="$1" -v t="$2" 'BEGIN{ if (v == "-") print "MISS (never)"; else print (v <= t) ? "PASS" : "MISS" }'; }
v_out=$(pf "$d_out" "$t_dec")
if [ "$d_start" = - ]; then t_total=-; v_under="MISS (no replica ready)"; else
  t_total=$(( t_dec + d_start )); v_under=$(pf "$d_under" "$t_total"); fi
t_in_target=$(( window * 1000 + 1000 + cooldown * 1000 ))
v_in=$(pf "$d_in" "$t_in_target")
wrk_rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$tmp/wrk.out")
wrk_p99=$(awk '$1 == "99%" {print $2}' "$tmp/wrk.out")
wrk_errors=$(awk '/Non-2xx|Socket errors/ {print}' "$tmp/wrk.out" | tr '\n' ' ')

commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (+ uncommitted changes)" || true)
engine=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)
driver=$(docker info --format '{{.Driver}}' 2>/dev/null || echo unknown)
cpu_model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
ram=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)

section() {
  cat <<EOF
## Autoscaler reaction (issue 6)

Reproduce (from the repository root):

\`\`\`sh
cargo build --release --bins && scripts/build-example.sh && scripts/bench-autoscale.sh --window $window --cooldown $cooldown --rps $rps --p95 $p95 --connections $conns --pace $pace --duration $duration --write
\`\`\`

- Date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit $commit$dirty
- Machine: nproc $(nproc), RAM $ram, kernel $(uname -r), CPU $cpu_model
- Docker: engine $engine, storage driver $driver; racer store: SQLite; $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)
- Load average (1/5/15 min) before the load: $load_before; halfway through it: $load_during. wrk,
  the proxy, the server and the replicas share these $(nproc) cores with whatever else runs.

What is measured: the example app (prebuilt image, TCP-cheap \`/\`, health check \`/health\`)
with \`scaling.policy.mode: auto\`, minReplicas 1, maxReplicas 3, windowSeconds $window,
cooldownSeconds $cooldown, scaleOut/scaleIn thresholds 100 % / 50 %, \`http.targetRPSPerReplica: $rps\`
and \`http.maxP95LatencyMs: $p95\`. The load is \`wrk -t1 -c$conns -d${duration}s\` through racer's proxy
(\`/apps/<app>/\` on 127.0.0.1) with a Lua \`delay()\` of $pace ms per request per connection, so
about $((conns * 1000 / pace)) req/s are offered: over $rps per replica with one replica,
under it with two. The autoscaler samples once a second (crates/control/src/autoscale.rs) and
must see the metric over its threshold for the whole window. The script scrapes \`GET /metrics\`
every 250 ms; "RPS per replica" is the proxy's request counter difference divided by the replicas
in rotation, p95 comes from the difference of the proxy's latency histogram (bucket bounds 1, 2, 5,
10, 25, 50, 100, 250 ms ...). Events are \`app.autoscaled.out\`/\`.in\` from \`GET /api/v1/events\`.

| Step | Time | Target | Result |
|---|---|---|---|
| load start → \`app.autoscaled.out\` event | $d_out ms | ≤ windowSeconds + one interval = $t_dec ms | $v_out |
| event → new replica in the proxy's rotation (replica start) | $d_start ms | — | info |
| load start → new replica ready | $d_ready ms | — | info |
| load start → RPS per replica and p95 both under target | $d_under ms | ≤ window + interval + replica start = $t_total ms | $v_under |
| load stop → \`app.autoscaled.in\` event | ${d_in} ms | ≤ window + interval + cooldown = $t_in_target ms | $v_in |
| load stop → back to 1 replica in rotation | $d_one ms | — | info |

- Under load with one replica: peak RPS per replica $peak_rps (target $rps), peak p95 $peak_p95 ms (target $p95,
  bucket bound). First interval under target: $under_rps req/s per replica, p95 ≤ $under_p95 ms.
- Scale-out events during the load: $outs; scale-in events after it: $ins; most replicas in rotation: $max_ready.
  The first scale-out said: "$(ev_msg app.autoscaled.out)".
- wrk: $wrk_rps req/s, p99 $wrk_p99 over the whole run${wrk_errors:+; $wrk_errors}.
EOF
}

out="$tmp/section.md"
section >"$out"
echo
cat "$out"

if [ "$write" = 1 ]; then
  doc="$root/docs/BENCHMARKS.md"
  awk -v secfile="$out" '
    function emit(  l) { while ((getline l < secfile) > 0) print l; close(secfile); done = 1 }
    /^## / { if (skip) skip = 0 }
    /^## Autoscaler reaction \(issue 6\)[[:space:]]*$/ { emit(); skip = 1; next }
    !skip { print }
    END { if (!done) { print ""; emit() } }
  ' "$doc" | cat -s >"$doc.bench-autoscale.tmp"
  mv "$doc.bench-autoscale.tmp" "$doc"
  log "wrote the section \"## Autoscaler reaction (issue 6)\" of $doc"
fi
