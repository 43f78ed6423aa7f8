// The compute queue (see queue.h and docs/compute.md).
#include "runtime/compute/queue.h"
#include "runtime/io/durable.h"

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "kernels/qpu/memory.h"
#include "runtime/compute/inventory.h"
#include "runtime/compute/ledger.h"
#include "runtime/crypto/aead.h"
#include "runtime/io/sqlite.h"
#include "runtime/process/process.h"
#include "runtime/storage/keys.h"

namespace plinth::compute {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kProvisionTimeoutMs = 30000;  // a node row without an agent pid after this is lost
constexpr int kMaxRecentFailures =
    3;  // failed or lost nodes of a pool per minute before it stops provisioning

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using Stmt = io::SqliteStmt;

bool Exec(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// BEGIN IMMEDIATE ... COMMIT; rolled back when destroyed uncommitted.
class Tx {
 public:
  explicit Tx(sqlite3* db) : db_(db) { ok_ = Exec(db, "BEGIN IMMEDIATE"); }
  ~Tx() {
    if (ok_ && !done_) Exec(db_, "ROLLBACK");
  }
  bool ok() const { return ok_; }
  bool Commit() {
    done_ = Exec(db_, "COMMIT");
    return done_;
  }

 private:
  sqlite3* db_;
  bool ok_ = false, done_ = false;
};

json ShapeJson(const Shape& s) {
  return {{"cpus", s.cpus},
          {"memory", s.memory_bytes},
          {"accelerators", s.accelerators.empty()
                               ? ""
                               : (s.accelerators.type.empty() ? "" : s.accelerators.type + ":") +
                                     std::to_string(s.accelerators.count)},
          {"region", s.region}};
}

json PoolJson(const PoolSpec& p) {
  json shapes = json::array();
  for (const auto& s : p.shapes) shapes.push_back(ShapeJson(s));
  return {{"id", p.id},
          {"region", p.region},
          {"name", p.name},
          {"shapes", shapes},
          {"min_nodes", p.min_nodes},
          {"max_nodes", p.max_nodes},
          {"idle_ms", p.idle_ms},
          {"health", p.health == HealthGate::kNone   ? "none"
                     : p.health == HealthGate::kFull ? "full"
                                                     : "quick"},
          {"health_recheck_ms", p.health_recheck_ms},
          {"patch", PatchJson(p.patch)}};
}

PoolSpec PoolFromJson(const json& j) {
  PoolSpec p;
  p.id = j.value("id", "");
  p.region = j.value("region", "");
  p.name = j.value("name", "");
  p.min_nodes = j.value("min_nodes", 0);
  p.max_nodes = j.value("max_nodes", 1);
  p.idle_ms = j.value("idle_ms", int64_t{600000});
  std::string h = j.value("health", "quick");
  p.health = h == "none" ? HealthGate::kNone : h == "full" ? HealthGate::kFull : HealthGate::kQuick;
  p.health_recheck_ms = j.value("health_recheck_ms", int64_t{0});
  if (auto patch = j.find("patch"); patch != j.end()) p.patch = PatchFromJson(*patch);
  for (const auto& s : j.value("shapes", json::array())) {
    Shape sh;
    sh.cpus = s.value("cpus", 1);
    sh.memory_bytes = s.value("memory", uint64_t{0});
    std::string why;
    if (auto a = ParseAccelerators(s.value("accelerators", ""), &why)) sh.accelerators = *a;
    sh.region = s.value("region", "");
    p.shapes.push_back(sh);
  }
  return p;
}

json JobJson(const JobSpec& j) {
  json buckets = json::array();
  for (const auto& b : j.buckets) buckets.push_back({{"name", b.name}, {"path", b.path}, {"write", b.write}});
  return {{"id", j.id},
          {"name", j.name},
          {"pool", j.pool},
          {"argv", j.argv},
          {"cpus", j.cpus},
          {"memory", j.memory_bytes},
          {"gpus", j.gpus},
          {"env", j.env},
          {"secret_names", j.secret_names},
          {"principal", j.principal},
          {"buckets", buckets},
          {"retries", {{"infrastructure", j.retries.infrastructure}, {"program", j.retries.program}}},
          {"timeout_ms", j.timeout_ms},
          {"after", j.after}};
}

JobSpec JobFromJson(const json& j) {
  JobSpec s;
  s.id = j.value("id", "");
  s.name = j.value("name", "");
  s.pool = j.value("pool", "");
  s.argv = j.value("argv", std::vector<std::string>{});
  s.cpus = j.value("cpus", 1);
  s.memory_bytes = j.value("memory", uint64_t{0});
  s.gpus = j.value("gpus", 0);
  s.env = j.value("env", std::map<std::string, std::string>{});
  s.secret_names = j.value("secret_names", std::vector<std::string>{});
  s.principal = j.value("principal", "");
  for (const auto& b : j.value("buckets", json::array())) {
    s.buckets.push_back({b.value("name", ""), b.value("path", ""), b.value("write", false)});
  }
  if (j.contains("retries")) {
    s.retries.infrastructure = j["retries"].value("infrastructure", 3);
    s.retries.program = j["retries"].value("program", 0);
  }
  s.timeout_ms = j.value("timeout_ms", int64_t{0});
  s.after = j.value("after", std::vector<std::string>{});
  return s;
}

JobStatus StatusFromName(const std::string& s) {
  for (JobStatus st : {JobStatus::kPending, JobStatus::kProvisioning, JobStatus::kRunning,
                       JobStatus::kSucceeded, JobStatus::kFailed, JobStatus::kCancelled}) {
    if (s == JobStatusName(st)) return st;
  }
  return JobStatus::kPending;
}

std::string GpusText(const std::vector<int>& g) {
  return json(g).dump();
}
std::vector<int> GpusFrom(const std::string& t) {
  json j = json::parse(t, nullptr, false);
  if (!j.is_array()) return {};
  return j.get<std::vector<int>>();
}

constexpr const char* kJobCols =
    "id, spec, status, infra_failures, program_failures, attempts, node, submitted_at, started_at, "
    "finished_at, "
    "exit_code, signal, reason";

JobState ReadJob(Stmt& q) {
  JobState s;
  s.spec = JobFromJson(json::parse(q.Text(1), nullptr, false));
  s.spec.id = q.Text(0);
  s.status = StatusFromName(q.Text(2));
  s.infrastructure_failures = static_cast<int>(q.Int(3));
  s.program_failures = static_cast<int>(q.Int(4));
  s.attempts = static_cast<int>(q.Int(5));
  s.node = q.Text(6);
  s.submitted_at_ms = q.Int(7);
  s.started_at_ms = q.Int(8);
  s.finished_at_ms = q.Int(9);
  if (!q.Null(10)) s.exit_code = static_cast<int>(q.Int(10));
  if (!q.Null(11)) s.signal = static_cast<int>(q.Int(11));
  s.reason = q.Text(12);
  return s;
}

constexpr const char* kNodeCols =
    "name, pool, state, reason, shape, cpus, memory, gpus, gpu_type, pid, started_at, last_busy_at, ended_at, "
    "patch_level, previous_patch_level";

NodeState ReadNode(Stmt& q) {
  NodeState n;
  n.name = q.Text(0);
  n.pool = q.Text(1);
  n.state = q.Text(2);
  n.reason = q.Text(3);
  n.shape = static_cast<int>(q.Int(4));
  n.cpus = static_cast<int>(q.Int(5));
  n.memory_bytes = static_cast<uint64_t>(q.Int(6));
  n.gpus = GpusFrom(q.Text(7));
  n.gpu_type = q.Text(8);
  n.pid = static_cast<int>(q.Int(9));
  n.started_at_ms = q.Int(10);
  n.last_busy_at_ms = q.Int(11);
  n.ended_at_ms = q.Int(12);
  n.patch_level = q.Text(13);
  n.previous_patch_level = q.Text(14);
  return n;
}

// A node that holds its resources: starting, working, or cordoned for a patch
// (docs/compute.md, "Patching nodes").
bool IsLive(const std::string& state) {
  return state == "provisioning" || state == "probing" || state == "ready" || state == "draining" ||
         state == "patching";
}

std::string SecretsAad(const std::string& job_id) {
  return std::string("plinth-job-secrets-v1") + '\0' + job_id;
}

std::string Describe(const Shape& s) {
  std::string d = DescribeAccelerators(s.accelerators);
  if (!s.region.empty()) d += " in " + s.region;
  return d;
}

// Whether GPU `index` is free of every holder on this machine now (nobody
// holds its lock file).
bool GpuLockFree(int index) {
  fs::path dir = GpuLockDir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path p = dir / ("gpu-" + std::to_string(index) + ".lock");
  int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return false;
  bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  ::close(fd);  // releases the lock
  return free;
}

// The environment an agent gets: only what it needs, so no secret of the
// starting command (a --secret-env value) reaches the agent's environment.
std::map<std::string, std::string> AgentEnvironment() {
  std::map<std::string, std::string> env;
  for (auto& [k, v] : process::CurrentEnvironment()) {
    if ((k.rfind("PLINTH_", 0) == 0 && k != "PLINTH_BACKEND") || k.rfind("CUDA_", 0) == 0 || k.rfind("LC_", 0) == 0 || k == "PATH" ||
        k == "HOME" || k == "USER" || k == "LANG" || k == "TMPDIR" || k == "XDG_RUNTIME_DIR" ||
        k == "LD_LIBRARY_PATH") {
      env[k] = v;
    }
  }
  // Agents run in the compute directory: paths the caller gave relative to
  // its own working directory are made absolute.
  for (const char* k : {"PLINTH_FAKE_GPUS", "PLINTH_GPU_LOCK_DIR", "PLINTH_GPU_MODULE"}) {
    auto it = env.find(k);
    std::error_code ec;
    if (it != env.end() && !it->second.empty() && it->second[0] != '/')
      it->second = std::filesystem::absolute(it->second, ec).string();
  }
  return env;
}

// Why no shape of `pool` can ever hold one task of `job`; empty when one can.
std::string NoShapeFits(const PoolSpec& pool, const JobSpec& job) {
  int max_gpus = 0, max_cpus = 0;
  for (const Shape& sh : pool.shapes) {
    if (sh.cpus >= job.cpus && sh.accelerators.count >= job.gpus &&
        (job.memory_bytes == 0 || sh.memory_bytes == 0 || sh.memory_bytes >= job.memory_bytes)) {
      return "";
    }
    max_gpus = std::max(max_gpus, sh.accelerators.count);
    max_cpus = std::max(max_cpus, sh.cpus);
  }
  std::string why = job.gpus > max_gpus
                        ? "job asks for " + std::to_string(job.gpus) + " GPUs per task but pool " +
                              pool.name + "'s largest shape has " + std::to_string(max_gpus)
                    : job.cpus > max_cpus
                        ? "job asks for " + std::to_string(job.cpus) + " CPUs per task but pool " +
                              pool.name + "'s largest shape has " + std::to_string(max_cpus)
                        : "job asks for more memory per task than any shape of pool " + pool.name + " offers";
  return why + ": it cannot run in this pool";
}

// Node names for a message: "a, b, c" or "a, b, c and 4 more".
std::string NodeList(const std::vector<std::string>& nodes) {
  std::string out;
  for (size_t i = 0; i < nodes.size() && i < 4; ++i) out += (i ? ", " : "") + nodes[i];
  if (nodes.size() > 4) out += " and " + std::to_string(nodes.size() - 4) + " more";
  return out;
}

// Why a node of `shape` does not fit what the live nodes of this machine
// leave of its CPUs and memory; empty when it does.
std::string HeldMisfit(const Shape& shape, const Inventory& inv, const HeldResources& held) {
  if (held.cpus + shape.cpus > inv.cpus) {
    return std::to_string(held.cpus) + " of this machine's " + std::to_string(inv.cpus) +
           (inv.cpus == 1 ? " CPU" : " CPUs") + (held.cpus == 1 ? " is" : " are") + " held by other nodes (" +
           NodeList(held.cpu_nodes) + ")";
  }
  if (shape.memory_bytes > 0 && inv.memory_bytes > 0 &&
      held.memory_bytes + shape.memory_bytes > inv.memory_bytes) {
    return qpu::FormatBytes(held.memory_bytes) + " of this machine's " + qpu::FormatBytes(inv.memory_bytes) +
           " of memory are held by other nodes (" + NodeList(held.memory_nodes) + ")";
  }
  return "";
}

}  // namespace

nlohmann::json PatchJson(const PatchSpec& p) {
  if (p.empty()) return nullptr;
  json out = {{"level", p.level},
              {"command", p.command},
              {"cwd", p.cwd},
              {"timeout_ms", p.timeout_ms},
              {"max_unavailable", p.max_unavailable},
              {"max_unavailable_percent", p.max_unavailable_percent},
              {"failure_threshold", p.failure_threshold}};
  if (!p.rollback_command.empty()) out["rollback_command"] = p.rollback_command;
  if (p.window) out["window"] = controller::NamedWindowJson(*p.window);
  return out;
}

PatchSpec PatchFromJson(const nlohmann::json& j) {
  PatchSpec p;
  if (!j.is_object()) return p;
  p.level = j.value("level", "");
  p.command = j.value("command", std::vector<std::string>{});
  p.cwd = j.value("cwd", "");
  p.timeout_ms = j.value("timeout_ms", int64_t{600000});
  p.max_unavailable = j.value("max_unavailable", 1);
  p.max_unavailable_percent = j.value("max_unavailable_percent", 0);
  p.failure_threshold = j.value("failure_threshold", 1);
  p.rollback_command = j.value("rollback_command", std::vector<std::string>{});
  if (auto w = j.find("window"); w != j.end() && w->is_object()) p.window = controller::NamedWindowFromJson(*w);
  return p;
}


fs::path GpuLockDir() {
  if (const char* d = std::getenv("PLINTH_GPU_LOCK_DIR"); d && *d) return d;
  if (::geteuid() == 0) return "/run/plinth/gpu-locks";
  if (const char* x = std::getenv("XDG_RUNTIME_DIR"); x && *x) return fs::path(x) / "plinth" / "gpu-locks";
  return fs::path("/tmp") / ("plinth-" + std::to_string(::getuid())) / "gpu-locks";
}

std::string SafeJobName(const std::string& id) {
  std::string s = id;
  for (char& c : s) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
          c == '-' || c == '_'))
      c = '_';
  }
  if (s.empty() || s[0] == '.') s = "_" + s;
  return s;
}

