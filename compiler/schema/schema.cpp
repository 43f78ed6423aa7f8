#include "compiler/schema/schema.h"

namespace plinth {

const AttributeSchema* BlockSchema::FindAttribute(std::string_view name) const {
  for (const AttributeSchema& a : attributes) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

const NestedBlockSchema* BlockSchema::FindBlock(std::string_view name) const {
  for (const NestedBlockSchema& b : blocks) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

void SchemaRegistry::Register(const SchemaSource& source) {
  for (ResourceSchema& s : source.ResourceSchemas()) schemas_.insert_or_assign(s.type, std::move(s));
}

void SchemaRegistry::Register(ResourceSchema schema) {
  std::string type = schema.type;
  schemas_.insert_or_assign(std::move(type), std::move(schema));
}

std::string SchemaRegistry::ProviderOf(std::string_view type) const {
  const ResourceSchema* s = Find(type);
  return s ? s->provider : "";
}

void SchemaRegistry::RegisterProvider(ProviderConfigSchema config) {
  std::string name = config.name;
  providers_.insert_or_assign(std::move(name), std::move(config));
}

const ProviderConfigSchema* SchemaRegistry::FindProvider(std::string_view name) const {
  auto it = providers_.find(name);
  return it == providers_.end() ? nullptr : &it->second;
}

std::vector<std::string> SchemaRegistry::ProviderNames() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : providers_) names.push_back(name);
  return names;
}

const ResourceSchema* SchemaRegistry::Find(std::string_view type) const {
  auto it = schemas_.find(type);
  return it == schemas_.end() ? nullptr : &it->second;
}

std::vector<std::string> SchemaRegistry::TypeNames() const {
  std::vector<std::string> names;
  for (const auto& [name, s] : schemas_) names.push_back(name);
  return names;
}

}  // namespace plinth
