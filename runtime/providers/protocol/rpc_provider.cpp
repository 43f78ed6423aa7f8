#include "runtime/providers/protocol/rpc_provider.h"

#include <algorithm>
#include <set>

#include "compiler/types/value_json.h"
#include "runtime/process/process.h"

namespace plinth::runtime {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr size_t kMaxLine = size_t{64} << 20;  // one response
constexpr milliseconds kStopGrace{5000};

std::string Seconds(milliseconds d) {
  int64_t ms = d.count();
  return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

// Every string inside a value that is marked sensitive (or inside one).
void CollectSecrets(const Value& v, bool inherited, std::vector<std::string>& out) {
  bool secret = inherited || v.sensitive();
  switch (v.kind()) {
    case Value::Kind::String:
      if (secret && v.as_string().size() >= 3) out.push_back(v.as_string());
      break;
    case Value::Kind::List:
      for (const Value& item : v.as_list()) CollectSecrets(item, secret, out);
      break;
    case Value::Kind::Object:
      for (const auto& [k, item] : v.as_object()) CollectSecrets(item, secret, out);
      break;
    default: break;
  }
}

// The secrets inside attribute maps a request carries.
std::vector<std::string> SecretsOf(std::initializer_list<const ValueMap*> maps) {
  std::vector<std::string> out;
  for (const ValueMap* m : maps) {
    for (const auto& [name, v] : *m) CollectSecrets(v, false, out);
  }
  return out;
}

// Replaces every secret in `text` by "(sensitive)": a provider's message
// or stderr is shown to people, and must not carry a value marked sensitive.
std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& s : secrets) {
    for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at)) {
      text.replace(at, s.size(), "(sensitive)");
      at += 11;
    }
  }
  return text;
}

// The last few non-empty lines of a stderr tail, on one line.
std::string LastLines(const std::string& err, size_t lines = 3) {
  std::vector<std::string> kept;
  size_t end = err.size();
  while (end > 0 && kept.size() < lines) {
    size_t start = err.rfind('\n', end - 1);
    size_t from = start == std::string::npos ? 0 : start + 1;
    std::string line = err.substr(from, end - from);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) kept.push_back(line.size() > 300 ? line.substr(0, 300) + "..." : line);
    if (start == std::string::npos) break;
    end = start;
  }
  std::reverse(kept.begin(), kept.end());
  std::string out;
  for (const std::string& l : kept) out += (out.empty() ? "" : " | ") + l;
  return out;
}

std::string Quote(std::string_view s) { return "'" + std::string(s.substr(0, 200)) + "'"; }

}  // namespace

Result<json> AttributesToJson(const ValueMap& attributes) {
  json out = json::object();
  for (const auto& [name, v] : attributes) {
    ValueJsonResult j = ValueToJson(v);
    if (!j.ok()) return ProviderError{"attribute '" + name + "': " + j.error, false};
    out[name.size() && name[0] == '$' ? "$" + name : name] = std::move(j.json);
  }
  return out;
}

RpcProvider::RpcProvider(RpcProviderOptions options) : options_(std::move(options)) {}

RpcProvider::~RpcProvider() { Stop(); }

std::unique_ptr<RpcProvider> RpcProvider::Start(RpcProviderOptions options, std::string* error) {
  std::unique_ptr<RpcProvider> p(new RpcProvider(std::move(options)));
  std::lock_guard lock(p->mu_);
  if (!p->Launch(error)) return nullptr;
  return p;
}

void RpcProvider::Stop() {
  std::lock_guard lock(mu_);
  if (child_) {
    child_->Stop(kStopGrace);
    child_.reset();
  }
}

void RpcProvider::SetConfiguration(const ValueMap& config) {
  std::lock_guard lock(mu_);
  ValueMap c = config;
  c.erase("source");  // Plinth's own setting of the block
  if (have_config_ && Value::Object(c).Equals(Value::Object(config_))) return;
  config_ = std::move(c);
  have_config_ = true;
  configured_ = false;
  config_secrets_.clear();
  for (const auto& [name, v] : config_) {
    const AttributeSchema* a = schemas_.config.body.FindAttribute(name);
    CollectSecrets(v, a && a->sensitive, config_secrets_);
  }
}

