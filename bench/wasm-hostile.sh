#!/usr/bin/env bash
# Can a hostile Wasm candidate hurt the proxy? One `migrate proxy` per
# scenario in front of the loopback Go backend (bench/backend), with the
# test guest of proxy/wasm (proxy/wasm/testdata/guest) as the candidate:
#
#   starve   GET /api/inventory is a legacy route; GET /hang is shadowed to
#            the guest's endless loop (candidate and shadow timeout 5 s).
#            Two proxies side by side: "baseline" keeps /hang in legacy mode,
#            "looping" shadows it. Each round drives /hang with wrk -c2 and,
#            at the same time, /api/inventory with wrk -c16; reported is
#            /api/inventory's req/s per round and the looping/baseline ratio
#            of the same round (rounds alternate which proxy goes first).
#
# The Markdown report goes to stdout, progress to stderr. Needs wrk.
#
#   bench/wasm-hostile.sh [DURATION_SECONDS] [ROUNDS]
#   bench/wasm-hostile.sh 10 5
set -euo pipefail

DUR=${1:-10}
ROUNDS=${2:-5}
BASE_PORT=${BASE_PORT:-28500}
source "$(dirname "$0")/lib.sh"
bench_init wasm-hostile
need wrk
PROXIES=(baseline looping)

echo "building migrate, the backend and the test guest..." >&2
(cd "$ROOT" && go build -o "$WORK/migrate" ./cmd/migrate && go build -o "$WORK/backend" ./bench/backend &&
  GOOS=wasip1 GOARCH=wasm go build -o "$WORK/guest.wasm" ./proxy/wasm/testdata/guest)

start_backend $BASE_PORT
declare -A PORT ADMIN PID
i=1
for p in "${PROXIES[@]}"; do
  PORT[$p]=$((BASE_PORT + 2 * i)) ADMIN[$p]=$((BASE_PORT + 2 * i + 1))
  i=$((i + 1))
  mkdir -p "$WORK/$p"
  cat > "$WORK/$p/strangler.yaml" <<CONF
listen: 127.0.0.1:${PORT[$p]}
admin: 127.0.0.1:${ADMIN[$p]}
store: migrate.db
accessLogSample: 0%
services:
  inventory-service:
    legacy: http://127.0.0.1:$BASE_PORT
    routes: ["GET /api/inventory"]
  loop-service:
    legacy: http://127.0.0.1:$BASE_PORT
    candidate: {wasm: ../guest.wasm, timeout: 5s}
    shadow: {sample: 100%, timeout: 5s}
    routes: ["GET /hang"]
CONF
  (cd "$WORK/$p" && exec "$WORK/migrate" proxy --config strangler.yaml --log-level error 2>> proxy.log) & PIDS+=($!)
  PID[$p]=$!
done
for p in "${PROXIES[@]}"; do wait_up "http://127.0.0.1:${ADMIN[$p]}/healthz"; done
"$WORK/migrate" shadow "GET /hang" --admin "http://127.0.0.1:${ADMIN[looping]}" --reason "hostile candidate benchmark" >/dev/null

echo "warming up..." >&2
for p in "${PROXIES[@]}"; do wrk -t2 -c16 -d1s "http://127.0.0.1:${PORT[$p]}/api/inventory" >/dev/null; done

: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  order=("${PROXIES[@]}")
  [ $((round % 2)) = 0 ] && order=(looping baseline)
  for p in "${order[@]}"; do
    wrk -t1 -c2 -d"${DUR}"s "http://127.0.0.1:${PORT[$p]}/hang" > "$WORK/$p/hang-$round.txt" &
    hang=$!
    rps=$(wrk -t2 -c16 -d"${DUR}"s "http://127.0.0.1:${PORT[$p]}/api/inventory" | awk '/^Requests\/sec/ {print $2}')
    wait "$hang"
    echo "$p $round $rps" >> "$WORK/results"
    printf '  %-8s round %d: /api/inventory %8.0f req/s\n' "$p" "$round" "$rps" >&2
  done
done
"$WORK/migrate" status --admin "http://127.0.0.1:${ADMIN[looping]}" > "$WORK/status.txt" 2>&1 || true
cat "$WORK/status.txt" >&2

awk -v dur="$DUR" -v rounds="$ROUNDS" '
function median(list,   a, k, i, j, t) {
  k = split(list, a, " ")
  for (i = 2; i <= k; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (k % 2) ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
}
{ rps[$1, $2] = $3; all[$1] = all[$1] " " $3 }
END {
  for (r = 1; r <= rounds; r++) { ratio = ratio " " rps["looping", r] / rps["baseline", r]; per = per sprintf("%s%.2f", r > 1 ? ", " : "", rps["looping", r] / rps["baseline", r]) }
  printf "`wrk -t2 -c16 -d%ds` on the legacy route while `wrk -t1 -c2` drives the route whose copies loop, %d alternating rounds:\n\n", dur, rounds
  printf "| proxy | /api/inventory req/s (median) | rounds |\n|---|---|---|\n"
  printf "| baseline (/hang in legacy mode) | %.0f | %s |\n", median(all["baseline"]), substr(all["baseline"], 2)
  printf "| looping (/hang shadowed to an endless loop) | %.0f | %s |\n", median(all["looping"]), substr(all["looping"], 2)
  printf "\nlooping/baseline, same round: median **%.2f** (rounds: %s)\n", median(ratio), per
}' "$WORK/results"
