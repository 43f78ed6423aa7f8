#include "runtime/storage/bucket_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "compiler/types/value_json.h"
#include "runtime/io/durable.h"
#include "runtime/storage/service.h"

namespace plinth::storage {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kBucketMeta = kBucketMetaFile;

// The size of an uncompressed sealed file (runtime/crypto/aead.h, format 2):
// the 29-byte header, then a 16-byte tag per 1 MiB chunk (at least one).
uint64_t SealedSize(uint64_t plain) {
  constexpr uint64_t kChunk = 1 << 20;
  return plain + 29 + 16 * std::max<uint64_t>(1, (plain + kChunk - 1) / kChunk);
}

// One mutex per bucket id for the process: a put measures usage, checks the
// capacity and commits under it, so two puts in one process cannot both fit
// under the capacity that only one of them fits under. Across processes the
// CLI's workspace lock serialises puts (docs/storage.md, "Capacity").
std::mutex& PutMutex(const std::string& bucket_id) {
  static std::mutex guard;
  static std::map<std::string, std::unique_ptr<std::mutex>> mutexes;
  std::lock_guard<std::mutex> lock(guard);
  auto& m = mutexes[bucket_id];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}
constexpr const char* kManifest = "manifest.json";

ProviderError Fail(std::string m, bool retryable = false) { return ProviderError{std::move(m), retryable}; }

ProviderError Errno(const std::string& what, const fs::path& p, int e) {
  bool transient = e == EAGAIN || e == EBUSY || e == EINTR || e == ETIMEDOUT;
  return Fail("cannot " + what + " '" + p.string() + "': " + std::strerror(e), transient);
}

const Value* Find(const ValueMap& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? nullptr : &it->second;
}

bool Known(const Value* v, Value::Kind kind) { return v && !v->is_unknown() && v->kind() == kind; }

std::optional<int64_t> Millis(const Value* v) {
  if (!v || v->is_null() || v->is_unknown()) return std::nullopt;
  return static_cast<int64_t>(v->as_number());
}

std::string Sha256Hex(const std::string& s, size_t bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha256(), nullptr);
  return crypto::Hex(md, std::min<size_t>(bytes, len));
}

int64_t MtimeMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

bool IsHiddenPlinth(const std::string& name) { return name.rfind(".plinth", 0) == 0; }

Result<json> ParseJson(const std::string& text, const std::string& shown) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail("'" + shown + "' is damaged (not a JSON object)");
  return j;
}

// "'KEY' in bucket 'ID' ...": why a path beneath the bucket is refused.
ProviderError Beneath(const std::string& what, const std::string& key, const std::string& id, const fs::path& shown,
                      int e) {
  if (e == ELOOP) {
    return Fail("'" + key + "' in bucket '" + id + "' is or passes through a symbolic link; a symlink inside a "
                "bucket is not an object, and plinth never follows one (remove it, or put the object under another key)");
  }
  return Errno(what, shown, e);
}

// Copies everything from `in` to `out`.
int CopyFd(int in, int out) {
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) return 0;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      done += w;
    }
  }
}

// `base/rel`, without the trailing separator an empty `rel` would add.
fs::path Join(const fs::path& base, const fs::path& rel) { return rel.empty() ? base : base / rel; }

fs::path FdPath(int fd) { return fs::path("/proc/self/fd") / std::to_string(fd); }

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd >= 0) ::close(fd);
      fd = std::exchange(o.fd, -1);
    }
    return *this;
  }
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string NewBlobId(int64_t now_ms) { return "v" + std::to_string(now_ms) + "-" + crypto::RandomHex(4); }

}  // namespace

// ------------------------------------------------------------ bucket info

fs::path StoreDirFor(const fs::path& region_dir, const std::string& bucket) {
  return region_dir / ".plinth-storage" / bucket;
}

fs::path LiveRel(const BucketInfo& info) { return fs::path("buckets") / info.name; }
fs::path StoreRel(const BucketInfo& info) { return fs::path(".plinth-storage") / info.name; }

fs::path BackupRepositoryPath(const fs::path& to_region_dir, const std::string& region, const std::string& bucket) {
  return to_region_dir / "backups" / region / bucket;
}


uint64_t EffectiveCapacity(const BucketInfo& info, uint64_t granted) {
  if (!info.capacity_bytes) return 0;
  const uint64_t cap = *info.capacity_bytes;
  if (!info.grow_to_bytes || granted <= cap) return cap;
  return std::min(granted, std::max(*info.grow_to_bytes, cap));
}

uint64_t GrantedCapacity(const BucketInfo& info) {
  std::string text;
  if (io::ReadFileBeneath(info.region_dir, StoreRel(info) / "status.json", &text, 1u << 20) != 0) return 0;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object()) return 0;
  return j.value("granted_capacity_bytes", uint64_t{0});
}

