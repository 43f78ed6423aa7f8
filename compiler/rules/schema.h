// The layout a rule can read: named, typed fields (docs/rules.md, "Schemas").
//
// A RuleSchema lists every field a rule expression may reference, by dotted
// path ("self.encryption", "requests_per_second"). Fields are scalars (bool,
// string, number, duration, size, percent), lists of scalars, or lists of
// objects whose attributes are scalars. The path is split on '.', so
// `self.encryption` in a rule resolves to the field "self.encryption"; any
// prefix of a path ("self") is a namespace, not a value.
//
// Invariants: paths are unique; a path is never a prefix of another field's
// path at a '.' boundary (a field is not also a namespace). The schema is
// plain data: immutable after building, safe to share between threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "compiler/types/types.h"

namespace plinth::rules {

// The scalar types a rule computes with. Numbers are doubles; units are
// canonical (durations in ms, sizes in bytes, percentages as written).
enum class ScalarType : uint8_t { Bool, Number, Duration, Size, Percent, String };
const char* ScalarTypeName(ScalarType t);  // "bool", "number", "duration", ...

enum class FieldShape : uint8_t {
  Scalar,      // one value per record
  List,        // a list of scalars per record
  ObjectList,  // a list of objects with scalar attributes per record
};

struct FieldId {
  uint32_t index = UINT32_MAX;
  bool valid() const { return index != UINT32_MAX; }
  bool operator==(const FieldId&) const = default;
};

struct ObjectAttribute {
  std::string name;
  ScalarType type;
};

struct FieldSpec {
  std::string path;
  FieldShape shape = FieldShape::Scalar;
  ScalarType type = ScalarType::Number;       // Scalar and List: the (element) type
  std::vector<ObjectAttribute> attributes;    // ObjectList: sorted by name
  const ObjectAttribute* FindAttribute(std::string_view name) const;
  int AttributeIndex(std::string_view name) const;  // -1 when absent
};

class RuleSchema {
 public:
  // Each Add returns the new field's id, or an invalid id when the path is
  // empty, already taken, or collides with a namespace (see the invariants);
  // `error` (optional) then says why.
  FieldId AddScalar(std::string path, ScalarType type, std::string* error = nullptr);
  FieldId AddList(std::string path, ScalarType element, std::string* error = nullptr);
  FieldId AddObjectList(std::string path, std::vector<ObjectAttribute> attributes, std::string* error = nullptr);

  // Adds the fields a Plinth type describes under `path`: bool, number, int,
  // string and unit types become scalars; objects are flattened into
  // `path.attr` fields; list(T) of a scalar or of an object of scalars
  // becomes a list field. Anything else (maps, nested lists, any) cannot be
  // read by rules and is appended to `skipped` as a path.
  void AddFromType(const std::string& path, const Type& type, std::vector<std::string>* skipped);

  size_t size() const { return fields_.size(); }
  const FieldSpec& field(FieldId id) const { return fields_[id.index]; }
  const std::vector<FieldSpec>& fields() const { return fields_; }
  std::optional<FieldId> Find(std::string_view path) const;
  // True when `path` is a proper prefix of some field path ("self").
  bool IsNamespace(std::string_view path) const;
  // The names directly under a namespace, for "did you mean" help.
  std::vector<std::string> Children(std::string_view namespace_path) const;
  // The root names (first path segments).
  std::vector<std::string> Roots() const;

 private:
  FieldId Add(FieldSpec spec, std::string* error);

  std::vector<FieldSpec> fields_;
  std::unordered_map<std::string, uint32_t> by_path_;
  // Namespace path -> its direct children (field or namespace names).
  std::unordered_map<std::string, std::vector<std::string>> namespaces_;
};

}  // namespace plinth::rules
