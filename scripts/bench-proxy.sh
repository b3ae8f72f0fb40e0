#!/usr/bin/env bash
# Proxy benchmark (issue 5), in one run against one fresh local server (SQLite) and one app
# (examples/hello, 1 replica):
#   1. throughput and latency: racer's built-in proxy vs nginx in front of the SAME upstream (the
#      replica's container IP:8000, which is also what racer's route table points at), and the
#      upstream direct as a baseline. `wrk -t2 -c16` and `-c256`, --duration s each, --rounds
#      rounds of (racer, nginx) taking turns; each metric's median over the rounds is compared
#      (the machine is shared: single rounds of either proxy vary by 15 % in req/s and 2x in p99).
#   2. proxy memory: racer-server VmRSS just before the first c=256 run through racer, its peak
#      during the c=256 runs (sampled every 100 ms) and 1 s after.
#   3. timings: (a) a new replica answering on its own IP -> the first proxied request that
#      reaches it (`racer rerun --no-rebuild --env GREETING=...`); (b) a release that never
#      listens (FROM scratch busybox `sleep 3600`, server started with --rollout-deadline 5):
#      deadline expiry -> deployment rolled back (status rolled_back; older builds: failed) /
#      `racer run` exits; (c) `racer rollback` ->
#      the proxy serves the old release's GREETING.
# Polls for 3. are a small python3 poller (one fresh connection per poll, every 2 ms; the engine's
# container list every 5 ms); timestamps come from it, the `racer --json` events (stamped as they
# arrive), the server log and `docker events`, all on this host's clock.
# Prints a table with the targets and PASS/MISS; exits non-zero only when the benchmark itself is
# invalid (a target that does not answer 200, a deploy that fails), not on a MISS.
#
# Usage: cargo build --profile dist --bins && scripts/build-example.sh && scripts/bench-proxy.sh [options]
#   --write        replace the section "## Proxy (issue 5)" of docs/BENCHMARKS.md
#   --duration S   seconds per wrk run (default 10)
#   --rounds N     rounds of (racer, nginx) per concurrency (default 5)
#   --reps N       repetitions of 3a and 3c (default 5; 3b runs 2 times)
#   --perf         also profile racer-server with `perf record -g` during one extra c=256 run
# Needs: docker, wrk, nginx (apt-get install -y nginx-light), curl, jq, python3, /bin/busybox
# (busybox-static). Environment: RACER_BIN_DIR (default target/dist), RACER_BIN_DESC (how those
# binaries were built, for the report). Only 127.0.0.1 and the replica's container IP are loaded.
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME with a '.'

root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-$root/target/dist}
write=0
duration=10
rounds=5
reps=5
do_perf=0
while [ $# -gt 0 ]; do
  case $1 in
    --write) write=1 ;;
    --duration) duration=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --reps) reps=$2; shift ;;
    --perf) do_perf=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "bench-proxy: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $duration =~ ^[1-9][0-9]?$ ]] || { echo "bench-proxy: --duration must be 1-99" >&2; exit 2; }
[[ $rounds =~ ^[1-9]$ ]] || { echo "bench-proxy: --rounds must be 1-9" >&2; exit 2; }
[[ $reps =~ ^[1-9][0-9]?$ ]] || { echo "bench-proxy: --reps must be 1-99" >&2; exit 2; }

die() { echo "bench-proxy: FAIL: $*" >&2; exit 1; }
log() { echo "bench-proxy: $*" >&2; }

