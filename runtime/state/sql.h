// The SQL connection under the state store (docs/state.md, "Backends").
//
// The store's logic — the intent journal, sealing, history, locking — is one
// implementation written against this small interface; two drivers speak it:
// SQLite (a file per workspace, the default) and PostgreSQL 15 (a schema per
// workspace, for teams and controllers on several machines). The store writes
// portable SQL with `?` parameter markers; each driver states where the dialects
// differ (Dialect(), BeginWrite()).
//
// Errors: a failed Step() or Exec() leaves the reason in the connection;
// Failure(what) turns it into a state::Error with the right ErrorCode (a lost
// PostgreSQL connection is kIo, as a busy SQLite file is). No message ever
// holds a password: a PostgreSQL URL is shown redacted (RedactConnInfo).
//
// Thread safety: none; the store serializes calls with its own mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "runtime/state/state_store.h"

struct sqlite3;

namespace plinth::state {

// What SqlStatement::Step() returns.
inline constexpr int kRow = 100;
inline constexpr int kDone = 101;
inline constexpr int kStepError = 1;

class SqlStatement {
 public:
  virtual ~SqlStatement() = default;
  // Parameters are numbered from 1, as `?` appears in the statement.
  virtual SqlStatement& Bind(int i, int64_t v) = 0;
  virtual SqlStatement& Bind(int i, const std::string& text) = 0;
  SqlStatement& Bind(int i, const char* text) { return Bind(i, std::string(text)); }
  // A byte string (possibly with NULs); nullopt binds NULL.
  virtual SqlStatement& BindBlob(int i, const std::optional<std::string>& blob) = 0;
  // kRow (a row is current), kDone, or kStepError (see the connection's Failure).
  virtual int Step() = 0;
  virtual int64_t Int(int col) = 0;
  virtual bool IsNull(int col) = 0;
  virtual std::string Text(int col) = 0;
  virtual std::string Blob(int col) = 0;
};

class SqlConnection {
 public:
  enum class Dialect { kSqlite, kPostgres };
  virtual ~SqlConnection() = default;
  virtual Dialect dialect() const = 0;
  // Never null; a statement that does not prepare fails at its first Step().
  virtual std::unique_ptr<SqlStatement> Prepare(const std::string& sql) = 0;
  // One or more statements without parameters.
  virtual Status Exec(const std::string& sql, const std::string& what) = 0;
  // Starts a write transaction that excludes every other writer of this
  // workspace until it commits or rolls back, so reads inside it see the
  // latest committed state and a key computed from them (the next history
  // seq) cannot be taken by another process. SQLite: BEGIN IMMEDIATE.
  // PostgreSQL: BEGIN and a SHARE ROW EXCLUSIVE lock on the workspace's own
  // `serials` table (readers are not blocked; no lock id is shared with any
  // other schema). On failure no transaction is left open.
  virtual Status BeginWrite() = 0;
  // Rows changed by the last INSERT, UPDATE or DELETE.
  virtual int64_t Changes() = 0;
  // The last failure as an Error: "<what>: <the database's reason>".
  virtual Error Failure(const std::string& what) = 0;
  // Where the state is, for messages: a file path, or a redacted URL and schema.
  virtual std::string Where() const = 0;
};

// SQLite. `flags` as sqlite3_open_v2 (NOMUTEX is added); a 5 s busy timeout.
Result<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path, int flags);
// A connection over a handle opened elsewhere (it takes ownership).
std::unique_ptr<SqlConnection> WrapSqlite(sqlite3* handle, const std::string& path);
// The underlying handle of a SQLite connection (null for another driver).
sqlite3* SqliteHandle(SqlConnection& connection);

// PostgreSQL: connects with libpq to `url` (a postgres:// or postgresql:// URL
// or a key=value conninfo; the password and TLS settings may come from the
// environment as libpq reads it: PGPASSWORD, PGPASSFILE, PGSSLMODE,
// PGSSLROOTCERT, ...), sets search_path to `schema` (which need not exist
// yet), synchronous_commit on, a 10 s connect timeout and a 30 s lock timeout.
Result<std::unique_ptr<SqlConnection>> OpenPostgres(const std::string& url, const std::string& schema);
// A backend URL taken apart: the part libpq reads, and Plinth's own
// `schema=PREFIX` query parameter (default "plinth"): workspace W lives in
// the schema PREFIX_W, so configurations sharing one database keep apart by
// prefix. kInvalidArgument for a prefix that is not [A-Za-z0-9_]+.
struct BackendUrl {
  std::string conninfo;
  std::string schema_prefix = "plinth";
};
Result<BackendUrl> ParseBackendUrl(const std::string& url);
// Whether `backend` names PostgreSQL (postgres://, postgresql://, or a
// conninfo with host= or dbname=).
bool IsPostgresUrl(const std::string& backend);
// `url` with any password replaced by "***" (in a URL's userinfo and in a
// password= or ?password= setting).
std::string RedactConnInfo(const std::string& url);
// `name` quoted as a PostgreSQL identifier ("a""b").
std::string QuoteIdentifier(const std::string& name);

}  // namespace plinth::state
