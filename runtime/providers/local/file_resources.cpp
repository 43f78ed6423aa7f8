// `config_file` resources of the local provider (file_resources.h; docs
// in docs/providers/local.md, "Configuration files").
#include "runtime/providers/local/file_resources.h"

#include <fcntl.h>
#include <grp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "runtime/io/durable.h"
#include "runtime/process/process.h"
#include "runtime/storage/keys.h"
#include "runtime/provider/values.h"

namespace plinth::runtime::config_file {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadLimit = 64u << 20;     // a file larger than this reads as unknown content
constexpr size_t kShownStderr = 4096;        // the tail of a failed command's stderr quoted in errors
constexpr double kDefaultTimeoutMs = 30000;  // the schema's default for `timeout`

ProviderError Fail(std::string message, bool retryable = false) {
  return ProviderError{std::move(message), retryable};
}

using values::Find;
using values::Flag;
using values::Text;
using values::KnownString;

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

// Why `path` is not a usable target, or "".
std::string PathError(const std::string& path) {
  if (path.empty()) return "is empty: give the file's absolute path";
  if (path[0] != '/')
    return "is not absolute: give an absolute path (abspath(\"" + path +
           "\") makes one relative to the configuration's file)";
  if (path.find('\0') != std::string::npos) return "contains a NUL character";
  if (path == "/") return "names the root directory, not a file";
  if (path.back() == '/') return "ends with '/': name a file, not a directory";
  fs::path p(path);
  if (p.lexically_normal().string() != path)
    return "is not a clean path (no '.', '..' or '//' segments): write it as '" +
           p.lexically_normal().string() + "'";
  return "";
}

// "0640" from "640", "0640" or "00640"; nullopt when not octal up to 07777.
std::optional<std::string> NormalMode(const std::string& text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  unsigned v = 0;
  for (char c : text) {
    if (c < '0' || c > '7') return std::nullopt;
    v = v * 8 + static_cast<unsigned>(c - '0');
  }
  if (v > 07777) return std::nullopt;
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", v);
  return std::string(buf);
}

bool AllDigits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

std::optional<uid_t> LookUpOwner(const std::string& name) {
  if (AllDigits(name)) return static_cast<uid_t>(std::stoul(name));
  struct passwd pw, *out = nullptr;
  std::vector<char> buf(16384);
  if (::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &out) != 0 || !out) return std::nullopt;
  return pw.pw_uid;
}

std::optional<gid_t> LookUpGroup(const std::string& name) {
  if (AllDigits(name)) return static_cast<gid_t>(std::stoul(name));
  struct group gr, *out = nullptr;
  std::vector<char> buf(16384);
  if (::getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &out) != 0 || !out) return std::nullopt;
  return gr.gr_gid;
}

// The owner as the configuration names it: a number when it gave a number.
std::string OwnerName(uid_t uid, bool numeric) {
  if (!numeric) {
    struct passwd pw, *out = nullptr;
    std::vector<char> buf(16384);
    if (::getpwuid_r(uid, &pw, buf.data(), buf.size(), &out) == 0 && out) return pw.pw_name;
  }
  return std::to_string(uid);
}

std::string GroupName(gid_t gid, bool numeric) {
  if (!numeric) {
    struct group gr, *out = nullptr;
    std::vector<char> buf(16384);
    if (::getgrgid_r(gid, &gr, buf.data(), buf.size(), &out) == 0 && out) return gr.gr_name;
  }
  return std::to_string(gid);
}

std::vector<std::string> Argv(const ValueMap& m, const std::string& key) {
  std::vector<std::string> out;
  const Value* v = Find(m, key);
  if (!v || v->kind() != Value::Kind::List) return out;
  for (const Value& e : v->as_list()) out.push_back(KnownString(&e) ? e.as_string() : "");
  return out;
}

std::string ArgvError(const Value* v, const std::string& key) {
  if (!v || v->is_null() || v->ContainsUnknown()) return "";
  if (v->kind() != Value::Kind::List)
    return key + " must be a list of strings: the program, then its arguments";
  if (v->as_list().empty())
    return key +
           " is an empty list: give the program and its arguments (e.g. [\"haproxy\", \"-c\", \"-f\", "
           "\"{path}\"]), or leave it out";
  const Value& first = v->as_list().front();
  if (!KnownString(&first) || first.as_string().empty())
    return key + "'s first element must name the program to run";
  return "";
}

bool ValidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += len;
  }
  return true;
}