for b in racer racerctl racer-server; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing; run: cargo build --profile dist --bins"
done
for t in docker curl jq awk wrk python3; do command -v "$t" >/dev/null || die "$t is not installed"; done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || die "nginx is not installed (apt-get install -y nginx-light)"
[ -x /bin/busybox ] || die "/bin/busybox missing (apt-get install -y busybox-static)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (scripts/ensure-docker.sh)"
docker_sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
[[ $docker_sock == unix://* ]] || die "DOCKER_HOST must be a local unix socket"
docker_sock=${docker_sock#unix://}

tmp=$(mktemp -d /tmp/racer-bench-proxy.XXXXXX)
run_id=$(basename "$tmp" | tr -cd 'a-zA-Z0-9' | tr 'A-Z' 'a-z' | tail -c 7)
data=$tmp/data
install_id=""
silent_image=racer-bench-silent:$run_id
# Container names are global on the engine: a unique app name avoids other installs' leftovers.
app=px-$run_id

cleanup() {
  local rc=$?
  set +e
  for p in ${events_pid:-} ${sampler_pid:-} ${poller_pid:-}; do kill "$p" 2>/dev/null; done
  if [ -f "$tmp/nginx/nginx.pid" ]; then
    local np
    np=$(cat "$tmp/nginx/nginx.pid")
    [ -z "$np" ] || kill "$np" 2>/dev/null
    sleep 0.3
    [ -z "$np" ] || ! kill -0 "$np" 2>/dev/null || kill -9 "$np" 2>/dev/null
  fi
  if [ -f "$data/server.json" ]; then
    local pid
    pid=$(jq -r .pid "$data/server.json" 2>/dev/null)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      "$tmp/bin/racerctl" --data-dir "$data" server stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null
    fi
  fi
  if [ -n "$install_id" ]; then
    local ids
    ids=$(docker ps -aq --filter "label=racer.install=$install_id")
    [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
    ids=$(docker images -q --filter "label=racer.install=$install_id" | sort -u)
    [ -z "$ids" ] || docker rmi -f $ids >/dev/null 2>&1
  fi
  docker rmi -f "$silent_image" >/dev/null 2>&1
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private copies of the binaries: other people may rebuild target/dist while this runs.
mkdir -p "$tmp/bin"
cp "$bin_dir/racer" "$bin_dir/racerctl" "$bin_dir/racer-server" "$tmp/bin/"
racer="$tmp/bin/racer"
racerctl="$tmp/bin/racerctl"
"$tmp/bin/racer-server" --help | grep -q -- --proxy-port || die "this racer-server has no built-in proxy"

[ -x "$root/examples/hello/hello" ] || "$root/scripts/build-example.sh"
[ -x "$root/examples/hello/hello" ] || die "examples/hello/hello missing (scripts/build-example.sh)"

# ---------------------------------------------------------------------------------------- helpers
us() { REPLY=${EPOCHREALTIME/./}; }            # microseconds since the epoch, into REPLY, no fork
# µs -> ms (no decimals / one decimal); an empty value (a moment not observed) prints "-"
ms_of() { awk -v u="$1" 'BEGIN{if (u == "") print "-"; else printf "%.0f", u/1000}'; }
ms1() { awk -v u="$1" 'BEGIN{if (u == "") print "-"; else printf "%.1f", u/1000}'; }
# a gap in µs -> ms; <= 0 (the proxy served before the direct poller's first 200) as "≤ 0 (raw)"
gap1() { awk -v u="$1" 'BEGIN{if (u == "") print "-"; else if (u <= 0) printf "≤ 0 (%.1f)", u/1000; else printf "%.1f", u/1000}'; }
diff_us() { if [ -n "$1" ] && [ -n "$2" ]; then echo $(($1 - $2)); fi; } # A - B, or empty
iso_us() { date -d "$1" +%s%6N; }                # ISO-8601 time -> microseconds
median() { sort -g | awk '{a[NR]=$1} END{if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
maxv() { sort -g | tail -1; }
minv() { sort -g | head -1; }
stamp() { local l; while IFS= read -r l; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$l"; done; }
rss_kib() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }
cpu_ticks() { # utime+stime of the given pids (clock ticks), summed
  local p s=0 t
  for p in "$@"; do
    t=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)
    s=$((s + t))
  done
  echo "$s"
}
hz=$(getconf CLK_TCK)
server_log() { sed 's/\x1b\[[0-9;]*m//g' "$data/server.log"; }

cat >"$tmp/poll.py" <<'PY'
# Pollers for scripts/bench-proxy.sh: one fresh TCP connection per poll, µs epoch timestamps.
import json, os, socket, sys, threading, time, urllib.parse

def now_us():
    return time.time_ns() // 1000

def http_get(addr, host, timeout=1.0, path="/", extra=""):
    h, p = addr.rsplit(":", 1)
    try:
        s = socket.create_connection((h, int(p)), timeout=timeout)
    except OSError as e:
        return None, type(e).__name__
    try:
        s.settimeout(timeout)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode())
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError as e:
        return None, type(e).__name__
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None, "bad response"
    return status, body.decode("utf-8", "replace")

def docker_get(sock_path, path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    s.connect(sock_path)
    s.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf.partition(b"\r\n\r\n")[2] or b"null")

def main():
    a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    period = float(a.get("--period-ms", "2")) / 1000
    deadline = now_us() + int(float(a.get("--deadline-s", "60")) * 1e6)
    want = a.get("--want")
    stop_file = a.get("--stop-file")
    out = {"proxy_polls": 0, "proxy_non200": 0, "first_non200": None}

    def stopped():
        return now_us() > deadline or bool(stop_file and os.path.exists(stop_file))

    def proxy_loop():
        while not stopped():
            st, body = http_get(a["--proxy"], a["--host-header"])
            t = now_us()
            out["proxy_polls"] += 1
            if st != 200:
                out["proxy_non200"] += 1
                if out["first_non200"] is None:
                    out["first_non200"] = f"{st} {body[:80]}"
            elif want and want in body:
                out["t_proxy"] = t
                return
            time.sleep(period)

    def direct_loop():
        q = urllib.parse.urlencode({"filters": a["--filters"]})
        ip = None
        while not stopped():
            try:
                for c in docker_get(a["--docker-sock"], f"/containers/json?{q}") or []:
                    for n in (c.get("NetworkSettings") or {}).get("Networks", {}).values():
                        if n.get("IPAddress"):
                            ip = n["IPAddress"]
            except (OSError, ValueError):
                pass
            if ip:
                out["t_ip"], out["ip"] = now_us(), ip
                break
            time.sleep(0.005)
        polls = 0
        while ip and not stopped():
            st, body = http_get(f"{ip}:{a.get('--app-port', '8000')}", "bench")
            polls += 1
            if st == 200 and (not want or want in body):
                out["t_direct"] = now_us()
                break
            time.sleep(period)
        out["direct_polls"] = polls

    def health_loop():
        # racer's own view: the new container's health in GET /api/v1/apps/<app>/status
        auth = f"Authorization: Bearer {a['--token']}\r\n"
        polls = 0
        # Keeps polling after the proxy served the new release: with a fast reconciler the proxy
        # often serves it before a 10 ms status poll sees "healthy" (a gap <= 0 is a result).
        while not stopped():
            if "t_proxy" in out and now_us() > out["t_proxy"] + 3_000_000:
                break
            st, body = http_get(a["--api"], "racer", 2.0, a["--status-path"], auth)
            polls += 1
            if st == 200:
                try:
                    for c in json.loads(body).get("containers", []):
                        if c.get("name") == a["--container"] and c.get("health") == "healthy":
                            out["t_healthy"] = now_us()
                except ValueError:
                    pass
                if "t_healthy" in out:
                    break
            time.sleep(0.01)
        out["status_polls"] = polls

    threads = [threading.Thread(target=proxy_loop)]
    if "--docker-sock" in a:
        threads.append(threading.Thread(target=direct_loop))
    if "--api" in a:
        threads.append(threading.Thread(target=health_loop))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))

main()
PY

declare -A R # results

# ------------------------------------------------------------------------------------ the server
host_base=$((30000 + (RANDOM % 80) * 100)) # a private slice of host ports for the replicas
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$racerctl" --data-dir "$data" server start --port 0 --proxy-port 0 --rollout-deadline 5 \
  --host-ports "$host_base-$((host_base + 99))" >/dev/null </dev/null 2>&1 \
  || die "the server did not start (see $data/server.log)"
server_pid=$(jq -r .pid "$data/server.json")
proxy_url=$(jq -r .proxy_url "$data/server.json")
api_url=$(jq -r .api_url "$data/server.json")
proxy_port=${proxy_url##*:}
host_hdr="$app.localhost:$proxy_port"
install_id=$("$racerctl" --data-dir "$data" info --json | jq -r .install_id)
[ -n "$install_id" ] && [ "$install_id" != null ] || die "no install_id from racerctl info"
log "server pid $server_pid, proxy $proxy_url, install $install_id, app $app"
docker events --filter "label=racer.install=$install_id" --filter type=container \
  --format '{{.TimeNano}} {{.Action}} {{index .Actor.Attributes "name"}}' >"$tmp/docker-events" 2>/dev/null &
events_pid=$!

mkdir -p "$tmp/proj" "$tmp/silent"
cp "$root/examples/hello/hello" "$root/examples/hello/Dockerfile" "$tmp/proj/"
greeting=g0-$run_id
"$racer" --data-dir "$data" run --project-name "$app" --path "$tmp/proj" --env "GREETING=$greeting" \
  --timeout 120 >/dev/null 2>"$tmp/deploy.err" </dev/null || { cat "$tmp/deploy.err" >&2; die "first deploy of $app failed"; }
release=1
rss_idle=$(rss_kib "$server_pid")

cid=$("$racer" --data-dir "$data" status --project-name "$app" --json | jq -r '.containers[0].id')
up_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")
up_pid=$(docker inspect -f '{{.State.Pid}}' "$cid")
[ -n "$up_ip" ] || die "no container IP for $cid"
# racer's route table points at the same address (the replica's IP on the engine's network).
log "upstream $up_ip:8000 (container ${cid:0:12}, pid $up_pid)"

# ------------------------------------------------------------------------------------ nginx
nginx_port=""
for i in $(seq 1 200); do
  p=$((20000 + RANDOM % 10000))
  if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then nginx_port=$p; break; fi
done
[ -n "$nginx_port" ] || die "no free port for nginx"
mkdir -p "$tmp/nginx/tmp"
cat >"$tmp/nginx/nginx.conf" <<EOF
# Same upstream as racer's proxy, kept-alive upstream connections, no access log.
user root;
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/tmp/body;
  proxy_temp_path $tmp/nginx/tmp/proxy;
  fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
  uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
  scgi_temp_path $tmp/nginx/tmp/scgi;
  keepalive_requests 1000000;
  upstream app {
    server $up_ip:8000;
    keepalive 256;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      # the headers racer's proxy adds
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto http;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header X-Request-Id \$request_id;
      add_header X-Request-Id \$request_id;
    }
  }
}
EOF
"$nginx_bin" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/t.err" \
  || { cat "$tmp/nginx/t.err" >&2; die "nginx rejects its config"; }
# In a session of its own, as racer-server is (`racerctl server start` detaches it) and as a
# daemonized nginx is: where the kernel groups CPU time by session (autogroup), neither proxy
# shares its CPU weight with wrk, which runs in this script's session.
setsid "$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
  >"$tmp/nginx/out" 2>&1 </dev/null &
for i in $(seq 1 100); do [ -s "$tmp/nginx/nginx.pid" ] && break; sleep 0.05; done
[ -s "$tmp/nginx/nginx.pid" ] || { cat "$tmp/nginx/out" >&2; die "nginx did not start"; }
nginx_master=$(cat "$tmp/nginx/nginx.pid")
sleep 0.2
nginx_workers=$(pgrep -P "$nginx_master" | tr '\n' ' ')
nginx_version=$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')
log "nginx $nginx_version on 127.0.0.1:$nginx_port, master $nginx_master, workers $nginx_workers"

declare -A URL=(
  [direct]="http://$up_ip:8000/"
  [racer]="http://127.0.0.1:$proxy_port/"
  [nginx]="http://127.0.0.1:$nginx_port/"
)
for t in direct racer nginx; do
  out=$(curl -s -m 2 -H "Host: $host_hdr" -w '\n%{http_code}' "${URL[$t]}") || die "$t: ${URL[$t]} does not answer"
  code=${out##*$'\n'}
  [ "$code" = 200 ] || die "$t: ${URL[$t]} answered $code"
  [[ $out == *"$greeting from"* ]] || die "$t: unexpected body: $out"
  R[body.$t]=$(head -1 <<<"$out" | wc -c)
done
log "all three targets answer 200 with the app's body (${R[body.racer]} bytes)"

# ------------------------------------------------------------------------------------ 1. + 2. wrk
to_ms() { # wrk's 123.45us / 1.23ms / 1.02s -> ms
  awk -v v="$1" 'BEGIN{ if (v ~ /us$/) printf "%.3f", v/1000; else if (v ~ /ms$/) printf "%.3f", v+0;
    else if (v ~ /m$/) printf "%.3f", v*60000; else printf "%.3f", v*1000 }'
}
# run_wrk KEY TARGET CONNS: runs wrk, records rps, p50, p99, non-2xx, socket errors, CPU.
run_wrk() {
  local key=$1 t=$2 c=$3 f="$tmp/wrk-$1.txt" pids c0 c1 t0 t1
  case $t in
    racer) pids=$server_pid ;;
    nginx) pids=$nginx_workers ;;
    direct) pids=$up_pid ;;
  esac
  c0=$(cpu_ticks $pids); us; t0=$REPLY
  wrk -t2 -c"$c" -d"${duration}s" --latency -H "Host: $host_hdr" "${URL[$t]}" >"$f" 2>&1 || die "wrk failed: $(cat "$f")"
  c1=$(cpu_ticks $pids); us; t1=$REPLY
  R[$key.rps]=$(awk '/^Requests\/sec:/{printf "%.0f", $2}' "$f")
  R[$key.p50]=$(to_ms "$(awk '$1=="50%"{print $2}' "$f")")
  R[$key.p99]=$(to_ms "$(awk '$1=="99%"{print $2}' "$f")")
  R[$key.max]=$(to_ms "$(awk '$1=="Latency"{print $4}' "$f")")
  R[$key.non2xx]=$(awk '/Non-2xx or 3xx responses:/{print $NF}' "$f"); R[$key.non2xx]=${R[$key.non2xx]:-0}
  R[$key.sockerr]=$(awk '/Socket errors:/{gsub(",",""); print $4+$6+$8+$10}' "$f"); R[$key.sockerr]=${R[$key.sockerr]:-0}
  R[$key.reqs]=$(awk '/requests in/{print $1}' "$f")
  R[$key.sockerr_kind]=$(awk '/Socket errors:/{print $3, $4, $5, $6, $7, $8, $9, $10}' "$f")
  R[$key.cpu]=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v us=$((t1 - t0)) 'BEGIN{printf "%.0f", 100 * d / hz / (us / 1e6)}')
  R[$key.cpu_us]=$(awk -v d=$((c1 - c0)) -v hz="$hz" -v n="${R[$key.reqs]}" 'BEGIN{ if (n > 0) printf "%.1f", d / hz * 1e6 / n; else print "-" }')
  log "$(printf '%-16s %8s req/s  p50 %7s ms  p99 %7s ms  non-2xx %s  socket errors %s  CPU %s%% (%s µs/req)' \
    "$key" "${R[$key.rps]}" "${R[$key.p50]}" "${R[$key.p99]}" "${R[$key.non2xx]}" "${R[$key.sockerr]}" "${R[$key.cpu]}" "${R[$key.cpu_us]}")"
}

