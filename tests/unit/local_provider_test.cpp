// The local provider against real temporary directories: every test checks
// the disk, and the fixture checks that nothing was written beside the data root.
#include "runtime/providers/local/provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void Spit(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

class LocalProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/plinth-local-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    parent_ = tmpl;
    data_ = parent_ / "data";
    // The workspace key that wraps bucket keys lives beside the data root,
    // as in a workspace (.plinth/<ws>/workspace.key beside .../data).
    provider_ = std::make_unique<LocalProvider>(data_, parent_ / "workspace.key");
    allowed_outside_.push_back("workspace.key");
  }

  void TearDown() override {
    // Nothing may appear beside the data root, whatever the test did.
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(parent_)) names.insert(e.path().filename().string());
    for (const auto& allowed : allowed_outside_) names.erase(allowed);
    names.erase("data");
    EXPECT_TRUE(names.empty()) << "written outside the data root: " << *names.begin();
    fs::remove_all(parent_);
  }

  // Plans a create from `config` and applies it.
  ResourceObject MustCreate(const std::string& type, const ValueMap& config) {
    PlanRequest req{type, nullptr, config};
    auto plan = provider_->PlanChange(req);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    auto created = provider_->Create(type, plan.value().planned);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? created.value() : ResourceObject{};
  }

  static ValueMap Region(const std::string& name, ValueMap extra = {}) {
    ValueMap m = {{"name", Value::String(name)},
                  {"address", Value::String("region." + name)},
                  {"id", Value::Unknown(Type::String())},
                  {"root", Value::Unknown(Type::String())},
                  {"path", Value::Unknown(Type::String())},
                  {"port_base", Value::Number(20000)},
                  {"port_count", Value::Number(1000)},
                  {"down", Value::Bool(false)},
                  {"labels", Value()}};
    for (auto& [k, v] : extra) m[k] = v;
    return m;
  }

  static ValueMap Bucket(const std::string& name, const Value& region, ValueMap extra = {}) {
    ValueMap m = {{"name", Value::String(name)},
                  {"address", Value::String("bucket." + name)},
                  {"id", Value::Unknown(Type::String())},
                  {"path", Value::Unknown(Type::String())},
                  {"region", region},
                  {"capacity", Value()},
                  {"labels", Value()}};
    for (auto& [k, v] : extra) m[k] = v;
    return m;
  }

  static ValueMap Marker(const std::string& path, const std::string& content) {
    return {{"name", Value::String("m")},           {"address", Value::String("marker.m")},
            {"id", Value::Unknown(Type::String())}, {"path", Value::String(path)},
            {"content", Value::String(content)},    {"triggers", Value()}};
  }

  static std::string Str(const ValueMap& m, const std::string& k) {
    auto it = m.find(k);
    return it != m.end() && it->second.kind() == Value::Kind::String ? it->second.as_string()
                                                                     : "<not a string>";
  }

  fs::path parent_;
  fs::path data_;
  std::unique_ptr<LocalProvider> provider_;
  std::vector<std::string> allowed_outside_;
};

// ------------------------------------------------------------------ regions

TEST_F(LocalProviderTest, RegionCreateReadUpdateDelete) {
  ResourceObject eu =
      MustCreate("region", Region("eu", {{"labels", Value::Object({{"tier", Value::String("a")}})}}));
  EXPECT_EQ(eu.id, "eu");
  fs::path dir = provider_->data_root() / "regions" / "eu";
  EXPECT_EQ(Str(eu.attributes, "root"), "regions/eu");
  EXPECT_EQ(Str(eu.attributes, "path"), dir.string());
  EXPECT_TRUE(fs::is_directory(dir / "buckets"));
  EXPECT_TRUE(fs::exists(dir / ".plinth-region.json"));
  EXPECT_FALSE(fs::exists(dir / "DOWN"));

  auto read = provider_->Read("region", "eu", eu.attributes);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read.value().has_value());
  for (const char* k :
       {"root", "path", "port_base", "port_count", "down", "labels", "id", "name", "address"}) {
    EXPECT_TRUE(read.value()->attributes.at(k).Equals(eu.attributes.at(k))) << k;
  }

  ValueMap planned = eu.attributes;
  planned["down"] = Value::Bool(true);
  planned["port_base"] = Value::Number(30000);
  auto down = provider_->Update("region", "eu", eu.attributes, planned);
  ASSERT_TRUE(down.ok()) << down.error().message;
  EXPECT_TRUE(fs::exists(dir / "DOWN"));
  read = provider_->Read("region", "eu", down.value().attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_TRUE(read.value()->attributes.at("down").as_bool());
  EXPECT_EQ(read.value()->attributes.at("port_base").as_number(), 30000);

  planned["down"] = Value::Bool(false);
  ASSERT_TRUE(provider_->Update("region", "eu", down.value().attributes, planned).ok());
  EXPECT_FALSE(fs::exists(dir / "DOWN"));

  // Drift: the DOWN file appears behind the provider's back.
  Spit(dir / "DOWN", "");
  read = provider_->Read("region", "eu", eu.attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_TRUE(read.value()->attributes.at("down").as_bool());

  ASSERT_TRUE(provider_->Delete("region", "eu", eu.attributes).ok());
  EXPECT_FALSE(fs::exists(dir));
  read = provider_->Read("region", "eu", eu.attributes);
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read.value().has_value());
  EXPECT_TRUE(provider_->Delete("region", "eu", eu.attributes).ok()) << "delete is idempotent";
}

TEST_F(LocalProviderTest, RegionCustomRootAndDuplicateName) {
  ResourceObject eu = MustCreate("region", Region("eu", {{"root", Value::String("custom/./eu")}}));
  EXPECT_EQ(Str(eu.attributes, "root"), "custom/eu");
  EXPECT_TRUE(fs::exists(provider_->data_root() / "custom/eu/.plinth-region.json"));
  PlanRequest req{"region", nullptr,
                  Region("eu", {{
                                    "root",
                                    Value::String("other/eu"),
                                },
                                {"port_base", Value::Number(40000)}})};
  auto plan = provider_->PlanChange(req);
  ASSERT_TRUE(plan.ok());
  auto dup = provider_->Create("region", plan.value().planned);
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("region 'eu' already exists"), std::string::npos) << dup.error().message;
  EXPECT_FALSE(fs::exists(provider_->data_root() / "other"));
  // Nested roots break isolation.
  auto nested = provider_->Create(
      "region", Region("in", {{"root", Value::String("custom/eu/in")}, {"port_base", Value::Number(50000)}}));
  ASSERT_FALSE(nested.ok());
  EXPECT_NE(nested.error().message.find("isolated"), std::string::npos) << nested.error().message;
}

