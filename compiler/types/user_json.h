// Values in machine-readable output (`--json` of validate, inspect and plan):
// plain JSON where a value has a natural JSON form, tagged objects where it
// does not. Stable and documented in docs/diagnostics.md and docs/plan-json.md:
//   null, bools, numbers (integers when integral), strings, arrays, objects
//   duration/size/percent -> {"unit": "30s", "value": 30000}
//   unknown               -> {"unknown": true, "type": "string"}
//   sensitive             -> {"sensitive": true} (the value itself is never written)
// Unlike compiler/types/value_json.h (the lossless state encoding), this
// form is for people and tools reading output, and never reveals secrets.
#pragma once

#include <nlohmann/json.hpp>

#include "compiler/types/types.h"

namespace plinth {

nlohmann::json ValueToUserJson(const Value& v);

}  // namespace plinth
