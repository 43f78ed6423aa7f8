// Unit tests for the console's evaluation API (compiler/check/console.h): a
// configuration is checked once with keep_root_scope, then lines are
// evaluated against its root module; a fake resource hook plays the state.
#include "compiler/check/console.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "runtime/providers/catalog.h"
#include "tests/support/files.h"

namespace plinth {
namespace {

// Answers with "recorded" attributes for the addresses it knows, as the
// CLI's hook answers with the state; others keep the configured values.
class FakeState : public ResourceHook {
 public:
  std::map<std::string, ValueMap> recorded;
  ValueMap Planned(const ResourceInstance& ri) override {
    auto it = recorded.find(ri.address);
    return it == recorded.end() ? ri.attributes : it->second;
  }
};

class ConsoleTest : public ::testing::Test {
 protected:
  void Write(const std::string& text) { testing::WriteFile(dir_.path() / "main.plinth", text); }

  // Checks the configuration; returns false (with the errors) when it has any.
  ::testing::AssertionResult Open(ResourceHook* hook = nullptr) {
    options_.schemas = &runtime::BuiltinSchemas();
    options_.keep_root_scope = true;
    options_.resource_hook = hook;
    options_.variable_sources.arguments = vars_;
    config_ = Check(dir_.path().string(), sources_, check_diags_, options_);
    if (check_diags_.has_errors() || !config_.root_scope) {
      return ::testing::AssertionFailure() << RenderText(check_diags_.Sorted(sources_), sources_, {});
    }
    console_ = std::make_unique<Console>(config_.root_scope, sources_);
    return ::testing::AssertionSuccess();
  }

  // The line's value as the console prints it, or "error: " and its
  // rendered diagnostics.
  std::string Eval(const std::string& line) {
    Diagnostics diags;
    std::optional<Value> v = console_->EvaluateLine(line, diags);
    if (!v) {
      EXPECT_TRUE(diags.has_errors()) << line;
      return "error: " + RenderText(diags.Sorted(sources_), sources_, {});
    }
    EXPECT_FALSE(diags.has_errors()) << line;
    return Console::Display(*v);
  }