rss_before=""
rss_peak=0
for c in 16 256; do
  run_wrk "direct.c$c" direct "$c"
  for r in $(seq 1 "$rounds"); do
    if [ "$c" = 256 ]; then
      [ -n "$rss_before" ] || rss_before=$(rss_kib "$server_pid")
      ( peak=0
        while :; do v=$(rss_kib "$server_pid"); [ "$v" -le "$peak" ] || { peak=$v; echo "$peak" >"$tmp/rss-peak"; }; sleep 0.1; done ) &
      sampler_pid=$!
    fi
    run_wrk "racer.c$c.r$r" racer "$c"
    if [ "$c" = 256 ]; then
      kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null || true; sampler_pid=""
      v=$(cat "$tmp/rss-peak" 2>/dev/null || echo 0); [ "$v" -le "$rss_peak" ] || rss_peak=$v
    fi
    run_wrk "nginx.c$c.r$r" nginx "$c"
  done
  # each metric's median over the rounds (odd counts: a real round's value)
  for t in racer nginx; do
    for m in rps p50 p99 non2xx sockerr cpu cpu_us; do
      R[$t.c$c.$m]=$(for r in $(seq 1 "$rounds"); do echo "${R[$t.c$c.r$r.$m]}"; done | median)
    done
  done
done
sleep 1
rss_after=$(rss_kib "$server_pid")
nginx_rss=0; for p in $nginx_workers; do nginx_rss=$((nginx_rss + $(rss_kib "$p"))); done

