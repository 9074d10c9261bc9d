#!/usr/bin/env bash
# Confab's benchmark (DESIGN.md section 10), and the physical limit of this box in the same run.
#
#   scripts/bench.sh [--duration 10s] [--concurrency 32]
#
# Builds the release binary, starts a throwaway server (temp data dir, free port, rate limits
# off), runs every scenario of `confab bench` (read-hot, read-many, counts, post, mixed, and
# read-hot open loop at 5,000 req/s), then serves the exact bytes of the read-hot page as a
# static file from nginx (installed with apt-get when missing and running as root) and measures
# that with the same duration and concurrency. Prints one table, the ratio Confab read-hot /
# nginx, and the render times of the pathological markdown inputs. Everything it starts is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=10s
concurrency=32
rate=5000
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
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
bench_setup confab-bench

results=$tmp/results.jsonl
: >"$results"
bench() {
  "$bin" bench --duration "$duration" --concurrency "$concurrency" --json "$@" >>"$results"
}

# --- Confab
port=$(free_port)
target=http://127.0.0.1:$port
mkdir -p "$tmp/data"
CONFAB_LOG=warn "$bin" serve --listen "127.0.0.1:$port" --data "$tmp/data" --rate-limit off >"$tmp/confab.log" 2>&1 &
pids+=($!)
confab_pid=$!
wait_http "$target/healthz" "$tmp/confab.log"
echo "== confab on $target ($(nproc) cores; duration $duration, concurrency $concurrency)" >&2

for s in read-hot read-many counts post mixed; do
  echo "-- $s" >&2
  bench --target "$target" --scenario "$s" --server-pid "$confab_pid"
done
echo "-- read-hot at $rate req/s (open loop)" >&2
bench --target "$target" --scenario read-hot --rate "$rate" --server-pid "$confab_pid"

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
"$bin" bench --report "$results" "${ratios[@]}"
