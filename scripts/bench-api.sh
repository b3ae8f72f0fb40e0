#!/usr/bin/env bash
# API server benchmark (issue 3), on SQLite and on PostgreSQL, in one run:
#   1. `racerctl server start` wall-clock until /ready answers (5 fresh starts: median, max)
#   2. server RSS (VmRSS) right after start and again after the load
#   3. time to create 1,000 apps through the API (curl --parallel, 4 connections)
#   4. wrk -t2 -c32 -d10s --latency on GET /api/v1/apps (page of 50) and GET /api/v1/apps/app-0500
#   plus short diagnostic runs (c=1, /liveness, ?limit=1) that show where the time goes.
# Prints a results table with the targets and PASS/MISS. Exits non-zero if the benchmark itself is
# invalid (a non-2xx response, a failed create, a server that does not start), not on a MISS.
#
# Usage: cargo build --release --bins && scripts/bench-api.sh [options]
#   --write           replace the section "## API server (issue 3)" of docs/BENCHMARKS.md
#   --backends LIST   sqlite,postgres (default both)
#   --duration D      wrk duration of the main runs (default 10s)
#   --no-diag         skip the diagnostic runs
# Environment: RACER_BIN_DIR (default target/release), RACER_BENCH_PG_URL (default: the URL printed
# by scripts/postgres.sh). Only 127.0.0.1 is ever loaded, every load is bounded in time.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-$root/target/release}
write=0
backends=sqlite,postgres
duration=10s
diag=1
diag_duration=5s
starts=5
napps=1000
while [ $# -gt 0 ]; do
  case $1 in
    --write) write=1 ;;
    --backends) backends=$2; shift ;;
    --duration) duration=$2; shift ;;
    --no-diag) diag=0 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench-api: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

die() { echo "bench-api: FAIL: $*" >&2; exit 1; }
log() { echo "bench-api: $*" >&2; }

for b in racerctl racer-server; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing; run: cargo build --release --bins"
done
for t in wrk curl jq awk; do command -v "$t" >/dev/null || die "$t is not installed"; done
racerctl="$bin_dir/racerctl"

tmp=$(mktemp -d /tmp/racer-bench.XXXXXX)
data_dirs=()
databases=()
pg_url=""

