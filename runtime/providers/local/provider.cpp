#include "runtime/providers/local/provider.h"
#include "runtime/providers/local/packages.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "compiler/types/value_json.h"
#include "runtime/compute/inventory.h"
#include "runtime/compute/queue.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/services.h"
#include "runtime/io/durable.h"
#include "runtime/providers/local/compute.h"
#include "runtime/providers/local/file_resources.h"
#include "runtime/providers/local/region_network.h"
#include "runtime/providers/local/schema.h"
#include "runtime/providers/local/service.h"
#include "runtime/storage/bucket_store.h"
#include "runtime/storage/keys.h"
#include "runtime/storage/service.h"

namespace plinth::runtime {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kRegionMeta = ".plinth-region.json";
constexpr const char* kBucketMeta = ".plinth-bucket.json";
constexpr const char* kDownFile = "DOWN";
constexpr const char* kIndexDir = ".plinth-local";  // the provider's own bookkeeping under the data root
constexpr int kFormat = 1;

// ------------------------------------------------------------------ values

const Value* Find(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool IsKnownString(const Value* v) {
  return v && v->kind() == Value::Kind::String;
}

// How a value may appear in a message: never its content when sensitive.
std::string Shown(const Value& v, const std::string& text) {
  return v.ContainsSensitive() ? "(sensitive)" : "'" + text + "'";
}

bool SameValue(const Value* a, const Value* b) {
  bool an = !a || a->is_null(), bn = !b || b->is_null();
  if (an || bn) return an == bn;
  return a->Equals(*b);
}

ProviderError Fail(std::string message, bool retryable = false) {
  return ProviderError{std::move(message), retryable};
}

ProviderError IoFail(const std::string& what, const std::string& shown_path, int err) {
  std::string reason = std::strerror(err);
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  bool retryable = err == EAGAIN || err == EBUSY || err == EINTR || err == ETIMEDOUT;
  return Fail("cannot " + what + " " + shown_path + ": " + reason, retryable);
}

// A single path segment usable as a directory name.
bool ValidSegment(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos && s.size() <= 255;
}

// A relative path that stays inside its base once normalised. Returns the
// normalised form, or an error message (without the path's text, which the
// caller adds when it may be shown).
std::optional<std::string> RelativeInside(const std::string& p, std::string* why) {
  if (p.empty()) {
    *why = "is empty";
    return std::nullopt;
  }
  if (p.find('\0') != std::string::npos) {
    *why = "contains a NUL byte";
    return std::nullopt;
  }
  fs::path path(p);
  if (path.is_absolute() || p[0] == '/') {
    *why = "is absolute; give it relative to the data root";
    return std::nullopt;
  }
  // Walk the segments: '..' may not climb above the base at any point.
  std::vector<std::string> parts;
  for (const auto& seg : path) {
    std::string s = seg.string();
    if (s.empty() || s == ".") continue;
    if (s == "..") {
      if (parts.empty()) {
        *why = "leaves the data root";
        return std::nullopt;
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(s);
  }
  if (parts.empty()) {
    *why = "names the data root itself, not a file under it";
    return std::nullopt;
  }
  if (parts[0] == kIndexDir) {
    *why = std::string("is inside '") + kIndexDir + "', which the local provider reserves for itself";
    return std::nullopt;
  }
  std::string out;
  for (const auto& s : parts) out += (out.empty() ? "" : "/") + s;
  return out;
}

// Region references (`region = region.eu`) arrive as the region's whole
// object; only its identity matters to a bucket, so planned and stored
// values keep {name, path}. A string is a region name.
Value NormalizeRef(const Value& v) {
  if (v.kind() == Value::Kind::String) return Value::Object({{"name", v}});
  if (v.kind() != Value::Kind::Object) return v;
  ValueMap out;
  const ValueMap& m = v.as_object();
  if (const Value* n = Find(m, "name")) out["name"] = *n;
  if (const Value* p = Find(m, "path"); p && !p->is_null()) out["path"] = *p;
  if (const Value* r = Find(m, "root"); r && !out.count("path")) {
    if (!r->is_null()) out["root"] = *r;
  }
  return Value::Object(std::move(out));
}

// Fills schema defaults and normalises references, recursively into blocks.
void FillBlock(const BlockSchema& schema, ValueMap& m) {
  for (const auto& a : schema.attributes) {
    Value& v = m[a.name];
    if (v.is_null() && a.default_value) v = *a.default_value;
    if (!a.ref_type.empty() && !v.is_null() && !v.is_unknown()) v = NormalizeRef(v);
  }
  for (const auto& b : schema.blocks) {
    Value& v = m[b.name];
    auto fill = [&](const Value& item) {
      if (item.kind() != Value::Kind::Object) return item;
      ValueMap inner = item.as_object();
      FillBlock(*b.body, inner);
      return Value::Object(std::move(inner));
    };
    if (b.labeled) {
      if (v.is_null()) v = Value::Object({});
      if (v.kind() == Value::Kind::Object) {
        ValueMap out;
        for (const auto& [k, item] : v.as_object()) out[k] = fill(item);
        v = Value::Object(std::move(out));
      }
    } else if (b.max_items == 1) {
      if (v.kind() == Value::Kind::Object) v = fill(v);
    } else {
      if (v.is_null()) v = Value::List({});
      if (v.kind() == Value::Kind::List) {
        ValueList out;
        for (const auto& item : v.as_list()) out.push_back(fill(item));
        v = Value::List(std::move(out));
      }
    }
  }
}

// The first configured (non-computed) attribute that is still unknown at
// apply time, or empty. Region references may carry an unknown path: the
// provider resolves those itself.
std::string FirstUnknown(const BlockSchema& schema, const ValueMap& m, const std::string& prefix = "") {
  for (const auto& a : schema.attributes) {
    if (a.mode == AttrMode::Computed) continue;
    const Value* v = Find(m, a.name);
    if (!v) continue;
    if (!a.ref_type.empty()) {
      if (v->is_unknown()) return prefix + a.name;
      if (v->kind() == Value::Kind::Object) {
        const Value* n = Find(v->as_object(), "name");
        if (n && n->ContainsUnknown()) return prefix + a.name;
      }
      continue;
    }
    if (a.mode == AttrMode::OptionalComputed && v->is_unknown()) continue;  // the provider computes it
    if (v->ContainsUnknown()) return prefix + a.name;
  }
  for (const auto& b : schema.blocks) {
    const Value* v = Find(m, b.name);
    if (!v) continue;
    if (v->is_unknown()) return prefix + b.name;
    auto check = [&](const Value& item, const std::string& p) -> std::string {
      if (item.kind() != Value::Kind::Object) return item.ContainsUnknown() ? p : "";
      return FirstUnknown(*b.body, item.as_object(), p + ".");
    };
    if (v->kind() == Value::Kind::Object && b.labeled) {
      for (const auto& [k, item] : v->as_object())
        if (auto s = check(item, prefix + b.name + "." + k); !s.empty()) return s;
    } else if (v->kind() == Value::Kind::Object) {
      if (auto s = check(*v, prefix + b.name); !s.empty()) return s;
    } else if (v->kind() == Value::Kind::List) {
      for (size_t i = 0; i < v->as_list().size(); ++i)
        if (auto s = check(v->as_list()[i], prefix + b.name + "[" + std::to_string(i) + "]"); !s.empty())
          return s;
    }
  }
  return "";
}

// ------------------------------------------------------------------- files

std::string ErrnoPath(const fs::path& p, bool sensitive) {
  if (sensitive) return "(sensitive path)";
  std::string out = "'";
  out += p.string();
  out += '\'';
  return out;
}

bool SyncDir(const fs::path& dir, int* err) {
  *err = io::SyncDir(dir);
  return *err == 0;
}

bool MakeDirs(const fs::path& dir, int* err) {
  *err = io::MakeDirs(dir);
  return *err == 0;
}

// Replaces `path` with `data` atomically (runtime/io/durable.h): readers see
// the old or the new file.
std::optional<ProviderError> WriteFileAtomic(const fs::path& path, std::string_view data,
                                             bool sensitive_path) {
  const char* stage = "write";
  if (int e = io::WriteFileAtomic(path, data, 0644, &stage)) {
    if (std::string_view(stage) == "rename") stage = "write";
    return IoFail(stage, ErrnoPath(path, sensitive_path), e);
  }
  return std::nullopt;
}

// nullopt content with no error: the file does not exist.
struct FileRead {
  std::optional<std::string> content;
  std::optional<ProviderError> error;
};

// Reads a file of the provider's own beneath `root` (the data root) without
// following symlinks anywhere on the way: whoever can write inside the data
// root cannot make the provider read a file elsewhere (a metadata file
// replaced by a symlink to a key reads as an error, never as its target).
FileRead ReadFile(const fs::path& root, const fs::path& path, bool sensitive_path) {
  FileRead r;
  fs::path rel = path.lexically_relative(root);
  if (rel.empty() || *rel.begin() == "..") {
    r.error = Fail(ErrnoPath(path, sensitive_path) + " is outside the data root '" + root.string() + "'");
    return r;
  }
  std::string out;
  int e = io::ReadFileBeneath(root, rel, &out);
  if (e == ENOENT || e == ENOTDIR) return r;
  if (e == ELOOP) {
    r.error = Fail(
        ErrnoPath(path, sensitive_path) +
        " is a symlink or lies under one; the local provider reads only its own files (remove the link)");
    return r;
  }
  if (e != 0) {
    r.error = IoFail("read", ErrnoPath(path, sensitive_path), e);
    return r;
  }
  r.content = std::move(out);
  return r;
}

// Removes the temp files a write of `file` killed before its rename left
// (".NAME.<16 hex>.tmp" beside it): litter that may hold a marker's content.
void RemoveStaleTemps(const fs::path& file) {
  const std::string name = file.filename().string();
  const std::string prefix = "." + name + ".";
  std::error_code ec;
  for (fs::directory_iterator it(file.parent_path(), ec), end; !ec && it != end; it.increment(ec)) {
    std::string entry = it->path().filename().string();
    if (entry.size() == prefix.size() + 16 + 4 && entry.compare(0, prefix.size(), prefix) == 0 &&
        io::IsTempName(entry)) {
      ::unlink(it->path().c_str());
    }
  }
}

bool Exists(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

// A directory itself, not a symlink to one.
bool IsRealDir(const fs::path& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsDir(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Files (not directories) below `dir`, not following symlinks, except those
// named in `skip` directly inside `dir`.
size_t CountFiles(const fs::path& dir, const std::vector<std::string>& skip) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) continue;
    if (it.depth() == 0 && std::find(skip.begin(), skip.end(), it->path().filename().string()) != skip.end())
      continue;
    ++n;
  }
  return n;
}

std::optional<ProviderError> RemoveFile(const fs::path& p, bool sensitive_path) {
  if (::unlink(p.c_str()) != 0 && errno != ENOENT)
    return IoFail("remove", ErrnoPath(p, sensitive_path), errno);
  return std::nullopt;
}

// Removes `dir` and the empty directories below it; fails (ENOTEMPTY) when a file is left.
std::optional<ProviderError> RemoveEmptyTree(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> dirs;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
  }
  for (auto d = dirs.rbegin(); d != dirs.rend(); ++d) {
    if (::rmdir(d->c_str()) != 0 && errno != ENOENT) return IoFail("remove", ErrnoPath(*d, false), errno);
  }
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return IoFail("remove", ErrnoPath(dir, false), errno);
  int e = 0;
  if (!SyncDir(dir.parent_path(), &e)) return IoFail("sync", ErrnoPath(dir.parent_path(), false), e);
  return std::nullopt;
}

std::string FilesText(size_t n) {
  return std::to_string(n) + (n == 1 ? " file" : " files");
}

const ResourceSchema* SchemaOf(const std::string& type) {
  static const std::map<std::string, ResourceSchema> schemas = [] {
    std::map<std::string, ResourceSchema> m;
    for (auto& s : LocalProviderSchemas().ResourceSchemas()) m.emplace(s.type, s);
    return m;
  }();
  auto it = schemas.find(type);
  return it == schemas.end() ? nullptr : &it->second;
}

ProviderError UnknownType(const std::string& type) {
  return Fail("the local provider has no resource type '" + type + "'");
}

// Identity attributes the engine passes along (`name`, `address`) are kept
// in every object the provider returns.
void Carry(const ValueMap* from, ValueMap& to) {
  if (!from) return;
  for (const char* k : {"name", "address"}) {
    if (const Value* v = Find(*from, k); v && !v->is_null() && !to.count(k)) to[k] = *v;
  }
}

std::optional<int64_t> IntOf(const Value* v) {
  if (!v || v->kind() != Value::Kind::Number || !v->is_integer()) return std::nullopt;
  return static_cast<int64_t>(v->as_number());
}

std::string PortRange(int64_t base, int64_t count) {
  return std::to_string(base) + "-" + std::to_string(base + count - 1);
}

bool Contains(const fs::path& outer, const fs::path& inner) {
  std::string o = outer.string(), i = inner.string();
  return i == o || (i.size() > o.size() && i.compare(0, o.size(), o) == 0 && i[o.size()] == '/');
}

// A service's `window` at plan (docs/services.md, "Changes inside a
// maintenance window"): a change that replaces replicas, or one recorded
// earlier that still waits (refresh reads rollout_pending from the store),
// is pending while the window is closed, with a note saying when it opens;
// inside the window, or with PLINTH_IGNORE_WINDOWS=1, it is rolled out
// (rollout_pending false). Without a window nothing is pending.
void PlanServiceWindow(ValueMap& p, const ValueMap* prior, std::vector<std::string>* notes) {
  const Value* was = prior ? Find(*prior, "rollout_pending") : nullptr;
  const bool was_pending = was && was->kind() == Value::Kind::Bool && was->as_bool();
  bool changes = false;
  if (prior) {
    for (const char* k : {"version", "command", "env", "secret_env", "port", "user", "reads", "writes"})
      changes = changes || !SameValue(Find(p, k), Find(*prior, k));
  }
  const Value* w = Find(p, "window");
  const bool has_window = w && w->kind() == Value::Kind::Object;
  if (!has_window || (!changes && !was_pending)) {
    if (was) p["rollout_pending"] = Value::Bool(false);
    return;
  }
  if (w->ContainsUnknown()) {  // decided at apply
    p["rollout_pending"] = Value::Unknown(Type::Bool());
    return;
  }
  std::string error;
  auto resolved = packages::WindowOf(w->as_object(), &error);
  if (!resolved) {
    notes->push_back(error + ": the change is rolled out at apply");
    p["rollout_pending"] = Value::Bool(false);
    return;
  }
  controller::SystemClock clock;
  const controller::WindowDecision d = packages::DecideWindow(*resolved, clock.WallMs() / 1000);
  const Value* version = Find(p, "version");
  const std::string what =
      IsKnownString(version) && changes && !SameValue(version, Find(*prior, "version"))
          ? "version \"" + version->as_string() + "\""
          : std::string("the change");
  if (d.open) {
    p["rollout_pending"] = Value::Bool(false);
    return;
  }
  if (controller::WindowsIgnoredByEnvironment()) {
    notes->push_back("maintenance window " + resolved->name + " is closed (" + d.next +
                     "), but PLINTH_IGNORE_WINDOWS=1: apply rolls " + what + " out now");
    p["rollout_pending"] = Value::Bool(false);
    return;
  }
  p["rollout_pending"] = Value::Bool(true);
  notes->push_back("rolling out " + what + " waits for maintenance window " + resolved->name + ": " + d.next +
                   "; apply records it, and the leading controller (or an apply inside the window) rolls it "
                   "out then");
}

// A pool's `patch` at plan (docs/compute.md, "Patching nodes"): a new level
// whose window is closed gets a note (apply records it; the nodes' agents
// patch them when the window opens). Progress is in `plinth compute status`,
// not in an attribute: it would read as drift while a rollout runs.
void PlanPoolPatch(const ValueMap& p, const ValueMap* prior, std::vector<std::string>* notes) {
  const Value* patch = Find(p, "patch");
  if (!patch || patch->kind() != Value::Kind::Object) return;
  const Value* level = Find(patch->as_object(), "level");
  const Value* prior_patch = prior ? Find(*prior, "patch") : nullptr;
  const Value* prior_level =
      prior_patch && prior_patch->kind() == Value::Kind::Object ? Find(prior_patch->as_object(), "level") : nullptr;
  if (!prior || SameValue(level, prior_level)) return;
  const Value* w = Find(patch->as_object(), "window");
  if (!prior || !IsKnownString(level) || !w || w->kind() != Value::Kind::Object || w->ContainsUnknown()) return;
  std::string error;
  auto resolved = packages::WindowOf(w->as_object(), &error);
  if (!resolved) return;
  controller::SystemClock clock;
  const controller::WindowDecision d = packages::DecideWindow(*resolved, clock.WallMs() / 1000);
  if (d.open || controller::WindowsIgnoredByEnvironment()) return;
  notes->push_back("patching the running nodes to level \"" + level->as_string() +
                   "\" waits for maintenance window " + resolved->name + ": " + d.next +
                   "; apply records it, and each node's agent patches it then (a new node is patched when it "
                   "starts)");
}

}  // namespace

// ================================================================ provider

struct LocalProvider::RegionInfo {
  std::string name;
  std::string address;
  std::string root;  // relative to the data root
  fs::path dir;      // absolute
  int64_t port_base = 20000;
  int64_t port_count = 1000;
  std::string host;  // empty: unset (127.0.0.1)
  bool down = false;
  bool namespaced = false;  // isolation = "namespace"
  Value labels;
};

namespace {

// The network of a namespaced region (LocalProvider::RegionInfo is private).
template <class Info>
region_network::RegionNetwork Network(const Info& r) {
  return region_network::NetworkFor(r.dir, r.name, r.host);
}

}  // namespace

LocalProvider::LocalProvider(fs::path data_root, fs::path workspace_key, const std::atomic<bool>* stop,
                             fs::path compute_dir, fs::path config_dir)
    : config_dir_(std::move(config_dir)), stop_(stop), compute_dir_(std::move(compute_dir)) {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(data_root, ec);
  root_ = (ec ? data_root.lexically_normal() : canon);
  std::string s = root_.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  root_ = s;
  workspace_key_ = workspace_key.empty() ? root_.parent_path() / "workspace.key" : std::move(workspace_key);
}

LocalProvider::~LocalProvider() = default;

const SchemaSource& LocalProvider::Schemas() const {
  return LocalProviderSchemas();
}

Result<fs::path> LocalProvider::MarkerPath(const std::string& rel, const std::string& shown) const {
  fs::path p = root_ / rel;
  // The directory is resolved (symlinks followed) and must be inside the
  // root; the file name itself is never followed: a write renames over it
  // and a delete unlinks it, so a symlink there is replaced or removed, and
  // its target is never touched.
  fs::path dir = p.parent_path();
  if (dir == root_) return p;
  auto inside = Inside(dir, shown);
  if (!inside.ok()) return inside.error();
  return inside.value() / p.filename();
}

Result<fs::path> LocalProvider::Inside(const fs::path& p, const std::string& shown) const {
  std::error_code ec;
  fs::path canon = fs::weakly_canonical(p, ec);
  if (ec) return Fail("cannot resolve " + shown + ": " + ec.message());
  if (!Contains(root_, canon) || canon == root_) {
    return Fail(shown + " resolves outside the data root '" + root_.string() + "'");
  }
  return canon;
}

// ---------------------------------------------------------------- validate

std::vector<std::string> LocalProvider::Validate(const std::string& type, const ValueMap& config) const {
  std::vector<std::string> errs;
  const ResourceSchema* schema = SchemaOf(type);
  if (!schema) return {UnknownType(type).message};
  auto name_check = [&](const char* what) {
    const Value* n = Find(config, "name");
    if (IsKnownString(n) && !ValidSegment(n->as_string()))
      errs.push_back(std::string(what) + " name " + Shown(*n, n->as_string()) +
                     " cannot be used as a directory name");
  };
  if (type == "region") {
    name_check("region");
    if (const Value* r = Find(config, "root"); IsKnownString(r)) {
      std::string why;
      if (!RelativeInside(r->as_string(), &why))
        errs.push_back("region root " + Shown(*r, r->as_string()) + " " + why);
    }
    const Value* iso = Find(config, "isolation");
    const bool namespaced = IsKnownString(iso) && iso->as_string() == "namespace";
    if (IsKnownString(iso) && iso->as_string() != "none" && !namespaced)
      errs.push_back("region isolation " + Shown(*iso, iso->as_string()) +
                     " is not one of \"none\" or \"namespace\"");
    const Value* h = Find(config, "host");
    if (namespaced) {
      if (!h || h->is_null()) {
        errs.push_back(
            "a region with isolation = \"namespace\" needs its own address: give host = \"10.x.y.z\" (e.g. "
            "host = \"10.213.1.2\"), one /24 per region");
      } else if (IsKnownString(h)) {
        if (std::string why = region_network::NamespaceHostError(h->as_string()); !why.empty())
          errs.push_back("region host " + why);
      }
      if (std::string why = region_network::NamespacePrivilegeError(); !why.empty()) errs.push_back(why);
    } else if (IsKnownString(h) && !service_config::IsLoopbackIpv4(h->as_string())) {
      errs.push_back("region host " + Shown(*h, h->as_string()) +
                     " is not a loopback address: give a 127.x.y.z address (e.g. host = \"127.0.1.1\"), or "
                     "leave it unset for 127.0.0.1 (a 10.x.y.z address needs isolation = \"namespace\")");
    }
    const Value* b = Find(config, "port_base");
    const Value* c = Find(config, "port_count");
    std::optional<int64_t> base = IntOf(b), count = IntOf(c);
    if (b && b->kind() == Value::Kind::Number && (!base || *base < 1 || *base > 65535))
      errs.push_back("port_base must be a whole number from 1 to 65535");
    if (c && c->kind() == Value::Kind::Number && (!count || *count < 1 || *count > 65535))
      errs.push_back("port_count must be a whole number from 1 to 65535");
    if (base && count && *base >= 1 && *count >= 1 && *base + *count - 1 > 65535)
      errs.push_back("port range " + PortRange(*base, *count) + " ends above 65535");
  } else if (type == "bucket") {
    name_check("bucket");
    if (const Value* r = Find(config, "region"); r && !r->is_unknown() && !r->is_null()) {
      Value ref = NormalizeRef(*r);
      const Value* n = ref.kind() == Value::Kind::Object ? Find(ref.as_object(), "name") : nullptr;
      if (!n)
        errs.push_back("'region' must refer to a region");
      else if (IsKnownString(n) && !ValidSegment(n->as_string()))
        errs.push_back("region name " + Shown(*n, n->as_string()) + " cannot be used as a directory name");
    }
    if (const Value* c = Find(config, "capacity"); c && c->kind() == Value::Kind::Size && c->as_number() <= 0)
      errs.push_back("capacity must be greater than zero");
    if (const Value* a = Find(config, "alert_at");
        a && a->kind() == Value::Kind::Percent && (a->as_number() <= 0 || a->as_number() > 100))
      errs.push_back("alert_at must be above 0% and at most 100%");
    if (const Value* g = Find(config, "grow_to"); g && g->kind() == Value::Kind::Size) {
      const Value* c = Find(config, "capacity");
      if (!c || c->is_null())
        errs.push_back("grow_to needs a capacity to grow from: set capacity (the quota it starts at)");
      else if (c->kind() == Value::Kind::Size && g->as_number() < c->as_number())
        errs.push_back("grow_to is below capacity: the quota would never grow; raise grow_to or lower capacity");
    }
  } else if (type == "pool") {
    name_check("pool");
    for (std::string& e : compute_config::ValidatePool(config)) errs.push_back(std::move(e));
  } else if (type == "job") {
    for (std::string& e : compute_config::ValidateJob(config)) errs.push_back(std::move(e));
  } else if (type == "service") {
    name_check("service");
    for (std::string& e : service_config::ValidateService(config)) errs.push_back(std::move(e));
  } else if (type == "load_balancer") {
    name_check("load balancer");
    for (std::string& e : service_config::ValidateLoadBalancer(config)) errs.push_back(std::move(e));
  } else if (type == "config_file") {
    for (std::string& e : config_file::Validate(config)) errs.push_back(std::move(e));
  } else if (type == "maintenance_window") {
    for (std::string& e : packages::ValidateWindowConfig(config)) errs.push_back(std::move(e));
  } else if (type == "package") {
    for (std::string& e : packages::ValidatePackageConfig(config)) errs.push_back(std::move(e));
  } else if (type == "marker") {
    if (const Value* p = Find(config, "path"); IsKnownString(p)) {
      std::string why;
      if (!RelativeInside(p->as_string(), &why))
        errs.push_back("marker path " + Shown(*p, p->as_string()) + " " + why);
    }
  }
  return errs;
}

// -------------------------------------------------------------------- plan

Result<PlanResponse> LocalProvider::PlanChange(const PlanRequest& request) {
  const ResourceSchema* schema = SchemaOf(request.type);
  if (!schema) return UnknownType(request.type);
  const ValueMap* prior = request.prior;
  PlanResponse r;
  r.planned = request.config;
  ValueMap& p = r.planned;
  FillBlock(schema->body, p);
  // A job keeps the identity of what it refers to ({name, id}, a bucket's
  // path): ids change with what they name, and enter the job's own id.
  if (request.type == "job") compute_config::NormalizeJobReferences(request.config, p);
  if (request.type == "service") service_config::NormalizeServiceReferences(request.config, p);
  if (request.type == "load_balancer") service_config::NormalizeLoadBalancerReferences(request.config, p);

  // An optional-computed attribute the configuration leaves out is the
  // provider's to choose: the value computed before, or (below) its default
  // now. One configured to a value only apply can know stays unknown.
  for (const std::string& name : request.unset) {
    Value& v = p[name];
    if (!v.is_unknown()) continue;
    const Value* pv = prior ? Find(*prior, name) : nullptr;
    v = pv && !pv->is_null() && !pv->ContainsUnknown() ? *pv : Value();
  }

  // Force-new attributes whose value differs, or may differ (unknown now).
  if (prior) {
    for (const auto& a : schema->body.attributes) {
      if (!a.force_new) continue;
      const Value& c = p[a.name];
      const Value* pv = Find(*prior, a.name);
      bool differs;
      if (request.type == "job" && (a.name == "reads" || a.name == "writes" || a.name == "after")) {
        differs = compute_config::RefListsDiffer(c, pv);
      } else if (request.type == "job" && a.name == "secret_env") {
        // The state holds digests of secret values, checked with the workspace key.
        std::optional<crypto::Key> key;
        if (compute_config::HoldsSecretDigests(pv)) {
          auto ws = storage::LoadWorkspaceKey(workspace_key_, /*create=*/false);
          if (ws.ok()) key = ws.value().key;
        }
        const Value* address = Find(p, "address");
        differs = compute_config::SecretEnvDiffers(c, pv, key ? &*key : nullptr,
                                                   IsKnownString(address) ? address->as_string() : "");
      } else if (!a.ref_type.empty() && c.kind() == Value::Kind::Object && pv &&
                 pv->kind() == Value::Kind::Object) {
        // A reference: the same region if the name is the same and, where both
        // are known, the path too. An unknown path alone is no reason.
        const Value* cn = Find(c.as_object(), "name");
        const Value* pn = Find(pv->as_object(), "name");
        const Value* cp = Find(c.as_object(), "path");
        const Value* pp = Find(pv->as_object(), "path");
        // A pool's id (its region's name and its own) is part of a job's reference.
        const Value* ci = Find(c.as_object(), "id");
        const Value* pi = Find(pv->as_object(), "id");
        differs = !cn || cn->ContainsUnknown() || !SameValue(cn, pn) ||
                  (cp && pp && !cp->ContainsUnknown() && !pp->ContainsUnknown() && !SameValue(cp, pp)) ||
                  (ci && pi && !SameValue(ci, pi));
      } else if (c.ContainsUnknown()) {
        differs = true;
      } else {
        differs = !SameValue(&c, pv);
      }
      if (differs) r.replace_because.push_back(a.name);
    }
  }
  bool keep_prior = prior && r.replace_because.empty();

  // Computed values: the prior ones on update; on create what the provider
  // can tell now, unknown otherwise.
  const Value* name = Find(p, "name");
  std::string n = IsKnownString(name) ? name->as_string() : "";
  auto prior_known = [&](const std::string& key) -> const Value* {
    if (!keep_prior) return nullptr;
    const Value* v = Find(*prior, key);
    return v && !v->is_null() && !v->ContainsUnknown() ? v : nullptr;
  };
  Value id = Value::Unknown(Type::String());
  if (request.type == "region") {
    Value& root = p["root"];
    if (root.is_null() && !n.empty()) root = Value::String("regions/" + n);
    if (const Value* v = prior_known("path")) {
      p["path"] = *v;
    } else if (IsKnownString(&root)) {
      std::string why;
      auto rel = RelativeInside(root.as_string(), &why);
      p["path"] = rel ? Value::String((root_ / *rel).string()) : Value::Unknown(Type::String());
    } else {
      p["path"] = Value::Unknown(Type::String());
    }
    if (!n.empty()) id = Value::String(n);
    // What apply leaves; a refresh that finds the namespace gone plans an update.
    const Value* iso = Find(p, "isolation");
    if (IsKnownString(iso))
      p["isolated"] = Value::Bool(iso->as_string() == "namespace");
    else
      p["isolated"] = Value::Unknown(Type::Bool());
  } else if (request.type == "bucket") {
    const Value& ref = p["region"];
    std::string region_name;
    std::optional<std::string> region_dir;
    if (ref.kind() == Value::Kind::Object) {
      if (const Value* rn = Find(ref.as_object(), "name"); IsKnownString(rn)) region_name = rn->as_string();
      if (const Value* rp = Find(ref.as_object(), "path"); IsKnownString(rp))
        region_dir = rp->as_string();
      else if (const Value* rr = Find(ref.as_object(), "root"); IsKnownString(rr)) {
        std::string why;
        if (auto rel = RelativeInside(rr->as_string(), &why)) region_dir = (root_ / *rel).string();
      }
    }
    if (const Value* v = prior_known("path"))
      p["path"] = *v;
    else if (region_dir && !n.empty())
      p["path"] = Value::String((fs::path(*region_dir) / "buckets" / n).string());
    else
      p["path"] = Value::Unknown(Type::String());
    if (!region_name.empty() && !n.empty()) id = Value::String(region_name + "/" + n);
  } else if (request.type == "marker") {
    if (const Value* path = Find(p, "path"); IsKnownString(path)) {
      std::string why;
      if (auto rel = RelativeInside(path->as_string(), &why)) id = Value::String(*rel);
    }
  } else if (request.type == "pool") {
    // Capacity and placement are recomputed on every plan against this
    // machine's inventory, so a plan shows what a change adds or releases.
    compute::Inventory inventory;
    std::string error;
    if (!compute::DiscoverInventory(&inventory, &error))
      return Fail("cannot plan pool '" + n + "': " + error);
    // The patch's window keeps the settings its agents decide by (FillBlock
    // kept only the reference's name).
    if (const Value* cp = Find(request.config, "patch"); cp && cp->kind() == Value::Kind::Object) {
      if (auto it = p.find("patch"); it != p.end() && it->second.kind() == Value::Kind::Object) {
        ValueMap o = it->second.as_object();
        packages::NormalizeWindowReference(cp->as_object(), o);
        it->second = Value::Object(std::move(o));
      }
    }
    compute_config::PlanPool(p, inventory);
    id = p["id"];
    const Value* nodes = prior_known("nodes");
    p["nodes"] = nodes ? *nodes : Value::Unknown(Type::Int());
    PlanPoolPatch(p, prior, &r.notes);
  } else if (request.type == "service") {
    service_config::PlanService(p);
    id = p["id"];
    // The state holds digests of secret values: the same values plan no change.
    if (prior) {
      const Value* pv = Find(*prior, "secret_env");
      std::optional<crypto::Key> key;
      if (compute_config::HoldsSecretDigests(pv)) {
        auto ws = storage::LoadWorkspaceKey(workspace_key_, /*create=*/false);
        if (ws.ok()) key = ws.value().key;
      }
      const Value* address = Find(p, "address");
      if (pv && !compute_config::SecretEnvDiffers(p["secret_env"], pv, key ? &*key : nullptr,
                                                  IsKnownString(address) ? address->as_string() : ""))
        p["secret_env"] = *pv;
    }
    // A rollout that failed and was rolled back: a plan that changes what
    // runs says why before the change is tried again.
    auto differs = [&](const char* k) {
      const Value* a = Find(p, k);
      const Value* b = prior ? Find(*prior, k) : nullptr;
      return !a || !b || !a->Equals(*b);
    };
    if (prior && (differs("version") || differs("command") || differs("env") || differs("secret_env"))) {
      const Value* sid = Find(p, "id");
      auto store = IsKnownString(sid) ? Services(false) : Result<controller::ServiceStore*>(nullptr);
      if (store.ok() && store.value()) {
        if (auto rb = store.value()->LastRollback(sid->as_string()))
          r.notes.push_back(service_config::RollbackNote(*rb));
      }
    }
    // A change that replaces replicas waits for the service's maintenance
    // window: apply records it and it rolls out when the window opens
    // (docs/services.md, "Changes inside a maintenance window").
    packages::NormalizeWindowReference(request.config, p);
    PlanServiceWindow(p, prior, &r.notes);
    // Replicas run as Plinth's user unless `user` says otherwise: say so
    // when that is root (at create, or when user is dropped).
    if (const Value* u = Find(p, "user");
        (!u || u->is_null()) && ::geteuid() == 0 && (!prior || differs("user")))
      r.notes.push_back(
          "its replicas will run as root, because Plinth does and user is unset: set user = \"nobody\" (or "
          "an "
          "account of their own) to run them unprivileged");
    // Replicas that died while nothing supervised them: an update restarts them.
    const Value* running = prior ? Find(*prior, "replicas_running") : nullptr;
    const Value* endpoints = Find(p, "endpoints");
    const Value* autoscale = Find(p, "autoscale");
    const Value* regions = Find(p, "regions");
    const Value* replicas = Find(p, "replicas");
    if (autoscale && autoscale->kind() == Value::Kind::Object && regions &&
        regions->kind() == Value::Kind::List && !regions->ContainsUnknown() && replicas &&
        replicas->kind() == Value::Kind::Number) {
      // Autoscaled: as many as the controller decided per region (endpoints cover up to max).
      std::map<std::string, int> scale;
      const Value* sid = Find(p, "id");
      auto store = IsKnownString(sid) ? Services(false) : Result<controller::ServiceStore*>(nullptr);
      if (store.ok() && store.value()) scale = store.value()->Scale(sid->as_string());
      std::vector<std::string> ignored;
      auto spec = service_config::AutoscaleOf(p, &ignored);
      double n = 0;
      for (const Value& r : regions->as_list()) {
        const Value* name = r.kind() == Value::Kind::Object ? Find(r.as_object(), "name") : nullptr;
        auto it = IsKnownString(name) ? scale.find(name->as_string()) : scale.end();
        n += it != scale.end() && spec ? std::clamp(it->second, spec->spec.min, spec->spec.max)
                                       : replicas->as_number();
      }
      p["replicas_running"] = Value::Number(n);
    } else if (endpoints && endpoints->kind() == Value::Kind::List)
      p["replicas_running"] = Value::Number(static_cast<double>(endpoints->as_list().size()));
    else
      p["replicas_running"] = running && !running->ContainsUnknown() ? *running : Value::Unknown(Type::Int());
  } else if (request.type == "config_file") {
    config_file::Plan(p, keep_prior ? prior : nullptr, FileContext());
    id = p["id"];
  } else if (request.type == "load_balancer") {
    service_config::PlanLoadBalancer(p);
    id = p["id"];
    p["running"] = Value::Bool(true);  // what apply leaves; a refresh that finds it stopped plans an update
  } else if (request.type == "maintenance_window") {
    if (!n.empty()) id = Value::String(n);
  } else if (request.type == "package") {
    // Changes only inside the package's window; outside it the plan keeps what is installed (packages.h).
    packages::NormalizeWindowReference(request.config, p);
    packages::Machine machine(&p);
    auto planned = packages::PlanPackage(p, prior, machine.context(), &r.notes);
    if (!planned.ok()) return planned.error();
    id = p["id"];
  } else if (request.type == "job") {
    compute_config::PlanJob(p);
    id = p["id"];
    // The same run: secret values equal the recorded digests, which stay
    // (planning the values would show a change where there is none).
    if (keep_prior) {
      if (const Value* v = Find(*prior, "secret_env")) p["secret_env"] = *v;
    }
    // What the job's run reports: the recorded values while the run is the
    // same, unknown for a new run.
    for (const auto& a : schema->body.attributes) {
      if (a.mode != AttrMode::Computed || a.name == "id") continue;
      const Value* v = keep_prior ? Find(*prior, a.name) : nullptr;
      p[a.name] = v && !v->ContainsUnknown() ? *v : Value::Unknown(a.type);
    }
  }
  if (const Value* v = prior_known("id")) id = *v;
  p["id"] = id;
  return r;
}

// What apply's creates and updates would refuse (CheckRegionPlacement, a
// bucket or region that exists already, two markers writing one file),
// found from the planned values of the whole plan at once.
std::vector<PlanConflict> LocalProvider::CheckPlan(const std::vector<PlanItem>& items) {
  std::vector<PlanConflict> out;
  struct Region {
    const PlanItem* item;
    std::optional<int64_t> base, count;
    std::string path;  // lexically normal; empty when unknown
    std::string host;  // 127.0.0.1 when unset; empty when unknown
    bool namespaced = false;
  };
  std::vector<Region> regions;
  // Resources of one type that would be the same object: id -> first address.
  std::map<std::pair<std::string, std::string>, const PlanItem*> ids;
  for (const PlanItem& item : items) {
    if (!item.planned) continue;
    const ValueMap& p = *item.planned;
    if (const Value* id = Find(p, "id"); IsKnownString(id)) {
      auto [at, fresh] = ids.emplace(std::make_pair(item.type, id->as_string()), &item);
      if (!fresh) {
        const PlanItem& first = *at->second;
        std::string what =
            item.type == "marker" || item.type == "config_file"
                ? "both write the file '" + id->as_string() + "'; give each its own path"
            : item.type == "bucket"
                ? "are both bucket '" + id->as_string() +
                      "' (same region and name); rename one of them or place it in another region"
            : item.type == "pool"
                ? "are both pool '" + id->as_string() +
                      "' (same region and name); rename one of them or place it in another region"
            : item.type == "job" ? "are both job '" + id->as_string() +
                                       "' (same pool, name and configuration); rename one of them"
                                 : "are both region '" + id->as_string() +
                                       "' (region names are unique per data root); rename one of them";
        // The one not applied yet is the one to change.
        const PlanItem& change = item.existing && !first.existing ? first : item;
        const PlanItem& other = &change == &item ? first : item;
        out.push_back(
            {{change.address, other.address}, change.address + " and " + other.address + " " + what});
      }
    }
    if (item.type != "region") continue;
    Region r{&item, IntOf(Find(p, "port_base")), IntOf(Find(p, "port_count")), "", ""};
    if (const Value* h = Find(p, "host"); !h || h->is_null())
      r.host = "127.0.0.1";
    else if (IsKnownString(h))
      r.host = h->as_string();
    if (const Value* path = Find(p, "path"); IsKnownString(path))
      r.path = fs::path(path->as_string()).lexically_normal().string();
    while (r.path.size() > 1 && r.path.back() == '/') r.path.pop_back();
    const Value* iso = Find(p, "isolation");
    r.namespaced = IsKnownString(iso) && iso->as_string() == "namespace";
    regions.push_back(std::move(r));
  }
  // The region of a pair to change: one not applied yet, else the later one.
  auto blame = [](const Region& a, const Region& b) -> std::pair<const Region*, const Region*> {
    if (b.item->existing && !a.item->existing) return {&a, &b};
    return {&b, &a};
  };

  // Port ranges, swept in order of their first port: each range is checked
  // against the one reaching furthest among those before it.
  // Regions on different loopback hosts may use the same ports: the sweep
  // runs per host (an unknown host is checked against every host).
  std::vector<const Region*> by_port;
  int64_t highest_end = 0;
  for (const Region& r : regions) {
    if (!r.base || !r.count) continue;
    by_port.push_back(&r);
    highest_end = std::max(highest_end, *r.base + *r.count);
  }
  std::stable_sort(by_port.begin(), by_port.end(),
                   [](const Region* a, const Region* b) { return *a->base < *b->base; });
  std::map<std::string, const Region*> reach_by_host;
  for (const Region* r : by_port) {
    const Region* reach = nullptr;
    for (const auto& [host, far] : reach_by_host) {
      if (!r->host.empty() && !host.empty() && host != r->host) continue;
      if (!reach || *far->base + *far->count > *reach->base + *reach->count) reach = far;
    }
    if (reach && *r->base < *reach->base + *reach->count) {
      auto [change, other] = blame(*reach, *r);
      std::string fix = "set port_base on one of them so the ranges do not overlap";
      if (highest_end + *change->count <= 65536)
        fix +=
            " (for example port_base = " + std::to_string(highest_end) + " on " + change->item->address + ")";
      out.push_back({{change->item->address, other->item->address},
                     "port range " + PortRange(*change->base, *change->count) + " of " +
                         change->item->address + " overlaps " + other->item->address + " (" +
                         PortRange(*other->base, *other->count) + "); " + fix});
    }
    const Region*& mine = reach_by_host[r->host];
    if (!mine || *r->base + *r->count > *mine->base + *mine->count) mine = r;
  }

  // Namespaced regions: one /24 each (the host side of each link owns X.Y.Z.1).
  std::map<std::string, const Region*> by_subnet;
  for (const Region& r : regions) {
    if (!r.namespaced || r.host.empty()) continue;
    auto subnet = region_network::Subnet24(r.host);
    if (!subnet) continue;
    auto [at, fresh] = by_subnet.emplace(*subnet, &r);
    if (fresh) continue;
    auto [change, other] = blame(*at->second, r);
    out.push_back({{change->item->address, other->item->address},
                   change->item->address + " (host " + change->host + ") and " + other->item->address +
                       " (host " + other->host + ") are both in " + *subnet +
                       ".0/24; namespaced regions need a /24 each: give " + change->item->address +
                       " a host in another /24"});
  }

  // Roots: the same directory, or one inside another. Sorted with '/'
  // first, a directory comes right before everything inside it.
  std::vector<const Region*> by_path;
  for (const Region& r : regions)
    if (!r.path.empty()) by_path.push_back(&r);
  auto key = [](const std::string& s) {
    std::string k = s;
    std::replace(k.begin(), k.end(), '/', '\x01');
    return k;
  };
  std::stable_sort(by_path.begin(), by_path.end(),
                   [&](const Region* a, const Region* b) { return key(a->path) < key(b->path); });
  const Region* outer = nullptr;
  for (const Region* r : by_path) {
    if (outer && Contains(outer->path, r->path)) {
      auto [change, other] = blame(*outer, *r);
      std::string why = outer->path == r->path ? "has the same root as " + other->item->address
                        : change == r          ? "has its root inside the root of " + other->item->address
                                               : "has its root around the root of " + other->item->address;
      out.push_back({{change->item->address, other->item->address},
                     change->item->address + " (" + RootRelative(change->path) + ") " + why + " (" +
                         RootRelative(other->path) + "); regions are isolated directories: set root on " +
                         change->item->address + " to a directory of its own"});
      continue;
    }
    outer = r;
  }
  for (PlanConflict& c : packages::CheckPackages(items)) out.push_back(std::move(c));
  return out;
}

// ------------------------------------------------------------------ regions

fs::path LocalProvider::RegionDirFor(const std::string& name, const ValueMap* hint) const {
  if (hint) {
    if (const Value* path = Find(*hint, "path"); IsKnownString(path)) return fs::path(path->as_string());
    if (const Value* r = Find(*hint, "root"); IsKnownString(r)) {
      std::string why;
      if (auto rel = RelativeInside(r->as_string(), &why)) return root_ / *rel;
    }
  }
  FileRead idx = ReadFile(root_, root_ / kIndexDir / "regions" / (name + ".json"), false);
  if (idx.content) {
    json j = json::parse(*idx.content, nullptr, false);
    if (j.is_object() && j.contains("root") && j["root"].is_string()) {
      std::string why;
      if (auto rel = RelativeInside(j["root"].get<std::string>(), &why)) return root_ / *rel;
    }
  }
  return root_ / "regions" / name;
}

Result<LocalProvider::RegionInfo> LocalProvider::LoadRegion(const std::string& name,
                                                            const fs::path& dir) const {
  RegionInfo r;
  r.name = name;
  r.dir = dir;
  fs::path meta_path = dir / kRegionMeta;
  FileRead meta = ReadFile(root_, meta_path, false);
  if (meta.error) return *meta.error;
  if (!meta.content) return Fail("no region '" + name + "' at '" + dir.string() + "'");
  json j = json::parse(*meta.content, nullptr, false);
  auto bad = [&](const std::string& why) {
    return Fail("region metadata '" + meta_path.string() + "' is unreadable: " + why);
  };
  if (!j.is_object()) return bad("not a JSON object");
  if (!j.contains("name") || !j["name"].is_string() || j["name"] != name)
    return Fail("'" + dir.string() + "' holds another region than '" + name + "'");
  if (!j.contains("root") || !j["root"].is_string()) return bad("no root");
  if (!j.contains("port_base") || !j["port_base"].is_number_integer()) return bad("no port_base");
  if (!j.contains("port_count") || !j["port_count"].is_number_integer()) return bad("no port_count");
  r.root = j["root"].get<std::string>();
  r.port_base = j["port_base"].get<int64_t>();
  r.port_count = j["port_count"].get<int64_t>();
  if (j.contains("address") && j["address"].is_string()) r.address = j["address"].get<std::string>();
  if (j.contains("host") && j["host"].is_string()) r.host = j["host"].get<std::string>();
  if (j.contains("labels")) {
    ValueFromJsonResult labels = ValueFromJson(j["labels"]);
    if (!labels.ok()) return bad("labels: " + labels.error);
    r.labels = labels.value;
  }
  r.down = Exists(dir / kDownFile);
  r.namespaced = j.contains("isolation") && j["isolation"] == "namespace";
  return r;
}

std::vector<LocalProvider::RegionInfo> LocalProvider::ListRegions() const {
  std::vector<RegionInfo> out;
  std::error_code ec;
  for (fs::directory_iterator it(root_ / kIndexDir / "regions", ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string file = it->path().filename().string();
    if (file.size() <= 5 || file.compare(file.size() - 5, 5, ".json") != 0 || file[0] == '.') continue;
    std::string name = file.substr(0, file.size() - 5);
    auto r = LoadRegion(name, RegionDirFor(name, nullptr));
    if (r.ok()) out.push_back(std::move(r.value()));  // a stale index entry (no metadata) is no region
  }
  return out;
}

std::vector<LocalProvider::RegionSummary> LocalProvider::Regions() const {
  std::shared_lock lock(regions_mu_);
  std::vector<RegionSummary> out;
  for (const RegionInfo& r : ListRegions())
    out.push_back({r.name, r.host.empty() ? "127.0.0.1" : r.host, r.dir, r.namespaced, r.down});
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

std::vector<std::string> LocalProvider::CheckRegionPlacement(const RegionInfo& c) const {
  std::vector<std::string> errs;
  for (const RegionInfo& o : ListRegions()) {
    if (o.name == c.name) continue;
    if (Contains(o.dir, c.dir) || Contains(c.dir, o.dir))
      errs.push_back("region '" + c.name + "' at '" + c.root + "' overlaps the directory of region '" +
                     o.name + "' at '" + o.root + "': regions are isolated directories");
    // Regions on different loopback hosts may use the same ports.
    const std::string ch = c.host.empty() ? "127.0.0.1" : c.host, oh = o.host.empty() ? "127.0.0.1" : o.host;
    if (ch == oh && c.port_base < o.port_base + o.port_count && o.port_base < c.port_base + c.port_count)
      errs.push_back("port range " + PortRange(c.port_base, c.port_count) + " of region '" + c.name +
                     "' overlaps region '" + o.name + "' (" + PortRange(o.port_base, o.port_count) + ")");
  }
  return errs;
}

ResourceObject LocalProvider::RegionObject(const RegionInfo& r, const ValueMap* carry) const {
  ResourceObject o;
  o.id = r.name;
  ValueMap& a = o.attributes;
  a["id"] = Value::String(r.name);
  a["name"] = Value::String(r.name);
  if (!r.address.empty()) a["address"] = Value::String(r.address);
  a["root"] = Value::String(r.root);
  a["path"] = Value::String(r.dir.string());
  a["port_base"] = Value::Number(static_cast<double>(r.port_base));
  a["port_count"] = Value::Number(static_cast<double>(r.port_count));
  a["host"] = r.host.empty() ? Value() : Value::String(r.host);
  a["down"] = Value::Bool(r.down);
  a["isolation"] = Value::String(r.namespaced ? "namespace" : "none");
  a["isolated"] = Value::Bool(r.namespaced && region_network::Intact(Network(r)));
  a["labels"] = r.labels;
  Carry(carry, a);
  return o;
}

// The planned attributes of a write, with defaults filled in, validated,
// and every attribute known (the engine defers what is not).
// A bucket id "REGION/BUCKET" split into its two names.
Result<std::pair<std::string, std::string>> ParseBucketId(const std::string& id) {
  size_t slash = id.find('/');
  std::string region_name = slash == std::string::npos ? "" : id.substr(0, slash);
  std::string bucket = slash == std::string::npos ? "" : id.substr(slash + 1);
  if (!ValidSegment(region_name) || !ValidSegment(bucket))
    return Fail("bucket id '" + id + "' is not REGION/BUCKET");
  return std::make_pair(region_name, bucket);
}

Result<ValueMap> PrepareForWrite(const LocalProvider& provider, const std::string& type,
                                 const ValueMap& planned) {
  const ResourceSchema* schema = SchemaOf(type);
  ValueMap p = planned;
  FillBlock(schema->body, p);
  if (auto errs = provider.Validate(type, p); !errs.empty()) return Fail(errs.front());
  if (std::string u = FirstUnknown(schema->body, p); !u.empty())
    return Fail(type + " attribute '" + u + "' is not known at apply time");
  return p;
}

Result<ResourceObject> LocalProvider::WriteRegion(const ValueMap& planned, bool creating) {
  auto prepared = PrepareForWrite(*this, "region", planned);
  if (!prepared.ok()) return prepared.error();
  ValueMap p = std::move(prepared.value());
  const Value* name = Find(p, "name");
  if (!IsKnownString(name) || !ValidSegment(name->as_string())) return Fail("a region needs a known name");
  RegionInfo r;
  r.name = name->as_string();
  if (const Value* addr = Find(p, "address"); IsKnownString(addr)) r.address = addr->as_string();
  const Value* root = Find(p, "root");
  std::string why;
  auto rel = RelativeInside(IsKnownString(root) ? root->as_string() : "regions/" + r.name, &why);
  if (!rel) return Fail("region root " + why);
  r.root = *rel;
  auto dir = Inside(root_ / r.root, "region root '" + r.root + "'");
  if (!dir.ok()) return dir.error();
  r.dir = dir.value();
  r.port_base = IntOf(Find(p, "port_base")).value_or(20000);
  r.port_count = IntOf(Find(p, "port_count")).value_or(1000);
  if (const Value* h = Find(p, "host"); IsKnownString(h)) r.host = h->as_string();
  const Value* down = Find(p, "down");
  r.down = down && down->kind() == Value::Kind::Bool && down->as_bool();
  const Value* iso = Find(p, "isolation");
  r.namespaced = IsKnownString(iso) && iso->as_string() == "namespace";
  if (const Value* l = Find(p, "labels")) r.labels = *l;

  std::unique_lock lock(regions_mu_);
  std::optional<RegionInfo> was;  // on update: the region as it was
  if (creating) {
    auto existing = LoadRegion(r.name, RegionDirFor(r.name, nullptr));
    if (existing.ok()) {
      ProviderError e = Fail("region '" + r.name + "' already exists at '" + existing.value().root + "'" +
                             (existing.value().address.empty() ? "" : " (" + existing.value().address + ")") +
                             "; region names are unique per data root");
      e.import_id = r.name;
      return e;
    }
    if (Exists(r.dir / kRegionMeta)) return Fail("'" + r.root + "' already holds another region");
  } else {
    auto existing = LoadRegion(r.name, r.dir);
    if (!existing.ok()) return Fail("region '" + r.name + "' no longer exists at '" + r.root + "'");
    if (r.address.empty()) r.address = existing.value().address;
    was = std::move(existing.value());
  }
  if (auto errs = CheckRegionPlacement(r); !errs.empty()) return Fail(errs.front());

  int e = 0;
  if (!MakeDirs(r.dir / "buckets", &e)) return IoFail("create", ErrnoPath(r.dir, false), e);
  if (r.down) {
    if (!Exists(r.dir / kDownFile)) {
      if (auto err = WriteFileAtomic(r.dir / kDownFile,
                                     "this region is marked down; nothing is placed in it\n", false))
        return *err;
    }
  } else if (auto err = RemoveFile(r.dir / kDownFile, false)) {
    return *err;
  }
  fs::path index_dir = root_ / kIndexDir / "regions";
  if (!MakeDirs(index_dir, &e)) return IoFail("create", ErrnoPath(index_dir, false), e);
  json idx = {{"format", kFormat}, {"root", r.root}};
  if (auto err = WriteFileAtomic(index_dir / (r.name + ".json"), idx.dump(2) + "\n", false)) return *err;
  ValueJsonResult labels = ValueToJson(r.labels);
  if (!labels.ok()) return Fail("region labels cannot be stored: " + labels.error);
  json meta = {{"format", kFormat},    {"name", r.name},           {"address", r.address},
               {"root", r.root},       {"port_base", r.port_base}, {"port_count", r.port_count},
               {"labels", labels.json}};
  if (!r.host.empty()) meta["host"] = r.host;
  if (r.namespaced) meta["isolation"] = "namespace";
  // The network first: metadata that says "namespace" has one (or had one
  // that a refresh will find gone).
  if (was && was->namespaced && (!r.namespaced || was->host != r.host)) {
    std::string error;
    if (!region_network::Remove(Network(*was), &error)) return Fail(error);
  }
  if (r.namespaced) {
    std::string error;
    if (!region_network::Create(Network(r), &error)) return Fail(error);
  }
  if (auto err = WriteFileAtomic(r.dir / kRegionMeta, meta.dump(2) + "\n", false)) return *err;
  return RegionObject(r, &planned);
}

// ------------------------------------------------------------------ buckets

namespace {

// Which region a bucket's `region` value points at.
struct RegionRef {
  std::string name;
  const ValueMap* hint = nullptr;  // path/root, when the reference carries them
};

std::optional<RegionRef> RefOf(const Value* v) {
  if (!v || v->kind() != Value::Kind::Object) return std::nullopt;
  const Value* n = Find(v->as_object(), "name");
  if (!IsKnownString(n) || !ValidSegment(n->as_string())) return std::nullopt;
  return RegionRef{n->as_string(), &v->as_object()};
}

// The bucket's settings as stored in its metadata file (everything the user
// configures; `path` and the identity are derived).
const std::vector<std::string>& StoredBucketKeys() {
  static const std::vector<std::string> keys = {"capacity",   "alert_at", "encryption",
                                                "versioning", "labels",   "lifecycle_rule",
                                                "backup",     "grant",    "force_destroy",
                                                "grow_to"};
  return keys;
}

}  // namespace

namespace {

// The metadata file of a bucket, read beneath its region's directory (no
// symlink followed). nullopt: missing, a symlink, or not a metadata object.
struct BucketMeta {
  std::string id, region, bucket, address, key;
  ValueMap attributes;
};

Result<std::optional<BucketMeta>> ReadBucketMeta(const fs::path& region_dir, const std::string& bucket) {
  std::string text;
  fs::path rel = fs::path("buckets") / bucket / kBucketMeta;
  int e = io::ReadFileBeneath(region_dir, rel, &text, 4u << 20);
  if (e == ENOENT || e == ELOOP || e == EINVAL || e == EISDIR) return std::optional<BucketMeta>();
  if (e) return IoFail("read", ErrnoPath(region_dir / rel, false), e);
  json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("attributes") || !j["attributes"].is_object())
    return Fail("bucket metadata '" + (region_dir / rel).string() + "' is unreadable: not a metadata object");
  BucketMeta m;
  auto str = [&](const char* k) { return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : ""; };
  m.id = str("id");
  m.region = str("region");
  m.bucket = str("bucket");
  m.address = str("address");
  m.key = str("key");
  for (const auto& k : StoredBucketKeys()) {
    if (!j["attributes"].contains(k)) continue;
    ValueFromJsonResult v = ValueFromJson(j["attributes"][k]);
    if (!v.ok())
      return Fail("bucket metadata '" + (region_dir / rel).string() + "' is unreadable: " + k + ": " +
                  v.error);
    m.attributes[k] = v.value;
  }
  if (!m.attributes.count("force_destroy") || m.attributes["force_destroy"].is_null())
    m.attributes["force_destroy"] = Value::Bool(false);  // written before it existed
  return std::optional<BucketMeta>(std::move(m));
}

// Whether metadata `m` of bucket `id` agrees with `prior` on identity, key
// and every stored setting.
bool MetaAgrees(const BucketMeta& m, const std::string& id, const std::string& region,
                const std::string& bucket, const ValueMap& prior) {
  if (m.id != id || m.region != region || m.bucket != bucket) return false;
  const Value* k = Find(prior, "key");
  if (IsKnownString(k) && k->as_string() != m.key) return false;
  for (const auto& key : StoredBucketKeys()) {
    const Value* want = Find(prior, key);
    Value w = want ? *want : Value();
    if (key == "force_destroy" && w.is_null()) w = Value::Bool(false);
    if (w.is_unknown()) return false;
    auto it = m.attributes.find(key);
    Value have = it == m.attributes.end() ? Value() : it->second;
    if (!have.Equals(w)) return false;
  }
  return true;
}

}  // namespace

Result<std::optional<ResourceObject>> LocalProvider::ReadBucketAt(const std::string& region_name,
                                                                  const fs::path& region_dir,
                                                                  const std::string& bucket_name,
                                                                  const ValueMap* prior) const {
  fs::path dir = region_dir / "buckets" / bucket_name;
  if (!IsDir(dir)) return std::optional<ResourceObject>();
  ResourceObject o;
  o.id = region_name + "/" + bucket_name;
  ValueMap& a = o.attributes;
  a["id"] = Value::String(o.id);
  a["name"] = Value::String(bucket_name);
  a["region"] =
      Value::Object({{"name", Value::String(region_name)}, {"path", Value::String(region_dir.string())}});
  a["path"] = Value::String(dir.string());
  for (const auto& k : StoredBucketKeys()) a[k] = Value();
  auto meta = ReadBucketMeta(region_dir, bucket_name);
  if (!meta.ok()) return meta.error();
  // The metadata file lies in the bucket's directory, which jobs can write:
  // it is believed only where it agrees with the state. A file that
  // disagrees (or names another bucket) reads like a missing one: every
  // setting unset, so refresh never adopts what a writer of the bucket put
  // there (grants, lifecycle rules, force_destroy), and the next apply
  // rewrites it from the configuration.
  const std::optional<BucketMeta>& m = meta.value();
  bool trusted =
      m && (prior && !prior->empty() ? MetaAgrees(*m, o.id, region_name, bucket_name, *prior)
                                     : m->id == o.id && m->region == region_name && m->bucket == bucket_name);
  if (trusted) {
    for (const auto& k : StoredBucketKeys()) {
      if (auto it = m->attributes.find(k); it != m->attributes.end()) a[k] = it->second;
    }
    if (!m->address.empty()) a["address"] = Value::String(m->address);
  }
  // The key: the state's; a file's only when there is no state (import),
  // and then it opens only for this bucket id (keys.h binds it).
  if (const Value* k = prior ? Find(*prior, "key") : nullptr; IsKnownString(k)) {
    a["key"] = k->WithSensitive();
  } else if (trusted && !m->key.empty()) {
    a["key"] = Value::String(m->key).WithSensitive();
  }
  // A backup repository that is gone reads as no backup: drift that the next
  // apply repairs by creating a new, empty repository.
  if (const Value* b = Find(a, "backup"); b && b->kind() == Value::Kind::Object) {
    const Value* to = Find(b->as_object(), "to");
    const Value* to_path = to && to->kind() == Value::Kind::Object ? Find(to->as_object(), "path") : nullptr;
    if (IsKnownString(to_path) &&
        !Exists(storage::BackupRepositoryPath(to_path->as_string(), region_name, bucket_name) / "config")) {
      a["backup"] = Value();
    }
  }
  Carry(prior, a);
  return std::optional<ResourceObject>(std::move(o));
}

std::optional<ProviderError> LocalProvider::EnsureBackupRepository(const std::string& region,
                                                                   const std::string& bucket,
                                                                   const ValueMap& settings,
                                                                   const std::string& wrapped_key,
                                                                   bool* created) const {
  std::string id = region + "/" + bucket;
  storage::BucketInfo info;
  info.id = id;
  info.region = region;
  info.name = bucket;
  storage::ApplySettings(settings, info);
  if (!info.backup) return std::nullopt;
  auto ws = storage::LoadWorkspaceKey(workspace_key_, /*create=*/false);
  if (!ws.ok()) return ws.error();
  auto key = storage::UnwrapKey(ws.value(), wrapped_key, id);
  if (!key.ok()) return key.error();
  auto repo = storage::BackupRepository(info, key.value());
  if (!repo.ok()) return Fail("cannot prepare the backup of bucket '" + id + "': " + repo.error().message);
  *created = !Exists(info.backup->repository);
  int e = 0;
  if (!MakeDirs(info.backup->repository.parent_path(), &e))
    return IoFail("create", ErrnoPath(info.backup->repository.parent_path(), false), e);
  auto init = repo.value().Init();
  if (!init.ok()) {
    return Fail("cannot create the backup repository of bucket '" + id + "' at '" +
                    info.backup->repository.string() + "': " + init.error().message,
                init.error().retryable);
  }
  return std::nullopt;
}

Result<ResourceObject> LocalProvider::WriteBucket(const ValueMap& planned, const ValueMap* prior) {
  auto prepared = PrepareForWrite(*this, "bucket", planned);
  if (!prepared.ok()) return prepared.error();
  ValueMap p = std::move(prepared.value());
  const Value* name = Find(p, "name");
  if (!IsKnownString(name) || !ValidSegment(name->as_string())) return Fail("a bucket needs a known name");
  std::string bucket = name->as_string();
  Value region_value = NormalizeRef(p["region"]);
  std::optional<RegionRef> ref = RefOf(&region_value);
  if (!ref) return Fail("bucket '" + bucket + "' needs a known region");

  std::shared_lock regions(regions_mu_);
  std::lock_guard buckets(buckets_mu_);
  fs::path hinted = RegionDirFor(ref->name, ref->hint);
  auto region_dir = Inside(hinted, "the directory of region '" + ref->name + "'");
  if (!region_dir.ok()) return region_dir.error();
  auto region = LoadRegion(ref->name, region_dir.value());
  if (!region.ok())
    return Fail("region '" + ref->name + "' does not exist (no region at '" + hinted.string() + "')");
  if (region.value().down) return Fail("region '" + ref->name + "' is down");
  std::string id = ref->name + "/" + bucket;
  auto dir = Inside(region_dir.value() / "buckets" / bucket, "bucket '" + id + "'");
  if (!dir.ok()) return dir.error();

  // A half-made bucket of this very id (a create that failed or was killed
  // after writing the metadata: no object, nothing stored) is adopted with
  // its key, so an interrupted apply can be run again.
  std::string adopted_key;
  bool made_dir = false;
  if (!prior) {
    // A directory left by an interrupted create (empty, no metadata) is reused;
    // anything else there is somebody's data.
    if (Exists(dir.value() / kBucketMeta)) {
      auto meta = ReadBucketMeta(region_dir.value(), bucket);
      bool half_made = meta.ok() && meta.value() && meta.value()->id == id &&
                       meta.value()->region == ref->name && meta.value()->bucket == bucket &&
                       CountFiles(dir.value(), {kBucketMeta}) == 0 &&
                       CountFiles(storage::StoreDirFor(region_dir.value(), bucket), {}) == 0;
      if (half_made) {
        // Its key must open for this id with this workspace's key: a file
        // copied from elsewhere does not.
        auto ws = storage::LoadWorkspaceKey(workspace_key_, /*create=*/false);
        half_made = ws.ok() && storage::UnwrapKey(ws.value(), meta.value()->key, id).ok();
      }
      if (!half_made) {
        ProviderError e = Fail("bucket '" + id + "' already exists at '" + dir.value().string() + "'");
        e.import_id = id;
        return e;
      }
      adopted_key = meta.value()->key;
    } else if (IsDir(dir.value())) {
      if (size_t n = CountFiles(dir.value(), {}); n > 0) {
        ProviderError e = Fail("'" + dir.value().string() + "' already holds " + FilesText(n) +
                               " of bucket '" + id + "', which Plinth did not create");
        e.import_id = id;
        return e;
      }
    } else if (Exists(dir.value())) {
      return Fail("'" + dir.value().string() + "' exists and is not a directory");
    } else {
      made_dir = true;
    }
  } else if (!IsDir(dir.value())) {
    return Fail("bucket '" + id + "' no longer exists at '" + dir.value().string() + "'");
  }
  // The backup region, resolved now (it may have been created in this same
  // apply), so the metadata names the repository's directory.
  if (Value& b = p["backup"]; b.kind() == Value::Kind::Object) {
    ValueMap bm = b.as_object();
    Value to = NormalizeRef(bm["to"]);
    std::optional<RegionRef> tref = RefOf(&to);
    if (!tref) return Fail("the backup of bucket '" + id + "' needs a known region in 'to'");
    if (tref->name == ref->name) {
      return Fail("the backup of bucket '" + id + "' must go to another region than '" + ref->name +
                  "' (a backup in the same region is lost with it)");
    }
    auto to_dir =
        Inside(RegionDirFor(tref->name, tref->hint), "the directory of region '" + tref->name + "'");
    if (!to_dir.ok()) return to_dir.error();
    if (!LoadRegion(tref->name, to_dir.value()).ok()) {
      return Fail("backup region '" + tref->name + "' of bucket '" + id + "' does not exist");
    }
    bm["to"] = Value::Object(
        {{"name", Value::String(tref->name)}, {"path", Value::String(to_dir.value().string())}});
    b = Value::Object(std::move(bm));
  }
  int e = 0;
  if (!MakeDirs(dir.value(), &e)) return IoFail("create", ErrnoPath(dir.value(), false), e);
  json attrs = json::object();
  for (const auto& k : StoredBucketKeys()) {
    ValueJsonResult v = ValueToJson(p[k]);
    if (!v.ok()) return Fail("bucket attribute '" + k + "' cannot be stored: " + v.error);
    attrs[k] = v.json;
  }
  // The bucket's data key (runtime/storage/keys.h): kept for the bucket's
  // life (the state's; never the metadata file's); a new one only for a new
  // bucket (or the one of the half-made bucket adopted above).
  std::string key = adopted_key;
  if (const Value* k = prior ? Find(*prior, "key") : nullptr; IsKnownString(k)) key = k->as_string();
  if (key.empty() && prior) {
    // A bucket imported from a directory, or recorded before keys existed:
    // the metadata's key when it is this bucket's (it opens for this id with
    // the workspace key), else a new one below.
    auto meta = ReadBucketMeta(region_dir.value(), bucket);
    auto ws = storage::LoadWorkspaceKey(workspace_key_, /*create=*/false);
    if (meta.ok() && meta.value() && !meta.value()->key.empty() && ws.ok() &&
        storage::UnwrapKey(ws.value(), meta.value()->key, id).ok()) {
      key = meta.value()->key;
    }
  }
  if (key.empty()) {
    auto ws = storage::LoadWorkspaceKey(workspace_key_, /*create=*/true);
    if (!ws.ok()) return ws.error();
    auto wrapped = storage::NewWrappedKey(ws.value(), id);
    if (!wrapped.ok()) return wrapped.error();
    key = wrapped.value();
  }
  const Value* addr = Find(p, "address");
  json meta = {{"format", kFormat},
               {"id", id},
               {"region", ref->name},
               {"bucket", bucket},
               {"address", IsKnownString(addr) ? addr->as_string() : ""},
               {"key", key},
               {"attributes", attrs}};
  {
    // Written through a handle on the bucket's directory opened beneath its
    // region's (a symlink standing in for the directory is not followed).
    storage::BeneathDir bdir;
    if (int e =
            storage::BeneathDir::Open(region_dir.value(), fs::path("buckets") / bucket, false, 0, &bdir)) {
      if (e == ELOOP)
        return Fail("bucket '" + id + "': '" + RootRelative(dir.value()) +
                    "' is a symbolic link, which plinth does not follow; remove it, then apply again");
      return IoFail("write", ErrnoPath(dir.value() / kBucketMeta, false), e);
    }
    const char* stage = "write";
    if (int e = io::WriteFileAtomic(bdir.path() / kBucketMeta, meta.dump(2) + "\n", 0644, &stage)) {
      if (std::string_view(stage) == "rename") stage = "write";
      return IoFail(stage, ErrnoPath(dir.value() / kBucketMeta, false), e);
    }
  }
  if (p["backup"].kind() == Value::Kind::Object) {
    bool repo_created = false;
    if (auto err = EnsureBackupRepository(ref->name, bucket, p, key, &repo_created)) {
      if (!prior) {
        // A failed create leaves nothing behind that the next create would
        // trip over: the repository directory it made (no snapshots can be
        // in it yet), the metadata, and the directory when it made it.
        storage::BucketInfo info;
        info.region = ref->name;
        info.name = bucket;
        storage::ApplySettings(p, info);
        if (repo_created && info.backup) {
          auto c = storage::InspectLocalRepository(info.backup->repository);
          std::error_code ec;
          if (c.ok() && c.value().snapshots == 0) fs::remove_all(info.backup->repository, ec);
        }
        if (CountFiles(dir.value(), {kBucketMeta}) == 0) {
          RemoveFile(dir.value() / kBucketMeta, false);
          if (made_dir) RemoveEmptyTree(dir.value());
        }
      }
      return *err;
    }
  }
  ValueMap expect = p;
  expect["key"] = Value::String(key);
  auto read = ReadBucketAt(ref->name, region_dir.value(), bucket, &expect);
  if (!read.ok()) return read.error();
  if (!read.value()) return Fail("bucket '" + id + "' vanished while it was written", true);
  Carry(&planned, read.value()->attributes);
  return std::move(*read.value());
}

// ------------------------------------------------------------------ markers

Result<ResourceObject> LocalProvider::WriteMarker(const ValueMap& planned) {
  auto prepared = PrepareForWrite(*this, "marker", planned);
  if (!prepared.ok()) return prepared.error();
  ValueMap p = std::move(prepared.value());
  const Value* path = Find(p, "path");
  if (!IsKnownString(path)) return Fail("a marker needs a path");
  bool sensitive = path->ContainsSensitive();
  std::string why;
  auto rel = RelativeInside(path->as_string(), &why);
  if (!rel) return Fail("marker path " + Shown(*path, path->as_string()) + " " + why);
  std::string shown = sensitive ? "marker path (sensitive)" : "marker path '" + *rel + "'";
  auto full = MarkerPath(*rel, shown);
  if (!full.ok()) return full.error();
  int e = 0;
  fs::path parent_dir = full.value().parent_path();
  if (!MakeDirs(parent_dir, &e))
    return IoFail("create the directory of", ErrnoPath(full.value(), sensitive), e);
  // The directory may have been made a symlink since it was resolved.
  if (auto again = MarkerPath(*rel, shown); !again.ok() || again.value() != full.value())
    return Fail(shown + " changed while it was written (a symlink appeared on its path)");
  if (IsRealDir(full.value())) return Fail(shown + " is a directory");
  const Value* content = Find(p, "content");
  std::string text = IsKnownString(content) ? content->as_string() : "";
  if (auto err = WriteFileAtomic(full.value(), text, sensitive)) return *err;
  RemoveStaleTemps(full.value());
  ResourceObject o;
  o.id = *rel;
  o.attributes["id"] = Value::String(*rel);
  o.attributes["path"] = *path;
  o.attributes["content"] = content ? *content : Value::String("");
  o.attributes["triggers"] = p["triggers"];
  Carry(&planned, o.attributes);
  return o;
}

// ------------------------------------------------------------------ deletes

namespace {

std::string Counted(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// "bucket.datasets" when the state knows the address, else "bucket 'eu/datasets'".
std::string Named(const ValueMap& prior, const std::string& type, const std::string& id) {
  const Value* a = Find(prior, "address");
  if (IsKnownString(a) && !a->as_string().empty()) return a->as_string();
  return type + " '" + id + "'";
}

std::string OptIn(const std::string& bucket) {
  return "set force_destroy = true on " + bucket + ", apply, then destroy";
}

// "a, b and c".
std::string Listed(const std::vector<std::string>& parts) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i)
    out += (i == 0 ? "" : i + 1 == parts.size() ? " and " : ", ") + parts[i];
  return out;
}

struct Tally {
  uint64_t files = 0, bytes = 0;
};

// Files (anything but directories, symlinks not followed) and their bytes
// below `dir`, leaving out the entries named in `skip` directly inside it.
Tally TallyTree(const fs::path& dir, const std::vector<std::string>& skip) {
  Tally t;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec), end;
       !ec && it != end; it.increment(ec)) {
    if (it.depth() == 0 &&
        std::find(skip.begin(), skip.end(), it->path().filename().string()) != skip.end()) {
      it.disable_recursion_pending();
      continue;
    }
    auto st = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(st)) continue;
    ++t.files;
    if (fs::is_regular_file(st)) t.bytes += it->file_size(ec);
    ec.clear();
  }
  return t;
}

