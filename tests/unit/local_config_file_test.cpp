// config_file resources of the local provider (runtime/providers/local/
// file_resources.h, docs/providers/local.md "Configuration files"): writes,
// drift as refresh reads it, validation before the swap, reload after it,
// deletes, refused paths, sensitive content kept out of state and messages,
// and the drift task's opt-in through `drift = "correct"`.
#include <gtest/gtest.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/engine/drift.h"
#include "runtime/providers/local/file_resources.h"
#include "runtime/providers/local/provider.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void Spit(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

unsigned ModeOf(const fs::path& p) {
  struct stat st;
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode & 07777;
}

// Every string inside `v` (lists and objects walked).
void Strings(const Value& v, std::vector<std::string>* out) {
  if (v.kind() == Value::Kind::String) out->push_back(v.as_string());
  if (v.kind() == Value::Kind::List)
    for (const Value& e : v.as_list()) Strings(e, out);
  if (v.kind() == Value::Kind::Object)
    for (const auto& [k, e] : v.as_object()) Strings(e, out);
}

bool Holds(const ValueMap& m, const std::string& needle) {
  std::vector<std::string> all;
  for (const auto& [k, v] : m) Strings(v, &all);
  for (const std::string& s : all)
    if (s.find(needle) != std::string::npos) return true;
  return false;
}

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/plinth-cfgfile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    tmp_ = tmpl;
    workspace_ = tmp_ / "ws";
    etc_ = tmp_ / "etc";
    fs::create_directories(workspace_);
    fs::create_directories(etc_);
    provider_ = std::make_unique<LocalProvider>(workspace_ / "data", workspace_ / "workspace.key");
  }
  void TearDown() override { fs::remove_all(tmp_); }

  ValueMap Config(const std::string& path, const Value& content, ValueMap extra = {}) {
    ValueMap m = {{"name", Value::String("app")},
                  {"address", Value::String("config_file.app")},
                  {"id", Value::Unknown(Type::String())},
                  {"content_digest", Value::Unknown(Type::String())},
                  {"exists", Value::Unknown(Type::Bool())},
                  {"path", Value::String(path)},
                  {"content", content}};
    for (auto& [k, v] : extra) m[k] = v;
    return m;
  }

  // Plans (against `prior`, null for a create) and returns the planned values.
  ValueMap MustPlan(const ValueMap& config, const ValueMap* prior = nullptr) {
    EXPECT_EQ(provider_->Validate("config_file", config), std::vector<std::string>{});
    PlanRequest req{"config_file", prior, config};
    auto plan = provider_->PlanChange(req);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    return plan.ok() ? plan.value().planned : ValueMap{};
  }

  ResourceObject MustCreate(const ValueMap& config) {
    auto created = provider_->Create("config_file", MustPlan(config));
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? created.value() : ResourceObject{};
  }

  // What the engine records: the provider's state form.
  ValueMap State(const ResourceObject& o) { return provider_->StateValues("config_file", o.attributes); }

  ValueMap MustRead(const std::string& id, const ValueMap& prior) {
    auto r = provider_->Read("config_file", id, prior);
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r.ok() || !r.value()) return {};
    return r.value()->attributes;
  }

  static std::string Str(const ValueMap& m, const std::string& k) {
    auto it = m.find(k);
    return it != m.end() && it->second.kind() == Value::Kind::String ? it->second.as_string()
                                                                     : "<not a string>";
  }

  static Value Argv(std::vector<std::string> argv) {
    ValueList l;
    for (auto& a : argv) l.push_back(Value::String(a));
    return Value::List(std::move(l));
  }

  // Temp files the write may have left beside `p`.
  static size_t Leftovers(const fs::path& dir) {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind(".", 0) == 0) ++n;
    return n;
  }

  fs::path tmp_, workspace_, etc_;
  std::unique_ptr<LocalProvider> provider_;
};

