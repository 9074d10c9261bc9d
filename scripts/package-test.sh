#!/usr/bin/env bash
# The Debian package (README "Install the Debian package"), built and tried without installing
# it on this machine:
#   - installs cargo-deb when missing (crates.io, pinned, --locked) and builds the .deb from the
#     debug binary the test run already built (`cargo deb --profile dev --no-build`: no release
#     build), into a temp dir (target/debian is left to real packages);
#   - checks its contents and control data: binary, unit and config where they belong, the
#     config a conffile, mode 0640; Depends; maintainer scripts that parse, create the user
#     before the systemd snippets, and leave the data on remove;
#   - checks deploy/confab.toml against confab.example.toml: the same keys and values but for
#     data_dir and demo_forum;
#   - verifies the unit with `systemd-analyze verify` (any message fails) and its sandboxing
#     with `systemd-analyze security --offline` (exposure at most 2.0), when systemd-analyze is
#     there, and that its TimeoutStopSec exceeds the config's drain_secs by 10 s at least;
#   - extracts the package into a temp root (`dpkg-deb -x`) and runs the binary from there:
#     `--version`, `admin create-forum` and `serve` with the packaged config (data in a temp
#     dir, a free port): /readyz ready, a comment posted and read back, no demo forum; SIGTERM:
#     /readyz answers 503 draining, the process exits well within TimeoutStopSec; started again,
#     the comment is still there and its edit token still works (the generated secret was
#     kept in the data dir, mode 0600).
# Everything it starts is stopped and its temp dir removed on exit. (Installing the package and
# running it under systemd is scripts/package-systemd-test.sh, run by hand as root.)
#
#   scripts/package-test.sh       (builds the debug binary first if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/ports.sh

CARGO_DEB_VERSION=3.8.0
t_start=$(date +%s)

fail() {
  echo "package test: $*" >&2
  exit 1
}

# dpkg-deb (dpkg) reads the package; cargo-deb runs dpkg-shlibdeps (dpkg-dev) for Depends.
for tool in dpkg-deb dpkg-shlibdeps python3; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (apt-get install dpkg-dev python3)"
done

if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
  echo "== installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
  # (its own temp target dir: not the workspace's)
  env -u CARGO_TARGET_DIR nice -n 19 cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

# The same build as scripts/test.sh's: nothing to do when it ran.
cargo build -q --workspace --bins

work=$(mktemp -d /tmp/confab-package.XXXXXX)
pid=
stop_server() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  pid=
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== cargo deb (debug binary, no build) into $work"
# cargo-deb 3.8 warns that the dev profile is unsupported (it still packages it); the warning
# is filtered out, anything else it says is shown.
cargo deb -p confab --profile dev --no-build --fast --output "$work/" >"$work/cargo-deb.log" 2>&1 ||
  fail "cargo deb failed: $(cat "$work/cargo-deb.log")"
