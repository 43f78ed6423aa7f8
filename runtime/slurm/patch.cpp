#include "runtime/slurm/patch.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/controller/maintenance.h"
#include "runtime/io/durable.h"
#include "runtime/io/sqlite.h"
#include "runtime/process/process.h"

namespace plinth::slurm {
namespace fs = std::filesystem;
using json = nlohmann::json;
using Stmt = io::SqliteStmt;

json PatchPlanJson(const SlurmPatchPlan& p) {
  return {{"pool", p.pool},
          {"partition", p.partition},
          {"patch", compute::PatchJson(p.patch)},
          {"client", {{"slurm_conf", p.client.slurm_conf.string()}, {"path_list", p.client.path_list}}}};
}

std::optional<SlurmPatchPlan> PatchPlanFromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  SlurmPatchPlan p;
  p.pool = j.value("pool", "");
  p.partition = j.value("partition", "");
  p.patch = compute::PatchFromJson(j.value("patch", json()));
  if (auto c = j.find("client"); c != j.end() && c->is_object()) {
    p.client.slurm_conf = c->value("slurm_conf", "");
    p.client.path_list = c->value("path_list", "");
  }
  if (p.partition.empty() || p.patch.empty() || p.patch.command.empty()) return std::nullopt;
  return p;
}

fs::path PatchDir(const fs::path& compute_dir) {
  return compute_dir / "slurm-patch";
}

namespace {

fs::path PlanPath(const fs::path& compute_dir, const std::string& partition) {
  return PatchDir(compute_dir) / (partition + ".json");
}

bool Exec(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// The base state (before the first '+') and whether a flag is set.
std::string Base(const std::string& state) {
  return state.substr(0, state.find('+'));
}
bool HasFlag(const std::string& state, const std::string& flag) {
  std::stringstream ss(state);
  std::string part;
  while (std::getline(ss, part, '+'))
    if (part == flag) return true;
  return false;
}

std::string Key(const std::string& partition, const std::string& node) {
  return partition + "/" + node;
}

}  // namespace

bool WritePatchPlan(const fs::path& compute_dir, const SlurmPatchPlan& plan, std::string* error) {
  std::error_code ec;
  fs::create_directories(PatchDir(compute_dir), ec);
  ::chmod(PatchDir(compute_dir).c_str(), 0700);
  if (int e = io::WriteFileAtomic(PlanPath(compute_dir, plan.partition), PatchPlanJson(plan).dump(2) + "\n", 0600);
      e < 0) {
    *error = "cannot write " + PlanPath(compute_dir, plan.partition).string() + ": " + std::strerror(-e);
    return false;
  }
  return true;
}

void RemovePatchPlan(const fs::path& compute_dir, const std::string& partition) {
  std::error_code ec;
  fs::remove(PlanPath(compute_dir, partition), ec);
}

std::vector<SlurmPatchPlan> ReadPatchPlans(const fs::path& compute_dir, std::string* error) {
  std::vector<SlurmPatchPlan> out;
  std::error_code ec;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(PatchDir(compute_dir), ec))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const fs::path& f : files) {
    std::ifstream in(f);
    std::stringstream ss;
    ss << in.rdbuf();
    auto plan = PatchPlanFromJson(json::parse(ss.str(), nullptr, false));
    if (plan)
      out.push_back(std::move(*plan));
    else if (error && error->empty())
      *error = "cannot read the Slurm patch plan " + f.string();
  }
  return out;
}

bool Drained(const std::string& state) {
  const std::string base = Base(state);
  return HasFlag(state, "DRAIN") && (base == "IDLE" || base == "DOWN") && !HasFlag(state, "COMPLETING");
}

