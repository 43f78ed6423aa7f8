// Imports (docs/cli.md, "Importing existing objects"): the checker's reading
// of import blocks and its diagnostics, import blocks planned and applied by
// the engine, `plinth import` (Engine::Import), the hint on "already exists"
// errors, and generated configuration that plans no change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "compiler/check/checker.h"
#include "runtime/engine/engine.h"
#include "runtime/plan/imports.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"
#include "runtime/providers/protocol/rpc_provider.h"
#include "runtime/state/state_store.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

class ImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    dir_ = tmp_.path();
  }

  void Write(const std::string& rel, const std::string& text) {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }
  // A file in the data root, written behind Plinth's back.
  void WriteData(const std::string& rel, const std::string& text) { Write(".plinth/default/data/" + rel, text); }
  std::string ReadData(const std::string& rel) {
    return plinth::testing::ReadFile(dir_ / ".plinth" / "default" / "data" / rel);
  }

  // Checks the configuration as validate does (no hook) or as a plan does.
  CheckedConfig Checked(bool planning = false) {
    diags_ = std::make_unique<Diagnostics>();
    sources_ = std::make_unique<SourceManager>();
    CheckOptions co;
    co.schemas = &BuiltinSchemas();
    struct NoHook : ResourceHook {
      ValueMap Planned(const ResourceInstance& ri) override { return ri.attributes; }
    } hook;
    if (planning) co.resource_hook = &hook;
    return Check(dir_.string(), *sources_, *diags_, co);
  }
  std::vector<std::string> Codes() const {
    std::vector<std::string> out;
    for (const Diagnostic& d : diags_->Sorted(*sources_)) out.emplace_back(Info(d.code).code);
    return out;
  }
  std::string Text() const { return RenderText(diags_->Sorted(*sources_), *sources_, {}); }

  EngineOptions Options() {
    EngineOptions eo;
    eo.config_dir = dir_.string();
    eo.parallelism = 2;
    return eo;
  }
  EngineResult PlanNow(EngineOptions eo) {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(std::move(eo), sources, diags);
    EngineResult r = engine.Plan();
    EXPECT_FALSE(diags.has_errors()) << RenderText(diags.Sorted(sources), sources, {});
    return r;
  }
  EngineResult PlanNow() { return PlanNow(Options()); }
  EngineResult ApplyNow() {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(Options(), sources, diags);
    EngineResult r = engine.Apply();
    EXPECT_FALSE(diags.has_errors()) << RenderText(diags.Sorted(sources), sources, {});
    return r;
  }
  EngineResult ImportNow(const std::string& address, const std::string& id) {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(Options(), sources, diags);
    return engine.Import(address, id);
  }
  std::vector<state::ResourceRecord> StateNow() {
    auto store = state::StateStore::OpenWorkspace(dir_.string(), "default");
    if (!store.ok()) return {};
    auto rs = store.value()->Resources();
    return rs.ok() ? rs.value() : std::vector<state::ResourceRecord>{};
  }
  static const PlannedResource* Find(const Plan& p, const std::string& address) {
    for (const PlannedResource& r : p.resources) {
      if (r.address == address) return &r;
    }
    return nullptr;
  }

  plinth::testing::TempDir tmp_{"plinth-import"};
  fs::path dir_;
  std::unique_ptr<Diagnostics> diags_;
  std::unique_ptr<SourceManager> sources_;
};

// ------------------------------------------------------------- the checker

TEST_F(ImportTest, ImportBlocksSpellTheirTargetsAsPlansDoAndEvaluateTheirIds) {
  Write("main.plinth", R"(
variable "day" {
  type    = string
  default = "today"
}
locals {
  log = "logs/${var.day}"
}
marker "a" {
  path = local.log
}
marker "s" {
  count = 3
  path  = "s/${count.index}"
}
import {
  to = marker.a
  id = local.log
}
import {
  to = marker.s[2]
  id = "s/2"
}
import {
  to = module.net["eu"].region.r
  id = "eu"
}
import {
  to = bucket.b["k"]
  id = "eu/b"
}
)");
  CheckedConfig c = Checked();
  EXPECT_TRUE(Codes().empty()) << Text();
  ASSERT_EQ(c.imports.size(), 4u);
  EXPECT_EQ(c.imports[0].to, "marker.a");
  EXPECT_EQ(c.imports[0].type, "marker");
  EXPECT_EQ(c.imports[0].id, "logs/today");
  EXPECT_EQ(c.imports[1].to, "marker.s[2]");
  EXPECT_EQ(c.imports[2].to, "module.net[\"eu\"].region.r");
  EXPECT_EQ(c.imports[2].type, "region");
  EXPECT_EQ(c.imports[3].to, "bucket.b[\"k\"]");
  EXPECT_EQ(c.imports[3].id, "eu/b");
}

