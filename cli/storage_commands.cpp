// bucket ls|put|get|rm, storage sweep|status, backup run|list|check and
// restore: the CLI over runtime/storage for the workspace's local buckets
// (docs/storage.md).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "runtime/io/durable.h"
#include "runtime/plan/plan.h"
#include "runtime/controller/actions.h"
#include "runtime/storage/service.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t ToMs(storage::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

std::string TimeText(int64_t ms) { return storage::FormatRfc3339(storage::TimePoint(std::chrono::milliseconds(ms))); }

// "2026-11-20T10:00:00Z", "2026-11-20T10:00:00+01:00", and UTC shorthands
// "2026-11-20T10:00", "2026-11-20T10:00:00", "2026-11-20".
std::optional<int64_t> ParseTime(const std::string& text) {
  std::vector<std::string> tries = {text, text + "Z", text + ":00Z", text + "T00:00:00Z"};
  for (const std::string& t : tries) {
    if (auto p = storage::ParseRfc3339(t)) return ToMs(*p);
  }
  return std::nullopt;
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return 1;
}

int Usage(const std::string& text) {
  std::fprintf(stderr, "usage: plinth %s\n", text.c_str());
  return 2;
}

fs::path WorkspaceDir(const Options& o) { return fs::path(ConfigDir(o)) / ".plinth" / o.workspace; }