// ------------------------------------------------------------------ open

std::unique_ptr<Queue> Queue::Open(const fs::path& compute_dir, QueueOptions options, bool create,
                                   std::string* error) {
  // Every `status IN (...)` of the queue's statements runs through an
  // ephemeral table, and each one's page cache starts with a bulk allocation
  // of 20 pages, touched page by page: a measurable share of an agent's CPU
  // per job. Pages are allocated as needed instead. Only possible before
  // SQLite initialises; where another database was opened first in this
  // process the call is refused and nothing changes.
  static std::once_flag no_bulk;
  std::call_once(no_bulk, [] { sqlite3_config(SQLITE_CONFIG_PAGECACHE, nullptr, 0, 0); });
  std::unique_ptr<Queue> q(new Queue());
  // Agents run in the compute directory and are told its path: absolute.
  std::error_code ec;
  q->dir_ = fs::absolute(compute_dir, ec);
  if (ec) q->dir_ = compute_dir;
  q->options_ = std::move(options);
  if (q->options_.agent_program.empty()) q->options_.agent_program = "/proc/self/exe";
  if (q->options_.agent_program == "/proc/self/exe") {
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) q->options_.agent_program = self;
    // plinth-node-agent next to this binary is the same agent without the
    // compiler: it starts faster and forks each job from a small process.
    if (!ec) {
      fs::path small = self.parent_path() / "plinth-node-agent";
      if (::access(small.c_str(), X_OK) == 0) q->options_.agent_program = small;
    }
  }
  if (!q->Init(create, error)) return nullptr;
  q->Reconcile();
  return q;
}

Queue::~Queue() {
  if (db_) sqlite3_close(db_);
}

