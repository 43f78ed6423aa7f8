#include "runtime/controller/controller.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/crypto/aead.h"
#include "runtime/io/durable.h"
#include "runtime/metrics/exposition.h"

namespace plinth::controller {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

double Seconds(Clock::TimePoint::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Reads the token file, or creates it (exclusively, by link(2) of a fully
// written private temp file, so concurrent controllers agree on one token
// and no reader sees a partial one).
bool LoadOrCreateToken(const fs::path& path, std::string* token, std::string* error) {
  std::string fresh = crypto::RandomHex(32);
  if (fresh.empty()) {
    *error = "cannot make a token: no randomness";
    return false;
  }
  fs::path tmp = path.parent_path() / (".token." + crypto::RandomHex(8) + ".tmp");
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    *error = "cannot create '" + tmp.string() + "': " + std::strerror(errno);
    return false;
  }
  std::string line = fresh + "\n";
  bool wrote = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (wrote && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) wrote = false;
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (!wrote) {
    *error = "cannot write the token file '" + path.string() + "': " + std::strerror(link_errno);
    return false;
  }
  io::SyncDir(path.parent_path());
  int rfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st {};
  if (rfd < 0 || ::fstat(rfd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "cannot read the token file '" + path.string() + "': " + std::strerror(rfd < 0 ? errno : EINVAL);
    if (rfd >= 0) ::close(rfd);
    return false;
  }
  if (st.st_mode & 077) {
    ::close(rfd);
    *error = "the token file '" + path.string() +
             "' is readable by others; chmod 600 it or delete it (a new one "
             "is created)";
    return false;
  }
  char buf[256];
  ssize_t n = ::read(rfd, buf, sizeof buf);
  ::close(rfd);
  std::string text = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (text.size() < 32) {
    *error = "the token file '" + path.string() +
             "' holds no usable token (32 characters or more); delete it "
             "(a new one is created)";
    return false;
  }
  *token = text;
  return true;
}

json TaskJson(const TaskStatus& t) {
  return {{"name", t.name},
          {"runs", t.runs},
          {"failures", t.failures},
          {"last_run", Rfc3339Ms(t.last_run_ms)},
          {"last_success", Rfc3339Ms(t.last_success_ms)},
          {"last_duration_seconds", t.last_duration_s},
          {"last_summary", t.last_summary},
          {"last_error", t.last_error}};
}

}  // namespace

std::string Rfc3339Ms(int64_t wall_ms) {
  if (wall_ms <= 0) return "";
  std::time_t secs = static_cast<std::time_t>(wall_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(wall_ms % 1000));
  return buf;
}

Controller::Controller(ControllerOptions options, Clock& clock, std::vector<PeriodicTask> tasks)
    : options_(std::move(options)), clock_(clock) {
  if (options_.holder_id.empty()) options_.holder_id = NewHolderId();
  for (PeriodicTask& t : tasks) {
    Task task;
    task.status.name = t.name;
    task.spec = std::move(t);
    tasks_.push_back(std::move(task));
  }
  started_at_ms_ = clock_.WallMs();
  last_progress_ = clock_.Now();
}

Controller::~Controller() = default;

bool Controller::Open(std::string* error) {
  if (int e = io::MakeDirs(options_.dir, 0700)) {
    *error = "cannot create '" + options_.dir.string() + "': " + std::strerror(e);
    return false;
  }
  if (!LoadOrCreateToken(options_.dir / "token", &token_, error)) return false;
  lease_ =
      Lease::Open(options_.dir / "lease.db", "controller", options_.holder_id, ::getpid(), clock_, error);
  return lease_ != nullptr;
}

void Controller::Tick() {
  const Clock::TimePoint start = clock_.Now();
  LeaseOutcome lease = lease_->TryAcquire(options_.lease_ttl);
  std::vector<Task*> due;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lease.held && !leading_) leader_since_ms_ = clock_.WallMs();
    leading_ = lease.held;
    if (!leading_) leader_since_ms_ = 0;
    if (lease.error.empty()) {
      term_ = lease.record.term;
      lease_record_ = lease.record;
    } else {
      last_error_ = lease.error;
      ++loop_errors_;
    }
    if (leading_) {
      for (Task& t : tasks_) {
        if (!t.ran || start >= t.next_due || requested_.count(t.spec.name)) due.push_back(&t);
      }
    }
  }
  for (Task* t : due) {
    const Clock::TimePoint t0 = clock_.Now();
    const int64_t wall0 = clock_.WallMs();
    int64_t term;
    {
      std::lock_guard<std::mutex> lock(mu_);
      term = term_;
      requested_.erase(t->spec.name);
    }
    TaskResult r = t->spec.run(term);
    {
      std::lock_guard<std::mutex> lock(mu_);
      t->ran = true;
      t->next_due = t0 + t->spec.every;
      TaskStatus& s = t->status;
      ++s.runs;
      s.last_run_ms = wall0;
      s.last_duration_s = Seconds(clock_.Now() - t0);
      s.last_summary = r.summary;
      s.last_error = r.ok ? "" : r.error;
      if (r.ok)
        s.last_success_ms = clock_.WallMs();
      else {
        ++s.failures;
        last_error_ = t->spec.name + ": " + r.error;
        ++loop_errors_;
      }
    }
    // A task may outlast the lease: check that we still lead before the next.
    LeaseOutcome again = lease_->TryAcquire(options_.lease_ttl);
    std::lock_guard<std::mutex> lock(mu_);
    if (again.error.empty()) {
      term_ = again.record.term;
      lease_record_ = again.record;
    }
    leading_ = again.held;
    if (!leading_) leader_since_ms_ = 0;
    if (!leading_) break;
  }
  bool write;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++loops_;
    last_progress_ = clock_.Now();
    last_loop_s_ = Seconds(last_progress_ - start);
    updated_at_ms_ = clock_.WallMs();
    write = leading_;
  }
  if (write) WriteStatusFile();
}

