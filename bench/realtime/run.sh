#!/usr/bin/env bash
# Real-time invocation overhead: the same echo model server
# (internal/testserver) reached
#   (a) direct:  POST /invocations on the model server itself,
#   (b) nginx:   through nginx proxy_pass with upstream keepalive, once with
#                worker_processes 1 and once with 2 (= the cores here),
#   (c) berth:   through berth's InvokeEndpoint
#                (POST /endpoints/<name>/invocations, unsigned), where berth
#                runs its own instance of the same testserver binary,
# with one closed-loop load generator (bench/realtime/loadgen) at
# concurrency 1, 16 and 64, 64-byte text/csv bodies, loopback only.
# Prints req/s, p50, p99 per run, then the ratios berth/nginx and
# berth/direct and the p50 added at concurrency 1.
#
# The load generator runs on the same machine and competes with the server
# for the cores; it is the same generator, with the same settings, for every
# target.
#
# usage: bench/realtime/run.sh          (from anywhere)
# env:   DURATION=3   measured seconds per run (plus WARMUP)
#        WARMUP=0.5   warm-up seconds per run
#        ROUNDS=3     passes over the whole matrix (interleaved, so drift
#                     and noise from neighbours hit every target alike);
#                     the table shows the median of the rounds
#        CONCURRENCY="1 16 64"
#        NGINX=/usr/sbin/nginx
#        BERTH_LOG_LEVEL=warn   berth's --log-level during the run
#        LOOPROXY=1   also measure bench/realtime/looproxy, a minimal
#                     event-loop proxy in Go (a reference point for berth's
#                     design, not a product), as target "looproxy"
#        AUTH=1       also measure berth with signature verification on, as
#                     target "berth-auth": the same binary started with an
#                     access key pair, driven by loadgen -sign (every
#                     request carries a SigV4 signature the server checks);
#                     prints berth-auth/berth, the cost of verification
#        BERTH_B=path also measure this second berth binary, as target
#                     "berth-b" (an A/B of two builds in one run)
#        PERFSTAT=1   also count, with `perf stat` (Debian package linux-perf,
#                     like PERF=1), the system calls and
#                     context switches per request of each proxy (and the
#                     direct server) during the last round
#        PERF=1       also record `perf record -g` of berth during its
#                     highest-concurrency run and print the top symbols
#        KEEP=1       keep the temp dir (logs, configs) for inspection
#        BERTH_BIN=path   use this berth binary instead of building ./cmd/berth
#        BERTH_REF=rev    build berth from this git revision (git archive into
#                         the temp dir) instead of the working tree, e.g. to
#                         compare router versions
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-3}
WARMUP=${WARMUP:-0.5}
ROUNDS=${ROUNDS:-3}
CONCURRENCY=${CONCURRENCY:-1 16 64}
NGINX=${NGINX:-/usr/sbin/nginx}
BERTH_LOG_LEVEL=${BERTH_LOG_LEVEL:-warn}
ENDPOINT=bench-echo

TMP=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench-realtime.XXXXXX")
chmod 711 "$TMP" # model processes of a root berth run as "nobody"
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  if [[ ${KEEP:-} == 1 ]]; then
    echo "# kept $TMP" >&2
  else
    rm -rf "$TMP"
  fi
}
trap cleanup EXIT

log() { echo "# $*" >&2; }

# wait_http URL [BODY]: waits up to 10 s for URL to answer 2xx to a GET, or
# to a POST of BODY.
wait_http() {
  local _ args=()
  if [[ -n ${2:-} ]]; then args=(--data-binary "$2"); fi
  for _ in $(seq 1 200); do
    if curl -fsS -o /dev/null --max-time 2 "${args[@]}" "$1" 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "no answer from $1" >&2
  return 1
}

# sm OP JSON: one SageMaker control-plane call (awsJson1_1), unsigned, or
# signed with SigV4 by curl when SM_SIGN is KEY:SECRET.
sm() {
  local sign=()
  if [[ -n ${SM_SIGN:-} ]]; then sign=(--aws-sigv4 "aws:amz:us-east-1:sagemaker" --user "$SM_SIGN"); fi
  curl -fsS "${sign[@]}" -X POST "http://127.0.0.1:$BERTH_PORT/" \
    -H "X-Amz-Target: SageMaker.$1" \
    -H 'Content-Type: application/x-amz-json-1.1' \
    --data-binary "$2"
}

