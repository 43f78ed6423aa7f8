#include "runtime/controller/alert_rules.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "compiler/syntax/parse.h"
#include "runtime/controller/flapping.h"

namespace plinth::controller {
namespace {

metrics::MatchOp OpOf(rules::MetricMatcher::Op op) {
  switch (op) {
    case rules::MetricMatcher::Op::Equal: return metrics::MatchOp::Equal;
    case rules::MetricMatcher::Op::NotEqual: return metrics::MatchOp::NotEqual;
    case rules::MetricMatcher::Op::Regex: return metrics::MatchOp::Regex;
    case rules::MetricMatcher::Op::NotRegex: return metrics::MatchOp::NotRegex;
  }
  return metrics::MatchOp::Equal;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string Quoted(const std::string& s) {
  return nlohmann::json(s).dump();
}

// The alerts' conditions and their metric queries, compiled.
struct Compiled {
  std::vector<rules::MetricQuery> queries;
  std::unique_ptr<rules::ConditionSet> set;
};

Compiled CompileConditions(const std::vector<AlertInstance>& alerts, Diagnostics& diags, std::string* error,
                           rules::Backend backend) {
  Compiled c;
  for (const AlertInstance& a : alerts) {
    if (a.when) rules::CollectMetricQueries(*a.when, c.queries);
  }
  std::vector<rules::Series> series;
  for (const rules::MetricQuery& q : c.queries) series.push_back({q.series, rules::ScalarType::Number});
  std::vector<rules::ConditionSource> sources;
  for (const AlertInstance& a : alerts) sources.push_back({a.name, a.when});
  rules::RuleSetOptions options;
  options.backend = backend;
  c.set = rules::ConditionSet::Compile(series, sources, diags, error, options);
  return c;
}

}  // namespace

std::string RenderAlertTemplate(const std::string& text, double value, const Labels& labels) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t open = text.find("{{", i);
    if (open == std::string::npos) break;
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    std::string inner = text.substr(open + 2, close - open - 2);
    size_t b = inner.find_first_not_of(" \t"), e = inner.find_last_not_of(" \t");
    inner = b == std::string::npos ? "" : inner.substr(b, e - b + 1);
    out += text.substr(i, open - i);
    if (inner == "$value") {
      out += FormatValue(value);
    } else if (inner.rfind("$labels.", 0) == 0) {
      auto it = labels.find(inner.substr(8));
      if (it != labels.end()) out += it->second;
    } else {
      out += text.substr(open, close + 2 - open);  // not ours: kept as written
    }
    i = close + 2;
  }
  return out + text.substr(i);
}

std::optional<metrics::Selector> QuerySelector(const rules::MetricQuery& q, std::string* why) {
  std::vector<metrics::LabelMatcher> matchers;
  for (const rules::MetricMatcher& m : q.matchers) matchers.push_back({m.name, OpOf(m.op), m.value});
  return metrics::Selector::Make(q.metric, std::move(matchers), why);
}

double QueryValue(const rules::MetricQuery& q, const metrics::Selector& s, const metrics::Window& window,
                  int64_t now_ms) {
  using Fn = rules::MetricQuery::Fn;
  switch (q.fn) {
    case Fn::Latest: return metrics::Sum(window.Latest(s, now_ms));
    case Fn::Rate: return metrics::Sum(window.Rate(s, q.range_ms, now_ms));
    case Fn::Increase: return metrics::Sum(window.Increase(s, q.range_ms, now_ms));
    case Fn::AvgOverTime: return metrics::Sum(window.AvgOverTime(s, q.range_ms, now_ms));
    case Fn::MaxOverTime: return metrics::Sum(window.MaxOverTime(s, q.range_ms, now_ms));
    case Fn::HistogramQuantile: {
      double best = NAN;
      for (const metrics::SeriesValue& v : window.HistogramQuantile(q.quantile, s, q.range_ms, now_ms)) {
        if (std::isnan(v.value)) continue;
        if (std::isnan(best) || v.value > best) best = v.value;
      }
      return best;
    }
  }
  return NAN;
}

