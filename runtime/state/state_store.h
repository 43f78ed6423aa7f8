// The state store: what Plinth believes exists in the world, per workspace.
//
// One SQLite database per workspace at <dir>/.plinth/<workspace>/state.db, or
// one PostgreSQL schema per workspace (StoreOptions::backend): the same logic
// over the SQL connection of runtime/state/sql.h. The on-disk format, the
// durability argument, the backends and the export format are in
// docs/state.md; this header states the contracts (PostgreSQL: durability by
// synchronous_commit=on instead of synchronous=FULL; the rest holds as
// written).
//
// Durability: the database runs in WAL mode with synchronous=FULL, so every
// committed transaction has its WAL frames fsync'ed before the commit returns.
// NORMAL would survive kill -9 too (the WAL is in the page cache, which the
// kernel keeps) but can lose the last commits on power loss; since each commit
// here records a real-world side effect (a created bucket, a deleted region),
// losing one would orphan a resource, so FULL is worth one fsync per commit.
// Nothing ever rewrites the whole state: every operation is one small
// transaction (one row per resource change plus one history row).
//
// Crash protocol for apply (docs/state.md, "Intent journal"):
//   serial = BeginApply(...)
//   for each change:  id = RecordIntent(serial, ...)    // durable before it returns
//                     ... call the provider ...
//                     CompleteIntent(id, outcome)       // one transaction: intent done +
//                                                       // resource row + history row
//   FinishApply(serial, status)
// A kill -9 at any instant leaves either no intent (nothing was called), an
// open intent (the provider may or may not have acted: OpenIntents() lists it
// for the planner to reconcile by reading the provider) or a completed intent
// together with its resource row — never a resource change without its record.
//
// Opening never damages a file: an existing file is checked read-only first
// (header, quick_check, schema version, encryption key) and any problem is a
// clear error with the file left byte-for-byte untouched. A new database is
// built under a temporary name and linked into place, so state.db, once it
// exists, always holds a complete schema. The one write opening may make is
// migrating a schema-version-1 file, in one transaction, after those checks.
//
// Encryption (optional): AES-256-GCM over every serialized attribute blob
// (resource attributes, history before/after, intent planned state), a random
// 12-byte nonce per write (crypto blob format 2). Each blob's associated data
// is its row's identity: for a resource the address, type, provider, id,
// dependencies and both serials; for history the seq, serial, address,
// action, time and side; for an intent its id, serial, address and action.
// So a blob moved to another row, an older blob put back into its row, or a
// changed identity column fails with kCorrupt naming the address. Consistent
// rollback of whole rows or of the file is not detected (docs/state.md,
// "Threat model"). The meta table stores a key id (a hash of the key, never
// the key) and a key version, so a wrong key is reported as such before any
// record is read.
//
// Thread safety: a StateStore may be shared between threads; calls are
// serialized by an internal mutex. Several processes may open the same
// database (SQLite locking, 5 s busy timeout); callers that change state must
// hold the workspace lock (runtime/state/lock.h) — the store does not check it.
#pragma once

#include <array>
#include <condition_variable>
#include <deque>
#include <functional>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/types/types.h"

namespace plinth::state {

class SqlConnection;  // runtime/state/sql.h

// ------------------------------------------------------------------ errors

enum class ErrorCode : uint8_t {
  kIo,               // the file system refused (permissions, disk full)
  kCorrupt,          // not a Plinth state database, damaged, or a record fails to decode
  kSchemaTooNew,     // written by a newer Plinth
  kKeyRequired,      // the state is encrypted and no key was given
  kWrongKey,         // the key does not match the one the state was written with
  kNotEncrypted,     // a key was given but the state is not encrypted
  kNotFound,         // no such resource / serial / intent
  kInvalidArgument,  // a malformed workspace name, a value with no JSON form, ...
  kConflict,         // the operation contradicts the state (intent already completed, address taken)
  kLockHeld,         // the workspace lock is held by a live process (see Error::holder)
  kInternal,         // SQLite reported an unexpected error
};
const char* ErrorCodeName(ErrorCode code);

// Who holds (or held) the workspace lock. The host name is for people; the
// machine id, PID namespace and boot id decide whether the holder can be
// checked from here (runtime/state/lock.h). Empty means unknown.
struct LockHolder {
  int64_t pid = 0;
  std::string host;
  std::string command;  // "apply", "plan", "state rm a.b"
  int64_t since_ms = 0;  // Unix time in milliseconds
  std::string machine_id;     // keyed hash of /etc/machine-id (or /var/lib/dbus/machine-id)
  std::string pid_namespace;  // readlink /proc/self/ns/pid, "pid:[4026531836]"
  std::string boot_id;        // /proc/sys/kernel/random/boot_id
};
struct LockInfo {
  std::string id;  // 32 hex digits; what force-unlock takes
  LockHolder holder;
};

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // lowercase, says what is wrong and what to do
  std::optional<LockInfo> holder;  // set for kLockHeld
};