TEST_F(LocalProviderTest, RegionPortRangesMustNotOverlap) {
  MustCreate("region", Region("eu"));
  auto us = provider_->Create(
      "region", Region("us", {{"port_base", Value::Number(20500)}, {"port_count", Value::Number(10)}}));
  ASSERT_FALSE(us.ok());
  EXPECT_FALSE(us.error().retryable);
  EXPECT_EQ(us.error().message, "port range 20500-20509 of region 'us' overlaps region 'eu' (20000-20999)");
  EXPECT_FALSE(fs::exists(provider_->data_root() / "regions" / "us"));
  ResourceObject ok = MustCreate("region", Region("us", {{"port_base", Value::Number(21000)}}));
  // Moving a range onto another region's is refused on update too.
  ValueMap planned = ok.attributes;
  planned["port_base"] = Value::Number(20999);
  EXPECT_FALSE(provider_->Update("region", "us", ok.attributes, planned).ok());

  EXPECT_FALSE(provider_->Validate("region", Region("x", {{"port_base", Value::Number(70000)}})).empty());
  EXPECT_FALSE(provider_
                   ->Validate("region", Region("x", {{"port_base", Value::Number(65000)},
                                                     {"port_count", Value::Number(1000)}}))
                   .empty());
  EXPECT_FALSE(provider_->Validate("region", Region("x", {{"root", Value::String("../up")}})).empty());
  EXPECT_TRUE(provider_->Validate("region", Region("x")).empty());
}

// What apply would refuse half-way is found from the plan's values at once.
TEST_F(LocalProviderTest, CheckPlanFindsConflictsBetweenPlannedResources) {
  auto planned = [&](const std::string& type, const ValueMap& config) {
    auto r = provider_->PlanChange(PlanRequest{type, nullptr, config, {"root"}});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value().planned : ValueMap{};
  };
  auto check = [&](const std::vector<std::pair<std::string, const ValueMap*>>& items, bool first_existing = false) {
    std::vector<PlanItem> in;
    for (const auto& [address, values] : items) {
      std::string type = address.substr(0, address.rfind('.'));  // module.x.region.eu -> region
      type = type.substr(type.rfind('.') + 1);
      in.push_back({address, type, values, in.empty() && first_existing});
    }
    return provider_->CheckPlan(in);
  };

  // Both regions on the default range: the README's first example before it set port_base.
  ValueMap eu = planned("region", Region("eu")), us = planned("region", Region("us"));
  auto c = check({{"region.eu", &eu}, {"region.us", &us}});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].addresses, (std::vector<std::string>{"region.us", "region.eu"}));
  EXPECT_EQ(c[0].message,
            "port range 20000-20999 of region.us overlaps region.eu (20000-20999); set port_base on one of them so the "
            "ranges do not overlap (for example port_base = 21000 on region.us)");
  // The region to change is the one not applied yet, whatever the order.
  c = check({{"region.us", &us}, {"region.eu", &eu}}, /*first_existing=*/true);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].addresses.front(), "region.eu");
  // Adjacent ranges, and a range that is not known yet, conflict with nothing.
  ValueMap next = planned("region", Region("us", {{"port_base", Value::Number(21000)}}));
  ValueMap unknown = planned("region", Region("ap", {{"port_base", Value::Unknown(Type::Number())}}));
  EXPECT_TRUE(check({{"region.eu", &eu}, {"region.us", &next}, {"region.ap", &unknown}}).empty());
  // A range inside a wide one that comes first is found too.
  ValueMap wide = planned("region", Region("w", {{"port_base", Value::Number(30000)},
                                                 {"port_count", Value::Number(5000)}}));
  ValueMap mid = planned("region", Region("m", {{"port_base", Value::Number(31000)}}));
  ValueMap late = planned("region", Region("l", {{"port_base", Value::Number(34000)}}));
  c = check({{"region.w", &wide}, {"region.m", &mid}, {"region.l", &late}});
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[0].addresses, (std::vector<std::string>{"region.m", "region.w"}));
  EXPECT_EQ(c[1].addresses, (std::vector<std::string>{"region.l", "region.w"}));

  // The same root, and a root inside another region's.
  ValueMap a = planned("region", Region("a", {{"root", Value::String("shared")}}));
  ValueMap b = planned("region", Region("b", {{"root", Value::String("shared/")},
                                              {"port_base", Value::Number(21000)}}));
  ValueMap inner = planned("region", Region("i", {{"root", Value::String("shared/inner")},
                                                  {"port_base", Value::Number(22000)}}));
  ValueMap sibling = planned("region", Region("s", {{"root", Value::String("shared-2")},
                                                    {"port_base", Value::Number(23000)}}));
  c = check({{"region.a", &a}, {"region.s", &sibling}, {"region.b", &b}});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].message,
            "region.b (shared) has the same root as region.a (shared); regions are isolated directories: set root on "
            "region.b to a directory of its own");
  c = check({{"region.a", &a}, {"region.i", &inner}, {"region.s", &sibling}});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].addresses, (std::vector<std::string>{"region.i", "region.a"}));
  EXPECT_NE(c[0].message.find("region.i (shared/inner) has its root inside the root of region.a (shared)"),
            std::string::npos)
      << c[0].message;

  // Two regions with one name (a module's `registry-this` and a root `registry-this`).
  ValueMap twin = planned("region", Region("eu", {{"port_base", Value::Number(24000)},
                                                  {"root", Value::String("elsewhere")}}));
  c = check({{"region.eu", &eu}, {"module.x.region.eu", &twin}});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].message,
            "module.x.region.eu and region.eu are both region 'eu' (region names are unique per data root); rename "
            "one of them");

  // Buckets: the same region and name; another name or region is fine.
  Value ref = Value::Object({{"name", Value::String("eu")}});
  ValueMap b1 = planned("bucket", Bucket("data", ref)), b2 = planned("bucket", Bucket("data", ref));
  ValueMap b3 = planned("bucket", Bucket("logs", ref));
  c = check({{"bucket.data", &b1}, {"module.m.bucket.data", &b2}, {"bucket.logs", &b3}});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].message,
            "module.m.bucket.data and bucket.data are both bucket 'eu/data' (same region and name); rename one of "
            "them or place it in another region");

  // Markers: one file written by two; `a/../x` is `x`.
  ValueMap m1 = planned("marker", Marker("x", "1")), m2 = planned("marker", Marker("a/../x", "2"));
  ValueMap m3 = planned("marker", Marker("y", "3"));
  c = check({{"marker.one", &m1}, {"marker.two", &m2}, {"marker.three", &m3}});
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].message, "marker.two and marker.one both write the file 'x'; give each its own path");
  EXPECT_TRUE(check({{"marker.one", &m1}, {"marker.three", &m3}}).empty());
}

