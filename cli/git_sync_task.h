// The controller's git sync (docs/gitops.md, "The controller syncs from
// git"): `plinth controller --git=REPO[@BRANCH] [PATH]`.
//
// Each pass of the controller (while leading) the task checks whether a
// sync is due: the poll interval passed, a signed webhook arrived (POST
// /hooks/git), or the plan waiting for approval was approved (`plinth
// approve PLAN_ID`). A sync fetches the repository (the bare cache of
// cli/git_source.h), resolves the branch and, when the commit, the state's
// serial or the last outcome call for it, plans the commit's tree against
// the workspace's state without the lock (as `plinth plan --lock=false`):
//   - the configuration does not check: outcome "invalid" (the first
//     diagnostic, located in the tree); nothing is applied and the last
//     good commit stays applied;
//   - a deny policy is violated: "denied" (each denial);
//   - nothing to change: "synced";
//   - changes: with --auto-apply they are applied as `plinth apply` would
//     ("applied" or "failed", the commit recorded with the serial);
//     otherwise the plan waits ("waiting") under a plan id that hashes the
//     commit's tree, the path, the configuration and variable digest and
//     the state serial, and is applied only once approved and only if
//     planning again gives the same actions against the same serial.
// Each outcome is recorded once per commit in the controller's action log
// (`plinth history`) and on stderr, counted on /metrics, and shown in the
// status document under "git"; a failing sync and a waiting plan fire the
// built-in GitSyncFailing and GitPlanWaiting alerts (the configuration's
// receivers are notified).
//
// Webhook: POST /hooks/git with the raw body signed as GitHub and Gitea do
// (`X-Hub-Signature-256: sha256=<hex HMAC-SHA-256(secret, body)>`, or
// `X-Plinth-Signature`), the secret from --webhook-secret-file. A missing
// or wrong signature is 401, a delivery id seen before (X-GitHub-Delivery,
// X-Gitea-Delivery or X-Plinth-Delivery) 409, a push to another branch is
// 202 and ignored; otherwise 202 and a sync at once. A webhook only wakes
// the sync: what is applied always comes from the repository.
//
// Thread safety: Pass on the controller's loop thread; Status, Metrics and
// Webhook from any thread (they lock the task's own state).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/controller.h"
#include "runtime/controller/http_server.h"
#include "runtime/metrics/exposition.h"

namespace plinth::cli {

struct GitSyncOptions {
  std::string repo, ref = "HEAD", path;  // --git=REPO[@REF] [PATH]
  std::string home;                      // where .plinth/<workspace> lives (absolute)
  std::chrono::milliseconds poll{60'000};
  bool auto_apply = false;
  std::string webhook_secret;  // empty: POST /hooks/git answers 403
};

class GitSync {
 public:
  // `options`: the controller's (workspace, state key file, variables).
  GitSync(Options options, GitSyncOptions git, controller::Clock& clock);

  controller::TaskResult Pass(int64_t term);
  nlohmann::json Status() const;
  // plinth_git_syncs_total{outcome}, plinth_git_webhooks_total{result},
  // plinth_git_last_sync_timestamp_seconds, plinth_git_sync_duration_seconds,
  // plinth_git_plan_waiting and plinth_git_sync_failing (what the git alerts,
  // controller::AddGitAlerts, fire on).
  void Metrics(metrics::Exposition& m) const;
  // The task ("git-sync", status key "git"), run every controller pass.
  controller::PeriodicTask Task(std::chrono::milliseconds every);
  // POST /hooks/git; `wake` starts the controller's next pass now;
  // `leading`: whether this controller leads (a standby accepts the hook
  // but only the leader syncs, at its next poll).
  controller::HttpResponse Webhook(const controller::HttpRequest& request, const std::function<void()>& wake,
                                   bool leading = true);

  // Where the plan waiting for approval is described and approvals are
  // left: <home>/.plinth/<workspace>/controller/git-sync.json, approvals/.
  static std::filesystem::path StateFile(const std::filesystem::path& controller_dir);
  static std::filesystem::path ApprovalsDir(const std::filesystem::path& controller_dir);

 private:
  struct Outcome {
    std::string outcome;  // synced, applied, failed, invalid, denied, waiting, error
    std::string detail;
  };
  Outcome Sync(bool approved_only);
  void Record(const std::string& commit, const Outcome& o);
  void SaveState() const;

  Options options_;
  GitSyncOptions git_;
  controller::Clock& clock_;
  std::filesystem::path controller_dir_;

  mutable std::mutex mu_;  // guards everything below
  bool wake_ = true;       // a sync is due (at start, after a webhook)
  int64_t last_poll_ms_ = 0;
  std::string commit_, summary_, author_;  // the branch's commit at the last fetch
  std::string planned_commit_;             // what the last plan was made from
  int64_t planned_serial_ = -1;
  std::string outcome_, detail_, recorded_;  // recorded_: commit + outcome last written to the action log
  std::string applied_commit_;
  nlohmann::json pending_;  // {id, commit, serial, digest, actions, changes, created_at}; null when none
  int64_t last_sync_ms_ = 0;
  double last_duration_s_ = 0;
  std::string last_error_;
  std::map<std::string, int64_t> syncs_;     // by outcome
  std::map<std::string, int64_t> webhooks_;  // by result
  std::deque<std::string> deliveries_;       // recent delivery ids, oldest first
  std::set<std::string> delivery_set_;
};

// `plinth approve PLAN_ID [--dir=DIR]`: approves the plan the workspace's
// controller holds for approval (docs/gitops.md).
int Approve(const Options& options);

}  // namespace plinth::cli
