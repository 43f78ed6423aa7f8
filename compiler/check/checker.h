// The checker: a configuration directory -> a checked, expanded configuration.
//
// Input: a directory of *.plinth files (the root module), the provider
// schemas, and optional values for root variables. Output: every resource
// instance after count/for_each expansion with its evaluated attributes
// (unknown where only apply can tell), the root outputs and variables, and all
// diagnostics found in one run.
//
// Invariants:
//  * Nothing here touches the outside world except reading configuration
//    files (and files read by file functions).
//  * Unknown values are never guessed: count and for_each must be known;
//    computed attributes are unknown.
//  * Every module directory is parsed and analysed once, however many times it
//    is instantiated; graph passes are linear in the number of declarations.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/check/variable_inputs.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/schema/schema.h"
#include "compiler/syntax/ast.h"
#include "compiler/types/types.h"

namespace plinth {

struct ResourceInstance;
class RootScope;  // compiler/check/console.h
class ParseCache;  // compiler/check/loader.h
struct ImportStatement;

// Called for every resource instance in dependency order (every resource it
// refers to has been seen before it). The returned attributes replace the
// configured ones as the value other expressions see: a planner answers with
// planned values, known where the prior state or the provider can tell.
class ResourceHook {
 public:
  virtual ~ResourceHook() = default;
  virtual ValueMap Planned(const ResourceInstance& instance) = 0;
  // A `provider "NAME" { ... }` block's evaluated configuration, before any
  // resource that may use the provider is planned.
  virtual void ProviderConfigured(const std::string& name, const ValueMap& config) {}
  // An `import` block of the root module whose id evaluated to a known
  // string, before its target resource (or the module call holding it) is
  // planned: the planner reads the object here, so Planned() sees it as the
  // target's prior state.
  virtual void Import(const ImportStatement& statement) {}
};

// A `provider "NAME" { ... }` block of the root module that names a `source`,
// or a provider the registry does not know: a provider in another process.
struct ProviderRequest {
  std::string name;
  std::string source;  // the literal `source`; empty when the block has none
  Range name_range;    // the block's label
  Range source_range;  // the source's value; empty when absent
};

// Loads out-of-process providers for the checker (the runtime implements it:
// runtime/providers/external.h); the compiler never starts a process itself.
class ProviderResolver {
 public:
  virtual ~ProviderResolver() = default;
  // Called at most once per Check, before any block is checked. Reports what
  // cannot be loaded at the requests' ranges and returns the registry the rest
  // of the check uses: `base` plus the providers loaded (each provider's
  // configuration schema takes an optional `source` string). The returned
  // registry must outlive the CheckedConfig.
  virtual const SchemaRegistry& Resolve(const SchemaRegistry& base, const std::vector<ProviderRequest>& requests,
                                        Diagnostics& diags) = 0;
};

struct CheckOptions {
  // Where root variable values come from (compiler/check/variable_inputs.h):
  // the environment, variables files and --var options.
  VariableSources variable_sources;
  // The provider schemas (runtime::BuiltinSchemas() for the built-in
  // providers). Null: none, so every resource type is unknown.
  const SchemaRegistry* schemas = nullptr;
  // Loads providers named by `source` (null: such blocks are reported).
  ProviderResolver* provider_resolver = nullptr;
  unsigned threads = 0;                     // parser threads; 0: one per core
  ResourceHook* resource_hook = nullptr;    // null: references see the configuration
  // Checking for an apply: timestamp() and uuid() give values, not unknowns.
  bool apply_time = false;
  // Files under this directory are named relative to it in diagnostics (a
  // git tree, docs/gitops.md); empty: relative to the working directory.
  std::string display_root;
  // Keep the root module's scope for evaluating more expressions after the
  // check (CheckedConfig::root_scope; `plinth console`).
  bool keep_root_scope = false;
  // Texts that replace files on disk, by absolute path (the language
  // server's unsaved buffers; compiler/check/loader.h). Must outlive Check.
  const std::map<std::string, std::string>* overlay = nullptr;
  // Parsed files kept between checks (compiler/check/loader.h); the
  // SourceManager given to Check must then be parse_cache->sources().
  ParseCache* parse_cache = nullptr;
};

struct ResourceInstance {
  std::string address;  // module.net["eu"].bucket.datasets[0]
  std::string module;   // module.net["eu"] ("" for the root module)
  std::string type;
  std::string name;
  Value key;  // null, a count index or a for_each key
  ValueMap attributes;
  std::vector<std::string> depends_on;  // addresses of resources and module calls (same module instance)
  bool prevent_destroy = false;
  bool create_before_destroy = false;
  std::vector<std::string> ignore_changes;
  // lifecycle.correct_drift: the controller's drift task may apply the plan
  // to this instance when it changed outside Plinth (docs/controller.md, "Drift").
  bool correct_drift = false;
  // Optional+computed top-level attributes the configuration leaves out (the
  // provider picks their value). They read as unknown in `attributes`, like
  // an attribute set to a value only apply can know; this tells them apart.
  std::vector<std::string> unset_computed;
  Range range;
  // The module blocks that made this instance, outermost first (empty in the
  // root module): where a change of a module argument is written.
  std::vector<Range> call_sites;
};

struct OutputValue {
  std::string name;
  Value value;
  bool sensitive = false;
  std::string description;
  Range range;
};

// A local value of the root module.
struct LocalValue {
  std::string name;
  Value value;
  Range range;
};

struct VariableValue {
  std::string name;
  Type type;
  Value value;
  bool sensitive = false;
  std::string description;
  Range range;
};

// A `policy` block of one module instance (docs/policy.md). The expression
// pointers stay valid while CheckedConfig::syntax lives.
struct PolicyInstance {
  std::string name;   // policy.encrypted or module.guard.policy.encrypted
  std::string label;  // encrypted
  std::string resource_type;  // for_all
  // Its schema, in the registry the check used (which outlives the config);
  // null when the type is unknown (the checker reported it).
  const ResourceSchema* schema = nullptr;
  const ast::Expr* where = nullptr;    // optional filter
  const ast::Expr* require = nullptr;  // true when compliant
  // Optional (docs/policy.md, "Rules over groups of instances"): a string
  // per instance; when set, `require` is evaluated once per group of
  // instances with the same key, reading `group` and `group_key`.
  const ast::Expr* group_by = nullptr;
  const ast::Expr* message = nullptr;  // optional; may read self, var and local
  bool deny = true;                    // severity: deny, else warn
  ValueMap vars, locals;               // the module instance's values, for var.X and local.X
  std::string base_dir;
  Range range;  // the policy's label
};

// An `alert` block (docs/automation.md, "Alert rules"): a condition over
// what the controller scrapes, evaluated by the controller every interval.
// The condition is checked by the rule compiler (runtime/controller/
// alert_rules.h); the other attributes are evaluated here.
struct AlertInstance {
  std::string name;       // alert.ModelSlow or module.x.alert.ModelSlow
  std::string alertname;  // the label: ModelSlow (the alertname label)
  const ast::Expr* when = nullptr;  // valid while CheckedConfig::syntax lives
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::string severity;
  std::map<std::string, std::string> labels, annotations;
  Range range;  // the label
};

// A `scale_rule "NAME" { service, up_when, down_when }` block
// (docs/automation.md, "Scale rules"): conditions over scraped metrics that
// move an autoscaled service's replicas up or down a step, through its
// autoscaler. The conditions point into CheckedConfig::syntax.
struct ScaleRuleInstance {
  std::string name;     // scale_rule.latency or module.x.scale_rule.latency
  std::string service;  // the service's name in the same module
  std::string region;   // only this region of the service votes; empty: every region
  const ast::Expr* up_when = nullptr;    // null when not set
  const ast::Expr* down_when = nullptr;  // null when not set
  // Or a number to keep per replica (HPA's AverageValue of an external
  // metric): one metric query, and the value each replica should carry.
  const ast::Expr* value = nullptr;  // null when not set
  double average = 0;
  Range range;                       // the label
};

// A `receiver "NAME" { ... }` block (root module): a webhook that
// notifications go to. The secret and token are never printed.
struct ReceiverConfig {
  std::string name;
  std::string url;
  std::string hmac_secret;
  std::string bearer_token;
  bool send_resolved = true;
  int64_t max_alerts = 0;
  int64_t timeout_ms = 10'000;
  Range range;
};

// The `notification { ... }` block (root module) and its `route` blocks:
// Alertmanager's routing tree, one level deep. Times of 0 inherit the
// root's (the root's default to Alertmanager's 30s / 5m / 4h); a
// group_wait of -1 is unset (0 is a setting: flush a new group at once).
struct NotificationRouteConfig {
  std::string receiver;
  std::vector<std::string> matchers;  // name="value", name=~"re", ... (child routes)
  std::vector<std::string> group_by;
  bool group_by_set = false;
  int64_t group_wait_ms = -1, group_interval_ms = 0, repeat_interval_ms = 0;
  Range range;
};
struct NotificationConfig {
  bool declared = false;
  NotificationRouteConfig root;
  std::vector<NotificationRouteConfig> routes;
  std::string alertmanager_url;       // also send to this Alertmanager (empty: no)
  int64_t evaluation_interval_ms = 15'000;
  Range range;
};

// A `policy_test` block: a resource as the policy would see it, and the
// expected verdict (pass, fail, undecided, skip: `where` excludes it).
struct PolicyTestCase {
  std::string name;
  std::string policy;  // the policy's label
  Value resource;      // object
  ValueList peers;     // other planned instances of the type (objects), for group policies
  ValueMap vars;       // variable values for this case, over the module's
  std::vector<std::string> unknown;  // attributes to treat as known only after apply
  std::string expect;
  Range range;
};

// A `moved { from = ADDR  to = ADDR }` block (docs/language.md, "Moving and
// removing resources"), once per instance of the module that declares it.
// Addresses are as plans spell them and absolute: the module instance's
// prefix is part of them (`module.net["eu"].marker.a[0]`). Each names a
// resource (`marker.a`: every instance), a resource instance (`marker.a[0]`),
// a module call (`module.net`: every instance, everything beneath) or a
// module instance (`module.net["eu"]`); the checker has made sure that both
// ends are of one kind (resources of one type, or modules) and differ.
struct MoveStatement {
  std::string from, to;
  std::string module;  // the module instance that declares it ("" for the root)
  Range range;         // the `moved` keyword
};

// A `removed { from = ADDR  lifecycle { destroy = BOOL } }` block: the
// objects at `from` (a resource or a module call, never an instance) leave
// the state; destroy = false forgets them without deleting them.
struct RemovedStatement {
  std::string from;    // absolute, as for MoveStatement
  std::string module;  // the module instance that declares it
  bool destroy = true;
  Range range;         // the `removed` keyword
};

// An `import` block (root module only; docs/language.md, "Importing existing
// objects"): take the object `id` names under management as `to`.
struct ImportStatement {
  std::string to;    // the instance address as plans spell it: marker.a, bucket.b["k"], module.net.marker.a
  std::string type;  // the resource type in `to`
  std::string id;    // the evaluated id; empty when it is not known (reported when planning)
  Range range;       // the `import` keyword
  Range to_range;    // the `to` reference
  Range id_range;    // the `id` expression
};

struct CheckedConfig {
  std::vector<ResourceInstance> resources;
  std::vector<MoveStatement> moves;
  std::vector<RemovedStatement> removals;
  std::vector<PolicyInstance> policies;
  std::vector<PolicyTestCase> policy_tests;
  std::vector<AlertInstance> alerts;
  std::vector<ScaleRuleInstance> scale_rules;
  std::vector<ReceiverConfig> receivers;  // root module
  NotificationConfig notification;       // root module
  // Attributes of alert, receiver and notification blocks whose value is
  // not known yet (a variable without a value at validate): "receiver.oncall.hmac_secret".
  // The controller refuses to load such a configuration.
  std::vector<std::string> alerting_unknown;
  // Keeps the syntax trees alive when policies or alerts point into them.
  std::shared_ptr<const void> syntax;
  std::vector<OutputValue> outputs;      // root module
  std::map<std::string, ValueMap> providers;  // provider blocks (root module), by provider name
  std::vector<VariableValue> variables;  // root module
  std::vector<LocalValue> locals;        // root module, in declaration order
  // With CheckOptions::keep_root_scope: evaluates expressions as a local
  // value of the root module would be (compiler/check/console.h). The
  // SourceManager, Diagnostics and CheckOptions given to Check must outlive it.
  std::shared_ptr<RootScope> root_scope;
  std::vector<ImportStatement> imports;  // import blocks (root module), in declaration order
  size_t files = 0;
  size_t modules = 0;            // distinct module directories
  size_t module_instances = 0;   // including the root
};

CheckedConfig Check(const std::string& dir, SourceManager& sources, Diagnostics& diags,
                    const CheckOptions& options = {});

struct CheckMemo;  // compiler/check/checker.cpp

// Checks of one directory, repeated as its files are edited (the language
// server's, lsp/server.cpp). Gives what Check gives, with less work where
// little changed: a file whose text is unchanged is not parsed again
// (ParseCache), and a resource block or local value of a module instance
// whose syntax tree is the last check's, and whose references name the same
// declarations with values Identical to the last check's, keeps its value,
// diagnostics and resource instances instead of being evaluated again. What
// reads files (file functions) or sits in a damaged block is always evaluated.
// Without a memo (a resource_hook, apply_time or keep_root_scope in the
// options) each check is a whole one. Not thread-safe: one check at a time.
class CheckSession {
 public:
  CheckSession();
  ~CheckSession();
  // The parse cache and the SourceManager every diagnostic points into.
  ParseCache& parse_cache() { return *cache_; }
  // options.parse_cache is set to parse_cache(). The previous result's
  // resource instances are moved into this one's when no one else holds it.
  std::shared_ptr<const CheckedConfig> Check(const std::string& dir, Diagnostics& diags, CheckOptions options);
  struct Stats {
    size_t evaluated = 0;  // declaration instances evaluated by the last check
    size_t reused = 0;     // ... and kept from the one before
  };
  Stats last_stats() const { return last_stats_; }
  // false: every check is a whole one (only parsed files are kept).
  void set_incremental(bool on) { incremental_ = on; }
  // What the last Check no longer needs (its checker's analyses, the memo
  // before it), to be freed on another thread, off the next edit's critical
  // path (it refers to nothing the session keeps); otherwise the next Check
  // frees it.
  std::vector<std::shared_ptr<void>> TakeRetired() { return std::move(retired_); }

 private:
  std::unique_ptr<ParseCache> cache_;
  std::unique_ptr<CheckMemo> last_;
  std::vector<std::shared_ptr<void>> retired_;
  Stats last_stats_;
  bool incremental_ = true;
};

}  // namespace plinth
