#!/usr/bin/env bash
# The proxy's legacy-mode throughput with each state store, side by side in
# one run: SQLite (the default), PostgreSQL (replicas sharing state), and
# PostgreSQL stopped mid-run (the data plane must not notice). The routes are
# shadowed, so every request records evidence that the flusher writes to the
# store each second. Needs wrk and PostgreSQL's server (apt-get install wrk
# postgresql). Takes about a minute and a half.
#
#   bench/store-backends.sh [DURATION_SECONDS] [CONNECTIONS]
set -euo pipefail

DUR=${1:-5}
CONNS=${2:-64}
source "$(dirname "$0")/lib.sh"
bench_init store
BENCH_CLEANUP='[ -f "$WORK/pg/postmaster.pid" ] && kill -9 "$(head -1 "$WORK/pg/postmaster.pid")" 2>/dev/null'
BACKEND_PORT=18181 SQLITE_PORT=18182 PG_PROXY_PORT=18183 PG_PORT=18184

need wrk
PGBIN=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | tail -1)")")
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server not found: apt-get install postgresql" >&2; exit 1; }
AS=()
if [ "$(id -u)" = 0 ]; then AS=(runuser -u postgres --); chown postgres "$WORK"; fi

echo "building backend and migrate..." >&2
(cd "$ROOT" && go build -o "$WORK/backend" ./bench/backend && go build -o "$WORK/migrate" ./cmd/migrate)
"$WORK/backend" -addr 127.0.0.1:$BACKEND_PORT & PIDS+=($!)

echo "starting PostgreSQL..." >&2
"${AS[@]}" "$PGBIN/initdb" -D "$WORK/pg" -U migrate --auth=trust --no-sync >/dev/null
"${AS[@]}" "$PGBIN/postgres" -D "$WORK/pg" -p $PG_PORT -k "$WORK" -c listen_addresses=127.0.0.1 >"$WORK/pg.log" 2>&1 &
PG_PID=$!
for _ in $(seq 100); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p $PG_PORT && break; sleep 0.1; done

config() { # config PORT ADMIN_PORT STORE
  cat <<CONF
listen: 127.0.0.1:$1
admin: 127.0.0.1:$2
accessLogSample: 0%
store: $3
services:
  product-service:
    legacy: http://127.0.0.1:$BACKEND_PORT
    candidate: {url: "http://127.0.0.1:$BACKEND_PORT"}
    mode: shadow
    shadow: {sample: 10%}
    routes: ["GET /api/product", "POST /api/product", "GET /api/product/{id}"]
CONF
}
config $SQLITE_PORT 18185 "$WORK/migrate.db" > "$WORK/sqlite.yaml"
config $PG_PROXY_PORT 18186 "postgres://migrate@127.0.0.1:$PG_PORT/postgres?sslmode=disable" > "$WORK/pg.yaml"
"$WORK/migrate" proxy --config "$WORK/sqlite.yaml" --log-level error & PIDS+=($!)
"$WORK/migrate" proxy --config "$WORK/pg.yaml" --log-level error & PIDS+=($!)
for port in $BACKEND_PORT $SQLITE_PORT $PG_PROXY_PORT; do wait_up "http://127.0.0.1:$port/api/product"; done

rps() { wrk -t2 -c"$CONNS" -d"$DUR"s "$1" | awk '/Requests\/sec/ {print $2}'; }
URL_SQLITE=http://127.0.0.1:$SQLITE_PORT/api/product
URL_PG=http://127.0.0.1:$PG_PROXY_PORT/api/product
for u in $URL_SQLITE $URL_PG; do wrk -t2 -c"$CONNS" -d2s "$u" >/dev/null; done

declare -a S P
for round in 1 2 3 4 5; do
  echo "round $round..." >&2
  S+=("$(rps "$URL_SQLITE")")
  P+=("$(rps "$URL_PG")")
done
echo "stopping PostgreSQL under the proxy..." >&2
kill -9 "$(head -1 "$WORK/pg/postmaster.pid")" "$PG_PID" 2>/dev/null; PG_PID=
sleep 1
! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p $PG_PORT || { echo "PostgreSQL is still up" >&2; exit 1; }
declare -a D
for round in 1 2 3; do D+=("$(rps "$URL_PG")"); done
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

awk -v s="$(median "${S[@]}")" -v p="$(median "${P[@]}")" -v d="$(median "${D[@]}")" \
    -v rs="${S[*]}" -v rp="${P[*]}" -v rd="${D[*]}" -v c="$CONNS" -v t="$DUR" 'BEGIN {
  printf "| store | req/s, %d conns, median of %ds rounds | ratio to SQLite | rounds |\n|---|---|---|---|\n", c, t
  printf "| SQLite file | %.0f | 100%% | %s |\n", s, rs
  printf "| PostgreSQL | %.0f | %.0f%% | %s |\n", p, 100*p/s, rp
  printf "| PostgreSQL stopped (kill -9) | %.0f | %.0f%% | %s |\n", d, 100*d/s, rd
}'
