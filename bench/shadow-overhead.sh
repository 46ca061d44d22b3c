#!/usr/bin/env bash
# What does shadowing cost the client? `migrate proxy` in front of the
# loopback Go backend (bench/backend), one route, five proxies side by side:
#
#   legacy   the route in legacy mode (the baseline)
#   legacy2  a second proxy in legacy mode: the A/A row, which shows what
#            the ratios look like on this machine when nothing differs
#   healthy  shadow mode, candidate answers like legacy (same body, no delay)
#   slow     shadow mode, candidate answers after 10x legacy's p50
#   hanging  shadow mode, candidate never answers (the copy times out)
#
# Each scenario gets the same wrk settings; rounds alternate between them
# (the order rotates each round) and medians are reported, with two ratios
# to legacy: the ratio of the medians, and the median over rounds of each
# round's ratio to the legacy run of the same round (which cancels drift
# that is slower than a round). Three phases:
#
#   closed   plain wrk: CONNS connections, each sends its next request as soon
#            as the last one is answered. wrk has no rate limit (wrk2 is not
#            packaged), so this runs the 2 cores flat out and the shadow
#            runs pay for the mirror's CPU in queueing.
#   paced    wrk with a Lua delay() of THINK_MS between requests on PACED_CONNS
#            connections: a fixed offered load well under saturation, which
#            is what the client-latency target is about. (wrk starts the clock
#            after the delay, so think time is not counted as latency.)
#   same     the same paced load, split between two routes of one shadowing
#            proxy at the same time: GET /api/product (shadowed) and
#            GET /api/inventory (legacy mode, same backend). Both see the
#            same machine, so the ratio is what shadowing a route costs that
#            route's clients; the phases above also include what the
#            copies' CPU costs every client of the host.
#
# After every run the proxy's peak RSS (VmHWM) and current RSS, its CPU time
# per request (and the candidate's), its GC cycles (admin /metrics) and the
# mirror counters from `migrate status -o json` are read; counters are the
# difference over the run. The Markdown report goes to stdout, progress to
# stderr. Needs wrk and jq (apt-get install wrk jq). Takes about two and a
# half minutes with the defaults.
#
#   bench/shadow-overhead.sh [DURATION_SECONDS] [ROUNDS]
#   CONNS=16 PACED_CONNS=4 THINK_MS=2 bench/shadow-overhead.sh 5 3
#   SHADOW_OPTS="rateLimit: 200" bench/shadow-overhead.sh   # extra shadow-block keys
#   PIN=1 bench/shadow-overhead.sh   # wrk on CPU 0; backend, candidates, proxies on CPU 1
#   PHASES=paced bench/shadow-overhead.sh   # only some of the phases (closed paced same)
#   BACKEND_DELAY=1ms bench/shadow-overhead.sh   # legacy waits 1ms per request, as for a database
set -euo pipefail

SERVER=() CLIENT=()
if [ "${PIN:-0}" = 1 ]; then SERVER=(taskset -c 1) CLIENT=(taskset -c 0); fi

DUR=${1:-5}
ROUNDS=${2:-3}
CONNS=${CONNS:-16}
PACED_CONNS=${PACED_CONNS:-4}
THINK_MS=${THINK_MS:-2}
# The candidate deadline (candidate.timeout and shadow.timeout). Short, so
# the hanging candidate times out, and trips the breaker, within a run.
CAND_TIMEOUT=${CAND_TIMEOUT:-1s}
# Extra keys for the shadow block, e.g. SHADOW_OPTS="rateLimit: 200" to see
# how the overhead scales with the copies actually compared.
SHADOW_OPTS=${SHADOW_OPTS:-}
BASE_PORT=${BASE_PORT:-28100}
source "$(dirname "$0")/lib.sh"
bench_init shadow-bench
SCENARIOS=(legacy legacy2 healthy slow hanging)

need wrk jq

