// Local bucket storage (runtime/storage): object writes and versions, the
// archive tier, lifecycle sweeps with an injected clock (S3 conflict
// semantics), tamper detection of sealed files, grants, usage and keys.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/time.h>

#include <filesystem>
#include <thread>

#include "runtime/storage/bucket_store.h"
#include "runtime/storage/keys.h"
#include "runtime/storage/service.h"
#include "tests/support/files.h"

namespace plinth::storage {
namespace {

namespace fs = std::filesystem;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::WriteFile;

constexpr int64_t kDay = 24LL * 3600 * 1000;
constexpr int64_t kT0 = 1'790'000'000'000;  // a fixed "now" for the tests (ms)

// Sets a file's modification time (ms since the epoch).
void Touch(const fs::path& p, int64_t ms) {
  struct timeval tv[2];
  tv[0].tv_sec = tv[1].tv_sec = ms / 1000;
  tv[0].tv_usec = tv[1].tv_usec = (ms % 1000) * 1000;
  ASSERT_EQ(::utimes(p.c_str(), tv), 0);
}

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    region_ = tmp_.path() / "regions" / "eu";
    fs::create_directories(region_ / "buckets" / "data");
    auto ws = LoadWorkspaceKey(tmp_.path() / "workspace.key", true);
    ASSERT_TRUE(ws.ok()) << ws.error().message;
    ws_ = ws.value();
    auto wrapped = NewWrappedKey(ws_, "eu/data");
    ASSERT_TRUE(wrapped.ok());
    info_.id = "eu/data";
    info_.name = "data";
    info_.region = "eu";
    info_.region_dir = region_;
    info_.live = region_ / "buckets" / "data";
    info_.store = StoreDirFor(region_, "data");
    info_.wrapped_key = wrapped.value();
  }

  BucketStore Store() {
    auto key = UnwrapKey(ws_, info_.wrapped_key, info_.id);
    EXPECT_TRUE(key.ok());
    return BucketStore(info_, key.ok() ? key.value() : crypto::Key{});
  }

  fs::path Src(const std::string& text) {
    fs::path p = tmp_.path() / ("src-" + std::to_string(++n_));
    WriteFile(p, text);
    return p;
  }

  // Writes a live object directly (as a local job would) with a given age.
  void Live(const std::string& key, const std::string& text, int64_t modified_ms) {
    fs::path p = info_.live / key;
    fs::create_directories(p.parent_path());
    WriteFile(p, text);
    Touch(p, modified_ms);
  }

  std::string Get(BucketStore& s, const std::string& key, std::optional<std::string> version = std::nullopt) {
    fs::path out = tmp_.path() / "out";
    auto r = s.Get(key, version, out);
    if (!r.ok()) return "ERROR: " + r.error().message;
    return ReadFile(out);
  }

  TempDir tmp_{"plinth-storage"};
  fs::path region_;
  WorkspaceKey ws_;
  BucketInfo info_;
  int n_ = 0;
};

TEST_F(StorageTest, PutGetListRemoveWithoutVersioning) {
  BucketStore s = Store();
  ASSERT_TRUE(s.Put("raw/a.txt", Src("alpha"), kT0).ok());
  ASSERT_TRUE(s.Put("raw/a.txt", Src("alpha-2"), kT0 + 1).ok());
  ASSERT_TRUE(s.Put("b.bin", Src(std::string("\0\1\2", 3)), kT0).ok());
  EXPECT_EQ(ReadFile(info_.live / "raw/a.txt"), "alpha-2");  // readable by path
  EXPECT_EQ(Get(s, "raw/a.txt"), "alpha-2");
  auto list = s.List("", false);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list.value().size(), 2u);
  EXPECT_EQ(list.value()[0].key, "b.bin");
  EXPECT_EQ(list.value()[1].key, "raw/a.txt");
  EXPECT_TRUE(list.value()[1].versions.empty());  // no versioning: the old content is gone
  auto prefixed = s.List("raw/", false);
  ASSERT_EQ(prefixed.value().size(), 1u);
  ASSERT_TRUE(s.Remove("raw/a.txt", std::nullopt, kT0).ok());
  EXPECT_FALSE(fs::exists(info_.live / "raw"));  // empty prefix directories go too
  auto missing = s.Remove("raw/a.txt", std::nullopt, kT0);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("no object 'raw/a.txt'"), std::string::npos);
}