bool BoolAttr(const ValueMap& m, const char* key) {
  const Value* v = Find(m, key);
  return v && v->kind() == Value::Kind::Bool && v->as_bool();
}

}  // namespace

struct LocalProvider::BucketDeletion {
  DeletePreview preview;
  bool exists = false;
  bool force = false;
  fs::path live;                       // the bucket's directory (resolved)
  fs::path store;                      // its archive tier and stored versions
  std::optional<fs::path> repository;  // deleted with the bucket
};

struct LocalProvider::RegionDeletion {
  DeletePreview preview;
  std::vector<fs::path> repositories;  // without snapshots: deleted with the region
  std::vector<fs::path> leftovers;     // repository deletes that were interrupted
};

std::string LocalProvider::RootRelative(const fs::path& p) const {
  std::string s = p.lexically_relative(root_).string();
  return s.empty() || s.rfind("..", 0) == 0 ? p.string() : s;
}

Result<LocalProvider::BucketDeletion> LocalProvider::InspectBucketDeletion(const std::string& id,
                                                                           const ValueMap& prior) const {
  auto parsed = ParseBucketId(id);
  if (!parsed.ok()) return parsed.error();
  const auto& [region_name, bucket] = parsed.value();
  const Value* ref = Find(prior, "region");
  const ValueMap* hint = ref && ref->kind() == Value::Kind::Object ? &ref->as_object() : nullptr;
  auto live = Inside(RegionDirFor(region_name, hint) / "buckets" / bucket, "bucket '" + id + "'");
  if (!live.ok()) return live.error();
  BucketDeletion d;
  d.live = live.value();
  if (!IsDir(d.live)) return d;
  d.exists = true;
  d.force = BoolAttr(prior, "force_destroy");
  d.store = storage::StoreDirFor(d.live.parent_path().parent_path(), bucket);
  const std::string name = Named(prior, "bucket", id);
  // Jobs can write beside and inside these directories: a delete never
  // counts or removes what lies behind a symlink standing in for one.
  for (const fs::path& rel :
       {fs::path("buckets") / bucket, fs::path(".plinth-storage"), fs::path(".plinth-storage") / bucket,
        fs::path(".plinth-storage") / bucket / "objects"}) {
    struct stat st;
    int e = io::StatBeneath(d.live.parent_path().parent_path(), rel, &st);
    if (e == ENOENT) break;
    if (e == ELOOP || (e == 0 && S_ISLNK(st.st_mode))) {
      return Fail(
          "cannot delete " + name + ": '" + RootRelative(d.live.parent_path().parent_path() / rel) +
          "' is or lies behind a symbolic link, which plinth does not follow; remove the link, then run "
          "plinth plan again");
    }
  }
  DeletePreview& p = d.preview;
  std::vector<std::string> holds;  // what refuses the delete without force_destroy

  Tally objects = TallyTree(d.live, {kBucketMeta});
  if (objects.files > 0) {
    p.amounts["objects"] = objects.files;
    p.amounts["object_bytes"] = objects.bytes;
    holds.push_back(Counted(objects.files, "object", "objects") + " (" + storage::BytesText(objects.bytes) +
                    ")");
  }
  // The archive tier and stored versions: sealed files per object key
  // (runtime/storage/bucket_store.h); manifests alone hold no data.
  Tally archived, versions;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(d.store / "objects", ec), end; !ec && it != end;
       it.increment(ec)) {
    auto st = it->symlink_status(ec);
    if (ec || !fs::is_regular_file(st)) continue;
    std::string file = it->path().filename().string();
    if (file.size() < 7 || file.compare(file.size() - 7, 7, ".sealed") != 0) continue;
    Tally& t = file == "archive.sealed" ? archived : versions;
    ++t.files;
    t.bytes += it->file_size(ec);
    ec.clear();
  }
  if (versions.files > 0) {
    p.amounts["versions"] = versions.files;
    p.amounts["version_bytes"] = versions.bytes;
    holds.push_back(Counted(versions.files, "stored version", "stored versions") + " (" +
                    storage::BytesText(versions.bytes) + ")");
  }
  if (archived.files > 0) {
    p.amounts["archived"] = archived.files;
    p.amounts["archived_bytes"] = archived.bytes;
    holds.push_back(Counted(archived.files, "archived object", "archived objects") + " (" +
                    storage::BytesText(archived.bytes) + ")");
  }
  p.data = holds;
  if (!holds.empty() && !d.force) {
    p.refusal = name + " still holds " + Listed(holds) +
                "; empty it first, or, to delete it with its data, " + OptIn(name);
  }

  // The backup repository in the other region: one without snapshots holds
  // no data and goes with the bucket; one with snapshots goes only with
  // force_destroy (otherwise backups outlive their bucket).
  // Its repository is where the state's backup block puts it: never where
  // the bucket's metadata file (which jobs can write) says.
  std::optional<fs::path> repo;
  {
    storage::BucketInfo from_state;
    from_state.region = region_name;
    from_state.name = bucket;
    storage::ApplySettings(prior, from_state);
    if (from_state.backup && !from_state.backup->repository.empty()) repo = from_state.backup->repository;
  }
  if (repo) {
    auto inside = Inside(*repo, "the backup repository of bucket '" + id + "'");
    if (!inside.ok()) return inside.error();
    auto contents = storage::InspectLocalRepository(inside.value());
    if (!contents.ok()) return Fail(contents.error().message, contents.error().retryable);
    const storage::RepositoryContents& c = contents.value();
    std::string shown = "'" + RootRelative(inside.value()) + "'";
    if (c.repository && c.snapshots == 0) {
      d.repository = inside.value();
      p.amounts["repositories"] = 1;
      p.data.push_back("empty backup repository " + shown);
    } else if (c.repository && (d.force || !p.refusal.empty())) {
      if (d.force) d.repository = inside.value();
      p.amounts["repositories"] = 1;
      p.amounts["snapshots"] = c.snapshots;
      p.amounts["backup_bytes"] = c.bytes;
      p.data.push_back("backup repository " + shown + " with " +
                       Counted(c.snapshots, "snapshot", "snapshots") + " (" + storage::BytesText(c.bytes) +
                       ")");
    }
  }
  return d;
}