# ---------------------------------------------------------------- build
log "building loadgen, testserver and berth"
go build -o "$TMP/loadgen" ./bench/realtime/loadgen
go build -o "$TMP/testserver" ./internal/testserver
if [[ ${LOOPROXY:-} == 1 ]]; then
  go build -o "$TMP/looproxy" ./bench/realtime/looproxy
fi
if [[ -n ${BERTH_BIN:-} ]]; then
  cp "$BERTH_BIN" "$TMP/berth"
  log "berth: $BERTH_BIN (prebuilt)"
elif [[ -n ${BERTH_REF:-} ]]; then
  mkdir "$TMP/src"
  git archive "$BERTH_REF" | tar -x -C "$TMP/src"
  (cd "$TMP/src" && go build -o "$TMP/berth" ./cmd/berth)
  log "berth: built from git revision $(git rev-parse --short "$BERTH_REF")"
else
  go build -o "$TMP/berth" ./cmd/berth
  log "berth: built from the working tree at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo ' + local changes')"
fi

mapfile -t PORTS < <("$TMP/loadgen" -freeports 7)
ECHO_PORT=${PORTS[0]}
NGINX1_PORT=${PORTS[1]}
NGINX2_PORT=${PORTS[2]}
BERTH_PORT=${PORTS[3]}
LOOP_PORT=${PORTS[4]}
BERTHB_PORT=${PORTS[5]}
BERTHAUTH_PORT=${PORTS[6]}
AUTH_KEYS=bench-key:bench-secret

# ---------------------------------------------------------------- (a) echo server
SAGEMAKER_BIND_TO_PORT=$ECHO_PORT "$TMP/testserver" >"$TMP/testserver.log" 2>&1 &
ECHO_PID=$!
PIDS+=("$ECHO_PID")
wait_http "http://127.0.0.1:$ECHO_PORT/ping"

