// controller and status: the workspace's long-running controller
// (runtime/controller/controller.h, docs/controller.md) and its status.
#include <arpa/inet.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/alert_task.h"
#include "cli/drift_task.h"
#include "cli/git_source.h"
#include "cli/git_sync_task.h"
#include "cli/workspace.h"
#include "runtime/compute/pool_metrics.h"
#include "runtime/compute/queue.h"
#include "runtime/controller/controller.h"
#include "runtime/controller/lb_supervision.h"
#include "runtime/controller/service_supervision.h"
#include "runtime/slurm/patch.h"
#include "runtime/metrics/exposition.h"
#include "runtime/plan/plan.h"
#include "runtime/storage/keys.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void OnSignal(int) {
  g_stop = true;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

int UsageError(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 2;
}

bool Duration(const std::string& flag, const std::string& text, int64_t fallback_ms, int64_t* ms) {
  if (text.empty()) {
    *ms = fallback_ms;
    return true;
  }
  if (!ParseDuration(text, ms)) {
    std::fprintf(stderr, "error: %s takes a duration such as 500ms, 2s, 1m, not '%s'\n", flag.c_str(),
                 text.c_str());
    return false;
  }
  return true;
}

// The configuration directory: DIR, else --dir, else "."; with --git the
// workspace's directory (--dir, else "."), DIR being a path in the repository.
std::string DirOf(const Options& o) {
  if (!o.git.empty()) return ConfigDir(o);
  if (!o.paths.empty()) return o.paths[0];
  return ConfigDir(o);
}