void ApplySettings(const ValueMap& a, BucketInfo& info) {
  if (const Value* v = Find(a, "capacity"); Known(v, Value::Kind::Size)) {
    info.capacity_bytes = static_cast<uint64_t>(v->as_number());
  } else {
    info.capacity_bytes.reset();
  }
  if (const Value* v = Find(a, "grow_to"); Known(v, Value::Kind::Size)) {
    info.grow_to_bytes = static_cast<uint64_t>(v->as_number());
  } else {
    info.grow_to_bytes.reset();
  }
  if (const Value* v = Find(a, "alert_at"); Known(v, Value::Kind::Percent)) info.alert_at_percent = v->as_number();
  if (const Value* v = Find(a, "encryption"); Known(v, Value::Kind::String)) info.encryption = v->as_string();
  if (const Value* v = Find(a, "versioning"); Known(v, Value::Kind::Bool)) info.versioning = v->as_bool();
  if (const Value* v = Find(a, "key"); Known(v, Value::Kind::String)) info.wrapped_key = v->as_string();
  info.rules.clear();
  if (const Value* v = Find(a, "lifecycle_rule"); Known(v, Value::Kind::Object)) {
    for (const auto& [name, r] : v->as_object()) {
      if (r.kind() != Value::Kind::Object) continue;
      const ValueMap& m = r.as_object();
      LifecycleRule rule;
      rule.name = name;
      if (const Value* p = Find(m, "prefix"); Known(p, Value::Kind::String)) rule.prefix = p->as_string();
      rule.archive_after_ms = Millis(Find(m, "archive_after"));
      rule.expire_after_ms = Millis(Find(m, "expire_after"));
      rule.noncurrent_expire_after_ms = Millis(Find(m, "noncurrent_expire_after"));
      info.rules.push_back(std::move(rule));
    }
  }
  info.backup.reset();
  if (const Value* v = Find(a, "backup"); Known(v, Value::Kind::Object)) {
    const ValueMap& m = v->as_object();
    BackupSpec b;
    b.every_ms = Millis(Find(m, "every")).value_or(0);
    if (const Value* to = Find(m, "to"); Known(to, Value::Kind::Object)) {
      const ValueMap& r = to->as_object();
      if (const Value* n = Find(r, "name"); Known(n, Value::Kind::String)) b.to_region = n->as_string();
      if (const Value* p = Find(r, "path"); Known(p, Value::Kind::String)) {
        b.repository = BackupRepositoryPath(p->as_string(), info.region, info.name);
      }
    }
    if (const Value* k = Find(m, "keep"); Known(k, Value::Kind::Object)) {
      for (const auto& [period, n] : k->as_object()) {
        if (!n.is_null() && !n.is_unknown()) b.keep[period] = static_cast<int64_t>(n.as_number());
      }
    }
    info.backup = std::move(b);
  }
  info.grants.clear();
  if (const Value* v = Find(a, "grant"); Known(v, Value::Kind::Object)) {
    for (const auto& [principal, g] : v->as_object()) {
      if (g.kind() != Value::Kind::Object) continue;
      const Value* acc = Find(g.as_object(), "access");
      if (!Known(acc, Value::Kind::String)) continue;
      const std::string& s = acc->as_string();
      info.grants[principal] = s == "admin" ? Access::kAdmin : s == "write" ? Access::kWrite : Access::kRead;
    }
  }
}

Result<BucketInfo> BucketFromState(const std::string& address, const ValueMap& a) {
  std::string shown = address.empty() ? "a bucket" : address;
  auto broken = [&](const std::string& what) {
    return Fail("the state of " + shown + " " + what + "; run plinth apply (or plinth refresh) to record it again");
  };
  const Value* name = Find(a, "name");
  const Value* region = Find(a, "region");
  const Value* path = Find(a, "path");
  if (!Known(name, Value::Kind::String) || name->as_string().empty()) return broken("has no bucket name");
  if (!Known(region, Value::Kind::Object)) return broken("has no region");
  const Value* rname = Find(region->as_object(), "name");
  const Value* rpath = Find(region->as_object(), "path");
  if (!Known(rname, Value::Kind::String) || !Known(rpath, Value::Kind::String)) return broken("has no region path");
  if (!Known(path, Value::Kind::String)) return broken("has no path");
  auto segment = [](const std::string& s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\0') == std::string::npos;
  };
  BucketInfo info;
  info.name = name->as_string();
  info.region = rname->as_string();
  if (!segment(info.name) || !segment(info.region)) return broken("holds an invalid region or bucket name");
  info.id = info.region + "/" + info.name;
  info.address = address;
  info.region_dir = fs::path(rpath->as_string()).lexically_normal();
  if (!info.region_dir.is_absolute()) return broken("holds a relative region path");
  info.live = info.region_dir / LiveRel(info);
  info.store = info.region_dir / StoreRel(info);
  if (fs::path(path->as_string()).lexically_normal() != info.live) {
    return broken("names a path that is not its region's bucket directory '" + info.live.string() + "'");
  }
  ApplySettings(a, info);
  return info;
}

std::optional<std::string> CheckMetadata(const BucketInfo& info, const ValueMap& state) {
  std::string shown = info.address.empty() ? "bucket '" + info.id + "'" : info.address;
  fs::path meta = info.live / kBucketMeta;
  std::string fix = "; run plinth apply to rewrite it from the configuration (plinth plan shows the difference)";
  std::string text;
  if (int e = io::ReadFileBeneath(info.region_dir, LiveRel(info) / kBucketMeta, &text, 4u << 20)) {
    if (e == ENOENT) return "the metadata file of " + shown + " ('" + meta.string() + "') is missing" + fix;
    if (e == ELOOP) return "the metadata file of " + shown + " ('" + meta.string() + "') is a symbolic link or lies behind one" + fix;
    return "cannot read the metadata file of " + shown + " ('" + meta.string() + "'): " + std::strerror(e);
  }
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("attributes") || !j["attributes"].is_object()) {
    return "the metadata file of " + shown + " ('" + meta.string() + "') is damaged" + fix;
  }
  auto disagree = [&](const std::string& field) {
    return "the metadata file of " + shown + " ('" + meta.string() + "') disagrees with the state on '" + field +
           "' (it was changed outside plinth, or a change was interrupted); plinth uses the state and refuses "
           "until they agree" + fix;
  };
  if (j.value("id", "") != info.id) return disagree("id");
  if (j.value("region", "") != info.region) return disagree("region");
  if (j.value("bucket", "") != info.name) return disagree("bucket");
  const Value* key = Find(state, "key");
  std::string state_key = Known(key, Value::Kind::String) ? key->as_string() : "";
  if (!j.contains("key") || !j["key"].is_string() || j["key"].get<std::string>() != state_key) return disagree("key");
  const json& attrs = j["attributes"];
  for (const char* k : {"capacity", "alert_at", "encryption", "versioning", "labels", "lifecycle_rule", "backup", "grant",
                        "force_destroy", "grow_to"}) {
    const Value* v = Find(state, k);
    if (v && v->is_unknown()) return disagree(k);
    Value want = v ? *v : Value();
    json have = attrs.contains(k) ? attrs[k] : json();
    if (std::string(k) == "force_destroy" && have.is_null()) have = false;  // written before it existed
    if (std::string(k) == "force_destroy" && want.is_null()) want = Value::Bool(false);
    ValueFromJsonResult got = ValueFromJson(have);
    if (!got.ok() || !got.value.Equals(want)) return disagree(k);
  }
  return std::nullopt;
}