# ---------------------------------------------------------------- (b) nginx
# One config per worker count. Access log off (berth logs no requests at
# warn either), keepalive to the upstream sized for 64 clients, no limit on
# requests per connection on either side so neither side reconnects.
declare -A NGINX_PID
start_nginx() { # workers port
  local dir=$TMP/nginx-w$1
  mkdir -p "$dir/logs"
  cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes $1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events {
  worker_connections 4096;
}
http {
  access_log off;
  client_body_temp_path $dir/client_body;
  proxy_temp_path $dir/proxy;
  keepalive_requests 100000000;
  keepalive_timeout 75s;
  upstream echo {
    server 127.0.0.1:$ECHO_PORT;
    keepalive 128;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
  }
  server {
    listen 127.0.0.1:$2;
    location / {
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
EOF
  "$NGINX" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" &
  PIDS+=($!)
  NGINX_PID[$1]=$!
  wait_http "http://127.0.0.1:$2/ping"
}
start_nginx 1 "$NGINX1_PORT"
start_nginx 2 "$NGINX2_PORT"

if [[ ${LOOPROXY:-} == 1 ]]; then
  "$TMP/looproxy" -listen "127.0.0.1:$LOOP_PORT" -upstream "127.0.0.1:$ECHO_PORT" >"$TMP/looproxy.log" 2>&1 &
  LOOP_PID=$!
  PIDS+=("$LOOP_PID")
  wait_http "http://127.0.0.1:$LOOP_PORT/invocations" x
fi

# ---------------------------------------------------------------- (c) berth
cat >"$TMP/berth.yaml" <<EOF
images:
  bench/echo:1:
    command: ["$TMP/testserver"]
EOF
# start_berth BIN PORT NAME [KEY:SECRET]: starts BIN serve on PORT with its
# own data dir (and the access key pair, when given), deploys the echo
# endpoint and waits for InService; sets STARTED_PID.
start_berth() {
  local bin=$1 port=$2 name=$3 up= status= _
  local SM_SIGN=${4:-}
  BERTH_ACCESS_KEY_ID=${SM_SIGN%%:*} BERTH_SECRET_ACCESS_KEY=${SM_SIGN#*:} "$bin" serve --listen "127.0.0.1:$port" --data-dir "$TMP/$name-data" \
    --config "$TMP/berth.yaml" --log-level "$BERTH_LOG_LEVEL" >"$TMP/$name.log" 2>&1 &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  for _ in $(seq 1 200); do
    if BERTH_PORT=$port sm ListEndpoints '{}' >/dev/null 2>&1; then up=1 && break; fi
    sleep 0.05
  done
  if [[ -z $up ]]; then
    echo "$name did not come up on 127.0.0.1:$port" >&2
    cat "$TMP/$name.log" >&2
    exit 1
  fi
  BERTH_PORT=$port sm CreateModel '{"ModelName":"bench-echo","ExecutionRoleArn":"arn:aws:iam::123456789012:role/bench",
    "PrimaryContainer":{"Image":"bench/echo:1"}}' >/dev/null
  BERTH_PORT=$port sm CreateEndpointConfig '{"EndpointConfigName":"bench-echo","ProductionVariants":[{"VariantName":"AllTraffic",
    "ModelName":"bench-echo","InitialInstanceCount":1,"InstanceType":"ml.m5.large"}]}' >/dev/null
  BERTH_PORT=$port sm CreateEndpoint "{\"EndpointName\":\"$ENDPOINT\",\"EndpointConfigName\":\"bench-echo\"}" >/dev/null
  for _ in $(seq 1 300); do
    status=$(BERTH_PORT=$port sm DescribeEndpoint "{\"EndpointName\":\"$ENDPOINT\"}" |
      sed -n 's/.*"EndpointStatus": *"\([A-Za-z]*\)".*/\1/p')
    [[ $status == InService || $status == Failed ]] && break
    sleep 0.05
  done
  if [[ $status != InService ]]; then
    echo "$name: endpoint did not reach InService (status: ${status:-unknown})" >&2
    cat "$TMP/$name.log" >&2
    exit 1
  fi
}
start_berth "$TMP/berth" "$BERTH_PORT" berth
BERTH_PID=$STARTED_PID
if [[ -n ${BERTH_B:-} ]]; then
  cp "$BERTH_B" "$TMP/berth-b"
  start_berth "$TMP/berth-b" "$BERTHB_PORT" berth-b
  BERTHB_PID=$STARTED_PID
  log "berth-b: $BERTH_B"
fi
if [[ ${AUTH:-} == 1 ]]; then
  start_berth "$TMP/berth" "$BERTHAUTH_PORT" berth-auth "$AUTH_KEYS"
  BERTHAUTH_PID=$STARTED_PID
fi

# ---------------------------------------------------------------- the matrix
declare -A URL=(
  [direct]="http://127.0.0.1:$ECHO_PORT/invocations"
  [nginx-w1]="http://127.0.0.1:$NGINX1_PORT/invocations"
  [nginx-w2]="http://127.0.0.1:$NGINX2_PORT/invocations"
  [berth]="http://127.0.0.1:$BERTH_PORT/endpoints/$ENDPOINT/invocations"
)
TARGETS=(direct nginx-w1 nginx-w2 berth)
if [[ -n ${BERTH_B:-} ]]; then
  URL[berth-b]="http://127.0.0.1:$BERTHB_PORT/endpoints/$ENDPOINT/invocations"
  TARGETS+=(berth-b)
fi
if [[ ${LOOPROXY:-} == 1 ]]; then
  URL[looproxy]="http://127.0.0.1:$LOOP_PORT/invocations"
  TARGETS+=(looproxy)
fi
declare -A LOADGEN_ARGS
if [[ ${AUTH:-} == 1 ]]; then
  URL[berth-auth]="http://127.0.0.1:$BERTHAUTH_PORT/endpoints/$ENDPOINT/invocations"
  LOADGEN_ARGS[berth-auth]="-sign $AUTH_KEYS"
  TARGETS+=(berth-auth)
