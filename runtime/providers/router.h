// The provider the engine talks to: routes each resource type to the
// provider whose schema defines it. Built-in providers come from the catalog
// (catalog.h) and are created on first use, from their `provider "NAME" { }`
// block merged over the environment (docs/providers/s3.md), so a
// configuration without S3 resources never needs S3 settings. Providers in
// other processes come from ExternalProviders (external.h), which started
// them to learn their schemas.
//
// Thread safety: every method may be called concurrently; calls for one
// resource are never concurrent (the executor's contract).
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/provider/provider.h"
#include "runtime/providers/catalog.h"

namespace plinth::runtime {

class ExternalProviders;

class ProviderRouter : public Provider {
 public:
  // `external` (may be null) must outlive the router.
  explicit ProviderRouter(ProviderContext context, ExternalProviders* external = nullptr);
  ~ProviderRouter() override;

  // Serves `name` with `provider` instead of creating it from the catalog
  // (tests; the engine's wrapped providers).
  void Use(const std::string& name, std::unique_ptr<Provider> provider);

  // A provider block's evaluated configuration (before its resources are planned).
  void Configure(const std::string& provider, const ValueMap& config);
  // The provider name that serves `type` ("local" when no schema says otherwise).
  std::string ProviderOf(const std::string& type) const;
  // Built-in schemas plus those of the external providers loaded so far.
  const SchemaRegistry& Registry() const;

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
  Result<DeletePreview> PlanDelete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  Result<ResourceObject> Import(const std::string& type, const std::string& id) override;
  // Each provider checks the items of its own types.
  std::vector<PlanConflict> CheckPlan(const std::vector<PlanItem>& items) override;
  ValueMap StateValues(const std::string& type, const ValueMap& attributes) override;

 private:
  class RegistrySchemas : public SchemaSource {
   public:
    explicit RegistrySchemas(const ProviderRouter* router) : router_(router) {}
    std::string ProviderName() const override { return "router"; }
    std::vector<ResourceSchema> ResourceSchemas() const override;

   private:
    const ProviderRouter* router_;
  };

  // The provider for `type`, created on first use; an error when it cannot be.
  Result<Provider*> For(const std::string& type) const;

  ProviderContext context_;
  ExternalProviders* external_;
  RegistrySchemas schemas_{this};
  mutable std::mutex mu_;
  std::map<std::string, ValueMap> configs_;
  mutable std::map<std::string, std::unique_ptr<Provider>> built_;  // catalog providers made so far
  std::map<std::string, std::unique_ptr<Provider>> fixed_;          // given with Use()
  std::vector<std::unique_ptr<Provider>> retired_;  // replaced by a new configuration, possibly still in use
};

}  // namespace plinth::runtime