TEST_F(StorageTest, KeysAreChecked) {
  BucketStore s = Store();
  for (const char* bad : {"", "/abs", "a//b", "../x", "a/./b", ".plinth-bucket.json", "a/.plinth-x"}) {
    auto r = s.Put(bad, Src("x"), kT0);
    EXPECT_FALSE(r.ok()) << bad;
  }
  EXPECT_TRUE(fs::exists(info_.live));
  EXPECT_FALSE(fs::exists(tmp_.path() / "x"));
}

TEST_F(StorageTest, VersioningKeepsEncryptedPreviousVersions) {
  info_.versioning = true;
  BucketStore s = Store();
  ASSERT_TRUE(s.Put("model.ckpt", Src("v1-secret-weights"), kT0).ok());
  ASSERT_TRUE(s.Put("model.ckpt", Src("v2"), kT0 + 10).ok());
  ASSERT_TRUE(s.Put("model.ckpt", Src("v3"), kT0 + 20).ok());
  auto st = s.Stat("model.ckpt");
  ASSERT_TRUE(st.ok() && st.value());
  const ObjectInfo& o = *st.value();
  ASSERT_EQ(o.versions.size(), 2u);
  EXPECT_EQ(o.versions[0].noncurrent_since_ms, kT0 + 20);  // newest first
  EXPECT_EQ(Get(s, "model.ckpt"), "v3");
  EXPECT_EQ(Get(s, "model.ckpt", o.versions[0].id), "v2");
  EXPECT_EQ(Get(s, "model.ckpt", o.versions[1].id), "v1-secret-weights");
  // Stored versions are sealed: the plaintext is nowhere under the store.
  for (const auto& e : fs::recursive_directory_iterator(info_.store)) {
    if (e.is_regular_file()) {
      EXPECT_EQ(ReadFile(e.path()).find("v1-secret-weights"), std::string::npos) << e.path();
    }
  }
  // Deleting the current version keeps it as a version; the object reads as deleted.
  ASSERT_TRUE(s.Remove("model.ckpt", std::nullopt, kT0 + 30).ok());
  EXPECT_NE(Get(s, "model.ckpt").find("it was deleted; earlier versions remain"), std::string::npos);
  auto all = s.List("", true);
  ASSERT_EQ(all.value().size(), 1u);
  EXPECT_FALSE(all.value()[0].current);
  EXPECT_EQ(all.value()[0].versions.size(), 3u);
  EXPECT_TRUE(s.List("", false).value().empty());
  // A version removed by id is gone for good.
  std::string oldest = all.value()[0].versions.back().id;
  ASSERT_TRUE(s.Remove("model.ckpt", oldest, kT0 + 40).ok());
  EXPECT_NE(Get(s, "model.ckpt", oldest).find("has no version"), std::string::npos);
}

TEST_F(StorageTest, ArchiveTierIsCompressedSealedAndReadable) {
  info_.rules.push_back({"raw", "raw/", 30 * kDay, std::nullopt, std::nullopt});
  BucketStore s = Store();
  std::string big(200000, 'z');
  Live("raw/old.txt", big, kT0 - 31 * kDay);
  Live("raw/new.txt", "fresh", kT0 - 29 * kDay);
  Live("other/old.txt", "not matched", kT0 - 400 * kDay);
  auto dry = s.Sweep(kT0, true);
  EXPECT_EQ(dry.archived, 1u);
  EXPECT_TRUE(fs::exists(info_.live / "raw/old.txt"));  // a dry run changes nothing
  auto report = s.Sweep(kT0, false);
  ASSERT_TRUE(report.errors.empty()) << report.errors.front();
  ASSERT_EQ(report.archived, 1u);
  ASSERT_EQ(report.actions.size(), 1u);
  EXPECT_EQ(report.actions[0].kind, "archive");
  EXPECT_EQ(report.actions[0].rule, "raw");
  EXPECT_FALSE(fs::exists(info_.live / "raw/old.txt"));
  EXPECT_TRUE(fs::exists(info_.live / "raw/new.txt"));
  EXPECT_TRUE(fs::exists(info_.live / "other/old.txt"));
  auto st = s.Stat("raw/old.txt");
  ASSERT_TRUE(st.ok()) << st.error().message;
  ASSERT_TRUE(st.value());
  EXPECT_EQ(st.value()->tier, "archive");
  EXPECT_EQ(st.value()->size, big.size());
  EXPECT_LT(st.value()->stored, 2000u);  // deflated
  EXPECT_EQ(Get(s, "raw/old.txt"), big);
  // A second sweep has nothing to do.
  EXPECT_TRUE(s.Sweep(kT0 + 1000, false).actions.empty());
}

