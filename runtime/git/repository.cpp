#include "runtime/git/repository.h"

#include <fcntl.h>
#include <git2.h>
#include <openssl/sha.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>

#include "runtime/crypto/aead.h"

namespace plinth::git {
namespace fs = std::filesystem;

namespace {

void Init() {
  static std::once_flag once;
  std::call_once(once, [] { git_libgit2_init(); });
}

std::string LastError() {
  const git_error* e = git_error_last();
  return e && e->message ? e->message : "unknown libgit2 error";
}

std::string Oid(const git_oid* oid) {
  char buf[GIT_OID_HEXSZ + 1];
  git_oid_tostr(buf, sizeof buf, oid);
  return buf;
}

// Owners of libgit2 objects.
template <typename T, void (*Free)(T*)>
struct Owned {
  T* p = nullptr;
  ~Owned() {
    if (p) Free(p);
  }
  T** out() { return &p; }
};
using Object = Owned<git_object, git_object_free>;
using CommitObj = Owned<git_commit, git_commit_free>;
using Tree = Owned<git_tree, git_tree_free>;
using Blob = Owned<git_blob, git_blob_free>;
using Remote = Owned<git_remote, git_remote_free>;

// A file lock held while one remote's cache is created or fetched.
class FileLock {
 public:
  explicit FileLock(const fs::path& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// A tree entry's name that stays inside its directory.
bool SafeName(const char* name) {
  const std::string n = name ? name : "";
  return !n.empty() && n != "." && n != ".." && n != ".git" && n.find('/') == std::string::npos &&
         n.find('\0') == std::string::npos;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Writes `tree` into `dir` (which exists); `rel` is its path in the tree, for messages.
bool WriteTree(git_repository* repo, const git_tree* tree, const fs::path& dir, const fs::path& rel,
               std::vector<std::string>* submodules, std::string* error) {
  const size_t n = git_tree_entrycount(tree);
  for (size_t i = 0; i < n; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    const char* name = git_tree_entry_name(e);
    const fs::path path = rel / (name ? name : "");
    if (!SafeName(name)) {
      *error = "the tree has an entry named '" + std::string(name ? name : "") + "' in '" + rel.string() +
               "' that could leave its directory: Plinth does not write it";
      return false;
    }
    const fs::path target = dir / name;
    const git_filemode_t mode = git_tree_entry_filemode(e);
    if (mode == GIT_FILEMODE_TREE) {
      Tree sub;
      if (git_tree_lookup(sub.out(), repo, git_tree_entry_id(e)) != 0) {
        *error = "cannot read directory " + path.string() + ": " + LastError();
        return false;
      }
      if (::mkdir(target.c_str(), 0755) != 0) {
        *error = "cannot create " + target.string() + ": " + std::strerror(errno);
        return false;
      }
      if (!WriteTree(repo, sub.p, target, path, submodules, error)) return false;
      continue;
    }
    if (mode == GIT_FILEMODE_COMMIT) {  // a submodule: its commit is in another repository
      if (::mkdir(target.c_str(), 0755) != 0) {
        *error = "cannot create " + target.string() + ": " + std::strerror(errno);
        return false;
      }
      submodules->push_back(path.string());
      continue;
    }
    Blob blob;
    if (git_blob_lookup(blob.out(), repo, git_tree_entry_id(e)) != 0) {
      *error = "cannot read " + path.string() + ": " + LastError();
      return false;
    }
    const char* data = static_cast<const char*>(git_blob_rawcontent(blob.p));
    const size_t size = static_cast<size_t>(git_blob_rawsize(blob.p));
    if (mode == GIT_FILEMODE_LINK) {
      const std::string link(data, size);
      const fs::path resolved = (rel / link).lexically_normal();
      if (link.empty() || fs::path(link).is_absolute() || link.find('\0') != std::string::npos ||
          resolved.empty() || *resolved.begin() == "..") {
        *error = "the tree has a symbolic link " + path.string() + " -> " + link +
                 " that points outside it: Plinth does not follow it";
        return false;
      }
      if (::symlink(link.c_str(), target.c_str()) != 0) {
        *error = "cannot create " + target.string() + ": " + std::strerror(errno);
        return false;
      }
      continue;
    }
    const mode_t file_mode = mode == GIT_FILEMODE_BLOB_EXECUTABLE ? 0755 : 0644;
    const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, file_mode);
    if (fd < 0) {
      *error = "cannot create " + target.string() + ": " + std::strerror(errno);
      return false;
    }
    const bool ok = WriteAll(fd, data, size);
    const int saved = errno;
    ::close(fd);
    if (!ok) {
      *error = "cannot write " + target.string() + ": " + std::strerror(saved);
      return false;
    }
  }
  return true;
}

// The submodules of `tree` (paths), without writing anything.
void ListSubmodules(git_repository* repo, const git_tree* tree, const fs::path& rel, std::vector<std::string>* out) {
  const size_t n = git_tree_entrycount(tree);
  for (size_t i = 0; i < n; ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    const git_filemode_t mode = git_tree_entry_filemode(e);
    const fs::path path = rel / git_tree_entry_name(e);
    if (mode == GIT_FILEMODE_COMMIT) {
      out->push_back(path.string());
    } else if (mode == GIT_FILEMODE_TREE) {
      Tree sub;
      if (git_tree_lookup(sub.out(), repo, git_tree_entry_id(e)) == 0) ListSubmodules(repo, sub.p, path, out);
    }
  }
}

Commit CommitOf(git_commit* c) {
  Commit out;
  out.id = Oid(git_commit_id(c));
  out.tree_id = Oid(git_commit_tree_id(c));
  if (const git_signature* a = git_commit_author(c)) {
    out.author = a->name ? a->name : "";
    out.email = a->email ? a->email : "";
    out.time_s = static_cast<int64_t>(a->when.time);
  }
  if (const char* s = git_commit_summary(c)) out.summary = s;
  return out;
}

std::string UrlKey(const std::string& url) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(url.data()), url.size(), md);
  return crypto::Hex(md, 8);
}

}  // namespace

std::optional<Source> ParseSource(const std::string& spec, std::string* error) {
  const size_t slash = spec.find_last_of('/');
  const size_t colon = spec.find_last_of(':');
  size_t floor = 0;
  if (slash != std::string::npos) floor = std::max(floor, slash + 1);
  if (colon != std::string::npos) floor = std::max(floor, colon + 1);
  const size_t at = spec.find_last_of('@');
  Source s;
  if (at != std::string::npos && at >= floor) {
    s.repo = spec.substr(0, at);
    s.ref = spec.substr(at + 1);
    if (s.ref.empty()) {
      *error = "'" + spec + "' ends with '@' but names no ref: write REPO@REF (a branch, a tag or a commit), or "
               "leave out '@' for HEAD";
      return std::nullopt;
    }
  } else {
    s.repo = spec;
    s.ref = "HEAD";
  }
  if (s.repo.empty()) {
    *error = "'" + spec + "' names no repository: write --git=PATH or --git=URL, optionally @REF";
    return std::nullopt;
  }
  return s;
}

std::string RedactUrl(const std::string& repo) {
  const size_t scheme = repo.find("://");
  if (scheme == std::string::npos) return repo;
  const size_t start = scheme + 3;
  const size_t end = std::min(repo.find_first_of("/?#", start), repo.size());
  const size_t at = repo.rfind('@', end - 1);
  if (at == std::string::npos || at < start) return repo;
  const size_t colon = repo.find(':', start);
  if (colon == std::string::npos || colon > at) return repo;
  return repo.substr(0, colon + 1) + "***" + repo.substr(at);
}

bool IsRemote(const std::string& repo) {
  if (repo.find("://") != std::string::npos) return true;
  // scp-like: user@host:path (no '/' before the ':').
  const size_t colon = repo.find(':');
  const size_t at = repo.find('@');
  const size_t slash = repo.find('/');
  return colon != std::string::npos && at != std::string::npos && at < colon &&
         (slash == std::string::npos || slash > colon);
}

Repository::~Repository() {
  if (repo_) git_repository_free(repo_);
}

std::unique_ptr<Repository> Repository::Open(const std::string& repo, const fs::path& cache_dir, std::string* error,
                                             bool fetch) {
  Init();
  std::unique_ptr<Repository> r(new Repository());
  r->name_ = RedactUrl(repo);
  r->remote_ = IsRemote(repo);
  // libgit2's messages may quote the URL: never its password.
  auto last_error = [&] {
    std::string m = LastError();
    for (size_t at; repo != r->name_ && (at = m.find(repo)) != std::string::npos;) m.replace(at, repo.size(), r->name_);
    return m;
  };
  const std::string& shown = r->name_;
  if (!r->remote_) {
    std::error_code ec;
    if (!fs::exists(repo, ec)) {
      *error = "no git repository at " + shown + ": the path does not exist";
      return nullptr;
    }
    if (git_repository_open_ext(&r->repo_, repo.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
      *error = "no git repository at " + shown + ": " + last_error();
      return nullptr;
    }
    return r;
  }
  // A remote: its bare cache, created on first use and fetched each time.
  const fs::path remotes = cache_dir / "remotes";
  std::error_code ec;
  fs::create_directories(remotes, ec);
  ::chmod(cache_dir.c_str(), 0700);
  // Keyed by the URL without its password: a rotated token keeps the cache.
  const fs::path bare = remotes / (UrlKey(shown) + ".git");
  FileLock lock(remotes / (UrlKey(shown) + ".lock"));
  if (!lock.ok()) {
    *error = "cannot lock the cache of " + shown + " in " + remotes.string() + ": " + std::strerror(errno);
    return nullptr;
  }
  if (fs::exists(bare / "HEAD", ec)) {
    if (git_repository_open_bare(&r->repo_, bare.c_str()) != 0) {
      *error = "cannot open the cache of " + shown + " (" + bare.string() + "): " + last_error();
      return nullptr;
    }
  } else {
    fs::remove_all(bare, ec);  // a cache whose creation was cut short
    if (git_repository_init(&r->repo_, bare.c_str(), /*is_bare=*/1) != 0) {
      *error = "cannot create the cache of " + shown + " (" + bare.string() + "): " + last_error();
      return nullptr;
    }
  }
  if (!fetch) return r;  // the cache as it is: its remote's URL is left alone
  Remote remote;
  if (git_remote_lookup(remote.out(), r->repo_, "origin") == 0) {
    if (std::string(git_remote_url(remote.p)) != repo) {  // the password changed
      git_remote_free(remote.p);
      remote.p = nullptr;
      if (git_remote_set_url(r->repo_, "origin", repo.c_str()) != 0 ||
          git_remote_lookup(remote.out(), r->repo_, "origin") != 0) {
        *error = "cannot set up the cache of " + shown + ": " + last_error();
        return nullptr;
      }
    }
  } else if (git_remote_create_with_fetchspec(remote.out(), r->repo_, "origin", repo.c_str(),
                                              "+refs/heads/*:refs/remotes/origin/*") != 0) {
    *error = "cannot set up the cache of " + shown + ": " + last_error();
    return nullptr;
  }
  git_fetch_options opts = GIT_FETCH_OPTIONS_INIT;
  opts.prune = GIT_FETCH_PRUNE;                       // branches deleted there go here too
  opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_ALL;  // tags name releases
  if (git_remote_fetch(remote.p, nullptr, &opts, "plinth fetch") != 0) {
    *error = "cannot fetch " + shown + ": " + last_error();
    return nullptr;
  }
  return r;
}

std::optional<Commit> Repository::Resolve(const std::string& ref, std::string* error) {
  std::vector<std::string> tries;
  if (remote_) {
    // A branch of the remote is its fetched branch; HEAD its default one.
    if (ref == "HEAD") {
      tries = {"refs/remotes/origin/HEAD", "refs/remotes/origin/main", "refs/remotes/origin/master"};
    } else {
      tries = {"refs/remotes/origin/" + ref, "refs/tags/" + ref, ref};
    }
  } else {
    tries = {ref};
  }
  Object obj;
  for (const std::string& t : tries)
    if (git_revparse_single(obj.out(), repo_, t.c_str()) == 0) break;
  if (!obj.p) {
    *error = "no ref '" + ref + "' in " + name_ + ": give a branch, a tag or a commit id it has";
    return std::nullopt;
  }
  Object peeled;
  if (git_object_peel(peeled.out(), obj.p, GIT_OBJECT_COMMIT) != 0) {
    *error = "'" + ref + "' in " + name_ + " does not name a commit: " + LastError();
    return std::nullopt;
  }
  return CommitOf(reinterpret_cast<git_commit*>(peeled.p));
}

std::optional<Commit> Repository::MergeBase(const Commit& a, const Commit& b, std::string* error) {
  git_oid oa, ob, base;
  if (git_oid_fromstr(&oa, a.id.c_str()) != 0 || git_oid_fromstr(&ob, b.id.c_str()) != 0) {
    *error = "not a commit id";
    return std::nullopt;
  }
  if (git_merge_base(&base, repo_, &oa, &ob) != 0) {
    *error = "commits " + a.id.substr(0, 12) + " and " + b.id.substr(0, 12) + " of " + name_ +
             " have no common ancestor: " + LastError();
    return std::nullopt;
  }
  CommitObj c;
  if (git_commit_lookup(c.out(), repo_, &base) != 0) {
    *error = "cannot read the merge base of " + name_ + ": " + LastError();
    return std::nullopt;
  }
  return CommitOf(c.p);
}

std::optional<std::vector<Commit>> Repository::CommitsBetween(const Commit& base, const Commit& head, size_t limit,
                                                              bool* truncated, std::string* error) {
  *truncated = false;
  git_revwalk* raw = nullptr;
  if (git_revwalk_new(&raw, repo_) != 0) {
    *error = "cannot walk the history of " + name_ + ": " + LastError();
    return std::nullopt;
  }
  std::unique_ptr<git_revwalk, void (*)(git_revwalk*)> walk(raw, git_revwalk_free);
  git_revwalk_sorting(walk.get(), GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
  git_oid oh, ob;
  if (git_oid_fromstr(&oh, head.id.c_str()) != 0 || git_revwalk_push(walk.get(), &oh) != 0) {
    *error = "cannot walk from " + head.id.substr(0, 12) + ": " + LastError();
    return std::nullopt;
  }
  if (git_oid_fromstr(&ob, base.id.c_str()) == 0) (void)git_revwalk_hide(walk.get(), &ob);
  std::vector<Commit> out;
  git_oid oid;
  while (git_revwalk_next(&oid, walk.get()) == 0) {
    if (out.size() >= limit) {
      *truncated = true;
      break;
    }
    CommitObj c;
    if (git_commit_lookup(c.out(), repo_, &oid) != 0) continue;
    out.push_back(CommitOf(c.p));
  }
  return out;
}

std::optional<Commit> Repository::Lookup(const std::string& id, std::string* error) {
  git_oid oid;
  CommitObj c;
  if (git_oid_fromstr(&oid, id.c_str()) != 0 || git_commit_lookup(c.out(), repo_, &oid) != 0) {
    *error = "no commit " + id.substr(0, 12) + " in " + name_;
    return std::nullopt;
  }
  return CommitOf(c.p);
}

std::optional<std::vector<Repository::BlameHunk>> Repository::Blame(const Commit& head, const std::string& path,
                                                                    const std::string& oldest,
                                                                    const fs::path& cache_dir, bool* cached,
                                                                    std::string* error) {
  *cached = false;
  git_oid head_oid, tree_oid;
  Tree tree;
  if (git_oid_fromstr(&head_oid, head.id.c_str()) != 0 || git_oid_fromstr(&tree_oid, head.tree_id.c_str()) != 0 ||
      git_tree_lookup(tree.out(), repo_, &tree_oid) != 0) {
    *error = "cannot read commit " + head.id.substr(0, 12) + ": " + LastError();
    return std::nullopt;
  }
  git_tree_entry* raw_entry = nullptr;
  if (git_tree_entry_bypath(&raw_entry, tree.p, path.c_str()) != 0) {
    *error = "no file " + path + " in commit " + head.id.substr(0, 12);
    return std::nullopt;
  }
  const std::string blob = Oid(git_tree_entry_id(raw_entry));
  git_tree_entry_free(raw_entry);
  const fs::path cache_file = cache_dir / "blame" / (blob + "-" + (oldest.empty() ? "all" : oldest) + ".txt");
  {
    std::ifstream in(cache_file);
    std::vector<BlameHunk> hunks;
    BlameHunk h;
    int boundary = 0;
    while (in >> h.first_line >> h.lines >> h.commit >> boundary) {
      h.boundary = boundary != 0;
      hunks.push_back(h);
    }
    if (in.eof() && !hunks.empty()) {
      *cached = true;
      return hunks;
    }
  }
  git_blame_options opts = GIT_BLAME_OPTIONS_INIT;
  opts.newest_commit = head_oid;
  if (!oldest.empty()) (void)git_oid_fromstr(&opts.oldest_commit, oldest.c_str());
  git_blame* raw = nullptr;
  if (git_blame_file(&raw, repo_, path.c_str(), &opts) != 0) {
    *error = "cannot blame " + path + " at " + head.id.substr(0, 12) + ": " + LastError();
    return std::nullopt;
  }
  std::unique_ptr<git_blame, void (*)(git_blame*)> blame(raw, git_blame_free);
  std::vector<BlameHunk> hunks;
  std::string text;
  const uint32_t n = git_blame_get_hunk_count(blame.get());
  for (uint32_t i = 0; i < n; ++i) {
    const git_blame_hunk* h = git_blame_get_hunk_byindex(blame.get(), i);
    BlameHunk out;
    out.first_line = static_cast<uint32_t>(h->final_start_line_number);
    out.lines = static_cast<uint32_t>(h->lines_in_hunk);
    out.commit = Oid(&h->final_commit_id);
    out.boundary = h->boundary != 0 || (!oldest.empty() && out.commit == oldest);
    text += std::to_string(out.first_line) + " " + std::to_string(out.lines) + " " + out.commit + " " +
            (out.boundary ? "1" : "0") + "\n";
    hunks.push_back(std::move(out));
  }
  std::error_code ec;
  fs::create_directories(cache_file.parent_path(), ec);
  const fs::path tmp = cache_file.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
  }
  if (::rename(tmp.c_str(), cache_file.c_str()) != 0) fs::remove(tmp, ec);
  return hunks;
}

std::optional<std::vector<Repository::RemovedLine>> Repository::RemovedLines(
    const std::string& since, const Commit& head, size_t max_commits,
    const std::function<bool(const std::string&, const std::string&)>& keep, bool* truncated, std::string* error) {
  Commit base;
  base.id = since;  // empty: nothing hidden, the walk stops at max_commits
  auto between = CommitsBetween(base, head, max_commits, truncated, error);
  if (!between) return std::nullopt;
  const std::vector<Commit>& commits = *between;
  std::vector<RemovedLine> out;
  for (auto it = commits.rbegin(); it != commits.rend(); ++it) {  // oldest first
    CommitObj c;
    git_oid oid;
    if (git_oid_fromstr(&oid, it->id.c_str()) != 0 || git_commit_lookup(c.out(), repo_, &oid) != 0) continue;
    if (git_commit_parentcount(c.p) == 0) continue;  // a root commit removes nothing
    CommitObj parent;
    if (git_commit_parent(parent.out(), c.p, 0) != 0) continue;
    Tree a, b;
    if (git_commit_tree(a.out(), parent.p) != 0 || git_commit_tree(b.out(), c.p) != 0) continue;
    git_diff* raw = nullptr;
    if (git_diff_tree_to_tree(&raw, repo_, a.p, b.p, nullptr) != 0) continue;
    std::unique_ptr<git_diff, void (*)(git_diff*)> diff(raw, git_diff_free);
    struct Ctx {
      const std::function<bool(const std::string&, const std::string&)>* keep;
      const Commit* commit;
      std::vector<RemovedLine>* out;
    } ctx{&keep, &*it, &out};
    git_diff_foreach(
        diff.get(), nullptr, nullptr, nullptr,
        [](const git_diff_delta* delta, const git_diff_hunk*, const git_diff_line* line, void* payload) -> int {
          if (line->origin != GIT_DIFF_LINE_DELETION) return 0;
          auto* x = static_cast<Ctx*>(payload);
          const std::string path = delta->old_file.path ? delta->old_file.path : "";
          std::string text(line->content, line->content_len);
          while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
          if ((*x->keep)(path, text)) x->out->push_back({*x->commit, path, std::move(text)});
          return 0;
        },
        &ctx);
  }
  return out;
}

std::optional<std::vector<std::string>> Repository::ChangedFiles(const Commit& from, const Commit& to,
                                                                 std::string* error) {
  auto tree_of = [&](const Commit& c, Tree* t) {
    git_oid oid;
    return git_oid_fromstr(&oid, c.tree_id.c_str()) == 0 && git_tree_lookup(t->out(), repo_, &oid) == 0;
  };
  Tree a, b;
  if (!tree_of(from, &a) || !tree_of(to, &b)) {
    *error = "cannot read the trees of " + from.id.substr(0, 12) + " and " + to.id.substr(0, 12) + ": " + LastError();
    return std::nullopt;
  }
  git_diff* raw = nullptr;
  if (git_diff_tree_to_tree(&raw, repo_, a.p, b.p, nullptr) != 0) {
    *error = "cannot compare " + from.id.substr(0, 12) + " and " + to.id.substr(0, 12) + ": " + LastError();
    return std::nullopt;
  }
  std::unique_ptr<git_diff, void (*)(git_diff*)> diff(raw, git_diff_free);
  std::vector<std::string> out;
  const size_t n = git_diff_num_deltas(diff.get());
  for (size_t i = 0; i < n; ++i) {
    const git_diff_delta* d = git_diff_get_delta(diff.get(), i);
    const char* path = d->new_file.path ? d->new_file.path : d->old_file.path;
    if (path) out.emplace_back(path);
    if (d->old_file.path && d->new_file.path && std::strcmp(d->old_file.path, d->new_file.path) != 0)
      out.emplace_back(d->old_file.path);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::optional<Repository::Exported> Repository::Export(const Commit& commit, const fs::path& cache_dir,
                                                       std::string* error) {
  git_oid tree_oid;
  if (git_oid_fromstr(&tree_oid, commit.tree_id.c_str()) != 0) {
    *error = "'" + commit.tree_id + "' is not a tree id";
    return std::nullopt;
  }
  Tree tree;
  if (git_tree_lookup(tree.out(), repo_, &tree_oid) != 0) {
    *error = "cannot read the tree of commit " + commit.id + ": " + LastError();
    return std::nullopt;
  }
  Exported out;
  const fs::path trees = cache_dir / "trees";
  out.dir = trees / commit.tree_id;
  std::error_code ec;
  if (fs::is_directory(out.dir, ec)) {  // written before: trees never change
    ListSubmodules(repo_, tree.p, "", &out.submodules);
    return out;
  }
  fs::create_directories(trees, ec);
  static std::atomic<unsigned> counter{0};
  const fs::path tmp =
      trees / ("." + commit.tree_id + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(tmp, ec);
  if (::mkdir(tmp.c_str(), 0755) != 0) {
    *error = "cannot create " + tmp.string() + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if (!WriteTree(repo_, tree.p, tmp, "", &out.submodules, error)) {
    *error = "cannot export commit " + commit.id.substr(0, 12) + " of " + name_ + ": " + *error;
    fs::remove_all(tmp, ec);
    return std::nullopt;
  }
  if (::rename(tmp.c_str(), out.dir.c_str()) != 0) {
    const int saved = errno;
    fs::remove_all(tmp, ec);
    if (!fs::is_directory(out.dir, ec)) {  // not another writer's identical export
      *error = "cannot create " + out.dir.string() + ": " + std::strerror(saved);
      return std::nullopt;
    }
  }
  return out;
}

}  // namespace plinth::git
