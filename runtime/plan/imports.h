// Imports: objects that exist outside Plinth taken under management
// (docs/cli.md, "Importing existing objects"; docs/language.md, the import
// block), and the configuration Plinth generates for them.
//
// Input: an object as a provider's Import returned it and its resource
// schema. Output: a canonical `resource` block (formatted by compiler/fmt)
// that plans no change against that object. Pure: nothing here reads or
// writes the outside world.
#pragma once

#include <string>
#include <vector>

#include "compiler/schema/schema.h"
#include "compiler/types/types.h"

namespace plinth::runtime {

// An object a provider's Import returned, for an address.
struct ImportedObject {
  std::string address;  // marker.logs
  std::string type;
  std::string id;       // the id it was imported by
  ValueMap attributes;  // every schema attribute, as Import returned them
  // Its type's schema, in the registry of the run that imported it (valid
  // while that Engine lives); null when unknown.
  const ResourceSchema* schema = nullptr;
};

// The labels of a root-module, unkeyed instance address (`marker.logs` ->
// {"marker", "logs"}); false when the address has a module path or an
// instance key, for which no single block can be generated.
bool SplitResourceAddress(const std::string& address, std::string* type, std::string* name);

// A `resource` block for `object` (root-module address without a key):
// every attribute the configuration may set, except those equal to their
// schema default or null; computed-only attributes are left out; a
// sensitive attribute is never printed: a comment says to set it. An
// attribute that takes a reference to another resource is written as that
// resource's name in quotes. Canonically formatted, with a comment saying
// where it came from. Returns "" and sets `error` when the address cannot
// hold a generated block.
std::string GenerateResourceBlock(const ImportedObject& object, const ResourceSchema& schema, std::string* error);

}  // namespace plinth::runtime
