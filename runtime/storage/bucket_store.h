// Objects in a local bucket: the live tier, stored versions, the archive
// tier, lifecycle sweeps, usage and access grants (docs/storage.md).
//
// Layout (the region directory is the bucket's region's root):
//   <region>/buckets/<bucket>/                 live tier: plain files, readable by path
//     .plinth-bucket.json                      settings as the local provider last wrote them: a
//                                              copy for people and import, never trusted (the
//                                              state is the source of truth; see BucketFromState)
//   <region>/.plinth-storage/<bucket>/         Plinth's own bookkeeping for the bucket
//     objects/<h>/manifest.json                per object key (h = first 32 hex digits of
//                                              SHA-256(key)): the key, its archived copy and
//                                              its stored versions
//     objects/<h>/archive.sealed               the archived current version (deflated, sealed)
//     objects/<h>/<version id>.sealed          a noncurrent version (sealed)
//     status.json                              capacity alert state, backup history counters
//
// Sealed files use crypto::SealFile with the bucket's data key and the
// associated data "plinth-object-v1\0<bucket id>\0<key>\0<what>", so a file
// moved to another key or bucket fails to open.
//
// Crash safety: every file is written atomically; an object moves between
// tiers in the order "write the new copy, record it in the manifest, remove
// the old copy", so a crash leaves the object in both tiers at worst (the
// next sweep finishes the move), never in neither.
//
// Containment: a bucket's directory and its storage directory are writable
// by jobs. Every path below them is resolved from a handle on the region
// directory (the anchor) one component at a time without following symlinks
// (runtime/io/durable.h, the *Beneath functions); a symlink inside a bucket is
// not an object, and an object path that passes through one is refused.
//
// Not thread-safe per bucket: Plinth's commands on one bucket run one at a
// time (the CLI holds the workspace lock for sweeps and writes). The one
// exception is Put, which serialises with other Puts to the same bucket in
// the process, so the capacity check and the write are one step.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compiler/types/types.h"
#include "runtime/crypto/aead.h"
#include "runtime/io/durable.h"
#include "runtime/provider/provider.h"