bool Queue::Init(bool create, std::string* error) {
  fs::path db = dir_ / "compute.db";
  std::error_code ec;
  if (!fs::exists(db, ec)) {
    if (!create) {
      *error = "no compute queue at " + db.string() + ": apply a configuration with a pool first";
      return false;
    }
    fs::path parent = dir_.parent_path();
    for (const fs::path& d : {parent, dir_, dir_ / "jobs", dir_ / "nodes"}) {
      if (d.empty()) continue;
      fs::create_directories(d, ec);
      ::chmod(d.c_str(), 0700);
    }
    if (int e = io::CreateFileIfMissing(db, 0600); e < 0) {
      *error = "cannot create " + db.string() + ": " + std::strerror(-e);
      return false;
    }
  }
  fs::create_directories(dir_ / "jobs", ec);
  fs::create_directories(dir_ / "nodes", ec);
  // SQLite creates -wal and -shm with the database file's mode (0600).
  if (sqlite3_open_v2(db.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    *error = "cannot open " + db.string() + ": " + (db_ ? sqlite3_errmsg(db_) : "out of memory");
    return false;
  }
  // Many agents write this database at once. SQLite's own busy timeout
  // sleeps up to 100 ms between tries, which idles a node for most of a short
  // job; this handler retries after a short, growing pause (at most 2 ms),
  // and gives up after 5 s as the timeout would.
  sqlite3_busy_handler(
      db_,
      [](void*, int tries) -> int {
        if (tries >= 5000) return 0;
        ::usleep(tries < 10 ? 100 : tries < 100 ? 500 : 1000);
        return 1;
      },
      nullptr);
  // SQLite checkpoints after every commit once the WAL holds 1,000 pages, and
  // while agents keep reading it often cannot start the WAL over, so every
  // commit past that point copies pages back and syncs twice. This hook
  // checkpoints (passively, as SQLite would) at most once a second per
  // connection instead.
  sqlite3_wal_hook(
      db_,
      [](void* self, sqlite3* db, const char* name, int frames) -> int {
        auto* q = static_cast<Queue*>(self);
        const int64_t now = NowMs();
        if (frames < 1000 || now - q->last_checkpoint_ms_ < 1000) return SQLITE_OK;
        q->last_checkpoint_ms_ = now;
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        return SQLITE_OK;
      },
      this);
  const char* schema =
      "PRAGMA journal_mode=WAL;"
      "PRAGMA synchronous=NORMAL;"
      // Pages read through a shared mapping rather than a read() copy each time another process's write
      // invalidates this connection's cache (the queue is small: 64 MiB covers it).
      "PRAGMA mmap_size=67108864;"
      "CREATE TABLE IF NOT EXISTS pools(id TEXT PRIMARY KEY, spec TEXT NOT NULL, updated INTEGER NOT NULL);"
      "CREATE TABLE IF NOT EXISTS nodes(seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE NOT NULL,"
      " pool TEXT NOT NULL, shape INTEGER NOT NULL, state TEXT NOT NULL, pid INTEGER NOT NULL DEFAULT 0,"
      " pid_start INTEGER NOT NULL DEFAULT 0, gpus TEXT NOT NULL, gpu_type TEXT NOT NULL, cpus INTEGER NOT "
      "NULL,"
      " memory INTEGER NOT NULL, started_at INTEGER NOT NULL, last_busy_at INTEGER NOT NULL,"
      " ended_at INTEGER NOT NULL DEFAULT 0, reason TEXT NOT NULL DEFAULT '',"
      " patch_level TEXT NOT NULL DEFAULT '', previous_patch_level TEXT NOT NULL DEFAULT '');"
      "CREATE TABLE IF NOT EXISTS jobs(seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL,"
      " pool TEXT NOT NULL, spec TEXT NOT NULL, status TEXT NOT NULL, infra_failures INTEGER NOT NULL "
      "DEFAULT 0,"
      " program_failures INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
      " node TEXT NOT NULL DEFAULT '', pid INTEGER NOT NULL DEFAULT 0, pgid INTEGER NOT NULL DEFAULT 0,"
      " pid_start INTEGER NOT NULL DEFAULT 0,"
      " gpus TEXT NOT NULL DEFAULT '[]', submitted_at INTEGER NOT NULL, started_at INTEGER NOT NULL DEFAULT "
      "0,"
      " finished_at INTEGER NOT NULL DEFAULT 0, exit_code INTEGER, signal INTEGER,"
      " reason TEXT NOT NULL DEFAULT '', cancel_requested INTEGER NOT NULL DEFAULT 0, secrets BLOB);"
      "CREATE TABLE IF NOT EXISTS quarantine(gpu INTEGER PRIMARY KEY, until INTEGER NOT NULL, reason TEXT "
      "NOT NULL);"
      // Nodes that failed a patch (docs/compute.md, "Patching nodes"): failure_threshold of them halt
      // the level.
      "CREATE TABLE IF NOT EXISTS patch_failures(pool TEXT NOT NULL, level TEXT NOT NULL, node TEXT NOT NULL,"
      " at INTEGER NOT NULL, reason TEXT NOT NULL, PRIMARY KEY(pool, level, node));"
      "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL,"
      " pool TEXT NOT NULL, node TEXT NOT NULL, job TEXT NOT NULL, text TEXT NOT NULL);"
      "CREATE INDEX IF NOT EXISTS jobs_by_pool_status ON jobs(pool, status, seq);"
      // Waiting jobs in FIFO order without a sort (a claim reads the first that fits, not all of them),
      // and a node's running jobs without a scan of the table.
      "CREATE INDEX IF NOT EXISTS jobs_waiting ON jobs(pool, seq) WHERE status IN ('pending','provisioning');"
      "CREATE INDEX IF NOT EXISTS jobs_running_by_node ON jobs(node) WHERE status = 'running';";
  char* err = nullptr;
  if (sqlite3_exec(db_, schema, nullptr, nullptr, &err) != SQLITE_OK) {
    *error = "cannot set up " + db.string() + ": " + (err ? err : "unknown error");
    sqlite3_free(err);
    return false;
  }
  // Queues made before patching (docs/compute.md, "Patching nodes") and its
  // rollback get the columns; another process adding one at the same moment
  // is fine (duplicate column).
  for (const char* column : {"patch_level", "previous_patch_level"}) {
    bool has = false;
    {
      Stmt q(db_, "SELECT 1 FROM pragma_table_info('nodes') WHERE name = ?1");
      q.Bind(1, std::string(column));
      has = q.Row();
    }
    const std::string alter = std::string("ALTER TABLE nodes ADD COLUMN ") + column + " TEXT NOT NULL DEFAULT ''";
    if (!has && sqlite3_exec(db_, alter.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string why = err ? err : "unknown error";
      sqlite3_free(err);
      if (why.find("duplicate column") == std::string::npos)
        return *error = "cannot set up " + db.string() + ": " + why, false;
    }
  }
  for (const char* suffix : {"-wal", "-shm"}) ::chmod((db.string() + suffix).c_str(), 0600);
  return true;
}

// ------------------------------------------------------------------ pools

bool Queue::PutPool(const PoolSpec& pool, std::string* error) {
  std::lock_guard lock(mu_);
  if (pool.shapes.empty()) return *error = "pool " + pool.id + " has no shape: add a shape block", false;
  {
    Tx tx(db_);
    Stmt q(db_,
           "INSERT INTO pools(id, spec, updated) VALUES(?1, ?2, ?3) "
           "ON CONFLICT(id) DO UPDATE SET spec = excluded.spec, updated = excluded.updated");
    q.Bind(1, pool.id).Bind(2, PoolJson(pool).dump()).Bind(3, NowMs());
    if (!tx.ok() || !q.Done() || !tx.Commit()) {
      return *error = std::string("cannot record pool ") + pool.id + ": " + sqlite3_errmsg(db_), false;
    }
  }
  AddEvent(pool.id, "", "", "pool recorded");
  return EnsureCapacityLocked(pool.id, error);
}

std::optional<PoolSpec> Queue::GetPool(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "SELECT spec FROM pools WHERE id = ?1");
  q.Bind(1, id);
  if (!q.Row()) return std::nullopt;
  return PoolFromJson(json::parse(q.Text(0), nullptr, false));
}

std::vector<PoolSpec> Queue::ListPools() {
  std::lock_guard lock(mu_);
  std::vector<PoolSpec> out;
  Stmt q(db_, "SELECT spec FROM pools ORDER BY id");
  while (q.Row()) out.push_back(PoolFromJson(json::parse(q.Text(0), nullptr, false)));
  return out;
}

bool Queue::RemovePool(const std::string& pool_id, bool force, std::string* error) {
  std::vector<std::pair<int, uint64_t>> agents;
  std::vector<std::string> node_names;
  {
    std::lock_guard lock(mu_);
    Tx tx(db_);
    if (!tx.ok()) return *error = std::string("cannot remove pool: ") + sqlite3_errmsg(db_), false;
    int active = 0;
    {
      Stmt q(db_,
             "SELECT count(*) FROM jobs WHERE pool = ?1 AND status IN ('pending','provisioning','running')");
      q.Bind(1, pool_id);
      if (q.Row()) active = static_cast<int>(q.Int(0));
    }
    if (active > 0 && !force) {
      *error = "pool " + pool_id + " still has " + std::to_string(active) +
               " pending or running jobs: cancel them (plinth job cancel) or remove them first";
      return false;
    }
    Stmt c(
        db_,
        "UPDATE jobs SET cancel_requested = 1, status = CASE WHEN status = 'running' THEN status ELSE "
        "'cancelled' END, reason = 'its pool was removed', finished_at = CASE WHEN status = 'running' THEN "
        "finished_at ELSE ?2 END, secrets = CASE WHEN status = 'running' THEN secrets ELSE NULL END "
        "WHERE pool = ?1 AND status IN ('pending','provisioning','running')");
    c.Bind(1, pool_id).Bind(2, NowMs());
    c.Done();
    {
      Stmt q(db_,
             "SELECT pid, pid_start FROM nodes WHERE pool = ?1 AND pid > 0");  // also agents that are exiting
      q.Bind(1, pool_id);
      while (q.Row()) agents.emplace_back(static_cast<int>(q.Int(0)), static_cast<uint64_t>(q.Int(1)));
    }
    {
      Stmt q(db_, "SELECT name FROM nodes WHERE pool = ?1");
      q.Bind(1, pool_id);
      while (q.Row()) node_names.push_back(q.Text(0));
    }
    Stmt d(db_, "DELETE FROM nodes WHERE pool = ?1");
    d.Bind(1, pool_id);
    d.Done();
    Stmt f(db_, "DELETE FROM patch_failures WHERE pool = ?1");
    f.Bind(1, pool_id);
    f.Done();
    Stmt p(db_, "DELETE FROM pools WHERE id = ?1");
    p.Bind(1, pool_id);
    p.Done();
    if (!tx.Commit()) return *error = std::string("cannot remove pool: ") + sqlite3_errmsg(db_), false;
  }
  // The agents see their rows gone and exit; SIGTERM makes it prompt. One that
  // does not exit within 15 s is killed with its session.
  for (auto [pid, start] : agents) {
    if (pid > 0 && process::ProcessStartTime(pid) == start) ::kill(pid, SIGTERM);
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  for (auto [pid, start] : agents) {
    while (pid > 0 && process::ProcessStartTime(pid) == start && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (pid > 0 && process::ProcessStartTime(pid) == start)
      process::SignalGroupMembers(pid, pid, start, SIGKILL);
  }
  for (const auto& name : node_names) Unreserve(dir_, name);  // agents that never claimed theirs
  AddEvent(pool_id, "", "", "pool removed");
  return true;
}

// ------------------------------------------------------------------ jobs

std::optional<JobState> Queue::Submit(const JobSpec& job, std::map<std::string, std::string> secrets,
                                      std::string* error) {
  std::lock_guard lock(mu_);
  auto wipe = [&] {
    for (auto& [k, v] : secrets) explicit_bzero(v.data(), v.size());
  };
  if (job.id.empty() || job.argv.empty()) {
    wipe();
    *error = "a job needs an id and a command";
    return std::nullopt;
  }
  std::optional<std::string> sealed;
  std::string prior;
  if (!secrets.empty()) {
    auto key = storage::LoadWorkspaceKey(options_.workspace_key, true);
    if (!key.ok()) {
      wipe();
      *error = "cannot seal the job's secrets: " + key.error().message;
      return std::nullopt;
    }
    std::string plain = json(secrets).dump(), blob, why;
    bool ok = crypto::SealBlob(key.value().key, 1, SecretsAad(job.id), plain, &blob, &why);
    explicit_bzero(plain.data(), plain.size());
    wipe();
    if (!ok) return *error = "cannot seal the job's secrets: " + why, std::nullopt;
    sealed = blob;
  }
  JobSpec spec = job;
  for (const auto& [k, v] : secrets) {
    if (std::find(spec.secret_names.begin(), spec.secret_names.end(), k) == spec.secret_names.end())
      spec.secret_names.push_back(k);
  }
  {
    Tx tx(db_);
    if (!tx.ok()) return *error = std::string("cannot submit: ") + sqlite3_errmsg(db_), std::nullopt;
    {
      Stmt p(db_, "SELECT 1 FROM pools WHERE id = ?1");
      p.Bind(1, job.pool);
      if (!p.Row()) {
        *error = "pool " + job.pool + " does not exist: apply the configuration that declares it first";
        return std::nullopt;
      }
    }
    for (const auto& dep : job.after) {
      Stmt d(db_, "SELECT 1 FROM jobs WHERE id = ?1");
      d.Bind(1, dep);
      if (!d.Row()) {
        *error = "job " + job.id + " runs after " + dep + ", which is not in the queue: submit it first";
        return std::nullopt;
      }
    }
    std::string status;
    {
      Stmt e(db_, "SELECT status FROM jobs WHERE id = ?1");
      e.Bind(1, job.id);
      if (e.Row()) status = e.Text(0);
    }
    if (status.empty()) {
      Stmt ins(
          db_,
          "INSERT INTO jobs(id, pool, spec, status, submitted_at, secrets) VALUES(?1,?2,?3,'pending',?4,?5)");
      ins.Bind(1, job.id)
          .Bind(2, job.pool)
          .Bind(3, JobJson(spec).dump())
          .Bind(4, NowMs())
          .BindBlob(5, sealed);
      if (!ins.Done()) return *error = std::string("cannot submit: ") + sqlite3_errmsg(db_), std::nullopt;
    } else if (status == "failed" || status == "cancelled") {
      Stmt up(db_,
              "UPDATE jobs SET status='pending', spec=?2, infra_failures=0, program_failures=0, attempts=0,"
              " node='', pid=0, pid_start=0, started_at=0, finished_at=0, exit_code=NULL, signal=NULL,"
              " reason='', cancel_requested=0, secrets=?3, submitted_at=?4 WHERE id=?1");
      up.Bind(1, job.id).Bind(2, JobJson(spec).dump()).BindBlob(3, sealed).Bind(4, NowMs());
      if (!up.Done()) return *error = std::string("cannot submit: ") + sqlite3_errmsg(db_), std::nullopt;
    } else {
      tx.Commit();
      return GetJob(job.id);
    }
    prior = status;
    AddEvent(job.pool, "", job.id, prior.empty() ? "submitted" : "submitted again after it " + prior);
    if (!tx.Commit()) return *error = std::string("cannot submit: ") + sqlite3_errmsg(db_), std::nullopt;
  }
  if (auto pool = GetPool(job.pool)) {
    if (std::string why = NoShapeFits(*pool, job); !why.empty()) {
      Stmt u(db_, "UPDATE jobs SET reason = ?2 WHERE id = ?1 AND status = 'pending'");
      u.Bind(1, job.id).Bind(2, why);
      u.Done();
      AddEvent(job.pool, "", job.id, "cannot be placed: " + why);
    }
  }
  std::string why;
  if (!EnsureCapacityLocked(job.pool, &why)) {
    // The job is queued; say why no node comes for it (an agent or a later submit retries).
    Stmt u(db_, "UPDATE jobs SET reason = ?2 WHERE id = ?1 AND status IN ('pending','provisioning')");
    u.Bind(1, job.id).Bind(2, "cannot provision a node: " + why);
    u.Done();
    AddEvent(job.pool, "", job.id, "cannot provision a node: " + why);
  }
  return GetJob(job.id);
}

std::optional<JobState> Queue::GetJob(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt q(db_, (std::string("SELECT ") + kJobCols + " FROM jobs WHERE id = ?1").c_str());
  q.Bind(1, id);
  if (!q.Row()) return std::nullopt;
  JobState s = ReadJob(q);
  s.log_path = (dir_ / "jobs" / SafeJobName(id) / "log").string();
  return s;
}

std::vector<JobState> Queue::ListJobs(const std::string& pool_id) {
  std::lock_guard lock(mu_);
  std::vector<JobState> out;
  Stmt q(db_,
         (std::string("SELECT ") + kJobCols + " FROM jobs WHERE ?1 = '' OR pool = ?1 ORDER BY seq").c_str());
  q.Bind(1, pool_id);
  while (q.Row()) {
    out.push_back(ReadJob(q));
    out.back().log_path = (dir_ / "jobs" / SafeJobName(out.back().spec.id) / "log").string();
  }
  return out;
}

std::map<JobStatus, int> Queue::CountJobs(const std::string& pool_id) {
  std::lock_guard lock(mu_);
  std::map<JobStatus, int> out;
  Stmt q(db_, pool_id.empty() ? "SELECT status, count(*) FROM jobs GROUP BY status"
                              : "SELECT status, count(*) FROM jobs WHERE pool = ?1 GROUP BY status");
  if (!pool_id.empty()) q.Bind(1, pool_id);
  while (q.Row()) out[StatusFromName(q.Text(0))] += static_cast<int>(q.Int(1));
  return out;
}

bool Queue::Cancel(const std::string& id, std::string* error) {
  std::lock_guard lock(mu_);
  Tx tx(db_);
  std::string status, pool;
  {
    Stmt q(db_, "SELECT status, pool FROM jobs WHERE id = ?1");
    q.Bind(1, id);
    if (!q.Row()) return *error = "no job " + id + " in the queue: see plinth job ls", false;
    status = q.Text(0);
    pool = q.Text(1);
  }
  if (status == "running") {
    // The agent that runs it sees the flag: SIGTERM to the group, SIGKILL 10 s later.
    Stmt u(db_, "UPDATE jobs SET cancel_requested = 1 WHERE id = ?1");
    u.Bind(1, id);
    u.Done();
  } else if (status == "pending" || status == "provisioning") {
    Stmt u(db_,
           "UPDATE jobs SET status = 'cancelled', reason = 'cancelled', finished_at = ?2, secrets = NULL "
           "WHERE id = ?1");
    u.Bind(1, id).Bind(2, NowMs());
    u.Done();
  }
  if (!tx.Commit()) return *error = std::string("cannot cancel: ") + sqlite3_errmsg(db_), false;
  if (status != "succeeded" && status != "failed" && status != "cancelled") {
    AddEvent(pool, "", id, status == "running" ? "cancel requested" : "cancelled");
  }
  return true;
}

bool Queue::RemoveJob(const std::string& id, std::string* error) {
  auto job = GetJob(id);
  if (!job) return true;
  if (!IsTerminal(job->status)) {
    if (!Cancel(id, error)) return false;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      Reconcile();
      auto j = GetJob(id);
      if (!j || IsTerminal(j->status)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::lock_guard lock(mu_);
  Stmt d(db_, "DELETE FROM jobs WHERE id = ?1");
  d.Bind(1, id);
  if (!d.Done()) return *error = std::string("cannot remove job: ") + sqlite3_errmsg(db_), false;
  std::error_code ec;
  fs::remove_all(dir_ / "jobs" / SafeJobName(id), ec);
  AddEvent(job->spec.pool, "", id, "removed");
  return true;
}

std::optional<JobState> Queue::Wait(const std::string& id, std::stop_token stop,
                                    const std::function<void(const JobState&)>& progress) {
  std::optional<JobStatus> last;
  auto next_reconcile = std::chrono::steady_clock::now();
  while (!stop.stop_requested()) {
    if (std::chrono::steady_clock::now() >= next_reconcile) {
      Reconcile();
      next_reconcile = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    }
    auto j = GetJob(id);
    if (!j) return std::nullopt;
    if (!last || *last != j->status) {
      last = j->status;
      if (progress) progress(*j);
    }
    if (IsTerminal(j->status)) return j;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return GetJob(id);
}

// ------------------------------------------------------------------ nodes and events

std::vector<NodeState> Queue::ListNodes(const std::string& pool_id, bool include_ended) {
  std::lock_guard lock(mu_);
  std::vector<NodeState> out;
  Stmt q(
      db_,
      (std::string("SELECT ") + kNodeCols + " FROM nodes WHERE (?1 = '' OR pool = ?1) ORDER BY seq").c_str());
  q.Bind(1, pool_id);
  while (q.Row()) {
    NodeState n = ReadNode(q);
    if (include_ended || IsLive(n.state)) out.push_back(std::move(n));
  }
  return out;
}

std::optional<NodeState> Queue::GetNode(const std::string& name) {
  std::lock_guard lock(mu_);
  Stmt q(db_, (std::string("SELECT ") + kNodeCols + " FROM nodes WHERE name = ?1").c_str());
  q.Bind(1, name);
  if (!q.Row()) return std::nullopt;
  return ReadNode(q);
}

std::vector<Event> Queue::Events(const std::string& pool_id, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  Stmt q(
      db_,
      "SELECT at, pool, node, job, text FROM events WHERE ?1 = '' OR pool = ?1 ORDER BY seq DESC LIMIT ?2");
  q.Bind(1, pool_id).Bind(2, static_cast<int64_t>(limit));
  while (q.Row()) out.push_back({q.Int(0), q.Text(1), q.Text(2), q.Text(3), q.Text(4)});
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<Event> Queue::JobEvents(const std::string& job_id, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<Event> out;
  Stmt q(db_, "SELECT at, pool, node, job, text FROM events WHERE job = ?1 ORDER BY seq DESC LIMIT ?2");
  q.Bind(1, job_id).Bind(2, static_cast<int64_t>(limit));
  while (q.Row()) out.push_back({q.Int(0), q.Text(1), q.Text(2), q.Text(3), q.Text(4)});
  std::reverse(out.begin(), out.end());
  return out;
}

void Queue::AddEvent(const std::string& pool, const std::string& node, const std::string& job,
                     const std::string& text) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "INSERT INTO events(at, pool, node, job, text) VALUES(?1,?2,?3,?4,?5)");
  q.Bind(1, NowMs()).Bind(2, pool).Bind(3, node).Bind(4, job).Bind(5, text);
  q.Done();
}

bool Queue::SetNodeState(const std::string& name, const std::string& state, const std::string& reason,
                         bool ended) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "UPDATE nodes SET state = ?2, reason = ?3, ended_at = CASE WHEN ?4 THEN ?5 ELSE ended_at END "
         "WHERE name = ?1");
  q.Bind(1, name).Bind(2, state).Bind(3, reason).Bind(4, ended ? 1 : 0).Bind(5, NowMs());
  return q.Done() && sqlite3_changes(db_) > 0;
}

bool Queue::CordonForPatch(const std::string& name) {
  std::lock_guard lock(mu_);
  Tx tx(db_);
  if (!tx.ok()) return false;
  std::string pool_id, level;
  {
    Stmt q(db_, "SELECT pool, state, patch_level FROM nodes WHERE name = ?1");
    q.Bind(1, name);
    if (!q.Row() || q.Text(1) != "ready") return false;
    pool_id = q.Text(0);
    level = q.Text(2);
  }
  auto pool = GetPool(pool_id);
  if (!pool || pool->patch.empty()) return false;
  // A halted level: only a node at it is cordoned, to be rolled back, and only with a rollback_command.
  const bool roll_back = PatchHalted(*pool);
  if (roll_back && (pool->patch.rollback_command.empty() || level != pool->patch.level)) return false;
  if (!roll_back && level == pool->patch.level) return false;
  int live = 0, cordoned = 0;
  {
    Stmt q(db_,
           "SELECT count(*), coalesce(sum(state IN ('draining','patching')), 0) FROM nodes WHERE pool = ?1 AND "
           "state IN ('provisioning','probing','ready','draining','patching')");
    q.Bind(1, pool_id);
    if (q.Row()) {
      live = static_cast<int>(q.Int(0));
      cordoned = static_cast<int>(q.Int(1));
    }
  }
  if (cordoned >= pool->patch.Allowed(live)) return false;
  // Idle nodes go first: a node with running jobs waits while another ready
  // node behind the level has none (it drains at once).
  {
    Stmt busy(db_, "SELECT count(*) FROM jobs WHERE node = ?1 AND status = 'running'");
    busy.Bind(1, name);
    if (busy.Row() && busy.Int(0) > 0) {
      const std::string sql = std::string(
                                  "SELECT 1 FROM nodes n WHERE n.pool = ?1 AND n.name != ?2 AND n.state = 'ready' "
                                  "AND n.patch_level ") +
                              (roll_back ? "=" : "!=") +
                              " ?3 AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.node = n.name AND "
                              "j.status = 'running') LIMIT 1";
      Stmt idle(db_, sql.c_str());
      idle.Bind(1, pool_id).Bind(2, name).Bind(3, pool->patch.level);
      if (idle.Row()) return false;
    }
  }
  Stmt u(db_, "UPDATE nodes SET state = 'draining', reason = ?2 WHERE name = ?1 AND state = 'ready'");
  u.Bind(1, name).Bind(2, (roll_back ? "cordoned to roll back patch level " : "cordoned for patch level ") +
                             pool->patch.level);
  if (!u.Done() || sqlite3_changes(db_) == 0) return false;
  return tx.Commit();
}

bool Queue::MoveNode(const std::string& name, const std::string& from, const std::string& to,
                     const std::string& reason) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "UPDATE nodes SET state = ?3, reason = ?4 WHERE name = ?1 AND state = ?2");
  q.Bind(1, name).Bind(2, from).Bind(3, to).Bind(4, reason);
  return q.Done() && sqlite3_changes(db_) > 0;
}

bool Queue::SetPatchLevel(const std::string& name, const std::string& level) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "UPDATE nodes SET previous_patch_level = patch_level, patch_level = ?2 WHERE name = ?1");
  q.Bind(1, name).Bind(2, level);
  return q.Done() && sqlite3_changes(db_) > 0;
}

