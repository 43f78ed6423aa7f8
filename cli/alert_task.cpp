#include "cli/alert_task.h"

#include "cli/git_source.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "runtime/controller/alertmanager.h"
#include "runtime/controller/region_faults.h"
#include "runtime/controller/services.h"
#include "runtime/io/durable.h"
#include "runtime/plan/plan.h"
#include "runtime/providers/external.h"
#include "runtime/metrics/parse.h"
#include "runtime/storage/keys.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

AlertWatch::AlertWatch(Options options, controller::Clock& clock, fs::path controller_dir)
    : options_(std::move(options)), clock_(clock), controller_dir_(std::move(controller_dir)) {}

AlertWatch::~AlertWatch() = default;

controller::PeriodicTask AlertWatch::Task(std::chrono::milliseconds every) {
  controller::PeriodicTask t;
  t.name = "alerts";
  t.every = every;
  t.run = [this](int64_t term) { return Pass(term); };
  t.status_key = "alerts";
  t.status = [this] { return Status(); };
  t.metrics = [this](metrics::Exposition& m) { Metrics(m); };
  return t;
}

// Names, sizes and modification times of the configuration's files: a
// change of any reloads the rules.
std::string AlertWatch::FilesDigest() const {
  std::string digest;
  std::error_code ec;
  fs::recursive_directory_iterator it(ConfigDirOf(options_), fs::directory_options::skip_permission_denied, ec), end;
  size_t seen = 0;
  for (; !ec && it != end && seen < 10'000; it.increment(ec), ++seen) {
    const fs::path& p = it->path();
    if (it->is_directory(ec) && p.filename().string().rfind('.', 0) == 0) {
      it.disable_recursion_pending();  // .plinth (state), .git
      continue;
    }
    const std::string ext = p.extension().string();
    if (ext != ".plinth" && ext != ".plinthvars" && ext != ".json") continue;
    auto mtime = fs::last_write_time(p, ec);
    digest += p.string() + "\t" + std::to_string(it->file_size(ec)) + "\t" +
              std::to_string(mtime.time_since_epoch().count()) + "\n";
  }
  return digest;
}

