#include "runtime/state/state_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>

#include "compiler/types/value_json.h"
#include "runtime/crypto/aead.h"
#include "runtime/exec/parallel.h"
#include "runtime/io/durable.h"
#include "runtime/state/sql.h"

namespace plinth::state {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kIo: return "io";
    case ErrorCode::kCorrupt: return "corrupt";
    case ErrorCode::kSchemaTooNew: return "schema-too-new";
    case ErrorCode::kKeyRequired: return "key-required";
    case ErrorCode::kWrongKey: return "wrong-key";
    case ErrorCode::kNotEncrypted: return "not-encrypted";
    case ErrorCode::kNotFound: return "not-found";
    case ErrorCode::kInvalidArgument: return "invalid-argument";
    case ErrorCode::kConflict: return "conflict";
    case ErrorCode::kLockHeld: return "lock-held";
    case ErrorCode::kInternal: return "internal";
  }
  return "internal";
}

const char* ActionName(Action action) {
  switch (action) {
    case Action::kCreate: return "create";
    case Action::kUpdate: return "update";
    case Action::kDelete: return "delete";
  }
  return "create";
}

const char* ApplyStatusName(ApplyStatus status) {
  switch (status) {
    case ApplyStatus::kRunning: return "running";
    case ApplyStatus::kSucceeded: return "succeeded";
    case ApplyStatus::kFailed: return "failed";
  }
  return "running";
}

const char* IntentStatusName(IntentStatus status) {
  switch (status) {
    case IntentStatus::kOpen: return "open";
    case IntentStatus::kDone: return "done";
    case IntentStatus::kFailed: return "failed";
  }
  return "open";
}

namespace {

using nlohmann::json;

// "Plnt": identifies a Plinth state database in the SQLite header (offset 68).
constexpr int kApplicationId = 0x506C6E74;
constexpr char kSqliteMagic[] = "SQLite format 3";  // 16 bytes with the NUL

constexpr const char* kSchema = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE serials (
  serial INTEGER PRIMARY KEY,
  started_ms INTEGER NOT NULL,
  finished_ms INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  command TEXT NOT NULL,
  config_digest TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '');
CREATE TABLE resources (
  address TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  provider TEXT NOT NULL,
  id TEXT NOT NULL,
  attributes BLOB NOT NULL,
  dependencies TEXT NOT NULL,
  serial_created INTEGER NOT NULL,
  serial_updated INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE history (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  serial INTEGER NOT NULL,
  address TEXT NOT NULL,
  action TEXT NOT NULL,
  before BLOB,
  after BLOB,
  at_ms INTEGER NOT NULL);
CREATE INDEX history_by_address ON history(address, seq);
CREATE INDEX history_by_serial ON history(serial, seq);
CREATE TABLE intents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  serial INTEGER NOT NULL,
  address TEXT NOT NULL,
  action TEXT NOT NULL,
  planned BLOB NOT NULL,
  started_ms INTEGER NOT NULL,
  status TEXT NOT NULL,
  result TEXT NOT NULL DEFAULT '');
CREATE INDEX intents_open ON intents(id) WHERE status = 'open';
CREATE TABLE lock (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  pid INTEGER NOT NULL,
  host TEXT NOT NULL,
  command TEXT NOT NULL,
  since_ms INTEGER NOT NULL,
  boot_id TEXT NOT NULL,
  start_time TEXT NOT NULL,
  machine_id TEXT NOT NULL DEFAULT '',
  pid_namespace TEXT NOT NULL DEFAULT '');
)sql";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Error MakeError(ErrorCode code, std::string message) {
  return Error{code, std::move(message), std::nullopt};
}

Error SqlError(SqlConnection* db, const std::string& what) { return db->Failure(what); }

// A prepared statement of the store's connection (runtime/state/sql.h).
class Stmt {
 public:
  Stmt(SqlConnection* db, const std::string& sql) : s_(db->Prepare(sql)) {}
  Stmt& Bind(int i, int64_t v) {
    s_->Bind(i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& text) {
    s_->Bind(i, text);
    return *this;
  }
  Stmt& BindBlob(int i, const std::optional<std::string>& blob) {
    s_->BindBlob(i, blob);
    return *this;
  }
  // kRow, kDone or kStepError.
  int Step() { return s_->Step(); }
  int64_t Int(int col) { return s_->Int(col); }
  bool IsNull(int col) { return s_->IsNull(col); }
  std::string Text(int col) { return s_->Text(col); }
  std::string Blob(int col) { return s_->Blob(col); }

 private:
  std::unique_ptr<SqlStatement> s_;
};

Status Exec(SqlConnection* db, const std::string& sql, const std::string& what) { return db->Exec(sql, what); }

// A write transaction (SqlConnection::BeginWrite ... COMMIT); rolls back when
// destroyed uncommitted.
class Transaction {
 public:
  // `fence`: the workspace lock id this store holds, when the lock is a lease
  // (PostgreSQL); the transaction is refused when the lock row names another.
  explicit Transaction(SqlConnection* db, const std::string* fence = nullptr) : db_(db), fence_(fence) {}
  ~Transaction() {
    if (begun_ && !committed_) (void)db_->Exec("ROLLBACK", "cannot roll back a state transaction");
  }
  Status Begin() {
    Status s = db_->BeginWrite();
    begun_ = s.ok();
    if (s.ok() && fence_ && !fence_->empty()) return CheckFence();
    return s;
  }
  Status Commit() {
    Status s = Exec(db_, "COMMIT", "cannot commit to the state database");
    committed_ = s.ok();
    return s;
  }

 private:
  Status CheckFence() {
    Stmt q(db_, "SELECT id, host, pid, command FROM lock");
    int rc = q.Step();
    if (rc == kStepError) return SqlError(db_, "cannot read the workspace lock");
    if (rc == kRow && q.Text(0) == *fence_) return Ok{};
    return MakeError(ErrorCode::kLockHeld,
                     "this process no longer holds the workspace lock: its lease ran out (it could not be renewed) "
                     "and " +
                         (rc == kRow ? "pid " + std::to_string(q.Int(2)) + " on " + q.Text(1) + " (" + q.Text(3) +
                                           ") took it"
                                     : std::string("it was released")) +
                         "; nothing more was written; run the command again");
  }

  SqlConnection* db_;
  const std::string* fence_;
  bool begun_ = false;
  bool committed_ = false;
};

std::string Hex(const unsigned char* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

std::string KeyId(const std::array<uint8_t, 32>& key) {
  std::string input = "plinth-state-key-id-v1";
  input.append(reinterpret_cast<const char*>(key.data()), key.size());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
  return Hex(digest, 8);
}

// Associated data of a sealed state blob: a label naming the kind of row
// and blob, then the row's identity columns, each length-prefixed (8 bytes,
// big endian) so no two different rows can produce the same bytes.
class AadBuilder {
 public:
  explicit AadBuilder(std::string_view label) { Add(label); }
  AadBuilder& Add(std::string_view field) {
    for (int i = 7; i >= 0; --i) out_.push_back(static_cast<char>(static_cast<uint64_t>(field.size()) >> (8 * i)));
    out_.append(field);
    return *this;
  }
  AadBuilder& Add(int64_t n) { return Add(std::to_string(n)); }
  std::string str() { return std::move(out_); }

 private:
  std::string out_;
};

// A resource row's attributes: bound to every other column of the row, so
// no column can be changed, and a blob from an older version of the row
// (another serial_updated) or from another row does not open.
std::string ResourceAad(const std::string& address, const std::string& type, const std::string& provider,
                        const std::string& id, const std::string& dependencies, int64_t serial_created,
                        int64_t serial_updated) {
  return AadBuilder("plinth-state-v2 resource")
      .Add(address)
      .Add(type)
      .Add(provider)
      .Add(id)
      .Add(dependencies)
      .Add(serial_created)
      .Add(serial_updated)
      .str();
}

// A history row's before or after record: bound to the row's sequence
// number, serial, address, action and time, and to which of the two it is.
std::string HistoryAad(int64_t seq, int64_t serial, const std::string& address, const std::string& action,
                       int64_t at_ms, std::string_view which) {
  return AadBuilder("plinth-state-v2 history")
      .Add(seq)
      .Add(serial)
      .Add(address)
      .Add(action)
      .Add(at_ms)
      .Add(which)
      .str();
}

// An intent's planned record: bound to the intent's id, serial, address and
// action (its status and result change later and are not bound).
std::string IntentAad(int64_t id, int64_t serial, const std::string& address, const std::string& action) {
  return AadBuilder("plinth-state-v2 intent").Add(id).Add(serial).Add(address).Add(action).str();
}

// Schema version 1 bound a blob to its address only (format-1 blobs); read
// only by the migration to version 2.
std::string AadV1(const std::string& address) { return std::string("plinth-state-v1") + '\0' + address; }

// The next value of an AUTOINCREMENT key, so a row's blobs can be sealed with
// the key as associated data before the row is inserted. Callers are inside
// a write transaction, so no other writer can take the same value.
// `table` is "history" or "intents". Both lookups are O(log n): the last
// rowid, and sqlite_sequence (which is what AUTOINCREMENT itself consults).
Result<int64_t> NextAutoincrement(SqlConnection* db, const char* table) {
  const std::string t = table;
  const std::string key = t == "history" ? "seq" : "id";
  // PostgreSQL: rows of these tables are never deleted, so the next key is
  // the largest plus one (the caller's write transaction excludes other writers).
  Stmt q(db, db->dialect() == SqlConnection::Dialect::kPostgres
                 ? "SELECT COALESCE(MAX(" + key + "), 0) + 1 FROM " + t
                 : "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '" + t +
                       "'), 0), COALESCE((SELECT MAX(rowid) FROM " + t + "), 0)) + 1");
  if (q.Step() != kRow) return SqlError(db, std::string("cannot number a new row of ") + table);
  return q.Int(0);
}

bool FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

void RemoveSqliteFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) ::unlink((path + suffix).c_str());
}

