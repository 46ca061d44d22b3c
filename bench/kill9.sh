#!/usr/bin/env bash
# What does `kill -9` under load cost the proxy's counters and evidence?
# `migrate proxy` in front of the loopback Go backend, GET /api/inventory
# shadowed (the backend is also the candidate, 100% sampled) so every
# request counts on both the live counters and the comparison evidence.
# wrk drives it for KILL_AT seconds (plus a random part of a flush
# interval, so the kill lands anywhere between two flushes), then the proxy
# is killed with SIGKILL, restarted on the same store, and `migrate status`
# says what survived. Requests lost = answered by the proxy (wrk's count) -
# counted after the restart; samples lost = compared just before the kill -
# found after the restart (the mirror compares what its candidate budget
# lets through, not every request). The live counts are read every ~100 ms
# until the kill, so each loss is also given as time: from the moment the
# live count was where the restarted proxy finds it, to the kill.
#
#   bench/kill9.sh [FLUSH_INTERVAL] [RUNS] [KILL_AT_SECONDS]
#   bench/kill9.sh 1s 5 4
set -euo pipefail

FLUSH=${1:-1s}
RUNS=${2:-5}
KILL_AT=${3:-4}
BASE_PORT=${BASE_PORT:-28700}
source "$(dirname "$0")/lib.sh"
bench_init kill9
need wrk jq
flush_s=$(awk -v f="$FLUSH" 'BEGIN { if (f ~ /ms$/) { sub(/ms$/, "", f); print f / 1000 } else { sub(/s$/, "", f); print f } }')

echo "building migrate and the backend..." >&2
(cd "$ROOT" && go build -o "$WORK/migrate" ./cmd/migrate && go build -o "$WORK/backend" ./bench/backend)
start_backend $BASE_PORT
PORT=$((BASE_PORT + 1)) ADMIN=$((BASE_PORT + 2))

: > "$WORK/results"
for run in $(seq "$RUNS"); do
  dir="$WORK/run$run"
  mkdir -p "$dir"
  cat > "$dir/strangler.yaml" <<CONF
listen: 127.0.0.1:$PORT
admin: 127.0.0.1:$ADMIN
store: migrate.db
accessLogSample: 0%
services:
  inventory-service:
    legacy: http://127.0.0.1:$BASE_PORT
    candidate: {url: "http://127.0.0.1:$BASE_PORT"}
    mode: shadow
    shadow: {sample: 100%}
    routes: ["GET /api/inventory"]
CONF
  start_proxy "$dir" --flush-interval "$FLUSH" --log-level error
  kill_after=$(awk -v k="$KILL_AT" -v f="$flush_s" -v s="$RANDOM" 'BEGIN { srand(s); printf "%.3f", k + rand() * f }')
  wrk -t2 -c16 -d"$((KILL_AT + 3))"s "http://127.0.0.1:$PORT/api/inventory" > "$dir/wrk.txt" 2>&1 &
  load=$!
  # A timeline of the live counts (every ~100 ms) until the kill: the counts
  # found after the restart are placed on it, and the time from there to
  # the kill is what was lost.
  t0=$(date +%s.%N)
  : > "$dir/timeline"
  while :; do
    now=$(date +%s.%N)
    awk -v a="$now" -v b="$t0" -v k="$kill_after" 'BEGIN { exit !(a - b < k) }' || break
    curl -s "http://127.0.0.1:$ADMIN/v1/routes" |
      jq -r --arg t "$(awk -v a="$now" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')" \
        '[.routes[] | select(.route == "GET /api/inventory")][0] | "\($t) \(.requests.legacy) \(.samples)"' >> "$dir/timeline" || true
    sleep 0.1
  done
  kill -9 "$PROXY"
  killed=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.3f", a - b }')
  wait "$PROXY" 2>/dev/null || true
  wait "$load" || true
  answered=$(awk '/requests in/ {print $1}' "$dir/wrk.txt")
  start_proxy "$dir" --flush-interval "$FLUSH" --log-level error
  "$WORK/migrate" status -o json --admin "http://127.0.0.1:$ADMIN" > "$dir/status.json"
  kill "$PROXY" && wait "$PROXY" 2>/dev/null || true
  counted=$(jq '[.routes[] | select(.route == "GET /api/inventory") | .requests.legacy] | add // 0' "$dir/status.json")
  samples=$(jq '[.routes[] | select(.route == "GET /api/inventory") | .samples] | add // 0' "$dir/status.json")
  # lost time: from the last timeline point the restored count had reached
  # to the kill.
  read -r rlost slost before <<< "$(awk -v c="$counted" -v s="$samples" -v k="$killed" '
    { if ($2 <= c) rt = $1; if ($3 <= s) st = $1; last = $3 }
    END { printf "%.2f %.2f %d", k - rt, k - st, last }' "$dir/timeline")"
  echo "$run $killed $answered $counted $rlost $before $samples $slost" >> "$WORK/results"
  printf '  run %d: killed at %.2f s; answered %d, counted %d (%s s lost); samples %d before the kill, %d after (%s s lost)\n' \
    "$run" "$killed" "$answered" "$counted" "$rlost" "$before" "$samples" "$slost" >&2
done

awk -v flush="$FLUSH" -v fs="$flush_s" '
{ rows = rows sprintf("| %d | %.2f | %d | %d | %d (%.2f s) | %d | %d | %d (%.2f s) |\n", $1, $2, $3, $4, $3 - $4, $5, $6, $7, $6 - $7, $8)
  if ($5 > worst) worst = $5; if ($8 > sworst) sworst = $8 }
END {
  printf "`--flush-interval %s`, `wrk -t2 -c16`, kill -9 at the time shown, restart on the same store:\n\n", flush
  printf "| run | killed at (s) | answered | requests counted after restart | requests lost (of the last s) | samples just before the kill | samples after restart | samples lost (of the last s) |\n|---|---|---|---|---|---|---|---|\n%s", rows
  printf "\nworst loss: the last **%.2f s** of requests and **%.2f s** of samples, flush interval %.2f s\n", worst, sworst, fs
}' "$WORK/results"
