// CheckSession (compiler/check/checker.h): repeated checks of a directory as
// it is edited give exactly what a whole check gives (diagnostics, resource
// instances with their attributes, dependencies and call sites, locals and
// outputs), while declarations whose syntax and inputs are unchanged are
// kept rather than evaluated again.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "compiler/check/checker.h"
#include "compiler/check/loader.h"
#include "runtime/providers/catalog.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMain = R"(region "eu" {}

locals {
  size  = 10GiB
  teams = { ml = "a", data = "b" }
}

bucket "base" {
  region   = region.eu
  capacity = local.size
}

marker "chain" {
  count   = var.n
  path    = "chain/${count.index}"
  content = bucket.base.name
}

module "m" {
  source   = "./modules/m"
  for_each = local.teams
  team     = each.value
}

output "paths" {
  value = { for k, m in module.m : k => m.path }
}
)";

constexpr const char* kVars = R"(variable "n" {
  type    = number
  default = 2
}
)";

constexpr const char* kModule = R"(variable "team" {
  type = string
}

marker "m" {
  path = "m/${var.team}"
}

output "path" {
  value = marker.m.path
}

moved {
  from = marker.old
  to   = marker.m
}
)";

class CheckSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-session-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "modules" / "m");
    Write("main.plinth", kMain);
    Write("modules/m/main.plinth", kModule);
    Write("vars.plinth", kVars);
    main_ = (dir_ / "main.plinth").string();
    module_ = (dir_ / "modules" / "m" / "main.plinth").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& rel, const std::string& text) { std::ofstream(dir_ / rel) << text; }

  CheckOptions Options() {
    CheckOptions co;
    co.schemas = &runtime::BuiltinSchemas();
    co.display_root = "/";
    co.overlay = &overlay_;
    co.threads = 1;
    return co;
  }

  // Everything a check gives, as text that does not depend on file ids.
  static std::vector<std::string> Describe(const CheckedConfig& c, const Diagnostics& diags,
                                           const SourceManager& sources) {
    std::vector<std::string> out;
    std::vector<std::string> rendered;
    for (const Diagnostic& d : diags.items()) rendered.push_back(RenderText({d}, sources, {}));
    std::sort(rendered.begin(), rendered.end());
    out.insert(out.end(), rendered.begin(), rendered.end());
    auto where = [&](Range r) {
      if (!r.valid()) return std::string("-");
      const SourceFile& f = sources.Get(r.file);
      LineCol at = f.Position(r.begin);
      return f.path() + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
    };
    for (const ResourceInstance& r : c.resources) {
      std::string s = "resource " + r.address + " " + Value::Object(r.attributes).ToString(true) + " at " +
                      where(r.range) + " deps";
      for (const std::string& d : r.depends_on) s += " " + d;
      s += " calls";
      for (Range site : r.call_sites) s += " " + where(site);
      out.push_back(s);
    }
    for (const MoveStatement& m : c.moves) out.push_back("moved " + m.from + " -> " + m.to + " in " + m.module);
    out.push_back("module instances " + std::to_string(c.module_instances));
    for (const LocalValue& l : c.locals) out.push_back("local " + l.name + " = " + l.value.ToString(true));
    for (const OutputValue& o : c.outputs) out.push_back("output " + o.name + " = " + o.value.ToString(true));
    for (const VariableValue& v : c.variables) out.push_back("variable " + v.name + " = " + v.value.ToString(true));
    return out;
  }

  // The session's check and a whole check from nothing must agree.
  CheckSession::Stats CheckBoth() {
    Diagnostics diags;
    std::shared_ptr<const CheckedConfig> got = session_.Check(dir_.string(), diags, Options());
    std::vector<std::string> incremental = Describe(*got, diags, session_.parse_cache().sources());
    SourceManager sources;
    Diagnostics whole_diags;
    CheckedConfig whole = Check(dir_.string(), sources, whole_diags, Options());
    std::vector<std::string> expected = Describe(whole, whole_diags, sources);
    EXPECT_EQ(incremental, expected);
    return session_.last_stats();
  }

  fs::path dir_;
  std::string main_, module_;
  std::map<std::string, std::string> overlay_;
  CheckSession session_;
};

