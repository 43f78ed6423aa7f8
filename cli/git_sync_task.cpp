// The controller's git sync and `plinth approve` (cli/git_sync_task.h).
#include "cli/git_sync_task.h"

#include <openssl/sha.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/git_source.h"
#include "cli/provenance.h"
#include "cli/workspace.h"
#include "runtime/controller/actions.h"
#include "runtime/controller/notify.h"
#include "runtime/crypto/aead.h"
#include "runtime/engine/engine.h"
#include "runtime/git/repository.h"
#include "runtime/io/durable.h"
#include "runtime/plan/plan.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxDeliveries = 1000;  // delivery ids remembered against replays
constexpr size_t kMaxListed = 20;        // changed addresses named in a waiting plan's summary

std::string Sha256Hex(const std::string& text) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), md);
  return crypto::Hex(md, sizeof md);
}

std::string Short(const std::string& commit) { return commit.substr(0, 12); }

// The first changed addresses ("update marker.m"), at most kMaxListed.
json ChangeList(const runtime::Plan& plan) {
  json changes = json::array();
  for (const runtime::PlannedResource& pr : plan.resources) {
    if (pr.action == runtime::Action::NoOp) continue;
    if (changes.size() == kMaxListed) break;
    changes.push_back(std::string(runtime::ActionName(pr.action)) + " " + pr.address);
  }
  return changes;
}

}  // namespace

fs::path GitSync::StateFile(const fs::path& controller_dir) { return controller_dir / "git-sync.json"; }
fs::path GitSync::ApprovalsDir(const fs::path& controller_dir) { return controller_dir / "approvals"; }

GitSync::GitSync(Options options, GitSyncOptions git, controller::Clock& clock)
    : options_(std::move(options)),
      git_(std::move(git)),
      clock_(clock),
      controller_dir_(fs::path(git_.home) / ".plinth" / options_.workspace / "controller") {
  // What a previous leader left: the plan waiting for approval, the applied
  // commit, and the outcome already recorded (not recorded twice).
  std::ifstream in(StateFile(controller_dir_));
  json doc = json::parse(in, nullptr, false);
  if (doc.is_object()) {
    pending_ = doc.value("pending", json());
    applied_commit_ = doc.value("applied_commit", std::string());
    recorded_ = doc.value("recorded", std::string());
  }
}

void GitSync::SaveState() const {
  json doc = {{"format_version", 1},
              {"repo", git::RedactUrl(git_.repo)},
              {"ref", git_.ref},
              {"path", git_.path},
              {"applied_commit", applied_commit_},
              {"recorded", recorded_},
              {"outcome", outcome_},
              {"detail", detail_},
              {"commit", commit_},
              {"pending", pending_}};
  std::error_code ec;
  if (io::MakeDirs(controller_dir_, 0700) == 0)
    (void)io::WriteFileAtomic(StateFile(controller_dir_), doc.dump(2) + "\n", 0600);
}

void GitSync::Record(const std::string& commit, const Outcome& o) {
  const std::string key = commit + " " + o.outcome + " " + o.detail;
  if (key == recorded_) return;
  recorded_ = key;
  const std::string subject = "git " + git::RedactUrl(git_.repo) + "@" + git_.ref;
  const std::string detail = o.outcome + " commit " + Short(commit) + " (" + summary_ + ")";
  std::fprintf(stderr, "controller: %s: %s: %s\n", subject.c_str(), runtime::EscapeControls(detail).c_str(),
               runtime::EscapeControls(o.detail).c_str());
  std::string e;
  auto log = controller::ActionLog::Open(controller_dir_ / "actions.db", true, &e);
  if (!log || !log->Record({0, clock_.WallMs(), "git-sync", subject, detail, o.detail}, &e))
    std::fprintf(stderr, "controller: cannot record the git sync: %s\n", e.c_str());
}

