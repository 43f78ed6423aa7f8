#!/usr/bin/env bash
# End-to-end checks of compute pools and jobs on the local provider
# (docs/compute.md), through the CLI, against the fake GPU inventory:
#  - examples/gpu-training applies: a node is provisioned while the jobs wait,
#    the training job sees exactly one GPU, writes its checkpoints and
#    succeeds; its secret is in no file; the next plan is empty; the node is
#    decommissioned after its idle time and compute status shows no node;
#  - a job asking for more GPUs than any shape offers is a located plan error;
#  - plinth killed while apply waits for a job: the job is neither orphaned nor
#    run twice, and the next apply records how it ended;
#  - a pool's min_nodes node outlives its idle time; job logs --follow streams
#    a running job's lines and returns when it ends;
#  - a patched pool: new nodes join at the level, a new level waits for its
#    closed window (plan note) and rolls out once it opens, a failing level
#    halts after one node;
#  - destroy removes jobs and pools and leaves no agent running.
set -euo pipefail
cd "$(dirname "$0")/.."
plinth=$(realpath "${1:-build/plinth}")
tmp=$(mktemp -d)
export PLINTH_GPU_LOCK_DIR="$tmp/gpu-locks"
cleanup() {
  # Agents started for this test's workspaces, whatever happened.
  pkill -KILL -f "compute agent --compute-dir=$tmp" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "compute-test: $*" >&2; exit 1; }
wait_for() {  # wait_for SECONDS CMD...: until CMD succeeds
  local limit=$1 t0=$SECONDS
  shift
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt "$limit" ] || return 1
    sleep 0.3
  done
}
live_nodes() {  # live_nodes DIR: the number of live nodes compute status reports
  "$plinth" compute status --json --dir="$1" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(len(p.get("nodes", [])) for p in d["pools"]))'
}
no_live_nodes() { [ "$(live_nodes "$1")" = 0 ]; }

# 1. The example, end to end.
ex="$tmp/gpu-training"
cp -r examples/gpu-training "$ex"
rm -rf "$ex/.plinth"
export PLINTH_FAKE_GPUS="$ex/gpus.json"
secret="s3cr3t-$RANDOM-$RANDOM-token"
PLINTH_VAR_hub_token="$secret" "$plinth" apply --auto-approve --var node_idle=2s "$ex" >"$tmp/apply.txt" 2>&1 ||
  fail "apply of the example failed: $(cat "$tmp/apply.txt")"
grep -q 'train_status = "succeeded"' "$tmp/apply.txt" || fail "the training job did not succeed: $(cat "$tmp/apply.txt")"
ckpts="$ex/.plinth/default/data/regions/lab/buckets/checkpoints"
[ -f "$ckpts/ckpt-epoch-3.json" ] || fail "no checkpoint written: $(ls -la "$ckpts")"
train_id=$("$plinth" job ls --all --json --dir="$ex" |
  python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin)["jobs"] if "/train-" in j["id"]][0])')
"$plinth" job logs --dir="$ex" "$train_id" >"$tmp/train.log" || fail "job logs failed"
grep -Eq '^training on GPUs \[[0-9]+\]$' "$tmp/train.log" || fail "the job did not see exactly one GPU: $(cat "$tmp/train.log")"
if grep -rqF -- "$secret" "$ex/.plinth" "$tmp/apply.txt" "$tmp/train.log"; then
  fail "the job's secret is in a file: $(grep -rlF -- "$secret" "$ex/.plinth" "$tmp"/*.txt)"
fi
PLINTH_VAR_hub_token="$secret" "$plinth" plan --detailed-exitcode --var node_idle=2s "$ex" >"$tmp/plan.txt" 2>&1 ||
  fail "the plan after apply is not empty: $(cat "$tmp/plan.txt")"
wait_for 30 no_live_nodes "$ex" || fail "the node was not decommissioned after its idle time: $("$plinth" compute status --dir="$ex")"
"$plinth" compute status --dir="$ex" >"$tmp/status.txt"
grep -q "queue: succeeded 2" "$tmp/status.txt" || fail "compute status: $(cat "$tmp/status.txt")"
grep -q "node lab-gpu-1 provisioned with shape 1 (H100:1)" "$tmp/status.txt" ||
  fail "compute status does not show why and how the node was provisioned: $(cat "$tmp/status.txt")"
grep -q "decommissioned" "$tmp/status.txt" || fail "compute status does not show the decommission: $(cat "$tmp/status.txt")"

