#!/usr/bin/env bash
# End-to-end checks of the local provider's package and maintenance_window
# resources (docs/packages.md) on this machine, as root: builds a harmless
# package, plinth-test-pkg, in versions 1.0-1 and 1.1-1 (one file under
# /usr/share/plinth-test-pkg/), serves them as a local apt repository (a file:
# source, [trusted=yes], read through APT_CONFIG with its own lists: no
# network, the system's sources untouched), and applies configurations that
#   - install 1.0-1 inside an always-open window, then plan no changes;
#   - upgrade to 1.1-1 and hold it;
#   - ask for 1.0-1 in a closed window: the plan notes the wait, apply leaves
#     1.1-1, and plans stay the same; destroy is refused there;
#   - ask for 1.0-1 in a window that opens at the next minute: apply leaves
#     1.1-1, and the controller (drift task) makes the change once the window
#     opens, recorded in plinth history;
#   - downgrade to 1.0-1 in the open window;
#   - see the package removed outside Plinth as drift and install it again;
#   - install from a .deb file (source);
#   - destroy: the package is removed.
# Not root: skipped with a message. The trap purges plinth-test-pkg, also on
# failure. Usage: scripts/package-test.sh build/plinth
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/fixtures/lib.sh
plinth=$(realpath "${1:-build/plinth}")
if [ "$(id -u)" -ne 0 ]; then
  echo "package-test: skipped: installing Debian packages needs root (run as root: scripts/package-test.sh $1)"
  exit 0
fi
for tool in dpkg dpkg-deb dpkg-query apt-get apt-mark sha256sum; do
  command -v "$tool" >/dev/null || { echo "package-test: $tool is not installed" >&2; exit 1; }
done
pkg=plinth-test-pkg
tmp=$(mktemp -d)
chmod 755 "$tmp"  # apt's _apt user reads the repository
ctl_pid=""
cleanup() {
  [ -n "$ctl_pid" ] && kill -9 "$ctl_pid" 2>/dev/null
  apt-mark unhold "$pkg" >/dev/null 2>&1 || true
  dpkg --purge "$pkg" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
  echo "package-test: $*" >&2
  exit 1
}
installed() { dpkg-query -W -f='${Status} ${Version}' "$pkg" 2>/dev/null || true; }
dpkg --purge "$pkg" >/dev/null 2>&1 || true

# The package, in two versions, and a repository of both.
repo="$tmp/repo"
mkdir -p "$repo"
for ver in 1.0-1 1.1-1; do
  src="$tmp/src-$ver"
  mkdir -p "$src/DEBIAN" "$src/usr/share/$pkg"
  cat >"$src/DEBIAN/control" <<EOF
Package: $pkg
Version: $ver
Architecture: all
Maintainer: Plinth tests <tests@plinth.invalid>
Section: misc
Priority: optional
Description: harmless test package of Plinth's package resource
 Installs one text file under /usr/share/$pkg; nothing else.
EOF
  echo "$pkg $ver" >"$src/usr/share/$pkg/VERSION"
  dpkg-deb --root-owner-group --build "$src" "$repo/${pkg}_${ver}_all.deb" >/dev/null
