#include "runtime/providers/external.h"

#include <cctype>
#include <cstdlib>

#include "runtime/process/process.h"
#include "runtime/providers/catalog.h"

namespace plinth::runtime {

namespace fs = std::filesystem;

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::chrono::milliseconds CallTimeout() {
  std::string t = Env("PLINTH_PROVIDER_TIMEOUT");
  char* end = nullptr;
  long s = t.empty() ? 0 : std::strtol(t.c_str(), &end, 10);
  if (s <= 0 || (end && *end)) return std::chrono::milliseconds(300'000);
  return std::chrono::milliseconds(int64_t{s} * 1000);
}

}  // namespace

ExternalProviders::ExternalProviders(fs::path config_dir) : config_dir_(std::move(config_dir)) {
  std::error_code ec;
  fs::path abs = fs::absolute(config_dir_, ec);
  if (!ec) config_dir_ = abs;
  // A single file given as the configuration: its directory.
  if (fs::is_regular_file(config_dir_, ec)) config_dir_ = config_dir_.parent_path();
}

ExternalProviders::~ExternalProviders() { StopAll(); }

void ExternalProviders::StopAll() {
  std::lock_guard lock(mu_);
  for (auto& [name, l] : loaded_) {
    if (l.provider) l.provider->Stop();
  }
}

std::optional<fs::path> ExternalProviders::Locate(const std::string& name, const std::string& source,
                                                  const fs::path& config_dir, std::string* error) {
  if (source.find('/') != std::string::npos) {
    fs::path p = fs::path(source).is_absolute() ? fs::path(source) : config_dir / source;
    std::error_code ec;
    fs::path norm = p.lexically_normal();
    if (!fs::exists(norm, ec)) {
      *error = "'" + source + "' does not exist";
      return std::nullopt;
    }
    auto found = process::FindExecutable(norm.string(), "");
    if (!found) {
      *error = "'" + source + "' is not an executable file (" + norm.string() + "); make it executable (chmod +x)";
      return std::nullopt;
    }
    return found;
  }
  std::string command = source.empty() ? "plinth-provider-" + name : source;
  std::string search = Env("PLINTH_PROVIDER_PATH");
  std::string local = (config_dir / ".plinth" / "providers").string();
  search += (search.empty() ? "" : ":") + local;
  std::string path = Env("PATH");
  if (!path.empty()) search += ":" + path;
  if (auto found = process::FindExecutable(command, search)) return found;
  *error = "no executable '" + command + "' in $PLINTH_PROVIDER_PATH, .plinth/providers of the configuration or $PATH";
  return std::nullopt;
}

std::map<std::string, std::string> ExternalProviders::EnvironmentFor(const std::string& name) {
  std::string prefix;
  for (char c : name) prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  prefix += "_";
  std::map<std::string, std::string> env;
  for (auto& [k, v] : process::CurrentEnvironment()) {
    if (k == "PATH" || k == "HOME" || k == "LANG" || k == "TZ" || k.rfind("PLINTH_PROVIDER_", 0) == 0 ||
        k.rfind(prefix, 0) == 0) {
      env[k] = v;
    }
  }
  return env;
}

const SchemaRegistry& ExternalProviders::Resolve(const SchemaRegistry& base,
                                                 const std::vector<ProviderRequest>& requests, Diagnostics& diags) {
  std::lock_guard lock(mu_);
  if (!registry_) registry_ = std::make_unique<SchemaRegistry>(base);
  for (const ProviderRequest& r : requests) {
    Range at = r.source.empty() ? r.name_range : r.source_range;
    // A built-in provider: the checker reports a `source` in its block as an
    // attribute its schema lacks.
    if (FindCatalogEntry(r.name)) continue;
    if (auto it = loaded_.find(r.name); it != loaded_.end()) {
      if (it->second.source != r.source) {
        diags.Error(DiagCode::ProviderUnavailable, at,
                    "provider '" + r.name + "' is already loaded from '" + it->second.source + "'")
            .help = "declare each provider once";
      }
      continue;
    }
    if (auto it = failed_.find(r.name); it != failed_.end() && it->second == r.source) {
      // Reported by the first check of this run; later checks stay quiet
      // about it but still fail.
      diags.Error(DiagCode::ProviderUnavailable, at, "provider '" + r.name + "' could not be loaded (see above)");
      continue;
    }
    auto fail = [&](const std::string& message, const std::string& help) {
      failed_[r.name] = r.source;
      diags.Error(DiagCode::ProviderUnavailable, at, message).help = help;
    };
    std::string error;
    std::optional<fs::path> exe = Locate(r.name, r.source, config_dir_, &error);
    if (!exe) {
      std::string builtin;
      for (const std::string& n : base.ProviderNames()) builtin += (builtin.empty() ? "" : ", ") + n;
      fail("cannot find provider '" + r.name + "': " + error +
               (r.source.empty() ? " (built-in providers that take a block: " + builtin + ")" : ""),
           r.source.empty() ? "set source = \"./path/to/provider\" in this block, or install plinth-provider-" +
                                  r.name + " on the provider search path (docs/providers/protocol.md)"
                            : "check the path; it is relative to the configuration directory");
      continue;
    }
    RpcProviderOptions o;
    o.name = r.name;
    o.executable = *exe;
    o.cwd = config_dir_;
    o.env = EnvironmentFor(r.name);
    o.call_timeout = CallTimeout();
    std::unique_ptr<RpcProvider> p = RpcProvider::Start(std::move(o), &error);
    if (!p) {
      fail(error, "run the provider by hand to see why; it must speak docs/providers/protocol.md on stdin/stdout");
      continue;
    }
    const ProviderSchemas& s = p->LoadedSchemas();
    std::string taken;
    for (const ResourceSchema& rs : s.resources) {
      if (registry_->Find(rs.type)) taken = rs.type;
    }
    if (!taken.empty()) {
      fail("provider '" + r.name + "' declares resource type '" + taken + "', which provider '" +
               registry_->ProviderOf(taken) + "' already serves",
           "each resource type belongs to one provider");
      continue;
    }
    for (const ResourceSchema& rs : s.resources) registry_->Register(rs);
    ProviderConfigSchema config = s.config;
    AttributeSchema source;
    source.name = "source";
    source.type = Type::String();
    source.mode = AttrMode::Optional;
    source.doc = "Where the provider's executable is (docs/providers/protocol.md).";
    config.body.attributes.push_back(std::move(source));
    registry_->RegisterProvider(std::move(config));
    loaded_[r.name] = Loaded{r.source, *exe, std::move(p)};
  }
  resolved_ = true;
  return *registry_;
}

const SchemaRegistry& ExternalProviders::Registry() const {
  std::lock_guard lock(mu_);
  return registry_ ? *registry_ : BuiltinSchemas();
}

bool ExternalProviders::Has(const std::string& name) const {
  std::lock_guard lock(mu_);
  return loaded_.count(name) > 0;
}

RpcProvider* ExternalProviders::Get(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = loaded_.find(name);
  return it == loaded_.end() ? nullptr : it->second.provider.get();
}

void ExternalProviders::Configure(const std::string& name, const ValueMap& config) {
  if (RpcProvider* p = Get(name)) p->SetConfiguration(config);
}

std::vector<std::string> ExternalProviders::Names() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, l] : loaded_) names.push_back(name);
  return names;
}

fs::path ExternalProviders::Executable(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = loaded_.find(name);
  return it == loaded_.end() ? fs::path() : it->second.executable;
}

}  // namespace plinth::runtime
