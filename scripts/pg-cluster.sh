#!/usr/bin/env bash
# Throwaway PostgreSQL servers for tests and benchmarks: a control server and two shards, s1
# (with one streaming replica) and s2.
#
#   scripts/pg-cluster.sh start DIR   # prints DIR/cluster.json
#   scripts/pg-cluster.sh stop DIR    # stops them all (data kept in DIR); safe to repeat
#
# DIR must be empty or not exist yet. Each server has its data in DIR/NAME, its log in
# DIR/NAME.log, a free 127.0.0.1 port and its unix socket in DIR/sock (or a short dir in /tmp
# when DIR's path is too long for a socket), trust auth for user postgres (local, 127.0.0.1 and
# replication). PG_FAST=1 turns fsync off (tests); benchmarks leave it on. DIR/cluster.json:
#   {"control":"postgres://postgres@127.0.0.1:PORT/postgres",
#    "shards":[{"name":"s1","primary":"postgres://...","replicas":["postgres://..."]},
#              {"name":"s2","primary":"postgres://...","replicas":[]}]}
# As root, the servers run as the postgres OS user and DIR is chowned to it, so DIR's parent
# dirs must be traversable by that user (/tmp is). Installs postgresql-15 as root if missing.
set -euo pipefail
# shellcheck source=lib/pg.sh
. "$(dirname "$0")/lib/pg.sh"

usage() { sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; }

dsn() { echo "postgres://postgres@127.0.0.1:$1/postgres"; }

cluster_stop() { # DIR
  local dir=$1 name port data pid lines=()
  [ -f "$dir/servers" ] || return 0
  PG_BIN=$(cat "$dir/bindir" 2>/dev/null || pg_find_bin) || { echo "no PostgreSQL binaries" >&2; return 1; }
  mapfile -t lines < "$dir/servers"
  # Replicas were recorded after their primary: stop in reverse order.
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    read -r name port data pid <<<"${lines[$i]}"
    pg_stop "$data"
  done
  if [ -f "$dir/sockdir" ]; then
    local sock; sock=$(cat "$dir/sockdir")
    case "$sock" in /tmp/pgs.*) rm -rf "$sock" ;; esac
    rm -f "$dir/sockdir"
  fi
}

cluster_start() { # DIR
  local dir=$1 sock
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -n "$(ls -A "$dir")" ]; then echo "$dir is not empty (stop and remove it first)" >&2; return 1; fi
  pg_ensure_bin
  echo "$PG_BIN" >"$dir/bindir"
  sock=$dir/sock
  if [ ${#sock} -gt 80 ]; then # room for /.s.PGSQL.NNNNN within 100 characters
    sock=$(mktemp -d /tmp/pgs.XXXXXX)
    echo "$sock" >"$dir/sockdir"
  else
    mkdir "$sock"
  fi
  pg_own "$dir" "$sock"
  if ! pg_as test -w "$dir" -a -x "$sock"; then
    echo "the postgres user cannot write $dir (are its parent dirs traversable by it?)" >&2; return 1
  fi
  started_ok=
  trap '[ -n "$started_ok" ] || { echo "start failed; stopping what started" >&2; cluster_stop "'"$dir"'"; }' EXIT
  trap 'exit 130' INT TERM
  : >"$dir/servers"

  # initdb the three primaries in parallel (most of the start time), then start them.
  local name port ports=() pids=()
  for name in control s1 s2; do
    port=$(pg_free_port)
    while [[ " ${ports[*]} " == *" $port "* ]]; do port=$(pg_free_port); done
    ports+=("$port")
    pg_init "$dir/$name" "$port" "$sock" "$name" & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  local i=0
  for name in control s1 s2; do
    echo "$name ${ports[$i]} $dir/$name -" >>"$dir/servers"
    pg_start "$dir/$name"
    i=$((i + 1))
  done
  local control=${ports[0]} s1=${ports[1]} s2=${ports[2]} r1
  r1=$(pg_free_port)
  while [[ " ${ports[*]} " == *" $r1 "* ]]; do r1=$(pg_free_port); done
  pg_basebackup_from "$s1" "$dir/s1r1" "$r1" "$sock" s1r1
  echo "s1r1 $r1 $dir/s1r1 -" >>"$dir/servers"
  pg_start "$dir/s1r1"
  pg_wait_streaming "$s1" s1r1
  [ "$(pg_sql "$r1" 'select pg_is_in_recovery()')" = t ] || { echo "s1r1 is not in recovery" >&2; false; }

  # Record the postmaster pids too (informational; stop goes by data dir).
  local tmp; tmp=$(mktemp)
  while read -r name port data _; do
    echo "$name $port $data $(pg_postmaster_pid "$data")"
  done <"$dir/servers" >"$tmp"
  chmod 644 "$tmp"; mv "$tmp" "$dir/servers"
  cat >"$dir/cluster.json" <<JSON
{"control":"$(dsn "$control")","shards":[{"name":"s1","primary":"$(dsn "$s1")","replicas":["$(dsn "$r1")"]},{"name":"s2","primary":"$(dsn "$s2")","replicas":[]}]}
JSON
  started_ok=1
  echo "$dir/cluster.json"
}

case "${1:-}" in
  start) [ $# = 2 ] || { usage >&2; exit 2; }; cluster_start "$2" ;;
  stop) [ $# = 2 ] || { usage >&2; exit 2; }; cluster_stop "$2" ;;
  -h|--help) usage ;;
  *) usage >&2; exit 2 ;;
esac
