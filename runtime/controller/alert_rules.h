// Alert rules on the controller (docs/automation.md, "Alert rules"): the
// checked configuration's `alert` blocks compiled by the rule compiler into
// one ConditionSet, evaluated against the controller's metrics window.
//
// Each alert's `when` reads metric queries (compiler/rules/metric_query.h);
// every distinct query is one series of the set, computed from the window
// before each evaluation (the sum over matching series; the maximum over
// groups for histogram_quantile). A query with nothing to read is "no data"
// (NaN), never 0: an alert whose condition cannot be decided keeps its state
// (a pending alert stays pending, a firing one keeps firing) and its status
// says "no data". Decided conditions drive an AlertSet per alert (alerts.h:
// pending -> firing -> resolved, `for`, `keep_firing_for`).
//
// Annotations are templates rendered at each evaluation: `{{ $value }}` is
// the value of the condition's first metric query, `{{ $labels.NAME }}` a
// label of the alert (its labels, alertname, severity). The same text works
// in an exported Prometheus rule file.
//
// Thread safety: one owner thread (the controller's alert task).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/check/checker.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/rules/condition.h"
#include "compiler/rules/metric_query.h"
#include "runtime/controller/alerts.h"
#include "runtime/metrics/window.h"

namespace plinth::controller {

class AlertRules {
 public:
  // Type errors in conditions and label matchers that do not compile go to
  // `diags` with their location; the alerts that have them are left out
  // (the rest still run). Null only when nothing could be compiled at all
  // and `error` says why (not a user error).
  static std::unique_ptr<AlertRules> Compile(const std::vector<AlertInstance>& alerts, Diagnostics& diags,
                                             std::string* error);

  // One evaluation at `now_ms` (wall clock): computes the series from
  // `window`, evaluates every condition and updates the alerts' states.
  void Evaluate(const metrics::Window& window, int64_t now_ms);

  // Firing and resolved alerts with rendered annotations: what the
  // notifier is told (alerts.h, AlertSet::Notifiable).
  std::vector<Alert> Notifiable() const;
  // Every alert's state: name, state (inactive, pending, firing, no data),
  // value, since, condition text.
  nlohmann::json Status() const;
  // Every alert's instances by its name (AlertSet::State), and back: what a
  // restarted controller, or one that reloads its rules, carries over.
  // Alerts of `state` that are no longer rules are dropped.
  nlohmann::json State() const;
  void Restore(const nlohmann::json& state);
  size_t size() const { return rules_.size(); }
  size_t firing() const;
  bool jitted() const { return set_ && set_->jitted(); }

 private:
  struct Rule {
    std::string alertname;
    std::string name;  // address: alert.X
    std::unique_ptr<AlertSet> set;
    Labels annotations;                 // templates
    std::vector<size_t> queries;        // indexes into queries_
    rules::Verdict last = rules::Verdict::Unknown;
    double value = NAN;                 // the first query's value at the last evaluation
    std::string condition;              // source text
  };
  struct Query {
    rules::MetricQuery query;
    std::optional<metrics::Selector> selector;
    size_t series = 0;  // snapshot index
  };
  double Compute(const Query& q, const metrics::Window& window, int64_t now_ms) const;
  Labels Render(const Rule& r, const Labels& labels) const;