// A private directory (0700) in the workspace directory, outside the data
// tier, for plaintext that must not sit where jobs can read it (objects
// opened before they are streamed, restores into a bucket). Removed with
// everything in it when it goes out of scope.
class Scratch {
 public:
  ~Scratch() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  bool Make(const Options& o) {
    fs::path base = WorkspaceDir(o) / "tmp";
    if (int e = io::MakeDirs(base, 0700)) {
      Fail("cannot create '" + base.string() + "': " + std::strerror(e));
      return false;
    }
    std::string tmpl = (base / "XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      Fail("cannot create a directory in '" + base.string() + "': " + std::strerror(errno));
      return false;
    }
    dir_ = tmpl;
    return true;
  }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

std::string Principal(const Options& o) {
  if (!o.principal.empty()) return o.principal;
  const char* env = std::getenv("PLINTH_PRINCIPAL");
  return env ? env : "";
}

// The workspace's buckets, from the state: identity, settings and key come
// from each bucket's record; the metadata file in the bucket's directory
// (which jobs can write) is only compared with it, and a disagreeing one is
// refused (storage::CheckMetadata).
struct Workspace {
  std::unique_ptr<state::StateStore> store;
  storage::WorkspaceKey key;
};

bool OpenWorkspace(const Options& o, Workspace& ws) {
  ws.store = OpenState(o);
  if (!ws.store) return false;
  auto key = storage::LoadWorkspaceKey(storage::WorkspaceKeyPath(WorkspaceDir(o)), false);
  if (!key.ok()) {
    Fail(key.error().message);
    return false;
  }
  ws.key = key.value();
  return true;
}

runtime::Result<storage::BucketInfo> BucketFromRecord(const state::ResourceRecord& r) {
  auto info = storage::BucketFromState(r.address, r.attributes);
  if (!info.ok()) return info.error();
  if (auto why = storage::CheckMetadata(info.value(), r.attributes)) return runtime::ProviderError{*why, false};
  return info;
}

std::optional<storage::BucketInfo> FindBucket(state::StateStore& store, const std::string& address) {
  auto r = store.Resource(address);
  if (!r.ok()) {
    Fail(r.error().message);
    return std::nullopt;
  }
  if (!r.value() || r.value()->type != "bucket") {
    Fail("no bucket '" + address + "' in the state" +
         (r.value() ? " ('" + address + "' is a " + r.value()->type + ")" : "") +
         "; plinth state list shows what the workspace manages");
    return std::nullopt;
  }
  auto info = BucketFromRecord(*r.value());
  if (!info.ok()) {
    Fail(info.error().message);
    return std::nullopt;
  }
  return std::move(info.value());
}

std::vector<storage::BucketInfo> AllBuckets(state::StateStore& store, std::vector<std::string>& errors) {
  std::vector<storage::BucketInfo> out;
  auto rs = store.Resources();
  if (!rs.ok()) {
    errors.push_back(rs.error().message);
    return out;
  }
  for (const state::ResourceRecord& r : rs.value()) {
    if (r.type != "bucket") continue;
    auto info = BucketFromRecord(r);
    if (!info.ok()) {
      errors.push_back(r.address + ": " + info.error().message);
      continue;
    }
    out.push_back(std::move(info.value()));
  }
  return out;
}

std::optional<storage::BucketStore> OpenStore(const storage::BucketInfo& info, const storage::WorkspaceKey& ws) {
  auto key = storage::UnwrapKey(ws, info.wrapped_key, info.id);
  if (!key.ok()) {
    Fail(key.error().message);
    return std::nullopt;
  }
  return storage::BucketStore(info, key.value());
}

json ObjectJson(const storage::ObjectInfo& obj) {
  json versions = json::array();
  for (const storage::VersionInfo& v : obj.versions) {
    versions.push_back({{"id", v.id},
                        {"size", v.size},
                        {"stored", v.stored},
                        {"modified", TimeText(v.modified_ms)},
                        {"noncurrent_since", TimeText(v.noncurrent_since_ms)}});
  }
  json j = {{"key", obj.key}, {"current", obj.current}, {"versions", versions}};
  if (obj.current) {
    j["tier"] = obj.tier;
    j["size"] = obj.size;
    j["stored"] = obj.stored;
    j["modified"] = TimeText(obj.modified_ms);
  }
  return j;
}

void PrintAlerts(const std::vector<storage::Alert>& alerts) {
  for (const storage::Alert& a : alerts) {
    std::fprintf(stderr, "alert: %s %s: %s\n", a.name.c_str(), a.state.c_str(), a.message.c_str());
  }
}

std::function<void(const std::string&)> ProgressTo(const Options& o) {
  if (o.json) return {};
  return [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
}

}  // namespace

// ------------------------------------------------------------------ bucket

int Bucket(const Options& o) {
  const auto& a = o.paths;
  const char* usage =
      "bucket ls ADDR [PREFIX] [--versions] [--json] | put ADDR KEY FILE | get ADDR KEY [FILE|-] [--version=V] | "
      "rm ADDR KEY [--version=V]   [--as=PRINCIPAL] [--dir=DIR]";
  if (a.size() < 2) return Usage(usage);
  const std::string& sub = a[0];
  Workspace ws;
  if (!OpenWorkspace(o, ws)) return 1;
  auto info = FindBucket(*ws.store, a[1]);
  if (!info) return 1;
  auto need = [&](storage::Access level) {
    if (auto denied = storage::Authorize(*info, Principal(o), level)) {
      Fail(denied->message);
      return false;
    }
    return true;
  };
  auto store = OpenStore(*info, ws.key);
  if (!store) return 1;
  std::optional<std::string> version;
  if (!o.version.empty()) version = o.version;

  if (sub == "ls") {
    if (a.size() > 3) return Usage(usage);
    if (!need(storage::Access::kRead)) return 1;
    auto list = store->List(a.size() == 3 ? a[2] : "", o.versions);
    if (!list.ok()) return Fail(list.error().message);
    if (o.json) {
      json arr = json::array();
      for (const auto& obj : list.value()) arr.push_back(ObjectJson(obj));
      std::cout << json{{"format_version", 1}, {"bucket", info->address}, {"objects", arr}}.dump(2) << "\n";
      return 0;
    }
    for (const auto& obj : list.value()) {
      if (obj.current) {
        std::printf("%-8s %12s  %s  %s\n", obj.tier.c_str(), storage::BytesText(obj.size).c_str(), TimeText(obj.modified_ms).c_str(),
                    runtime::EscapeControls(obj.key).c_str());
      } else {
        std::printf("%-8s %12s  %s  %s\n", "deleted", "-", "-", runtime::EscapeControls(obj.key).c_str());
      }
      if (!o.versions) continue;
      for (const auto& v : obj.versions) {
        std::printf("  version %s %12s  noncurrent since %s\n", v.id.c_str(), storage::BytesText(v.size).c_str(),
                    TimeText(v.noncurrent_since_ms).c_str());
      }
    }
    return 0;
  }
  if (sub == "put") {
    if (a.size() != 4) return Usage(usage);
    if (!need(storage::Access::kWrite)) return 1;
    return WithLock(*ws.store, "bucket put " + a[1] + " " + a[2], [&] {
      auto put = store->Put(a[2], a[3], NowMs());
      if (!put.ok()) return Fail(put.error().message);
      std::fprintf(stderr, "put %s into %s\n", a[2].c_str(), info->address.c_str());
      return 0;
    });
  }
  if (sub == "get") {
    if (a.size() != 3 && a.size() != 4) return Usage(usage);
    if (!need(storage::Access::kRead)) return 1;
    // FILE: a regular file (or a new one) is replaced atomically; a
    // character device or fifo (also through a symlink: /dev/stdout) is
    // written through; a symlink to anything else is refused, never replaced.
    // "-" or no FILE: standard output, streamed.
    Scratch scratch;
    if (!scratch.Make(o)) return 1;
    bool to_stdout = a.size() == 3 || a[3] == "-";
    if (to_stdout) {
      auto got = store->Get(a[2], version, STDOUT_FILENO, scratch.dir());
      if (!got.ok()) return Fail(got.error().message);
      return 0;
    }
    std::error_code aec;
    fs::path dst = fs::absolute(a[3], aec);  // lexical: a relative FILE is relative to the current directory
    if (aec) return Fail("cannot write '" + a[3] + "': " + aec.message());
    struct stat st;
    if (::lstat(dst.c_str(), &st) == 0) {
      bool through = S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode);
      if (S_ISLNK(st.st_mode)) {
        struct stat target;
        through = ::stat(dst.c_str(), &target) == 0 && (S_ISCHR(target.st_mode) || S_ISFIFO(target.st_mode));
        if (!through) {
          return Fail("'" + dst.string() + "' is a symbolic link; plinth bucket get writes through one only to a "
                      "device or pipe (such as /dev/stdout on a terminal or pipe), and never replaces it: give the "
                      "file's own path, or - for standard output");
        }
      } else if (S_ISDIR(st.st_mode)) {
        return Fail("'" + dst.string() + "' is a directory; give a file name");
      } else if (!S_ISREG(st.st_mode) && !through) {
        return Fail("'" + dst.string() + "' is not a regular file, device or pipe");
      }
      if (through) {
        int fd = ::open(dst.c_str(), O_WRONLY | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) return Fail("cannot write '" + dst.string() + "': " + std::strerror(errno));
        auto got = store->Get(a[2], version, fd, scratch.dir());
        ::close(fd);
        if (!got.ok()) return Fail(got.error().message);
        return 0;
      }
    } else if (errno != ENOENT) {
      return Fail("cannot write '" + dst.string() + "': " + std::strerror(errno));
    }
    auto got = store->Get(a[2], version, dst);
    if (!got.ok()) return Fail(got.error().message);
    return 0;
  }
  if (sub == "rm") {
    if (a.size() != 3) return Usage(usage);
    if (!need(storage::Access::kWrite)) return 1;
    return WithLock(*ws.store, "bucket rm " + a[1] + " " + a[2], [&] {
      auto rm = store->Remove(a[2], version, NowMs());
      if (!rm.ok()) return Fail(rm.error().message);
      std::fprintf(stderr, "removed %s%s from %s%s\n", a[2].c_str(), version ? (" version " + *version).c_str() : "",
                   info->address.c_str(),
                   info->versioning && !version ? " (kept as a stored version: versioning is on)" : "");
      return 0;
    });
  }
  return Usage(usage);
}