// A value or an Error. Check ok() before value(); value() on an error aborts.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  // By value, so `for (auto& r : store.Resources().value())` does not dangle.
  T value() && { return std::get<0>(std::move(v_)); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};
struct Ok {};
using Status = Result<Ok>;

// ------------------------------------------------------------------ records

enum class Action : uint8_t { kCreate, kUpdate, kDelete };
const char* ActionName(Action action);  // "create", "update", "delete"

enum class ApplyStatus : uint8_t { kRunning, kSucceeded, kFailed };
const char* ApplyStatusName(ApplyStatus status);  // "running", "succeeded", "failed"

enum class IntentStatus : uint8_t { kOpen, kDone, kFailed };
const char* IntentStatusName(IntentStatus status);  // "open", "done", "failed"

struct ResourceRecord {
  std::string address;  // module.net["eu"].bucket.datasets[0]
  std::string type;
  std::string provider;
  std::string id;  // the provider's id for the object
  ValueMap attributes;
  std::vector<std::string> dependencies;  // addresses
  int64_t serial_created = 0;  // set by the store
  int64_t serial_updated = 0;  // set by the store
};

struct SerialRecord {
  int64_t serial = 0;
  int64_t started_ms = 0;
  int64_t finished_ms = 0;  // 0 while running (or when the process died)
  ApplyStatus status = ApplyStatus::kRunning;
  std::string command;
  std::string config_digest;
  // Where the configuration came from, as a JSON object, or empty (a local
  // directory): for --git the repository, ref, path and commit (id, author,
  // email, time_s, summary); docs/gitops.md. Stored in plain text beside the
  // command, also in an encrypted state.
  std::string source;
};

struct HistoryEntry {
  int64_t seq = 0;  // total order of all changes
  int64_t serial = 0;
  std::string address;
  Action action = Action::kCreate;
  std::optional<ResourceRecord> before;  // absent for create
  std::optional<ResourceRecord> after;   // absent for delete
  int64_t at_ms = 0;
};

struct IntentRecord {
  int64_t id = 0;
  int64_t serial = 0;
  std::string address;
  Action action = Action::kCreate;
  ResourceRecord planned;  // may contain unknowns
  int64_t started_ms = 0;
  IntentStatus status = IntentStatus::kOpen;
  std::string result;  // "" while open; the error message when failed
};

// What happened when the provider was called for an intent.
struct IntentOutcome {
  bool success = true;
  std::string error;  // when !success
  // The resource as it now exists: upserted (history: create or update). For a
  // successful delete leave it empty: the row is deleted (history: delete). A
  // failed create that still left an object behind should set it too.
  std::optional<ResourceRecord> resource;
};

// Whether opening may create the state. Only commands that change the world
// (apply) or create a workspace on purpose pass kCreate; everything that
// reads passes kExisting, so a mistyped directory or workspace name is an
// error instead of a new, empty state.
enum class OpenMode : uint8_t { kExisting, kCreate };

// PLINTH_BACKEND: empty (SQLite files), or a PostgreSQL URL.
std::string EnvBackend();

struct StoreOptions {
  std::optional<std::array<uint8_t, 32>> encryption_key;  // AES-256-GCM when set
  uint32_t key_version = 1;  // recorded for new databases (rotation bookkeeping)
  std::string workspace = "default";  // recorded in meta when the database is created
  OpenMode mode = OpenMode::kCreate;
  bool verify_on_open = true;  // PRAGMA quick_check before the first write
  // Where the state lives (docs/state.md, "Backends"): empty for the SQLite
  // file under <dir>/.plinth/<workspace>/, or a PostgreSQL URL
  // (postgres://user@host:5432/db?sslmode=verify-full; the password from
  // PGPASSWORD or ~/.pgpass). With PostgreSQL the workspace is the schema
  // PREFIX_<workspace> (PREFIX from the URL's `schema=` parameter, default
  // plinth) and the workspace lock is a lease of `lease_ms`, renewed by its
  // holder (runtime/state/lock.h). Defaults to PLINTH_BACKEND (which the
  // CLI's --backend sets).
  std::string backend = EnvBackend();
  int64_t lease_ms = 60000;
};

// The schema version this build reads and writes.
// Older files are migrated on open (docs/state.md, "Schema versions"): 1 → 2
// binds blobs to their rows, 2 → 3 adds serials.source.
inline constexpr int kSchemaVersion = 3;
// format_version of ExportJson().
inline constexpr int kExportFormatVersion = 1;

