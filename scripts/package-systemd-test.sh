#!/usr/bin/env bash
# The Debian package installed for real and run by systemd, in a throwaway Debian bookworm
# container (systemd-nspawn, booted, private network): what scripts/package-test.sh cannot
# check without installing. Not part of scripts/test.sh (it needs root, downloads a Debian
# base system once, and takes a few minutes); run it after changing deploy/ or the package
# metadata:
#   - `dpkg -i`: the user confab, /var/lib/confab (confab, 0750), /etc/confab/confab.toml
#     (root:confab, 0640), the unit installed but neither enabled nor started;
#   - `confab admin create-forum` as confab, then `systemctl enable --now confab` under the
#     unit's whole sandbox: /readyz, a comment posted and read back, the log in journalctl;
#   - `systemctl stop`: /readyz answers 503 draining meanwhile, exit 0 after drain_secs;
#   - an upgrade (`dpkg -i` again) restarts the running service and keeps an edited conffile,
#     the data and the secret;
#   - `dpkg -r` stops it and keeps the data; `dpkg -P` removes the config, keeps the data.
# The base system (debootstrap --variant=minbase, plus systemd) is kept under the target
# directory and copied for each run; the copy and the container go on exit.
#
#   scripts/package-systemd-test.sh            (as root; installs systemd-container and
#                                               debootstrap from apt when missing)
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "package systemd test: $*" >&2
  exit 1
}
[ "$(id -u)" = 0 ] || fail "needs root (systemd-nspawn)"
t_start=$(date +%s)

need=()
command -v systemd-nspawn >/dev/null 2>&1 || need+=(systemd-container)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
CARGO_DEB_VERSION=3.8.0
if [ "$(cargo deb --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DEB_VERSION" ]; then
  echo "== installing cargo-deb $CARGO_DEB_VERSION (crates.io)"
  env -u CARGO_TARGET_DIR nice -n 19 cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
base=$target_dir/tmp/confab-nspawn-bookworm
if [ ! -f "$base/.complete" ]; then
  echo "== debootstrap bookworm (minbase + systemd) into $base, once"
  rm -rf "$base"
  mkdir -p "$(dirname "$base")"
  debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,adduser bookworm "$base" \
    http://deb.debian.org/debian >"$base.log" 2>&1 || fail "debootstrap failed: $(tail -5 "$base.log")"
  touch "$base/.complete"
fi

cargo build -q --workspace --bins
work=$(mktemp -d /tmp/confab-nspawn.XXXXXX)
nspawn=
leader=
cleanup() {
  if [ -n "$nspawn" ] && kill -0 "$nspawn" 2>/dev/null; then
    [ -n "$leader" ] && nsenter -t "$leader" -a systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn" 2>/dev/null || true
    wait "$nspawn" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== cargo deb (debug binary, no build)"
cargo deb -p confab --profile dev --no-build --fast --output "$work/" >"$work/cargo-deb.log" 2>&1 ||
  fail "cargo deb failed: $(cat "$work/cargo-deb.log")"
debs=("$work"/confab_*.deb)
[ -f "${debs[0]}" ] || fail "no package made"
cp -a "$base" "$work/root"
cp "${debs[0]}" "$work/root/root/confab.deb"

echo "== booting the container"
systemd-nspawn -D "$work/root" -b --register=no --keep-unit --private-network \
  --machine="confab-pkg-$$" --console=passive >"$work/nspawn.log" 2>&1 &
nspawn=$!
deadline=$(($(date +%s) + 60))
until [ -n "$leader" ]; do
  leader=$(pgrep -P "$nspawn" | head -1) || true
  kill -0 "$nspawn" 2>/dev/null || fail "systemd-nspawn exited: $(cat "$work/nspawn.log")"
  [ "$(date +%s)" -lt "$deadline" ] || fail "no container after 60 s"
  sleep 0.2
done
ct() { nsenter -t "$leader" -a env PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C "$@"; }
until state=$(ct systemctl is-system-running 2>/dev/null) || [ "$state" = degraded ]; do
  [ "$(date +%s)" -lt "$deadline" ] || fail "the container's systemd is not up after 60 s: $state"
  sleep 0.5
done
echo "   systemd in the container: $state"

# HTTP from the host's Python inside the container's network namespace.
http() { # METHOD URL [JSON BODY]
  nsenter -t "$leader" -n python3 - "$@" <<'PY'
import sys, urllib.error, urllib.request
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, body, method=method)
if body is not None:
    req.add_header("content-type", "application/json")
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
wait_ready() {
  local deadline=$(($(date +%s) + 30))
  until [ "$(http GET http://127.0.0.1:8080/readyz)" = "200 ready" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "/readyz not ready within 30 s: $(ct systemctl status confab --no-pager -n 0)
$(ct journalctl -u confab --no-pager -n 15)"
    sleep 0.2
  done
}

echo "== dpkg -i"
ct dpkg -i /root/confab.deb >"$work/dpkg.log" 2>&1 || fail "dpkg -i failed: $(cat "$work/dpkg.log")"
ct getent passwd confab | grep -q ':/var/lib/confab:' || fail "no system user confab"
[ "$(ct stat -c '%U:%G %a' /var/lib/confab)" = "confab:confab 750" ] || fail "/var/lib/confab: $(ct stat -c '%U:%G %a' /var/lib/confab)"
[ "$(ct stat -c '%U:%G %a' /etc/confab/confab.toml)" = "root:confab 640" ] ||
  fail "/etc/confab/confab.toml: $(ct stat -c '%U:%G %a' /etc/confab/confab.toml)"
[ "$(ct systemctl is-enabled confab || true)" = disabled ] || fail "the unit is enabled on install"
[ "$(ct systemctl is-active confab || true)" = inactive ] || fail "the unit is started on install"
echo "   user, data dir and config in place; unit installed, disabled, inactive"

echo "== admin as confab, systemctl enable --now confab"
ct runuser -u confab -- confab --config /etc/confab/confab.toml admin create-forum myblog \
  --origin https://blog.example.com >/dev/null || fail "confab admin as the user confab failed"
ct systemctl enable --now confab >/dev/null 2>&1 || fail "systemctl enable --now failed: $(ct systemctl status confab --no-pager -n 20)"
wait_ready
posted=$(http POST http://127.0.0.1:8080/api/v1/comments \
  '{"forum":"myblog","ident":"https://blog.example.com/a","title":"A","body":"Under systemd.","author_name":"Ann"}')
[ "${posted%% *}" = 201 ] || fail "POST /api/v1/comments: $posted"
listed=$(http GET 'http://127.0.0.1:8080/api/v1/comments?forum=myblog&ident=https://blog.example.com/a')
case "$listed" in "200 "*"Under systemd."*) ;; *) fail "the thread does not show the comment: $listed" ;; esac
ct journalctl -u confab --no-pager | grep -q 'Confab is up' || fail "no start-up line in journalctl -u confab"
[ "$(ct stat -c '%U %a' /var/lib/confab/secret)" = "confab 600" ] || fail "no secret of confab's, 0600"
secret=$(ct sha256sum /var/lib/confab/secret)
echo "   serving under the sandbox: ready, comment posted and read back, log in the journal"

