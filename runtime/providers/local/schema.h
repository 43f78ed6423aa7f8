// Schemas of the `local` provider: the embedded default that runs everything
// on one machine (regions are directories under a data root). The engine that
// creates, reads and deletes these resources lives beside this file; the
// compiler only needs their schemas.
#pragma once

#include "compiler/schema/schema.h"

namespace plinth {

const SchemaSource& LocalProviderSchemas();

}  // namespace plinth