bool RpcProvider::Launch(std::string* error) const {
  std::string who = "provider '" + options_.name + "' (" + options_.executable.string() + ")";
  process::Spec spec;
  spec.program = options_.executable;
  spec.env = options_.env;
  spec.cwd = options_.cwd;
  spec.max_stderr = 64 << 10;
  spec.kill_grace = kStopGrace;
  std::string start_error;
  child_ = process::Child::Start(std::move(spec), &start_error);
  if (!child_) {
    *error = who + " cannot start: " + start_error;
    return false;
  }
  configured_ = false;
  auto answer = Exchange("schemas", json{{"protocol_version", 1}}, options_.start_timeout, "", false, {});
  if (!answer.ok()) {
    *error = answer.error().message;
    return false;
  }
  if (schemas_json_.is_null()) {
    ProviderSchemas decoded;
    std::string why;
    if (!ProviderSchemasFromJson(answer.value(), options_.name, &decoded, &why)) {
      Abandon();
      *error = who + " declared invalid schemas: " + why;
      return false;
    }
    auto* self = const_cast<RpcProvider*>(this);  // only while starting, before anyone else sees it
    self->schemas_ = std::move(decoded);
    self->schemas_json_ = answer.value();
  } else if (answer.value() != schemas_json_) {
    Abandon();
    *error = who + " was restarted and now declares different schemas; run plinth again";
    return false;
  }
  return true;
}

std::string RpcProvider::Abandon() const {
  if (!child_) return "";
  process::Outcome o = child_->Stop(milliseconds(1000));
  child_.reset();
  std::string tail = LastLines(o.err);
  std::string how = o.Describe("it");
  // Describe appends the last stderr line itself; keep the status part.
  if (size_t colon = how.find(": "); colon != std::string::npos && !o.err.empty()) how = how.substr(0, colon);
  return how + (tail.empty() ? "" : "; its last output: " + tail);
}

ProviderError RpcProvider::Broken(const std::string& method, const std::string& what, const std::string& why,
                                  bool changes) const {
  ProviderError e;
  e.message = "provider '" + options_.name + "' failed during " + method + (what.empty() ? "" : " of " + what) +
              ": " + why;
  if (changes) {
    e.message += "; whether the change happened is unknown, so the next plan reads the resource to find out";
    e.outcome_unknown = true;
  }
  return e;
}

Result<json> RpcProvider::Exchange(const std::string& method, const json& params, milliseconds timeout,
                                   const std::string& what, bool changes,
                                   const std::vector<std::string>& request_secrets) const {
  // What a message must never show: the configuration's secrets and the request's.
  std::vector<std::string> secrets = config_secrets_;
  secrets.insert(secrets.end(), request_secrets.begin(), request_secrets.end());

  int64_t id = next_id_++;
  json request = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
  std::string line = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto left = [&] {
    return std::max(milliseconds(0),
                    std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now()));
  };
  auto broken = [&](const std::string& why) {
    std::string status = Abandon();
    return Broken(method, what, Scrub(why + (status.empty() ? "" : " (" + status + ")"), secrets), changes);
  };
  if (!child_->WriteAll(line, left())) return broken("it does not read its input");
  for (;;) {
    process::ReadResult got = child_->ReadLine(left(), kMaxLine);
    switch (got.kind) {
      case process::ReadResult::Kind::kEof: return broken("it exited without answering");
      case process::ReadResult::Kind::kTimeout:
        return broken("it did not answer within " + Seconds(timeout) + " (PLINTH_PROVIDER_TIMEOUT)");
      case process::ReadResult::Kind::kTooLong: return broken("it answered with a line longer than 64 MiB");
      case process::ReadResult::Kind::kLine: break;
    }
    if (got.line.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are tolerated
    json response = json::parse(got.line, nullptr, false);
    if (response.is_discarded() || !response.is_object()) {
      return broken("it wrote something that is not a JSON-RPC message: " + Quote(got.line));
    }
    auto rid = response.find("id");
    if (response.value("jsonrpc", "") != "2.0" || rid == response.end()) {
      return broken("it wrote something that is not a JSON-RPC response: " + Quote(got.line));
    }
    if (!rid->is_number_integer() || rid->get<int64_t>() != id) {
      return broken("it answered request " + rid->dump() + " while request " + std::to_string(id) + " was pending");
    }
    auto error = response.find("error");
    auto result = response.find("result");
    if ((error == response.end()) == (result == response.end())) {
      return broken("its response has neither or both of 'result' and 'error'");
    }
    if (result != response.end()) return *result;
    if (!error->is_object() || !error->contains("message") || !(*error)["message"].is_string()) {
      return broken("its error response has no message");
    }
    ProviderError e;
    std::string message = (*error)["message"].get<std::string>();
    if (message.size() > 2000) message = message.substr(0, 2000) + "...";
    int64_t code = error->value("code", json(0)).is_number_integer() ? (*error)["code"].get<int64_t>() : 0;
    if (code == -32601) {
      e.message = "provider '" + options_.name + "' does not implement '" + method + "'";
    } else {
      e.message = Scrub(message, secrets);
      if (code <= -32600 && code >= -32700) e.message += " (provider '" + options_.name + "', " + method + ")";
    }
    auto data = error->find("data");
    e.retryable = data != error->end() && data->is_object() && data->value("retryable", json(false)).is_boolean() &&
                  (*data)["retryable"].get<bool>();
    // `create` of an object that exists: the id to import it by (the engine says how).
    if (data != error->end() && data->is_object() && data->value("import_id", json(nullptr)).is_string()) {
      e.import_id = Scrub((*data)["import_id"].get<std::string>(), secrets);
    }
    return e;
  }
}

