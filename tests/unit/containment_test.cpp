// Containment of Plinth's own files against someone who can write inside the
// data root (docs/state.md, "Threat model"): temp files never follow planted
// names, reads never follow symlinks out, and a symlink where a marker was is
// drift, not a way to read or overwrite another file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "runtime/io/durable.h"
#include "runtime/providers/local/provider.h"
#include "tests/support/files.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::WriteFile;

unsigned ModeOf(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0;
}

bool IsSymlink(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// A 0600 file outside the directory under attack, with known content.
fs::path Victim(const fs::path& dir) {
  fs::path v = dir / "victim";
  WriteFile(v, "do not touch");
  ::chmod(v.c_str(), 0600);
  return v;
}

// ---------------------------------------------------------------- io layer

TEST(DurableWriteTest, PlantedSymlinksAtTheOldTempNameAndTheTargetAreNeverFollowed) {
  TempDir t;
  fs::path victim = Victim(t.path());
  fs::path dir = t.path() / "d";
  fs::create_directories(dir);
  // The temp name writers used before (".NAME.tmp"), and the target itself.
  fs::create_symlink(victim, dir / ".x.tmp");
  fs::create_symlink(victim, dir / "x");
  ASSERT_EQ(io::WriteFileAtomic(dir / "x", "new", 0644), 0);
  EXPECT_EQ(ReadFile(victim), "do not touch");
  EXPECT_EQ(ModeOf(victim), 0600u);
  EXPECT_FALSE(IsSymlink(dir / "x"));  // the link was replaced, not followed
  EXPECT_EQ(ReadFile(dir / "x"), "new");
  EXPECT_EQ(ModeOf(dir / "x"), 0644u);
}

TEST(DurableWriteTest, TempFilesAreExclusiveAndRemovedUnlessCommitted) {
  TempDir t;
  {
    io::TempFile a, b;
    ASSERT_EQ(io::TempFile::Create(t.path(), "obj", 0600, &a), 0);
    ASSERT_EQ(io::TempFile::Create(t.path(), "obj", 0600, &b), 0);
    EXPECT_NE(a.path(), b.path());
    EXPECT_TRUE(io::IsTempName(a.path().filename().string())) << a.path();
    EXPECT_EQ(ModeOf(a.path()), 0600u);
    ASSERT_EQ(a.Write("kept"), 0);
    ASSERT_EQ(a.Commit("obj"), 0);
  }
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(t.path())) {
    ++files;
    EXPECT_EQ(e.path().filename(), "obj");
  }
  EXPECT_EQ(files, 1u);  // b was discarded by its destructor
  EXPECT_EQ(ReadFile(t.path() / "obj"), "kept");
  EXPECT_FALSE(io::IsTempName("obj"));
  EXPECT_FALSE(io::IsTempName(".obj.tmp"));
}

