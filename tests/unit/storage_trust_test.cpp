// What a writer of a bucket's directory (a job) cannot do to Plinth's storage
// commands (docs/storage.md, "Threat model"): make them use settings or keys
// from the bucket's metadata file, or lead them out of the bucket through a
// symlink.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "compiler/types/value_json.h"
#include "runtime/storage/bucket_store.h"
#include "runtime/storage/keys.h"
#include "tests/support/files.h"

namespace plinth::storage {
namespace {

namespace fs = std::filesystem;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::WriteFile;

constexpr int64_t kT0 = 1'790'000'000'000;

// The state record of bucket `name` in region `eu` at `region_dir`.
ValueMap Record(const fs::path& region_dir, const std::string& name, const std::string& key, ValueMap extra = {}) {
  ValueMap a = {
      {"id", Value::String("eu/" + name)},
      {"name", Value::String(name)},
      {"region", Value::Object({{"name", Value::String("eu")}, {"path", Value::String(region_dir.string())}})},
      {"path", Value::String((region_dir / "buckets" / name).string())},
      {"key", Value::String(key).WithSensitive()},
      {"capacity", Value()},
      {"alert_at", Value::Percent(80)},
      {"encryption", Value::String("none")},
      {"versioning", Value::Bool(false)},
      {"labels", Value()},
      {"lifecycle_rule", Value()},
      {"backup", Value()},
      {"grant", Value()},
      {"force_destroy", Value::Bool(false)},
  };
  for (auto& [k, v] : extra) a[k] = v;
  return a;
}

// The metadata file the local provider writes for `attrs`.
std::string Meta(const std::string& id, const std::string& region, const std::string& bucket, const std::string& key,
                 const ValueMap& attrs) {
  nlohmann::json stored = nlohmann::json::object();
  for (const char* k : {"capacity", "alert_at", "encryption", "versioning", "labels", "lifecycle_rule", "backup", "grant",
                        "force_destroy"}) {
    auto it = attrs.find(k);
    stored[k] = ValueToJson(it == attrs.end() ? Value() : it->second).json;
  }
  nlohmann::json j = {{"format", 1},        {"id", id},   {"region", region}, {"bucket", bucket},
                      {"address", "bucket." + bucket}, {"key", key}, {"attributes", stored}};
  return j.dump(2);
}

class StorageTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    region_ = tmp_.path() / "regions" / "eu";
    auto ws = LoadWorkspaceKey(tmp_.path() / "workspace.key", true);
    ASSERT_TRUE(ws.ok()) << ws.error().message;
    ws_ = ws.value();
    for (const char* b : {"a", "b"}) {
      auto wrapped = NewWrappedKey(ws_, std::string("eu/") + b);
      ASSERT_TRUE(wrapped.ok());
      keys_[b] = wrapped.value();
      fs::create_directories(region_ / "buckets" / b);
    }
    // Bucket a: only `owner` may read it. Bucket b: `intruder` may read it.
    ValueMap a_grants = {{"grant", Value::Object({{"owner", Value::Object({{"access", Value::String("read")}})}})}};
    ValueMap b_grants = {{"grant", Value::Object({{"intruder", Value::Object({{"access", Value::String("read")}})}})}};
    a_ = Record(region_, "a", keys_["a"], a_grants);
    b_ = Record(region_, "b", keys_["b"], b_grants);
    WriteFile(region_ / "buckets/a/.plinth-bucket.json", Meta("eu/a", "eu", "a", keys_["a"], a_));
    WriteFile(region_ / "buckets/b/.plinth-bucket.json", Meta("eu/b", "eu", "b", keys_["b"], b_));
  }

  BucketStore Store(const BucketInfo& info) {
    auto key = UnwrapKey(ws_, info.wrapped_key, info.id);
    EXPECT_TRUE(key.ok()) << (key.ok() ? "" : key.error().message);
    return BucketStore(info, key.ok() ? key.value() : crypto::Key{});
  }

  BucketInfo Info(const std::string& address, const ValueMap& record) {
    auto info = BucketFromState(address, record);
    EXPECT_TRUE(info.ok()) << (info.ok() ? "" : info.error().message);
    return info.ok() ? info.value() : BucketInfo{};
  }

