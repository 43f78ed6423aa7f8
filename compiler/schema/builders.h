// Small builders that providers' schema files use to declare attributes
// readably: Attr(...) plus modifiers (WithDefault, ForceNew, Enum, ...).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/schema/schema.h"

namespace plinth::schema {

inline AttributeSchema Attr(std::string name, Type type, AttrMode mode, std::string doc) {
  AttributeSchema a;
  a.name = std::move(name);
  a.type = std::move(type);
  a.mode = mode;
  a.doc = std::move(doc);
  return a;
}

// A reference to a resource of `type` (`region = region.eu`).
inline AttributeSchema Ref(std::string name, std::string type, AttrMode mode, std::string doc) {
  AttributeSchema a = Attr(std::move(name), Type::Any(), mode, std::move(doc));
  a.ref_type = std::move(type);
  return a;
}

inline AttributeSchema WithDefault(AttributeSchema a, Value v) {
  a.default_value = std::move(v);
  return a;
}

inline AttributeSchema ForceNew(AttributeSchema a) {
  a.force_new = true;
  return a;
}

inline AttributeSchema Sensitive(AttributeSchema a) {
  a.sensitive = true;
  return a;
}

inline AttributeSchema Enum(AttributeSchema a, std::vector<std::string> values) {
  a.allowed_values = std::move(values);
  return a;
}

// Warning P0403 where a non-default value is set (AttributeSchema::caveat).
inline AttributeSchema Caveat(AttributeSchema a, std::string caveat) {
  a.caveat = std::move(caveat);
  return a;
}

inline std::shared_ptr<const BlockSchema> Body(std::vector<AttributeSchema> attrs) {
  auto b = std::make_shared<BlockSchema>();
  b->attributes = std::move(attrs);
  return b;
}

}  // namespace plinth::schema