# 2. More GPUs than any shape: a plan error at the job's block.
sed 's/  gpus       = 1/  gpus       = 4/' "$ex/main.plinth" >"$tmp/too-many.plinth"
mkdir -p "$tmp/too-many" && cp "$tmp/too-many.plinth" "$tmp/too-many/main.plinth"
set +e
"$plinth" plan "$tmp/too-many" >"$tmp/too-many.txt" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "a job asking for 4 GPUs planned (exit $rc): $(cat "$tmp/too-many.txt")"
grep -Eq "main.plinth:[0-9]+:1: job.train: job asks for 4 GPUs per task but pool gpu's largest shape has 1" \
  "$tmp/too-many.txt" || fail "the error is not located: $(cat "$tmp/too-many.txt")"

# 3. plinth killed while it waits for a job.
k="$tmp/killed"
mkdir -p "$k"
cat >"$k/main.plinth" <<PLINTH
region "r" {}

pool "cpu" {
  region    = region.r
  max_nodes = 1
  idle      = 2s
  health    = "none"
  shape {
    cpus = 1
  }
}

job "slow" {
  pool    = pool.cpu
  command = ["/bin/sh", "-c", "echo run >>$tmp/runs; sleep 3"]
}
PLINTH
"$plinth" apply --auto-approve "$k" >"$tmp/killed-apply.txt" 2>&1 &
apply_pid=$!
running() { "$plinth" job ls --dir="$k" 2>/dev/null | grep -q " running "; }
wait_for 30 running || fail "the job never ran: $(cat "$tmp/killed-apply.txt")"
kill -KILL "$apply_pid"
wait "$apply_pid" 2>/dev/null || true
"$plinth" apply --auto-approve "$k" >"$tmp/killed-again.txt" 2>&1 || fail "the apply after the kill failed: $(cat "$tmp/killed-again.txt")"
ended() { "$plinth" job ls --all --dir="$k" | grep -q " succeeded "; }
wait_for 30 ended || fail "the job did not end: $("$plinth" job ls --all --dir="$k")"
[ "$(wc -l <"$tmp/runs")" = 1 ] || fail "the job ran $(wc -l <"$tmp/runs") times after plinth was killed"
"$plinth" refresh "$k" >/dev/null 2>&1 || fail "refresh failed"
"$plinth" state show --dir="$k" job.slow | grep -q 'status *= "succeeded"' || fail "the state does not say how the job ended: $("$plinth" state show --dir="$k" job.slow)"

# 4. min_nodes keeps a node without work past its idle time; job logs --follow
# streams a running job's output and returns when the job ends.
m="$tmp/warm"
mkdir -p "$m"
cat >"$m/main.plinth" <<PLINTH
region "r" {}

pool "warm" {
  region    = region.r
  min_nodes = 1
  max_nodes = 2
  idle      = 1s
  health    = "none"
  shape {
    cpus = 1
  }
}
PLINTH
"$plinth" apply --auto-approve "$m" >"$tmp/warm-apply.txt" 2>&1 || fail "apply of a min_nodes pool failed: $(cat "$tmp/warm-apply.txt")"
one_live() { [ "$(live_nodes "$m")" = 1 ]; }
wait_for 30 one_live || fail "min_nodes = 1 did not start a node: $("$plinth" compute status --dir="$m")"
sleep 3  # three idle times
[ "$(live_nodes "$m")" = 1 ] || fail "the min_nodes node idled out: $("$plinth" compute status --dir="$m")"
"$plinth" job submit --dir="$m" --pool=r/warm -- /bin/sh -c 'for i in 1 2 3; do echo "line $i"; sleep 1; done' \
  >"$tmp/submit.txt" 2>&1 || fail "job submit failed: $(cat "$tmp/submit.txt")"
jid=$(grep -Eo 'r/warm/[A-Za-z0-9._-]+' "$tmp/submit.txt" | head -1)
[ -n "$jid" ] || fail "job submit printed no job id: $(cat "$tmp/submit.txt")"
timeout 30 "$plinth" job logs --follow --dir="$m" "$jid" >"$tmp/follow.txt" 2>&1 ||
  fail "job logs --follow did not return when the job ended: $(cat "$tmp/follow.txt")"
for i in 1 2 3; do grep -qx "line $i" "$tmp/follow.txt" || fail "job logs --follow missed line $i: $(cat "$tmp/follow.txt")"; done