perf_top=""
if [ "$do_perf" = 1 ] && command -v perf >/dev/null; then
  log "perf: recording racer-server during one more c=256 run"
  perf record -F 499 -g -p "$server_pid" -o "$tmp/perf.data" -- sleep "$duration" >/dev/null 2>&1 &
  perf_pid=$!
  run_wrk "racer.c256.perf" racer 256
  wait "$perf_pid" || true
  perf report -i "$tmp/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | sed 's/[[:space:]-]*$//' | head -25 >"$tmp/perf-top.txt" || true
  perf report -i "$tmp/perf.data" --no-children --sort dso --stdio 2>/dev/null \
    | grep -E '^ +[0-9.]+%' | sed 's/[[:space:]-]*$//' | head -8 >"$tmp/perf-dso.txt" || true
  perf_top=$(cat "$tmp/perf-top.txt")
  # syscalls and context switches per request, racer vs nginx, one more c=256 run each
  for t in racer nginx; do
    case $t in racer) pl=$server_pid ;; nginx) pl=$(tr ' ' ',' <<<"${nginx_workers% }") ;; esac
    perf stat -e raw_syscalls:sys_enter,context-switches -p "$pl" -x, -o "$tmp/pstat-$t.txt" -- sleep "$duration" >/dev/null 2>&1 &
    pstat_pid=$!
    run_wrk "$t.c256.pstat" "$t" 256
    wait "$pstat_pid" || true
    R[$t.sys_req]=$(awk -F, -v n="${R[$t.c256.pstat.reqs]}" '$3 ~ /sys_enter/ {printf "%.1f", $1 / n}' "$tmp/pstat-$t.txt")
    R[$t.cs_req]=$(awk -F, -v n="${R[$t.c256.pstat.reqs]}" '$3 ~ /context-switches/ {printf "%.2f", $1 / n}' "$tmp/pstat-$t.txt")
    log "perf stat $t: ${R[$t.sys_req]} syscalls and ${R[$t.cs_req]} context switches per request"
  done
  echo "--- perf: racer-server, self time by shared object" >&2; cat "$tmp/perf-dso.txt" >&2
  echo "--- perf: racer-server, top symbols (self)" >&2; cat "$tmp/perf-top.txt" >&2
fi

# ------------------------------------------------------------------------------------ 3. timings
# timed CMD...: runs racer with --json in the background, stamped; sets RPID, EV (file prefix).
timed() {
  EV="$tmp/ev-$1"; shift
  ( set +e
    "$racer" --data-dir "$data" --json "$@" 2>"$EV.err" </dev/null | stamp >"$EV"
    echo "${PIPESTATUS[0]}" >"$EV.rc"; echo "${EPOCHREALTIME/./}" >"$EV.end" ) &
  RPID=$!
}
done_field() { grep -m1 '"event":"done"' "$1" | cut -d' ' -f2- | jq -r "$2"; }
filters() { echo "{\"label\":[\"racer.install=$install_id\",\"racer.app.name=$app\",\"racer.release=$1\"],\"status\":[\"running\"]}"; }
log_time() { # first server-log line matching all the words -> µs
  local line
  line=$(server_log | grep -F -- "$1" | grep -F -m1 -- "$2" || true)
  [ -z "$line" ] || iso_us "$(awk '{print $1}' <<<"$line")"
}
retired_between() { # server-log "retiring drained replica" lines with a time in [A, B] µs -> count
  local a=$1 b=$2 n=0 ts t
  if [ -n "$a" ] && [ -n "$b" ]; then
    for ts in $(server_log | awk '/retiring drained replica/ {print $1}'); do
      t=$(iso_us "$ts"); [ "$t" -lt "$a" ] || [ "$t" -gt "$b" ] || n=$((n + 1))
    done
  fi
  echo "$n"
}
event_time() { # docker events: first ACTION of container NAME -> µs
  local ns
  ns=$(awk -v a="$1" -v n="$2" '$2 == a && $3 == n {print $1; exit}' "$tmp/docker-events")
  [ -z "$ns" ] || echo $((ns / 1000))
}

# (a) new replica -> first proxied request to it
for k in $(seq 1 "$reps"); do
  new=a$k-$run_id
  rel=$((release + 1))
  python3 "$tmp/poll.py" --proxy "127.0.0.1:$proxy_port" --host-header "$host_hdr" --want "\"$new from" \
    --docker-sock "$docker_sock" --filters "$(filters "$rel")" --deadline-s 60 \
    --api "${api_url#http://}" --token "$(cat "$data/admin.token")" --status-path "/api/v1/apps/$app/status" \
    --container "$app-$rel-0" >"$tmp/a$k.json" &
  poller_pid=$!
  us; t0=$REPLY
  timed "a$k" rerun --project-name "$app" --no-rebuild --env "GREETING=$new" --timeout 60
  wait "$RPID" || true
  wait "$poller_pid" || true; poller_pid=""
  [ "$(cat "$EV.rc")" = 0 ] || { cat "$EV.err" >&2; die "3a #$k: racer rerun failed"; }
  got=$(done_field "$EV" .deployment.release)
  [ "$got" = "$rel" ] || die "3a #$k: expected release $rel, got $got"
  release=$rel; greeting=$new
  j="$tmp/a$k.json"
  t_direct=$(jq -r '.t_direct // empty' "$j"); t_proxy=$(jq -r '.t_proxy // empty' "$j")
  [ -n "$t_proxy" ] || die "3a #$k: the proxy never served the new release: $(cat "$j")"
  [ -n "$t_direct" ] || log "3a #$k: WARNING: the direct poller saw no 200 from the new container: $(cat "$j")"
  t_start=$(event_time start "$app-$rel-0")
  t_replica=$(log_time "starting replica" "container=$app-$rel-0")
  t_healthy=$(jq -r '.t_healthy // empty' "$j")
  t_ip=$(jq -r '.t_ip // empty' "$j")
  # Any of these moments may be missing or come after the first proxied request (the reconciler
  # now checks a starting replica every 20 ms, often before the pollers see it): empty = not seen,
  # a negative gap is recorded as it is.
  R[a.$k.gap]=$(diff_us "$t_proxy" "$t_direct")
  R[a.$k.gap_healthy]=$(diff_us "$t_proxy" "$t_healthy")
  R[a.$k.gap_start]=$(diff_us "$t_proxy" "$t_start")
  R[a.$k.healthy]=$(diff_us "$t_healthy" "$t0")
  R[a.$k.direct]=$(diff_us "$t_direct" "$t0"); R[a.$k.proxy]=$((t_proxy - t0)); R[a.$k.start]=$(diff_us "$t_start" "$t0")
  R[a.$k.replica]=$(diff_us "$t_replica" "$t0"); R[a.$k.exit]=$(($(cat "$EV.end") - t0))
  R[a.$k.ip]=$(diff_us "$t_ip" "$t0"); R[a.$k.dpolls]=$(jq -r '.direct_polls // "-"' "$j")
  R[a.$k.non200]=$(jq -r '.proxy_non200 // 0' "$j")
  R[a.$k.retired]=$(retired_between "$t_start" "$t_proxy")
  R[a.$k.start_direct]=$(diff_us "$t_direct" "$t_start")
  log "$(printf '3a #%d release %s: server starts replica %s ms, engine start %s, IP seen %s (%s direct polls), first direct 200 %s, status says healthy %s, first proxied 200 %s, CLI exit %s; gap %s ms (from engine start %s ms, from healthy %s ms); drained replicas retired in between %s; proxy non-200 %s' \
    "$k" "$rel" "$(ms_of "${R[a.$k.replica]}")" "$(ms_of "${R[a.$k.start]}")" "$(ms_of "${R[a.$k.ip]}")" "${R[a.$k.dpolls]}" \
    "$(ms_of "${R[a.$k.direct]}")" "$(ms_of "${R[a.$k.healthy]}")" "$(ms_of "${R[a.$k.proxy]}")" "$(ms_of "${R[a.$k.exit]}")" "$(gap1 "${R[a.$k.gap]}")" \
    "$(gap1 "${R[a.$k.gap_start]}")" "$(ms1 "${R[a.$k.gap_healthy]}")" "${R[a.$k.retired]}" "${R[a.$k.non200]}")"
done

