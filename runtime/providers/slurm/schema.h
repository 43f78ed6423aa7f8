// The schemas of the `slurm` provider's resources: slurm_pool and slurm_job
// (docs/providers/slurm.md).
#pragma once

#include "compiler/schema/schema.h"

namespace plinth {

const SchemaSource& SlurmProviderSchemas();

}  // namespace plinth
