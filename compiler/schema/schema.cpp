#include "compiler/schema/schema.h"

#include "compiler/schema/builders.h"

#include "runtime/providers/local/schema.h"
#include "runtime/providers/s3/schema.h"

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

ProviderConfigSchema S3ProviderConfigSchema() {
  using namespace schema;  // NOLINT
  ProviderConfigSchema p;
  p.name = "s3";
  p.doc = "An S3-compatible object store. Anything left out comes from the environment (AWS_ENDPOINT_URL_S3 or "
          "AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).";
  p.body.attributes = {
      Attr("endpoint", Type::String(), AttrMode::Optional, "The store's URL, e.g. http://127.0.0.1:7480."),
      Attr("region", Type::String(), AttrMode::Optional, "The signing region (us-east-1 when unset)."),
      Attr("access_key", Type::String(), AttrMode::Optional, "The access key id."),
      Sensitive(Attr("secret_key", Type::String(), AttrMode::Optional, "The secret access key; never shown.")),
      WithDefault(Attr("path_style", Type::Bool(), AttrMode::Optional,
                       "Address buckets as ENDPOINT/BUCKET (true) or BUCKET.HOST (false)."),
                  Value::Bool(true)),
  };
  return p;
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
    r.Register(S3ProviderSchemas());
    r.RegisterProvider(S3ProviderConfigSchema());
    return r;
  }();
  return registry;
}

}  // namespace plinth
