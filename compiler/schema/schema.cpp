#include "compiler/schema/schema.h"

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
  auto attr = [](std::string name, std::string doc, bool sensitive = false) {
    AttributeSchema a;
    a.name = std::move(name);
    a.type = Type::String();
    a.mode = AttrMode::Optional;
    a.doc = std::move(doc);
    a.sensitive = sensitive;
    return a;
  };
  ProviderConfigSchema p;
  p.name = "s3";
  p.doc = "An S3-compatible object store. Anything left out comes from the environment (AWS_ENDPOINT_URL_S3 or "
          "AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).";
  p.body.attributes = {
      attr("endpoint", "The store's URL, e.g. http://127.0.0.1:7480."),
      attr("region", "The signing region (us-east-1 when unset)."),
      attr("access_key", "The access key id."),
      attr("secret_key", "The secret access key; never shown.", /*sensitive=*/true),
  };
  AttributeSchema path_style;
  path_style.name = "path_style";
  path_style.type = Type::Bool();
  path_style.mode = AttrMode::Optional;
  path_style.default_value = Value::Bool(true);
  path_style.doc = "Address buckets as ENDPOINT/BUCKET (true) or BUCKET.HOST (false).";
  p.body.attributes.push_back(std::move(path_style));
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
