#!/usr/bin/env bash
# Measures CreateEndpoint → InService for a local-command model server and,
# in the same run, the baseline of starting that server by hand and polling
# its /ping. Prints both and the ratio berth/direct.
set -euo pipefail
cd "$(dirname "$0")/../.."
count=${COUNT:-5}
out=$(go test -run '^$' -bench '^BenchmarkStartup$' -benchtime "${BENCHTIME:-30x}" -count "$count" ./internal/app/ 2>&1 | grep -E '^BenchmarkStartup/')
echo "$out"
echo "$out" | awk '
  /direct-process/        { d += $3; nd++ }
  /berth-create-endpoint/ { b += $3; nb++ }
  END {
    if (nd == 0 || nb == 0) { print "missing results" > "/dev/stderr"; exit 1 }
    d /= nd; b /= nb
    printf "direct process start to /ping 200:  %.2f ms\n", d / 1e6
    printf "berth CreateEndpoint to InService:  %.2f ms\n", b / 1e6
    printf "ratio berth/direct: %.2f\n", b / d
  }'