TEST_F(StorageTest, ExpiryBeatsArchiveAndTheShortestExpiryWins) {
  info_.rules.push_back({"archive-all", "", 10 * kDay, std::nullopt, std::nullopt});
  info_.rules.push_back({"long", "logs/", std::nullopt, 90 * kDay, std::nullopt});
  info_.rules.push_back({"short", "logs/debug/", std::nullopt, 7 * kDay, std::nullopt});
  BucketStore s = Store();
  Live("logs/debug/x.log", "d", kT0 - 8 * kDay);   // short expiry due; archive not yet
  Live("logs/app.log", "a", kT0 - 20 * kDay);       // archive due, long expiry not
  Live("logs/debug/y.log", "d2", kT0 - 20 * kDay);  // both archive and expiry due: expiry wins
  Live("logs/old.log", "o", kT0 - 100 * kDay);      // both due: expiry wins
  auto report = s.Sweep(kT0, false);
  ASSERT_TRUE(report.errors.empty());
  std::map<std::string, std::string> what;
  for (const SweepAction& a : report.actions) what[a.key] = a.kind + ":" + a.rule;
  EXPECT_EQ(what["logs/debug/x.log"], "expire:short");
  EXPECT_EQ(what["logs/app.log"], "archive:archive-all");
  EXPECT_EQ(what["logs/debug/y.log"], "expire:short");
  EXPECT_EQ(what["logs/old.log"], "expire:long");
  EXPECT_EQ(report.expired, 3u);
  EXPECT_EQ(report.archived, 1u);
  EXPECT_FALSE(fs::exists(info_.live / "logs/debug/x.log"));
  // Archived objects keep ageing from their modification time and expire too.
  auto later = s.Sweep(kT0 + 71 * kDay, false);  // app.log is 91 days old now
  ASSERT_EQ(later.actions.size(), 1u);
  EXPECT_EQ(later.actions[0].key, "logs/app.log");
  EXPECT_EQ(later.actions[0].kind, "expire");
  EXPECT_TRUE(s.List("", true).value().empty());
  EXPECT_FALSE(fs::exists(info_.store / "objects") && !fs::is_empty(info_.store / "objects"));
}

TEST_F(StorageTest, NoncurrentVersionsExpireFromWhenTheyBecameNoncurrent) {
  info_.versioning = true;
  info_.rules.push_back({"versions", "", std::nullopt, std::nullopt, 30 * kDay});
  info_.rules.push_back({"ckpt", "ckpt/", std::nullopt, std::nullopt, 5 * kDay});
  BucketStore s = Store();
  ASSERT_TRUE(s.Put("ckpt/a", Src("1"), kT0).ok());
  ASSERT_TRUE(s.Put("ckpt/a", Src("2"), kT0 + 1 * kDay).ok());  // "1" noncurrent since day 1
  ASSERT_TRUE(s.Put("notes", Src("n1"), kT0).ok());
  ASSERT_TRUE(s.Put("notes", Src("n2"), kT0 + 2 * kDay).ok());  // "n1" noncurrent since day 2
  auto early = s.Sweep(kT0 + 5 * kDay, false);  // ckpt version is 4 days noncurrent
  EXPECT_TRUE(early.actions.empty());
  auto mid = s.Sweep(kT0 + 6 * kDay, false);  // 5 days: the shorter rule applies
  ASSERT_EQ(mid.actions.size(), 1u);
  EXPECT_EQ(mid.actions[0].kind, "expire-noncurrent");
  EXPECT_EQ(mid.actions[0].key, "ckpt/a");
  EXPECT_EQ(mid.actions[0].rule, "ckpt");
  EXPECT_EQ(Get(s, "ckpt/a"), "2");  // the current version is untouched
  auto late = s.Sweep(kT0 + 32 * kDay, false);
  ASSERT_EQ(late.actions.size(), 1u);
  EXPECT_EQ(late.actions[0].key, "notes");
  EXPECT_EQ(s.Stat("notes").value()->versions.size(), 0u);
}

