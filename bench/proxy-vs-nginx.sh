#!/usr/bin/env bash
# Compare `migrate proxy` (legacy mode) with nginx proxying the same loopback
# Go backend: throughput (wrk, keep-alive), added p50 latency over calling the
# backend directly, and the proxy's RSS at 256 concurrent connections.
# Needs nginx and wrk (apt-get install nginx wrk). Takes about two minutes.
#
#   bench/proxy-vs-nginx.sh [DURATION_SECONDS] [CONNECTIONS]
#   PIN=1 bench/proxy-vs-nginx.sh   # wrk on CPU 0; backend, nginx and migrate on CPU 1
set -euo pipefail

# With PIN=1 the load generator no longer competes with the proxies for a
# core, which makes rounds far steadier on a small or shared machine.
SERVER=() CLIENT=()
if [ "${PIN:-0}" = 1 ]; then SERVER=(taskset -c 1) CLIENT=(taskset -c 0); fi

DUR=${1:-6}
CONNS=${2:-64}
source "$(dirname "$0")/lib.sh"
bench_init bench
BENCH_CLEANUP='[ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null'
BACKEND_PORT=18081 NGINX_PORT=18082 PROXY_PORT=18083 ADMIN_PORT=18084

command -v nginx >/dev/null || { echo "nginx not found: apt-get install nginx" >&2; exit 1; }
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

echo "building backend and migrate..." >&2
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/backend && go build -o "$WORK/migrate" ./cmd/migrate)

"${SERVER[@]}" "$WORK/backend" -addr 127.0.0.1:$BACKEND_PORT & PIDS+=($!)

mkdir -p "$WORK/nginx/logs"
cat > "$WORK/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  upstream backend { server 127.0.0.1:$BACKEND_PORT; keepalive 256; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
    }
  }
}
CONF
"${SERVER[@]}" nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf"

cat > "$WORK/strangler.yaml" <<CONF
listen: 127.0.0.1:$PROXY_PORT
admin: 127.0.0.1:$ADMIN_PORT
accessLogSample: 0%
services:
  product-service:
    legacy: http://127.0.0.1:$BACKEND_PORT
    routes: ["GET /api/product", "POST /api/product", "GET /api/product/{id}"]
CONF
"${SERVER[@]}" "$WORK/migrate" proxy --config "$WORK/strangler.yaml" --log-level warn & PIDS+=($!)
PROXY_PID=$!

for port in $BACKEND_PORT $NGINX_PORT $PROXY_PORT; do
  wait_up "http://127.0.0.1:$port/api/product"
done

# rps URL CONNS DUR → requests/s
rps() { "${CLIENT[@]}" wrk -t2 -c"$2" -d"$3"s "$1" | awk '/Requests\/sec/ {print $2}'; }
# p50 URL → median latency in µs at one connection (no queueing)
p50() {
  "${CLIENT[@]}" wrk -t1 -c1 -d5s --latency "$1" | awk '/ 50%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s/,"",v); print v*1000000}}'
}

URL_DIRECT=http://127.0.0.1:$BACKEND_PORT/api/product
URL_NGINX=http://127.0.0.1:$NGINX_PORT/api/product
URL_PROXY=http://127.0.0.1:$PROXY_PORT/api/product

echo "warming up..." >&2
for u in $URL_DIRECT $URL_NGINX $URL_PROXY; do "${CLIENT[@]}" wrk -t2 -c"$CONNS" -d2s "$u" >/dev/null; done

# Five alternating rounds (the machine may be shared); medians are reported.
declare -a N M D
for round in 1 2 3 4 5; do
  echo "round $round: throughput ($CONNS connections, ${DUR}s each)..." >&2
  N+=("$(rps "$URL_NGINX" "$CONNS" "$DUR")")
  M+=("$(rps "$URL_PROXY" "$CONNS" "$DUR")")
done
median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
NGINX_RPS=$(median "${N[@]}")
PROXY_RPS=$(median "${M[@]}")

echo "latency at 1 connection..." >&2
P50_DIRECT=$(p50 "$URL_DIRECT"); P50_NGINX=$(p50 "$URL_NGINX"); P50_PROXY=$(p50 "$URL_PROXY")

echo "RSS at 256 keep-alive connections..." >&2
"${CLIENT[@]}" wrk -t2 -c256 -d"$DUR"s "$URL_PROXY" >/dev/null &
WRK=$!
RSS_MAX=0
while kill -0 $WRK 2>/dev/null; do
  r=$(awk '/VmRSS/ {print $2}' /proc/$PROXY_PID/status)
  [ "$r" -gt "$RSS_MAX" ] && RSS_MAX=$r
  sleep 0.2
done
wait $WRK || true

awk -v n="$NGINX_RPS" -v m="$PROXY_RPS" -v dd="$P50_DIRECT" -v dn="$P50_NGINX" -v dm="$P50_PROXY" -v rss="$RSS_MAX" \
    -v rn="${N[*]}" -v rm="${M[*]}" -v c="$CONNS" -v d="$DUR" 'BEGIN {
  printf "| measure | migrate proxy | nginx | target |\n|---|---|---|---|\n"
  printf "| throughput, %d conns, median of 5×%ds (req/s) | %.0f | %.0f | ≥ 85%% of nginx |\n", c, d, m, n
  printf "| ratio migrate/nginx | %.1f%% | 100%% | ≥ 85%% |\n", 100*m/n
  printf "| rounds (req/s) | %s | %s | |\n", rm, rn
  printf "| p50 at 1 conn (µs), direct = %.0f | %.0f | %.0f | |\n", dd, dm, dn
  printf "| added p50 over direct (µs) | %.0f | %.0f | ≤ 150 µs |\n", dm-dd, dn-dd
  printf "| max RSS at 256 keep-alive conns (MiB) | %.1f | | ≤ 64 MiB |\n", rss/1024
}'
