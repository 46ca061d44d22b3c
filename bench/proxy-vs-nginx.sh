#!/usr/bin/env bash
# Compare `migrate proxy` (legacy mode) with nginx proxying the same loopback
# Go backend: throughput (wrk, keep-alive), added p50 latency over calling the
# backend directly, and the proxy's RSS at 256 concurrent connections.
# Needs nginx and wrk (apt-get install nginx wrk). Takes about two minutes.
#
#   bench/proxy-vs-nginx.sh [DURATION_SECONDS] [CONNECTIONS]
#   PIN=1 bench/proxy-vs-nginx.sh   # wrk on CPU 0; backend, nginx and migrate on CPU 1
#   SHADOW=1 bench/proxy-vs-nginx.sh  # also a second migrate proxy whose measured route
#                                     # is in shadow mode (candidate: the same backend)
#   BASELINE=/path/to/migrate bench/proxy-vs-nginx.sh  # also that migrate binary (an
#                                     # earlier build) on the same table, same rounds
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
# PORT_BASE moves the four loopback ports (another run may hold the defaults).
PORT_BASE=${PORT_BASE:-18081}
BACKEND_PORT=$PORT_BASE NGINX_PORT=$((PORT_BASE + 1)) PROXY_PORT=$((PORT_BASE + 2)) ADMIN_PORT=$((PORT_BASE + 3))

need nginx wrk

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

# The route table as `migrate plan` writes it: 20 services of 10 routes each
# (sticky key, shadow and gate blocks, the default upstream), the access log
# at its default 1% sample, the SQLite store next to the file. The measured
# route, GET /api/product, belongs to the last service planned.
# plan_config LISTEN_PORT ADMIN_PORT MODE_OF_THE_MEASURED_SERVICE
plan_config() {
  printf 'listen: 127.0.0.1:%s\nadmin: 127.0.0.1:%s\nstore: "migrate.db"\nmaxBufferedBody: 1MiB\n' "$1" "$2"
  printf 'default: "http://127.0.0.1:%s"\nservices:\n' $BACKEND_PORT
  for s in $(seq -w 1 20); do
    mode=legacy
    [ "$s" = 20 ] && mode=$3
    printf '  "svc%s":\n    legacy: "http://127.0.0.1:%s"\n    timeout: 30s\n    mode: %s\n' "$s" $BACKEND_PORT $mode
    [ "$mode" = shadow ] && printf '    candidate: {url: "http://127.0.0.1:%s"}\n' $BACKEND_PORT
    printf '    weight: 10\n    stickyBy: "header:X-User"\n    shadow: {sample: 100%%, writes: deny}\n'
    printf '    gate: {minSamples: 1000, minMatch: 99.9%%, maxP99Ratio: 1.5, maxErrorRate: 0.1%%}\n    routes:\n'
    if [ "$s" = 20 ]; then p=/api/product; else p=/api/s$s/items; fi
    for r in "GET $p" "POST $p" "GET $p/{id}" "PUT $p/{id}" "DELETE $p/{id}" "GET $p/{id}/history" \
             "GET $p/search" "GET /api/s$s/users/{user}/items" "POST /api/s$s/users/{user}/items" "GET /api/s$s/health"; do
      printf '      - "%s"\n' "$r"
    done
  done
}
plan_config $PROXY_PORT $ADMIN_PORT legacy > "$WORK/strangler.yaml"
"${SERVER[@]}" "$WORK/migrate" proxy --config "$WORK/strangler.yaml" 2>"$WORK/proxy.log" & PIDS+=($!)
PROXY_PID=$!
PORTS=($BACKEND_PORT $NGINX_PORT $PROXY_PORT)
if [ "${SHADOW:-0}" = 1 ]; then
  SHADOW_PORT=$((PORT_BASE + 4))
  mkdir -p "$WORK/shadow"
  plan_config $SHADOW_PORT $((PORT_BASE + 5)) shadow > "$WORK/shadow/strangler.yaml"
  "${SERVER[@]}" "$WORK/migrate" proxy --config "$WORK/shadow/strangler.yaml" 2>"$WORK/shadow/proxy.log" & PIDS+=($!)
  SHADOW_PID=$!
  PORTS+=($SHADOW_PORT)
fi

if [ -n "${BASELINE:-}" ]; then
  BASE_PORT=$((PORT_BASE + 6))
  mkdir -p "$WORK/baseline"
  plan_config $BASE_PORT $((PORT_BASE + 7)) legacy > "$WORK/baseline/strangler.yaml"
  "${SERVER[@]}" "$BASELINE" proxy --config "$WORK/baseline/strangler.yaml" 2>"$WORK/baseline/proxy.log" & PIDS+=($!)
  BASE_PID=$!
  PORTS+=($BASE_PORT)
