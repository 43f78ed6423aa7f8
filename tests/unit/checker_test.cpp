// Unit tests for the checker: configurations written to a temporary
// directory, checked, and the expanded instances or diagnostics inspected.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "compiler/check/checker.h"
#include "runtime/providers/catalog.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-checker-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& rel, const std::string& text) {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

  CheckedConfig Run(CheckOptions options = {}) {
    diags_ = std::make_unique<Diagnostics>();
    sources_ = std::make_unique<SourceManager>();
    if (!options.schemas) options.schemas = &runtime::BuiltinSchemas();
    return Check(dir_.string(), *sources_, *diags_, options);
  }

  std::vector<std::string> Codes() const {
    std::vector<std::string> out;
    for (const Diagnostic& d : diags_->Sorted(*sources_)) out.emplace_back(Info(d.code).code);
    return out;
  }

  std::string Text() const { return RenderText(diags_->Sorted(*sources_), *sources_, {}); }

  static const ResourceInstance* Find(const CheckedConfig& c, const std::string& address) {
    for (const auto& r : c.resources) {
      if (r.address == address) return &r;
    }
    return nullptr;
  }

  fs::path dir_;
  std::unique_ptr<Diagnostics> diags_;
  std::unique_ptr<SourceManager> sources_;
};

TEST_F(CheckerTest, ExpandsCountAndForEach) {
  Write("main.plinth", R"(
region "eu" {}
marker "m" {
  count = 3
  path  = "m-${count.index}"
}
bucket "b" {
  for_each = { small = 1GiB, large = 1TiB }
  region   = region.eu
  capacity = each.value
  labels   = { key = each.key }
}
)");
  CheckedConfig c = Run();
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_EQ(c.resources.size(), 6u);
  const ResourceInstance* m2 = Find(c, "marker.m[2]");
  ASSERT_NE(m2, nullptr);
  EXPECT_EQ(m2->attributes.at("path").as_string(), "m-2");
  const ResourceInstance* large = Find(c, "bucket.b[\"large\"]");
  ASSERT_NE(large, nullptr);
  EXPECT_EQ(large->attributes.at("capacity").ToString(), "1TiB");
  EXPECT_EQ(large->attributes.at("labels").ToString(), "{ key = \"large\" }");
  EXPECT_EQ(large->depends_on, std::vector<std::string>{"region.eu"});
}

