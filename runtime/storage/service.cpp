#include "runtime/storage/service.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runtime/io/durable.h"

namespace plinth::storage {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

ProviderError Fail(std::string m) { return ProviderError{std::move(m), false}; }

std::string Shown(const BucketInfo& info) { return info.address.empty() ? info.id : info.address; }

TimePoint FromMs(int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

// Prometheus label value escaping.
std::string Label(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

KeepPolicy KeepFrom(const BackupSpec& b) {
  KeepPolicy k;
  auto get = [&](const char* name) {
    auto it = b.keep.find(name);
    return it == b.keep.end() ? 0 : static_cast<int>(it->second);
  };
  k.last = get("last");
  k.hourly = get("hourly");
  k.daily = get("daily");
  k.weekly = get("weekly");
  k.monthly = get("monthly");
  k.yearly = get("yearly");
  return k;
}

bool AnyKeep(const KeepPolicy& k) {
  return k.last || k.hourly || k.daily || k.weekly || k.monthly || k.yearly;
}

// Runs the backup and retention of one bucket, updating `out`.
void RunBackup(const BucketInfo& info, const crypto::Key& key, const SweepOptions& o, BucketSweep& out) {
  BackupStatus& st = out.status.backup;
  auto say = [&](const std::string& line) {
    if (o.progress) o.progress(Shown(info) + ": " + line);
  };
  auto failed = [&](const std::string& why) {
    out.errors.push_back("backup of " + Shown(info) + " failed: " + why);
    st.last_failure_ms = o.now_ms;
    st.last_error = why;
    ++st.failures_total;
    if (st.failures_in_a_row++ == 0) {
      out.alerts.push_back({o.now_ms, "BackupFailed", "firing", Shown(info), "backup of " + Shown(info) + " failed: " + why});
    }
  };
  fs::path cache = o.workspace_dir.empty() ? fs::path() : o.workspace_dir / "cache" / "restic";
  auto repo = BackupRepository(info, key, cache);
  if (!repo.ok()) {
    failed(repo.error().message);
    return;
  }
  ++st.runs_total;
  say("backup started (" + info.backup->repository.string() + ")");
  BackupOptions bo;
  bo.tags = {"plinth"};
  bo.time = FromMs(o.now_ms);
  auto stats = repo.value().Backup(info.live, bo);
  if (!stats.ok()) {
    failed(stats.error().message);
    return;
  }
  out.backup = stats.value();
  say("backup " + stats.value().snapshot.short_id + " done: " + std::to_string(stats.value().files_total) +
      " files, " + BytesText(stats.value().bytes_total) + ", " + BytesText(stats.value().bytes_added) + " added");
  if (st.failures_in_a_row > 0) {
    out.alerts.push_back({o.now_ms, "BackupFailed", "resolved", Shown(info), "backup of " + Shown(info) + " succeeded"});
  }
  st.last_success_ms = o.now_ms;
  st.failures_in_a_row = 0;
  st.last_error.clear();
  st.last_snapshot = stats.value().snapshot.short_id;
  KeepPolicy keep = KeepFrom(*info.backup);
  if (!AnyKeep(keep)) return;  // no keep: every snapshot stays
  ForgetOptions fo;
  fo.tags = {"plinth"};
  auto forgot = repo.value().Forget(keep, fo);
  if (!forgot.ok()) {
    out.errors.push_back("retention of " + Shown(info) + " failed: " + forgot.error().message);
    return;
  }
  if (!forgot.value().removed.empty()) {
    say("retention removed " + std::to_string(forgot.value().removed.size()) + " snapshots, kept " +
        std::to_string(forgot.value().kept.size()));
  }
  out.retention = std::move(forgot.value());
}

// BackupOverdue: fires when the last success is older than twice `every`
// (or there never was one and the bucket's first backup failed), resolves
// after the next success.
void OverdueTransition(const BucketInfo& info, int64_t now_ms, BucketSweep& out) {
  const BackupStatus& b = out.status.backup;
  bool overdue = b.last_success_ms == 0 ? b.failures_in_a_row > 0
                                        : now_ms - b.last_success_ms > 2 * info.backup->every_ms;
  if (overdue == out.status.backup_overdue_firing) return;
  out.status.backup_overdue_firing = overdue;
  std::string age = b.last_success_ms == 0 ? "no backup has succeeded yet"
                                           : "the last successful backup is " +
                                                 std::to_string((now_ms - b.last_success_ms) / 3600000) + " h old";
  out.alerts.push_back({now_ms, "BackupOverdue", overdue ? "firing" : "resolved", Shown(info),
                        overdue ? "backups of " + Shown(info) + " are overdue: " + age
                                : "backups of " + Shown(info) + " are current again"});
}

}  // namespace

// ----------------------------------------------------------------- status

std::string BytesText(uint64_t b) {
  // Binary units only (docs/storage.md): the next unit as soon as one
  // decimal would round up to 1024.0 (1048575 bytes is 1.0 MiB, not 1024.0 KiB).
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while ((u == 0 ? v >= 1024 : v >= 1023.95) && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

Result<BucketStatus> LoadStatus(const BucketInfo& info) {
  BucketStatus s;
  fs::path p = info.store / "status.json";
  std::string text;
  // Read beneath the region directory: the storage directory is writable by
  // jobs, and no symlink there is followed.
  if (int e = io::ReadFileBeneath(info.region_dir, StoreRel(info) / "status.json", &text, 1u << 20)) {
    if (e == ENOENT) return s;  // never swept
    if (e == ELOOP) return Fail("'" + p.string() + "' is or lies behind a symbolic link; plinth never follows one there");
    return Fail("cannot read '" + p.string() + "': " + std::strerror(e));
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Fail("'" + p.string() + "' is damaged (not a JSON object); remove it to start the bucket's history afresh");
  }
  s.capacity_alert_firing = j.value("capacity_alert_firing", false);
  s.capacity_alert_since_ms = j.value("capacity_alert_since_ms", int64_t{0});
  s.backup_overdue_firing = j.value("backup_overdue_firing", false);
  s.granted_capacity_bytes = j.value("granted_capacity_bytes", uint64_t{0});
  s.archived_total = j.value("archived_total", int64_t{0});
  s.expired_total = j.value("expired_total", int64_t{0});
  s.noncurrent_expired_total = j.value("noncurrent_expired_total", int64_t{0});
  if (j.contains("backup") && j["backup"].is_object()) {
    const json& b = j["backup"];
    s.backup.last_success_ms = b.value("last_success_ms", int64_t{0});
    s.backup.last_failure_ms = b.value("last_failure_ms", int64_t{0});
    s.backup.last_error = b.value("last_error", "");
    s.backup.failures_in_a_row = b.value("failures_in_a_row", int64_t{0});
    s.backup.failures_total = b.value("failures_total", int64_t{0});
    s.backup.runs_total = b.value("runs_total", int64_t{0});
    s.backup.last_snapshot = b.value("last_snapshot", "");
  }
  return s;
}

Result<Done> SaveStatus(const BucketInfo& info, const BucketStatus& s) {
  json j = {{"format", 1},
            {"capacity_alert_firing", s.capacity_alert_firing},
            {"capacity_alert_since_ms", s.capacity_alert_since_ms},
            {"backup_overdue_firing", s.backup_overdue_firing},
            {"granted_capacity_bytes", s.granted_capacity_bytes},
            {"archived_total", s.archived_total},
            {"expired_total", s.expired_total},
            {"noncurrent_expired_total", s.noncurrent_expired_total},
            {"backup",
             {{"last_success_ms", s.backup.last_success_ms},
              {"last_failure_ms", s.backup.last_failure_ms},
              {"last_error", s.backup.last_error},
              {"failures_in_a_row", s.backup.failures_in_a_row},
              {"failures_total", s.backup.failures_total},
              {"runs_total", s.backup.runs_total},
              {"last_snapshot", s.backup.last_snapshot}}}};
  BeneathDir dir;
  if (int e = BeneathDir::Open(info.region_dir, StoreRel(info), /*create=*/true, 0700, &dir)) {
    return Fail("cannot create '" + info.store.string() + "': " + std::strerror(e));
  }
  const char* stage = "write";
  fs::path p = info.store / "status.json";
  if (int e = io::WriteFileAtomic(dir.path() / "status.json", j.dump(1) + "\n", 0600, &stage)) {
    return Fail("cannot " + std::string(stage) + " '" + p.string() + "': " + std::strerror(e));
  }
  return Done{};
}

uint64_t GrownQuota(const BucketInfo& info, uint64_t quota, uint64_t usage) {
  if (!info.capacity_bytes || !info.grow_to_bytes || quota == 0) return quota;
  const uint64_t cap = std::max(*info.grow_to_bytes, *info.capacity_bytes);
  uint64_t q = quota;
  for (int i = 0; i < 200 && q < cap &&
                  100.0 * static_cast<double>(usage) >= info.alert_at_percent * static_cast<double>(q);
       ++i)
    q = std::min(cap, std::max(q + 1, q + q / 4));
  return q;
}

std::optional<Alert> CapacityTransition(const BucketInfo& info, uint64_t usage, BucketStatus& status, int64_t now_ms) {
  if (!info.capacity_bytes || *info.capacity_bytes == 0) {
    if (!status.capacity_alert_firing) return std::nullopt;
    status.capacity_alert_firing = false;  // capacity removed: nothing to alert on
    return Alert{now_ms, "BucketCapacity", "resolved", Shown(info), Shown(info) + " has no capacity set any more"};
  }
  const uint64_t quota = EffectiveCapacity(info, status.granted_capacity_bytes);
  double percent = 100.0 * static_cast<double>(usage) / static_cast<double>(quota);
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.1f%%", percent);
  std::string of = std::string(pct) + " of " + BytesText(quota) + " (" + BytesText(usage) + ")";
  char at[32];
  std::snprintf(at, sizeof at, "%g%%", info.alert_at_percent);
  if (percent >= info.alert_at_percent && !status.capacity_alert_firing) {
    status.capacity_alert_firing = true;
    status.capacity_alert_since_ms = now_ms;
    return Alert{now_ms, "BucketCapacity", "firing", Shown(info),
                 Shown(info) + " uses " + of + ", at or above its alert threshold of " + at};
  }
  if (percent < info.alert_at_percent && status.capacity_alert_firing) {
    status.capacity_alert_firing = false;
    return Alert{now_ms, "BucketCapacity", "resolved", Shown(info),
                 Shown(info) + " uses " + of + ", below its alert threshold of " + at};
  }
  return std::nullopt;
}

BackupResult<ResticRepository> BackupRepository(const BucketInfo& info, const crypto::Key& data_key,
                                                const fs::path& cache_dir) {
  if (!info.backup || info.backup->repository.empty()) {
    return BackupError{BackupErrorCode::kInvalidArgument, "bucket " + Shown(info) + " has no backup block", false, {}};
  }
  RepositoryOptions ro;
  ro.repository = info.backup->repository.string();
  ro.password = BackupPassword(data_key);
  ro.cache_dir = cache_dir;
  ro.missing_hint = "plinth apply creates it for bucket " + Shown(info) +
                    " (if it was removed or lost, apply creates a new, empty one; earlier backups are gone)";
  return ResticRepository::Create(std::move(ro));
}

namespace {

// The bucket's status and data key, or errors in `out`.
std::optional<crypto::Key> Begin(const BucketInfo& info, const WorkspaceKey& ws, BucketSweep& out) {
  out.info = info;
  auto status = LoadStatus(info);
  if (!status.ok()) {
    out.errors.push_back(status.error().message);
    return std::nullopt;
  }
  out.status = status.value();
  auto key = UnwrapKey(ws, info.wrapped_key, info.id);
  if (!key.ok()) {
    out.errors.push_back(key.error().message);
    return std::nullopt;
  }
  return key.value();
}

}  // namespace

BucketSweep SweepBucket(const BucketInfo& info, const WorkspaceKey& ws, const SweepOptions& o) {
  BucketSweep out;
  std::optional<crypto::Key> key = Begin(info, ws, out);
  if (!key) return out;
  BucketStore store(info, *key);
  out.lifecycle = store.Sweep(o.now_ms, o.dry_run);
  for (const std::string& e : out.lifecycle.errors) out.errors.push_back(Shown(info) + ": " + e);
  if (o.progress && !out.lifecycle.actions.empty()) {
    o.progress(Shown(info) + ": lifecycle " + (o.dry_run ? "would archive " : "archived ") +
               std::to_string(out.lifecycle.archived) + ", expire " + std::to_string(out.lifecycle.expired) +
               " objects and " + std::to_string(out.lifecycle.noncurrent_expired) + " stored versions");
  }
  if (!o.dry_run) {
    out.status.archived_total += static_cast<int64_t>(out.lifecycle.archived);
    out.status.expired_total += static_cast<int64_t>(out.lifecycle.expired);
    out.status.noncurrent_expired_total += static_cast<int64_t>(out.lifecycle.noncurrent_expired);
  }
  auto usage = store.MeasureUsage();
  if (usage.ok()) {
    out.usage = usage.value();
    if (!o.dry_run) {
      // Self-healing: a bucket at its alert threshold grows within grow_to
      // before the alert is decided (it fires only when growing cannot help).
      const uint64_t quota = EffectiveCapacity(info, out.status.granted_capacity_bytes);
      if (const uint64_t grown = GrownQuota(info, quota, usage.value().total()); grown > quota) {
        out.status.granted_capacity_bytes = grown;
        out.grown = std::make_pair(quota, grown);
        if (o.progress) {
          char at[32];
          std::snprintf(at, sizeof at, "%g%%", info.alert_at_percent);
          o.progress(Shown(info) + ": usage " + BytesText(usage.value().total()) + " reached " + at +
                     " of its quota: grew it from " + BytesText(quota) + " to " + BytesText(grown) + " (grow_to " +
                     BytesText(*info.grow_to_bytes) + ")");
        }
      }
      if (auto alert = CapacityTransition(info, usage.value().total(), out.status, o.now_ms)) {
        out.alerts.push_back(*alert);
      }
    }
  } else {
    out.errors.push_back(Shown(info) + ": " + usage.error().message);
  }
  if (info.backup && o.backups) {
    const BackupStatus& b = out.status.backup;
    // Due when `every` has passed since the last success; after a failure,
    // the next sweep tries again.
    out.backup_due = b.last_success_ms == 0 || o.now_ms - b.last_success_ms >= info.backup->every_ms ||
                     b.failures_in_a_row > 0;
    if (out.backup_due && !o.dry_run) RunBackup(info, *key, o, out);
    if (!o.dry_run) OverdueTransition(info, o.now_ms, out);
  }
  if (!o.dry_run) {
    if (auto saved = SaveStatus(info, out.status); !saved.ok()) out.errors.push_back(saved.error().message);
  }
  return out;
}

BucketSweep BackupBucket(const BucketInfo& info, const WorkspaceKey& ws, const SweepOptions& o) {
  BucketSweep out;
  if (!info.backup) {
    out.info = info;
    out.errors.push_back("bucket " + Shown(info) + " has no backup block; add backup { every = 24h  to = region.X }");
    return out;
  }
  std::optional<crypto::Key> key = Begin(info, ws, out);
  if (!key) return out;
  out.backup_due = true;
  RunBackup(info, *key, o, out);
  if (auto saved = SaveStatus(info, out.status); !saved.ok()) out.errors.push_back(saved.error().message);
  return out;
}

Result<Done> WriteMonitoring(const std::vector<BucketSweep>& sweeps, const fs::path& workspace_dir, int64_t now_ms) {
  std::ostringstream m;
  auto family = [&](const char* name, const char* type, const char* help) {
    m << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  auto sample = [&](const char* name, const BucketSweep& s, double v) {
    m << name << "{bucket=\"" << Label(Shown(s.info)) << "\",id=\"" << Label(s.info.id) << "\"} " << v << '\n';
  };
  family("plinth_bucket_usage_bytes", "gauge", "Bytes a bucket takes: live objects, archive tier and stored versions.");
  for (const auto& s : sweeps) {
    if (s.usage) sample("plinth_bucket_usage_bytes", s, static_cast<double>(s.usage->total()));
  }
  family("plinth_bucket_capacity_bytes", "gauge", "The bucket's quota in force: capacity, or what grow_to let a sweep grow it to.");
  for (const auto& s : sweeps) {
    if (s.info.capacity_bytes)
      sample("plinth_bucket_capacity_bytes", s,
             static_cast<double>(EffectiveCapacity(s.info, s.status.granted_capacity_bytes)));
  }
  family("plinth_bucket_usage_ratio", "gauge", "Usage divided by capacity (buckets with a capacity).");
  for (const auto& s : sweeps) {
    if (s.usage && s.info.capacity_bytes && *s.info.capacity_bytes > 0) {
      sample("plinth_bucket_usage_ratio", s,
             static_cast<double>(s.usage->total()) /
                 static_cast<double>(EffectiveCapacity(s.info, s.status.granted_capacity_bytes)));
    }
  }
  family("plinth_bucket_objects", "gauge", "Current objects (live and archived).");
  for (const auto& s : sweeps) {
    if (s.usage) sample("plinth_bucket_objects", s, static_cast<double>(s.usage->live_objects + s.usage->archived_objects));
  }
  family("plinth_bucket_capacity_alert", "gauge", "1 while the capacity alert fires.");
  for (const auto& s : sweeps) sample("plinth_bucket_capacity_alert", s, s.status.capacity_alert_firing ? 1 : 0);
  family("plinth_lifecycle_archived_total", "counter", "Objects moved to the archive tier by lifecycle rules.");
  for (const auto& s : sweeps) sample("plinth_lifecycle_archived_total", s, static_cast<double>(s.status.archived_total));
  family("plinth_lifecycle_expired_total", "counter", "Current objects expired by lifecycle rules.");
  for (const auto& s : sweeps) sample("plinth_lifecycle_expired_total", s, static_cast<double>(s.status.expired_total));
  family("plinth_lifecycle_noncurrent_expired_total", "counter", "Stored versions expired by lifecycle rules.");
  for (const auto& s : sweeps) {
    sample("plinth_lifecycle_noncurrent_expired_total", s, static_cast<double>(s.status.noncurrent_expired_total));
  }
  family("plinth_backup_last_success_timestamp_seconds", "gauge", "When the last backup succeeded (buckets with backups).");
  for (const auto& s : sweeps) {
    if (s.info.backup && s.status.backup.last_success_ms > 0) {
      sample("plinth_backup_last_success_timestamp_seconds", s, static_cast<double>(s.status.backup.last_success_ms) / 1000);
    }
  }
  family("plinth_backup_age_seconds", "gauge", "Seconds since the last successful backup.");
  for (const auto& s : sweeps) {
    if (s.info.backup && s.status.backup.last_success_ms > 0) {
      sample("plinth_backup_age_seconds", s, static_cast<double>(now_ms - s.status.backup.last_success_ms) / 1000);
    }
  }
  family("plinth_backup_overdue", "gauge", "1 while the BackupOverdue alert fires.");
  for (const auto& s : sweeps) {
    if (s.info.backup) sample("plinth_backup_overdue", s, s.status.backup_overdue_firing ? 1 : 0);
  }
  family("plinth_backup_failures_total", "counter", "Backups that failed.");
  for (const auto& s : sweeps) {
    if (s.info.backup) sample("plinth_backup_failures_total", s, static_cast<double>(s.status.backup.failures_total));
  }
  family("plinth_backup_failures_in_a_row", "gauge", "Backups that failed since the last success (BackupFailed while > 0).");
  for (const auto& s : sweeps) {
    if (s.info.backup) sample("plinth_backup_failures_in_a_row", s, static_cast<double>(s.status.backup.failures_in_a_row));
  }
  family("plinth_backup_runs_total", "counter", "Backups started.");
  for (const auto& s : sweeps) {
    if (s.info.backup) sample("plinth_backup_runs_total", s, static_cast<double>(s.status.backup.runs_total));
  }
  fs::path dir = workspace_dir / "metrics";
  if (int e = io::MakeDirs(dir)) return Fail("cannot create '" + dir.string() + "': " + std::strerror(e));
  const char* stage = "write";
  if (int e = io::WriteFileAtomic(dir / "storage.prom", m.str(), 0644, &stage)) {
    return Fail("cannot " + std::string(stage) + " '" + (dir / "storage.prom").string() + "': " + std::strerror(e));
  }
  std::string lines;
  for (const auto& s : sweeps) {
    for (const Alert& a : s.alerts) {
      json j = {{"time", FormatRfc3339(FromMs(a.time_ms))},
                {"alert", a.name},
                {"state", a.state},
                {"bucket", a.bucket},
                {"message", a.message}};
      lines += j.dump() + "\n";
    }
  }
  if (lines.empty()) return Done{};
  fs::path log = workspace_dir / "alerts.log";
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Fail("cannot write '" + log.string() + "': " + std::strerror(errno));
  bool ok = ::write(fd, lines.data(), lines.size()) == static_cast<ssize_t>(lines.size()) && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  if (!ok) return Fail("cannot write '" + log.string() + "': " + std::strerror(e));
  return Done{};
}

}  // namespace plinth::storage
