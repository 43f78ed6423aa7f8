#include "compiler/schema/schema.h"

#include "runtime/providers/local/schema.h"

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

const ResourceSchema* SchemaRegistry::Find(std::string_view type) const {
  auto it = schemas_.find(type);
  return it == schemas_.end() ? nullptr : &it->second;
}

std::vector<std::string> SchemaRegistry::TypeNames() const {
  std::vector<std::string> names;
  for (const auto& [name, s] : schemas_) names.push_back(name);
  return names;
}

const SchemaRegistry& BuiltinSchemas() {
  static const SchemaRegistry registry = [] {
    SchemaRegistry r;
    r.Register(LocalProviderSchemas());
    return r;
  }();
  return registry;
}

}  // namespace plinth