  testing::TempDir dir_{"plinth-console"};
  std::vector<VariableArgument> vars_;
  SourceManager sources_;
  Diagnostics check_diags_;
  CheckOptions options_;
  CheckedConfig config_;
  std::unique_ptr<Console> console_;
};

TEST_F(ConsoleTest, VariablesLocalsAndFunctions) {
  Write(R"(
variable "env" {
  type    = string
  default = "dev"
}
variable "replicas" { type = number }
locals {
  names   = ["a", "b"]
  greeting = "hi ${var.env}"
  sizes   = { "my key" = 1GiB }
}
)");
  vars_.push_back({false, "replicas", "3"});
  ASSERT_TRUE(Open());
  EXPECT_EQ(Eval("var.env"), "\"dev\"");
  EXPECT_EQ(Eval("var.replicas * 2"), "6");
  EXPECT_EQ(Eval("local.names"), "[\"a\", \"b\"]");
  EXPECT_EQ(Eval("local.greeting"), "\"hi dev\"");
  EXPECT_EQ(Eval("local.sizes"), "{ \"my key\" = 1GiB }");
  EXPECT_EQ(Eval("upper(\"a\")"), "\"A\"");
  EXPECT_EQ(Eval("[for n in local.names : upper(n)]"), "[\"A\", \"B\"]");
  EXPECT_EQ(Eval("30s + 5m"), "330s");
  EXPECT_EQ(Eval("  length(local.names)  "), "2");
  EXPECT_EQ(Eval("path.module"), "\"" + dir_.path().string() + "\"");
}

TEST_F(ConsoleTest, ErrorsAreLocatedInTheLine) {
  Write(R"(
variable "env" {
  type    = string
  default = "dev"
}
locals {
  names = ["a"]
}
)");
  ASSERT_TRUE(Open());
  // An unknown root, with "did you mean".
  std::string e = Eval("nope.z");
  EXPECT_NE(e.find("<console>:1:1: error[P"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown name 'nope'"), std::string::npos) << e;
  e = Eval("var.enf");
  EXPECT_NE(e.find("<console>:1:1:"), std::string::npos) << e;
  EXPECT_NE(e.find("no variable named 'enf'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'var.env'?"), std::string::npos) << e;
  e = Eval("local.missing");
  EXPECT_NE(e.find("no local value named 'missing'"), std::string::npos) << e;
  // A type error: the column points into the line.
  e = Eval("1 + 30s");
  EXPECT_NE(e.find("<console>:1:"), std::string::npos) << e;
  // A syntax error.
  e = Eval("local.names[");
  EXPECT_NE(e.find("<console>:1:"), std::string::npos) << e;
  e = Eval("nosuchfunction(1)");
  EXPECT_NE(e.find("nosuchfunction"), std::string::npos) << e;
  // Names only blocks have.
  EXPECT_NE(Eval("each.key").find("'each' is only available"), std::string::npos);
  EXPECT_NE(Eval("self").find("'self' is only available"), std::string::npos);
  // The console goes on after an error.
  EXPECT_EQ(Eval("local.names[0]"), "\"a\"");
}

TEST_F(ConsoleTest, ResourcesFromTheStateElseUnknown) {
  Write(R"(
marker "a" {
  path = "a.txt"
}
marker "many" {
  count = 2
  path  = "m${count.index}"
}
module "m" {
  source = "./mod"
}
)");
  std::filesystem::create_directories(dir_.path() / "mod");
  testing::WriteFile(dir_.path() / "mod" / "main.plinth", R"(
marker "inner" {
  path = "inner.txt"
}
output "out" { value = marker.inner.id }
)");
  FakeState state;
  state.recorded["marker.a"] = {
      {"path", Value::String("a.txt")}, {"id", Value::String("id-a")}, {"content", Value::String("")}};
  state.recorded["marker.many[1]"] = {{"path", Value::String("m1")}, {"id", Value::String("id-m1")}};
  state.recorded["module.m.marker.inner"] = {{"path", Value::String("inner.txt")},
                                             {"id", Value::String("id-in")}};
  ASSERT_TRUE(Open(&state));
  EXPECT_EQ(Eval("marker.a.id"), "\"id-a\"");
  EXPECT_EQ(Eval("marker.a.path"), "\"a.txt\"");
  EXPECT_EQ(Eval("marker.many[*].id"), "[(known after apply), \"id-m1\"]");
  EXPECT_EQ(Eval("marker.many[0].path"), "\"m0\"");
  EXPECT_EQ(Eval("module.m.out"), "\"id-in\"");
  EXPECT_EQ(Eval("upper(marker.many[0].id)"), "(known after apply)");
  std::string e = Eval("marker.a.nope");
  EXPECT_NE(e.find("has no attribute 'nope'"), std::string::npos) << e;
  e = Eval("marker.b.id");
  EXPECT_NE(e.find("no marker named 'b'"), std::string::npos) << e;
  e = Eval("module.m.missing");
  EXPECT_NE(e.find("module 'm' has no output 'missing'"), std::string::npos) << e;
}

TEST_F(ConsoleTest, WithoutAHookResourcesAreAsConfigured) {
  Write(R"(
marker "a" {
  path = "a.txt"
}
)");
  ASSERT_TRUE(Open());
  EXPECT_EQ(Eval("marker.a.path"), "\"a.txt\"");
  EXPECT_EQ(Eval("marker.a.id"), "(known after apply)");
}

TEST_F(ConsoleTest, SensitiveValuesAreNeverPrinted) {
  Write(R"(
variable "token" {
  type      = string
  default   = "s3cr3t"
  sensitive = true
}
locals {
  wrapped = { token = var.token }
}
)");
  ASSERT_TRUE(Open());
  EXPECT_EQ(Eval("var.token"), "(sensitive value)");
  EXPECT_EQ(Eval("upper(var.token)"), "(sensitive value)");
  EXPECT_EQ(Eval("local.wrapped"), "{ token = (sensitive) }");
  EXPECT_EQ(Eval("length(var.token) > 0"), "(sensitive value)");
  // An error about a sensitive value does not quote it.
  std::string e = Eval("var.token + 1");
  EXPECT_EQ(e.find("s3cr3t"), std::string::npos) << e;
}

TEST_F(ConsoleTest, RootLocalsAreInTheCheckedConfig) {
  Write(R"(
locals {
  b = 2
  a = local.b + 1
}
)");
  ASSERT_TRUE(Open());
  ASSERT_EQ(config_.locals.size(), 2u);
  EXPECT_EQ(config_.locals[0].name, "b");  // declaration order, not evaluation order
  EXPECT_EQ(config_.locals[1].name, "a");
  EXPECT_EQ(config_.locals[1].value.ToString(), "3");
}

}  // namespace
}  // namespace plinth
