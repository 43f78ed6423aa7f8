// The replica supervisor (see supervisor.h and docs/services.md).
#include "runtime/controller/supervisor.h"
#include "runtime/io/durable.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "runtime/io/sqlite.h"
#include "runtime/process/process.h"

namespace plinth::controller {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

using Stmt = io::SqliteStmt;

bool ValidId(const std::string& id) {
  if (id.empty() || id.size() > 128 || id[0] == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
  });
}

// SHA-256 (hex) of what makes a process different: argv, cwd, port, log
// file and the environment. Stored so that a later Supervisor can tell an
// unchanged replica (adopt) from a changed one (replace); the environment
// enters only through this one-way digest.
std::string SpecDigest(const ReplicaSpec& s) {
  std::string text;
  auto field = [&](std::string_view v) {
    text += std::to_string(v.size());
    text += ':';
    text += v;
  };
  field("argv");
  for (const auto& a : s.argv) field(a);
  field("cwd");
  field(s.cwd.string());
  field("port");
  field(std::to_string(s.port));
  field("log");
  field(s.log_file.string());
  // Only when set, so that the digests of replicas recorded before netns
  // existed stay the same (no restart on upgrade).
  if (!s.netns.empty()) {
    field("netns");
    field(s.netns);
  }
  if (!s.user.empty()) {
    field("user");
    field(s.user);
  }
  field("env");
  for (const auto& [k, v] : s.env) {
    field(k);
    field(v);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  OPENSSL_cleanse(text.data(), text.size());
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

int64_t Ms(Clock::TimePoint::duration d) {
  return std::chrono::duration_cast<milliseconds>(d).count();
}

std::string SecondsText(int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  return std::to_string(ms) + " ms";
}

}  // namespace

std::string ValidateReplica(const ReplicaSpec& spec) {
  if (!ValidId(spec.id))
    return "replica id '" + spec.id + "' is invalid: use letters, digits, '.', '_' and '-' (at most 128)";
  if (spec.argv.empty() || spec.argv[0].empty())
    return "replica " + spec.id + " has no command: give argv with the program first";
  if (spec.log_file.empty()) return "replica " + spec.id + " has no log file: give log_file";
  if (spec.port < 0 || spec.port > 65535) return "replica " + spec.id + " port is out of range (0-65535)";
  const std::pair<const std::optional<ProbeSpec>*, const char*> probes[] = {
      {&spec.liveness, "liveness"}, {&spec.readiness, "readiness"}, {&spec.startup, "startup"}};
  for (auto [probe, name] : probes) {
    if (!*probe) continue;
    std::string why = ValidateProbe(**probe, std::string_view(name) != "readiness");
    if (!why.empty()) return "replica " + spec.id + " " + name + " probe: " + why;
  }
  return "";
}

std::string_view ReplicaPhaseName(ReplicaPhase p) {
  switch (p) {
    case ReplicaPhase::kStarting: return "starting";
    case ReplicaPhase::kRunning: return "running";
    case ReplicaPhase::kTerminating: return "terminating";
    case ReplicaPhase::kBackoff: return "backoff";
    case ReplicaPhase::kStopped: return "stopped";
    case ReplicaPhase::kUnmanaged: return "unmanaged";
  }
  return "unknown";
}

nlohmann::json SnapshotJson(const ReplicaSnapshot& s) {
  nlohmann::json events = nlohmann::json::array();
  for (const auto& e : s.events) events.push_back({{"at_ms", e.at_ms}, {"text", e.text}});
  return {{"id", s.id},
          {"phase", std::string(ReplicaPhaseName(s.phase))},
          {"pid", s.pid},
          {"start_time", s.start_time},
          {"ready", s.ready},
          {"ready_for_ms", s.ready_for_ms},
          {"liveness", std::string(ProbeStateName(s.liveness))},
          {"readiness", std::string(ProbeStateName(s.readiness))},
          {"startup", std::string(ProbeStateName(s.startup))},
          {"restarts", s.restarts},
          {"last_start_ms", s.last_start_ms},
          {"backoff_ms", s.backoff_ms},
          {"next_start_ms", s.next_start_ms},
          {"last_error", s.last_error},
          {"events", std::move(events)}};
}

struct Supervisor::Replica {
  std::string id;
  std::optional<ReplicaSpec> spec;  // nullopt: recorded but not Added
  std::string digest;               // of spec, or as recorded
  ReplicaPhase phase = ReplicaPhase::kBackoff;
  pid_t pid = 0;
  uint64_t start_time = 0;
  int restarts = 0;
  int64_t last_start_ms = 0;
  int64_t backoff_ms = 0;      // the delay the next exit waits
  bool pending_start = false;  // kBackoff: next_start is set
  Clock::TimePoint next_start{};
  Clock::TimePoint running_since{};  // start or adoption: for the back-off reset
  bool started = false;              // its startup probe succeeded (or it has none)
  bool stopped = false;              // Stop was asked and not undone by Start
  bool removing = false;             // Remove was asked
  bool restart_now = false;          // kTerminating: start again at once (spec changed)
  Clock::TimePoint kill_at{};        // kTerminating: SIGKILL from here
  bool killed = false;               // kTerminating: SIGKILL sent
  std::optional<ProbeTracker> liveness, readiness, startup;
  bool ready_reported = false;
  Clock::TimePoint ready_since{};  // when ready_reported last changed
  std::string last_error;
  std::deque<ReplicaEvent> events;
};

Supervisor::Supervisor(sqlite3* db, Clock& clock, Options options)
    : db_(db), clock_(clock), options_(std::move(options)) {}

Supervisor::~Supervisor() {
  sqlite3_close(db_);
}

std::unique_ptr<Supervisor> Supervisor::Open(const fs::path& db, Clock& clock, Options options,
                                             std::string* error) {
  std::error_code ec;
  if (db.has_parent_path() && !fs::exists(db.parent_path(), ec)) {
    fs::create_directories(db.parent_path(), ec);
    if (ec) {
      *error = "cannot create " + db.parent_path().string() + ": " + ec.message();
      return nullptr;
    }
    ::chmod(db.parent_path().c_str(), 0700);
  }
  if (int e = io::CreateFileIfMissing(db, 0600); e < 0) {
    *error = "cannot open " + db.string() + ": " + std::strerror(-e);
    return nullptr;
  }
  sqlite3* handle = nullptr;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    *error = "cannot open " + db.string() + ": " + (handle ? sqlite3_errmsg(handle) : "out of memory");
    sqlite3_close(handle);
    return nullptr;
  }
  sqlite3_busy_timeout(handle, 5000);
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      "CREATE TABLE IF NOT EXISTS replicas(id TEXT PRIMARY KEY, pid INTEGER NOT NULL,"
      " start_time INTEGER NOT NULL, restarts INTEGER NOT NULL, last_start_ms INTEGER NOT NULL,"
      " backoff_ms INTEGER NOT NULL, next_start_ms INTEGER NOT NULL, started INTEGER NOT NULL,"
      " stopped INTEGER NOT NULL, spec_digest TEXT NOT NULL, updated_ms INTEGER NOT NULL);";
  char* err = nullptr;
  if (sqlite3_exec(handle, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    *error = "cannot set up " + db.string() + ": " + (err ? err : "unknown error");
    sqlite3_free(err);
    sqlite3_close(handle);
    return nullptr;
  }
  for (const char* suffix : {"-wal", "-shm"}) ::chmod((db.string() + suffix).c_str(), 0600);
  std::unique_ptr<Supervisor> s(new Supervisor(handle, clock, std::move(options)));
  if (!s->Load(error)) return nullptr;
  return s;
}

bool Supervisor::Load(std::string* error) {
  Stmt q(db_,
         "SELECT id, pid, start_time, restarts, last_start_ms, backoff_ms, next_start_ms, started, stopped,"
         " spec_digest FROM replicas");
  const auto now = clock_.Now();
  const int64_t wall = clock_.WallMs();
  int rc;
  while ((rc = q.Step()) == SQLITE_ROW) {
    auto r = std::make_unique<Replica>();
    r->id = q.Text(0);
    r->pid = static_cast<pid_t>(q.Int(1));
    r->start_time = static_cast<uint64_t>(q.Int(2));
    r->restarts = static_cast<int>(q.Int(3));
    r->last_start_ms = q.Int(4);
    r->backoff_ms = q.Int(5);
    int64_t next_ms = q.Int(6);
    if (next_ms > 0) {
      r->pending_start = true;
      r->next_start = now + milliseconds(std::max<int64_t>(0, next_ms - wall));
    }
    r->started = q.Int(7) != 0;
    r->stopped = q.Int(8) != 0;
    r->digest = q.Text(9);
    r->phase = ReplicaPhase::kUnmanaged;
    r->running_since = now;
    replicas_[r->id] = std::move(r);
  }
  if (rc != SQLITE_DONE) {
    *error = std::string("cannot read the replica records: ") + sqlite3_errmsg(db_);
    return false;
  }
  return true;
}

void Supervisor::Save(Replica& r) {
  Stmt s(db_,
         "INSERT OR REPLACE INTO replicas(id, pid, start_time, restarts, last_start_ms, backoff_ms,"
         " next_start_ms, started, stopped, spec_digest, updated_ms) "
         "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)");
  const int64_t wall = clock_.WallMs();
  int64_t next_ms = r.pending_start ? wall + std::max<int64_t>(0, Ms(r.next_start - clock_.Now())) : 0;
  s.Bind(1, r.id)
      .Bind(2, r.pid)
      .Bind(3, static_cast<int64_t>(r.start_time))
      .Bind(4, r.restarts)
      .Bind(5, r.last_start_ms)
      .Bind(6, r.backoff_ms)
      .Bind(7, next_ms)
      .Bind(8, r.started ? 1 : 0)
      .Bind(9, r.stopped ? 1 : 0)
      .Bind(10, r.digest)
      .Bind(11, wall);
  if (!s.Done()) {
    // The process goes on either way; a later Save may succeed. The event
    // tells status why a restarted controller may not adopt it.
    Event(r, std::string("cannot record the replica: ") + sqlite3_errmsg(db_));
  }
}

void Supervisor::Forget(const std::string& id) {
  Stmt d(db_, "DELETE FROM replicas WHERE id = ?1");
  d.Bind(1, id);
  d.Done();
  replicas_.erase(id);
}

void Supervisor::Event(Replica& r, std::string text) {
  r.events.push_back({clock_.WallMs(), std::move(text)});
  while (r.events.size() > std::max<size_t>(1, options_.max_events)) r.events.pop_front();
}

void Supervisor::ResetProbes(Replica& r, Clock::TimePoint now) {
  r.liveness.reset();
  r.readiness.reset();
  r.startup.reset();
  if (!r.spec) return;
  if (!r.spec->startup) {
    // No startup probe (any more): nothing gates the others.
    r.started = true;
    if (r.phase == ReplicaPhase::kStarting) r.phase = ReplicaPhase::kRunning;
  }
  if (r.spec->startup && !r.started) r.startup.emplace(*r.spec->startup, now);
  if (r.spec->liveness) r.liveness.emplace(*r.spec->liveness, now);
  if (r.spec->readiness) r.readiness.emplace(*r.spec->readiness, now);
}

void Supervisor::StartReplica(Replica& r) {
  const auto now = clock_.Now();
  const ReplicaSpec& spec = *r.spec;
  r.pending_start = false;
  process::Spec ps;
  std::string error;
  const std::string& name = spec.argv[0];
  if (name.find('/') != std::string::npos) {
    ps.program = name;
  } else {
    auto path = spec.env.find("PATH");
    const char* own = std::getenv("PATH");
    std::string list = path != spec.env.end() ? path->second : (own ? own : "");
    if (auto found = process::FindExecutable(name, list)) {
      ps.program = *found;
    } else {
      error = "command '" + name + "' was not found on PATH (" + list +
              "): give its full path or set PATH in the replica's env";
    }
  }
  pid_t pid = 0;
  if (error.empty()) {
    std::error_code ec;
    if (spec.log_file.has_parent_path()) fs::create_directories(spec.log_file.parent_path(), ec);
    ps.args.assign(spec.argv.begin() + 1, spec.argv.end());
    if (!spec.netns.empty()) {
      // `ip netns exec NS PROGRAM ARGS...`: ip enters the namespace and execs
      // the program (no fork), so the pid is the replica's.
      std::string own = std::getenv("PATH") ? std::getenv("PATH") : "";
      auto ip = process::FindExecutable("ip", own + ":/usr/sbin:/sbin:/usr/bin:/bin");
      if (!ip) {
        error =
            "the 'ip' command (iproute2) is not installed: install iproute2 to run replicas in network "
            "namespace " +
            spec.netns;
      } else {
        std::vector<std::string> args = {"netns", "exec", spec.netns, ps.program.string()};
        args.insert(args.end(), ps.args.begin(), ps.args.end());
        ps.program = *ip;
        ps.args = std::move(args);
      }
    }
    if (error.empty() && !spec.user.empty()) {
      // Another user: resolved now (a user added later is found then).
      const std::optional<process::UnixUser> found = process::LookUpUser(spec.user);
      if (!found) {
        error = "user '" + spec.user + "' does not exist on this machine: create it, or remove user";
      } else if (!process::MayRunAs(*found)) {
        error = "cannot run as user '" + spec.user + "': Plinth runs as uid " + std::to_string(::geteuid()) +
                ", not root";
      } else if (!spec.netns.empty()) {
        // ip must enter the namespace as root: setpriv (util-linux) then
        // drops to the user and execs the program (no fork).
        std::string own = std::getenv("PATH") ? std::getenv("PATH") : "";
        auto setpriv = process::FindExecutable("setpriv", own + ":/usr/bin:/bin:/usr/sbin:/sbin");
        if (!setpriv) {
          error = "setpriv (util-linux) is not installed: it runs a namespaced replica as user " + spec.user;
        } else {
          // ps.args is {"netns", "exec", NS, program, args...}: insert after NS.
          std::vector<std::string> drop = {setpriv->string(), "--reuid=" + std::to_string(found->uid),
                                           "--regid=" + std::to_string(found->gid), "--clear-groups"};
          ps.args.insert(ps.args.begin() + 3, drop.begin(), drop.end());
        }
      } else {
        ps.uid = found->uid;
        ps.gid = found->gid;
      }
    }
    ps.env = spec.env;  // wiped by the process layer after the spawn
    ps.cwd = spec.cwd;
    ps.output_file = spec.log_file;
    if (error.empty()) pid = process::StartDaemon(std::move(ps), &error);
  }
  if (pid <= 0) {
    r.pid = 0;
    r.start_time = 0;
    r.last_error = "cannot start replica " + r.id + ": " + error;
    if (r.backoff_ms <= 0) r.backoff_ms = options_.initial_backoff.count();
    r.phase = ReplicaPhase::kBackoff;
    r.pending_start = true;
    r.next_start = now + milliseconds(r.backoff_ms);
    Event(r, r.last_error + "; retrying in " + SecondsText(r.backoff_ms));
    r.backoff_ms = std::min<int64_t>(r.backoff_ms * 2, options_.max_backoff.count());
    Save(r);
    return;
  }
  r.pid = pid;
  // Gone already (it exited at once): no start time, and the next Tick
  // sees the exit.
  r.start_time = process::ProcessStartTime(pid).value_or(0);
  if (r.last_start_ms != 0) ++r.restarts;
  r.last_start_ms = clock_.WallMs();
  if (r.backoff_ms <= 0) r.backoff_ms = options_.initial_backoff.count();
  r.running_since = now;
  r.started = !spec.startup.has_value();
  r.phase = r.started ? ReplicaPhase::kRunning : ReplicaPhase::kStarting;
  ResetProbes(r, now);
  Event(r, "started pid " + std::to_string(pid) +
               (r.restarts ? " (restart " + std::to_string(r.restarts) + ")" : ""));
  Save(r);
}

void Supervisor::BeginStop(Replica& r, const std::string& why) {
  Event(r, "stopping pid " + std::to_string(r.pid) + ": " + why);
  // start_time 0 (the process was gone before it could be read) would
  // match any process: nothing is signalled then.
  if (r.pid > 0 && r.start_time > 0) {
    process::SignalGroupMembers(r.pid, r.pid, r.start_time, SIGTERM);
    // A frozen replica (SIGSTOP: `plinth region fail` without a namespace)
    // acts on SIGTERM only once it runs again.
    process::SignalGroupMembers(r.pid, r.pid, r.start_time, SIGCONT);
  }
  r.phase = ReplicaPhase::kTerminating;
  r.kill_at = clock_.Now() + options_.stop_grace;
  r.killed = false;
  r.pending_start = false;
}

void Supervisor::Exited(Replica& r, const std::string& why, bool keep_error) {
  const auto now = clock_.Now();
  // What is left of its group (a grandchild in its session) goes with it.
  if (r.pid > 0 && r.start_time > 0) process::SignalGroupMembers(r.pid, r.pid, r.start_time, SIGKILL);
  r.pid = 0;
  r.start_time = 0;
  r.liveness.reset();
  r.readiness.reset();
  r.startup.reset();
  if (r.removing) {
    Event(r, "removed");
    return;  // the caller forgets it
  }
  if (r.stopped) {
    r.phase = ReplicaPhase::kStopped;
    Event(r, "stopped");
    Save(r);
    return;
  }
  r.phase = ReplicaPhase::kBackoff;
  r.pending_start = true;
  if (r.restart_now) {
    r.restart_now = false;
    r.next_start = now;
    Event(r, why + "; starting again now");
  } else {
    if (r.backoff_ms <= 0) r.backoff_ms = options_.initial_backoff.count();
    if (!keep_error) r.last_error = why;
    r.next_start = now + milliseconds(r.backoff_ms);
    Event(r, why + "; restarting in " + SecondsText(r.backoff_ms));
    r.backoff_ms = std::min<int64_t>(r.backoff_ms * 2, options_.max_backoff.count());
  }
  Save(r);
}

bool Supervisor::ReadyOf(const Replica& r) const {
  if (r.phase != ReplicaPhase::kRunning || r.pid <= 0) return false;
  if (r.spec && r.spec->readiness) return r.readiness && r.readiness->state() == ProbeState::kOk;
  return true;
}

bool Supervisor::Adopt(ReplicaSpec spec) {
  if (!ValidateReplica(spec).empty()) return false;
  {
    std::lock_guard lock(mu_);
    auto it = replicas_.find(spec.id);
    if (it == replicas_.end() || it->second->spec || it->second->removing) return false;
    const Replica& r = *it->second;
    if (r.stopped || r.digest != SpecDigest(spec)) return false;
    if (!(r.pid > 0 && process::ProcessStartTime(r.pid) == r.start_time)) return false;
  }
  std::string error;
  return Add(std::move(spec), &error);
}

bool Supervisor::Add(ReplicaSpec spec, std::string* error) {
  std::string invalid = ValidateReplica(spec);
  if (!invalid.empty()) return *error = invalid, false;
  std::lock_guard lock(mu_);
  const auto now = clock_.Now();
  auto it = replicas_.find(spec.id);
  if (it != replicas_.end() && it->second->spec)
    return *error = "replica " + spec.id + " is already supervised: use Update to change it", false;
  if (it != replicas_.end() && it->second->removing)
    return *error = "replica " + spec.id + " is being removed: add it again once it is gone", false;
  const std::string digest = SpecDigest(spec);
  if (it == replicas_.end()) {
    auto r = std::make_unique<Replica>();
    r->id = spec.id;
    r->digest = digest;
    r->spec = std::move(spec);
    r->phase = ReplicaPhase::kBackoff;
    r->pending_start = true;
    r->next_start = now;
    r->backoff_ms = options_.initial_backoff.count();
    Save(*r);
    replicas_[r->id] = std::move(r);
    return true;
  }
  Replica& r = *it->second;
  const bool alive = r.pid > 0 && process::ProcessStartTime(r.pid) == r.start_time;
  const bool same = r.digest == digest;
  r.spec = std::move(spec);
  r.digest = digest;
  r.running_since = now;
  if (alive) {
    r.phase = r.started ? ReplicaPhase::kRunning : ReplicaPhase::kStarting;
    ResetProbes(r, now);
    Event(r, "adopted pid " + std::to_string(r.pid));
    if (r.stopped) {
      BeginStop(r, "it was stopped");
    } else if (!same) {
      r.restart_now = true;
      BeginStop(r, "its spec changed");
    }
  } else {
    if (r.pid > 0) Event(r, "recorded pid " + std::to_string(r.pid) + " is gone");
    r.pid = 0;
    r.start_time = 0;
    if (r.stopped) {
      r.phase = ReplicaPhase::kStopped;
    } else {
      r.phase = ReplicaPhase::kBackoff;
      if (!r.pending_start) r.next_start = now;  // no back-off was pending: start now
      r.pending_start = true;
    }
  }
  Save(r);
  return true;
}

bool Supervisor::Update(ReplicaSpec spec, std::string* error) {
  std::string invalid = ValidateReplica(spec);
  if (!invalid.empty()) return *error = invalid, false;
  std::lock_guard lock(mu_);
  auto it = replicas_.find(spec.id);
  if (it == replicas_.end() || !it->second->spec)
    return *error = "replica " + spec.id + " is not supervised: Add it first", false;
  Replica& r = *it->second;
  const std::string digest = SpecDigest(spec);
  const bool changed = digest != r.digest;
  r.spec = std::move(spec);
  r.digest = digest;
  if (changed && (r.phase == ReplicaPhase::kRunning || r.phase == ReplicaPhase::kStarting)) {
    r.restart_now = true;
    // What the old process last went through is not the new spec's story.
    r.last_error.clear();
    BeginStop(r, "its spec changed");
  } else if (changed && r.phase == ReplicaPhase::kBackoff) {
    // A new spec is a new process: it starts at the next Tick, not after the
    // back-off the old one earned (which is reset).
    r.next_start = clock_.Now();
    r.pending_start = true;
    r.backoff_ms = 0;
    r.last_error.clear();
    Event(r, "spec changed: starting without waiting for the back-off");
  } else if (r.phase == ReplicaPhase::kRunning || r.phase == ReplicaPhase::kStarting) {
    ResetProbes(r, clock_.Now());
    Event(r, "probes updated");
  }
  Save(r);
  return true;
}

namespace {
bool SameProbe(const std::optional<ProbeSpec>& a, const std::optional<ProbeSpec>& b) {
  if (!a || !b) return !a && !b;
  return a->kind == b->kind && a->path == b->path && a->port == b->port && a->argv == b->argv &&
         a->period_s == b->period_s && a->timeout_s == b->timeout_s &&
         a->success_threshold == b->success_threshold && a->failure_threshold == b->failure_threshold &&
         a->initial_delay_s == b->initial_delay_s;
}
}  // namespace

bool Supervisor::Unchanged(const ReplicaSpec& spec) const {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(spec.id);
  if (it == replicas_.end() || !it->second->spec) return false;
  const Replica& r = *it->second;
  return r.digest == SpecDigest(spec) && SameProbe(r.spec->liveness, spec.liveness) &&
         SameProbe(r.spec->readiness, spec.readiness) && SameProbe(r.spec->startup, spec.startup);
}

bool Supervisor::Stop(const std::string& id, std::string* error) {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end()) return *error = "no replica " + id, false;
  Replica& r = *it->second;
  r.stopped = true;
  r.restart_now = false;
  if (r.phase == ReplicaPhase::kRunning || r.phase == ReplicaPhase::kStarting ||
      (r.phase == ReplicaPhase::kUnmanaged && r.pid > 0)) {
    BeginStop(r, "stop requested");
  } else if (r.phase == ReplicaPhase::kBackoff) {
    r.pending_start = false;
    r.phase = ReplicaPhase::kStopped;
    Event(r, "stopped");
  }
  Save(r);
  return true;
}