std::string ParentDir(const std::string& path) {
  std::string parent = std::filesystem::path(path).parent_path().string();
  return parent.empty() ? "." : parent;
}

// Takes group and other permissions away from `path` when it is a regular
// file (a directory, with `directory`) that this user owns. The check and the
// chmod act on one descriptor opened with O_NOFOLLOW, so a symbolic link (or
// a file swapped in between) is left alone. Best effort: a state another user
// owns still opens, with its mode as it is.
void Restrict(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return;
  struct stat st;
  if (::fstat(fd, &st) == 0 && st.st_uid == ::geteuid() && (st.st_mode & 077) != 0 &&
      (directory ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode))) {
    (void)::fchmod(fd, st.st_mode & 0700);
  }
  ::close(fd);
}

// A state database and the files SQLite keeps beside it.
void RestrictStateFiles(const std::string& path) {
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) Restrict(path + suffix, false);
}

json RecordToJson(const ResourceRecord& r, std::string* error) {
  ValueJsonResult attrs = ValueToJson(Value::Object(r.attributes));
  if (!attrs.ok()) {
    *error = attrs.error;
    return nullptr;
  }
  return json{{"type", r.type},
              {"provider", r.provider},
              {"id", r.id},
              {"attributes", std::move(attrs.json)},
              {"dependencies", r.dependencies},
              {"serial_created", r.serial_created},
              {"serial_updated", r.serial_updated}};
}

bool ParseAction(const std::string& s, Action* out) {
  for (Action a : {Action::kCreate, Action::kUpdate, Action::kDelete}) {
    if (s == ActionName(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

// What the meta table says of a state.
struct MetaInfo {
  int schema_version = 0;
  std::string workspace;
  uint32_t key_version = 0;
};

// The checks every backend runs on an existing state's meta rows before any
// record is read: schema version, encryption and key. `where` names the state
// in messages; `untouched` says what was left as it was.
Result<MetaInfo> CheckMeta(std::map<std::string, std::string> meta, const std::string& where,
                           const std::string& untouched, const StoreOptions& options) {
  auto corrupt = [&](const std::string& why) {
    return MakeError(ErrorCode::kCorrupt,
                     "state " + where + " is damaged (" + why + "); restore it from a backup" + untouched);
  };
  int version = 0;
  try {
    version = std::stoi(meta.at("schema_version"));
  } catch (...) {
    return corrupt("no schema version in the meta table");
  }
  if (version > kSchemaVersion) {
    return MakeError(ErrorCode::kSchemaTooNew, "state " + where + " has schema version " + std::to_string(version) +
                                                    ", newer than this Plinth (" + std::to_string(kSchemaVersion) +
                                                    "); upgrade Plinth");
  }
  if (version < 1) return corrupt("schema version " + std::to_string(version));
  if (auto moved = meta.find("migrated_to"); moved != meta.end()) {
    return MakeError(ErrorCode::kConflict, "state " + where + " was moved to " + moved->second +
                                               " by plinth state migrate, and that is the state now (point --backend "
                                               "or PLINTH_BACKEND at it, or leave them unset for a SQLite file); "
                                               "this copy is kept only as a backup");
  }
  MetaInfo info;
  info.schema_version = version;
  info.workspace = meta["workspace"];
  const std::string& encryption = meta["encryption"];
  if (encryption == "aes-256-gcm") {
    if (!options.encryption_key) {
      return MakeError(ErrorCode::kKeyRequired,
                       "state " + where + " is encrypted; provide its key (key id " + meta["key_id"] +
                           ") with --state-key-file=FILE or PLINTH_STATE_KEY_FILE");
    }
    std::string given = KeyId(*options.encryption_key);
    if (given != meta["key_id"]) {
      return MakeError(ErrorCode::kWrongKey, "wrong encryption key for state " + where +
                                                 ": it was written with key id " + meta["key_id"] +
                                                 ", the given key has id " + given);
    }
    try {
      info.key_version = static_cast<uint32_t>(std::stoul(meta.at("key_version")));
    } catch (...) {
      return corrupt("no key version in the meta table");
    }
  } else if (encryption == "none") {
    if (options.encryption_key) {
      return MakeError(ErrorCode::kNotEncrypted, "state " + where +
                                                     " is not encrypted but an encryption key was given; "
                                                     "drop the key (--state-key-file, PLINTH_STATE_KEY_FILE): "
                                                     "an existing state cannot be encrypted in place");
    }
  } else {
    return corrupt("unknown encryption '" + encryption + "'");
  }
  return info;
}

Result<std::map<std::string, std::string>> ReadMeta(SqlConnection* db) {
  std::map<std::string, std::string> meta;
  Stmt q(db, "SELECT key, value FROM meta");
  int step;
  while ((step = q.Step()) == kRow) meta[q.Text(0)] = q.Text(1);
  if (step != kDone) return SqlError(db, "cannot read the meta table");
  return meta;
}

// Runs the read-only checks on an existing file. Never writes to it.
Result<MetaInfo> VerifyExisting(const std::string& path, const StoreOptions& options) {
  const std::string untouched = "; the file was left untouched";
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return MakeError(ErrorCode::kIo, "cannot read state file '" + path + "': " + std::strerror(errno));
    char header[100] = {};
    in.read(header, sizeof header);
    if (in.gcount() < static_cast<std::streamsize>(sizeof header) ||
        std::memcmp(header, kSqliteMagic, sizeof kSqliteMagic) != 0) {
      return MakeError(ErrorCode::kCorrupt, "'" + path +
                                                "' is not a Plinth state database (no SQLite header); restore "
                                                "it from a backup or move it away" +
                                                untouched);
    }
  }
  Result<std::unique_ptr<SqlConnection>> opened = OpenSqlite(path, SQLITE_OPEN_READONLY);
  if (!opened.ok()) return opened.error();
  SqlConnection* db = opened.value().get();
  auto corrupt = [&](const std::string& why) {
    return MakeError(ErrorCode::kCorrupt, "state file '" + path + "' is damaged (" + why +
                                              "); restore it from a backup" + untouched);
  };
  auto reason = [&] {
    std::string m = sqlite3_errmsg(SqliteHandle(*db));
    return m;
  };
  {
    Stmt app(db, "PRAGMA application_id");
    int step = app.Step();
    if (step != kRow) return corrupt(reason());
    if (app.Int(0) != kApplicationId) {
      return MakeError(ErrorCode::kCorrupt,
                       "'" + path + "' is an SQLite database but not a Plinth state database" + untouched);
    }
  }
  if (options.verify_on_open) {
    Stmt check(db, "PRAGMA quick_check");
    int step = check.Step();
    if (step != kRow) return corrupt(reason());
    std::string first = check.Text(0);
    if (first != "ok") {
      // SQLite's report spans lines ("*** in database main ***\nPage 2: …").
      std::replace(first.begin(), first.end(), '\n', ' ');
      return corrupt(first);
    }
  }
  std::map<std::string, std::string> meta;
  {
    Stmt q(db, "SELECT key, value FROM meta");
    int step;
    while ((step = q.Step()) == kRow) meta[q.Text(0)] = q.Text(1);
    if (step != kDone) return corrupt("meta table: " + reason());
  }
  return CheckMeta(std::move(meta), "file '" + path + "'", untouched, options);
}

// The PostgreSQL schema: the same tables as SQLite's, in the workspace's own
// schema (search_path), with a lease on the lock row and history rows that
// cannot be changed or deleted once written.
constexpr const char* kPostgresSchema = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE serials (
  serial BIGINT PRIMARY KEY,
  started_ms BIGINT NOT NULL,
  finished_ms BIGINT NOT NULL DEFAULT 0,
  status TEXT NOT NULL,
  command TEXT NOT NULL,
  config_digest TEXT NOT NULL,
  source TEXT NOT NULL DEFAULT '');
CREATE TABLE resources (
  address TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  provider TEXT NOT NULL,
  id TEXT NOT NULL,
  attributes BYTEA NOT NULL,
  dependencies TEXT NOT NULL,
  serial_created BIGINT NOT NULL,
  serial_updated BIGINT NOT NULL);
CREATE TABLE history (
  seq BIGINT PRIMARY KEY,
  serial BIGINT NOT NULL,
  address TEXT NOT NULL,
  action TEXT NOT NULL,
  before BYTEA,
  after BYTEA,
  at_ms BIGINT NOT NULL);
CREATE INDEX history_by_address ON history(address, seq);
CREATE INDEX history_by_serial ON history(serial, seq);
CREATE FUNCTION history_append_only() RETURNS trigger LANGUAGE plpgsql AS
  $fn$BEGIN RAISE EXCEPTION 'the state history is append-only'; END$fn$;
CREATE TRIGGER history_append_only BEFORE UPDATE OR DELETE ON history
  FOR EACH ROW EXECUTE FUNCTION history_append_only();
CREATE TABLE intents (
  id BIGINT PRIMARY KEY,
  serial BIGINT NOT NULL,
  address TEXT NOT NULL,
  action TEXT NOT NULL,
  planned BYTEA NOT NULL,
  started_ms BIGINT NOT NULL,
  status TEXT NOT NULL,
  result TEXT NOT NULL DEFAULT '');
CREATE INDEX intents_open ON intents(id) WHERE status = 'open';
CREATE TABLE lock (
  singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
  id TEXT NOT NULL,
  pid BIGINT NOT NULL,
  host TEXT NOT NULL,
  command TEXT NOT NULL,
  since_ms BIGINT NOT NULL,
  boot_id TEXT NOT NULL,
  start_time TEXT NOT NULL,
  machine_id TEXT NOT NULL DEFAULT '',
  pid_namespace TEXT NOT NULL DEFAULT '',
  expires_ms BIGINT NOT NULL DEFAULT 0);
)sql";

// Writes the schema and the meta rows into an empty database (SQLite) or a
// new schema (PostgreSQL), in one transaction.
Status InitDatabase(SqlConnection* db, const StoreOptions& options, const std::string& pg_schema = "") {
  std::string init;
  if (db->dialect() == SqlConnection::Dialect::kSqlite) {
    init = "PRAGMA synchronous=FULL; PRAGMA application_id=" + std::to_string(kApplicationId) +
           "; PRAGMA user_version=" + std::to_string(kSchemaVersion) + "; BEGIN;";
    init += kSchema;
  } else {
    init = "BEGIN; CREATE SCHEMA IF NOT EXISTS " + QuoteIdentifier(pg_schema) + ";";
    init += kPostgresSchema;
  }
  if (Status s = Exec(db, init, "cannot create the state schema"); !s.ok()) {
    (void)Exec(db, "ROLLBACK", "cannot roll back");
    return s;
  }
  std::map<std::string, std::string> meta = {
      {"schema_version", std::to_string(kSchemaVersion)},
      {"workspace", options.workspace},
      {"created_ms", std::to_string(NowMs())},
      {"encryption", options.encryption_key ? "aes-256-gcm" : "none"},
  };
  if (options.encryption_key) {
    meta["key_id"] = KeyId(*options.encryption_key);
    meta["key_version"] = std::to_string(options.key_version);
  }
  for (const auto& [k, v] : meta) {
    Stmt ins(db, "INSERT INTO meta(key, value) VALUES (?, ?)");
    if (ins.Bind(1, k).Bind(2, v).Step() != kDone) {
      Error e = SqlError(db, "cannot write state meta");
      (void)Exec(db, "ROLLBACK", "cannot roll back");
      return e;
    }
  }
  return Exec(db, "COMMIT;", "cannot create the state schema");
}

// Builds a complete database under a temporary name and links it into place.
// Returns Ok also when another process created `path` first.
Status CreateDatabase(const std::string& path, const StoreOptions& options) {
  unsigned char rnd[8];
  RAND_bytes(rnd, sizeof rnd);
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid()) + "-" + Hex(rnd, sizeof rnd);
  auto fail = [&](Error e) {
    RemoveSqliteFiles(tmp);
    return e;
  };
  // SQLite would create the file with mode 0644 less the umask, and gives
  // the -wal and -shm files the database's mode: the file is created here,
  // exclusively and 0600, whatever the umask (an empty file is an empty
  // database to SQLite).
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    return MakeError(ErrorCode::kIo, "cannot create state file '" + tmp + "': " + std::strerror(errno));
  }
  ::close(fd);
  {
    Result<std::unique_ptr<SqlConnection>> db = OpenSqlite(tmp, SQLITE_OPEN_READWRITE);
    if (!db.ok()) return fail(db.error());
    if (Status s = InitDatabase(db.value().get(), options); !s.ok()) return fail(s.error());
    if (Status s = Exec(db.value().get(), "PRAGMA journal_mode=WAL;", "cannot create the state schema"); !s.ok()) {
      return fail(s.error());
    }
  }  // closed here, before the file is synced and linked
  if (!FsyncPath(tmp, false)) return fail(MakeError(ErrorCode::kIo, "cannot sync '" + tmp + "'"));
  // link() never replaces an existing file, unlike rename().
  if (::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    std::string why = std::strerror(errno);
    return fail(MakeError(ErrorCode::kIo, "cannot create state file '" + path + "': " + why));
  }
  RemoveSqliteFiles(tmp);
  if (!FsyncPath(ParentDir(path), true)) {
    return MakeError(ErrorCode::kIo, "cannot sync directory of '" + path + "'");
  }
  return Ok{};
}

