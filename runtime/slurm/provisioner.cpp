#include "runtime/slurm/provisioner.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include "runtime/process/process.h"

namespace plinth::slurm {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string Now3339() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", t.tm_year + 1900, t.tm_mon + 1,
                t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ts.tv_nsec / 1000000);
  return buf;
}

// The NUL-separated argv of `pid`, or empty.
std::vector<std::string> Cmdline(pid_t pid) {
  std::string raw = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    args.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return args;
}

std::string TimeNamespace(pid_t pid) {
  std::error_code ec;
  fs::path link = fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/time", ec);
  return ec ? std::string() : link.string();
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

// The time namespaces of the node's processes: those whose environment
// carries the markers Plinth gave its slurmd (slurmstepd inherits them).
// A namespace is identified by its inode, which the kernel reuses once the
// namespace is gone, so only a live marked process names one.
std::set<std::string> NodeNamespaces(const Provisioner& p, const std::string& node) {
  std::set<std::string> found;
  const std::string host = TimeNamespace(getpid());
  const std::string want_node = "PLINTH_SLURM_NODE=" + node;
  const std::string want_file = "PLINTH_SLURM_PROVISIONER=" + p.file.string();
  for (pid_t pid : AllPids()) {
    std::string ns = TimeNamespace(pid);
    if (ns.empty() || ns == host || found.count(ns)) continue;
    std::string env = ReadFile("/proc/" + std::to_string(pid) + "/environ");
    bool has_node = false, has_file = false;
    size_t start = 0;
    while (start < env.size()) {
      size_t end = env.find('\0', start);
      if (end == std::string::npos) end = env.size();
      std::string_view var(env.data() + start, end - start);
      if (var == want_node) has_node = true;
      if (var == want_file) has_file = true;
      start = end + 1;
    }
    if (has_node && has_file) found.insert(ns);
  }
  return found;
}

std::vector<pid_t> ProcessesIn(const std::set<std::string>& namespaces) {
  std::vector<pid_t> pids;
  if (namespaces.empty()) return pids;
  const std::string host = TimeNamespace(getpid());
  for (pid_t pid : AllPids()) {
    std::string ns = TimeNamespace(pid);
    if (!ns.empty() && ns != host && namespaces.count(ns)) pids.push_back(pid);
  }
  return pids;
}

bool Alive(pid_t pid) {
  return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

double HostUptime() {
  double up = 0;
  std::ifstream in("/proc/uptime");
  in >> up;
  return up;
}

std::map<std::string, std::string> ChildEnv(const Provisioner& p, const std::string& node) {
  std::map<std::string, std::string> env = {
      {"PATH", p.path_list}, {"SLURM_CONF", p.slurm_conf.string()}, {"LANG", "C"}};
  // Markers: how suspend finds every process of this node (NodeNamespaces).
  if (!node.empty()) {
    env["PLINTH_SLURM_NODE"] = node;
    env["PLINTH_SLURM_PROVISIONER"] = p.file.string();
  }
  return env;
}

bool ResumeOne(const Provisioner& p, const ProvisionedNode& n, std::time_t requested) {
  const std::string action = "resume";
  if (pid_t pid = RunningSlurmd(n)) {
    LogTransition(p, action, n.name, "slurmd already runs (pid " + std::to_string(pid) + "): nothing to do");
    return true;
  }
  std::error_code ec;
  fs::create_directories(n.spool, ec);
  if (ec) {
    LogTransition(p, action, n.name,
                  "cannot create the spool directory " + n.spool.string() + ": " + ec.message());
    return false;
  }
  auto setsid = process::FindExecutable("setsid", p.path_list);
  auto unshare = process::FindExecutable("unshare", p.path_list);
  auto slurmd = process::FindExecutable("slurmd", p.path_list);
  if (!setsid || !unshare || !slurmd) {
    LogTransition(p, action, n.name,
                  std::string("cannot find ") +
                      (!slurmd    ? "slurmd"
                       : !unshare ? "unshare"
                                  : "setsid") +
                      " on " + p.path_list + ": install slurmd (slurm-wlm) and util-linux");
    return false;
  }
  // slurmctld counts the node as resumed only when it registers with a boot
  // time (now - uptime, whole seconds, uptime rounded up) not before the
  // request. In a time namespace whose uptime starts below one second, that
  // holds once the wall clock is two seconds past the request's second.
  while (std::time(nullptr) < requested + 2) std::this_thread::sleep_for(50ms);
  const long offset = BoottimeOffset(HostUptime());
  // The node's own hostname needs a UTS namespace, hence CAP_SYS_ADMIN (as
  // the time namespace does); without it slurmd keeps the host's.
  const bool own_uts = HasCapSysAdmin(ReadFile("/proc/self/status"));
  SlurmdLaunch launch = SlurmdCommand(n, *setsid, *unshare, *slurmd, offset, own_uts);
  process::Spec spec;
  spec.program = launch.argv.front();
  spec.args.assign(launch.argv.begin() + 1, launch.argv.end());
  // The UTS namespace is made by the process layer in its child, before it
  // execs setsid: setsid, unshare, slurmd and the jobs inherit it.
  spec.hostname = launch.hostname;
  spec.env = ChildEnv(p, n.name);
  spec.deadline = 30s;
  spec.kill_grace = 2s;
  process::Outcome out = process::Run(std::move(spec));
  if (!out.ok()) {
    LogTransition(p, action, n.name,
                  "slurmd did not start: " + out.Describe("slurmd") +
                      (n.log_file.empty() ? std::string() : " (see " + n.log_file.string() + ")"));
    return false;
  }
  // slurmd daemonizes; the daemon writes its pid file.
  pid_t pid = 0;
  auto until = std::chrono::steady_clock::now() + 30s;
  while (!(pid = RunningSlurmd(n)) && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);
  if (!pid) {
    LogTransition(p, action, n.name,
                  "slurmd exited after its start: no live process in " + n.pid_file.string() +
                      (n.log_file.empty() ? std::string() : " (see " + n.log_file.string() + ")"));
    return false;
  }
  const std::string where = launch.hostname.empty()
                                ? "in a fresh time namespace (uptime offset " + std::to_string(offset) +
                                      " s; the host's hostname: no CAP_SYS_ADMIN for a UTS namespace)"
                                : "in fresh UTS and time namespaces (hostname " + launch.hostname +
                                      ", uptime offset " + std::to_string(offset) + " s)";
  LogTransition(p, action, n.name,
                "started slurmd (pid " + std::to_string(pid) + ", " + n.address + ":" +
                    std::to_string(n.port) + ") " + where + ": requested by slurmctld power saving");
  return true;
}

// Stops the node's slurmd and everything in its time namespace. "what" says
// why, for the log.
bool StopOne(const Provisioner& p, const ProvisionedNode& n, const std::string& action,
             const std::string& why) {
  pid_t pid = RunningSlurmd(n);
  std::set<std::string> ns = NodeNamespaces(p, n.name);
  if (!pid && ns.empty()) {
    LogTransition(p, action, n.name, "slurmd is not running: nothing to stop (" + why + ")");
    return true;
  }
  bool killed = false;
  if (pid) {
    kill(pid, SIGTERM);
    auto until = std::chrono::steady_clock::now() + p.stop_grace;
    while (Alive(pid) && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(50ms);
    if (Alive(pid)) {
      kill(pid, SIGKILL);
      killed = true;
    }
  }
  // What the node leaves behind (slurmstepd, the jobs' processes) dies with it.
  size_t leftovers = 0;
  ns.merge(NodeNamespaces(p, n.name));
  for (pid_t other : ProcessesIn(ns)) {
    if (kill(other, SIGKILL) == 0) ++leftovers;
  }
  auto until = std::chrono::steady_clock::now() + 5s;
  while (!ProcessesIn(ns).empty() && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(50ms);
  if (!ProcessesIn(ns).empty()) {
    LogTransition(p, action, n.name, "processes of the node survived SIGKILL");
    return false;
  }
  std::string text = "stopped slurmd";
  if (pid) text += " (pid " + std::to_string(pid) + (killed ? ", SIGKILL after the grace)" : ", SIGTERM)");
  if (leftovers) text += " and " + std::to_string(leftovers) + " leftover process(es) of the node";
  LogTransition(p, action, n.name, text + ": " + why);
  return true;
}

template <typename F>
PowerReport ForEach(const Provisioner& p, const std::string& action, const std::vector<std::string>& nodes,
                    F f) {
  PowerReport r;
  for (const std::string& name : nodes) {
    auto it = p.nodes.find(name);
    if (it == p.nodes.end()) {
      LogTransition(p, action, name,
                    "not in the provisioner file " + p.file.string() + ": add it there (and to slurm.conf)");
      r.failed.push_back(name);
      continue;
    }
    (f(it->second) ? r.done : r.failed).push_back(name);
  }
  return r;
}

}  // namespace

SlurmdLaunch SlurmdCommand(const ProvisionedNode& node, const fs::path& setsid, const fs::path& unshare,
                           const fs::path& slurmd, long boottime_offset, bool own_uts) {
  // The process layer kills the child's process group once the child exits.
  // slurmd daemonizes (fork, parent exits, child setsid): between the two the
  // daemon is still in the group and would die with it. `setsid --fork
  // --wait` moves unshare and slurmd into a session of their own before
  // anything exits, and exits only after slurmd's foreground parent did.
  SlurmdLaunch l;
  l.argv = {setsid.string(),
            "--fork",
            "--wait",
            unshare.string(),
            "--time",
            "--boottime=" + std::to_string(boottime_offset),
            "--fork",
            "--",
            slurmd.string(),
            "-f",
            node.config.string(),
            "-N",
            node.name};
  if (own_uts) l.hostname = node.hostname.empty() ? node.name : node.hostname;
  return l;
}

bool HasCapSysAdmin(std::string_view status) {
  constexpr std::string_view kKey = "CapEff:";
  size_t at = 0;
  while (at < status.size()) {
    size_t end = status.find('\n', at);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(at, end - at);
    at = end + 1;
    if (line.substr(0, kKey.size()) != kKey) continue;
    line.remove_prefix(kKey.size());
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    unsigned long long caps = 0;
    size_t digits = 0;
    for (char c : line) {
      int v = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (v < 0 || ++digits > 16) return false;
      caps = caps << 4 | static_cast<unsigned>(v);
    }
    constexpr int kCapSysAdmin = 21;
    return digits > 0 && (caps >> kCapSysAdmin & 1) != 0;
  }
  return false;
}

bool ValidHostname(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

long BoottimeOffset(double host_uptime_seconds) {
  if (!(host_uptime_seconds > 0)) return 0;
  return -static_cast<long>(std::floor(host_uptime_seconds));
}

pid_t RunningSlurmd(const ProvisionedNode& node) {
  std::string text = ReadFile(node.pid_file);
  long pid = 0;
  try {
    pid = std::stol(text);
  } catch (...) {
    return 0;
  }
  if (pid <= 0) return 0;
  std::vector<std::string> args = Cmdline(static_cast<pid_t>(pid));
  if (args.empty() || fs::path(args[0]).filename() != "slurmd") return 0;
  for (size_t i = 1; i + 1 < args.size(); ++i)
    if (args[i] == "-N" && args[i + 1] == node.name) return static_cast<pid_t>(pid);
  return 0;
}

void LogTransition(const Provisioner& p, const std::string& action, const std::string& node,
                   const std::string& text) {
  std::fprintf(stderr, "plinth compute %s: %s: %s\n", action.c_str(), node.c_str(), text.c_str());
  if (p.log_path.empty()) return;
  std::ofstream log(p.log_path, std::ios::app);
  log << Now3339() << " " << action << " " << node << ": " << text << "\n";
}

std::optional<Provisioner> LoadProvisioner(const fs::path& file, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = "provisioner file " + file.string() + ": " + why;
    return std::nullopt;
  };
  std::error_code ec;
  if (!fs::is_regular_file(file, ec))
    return fail(
        "not found: pass --provisioner=FILE or set PLINTH_SLURM_PROVISIONER (docs/providers/slurm.md)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ReadFile(file));
  } catch (const std::exception& e) {
    return fail(std::string("is not JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("nodes") || !j["nodes"].is_object())
    return fail("needs an object \"nodes\": {NAME: {config, spool, pid_file, ...}}");
  Provisioner p;
  p.file = fs::absolute(file);
  p.log_path = p.file.parent_path() / "provisioner.log";
  if (j.contains("slurm_conf") && j["slurm_conf"].is_string())
    p.slurm_conf = j["slurm_conf"].get<std::string>();
  for (const auto& item : j["nodes"].items()) {
    // Not a structured binding: clang 14 (the fuzz build) cannot capture one in a lambda.
    const std::string& name = item.key();
    const nlohmann::json& v = item.value();
    if (!v.is_object()) return fail("node " + name + " is not an object");
    ProvisionedNode n;
    n.name = name;
    auto str = [&](const char* key) {
      return v.contains(key) && v[key].is_string() ? v[key].get<std::string>() : "";
    };
    n.address = str("address");
    if (v.contains("port") && v["port"].is_number_integer()) n.port = v["port"].get<int>();
    n.config = str("config");
    n.spool = str("spool");
    n.pid_file = str("pid_file");
    n.log_file = str("log_file");
    n.hostname = str("hostname");
    if (n.hostname.empty()) n.hostname = name;
    if (n.config.empty() || n.spool.empty() || n.pid_file.empty())
      return fail("node " + name + " needs \"config\", \"spool\" and \"pid_file\" (strings)");
    if (!ValidHostname(n.hostname))
      return fail(
          "node " + name + ": '" + n.hostname +
          "' is not a valid hostname (1 to 64 letters, digits, '-', '_' or '.'): set its \"hostname\" "
          "(slurm.conf's NodeHostname)");
    if (p.slurm_conf.empty()) p.slurm_conf = n.config;
    p.nodes.emplace(name, std::move(n));
  }
  const char* path = std::getenv("PATH");
  p.path_list = path && *path ? path : kDefaultPath;
  // slurmctld runs its programs with a bare environment: add the usual places.
  p.path_list += std::string(":") + kDefaultPath;
  return p;
}

PowerReport Resume(const Provisioner& p, const std::vector<std::string>& nodes) {
  const std::time_t requested = std::time(nullptr);
  return ForEach(p, "resume", nodes, [&](const ProvisionedNode& n) { return ResumeOne(p, n, requested); });
}

PowerReport Suspend(const Provisioner& p, const std::vector<std::string>& nodes) {
  return ForEach(p, "suspend", nodes, [&](const ProvisionedNode& n) {
    return StopOne(p, n, "suspend", "suspended by slurmctld power saving (idle past SuspendTime)");
  });
}

PowerReport ResumeFail(const Provisioner& p, const std::vector<std::string>& nodes) {
  const std::string action = "resume-fail";
  return ForEach(p, action, nodes, [&](const ProvisionedNode& n) {
    LogTransition(p, action, n.name,
                  "slurmctld reports the node did not come up within ResumeTimeout" +
                      (n.log_file.empty() ? std::string() : " (see " + n.log_file.string() + ")"));
    StopOne(p, n, action, "released after a failed resume");
    auto scontrol = process::FindExecutable("scontrol", p.path_list);
    if (!scontrol) {
      LogTransition(p, action, n.name, "cannot find scontrol on " + p.path_list + ": install slurm-client");
      return false;
    }
    process::Spec spec;
    spec.program = *scontrol;
    spec.args = {"update", "NodeName=" + n.name, "State=DOWN",
                 "Reason=plinth: resume failed (no registration within ResumeTimeout)"};
    spec.env = ChildEnv(p, "");
    spec.deadline = 30s;
    process::Outcome out = process::Run(std::move(spec));
    if (!out.ok()) {
      LogTransition(p, action, n.name, "could not set the node DOWN: " + out.Describe("scontrol"));
      return false;
    }
    LogTransition(p, action, n.name, "set DOWN with reason \"plinth: resume failed\"");
    return true;
  });
}

}  // namespace plinth::slurm