Result<LocalProvider::RegionDeletion> LocalProvider::InspectRegionDeletion(const std::string& id,
                                                                           const fs::path& dir,
                                                                           const ValueMap& prior,
                                                                           bool at_apply) const {
  RegionDeletion d;
  DeletePreview& p = d.preview;
  const std::string name = Named(prior, "region", id);
  // What refuses the delete: a data line, and what to do about it.
  std::vector<std::pair<std::string, std::string>> holds;
  // Which bucket backs up into each repository here: the repository
  // backups/<region>/<bucket> belongs to bucket <region>/<bucket>, when that
  // bucket exists and backs up here (docs/storage.md).
  struct Owner {
    std::string name;
    bool force = false;
  };
  auto owner_of = [&](const std::string& region, const std::string& bucket) -> std::optional<Owner> {
    for (const RegionInfo& r : ListRegions()) {
      if (r.name != region) continue;
      auto b = ReadBucketAt(r.name, r.dir, bucket, nullptr);
      if (!b.ok() || !b.value()) return std::nullopt;
      const ValueMap& attrs = b.value()->attributes;
      return Owner{Named(attrs, "bucket", region + "/" + bucket), BoolAttr(attrs, "force_destroy")};
    }
    return std::nullopt;
  };
  auto is_leftover = [](const std::string& file) {
    const std::string suffix = storage::kDeletingSuffix;
    return file.size() > suffix.size() && file[0] == '.' &&
           file.compare(file.size() - suffix.size(), std::string::npos, suffix) == 0;
  };
  // One repository (or what stands where one would): `owner` empty for one
  // in the layout before backups/<region>/<bucket>.
  auto inspect = [&](const fs::path& e, const std::optional<std::pair<std::string, std::string>>& owner_id)
      -> std::optional<ProviderError> {
    std::string shown = "'" + RootRelative(e) + "'";
    if (is_leftover(e.filename().string())) {
      d.leftovers.push_back(e);
      p.data.push_back("the rest of a backup repository whose delete was interrupted, " + shown);
      return std::nullopt;
    }
    auto contents = storage::InspectLocalRepository(e);
    if (!contents.ok()) return Fail(contents.error().message, contents.error().retryable);
    const storage::RepositoryContents& c = contents.value();
    if (!c.repository) {
      holds.push_back(
          {shown + ", which is not a backup repository (" + FilesText(c.files) + ")", "remove it first"});
      return std::nullopt;
    }
    if (c.snapshots == 0) {
      d.repositories.push_back(e);
      ++p.amounts["repositories"];
      p.data.push_back("empty backup repository " + shown);
      return std::nullopt;
    }
    std::string what = "backup repository " + shown + " with " +
                       Counted(c.snapshots, "snapshot", "snapshots") + " (" + storage::BytesText(c.bytes) +
                       ")";
    std::optional<Owner> owner = owner_id ? owner_of(owner_id->first, owner_id->second) : std::nullopt;
    if (owner && owner->force && !at_apply) return std::nullopt;  // its bucket's delete removes it first
    p.amounts["snapshots"] += c.snapshots;
    p.amounts["backup_bytes"] += c.bytes;
    if (owner && owner->force) {
      holds.push_back({what + " of " + owner->name, "delete " + owner->name +
                                                        " first: with its force_destroy it "
                                                        "deletes its backups"});
    } else if (owner) {
      holds.push_back(
          {what + " of " + owner->name, "to delete the backups with it, " + OptIn(owner->name) +
                                            ", or remove the repository by hand when they are no longer "
                                            "needed"});
    } else if (!owner_id) {
      holds.push_back(
          {what + " in the layout before backups/<region>/<bucket>",
           "move it to backups/<region>/<bucket> for its bucket to use it again (docs/storage.md), or "
           "remove it by hand when the backups are no longer needed"});
    } else {
      holds.push_back({what + " of a bucket that no longer exists",
                       "backups outlive their bucket: remove it by hand when they are no longer needed"});
    }
    return std::nullopt;
  };

  std::error_code ec;
  auto sorted_entries = [&](const fs::path& at) {
    std::vector<fs::path> out;
    std::error_code lec;
    for (fs::directory_iterator it(at, lec), end; !lec && it != end; it.increment(lec))
      out.push_back(it->path());
    std::sort(out.begin(), out.end());
    return out;
  };
  for (const fs::path& e : sorted_entries(dir / "backups")) {
    auto st = fs::symlink_status(e, ec);
    bool region_level = fs::is_directory(st) && !is_leftover(e.filename().string()) &&
                        !fs::exists(fs::symlink_status(e / "config", ec));
    if (!region_level) {  // a repository in the earlier layout, or something else
      if (auto err = inspect(e, std::nullopt)) return *err;
      continue;
    }
    for (const fs::path& r : sorted_entries(e)) {
      std::string name = r.filename().string();
      std::string bucket_name = name;
      if (is_leftover(name)) bucket_name.clear();
      if (auto err = inspect(r, std::make_pair(e.filename().string(), bucket_name))) return *err;
    }
  }
  // Anything else in the region's directory. The buckets (and their storage
  // directories) report themselves when they are deleted in the same plan;
  // at apply they are gone.
  std::vector<std::string> skip = {kRegionMeta, kDownFile, "backups"};
  if (!at_apply) {
    skip.push_back("buckets");
    skip.push_back(".plinth-storage");
  }
  if (Tally other = TallyTree(dir, skip); other.files > 0) {
    holds.push_back({FilesText(other.files) + " (" + storage::BytesText(other.bytes) + ") in '" +
                         RootRelative(dir) + "' that plinth does not manage",
                     other.files == 1 ? "remove it first" : "remove them first"});
  }
  if (!holds.empty()) {
    p.refusal = name + " still holds ";
    for (size_t i = 0; i < holds.size(); ++i) {
      p.data.push_back(holds[i].first);
      p.refusal += (i ? "; and " : "") + holds[i].first + "; " + holds[i].second;
    }
  }
  return d;
}