TEST_F(ConfigFileTest, CreateWritesContentModeAndDigest) {
  const fs::path path = etc_ / "app.conf";
  ResourceObject o =
      MustCreate(Config(path.string(), Value::String("port = 8080\n"), {{"mode", Value::String("640")}}));
  EXPECT_EQ(o.id, path.string());
  EXPECT_EQ(Slurp(path), "port = 8080\n");
  EXPECT_EQ(ModeOf(path), 0640u);
  EXPECT_EQ(Str(o.attributes, "mode"), "0640");
  // sha256("port = 8080\n")
  EXPECT_EQ(Str(o.attributes, "content_digest"),
            config_file::ContentDigest(path.string(), "port = 8080\n", false, {}, false));
  EXPECT_EQ(Str(o.attributes, "content_digest").rfind("sha256:", 0), 0u);
  EXPECT_EQ(Leftovers(etc_), 0u);

  // Read right after: exactly what was recorded, so no drift.
  ValueMap state = State(o);
  ValueMap read = MustRead(o.id, state);
  for (const char* k : {"content", "content_digest", "mode", "exists", "path", "id"})
    EXPECT_TRUE(read.at(k).Equals(state.at(k))) << k;
}

TEST_F(ConfigFileTest, OwnerAndGroupAreSetAndReadBack) {
  if (::geteuid() != 0) GTEST_SKIP() << "changing a file's owner needs root";
  const fs::path path = etc_ / "owned.conf";
  ResourceObject o = MustCreate(Config(path.string(), Value::String("x\n"),
                                       {{"owner", Value::String("nobody")}, {"group", Value::String("0")}}));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  struct passwd* nobody = ::getpwnam("nobody");
  ASSERT_NE(nobody, nullptr);
  EXPECT_EQ(st.st_uid, nobody->pw_uid);
  EXPECT_EQ(st.st_gid, 0u);

  ValueMap state = State(o);
  ASSERT_EQ(::chown(path.c_str(), 0, 0), 0);  // out of band
  ValueMap read = MustRead(o.id, state);
  EXPECT_EQ(Str(read, "owner"), "root");
  EXPECT_EQ(Str(read, "group"), "0");  // numeric as configured
  // The plan puts it back.
  ValueMap planned = MustPlan(Config(path.string(), Value::String("x\n"),
                                     {{"owner", Value::String("nobody")}, {"group", Value::String("0")}}),
                              &read);
  EXPECT_EQ(Str(planned, "owner"), "nobody");
  ASSERT_TRUE(provider_->Update("config_file", o.id, read, planned).ok());
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, nobody->pw_uid);
}

TEST_F(ConfigFileTest, ReadReportsEditsModeChangesRemovalAndSymlinks) {
  const fs::path path = etc_ / "app.conf";
  ValueMap config = Config(path.string(), Value::String("a = 1\n"), {{"mode", Value::String("0600")}});
  ResourceObject o = MustCreate(config);
  ValueMap state = State(o);

  Spit(path, "a = 2 # edited by hand\n");
  ValueMap read = MustRead(o.id, state);
  EXPECT_EQ(Str(read, "content"), "a = 2 # edited by hand\n");  // the plan shows what is on disk
  EXPECT_NE(Str(read, "content_digest"), Str(state, "content_digest"));
  // The plan made with that refresh writes the configured content back.
  ValueMap planned = MustPlan(config, &read);
  EXPECT_EQ(Str(planned, "content"), "a = 1\n");
  EXPECT_EQ(Str(planned, "content_digest"), Str(state, "content_digest"));
  auto updated = provider_->Update("config_file", o.id, read, planned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(Slurp(path), "a = 1\n");

  ASSERT_EQ(::chmod(path.c_str(), 0666), 0);
  read = MustRead(o.id, state);
  EXPECT_EQ(Str(read, "mode"), "0666");
  EXPECT_TRUE(read.at("content").Equals(state.at("content")));

  fs::remove(path);
  read = MustRead(o.id, state);
  EXPECT_FALSE(read.at("exists").as_bool());
  EXPECT_TRUE(read.at("content_digest").is_null());

  // A symlink where the file was is not the file: it reads as missing, and
  // the write replaces the link, never touching its target.
  Spit(tmp_ / "target", "precious\n");
  fs::create_symlink(tmp_ / "target", path);
  read = MustRead(o.id, state);
  EXPECT_FALSE(read.at("exists").as_bool());
  ASSERT_TRUE(provider_->Update("config_file", o.id, read, MustPlan(config, &read)).ok());
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_EQ(Slurp(path), "a = 1\n");
  EXPECT_EQ(Slurp(tmp_ / "target"), "precious\n");
}

TEST_F(ConfigFileTest, FailedValidationLeavesTheOldFileUntouched) {
  const fs::path path = etc_ / "haproxy.cfg";
  ResourceObject o =
      MustCreate(Config(path.string(), Value::String("good\n"), {{"mode", Value::String("0644")}}));
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);

  // The validator sees the new content at {path} (a temp file beside the target).
  Value validate =
      Argv({"/bin/sh", "-c", "grep -q good \"$1\" || { echo \"line 1: bad keyword\" >&2; exit 3; }", "sh",
            "{path}"});
  ValueMap bad = Config(path.string(), Value::String("bad\n"), {{"validate", validate}});
  ValueMap state = State(o);
  auto r = provider_->Update("config_file", o.id, state, MustPlan(bad, &state));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("was not changed"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("exited with status 3"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("line 1: bad keyword"), std::string::npos) << r.error().message;
  EXPECT_EQ(Slurp(path), "good\n");
  struct stat after;
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);  // not even replaced by a copy
  EXPECT_EQ(Leftovers(etc_), 0u);

  // Content the validator accepts goes in.
  ValueMap good = Config(path.string(), Value::String("good again\n"), {{"validate", validate}});
  ASSERT_TRUE(provider_->Update("config_file", o.id, state, MustPlan(good, &state)).ok());
  EXPECT_EQ(Slurp(path), "good again\n");
}

