#!/usr/bin/env bash
# How much memory can hostile Wasm guests make the proxy hold? One fresh
# `migrate proxy` per scenario in front of the loopback Go backend, with the
# test guest of proxy/wasm (proxy/wasm/testdata/guest) as a cutover
# candidate (`pool: 0`, maxMemory 64MiB, maxResponse 8MiB, the defaults):
#
#   oom   GET /oom allocates 1MiB blocks until its memory cap traps it
#   big   GET /big?51200 writes 50MB to stdout
#
# Each is driven with wrk at c=20 and c=60 for DURATION seconds while the
# proxy's VmRSS is sampled every 100 ms; reported are the peak, the RSS 3 s
# after the load stopped, and the instances the budget refused. The budget
# is wasmMemory (WASM_MEMORY, default 1GiB here; WASM_MEMORY= leaves it out
# of the config: a quarter of the RAM, at most 1GiB — and lets a build
# older than the budget read the config).
#
# MIGRATE_BIN runs another build of migrate (e.g. one without the budget)
# instead of building this checkout's.
#
#   bench/wasm-memory.sh [DURATION_SECONDS]
#   bench/wasm-memory.sh 10
set -euo pipefail

DUR=${1:-10}
BASE_PORT=${BASE_PORT:-28600}
WASM_MEMORY=${WASM_MEMORY-1GiB}
source "$(dirname "$0")/lib.sh"
bench_init wasm-memory
need wrk

echo "building migrate, the backend and the test guest..." >&2
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/backend &&
  GOOS=wasip1 GOARCH=wasm go build -o "$WORK/guest.wasm" ./proxy/wasm/testdata/guest)
build_migrate

start_backend $BASE_PORT
PORT=$((BASE_PORT + 1)) ADMIN=$((BASE_PORT + 2))

rss_mb() { awk '/^VmRSS/ {printf "%d", $2 / 1024}' "/proc/$1/status"; }

run() { # scenario path concurrency
  local dir="$WORK/$1-c$3"
  mkdir -p "$dir"
  cat > "$dir/strangler.yaml" <<CONF
listen: 127.0.0.1:$PORT
admin: 127.0.0.1:$ADMIN
store: migrate.db
accessLogSample: 0%
${WASM_MEMORY:+wasmMemory: $WASM_MEMORY}
services:
  hostile-service:
    legacy: http://127.0.0.1:$BASE_PORT
    candidate: {wasm: ../guest.wasm, timeout: 5s, pool: 0}
    mode: cutover
    routes: ["GET /oom", "GET /big"]
CONF
  start_proxy "$dir" --log-level error
  local pid=$PROXY
  curl -s -o /dev/null "http://127.0.0.1:$PORT$2" || true # compile and warm up
  local start
  start=$(rss_mb $pid)
  wrk -t2 -c"$3" -d"${DUR}"s "http://127.0.0.1:$PORT$2" > "$dir/wrk.txt" &
  local load=$! peak=0 r
  while kill -0 $load 2>/dev/null; do
    r=$(rss_mb $pid)
    [ "$r" -gt "$peak" ] && peak=$r
    sleep 0.1
  done
  wait $load || true
  sleep 3
  local after refused rps
  after=$(rss_mb $pid)
  refused=$(curl -s "http://127.0.0.1:$ADMIN/metrics" | awk '/^migrate_wasm_memory_refused_total/ {print $2}')
  rps=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' "$dir/wrk.txt")
  kill $pid && wait $pid 2>/dev/null || true
  printf '| %s `%s` | %d | %d | %d | %d | %d | %s |\n' "$1" "$2" "$3" "$rps" "$start" "$peak" "$after" "${refused:-n/a}" >> "$WORK/table"
  printf '  %s c=%d: peak %d MiB, after %d MiB, refused %s\n' "$1" "$3" "$peak" "$after" "${refused:-n/a}" >&2
}

: > "$WORK/table"
for c in 20 60; do run oom /oom $c; done
for c in 20 60; do run big "/big?51200" $c; done
echo "wasmMemory ${WASM_MEMORY:-unset}, \`wrk -t2 -cC -d${DUR}s\`, VmRSS of the proxy in MiB:"
echo
echo "| guest | c | req/s | RSS before | RSS peak | RSS 3 s after | refused (503) |"
echo "|---|---|---|---|---|---|---|"
cat "$WORK/table"
