// A prepared SQLite statement that finalizes itself: the small wrapper the
// runtime's SQLite databases share (the compute queue, the replica
// supervisor). Bind* return *this for chaining; a statement that failed to
// prepare binds nothing and Step returns the preparation's error code.
// Header-only; one statement is used by one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>

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

}  // namespace plinth::io
