#!/usr/bin/env bash
# Runs every test: vet, the Go tests with the race detector (benchmarks run
# once so they never rot), and the boto3 / AWS CLI end-to-end script.
set -euo pipefail
cd "$(dirname "$0")"
go vet ./...
go test -race -count=1 -bench=. -benchtime=1x -run . ./...
bash e2e/run.sh
