// The provider router: types go to the provider whose schema defines them
// (every provider comes from the catalog); the s3 provider is created on
// first use from its provider block merged over the environment, with one
// clear error when settings are missing.
#include <gtest/gtest.h>

#include <cstdlib>

#include "runtime/providers/router.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

class ClearS3Environment {
 public:
  ClearS3Environment() {
    for (const char* v : kVars) {
      if (const char* old = std::getenv(v)) saved_.emplace_back(v, old);
      ::unsetenv(v);
    }
  }
  ~ClearS3Environment() {
    for (const auto& [k, v] : saved_) ::setenv(k.c_str(), v.c_str(), 1);
  }

 private:
  static constexpr const char* kVars[] = {"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID",
                                          "AWS_SECRET_ACCESS_KEY"};
  std::vector<std::pair<std::string, std::string>> saved_;
};

TEST(ProviderRouter, RoutesTypesAndConfiguresS3FromItsBlock) {
  ClearS3Environment clear;
  plinth::testing::TempDir tmp;
  ProviderContext context;
  context.config_dir = tmp.path();
  context.data_root = tmp.path() / "data";
  context.workspace_key = tmp.path() / "workspace.key";
  ProviderRouter router(context);
  EXPECT_EQ(router.ProviderOf("bucket"), "local");
  EXPECT_EQ(router.ProviderOf("s3_bucket"), "s3");

  ValueMap config = {{"name", Value::String("models")}, {"versioning", Value::Bool(true)}};
  PlanRequest req{"s3_bucket", nullptr, config, {"bucket"}};
  auto none = router.PlanChange(req);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("the s3 provider has no endpoint"), std::string::npos);

  router.Configure("s3", {{"endpoint", Value::String("http://127.0.0.1:1")}});
  auto no_keys = router.PlanChange(req);
  ASSERT_FALSE(no_keys.ok());
  EXPECT_NE(no_keys.error().message.find("has no credentials"), std::string::npos);

  // The secret is sensitive in the block; it never shows in an answer.
  router.Configure("s3", {{"endpoint", Value::String("http://127.0.0.1:1")},
                          {"access_key", Value::String("AK")},
                          {"secret_key", Value::String("very-secret").WithSensitive()}});
  auto planned = router.PlanChange(req);  // planning never contacts the store
  ASSERT_TRUE(planned.ok()) << planned.error().message;
  EXPECT_EQ(planned.value().planned.at("bucket").as_string(), "models");

  // A read goes to the store, which is not there: a retryable or plain error, never the secret.
  auto read = router.Read("s3_bucket", "models", planned.value().planned);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().message.find("very-secret"), std::string::npos) << read.error().message;

  // Local types are untouched by the s3 configuration.
  auto region = router.PlanChange(PlanRequest{"region", nullptr, {{"name", Value::String("eu")}}, {"root"}});
  EXPECT_TRUE(region.ok());
}

}  // namespace
}  // namespace plinth::runtime
