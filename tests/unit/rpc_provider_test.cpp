// Providers in other processes that misbehave: crash, answer garbage, hang,
// declare invalid schemas, or cannot be found. Each gives a clear error that
// names the provider, and a crash mid-change loses nothing: the intent stays
// open and the next plan adopts what the provider created.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "runtime/providers/external.h"
#include "runtime/providers/protocol/rpc_provider.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

fs::path Textfile() { return fs::path(PLINTH_SOURCE_DIR) / "examples" / "provider-python" / "plinth-provider-textfile"; }

class RpcProviderTest : public ::testing::Test {
 protected:
  std::unique_ptr<RpcProvider> Start(std::map<std::string, std::string> extra_env = {},
                                     std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    RpcProviderOptions o;
    o.name = "textfile";
    o.executable = Textfile();
    o.cwd = tmp_.path();
    o.env = ExternalProviders::EnvironmentFor("textfile");
    for (auto& [k, v] : extra_env) o.env[k] = v;
    o.call_timeout = timeout;
    std::string error;
    auto p = RpcProvider::Start(std::move(o), &error);
    EXPECT_TRUE(p) << error;
    if (p) p->SetConfiguration({{"root", Value::String((tmp_.path() / "files").string())}, {"token", Value()}});
    return p;
  }

  static ValueMap Config(const std::string& path) {
    return {{"name", Value::String("f")},
            {"address", Value::String("textfile_file.f")},
            {"id", Value::Unknown(Type::String())},
            {"path", Value::String(path)},
            {"content", Value::String("hello\n")},
            {"sensitive_content", Value()},
            {"mode", Value::String("0644")},
            {"sha256", Value::Unknown(Type::String())},
            {"size", Value::Unknown(Type::Size())}};
  }

  ValueMap Planned(RpcProvider& p, const std::string& path) {
    auto plan = p.PlanChange(PlanRequest{"textfile_file", nullptr, Config(path), {}});
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    return plan.ok() ? plan.value().planned : ValueMap{};
  }

  fs::path Script(const std::string& name, const std::string& body) {
    fs::path p = tmp_.path() / name;
    std::ofstream(p) << "#!/bin/sh\n" << body;
    ::chmod(p.c_str(), 0755);
    return p;
  }

  plinth::testing::TempDir tmp_;
};

TEST_F(RpcProviderTest, LoadsCheckedSchemas) {
  auto p = Start();
  ASSERT_TRUE(p);
  const ProviderSchemas& s = p->LoadedSchemas();
  ASSERT_EQ(s.resources.size(), 1u);
  EXPECT_EQ(s.resources[0].type, "textfile_file");
  EXPECT_EQ(s.resources[0].provider, "textfile");
  const AttributeSchema* id = s.resources[0].body.FindAttribute("id");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->mode, AttrMode::Computed);
  ASSERT_TRUE(s.config.body.FindAttribute("token"));
  EXPECT_TRUE(s.config.body.FindAttribute("token")->sensitive);
}

TEST_F(RpcProviderTest, CrashMidCreateLeavesTheOutcomeUnknownAndRestarts) {
  auto p = Start({{"TEXTFILE_TEST_CRASH_AFTER_CREATE", "1"}});
  ASSERT_TRUE(p);
  ValueMap planned = Planned(*p, "a.txt");
  auto created = p->Create("textfile_file", planned);
  ASSERT_FALSE(created.ok());
  const std::string& m = created.error().message;
  EXPECT_NE(m.find("provider 'textfile'"), std::string::npos) << m;
  EXPECT_NE(m.find("create"), std::string::npos) << m;
  EXPECT_NE(m.find("status 3"), std::string::npos) << m;
  EXPECT_TRUE(created.error().outcome_unknown) << m;
  EXPECT_FALSE(created.error().retryable) << "a call that may have happened is never retried blindly";
  // The next call starts the provider again, which finds what the crashed one made.
  auto read = p->Read("textfile_file", "a.txt", planned);
  ASSERT_TRUE(read.ok()) << read.error().message;
  ASSERT_TRUE(read.value().has_value()) << "the file the crashed call wrote is found";
}

TEST_F(RpcProviderTest, CheckPlanAsksTheProviderForConflicts) {
  auto p = Start();
  ASSERT_TRUE(p);
  ValueMap kept = Planned(*p, "same.txt"), created = Planned(*p, "same.txt"), other = Planned(*p, "other.txt");
  std::vector<PlanItem> items = {{"textfile_file.kept", "textfile_file", &kept, true},
                                 {"textfile_file.new", "textfile_file", &created, false},
                                 {"textfile_file.other", "textfile_file", &other, false}};
  std::vector<PlanConflict> conflicts = p->CheckPlan(items);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].addresses, (std::vector<std::string>{"textfile_file.new", "textfile_file.kept"}))
      << "the file being created is the one to change";
  EXPECT_NE(conflicts[0].message.find("planned at the path same.txt"), std::string::npos) << conflicts[0].message;
  EXPECT_TRUE(p->CheckPlan({items[2]}).empty());
}