std::optional<ProviderError> RpcProvider::SendConfiguration() const {
  if (configured_) return std::nullopt;
  auto config = AttributesToJson(config_);
  if (!config.ok()) return config.error();
  // Every attribute of the config schema is present, null where unset.
  for (const AttributeSchema& a : schemas_.config.body.attributes) {
    if (!config.value().contains(a.name)) config.value()[a.name] = nullptr;
  }
  auto answer = Exchange("configure", json{{"config", config.value()}}, options_.start_timeout, "", false, {});
  if (!answer.ok()) return answer.error();
  configured_ = true;
  return std::nullopt;
}

Result<json> RpcProvider::Call(const std::string& method, json params, const std::string& what, bool changes,
                               const std::vector<std::string>& secrets) const {
  std::lock_guard lock(mu_);
  if (!child_) {
    std::string error;
    if (!Launch(&error)) return ProviderError{error, false};
  }
  if (auto e = SendConfiguration()) return *e;
  if (!child_) return ProviderError{"provider '" + options_.name + "' stopped while being configured", false};
  return Exchange(method, params, options_.call_timeout, what, changes, secrets);
}

Result<ResourceObject> RpcProvider::ObjectFrom(const json& result, const std::string& type, const std::string& method,
                                               const std::string& what, bool changes) const {
  auto bad = [&](const std::string& why) -> ProviderError {
    ProviderError e{"provider '" + options_.name + "' answered " + method + " of " + what + " with " + why, false};
    if (changes) {
      e.message += "; the next plan reads the resource to settle what happened";
      e.outcome_unknown = true;
    }
    return e;
  };
  if (!result.is_object() || !result.contains("id") || !result["id"].is_string() ||
      result["id"].get<std::string>().empty()) {
    return bad("no resource object (an 'id' string is missing)");
  }
  auto attrs = result.find("attributes");
  if (attrs == result.end() || !attrs->is_object()) return bad("no 'attributes' object");
  ValueFromJsonResult decoded = ValueFromJson(*attrs);
  if (!decoded.ok()) return bad("an attribute value that does not decode: " + decoded.error);
  ResourceObject obj;
  obj.id = result["id"].get<std::string>();
  obj.attributes = decoded.value.as_object();
  const ResourceSchema* schema = nullptr;
  for (const ResourceSchema& r : schemas_.resources) {
    if (r.type == type) schema = &r;
  }
  if (schema) {
    for (const auto& [name, v] : obj.attributes) {
      if (!schema->body.FindAttribute(name) && !schema->body.FindBlock(name)) {
        return bad("attribute '" + name + "', which the schema of " + schema->type + " does not declare");
      }
    }
    for (const AttributeSchema& a : schema->body.attributes) {
      auto it = obj.attributes.find(a.name);
      if (it == obj.attributes.end()) {
        obj.attributes[a.name] = Value::Null();
      } else if (a.sensitive && !it->second.sensitive()) {
        it->second = it->second.WithSensitive();
      }
    }
    for (const NestedBlockSchema& b : schema->body.blocks) {
      if (!obj.attributes.count(b.name)) obj.attributes[b.name] = Value::List({});
    }
  }
  obj.attributes["id"] = Value::String(obj.id);
  return obj;
}

namespace {
std::string What(const std::string& type, const std::string& id) {
  return id.empty() ? type : type + " " + Quote(id);
}
}  // namespace

