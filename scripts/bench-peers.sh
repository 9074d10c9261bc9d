#!/usr/bin/env bash
# Confab side by side with a peer, Isso, on this machine, in one run.
#
#   scripts/bench-peers.sh [--duration 10s] [--concurrency 32]
#
# Installs Isso from PyPI into a temp venv, runs it with `isso run` (its bundled werkzeug
# server) on a free port with a SQLite database in a temp dir, moderation and rate limits
# (guard) off; builds and starts Confab like scripts/bench.sh (temp data, rate limits off).
# Measures read-hot (a 200-comment thread) and post on each with the same duration and
# concurrency, one server at a time, then prints one table and the Confab/Isso ratios.
# Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
concurrency=32
isso_pins=("isso==0.13.0" "Werkzeug==3.1.9")
usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) duration=$2; shift 2 ;;
    --duration=*) duration=${1#*=}; shift ;;
    --concurrency) concurrency=$2; shift 2 ;;
    --concurrency=*) concurrency=${1#*=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

# shellcheck source=lib/bench-common.sh
source "scripts/lib/bench-common.sh"
bench_setup confab-peers

results=$tmp/results.jsonl
: >"$results"
bench() {
  "$bin" bench --duration "$duration" --concurrency "$concurrency" --json "$@" >>"$results"
}

# --- Isso
echo "== installing ${isso_pins[*]} into a temp venv" >&2
if ! python3 -m venv "$tmp/venv" >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq >&2 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    python3 -m venv "$tmp/venv"
  else
    echo "python3 -m venv failed: install python3-venv" >&2; exit 1
  fi
fi
"$tmp/venv/bin/pip" install -q --disable-pip-version-check "${isso_pins[@]}" >&2

iport=$(free_port)
isso_url=http://127.0.0.1:$iport
mkdir -p "$tmp/isso"
cat >"$tmp/isso/isso.cfg" <<EOF
[general]
dbpath = $tmp/isso/comments.db
host = $isso_url
notify = stdout
gravatar = false

[moderation]
enabled = false

[server]
listen = $isso_url
reload = false

[guard]
enabled = false
ratelimit = 1000000
direct-reply = 1000000
reply-to-self = true
EOF
(cd "$tmp/isso" && exec "$tmp/venv/bin/isso" -c "$tmp/isso/isso.cfg" run) >"$tmp/isso/isso.log" 2>&1 &
pids+=($!)
isso_pid=$!
wait_http "$isso_url/?uri=/bench/read-hot" "$tmp/isso/isso.log" any
isso_version=$("$tmp/venv/bin/pip" show isso 2>/dev/null | sed -n 's/^Version: //p')
echo "== isso $isso_version on $isso_url ($(nproc) cores; duration $duration, concurrency $concurrency)" >&2
for s in read-hot post; do
  echo "-- isso $s" >&2
  bench --flavor isso --target "$isso_url" --origin "$isso_url" --scenario "$s" --label "isso:$s" --server-pid "$isso_pid"
done
stop "$isso_pid"

# --- Confab
port=$(free_port)
target=http://127.0.0.1:$port
mkdir -p "$tmp/data"
CONFAB_LOG=warn CONFAB_CONNECTIONS__DRAIN_SECS=0 "$bin" serve --listen "127.0.0.1:$port" --data "$tmp/data" --rate-limit off >"$tmp/confab.log" 2>&1 &
pids+=($!)
confab_pid=$!
wait_http "$target/healthz" "$tmp/confab.log"
echo "== confab on $target" >&2
for s in read-hot post; do
  echo "-- confab $s" >&2
  bench --target "$target" --scenario "$s" --label "confab:$s" --server-pid "$confab_pid"
done
stop "$confab_pid"

echo
echo "# $(nproc) cores, duration $duration, concurrency $concurrency; isso $isso_version ($(python3 --version 2>&1), werkzeug threaded server)"
"$bin" bench --report "$results" --ratio confab:read-hot/isso:read-hot --ratio confab:post/isso:post