TEST_F(RpcProviderTest, CheckPlanThatFailsIsAConflictNotSilence) {
  auto p = Start({{"TEXTFILE_TEST_GARBAGE_ON", "check_plan"}});
  ASSERT_TRUE(p);
  ValueMap a = Planned(*p, "a.txt");
  std::vector<PlanConflict> conflicts = p->CheckPlan({{"textfile_file.a", "textfile_file", &a, false}});
  ASSERT_EQ(conflicts.size(), 1u) << "a plan the provider could not check must not pass as conflict-free";
  EXPECT_EQ(conflicts[0].addresses, std::vector<std::string>{"textfile_file.a"});
  EXPECT_NE(conflicts[0].message.find("provider 'textfile' could not check the plan"), std::string::npos)
      << conflicts[0].message;
}

TEST_F(RpcProviderTest, GarbageIsAClearError) {
  auto p = Start({{"TEXTFILE_TEST_GARBAGE_ON", "read"}});
  ASSERT_TRUE(p);
  auto read = p->Read("textfile_file", "a.txt", {});
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("not a JSON-RPC message"), std::string::npos) << read.error().message;
  EXPECT_NE(read.error().message.find("provider 'textfile' failed during read of textfile_file 'a.txt'"),
            std::string::npos)
      << read.error().message;
  EXPECT_FALSE(read.error().outcome_unknown) << "a read changes nothing";
}

TEST_F(RpcProviderTest, HangIsCutAtTheDeadline) {
  auto p = Start({{"TEXTFILE_TEST_HANG_ON", "plan_change"}}, std::chrono::milliseconds(1500));
  ASSERT_TRUE(p);
  auto start = std::chrono::steady_clock::now();
  auto plan = p->PlanChange(PlanRequest{"textfile_file", nullptr, Config("a.txt"), {}});
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("did not answer within"), std::string::npos) << plan.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30)) << "the hang was not cut";
}

TEST_F(RpcProviderTest, InvalidSchemasAreRefusedWithThePath) {
  fs::path bad = Script("plinth-provider-bad",
                        "read line\n"
                        "echo '{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"protocol_version\":1,\"name\":\"bad\","
                        "\"resources\":[{\"type\":\"bucket\",\"body\":{}}]}}'\n"
                        "read line\n");
  RpcProviderOptions o;
  o.name = "bad";
  o.executable = bad;
  o.cwd = tmp_.path();
  std::string error;
  EXPECT_FALSE(RpcProvider::Start(std::move(o), &error));
  EXPECT_NE(error.find("provider 'bad'"), std::string::npos) << error;
  EXPECT_NE(error.find("invalid schemas: result.resources[0].type: 'bucket' must be an identifier that starts with "
                       "'bad_'"),
            std::string::npos)
      << error;
}

TEST_F(RpcProviderTest, WrongIdAndExitAreClearErrors) {
  fs::path wrong = Script("plinth-provider-wrong", "read line\necho '{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}'\n");
  RpcProviderOptions o;
  o.name = "wrong";
  o.executable = wrong;
  o.cwd = tmp_.path();
  std::string error;
  EXPECT_FALSE(RpcProvider::Start(o, &error));
  EXPECT_NE(error.find("answered request 99 while request 1 was pending"), std::string::npos) << error;

  o.executable = Script("plinth-provider-quits", "echo 'cannot open the store' >&2\nexit 7\n");
  EXPECT_FALSE(RpcProvider::Start(o, &error));
  EXPECT_NE(error.find("status 7"), std::string::npos) << error;
  EXPECT_NE(error.find("cannot open the store"), std::string::npos) << error;
}

TEST_F(RpcProviderTest, LocateSaysWhereItLooked) {
  std::string error;
  EXPECT_FALSE(ExternalProviders::Locate("nosuch", "", tmp_.path(), &error));
  EXPECT_NE(error.find("no executable 'plinth-provider-nosuch'"), std::string::npos) << error;
  EXPECT_FALSE(ExternalProviders::Locate("x", "./missing/provider", tmp_.path(), &error));
  EXPECT_NE(error.find("does not exist"), std::string::npos) << error;
  // Found on PLINTH_PROVIDER_PATH.
  fs::path dir = tmp_.path() / "bin";
  fs::create_directories(dir);
  fs::copy_file(Textfile(), dir / "plinth-provider-textfile");
  ::chmod((dir / "plinth-provider-textfile").c_str(), 0755);
  ::setenv("PLINTH_PROVIDER_PATH", dir.c_str(), 1);
  auto found = ExternalProviders::Locate("textfile", "", tmp_.path(), &error);
  ::unsetenv("PLINTH_PROVIDER_PATH");
  ASSERT_TRUE(found) << error;
  EXPECT_EQ(*found, dir / "plinth-provider-textfile");
}

// ------------------------------------------------------- through the CLI

