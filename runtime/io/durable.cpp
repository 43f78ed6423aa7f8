#include "runtime/io/durable.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace plinth::io {

namespace fs = std::filesystem;

int SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  int rc = ::fsync(fd);
  int e = errno;
  ::close(fd);
  if (rc != 0 && e != EINVAL) return e;
  return 0;
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

fs::path TempFor(const fs::path& path) { return path.parent_path() / ("." + path.filename().string() + ".tmp"); }

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

int WriteFileAtomic(const fs::path& path, std::string_view data, unsigned mode, const char** stage) {
  fs::path tmp = TempFor(path);
  auto fail = [&](const char* what, int e, int fd) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    if (stage) *stage = what;
    return e;
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return fail("write", errno, -1);
  // open() applies the umask; the caller asked for exactly `mode` (0600 keys).
  if (::fchmod(fd, mode) != 0) return fail("write", errno, fd);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("write", errno, fd);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("sync", errno, fd);
  ::close(fd);
  return CommitTemp(tmp, path, stage);
}

}  // namespace plinth::io
