// The s3 provider without a store: schema, validation, planning and the
// bucket policy it generates. (tests/unit/s3_store_test.cpp runs it against
// a real Ceph RADOS Gateway.)
#include "runtime/providers/s3/provider.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "runtime/providers/s3/schema.h"
#include "tests/support/s3_config.h"

namespace plinth::runtime {
namespace {

using nlohmann::json;
constexpr double kDay = 86400000.0;

class NoStore : public s3::Transport {
 public:
  s3::HttpResponse Send(const s3::HttpRequest&) override {
    ++calls;
    return {0, {}, "", "no store in this test", false};
  }
  int calls = 0;
};

class S3ProviderTest : public ::testing::Test {
 protected:
  S3ProviderTest()
      : transport(std::make_shared<NoStore>()),
        provider(S3Config{"http://127.0.0.1:7480", "us-east-1", "AK", "SK", true}, transport,
                 [](std::chrono::milliseconds) {}) {}

  static ValueMap Config(const std::string& name, ValueMap extra = {}) {
    return plinth::testing::S3BucketConfig(name, std::move(extra));
  }
  PlanResponse MustPlan(const ValueMap& config, const ValueMap* prior = nullptr) {
    auto r = provider.PlanChange(PlanRequest{"s3_bucket", prior, config, {"bucket"}});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value() : PlanResponse{};
  }