std::string Shell(const std::string& command, int* rc) {
  std::string out;
  FILE* f = ::popen((command + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  int status = ::pclose(f);
  *rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(ExternalProviderCli, CrashMidApplyIsAdoptedByTheNextPlan) {
  plinth::testing::TempDir tmp;
  fs::copy_file(Textfile(), tmp.path() / "plinth-provider-textfile");
  ::chmod((tmp.path() / "plinth-provider-textfile").c_str(), 0755);
  std::ofstream(tmp.path() / "main.plinth") << "provider \"textfile\" {\n"
                                               "  source = \"./plinth-provider-textfile\"\n"
                                               "  root   = \"./out\"\n"
                                               "}\n\n"
                                               "textfile_file \"a\" {\n"
                                               "  path    = \"a.txt\"\n"
                                               "  content = \"hello\\n\"\n"
                                               "}\n";
  std::string plinth = PLINTH_BINARY;
  std::string dir = tmp.path().string();
  int rc = 0;
  std::string out = Shell("TEXTFILE_TEST_CRASH_AFTER_CREATE=1 " + plinth + " apply --auto-approve " + dir, &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("provider 'textfile' failed during create"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(tmp.path() / "out" / "a.txt")) << "the crashed create wrote the file";
  out = Shell(plinth + " plan --detailed-exitcode " + dir, &rc);
  EXPECT_EQ(rc, 0) << "the next plan adopts the file, so nothing is left to do:\n" << out;
  EXPECT_NE(out.find("adopted"), std::string::npos) << out;
  out = Shell(plinth + " destroy --auto-approve " + dir, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_FALSE(fs::exists(tmp.path() / "out" / "a.txt"));
  // No provider process outlives the runs that started it.
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::ifstream cmdline(e.path() / "cmdline");
    std::string text((std::istreambuf_iterator<char>(cmdline)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find((tmp.path() / "plinth-provider-textfile").string()), std::string::npos)
        << "still running: " << e.path();
  }
}

TEST(ExternalProviderCli, ConflictsBetweenPlannedFilesFailThePlanWithLocations) {
  plinth::testing::TempDir tmp;
  fs::copy_file(Textfile(), tmp.path() / "plinth-provider-textfile");
  ::chmod((tmp.path() / "plinth-provider-textfile").c_str(), 0755);
  std::ofstream(tmp.path() / "main.plinth") << "provider \"textfile\" {\n"
                                               "  source = \"./plinth-provider-textfile\"\n"
                                               "  root   = \"./out\"\n"
                                               "}\n\n"
                                               "textfile_file \"a\" {\n"
                                               "  path    = \"same.txt\"\n"
                                               "  content = \"a\"\n"
                                               "}\n\n"
                                               "textfile_file \"b\" {\n"
                                               "  path    = \"same.txt\"\n"
                                               "  content = \"b\"\n"
                                               "}\n";
  std::string plinth = PLINTH_BINARY;
  std::string dir = tmp.path().string();
  int rc = 0;
  std::string out = Shell(plinth + " plan " + dir, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("2 files are planned at the path same.txt"), std::string::npos) << out;
  EXPECT_NE(out.find("main.plinth:11:"), std::string::npos) << "the second file's block is named:\n" << out;
  out = Shell(plinth + " apply --auto-approve " + dir, &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_FALSE(fs::exists(tmp.path() / "out" / "same.txt")) << "apply refused before changing anything";
}

TEST(ExternalProviderCli, ProvidersSchemaListsBuiltInAndExternal) {
  int rc = 0;
  std::string out = Shell(std::string(PLINTH_BINARY) + " providers schema " + PLINTH_SOURCE_DIR +
                              "/examples/provider-python 2>/dev/null",
                          &rc);
  ASSERT_EQ(rc, 0) << out;
  nlohmann::json doc = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << out;
  EXPECT_EQ(doc["format_version"], 1);
  EXPECT_EQ(doc["providers"]["local"]["built_in"], true);
  EXPECT_EQ(doc["providers"]["s3"]["resources"][0]["type"], "s3_bucket");
  EXPECT_EQ(doc["providers"]["textfile"]["built_in"], false);
  EXPECT_EQ(doc["providers"]["textfile"]["resources"][0]["type"], "textfile_file");
}

TEST(ExternalProviderCli, MissingProviderIsALocatedError) {
  plinth::testing::TempDir tmp;
  std::ofstream(tmp.path() / "main.plinth") << "provider \"nosuch\" {\n  source = \"./bin/nosuch\"\n}\n";
  int rc = 0;
  std::string out = Shell(std::string(PLINTH_BINARY) + " validate " + tmp.path().string(), &rc);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("main.plinth:2:12"), std::string::npos) << out;
  EXPECT_NE(out.find("P0213"), std::string::npos) << out;
  EXPECT_NE(out.find("cannot find provider 'nosuch'"), std::string::npos) << out;
}

}  // namespace
}  // namespace plinth::runtime