  TempDir tmp_;
  fs::path region_;
  WorkspaceKey ws_;
  std::map<std::string, std::string> keys_;
  ValueMap a_, b_;
};

// ------------------------------------------------------------ item 1: settings from the state

TEST_F(StorageTrustTest, IdentitySettingsAndKeyComeFromTheStateRecord) {
  BucketInfo b = Info("bucket.b", b_);
  EXPECT_EQ(b.id, "eu/b");
  EXPECT_EQ(b.address, "bucket.b");
  EXPECT_EQ(b.live, region_ / "buckets/b");
  EXPECT_EQ(b.store, region_ / ".plinth-storage/b");
  EXPECT_EQ(b.wrapped_key, keys_["b"]);
  EXPECT_EQ(b.grants.at("intruder"), Access::kRead);
  EXPECT_EQ(CheckMetadata(b, b_), std::nullopt);
  // A record whose path is not its region's bucket directory is refused.
  ValueMap moved = b_;
  moved["path"] = Value::String((region_ / "buckets/a").string());
  auto bad = BucketFromState("bucket.b", moved);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("the state of bucket.b names a path that is not its region's bucket directory"),
            std::string::npos)
      << bad.error().message;
}

TEST_F(StorageTrustTest, AMetadataFilePointedAtAnotherBucketIsRefusedAndNeverUsed) {
  // The attack from the issue: b's file rewritten to describe bucket a (its
  // id, name and wrapped key), so that a principal granted on b reads a.
  BucketStore a = Store(Info("bucket.a", a_));
  fs::path src = tmp_.path() / "secret.txt";
  WriteFile(src, "a's secret");
  ASSERT_TRUE(a.Put("secret.txt", src, kT0).ok());
  WriteFile(region_ / "buckets/b/.plinth-bucket.json", Meta("eu/a", "eu", "a", keys_["a"], b_));
  BucketInfo b = Info("bucket.b", b_);
  // Everything still names b: the file changed nothing.
  EXPECT_EQ(b.id, "eu/b");
  EXPECT_EQ(b.live, region_ / "buckets/b");
  EXPECT_EQ(b.wrapped_key, keys_["b"]);
  auto why = CheckMetadata(b, b_);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("the metadata file of bucket.b"), std::string::npos) << *why;
  EXPECT_NE(why->find("disagrees with the state on 'id'"), std::string::npos) << *why;
  EXPECT_NE(why->find("run plinth apply to rewrite it"), std::string::npos) << *why;
  EXPECT_EQ(why->find("pk1:"), std::string::npos) << "a wrapped key in a message: " << *why;
  // And b's store cannot read a's object.
  BucketStore bs = Store(b);
  auto got = bs.Get("secret.txt", std::nullopt, tmp_.path() / "out");
  EXPECT_FALSE(got.ok());
  EXPECT_FALSE(fs::exists(tmp_.path() / "out"));
}

TEST_F(StorageTrustTest, EveryFieldOfTheMetadataFileIsCompared) {
  BucketInfo b = Info("bucket.b", b_);
  struct Case {
    std::string field;
    std::string text;
  };
  ValueMap with_rule = b_;
  with_rule["lifecycle_rule"] = Value::Object(
      {{"wipe", Value::Object({{"prefix", Value::String("")}, {"archive_after", Value()},
                               {"expire_after", Value::Duration(1)}, {"noncurrent_expire_after", Value()}})}});
  ValueMap with_grant = b_;
  with_grant["grant"] = Value::Object({{"intruder", Value::Object({{"access", Value::String("admin")}})}});
  ValueMap with_force = b_;
  with_force["force_destroy"] = Value::Bool(true);
  std::vector<Case> cases = {
      {"lifecycle_rule", Meta("eu/b", "eu", "b", keys_["b"], with_rule)},
      {"grant", Meta("eu/b", "eu", "b", keys_["b"], with_grant)},
      {"force_destroy", Meta("eu/b", "eu", "b", keys_["b"], with_force)},
      {"key", Meta("eu/b", "eu", "b", keys_["a"], b_)},
      {"bucket", Meta("eu/b", "eu", "a", keys_["b"], b_)},
  };
  for (const Case& c : cases) {
    WriteFile(region_ / "buckets/b/.plinth-bucket.json", c.text);
    auto why = CheckMetadata(b, b_);
    ASSERT_TRUE(why) << c.field;
    EXPECT_NE(why->find("disagrees with the state on '" + c.field + "'"), std::string::npos) << *why;
  }
  fs::remove(region_ / "buckets/b/.plinth-bucket.json");
  auto missing = CheckMetadata(b, b_);
  ASSERT_TRUE(missing);
  EXPECT_NE(missing->find("is missing; run plinth apply to rewrite it"), std::string::npos) << *missing;
  // A symlink standing in for the file is not followed.
  fs::create_symlink(region_ / "buckets/a/.plinth-bucket.json", region_ / "buckets/b/.plinth-bucket.json");
  auto link = CheckMetadata(b, b_);
  ASSERT_TRUE(link);
  EXPECT_NE(link->find("symbolic link"), std::string::npos) << *link;
}