void Queue::RecordPatchFailure(const std::string& pool, const std::string& level, const std::string& node,
                               const std::string& reason) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "INSERT INTO patch_failures(pool, level, node, at, reason) VALUES(?1,?2,?3,?4,?5) "
         "ON CONFLICT(pool, level, node) DO UPDATE SET at = excluded.at, reason = excluded.reason");
  q.Bind(1, pool).Bind(2, level).Bind(3, node).Bind(4, NowMs()).Bind(5, reason);
  q.Done();
}

int Queue::PatchFailures(const std::string& pool, const std::string& level) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "SELECT count(*) FROM patch_failures WHERE pool = ?1 AND level = ?2");
  q.Bind(1, pool).Bind(2, level);
  return q.Row() ? static_cast<int>(q.Int(0)) : 0;
}

bool Queue::PatchHalted(const PoolSpec& pool) {
  return !pool.patch.empty() && PatchFailures(pool.id, pool.patch.level) >= std::max(1, pool.patch.failure_threshold);
}

bool Queue::RecordAgent(const std::string& name, pid_t pid, uint64_t start) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "UPDATE nodes SET pid = ?2, pid_start = ?3 WHERE name = ?1");
  q.Bind(1, name).Bind(2, pid).Bind(3, static_cast<int64_t>(start));
  return q.Done() && sqlite3_changes(db_) > 0;
}

