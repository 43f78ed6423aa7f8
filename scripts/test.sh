#!/usr/bin/env bash
# README command 2: install what is missing, build, and run the whole test
# suite: unit + golden tests (CTest), CLI checks on every example and the
# plan/apply round trip, local bucket storage (objects, lifecycle, backups,
# restore), compute pools and jobs (local provider and a Slurm cluster), services behind HAProxy and the controller, the Python example provider's protocol, the S3 provider against a Ceph RGW on 127.0.0.1, the crash-injection harness (SIGKILL during apply
# and destroy), and a short fuzz run of the parser and checker.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step's wall time goes to stderr, so a slow CI run shows where it went.
suite_start=$SECONDS
step_start=$SECONDS
timed() {
  local rc=0
  "$@" || rc=$?
  echo "test.sh: ${*:1:2} took $((SECONDS - step_start)) s ($((SECONDS - suite_start)) s in all; exit $rc)" >&2
  step_start=$SECONDS
  return "$rc"
}
timed scripts/deps.sh
timed scripts/build.sh
timed ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 600
# The fuzz target (a second build, with clang and ASan) compiles at the
# lowest CPU priority while the suites below, which mostly wait on servers
# and timers, run; the fuzz run itself comes last. Stopped if a suite fails.
fuzz_log=$(mktemp)
setsid nice -n 19 scripts/fuzz.sh --build-only >"$fuzz_log" 2>&1 &
fuzz_build=$!
trap 'kill -- -"$fuzz_build" 2>/dev/null || true; rm -f "$fuzz_log"' EXIT
fuzz_built() {
  wait "$fuzz_build" || { cat "$fuzz_log" >&2; echo "test.sh: the fuzz build failed" >&2; return 1; }
  tail -1 "$fuzz_log"
}
timed scripts/cli-test.sh build/plinth
timed scripts/docs-examples-test.sh build/plinth
# The editor (docs/editor.md): the VS Code extension type-checked, bundled,
# its TextMate grammar tested, packaged as build/plinth-VERSION.vsix; and
# plinth lsp driven over stdio by the LSP client library VS Code uses.
timed scripts/vscode-extension-test.sh
timed scripts/storage-test.sh build/plinth
# Compute pools and jobs on the local provider (docs/compute.md): the
# gpu-training example against the fake GPU inventory, a killed plinth, destroy.
timed scripts/compute-test.sh build/plinth
# Services and load balancers (docs/services.md, docs/load-balancing.md): the
# inference example behind a real HAProxy on 127.0.0.1, region loss and a
# rolling update under load, plinth controller's self-healing and adoption.
timed scripts/services-test.sh build/plinth
# Regions that fail (docs/services.md): namespaced regions (root) failed over
# and back with plinth region fail|recover, and the SIGSTOP fallback.
timed scripts/region-test.sh build/plinth
# Autoscaled services (docs/automation.md): a wrk ramp scales eu 1 -> 3 and
# back after the stabilization window; apply never undoes the autoscaler.
timed scripts/autoscale-test.sh build/plinth
# Rolling patches in a maintenance window (docs/services.md): a version waits
# for its window, the controller rolls it out when it opens under load (no
# failed request), a bad patch is rolled back, a killed controller resumes.
timed scripts/patch-test.sh build/plinth
# Flapping replicas (docs/automation.md): a replica that crashes on every
# restart moves to the other region for its hold, then comes home.
timed scripts/flapping-test.sh build/plinth
# Alerts to a real Alertmanager (docs/automation.md): its API receives them.
timed scripts/alertmanager-test.sh build/tests/plinth_unit_tests
# Alert blocks on the controller (docs/automation.md, "Alert rules"): a p95
# latency alert fires, notifies a signed webhook and an Alertmanager, resolves;
# silences hold; no data is never 0; promtool accepts the exported rules.
timed scripts/alerts-test.sh build/plinth
# The controller alone (docs/controller.md): two controllers on one
# workspace, leader election and takeover, promtool on /metrics, the token.
timed scripts/controller-test.sh build/plinth
# Configurations from git (docs/gitops.md): plan/apply --git from a path and
# a file:// remote, history names commits, revert, force-push, bad input.
timed scripts/gitops-test.sh build/plinth
# The controller's drift task: drift reported by attribute name, corrected
# only where lifecycle correct_drift = true, skipped while the lock is held.
timed scripts/drift-test.sh build/plinth
# Configuration files (docs/providers/local.md): validate before the swap,
# reload after, drift corrected by the controller only where drift = "correct".
timed scripts/config-file-test.sh build/plinth
# Debian packages inside maintenance windows (docs/packages.md): a tiny .deb in
# a local apt repository installed, upgraded, deferred while the window is
# closed, repaired and removed (root; skipped otherwise).
timed scripts/package-test.sh build/plinth
# The out-of-process example provider on its own (the C++ side of the
# protocol is covered by the unit tests' conformance suite).
timed examples/provider-python/test_protocol.sh >/dev/null
# The S3 provider against a real store: installs and starts a single-node
# Ceph RADOS Gateway on 127.0.0.1, runs the S3 tests, stops it.
timed tests/fixtures/run-s3-tests.sh build
# The Slurm boundary (docs/providers/slurm.md): munge, slurmctld and CLOUD
# nodes started on 127.0.0.x, powered up and down by plinth compute
# resume|suspend; exit 77 means skipped (not root, or Slurm not installed).
timed tests/fixtures/run-slurm-tests.sh build || [ $? -eq 77 ]
timed scripts/crash-test.sh build/plinth "${CRASH_TRIALS:-50}"
timed scripts/postgres-test.sh build/plinth "${CRASH_TRIALS:-50}"
timed fuzz_built
FUZZ_SECONDS=${FUZZ_SECONDS:-60} timed scripts/fuzz.sh
echo "all tests passed"