TEST_F(ConfigFileTest, AHungValidatorIsKilledAtTheTimeoutAndCountsAsFailure) {
  const fs::path path = etc_ / "slow.conf";
  Spit(path, "old\n");
  ValueMap config = Config(path.string(), Value::String("new\n"),
                           {{"validate", Argv({"/bin/sleep", "30"})}, {"timeout", Value::Duration(300)}});
  auto start = std::chrono::steady_clock::now();
  auto r = provider_->Create("config_file", MustPlan(config));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("timeout and was killed"), std::string::npos) << r.error().message;
  EXPECT_LT(took, std::chrono::seconds(10));
  EXPECT_EQ(Slurp(path), "old\n");
  EXPECT_EQ(Leftovers(etc_), 0u);
}

TEST_F(ConfigFileTest, ReloadRunsAfterTheSwapAndItsFailureIsReported) {
  const fs::path path = etc_ / "svc.conf";
  const fs::path seen = tmp_ / "seen-by-reload";
  // The reload copies what is at the path then: the new content proves it ran after the swap.
  ValueMap config = Config(
      path.string(), Value::String("v1\n"),
      {{"reload", Argv({"/bin/sh", "-c", "cat \"$1\" > \"$2\"", "sh", path.string(), seen.string()})}});
  ResourceObject o = MustCreate(config);
  EXPECT_EQ(Slurp(seen), "v1\n");

  ValueMap failing = Config(path.string(), Value::String("v2\n"),
                            {{"reload", Argv({"/bin/sh", "-c", "echo reload refused >&2; exit 1"})}});
  ValueMap state = State(o);
  auto r = provider_->Update("config_file", o.id, state, MustPlan(failing, &state));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("was written, but the reload command"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("reload refused"), std::string::npos) << r.error().message;
  EXPECT_EQ(Slurp(path), "v2\n");

  ValueMap missing =
      Config(path.string(), Value::String("v3\n"), {{"reload", Argv({"no-such-reload-program-here"})}});
  r = provider_->Update("config_file", o.id, state, MustPlan(missing, &state));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is not an executable on PATH"), std::string::npos) << r.error().message;
}

