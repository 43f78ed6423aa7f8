#include "runtime/controller/lease.h"
#include "runtime/io/durable.h"
#include "runtime/io/sqlite.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>

#include "runtime/crypto/aead.h"

namespace plinth::controller {

namespace {

struct Stmt {
  sqlite3_stmt* s = nullptr;
  ~Stmt() { sqlite3_finalize(s); }
};

std::string Err(sqlite3* db, const std::string& what) {
  return what + ": " + sqlite3_errmsg(db);
}

bool Exec(sqlite3* db, const char* sql, std::string* error) {
  if (io::SqliteExec(db, sql, error)) return true;
  *error = "lease database: " + *error;
  return false;
}

std::optional<LeaseRecord> ReadRow(sqlite3* db, const std::string& name, std::string* error) {
  Stmt st;
  if (sqlite3_prepare_v2(db, "SELECT holder_id, holder_pid, expires_at_ms, term FROM lease WHERE name = ?",
                         -1, &st.s, nullptr) != SQLITE_OK) {
    *error = Err(db, "lease database");
    return std::nullopt;
  }
  sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  int rc = sqlite3_step(st.s);
  if (rc == SQLITE_DONE) return std::nullopt;
  if (rc != SQLITE_ROW) {
    *error = Err(db, "lease database");
    return std::nullopt;
  }
  LeaseRecord r;
  r.name = name;
  const unsigned char* h = sqlite3_column_text(st.s, 0);
  r.holder_id = h ? reinterpret_cast<const char*>(h) : "";
  r.holder_pid = sqlite3_column_int64(st.s, 1);
  r.expires_at_ms = sqlite3_column_int64(st.s, 2);
  r.term = sqlite3_column_int64(st.s, 3);
  return r;
}

bool WriteRow(sqlite3* db, const LeaseRecord& r, std::string* error) {
  Stmt st;
  if (sqlite3_prepare_v2(
          db,
          "INSERT INTO lease(name, holder_id, holder_pid, expires_at_ms, term) VALUES(?,?,?,?,?) "
          "ON CONFLICT(name) DO UPDATE SET holder_id = excluded.holder_id, holder_pid = "
          "excluded.holder_pid, expires_at_ms = excluded.expires_at_ms, term = excluded.term",
          -1, &st.s, nullptr) != SQLITE_OK) {
    *error = Err(db, "lease database");
    return false;
  }
  sqlite3_bind_text(st.s, 1, r.name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, r.holder_id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st.s, 3, r.holder_pid);
  sqlite3_bind_int64(st.s, 4, r.expires_at_ms);
  sqlite3_bind_int64(st.s, 5, r.term);
  if (sqlite3_step(st.s) != SQLITE_DONE) {
    *error = Err(db, "lease database");
    return false;
  }
  return true;
}

}  // namespace

std::string NewHolderId() {
  char host[256] = {0};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return std::string(host) + "/" + std::to_string(::getpid()) + "/" + crypto::RandomHex(4);
}

std::unique_ptr<Lease> Lease::Open(const std::filesystem::path& path, std::string name, std::string holder_id,
                                   int64_t pid, Clock& clock, std::string* error) {
  sqlite3* db = io::OpenPrivateDatabase(path, "lease database",
                                        "PRAGMA journal_mode=WAL;"
                                        "CREATE TABLE IF NOT EXISTS lease(name TEXT PRIMARY KEY, holder_id "
                                        "TEXT NOT NULL, holder_pid INTEGER NOT "
                                        "NULL, expires_at_ms INTEGER NOT NULL, term INTEGER NOT NULL)",
                                        error);
  if (!db) return nullptr;
  return std::unique_ptr<Lease>(new Lease(db, std::move(name), std::move(holder_id), pid, clock));
}

Lease::Lease(sqlite3* db, std::string name, std::string holder_id, int64_t pid, Clock& clock)
    : db_(db), name_(std::move(name)), holder_id_(std::move(holder_id)), pid_(pid), clock_(clock) {}

Lease::~Lease() {
  sqlite3_close(db_);
}

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
  return ReadRow(db_, name_, error);
}

LeaseOutcome Lease::Change(Op op, std::chrono::milliseconds ttl) {
  LeaseOutcome out;
  if (!Exec(db_, "BEGIN IMMEDIATE", &out.error)) return out;
  const int64_t now = clock_.WallMs();
  std::optional<LeaseRecord> row = ReadRow(db_, name_, &out.error);
  if (!out.error.empty()) {
    std::string ignored;
    Exec(db_, "ROLLBACK", &ignored);
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
  if (write && !WriteRow(db_, r, &out.error)) {
    out.held = false;
    std::string ignored;
    Exec(db_, "ROLLBACK", &ignored);
    return out;
  }
  if (!Exec(db_, "COMMIT", &out.error)) {
    out.held = false;
    std::string ignored;
    Exec(db_, "ROLLBACK", &ignored);
    return out;
  }
  out.record = r;
  return out;
}

}  // namespace plinth::controller