class StateStore {
 public:
  // <dir>/.plinth/<workspace>/state.db; the workspace name must match
  // [A-Za-z0-9_.-]+ and not start with ".".
  static Result<std::string> WorkspacePath(const std::string& dir, const std::string& workspace);
  // The workspaces of `dir` that have a state.db, sorted; with PLINTH_BACKEND
  // set, the workspaces in that PostgreSQL database instead.
  static std::vector<std::string> Workspaces(const std::string& dir);
  // Opens <dir>/.plinth/<workspace>/state.db. kCreate creates the
  // directories (mode 0700) and the database (0600) as needed; kExisting
  // creates nothing and fails with kNotFound, naming the workspaces that do
  // exist, when there is no state. Either way, an existing state whose
  // directories or files are open to group or others is tightened to
  // 0700/0600 when this user owns it (never through a symbolic link).
  static Result<std::unique_ptr<StateStore>> OpenWorkspace(const std::string& dir,
                                                           const std::string& workspace,
                                                           StoreOptions options = {});
  // Opens (or, with OpenMode::kCreate, creates) the database at `path`; a
  // new file is created with mode 0600, and SQLite gives its -wal and -shm
  // files the same mode.
  static Result<std::unique_ptr<StateStore>> Open(const std::string& path, const StoreOptions& options);
  // An empty state in memory: what plan, refresh and destroy work on when a
  // workspace has no state yet, so that they create no file.
  static Result<std::unique_ptr<StateStore>> OpenEmpty(const StoreOptions& options);
  // The PostgreSQL schema that holds `workspace`: PREFIX_<workspace>.
  static std::string PostgresSchema(const std::string& prefix, const std::string& workspace);
  // The workspaces with state in the PostgreSQL database at `backend`, sorted.
  static Result<std::vector<std::string>> PostgresWorkspaces(const std::string& backend);

  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  // The SQLite file, or the PostgreSQL URL (redacted) and schema.
  const std::string& path() const { return path_; }
  // Whether the state is in PostgreSQL (the lock is then a lease).
  bool postgres() const;
  int64_t lease_ms() const { return lease_ms_; }
  const std::string& workspace() const { return workspace_; }
  bool encrypted() const { return key_.has_value(); }
  uint32_t key_version() const { return key_version_; }

  // ---- applies
  // Starts a new serial (CurrentSerial() + 1) with status running.
  // `source`: SerialRecord::source.
  Result<int64_t> BeginApply(const std::string& command, const std::string& config_digest,
                             const std::string& source = "");
  Status FinishApply(int64_t serial, ApplyStatus status);
  // The highest serial ever started; 0 for a new state.
  Result<int64_t> CurrentSerial();
  Result<std::vector<SerialRecord>> Serials();

  // ---- intent journal
  // Durable (fsync'ed) before it returns. The serial must be running.
  Result<int64_t> RecordIntent(int64_t serial, const std::string& address, Action action,
                               const ResourceRecord& planned);
  // One transaction: the intent becomes done/failed, the resource row is
  // upserted or deleted and the history row appended. kConflict when the
  // intent is not open.
  Status CompleteIntent(int64_t intent_id, const IntentOutcome& outcome);
  // Intents a killed process left open, oldest first.
  Result<std::vector<IntentRecord>> OpenIntents();
  // Marks an open intent failed without touching resources (the planner found
  // that the provider did nothing). Also one transaction.
  Status AbandonIntent(int64_t intent_id, const std::string& reason);

  // ---- reading
  Result<std::vector<ResourceRecord>> Resources();  // sorted by address
  Result<std::optional<ResourceRecord>> Resource(const std::string& address);
  // The resources as they were when `serial` ended, replayed from history.
  Result<std::vector<ResourceRecord>> ResourcesAt(int64_t serial);
  // All history (address empty) or one address's, in order.
  Result<std::vector<HistoryEntry>> History(const std::string& address = "");

  // ---- state surgery; each is its own serial with history rows
  Result<int64_t> StateRm(const std::string& address);
  Result<int64_t> StateMv(const std::string& from, const std::string& to);
  // What apply's `moved` and `removed` blocks do, before any provider call:
  // in one transaction of the running `serial`, each `moves` record is
  // renamed (history: a delete of the old address and a create of the new)
  // and each `forget` record deleted (history: a delete). All or nothing: a
  // missing record or a taken new address (kNotFound, kConflict) changes
  // nothing, so a kill at any instant leaves every object on record once.
  // `identity[to]`, when given, holds attributes that follow the address
  // (the checker's `name` and `address`), set on the renamed record.
  Status RewriteAddresses(int64_t serial, const std::vector<std::pair<std::string, std::string>>& moves,
                          const std::vector<std::string>& forget,
                          const std::map<std::string, ValueMap>& identity = {});