TEST_F(ConfigFileTest, DeleteRemovesTheFileUnlessKeptAndIsIdempotent) {
  const fs::path path = etc_ / "gone.conf";
  ResourceObject o = MustCreate(Config(path.string(), Value::String("x\n")));
  ASSERT_TRUE(provider_->Delete("config_file", o.id, State(o)).ok());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(provider_->Delete("config_file", o.id, State(o)).ok());  // already gone

  const fs::path kept = etc_ / "kept.conf";
  ResourceObject k =
      MustCreate(Config(kept.string(), Value::String("y\n"), {{"keep_on_destroy", Value::Bool(true)}}));
  ASSERT_TRUE(provider_->Delete("config_file", k.id, State(k)).ok());
  EXPECT_EQ(Slurp(kept), "y\n");
}

TEST_F(ConfigFileTest, PathsThatAreNotCleanAbsoluteFilesOutsideTheWorkspaceAreRefused) {
  auto errors = [&](const std::string& path) {
    auto errs = provider_->Validate("config_file", Config(path, Value::String("x")));
    return errs.empty() ? std::string() : errs.front();
  };
  EXPECT_NE(errors("etc/app.conf").find("is not absolute"), std::string::npos);
  EXPECT_NE(errors("etc/app.conf").find("abspath("), std::string::npos);
  EXPECT_NE(errors("/etc/../root/.ssh/authorized_keys").find("not a clean path"), std::string::npos);
  EXPECT_NE(errors("/etc/app/").find("ends with '/'"), std::string::npos);
  EXPECT_NE(errors("/").find("root directory"), std::string::npos);
  EXPECT_EQ(errors((etc_ / "fine.conf").string()), "");

  // The workspace holds the state and keys: never a target, even through a symlinked directory.
  fs::create_directory_symlink(workspace_, tmp_ / "ws-link");
  auto r = provider_->Create(
      "config_file", MustPlan(Config((tmp_ / "ws-link" / "workspace.key").string(), Value::String("0000"))));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("inside the workspace directory"), std::string::npos) << r.error().message;

  r = provider_->Create("config_file",
                        MustPlan(Config((etc_ / "no-such-dir" / "x.conf").string(), Value::String("x"))));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("does not exist: create it first"), std::string::npos)
      << r.error().message;

  fs::create_directory(etc_ / "adir");
  r = provider_->Create("config_file", MustPlan(Config((etc_ / "adir").string(), Value::String("x"))));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("is a directory"), std::string::npos) << r.error().message;
}

TEST_F(ConfigFileTest, ModeOwnerCommandsAndTimeoutAreChecked) {
  const std::string p = (etc_ / "x.conf").string();
  auto first = [&](ValueMap extra) {
    auto errs = provider_->Validate("config_file", Config(p, Value::String("x"), std::move(extra)));
    return errs.empty() ? std::string() : errs.front();
  };
  EXPECT_NE(first({{"mode", Value::String("0999")}}).find("not an octal permission"), std::string::npos);
  EXPECT_NE(first({{"mode", Value::String("17777")}}).find("at most 07777"), std::string::npos);
  EXPECT_NE(first({{"owner", Value::String("no-such-user-plinth")}}).find("not a user on this machine"),
            std::string::npos);
  EXPECT_NE(first({{"group", Value::String("no-such-group-plinth")}}).find("not a group on this machine"),
            std::string::npos);
  EXPECT_NE(first({{"validate", Value::List({})}}).find("validate is an empty list"), std::string::npos);
  EXPECT_NE(first({{"reload", Argv({""})}}).find("must name the program"), std::string::npos);
  EXPECT_NE(first({{"timeout", Value::Duration(0)}}).find("timeout must be greater than zero"),
            std::string::npos);
  // Two config files with one path are refused at plan.
  ValueMap a = MustPlan(Config(p, Value::String("a")));
  ValueMap b = MustPlan(Config(p, Value::String("b")));
  std::vector<PlanItem> items = {{"config_file.a", "config_file", &a, false},
                                 {"config_file.b", "config_file", &b, false}};
  auto conflicts = provider_->CheckPlan(items);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_NE(conflicts[0].message.find("both write the file"), std::string::npos) << conflicts[0].message;
}

