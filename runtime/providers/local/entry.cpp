// The local provider's catalog entry (runtime/providers/catalog.h).
#include "runtime/providers/catalog.h"
#include "runtime/providers/local/provider.h"
#include "runtime/providers/local/schema.h"

namespace plinth::runtime {

CatalogEntry LocalCatalogEntry() {
  return {
      "local",
      &LocalProviderSchemas,
      [] { return std::optional<ProviderConfigSchema>(); },  // configured by the workspace, not a block
      [](const ProviderContext& context, const ValueMap&) -> Result<std::unique_ptr<Provider>> {
        return std::unique_ptr<Provider>(std::make_unique<LocalProvider>(
            context.data_root, context.workspace_key, context.stop, context.compute_dir, context.config_dir));
      },
  };
}

}  // namespace plinth::runtime
