#include "runtime/io/durable.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace plinth::io {

namespace fs = std::filesystem;

namespace {

int OpenDir(const fs::path& dir) {
  return ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

int SyncFd(int fd) {
  if (::fsync(fd) != 0 && errno != EINVAL) return errno;
  return 0;
}

std::string RandomSuffix() {
  unsigned char b[8];
  size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    got += static_cast<size_t>(n);
  }
  static const char* kHex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

// The segments of a clean relative path, or empty when it is not one.
bool Segments(const fs::path& rel, std::vector<std::string>* out) {
  const std::string& s = rel.native();
  if (s.empty() || s[0] == '/' || s.find('\0') != std::string::npos) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find('/', start);
    if (end == std::string::npos) end = s.size();
    std::string seg = s.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == "..") return false;
    out->push_back(std::move(seg));
    start = end + 1;
  }
  return !out->empty();
}

// Walks all but the last segment from `root`, returning a handle on the
// directory that holds the last one (or -errno).
int WalkParents(const fs::path& root, const std::vector<std::string>& segs, bool create, unsigned mode) {
  int cur = OpenDir(root);
  if (cur < 0) return -errno;
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    int next = ::openat(cur, segs[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(cur, segs[i].c_str(), mode) != 0 && errno != EEXIST) {
        int e = errno;
        ::close(cur);
        return -e;
      }
      SyncFd(cur);
      next = ::openat(cur, segs[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      // A symlink opened with O_DIRECTORY|O_NOFOLLOW reports ENOTDIR on some
      // kernels; say ELOOP when it is one.
      int e = errno;
      struct stat st;
      if (e == ENOTDIR && ::fstatat(cur, segs[i].c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
          S_ISLNK(st.st_mode))
        e = ELOOP;
      ::close(cur);
      return -e;
    }
    ::close(cur);
    cur = next;
  }
  return cur;
}

}  // namespace

int SyncDir(const fs::path& dir) {
  int fd = OpenDir(dir);
  if (fd < 0) return errno;
  int e = SyncFd(fd);
  ::close(fd);
  return e;
}

int MakeDirs(const fs::path& dir, unsigned mode) {
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
  if (dir.has_parent_path() && dir.parent_path() != dir) {
    if (int e = MakeDirs(dir.parent_path(), mode)) return e;
  }
  if (::mkdir(dir.c_str(), mode) != 0) {
    if (errno == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return 0;
    return errno;
  }
  return SyncDir(dir.parent_path());
}

int CommitTemp(const fs::path& tmp, const fs::path& path, const char** stage) {
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    if (stage) *stage = "rename";
    return e;
  }
  if (int e = SyncDir(path.parent_path())) {
    if (stage) *stage = "sync the directory of";
    return e;
  }
  return 0;
}

bool IsTempName(std::string_view name) {
  // ".STEM.<16 hex>.tmp"
  if (name.size() < 1 + 1 + 16 + 4 || name[0] != '.' || name.substr(name.size() - 4) != ".tmp") return false;
  std::string_view hex = name.substr(name.size() - 4 - 16, 16);
  if (name[name.size() - 4 - 16 - 1] != '.') return false;
  for (char c : hex) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// ------------------------------------------------------------------ TempFile

TempFile::TempFile(TempFile&& o) noexcept
    : dir_fd_(o.dir_fd_), fd_(o.fd_), dir_(std::move(o.dir_)), name_(std::move(o.name_)) {
  o.dir_fd_ = -1;
  o.fd_ = -1;
  o.name_.clear();
}

TempFile& TempFile::operator=(TempFile&& o) noexcept {
  if (this != &o) {
    Discard();
    dir_fd_ = o.dir_fd_;
    fd_ = o.fd_;
    dir_ = std::move(o.dir_);
    name_ = std::move(o.name_);
    o.dir_fd_ = -1;
    o.fd_ = -1;
    o.name_.clear();
  }
  return *this;
}

TempFile::~TempFile() {
  Discard();
}

void TempFile::Discard() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (dir_fd_ >= 0) {
    if (!name_.empty()) ::unlinkat(dir_fd_, name_.c_str(), 0);
    ::close(dir_fd_);
  }
  dir_fd_ = -1;
  name_.clear();
}

int TempFile::Create(const fs::path& dir, std::string_view stem, unsigned mode, TempFile* out) {
  out->Discard();
  int dfd = OpenDir(dir);
  if (dfd < 0) return errno;
  std::string base(stem.substr(0, 64));
  for (char& c : base) {
    if (c == '/' || c == '\0') c = '_';
  }
  for (int attempt = 0; attempt < 8; ++attempt) {
    std::string name = "." + base + "." + RandomSuffix() + ".tmp";
    int fd = ::openat(dfd, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 07777);
    if (fd < 0) {
      if (errno == EEXIST) continue;
      int e = errno;
      ::close(dfd);
      return e;
    }
    // open() applied the umask; the caller asked for exactly `mode` (0600
    // keys). This is the file we just created, so setting its mode is safe.
    if (::fchmod(fd, mode & 07777) != 0) {
      int e = errno;
      ::close(fd);
      ::unlinkat(dfd, name.c_str(), 0);
      ::close(dfd);
      return e;
    }
    out->dir_fd_ = dfd;
    out->fd_ = fd;
    out->dir_ = dir;
    out->name_ = std::move(name);
    return 0;
  }
  ::close(dfd);
  return EEXIST;
}

int TempFile::Write(std::string_view data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += static_cast<size_t>(n);
  }
  return 0;
}

