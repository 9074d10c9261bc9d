# Shared by scripts/bench.sh and scripts/bench-peers.sh (sourced, not run): builds the release
# binary, makes a temp dir, and tracks the processes a script starts so they are all stopped on
# exit. Sets: bin, tmp, pids. Call: bench_setup PREFIX.
# shellcheck source=ports.sh
. "$(dirname "${BASH_SOURCE[0]}")/ports.sh"

bench_setup() {
  export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
  echo "== building (release)" >&2
  cargo build --release -p confab >&2
  bin=$CARGO_TARGET_DIR/release/confab
  tmp=$(mktemp -d -t "$1.XXXXXX")
  pids=()
  trap cleanup EXIT
  trap 'exit 130' INT TERM
}

cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}

# Stops a process this script started and forgets it (its pid may be reused afterwards).
stop() {
  local q keep=()
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for q in "${pids[@]}"; do
    if [ "$q" != "$1" ]; then keep+=("$q"); fi
  done
  pids=("${keep[@]}")
}

# A TCP port nothing listens on (checked, then used right away).
free_port() {
  local p
  for _ in $(seq 200); do
    p=$(port_candidate)
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2; return 1
}

# wait_http URL LOG [any]: until URL answers (2xx; with `any`, any HTTP answer), or fail
# showing LOG.
wait_http() {
  local flags=-sf
  [ "${3:-}" = any ] && flags=-s
  for _ in $(seq 300); do
    if curl "$flags" -o /dev/null "$1"; then return 0; fi
    sleep 0.1
  done
  echo "$1 did not come up; its log (without backtrace lines):" >&2; grep -v '^ *[0-9]*: \|^ *at ' "$2" | tail -30 >&2; return 1
}