bool ValidWorkspace(const std::string& ws) {
  if (ws.empty() || ws[0] == '.' || ws.size() > 128) return false;
  for (char c : ws) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------------ open

Result<std::string> StateStore::WorkspacePath(const std::string& dir, const std::string& workspace) {
  if (!ValidWorkspace(workspace)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "invalid workspace name '" + workspace + "': use letters, digits, '_', '-' and '.'");
  }
  return (std::filesystem::path(dir) / ".plinth" / workspace / "state.db").string();
}

std::string EnvBackend() {
  const char* env = std::getenv("PLINTH_BACKEND");
  return env ? std::string(env) : std::string();
}

std::vector<std::string> StateStore::Workspaces(const std::string& dir) {
  if (const std::string backend = EnvBackend(); !backend.empty()) {
    Result<std::vector<std::string>> names = PostgresWorkspaces(backend);
    return names.ok() ? names.value() : std::vector<std::string>();
  }
  std::vector<std::string> names;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(std::filesystem::path(dir) / ".plinth", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::error_code exists;
    if (ValidWorkspace(name) && std::filesystem::is_regular_file(it->path() / "state.db", exists)) {
      names.push_back(name);
    }
  }
  std::sort(names.begin(), names.end());
  return names;
}

Result<std::unique_ptr<StateStore>> StateStore::OpenWorkspace(const std::string& dir, const std::string& workspace,
                                                              StoreOptions options) {
  Result<std::string> path = WorkspacePath(dir, workspace);
  if (!path.ok()) return path.error();
  options.workspace = workspace;
  if (!options.backend.empty()) {
    if (!IsPostgresUrl(options.backend)) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "unknown state backend '" + RedactConnInfo(options.backend) +
                           "' (--backend, PLINTH_BACKEND): use a PostgreSQL URL "
                           "(postgres://USER@HOST:PORT/DATABASE), or leave it empty for the SQLite file");
    }
    return OpenPostgresWorkspace(options);
  }
  const std::string ws_dir = ParentDir(path.value());
  const std::string plinth_dir = ParentDir(ws_dir);
  struct stat st;
  if (options.mode == OpenMode::kExisting && ::lstat(path.value().c_str(), &st) != 0 && errno == ENOENT) {
    std::string known;
    for (const std::string& w : Workspaces(dir)) known += (known.empty() ? "" : ", ") + w;
    return MakeError(ErrorCode::kNotFound,
                     "no state for workspace '" + workspace + "' in '" + dir + "' " +
                         (known.empty() ? "(no workspace here has state; plinth apply creates it)"
                                        : "(workspaces here: " + known + "); check --workspace and --dir"));
  }
  if (options.mode == OpenMode::kCreate) {
    // The state holds every resource's attributes, sensitive ones included:
    // only its owner may list or read the workspace.
    if (int e = io::MakeDirs(ws_dir, 0700)) {
      return MakeError(ErrorCode::kIo, "cannot create '" + ws_dir + "': " + std::strerror(e));
    }
  }
  Restrict(plinth_dir, true);
  Restrict(ws_dir, true);
  return Open(path.value(), options);
}

std::string StateStore::PostgresSchema(const std::string& prefix, const std::string& workspace) {
  return prefix + "_" + workspace;
}

Result<std::vector<std::string>> StateStore::PostgresWorkspaces(const std::string& backend) {
  Result<BackendUrl> url = ParseBackendUrl(backend);
  if (!url.ok()) return url.error();
  Result<std::unique_ptr<SqlConnection>> db = OpenPostgres(url->conninfo, "public");
  if (!db.ok()) return db.error();
  // Schemas with a meta table; the workspace a schema holds is in its meta.
  Stmt q(db.value().get(),
         "SELECT table_schema FROM information_schema.tables WHERE table_name = 'meta' ORDER BY table_schema");
  std::vector<std::string> schemas;
  int rc;
  while ((rc = q.Step()) == kRow) schemas.push_back(q.Text(0));
  if (rc != kDone) return SqlError(db.value().get(), "cannot list the workspaces");
  std::vector<std::string> names;
  for (const std::string& schema : schemas) {
    Stmt w(db.value().get(), "SELECT value FROM " + QuoteIdentifier(schema) + ".meta WHERE key = 'workspace'");
    if (w.Step() == kRow && PostgresSchema(url->schema_prefix, w.Text(0)) == schema) names.push_back(w.Text(0));
  }
  return names;
}

Result<std::unique_ptr<StateStore>> StateStore::OpenPostgresWorkspace(const StoreOptions& options) {
  Result<BackendUrl> url = ParseBackendUrl(options.backend);
  if (!url.ok()) return url.error();
  const std::string schema = PostgresSchema(url->schema_prefix, options.workspace);
  if (schema.size() > 63) {  // PostgreSQL would cut the name short, and two workspaces could meet
    return MakeError(ErrorCode::kInvalidArgument, "the workspace name '" + options.workspace +
                                                      "' is too long for PostgreSQL: its schema '" + schema +
                                                      "' has over 63 bytes; use a shorter name or schema prefix");
  }
  Result<std::unique_ptr<SqlConnection>> opened = OpenPostgres(url->conninfo, schema);
  if (!opened.ok()) return opened.error();
  SqlConnection* db = opened.value().get();
  const std::string where = "workspace '" + options.workspace + "' (" + db->Where() + ")";
  auto exists = [&]() -> Result<bool> {
    Stmt q(db, "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = 'meta'");
    q.Bind(1, schema);
    int rc = q.Step();
    if (rc == kStepError) return SqlError(db, "cannot read the state schema " + schema);
    return rc == kRow;
  };
  Result<bool> found = exists();
  if (!found.ok()) return found.error();
  if (!found.value()) {
    if (options.mode == OpenMode::kExisting) {
      std::string known;
      if (auto names = PostgresWorkspaces(options.backend); names.ok()) {
        for (const std::string& w : names.value()) known += (known.empty() ? "" : ", ") + w;
      }
      return MakeError(ErrorCode::kNotFound,
                       "no state for workspace '" + options.workspace + "' in PostgreSQL " + db->Where() + " " +
                           (known.empty() ? "(no workspace there has state; plinth apply creates it)"
                                          : "(workspaces there: " + known + "); check --workspace and --backend"));
    }
    if (Status s = InitDatabase(db, options, schema); !s.ok()) {
      // Another process may have created it at the same moment.
      Result<bool> again = exists();
      if (!again.ok() || !again.value()) return s.error();
    }
  }
  Result<std::map<std::string, std::string>> meta = ReadMeta(db);
  if (!meta.ok()) return meta.error();
  Result<MetaInfo> info = CheckMeta(std::move(meta.value()), where, "; nothing was changed", options);
  if (!info.ok()) return info.error();
  std::unique_ptr<StateStore> store(new StateStore());
  store->path_ = db->Where();
  store->workspace_ = info->workspace;
  store->key_ = options.encryption_key;
  store->key_version_ = info->key_version;
  store->lease_ms_ = options.lease_ms;
  store->backend_ = url->conninfo;
  store->schema_ = schema;
  store->db_ = std::move(opened.value());
  return store;
}

