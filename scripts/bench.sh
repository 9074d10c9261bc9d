#!/usr/bin/env bash
# Confab's benchmark, and the physical limit of this box in the same run.
#
#   scripts/bench.sh [--duration 10s] [--concurrency 32] [--postgres]
#
# Builds the release binary, starts a throwaway server (temp data dir, free port, rate limits
# off), runs every scenario of `confab bench` (read-hot, read-many, counts, post, mixed, and
# read-hot open loop at 5,000 req/s), then serves the exact bytes of the read-hot page as a
# static file from nginx (installed with apt-get when missing and running as root) and measures
# that with the same duration and concurrency. Prints one table, the ratio Confab read-hot /
# nginx, and the render times of the pathological markdown inputs. Everything it starts is
# stopped on exit.
#
# --postgres also runs the same scenarios against sharded PostgreSQL (rows named pg/...): a
# throwaway cluster from scripts/pg-cluster.sh (fsync on) with shard servers s1 (one streaming
# replica) and s2, the 4096 logical shards spread over them. The table's q/req column is
# statements per request and `replica` the share of database reads served by replicas; in pg/
# rows `srv cores` includes the PostgreSQL servers. It then measures with pgbench, on the shard
# server that holds the bench forum, the bare work of a post (pgbench/bare: a row inserted, a
# counter raised) and the rows a post really writes (pgbench/rows: the comment with every index
# of the schema, the thread's counters, the idempotency record), each with a ratio to pg/post.
# On a machine with two cores or more it measures both once more with PostgreSQL on a core of
# its own, as a shard server is on its own machine: every PostgreSQL process on CPU 0, a second
# Confab server, the load generator and pgbench's client on the others (rows pg-own/post and
# pgbench-own/bare, and their ratio), so that Confab's and the load generator's CPU is not
# taken from the server the post is compared with.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
concurrency=32
rate=5000
postgres=false
usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --concurrency=*) concurrency=${1#*=}; shift ;;
    --postgres) postgres=true; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# shellcheck source=lib/bench-common.sh
source "scripts/lib/bench-common.sh"
bench_setup confab-bench

results=$tmp/results.jsonl
: >"$results"
bench() {
  "$bin" bench --duration "$duration" --concurrency "$concurrency" --json "$@" >>"$results"
}

# --- Confab: run_confab LABEL_PREFIX DATA_DIR [ENV=VALUE...] starts a server and runs every
# scenario against it, leaving it running (its pid in confab_pid, its URL in target). The CPU
# of the processes in extra_pids (the PostgreSQL servers, for pg/ rows) counts as the server's.
extra_pids=()
run_confab() {
  local prefix=$1 data=$2 s p srv=()
  shift 2
  port=$(free_port)
  target=http://127.0.0.1:$port
  mkdir -p "$data"
  env CONFAB_LOG=warn CONFAB_CONNECTIONS__DRAIN_SECS=0 "$@" "$bin" serve --listen "127.0.0.1:$port" --data "$data" --rate-limit off >"$data.log" 2>&1 &
  pids+=($!)
  confab_pid=$!
  for p in "$confab_pid" "${extra_pids[@]}"; do srv+=(--server-pid "$p"); done
  wait_http "$target/healthz" "$data.log"
  echo "== confab${prefix:+ ($prefix)} on $target ($(nproc) cores; duration $duration, concurrency $concurrency)" >&2
  for s in read-hot read-many counts post mixed; do
    echo "-- $prefix$s" >&2
    bench --target "$target" --scenario "$s" "${srv[@]}" ${prefix:+--label "$prefix$s"}
  done
  echo "-- ${prefix}read-hot at $rate req/s (open loop)" >&2
  bench --target "$target" --scenario read-hot --rate "$rate" "${srv[@]}" ${prefix:+--label "${prefix}read-hot@$rate/s"}
}

