#!/usr/bin/env bash
# Schema fuzzing: schemathesis (PyPI, pinned) against the OpenAPI document of a running debug
# `confab`, once anonymously and once as a moderator of `demo` (bearer token). Fails on any
# finding: a server error, a response (status, content type, headers, body) the document does
# not describe, data the document allows that the server refuses, or data it forbids that the
# server accepts. Settings (checks, phases, examples per operation, seed) are in
# scripts/schemathesis.toml.
#
# The server runs with `--role api`: no task worker, so no mail or webhook is ever sent
# (fuzzed forum settings may name webhook URLs anywhere). Data lives in a temp dir, removed
# with the server at the end.
#
#   scripts/schemathesis.sh              # both runs
#   CONFAB_BIN=path/to/confab scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
. scripts/lib/ports.sh

ST_VERSION=4.32.5

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
venv="$target_dir/tmp/confab-schemathesis"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
  echo "== installing schemathesis $ST_VERSION (PyPI) into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

bin="${CONFAB_BIN:-$target_dir/debug/confab}"
if [ -z "${CONFAB_BIN:-}" ]; then
  cargo build -q -p confab --bin confab
fi

work=$(mktemp -d /tmp/confab-schemathesis.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=
for _ in $(seq 200); do
  p=$(port_candidate)
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "no free port found" >&2; exit 1; }
base="http://127.0.0.1:$port"

start=$(date +%s)
echo "== confab serve on $base (data in $work/data)"
CONFAB_LOG=warn CONFAB_CONNECTIONS__DRAIN_SECS=0 "$bin" serve --data "$work/data" --listen "127.0.0.1:$port" --rate-limit off --role api \
  >"$work/server.log" 2>&1 &
pid=$!
# (HTTP from Python's standard library: curl need not be installed.)
up() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$base/healthz" 2>/dev/null; }
for _ in $(seq 300); do
  up && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
  sleep 0.1
done
up || { echo "server did not start" >&2; cat "$work/server.log" >&2; exit 1; }

# A moderator of the demo forum (which `serve` created), signed in over the API.
password="schemathesis-$RANDOM$RANDOM"
CONFAB_LOG=warn CONFAB_PASSWORD="$password" "$bin" admin create-account fuzzmod --data "$work/data" \
  --email fuzzmod@example.com --moderator-of demo >/dev/null
token=$(CONFAB_PASSWORD="$password" python3 -c '
import json, os, sys, urllib.request
body = json.dumps({"login": "fuzzmod", "password": os.environ["CONFAB_PASSWORD"]}).encode()
req = urllib.request.Request(sys.argv[1], body, {"content-type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=10))["token"])' "$base/api/v1/sessions")
[ -n "$token" ] || { echo "could not sign in as the moderator" >&2; exit 1; }

run() { # NAME [schemathesis args...]
  local name=$1
  shift
  echo "== schemathesis: $name"
  local t0=$(date +%s) rc=0
  # The WebSocket endpoint is left out: the fuzzer's HTTP client cannot speak WebSocket, and an
  # upgrade it sends would be answered with 101 and an open socket.
  (cd "$work" && PYTHONPATH="$root/scripts" "$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" \
    --no-color run "$base/api/openapi.json" --url "$base" --exclude-path /api/v1/threads/live/ws "$@") || rc=$?
  echo "== schemathesis: $name: exit $rc in $(( $(date +%s) - t0 )) s"
  return $rc
}

failed=0
run anonymous || failed=1
run moderator -H "Authorization: Bearer $token" || failed=1

if grep -q "panicked" "$work/server.log"; then
  echo "== the server panicked:" >&2
  grep -A5 "panicked" "$work/server.log" >&2
  failed=1
fi
echo "== schemathesis done in $(( $(date +%s) - start )) s"
if [ "$failed" != 0 ]; then
  echo "== schemathesis found problems (server log: last lines below)" >&2
  tail -20 "$work/server.log" >&2
  exit 1
fi
echo "== schemathesis: no findings"
