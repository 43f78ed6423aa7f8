#include "compiler/rules/schema.h"

#include <algorithm>

namespace plinth::rules {

const char* ScalarTypeName(ScalarType t) {
  switch (t) {
    case ScalarType::Bool: return "bool";
    case ScalarType::Number: return "number";
    case ScalarType::Duration: return "duration";
    case ScalarType::Size: return "size";
    case ScalarType::Percent: return "percentage";
    case ScalarType::String: return "string";
  }
  return "value";
}

const ObjectAttribute* FieldSpec::FindAttribute(std::string_view name) const {
  int i = AttributeIndex(name);
  return i < 0 ? nullptr : &attributes[static_cast<size_t>(i)];
}

int FieldSpec::AttributeIndex(std::string_view name) const {
  for (size_t i = 0; i < attributes.size(); ++i) {
    if (attributes[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

FieldId RuleSchema::AddScalar(std::string path, ScalarType type, std::string* error) {
  FieldSpec s;
  s.path = std::move(path);
  s.shape = FieldShape::Scalar;
  s.type = type;
  return Add(std::move(s), error);
}

FieldId RuleSchema::AddList(std::string path, ScalarType element, std::string* error) {
  FieldSpec s;
  s.path = std::move(path);
  s.shape = FieldShape::List;
  s.type = element;
  return Add(std::move(s), error);
}

FieldId RuleSchema::AddObjectList(std::string path, std::vector<ObjectAttribute> attributes, std::string* error) {
  std::sort(attributes.begin(), attributes.end(),
            [](const ObjectAttribute& a, const ObjectAttribute& b) { return a.name < b.name; });
  for (size_t i = 1; i < attributes.size(); ++i) {
    if (attributes[i].name == attributes[i - 1].name) {
      if (error) *error = "attribute '" + attributes[i].name + "' is listed twice";
      return {};
    }
  }
  FieldSpec s;
  s.path = std::move(path);
  s.shape = FieldShape::ObjectList;
  s.attributes = std::move(attributes);
  return Add(std::move(s), error);
}

FieldId RuleSchema::Add(FieldSpec spec, std::string* error) {
  const std::string& path = spec.path;
  auto fail = [&](std::string why) {
    if (error) *error = std::move(why);
    return FieldId{};
  };
  if (path.empty() || path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos) {
    return fail("'" + path + "' is not a valid field path");
  }
  if (by_path_.count(path)) return fail("field '" + path + "' is declared twice");
  if (namespaces_.count(path)) return fail("'" + path + "' is already a namespace of other fields");
  // No prefix of the path may be a field.
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
    if (by_path_.count(path.substr(0, dot))) {
      std::string prefix = path.substr(0, dot);
      return fail("'" + prefix + "' is a field, so it cannot have sub-fields");
    }
  }
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1)) {
    std::string ns = path.substr(0, dot);
    size_t next = path.find('.', dot + 1);
    std::string child = path.substr(dot + 1, next == std::string::npos ? std::string::npos : next - dot - 1);
    auto& kids = namespaces_[ns];
    if (std::find(kids.begin(), kids.end(), child) == kids.end()) kids.push_back(child);
  }
  FieldId id{static_cast<uint32_t>(fields_.size())};
  by_path_.emplace(path, id.index);
  fields_.push_back(std::move(spec));
  return id;
}

namespace {
std::optional<ScalarType> ScalarOf(const Type& t) {
  switch (t.kind()) {
    case TypeKind::Bool: return ScalarType::Bool;
    case TypeKind::Int:
    case TypeKind::Number: return ScalarType::Number;
    case TypeKind::String: return ScalarType::String;
    case TypeKind::Duration: return ScalarType::Duration;
    case TypeKind::Size: return ScalarType::Size;
    case TypeKind::Percent: return ScalarType::Percent;
    default: return std::nullopt;
  }
}
}  // namespace

void RuleSchema::AddFromType(const std::string& path, const Type& type, std::vector<std::string>* skipped) {
  auto skip = [&] {
    if (skipped) skipped->push_back(path);
  };
  if (auto s = ScalarOf(type)) {
    if (!AddScalar(path, *s).valid()) skip();
    return;
  }
  if (type.is(TypeKind::Object)) {
    for (const auto& [name, t] : type.attributes()) AddFromType(path + "." + name, t, skipped);
    return;
  }
  if (type.is(TypeKind::List)) {
    const Type& e = type.element();
    if (auto s = ScalarOf(e)) {
      if (!AddList(path, *s).valid()) skip();
      return;
    }
    if (e.is(TypeKind::Object)) {
      std::vector<ObjectAttribute> attrs;
      for (const auto& [name, t] : e.attributes()) {
        if (auto s = ScalarOf(t)) {
          attrs.push_back({name, *s});
        } else if (skipped) {
          skipped->push_back(path + "[*]." + name);
        }
      }
      if (!AddObjectList(path, std::move(attrs)).valid()) skip();
      return;
    }
  }
  skip();
}

std::optional<FieldId> RuleSchema::Find(std::string_view path) const {
  auto it = by_path_.find(std::string(path));
  if (it == by_path_.end()) return std::nullopt;
  return FieldId{it->second};
}

bool RuleSchema::IsNamespace(std::string_view path) const { return namespaces_.count(std::string(path)) > 0; }

std::vector<std::string> RuleSchema::Children(std::string_view namespace_path) const {
  auto it = namespaces_.find(std::string(namespace_path));
  if (it == namespaces_.end()) return {};
  return it->second;
}

std::vector<std::string> RuleSchema::Roots() const {
  std::vector<std::string> out;
  for (const FieldSpec& f : fields_) {
    std::string root = f.path.substr(0, f.path.find('.'));
    if (std::find(out.begin(), out.end(), root) == out.end()) out.push_back(root);
  }
  return out;
}

}  // namespace plinth::rules
