// Bucket backups on restic (https://restic.net; the Debian package, 0.14 or
// later): a repository handle that runs the `restic` binary for each
// operation and turns its --json output and its failures into plain data.
//
// Input: a repository (a local path, or a restic repository URL such as
// "sftp:host:/path"), its password, and directories to back up or restore
// into. Output: snapshots, retention results, integrity verdicts.
//
// Contracts:
//  * restic runs with an explicit argv through runtime/process (never a
//    shell). The password reaches the child only through its environment
//    (RESTIC_PASSWORD); it never appears in an argv, a log line, an error
//    message or an exception. restic's own output is scrubbed of it before it
//    is quoted, in case a future restic echoes it.
//  * The child's environment is the caller's without any RESTIC_* variable
//    (an inherited RESTIC_REPOSITORY or RESTIC_PASSWORD_FILE could redirect
//    or confuse the child), plus TZ=UTC, so `--time` and printed times mean
//    UTC whatever the machine's zone.
//  * Nothing here deletes data on its own initiative: a damaged repository is
//    reported, never repaired; a failed restore leaves its target exactly as
//    it was (restic writes into a private staging directory next to the
//    target, moved into place only on success); Forget removes only what the
//    keep policy selects; DeleteLocalRepository is called only for a
//    repository without snapshots or on the user's explicit force_destroy.
//  * Every child has a deadline (RepositoryOptions::timeout); one that
//    outlives it gets SIGTERM, then SIGKILL (its whole process group), and
//    the call fails as retryable.
//  * Snapshots record a fixed host name (RepositoryOptions::host) and the
//    source's contents at the root of the snapshot tree, so a restore writes
//    the source's files directly into the target.
//  * A ResticRepository is immutable after Create and safe to share between
//    threads; restic's repository locks serialise conflicting operations (a
//    conflict is a retryable kLocked error).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace plinth::storage {

using TimePoint = std::chrono::system_clock::time_point;

// ------------------------------------------------------------------ errors

enum class BackupErrorCode : uint8_t {
  kResticMissing,    // the restic binary is not on PATH or not executable
  kNoRepository,     // nothing (no restic config) at the repository location
  kWrongPassword,    // the repository exists but the password opens none of its keys
  kCorrupt,          // the repository is damaged (a pack missing, truncated or altered)
  kLocked,           // another restic process holds a conflicting lock (retryable)
  kTimeout,          // restic outlived its deadline and was stopped (retryable)
  kNotFound,         // no such snapshot, or none at or before the asked time
  kInvalidArgument,  // a malformed tag, snapshot id, subset or keep policy
  kIo,               // a local file system operation failed (source, target, staging)
  kFailed,           // restic failed for another reason; the message quotes it
};
const char* BackupErrorCodeName(BackupErrorCode code);

struct BackupError {
  BackupErrorCode code = BackupErrorCode::kFailed;
  std::string message;  // lowercase, no trailing period; what failed and why; never the password
  bool retryable = false;
  std::vector<std::string> details;  // restic's error lines, scrubbed (check's findings, for example)
};

