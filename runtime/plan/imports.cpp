#include "runtime/plan/imports.h"

#include <cctype>
#include <optional>

#include "compiler/diag/diagnostic.h"
#include "compiler/fmt/fmt.h"
#include "compiler/source/source.h"

namespace plinth::runtime {

namespace {

bool IsName(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// The configured value of a reference attribute: the referenced resource's
// name (the schema accepts it as a string).
std::optional<std::string> ReferenceName(const Value& v) {
  if (v.kind() == Value::Kind::String) return v.as_string();
  if (v.kind() == Value::Kind::Object) {
    const ValueMap& m = v.as_object();
    auto it = m.find("name");
    if (it != m.end() && it->second.kind() == Value::Kind::String) return it->second.as_string();
  }
  return std::nullopt;
}

class BlockWriter {
 public:
  explicit BlockWriter(std::string* out) : out_(*out) {}

  void Body(const BlockSchema& schema, const ValueMap& values, int depth) {
    const std::string pad(static_cast<size_t>(depth) * 2, ' ');
    for (const AttributeSchema& a : schema.attributes) {
      if (a.mode == AttrMode::Computed) continue;
      auto it = values.find(a.name);
      if (a.sensitive) {
        // Never printed, whatever it holds; required ones must be set to validate.
        if (a.mode == AttrMode::Required || (it != values.end() && !it->second.is_null())) {
          out_ += pad + "# " + a.name + " = ...  (sensitive: not printed; set it yourself)\n";
        }
        continue;
      }
      if (it == values.end() || it->second.is_null() || it->second.ContainsUnknown()) continue;
      const Value& v = it->second;
      if (a.default_value && a.default_value->Equals(v)) continue;
      if (v.ContainsSensitive()) {
        out_ += pad + "# " + a.name + " = ...  (sensitive: not printed; set it yourself)\n";
        continue;
      }
      if (!a.ref_type.empty()) {
        if (std::optional<std::string> name = ReferenceName(v)) {
          out_ += pad + a.name + " = " + QuoteString(*name) + "\n";
          continue;
        }
      }
      out_ += pad + a.name + " = " + v.ToString() + "\n";
    }
    for (const NestedBlockSchema& nb : schema.blocks) {
      auto it = values.find(nb.name);
      if (it == values.end() || it->second.is_null() || !nb.body) continue;
      const Value& v = it->second;
      auto one = [&](const std::string& label, const Value& item) {
        if (item.kind() != Value::Kind::Object) return;
        out_ += pad + nb.name + (label.empty() ? "" : " " + QuoteString(label)) + " {\n";
        Body(*nb.body, item.as_object(), depth + 1);
        out_ += pad + "}\n";
      };
      if (nb.labeled && v.kind() == Value::Kind::Object) {
        for (const auto& [label, item] : v.as_object()) one(label, item);
      } else if (v.kind() == Value::Kind::List) {
        for (const Value& item : v.as_list()) one("", item);
      } else {
        one("", v);
      }
    }
  }

 private:
  std::string& out_;
};

}  // namespace

bool SplitResourceAddress(const std::string& address, std::string* type, std::string* name) {
  size_t dot = address.find('.');
  if (dot == std::string::npos) return false;
  std::string t = address.substr(0, dot), n = address.substr(dot + 1);
  if (t == "module" || !IsName(t) || !IsName(n)) return false;
  *type = t;
  *name = n;
  return true;
}

std::string GenerateResourceBlock(const ImportedObject& object, const ResourceSchema& schema, std::string* error) {
  std::string type, name;
  if (!SplitResourceAddress(object.address, &type, &name)) {
    *error = "cannot generate a block for " + object.address +
             ": only a root-module resource without an instance key (TYPE.NAME) gets generated configuration; "
             "write its block yourself";
    return "";
  }
  std::string text = "# imported from " + type + " " + QuoteString(object.id) + "\n" + type + " " + QuoteString(name) + " {\n";
  BlockWriter(&text).Body(schema.body, object.attributes, 1);
  text += "}\n";
  SourceManager sources;
  const SourceFile& file = sources.Add("generated.plinth", text);
  Diagnostics diags;
  std::optional<std::string> formatted = Format(file, diags);
  if (!formatted) {
    *error = "the block generated for " + object.address + " does not parse (a bug in Plinth)";
    return "";
  }
  return *formatted;
}

}  // namespace plinth::runtime