// The webhook secret: the file's content without trailing newlines, from a
// regular file that group and others cannot read.
bool ReadSecretFile(const std::string& path, std::string* secret) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fprintf(stderr, "error: --webhook-secret-file: '%s' is not a readable file\n", path.c_str());
    return false;
  }
  if (st.st_mode & 077) {
    std::fprintf(stderr, "error: --webhook-secret-file: '%s' can be read by others (mode %03o); chmod 600 it\n",
                 path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  *secret = text.str();
  while (!secret->empty() && (secret->back() == '\n' || secret->back() == '\r')) secret->pop_back();
  if (secret->size() < 16) {
    std::fprintf(stderr, "error: --webhook-secret-file: the secret in '%s' is shorter than 16 bytes\n", path.c_str());
    return false;
  }
  return true;
}

fs::path ControllerDir(const Options& o) {
  return fs::path(DirOf(o)) / ".plinth" / o.workspace / "controller";
}

bool IsLoopback(const std::string& host) {
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return false;
  return (ntohl(a.s_addr) >> 24) == 127;
}

int64_t WallNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int Controller(const Options& options) {
  Options o = options;
  o.dir = DirOf(options);
  if (!ExistingDir(o.dir)) return 1;
  const auto& f = o.controller;
  // --git: the workspace syncs from a branch (cli/git_sync_task.h); the
  // other tasks read the configuration of the commit applied last, through
  // the stable link an apply points at its tree.
  std::optional<GitSyncOptions> git;
  if (!o.git.empty()) {
    std::string error;
    auto source = git::ParseSource(o.git, &error);
    if (!source) return UsageError("--git: " + error);
    GitSyncOptions g;
    g.repo = source->repo;
    g.ref = source->ref;
    if (o.paths.size() > 1) return UsageError("with --git, give at most one path inside the repository");
    if (!GitPathInTree(o.paths.empty() ? "" : o.paths[0], &g.path)) return 2;
    std::error_code ec;
    g.home = fs::absolute(o.dir, ec).lexically_normal().string();
    if (g.home.size() > 1 && g.home.back() == '/') g.home.pop_back();
    if (!git::IsRemote(g.repo)) g.repo = fs::absolute(g.repo, ec).lexically_normal().string();
    int64_t poll_ms = 0;
    if (!Duration("--sync-interval", f.sync_interval, 60000, &poll_ms)) return 2;
    if (poll_ms < 1000) return UsageError("--sync-interval must be at least 1s");
    g.poll = std::chrono::milliseconds(poll_ms);
    g.auto_apply = f.auto_apply;
    if (!f.webhook_secret_file.empty() && !ReadSecretFile(f.webhook_secret_file, &g.webhook_secret)) return 2;
    const fs::path link = GitTreeLink(g.home, o.workspace);
    o.from_git = Options::FromGit{g.home, link.string(), g.path, "", ""};
    o.paths = {(g.path.empty() ? link : link / g.path).string()};
    git = std::move(g);
  } else if (!f.sync_interval.empty() || f.auto_apply || !f.webhook_secret_file.empty()) {
    return UsageError("--sync-interval, --auto-apply and --webhook-secret-file go with --git=REPO");
  }
  int64_t interval_ms = 0, ttl_ms = 0, sweep_ms = 0, drift_ms = 0;
  if (!Duration("--interval", f.interval, 2000, &interval_ms) ||
      !Duration("--lease-ttl", f.lease_ttl, 10000, &ttl_ms) ||
      !Duration("--sweep-every", f.sweep_every, 60000, &sweep_ms)) {
    return 2;
  }
  // --drift-interval=0 (or 0s, 0m...) turns the drift task off.
  const bool drift_off = !f.drift_interval.empty() && f.drift_interval[0] == '0' &&
                         f.drift_interval.find_first_not_of("0hms") == std::string::npos;
  if (!drift_off && !Duration("--drift-interval", f.drift_interval, 300000, &drift_ms)) {
    return 2;
  }
  if (ttl_ms <= interval_ms) {
    return UsageError("--lease-ttl (" + std::to_string(ttl_ms) + " ms) must be longer than --interval (" +
                      std::to_string(interval_ms) + " ms), or the leader loses its lease between renewals");
  }
  std::string host = "127.0.0.1";
  int port = 0;
  if (!f.listen.empty()) {
    size_t colon = f.listen.rfind(':');
    std::string p = colon == std::string::npos ? "" : f.listen.substr(colon + 1);
    if (colon == std::string::npos || colon == 0 || p.empty() || p.size() > 5 ||
        p.find_first_not_of("0123456789") != std::string::npos || std::stoi(p) > 65535) {
      return UsageError("--listen takes HOST:PORT such as 127.0.0.1:9464, not '" + f.listen + "'");
    }
    host = f.listen.substr(0, colon);
    port = std::stoi(p);
    in_addr a{};
    if (::inet_pton(AF_INET, host.c_str(), &a) != 1) {
      return UsageError("--listen takes an IPv4 address such as 127.0.0.1, not '" + host + "'");
    }
    if (!IsLoopback(host) && !f.allow_remote) {
      return UsageError("--listen=" + f.listen +
                        " is reachable from other machines and the endpoints have no TLS; use 127.0.0.1, or "
                        "add --allow-remote");
    }
  }

  controller::SystemClock clock;
  controller::ControllerOptions co;
  co.dir = ControllerDir(o);
  co.interval = std::chrono::milliseconds(interval_ms);
  co.lease_ttl = std::chrono::milliseconds(ttl_ms);
  std::vector<controller::PeriodicTask> tasks;
  controller::PeriodicTask sweep;
  sweep.name = "storage-sweep";
  sweep.every = std::chrono::milliseconds(sweep_ms);
  sweep.run = [&o, &clock](int64_t) {
    controller::TaskResult r;
    r.ok = StorageSweepOnce(o, clock.WallMs(), &r.summary, &r.error);
    return r;
  };
  tasks.push_back(std::move(sweep));
  // Services: every pass, replicas kept matching the service store
  // (runtime/controller/service_supervision.h).
  const fs::path ws_dir = ControllerDir(o).parent_path();
  controller::ServiceSupervision services(ws_dir, storage::WorkspaceKeyPath(ws_dir), clock);
  tasks.push_back(services.Task(std::chrono::milliseconds(interval_ms)));
  // Load balancers: a dead HAProxy is started again from its recorded spec
  // (runtime/controller/lb_supervision.h).
  controller::LoadBalancerSupervision lbs(ws_dir);
  tasks.push_back(lbs.Task(std::chrono::milliseconds(interval_ms)));
  // Compute pools: their metrics on /metrics each pass, for the built-in
  // pool alerts (runtime/compute/pool_metrics.h, docs/automation.md).
  struct ComputeMetrics {
    std::mutex mu;
    metrics::Exposition families;
  } compute_metrics;
  controller::PeriodicTask compute_task;
  compute_task.name = "compute-metrics";
  compute_task.every = std::chrono::milliseconds(interval_ms);
  compute_task.run = [&compute_metrics, &clock, ws_dir](int64_t) {
    controller::TaskResult r;
    const fs::path dir = ws_dir / "compute";
    metrics::Exposition m;
    std::error_code ec;
    if (!fs::exists(dir / "compute.db", ec)) {
      r.summary = "no compute pool";
    } else {
      compute::QueueOptions qo;
      qo.workspace_key = storage::WorkspaceKeyPath(ws_dir);
      std::string error;
      auto q = compute::Queue::Open(dir, qo, false, &error);
      if (!q) {
        r.ok = false;
        r.error = error;
        return r;
      }
      compute::WritePoolMetrics(*q, clock.WallMs(), m);
      r.summary = std::to_string(q->ListPools().size()) + " pool(s)";
    }
    std::lock_guard lock(compute_metrics.mu);
    compute_metrics.families = std::move(m);
    return r;
  };
  compute_task.metrics = [&compute_metrics](metrics::Exposition& m) {
    std::lock_guard lock(compute_metrics.mu);
    m.Append(compute_metrics.families);
  };
  tasks.push_back(std::move(compute_task));
  // Slurm pools' patches (runtime/slurm/patch.h, docs/providers/slurm.md):
  // no agent runs on a Slurm node, so the leading controller drains, patches
  // and resumes them, one step each pass.
  struct SlurmPatching {
    std::unique_ptr<slurm::SlurmPatcher> patcher;
    std::mutex mu;
    json status = json::array();
  } slurm_patching;
  controller::PeriodicTask slurm_task;
  slurm_task.name = "slurm-patch";
  slurm_task.every = std::chrono::milliseconds(interval_ms);
  slurm_task.status_key = "slurm_patches";
  slurm_task.run = [&slurm_patching, &clock, ws_dir](int64_t) {
    controller::TaskResult r;
    const fs::path compute_dir = ws_dir / "compute";
    std::string error;
    std::vector<slurm::SlurmPatchPlan> plans = slurm::ReadPatchPlans(compute_dir, &error);
    json status = json::array();
    if (plans.empty()) {
      r.summary = "no Slurm pool patches";
    } else {
      if (!slurm_patching.patcher) slurm_patching.patcher = slurm::SlurmPatcher::Open(compute_dir, &error);
      if (!slurm_patching.patcher) return controller::TaskResult{false, "", error};
      for (const slurm::SlurmPatchPlan& plan : plans) {
        slurm::Client client(plan.client);
        slurm::SlurmPatcher::StepResult step = slurm_patching.patcher->Step(plan, client, clock.WallMs());
        for (const std::string& e : step.events) std::fprintf(stderr, "controller: %s: %s\n", plan.pool.c_str(), e.c_str());
        std::unique_ptr<controller::ActionLog> log;
        for (const auto& a : step.actions) {
          std::string e;
          if (!log) log = controller::ActionLog::Open(ws_dir / "controller" / "actions.db", true, &e);
          if (!log || !log->Record({0, clock.WallMs(), a.kind, plan.pool, a.detail, a.reason}, &e))
            if (error.empty()) error = plan.pool + ": cannot record the controller's action: " + e;
        }
        if (!step.error.empty() && error.empty()) error = plan.pool + ": " + step.error;
        r.summary += (r.summary.empty() ? "" : "; ") + step.summary;
        json nodes = json::array();
        for (const auto& n : slurm_patching.patcher->Progress(plan.partition))
          nodes.push_back({{"node", n.node}, {"level", n.level}, {"previous_level", n.previous_level}, {"phase", n.phase}});
        status.push_back({{"pool", plan.pool},
                          {"partition", plan.partition},
                          {"level", plan.patch.level},
                          {"summary", step.summary},
                          {"failed_nodes", slurm_patching.patcher->Failures(plan.partition, plan.patch.level)},
                          {"nodes", nodes}});
      }
    }
    if (!error.empty()) {
      r.ok = false;
      r.error = error;
    }
    std::lock_guard lock(slurm_patching.mu);
    slurm_patching.status = std::move(status);
    return r;
  };
  slurm_task.status = [&slurm_patching]() {
    std::lock_guard lock(slurm_patching.mu);
    return slurm_patching.status;
  };
  tasks.push_back(std::move(slurm_task));
  // Git: fetch, plan and apply (or hold for approval) each new commit.
  std::unique_ptr<GitSync> sync;
  if (git) {
    sync = std::make_unique<GitSync>(o, *git, clock);
    tasks.push_back(sync->Task(std::chrono::milliseconds(interval_ms)));
  }
  // Drift: refresh and plan DIR, report what changed outside Plinth, correct
  // what opts in (cli/drift_task.h); --drift-interval=0 turns it off.
  DriftWatch drift(o, clock);
  if (drift_ms > 0) tasks.push_back(drift.Task(std::chrono::milliseconds(drift_ms)));

  // Alerts: the configuration's alert blocks evaluated against scraped
  // metrics, notifications to its receivers (cli/alert_task.h). The task
  // runs every pass; it evaluates once per evaluation_interval.
  AlertWatch alerts(o, clock, ControllerDir(o));
  // Scale rules: the alert task evaluates them, the services task scales by them.
  controller::ScaleVotes scale_votes;
  alerts.SetScaleVotes(&scale_votes);
  if (git) alerts.SetGitSource(git::RedactUrl(git->repo) + "@" + git->ref);
  services.SetScaleVotes(&scale_votes);
  tasks.push_back(alerts.Task(std::chrono::milliseconds(interval_ms)));

  auto ctl = std::make_unique<controller::Controller>(co, clock, std::move(tasks));
  alerts.SetSelfMetrics([&ctl] { return ctl->MetricsText(); });
  std::string error;
  if (!ctl->Open(&error)) return Fail(error);
  std::unique_ptr<controller::HttpServer> server;
  std::string listen;
  if (!f.once) {
    controller::HttpServerOptions so;
    so.host = host;
    so.port = port;
    so.token = ctl->token();
    // A push event lists its commits: GitHub's reach hundreds of KiB.
    if (git && !git->webhook_secret.empty()) so.max_request_bytes = size_t{1} << 20;
    server = std::make_unique<controller::HttpServer>(so);
    ctl->Attach(*server);
    if (sync) {
      controller::Controller* c = ctl.get();
      server->PostSigned("/hooks/git", [&sync, c](const controller::HttpRequest& req) {
        return sync->Webhook(req, [c] { c->RequestRun("git-sync"); }, c->leading());
      });
    }
    if (!server->Start(&error)) return Fail(error);
    listen = host + ":" + std::to_string(server->port());
    ctl->SetListen(listen);
  }

  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);

  if (f.once) {
    ctl->Tick();
    std::string status = ctl->StatusJson();
    ctl->Shutdown();
    std::cout << status << "\n";
    return json::parse(status).value("last_error", "").empty() ? 0 : 1;
  }
  std::fprintf(stderr, "controller: workspace '%s', listening on %s; token in %s\n", o.workspace.c_str(),
               listen.c_str(), (co.dir / "token").c_str());
  ctl->Run(g_stop);
  server->Stop();
  std::fprintf(stderr, "controller: stopped; lease released\n");
  return 0;
}