cleanup() {
  local rc=$?
  set +e
  for d in "${data_dirs[@]}"; do
    [ -f "$d/server.json" ] || continue
    local pid
    pid=$(jq -r .pid "$d/server.json" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      "$racerctl" --data-dir "$d" server stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null
    fi
  done
  for db in "${databases[@]}"; do
    psql -q "$pg_url" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 \
      || log "could not drop database $db"
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
clk_tck=$(getconf CLK_TCK)
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# The wrk script: sends the token, and prints one machine-readable line with the counts wrk keeps
# (errors.status counts every response >= 400, i.e. wrk's "Non-2xx or 3xx responses").
cat >"$tmp/auth.lua" <<'EOF'
local token = os.getenv("RACER_BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
EOF

# run_wrk NAME PID URL THREADS CONNS DURATION: runs wrk, fails on any non-2xx, stores the results
# in the associative array R under NAME.*
declare -A R
run_wrk() {
  local name=$1 pid=$2 url=$3 threads=$4 conns=$5 dur=$6 out c0 c1 t0 t1 line
  out="$tmp/wrk-$name.txt"
  c0=$(cpu_ticks "$pid"); t0=$(now_ms)
  RACER_BENCH_TOKEN=$token wrk -t"$threads" -c"$conns" -d"$dur" --latency -s "$tmp/auth.lua" "$url" \
    >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed on $url"; }
  c1=$(cpu_ticks "$pid"); t1=$(now_ms)
  line=$(grep '^RESULT ' "$out") || { cat "$out" >&2; die "wrk printed no RESULT line for $url"; }
  local kv
  for kv in ${line#RESULT }; do R[$name.${kv%%=*}]=${kv#*=}; done
  R[$name.rps]=$(awk -v n="${R[$name.requests]}" -v us="${R[$name.duration_us]}" \
    'BEGIN{printf "%.0f", n/(us/1e6)}')
  R[$name.cpu]=$(awk -v t=$((c1 - c0)) -v hz="$clk_tck" -v ms=$((t1 - t0)) \
    'BEGIN{printf "%.0f", 100*(t/hz)/(ms/1000)}')
  R[$name.cpu_us_per_req]=$(awk -v t=$((c1 - c0)) -v hz="$clk_tck" -v n="${R[$name.requests]}" \
    'BEGIN{printf "%.0f", 1e6*(t/hz)/n}')
  log "$(printf '%-28s %7s req/s  p50 %6.2f ms  p99 %6.2f ms  server CPU %4s%%  non-2xx %s  socket errors %s' \
    "$name" "${R[$name.rps]}" "$(awk -v u="${R[$name.p50_us]}" 'BEGIN{print u/1000}')" \
    "$(awk -v u="${R[$name.p99_us]}" 'BEGIN{print u/1000}')" "${R[$name.cpu]}" \
    "${R[$name.non2xx]}" \
    $((R[$name.connect] + R[$name.read] + R[$name.write] + R[$name.timeout])))"
  if [ "${R[$name.non2xx]}" != 0 ]; then
    cat "$out" >&2
    die "$name: ${R[$name.non2xx]} non-2xx responses from $url; the numbers are worthless"
  fi
  [ "${R[$name.requests]}" -gt 0 ] || die "$name: wrk completed no request"
}

# expect_200 URL: the endpoint answers 200 with the token (a benchmark of 401s is worthless).
expect_200() {
  local code
  code=$(curl -s -o "$tmp/body" -w '%{http_code}' -H "Authorization: Bearer $token" "$1")
  [ "$code" = 200 ] || { cat "$tmp/body" >&2; die "GET $1 answered $code, not 200"; }
}

median() { sort -n | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

bench_backend() {
  local be=$1 i d db url="" times=() t0 t1 pid
  log "== $be =="
  R[$be.load]=$(cut -d' ' -f1-3 /proc/loadavg)
  for i in $(seq 1 "$starts"); do
    d="$tmp/$be-$i"; data_dirs+=("$d")
    local args=(--data-dir "$d" server start --port 0)
    if [ "$be" = postgres ]; then
      db="racer_bench_$$_$i"
      psql -q "$pg_url" -c "CREATE DATABASE $db" >/dev/null
      databases+=("$db")
      url="${pg_url%/*}/$db"
      args+=(--database-url "$url")
    fi
    t0=$(now_ms)
    "$racerctl" "${args[@]}" >"$tmp/start-$be-$i.txt" 2>&1 \
      || { cat "$tmp/start-$be-$i.txt" >&2; die "$be: racerctl server start failed"; }
    t1=$(now_ms)
    times+=($((t1 - t0)))
    log "start $i: $((t1 - t0)) ms"
    # Keep the last server for the load; stop the others.
    if [ "$i" -lt "$starts" ]; then
      "$racerctl" --data-dir "$d" server stop >/dev/null || die "$be: server stop failed"
    fi
  done
  R[$be.start_median]=$(printf '%s\n' "${times[@]}" | median)
  R[$be.start_max]=$(printf '%s\n' "${times[@]}" | sort -n | tail -n1)
  R[$be.start_all]=$(IFS=,; echo "${times[*]}")

  pid=$(jq -r .pid "$d/server.json")
  api=$(jq -r .api_url "$d/server.json")
  token=$(tr -d '\n' <"$d/admin.token")
  sleep 1
  R[$be.rss_idle]=$(rss_kib "$pid")
  log "idle RSS: $(mib "${R[$be.rss_idle]}") MiB (pid $pid, $api)"

  # 1,000 apps through the API, 4 at a time over kept-alive connections.
  local cfg="$tmp/create-$be.cfg" n
  : >"$cfg"
  for n in $(seq 1 "$napps"); do
    [ "$n" = 1 ] || echo next >>"$cfg"
    printf 'url = "%s/api/v1/apps"\nheader = "Authorization: Bearer %s"\nheader = "Content-Type: application/json"\ndata = "{\\"name\\":\\"app-%04d\\"}"\noutput = "/dev/null"\nwrite-out = "%%{http_code}\\n"\n' \
      "$api" "$token" "$n" >>"$cfg"
  done
  t0=$(now_ms)
  curl -s --no-progress-meter --parallel --parallel-max 4 -K "$cfg" >"$tmp/create-$be.codes" \
    || die "$be: curl failed while creating apps"
  t1=$(now_ms)
  R[$be.create_ms]=$((t1 - t0))
  local created
  created=$(grep -c '^201$' "$tmp/create-$be.codes" || true)
  if [ "$created" != "$napps" ]; then
    sort "$tmp/create-$be.codes" | uniq -c >&2
    die "$be: $created of $napps creates answered 201"
  fi
  log "created $napps apps in ${R[$be.create_ms]} ms"

  # Check: the list holds exactly the apps created; the default page is 50; both targets answer 200.
  local total=0 cursor="" page
  while :; do
    page=$(curl -sf -H "Authorization: Bearer $token" \
      "$api/api/v1/apps?limit=200${cursor:+&cursor=$cursor}") || die "$be: listing apps failed"
    total=$((total + $(jq '.items | length' <<<"$page")))
    cursor=$(jq -r '.next_cursor // empty' <<<"$page")
    [ -n "$cursor" ] || break
    cursor=$(jq -rn --arg c "$cursor" '$c|@uri')
  done
  [ "$total" = "$napps" ] || die "$be: the API lists $total apps, expected $napps"
  expect_200 "$api/api/v1/apps"
  [ "$(jq '.items | length' "$tmp/body")" = 50 ] || die "$be: the default page is not 50 apps"
  expect_200 "$api/api/v1/apps/app-0500"
  [ "$(jq -r .name "$tmp/body")" = app-0500 ] || die "$be: GET app-0500 returned another app"

  run_wrk "$be.list" "$pid" "$api/api/v1/apps" 2 32 "$duration"
  run_wrk "$be.get" "$pid" "$api/api/v1/apps/app-0500" 2 32 "$duration"
  if [ "$diag" = 1 ]; then
    run_wrk "$be.list_c1" "$pid" "$api/api/v1/apps" 1 1 "$diag_duration"
    run_wrk "$be.get_c1" "$pid" "$api/api/v1/apps/app-0500" 1 1 "$diag_duration"
    run_wrk "$be.list1" "$pid" "$api/api/v1/apps?limit=1" 2 32 "$diag_duration"
    run_wrk "$be.live" "$pid" "$api/liveness" 2 32 "$diag_duration"
  fi
  sleep 1
  R[$be.rss_after]=$(rss_kib "$pid")
  log "RSS after load: $(mib "${R[$be.rss_after]}") MiB"
  "$racerctl" --data-dir "$d" server stop >/dev/null || die "$be: server stop failed"
}

IFS=, read -r -a be_list <<<"$backends"
for be in "${be_list[@]}"; do
  case $be in
    sqlite) ;;
    postgres)
      pg_url=${RACER_BENCH_PG_URL:-$("$root/scripts/postgres.sh")}
      R[pg_version]=$(psql -Atq "$pg_url" -c 'SHOW server_version' | awk '{print $1}') ;;
    *) die "unknown backend $be" ;;
  esac
done
for be in "${be_list[@]}"; do bench_backend "$be"; done

# ---- report ------------------------------------------------------------------------------------
ms() { awk -v u="$1" 'BEGIN{printf "%.2f", u/1000}'; }
verdict() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN{ok = (op == "<=") ? v <= t : v >= t; print ok ? "PASS" : "MISS"}'; }
cell() { # cell BACKEND KEY -> formatted value with verdict
  local be=$1 key=$2 v
  case $key in
    start) v=${R[$be.start_median]}; echo "$v ms $( [ "$be" = sqlite ] && verdict "$v" "<=" 1000 || echo "(info)")" ;;
    start_max) echo "${R[$be.start_max]} ms (${R[$be.start_all]})" ;;
    rss_idle) v=$(mib "${R[$be.rss_idle]}"); echo "$v MiB $(verdict "$v" "<=" 40)" ;;
    rss_after) echo "$(mib "${R[$be.rss_after]}") MiB" ;;
    create) echo "$(awk -v m="${R[$be.create_ms]}" -v n=$napps 'BEGIN{printf "%.2f s (%.0f apps/s)", m/1000, n/(m/1000)}')" ;;
    list_rps) v=${R[$be.list.rps]}; echo "$v $(verdict "$v" ">=" 5000)" ;;
    list_p99) v=$(ms "${R[$be.list.p99_us]}"); echo "$v ms $(verdict "$v" "<=" 5)" ;;
    list_p50) echo "$(ms "${R[$be.list.p50_us]}") ms" ;;
    get_rps) v=${R[$be.get.rps]}; echo "$v $(verdict "$v" ">=" 10000)" ;;
    get_p99) echo "$(ms "${R[$be.get.p99_us]}") ms (p50 $(ms "${R[$be.get.p50_us]}") ms)" ;;
    non2xx) echo "$((R[$be.list.non2xx] + R[$be.get.non2xx]))" ;;
    cpu) echo "list ${R[$be.list.cpu]}% / get ${R[$be.get.cpu]}%" ;;
  esac
}
rows=(
  "start|Server start → /ready, median of $starts|≤ 1 s (SQLite)"
  "start_max|Server start → /ready, max (all runs)|—"
  "rss_idle|RSS idle, after start|≤ 40 MiB"
  "rss_after|RSS after create + load|—"
  "create|Create $napps apps (curl, 4 parallel)|—"
  "list_rps|GET /api/v1/apps (50/page), req/s|≥ 5,000"
  "list_p99|GET /api/v1/apps, p99|≤ 5 ms"
  "list_p50|GET /api/v1/apps, p50|—"
  "get_rps|GET /api/v1/apps/app-0500, req/s|≥ 10,000"
  "get_p99|GET /api/v1/apps/app-0500, p99|—"
  "non2xx|Non-2xx responses under load|0"
  "cpu|Server CPU during c=32 runs (of 200%)|—"
)
table() {
  local hdr="| Metric | Target |" sep="|---|---|" row key label target be
  for be in "${be_list[@]}"; do
    case $be in sqlite) hdr+=" SQLite |" ;; postgres) hdr+=" PostgreSQL |" ;; esac
    sep+="---|"
  done
  echo "$hdr"; echo "$sep"
  for row in "${rows[@]}"; do
    IFS='|' read -r key label target <<<"$row"
    printf '| %s | %s |' "$label" "$target"
    for be in "${be_list[@]}"; do printf ' %s |' "$(cell "$be" "$key")"; done
    echo
  done
}
diag_table() {
  local hdr="| Run | wrk |" sep="|---|---|" run name args be
  for be in "${be_list[@]}"; do
    case $be in sqlite) hdr+=" SQLite req/s · p50 · p99 · CPU µs/req |" ;; postgres) hdr+=" PostgreSQL req/s · p50 · p99 · CPU µs/req |" ;; esac
    sep+="---|"
  done
  echo "$hdr"; echo "$sep"
  for run in "list|GET /api/v1/apps|-t2 -c32" "get|GET /api/v1/apps/app-0500|-t2 -c32" \
             "list_c1|GET /api/v1/apps|-t1 -c1" "get_c1|GET /api/v1/apps/app-0500|-t1 -c1" \
             "list1|GET /api/v1/apps?limit=1|-t2 -c32" "live|GET /liveness (no auth, no store)|-t2 -c32"; do
    IFS='|' read -r name label args <<<"$run"
    [ -n "${R[${be_list[0]}.$name.rps]:-}" ] || continue
    printf '| %s | `%s` |' "$label" "$args"
    for be in "${be_list[@]}"; do
      printf ' %s · %s ms · %s ms · %s |' "${R[$be.$name.rps]}" "$(ms "${R[$be.$name.p50_us]}")" \
        "$(ms "${R[$be.$name.p99_us]}")" "${R[$be.$name.cpu_us_per_req]}"
    done
    echo
  done
}