TEST_F(CheckerTest, DefaultsAndComputedAttributes) {
  Write("main.plinth", "region \"eu\" {}\nbucket \"b\" { region = region.eu }\n");
  CheckedConfig c = Run();
  ASSERT_FALSE(diags_->has_errors()) << Text();
  const ResourceInstance* b = Find(c, "bucket.b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->attributes.at("encryption").as_string(), "none");
  EXPECT_EQ(b->attributes.at("alert_at").ToString(), "80%");
  EXPECT_TRUE(b->attributes.at("path").is_unknown());
  EXPECT_EQ(b->attributes.at("path").unknown_type(), Type::String());
}

TEST_F(CheckerTest, ModulesWithForEachAndOutputs) {
  Write("modules/shard/main.plinth", R"(
variable "name" { type = string }
variable "size" {
  type    = size
  default = 1GiB
}
marker "m" { path = "shard-${var.name}" }
output "path" { value = marker.m.path }
output "double" { value = var.size * 2 }
)");
  Write("main.plinth", R"(
module "shard" {
  for_each = { a = 1, b = 2 }
  source   = "./modules/shard"
  name     = each.key
  size     = each.value * 1GiB
}
output "sizes" { value = [for k, m in module.shard : m.double] }
)");
  CheckedConfig c = Run();
  ASSERT_FALSE(diags_->has_errors()) << Text();
  ASSERT_NE(Find(c, "module.shard[\"a\"].marker.m"), nullptr);
  ASSERT_NE(Find(c, "module.shard[\"b\"].marker.m"), nullptr);
  EXPECT_EQ(Find(c, "module.shard[\"b\"].marker.m")->attributes.at("path").as_string(), "shard-b");
  EXPECT_EQ(Find(c, "module.shard[\"b\"].marker.m")->module, "module.shard[\"b\"]");
  ASSERT_EQ(c.outputs.size(), 1u);
  EXPECT_EQ(c.outputs[0].value.ToString(), "[2GiB, 4GiB]");
  EXPECT_EQ(c.module_instances, 3u);
  EXPECT_EQ(c.modules, 2u);
}

TEST_F(CheckerTest, CycleIsReportedWithItsPath) {
  Write("main.plinth", "locals {\n  a = local.b\n  b = local.c\n  c = local.a\n}\n");
  Run();
  ASSERT_EQ(Codes(), std::vector<std::string>{"P0208"}) << Text();
  EXPECT_NE(Text().find("local.a -> local.b -> local.c -> local.a"), std::string::npos) << Text();
}

TEST_F(CheckerTest, ReportsAllIndependentErrorsInOneRun) {
  Write("a.plinth", "region \"eu\" {}\nbucket \"x\" {\n  region = region.eu\n  capacity = \"10GiB\"\n}\n");
  Write("b.plinth", "bucket \"y\" {\n  region = region.mars\n  encryptoin = \"none\"\n}\nlocals { z = 30s + 1GiB }\n");
  Run();
  std::vector<std::string> codes = Codes();
  EXPECT_EQ(codes, (std::vector<std::string>{"P0301", "P0202", "P0204", "P0302"})) << Text();
  EXPECT_NE(Text().find("did you mean 'encryption'?"), std::string::npos) << Text();
  EXPECT_NE(Text().find("write the value without quotes"), std::string::npos) << Text();
}

TEST_F(CheckerTest, SyntaxErrorsDoNotCascadeIntoMissingAttributes) {
  Write("main.plinth", "region \"eu\" {}\nbucket \"b\" {\n  region = region.eu\n  capacity = 10GiB +\n}\n");
  Run();
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0103"}) << Text();
}

TEST_F(CheckerTest, UnknownCountIsAnError) {
  Write("main.plinth", "region \"eu\" {}\nmarker \"m\" {\n  count = length(region.eu.path)\n  path = \"x\"\n}\n");
  Run();
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0308"}) << Text();
}

TEST_F(CheckerTest, RootVariablesFromOptionsAndValidation) {
  Write("main.plinth", R"(
variable "replicas" {
  type = int
  validation {
    condition = var.replicas >= 1 && var.replicas <= 16
    message   = "replicas must be between 1 and 16"
  }
}
marker "m" {
  count = var.replicas
  path  = "r${count.index}"
}
)");
  CheckOptions o;
  o.variable_sources.arguments = {{false, "replicas", "4"}};
  CheckedConfig c = Run(o);
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_EQ(c.resources.size(), 4u);
  o.variable_sources.arguments = {{false, "replicas", "40"}};
  Run(o);
  EXPECT_EQ(Codes().front(), "P0309") << Text();
  EXPECT_NE(Text().find("replicas must be between 1 and 16"), std::string::npos);
  // Without a value the variable is unknown, so count cannot be expanded.
  Run();
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0308"}) << Text();
}

// Root variable values from outside the configuration (compiler/check/variable_inputs.h).
class VariableInputsTest : public CheckerTest {
 protected:
  void SetUp() override {
    CheckerTest::SetUp();
    Write("main.plinth", R"(
variable "name" {
  type = string
}
variable "replicas" {
  type    = number
  default = 1
}
variable "token" {
  type      = number
  default   = 7
  sensitive = true
}
output "o" {
  value     = [var.name, var.replicas, var.token]
  sensitive = true
}
)");
  }
  static const VariableValue* Var(const CheckedConfig& c, const std::string& name) {
    for (const VariableValue& v : c.variables) {
      if (v.name == name) return &v;
    }
    return nullptr;
  }
  CheckedConfig RunWith(VariableSources sources) {
    CheckOptions o;
    o.variable_sources = std::move(sources);
    return Run(o);
  }
};

TEST_F(VariableInputsTest, TextIsALiteralOfTheDeclaredType) {
  CheckedConfig c = RunWith({{}, false, {{false, "name", "1"}, {false, "replicas", "3"}}});
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("1"))) << Var(c, "name")->value.ToString();
  EXPECT_TRUE(Var(c, "replicas")->value.Equals(Value::Number(3))) << Var(c, "replicas")->value.ToString();
  // null is null for any type, so a string variable can be reset to null.
  c = RunWith({{}, false, {{false, "name", "null"}}});
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_TRUE(Var(c, "name")->value.is_null());
  // A text that is not a number, for a number variable: the error names the source.
  RunWith({{}, false, {{false, "name", "x"}, {false, "replicas", "three"}}});
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0301"}) << Text();
  EXPECT_NE(Text().find("variable 'replicas' expects number, got \"three\" from --var replicas"), std::string::npos)
      << Text();
}