// ------------------------------------------------------------ item 9: backup repository names

TEST_F(StorageTrustTest, BackupRepositoriesOfCollidingNamesAreDistinct) {
  // region r["a"] (name r-a) + bucket b["c"] (name b-c) and region r["a-b"]
  // (name r-a-b) + bucket c: one repository "r-a-b-c" in the old layout.
  fs::path us = "/data/regions/us";
  fs::path one = BackupRepositoryPath(us, "r-a", "b-c");
  fs::path two = BackupRepositoryPath(us, "r-a-b", "c");
  EXPECT_NE(one, two);
  EXPECT_EQ(one, us / "backups/r-a/b-c");
  EXPECT_EQ(two, us / "backups/r-a-b/c");
  // And ApplySettings puts them there.
  BucketInfo info;
  info.region = "r-a-b";
  info.name = "c";
  ApplySettings({{"backup", Value::Object({{"every", Value::Duration(86400000)},
                                             {"to", Value::Object({{"name", Value::String("us")},
                                                                    {"path", Value::String(us.string())}})},
                                             {"keep", Value()}})}},
                info);
  ASSERT_TRUE(info.backup);
  EXPECT_EQ(info.backup->repository, two);
}

// ------------------------------------------------------------ item 4: symlinks in a bucket

class StorageSymlinkTest : public StorageTrustTest {
 protected:
  void SetUp() override {
    StorageTrustTest::SetUp();
    outside_ = tmp_.path() / "outside";
    fs::create_directories(outside_);
    WriteFile(outside_ / "secret.txt", "private");
    ::chmod((outside_ / "secret.txt").c_str(), 0600);
    live_ = region_ / "buckets/b";
    ValueMap versioned = b_;
    versioned["versioning"] = Value::Bool(true);
    info_ = Info("bucket.b", versioned);
  }
  fs::path outside_, live_;
  BucketInfo info_;
};

TEST_F(StorageSymlinkTest, GetPutAndRemoveRefuseASymlinkedDirectory) {
  fs::create_directory_symlink(outside_, live_ / "dir");
  BucketStore s = Store(info_);
  auto got = s.Get("dir/secret.txt", std::nullopt, tmp_.path() / "out");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("'dir/secret.txt' in bucket 'eu/b' is or passes through a symbolic link"),
            std::string::npos)
      << got.error().message;
  EXPECT_FALSE(fs::exists(tmp_.path() / "out"));

  fs::path src = tmp_.path() / "new.txt";
  WriteFile(src, "planted");
  auto put = s.Put("dir/new.txt", src, kT0);
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.error().message.find("symbolic link"), std::string::npos) << put.error().message;
  EXPECT_FALSE(fs::exists(outside_ / "new.txt"));
  size_t in_outside = 0;
  for (const auto& e : fs::directory_iterator(outside_)) (void)e, ++in_outside;
  EXPECT_EQ(in_outside, 1u) << "a temp file was left outside the bucket";

  auto rm = s.Remove("dir/secret.txt", std::nullopt, kT0);
  ASSERT_FALSE(rm.ok());
  EXPECT_NE(rm.error().message.find("symbolic link"), std::string::npos) << rm.error().message;
  EXPECT_EQ(ReadFile(outside_ / "secret.txt"), "private");

  auto stat = s.Stat("dir/secret.txt");
  EXPECT_FALSE(stat.ok());
}

