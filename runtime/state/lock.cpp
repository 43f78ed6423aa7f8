#include "runtime/state/lock.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <signal.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include "runtime/state/sql.h"

namespace plinth::state {
namespace {

Error LockError(ErrorCode code, std::string message) {
  return Error{code, std::move(message), std::nullopt};
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// The first line of a small system file, trimmed; empty when unreadable.
std::string FirstLine(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

std::string BootId() { return FirstLine("/proc/sys/kernel/random/boot_id"); }

// systemd's machine id, or D-Bus's where systemd is absent; empty when there
// is none. Not stored as it is: machine-id(5) asks applications to keep it
// confidential and use a keyed hash of it instead (HMAC-SHA-256 keyed by the
// id over an application label, as sd_id128_get_machine_app_specific does),
// and a state file travels (backups, shared disks).
std::string MachineId() {
  std::string id = FirstLine("/etc/machine-id");
  if (id.empty()) id = FirstLine("/var/lib/dbus/machine-id");
  if (id.empty()) return id;
  static const char kLabel[] = "plinth-workspace-lock-machine-v1";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), id.data(), static_cast<int>(id.size()), reinterpret_cast<const unsigned char*>(kLabel),
            sizeof kLabel - 1, md, &len)) {
    return std::string();
  }
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 16 && i < len; ++i) {
    out += kDigits[md[i] >> 4];
    out += kDigits[md[i] & 15];
  }
  return out;
}

// "pid:[4026531836]": pids mean the same thing only within one namespace.
std::string PidNamespace() {
  char buf[128];
  ssize_t n = ::readlink("/proc/self/ns/pid", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

// Field 3 (state) and field 22 (start time in clock ticks) of /proc/PID/stat;
// empty when the process does not exist or /proc is unavailable.
struct ProcStat {
  char state = 0;
  std::string start_time;
};
std::optional<ProcStat> ReadProcStat(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  // The command name (field 2) is in parentheses and may contain spaces.
  size_t close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 1));
  ProcStat st;
  rest >> st.state;
  std::string field;
  for (int i = 4; i <= 22 && rest >> field; ++i) {
    if (i == 22) st.start_time = field;
  }
  return st;
}

std::string NewLockId() {
  unsigned char rnd[16];
  RAND_bytes(rnd, sizeof rnd);
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : rnd) {
    s += kDigits[c >> 4];
    s += kDigits[c & 15];
  }
  return s;
}

struct StoredLock {
  LockInfo info;
  std::string start_time;
  int64_t expires_ms = 0;  // PostgreSQL: the lease's end (0: no lease)
};

// Whether the holder is provably gone (see lock.h), and if it is not, why it
// must be presumed alive.
struct Liveness {
  bool stale = false;
  std::string why_kept;  // for the refusal message
};

Liveness Judge(const StoredLock& lock) {
  const LockHolder& h = lock.info.holder;
  const std::string machine = MachineId();
  if (h.machine_id.empty()) {
    return {false, "the lock records no machine id (it was taken by an older Plinth), so its holder cannot be "
                   "checked from here"};
  }
  if (machine.empty()) {
    return {false, "this machine has no machine id (/etc/machine-id), so Plinth cannot tell whether the holder "
                   "runs here"};
  }
  if (h.machine_id != machine) {
    return {false, "the holder runs on another machine (another machine id), even if its host name is the same"};
  }
  if (h.pid_namespace.empty() || h.pid_namespace != PidNamespace()) {
    return {false, "the holder runs in another PID namespace (another container) on this machine, where its pid "
                   "cannot be checked"};
  }
  const std::string boot = BootId();
  if (!boot.empty() && !h.boot_id.empty() && boot != h.boot_id) return {true, ""};  // rebooted since
  int64_t pid = h.pid;
  if (pid <= 0) return {true, ""};
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return {true, ""};
  std::optional<ProcStat> st = ReadProcStat(pid);
  if (!st) return {false, "its process " + std::to_string(pid) + " exists"};  // no /proc: trust kill()
  if (st->state == 'Z' || st->state == 'X') return {true, ""};
  if (!lock.start_time.empty() && !st->start_time.empty() && st->start_time != lock.start_time) {
    return {true, ""};  // the pid was reused by a newer process
  }
  return {false, "its process " + std::to_string(pid) + " is still running"};
}