Result<DeletePreview> LocalProvider::PlanDelete(const std::string& type, const std::string& id,
                                                const ValueMap& prior) {
  if (type == "bucket") {
    std::shared_lock regions(regions_mu_);
    auto d = InspectBucketDeletion(id, prior);
    if (!d.ok()) return d.error();
    return std::move(d.value().preview);
  }
  if (type == "region") {
    if (!ValidSegment(id)) return Fail("region id '" + id + "' is not a region name");
    std::shared_lock lock(regions_mu_);
    auto dir = Inside(RegionDirFor(id, &prior), "the directory of region '" + id + "'");
    if (!dir.ok()) return dir.error();
    if (!IsDir(dir.value())) return DeletePreview{};
    auto d = InspectRegionDeletion(id, dir.value(), prior, /*at_apply=*/false);
    if (!d.ok()) return d.error();
    return std::move(d.value().preview);
  }
  if (type == "marker" || type == "pool" || type == "job" || type == "service" || type == "load_balancer" ||
      type == "config_file" || type == "maintenance_window")
    return DeletePreview{};
  if (type == "package") return packages::PlanDeletePackage(id, prior, packages::Machine(&prior).context());
  return UnknownType(type);
}

// --------------------------------------------------------------- interface

Result<ResourceObject> LocalProvider::Create(const std::string& type, const ValueMap& planned) {
  if (type == "region") return WriteRegion(planned, true);
  if (type == "bucket") return WriteBucket(planned, nullptr);
  if (type == "marker") return WriteMarker(planned);
  if (type == "pool") return WritePool(planned);
  if (type == "service") return WriteService(planned, /*creating=*/true);
  if (type == "load_balancer") return WriteLoadBalancer(planned);
  if (type == "job") return CreateJob(planned);
  if (type == "config_file") return config_file::Write(planned, FileContext());
  if (type == "maintenance_window") {
    const Value* wid = Find(planned, "id");
    return ResourceObject{IsKnownString(wid) ? wid->as_string() : "", planned};
  }
  if (type == "package") return packages::ApplyPackage(planned, packages::Machine(&planned).context());
  return UnknownType(type);
}