// The tail of a child's stderr for a message, or why it is not shown.
std::string StderrTail(const process::Outcome& o, bool sensitive) {
  if (sensitive)
    return " (its output is not shown: the content is sensitive; run the command by hand to see it)";
  std::string err = o.err;
  while (!err.empty() && (err.back() == '\n' || err.back() == ' ')) err.pop_back();
  if (err.empty()) return "";
  if (err.size() > kShownStderr) err = "..." + err.substr(err.size() - kShownStderr);
  return ":\n" + err;
}

// Runs `argv` (argv[0] looked up on PATH unless it has a '/') with the
// caller's environment and the deadline; "" on success, else the message.
std::string RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds deadline,
                       const Context& ctx, bool sensitive, const std::string& what) {
  std::map<std::string, std::string> env = process::CurrentEnvironment();
  process::DropStateCredentials(env);
  auto path_it = env.find("PATH");
  std::string path_list =
      path_it != env.end() ? path_it->second : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  auto program = process::FindExecutable(argv[0], path_list);
  if (!program)
    return what + " command '" + argv[0] + "' is not an executable on PATH (" + path_list +
           "): install it or give its absolute path";
  process::Spec spec;
  spec.program = *program;
  spec.args.assign(argv.begin() + 1, argv.end());
  spec.env = std::move(env);
  spec.deadline = deadline;
  spec.kill_grace = std::chrono::milliseconds(2000);
  spec.max_stdout = 64 << 10;
  spec.max_stderr = 64 << 10;
  spec.cancel = ctx.stop;
  process::Outcome o = process::Run(std::move(spec));
  if (o.ok()) return "";
  if (!o.started) return what + " command: " + o.start_error;
  std::string how;
  if (o.timed_out)
    how = "did not finish within its " +
          (deadline.count() % 1000 == 0 ? std::to_string(deadline.count() / 1000) + " s"
                                        : std::to_string(deadline.count()) + " ms") +
          " timeout and was killed (raise timeout if it needs longer)";
  else if (o.cancelled)
    how = "was stopped (interrupted)";
  else if (o.signal)
    how = "was killed by signal " + std::to_string(o.signal);
  else
    how = "exited with status " + std::to_string(o.exit_code);
  return what + " command '" + argv[0] + "' " + how + StderrTail(o, sensitive);
}

std::optional<crypto::Key> WorkspaceKey(const fs::path& file, bool create) {
  auto k = storage::LoadWorkspaceKey(file, create);
  if (!k.ok()) return std::nullopt;
  return k.value().key;
}

struct OnDisk {
  bool exists = false;  // a regular file (not a symlink) at the path
  struct ::stat st {};
  std::optional<std::string> content;  // nullopt: over kReadLimit
};

// What is at `path`, the final component not followed.
Result<OnDisk> Inspect(const std::string& path) {
  OnDisk d;
  struct ::stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return d;
    return Fail("cannot inspect '" + path + "': " + std::strerror(errno), errno == EINTR || errno == EAGAIN);
  }
  if (!S_ISREG(st.st_mode)) return d;  // a symlink, directory or device: not the managed file
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP) return d;
    return Fail("cannot read '" + path + "': " + std::strerror(errno));
  }
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return d;
  }
  d.exists = true;
  d.st = st;
  std::string content;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return Fail("cannot read '" + path + "': " + std::strerror(e));
    }
    if (n == 0) break;
    if (content.size() + static_cast<size_t>(n) > kReadLimit) {
      ::close(fd);
      return d;  // content stays nullopt: too large to compare
    }
    content.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  d.content = std::move(content);
  return d;
}

// The attributes a read reports, from `prior` (the state) and the disk.
ValueMap Observed(const std::string& path, const ValueMap& prior, const OnDisk& d, const Context& ctx) {
  ValueMap a = prior;
  a["id"] = Value::String(path);
  a["path"] = Value::String(path);
  a["exists"] = Value::Bool(d.exists);
  const Value* prior_content = Find(prior, "content");
  const bool sensitive = prior_content && prior_content->ContainsSensitive();
  if (!d.exists) {
    // Nothing to compare: the digest and content read as absent.
    a["content_digest"] = Value();
    a["content"] = sensitive ? Value().WithSensitive() : Value();
    return a;
  }
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(d.st.st_mode & 07777));
  a["mode"] = Value::String(mode);
  if (const Value* o = Find(prior, "owner"); KnownString(o))
    a["owner"] = Value::String(OwnerName(d.st.st_uid, AllDigits(o->as_string())));
  if (const Value* g = Find(prior, "group"); KnownString(g))
    a["group"] = Value::String(GroupName(d.st.st_gid, AllDigits(g->as_string())));
  if (!d.content) {
    a["content_digest"] = Value();
    a["content"] = sensitive ? Value().WithSensitive() : Value();
    return a;
  }
  std::string digest = ContentDigest(path, *d.content, sensitive, ctx.workspace_key, false);
  const Value* prior_digest = Find(prior, "content_digest");
  const bool same = !digest.empty() && KnownString(prior_digest) && prior_digest->as_string() == digest;
  a["content_digest"] = digest.empty() ? Value() : Value::String(digest).WithSensitive(sensitive);
  if (same) return a;  // the prior content value stands (for sensitive content: its digest)
  if (sensitive)
    a["content"] = digest.empty() ? Value().WithSensitive() : Value::String(digest).WithSensitive();
  else
    a["content"] = ValidUtf8(*d.content) ? Value::String(*d.content) : Value();
  return a;
}

}  // namespace

