// plinth-state-bench [--pg=URL] [--ops=N] [--threads=T]: state store
// operations per second, SQLite against PostgreSQL in one run so that the
// ratio compares like with like (same machine, same moment, same workload).
// For each backend, on a fresh state (a new temporary directory for SQLite; a
// new random schema prefix for PostgreSQL, its schema dropped afterwards):
//   1. journal, 1 writer: BeginApply, N x (RecordIntent + CompleteIntent of a
//      create), FinishApply; one change = an intent and its completion;
//   2. reads: Resources() over the N resources, 20 times; then N point reads
//      (Resource(address)) in random order;
//   3. journal, T writer threads on one store (the group commit batches their
//      concurrent writes), N changes in all, a second serial;
//   4. lock: 200 WorkspaceLock::Acquire + Release pairs;
//   5. open: 50 OpenWorkspace(kExisting) of the workspace (the checks a
//      command makes on open included: quick_check for SQLite).
// The phases interleave (phase 1 on SQLite, then on PostgreSQL, then phase
// 2 on each, ...), so that the two figures of a row are taken moments apart.
// The journal runs as apply's does, under the workspace lock (with PostgreSQL
// every write transaction then checks the lease's fence). Without --pg only
// SQLite is measured. Prints a table and, last, one JSON line for scripts.
// Any store error is printed and the exit status is 1.
// Run by bench/state_bench.sh, which starts a throwaway PostgreSQL server.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/state/lock.h"
#include "runtime/state/sql.h"
#include "runtime/state/state_store.h"

namespace fs = std::filesystem;
using namespace plinth;
using namespace plinth::state;
using Clock = std::chrono::steady_clock;

namespace {

constexpr const char* kWorkspace = "bench";
constexpr int kReadPasses = 20;
constexpr int kLockPairs = 200;
constexpr int kOpens = 50;

// A store error: what was being done and the store's message.
struct BenchError {
  std::string message;
};

[[noreturn]] void Fail(const std::string& what, const Error& e) {
  throw BenchError{what + ": " + ErrorCodeName(e.code) + ": " + e.message};
}
template <typename T>
T Check(Result<T> r, const std::string& what) {
  if (!r.ok()) Fail(what, r.error());
  return std::move(r).value();
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

ResourceRecord Bucket(const std::string& address) {
  ResourceRecord r;
  r.address = address;
  r.type = "bucket";
  r.provider = "local";
  r.id = address + "-id";
  r.attributes = {{"name", Value::String(address)},
                  {"quota", Value::Size(1073741824.0)},
                  {"region", Value::String("eu-west-1")},
                  {"versioning", Value::Bool(true)},
                  {"retention", Value::Duration(86400000.0)}};
  return r;
}

// One change as apply makes it: the intent, then its completion.
void Change(StateStore& store, int64_t serial, const std::string& address) {
  ResourceRecord planned = Bucket(address);
  int64_t id = Check(store.RecordIntent(serial, address, Action::kCreate, planned), "record the intent for " + address);
  IntentOutcome done;
  done.resource = planned;
  Check(store.CompleteIntent(id, done), "complete the intent for " + address);
}

// The figures of one backend; names as in the JSON line.
struct Figures {
  double journal_1 = 0, journal_t = 0, scan = 0, lookup = 0, lock = 0, open = 0;
  double seconds = 0;
};

// Where one backend's state lives; cleans it up when done.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual StoreOptions Options(OpenMode mode) const = 0;
  virtual std::string dir() const = 0;
  bool created = false;  // the workspace was created (there is something to clean up)
};

class SqliteBackend : public Backend {
 public:
  SqliteBackend() {
    std::string tmpl = (fs::temp_directory_path() / "plinth-state-bench.XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw BenchError{"sqlite: cannot create a temporary directory under " + fs::temp_directory_path().string()};
    dir_ = tmpl;
  }
  ~SqliteBackend() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string name() const override { return "sqlite"; }
  StoreOptions Options(OpenMode mode) const override {
    StoreOptions o;
    o.backend = "";  // the SQLite file, whatever PLINTH_BACKEND says
    o.mode = mode;
    return o;
  }
  std::string dir() const override { return dir_; }

 private:
  std::string dir_;
};

class PostgresBackend : public Backend {
 public:
  explicit PostgresBackend(const std::string& url) {
    std::random_device rd;
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "bench%08x", static_cast<unsigned>(rd()));
    prefix_ = prefix;
    backend_ = url + (url.find('?') == std::string::npos ? "?" : "&") + "schema=" + prefix_;
  }
  ~PostgresBackend() override {
    // Leave nothing behind in the user's database.
    if (!created) return;
    Result<BackendUrl> url = ParseBackendUrl(backend_);
    if (!url.ok()) return;
    const std::string schema = StateStore::PostgresSchema(url->schema_prefix, kWorkspace);
    auto db = OpenPostgres(url->conninfo, "public");
    if (!db.ok()) {
      std::fprintf(stderr, "state-bench: postgres: could not drop schema %s: %s\n", schema.c_str(),
                   db.error().message.c_str());
      return;
    }
    Status s = db.value()->Exec("DROP SCHEMA IF EXISTS " + QuoteIdentifier(schema) + " CASCADE", "drop the bench schema");
    if (!s.ok()) std::fprintf(stderr, "state-bench: postgres: %s\n", s.error().message.c_str());
  }
  std::string name() const override { return "postgres"; }
  StoreOptions Options(OpenMode mode) const override {
    StoreOptions o;
    o.backend = backend_;
    o.mode = mode;
    return o;
  }
  std::string dir() const override { return "/nonexistent-dir-for-postgres"; }