fi
read -r -a CONCS <<<"$CONCURRENCY"
MAXC=${CONCS[-1]}
for c in "${CONCS[@]}"; do
  if ((c > MAXC)); then MAXC=$c; fi
done

# median WORDS...: the median of numbers (the mean of the middle two for an
# even count).
median() {
  printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
    if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2
  }'
}

# cpu_ticks PID...: user+system CPU clock ticks used so far by the processes
# (their own threads; not children they started).
cpu_ticks() {
  local p s f total=0
  for p in "$@"; do
    s=$(<"/proc/$p/stat") || continue
    read -r -a f <<<"${s##*) }"
    total=$((total + f[11] + f[12]))
  done
  echo "$total"
}

# proxy_pids TARGET: the processes whose CPU time is charged to TARGET: the
# echo server for direct, nginx's master and workers, berth (without the
# model server it started).
proxy_pids() {
  case $1 in
    direct) echo "$ECHO_PID" ;;
    nginx-w*) echo "${NGINX_PID[${1#nginx-w}]}" && pgrep -P "${NGINX_PID[${1#nginx-w}]}" ;;
    berth) echo "$BERTH_PID" ;;
    looproxy) echo "$LOOP_PID" ;;
    berth-b) echo "$BERTHB_PID" ;;
    berth-auth) echo "$BERTHAUTH_PID" ;;
  esac
}
CLK_TCK=$(getconf CLK_TCK)

