#!/usr/bin/env bash
# Requests/s through the gateway against a direct hit on the origin, in one
# run. The gateway gets core 0 (GOMAXPROCS=1); the origins and wrk share
# core 1. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/origin" ./loadtest/origin
taskset -c 1 "$work/origin" -listen 127.0.0.1:19801,127.0.0.1:19802 >"$work/origin.log" 2>&1 &
GOMAXPROCS=1 taskset -c 0 "$work/gateway" -listen 127.0.0.1:19080 -admin-listen 127.0.0.1:19180 \
	-data-dir "$work/data" >"$work/gateway.log" 2>&1 &
for _ in $(seq 50); do curl -sf -o /dev/null http://127.0.0.1:19180/apisix/admin/routes && break; sleep 0.1; done
curl -sf -X PUT http://127.0.0.1:19180/apisix/admin/routes/1 \
	-d '{"uri":"/hello","upstream":{"nodes":{"127.0.0.1:19801":1,"127.0.0.1:19802":1}}}' >/dev/null

run() { taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" --latency "$1" | awk -v n="$2" '
	/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2}
	END {printf "%-28s %10s req/s   p50 %8s   p99 %8s\n", n, rps, p50, p99}'; }
run http://127.0.0.1:19801/hello "origin direct"
run http://127.0.0.1:19080/hello "through the gateway (1 core)"
