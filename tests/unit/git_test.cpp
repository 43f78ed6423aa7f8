// Configurations from git (runtime/git/repository.h) against repositories
// the test makes with the git command: sources parsed, refs resolved
// (branch, tag, commit prefix, HEAD), trees written out with their modes and
// reused, entries that would escape refused, and a remote kept in a bare
// cache that a later open fetches incrementally (a new commit, a force-push).
#include "runtime/git/repository.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "runtime/process/process.h"
#include "tests/support/files.h"

namespace plinth::git {
namespace {

namespace fs = std::filesystem;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;

class GitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = tmp_.path() / "repo";
    fs::create_directories(repo_);
    Git({"init", "-q", "-b", "main"});
    Write("main.plinth", "region \"lab\" {}\n");
    Write("modules/net/net.plinth", "variable \"cidr\" {}\n");
    Write("scripts/patch.sh", "#!/bin/sh\necho patched\n");
    ::chmod((repo_ / "scripts/patch.sh").c_str(), 0755);
    Commit("first commit\n\nwith a body");
    Git({"tag", "v1"});
  }
  // Runs git in the repository with a fixed identity; fails the test on error.
  std::string Git(std::vector<std::string> args, const fs::path& in = {}) {
    process::Spec spec;
    auto git = process::FindExecutable("git", "/usr/local/bin:/usr/bin:/bin");
    EXPECT_TRUE(git) << "git is not installed (scripts/deps.sh installs it)";
    if (!git) return "";
    spec.program = git->string();
    spec.args = std::move(args);
    spec.cwd = in.empty() ? repo_ : in;
    spec.env = {{"PATH", "/usr/bin:/bin"},
                {"HOME", tmp_.path().string()},
                {"GIT_AUTHOR_NAME", "Ada Lovelace"},
                {"GIT_AUTHOR_EMAIL", "ada@example.org"},
                {"GIT_COMMITTER_NAME", "Ada Lovelace"},
                {"GIT_COMMITTER_EMAIL", "ada@example.org"},
                {"GIT_AUTHOR_DATE", "2026-12-01T10:00:00Z"},
                {"GIT_COMMITTER_DATE", "2026-12-01T10:00:00Z"}};
    process::Outcome o = process::Run(std::move(spec));
    EXPECT_TRUE(o.ok()) << o.Describe("git") << o.err;
    std::string out = o.out;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((repo_ / rel).parent_path());
    std::ofstream(repo_ / rel) << text;
  }
  std::string Commit(const std::string& message) {
    Git({"add", "-A"});
    Git({"commit", "-q", "-m", message});
    return Git({"rev-parse", "HEAD"});
  }
  TempDir tmp_;
  fs::path repo_;
};

TEST(GitSource, RepoAndRefAreSplitAtTheLastAtAfterThePath) {
  std::string error;
  auto s = ParseSource("/srv/infra", &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->repo, "/srv/infra");
  EXPECT_EQ(s->ref, "HEAD");
  s = ParseSource("/srv/infra@release-2", &error);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->repo, "/srv/infra");
  EXPECT_EQ(s->ref, "release-2");
  s = ParseSource("git@github.com:org/infra.git", &error);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->repo, "git@github.com:org/infra.git");
  EXPECT_EQ(s->ref, "HEAD");
  s = ParseSource("git@github.com:org/infra.git@v1", &error);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->repo, "git@github.com:org/infra.git");
  EXPECT_EQ(s->ref, "v1");
  s = ParseSource("https://user@example.org/infra.git@main", &error);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->repo, "https://user@example.org/infra.git");
  EXPECT_EQ(s->ref, "main");
  EXPECT_FALSE(ParseSource("/srv/infra@", &error));
  EXPECT_NE(error.find("names no ref"), std::string::npos) << error;
  EXPECT_FALSE(ParseSource("@main", &error));
  EXPECT_NE(error.find("names no repository"), std::string::npos) << error;
  EXPECT_TRUE(IsRemote("https://example.org/x.git"));
  EXPECT_TRUE(IsRemote("file:///srv/x"));
  EXPECT_TRUE(IsRemote("git@github.com:org/x.git"));
  EXPECT_FALSE(IsRemote("/srv/x"));
  EXPECT_FALSE(IsRemote("./x@main"));
}

TEST(GitSource, AUrlsPasswordIsRedacted) {
  EXPECT_EQ(RedactUrl("https://ci:tok3n@git.example.org/infra.git"), "https://ci:***@git.example.org/infra.git");
  EXPECT_EQ(RedactUrl("https://ci@git.example.org/infra.git"), "https://ci@git.example.org/infra.git");
  EXPECT_EQ(RedactUrl("https://git.example.org/a@b.git"), "https://git.example.org/a@b.git");
  EXPECT_EQ(RedactUrl("ssh://git:pw@host:22/x.git"), "ssh://git:***@host:22/x.git");
  EXPECT_EQ(RedactUrl("git@github.com:org/repo.git"), "git@github.com:org/repo.git");
  EXPECT_EQ(RedactUrl("/srv/git/infra.git"), "/srv/git/infra.git");
}