// A value or a BackupError. Check ok() before value().
template <typename T>
class [[nodiscard]] BackupResult {
 public:
  BackupResult(T value) : v_(std::move(value)) {}            // NOLINT: implicit by design
  BackupResult(BackupError error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T value() && { return std::move(std::get<0>(v_)); }
  const BackupError& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, BackupError> v_;
};

struct BackupDone {};  // the value of operations that return nothing

// ------------------------------------------------------------------ time

// Parses an RFC 3339 time as restic prints it: "2026-11-20T10:00:00Z",
// "2026-11-20T10:00:00.123456789Z", "2026-11-20T11:00:00+01:00". Fractions
// beyond the clock's resolution are truncated. nullopt when malformed.
std::optional<TimePoint> ParseRfc3339(std::string_view text);
// UTC, "2026-11-20T10:00:00Z"; with a fraction only when there is one.
std::string FormatRfc3339(TimePoint t);

// ------------------------------------------------------------------ data

struct SnapshotSummary {  // recorded in snapshots by restic 0.17 and later
  uint64_t files_new = 0;
  uint64_t files_changed = 0;
  uint64_t files_unmodified = 0;
  uint64_t data_added = 0;
  uint64_t total_files_processed = 0;
  uint64_t total_bytes_processed = 0;
};

struct Snapshot {
  std::string id;        // 64 hex digits
  std::string short_id;  // the first 8
  TimePoint time;
  std::string hostname;
  std::vector<std::string> paths;  // the absolute source paths recorded by restic
  std::vector<std::string> tags;
  std::optional<SnapshotSummary> summary;
};

// One --json status line of a running backup.
struct BackupProgress {
  double fraction_done = 0;  // 0..1
  uint64_t files_done = 0;
  uint64_t total_files = 0;
  uint64_t bytes_done = 0;
  uint64_t total_bytes = 0;
  double seconds_elapsed = 0;
};

struct BackupOptions {
  std::vector<std::string> tags;  // recorded on the snapshot; no commas, not empty
  // The snapshot's time (restic backup --time, whole seconds, UTC); now when
  // unset. For tests and imports.
  std::optional<TimePoint> time;
  // Called on the calling thread for each status line restic prints.
  std::function<void(const BackupProgress&)> on_progress;
};

struct BackupStats {
  Snapshot snapshot;  // as listed after the backup (full id, time, tags)
  uint64_t files_new = 0;
  uint64_t files_changed = 0;
  uint64_t files_unmodified = 0;
  uint64_t files_total = 0;               // files processed
  uint64_t bytes_total = 0;               // bytes processed
  uint64_t bytes_added = 0;               // new data stored in the repository (after dedup and compression)
  std::chrono::milliseconds duration{0};  // restic's measure of the backup
  // Source files restic could not read (restic exit code 3): the snapshot
  // exists but lacks them. Scrubbed restic messages, one per file.
  std::vector<std::string> unreadable;
};

// How many snapshots to keep in each period (restic forget --keep-*); 0
// means that rule is not used. At least one must be set.
struct KeepPolicy {
  int last = 0;
  int hourly = 0;
  int daily = 0;
  int weekly = 0;
  int monthly = 0;
  int yearly = 0;
};

struct ForgetOptions {
  std::vector<std::string> tags;  // only snapshots carrying all of these; empty: all
  bool prune = true;              // remove the data only forgotten snapshots used
  bool dry_run = false;           // report what would go; change nothing (no prune)
  // Snapshots are grouped before the policy applies to each group (restic
  // --group-by); the default keeps each source path's history separately.
  std::string group_by = "host,paths";
};

struct ForgetOutcome {
  std::vector<Snapshot> kept;     // oldest first
  std::vector<Snapshot> removed;  // oldest first
};

struct CheckOptions {
  // Also read and verify stored data: all of it, or a subset in restic's
  // --read-data-subset syntax ("1/5", "10%", "50M"). Structure only when both
  // are unset.
  bool read_all_data = false;
  std::string read_data_subset;
};

struct RestoreOptions {
  // Only this path inside the snapshot (restic --include), relative to the
  // backed-up source ("docs/a.txt" or "/docs"); empty: everything.
  std::string include;
  // Run a structural check (Check with no data read) first, so that a
  // missing or truncated pack is reported at once instead of after restic's
  // retries (about 40 s per missing pack). Costs one more restic run.
  bool check_first = true;
  // For RestoreAt: consider only snapshots with all these tags.
  std::vector<std::string> tags;
};

struct RestoreOutcome {
  Snapshot snapshot;             // what was restored
  std::filesystem::path target;  // where
};

struct RepositoryStats {
  uint64_t snapshots = 0;
  uint64_t stored_bytes = 0;  // restic stats --mode raw-data: bytes in the repository's blobs
  uint64_t blobs = 0;
  std::optional<TimePoint> latest;  // the newest snapshot's time (among the tags asked)
};

struct RepositoryOptions {
  std::string repository;  // a local path (made absolute) or a restic repository URL
  std::string password;    // sensitive: see the header comment
  // The restic binary; empty: "restic" found on PATH. A name without a slash
  // is looked up on PATH too.
  std::string restic_binary;
  // restic's cache; empty: no cache (--no-cache), slower on remote repositories.
  std::filesystem::path cache_dir;
  // Recorded as every snapshot's host, so snapshots do not depend on the machine.
  std::string host = "plinth";
  // Deadline for each restic run.
  std::chrono::seconds timeout{3600};
  // Appended to "no backup repository at …; " when the repository is
  // missing; empty: "run `restic -r … init` to create it".
  std::string missing_hint;
};

// ------------------------------------------------------------------ repository

enum class InitOutcome : uint8_t { kCreated, kExisted };

class ResticRepository {
 public:
  // Resolves the restic binary (kResticMissing with where it looked when
  // absent) and validates the options; runs nothing.
  static BackupResult<ResticRepository> Create(RepositoryOptions options);

  // Creates the repository, or accepts an existing one the password opens.
  // An existing one with another password is kWrongPassword.
  BackupResult<InitOutcome> Init() const;