  std::unique_ptr<rules::ConditionSet> set_;
  std::vector<Rule> rules_;
  std::vector<Query> queries_;
  std::vector<double> snapshot_;
};

// The storage alerts (docs/storage.md, "Capacity and alerts") as alert
// rules over the metrics each storage sweep writes
// (.plinth/<ws>/metrics/storage.prom), one set per bucket of `config`:
//   BucketCapacity  plinth_bucket_usage_ratio >= alert_at  (buckets with a capacity)
//   BackupFailed    plinth_backup_failures_in_a_row > 0    (buckets with backups)
//   BackupOverdue   plinth_backup_overdue > 0               (buckets with backups)
// each with labels bucket = the address and severity = "warning". The
// conditions are parsed from generated text into `sources` ("<storage
// alerts>") and owned by the result, which must outlive the alerts.
struct BuiltinAlerts {
  std::vector<ast::ExprPtr> exprs;
  std::vector<AlertInstance> alerts;
};
BuiltinAlerts StorageAlerts(const CheckedConfig& config, SourceManager& sources, Diagnostics& diags);

// Self-healing's alert for services (docs/automation.md, "Built-in
// alerts"): one ReplicaFlapping per replica slot of each service of
// `config` (regions x replicas, or x autoscale.max), firing while
// increase(plinth_service_replica_restarts_total{service, replica}[10m])
// >= 3 — the controller restarted it three times in ten minutes — with
// labels service, replica and severity = "warning". Appended to `out`.
void AddServiceAlerts(const CheckedConfig& config, SourceManager& sources, Diagnostics& diags,
                      BuiltinAlerts* out);

// Self-healing's alerts for compute pools (docs/automation.md, "Built-in
// alerts"), over the compute task's metrics (runtime/compute/pool_metrics.h),
// per pool of `config` with labels pool = "<region>/<name>" and severity:
//   NodeFailed   increase(plinth_compute_node_failures_total{pool}[10m]) > 0  (warning)
//                a node failed its health gate (at start, after a patch, a
//                periodic check) or its patch; a replacement was provisioned
//   PatchHalted  plinth_compute_patch_halted{pool} > 0  (critical; pools with a patch block)
// Appended to `out`.
void AddPoolAlerts(const CheckedConfig& config, SourceManager& sources, Diagnostics& diags, BuiltinAlerts* out);

// The git sync's alerts (docs/gitops.md, "Notifications"), for a controller
// syncing from `source` ("REPO@BRANCH", password redacted), over the sync
// task's metrics, with label source and:
//   GitSyncFailing   plinth_git_sync_failing > 0  (critical) the branch's
//                    last commit was not applied: denied by a policy, does
//                    not check, its apply failed, or the fetch failed
//   GitPlanWaiting   plinth_git_plan_waiting > 0  (warning) a plan waits for
//                    plinth approve
// Appended to `out`.
void AddGitAlerts(const std::string& source, SourceManager& sources, Diagnostics& diags, BuiltinAlerts* out);

// Scale rules (docs/automation.md, "Scale rules") as conditions the alert
// machinery evaluates: "<rule>.up" for up_when and "<rule>.down" for
// down_when, each firing at once (no pending_for) while true. The AST
// pointers stay the config's.
std::vector<AlertInstance> ScaleRuleConditions(const std::vector<ScaleRuleInstance>& rules);

// A scale rule's `value` (docs/automation.md, "Scale rules"): one metric
// query whose value the service's autoscaler keeps at `average` per replica
// (replicas = ceil(value / average), Kubernetes' AverageValue of an external
// metric), evaluated by the alert task with the alerts.
struct ScaleValueRule {
  std::string rule, service, region;  // as ScaleRuleInstance
  rules::MetricQuery query;
  metrics::Selector selector;
  double average = 0;
};
// The value rules of `rules`; a `value` that is not one metric query that
// parses is a located error in `diags` (and left out).
std::vector<ScaleValueRule> ScaleValueRules(const std::vector<ScaleRuleInstance>& rules, Diagnostics& diags);

// What one metric query reads from `window` at `now_ms`, as conditions read
// it: the sum over the matching series (the maximum over the groups for
// histogram_quantile), NaN when nothing matches ("no data", never 0).
std::optional<metrics::Selector> QuerySelector(const rules::MetricQuery& q, std::string* why);
double QueryValue(const rules::MetricQuery& q, const metrics::Selector& selector, const metrics::Window& window,
                  int64_t now_ms);

// Scale rules' problems (what `plinth validate` reports, and the controller
// refuses): a service that is not one of the configuration's services in
// the rule's module, or one without an autoscale block (the rule moves
// replicas within its min and max, through its autoscaler); then the
// conditions as CheckAlertRules checks them.
void CheckScaleRules(const CheckedConfig& config, Diagnostics& diags);

// Type-checks the alerts' conditions (what `plinth validate` does).
void CheckAlertRules(const std::vector<AlertInstance>& alerts, Diagnostics& diags);

// `{{ $value }}` and `{{ $labels.NAME }}` (spaces optional) replaced; other
// text kept as written.
std::string RenderAlertTemplate(const std::string& text, double value, const Labels& labels);

// The alerts as a Prometheus rule file (YAML, one group named `group`):
// `expr` is the condition in PromQL (metric_query.h, ToPromQL), `for`,
// `keep_firing_for`, labels (severity included) and annotations. A
// condition PromQL cannot say is a located error in `diags` and the alert is
// left out of the file.
std::string PrometheusRuleFile(const std::vector<AlertInstance>& alerts, const std::string& group,
                               int64_t interval_ms, Diagnostics& diags);

}  // namespace plinth::controller
