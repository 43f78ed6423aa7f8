// Schemas of the `s3` provider: buckets in AWS S3 or an S3-compatible store
// (docs/providers/s3.md). The provider itself (provider.h) lives beside this
// file in the runtime; the compiler only needs the schemas, so this file
// depends on compiler/schema and compiler/types alone.
#pragma once

#include "compiler/schema/schema.h"

namespace plinth {

const SchemaSource& S3ProviderSchemas();

}  // namespace plinth