grep -v -e 'dev profile is not supported' -e 'To enable debug symbols set' "$work/cargo-deb.log" || true
debs=("$work"/confab_*.deb)
[ ${#debs[@]} = 1 ] && [ -f "${debs[0]}" ] || fail "cargo deb made no package (or several): ${debs[*]}"
deb=${debs[0]}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
[ "$(basename "$deb")" = "confab_${version}-1_$(dpkg --print-architecture).deb" ] ||
  fail "unexpected package name $(basename "$deb") (version $version)"

echo "== package contents"
dpkg-deb -c "$deb" >"$work/contents"
has_entry() { # MODE PATH: one line of `dpkg-deb -c` with these permissions and path
  grep -qE "^$1 (root/root|0/0) +[0-9]+ [0-9-]+ [0-9:]+ \./$2\$" "$work/contents" ||
    fail "package lacks $1 ./$2; it has:
$(cat "$work/contents")"
}
has_entry '-rwxr-xr-x' usr/bin/confab
has_entry '-rw-r--r--' usr/lib/systemd/system/confab.service
has_entry '-rw-r-----' etc/confab/confab.toml
has_entry '-rw-r--r--' usr/share/doc/confab/copyright
has_entry '-rw-r--r--' usr/share/doc/confab/confab.example.toml
# No data and no secret in the package: nothing under /var, no file named secret.
if grep -E '\./var/|/secret$' "$work/contents"; then fail "the package ships data or a secret"; fi

dpkg-deb -I "$deb" >"$work/info"
mkdir "$work/control"
dpkg-deb -e "$deb" "$work/control"
field() { sed -n "s/^$1: //p" "$work/control/control"; }
[ "$(field Package)" = confab ] || fail "Package: $(field Package)"
[ "$(field Version)" = "${version}-1" ] || fail "Version: $(field Version)"
depends=$(field Depends)
case "$depends" in *adduser*) ;; *) fail "Depends lacks adduser: $depends" ;; esac
case "$depends" in *libc6*) ;; *) fail "Depends lacks libc6 (\$auto did not resolve): $depends" ;; esac
[ "$(cat "$work/control/conffiles")" = /etc/confab/confab.toml ] ||
  fail "conffiles: $(cat "$work/control/conffiles")"
for s in postinst prerm postrm; do
  [ -x "$work/control/$s" ] || fail "no executable $s maintainer script"
  sh -n "$work/control/$s" || fail "$s does not parse"
  ! grep -q '#DEBHELPER#' "$work/control/$s" || fail "$s still has the debhelper token"
done
# postinst: the user (and its data dir) exists before any systemd snippet runs; nothing is
# enabled or started on install.
user_line=$(grep -n 'adduser --system' "$work/control/postinst" | head -1 | cut -d: -f1) || true
snippet_line=$(grep -n 'deb-systemd' "$work/control/postinst" | head -1 | cut -d: -f1) || true
[ -n "$user_line" ] && [ -n "$snippet_line" ] && [ "$user_line" -lt "$snippet_line" ] ||
  fail "postinst must create the user (line ${user_line:-none}) before the systemd snippets (line ${snippet_line:-none})"
grep -q 'chown root:confab /etc/confab/confab.toml' "$work/control/postinst" || fail "postinst does not give the config to group confab"
# (cargo-deb's "don't enable" snippet enables only a unit that was enabled before an upgrade;
# an upgrade restarts a running unit with try-restart, which starts none that is stopped.)
grep -q 'deb-systemd-helper debian-installed confab.service' "$work/control/postinst" &&
  ! grep -qE 'deb-systemd-invoke (start|restart) ' "$work/control/postinst" ||
  fail "postinst enables or starts the unit on install"
! grep -qE 'rm .*/var/lib/confab|deluser' "$work/control/postrm" || fail "postrm deletes the data or the user"
echo "   $(field Package) $(field Version), Depends: $depends; $(grep -c . "$work/contents") entries"

echo "== deploy/confab.toml against confab.example.toml"
# Comments aside, the packaged config is the example with two values changed; a key added to
# the example must be added to it too.
diff <(grep -v '^#' confab.example.toml |
  sed -e 's|^data_dir = .*|data_dir = "/var/lib/confab"|' -e 's|^demo_forum = .*|demo_forum = false|') \
  <(grep -v '^#' deploy/confab.toml) ||
  fail "deploy/confab.toml differs from confab.example.toml (beyond data_dir and demo_forum): update it"

echo "== extracting into $work/root"
dpkg-deb -x "$deb" "$work/root"
bin=$work/root/usr/bin/confab
conf=$work/root/etc/confab/confab.toml
unit=$work/root/usr/lib/systemd/system/confab.service
cmp "$conf" deploy/confab.toml || fail "the packaged config is not deploy/confab.toml"
cmp "$unit" deploy/confab.service || fail "the packaged unit is not deploy/confab.service"
grep -qx 'ExecStart=/usr/bin/confab --config /etc/confab/confab.toml serve' "$unit" ||
  fail "the unit does not run /usr/bin/confab serve with /etc/confab/confab.toml"

