#!/usr/bin/env bash
# How much does a candidate failing every request write to the log? One
# `migrate proxy` (JSON log, level info) in front of the loopback Go
# backend, with the test guest of proxy/wasm as the candidate of two
# routes: GET /panic in cutover (every client request runs the guest, which
# panics and writes its stack to stderr) and GET /exit shadowed (every copy
# exits 3). wrk drives GET /panic for DURATION seconds while a second wrk
# drives GET /exit; reported are the log's lines and bytes, the lines
# without a route, and the "suppressed similar log lines" summaries.
#
# MIGRATE_BIN runs another build of migrate instead of this checkout's.
#
#   bench/log-flood.sh [DURATION_SECONDS]
#   bench/log-flood.sh 60
set -euo pipefail

DUR=${1:-60}
BASE_PORT=${BASE_PORT:-28900}
source "$(dirname "$0")/lib.sh"
bench_init log-flood
need wrk jq

echo "building migrate, the backend and the test guest..." >&2
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/backend &&
  GOOS=wasip1 GOARCH=wasm go build -o "$WORK/guest.wasm" ./proxy/wasm/testdata/guest)
build_migrate

start_backend $BASE_PORT
PORT=$((BASE_PORT + 1)) ADMIN=$((BASE_PORT + 2))
cat > "$WORK/strangler.yaml" <<CONF
listen: 127.0.0.1:$PORT
admin: 127.0.0.1:$ADMIN
store: migrate.db
accessLogSample: 0%
services:
  cut-service:
    legacy: http://127.0.0.1:$BASE_PORT
    candidate: {wasm: guest.wasm}
    mode: cutover
    routes: ["GET /panic"]
  shadowed-service:
    legacy: http://127.0.0.1:$BASE_PORT
    candidate: {wasm: guest.wasm}
    mode: shadow
    shadow: {sample: 100%}
    routes: ["GET /exit"]
CONF
start_proxy "$WORK" --log-format json --log-level info
wrk -t1 -c4 -d"${DUR}"s "http://127.0.0.1:$PORT/exit" > "$WORK/exit.txt" &
copies=$!
wrk -t2 -c16 -d"${DUR}"s "http://127.0.0.1:$PORT/panic" > "$WORK/panic.txt"
wait "$copies"
kill "$PROXY" && wait "$PROXY" 2>/dev/null || true
log="$WORK/proxy.log"
lines=$(wc -l < "$log")
bytes=$(wc -c < "$log")
noroute=$(jq -c 'select(.path != null and (.route // "") == "")' "$log" | wc -l)
failed=$(jq -c 'select(.msg == "wasm guest failed")' "$log" | wc -l)
suppressed=$(jq -s '[.[] | select(.msg == "suppressed similar log lines") | .suppressed] | add // 0' "$log")
panics=$(awk '/requests in/ {print $1}' "$WORK/panic.txt")
echo "\`wrk -t2 -c16 -d${DUR}s\` on GET /panic (cutover) and \`wrk -t1 -c4\` on GET /exit (shadow), candidate failing every request:"
echo
echo "| failing client requests | log lines | log bytes | \"wasm guest failed\" lines | lines about a request without a route | suppressed (counted in summaries) |"
echo "|---|---|---|---|---|---|"
printf '| %d | %d | %d | %d | %d | %d |\n' "$panics" "$lines" "$bytes" "$failed" "$noroute" "$suppressed"
