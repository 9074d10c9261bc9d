#!/usr/bin/env bash
# The whole test suite: the lint step (scripts/lint.sh: rustfmt, scripts/check-deps.sh, clippy),
# Rust unit and integration tests, the API suite again against
# PostgreSQL, a local fleet behind HAProxy under load (scripts/fleet-test.sh), schema fuzzing of
# the OpenAPI document (scripts/schemathesis.sh), a 30-second fuzz run of each cargo-fuzz target
# (scripts/fuzz.sh --smoke), the Debian package built and run from an extracted root
# (scripts/package-test.sh), then the browser tests of the embed and dashboard in headless
# Chromium. Installs
# what it needs on a fresh Debian machine (chromium and postgresql-15 from apt as root, npm
# packages with `npm ci`). Every server it starts lives on a free port with its data under a
# temp dir, and is stopped afterwards: a throwaway PostgreSQL cluster (scripts/pg-cluster.sh,
# fsync off) whose cluster.json is passed to the tests as CONFAB_TEST_PG.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
# The bus conformance suite starts throwaway redis-server instances of its own.
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
# The cache tier's conformance suite (confab-cache) starts throwaway memcached instances too
# (and redis-server ones, above).
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || need_apt+=(memcached)
# The metrics test has a real Prometheus scrape a server (CONFAB_SKIP_PROMETHEUS=1 skips it).
command -v prometheus >/dev/null 2>&1 || [ -x /usr/bin/prometheus ] || need_apt+=(prometheus)
# The fleet test (scripts/fleet-test.sh) puts three nodes behind a real HAProxy.
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need_apt+=(haproxy)
if [ -f web/package.json ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
fi
# The Debian package test (scripts/package-test.sh): cargo-deb resolves the package's shared
# library dependencies with dpkg-shlibdeps.
command -v dpkg-shlibdeps >/dev/null 2>&1 || need_apt+=(dpkg-dev)
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

# Formatting, dependency direction and clippy first (scripts/lint.sh): they fail early, before
# the tests are built.
scripts/lint.sh

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
# aiosmtpd in a venv under the target directory (the tests look there too), created once.
pytools="$target_dir/tmp/confab-pytools"
if ! "$pytools/bin/python" -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "== installing aiosmtpd (PyPI) into $pytools"
  python3 -m venv "$pytools"
  "$pytools/bin/pip" install --quiet --disable-pip-version-check 'aiosmtpd==1.4.6'
fi
export CONFAB_TEST_PYTHON="$pytools/bin/python"

# PostgreSQL: server binaries (apt-get install postgresql-15 as root when missing) and a
# throwaway cluster (control, shards s1 with a streaming replica and s2) for the whole run. Its
# dir is under /tmp: short unix socket paths, and reachable by the postgres user when root.
. scripts/lib/pg.sh
pg_ensure_bin
pgdir=$(mktemp -d /tmp/confab-pg.XXXXXX)
stop_pg() {
  scripts/pg-cluster.sh stop "$pgdir" || true
  rm -rf "$pgdir"
}
trap stop_pg EXIT
trap 'exit 130' INT TERM
echo "== starting PostgreSQL cluster in $pgdir"
CONFAB_TEST_PG=$(PG_FAST=1 scripts/pg-cluster.sh start "$pgdir")
export CONFAB_TEST_PG

# The API tests sign in at a real OpenID provider (web/scripts/oidc-provider.mjs, the npm
# package oidc-provider): the web packages are installed before them.
echo "== npm ci (web/)"
(cd web && npm ci --no-audit --no-fund --loglevel=error)

echo "== cargo test"
cargo build --workspace --bins
cargo test --workspace

echo "== cargo test: API suite against PostgreSQL"
# (the tests that start PostgreSQL servers of their own ran in the step above)
CONFAB_TEST_BACKEND=postgres cargo test -p confab --test api -- --skip sharding:: --skip pg:: --skip shards_cli::

echo "== a fleet through HAProxy: rolling restart, a cache server killed, the control database stopped"
CONFAB_BIN="$target_dir/debug/confab" scripts/fleet-test.sh

echo "== schema fuzzing (schemathesis)"
CONFAB_BIN="$target_dir/debug/confab" scripts/schemathesis.sh

# Coverage-guided fuzzing of the parsers, renderer and tokens: 30 s per target from the corpus
# kept in fuzz/corpus (scripts/fuzz.sh runs them longer; it installs cargo-fuzz when missing).
echo "== fuzz smoke (scripts/fuzz.sh --smoke)"
CARGO_TARGET_DIR="$target_dir/fuzz" scripts/fuzz.sh --smoke

# The Debian package, from the debug binary built above: contents, unit, and the binary run from
# an extracted root with the packaged config (installs cargo-deb, pinned, when missing).
echo "== Debian package (scripts/package-test.sh)"
scripts/package-test.sh

if [ -f web/package.json ]; then
  echo "== browser tests"
  export CONFAB_BIN="$target_dir/debug/confab"
  (cd web && npm ci --no-audit --no-fund --loglevel=error && npm test)
fi
echo "== all tests passed"