TEST_F(VariableInputsTest, SensitiveValuesStaySensitiveFromEverySource) {
  RunWith({{{"token", "s3cr3t"}}, false, {}});
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0301"}) << Text();
  EXPECT_NE(Text().find("from PLINTH_VAR_token"), std::string::npos) << Text();
  EXPECT_EQ(Text().find("s3cr3t"), std::string::npos) << Text();
  Write("secret.plinthvars", "token = \"hunter2\"\n");
  RunWith({{}, false, {{true, "", (dir_ / "secret.plinthvars").string()}}});
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0301"}) << Text();
  EXPECT_EQ(Text().find("hunter2"), std::string::npos) << Text();
  EXPECT_NE(Text().find("main.plinth:9:10: error[P0301]: variable 'token' expects number, got string from "),
            std::string::npos) << Text();
  EXPECT_NE(Text().find("secret.plinthvars:1:9"), std::string::npos) << Text();
  Write("secret.plinthvars", "token = 42\nname = \"n\"\n");
  CheckedConfig c = RunWith({{}, false, {{true, "", (dir_ / "secret.plinthvars").string()}}});
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_TRUE(Var(c, "token")->value.sensitive());
}

TEST_F(VariableInputsTest, PrecedenceFromLowestToHighest) {
  // environment < plinth.plinthvars < *.auto.plinthvars (by name) < --var/--var-file in order.
  VariableSources s{{{"name", "env"}, {"replicas", "2"}}, true, {}};
  CheckedConfig c = RunWith(s);
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("env"))) << Var(c, "name")->value.ToString();
  EXPECT_TRUE(Var(c, "replicas")->value.Equals(Value::Number(2))) << Var(c, "replicas")->value.ToString();
  Write("plinth.plinthvars", "name = \"default-file\"\n");
  c = RunWith(s);
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("default-file"))) << Var(c, "name")->value.ToString();
  Write("b.auto.plinthvars", "name = \"b\"\n");
  Write("a.auto.plinthvars", "name = \"a\"\nreplicas = 5\n");
  c = RunWith(s);
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("b"))) << Var(c, "name")->value.ToString();
  EXPECT_TRUE(Var(c, "replicas")->value.Equals(Value::Number(5))) << Var(c, "replicas")->value.ToString();
  Write("x.plinthvars", "name = \"file\"\n");
  s.arguments = {{false, "name", "cli"}, {true, "", (dir_ / "x.plinthvars").string()}};
  c = RunWith(s);
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("file"))) << Var(c, "name")->value.ToString();
  s.arguments = {{true, "", (dir_ / "x.plinthvars").string()}, {false, "name", "cli"}};
  c = RunWith(s);
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("cli"))) << Var(c, "name")->value.ToString();
  // Without auto_files (a caller that does not want them) the files are not read.
  c = RunWith({{}, false, {{false, "name", "only"}}});
  EXPECT_TRUE(Var(c, "name")->value.Equals(Value::String("only"))) << Var(c, "name")->value.ToString();
}

TEST_F(VariableInputsTest, UndeclaredNames) {
  Write("x.plinthvars", "name = \"n\"\nnope = 1\n");
  RunWith({{{"also_nope", "1"}}, false, {{true, "", (dir_ / "x.plinthvars").string()}}});
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0202"}) << Text();
  EXPECT_NE(Text().find("x.plinthvars:2:1: error[P0202]: no variable named 'nope' is declared"), std::string::npos) << Text();
  RunWith({{}, false, {{false, "name", "n"}, {false, "nmae", "1"}}});
  EXPECT_NE(Text().find("error[P0202]: no variable named 'nmae' is declared (set by --var nmae)"), std::string::npos) << Text();
  Write("z.auto.plinthvars", "name = \"n\"\nshared = 1\n");
  RunWith({{}, true, {}});
  EXPECT_FALSE(diags_->has_errors()) << Text();
  EXPECT_NE(Text().find("z.auto.plinthvars:2:1: warning[P0202]: no variable named 'shared' is declared"), std::string::npos)
      << Text();
}