bool Supervisor::Start(const std::string& id, std::string* error) {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end() || !it->second->spec)
    return *error = "replica " + id + " is not supervised", false;
  Replica& r = *it->second;
  if (r.removing) return *error = "replica " + id + " is being removed", false;
  r.stopped = false;
  if (r.phase == ReplicaPhase::kTerminating) r.restart_now = true;  // a Stop still under way
  if (r.phase == ReplicaPhase::kStopped) {
    r.phase = ReplicaPhase::kBackoff;
    r.pending_start = true;
    r.next_start = clock_.Now();
  }
  Save(r);
  return true;
}

bool Supervisor::Remove(const std::string& id, std::string* error) {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end()) return *error = "no replica " + id, false;
  Replica& r = *it->second;
  r.removing = true;
  r.stopped = true;
  r.restart_now = false;
  const bool alive = r.pid > 0 && process::ProcessStartTime(r.pid) == r.start_time;
  if (alive && r.phase != ReplicaPhase::kTerminating) {
    BeginStop(r, "remove requested");
  } else if (!alive) {
    if (r.ready_reported) pending_ready_.emplace_back(id, false);
    Forget(id);
  }
  return true;
}

void Supervisor::Tick() {
  std::lock_guard tick_lock(tick_mu_);
  struct Job {
    std::string id;
    pid_t pid;
    int which;  // 0 startup, 1 liveness, 2 readiness
    ProbeSpec spec;
    ProbeTarget target;
    Clock::TimePoint began;
    ProbeResult result;
  };
  std::vector<Job> jobs;
  std::vector<std::pair<std::string, bool>> ready_changes;
  try {
    {
      std::lock_guard lock(mu_);
      const auto now = clock_.Now();
      std::vector<std::string> gone;
      ready_changes.swap(pending_ready_);
      for (auto& [id, rp] : replicas_) {
        Replica& r = *rp;
        const bool alive = r.pid > 0 && process::ProcessStartTime(r.pid) == r.start_time;
        switch (r.phase) {
          case ReplicaPhase::kUnmanaged:
            if (r.pid > 0 && !alive) {
              r.pid = 0;
              r.start_time = 0;
              Save(r);
            }
            break;
          case ReplicaPhase::kStarting:
          case ReplicaPhase::kRunning:
            if (!alive) {
              Exited(r, "pid " + std::to_string(r.pid) + " exited", /*keep_error=*/false);
              if (r.removing) gone.push_back(id);
              break;
            }
            if (r.phase == ReplicaPhase::kRunning && r.backoff_ms != options_.initial_backoff.count() &&
                now - r.running_since >= options_.backoff_reset &&
                !(r.liveness && r.liveness->state() == ProbeState::kFailed)) {
              r.backoff_ms = options_.initial_backoff.count();
              Event(r, "running for " + SecondsText(options_.backoff_reset.count()) + ": back-off reset to " +
                           SecondsText(r.backoff_ms));
              Save(r);
            }
            {
              ProbeTarget target{r.spec->host, r.spec->env, r.spec->cwd};
              if (r.phase == ReplicaPhase::kStarting && r.startup && r.startup->Due(now))
                jobs.push_back({id, r.pid, 0, r.startup->spec(), target, now, {}});
              if (r.phase == ReplicaPhase::kRunning && r.liveness && r.liveness->Due(now))
                jobs.push_back({id, r.pid, 1, r.liveness->spec(), target, now, {}});
              if (r.phase == ReplicaPhase::kRunning && r.readiness && r.readiness->Due(now))
                jobs.push_back({id, r.pid, 2, r.readiness->spec(), target, now, {}});
            }
            break;
          case ReplicaPhase::kTerminating:
            if (!alive) {
              // The reason it was stopped (a failed probe) stays the last error.
              Exited(r, "pid " + std::to_string(r.pid) + " stopped", /*keep_error=*/true);
              if (r.removing) gone.push_back(id);
            } else if (!r.killed && now >= r.kill_at) {
              if (r.start_time > 0) process::SignalGroupMembers(r.pid, r.pid, r.start_time, SIGKILL);
              r.killed = true;
              Event(r, "pid " + std::to_string(r.pid) + " did not stop within " +
                           SecondsText(options_.stop_grace.count()) + ": killed");
            }
            break;
          case ReplicaPhase::kBackoff:
            if (r.stopped) {
              r.phase = ReplicaPhase::kStopped;
              r.pending_start = false;
              Save(r);
            } else if (r.spec && r.pending_start && now >= r.next_start) {
              StartReplica(r);
            }
            break;
          case ReplicaPhase::kStopped: break;
        }
      }
      for (const auto& id : gone) {
        if (replicas_[id]->ready_reported) ready_changes.emplace_back(id, false);
        Forget(id);
      }
    }

    // The probes, each on its own thread: the pass takes as long as the
    // slowest one, not their sum.
    if (!jobs.empty()) {
      std::vector<std::thread> threads;
      threads.reserve(jobs.size());
      for (auto& job : jobs) threads.emplace_back([&job] { job.result = RunProbe(job.spec, job.target); });
      for (auto& t : threads) t.join();
    }

    std::lock_guard lock(mu_);
    for (auto& job : jobs) {
      auto it = replicas_.find(job.id);
      if (it == replicas_.end()) continue;
      Replica& r = *it->second;
      if (r.pid != job.pid) continue;  // it was restarted or stopped meanwhile
      if (job.which == 0 && r.phase == ReplicaPhase::kStarting && r.startup) {
        ProbeState s = r.startup->Record(job.result, job.began);
        if (s == ProbeState::kOk) {
          r.started = true;
          r.phase = ReplicaPhase::kRunning;
          ResetProbes(r, clock_.Now());
          Event(r, "startup probe succeeded: " + job.result.message);
          Save(r);
        } else if (s == ProbeState::kFailed) {
          r.last_error = "startup probe failed: " + job.result.message;
          Event(r, r.last_error);
          BeginStop(r, "its startup probe failed");
        }
      } else if (job.which == 1 && r.phase == ReplicaPhase::kRunning && r.liveness) {
        ProbeState before = r.liveness->state();
        ProbeState s = r.liveness->Record(job.result, job.began);
        if (s == ProbeState::kFailed) {
          r.last_error = "liveness probe failed " + std::to_string(r.liveness->consecutive_failures()) +
                         " times: " + job.result.message;
          Event(r, r.last_error);
          BeginStop(r, "its liveness probe failed");
        } else if (s != before) {
          Event(r, "liveness " + std::string(ProbeStateName(s)) + ": " + job.result.message);
        }
      } else if (job.which == 2 && r.phase == ReplicaPhase::kRunning && r.readiness) {
        ProbeState before = r.readiness->state();
        ProbeState s = r.readiness->Record(job.result, job.began);
        if (s != before) Event(r, "readiness " + std::string(ProbeStateName(s)) + ": " + job.result.message);
      }
    }
    for (auto& [id, rp] : replicas_) {
      bool ready = ReadyOf(*rp);
      if (ready != rp->ready_reported) {
        rp->ready_reported = ready;
        rp->ready_since = clock_.Now();
        ready_changes.emplace_back(id, ready);
      }
    }
  } catch (const std::exception& e) {
    // Out of memory or a thread that could not start: the next Tick tries
    // again from what was recorded.
    std::lock_guard lock(mu_);
    for (auto& [id, rp] : replicas_) {
      if (rp->spec) Event(*rp, std::string("supervisor pass failed: ") + e.what());
    }
  }
  if (options_.on_ready_change) {
    for (const auto& [id, ready] : ready_changes) options_.on_ready_change(id, ready);
  }
}