TEST_F(GitTest, ResolvesRefsAndWritesTheTreeWithItsModes) {
  std::string error;
  auto repo = Repository::Open(repo_.string(), tmp_.path() / "cache", &error);
  ASSERT_TRUE(repo) << error;
  const std::string first = Git({"rev-parse", "HEAD"});
  auto c = repo->Resolve("HEAD", &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->id, first);
  EXPECT_EQ(c->author, "Ada Lovelace");
  EXPECT_EQ(c->email, "ada@example.org");
  EXPECT_EQ(c->time_s, 1796119200);  // 2026-12-01T10:00:00Z
  EXPECT_EQ(c->summary, "first commit");
  EXPECT_EQ(c->tree_id, Git({"rev-parse", "HEAD^{tree}"}));
  Write("main.plinth", "region \"lab\" {}\nregion \"edge\" {}\n");
  const std::string second = Commit("second");
  for (const char* ref : {"v1", "main~1"}) {
    auto r = repo->Resolve(ref, &error);
    ASSERT_TRUE(r) << ref << ": " << error;
    EXPECT_EQ(r->id, first) << ref;
  }
  auto head = repo->Resolve(second.substr(0, 10), &error);
  ASSERT_TRUE(head) << error;
  EXPECT_EQ(head->id, second);
  EXPECT_FALSE(repo->Resolve("nope", &error));
  EXPECT_NE(error.find("no ref 'nope' in " + repo_.string()), std::string::npos) << error;

  auto out = repo->Export(*c, tmp_.path() / "cache", &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(out->dir, tmp_.path() / "cache" / "trees" / c->tree_id);
  EXPECT_EQ(ReadFile(out->dir / "main.plinth"), "region \"lab\" {}\n");  // the first commit's, not the worktree's
  EXPECT_EQ(ReadFile(out->dir / "modules/net/net.plinth"), "variable \"cidr\" {}\n");
  EXPECT_FALSE(fs::exists(out->dir / ".git"));
  struct stat st {};
  ASSERT_EQ(::stat((out->dir / "scripts/patch.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((out->dir / "main.plinth").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // The same tree again: the export is reused as it is.
  const auto mtime = fs::last_write_time(out->dir / "main.plinth");
  auto again = repo->Export(*c, tmp_.path() / "cache", &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(fs::last_write_time(again->dir / "main.plinth"), mtime);
  // Nothing half-written is left beside the trees.
  for (const auto& e : fs::directory_iterator(tmp_.path() / "cache" / "trees"))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
}

TEST_F(GitTest, ALinkOutOfTheTreeIsRefusedAndAMissingRepositoryNamed) {
  std::string error;
  EXPECT_FALSE(Repository::Open((tmp_.path() / "nowhere").string(), tmp_.path() / "cache", &error));
  EXPECT_NE(error.find("no git repository at " + (tmp_.path() / "nowhere").string()), std::string::npos) << error;
  fs::create_directories(tmp_.path() / "plain");
  EXPECT_FALSE(Repository::Open((tmp_.path() / "plain").string(), tmp_.path() / "cache", &error));
  EXPECT_NE(error.find("no git repository at"), std::string::npos) << error;

  fs::create_symlink("../../etc/passwd", repo_ / "modules" / "secret.plinth");
  fs::create_symlink("net/net.plinth", repo_ / "modules" / "alias.plinth");  // inside: fine
  Commit("links");
  auto repo = Repository::Open(repo_.string(), tmp_.path() / "cache", &error);
  ASSERT_TRUE(repo) << error;
  auto c = repo->Resolve("HEAD", &error);
  ASSERT_TRUE(c) << error;
  EXPECT_FALSE(repo->Export(*c, tmp_.path() / "cache", &error));
  EXPECT_NE(error.find("symbolic link modules/secret.plinth -> ../../etc/passwd that points outside it"),
            std::string::npos)
      << error;
  EXPECT_FALSE(fs::exists(tmp_.path() / "cache" / "trees" / c->tree_id));
  fs::remove(repo_ / "modules" / "secret.plinth");
  c = repo->Resolve(Commit("only the inner link"), &error);
  ASSERT_TRUE(c) << error;
  auto out = repo->Export(*c, tmp_.path() / "cache", &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(ReadFile(out->dir / "modules" / "alias.plinth"), "variable \"cidr\" {}\n");
}

TEST_F(GitTest, ARemoteIsCachedBareAndFetchedIncrementally) {
  const std::string url = "file://" + repo_.string();
  const fs::path cache = tmp_.path() / "cache";
  std::string error;
  auto repo = Repository::Open(url, cache, &error);
  ASSERT_TRUE(repo) << error;
  const std::string first = Git({"rev-parse", "HEAD"});
  for (const char* ref : {"main", "HEAD", "v1"}) {
    auto c = repo->Resolve(ref, &error);
    ASSERT_TRUE(c) << ref << ": " << error;
    EXPECT_EQ(c->id, first) << ref;
  }
  int caches = 0;
  for (const auto& e : fs::directory_iterator(cache / "remotes")) caches += e.path().extension() == ".git";
  EXPECT_EQ(caches, 1);
  // A new commit, then a force-push that drops it: each open sees the remote as it is.
  Write("main.plinth", "region \"lab\" {}\nregion \"edge\" {}\n");
  const std::string second = Commit("second");
  repo = Repository::Open(url, cache, &error);
  ASSERT_TRUE(repo) << error;
  auto c = repo->Resolve("main", &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->id, second);
  Git({"reset", "-q", "--hard", first});
  repo = Repository::Open(url, cache, &error);
  ASSERT_TRUE(repo) << error;
  c = repo->Resolve("main", &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->id, first) << "a force-push moves the cached branch back";
  auto out = repo->Export(*c, cache, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(ReadFile(out->dir / "main.plinth"), "region \"lab\" {}\n");
  EXPECT_FALSE(Repository::Open("file://" + (tmp_.path() / "gone").string(), cache, &error));
  EXPECT_NE(error.find("cannot fetch file://"), std::string::npos) << error;
}

// What pull-request plans and change provenance read: the merge base, the
// commits after it, the files they change, blame bounded by a commit (and
// cached per blob), and the lines removed after a commit.
TEST_F(GitTest, HistoryBlameAndRemovedLines) {
  const std::string base = Git({"rev-parse", "HEAD"});
  Write("main.plinth", "region \"lab\" {}\n\nmarker \"a\" {\n  path = \"m/a\"\n}\n");
  const std::string add = Commit("add a");
  Write("main.plinth", "region \"lab\" {}\n\nmarker \"a\" {\n  path = \"m/a2\"\n}\n");
  const std::string change = Commit("change a");
  Git({"checkout", "-q", "-b", "feature"});
  Write("main.plinth", "region \"lab\" {}\n");
  const std::string remove = Commit("remove a");
  std::string error;
  auto repo = Repository::Open(repo_.string(), {}, &error);
  ASSERT_TRUE(repo) << error;
  auto head = repo->Resolve("feature", &error);
  auto main = repo->Resolve(base, &error);
  ASSERT_TRUE(head && main) << error;
  auto mb = repo->MergeBase(*main, *head, &error);
  ASSERT_TRUE(mb) << error;
  EXPECT_EQ(mb->id, base);
  bool truncated = true;
  auto commits = repo->CommitsBetween(*mb, *head, 10, &truncated, &error);
  ASSERT_TRUE(commits) << error;
  ASSERT_EQ(commits->size(), 3u);
  EXPECT_FALSE(truncated);
  EXPECT_EQ((*commits)[0].summary, "remove a");  // newest first
  auto limited = repo->CommitsBetween(*mb, *head, 2, &truncated, &error);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 2u);
  EXPECT_TRUE(truncated);
  auto at_change = repo->Lookup(change, &error);
  ASSERT_TRUE(at_change) << error;
  auto files = repo->ChangedFiles(*mb, *at_change, &error);
  ASSERT_TRUE(files) << error;
  EXPECT_EQ(*files, std::vector<std::string>{"main.plinth"});
  // Blame at "change a", bounded by "add a": line 4 (the path) is "change a"'s,
  // the rest is older than the bound.
  const fs::path cache = tmp_.path() / "cache";
  bool cached = true;
  auto hunks = repo->Blame(*at_change, "main.plinth", add, cache, &cached, &error);
  ASSERT_TRUE(hunks) << error;
  EXPECT_FALSE(cached);
  bool line4 = false;
  for (const auto& h : *hunks) {
    const bool covers4 = h.first_line <= 4 && 4 < h.first_line + h.lines;
    if (covers4) {
      line4 = true;
      EXPECT_EQ(h.commit, change);
      EXPECT_FALSE(h.boundary);
    } else {
      EXPECT_TRUE(h.boundary) << "line " << h.first_line << " from " << h.commit;
    }
  }
  EXPECT_TRUE(line4);
  auto again = repo->Blame(*at_change, "main.plinth", add, cache, &cached, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_TRUE(cached) << "the second blame of one blob comes from the cache";
  EXPECT_EQ(again->size(), hunks->size());
  EXPECT_FALSE(repo->Blame(*at_change, "nope.plinth", add, cache, &cached, &error));
  // Removed lines after "add a": the path line (by "change a") and the block (by "remove a").
  auto removed = repo->RemovedLines(add, *head, 100,
                                    [](const std::string& path, const std::string& line) {
                                      return path == "main.plinth" && line.find("marker") != std::string::npos;
                                    },
                                    &truncated, &error);
  ASSERT_TRUE(removed) << error;
  ASSERT_EQ(removed->size(), 1u);
  EXPECT_EQ((*removed)[0].commit.id, remove);
  EXPECT_EQ((*removed)[0].line, "marker \"a\" {");
}

}  // namespace
}  // namespace plinth::git