TEST_F(VariableInputsTest, VariablesFileErrorsHaveLocations) {
  Write("bad.plinthvars", "name = var.other\nreplicas = \"x\"\nreplicas = 2\nvariable \"v\" {}\n");
  RunWith({{}, false, {{true, "", (dir_ / "bad.plinthvars").string()}}});
  std::string t = Text();
  EXPECT_NE(t.find("bad.plinthvars:1:8: error[P0211]: a variables file takes constant values; 'var' is a reference"),
            std::string::npos) << t;
  EXPECT_NE(t.find("bad.plinthvars:2:12: error[P0301]: variable 'replicas' expects number, got \"x\""), std::string::npos) << t;
  EXPECT_NE(t.find("bad.plinthvars:3:1: error[P0209]: variable 'replicas' is set twice in this file"), std::string::npos) << t;
  EXPECT_NE(t.find("bad.plinthvars:4:1: error[P0203]: a variables file takes only NAME = VALUE assignments"),
            std::string::npos) << t;
  RunWith({{}, false, {{true, "", (dir_ / "missing.plinthvars").string()}}});
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0110"}) << Text();
}

class NullHook : public ResourceHook {
 public:
  ValueMap Planned(const ResourceInstance& r) override { return r.attributes; }
};

TEST_F(VariableInputsTest, MissingRootValueIsAnErrorWhenPlanning) {
  // Validate (no hook) treats it as unknown.
  RunWith({});
  EXPECT_FALSE(diags_->has_errors()) << Text();
  NullHook hook;
  CheckOptions o;
  o.resource_hook = &hook;
  Run(o);
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0205"}) << Text();
  EXPECT_NE(Text().find("main.plinth:2:10: error[P0205]: root variable 'name' has no value"), std::string::npos) << Text();
  EXPECT_NE(Text().find("--var name=VALUE"), std::string::npos) << Text();
  EXPECT_NE(Text().find("PLINTH_VAR_name"), std::string::npos) << Text();
}

TEST_F(CheckerTest, SensitiveValuesNeverRendered) {
  Write("main.plinth", R"(
variable "token" {
  type      = string
  default   = "hunter2"
  sensitive = true
}
marker "m" {
  path    = "x"
  content = var.token
}
output "leak" { value = var.token }
)");
  CheckedConfig c = Run();
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0402"}) << Text();
  EXPECT_EQ(Text().find("hunter2"), std::string::npos);
  EXPECT_EQ(Find(c, "marker.m")->attributes.at("content").ToString(), "(sensitive)");
}

TEST_F(CheckerTest, ReferenceAttributesCheckTheResourceType) {
  Write("main.plinth", "marker \"m\" { path = \"x\" }\nregion \"eu\" {}\nbucket \"b\" { region = marker.m }\n");
  Run();
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0301"}) << Text();
}

// A planner that knows where regions live: references to region paths
// become known, in dependency order.
class RegionPathHook : public ResourceHook {
 public:
  std::vector<std::string> seen;
  ValueMap Planned(const ResourceInstance& r) override {
    seen.push_back(r.address);
    ValueMap m = r.attributes;
    if (r.type == "region") m["path"] = Value::String("/data/regions/" + r.name);
    return m;
  }
};

TEST_F(CheckerTest, ResourceHookAnswersReferences) {
  Write("main.plinth", R"(
marker "m" {
  path    = "note"
  content = region.eu.path
}
region "eu" {}
)");
  RegionPathHook hook;
  CheckOptions o;
  o.resource_hook = &hook;
  CheckedConfig c = Run(o);
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_EQ(Find(c, "marker.m")->attributes.at("content").as_string(), "/data/regions/eu");
  EXPECT_EQ(hook.seen, (std::vector<std::string>{"region.eu", "marker.m"}));
}

