// The provider the engine talks to: routes each resource type to the
// provider whose schema defines it (local, s3). Providers other than local
// are created on first use, from their `provider "NAME" { ... }` block merged
// over the environment (docs/providers/s3.md), so a configuration without
// S3 resources never needs S3 settings.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/provider/provider.h"

namespace plinth::runtime {

class ProviderRouter : public Provider {
 public:
  // `local` serves the local provider's types.
  explicit ProviderRouter(std::unique_ptr<Provider> local);
  ~ProviderRouter() override;

  // A provider block's evaluated configuration (before its resources are planned).
  void Configure(const std::string& provider, const ValueMap& config);
  // The provider name that serves `type` ("local" when no schema says otherwise).
  static std::string ProviderOf(const std::string& type);

  std::string Name() const override { return "router"; }
  const SchemaSource& Schemas() const override;
  std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const override;
  Result<PlanResponse> PlanChange(const PlanRequest& request) override;
  Result<ResourceObject> Create(const std::string& type, const ValueMap& planned) override;
  Result<std::optional<ResourceObject>> Read(const std::string& type, const std::string& id,
                                             const ValueMap& prior) override;
  Result<ResourceObject> Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                const ValueMap& planned) override;
  Result<Done> Delete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  Result<ResourceObject> Import(const std::string& type, const std::string& id) override;

 private:
  // The provider for `type`, created on first use; an error when it cannot be.
  Result<Provider*> For(const std::string& type) const;

  std::unique_ptr<Provider> local_;
  mutable std::mutex mu_;
  std::map<std::string, ValueMap> configs_;
  mutable std::map<std::string, std::unique_ptr<Provider>> others_;
  std::vector<std::unique_ptr<Provider>> retired_;  // replaced by a new configuration, possibly still in use
};

}  // namespace plinth::runtime