const char* AccessName(Access a) {
  switch (a) {
    case Access::kRead: return "read";
    case Access::kWrite: return "write";
    case Access::kAdmin: return "admin";
  }
  return "?";
}

std::optional<ProviderError> Authorize(const BucketInfo& info, const std::string& principal, Access need) {
  if (principal.empty()) return std::nullopt;
  auto it = info.grants.find(principal);
  if (it == info.grants.end()) {
    return Fail("access denied: principal '" + principal + "' has no grant on bucket '" + info.id + "' (it needs " +
                AccessName(need) + "; add grant \"" + principal + "\" { access = \"" + AccessName(need) +
                "\" } to the bucket)");
  }
  if (static_cast<int>(it->second) < static_cast<int>(need)) {
    return Fail("access denied: principal '" + principal + "' has " + AccessName(it->second) + " access to bucket '" +
                info.id + "' and this needs " + AccessName(need));
  }
  return std::nullopt;
}

std::optional<std::string> CheckKey(const std::string& key) {
  if (key.empty()) return "an object key cannot be empty";
  if (key.size() > 1024) return "an object key is at most 1024 bytes";
  if (key.find('\0') != std::string::npos) return "an object key cannot contain a NUL byte";
  if (key.front() == '/') return "an object key is relative (no leading '/')";
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string::npos) end = key.size();
    std::string seg = key.substr(start, end - start);
    if (seg.empty()) return "an object key cannot contain an empty segment ('//' or a trailing '/')";
    if (seg == "." || seg == "..") return "an object key cannot contain '.' or '..' segments";
    if (IsHiddenPlinth(seg)) return "object key segments starting with '.plinth' are reserved";
    start = end + 1;
  }
  return std::nullopt;
}

// ----------------------------------------------------------------- store

struct BucketStore::Manifest {
  std::string key;
  struct Archived {
    std::string blob;
    uint64_t size = 0, stored = 0;
    int64_t modified_ms = 0, archived_ms = 0;
  };
  std::optional<Archived> archived;
  std::vector<VersionInfo> versions;  // newest first
};

BucketStore::BucketStore(BucketInfo info, crypto::Key data_key) : info_(std::move(info)), key_(data_key) {}

fs::path BucketStore::ObjectRel(const std::string& key) const {
  return StoreRel(info_) / "objects" / Sha256Hex(key, 16);
}

Result<BeneathDir> BucketStore::OpenObjectDir(const std::string& key, bool create) const {
  BeneathDir dir;
  fs::path rel = ObjectRel(key);
  if (int e = BeneathDir::Open(info_.region_dir, rel, create, 0700, &dir)) {
    if (e == ELOOP) {
      return Fail("the storage directory of bucket '" + info_.id + "' ('" + (info_.region_dir / rel).string() +
                  "') is or passes through a symbolic link; plinth never follows one there (remove it)");
    }
    return Errno(create ? "create" : "open", info_.region_dir / rel, e);
  }
  return dir;
}

// Every live object: regular files under the bucket's directory, skipping
// Plinth's own files; symlinks, devices and what lies behind a symlinked
// directory are not objects. Walked with directory handles, never by path.
Result<std::vector<LiveFile>> BucketStore::WalkLive() const {
  std::vector<LiveFile> out;
  BeneathDir root;
  if (int e = BeneathDir::Open(info_.region_dir, LiveRel(info_), false, 0, &root)) {
    if (e == ENOENT) return Fail("bucket directory '" + info_.live.string() + "' does not exist");
    if (e == ELOOP) return Fail("bucket directory '" + info_.live.string() + "' is a symbolic link; plinth does not follow it");
    return Errno("list", info_.live, e);
  }
  // Depth first, holding descriptors only along the current path.
  constexpr int kMaxDepth = 256;
  std::function<std::optional<ProviderError>(int, const std::string&, int)> walk =
      [&](int dir_fd, const std::string& prefix, int depth) -> std::optional<ProviderError> {
    std::vector<std::string> names;
    if (int e = io::ListNames(dir_fd, &names)) return Errno("list", info_.live / prefix, e);
    names.erase(std::remove_if(names.begin(), names.end(), IsHiddenPlinth), names.end());
    for (const std::string& name : names) {
      struct stat st;
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;  // removed while listing
      if (S_ISREG(st.st_mode)) {
        out.push_back({prefix + name, static_cast<uint64_t>(st.st_size), MtimeMs(st)});
        continue;
      }
      if (!S_ISDIR(st.st_mode)) continue;  // symlinks and devices are not objects
      if (depth >= kMaxDepth) {
        return Fail("bucket '" + info_.id + "' nests directories deeper than " + std::to_string(kMaxDepth) +
                    " levels at '" + prefix + name + "'");
      }
      int sub = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        if (errno == ENOENT || errno == ELOOP || errno == ENOTDIR) continue;  // replaced while listing
        return Errno("list", info_.live / (prefix + name), errno);
      }
      auto err = walk(sub, prefix + name + "/", depth + 1);
      ::close(sub);
      if (err) return err;
    }
    return std::nullopt;
  };
  if (auto err = walk(root.fd(), "", 0)) return *err;
  std::sort(out.begin(), out.end(), [](const LiveFile& a, const LiveFile& b) { return a.key < b.key; });
  return out;
}

// The live object `key`: nullopt when there is none (or a directory is
// there); an error when the path is or passes through a symlink.
Result<std::optional<LiveFile>> BucketStore::StatLive(const std::string& key) const {
  struct stat st;
  int e = io::StatBeneath(info_.region_dir, LiveRel(info_) / key, &st);
  if (e == ENOENT || e == ENOTDIR) return std::optional<LiveFile>();
  if (e) return Beneath("read", key, info_.id, info_.live / key, e);
  if (S_ISLNK(st.st_mode)) return Beneath("read", key, info_.id, info_.live / key, ELOOP);
  if (S_ISDIR(st.st_mode)) return std::optional<LiveFile>();
  if (!S_ISREG(st.st_mode)) {
    return Fail("'" + key + "' in bucket '" + info_.id + "' is not a regular file (a device, socket or fifo is not an object)");
  }
  return std::optional<LiveFile>(LiveFile{key, static_cast<uint64_t>(st.st_size), MtimeMs(st)});
}