std::vector<ScaleValueRule> ScaleValueRules(const std::vector<ScaleRuleInstance>& rules, Diagnostics& diags) {
  std::vector<ScaleValueRule> out;
  for (const ScaleRuleInstance& r : rules) {
    if (!r.value) continue;
    const ast::Call* call = r.value->kind == ast::ExprKind::Call ? static_cast<const ast::Call*>(r.value) : nullptr;
    if (!call || !rules::IsMetricFunction(call->name)) {
      diags.Error(DiagCode::InvalidOperation, r.value->range,
                  r.name + ": 'value' must be one metric query")
          .help = "write: value = metric(\"queue_depth\", { service = \"model\" }), or rate(...), increase(...), "
                  "avg_over_time(...), max_over_time(...) or histogram_quantile(...)";
      continue;
    }
    std::optional<rules::MetricQuery> q = rules::ParseMetricQuery(*call, diags);
    if (!q) continue;
    std::string why;
    std::optional<metrics::Selector> selector = QuerySelector(*q, &why);
    if (!selector) {
      diags.Error(DiagCode::InvalidOperation, q->range, "cannot read this metric: " + why);
      continue;
    }
    out.push_back({r.name, r.service, r.region, std::move(*q), std::move(*selector), r.average});
  }
  return out;
}

std::unique_ptr<AlertRules> AlertRules::Compile(const std::vector<AlertInstance>& alerts, Diagnostics& diags,
                                                std::string* error) {
  Compiled c = CompileConditions(alerts, diags, error, rules::Backend::Jit);
  if (!c.set) return nullptr;
  std::unique_ptr<AlertRules> r(new AlertRules());
  for (const rules::MetricQuery& q : c.queries) {
    Query query;
    query.query = q;
    std::string why;
    query.selector = QuerySelector(q, &why);
    if (!query.selector) diags.Error(DiagCode::InvalidOperation, q.range, "cannot read this metric: " + why);
    query.series = *c.set->SeriesIndex(q.series);
    r->queries_.push_back(std::move(query));
  }
  for (size_t i = 0; i < alerts.size(); ++i) {
    const AlertInstance& a = alerts[i];
    Rule rule;
    rule.alertname = a.alertname;
    rule.name = a.name;
    AlertRule spec;
    spec.name = a.alertname;
    spec.for_ms = a.for_ms;
    spec.keep_firing_for_ms = a.keep_firing_for_ms;
    spec.severity = a.severity;
    for (const auto& [k, v] : a.labels) spec.labels[k] = v;
    rule.annotations = Labels(a.annotations.begin(), a.annotations.end());
    rule.set = std::make_unique<AlertSet>(spec);
    std::vector<rules::MetricQuery> mine;
    if (a.when) rules::CollectMetricQueries(*a.when, mine);
    for (const rules::MetricQuery& q : mine) {
      for (size_t j = 0; j < r->queries_.size(); ++j) {
        if (r->queries_[j].query.key == q.key) rule.queries.push_back(j);
      }
    }
    std::string why;
    Range where;
    if (a.when) rule.condition = rules::ToPromQL(*a.when, &why, &where).value_or("");
    r->rules_.push_back(std::move(rule));
  }
  r->snapshot_.assign(c.set->series_count(), NAN);
  r->set_ = std::move(c.set);
  return r;
}

double AlertRules::Compute(const Query& q, const metrics::Window& window, int64_t now_ms) const {
  return q.selector ? QueryValue(q.query, *q.selector, window, now_ms) : NAN;
}

void AlertRules::Evaluate(const metrics::Window& window, int64_t now_ms) {
  for (const Query& q : queries_) snapshot_[q.series] = Compute(q, window, now_ms);
  std::vector<rules::Verdict> verdicts(set_->size());
  set_->Evaluate(snapshot_, verdicts);
  for (size_t i = 0; i < rules_.size(); ++i) {
    Rule& r = rules_[i];
    r.last = verdicts[i];
    r.value = r.queries.empty() ? NAN : snapshot_[queries_[r.queries[0]].series];
    // Undecided (no data, or an error such as a division by zero): the
    // state is kept, as the `for` window of condition.h does.
    if (r.last == rules::Verdict::True || r.last == rules::Verdict::False) {
      r.set->Evaluate(r.last == rules::Verdict::True, now_ms);
    }
  }
}

