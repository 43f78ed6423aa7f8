// The provider conformance suite: the Provider contract (runtime/provider/
// provider.h, docs/providers/protocol.md) checked the same way against every
// provider: local, s3 (against the Ceph RGW fixture; skipped unless
// tests/fixtures/run-s3-tests.sh set PLINTH_S3_ENV) and the out-of-process
// Python example (examples/provider-python), through the JSON-RPC adapter.
//
//  * create, then read: the same id, every configured attribute as planned
//  * an in-place update, read back
//  * read of something gone answers "gone", not an error
//  * delete twice succeeds
//  * import of an existing object answers what read answers
//  * invalid input gives an error that is not retryable
//  * a transient failure gives a retryable error (where the provider has one)
//  * a sensitive value never appears in any message
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <random>

#include "runtime/providers/external.h"
#include "runtime/providers/local/provider.h"
#include "runtime/providers/protocol/rpc_provider.h"
#include "runtime/providers/s3/provider.h"
#include "tests/support/files.h"
#include "tests/support/s3_config.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

std::string Unique() {
  std::random_device rd;
  std::mt19937_64 rng(rd());
  std::string s;
  for (int i = 0; i < 8; ++i) s += "0123456789abcdef"[rng() % 16];
  return s;
}

// A provider under test, and how to talk to it.
struct Subject {
  std::unique_ptr<Provider> provider;
  std::string type;
  std::vector<std::string> unset;  // optional-computed attributes a configuration leaves out
  std::function<ValueMap(const std::string& unique)> config;  // as the checker hands it over
  std::string update_attr;                                    // changed in place by the update test
  Value update_value;
  // A configuration the provider refuses (in validate, plan or create).
  std::function<ValueMap(const std::string& unique)> invalid;
  // A provider whose calls fail in a way that may pass later; null: none.
  std::function<std::unique_ptr<Provider>()> transient;
  // A secret and a refused configuration that carries it in a sensitive attribute.
  std::string secret;
  std::function<ValueMap(const std::string& unique)> with_secret;
  std::string skip;  // non-empty: why this subject cannot run here
  std::vector<std::function<void()>> cleanup;
};

// ---------------------------------------------------------------- subjects

Subject Local(const fs::path& dir) {
  Subject s;
  s.provider = std::make_unique<LocalProvider>(dir / "data", dir / "workspace.key");
  s.type = "marker";
  s.config = [](const std::string& u) {
    return ValueMap{{"name", Value::String("m" + u)},       {"address", Value::String("marker.m" + u)},
                    {"id", Value::Unknown(Type::String())}, {"path", Value::String("proofs/" + u + ".txt")},
                    {"content", Value::String("one")},      {"triggers", Value()}};
  };
  s.update_attr = "content";
  s.update_value = Value::String("two");
  s.invalid = [cfg = s.config](const std::string& u) {
    ValueMap m = cfg(u);
    m["path"] = Value::String("../outside-" + u);
    return m;
  };
  // The local provider has no transient failure mode and no sensitive input
  // a marker carries; those two checks do not apply to it.
  return s;
}

Subject S3() {
  Subject s;
  const char* env_path = std::getenv("PLINTH_S3_ENV");
  if (!env_path || !*env_path) {
    s.skip = "PLINTH_S3_ENV is not set: tests/fixtures/run-s3-tests.sh BUILD_DIR runs this against a Ceph RGW";
    return s;
  }
  auto env = plinth::testing::ReadS3EnvFile(env_path);
  S3Config c;
  c.endpoint = env["AWS_ENDPOINT_URL"];
  c.region = env["AWS_REGION"];
  c.access_key = env["AWS_ACCESS_KEY_ID"];
  c.secret_key = env["AWS_SECRET_ACCESS_KEY"];
  s.provider = std::make_unique<S3Provider>(c);
  s.type = "s3_bucket";
  s.unset = {"bucket"};
  s.config = [](const std::string& u) {
    return plinth::testing::S3BucketConfig("conf-" + u, {{"bucket", Value::String("plinth-conformance-" + u)}});
  };
  s.update_attr = "tags";
  s.update_value = Value::Object({{"team", Value::String("ml")}});
  s.invalid = [](const std::string& u) {
    return plinth::testing::S3BucketConfig("bad-" + u, {{"bucket", Value::String("Not_A_Valid_Bucket_" + u)}});
  };
  // Nothing listens on port 1: the store is unreachable, which may pass later.
  s.transient = [c]() mutable {
    S3Config down = c;
    down.endpoint = "http://127.0.0.1:1";
    return std::unique_ptr<Provider>(std::make_unique<S3Provider>(down));
  };
  s.secret = c.secret_key;
  // The store refuses a request signed with a wrong secret; the message must
  // not quote the secret the provider holds.
  s.with_secret = s.config;
  return s;
}