void Queue::Quarantine(int gpu, int64_t until_ms, const std::string& reason) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "INSERT INTO quarantine(gpu, until, reason) VALUES(?1,?2,?3) "
         "ON CONFLICT(gpu) DO UPDATE SET until = excluded.until, reason = excluded.reason");
  q.Bind(1, gpu).Bind(2, until_ms).Bind(3, reason);
  q.Done();
}

// ------------------------------------------------------------------ reconcile

void Queue::Reconcile() {
  std::lock_guard lock(mu_);
  ReconcileLocked();
}

void Queue::ReconcileLocked() {
  struct Lost {
    std::string name, pool;
    int pid;
    std::string why;
  };
  std::vector<Lost> lost;
  {
    Stmt q(db_,
           "SELECT name, pool, pid, pid_start, started_at, state FROM nodes "
           "WHERE state IN ('provisioning','probing','ready','draining','patching')");
    int64_t now = NowMs();
    while (q.Row()) {
      int pid = static_cast<int>(q.Int(2));
      uint64_t start = static_cast<uint64_t>(q.Int(3));
      if (pid == 0) {
        if (now - q.Int(4) > kProvisionTimeoutMs)
          lost.push_back({q.Text(0), q.Text(1), 0, "its agent never started"});
        continue;
      }
      if (process::ProcessStartTime(pid) != start) {
        lost.push_back({q.Text(0), q.Text(1), pid, "its agent (pid " + std::to_string(pid) + ") is gone"});
      }
    }
  }
  std::set<std::string> pools;
  for (const Lost& n : lost) {
    Tx tx(db_);
    if (!tx.ok()) return;
    // Another process may have handled it already (idempotent).
    {
      Stmt s(db_, "SELECT state FROM nodes WHERE name = ?1");
      s.Bind(1, n.name);
      if (!s.Row() || !IsLive(s.Text(0))) continue;
    }
    {
      Stmt u(db_, "UPDATE nodes SET state = 'lost', reason = ?2, ended_at = ?3 WHERE name = ?1");
      u.Bind(1, n.name).Bind(2, n.why).Bind(3, NowMs());
      u.Done();
    }
    Unreserve(dir_, n.name);  // an agent that never claimed its CPUs and memory leaves them here
    struct Run {
      std::string id;
      int pgid;
      uint64_t start;
      int infra;
      int max_infra;
      bool cancel;
    };
    std::vector<Run> runs;
    {
      Stmt j(db_,
             "SELECT id, pgid, pid_start, infra_failures, spec, cancel_requested FROM jobs "
             "WHERE node = ?1 AND status = 'running'");
      j.Bind(1, n.name);
      while (j.Row()) {
        JobSpec spec = JobFromJson(json::parse(j.Text(4), nullptr, false));
        runs.push_back({j.Text(0), static_cast<int>(j.Int(1)), static_cast<uint64_t>(j.Int(2)),
                        static_cast<int>(j.Int(3)), spec.retries.infrastructure, j.Int(5) != 0});
      }
    }
    std::vector<std::pair<std::string, std::string>> events{{"", "node lost: " + n.why}};
    for (const Run& r : runs) {
      // What is left of the job's group: same group, the dead agent's session, started no earlier.
      if (r.pgid > 0 && n.pid > 0) process::SignalGroupMembers(r.pgid, n.pid, r.start, SIGKILL);
      int infra = r.infra + 1;
      std::string status, reason;
      if (r.cancel) {
        status = "cancelled", reason = "cancelled";
      } else if (infra <= r.max_infra) {
        status = "pending";
        reason =
            "node " + n.name + " lost; retry " + std::to_string(infra) + " of " + std::to_string(r.max_infra);
      } else {
        status = "failed", reason = "node lost";
      }
      Stmt u(db_,
             "UPDATE jobs SET status = ?2, reason = ?3, infra_failures = ?4, pid = 0, pgid = 0, "
             "finished_at = CASE WHEN ?2 = 'pending' THEN 0 ELSE ?5 END, "
             "secrets = CASE WHEN ?2 = 'pending' THEN secrets ELSE NULL END WHERE id = ?1");
      u.Bind(1, r.id).Bind(2, status).Bind(3, reason).Bind(4, infra).Bind(5, NowMs());
      u.Done();
      events.emplace_back(r.id,
                          status == "pending" ? "infrastructure failure: " + reason : status + ": " + reason);
    }
    tx.Commit();
    for (const auto& [job, text] : events) AddEvent(n.pool, n.name, job, text);
    pools.insert(n.pool);
  }
  // Pools with jobs waiting (for room another node held, or after a lost
  // node) get their chance to provision: a node that ended elsewhere, in this
  // workspace or another, may have left room.
  {
    Stmt q(db_,
           "SELECT id FROM pools WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.pool = pools.id AND "
           "jobs.status = 'pending')");
    while (q.Row()) pools.insert(q.Text(0));
  }
  for (const auto& p : pools) {
    std::string why;
    EnsureCapacityLocked(p, &why);
  }
}