ReplicaSnapshot Supervisor::SnapshotOf(const Replica& r) const {
  ReplicaSnapshot s;
  s.id = r.id;
  s.phase = r.phase;
  s.pid = r.pid;
  s.start_time = r.start_time;
  s.ready = ReadyOf(r);
  if (s.ready && r.ready_reported) s.ready_for_ms = std::max<int64_t>(0, Ms(clock_.Now() - r.ready_since));
  if (r.liveness) s.liveness = r.liveness->state();
  if (r.readiness) s.readiness = r.readiness->state();
  if (r.startup) s.startup = r.startup->state();
  if (r.started && r.spec && r.spec->startup) s.startup = ProbeState::kOk;
  s.restarts = r.restarts;
  s.last_start_ms = r.last_start_ms;
  s.backoff_ms = r.backoff_ms;
  if (r.pending_start)
    s.next_start_ms = clock_.WallMs() + std::max<int64_t>(0, Ms(r.next_start - clock_.Now()));
  s.last_error = r.last_error;
  s.events.assign(r.events.begin(), r.events.end());
  return s;
}

bool Supervisor::Ready(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  return it != replicas_.end() && ReadyOf(*it->second);
}

std::optional<ReplicaSnapshot> Supervisor::Snapshot(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = replicas_.find(id);
  if (it == replicas_.end()) return std::nullopt;
  return SnapshotOf(*it->second);
}

std::vector<ReplicaSnapshot> Supervisor::Snapshots() const {
  std::lock_guard lock(mu_);
  std::vector<ReplicaSnapshot> out;
  for (const auto& [id, r] : replicas_) out.push_back(SnapshotOf(*r));
  return out;
}

std::vector<std::string> Supervisor::Unmanaged() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [id, r] : replicas_) {
    if (!r->spec) out.push_back(id);
  }
  return out;
}

}  // namespace plinth::controller