std::string Since(int64_t since_ms) {
  std::time_t t = static_cast<std::time_t>(since_ms / 1000);
  char since[32];
  std::tm tm{};
  if (!::gmtime_r(&t, &tm) || std::strftime(since, sizeof since, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return std::to_string(since_ms) + " (Unix ms)";
  }
  return since;
}

std::string HeldMessage(const LockInfo& info, const std::string& why_kept) {
  const LockHolder& h = info.holder;
  return "the workspace is locked by pid " + std::to_string(h.pid) + " on " + h.host + " (" + h.command +
         ", since " + Since(h.since_ms) + "); lock id " + info.id + "; " + why_kept +
         "; wait for it to finish, or if that process is gone for good, run: plinth force-unlock " + info.id;
}

// A write transaction on the store's connection (SqlConnection::BeginWrite):
// the read of the current holder and the write of the new one are one step
// for every other process.
class Txn {
 public:
  explicit Txn(SqlConnection* db) : db_(db) {}
  ~Txn() {
    if (begun_ && !done_) (void)db_->Exec("ROLLBACK", "cannot roll back");
  }
  bool Begin() {
    return begun_ = db_->BeginWrite().ok();
  }
  bool Commit() { return done_ = db_->Exec("COMMIT", "cannot commit").ok(); }

 private:
  SqlConnection* db_;
  bool begun_ = false;
  bool done_ = false;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::optional<StoredLock>> ReadLock(SqlConnection* db) {
  const bool lease = db->dialect() == SqlConnection::Dialect::kPostgres;
  auto q = db->Prepare(std::string("SELECT id, pid, host, command, since_ms, boot_id, start_time, machine_id, "
                                   "pid_namespace") +
                       (lease ? ", expires_ms" : "") + " FROM lock");
  int rc = q->Step();
  if (rc == kDone) return std::optional<StoredLock>();
  if (rc != kRow) return db->Failure("cannot read the workspace lock");
  StoredLock l;
  l.info.id = q->Text(0);
  l.info.holder.pid = q->Int(1);
  l.info.holder.host = q->Text(2);
  l.info.holder.command = q->Text(3);
  l.info.holder.since_ms = q->Int(4);
  l.info.holder.boot_id = q->Text(5);
  l.start_time = q->Text(6);
  l.info.holder.machine_id = q->Text(7);
  l.info.holder.pid_namespace = q->Text(8);
  if (lease) l.expires_ms = q->Int(9);
  return std::optional<StoredLock>(std::move(l));
}

// Deletes the lock row when its id is `id`; kNotFound otherwise.
Status DeleteLock(SqlConnection* db, const std::string& id, const char* what) {
  Txn txn(db);
  if (!txn.Begin()) return db->Failure(std::string("cannot ") + what);
  auto d = db->Prepare("DELETE FROM lock WHERE id = ?");
  d->Bind(1, id);
  if (d->Step() != kDone) return db->Failure(std::string("cannot ") + what);
  if (db->Changes() == 0) {
    return LockError(ErrorCode::kNotFound, "no workspace lock with id " + id + " (it was released or taken over)");
  }
  if (!txn.Commit()) return db->Failure(std::string("cannot ") + what);
  return Ok{};
}

}  // namespace

LockHolder WorkspaceLock::ThisProcess(const std::string& command) {
  LockHolder h;
  h.pid = ::getpid();
  h.host = HostName();
  h.command = command;
  h.machine_id = MachineId();
  h.pid_namespace = PidNamespace();
  h.boot_id = BootId();
  h.since_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  return h;
}

Result<AcquiredLock> WorkspaceLock::Acquire(StateStore& store, const LockHolder& holder) {
  std::lock_guard<std::mutex> guard(store.mu_);
  SqlConnection* db = store.db_.get();
  const bool lease = store.postgres();
  Txn txn(db);
  if (!txn.Begin()) return db->Failure("cannot take the workspace lock");
  Result<std::optional<StoredLock>> current = ReadLock(db);
  if (!current.ok()) return current.error();
  AcquiredLock acquired;
  const int64_t now = NowMs();
  if (current.value()) {
    const StoredLock& held = *current.value();
    Liveness liveness = Judge(held);
    // With a lease (PostgreSQL), a holder that stopped renewing is gone
    // whatever the machine; one that renews is alive wherever it runs.
    if (lease && !liveness.stale && held.expires_ms <= now) liveness.stale = true;
    if (!liveness.stale) {
      std::string why = liveness.why_kept;
      if (lease) {
        why = "its lease is renewed while it runs and expires " +
              std::to_string((held.expires_ms - now + 999) / 1000) + " s after its last renewal (" + why + ")";
      }
      Error e = LockError(ErrorCode::kLockHeld, HeldMessage(held.info, why));
      e.holder = held.info;
      return e;
    }
    acquired.taken_over = held.info;
  }
  acquired.id = NewLockId();
  std::string start_time;
  // The start time tells a reused pid apart; it can only be read here.
  if (!holder.machine_id.empty() && holder.machine_id == MachineId() && holder.pid_namespace == PidNamespace()) {
    if (std::optional<ProcStat> st = ReadProcStat(holder.pid)) start_time = st->start_time;
  }
  {
    auto clear = db->Prepare("DELETE FROM lock");
    if (clear->Step() != kDone) return db->Failure("cannot take the workspace lock");
  }
  auto ins = db->Prepare(std::string("INSERT INTO lock(singleton, id, pid, host, command, since_ms, boot_id, "
                                     "start_time, machine_id, pid_namespace") +
                         (lease ? ", expires_ms) VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                                : ") VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  ins->Bind(1, acquired.id).Bind(2, holder.pid).Bind(3, holder.host).Bind(4, holder.command);
  ins->Bind(5, holder.since_ms).Bind(6, holder.boot_id).Bind(7, start_time).Bind(8, holder.machine_id);
  ins->Bind(9, holder.pid_namespace);
  if (lease) ins->Bind(10, now + store.lease_ms());
  if (ins->Step() != kDone) return db->Failure("cannot take the workspace lock");
  if (!txn.Commit()) return db->Failure("cannot take the workspace lock");
  if (lease) store.StartLeaseRenewal(acquired.id);
  return acquired;
}

Result<AcquiredLock> WorkspaceLock::AcquireWithin(StateStore& store, const LockHolder& holder,
                                                  std::chrono::milliseconds timeout,
                                                  const std::function<void(const Error&)>& waiting) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool told = false;
  for (;;) {
    Result<AcquiredLock> got = Acquire(store, holder);
    if (got.ok() || got.error().code != ErrorCode::kLockHeld || std::chrono::steady_clock::now() >= deadline) {
      return got;
    }
    if (!told && waiting) waiting(got.error());
    told = true;
    auto left = deadline - std::chrono::steady_clock::now();
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(left, std::chrono::seconds(1)));
  }
}

Status WorkspaceLock::Release(StateStore& store, const std::string& id) {
  store.StopLeaseRenewal();
  std::lock_guard<std::mutex> guard(store.mu_);
  store.fence_.clear();
  return DeleteLock(store.db_.get(), id, "release the workspace lock");
}

Status WorkspaceLock::ForceUnlock(StateStore& store, const std::string& id) {
  std::lock_guard<std::mutex> guard(store.mu_);
  return DeleteLock(store.db_.get(), id, "force-unlock the workspace");
}

Result<std::optional<LockInfo>> WorkspaceLock::Current(StateStore& store) {
  std::lock_guard<std::mutex> guard(store.mu_);
  Result<std::optional<StoredLock>> current = ReadLock(store.db_.get());
  if (!current.ok()) return current.error();
  if (!current.value()) return std::optional<LockInfo>();
  return std::optional<LockInfo>(current.value()->info);
}

std::string WorkspaceLock::Describe(const Error& e) {
  // Acquire's message already names the holder, why it is presumed alive and
  // how to release the lock.
  return e.message;
}

}  // namespace plinth::state
