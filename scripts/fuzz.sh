#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (libFuzzer) for SECONDS each, one after the other, with
# the corpus kept in the repo (fuzz/corpus/<target>/), and fails if any target finds a crash, a
# broken property or a slow input (> 10 s). Prints executions per target.
#
#   scripts/fuzz.sh [SECONDS]             default 600 s per target
#   scripts/fuzz.sh --smoke               30 s per target (what CI runs)
#   scripts/fuzz.sh --merge [SECONDS]     also merge new coverage into fuzz/corpus (minimized)
#   scripts/fuzz.sh --targets "a b" ...   only these targets
#
# New corpus entries go to a temp dir and are thrown away unless --merge is given, so a run
# never dirties the tree. Crash reproducers land in fuzz/artifacts/<target>/ (not in git; keep a
# real finding's under fuzz/artifacts-kept/<target>/). CONFAB_FUZZ_KNOWN=name,... tolerates
# already-reported findings (see fuzz/src/lib.rs); unset, every property is checked.
#
# Works on a stable toolchain: cargo-fuzz builds with `-s none` (no sanitizer, which would need
# nightly); coverage instrumentation and libFuzzer need no nightly. Builds and runs at nice 19.
# Build output goes to $CARGO_TARGET_DIR, default fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS="render_markdown ident_parse cursor_decode sign_verify comment_body"

secs=600
merge=0
targets=$ALL_TARGETS
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) secs=30 ;;
    --merge) merge=1 ;;
    --targets) targets=$2; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *[!0-9]*|'') echo "usage: $0 [--smoke] [--merge] [--targets \"a b\"] [SECONDS]" >&2; exit 2 ;;
    *) secs=$1 ;;
  esac
  shift
done

if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION (crates.io)"
  nice -n 19 cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/fuzz/target}
echo "== building fuzz targets (cargo fuzz build -s none, release, nice 19)"
(cd fuzz && nice -n 19 cargo fuzz build -s none)
bindir=$CARGO_TARGET_DIR/$(rustc -vV | sed -n 's/^host: //p')/release

max_len() {
  case "$1" in
    render_markdown) echo 10000 ;;   # the default body limit, in chars
    comment_body) echo 12000 ;;
    *) echo 4096 ;;
  esac
}

work=$(mktemp -d /tmp/confab-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for t in $targets; do
  bin=$bindir/$t
  [ -x "$bin" ] || { echo "no fuzz target $t" >&2; exit 2; }
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t" "$work/$t"
  args=(-max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
        -max_len="$(max_len "$t")" -artifact_prefix="fuzz/artifacts/$t/")
  [ -f "fuzz/dicts/$t.dict" ] && args+=(-dict="fuzz/dicts/$t.dict")
  echo "== fuzzing $t for ${secs}s ($(ls "fuzz/corpus/$t" | wc -l) corpus files)"
  rc=0
  # New units go to the first (temp) dir; the repo corpus is only read.
  /usr/bin/time -f 'cpu_seconds %U %S' -o "$work/$t.time" \
    nice -n 19 "$bin" "${args[@]}" "$work/$t" "fuzz/corpus/$t" >"$work/$t.log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log")
  cpu=$(awk '/^cpu_seconds/ {printf "%.0f", $2 + $3}' "$work/$t.time" 2>/dev/null || echo '?')
  new=$(ls "$work/$t" | wc -l)
  if [ "$rc" != 0 ]; then
    echo "!! $t failed (exit $rc):"
    grep -E -m 20 'panicked|SUMMARY|ERROR|Test unit written|timeout|Timeout' "$work/$t.log" || tail -n 30 "$work/$t.log"
    failed+=("$t")
  fi
  if [ "$merge" = 1 ] && [ "$rc" = 0 ]; then
    # Minimize the repo corpus plus the new units into a fresh dir, then replace (like cargo fuzz
    # cmin, but on edges only, without hit counts: a few hundred files rather than thousands).
    mkdir -p "$work/$t.min"
    nice -n 19 "$bin" -set_cover_merge=1 -use_counters=0 -use_value_profile=0 -max_len="$(max_len "$t")" \
      "$work/$t.min" "fuzz/corpus/$t" "$work/$t" \
      >"$work/$t.merge.log" 2>&1
    rm -rf "fuzz/corpus/$t" && mv "$work/$t.min" "fuzz/corpus/$t"
  fi
  summary+=("$(printf '%-16s %5ss cpu  %12s execs  %5s new units  %4s corpus files  %s' \
    "$t" "$cpu" "${execs:-?}" "$new" "$(ls "fuzz/corpus/$t" | wc -l)" "$([ "$rc" = 0 ] && echo ok || echo FAILED)")")
done

echo "== fuzz summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (reproducers in fuzz/artifacts/)" >&2
  exit 1
fi