 private:
  std::string prefix_, backend_;
};

// One backend's run: its store and figures. The phases are methods so that
// main can interleave the backends phase by phase.
class Run {
 public:
  Run(Backend& b, int ops, int threads) : b_(b), who_(b.name() + ": "), ops_(ops), threads_(threads) {
    addresses_.reserve(static_cast<size_t>(ops));
    for (int i = 0; i < ops; ++i) addresses_.push_back("module.bench.bucket.b" + std::to_string(i));
  }
  const Figures& figures() const { return f_; }

  void Create() {
    const auto t0 = Clock::now();
    store_ = Check(StateStore::OpenWorkspace(b_.dir(), kWorkspace, b_.Options(OpenMode::kCreate)),
                   who_ + "create the workspace");
    b_.created = true;
    f_.seconds += Seconds(t0, Clock::now());
  }

  // 1. The journal, one writer, under the workspace lock as apply holds it.
  void JournalOneWriter() {
    const auto t_phase = Clock::now();
    AcquiredLock lock = Check(WorkspaceLock::Acquire(*store_, holder_), who_ + "take the workspace lock");
    const auto t0 = Clock::now();
    int64_t serial = Check(store_->BeginApply("apply", "bench-1"), who_ + "begin an apply");
    for (const std::string& a : addresses_) Change(*store_, serial, a);
    Check(store_->FinishApply(serial, ApplyStatus::kSucceeded), who_ + "finish the apply");
    const auto t1 = Clock::now();
    f_.journal_1 = ops_ / Seconds(t0, t1);
    Check(WorkspaceLock::Release(*store_, lock.id), who_ + "release the workspace lock");
    f_.seconds += Seconds(t_phase, Clock::now());
  }

  // 2. Reads over the N resources: scans, then point reads in random order.
  void Reads() {
    const auto t_phase = Clock::now();
    auto t0 = Clock::now();
    size_t read = 0;
    for (int p = 0; p < kReadPasses; ++p) {
      std::vector<ResourceRecord> all = Check(store_->Resources(), who_ + "read the resources");
      if (all.size() != addresses_.size()) {
        throw BenchError{who_ + "read " + std::to_string(all.size()) + " resources, expected " +
                         std::to_string(addresses_.size())};
      }
      read += all.size();
    }
    auto t1 = Clock::now();
    f_.scan = static_cast<double>(read) / Seconds(t0, t1);
    std::vector<std::string> order = addresses_;
    std::mt19937 rng(7);
    std::shuffle(order.begin(), order.end(), rng);
    t0 = Clock::now();
    for (const std::string& a : order) {
      std::optional<ResourceRecord> r = Check(store_->Resource(a), who_ + "read " + a);
      if (!r) throw BenchError{who_ + a + " is missing"};
    }
    t1 = Clock::now();
    f_.lookup = ops_ / Seconds(t0, t1);
    f_.seconds += Seconds(t_phase, Clock::now());
  }