Result<std::unique_ptr<StateStore>> StateStore::Open(const std::string& path, const StoreOptions& options) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return MakeError(ErrorCode::kIo, "cannot access state file '" + path + "': " + std::strerror(errno));
    }
    if (options.mode == OpenMode::kExisting) {
      return MakeError(ErrorCode::kNotFound, "no state file at '" + path + "'");
    }
    if (Status s = CreateDatabase(path, options); !s.ok()) return s.error();
  } else if (!S_ISREG(st.st_mode)) {
    return MakeError(ErrorCode::kCorrupt, "'" + path + "' is not a regular file");
  }
  // A state created by an earlier Plinth, or copied in, may be readable by
  // everyone; -wal and -shm follow the database's mode only when SQLite
  // creates them.
  RestrictStateFiles(path);
  Result<MetaInfo> meta = VerifyExisting(path, options);
  if (!meta.ok()) return meta.error();

  std::unique_ptr<StateStore> store(new StateStore());
  store->path_ = path;
  store->workspace_ = meta->workspace;
  store->key_ = options.encryption_key;
  store->key_version_ = meta->key_version;
  // No SQLITE_OPEN_CREATE: the file exists and was verified.
  Result<std::unique_ptr<SqlConnection>> db = OpenSqlite(path, SQLITE_OPEN_READWRITE);
  if (!db.ok()) return db.error();
  store->db_ = std::move(db.value());
  if (Status s = Exec(store->db_.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                      "cannot configure state file '" + path + "'");
      !s.ok()) {
    return s.error();
  }
  if (meta->schema_version < kSchemaVersion) {
    if (Status s = store->Migrate(); !s.ok()) return s.error();
  }
  return store;
}

Result<std::unique_ptr<StateStore>> StateStore::OpenEmpty(const StoreOptions& options) {
  std::unique_ptr<StateStore> store(new StateStore());
  store->workspace_ = options.workspace;
  store->key_ = options.encryption_key;
  store->key_version_ = options.key_version;
  Result<std::unique_ptr<SqlConnection>> db = OpenSqlite(":memory:", SQLITE_OPEN_READWRITE);
  if (!db.ok()) return db.error();
  store->db_ = std::move(db.value());
  if (Status s = InitDatabase(store->db_.get(), options); !s.ok()) return s.error();
  return store;
}

StateStore::~StateStore() { StopLeaseRenewal(); }

void StateStore::StartLeaseRenewal(const std::string& lock_id) {
  StopLeaseRenewal();
  fence_ = lock_id;
  renew_stop_ = false;
  const int64_t lease_ms = lease_ms_;
  renewer_ = std::thread([this, lock_id, lease_ms] {
    std::unique_ptr<SqlConnection> db;
    std::unique_lock<std::mutex> lk(renew_mu_);
    while (!renew_cv_.wait_for(lk, std::chrono::milliseconds(std::max<int64_t>(lease_ms / 3, 50)),
                               [this] { return renew_stop_; })) {
      lk.unlock();
      if (!db) {
        Result<std::unique_ptr<SqlConnection>> opened = OpenPostgres(backend_, schema_);
        if (opened.ok()) db = std::move(opened.value());
      }
      bool lost = false;
      if (db) {
        Stmt u(db.get(), "UPDATE lock SET expires_ms = ? WHERE id = ?");
        u.Bind(1, NowMs() + lease_ms).Bind(2, lock_id);
        // A failure is retried at the next tick; the fence stops writes if
        // the lease runs out meanwhile and someone takes it.
        if (u.Step() == kDone && db->Changes() == 0) lost = true;
      }
      lk.lock();
      if (lost) break;
    }
  });
}

void StateStore::StopLeaseRenewal() {
  if (!renewer_.joinable()) return;
  {
    std::lock_guard<std::mutex> lk(renew_mu_);
    renew_stop_ = true;
  }
  renew_cv_.notify_all();
  renewer_.join();
}

bool StateStore::postgres() const { return db_ && db_->dialect() == SqlConnection::Dialect::kPostgres; }

// ------------------------------------------------------------------ blobs

Result<std::string> StateStore::Seal(const std::string& aad, const std::string& plaintext) {
  if (!key_) return plaintext;
  std::string blob, error;
  if (!crypto::SealBlob(*key_, key_version_, aad, plaintext, &blob, &error)) {
    return MakeError(ErrorCode::kInternal, error);
  }
  return blob;
}

Result<std::string> StateStore::Unseal(const std::string& address, const std::string& aad, const std::string& blob) {
  if (!key_) return blob;
  std::string plain, error;
  uint32_t version = 0;
  if (!crypto::OpenBlob(*key_, aad, blob, &plain, &version, &error)) {
    return MakeError(ErrorCode::kCorrupt,
                     "a record of '" + address + "' in state file '" + path_ +
                         "' fails authentication: the state was damaged or tampered with (a value changed, moved "
                         "to another row, or replaced by an older copy); restore the file from a backup");
  }
  if (version != key_version_) {
    return MakeError(ErrorCode::kWrongKey, "the record of '" + address + "' was written with key version " +
                                               std::to_string(version) + ", the state uses version " +
                                               std::to_string(key_version_));
  }
  return plain;
}

Result<std::string> StateStore::AttributesJson(const std::string& address, const ValueMap& attributes) {
  ValueJsonResult j = ValueToJson(Value::Object(attributes));
  if (!j.ok()) return MakeError(ErrorCode::kInvalidArgument, "cannot store '" + address + "': " + j.error);
  return j.json.dump();
}

Result<ValueMap> StateStore::DecodeAttributes(const std::string& address, const std::string& aad,
                                              const std::string& blob) {
  Result<std::string> plain = Unseal(address, aad, blob);
  if (!plain.ok()) return plain.error();
  json j = json::parse(plain.value(), nullptr, /*allow_exceptions=*/false);
  ValueFromJsonResult v = ValueFromJson(j);
  if (j.is_discarded() || !v.ok() || v.value.kind() != Value::Kind::Object) {
    return MakeError(ErrorCode::kCorrupt, "the attributes of '" + address + "' are damaged" +
                                              (v.ok() ? std::string() : ": " + v.error));
  }
  return v.value.as_object();
}

Result<std::string> StateStore::RecordJson(const ResourceRecord& r) {
  std::string error;
  json j = RecordToJson(r, &error);
  if (!error.empty()) return MakeError(ErrorCode::kInvalidArgument, "cannot store '" + r.address + "': " + error);
  return j.dump();
}

Result<ResourceRecord> StateStore::DecodeRecord(const std::string& address, const std::string& aad,
                                                const std::string& blob) {
  Result<std::string> plain = Unseal(address, aad, blob);
  if (!plain.ok()) return plain.error();
  json j = json::parse(plain.value(), nullptr, /*allow_exceptions=*/false);
  auto damaged = [&](const std::string& why) {
    return MakeError(ErrorCode::kCorrupt, "a record of '" + address + "' is damaged: " + why);
  };
  if (!j.is_object()) return damaged("not a JSON object");
  ResourceRecord r;
  r.address = address;
  try {
    r.type = j.at("type").get<std::string>();
    r.provider = j.at("provider").get<std::string>();
    r.id = j.at("id").get<std::string>();
    r.dependencies = j.at("dependencies").get<std::vector<std::string>>();
    r.serial_created = j.at("serial_created").get<int64_t>();
    r.serial_updated = j.at("serial_updated").get<int64_t>();
    ValueFromJsonResult v = ValueFromJson(j.at("attributes"));
    if (!v.ok()) return damaged(v.error);
    if (v.value.kind() != Value::Kind::Object) return damaged("attributes are not an object");
    r.attributes = v.value.as_object();
  } catch (const json::exception& e) {
    return damaged(e.what());
  }
  return r;
}

// ------------------------------------------------------------------ rows

namespace {

constexpr const char* kResourceColumns =
    "SELECT address, type, provider, id, attributes, dependencies, serial_created, serial_updated FROM resources";

// The row a kResourceColumns statement stands on.
template <typename Row, typename Statement>
Row ReadRow(Statement& q) {
  Row row;
  row.address = q.Text(0);
  row.type = q.Text(1);
  row.provider = q.Text(2);
  row.id = q.Text(3);
  row.attributes = q.Blob(4);
  row.dependencies = q.Text(5);
  row.serial_created = q.Int(6);
  row.serial_updated = q.Int(7);
  return row;
}

}  // namespace

Result<ResourceRecord> StateStore::DecodeRow(Row&& row) {
  ResourceRecord r;
  r.address = std::move(row.address);
  r.type = std::move(row.type);
  r.provider = std::move(row.provider);
  r.id = std::move(row.id);
  Result<ValueMap> attrs =
      DecodeAttributes(r.address,
                       ResourceAad(r.address, r.type, r.provider, r.id, row.dependencies, row.serial_created,
                                   row.serial_updated),
                       row.attributes);
  if (!attrs.ok()) return attrs.error();
  r.attributes = std::move(attrs.value());
  if (row.dependencies != "[]") {
    json deps = json::parse(row.dependencies, nullptr, false);
    if (!deps.is_array()) return MakeError(ErrorCode::kCorrupt, "the dependencies of '" + r.address + "' are damaged");
    for (const json& d : deps) {
      if (!d.is_string()) return MakeError(ErrorCode::kCorrupt, "the dependencies of '" + r.address + "' are damaged");
      r.dependencies.push_back(d.get<std::string>());
    }
  }
  r.serial_created = row.serial_created;
  r.serial_updated = row.serial_updated;
  return r;
}