  std::shared_ptr<NoStore> transport;
  S3Provider provider;
};

TEST_F(S3ProviderTest, Schema) {
  EXPECT_EQ(provider.Name(), "s3");
  EXPECT_EQ(S3ProviderSchemas().ProviderName(), "s3");
  auto schemas = S3ProviderSchemas().ResourceSchemas();
  ASSERT_EQ(schemas.size(), 1u);
  const ResourceSchema& s = schemas[0];
  EXPECT_EQ(s.type, "s3_bucket");
  EXPECT_EQ(s.provider, "s3");
  for (const char* a : {"bucket", "versioning", "policy", "tags", "encryption", "enforce_encryption", "arn",
                        "endpoint"})
    EXPECT_NE(s.body.FindAttribute(a), nullptr) << a;
  EXPECT_TRUE(s.body.FindAttribute("bucket")->force_new);
  EXPECT_EQ(s.body.FindAttribute("bucket")->mode, AttrMode::OptionalComputed);
  EXPECT_EQ(s.body.FindAttribute("arn")->mode, AttrMode::Computed);
  ASSERT_NE(s.body.FindBlock("lifecycle_rule"), nullptr);
  ASSERT_NE(s.body.FindBlock("grant"), nullptr);
  EXPECT_TRUE(s.body.FindBlock("grant")->labeled);
  EXPECT_NE(s.body.FindBlock("lifecycle_rule")->body->FindAttribute("abort_incomplete_multipart_after"), nullptr);
}

TEST_F(S3ProviderTest, PlanFillsDefaultsNameAndComputedValues) {
  PlanResponse p = MustPlan(Config("datasets"));
  EXPECT_EQ(p.planned.at("bucket").as_string(), "datasets");
  EXPECT_EQ(p.planned.at("id").as_string(), "datasets");
  EXPECT_EQ(p.planned.at("arn").as_string(), "arn:aws:s3:::datasets");
  EXPECT_EQ(p.planned.at("endpoint").as_string(), "http://127.0.0.1:7480/datasets");
  EXPECT_FALSE(p.planned.at("versioning").as_bool());
  EXPECT_EQ(p.planned.at("encryption").as_string(), "none");
  EXPECT_FALSE(p.planned.at("enforce_encryption").as_bool());
  EXPECT_TRUE(p.planned.at("grant").as_object().empty());
  EXPECT_TRUE(p.planned.at("lifecycle_rule").as_object().empty());
  EXPECT_TRUE(p.replace_because.empty());
  EXPECT_EQ(transport->calls, 0) << "planning contacted the store";

  PlanResponse named = MustPlan(Config("x", {{"bucket", Value::String("real-name")}}));
  EXPECT_EQ(named.planned.at("bucket").as_string(), "real-name");
}

TEST_F(S3ProviderTest, DurationsRoundUpToDaysAndEmptyValuesAreNone) {
  ValueMap rule = {{"expire_after", Value::Duration(36 * 3600000.0)},
                   {"noncurrent_expire_after", Value::Duration(1)},
                   {"abort_incomplete_multipart_after", Value::Duration(7 * kDay)}};
  PlanResponse p = MustPlan(Config("b1x", {{"lifecycle_rule", Value::Object({{"r", Value::Object(rule)}})},
                                           {"tags", Value::Object({})},
                                           {"policy", Value::String("")}}));
  const ValueMap& r = p.planned.at("lifecycle_rule").as_object().at("r").as_object();
  EXPECT_EQ(r.at("expire_after").as_number(), 2 * kDay);
  EXPECT_EQ(r.at("noncurrent_expire_after").as_number(), kDay);
  EXPECT_EQ(r.at("abort_incomplete_multipart_after").as_number(), 7 * kDay);
  EXPECT_EQ(r.at("prefix").as_string(), "");
  EXPECT_TRUE(p.planned.at("tags").is_null());
  EXPECT_TRUE(p.planned.at("policy").is_null());
}

TEST_F(S3ProviderTest, BucketIsForceNewAndAnUnsetOneKeepsItsName) {
  PlanResponse first = MustPlan(Config("data"));
  ValueMap prior = first.planned;
  // Unset `bucket` on a later plan: the name chosen before, no replacement.
  PlanResponse again = MustPlan(Config("data"), &prior);
  EXPECT_TRUE(again.replace_because.empty());
  EXPECT_EQ(again.planned.at("bucket").as_string(), "data");
  PlanResponse renamed = MustPlan(Config("data", {{"bucket", Value::String("other-name")}}), &prior);
  EXPECT_EQ(renamed.replace_because, std::vector<std::string>{"bucket"});
  PlanResponse unknown = MustPlan(Config("data", {{"bucket", Value::Unknown(Type::String())}}), &prior);
  EXPECT_TRUE(unknown.replace_because.empty()) << "unset optional-computed is not a change";
  auto configured_unknown = provider.PlanChange(
      PlanRequest{"s3_bucket", &prior, Config("data", {{"bucket", Value::Unknown(Type::String())}}), {}});
  ASSERT_TRUE(configured_unknown.ok());
  EXPECT_EQ(configured_unknown.value().replace_because, std::vector<std::string>{"bucket"});
}

TEST_F(S3ProviderTest, Validate) {
  auto errs = provider.Validate("s3_bucket", Config("My_Data"));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "bucket name 'My_Data' may hold only lowercase letters, digits, '.' and '-'; set 'bucket' to "
                     "a valid name");
  EXPECT_TRUE(provider.Validate("s3_bucket", Config("My_Data", {{"bucket", Value::String("my-data")}})).empty());
  EXPECT_EQ(provider.Validate("s3_bucket", Config("ab")).size(), 1u);
  EXPECT_EQ(provider.Validate("s3_bucket", Config("10.0.0.1")).size(), 1u);
  EXPECT_EQ(provider.Validate("bucket", Config("abc")),
            std::vector<std::string>{"the s3 provider has no resource type 'bucket'"});

  auto bad_policy = provider.Validate("s3_bucket", Config("abc", {{"policy", Value::String("{not json")}}));
  EXPECT_EQ(bad_policy, std::vector<std::string>{"policy is not a JSON object"});
  auto reserved = provider.Validate(
      "s3_bucket", Config("abc", {{"policy", Value::String(R"({"Statement": {"Sid": "PlinthX"}})")}}));
  ASSERT_EQ(reserved.size(), 1u);
  EXPECT_NE(reserved[0].find("reserves"), std::string::npos);