int TempFile::Commit(const std::string& name, const char** stage) {
  auto fail = [&](const char* what, int e) {
    if (stage) *stage = what;
    Discard();
    return e;
  };
  if (fd_ < 0) return fail("write", EBADF);
  if (::fsync(fd_) != 0) return fail("sync", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return fail("write", errno);
  }
  fd_ = -1;
  if (::renameat(dir_fd_, name_.c_str(), dir_fd_, name.c_str()) != 0) return fail("rename", errno);
  name_.clear();  // committed: nothing to remove
  int e = SyncFd(dir_fd_);
  ::close(dir_fd_);
  dir_fd_ = -1;
  if (e != 0) {
    if (stage) *stage = "sync the directory of";
    return e;
  }
  return 0;
}

int CreateFileIfMissing(const std::filesystem::path& path, unsigned mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return errno == EEXIST ? 0 : -errno;
  ::close(fd);
  return 0;
}

int WriteFileAtomic(const fs::path& path, std::string_view data, unsigned mode, const char** stage) {
  TempFile tmp;
  if (int e = TempFile::Create(path.parent_path(), path.filename().string(), mode, &tmp)) {
    if (stage) *stage = "write";
    return e;
  }
  if (int e = tmp.Write(data)) {
    if (stage) *stage = "write";
    return e;
  }
  return tmp.Commit(path.filename().string(), stage);
}

// ------------------------------------------------------------------ beneath

bool IsCleanRelative(const fs::path& rel) {
  std::vector<std::string> segs;
  return Segments(rel, &segs);
}

int OpenBeneath(const fs::path& root, const fs::path& rel, int flags, unsigned mode) {
  std::vector<std::string> segs;
  if (!Segments(rel, &segs)) return -EINVAL;
  int parent = WalkParents(root, segs, false, 0);
  if (parent < 0) return parent;
  int fd = ::openat(parent, segs.back().c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  int e = errno;
  if (fd < 0 && (e == ENOTDIR || e == ELOOP)) {
    struct stat st;
    if (::fstatat(parent, segs.back().c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
      e = ELOOP;
  }
  ::close(parent);
  return fd < 0 ? -e : fd;
}

int ReadFileBeneath(const fs::path& root, const fs::path& rel, std::string* out, size_t limit) {
  int fd = OpenBeneath(root, rel, O_RDONLY | O_NONBLOCK);
  if (fd < 0) return -fd;
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    int e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    ::close(fd);
    return e;
  }
  out->clear();
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    if (out->size() + static_cast<size_t>(n) > limit) {
      ::close(fd);
      return EFBIG;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return 0;
}

int MakeDirsBeneath(const fs::path& root, const fs::path& rel, unsigned mode) {
  std::vector<std::string> segs;
  if (!Segments(rel, &segs)) return EINVAL;
  segs.push_back("x");  // walk (and create) every segment of rel as a parent
  int fd = WalkParents(root, segs, true, mode);
  if (fd < 0) return -fd;
  ::close(fd);
  return 0;
}

int StatBeneath(const fs::path& root, const fs::path& rel, struct ::stat* st) {
  std::vector<std::string> segs;
  if (!Segments(rel, &segs)) return EINVAL;
  int parent = WalkParents(root, segs, false, 0);
  if (parent < 0) return -parent;
  int rc = ::fstatat(parent, segs.back().c_str(), st, AT_SYMLINK_NOFOLLOW);
  int e = errno;
  ::close(parent);
  return rc == 0 ? 0 : e;
}

// ------------------------------------------------------------------ BeneathDir

BeneathDir::BeneathDir(BeneathDir&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}

BeneathDir& BeneathDir::operator=(BeneathDir&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

BeneathDir::~BeneathDir() {
  if (fd_ >= 0) ::close(fd_);
}

int BeneathDir::Open(const fs::path& anchor, const fs::path& rel, bool create, unsigned mode,
                     BeneathDir* out) {
  int fd = -1;
  if (rel.empty()) {
    fd = OpenDir(anchor);
    if (fd < 0) return errno;
  } else {
    if (create) {
      if (int e = MakeDirsBeneath(anchor, rel, mode)) return e;
    }
    fd = OpenBeneath(anchor, rel, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return -fd;
  }
  if (out->fd_ >= 0) ::close(out->fd_);
  out->fd_ = fd;
  return 0;
}

fs::path BeneathDir::path() const {
  return fs::path("/proc/self/fd") / std::to_string(fd_);
}

int ListNames(int dir_fd, std::vector<std::string>* names) {
  int fd = ::dup(dir_fd);
  DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
  if (!d) {
    int e = errno;
    if (fd >= 0) ::close(fd);
    return e;
  }
  ::rewinddir(d);  // the duplicate shares the offset of earlier reads
  names->clear();
  while (struct dirent* ent = ::readdir(d)) {
    std::string name = ent->d_name;
    if (name != "." && name != "..") names->push_back(std::move(name));
  }
  ::closedir(d);
  return 0;
}

}  // namespace plinth::io