Result<ResourceObject> LocalProvider::Update(const std::string& type, const std::string& id,
                                             const ValueMap& prior, const ValueMap& planned) {
  if (type == "region") return WriteRegion(planned, false);
  if (type == "bucket") return WriteBucket(planned, &prior);
  if (type == "marker") {
    std::string why;
    auto rel = RelativeInside(id, &why);
    if (!rel) return Fail("marker id " + why);
    std::error_code ec;
    if (!fs::exists(root_ / *rel, ec)) return Fail("marker '" + *rel + "' no longer exists");
    return WriteMarker(planned);
  }
  if (type == "pool") return WritePool(planned);
  if (type == "config_file") return config_file::Write(planned, FileContext());
  if (type == "service") return WriteService(planned, /*creating=*/false);
  if (type == "load_balancer") return WriteLoadBalancer(planned);
  if (type == "maintenance_window") return ResourceObject{id, planned};
  if (type == "package") return packages::ApplyPackage(planned, packages::Machine(&planned).context());
  if (type == "job") {
    // Every configurable attribute of a job is force-new: an update only
    // carries the run's recorded values over.
    ValueMap attrs = planned;
    for (const char* k : {"status", "exit_code", "attempts", "node", "reason", "started_at", "finished_at",
                          "log_path", "secret_env"}) {
      if (auto it = prior.find(k); it != prior.end()) attrs[k] = it->second;
    }
    return ResourceObject{id, std::move(attrs)};
  }
  return UnknownType(type);
}