TEST_F(StorageTest, TamperedOrMovedSealedFilesAreRefused) {
  info_.versioning = true;
  BucketStore s = Store();
  ASSERT_TRUE(s.Put("a", Src("one"), kT0).ok());
  ASSERT_TRUE(s.Put("a", Src("two"), kT0 + 1).ok());
  std::string vid = s.Stat("a").value()->versions[0].id;
  fs::path sealed;
  for (const auto& e : fs::recursive_directory_iterator(info_.store)) {
    if (e.path().extension() == ".sealed") sealed = e.path();
  }
  ASSERT_FALSE(sealed.empty());
  std::string bytes = ReadFile(sealed);
  bytes[bytes.size() / 2] ^= 1;
  WriteFile(sealed, bytes);
  fs::path out = tmp_.path() / "restored";
  auto r = s.Get("a", vid, out);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("failed authentication"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(out));  // no unauthenticated bytes at the destination

  // Another workspace key cannot unwrap the bucket key.
  auto other = LoadWorkspaceKey(tmp_.path() / "other.key", true);
  ASSERT_TRUE(other.ok());
  auto wrong = UnwrapKey(other.value(), info_.wrapped_key, info_.id);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("was wrapped by workspace key " + ws_.id), std::string::npos);
  // The wrapped key is bound to its bucket.
  EXPECT_FALSE(UnwrapKey(ws_, info_.wrapped_key, "eu/other").ok());
}

TEST_F(StorageTest, WorkspaceKeyFileIsPrivateAndStable) {
  fs::path p = tmp_.path() / "workspace.key";
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto again = LoadWorkspaceKey(p, true);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again.value().id, ws_.id);
  ::chmod(p.c_str(), 0644);
  auto loose = LoadWorkspaceKey(p, false);
  ASSERT_FALSE(loose.ok());
  EXPECT_NE(loose.error().message.find("chmod 600"), std::string::npos);
  EXPECT_FALSE(LoadWorkspaceKey(tmp_.path() / "none.key", false).ok());
  // The derived backup password is stable and not the key itself.
  auto key = UnwrapKey(ws_, info_.wrapped_key, info_.id);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(BackupPassword(key.value()), BackupPassword(key.value()));
  EXPECT_EQ(BackupPassword(key.value()).size(), 64u);
  EXPECT_NE(BackupPassword(key.value()), crypto::Hex(key.value().data(), 32));
}

TEST_F(StorageTest, GrantsAllowByLevelAndDenyOthers) {
  info_.grants["trainer"] = Access::kRead;
  info_.grants["ingest"] = Access::kWrite;
  EXPECT_FALSE(Authorize(info_, "", Access::kAdmin));  // the operator
  EXPECT_FALSE(Authorize(info_, "trainer", Access::kRead));
  auto denied = Authorize(info_, "trainer", Access::kWrite);
  ASSERT_TRUE(denied);
  EXPECT_NE(denied->message.find("has read access"), std::string::npos);
  EXPECT_FALSE(Authorize(info_, "ingest", Access::kRead));
  auto stranger = Authorize(info_, "intruder", Access::kRead);
  ASSERT_TRUE(stranger);
  EXPECT_NE(stranger->message.find("no grant on bucket 'eu/data'"), std::string::npos);
}

