#!/usr/bin/env bash
# TLS at the proxy vs nginx (issue 19), in one run: one fresh server (SQLite) serving HTTPS with
# a certificate from files, the bundled example (1 replica), and nginx from Debian terminating
# TLS with the SAME certificate and key in front of the SAME upstream (the replica's container
# IP:8000, which racer's route table points at). Both: TLS 1.3, ECDSA P-256, one worker/thread
# per core, no session resumption (wrk's client does not resume). For each, --rounds rounds
# taking turns, each metric's median:
#   handshakes/s  wrk -c16 with `Connection: close`: every request a new TCP connection and a
#                 full TLS handshake
#   req/s         wrk -c16 and -c256 kept alive over TLS
# Prints the table with racer/nginx ratios (goal >= 1.0).
#
# Usage: cargo build --profile dist --bins && scripts/build-example.sh && scripts/bench-tls.sh [--duration S] [--rounds N]
# Needs: docker, wrk, nginx (apt-get install -y nginx-light), openssl, curl, jq.
# Environment: RACER_BIN_DIR (default target/dist).
set -euo pipefail
export LC_ALL=C
root=$(cd "$(dirname "$0")/.." && pwd)
bin_dir=${RACER_BIN_DIR:-$root/target/dist}
duration=10
rounds=3
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "bench-tls: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $duration =~ ^[1-9][0-9]?$ ]] || { echo "bench-tls: --duration must be 1-99" >&2; exit 2; }
[[ $rounds =~ ^[1-9]$ ]] || { echo "bench-tls: --rounds must be 1-9" >&2; exit 2; }
die() { echo "bench-tls: FAIL: $*" >&2; exit 1; }
log() { echo "bench-tls: $*" >&2; }
for b in racer racerctl racer-server; do
  [ -x "$bin_dir/$b" ] || die "$bin_dir/$b missing; run: cargo build --profile dist --bins"
done
for t in docker curl jq wrk openssl; do command -v "$t" >/dev/null || die "$t is not installed"; done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || die "nginx is not installed (apt-get install -y nginx-light)"
[ -x "$root/examples/hello/hello" ] || "$root/scripts/build-example.sh"

tmp=$(mktemp -d /tmp/racer-bench-tls.XXXXXX)
data=$tmp/data
install_id=""
cleanup() {
  local rc=$?
  set +e
  if [ -s "$tmp/nginx/nginx.pid" ]; then kill "$(cat "$tmp/nginx/nginx.pid")" 2>/dev/null; fi
  "$tmp/bin/racerctl" server stop >/dev/null 2>&1
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
mkdir -p "$tmp/bin" "$tmp/app" "$tmp/certs" "$tmp/nginx/tmp"
cp "$bin_dir/racer" "$bin_dir/racerctl" "$bin_dir/racer-server" "$tmp/bin/"
cp "$root/examples/hello/Dockerfile" "$root/examples/hello/.dockerignore" "$root/examples/hello/hello" "$tmp/app/"

# One certificate for both: web.localhost and 127.0.0.1, ECDSA P-256, self-signed (wrk does not
# verify).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=web.localhost -addext "subjectAltName=DNS:web.localhost,IP:127.0.0.1" \
  -keyout "$tmp/certs/key.pem" -out "$tmp/certs/cert.pem" 2>/dev/null

export RACER_DATA_DIR=$data
"$tmp/bin/racerctl" server start --port 0 --proxy-port 0 --tls-port 0 \
  --tls-cert "$tmp/certs/cert.pem" --tls-key "$tmp/certs/key.pem" --no-https-redirect >/dev/null
tls_url=$(jq -r .tls_url "$data/server.json")
install_id=$("$tmp/bin/racerctl" info --json | jq -r .install_id)
"$tmp/bin/racer" run --project-name web --path "$tmp/app" >/dev/null
racer_url="${tls_url/127.0.0.1/127.0.0.1}/apps/web/"
curl -fsSk -o /dev/null "$racer_url" || die "racer does not answer over TLS at $racer_url"
cid=$(docker ps -q --filter "label=racer.install=$install_id" | head -1)
up_ip=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$cid")
[ -n "$up_ip" ] || die "no container IP"

nginx_port=""
for i in $(seq 1 200); do
  p=$((20000 + RANDOM % 10000))
  if ! ss -Htln "sport = :$p" 2>/dev/null | grep -q .; then nginx_port=$p; break; fi
done
[ -n "$nginx_port" ] || die "no free port for nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
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
  upstream app { server $up_ip:8000; keepalive 256; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:$nginx_port ssl;
    ssl_certificate $tmp/certs/cert.pem;
    ssl_certificate_key $tmp/certs/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host \$http_host;
      proxy_set_header X-Request-Id \$request_id;
    }
  }
}
EOF
"$nginx_bin" -t -q -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" 2>"$tmp/nginx/t.err" \
  || { cat "$tmp/nginx/t.err" >&2; die "nginx rejects its config"; }
setsid "$nginx_bin" -p "$tmp/nginx" -e "$tmp/nginx/error.log" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
  >"$tmp/nginx/out" 2>&1 </dev/null &
for i in $(seq 1 100); do [ -s "$tmp/nginx/nginx.pid" ] && break; sleep 0.05; done
nginx_url="https://127.0.0.1:$nginx_port/"
curl -fsSk -o /dev/null "$nginx_url" || die "nginx does not answer over TLS"
log "racer at $racer_url, nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') at $nginx_url, upstream $up_ip:8000"

declare -A R
# wrk → requests/s and non-2xx + socket errors
run_wrk() { # name url conns extra-header...
  local name=$1 url=$2 c=$3
  shift 3
  local out
  out=$(wrk -t2 -c"$c" -d"${duration}s" --timeout 10s "$@" "$url" 2>&1)
  R[$name]=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
  local e
  e=$(awk '/Socket errors/{gsub(",","");n+=$4+$6+$8+$10} /Non-2xx/{n+=$5} END{print n+0}' <<<"$out")
  R[$name.err]=${e:-0}
}
median() { sort -g | awk '{a[NR]=$1} END{if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
for r in $(seq 1 "$rounds"); do
  for t in racer nginx; do
    url=$racer_url
    [ "$t" = nginx ] && url=$nginx_url
    log "round $r: $t"
    run_wrk "$t.hs.$r" "$url" 16 -H "Connection: close"
    run_wrk "$t.c16.$r" "$url" 16
    run_wrk "$t.c256.$r" "$url" 256
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.2f", a/b; else print "-"}'; }
echo
echo "| Metric (median of $rounds × ${duration}s) | racer | nginx | racer / nginx |"
echo "| --- | --- | --- | --- |"
errs=0
for m in hs c16 c256; do
  for t in racer nginx; do
    R[$t.$m]=$(for r in $(seq 1 "$rounds"); do echo "${R[$t.$m.$r]}"; errs=$((errs + ${R[$t.$m.$r.err]:-0})); done | median)
  done
  case $m in
    hs) label="TLS handshakes/s (new connection per request, c=16)" ;;
    c16) label="TLS req/s, kept alive, c=16" ;;
    c256) label="TLS req/s, kept alive, c=256" ;;
  esac
  echo "| $label | ${R[racer.$m]} | ${R[nginx.$m]} | $(ratio "${R[racer.$m]}" "${R[nginx.$m]}")× |"
done
echo
echo "non-2xx + socket errors over every run: $errs"
echo "machine: $(nproc) cores, $(uname -r); racer: $bin_dir; wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