TEST_F(ImportTest, MalformedTargetsArePreciseErrors) {
  Write("main.plinth", R"(
marker "a" {
  path = "a"
}
import {
  to = "marker.a"
  id = "a"
}
import {
  to = marker.a.path
  id = "a"
}
import {
  to = markr.a
  id = "a"
}
import {
  to = marker.a[each.key]
  id = "a"
}
import {
  to = marker
  id = "a"
}
)");
  Checked();
  std::string text = Text();
  EXPECT_EQ(Codes(), (std::vector<std::string>{"P0216", "P0216", "P0216", "P0216", "P0216"})) << text;
  EXPECT_NE(text.find("main.plinth:6:8: error[P0216]: an import's 'to' is a resource address, not a string"),
            std::string::npos) << text;
  EXPECT_NE(text.find("help: write it without quotes: to = marker.a"), std::string::npos);
  EXPECT_NE(text.find("names a resource instance, not one of its attributes"), std::string::npos);
  EXPECT_NE(text.find("help: remove '.path': to = marker.a"), std::string::npos);
  EXPECT_NE(text.find("no resource type 'markr' to import to"), std::string::npos);
  EXPECT_NE(text.find("did you mean 'marker'?"), std::string::npos);
  EXPECT_NE(text.find("instance key in an import's 'to' must be a literal string or a whole number"),
            std::string::npos);
  EXPECT_NE(text.find("'marker' in an import's 'to' must be followed by a resource name"), std::string::npos);
}

TEST_F(ImportTest, DuplicateTargetsMissingAttributesAndExtraAttributesAreErrors) {
  Write("main.plinth", R"(
marker "a" {
  path = "a"
}
import {
  to = marker.a
  id = "a"
}
import {
  to = marker.a
  id = "b"
}
import {
  to = marker.a
}
import {
  to       = marker.b
  id       = "b"
  for_each = ["x"]
}
)");
  Checked();
  std::string text = Text();
  EXPECT_EQ(Codes(), (std::vector<std::string>{"P0217", "P0205", "P0204"})) << text;
  EXPECT_NE(text.find("two import blocks import to marker.a"), std::string::npos) << text;
  EXPECT_NE(text.find("first imported here"), std::string::npos);
  EXPECT_NE(text.find("an import block needs 'id'"), std::string::npos);
  EXPECT_NE(text.find("an import block has no attribute 'for_each'"), std::string::npos);
}

TEST_F(ImportTest, ImportBlocksBelongInTheRootModule) {
  Write("main.plinth", R"(
module "net" {
  source = "./net"
}
)");
  Write("net/main.plinth", R"(
marker "a" {
  path = "a"
}
import {
  to = marker.a
  id = "a"
}
)");
  CheckedConfig c = Checked();
  EXPECT_EQ(Codes(), (std::vector<std::string>{"P0216"})) << Text();
  EXPECT_NE(Text().find("an import block belongs in the root module"), std::string::npos);
  EXPECT_TRUE(c.imports.empty());
}