fs::path TextfileExecutable() {
  return fs::path(PLINTH_SOURCE_DIR) / "examples" / "provider-python" / "plinth-provider-textfile";
}

std::unique_ptr<RpcProvider> StartTextfile(const fs::path& root, const std::string& token = "") {
  RpcProviderOptions o;
  o.name = "textfile";
  o.executable = TextfileExecutable();
  o.cwd = root.parent_path();
  o.env = ExternalProviders::EnvironmentFor("textfile");
  o.call_timeout = std::chrono::seconds(60);
  std::string error;
  auto p = RpcProvider::Start(std::move(o), &error);
  EXPECT_TRUE(p) << error;
  if (!p) return nullptr;
  ValueMap config = {{"root", Value::String(root.string())}};
  config["token"] = token.empty() ? Value() : Value::String(token).WithSensitive();
  p->SetConfiguration(config);
  return p;
}

ValueMap TextfileConfig(const std::string& path, const std::string& content) {
  return {{"name", Value::String("f")},
          {"address", Value::String("textfile_file.f")},
          {"id", Value::Unknown(Type::String())},
          {"path", Value::String(path)},
          {"content", Value::String(content)},
          {"sensitive_content", Value()},
          {"mode", Value::String("0644")},
          {"sha256", Value::Unknown(Type::String())},
          {"size", Value::Unknown(Type::Size())}};
}

Subject Textfile(const fs::path& dir) {
  Subject s;
  if (!fs::exists(TextfileExecutable())) {
    s.skip = "no " + TextfileExecutable().string();
    return s;
  }
  fs::path root = dir / "files";
  s.provider = StartTextfile(root);
  s.type = "textfile_file";
  s.config = [](const std::string& u) { return TextfileConfig("notes/" + u + ".txt", "one\n"); };
  s.update_attr = "content";
  s.update_value = Value::String("two\n");
  s.invalid = [](const std::string& u) { return TextfileConfig("../escape-" + u, "x"); };
  s.transient = [root]() -> std::unique_ptr<Provider> {
    fs::create_directories(root);
    std::ofstream(root / ".busy") << "";
    return StartTextfile(root);
  };
  s.cleanup.push_back([root] { fs::remove(root / ".busy"); });
  s.secret = "hunter2-conformance-secret";
  s.with_secret = [secret = s.secret](const std::string& u) {
    ValueMap m = TextfileConfig("../escape-" + u, "x");
    m["sensitive_content"] = Value::String(secret).WithSensitive();
    return m;
  };
  return s;
}

// ------------------------------------------------------------------ fixture

enum class Kind { kLocal, kS3, kOutOfProcess };

class ProviderConformance : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    switch (GetParam()) {
      case Kind::kLocal: s_ = Local(tmp_.path()); break;
      case Kind::kS3: s_ = S3(); break;
      case Kind::kOutOfProcess: s_ = Textfile(tmp_.path()); break;
    }
    if (!s_.skip.empty()) GTEST_SKIP() << s_.skip;
    ASSERT_TRUE(s_.provider);
  }

  void TearDown() override {
    for (auto& [id, attrs] : created_) (void)s_.provider->Delete(s_.type, id, attrs);
    for (auto& f : s_.cleanup) f();
  }

  Result<PlanResponse> Plan(const ValueMap& config, const ValueMap* prior) {
    return s_.provider->PlanChange(PlanRequest{s_.type, prior, config, prior ? std::vector<std::string>{} : s_.unset});
  }

  ResourceObject MustCreate(const ValueMap& config) {
    auto plan = Plan(config, nullptr);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    if (!plan.ok()) return {};
    auto created = s_.provider->Create(s_.type, plan.value().planned);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    if (!created.ok()) return {};
    EXPECT_FALSE(created.value().id.empty());
    created_.emplace_back(created.value().id, created.value().attributes);
    // Every configured, known attribute is what the plan said.
    for (const auto& [name, v] : plan.value().planned) {
      if (v.ContainsUnknown() || name == "name" || name == "address") continue;
      auto got = created.value().attributes.find(name);
      if (got == created.value().attributes.end()) continue;
      EXPECT_TRUE(got->second.Equals(v)) << name << ": planned " << v.ToString(true) << ", created "
                                         << got->second.ToString(true);
    }
    return created.value();
  }

  std::optional<ResourceObject> MustRead(const ResourceObject& o) {
    auto read = s_.provider->Read(s_.type, o.id, o.attributes);
    EXPECT_TRUE(read.ok()) << (read.ok() ? "" : read.error().message);
    return read.ok() ? read.value() : std::nullopt;
  }

  Subject s_;
  plinth::testing::TempDir tmp_;
  std::vector<std::pair<std::string, ValueMap>> created_;
};

