#!/usr/bin/env bash
# Runs every test: vet, the Go tests with the race detector (benchmarks run
# once so they never rot), and the boto3 / AWS CLI end-to-end script.
# First installs what the tests need and a fresh machine lacks: Debian
# packages (real AWS clients, reference libraries, benchmark peers) and the
# Go modules.
set -euo pipefail
cd "$(dirname "$0")"

# Real clients and reference libraries for the end-to-end tests, and the
# peers the benchmarks compare against.
packages=(python3-boto3 python3-botocore awscli python3-sklearn python3-xgboost python3-flask gunicorn nginx-light wrk curl)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
      echo "test.sh: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  echo "test.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -q
  "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
go mod download

go vet ./...
go test -race -count=1 -bench=. -benchtime=1x -run . ./...
bash e2e/run.sh