Result<std::optional<ResourceObject>> LocalProvider::Read(const std::string& type, const std::string& id,
                                                          const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  if (type == "pool") return ReadPool(id, prior);
  if (type == "service") return ReadService(id, prior);
  if (type == "load_balancer") return ReadLoadBalancer(id, prior);
  if (type == "job") return ReadJob(id, prior);
  if (type == "config_file") return config_file::Read(id, prior, FileContext());
  if (type == "maintenance_window")
    return Out(ResourceObject{id, prior});  // a setting: nothing outside to read
  if (type == "package") return packages::ReadPackage(id, prior, packages::Machine(&prior).context());
  if (type == "region") {
    if (!ValidSegment(id)) return Fail("region id '" + id + "' is not a region name");
    std::shared_lock lock(regions_mu_);
    fs::path dir = RegionDirFor(id, &prior);
    if (!Exists(dir / kRegionMeta)) return Out();
    auto r = LoadRegion(id, dir);
    if (!r.ok()) return r.error();
    return Out(RegionObject(r.value(), &prior));
  }
  if (type == "bucket") {
    auto parsed = ParseBucketId(id);
    if (!parsed.ok()) return parsed.error();
    const auto& [region_name, bucket] = parsed.value();
    std::shared_lock lock(regions_mu_);
    const Value* ref = Find(prior, "region");
    const ValueMap* hint = ref && ref->kind() == Value::Kind::Object ? &ref->as_object() : nullptr;
    fs::path region_dir = RegionDirFor(region_name, hint);
    return ReadBucketAt(region_name, region_dir, bucket, &prior);
  }
  if (type == "marker") {
    std::string why;
    auto rel = RelativeInside(id, &why);
    if (!rel) return Fail("marker id " + why);
    const Value* path = Find(prior, "path");
    bool sensitive = path && path->ContainsSensitive();
    // Resolved beneath the data root without following any symlink: a
    // marker replaced by a symlink (or a symlinked directory on its path) is
    // not the marker file, so it reads as gone and the next apply writes
    // the file again, replacing the link (docs/providers/local.md, "Drift").
    std::string content;
    int e = io::ReadFileBeneath(root_, *rel, &content);
    if (e == ENOENT || e == ENOTDIR || e == ELOOP || e == EINVAL || e == EISDIR) return Out();
    if (e != 0) return IoFail("read", ErrnoPath(root_ / *rel, sensitive), e);
    ResourceObject o;
    o.id = *rel;
    o.attributes["id"] = Value::String(*rel);
    o.attributes["path"] = IsKnownString(path) ? *path : Value::String(*rel);
    o.attributes["content"] = Value::String(std::move(content));
    const Value* triggers = Find(prior, "triggers");  // not on disk: the configuration's record of them
    o.attributes["triggers"] = triggers ? *triggers : Value();
    Carry(&prior, o.attributes);
    return Out(std::move(o));
  }
  return UnknownType(type);
}

