#include "runtime/controller/lease.h"
#include "runtime/io/durable.h"
#include "runtime/io/sqlite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "runtime/crypto/aead.h"
#include "runtime/state/sql.h"

namespace plinth::controller {

namespace {

std::optional<LeaseRecord> ReadRow(state::SqlConnection* db, const std::string& name, std::string* error) {
  auto q = db->Prepare("SELECT holder_id, holder_pid, expires_at_ms, term FROM lease WHERE name = ?");
  q->Bind(1, name);
  int rc = q->Step();
  if (rc == state::kDone) return std::nullopt;
  if (rc != state::kRow) {
    *error = db->Failure("lease database").message;
    return std::nullopt;
  }
  LeaseRecord r;
  r.name = name;
  r.holder_id = q->Text(0);
  r.holder_pid = q->Int(1);
  r.expires_at_ms = q->Int(2);
  r.term = q->Int(3);
  return r;
}

bool WriteRow(state::SqlConnection* db, const LeaseRecord& r, std::string* error) {
  auto q = db->Prepare(
      "INSERT INTO lease(name, holder_id, holder_pid, expires_at_ms, term) VALUES(?,?,?,?,?) "
      "ON CONFLICT(name) DO UPDATE SET holder_id = excluded.holder_id, holder_pid = "
      "excluded.holder_pid, expires_at_ms = excluded.expires_at_ms, term = excluded.term");
  q->Bind(1, r.name).Bind(2, r.holder_id).Bind(3, r.holder_pid).Bind(4, r.expires_at_ms).Bind(5, r.term);
  if (q->Step() != state::kDone) {
    *error = db->Failure("lease database").message;
    return false;
  }
  return true;
}

bool Exec(state::SqlConnection* db, const std::string& sql, std::string* error) {
  state::Status s = db->Exec(sql, "lease database");
  if (!s.ok()) *error = s.error().message;
  return s.ok();
}

constexpr const char* kPostgresLease =
    "CREATE TABLE IF NOT EXISTS lease(name TEXT PRIMARY KEY, holder_id TEXT NOT NULL, holder_pid BIGINT NOT NULL, "
    "expires_at_ms BIGINT NOT NULL, term BIGINT NOT NULL)";

}  // namespace

std::string NewHolderId() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" + crypto::RandomHex(4);
}

std::unique_ptr<Lease> Lease::Open(const std::filesystem::path& path, std::string name, std::string holder_id,
                                   int64_t pid, Clock& clock, std::string* error) {
  if (const std::string backend = state::EnvBackend(); !backend.empty()) {
    // A PostgreSQL state backend: the lease lives beside the workspace's
    // state, so controllers on different machines elect one leader.
    // `path` is .plinth/<workspace>/controller/lease.db.
    const std::string workspace = path.parent_path().parent_path().filename().string();
    state::Result<state::BackendUrl> url = state::ParseBackendUrl(backend);
    if (!url.ok()) return *error = url.error().message, nullptr;
    const std::string schema = state::StateStore::PostgresSchema(url->schema_prefix, workspace);
    state::Result<std::unique_ptr<state::SqlConnection>> pg = state::OpenPostgres(url->conninfo, schema);
    if (!pg.ok()) return *error = pg.error().message, nullptr;
    std::string create = "CREATE SCHEMA IF NOT EXISTS " + state::QuoteIdentifier(schema) + "; " + kPostgresLease;
    if (!Exec(pg.value().get(), create, error)) {
      // Two controllers starting at once may race on CREATE ... IF NOT EXISTS; the loser retries once.
      if (!Exec(pg.value().get(), create, error)) return nullptr;
    }
    return std::unique_ptr<Lease>(
        new Lease(std::move(pg.value()), std::move(name), std::move(holder_id), pid, clock));
  }
  sqlite3* db = io::OpenPrivateDatabase(path, "lease database",
                                        "PRAGMA journal_mode=WAL;"
                                        "CREATE TABLE IF NOT EXISTS lease(name TEXT PRIMARY KEY, holder_id "
                                        "TEXT NOT NULL, holder_pid INTEGER NOT "
                                        "NULL, expires_at_ms INTEGER NOT NULL, term INTEGER NOT NULL)",
                                        error);
  if (!db) return nullptr;
  return std::unique_ptr<Lease>(
      new Lease(state::WrapSqlite(db, path.string()), std::move(name), std::move(holder_id), pid, clock));
}

Lease::Lease(std::unique_ptr<state::SqlConnection> db, std::string name, std::string holder_id, int64_t pid,
             Clock& clock)
    : db_(std::move(db)), name_(std::move(name)), holder_id_(std::move(holder_id)), pid_(pid), clock_(clock) {}

Lease::~Lease() = default;

LeaseOutcome Lease::TryAcquire(std::chrono::milliseconds ttl) {
  return Change(Op::kAcquire, ttl);
}
LeaseOutcome Lease::Renew(std::chrono::milliseconds ttl) {
  return Change(Op::kRenew, ttl);
}
LeaseOutcome Lease::Release() {
  return Change(Op::kRelease, std::chrono::milliseconds(0));
}

std::optional<LeaseRecord> Lease::Read(std::string* error) {
  return ReadRow(db_.get(), name_, error);
}

LeaseOutcome Lease::Change(Op op, std::chrono::milliseconds ttl) {
  LeaseOutcome out;
  // The write lock is taken before the row is read (SQLite: IMMEDIATE;
  // PostgreSQL: the lease table's own lock, apart from the state's tables).
  const bool pg = db_->dialect() == state::SqlConnection::Dialect::kPostgres;
  if (!Exec(db_.get(), pg ? "BEGIN; LOCK TABLE lease IN SHARE ROW EXCLUSIVE MODE" : "BEGIN IMMEDIATE", &out.error)) {
    std::string ignored;
    if (pg) Exec(db_.get(), "ROLLBACK", &ignored);
    return out;
  }
  const int64_t now = clock_.WallMs();
  std::optional<LeaseRecord> row = ReadRow(db_.get(), name_, &out.error);
  if (!out.error.empty()) {
    std::string ignored;
    Exec(db_.get(), "ROLLBACK", &ignored);
    return out;
  }
  LeaseRecord r = row.value_or(LeaseRecord{name_, "", 0, 0, 0});
  const bool ours = r.holder_id == holder_id_;
  const bool live = !r.holder_id.empty() && r.expires_at_ms > now;
  bool write = false;
  switch (op) {
    case Op::kAcquire:
      if (ours || !live) {
        if (!ours) ++r.term;  // a change of holder (or first use, or after a release)
        r.holder_id = holder_id_;
        r.holder_pid = pid_;
        r.expires_at_ms = now + ttl.count();
        write = out.held = true;
      }
      break;
    case Op::kRenew:
      if (ours) {
        r.holder_pid = pid_;
        r.expires_at_ms = now + ttl.count();
        write = out.held = true;
      }
      break;
    case Op::kRelease:
      if (ours) {
        r.holder_id.clear();
        r.holder_pid = 0;
        r.expires_at_ms = now;
        write = true;
      }
      break;
  }
  if (write && !WriteRow(db_.get(), r, &out.error)) {
    out.held = false;
    std::string ignored;
    Exec(db_.get(), "ROLLBACK", &ignored);
    return out;
  }
  if (!Exec(db_.get(), "COMMIT", &out.error)) {
    out.held = false;
    std::string ignored;
    Exec(db_.get(), "ROLLBACK", &ignored);
    return out;
  }
  out.record = r;
  return out;
}

}  // namespace plinth::controller
