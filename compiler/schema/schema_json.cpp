#include "compiler/schema/schema_json.h"

#include <set>

#include "compiler/types/value_json.h"

namespace plinth {
namespace {

using nlohmann::json;

constexpr size_t kMaxNesting = 16;  // nested blocks inside nested blocks

const char* ModeName(AttrMode m) {
  switch (m) {
    case AttrMode::Required: return "required";
    case AttrMode::Optional: return "optional";
    case AttrMode::Computed: return "computed";
    case AttrMode::OptionalComputed: return "optional_computed";
  }
  return "optional";
}

bool IsIdentifier(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

class Decoder {
 public:
  explicit Decoder(std::string* error) : error_(error) {}

  bool Fail(const std::string& path, const std::string& what) {
    *error_ = path + ": " + what;
    return false;
  }

  bool Text(const json& obj, const char* key, const std::string& path, std::string* out, bool required) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) return Fail(path, std::string("'") + key + "' is missing");
      return true;
    }
    if (!it->is_string()) return Fail(path + "." + key, "must be a string");
    *out = it->get<std::string>();
    return true;
  }

  bool Flag(const json& obj, const char* key, const std::string& path, bool* out) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return true;
    if (!it->is_boolean()) return Fail(path + "." + key, "must be true or false");
    *out = it->get<bool>();
    return true;
  }

  bool Attribute(const json& j, const std::string& path, AttributeSchema* a) {
    if (!j.is_object()) return Fail(path, "an attribute must be an object");
    if (!Text(j, "name", path, &a->name, true)) return false;
    if (!IsIdentifier(a->name)) return Fail(path + ".name", "'" + a->name + "' is not an identifier");
    auto t = j.find("type");
    if (t == j.end()) return Fail(path, "'type' is missing");
    std::string type_error;
    if (!TypeFromJson(*t, &a->type, &type_error)) return Fail(path + ".type", type_error);
    std::string mode;
    if (!Text(j, "mode", path, &mode, true)) return false;
    bool known = false;
    for (AttrMode m : {AttrMode::Required, AttrMode::Optional, AttrMode::Computed, AttrMode::OptionalComputed}) {
      if (mode == ModeName(m)) a->mode = m, known = true;
    }
    if (!known) return Fail(path + ".mode", "'" + mode + "' is not one of required, optional, computed, optional_computed");
    if (!Text(j, "doc", path, &a->doc, false)) return false;
    if (!Flag(j, "force_new", path, &a->force_new) || !Flag(j, "sensitive", path, &a->sensitive)) return false;
    if (auto d = j.find("default"); d != j.end() && !d->is_null()) {
      if (a->mode != AttrMode::Optional) return Fail(path + ".default", "only optional attributes take a default");
      ValueFromJsonResult v = ValueFromJson(*d);
      if (!v.ok()) return Fail(path + ".default", v.error);
      if (v.value.is_unknown() || v.value.ContainsSensitive()) {
        return Fail(path + ".default", "a default must be a plain known value");
      }
      if (!Assignable(v.value.type(), a->type)) {
        return Fail(path + ".default", "is not a " + a->type.ToString());
      }
      a->default_value = v.value;
    }
    if (auto av = j.find("allowed_values"); av != j.end() && !av->is_null()) {
      if (!a->type.is(TypeKind::String)) return Fail(path + ".allowed_values", "only string attributes take allowed values");
      if (!av->is_array() || av->empty()) return Fail(path + ".allowed_values", "must be a non-empty list of strings");
      for (const json& v : *av) {
        if (!v.is_string()) return Fail(path + ".allowed_values", "must be a non-empty list of strings");
        a->allowed_values.push_back(v.get<std::string>());
      }
    }
    return true;
  }

  bool Block(const json& j, const std::string& path, BlockSchema* b, size_t depth) {
    if (depth > kMaxNesting) return Fail(path, "blocks are nested too deeply");
    if (!j.is_object()) return Fail(path, "a block body must be an object");
    std::set<std::string> names;
    if (auto attrs = j.find("attributes"); attrs != j.end() && !attrs->is_null()) {
      if (!attrs->is_array()) return Fail(path + ".attributes", "must be a list");
      for (size_t i = 0; i < attrs->size(); ++i) {
        std::string p = path + ".attributes[" + std::to_string(i) + "]";
        AttributeSchema a;
        if (!Attribute((*attrs)[i], p, &a)) return false;
        if (!names.insert(a.name).second) return Fail(p + ".name", "'" + a.name + "' is declared twice");
        b->attributes.push_back(std::move(a));
      }
    }
    if (auto blocks = j.find("blocks"); blocks != j.end() && !blocks->is_null()) {
      if (!blocks->is_array()) return Fail(path + ".blocks", "must be a list");
      for (size_t i = 0; i < blocks->size(); ++i) {
        std::string p = path + ".blocks[" + std::to_string(i) + "]";
        const json& nj = (*blocks)[i];
        if (!nj.is_object()) return Fail(p, "a nested block must be an object");
        NestedBlockSchema n;
        if (!Text(nj, "name", p, &n.name, true)) return false;
        if (!IsIdentifier(n.name)) return Fail(p + ".name", "'" + n.name + "' is not an identifier");
        if (!names.insert(n.name).second) return Fail(p + ".name", "'" + n.name + "' is declared twice");
        if (!Flag(nj, "labeled", p, &n.labeled) || !Text(nj, "doc", p, &n.doc, false)) return false;
        for (auto [key, field] : {std::pair{"min_items", &n.min_items}, std::pair{"max_items", &n.max_items}}) {
          auto it = nj.find(key);
          if (it == nj.end() || it->is_null()) continue;
          if (!it->is_number_unsigned()) return Fail(p + "." + key, "must be a non-negative integer");
          *field = it->get<size_t>();
        }
        if (n.min_items > n.max_items) return Fail(p, "min_items is larger than max_items");
        auto body = std::make_shared<BlockSchema>();
        auto bj = nj.find("body");
        if (bj == nj.end()) return Fail(p, "'body' is missing");
        if (!Block(*bj, p + ".body", body.get(), depth + 1)) return false;
        n.body = std::move(body);
        b->blocks.push_back(std::move(n));
      }
    }
    return true;
  }

 private:
  std::string* error_;
};

}  // namespace

