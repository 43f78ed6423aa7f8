#!/usr/bin/env bash
# Controller cost (docs/benchmarks.md, "Controller"): CPU and memory of
# `plinth controller` supervising REPLICAS replicas of examples/inference's
# server.py (half in each of two regions, an HTTP readiness probe every 10 s
# and a liveness probe every 10 s: Kubernetes' default period), measured from
# /proc over SECONDS after the controller has adopted them. Needs python3.
#
#   bench/controller_bench.sh [BUILD_DIR] [REPLICAS] [SECONDS]   (default: build 200 60)
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build}/plinth")
replicas=${2:-200}
seconds=${3:-60}
per_region=$((replicas / 2))
tmp=$(mktemp -d)
ctl_pid=""
cleanup() {
  # Every step may fail without stopping the cleanup (this runs under set -e).
  if [ -n "$ctl_pid" ]; then
    kill -9 "$ctl_pid" 2>/dev/null || true
    wait "$ctl_pid" 2>/dev/null || true
  fi
  # The killed controller's lease (10 s) expires before destroy's wait (30 s) ends: destroy takes over.
  "$plinth" destroy --auto-approve "$tmp" >/dev/null 2>&1 || true
  for p in $(pgrep -f "python3 server.py" 2>/dev/null); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "PLINTH_BENCH=$tmp"; then kill -9 "$p" 2>/dev/null || true; fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
cp examples/inference/server.py "$tmp/"
cat >"$tmp/main.plinth" <<PLINTH
region "a" {
  host = "127.0.10.1"
}

region "b" {
  host = "127.0.11.1"
}

service "bench" {
  regions       = [region.a, region.b]
  replicas      = $per_region
  port          = 20000
  command       = ["python3", "server.py"]
  ready_timeout = 10m
  env = {
    PLINTH_BENCH = "$tmp"
  }
  readiness {
    http = "/ready"
  }
  liveness {
    http = "/healthz"
  }
}
PLINTH
t0=$SECONDS
"$plinth" apply --auto-approve "$tmp" >"$tmp/apply.txt" 2>&1 || { cat "$tmp/apply.txt" >&2; exit 1; }
echo "controller bench: apply started $replicas replicas, all ready, in $((SECONDS - t0)) s"
"$plinth" controller "$tmp" --interval=2s >"$tmp/controller.log" 2>&1 &
ctl_pid=$!
t0=$SECONDS
all_ready() {
  local out
  out=$("$plinth" status "$tmp" 2>/dev/null || true)
  grep -q "service bench: $replicas of $replicas replicas ready$" <<<"$out"
}
until all_ready; do
  [ $((SECONDS - t0)) -lt 120 ] || { echo "the controller did not report all replicas ready" >&2; exit 1; }
  sleep 1
done
echo "controller bench: the controller adopted and reported all $replicas ready after $((SECONDS - t0)) s"
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$ctl_pid/stat"; }
c0=$(cpu)
sleep "$seconds"
c1=$(cpu)
rss=$(awk '/VmRSS/ {print $2}' "/proc/$ctl_pid/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$ctl_pid/status")
restarts=$("$plinth" status --json "$tmp" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(r["restarts"] for s in d["services"] for r in s["replicas"]))')
awk -v c0="$c0" -v c1="$c1" -v t="$ticks" -v s="$seconds" -v n="$replicas" -v rss="$rss" -v hwm="$hwm" -v r="$restarts" 'BEGIN {
  printf "controller bench: %d replicas, %d s: CPU %.2f s (%.1f%% of one core), RSS %.1f MiB (peak %.1f MiB), %d restarts\n",
    n, s, (c1 - c0) / t, 100 * (c1 - c0) / t / s, rss / 1024, hwm / 1024, r
}'
