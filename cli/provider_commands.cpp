// plinth providers schema: every provider's schemas as JSON (the built-in
// catalog's and those of the configuration's providers in other processes),
// in the shape of the protocol's `schemas` answer
// (docs/providers/protocol.md), one entry per provider.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compiler/check/checker.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/schema/schema_json.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"

namespace plinth::cli {

int Providers(const Options& o) {
  if (o.paths.empty() || o.paths[0] != "schema" || o.paths.size() > 2) {
    std::fprintf(stderr, "usage: plinth providers schema [DIR]\n");
    return 2;
  }
  const std::string dir = o.paths.size() == 2 ? o.paths[1] : !o.dir.empty() ? o.dir : ".";
  SourceManager sources;
  Diagnostics diags;
  runtime::ExternalProviders external(dir);
  CheckOptions co = ConfigCheckOptions({}, external);
  (void)Check(dir, sources, diags, co);
  // Only failures to load a provider matter here; a configuration that does
  // not check still names its providers.
  std::vector<Diagnostic> failed;
  for (const Diagnostic& d : diags.Sorted(sources)) {
    if (d.code == DiagCode::ProviderUnavailable || d.code == DiagCode::NoConfiguration ||
        d.code == DiagCode::FileUnreadable) {
      failed.push_back(d);
    }
  }
  if (!failed.empty()) {
    std::fputs(RenderText(failed, sources, RenderOptions{}).c_str(), stderr);
    return 1;
  }
  const SchemaRegistry& registry = external.Registry();
  std::map<std::string, ProviderSchemas> by_provider;
  for (const runtime::CatalogEntry& e : runtime::Catalog()) {
    ProviderSchemas& p = by_provider[e.name];
    p.config.name = e.name;
    if (auto c = e.config_schema()) p.config = *c;
  }
  for (const std::string& name : registry.ProviderNames()) {
    const ProviderConfigSchema* c = registry.FindProvider(name);
    by_provider[name].config = *c;
  }
  for (const std::string& type : registry.TypeNames()) {
    const ResourceSchema* s = registry.Find(type);
    by_provider[s->provider].resources.push_back(*s);
  }
  nlohmann::json out = {{"format_version", 1}, {"providers", nlohmann::json::object()}};
  for (const auto& [name, p] : by_provider) {
    nlohmann::json j = ProviderSchemasToJson(p);
    j.erase("protocol_version");
    j.erase("name");
    j["built_in"] = runtime::FindCatalogEntry(name) != nullptr;
    if (!j["built_in"].get<bool>()) j["executable"] = external.Executable(name).string();
    out["providers"][name] = std::move(j);
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace plinth::cli