namespace plinth::storage {

using runtime::Done;
using runtime::ProviderError;
using runtime::Result;

struct LifecycleRule {
  std::string name;
  std::string prefix;
  std::optional<int64_t> archive_after_ms;
  std::optional<int64_t> expire_after_ms;
  std::optional<int64_t> noncurrent_expire_after_ms;
};

struct BackupSpec {
  int64_t every_ms = 0;
  std::string to_region;              // region name
  std::filesystem::path repository;   // <to region>/backups/<region>/<bucket> (BackupRepositoryPath)
  std::map<std::string, int64_t> keep;  // hourly, daily, weekly, monthly, yearly, last
};

enum class Access { kRead = 1, kWrite = 2, kAdmin = 3 };

// A bucket as the state records it.
struct BucketInfo {
  std::string id;       // "<region>/<bucket>"
  std::string name;     // bucket name
  std::string region;   // region name
  std::string address;  // "bucket.datasets" (may be empty for a bucket made by hand)
  std::filesystem::path region_dir;
  std::filesystem::path live;   // <region>/buckets/<bucket>
  std::filesystem::path store;  // <region>/.plinth-storage/<bucket>
  std::optional<uint64_t> capacity_bytes;
  // grow_to: the most a sweep may raise the quota to (docs/storage.md,
  // "Growing a bucket"); unset: the quota is capacity.
  std::optional<uint64_t> grow_to_bytes;
  double alert_at_percent = 80;
  std::string encryption = "none";
  bool versioning = false;
  std::vector<LifecycleRule> rules;
  std::optional<BackupSpec> backup;
  std::map<std::string, Access> grants;
  std::string wrapped_key;  // see keys.h; empty for a bucket without one
};

// The quota in force: capacity, or the larger quota a sweep granted
// (`granted`, BucketStatus::granted_capacity_bytes) within grow_to. 0 when
// the bucket has no capacity.
uint64_t EffectiveCapacity(const BucketInfo& info, uint64_t granted);

// The quota a sweep granted, from the bucket's status file (0: none, or the
// file is missing or unreadable).
uint64_t GrantedCapacity(const BucketInfo& info);

// The metadata file's name inside the bucket's directory.
inline constexpr const char* kBucketMetaFile = ".plinth-bucket.json";

// A bucket from its state record (`address`, and the record's attributes):
// identity (id "<region>/<name>", the live and storage directories) from the
// region reference {name, path} and the name, checked against `path`;
// settings and the wrapped key from the attributes. Nothing is read from the
// bucket's directory.
Result<BucketInfo> BucketFromState(const std::string& address, const ValueMap& attrs);

// Compares the bucket's metadata file with the state it was built from: nil
// when they agree; otherwise a message naming the bucket, the first field
// that disagrees and what to do. The file is read beneath the region
// directory (no symlink followed). The file is never trusted; a disagreeing
// one means somebody changed it outside Plinth (or a change was
// interrupted), and the object commands refuse until `plinth apply` has
// rewritten it.
std::optional<std::string> CheckMetadata(const BucketInfo& info, const ValueMap& state_attrs);

// The storage directory of a bucket: <region>/.plinth-storage/<bucket>.
std::filesystem::path StoreDirFor(const std::filesystem::path& region_dir, const std::string& bucket);
// The two directories relative to the region directory (their anchor).
std::filesystem::path LiveRel(const BucketInfo& info);   // buckets/<bucket>
std::filesystem::path StoreRel(const BucketInfo& info);  // .plinth-storage/<bucket>

// The backup repository of bucket `bucket` of region `region` in the region
// whose directory is `to_region_dir`: <to>/backups/<region>/<bucket>. Two
// directory levels, so no pair of names maps to another pair's repository
// (region and bucket names cannot contain '/'). Until this layout the name
// was "<region>-<bucket>", which collided (docs/storage.md).
std::filesystem::path BackupRepositoryPath(const std::filesystem::path& to_region_dir, const std::string& region,
                                           const std::string& bucket);

// Settings from a bucket's attribute map (`info.region` and `info.name` must
// be set: the backup repository's path derives from them).
void ApplySettings(const ValueMap& attrs, BucketInfo& info);

// Directories beneath a region's directory (runtime/io/durable.h).
using io::BeneathDir;

// Grants. An empty principal is the workspace operator (every access); any
// other principal needs a grant at least as strong as `need`.
std::optional<ProviderError> Authorize(const BucketInfo& info, const std::string& principal, Access need);
const char* AccessName(Access a);

// Object keys are relative paths: segments separated by '/', none empty,
// "." or "..", none starting with ".plinth", no NUL; at most 1024 bytes.
std::optional<std::string> CheckKey(const std::string& key);

struct VersionInfo {
  std::string id;                 // "v<noncurrent since, ms>-<8 hex>"
  uint64_t size = 0;              // plaintext bytes
  uint64_t stored = 0;            // sealed bytes on disk
  int64_t modified_ms = 0;        // when this content was written
  int64_t noncurrent_since_ms = 0;
};

struct ObjectInfo {
  std::string key;
  bool current = false;          // false: only noncurrent versions remain (a deleted object)
  std::string tier;              // "live" or "archive" (when current)
  uint64_t size = 0;             // bytes of the current content
  uint64_t stored = 0;           // bytes it takes (sealed size in the archive)
  int64_t modified_ms = 0;
  std::vector<VersionInfo> versions;  // newest first
};

struct Usage {
  uint64_t live_bytes = 0, archive_bytes = 0, version_bytes = 0;
  uint64_t live_objects = 0, archived_objects = 0, versions = 0;
  uint64_t total() const { return live_bytes + archive_bytes + version_bytes; }
};

// A regular file in the live tier.
struct LiveFile {
  std::string key;
  uint64_t size = 0;
  int64_t modified_ms = 0;
};

struct SweepAction {
  std::string kind;  // "archive", "expire", "expire-noncurrent", "finish-move"
  std::string key;
  std::string rule;
  std::string version;  // for expire-noncurrent
  uint64_t bytes = 0;
};

struct SweepReport {
  std::vector<SweepAction> actions;
  std::vector<std::string> errors;  // per object; the sweep goes on past them
  size_t archived = 0, expired = 0, noncurrent_expired = 0;
};

class BucketStore {
 public:
  // `data_key` is the bucket's unwrapped key.
  BucketStore(BucketInfo info, crypto::Key data_key);

  const BucketInfo& info() const { return info_; }

