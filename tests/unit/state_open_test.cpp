// How state is opened and created (issue 11): only apply creates a
// workspace's state; reading commands on a missing directory or workspace
// create nothing; state and data are created 0600/0700 whatever the umask,
// an existing state open to others is tightened (never through a symbolic
// link); and with a state key, no sensitive value reaches the state's bytes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "runtime/engine/engine.h"
#include "runtime/state/state_store.h"
#include "tests/support/files.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;
using state::ErrorCode;
using state::OpenMode;
using state::StateStore;
using state::StoreOptions;

unsigned Mode(const fs::path& p) {
  struct stat st;
  if (::lstat(p.c_str(), &st) != 0) return 0xffff;
  return st.st_mode & 07777;
}

// Sets the umask for one scope.
class Umask {
 public:
  explicit Umask(mode_t mask) : old_(::umask(mask)) {}
  ~Umask() { ::umask(old_); }

 private:
  mode_t old_;
};

constexpr const char* kSecret = "s3cr3t-marker-content-4e1d";

constexpr const char* kSensitiveConfig = R"(
variable "secret" {
  type      = string
  default   = "s3cr3t-marker-content-4e1d"
  sensitive = true
}

marker "m" {
  path    = "m/secret"
  content = var.secret
}
)";

class StateOpenTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(tmp_.path().empty()); }
  fs::path Dir() const { return tmp_.path() / "cfg"; }
  fs::path Ws(const std::string& w = "default") const { return Dir() / ".plinth" / w; }

  runtime::EngineResult RunEngine(runtime::EngineOptions eo, const std::string& what) {
    SourceManager sources;
    Diagnostics diags;
    runtime::Engine engine(std::move(eo), sources, diags);
    runtime::EngineResult r = what == "plan"      ? engine.Plan()
                              : what == "destroy" ? engine.Apply(/*destroy=*/true)
                              : what == "refresh" ? engine.Refresh()
                                                  : engine.Apply();
    EXPECT_FALSE(diags.has_errors());
    return r;
  }
  runtime::EngineOptions Options() const {
    runtime::EngineOptions eo;
    eo.config_dir = Dir().string();
    eo.parallelism = 2;
    return eo;
  }

  plinth::testing::TempDir tmp_{"plinth-state-open"};
};

TEST_F(StateOpenTest, ExistingModeCreatesNothingAndNamesTheWorkspacesThatExist) {
  fs::create_directories(Dir());
  StoreOptions existing;
  existing.mode = OpenMode::kExisting;
  auto none = StateStore::OpenWorkspace(Dir().string(), "default", existing);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound);
  EXPECT_NE(none.error().message.find("no workspace here has state"), std::string::npos) << none.error().message;
  EXPECT_FALSE(fs::exists(Dir() / ".plinth"));

  ASSERT_TRUE(StateStore::OpenWorkspace(Dir().string(), "default").ok());  // kCreate
  ASSERT_TRUE(StateStore::OpenWorkspace(Dir().string(), "prod").ok());
  auto typo = StateStore::OpenWorkspace(Dir().string(), "prdo", existing);
  ASSERT_FALSE(typo.ok());
  EXPECT_EQ(typo.error().code, ErrorCode::kNotFound);
  EXPECT_NE(typo.error().message.find("no state for workspace 'prdo' in '" + Dir().string() +
                                      "' (workspaces here: default, prod)"),
            std::string::npos)
      << typo.error().message;
  EXPECT_FALSE(fs::exists(Ws("prdo")));
  EXPECT_EQ(StateStore::Workspaces(Dir().string()), (std::vector<std::string>{"default", "prod"}));
  EXPECT_TRUE(StateStore::OpenWorkspace(Dir().string(), "prod", existing).ok());
}

TEST_F(StateOpenTest, NewStateIsPrivateWhateverTheUmask) {
  Umask mask(022);
  auto store = StateStore::OpenWorkspace(Dir().string(), "default");
  ASSERT_TRUE(store.ok()) << store.error().message;
  // A write, so that SQLite has its -wal and -shm files beside the database.
  ASSERT_TRUE(store.value()->BeginApply("apply", "").ok());
  EXPECT_EQ(Mode(Dir() / ".plinth"), 0700u);
  EXPECT_EQ(Mode(Ws()), 0700u);
  EXPECT_EQ(Mode(Ws() / "state.db"), 0600u);
  ASSERT_TRUE(fs::exists(Ws() / "state.db-wal"));
  ASSERT_TRUE(fs::exists(Ws() / "state.db-shm"));
  EXPECT_EQ(Mode(Ws() / "state.db-wal"), 0600u);
  EXPECT_EQ(Mode(Ws() / "state.db-shm"), 0600u);
}

TEST_F(StateOpenTest, ExistingStateOpenToOthersIsTightenedOnOpen) {
  ASSERT_TRUE(StateStore::OpenWorkspace(Dir().string(), "default").ok());
  // As an older Plinth left it.
  ::chmod((Dir() / ".plinth").c_str(), 0755);
  ::chmod(Ws().c_str(), 0755);
  ::chmod((Ws() / "state.db").c_str(), 0644);
  StoreOptions existing;
  existing.mode = OpenMode::kExisting;
  auto store = StateStore::OpenWorkspace(Dir().string(), "default", existing);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(Mode(Dir() / ".plinth"), 0700u);
  EXPECT_EQ(Mode(Ws()), 0700u);
  EXPECT_EQ(Mode(Ws() / "state.db"), 0600u);
}

