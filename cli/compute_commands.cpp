// plinth job submit|ls|logs|cancel and plinth compute status|agent
// (docs/compute.md, "Commands"): the workspace's compute queue,
// DIR/.plinth/<workspace>/compute/compute.db.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "runtime/compute/pool_metrics.h"
#include "runtime/compute/queue.h"
#include "runtime/controller/maintenance.h"
#include "runtime/crypto/aead.h"
#include "runtime/plan/plan.h"
#include "runtime/storage/keys.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int Usage(const std::string& what) {
  std::fprintf(stderr, "error: %s\n", what.c_str());
  return 2;
}

int Fail(const std::string& what) {
  std::fprintf(stderr, "error: %s\n", what.c_str());
  return 1;
}

fs::path WorkspaceDir(const Options& o) {
  return fs::path(ConfigDir(o)) / ".plinth" / o.workspace;
}

std::unique_ptr<compute::Queue> OpenQueue(const Options& o, bool create, std::string* error) {
  compute::QueueOptions qo;
  qo.agent_program = "/proc/self/exe";
  qo.workspace_key = storage::WorkspaceKeyPath(WorkspaceDir(o));
  return compute::Queue::Open(WorkspaceDir(o) / "compute", qo, create, error);
}

bool ParseInt(const std::string& s, int lo, int hi, int* out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  int v = std::stoi(s);
  if (v < lo || v > hi) return false;
  *out = v;
  return true;
}

// "4GiB", "512MiB", "2G", "1000" (bytes).
bool ParseSize(const std::string& s, uint64_t* out) {
  size_t i = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i == 0 || i > 15) return false;
  uint64_t n = std::stoull(s.substr(0, i));
  std::string unit = s.substr(i);
  static const std::map<std::string, uint64_t> units = {{"", 1},           {"B", 1},
                                                        {"K", 1ull << 10}, {"KiB", 1ull << 10},
                                                        {"M", 1ull << 20}, {"MiB", 1ull << 20},
                                                        {"G", 1ull << 30}, {"GiB", 1ull << 30},
                                                        {"T", 1ull << 40}, {"TiB", 1ull << 40}};
  auto it = units.find(unit);
  if (it == units.end()) return false;
  *out = n * it->second;
  return true;
}

// Events shown per pool by compute status.
constexpr size_t kStatusEvents = 12;

