#include "runtime/providers/router.h"

#include <algorithm>

#include "runtime/providers/external.h"

namespace plinth::runtime {

ProviderRouter::ProviderRouter(ProviderContext context, ExternalProviders* external)
    : context_(std::move(context)), external_(external) {}
ProviderRouter::~ProviderRouter() = default;

void ProviderRouter::Use(const std::string& name, std::unique_ptr<Provider> provider) {
  std::lock_guard lock(mu_);
  fixed_[name] = std::move(provider);
}

const SchemaRegistry& ProviderRouter::Registry() const {
  return external_ ? external_->Registry() : BuiltinSchemas();
}

std::string ProviderRouter::ProviderOf(const std::string& type) const {
  std::string name = Registry().ProviderOf(type);
  return name.empty() ? "local" : name;
}

std::vector<ResourceSchema> ProviderRouter::RegistrySchemas::ResourceSchemas() const {
  std::vector<ResourceSchema> out;
  const SchemaRegistry& r = router_->Registry();
  for (const std::string& t : r.TypeNames()) out.push_back(*r.Find(t));
  return out;
}

const SchemaSource& ProviderRouter::Schemas() const { return schemas_; }

void ProviderRouter::Configure(const std::string& provider, const ValueMap& config) {
  if (external_ && external_->Has(provider)) {
    external_->Configure(provider, config);
    return;
  }
  std::lock_guard lock(mu_);
  auto it = configs_.find(provider);
  if (it != configs_.end() && Value::Object(it->second).Equals(Value::Object(config))) return;  // each wave's plan
  configs_[provider] = config;
  // A changed configuration makes a new provider on next use; the old one
  // stays alive, since a call that already holds it may still be running.
  if (auto p = built_.find(provider); p != built_.end()) {
    retired_.push_back(std::move(p->second));
    built_.erase(p);
  }
}

Result<Provider*> ProviderRouter::For(const std::string& type) const {
  std::string name = ProviderOf(type);
  if (external_ && external_->Has(name)) return external_->Get(name);
  std::lock_guard lock(mu_);
  if (auto it = fixed_.find(name); it != fixed_.end()) return it->second.get();
  if (auto it = built_.find(name); it != built_.end()) return it->second.get();
  const CatalogEntry* entry = FindCatalogEntry(name);
  if (!entry) {
    return ProviderError{"resource type '" + type + "' belongs to provider '" + name +
                             "', which this configuration does not declare: add its provider block (with its source)",
                         false};
  }
  ValueMap config;
  if (auto it = configs_.find(name); it != configs_.end()) config = it->second;
  auto made = entry->create(context_, config);
  if (!made.ok()) return made.error();
  Provider* raw = made.value().get();
  built_[name] = std::move(made.value());
  return raw;
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

Result<DeletePreview> ProviderRouter::PlanDelete(const std::string& type, const std::string& id,
                                                 const ValueMap& prior) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->PlanDelete(type, id, prior);
}

std::vector<PlanConflict> ProviderRouter::CheckPlan(const std::vector<PlanItem>& items) {
  // Each provider sees the items of its own types, in plan order.
  std::vector<std::pair<Provider*, std::vector<PlanItem>>> groups;
  for (const PlanItem& item : items) {
    auto p = For(item.type);
    if (!p.ok()) continue;  // reported where the resource was planned
    auto g = std::find_if(groups.begin(), groups.end(), [&](const auto& x) { return x.first == p.value(); });
    if (g == groups.end()) g = groups.insert(groups.end(), {p.value(), {}});
    g->second.push_back(item);
  }
  std::vector<PlanConflict> out;
  for (auto& [provider, group] : groups) {
    for (PlanConflict& c : provider->CheckPlan(group)) out.push_back(std::move(c));
  }
  return out;
}

ValueMap ProviderRouter::StateValues(const std::string& type, const ValueMap& attributes) {
  auto p = For(type);
  return p.ok() ? p.value()->StateValues(type, attributes) : attributes;
}

Result<ResourceObject> ProviderRouter::Import(const std::string& type, const std::string& id) {
  auto p = For(type);
  if (!p.ok()) return p.error();
  return p.value()->Import(type, id);
}

}  // namespace plinth::runtime