// ------------------------------------------------------------------ capacity

bool Queue::EnsureCapacity(const std::string& pool_id, std::string* error) {
  std::lock_guard lock(mu_);
  return EnsureCapacityLocked(pool_id, error);
}

bool Queue::AnyPendingEligible(const std::string& pool_id) {
  std::lock_guard lock(mu_);
  // Jobs without dependencies first (no JSON decoding), then the others.
  {
    Stmt q(db_,
           "SELECT 1 FROM jobs WHERE pool = ?1 AND status IN ('pending','provisioning') AND "
           "json_array_length(spec, '$.after') = 0 LIMIT 1");
    q.Bind(1, pool_id);
    if (q.Row()) return true;
  }
  Stmt q(db_,
         "SELECT spec FROM jobs WHERE pool = ?1 AND status IN ('pending','provisioning') AND "
         "json_array_length(spec, '$.after') > 0");
  q.Bind(1, pool_id);
  while (q.Row()) {
    JobSpec s = JobFromJson(json::parse(q.Text(0), nullptr, false));
    bool ready = true;
    for (const auto& d : s.after) {
      Stmt ds(db_, "SELECT status FROM jobs WHERE id = ?1");
      ds.Bind(1, d);
      if (!ds.Row() || ds.Text(0) != "succeeded") ready = false;
    }
    if (ready) return true;
  }
  return false;
}