// ------------------------------------------------------------------ buckets

TEST_F(LocalProviderTest, BucketCreateReadUpdateDelete) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  Value rule = Value::Object({{"raw", Value::Object({{"prefix", Value::String("raw/")},
                                                     {"archive_after", Value::Duration(30.0 * 86400000)},
                                                     {"expire_after", Value()},
                                                     {"noncurrent_expire_after", Value()}})}});
  ResourceObject b = MustCreate(
      "bucket",
      Bucket("datasets", Value::Object(eu.attributes),
             {{"capacity", Value::Size(50.0 * 1024 * 1024 * 1024)},
              {"labels", Value::Object({{"team", Value::String("ml")}})},
              {"lifecycle_rule", rule},
              {"grant", Value::Object({{"trainer", Value::Object({{"access", Value::String("read")}})}})}}));
  EXPECT_EQ(b.id, "eu/datasets");
  fs::path dir = provider_->data_root() / "regions/eu/buckets/datasets";
  EXPECT_EQ(Str(b.attributes, "path"), dir.string());
  std::string meta = Slurp(dir / ".plinth-bucket.json");
  EXPECT_NE(meta.find("\"team\": \"ml\""), std::string::npos) << meta;
  EXPECT_NE(meta.find("raw/"), std::string::npos) << meta;
  EXPECT_NE(meta.find("trainer"), std::string::npos) << meta;
  EXPECT_EQ(b.attributes.at("encryption").as_string(), "none");
  EXPECT_EQ(b.attributes.at("alert_at").as_number(), 80);

  auto read = provider_->Read("bucket", b.id, b.attributes);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read.value());
  for (const auto& [k, v] : b.attributes) {
    ASSERT_TRUE(read.value()->attributes.count(k)) << k;
    EXPECT_TRUE(read.value()->attributes.at(k).Equals(v))
        << k << ": " << read.value()->attributes.at(k).ToString();
  }

  // A second plan against the created bucket has nothing to replace and keeps its path.
  PlanRequest again{"bucket", &b.attributes,
                    Bucket("datasets", Value::Object(eu.attributes), {{"versioning", Value::Bool(true)}})};
  auto plan = provider_->PlanChange(again);
  ASSERT_TRUE(plan.ok());
  EXPECT_TRUE(plan.value().replace_because.empty());
  EXPECT_EQ(Str(plan.value().planned, "path"), dir.string());
  EXPECT_EQ(Str(plan.value().planned, "id"), "eu/datasets");
  EXPECT_TRUE(plan.value().planned.at("region").Equals(b.attributes.at("region")));

  auto updated = provider_->Update("bucket", b.id, b.attributes, plan.value().planned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_TRUE(updated.value().attributes.at("versioning").as_bool());
  EXPECT_NE(Slurp(dir / ".plinth-bucket.json").find("\"versioning\": true"), std::string::npos);

  ASSERT_TRUE(provider_->Delete("bucket", b.id, updated.value().attributes).ok());
  EXPECT_FALSE(fs::exists(dir));
  read = provider_->Read("bucket", b.id, b.attributes);
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read.value().has_value());
  EXPECT_TRUE(provider_->Delete("bucket", b.id, b.attributes).ok()) << "delete is idempotent";
  EXPECT_TRUE(provider_->Delete("region", "eu", eu.attributes).ok());
}

TEST_F(LocalProviderTest, BucketFindsItsRegionByNameAndCustomRoot) {
  MustCreate("region", Region("eu", {{"root", Value::String("zone/eu")}}));
  // At plan time the region's path was unknown; at apply only the name is left.
  ResourceObject b =
      MustCreate("bucket", Bucket("logs", Value::Object({{"name", Value::String("eu")},
                                                         {"path", Value::Unknown(Type::String())}})));
  EXPECT_TRUE(fs::exists(provider_->data_root() / "zone/eu/buckets/logs/.plinth-bucket.json"));
  EXPECT_EQ(b.id, "eu/logs");
}

TEST_F(LocalProviderTest, BucketDeleteRefusesWhileObjectsRemain) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  ResourceObject b = MustCreate("bucket", Bucket("ckpt", Value::Object(eu.attributes)));
  fs::path dir = provider_->data_root() / "regions/eu/buckets/ckpt";
  Spit(dir / "a.bin", "1");
  Spit(dir / "deep/b.bin", "2");
  // The plan says so first, with what it holds and how to opt in.
  auto preview = provider_->PlanDelete("bucket", b.id, b.attributes);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  EXPECT_EQ(preview.value().data, (std::vector<std::string>{"2 objects (2 B)"}));
  EXPECT_EQ(preview.value().amounts, (std::map<std::string, uint64_t>{{"objects", 2}, {"object_bytes", 2}}));
  EXPECT_EQ(preview.value().refusal,
            "bucket.ckpt still holds 2 objects (2 B); empty it first, or, to delete it with its data, set "
            "force_destroy = true on bucket.ckpt, apply, then destroy");
  auto del = provider_->Delete("bucket", b.id, b.attributes);
  ASSERT_FALSE(del.ok());
  EXPECT_FALSE(del.error().retryable);
  EXPECT_EQ(del.error().message, preview.value().refusal);
  EXPECT_TRUE(fs::exists(dir / "a.bin"));
  EXPECT_TRUE(fs::exists(dir / "deep/b.bin"));
  EXPECT_TRUE(fs::exists(dir / ".plinth-bucket.json"));

  // The region refuses too while it holds the bucket.
  auto region_del = provider_->Delete("region", "eu", eu.attributes);
  ASSERT_FALSE(region_del.ok());
  EXPECT_NE(region_del.error().message.find("still holds 1 bucket"), std::string::npos)
      << region_del.error().message;

  fs::remove(dir / "a.bin");
  fs::remove(dir / "deep/b.bin");
  EXPECT_TRUE(provider_->Delete("bucket", b.id, b.attributes).ok());
  EXPECT_FALSE(fs::exists(dir));
  EXPECT_TRUE(provider_->Delete("region", "eu", eu.attributes).ok());
}