json BlockSchemaToJson(const BlockSchema& block) {
  json attrs = json::array();
  for (const AttributeSchema& a : block.attributes) {
    json j = {{"name", a.name}, {"type", TypeToJson(a.type)}, {"mode", ModeName(a.mode)}};
    if (!a.doc.empty()) j["doc"] = a.doc;
    if (a.default_value) {
      ValueJsonResult v = ValueToJson(*a.default_value);
      if (v.ok()) j["default"] = v.json;
    }
    if (a.force_new) j["force_new"] = true;
    if (a.sensitive) j["sensitive"] = true;
    if (!a.ref_type.empty()) j["ref_type"] = a.ref_type;
    if (!a.allowed_values.empty()) j["allowed_values"] = a.allowed_values;
    attrs.push_back(std::move(j));
  }
  json blocks = json::array();
  for (const NestedBlockSchema& n : block.blocks) {
    json j = {{"name", n.name}, {"labeled", n.labeled}, {"min_items", n.min_items}};
    if (n.max_items != SIZE_MAX) j["max_items"] = n.max_items;
    if (!n.doc.empty()) j["doc"] = n.doc;
    j["body"] = n.body ? BlockSchemaToJson(*n.body) : json::object();
    blocks.push_back(std::move(j));
  }
  return {{"attributes", std::move(attrs)}, {"blocks", std::move(blocks)}};
}

json ProviderSchemasToJson(const ProviderSchemas& schemas) {
  json resources = json::array();
  for (const ResourceSchema& r : schemas.resources) {
    resources.push_back({{"type", r.type}, {"doc", r.doc}, {"body", BlockSchemaToJson(r.body)}});
  }
  return {{"protocol_version", 1},
          {"name", schemas.config.name},
          {"provider", {{"doc", schemas.config.doc}, {"body", BlockSchemaToJson(schemas.config.body)}}},
          {"resources", std::move(resources)}};
}

bool ProviderSchemasFromJson(const json& j, const std::string& name, ProviderSchemas* out, std::string* error) {
  Decoder d(error);
  if (!j.is_object()) return d.Fail("result", "must be an object");
  auto version = j.find("protocol_version");
  if (version == j.end() || !version->is_number_integer() || version->get<int64_t>() != 1) {
    return d.Fail("result.protocol_version", "must be 1 (this Plinth speaks protocol version 1)");
  }
  std::string declared;
  if (!d.Text(j, "name", "result", &declared, true)) return false;
  if (declared != name) {
    return d.Fail("result.name", "the provider calls itself '" + declared + "', but the block names '" + name + "'");
  }
  out->config = ProviderConfigSchema{};
  out->config.name = name;
  if (auto p = j.find("provider"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) return d.Fail("result.provider", "must be an object");
    if (!d.Text(*p, "doc", "result.provider", &out->config.doc, false)) return false;
    if (auto body = p->find("body"); body != p->end() && !d.Block(*body, "result.provider.body", &out->config.body, 0)) {
      return false;
    }
    if (out->config.body.FindAttribute("source")) {
      return d.Fail("result.provider.body", "'source' is Plinth's own setting of a provider block; rename the attribute");
    }
  }
  auto resources = j.find("resources");
  if (resources == j.end() || !resources->is_array()) return d.Fail("result.resources", "must be a list");
  std::set<std::string> types;
  for (size_t i = 0; i < resources->size(); ++i) {
    std::string path = "result.resources[" + std::to_string(i) + "]";
    const json& rj = (*resources)[i];
    if (!rj.is_object()) return d.Fail(path, "must be an object");
    ResourceSchema r;
    r.provider = name;
    if (!d.Text(rj, "type", path, &r.type, true) || !d.Text(rj, "doc", path, &r.doc, false)) return false;
    if (!IsIdentifier(r.type) || r.type.rfind(name + "_", 0) != 0 || r.type.size() == name.size() + 1) {
      return d.Fail(path + ".type", "'" + r.type + "' must be an identifier that starts with '" + name + "_'");
    }
    if (!types.insert(r.type).second) return d.Fail(path + ".type", "'" + r.type + "' is declared twice");
    auto body = rj.find("body");
    if (body == rj.end()) return d.Fail(path, "'body' is missing");
    if (!d.Block(*body, path + ".body", &r.body, 0)) return false;
    const AttributeSchema* id = r.body.FindAttribute("id");
    if (!id) {
      AttributeSchema a;
      a.name = "id";
      a.type = Type::String();
      a.mode = AttrMode::Computed;
      a.doc = "The provider's identifier of the resource.";
      r.body.attributes.insert(r.body.attributes.begin(), std::move(a));
    } else if (id->mode != AttrMode::Computed || !id->type.is(TypeKind::String)) {
      return d.Fail(path + ".body", "'id' must be a computed string");
    }
    out->resources.push_back(std::move(r));
  }
  return true;
}

}  // namespace plinth