// ----------------------------------------------------------------- storage

namespace {

// Every bucket's due work (storage::SweepBucket), then, unless a dry run,
// the metrics and alert files: what `storage sweep` and the controller do.
std::vector<storage::BucketSweep> SweepAll(const std::vector<storage::BucketInfo>& buckets,
                                           const storage::WorkspaceKey& key, const storage::SweepOptions& so,
                                           std::vector<std::string>& errors) {
  std::vector<storage::BucketSweep> sweeps;
  for (const storage::BucketInfo& b : buckets) sweeps.push_back(storage::SweepBucket(b, key, so));
  for (const auto& s : sweeps) errors.insert(errors.end(), s.errors.begin(), s.errors.end());
  // Quotas grown under grow_to are automatic actions (plinth history).
  for (const auto& s : sweeps) {
    if (!s.grown || so.dry_run) continue;
    std::string e;
    auto log = controller::ActionLog::Open(so.workspace_dir / "controller" / "actions.db", true, &e);
    char at[32];
    std::snprintf(at, sizeof at, "%g%%", s.info.alert_at_percent);
    const controller::Action a{0, so.now_ms, "grow", s.info.address.empty() ? s.info.id : s.info.address,
                               "quota " + storage::BytesText(s.grown->first) + " -> " +
                                   storage::BytesText(s.grown->second),
                               "usage " + (s.usage ? storage::BytesText(s.usage->total()) : std::string("?")) +
                                   " reached " + at + " of the quota; grow_to " +
                                   storage::BytesText(s.info.grow_to_bytes.value_or(0))};
    if (!log || !log->Record(a, &e)) errors.push_back("cannot record the growth of " + a.subject + ": " + e);
  }
  if (!so.dry_run) {
    if (auto m = storage::WriteMonitoring(sweeps, so.workspace_dir, so.now_ms); !m.ok()) {
      errors.push_back(m.error().message);
    }
  }
  return sweeps;
}

}  // namespace

