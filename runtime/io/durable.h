// Durable file operations: the crash-safety discipline every writer of
// Plinth's files follows (temp file in the same directory, fsync, rename,
// fsync of the directory), in one place.
//
// Errors are errno values (0 = success); `stage` names what failed ("write",
// "sync", "rename", "sync the directory of") so callers can build messages
// in their own style.
#pragma once

#include <filesystem>
#include <string_view>

namespace plinth::io {

// fsync of a directory; file systems that cannot sync directories (EINVAL)
// count as success.
int SyncDir(const std::filesystem::path& dir);

// mkdir -p (mode 0755, or `mode`); tolerates directories created
// concurrently. Each directory it creates is made durable by syncing its parent.
int MakeDirs(const std::filesystem::path& dir, unsigned mode = 0755);

// The one temp file a write of `path` uses: ".NAME.tmp" beside it. A fixed
// name is safe where writes of one path never run concurrently, and a file
// left by a killed writer is overwritten by the next write.
std::filesystem::path TempFor(const std::filesystem::path& path);

// Replaces `path` with `data` atomically with permission bits `mode`.
// Readers see the old or the new file, never a torn one.
int WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode = 0644,
                    const char** stage = nullptr);

// Moves a fully written, fsynced temp file into place and syncs the directory.
int CommitTemp(const std::filesystem::path& tmp, const std::filesystem::path& path, const char** stage = nullptr);

}  // namespace plinth::io
