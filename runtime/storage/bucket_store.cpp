#include "runtime/storage/bucket_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "compiler/types/value_json.h"
#include "runtime/io/durable.h"

namespace plinth::storage {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kBucketMeta = ".plinth-bucket.json";
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

// Every live object: regular files under `live`, skipping Plinth's own files.
struct LiveFile {
  std::string key;
  uint64_t size;
  int64_t modified_ms;
};

Result<std::vector<LiveFile>> WalkLive(const fs::path& live) {
  std::vector<LiveFile> out;
  std::error_code ec;
  if (!fs::is_directory(live, ec)) return Fail("bucket directory '" + live.string() + "' does not exist");
  fs::recursive_directory_iterator it(live, fs::directory_options::none, ec);
  if (ec) return Errno("list", live, ec.value());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return Errno("list", live, ec.value());
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    if (IsHiddenPlinth(name)) {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;  // removed while listing
    if (!S_ISREG(st.st_mode)) continue;          // directories, symlinks and devices are not objects
    out.push_back({p.lexically_relative(live).generic_string(), static_cast<uint64_t>(st.st_size), MtimeMs(st)});
  }
  std::sort(out.begin(), out.end(), [](const LiveFile& a, const LiveFile& b) { return a.key < b.key; });
  return out;
}

std::optional<LiveFile> StatLive(const fs::path& live, const std::string& key) {
  struct stat st;
  fs::path p = live / key;
  if (::lstat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return LiveFile{key, static_cast<uint64_t>(st.st_size), MtimeMs(st)};
}

// Copies `src` to a temp file beside `dst`, fsynced; returns the temp path.
Result<fs::path> CopyToTemp(const fs::path& src, const fs::path& dst) {
  fs::path tmp = dst.parent_path() / (".plinth-put-" + crypto::RandomHex(6) + ".tmp");
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Errno("read", src, errno);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    int e = errno;
    ::close(in);
    return Errno("write", dst, e);
  }
  std::vector<char> buf(1 << 20);
  auto fail = [&](const std::string& what, const fs::path& p, int e) {
    ::close(in);
    ::close(out);
    ::unlink(tmp.c_str());
    return Errno(what, p, e);
  };
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("read", src, errno);
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return fail("write", dst, errno);
      }
      done += w;
    }
  }
  if (::fsync(out) != 0) return fail("sync", dst, errno);
  ::close(in);
  ::close(out);
  return tmp;
}

// Removes empty directories from `dir` up to (not including) `stop`.
void PruneEmptyDirs(fs::path dir, const fs::path& stop) {
  std::error_code ec;
  while (dir != stop && dir.string().size() > stop.string().size()) {
    if (!fs::is_empty(dir, ec) || ec) return;
    fs::remove(dir, ec);
    if (ec) return;
    dir = dir.parent_path();
  }
}

Result<json> ReadJson(const fs::path& p) {
  std::ifstream in(p);
  if (!in) return Errno("read", p, errno == 0 ? ENOENT : errno);
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Fail("'" + p.string() + "' is damaged (not a JSON object)");
  return j;
}

std::string NewBlobId(int64_t now_ms) { return "v" + std::to_string(now_ms) + "-" + crypto::RandomHex(4); }

}  // namespace

// ------------------------------------------------------------ bucket info

fs::path StoreDirFor(const fs::path& region_dir, const std::string& bucket) {
  return region_dir / ".plinth-storage" / bucket;
}

