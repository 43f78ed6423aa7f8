#include "runtime/providers/router.h"

#include "runtime/providers/s3/provider.h"

namespace plinth::runtime {

namespace {

class AllSchemas : public SchemaSource {
 public:
  std::string ProviderName() const override { return "router"; }
  std::vector<ResourceSchema> ResourceSchemas() const override {
    std::vector<ResourceSchema> out;
    for (const std::string& t : BuiltinSchemas().TypeNames()) out.push_back(*BuiltinSchemas().Find(t));
    return out;
  }
};

std::string Text(const ValueMap& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->second.kind() == Value::Kind::String ? it->second.as_string() : "";
}

}  // namespace

ProviderRouter::ProviderRouter(std::unique_ptr<Provider> local) : local_(std::move(local)) {}
ProviderRouter::~ProviderRouter() = default;

std::string ProviderRouter::ProviderOf(const std::string& type) {
  const ResourceSchema* s = BuiltinSchemas().Find(type);
  return s ? s->provider : "local";
}

const SchemaSource& ProviderRouter::Schemas() const {
  static const AllSchemas all;
  return all;
}

void ProviderRouter::Configure(const std::string& provider, const ValueMap& config) {
  std::lock_guard lock(mu_);
  auto it = configs_.find(provider);
  if (it != configs_.end() && Value::Object(it->second).Equals(Value::Object(config))) return;  // each wave's plan
  configs_[provider] = config;
  // A changed configuration makes a new provider on next use; the old one
  // stays alive, since a call that already holds it may still be running.
  if (auto p = others_.find(provider); p != others_.end()) {
    retired_.push_back(std::move(p->second));
    others_.erase(p);
  }
}

Result<Provider*> ProviderRouter::For(const std::string& type) const {
  std::string name = ProviderOf(type);
  if (name == "local") return local_.get();
  std::lock_guard lock(mu_);
  if (auto it = others_.find(name); it != others_.end()) return it->second.get();
  if (name == "s3") {
    S3Config c = S3Config::FromEnvironment();
    if (auto it = configs_.find("s3"); it != configs_.end()) {
      const ValueMap& m = it->second;
      if (std::string v = Text(m, "endpoint"); !v.empty()) c.endpoint = v;
      if (std::string v = Text(m, "region"); !v.empty()) c.region = v;
      if (std::string v = Text(m, "access_key"); !v.empty()) c.access_key = v;
      if (std::string v = Text(m, "secret_key"); !v.empty()) c.secret_key = v;
      if (auto p = m.find("path_style"); p != m.end() && p->second.kind() == Value::Kind::Bool) {
        c.path_style = p->second.as_bool();
      }
    }
    if (c.endpoint.empty()) {
      return ProviderError{"the s3 provider has no endpoint: set endpoint in a provider \"s3\" { } block, or "
                           "AWS_ENDPOINT_URL",
                           false};
    }
    if (c.access_key.empty() || c.secret_key.empty()) {
      return ProviderError{"the s3 provider has no credentials: set access_key and secret_key in a provider \"s3\" "
                           "{ } block, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                           false};
    }
    auto p = std::make_unique<S3Provider>(std::move(c));
    Provider* raw = p.get();
    others_[name] = std::move(p);
    return raw;
  }
  return ProviderError{"no provider serves resource type '" + type + "'", false};
}

std::vector<std::string> ProviderRouter::Validate(const std::string& type, const ValueMap& config) const {
  auto p = For(type);
  if (!p.ok()) return {p.error().message};
  return p.value()->Validate(type, config);
}

Result<PlanResponse> ProviderRouter::PlanChange(const PlanRequest& request) {
  auto p = For(request.type);
  if (!p.ok()) return p.error();
  return p.value()->PlanChange(request);
}

Result<ResourceObject> ProviderRouter::Create(const std::string& type, const ValueMap& planned) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->Create(type, planned);
}

Result<std::optional<ResourceObject>> ProviderRouter::Read(const std::string& type, const std::string& id,
                                                           const ValueMap& prior) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->Read(type, id, prior);
}

Result<ResourceObject> ProviderRouter::Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                              const ValueMap& planned) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->Update(type, id, prior, planned);
}

Result<Done> ProviderRouter::Delete(const std::string& type, const std::string& id, const ValueMap& prior) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->Delete(type, id, prior);
}

Result<ResourceObject> ProviderRouter::Import(const std::string& type, const std::string& id) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->Import(type, id);
}

}  // namespace plinth::runtime
