#!/usr/bin/env bash
# A whole Confab fleet on this machine, for trying scale-out and for the tests: a sharded
# PostgreSQL (control; shard s1 with a streaming replica; shard s2), a Redis bus, a cache tier
# of two memcached servers, three `confab serve` nodes and HAProxy in front of them, running
# deploy/haproxy.cfg as shipped (only its addresses replaced). Every server gets a free
# 127.0.0.1 port and keeps its data and log under DIR.
#
#   scripts/fleet.sh up [--dir DIR] [--nodes N] [--no-rate-limit]
#   scripts/fleet.sh status [--dir DIR]
#   scripts/fleet.sh restart [--dir DIR]      # rolling restart: one node at a time, SIGTERM,
#                                             # wait for it to exit, start it, wait until HAProxy
#                                             # has it back in rotation
#   scripts/fleet.sh stop-node|start-node I [--dir DIR]
#   scripts/fleet.sh down [--dir DIR]         # stops everything; DIR is removed
#
# DIR defaults to $CONFAB_FLEET_DIR or /tmp/confab-fleet (PostgreSQL runs as the postgres user
# when this runs as root, so DIR's parents must be traversable by it: /tmp is). The binary is
# $CONFAB_BIN, else target/release/confab (built when missing). PG_FAST=1 turns PostgreSQL's
# fsync off. `up` prints the balancer's URL; DIR/fleet.env holds every address and process id
# (shell syntax, for scripts), DIR/nodeI.toml each node's whole configuration, DIR/*.log the
# logs. Needs haproxy, memcached and redis-server (apt-get install haproxy memcached
# redis-server) and PostgreSQL's server binaries (installed as root when missing).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib/pg.sh
. "$root/scripts/lib/pg.sh"

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
[ -n "$cmd" ] || { usage >&2; exit 2; }
shift
dir=${CONFAB_FLEET_DIR:-/tmp/confab-fleet}
nodes=3
rate_limit=on
index=
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --no-rate-limit) rate_limit=off; shift ;;
    -h|--help) usage; exit 0 ;;
    [0-9]*) index=$1; shift ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

free_port() {
  local p
  for _ in $(seq 200); do
    p=$(port_candidate)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! grep -qw "$p" "$dir/ports" 2>/dev/null; then
      echo "$p" >>"$dir/ports"
      echo "$p"; return 0
    fi
  done
  echo "no free port found" >&2; return 1
}

