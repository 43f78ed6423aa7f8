// The provider interface: how the engine creates, reads, updates and deletes
// resources. Providers are in-process C++ classes today; every type crossing
// this interface is plain data (Values, strings, flags), so an out-of-process
// provider speaking JSON-RPC over stdio can implement it behind an adapter
// without the engine changing.
//
// Contracts for implementations:
//  * Thread-safe: the executor calls methods concurrently for different
//    resources (never concurrently for the same resource).
//  * No side effects outside the provider's configured root (the local
//    provider writes only under its data root).
//  * Idempotent where possible: Delete of something already gone succeeds;
//    Read of something gone returns nullopt (not an error).
//  * Errors carry `retryable`: true only when the same call may succeed
//    later unchanged (a timeout, a busy store), so the executor may retry it
//    with backoff.
//  * Sensitive attributes (see the schema) never appear in error messages.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "compiler/schema/schema.h"
#include "compiler/types/types.h"

namespace plinth::runtime {

struct ProviderError {
  std::string message;  // lowercase, no trailing period; says what failed and why
  bool retryable = false;
  // The call may or may not have taken effect (an out-of-process provider
  // crashed or timed out mid-call): the engine leaves the change's intent
  // open, and the next plan settles it by reading the resource.
  bool outcome_unknown = false;
  // A create refused because the object exists already: the id to import
  // it by. The engine appends how (`plinth import ADDR ID` or an import
  // block), since only it knows the address.
  std::string import_id = {};
};

// A value or a ProviderError.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(ProviderError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const ProviderError& error() const { return std::get<1>(v_); }
  ProviderError& error() { return std::get<1>(v_); }

 private:
  std::variant<T, ProviderError> v_;
};

struct Done {};  // the value of operations that return nothing

// One resource as the provider sees it.
struct ResourceObject {
  std::string id;       // the provider's identifier; stable for the resource's life
  ValueMap attributes;  // every schema attribute, computed ones filled in
};

struct PlanRequest {
  std::string type;
  const ValueMap* prior = nullptr;  // the current state; null when the resource is to be created
  ValueMap config;                  // configured values and defaults; computed attributes unknown
  // Optional+computed attributes the configuration leaves to the provider:
  // unknown in `config`, but the provider may choose their value now. Any
  // other unknown in `config` was configured and stays unknown until apply.
  std::vector<std::string> unset = {};
};

struct PlanResponse {
  // What the resource will look like after apply: known where the provider
  // can tell now, unknown otherwise (never guessed).
  ValueMap planned;
  // Attributes whose change forces a replacement (force-new), for the plan's "because".
  std::vector<std::string> replace_because;
  // What people should know about this resource before applying (the plan
  // prints "note: <address>: <note>"); never a sensitive value.
  std::vector<std::string> notes;
};

// What deleting one resource removes besides the resource itself, as the
// plan shows it before anything changes (docs/plan-json.md, `deletes`).
struct DeletePreview {
  // One line per kind of data, for people: "3 objects (1.0 MiB)". When the
  // delete is refused, what holds it back.
  std::vector<std::string> data;
  // The amounts behind `data`, by kind ("objects", "object_bytes", ...).
  // Apply reads them again right before the delete and refuses it when any
  // grew since the plan, so a delete never removes more than was shown.
  std::map<std::string, uint64_t> amounts;
  // Non-empty: Delete would refuse. Says what holds data and how to opt in
  // ("set force_destroy = true on bucket.x, apply, then destroy").
  std::string refusal;
};

// One resource of a plan as Provider::CheckPlan sees it: the values it will
// have after apply. Deleted resources are not items. `planned` is valid for
// the duration of the call.
struct PlanItem {
  std::string address;
  std::string type;
  // After apply; unknown where only apply can tell.
  const ValueMap* planned = nullptr;
  // It exists and is kept (unchanged or updated in place), as opposed to
  // created or replaced: of two conflicting resources, the other one is
  // the one to change.
  bool existing = false;
};

// A conflict between planned resources that apply would run into, found
// from planned values alone (two regions claiming the same ports).
struct PlanConflict {
  // Every resource involved, the one to change first; the engine adds each
  // one's source location and makes the conflict a plan problem.
  std::vector<std::string> addresses;
  // Lowercase, no trailing period; what conflicts and how to fix it.
  std::string message;
};

class Provider {
 public:
  virtual ~Provider() = default;

  virtual std::string Name() const = 0;
  virtual const SchemaSource& Schemas() const = 0;

  // Provider-specific checks of a configuration beyond its schema (for
  // example a path that would leave the data root). Messages as above.
  virtual std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const = 0;

  virtual Result<PlanResponse> PlanChange(const PlanRequest& request) = 0;
  virtual Result<ResourceObject> Create(const std::string& type, const ValueMap& planned) = 0;
  // nullopt: the resource no longer exists.
  virtual Result<std::optional<ResourceObject>> Read(const std::string& type, const std::string& id,
                                                     const ValueMap& prior) = 0;
  virtual Result<ResourceObject> Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                        const ValueMap& planned) = 0;
  virtual Result<Done> Delete(const std::string& type, const std::string& id, const ValueMap& prior) = 0;
  // What Delete(type, id, prior) would remove now, and whether it would
  // refuse. Reads only; called by the planner for every delete and
  // replacement. The default: nothing but the resource itself.
  virtual Result<DeletePreview> PlanDelete(const std::string& type, const std::string& id, const ValueMap& prior) {
    (void)type, (void)id, (void)prior;
    return DeletePreview{};
  }
  // Conflicts between the planned resources of this provider's types that
  // would make apply fail half-way (checked at create against what exists),
  // known now from planned values; an unknown value conflicts with nothing.
  // Reads only; called once per plan with every resource of its types,
  // after every PlanChange. The default: none.
  virtual std::vector<PlanConflict> CheckPlan(const std::vector<PlanItem>& items) {
    (void)items;
    return {};
  }
  // What the state may keep of a resource's attributes, applied by the
  // engine to everything it writes (the planned values of an intent, what a
  // create or update returned): write-only values, such as a job's
  // secret_env, replaced by what stands for them (a keyed digest), so the
  // state never holds them. Pure; the default keeps everything.
  virtual ValueMap StateValues(const std::string& type, const ValueMap& attributes) {
    (void)type;
    return attributes;
  }
  // Takes an existing object under management: returns its attributes.
  virtual Result<ResourceObject> Import(const std::string& type, const std::string& id) = 0;
};

}  // namespace plinth::runtime