TEST_F(StorageSymlinkTest, ASymlinkedObjectIsNotAnObject) {
  fs::create_symlink(outside_ / "secret.txt", live_ / "link.txt");
  fs::create_directory_symlink(outside_, live_ / "dir");
  WriteFile(live_ / "real.txt", "real");
  BucketStore s = Store(info_);
  auto list = s.List("", false);
  ASSERT_TRUE(list.ok()) << list.error().message;
  ASSERT_EQ(list.value().size(), 1u);
  EXPECT_EQ(list.value()[0].key, "real.txt");
  auto got = s.Get("link.txt", std::nullopt, tmp_.path() / "out");
  ASSERT_FALSE(got.ok());
  EXPECT_NE(got.error().message.find("symbolic link"), std::string::npos) << got.error().message;
  EXPECT_FALSE(fs::exists(tmp_.path() / "out"));
  // With versioning, a put over the link would have sealed the file it points
  // to as a stored version (readable by anyone with read access): refused.
  fs::path src = tmp_.path() / "new.txt";
  WriteFile(src, "new");
  auto put = s.Put("link.txt", src, kT0);
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.error().message.find("symbolic link"), std::string::npos) << put.error().message;
  EXPECT_FALSE(fs::exists(region_ / ".plinth-storage/b/objects"));
  auto rm = s.Remove("link.txt", std::nullopt, kT0);
  ASSERT_FALSE(rm.ok());
  EXPECT_TRUE(fs::is_symlink(live_ / "link.txt"));
  EXPECT_EQ(ReadFile(outside_ / "secret.txt"), "private");
  // Sweeps and usage do not count what lies behind links.
  auto usage = s.MeasureUsage();
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage.value().live_objects, 1u);
  EXPECT_EQ(usage.value().live_bytes, 4u);
}

TEST_F(StorageSymlinkTest, TheStorageDirectoryIsNotFollowedEither) {
  // A job points the bucket's storage directory elsewhere: versions and
  // manifests must not be written (or removed) there.
  fs::create_directories(region_ / ".plinth-storage");
  fs::create_directory_symlink(outside_, region_ / ".plinth-storage/b");
  WriteFile(live_ / "a.txt", "one");
  BucketStore s = Store(info_);
  fs::path src = tmp_.path() / "two.txt";
  WriteFile(src, "two");
  auto put = s.Put("a.txt", src, kT0);
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.error().message.find("symbolic link"), std::string::npos) << put.error().message;
  size_t in_outside = 0;
  for (const auto& e : fs::recursive_directory_iterator(outside_)) (void)e, ++in_outside;
  EXPECT_EQ(in_outside, 1u) << "something was written behind the symlinked storage directory";
  EXPECT_EQ(ReadFile(live_ / "a.txt"), "one");
  auto list = s.List("", true);
  EXPECT_FALSE(list.ok());
}

TEST_F(StorageSymlinkTest, PutWritesBeneathTheBucketWithoutPredictableTempNames) {
  BucketStore s = Store(info_);
  // A symlink planted at the old fixed temp name pattern is irrelevant now,
  // and the object lands inside the bucket.
  fs::path src = tmp_.path() / "x.txt";
  WriteFile(src, "x");
  ASSERT_TRUE(s.Put("deep/er/x.txt", src, kT0).ok());
  EXPECT_EQ(ReadFile(live_ / "deep/er/x.txt"), "x");
  for (const auto& e : fs::recursive_directory_iterator(live_)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();
  }
  // Get to an open descriptor streams the live object.
  fs::path out = tmp_.path() / "fd-out";
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  auto got = s.Get("deep/er/x.txt", std::nullopt, fd, tmp_.path());
  ::close(fd);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(ReadFile(out), "x");
}

}  // namespace
}  // namespace plinth::storage