# (c) rollback -> proxy serves the old release
for k in $(seq 1 "$reps"); do
  old=$greeting
  new=c$k-$run_id
  "$racer" --data-dir "$data" rerun --project-name "$app" --no-rebuild --env "GREETING=$new" --timeout 60 \
    >/dev/null 2>"$tmp/c.err" </dev/null || { cat "$tmp/c.err" >&2; die "3c #$k: rerun failed"; }
  release=$((release + 1))
  python3 "$tmp/poll.py" --proxy "127.0.0.1:$proxy_port" --host-header "$host_hdr" --want "\"$old from" \
    --deadline-s 60 >"$tmp/c$k.json" &
  poller_pid=$!
  us; t0=$REPLY
  timed "c$k" rollback --project-name "$app" --timeout 60
  wait "$RPID" || true
  wait "$poller_pid" || true; poller_pid=""
  [ "$(cat "$EV.rc")" = 0 ] || { cat "$EV.err" >&2; die "3c #$k: racer rollback failed"; }
  release=$(done_field "$EV" .deployment.release)
  greeting=$old
  t_proxy=$(jq -r '.t_proxy // empty' "$tmp/c$k.json")
  [ -n "$t_proxy" ] || die "3c #$k: the proxy never served $old: $(cat "$tmp/c$k.json")"
  t_start=$(event_time start "$app-$release-0")
  R[c.$k.proxy]=$((t_proxy - t0)); R[c.$k.exit]=$(($(cat "$EV.end") - t0))
  R[c.$k.start]=$(( ${t_start:-$t0} - t0 )); R[c.$k.non200]=$(jq -r .proxy_non200 "$tmp/c$k.json")
  R[c.$k.retired]=$(retired_between "$t_start" "$t_proxy")
  R[c.$k.gap_start]=$(diff_us "$t_proxy" "$t_start")
  log "$(printf '3c #%d rollback to a copy (release %s): engine start %s ms, proxy serves the old GREETING %s ms, CLI exit %s ms; drained replicas retired in between %s; proxy non-200 %s' \
    "$k" "$release" "$(ms_of "${R[c.$k.start]}")" "$(ms_of "${R[c.$k.proxy]}")" "$(ms_of "${R[c.$k.exit]}")" "${R[c.$k.retired]}" "${R[c.$k.non200]}")"
done

# (b) a release that never listens -> automatic rollback after the 5 s deadline
cp /bin/busybox "$tmp/silent/busybox"
printf 'FROM scratch\nLABEL racer-bench.run=%s\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\nCMD ["sleep", "3600"]\n' \
  "$run_id" >"$tmp/silent/Dockerfile"
docker build -q -t "$silent_image" "$tmp/silent" >/dev/null 2>"$tmp/silent.err" || { cat "$tmp/silent.err" >&2; die "docker build of the silent image failed"; }
b_reps=2
serving_release=$(curl -s -m 2 -H "Host: $host_hdr" "${URL[racer]}" | jq -r .release)
for k in $(seq 1 "$b_reps"); do
  rel=$((release + 1))
  # Let the previous rollout's leftovers go first (a draining replica of a failed release counts
  # as "the release still running" for the next rollback): wait until only one container is left.
  for i in $(seq 1 300); do
    n=$(docker ps -aq --filter "label=racer.install=$install_id" | wc -l)
    [ "$n" -gt 1 ] || break
    sleep 0.1
  done
  rm -f "$tmp/b.stop"
  python3 "$tmp/poll.py" --proxy "127.0.0.1:$proxy_port" --host-header "$host_hdr" --stop-file "$tmp/b.stop" \
    --period-ms 5 --deadline-s 90 >"$tmp/b$k.json" &
  poller_pid=$!
  us; t0=$REPLY
  timed "b$k" run --project-name "$app" --image "$silent_image" --app-port 8000 --timeout 60
  wait "$RPID" || true
  touch "$tmp/b.stop"; wait "$poller_pid" || true; poller_pid=""
  [ "$(cat "$EV.rc")" != 0 ] || die "3b #$k: racer run of a release that never listens exited 0"
  st=$(done_field "$EV" .deployment.status); got=$(done_field "$EV" .deployment.release)
  [ "$st" = rolled_back ] || [ "$st" = failed ] || die "3b #$k: deployment is $st, not rolled_back"
  [ "$got" = "$rel" ] || die "3b #$k: expected release $rel, got $got"
  release=$rel; R[b.$k.status]=$st
  err=$(done_field "$EV" .deployment.error)
  t_rolling=$(log_time "release recorded" "release=$rel")
  [ -n "$t_rolling" ] || die "3b #$k: no 'release recorded' line for release $rel in the server log"
  t_deadline=$((t_rolling + 5000000))
  t_failed=$(iso_us "$(done_field "$EV" .deployment.updated_at)")
  R[b.$k.failed]=$((t_failed - t_deadline)); R[b.$k.exit]=$(($(cat "$EV.end") - t_deadline))
  R[b.$k.total]=$(($(cat "$EV.end") - t0)); R[b.$k.non200]=$(jq -r .proxy_non200 "$tmp/b$k.json")
  R[b.$k.polls]=$(jq -r .proxy_polls "$tmp/b$k.json")
  R[b.$k.app_release]=$("$racer" --data-dir "$data" status --project-name "$app" --json | jq -r .app.release)
  [ "${R[b.$k.app_release]}" = "$serving_release" ] \
    || log "3b #$k: WARNING: the app now points at release ${R[b.$k.app_release]}, not $serving_release (the release that served before)"
  body=$(curl -s -m 2 -H "Host: $host_hdr" "${URL[racer]}")
  [[ $body == *"\"$greeting from"* ]] || die "3b #$k: after the rollback the proxy serves: $body"
  log "$(printf '3b #%d release %s: deadline at +%s ms; marked %s %s ms after it, racer run exits %s ms after it; proxy non-200 %s of %s polls; %s' \
    "$k" "$rel" "$(ms_of $((t_deadline - t0)))" "$st" "$(ms_of "${R[b.$k.failed]}")" "$(ms_of "${R[b.$k.exit]}")" "${R[b.$k.non200]}" "${R[b.$k.polls]}" "$err")"
done

# ------------------------------------------------------------------------------------ the report
# vals: the recorded values, one a line; moments not observed (empty) are left out.
vals() { local p=$1 n=$2 m=$3 k; for k in $(seq 1 "$n"); do echo "${R[$p.$k.$m]:-}"; done | grep . || true; }
# ms_list P N M [FORMATTER]: every repetition's value, "-" where not observed
ms_list() { local p=$1 n=$2 m=$3 f=${4:-ms1} k out=(); for k in $(seq 1 "$n"); do out+=("$($f "${R[$p.$k.$m]:-}")"); done; (IFS=,; echo "${out[*]}"); }
nvals() { vals "$@" | wc -l; }
a_med=$(vals a "$reps" gap | median); a_max=$(vals a "$reps" gap | maxv); a_min=$(vals a "$reps" gap | minv)
a_n=$(nvals a "$reps" gap); a_le0=$(vals a "$reps" gap | awk '$1 <= 0' | wc -l)
as_med=$(vals a "$reps" gap_start | median); as_min=$(vals a "$reps" gap_start | minv); as_max=$(vals a "$reps" gap_start | maxv)
as_n=$(nvals a "$reps" gap_start)
ah_med=$(vals a "$reps" gap_healthy | median); ah_min=$(vals a "$reps" gap_healthy | minv); ah_max=$(vals a "$reps" gap_healthy | maxv)
ah_n=$(nvals a "$reps" gap_healthy)
c_med=$(vals c "$reps" proxy | median); c_max=$(vals c "$reps" proxy | maxv)
ce_med=$(vals c "$reps" exit | median)
a_ret_reps=$(for k in $(seq 1 "$reps"); do [ "${R[a.$k.retired]}" = 0 ] || printf '#%s (gap %s ms) ' "$k" "$(gap1 "${R[a.$k.gap]:-}")"; done)
a_ret_reps=${a_ret_reps% }
c_ret=0; c_ret_l=(); c_noret_l=()
for k in $(seq 1 "$reps"); do
  if [ "${R[c.$k.retired]}" -gt 0 ]; then c_ret=$((c_ret + 1)); c_ret_l+=("${R[c.$k.gap_start]:-}")
  else c_noret_l+=("${R[c.$k.gap_start]:-}"); fi