int Storage(const Options& o) {
  const char* usage = "storage sweep [--dry-run] [--now=TIME] [--json] | status [--json]   [--dir=DIR]";
  if (o.paths.size() != 1) return Usage(usage);
  const std::string& sub = o.paths[0];
  if (sub != "sweep" && sub != "status") return Usage(usage);
  Workspace ws;
  if (!OpenWorkspace(o, ws)) return 1;
  int64_t now = NowMs();
  if (!o.now.empty()) {
    auto t = ParseTime(o.now);
    if (!t) return Fail("--now takes a time such as 2026-11-20T10:00:00Z, not '" + o.now + "'");
    now = *t;
  }
  std::vector<std::string> errors;
  std::vector<storage::BucketInfo> buckets = AllBuckets(*ws.store, errors);
  storage::SweepOptions so;
  so.now_ms = now;
  so.workspace_dir = WorkspaceDir(o);
  so.progress = ProgressTo(o);
  // status: what a sweep would do, nothing changed, no backups run.
  so.dry_run = sub == "status" || o.dry_run;
  so.backups = true;
  auto run = [&] {
    std::vector<storage::BucketSweep> sweeps = SweepAll(buckets, ws.key, so, errors);
    if (o.json) {
      json arr = json::array();
      for (const auto& s : sweeps) {
        json b = {{"address", s.info.address},
                  {"id", s.info.id},
                  {"lifecycle",
                   {{"archived", s.lifecycle.archived},
                    {"expired", s.lifecycle.expired},
                    {"noncurrent_expired", s.lifecycle.noncurrent_expired}}},
                  {"capacity_alert", s.status.capacity_alert_firing},
                  {"errors", s.errors}};
        if (s.usage) b["usage_bytes"] = s.usage->total();
        if (s.info.capacity_bytes) {
          b["capacity_bytes"] = *s.info.capacity_bytes;
          // The quota in force (grow_to): capacity, or what sweeps grew it to.
          b["quota_bytes"] = storage::EffectiveCapacity(s.info, s.status.granted_capacity_bytes);
        }
        if (s.info.grow_to_bytes) b["grow_to_bytes"] = *s.info.grow_to_bytes;
        if (s.info.backup) {
          json bk = {{"due", s.backup_due}, {"failures_total", s.status.backup.failures_total}};
          if (s.status.backup.last_success_ms > 0) bk["last_success"] = TimeText(s.status.backup.last_success_ms);
          if (s.backup) {
            bk["snapshot"] = s.backup->snapshot.short_id;
            bk["files"] = s.backup->files_total;
            bk["bytes"] = s.backup->bytes_total;
            bk["bytes_added"] = s.backup->bytes_added;
          }
          b["backup"] = bk;
        }
        json alerts = json::array();
        for (const auto& al : s.alerts) alerts.push_back({{"alert", al.name}, {"state", al.state}, {"message", al.message}});
        b["alerts"] = alerts;
        arr.push_back(b);
      }
      std::cout << json{{"format_version", 1}, {"now", TimeText(now)}, {"dry_run", so.dry_run}, {"buckets", arr},
                        {"errors", errors}}
                       .dump(2)
                << "\n";
    } else {
      for (const auto& s : sweeps) {
        std::string usage_text = s.usage ? storage::BytesText(s.usage->total()) : "?";
        if (s.usage && s.info.capacity_bytes && *s.info.capacity_bytes > 0) {
          const uint64_t quota = storage::EffectiveCapacity(s.info, s.status.granted_capacity_bytes);
          char pct[32];
          std::snprintf(pct, sizeof pct, " of %s (%.1f%%)", storage::BytesText(quota).c_str(),
                        100.0 * static_cast<double>(s.usage->total()) / static_cast<double>(quota));
          usage_text += pct;
          if (quota > *s.info.capacity_bytes)
            usage_text += ", grown from " + storage::BytesText(*s.info.capacity_bytes) + " (grow_to " +
                          storage::BytesText(*s.info.grow_to_bytes) + ")";
        }
        std::printf("%s: %s; lifecycle: %zu archived, %zu expired, %zu versions expired%s", s.info.address.c_str(),
                    usage_text.c_str(), s.lifecycle.archived, s.lifecycle.expired, s.lifecycle.noncurrent_expired,
                    so.dry_run ? " (due now; nothing changed)" : "");
        if (s.info.backup) {
          const auto& b = s.status.backup;
          std::printf("; backup: %s", b.last_success_ms > 0 ? ("last " + TimeText(b.last_success_ms)).c_str() : "never");
          if (s.backup) std::printf(", snapshot %s taken", s.backup->snapshot.short_id.c_str());
          else if (s.backup_due) std::printf(", due");
        }
        std::printf("\n");
        PrintAlerts(s.alerts);
      }
      if (buckets.empty()) std::printf("no buckets in workspace '%s'\n", o.workspace.c_str());
      for (const std::string& e : errors) std::fprintf(stderr, "error: %s\n", e.c_str());
    }
    return errors.empty() ? 0 : 1;
  };
  if (so.dry_run) return run();
  return WithLock(*ws.store, "storage sweep", run);
}