TEST_F(StorageTest, UsageCountsEveryTier) {
  info_.versioning = true;
  info_.rules.push_back({"all", "", 1 * kDay, std::nullopt, std::nullopt});
  BucketStore s = Store();
  ASSERT_TRUE(s.Put("a", Src(std::string(1000, 'a')), kT0).ok());
  ASSERT_TRUE(s.Put("a", Src(std::string(500, 'b')), kT0).ok());
  Live("old", std::string(3000, 'c'), kT0 - 2 * kDay);
  ASSERT_TRUE(s.Sweep(kT0, false).errors.empty());
  auto u = s.MeasureUsage();
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u.value().live_bytes, 500u);
  EXPECT_EQ(u.value().live_objects, 1u);
  EXPECT_EQ(u.value().versions, 1u);
  // Sealed (format 2): header (magic, flags, key version, nonce, plaintext
  // size) + one chunk with its tag.
  EXPECT_EQ(u.value().version_bytes, 1000u + 29 + 16);
  EXPECT_EQ(u.value().archived_objects, 1u);
  EXPECT_GT(u.value().archive_bytes, 0u);
  EXPECT_LT(u.value().archive_bytes, 3000u);
}

TEST_F(StorageTest, CapacityAlertFiresOnceAtTheThresholdAndResolves) {
  info_.address = "bucket.data";
  info_.capacity_bytes = 1000;
  info_.alert_at_percent = 80;
  BucketStatus st;
  EXPECT_FALSE(CapacityTransition(info_, 799, st, kT0));
  auto fired = CapacityTransition(info_, 800, st, kT0 + 1);  // exactly at the threshold
  ASSERT_TRUE(fired);
  EXPECT_EQ(fired->state, "firing");
  EXPECT_NE(fired->message.find("bucket.data uses 80.0% of 1000 B"), std::string::npos) << fired->message;
  EXPECT_FALSE(CapacityTransition(info_, 950, st, kT0 + 2));  // still firing: no second alert
  auto resolved = CapacityTransition(info_, 700, st, kT0 + 3);
  ASSERT_TRUE(resolved);
  EXPECT_EQ(resolved->state, "resolved");
  EXPECT_FALSE(st.capacity_alert_firing);
  // The state survives between runs.
  st.capacity_alert_firing = true;
  st.backup.failures_total = 3;
  ASSERT_TRUE(SaveStatus(info_, st).ok());
  auto loaded = LoadStatus(info_);
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded.value().capacity_alert_firing);
  EXPECT_EQ(loaded.value().backup.failures_total, 3);
}

// Self-healing (docs/storage.md, "Growing a bucket"): a sweep that finds
// usage at alert_at grows the quota in 25% steps up to grow_to, before the
// alert is decided; the grant is kept in the status file and is what a put
// is checked against.
TEST_F(StorageTest, ASweepGrowsTheQuotaWithinGrowTo) {
  info_.address = "bucket.data";
  info_.capacity_bytes = 1000;
  info_.alert_at_percent = 50;
  info_.grow_to_bytes = 3000;
  Live("a", std::string(800, 'x'), kT0);
  SweepOptions o;
  o.now_ms = kT0;
  o.workspace_dir = tmp_.path() / "ws";
  BucketSweep s = SweepBucket(info_, ws_, o);
  ASSERT_TRUE(s.errors.empty()) << s.errors.front();
  // 1000 -> 1250 -> 1562 -> 1952: 800 is below 50% of 1952.
  ASSERT_TRUE(s.grown);
  EXPECT_EQ(s.grown->first, 1000u);
  EXPECT_EQ(s.grown->second, 1952u);
  EXPECT_TRUE(s.alerts.empty()) << "growing helped: no capacity alert";
  EXPECT_EQ(GrantedCapacity(info_), 1952u);
  EXPECT_EQ(EffectiveCapacity(info_, GrantedCapacity(info_)), 1952u);
  // At most grow_to; lowering grow_to lowers the quota; without grow_to the grant is ignored.
  EXPECT_EQ(GrownQuota(info_, 1952, 2900), 3000u);
  EXPECT_EQ(GrownQuota(info_, 1952, 100), 1952u) << "below the threshold: no step";
  BucketInfo lower = info_;
  lower.grow_to_bytes = 1500;
  EXPECT_EQ(EffectiveCapacity(lower, 1952), 1500u);
  BucketInfo none = info_;
  none.grow_to_bytes.reset();
  EXPECT_EQ(EffectiveCapacity(none, 1952), 1000u);
  EXPECT_EQ(GrownQuota(none, 1000, 900), 1000u);
  // Usage past what grow_to allows: the quota stops at grow_to and the alert fires.
  Live("b", std::string(1400, 'y'), kT0);
  BucketSweep full = SweepBucket(info_, ws_, o);
  ASSERT_TRUE(full.grown);
  EXPECT_EQ(full.grown->second, 3000u);
  ASSERT_EQ(full.alerts.size(), 1u);
  EXPECT_NE(full.alerts[0].message.find("of 2.9 KiB"), std::string::npos) << full.alerts[0].message;
}

