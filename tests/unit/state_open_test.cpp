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

std::string SensitiveConfig(const std::string& secret) {
  return "variable \"secret\" {\n  type      = string\n  default   = \"" + secret +
         "\"\n  sensitive = true\n}\n\nmarker \"m\" {\n  path    = \"m/secret\"\n  content = var.secret\n}\n";
}

constexpr const char* kFirstSecret = "s3cr3t-first-4e1d";
constexpr const char* kSecondSecret = "s3cr3t-second-9b7a";

// Applies a sensitive value, then changes it and applies again while another
// connection keeps the database open, so that the second apply's pages stay
// in the -wal file (the last connection to close would checkpoint and delete
// it). Returns the bytes of state.db, -wal and -shm at that point.
std::string ApplyTwiceAndReadBytes(const fs::path& dir, const std::optional<std::array<uint8_t, 32>>& key) {
  fs::create_directories(dir);
  runtime::EngineOptions eo;
  eo.config_dir = dir.string();
  eo.state_key = key;
  auto apply = [&] {
    SourceManager sources;
    Diagnostics diags;
    runtime::Engine engine(eo, sources, diags);
    runtime::EngineResult r = engine.Apply();
    EXPECT_TRUE(r.ok && !diags.has_errors()) << (r.errors.empty() ? "" : r.errors[0]);
  };
  plinth::testing::WriteFile(dir / "main.plinth", SensitiveConfig(kFirstSecret));
  apply();
  StoreOptions so;
  so.mode = OpenMode::kExisting;
  so.encryption_key = key;
  auto holder = StateStore::OpenWorkspace(dir.string(), "default", so);
  EXPECT_TRUE(holder.ok());
  plinth::testing::WriteFile(dir / "main.plinth", SensitiveConfig(kSecondSecret));
  apply();
  fs::path db = dir / ".plinth" / "default" / "state.db";
  EXPECT_GT(fs::file_size(db.string() + "-wal"), 0u);
  EXPECT_EQ(plinth::testing::ReadFile(dir / ".plinth" / "default" / "data" / "m" / "secret"), kSecondSecret);
  return StateBytes(db);
}

TEST_F(StateOpenTest, EncryptedStateHoldsNoSensitiveValueInItsBytes) {
  // The control: without a key both values are in the bytes (the second in
  // the -wal file), so the searches below can find what they look for.
  std::string plain = ApplyTwiceAndReadBytes(tmp_.path() / "plain", std::nullopt);
  EXPECT_NE(plain.find(kFirstSecret), std::string::npos);
  EXPECT_NE(plain.find(kSecondSecret), std::string::npos);

  std::array<uint8_t, 32> key;
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  std::string sealed = ApplyTwiceAndReadBytes(Dir(), key);
  EXPECT_EQ(sealed.find(kFirstSecret), std::string::npos);  // resource row and history before
  EXPECT_EQ(sealed.find(kSecondSecret), std::string::npos);  // resource row, history after, intent

  // The store's own errors, precisely: no key, and another key.
  runtime::EngineResult no_key = RunEngine(Options(), "plan");
  ASSERT_FALSE(no_key.ok);
  EXPECT_NE(no_key.errors.at(0).find("is encrypted; provide its key"), std::string::npos) << no_key.errors[0];
  runtime::EngineOptions wrong = Options();
  key[0] ^= 1;
  wrong.state_key = key;
  runtime::EngineResult wrong_key = RunEngine(wrong, "plan");
  ASSERT_FALSE(wrong_key.ok);
  EXPECT_NE(wrong_key.errors.at(0).find("wrong encryption key"), std::string::npos) << wrong_key.errors[0];
  runtime::EngineOptions given = Options();
  given.config_dir = (tmp_.path() / "plain").string();
  given.state_key = key;
  runtime::EngineResult not_encrypted = RunEngine(given, "plan");
  ASSERT_FALSE(not_encrypted.ok);
  EXPECT_NE(not_encrypted.errors.at(0).find("is not encrypted but an encryption key was given"), std::string::npos)
      << not_encrypted.errors[0];
}

}  // namespace
}  // namespace plinth