TEST_F(LocalProviderTest, ForceDestroyIsAnInPlaceUpdateThatIsOnlyRecorded) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  ResourceObject b = MustCreate("bucket", Bucket("ckpt", Value::Object(eu.attributes)));
  EXPECT_TRUE(b.attributes.at("force_destroy").Equals(Value::Bool(false)));
  ValueMap config = Bucket("ckpt", Value::Object(eu.attributes), {{"force_destroy", Value::Bool(true)}});
  auto plan = provider_->PlanChange(PlanRequest{"bucket", &b.attributes, config});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan.value().replace_because.empty());
  auto updated = provider_->Update("bucket", b.id, b.attributes, plan.value().planned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_TRUE(updated.value().attributes.at("force_destroy").Equals(Value::Bool(true)));
  auto read = provider_->Read("bucket", b.id, updated.value().attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_TRUE(read.value()->attributes.at("force_destroy").Equals(Value::Bool(true)));
  // Metadata written before force_destroy existed reads as its default, not
  // as drift (the state before the update says false).
  fs::path meta = provider_->data_root() / "regions/eu/buckets/ckpt/.plinth-bucket.json";
  std::string text = Slurp(meta);
  size_t at = text.find("\"force_destroy\"");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, std::string("\"force_destroy\": true").size(), "\"old_setting\": true");
  Spit(meta, text);
  read = provider_->Read("bucket", b.id, b.attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_TRUE(read.value()->attributes.at("force_destroy").Equals(Value::Bool(false)));
}

// A bucket in `eu` backed up to `us`, with a real (empty) restic repository.
class LocalBackupTest : public LocalProviderTest {
 protected:
  ResourceObject BackedUpBucket(const std::string& name, bool force_destroy) {
    eu_ = MustCreate("region", Region("eu"));
    us_ = MustCreate("region", Region("us", {{"port_base", Value::Number(21000)}}));
    Value backup = Value::Object({{"every", Value::Duration(86400000.0)},
                                  {"to", Value::Object(us_.attributes)},
                                  {"keep", Value()}});
    return MustCreate("bucket", Bucket(name, Value::Object(eu_.attributes),
                                       {{"backup", backup}, {"force_destroy", Value::Bool(force_destroy)}}));
  }
  // restic's repository format: one file per snapshot under snapshots/.
  void FakeSnapshot(const fs::path& repo, const std::string& id) { Spit(repo / "snapshots" / id, "{}"); }

  ResourceObject eu_, us_;
};

TEST_F(LocalBackupTest, ForceDestroyDeletesObjectsVersionsArchiveAndBackups) {
  ResourceObject b = BackedUpBucket("data", /*force_destroy=*/true);
  const fs::path root = provider_->data_root();
  const fs::path live = root / "regions/eu/buckets/data";
  const fs::path store = root / "regions/eu/.plinth-storage/data";
  const fs::path repo = root / "regions/us/backups/eu/data";
  ASSERT_TRUE(fs::exists(repo / "config"));
  Spit(live / "raw/a.csv", "12345");
  Spit(live / "b.bin", "678");
  Spit(store / "objects/0123/manifest.json", "{}");
  Spit(store / "objects/0123/archive.sealed", "sealed-archive");                 // 14 bytes
  Spit(store / "objects/4567/manifest.json", "{}");
  Spit(store / "objects/4567/v1790000000000-0a0b0c0d.sealed", "sealed-version");  // 14 bytes
  FakeSnapshot(repo, std::string(64, 'a'));

  auto preview = provider_->PlanDelete("bucket", b.id, b.attributes);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  const DeletePreview& p = preview.value();
  EXPECT_EQ(p.refusal, "");
  ASSERT_EQ(p.data.size(), 4u);
  EXPECT_EQ(p.data[0], "2 objects (8 B)");
  EXPECT_EQ(p.data[1], "1 stored version (14 B)");
  EXPECT_EQ(p.data[2], "1 archived object (14 B)");
  EXPECT_EQ(p.data[3].rfind("backup repository 'regions/us/backups/eu/data' with 1 snapshot (", 0), 0u) << p.data[3];
  EXPECT_EQ(p.amounts.at("objects"), 2u);
  EXPECT_EQ(p.amounts.at("versions"), 1u);
  EXPECT_EQ(p.amounts.at("archived"), 1u);
  EXPECT_EQ(p.amounts.at("snapshots"), 1u);
  EXPECT_EQ(p.amounts.at("repositories"), 1u);
  EXPECT_GT(p.amounts.at("backup_bytes"), 0u);

  // The backup region's own preview leaves the repository to its bucket.
  auto us_preview = provider_->PlanDelete("region", "us", us_.attributes);
  ASSERT_TRUE(us_preview.ok()) << us_preview.error().message;
  EXPECT_EQ(us_preview.value().refusal, "");
  EXPECT_TRUE(us_preview.value().data.empty());
  // At apply, with the bucket still there, the region refuses: its delete
  // never removes snapshots itself.
  auto us_early = provider_->Delete("region", "us", us_.attributes);
  ASSERT_FALSE(us_early.ok());
  EXPECT_NE(us_early.error().message.find("with 1 snapshot ("), std::string::npos) << us_early.error().message;
  EXPECT_NE(us_early.error().message.find("of bucket.data; delete bucket.data first"), std::string::npos)
      << us_early.error().message;
  EXPECT_TRUE(fs::exists(repo / "config"));

  auto del = provider_->Delete("bucket", b.id, b.attributes);
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_FALSE(fs::exists(live));
  EXPECT_FALSE(fs::exists(store));
  EXPECT_FALSE(fs::exists(repo));
  EXPECT_FALSE(fs::exists(root / "regions/us/backups/eu/.data.plinth-deleting"));
  ASSERT_TRUE(provider_->Delete("region", "us", us_.attributes).ok());
  ASSERT_TRUE(provider_->Delete("region", "eu", eu_.attributes).ok());
  // Nothing left under the data root.
  EXPECT_TRUE(fs::is_empty(root)) << fs::directory_iterator(root)->path();
}

TEST_F(LocalBackupTest, WithoutForceDestroyBackupsOutliveTheBucketAndHoldTheRegion) {
  ResourceObject b = BackedUpBucket("data", /*force_destroy=*/false);
  const fs::path repo = provider_->data_root() / "regions/us/backups/eu/data";
  FakeSnapshot(repo, std::string(64, 'b'));
  // An empty bucket goes; its repository, holding a snapshot, stays.
  auto preview = provider_->PlanDelete("bucket", b.id, b.attributes);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  EXPECT_EQ(preview.value().refusal, "");
  EXPECT_TRUE(preview.value().data.empty());
  ASSERT_TRUE(provider_->Delete("bucket", b.id, b.attributes).ok());
  EXPECT_TRUE(fs::exists(repo / "config"));

  auto us_preview = provider_->PlanDelete("region", "us", us_.attributes);
  ASSERT_TRUE(us_preview.ok()) << us_preview.error().message;
  EXPECT_NE(us_preview.value().refusal.find("region.us still holds backup repository 'regions/us/backups/eu/data' "
                                            "with 1 snapshot"),
            std::string::npos)
      << us_preview.value().refusal;
  EXPECT_NE(us_preview.value().refusal.find("of a bucket that no longer exists"), std::string::npos);
  auto refused = provider_->Delete("region", "us", us_.attributes);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, us_preview.value().refusal);
  EXPECT_TRUE(fs::exists(repo / "config"));

  // Without snapshots the repository is no data: it goes with the region.
  fs::remove_all(repo / "snapshots");
  us_preview = provider_->PlanDelete("region", "us", us_.attributes);
  ASSERT_TRUE(us_preview.ok());
  EXPECT_EQ(us_preview.value().refusal, "");
  EXPECT_EQ(us_preview.value().data,
            (std::vector<std::string>{"empty backup repository 'regions/us/backups/eu/data'"}));
  ASSERT_TRUE(provider_->Delete("region", "us", us_.attributes).ok());
  EXPECT_FALSE(fs::exists(provider_->data_root() / "regions/us"));
}