std::vector<std::string> RpcProvider::Validate(const std::string& type, const ValueMap& config) const {
  auto c = AttributesToJson(config);
  if (!c.ok()) return {c.error().message};
  auto r = Call("validate", json{{"type", type}, {"config", c.value()}}, type, false, SecretsOf({&config}));
  if (!r.ok()) {
    if (r.error().message.find("does not implement") != std::string::npos) return {};
    return {r.error().message};
  }
  std::vector<std::string> errors;
  if (!r.value().is_object() || !r.value().contains("errors") || !r.value()["errors"].is_array()) {
    return {"provider '" + options_.name + "' answered validate without an 'errors' list"};
  }
  for (const json& e : r.value()["errors"]) {
    errors.push_back(e.is_string() ? e.get<std::string>() : e.dump());
  }
  return errors;
}

Result<PlanResponse> RpcProvider::PlanChange(const PlanRequest& request) {
  auto config = AttributesToJson(request.config);
  if (!config.ok()) return config.error();
  json params = {{"type", request.type}, {"config", config.value()}, {"unset", request.unset}, {"prior", nullptr}};
  if (request.prior) {
    auto prior = AttributesToJson(*request.prior);
    if (!prior.ok()) return prior.error();
    params["prior"] = prior.value();
  }
  std::vector<std::string> secrets = SecretsOf({&request.config});
  if (request.prior) {
    std::vector<std::string> more = SecretsOf({request.prior});
    secrets.insert(secrets.end(), more.begin(), more.end());
  }
  auto r = Call("plan_change", std::move(params), request.type, false, secrets);
  if (!r.ok()) return r.error();
  const json& res = r.value();
  auto planned = res.is_object() ? res.find("planned") : res.end();
  if (!res.is_object() || planned == res.end() || !planned->is_object()) {
    return ProviderError{"provider '" + options_.name + "' answered plan_change of " + request.type +
                             " without a 'planned' object",
                         false};
  }
  ValueFromJsonResult decoded = ValueFromJson(*planned);
  if (!decoded.ok()) {
    return ProviderError{"provider '" + options_.name + "' planned a value that does not decode: " + decoded.error,
                         false};
  }
  PlanResponse out;
  out.planned = decoded.value.as_object();
  // What the configuration said stays as configured where the provider left it out.
  for (const auto& [name, v] : request.config) out.planned.emplace(name, v);
  if (auto rb = res.find("replace_because"); rb != res.end() && rb->is_array()) {
    for (const json& a : *rb) {
      if (a.is_string()) out.replace_because.push_back(a.get<std::string>());
    }
  }
  return out;
}

Result<ResourceObject> RpcProvider::Create(const std::string& type, const ValueMap& planned) {
  auto p = AttributesToJson(planned);
  if (!p.ok()) return p.error();
  std::string what = type;
  if (auto it = planned.find("id"); it != planned.end() && it->second.kind() == Value::Kind::String) {
    what = What(type, it->second.as_string());
  }
  auto r = Call("create", json{{"type", type}, {"planned", p.value()}}, what, true, SecretsOf({&planned}));
  if (!r.ok()) return r.error();
  return ObjectFrom(r.value(), type, "create", what, true);
}

Result<std::optional<ResourceObject>> RpcProvider::Read(const std::string& type, const std::string& id,
                                                        const ValueMap& prior) {
  auto p = AttributesToJson(prior);
  if (!p.ok()) return p.error();
  auto r = Call("read", json{{"type", type}, {"id", id}, {"prior", p.value()}}, What(type, id), false,
                SecretsOf({&prior}));
  if (!r.ok()) return r.error();
  if (r.value().is_null()) return std::optional<ResourceObject>();
  auto obj = ObjectFrom(r.value(), type, "read", What(type, id), false);
  if (!obj.ok()) return obj.error();
  return std::optional<ResourceObject>(std::move(obj.value()));
}

Result<ResourceObject> RpcProvider::Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                           const ValueMap& planned) {
  auto pr = AttributesToJson(prior);
  if (!pr.ok()) return pr.error();
  auto pl = AttributesToJson(planned);
  if (!pl.ok()) return pl.error();
  auto r = Call("update", json{{"type", type}, {"id", id}, {"prior", pr.value()}, {"planned", pl.value()}},
                What(type, id), true, SecretsOf({&prior, &planned}));
  if (!r.ok()) return r.error();
  return ObjectFrom(r.value(), type, "update", What(type, id), true);
}