Result<std::optional<ResourceRecord>> StateStore::LoadResource(const std::string& address) {
  Stmt q(db_.get(), (std::string(kResourceColumns) + " WHERE address = ?").c_str());
  q.Bind(1, address);
  int rc = q.Step();
  if (rc == kDone) return std::optional<ResourceRecord>();
  if (rc != kRow) return SqlError(db_.get(), "cannot read '" + address + "' from state");
  Result<ResourceRecord> r = DecodeRow(ReadRow<Row>(q));
  if (!r.ok()) return r.error();
  return std::optional<ResourceRecord>(std::move(r.value()));
}

Status StateStore::UpsertResource(const ResourceRecord& r) {
  Result<std::string> plain = AttributesJson(r.address, r.attributes);
  if (!plain.ok()) return plain.error();
  const std::string dependencies = json(r.dependencies).dump();
  Result<std::string> attrs = Seal(
      ResourceAad(r.address, r.type, r.provider, r.id, dependencies, r.serial_created, r.serial_updated),
      plain.value());
  if (!attrs.ok()) return attrs.error();
  Stmt q(db_.get(),
         "INSERT INTO resources(address, type, provider, id, attributes, dependencies, serial_created, "
         "serial_updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(address) DO UPDATE SET type = "
         "excluded.type, provider = excluded.provider, id = excluded.id, attributes = excluded.attributes, "
         "dependencies = excluded.dependencies, serial_created = excluded.serial_created, serial_updated = "
         "excluded.serial_updated");
  q.Bind(1, r.address).Bind(2, r.type).Bind(3, r.provider).Bind(4, r.id).BindBlob(5, attrs.value());
  q.Bind(6, dependencies).Bind(7, r.serial_created).Bind(8, r.serial_updated);
  if (q.Step() != kDone) return SqlError(db_.get(), "cannot write '" + r.address + "' to state");
  return Ok{};
}

Status StateStore::AppendHistory(int64_t serial, const std::string& address, Action action,
                                 const std::optional<ResourceRecord>& before,
                                 const std::optional<ResourceRecord>& after) {
  Result<int64_t> seq = NextAutoincrement(db_.get(), "history");
  if (!seq.ok()) return seq.error();
  const std::string action_name = ActionName(action);
  const int64_t at_ms = NowMs();
  auto seal = [&](const std::optional<ResourceRecord>& record, const char* which,
                  std::optional<std::string>* blob) -> Status {
    if (!record) return Ok{};
    Result<std::string> plain = RecordJson(*record);
    if (!plain.ok()) return plain.error();
    Result<std::string> sealed =
        Seal(HistoryAad(seq.value(), serial, address, action_name, at_ms, which), plain.value());
    if (!sealed.ok()) return sealed.error();
    *blob = std::move(sealed.value());
    return Ok{};
  };
  std::optional<std::string> before_blob, after_blob;
  if (Status st = seal(before, "before", &before_blob); !st.ok()) return st;
  if (Status st = seal(after, "after", &after_blob); !st.ok()) return st;
  Stmt q(db_.get(),
         "INSERT INTO history(seq, serial, address, action, before, after, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)");
  q.Bind(1, seq.value()).Bind(2, serial).Bind(3, address).Bind(4, action_name);
  q.BindBlob(5, before_blob).BindBlob(6, after_blob).Bind(7, at_ms);
  if (q.Step() != kDone) return SqlError(db_.get(), "cannot append history for '" + address + "'");
  return Ok{};
}

Result<int64_t> StateStore::NewSerial(const std::string& command, const std::string& digest,
                                      ApplyStatus status, const std::string& source) {
  Stmt max(db_.get(), "SELECT COALESCE(MAX(serial), 0) FROM serials");
  if (max.Step() != kRow) return SqlError(db_.get(), "cannot read the current serial");
  int64_t serial = max.Int(0) + 1;
  int64_t now = NowMs();
  Stmt ins(db_.get(),
           "INSERT INTO serials(serial, started_ms, finished_ms, status, command, config_digest, source) "
           "VALUES (?, ?, ?, ?, ?, ?, ?)");
  ins.Bind(1, serial).Bind(2, now).Bind(3, status == ApplyStatus::kRunning ? 0 : now);
  ins.Bind(4, std::string(ApplyStatusName(status))).Bind(5, command).Bind(6, digest).Bind(7, source);
  if (ins.Step() != kDone) return SqlError(db_.get(), "cannot start serial " + std::to_string(serial));
  return serial;
}

// ------------------------------------------------------------------ applies

Result<int64_t> StateStore::BeginApply(const std::string& command, const std::string& config_digest,
                                        const std::string& source) {
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s.error();
  Result<int64_t> serial = NewSerial(command, config_digest, ApplyStatus::kRunning, source);
  if (!serial.ok()) return serial;
  if (Status s = txn.Commit(); !s.ok()) return s.error();
  return serial;
}

Status StateStore::FinishApply(int64_t serial, ApplyStatus status) {
  std::lock_guard<std::mutex> guard(mu_);
  if (status == ApplyStatus::kRunning) {
    return MakeError(ErrorCode::kInvalidArgument, "an apply cannot finish with status running");
  }
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s;
  Stmt q(db_.get(), "SELECT status FROM serials WHERE serial = ?");
  q.Bind(1, serial);
  int rc = q.Step();
  if (rc == kDone) return MakeError(ErrorCode::kNotFound, "no serial " + std::to_string(serial));
  if (rc != kRow) return SqlError(db_.get(), "cannot read serial " + std::to_string(serial));
  if (q.Text(0) != ApplyStatusName(ApplyStatus::kRunning)) {
    return MakeError(ErrorCode::kConflict, "serial " + std::to_string(serial) + " already finished (" +
                                               q.Text(0) + ")");
  }
  Stmt u(db_.get(), "UPDATE serials SET status = ?, finished_ms = ? WHERE serial = ?");
  u.Bind(1, std::string(ApplyStatusName(status))).Bind(2, NowMs()).Bind(3, serial);
  if (u.Step() != kDone) return SqlError(db_.get(), "cannot finish serial " + std::to_string(serial));
  return txn.Commit();
}

Result<int64_t> StateStore::CurrentSerial() {
  std::lock_guard<std::mutex> guard(mu_);
  Stmt max(db_.get(), "SELECT COALESCE(MAX(serial), 0) FROM serials");
  if (max.Step() != kRow) return SqlError(db_.get(), "cannot read the current serial");
  return max.Int(0);
}

Result<std::vector<SerialRecord>> StateStore::Serials() {
  std::lock_guard<std::mutex> guard(mu_);
  Stmt q(db_.get(),
         "SELECT serial, started_ms, finished_ms, status, command, config_digest, source FROM serials "
         "ORDER BY serial");
  std::vector<SerialRecord> out;
  int rc;
  while ((rc = q.Step()) == kRow) {
    SerialRecord s;
    s.serial = q.Int(0);
    s.started_ms = q.Int(1);
    s.finished_ms = q.Int(2);
    std::string status = q.Text(3);
    s.status = status == "succeeded" ? ApplyStatus::kSucceeded
               : status == "failed"  ? ApplyStatus::kFailed
                                     : ApplyStatus::kRunning;
    s.command = q.Text(4);
    s.config_digest = q.Text(5);
    s.source = q.Text(6);
    out.push_back(std::move(s));
  }
  if (rc != kDone) return SqlError(db_.get(), "cannot read serials");
  return out;
}

// ------------------------------------------------------------------ intents

// Group commit. Writers that arrive while a commit is in progress queue up;
// the first in the queue becomes the leader, runs every queued write in one
// transaction (each inside a savepoint, so one failure does not undo the
// others) and commits once: one fsync for the whole batch. Every writer
// returns only after the commit that holds its write, so durability is
// exactly that of committing each write alone.
struct StateStore::PendingWrite {
  const std::function<Status()>* body = nullptr;
  Status result = Ok{};
  bool done = false;
  std::condition_variable cv;
};

Status StateStore::GroupCommit(const std::function<Status()>& body) {
  PendingWrite self;
  self.body = &body;
  std::unique_lock<std::mutex> lk(queue_mu_);
  queue_.push_back(&self);
  while (!self.done && queue_.front() != &self) self.cv.wait(lk);
  if (self.done) return self.result;
  constexpr size_t kMaxBatch = 256;
  std::vector<PendingWrite*> batch(queue_.begin(), queue_.begin() + std::min(queue_.size(), kMaxBatch));
  lk.unlock();
  {
    std::lock_guard<std::mutex> guard(mu_);
    Transaction txn(db_.get(), &fence_);
    Status begun = txn.Begin();
    if (!begun.ok()) {
      for (PendingWrite* w : batch) w->result = begun;
    } else {
      if (batch.size() == 1) {
        // Alone in its transaction: no savepoint (two statements fewer, which
        // is two round trips with PostgreSQL); a failure rolls it all back.
        batch[0]->result = (*batch[0]->body)();
      } else {
        for (PendingWrite* w : batch) {
          Status sp = Exec(db_.get(), "SAVEPOINT write", "cannot start a state write");
          w->result = sp.ok() ? (*w->body)() : sp;
          if (!w->result.ok() && sp.ok()) {
            (void)Exec(db_.get(), "ROLLBACK TO write", "cannot undo a failed state write");
          }
          if (sp.ok()) (void)Exec(db_.get(), "RELEASE write", "cannot finish a state write");
        }
      }
      // A lone write that failed is rolled back by the transaction's destructor.
      Status committed = batch.size() == 1 && !batch[0]->result.ok() ? Status(Ok{}) : txn.Commit();
      if (!committed.ok()) {
        for (PendingWrite* w : batch) {
          if (w->result.ok()) w->result = committed;
        }
      }
    }
  }
  lk.lock();
  for (size_t i = 0; i < batch.size(); ++i) queue_.pop_front();
  for (PendingWrite* w : batch) {
    w->done = true;
    if (w != &self) w->cv.notify_one();
  }
  if (!queue_.empty()) queue_.front()->cv.notify_one();
  return self.result;
}

