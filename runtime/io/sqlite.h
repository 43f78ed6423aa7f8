// A prepared SQLite statement that finalizes itself: the small wrapper the
// runtime's SQLite databases share (the compute queue, the replica
// supervisor). Bind* return *this for chaining; a statement that failed to
// prepare binds nothing and Step returns the preparation's error code.
// Header-only; one statement is used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>

#include "runtime/io/durable.h"

namespace plinth::io {

class SqliteStmt {
 public:
  SqliteStmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &st_, nullptr); }
  ~SqliteStmt() { sqlite3_finalize(st_); }
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;

  bool prepared() const { return rc_ == SQLITE_OK; }
  SqliteStmt& Bind(int i, int64_t v) {
    if (prepared()) sqlite3_bind_int64(st_, i, v);
    return *this;
  }
  SqliteStmt& Bind(int i, const std::string& t) {
    if (prepared()) sqlite3_bind_text(st_, i, t.data(), static_cast<int>(t.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // NULL when empty.
  SqliteStmt& BindBlob(int i, const std::optional<std::string>& b) {
    if (!prepared()) return *this;
    if (b) {
      sqlite3_bind_blob(st_, i, b->data(), static_cast<int>(b->size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(st_, i);
    }
    return *this;
  }
  // NULL when empty.
  SqliteStmt& BindOpt(int i, std::optional<int> v) {
    if (!prepared()) return *this;
    if (v) {
      sqlite3_bind_int64(st_, i, *v);
    } else {
      sqlite3_bind_null(st_, i);
    }
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return prepared() ? sqlite3_step(st_) : rc_; }
  bool Row() { return Step() == SQLITE_ROW; }
  bool Done() { return Step() == SQLITE_DONE; }
  int64_t Int(int c) { return sqlite3_column_int64(st_, c); }
  bool Null(int c) { return sqlite3_column_type(st_, c) == SQLITE_NULL; }
  std::string Text(int c) {
    const unsigned char* p = sqlite3_column_text(st_, c);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(st_, c)) : std::string();
  }
  std::string Blob(int c) {
    const void* p = sqlite3_column_blob(st_, c);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(st_, c)) : std::string();
  }

 private:
  sqlite3_stmt* st_ = nullptr;
  int rc_;
};

// Runs `sql` (one or more statements); false with SQLite's message in *error.
inline bool SqliteExec(sqlite3* db, const char* sql, std::string* error) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    *error = msg ? msg : sqlite3_errmsg(db);
    sqlite3_free(msg);
    return false;
  }
  return true;
}

// Opens `path` as a database only this user may read: created 0600 when
// missing (SQLite would use the umask; an existing file is never opened and
// closed around SQLite, which would drop another connection's POSIX locks),
// opened with SQLITE_OPEN_NOMUTEX (one connection per thread or a mutex of
// the caller's), a 5 s busy timeout, then `schema` (journal mode, tables)
// run. `what` names it in errors: "cannot open the lease database '...':
// ...". nullptr with *error.
inline sqlite3* OpenPrivateDatabase(const std::filesystem::path& path, const std::string& what,
                                    const char* schema, std::string* error) {
  if (int e = CreateFileIfMissing(path, 0600); e < 0) {
    *error = "cannot open the " + what + " '" + path.string() + "': " + std::strerror(-e);
    return nullptr;
  }
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    *error = "cannot open the " + what + " '" + path.string() +
             "': " + (db ? sqlite3_errmsg(db) : "out of memory");
    sqlite3_close(db);
    return nullptr;
  }
  sqlite3_busy_timeout(db, 5000);
  std::string why;
  if (!SqliteExec(db, schema, &why)) {
    *error = "the " + what + " '" + path.string() + "': " + why;
    sqlite3_close(db);
    return nullptr;
  }
  return db;
}

}  // namespace plinth::io
