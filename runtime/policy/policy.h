// Policies at plan time (docs/policy.md): every `policy` block of the checked
// configuration is compiled by the rule compiler (compiler/rules) against
// the schema of its `for_all` resource type, then evaluated over the planned
// values of every instance of that type that is not being deleted.
//
// Input: the checked configuration's policies (their syntax trees alive) and
// the plan. Output: findings (violations and rules that cannot be decided
// until apply) and counts; rule type errors go to the diagnostics sink with
// their location. A rule that reads a value known only after apply is
// reported as undecided, never passed.
//
// Small inputs are interpreted; large ones (kJitThreshold matching resources
// or more) are JIT-compiled, where compiling pays for itself.
#pragma once

#include <string>
#include <vector>

#include "compiler/check/checker.h"
#include "compiler/diag/diagnostic.h"
#include "runtime/plan/plan.h"

namespace plinth::runtime {

// Break-even from bench/rules_bench.cpp (docs/benchmarks.md, "Rules"): the
// JIT compiles a policy in about 1.7 ms and saves about 5 ns per record for
// straight-line rules (more for string and loop rules), so compiling pays for
// itself from roughly 35k-340k records; 100k sits in that range.
inline constexpr size_t kJitThreshold = 100000;

struct PolicyReport {
  std::vector<PolicyFinding> findings;  // by policy, then address
  size_t policies = 0;                  // policy blocks evaluated
  size_t checks = 0;                    // (policy, resource) pairs evaluated
  bool jit = false;                     // some policy ran as native code
};

// Type-checks every policy's rules (what `validate` does); errors go to `diags`.
void CheckPolicies(const std::vector<PolicyInstance>& policies, Diagnostics& diags);

// Evaluates `policies` over the planned resources of `plan`.
PolicyReport EvaluatePolicies(const std::vector<PolicyInstance>& policies, const Plan& plan, Diagnostics& diags,
                              size_t jit_threshold = kJitThreshold);

// One policy_test case: the verdict ("pass", "fail", "undecided", "skip")
// the named policy gives the case's resource, or an error message.
struct PolicyTestResult {
  std::string name;
  std::string expected;
  std::string got;  // empty when `error` is set
  std::string error;
  std::string message;  // the policy's message, for "fail"
  bool ok() const { return error.empty() && got == expected; }
};
std::vector<PolicyTestResult> RunPolicyTests(const CheckedConfig& config, Diagnostics& diags);

}  // namespace plinth::runtime