Result<int64_t> StateStore::RecordIntent(int64_t serial, const std::string& address, Action action,
                                         const ResourceRecord& planned) {
  if (address.empty()) return MakeError(ErrorCode::kInvalidArgument, "an intent needs a resource address");
  ResourceRecord record = planned;
  record.address = address;
  Result<std::string> plain = RecordJson(record);
  if (!plain.ok()) return plain.error();
  const std::string action_name = ActionName(action);
  int64_t id = 0;
  std::function<Status()> body = [&]() -> Status {
    Stmt q(db_.get(), "SELECT status FROM serials WHERE serial = ?");
    q.Bind(1, serial);
    int rc = q.Step();
    if (rc == kDone) return MakeError(ErrorCode::kNotFound, "no serial " + std::to_string(serial));
    if (rc != kRow) return SqlError(db_.get(), "cannot read serial " + std::to_string(serial));
    if (q.Text(0) != ApplyStatusName(ApplyStatus::kRunning)) {
      return MakeError(ErrorCode::kConflict, "serial " + std::to_string(serial) + " is not running");
    }
    Result<int64_t> next = NextAutoincrement(db_.get(), "intents");
    if (!next.ok()) return next.error();
    Result<std::string> blob = Seal(IntentAad(next.value(), serial, address, action_name), plain.value());
    if (!blob.ok()) return blob.error();
    Stmt ins(db_.get(),
             "INSERT INTO intents(id, serial, address, action, planned, started_ms, status) "
             "VALUES (?, ?, ?, ?, ?, ?, 'open')");
    ins.Bind(1, next.value()).Bind(2, serial).Bind(3, address).Bind(4, action_name).BindBlob(5, blob.value());
    ins.Bind(6, NowMs());
    if (ins.Step() != kDone) return SqlError(db_.get(), "cannot record the intent for '" + address + "'");
    id = next.value();
    return Ok{};
  };
  if (Status s = GroupCommit(body); !s.ok()) return s.error();
  return id;
}

Status StateStore::CompleteIntent(int64_t intent_id, const IntentOutcome& outcome) {
  std::function<Status()> body = [&]() -> Status { return CompleteIntentInBatch(intent_id, outcome); };
  return GroupCommit(body);
}

Status StateStore::CompleteIntentInBatch(int64_t intent_id, const IntentOutcome& outcome) {
  Stmt q(db_.get(), "SELECT serial, address, action, status FROM intents WHERE id = ?");
  q.Bind(1, intent_id);
  int rc = q.Step();
  if (rc == kDone) return MakeError(ErrorCode::kNotFound, "no intent " + std::to_string(intent_id));
  if (rc != kRow) return SqlError(db_.get(), "cannot read intent " + std::to_string(intent_id));
  int64_t serial = q.Int(0);
  std::string address = q.Text(1);
  Action action;
  if (!ParseAction(q.Text(2), &action)) {
    return MakeError(ErrorCode::kCorrupt, "intent " + std::to_string(intent_id) + " has a damaged action");
  }
  if (q.Text(3) != IntentStatusName(IntentStatus::kOpen)) {
    return MakeError(ErrorCode::kConflict,
                     "intent " + std::to_string(intent_id) + " is already " + q.Text(3));
  }
  if (outcome.resource && outcome.resource->address != address) {
    return MakeError(ErrorCode::kInvalidArgument, "the outcome of intent " + std::to_string(intent_id) +
                                                      " is for '" + outcome.resource->address +
                                                      "', the intent for '" + address + "'");
  }
  if (outcome.success && action != Action::kDelete && !outcome.resource) {
    return MakeError(ErrorCode::kInvalidArgument, "a successful " + std::string(ActionName(action)) +
                                                      " of '" + address + "' must report the resource");
  }
  Result<std::optional<ResourceRecord>> before = LoadResource(address);
  if (!before.ok()) return before.error();
  if (outcome.resource) {
    ResourceRecord after = *outcome.resource;
    after.serial_created = before.value() ? before.value()->serial_created : serial;
    after.serial_updated = serial;
    if (Status s = UpsertResource(after); !s.ok()) return s;
    Action recorded = before.value() ? Action::kUpdate : Action::kCreate;
    if (Status s = AppendHistory(serial, address, recorded, before.value(), after); !s.ok()) return s;
  } else if (outcome.success && action == Action::kDelete && before.value()) {
    Stmt d(db_.get(), "DELETE FROM resources WHERE address = ?");
    d.Bind(1, address);
    if (d.Step() != kDone) return SqlError(db_.get(), "cannot delete '" + address + "' from state");
    if (Status s = AppendHistory(serial, address, Action::kDelete, before.value(), std::nullopt); !s.ok()) {
      return s;
    }
  }
  Stmt u(db_.get(), "UPDATE intents SET status = ?, result = ? WHERE id = ?");
  u.Bind(1, std::string(IntentStatusName(outcome.success ? IntentStatus::kDone : IntentStatus::kFailed)));
  u.Bind(2, outcome.success ? std::string() : outcome.error).Bind(3, intent_id);
  if (u.Step() != kDone) return SqlError(db_.get(), "cannot complete intent " + std::to_string(intent_id));
  return Ok{};
}

Status StateStore::AbandonIntent(int64_t intent_id, const std::string& reason) {
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s;
  Stmt u(db_.get(), "UPDATE intents SET status = 'failed', result = ? WHERE id = ? AND status = 'open'");
  u.Bind(1, reason).Bind(2, intent_id);
  if (u.Step() != kDone) return SqlError(db_.get(), "cannot abandon intent " + std::to_string(intent_id));
  if (db_->Changes() == 0) {
    return MakeError(ErrorCode::kConflict, "intent " + std::to_string(intent_id) + " is not open");
  }
  return txn.Commit();
}

Result<std::vector<IntentRecord>> StateStore::OpenIntents() {
  std::lock_guard<std::mutex> guard(mu_);
  Stmt q(db_.get(),
         "SELECT id, serial, address, action, planned, started_ms FROM intents WHERE status = 'open' "
         "ORDER BY id");
  std::vector<IntentRecord> out;
  int rc;
  while ((rc = q.Step()) == kRow) {
    IntentRecord r;
    r.id = q.Int(0);
    r.serial = q.Int(1);
    r.address = q.Text(2);
    const std::string action_name = q.Text(3);
    if (!ParseAction(action_name, &r.action)) {
      return MakeError(ErrorCode::kCorrupt, "intent " + std::to_string(r.id) + " has a damaged action");
    }
    Result<ResourceRecord> planned =
        DecodeRecord(r.address, IntentAad(r.id, r.serial, r.address, action_name), q.Blob(4));
    if (!planned.ok()) return planned.error();
    r.planned = std::move(planned.value());
    r.started_ms = q.Int(5);
    out.push_back(std::move(r));
  }
  if (rc != kDone) return SqlError(db_.get(), "cannot read open intents");
  return out;
}

// ------------------------------------------------------------------ reading

Result<std::vector<ResourceRecord>> StateStore::Resources() {
  std::lock_guard<std::mutex> guard(mu_);
  // One scan in address order (the primary key), then decoding (JSON, and
  // decryption when the state is encrypted) spread over the cores.
  std::vector<Row> rows;
  {
    Stmt q(db_.get(), (std::string(kResourceColumns) + " ORDER BY address").c_str());
    int rc;
    while ((rc = q.Step()) == kRow) rows.push_back(ReadRow<Row>(q));
    if (rc != kDone) return SqlError(db_.get(), "cannot list resources");
  }
  std::vector<std::optional<ResourceRecord>> decoded(rows.size());
  std::vector<std::optional<Error>> errors(rows.size());
  runtime::ParallelFor(rows.size(), runtime::ThreadsFor(rows.size(), 4096), [&](size_t i) {
    Result<ResourceRecord> r = DecodeRow(std::move(rows[i]));
    if (r.ok()) {
      decoded[i] = std::move(r.value());
    } else {
      errors[i] = r.error();
    }
  });
  std::vector<ResourceRecord> out;
  out.reserve(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (errors[i]) return *errors[i];
    out.push_back(std::move(*decoded[i]));
  }
  return out;
}

Result<std::optional<ResourceRecord>> StateStore::Resource(const std::string& address) {
  std::lock_guard<std::mutex> guard(mu_);
  return LoadResource(address);
}

Result<std::vector<ResourceRecord>> StateStore::ResourcesAt(int64_t serial) {
  std::lock_guard<std::mutex> guard(mu_);
  Stmt max(db_.get(), "SELECT COALESCE(MAX(serial), 0) FROM serials");
  if (max.Step() != kRow) return SqlError(db_.get(), "cannot read the current serial");
  if (serial < 0 || serial > max.Int(0)) {
    return MakeError(ErrorCode::kNotFound, "no serial " + std::to_string(serial) + " (the state is at serial " +
                                               std::to_string(max.Int(0)) + ")");
  }
  // Replay: only the last change of each address matters, so decode only that.
  struct After {
    std::string aad, blob;
  };
  std::map<std::string, std::optional<After>> last;
  Stmt q(db_.get(), "SELECT address, after, seq, serial, action, at_ms FROM history WHERE serial <= ? ORDER BY seq");
  q.Bind(1, serial);
  int rc;
  while ((rc = q.Step()) == kRow) {
    if (q.IsNull(1)) {
      last[q.Text(0)] = std::nullopt;
    } else {
      last[q.Text(0)] = After{HistoryAad(q.Int(2), q.Int(3), q.Text(0), q.Text(4), q.Int(5), "after"), q.Blob(1)};
    }
  }
  if (rc != kDone) return SqlError(db_.get(), "cannot read history");
  std::vector<ResourceRecord> out;
  for (const auto& [address, after] : last) {
    if (!after) continue;
    Result<ResourceRecord> r = DecodeRecord(address, after->aad, after->blob);
    if (!r.ok()) return r.error();
    out.push_back(std::move(r.value()));
  }
  return out;
}