# Ports: backend, three candidates, five proxies with their admin APIs.
BACKEND_PORT=$BASE_PORT
declare -A CAND_PORT=([healthy]=$((BASE_PORT + 1)) [slow]=$((BASE_PORT + 2)) [hanging]=$((BASE_PORT + 3)))
declare -A PROXY_PORT ADMIN_PORT PROXY_PID
i=0
for s in "${SCENARIOS[@]}"; do
  PROXY_PORT[$s]=$((BASE_PORT + 10 + 2 * i)) ADMIN_PORT[$s]=$((BASE_PORT + 11 + 2 * i))
  i=$((i + 1))
done
for port in $(seq "$BASE_PORT" $((BASE_PORT + 20))); do
  if ss -Hltn "sport = :$port" | grep -q .; then
    echo "port $port is in use; pick a free range with BASE_PORT=..." >&2
    exit 1
  fi
done

echo "building backend, candidate and migrate..." >&2
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/backend && go build -o "$WORK/candidate" ./bench/candidate &&
  go build -o "$WORK/migrate" ./cmd/migrate)

# to_us VALUE → microseconds (wrk prints 812.00us, 1.23ms, 2.01s).
to_us() {
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); print v + 0 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 }
    else if (v ~ /m$/) { sub(/m$/, "", v); print v * 60000000 }
    else { sub(/s$/, "", v); print v * 1000000 } }'
}

"${SERVER[@]}" "$WORK/backend" -addr 127.0.0.1:$BACKEND_PORT -delay "${BACKEND_DELAY:-0}" & PIDS+=($!)
wait_up "http://127.0.0.1:$BACKEND_PORT/api/product"