TEST_F(LocalBackupTest, AnEmptyRepositoryGoesWithItsBucket) {
  ResourceObject b = BackedUpBucket("data", /*force_destroy=*/false);
  const fs::path repo = provider_->data_root() / "regions/us/backups/eu/data";
  auto preview = provider_->PlanDelete("bucket", b.id, b.attributes);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  EXPECT_EQ(preview.value().data,
            (std::vector<std::string>{"empty backup repository 'regions/us/backups/eu/data'"}));
  ASSERT_TRUE(provider_->Delete("bucket", b.id, b.attributes).ok());
  EXPECT_FALSE(fs::exists(repo));
  // A region holding a file plinth does not manage refuses, naming it.
  Spit(provider_->data_root() / "regions/us/notes.txt", "mine");
  auto us = provider_->PlanDelete("region", "us", us_.attributes);
  ASSERT_TRUE(us.ok());
  EXPECT_EQ(us.value().refusal,
            "region.us still holds 1 file (4 B) in 'regions/us' that plinth does not manage; remove it first");
  EXPECT_FALSE(provider_->Delete("region", "us", us_.attributes).ok());
  EXPECT_TRUE(fs::exists(provider_->data_root() / "regions/us/notes.txt"));
}

TEST_F(LocalProviderTest, DownRegionRefusesNewBuckets) {
  ResourceObject eu = MustCreate("region", Region("eu", {{"down", Value::Bool(true)}}));
  EXPECT_TRUE(fs::exists(provider_->data_root() / "regions/eu/DOWN"));
  auto b = provider_->Create("bucket", Bucket("x", Value::Object(eu.attributes)));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "region 'eu' is down");
  EXPECT_FALSE(b.error().retryable);
  EXPECT_FALSE(fs::exists(provider_->data_root() / "regions/eu/buckets/x"));
}

TEST_F(LocalProviderTest, BucketInMissingRegionFails) {
  auto b = provider_->Create("bucket", Bucket("x", Value::Object({{"name", Value::String("nowhere")}})));
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.error().message.find("region 'nowhere' does not exist"), std::string::npos)
      << b.error().message;
  EXPECT_FALSE(fs::exists(provider_->data_root() / "regions/nowhere"));
}

// ------------------------------------------------------------------ markers

TEST_F(LocalProviderTest, MarkerLifecycleAndDrift) {
  ResourceObject m = MustCreate("marker", Marker("proofs/a.txt", "hello"));
  fs::path file = provider_->data_root() / "proofs/a.txt";
  EXPECT_EQ(m.id, "proofs/a.txt");
  EXPECT_EQ(Slurp(file), "hello");

  auto read = provider_->Read("marker", m.id, m.attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_EQ(Str(read.value()->attributes, "content"), "hello");

  Spit(file, "edited behind plinth's back");
  read = provider_->Read("marker", m.id, m.attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_EQ(Str(read.value()->attributes, "content"), "edited behind plinth's back");

  ValueMap planned = m.attributes;
  planned["content"] = Value::String("v2");
  auto up = provider_->Update("marker", m.id, m.attributes, planned);
  ASSERT_TRUE(up.ok()) << up.error().message;
  EXPECT_EQ(Slurp(file), "v2");

  ASSERT_TRUE(provider_->Delete("marker", m.id, m.attributes).ok());
  EXPECT_FALSE(fs::exists(file));
  read = provider_->Read("marker", m.id, m.attributes);
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read.value().has_value());
  EXPECT_TRUE(provider_->Delete("marker", m.id, m.attributes).ok()) << "delete is idempotent";
}

TEST_F(LocalProviderTest, MarkerPathsCannotEscapeTheRoot) {
  fs::create_directories(parent_ / "outside");
  allowed_outside_.push_back("outside");
  fs::create_directories(provider_->data_root());
  fs::create_symlink(parent_ / "outside", provider_->data_root() / "link");
  for (const std::string p : {"../x", "/etc/x", "a/../../x", "..", ".", ".plinth-local/regions/eu.json"}) {
    EXPECT_FALSE(provider_->Validate("marker", Marker(p, "x")).empty()) << p;
    auto c = provider_->Create("marker", Marker(p, "x"));
    EXPECT_FALSE(c.ok()) << p;
    EXPECT_FALSE(provider_->Delete("marker", p, Marker(p, "x")).ok()) << p;
  }
  // A symlink inside the root that points out of it is caught at create.
  auto c = provider_->Create("marker", Marker("link/x", "x"));
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("outside the data root"), std::string::npos) << c.error().message;
  EXPECT_TRUE(fs::is_empty(parent_ / "outside"));
  EXPECT_FALSE(fs::exists(parent_ / "x"));
  // A '..' that stays inside is fine and normalised.
  ResourceObject m = MustCreate("marker", Marker("a/../b.txt", "x"));
  EXPECT_EQ(m.id, "b.txt");
  EXPECT_TRUE(fs::exists(provider_->data_root() / "b.txt"));
}

TEST_F(LocalProviderTest, SensitivePathsStayOutOfErrors) {
  ValueMap m = Marker("../secret-name", "x");
  m["path"] = m["path"].WithSensitive();
  auto c = provider_->Create("marker", m);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message.find("secret-name"), std::string::npos) << c.error().message;
  for (const auto& e : provider_->Validate("marker", m))
    EXPECT_EQ(e.find("secret-name"), std::string::npos) << e;
}