Result<std::vector<HistoryEntry>> StateStore::History(const std::string& address) {
  std::lock_guard<std::mutex> guard(mu_);
  Stmt q(db_.get(), address.empty() ? "SELECT seq, serial, address, action, before, after, at_ms FROM history "
                                "ORDER BY seq"
                              : "SELECT seq, serial, address, action, before, after, at_ms FROM history "
                                "WHERE address = ? ORDER BY seq");
  if (!address.empty()) q.Bind(1, address);
  std::vector<HistoryEntry> out;
  int rc;
  while ((rc = q.Step()) == kRow) {
    HistoryEntry e;
    e.seq = q.Int(0);
    e.serial = q.Int(1);
    e.address = q.Text(2);
    const std::string action_name = q.Text(3);
    if (!ParseAction(action_name, &e.action)) {
      return MakeError(ErrorCode::kCorrupt, "history entry " + std::to_string(e.seq) + " has a damaged action");
    }
    e.at_ms = q.Int(6);
    if (!q.IsNull(4)) {
      Result<ResourceRecord> b = DecodeRecord(
          e.address, HistoryAad(e.seq, e.serial, e.address, action_name, e.at_ms, "before"), q.Blob(4));
      if (!b.ok()) return b.error();
      e.before = std::move(b.value());
    }
    if (!q.IsNull(5)) {
      Result<ResourceRecord> a = DecodeRecord(
          e.address, HistoryAad(e.seq, e.serial, e.address, action_name, e.at_ms, "after"), q.Blob(5));
      if (!a.ok()) return a.error();
      e.after = std::move(a.value());
    }
    out.push_back(std::move(e));
  }
  if (rc != kDone) return SqlError(db_.get(), "cannot read history");
  return out;
}

// ------------------------------------------------------------------ surgery

Result<int64_t> StateStore::StateRm(const std::string& address) {
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s.error();
  Result<std::optional<ResourceRecord>> before = LoadResource(address);
  if (!before.ok()) return before.error();
  if (!before.value()) return MakeError(ErrorCode::kNotFound, "no resource '" + address + "' in state");
  Result<int64_t> serial = NewSerial("state rm " + address, "", ApplyStatus::kSucceeded);
  if (!serial.ok()) return serial;
  Stmt d(db_.get(), "DELETE FROM resources WHERE address = ?");
  d.Bind(1, address);
  if (d.Step() != kDone) return SqlError(db_.get(), "cannot delete '" + address + "' from state");
  if (Status s = AppendHistory(serial.value(), address, Action::kDelete, before.value(), std::nullopt); !s.ok()) {
    return s.error();
  }
  if (Status s = txn.Commit(); !s.ok()) return s.error();
  return serial;
}

Result<int64_t> StateStore::StateMv(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> guard(mu_);
  if (to.empty() || from == to) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot move '" + from + "' to '" + to + "'");
  }
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s.error();
  Result<std::optional<ResourceRecord>> before = LoadResource(from);
  if (!before.ok()) return before.error();
  if (!before.value()) return MakeError(ErrorCode::kNotFound, "no resource '" + from + "' in state");
  Result<std::optional<ResourceRecord>> existing = LoadResource(to);
  if (!existing.ok()) return existing.error();
  if (existing.value()) {
    return MakeError(ErrorCode::kConflict, "'" + to + "' already exists in state; remove it first");
  }
  Result<int64_t> serial = NewSerial("state mv " + from + " " + to, "", ApplyStatus::kSucceeded);
  if (!serial.ok()) return serial;
  ResourceRecord after = *before.value();
  after.address = to;
  after.serial_updated = serial.value();
  Stmt d(db_.get(), "DELETE FROM resources WHERE address = ?");
  d.Bind(1, from);
  if (d.Step() != kDone) return SqlError(db_.get(), "cannot delete '" + from + "' from state");
  if (Status s = UpsertResource(after); !s.ok()) return s.error();
  if (Status s = AppendHistory(serial.value(), from, Action::kDelete, before.value(), std::nullopt); !s.ok()) {
    return s.error();
  }
  if (Status s = AppendHistory(serial.value(), to, Action::kCreate, std::nullopt, after); !s.ok()) {
    return s.error();
  }
  if (Status s = txn.Commit(); !s.ok()) return s.error();
  return serial;
}

Status StateStore::RewriteAddresses(int64_t serial, const std::vector<std::pair<std::string, std::string>>& moves,
                                    const std::vector<std::string>& forget,
                                    const std::map<std::string, ValueMap>& identity) {
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s.error();
  auto remove = [&](const std::string& address) -> Result<ResourceRecord> {
    Result<std::optional<ResourceRecord>> before = LoadResource(address);
    if (!before.ok()) return before.error();
    if (!before.value()) return MakeError(ErrorCode::kNotFound, "no resource '" + address + "' in state");
    Stmt d(db_.get(), "DELETE FROM resources WHERE address = ?");
    d.Bind(1, address);
    if (d.Step() != kDone) return SqlError(db_.get(), "cannot delete '" + address + "' from state");
    if (Status s = AppendHistory(serial, address, Action::kDelete, before.value(), std::nullopt); !s.ok()) {
      return s.error();
    }
    return *before.value();
  };
  for (const std::string& address : forget) {
    if (auto r = remove(address); !r.ok()) return r.error();
  }
  // Every old row goes first, so that a chain of renames never meets itself.
  std::vector<ResourceRecord> moved;
  for (const auto& [from, to] : moves) {
    Result<ResourceRecord> r = remove(from);
    if (!r.ok()) return r.error();
    moved.push_back(std::move(r.value()));
    moved.back().address = to;
    moved.back().serial_updated = serial;
    if (auto it = identity.find(to); it != identity.end()) {
      for (const auto& [k, v] : it->second) moved.back().attributes[k] = v;
    }
  }
  for (const ResourceRecord& after : moved) {
    Result<std::optional<ResourceRecord>> existing = LoadResource(after.address);
    if (!existing.ok()) return existing.error();
    if (existing.value()) {
      return MakeError(ErrorCode::kConflict, "'" + after.address + "' already exists in state; nothing was moved");
    }
    if (Status s = UpsertResource(after); !s.ok()) return s.error();
    if (Status s = AppendHistory(serial, after.address, Action::kCreate, std::nullopt, after); !s.ok()) {
      return s.error();
    }
  }
  if (Status s = txn.Commit(); !s.ok()) return s.error();
  return Ok{};
}

// ------------------------------------------------------------------ export

Result<nlohmann::json> StateStore::ExportJson() {
  Result<std::vector<ResourceRecord>> resources = Resources();
  if (!resources.ok()) return resources.error();
  Result<int64_t> serial = CurrentSerial();
  if (!serial.ok()) return serial.error();
  Result<std::vector<IntentRecord>> intents = OpenIntents();
  if (!intents.ok()) return intents.error();
  json out = {{"format_version", kExportFormatVersion},
              {"workspace", workspace_},
              {"serial", serial.value()},
              {"resources", json::array()},
              {"open_intents", json::array()}};
  for (const ResourceRecord& r : resources.value()) {
    std::string error;
    json j = RecordToJson(r, &error);
    if (!error.empty()) return MakeError(ErrorCode::kInternal, error);
    j["address"] = r.address;
    out["resources"].push_back(std::move(j));
  }
  for (const IntentRecord& i : intents.value()) {
    out["open_intents"].push_back(
        {{"id", i.id}, {"serial", i.serial}, {"address", i.address}, {"action", ActionName(i.action)},
         {"started_ms", i.started_ms}});
  }
  return out;
}

// ------------------------------------------------------------------ between backends

namespace {

// The tables as stored, each in key order; blobs as they are.
struct TableCopy {
  const char* name;
  const char* columns;  // in order
  const char* order;
  int count;
  const char* blobs;  // a mask: 'b' where the column is a blob, '-' otherwise
  const char* ints;   // 'i' where the column is an integer
};
constexpr TableCopy kTables[] = {
    {"serials", "serial, started_ms, finished_ms, status, command, config_digest, source", "serial", 7, "-------",
     "iii----"},
    {"resources", "address, type, provider, id, attributes, dependencies, serial_created, serial_updated",
     "address", 8, "----b---", "------ii"},
    {"history", "seq, serial, address, action, before, after, at_ms", "seq", 7, "----bb-", "ii----i"},
    {"intents", "id, serial, address, action, planned, started_ms, status, result", "id", 8, "----b---",
     "ii---i--"},
};

}  // namespace