TEST_P(ProviderConformance, CreateThenReadRoundTrips) {
  std::string u = Unique();
  ResourceObject created = MustCreate(s_.config(u));
  ASSERT_FALSE(created.id.empty());
  std::optional<ResourceObject> read = MustRead(created);
  ASSERT_TRUE(read) << "a resource just created reads as gone";
  EXPECT_EQ(read->id, created.id);
  for (const auto& [name, v] : created.attributes) {
    if (v.ContainsUnknown() || name == "name" || name == "address") continue;
    auto got = read->attributes.find(name);
    ASSERT_NE(got, read->attributes.end()) << "read lost attribute " << name;
    EXPECT_TRUE(got->second.Equals(v)) << name << ": created " << v.ToString(true) << ", read "
                                       << got->second.ToString(true);
  }
  // Planning the same configuration against what exists changes nothing.
  ValueMap prior = read->attributes;
  for (const char* identity : {"name", "address"}) {
    if (created.attributes.count(identity)) prior[identity] = created.attributes.at(identity);
  }
  auto again = Plan(s_.config(u), &prior);
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_TRUE(again.value().replace_because.empty()) << "planning what exists asks for a replacement";
}

TEST_P(ProviderConformance, UpdatesInPlace) {
  std::string u = Unique();
  ResourceObject created = MustCreate(s_.config(u));
  ASSERT_FALSE(created.id.empty());
  ValueMap config = s_.config(u);
  config[s_.update_attr] = s_.update_value;
  auto plan = Plan(config, &created.attributes);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_TRUE(plan.value().replace_because.empty()) << s_.update_attr << " is changed in place";
  auto updated = s_.provider->Update(s_.type, created.id, created.attributes, plan.value().planned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(updated.value().id, created.id);
  created_.back().second = updated.value().attributes;
  std::optional<ResourceObject> read = MustRead(updated.value());
  ASSERT_TRUE(read);
  EXPECT_TRUE(read->attributes.at(s_.update_attr).Equals(s_.update_value))
      << read->attributes.at(s_.update_attr).ToString(true);
}

TEST_P(ProviderConformance, ReadOfSomethingGoneAnswersGone) {
  ResourceObject created = MustCreate(s_.config(Unique()));
  ASSERT_FALSE(created.id.empty());
  ASSERT_TRUE(s_.provider->Delete(s_.type, created.id, created.attributes).ok());
  auto read = s_.provider->Read(s_.type, created.id, created.attributes);
  ASSERT_TRUE(read.ok()) << "a read of something gone is not an error: " << read.error().message;
  EXPECT_FALSE(read.value().has_value());
}

TEST_P(ProviderConformance, DeleteTwiceSucceeds) {
  ResourceObject created = MustCreate(s_.config(Unique()));
  ASSERT_FALSE(created.id.empty());
  auto first = s_.provider->Delete(s_.type, created.id, created.attributes);
  ASSERT_TRUE(first.ok()) << first.error().message;
  auto second = s_.provider->Delete(s_.type, created.id, created.attributes);
  EXPECT_TRUE(second.ok()) << "delete of something already gone must succeed: " << second.error().message;
}

TEST_P(ProviderConformance, ImportAnswersWhatReadAnswers) {
  ResourceObject created = MustCreate(s_.config(Unique()));
  ASSERT_FALSE(created.id.empty());
  auto imported = s_.provider->Import(s_.type, created.id);
  ASSERT_TRUE(imported.ok()) << imported.error().message;
  EXPECT_EQ(imported.value().id, created.id);
  std::optional<ResourceObject> read = MustRead(created);
  ASSERT_TRUE(read);
  for (const auto& [name, v] : read->attributes) {
    if (v.ContainsUnknown() || name == "name" || name == "address") continue;
    auto got = imported.value().attributes.find(name);
    ASSERT_NE(got, imported.value().attributes.end()) << "import lacks " << name;
    EXPECT_TRUE(got->second.Equals(v)) << name;
  }
}

// The first error a configuration meets on its way to creation.
std::optional<ProviderError> FirstError(Provider& p, const std::string& type, const ValueMap& config,
                                        const std::vector<std::string>& unset, std::vector<std::string>* messages) {
  for (const std::string& m : p.Validate(type, config)) {
    messages->push_back(m);
    return ProviderError{m, false};
  }
  auto plan = p.PlanChange(PlanRequest{type, nullptr, config, unset});
  if (!plan.ok()) {
    messages->push_back(plan.error().message);
    return plan.error();
  }
  auto created = p.Create(type, plan.value().planned);
  if (!created.ok()) {
    messages->push_back(created.error().message);
    return created.error();
  }
  (void)p.Delete(type, created.value().id, created.value().attributes);
  return std::nullopt;
}

TEST_P(ProviderConformance, InvalidInputIsAFatalError) {
  std::vector<std::string> messages;
  auto error = FirstError(*s_.provider, s_.type, s_.invalid(Unique()), s_.unset, &messages);
  ASSERT_TRUE(error) << "an invalid configuration was created";
  EXPECT_FALSE(error->retryable) << error->message;
  EXPECT_FALSE(error->message.empty());
}

TEST_P(ProviderConformance, TransientFailureIsRetryable) {
  if (!s_.transient) GTEST_SKIP() << "this provider has no transient failure mode to provoke";
  std::unique_ptr<Provider> failing = s_.transient();
  ASSERT_TRUE(failing);
  auto plan = failing->PlanChange(PlanRequest{s_.type, nullptr, s_.config(Unique()), s_.unset});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto created = failing->Create(s_.type, plan.value().planned);
  ASSERT_FALSE(created.ok()) << "the call succeeded although the store is unavailable";
  EXPECT_TRUE(created.error().retryable) << created.error().message;
  EXPECT_FALSE(created.error().outcome_unknown) << "a clear answer from the provider is not an unknown outcome";
}

TEST_P(ProviderConformance, SensitiveValuesNeverAppearInMessages) {
  if (s_.secret.empty()) GTEST_SKIP() << "this resource type takes no sensitive input";
  std::vector<std::string> messages;
  if (GetParam() == Kind::kS3) {
    // A provider holding the real secret, signing for a key the store does not know.
    const char* env_path = std::getenv("PLINTH_S3_ENV");
    auto env = plinth::testing::ReadS3EnvFile(env_path);
    S3Config c;
    c.endpoint = env["AWS_ENDPOINT_URL"];
    c.region = env["AWS_REGION"];
    c.access_key = "NO-SUCH-KEY";
    c.secret_key = s_.secret;
    S3Provider wrong(c);
    (void)FirstError(wrong, s_.type, s_.with_secret(Unique()), s_.unset, &messages);
    auto read = wrong.Read(s_.type, "plinth-no-such-bucket-" + Unique(), {});
    if (!read.ok()) messages.push_back(read.error().message);
  } else {
    (void)FirstError(*s_.provider, s_.type, s_.with_secret(Unique()), s_.unset, &messages);
  }
  if (GetParam() == Kind::kOutOfProcess) {
    // A configuration with a sensitive token the provider refuses.
    std::unique_ptr<RpcProvider> p = StartTextfile(tmp_.path() / "files", "invalid-" + s_.secret);
    ASSERT_TRUE(p);
    auto plan = p->PlanChange(PlanRequest{s_.type, nullptr, s_.config(Unique()), {}});
    if (!plan.ok()) messages.push_back(plan.error().message);
    auto read = p->Read(s_.type, "x.txt", {});
    if (!read.ok()) messages.push_back(read.error().message);
  }
  ASSERT_FALSE(messages.empty()) << "nothing was refused, so nothing was checked";
  for (const std::string& m : messages) {
    EXPECT_EQ(m.find(s_.secret), std::string::npos) << m;
  }
}

std::string Name(const ::testing::TestParamInfo<Kind>& info) {
  switch (info.param) {
    case Kind::kLocal: return "local";
    case Kind::kS3: return "s3";
    case Kind::kOutOfProcess: return "textfile";
  }
  return "unknown";
}

// Instances named so that run-s3-tests.sh's --gtest_filter='S3*' picks the s3 one.
INSTANTIATE_TEST_SUITE_P(Local, ProviderConformance, ::testing::Values(Kind::kLocal), Name);
INSTANTIATE_TEST_SUITE_P(S3, ProviderConformance, ::testing::Values(Kind::kS3), Name);
INSTANTIATE_TEST_SUITE_P(OutOfProcess, ProviderConformance, ::testing::Values(Kind::kOutOfProcess), Name);

}  // namespace
}  // namespace plinth::runtime
