// Schemas of the `local` provider: the embedded default that runs everything
// on one machine (regions are directories under a data root). The engine that
// creates, reads and deletes these resources lives beside this file; the
// compiler only needs their schemas.
#pragma once

#include "compiler/schema/schema.h"

namespace plinth {

const SchemaSource& LocalProviderSchemas();

// The body of a pool's `patch` block (docs/compute.md, "Patching nodes"),
// shared with the slurm provider's slurm_pool (`slurm`: its window's doc).
std::shared_ptr<const BlockSchema> PatchBody(bool slurm);

}  // namespace plinth
