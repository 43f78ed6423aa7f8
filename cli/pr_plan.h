// Pull-request plans (docs/gitops.md, "Pull-request plans"): `plinth plan
// --git=REPO --base=BASE --head=HEAD [PATH]` plans the head's tree against
// the workspace's state and prints a Markdown summary fit for a
// pull-request comment, on standard output: the counts, the changed
// addresses by action, the policy findings, the commits and files since the
// merge base, or the configuration's errors. It stays under a size budget
// (--summary-limit, default 60,000 characters; GitHub refuses comments over
// 65,536): lists are cut with a count of what was left out and a pointer to
// the full plan. The full plan is written as artifacts into --artifacts
// (default plinth-plan/): plan.txt (the plan as `plinth plan` prints it,
// without colour), plan.json (docs/plan-json.md) and summary.md.
//
// Exit codes as plan's: 0 (no changes, or changes without
// --detailed-exitcode), 2 with --detailed-exitcode when changes are
// pending, 4 when a deny policy is violated, 1 on errors (the summary then
// holds them, so the comment says why).
#pragma once

#include "cli/commands.h"
#include "runtime/engine/engine.h"

namespace plinth::cli {

int PullRequestPlan(const Options& o, const runtime::EngineResult& r, const SourceManager& sources,
                    const Diagnostics& diags);

}  // namespace plinth::cli
