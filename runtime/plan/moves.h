// `moved` and `removed` blocks applied to the prior state (docs/language.md,
// "Moving and removing resources").
//
// Input: the checked configuration's move and removed statements (absolute
// addresses, one per module instance), the prior state and the configured
// instances. Output: the prior state under its new addresses, which new
// address came from which recorded one, which recorded objects a removed
// block forgets or destroys, and every conflict as a plan problem. Pure:
// nothing here reads or writes the outside world, so the engine can run it
// before diffing and the tests can run it alone.
//
// Semantics, as Terraform and OpenTofu:
//  * `marker.a` -> `marker.b`: every instance, keys kept; `marker.a[0]` ->
//    `marker.a["x"]`: one instance; `marker.a` -> `marker.a[0]` (one side
//    without a key): the instance without a key, across a count/for_each
//    boundary; `module.a` -> `module.b`: every instance of the call and
//    everything beneath; `module.a["x"]` -> `module.b`: one instance.
//  * Statements run in dependency order: one whose `from` lies in another's
//    `to` runs after it, so chains (a -> b, b -> c) end at c.
//  * A statement whose `from` matches nothing in the state is skipped (the
//    block may stay for workspaces that still hold the old address).
//  * Errors: two statements from one address to different places, two to
//    one address from different places, a cycle, a `from` still in the
//    configuration, a `to` that already holds another object.
//  * Removed blocks apply after the moves.
// Linear in the state for each statement; nothing at all without statements.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/check/checker.h"
#include "runtime/plan/plan.h"

namespace plinth::runtime {

// One step of an address: `module.net` or `marker.a`, with its instance key
// as written in addresses (`["eu"]`, `[0]`, or empty).
struct AddressStep {
  std::string name;
  std::string key;
  bool operator==(const AddressStep&) const = default;
};

// `module.net["eu"].marker.a[0]` -> [module.net ["eu"]] [marker.a [0]].
// Empty when `address` is not one (unbalanced quotes, a missing name).
std::vector<AddressStep> SplitAddress(std::string_view address);

struct MoveOutcome {
  std::vector<PriorResource> prior;  // under the new addresses (same order)
  std::map<std::string, std::string> moved_from;  // new address -> address in the state
  // Recorded objects a removed block takes out of the configuration's
  // reach: address (after the moves) -> the statement.
  std::map<std::string, RemovedStatement> removed;
  std::vector<PlanProblem> problems;  // messages name addresses; the range is the block's
};

MoveOutcome ApplyMoves(const std::vector<MoveStatement>& moves, const std::vector<RemovedStatement>& removals,
                       std::vector<PriorResource> prior, const std::vector<ResourceInstance>& config);

}  // namespace plinth::runtime
