// The s3 provider's catalog entry (runtime/providers/catalog.h): the schema
// of its provider block and how a block and the environment make a provider.
#include "compiler/schema/builders.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/s3/provider.h"
#include "runtime/providers/s3/schema.h"

namespace plinth::runtime {
namespace {

std::optional<ProviderConfigSchema> ConfigSchema() {
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

std::string Text(const ValueMap& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->second.kind() == Value::Kind::String ? it->second.as_string() : "";
}

Result<std::unique_ptr<Provider>> Create(const ProviderContext&, const ValueMap& m) {
  S3Config c = S3Config::FromEnvironment();
  if (std::string v = Text(m, "endpoint"); !v.empty()) c.endpoint = v;
  if (std::string v = Text(m, "region"); !v.empty()) c.region = v;
  if (std::string v = Text(m, "access_key"); !v.empty()) c.access_key = v;
  if (std::string v = Text(m, "secret_key"); !v.empty()) c.secret_key = v;
  if (auto p = m.find("path_style"); p != m.end() && p->second.kind() == Value::Kind::Bool) {
    c.path_style = p->second.as_bool();
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
  return std::unique_ptr<Provider>(std::make_unique<S3Provider>(std::move(c)));
}

}  // namespace

CatalogEntry S3CatalogEntry() { return {"s3", &S3ProviderSchemas, &ConfigSchema, &Create}; }

}  // namespace plinth::runtime
