#!/usr/bin/env bash
# What active health checks cost the proxy: requests/s on a plain route with
# and without 1000 nodes probed every second, measured in one run with
# alternating phases. The gateway gets core 0 (GOMAXPROCS=1); the probe
# targets, the route's origin and wrk share core 1. Needs wrk.
#
#	NODES=1000 DURATION=10s ROUNDS=3 loadtest/health-probes.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ulimit -n 65536 2>/dev/null || true
go build -o "$work/gateway" ./cmd/gateway
go build -o "$work/healthprobes" ./bench/healthprobes
taskset -c 1 "$work/healthprobes" -gateway "$work/gateway" -gateway-cpu 0 \
	-nodes "${NODES:-1000}" -duration "${DURATION:-10s}" -rounds "${ROUNDS:-3}" -c "${CONNS:-32}"
