// Durable, contained file operations: the crash-safety discipline every
// writer of Plinth's files follows (temp file in the same directory, fsync,
// rename, fsync of the directory), and the containment every reader and
// writer of a directory that others can write to needs (docs/state.md,
// "Threat model").
//
// Temp files are created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW) under a
// random name relative to a handle on their directory, so a file or symlink
// planted at a predictable name is never opened, truncated or chmodded; only
// a file this process created has its mode set.
//
// The *Beneath functions resolve a relative path one component at a time
// from a handle on a trusted directory, refusing symlinks at every component
// (ELOOP) and "", ".", ".." segments (EINVAL): a path inside a directory that
// an untrusted writer controls can never lead out of it.
//
// Errors are errno values (0 = success); `stage` names what failed ("write",
// "sync", "rename", "sync the directory of") so callers can build messages
// in their own style.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace plinth::io {

// fsync of a directory; file systems that cannot sync directories (EINVAL)
// count as success.
int SyncDir(const std::filesystem::path& dir);

// mkdir -p (mode 0755, or `mode`); tolerates directories created
// concurrently. Each directory it creates is made durable by syncing its parent.
int MakeDirs(const std::filesystem::path& dir, unsigned mode = 0755);

// Whether `name` is a temp file name this layer creates (".X.<hex>.tmp"):
// cleanup of what a killed writer left.
bool IsTempName(std::string_view name);

// A file created exclusively under a random name (".STEM.<16 hex>.tmp") in a
// directory, written, then committed by renaming it over a name in the same
// directory. Destruction without Commit closes and removes it. Not copyable.
class TempFile {
 public:
  TempFile() = default;
  TempFile(TempFile&& other) noexcept;
  TempFile& operator=(TempFile&& other) noexcept;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();

  // Creates the temp file in `dir` (which must exist) with exactly `mode`.
  // `stem` is only part of the name (for people looking at the directory).
  static int Create(const std::filesystem::path& dir, std::string_view stem, unsigned mode, TempFile* out);

  int fd() const { return fd_; }
  // The temp file's path (for tools that need a path, e.g. a child process).
  std::filesystem::path path() const { return dir_ / name_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Writes all of `data` at the current offset.
  int Write(std::string_view data);
  // fsync, close, rename over `name` (a file name in the same directory; a
  // symlink there is replaced, never followed), fsync the directory.
  int Commit(const std::string& name, const char** stage = nullptr);
  // Closes and removes the temp file now.
  void Discard();

 private:
  int dir_fd_ = -1;
  int fd_ = -1;
  std::filesystem::path dir_;
  std::string name_;
};

// Moves a fully written, fsynced temp file (one this process created
// exclusively) into place and syncs the directory; a symlink at `path` is
// replaced, not followed. On failure the temp file is removed.
int CommitTemp(const std::filesystem::path& tmp, const std::filesystem::path& path,
               const char** stage = nullptr);

// Creates `path` empty with permission bits `mode` when nothing is there;
// an existing file is left alone and never opened. (Closing any descriptor
// of a file drops every POSIX lock this process holds on it, SQLite's
// included: opening and closing a database another connection of this
// process uses would let a third process delete its WAL under it.) Returns
// 0 or -errno (-EEXIST is not returned).
int CreateFileIfMissing(const std::filesystem::path& path, unsigned mode = 0600);

// Replaces `path` with `data` atomically with permission bits `mode`.
// Readers see the old or the new file, never a torn one. A symlink at `path`
// is replaced, not followed.
int WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode = 0644,
                    const char** stage = nullptr);

// Opens `rel` (relative; no "", ".", ".." segments) beneath the directory
// `root` without following any symlink on the way, with open(2) `flags`
// (O_NOFOLLOW and O_CLOEXEC are added; with O_CREAT, `mode`). `root` itself
// is opened normally: it is the trusted anchor. Returns the fd or -errno.
int OpenBeneath(const std::filesystem::path& root, const std::filesystem::path& rel, int flags,
                unsigned mode = 0600);

// Reads a whole regular file beneath `root` as OpenBeneath resolves it; a
// symlink or non-regular file anywhere on the way is ELOOP / EINVAL.
// `limit` bounds the bytes read (EFBIG beyond it).
int ReadFileBeneath(const std::filesystem::path& root, const std::filesystem::path& rel, std::string* out,
                    size_t limit = 64u << 20);

// mkdir -p of `rel` beneath `root`, refusing symlinks on the way; created
// directories get `mode`.
int MakeDirsBeneath(const std::filesystem::path& root, const std::filesystem::path& rel,
                    unsigned mode = 0755);

// lstat of `rel` beneath `root` with the same resolution (the last
// component itself may be a symlink: it is reported, not followed).
int StatBeneath(const std::filesystem::path& root, const std::filesystem::path& rel, struct ::stat* st);

// A directory opened beneath an anchor without following any symlink on the
// way. path() names exactly the opened directory ("/proc/self/fd/N"), for
// interfaces that take paths (TempFile::Create, crypto::SealFile): they
// resolve it to this directory whatever is renamed or replaced meanwhile.
class BeneathDir {
 public:
  BeneathDir() = default;
  BeneathDir(BeneathDir&& o) noexcept;
  BeneathDir& operator=(BeneathDir&& o) noexcept;
  BeneathDir(const BeneathDir&) = delete;
  BeneathDir& operator=(const BeneathDir&) = delete;
  ~BeneathDir();
  // `rel` empty: the anchor itself. With `create`, missing directories are
  // made with `mode`. Returns 0 or an errno (ELOOP: a symlink on the way).
  static int Open(const std::filesystem::path& anchor, const std::filesystem::path& rel, bool create,
                  unsigned mode, BeneathDir* out);
  int fd() const { return fd_; }
  std::filesystem::path path() const;

 private:
  int fd_ = -1;
};

// The entry names of the open directory `dir_fd` ("." and ".." left out),
// read through a duplicate of the descriptor. Returns 0 or an errno.
int ListNames(int dir_fd, std::vector<std::string>* names);

// Whether `rel` is a relative path OpenBeneath accepts.
bool IsCleanRelative(const std::filesystem::path& rel);

}  // namespace plinth::io