void ApplySettings(const ValueMap& a, BucketInfo& info) {
  if (const Value* v = Find(a, "capacity"); Known(v, Value::Kind::Size)) {
    info.capacity_bytes = static_cast<uint64_t>(v->as_number());
  } else {
    info.capacity_bytes.reset();
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
        b.repository = fs::path(p->as_string()) / "backups" / (info.region + "-" + info.name);
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

Result<BucketInfo> LoadBucket(const fs::path& live_dir) {
  fs::path meta = live_dir / kBucketMeta;
  auto j = ReadJson(meta);
  if (!j.ok()) return Fail("'" + live_dir.string() + "' is not a bucket managed by plinth: " + j.error().message);
  const json& m = j.value();
  BucketInfo info;
  info.name = m.value("bucket", "");
  info.region = m.value("region", "");
  info.id = m.value("id", info.region + "/" + info.name);
  info.address = m.value("address", "");
  info.live = live_dir;
  info.region_dir = live_dir.parent_path().parent_path();
  info.store = StoreDirFor(info.region_dir, info.name);
  ValueMap attrs;
  if (m.contains("attributes") && m["attributes"].is_object()) {
    for (const auto& [k, v] : m["attributes"].items()) {
      ValueFromJsonResult r = ValueFromJson(v);
      if (!r.ok()) return Fail("bucket metadata '" + meta.string() + "' is damaged: " + k + ": " + r.error);
      attrs[k] = r.value;
    }
  }
  ApplySettings(attrs, info);
  if (m.contains("key") && m["key"].is_string()) info.wrapped_key = m["key"].get<std::string>();
  return info;
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

fs::path BucketStore::ObjectDir(const std::string& key) const {
  return info_.store / "objects" / Sha256Hex(key, 16);
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

Result<BucketStore::Manifest> BucketStore::ReadManifest(const fs::path& p) {
  auto j = ReadJson(p);
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
  return out;
}

Result<std::optional<BucketStore::Manifest>> BucketStore::LoadManifest(const std::string& key) const {
  fs::path p = ObjectDir(key) / kManifest;
  std::error_code ec;
  if (!fs::exists(p, ec)) return std::optional<Manifest>();
  auto m = ReadManifest(p);
  if (!m.ok()) return m.error();
  if (m.value().key != key) return Fail("'" + p.string() + "' belongs to another key ('" + m.value().key + "')");
  return std::optional<Manifest>(std::move(m.value()));
}

Result<std::vector<BucketStore::Manifest>> BucketStore::AllManifests() const {
  std::vector<Manifest> out;
  fs::path dir = info_.store / "objects";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    fs::path p = e.path() / kManifest;
    if (!fs::exists(p, ec)) continue;  // an object directory whose manifest was never written: nothing recorded
    auto m = ReadManifest(p);
    if (!m.ok()) return m.error();
    if (ObjectDir(m.value().key) != e.path()) {
      return Fail("'" + p.string() + "' belongs to another key ('" + m.value().key + "')");
    }
    out.push_back(std::move(m.value()));
  }
  std::sort(out.begin(), out.end(), [](const Manifest& a, const Manifest& b) { return a.key < b.key; });
  return out;
}

Result<Done> BucketStore::SaveManifest(const Manifest& m) const {
  fs::path dir = ObjectDir(m.key);
  std::error_code ec;
  if (!m.archived && m.versions.empty()) {
    // Nothing left: the directory goes, with any sealed file a crash left behind.
    fs::remove_all(dir, ec);
    if (ec) return Errno("remove", dir, ec.value());
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
  if (int e = io::MakeDirs(dir, 0700)) return Errno("create", dir, e);
  const char* stage = "write";
  if (int e = io::WriteFileAtomic(dir / kManifest, j.dump(1) + "\n", 0600, &stage)) return Errno(stage, dir / kManifest, e);
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
  fs::path sealed = ObjectDir(m.key) / (v.id + ".sealed");
  if (int e = io::MakeDirs(sealed.parent_path(), 0700)) return Errno("create", sealed.parent_path(), e);
  if (!crypto::SealFile(key_, 1, Aad(m.key, v.id), src, sealed, /*compress=*/false, &error, &v.stored)) {
    return Fail("cannot keep the previous version of '" + m.key + "': " + error);
  }
  m.versions.insert(m.versions.begin(), v);
  return SaveManifest(m);
}

Result<std::vector<ObjectInfo>> BucketStore::List(const std::string& prefix, bool include_deleted) const {
  auto live = WalkLive(info_.live);
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
  auto live = StatLive(info_.live, key);
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
  fs::path dst = info_.live / key;
  std::error_code ec;
  if (fs::is_directory(dst, ec)) return Fail("'" + key + "' is a prefix of other objects in bucket '" + info_.id + "'");
  if (int e = io::MakeDirs(dst.parent_path())) return Errno("create", dst.parent_path(), e);
  auto tmp = CopyToTemp(src, dst);
  if (!tmp.ok()) return tmp.error();
  auto drop_tmp = [&](ProviderError e) {
    ::unlink(tmp.value().c_str());
    return e;
  };
  auto m = LoadManifest(key);
  if (!m.ok()) return drop_tmp(m.error());
  Manifest man = m.value() ? std::move(*m.value()) : Manifest{key, std::nullopt, {}};
  std::optional<Manifest::Archived> drop_archived;
  if (info_.versioning) {
    if (auto cur = StatLive(info_.live, key)) {
      if (auto kept = KeepVersion(man, dst, cur->size, cur->modified_ms, now_ms); !kept.ok()) {
        return drop_tmp(kept.error());
      }
    } else if (man.archived) {
      // The archived current version becomes noncurrent; its sealed file stays.
      man.versions.insert(man.versions.begin(), VersionInfo{man.archived->blob, man.archived->size,
                                                            man.archived->stored, man.archived->modified_ms, now_ms});
      man.archived.reset();
      if (auto saved = SaveManifest(man); !saved.ok()) return drop_tmp(saved.error());
    }
  } else if (man.archived) {
    drop_archived = man.archived;
  }
  const char* stage = "write";
  if (int e = io::CommitTemp(tmp.value(), dst, &stage)) return Errno(stage, dst, e);
  if (drop_archived) {
    // The new content is in place; the old archived copy goes.
    man.archived.reset();
    if (auto saved = SaveManifest(man); !saved.ok()) return saved.error();
    fs::remove(ObjectDir(key) / (drop_archived->blob + ".sealed"), ec);
  }
  return Done{};
}

Result<Done> BucketStore::Get(const std::string& key, const std::optional<std::string>& version,
                              const fs::path& dst) const {
  if (auto why = CheckKey(key)) return Fail(*why);
  auto m = LoadManifest(key);
  if (!m.ok()) return m.error();
  std::string error;
  if (version) {
    if (m.value()) {
      for (const VersionInfo& v : m.value()->versions) {
        if (v.id != *version) continue;
        if (!crypto::OpenFile(key_, Aad(key, v.id), ObjectDir(key) / (v.id + ".sealed"), dst, &error)) {
          return Fail("cannot read version " + v.id + " of '" + key + "': " + error);
        }
        return Done{};
      }
    }
    return Fail("object '" + key + "' in bucket '" + info_.id + "' has no version '" + *version +
                "' (plinth bucket ls --versions lists them)");
  }
  if (StatLive(info_.live, key)) {
    auto tmp = CopyToTemp(info_.live / key, dst);
    if (!tmp.ok()) return tmp.error();
    const char* stage = "write";
    if (int e = io::CommitTemp(tmp.value(), dst, &stage)) return Errno(stage, dst, e);
    return Done{};
  }
  if (m.value() && m.value()->archived) {
    const auto& a = *m.value()->archived;
    if (!crypto::OpenFile(key_, Aad(key, a.blob), ObjectDir(key) / (a.blob + ".sealed"), dst, &error)) {
      return Fail("cannot read the archived copy of '" + key + "': " + error);
    }
    return Done{};
  }
  return Fail("no object '" + key + "' in bucket '" + info_.id + "'" +
              (m.value() && !m.value()->versions.empty() ? " (it was deleted; earlier versions remain: use --version)"
                                                          : ""));
}

Result<Done> BucketStore::Remove(const std::string& key, const std::optional<std::string>& version, int64_t now_ms) {
  if (auto why = CheckKey(key)) return Fail(*why);
  auto m = LoadManifest(key);
  if (!m.ok()) return m.error();
  std::error_code ec;
  if (version) {
    if (m.value()) {
      Manifest man = std::move(*m.value());
      auto it = std::find_if(man.versions.begin(), man.versions.end(), [&](const VersionInfo& v) { return v.id == *version; });
      if (it != man.versions.end()) {
        man.versions.erase(it);
        if (auto saved = SaveManifest(man); !saved.ok()) return saved.error();
        fs::remove(ObjectDir(key) / (*version + ".sealed"), ec);
        return Done{};
      }
    }
    return Fail("object '" + key + "' in bucket '" + info_.id + "' has no version '" + *version + "'");
  }
  auto cur = StatLive(info_.live, key);
  Manifest man = m.value() ? std::move(*m.value()) : Manifest{key, std::nullopt, {}};
  if (!cur && !man.archived) return Fail("no object '" + key + "' in bucket '" + info_.id + "'");
  if (cur) return ExpireCurrent(key, &man, true, cur->size, cur->modified_ms, now_ms);
  return ExpireCurrent(key, &man, false, man.archived->size, man.archived->modified_ms, now_ms);
}

// Ends the current version of `key` (live or archived): with versioning it
// becomes a stored version, otherwise it is deleted.
Result<Done> BucketStore::ExpireCurrent(const std::string& key, Manifest* m, bool live, uint64_t size,
                                        int64_t modified_ms, int64_t now_ms) const {
  std::error_code ec;
  fs::path path = info_.live / key;
  if (live) {
    if (info_.versioning) {
      if (auto kept = KeepVersion(*m, path, size, modified_ms, now_ms); !kept.ok()) return kept.error();
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("remove", path, errno);
    io::SyncDir(path.parent_path());
    PruneEmptyDirs(path.parent_path(), info_.live);
    return Done{};
  }
  Manifest::Archived a = *m->archived;
  m->archived.reset();
  if (info_.versioning) {
    m->versions.insert(m->versions.begin(), VersionInfo{a.blob, a.size, a.stored, a.modified_ms, now_ms});
    return SaveManifest(*m);
  }
  if (auto saved = SaveManifest(*m); !saved.ok()) return saved.error();
  fs::remove(ObjectDir(key) / (a.blob + ".sealed"), ec);
  return Done{};
}

Result<Done> BucketStore::Archive(const std::string& key, Manifest& m, uint64_t size, int64_t modified_ms,
                                  int64_t now_ms) const {
  fs::path path = info_.live / key;
  Manifest::Archived a;
  a.blob = NewBlobId(now_ms);
  a.size = size;
  a.modified_ms = modified_ms;
  a.archived_ms = now_ms;
  std::string error;
  fs::path sealed = ObjectDir(key) / (a.blob + ".sealed");
  if (int e = io::MakeDirs(sealed.parent_path(), 0700)) return Errno("create", sealed.parent_path(), e);
  if (!crypto::SealFile(key_, 1, Aad(key, a.blob), path, sealed, /*compress=*/true, &error, &a.stored)) {
    return Fail("cannot archive '" + key + "': " + error);
  }
  if (m.archived) {  // a stale archived copy (the live file replaced it): it goes
    std::error_code ec;
    fs::remove(ObjectDir(key) / (m.archived->blob + ".sealed"), ec);
  }
  m.archived = a;
  if (auto saved = SaveManifest(m); !saved.ok()) return saved.error();
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("remove", path, errno);
  io::SyncDir(path.parent_path());
  PruneEmptyDirs(path.parent_path(), info_.live);
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
  auto live = WalkLive(info_.live);
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
        auto cur = StatLive(info_.live, man.key);
        if (cur && cur->modified_ms == man.archived->modified_ms && cur->size == man.archived->size) {
          fs::path p = info_.live / man.key;
          ::unlink(p.c_str());
          PruneEmptyDirs(p.parent_path(), info_.live);
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
    std::error_code ec;
    for (const std::string& blob : drop) fs::remove(ObjectDir(man.key) / (blob + ".sealed"), ec);
  }
  return report;
}

Result<Usage> BucketStore::MeasureUsage() const {
  Usage u;
  auto live = WalkLive(info_.live);
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