  ValueMap idle = {{"prefix", Value::String("x/")}};
  ValueMap half = {{"transition_after", Value::Duration(kDay)}};
  ValueMap zero = {{"expire_after", Value::Duration(0)}};
  auto rules = provider.Validate(
      "s3_bucket", Config("abc", {{"lifecycle_rule", Value::Object({{"idle", Value::Object(idle)},
                                                                    {"half", Value::Object(half)},
                                                                    {"zero", Value::Object(zero)}})}}));
  ASSERT_EQ(rules.size(), 3u);
  EXPECT_NE(rules[0].find("transition_after and transition_storage_class go together"), std::string::npos);
  EXPECT_NE(rules[1].find("does nothing"), std::string::npos);
  EXPECT_NE(rules[2].find("greater than zero"), std::string::npos);

  auto principals = provider.Validate(
      "s3_bucket",
      Config("abc", {{"grant", Value::Object({{"bad\"name", Value::Object({{"access", Value::String("read")}})},
                                              {"tenant$user", Value::Object({{"access", Value::String("read")}})}})}}));
  ASSERT_EQ(principals.size(), 1u);
  EXPECT_NE(principals[0].find("bad\"name"), std::string::npos);
}

TEST_F(S3ProviderTest, GeneratedPolicy) {
  EXPECT_EQ(S3Provider::PolicyFor("b", Config("b")), "");
  ValueMap grants = {{"alice", Value::Object({{"access", Value::String("read")}})},
                     {"bob", Value::Object({{"access", Value::String("read")}})},
                     {"ops$carol", Value::Object({{"access", Value::String("admin")}})}};
  std::string user = R"({"Version": "2012-10-17", "Statement": [{"Sid": "Mine", "Effect": "Allow",
      "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/public/*"}]})";
  json doc = json::parse(S3Provider::PolicyFor(
      "b", Config("b", {{"grant", Value::Object(grants)},
                        {"enforce_encryption", Value::Bool(true)},
                        {"policy", Value::String(user)}})));
  ASSERT_EQ(doc["Statement"].size(), 4u) << doc.dump(2);
  EXPECT_EQ(doc["Version"], "2012-10-17");
  EXPECT_EQ(doc["Statement"][0]["Sid"], "Mine");
  const json& read = doc["Statement"][1];
  EXPECT_EQ(read["Sid"], "PlinthGrantRead");
  EXPECT_EQ(read["Principal"]["AWS"], json({"arn:aws:iam:::user/alice", "arn:aws:iam:::user/bob"}));
  EXPECT_EQ(read["Resource"], json({"arn:aws:s3:::b", "arn:aws:s3:::b/*"}));
  EXPECT_NE(std::find(read["Action"].begin(), read["Action"].end(), "s3:GetObject"), read["Action"].end());
  EXPECT_EQ(std::find(read["Action"].begin(), read["Action"].end(), "s3:PutObject"), read["Action"].end());
  EXPECT_EQ(doc["Statement"][2]["Principal"]["AWS"], json({"arn:aws:iam::ops:user/carol"}));
  EXPECT_EQ(doc["Statement"][2]["Action"], json({"s3:*"}));
  const json& enforce = doc["Statement"][3];
  EXPECT_EQ(enforce["Sid"], "PlinthEnforceEncryption");
  EXPECT_EQ(enforce["Effect"], "Deny");
  EXPECT_EQ(enforce["Action"], "s3:PutObject");
  EXPECT_EQ(enforce["Condition"]["Null"]["s3:x-amz-server-side-encryption"], "true");
}