bool Queue::EnsureCapacityLocked(const std::string& pool_id, std::string* error) {
  auto pool = GetPool(pool_id);
  if (!pool) return *error = "pool " + pool_id + " does not exist", false;
  {
    // A full pool (at max_nodes and min_nodes) cannot grow: answered without
    // taking the write lock, as most calls (every submit, every agent each
    // second) find it so.
    Stmt q(db_, "SELECT count(*) FROM nodes WHERE pool = ?1 AND state IN ('provisioning','probing','ready','draining','patching')");
    q.Bind(1, pool_id);
    int live = q.Row() ? static_cast<int>(q.Int(0)) : 0;
    if (live >= pool->max_nodes && live >= pool->min_nodes) return true;
  }
  Inventory inv;
  if (!DiscoverInventory(&inv, error)) return false;

  std::vector<std::string> to_spawn;
  {
    Tx tx(db_);
    if (!tx.ok()) return *error = std::string("cannot provision: ") + sqlite3_errmsg(db_), false;
    // Live nodes of the pool and what is left on them.
    struct Slot {
      int cpus;
      uint64_t memory;
      int gpus;
    };
    std::vector<Slot> slots;
    std::set<int> held;  // GPUs of live nodes of this workspace
    {
      Stmt q(db_, (std::string("SELECT ") + kNodeCols +
                   " FROM nodes WHERE state IN "
                   "('provisioning','probing','ready','draining','patching')")
                      .c_str());
      while (q.Row()) {
        NodeState n = ReadNode(q);
        for (int g : n.gpus) held.insert(g);
        if (n.pool != pool_id) continue;
        Slot s{n.cpus, n.memory_bytes, static_cast<int>(n.gpus.size())};
        if (n.state == "draining" || n.state == "patching") s = Slot{0, 0, 0};  // cordoned: takes no job
        Stmt r(db_, "SELECT spec FROM jobs WHERE node = ?1 AND status = 'running'");
        r.Bind(1, n.name);
        while (r.Row()) {
          JobSpec js = JobFromJson(json::parse(r.Text(0), nullptr, false));
          s.cpus -= js.cpus;
          s.memory -= std::min(s.memory, js.memory_bytes);
          s.gpus -= js.gpus;
        }
        slots.push_back(s);
      }
    }
    std::set<int> quarantined;
    {
      Stmt q(db_, "SELECT gpu FROM quarantine WHERE until > ?1");
      q.Bind(1, NowMs());
      while (q.Row()) quarantined.insert(static_cast<int>(q.Int(0)));
    }
    // A pool at max_nodes (and min_nodes) cannot grow: nothing to place. This
    // keeps a submit (and an agent's call every second) from reading every
    // pending job of a full pool; a new job's "cannot run in this pool" reason
    // is set by Submit.
    if (static_cast<int>(slots.size()) >= pool->max_nodes &&
        static_cast<int>(slots.size()) >= pool->min_nodes) {
      tx.Commit();
      return true;
    }
    // Eligible pending jobs in FIFO order.
    struct Pending {
      std::string id, reason;
      JobSpec spec;
    };
    std::vector<Pending> pending;
    {
      Stmt q(db_,
             "SELECT id, spec, reason FROM jobs WHERE pool = ?1 AND status IN ('pending','provisioning') "
             "ORDER BY seq");
      q.Bind(1, pool_id);
      while (q.Row()) {
        JobSpec s = JobFromJson(json::parse(q.Text(1), nullptr, false));
        bool ready = true;
        for (const auto& d : s.after) {
          Stmt ds(db_, "SELECT status FROM jobs WHERE id = ?1");
          ds.Bind(1, d);
          if (!ds.Row() || ds.Text(0) != "succeeded") ready = false;
        }
        if (ready) pending.push_back({q.Text(0), q.Text(2), s});
      }
    }
    auto fits = [](const Slot& s, const JobSpec& j) {
      return s.cpus >= j.cpus && s.gpus >= j.gpus &&
             (j.memory_bytes == 0 || s.memory == 0 || s.memory >= j.memory_bytes);
    };
    int live = static_cast<int>(slots.size());
    std::vector<std::pair<std::string, std::string>> events;   // job, text
    std::vector<std::pair<std::string, std::string>> reasons;  // job, new pending reason
    std::vector<std::string> waiting;                          // jobs a node is being provisioned for
    bool want_node = live < pool->min_nodes;
    for (Pending& p : pending) {
      bool placed = false;
      for (Slot& s : slots) {
        if (fits(s, p.spec)) {
          s.cpus -= p.spec.cpus;
          s.gpus -= p.spec.gpus;
          s.memory -= std::min(s.memory, p.spec.memory_bytes);
          placed = true;
          break;
        }
      }
      if (placed) continue;
      if (std::string why = NoShapeFits(*pool, p.spec); !why.empty()) {
        if (p.reason != why) {
          reasons.emplace_back(p.id, why);
          events.emplace_back(p.id, "cannot be placed: " + why);
        }
        continue;
      }
      want_node = true;
      waiting.push_back(p.id);
    }
    // Provision while jobs wait (or the pool is below min_nodes) and there is room.
    std::string skipped_all;
    // An agent that cannot start or dies at once must not be restarted in a
    // loop: after kMaxRecentFailures failed or lost nodes within a minute the
    // pool waits (the next call after that minute tries again).
    int recent_failures = 0;
    std::string blocked;
    {
      Stmt q(db_,
             "SELECT count(*) FROM nodes WHERE pool = ?1 AND state IN ('failed','lost') AND ended_at > ?2");
      q.Bind(1, pool_id).Bind(2, NowMs() - 60000);
      if (q.Row()) recent_failures = static_cast<int>(q.Int(0));
    }
    if (want_node && live < pool->max_nodes && recent_failures >= kMaxRecentFailures) {
      want_node = false;
      blocked = std::to_string(recent_failures) +
                " nodes of this pool failed or were lost in the last minute (see "
                "plinth compute status and the node logs)";
      events.emplace_back("", "not provisioning: " + blocked);
    }
    // CPUs and memory held by the live nodes of every workspace on this
    // machine (ledger.h), read once under the machine-wide ledger lock, which
    // is kept until the new nodes' entries are written.
    std::optional<LedgerLock> ledger;
    HeldResources machine_held;
    bool only_held = true;  // every skip so far is for room others hold (it frees when a node ends)
    while (want_node && live < pool->max_nodes) {
      std::optional<size_t> chosen;
      std::vector<int> gpus;
      std::string gpu_type;
      for (size_t i = 0; i < pool->shapes.size(); ++i) {
        const Shape& sh = pool->shapes[i];
        std::string label = "shape " + std::to_string(i + 1) + " (" + Describe(sh) + ")";
        if (std::string misfit = ShapeMisfit(sh, inv); !misfit.empty()) {
          events.emplace_back("", label + " skipped: " + misfit);
          skipped_all += (skipped_all.empty() ? "" : "; ") + label + ": " + misfit;
          only_held = false;
          continue;
        }
        if (!ledger) {
          ledger.emplace();
          if (!ledger->ok(error)) return false;
          machine_held = ReadHeld();
        }
        if (std::string why = HeldMisfit(sh, inv, machine_held); !why.empty()) {
          events.emplace_back("", label + " skipped: " + why);
          skipped_all += (skipped_all.empty() ? "" : "; ") + label + ": " + why;
          continue;
        }
        gpus.clear();
        if (sh.accelerators.count > 0 && !sh.accelerators.IsQpuSim()) {
          for (const Gpu& g : inv.gpus) {
            if (static_cast<int>(gpus.size()) == sh.accelerators.count) break;
            if (!GpuTypeMatches(sh.accelerators.type, g.type) || held.count(g.index) ||
                quarantined.count(g.index))
              continue;
            if (!GpuLockFree(g.index)) continue;
            gpus.push_back(g.index);
            gpu_type = g.type;
          }
          if (static_cast<int>(gpus.size()) < sh.accelerators.count) {
            std::string why = "its GPUs are held by other nodes";
            bool any_q = false;
            for (const Gpu& g : inv.gpus)
              any_q = any_q || (quarantined.count(g.index) && GpuTypeMatches(sh.accelerators.type, g.type));
            if (any_q) {
              why += " or quarantined after a failed health gate";
              only_held = false;
            }
            events.emplace_back("", label + " skipped: " + why);
            skipped_all += (skipped_all.empty() ? "" : "; ") + label + ": " + why;
            continue;
          }
        }
        chosen = i;
        break;
      }
      if (!chosen) break;
      const Shape& sh = pool->shapes[*chosen];
      int64_t seq = 0;
      {
        Stmt s(db_, "SELECT seq FROM sqlite_sequence WHERE name = 'nodes'");
        if (s.Row()) seq = s.Int(0);
      }
      std::string name = pool->region + "-" + pool->name + "-" + std::to_string(seq + 1);
      if (!ReserveLocked(dir_, name, sh.cpus, sh.memory_bytes, error)) {
        for (const auto& n : to_spawn) Unreserve(dir_, n);
        *error = "cannot provision: " + *error;
        return false;
      }
      machine_held.cpus += sh.cpus;
      machine_held.memory_bytes += sh.memory_bytes;
      machine_held.cpu_nodes.push_back(name);
      if (sh.memory_bytes > 0) machine_held.memory_nodes.push_back(name);
      Stmt ins(db_,
               "INSERT INTO nodes(name, pool, shape, state, gpus, gpu_type, cpus, memory, started_at, "
               "last_busy_at) VALUES(?1,?2,?3,'provisioning',?4,?5,?6,?7,?8,?8)");
      ins.Bind(1, name)
          .Bind(2, pool_id)
          .Bind(3, static_cast<int64_t>(*chosen))
          .Bind(4, GpusText(gpus))
          .Bind(5, gpu_type)
          .Bind(6, sh.cpus)
          .Bind(7, static_cast<int64_t>(sh.memory_bytes))
          .Bind(8, NowMs());
      if (!ins.Done()) {
        *error = std::string("cannot provision: ") + sqlite3_errmsg(db_);
        Unreserve(dir_, name);
        for (const auto& n : to_spawn) Unreserve(dir_, n);
        return false;
      }
      for (int g : gpus) held.insert(g);
      events.emplace_back("", "node " + name + " provisioned with shape " + std::to_string(*chosen + 1) +
                                  " (" + Describe(sh) + ")");
      to_spawn.push_back(name);
      ++live;
      // The new node's room serves the waiting jobs in order.
      Slot s{sh.cpus, sh.memory_bytes, sh.accelerators.count};
      std::vector<std::string> still;
      for (const auto& id : waiting) {
        auto it = std::find_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.id == id; });
        if (it != pending.end() && fits(s, it->spec)) {
          s.cpus -= it->spec.cpus;
          s.gpus -= it->spec.gpus;
          s.memory -= std::min(s.memory, it->spec.memory_bytes);
          reasons.emplace_back(id, "waiting for node " + name);
        } else {
          still.push_back(id);
        }
      }
      waiting = still;
      want_node = !waiting.empty() || live < pool->min_nodes;
    }
    for (const auto& id : waiting) {
      std::string why = !blocked.empty()          ? "not provisioning: " + blocked
                        : live >= pool->max_nodes ? "waiting for room: the pool has its " +
                                                        std::to_string(pool->max_nodes) + " nodes"
                        : only_held ? "waiting for room on this machine: " + skipped_all
                                    : "no shape can be placed now: " + skipped_all;
      auto it = std::find_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.id == id; });
      if (it != pending.end() && it->reason != why) reasons.emplace_back(id, why);
    }
    for (const auto& [id, why] : reasons) {
      Stmt u(
          db_,
          "UPDATE jobs SET reason = ?2, status = CASE WHEN ?2 LIKE 'waiting for node %' THEN 'provisioning' "
          "ELSE 'pending' END WHERE id = ?1 AND status IN ('pending','provisioning')");
      u.Bind(1, id).Bind(2, why);
      u.Done();
    }
    if (!tx.Commit()) {
      for (const auto& n : to_spawn) Unreserve(dir_, n);
      return *error = std::string("cannot provision: ") + sqlite3_errmsg(db_), false;
    }
    ledger.reset();  // the new entries are written: other provisioners may count them
    // Events after the commit (each its own write).
    // An event already recorded in the last minute is not repeated (agents call this every second
    // while work waits).
    std::set<std::string> seen;
    {
      Stmt q(db_, "SELECT job, text FROM events WHERE pool = ?1 AND at > ?2");
      q.Bind(1, pool_id).Bind(2, NowMs() - 60000);
      while (q.Row()) seen.insert(q.Text(0) + '\n' + q.Text(1));
    }
    for (const auto& [job, text] : events) {
      if (text.rfind("node ", 0) != 0 && !seen.insert(job + '\n' + text).second) continue;
      AddEvent(pool_id, "", job, text);
    }
  }
  bool ok = true;
  for (const auto& name : to_spawn) {
    std::string why;
    if (!SpawnAgent(name, &why)) {
      ok = false;
      *error = why;
      SetNodeState(name, "failed", why, true);
      Unreserve(dir_, name);
      AddEvent(pool_id, name, "", "node failed: " + why);
    }
  }
  return ok;
}

bool Queue::SpawnAgent(const std::string& node, std::string* error) {
  process::Spec spec;
  spec.program = options_.agent_program;
  spec.args = {"compute", "agent", "--compute-dir=" + dir_.string(), "--node=" + node};
  spec.env = AgentEnvironment();
  if (!options_.workspace_key.empty())
    spec.env["PLINTH_WORKSPACE_KEY_FILE"] = fs::absolute(options_.workspace_key).string();
  spec.output_file = dir_ / "nodes" / (node + ".log");
  spec.cwd = dir_;
  pid_t pid = process::StartDaemon(std::move(spec), error);
  if (pid <= 0) return false;
  // The agent records itself too; whichever writes first, the values are the
  // same. An agent already gone gets start time 0, which no live process has,
  // so the next Reconcile finds the node lost.
  uint64_t start = process::ProcessStartTime(pid).value_or(0);
  Stmt q(db_, "UPDATE nodes SET pid = ?2, pid_start = ?3 WHERE name = ?1 AND pid = 0");
  q.Bind(1, node).Bind(2, pid).Bind(3, static_cast<int64_t>(start));
  q.Done();
  return true;
}

// ------------------------------------------------------------------ agent side