  // ---- moving between backends (`plinth state migrate`, docs/state.md)
  // Row counts and a SHA-256 over every row of serials, resources, history
  // and intents as stored (sealed blobs as they are), in key order: equal
  // digests mean the same state, whatever the backend.
  struct Summary {
    int64_t serials = 0, resources = 0, history = 0, intents = 0;
    std::string digest;  // 64 hex digits
  };
  Result<Summary> Summarize();
  // Copies every row, as stored, into `dest` in one transaction: the same
  // serials, sequence numbers and intent ids, so sealed blobs open there
  // (their associated data does not name the backend). `dest` must be new
  // (no serial) and use the same key (kConflict, kWrongKey otherwise).
  Status CopyInto(StateStore& dest);
  // Records in this state that it was moved to `where` (a redacted URL or a
  // path): opening it afterwards fails with kConflict saying where it went,
  // so nobody applies to the old copy.
  Status MarkMigrated(const std::string& where);

  // `workspace delete` with PostgreSQL: drops the workspace's schema and
  // every table in it (state, history, journal, lock, the controller's
  // lease) in one transaction. kInvalidArgument for a SQLite state (its
  // directory is removed instead). The caller holds the workspace lock.
  Status DropSchema();

  // `state pull`: {"format_version": 1, ...} (docs/state.md, "Export format").
  // Decrypted; sensitive values are kept, tagged {"$sensitive": ...}.
  Result<nlohmann::json> ExportJson();

 private:
  friend class WorkspaceLock;
  StateStore() = default;
  static Result<std::unique_ptr<StateStore>> OpenPostgresWorkspace(const StoreOptions& options);

  // Serialized, possibly encrypted blobs. `aad` binds a blob to its row
  // (ResourceAad, HistoryAad, IntentAad in state_store.cpp); `address` only
  // names the record in errors.
  Result<std::string> Seal(const std::string& aad, const std::string& plaintext);
  Result<std::string> Unseal(const std::string& address, const std::string& aad, const std::string& blob);
  Result<std::string> RecordJson(const ResourceRecord& r);
  Result<ResourceRecord> DecodeRecord(const std::string& address, const std::string& aad, const std::string& blob);
  Result<std::string> AttributesJson(const std::string& address, const ValueMap& attributes);
  Result<ValueMap> DecodeAttributes(const std::string& address, const std::string& aad, const std::string& blob);
  // Brings an older file to this schema version in one transaction
  // (docs/state.md, "Schema versions and migration").
  Status Migrate();
  Result<std::optional<ResourceRecord>> LoadResource(const std::string& address);
  // A `resources` row as stored, before decoding.
  struct Row {
    std::string address, type, provider, id, attributes, dependencies;
    int64_t serial_created = 0, serial_updated = 0;
  };
  Result<ResourceRecord> DecodeRow(Row&& row);
  Status AppendHistory(int64_t serial, const std::string& address, Action action,
                       const std::optional<ResourceRecord>& before, const std::optional<ResourceRecord>& after);
  Status UpsertResource(const ResourceRecord& r);
  Result<int64_t> NewSerial(const std::string& command, const std::string& digest, ApplyStatus status,
                            const std::string& source = "");

  std::string path_;
  std::string workspace_;
  std::optional<std::array<uint8_t, 32>> key_;
  uint32_t key_version_ = 0;
  int64_t lease_ms_ = 0;
  std::string backend_, schema_;  // PostgreSQL: the URL and schema, for the lease renewer's own connection
  std::unique_ptr<SqlConnection> db_;
  // The lease of the workspace lock this store holds (PostgreSQL; see
  // WorkspaceLock): renewed every lease_ms/3 by a thread on its own
  // connection, and checked by every write transaction (the fence), so a
  // holder whose lease ran out and was taken over writes nothing more.
  void StartLeaseRenewal(const std::string& lock_id);  // mu_ held
  void StopLeaseRenewal();                             // mu_ not held
  std::string fence_;  // the lock id this store holds; guarded by mu_
  std::thread renewer_;
  std::mutex renew_mu_;
  std::condition_variable renew_cv_;
  bool renew_stop_ = false;
  std::mutex mu_;
  // Group commit of intent writes (see GroupCommit in state_store.cpp).
  struct PendingWrite;
  Status GroupCommit(const std::function<Status()>& body);
  Status CompleteIntentInBatch(int64_t intent_id, const IntentOutcome& outcome);
  std::mutex queue_mu_;
  std::deque<PendingWrite*> queue_;
};

}  // namespace plinth::state
