#!/usr/bin/env bash
# Benchmarks berth's built-in XGBoost server against python xgboost on the
# same model (500 trees, depth 6, 28 features) and the same rows:
#   (a) in-process prediction, one core, batch 1 and 1000:
#       berth (Go testing.B) vs python xgboost inplace_predict (C++ core);
#   (b) HTTP serving, single-row text/csv, concurrency 1 and 16:
#       berth model server vs gunicorn + Flask + xgboost (as SageMaker's
#       container serves: one worker process per CPU; SageMaker uses gevent
#       workers, Debian has no gevent, so gthread workers stand in — both
#       keep connections alive).
# Needs Debian python3-xgboost, python3-flask, gunicorn. Prints ratios.
#
# usage: bench/xgboost/run.sh [seconds-per-http-run]   (from the repo root)
set -euo pipefail
cd "$(dirname "$0")/../.."
DUR=${1:-10}
WORK=${BERTH_BENCH_DIR:-$(mktemp -d)}
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$WORK"
chmod 711 "$WORK" # model processes of a root berth run as "nobody", who must pass through
echo "# work dir $WORK"

echo "## training model and timing python inplace_predict (1 thread)"
"$PY" bench/xgboost/train.py "$WORK" | tee "$WORK/python.txt"
py1=$(awk '/batch=1 /{print $4}' "$WORK/python.txt")
py1000=$(awk '/batch=1000 /{print $4}' "$WORK/python.txt")

echo "## berth predictions equal python's on this model"
BERTH_XGB_BENCH_MODEL="$WORK/model/xgboost-model" BERTH_XGB_BENCH_ROWS="$WORK/rows.csv" \
  BERTH_XGB_BENCH_EXPECTED="$WORK/expected.txt" \
  go test ./internal/modelserver/xgboost -run '^TestBenchModelMatchesPython$' -count 1 -v | grep -E '^(---|ok|FAIL)'

echo "## berth in-process (GOMAXPROCS=1)"
BERTH_XGB_BENCH_MODEL="$WORK/model/xgboost-model" BERTH_XGB_BENCH_ROWS="$WORK/rows.csv" \
  GOMAXPROCS=1 go test ./internal/modelserver/xgboost -run '^$' -bench '^BenchmarkPredict$' -benchtime 3s \
  | tee "$WORK/go.txt"
go1=$(awk '/batch=1-|batch=1 /{for(i=1;i<=NF;i++) if($(i+1)=="rows/s") print $i}' "$WORK/go.txt" | head -1)
go1000=$(awk '/batch=1000/{for(i=1;i<=NF;i++) if($(i+1)=="rows/s") print $i}' "$WORK/go.txt" | head -1)

go build -o "$WORK/benchtool" ./bench/xgboost/benchtool
head -1 "$WORK/rows.csv" > "$WORK/one.csv"

wait_port() { # url
  for _ in $(seq 1 300); do
    curl -fsS "$1/ping" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server at $1 did not come up" >&2; return 1
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

echo "## HTTP: berth model server"
SM_MODEL_DIR="$WORK/model" SAGEMAKER_BIND_TO_PORT=18081 "$WORK/benchtool" serve xgboost -log-level warn &
PIDS+=($!)
wait_port http://127.0.0.1:18081
echo "## HTTP: gunicorn + flask + xgboost ($(nproc) workers x 8 threads, keep-alive)"
SM_MODEL_DIR="$WORK/model" gunicorn -w "$(nproc)" -k gthread --threads 8 -b 127.0.0.1:18082 --chdir bench/xgboost \
  --log-level warning pyserver:app &
PIDS+=($!)
wait_port http://127.0.0.1:18082

declare -A RPS
for c in 1 16; do
  for s in berth:18081 python:18082; do
    name=${s%%:*}; port=${s##*:}
    out=$("$WORK/benchtool" load -url "http://127.0.0.1:$port/invocations" -body "$WORK/one.csv" -c "$c" -d "${DUR}s")
    echo "$name c=$c: $out"
    RPS[$name$c]=$(echo "$out" | awk '{print $1}')
  done
done

echo
echo "## summary"
awk -v a="$go1" -v b="$py1" 'BEGIN{printf "in-process batch=1    berth %.0f rows/s  python %.0f rows/s  ratio %.2fx\n", a, b, a/b}'
awk -v a="$go1000" -v b="$py1000" 'BEGIN{printf "in-process batch=1000 berth %.0f rows/s  python %.0f rows/s  ratio %.2fx\n", a, b, a/b}'
for c in 1 16; do
  awk -v a="${RPS[berth$c]}" -v b="${RPS[python$c]}" -v c="$c" \
    'BEGIN{printf "HTTP c=%-2d             berth %.0f req/s   python %.0f req/s   ratio %.2fx\n", c, a, b, a/b}'
done