done
c_ret_med=$(printf '%s\n' "${c_ret_l[@]}" | grep . | median || true)
c_noret_med=$(printf '%s\n' "${c_noret_l[@]}" | grep . | median || true)
b_fmax=$(vals b "$b_reps" failed | maxv); b_emax=$(vals b "$b_reps" exit | maxv)
non200_timing=0
for k in $(seq 1 "$reps"); do non200_timing=$((non200_timing + R[a.$k.non200] + R[c.$k.non200])); done
for k in $(seq 1 "$b_reps"); do non200_timing=$((non200_timing + R[b.$k.non200])); done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
le() { awk -v v="$1" -v t="$2" 'BEGIN{print (v == "") ? "n/a" : (v <= t) ? "PASS" : "MISS"}'; }
ge() { awk -v v="$1" -v t="$2" 'BEGIN{print (v >= t) ? "PASS" : "MISS"}'; }
fmt() { printf "%'d" "$1" 2>/dev/null || echo "$1"; }
rss_added=$((rss_peak - rss_before))

table() {
  echo "| Metric | Target | racer proxy | nginx | direct (no proxy) | racer / nginx | Result |"
  echo "|---|---|---|---|---|---|---|"
  local c rr rn
  for c in 16 256; do
    rr=$(ratio "${R[racer.c$c.rps]}" "${R[nginx.c$c.rps]}")
    echo "| c=$c req/s | ≥ 1.0× nginx | ${R[racer.c$c.rps]} | ${R[nginx.c$c.rps]} | ${R[direct.c$c.rps]} | ${rr}× | $(ge "$rr" 1.0) |"
    echo "| c=$c p50 | — | ${R[racer.c$c.p50]} ms | ${R[nginx.c$c.p50]} ms | ${R[direct.c$c.p50]} ms | $(ratio "${R[racer.c$c.p50]}" "${R[nginx.c$c.p50]}")× | info |"
    rn=$(ratio "${R[racer.c$c.p99]}" "${R[nginx.c$c.p99]}")
    echo "| c=$c p99 | ≤ 1.2× nginx | ${R[racer.c$c.p99]} ms | ${R[nginx.c$c.p99]} ms | ${R[direct.c$c.p99]} ms | ${rn}× | $(le "$rn" 1.2) |"
    echo "| c=$c proxy CPU (of 200%) · µs/req | — | ${R[racer.c$c.cpu]}% · ${R[racer.c$c.cpu_us]} | ${R[nginx.c$c.cpu]}% · ${R[nginx.c$c.cpu_us]} | upstream ${R[direct.c$c.cpu]}% · ${R[direct.c$c.cpu_us]} | $(ratio "${R[racer.c$c.cpu_us]}" "${R[nginx.c$c.cpu_us]}")× | info |"
  done
  local bad=0 k t
  for k in "${!R[@]}"; do
    case $k in racer.c*.r*.non2xx|racer.c*.r*.sockerr) bad=$((bad + R[$k])) ;; esac
  done
  echo "| non-2xx + socket errors, all wrk runs (target: racer's) | 0 | $(for t in racer nginx; do s=0; for c in 16 256; do for r in $(seq 1 "$rounds"); do s=$((s + R[$t.c$c.r$r.non2xx] + R[$t.c$c.r$r.sockerr])); done; done; printf '%s | ' "$s"; done)$((R[direct.c16.non2xx] + R[direct.c16.sockerr] + R[direct.c256.non2xx] + R[direct.c256.sockerr])) | — | $([ "$bad" = 0 ] && echo PASS || echo MISS) |"
  echo "| racer-server RSS added by c=256 (peak − before) | ≤ 30 MiB | $(mib "$rss_added") MiB ($(mib "$rss_before") → peak $(mib "$rss_peak"), 1 s after $(mib "$rss_after"); idle after deploy $(mib "$rss_idle")) | workers $(mib "$nginx_rss") MiB after | — | — | $(le "$rss_added" 30720) |"
  echo "| 3a. new replica answers on its IP → first proxied request to it, median (min–max) of $a_n; ≤ 0 = the proxy served it before the direct poller's first 200 | ≤ 10 ms | $(gap1 "$a_med") ms ($(gap1 "$a_min") – $(gap1 "$a_max")); $a_le0 of $a_n ≤ 0. Upper bound, from the engine's start event: $(ms1 "$as_med") ms ($(ms1 "$as_min")–$(ms1 "$as_max")) | — | — | — | $(le "$a_med" 10000) |"
  echo "| 3a'. diagnostic: status API first shows the new replica healthy (polled every 10 ms) → first proxied request, median (min–max) of $ah_n | — | $(ms1 "$ah_med") ms ($(ms1 "$ah_min")–$(ms1 "$ah_max")) | — | — | — | info |"
  echo "| 3b. health deadline expired → deployment failed + rolled back / \`racer run\` exits, max of $b_reps | ≤ 10 s | $(ms_of "$b_fmax") ms / $(ms_of "$b_emax") ms | — | — | — | $(le "$b_emax" 10000000) |"
  echo "| 3c. \`racer rollback\` → proxy serves the old GREETING, median (max) | ≤ 3 s | $(ms_of "$c_med") ms ($(ms_of "$c_max")) | — | — | — | $(le "$c_max" 3000000) |"
  echo "| failed proxied requests during 3a–3c (polls every 2–5 ms) | 0 | $non200_timing | — | — | — | $([ "$non200_timing" = 0 ] && echo PASS || echo MISS) |"
}

rounds_detail() {
  local c t r line
  for c in 16 256; do
    for t in racer nginx; do
      line="c=$c $t:"
      for r in $(seq 1 "$rounds"); do line+=" ${R[$t.c$c.r$r.rps]} req/s p99 ${R[$t.c$c.r$r.p99]} ms max ${R[$t.c$c.r$r.max]} ms;"; done
      echo "  ${line%;} (median: ${R[$t.c$c.rps]} req/s, p99 ${R[$t.c$c.p99]} ms)"
    done
  done
}