// ------------------------------------------------------------------ backup

int Backup(const Options& o) {
  const char* usage = "backup run ADDR | list ADDR [--json] | check ADDR [--read-data]   [--dir=DIR]";
  if (o.paths.size() != 2) return Usage(usage);
  const std::string& sub = o.paths[0];
  Workspace ws;
  if (!OpenWorkspace(o, ws)) return 1;
  auto info = FindBucket(*ws.store, o.paths[1]);
  if (!info) return 1;
  if (!info->backup) {
    return Fail("bucket " + info->address + " has no backup block; add backup { every = 24h  to = region.OTHER }");
  }
  auto key = storage::UnwrapKey(ws.key, info->wrapped_key, info->id);
  if (!key.ok()) return Fail(key.error().message);
  auto repo = storage::BackupRepository(*info, key.value(), WorkspaceDir(o) / "cache" / "restic");
  if (!repo.ok()) return Fail(repo.error().message);
  if (sub == "run") {
    return WithLock(*ws.store, "backup run " + info->address, [&] {
      storage::SweepOptions so;
      so.now_ms = NowMs();
      so.workspace_dir = WorkspaceDir(o);
      so.progress = ProgressTo(o);
      auto t0 = std::chrono::steady_clock::now();
      storage::BucketSweep s = storage::BackupBucket(*info, ws.key, so);
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      PrintAlerts(s.alerts);
      for (const std::string& e : s.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
      if (!s.backup) return 1;
      if (o.json) {
        std::cout << json{{"snapshot", s.backup->snapshot.id},
                          {"time", storage::FormatRfc3339(s.backup->snapshot.time)},
                          {"files", s.backup->files_total},
                          {"bytes", s.backup->bytes_total},
                          {"bytes_added", s.backup->bytes_added},
                          {"seconds", secs}}
                         .dump(2)
                  << "\n";
      } else {
        std::printf("snapshot %s of %s: %llu files, %s (%s added) in %.1f s\n", s.backup->snapshot.short_id.c_str(),
                    info->address.c_str(), static_cast<unsigned long long>(s.backup->files_total),
                    storage::BytesText(s.backup->bytes_total).c_str(), storage::BytesText(s.backup->bytes_added).c_str(), secs);
      }
      return s.errors.empty() ? 0 : 1;
    });
  }
  if (sub == "list") {
    auto snaps = repo.value().Snapshots();
    if (!snaps.ok()) return Fail(snaps.error().message);
    if (o.json) {
      json arr = json::array();
      for (const auto& s : snaps.value()) {
        arr.push_back({{"id", s.id}, {"short_id", s.short_id}, {"time", storage::FormatRfc3339(s.time)}, {"tags", s.tags}});
      }
      std::cout << json{{"format_version", 1}, {"bucket", info->address}, {"snapshots", arr}}.dump(2) << "\n";
      return 0;
    }
    for (const auto& s : snaps.value()) {
      std::printf("%s  %s\n", s.short_id.c_str(), storage::FormatRfc3339(s.time).c_str());
    }
    if (snaps.value().empty()) std::printf("no backups of %s yet (plinth backup run %s)\n", info->address.c_str(), info->address.c_str());
    return 0;
  }
  if (sub == "check") {
    storage::CheckOptions co;
    co.read_all_data = o.read_data;
    auto checked = repo.value().Check(co);
    if (!checked.ok()) {
      for (const std::string& d : checked.error().details) std::fprintf(stderr, "  %s\n", d.c_str());
      return Fail(checked.error().message);
    }
    std::printf("backup repository of %s is intact%s\n", info->address.c_str(), o.read_data ? " (all data read)" : "");
    return 0;
  }
  return Usage(usage);
}

// ----------------------------------------------------------------- restore

int Restore(const Options& o) {
  const char* usage = "restore ADDR --at=TIME | --snapshot=ID [--to=DIR] [--dir=DIR]";
  if (o.paths.size() != 1 || (o.at_time.empty() == o.snapshot.empty())) return Usage(usage);
  Workspace ws;
  if (!OpenWorkspace(o, ws)) return 1;
  auto info = FindBucket(*ws.store, o.paths[0]);
  if (!info) return 1;
  if (!info->backup) return Fail("bucket " + info->address + " has no backup block to restore from");
  auto key = storage::UnwrapKey(ws.key, info->wrapped_key, info->id);
  if (!key.ok()) return Fail(key.error().message);
  auto repo = storage::BackupRepository(*info, key.value(), WorkspaceDir(o) / "cache" / "restic");
  if (!repo.ok()) return Fail(repo.error().message);
  std::optional<int64_t> at;
  if (!o.at_time.empty()) {
    at = ParseTime(o.at_time);
    if (!at) return Fail("--at takes a time such as 2026-11-20T10:00 (UTC) or 2026-11-20T10:00:00Z, not '" + o.at_time + "'");
  }
  // Into a directory: restic writes there directly. Into the bucket: restic
  // writes to a staging directory and each object is then put through the
  // bucket, so versioning keeps what the restore replaces.
  bool into_bucket = o.to.empty();
  // Staging in the workspace's private scratch directory, outside the data
  // tier (jobs can write the bucket's storage directory).
  Scratch scratch;
  if (into_bucket && !scratch.Make(o)) return 1;
  fs::path target = into_bucket ? scratch.dir() / "restore" : fs::path(o.to);
  return WithLock(*ws.store, "restore " + info->address, [&] {
    std::error_code ec;
    if (into_bucket) {
      if (int e = io::MakeDirs(target, 0700)) return Fail("cannot create '" + target.string() + "': " + std::strerror(e));
    }
    auto t0 = std::chrono::steady_clock::now();
    storage::RestoreOptions ro;
    auto restored = at ? repo.value().RestoreAt(storage::TimePoint(std::chrono::milliseconds(*at)), target, ro)
                       : repo.value().Restore(o.snapshot, target, ro);
    if (!restored.ok()) {
      if (into_bucket) fs::remove_all(target, ec);
      return Fail(restored.error().message);
    }
    size_t files = 0;
    if (into_bucket) {
      auto store = OpenStore(*info, ws.key);
      if (!store) return 1;
      int64_t now = NowMs();
      for (auto it = fs::recursive_directory_iterator(target, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        // A symlink in the snapshot is not an object: never read through it.
        if (!fs::is_regular_file(it->symlink_status(ec))) continue;
        std::string k = it->path().lexically_relative(target).generic_string();
        if (k.rfind(".plinth", 0) == 0) continue;  // the bucket's metadata as it was then
        auto put = store->Put(k, it->path(), now);
        if (!put.ok()) {
          fs::remove_all(target, ec);
          return Fail("restore of " + info->address + " stopped at '" + k + "': " + put.error().message +
                      " (objects before it are restored; run the restore again)");
        }
        ++files;
      }
      fs::remove_all(target, ec);
    } else {
      for (auto it = fs::recursive_directory_iterator(target, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        if (fs::is_regular_file(it->symlink_status(ec))) ++files;
      }
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("restored snapshot %s (%s) of %s into %s: %zu %s in %.1f s\n", restored.value().snapshot.short_id.c_str(),
                storage::FormatRfc3339(restored.value().snapshot.time).c_str(), info->address.c_str(),
                into_bucket ? "the bucket" : ("'" + target.string() + "'").c_str(), files, files == 1 ? "file" : "files",
                secs);
    return 0;
  });
}

// -------------------------------------------------------------- controller

bool StorageSweepOnce(const Options& o, int64_t now_ms, std::string* summary, std::string* error) {
  std::error_code ec;
  if (!fs::exists(WorkspaceDir(o) / "state.db", ec)) {
    *summary = "no state in workspace '" + o.workspace + "'; nothing to sweep";
    return true;
  }
  auto store = OpenState(o);
  if (!store) {
    *error = "cannot open the state of workspace '" + o.workspace + "'";
    return false;
  }
  std::vector<std::string> errors;
  std::vector<storage::BucketInfo> buckets = AllBuckets(*store, errors);
  if (buckets.empty() && errors.empty()) {
    *summary = "no buckets";
    return true;
  }
  auto key = storage::LoadWorkspaceKey(storage::WorkspaceKeyPath(WorkspaceDir(o)), false);
  if (!key.ok()) {
    *error = key.error().message;
    return false;
  }
  storage::SweepOptions so;
  so.now_ms = now_ms;
  so.workspace_dir = WorkspaceDir(o);
  so.backups = true;
  auto lock =
      state::WorkspaceLock::Acquire(*store, state::WorkspaceLock::ThisProcess("controller storage sweep"));
  if (!lock.ok()) {
    *error = state::WorkspaceLock::Describe(lock.error());
    return false;
  }
  std::vector<storage::BucketSweep> sweeps = SweepAll(buckets, key.value(), so, errors);
  (void)state::WorkspaceLock::Release(*store, lock.value().id);
  size_t archived = 0, expired = 0, backups = 0, alerts = 0;
  for (const storage::BucketSweep& s : sweeps) {
    archived += s.lifecycle.archived;
    expired += s.lifecycle.expired + s.lifecycle.noncurrent_expired;
    if (s.backup) ++backups;
    alerts += s.alerts.size();
  }
  *summary = std::to_string(sweeps.size()) + " buckets swept: " + std::to_string(archived) + " archived, " +
             std::to_string(expired) + " expired, " + std::to_string(backups) + " backups taken, " +
             std::to_string(alerts) + " alerts";
  if (!errors.empty()) {
    *error = errors[0];
    if (errors.size() > 1) *error += " (and " + std::to_string(errors.size() - 1) + " more errors)";
    return false;
  }
  return true;
}

}  // namespace plinth::cli
