// region fail|recover|status: run-time failure drills for the local
// provider's regions (docs/services.md, "Regions that fail"). A namespaced
// region (isolation = "namespace") fails by its veth link going down: its
// replicas keep running but lose the network. A region without a namespace
// fails by the fallback: its replicas (found in the supervisor's database,
// pid + start time verified) are frozen with SIGSTOP. Either way the failure
// is recorded (runtime/controller/region_faults.h) until recover undoes it.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "runtime/controller/region_faults.h"
#include "runtime/controller/region_replicas.h"
#include "runtime/providers/local/provider.h"
#include "runtime/providers/local/region_network.h"

namespace plinth::cli {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

using runtime::LocalProvider;
namespace net = runtime::region_network;

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

std::string TimeText(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct Workspace {
  fs::path dir;        // DIR/.plinth/WORKSPACE
  fs::path data_root;  // its local provider's data
};

std::vector<LocalProvider::RegionSummary> RegionsOf(const Workspace& ws) {
  std::error_code ec;
  if (!fs::is_directory(ws.data_root, ec)) return {};
  LocalProvider provider(fs::absolute(ws.data_root, ec));
  return provider.Regions();
}

int UnknownRegion(const std::string& name, const std::vector<LocalProvider::RegionSummary>& regions,
                  const Workspace& ws) {
  if (regions.empty())
    return Fail("no region '" + name + "': the workspace at '" + ws.dir.string() +
                "' has no regions; apply a configuration with regions first");
  std::string known;
  for (const auto& r : regions) known += (known.empty() ? "'" : ", '") + r.name + "'";
  return Fail("no region '" + name + "' in the workspace at '" + ws.dir.string() + "'; its regions are " +
              known);
}

int FailRegion(const Workspace& ws, const LocalProvider::RegionSummary& r) {
  controller::RegionFault existing;
  if (controller::ReadRegionFault(ws.dir, r.name, &existing)) {
    std::printf("region %s is already failed (since %s, %s); nothing changed\n", r.name.c_str(),
                TimeText(existing.since).c_str(), existing.method.c_str());
    return 0;
  }
  controller::RegionFault fault;
  fault.region = r.name;
  fault.since =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  std::string error;
  std::string what;
  if (r.namespaced) {
    const net::RegionNetwork n = net::NetworkFor(r.dir, r.name, r.host);
    if (!net::LinkUp(n))
      return Fail("region " + r.name + " has no network link " + n.host_link +
                  " (its namespace is gone, e.g. after a reboot): run plinth apply to make it again");
    fault.method = "namespace";
    // Record first: a controller that sees the link down knows why.
    if (!controller::RecordRegionFault(ws.dir, fault, &error)) return Fail(error);
    if (!net::SetLinkUp(n, false, &error)) {
      std::string ignored;
      controller::ClearRegionFault(ws.dir, r.name, &ignored);
      return Fail("cannot take the link of region " + r.name + " down: " + error);
    }
    what = "its link " + n.host_link + " is down: its replicas run on without a network";
  } else {
    fault.method = "stopped";
    std::vector<controller::RecordedReplica> replicas;
    if (!controller::LiveReplicasOf(ws.dir / "controller" / "replicas.db", r.name, &replicas, &error))
      return Fail(error);
    if (!controller::RecordRegionFault(ws.dir, fault, &error)) return Fail(error);
    const int n = controller::SignalReplicas(replicas, SIGSTOP);
    what = std::to_string(n) + (n == 1 ? " replica" : " replicas") +
           " stopped (SIGSTOP; the region has no network namespace)";
  }
  std::printf("region %s failed: %s\n", r.name.c_str(), what.c_str());
  return 0;
}

int RecoverRegion(const Workspace& ws, const LocalProvider::RegionSummary& r) {
  controller::RegionFault fault;
  const bool recorded = controller::ReadRegionFault(ws.dir, r.name, &fault);
  if (!recorded && !fs::exists(controller::RegionFaultFile(ws.dir, r.name))) {
    std::printf("region %s is not failed; nothing changed\n", r.name.c_str());
    return 0;
  }
  std::string error;
  std::string what;
  // An unreadable record: undo both ways.
  const std::string method = recorded ? fault.method : (r.namespaced ? "namespace" : "stopped");
  if (method == "namespace") {
    const net::RegionNetwork n = net::NetworkFor(r.dir, r.name, r.host);
    if (net::LinkUp(n)) {
      if (!net::SetLinkUp(n, true, &error))
        return Fail("cannot bring the link of region " + r.name + " up: " + error);
      what = "its link " + n.host_link + " is up";
    } else {
      what = "its link " + n.host_link + " is gone (run plinth apply to make it again)";
    }
  } else {
    std::vector<controller::RecordedReplica> replicas;
    if (!controller::LiveReplicasOf(ws.dir / "controller" / "replicas.db", r.name, &replicas, &error))
      return Fail(error);
    const int n = controller::SignalReplicas(replicas, SIGCONT);
    what = std::to_string(n) + (n == 1 ? " replica" : " replicas") + " continued (SIGCONT)";
  }
  if (!controller::ClearRegionFault(ws.dir, r.name, &error)) return Fail(error);
  std::printf("region %s recovered: %s\n", r.name.c_str(), what.c_str());
  return 0;
}

int DelayRegion(const LocalProvider::RegionSummary& r, const std::string& delay, const std::string& loss) {
  auto valid = [](const std::string& s, const std::string& unit) {
    if (s.size() <= unit.size() || s.compare(s.size() - unit.size(), unit.size(), unit) != 0) return false;
    const std::string n = s.substr(0, s.size() - unit.size());
    return n.find_first_not_of("0123456789.") == std::string::npos && n.find_first_of("0123456789") == 0;
  };
  if (!valid(delay, "ms") && delay != "0")
    return Fail("the delay is '" + delay + "': give milliseconds such as 50ms (0ms removes the delay)");
  if (!loss.empty() && !valid(loss, "%"))
    return Fail("--loss is '" + loss + "': give a percentage such as 1%");
  if (!r.namespaced)
    return Fail("region " + r.name + " has no network namespace: delay needs isolation = \"namespace\"");
  std::string error;
  if (!net::SetNetem(net::NetworkFor(r.dir, r.name, r.host), delay, loss, &error)) return Fail(error);
  if ((delay == "0ms" || delay == "0") && loss.empty())
    std::printf("region %s: no injected delay or loss\n", r.name.c_str());
  else
    std::printf("region %s: its traffic is delayed %s%s\n", r.name.c_str(), delay.c_str(),
                loss.empty() ? "" : (" and " + loss + " of it is lost").c_str());
  return 0;
}

int Status(const Workspace& ws, const std::vector<LocalProvider::RegionSummary>& regions, bool as_json) {
  json list = json::array();
  for (const auto& r : regions) {
    json j = {{"name", r.name},
              {"host", r.host},
              {"isolation", r.namespaced ? "namespace" : "none"},
              {"down", r.down},
              {"failed", false}};
    if (r.namespaced) {
      const net::RegionNetwork n = net::NetworkFor(r.dir, r.name, r.host);
      j["netns"] = n.netns;
      j["isolated"] = net::Intact(n);
      std::optional<bool> up = net::LinkUp(n);
      j["link"] = !up ? "missing" : *up ? "up" : "down";
    }
    controller::RegionFault fault;
    if (controller::ReadRegionFault(ws.dir, r.name, &fault)) {
      j["failed"] = true;
      j["since"] = fault.since;
      j["method"] = fault.method;
    } else if (fs::exists(controller::RegionFaultFile(ws.dir, r.name))) {
      j["failed"] = true;  // an unreadable record counts as failed
    }
    list.push_back(std::move(j));
  }
  if (as_json) {
    std::printf("%s\n", json{{"regions", list}}.dump(2).c_str());
    return 0;
  }
  if (list.empty()) {
    std::printf("no regions in the workspace at '%s'\n", ws.dir.string().c_str());
    return 0;
  }
  std::printf("%-16s %-15s %-10s %-8s %s\n", "REGION", "HOST", "ISOLATION", "LINK", "FAILED");
  for (const json& j : list) {
    std::string failed = "-";
    if (j["failed"].get<bool>())
      failed = j.contains("since") ? "since " + TimeText(j["since"].get<int64_t>()) + " (" +
                                         j["method"].get<std::string>() + ")"
                                   : "yes (unreadable record)";
    if (j["down"].get<bool>()) failed += failed == "-" ? "" : ";", failed += " down in the configuration";
    std::printf("%-16s %-15s %-10s %-8s %s\n", j["name"].get<std::string>().c_str(),
                j["host"].get<std::string>().c_str(), j["isolation"].get<std::string>().c_str(),
                j.contains("link") ? j["link"].get<std::string>().c_str() : "-", failed.c_str());
  }
  return 0;
}

}  // namespace

int Region(const Options& options) {
  const std::vector<std::string>& p = options.paths;
  if (p.empty()) return Fail("plinth region needs a subcommand: fail, recover or status");
  const std::string& sub = p[0];
  std::string name, dir, delay;
  if (sub == "status") {
    dir = p.size() > 1 ? p[1] : ConfigDir(options);
  } else if (sub == "delay") {
    if (p.size() < 3) return Fail("plinth region delay needs the region's name and a delay such as 50ms");
    name = p[1];
    delay = p[2];
    dir = p.size() > 3 ? p[3] : ConfigDir(options);
  } else {
    if (p.size() < 2) return Fail("plinth region " + sub + " needs the region's name");
    name = p[1];
    dir = p.size() > 2 ? p[2] : ConfigDir(options);
  }
  if (!ExistingDir(dir)) return 1;
  Workspace ws;
  ws.dir = fs::path(dir) / ".plinth" / options.workspace;
  ws.data_root = ws.dir / "data";
  const auto regions = RegionsOf(ws);
  if (sub == "status") return Status(ws, regions, options.json);
  for (const auto& r : regions) {
    if (r.name != name) continue;
    if (sub == "delay") return DelayRegion(r, delay, options.region_loss);
    return sub == "fail" ? FailRegion(ws, r) : RecoverRegion(ws, r);
  }
  return UnknownRegion(name, regions, ws);
}

}  // namespace plinth::cli