# 5. Patching nodes through apply (docs/compute.md, "Patching nodes"): new
# nodes join patched; a new level waits while its window is closed (a plan
# note says so), rolls out once it is open; a failing level halts.
# (The warm pool's node goes first: CI machines have 2 CPUs, and this pool needs both.)
"$plinth" destroy --auto-approve "$m" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
pt="$tmp/patch"
mkdir -p "$pt"
cat >"$pt/patch-node.sh" <<'SH'
#!/bin/sh
echo "$PLINTH_NODE $PLINTH_PREVIOUS_PATCH_LEVEL $PLINTH_PATCH_LEVEL" >> "$(dirname "$0")/patched.log"
case "$PLINTH_PATCH_LEVEL" in bad*) echo "cannot patch" >&2; exit 3 ;; esac
SH
chmod +x "$pt/patch-node.sh"
cat >"$pt/main.plinth" <<'PLINTH'
variable "level" {
  type    = string
  default = "v1"
}
variable "start" {
  type    = string
  default = "00:00"
}
region "r" {}
maintenance_window "w" {
  start    = var.start
  duration = 2h
}
pool "p" {
  region    = region.r
  min_nodes = 2
  max_nodes = 2
  health    = "none"
  shape {
    cpus = 1
  }
  patch {
    level   = var.level
    command = ["./patch-node.sh"]
    window  = maintenance_window.w
  }
}
PLINTH
closed=$(date -u -d '+3 hours' +%H:00)
open=$(date -u -d '-1 minute' +%H:%M)
patch_status() {  # patch_status FIELD: the pool's patch FIELD from compute status --json
  "$plinth" compute status --json --dir="$pt" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["pools"][0]["patch"][sys.argv[1]])' "$1"
}
at_level() { [ "$(patch_status nodes_at_level)" = 2 ]; }
PLINTH_VAR_level=v1 PLINTH_VAR_start=$closed "$plinth" apply --auto-approve "$pt" >"$tmp/patch-apply.txt" 2>&1 ||
  fail "apply of a patched pool failed: $(cat "$tmp/patch-apply.txt")"
wait_for 30 at_level || fail "new nodes did not join at level v1: $("$plinth" compute status --dir="$pt")"
PLINTH_VAR_level=v2 PLINTH_VAR_start=$closed "$plinth" plan "$pt" >"$tmp/patch-plan.txt" 2>&1 || true
grep -q 'patching the running nodes to level "v2" waits for maintenance window w: next opens' "$tmp/patch-plan.txt" ||
  fail "the plan has no window note: $(cat "$tmp/patch-plan.txt")"
PLINTH_VAR_level=v2 PLINTH_VAR_start=$closed "$plinth" apply --auto-approve "$pt" >"$tmp/patch-apply.txt" 2>&1 ||
  fail "apply of level v2 failed: $(cat "$tmp/patch-apply.txt")"
sleep 3
[ "$(grep -c ' v1 v2$' "$pt/patched.log" || true)" = 0 ] ||
  fail "a node was patched while the window was closed: $(cat "$pt/patched.log")"
"$plinth" compute status --dir="$pt" | grep -q "waiting for maintenance window w" ||
  fail "compute status does not say the level waits: $("$plinth" compute status --dir="$pt")"
PLINTH_VAR_level=v2 PLINTH_VAR_start=$open "$plinth" apply --auto-approve "$pt" >"$tmp/patch-apply.txt" 2>&1 ||
  fail "apply with an open window failed: $(cat "$tmp/patch-apply.txt")"
wait_for 30 at_level || fail "the nodes did not reach v2 in the window: $("$plinth" compute status --dir="$pt")"
[ "$(grep -c ' v1 v2$' "$pt/patched.log")" = 2 ] || fail "not each node patched once to v2: $(cat "$pt/patched.log")"
PLINTH_VAR_level=bad1 PLINTH_VAR_start=$open "$plinth" apply --auto-approve "$pt" >"$tmp/patch-apply.txt" 2>&1 ||
  fail "apply of level bad1 failed: $(cat "$tmp/patch-apply.txt")"
halted() { [ "$(patch_status halted)" = True ]; }
wait_for 30 halted || fail "a failing level did not halt: $("$plinth" compute status --dir="$pt")"
[ "$(grep -c ' bad1$' "$pt/patched.log")" = 1 ] || fail "more than one node tried the halted level: $(cat "$pt/patched.log")"
"$plinth" compute status --dir="$pt" | grep -q "patch level bad1 failed: the patch command exited with status 3" ||
  fail "the failure is not in the events: $("$plinth" compute status --dir="$pt")"
echo "compute-test: each node patched once to v2 in its window, none before; a failing level halted after one node"

# 6. destroy: jobs, pools and agents go.
for d in "$ex" "$k" "$pt"; do
  "$plinth" destroy --auto-approve "$d" >"$tmp/destroy.txt" 2>&1 || fail "destroy failed: $(cat "$tmp/destroy.txt")"
done
if pgrep -f "compute agent --compute-dir=$tmp" >/dev/null; then fail "an agent outlived destroy"; fi
echo "compute-test: all passed"
