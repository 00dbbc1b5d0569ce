#!/usr/bin/env bash
# End-to-end test through clients nobody here wrote: runs the README's
# walk-throughs as written (e2e/readme_test.sh, a berth of their own), then
# builds berth, serves it on a free loopback port with a throwaway data dir,
# an access key pair (so every request is signature-checked) and the image
# my-sklearn:1 (e2e/sklearn/serve.py), trains a scikit-learn model, and runs
# e2e/boto3_cli_test.py (boto3 and the AWS CLI) against it.
#
# Needs go, /usr/bin/python3 with boto3 and sklearn, and /usr/bin/aws
# (Debian: python3-boto3 python3-sklearn awscli).
# The last line printed is "e2e: N passed, M failed"; exit status 0 only if
# every check passed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
python=/usr/bin/python3

tmp=$(mktemp -d "${TMPDIR:-/tmp}/berth-e2e.XXXXXX")
# Run as root, berth runs model processes as "nobody" (runtime.run_as_user):
# they must pass through to the data dir and read the server script.
chmod 711 "$tmp"
cp "$here/sklearn/serve.py" "$tmp/serve.py"
berth_pid=""
summary_printed=false

cleanup() {
  local status=$?
  if [[ -n "$berth_pid" ]]; then
    kill "$berth_pid" 2>/dev/null || true
    wait "$berth_pid" 2>/dev/null || true
  fi
  if ((status != 0)); then
    if [[ -f "$tmp/berth.log" ]]; then
      echo "---- berth log ----" >&2
      cat "$tmp/berth.log" >&2
      echo "---- end of berth log ----" >&2
    fi
    # The harness reads the summary line; say something even if the tests
    # never got to run.
    $summary_printed || echo "e2e: 0 passed, 1 failed"
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT

bash "$here/readme_test.sh"

echo "building berth"
(cd "$root" && go build -o "$tmp/berth" ./cmd/berth)

cat >"$tmp/berth.yaml" <<YAML
images:
  my-sklearn:1:
    command: ["$python", "$tmp/serve.py"]
YAML

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"

# With credentials, as a shared deployment runs: every check signs with
# the key pair boto3_cli_test.py gives boto3 and the CLI (test/test).
BERTH_ACCESS_KEY_ID=test BERTH_SECRET_ACCESS_KEY=test \
  "$tmp/berth" serve --listen "127.0.0.1:$port" --data-dir "$tmp/data" \
  --config "$tmp/berth.yaml" >"$tmp/berth.log" 2>&1 &
berth_pid=$!

for _ in $(seq 100); do
  if curl -fsS -o /dev/null "$url/ping" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$berth_pid" 2>/dev/null; then
    echo "berth exited before answering /ping" >&2
    exit 1
  fi
  sleep 0.1
done
if ! curl -fsS -o /dev/null "$url/ping"; then
  echo "berth did not answer $url/ping within 10 s" >&2
  exit 1
fi
echo "berth serving at $url"

"$python" "$here/sklearn/train.py" "$tmp/artifacts"

summary_printed=true
"$python" "$here/boto3_cli_test.py" --endpoint-url "$url" \
  --artifacts "$tmp/artifacts" --work-dir "$tmp"
