#!/usr/bin/env bash
# The real Spring Boot fleet (fixtures/spring) against its Go Wasm ports, in
# one run: each JVM's start-up to its first 200 and idle RSS, each port's
# compile time, first request, fresh-instance median and memory per
# instance, and the published load test (LOAD × POST /api/order at
# CONCURRENCY) on the JVM directly, through `migrate proxy` with the route
# in legacy mode, on the JVM directly again, and on the Wasm port in process
# (bench/springwasm). Needs java 17+ and mvn; the fleet is built
# once and cached (~/.cache/migrate/spring-fleet). Markdown on stdout.
#
#   bench/spring-vs-wasm.sh [REQUESTS] [LOAD] [CONCURRENCY]   (defaults 200 10000 20)
set -euo pipefail
cd "$(dirname "$0")/.."
go run ./bench/springwasm -requests "${1:-200}" -load "${2:-10000}" -c "${3:-20}"