TEST_F(ImportTest, IdsMustBeKnownNonEmptyStringsThatDoNotDependOnTheTarget) {
  Write("main.plinth", R"(
marker "a" {
  path = "a"
}
marker "b" {
  path = "b"
}
marker "c" {
  path = "c"
}
import {
  to = marker.a
  id = 42
}
import {
  to = marker.b
  id = ""
}
import {
  to = marker.c
  id = marker.c.path
}
)");
  Checked(/*planning=*/true);
  std::string text = Text();
  EXPECT_EQ(Codes(), (std::vector<std::string>{"P0208", "P0301", "P0301"})) << text;
  EXPECT_NE(text.find("an import id is a string, not 42"), std::string::npos) << text;
  EXPECT_NE(text.find("the id of the import to marker.b is empty"), std::string::npos);
  EXPECT_NE(text.find("dependency cycle: marker.c -> the import of marker.c -> marker.c"), std::string::npos);
}

TEST_F(ImportTest, AnIdKnownOnlyAfterApplyIsAnErrorWhenPlanning) {
  Write("main.plinth", R"(
region "eu" {}
marker "a" {
  path = "a"
}
import {
  to = marker.a
  id = region.eu.path
}
)");
  Checked();  // validate: the checker sees configured values only; planning is what needs it
  Checked(/*planning=*/true);
  EXPECT_EQ(Codes(), (std::vector<std::string>{"P0308"})) << Text();
  EXPECT_NE(Text().find("the id of the import to marker.a is known only after apply"), std::string::npos);
}

// ------------------------------------------------------------- the engine

TEST_F(ImportTest, AnImportBlockIsPlannedAppliedOnceAndThenHarmless) {
  Write("main.plinth", R"(
marker "logs" {
  path    = "logs/today"
  content = "new"
}
marker "reader" {
  path    = "reader"
  content = marker.logs.content
}
import {
  to = marker.logs
  id = "logs/today"
}
)");
  WriteData("logs/today", "old");
  EngineResult plan = PlanNow();
  ASSERT_TRUE(plan.ok) << (plan.errors.empty() ? "" : plan.errors[0]);
  ASSERT_TRUE(plan.plan.problems.empty()) << plan.plan.problems[0].message;
  const PlannedResource* logs = Find(plan.plan, "marker.logs");
  ASSERT_NE(logs, nullptr);
  EXPECT_EQ(logs->import_id, "logs/today");
  EXPECT_EQ(logs->action, Action::Update);
  ASSERT_TRUE(logs->prior.has_value());
  EXPECT_EQ(logs->prior->at("content").as_string(), "old");
  EXPECT_EQ(plan.plan.Imports(), 1u);
  const std::string text = RenderPlanText(plan.plan, false);
  EXPECT_NE(text.find("  # marker.logs will be imported (id \"logs/today\")\n  # marker.logs will be updated in place"),
            std::string::npos) << text;
  EXPECT_NE(text.find("Plan: 1 to import, 1 to create, 1 to update, 0 to replace, 0 to delete."), std::string::npos)
      << text;
  EXPECT_NE(RenderPlanJson(plan.plan).find("\"importing\": {\n        \"id\": \"logs/today\"\n      }"),
            std::string::npos);
  EXPECT_TRUE(StateNow().empty());  // planning changed nothing
  EXPECT_EQ(ReadData("logs/today"), "old");

  EngineResult applied = ApplyNow();
  ASSERT_TRUE(applied.ok) << (applied.errors.empty() ? "" : applied.errors[0]);
  EXPECT_EQ(ReadData("logs/today"), "new");
  EXPECT_EQ(ReadData("reader"), "new");
  bool found = false;
  for (const state::ResourceRecord& rec : StateNow()) {
    if (rec.address != "marker.logs") continue;
    found = true;
    EXPECT_EQ(rec.id, "logs/today");
    EXPECT_EQ(rec.attributes.at("content").as_string(), "new");
  }
  EXPECT_TRUE(found);
  // The block stays; it is a no-op now.
  EngineResult again = PlanNow();
  ASSERT_TRUE(again.ok);
  EXPECT_FALSE(again.plan.HasChanges()) << RenderPlanText(again.plan, false);
  EXPECT_TRUE(again.plan.problems.empty());
}