TEST_F(LocalProviderTest, ConcurrentMarkerCreates) {
  constexpr int kThreads = 8, kPerThread = 25;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string n = std::to_string(t * kPerThread + i);
        // Shared directories on purpose: concurrent mkdir of the same parents.
        auto r = provider_->Create("marker", Marker("m/" + std::to_string(i % 5) + "/" + n, "content " + n));
        if (!r.ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(provider_->data_root() / "m")) {
    if (!e.is_regular_file()) continue;
    ++files;
    std::string n = e.path().filename().string();
    ASSERT_NE(n[0], '.') << "temp file left behind: " << e.path();
    EXPECT_EQ(Slurp(e.path()), "content " + n);
  }
  EXPECT_EQ(files, kThreads * kPerThread);
}

// ---------------------------------------------------------------- planning

TEST_F(LocalProviderTest, PlanChangeOnCreateFillsDefaultsAndComputes) {
  PlanRequest req{"marker", nullptr, {{"path", Value::String("x")}}};
  auto plan = provider_->PlanChange(req);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(Str(plan.value().planned, "content"), "");
  EXPECT_EQ(Str(plan.value().planned, "id"), "x");
  EXPECT_TRUE(plan.value().replace_because.empty());

  // A region whose root the user left open: its path is unknown until apply.
  auto region = provider_->PlanChange({"region", nullptr, Region("eu")});
  ASSERT_TRUE(region.ok());
  EXPECT_TRUE(region.value().planned.at("path").is_unknown());
  EXPECT_TRUE(region.value().planned.at("root").is_unknown());
  EXPECT_EQ(Str(region.value().planned, "id"), "eu");
  // With a root, the path is known now.
  region = provider_->PlanChange({"region", nullptr, Region("eu", {{"root", Value::String("r/eu")}})});
  ASSERT_TRUE(region.ok());
  EXPECT_EQ(Str(region.value().planned, "path"), (provider_->data_root() / "r/eu").string());

  // A bucket in a region not created yet: path unknown.
  auto bucket = provider_->PlanChange(
      {"bucket", nullptr,
       Bucket("b",
              Value::Object({{"name", Value::String("eu")}, {"path", Value::Unknown(Type::String())}}))});
  ASSERT_TRUE(bucket.ok());
  EXPECT_TRUE(bucket.value().planned.at("path").is_unknown());
  EXPECT_EQ(Str(bucket.value().planned, "encryption"), "none");
  EXPECT_EQ(bucket.value().planned.at("alert_at").as_number(), 80);
  EXPECT_EQ(Str(bucket.value().planned, "id"), "eu/b");
}

TEST_F(LocalProviderTest, PlanChangeNamesForceNewAttributes) {
  ResourceObject m = MustCreate("marker", Marker("a.txt", "one"));

  auto same = provider_->PlanChange({"marker", &m.attributes, Marker("a.txt", "two")});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same.value().replace_because.empty()) << "content changes in place";
  EXPECT_EQ(Str(same.value().planned, "id"), "a.txt");

  auto moved = provider_->PlanChange({"marker", &m.attributes, Marker("b.txt", "one")});
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved.value().replace_because, std::vector<std::string>{"path"});
  EXPECT_EQ(Str(moved.value().planned, "id"), "b.txt");

  ValueMap triggered = Marker("a.txt", "one");
  triggered["triggers"] = Value::Object({{"v", Value::String("2")}});
  auto t = provider_->PlanChange({"marker", &m.attributes, triggered});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t.value().replace_because, std::vector<std::string>{"triggers"});

  // Unknown in a force-new attribute: a possible change, named.
  ValueMap unknown = Marker("a.txt", "one");
  unknown["path"] = Value::Unknown(Type::String());
  auto u = provider_->PlanChange({"marker", &m.attributes, unknown});
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u.value().replace_because, std::vector<std::string>{"path"});
  EXPECT_TRUE(u.value().planned.at("id").is_unknown());

  // A region's root left out of the configuration keeps the computed one.
  ResourceObject eu = MustCreate("region", Region("eu"));
  auto r = provider_->PlanChange({"region", &eu.attributes, Region("eu", {{"down", Value::Bool(true)}}), {"root"}});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().replace_because.empty());
  EXPECT_EQ(Str(r.value().planned, "root"), "regions/eu");
  EXPECT_EQ(Str(r.value().planned, "path"), Str(eu.attributes, "path"));
  // Configured to a value only apply can know: a possible move, named.
  auto unknown_root = provider_->PlanChange({"region", &eu.attributes, Region("eu")});
  ASSERT_TRUE(unknown_root.ok());
  EXPECT_EQ(unknown_root.value().replace_because, std::vector<std::string>{"root"});
  EXPECT_TRUE(unknown_root.value().planned.at("root").is_unknown());
  // On create, a root left out gets its default now, so the path is known in the plan.
  auto fresh = provider_->PlanChange({"region", nullptr, Region("ap"), {"root"}});
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(Str(fresh.value().planned, "root"), "regions/ap");
  EXPECT_NE(Str(fresh.value().planned, "path").find("/regions/ap"), std::string::npos);
  auto moved_root =
      provider_->PlanChange({"region", &eu.attributes, Region("eu", {{"root", Value::String("elsewhere")}})});
  ASSERT_TRUE(moved_root.ok());
  EXPECT_EQ(moved_root.value().replace_because, std::vector<std::string>{"root"});

  // A bucket moved to another region is replaced; a change to the region's labels is not a move.
  ResourceObject us = MustCreate("region", Region("us", {{"port_base", Value::Number(30000)}}));
  ResourceObject b = MustCreate("bucket", Bucket("d", Value::Object(eu.attributes)));
  ValueMap relabelled = eu.attributes;
  relabelled["labels"] = Value::Object({{"x", Value::String("y")}});
  auto keep = provider_->PlanChange({"bucket", &b.attributes, Bucket("d", Value::Object(relabelled))});
  ASSERT_TRUE(keep.ok());
  EXPECT_TRUE(keep.value().replace_because.empty());
  auto move = provider_->PlanChange({"bucket", &b.attributes, Bucket("d", Value::Object(us.attributes))});
  ASSERT_TRUE(move.ok());
  EXPECT_EQ(move.value().replace_because, std::vector<std::string>{"region"});
  EXPECT_EQ(Str(move.value().planned, "id"), "us/d");
}

// ------------------------------------------------------------------ import