std::string ContentDigest(const std::string& path, const std::string& content, bool sensitive,
                          const fs::path& workspace_key, bool create_key) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!sensitive) {
    EVP_Digest(content.data(), content.size(), md, &len, EVP_sha256(), nullptr);
    return "sha256:" + Hex(md, len);
  }
  auto key = WorkspaceKey(workspace_key, create_key);
  if (!key) return "";
  std::string input = "plinth-config-file-v1";
  input.push_back('\0');
  input += path;
  input.push_back('\0');
  input += content;
  HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), md, &len);
  return "hmac:" + Hex(md, len);
}

std::vector<std::string> Validate(const ValueMap& config) {
  std::vector<std::string> errs;
  if (const Value* p = Find(config, "path"); KnownString(p)) {
    if (std::string why = PathError(p->as_string()); !why.empty())
      errs.push_back("config_file path '" + p->as_string() + "' " + why);
  }
  if (const Value* m = Find(config, "mode"); KnownString(m) && !NormalMode(m->as_string()))
    errs.push_back("config_file mode '" + m->as_string() +
                   "' is not an octal permission (e.g. \"0640\"): up to four digits 0-7, at most 07777");
  if (const Value* o = Find(config, "owner"); KnownString(o)) {
    if (o->as_string().empty())
      errs.push_back("config_file owner is empty: name a user, or leave owner out to keep Plinth's own");
    else if (!LookUpOwner(o->as_string()))
      errs.push_back("config_file owner '" + o->as_string() +
                     "' is not a user on this machine: create the account first, or give a numeric uid");
  }
  if (const Value* g = Find(config, "group"); KnownString(g)) {
    if (g->as_string().empty())
      errs.push_back("config_file group is empty: name a group, or leave group out to keep Plinth's own");
    else if (!LookUpGroup(g->as_string()))
      errs.push_back("config_file group '" + g->as_string() +
                     "' is not a group on this machine: create it first, or give a numeric gid");
  }
  for (const char* key : {"validate", "reload"}) {
    if (std::string why = ArgvError(Find(config, key), key); !why.empty())
      errs.push_back("config_file " + why);
  }
  if (const Value* t = Find(config, "timeout");
      t && t->kind() == Value::Kind::Duration && t->as_number() <= 0)
    errs.push_back("config_file timeout must be greater than zero (e.g. \"30s\")");
  if (const Value* c = Find(config, "content");
      KnownString(c) && c->as_string().find('\0') != std::string::npos)
    errs.push_back("config_file content contains a NUL character; give text");
  return errs;
}

void Plan(ValueMap& p, const ValueMap* prior, const Context& ctx) {
  if (const Value* m = Find(p, "mode"); KnownString(m)) {
    if (auto normal = NormalMode(m->as_string()))
      p["mode"] = Value::String(*normal).WithSensitive(m->ContainsSensitive());
  }
  p["exists"] = Value::Bool(true);
  const Value* path = Find(p, "path");
  const Value* content = Find(p, "content");
  if (!KnownString(path) || !content || content->ContainsUnknown() || !KnownString(content)) {
    p["content_digest"] = Value::Unknown(Type::String());
  } else {
    const bool sensitive = content->ContainsSensitive();
    const Value* prior_digest = prior ? Find(*prior, "content_digest") : nullptr;
    const Value* prior_content = prior ? Find(*prior, "content") : nullptr;
    // The key is created only by a write (StateValues): planning never writes.
    std::string digest =
        ContentDigest(path->as_string(), content->as_string(), sensitive, ctx.workspace_key, false);
    if (digest.empty()) {
      p["content_digest"] = Value::Unknown(Type::String());
    } else {
      p["content_digest"] = Value::String(digest).WithSensitive(sensitive);
      // The state holds a digest in place of sensitive content: the same
      // content plans no change.
      if (sensitive && prior_content && prior_content->ContainsSensitive() && KnownString(prior_digest) &&
          prior_digest->as_string() == digest)
        p["content"] = *prior_content;
    }
  }
  if (KnownString(path)) p["id"] = Value::String(path->as_string());
}