TEST_F(CheckSessionTest, EditsGiveWhatAWholeCheckGives) {
  CheckSession::Stats first = CheckBoth();
  EXPECT_EQ(first.reused, 0u);
  EXPECT_GT(first.evaluated, 0u);

  // Unchanged: every resource, local and module call is kept (the call
  // with its instances, whole); variables and outputs are evaluated.
  CheckSession::Stats same = CheckBoth();
  EXPECT_LT(same.evaluated, first.evaluated);
  // region.eu, bucket.base, marker.chain, local.size, local.teams, module.m.
  EXPECT_EQ(same.reused, 6u);
  EXPECT_EQ(CheckBoth().reused, 6u);

  // A comment: the file is parsed again (new syntax: evaluated again); the
  // module's instances read unchanged values and keep theirs.
  std::string text = std::string("# edited\n") + kMain;
  overlay_[main_] = text;
  CheckSession::Stats comment = CheckBoth();
  EXPECT_EQ(comment.reused, 2u);

  // A value that others read: each reader follows.
  auto replace = [&](const std::string& from, const std::string& to) {
    size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    overlay_[main_] = text;
  };
  replace("size  = 10GiB", "size  = 20GiB");
  CheckBoth();
  CheckBoth();

  // An error, then its fix.
  replace("content = bucket.base.name", "content = bucket.nope.name");
  CheckBoth();
  replace("content = bucket.nope.name", "content = bucket.base.name");
  CheckBoth();

  // More instances of the module, and a new key.
  replace("teams = { ml = \"a\", data = \"b\" }", "teams = { ml = \"a\", data = \"c\", web = \"d\" }");
  CheckBoth();
  replace("count   = var.n", "count   = var.n + 1");
  CheckBoth();
  // Resources before the call change in number (another file): the call
  // is kept whole, its instances' resources further on; then the call is
  // evaluated again (a comment moves it) and its instances' kept resources
  // are found where the last check put them.
  EXPECT_EQ(CheckBoth().reused, 6u);
  overlay_[(dir_ / "vars.plinth").string()] = std::string(kVars).replace(std::string(kVars).find("2"), 1, "4");
  EXPECT_EQ(CheckBoth().reused, 5u);  // marker.chain is evaluated again
  replace("# edited\n", "# edited again\n");
  CheckBoth();

  // The module's own file changes: its instances are evaluated again.
  overlay_[module_] = std::string(kModule) + "\nmarker \"extra\" {\n  path = \"x/${var.team}\"\n}\n";
  CheckBoth();
  // A declaration renamed: what referred to it no longer resolves.
  replace("bucket \"base\"", "bucket \"renamed\"");
  CheckBoth();
  replace("bucket \"renamed\"", "bucket \"base\"");
  CheckBoth();
  // A syntax error in one block, then fixed.
  replace("region   = region.eu", "region   = = region.eu");
  CheckBoth();
  replace("region   = = region.eu", "region   = region.eu");
  CheckBoth();
}

// What a file function reads can change on disk while the configuration
// does not: such a declaration is evaluated on every check.
TEST_F(CheckSessionTest, FileFunctionsAreReadEveryTime) {
  Write("data.txt", "one");
  overlay_[main_] = std::string(kMain) + "\nmarker \"file\" {\n  path    = \"f\"\n  content = file(\"data.txt\")\n}\n";
  CheckBoth();
  Write("data.txt", "two");
  CheckBoth();
  Diagnostics diags;
  std::shared_ptr<const CheckedConfig> c = session_.Check(dir_.string(), diags, Options());
  bool found = false;
  for (const ResourceInstance& r : c->resources) {
    if (r.address != "marker.file") continue;
    found = true;
    EXPECT_EQ(r.attributes.at("content").as_string(), "two");
  }
  EXPECT_TRUE(found);
}

// The previous result is not moved from while someone still holds it.
TEST_F(CheckSessionTest, AHeldResultStaysWhole) {
  Diagnostics d1;
  std::shared_ptr<const CheckedConfig> held = session_.Check(dir_.string(), d1, Options());
  std::vector<std::string> before = Describe(*held, d1, session_.parse_cache().sources());
  Diagnostics d2;
  std::shared_ptr<const CheckedConfig> next = session_.Check(dir_.string(), d2, Options());
  EXPECT_EQ(Describe(*held, d1, session_.parse_cache().sources()), before);
  EXPECT_EQ(Describe(*next, d2, session_.parse_cache().sources()), before);
  EXPECT_GT(session_.last_stats().reused, 0u);
}

}  // namespace
}  // namespace plinth