void Controller::WriteStatusFile() {
  std::string text = StatusJson() + "\n";
  const char* stage = nullptr;
  if (int e = io::WriteFileAtomic(options_.dir / "status.json", text, 0644, &stage)) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = std::string("cannot ") + (stage ? stage : "write") + " '" +
                  (options_.dir / "status.json").string() + "': " + std::strerror(e);
    ++loop_errors_;
  }
}

void Controller::Run(const std::atomic<bool>& stop) {
  while (!stop) {
    const Clock::TimePoint next = clock_.Now() + options_.interval;
    Tick();
    while (!stop && clock_.Now() < next && !wake_.exchange(false)) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock_.Now());
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(100)));
    }
  }
  Shutdown();
}

void Controller::Shutdown() {
  if (!lease_) return;
  bool was_leading;
  {
    std::lock_guard<std::mutex> lock(mu_);
    was_leading = leading_;
    leading_ = false;
    leader_since_ms_ = 0;
    stopped_ = true;
    updated_at_ms_ = clock_.WallMs();
  }
  // The status file says the workspace's controller stopped (not a stale
  // "leader"); written while the lease is still ours, so it can never
  // overwrite the status of a controller that took over.
  if (was_leading) WriteStatusFile();
  LeaseOutcome r = lease_->Release();
  if (!r.error.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    last_error_ = r.error;
  }
}

bool Controller::RequestRun(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Task& t : tasks_) {
    if (t.spec.name == name) {
      requested_.insert(name);
      wake_ = true;
      return true;
    }
  }
  return false;
}

void Controller::SetListen(std::string listen) {
  std::lock_guard<std::mutex> lock(mu_);
  options_.listen = std::move(listen);
}

bool Controller::Healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return clock_.Now() - last_progress_ <= 3 * options_.interval;
}

bool Controller::leading() const {
  std::lock_guard<std::mutex> lock(mu_);
  return leading_;
}

int64_t Controller::term() const {
  std::lock_guard<std::mutex> lock(mu_);
  return term_;
}

