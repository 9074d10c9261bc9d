#!/usr/bin/env bash
# The fast checks, in the order they fail cheapest: formatting (the workspace and the fuzz
# crate, rustfmt.toml at the root), the dependency direction between the workspace crates
# (scripts/check-deps.sh), then clippy on every crate and target with warnings as errors.
# scripts/test.sh runs this first; run it alone before pushing.
set -euo pipefail
cd "$(dirname "$0")/.."

# rustfmt and clippy are rustup components a minimal toolchain may lack.
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    echo "== installing the rustfmt and clippy components"
    rustup component add rustfmt clippy
  else
    echo "cargo fmt or cargo clippy is missing, and there is no rustup to add them" >&2
    exit 1
  fi
fi

echo "== cargo fmt --check"
cargo fmt --all --check
cargo fmt --check --manifest-path fuzz/Cargo.toml

echo "== dependency direction (scripts/check-deps.sh)"
scripts/check-deps.sh

echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