timeout_stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$unit")
drain=$(sed -n '/^\[connections\]/,/^\[/s/^drain_secs = \([0-9]*\)$/\1/p' "$conf")
[ -n "$timeout_stop" ] && [ -n "$drain" ] || fail "no TimeoutStopSec (in seconds) in the unit or no drain_secs in the config"
[ "$timeout_stop" -ge $((drain + 10)) ] ||
  fail "TimeoutStopSec=$timeout_stop leaves less than 10 s after the drain ($drain s) for requests in flight"

if command -v systemd-analyze >/dev/null 2>&1; then
  echo "== systemd-analyze verify / security ($(systemd-analyze --version | head -1))"
  # verify checks that ExecStart's binary exists: a copy of the unit runs the extracted one.
  mkdir "$work/unit"
  sed "s|^ExecStart=/usr/bin/confab |ExecStart=$bin |" "$unit" >"$work/unit/confab.service"
  # It prints nothing for a clean unit; an unknown key or a bad value is only a message.
  out=$(systemd-analyze verify "$work/unit/confab.service" 2>&1) || fail "systemd-analyze verify failed: $out"
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
  security=$(systemd-analyze security --offline=yes --threshold=20 "$work/unit/confab.service" 2>&1) ||
    fail "systemd-analyze security: exposure above 2.0:
$(echo "$security" | grep -e '✗' -e 'Overall')"
  echo "   verify: clean; $(echo "$security" | grep -o 'Overall exposure level.*')"
else
  echo "== systemd-analyze not installed: the unit is not verified"
fi

echo "== running the packaged binary"
[ -x "$bin" ] || fail "$bin is missing"
"$bin" --version >"$work/version" || fail "$bin --version failed"
[ "$(cat "$work/version")" = "confab $version" ] || fail "--version says $(cat "$work/version"), not confab $version"

data=$work/data
port=
for _ in $(seq 200); do
  p=$(port_candidate)
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || fail "no free port found"
base="http://127.0.0.1:$port"

# HTTP with Python's standard library (curl need not be installed): prints the status, a
# space, then the body.
http() { # METHOD URL [JSON BODY [HEADER:VALUE]]
  python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, body, method=method)
if body is not None:
    req.add_header("content-type", "application/json")
if len(sys.argv) > 4:
    k, v = sys.argv[4].split(":", 1)
    req.add_header(k, v)
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        status, text = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode()
except OSError as e:
    status, text = 0, str(e)
print(status, text)
PY
}

# The packaged config exactly as installed (`--config`; `--data` and `--listen` point it at
# the temp dir and the free port, as the unit's StateDirectory and the config's listen would).
confab() { CONFAB_LOG=warn "$bin" --config "$conf" --data "$data" "$@"; }
start_server() {
  # (not through the function above: $! must be the server's own pid, for the signals below)
  CONFAB_LOG=warn "$bin" --config "$conf" --data "$data" serve --listen "127.0.0.1:$port" >>"$work/server.log" 2>&1 &
  pid=$!
  local deadline=$(($(date +%s) + 30))
  until [ "$(http GET "$base/readyz")" = "200 ready" ]; do
    kill -0 "$pid" 2>/dev/null || fail "confab serve exited; its log:
$(cat "$work/server.log")"
    [ "$(date +%s)" -lt "$deadline" ] || fail "/readyz did not answer 200 ready within 30 s: $(http GET "$base/readyz"); log:
$(cat "$work/server.log")"
    sleep 0.2
  done
}

confab admin create-forum site --title "Package test" --origin http://localhost >/dev/null ||
  fail "confab admin create-forum with the packaged config failed"
start_server
echo "   confab serve with the packaged config answers on $base (pid $pid)"

