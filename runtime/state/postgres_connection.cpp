// The PostgreSQL driver of runtime/state/sql.h (libpq, Debian libpq-dev).
//
// Statements are prepared on the server once per connection (named by their
// SQL text) and run with PQexecPrepared; parameters go as text except blobs,
// which go as binary bytea. Results come back as text (bytea as hex).
// A connection that broke between transactions is re-established once, with
// its session settings, before the next statement.
#include <libpq-fe.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "runtime/state/sql.h"

namespace plinth::state {
namespace {

// `?` parameter markers to PostgreSQL's `$1`, `$2`, ... outside quoted strings and
// identifiers.
std::string NumberParameters(const std::string& sql, int* count) {
  std::string out;
  out.reserve(sql.size() + 8);
  char quote = 0;
  int n = 0;
  for (char c : sql) {
    if (quote) {
      if (c == quote) quote = 0;
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  *count = n;
  return out;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea in the text result format ("\x0a1b...").
std::string DecodeBytea(const char* text, int length) {
  if (length >= 2 && text[0] == '\\' && text[1] == 'x') {
    std::string out;
    out.reserve(static_cast<size_t>(length - 2) / 2);
    for (int i = 2; i + 1 < length; i += 2) {
      int hi = HexValue(text[i]), lo = HexValue(text[i + 1]);
      if (hi < 0 || lo < 0) break;
      out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
  }
  size_t n = 0;
  unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(text), &n);
  if (!raw) return std::string();
  std::string out(reinterpret_cast<char*>(raw), n);
  PQfreemem(raw);
  return out;
}

class PostgresConnection;

class PostgresStatement : public SqlStatement {
 public:
  PostgresStatement(PostgresConnection* connection, std::string sql, int params)
      : connection_(connection), sql_(std::move(sql)), values_(params), is_null_(params, 1),
        binary_(params, 0) {}
  ~PostgresStatement() override { PQclear(result_); }
  PostgresStatement(const PostgresStatement&) = delete;
  PostgresStatement& operator=(const PostgresStatement&) = delete;

  SqlStatement& Bind(int i, int64_t v) override { return Set(i, std::to_string(v), false); }
  SqlStatement& Bind(int i, const std::string& text) override { return Set(i, text, false); }
  SqlStatement& BindBlob(int i, const std::optional<std::string>& blob) override {
    if (!blob) {
      if (i >= 1 && i <= static_cast<int>(values_.size())) is_null_[static_cast<size_t>(i - 1)] = 1;
      return *this;
    }
    return Set(i, *blob, true);
  }
  int Step() override;
  int64_t Int(int col) override {
    const char* v = PQgetvalue(result_, row_, col);
    return v ? std::strtoll(v, nullptr, 10) : 0;
  }
  bool IsNull(int col) override { return PQgetisnull(result_, row_, col) != 0; }
  std::string Text(int col) override {
    return std::string(PQgetvalue(result_, row_, col), static_cast<size_t>(PQgetlength(result_, row_, col)));
  }
  std::string Blob(int col) override {
    if (PQgetisnull(result_, row_, col)) return std::string();
    return DecodeBytea(PQgetvalue(result_, row_, col), PQgetlength(result_, row_, col));
  }

 private:
  SqlStatement& Set(int i, std::string value, bool binary) {
    if (i < 1 || i > static_cast<int>(values_.size())) return *this;
    const size_t k = static_cast<size_t>(i - 1);
    values_[k] = std::move(value);
    is_null_[k] = 0;
    binary_[k] = binary ? 1 : 0;
    return *this;
  }

  PostgresConnection* connection_;
  std::string sql_;
  std::vector<std::string> values_;
  std::vector<char> is_null_;
  std::vector<int> binary_;
  PGresult* result_ = nullptr;
  bool executed_ = false;
  int row_ = -1;
};

class PostgresConnection : public SqlConnection {
 public:
  PostgresConnection(PGconn* conn, std::string url, std::string schema)
      : conn_(conn), url_(std::move(url)), schema_(std::move(schema)) {}
  ~PostgresConnection() override { PQfinish(conn_); }
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;

  Dialect dialect() const override { return Dialect::kPostgres; }

  std::unique_ptr<SqlStatement> Prepare(const std::string& sql) override {
    int params = 0;
    std::string numbered = NumberParameters(sql, &params);
    return std::make_unique<PostgresStatement>(this, std::move(numbered), params);
  }

  Status Exec(const std::string& sql, const std::string& what) override {
    const bool begin = sql.rfind("BEGIN", 0) == 0;
    const bool end = sql.rfind("COMMIT", 0) == 0 || sql.rfind("ROLLBACK", 0) == 0;
    const bool rollback_to = sql.rfind("ROLLBACK TO", 0) == 0;
    if (!EnsureConnected()) {
      if (end && !rollback_to) in_transaction_ = false;  // the server rolled it back with the connection
      return Failure(what);
    }
    PGresult* res = PQexec(conn_, sql.c_str());
    bool ok = Track(res);
    // COMMIT of a transaction that failed inside answers "ROLLBACK": nothing was committed.
    if (ok && sql.rfind("COMMIT", 0) == 0 && std::strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
      ok = false;
      error_ = "the transaction failed and was rolled back";
      sqlstate_ = "40000";
    }
    PQclear(res);
    if (begin) in_transaction_ = true;  // also when BEGIN; LOCK failed half-way: ROLLBACK ends it
    if (end && !rollback_to) in_transaction_ = false;
    if (!ok) return Failure(what);
    return Ok{};
  }

  Status BeginWrite() override {
    Status s = Exec("BEGIN; LOCK TABLE serials IN SHARE ROW EXCLUSIVE MODE", "cannot start a state transaction");
    // BEGIN may have succeeded before the lock failed (a lock timeout): end it.
    if (!s.ok()) (void)Exec("ROLLBACK", "cannot roll back a state transaction");
    return s;
  }

  int64_t Changes() override { return changes_; }

  Error Failure(const std::string& what) override {
    ErrorCode code = ErrorCode::kInternal;
    const std::string& st = sqlstate_;
    if (PQstatus(conn_) != CONNECTION_OK || st.rfind("08", 0) == 0 || st.rfind("53", 0) == 0 ||
        st.rfind("57", 0) == 0 || st.rfind("40", 0) == 0 || st == "55P03" || st == "55006" || st == "58030") {
      code = ErrorCode::kIo;  // the connection, the server's resources, a lock or a deadlock: try again
    } else if (st.rfind("23", 0) == 0) {
      code = ErrorCode::kConflict;
    } else if (st == "XX001" || st == "XX002") {
      code = ErrorCode::kCorrupt;
    }
    std::string why = error_.empty() ? std::string(PQerrorMessage(conn_)) : error_;
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    return Error{code, what + ": " + why + " (PostgreSQL " + RedactConnInfo(url_) + ")", std::nullopt};
  }

  std::string Where() const override { return RedactConnInfo(url_) + " schema " + schema_; }

  // Runs a prepared statement; the result (owned by the caller) or null.
  PGresult* Run(const std::string& sql, const std::vector<std::string>& values, const std::vector<char>& is_null,
                const std::vector<int>& binary) {
    if (!EnsureConnected()) return nullptr;
    auto it = prepared_.find(sql);
    if (it == prepared_.end()) {
      std::string name = "plinth_s" + std::to_string(prepared_.size() + 1);
      PGresult* res = PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr);
      bool ok = Track(res);
      PQclear(res);
      if (!ok) return nullptr;
      it = prepared_.emplace(sql, name).first;
    }
    std::vector<const char*> ptrs(values.size());
    std::vector<int> lengths(values.size());
    for (size_t i = 0; i < values.size(); ++i) {
      ptrs[i] = is_null[i] ? nullptr : values[i].data();
      lengths[i] = static_cast<int>(values[i].size());
    }
    PGresult* res = PQexecPrepared(conn_, it->second.c_str(), static_cast<int>(values.size()), ptrs.data(),
                                   lengths.data(), binary.data(), 0);
    if (!Track(res)) {
      PQclear(res);
      return nullptr;
    }
    return res;
  }

  // Applies the session's settings; false (the reason kept) on failure.
  bool Configure() {
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // NOTICEs are not for the user
    std::string setup = "SET search_path TO " + QuoteIdentifier(schema_) +
                        "; SET synchronous_commit TO on; SET lock_timeout TO '30s'; "
                        "SET idle_in_transaction_session_timeout TO '10min'; "
                        "SET client_min_messages TO warning";
    PGresult* res = PQexec(conn_, setup.c_str());
    bool ok = Track(res);
    PQclear(res);
    return ok;
  }

 private:
  // Keeps the outcome of `res`: true when it succeeded.
  bool Track(PGresult* res) {
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
      const char* n = PQcmdTuples(res);
      changes_ = n && *n ? std::strtoll(n, nullptr, 10) : 0;
      error_.clear();
      sqlstate_.clear();
      return true;
    }
    const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    error_ = primary ? primary : PQerrorMessage(conn_);
    sqlstate_ = state ? state : "";
    return false;
  }

  // Re-establishes a connection that broke, outside a transaction only (a
  // transaction's work is gone with its connection; its caller sees the error).
  bool EnsureConnected() {
    if (PQstatus(conn_) == CONNECTION_OK) return true;
    if (in_transaction_) {
      // Never reconnect inside a transaction: what follows would run outside
      // it, each statement committed on its own.
      error_ = "the connection to PostgreSQL was lost during a transaction (the server rolled it back)";
      sqlstate_ = "08006";
      return false;
    }
    PQreset(conn_);
    prepared_.clear();
    if (PQstatus(conn_) != CONNECTION_OK) {
      error_ = PQerrorMessage(conn_);
      sqlstate_ = "08006";
      return false;
    }
    return Configure();
  }

  PGconn* conn_;
  std::string url_, schema_;
  std::map<std::string, std::string> prepared_;  // SQL text -> statement name
  std::string error_, sqlstate_;
  int64_t changes_ = 0;
  bool in_transaction_ = false;  // between BEGIN and COMMIT/ROLLBACK
};

int PostgresStatement::Step() {
  if (!executed_) {
    executed_ = true;
    result_ = connection_->Run(sql_, values_, is_null_, binary_);
    if (!result_) return kStepError;
  }
  if (!result_) return kStepError;
  if (PQresultStatus(result_) != PGRES_TUPLES_OK) return kDone;
  ++row_;
  return row_ < PQntuples(result_) ? kRow : kDone;
}

}  // namespace

Result<BackendUrl> ParseBackendUrl(const std::string& url) {
  BackendUrl out;
  const size_t q = url.find('?');
  if (url.find("://") == std::string::npos || q == std::string::npos) {
    out.conninfo = url;
    return out;
  }
  std::string kept;
  size_t pos = q + 1;
  while (pos <= url.size()) {
    size_t amp = url.find('&', pos);
    if (amp == std::string::npos) amp = url.size();
    const std::string param = url.substr(pos, amp - pos);
    if (param.rfind("schema=", 0) == 0) {
      out.schema_prefix = param.substr(7);
      bool valid = !out.schema_prefix.empty() && out.schema_prefix.size() <= 40;
      for (char c : out.schema_prefix) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) valid = false;
      }
      if (!valid) {
        return Error{ErrorCode::kInvalidArgument,
                     "invalid schema prefix '" + out.schema_prefix +
                         "' in the state backend URL: use letters, digits and '_' (at most 40)",
                     std::nullopt};
      }
    } else if (!param.empty()) {
      kept += (kept.empty() ? "" : "&") + param;
    }
    pos = amp + 1;
  }
  out.conninfo = url.substr(0, q) + (kept.empty() ? "" : "?" + kept);
  return out;
}