fi

for port in "${PORTS[@]}"; do
  wait_up "http://127.0.0.1:$port/api/product"
done

HZ=$(getconf CLK_TCK)
# round URL CONNS DUR PID... → "requests/s CPU-µs-per-request": the second is the
# CPU the PIDs used per request answered, which other load on the machine barely
# changes (unlike requests/s).
round() {
  local url=$1 conns=$2 dur=$3; shift 3
  local before after out
  before=$(cpu_ticks "$@")
  out=$("${CLIENT[@]}" wrk -t2 -c"$conns" -d"$dur"s "$url")
  after=$(cpu_ticks "$@")
  awk -v b="$before" -v a="$after" -v hz="$HZ" '/requests in/ {n = $1} /Requests\/sec/ {r = $2}
    END {printf "%s %.1f\n", r, (a - b) / hz * 1e6 / n}' <<<"$out"
}
# p50 URL → median latency in µs at one connection (no queueing)
p50() {
  "${CLIENT[@]}" wrk -t1 -c1 -d5s --latency "$1" | awk '/ 50%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else {sub(/s/,"",v); print v*1000000}}'
}

URL_DIRECT=http://127.0.0.1:$BACKEND_PORT/api/product
URL_NGINX=http://127.0.0.1:$NGINX_PORT/api/product
URL_PROXY=http://127.0.0.1:$PROXY_PORT/api/product

echo "warming up..." >&2
for u in $URL_DIRECT $URL_NGINX $URL_PROXY; do "${CLIENT[@]}" wrk -t2 -c"$CONNS" -d2s "$u" >/dev/null; done

# Five alternating rounds (the machine may be shared); medians are reported,
# and the median of the five same-round ratios, which a load that changes
# between rounds moves less than the ratio of the medians.
NGINX_PIDS=("$(cat "$WORK/nginx.pid")" $(pgrep -P "$(cat "$WORK/nginx.pid")"))
declare -a N M NC MC Q S SC SQ B BC BQ
for i in 1 2 3 4 5; do
  echo "round $i: throughput ($CONNS connections, ${DUR}s each)..." >&2
  read -r n nc < <(round "$URL_NGINX" "$CONNS" "$DUR" "${NGINX_PIDS[@]}")
  read -r m mc < <(round "$URL_PROXY" "$CONNS" "$DUR" "$PROXY_PID")
  N+=("$n") NC+=("$nc") M+=("$m") MC+=("$mc")
  Q+=("$(awk -v m="$m" -v n="$n" 'BEGIN {printf "%.3f", m / n}')")
  if [ -n "${SHADOW_PID:-}" ]; then
    read -r sh shc < <(round "http://127.0.0.1:$SHADOW_PORT/api/product" "$CONNS" "$DUR" "$SHADOW_PID")
    S+=("$sh") SC+=("$shc") SQ+=("$(awk -v s="$sh" -v m="$m" 'BEGIN {printf "%.3f", s / m}')")
  fi
  if [ -n "${BASE_PID:-}" ]; then
    read -r bs bsc < <(round "http://127.0.0.1:$BASE_PORT/api/product" "$CONNS" "$DUR" "$BASE_PID")
    B+=("$bs") BC+=("$bsc") BQ+=("$(awk -v b="$bsc" -v m="$mc" 'BEGIN {printf "%.3f", m / b}')")
  fi
done
median() { printf '%s\n' "$@" | sort -g | sed -n 3p; }
NGINX_RPS=$(median "${N[@]}") NGINX_CPU=$(median "${NC[@]}")
PROXY_RPS=$(median "${M[@]}") PROXY_CPU=$(median "${MC[@]}")
RATIO=$(median "${Q[@]}")

echo "latency at 1 connection..." >&2
P50_DIRECT=$(p50 "$URL_DIRECT"); P50_NGINX=$(p50 "$URL_NGINX"); P50_PROXY=$(p50 "$URL_PROXY")

echo "RSS at 256 keep-alive connections..." >&2
"${CLIENT[@]}" wrk -t2 -c256 -d"$DUR"s "$URL_PROXY" >/dev/null &
WRK=$!
RSS_MAX=0
while kill -0 $WRK 2>/dev/null; do
  r=$(status_kb "$PROXY_PID" VmRSS)
  [ "$r" -gt "$RSS_MAX" ] && RSS_MAX=$r
  sleep 0.2