done
: >"$repo/Packages"
for deb in "$repo"/*.deb; do
  {
    dpkg-deb -f "$deb"
    echo "Filename: ./$(basename "$deb")"
    echo "Size: $(stat -c %s "$deb")"
    echo "SHA256: $(sha256sum "$deb" | cut -d' ' -f1)"
    echo
  } >>"$repo/Packages"
done
mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
echo "deb [trusted=yes] file:$repo ./" >"$tmp/sources.list"
cat >"$tmp/apt.conf" <<EOF
Dir::Etc::sourcelist "$tmp/sources.list";
Dir::Etc::sourceparts "-";
Dir::State::Lists "$tmp/lists";
Dir::Cache::archives "$tmp/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
export APT_CONFIG="$tmp/apt.conf"
# No apt-get update here: the provider reads the sources itself when apt does
# not know a pinned version yet.

ws="$tmp/ws"
mkdir -p "$ws"
# A window that is never open now: one hour on the day after tomorrow.
closed_day=$(date -u -d '+2 days' +%a | tr 'A-Z' 'a-z')
config() {  # config WINDOW VERSION [EXTRA LINE]
  cat >"$ws/main.plinth" <<EOF
maintenance_window "always" {
  start    = "00:00"
  duration = 24h
}

maintenance_window "soon" {
  start    = "${soon_start:-00:00}"
  duration = 30m
  timezone = "UTC"
}

maintenance_window "closed" {
  days     = "$closed_day"
  start    = "12:00"
  duration = 1h
  timezone = "UTC"
  exclude  = ["2030-01-01"]
}

package "test" {
  package = "$pkg"
  version = "$2"
  window  = maintenance_window.$1
  ${3:-}
}
EOF
}
apply() {
  "$plinth" apply --auto-approve "$ws" >"$tmp/apply.txt" 2>&1 || fail "apply ($1) failed: $(cat "$tmp/apply.txt")"
}
plan() {
  "$plinth" plan "$ws" >"$tmp/plan.txt" 2>&1 || fail "plan ($1) failed: $(cat "$tmp/plan.txt")"
}
expect_installed() {
  [ "$(installed)" = "$1" ] || fail "$2: dpkg says '$(installed)', not '$1'"
}

# 1. Install 1.0-1 inside the open window; the next plan changes nothing.
config always 1.0-1
apply "install 1.0-1"
expect_installed "install ok installed 1.0-1" "after installing 1.0-1"
[ "$(cat /usr/share/$pkg/VERSION)" = "$pkg 1.0-1" ] || fail "the package's file is not 1.0-1's"
plan "after the install"
grep -q "No changes" "$tmp/plan.txt" || fail "a second plan is not empty: $(cat "$tmp/plan.txt")"

# 2. Upgrade and hold.
config always 1.1-1 "hold = true"
apply "upgrade to 1.1-1"
expect_installed "hold ok installed 1.1-1" "after upgrading to 1.1-1 with hold"

# 3. A closed window: the plan says what waits, apply leaves the package, plans stay the same.
config closed 1.0-1 "hold = true"
plan "closed window"
grep -q "waits for maintenance window closed: next opens .* 12:00 UTC; then apply will change $pkg from 1.1-1 to 1.0-1" \
  "$tmp/plan.txt" || fail "the plan does not say the change waits: $(cat "$tmp/plan.txt")"
apply "closed window"
expect_installed "hold ok installed 1.1-1" "after an apply outside the window"
plan "closed window, again"
grep -q "No changes" "$tmp/plan.txt" && grep -q "waits for maintenance window closed" "$tmp/plan.txt" ||
  fail "a repeated plan outside the window is not the same: $(cat "$tmp/plan.txt")"
if "$plinth" destroy --auto-approve "$ws" >"$tmp/destroy.txt" 2>&1; then
  fail "destroy outside the window succeeded: $(cat "$tmp/destroy.txt")"
fi
grep -q "removing $pkg 1.1-1 waits for maintenance window closed" "$tmp/destroy.txt" ||
  fail "destroy outside the window does not say why it is refused: $(cat "$tmp/destroy.txt")"
expect_installed "hold ok installed 1.1-1" "after a refused destroy"

# 3b. A window that opens at the next minute (at least 20 s away): apply
# records the change, and the controller makes it once the window is open.
read -r soon_start soon_epoch < <(python3 -c 'import time; t = time.time() + 20; t = (int(t) // 60 + 1) * 60
print(time.strftime("%H:%M", time.gmtime(t)), t)')
config soon 1.0-1 "hold = true"
apply "window opening soon"
expect_installed "hold ok installed 1.1-1" "after an apply before the window opened"
"$plinth" controller "$ws" --interval=1s --drift-interval=2s --listen="127.0.0.1:$(free_port)" >"$tmp/controller.log" 2>&1 &
ctl_pid=$!
while [ "$(date +%s)" -lt $((soon_epoch - 2)) ]; do
  expect_installed "hold ok installed 1.1-1" "before the window opened (controller running)"
  sleep 1
done
wait_for '[ "$(installed)" = "hold ok installed 1.0-1" ]' 60 ||
  fail "the controller did not make the change when the window opened: $(installed); $(tail -5 "$tmp/controller.log")"
echo "package-test: the controller downgraded $pkg $(($(date +%s) - soon_epoch)) s after its window opened"
kill "$ctl_pid"
wait "$ctl_pid" 2>/dev/null || true
ctl_pid=""
"$plinth" history --dir="$ws" package.test >"$tmp/history.txt" 2>&1 || fail "plinth history failed: $(cat "$tmp/history.txt")"
grep -q 'auto     package.test: apply installed "1.1-1" -> "1.0-1"' "$tmp/history.txt" &&
  grep -q 'because maintenance window soon is open; recorded by apply' "$tmp/history.txt" ||
  fail "plinth history lacks the controller's change: $(cat "$tmp/history.txt")"
plan "after the controller's change"
grep -q "No changes" "$tmp/plan.txt" || fail "the plan after the controller's change is not empty: $(cat "$tmp/plan.txt")"

# 4. The window opens: the deferred downgrade happens.
config always 1.0-1 "hold = true"
apply "downgrade to 1.0-1"
expect_installed "hold ok installed 1.0-1" "after downgrading to 1.0-1"

# 5. Removed outside Plinth: drift, installed again.
apt-mark unhold "$pkg" >/dev/null
dpkg --remove "$pkg" >/dev/null
plan "drift"
grep -q "changed outside Plinth: .*installed" "$tmp/plan.txt" || fail "the removal is not drift: $(cat "$tmp/plan.txt")"
apply "after drift"
expect_installed "hold ok installed 1.0-1" "after repairing the drift"

# 6. A .deb file as the source.
config always 1.1-1 "source = \"$repo/${pkg}_1.1-1_all.deb\""
apply "from a .deb"
expect_installed "install ok installed 1.1-1" "after installing the .deb"

# 7. Destroy removes it.
"$plinth" destroy --auto-approve "$ws" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
case "$(installed)" in
  "" | *not-installed* | *config-files*) ;;
  *) fail "after destroy dpkg still says '$(installed)'" ;;
esac
[ ! -e /usr/share/$pkg/VERSION ] || fail "the package's file is still there after destroy"
echo "package-test: ok"