bool AlertWatch::Reload(std::string* error) {
  auto sources = std::make_unique<SourceManager>();
  Diagnostics diags;
  runtime::ExternalProviders external(options_.dir);  // the workspace's .plinth/providers
  CheckOptions co = ConfigCheckOptions(VariableSourcesOf(options_), external);
  auto config = std::make_unique<CheckedConfig>(Check(ConfigDirOf(options_), *sources, diags, co));
  if (!diags.has_errors()) controller::CheckAlertRules(config->alerts, diags);
  if (!diags.has_errors()) controller::CheckScaleRules(*config, diags);
  if (diags.has_errors()) {
    *error = "the configuration has errors: " + FirstError(diags, *sources);
    return false;
  }
  if (!config->alerting_unknown.empty()) {
    *error = config->alerting_unknown.front() +
             " has no value (a variable without a value: set it with PLINTH_VAR_NAME or a .plinthvars file)";
    return false;
  }
  // The configuration's alerts, then the storage alerts of its buckets, the
  // flapping alerts of its services' replicas and its pools' node alerts.
  controller::BuiltinAlerts builtin = controller::StorageAlerts(*config, *sources, diags);
  controller::AddServiceAlerts(*config, *sources, diags, &builtin);
  controller::AddPoolAlerts(*config, *sources, diags, &builtin);
  if (!git_source_.empty()) controller::AddGitAlerts(git_source_, *sources, diags, &builtin);
  std::vector<AlertInstance> all = config->alerts;
  all.insert(all.end(), builtin.alerts.begin(), builtin.alerts.end());
  std::unique_ptr<controller::AlertRules> rules;
  if (!all.empty()) {
    std::string why;
    rules = controller::AlertRules::Compile(all, diags, &why);
    if (!rules || diags.has_errors()) {
      *error = rules ? "the configuration has errors: " + FirstError(diags, *sources) : why;
      return false;
    }
  }
  // Scale rules: conditions of their own set, never notified.
  std::unique_ptr<controller::AlertRules> scale_rules;
  std::vector<std::string> scale_services, scale_regions;
  std::vector<controller::ScaleValueRule> scale_values = controller::ScaleValueRules(config->scale_rules, diags);
  if (diags.has_errors()) {
    *error = "the configuration has errors: " + FirstError(diags, *sources);
    return false;
  }
  if (std::vector<AlertInstance> conditions = controller::ScaleRuleConditions(config->scale_rules);
      !conditions.empty()) {
    std::string why;
    scale_rules = controller::AlertRules::Compile(conditions, diags, &why);
    if (!scale_rules || diags.has_errors()) {
      *error = scale_rules ? "the configuration has errors: " + FirstError(diags, *sources) : why;
      return false;
    }
    for (const AlertInstance& c : conditions) {
      scale_services.push_back(c.labels.at("service"));
      auto region = c.labels.find("region");
      scale_regions.push_back(region == c.labels.end() ? "" : region->second);
    }
  }
  // Receivers and routes. Without a notification block, alerts go to the
  // first receiver (when there is one) with Alertmanager's defaults.
  controller::NotifierOptions no;
  no.database = controller_dir_ / "alerts.db";
  no.external_url = "plinth://" + options_.workspace;
  for (const ReceiverConfig& r : config->receivers) {
    controller::Receiver rc;
    rc.name = r.name;
    rc.url = r.url;
    rc.hmac_secret = r.hmac_secret;
    rc.bearer_token = r.bearer_token;
    rc.send_resolved = r.send_resolved;
    rc.max_alerts = static_cast<size_t>(r.max_alerts);
    rc.timeout = std::chrono::milliseconds(r.timeout_ms);
    no.receivers.push_back(std::move(rc));
  }
  const NotificationConfig& n = config->notification;
  auto route_of = [&](const NotificationRouteConfig& c, const controller::Route* parent) {
    controller::Route r = parent ? *parent : controller::Route{};
    r.matchers.clear();
    if (!c.receiver.empty()) r.receiver = c.receiver;
    if (c.group_by_set) r.group_by = c.group_by;
    if (c.group_wait_ms >= 0) r.group_wait = std::chrono::milliseconds(c.group_wait_ms);
    if (c.group_interval_ms > 0) r.group_interval = std::chrono::milliseconds(c.group_interval_ms);
    if (c.repeat_interval_ms > 0) r.repeat_interval = std::chrono::milliseconds(c.repeat_interval_ms);
    for (const std::string& text : c.matchers) {
      controller::Matcher m;
      std::string why;
      if (controller::ParseMatcher(text, &m, &why)) r.matchers.push_back(std::move(m));
    }
    return r;
  };
  if (n.declared) {
    no.route = route_of(n.root, nullptr);
    for (const NotificationRouteConfig& c : n.routes) no.routes.push_back(route_of(c, &no.route));
  } else if (!config->receivers.empty()) {
    no.route.receiver = config->receivers.front().name;
  }
  std::unique_ptr<controller::Notifier> notifier;
  if (!no.receivers.empty()) {
    std::error_code ec;
    fs::create_directories(controller_dir_, ec);
    std::string why;
    notifier = controller::Notifier::Open(no, clock_, &why);
    if (!notifier) {
      *error = "notifications: " + why;
      return false;
    }
  }
  // Everything is valid: swap it in. Alert states carry over, from the rules
  // being replaced or, on a first load, from the last controller's
  // alert-state.json: a pending alert keeps its `for` progress and one that
  // fired and cleared meanwhile is resolved at the next evaluation.
  // Notification state is in alerts.db.
  if (rules) {
    if (rules_) {
      rules->Restore(rules_->State());
    } else {
      std::ifstream in(controller_dir_ / "alert-state.json");
      std::stringstream text;
      text << in.rdbuf();
      const json saved = json::parse(text.str(), nullptr, false);
      if (saved.is_object() && saved.value("format_version", 0) == 1) rules->Restore(saved.value("alerts", json()));
    }
  }
  notifier_.reset();
  notifier_ = std::move(notifier);
  rules_ = std::move(rules);
  scale_rules_ = std::move(scale_rules);
  scale_values_ = std::move(scale_values);
  scale_services_ = std::move(scale_services);
  scale_regions_ = std::move(scale_regions);
  builtin_ = std::move(builtin);
  alertmanager_url_ = n.alertmanager_url;
  interval_ms_ = n.declared ? n.evaluation_interval_ms : 15'000;
  config_ = std::move(config);
  sources_ = std::move(sources);
  if (!scraper_) {
    metrics::WindowOptions wo;
    wo.scrape_interval_ms = std::max<int64_t>(interval_ms_, 1000);
    wo.retention_ms = std::max<int64_t>(15 * 60'000, 4 * interval_ms_);
    window_ = std::make_unique<metrics::Window>(wo);
    metrics::ScrapeOptions so;
    // Targets are replicas on this machine's addresses: a second is long.
    // The scrape runs inside the controller's pass, so an unreachable
    // replica must not hold up supervision and lease renewal.
    so.fetch.timeout = std::chrono::milliseconds(std::min<int64_t>(1000, std::max<int64_t>(interval_ms_ / 4, 200)));
    scraper_ = std::make_unique<metrics::Scraper>(*window_, clock_, so);
  }
  return true;
}

// Every replica of every recorded service that should run now (not in a
// region failed by `plinth region fail`, whose replicas cannot answer).
void AlertWatch::SetTargets() {
  std::vector<metrics::ScrapeTarget> targets;
  const fs::path ws_dir = controller_dir_.parent_path();
  std::string why;
  std::unique_ptr<controller::ServiceStore> store =
      controller::ServiceStore::Open(ws_dir / "services", storage::WorkspaceKeyPath(ws_dir), false, &why);
  if (store) {
    const std::set<std::string> failed = controller::FailedRegions(ws_dir);
    for (const controller::ServiceSpec& spec : store->List()) {
      const controller::ServiceSpec running =
          controller::RunningSpec(spec, failed, *store, controller::SystemClock().WallMs());
      for (const controller::ReplicaSpec& r : controller::ReplicaSpecsFor(running, {}, store->logs_dir())) {
        if (r.port <= 0) continue;
        std::string region = r.env.count("PLINTH_REGION") ? r.env.at("PLINTH_REGION") : "";
        metrics::ScrapeTarget t;
        t.name = r.id;
        t.url = "http://" + r.host + ":" + std::to_string(r.port) + "/metrics";
        t.labels = {{"service", spec.id}, {"replica", r.id}};
        if (!region.empty()) t.labels.push_back({"region", region});
        std::sort(t.labels.begin(), t.labels.end());
        targets.push_back(std::move(t));
      }
    }
  }
  scraper_->SetTargets(std::move(targets));
}

// The storage sweep's metrics file, as of now while the file is fresh (a
// sweep rewrites it every --sweep-every; older than 10 minutes: no data).
void AlertWatch::ReadStorageMetrics(int64_t now_ms) {
  const fs::path path = controller_dir_.parent_path() / "metrics" / "storage.prom";
  std::error_code ec;
  auto mtime = fs::last_write_time(path, ec);
  if (ec) return;
  auto age = fs::file_time_type::clock::now() - mtime;
  if (age > std::chrono::minutes(10)) return;
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  metrics::ParseResult parsed = metrics::ParseExposition(text.str());
  if (!parsed.ok) return;
  for (const metrics::ParsedSample& s : parsed.samples) window_->Append(s.name, s.labels, now_ms, s.value);
}

controller::TaskResult AlertWatch::Pass(int64_t) {
  controller::TaskResult result;
  const int64_t now = clock_.WallMs();
  std::string digest = FilesDigest();
  std::string load_error;
  if (digest != digest_) {
    if (Reload(&load_error)) {
      digest_ = std::move(digest);
    } else {
      load_error = runtime::EscapeControls(load_error);
      if (!config_) digest_.clear();
    }
  }
  if (!load_error.empty() && !config_) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = load_error;
    result.ok = false;
    result.error = load_error;
    return result;
  }
  if (!rules_ && !notifier_ && !scale_rules_ && scale_values_.empty()) {
    if (votes_) votes_->Set({});
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = load_error;
    status_ = {{"rules", json::array()}, {"summary", "no alert blocks in " + ConfigDirOf(options_)}};
    result.ok = load_error.empty();
    result.error = load_error;
    result.summary = "no alert blocks";
    return result;
  }
  // Evaluate once per evaluation interval; the notifier's timers run every pass.
  if ((rules_ || scale_rules_ || !scale_values_.empty()) && now - last_eval_ms_ >= interval_ms_) {
    last_eval_ms_ = now;
    SetTargets();
    scraper_->Scrape();
    ReadStorageMetrics(now);
    if (self_metrics_) {
      metrics::ParseResult self = metrics::ParseExposition(self_metrics_());
      for (const metrics::ParsedSample& s : self.samples) window_->Append(s.name, s.labels, now, s.value);
    }
    if (rules_) {
      rules_->Evaluate(*window_, now);
      // The states a restarted controller carries on from (written when they change).
      const std::string state = json{{"format_version", 1}, {"alerts", rules_->State()}}.dump();
      if (state != written_state_) {
        std::error_code ec;
        fs::create_directories(controller_dir_, ec);
        const char* stage = "write";
        if (io::WriteFileAtomic(controller_dir_ / "alert-state.json", state + "\n", 0600, &stage) == 0)
          written_state_ = state;
      }
    }
    // Scale rules' verdicts, as votes per service (scale_rule.x.up/.down),
    // and their values (scale_rule.x with value and average).
    std::map<std::string, std::vector<controller::ScaleVote>> votes;
    if (scale_rules_) {
      scale_rules_->Evaluate(*window_, now);
      const json st = scale_rules_->Status();
      std::map<std::string, controller::ScaleVote> by_rule;
      std::map<std::string, std::string> service_of;
      std::map<std::string, bool> decided;  // by rule: at least one condition had data
      for (size_t i = 0; i < st.size() && i < scale_services_.size(); ++i) {
        const std::string name = st[i].value("address", "");
        const bool down = name.size() > 5 && name.compare(name.size() - 5, 5, ".down") == 0;
        const std::string rule = name.substr(0, name.size() - (down ? 5 : 3));
        controller::ScaleVote& v = by_rule[rule];
        v.rule = rule;
        v.at_ms = now;
        if (i < scale_regions_.size()) v.region = scale_regions_[i];
        service_of[rule] = scale_services_[i];
        const bool no_data = st[i].value("no_data", false);
        (down ? v.down : v.up) = !no_data && st[i].value("state", "") == "firing";
        decided[rule] = decided[rule] || !no_data;
      }
      for (auto& [rule, v] : by_rule) v.no_data = !decided[rule];
      for (auto& [rule, v] : by_rule) votes[service_of[rule]].push_back(v);
    }
    json values = json::array();
    for (const controller::ScaleValueRule& r : scale_values_) {
      controller::ScaleVote v;
      v.rule = r.rule;
      v.at_ms = now;
      v.region = r.region;
      v.value = controller::QueryValue(r.query, r.selector, *window_, now);
      v.average = r.average;
      v.no_data = std::isnan(v.value);
      values.push_back({{"address", r.rule},
                        {"service", r.service},
                        {"value", v.no_data ? json(nullptr) : json(v.value)},
                        {"average", r.average}});
      votes[r.service].push_back(std::move(v));
    }
    scale_value_status_ = std::move(values);
    if ((scale_rules_ || !scale_values_.empty()) && votes_) votes_->Set(std::move(votes));
    // What the targets export, for plan's warning about alert queries that
    // name a metric none of them does (docs/automation.md, "Alert rules").
    if (std::vector<std::string> names = window_->Names(); names != recorded_names_) {
      const json doc = {{"format_version", 1}, {"at_ms", now}, {"names", names}};
      const char* stage = "write";
      if (io::WriteFileAtomic(controller_dir_ / "metric-names.json", doc.dump() + "\n", 0600, &stage) == 0)
        recorded_names_ = std::move(names);
    }
    std::vector<controller::Alert> alerts = rules_->Notifiable();
    if (notifier_) notifier_->Put(alerts);
    if (!alertmanager_url_.empty() && !alerts.empty()) {
      controller::AlertmanagerClientOptions ao;
      ao.base_url = alertmanager_url_;
      ao.validity_ms = std::max<int64_t>(4 * 60'000, 4 * interval_ms_);
      std::string why;
      if (!controller::PostAlerts(alerts, now, ao, &why)) load_error = "alertmanager: " + why;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ++evaluations_;
  }
  int delivered = notifier_ ? notifier_->Tick() : 0;
  json targets = json::array();
  for (const metrics::TargetStatus& t : scraper_->Statuses()) {
    json doc = {{"name", t.name}, {"url", t.url}, {"up", t.up}};
    if (!t.error.empty()) doc["error"] = runtime::EscapeControls(t.error);
    targets.push_back(std::move(doc));
  }
  std::lock_guard<std::mutex> lock(mu_);
  notifications_ += delivered;
  rules_count_ = rules_ ? rules_->size() : 0;
  firing_ = rules_ ? rules_->firing() : 0;
  last_error_ = load_error;
  status_ = json::object();
  status_["rules"] = rules_ ? rules_->Status() : json::array();
  if (scale_rules_) status_["scale_rules"] = scale_rules_->Status();
  if (!scale_values_.empty()) status_["scale_values"] = scale_value_status_;
  status_["targets"] = std::move(targets);
  status_["evaluation_interval_ms"] = interval_ms_;
  if (notifier_) {
    controller::NotifierStats st = notifier_->stats();
    status_["notifications"] = {{"delivered", st.delivered}, {"failed_attempts", st.failed_attempts},
                                {"outbox", st.outbox},       {"groups", st.groups},
                                {"silenced", st.silenced}};
    if (!st.last_error.empty()) status_["notifications"]["last_error"] = runtime::EscapeControls(st.last_error);
  }
  if (!load_error.empty()) status_["last_error"] = load_error;
  result.ok = load_error.empty();
  result.error = load_error;
  result.summary = std::to_string(rules_count_) + " alert rules, " + std::to_string(firing_) + " firing";
  return result;
}

json AlertWatch::Status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

void AlertWatch::Metrics(metrics::Exposition& m) const {
  std::lock_guard<std::mutex> lock(mu_);
  m.GaugeValue("plinth_alert_rules", "alert blocks the controller evaluates", static_cast<double>(rules_count_));
  m.GaugeValue("plinth_alerts_firing", "alert instances firing now", static_cast<double>(firing_));
  m.CounterValue("plinth_alert_evaluations_total", "evaluations of the alert rules",
                 static_cast<double>(evaluations_));
  m.CounterValue("plinth_alert_notifications_total", "notifications delivered to receivers",
                 static_cast<double>(notifications_));
}

}  // namespace plinth::cli