# "10x slower" is relative to what a client sees from legacy directly: the
# backend's p50 at one connection, measured on this machine now.
echo "measuring the backend's p50 at 1 connection..." >&2
LEGACY_P50_US=$(to_us "$("${CLIENT[@]}" wrk -t1 -c1 -d3s --latency "http://127.0.0.1:$BACKEND_PORT/api/product" | awk '/ 50%/ {print $2}')")
SLOW_US=$(awk -v p="$LEGACY_P50_US" 'BEGIN { printf "%d", p * 10 + 0.5 }')

declare -A CAND_PID
"${SERVER[@]}" "$WORK/candidate" -addr 127.0.0.1:${CAND_PORT[healthy]} & PIDS+=($!) CAND_PID[healthy]=$!
"${SERVER[@]}" "$WORK/candidate" -addr 127.0.0.1:${CAND_PORT[slow]} -delay "${SLOW_US}us" & PIDS+=($!) CAND_PID[slow]=$!
"${SERVER[@]}" "$WORK/candidate" -addr 127.0.0.1:${CAND_PORT[hanging]} -hang & PIDS+=($!) CAND_PID[hanging]=$!
for s in healthy slow; do wait_up "http://127.0.0.1:${CAND_PORT[$s]}/api/product"; done
wait_up "http://127.0.0.1:${CAND_PORT[hanging]}/candidate-stats"

# One config and one store per scenario. The legacy scenarios have the same
# candidate block (the healthy one) but their route stays in legacy mode.
for s in "${SCENARIOS[@]}"; do
  cand=${CAND_PORT[$s]:-${CAND_PORT[healthy]}}
  mkdir -p "$WORK/$s"
  cat > "$WORK/$s/strangler.yaml" <<CONF
listen: 127.0.0.1:${PROXY_PORT[$s]}
admin: 127.0.0.1:${ADMIN_PORT[$s]}
store: migrate.db
accessLogSample: 0%
services:
  product-service:
    legacy: http://127.0.0.1:$BACKEND_PORT
    candidate: {url: "http://127.0.0.1:$cand", timeout: $CAND_TIMEOUT}
    shadow: {sample: 100%, timeout: $CAND_TIMEOUT${SHADOW_OPTS:+, $SHADOW_OPTS}}
    routes: ["GET /api/product", "GET /api/inventory"]
CONF
  "${SERVER[@]}" "$WORK/migrate" proxy --config "$WORK/$s/strangler.yaml" --log-level error \
    2> "$WORK/$s/proxy.log" & PIDS+=($!)
  PROXY_PID[$s]=$!
done
for s in "${SCENARIOS[@]}"; do
  wait_up "http://127.0.0.1:${ADMIN_PORT[$s]}/healthz"
  wait_up "http://127.0.0.1:${PROXY_PORT[$s]}/api/product"
  if [ "$s" != legacy ] && [ "$s" != legacy2 ]; then
    "$WORK/migrate" shadow "GET /api/product" --admin "http://127.0.0.1:${ADMIN_PORT[$s]}" \
      --reason "shadow-overhead benchmark" >/dev/null
  fi
done

cat > "$WORK/paced.lua" <<LUA
-- A fixed think time between a connection's requests: wrk starts the
-- latency clock after it, so this paces the load without counting the wait.
function delay() return $THINK_MS end
LUA

mirror_json() { "$WORK/migrate" status --admin "http://127.0.0.1:${ADMIN_PORT[$1]}" -o json 2>/dev/null || echo '{}'; }
# mirror_counts SCENARIO → "submitted dropped samples candidateErrors skipped":
# copies queued for comparison, dropped (queue full), compared, of which
# candidate errors, and skipped by the route's policy (breaker open, rate
# limit, writes, sampling).
mirror_counts() {
  mirror_json "$1" | jq -r '(first(.routes[] | select(.route == "GET /api/product")) // {}) as $r |
    "\($r.mirror.submitted // 0) \($r.mirror.dropped // 0) \($r.shadow.samples // 0) \($r.shadow.candidateErrors // 0) \($r.mirror.skipped // 0)"'
}
gc_count() { curl -fs "http://127.0.0.1:${ADMIN_PORT[$1]}/metrics" | awk '$1 == "go_gc_duration_seconds_count" {print $2}'; }
TICK_US=$((1000000 / $(getconf CLK_TCK)))

echo "warming up..." >&2
for s in "${SCENARIOS[@]}"; do
  "${CLIENT[@]}" wrk -t2 -c"$CONNS" -d1s "http://127.0.0.1:${PROXY_PORT[$s]}/api/product" >/dev/null
done
sleep 1

# run PHASE SCENARIO ROUND: one wrk run, appended to $WORK/results as
# "phase scenario round rps p50us p99us non2xx sockerr submitted dropped samples cerr skipped hwmkB rsskB pcpu ccpu gcs".
run() {
  local phase=$1 s=$2 round=$3 out args=(-t2 -c"$CONNS")
  [ "$phase" = paced ] && args=(-t"$(( PACED_CONNS < 2 ? 1 : 2 ))" -c"$PACED_CONNS" -s "$WORK/paced.lua")
  read -r sub0 drop0 smp0 cerr0 skip0 <<<"$(mirror_counts "$s")"
  local cpu0 ccpu0=0 gc0 cpid=${CAND_PID[$s]:-}
  cpu0=$(cpu_ticks "${PROXY_PID[$s]}"); gc0=$(gc_count "$s")
  [ -n "$cpid" ] && ccpu0=$(cpu_ticks "$cpid")
  out=$("${CLIENT[@]}" wrk "${args[@]}" -d"${DUR}"s --latency "http://127.0.0.1:${PROXY_PORT[$s]}/api/product")
  echo "$out" > "$WORK/$s/wrk-$phase-$round.txt"
  local rps p50 p99 non2xx sock
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  read -r p50 p99 non2xx sock <<<"$(wrk_stats "$out")"
  local cpu1 ccpu1=0 gc1 reqs
  cpu1=$(cpu_ticks "${PROXY_PID[$s]}"); gc1=$(gc_count "$s")
  [ -n "$cpid" ] && ccpu1=$(cpu_ticks "$cpid")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  read -r sub1 drop1 smp1 cerr1 skip1 <<<"$(mirror_counts "$s")"
  local pcpu ccpu
  pcpu=$(awk -v t=$((cpu1 - cpu0)) -v u="$TICK_US" -v n="$reqs" 'BEGIN {printf "%.1f", t * u / (n > 0 ? n : 1)}')
  ccpu=$(awk -v t=$((ccpu1 - ccpu0)) -v u="$TICK_US" -v n="$reqs" 'BEGIN {printf "%.1f", t * u / (n > 0 ? n : 1)}')
  echo "$phase $s $round $rps $p50 $p99 $non2xx $sock $((sub1 - sub0)) $((drop1 - drop0)) $((smp1 - smp0))" \
    "$((cerr1 - cerr0)) $((skip1 - skip0)) $(status_kb "${PROXY_PID[$s]}" VmHWM) $(status_kb "${PROXY_PID[$s]}" VmRSS) $pcpu $ccpu $((gc1 - gc0))" >> "$WORK/results"
  printf '  %-6s %-8s round %d: %8.0f req/s  p50 %7.0fus  p99 %7.0fus  errors %d  drops %d  rss %d kB  cpu/req proxy %s us cand %s us  gc %d  load %s\n' \
    "$phase" "$s" "$round" "$rps" "$p50" "$p99" $((non2xx + sock)) $((drop1 - drop0)) "$(status_kb "${PROXY_PID[$s]}" VmRSS)" \
    "$pcpu" "$ccpu" $((gc1 - gc0)) "$(cut -d' ' -f1 /proc/loadavg)" >&2
  sleep 0.5
}

: > "$WORK/results"
# wrk_stats OUTPUT → "p50us p99us non2xx socketerrors" of one wrk --latency run.
wrk_stats() {
  local non2xx sock
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$1")
  sock=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$1")
  echo "$(to_us "$(awk '$1 == "50%" {print $2}' <<<"$1")") $(to_us "$(awk '$1 == "99%" {print $2}' <<<"$1")") ${non2xx:-0} ${sock:-0}"
}

# run_same SCENARIO ROUND: both routes of one proxy at once, each with half
# the paced connections; appended to $WORK/same as
# "scenario round p50us p99us (legacy route) p50us p99us (shadowed route) errors".
run_same() {
  local s=$1 round=$2 half=$(( PACED_CONNS / 2 > 0 ? PACED_CONNS / 2 : 1 )) url="http://127.0.0.1:${PROXY_PORT[$1]}"
  local lf="$WORK/$s/same-legacy-$round.txt" sf="$WORK/$s/same-shadow-$round.txt"
  "${CLIENT[@]}" wrk -t1 -c"$half" -d"${DUR}"s --latency -s "$WORK/paced.lua" "$url/api/inventory" > "$lf" &
  local other=$!
  "${CLIENT[@]}" wrk -t1 -c"$half" -d"${DUR}"s --latency -s "$WORK/paced.lua" "$url/api/product" > "$sf"
  wait "$other"
  local l50 l99 le1 le2 s50 s99 se1 se2
  read -r l50 l99 le1 le2 <<<"$(wrk_stats "$(cat "$lf")")"
  read -r s50 s99 se1 se2 <<<"$(wrk_stats "$(cat "$sf")")"
  local errors=$((le1 + le2 + se1 + se2))
  echo "$s $round $l50 $l99 $s50 $s99 $errors" >> "$WORK/same"
  printf '  same   %-8s round %d: legacy route p50/p99 %s/%s us, shadowed route p50/p99 %s/%s us, errors %d\n' \
    "$s" "$round" "$l50" "$l99" "$s50" "$s99" "$errors" >&2
  sleep 0.5
}

: > "$WORK/same"
for phase in ${PHASES:-closed paced same}; do
  if [ "$phase" = same ]; then
    for round in $(seq "$ROUNDS"); do
      echo "same round $round/$ROUNDS (${DUR}s per scenario)..." >&2
      for s in healthy slow hanging; do run_same "$s" "$round"; done
    done
    continue
  fi
  for round in $(seq "$ROUNDS"); do
    echo "$phase round $round/$ROUNDS (${DUR}s per scenario)..." >&2
    # Rotate the order so no scenario always runs right after another.
    n=${#SCENARIOS[@]}
    for k in $(seq 0 $((n - 1))); do
      run "$phase" "${SCENARIOS[$(((k + round - 1) % n))]}" "$round"
    done
  done
done

# Candidate-side view: how many copies reached each candidate, and how many
# it saw abandoned by the proxy's deadline.
CAND_STATS=""
for s in healthy slow hanging; do
  CAND_STATS+="$s $(curl -fs "http://127.0.0.1:${CAND_PORT[$s]}/candidate-stats" | jq -r '"\(.seen) \(.served) \(.abandoned)"')"$'\n'
done

# The median of a space-separated list, for the summaries below.
AWK_MEDIAN='function median(list,   a, n, i, j, t) {
  n = split(list, a, " ")
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}'

awk -v dur="$DUR" -v rounds="$ROUNDS" -v conns="$CONNS" -v pconns="$PACED_CONNS" -v think="$THINK_MS" \
    -v legacyp50="$LEGACY_P50_US" -v slow="$SLOW_US" -v ctimeout="$CAND_TIMEOUT" -v extra="$SHADOW_OPTS" -v cand="$CAND_STATS" -v phases_run="${PHASES:-closed paced same}" '
'"$AWK_MEDIAN"'
{
  k = $1 SUBSEP $2
  rps[k] = rps[k] " " $4; p50[k] = p50[k] " " $5; p99[k] = p99[k] " " $6
  r50[$1, $2, $3] = $5; r99[$1, $2, $3] = $6
  err[k] += $7 + $8; subm[k] += $9; drop[k] += $10; smp[k] += $11; cerr[k] += $12; skip[k] += $13
  pcpu[k] = pcpu[k] " " $16; ccpu[k] = ccpu[k] " " $17; gc[k] = gc[k] " " $18
  if ($14 > hwm[k]) hwm[k] = $14
  rss[k] = rss[k] " " int($15 / 1024 + 0.5)
}
END {
  printf "Legacy (bench/backend) p50 at 1 connection: %.0f µs; slow candidate delay: %d µs (10×); candidate deadline %s; shadow block: {sample: 100%%, timeout: %s%s}.\n\n", legacyp50, slow, ctimeout, ctimeout, (extra == "" ? "" : ", " extra)
  nphases = split(phases_run, phases, " ")
  nsc = split("legacy legacy2 healthy slow hanging", sc, " ")
  for (pi = 1; pi <= nphases; pi++) {
    ph = phases[pi]
    if (ph == "same") continue
    if (ph == "closed") printf "**closed loop** — `wrk -t2 -c%d -d%ds --latency`, median of %d alternating rounds\n\n", conns, dur, rounds
    else printf "**paced** — `wrk -t2 -c%d -d%ds --latency -s paced.lua` (%d ms think time per connection), median of %d alternating rounds\n\n", pconns, dur, think, rounds
    printf "| scenario | req/s | p50 | p99 | ratio to legacy (req/s, p50, p99) | paired ratio (p50, p99) | client errors | mirror drops / submitted | compared (cand. errors) | skipped by policy (breaker, rate limit) | proxy CPU µs/req | candidate CPU µs/req | GCs/run | RSS after each round (MiB) | peak RSS (VmHWM) |\n"
    printf "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    L = ph SUBSEP "legacy"
    lr = median(rps[L]); l50 = median(p50[L]); l99 = median(p99[L])
    for (si = 1; si <= nsc; si++) {
      s = sc[si]; k = ph SUBSEP s
      r = median(rps[k]); a = median(p50[k]); b = median(p99[k])
      ratio = (s == "legacy") ? "1 (baseline)" : sprintf("%.2f, %.2f, %.2f", r / lr, a / l50, b / l99)
      q50 = ""; q99 = ""
      for (rd = 1; rd <= rounds; rd++) if ((ph, s, rd) in r50 && r50[ph, "legacy", rd] > 0) {
        q50 = q50 " " r50[ph, s, rd] / r50[ph, "legacy", rd]; q99 = q99 " " r99[ph, s, rd] / r99[ph, "legacy", rd]
      }
      paired = (s == "legacy") ? "–" : sprintf("%.2f, %.2f", median(q50), median(q99))
      shadowed = s != "legacy" && s != "legacy2"
      drops = !shadowed ? "–" : sprintf("%d / %d", drop[k], subm[k])
      samples = !shadowed ? "–" : sprintf("%d (%d)", smp[k], cerr[k])
      skipped = !shadowed ? "–" : sprintf("%d", skip[k])
      cc = !shadowed ? "–" : sprintf("%.1f", median(ccpu[k]))
      printf "| %s | %.0f | %.0f µs | %.0f µs | %s | %s | %d | %s | %s | %s | %.1f | %s | %s | %s | %.1f MiB |\n", s, r, a, b, ratio, paired, err[k], drops, samples, skipped, median(pcpu[k]), cc, median(gc[k]), substr(rss[k], 2), hwm[k] / 1024
    }
    printf "\nrounds (req/s; p50 µs; p99 µs):\n\n"
    for (si = 1; si <= nsc; si++) { k = ph SUBSEP sc[si]; printf "* %s: %s; %s; %s\n", sc[si], substr(rps[k], 2), substr(p50[k], 2), substr(p99[k], 2) }
    printf "\n"
  }
  printf "Candidates (requests seen, served, abandoned by the proxy deadline):\n\n"
  n = split(cand, lines, "\n")
  for (i = 1; i <= n; i++) if (lines[i] != "") { split(lines[i], f, " "); printf "* %s: %d seen, %d served, %d abandoned\n", f[1], f[2], f[3], f[4] }
}' "$WORK/results"

if [ -s "$WORK/same" ]; then
  awk -v dur="$DUR" -v rounds="$ROUNDS" -v half=$(( PACED_CONNS / 2 > 0 ? PACED_CONNS / 2 : 1 )) -v think="$THINK_MS" '
'"$AWK_MEDIAN"'
{
  l50[$1] = l50[$1] " " $3; l99[$1] = l99[$1] " " $4; s50[$1] = s50[$1] " " $5; s99[$1] = s99[$1] " " $6
  q50[$1] = q50[$1] " " $5 / $3; q99[$1] = q99[$1] " " $6 / $4; err[$1] += $7
}
END {
  printf "**same run** — one shadowing proxy, two paced `wrk -t1 -c%d -d%ds --latency -s paced.lua` at once (%d ms think time): one on the shadowed route, one on a legacy-mode route of the same backend; median of %d rounds\n\n", half, dur, think, rounds
  printf "| candidate | legacy route p50 / p99 | shadowed route p50 / p99 | paired ratio (p50, p99) | client errors |\n|---|---|---|---|---|\n"
  n = split("healthy slow hanging", sc, " ")
  for (i = 1; i <= n; i++) {
    s = sc[i]
    if (!(s in l50)) continue
    printf "| %s | %.0f / %.0f µs | %.0f / %.0f µs | %.2f, %.2f | %d |\n", s, median(l50[s]), median(l99[s]), median(s50[s]), median(s99[s]), median(q50[s]), median(q99[s]), err[s]
  }
  printf "\n"
}' "$WORK/same"
fi