bool IsPostgresUrl(const std::string& backend) {
  return backend.rfind("postgres://", 0) == 0 || backend.rfind("postgresql://", 0) == 0 ||
         backend.find("host=") != std::string::npos || backend.find("dbname=") != std::string::npos;
}

std::string RedactConnInfo(const std::string& url) {
  std::string out = url;
  // userinfo of a URL: scheme://user:password@host
  size_t scheme = out.find("://");
  if (scheme != std::string::npos) {
    size_t start = scheme + 3;
    size_t end = out.find_first_of("/?", start);
    size_t at = out.rfind('@', end == std::string::npos ? std::string::npos : end);
    if (at != std::string::npos && at >= start) {
      size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... in a conninfo or a URL's query
  for (size_t pos = out.find("password="); pos != std::string::npos; pos = out.find("password=", pos + 1)) {
    size_t begin = pos + 9;
    size_t end = out.find_first_of(" &", begin);
    if (end == std::string::npos) end = out.size();
    out.replace(begin, end - begin, "***");
  }
  return out;
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Result<std::unique_ptr<SqlConnection>> OpenPostgres(const std::string& url, const std::string& schema) {
  // Defaults first: the URL's own settings override them.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "plinth", url.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!conn) return Error{ErrorCode::kIo, "cannot connect to PostgreSQL: out of memory", std::nullopt};
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) why.pop_back();
    // libpq's messages name the host and user, never the password.
    return Error{ErrorCode::kIo,
                 "cannot connect to the PostgreSQL state backend " + RedactConnInfo(url) + ": " + why +
                     " (set the password with PGPASSWORD or ~/.pgpass, TLS with PGSSLMODE and PGSSLROOTCERT)",
                 std::nullopt};
  }
  auto connection = std::make_unique<PostgresConnection>(conn, url, schema);
  if (!connection->Configure()) return connection->Failure("cannot configure the PostgreSQL session");
  return std::unique_ptr<SqlConnection>(std::move(connection));
}

}  // namespace plinth::state
