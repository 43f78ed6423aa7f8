// The planner's core: what must change to make the world match the
// configuration, and in which order.
//
// Input: the checked configuration's resource instances (attributes as the
// provider planned them, unknown where only apply can tell), the prior state
// and, per instance, the attributes whose change forces a replacement.
// Output: a Plan (one action per address, with reasons and attribute
// changes) and an execution Graph. Both are pure functions: nothing here
// reads or writes the outside world.
//
// Invariants: every graph pass is O(N log N) in instances plus edges;
// dependencies on a whole resource or module (`region.site`, `module.net`)
// go through one group node instead of an edge per instance pair.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "compiler/check/checker.h"
#include "compiler/types/types.h"
#include "runtime/provider/provider.h"

namespace plinth::runtime {

// Forget: a `removed` block with destroy = false takes the object out of the
// state; the provider is not called and the object stays as it is.
enum class Action : uint8_t { NoOp, Create, Update, Replace, Delete, Forget };
const char* ActionName(Action a);  // "no-op", "create", "update", "replace", "delete", "forget"

// A resource as the state records it.
struct PriorResource {
  std::string address;
  std::string type;
  std::string id;
  ValueMap attributes;
  std::vector<std::string> depends_on;  // as recorded when it was last applied
};

struct AttributeChange {
  std::string name;
  Value before;  // null when created
  Value after;   // null when deleted; unknown when known only after apply
  bool forces_replacement = false;
};

struct PlannedResource {
  std::string address;
  std::string type;
  Action action = Action::NoOp;
  std::vector<std::string> reasons;  // why, in words: "'region' forces replacement"
  std::vector<AttributeChange> changes;
  std::optional<ValueMap> prior;
  ValueMap planned;  // empty for Delete
  std::vector<std::string> depends_on;
  bool create_before_destroy = false;
  // lifecycle.correct_drift: the controller's drift task may apply this
  // resource's plan when it changed outside Plinth. Explains only; a plan's
  // apply never reads it.
  bool correct_drift = false;
  // Delete and Replace: what deleting the existing resource removes with it,
  // from the provider (set by the engine; unset when not asked).
  std::optional<DeletePreview> deletes;
  // Create and Replace: the deletes of other addresses that hold the object
  // this creation makes (same type, and their recorded id is this planned
  // id: a renamed resource). The creation runs after them, never beside them.
  std::vector<std::string> waits_for_deletes;
  // The address the state records the object under, when a `moved` block
  // gives it this one (runtime/plan/moves.h); empty otherwise. Apply
  // renames the record first, in one transaction.
  std::string moved_from;
  // Non-empty when this plan imports the object (an `import` block): the
  // provider's id for it. `prior` is then the imported object; apply records
  // it in the state before any update (docs/cli.md, "Importing existing objects").
  std::string import_id;
  // Where it is declared (invalid for a delete of what the configuration
  // no longer has), and the module blocks that instantiate it.
  Range range;
  std::vector<Range> call_sites;
  // The commits that caused this change (docs/gitops.md, "Change
  // provenance"), newest first; filled for configurations from git.
  struct Cause {
    std::string commit;  // 40 hex digits
    std::string author;
    int64_t time_s = 0;
    std::string summary;
    std::string how;  // "changed envs/prod/main.plinth:12-15", "removed `marker \"old\"`"
  };
  std::vector<Cause> caused_by;
};

// What a saved or approved plan records per address, and apply compares:
// the action name; for an import `import "ID"` and the action it also makes
// (`import "m/x", update`); and " from ADDRESS" for a moved resource. Apply
// refuses when any of them differ.
std::string SavedAction(const PlannedResource& r);

struct PlanProblem {
  std::string address;
  std::string message;  // lowercase; e.g. prevent_destroy refusals
  Range range;          // the resource block, when it is in the configuration
};

// What a policy found about one planned resource (docs/policy.md).
struct PolicyFinding {
  std::string policy;   // policy.encrypted_buckets
  std::string address;  // the resource checked
  enum class Outcome : uint8_t {
    Violated,   // `require` is false
    Undecided,  // it reads a value known only after apply
  } outcome = Outcome::Violated;
  bool deny = true;     // severity deny (a violation blocks apply), else warn
  std::string message;  // never contains a sensitive value
  Range range;          // the policy's label
};

// --target, --exclude and --replace (docs/cli.md, "Targeting"). Each entry
// is an address as plans spell it: an instance (`marker.a[0]`,
// `bucket.b["k"]`), a resource (`marker.a`: all its instances) or a module
// call (`module.net`, `module.net["k"]`: everything in it).
struct Targeting {
  std::vector<std::string> targets;   // only these and what they depend on
  std::vector<std::string> excludes;  // everything but these and what depends on them
  std::vector<std::string> replace;   // replace these even when nothing changed
  bool empty() const { return targets.empty() && excludes.empty() && replace.empty(); }
  bool Restricts() const { return !targets.empty() || !excludes.empty(); }
};

struct Plan {
  std::vector<PlannedResource> resources;  // sorted by address
  std::vector<PlanProblem> problems;       // the plan must not be applied while this is non-empty
  std::vector<PolicyFinding> policy_findings;
  size_t policies = 0, policy_checks = 0;  // policy blocks, and (policy, resource) pairs evaluated
  // The targeting this plan was made with (empty: none), and how many
  // resource instances it left out of the plan (of them, how many had
  // changes pending that a full plan would show).
  Targeting targeting;
  size_t left_out = 0, left_out_changes = 0;
  // A deny policy is violated: the plan must not be applied.
  bool Denied() const;
  size_t Count(Action a) const;
  size_t Moved() const;    // resources with moved_from
  size_t Imports() const;  // resources with an import_id
  // Any action but no-op, a move (the state must be rewritten) or an import.
  bool HasChanges() const;
};

// Builds the plan, consuming `config` and `prior` (pass them with std::move
// where the caller is done with them). `replace_because[address]` lists force-new attributes the
// provider found changed. Attributes named in an instance's ignore_changes
// (or "all") never cause an update. `schemas` tells computed attributes
// (an unknown computed value keeps its prior value); null: only `id` is.
// `destroy`: every prior resource is deleted; `config` only says which of
// them are protected (lifecycle.prevent_destroy), each a problem.
// A resource with prevent_destroy that would be replaced or destroyed is a
// problem; one removed from the configuration has no lifecycle left and is
// deleted. A create whose planned `id` is the recorded id of a resource of
// the same type being deleted waits for that delete (waits_for_deletes).
// An instance in `replace_requested` (--replace) that exists is replaced
// even when nothing changed, with the reason "replace requested by
// --replace"; its provider plan should be the one of a creation, so that
// its computed attributes (and what reads them) become unknown as on any
// replacement.
Plan ComputePlan(std::vector<ResourceInstance> config, std::vector<PriorResource> prior,
                 const std::map<std::string, std::vector<std::string>>& replace_because,
                 const SchemaRegistry* schemas = nullptr, bool destroy = false,
                 const std::unordered_set<std::string>* replace_requested = nullptr);

// True when `selector` (a --target, --exclude or --replace address) names
// `address`: the address itself, its resource without the instance key, or
// an enclosing module call.
bool AddressSelects(std::string_view selector, const std::string& address);

// Restricts a whole plan to its targets (docs/cli.md, "Targeting") and
// records `targeting` in it. --target keeps the targeted instances and
// everything they depend on, transitively; --exclude keeps everything but
// the excluded instances and everything that depends on them. A creation
// that waits for the delete of the same object (a rename) goes with that
// delete. With
// `destroy` the directions flip: destroying X destroys its dependents
// first, and keeping X keeps what it depends on. Left-out resources, and
// their problems, leave the plan (it is counted in left_out). One pass over
// the dependency edges: linear in instances plus edges.
// Returns the errors, each one line: an address that matches nothing in the
// plan (with a "did you mean"), --target with --exclude. The plan is left
// unchanged when there are any.
std::vector<std::string> RestrictToTargets(Plan& plan, const Targeting& targeting, bool destroy);

// The order in which a plan's changes run.
struct GraphNode {
  std::string address;
  enum class Step : uint8_t { Apply, Destroy, Group } step = Step::Apply;
  std::vector<uint32_t> after;  // nodes that must finish first
};

struct Graph {
  std::vector<GraphNode> nodes;
  std::vector<uint32_t> order;  // a topological order (dependencies first)
  // Non-empty when the steps form a cycle (create_before_destroy can cause
  // one); the addresses on it, in order.
  std::vector<std::string> cycle;
};

// Creates and updates run after what they depend on; deletes run before the
// deletion of what they depended on; a replacement is a destroy then a
// create (or create then destroy with create_before_destroy); a creation
// runs after the deletes in its waits_for_deletes. Unchanged resources are
// not nodes.
Graph BuildGraph(const Plan& plan);

// The human plan: `+ create`, `~ update in-place`, `-/+ replace`, `- delete`,
// attribute lines, reasons, and a summary line. Sensitive values print as
// (sensitive), unknown ones as (known after apply).
std::string RenderPlanText(const Plan& plan, bool color);
// "1 to create, 2 to update, 0 to replace, 0 to delete": the counts
// summaries quote (pull-request plans, the git sync's status).
std::string ChangeCounts(const Plan& plan);

// `text` with every control character written as an escape: \n, \r, \t,
// \x1b for the other C0 bytes and DEL, \u009b for the C1 ones (UTF-8
// encoded). For text that comes from providers and child processes and is
// shown on a terminal: a message must never move the cursor, change
// colours, retitle the window or split into several lines.
std::string EscapeControls(std::string_view text);

// The machine-readable plan, format_version 1 (docs/plan-json.md).
std::string RenderPlanJson(const Plan& plan);

}  // namespace plinth::runtime