TEST_F(ImportTest, AnImportThatOnlyRecordsIsAChangeAndApplyRecordsIt) {
  Write("main.plinth", R"(
marker "logs" {
  path    = "logs/today"
  content = "same"
}
import {
  to = marker.logs
  id = "logs/today"
}
)");
  WriteData("logs/today", "same");
  EngineResult plan = PlanNow();
  ASSERT_TRUE(plan.ok);
  ASSERT_EQ(plan.plan.resources.size(), 1u);
  EXPECT_EQ(plan.plan.resources[0].action, Action::NoOp);
  EXPECT_TRUE(plan.plan.HasChanges());
  Graph g = BuildGraph(plan.plan);
  ASSERT_EQ(g.nodes.size(), 1u);
  EXPECT_EQ(g.nodes[0].step, GraphNode::Step::Apply);
  EngineResult applied = ApplyNow();
  ASSERT_TRUE(applied.ok) << (applied.errors.empty() ? "" : applied.errors[0]);
  EXPECT_EQ(applied.applied, 1u);
  ASSERT_EQ(StateNow().size(), 1u);
  EXPECT_FALSE(PlanNow().plan.HasChanges());
}

TEST_F(ImportTest, ADestroyPlanImportsNothing) {
  Write("main.plinth", R"(
marker "logs" {
  path = "logs/today"
}
import {
  to = marker.logs
  id = "logs/today"
}
)");
  WriteData("logs/today", "");
  SourceManager sources;
  Diagnostics diags;
  Engine engine(Options(), sources, diags);
  EngineResult r = engine.Plan(/*destroy=*/true);
  ASSERT_TRUE(r.ok);
  EXPECT_FALSE(r.plan.HasChanges());
}

TEST_F(ImportTest, GenerateConfigReturnsTheObjectsOfUndeclaredTargets) {
  Write("main.plinth", R"(
import {
  to = marker.logs
  id = "logs/today"
}
)");
  WriteData("logs/today", "hello");
  EngineResult without = PlanNow();
  ASSERT_EQ(without.plan.problems.size(), 1u);
  EXPECT_NE(without.plan.problems[0].message.find(
                "the import block imports to marker.logs, which is not in the configuration; add its resource block "
                "(plinth import --print-config marker.logs \"logs/today\" prints one), or plan with "
                "--generate-config-out=FILE"),
            std::string::npos)
      << without.plan.problems[0].message;
  EngineOptions eo = Options();
  eo.generate_config = true;
  EngineResult with = PlanNow(std::move(eo));
  ASSERT_TRUE(with.ok);
  EXPECT_TRUE(with.plan.problems.empty());
  ASSERT_EQ(with.generated.size(), 1u);
  EXPECT_EQ(with.generated[0].address, "marker.logs");
  EXPECT_EQ(with.generated[0].id, "logs/today");
  ASSERT_NE(with.generated[0].schema, nullptr);

  // The generated block, added to the configuration, validates and plans
  // the import with no other change.
  std::string error;
  std::string block = GenerateResourceBlock(with.generated[0], *with.generated[0].schema, &error);
  ASSERT_FALSE(block.empty()) << error;
  EXPECT_EQ(block,
            "# imported from marker \"logs/today\"\n"
            "marker \"logs\" {\n"
            "  path    = \"logs/today\"\n"
            "  content = \"hello\"\n"
            "}\n");
  Write("generated.plinth", block);
  Checked();
  EXPECT_TRUE(Codes().empty()) << Text();
  EngineResult plan = PlanNow();
  ASSERT_TRUE(plan.ok);
  ASSERT_TRUE(plan.plan.problems.empty()) << plan.plan.problems[0].message;
  ASSERT_EQ(plan.plan.resources.size(), 1u);
  EXPECT_EQ(plan.plan.resources[0].import_id, "logs/today");
  EXPECT_EQ(plan.plan.resources[0].action, Action::NoOp);
}

