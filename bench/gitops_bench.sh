#!/usr/bin/env bash
# GitOps costs (docs/benchmarks.md, "Change provenance" and "Plans from git"):
# a bare repository with COMMITS commits of history over RESOURCES marker
# blocks in 10 files (made with git fast-import: one commit creates them all,
# each later one changes one block's content). A workspace applies the
# commit CHANGED commits before the head; then the head is planned:
#   - from a checkout (plinth plan DIR) and with --git (the plan-from-git
#     overhead: the tree read from the repository, no checkout);
#   - with change provenance: its time per planned change, the blame cold
#     (nothing cached) and warm (the per-blob cache), and with no boundary
#     (a workspace that never applied from git: the last 1,000 commits).
# Usage: bench/gitops_bench.sh [BUILD_DIR] [COMMITS] [RESOURCES] [CHANGED]
#        (default: build 10000 1000 100)
set -euo pipefail
build=$(realpath "${1:-build}")
commits=${2:-10000}
resources=${3:-1000}
changed=${4:-100}
plinth="$build/plinth"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
repo="$tmp/infra.git"
git init -q --bare -b main "$repo"
t0=$(date +%s.%N)
python3 - "$commits" "$resources" <<'PY' | git -C "$repo" fast-import --quiet
import random, sys
commits, resources = int(sys.argv[1]), int(sys.argv[2])
files = 10
per = (resources + files - 1) // files
content = [0] * resources
random.seed(7)
def block(i):
    return 'marker "r%05d" {\n  path    = "m/r%05d"\n  content = "c%d"\n}\n\n' % (i, i, content[i])
def emit(n, msg, paths):
    out = sys.stdout
    out.write("commit refs/heads/main\nmark :%d\n" % n)
    out.write("author Bench <bench@example.org> %d +0000\n" % (1700000000 + n))
    out.write("committer Bench <bench@example.org> %d +0000\n" % (1700000000 + n))
    data = msg.encode()
    out.write("data %d\n%s\n" % (len(data), msg))
    if n > 1:
        out.write("from :%d\n" % (n - 1))
    for f in paths:
        text = "".join(block(i) for i in range(f * per, min(resources, (f + 1) * per))).encode()
        out.write("M 100644 inline conf/f%02d.plinth\ndata %d\n" % (f, len(text)))
        sys.stdout.flush()
        sys.stdout.buffer.write(text)
        out.write("\n")
emit(1, "Create %d resources" % resources, range(files))
for n in range(2, commits + 1):
    i = random.randrange(resources)
    content[i] = n
    emit(n, "Change r%05d" % i, [i // per])
PY
t1=$(date +%s.%N)
head=$(git -C "$repo" rev-parse main)
applied=$(git -C "$repo" rev-parse "main~$changed")
echo "gitops-bench: $commits commits over $resources resources made in $(python3 -c "print(f'{$t1-$t0:.1f}')") s"
ms() { python3 -c "print(f'{($2-$1)*1000:.0f}')"; }
home="$tmp/home"
mkdir -p "$home"
"$plinth" apply --auto-approve --git="$repo@$applied" --dir="$home" conf >/dev/null 2>&1
changes_expected=$(git -C "$repo" log --format=%s "$applied..$head" | sort -u | wc -l)
# A checkout of the head, for the comparison.
git clone -q "$repo" "$tmp/checkout"
cp -r "$home/.plinth" "$tmp/checkout/conf/"
rm -rf "$tmp/checkout/conf/.plinth/.git-cache"
a=$(date +%s.%N); "$plinth" plan "$tmp/checkout/conf" >/dev/null 2>&1; b=$(date +%s.%N)
plan_dir=$(ms "$a" "$b")
run() {  # LABEL HOME: a plan of the head with --git; prints its figures
  local a b
  a=$(date +%s.%N)
  "$plinth" plan --git="$repo@main" --dir="$2" conf >"$tmp/plan.txt" 2>"$tmp/plan.err"
  b=$(date +%s.%N)
  local line
  line=$(grep '^Provenance:' "$tmp/plan.err" || echo "Provenance: none")
  local prov changes
  prov=$(echo "$line" | sed -n 's/.* in \([0-9]*\) ms$/\1/p')
  changes=$(echo "$line" | sed -n 's/^Provenance: [0-9]* of \([0-9]*\) changes.*/\1/p')
  echo "gitops-bench: $1: plan $(ms "$a" "$b") ms, provenance ${prov:-?} ms for ${changes:-?} changes ($(python3 -c "print(f'{${prov:-0}/max(1,${changes:-1}):.2f}')") ms per change); ${line#Provenance: }"
}
run "git, cold blame (boundary $changed commits back)" "$home"
run "git, warm blame cache" "$home"
echo "gitops-bench: checkout: plan $plan_dir ms (the same plan read from a directory; $changes_expected distinct commits since the applied one)"
# No boundary: a workspace that never applied from git (a copy of the state, its history without sources).
fresh="$tmp/fresh"
mkdir -p "$fresh"
cp -r "$tmp/checkout/conf/.plinth" "$fresh/"
sqlite3 "$fresh/.plinth/default/state.db" "UPDATE serials SET source = ''" 2>/dev/null ||
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"UPDATE serials SET source = ''\"); c.commit()" "$fresh/.plinth/default/state.db"
run "git, no boundary (last 1000 commits), cold" "$fresh"