TEST(DurableWriteTest, CreateFileIfMissingNeverOpensAnExistingFileSoThisProcesssLocksStay) {
  testing::TempDir dir("plinth-create");
  const fs::path f = dir.path() / "services.db";
  ASSERT_EQ(io::CreateFileIfMissing(f, 0600), 0);
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // A POSIX lock as SQLite takes one; closing any descriptor of the file in
  // this process would drop it.
  int fd = ::open(f.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 1;
  ASSERT_EQ(::fcntl(fd, F_SETLK, &lock), 0);
  ASSERT_EQ(io::CreateFileIfMissing(f, 0600), 0);  // exists: left alone
  // Another process still sees the lock.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    int cfd = ::open(f.c_str(), O_RDWR | O_CLOEXEC);
    struct flock probe {};
    probe.l_type = F_WRLCK;
    probe.l_whence = SEEK_SET;
    probe.l_start = 0;
    probe.l_len = 1;
    ::fcntl(cfd, F_GETLK, &probe);
    ::_exit(probe.l_type == F_UNLCK ? 1 : 0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the lock was dropped";
  ::close(fd);
  EXPECT_EQ(io::CreateFileIfMissing(dir.path() / "no-such-dir" / "x", 0600), -ENOENT);
}

TEST(BeneathTest, SymlinksAndDotDotAreRefusedAtEveryComponent) {
  TempDir t;
  fs::path root = t.path() / "root";
  fs::path victim = Victim(t.path());
  fs::create_directories(root / "a");
  WriteFile(root / "a" / "f", "inside");
  fs::create_symlink(t.path(), root / "out");  // a directory link out of the root
  fs::create_symlink(victim, root / "a" / "link");
  std::string got;
  EXPECT_EQ(io::ReadFileBeneath(root, "a/f", &got), 0);
  EXPECT_EQ(got, "inside");
  EXPECT_EQ(io::ReadFileBeneath(root, "out/victim", &got), ELOOP);
  EXPECT_EQ(io::ReadFileBeneath(root, "a/link", &got), ELOOP);
  EXPECT_EQ(io::ReadFileBeneath(root, "a/../../victim", &got), EINVAL);
  EXPECT_EQ(io::ReadFileBeneath(root, "/etc/passwd", &got), EINVAL);
  EXPECT_EQ(io::ReadFileBeneath(root, "a/missing", &got), ENOENT);
  EXPECT_EQ(io::MakeDirsBeneath(root, "out/new"), ELOOP);
  EXPECT_FALSE(fs::exists(t.path() / "new"));
  EXPECT_EQ(io::MakeDirsBeneath(root, "b/c", 0700), 0);
  EXPECT_EQ(ModeOf(root / "b" / "c"), 0700u);
  struct stat st;
  EXPECT_EQ(io::StatBeneath(root, "a/link", &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  int fd = io::OpenBeneath(root, "out/victim", O_RDONLY);
  EXPECT_EQ(fd, -ELOOP);
}

// ------------------------------------------------------------ local markers

class MarkerContainmentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(t_.path().empty());
    data_ = t_.path() / "ws" / "data";
    secret_ = t_.path() / "ws" / "workspace.key";
    fs::create_directories(data_);
    WriteFile(secret_, "0123456789abcdef-secret-key-material");
    ::chmod(secret_.c_str(), 0600);
    provider_ = std::make_unique<runtime::LocalProvider>(data_, secret_);
  }

  runtime::ResourceObject Create(const std::string& path, const std::string& content) {
    ValueMap config = {{"name", Value::String("m")},           {"address", Value::String("marker.m")},
                       {"id", Value::Unknown(Type::String())}, {"path", Value::String(path)},
                       {"content", Value::String(content)},    {"triggers", Value()}};
    auto plan = provider_->PlanChange(runtime::PlanRequest{"marker", nullptr, config});
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    auto created = provider_->Create("marker", plan.value().planned);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    return created.ok() ? created.value() : runtime::ResourceObject{};
  }

  TempDir t_;
  fs::path data_, secret_;
  std::unique_ptr<runtime::LocalProvider> provider_;
};

TEST_F(MarkerContainmentTest, AMarkerReplacedByASymlinkToTheKeyReadsAsGoneNeverAsTheKey) {
  runtime::ResourceObject m = Create("m/x", "hello");
  fs::path file = provider_->data_root() / "m" / "x";
  fs::remove(file);
  fs::create_symlink(secret_, file);
  auto read = provider_->Read("marker", m.id, m.attributes);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_FALSE(read.value().has_value()) << "the link's target was read as the marker's content";
  // A symlinked directory on the way reads the same.
  fs::remove_all(provider_->data_root() / "m");
  fs::create_symlink(secret_.parent_path(), provider_->data_root() / "m");
  auto through_dir = provider_->Read("marker", "m/workspace.key", m.attributes);
  ASSERT_TRUE(through_dir.ok()) << through_dir.error().message;
  EXPECT_FALSE(through_dir.value().has_value());
}

TEST_F(MarkerContainmentTest, WritingOverAPlantedSymlinkReplacesTheLinkAndLeavesItsTargetAlone) {
  fs::path victim = Victim(t_.path());
  fs::path dir = provider_->data_root() / "m";
  fs::create_directories(dir);
  fs::create_symlink(victim, dir / ".x.tmp");  // the old fixed temp name
  fs::create_symlink(victim, dir / "x");
  Create("m/x", "hello");
  EXPECT_EQ(ReadFile(victim), "do not touch");
  EXPECT_EQ(ModeOf(victim), 0600u);
  EXPECT_FALSE(IsSymlink(dir / "x"));
  EXPECT_EQ(ReadFile(dir / "x"), "hello");
  // A delete removes a link put there since, never its target.
  fs::remove(dir / "x");
  fs::create_symlink(victim, dir / "x");
  auto del = provider_->Delete("marker", "m/x", {{"path", Value::String("m/x")}});
  ASSERT_TRUE(del.ok()) << del.error().message;
  EXPECT_FALSE(fs::exists(dir / "x") || IsSymlink(dir / "x"));
  EXPECT_EQ(ReadFile(victim), "do not touch");
}

TEST_F(MarkerContainmentTest, RegionMetadataReplacedByASymlinkIsRefusedWithoutItsTargetsContent) {
  ValueMap region = {{"name", Value::String("eu")},          {"address", Value::String("region.eu")},
                     {"id", Value::Unknown(Type::String())}, {"root", Value::Unknown(Type::String())},
                     {"path", Value::Unknown(Type::String())}, {"port_base", Value::Number(20000)},
                     {"port_count", Value::Number(1000)},    {"down", Value::Bool(false)},
                     {"labels", Value()}};
  auto plan = provider_->PlanChange(runtime::PlanRequest{"region", nullptr, region});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  auto eu = provider_->Create("region", plan.value().planned);
  ASSERT_TRUE(eu.ok()) << eu.error().message;
  fs::path meta = provider_->data_root() / "regions" / "eu" / ".plinth-region.json";
  fs::remove(meta);
  fs::create_symlink(secret_, meta);
  auto read = provider_->Read("region", "eu", eu.value().attributes);
  std::string message = read.ok() ? "" : read.error().message;
  EXPECT_EQ(message.find("secret-key-material"), std::string::npos) << message;
  EXPECT_EQ(message.find("0123456789abcdef"), std::string::npos) << message;
  if (read.ok()) EXPECT_FALSE(read.value().has_value());
}

}  // namespace
}  // namespace plinth
