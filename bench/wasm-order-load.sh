#!/usr/bin/env bash
# The published load test of the real system — 10,000 `POST /api/order` at
# concurrency 20 (2,316 req/s with 100% success on wasmCloud) — run through
# `migrate proxy` against the in-process order component, route cut over.
# Four candidates side by side, the same fixture source (fixtures/wasm/order):
#
#   fresh           order.wasm, a WAGI command: a fresh instance per request
#                   (the default)
#   fresh-init      order.reusable.wasm (-buildmode=c-shared) without reuse:
#                   a fresh instance per request, _initialize run in each
#   fresh-snapshot  order.reusable.wasm with `preinit: true`: a fresh instance
#                   per request, started from the snapshot _initialize left
#                   (Options.Preinit)
#   reuse           order.reusable.wasm with `reuse: 10000`: one instance
#                   serves request after request (Options.Reuse)
#
# VARIANTS="fresh fresh-snapshot" runs only those. Rounds alternate between
# the candidates, each round starting at another one; each run is one hey
# run of N requests after a warm-up. Reported per run: req/s, status codes,
# p50/p99, and the proxy's CPU time per request, also as a ratio to fresh's
# median; per variant: the proxy's peak RSS (VmHWM),
# and its RSS five seconds after the last round (idle instances and memory
# buffers are released after one idle second). The Markdown report goes to
# stdout, progress to stderr. Needs hey (apt-get install hey).
#
#   bench/wasm-order-load.sh [ROUNDS] [REQUESTS] [CONCURRENCY]
#   bench/wasm-order-load.sh 3 10000 20
set -euo pipefail

ROUNDS=${1:-3}
N=${2:-10000}
C=${3:-20}
BASE_PORT=${BASE_PORT:-28300}
source "$(dirname "$0")/lib.sh"
bench_init wasm-load
read -ra VARIANTS <<<"${VARIANTS:-fresh fresh-init fresh-snapshot reuse}"
need hey

BODY='{"orderLineItemsDtoList":[{"skuCode":"ENG-V8-500","price":1000,"quantity":1}]}'

echo "building migrate, the legacy stand-in and both order components..." >&2
(cd "$ROOT" && go build -o "$WORK/migrate" ./cmd/migrate && go build -o "$WORK/backend" ./bench/backend &&
  GOOS=wasip1 GOARCH=wasm go build -o "$WORK/order.wasm" ./fixtures/wasm/order &&
  GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$WORK/order.reusable.wasm" ./fixtures/wasm/order)

# The legacy upstream is configured but never called: the route is cut
# over and reverse shadow is off, so the component alone answers.
"$WORK/backend" -addr 127.0.0.1:$BASE_PORT & PIDS+=($!)
declare -A PORT ADMIN PID
i=1
for v in "${VARIANTS[@]}"; do
  PORT[$v]=$((BASE_PORT + 2 * i)) ADMIN[$v]=$((BASE_PORT + 2 * i + 1))
  i=$((i + 1))
  case $v in
    fresh) module=order.wasm extra="" ;;
    fresh-init) module=order.reusable.wasm extra="" ;;
    fresh-snapshot) module=order.reusable.wasm extra=", preinit: true" ;;
    reuse) module=order.reusable.wasm extra=", reuse: 10000" ;;
    *) echo "unknown variant $v (fresh, fresh-init, fresh-snapshot, reuse)" >&2; exit 2 ;;
  esac
  mkdir -p "$WORK/$v"
  cat > "$WORK/$v/strangler.yaml" <<CONF
listen: 127.0.0.1:${PORT[$v]}
admin: 127.0.0.1:${ADMIN[$v]}
store: migrate.db
accessLogSample: 0%
services:
  order-service:
    legacy: http://127.0.0.1:$BASE_PORT
    candidate: {wasm: ../$module$extra}
    routes: ["POST /api/order"]
CONF
done
start_proxies() {
  for v in "${VARIANTS[@]}"; do
    (cd "$WORK/$v" && exec "$WORK/migrate" proxy --config strangler.yaml --log-level error 2>> proxy.log) & PIDS+=($!)
    PID[$v]=$!
  done
  for v in "${VARIANTS[@]}"; do wait_up "http://127.0.0.1:${ADMIN[$v]}/healthz"; done
}
# The first start compiles the modules into the on-disk cache; the measured
# proxies start from it, as a restarted production proxy does (compiling
# leaves tens of MiB of heap behind that would blur the RSS figures).
echo "compiling the components into the cache..." >&2
start_proxies
for v in "${VARIANTS[@]}"; do kill "${PID[$v]}"; wait "${PID[$v]}" 2>/dev/null || true; done
start_proxies
for v in "${VARIANTS[@]}"; do
  echo "$v: RSS $(status_kb "${PID[$v]}" VmRSS) kB after start" >&2
  admin=(--admin "http://127.0.0.1:${ADMIN[$v]}")
  "$WORK/migrate" shadow order-service "${admin[@]}" --reason "load test" >/dev/null
  "$WORK/migrate" canary order-service "${admin[@]}" --weight 100 --reason "load test" >/dev/null
  "$WORK/migrate" cutover order-service "${admin[@]}" --force --reason "load test of the Wasm component" >/dev/null
done

