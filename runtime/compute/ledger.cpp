// The machine-wide CPU and memory ledger of compute nodes (see ledger.h).
#include "runtime/compute/ledger.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

#include "runtime/compute/queue.h"

namespace plinth::compute {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kUnclaimedTtlMs = 30000;  // as Queue's provisioning timeout

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string Fnv1a64Hex(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string EntryText(const fs::path& dir, const std::string& node, int cpus, uint64_t memory, int pid) {
  return json{{"dir", dir.string()}, {"node", node}, {"cpus", cpus},
              {"memory", memory},    {"pid", pid},   {"at", NowMs()}}
             .dump() +
         "\n";
}

bool ReadAll(int fd, std::string* out) {
  out->clear();
  char buf[4096];
  off_t off = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    off += n;
  }
}

}  // namespace

fs::path ReservationPath(const fs::path& compute_dir, const std::string& node) {
  return GpuLockDir() / ("node-" + Fnv1a64Hex(compute_dir.string()) + "-" + SafeJobName(node) + ".res");
}

LedgerLock::LedgerLock() {
  fs::path dir = GpuLockDir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path p = dir / "ledger.lock";
  fd_ = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd_ < 0) {
    error_ = "cannot open " + p.string() + ": " + std::strerror(errno) +
             ": make the lock directory writable or set PLINTH_GPU_LOCK_DIR";
    return;
  }
  while (::flock(fd_, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    error_ = "cannot lock " + p.string() + ": " + std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    return;
  }
}

LedgerLock::~LedgerLock() {
  if (fd_ >= 0) ::close(fd_);
}

bool LedgerLock::ok(std::string* error) const {
  if (fd_ >= 0) return true;
  if (error) *error = error_;
  return false;
}

HeldResources ReadHeld() {
  HeldResources held;
  std::error_code ec;
  const int64_t now = NowMs();
  for (const auto& entry : fs::directory_iterator(GpuLockDir(), ec)) {
    const fs::path p = entry.path();
    const std::string name = p.filename().string();
    if (name.rfind("node-", 0) != 0 || p.extension() != ".res") continue;
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    bool locked_by_other = ::flock(fd, LOCK_SH | LOCK_NB) != 0;  // an agent holds it: live
    std::string text;
    json j = ReadAll(fd, &text) ? json::parse(text, nullptr, false) : json();
    // An agent writing its pid into its entry: read again in a moment.
    for (int tries = 0; locked_by_other && !j.is_object() && tries < 5; ++tries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      j = ReadAll(fd, &text) ? json::parse(text, nullptr, false) : json();
    }
    if (!j.is_object()) {
      // Being written (an agent's first write) or damaged: counted as nothing
      // now; a damaged one nobody holds is removed.
      if (!locked_by_other) fs::remove(p, ec);
      ::close(fd);
      continue;
    }
    int pid = j.value("pid", 0);
    bool stale = !locked_by_other && (pid != 0 || now - j.value("at", int64_t{0}) > kUnclaimedTtlMs);
    if (stale) {
      fs::remove(p, ec);  // while holding its lock: no agent claims it in between
      ::close(fd);
      continue;
    }
    ::close(fd);
    int cpus = j.value("cpus", 0);
    uint64_t memory = j.value("memory", uint64_t{0});
    std::string node = j.value("node", "");
    held.cpus += cpus;
    held.memory_bytes += memory;
    if (cpus > 0) held.cpu_nodes.push_back(node);
    if (memory > 0) held.memory_nodes.push_back(node);
  }
  return held;
}

bool ReserveLocked(const fs::path& compute_dir, const std::string& node, int cpus, uint64_t memory_bytes,
                   std::string* error) {
  fs::path p = ReservationPath(compute_dir, node);
  fs::path tmp = p;
  tmp += ".tmp";
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return *error = "cannot write " + tmp.string() + ": " + std::strerror(errno), false;
  std::string text = EntryText(compute_dir, node, cpus, memory_bytes, 0);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), p.c_str()) != 0) {
    *error = "cannot write " + p.string() + ": " + std::strerror(errno);
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

void Unreserve(const fs::path& compute_dir, const std::string& node) {
  std::error_code ec;
  fs::remove(ReservationPath(compute_dir, node), ec);
}

bool NodeReservation::Claim(const fs::path& compute_dir, const std::string& node, int cpus,
                            uint64_t memory_bytes, std::string* error) {
  Release();
  fs::path p = ReservationPath(compute_dir, node);
  std::error_code ec;
  fs::create_directories(p.parent_path(), ec);
  // A provisioner reading the entry holds its lock for a moment: retry for up to 2 s.
  for (int tries = 0; tries < 2000; ++tries) {
    int fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return *error = "cannot open " + p.string() + ": " + std::strerror(errno), false;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      continue;
    }
    // The entry may have been removed (found stale) between open and lock: use the file at the path.
    struct stat a {
    }, b{};
    if (::fstat(fd, &a) != 0 || ::stat(p.c_str(), &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev) {
      ::close(fd);
      continue;
    }
    std::string text = EntryText(compute_dir, node, cpus, memory_bytes, static_cast<int>(::getpid()));
    // Overwritten in place, then cut to size (the pid makes it no shorter).
    if (::pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
        ::ftruncate(fd, static_cast<off_t>(text.size())) != 0) {
      *error = "cannot write " + p.string() + ": " + std::strerror(errno);
      ::close(fd);
      return false;
    }
    fd_ = fd;
    path_ = p;
    return true;
  }
  *error = p.string() + " stays locked by another process: is another agent running for node " + node + "?";
  return false;
}

void NodeReservation::Release() {
  if (fd_ < 0) return;
  std::error_code ec;
  fs::remove(path_, ec);  // while still holding the lock
  ::close(fd_);
  fd_ = -1;
}

}  // namespace plinth::compute