Labels AlertRules::Render(const Rule& r, const Labels& labels) const {
  Labels out;
  for (const auto& [k, v] : r.annotations) out[k] = RenderAlertTemplate(v, r.value, labels);
  return out;
}

std::vector<Alert> AlertRules::Notifiable() const {
  std::vector<Alert> out;
  for (const Rule& r : rules_) {
    for (Alert a : r.set->Notifiable()) {
      a.annotations = Render(r, a.labels);
      out.push_back(std::move(a));
    }
  }
  return out;
}

size_t AlertRules::firing() const {
  size_t n = 0;
  for (const Rule& r : rules_) {
    for (const Alert& a : r.set->Alerts()) n += a.phase == AlertPhase::Firing;
  }
  return n;
}

nlohmann::json AlertRules::State() const {
  nlohmann::json out = nlohmann::json::object();
  for (const Rule& r : rules_) out[r.name] = r.set->State();
  return out;
}

void AlertRules::Restore(const nlohmann::json& state) {
  if (!state.is_object()) return;
  for (Rule& r : rules_)
    if (auto it = state.find(r.name); it != state.end()) r.set->Restore(*it);
}

nlohmann::json AlertRules::Status() const {
  nlohmann::json out = nlohmann::json::array();
  for (const Rule& r : rules_) {
    nlohmann::json doc;
    doc["name"] = r.alertname;
    doc["address"] = r.name;
    if (!r.condition.empty()) doc["expr"] = r.condition;
    std::string state = "inactive";
    nlohmann::json alert;
    for (const Alert& a : r.set->Alerts()) {
      if (a.phase == AlertPhase::Resolved) continue;
      state = AlertPhaseName(a.phase);
      alert = {{"active_at_ms", a.active_at_ms}, {"fingerprint", a.fingerprint}};
      if (a.phase == AlertPhase::Firing) alert["starts_at_ms"] = a.starts_at_ms;
      alert["annotations"] = Render(r, a.labels);
    }
    const bool undecided = r.last != rules::Verdict::True && r.last != rules::Verdict::False;
    doc["state"] = state;
    if (undecided) doc["no_data"] = true;
    if (!std::isnan(r.value)) doc["value"] = r.value;
    if (!alert.is_null()) doc["alert"] = alert;
    out.push_back(std::move(doc));
  }
  return out;
}

namespace {

// One built-in alert: `condition` (generated text) parsed into `sources`
// under `origin` and owned by `out`.
void AddBuiltin(SourceManager& sources, Diagnostics& diags, BuiltinAlerts* out, const std::string& origin,
                AlertInstance a, const std::string& condition, const std::string& summary) {
  const SourceFile& file = sources.Add(origin, condition);
  ast::ExprPtr expr = ParseExpression(file, diags);
  if (!expr) return;
  a.when = expr.get();
  a.annotations = {{"summary", summary}};
  out->exprs.push_back(std::move(expr));
  out->alerts.push_back(std::move(a));
}

}  // namespace

BuiltinAlerts StorageAlerts(const CheckedConfig& config, SourceManager& sources, Diagnostics& diags) {
  BuiltinAlerts out;
  auto add = [&](const std::string& alertname, const std::string& bucket, const std::string& condition,
                 const std::string& summary) {
    AlertInstance a;
    a.alertname = alertname;
    a.name = "storage." + alertname + "[" + nlohmann::json(bucket).dump() + "]";
    a.severity = "warning";
    a.labels = {{"bucket", bucket}};
    AddBuiltin(sources, diags, &out, "<storage alerts>", std::move(a), condition, summary);
  };
  for (const ResourceInstance& r : config.resources) {
    if (r.type != "bucket") continue;
    const std::string label = "{bucket = " + nlohmann::json(r.address).dump() + "}";
    auto it = r.attributes.find("capacity");
    if (it != r.attributes.end() && it->second.kind() == Value::Kind::Size) {
      double at = 80;
      if (auto a = r.attributes.find("alert_at"); a != r.attributes.end() && a->second.kind() == Value::Kind::Percent)
        at = a->second.as_number();
      char threshold[32];
      std::snprintf(threshold, sizeof threshold, "%.6g", at / 100);
      add("BucketCapacity", r.address, "metric(\"plinth_bucket_usage_ratio\", " + label + ") >= " + threshold,
          r.address + " uses {{ $value }} of its capacity (alert at " + FormatValue(at) + "%)");
    }
    if (auto b = r.attributes.find("backup"); b != r.attributes.end() && !b->second.is_null()) {
      add("BackupFailed", r.address, "metric(\"plinth_backup_failures_in_a_row\", " + label + ") > 0",
          "{{ $value }} backups of " + r.address + " failed in a row");
      add("BackupOverdue", r.address, "metric(\"plinth_backup_overdue\", " + label + ") > 0",
          "no backup of " + r.address + " succeeded for twice its interval");
    }
  }
  return out;
}