int ControllerStatus(const Options& options) {
  Options o = options;
  o.dir = DirOf(options);
  if (!ExistingDir(o.dir)) return 1;
  fs::path path = ControllerDir(o) / "status.json";
  std::ifstream in(path);
  json doc;
  std::string reason;
  bool live = false;
  if (!in) {
    reason = "no controller has run for workspace '" + o.workspace + "' (start one with: plinth controller " +
             o.dir + ")";
  } else {
    std::stringstream text;
    text << in.rdbuf();
    try {
      doc = json::parse(text.str());
    } catch (const json::exception&) {
      return Fail("'" + path.string() + "' is not JSON; a controller rewrites it on its next pass");
    }
    int64_t updated = doc.value("updated_at_ms", int64_t{0});
    int64_t interval = doc.value("interval_ms", int64_t{2000});
    int64_t ttl = doc.value("lease_ttl_ms", int64_t{10000});
    int64_t age = WallNowMs() - updated;
    live = age <= std::max(3 * interval, ttl) && !doc.value("stopped", false);
    if (doc.value("stopped", false)) {
      reason = "no controller: the last one (" + doc.value("holder", std::string("?")) + ") stopped at " +
               doc.value("updated_at", std::string("?")) + " (start one with: plinth controller " + o.dir +
               ")";
    } else if (!live) {
      reason = "no controller: the last status was written " + std::to_string(age / 1000) + " s ago by " +
               doc.value("holder", std::string("?")) + " (start one with: plinth controller " + o.dir + ")";
    }
  }
  if (o.json) {
    if (doc.is_null()) doc = {{"format_version", 1}};
    doc["live"] = live;
    if (!live) doc["reason"] = reason;
    std::cout << doc.dump(2) << "\n";
    return live ? 0 : 1;
  }
  if (!live) {
    std::printf("%s\n", reason.c_str());
    return 1;
  }
  std::printf(
      "controller: leader %s (pid %lld), term %lld, listening on %s\n",
      doc.value("holder", std::string()).c_str(), static_cast<long long>(doc.value("holder_pid", int64_t{0})),
      static_cast<long long>(doc.value("term", int64_t{0})), doc.value("listen", std::string("-")).c_str());
  std::printf("started %s, %lld passes, updated %s\n", doc.value("started_at", std::string()).c_str(),
              static_cast<long long>(doc.value("loops", int64_t{0})),
              doc.value("updated_at", std::string()).c_str());
  if (std::string e = doc.value("last_error", std::string()); !e.empty())
    std::printf("last error: %s\n", e.c_str());
  for (const json& s : doc.value("services", json::array())) {
    std::string failed;
    for (const json& f : s.value("failed_regions", json::array()))
      if (f.is_string()) failed += (failed.empty() ? "" : ", ") + f.get<std::string>();
    // Where a failed region's replicas were relocated to, if anywhere.
    std::set<std::string> hosts;
    for (const json& r : s.value("replicas", json::array())) {
      if (!r.contains("relocated_from")) continue;
      const std::string id = r.value("id", std::string());
      const size_t first = id.find('.'), last = id.rfind('.');
      if (first != std::string::npos && last > first) hosts.insert(id.substr(first + 1, last - first - 1));
    }
    std::string where;
    for (const std::string& h : hosts) where += (where.empty() ? "" : ", ") + h;
    if (!failed.empty())
      failed = " (region " + failed + " failed: " +
               (where.empty() ? std::string("nothing runs there") : "its replicas run in " + where) + ")";
    std::printf(
        "service %s: %d of %d replicas ready%s%s%s\n", s.value("id", std::string()).c_str(),
        s.value("ready", 0), s.value("wanted", 0), failed.c_str(),
        s.value("converged", false) ? "" : " (converging)",
        s.value("failing", std::string()).empty() ? "" : ("; " + s.value("failing", std::string())).c_str());
    if (const json rb = s.value("rollback", json()); rb.is_object()) {
      const std::string version = rb.value("version", std::string());
      std::printf("  rolled back: generation %lld (%s) failed: %s\n",
                  static_cast<long long>(rb.value("from_generation", int64_t{0})),
                  version.empty() ? "the new spec" : ("version \"" + version + "\"").c_str(),
                  rb.value("reason", std::string()).c_str());
    }
    if (const json st = s.value("staged", json()); st.is_object()) {
      const std::string version = st.value("version", std::string());
      std::printf("  waiting: %s for maintenance window %s (%s)\n",
                  version.empty() ? "a change" : ("version \"" + version + "\"").c_str(),
                  st.value("window", std::string()).c_str(), st.value("next", std::string()).c_str());
    }
    for (const json& m : s.value("moved", json::array()))
      std::printf("  moved: replica %s runs in region %s until %s (%s)\n",
                  m.value("replica", std::string()).c_str(), m.value("to", std::string()).c_str(),
                  controller::Rfc3339Ms(m.value("until_ms", int64_t{0})).c_str(),
                  m.value("reason", std::string()).c_str());
    if (const json a = s.value("autoscale", json()); a.is_object()) {
      for (const auto& [region, v] : a.items())
        std::printf("  autoscale %s: %d replicas (%d-%d): %s\n", region.c_str(), v.value("replicas", 0),
                    v.value("min", 0), v.value("max", 0), v.value("reason", std::string()).c_str());
    }
    for (const json& r : s.value("replicas", json::array())) {
      const std::string from = r.value("relocated_from", std::string());
      std::printf("  %s%s: %s%s, pid %lld, %d restarts%s\n", r.value("id", std::string()).c_str(),
                  from.empty() ? "" : (" (for " + from + ")").c_str(),
                  r.value("phase", std::string()).c_str(), r.value("ready", false) ? ", ready" : "",
                  static_cast<long long>(r.value("pid", int64_t{0})), r.value("restarts", 0),
                  r.value("last_error", std::string()).empty()
                      ? ""
                      : ("; " + r.value("last_error", std::string())).c_str());
    }
  }
  for (const json& l : doc.value("load_balancers", json::array())) {
    std::string servers;
    for (const json& v : l.value("servers", json::array()))
      servers += (servers.empty() ? "" : ", ") + v.value("id", std::string()) + " " +
                 v.value("status", std::string()) + (v.value("backup", false) ? " (backup)" : "");
    std::printf("load balancer %s: %s, %lld restarts%s%s\n", l.value("name", std::string()).c_str(),
                l.value("running", false) ? ("running, pid " + std::to_string(l.value("pid", 0))).c_str()
                                          : "not running",
                static_cast<long long>(l.value("restarts", int64_t{0})),
                servers.empty() ? "" : ("; " + servers).c_str(),
                l.value("last_error", std::string()).empty()
                    ? ""
                    : ("; error: " + l.value("last_error", std::string())).c_str());
  }
  if (const json& d = doc.value("drift", json::object()); d.is_object()) {
    for (const json& r : d.value("resources", json::array())) {
      std::string attrs;
      for (const json& a : r.value("attributes", json::array()))
        if (a.is_string()) attrs += (attrs.empty() ? "" : ", ") + a.get<std::string>();
      std::string what =
          r.value("deleted", false) ? "deleted outside Plinth" : attrs + " changed outside Plinth";
      if (!r.value("plan_changes", true)) what += "; the plan does not change it";
      if (r.value("corrected", false)) what += "; corrected";
      if (std::string e = r.value("error", std::string()); !e.empty()) what += "; " + e;
      std::printf("drift: %s: %s\n", r.value("address", std::string()).c_str(), what.c_str());
    }
    if (std::string s = d.value("skipped", std::string()); !s.empty()) std::printf("drift: %s\n", s.c_str());
    if (std::string e = d.value("last_error", std::string()); !e.empty())
      std::printf("drift: error: %s\n", e.c_str());
  }
  if (const json g = doc.value("git", json()); g.is_object()) {
    const std::string outcome = g.value("outcome", std::string());
    std::printf("git: %s@%s%s%s: %s at commit %s: %s\n", g.value("repo", std::string()).c_str(),
                g.value("ref", std::string()).c_str(), g.value("path", std::string()).empty() ? "" : " path ",
                g.value("path", std::string()).c_str(), outcome.empty() ? "no sync yet" : outcome.c_str(),
                g.value("commit", std::string()).substr(0, 12).c_str(),
                runtime::EscapeControls(g.value("detail", std::string())).c_str());
    if (std::string e = g.value("last_error", std::string()); !e.empty() && outcome != "error")
      std::printf("git: error: %s\n", runtime::EscapeControls(e).c_str());
  }
  if (const json& a = doc.value("alerts", json::object()); a.is_object()) {
    for (const json& r : a.value("rules", json::array())) {
      const std::string state = r.value("state", std::string());
      if (state == "inactive" && !r.value("no_data", false)) continue;
      std::printf("alert %s: %s%s\n", r.value("name", std::string()).c_str(), state.c_str(),
                  r.value("no_data", false) ? " (no data)" : "");
    }
    if (std::string e = a.value("last_error", std::string()); !e.empty()) std::printf("alerts: error: %s\n", e.c_str());
  }
  for (const json& s : doc.value("sweeps", json::array())) {
    std::string last = s.value("last_success", std::string());
    std::printf("%s: %lld runs, %lld failed, last success %s%s%s\n", s.value("name", std::string()).c_str(),
                static_cast<long long>(s.value("runs", int64_t{0})),
                static_cast<long long>(s.value("failures", int64_t{0})),
                last.empty() ? "never" : last.c_str(),
                s.value("last_summary", std::string()).empty()
                    ? ""
                    : ("; " + s.value("last_summary", std::string())).c_str(),
                s.value("last_error", std::string()).empty()
                    ? ""
                    : ("; error: " + s.value("last_error", std::string())).c_str());
  }
  return 0;
}

}  // namespace plinth::cli