Result<StateStore::Summary> StateStore::Summarize() {
  std::lock_guard<std::mutex> guard(mu_);
  Summary out;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (const TableCopy& table : kTables) {
    Stmt q(db_.get(), std::string("SELECT ") + table.columns + " FROM " + table.name + " ORDER BY " + table.order);
    int64_t n = 0;
    int rc;
    while ((rc = q.Step()) == kRow) {
      AadBuilder row(table.name);
      for (int c = 0; c < table.count; ++c) {
        if (table.blobs[c] == 'b') {
          row.Add(q.IsNull(c) ? std::string("null") : "blob:" + q.Blob(c));
        } else if (table.ints[c] == 'i') {
          row.Add(q.Int(c));
        } else {
          row.Add(q.Text(c));
        }
      }
      const std::string bytes = row.str();
      EVP_DigestUpdate(ctx, bytes.data(), bytes.size());
      ++n;
    }
    if (rc != kDone) {
      EVP_MD_CTX_free(ctx);
      return SqlError(db_.get(), std::string("cannot read ") + table.name);
    }
    (table.name == std::string("serials")     ? out.serials
     : table.name == std::string("resources") ? out.resources
     : table.name == std::string("history")   ? out.history
                                              : out.intents) = n;
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  out.digest = Hex(md, len);
  return out;
}

Status StateStore::CopyInto(StateStore& dest) {
  if (&dest == this) return MakeError(ErrorCode::kInvalidArgument, "cannot copy a state into itself");
  if (key_.has_value() != dest.key_.has_value() || (key_ && *key_ != *dest.key_) ||
      (key_ && key_version_ != dest.key_version_)) {
    return MakeError(ErrorCode::kWrongKey, "the destination must use the source's encryption key and version");
  }
  std::scoped_lock guard(mu_, dest.mu_);
  Transaction txn(dest.db_.get(), &dest.fence_);
  if (Status s = txn.Begin(); !s.ok()) return s;
  {
    Stmt any(dest.db_.get(), "SELECT (SELECT COUNT(*) FROM serials) + (SELECT COUNT(*) FROM resources)");
    if (any.Step() != kRow) return SqlError(dest.db_.get(), "cannot read the destination");
    if (any.Int(0) != 0) {
      return MakeError(ErrorCode::kConflict, "the destination " + dest.path_ +
                                                 " already holds a state; nothing was copied (move it away "
                                                 "first, or choose another workspace or schema prefix)");
    }
  }
  for (const TableCopy& table : kTables) {
    std::string marks;
    for (int c = 0; c < table.count; ++c) marks += c ? ", ?" : "?";
    Stmt q(db_.get(), std::string("SELECT ") + table.columns + " FROM " + table.name + " ORDER BY " + table.order);
    int rc;
    while ((rc = q.Step()) == kRow) {
      Stmt ins(dest.db_.get(),
               std::string("INSERT INTO ") + table.name + "(" + table.columns + ") VALUES (" + marks + ")");
      for (int c = 0; c < table.count; ++c) {
        if (table.blobs[c] == 'b') {
          ins.BindBlob(c + 1, q.IsNull(c) ? std::optional<std::string>() : std::optional<std::string>(q.Blob(c)));
        } else if (table.ints[c] == 'i') {
          ins.Bind(c + 1, q.Int(c));
        } else {
          ins.Bind(c + 1, q.Text(c));
        }
      }
      if (ins.Step() != kDone) return SqlError(dest.db_.get(), std::string("cannot copy a row of ") + table.name);
    }
    if (rc != kDone) return SqlError(db_.get(), std::string("cannot read ") + table.name);
  }
  return txn.Commit();
}

Status StateStore::DropSchema() {
  if (!postgres()) return MakeError(ErrorCode::kInvalidArgument, "only a PostgreSQL state has a schema to drop");
  StopLeaseRenewal();
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s;
  if (Status s = Exec(db_.get(), "DROP SCHEMA " + QuoteIdentifier(schema_) + " CASCADE",
                      "cannot drop the workspace's schema " + schema_);
      !s.ok()) {
    return s;
  }
  fence_.clear();
  return txn.Commit();
}

Status StateStore::MarkMigrated(const std::string& where) {
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s;
  Stmt q(db_.get(), "INSERT INTO meta(key, value) VALUES ('migrated_to', ?)");
  if (q.Bind(1, where).Step() != kDone) return SqlError(db_.get(), "cannot mark the state as moved");
  return txn.Commit();
}

// ------------------------------------------------------------------ migration

Status StateStore::Migrate() {
  std::lock_guard<std::mutex> guard(mu_);
  Transaction txn(db_.get(), &fence_);
  if (Status s = txn.Begin(); !s.ok()) return s;
  const std::string failed = "cannot migrate state file '" + path_ + "' to schema version " +
                             std::to_string(kSchemaVersion);
  int from = 0;
  auto finish = [&]() -> Status {
    const std::string version = std::to_string(kSchemaVersion);
    Stmt m(db_.get(), "UPDATE meta SET value = ? WHERE key = 'schema_version'");
    if (m.Bind(1, version).Step() != kDone) return SqlError(db_.get(), failed);
    if (Status s = Exec(db_.get(), ("PRAGMA user_version=" + version).c_str(), failed); !s.ok()) return s;
    return txn.Commit();
  };
  {
    // Another process may have migrated it since this one checked.
    Stmt v(db_.get(), "SELECT value FROM meta WHERE key = 'schema_version'");
    if (v.Step() != kRow) return SqlError(db_.get(), failed);
    from = v.Text(0) == "1" ? 1 : v.Text(0) == "2" ? 2 : kSchemaVersion;
  }
  if (from >= kSchemaVersion) return Ok{};
  // Version 2 to 3: where each serial's configuration came from (a git commit).
  if (Status s = Exec(db_.get(), "ALTER TABLE serials ADD COLUMN source TEXT NOT NULL DEFAULT '';", failed); !s.ok())
    return s;
  if (from == 2) return finish();
  // Version 1 to 2: the lock names its holder's machine and PID namespace,
  // and blobs are bound to their whole rows.
  if (Status s = Exec(db_.get(),
                      "ALTER TABLE lock ADD COLUMN machine_id TEXT NOT NULL DEFAULT ''; "
                      "ALTER TABLE lock ADD COLUMN pid_namespace TEXT NOT NULL DEFAULT '';",
                      failed);
      !s.ok()) {
    return s;
  }
  if (key_) {
    // Version 1 bound each blob to its address only; re-seal every blob bound
    // to its whole row. A blob that does not open with the old binding stops
    // the migration, and the file stays as it was.
    auto reseal = [&](const std::string& address, const std::string& blob,
                      const std::string& aad) -> Result<std::string> {
      std::string plain, error;
      uint32_t version = 0;
      if (!crypto::OpenBlob(*key_, AadV1(address), blob, &plain, &version, &error, /*accept_format1=*/true) ||
          version != key_version_) {
        return MakeError(ErrorCode::kCorrupt,
                         failed + ": a record of '" + address +
                             "' fails authentication (the state was damaged or tampered with); restore the file "
                             "from a backup; the file was left unchanged");
      }
      Result<std::string> sealed = Seal(aad, plain);
      OPENSSL_cleanse(plain.data(), plain.size());
      return sealed;
    };
    std::vector<std::pair<std::string, std::string>> resources;  // address, attributes
    {
      Stmt q(db_.get(), kResourceColumns);
      int rc;
      while ((rc = q.Step()) == kRow) {
        Row row = ReadRow<Row>(q);
        Result<std::string> sealed =
            reseal(row.address, row.attributes,
                   ResourceAad(row.address, row.type, row.provider, row.id, row.dependencies, row.serial_created,
                               row.serial_updated));
        if (!sealed.ok()) return sealed.error();
        resources.emplace_back(row.address, std::move(sealed.value()));
      }
      if (rc != kDone) return SqlError(db_.get(), failed);
    }
    struct HistoryBlobs {
      int64_t seq;
      std::optional<std::string> before, after;
    };
    std::vector<HistoryBlobs> history;
    {
      Stmt q(db_.get(), "SELECT seq, serial, address, action, before, after, at_ms FROM history");
      int rc;
      while ((rc = q.Step()) == kRow) {
        HistoryBlobs h{q.Int(0), std::nullopt, std::nullopt};
        for (int col : {4, 5}) {
          if (q.IsNull(col)) continue;
          const char* which = col == 4 ? "before" : "after";
          Result<std::string> sealed =
              reseal(q.Text(2), q.Blob(col), HistoryAad(q.Int(0), q.Int(1), q.Text(2), q.Text(3), q.Int(6), which));
          if (!sealed.ok()) return sealed.error();
          (col == 4 ? h.before : h.after) = std::move(sealed.value());
        }
        history.push_back(std::move(h));
      }
      if (rc != kDone) return SqlError(db_.get(), failed);
    }
    std::vector<std::pair<int64_t, std::string>> intents;  // id, planned
    {
      Stmt q(db_.get(), "SELECT id, serial, address, action, planned FROM intents");
      int rc;
      while ((rc = q.Step()) == kRow) {
        Result<std::string> sealed =
            reseal(q.Text(2), q.Blob(4), IntentAad(q.Int(0), q.Int(1), q.Text(2), q.Text(3)));
        if (!sealed.ok()) return sealed.error();
        intents.emplace_back(q.Int(0), std::move(sealed.value()));
      }
      if (rc != kDone) return SqlError(db_.get(), failed);
    }
    // Written after all reads: no statement updates a table it is scanning.
    for (const auto& [address, blob] : resources) {
      Stmt w(db_.get(), "UPDATE resources SET attributes = ? WHERE address = ?");
      if (w.BindBlob(1, blob).Bind(2, address).Step() != kDone) return SqlError(db_.get(), failed);
    }
    for (const HistoryBlobs& h : history) {
      Stmt w(db_.get(), "UPDATE history SET before = ?, after = ? WHERE seq = ?");
      if (w.BindBlob(1, h.before).BindBlob(2, h.after).Bind(3, h.seq).Step() != kDone) {
        return SqlError(db_.get(), failed);
      }
    }
    for (const auto& [id, blob] : intents) {
      Stmt w(db_.get(), "UPDATE intents SET planned = ? WHERE id = ?");
      if (w.BindBlob(1, blob).Bind(2, id).Step() != kDone) return SqlError(db_.get(), failed);
    }
  }
  return finish();
}

}  // namespace plinth::state