# pgbench_bare DSN: the bare commit rate of a post's work on that server (a comment row
# inserted and its thread's counter raised, one transaction each, random one of 1,000
# threads), as a row named pgbench/bare.
pgbench_bare() {
  local dsn=$1 db out tps lat
  db=${dsn%/*}/confab_bare
  "$PG_BIN/psql" -X -q "$dsn" -c "DROP DATABASE IF EXISTS confab_bare" -c "CREATE DATABASE confab_bare" >&2
  "$PG_BIN/psql" -X -q "$db" >&2 <<'SQL'
CREATE TABLE bare_threads (id BIGINT PRIMARY KEY, comment_count BIGINT NOT NULL DEFAULT 0);
CREATE TABLE bare_comments (id BIGSERIAL PRIMARY KEY, thread_id BIGINT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL);
INSERT INTO bare_threads (id) SELECT generate_series(1, 1000);
SQL
  cat >"$tmp/bare.sql" <<'SQL'
\set t random(1, 1000)
BEGIN;
INSERT INTO bare_comments (thread_id, body, created_at) VALUES (:t, 'the comment really agree with this point but I think that performance matters more', 0);
UPDATE bare_threads SET comment_count = comment_count + 1 WHERE id = :t;
COMMIT;
SQL
  pgbench_run bare "$db" "$tmp/bare.sql"
}

# pgbench_rows DSN: the same rows a post writes, as the database's own limit for them: a copy
# of the shard database's schema (every index of comments), 1,000 threads, and per transaction
# the comment row, its thread's counters and the idempotency record (row pgbench/rows).
pgbench_rows() {
  local dsn=$1 db
  db=${dsn%/*}/confab_rows
  "$PG_BIN/psql" -X -q "$dsn" -c "DROP DATABASE IF EXISTS confab_rows" -c "CREATE DATABASE confab_rows" >&2
  "$PG_BIN/pg_dump" --schema-only --no-owner "$dsn" | "$PG_BIN/psql" -X -q "$db" >/dev/null
  "$PG_BIN/psql" -X -q "$db" >&2 <<'SQL'
CREATE SEQUENCE bench_ids;
INSERT INTO threads (id, shard, forum_id, ident, created_at) SELECT g, 1, 1, 'bench/' || g, 0 FROM generate_series(1, 1000) g;
SQL
  cat >"$tmp/rows.sql" <<'SQL'
\set t random(1, 1000)
BEGIN;
INSERT INTO comments (id, shard, thread_id, forum_id, depth, guest_name, body_md, body_html, status, created_at, ip_hash, images) VALUES (nextval('bench_ids'), 1, :t, 1, 0, 'bench', 'the comment really agree with this point but I think that performance matters more', '<p>the comment really agree with this point but I think that performance matters more</p>', 'approved', 0, 'a1b2c3d4e5f6', '');
UPDATE threads SET comment_count = comment_count + 1, seq = seq + 1 WHERE id = :t;
INSERT INTO idempotency (scope, key, shard, comment_id, created_at, request_hash) VALUES ('i-a1b2c3d4e5f6', 'bench-' || currval('bench_ids'), 1, currval('bench_ids'), 0, 'a1b2c3d4e5f6');
COMMIT;
SQL
  pgbench_run rows "$db" "$tmp/rows.sql"
}

# pgbench_run NAME DB SCRIPT: pgbench with the run's client count and duration, as a row
# named $pgbench_row/NAME, pgbench itself run through $pin (a taskset prefix, or nothing).
pgbench_row=pgbench
pin=()
pgbench_run() {
  local out tps lat
  echo "-- $pgbench_row/$1 on $home ($concurrency clients, ${duration%s} s)" >&2
  out=$("${pin[@]}" "$PG_BIN/pgbench" -n -M prepared -c "$concurrency" -j 2 -T "${duration%s}" -f "$3" "$2" 2>&1) || { echo "$out" >&2; return 1; }
  tps=$(echo "$out" | awk '/^tps = / { print $3; exit }')
  lat=$(echo "$out" | awk '/^latency average = / { print $4; exit }')
  echo "{\"name\": \"$pgbench_row/$1\", \"scenario\": \"pgbench\", \"rps\": $tps, \"mean_ms\": $lat, \"concurrency\": $concurrency}" >>"$results"
}

# pin_postgres CPUS: every process of the PostgreSQL servers (the postmasters in extra_pids and
# their children; backends forked later inherit it) on CPUS.
pin_postgres() {
  local p pp
  for p in "${extra_pids[@]}"; do taskset -a -p -c "$1" "$p" >/dev/null; done
  for p in /proc/[0-9]*; do
    pp=$(awk '{ print $4 }' "$p/stat" 2>/dev/null) || continue
    for q in "${extra_pids[@]}"; do
      if [ "$pp" = "$q" ]; then taskset -a -p -c "$1" "${p#/proc/}" >/dev/null 2>&1 || true; fi
    done
  done
}

if $postgres; then
  # shellcheck source=lib/pg.sh
  source scripts/lib/pg.sh
  pg_ensure_bin
  pgdir=$(mktemp -d /tmp/confab-bench-pg.XXXXXX)
  stop_pg() { scripts/pg-cluster.sh stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"; cleanup; }
  trap stop_pg EXIT
  echo "== starting PostgreSQL (control, s1 + replica, s2) in $pgdir" >&2
  cluster=$(scripts/pg-cluster.sh start "$pgdir")
  field() { python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$cluster" "$1"; }
  export CONFAB_POSTGRES__CONTROL; CONFAB_POSTGRES__CONTROL=$(field 'c["control"]')
  "$bin" shards add s1 --primary "$(field 'c["shards"][0]["primary"]')" --replica "$(field 'c["shards"][0]["replicas"][0]')" >&2
  "$bin" shards add s2 --primary "$(field 'c["shards"][1]["primary"]')" >&2
  "$bin" shards spread s1 s2 >&2
  # Every PostgreSQL server's postmaster (its backends are its children).
  for f in "$pgdir"/*/postmaster.pid; do extra_pids+=("$(head -1 "$f")"); done
  run_confab pg/ "$tmp/pgdata" CONFAB_POSTGRES__CONTROL="$CONFAB_POSTGRES__CONTROL"
  "$bin" shards list >&2 || true
  # The bare work of a post on the server that holds the bench forum, for pg/post to be
  # compared with: pgbench, the same client count and duration, fsync on.
  home=$("$bin" shards list 2>/dev/null | awk '$1 ~ /^s[0-9]+$/ && $5 > 0 { print $1; exit }')
  home=${home:-s1}
  home_dsn=$(field "[s['primary'] for s in c['shards'] if s['name'] == '$home'][0]")
  pgbench_bare "$home_dsn"
  pgbench_rows "$home_dsn"
  stop "$confab_pid"
  if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    # PostgreSQL on CPU 0, everything else on the other CPUs.
    others=1-$(( $(nproc) - 1 ))
    pin_postgres 0
    pin=(taskset -c "$others")
    port=$(free_port)
    target=http://127.0.0.1:$port
    # The same data dir as the server before it (a node's secret lives there, and every node
    # of a deployment must sign with the same one).
    "${pin[@]}" env CONFAB_LOG=warn CONFAB_CONNECTIONS__DRAIN_SECS=0 CONFAB_POSTGRES__CONTROL="$CONFAB_POSTGRES__CONTROL" \
      "$bin" serve --listen "127.0.0.1:$port" --data "$tmp/pgdata" --rate-limit off >"$tmp/pgdata-own.log" 2>&1 &
    pids+=($!)
    confab_pid=$!
    wait_http "$target/healthz" "$tmp/pgdata-own.log"
    srv=(--server-pid "$confab_pid")
    for p in "${extra_pids[@]}"; do srv+=(--server-pid "$p"); done
    echo "-- pg-own/post (PostgreSQL on CPU 0; Confab and the load generator on CPUs $others)" >&2
    "${pin[@]}" "$bin" bench --duration "$duration" --concurrency "$concurrency" --json --target "$target" \
      --scenario post "${srv[@]}" --label pg-own/post >>"$results"
    stop "$confab_pid"
    pgbench_row=pgbench-own
    pgbench_bare "$home_dsn"
    pgbench_row=pgbench
    pin=()
    pin_postgres "0-$(( $(nproc) - 1 ))"
  fi
  extra_pids=()
  unset CONFAB_POSTGRES__CONTROL
fi

run_confab "" "$tmp/data"

# The exact bytes of the read-hot page, for nginx to serve.
mkdir -p "$tmp/www"
curl -sf -o "$tmp/www/read-hot.json" "$target/api/v1/comments?forum=demo&ident=bench/read-hot&limit=50"
stop "$confab_pid"

# --- nginx: the physical limit
nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== installing nginx" >&2
  apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >&2 || true
  # Where the package's service got started (no policy-rc.d), stop it: only ours is wanted.
  if [ -s /run/nginx.pid ]; then /usr/sbin/nginx -s quit >/dev/null 2>&1 || true; fi
  nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
fi
have_nginx=false
if [ -x "${nginx_bin:-}" ]; then
  have_nginx=true
  nport=$(free_port)
  ndir=$tmp/nginx
  mkdir -p "$ndir/logs" "$ndir/tmp"
  # Workers run as nobody when started as root: let them read the file.
  chmod 755 "$tmp" "$tmp/www"
  chmod 644 "$tmp/www/read-hot.json"
  cat >"$ndir/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $ndir/nginx.pid;
error_log $ndir/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  types { application/json json; }
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_timeout 120s;
  keepalive_requests 100000000;
  client_body_temp_path $ndir/tmp/body;
  proxy_temp_path $ndir/tmp/proxy;
  fastcgi_temp_path $ndir/tmp/fastcgi;
  uwsgi_temp_path $ndir/tmp/uwsgi;
  scgi_temp_path $ndir/tmp/scgi;
  server {
    listen 127.0.0.1:$nport;
    root $tmp/www;
    location / { }
  }
}
EOF
  "$nginx_bin" -e "$ndir/logs/error.log" -p "$ndir" -c "$ndir/nginx.conf" >"$ndir/logs/stdout.log" 2>&1 &
  pids+=($!)
  nginx_pid=$!
  wait_http "http://127.0.0.1:$nport/read-hot.json" "$ndir/logs/error.log"
  if ! cmp -s <(curl -sf "http://127.0.0.1:$nport/read-hot.json") "$tmp/www/read-hot.json"; then
    echo "nginx does not serve the same bytes" >&2; exit 1
  fi
  echo "== nginx on 127.0.0.1:$nport serving the read-hot page ($(wc -c <"$tmp/www/read-hot.json") bytes)" >&2
  bench --scenario url --url "http://127.0.0.1:$nport/read-hot.json" --label nginx --server-pid "$nginx_pid"
  stop "$nginx_pid"
else
  echo "warning: nginx is not installed (run as root to install it): no physical limit measured" >&2
fi

echo "-- render" >&2
"$bin" bench --scenario render --json >>"$results"

echo
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || rev="$rev+changes"
echo "# confab $rev, $(nproc) cores, duration $duration, concurrency $concurrency, nginx: $($have_nginx && "$nginx_bin" -v 2>&1 | sed 's/.*\///' || echo none)"
ratios=()
$have_nginx && ratios+=(--ratio read-hot/nginx)
if $postgres; then
  for s in read-hot read-many counts post mixed; do ratios+=(--ratio "pg/$s/$s"); done
  ratios+=(--ratio pg/post/pgbench/bare --ratio pg/post/pgbench/rows)
  ratios+=(--ratio pg-own/post/pgbench-own/bare)
fi
"$bin" bench --report "$results" "${ratios[@]}"
