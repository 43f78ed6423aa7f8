// Policies end to end: policy blocks in a configuration, evaluated by the
// engine on planned values (runtime/policy), and policy_test cases.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runtime/engine/engine.h"
#include "runtime/policy/policy.h"
#include "runtime/providers/catalog.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
  }
  void Write(const std::string& text) { std::ofstream(dir_ / "main.plinth") << text; }

  EngineResult Plan(std::string* diagnostics = nullptr) {
    SourceManager sources;
    Diagnostics diags;
    EngineOptions eo;
    eo.config_dir = dir_.string();
    Engine engine(eo, sources, diags);
    EngineResult r = engine.Plan();
    if (diagnostics) *diagnostics = RenderText(diags.Sorted(sources), sources, RenderOptions{});
    return r;
  }
  EngineResult Apply() {
    SourceManager sources;
    Diagnostics diags;
    EngineOptions eo;
    eo.config_dir = dir_.string();
    Engine engine(eo, sources, diags);
    return engine.Apply();
  }

  plinth::testing::TempDir tmp_{"plinth-policy"};
  fs::path dir_;
};

constexpr const char* kPolicies = R"(
variable "token" {
  type      = string
  default   = "hunter2-secret"
  sensitive = true
}
policy "encrypted" {
  for_all  = bucket
  require  = self.encryption != "none"
  message  = "bucket ${self.name} must be encrypted"
}
policy "small" {
  for_all  = bucket
  where    = self.capacity != null
  require  = self.capacity <= 1GiB
  severity = "warn"
  message  = "bucket ${self.name} is ${self.capacity}"
}
policy "leaky_message" {
  for_all  = marker
  require  = self.content == ""
  severity = "warn"
  message  = "marker ${self.name} holds ${var.token}"
}
region "eu" {}
)";

