#include "runtime/providers/catalog.h"

namespace plinth::runtime {

const std::vector<CatalogEntry>& Catalog() {
  // The one list of built-in providers.
  static const std::vector<CatalogEntry> catalog = {
      LocalCatalogEntry(),
      S3CatalogEntry(),
      SlurmCatalogEntry(),
  };
  return catalog;
}

const CatalogEntry* FindCatalogEntry(std::string_view name) {
  for (const CatalogEntry& e : Catalog()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

const SchemaRegistry& BuiltinSchemas() {
  static const SchemaRegistry registry = [] {
    SchemaRegistry r;
    for (const CatalogEntry& e : Catalog()) {
      r.Register(e.schemas());
      if (auto config = e.config_schema()) r.RegisterProvider(std::move(*config));
    }
    return r;
  }();
  return registry;
}

}  // namespace plinth::runtime