void AddServiceAlerts(const CheckedConfig& config, SourceManager& sources, Diagnostics& diags,
                      BuiltinAlerts* out) {
  for (const ResourceInstance& r : config.resources) {
    if (r.type != "service") continue;
    const std::string service = r.name;
    auto regions = r.attributes.find("regions");
    auto replicas = r.attributes.find("replicas");
    if (regions == r.attributes.end() || regions->second.kind() != Value::Kind::List) continue;
    int slots = replicas != r.attributes.end() && replicas->second.kind() == Value::Kind::Number
                    ? static_cast<int>(replicas->second.as_number())
                    : 1;
    if (auto as = r.attributes.find("autoscale"); as != r.attributes.end() && as->second.kind() == Value::Kind::Object) {
      auto max = as->second.as_object().find("max");
      if (max != as->second.as_object().end() && max->second.kind() == Value::Kind::Number)
        slots = std::max(slots, static_cast<int>(max->second.as_number()));
    }
    slots = std::clamp(slots, 0, 1000);
    // The service's own definition of flapping (flapping { restarts, within }), else 3 in 10 minutes.
    int restarts = 3;
    int64_t within_s = 600;
    if (auto f = r.attributes.find("flapping"); f != r.attributes.end() && f->second.kind() == Value::Kind::Object) {
      const ValueMap& fm = f->second.as_object();
      if (auto n = fm.find("restarts"); n != fm.end() && n->second.kind() == Value::Kind::Number)
        restarts = std::clamp(static_cast<int>(n->second.as_number()), 1, 1000);
      if (auto w = fm.find("within"); w != fm.end() && w->second.kind() == Value::Kind::Duration)
        within_s = std::max<int64_t>(1, static_cast<int64_t>(w->second.as_number()) / 1000);
    }
    const std::string window = ShortDuration(within_s);
    const int64_t amount = within_s % 60 == 0 ? within_s / 60 : within_s;
    const std::string window_words = std::to_string(amount) + (within_s % 60 == 0 ? " minute" : " second") +
                                     (amount == 1 ? "" : "s");
    for (const Value& region : regions->second.as_list()) {
      if (region.kind() != Value::Kind::Object) continue;
      auto name = region.as_object().find("name");
      if (name == region.as_object().end() || name->second.kind() != Value::Kind::String) continue;
      for (int i = 0; i < slots; ++i) {
        const std::string replica = service + "." + name->second.as_string() + "." + std::to_string(i);
        const std::string condition = "increase(metric(\"plinth_service_replica_restarts_total\", {service = " +
                                      nlohmann::json(service).dump() + ", replica = " +
                                      nlohmann::json(replica).dump() + "}), " + window +
                                      ") >= " + std::to_string(restarts);
        AlertInstance a;
        a.alertname = "ReplicaFlapping";
        a.name = "service.ReplicaFlapping[" + nlohmann::json(replica).dump() + "]";
        a.severity = "warning";
        a.labels = {{"service", service}, {"replica", replica}};
        AddBuiltin(sources, diags, out, "<service alerts>", std::move(a), condition,
                   "replica " + replica + " was restarted {{ $value }} times in " + window_words);
      }
    }
  }
}

