// Configurations from git (docs/gitops.md, issue 17): a repository opened
// with libgit2, a ref resolved to a commit, and the commit's tree written out
// as plain files for the loader, without a working checkout.
//
// Input: a source "REPO[@REF]" — a local path (a working repository or a bare
// one) or a remote URL (file://, https://, ssh://, git@host:path) — and a
// cache directory. Output: the commit (id, tree, author, time, summary) and a
// directory holding its tree.
//
// A remote is kept in one bare repository per URL under <cache>/remotes
// (named by a digest of the URL), fetched incrementally each time it is
// opened; fetches of one remote are serialised by a lock file next to it, so
// concurrent readers are safe. A tree is written once under
// <cache>/trees/<tree id> (into a temporary directory, then renamed), so equal
// trees share one export and a reader never sees a half-written one.
//
// Invariants: nothing outside the cache is written; a tree entry that could
// escape its directory (a name such as "..", ".git" or one with '/', a
// symbolic link that is absolute or climbs out of the tree) fails the export
// with its path; submodules are left as empty directories (named in
// Export's result).
//
// Thread safety: a Repository is used by one thread; separate Repository
// objects (even of one remote) may be used concurrently.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct git_repository;

namespace plinth::git {

struct Source {
  std::string repo;  // a path or a URL, as given
  std::string ref;   // "HEAD" when none was given
};
// "REPO[@REF]": the last '@' after the last '/' separates the ref (so
// "git@host:org/repo.git" is a repository, "git@host:org/repo.git@v1" one at
// v1). Nullopt with *error on an empty repository or ref.
std::optional<Source> ParseSource(const std::string& spec, std::string* error);

// `repo` with a URL's password replaced by "***" ("https://ci:***@host/x"):
// what errors, plans and the state's history show.
std::string RedactUrl(const std::string& repo);

// Whether `repo` names a remote (a URL or scp-like "user@host:path") rather than a local path.
bool IsRemote(const std::string& repo);

struct Commit {
  std::string id;       // 40 hex digits
  std::string tree_id;  // 40 hex digits
  std::string author, email;
  int64_t time_s = 0;   // author time, seconds since the epoch (UTC)
  std::string summary;  // the message's first paragraph, on one line
};

class Repository {
 public:
  // Opens `repo` (Source::repo); a remote is fetched into its bare cache
  // under `cache_dir` first. Nullopt-like null with *error naming the
  // repository and why ("no git repository at /x", "cannot fetch URL: ...").
  // `fetch` false: a remote's cache as it is (it must exist).
  static std::unique_ptr<Repository> Open(const std::string& repo, const std::filesystem::path& cache_dir,
                                          std::string* error, bool fetch = true);
  ~Repository();
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;

  // The commit `ref` names: a branch, a tag, a commit id (or an unambiguous
  // prefix), HEAD, or any revision git understands; for a remote, a branch
  // name is its fetched branch (origin/NAME). Null with *error ("no ref
  // 'nope' in REPO").
  std::optional<Commit> Resolve(const std::string& ref, std::string* error);

  struct Exported {
    std::filesystem::path dir;            // <cache>/trees/<tree id>
    std::vector<std::string> submodules;  // paths left empty
  };
  // The tree of `commit` as files under <cache_dir>/trees/<tree id> (reused
  // when already there). Null with *error on an entry that could escape it
  // or a write that fails.
  std::optional<Exported> Export(const Commit& commit, const std::filesystem::path& cache_dir, std::string* error);

  // The last common ancestor of `a` and `b` (git merge-base). Null with
  // *error when they share no history.
  std::optional<Commit> MergeBase(const Commit& a, const Commit& b, std::string* error);
  // The commits reachable from `head` but not from `base`, newest first;
  // at most `limit` (*truncated says more were left out).
  std::optional<std::vector<Commit>> CommitsBetween(const Commit& base, const Commit& head, size_t limit,
                                                    bool* truncated, std::string* error);
  // The paths whose content, mode or existence differs between the trees of
  // `from` and `to` (both names of a rename), sorted.
  std::optional<std::vector<std::string>> ChangedFiles(const Commit& from, const Commit& to, std::string* error);

  // The commit `id` names (40 hex digits).
  std::optional<Commit> Lookup(const std::string& id, std::string* error);

  // git blame of `path` at `head`, walking back no further than `oldest` (a
  // commit id; empty: the whole history): each hunk names the commit that
  // last changed its lines; lines unchanged since `oldest` are `boundary`
  // hunks. Results are cached under <cache_dir>/blame, keyed by the file's
  // blob id and `oldest` (a file's blame depends on nothing else), so a
  // file is blamed once however many plans ask. Null with *error when the
  // file is not in the tree.
  struct BlameHunk {
    uint32_t first_line = 0;  // 1-based
    uint32_t lines = 0;
    std::string commit;
    bool boundary = false;
  };
  std::optional<std::vector<BlameHunk>> Blame(const Commit& head, const std::string& path, const std::string& oldest,
                                              const std::filesystem::path& cache_dir, bool* cached, std::string* error);

  // The removed lines `keep` accepts, of each commit after `since` up to
  // `head` (`since` empty: at most `max_commits` back), compared with its
  // first parent: (commit, path, line), oldest commit first. At most
  // `max_commits` commits are looked at (*truncated says more were left).
  struct RemovedLine {
    Commit commit;
    std::string path, line;
  };
  std::optional<std::vector<RemovedLine>> RemovedLines(
      const std::string& since, const Commit& head, size_t max_commits,
      const std::function<bool(const std::string& path, const std::string& line)>& keep, bool* truncated,
      std::string* error);

  const std::string& name() const { return name_; }  // as opened (the path or URL), RedactUrl'ed

 private:
  Repository() = default;
  git_repository* repo_ = nullptr;
  std::string name_;
  bool remote_ = false;
};

}  // namespace plinth::git