TEST_F(StorageTest, SweepWritesMetricsAndAlerts) {
  info_.address = "bucket.data";
  info_.capacity_bytes = 100;
  info_.alert_at_percent = 10;
  info_.rules.push_back({"raw", "raw/", 1 * kDay, std::nullopt, std::nullopt});
  Live("raw/a", std::string(80, 'x'), kT0 - 2 * kDay);
  SweepOptions o;
  o.now_ms = kT0;
  o.workspace_dir = tmp_.path() / "ws";
  BucketSweep s = SweepBucket(info_, ws_, o);
  ASSERT_TRUE(s.errors.empty()) << s.errors.front();
  EXPECT_EQ(s.lifecycle.archived, 1u);
  ASSERT_EQ(s.alerts.size(), 1u);  // the sealed archive copy (header, deflated bytes, tag) is over 10 bytes
  ASSERT_TRUE(WriteMonitoring({s}, o.workspace_dir, kT0).ok());
  std::string metrics = ReadFile(o.workspace_dir / "metrics" / "storage.prom");
  EXPECT_NE(metrics.find("# TYPE plinth_bucket_usage_bytes gauge"), std::string::npos);
  EXPECT_NE(metrics.find("plinth_lifecycle_archived_total{bucket=\"bucket.data\",id=\"eu/data\"} 1\n"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("plinth_bucket_capacity_alert{bucket=\"bucket.data\",id=\"eu/data\"} 1\n"), std::string::npos);
  std::string alerts = ReadFile(o.workspace_dir / "alerts.log");
  EXPECT_NE(alerts.find("\"alert\":\"BucketCapacity\""), std::string::npos) << alerts;
  EXPECT_NE(alerts.find("\"state\":\"firing\""), std::string::npos);
  // The next sweep: nothing due, the alert does not repeat, totals persist.
  BucketSweep again = SweepBucket(info_, ws_, o);
  EXPECT_TRUE(again.alerts.empty());
  EXPECT_EQ(again.status.archived_total, 1);
}

TEST_F(StorageTest, BackupFailureAndOverdueAlertsFireOnceAndResolve) {
  info_.address = "bucket.data";
  BackupSpec b;
  b.every_ms = kDay;
  b.to_region = "us";
  b.repository = BackupRepositoryPath(tmp_.path() / "regions" / "us", "eu", "data");
  info_.backup = b;
  Live("a.txt", "payload", kT0 - 1000);
  SweepOptions o;
  o.now_ms = kT0;
  o.workspace_dir = tmp_.path() / "ws";
  auto names = [](const BucketSweep& s) {
    std::string out;
    for (const Alert& a : s.alerts) out += a.name + ":" + a.state + " ";
    return out;
  };
  // No repository yet: the backup fails, clearly, and both alerts fire.
  BucketSweep first = SweepBucket(info_, ws_, o);
  ASSERT_EQ(first.errors.size(), 1u);
  EXPECT_NE(first.errors[0].find("no backup repository"), std::string::npos) << first.errors[0];
  EXPECT_EQ(names(first), "BackupFailed:firing BackupOverdue:firing ");
  EXPECT_TRUE(fs::exists(info_.live / "a.txt"));  // nothing deleted
  o.now_ms += 1000;
  EXPECT_EQ(names(SweepBucket(info_, ws_, o)), "");  // still failing: no repeat
  // The repository appears (apply creates it): the next sweep backs up and both resolve.
  auto key = UnwrapKey(ws_, info_.wrapped_key, info_.id);
  ASSERT_TRUE(key.ok());
  auto repo = BackupRepository(info_, key.value());
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  ASSERT_TRUE(repo.value().Init().ok());
  o.now_ms += 1000;
  BucketSweep ok = SweepBucket(info_, ws_, o);
  EXPECT_TRUE(ok.errors.empty()) << ok.errors.front();
  ASSERT_TRUE(ok.backup);
  EXPECT_EQ(names(ok), "BackupFailed:resolved BackupOverdue:resolved ");
  EXPECT_EQ(ok.status.backup.failures_total, 2);
  // Not due again until `every` has passed; overdue after twice `every` without success.
  o.now_ms += kDay / 2;
  EXPECT_FALSE(SweepBucket(info_, ws_, o).backup_due);
}

TEST_F(StorageTest, CapacityIsAQuotaThatPutsCannotExceed) {
  info_.address = "bucket.data";
  info_.capacity_bytes = 100;
  BucketStore s = Store();
  ASSERT_TRUE(s.Put("a", Src(std::string(60, 'a')), kT0).ok());
  auto over = s.Put("b", Src(std::string(50, 'b')), kT0);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().message,
            "bucket 'eu/data' (bucket.data) is over its capacity: putting 'b' (50 B) would bring its usage to 110 B, "
            "above its capacity of 100 B (usage now 60 B); remove objects or stored versions, or raise `capacity` "
            "and apply");
  EXPECT_FALSE(fs::exists(info_.live / "b"));
  // Replacing content frees what it replaces (no versioning): 90 fits.
  ASSERT_TRUE(s.Put("a", Src(std::string(90, 'c')), kT0).ok());
  ASSERT_TRUE(s.Put("b", Src(std::string(10, 'd')), kT0).ok());
  EXPECT_EQ(s.MeasureUsage().value().total(), 100u);  // exactly at the capacity is allowed
  EXPECT_FALSE(s.Put("new/dir/c", Src("x"), kT0).ok());
  EXPECT_FALSE(fs::exists(info_.live / "new"));  // a refused put leaves no directory behind
  // With versioning the replaced content is kept (sealed), so a replacement
  // grows usage and is refused once it no longer fits.
  info_.versioning = true;
  info_.capacity_bytes = 200;
  BucketStore v = Store();
  auto kept = v.Put("b", Src(std::string(10, 'e')), kT0);  // 90 + 10 + sealed 10 (10 + 45)
  ASSERT_TRUE(kept.ok()) << kept.error().message;
  EXPECT_EQ(v.MeasureUsage().value().total(), 155u);
  EXPECT_FALSE(v.Put("b", Src(std::string(10, 'f')), kT0).ok());  // 155 + 55 > 200
  EXPECT_EQ(Get(v, "b"), std::string(10, 'e'));
}

