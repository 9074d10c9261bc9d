#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests, then the browser tests of the embed
# and dashboard in headless Chromium. Installs what it needs on a fresh Debian machine
# (chromium from apt as root, npm packages with `npm ci`). Every server it starts lives on a
# free port with its data under a temp dir, and is stopped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
# The bus conformance suite starts throwaway redis-server instances of its own.
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
if [ -f web/package.json ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
fi
# The mail tests talk to a real SMTP server, Python's aiosmtpd (installed from PyPI below).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${need_apt[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "missing ${need_apt[*]}: install them (apt-get) or run as root" >&2
    exit 1
  fi
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
# aiosmtpd in a venv under the target directory (the tests look there too), created once.
pytools="$target_dir/tmp/confab-pytools"
if ! "$pytools/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "== installing aiosmtpd (PyPI) into $pytools"
  python3 -m venv "$pytools"
  "$pytools/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
export CONFAB_TEST_PYTHON="$pytools/bin/python"

echo "== cargo test"
cargo build --workspace --bins
cargo test --workspace

if [ -f web/package.json ]; then
  echo "== browser tests"
  export CONFAB_BIN="$target_dir/debug/confab"
  (cd web && npm ci --no-audit --no-fund --loglevel=error && npm test)
fi
echo "== all tests passed"
