// Storage work on a workspace's local buckets (docs/storage.md): lifecycle
// sweeps, usage and capacity alerts, scheduled backups with retention,
// restores, and the metrics and alert files a monitor reads.
//
// The CLI (`plinth storage sweep`, `backup run|list|check`, `restore`) and,
// later, the controller call these; every time comes from `now`, so tests
// drive schedules and alert windows with an injected clock.
//
// Per bucket, `<store>/status.json` keeps what must survive between runs:
// the capacity alert's state (so an alert fires once when the threshold is
// crossed and resolves once when usage drops), and backup history (last
// success, last failure and its message, failures in a row and in total).
//
// Files a monitor reads (written atomically by Sweep):
//   <workspace>/metrics/storage.prom   Prometheus text format (metric names in docs/storage.md)
//   <workspace>/alerts.log             one JSON object per line: {"time", "alert", "state",
//                                      "bucket", "message"}; appended
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/storage/backup.h"
#include "runtime/storage/bucket_store.h"
#include "runtime/storage/keys.h"

namespace plinth::storage {

struct BackupStatus {
  int64_t last_success_ms = 0;  // 0: never
  int64_t last_failure_ms = 0;
  std::string last_error;
  int64_t failures_in_a_row = 0;
  int64_t failures_total = 0;
  int64_t runs_total = 0;
  std::string last_snapshot;  // short id
};

struct BucketStatus {
  bool capacity_alert_firing = false;
  int64_t capacity_alert_since_ms = 0;
  bool backup_overdue_firing = false;  // no successful backup for twice `every`
  // The quota a sweep granted under grow_to (EffectiveCapacity); 0: none.
  uint64_t granted_capacity_bytes = 0;
  BackupStatus backup;
  int64_t archived_total = 0, expired_total = 0, noncurrent_expired_total = 0;
};

// "1.5 GiB": sizes in messages and CLI tables, always in binary units (B,
// KiB, MiB, GiB, TiB, PiB; one decimal above a KiB), whatever unit the
// configuration used (docs/storage.md, "Capacity and alerts").
std::string BytesText(uint64_t bytes);

Result<BucketStatus> LoadStatus(const BucketInfo& info);
Result<Done> SaveStatus(const BucketInfo& info, const BucketStatus& status);

struct Alert {
  int64_t time_ms = 0;
  std::string name;   // "BucketCapacity", "BackupFailed", "BackupOverdue" (docs/storage.md)
  std::string state;  // "firing" or "resolved"
  std::string bucket;  // address, or id when the bucket has no address
  std::string message;
};

// The capacity alert's transition for `usage` (nullopt: no change). Fires
// when usage reaches alert_at percent of the quota in force
// (EffectiveCapacity with the status's grant); resolves when it drops
// below. Updates `status`.
std::optional<Alert> CapacityTransition(const BucketInfo& info, uint64_t usage, BucketStatus& status, int64_t now_ms);

// The restic repository of a bucket with a backup block.
BackupResult<ResticRepository> BackupRepository(const BucketInfo& info, const crypto::Key& data_key,
                                                const std::filesystem::path& cache_dir = {});

struct SweepOptions {
  int64_t now_ms = 0;
  bool dry_run = false;
  bool backups = true;  // run due backups and retention
  // The workspace directory (.plinth/<workspace>) for metrics, alerts and caches.
  std::filesystem::path workspace_dir;
  // Progress lines for humans ("eu/datasets: backup started").
  std::function<void(const std::string&)> progress;
};

struct BucketSweep {
  BucketInfo info;
  SweepReport lifecycle;
  std::optional<Usage> usage;
  bool backup_due = false;
  std::optional<BackupStats> backup;
  std::optional<ForgetOutcome> retention;
  std::vector<Alert> alerts;
  std::vector<std::string> errors;
  BucketStatus status;  // after the sweep
  // Self-healing (grow_to): the quota this sweep raised, from -> to bytes.
  std::optional<std::pair<uint64_t, uint64_t>> grown;
};

// The quota a bucket at `usage` should have under grow_to: from `quota`, 25%
// steps (at least a byte) while usage is at or above alert_at of it, up to
// grow_to. Returns `quota` when no step is needed or allowed.
uint64_t GrownQuota(const BucketInfo& info, uint64_t quota, uint64_t usage);

// One bucket's due work at `now`: lifecycle rules, usage and the capacity
// alert, a backup when `every` has passed since the last success (or after
// a failure), then retention (forget + prune by `keep`). Errors are
// collected; what can go on goes on.
BucketSweep SweepBucket(const BucketInfo& info, const WorkspaceKey& ws, const SweepOptions& options);

// Runs a backup of one bucket now (and retention), recording the outcome in
// its status file.
BucketSweep BackupBucket(const BucketInfo& info, const WorkspaceKey& ws, const SweepOptions& options);

// Writes the metrics file and appends the alerts for a sweep of every bucket.
Result<Done> WriteMonitoring(const std::vector<BucketSweep>& sweeps, const std::filesystem::path& workspace_dir,
                             int64_t now_ms);

}  // namespace plinth::storage