post() { hey -n "$1" -c "$C" -m POST -T application/json -d "$BODY" "http://127.0.0.1:${PORT[$2]}/api/order"; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))
# quantile_ms Q < hey-output → the Q% latency in ms, or NA
quantile_ms() { awk -v q="$1%" '$1 == q && $2 == "in" && $4 == "secs" {v = $3 * 1000} END {if (v == "") print "NA"; else printf "%.2f\n", v}'; }

echo "warming up..." >&2
for v in "${VARIANTS[@]}"; do post 500 "$v" >/dev/null; done

: > "$WORK/results"
for round in $(seq "$ROUNDS"); do
  n=${#VARIANTS[@]}
  for k in $(seq 0 $((n - 1))); do
    v=${VARIANTS[$(((k + round - 1) % n))]}
    c0=$(cpu_ticks "${PID[$v]}")
    out=$(post "$N" "$v")
    c1=$(cpu_ticks "${PID[$v]}")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    # hey prints "  50% in 0.0049 secs" under "Latency distribution" (and
    # nothing there when no request succeeded). A missing value is written
    # as NA, never as an empty field: an empty one shifted every column
    # after it in the results file and left p50/p99 blank in the report.
    p50=$(quantile_ms 50 <<<"$out")
    p99=$(quantile_ms 99 <<<"$out")
    rps=${rps:-NA}
    ok=$(awk '/\[201\]/ {print $2}' <<<"$out"); ok=${ok:-0}
    codes=$(awk '/Status code distribution/ {f = 1; next} f && /\[/ {printf "%s%s %s", sep, $1, $2; sep = ", "} f && !/\[/ && NF == 0 {f = 0}' <<<"$out")
    errs=$(awk '/Error distribution/ {f = 1; next} f && /\[/ {s += substr($1, 2) + 0} END {print s + 0}' <<<"$out")
    cpu=$(awk -v t=$((c1 - c0)) -v u="$TICK_US" -v n="$N" 'BEGIN {printf "%.0f", t * u / n}')
    echo "$v $round $rps $ok $errs $p50 $p99 $cpu $codes" >> "$WORK/results"
    printf '  %-14s round %d: %7s req/s  %s/%s × 201  p50 %s ms  p99 %s ms  proxy CPU %s µs/req  (%s)\n' \
      "$v" "$round" "$rps" "$ok" "$N" "$p50" "$p99" "$cpu" "$codes" >&2
  done
done
sleep 5
for v in "${VARIANTS[@]}"; do
  echo "$v $(status_kb "${PID[$v]}" VmHWM) $(status_kb "${PID[$v]}" VmRSS)" >> "$WORK/memory"
done

awk -v n="$N" -v c="$C" -v rounds="$ROUNDS" -v memfile="$WORK/memory" -v variants="${VARIANTS[*]}" '
# median of the numbers in list (NA skipped); NA when there are none
function median(list,   a, b, k, n, i, j, t) {
  k = split(list, a, " ")
  n = 0
  for (i = 1; i <= k; i++) if (a[i] != "NA") b[++n] = a[i] + 0
  if (n == 0) return "NA"
  for (i = 2; i <= n; i++) { t = b[i]; for (j = i - 1; j >= 1 && b[j] > t; j--) b[j + 1] = b[j]; b[j + 1] = t }
  return (n % 2) ? b[(n + 1) / 2] : (b[n / 2] + b[n / 2 + 1]) / 2
}
function fmt(v, f) { return v == "NA" ? "–" : sprintf(f, v) }
function ints(list,   a, k, i, out) {
  k = split(list, a, " ")
  for (i = 1; i <= k; i++) out = out (i > 1 ? " / " : "") (a[i] == "NA" ? "–" : sprintf("%.0f", a[i]))
  return out
}
{ rps[$1] = rps[$1] " " $3; ok[$1] += $4; tot[$1] += n; errs[$1] += $5; p50[$1] = p50[$1] " " $6; p99[$1] = p99[$1] " " $7; cpu[$1] = cpu[$1] " " $8 }
END {
  while ((getline line < memfile) > 0) { split(line, f, " "); hwm[f[1]] = f[2]; rss[f[1]] = f[3] }
  printf "`hey -n %d -c %d -m POST` through `migrate proxy` (route cut over), %d alternating rounds, medians:\n\n", n, c, rounds
  printf "| candidate | req/s (median) | req/s (rounds) | 201s | errors | p50 | p99 | proxy CPU µs/req (median) | CPU vs fresh | peak RSS | RSS 5 s after |\n"
  printf "|---|---|---|---|---|---|---|---|---|---|---|\n"
  k = split(variants, vs, " ")
  base = median(cpu["fresh"])
  for (i = 1; i <= k; i++) {
    v = vs[i]
    m = median(cpu[v])
    ratio = (base == "NA" || m == "NA" || base == 0) ? "–" : sprintf("%.2f×", m / base)
    printf "| %s | **%s** | %s | %d / %d | %d | %s | %s | %s (%s) | %s | %.0f MiB | %.0f MiB |\n", v, fmt(median(rps[v]), "%.0f"), ints(rps[v]), ok[v], tot[v], errs[v], fmt(median(p50[v]), "%.1f ms"), fmt(median(p99[v]), "%.1f ms"), fmt(m, "%.0f"), ints(cpu[v]), ratio, hwm[v] / 1024, rss[v] / 1024
  }
}' "$WORK/results"