GitSync::Outcome GitSync::Sync(bool approved) {
  std::string error;
  git::Source source{git_.repo, git_.ref};
  auto read = ReadGit(source, git_.path, git_.home, &error);
  if (!read) return {"error", error};
  {
    std::lock_guard lock(mu_);
    commit_ = read->commit.id;
    summary_ = read->commit.summary;
    author_ = read->commit.author;
  }
  // Nothing new: the commit was planned already and its outcome stands
  // (a failed apply, a waiting plan and an approval are looked at again).
  if (!approved && read->commit.id == planned_commit_ &&
      (outcome_ == "synced" || outcome_ == "applied" || outcome_ == "invalid" || outcome_ == "denied")) {
    return {outcome_, detail_};
  }
  Options po = options_;
  po.paths = {read->config};
  po.dir.clear();
  po.from_git = read->from;
  runtime::EngineOptions eo;
  eo.config_dir = read->config;
  eo.workspace = po.workspace;
  eo.variable_sources = VariableSourcesOf(po);
  eo.parallelism = po.parallelism;
  UseGitSource(po, &eo);
  if (!StateKey(po, &eo.state_key)) return {"error", "the state key file is not usable (see the controller's stderr)"};
  eo.lock = false;  // the plan writes nothing and waits for no one
  SourceManager sources;
  Diagnostics diags;
  runtime::EngineResult planned;
  {
    runtime::Engine engine(eo, sources, diags);
    planned = engine.Plan(false);
  }
  {
    std::lock_guard lock(mu_);
    planned_commit_ = read->commit.id;
  }
  if (diags.has_errors()) return {"invalid", FirstError(diags, sources)};
  if (!planned.ok) return {"error", planned.errors.empty() ? "the plan failed" : planned.errors.front()};
  if (!planned.plan.problems.empty()) return {"invalid", planned.plan.problems.front().message};
  if (planned.plan.Denied()) {
    std::string why;
    for (const runtime::PolicyFinding& f : planned.plan.policy_findings) {
      if (f.outcome != runtime::PolicyFinding::Outcome::Violated || !f.deny) continue;
      why += (why.empty() ? "" : "; ") + f.policy + " denies " + f.address + ": " + f.message;
    }
    std::lock_guard lock(mu_);
    pending_ = json();
    return {"denied", why};
  }
  if (!planned.plan.HasChanges()) {
    std::lock_guard lock(mu_);
    pending_ = json();
    applied_commit_ = read->commit.id;
    return {"synced", "nothing to change"};
  }
  const json changes = ChangeList(planned.plan);
  const std::string counts = runtime::ChangeCounts(planned.plan);
  std::map<std::string, std::string> actions;
  for (const runtime::PlannedResource& pr : planned.plan.resources) actions[pr.address] = runtime::SavedAction(pr);
  const std::string id = Sha256Hex(read->commit.tree_id + '\0' + git_.path + '\0' + planned.config_digest + '\0' +
                                   std::to_string(planned.serial))
                             .substr(0, 16);
  const bool approved_this = approved && pending_.is_object() && pending_.value("id", std::string()) == id;
  if (!git_.auto_apply && !approved_this) {
    std::string note;
    if (approved && pending_.is_object())
      note = "; the approved plan " + pending_.value("id", std::string()) + " no longer holds (the commit, the "
             "variables or the state changed)";
    // The plan to review before approving, with the commits behind each change.
    (void)TraceProvenance(po, planned.plan, sources);
    const fs::path plan_file = controller_dir_ / "git-plan.txt";
    const std::string text = "Plan " + id + " of commit " + read->commit.id + " (" +
                             runtime::EscapeControls(read->commit.summary) + "); approve with: plinth approve " + id +
                             "\n\n" + runtime::RenderPlanText(planned.plan, false);
    std::string review = "review " + plan_file.string() + ", then ";
    if (io::MakeDirs(controller_dir_, 0700) != 0 || io::WriteFileAtomic(plan_file, text, 0600) != 0) review.clear();
    std::lock_guard lock(mu_);
    pending_ = {{"id", id},
                {"commit", read->commit.id},
                {"summary", read->commit.summary},
                {"serial", planned.serial},
                {"digest", planned.config_digest},
                {"actions", actions},
                {"changes", changes},
                {"counts", counts},
                {"created_at_ms", clock_.WallMs()}};
    return {"waiting", "plan " + id + " (" + counts + ") waits for approval: " + review + "plinth approve " + id + note};
  }
  // Apply exactly what was planned: refused, changing nothing, when the
  // state, the configuration or the planned actions moved since.
  eo.lock = true;
  SourceManager apply_sources;
  Diagnostics apply_diags;
  runtime::Engine::SavedPlan saved;
  saved.serial = planned.serial;
  saved.config_digest = planned.config_digest;
  saved.actions = actions;
  saved.what = approved_this ? "approved plan " + id : "plan of commit " + Short(read->commit.id);
  runtime::EngineResult applied;
  {
    runtime::Engine engine(eo, apply_sources, apply_diags);
    applied = engine.ApplySaved(saved, false);
  }
  std::error_code ec;
  if (approved_this) fs::remove(ApprovalsDir(controller_dir_) / id, ec);
  std::lock_guard lock(mu_);
  pending_ = json();
  if (apply_diags.has_errors()) return {"failed", FirstError(apply_diags, apply_sources)};
  if (!applied.ok || applied.failed > 0) {
    std::string why = applied.errors.empty() ? std::to_string(applied.failed) + " change(s) failed"
                                             : applied.errors.front();
    return {"failed", why};
  }
  applied_commit_ = read->commit.id;
  return {"applied", counts + (approved_this ? " (approved plan " + id + ")" : "") + ", serial " +
                         std::to_string(applied.serial)};
}