Result<Done> RpcProvider::Delete(const std::string& type, const std::string& id, const ValueMap& prior) {
  auto p = AttributesToJson(prior);
  if (!p.ok()) return p.error();
  auto r = Call("delete", json{{"type", type}, {"id", id}, {"prior", p.value()}}, What(type, id), true,
                SecretsOf({&prior}));
  if (!r.ok()) return r.error();
  return Done{};
}

Result<DeletePreview> RpcProvider::PlanDelete(const std::string& type, const std::string& id, const ValueMap& prior) {
  auto p = AttributesToJson(prior);
  if (!p.ok()) return p.error();
  auto r = Call("plan_delete", json{{"type", type}, {"id", id}, {"prior", p.value()}}, What(type, id), false,
                SecretsOf({&prior}));
  if (!r.ok()) {
    if (r.error().message.find("does not implement") != std::string::npos) return DeletePreview{};
    return r.error();
  }
  DeletePreview preview;
  const json& res = r.value();
  if (!res.is_object()) return preview;
  if (auto d = res.find("deletes"); d != res.end() && d->is_array()) {
    for (const json& line : *d) {
      if (line.is_string()) preview.data.push_back(line.get<std::string>());
    }
  }
  if (auto a = res.find("amounts"); a != res.end() && a->is_object()) {
    for (const auto& [k, v] : a->items()) {
      if (v.is_number_unsigned()) preview.amounts[k] = v.get<uint64_t>();
    }
  }
  if (auto f = res.find("refusal"); f != res.end() && f->is_string()) preview.refusal = f->get<std::string>();
  return preview;
}

std::vector<PlanConflict> RpcProvider::CheckPlan(const std::vector<PlanItem>& items) {
  if (items.empty()) return {};
  json list = json::array();
  std::vector<std::string> secrets;
  std::set<std::string> addresses;
  for (const PlanItem& item : items) {
    auto planned = AttributesToJson(*item.planned);
    if (!planned.ok()) return {{{item.address}, planned.error().message}};
    list.push_back({{"address", item.address}, {"type", item.type}, {"planned", planned.value()},
                    {"existing", item.existing}});
    std::vector<std::string> more = SecretsOf({item.planned});
    secrets.insert(secrets.end(), more.begin(), more.end());
    addresses.insert(item.address);
  }
  const std::string first = items.front().address;
  auto failed = [&](const std::string& why) -> std::vector<PlanConflict> {
    return {{{first}, "provider '" + options_.name + "' could not check the plan: " + why}};
  };
  auto r = Call("check_plan", json{{"items", std::move(list)}}, "the plan", false, secrets);
  if (!r.ok()) {
    if (r.error().message.find("does not implement") != std::string::npos) return {};
    return failed(r.error().message);
  }
  const json& res = r.value();
  auto conflicts = res.is_object() ? res.find("conflicts") : res.end();
  if (!res.is_object() || conflicts == res.end() || !conflicts->is_array()) {
    return failed("it answered check_plan without a 'conflicts' list");
  }
  std::vector<PlanConflict> out;
  for (const json& c : *conflicts) {
    auto a = c.is_object() ? c.find("addresses") : c.end();
    auto m = c.is_object() ? c.find("message") : c.end();
    if (!c.is_object() || a == c.end() || !a->is_array() || a->empty() || m == c.end() || !m->is_string() ||
        m->get<std::string>().empty()) {
      return failed("a conflict needs a non-empty 'addresses' list and a 'message'");
    }
    PlanConflict conflict;
    for (const json& address : *a) {
      if (!address.is_string() || !addresses.count(address.get<std::string>())) {
        return failed("a conflict names " + (address.is_string() ? "'" + address.get<std::string>() + "'" : "a non-string") +
                      ", which is not a resource it was asked about");
      }
      conflict.addresses.push_back(address.get<std::string>());
    }
    conflict.message = Scrub(m->get<std::string>(), secrets);
    out.push_back(std::move(conflict));
  }
  return out;
}

Result<ResourceObject> RpcProvider::Import(const std::string& type, const std::string& id) {
  auto r = Call("import", json{{"type", type}, {"id", id}}, What(type, id), false);
  if (!r.ok()) return r.error();
  return ObjectFrom(r.value(), type, "import", What(type, id), false);
}

}  // namespace plinth::runtime