TEST_F(ImportTest, GeneratedBucketConfigNeverPrintsSecretsAndPlansNoChange) {
  Write("main.plinth", R"(
region "eu" {}
bucket "data" {
  region   = region.eu
  capacity = 20GiB
  labels   = { team = "ml" }
  grant "trainer" {
    access = "read"
  }
}
)");
  ASSERT_TRUE(ApplyNow().ok);
  std::vector<state::ResourceRecord> before = StateNow();
  ASSERT_EQ(before.size(), 2u);
  // Forget the bucket (as `plinth state rm` does), then import it back.
  Write("main.plinth", "region \"eu\" {}\n");
  SourceManager sources;
  Diagnostics diags;
  Engine engine(Options(), sources, diags);
  EngineResult obj = engine.ImportObject("bucket.data", "bucket", "eu/data");
  ASSERT_TRUE(obj.ok) << (obj.errors.empty() ? "" : obj.errors[0]);
  ASSERT_EQ(obj.generated.size(), 1u);
  std::string error;
  std::string block = GenerateResourceBlock(obj.generated[0], *obj.generated[0].schema, &error);
  ASSERT_FALSE(block.empty()) << error;
  EXPECT_NE(block.find("region   = \"eu\""), std::string::npos) << block;
  EXPECT_NE(block.find("capacity = 20GiB"), std::string::npos) << block;
  EXPECT_NE(block.find("grant \"trainer\" {"), std::string::npos) << block;
  EXPECT_EQ(block.find("force_destroy"), std::string::npos) << block;  // its default
  EXPECT_EQ(block.find("path"), std::string::npos) << block;           // computed
  EXPECT_EQ(block.find("key"), std::string::npos) << block;  // computed, and sensitive
}

TEST_F(ImportTest, GeneratedConfigLeavesSensitiveValuesForTheUserToSet) {
  ResourceSchema schema;
  schema.type = "thing";
  schema.provider = "test";
  AttributeSchema token;
  token.name = "token";
  token.type = Type::String();
  token.mode = AttrMode::Required;
  token.sensitive = true;
  AttributeSchema note;
  note.name = "note";
  note.type = Type::String();
  note.mode = AttrMode::Optional;
  AttributeSchema size;
  size.name = "size";
  size.type = Type::Int();
  size.mode = AttrMode::Optional;
  size.default_value = Value::Number(3);
  schema.body.attributes = {token, note, size};
  ImportedObject obj{"thing.t", "thing", "t-1",
                     {{"token", Value::String("s3cr3t")},
                      {"note", Value::String("from ${x} with \"quotes\"").WithSensitive(false)},
                      {"size", Value::Number(3)}},
                     &schema};
  std::string error;
  std::string block = GenerateResourceBlock(obj, schema, &error);
  ASSERT_FALSE(block.empty()) << error;
  EXPECT_EQ(block.find("s3cr3t"), std::string::npos) << block;
  EXPECT_NE(block.find("  # token = ...  (sensitive: not printed; set it yourself)\n"), std::string::npos) << block;
  EXPECT_EQ(block.find("size"), std::string::npos) << block;  // its default
  EXPECT_NE(block.find("  note = \"from $${x} with \\\"quotes\\\"\"\n"), std::string::npos) << block;
  ImportedObject keyed = obj;
  keyed.address = "thing.t[0]";
  EXPECT_TRUE(GenerateResourceBlock(keyed, schema, &error).empty());
  EXPECT_NE(error.find("only a root-module resource without an instance key"), std::string::npos) << error;
}