std::unique_ptr<SlurmPatcher> SlurmPatcher::Open(const fs::path& compute_dir, std::string* error) {
  std::unique_ptr<SlurmPatcher> p(new SlurmPatcher());
  p->dir_ = PatchDir(compute_dir);
  std::error_code ec;
  fs::create_directories(p->dir_ / "logs", ec);
  ::chmod(p->dir_.c_str(), 0700);
  const fs::path db = p->dir_ / "progress.db";
  if (int e = io::CreateFileIfMissing(db, 0600); e < 0) {
    *error = "cannot open " + db.string() + ": " + std::strerror(-e);
    return nullptr;
  }
  if (sqlite3_open_v2(db.c_str(), &p->db_, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    *error = "cannot open " + db.string() + ": " + (p->db_ ? sqlite3_errmsg(p->db_) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(p->db_, 5000);
  if (!Exec(p->db_,
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE IF NOT EXISTS nodes(partition TEXT NOT NULL, node TEXT NOT NULL,"
            " level TEXT NOT NULL DEFAULT '', previous_level TEXT NOT NULL DEFAULT '',"
            " phase TEXT NOT NULL DEFAULT '', PRIMARY KEY(partition, node));"
            "CREATE TABLE IF NOT EXISTS failures(partition TEXT NOT NULL, level TEXT NOT NULL, node TEXT NOT NULL,"
            " at INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(partition, level, node));")) {
    *error = "cannot set up " + db.string() + ": " + sqlite3_errmsg(p->db_);
    return nullptr;
  }
  return p;
}

SlurmPatcher::~SlurmPatcher() {
  stop_ = true;
  for (auto& [key, w] : workers_)
    if (w->thread.joinable()) w->thread.join();
  sqlite3_close(db_);
}

std::vector<SlurmPatcher::NodeProgress> SlurmPatcher::Progress(const std::string& partition) {
  std::vector<NodeProgress> out;
  Stmt q(db_, "SELECT node, level, previous_level, phase FROM nodes WHERE partition = ?1 ORDER BY node");
  q.Bind(1, partition);
  while (q.Row()) out.push_back({q.Text(0), q.Text(1), q.Text(2), q.Text(3)});
  return out;
}

int SlurmPatcher::Failures(const std::string& partition, const std::string& level) {
  Stmt q(db_, "SELECT count(*) FROM failures WHERE partition = ?1 AND level = ?2");
  q.Bind(1, partition).Bind(2, level);
  return q.Row() ? static_cast<int>(q.Int(0)) : 0;
}

void SlurmPatcher::SetNode(const std::string& partition, const NodeProgress& n) {
  Stmt q(db_,
         "INSERT INTO nodes(partition, node, level, previous_level, phase) VALUES(?1,?2,?3,?4,?5) "
         "ON CONFLICT(partition, node) DO UPDATE SET level = excluded.level, previous_level = "
         "excluded.previous_level, phase = excluded.phase");
  q.Bind(1, partition).Bind(2, n.node).Bind(3, n.level).Bind(4, n.previous_level).Bind(5, n.phase);
  q.Done();
}

bool SlurmPatcher::WaitIdle(int64_t timeout_ms) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    bool busy = false;
    for (auto& [key, w] : workers_) busy = busy || !w->done.load();
    if (!busy) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void SlurmPatcher::Start(const SlurmPatchPlan& plan, const NodeProgress& node, bool rollback) {
  auto& slot = workers_[Key(plan.partition, node.node)];
  if (slot && slot->thread.joinable()) slot->thread.join();
  slot = std::make_unique<Worker>();
  slot->rollback = rollback;
  slot->level = rollback ? node.level : plan.patch.level;
  process::Spec spec;
  const std::vector<std::string>& argv = rollback ? plan.patch.rollback_command : plan.patch.command;
  spec.program = argv[0];
  spec.args.assign(argv.begin() + 1, argv.end());
  for (const char* k : {"PATH", "HOME", "LANG", "TZ"})
    if (const char* v = std::getenv(k)) spec.env[k] = v;
  if (!spec.env.count("PATH")) spec.env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  if (!plan.client.slurm_conf.empty()) spec.env["SLURM_CONF"] = plan.client.slurm_conf.string();
  spec.env["PLINTH_NODE"] = node.node;
  spec.env["PLINTH_POOL"] = plan.partition;
  spec.env["PLINTH_PATCH_LEVEL"] = rollback ? node.previous_level : plan.patch.level;
  spec.env["PLINTH_PREVIOUS_PATCH_LEVEL"] = node.level;
  if (rollback) spec.env["PLINTH_PATCH_ROLLBACK"] = "1";
  spec.cwd = plan.patch.cwd;
  spec.deadline = std::chrono::milliseconds(std::max<int64_t>(1, plan.patch.timeout_ms));
  spec.cancel = &stop_;
  spec.output_file = dir_ / "logs" / (node.node + ".log");
  Worker* w = slot.get();
  w->thread = std::thread([w, spec = std::move(spec), rollback]() mutable {
    process::Outcome o = process::Run(std::move(spec));
    w->result = o.ok() ? "" : o.Describe(rollback ? "the rollback command" : "the patch command");
    w->done = true;
  });
}

SlurmPatcher::StepResult SlurmPatcher::Step(const SlurmPatchPlan& plan, Client& client, int64_t now_ms) {
  StepResult r;
  const compute::PatchSpec& patch = plan.patch;
  const std::string& part = plan.partition;
  bool missing = false;
  auto partition = client.Partition(part, &missing, &r.error);
  if (!partition) return r;
  auto nodes = client.Nodes(partition->nodes, &r.error);
  if (!nodes) return r;
  std::map<std::string, NodeProgress> progress;
  for (NodeProgress& n : Progress(part)) progress[n.node] = n;
  std::map<std::string, std::string> state;  // Slurm's, by node
  for (const SlurmNode& n : *nodes) {
    state[n.name] = n.state;
    if (!progress.count(n.name)) progress[n.name] = NodeProgress{n.name, "", "", ""};
  }
  bool window_open = true;
  std::string window_why;
  if (patch.window) {
    std::string e;
    auto d = controller::DecideNamedWindow(*patch.window, now_ms / 1000, &e);
    window_open = d && d->open;
    window_why = d ? "maintenance window " + patch.window->name + " closed (" + d->next + ")" : e;
  }
  auto halted = [&] { return Failures(part, patch.level) >= std::max(1, patch.failure_threshold); };
  auto fail_node = [&](NodeProgress& n, const std::string& why) {
    std::string e;
    client.Drain(n.node, "plinth: " + why, &e);  // stays drained, with the reason
    n.phase = "failed";
    SetNode(part, n);
    r.events.push_back(part + ": node " + n.node + ": " + why);
  };

  // 1. Commands that ended (or that a stopped controller left behind), and
  // nodes whose resume after their command has not gone through yet.
  for (auto& [name, n] : progress) {
    if (n.phase == "resuming") {
      std::string e;
      if (client.Resume(name, &e)) {
        n.phase = "";
        SetNode(part, n);
        r.events.push_back(part + ": node " + name + " resumed at " + (n.level.empty() ? "no level" : "level " + n.level));
      } else {
        r.error = "cannot resume node " + name + " after its patch: " + e;
      }
      continue;
    }
    if (n.phase != "patching" && n.phase != "rolling back") continue;
    const bool rollback = n.phase == "rolling back";
    auto it = workers_.find(Key(part, name));
    if (it == workers_.end() || !it->second) {  // not ours: a controller stopped mid-command
      Start(plan, n, rollback);
      r.events.push_back(part + ": node " + name + ": " + (rollback ? "rollback" : "patch") +
                         " command started again (the controller that ran it stopped)");
      continue;
    }
    if (!it->second->done.load()) continue;
    it->second->thread.join();
    const std::string why = it->second->result;
    const std::string level = it->second->level;  // the level its command was for
    workers_.erase(it);
    if (!why.empty()) {
      if (rollback) {
        fail_node(n, "rollback of patch level " + level + " failed: " + why);
        continue;
      }
      Stmt q(db_,
             "INSERT INTO failures(partition, level, node, at, reason) VALUES(?1,?2,?3,?4,?5) "
             "ON CONFLICT(partition, level, node) DO UPDATE SET at = excluded.at, reason = excluded.reason");
      q.Bind(1, part).Bind(2, level).Bind(3, name).Bind(4, now_ms).Bind(5, why);
      q.Done();
      fail_node(n, "patch level " + level + " failed: " + why);
      if (level == patch.level && halted()) {
        const std::string count = std::to_string(Failures(part, patch.level)) +
                                  " node(s) failed it (failure_threshold " +
                                  std::to_string(patch.failure_threshold) + ")";
        r.actions.push_back({"halt patch", "level " + patch.level, count});
        r.events.push_back(part + ": patch level " + patch.level + " halted: " + count);
      }
      continue;
    }
    // The command succeeded: the node is at its new level (recorded first),
    // then resumed; a resume that fails is tried again next pass.
    const std::string from = n.level;
    const std::string to = rollback ? n.previous_level : level;
    n.previous_level = from;
    n.level = to;
    n.phase = "resuming";
    SetNode(part, n);
    if (rollback) {
      r.actions.push_back({"roll back patch",
                           "node " + name + " from level " + from + " to " + (to.empty() ? "no level" : "level " + to),
                           "patch level " + from + " halted: " + std::to_string(Failures(part, from)) +
                               " node(s) failed it"});
    } else {
      r.actions.push_back({"patch", "node " + name + " to level " + to + (from.empty() ? "" : " from " + from),
                           patch.window ? "maintenance window " + patch.window->name + " open"
                                        : "the pool's patch level changed"});
    }
    std::string e;
    if (client.Resume(name, &e)) {
      n.phase = "";
      SetNode(part, n);
      r.events.push_back(part + ": node " + name + (rollback ? " rolled back to " : " patched to ") +
                         (to.empty() ? "no level" : "level " + to) + "; resumed");
    } else {
      r.error = "cannot resume node " + name + " after its patch: " + e;
    }
  }

  // What each node should do now: go forward to the level (not halted, not
  // failed at it), or back from a halted one (with a rollback_command).
  const bool is_halted = halted();
  auto forward = [&](const NodeProgress& n) {
    if (is_halted || n.level == patch.level) return false;
    Stmt q(db_, "SELECT 1 FROM failures WHERE partition = ?1 AND level = ?2 AND node = ?3");
    q.Bind(1, part).Bind(2, patch.level).Bind(3, n.node);
    return !q.Row();
  };
  auto backward = [&](const NodeProgress& n) {
    return is_halted && !patch.rollback_command.empty() && n.level == patch.level;
  };

  // 2. Drained nodes start their command; a drain that is no longer wanted ends.
  for (auto& [name, n] : progress) {
    if (n.phase != "draining" || !state.count(name)) continue;
    const bool back = backward(n);
    if (!(forward(n) || back) || !window_open) {
      std::string e;
      if (client.Resume(name, &e)) {
        n.phase = "";
        SetNode(part, n);
        r.events.push_back(part + ": node " + name + " resumed before its patch: " +
                           (!window_open ? window_why
                            : is_halted  ? "patch level " + patch.level + " halted"
                                         : "the pool's patch level changed"));
      }
      continue;
    }
    if (!Drained(state[name])) continue;  // its jobs still run
    n.phase = back ? "rolling back" : "patching";
    SetNode(part, n);
    Start(plan, n, back);
    r.events.push_back(part + ": node " + name + " drained; " +
                       (back ? "rolling back patch level " : "patching to level ") + patch.level);
  }

  // 3. More nodes drained while the window is open and the budget allows.
  int busy = 0;
  for (const auto& [name, n] : progress)
    if (state.count(name) && (n.phase == "draining" || n.phase == "patching" || n.phase == "rolling back" ||
                              n.phase == "resuming"))
      ++busy;
  const int allowed = patch.Allowed(static_cast<int>(nodes->size()));
  if (window_open) {
    // Idle nodes first; then the others (their jobs finish before the patch).
    std::vector<std::string> order;
    for (const SlurmNode& sn : *nodes)
      if (Base(sn.state) == "IDLE") order.push_back(sn.name);
    for (const SlurmNode& sn : *nodes)
      if (Base(sn.state) != "IDLE") order.push_back(sn.name);
    for (const std::string& name : order) {
      if (busy >= allowed) break;
      NodeProgress& n = progress[name];
      if (n.phase == "draining" || n.phase == "patching" || n.phase == "rolling back" || n.phase == "resuming")
        continue;
      const bool back = backward(n);
      if (!forward(n) && !back) continue;
      const std::string& st = state[name];
      // Someone else's drain (an admin, a failed health check) or a node that is down: left alone.
      if (Base(st) == "DOWN" || HasFlag(st, "FAIL")) continue;
      if ((HasFlag(st, "DRAIN") || HasFlag(st, "DRAINING")) && n.phase != "failed") continue;
      std::string e;
      const std::string reason = back ? "plinth: roll back patch level " + patch.level
                                      : "plinth: patch to level " + patch.level;
      if (!client.Drain(name, reason, &e)) {
        r.error = "cannot drain node " + name + ": " + e;
        break;
      }
      n.phase = "draining";
      SetNode(part, n);
      ++busy;
      r.events.push_back(part + ": node " + name + " draining to " +
                         (back ? "roll back patch level " : "patch to level ") + patch.level);
    }
  }

  int at_level = 0, failed = 0;
  for (const auto& [name, n] : progress) {
    if (!state.count(name)) continue;
    at_level += n.level == patch.level ? 1 : 0;
    failed += n.phase == "failed" ? 1 : 0;
  }
  r.summary = part + ": " + std::to_string(at_level) + " of " + std::to_string(nodes->size()) +
              " nodes at level " + patch.level + (busy ? ", " + std::to_string(busy) + " in progress" : "") +
              (failed ? ", " + std::to_string(failed) + " failed" : "") + (is_halted ? ", halted" : "") +
              (window_open ? "" : "; " + window_why);
  return r;
}

}  // namespace plinth::slurm