  // Objects whose key starts with `prefix`, sorted by key. With
  // `include_deleted`, keys that only have noncurrent versions are listed too.
  Result<std::vector<ObjectInfo>> List(const std::string& prefix, bool include_deleted) const;
  Result<std::optional<ObjectInfo>> Stat(const std::string& key) const;

  // Writes `src`'s bytes as object `key` (atomically). With versioning, the
  // content it replaces becomes a stored version; without, it is gone.
  // A bucket with a capacity refuses a put that would bring its usage (live,
  // archive and stored versions) above it, naming the bucket, the capacity
  // and the usage; a put that does not grow usage is always allowed. Puts to
  // one bucket in one process are serialised, so concurrent puts cannot
  // overshoot together; other processes are serialised by the workspace lock
  // the CLI holds (docs/storage.md, "Capacity").
  Result<Done> Put(const std::string& key, const std::filesystem::path& src, int64_t now_ms);
  // Copies the current content (live or archived), or a stored version, to
  // `dst` (replaced atomically; a symlink there is replaced, not followed).
  Result<Done> Get(const std::string& key, const std::optional<std::string>& version,
                   const std::filesystem::path& dst) const;
  // Writes the content to the open descriptor `out`. Sealed content (archive,
  // stored versions) is opened into a temp file in `scratch` (a private
  // directory) first, so nothing unauthenticated reaches `out`; live content
  // streams straight through.
  Result<Done> Get(const std::string& key, const std::optional<std::string>& version, int out,
                   const std::filesystem::path& scratch) const;
  // Removes the current content; with versioning it becomes a stored version.
  // A version id removes that stored version for good.
  Result<Done> Remove(const std::string& key, const std::optional<std::string>& version, int64_t now_ms);

  // Lifecycle: archives and expires what the rules say is due at `now_ms`
  // (S3 semantics: expiry beats archive, the shortest expiry wins; ages
  // count from the object's modification time, noncurrent ages from when a
  // version became noncurrent). `dry_run` reports without changing anything.
  SweepReport Sweep(int64_t now_ms, bool dry_run);

  Result<Usage> MeasureUsage() const;

 private:
  struct Manifest;
  struct LiveHandle;
  std::filesystem::path ObjectRel(const std::string& key) const;  // beneath region_dir
  Result<BeneathDir> OpenObjectDir(const std::string& key, bool create) const;
  Result<std::optional<LiveFile>> StatLive(const std::string& key) const;
  Result<std::vector<LiveFile>> WalkLive() const;
  Result<LiveHandle> OpenLive(const std::string& key) const;
  Result<Done> RemoveLive(const std::string& key) const;
  // Refuses a put of `new_size` bytes over `live` and an archived copy of
  // `archived_stored` bytes (the content it replaces) when it would bring
  // usage above the capacity.
  Result<Done> CheckCapacity(const std::string& key, uint64_t new_size, const std::optional<LiveFile>& live,
                             uint64_t archived_stored) const;
  void PruneEmptyDirs(const std::string& key) const;
  void RemoveBlob(const std::string& key, const std::string& blob) const;
  // Opens sealed `blob` of `key` into `dst`.
  Result<Done> OpenBlobTo(const std::string& key, const std::string& blob, const std::filesystem::path& dst,
                          const std::string& what) const;
  static Result<Manifest> ReadManifest(const std::string& text, const std::string& shown);
  Result<std::optional<Manifest>> LoadManifest(const std::string& key) const;
  Result<std::vector<Manifest>> AllManifests() const;
  Result<Done> SaveManifest(const Manifest& m) const;
  std::string Aad(const std::string& key, const std::string& what) const;
  // Seals the live file of `key` as a new noncurrent version.
  // `src` names the open live file (/proc/self/fd/N).
  Result<Done> KeepVersion(Manifest& m, const std::filesystem::path& src, uint64_t size, int64_t modified_ms,
                           int64_t now_ms) const;
  Result<Done> Archive(const std::string& key, Manifest& m, uint64_t size, int64_t modified_ms, int64_t now_ms) const;
  Result<Done> ExpireCurrent(const std::string& key, Manifest* m, bool live, uint64_t size, int64_t modified_ms,
                             int64_t now_ms) const;

  BucketInfo info_;
  crypto::Key key_;
};

}  // namespace plinth::storage