  // 3. The journal, T writer threads on one store (group commit), N changes
  // in all, a second serial.
  void JournalThreads() {
    const auto t_phase = Clock::now();
    AcquiredLock lock = Check(WorkspaceLock::Acquire(*store_, holder_), who_ + "take the workspace lock");
    std::mutex error_mu;
    std::optional<std::string> first_error;
    std::vector<std::thread> pool;
    const auto t0 = Clock::now();
    int64_t serial = Check(store_->BeginApply("apply", "bench-t"), who_ + "begin an apply");
    for (int t = 0; t < threads_; ++t) {
      const int n = ops_ / threads_ + (t < ops_ % threads_ ? 1 : 0);
      pool.emplace_back([&, t, n] {
        try {
          for (int i = 0; i < n; ++i) {
            Change(*store_, serial, "module.bench.bucket.t" + std::to_string(t) + "_" + std::to_string(i));
          }
        } catch (const BenchError& e) {
          std::lock_guard<std::mutex> g(error_mu);
          if (!first_error) first_error = e.message;
        }
      });
    }
    for (std::thread& th : pool) th.join();
    if (first_error) throw BenchError{who_ + *first_error};
    Check(store_->FinishApply(serial, ApplyStatus::kSucceeded), who_ + "finish the apply");
    const auto t1 = Clock::now();
    f_.journal_t = ops_ / Seconds(t0, t1);
    Check(WorkspaceLock::Release(*store_, lock.id), who_ + "release the workspace lock");
    const size_t expect = 2 * addresses_.size();
    const size_t have = Check(store_->Resources(), who_ + "read the resources").size();
    if (have != expect) {
      throw BenchError{who_ + "after the threaded journal " + std::to_string(have) + " resources, expected " +
                       std::to_string(expect)};
    }
    f_.seconds += Seconds(t_phase, Clock::now());
  }

  // 4. The workspace lock.
  void Lock() {
    const auto t0 = Clock::now();
    for (int i = 0; i < kLockPairs; ++i) {
      AcquiredLock lock = Check(WorkspaceLock::Acquire(*store_, holder_), who_ + "take the workspace lock");
      Check(WorkspaceLock::Release(*store_, lock.id), who_ + "release the workspace lock");
    }
    const auto t1 = Clock::now();
    f_.lock = kLockPairs / Seconds(t0, t1);
    f_.seconds += Seconds(t0, t1);
  }

  // 5. Opening the existing workspace (the first store stays open, as a
  // running command's would beside a second one).
  void Open() {
    const auto t0 = Clock::now();
    for (int i = 0; i < kOpens; ++i) {
      auto again = Check(StateStore::OpenWorkspace(b_.dir(), kWorkspace, b_.Options(OpenMode::kExisting)),
                         who_ + "open the workspace");
      if (!again) throw BenchError{who_ + "open returned no store"};
    }
    const auto t1 = Clock::now();
    f_.open = kOpens / Seconds(t0, t1);
    f_.seconds += Seconds(t0, t1);
  }

  void Close() { store_.reset(); }

