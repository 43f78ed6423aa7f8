// Provider schemas as JSON: the `schemas` answer of an out-of-process
// provider (docs/providers/protocol.md, "schemas") and the output of
// `plinth providers schema`.
//
// Decoding checks everything a built-in schema guarantees by construction:
// identifiers, no duplicates, known modes and types, defaults of the declared
// type on optional attributes only, allowed values on strings only, a
// computed string `id` on every resource. An error names the offending field
// by path ("resources[2].body.attributes[0].default: ...").
//
// Thread safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "compiler/schema/schema.h"

namespace plinth {

struct ProviderSchemas {
  ProviderConfigSchema config;  // its provider block
  std::vector<ResourceSchema> resources;
};

nlohmann::json BlockSchemaToJson(const BlockSchema& block);
nlohmann::json ProviderSchemasToJson(const ProviderSchemas& schemas);

// Decodes a provider's `schemas` result for provider `name`: every resource
// type must start with "NAME_". False and `error` set when anything is wrong.
bool ProviderSchemasFromJson(const nlohmann::json& json, const std::string& name, ProviderSchemas* out,
                             std::string* error);

}  // namespace plinth
