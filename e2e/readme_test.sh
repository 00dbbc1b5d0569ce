#!/usr/bin/env bash
# Runs the README's Set up build and its two walk-throughs (AWS CLI, then
# boto3) as written, the way a new user would, so the README cannot rot.
#
# The code blocks it runs are the fenced blocks right after the README's
# "<!-- readme-test: NAME -->" comments: build, model, config, serve, cli,
# boto3. They run in a throwaway directory that looks like a fresh clone
# (symbolic links to the repository's tracked top-level entries), with a
# HOME of its own and no AWS_* variables, so nothing of this machine's AWS
# setup helps them. The only change made to them: berth is told to listen
# on a free port (BERTH_LISTEN) and the client blocks' 127.0.0.1:7070 is
# rewritten to it.
#
# Besides every command succeeding, it checks the predictions, and that the
# AWS waiters (30 s between polls) return from their first poll: the CLI's
# `wait endpoint-in-service` in under 10 s, the whole boto3 script in under
# 20 s.
#
# Needs go, curl, /usr/bin/python3 with boto3 and sklearn, and the AWS CLI
# (Debian: python3-boto3 python3-sklearn awscli curl).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
readme="$root/README.md"
python=/usr/bin/python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-readme.XXXXXX")
chmod 711 "$tmp" # model processes of a root berth run as "nobody", who must pass through
clone="$tmp/clone"
berth_pid=""

cleanup() {
  local status=$?
  if [[ -n "$berth_pid" ]]; then
    kill "$berth_pid" 2>/dev/null || true
    wait "$berth_pid" 2>/dev/null || true
  fi
  if ((status != 0)) && [[ -f "$tmp/berth.log" ]]; then
    echo "---- berth log (README walk-through) ----" >&2
    cat "$tmp/berth.log" >&2
    echo "---- end of berth log ----" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

fail() {
  echo "readme: $*" >&2
  exit 1
}

# block NAME prints the fenced code block that follows the README comment
# "<!-- readme-test: NAME -->" on the next line.
block() {
  awk -v marker="<!-- readme-test: $1 -->" '
    state == 0 && $0 == marker { state = 1; next }
    state == 1 { if ($0 ~ /^```/) { state = 2; next } exit }
    state == 2 { if ($0 ~ /^```/) { found = 1; exit } print }
    END { exit found ? 0 : 1 }
  ' "$readme" || fail "no code block right after <!-- readme-test: $1 --> in README.md"
}

# Every marked block is run here; a new one must be added to this script.
want="boto3 build cli config model serve"
have=$(grep -o '<!-- readme-test: [a-z0-9-]* -->' "$readme" | awk '{print $3}' | sort | xargs)
[[ "$have" == "$want" ]] || fail "README.md marks blocks [$have]; this script runs [$want]"

# A directory that looks like a fresh clone.
mkdir -p "$clone" "$tmp/home"
if entries=$(git -C "$root" ls-files 2>/dev/null) && [[ -n "$entries" ]]; then
  entries=$(cut -d/ -f1 <<<"$entries" | sort -u)
else
  entries=$(cd "$root" && ls -A | grep -vxE '\.git|berth|berth-data|demo')
fi
while read -r e; do
  ln -s "$root/$e" "$clone/$e"
done <<<"$entries"
cd "$clone"

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
at_port() {
  local text
  text=$(block "$1")
  grep -q '127\.0\.0\.1:7070' <<<"$text" || fail "the $1 block no longer names 127.0.0.1:7070"
  sed "s/127\.0\.0\.1:7070/127.0.0.1:$port/g" <<<"$text"
}

echo "readme: Set up (build)"
bash -euo pipefail -c "$(block build)"

# From here on, a user with no AWS configuration at all.
export HOME="$tmp/home"
for v in $(compgen -e | grep '^AWS_' || true); do unset "$v"; done

echo "readme: walk-through: model and config"
bash -euo pipefail -c "$(block model)"
bash -euo pipefail -c "$(block config)"

serve=$(block serve)
[[ "$serve" != *$'\n'* ]] || fail "the serve block must be one command"
BERTH_LISTEN="127.0.0.1:$port" bash -c "exec $serve" >"$tmp/berth.log" 2>&1 &
berth_pid=$!
for _ in $(seq 100); do
  curl -fsS -o /dev/null "$url/ping" 2>/dev/null && break
  kill -0 "$berth_pid" 2>/dev/null || fail "berth exited before answering /ping"
  sleep 0.1
done
curl -fsS -o /dev/null "$url/ping" || fail "berth did not answer $url/ping within 10 s"

echo "readme: walk-through with the AWS CLI"
# Each traced command is stamped with the time it started (bash takes PS4
# from the environment only when not run as root, so it is set inside).
bash -euo pipefail -c "PS4='+ \${EPOCHREALTIME} '; set -x
$(at_port cli)" \
  >"$tmp/cli.out" 2>"$tmp/cli.err" || {
  cat "$tmp/cli.out" "$tmp/cli.err" >&2
  fail "the AWS CLI walk-through failed"
}
cmp -s demo/out.csv demo/expected.csv || fail "demo/out.csv differs from demo/expected.csv"
waited=$(awk '
  /^\+ [0-9]+\.[0-9]+ / { if (start != "" && end == "") end = $2 }
  /^\+ [0-9]+\.[0-9]+ aws .* wait endpoint-in-service/ { start = $2 }
  END { if (start == "" || end == "") exit 1; printf "%.1f", end - start }
' "$tmp/cli.err") || { cat "$tmp/cli.err" >&2; fail "could not time the CLI's wait endpoint-in-service"; }
echo "readme: aws sagemaker wait endpoint-in-service took ${waited}s"
awk -v w="$waited" 'BEGIN { exit !(w < 10) }' ||
  fail "the CLI waiter took ${waited}s: CreateEndpoint answered before the endpoint settled"

echo "readme: walk-through with boto3"
at_port boto3 >demo/walkthrough.py
start=$EPOCHREALTIME
out=$("$python" demo/walkthrough.py) || fail "the boto3 walk-through failed"
took=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
echo "readme: boto3 walk-through took ${took}s"
[[ "$out" == $'0\n2' ]] || fail "boto3 walk-through printed $(printf %q "$out"), want 0 and 2"
awk -v w="$took" 'BEGIN { exit !(w < 20) }' ||
  fail "the boto3 walk-through took ${took}s: its waiter did not return from its first poll"

echo "readme: walk-throughs ran as written"