TEST_F(S3ProviderTest, StoreErrorsAreRetryableAndCarryNoSecret) {
  PlanResponse p = MustPlan(Config("abc"));
  auto created = provider.Create("s3_bucket", p.planned);
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(created.error().retryable);
  EXPECT_EQ(created.error().message.rfind("cannot check for bucket 'abc': ConnectionFailed", 0), 0u)
      << created.error().message;
  EXPECT_EQ(created.error().message.find("SK"), std::string::npos);

  ValueMap unknown = p.planned;
  unknown["versioning"] = Value::Unknown(Type::Bool());
  auto deferred = provider.Create("s3_bucket", unknown);
  ASSERT_FALSE(deferred.ok());
  EXPECT_EQ(deferred.error().message, "s3_bucket attribute 'versioning' is not known at apply time");
}

// A store with one bucket "b" holding object versions, for deletes:
// HeadBucket, ListObjectVersions (one page), DeleteObject by version,
// DeleteBucket (BucketNotEmpty while any version is left).
class VersionStore : public s3::Transport {
 public:
  struct Entry {
    std::string key, version;
    bool latest = true, marker = false;
    uint64_t size = 0;
  };
  s3::HttpResponse Send(const s3::HttpRequest& req) override {
    std::lock_guard lock(mu);
    std::string rest = req.url.substr(std::string("http://127.0.0.1:7480/").size());
    std::string query;
    if (size_t q = rest.find('?'); q != std::string::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    std::string bucket = rest.substr(0, rest.find('/'));
    std::string key = rest.find('/') == std::string::npos ? "" : rest.substr(rest.find('/') + 1);
    if (!exists || bucket != "b") return {404, {}, "<Error><Code>NoSuchBucket</Code></Error>", "", false};
    if (req.method == "HEAD") return {200, {}, "", "", false};
    if (req.method == "GET" && query.find("versions") != std::string::npos) {
      ++listings;
      std::string xml = "<ListVersionsResult>";
      for (const Entry& e : entries) {
        std::string tag = e.marker ? "DeleteMarker" : "Version";
        xml += "<" + tag + "><Key>" + e.key + "</Key><VersionId>" + e.version + "</VersionId><IsLatest>" +
               (e.latest ? "true" : "false") + "</IsLatest><Size>" + std::to_string(e.size) + "</Size></" + tag + ">";
      }
      return {200, {}, xml + "<IsTruncated>false</IsTruncated></ListVersionsResult>", "", false};
    }
    if (req.method == "DELETE" && !key.empty()) {
      std::string version = query.substr(query.find("versionId=") + 10);
      deleted.push_back(key + "@" + version);
      std::erase_if(entries, [&](const Entry& e) { return e.key == key && e.version == version; });
      return {204, {}, "", "", false};
    }
    if (req.method == "DELETE") {
      if (!entries.empty()) return {409, {}, "<Error><Code>BucketNotEmpty</Code></Error>", "", false};
      exists = false;
      return {204, {}, "", "", false};
    }
    return {501, {}, "<Error><Code>NotImplemented</Code></Error>", "", false};
  }
  std::mutex mu;
  bool exists = true;
  std::vector<Entry> entries = {{"a.csv", "v2", true, false, 100},
                                {"a.csv", "v1", false, false, 40},
                                {"gone.csv", "v4", true, true, 0},
                                {"gone.csv", "v3", false, false, 7},
                                {"plain.txt", "null", true, false, 5}};
  std::vector<std::string> deleted;
  int listings = 0;
};

TEST(S3DeleteTest, ThePlanSaysWhatADeleteRemovesAndForceDestroyRemovesIt) {
  auto store = std::make_shared<VersionStore>();
  S3Provider provider(S3Config{"http://127.0.0.1:7480", "us-east-1", "AK", "SK", true}, store,
                      [](std::chrono::milliseconds) {});
  ValueMap prior = {{"address", Value::String("s3_bucket.b")}, {"bucket", Value::String("b")},
                    {"force_destroy", Value::Bool(false)}};
  auto preview = provider.PlanDelete("s3_bucket", "b", prior);
  ASSERT_TRUE(preview.ok()) << preview.error().message;
  EXPECT_EQ(preview.value().data, (std::vector<std::string>{"2 objects (105 B)", "2 noncurrent versions (47 B)",
                                                            "1 delete marker"}));
  EXPECT_EQ(preview.value().amounts,
            (std::map<std::string, uint64_t>{{"objects", 2}, {"object_bytes", 105}, {"versions", 2},
                                             {"version_bytes", 47}, {"delete_markers", 1}}));
  EXPECT_EQ(preview.value().refusal,
            "s3_bucket.b still holds 2 objects (105 B), 2 noncurrent versions (47 B) and 1 delete marker; empty it "
            "first, or, to delete it with its data, set force_destroy = true on s3_bucket.b, apply, then destroy");
  auto refused = provider.Delete("s3_bucket", "b", prior);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, preview.value().refusal);
  EXPECT_TRUE(store->deleted.empty());
  EXPECT_TRUE(store->exists);

