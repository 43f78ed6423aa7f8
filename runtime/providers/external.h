// Providers in other processes, found from the root module's provider blocks
// (`provider "NAME" { source = "./path" }`, or a name the catalog lacks) and
// started through the process layer: the checker's ProviderResolver, and the
// owner of every external provider process for the rest of the run.
//
// Lookup (docs/providers/protocol.md, "Declaring one"): a source with a '/'
// is a path relative to the configuration directory; a bare name, or
// plinth-provider-NAME when there is no source, is searched in
// $PLINTH_PROVIDER_PATH, then DIR/.plinth/providers, then $PATH.
//
// Lifetime: processes start in the first Resolve and stop when this object is
// destroyed (or StopAll), so none outlives the run that started it.
//
// Thread safety: Resolve is called by one checker at a time; Has, Get,
// Configure and Registry may be called from any thread after it.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "compiler/check/checker.h"
#include "runtime/providers/protocol/rpc_provider.h"

namespace plinth::runtime {

class ExternalProviders : public ProviderResolver {
 public:
  explicit ExternalProviders(std::filesystem::path config_dir);
  ~ExternalProviders() override;

  const SchemaRegistry& Resolve(const SchemaRegistry& base, const std::vector<ProviderRequest>& requests,
                                Diagnostics& diags) override;

  // Built-in schemas plus every provider loaded so far.
  const SchemaRegistry& Registry() const;
  bool Has(const std::string& name) const;
  RpcProvider* Get(const std::string& name) const;
  void Configure(const std::string& name, const ValueMap& config);
  std::vector<std::string> Names() const;
  // The executable that serves `name`.
  std::filesystem::path Executable(const std::string& name) const;
  void StopAll();

  // Where the executable for provider `name` with `source` (empty: none) is;
  // nullopt with `*error` saying where it looked.
  static std::optional<std::filesystem::path> Locate(const std::string& name, const std::string& source,
                                                     const std::filesystem::path& config_dir, std::string* error);
  // The environment a provider runs with (see the protocol doc).
  static std::map<std::string, std::string> EnvironmentFor(const std::string& name);

 private:
  struct Loaded {
    std::string source;
    std::filesystem::path executable;
    std::unique_ptr<RpcProvider> provider;
  };

  std::filesystem::path config_dir_;
  mutable std::mutex mu_;
  std::map<std::string, Loaded> loaded_;
  std::map<std::string, std::string> failed_;  // name -> source of providers that could not load
  bool resolved_ = false;
  std::unique_ptr<SchemaRegistry> registry_;  // stable address once made
};

}  // namespace plinth::runtime
