#!/usr/bin/env bash
# Feeds a real Alertmanager (Debian's prometheus-alertmanager) from the
# controller's Alertmanager client (runtime/controller/alertmanager.h): starts
# one on 127.0.0.1 with a temporary configuration and storage directory, runs
# the AlertmanagerClient gtests against it (they POST alerts to
# /api/v2/alerts and read them back from the same API), checks the alerts
# once more with curl, and stops it in a trap. Skips (exit 0) when the binary
# is not installed: `apt-get install -y prometheus-alertmanager`.
set -euo pipefail
cd "$(dirname "$0")/.."
tests=${1:-build/tests/plinth_unit_tests}
am=${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
fail() { echo "alertmanager-test: $*" >&2; exit 1; }
if [ ! -x "$am" ]; then
  echo "alertmanager-test: skipped: $am is not installed (apt-get install -y prometheus-alertmanager)"
  exit 0
fi
[ -x "$tests" ] || fail "$tests is missing: build the plinth_unit_tests target"

tmp=$(mktemp -d)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

# A free port on 127.0.0.1 (the kernel picks; released before Alertmanager binds it).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
cat > "$tmp/alertmanager.yml" <<YML
route:
  receiver: blackhole
  group_by: [alertname]
receivers:
  - name: blackhole
YML
"$am" --config.file="$tmp/alertmanager.yml" --storage.path="$tmp/data" \
  --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn \
  >"$tmp/am.log" 2>&1 &
pid=$!
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  curl -fsS "$url/-/ready" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || fail "alertmanager exited: $(cat "$tmp/am.log")"
  sleep 0.1
done
curl -fsS "$url/-/ready" >/dev/null || fail "alertmanager did not become ready on $url: $(cat "$tmp/am.log")"

PLINTH_ALERTMANAGER_URL="$url" "$tests" --gtest_filter='AlertmanagerClient.*' --gtest_brief=1 \
  || fail "the AlertmanagerClient tests failed"
# The client's alerts are in Alertmanager, as its API reports them.
n=$(curl -fsS "$url/api/v2/alerts?filter=alertname%3D%22PlinthTestAlert%22" |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] || fail "alertmanager lists $n PlinthTestAlert alerts, want 2"
echo "alertmanager-test: ok ($("$am" --version 2>&1 | head -1))"
