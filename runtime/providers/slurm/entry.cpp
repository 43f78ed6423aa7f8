// The slurm provider's catalog entry (runtime/providers/catalog.h): the
// schema of its provider block and how a block and the environment make a
// provider.
#include <cstdlib>

#include "compiler/schema/builders.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/slurm/provider.h"
#include "runtime/providers/slurm/schema.h"

namespace plinth::runtime {
namespace {

std::optional<ProviderConfigSchema> ConfigSchema() {
  using namespace schema;  // NOLINT
  ProviderConfigSchema p;
  p.name = "slurm";
  p.doc =
      "A Slurm cluster reached through its commands (sbatch, scontrol, sacct, scancel) on this machine. "
      "Anything left out comes from the environment (PLINTH_SLURM_BIN, SLURM_CONF, SBATCH_PARTITION, "
      "PATH).";
  p.body.attributes = {
      Attr("bin_dir", Type::String(), AttrMode::Optional,
           "Directory holding sbatch, scontrol, sacct and scancel, searched before PATH."),
      Attr("slurm_conf", Type::String(), AttrMode::Optional,
           "The cluster's slurm.conf, passed to every command as SLURM_CONF."),
      Attr("partition", Type::String(), AttrMode::Optional, "The partition of a slurm_pool that sets none."),
  };
  return p;
}

std::string Text(const ValueMap& m, const char* key) {
  auto it = m.find(key);
  return it != m.end() && it->second.kind() == Value::Kind::String ? it->second.as_string() : "";
}

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

Result<std::unique_ptr<Provider>> Create(const ProviderContext& context, const ValueMap& m) {
  SlurmSettings s;
  std::string bin = Text(m, "bin_dir");
  if (bin.empty()) bin = Env("PLINTH_SLURM_BIN");
  std::string path = Env("PATH");
  if (path.empty()) path = "/usr/local/bin:/usr/bin:/bin";
  s.client.path_list = bin.empty() ? path : bin + ":" + path;
  std::string conf = Text(m, "slurm_conf");
  if (conf.empty()) conf = Env("SLURM_CONF");
  s.client.slurm_conf = conf;
  s.default_partition = Text(m, "partition");
  if (s.default_partition.empty()) s.default_partition = Env("SBATCH_PARTITION");
  s.workspace_key = context.workspace_key;
  s.compute_dir = context.compute_dir;
  s.config_dir = context.config_dir;
  s.stop = context.stop;
  return std::unique_ptr<Provider>(std::make_unique<SlurmProvider>(std::move(s)));
}

}  // namespace

CatalogEntry SlurmCatalogEntry() {
  return {"slurm", &SlurmProviderSchemas, &ConfigSchema, &Create};
}

}  // namespace plinth::runtime