Result<Done> LocalProvider::Delete(const std::string& type, const std::string& id, const ValueMap& prior) {
  if (type == "pool") return DeletePool(id);
  if (type == "service") return DeleteService(id);
  if (type == "load_balancer") return DeleteLoadBalancer(id);
  if (type == "job") return DeleteJob(id);
  if (type == "config_file") return config_file::Delete(id, prior);
  if (type == "maintenance_window") return Done{};
  if (type == "package") return packages::DeletePackage(id, prior, packages::Machine(&prior).context());
  if (type == "region") {
    if (!ValidSegment(id)) return Fail("region id '" + id + "' is not a region name");
    std::unique_lock lock(regions_mu_);
    fs::path dir = RegionDirFor(id, &prior);
    auto inside = Inside(dir, "the directory of region '" + id + "'");
    if (!inside.ok()) return inside.error();
    fs::path index = root_ / kIndexDir / "regions" / (id + ".json");
    if (IsDir(dir)) {
      std::optional<RegionInfo> info;
      if (Exists(dir / kRegionMeta)) {
        auto r = LoadRegion(id, dir);
        if (!r.ok()) return r.error();
        info = std::move(r.value());
      }
      size_t buckets = 0;
      std::error_code ec;
      for (fs::directory_iterator it(dir / "buckets", ec), end; !ec && it != end; it.increment(ec)) ++buckets;
      if (buckets > 0)
        return Fail("region '" + id + "' still holds " + std::to_string(buckets) +
                    (buckets == 1 ? " bucket" : " buckets") + "; delete them first");
      // Backup repositories without snapshots hold no data and go with the
      // region; one with snapshots refuses (plinth does not delete data).
      auto d = InspectRegionDeletion(id, dir, prior, /*at_apply=*/true);
      if (!d.ok()) return d.error();
      if (!d.value().preview.refusal.empty()) return Fail(d.value().preview.refusal);
      for (const fs::path& leftover : d.value().leftovers) {
        if (auto done = storage::DeleteDeletingLeftover(leftover); !done.ok())
          return Fail(done.error().message);
      }
      for (const fs::path& repo : d.value().repositories) {
        if (auto done = storage::DeleteLocalRepository(repo); !done.ok()) return Fail(done.error().message);
      }
      if (IsDir(dir / "backups")) {
        if (auto err = RemoveEmptyTree(dir / "backups")) return *err;
      }
      if (size_t n = CountFiles(dir, {kRegionMeta, kDownFile}); n > 0)
        return Fail("region '" + id + "' still holds " + FilesText(n) + " in '" + dir.string() +
                    "'; remove them first (plinth does not delete data)");
      if (info && info->namespaced) {
        std::string error;
        if (!region_network::Remove(Network(*info), &error))
          return Fail("cannot remove the network namespace of region '" + id + "': " + error);
      }
      // The metadata goes first: from then on the region reads as gone.
      if (auto err = RemoveFile(dir / kRegionMeta, false)) return *err;
      if (auto err = RemoveFile(dir / kDownFile, false)) return *err;
      if (auto err = RemoveEmptyTree(dir)) return *err;
    }
    if (auto err = RemoveFile(index, false)) return *err;
    // Directories left empty above it (the default `regions/`, the index's),
    // so that destroying everything leaves an empty data root.
    for (fs::path up = dir.parent_path(); Contains(root_, up) && up != root_; up = up.parent_path()) {
      if (::rmdir(up.c_str()) != 0) break;
    }
    for (fs::path up = index.parent_path(); Contains(root_, up) && up != root_; up = up.parent_path()) {
      if (::rmdir(up.c_str()) != 0) break;
    }
    return Done{};
  }
  if (type == "bucket") {
    std::shared_lock regions(regions_mu_);
    std::lock_guard buckets(buckets_mu_);
    auto inspected = InspectBucketDeletion(id, prior);
    if (!inspected.ok()) return inspected.error();
    const BucketDeletion& d = inspected.value();
    if (!d.exists) return Done{};
    // Objects, archived objects and stored versions are data: deleted only
    // on the user's explicit force_destroy (the plan showed what goes).
    if (!d.preview.refusal.empty()) return Fail(d.preview.refusal);
    std::error_code ec;
    if (d.force) {
      std::vector<fs::path> entries;
      for (fs::directory_iterator it(d.live, ec), end; !ec && it != end; it.increment(ec)) {
        if (it->path().filename() != kBucketMeta) entries.push_back(it->path());
      }
      if (ec) return IoFail("list", ErrnoPath(d.live, false), ec.value());
      for (const fs::path& e : entries) {
        fs::remove_all(e, ec);  // symlinks are removed, never followed
        if (ec) return IoFail("remove", ErrnoPath(e, false), ec.value());
      }
      fs::remove_all(d.store / "objects", ec);
      if (ec) return IoFail("remove", ErrnoPath(d.store / "objects", false), ec.value());
    }
    // The backup repository: one without snapshots, or any with force_destroy.
    if (d.repository) {
      if (auto done = storage::DeleteLocalRepository(*d.repository); !done.ok())
        return Fail("cannot delete bucket '" + id + "': " + done.error().message, done.error().retryable);
    }
    // The metadata goes last: until then the bucket reads as existing, so an
    // interrupted delete is planned again.
    if (auto err = RemoveFile(d.live / kBucketMeta, false)) return *err;
    if (auto err = RemoveEmptyTree(d.live)) return *err;
    fs::remove_all(d.store, ec);            // status files only: the objects directory is empty
    fs::remove(d.store.parent_path(), ec);  // .plinth-storage, when no other bucket uses it
    return Done{};
  }
  if (type == "marker") {
    std::string why;
    auto rel = RelativeInside(id, &why);
    if (!rel) return Fail("marker id " + why);
    const Value* path = Find(prior, "path");
    bool sensitive = path && path->ContainsSensitive();
    std::string shown = sensitive ? "marker path (sensitive)" : "marker path '" + *rel + "'";
    auto full = MarkerPath(*rel, shown);
    if (!full.ok()) return full.error();
    if (IsRealDir(full.value())) return Fail(shown + " is a directory, not a marker file");
    RemoveStaleTemps(full.value());
    if (::unlink(full.value().c_str()) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return Done{};
      return IoFail("remove", ErrnoPath(full.value(), sensitive), errno);
    }
    int e = 0;
    if (!SyncDir(full.value().parent_path(), &e))
      return IoFail("sync the directory of", ErrnoPath(full.value(), sensitive), e);
    return Done{};
  }
  return UnknownType(type);
}

