// An s3_bucket configuration as the checker hands it to the provider:
// identity, unknown computed attributes, the rest as given. Shared by the
// S3 provider tests with and without a store.
#pragma once

#include <fstream>
#include <map>
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

// The Ceph fixture's env file (tests/fixtures/run-s3-tests.sh sets
// PLINTH_S3_ENV to it): KEY=VALUE lines, optionally after "export ".
inline std::map<std::string, std::string> ReadS3EnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    size_t eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace plinth::testing