controller::TaskResult GitSync::Pass(int64_t) {
  controller::TaskResult r;
  const int64_t now = clock_.WallMs();
  bool approved = false, due;
  {
    std::lock_guard lock(mu_);
    std::error_code ec;
    if (pending_.is_object())
      approved = fs::exists(ApprovalsDir(controller_dir_) / pending_.value("id", std::string()), ec);
    due = wake_ || approved || now - last_poll_ms_ >= git_.poll.count();
    if (due) {
      wake_ = false;
      last_poll_ms_ = now;
    }
  }
  if (!due) {
    std::lock_guard lock(mu_);
    r.summary = outcome_.empty() ? "no sync yet" : outcome_ + " at commit " + Short(commit_);
    return r;
  }
  const auto t0 = std::chrono::steady_clock::now();
  Outcome o = Sync(approved);
  o.detail = runtime::EscapeControls(o.detail);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard lock(mu_);
  last_sync_ms_ = clock_.WallMs();
  last_duration_s_ = seconds;
  ++syncs_[o.outcome];
  outcome_ = o.outcome;
  detail_ = o.detail;
  if (o.outcome == "error") {
    last_error_ = o.detail;
    r.ok = false;
    r.error = o.detail;
  } else {
    last_error_.clear();
    if (o.outcome == "failed") {
      r.ok = false;
      r.error = o.detail;
    }
  }
  if (!commit_.empty() && o.outcome != "error") Record(commit_, o);
  SaveState();
  r.summary = o.outcome + " at commit " + Short(commit_) + ": " + o.detail;
  return r;
}

json GitSync::Status() const {
  std::lock_guard lock(mu_);
  json doc = {{"repo", git::RedactUrl(git_.repo)},
              {"ref", git_.ref},
              {"path", git_.path},
              {"auto_apply", git_.auto_apply},
              {"poll_ms", git_.poll.count()},
              {"webhook", !git_.webhook_secret.empty()},
              {"commit", commit_},
              {"summary", summary_},
              {"author", author_},
              {"outcome", outcome_},
              {"detail", detail_},
              {"applied_commit", applied_commit_},
              {"last_sync_ms", last_sync_ms_},
              {"last_duration_s", last_duration_s_},
              {"last_error", last_error_}};
  if (pending_.is_object()) {
    doc["waiting"] = {{"id", pending_.value("id", std::string())},
                      {"plan_file", (controller_dir_ / "git-plan.txt").string()},
                      {"commit", pending_.value("commit", std::string())},
                      {"counts", pending_.value("counts", std::string())},
                      {"changes", pending_.value("changes", json::array())}};
  }
  return doc;
}

