#!/usr/bin/env bash
# One site on one node, on three nodes with a shared cache tier, and on those three through
# HAProxy, same load, same run.
#
#   scripts/bench-fleet.sh [--duration 10s] [--concurrency 32] [--scenarios read-hot,counts]
#
# Builds the release binary and starts a local fleet with scripts/fleet.sh (a sharded
# PostgreSQL with fsync on, a Redis bus, a tier of two memcached servers, three nodes and
# HAProxy running deploy/haproxy.cfg), plus one more node on the same databases and bus with no
# tier. Then runs read-hot, read-many, counts and mixed against
#   the lone node (rows named by their scenario),
#   3n/  the three nodes directly, the load generator's connections spread over them
#        (`confab bench --node`), and
#   lb/  the same three nodes through HAProxy,
# and prints one table: req/s, latency, and `q/req`, the database statements per request of
# every node together (from each node's /statz; HAProxy keeps /statz to itself, so lb/ rows
# have none), with the ratios 3n/one node and lb/3n (the proxy hop), and read-hot at a fixed
# 2,000 req/s both ways, whose latencies show what the hop adds. Everything it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
concurrency=32
scenarios=(read-hot read-many counts mixed)
usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --scenarios) IFS=, read -r -a scenarios <<<"$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

source "scripts/lib/bench-common.sh"
bench_setup confab-fleet-bench
chmod 755 "$tmp"
fleet=$tmp/fleet
stop_all() { scripts/fleet.sh down --dir "$fleet" >/dev/null 2>&1 || true; cleanup; }
trap stop_all EXIT

results=$tmp/results.jsonl
: >"$results"

lb=$(CONFAB_BIN=$bin scripts/fleet.sh up --dir "$fleet" --no-rate-limit | tail -1)
# shellcheck disable=SC1091
. "$fleet/fleet.env"
urls=(); srv=()
for i in 1 2 3; do
  urls+=("http://127.0.0.1:$(eval echo "\$NODE${i}_PORT")")
  srv+=(--server-pid "$(eval echo "\$NODE${i}_PID")")
done

# The lone node: node1's configuration without the tier, on a port of its own.
port=$(free_port)
grep -v '^servers = ' "$fleet/node1.toml" | sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" \
  -e "s|^data_dir = .*|data_dir = \"$tmp/one\"|" >"$tmp/one.toml"
CONFAB_LOG=warn "$bin" serve --config "$tmp/one.toml" >"$tmp/one.log" 2>&1 &
pids+=($!)
one_pid=$!
one=http://127.0.0.1:$port
wait_http "$one/readyz" "$tmp/one.log"

echo "== one node on $one" >&2
for s in "${scenarios[@]}"; do
  echo "-- $s" >&2
  "$bin" bench --target "$one" --scenario "$s" --duration "$duration" --concurrency "$concurrency" \
    --server-pid "$one_pid" --json >>"$results"
done
stop "$one_pid"

echo "== 3n/: three nodes ${urls[*]} with the tier" >&2
for s in "${scenarios[@]}"; do
  echo "-- 3n/$s" >&2
  "$bin" bench --target "${urls[0]}" --node "${urls[1]}" --node "${urls[2]}" --scenario "$s" \
    --duration "$duration" --concurrency "$concurrency" "${srv[@]}" --json --label "3n/$s" >>"$results"
done
curl -sf "${urls[0]}/statz" | python3 -c 'import json,sys; print("tier on node 1:", json.load(sys.stdin)["cache_tier"])' >&2

echo "== lb/: the same three nodes through HAProxy on $lb" >&2
for s in "${scenarios[@]}"; do
  echo "-- lb/$s" >&2
  "$bin" bench --target "$lb" --scenario "$s" --duration "$duration" --concurrency "$concurrency" \
    "${srv[@]}" --server-pid "$HAPROXY_PID" --json --label "lb/$s" >>"$results"
done
# The hop's cost in latency, at a rate both sustain (open loop: no coordinated omission).
rate=2000
echo "-- read-hot at $rate req/s: the three nodes directly, then through HAProxy" >&2
"$bin" bench --target "${urls[0]}" --node "${urls[1]}" --node "${urls[2]}" --scenario read-hot --rate "$rate" \
  --duration "$duration" --concurrency "$concurrency" "${srv[@]}" --json --label "3n/read-hot@$rate/s" >>"$results"
"$bin" bench --target "$lb" --scenario read-hot --rate "$rate" --duration "$duration" --concurrency "$concurrency" \
  "${srv[@]}" --server-pid "$HAPROXY_PID" --json --label "lb/read-hot@$rate/s" >>"$results"

echo
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
echo "# confab $rev, $(nproc) cores, duration $duration, concurrency $concurrency; plain rows one node, 3n/ three nodes with a tier of 2 memcached, lb/ those three through HAProxy, all on this machine"
ratios=()
for s in "${scenarios[@]}"; do ratios+=(--ratio "3n/$s/$s" --ratio "lb/$s/3n/$s"); done
"$bin" bench --report "$results" "${ratios[@]}"