void AddPoolAlerts(const CheckedConfig& config, SourceManager& sources, Diagnostics& diags, BuiltinAlerts* out) {
  for (const ResourceInstance& r : config.resources) {
    if (r.type != "pool") continue;  // the local provider's (Slurm's is slurm_pool)
    auto region = r.attributes.find("region");
    if (region == r.attributes.end() || region->second.kind() != Value::Kind::Object) continue;
    auto region_name = region->second.as_object().find("name");
    if (region_name == region->second.as_object().end() || region_name->second.kind() != Value::Kind::String)
      continue;
    const std::string pool = region_name->second.as_string() + "/" + r.name;
    const std::string label = "{pool = " + nlohmann::json(pool).dump() + "}";
    auto add = [&](const std::string& alertname, const std::string& severity, const std::string& condition,
                   const std::string& summary) {
      AlertInstance a;
      a.alertname = alertname;
      a.name = r.address + "." + alertname;
      a.severity = severity;
      a.labels = {{"pool", pool}};
      AddBuiltin(sources, diags, out, "<pool alerts>", std::move(a), condition, summary);
    };
    add("NodeFailed", "warning",
        "increase(metric(\"plinth_compute_node_failures_total\", " + label + "), 10m) > 0",
        "{{ $value }} node(s) of pool " + pool +
            " failed in 10 minutes (health gate or patch; see plinth compute status); replacements are "
            "provisioned");
    auto patch = r.attributes.find("patch");
    if (patch != r.attributes.end() && patch->second.kind() == Value::Kind::Object)
      add("PatchHalted", "critical", "metric(\"plinth_compute_patch_halted\", " + label + ") > 0",
          "the patch level of pool " + pool + " is halted after failed nodes; apply another level to try again");
  }
}

void AddGitAlerts(const std::string& source, SourceManager& sources, Diagnostics& diags, BuiltinAlerts* out) {
  auto add = [&](const std::string& alertname, const std::string& severity, const std::string& condition,
                 const std::string& summary) {
    AlertInstance a;
    a.alertname = alertname;
    a.name = "git." + alertname;
    a.severity = severity;
    a.labels = {{"source", source}};
    AddBuiltin(sources, diags, out, "<git alerts>", std::move(a), condition, summary);
  };
  add("GitSyncFailing", "critical", "metric(\"plinth_git_sync_failing\") > 0",
      "the last commit of " + source +
          " was not applied (denied by a policy, invalid, its apply failed, or the fetch failed); plinth status "
          "shows the commit and why");
  add("GitPlanWaiting", "warning", "metric(\"plinth_git_plan_waiting\") > 0",
      "a plan of " + source + " waits for approval: plinth status shows its id, plinth approve ID applies it");
}

std::vector<AlertInstance> ScaleRuleConditions(const std::vector<ScaleRuleInstance>& rules) {
  std::vector<AlertInstance> out;
  for (const ScaleRuleInstance& r : rules) {
    for (const auto& [suffix, expr] : {std::pair<const char*, const ast::Expr*>{".up", r.up_when},
                                       std::pair<const char*, const ast::Expr*>{".down", r.down_when}}) {
      if (!expr) continue;
      AlertInstance a;
      a.name = r.name + suffix;
      a.alertname = r.name + suffix;
      a.when = expr;
      a.range = r.range;
      a.labels = {{"service", r.service}};
      if (!r.region.empty()) a.labels["region"] = r.region;
      out.push_back(std::move(a));
    }
  }
  return out;
}