Result<ResourceObject> Write(const ValueMap& planned, const Context& ctx) {
  const std::string path = Text(planned, "path");
  if (std::string why = PathError(path); !why.empty()) return Fail("config_file path '" + path + "' " + why);
  const Value* content_v = Find(planned, "content");
  if (!KnownString(content_v)) return Fail("config_file '" + path + "': content must be known at apply");
  const bool sensitive = content_v->ContainsSensitive();
  std::string content = content_v->as_string();
  if (sensitive && content.rfind("hmac:", 0) == 0 && content == Text(planned, "content_digest")) {
    // Unchanged sensitive content arrives as the state's digest (Plan): the
    // file holds the content, as long as it still matches the digest.
    auto d = Inspect(path);
    if (!d.ok()) return d.error();
    if (!d.value().exists || !d.value().content ||
        ContentDigest(path, *d.value().content, true, ctx.workspace_key, false) != content)
      return Fail("config_file '" + path +
                  "': its sensitive content changed on disk since the plan was made; plan and apply again");
    content = std::move(*d.value().content);
  }
  auto mode = NormalMode(Text(planned, "mode").empty() ? "0644" : Text(planned, "mode"));
  if (!mode) return Fail("config_file '" + path + "': mode '" + Text(planned, "mode") + "' is not octal");
  const unsigned mode_bits = static_cast<unsigned>(std::stoul(*mode, nullptr, 8));
  const std::string owner = Text(planned, "owner"), group = Text(planned, "group");
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!owner.empty()) {
    auto u = LookUpOwner(owner);
    if (!u) return Fail("config_file '" + path + "': owner '" + owner + "' is not a user on this machine");
    uid = *u;
  }
  if (!group.empty()) {
    auto g = LookUpGroup(group);
    if (!g) return Fail("config_file '" + path + "': group '" + group + "' is not a group on this machine");
    gid = *g;
  }
  double timeout_ms = kDefaultTimeoutMs;
  if (const Value* t = Find(planned, "timeout");
      t && t->kind() == Value::Kind::Duration && t->as_number() > 0)
    timeout_ms = t->as_number();
  const auto deadline = std::chrono::milliseconds(static_cast<int64_t>(timeout_ms));

  const fs::path target(path);
  const fs::path dir = target.parent_path();
  const std::string name = target.filename().string();
  // The workspace (state, keys, the data root) is Plinth's own: never a target.
  std::error_code ec;
  fs::path real_dir = fs::canonical(dir, ec);
  if (ec)
    return Fail("config_file '" + path + "': its directory '" + dir.string() + "' " +
                (ec == std::errc::no_such_file_or_directory ? "does not exist: create it first"
                                                            : "cannot be resolved: " + ec.message()));
  if (!ctx.workspace_dir.empty()) {
    fs::path ws = fs::weakly_canonical(ctx.workspace_dir, ec);
    if (!ec) {
      auto rel = real_dir.lexically_relative(ws);
      if (!rel.empty() && *rel.begin() != "..")
        return Fail("config_file '" + path + "' lies inside the workspace directory '" + ws.string() +
                    "', which holds Plinth's state and keys; use a marker for files in the data root");
    }
  }
  struct ::stat st;
  if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    return Fail("config_file '" + path + "' is a directory; remove it or choose another path");

  io::TempFile tmp;
  if (int e = io::TempFile::Create(dir, name, mode_bits & 0777, &tmp); e != 0)
    return Fail("config_file '" + path + "': cannot create a temp file in '" + dir.string() +
                "': " + std::strerror(e));
  if (uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) {
    if (::fchown(tmp.fd(), uid, gid) != 0) {
      int e = errno;
      return Fail("config_file '" + path + "': cannot set owner/group " + (owner.empty() ? "-" : owner) +
                  ":" + (group.empty() ? "-" : group) + ": " + std::strerror(e) +
                  (e == EPERM ? " (changing a file's owner needs root)" : ""));
    }
  }
  // After fchown, which clears set-id bits.
  if (::fchmod(tmp.fd(), mode_bits) != 0)
    return Fail("config_file '" + path + "': cannot set mode " + *mode + ": " + std::strerror(errno));
  if (int e = tmp.Write(content); e != 0)
    return Fail("config_file '" + path + "': cannot write the temp file: " + std::strerror(e),
                e == EINTR || e == EAGAIN);
  if (::fsync(tmp.fd()) != 0)
    return Fail("config_file '" + path + "': cannot sync the temp file: " + std::strerror(errno));

  if (std::vector<std::string> argv = Argv(planned, "validate"); !argv.empty()) {
    const std::string tmp_path = tmp.path().string();
    for (std::string& a : argv) {
      for (size_t at = a.find("{path}"); at != std::string::npos; at = a.find("{path}", at + tmp_path.size()))
        a.replace(at, 6, tmp_path);
    }
    if (std::string why = RunCommand(argv, deadline, ctx, sensitive, "validate"); !why.empty()) {
      tmp.Discard();
      return Fail("config_file '" + path + "' was not changed: the " + why);
    }
  }
  const char* stage = nullptr;
  if (int e = tmp.Commit(name, &stage); e != 0)
    return Fail("config_file '" + path + "': cannot " + std::string(stage ? stage : "commit") +
                " it: " + std::strerror(e));

  ResourceObject o;
  o.id = path;
  o.attributes = planned;
  o.attributes["id"] = Value::String(path);
  o.attributes["mode"] = Value::String(*mode);
  o.attributes["exists"] = Value::Bool(true);
  std::string digest = ContentDigest(path, content, sensitive, ctx.workspace_key, true);
  o.attributes["content_digest"] = digest.empty() ? Value() : Value::String(digest).WithSensitive(sensitive);

  if (std::vector<std::string> argv = Argv(planned, "reload"); !argv.empty()) {
    if (std::string why = RunCommand(argv, deadline, ctx, sensitive, "reload"); !why.empty())
      return Fail("config_file '" + path + "' was written, but the " + why +
                  "; the next apply writes the file again and reruns reload");
  }
  return o;
}