std::optional<Claimed> Queue::Claim(const NodeState& node, int free_cpus, uint64_t free_memory,
                                    const std::vector<int>& free_gpus) {
  std::lock_guard lock(mu_);
  if (free_cpus <= 0) return std::nullopt;  // every job needs a CPU
  {
    // Nothing that could fit: answered without the write lock (agents ask after every job and every
    // 100 ms).
    Stmt q(db_,
           "SELECT 1 FROM jobs WHERE pool = ?1 AND status IN ('pending','provisioning') AND "
           "json_extract(spec, '$.cpus') <= ?2 AND json_extract(spec, '$.gpus') <= ?3 LIMIT 1");
    q.Bind(1, node.pool)
        .Bind(2, static_cast<int64_t>(free_cpus))
        .Bind(3, static_cast<int64_t>(free_gpus.size()));
    if (!q.Row()) return std::nullopt;
  }
  Tx tx(db_);
  if (!tx.ok()) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> events;
  std::optional<Claimed> claimed;
  {
    // Only jobs that fit the free part of the node are decoded (a busy node
    // asks often, and the queue may hold thousands).
    Stmt q(db_, (std::string("SELECT ") + kJobCols +
                 " FROM jobs WHERE pool = ?1 AND status IN "
                 "('pending','provisioning') AND json_extract(spec, '$.cpus') <= ?2 AND "
                 "json_extract(spec, '$.gpus') <= ?3 ORDER BY seq")
                    .c_str());
    q.Bind(1, node.pool)
        .Bind(2, static_cast<int64_t>(free_cpus))
        .Bind(3, static_cast<int64_t>(free_gpus.size()));
    while (q.Row()) {
      JobState j = ReadJob(q);
      bool ready = true;
      std::string dead_dep;
      for (const auto& d : j.spec.after) {
        Stmt ds(db_, "SELECT status FROM jobs WHERE id = ?1");
        ds.Bind(1, d);
        std::string st = ds.Row() ? ds.Text(0) : "removed";
        if (st == "failed" || st == "cancelled" || st == "removed") dead_dep = d + " " + st;
        if (st != "succeeded") ready = false;
      }
      if (!dead_dep.empty()) {
        Stmt c(db_,
               "UPDATE jobs SET status = 'cancelled', reason = ?2, finished_at = ?3, secrets = NULL WHERE id "
               "= ?1");
        std::string why = "dependency " + dead_dep;
        c.Bind(1, j.spec.id).Bind(2, why).Bind(3, NowMs());
        c.Done();
        events.emplace_back(j.spec.id, "cancelled: " + why);
        continue;
      }
      if (!ready) continue;
      if (j.spec.cpus > free_cpus || j.spec.gpus > static_cast<int>(free_gpus.size())) continue;
      if (j.spec.memory_bytes > 0 && free_memory > 0 && j.spec.memory_bytes > free_memory) continue;
      Claimed c;
      c.gpus.assign(free_gpus.begin(), free_gpus.begin() + j.spec.gpus);
      c.dir = dir_ / "jobs" / SafeJobName(j.spec.id);
      j.status = JobStatus::kRunning;
      j.node = node.name;
      j.attempts += 1;
      j.started_at_ms = NowMs();
      j.log_path = (c.dir / "log").string();
      c.job = j;
      claimed = c;
      break;
    }
  }
  if (claimed) {
    Stmt u(db_,
           "UPDATE jobs SET status = 'running', node = ?2, attempts = ?3, started_at = ?4, finished_at = 0, "
           "gpus = ?5, pid = 0, pgid = 0, pid_start = 0, reason = '', exit_code = NULL, signal = NULL WHERE "
           "id = ?1");
    u.Bind(1, claimed->job.spec.id)
        .Bind(2, node.name)
        .Bind(3, claimed->job.attempts)
        .Bind(4, claimed->job.started_at_ms)
        .Bind(5, GpusText(claimed->gpus));
    if (!u.Done() || sqlite3_changes(db_) != 1) return std::nullopt;  // rolled back
    Stmt n(db_, "UPDATE nodes SET last_busy_at = ?2 WHERE name = ?1");
    n.Bind(1, node.name).Bind(2, NowMs());
    n.Done();
  }
  // The events join the claim's transaction (one commit per claim).
  for (const auto& [job, text] : events) AddEvent(node.pool, node.name, job, text);
  if (claimed) {
    std::string gp;
    for (int g : claimed->gpus) {
      if (!gp.empty()) gp += ",";
      gp += std::to_string(g);
    }
    AddEvent(node.pool, node.name, claimed->job.spec.id,
             "running (attempt " + std::to_string(claimed->job.attempts) +
                 (gp.empty() ? "" : ", GPUs " + gp) + ")");
  }
  if (!tx.Commit()) return std::nullopt;
  return claimed;
}

void Queue::RecordJobPid(const std::string& id, int attempt, pid_t pid, uint64_t start) {
  std::lock_guard lock(mu_);
  Stmt q(db_,
         "UPDATE jobs SET pid = ?3, pgid = ?3, pid_start = ?4 WHERE id = ?1 AND attempts = ?2 AND status = "
         "'running'");
  q.Bind(1, id).Bind(2, attempt).Bind(3, pid).Bind(4, static_cast<int64_t>(start));
  q.Done();
}

bool Queue::CancelRequested(const std::string& id) {
  std::lock_guard lock(mu_);
  Stmt q(db_, "SELECT cancel_requested FROM jobs WHERE id = ?1");
  q.Bind(1, id);
  return !q.Row() || q.Int(0) != 0;  // a removed job is cancelled too
}

void Queue::FinishAttempt(const std::string& id, int attempt, const std::string& kind,
                          std::optional<int> exit_code, std::optional<int> signal,
                          const std::string& reason) {
  std::lock_guard lock(mu_);
  std::string pool, node, status, why = reason;
  {
    Tx tx(db_);
    if (!tx.ok()) return;
    Stmt q(db_, (std::string("SELECT ") + kJobCols +
                 ", pool, cancel_requested FROM jobs WHERE id = ?1 AND "
                 "attempts = ?2 AND status = 'running'")
                    .c_str());
    q.Bind(1, id).Bind(2, attempt);
    if (!q.Row()) return;  // Reconcile settled it already, or it was removed
    JobState j = ReadJob(q);
    pool = q.Text(13);
    node = j.node;
    bool cancel = q.Int(14) != 0;
    int infra = j.infrastructure_failures, prog = j.program_failures;
    if (cancel || kind == "cancelled") {
      status = "cancelled";
      why = "cancelled";
    } else if (kind == "infrastructure") {
      ++infra;
      if (infra <= j.spec.retries.infrastructure) {
        status = "pending";
        why = reason + "; retry " + std::to_string(infra) + " of " +
              std::to_string(j.spec.retries.infrastructure);
      } else {
        status = "failed";
      }
    } else if (exit_code == 0 && !signal) {
      status = "succeeded";
      why.clear();
    } else {
      ++prog;
      if (prog <= j.spec.retries.program) {
        status = "pending";
        why = reason + "; retry " + std::to_string(prog) + " of " + std::to_string(j.spec.retries.program);
      } else {
        status = "failed";
      }
    }
    bool terminal = status != "pending";
    Stmt u(db_,
           "UPDATE jobs SET status = ?2, reason = ?3, infra_failures = ?4, program_failures = ?5, "
           "exit_code = ?6, signal = ?7, finished_at = ?8, pid = 0, pgid = 0, "
           "secrets = CASE WHEN ?9 THEN NULL ELSE secrets END WHERE id = ?1");
    u.Bind(1, id)
        .Bind(2, status)
        .Bind(3, why)
        .Bind(4, infra)
        .Bind(5, prog)
        .BindOpt(6, exit_code)
        .BindOpt(7, signal)
        .Bind(8, terminal ? NowMs() : 0)
        .Bind(9, terminal ? 1 : 0);
    u.Done();
    Stmt n(db_, "UPDATE nodes SET last_busy_at = ?2 WHERE name = ?1");
    n.Bind(1, node).Bind(2, NowMs());
    n.Done();
    std::string text =
        status == "pending"
            ? (kind == "infrastructure" ? "infrastructure failure: " : "program failure: ") + why
            : status + (why.empty() ? "" : ": " + why);
    AddEvent(pool, node, id, text);  // in the same transaction
    tx.Commit();
  }
}

bool Queue::OpenSecrets(const std::string& id, std::map<std::string, std::string>* out, std::string* error) {
  std::string blob;
  {
    std::lock_guard lock(mu_);
    Stmt q(db_, "SELECT secrets FROM jobs WHERE id = ?1");
    q.Bind(1, id);
    if (!q.Row() || q.Null(0)) return true;
    blob = q.Blob(0);
  }
  auto key = storage::LoadWorkspaceKey(options_.workspace_key, false);
  if (!key.ok()) return *error = "cannot open the job's secrets: " + key.error().message, false;
  std::string plain;
  if (!crypto::OpenBlob(key.value().key, SecretsAad(id), blob, &plain, nullptr, error)) {
    *error = "cannot open the job's secrets: " + *error;
    return false;
  }
  json j = json::parse(plain, nullptr, false);
  explicit_bzero(plain.data(), plain.size());
  if (!j.is_object()) return *error = "cannot open the job's secrets: not a map", false;
  for (auto& [k, v] : j.items()) (*out)[k] = v.get<std::string>();
  return true;
}

bool Queue::Decommission(const std::string& name, const std::string& reason) {
  std::lock_guard lock(mu_);
  std::string pool;
  {
    Tx tx(db_);
    if (!tx.ok()) return false;
    {
      Stmt q(db_, "SELECT pool, state FROM nodes WHERE name = ?1");
      q.Bind(1, name);
      if (!q.Row() || !IsLive(q.Text(1))) return false;
      pool = q.Text(0);
    }
    auto spec = GetPool(pool);
    int live = 0;
    {
      Stmt q(db_,
             "SELECT count(*) FROM nodes WHERE pool = ?1 AND state IN ('provisioning','probing','ready','draining','patching')");
      q.Bind(1, pool);
      if (q.Row()) live = static_cast<int>(q.Int(0));
    }
    if (spec && live <= spec->min_nodes) return false;
    {
      Stmt q(db_, "SELECT count(*) FROM jobs WHERE node = ?1 AND status = 'running'");
      q.Bind(1, name);
      if (q.Row() && q.Int(0) > 0) return false;
    }
    Stmt u(db_, "UPDATE nodes SET state = 'released', reason = ?2, ended_at = ?3 WHERE name = ?1");
    u.Bind(1, name).Bind(2, reason).Bind(3, NowMs());
    u.Done();
    if (!tx.Commit()) return false;
  }
  AddEvent(pool, name, "", reason);
  return true;
}

}  // namespace plinth::compute