  prior["force_destroy"] = Value::Bool(true);
  preview = provider.PlanDelete("s3_bucket", "b", prior);
  ASSERT_TRUE(preview.ok());
  EXPECT_EQ(preview.value().refusal, "");
  auto deleted = provider.Delete("s3_bucket", "b", prior);
  ASSERT_TRUE(deleted.ok()) << deleted.error().message;
  EXPECT_FALSE(store->exists);
  EXPECT_EQ(store->deleted, (std::vector<std::string>{"a.csv@v2", "a.csv@v1", "gone.csv@v4", "gone.csv@v3",
                                                      "plain.txt@null"}));
  auto gone = provider.PlanDelete("s3_bucket", "b", prior);
  ASSERT_TRUE(gone.ok());
  EXPECT_TRUE(gone.value().data.empty());
}

TEST(S3DeleteTest, ForceDestroyIsRecordedNotSentAndChangesInPlace) {
  S3Provider provider(S3Config{"http://127.0.0.1:7480", "us-east-1", "AK", "SK", true},
                      std::make_shared<NoStore>(), [](std::chrono::milliseconds) {});
  ValueMap prior = plinth::testing::S3BucketConfig("models");
  auto created = provider.PlanChange(PlanRequest{"s3_bucket", nullptr, prior, {"bucket"}});
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(created.value().planned.at("force_destroy").Equals(Value::Bool(false)));
  ValueMap state = created.value().planned;
  ValueMap config = plinth::testing::S3BucketConfig("models", {{"force_destroy", Value::Bool(true)}});
  auto changed = provider.PlanChange(PlanRequest{"s3_bucket", &state, config, {"bucket"}});
  ASSERT_TRUE(changed.ok());
  EXPECT_TRUE(changed.value().replace_because.empty());
  EXPECT_TRUE(changed.value().planned.at("force_destroy").Equals(Value::Bool(true)));
}

TEST(S3ConfigTest, FromEnvironment) {
  setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1111", 1);
  setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:2222", 1);
  unsetenv("AWS_REGION");
  setenv("AWS_DEFAULT_REGION", "eu-west-1", 1);
  setenv("AWS_ACCESS_KEY_ID", "AK1", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "SK1", 1);
  S3Config c = S3Config::FromEnvironment();
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:2222");
  EXPECT_EQ(c.region, "eu-west-1");
  EXPECT_EQ(c.access_key, "AK1");
  EXPECT_EQ(c.secret_key, "SK1");
  EXPECT_TRUE(c.path_style);
  unsetenv("AWS_ENDPOINT_URL_S3");
  setenv("AWS_REGION", "us-west-2", 1);
  c = S3Config::FromEnvironment();
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:1111");
  EXPECT_EQ(c.region, "us-west-2");
  for (const char* v : {"AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID",
                        "AWS_SECRET_ACCESS_KEY"})
    unsetenv(v);
}

}  // namespace
}  // namespace plinth::runtime