TEST_F(StorageTest, ConcurrentPutsInOneProcessNeverOvershootTheCapacity) {
  info_.capacity_bytes = 1000;
  constexpr int kPuts = 8;
  std::vector<fs::path> srcs;
  std::vector<BucketStore> stores;
  for (int i = 0; i < kPuts; ++i) {
    srcs.push_back(Src(std::string(300, 'x')));
    stores.push_back(Store());
  }
  std::vector<int> ok(kPuts, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kPuts; ++i) {
    threads.emplace_back([&, i] { ok[i] = stores[i].Put("k" + std::to_string(i), srcs[i], kT0).ok(); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(ok.begin(), ok.end(), 1), 3);  // 3 x 300 fit under 1000, a fourth does not
  EXPECT_EQ(Store().MeasureUsage().value().total(), 900u);
}

TEST_F(StorageTest, SizesPrintInBinaryUnitsOnly) {
  EXPECT_EQ(BytesText(1000), "1000 B");
  EXPECT_EQ(BytesText(1024), "1.0 KiB");
  EXPECT_EQ(BytesText(1048575), "1.0 MiB");  // not "1024.0 KiB"
  EXPECT_EQ(BytesText(50'000'000'000), "46.6 GiB");  // capacity = 50GB
  EXPECT_EQ(BytesText(50ULL << 30), "50.0 GiB");
  EXPECT_EQ(BytesText(3ULL << 50), "3.0 PiB");
}

}  // namespace
}  // namespace plinth::storage