date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal:/{printf "%.1f GiB", $2/1024/1024}' /proc/meminfo)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (+ uncommitted changes)"
fi
wrk_version=$({ wrk -v 2>&1 || true; } | awk 'NR==1{print $2}')

section() {
  cat <<EOF
## API server (issue 3)

Reproduce (from the repository root):

\`\`\`sh
cargo build --release --bins && scripts/bench-api.sh --write
\`\`\`

- Date: $date_utc; commit $commit
- Machine: nproc $(nproc), RAM $mem_total, kernel $(uname -r), CPU $cpu_model
- Tools: wrk $wrk_version, curl $(curl --version | awk 'NR==1{print $2}')${R[pg_version]:+, PostgreSQL ${R[pg_version]} (scripts/postgres.sh: fsync=off, synchronous_commit=off)}
- Load average (1/5/15 min) when each backend started: $(for be in "${be_list[@]}"; do printf '%s %s; ' "$be" "${R[$be.load]}"; done | sed 's/; $//').
  The machine is shared: anything else running (builds, tests) lowers the req/s and raises p99.
- **wrk runs on the same $(nproc) cores as the server**, so every req/s figure is a lower bound
  for the server alone: wrk's own CPU is taken from the server's budget.

What is measured: the wall-clock of \`racerctl server start --port 0\` (it returns once \`/ready\`
answers; it polls every 25 ms), $starts times with a fresh data directory (and, for PostgreSQL, a
fresh database, so migrations run every time); VmRSS of the last server 1 s after start and 1 s
after the load; $napps \`POST /api/v1/apps\` with \`curl --parallel --parallel-max 4\`; then
\`wrk -t2 -c32 -d$duration --latency\` with the admin token on each endpoint, after checking with
curl that it answers 200. Any non-2xx response fails the run. With 32 connections always busy,
mean latency = 32 / throughput (Little's law), so p99 ≤ 5 ms on an endpoint needs well above
6,400 req/s on it.

$(table)

Diagnostics (same server, after the main runs; diagnostic runs last $diag_duration; "CPU µs/req" is
the server's user+system CPU time divided by the requests wrk completed):

$(diag_table)

EOF
}

out="$tmp/section.md"
section >"$out"
echo
cat "$out"

if [ "$write" = 1 ]; then
  doc="$root/docs/BENCHMARKS.md"
  mkdir -p "$(dirname "$doc")"
  if [ ! -f "$doc" ]; then
    cat >"$doc" <<'EOF'
# Benchmarks

One `##` section per benchmark. Each section gives the exact command that reproduces it (run
from the repository root), the machine it ran on (nproc, RAM, kernel), the date, a results table,
and the targets with PASS or MISS. A benchmark script with `--write` replaces its own section and
leaves the others alone.

EOF
  fi
  awk -v secfile="$out" '
    function emit(  l) { while ((getline l < secfile) > 0) print l; close(secfile); done = 1 }
    /^## / { if (skip) skip = 0 }
    /^## API server \(issue 3\)[[:space:]]*$/ { emit(); skip = 1; next }
    !skip { print }
    END { if (!done) { print ""; emit() } }
  ' "$doc" >"$tmp/doc.md"
  # Collapse runs of blank lines the splice may leave.
  cat -s "$tmp/doc.md" >"$doc"
  log "wrote $doc"
fi
