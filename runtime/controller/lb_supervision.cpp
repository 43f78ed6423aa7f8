#include "runtime/controller/lb_supervision.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cstdlib>
#include <system_error>
#include <vector>

#include "runtime/controller/haproxy.h"
#include "runtime/process/process.h"

namespace plinth::controller {

namespace fs = std::filesystem;
using nlohmann::json;

std::optional<fs::path> FindHaproxy() {
  if (const char* p = std::getenv("PLINTH_HAPROXY"); p && *p) return process::FindExecutable(p, "");
  const char* path = std::getenv("PATH");
  std::string list = std::string(path ? path : "") + ":/usr/sbin:/usr/local/sbin:/sbin";
  return process::FindExecutable("haproxy", list);
}

LbLock::LbLock(const fs::path& lb_root, const std::string& name) {
  std::error_code ec;
  fs::create_directories(lb_root, ec);
  fd_ = ::open((lb_root / (name + ".lock")).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ >= 0) {
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
}

LbLock::~LbLock() {
  if (fd_ >= 0) ::close(fd_);
}

LoadBalancerSupervision::LoadBalancerSupervision(fs::path workspace_dir)
    : workspace_dir_(std::move(workspace_dir)) {}

TaskResult LoadBalancerSupervision::Pass(int64_t) {
  TaskResult r;
  const fs::path root = workspace_dir_ / "lb";
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory()) names.push_back(it->path().filename().string());
  std::sort(names.begin(), names.end());
  const std::optional<fs::path> haproxy = FindHaproxy();
  json status = json::array();
  int running = 0;
  std::string first_error;
  for (const std::string& name : names) {
    LbLock lock(root, name);
    const fs::path dir = root / name;
    if (!fs::exists(dir / "spec.json", ec)) continue;  // being created or destroyed
    HaproxyInstance instance(dir, haproxy ? *haproxy : fs::path("haproxy"));
    std::string error;
    if (!instance.spec()) {
      error = "spec.json does not parse; the next apply of the load balancer rewrites it";
    } else if (!instance.Running()) {
      if (!haproxy) {
        error = "haproxy is not installed: cannot start the load balancer again";
      } else if (auto why = instance.Apply(*instance.spec())) {
        error = "cannot start HAProxy again: " + *why;
      } else {
        ++restarts_[name];
        r.summary += (r.summary.empty() ? "" : "; ") + std::string("started HAProxy of ") + name + " again";
      }
    }
    json servers = json::array();
    std::vector<LbServerState> states;
    if (instance.Running() && !instance.ServerStates(&states)) {
      for (const LbServerState& s : states) {
        std::string replica;
        if (instance.spec())
          for (const LbBackend& b : instance.spec()->backends)
            if (b.id == s.backend_id) replica = b.replica;
        servers.push_back({{"id", s.backend_id},
                           {"replica", replica},
                           {"status", s.status},
                           {"backup", s.backup},
                           {"sessions", s.current_sessions}});
      }
    }
    running += instance.Running() ? 1 : 0;
    if (!error.empty() && first_error.empty()) first_error = "load balancer " + name + ": " + error;
    status.push_back({{"name", name},
                      {"service", instance.spec() ? instance.spec()->service : ""},
                      {"running", instance.Running()},
                      {"pid", instance.Running() ? instance.master_pid() : 0},
                      {"restarts", restarts_[name]},
                      {"last_error", error},
                      {"servers", servers}});
  }
  {
    std::lock_guard lock(mu_);
    status_ = std::move(status);
  }
  if (r.summary.empty())
    r.summary = std::to_string(running) + " of " + std::to_string(names.size()) + " load balancers running";
  if (!first_error.empty()) {
    r.ok = false;
    r.error = first_error;
  }
  return r;
}

json LoadBalancerSupervision::Status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void LoadBalancerSupervision::Metrics(metrics::Exposition& m) const {
  std::lock_guard lock(mu_);
  m.Gauge("plinth_lb_up", "1 when the load balancer's HAProxy runs");
  for (const json& s : status_) m.Sample(s.value("running", false) ? 1 : 0, {{"lb", s.value("name", "")}});
  m.Counter("plinth_lb_restarts_total", "times the controller started a load balancer's HAProxy again");
  for (const json& s : status_) m.Sample(s.value("restarts", 0), {{"lb", s.value("name", "")}});
  m.Gauge("plinth_lb_server_up", "1 when HAProxy reports the server UP");
  for (const json& s : status_) {
    for (const json& v : s.value("servers", json::array()))
      m.Sample(v.value("status", "").rfind("UP", 0) == 0 ? 1 : 0,
               {{"lb", s.value("name", "")}, {"server", v.value("id", "")}});
  }
}

PeriodicTask LoadBalancerSupervision::Task(std::chrono::milliseconds every) {
  PeriodicTask t;
  t.name = "load-balancers";
  t.every = every;
  t.run = [this](int64_t term) { return Pass(term); };
  t.status_key = "load_balancers";
  t.status = [this] { return Status(); };
  t.metrics = [this](metrics::Exposition& m) { Metrics(m); };
  return t;
}

}  // namespace plinth::controller