done
wait $WRK || true

awk -v n="$NGINX_RPS" -v m="$PROXY_RPS" -v dd="$P50_DIRECT" -v dn="$P50_NGINX" -v dm="$P50_PROXY" -v rss="$RSS_MAX" \
    -v rn="${N[*]}" -v rm="${M[*]}" -v c="$CONNS" -v d="$DUR" -v q="$RATIO" -v qs="${Q[*]}" \
    -v nc="$NGINX_CPU" -v mc="$PROXY_CPU" -v ncs="${NC[*]}" -v mcs="${MC[*]}" -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  printf "| measure | migrate proxy | nginx | target |\n|---|---|---|---|\n"
  printf "| throughput, %d conns, median of 5×%ds (req/s) | %.0f | %.0f | |\n", c, d, m, n
  printf "| ratio of medians migrate/nginx | %.2f× | 1 | ≥ 0.9× |\n", m/n
  printf "| same-round ratios (median) | %s (**%.2f×**) | 1 | ≥ 0.9× |\n", qs, q
  printf "| rounds (req/s) | %s | %s | |\n", rm, rn
  printf "| CPU per request, median (µs) | %.1f | %.1f | |\n", mc, nc
  printf "| CPU per request, rounds (µs) | %s | %s | |\n", mcs, ncs
  printf "| p50 at 1 conn (µs), direct = %.0f | %.0f | %.0f | |\n", dd, dm, dn
  printf "| added p50 over direct (µs) | %.0f | %.0f | ≤ 100 µs |\n", dm-dd, dn-dd
  printf "| max RSS at 256 keep-alive conns (MiB) | %.1f | | ≤ 64 MiB |\n", rss/1024
  printf "\nload average at the end: %s\n", load
}'
if [ -n "${SHADOW_PID:-}" ]; then
  awk -v s="$(median "${S[@]}")" -v sc="$(median "${SC[@]}")" -v q="$(median "${SQ[@]}")" -v qs="${SQ[*]}" \
      -v rs="${S[*]}" -v scs="${SC[*]}" 'BEGIN {
    printf "\n| shadow mode (same table, GET /api/product shadowed) | migrate, shadow | target |\n|---|---|---|\n"
    printf "| throughput, median (req/s) | %.0f | |\n| rounds (req/s) | %s | |\n", s, rs
    printf "| same-round ratios shadow / legacy (median) | %s (**%.2f×**) | ≥ 0.8× |\n", qs, q
    printf "| CPU per request, median (µs); rounds | %.1f; %s | |\n", sc, scs
  }'
  # What became of the copies over the whole run: under a saturating load
  # the mirror sheds most of them (it sends copies only in the gaps between
  # client requests), and the shed ones are relayed as legacy-mode reads.
  metric() { awk -v m="$1" -v f="$2" 'index($0, m "{") == 1 && index($0, "route=\"GET /api/product\"") && index($0, f) {print $NF}' <<<"$METRICS"; }
  METRICS=$(curl -s "http://127.0.0.1:$((PORT_BASE + 5))/metrics")
  awk -v n="$(metric migrate_requests_total 'side="legacy"')" -v c="$(metric migrate_route_samples service)" \
      -v d="$(metric migrate_mirror_dropped_total 'reason="queue"')" 'BEGIN {
    printf "| copies over the run: requests, compared, shed (queue full) | %d, %d (%.2f%%), %d (%.1f%%) | |\n", n, c, 100*c/n, d, 100*d/n
  }'
fi
if [ -n "${BASE_PID:-}" ]; then
  awk -v b="$(median "${B[@]}")" -v bc="$(median "${BC[@]}")" -v q="$(median "${BQ[@]}")" -v qs="${BQ[*]}" \
      -v rb="${B[*]}" -v bcs="${BC[*]}" -v nc="$NGINX_CPU" -v mc="$PROXY_CPU" 'BEGIN {
    printf "\n| baseline build (BASELINE, same table, same rounds) | migrate, baseline | |\n|---|---|---|\n"
    printf "| throughput, median (req/s); rounds | %.0f; %s | |\n", b, rb
    printf "| CPU per request, median (µs); rounds | %.1f; %s | |\n", bc, bcs
    printf "| same-round CPU ratios this build / baseline (median) | %s (**%.2f×**) | |\n", qs, q
    printf "| CPU per request over nginx, baseline and this build | %.2f×, %.2f× | ≤ 1.1× for 0.9× throughput |\n", bc/nc, mc/nc
  }'
fi
