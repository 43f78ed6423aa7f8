// The SQLite driver of runtime/state/sql.h.
#include <sqlite3.h>

#include "runtime/state/sql.h"

namespace plinth::state {
namespace {

class SqliteStatement : public SqlStatement {
 public:
  SqliteStatement(sqlite3* db, const std::string& sql) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~SqliteStatement() override { sqlite3_finalize(stmt_); }
  SqliteStatement(const SqliteStatement&) = delete;
  SqliteStatement& operator=(const SqliteStatement&) = delete;

  SqlStatement& Bind(int i, int64_t v) override {
    if (stmt_) sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  SqlStatement& Bind(int i, const std::string& text) override {
    if (stmt_) sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }
  SqlStatement& BindBlob(int i, const std::optional<std::string>& blob) override {
    if (!stmt_) return *this;
    if (blob) {
      sqlite3_bind_blob(stmt_, i, blob->data(), static_cast<int>(blob->size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_null(stmt_, i);
    }
    return *this;
  }
  int Step() override {
    if (rc_ != SQLITE_OK || !stmt_) return kStepError;
    int rc = sqlite3_step(stmt_);
    return rc == SQLITE_ROW ? kRow : rc == SQLITE_DONE ? kDone : kStepError;
  }
  int64_t Int(int col) override { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) override { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) override {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  std::string Blob(int col) override {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
};

class SqliteConnection : public SqlConnection {
 public:
  SqliteConnection(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteConnection() override { sqlite3_close_v2(db_); }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  Dialect dialect() const override { return Dialect::kSqlite; }
  std::unique_ptr<SqlStatement> Prepare(const std::string& sql) override {
    return std::make_unique<SqliteStatement>(db_, sql);
  }
  Status Exec(const std::string& sql, const std::string& what) override {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      sqlite3_free(err);
      return Failure(what);
    }
    return Ok{};
  }
  Status BeginWrite() override { return Exec("BEGIN IMMEDIATE", "cannot start a state transaction"); }
  int64_t Changes() override { return sqlite3_changes(db_); }
  Error Failure(const std::string& what) override {
    int rc = sqlite3_extended_errcode(db_);
    std::string msg = what + ": " + sqlite3_errmsg(db_);
    ErrorCode code = ErrorCode::kInternal;
    switch (rc & 0xff) {
      case SQLITE_CORRUPT:
      case SQLITE_NOTADB: code = ErrorCode::kCorrupt; break;
      case SQLITE_IOERR:
      case SQLITE_FULL:
      case SQLITE_CANTOPEN:
      case SQLITE_READONLY:
      case SQLITE_PERM:
      case SQLITE_BUSY:
      case SQLITE_LOCKED: code = ErrorCode::kIo; break;
      default: break;
    }
    return Error{code, std::move(msg), std::nullopt};
  }
  std::string Where() const override { return path_; }
  sqlite3* handle() { return db_; }

 private:
  sqlite3* db_;
  std::string path_;
};

}  // namespace

Result<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return Error{rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT ? ErrorCode::kCorrupt : ErrorCode::kIo,
                 "cannot open state file '" + path + "': " + why, std::nullopt};
  }
  sqlite3_busy_timeout(raw, 5000);
  return std::unique_ptr<SqlConnection>(new SqliteConnection(raw, path));
}

std::unique_ptr<SqlConnection> WrapSqlite(sqlite3* handle, const std::string& path) {
  return std::unique_ptr<SqlConnection>(new SqliteConnection(handle, path));
}

sqlite3* SqliteHandle(SqlConnection& connection) {
  if (connection.dialect() != SqlConnection::Dialect::kSqlite) return nullptr;
  return static_cast<SqliteConnection&>(connection).handle();
}

}  // namespace plinth::state