// The live file of `key`, open (O_NOFOLLOW at every component), and its
// directory.
struct BucketStore::LiveHandle {
  BeneathDir dir;
  std::string name;
  Fd file;
  fs::path path() const { return FdPath(file.fd); }
};

Result<BucketStore::LiveHandle> BucketStore::OpenLive(const std::string& key) const {
  LiveHandle h;
  fs::path rel = fs::path(key);
  h.name = rel.filename().string();
  fs::path parent = Join(LiveRel(info_), rel.parent_path());
  if (int e = BeneathDir::Open(info_.region_dir, parent, false, 0, &h.dir)) {
    return Beneath("read", key, info_.id, info_.live / key, e);
  }
  int fd = ::openat(h.dir.fd(), h.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    struct stat st;
    if (::fstatat(h.dir.fd(), h.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) e = ELOOP;
    return Beneath("read", key, info_.id, info_.live / key, e);
  }
  h.file = Fd(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return Fail("'" + key + "' in bucket '" + info_.id + "' is not a regular file");
  }
  return h;
}

Result<Done> BucketStore::RemoveLive(const std::string& key) const {
  fs::path rel = fs::path(key);
  BeneathDir dir;
  if (int e = BeneathDir::Open(info_.region_dir, Join(LiveRel(info_), rel.parent_path()), false, 0, &dir)) {
    if (e == ENOENT) return Done{};
    return Beneath("remove", key, info_.id, info_.live / key, e);
  }
  // unlinkat removes a symlink itself, never what it points to.
  if (::unlinkat(dir.fd(), rel.filename().c_str(), 0) != 0 && errno != ENOENT) {
    return Errno("remove", info_.live / key, errno);
  }
  io::SyncDir(dir.path());
  return Done{};
}

// Removes the directories of `key` left empty, up to the bucket directory.
void BucketStore::PruneEmptyDirs(const std::string& key) const {
  for (fs::path rel = fs::path(key).parent_path(); !rel.empty(); rel = rel.parent_path()) {
    BeneathDir parent;
    if (BeneathDir::Open(info_.region_dir, Join(LiveRel(info_), rel.parent_path()), false, 0, &parent)) {
      return;
    }
    if (::unlinkat(parent.fd(), rel.filename().c_str(), AT_REMOVEDIR) != 0) return;  // not empty (or gone)
  }
}

void BucketStore::RemoveBlob(const std::string& key, const std::string& blob) const {
  auto dir = OpenObjectDir(key, false);
  if (!dir.ok()) return;
  ::unlinkat(dir.value().fd(), (blob + ".sealed").c_str(), 0);
}

Result<Done> BucketStore::OpenBlobTo(const std::string& key, const std::string& blob, const fs::path& dst,
                                     const std::string& what) const {
  auto dir = OpenObjectDir(key, false);
  if (!dir.ok()) return Fail("cannot read " + what + " of '" + key + "': " + dir.error().message);
  int fd = ::openat(dir.value().fd(), (blob + ".sealed").c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Fail("cannot read " + what + " of '" + key + "': " + std::strerror(errno));
  Fd sealed(fd);
  std::string error;
  if (!crypto::OpenFile(key_, Aad(key, blob), FdPath(sealed.fd), dst, &error)) {
    return Fail("cannot read " + what + " of '" + key + "': " + error);
  }
  return Done{};
}

std::string BucketStore::Aad(const std::string& key, const std::string& blob) const {
  std::string aad = "plinth-object-v1";
  aad.push_back('\0');
  aad += info_.id;
  aad.push_back('\0');
  aad += key;
  aad.push_back('\0');
  aad += blob;
  return aad;
}

Result<BucketStore::Manifest> BucketStore::ReadManifest(const std::string& text, const std::string& shown) {
  auto j = ParseJson(text, shown);
  if (!j.ok()) return j.error();
  const json& m = j.value();
  Manifest out;
  out.key = m.value("key", "");
  if (m.contains("archived") && m["archived"].is_object()) {
    const json& a = m["archived"];
    out.archived = Manifest::Archived{a.value("blob", ""), a.value("size", uint64_t{0}), a.value("stored", uint64_t{0}),
                                      a.value("modified_ms", int64_t{0}), a.value("archived_ms", int64_t{0})};
  }
  if (m.contains("versions") && m["versions"].is_array()) {
    for (const json& v : m["versions"]) {
      out.versions.push_back(VersionInfo{v.value("id", ""), v.value("size", uint64_t{0}), v.value("stored", uint64_t{0}),
                                         v.value("modified_ms", int64_t{0}), v.value("noncurrent_since_ms", int64_t{0})});
    }
  }
  // Blob names become file names: nothing but what NewBlobId makes.
  auto clean = [](const std::string& b) {
    return !b.empty() && b.size() <= 64 &&
           std::all_of(b.begin(), b.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
  };
  if (out.archived && !clean(out.archived->blob)) return Fail("'" + shown + "' is damaged (a bad archive name)");
  for (const VersionInfo& v : out.versions) {
    if (!clean(v.id)) return Fail("'" + shown + "' is damaged (a bad version id)");
  }
  return out;
}

Result<std::optional<BucketStore::Manifest>> BucketStore::LoadManifest(const std::string& key) const {
  fs::path rel = ObjectRel(key) / kManifest;
  fs::path shown = info_.region_dir / rel;
  std::string text;
  if (int e = io::ReadFileBeneath(info_.region_dir, rel, &text, 16u << 20)) {
    if (e == ENOENT || e == ENOTDIR) return std::optional<Manifest>();
    if (e == ELOOP) return Fail("'" + shown.string() + "' is or lies behind a symbolic link; plinth never follows one there");
    return Errno("read", shown, e);
  }
  auto m = ReadManifest(text, shown.string());
  if (!m.ok()) return m.error();
  if (m.value().key != key) return Fail("'" + shown.string() + "' belongs to another key ('" + m.value().key + "')");
  return std::optional<Manifest>(std::move(m.value()));
}

Result<std::vector<BucketStore::Manifest>> BucketStore::AllManifests() const {
  std::vector<Manifest> out;
  fs::path rel = StoreRel(info_) / "objects";
  BeneathDir dir;
  if (int e = BeneathDir::Open(info_.region_dir, rel, false, 0, &dir)) {
    if (e == ENOENT) return out;
    if (e == ELOOP) {
      return Fail("'" + (info_.region_dir / rel).string() + "' is or lies behind a symbolic link; plinth never follows one there");
    }
    return Errno("list", info_.region_dir / rel, e);
  }
  std::vector<std::string> names;
  if (int e = io::ListNames(dir.fd(), &names)) return Errno("list", info_.region_dir / rel, e);
  for (const std::string& name : names) {
    std::string text;
    fs::path shown = info_.region_dir / rel / name / kManifest;
    int e = io::ReadFileBeneath(info_.region_dir, rel / name / kManifest, &text, 16u << 20);
    if (e == ENOENT || e == ENOTDIR) continue;  // an object directory whose manifest was never written: nothing recorded
    if (e == ELOOP) return Fail("'" + shown.string() + "' is or lies behind a symbolic link; plinth never follows one there");
    if (e) return Errno("read", shown, e);
    auto m = ReadManifest(text, shown.string());
    if (!m.ok()) return m.error();
    if (ObjectRel(m.value().key).filename() != name) {
      return Fail("'" + shown.string() + "' belongs to another key ('" + m.value().key + "')");
    }
    out.push_back(std::move(m.value()));
  }
  std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.key < b.key; });
  return out;
}

Result<Done> BucketStore::SaveManifest(const Manifest& m) const {
  fs::path rel = ObjectRel(m.key);
  if (!m.archived && m.versions.empty()) {
    // Nothing left: the directory goes, with any sealed file a crash left
    // behind (entries removed through the directory's handle, never followed).
    BeneathDir dir;
    int e = BeneathDir::Open(info_.region_dir, rel, false, 0, &dir);
    if (e == ENOENT) return Done{};
    if (e) return Errno("remove", info_.region_dir / rel, e);
    std::vector<std::string> names;
    if (int e = io::ListNames(dir.fd(), &names)) return Errno("remove", info_.region_dir / rel, e);
    for (const std::string& name : names) {
      if (::unlinkat(dir.fd(), name.c_str(), 0) != 0 && errno != ENOENT) {
        return Errno("remove", info_.region_dir / rel / name, errno);
      }
    }
    BeneathDir parent;
    if (int pe = BeneathDir::Open(info_.region_dir, rel.parent_path(), false, 0, &parent)) {
      return Errno("remove", info_.region_dir / rel, pe);
    }
    if (::unlinkat(parent.fd(), rel.filename().c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
      return Errno("remove", info_.region_dir / rel, errno);
    }
    return Done{};
  }
  json j = {{"format", 1}, {"key", m.key}};
  if (m.archived) {
    j["archived"] = {{"blob", m.archived->blob},
                     {"size", m.archived->size},
                     {"stored", m.archived->stored},
                     {"modified_ms", m.archived->modified_ms},
                     {"archived_ms", m.archived->archived_ms}};
  }
  json versions = json::array();
  for (const VersionInfo& v : m.versions) {
    versions.push_back({{"id", v.id},
                        {"size", v.size},
                        {"stored", v.stored},
                        {"modified_ms", v.modified_ms},
                        {"noncurrent_since_ms", v.noncurrent_since_ms}});
  }
  j["versions"] = versions;
  auto dir = OpenObjectDir(m.key, true);
  if (!dir.ok()) return dir.error();
  const char* stage = "write";
  if (int e = io::WriteFileAtomic(dir.value().path() / kManifest, j.dump(1) + "\n", 0600, &stage)) {
    return Errno(stage, info_.region_dir / rel / kManifest, e);
  }
  return Done{};
}

Result<Done> BucketStore::KeepVersion(Manifest& m, const fs::path& src, uint64_t size, int64_t modified_ms,
                                      int64_t now_ms) const {
  VersionInfo v;
  v.id = NewBlobId(now_ms);
  v.size = size;
  v.modified_ms = modified_ms;
  v.noncurrent_since_ms = now_ms;
  std::string error;
  auto dir = OpenObjectDir(m.key, true);
  if (!dir.ok()) return dir.error();
  if (!crypto::SealFile(key_, 1, Aad(m.key, v.id), src, dir.value().path() / (v.id + ".sealed"), /*compress=*/false,
                        &error, &v.stored)) {
    return Fail("cannot keep the previous version of '" + m.key + "': " + error);
  }
  m.versions.insert(m.versions.begin(), v);
  return SaveManifest(m);
}

Result<std::vector<ObjectInfo>> BucketStore::List(const std::string& prefix, bool include_deleted) const {
  auto live = WalkLive();
  if (!live.ok()) return live.error();
  auto manifests = AllManifests();
  if (!manifests.ok()) return manifests.error();
  std::map<std::string, ObjectInfo> by_key;
  for (const LiveFile& f : live.value()) {
    if (f.key.rfind(prefix, 0) != 0) continue;
    ObjectInfo& o = by_key[f.key];
    o.key = f.key;
    o.current = true;
    o.tier = "live";
    o.size = o.stored = f.size;
    o.modified_ms = f.modified_ms;
  }
  for (Manifest& m : manifests.value()) {
    if (m.key.rfind(prefix, 0) != 0) continue;
    auto it = by_key.find(m.key);
    if (it == by_key.end()) {
      if (!m.archived && !include_deleted) continue;
      it = by_key.emplace(m.key, ObjectInfo{}).first;
      it->second.key = m.key;
      if (m.archived) {
        it->second.current = true;
        it->second.tier = "archive";
        it->second.size = m.archived->size;
        it->second.stored = m.archived->stored;
        it->second.modified_ms = m.archived->modified_ms;
      }
    }
    it->second.versions = std::move(m.versions);
  }
  std::vector<ObjectInfo> out;
  for (auto& [k, o] : by_key) out.push_back(std::move(o));
  return out;
}

Result<std::optional<ObjectInfo>> BucketStore::Stat(const std::string& key) const {
  if (auto why = CheckKey(key)) return Fail(*why);
  auto m = LoadManifest(key);
  if (!m.ok()) return m.error();
  auto live_r = StatLive(key);
  if (!live_r.ok()) return live_r.error();
  const std::optional<LiveFile>& live = live_r.value();
  if (!live && !m.value()) return std::optional<ObjectInfo>();
  ObjectInfo o;
  o.key = key;
  if (live) {
    o.current = true;
    o.tier = "live";
    o.size = o.stored = live->size;
    o.modified_ms = live->modified_ms;
  } else if (m.value()->archived) {
    const Manifest::Archived& a = *m.value()->archived;
    o.current = true;
    o.tier = "archive";
    o.size = a.size;
    o.stored = a.stored;
    o.modified_ms = a.modified_ms;
  }
  if (m.value()) o.versions = std::move(m.value()->versions);
  return std::optional<ObjectInfo>(std::move(o));
}

Result<Done> BucketStore::Put(const std::string& key, const fs::path& src, int64_t now_ms) {
  if (auto why = CheckKey(key)) return Fail(*why);
  std::lock_guard<std::mutex> serial(PutMutex(info_.id));
  fs::path rel(key);
  fs::path dst = info_.live / key;
  {
    struct stat st;
    int e = io::StatBeneath(info_.region_dir, LiveRel(info_) / key, &st);
    if (e == 0 && S_ISLNK(st.st_mode)) return Beneath("write", key, info_.id, dst, ELOOP);
    if (e == 0 && S_ISDIR(st.st_mode)) return Fail("'" + key + "' is a prefix of other objects in bucket '" + info_.id + "'");
    if (e != 0 && e != ENOENT) return Beneath("write", key, info_.id, dst, e);
  }
  if (!rel.parent_path().empty()) {
    if (int e = io::MakeDirsBeneath(info_.region_dir, LiveRel(info_) / rel.parent_path())) {
      if (e == ENOTDIR || e == EEXIST) {
        return Fail("a prefix of '" + key + "' is an object in bucket '" + info_.id + "'; an object cannot hold others");
      }
      return Beneath("create", key, info_.id, dst.parent_path(), e);
    }
  }
  BeneathDir dir;
  if (int e = BeneathDir::Open(info_.region_dir, Join(LiveRel(info_), rel.parent_path()), false, 0, &dir)) {
    return Beneath("write", key, info_.id, dst, e);
  }
  // The new content, in a temp file created exclusively beneath the bucket.
  io::TempFile tmp;
  if (int e = io::TempFile::Create(dir.path(), "plinth-put", 0644, &tmp)) return Errno("write", dst, e);
  {
    int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Errno("read", src, errno);
    Fd in_fd(in);
    if (int e = CopyFd(in, tmp.fd())) return Errno("write", dst, e);
  }
  auto m = LoadManifest(key);
  if (!m.ok()) return m.error();
  Manifest man = m.value() ? std::move(*m.value()) : Manifest{key, std::nullopt, {}};
  std::optional<Manifest::Archived> drop_archived;
  auto cur = StatLive(key);
  if (!cur.ok()) return cur.error();
  if (info_.capacity_bytes) {
    struct stat st;
    if (::fstat(tmp.fd(), &st) != 0) return Errno("write", dst, errno);
    if (auto refused = CheckCapacity(key, static_cast<uint64_t>(st.st_size), cur.value(),
                                     man.archived ? man.archived->stored : 0); !refused.ok()) {
      tmp.Discard();
      PruneEmptyDirs(key);  // the prefix directories this put made
      return refused.error();
    }
  }
  if (info_.versioning) {
    if (cur.value()) {
      auto h = OpenLive(key);
      if (!h.ok()) return h.error();
      if (auto kept = KeepVersion(man, h.value().path(), cur.value()->size, cur.value()->modified_ms, now_ms); !kept.ok()) {
        return kept.error();
      }
    } else if (man.archived) {
      // The archived current version becomes noncurrent; its sealed file stays.
      man.versions.insert(man.versions.begin(), VersionInfo{man.archived->blob, man.archived->size,
                                                            man.archived->stored, man.archived->modified_ms, now_ms});
      man.archived.reset();
      if (auto saved = SaveManifest(man); !saved.ok()) return saved.error();
    }
  } else if (man.archived) {
    drop_archived = man.archived;
  }
  const char* stage = "write";
  // The rename replaces whatever is at the name (a symlink planted since is
  // replaced, never followed).
  if (int e = tmp.Commit(rel.filename().string(), &stage)) return Errno(stage, dst, e);
  if (drop_archived) {
    // The new content is in place; the old archived copy goes.
    man.archived.reset();
    if (auto saved = SaveManifest(man); !saved.ok()) return saved.error();
    RemoveBlob(key, drop_archived->blob);
  }
  return Done{};
}

Result<Done> BucketStore::CheckCapacity(const std::string& key, uint64_t new_size, const std::optional<LiveFile>& live,
                                        uint64_t archived_stored) const {
  auto usage = MeasureUsage();
  if (!usage.ok()) return usage.error();
  const uint64_t before = usage.value().total();
  // What the put frees, and what it adds besides the new content: without
  // versioning the replaced content (live or archived) goes; with it, the
  // live content becomes a sealed stored version and an archived one stays.
  uint64_t freed = 0, kept = 0;
  if (!info_.versioning) {
    freed = (live ? live->size : 0) + archived_stored;
  } else if (live) {
    freed = live->size;
    kept = SealedSize(live->size);
  }
  const uint64_t after = before - std::min(before, freed) + kept + new_size;
  // The quota in force: capacity, or what a sweep grew it to (grow_to).
  const uint64_t quota = EffectiveCapacity(info_, GrantedCapacity(info_));
  if (after <= quota || after <= before) return Done{};
  const std::string grown = quota > *info_.capacity_bytes ? " (grown from " + BytesText(*info_.capacity_bytes) +
                                                                 ", up to grow_to " + BytesText(*info_.grow_to_bytes) + ")"
                                                           : "";
  return Fail("bucket '" + info_.id + "'" + (info_.address.empty() ? "" : " (" + info_.address + ")") +
              " is over its capacity: putting '" + key + "' (" + BytesText(new_size) + ") would bring its usage to " +
              BytesText(after) + ", above its capacity of " + BytesText(quota) + grown + " (usage now " +
              BytesText(before) + "); remove objects or stored versions, or raise `capacity` and apply");
}

Result<Done> BucketStore::Get(const std::string& key, const std::optional<std::string>& version,
                              const fs::path& dst) const {
  if (auto why = CheckKey(key)) return Fail(*why);
  auto m = LoadManifest(key);
  if (!m.ok()) return m.error();
  if (version) {
    if (m.value()) {
      for (const VersionInfo& v : m.value()->versions) {
        if (v.id == *version) return OpenBlobTo(key, v.id, dst, "version " + v.id);
      }
    }
    return Fail("object '" + key + "' in bucket '" + info_.id + "' has no version '" + *version +
                "' (plinth bucket ls --versions lists them)");
  }
  auto cur = StatLive(key);
  if (!cur.ok()) return cur.error();
  if (cur.value()) {
    auto h = OpenLive(key);
    if (!h.ok()) return h.error();
    io::TempFile tmp;
    fs::path parent = dst.parent_path().empty() ? fs::path(".") : dst.parent_path();
    if (int e = io::TempFile::Create(parent, dst.filename().string(), 0644, &tmp)) return Errno("write", dst, e);
    if (int e = CopyFd(h.value().file.fd, tmp.fd())) return Errno("write", dst, e);
    const char* stage = "write";
    if (int e = tmp.Commit(dst.filename().string(), &stage)) return Errno(stage, dst, e);
    return Done{};
  }
  if (m.value() && m.value()->archived) return OpenBlobTo(key, m.value()->archived->blob, dst, "the archived copy");
  return Fail("no object '" + key + "' in bucket '" + info_.id + "'" +
              (m.value() && !m.value()->versions.empty() ? " (it was deleted; earlier versions remain: use --version)"
                                                          : ""));
}

Result<Done> BucketStore::Get(const std::string& key, const std::optional<std::string>& version, int out,
                              const fs::path& scratch) const {
  if (auto why = CheckKey(key)) return Fail(*why);
  if (!version) {
    auto cur = StatLive(key);
    if (!cur.ok()) return cur.error();
    if (cur.value()) {
      auto h = OpenLive(key);
      if (!h.ok()) return h.error();
      if (int e = CopyFd(h.value().file.fd, out)) return Fail(std::string("cannot write the object: ") + std::strerror(e));
      return Done{};
    }
  }
  // Sealed content: opened (and authenticated) into a private temp file first.
  fs::path tmp = scratch / (".plinth-get-" + crypto::RandomHex(8));
  auto got = Get(key, version, tmp);
  if (!got.ok()) return got;
  int in = ::open(tmp.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int e = in < 0 ? errno : CopyFd(in, out);
  if (in >= 0) ::close(in);
  ::unlink(tmp.c_str());
  if (e) return Fail(std::string("cannot write the object: ") + std::strerror(e));
  return Done{};
}

Result<Done> BucketStore::Remove(const std::string& key, const std::optional<std::string>& version, int64_t now_ms) {
  if (auto why = CheckKey(key)) return Fail(*why);
  auto m = LoadManifest(key);
  if (!m.ok()) return m.error();
  if (version) {
    if (m.value()) {
      Manifest man = std::move(*m.value());
      auto it = std::find_if(man.versions.begin(), man.versions.end(), [&](const VersionInfo& v) { return v.id == *version; });
      if (it != man.versions.end()) {
        man.versions.erase(it);
        if (auto saved = SaveManifest(man); !saved.ok()) return saved.error();
        RemoveBlob(key, *version);
        return Done{};
      }
    }
    return Fail("object '" + key + "' in bucket '" + info_.id + "' has no version '" + *version + "'");
  }
  auto cur = StatLive(key);
  if (!cur.ok()) return cur.error();
  Manifest man = m.value() ? std::move(*m.value()) : Manifest{key, std::nullopt, {}};
  if (!cur.value() && !man.archived) return Fail("no object '" + key + "' in bucket '" + info_.id + "'");
  if (cur.value()) return ExpireCurrent(key, &man, true, cur.value()->size, cur.value()->modified_ms, now_ms);
  return ExpireCurrent(key, &man, false, man.archived->size, man.archived->modified_ms, now_ms);
}

// Ends the current version of `key` (live or archived): with versioning it
// becomes a stored version, otherwise it is deleted.
Result<Done> BucketStore::ExpireCurrent(const std::string& key, Manifest* m, bool live, uint64_t size,
                                        int64_t modified_ms, int64_t now_ms) const {
  if (live) {
    if (info_.versioning) {
      auto h = OpenLive(key);
      if (!h.ok()) return h.error();
      if (auto kept = KeepVersion(*m, h.value().path(), size, modified_ms, now_ms); !kept.ok()) return kept.error();
    }
    if (auto removed = RemoveLive(key); !removed.ok()) return removed;
    PruneEmptyDirs(key);
    return Done{};
  }
  Manifest::Archived a = *m->archived;
  m->archived.reset();
  if (info_.versioning) {
    m->versions.insert(m->versions.begin(), VersionInfo{a.blob, a.size, a.stored, a.modified_ms, now_ms});
    return SaveManifest(*m);
  }
  if (auto saved = SaveManifest(*m); !saved.ok()) return saved.error();
  RemoveBlob(key, a.blob);
  return Done{};
}

Result<Done> BucketStore::Archive(const std::string& key, Manifest& m, uint64_t size, int64_t modified_ms,
                                  int64_t now_ms) const {
  Manifest::Archived a;
  a.blob = NewBlobId(now_ms);
  a.size = size;
  a.modified_ms = modified_ms;
  a.archived_ms = now_ms;
  std::string error;
  auto h = OpenLive(key);
  if (!h.ok()) return h.error();
  auto dir = OpenObjectDir(key, true);
  if (!dir.ok()) return dir.error();
  if (!crypto::SealFile(key_, 1, Aad(key, a.blob), h.value().path(), dir.value().path() / (a.blob + ".sealed"),
                        /*compress=*/true, &error, &a.stored)) {
    return Fail("cannot archive '" + key + "': " + error);
  }
  if (m.archived) RemoveBlob(key, m.archived->blob);  // a stale archived copy (the live file replaced it): it goes
  m.archived = a;
  if (auto saved = SaveManifest(m); !saved.ok()) return saved.error();
  if (auto removed = RemoveLive(key); !removed.ok()) return removed;
  PruneEmptyDirs(key);
  return Done{};
}

namespace {

// The rule with the shortest duration `field` among those matching `key`
// whose duration has passed at `age`.
const LifecycleRule* Due(const std::vector<LifecycleRule>& rules, const std::string& key, int64_t age,
                         std::optional<int64_t> LifecycleRule::*field) {
  const LifecycleRule* best = nullptr;
  for (const LifecycleRule& r : rules) {
    if (key.rfind(r.prefix, 0) != 0 || !(r.*field) || *(r.*field) > age) continue;
    if (!best || *(r.*field) < *(best->*field)) best = &r;
  }
  return best;
}

}  // namespace

SweepReport BucketStore::Sweep(int64_t now_ms, bool dry_run) {
  SweepReport report;
  auto live = WalkLive();
  if (!live.ok()) {
    report.errors.push_back(live.error().message);
    return report;
  }
  auto record = [&](SweepAction a) {
    if (a.kind == "archive") ++report.archived;
    if (a.kind == "expire") ++report.expired;
    if (a.kind == "expire-noncurrent") ++report.noncurrent_expired;
    report.actions.push_back(std::move(a));
  };
  std::set<std::string> live_keys;
  for (const LiveFile& f : live.value()) {
    live_keys.insert(f.key);
    int64_t age = now_ms - f.modified_ms;
    const LifecycleRule* expire = Due(info_.rules, f.key, age, &LifecycleRule::expire_after_ms);
    const LifecycleRule* archive = expire ? nullptr : Due(info_.rules, f.key, age, &LifecycleRule::archive_after_ms);
    if (!expire && !archive) continue;
    SweepAction act{expire ? "expire" : "archive", f.key, (expire ? expire : archive)->name, "", f.size};
    if (!dry_run) {
      auto m = LoadManifest(f.key);
      if (!m.ok()) {
        report.errors.push_back(m.error().message);
        continue;
      }
      Manifest man = m.value() ? std::move(*m.value()) : Manifest{f.key, std::nullopt, {}};
      Result<Done> done = expire ? ExpireCurrent(f.key, &man, true, f.size, f.modified_ms, now_ms)
                                 : Archive(f.key, man, f.size, f.modified_ms, now_ms);
      if (!done.ok()) {
        report.errors.push_back(done.error().message);
        continue;
      }
      live_keys.erase(f.key);  // moved or gone: no longer live for the checks below
    }
    record(std::move(act));
  }
  auto manifests = AllManifests();
  if (!manifests.ok()) {
    report.errors.push_back(manifests.error().message);
    return report;
  }
  for (Manifest& man : manifests.value()) {
    bool changed = false;
    std::vector<std::string> drop;
    if (man.archived) {
      if (live_keys.count(man.key) && !dry_run) {
        // Live and archived at once: either a crash between sealing and
        // removing the live file (same content: finish the move), or the
        // live file was written since (the archived copy is stale).
        auto cur_r = StatLive(man.key);
        if (!cur_r.ok()) {
          report.errors.push_back(cur_r.error().message);
          continue;
        }
        const std::optional<LiveFile>& cur = cur_r.value();
        if (cur && cur->modified_ms == man.archived->modified_ms && cur->size == man.archived->size) {
          if (auto removed = RemoveLive(man.key); !removed.ok()) {
            report.errors.push_back(removed.error().message);
            continue;
          }
          PruneEmptyDirs(man.key);
          record({"finish-move", man.key, "", "", cur->size});
        } else if (info_.versioning) {
          man.versions.insert(man.versions.begin(),
                              VersionInfo{man.archived->blob, man.archived->size, man.archived->stored,
                                          man.archived->modified_ms, now_ms});
          man.archived.reset();
          changed = true;
        } else {
          drop.push_back(man.archived->blob);
          man.archived.reset();
          changed = true;
        }
      } else if (!live_keys.count(man.key)) {
        int64_t age = now_ms - man.archived->modified_ms;
        if (const LifecycleRule* r = Due(info_.rules, man.key, age, &LifecycleRule::expire_after_ms)) {
          record({"expire", man.key, r->name, "", man.archived->size});
          if (!dry_run) {
            if (info_.versioning) {
              man.versions.insert(man.versions.begin(),
                                  VersionInfo{man.archived->blob, man.archived->size, man.archived->stored,
                                              man.archived->modified_ms, now_ms});
            } else {
              drop.push_back(man.archived->blob);
            }
            man.archived.reset();
            changed = true;
          }
        }
      }
    }
    for (auto it = man.versions.begin(); it != man.versions.end();) {
      int64_t age = now_ms - it->noncurrent_since_ms;
      const LifecycleRule* r = Due(info_.rules, man.key, age, &LifecycleRule::noncurrent_expire_after_ms);
      if (!r) {
        ++it;
        continue;
      }
      record({"expire-noncurrent", man.key, r->name, it->id, it->size});
      if (dry_run) {
        ++it;
        continue;
      }
      drop.push_back(it->id);
      it = man.versions.erase(it);
      changed = true;
    }
    if (!changed || dry_run) continue;
    if (auto saved = SaveManifest(man); !saved.ok()) {
      report.errors.push_back(saved.error().message);
      continue;
    }
    for (const std::string& blob : drop) RemoveBlob(man.key, blob);
  }
  return report;
}

Result<Usage> BucketStore::MeasureUsage() const {
  Usage u;
  auto live = WalkLive();
  if (!live.ok()) return live.error();
  for (const LiveFile& f : live.value()) {
    u.live_bytes += f.size;
    ++u.live_objects;
  }
  auto manifests = AllManifests();
  if (!manifests.ok()) return manifests.error();
  for (const Manifest& m : manifests.value()) {
    if (m.archived) {
      u.archive_bytes += m.archived->stored;
      ++u.archived_objects;
    }
    for (const VersionInfo& v : m.versions) {
      u.version_bytes += v.stored;
      ++u.versions;
    }
  }
  return u;
}

}  // namespace plinth::storage