std::string Controller::MetricsText() const {
  const bool healthy = Healthy();
  std::lock_guard<std::mutex> lock(mu_);
  metrics::Exposition m;
  m.GaugeValue("plinth_controller_up",
               "1 while the controller's loop is alive (0: stuck for over 3 intervals)", healthy ? 1 : 0);
  m.GaugeValue("plinth_controller_leader", "1 when this controller holds the workspace's lease",
               leading_ ? 1 : 0);
  m.GaugeValue("plinth_controller_term", "the lease's term (fencing token) last seen",
               static_cast<double>(term_));
  m.CounterValue("plinth_controller_loop_iterations_total", "passes of the control loop",
                 static_cast<double>(loops_));
  m.CounterValue("plinth_controller_loop_errors_total",
                 "errors in passes of the control loop (lease, tasks, status)",
                 static_cast<double>(loop_errors_));
  m.GaugeValue("plinth_controller_loop_duration_seconds", "how long the last pass took", last_loop_s_);
  m.GaugeValue("plinth_controller_interval_seconds", "the loop's interval",
               std::chrono::duration<double>(options_.interval).count());
  m.GaugeValue("plinth_controller_lease_ttl_seconds", "the lease's time to live",
               std::chrono::duration<double>(options_.lease_ttl).count());
  m.GaugeValue("plinth_controller_start_time_seconds", "when this controller started, Unix time",
               static_cast<double>(started_at_ms_) / 1000.0);
  m.Gauge("plinth_controller_last_sweep_timestamp_seconds",
          "when each periodic task (sweep) last succeeded, Unix time; 0: never");
  for (const Task& t : tasks_)
    m.Sample(static_cast<double>(t.status.last_success_ms) / 1000.0, {{"task", t.spec.name}});
  m.Counter("plinth_controller_sweep_runs_total", "runs of each periodic task (sweep) by this controller");
  for (const Task& t : tasks_) m.Sample(static_cast<double>(t.status.runs), {{"task", t.spec.name}});
  m.Counter("plinth_controller_sweep_failures_total",
            "failed runs of each periodic task (sweep) by this controller");
  for (const Task& t : tasks_) m.Sample(static_cast<double>(t.status.failures), {{"task", t.spec.name}});
  m.Gauge("plinth_controller_sweep_duration_seconds", "how long each periodic task's last run took");
  for (const Task& t : tasks_) m.Sample(t.status.last_duration_s, {{"task", t.spec.name}});
  for (const Task& t : tasks_)
    if (t.spec.metrics) t.spec.metrics(m);
  return m.Text();
}

std::string Controller::StatusJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  return StatusJsonLocked();
}

std::string Controller::StatusJsonLocked() const {
  json sweeps = json::array();
  for (const Task& t : tasks_) sweeps.push_back(TaskJson(t.status));
  json doc = {{"format_version", 1},
              {"leader", leading_},
              {"term", term_},
              {"leader_since", Rfc3339Ms(leader_since_ms_)},
              {"leader_since_ms", leader_since_ms_},
              {"holder", lease_record_.holder_id},
              {"holder_pid", lease_record_.holder_pid},
              {"lease_expires_at", Rfc3339Ms(lease_record_.expires_at_ms)},
              {"self", options_.holder_id},
              {"pid", static_cast<int64_t>(::getpid())},
              {"listen", options_.listen},
              {"started_at", Rfc3339Ms(started_at_ms_)},
              {"updated_at", Rfc3339Ms(updated_at_ms_)},
              {"updated_at_ms", updated_at_ms_},
              {"interval_ms", static_cast<int64_t>(options_.interval.count())},
              {"lease_ttl_ms", static_cast<int64_t>(options_.lease_ttl.count())},
              {"loops", loops_},
              {"stopped", stopped_},
              {"last_error", last_error_},
              {"sweeps", sweeps}};
  for (const Task& t : tasks_)
    if (t.spec.status && !t.spec.status_key.empty()) doc[t.spec.status_key] = t.spec.status();
  return doc.dump(2);
}

void Controller::Attach(HttpServer& server) {
  server.Get("/healthz", [this](const HttpRequest&) {
    HttpResponse r;
    bool ok = Healthy();
    r.status = ok ? 200 : 503;
    r.body = ok ? "ok\n" : "stuck: no pass of the control loop finished in 3 intervals\n";
    return r;
  });
  server.Get("/metrics", [this](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = MetricsText();
    return r;
  });
  server.Get("/status", [this](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = StatusJson() + "\n";
    return r;
  });
  server.Post("/run", [this](const HttpRequest& req) {
    HttpResponse r;
    std::string name;
    if (req.query.rfind("task=", 0) == 0) name = req.query.substr(5);
    if (name.empty() || !RequestRun(name)) {
      r.status = 404;
      r.body = "no task '" + name + "'; POST /run?task=NAME with a task that GET /status lists\n";
      return r;
    }
    r.status = 202;
    r.body = "task '" + name + "' runs at the next pass (when this controller leads)\n";
    return r;
  });
}

}  // namespace plinth::controller