void GitSync::Metrics(metrics::Exposition& m) const {
  std::lock_guard lock(mu_);
  m.Counter("plinth_git_syncs_total", "Git syncs by outcome (applied, synced, waiting, denied, invalid, failed, error).");
  for (const char* o : {"applied", "synced", "waiting", "denied", "invalid", "failed", "error"}) {
    auto it = syncs_.find(o);
    m.Sample(it == syncs_.end() ? 0 : static_cast<double>(it->second), {{"outcome", o}});
  }
  m.Counter("plinth_git_webhooks_total", "Webhook requests by result (accepted, ignored, unauthorized, replayed, refused).");
  for (const char* w : {"accepted", "ignored", "unauthorized", "replayed", "refused"}) {
    auto it = webhooks_.find(w);
    m.Sample(it == webhooks_.end() ? 0 : static_cast<double>(it->second), {{"result", w}});
  }
  m.GaugeValue("plinth_git_last_sync_timestamp_seconds", "When the last git sync finished (Unix seconds).",
               static_cast<double>(last_sync_ms_) / 1000.0);
  m.GaugeValue("plinth_git_sync_duration_seconds", "How long the last git sync took (fetch, plan, apply).",
               last_duration_s_);
  m.GaugeValue("plinth_git_plan_waiting", "1 when a plan waits for approval (plinth approve).",
               pending_.is_object() ? 1 : 0);
  const bool failing = outcome_ == "denied" || outcome_ == "invalid" || outcome_ == "failed" || outcome_ == "error";
  m.GaugeValue("plinth_git_sync_failing",
               "1 when the branch's last commit was not applied (denied, invalid, failed, or the fetch failed).",
               failing ? 1 : 0);
}

controller::PeriodicTask GitSync::Task(std::chrono::milliseconds every) {
  controller::PeriodicTask t;
  t.name = "git-sync";
  t.every = every;
  t.status_key = "git";
  t.run = [this](int64_t term) { return Pass(term); };
  t.status = [this] { return Status(); };
  t.metrics = [this](metrics::Exposition& m) { Metrics(m); };
  return t;
}

controller::HttpResponse GitSync::Webhook(const controller::HttpRequest& req, const std::function<void()>& wake,
                                          bool leading) {
  controller::HttpResponse r;
  auto answer = [&](int status, const std::string& result, const std::string& body) {
    std::lock_guard lock(mu_);
    ++webhooks_[result];
    r.status = status;
    r.body = body + "\n";
    if (status >= 400) std::fprintf(stderr, "controller: POST /hooks/git refused (%d): %s\n", status, body.c_str());
    return r;
  };
  if (git_.webhook_secret.empty())
    return answer(403, "refused", "webhooks are off; start the controller with --webhook-secret-file=FILE");
  auto header = [&](std::initializer_list<const char*> names) {
    for (const char* n : names)
      if (auto it = req.headers.find(n); it != req.headers.end()) return it->second;
    return std::string();
  };
  const std::string signature = header({"x-hub-signature-256", "x-plinth-signature"});
  const std::string expected = "sha256=" + controller::HmacSha256Hex(git_.webhook_secret, req.body);
  if (signature.empty())
    return answer(401, "unauthorized", "no signature: send X-Hub-Signature-256: sha256=<HMAC-SHA-256 of the body>");
  if (!controller::ConstantTimeEquals(signature, expected))
    return answer(401, "unauthorized", "wrong signature: the body's HMAC-SHA-256 under the webhook secret differs");
  const std::string delivery = header({"x-github-delivery", "x-gitea-delivery", "x-plinth-delivery"});
  if (delivery.empty() || delivery.size() > 200)
    return answer(400, "refused", "no delivery id: send X-GitHub-Delivery, X-Gitea-Delivery or X-Plinth-Delivery");
  {
    std::lock_guard lock(mu_);
    if (delivery_set_.count(delivery)) {
      ++webhooks_["replayed"];
      r.status = 409;
      r.body = "delivery " + runtime::EscapeControls(delivery) + " was received before; a replay is ignored\n";
      std::fprintf(stderr, "controller: POST /hooks/git refused (409): delivery %s replayed\n",
                   runtime::EscapeControls(delivery).c_str());
      return r;
    }
    delivery_set_.insert(delivery);
    deliveries_.push_back(delivery);
    if (deliveries_.size() > kMaxDeliveries) {
      delivery_set_.erase(deliveries_.front());
      deliveries_.pop_front();
    }
  }
  // A push to another branch does not concern this sync.
  json body = json::parse(req.body, nullptr, false);
  if (body.is_object() && body.contains("ref") && body["ref"].is_string() && git_.ref != "HEAD") {
    const std::string ref = body["ref"].get<std::string>();
    if (ref != "refs/heads/" + git_.ref && ref != git_.ref && ref != "refs/tags/" + git_.ref)
      return answer(202, "ignored", "a push to " + runtime::EscapeControls(ref) + ", not to " + git_.ref + "; ignored");
  }
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  wake();
  return answer(202, "accepted",
                leading ? "sync started" : "accepted, but this controller stands by: the leader syncs at its next poll");
}