Result<ResourceObject> LocalProvider::Import(const std::string& type, const std::string& id) {
  if (type == "config_file") {
    auto o = config_file::Import(id, FileContext());
    if (o.ok()) FillBlock(SchemaOf("config_file")->body, o.value().attributes);
    return o;
  }
  if (type == "pool" || type == "job")
    return Fail(type + "s are not imported: declare the " + type + " and apply (a job id names one run)");
  if (type == "maintenance_window" || type == "package")
    return Fail(type + "s are not imported: declare the " + type +
                " and apply (a package's create adopts what is installed without changing it)");
  if (type == "service" || type == "load_balancer")
    return Fail(type + "s are not imported: declare the " + type +
                " and apply (apply adopts the processes it started before)");
  if (type == "region") {
    if (!ValidSegment(id)) return Fail("region id '" + id + "' is not a region name");
    std::shared_lock lock(regions_mu_);
    fs::path dir = RegionDirFor(id, nullptr);
    if (!Exists(dir / kRegionMeta)) return Fail("no region '" + id + "' to import at '" + dir.string() + "'");
    auto r = LoadRegion(id, dir);
    if (!r.ok()) return r.error();
    return RegionObject(r.value(), nullptr);
  }
  if (type == "bucket") {
    ValueMap none;
    auto read = Read(type, id, none);
    if (!read.ok()) return read.error();
    if (!read.value()) return Fail("no bucket '" + id + "' to import");
    ResourceObject o = std::move(*read.value());
    // A plain directory (no metadata) imports with the schema's defaults.
    FillBlock(SchemaOf("bucket")->body, o.attributes);
    o.attributes["region"] = NormalizeRef(o.attributes["region"]);
    return o;
  }
  if (type == "marker") {
    std::string why;
    auto rel = RelativeInside(id, &why);
    if (!rel) return Fail("marker id " + why);
    auto full = MarkerPath(*rel, "marker path '" + *rel + "'");
    if (!full.ok()) return full.error();
    ValueMap none;
    auto read = Read(type, *rel, none);
    if (!read.ok()) return read.error();
    if (!read.value()) return Fail("no marker file '" + *rel + "' to import");
    return std::move(*read.value());
  }
  return UnknownType(type);
}

config_file::Context LocalProvider::FileContext() const {
  return config_file::Context{WorkspaceDir(), workspace_key_, stop_};
}

}  // namespace plinth::runtime