TEST_F(StateOpenTest, SymlinkedStateIsOpenedButItsTargetIsNotChmodded) {
  ASSERT_TRUE(StateStore::OpenWorkspace(Dir().string(), "default").ok());
  fs::path elsewhere = tmp_.path() / "elsewhere.db";
  fs::rename(Ws() / "state.db", elsewhere);
  ::chmod(elsewhere.c_str(), 0644);
  fs::create_symlink(elsewhere, Ws() / "state.db");
  StoreOptions existing;
  existing.mode = OpenMode::kExisting;
  auto store = StateStore::OpenWorkspace(Dir().string(), "default", existing);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(Mode(elsewhere), 0644u);
}

TEST_F(StateOpenTest, EmptyStateInMemoryWritesNothing) {
  auto store = StateStore::OpenEmpty(StoreOptions{});
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_EQ(store.value()->CurrentSerial().value(), 0);
  EXPECT_TRUE(store.value()->Resources().value().empty());
  EXPECT_TRUE(store.value()->OpenIntents().value().empty());
}

TEST_F(StateOpenTest, OnlyApplyCreatesState) {
  fs::create_directories(Dir());
  plinth::testing::WriteFile(Dir() / "main.plinth", "marker \"m\" {\n  path = \"m/a\"\n}\n");
  for (const char* what : {"plan", "refresh", "destroy"}) {
    runtime::EngineResult r = RunEngine(Options(), what);
    EXPECT_TRUE(r.ok) << what << ": " << (r.errors.empty() ? "" : r.errors[0]);
    EXPECT_FALSE(fs::exists(Dir() / ".plinth")) << what << " created state";
  }
  runtime::EngineResult planned = RunEngine(Options(), "plan");
  EXPECT_TRUE(planned.plan.HasChanges());
  EXPECT_EQ(planned.serial, 0);

  runtime::EngineOptions output = Options();
  output.require_state = true;
  output.lock = false;
  output.refresh = false;
  runtime::EngineResult missing = RunEngine(output, "plan");
  EXPECT_FALSE(missing.ok);
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_EQ(missing.errors[0].rfind("no state for workspace 'default' in '" + Dir().string() + "'", 0), 0u)
      << missing.errors[0];
  EXPECT_FALSE(fs::exists(Dir() / ".plinth"));

  Umask mask(022);
  runtime::EngineResult applied = RunEngine(Options(), "apply");
  ASSERT_TRUE(applied.ok) << (applied.errors.empty() ? "" : applied.errors[0]);
  EXPECT_EQ(Mode(Ws() / "state.db"), 0600u);
  EXPECT_EQ(Mode(Ws() / "data"), 0700u);
  EXPECT_TRUE(fs::exists(Ws() / "data" / "m" / "a"));
  EXPECT_TRUE(RunEngine(output, "plan").ok);
}

// The raw bytes of the state and the files SQLite keeps beside it.
std::string StateBytes(const fs::path& db) {
  std::string all;
  for (const char* suffix : {"", "-wal", "-shm"}) all += plinth::testing::ReadFile(db.string() + suffix);
  return all;
}

TEST_F(StateOpenTest, EncryptedStateHoldsNoSensitiveValueInItsBytes) {
  fs::create_directories(Dir());
  plinth::testing::WriteFile(Dir() / "main.plinth", kSensitiveConfig);
  // The control: without a key the value is in the file, so the search below
  // can find it.
  fs::path plain_dir = tmp_.path() / "plain";
  fs::create_directories(plain_dir);
  plinth::testing::WriteFile(plain_dir / "main.plinth", kSensitiveConfig);
  runtime::EngineOptions plain = Options();
  plain.config_dir = plain_dir.string();
  ASSERT_TRUE(RunEngine(plain, "apply").ok);
  EXPECT_NE(StateBytes(plain_dir / ".plinth/default/state.db").find(kSecret), std::string::npos);

  std::array<uint8_t, 32> key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  runtime::EngineOptions eo = Options();
  eo.state_key = key;
  runtime::EngineResult applied = RunEngine(eo, "apply");
  ASSERT_TRUE(applied.ok) << (applied.errors.empty() ? "" : applied.errors[0]);
  // An update too, so that history holds a before and an after.
  plinth::testing::WriteFile(Dir() / "main.plinth",
                             std::string(kSensitiveConfig) + "marker \"n\" {\n  path = \"m/n\"\n}\n");
  ASSERT_TRUE(RunEngine(eo, "apply").ok);
  EXPECT_EQ(plinth::testing::ReadFile(Ws() / "data" / "m" / "secret"), kSecret);
  EXPECT_EQ(StateBytes(Ws() / "state.db").find(kSecret), std::string::npos);

  // The store's own errors, precisely: no key, and another key.
  runtime::EngineResult no_key = RunEngine(Options(), "plan");
  ASSERT_FALSE(no_key.ok);
  EXPECT_NE(no_key.errors.at(0).find("encrypt"), std::string::npos) << no_key.errors[0];
  runtime::EngineOptions wrong = Options();
  key[0] ^= 1;
  wrong.state_key = key;
  runtime::EngineResult wrong_key = RunEngine(wrong, "plan");
  ASSERT_FALSE(wrong_key.ok);
  EXPECT_NE(wrong_key.errors.at(0).find("wrong encryption key"), std::string::npos) << wrong_key.errors[0];
}

}  // namespace
}  // namespace plinth
