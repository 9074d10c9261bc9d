#!/usr/bin/env bash
# A fleet run the way an operator runs it, tested through HAProxy with its default retry policy
# (it retries connection failures only, so no POST is ever sent twice): scripts/fleet.sh up
# (sharded PostgreSQL, Redis bus, two memcached, three nodes, deploy/haproxy.cfg as shipped),
# then `confab bench` load through the balancer while
#   1. every node is restarted in turn (scripts/fleet.sh restart: SIGTERM, drain, start):
#      no request fails, and live clients (SSE through HAProxy) are told to reconnect;
#   2. one memcached server of the cache tier is killed: no request fails;
#   3. the control database is stopped for 10 s: no read fails, every node says `degraded`
#      (not down) meanwhile and `ready` after.
# Called by scripts/test.sh; CONFAB_BIN is the binary under test (default target/debug/confab).
# Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CONFAB_BIN:-target/debug/confab}
[ -x "$bin" ] || { echo "no binary at $bin (cargo build, or set CONFAB_BIN)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
# shellcheck source=lib/pg.sh
. scripts/lib/pg.sh
pg_ensure_bin

work=$(mktemp -d /tmp/confab-fleet-test.XXXXXX)
chmod 755 "$work"
fleet=$work/fleet
cleanup() {
  local p
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  scripts/fleet.sh down --dir "$fleet" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
fail() {
  echo "FAILED: $*" >&2
  for f in "$fleet"/node*.log "$fleet/haproxy.log"; do
    [ -f "$f" ] && { echo "--- last lines of $f" >&2; tail -15 "$f" >&2; }
  done
  exit 1
}

echo "== fleet up (scripts/fleet.sh)"
lb=$(PG_FAST=1 CONFAB_BIN=$bin scripts/fleet.sh up --dir "$fleet" --no-rate-limit 2>"$work/up.log" | tail -1) ||
  { cat "$work/up.log" >&2; fail "scripts/fleet.sh up"; }
# shellcheck disable=SC1091
. "$fleet/fleet.env"
echo "balancer: $lb"

# The bench's threads, seeded once through the balancer.
"$bin" bench --target "$lb" --scenario mixed --duration 1s --warmup 0s --concurrency 4 --json >/dev/null 2>"$work/seed.log" ||
  { cat "$work/seed.log" >&2; fail "seeding"; }

# load NAME SCENARIO SECONDS: `confab bench` through the balancer, in the background.
load() {
  "$bin" bench --target "$lb" --scenario "$2" --duration "$3s" --warmup 0s --concurrency 8 --no-seed --json \
    >"$work/$1.json" 2>"$work/$1.err" &
  load_pid=$!
}
# no_failures NAME: the run's JSON row says it made requests and none failed.
no_failures() {
  wait "$load_pid" || { cat "$work/$1.err" >&2; fail "$1: confab bench failed"; }
  python3 - "$work/$1.json" "$1" <<'PY' || fail "$1: requests failed (above)"
import json, sys
row = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
print(f"{sys.argv[2]}: {row['requests']} requests, {row['errors']} failed, {row['rps']} req/s, p99 {row['p99_ms']} ms")
if row["errors"]:
    print(row.get("error_kinds"), row.get("first_error"))
sys.exit(1 if row["errors"] or row["requests"] < 100 else 0)
PY
}

echo "== 1. rolling restart of every node under load (reads and posts)"
for i in 1 2 3; do
  curl -sN -m 120 "$lb/api/v1/threads/live?forum=demo&ident=%2Fbench%2Fmany%2F$i" >"$work/sse$i.txt" 2>/dev/null &
done
load restart mixed 45
sleep 3
for i in 1 2 3; do
  grep -q "^event: hello" "$work/sse$i.txt" || fail "live stream $i through HAProxy did not open: $(head -3 "$work/sse$i.txt")"
done
scripts/fleet.sh restart --dir "$fleet" 2>&1 | sed 's/^/   /'
no_failures restart
for i in 1 2 3; do
  grep -q "^event: reconnect" "$work/sse$i.txt" || fail "live stream $i was not told to reconnect"
done
echo "live streams through HAProxy: all 3 told to reconnect when their node stopped"

echo "== 2. one cache server killed under load"
load cache mixed 12
sleep 3
kill -9 "$MEMCACHED1_PID"
no_failures cache

echo "== 3. the control database stopped for 10 s under read load"
load control read-many 20
sleep 3
pg_stop "$PG_DIR/control"
sleep 2
# shellcheck disable=SC1091
. "$fleet/fleet.env"
for i in $(seq "$NODES"); do
  port=$(eval echo "\$NODE${i}_PORT")
  r=$(curl -s -m 5 -w ' %{http_code}' "http://127.0.0.1:$port/readyz")
  case "$r" in
    "degraded: control database unreachable"*" 200") ;;
    *) fail "node$i with the control database stopped: /readyz said: $r" ;;
  esac
done
echo "every node: $(curl -s -m 5 "http://127.0.0.1:$NODE1_PORT/readyz")"
sleep 8
pg_start "$PG_DIR/control"
no_failures control
deadline=$((SECONDS + 30))
for i in $(seq "$NODES"); do
  port=$(eval echo "\$NODE${i}_PORT")
  until [ "$(curl -s -m 5 "http://127.0.0.1:$port/readyz")" = ready ]; do
    [ $SECONDS -lt $deadline ] || fail "node$i not ready 30 s after the control database came back"
    sleep 0.5
  done
done
echo "every node ready again"
echo "== fleet tests passed"