Result<std::optional<ResourceObject>> Read(const std::string& id, const ValueMap& prior, const Context& ctx) {
  if (std::string why = PathError(id); !why.empty()) return Fail("config_file id '" + id + "' " + why);
  auto d = Inspect(id);
  if (!d.ok()) return d.error();
  return std::optional<ResourceObject>(ResourceObject{id, Observed(id, prior, d.value(), ctx)});
}

Result<Done> Delete(const std::string& id, const ValueMap& prior) {
  if (std::string why = PathError(id); !why.empty()) return Fail("config_file id '" + id + "' " + why);
  if (Flag(prior, "keep_on_destroy")) return Done{};
  struct ::stat st;
  if (::lstat(id.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) return Done{};
    return Fail("cannot inspect config_file '" + id + "': " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode))
    return Fail("config_file '" + id +
                "' is now a directory; remove it by hand (Plinth deletes only the file)");
  if (::unlink(id.c_str()) != 0 && errno != ENOENT)
    return Fail("cannot remove config_file '" + id + "': " + std::strerror(errno));
  if (int e = io::SyncDir(fs::path(id).parent_path()); e != 0)
    return Fail("config_file '" + id +
                "' was removed, but its directory could not be synced: " + std::strerror(e));
  return Done{};
}

Result<ResourceObject> Import(const std::string& id, const Context& ctx) {
  if (std::string why = PathError(id); !why.empty()) return Fail("config_file path '" + id + "' " + why);
  auto d = Inspect(id);
  if (!d.ok()) return d.error();
  if (!d.value().exists) return Fail("no regular file '" + id + "' to import");
  if (!d.value().content)
    return Fail("config_file '" + id + "' is larger than 64 MiB; not a configuration file");
  ValueMap prior;
  prior["owner"] = Value::String("");  // report owner and group by name
  prior["group"] = Value::String("");
  ValueMap a = Observed(id, prior, d.value(), ctx);
  a["content"] = Value::String(*d.value().content);
  return ResourceObject{id, std::move(a)};
}

ValueMap StateValues(const ValueMap& attributes, const Context& ctx) {
  const Value* c = Find(attributes, "content");
  if (!c || !c->ContainsSensitive() || !KnownString(c)) return attributes;
  ValueMap out = attributes;
  const std::string& text = c->as_string();
  if (text.rfind("hmac:", 0) == 0 && text == Text(attributes, "content_digest"))
    return out;  // a digest already
  std::string digest = ContentDigest(Text(attributes, "path"), text, true, ctx.workspace_key, true);
  // Without a key nothing can stand for the content: it is dropped (the
  // next plan then shows a change, never the content).
  out["content"] = digest.empty() ? Value().WithSensitive() : Value::String(digest).WithSensitive();
  out["content_digest"] = digest.empty() ? Value() : Value::String(digest).WithSensitive();
  return out;
}

}  // namespace plinth::runtime::config_file