TEST_F(LocalProviderTest, ImportReconstructsFromDisk) {
  ResourceObject eu = MustCreate("region", Region("eu", {{"port_base", Value::Number(25000)}}));
  ResourceObject b = MustCreate("bucket", Bucket("d", Value::Object(eu.attributes),
                                                 {{"labels", Value::Object({{"k", Value::String("v")}})}}));
  ResourceObject m = MustCreate("marker", Marker("x/y", "data"));

  auto ri = provider_->Import("region", "eu");
  ASSERT_TRUE(ri.ok()) << ri.error().message;
  EXPECT_EQ(ri.value().attributes.at("port_base").as_number(), 25000);
  EXPECT_EQ(Str(ri.value().attributes, "path"), Str(eu.attributes, "path"));
  EXPECT_EQ(Str(ri.value().attributes, "address"), "region.eu");

  auto bi = provider_->Import("bucket", "eu/d");
  ASSERT_TRUE(bi.ok()) << bi.error().message;
  EXPECT_EQ(bi.value().id, "eu/d");
  EXPECT_TRUE(bi.value().attributes.at("labels").Equals(b.attributes.at("labels")));
  EXPECT_TRUE(bi.value().attributes.at("region").Equals(b.attributes.at("region")));
  EXPECT_EQ(Str(bi.value().attributes, "path"), Str(b.attributes, "path"));

  auto mi = provider_->Import("marker", "x/y");
  ASSERT_TRUE(mi.ok()) << mi.error().message;
  EXPECT_EQ(Str(mi.value().attributes, "content"), "data");
  EXPECT_EQ(mi.value().id, m.id);

  // A plain directory made by hand imports with the schema's defaults.
  fs::create_directories(provider_->data_root() / "regions/eu/buckets/handmade");
  auto hi = provider_->Import("bucket", "eu/handmade");
  ASSERT_TRUE(hi.ok()) << hi.error().message;
  EXPECT_EQ(Str(hi.value().attributes, "encryption"), "none");
  // Its first update gives it a key (the state has none to keep).
  ValueMap hconfig = Bucket("handmade", Value::Object(eu.attributes));
  auto hplan = provider_->PlanChange(PlanRequest{"bucket", &hi.value().attributes, hconfig});
  ASSERT_TRUE(hplan.ok()) << hplan.error().message;
  auto hup = provider_->Update("bucket", "eu/handmade", hi.value().attributes, hplan.value().planned);
  ASSERT_TRUE(hup.ok()) << hup.error().message;
  EXPECT_EQ(Str(hup.value().attributes, "key").rfind("pk1:", 0), 0u);
  // The imported bucket keeps the key its metadata holds.
  EXPECT_EQ(Str(bi.value().attributes, "key"), Str(b.attributes, "key"));

  EXPECT_FALSE(provider_->Import("bucket", "eu/none").ok());
  EXPECT_FALSE(provider_->Import("region", "none").ok());
  EXPECT_FALSE(provider_->Import("marker", "nope").ok());
  EXPECT_FALSE(provider_->Import("marker", "../x").ok());
  EXPECT_FALSE(provider_->Import("bucket", "no-slash").ok());
}

TEST_F(LocalProviderTest, UnknownTypeIsAnError) {
  EXPECT_FALSE(provider_->Create("vm", {}).ok());
  EXPECT_FALSE(provider_->PlanChange({"vm", nullptr, {}}).ok());
  EXPECT_FALSE(provider_->Validate("vm", {}).empty());
}

// ------------------------------------------------------------ the metadata file is not trusted

TEST_F(LocalProviderTest, RefreshNeverAdoptsSettingsAJobWroteIntoTheMetadata) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  ResourceObject b = MustCreate("bucket", Bucket("data", Value::Object(eu.attributes)));
  fs::path meta = provider_->data_root() / "regions/eu/buckets/data/.plinth-bucket.json";
  // Untouched, the file agrees with the state: every setting reads back.
  auto read = provider_->Read("bucket", b.id, b.attributes);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_TRUE(read.value()->attributes.at("versioning").Equals(Value::Bool(false)));
  // A writer of the bucket grants itself admin, adds an expiry rule and opts in
  // to force_destroy.
  std::string text = Slurp(meta);
  size_t at = text.find("\"grant\": {}");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, std::string("\"grant\": {}").size(), "\"grant\": {\"intruder\": {\"access\": \"admin\"}}");
  at = text.find("\"force_destroy\": false");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, std::string("\"force_destroy\": false").size(), "\"force_destroy\": true");
  Spit(meta, text);
  read = provider_->Read("bucket", b.id, b.attributes);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read.value());
  const ValueMap& a = read.value()->attributes;
  // Drift (every setting unset, so apply rewrites the file), never the file's values.
  EXPECT_TRUE(a.at("grant").is_null());
  EXPECT_TRUE(a.at("force_destroy").is_null());
  EXPECT_TRUE(a.at("versioning").is_null());
  EXPECT_EQ(Str(a, "key"), Str(b.attributes, "key"));
  EXPECT_EQ(Str(a, "id"), "eu/data");
  // The update that the drift plans rewrites the file; then it agrees again.
  ValueMap config = Bucket("data", Value::Object(eu.attributes));
  auto plan = provider_->PlanChange(PlanRequest{"bucket", &a, config});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto updated = provider_->Update("bucket", b.id, a, plan.value().planned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_TRUE(updated.value().attributes.at("grant").Equals(Value::Object({})));
  EXPECT_TRUE(updated.value().attributes.at("force_destroy").Equals(Value::Bool(false)));
  EXPECT_EQ(Str(updated.value().attributes, "key"), Str(b.attributes, "key"));
  EXPECT_EQ(Slurp(meta).find("intruder"), std::string::npos);
}

TEST_F(LocalProviderTest, AForcedDeleteNeverFollowsASymlinkedStorageDirectory) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  ResourceObject b =
      MustCreate("bucket", Bucket("data", Value::Object(eu.attributes), {{"force_destroy", Value::Bool(true)}}));
  const fs::path root = provider_->data_root();
  Spit(root / "elsewhere/objects/keep/precious.sealed", "not this bucket's");
  fs::create_directories(root / "regions/eu/.plinth-storage");
  fs::create_directory_symlink(root / "elsewhere", root / "regions/eu/.plinth-storage/data");
  auto preview = provider_->PlanDelete("bucket", b.id, b.attributes);
  ASSERT_FALSE(preview.ok());
  EXPECT_NE(preview.error().message.find("'regions/eu/.plinth-storage/data' is or lies behind a symbolic link"),
            std::string::npos)
      << preview.error().message;
  auto del = provider_->Delete("bucket", b.id, b.attributes);
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(Slurp(root / "elsewhere/objects/keep/precious.sealed"), "not this bucket's");
}