ident=https://example.com/packaged
posted=$(http POST "$base/api/v1/comments" \
  "{\"forum\":\"site\",\"ident\":\"$ident\",\"title\":\"Packaged\",\"body\":\"From the package.\",\"author_name\":\"Deb\"}")
[ "${posted%% *}" = 201 ] || fail "POST /api/v1/comments: $posted"
id=$(echo "$posted" | grep -o '"id":"[0-9]*"' | head -1 | cut -d'"' -f4) || true
token=$(echo "$posted" | sed -n 's/.*"edit_token":"\([^"]*\)".*/\1/p')
[ -n "$id" ] && [ -n "$token" ] || fail "no id or edit_token in: $posted"
listed=$(http GET "$base/api/v1/comments?forum=site&ident=$ident")
case "$listed" in "200 "*"\"id\":\"$id\""*"From the package."*) ;; *) fail "the thread does not show the comment: $listed" ;; esac
# demo_forum = false in the packaged config: no demo forum (the defaults would have made one).
demo=$(http POST "$base/api/v1/comments" '{"forum":"demo","ident":"/x","body":"hi","author_name":"Ann"}')
[ "${demo%% *}" = 404 ] || fail "a comment to the demo forum was answered $demo (is demo_forum = false applied?)"
[ -f "$data/confab.sqlite3" ] || fail "no database in the data dir"
[ "$(stat -c %a "$data/secret" 2>/dev/null)" = 600 ] || fail "no generated secret (mode 0600) in the data dir"
secret_sum=$(sha256sum <"$data/secret")
echo "   comment $id posted and read back; demo forum absent; secret generated in the data dir"

# A stop as systemd does it (KillSignal=SIGTERM): drains for drain_secs, then exits, well
# before TimeoutStopSec would have it killed.
t0=$(date +%s)
kill -TERM "$pid"
sleep 0.5
draining=$(http GET "$base/readyz")
[ "$draining" = "503 draining" ] || fail "/readyz during the drain: $draining"
deadline=$((t0 + timeout_stop))
while kill -0 "$pid" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "confab serve still running ${timeout_stop} s (TimeoutStopSec) after SIGTERM"
  sleep 0.2
done
rc=0
wait "$pid" || rc=$?
pid=
[ "$rc" = 0 ] || fail "confab serve exited $rc after SIGTERM (Restart=on-failure would restart it); log:
$(cat "$work/server.log")"
echo "   SIGTERM: drained ($draining) and exited 0 in $(($(date +%s) - t0)) s (drain_secs $drain, TimeoutStopSec $timeout_stop)"

# Started again: the data and the secret are kept, so the guest's edit token still works.
start_server
[ "$(sha256sum <"$data/secret")" = "$secret_sum" ] || fail "the secret changed across a restart"
edited=$(http PATCH "$base/api/v1/comments/$id" '{"body":"Edited after a restart."}' "X-Confab-Edit-Token:$token")
[ "${edited%% *}" = 200 ] || fail "editing with the edit token after a restart: $edited"
listed=$(http GET "$base/api/v1/comments?forum=site&ident=$ident")
case "$listed" in "200 "*"Edited after a restart."*) ;; *) fail "the edit is not shown after a restart: $listed" ;; esac
echo "   restarted: comment kept, secret kept, edit token still valid"
kill -TERM "$pid"
sleep 0.3
kill -TERM "$pid" 2>/dev/null || true # a second signal cuts the drain short
deadline=$(($(date +%s) + timeout_stop))
while kill -0 "$pid" 2>/dev/null; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "confab serve did not stop after two SIGTERMs"
  sleep 0.2
done
wait "$pid" || true
pid=

if grep -q panicked "$work/server.log"; then fail "the server panicked: $(grep -A5 panicked "$work/server.log")"; fi
echo "== package test passed in $(($(date +%s) - t_start)) s"