TEST_F(ConfigFileTest, SensitiveContentStaysOutOfStateMessagesAndReads) {
  const fs::path path = etc_ / "db.conf";
  const std::string secret = "password = hunter2-not-for-logs\n";
  ValueMap config =
      Config(path.string(), Value::String(secret).WithSensitive(), {{"mode", Value::String("0600")}});
  ResourceObject o = MustCreate(config);
  EXPECT_EQ(Slurp(path), secret);  // the file has it, of course

  ValueMap state = State(o);
  EXPECT_FALSE(Holds(state, "hunter2")) << "the state holds the secret";
  EXPECT_EQ(Str(state, "content").rfind("hmac:", 0), 0u);
  EXPECT_TRUE(state.at("content").ContainsSensitive());
  EXPECT_EQ(Str(state, "content_digest"), Str(state, "content"));
  // A keyed digest: not the plain SHA-256 anyone could compute from a guess.
  EXPECT_NE(Str(state, "content_digest"),
            config_file::ContentDigest(path.string(), secret, false, {}, false));

  // The same content plans no change; a mode drift is corrected from the file itself.
  ValueMap read = MustRead(o.id, state);
  EXPECT_TRUE(read.at("content").Equals(state.at("content")));
  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  read = MustRead(o.id, state);
  ValueMap planned = MustPlan(config, &read);
  EXPECT_TRUE(planned.at("content").Equals(state.at("content")));
  EXPECT_FALSE(Holds(planned, "hunter2"));
  auto updated = provider_->Update("config_file", o.id, read, planned);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(Slurp(path), secret);
  EXPECT_EQ(ModeOf(path), 0600u);

  // An edit by hand reads as a different digest, never as the text on disk.
  Spit(path, "password = typed-by-hand-secret\n");
  read = MustRead(o.id, state);
  EXPECT_FALSE(Holds(read, "typed-by-hand"));
  EXPECT_TRUE(read.at("content").ContainsSensitive());
  EXPECT_NE(Str(read, "content_digest"), Str(state, "content_digest"));
  planned = MustPlan(config, &read);
  EXPECT_EQ(Str(planned, "content"), secret);  // the configured value, marked sensitive
  EXPECT_TRUE(planned.at("content").ContainsSensitive());

  // A failing validator's output may quote the content: withheld.
  ValueMap checked =
      Config(path.string(), Value::String(secret).WithSensitive(),
             {{"validate", Argv({"/bin/sh", "-c", "cat \"$1\" >&2; exit 1", "sh", "{path}"})}});
  auto r = provider_->Update("config_file", o.id, read, MustPlan(checked, &read));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find("hunter2"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("not shown: the content is sensitive"), std::string::npos)
      << r.error().message;
}

TEST_F(ConfigFileTest, ImportTakesAnExistingFile) {
  const fs::path path = etc_ / "existing.conf";
  Spit(path, "kept\n");
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  auto o = provider_->Import("config_file", path.string());
  ASSERT_TRUE(o.ok()) << o.error().message;
  EXPECT_EQ(Str(o.value().attributes, "content"), "kept\n");
  EXPECT_EQ(Str(o.value().attributes, "mode"), "0640");
  EXPECT_EQ(Str(o.value().attributes, "drift"), "report");
  EXPECT_FALSE(provider_->Import("config_file", (etc_ / "missing.conf").string()).ok());
}

TEST(ConfigFileDrift, DriftCorrectOptsInLikeLifecycleCorrectDrift) {
  using Verdict = DriftDecision::Verdict;
  const DriftedResource edited{"config_file.app", {"content", "content_digest"}, false};
  PlannedResource pr;
  pr.address = "config_file.app";
  pr.type = "config_file";
  pr.action = Action::Update;
  pr.planned["drift"] = Value::String("report");
  EXPECT_FALSE(OptsInToCorrection(pr));
  EXPECT_EQ(DecideDrift(edited, &pr).verdict, Verdict::kReport);
  pr.planned["drift"] = Value::String("correct");
  EXPECT_TRUE(OptsInToCorrection(pr));
  EXPECT_EQ(DecideDrift(edited, &pr).verdict, Verdict::kCorrect);
  // A removed file is an update (exists: false), so it is corrected too.
  const DriftedResource removed{"config_file.app", {"content", "content_digest", "exists"}, false};
  EXPECT_EQ(DecideDrift(removed, &pr).verdict, Verdict::kCorrect);
}

}  // namespace
}  // namespace plinth::runtime