# until URL answers 2xx, for at most $2 seconds
wait_http() {
  local deadline=$((SECONDS + $2))
  while [ $SECONDS -lt "$deadline" ]; do
    if curl -sf -m 2 -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  return 1
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# Appends or replaces KEY=VALUE in DIR/fleet.env.
record() {
  local tmp
  tmp=$(mktemp "$dir/.env.XXXXXX")
  { grep -v "^$1=" "$dir/fleet.env" 2>/dev/null || true; echo "$1=$2"; } >"$tmp"
  mv "$tmp" "$dir/fleet.env"
}

load() {
  [ -f "$dir/fleet.env" ] || { echo "no fleet in $dir (scripts/fleet.sh up --dir $dir)" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$dir/fleet.env"
}

# HAProxy's view of the backend's servers: "node1 UP" lines, from its stats socket.
haproxy_states() {
  python3 - "$dir/haproxy.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
for line in data.decode().splitlines():
    f = line.split(",")
    if len(f) > 17 and f[0] == "confab_nodes" and f[1] not in ("BACKEND", "FRONTEND"):
        print(f[1], f[17])
PY
}

# until HAProxy reports node I as $2 (UP or DOWN), for at most $3 seconds
wait_haproxy() {
  local deadline=$((SECONDS + $3))
  while [ $SECONDS -lt "$deadline" ]; do
    if haproxy_states 2>/dev/null | grep -qx "node$1 $2"; then return 0; fi
    sleep 0.2
  done
  echo "HAProxy did not see node$1 $2 within $3 s: $(haproxy_states 2>&1 | tr '\n' ' ')" >&2
  return 1
}

start_node() { # I
  local i=$1 pid port
  load
  port=$(eval echo "\$NODE${i}_PORT")
  setsid "$bin" serve --config "$dir/node$i.toml" >>"$dir/node$i.log" 2>&1 </dev/null &
  pid=$!
  record "NODE${i}_PID" "$pid"
  if ! wait_http "http://127.0.0.1:$port/readyz" 60; then
    echo "node$i did not become ready; its log:" >&2; tail -20 "$dir/node$i.log" >&2; return 1
  fi
}

stop_node() { # I: SIGTERM, then wait for the drain and the exit
  local i=$1 pid deadline
  load
  pid=$(eval echo "\${NODE${i}_PID:-}")
  alive "$pid" || return 0
  kill -TERM "$pid"
  deadline=$((SECONDS + 60))
  while alive "$pid"; do
    [ $SECONDS -lt "$deadline" ] || { echo "node$i did not exit within 60 s of SIGTERM" >&2; kill -9 "$pid"; return 1; }
    sleep 0.1
  done
}

up() {
  if [ -f "$dir/fleet.env" ]; then
    echo "a fleet is already recorded in $dir (scripts/fleet.sh down --dir $dir first)" >&2; exit 1
  fi
  for b in haproxy memcached redis-server curl python3; do
    command -v "$b" >/dev/null || { echo "$b is needed (apt-get install haproxy memcached redis-server curl python3)" >&2; exit 1; }
  done
  bin=${CONFAB_BIN:-$root/target/release/confab}
  if [ ! -x "$bin" ]; then
    echo "== building $bin (release)" >&2
    (cd "$root" && cargo build --release -p confab >&2)
  fi
  bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The postgres user (PostgreSQL servers, when run as root) goes through it.
  chmod 755 "$dir"
  : >"$dir/ports"
  trap 'if [ -z "${up_ok:-}" ]; then echo "start failed; stopping what started" >&2; down; fi' EXIT
  echo "bin=$bin" >"$dir/fleet.env"
  echo "NODES=$nodes" >>"$dir/fleet.env"
  record DIR "$dir"

  echo "== PostgreSQL: control, s1 with a replica, s2 ($dir/pg)" >&2
  local cluster
  cluster=$("$root/scripts/pg-cluster.sh" start "$dir/pg")
  field() { python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$cluster" "$1"; }
  local control
  control=$(field 'c["control"]')
  record PG_DIR "$dir/pg"
  record CONTROL "$control"
  CONFAB_POSTGRES__CONTROL=$control "$bin" shards add s1 --primary "$(field 'c["shards"][0]["primary"]')" \
    --replica "$(field 'c["shards"][0]["replicas"][0]')" >&2
  CONFAB_POSTGRES__CONTROL=$control "$bin" shards add s2 --primary "$(field 'c["shards"][1]["primary"]')" >&2
  CONFAB_POSTGRES__CONTROL=$control "$bin" shards spread s1 s2 >&2

  echo "== Redis bus, memcached x2" >&2
  local bus m1 m2 user=()
  bus=$(free_port)
  mkdir -p "$dir/redis"
  setsid redis-server --port "$bus" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir/redis" \
    >"$dir/redis.log" 2>&1 </dev/null &
  record REDIS_PID $!
  record REDIS_URL "redis://127.0.0.1:$bus/"
  [ "$(id -u)" = 0 ] && user=(-u root)
  local servers="" i
  for i in 1 2; do
    m1=$(free_port)
    setsid memcached -p "$m1" -l 127.0.0.1 -U 0 -m 256 "${user[@]}" >"$dir/memcached$i.log" 2>&1 </dev/null &
    record "MEMCACHED${i}_PID" $!
    record "MEMCACHED${i}_PORT" "$m1"
    servers+="${servers:+, }\"memcache://127.0.0.1:$m1\""
  done
  for _ in $(seq 50); do
    redis-cli -p "$bus" ping >/dev/null 2>&1 && break
    sleep 0.1
  done

  # One secret for the whole fleet: sessions, tokens and pins signed on one node are checked
  # on another.
  local secret
  secret=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  local p
  for i in $(seq "$nodes"); do
    p=$(free_port)
    record "NODE${i}_PORT" "$p"
    cat >"$dir/node$i.toml" <<EOF
listen = "127.0.0.1:$p"
data_dir = "$dir/node$i"
secret = "$secret"
trusted_proxies = ["127.0.0.1"]

[postgres]
control = "$control"

[bus]
redis_url = "redis://127.0.0.1:$bus/"

[cache]
servers = [$servers]

[rate_limit]
enabled = $([ "$rate_limit" = on ] && echo true || echo false)
EOF
    chmod 600 "$dir/node$i.toml"
  done
  echo "== $nodes nodes" >&2
  for i in $(seq "$nodes"); do start_node "$i"; done

  echo "== HAProxy (deploy/haproxy.cfg)" >&2
  local lb stats
  lb=$(free_port); stats=$(free_port)
  record LB_PORT "$lb"
  record LB_URL "http://127.0.0.1:$lb"
  record STATS_URL "http://127.0.0.1:$stats/"
  haproxy_config "$lb" "$stats" >"$dir/haproxy.cfg"
  haproxy -c -q -f "$dir/haproxy.cfg" || { echo "HAProxy refused $dir/haproxy.cfg" >&2; exit 1; }
  setsid haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1 </dev/null &
  record HAPROXY_PID $!
  for i in $(seq "$nodes"); do wait_haproxy "$i" UP 20; done
  wait_http "http://127.0.0.1:$lb/readyz" 10 || { echo "HAProxy does not answer" >&2; exit 1; }
  up_ok=1
  echo "http://127.0.0.1:$lb"
  echo "fleet up: $nodes nodes behind http://127.0.0.1:$lb (HAProxy stats: http://127.0.0.1:$stats/); scripts/fleet.sh status --dir $dir" >&2
}

# deploy/haproxy.cfg with this machine's addresses: each line marked `# fleet.sh: WHAT` gets
# its address replaced. A marked line that is missing (the shipped file changed) is an error.
haproxy_config() { # LB_PORT STATS_PORT
  local cfg=$root/deploy/haproxy.cfg i n=0
  local -a sed_args=(
    -e "s|^\(\s*bind\) :80 # fleet.sh: bind|\1 127.0.0.1:$1|"
    -e "s|^\(\s*bind\) 127.0.0.1:8404 # fleet.sh: stats|\1 127.0.0.1:$2|"
    -e "s|^\(\s*log\) /dev/log local0 info|\1 stdout format raw local0 info|"
    -e "s|^\(\s*stats socket\) /run/haproxy/confab.sock|\1 $dir/haproxy.sock|"
  )
  for i in 1 2 3; do
    if [ "$i" -le "$nodes" ]; then
      sed_args+=(-e "s|^\(\s*server node$i\) 10.0.0.1$i:8080 # fleet.sh: node$i|\1 127.0.0.1:$(eval echo "\$NODE${i}_PORT")|")
    else
      sed_args+=(-e "/# fleet.sh: node$i\$/d")
    fi
  done
  sed "${sed_args[@]}" "$cfg" >"$dir/haproxy.cfg.tmp"
  for i in $(seq 4 "$nodes"); do
    # More nodes than the shipped file lists: more server lines after the last one.
    sed -i "/^\s*server node$((i - 1)) /a\    server node$i 127.0.0.1:$(eval echo "\$NODE${i}_PORT")" "$dir/haproxy.cfg.tmp"
  done
  n=$(grep -cE "# fleet.sh: [a-z0-9]+$" "$dir/haproxy.cfg.tmp" || true)
  if [ "$n" != 0 ] || ! grep -q "stats socket $dir/haproxy.sock" "$dir/haproxy.cfg.tmp"; then
    echo "deploy/haproxy.cfg no longer has the lines fleet.sh replaces: $(grep -E '# fleet.sh: [a-z0-9]+$' "$dir/haproxy.cfg.tmp")" >&2
    return 1
  fi
  cat "$dir/haproxy.cfg.tmp"
  rm -f "$dir/haproxy.cfg.tmp"
}

status() {
  load
  local i pid port ready
  printf '%-12s %-8s %-7s %s\n' what pid alive detail
  for i in $(seq "$NODES"); do
    pid=$(eval echo "\${NODE${i}_PID:-}"); port=$(eval echo "\$NODE${i}_PORT")
    ready=$(curl -s -m 2 "http://127.0.0.1:$port/readyz" 2>/dev/null || echo "no answer")
    printf '%-12s %-8s %-7s %s\n' "node$i" "$pid" "$(alive "$pid" && echo yes || echo no)" \
      "http://127.0.0.1:$port readyz: $ready"
  done
  printf '%-12s %-8s %-7s %s\n' haproxy "$HAPROXY_PID" "$(alive "$HAPROXY_PID" && echo yes || echo no)" \
    "$LB_URL  stats $STATS_URL"
  if alive "$HAPROXY_PID"; then
    haproxy_states | while read -r name state; do printf '%-12s %-8s %-7s %s\n' "  $name" "" "" "in HAProxy: $state"; done
  fi
  printf '%-12s %-8s %-7s %s\n' redis "$REDIS_PID" "$(alive "$REDIS_PID" && echo yes || echo no)" "$REDIS_URL (bus)"
  for i in 1 2; do
    pid=$(eval echo "\$MEMCACHED${i}_PID"); port=$(eval echo "\$MEMCACHED${i}_PORT")
    printf '%-12s %-8s %-7s %s\n' "memcached$i" "$pid" "$(alive "$pid" && echo yes || echo no)" "127.0.0.1:$port (cache tier)"
  done
  local name data
  while read -r name port data _; do
    pid=$(pg_postmaster_pid "$data" 2>/dev/null || true)
    printf '%-12s %-8s %-7s %s\n' "pg $name" "$pid" "$(alive "$pid" && echo yes || echo no)" "127.0.0.1:$port"
  done <"$PG_DIR/servers"
}

restart() {
  load
  local i
  for i in $(seq "$NODES"); do
    echo "== node$i: SIGTERM, drain, exit" >&2
    stop_node "$i"
    echo "== node$i: start" >&2
    start_node "$i"
    load
    wait_haproxy "$i" UP 30
  done
  echo "rolling restart of $NODES nodes done" >&2
}

down() {
  [ -f "$dir/fleet.env" ] || { echo "no fleet in $dir" >&2; return 0; }
  # shellcheck disable=SC1091
  . "$dir/fleet.env"
  local v pid
  for v in HAPROXY_PID $(for i in $(seq "${NODES:-3}"); do echo "NODE${i}_PID"; done) REDIS_PID MEMCACHED1_PID MEMCACHED2_PID; do
    pid=$(eval echo "\${$v:-}")
    alive "$pid" && kill -TERM "$pid" 2>/dev/null || true
  done
  # Nodes drain for a few seconds; give everything 30 s, then kill what is left.
  for v in HAPROXY_PID $(for i in $(seq "${NODES:-3}"); do echo "NODE${i}_PID"; done) REDIS_PID MEMCACHED1_PID MEMCACHED2_PID; do
    pid=$(eval echo "\${$v:-}")
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  done
  if [ -n "${PG_DIR:-}" ] && [ -d "$PG_DIR" ]; then "$root/scripts/pg-cluster.sh" stop "$PG_DIR" >/dev/null 2>&1 || true; fi
  [ -d "$dir/pg" ] && "$root/scripts/pg-cluster.sh" stop "$dir/pg" >/dev/null 2>&1 || true
  rm -rf "$dir"
  echo "fleet in $dir stopped and removed" >&2
}

case "$cmd" in
  up) up ;;
  status) status ;;
  restart) restart ;;
  stop-node) [ -n "$index" ] || { usage >&2; exit 2; }; stop_node "$index" ;;
  start-node) [ -n "$index" ] || { usage >&2; exit 2; }; start_node "$index"; load; wait_haproxy "$index" UP 30 ;;
  down) down ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