TEST_F(LocalProviderTest, AnUpdateNeverWritesThroughASymlinkedBucketDirectory) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  ResourceObject b = MustCreate("bucket", Bucket("data", Value::Object(eu.attributes)));
  const fs::path root = provider_->data_root();
  fs::create_directories(root / "elsewhere");
  fs::remove_all(root / "regions/eu/buckets/data");
  fs::create_directory_symlink(root / "elsewhere", root / "regions/eu/buckets/data");
  ValueMap config = Bucket("data", Value::Object(eu.attributes), {{"versioning", Value::Bool(true)}});
  auto plan = provider_->PlanChange(PlanRequest{"bucket", &b.attributes, config});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto updated = provider_->Update("bucket", b.id, b.attributes, plan.value().planned);
  ASSERT_FALSE(updated.ok());
  EXPECT_NE(updated.error().message.find("is a symbolic link, which plinth does not follow"), std::string::npos)
      << updated.error().message;
  EXPECT_TRUE(fs::is_empty(root / "elsewhere"));
}

TEST_F(LocalBackupTest, ABucketDeleteUsesTheStatesRepositoryNotTheMetadatas) {
  ResourceObject victim = BackedUpBucket("victim", /*force_destroy=*/false);
  const fs::path repo = provider_->data_root() / "regions/us/backups/eu/victim";
  ASSERT_TRUE(fs::exists(repo / "config"));
  FakeSnapshot(repo, std::string(64, 'c'));
  ResourceObject attacker = MustCreate(
      "bucket", Bucket("attacker", Value::Object(eu_.attributes), {{"force_destroy", Value::Bool(true)}}));
  // The attacker's metadata claims the victim's name and backup block.
  fs::path meta = provider_->data_root() / "regions/eu/buckets/attacker/.plinth-bucket.json";
  fs::path victim_meta = provider_->data_root() / "regions/eu/buckets/victim/.plinth-bucket.json";
  std::string text = Slurp(victim_meta);
  Spit(meta, text);
  auto preview = provider_->PlanDelete("bucket", attacker.id, attacker.attributes);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  for (const std::string& line : preview.value().data) EXPECT_EQ(line.find("victim"), std::string::npos) << line;
  auto del = provider_->Delete("bucket", attacker.id, attacker.attributes);
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_TRUE(fs::exists(repo / "config"));
  EXPECT_TRUE(fs::exists(repo / "snapshots" / std::string(64, 'c')));
  (void)victim;
}

TEST_F(LocalBackupTest, CollidingRegionAndBucketNamesGetTheirOwnRepositories) {
  // region r["a"] + bucket b["c"] and region r["a-b"] + bucket c (instance
  // names r-a, b-c, r-a-b, c): one repository "r-a-b-c" in the old layout,
  // so the second bucket could never back up.
  ResourceObject ra = MustCreate("region", Region("r-a"));
  ResourceObject rab = MustCreate("region", Region("r-a-b", {{"port_base", Value::Number(22000)}}));
  ResourceObject us = MustCreate("region", Region("us", {{"port_base", Value::Number(21000)}}));
  auto backup = Value::Object(
      {{"every", Value::Duration(86400000.0)}, {"to", Value::Object(us.attributes)}, {"keep", Value()}});
  ResourceObject one = MustCreate("bucket", Bucket("b-c", Value::Object(ra.attributes), {{"backup", backup}}));
  ResourceObject two = MustCreate("bucket", Bucket("c", Value::Object(rab.attributes), {{"backup", backup}}));
  ASSERT_FALSE(one.id.empty());
  ASSERT_FALSE(two.id.empty());
  const fs::path root = provider_->data_root();
  EXPECT_TRUE(fs::exists(root / "regions/us/backups/r-a/b-c/config"));
  EXPECT_TRUE(fs::exists(root / "regions/us/backups/r-a-b/c/config"));
  EXPECT_FALSE(two.attributes.at("backup").is_null());
  // The region's delete preview names each repository's own bucket.
  FakeSnapshot(root / "regions/us/backups/r-a-b/c", std::string(64, 'd'));
  auto preview = provider_->PlanDelete("region", "us", us.attributes);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  EXPECT_NE(preview.value().refusal.find("'regions/us/backups/r-a-b/c' with 1 snapshot"), std::string::npos)
      << preview.value().refusal;
  EXPECT_NE(preview.value().refusal.find("of bucket.c;"), std::string::npos) << preview.value().refusal;
}

TEST_F(LocalProviderTest, ACreateThatFailedHalfWayIsCleanedUpOrAdopted) {
  ResourceObject eu = MustCreate("region", Region("eu"));
  ResourceObject us = MustCreate("region", Region("us", {{"port_base", Value::Number(21000)}}));
  const fs::path root = provider_->data_root();
  // The backup repository cannot be made (a file stands where its region's
  // directory of repositories goes): the create fails and leaves nothing.
  Spit(root / "regions/us/backups/eu", "in the way");
  auto backup = Value::Object(
      {{"every", Value::Duration(86400000.0)}, {"to", Value::Object(us.attributes)}, {"keep", Value()}});
  ValueMap config = Bucket("data", Value::Object(eu.attributes), {{"backup", backup}});
  auto plan = provider_->PlanChange(PlanRequest{"bucket", nullptr, config});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto failed = provider_->Create("bucket", plan.value().planned);
  ASSERT_FALSE(failed.ok());
  EXPECT_FALSE(fs::exists(root / "regions/eu/buckets/data"));
  fs::remove(root / "regions/us/backups/eu");
  auto again = provider_->Create("bucket", plan.value().planned);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(fs::exists(root / "regions/us/backups/eu/data/config"));

  // A create killed after writing the metadata (the state never heard of
  // the bucket): the next create adopts it, with its key.
  ValueMap plain = Bucket("half", Value::Object(eu.attributes));
  auto plain_plan = provider_->PlanChange(PlanRequest{"bucket", nullptr, plain});
  ASSERT_TRUE(plain_plan.ok());
  auto first = provider_->Create("bucket", plain_plan.value().planned);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto adopted = provider_->Create("bucket", plain_plan.value().planned);
  ASSERT_TRUE(adopted.ok()) << adopted.error().message;
  EXPECT_EQ(Str(adopted.value().attributes, "key"), Str(first.value().attributes, "key"));
  // Not when it holds objects: that is somebody's bucket.
  Spit(root / "regions/eu/buckets/half/obj.bin", "data");
  auto refused = provider_->Create("bucket", plain_plan.value().planned);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("already exists"), std::string::npos) << refused.error().message;
}

}  // namespace
}  // namespace plinth::runtime
