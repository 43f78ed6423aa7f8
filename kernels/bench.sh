#!/usr/bin/env bash
# GPU benchmark (docs/benchmarks.md, "GPU probe"): on a machine with a GPU,
# runs the quick probe (and, with --full, the full one) on device N and prints
# memory bandwidth as a fraction of the theoretical peak, GEMM throughput of
# the probe's own kernel beside cuBLAS, host<->device bandwidth and the probe
# durations, against the targets: HBM triad >= 0.85 of peak, quick probe <= 15 s.
# Without a GPU it says so and exits 0 with nothing measured.
#
#   kernels/bench.sh [--full] [--device=N] [PLINTH]     (default PLINTH: build/plinth)
set -euo pipefail
cd "$(dirname "$0")/.."
full=false
device=0
plinth=build/plinth
for arg in "$@"; do
  case "$arg" in
    --full) full=true ;;
    --device=*) device=${arg#--device=} ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) plinth=$arg ;;
  esac
done
[ -x "$plinth" ] || { echo "bench: $plinth is not built (cmake --build build --target plinth)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

set +e
"$plinth" gpu list >"$tmp/list" 2>"$tmp/err"; rc=$?
set -e
if [ "$rc" = 3 ]; then
  echo "bench: $(cat "$tmp/err")"
  echo "bench: nothing measured (run this on a machine with an NVIDIA GPU and driver)"
  exit 0
fi
[ "$rc" = 0 ] || { echo "bench: gpu list failed: $(cat "$tmp/err")" >&2; exit 1; }
echo "devices:"
sed 's/^/  /' "$tmp/list"

report() {  # LEVEL JSON WALL
  local level=$1 json=$2 wall=$3
  echo
  echo "== $level probe of device $device: $(jq -r '.device.name + " (" + .device.pci_bus_id + ")"' "$json")"
  jq -r '
    def gb: . / 1e9 | floor | tostring + " GB/s";
    def tf: if . == null then "n/a" else (. / 1e12 * 100 | round / 100 | tostring) + " TFLOPS" end;
    "bandwidth  copy  " + (.bandwidth.copy_bytes_per_second | gb) + " = " +
      (.bandwidth.copy_peak_fraction * 1000 | round / 1000 | tostring) + " of peak",
    "bandwidth  triad " + (.bandwidth.triad_bytes_per_second | gb) + " = " +
      (.bandwidth.triad_peak_fraction * 1000 | round / 1000 | tostring) + " of peak " +
      (.bandwidth.peak_bytes_per_second | gb) + " (" + .bandwidth.peak_source + ")  [target >= 0.85]",
    (.gemm[] | "gemm " + .precision + " n=" + (.n | tostring) + "  own " + (.flops_per_second | tf) +
      "  cuBLAS " + (.cublas_flops_per_second | tf) +
      (if .cublas_flops_per_second then "  (own/cuBLAS " + (.flops_per_second / .cublas_flops_per_second * 100 | round / 100 | tostring) + ")" else "  (" + .cublas + ")" end) +
      "  repeats " + (.repeats | tostring) + ", mismatches " + (.mismatched_elements | tostring)),
    (if .transfer then "transfer   host->device " + (.transfer.host_to_device_bytes_per_second | gb) +
      ", device->host " + (.transfer.device_to_host_bytes_per_second | gb) + " (pinned)" else empty end),
    "memory     " + (.memory.bytes_tested / 1073741824 * 10 | round / 10 | tostring) + " GiB tested, " +
      (.memory.errors | tostring) + " errors",
    "checks     " + ([.checks[] | .name + (if .passed then " pass" else " FAIL" end)] | join(", ")),
    "probe      " + (.seconds * 10 | round / 10 | tostring) + " s in the probe"' "$json"
  echo "wall       $wall s for the whole command (process start, CUDA initialisation, probe)"
  if [ "$level" = quick ]; then echo "           [target: quick probe <= 15 s]"; fi
}

run() {  # LEVEL
  local level=$1 start end rc
  start=$(date +%s.%N)
  set +e
  "$plinth" gpu probe --level="$level" --device="$device" --json >"$tmp/$level.json" 2>"$tmp/err"; rc=$?
  set -e
  end=$(date +%s.%N)
  if [ "$rc" != 0 ] && [ "$rc" != 4 ]; then
    echo "bench: the $level probe failed (exit $rc): $(cat "$tmp/err")" >&2
    exit 1
  fi
  report "$level" "$tmp/$level.json" "$(echo "$end - $start" | bc -l | xargs printf '%.1f')"
}

run quick
if $full; then run full; fi