TEST_F(PolicyTest, DenyWarnAndSkipOnPlannedValues) {
  Write(std::string(kPolicies) + R"(
bucket "plain" {
  region   = region.eu
  capacity = 5GiB
}
bucket "sealed" {
  region     = region.eu
  encryption = "aes-256-gcm"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan.policies, 3u);
  EXPECT_EQ(r.plan.policy_checks, 3u);  // encrypted x2, small x1 (sealed has no capacity)
  ASSERT_EQ(r.plan.policy_findings.size(), 2u);
  const PolicyFinding& deny = r.plan.policy_findings[0];
  EXPECT_EQ(deny.policy, "policy.encrypted");
  EXPECT_EQ(deny.address, "bucket.plain");
  EXPECT_TRUE(deny.deny);
  EXPECT_EQ(deny.outcome, PolicyFinding::Outcome::Violated);
  EXPECT_EQ(deny.message, "bucket plain must be encrypted");
  const PolicyFinding& warn = r.plan.policy_findings[1];
  EXPECT_FALSE(warn.deny);
  EXPECT_EQ(warn.message, "bucket plain is 5GiB");
  EXPECT_TRUE(r.plan.Denied());
  std::string text = RenderPlanText(r.plan, false);
  EXPECT_NE(text.find("Policies: 3 evaluated, 3 checks: 1 denied, 1 warning, 0 undecided until apply."),
            std::string::npos)
      << text;
  EXPECT_NE(RenderPlanJson(r.plan).find("\"denied\": true"), std::string::npos);

  // Apply refuses before any change.
  EngineResult a = Apply();
  EXPECT_FALSE(a.ok);
  ASSERT_FALSE(a.errors.empty());
  EXPECT_EQ(a.errors[0], "policy.encrypted denies bucket.plain: bucket plain must be encrypted");
  EXPECT_EQ(a.applied, 0u);
  EXPECT_FALSE(fs::exists(dir_ / ".plinth" / "default" / "data" / "regions"));
}

TEST_F(PolicyTest, ValuesKnownOnlyAtApplyAreUndecidedThenChecked) {
  Write(std::string(kPolicies) + R"(
bucket "later" {
  region     = region.eu
  encryption = timestamp() == "" ? "none" : "aes-256-gcm"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.plan.policy_findings.size(), 1u);
  EXPECT_EQ(r.plan.policy_findings[0].outcome, PolicyFinding::Outcome::Undecided);
  EXPECT_FALSE(r.plan.Denied());
  EngineResult a = Apply();  // at apply the value is known and compliant
  EXPECT_TRUE(a.ok) << (a.errors.empty() ? "" : a.errors[0]);
  EXPECT_EQ(a.applied, 2u);
}

TEST_F(PolicyTest, MessagesNeverShowSensitiveValues) {
  Write(std::string(kPolicies) + R"(
marker "m" {
  path    = "m/m"
  content = "x"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.plan.policy_findings.size(), 1u);
  EXPECT_EQ(r.plan.policy_findings[0].message.find("hunter2"), std::string::npos);
  EXPECT_NE(r.plan.policy_findings[0].message.find("withheld"), std::string::npos);
}

TEST_F(PolicyTest, RuleTypeErrorsAreLocated) {
  Write(R"(
policy "bad" {
  for_all = bucket
  require = self.capacity > 5s
}
)");
  std::string diagnostics;
  EngineResult r = Plan(&diagnostics);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(diagnostics.find("main.plinth:4:27: error[P0302]"), std::string::npos) << diagnostics;
}

TEST_F(PolicyTest, ManyResourcesRunAsNativeCode) {
  // The same verdicts compiled: the plan interprets 2,500 records (below
  // kJitThreshold); the policy layer with a lower threshold runs native code.
  Write(R"(
region "eu" {}
bucket "b" {
  count      = 2500
  region     = region.eu
  encryption = count.index % 1000 == 7 ? "none" : "aes-256-gcm"
}
policy "encrypted" {
  for_all = bucket
  require = self.encryption != "none"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan.policy_checks, 2500u);
  ASSERT_EQ(r.plan.policy_findings.size(), 3u);
  EXPECT_EQ(r.plan.policy_findings[0].address, "bucket.b[1007]");
  EXPECT_EQ(r.plan.policy_findings[2].address, "bucket.b[7]");

  // The same through the policy layer directly: native code was used.
  SourceManager sources;
  Diagnostics diags;
  CheckOptions options;
  options.schemas = &runtime::BuiltinSchemas();
  CheckedConfig config = Check(dir_.string(), sources, diags, options);
  ASSERT_FALSE(diags.has_errors());
  runtime::Plan plan = ComputePlan(config.resources, std::vector<PriorResource>{}, {});
  PolicyReport interpreted = EvaluatePolicies(config.policies, plan, diags);
  EXPECT_FALSE(interpreted.jit);
  PolicyReport report = EvaluatePolicies(config.policies, plan, diags, /*jit_threshold=*/1000);
  EXPECT_TRUE(report.jit);
  EXPECT_EQ(report.findings.size(), 3u);
}

TEST_F(PolicyTest, AnUnsetValueSaysWhichAndSuggestsWhere) {
  Write(R"(
region "eu" {}
bucket "nocap" {
  region = region.eu
}
policy "cap" {
  for_all = bucket
  require = self.capacity <= 10GiB
}
policy "cap_guarded_elsewhere" {
  for_all = bucket
  where   = self.name != ""
  require = self.capacity <= 10GiB
}
policy_test "unset capacity" {
  policy   = "cap"
  resource = { name = "x" }
  expect   = "pass"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.plan.policy_findings.size(), 2u);
  EXPECT_EQ(r.plan.policy_findings[0].outcome, PolicyFinding::Outcome::Violated);
  EXPECT_NE(r.plan.policy_findings[0].message.find("the rule could not be evaluated"), std::string::npos);
  EXPECT_NE(r.plan.policy_findings[0].message.find("self.capacity is null"), std::string::npos)
      << r.plan.policy_findings[0].message;
  EXPECT_NE(r.plan.policy_findings[0].message.find("add `where = self.capacity != null`"), std::string::npos)
      << r.plan.policy_findings[0].message;
  // A policy that has a `where` is told to extend it.
  EXPECT_NE(r.plan.policy_findings[1].message.find("add `self.capacity != null &&` to the policy's `where`"),
            std::string::npos)
      << r.plan.policy_findings[1].message;

  // plinth policy test says the same.
  SourceManager sources;
  Diagnostics diags;
  CheckOptions options;
  options.schemas = &runtime::BuiltinSchemas();
  CheckedConfig config = Check(dir_.string(), sources, diags, options);
  ASSERT_FALSE(diags.has_errors());
  std::vector<PolicyTestResult> results = RunPolicyTests(config, diags);
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].ok());
  EXPECT_NE(results[0].error.find("self.capacity is null"), std::string::npos) << results[0].error;
}

// ------------------------------------------------------- group policies

constexpr const char* kGroupPolicy = R"(
policy "region_capacity" {
  for_all  = bucket
  group_by = self.capacity == null ? null : self.region.name
  require  = sum(group[*].capacity) <= lookup(var.quota, group_key, 1000GiB)
  message  = "region ${group_key} holds ${sum(group[*].capacity)} in ${length(group)} buckets (${join(", ", group[*].name)}), above ${var.quota[group_key]}"
}
variable "quota" {
  type    = map(size)
  default = { eu = 10GiB }
}
)";

TEST_F(PolicyTest, GroupPoliciesCheckTheSumOverEachGroup) {
  Write(std::string(kGroupPolicy) + R"(
region "eu" {}
region "us" {}
bucket "a" {
  region   = region.eu
  capacity = 6GiB
}
bucket "b" {
  region   = region.eu
  capacity = 6GiB
}
bucket "c" {
  region   = region.us
  capacity = 600GiB
}
bucket "nocap" {
  region = region.eu
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan.policies, 1u);
  EXPECT_EQ(r.plan.policy_checks, 3u);  // nocap has no key: in no group, not checked
  ASSERT_EQ(r.plan.policy_findings.size(), 2u);
  EXPECT_EQ(r.plan.policy_findings[0].address, "bucket.a");
  EXPECT_EQ(r.plan.policy_findings[1].address, "bucket.b");
  for (const PolicyFinding& f : r.plan.policy_findings) {
    EXPECT_TRUE(f.deny);
    EXPECT_EQ(f.outcome, PolicyFinding::Outcome::Violated);
  }
  for (const PolicyFinding& f : r.plan.policy_findings)
    EXPECT_EQ(f.message, "region eu holds 12GiB in 2 buckets (a, b), above 10GiB");
  EXPECT_TRUE(r.plan.Denied());

  // One bucket less and the region is within its quota.
  Write(std::string(kGroupPolicy) + R"(
region "eu" {}
bucket "a" {
  region   = region.eu
  capacity = 6GiB
}
)");
  r = Plan();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan.policy_checks, 1u);
  EXPECT_TRUE(r.plan.policy_findings.empty());
}

TEST_F(PolicyTest, GroupPoliciesAreLinearInOneGroupOfManyInstances) {
  // 3,000 buckets in one group: every member gets the group's verdict, and
  // a `where` (a compiled rule) still filters which instances are grouped.
  Write(R"(
region "eu" {}
bucket "b" {
  count    = 3000
  region   = region.eu
  capacity = count.index % 2 == 0 ? 1GiB : 2GiB
}
policy "total" {
  for_all  = bucket
  where    = self.capacity == 1GiB
  group_by = "all"
  require  = sum(group[*].capacity) <= 1499GiB
  message  = "${length(group)} buckets hold ${sum(group[*].capacity)}"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.plan.policy_checks, 1500u);
  ASSERT_EQ(r.plan.policy_findings.size(), 1500u);
  EXPECT_EQ(r.plan.policy_findings[0].message, "1500 buckets hold 1500GiB");
}

TEST_F(PolicyTest, GroupPolicyErrorsAreLocatedAndSelfIsNotInTheGroupRule) {
  Write(R"(
policy "bad" {
  for_all  = bucket
  group_by = self.region.name
  require  = self.capacity <= 5GiB
}
)");
  std::string diagnostics;
  EngineResult r = Plan(&diagnostics);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(diagnostics.find("main.plinth:5:14: error"), std::string::npos) << diagnostics;
  EXPECT_NE(diagnostics.find("self"), std::string::npos) << diagnostics;

  Write(R"(
policy "bad" {
  for_all  = bucket
  group_by = self.regoin.name
  require  = length(group) < 3
}
)");
  r = Plan(&diagnostics);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(diagnostics.find("main.plinth:4:"), std::string::npos) << diagnostics;

  // A group's message is evaluated once per group: it reads `group`, not `self`.
  Write(R"(
policy "bad" {
  for_all  = bucket
  group_by = self.region.name
  require  = length(group) < 3
  message  = "${self.name} is one too many"
}
)");
  r = Plan(&diagnostics);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(diagnostics.find("main.plinth:6:17: error[P0202]: unknown name 'self'"), std::string::npos)
      << diagnostics;
}

TEST_F(PolicyTest, GroupPolicyTestsTakePeersAndVars) {
  Write(std::string(kGroupPolicy) + R"(
policy_test "within the quota" {
  policy   = "region_capacity"
  resource = { name = "a", region = { name = "eu" }, capacity = 6GiB }
  peers    = [{ name = "b", region = { name = "us" }, capacity = 6GiB }]
  expect   = "pass"
}
policy_test "over the quota with a peer" {
  policy   = "region_capacity"
  resource = { name = "a", region = { name = "eu" }, capacity = 6GiB }
  peers    = [{ name = "b", region = { name = "eu" }, capacity = 6GiB }]
  expect   = "fail"
}
policy_test "vars raise the quota" {
  policy   = "region_capacity"
  vars     = { quota = { eu = 20GiB } }
  resource = { name = "a", region = { name = "eu" }, capacity = 6GiB }
  peers    = [{ name = "b", region = { name = "eu" }, capacity = 6GiB }]
  expect   = "pass"
}
policy_test "a peer known only after apply" {
  policy   = "region_capacity"
  resource = { name = "a", region = { name = "eu" } }
  unknown  = ["capacity"]
  peers    = [{ name = "b", region = { name = "eu" }, capacity = 6GiB }]
  expect   = "undecided"
}
)");
  SourceManager sources;
  Diagnostics diags;
  CheckOptions options;
  options.schemas = &runtime::BuiltinSchemas();
  CheckedConfig config = Check(dir_.string(), sources, diags, options);
  ASSERT_FALSE(diags.has_errors()) << RenderText(diags.Sorted(sources), sources, RenderOptions{});
  std::vector<PolicyTestResult> results = RunPolicyTests(config, diags);
  ASSERT_EQ(results.size(), 4u);
  for (const PolicyTestResult& t : results) EXPECT_TRUE(t.ok()) << t.name << ": got " << t.got << t.error;
  EXPECT_EQ(results[1].message, "region eu holds 12GiB in 2 buckets (a, b), above 10GiB");
}

TEST_F(PolicyTest, ASensitiveGroupKeyIsNeverShown) {
  Write(R"(
variable "token" {
  type      = string
  default   = "hunter2-secret"
  sensitive = true
}
region "eu" {}
bucket "a" {
  region = region.eu
}
policy "one_group" {
  for_all  = bucket
  group_by = var.token
  require  = length(group) > 1
  message  = "group ${group_key} is too small"
}
)");
  EngineResult r = Plan();
  ASSERT_TRUE(r.ok);
  ASSERT_EQ(r.plan.policy_findings.size(), 1u);
  EXPECT_EQ(r.plan.policy_findings[0].message.find("hunter2"), std::string::npos)
      << r.plan.policy_findings[0].message;
  EXPECT_NE(r.plan.policy_findings[0].message.find("withheld"), std::string::npos)
      << r.plan.policy_findings[0].message;
}

}  // namespace
}  // namespace plinth::runtime