// "2026-12-05T12:01:02Z".
std::string EventTime(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Age(int64_t since_ms) {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t s = std::max<int64_t>(0, (now - since_ms) / 1000);
  if (s < 120) return std::to_string(s) + "s";
  if (s < 7200) return std::to_string(s / 60) + "m";
  return std::to_string(s / 3600) + "h";
}

json JobJson(const compute::JobState& j) {
  json o = {{"id", j.spec.id},
            {"name", j.spec.name},
            {"pool", j.spec.pool},
            {"status", compute::JobStatusName(j.status)},
            {"attempts", j.attempts},
            {"infrastructure_failures", j.infrastructure_failures},
            {"program_failures", j.program_failures},
            {"node", j.node},
            {"reason", j.reason},
            {"log_path", j.log_path},
            {"exit_code", nullptr},
            {"signal", nullptr}};
  if (j.exit_code) o["exit_code"] = *j.exit_code;
  if (j.signal) o["signal"] = *j.signal;
  return o;
}

int Submit(const Options& o) {
  const Options::Job& f = o.job;
  compute::JobSpec spec;
  spec.pool = f.pool;
  if (f.argv.empty()) return Usage("job submit needs the command after --, e.g. -- python3 train.py");
  spec.argv = f.argv;
  if (!f.cpus.empty() && !ParseInt(f.cpus, 1, 4096, &spec.cpus)) return Usage("--cpus takes a number from 1");
  if (!f.gpus.empty() && !ParseInt(f.gpus, 0, 4096, &spec.gpus)) return Usage("--gpus takes a number");
  if (!f.memory.empty() && !ParseSize(f.memory, &spec.memory_bytes)) {
    return Usage("--memory takes a size, e.g. 4GiB, got '" + f.memory + "'");
  }
  if (!f.timeout.empty() && !ParseDuration(f.timeout, &spec.timeout_ms)) {
    return Usage("--timeout takes a duration, e.g. 30s or 2h, got '" + f.timeout + "'");
  }
  if (!f.retries_infra.empty() && !ParseInt(f.retries_infra, 0, 100, &spec.retries.infrastructure)) {
    return Usage("--retries-infra takes a number from 0 to 100");
  }
  if (!f.retries_program.empty() && !ParseInt(f.retries_program, 0, 100, &spec.retries.program)) {
    return Usage("--retries-program takes a number from 0 to 100");
  }
  for (const auto& kv : f.env) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Usage("--env takes K=V, got '" + kv + "'");
    spec.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::map<std::string, std::string> secrets;
  for (const auto& k : f.secret_env) {
    const char* v = std::getenv(k.c_str());
    if (!v) return Usage("--secret-env " + k + ": plinth's environment has no " + k + "; export it first");
    secrets[k] = v;
  }
  spec.after = f.after;
  spec.name = f.name.empty() ? fs::path(spec.argv[0]).filename().string() : f.name;
  // A fresh id for every submit from the command line (apply derives stable ones).
  std::string safe = compute::SafeJobName(spec.name);
  spec.id = spec.pool + "/" + safe + "-" + crypto::RandomHex(5);
  std::string error;
  auto queue = OpenQueue(o, true, &error);
  if (!queue) return Fail(error);
  auto state = queue->Submit(spec, std::move(secrets), &error);
  if (!state) return Fail(error);
  std::printf("%s\n", spec.id.c_str());
  std::fflush(stdout);
  if (!f.wait) return 0;
  std::stop_source never;
  auto end = queue->Wait(spec.id, never.get_token(), [](const compute::JobState& j) {
    std::fprintf(stderr, "%s%s%s\n", compute::JobStatusName(j.status), j.reason.empty() ? "" : ": ",
                 j.reason.c_str());
  });
  if (!end) return Fail("job " + spec.id + " was removed while waiting");
  return end->status == compute::JobStatus::kSucceeded ? 0 : 1;
}

int List(const Options& o) {
  std::string error;
  auto queue = OpenQueue(o, false, &error);
  if (!queue) return Fail(error);
  auto jobs = queue->ListJobs(o.job.pool);
  if (o.json) {
    json arr = json::array();
    for (const auto& j : jobs) {
      if (o.job.all || !compute::IsTerminal(j.status)) arr.push_back(JobJson(j));
    }
    json out = {{"format_version", 1}, {"jobs", std::move(arr)}};
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  for (const auto& j : jobs) {
    if (!o.job.all && compute::IsTerminal(j.status)) continue;
    std::string code = j.exit_code ? " exit " + std::to_string(*j.exit_code) : "";
    std::printf("%s  %s  attempts %d  %s%s%s%s\n", j.spec.id.c_str(), compute::JobStatusName(j.status),
                j.attempts, j.node.empty() ? "-" : j.node.c_str(), code.c_str(), j.reason.empty() ? "" : "  ",
                j.reason.c_str());
  }
  return 0;
}

int Logs(const Options& o) {
  if (o.paths.size() < 2) return Usage("job logs needs the job's ID");
  std::string error;
  auto queue = OpenQueue(o, false, &error);
  if (!queue) return Fail(error);
  const std::string& id = o.paths[1];
  auto job = queue->GetJob(id);
  if (!job) return Fail("no job " + id + " in the queue: see plinth job ls --all");
  std::ifstream in;
  std::streamoff pos = 0;
  for (;;) {
    if (!in.is_open()) in.open(job->log_path, std::ios::binary);
    if (in.is_open()) {
      in.clear();
      in.seekg(pos);
      std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      pos += static_cast<std::streamoff>(chunk.size());
      std::fwrite(chunk.data(), 1, chunk.size(), stdout);
      std::fflush(stdout);
    }
    if (!o.job.follow) return 0;
    job = queue->GetJob(id);
    if (!job || compute::IsTerminal(job->status)) {
      if (in.is_open()) {  // what came after the last read
        in.clear();
        in.seekg(pos);
        std::string rest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::fwrite(rest.data(), 1, rest.size(), stdout);
      }
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int CancelJob(const Options& o) {
  if (o.paths.size() < 2) return Usage("job cancel needs the job's ID");
  std::string error;
  auto queue = OpenQueue(o, false, &error);
  if (!queue) return Fail(error);
  if (!queue->Cancel(o.paths[1], &error)) return Fail(error);
  return 0;
}

int Status(const Options& o) {
  if (o.json && o.job.metrics) return Usage("--json and --metrics are two outputs; give one of them");
  std::string error;
  auto queue = OpenQueue(o, false, &error);
  if (!queue) return Fail(error);
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  if (o.job.metrics) {
    metrics::Exposition m;
    compute::WritePoolMetrics(*queue, now, m);
    std::fputs(m.Text().c_str(), stdout);
    return 0;
  }
  json out = {{"pools", json::array()}};
  for (const auto& pool : queue->ListPools()) {
    json p = {{"id", pool.id},
              {"min_nodes", pool.min_nodes},
              {"max_nodes", pool.max_nodes},
              {"nodes", json::array()}};
    double gpu_seconds = 0;
    for (const auto& n : queue->ListNodes(pool.id, true)) {
      int64_t end = n.ended_at_ms ? n.ended_at_ms : now;
      gpu_seconds += static_cast<double>(end - n.started_at_ms) / 1000.0 * static_cast<double>(n.gpus.size());
      if (n.ended_at_ms) continue;
      p["nodes"].push_back({{"name", n.name},
                            {"state", n.state},
                            {"age", Age(n.started_at_ms)},
                            {"gpus", n.gpus},
                            {"cpus", n.cpus},
                            {"pid", n.pid},
                            {"patch_level", n.patch_level}});
    }
    // The pool's patch rollout (docs/compute.md, "Patching nodes").
    if (!pool.patch.empty()) {
      int at_level = 0, live = 0;
      for (const auto& n : p["nodes"]) {
        ++live;
        if (n["patch_level"] == pool.patch.level) ++at_level;
      }
      json patch = {{"level", pool.patch.level},
                    {"nodes_at_level", at_level},
                    {"nodes", live},
                    {"failed_nodes", queue->PatchFailures(pool.id, pool.patch.level)},
                    {"halted", queue->PatchHalted(pool)},
                    {"window", pool.patch.window ? pool.patch.window->name : ""}};
      if (pool.patch.window && at_level < live) {
        std::string e;
        auto d = controller::DecideNamedWindow(*pool.patch.window, now / 1000, &e);
        patch["window_open"] = d && d->open;
        if (d && !d->open) patch["window_next"] = d->next;
      }
      p["patch"] = patch;
    }
    std::map<std::string, int> by_status;
    for (const auto& [status, n] : queue->CountJobs(pool.id)) by_status[compute::JobStatusName(status)] = n;
    p["queue"] = by_status;
    p["gpu_hours"] = gpu_seconds / 3600.0;
    // The pool's latest transitions with their reasons: why a shape was
    // skipped, a node provisioned, failed its health gate or decommissioned.
    p["events"] = json::array();
    for (const auto& e : queue->Events(pool.id, kStatusEvents)) {
      p["events"].push_back(
          {{"time", EventTime(e.at_ms)}, {"node", e.node}, {"job", e.job}, {"text", e.text}});
    }
    out["pools"].push_back(p);
  }
  if (o.json) {
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  }
  for (const auto& p : out["pools"]) {
    std::printf("pool %s  (nodes %d..%d, %.2f GPU-hours used)\n", p["id"].get<std::string>().c_str(),
                p["min_nodes"].get<int>(), p["max_nodes"].get<int>(), p["gpu_hours"].get<double>());
    for (const auto& n : p["nodes"]) {
      const std::string level = n["patch_level"].get<std::string>();
      std::printf("  node %s  %s  age %s  GPUs %s%s\n", n["name"].get<std::string>().c_str(),
                  n["state"].get<std::string>().c_str(), n["age"].get<std::string>().c_str(),
                  n["gpus"].dump().c_str(), level.empty() ? "" : ("  level " + level).c_str());
    }
    if (p.contains("patch")) {
      const json& pt = p["patch"];
      std::string line = "  patch: level " + pt["level"].get<std::string>() + ", " +
                         std::to_string(pt["nodes_at_level"].get<int>()) + " of " +
                         std::to_string(pt["nodes"].get<int>()) + " node(s) at it";
      if (pt["failed_nodes"].get<int>() > 0)
        line += ", " + std::to_string(pt["failed_nodes"].get<int>()) + " failed it";
      if (pt["halted"].get<bool>())
        line += "; halted (apply another level to try again)";
      else if (pt.contains("window_next"))
        line += "; waiting for maintenance window " + pt["window"].get<std::string>() + " (" +
                pt["window_next"].get<std::string>() + ")";
      std::printf("%s\n", line.c_str());
    }
    std::string q;
    for (auto& [k, v] : p["queue"].items())
      q += (q.empty() ? "" : ", ") + k + " " + std::to_string(v.get<int>());
    std::printf("  queue: %s\n", q.empty() ? "empty" : q.c_str());
    if (!p["events"].empty()) std::printf("  recent events:\n");
    for (const auto& e : p["events"]) {
      // Whom it is about, unless the text says so itself ("node east-train-1 provisioned ...").
      std::string text = e["text"].get<std::string>(), who;
      if (!e["job"].get<std::string>().empty())
        who = "job " + e["job"].get<std::string>();
      else if (!e["node"].get<std::string>().empty())
        who = "node " + e["node"].get<std::string>();
      if (!who.empty() && text.rfind(who, 0) != 0) text = who + ": " + text;
      std::printf("    %s  %s\n", e["time"].get<std::string>().c_str(),
                  runtime::EscapeControls(text).c_str());
    }
  }
  if (out["pools"].empty()) std::printf("no pools\n");
  return 0;
}

}  // namespace

int Job(const Options& o) {
  const std::string sub = o.paths.empty() ? "" : o.paths[0];
  if (sub == "submit") return Submit(o);
  if (sub == "ls") return List(o);
  if (sub == "logs") return Logs(o);
  if (sub == "cancel") return CancelJob(o);
  return Usage("job needs a subcommand: submit, ls, logs or cancel (see plinth job --help)");
}

int Compute(const Options& o) {
  const std::string sub = o.paths.empty() ? "" : o.paths[0];
  if (sub == "status") return Status(o);
  if (sub == "agent") {
    compute::QueueOptions qo;
    qo.agent_program = "/proc/self/exe";
    fs::path dir = o.job.compute_dir;
    qo.workspace_key = storage::WorkspaceKeyPath(dir.parent_path());
    return compute::RunAgent(dir, o.job.node, qo);
  }
  if (sub == "resume" || sub == "suspend" || sub == "resume-fail") return SlurmPower(o);
  return Usage(
      "compute needs a subcommand: status, resume, suspend or resume-fail (see plinth compute --help)");
}

// "30s", "10m", "2h", "500ms", "1h30m".
bool ParseDuration(const std::string& s, int64_t* ms) {
  int64_t total = 0;
  size_t i = 0;
  if (s.empty()) return false;
  while (i < s.size()) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i || j - i > 9) return false;
    int64_t n = std::stoll(s.substr(i, j - i));
    size_t k = j;
    while (k < s.size() && !(s[k] >= '0' && s[k] <= '9')) ++k;
    std::string unit = s.substr(j, k - j);
    int64_t mul = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : unit == "h" ? 3600000 : 0;
    if (mul == 0) return false;
    total += n * mul;
    i = k;
  }
  *ms = total;
  return total > 0;
}

}  // namespace plinth::cli
