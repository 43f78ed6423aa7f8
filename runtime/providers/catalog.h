// The provider catalog: the one list of built-in providers. Each provider
// lives in runtime/providers/NAME/ and contributes one CatalogEntry (its
// resource schemas, the schema of its `provider "NAME" { }` block, and a
// factory); adding a provider is a new folder plus one line in catalog.cpp.
//
// The compiler never sees this file: callers hand BuiltinSchemas() (or a
// registry extended with out-of-process providers, external.h) to the
// checker as CheckOptions::schemas.
//
// Thread safety: everything here is immutable after first use.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/schema/schema.h"
#include "runtime/provider/provider.h"

namespace plinth::runtime {

// What a provider may need from the workspace it serves.
struct ProviderContext {
  std::filesystem::path config_dir;     // the root module's directory
  std::filesystem::path data_root;      // where the local provider keeps regions and buckets (absolute)
  std::filesystem::path workspace_key;  // the key file that wraps bucket keys (runtime/storage/keys.h)
  // The workspace's compute queue directory (DIR/.plinth/<workspace>/compute).
  std::filesystem::path compute_dir;
  // Set on the first Ctrl-C (EngineOptions::stop); providers that wait for
  // long work (a job's run) stop waiting. May be null.
  const std::atomic<bool>* stop = nullptr;
};

struct CatalogEntry {
  std::string name;  // "local", "s3"
  const SchemaSource& (*schemas)();
  // The schema of its provider block; nullopt when it takes no configuration.
  std::optional<ProviderConfigSchema> (*config_schema)();
  // Creates the provider from its block's evaluated configuration (empty when
  // there is no block), merged with whatever the provider reads from the
  // environment. An error says what is missing and where to set it; it never
  // quotes a sensitive value.
  Result<std::unique_ptr<Provider>> (*create)(const ProviderContext& context, const ValueMap& config);
};

const std::vector<CatalogEntry>& Catalog();
const CatalogEntry* FindCatalogEntry(std::string_view name);

// The schemas of every provider in the catalog.
const SchemaRegistry& BuiltinSchemas();

// Each provider folder's entry (defined in runtime/providers/NAME/entry.cpp).
CatalogEntry LocalCatalogEntry();
CatalogEntry S3CatalogEntry();
CatalogEntry SlurmCatalogEntry();

}  // namespace plinth::runtime
