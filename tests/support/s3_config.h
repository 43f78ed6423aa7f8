// An s3_bucket configuration as the checker hands it to the provider:
// identity, unknown computed attributes, the rest as given. Shared by the
// S3 provider tests with and without a store.
#pragma once

#include <string>

#include "compiler/types/types.h"

namespace plinth::testing {

inline ValueMap S3BucketConfig(const std::string& name, ValueMap extra = {}) {
  ValueMap m = {{"name", Value::String(name)},
                {"address", Value::String("s3_bucket." + name)},
                {"id", Value::Unknown(Type::String())},
                {"bucket", Value::Unknown(Type::String())},
                {"arn", Value::Unknown(Type::String())},
                {"endpoint", Value::Unknown(Type::String())}};
  for (auto& [k, v] : extra) m[k] = v;
  return m;
}

}  // namespace plinth::testing
