#!/usr/bin/env bash
# One site on one node, then on three nodes with a shared cache tier, same load, same run.
#
#   scripts/bench-fleet.sh [--duration 10s] [--concurrency 32] [--scenarios read-hot,counts]
#
# Builds the release binary and starts, each on a free port under a temp dir: a throwaway
# sharded PostgreSQL (scripts/pg-cluster.sh: control, s1 with a streaming replica, s2), a Redis
# for the bus and two memcached servers plus a second Redis for the cache tier. Then runs
# read-hot, read-many, counts and mixed against
#   one node (Redis bus, no tier; rows named by their scenario), and
#   3n/  three nodes on the same databases and bus, with `[cache] servers` = the tier, the
#        load generator's connections spread over the three (`confab bench --node`),
# and prints one table: req/s, latency, and `q/req`, the database statements per request of
# every node together (from each node's /statz). Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
concurrency=32
scenarios=(read-hot read-many counts mixed)
usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }
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
for b in redis-server memcached; do
  command -v "$b" >/dev/null || { echo "$b is needed (apt-get install redis-server memcached)" >&2; exit 1; }
done

results=$tmp/results.jsonl
: >"$results"

source scripts/lib/pg.sh
pg_ensure_bin
pgdir=$(mktemp -d /tmp/confab-fleet-pg.XXXXXX)
stop_all() { scripts/pg-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; cleanup; }
trap stop_all EXIT
echo "== starting PostgreSQL (control, s1 + replica, s2) in $pgdir" >&2
cluster=$(scripts/pg-cluster.sh start "$pgdir")
field() { python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$cluster" "$1"; }
export CONFAB_POSTGRES__CONTROL; CONFAB_POSTGRES__CONTROL=$(field 'c["control"]')
"$bin" shards add s1 --primary "$(field 'c["shards"][0]["primary"]')" --replica "$(field 'c["shards"][0]["replicas"][0]')" >&2
"$bin" shards add s2 --primary "$(field 'c["shards"][1]["primary"]')" >&2
"$bin" shards spread s1 s2 >&2

redis() {
  local port=$1 dir=$tmp/redis-$1
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir.log" 2>&1 &
  pids+=($!)
}
memcached_on() {
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u root)
  memcached -p "$1" -l 127.0.0.1 -U 0 -m 256 "${user[@]}" >"$tmp/memcached-$1.log" 2>&1 &
  pids+=($!)
}
bus_port=$(free_port); redis "$bus_port"
m1=$(free_port); memcached_on "$m1"
m2=$(free_port); memcached_on "$m2"
r1=$(free_port); redis "$r1"
export CONFAB_BUS__REDIS_URL=redis://127.0.0.1:$bus_port/
tier="[\"memcache://127.0.0.1:$m1\", \"memcache://127.0.0.1:$m2\", \"redis://127.0.0.1:$r1/\"]"

# node DATA [ENV...]: starts a node, sets $node_url and $node_pid.
node() {
  local data=$1 port
  shift
  port=$(free_port)
  mkdir -p "$data"
  env CONFAB_LOG=warn CONFAB_CONNECTIONS__DRAIN_SECS=0 "$@" "$bin" serve --listen "127.0.0.1:$port" --data "$data" --rate-limit off >"$data.log" 2>&1 &
  pids+=($!)
  node_pid=$!
  node_url=http://127.0.0.1:$port
  wait_http "$node_url/readyz" "$data.log"
}

node "$tmp/one"
echo "== one node on $node_url" >&2
for s in "${scenarios[@]}"; do
  echo "-- $s" >&2
  "$bin" bench --target "$node_url" --scenario "$s" --duration "$duration" --concurrency "$concurrency" \
    --server-pid "$node_pid" --json >>"$results"
done
stop "$node_pid"

urls=(); srv=()
for i in 1 2 3; do
  # The whole config in the environment: the tier's server list is a TOML array.
  cfg=$tmp/node$i.toml
  printf '[cache]\nservers = %s\n' "$tier" >"$cfg"
  node "$tmp/n$i" CONFAB_CONFIG="$cfg"
  urls+=("$node_url"); srv+=(--server-pid "$node_pid")
done
echo "== 3n/: three nodes ${urls[*]} with the tier $tier" >&2
for s in "${scenarios[@]}"; do
  echo "-- 3n/$s" >&2
  "$bin" bench --target "${urls[0]}" --node "${urls[1]}" --node "${urls[2]}" --scenario "$s" \
    --duration "$duration" --concurrency "$concurrency" "${srv[@]}" --json --label "3n/$s" >>"$results"
done
curl -sf "${urls[0]}/statz" | python3 -c 'import json,sys; print("tier on node 1:", json.load(sys.stdin)["cache_tier"])' >&2

echo
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
echo "# confab $rev, $(nproc) cores, duration $duration, concurrency $concurrency; plain rows one node, 3n/ three nodes with a tier of 2 memcached + 1 Redis, all on this machine"
ratios=()
for s in "${scenarios[@]}"; do ratios+=(--ratio "3n/$s/$s"); done
"$bin" bench --report "$results" "${ratios[@]}"