declare -A ALL_RPS ALL_P50 ALL_P99 ALL_CPU ERR RPS P50 P99 CPU STAT_TOTAL
# Read and write calls under each name the servers use (Go: read/write;
# nginx: recvfrom/writev), the epoll waits, and the futex calls through
# which Go's scheduler parks and wakes its threads.
STAT_EVENTS=syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write,syscalls:sys_enter_writev
STAT_EVENTS+=,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,context-switches
log "$(nproc) CPUs; $ROUNDS rounds of ${DURATION}s measured after ${WARMUP}s warm-up per run; 64-byte text/csv body"
for ((r = 1; r <= ROUNDS; r++)); do
  for c in "${CONCS[@]}"; do
    for t in "${TARGETS[@]}"; do
      perf_pid=
      if [[ ${PERF:-} == 1 && $t == berth && $c == "$MAXC" && $r == "$ROUNDS" ]]; then
        perf record -q -g -o "$TMP/perf.data" -p "$BERTH_PID" -- \
          sleep "$(awk -v a="$WARMUP" -v b="$DURATION" 'BEGIN {print a + b}')" >/dev/null 2>&1 &
        perf_pid=$!
      fi
      mapfile -t pids < <(proxy_pids "$t")
      stat_pid=
      if [[ ${PERFSTAT:-} == 1 && $r == "$ROUNDS" ]]; then
        perf stat -x, -o "$TMP/stat-$t-$c" -e "$STAT_EVENTS" -p "$(IFS=,; echo "${pids[*]}")" -- \
          sleep "$(awk -v a="$WARMUP" -v b="$DURATION" 'BEGIN {print a + b}')" >/dev/null 2>&1 &
        stat_pid=$!
      fi
      ticks0=$(cpu_ticks "${pids[@]}")
      # shellcheck disable=SC2086 # LOADGEN_ARGS are words
      out=$("$TMP/loadgen" -url "${URL[$t]}" -c "$c" -d "${DURATION}s" -warmup "${WARMUP}s" ${LOADGEN_ARGS[$t]:-})
      ticks1=$(cpu_ticks "${pids[@]}")
      if [[ -n $perf_pid ]]; then wait "$perf_pid" || true; fi
      if [[ -n $stat_pid ]]; then
        wait "$stat_pid" || true
        STAT_TOTAL[$t,$c]=$(sed -n 's/.*total=\([0-9]*\).*/\1/p' <<<"$out")
      fi
      log "round $r $t c=$c: $out"
      for kv in $out; do
        case $kv in
          rps=*) ALL_RPS[$t,$c]+=" ${kv#rps=}" ;;
          p50_us=*) ALL_P50[$t,$c]+=" ${kv#p50_us=}" ;;
          p99_us=*) ALL_P99[$t,$c]+=" ${kv#p99_us=}" ;;
          errors=*) ERR[$t,$c]=$((${ERR[$t,$c]:-0} + ${kv#errors=})) ;;
          total=*)
            ALL_CPU[$t,$c]+=" $(awk -v t=$((ticks1 - ticks0)) -v hz="$CLK_TCK" -v n="${kv#total=}" \
              'BEGIN {printf "%.1f", t / hz * 1e6 / n}')"
            ;;
        esac
      done
    done
  done
done
for c in "${CONCS[@]}"; do
  for t in "${TARGETS[@]}"; do
    # shellcheck disable=SC2086 # word splitting of the lists is intended
    {
      RPS[$t,$c]=$(median ${ALL_RPS[$t,$c]})
      P50[$t,$c]=$(median ${ALL_P50[$t,$c]})
      P99[$t,$c]=$(median ${ALL_P99[$t,$c]})
      CPU[$t,$c]=$(median ${ALL_CPU[$t,$c]})
    }
  done
done

# ---------------------------------------------------------------- report
echo
echo "median of $ROUNDS rounds; errors summed"
echo "CPU µs/req: CPU time of the echo server (direct) or of the proxy alone"
echo "(nginx master+workers, berth without its model server) per request"
echo
echo "| target | c | req/s | p50 µs | p99 µs | CPU µs/req | errors |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for c in "${CONCS[@]}"; do
  for t in "${TARGETS[@]}"; do
    printf '| %s | %s | %.0f | %.1f | %.1f | %.1f | %s |\n' \
      "$t" "$c" "${RPS[$t,$c]}" "${P50[$t,$c]}" "${P99[$t,$c]}" "${CPU[$t,$c]}" "${ERR[$t,$c]}"
  done
done

echo
echo "| c | berth/direct | berth/nginx-w1 | berth/nginx-w2 | berth ≥ best nginx |"
echo "|---:|---:|---:|---:|:---:|"
meets=yes
for c in "${CONCS[@]}"; do
  line=$(awk -v b="${RPS[berth,$c]}" -v d="${RPS[direct,$c]}" \
    -v n1="${RPS[nginx-w1,$c]}" -v n2="${RPS[nginx-w2,$c]}" -v c="$c" 'BEGIN {
      best = n1 > n2 ? n1 : n2
      printf "| %s | %.2f | %.2f | %.2f | %s |", c, b/d, b/n1, b/n2, (b >= best ? "yes" : "no")
    }')
  echo "$line"
  [[ $line == *"| no |" ]] && meets=no
done

# other_table TARGET: berth against another target, and that target
# against the better nginx.
other_table() {
  echo
  echo "| c | berth/$1 | $1/best nginx |"
  echo "|---:|---:|---:|"
  for c in "${CONCS[@]}"; do
    awk -v b="${RPS[berth,$c]}" -v l="${RPS[$1,$c]}" -v n1="${RPS[nginx-w1,$c]}" -v n2="${RPS[nginx-w2,$c]}" \
      -v c="$c" 'BEGIN {printf "| %s | %.2f | %.2f |\n", c, b/l, l/(n1 > n2 ? n1 : n2)}'
  done
}
if [[ -n ${BERTH_B:-} ]]; then other_table berth-b; fi
if [[ ${LOOPROXY:-} == 1 ]]; then other_table looproxy; fi

# Signature verification on (berth-auth) against off (berth): the ratio of
# the medians and, steadier on a noisy machine, the median of the
# per-round ratios.
if [[ ${AUTH:-} == 1 ]]; then
  echo
  echo "signature verification: berth-auth (on) / berth (off), req/s"
  echo
  echo "| c | ratio of medians | per round | median per round | p50 µs off → on | CPU µs/req off → on |"
  echo "|---:|---:|---|---:|---|---|"
  for c in "${CONCS[@]}"; do
    read -r -a off <<<"${ALL_RPS[berth,$c]}"
    read -r -a on <<<"${ALL_RPS[berth-auth,$c]}"
    ratios=()
    for i in "${!off[@]}"; do
      ratios+=("$(awk -v a="${on[i]}" -v b="${off[i]}" 'BEGIN {printf "%.2f", a / b}')")
    done
    printf '| %s | %s | %s | %s | %.1f → %.1f | %.1f → %.1f |\n' "$c" \
      "$(awk -v a="${RPS[berth-auth,$c]}" -v b="${RPS[berth,$c]}" 'BEGIN {printf "%.2f", a / b}')" \
      "${ratios[*]}" "$(median "${ratios[@]}")" "${P50[berth,$c]}" "${P50[berth-auth,$c]}" "${CPU[berth,$c]}" "${CPU[berth-auth,$c]}"
  done
fi

# Rounds run back to back share the machine's state of the moment, so the
# ratio within each round is steadier than the ratio of medians across
# rounds on a noisy machine; both are shown.
echo
echo "per round: berth / the better nginx of the same round"
echo
echo "| c | rounds | median | min | max |"
echo "|---:|---|---:|---:|---:|"
for c in "${CONCS[@]}"; do
  read -r -a b <<<"${ALL_RPS[berth,$c]}"
  read -r -a n1 <<<"${ALL_RPS[nginx-w1,$c]}"
  read -r -a n2 <<<"${ALL_RPS[nginx-w2,$c]}"
  ratios=()
  for i in "${!b[@]}"; do
    ratios+=("$(awk -v b="${b[i]}" -v x="${n1[i]}" -v y="${n2[i]}" 'BEGIN {printf "%.2f", b / (x > y ? x : y)}')")
  done
  printf '| %s | %s | %s | %s | %s |\n' "$c" "${ratios[*]}" "$(median "${ratios[@]}")" \
    "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)" "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)"
done

if [[ " ${CONCS[*]} " == *" 1 "* ]]; then
  echo
  awk -v b="${P50[berth,1]}" -v d="${P50[direct,1]}" \
    -v n1="${P50[nginx-w1,1]}" -v n2="${P50[nginx-w2,1]}" 'BEGIN {
      printf "added p50 at c=1: berth %+.1f µs, nginx-w1 %+.1f µs, nginx-w2 %+.1f µs (vs direct %.1f µs)\n", b-d, n1-d, n2-d, d
      printf "berth added p50 < 100 µs: %s\n", (b - d < 100 ? "yes" : "no")
    }'
fi
echo "berth req/s >= best nginx at every concurrency: $meets"

if [[ ${PERFSTAT:-} == 1 ]]; then
  echo
  echo "## per request, last round (perf stat on the proxy's processes; direct: the echo server)"
  echo
  echo "| target | c | read+recvfrom | write+writev | epoll waits | futex | context switches |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for c in "${CONCS[@]}"; do
    for t in "${TARGETS[@]}"; do
      f=$TMP/stat-$t-$c
      [[ -s $f && -n ${STAT_TOTAL[$t,$c]:-} ]] || continue
      awk -F, -v t="$t" -v c="$c" -v n="${STAT_TOTAL[$t,$c]}" '
        $3 ~ /sys_enter_(read|recvfrom)$/ {rd += $1}
        $3 ~ /sys_enter_(write|writev)$/ {wr += $1}
        $3 ~ /sys_enter_epoll/ {ep += $1}
        $3 ~ /sys_enter_futex$/ {fx += $1}
        $3 == "context-switches" {cs += $1}
        END {printf "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", t, c, rd/n, wr/n, ep/n, fx/n, cs/n}' "$f"
    done
  done
fi

if [[ ${PERF:-} == 1 && -f $TMP/perf.data ]]; then
  echo
  echo "## perf: berth at c=$MAXC, top symbols (self, then with children)"
  perf report -i "$TMP/perf.data" --no-children --stdio --sort symbol -g none 2>/dev/null \
    | awk '/^ +[0-9]/ {print $1, $2, $3}' | head -30 || true
  echo
  perf report -i "$TMP/perf.data" --children --stdio --sort symbol -g none 2>/dev/null \
    | awk '/^ +[0-9]/ {print $1, $2, $3, $4}' | head -40 || true
fi
