// The controller's alert task (docs/automation.md, "Alert rules"): every
// evaluation interval, while leading,
//   1. loads the configuration of the controller's DIR when its files
//      changed (as `plinth validate DIR` does) and compiles its `alert`
//      blocks (runtime/controller/alert_rules.h), its receivers and its
//      notification routes (runtime/controller/notify.h);
//      The storage alerts of its buckets (BucketCapacity, BackupFailed,
//      BackupOverdue) are added as rules over the storage sweep's metrics;
//   2. scrapes every replica of every recorded service (`/metrics` on its
//      port, labels service, region, replica) and reads the controller's own
//      metrics and the storage sweep's metrics file, into one bounded window
//      (runtime/metrics);
//   3. evaluates the alerts and hands firing and resolved ones to the
//      Notifier (webhooks with Alertmanager's payload, grouping, timers,
//      retries, silences; its database `<controller dir>/alerts.db` keeps
//      what is undelivered across restarts) and, when the notification
//      block names one, to an Alertmanager.
// A configuration that does not load keeps the last good rules running;
// the error is the task's error. With no alert block the task does
// nothing but say so.
//
// Thread safety: Pass on the controller's loop thread; Status and Metrics
// from any thread (they lock the task's own state).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "runtime/controller/alert_rules.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/controller.h"
#include "runtime/controller/notify.h"
#include "runtime/controller/service_autoscaling.h"
#include "runtime/metrics/exposition.h"
#include "runtime/metrics/scrape.h"

namespace plinth::cli {

class AlertWatch {
 public:
  // `options`: the controller's (dir set to its DIR). `controller_dir`:
  // where alerts.db lives.
  AlertWatch(Options options, controller::Clock& clock, std::filesystem::path controller_dir);
  ~AlertWatch();

  // The controller's own metrics, read at every evaluation (set once the
  // controller exists; unset: not read).
  void SetSelfMetrics(std::function<std::string()> self) { self_metrics_ = std::move(self); }

  // Where to publish the scale rules' votes after each evaluation (the
  // service supervision task reads them); must outlive this object.
  void SetScaleVotes(controller::ScaleVotes* votes) { votes_ = votes; }
  // A controller syncing from git ("REPO@BRANCH"): the git alerts
  // (controller::AddGitAlerts) join the built-in ones. Before the first pass.
  void SetGitSource(std::string source) { git_source_ = std::move(source); }

  // A task that evaluates every `every`; the notification block's
  // evaluation_interval overrides it once the configuration is loaded
  // (the task runs at `every` and skips passes until that much time passed).
  controller::PeriodicTask Task(std::chrono::milliseconds every);

  controller::TaskResult Pass(int64_t term);
  nlohmann::json Status() const;
  void Metrics(metrics::Exposition& m) const;

 private:
  bool Reload(std::string* error);
  std::string FilesDigest() const;
  void SetTargets();
  void ReadStorageMetrics(int64_t now_ms);

  Options options_;
  controller::Clock& clock_;
  std::filesystem::path controller_dir_;
  std::function<std::string()> self_metrics_;

  // Loop-thread state.
  std::string digest_;
  std::unique_ptr<SourceManager> sources_;
  std::unique_ptr<CheckedConfig> config_;
  std::unique_ptr<controller::AlertRules> rules_;
  // The scale_rule blocks' conditions (ScaleRuleConditions): evaluated with
  // the alerts, never notified; their verdicts go to votes_.
  std::unique_ptr<controller::AlertRules> scale_rules_;
  std::vector<std::string> scale_services_;  // per condition of scale_rules_, its service
  std::vector<std::string> scale_regions_;   // per condition of scale_rules_, its region ("" for every region)
  std::vector<controller::ScaleValueRule> scale_values_;  // scale rules with value and average
  nlohmann::json scale_value_status_ = nlohmann::json::array();  // their values at the last evaluation
  controller::ScaleVotes* votes_ = nullptr;
  std::string git_source_;
  controller::BuiltinAlerts builtin_;  // the storage alerts' conditions (rules_ points into them)
  std::unique_ptr<controller::Notifier> notifier_;
  std::string alertmanager_url_;
  int64_t interval_ms_ = 15'000;
  int64_t last_eval_ms_ = 0;
  std::unique_ptr<metrics::Window> window_;
  std::unique_ptr<metrics::Scraper> scraper_;
  // The metric names last written to metric-names.json (plan warns about
  // alert queries naming none of them: runtime/engine, "unexported metrics").
  std::vector<std::string> recorded_names_;
  std::string written_state_;  // the alert states last written to alert-state.json

  mutable std::mutex mu_;  // guards what Status and Metrics read
  nlohmann::json status_ = nlohmann::json::object();
  int64_t evaluations_ = 0;
  int64_t notifications_ = 0;
  size_t firing_ = 0, rules_count_ = 0;
  std::string last_error_;
};

}  // namespace plinth::cli
