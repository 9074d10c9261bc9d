# Throwaway PostgreSQL servers for tests and benchmarks (sourced, not run). Used by
# scripts/pg-cluster.sh and scripts/test.sh. Never touches the machine's own server (5432): every
# server here has its own data dir, a free 127.0.0.1 port and its unix socket in a dir of ours.
#
# PostgreSQL refuses to run as root, so as root the server programs run as the `postgres` OS
# user (`runuser -u postgres --`) and the dirs they write are chowned to it.
#
#   pg_ensure_bin            sets PG_BIN: $PG_BIN if set, else /usr/lib/postgresql/15/bin, else the
#                            newest /usr/lib/postgresql/*/bin, else `pg_config --bindir`;
#                            installs postgresql-15 with apt-get as root if none has initdb
#   pg_as CMD...             runs CMD as the postgres user when root, directly otherwise
#   pg_free_port             prints a TCP port nothing listens on (below the ephemeral range)
#   pg_init DATA PORT SOCK NAME      initdb + our settings (fsync=off when PG_FAST=1)
#   pg_basebackup_from PORT DATA NEWPORT SOCK NAME   streaming replica (-R -X stream) of PORT
#   pg_start DATA            pg_ctl start (log DATA.log), waits until it accepts connections
#   pg_stop DATA             pg_ctl stop -m fast, then immediate, then SIGKILL; no-op if down
#   pg_sql PORT SQL          psql -Atq over 127.0.0.1 as postgres to database postgres
#   pg_wait_streaming PRIMARY_PORT NAME   until NAME streams from the primary (30 s)
# shellcheck source=ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

PG_TIMEOUT=${PG_TIMEOUT:-30}

pg_is_root() { [ "$(id -u)" = 0 ]; }

pg_find_bin() {
  local d
  for d in ${PG_BIN:-} /usr/lib/postgresql/15/bin $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) \
      "$(pg_config --bindir 2>/dev/null || true)"; do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then echo "$d"; return 0; fi
  done
  return 1
}

pg_ensure_bin() {
  if PG_BIN=$(pg_find_bin); then export PG_BIN; return 0; fi
  if ! pg_is_root; then
    echo "PostgreSQL server binaries (initdb) not found: apt-get install postgresql-15, or run as root" >&2
    return 1
  fi
  echo "== installing postgresql-15 (apt-get)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PG_BIN=$(pg_find_bin) || { echo "initdb still not found after installing PostgreSQL" >&2; return 1; }
  export PG_BIN
}

# Bounded by PG_TIMEOUT + 10 s, so a stuck server program cannot hang a test run.
pg_as() {
  if pg_is_root; then
    (cd / && timeout $((PG_TIMEOUT + 10)) runuser -u postgres -- "$@")
  else
    (cd / && timeout $((PG_TIMEOUT + 10)) "$@")
  fi
}

# Makes DIR (and what is in it) the postgres user's when root.
pg_own() {
  if pg_is_root; then chown -R postgres: "$@"; fi
}

pg_free_port() {
  local p
  for _ in $(seq 200); do
    p=$(port_candidate)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
      echo "$p"; return 0
    fi
  done
  echo "no free port found" >&2; return 1
}

# Settings of every server; appended last in postgresql.conf so they win over initdb's (and, on
# a replica, over the ones copied from its primary).
pg_settings() { # PORT SOCK NAME
  cat <<EOF

# --- confab test settings
port = $1
listen_addresses = '127.0.0.1'
unix_socket_directories = '$2'
cluster_name = '$3'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
max_connections = 300
shared_buffers = 64MB
fsync = $([ "${PG_FAST:-}" = 1 ] && echo off || echo on)
logging_collector = off
log_line_prefix = '%m [%p] $3 '
EOF
}

pg_hba() {
  cat <<'EOF'
local   all           all                 trust
host    all           all   127.0.0.1/32  trust
local   replication   all                 trust
host    replication   all   127.0.0.1/32  trust
EOF
}

pg_write_conf() { # DATA PORT SOCK NAME
  pg_settings "$2" "$3" "$4" >>"$1/postgresql.conf"
  pg_hba >"$1/pg_hba.conf"
}

pg_init() { # DATA PORT SOCK NAME
  pg_as "$PG_BIN/initdb" --no-sync -U postgres -A trust -E UTF8 --locale=C -D "$1" >"$1.initdb.log" 2>&1 ||
    { echo "initdb $1 failed:" >&2; cat "$1.initdb.log" >&2; return 1; }
  pg_write_conf "$@"
}

pg_basebackup_from() { # PRIMARY_PORT DATA PORT SOCK NAME
  pg_as "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$1" -U postgres \
      -D "$2" -R -X stream -c fast >"$2.basebackup.log" 2>&1 ||
    { echo "pg_basebackup into $2 failed:" >&2; cat "$2.basebackup.log" >&2; return 1; }
  pg_write_conf "$2" "$3" "$4" "$5"
}

pg_start() { # DATA
  pg_as "$PG_BIN/pg_ctl" -D "$1" -l "$1.log" -w -t "$PG_TIMEOUT" start >/dev/null ||
    { echo "server $1 did not start; its log:" >&2; tail -30 "$1.log" >&2; return 1; }
  local port
  port=$(sed -n 's/^port = //p' "$1/postgresql.conf" | tail -1)
  for _ in $(seq $((PG_TIMEOUT * 10))); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then return 0; fi
    sleep 0.1
  done
  echo "server $1 is not ready on port $port; its log:" >&2; tail -30 "$1.log" >&2; return 1
}

pg_postmaster_pid() { # DATA
  [ -f "$1/postmaster.pid" ] && head -1 "$1/postmaster.pid"
}

pg_stop() { # DATA
  local pid
  pid=$(pg_postmaster_pid "$1" 2>/dev/null) || return 0
  if ! kill -0 "$pid" 2>/dev/null; then return 0; fi
  pg_as "$PG_BIN/pg_ctl" -D "$1" -m fast -w -t 20 stop >/dev/null 2>&1 && return 0
  pg_as "$PG_BIN/pg_ctl" -D "$1" -m immediate -w -t 10 stop >/dev/null 2>&1 && return 0
  if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then kill -9 "$pid" 2>/dev/null || true; fi
}

pg_sql() { # PORT SQL
  PGCONNECT_TIMEOUT=5 timeout 20 "$PG_BIN/psql" -X -Atq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"
}

pg_wait_streaming() { # PRIMARY_PORT NAME
  local state
  for _ in $(seq $((PG_TIMEOUT * 10))); do
    state=$(pg_sql "$1" "select state from pg_stat_replication where application_name = '$2'" 2>/dev/null || true)
    if [ "$state" = streaming ]; then return 0; fi
    sleep 0.1
  done
  echo "replica $2 is not streaming from port $1 (state: '${state:-none}')" >&2; return 1
}