// lifecycle.correct_drift (docs/controller.md, "Drift"): a bool literal,
// carried to the instance; anything else is a located error with help.
TEST_F(CheckerTest, LifecycleCorrectDriftIsABoolLiteral) {
  Write("main.plinth", R"(marker "fixed" {
  path = "m/fixed"
  lifecycle {
    correct_drift = true
  }
}
marker "reported" {
  path = "m/reported"
}
)");
  CheckedConfig c = Run();
  ASSERT_FALSE(diags_->has_errors()) << Text();
  ASSERT_NE(Find(c, "marker.fixed"), nullptr);
  ASSERT_NE(Find(c, "marker.reported"), nullptr);
  EXPECT_TRUE(Find(c, "marker.fixed")->correct_drift);
  EXPECT_FALSE(Find(c, "marker.reported")->correct_drift);

  Write("main.plinth", R"(marker "m" {
  path = "m/m"
  lifecycle {
    correct_drift = "yes"
  }
}
marker "n" {
  path = "m/n"
  lifecycle {
    corect_drift = true
  }
}
)");
  Run();
  EXPECT_EQ(Codes(), (std::vector<std::string>{"P0311", "P0204"})) << Text();
  const std::string text = Text();
  EXPECT_NE(text.find("main.plinth:4:21: error[P0311]: 'correct_drift' must be true or false"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("main.plinth:10:5"), std::string::npos) << text;
  EXPECT_NE(text.find("did you mean 'correct_drift'?"), std::string::npos) << text;
}

}  // namespace
}  // namespace plinth

namespace plinth {
namespace {

// The backend block (compiler/check/backend_block.h): accepted in the root
// module with literal strings; each misuse is a located error.
class BackendBlockTest : public CheckerTest {};

TEST_F(BackendBlockTest, AcceptedInTheRootModule) {
  Write("main.plinth",
        "backend \"postgres\" {\n  url    = \"postgres://plinth@db.internal/infra?sslmode=require\"\n"
        "  schema = \"payments\"\n}\n");
  Run();
  EXPECT_TRUE(Codes().empty()) << Text();
}

TEST_F(BackendBlockTest, EachMisuseIsALocatedError) {
  struct Case {
    std::string body;
    std::string code;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"backend \"s3\" {\n  url = \"postgres://h/db\"\n}\n", "P0206", "one label"},
      {"backend \"postgres\" {\n  schema = \"x\"\n}\n", "P0205", "needs url"},
      {"backend \"postgres\" {\n  url = \"postgres://u:hunter2@h/db\"\n}\n", "P0301", "holds a password"},
      {"backend \"postgres\" {\n  url = \"postgres://h/db?password=hunter2\"\n}\n", "P0301", "holds a password"},
      {"backend \"postgres\" {\n  url = \"mysql://h/db\"\n}\n", "P0301", "PostgreSQL URL"},
      {"variable \"u\" {\n  default = \"x\"\n}\nbackend \"postgres\" {\n  url = var.u\n}\n", "P0301",
       "literal string"},
      {"backend \"postgres\" {\n  url = \"postgres://h/db\"\n  schema = \"a-b\"\n}\n", "P0301", "schema prefix"},
      {"backend \"postgres\" {\n  url = \"postgres://h/db\"\n  lock = true\n}\n", "P0204", "no attribute 'lock'"},
      {"backend \"postgres\" {\n  url = \"postgres://h/a\"\n}\nbackend \"postgres\" {\n  url = \"postgres://h/b\"\n}\n",
       "P0201", "one backend block"},
  };
  for (const Case& c : cases) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Write("main.plinth", c.body);
    Run();
    std::vector<std::string> codes = Codes();
    EXPECT_NE(std::find(codes.begin(), codes.end(), c.code), codes.end()) << c.body << Text();
    EXPECT_NE(Text().find(c.says), std::string::npos) << c.body << Text();
  }
}

TEST_F(BackendBlockTest, OnlyInTheRootModule) {
  Write("main.plinth", "module \"m\" {\n  source = \"./m\"\n}\n");
  Write("m/main.plinth", "backend \"postgres\" {\n  url = \"postgres://h/db\"\n}\n");
  Run();
  EXPECT_EQ(Codes(), std::vector<std::string>{"P0203"}) << Text();
  EXPECT_NE(Text().find("belongs in the root module"), std::string::npos) << Text();
}

}  // namespace
}  // namespace plinth