echo "== systemctl stop"
(sleep 1.5 && http GET http://127.0.0.1:8080/readyz >"$work/draining") &
probe=$!
t0=$(date +%s)
ct systemctl stop confab || fail "systemctl stop failed"
took=$(($(date +%s) - t0))
wait "$probe" || true
[ "$(cat "$work/draining")" = "503 draining" ] || fail "/readyz during the stop: $(cat "$work/draining")"
[ "$(ct systemctl show confab -p Result --value)" = success ] && [ "$(ct systemctl show confab -p ExecMainStatus --value)" = 0 ] ||
  fail "the stop did not end in success: $(ct systemctl show confab -p Result -p ExecMainStatus)"
echo "   drained (503 draining), exited 0, stop took ${took} s"

echo "== upgrade (dpkg -i again) with an edited config"
ct systemctl start confab
wait_ready
before=$(ct systemctl show confab -p MainPID --value)
ct sed -i 's/^max_body_chars = 10000$/max_body_chars = 5000/' /etc/confab/confab.toml
ct dpkg -i /root/confab.deb >"$work/dpkg.log" 2>&1 || fail "dpkg -i (upgrade) failed: $(cat "$work/dpkg.log")"
wait_ready
after=$(ct systemctl show confab -p MainPID --value)
[ "$after" != "$before" ] && [ "$(ct systemctl is-active confab)" = active ] || fail "the upgrade did not restart the service ($before, $after)"
ct grep -qx 'max_body_chars = 5000' /etc/confab/confab.toml || fail "the upgrade replaced the edited config"
[ "$(ct sha256sum /var/lib/confab/secret)" = "$secret" ] || fail "the secret changed"
counts=$(http GET 'http://127.0.0.1:8080/api/v1/counts?forum=myblog&ident=/a')
[ "$counts" = '200 {"counts":{"/a":1}}' ] || fail "after the upgrade: $counts"
echo "   restarted (pid $before -> $after), config edit, data and secret kept"

echo "== dpkg -r, dpkg -P"
ct dpkg -r confab >"$work/dpkg.log" 2>&1 || fail "dpkg -r failed: $(cat "$work/dpkg.log")"
[ "$(ct systemctl is-active confab || true)" = inactive ] || fail "still running after dpkg -r"
ct test -f /var/lib/confab/confab.sqlite3 -a -f /var/lib/confab/secret || fail "dpkg -r removed the data"
ct dpkg -P confab >"$work/dpkg.log" 2>&1 || fail "dpkg -P failed: $(cat "$work/dpkg.log")"
! ct test -e /etc/confab/confab.toml || fail "dpkg -P left the config"
ct test -f /var/lib/confab/confab.sqlite3 || fail "dpkg -P removed the data"
echo "   removed: stopped, data kept; purged: config gone, data kept"

echo "== package systemd test passed in $(($(date +%s) - t_start)) s"