void CheckScaleRules(const CheckedConfig& config, Diagnostics& diags) {
  if (config.scale_rules.empty()) return;
  for (const ScaleRuleInstance& r : config.scale_rules) {
    // The service in the rule's own module: "module.x.scale_rule.y" -> "module.x.service.NAME".
    const std::string prefix = r.name.substr(0, r.name.rfind("scale_rule."));
    const ResourceInstance* service = nullptr;
    std::vector<std::string> names;
    for (const ResourceInstance& res : config.resources) {
      if (res.type != "service" || res.address.rfind(prefix, 0) != 0) continue;
      names.push_back(res.name);
      if (res.address == prefix + "service." + r.service) service = &res;
    }
    if (!service) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      diags.Error(DiagCode::UndefinedReference, r.range,
                  r.name + ": no service named '" + r.service + "' in this configuration")
          .help = list.empty() ? "declare the service, or remove the rule" : "the services here: " + list;
      continue;
    }
    if (!r.region.empty()) {
      std::string regions;
      bool found = false;
      if (auto rs = service->attributes.find("regions");
          rs != service->attributes.end() && rs->second.kind() == Value::Kind::List) {
        for (const Value& region : rs->second.as_list()) {
          if (region.kind() != Value::Kind::Object) continue;
          auto name = region.as_object().find("name");
          if (name == region.as_object().end() || name->second.kind() != Value::Kind::String) continue;
          regions += (regions.empty() ? "" : ", ") + name->second.as_string();
          found = found || name->second.as_string() == r.region;
        }
      }
      if (!found)
        diags.Error(DiagCode::UndefinedReference, r.range,
                    r.name + ": service '" + r.service + "' does not run in region '" + r.region + "'")
            .help = regions.empty() ? "drop region to vote in every region" : "its regions: " + regions;
    }
    auto as = service->attributes.find("autoscale");
    if (as == service->attributes.end() || as->second.is_null()) {
      diags.Error(DiagCode::InvalidOperation, r.range,
                  r.name + ": service '" + r.service + "' has no autoscale block, so nothing bounds the rule")
          .help = "add autoscale { min = 1, max = 4 } to service." + r.service +
                  " (targets are optional with scale rules)";
    }
  }
  CheckAlertRules(ScaleRuleConditions(config.scale_rules), diags);
  (void)ScaleValueRules(config.scale_rules, diags);
}

void CheckAlertRules(const std::vector<AlertInstance>& alerts, Diagnostics& diags) {
  if (alerts.empty()) return;
  std::string error;
  Compiled c = CompileConditions(alerts, diags, &error, rules::Backend::Interpreter);
  if (!c.set && !error.empty()) diags.Error(DiagCode::InvalidOperation, alerts[0].range, error);
  for (const rules::MetricQuery& q : c.queries) {
    std::string why;
    if (!QuerySelector(q, &why)) diags.Error(DiagCode::InvalidOperation, q.range, "cannot read this metric: " + why);
  }
}

std::string PrometheusRuleFile(const std::vector<AlertInstance>& alerts, const std::string& group,
                               int64_t interval_ms, Diagnostics& diags) {
  std::string out = "# Written by plinth alerts export: the configuration's alert blocks as Prometheus rules.\n";
  out += "groups:\n  - name: " + Quoted(group) + "\n";
  if (interval_ms > 0) out += "    interval: " + rules::PromDuration(interval_ms) + "\n";
  out += "    rules:\n";
  size_t written = 0;
  for (const AlertInstance& a : alerts) {
    std::string why;
    Range where;
    std::optional<std::string> expr = a.when ? rules::ToPromQL(*a.when, &why, &where) : std::nullopt;
    if (!expr) {
      diags.Error(DiagCode::InvalidOperation, a.when ? where : a.range,
                  "alert '" + a.alertname + "' cannot be exported: " + why)
          .help = "Prometheus rules read metric queries, numbers, comparisons, arithmetic, && and ||";
      continue;
    }
    out += "      - alert: " + a.alertname + "\n";
    out += "        expr: " + Quoted(*expr) + "\n";
    if (a.for_ms > 0) out += "        for: " + rules::PromDuration(a.for_ms) + "\n";
    if (a.keep_firing_for_ms > 0) out += "        keep_firing_for: " + rules::PromDuration(a.keep_firing_for_ms) + "\n";
    std::map<std::string, std::string> labels = a.labels;
    if (!a.severity.empty()) labels["severity"] = a.severity;
    if (!labels.empty()) {
      out += "        labels:\n";
      for (const auto& [k, v] : labels) out += "          " + k + ": " + Quoted(v) + "\n";
    }
    if (!a.annotations.empty()) {
      out += "        annotations:\n";
      for (const auto& [k, v] : a.annotations) out += "          " + k + ": " + Quoted(v) + "\n";
    }
    ++written;
  }
  if (written == 0) out += "      []\n";
  return out;
}

}  // namespace plinth::controller