  // Backs up the contents of `source` (a directory). The snapshot's tree
  // holds the directory's entries at its root.
  BackupResult<BackupStats> Backup(const std::filesystem::path& source,
                                   const BackupOptions& options = {}) const;

  // Snapshots carrying all of `tags` (all when empty), oldest first.
  BackupResult<std::vector<Snapshot>> Snapshots(const std::vector<std::string>& tags = {}) const;

  // Applies the keep policy (restic forget) and, unless told otherwise,
  // prunes the data only removed snapshots used.
  BackupResult<ForgetOutcome> Forget(const KeepPolicy& keep, const ForgetOptions& options = {}) const;

  // Verifies the repository. kCorrupt with restic's findings in `details`
  // when damaged; repairs nothing.
  BackupResult<BackupDone> Check(const CheckOptions& options = {}) const;

  // Restores a snapshot (an id or a unique prefix of one) into `target`.
  // Files from the snapshot replace same-named files in the target; other
  // entries of the target are kept. On failure the target is left as it was.
  BackupResult<RestoreOutcome> Restore(std::string_view snapshot_id, const std::filesystem::path& target,
                                       const RestoreOptions& options = {}) const;
  // Restores the newest snapshot taken at or before `at` (among
  // options.tags); kNotFound says when the oldest one was taken.
  BackupResult<RestoreOutcome> RestoreAt(TimePoint at, const std::filesystem::path& target,
                                         const RestoreOptions& options = {}) const;

  // Repository size and the newest snapshot's time (among `tags`).
  BackupResult<RepositoryStats> Stats(const std::vector<std::string>& tags = {}) const;
  // The newest snapshot's time among `tags`; nullopt when there is none.
  BackupResult<std::optional<TimePoint>> LastBackupTime(const std::vector<std::string>& tags = {}) const;

  const std::string& repository() const { return options_.repository; }
  const std::string& restic_binary() const { return binary_; }

 private:
  ResticRepository(RepositoryOptions options, std::string binary)
      : options_(std::move(options)), binary_(std::move(binary)) {}

  struct Run;  // one restic invocation's outcome (backup.cpp)
  Run Restic(std::vector<std::string> args, const std::filesystem::path& cwd = {},
             const std::function<void(std::string_view)>& on_line = {}) const;
  BackupError Failure(const Run& run, const std::string& what) const;
  BackupResult<BackupDone> CheckAs(const CheckOptions& options, const std::string& what) const;
  BackupResult<RestoreOutcome> RestoreSnapshot(Snapshot snapshot, const std::filesystem::path& target,
                                               const RestoreOptions& options, const std::string& what) const;
  std::string Scrub(std::string text) const;

  RepositoryOptions options_;
  std::string binary_;  // absolute path
};

// The newest snapshot at or before `at` in `snapshots` (any order); nullopt
// when all are later or there are none.
std::optional<Snapshot> NewestAtOrBefore(const std::vector<Snapshot>& snapshots, TimePoint at);

// How old the newest snapshot is at `now`; nullopt when there is none. For
// a backup-age metric.
std::optional<std::chrono::seconds> BackupAge(const std::optional<TimePoint>& last, TimePoint now);

// ------------------------------------------------------------------ deleting repositories

// What a local repository holds, read from its files (restic's repository
// format keeps one file per snapshot under snapshots/): no password needed,
// nothing run. For plans, which state what a delete removes.
struct RepositoryContents {
  bool exists = false;      // something is at the path
  bool repository = false;  // and it is a restic repository (a `config` file)
  uint64_t snapshots = 0;
  uint64_t files = 0;
  uint64_t bytes = 0;  // every file of the repository
};
BackupResult<RepositoryContents> InspectLocalRepository(const std::filesystem::path& repo);

// The suffix of a repository being deleted (see DeleteLocalRepository).
inline constexpr const char* kDeletingSuffix = ".plinth-deleting";

// Deletes a local repository with everything in it, snapshots included: the
// explicit opt-in (force_destroy) or a repository without snapshots, which
// holds no data. Refuses a path that is not a restic repository, so a wrong
// path never deletes data. The directory is first renamed to the hidden
// sibling ".NAME.plinth-deleting" (atomic), then removed: a crash leaves the
// whole repository or that leftover, which the next call for the same
// repository (or DeleteDeletingLeftover) finishes. Gone already: success.
BackupResult<BackupDone> DeleteLocalRepository(const std::filesystem::path& repo);
// Removes a ".NAME.plinth-deleting" leftover of an interrupted delete;
// refuses any other name.
BackupResult<BackupDone> DeleteDeletingLeftover(const std::filesystem::path& leftover);

}  // namespace plinth::storage