TEST_F(ImportTest, ImportRecordsOneObjectAndRefusesWhatItCannotImport) {
  Write("main.plinth", R"(
marker "logs" {
  path    = "logs/today"
  content = "hello"
}
marker "other" {
  path = "other"
}
)");
  WriteData("logs/today", "hello");
  EngineResult typo = ImportNow("marker.log", "logs/today");
  EXPECT_FALSE(typo.ok);
  ASSERT_EQ(typo.errors.size(), 1u);
  EXPECT_NE(typo.errors[0].find("marker.log is not in the configuration (did you mean marker.logs?); declare its "
                                "resource block first (plinth import --print-config marker.log \"logs/today\""),
            std::string::npos)
      << typo.errors[0];
  EXPECT_FALSE(fs::exists(dir_ / ".plinth" / "default" / "state.db"));  // refused before any state was created

  EngineResult missing = ImportNow("marker.other", "nothing-here");
  EXPECT_FALSE(missing.ok);
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_NE(missing.errors[0].find("cannot import \"nothing-here\" to marker.other: no marker file 'nothing-here'"),
            std::string::npos)
      << missing.errors[0];
  EXPECT_FALSE(fs::exists(dir_ / ".plinth" / "default" / "state.db"));  // read first, nothing written

  EngineResult ok = ImportNow("marker.logs", "logs/today");
  ASSERT_TRUE(ok.ok) << (ok.errors.empty() ? "" : ok.errors[0]);
  ASSERT_EQ(ok.generated.size(), 1u);
  std::vector<state::ResourceRecord> st = StateNow();
  ASSERT_EQ(st.size(), 1u);  // marker.other is not created: import changes nothing else
  EXPECT_EQ(st[0].address, "marker.logs");
  EXPECT_EQ(st[0].id, "logs/today");
  EXPECT_FALSE(fs::exists(dir_ / ".plinth" / "default" / "data" / "other"));

  EngineResult twice = ImportNow("marker.logs", "logs/today");
  EXPECT_FALSE(twice.ok);
  ASSERT_EQ(twice.errors.size(), 1u);
  EXPECT_NE(twice.errors[0].find("marker.logs is already managed (id \"logs/today\"); to import another object to "
                                 "it, run plinth state rm marker.logs first"),
            std::string::npos)
      << twice.errors[0];

  EngineResult plan = PlanNow();
  ASSERT_TRUE(plan.ok);
  const PlannedResource* logs = Find(plan.plan, "marker.logs");
  ASSERT_NE(logs, nullptr);
  EXPECT_EQ(logs->action, Action::NoOp);
}

TEST_F(ImportTest, CreatingAnObjectThatExistsSaysHowToImportIt) {
  // Two workspaces share one data root: the second cannot create the region
  // the first made, and is told how to import it instead.
  Write("main.plinth", "region \"eu\" {}\n");
  EngineOptions first = Options();
  first.data_root = (dir_ / "shared").string();
  {
    SourceManager sources;
    Diagnostics diags;
    Engine engine(first, sources, diags);
    ASSERT_TRUE(engine.Apply().ok);
  }
  EngineOptions second = first;
  second.workspace = "other";
  SourceManager sources;
  Diagnostics diags;
  Engine engine(second, sources, diags);
  EngineResult r = engine.Apply();
  ASSERT_FALSE(r.ok);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].find("region 'eu' already exists"), std::string::npos) << r.errors[0];
  EXPECT_NE(r.errors[0].find("; to manage it, import it: plinth import region.eu \"eu\", or add an import block: "
                             "import { to = region.eu, id = \"eu\" }"),
            std::string::npos)
      << r.errors[0];
}

// A provider in another process says an object exists by `data.import_id`
// (docs/providers/protocol.md); the engine turns it into the same hint.
TEST_F(ImportTest, AProviderInAnotherProcessPassesTheIdToImportBy) {
  RpcProviderOptions o;
  o.name = "textfile";
  o.executable = fs::path(PLINTH_SOURCE_DIR) / "examples" / "provider-python" / "plinth-provider-textfile";
  o.cwd = dir_;
  o.env = ExternalProviders::EnvironmentFor("textfile");
  std::string error;
  auto p = RpcProvider::Start(std::move(o), &error);
  ASSERT_TRUE(p) << error;
  p->SetConfiguration({{"root", Value::String((dir_ / "files").string())}, {"token", Value()}});
  ValueMap config = {{"name", Value::String("f")},
                     {"address", Value::String("textfile_file.f")},
                     {"id", Value::Unknown(Type::String())},
                     {"path", Value::String("a.txt")},
                     {"content", Value::String("hello\n")},
                     {"sensitive_content", Value()},
                     {"mode", Value::String("0644")},
                     {"sha256", Value::Unknown(Type::String())},
                     {"size", Value::Unknown(Type::Size())}};
  auto plan = p->PlanChange(PlanRequest{"textfile_file", nullptr, config, {}});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_TRUE(p->Create("textfile_file", plan.value().planned).ok());
  auto again = p->Create("textfile_file", plan.value().planned);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("already exists"), std::string::npos) << again.error().message;
  EXPECT_EQ(again.error().import_id, "a.txt");
}

}  // namespace
}  // namespace plinth::runtime