int Approve(const Options& o) {
  if (o.paths.size() != 1 || o.paths[0].empty()) {
    std::fprintf(stderr, "usage: plinth approve PLAN_ID [--dir=DIR] [--workspace=W]\n");
    return 2;
  }
  const std::string& id = o.paths[0];
  const fs::path controller_dir = fs::path(ConfigDir(o)) / ".plinth" / o.workspace / "controller";
  std::ifstream in(GitSync::StateFile(controller_dir));
  if (!in) {
    std::fprintf(stderr, "error: no controller syncs workspace '%s' from git in %s (start one with plinth controller "
                 "--git=REPO)\n", o.workspace.c_str(), ConfigDir(o).c_str());
    return 1;
  }
  json doc = json::parse(in, nullptr, false);
  const json pending = doc.is_object() ? doc.value("pending", json()) : json();
  if (!pending.is_object()) {
    std::fprintf(stderr, "error: no plan waits for approval in workspace '%s' (the controller's last outcome: %s%s%s)\n",
                 o.workspace.c_str(), doc.is_object() ? doc.value("outcome", std::string("none")).c_str() : "none",
                 doc.is_object() && !doc.value("detail", std::string()).empty() ? ": " : "",
                 doc.is_object() ? runtime::EscapeControls(doc.value("detail", std::string())).c_str() : "");
    return 1;
  }
  const std::string waiting = pending.value("id", std::string());
  if (id != waiting) {
    std::fprintf(stderr, "error: plan %s does not wait for approval; plan %s does (commit %s: %s)\n",
                 runtime::EscapeControls(id).c_str(), waiting.c_str(), Short(pending.value("commit", std::string())).c_str(),
                 pending.value("counts", std::string()).c_str());
    return 1;
  }
  const fs::path dir = GitSync::ApprovalsDir(controller_dir);
  if (int e = io::MakeDirs(dir, 0700)) {
    std::fprintf(stderr, "error: cannot create %s: %s\n", dir.c_str(), std::strerror(e));
    return 1;
  }
  const char* user = std::getenv("USER");
  json approval = {{"plan", id}, {"by", user ? user : ""}, {"pid", ::getpid()}};
  if (int e = io::WriteFileAtomic(dir / id, approval.dump() + "\n", 0600)) {
    std::fprintf(stderr, "error: cannot write the approval: %s\n", std::strerror(e));
    return 1;
  }
  std::printf("Approved plan %s (commit %s: %s); the controller applies it at its next pass.\n", id.c_str(),
              Short(pending.value("commit", std::string())).c_str(), pending.value("counts", std::string()).c_str());
  return 0;
}

}  // namespace plinth::cli
