// Provider schemas: the one interface through which the checker, the planner
// and the language server learn what a resource type accepts.
//
// A provider implements SchemaSource; the registry maps resource type names
// ("bucket") to schemas. Schemas are plain data, immutable once registered.
//
// The compiler knows no provider: its callers pass a SchemaRegistry in
// (CheckOptions::schemas). The runtime's provider catalog
// (runtime/providers/catalog.h) builds the registry of the built-in
// providers; out-of-process providers add theirs through a ProviderResolver
// (compiler/check/checker.h).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/types/types.h"

namespace plinth {

enum class AttrMode : uint8_t {
  Required,          // the user must set it
  Optional,          // the user may set it; `default_value` applies otherwise
  Computed,          // only the provider sets it; known after apply unless plan_value is set
  OptionalComputed,  // the user may set it; otherwise the provider computes it
};

struct AttributeSchema {
  std::string name;
  Type type;
  AttrMode mode = AttrMode::Optional;
  std::optional<Value> default_value;
  bool force_new = false;  // changing it replaces the resource
  bool sensitive = false;  // never shown in plans, logs or errors
  // When set, the attribute takes a reference to a resource of this type
  // (`region = region.eu`) or that resource's name as a string.
  std::string ref_type;
  std::vector<std::string> allowed_values;  // for string enums
  std::string doc;
  // What a value other than the default does not do on this provider; the
  // checker shows it as warning P0403 where such a value is set.
  std::string caveat;
};

struct BlockSchema;
struct NestedBlockSchema {
  std::string name;
  bool labeled = false;  // `grant "trainer" { ... }`
  std::string label_doc;
  size_t min_items = 0;
  size_t max_items = SIZE_MAX;
  std::shared_ptr<const BlockSchema> body;
  std::string doc;
};

struct BlockSchema {
  std::vector<AttributeSchema> attributes;
  std::vector<NestedBlockSchema> blocks;

  const AttributeSchema* FindAttribute(std::string_view name) const;
  const NestedBlockSchema* FindBlock(std::string_view name) const;
};

// The configuration a provider takes in a `provider "NAME" { ... }` block
// of the root module (endpoint, credentials, ...).
struct ProviderConfigSchema {
  std::string name;  // "s3"
  std::string doc;
  BlockSchema body;
};

struct ResourceSchema {
  std::string type;      // "bucket"
  std::string provider;  // "local"
  std::string doc;
  BlockSchema body;
};

class SchemaSource {
 public:
  virtual ~SchemaSource() = default;
  virtual std::string ProviderName() const = 0;
  virtual std::vector<ResourceSchema> ResourceSchemas() const = 0;
};

class SchemaRegistry {
 public:
  void Register(const SchemaSource& source);
  void Register(ResourceSchema schema);
  void RegisterProvider(ProviderConfigSchema config);
  const ResourceSchema* Find(std::string_view type) const;
  // The provider that serves `type`; empty when no schema defines it.
  std::string ProviderOf(std::string_view type) const;
  const ProviderConfigSchema* FindProvider(std::string_view name) const;
  std::vector<std::string> TypeNames() const;
  std::vector<std::string> ProviderNames() const;  // providers that take a provider block

 private:
  std::map<std::string, ResourceSchema, std::less<>> schemas_;
  std::map<std::string, ProviderConfigSchema, std::less<>> providers_;
};

}  // namespace plinth