 private:
  Backend& b_;
  const std::string who_;
  const int ops_, threads_;
  const LockHolder holder_ = WorkspaceLock::ThisProcess("state-bench");
  std::vector<std::string> addresses_;
  std::unique_ptr<StateStore> store_;
  Figures f_;
};

std::string Rate(double v) {
  char buf[32];
  if (v >= 100) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

nlohmann::json Json(const Figures& f) {
  auto round1 = [](double v) { return std::round(v * 10) / 10; };
  return {{"journal_1_writer_changes_per_s", round1(f.journal_1)},
          {"journal_threads_changes_per_s", round1(f.journal_t)},
          {"resources_scan_per_s", round1(f.scan)},
          {"resource_lookups_per_s", round1(f.lookup)},
          {"lock_pairs_per_s", round1(f.lock)},
          {"opens_per_s", round1(f.open)},
          {"seconds", round1(f.seconds)}};
}

[[noreturn]] void Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--pg=postgresql://USER@HOST:PORT/DB] [--ops=N] [--threads=T]\n", argv0);
  std::exit(2);
}

int PositiveArg(const std::string& arg, size_t prefix, const char* argv0) {
  try {
    size_t used = 0;
    const int v = std::stoi(arg.substr(prefix), &used);
    if (used != arg.size() - prefix || v < 1) Usage(argv0);
    return v;
  } catch (const std::exception&) {
    Usage(argv0);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string pg;
  int ops = 2000, threads = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--pg=", 0) == 0) pg = a.substr(5);
    else if (a.rfind("--ops=", 0) == 0) ops = PositiveArg(a, 6, argv[0]);
    else if (a.rfind("--threads=", 0) == 0) threads = PositiveArg(a, 10, argv[0]);
    else Usage(argv[0]);
  }
  if (!pg.empty() && pg.rfind("postgres://", 0) != 0 && pg.rfind("postgresql://", 0) != 0) {
    std::fprintf(stderr, "state-bench: --pg takes a postgres:// or postgresql:// URL (the schema prefix is set with ?schema=)\n");
    return 2;
  }
  std::printf("state-bench: %d changes per journal run, %d writer threads, %d scans, %d lock pairs, %d opens\n", ops,
              threads, kReadPasses, kLockPairs, kOpens);
  std::fflush(stdout);

  // The phases interleave: each runs on every backend before the next one
  // starts, so a backend's figure and the other's are taken moments apart
  // (the disk's fsync latency drifts on a shared machine).
  std::optional<Figures> lite, post;
  try {
    SqliteBackend sqlite_backend;
    std::unique_ptr<PostgresBackend> pg_backend;
    if (!pg.empty()) pg_backend = std::make_unique<PostgresBackend>(pg);
    std::vector<std::unique_ptr<Run>> runs;
    runs.push_back(std::make_unique<Run>(sqlite_backend, ops, threads));
    if (pg_backend) runs.push_back(std::make_unique<Run>(*pg_backend, ops, threads));
    for (void (Run::*phase)() : {&Run::Create, &Run::JournalOneWriter, &Run::Reads, &Run::JournalThreads,
                                 &Run::Lock, &Run::Open, &Run::Close}) {
      for (auto& r : runs) ((*r).*phase)();
    }
    lite = runs[0]->figures();
    if (runs.size() > 1) post = runs[1]->figures();
  } catch (const BenchError& e) {
    std::fprintf(stderr, "state-bench: error: %s\n", e.message.c_str());
    return 1;
  }

  const std::string tlabel = "journal, " + std::to_string(threads) + " writers (changes/s)";
  struct Row {
    std::string label;
    double Figures::*field;
  };
  const std::vector<Row> rows = {{"journal, 1 writer (changes/s)", &Figures::journal_1},
                                 {tlabel, &Figures::journal_t},
                                 {"Resources() scan (resources/s)", &Figures::scan},
                                 {"Resource() lookup (lookups/s)", &Figures::lookup},
                                 {"lock acquire+release (pairs/s)", &Figures::lock},
                                 {"open existing (opens/s)", &Figures::open}};
  std::printf("%-34s%12s%16s%14s\n", "operation", "sqlite", "postgres", "pg/sqlite");
  for (const Row& r : rows) {
    const double l = (*lite).*r.field;
    std::string p = "skipped", ratio = "-";
    if (post) {
      const double v = (*post).*r.field;
      p = Rate(v);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.2f", l > 0 ? v / l : 0.0);
      ratio = buf;
    }
    std::printf("%-34s%12s%16s%14s\n", r.label.c_str(), Rate(l).c_str(), p.c_str(), ratio.c_str());
  }
  char post_seconds[32] = "skipped";
  if (post) std::snprintf(post_seconds, sizeof post_seconds, "%.1f", post->seconds);
  std::printf("%-34s%12.1f%16s\n", "time in the phases (s)", lite->seconds, post_seconds);
  nlohmann::json out = {{"ops", ops},
                        {"threads", threads},
                        {"sqlite", Json(*lite)},
                        {"postgres", post ? Json(*post) : nlohmann::json(nullptr)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