now=$(date -u '+%Y-%m-%d %H:%M UTC')
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$root" status --porcelain -- crates 2>/dev/null | grep -q . && echo " (+ uncommitted changes in crates/)" || true)
# RACER_BIN_DESC describes binaries built elsewhere (e.g. from a clean export of one commit).
if [ -n "${RACER_BIN_DESC:-}" ]; then build_line="binaries: $RACER_BIN_DESC"
else build_line="commit $commit$dirty; binaries from ${RACER_BIN_DIR:-target/dist}"; fi
cpu_model=$(awk -F': ' '/^model name/{print $2; exit}' /proc/cpuinfo)
mem_total=$(awk '/^MemTotal:/{printf "%.1f GiB", $2/1024/1024}' /proc/meminfo)
docker_version=$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo unknown)
wrk_version=$(wrk -v 2>&1 | head -1 | awk '{print $2}' || true)
n_workers=$(wc -w <<<"$nginx_workers")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

section() {
  cat <<EOF
## Proxy (issue 5)

Reproduce (from the repository root; nginx from Debian: \`apt-get install -y nginx-light\`):

\`\`\`sh
cargo build --profile dist --bins && scripts/build-example.sh && scripts/bench-proxy.sh --write
\`\`\`

- Date: $now; $build_line
- Machine: nproc $(nproc), RAM $mem_total, kernel $(uname -r), CPU $cpu_model, autogroup $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo -) (racer-server and nginx each run in a session of their own, wrk in the script's)
- Tools: wrk $wrk_version, nginx $nginx_version, Docker engine $docker_version, python3 $(python3 -c 'import platform; print(platform.python_version())')
- Load average (1/5/15 min) at the start: $load_start; at the end: $load_end. The machine is shared.
- **All $(nproc) cores are shared by wrk, the proxy under test, and the upstream container.** wrk
  (2 threads) and the upstream take CPU from the proxy, so these are figures for this box, not
  each proxy's ceiling. The upstream (examples/hello) is a thread-per-connection std server.

What is measured. 1: one app (examples/hello, 1 replica, \`GREETING=…\`), reached three ways
with the same request (\`GET /\`, \`Host: <app>.localhost:<port>\`, ${R[body.racer]}-byte JSON
answer): racer's proxy (host routing), nginx, and the replica directly. Both proxies use the
replica's container IP:8000 as their one upstream, the address in racer's route table. nginx: \`worker_processes auto\` ($n_workers
workers, as racer-server's proxy runs one event loop per core, $(nproc) threads), \`upstream { keepalive 256; }\`,
\`proxy_http_version 1.1\`, \`proxy_set_header Connection ""\`, \`keepalive_requests 1000000\`
(client and upstream), \`access_log off\`, and it adds the same X-Forwarded-For/-Proto/-Host and
X-Request-Id headers racer adds. Each target answers 200 with the app's body before the load.
\`wrk -t2 -cN -d${duration}s --latency\`: direct once, then $rounds rounds of (racer, nginx) in turn; each
proxy's median over the rounds, metric by metric, is in the table (all rounds below). CPU is the proxy's user+system time
during the run (nginx: its workers; direct: the upstream process), per request completed.
2: racer-server VmRSS just before the first c=256 run through it, the peak sampled every 100 ms
during the c=256 runs, and 1 s after. 3: python3 pollers, one fresh connection per poll every
2 ms (the engine's container list every 5 ms for the new replica's IP). 3a: \`racer rerun
--no-rebuild --env GREETING=new\`, $reps times; one poller polls the new container's IP:8000 until
it answers, another polls the proxy until the body shows the new GREETING; the gap is between the
two first successes. (The new container usually answers already at the first direct poll, so its
first direct 200 is late, not early: the gap is a lower bound. "From engine start" uses the
\`docker events\` start instead: an upper bound.) 3b: server started with \`--rollout-deadline 5\`;
\`racer run --image\` of a FROM scratch busybox image running \`sleep 3600\` (never listens),
$b_reps times; the deadline is 5 s after the server log's "release recorded" line (the same
transaction sets the deployment rolling out); "failed" is the deployment's \`updated_at\`; the
proxy is polled every 5 ms throughout. 3c: \`racer rerun --no-rebuild --env GREETING=new\`, then
\`racer rollback\` (timed), $reps times; polls the proxy until the previous GREETING is back.

$(table)

Rounds (req/s, p99 and the slowest request of every wrk run through a proxy):

$(rounds_detail)

3a per repetition, gap (ms): $(ms_list a "$reps" gap gap1); from engine start: $(ms_list a "$reps" gap_start); from "healthy" in the status API: $(ms_list a "$reps" gap_healthy) ("-": not observed).
Moments in 3a, medians in ms after \`racer rerun\` started: server log "starting replica"
$(ms_of "$(vals a "$reps" replica | median)"), engine start $(ms_of "$(vals a "$reps" start | median)"), first direct 200 $(ms_of "$(vals a "$reps" direct | median)"),
first proxied 200 of the new release $(ms_of "$(vals a "$reps" proxy | median)"), CLI exits $(ms_of "$(vals a "$reps" exit | median)").
3b per repetition, after the deadline (ms): failed $(ms_list b "$b_reps" failed | sed 's/\.[0-9]//g'); \`racer run\` exits $(ms_list b "$b_reps" exit | sed 's/\.[0-9]//g').
3c per repetition, old GREETING served (ms): $(ms_list c "$reps" proxy | sed 's/\.[0-9]//g'); CLI exits: $(ms_list c "$reps" exit | sed 's/\.[0-9]//g').

Notes:

$(notes)

EOF
}

notes() {
  local r16 r256 cpu_ratio
  r16=$(ratio "${R[racer.c16.rps]}" "${R[nginx.c16.rps]}"); r256=$(ratio "${R[racer.c256.rps]}" "${R[nginx.c256.rps]}")
  cpu_ratio=$(ratio "${R[racer.c256.cpu_us]}" "${R[nginx.c256.cpu_us]}")
  cat <<EOF
- **Throughput (1.)** is decided by CPU per request: wrk, the proxy and the upstream share $(nproc)
  cores, so the proxy that needs less CPU per request leaves more for the other two. racer's proxy
  used ${R[racer.c16.cpu_us]} µs (c=16) / ${R[racer.c256.cpu_us]} µs (c=256) of CPU per request, nginx
  ${R[nginx.c16.cpu_us]} / ${R[nginx.c256.cpu_us]} µs (${cpu_ratio}× at c=256); req/s racer/nginx: ${r16}× and ${r256}×.
EOF
  if [ -n "${R[racer.sys_req]:-}" ]; then
    cat <<EOF
  Per request at c=256 (\`perf stat\`): racer-server ${R[racer.sys_req]} syscalls and ${R[racer.cs_req]} context
  switches, nginx's workers ${R[nginx.sys_req]} and ${R[nginx.cs_req]}. racer-server's CPU by shared object
  (\`perf record\`): $(awk '{printf "%s%s %s", (NR>1?", ":""), $2, $1}' "$tmp/perf-dso.txt").
EOF
  fi
  cat <<EOF
  The work per request (crates/proxy/src/lib.rs, \`Proxy::route\`): the app is looked up by a name
  borrowed from the Host header or path (no copies), the client's request target goes upstream
  as it is (path routing: the tail after the prefix), X-Forwarded-For is formatted once per client
  connection, and X-Request-Id is a per-process random prefix plus a counter. The request goes out
  on an idle keep-alive connection from the replica's own pool (crates/proxy/src/upstream.rs;
  popped under a lock held only for the pop), and the task serving the client drives that
  upstream connection itself, while the request is written and while the response streams back;
  the connection returns to the pool when the body ends. So each proxied request is handled in one
  task, as nginx handles the client and upstream sockets in one event loop per worker, with no
  channel handoff to a connection task. And each of the proxy's $(nproc) threads runs its own
  single-threaded runtime accepting from the same listening socket (\`Proxy::serve_threads\`),
  so a connection, its requests and its upstream connections stay on one thread, as in an nginx
  worker (a multi-threaded runtime would move wake-ups between its workers); a thread that accepts
  a connection while another serves fewer hands it over once, at accept, since a burst of new
  connections otherwise lands on whichever thread woke first (seen: 143 against 14 CPU ticks).
  Rounds are noisy on this shared machine; see the rounds
  above.
- **Errors**: $(e=""; for k in "${!R[@]}"; do case $k in *.sockerr) [ "${R[$k]}" = 0 ] || e+="${k%.sockerr}: ${R[${k%.sockerr}.sockerr_kind]}; " ;; esac; done; echo "${e:-no socket errors in any wrk run.}")
  wrk counts a socket error when a connection fails or a response takes over 2 s (a timeout).
- **p99**: racer's p99 is ${R[racer.c16.p99]} / ${R[racer.c256.p99]} ms against nginx's ${R[nginx.c16.p99]} /
  ${R[nginx.c256.p99]} ms (c=16 / c=256); direct at c=256: ${R[direct.c256.p99]} ms. $(awk -v d="${R[direct.c256.p99]}" \
    -v r="${R[racer.c256.p99]}" -v n="${R[nginx.c256.p99]}" 'BEGIN{ if (d > r && d > n)
    print "The direct runs at c=256 have the worst p99: the upstream runs one OS thread per\n  connection, 256 of them, while both proxies reuse fewer upstream connections.";
    else print "Single wrk runs on this shared machine put a few requests behind other processes\n  (p99 varies several-fold between rounds; see the rounds above)." }')
- **3a (new replica → first proxied request)**: the route table changes only in a reconciler pass.
  The pass after the one that started a container (2 ms later) reads it from the engine (one
  inspect) and hands it to the health checker (crates/control/src/probe.rs), which checks a
  replica started within the last 3 s every 2 ms until it first passes
  (\`racer_core::health::check_interval\`), then wakes the reconciler, whose pass swaps the routes.
  The replica answers within a few ms of the engine's start event (first direct 200 median
  $(ms1 "$(vals a "$reps" start_direct | median)") ms after it); the proxy's first request to it came a median $(gap1 "$a_med") ms
  after the direct poller's first 200 ($(gap1 "$a_min") to $(gap1 "$a_max"); $a_le0 of $a_n ≤ 0), median $(ms1 "$as_med") ms
  ($(ms1 "$as_min")–$(ms1 "$as_max")) after the start event. A gap ≤ 0 is reported as such, not dropped: it means the
  proxy served the new GREETING before the direct poller (which first has to find the container's
  IP in the engine's list, every 5 ms) got its first 200; the gap bounds the delay from below, the
  start-event figure from above. 3a' (status API "healthy" → first proxied request; negative = the proxy came first;
  the poller keeps polling the status API for 3 s after the proxy served the new release): median
  $(ms1 "$ah_med") ms, $(ms1 "$ah_min") to $(ms1 "$ah_max"), $ah_n of $reps seen. Repetitions where the server log has a
  "retiring drained replica" line between the start event and the first proxied request:
  ${a_ret_reps:-none}. Without one, "healthy" and the first proxied request are within one 10 ms
  status poll of each other (the checker records the replica healthy and wakes the reconciler,
  whose next pass swaps the routes); with one, that pass first stops and removes the drained
  container, and only then swaps the routes (as in 3c below).
- **3b (rollback after the deadline)**: the reconciler checks the deadline on every pass (every
  100 ms while the rollout has fewer healthy replicas than wanted), the CLI polls the deployment
  every 50 ms. The deployment ends \`$(vals b "$b_reps" status | sort -u | paste -sd/)\` (earlier builds: \`failed\`); "failed" above is
  its \`updated_at\`. The proxy's failed requests during 3a–3c, polled every 2–5 ms: $non200_timing.
EOF
  local k warn=""
  for k in $(seq 1 "$b_reps"); do
    [ "${R[b.$k.app_release]}" = "$serving_release" ] || warn+=" #$k: release ${R[b.$k.app_release]}"
  done
  [ -z "$warn" ] || cat <<EOF
  **Warning**: after a failed rollout the app pointed at a release other than the one that
  served before ($serving_release):$warn.
EOF
  cat <<EOF
  The bench waits until the failed replica is gone before each repetition and checks that the
  app points at the release that served before. (In a dry run on commit 40f37e3 binaries, a
  second failed deploy within the first one's 2 s drain "rolled back to release 8", the first
  failed release: the target was the newest release among the app's other containers.)
- **3c (\`racer rollback\`)** makes a new release with the old image and config, so a new container
  starts. Of the $(ms_of "$c_med") ms, the engine's start event comes at
  $(ms_of "$(vals c "$reps" start | median)") ms (median), and the proxy serves the new replica $(ms1 "$(vals c "$reps" gap_start | median)") ms after the start event
  (median; per repetition $(ms_list c "$reps" gap_start)). In $c_ret of $reps repetitions the server log has a
  "retiring drained replica" line between the two: a replica taken out of rotation 2 s earlier
  (3c runs a rerun and a rollback per repetition, so an earlier rollout's drain ends about then).
  The pass that admits the new replica first stops and removes the drained container (\`docker
  stop\` and remove, ~100–150 ms) and only then swaps the routes, so the new replica joins that
  much later: median $(ms1 "$c_ret_med") ms after the start event with such a retirement, $(ms1 "$c_noret_med") ms without.
  The CLI returns at $(ms_of "$ce_med") ms (median).
EOF
}

out="$tmp/section.md"
section >"$out"
if [ -n "$perf_top" ]; then
  { echo "perf (racer-server during one more c=256 run; self time by shared object, then top symbols):"; echo
    echo '```'; cat "$tmp/perf-dso.txt"; echo; cat "$tmp/perf-top.txt"; echo '```'; echo; } >"$tmp/perf.md"
fi
echo
cat "$out"
[ ! -f "$tmp/perf.md" ] || cat "$tmp/perf.md"
[ -z "${BENCH_PROXY_OUT:-}" ] || cat "$out" "$tmp/perf.md" >"$BENCH_PROXY_OUT" 2>/dev/null || true

if [ "$write" = 1 ]; then
  doc="$root/docs/BENCHMARKS.md"
  [ -f "$doc" ] || die "$doc missing"
  awk -v secfile="$out" '
    function emit(  l) { while ((getline l < secfile) > 0) print l; close(secfile); done = 1 }
    /^## / { if (skip) skip = 0 }
    /^## Proxy \(issue 5\)[[:space:]]*$/ { emit(); skip = 1; next }
    !skip { print }
    END { if (!done) { print ""; emit() } }
  ' "$doc" | cat -s >"$doc.bench-proxy.tmp"
  mv "$doc.bench-proxy.tmp" "$doc"
  log "wrote the section \"## Proxy (issue 5)\" of $doc"
fi
