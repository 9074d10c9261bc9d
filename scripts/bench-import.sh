#!/usr/bin/env bash
# Times `confab import disqus` of a synthetic export (scripts/gen-disqus-export.py) into a
# fresh embedded (SQLite) data directory, and again (the second run must add nothing), with
# peak memory from /usr/bin/time -v. Not part of scripts/test.sh.
#
#   scripts/bench-import.sh [POSTS]          # default 200000; CONFAB_BIN=target/release/confab
set -euo pipefail
cd "$(dirname "$0")/.."
posts=${1:-200000}
bin=${CONFAB_BIN:-${CARGO_TARGET_DIR:-target}/release/confab}
[ -x "$bin" ] || cargo build --release -p confab
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 scripts/gen-disqus-export.py --posts "$posts" > "$dir/export.xml"
echo "export: $posts posts, $(du -h "$dir/export.xml" | cut -f1)"
"$bin" --data "$dir/data" admin create-forum bench > /dev/null
for run in first again; do
  /usr/bin/time -v "$bin" --data "$dir/data" import disqus "$dir/export.xml" --forum bench \
    > "$dir/out.txt" 2> "$dir/time.txt" || { cat "$dir/out.txt" "$dir/time.txt"; exit 1; }
  wall=$(grep 'Elapsed (wall clock)' "$dir/time.txt" | awk '{print $NF}')
  rss=$(grep 'Maximum resident set size' "$dir/time.txt" | awk '{print $NF}')
  echo "$run: wall $wall, peak RSS $((rss / 1024)) MB; $(grep '^comments:' "$dir/out.txt")"
done
