# What the load scripts in bench/ share; source it after `set -euo pipefail`.
#
#   bench_init NAME   makes $ROOT (the repo) and $WORK (a scratch directory),
#                     and on exit kills every pid in PIDS and removes $WORK;
#                     scripts may set BENCH_CLEANUP to a command run first
#   wait_up URL       waits up to 20 s for URL to answer 2xx, or exits
#   need TOOL...      exits unless every TOOL is on PATH, saying what to install
#   build_migrate     puts migrate at $WORK/migrate: a copy of $MIGRATE_BIN
#                     when set (another build to compare), else this checkout's
#   start_backend PORT  runs $WORK/backend (bench/backend) on 127.0.0.1:PORT
#                     and waits for it
#   start_proxy DIR ARGS...  runs `$WORK/migrate proxy --config strangler.yaml
#                     ARGS` in DIR, its stderr appended to DIR/proxy.log, sets
#                     PROXY to its pid and waits for /healthz on port $ADMIN
#   cpu_ticks PID...  user+system CPU of those processes so far, in clock
#                     ticks (fields 14 and 15 of /proc/PID/stat; the command
#                     name in field 2 has no spaces here)
#   status_kb PID KEY a kB line of /proc/PID/status (VmRSS, VmHWM)

bench_init() {
  ROOT=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
  WORK=$(mktemp -d "/tmp/migrate-$1.XXXXXX")
  PIDS=()
  BENCH_CLEANUP=${BENCH_CLEANUP:-}
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  if [ -n "$BENCH_CLEANUP" ]; then eval "$BENCH_CLEANUP" || true; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}

wait_up() {
  for _ in $(seq 200); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "$1 did not come up" >&2
  exit 1
}

need() {
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$t not found: apt-get install $t" >&2; exit 1; }
  done
}

start_backend() {
  "$WORK/backend" -addr "127.0.0.1:$1" & PIDS+=($!)
  wait_up "http://127.0.0.1:$1/"
}

start_proxy() {
  local dir=$1
  shift
  (cd "$dir" && exec "$WORK/migrate" proxy --config strangler.yaml "$@" 2>> proxy.log) &
  PROXY=$!
  PIDS+=($PROXY)
  wait_up "http://127.0.0.1:$ADMIN/healthz"
}

cpu_ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s += $1} END {print s}'; }

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

build_migrate() {
  if [ -n "${MIGRATE_BIN:-}" ]; then cp "$MIGRATE_BIN" "$WORK/migrate"; else (cd "$ROOT" && go build -o "$WORK/migrate" ./cmd/migrate); fi
}
