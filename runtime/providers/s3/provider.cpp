#include "runtime/providers/s3/provider.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/providers/s3/schema.h"
#include "runtime/storage/service.h"

namespace plinth::runtime {
using nlohmann::json;

namespace {

constexpr double kDayMs = 86400000.0;
constexpr const char* kType = "s3_bucket";
constexpr const char* kSidPrefix = "Plinth";
constexpr const char* kSidEnforce = "PlinthEnforceEncryption";
constexpr const char* kUserArnPrefix = "arn:aws:iam:::user/";

// The lifecycle rule attributes that are durations, with the S3 element each
// becomes.
const std::vector<std::string>& DurationKeys() {
  static const std::vector<std::string> keys = {"expire_after", "noncurrent_expire_after", "transition_after",
                                                "abort_incomplete_multipart_after"};
  return keys;
}

// ------------------------------------------------------------------ values

const Value* Find(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool IsKnownString(const Value* v) {
  return v && v->kind() == Value::Kind::String;
}

std::string StringOr(const Value* v, std::string fallback) {
  return IsKnownString(v) ? v->as_string() : fallback;
}

bool BoolOf(const Value* v) {
  return v && v->kind() == Value::Kind::Bool && v->as_bool();
}

std::string Shown(const Value& v, const std::string& text) {
  return v.ContainsSensitive() ? "(sensitive)" : "'" + text + "'";
}

ProviderError Fail(std::string message, bool retryable = false) {
  return ProviderError{std::move(message), retryable};
}

// "cannot WHAT bucket 'b': Code: Message (http N)", retryable as the store says.
ProviderError StoreFail(const std::string& what, const std::string& bucket, const s3::Error& e) {
  return Fail("cannot " + what + " bucket '" + bucket + "': " + e.ToString(), e.retryable);
}

ProviderError UnknownType(const std::string& type) {
  return Fail("the s3 provider has no resource type '" + type + "'");
}

const ResourceSchema& BucketSchema() {
  static const ResourceSchema schema = S3ProviderSchemas().ResourceSchemas().front();
  return schema;
}

// Whole days, rounded up: S3 lifecycle rules count in days.
int64_t DaysOf(const Value& duration) {
  return static_cast<int64_t>(std::ceil(duration.as_number() / kDayMs));
}

Value DurationOfDays(int64_t days) {
  return Value::Duration(static_cast<double>(days) * kDayMs);
}

// Fills schema defaults (nested blocks included) and normalises what S3
// cannot tell apart: durations become whole days, an empty tag map or an
// empty policy is no tags or no policy.
void Normalize(ValueMap& m) {
  const BlockSchema& schema = BucketSchema().body;
  for (const auto& a : schema.attributes) {
    Value& v = m[a.name];
    if (v.is_null() && a.default_value) v = *a.default_value;
  }
  if (Value& t = m["tags"]; t.kind() == Value::Kind::Object && t.as_object().empty()) t = Value();
  if (Value& p = m["policy"]; p.kind() == Value::Kind::String && p.as_string().empty()) p = Value();
  for (const auto& b : schema.blocks) {
    Value& v = m[b.name];
    if (v.is_null()) v = Value::Object({});
    if (v.kind() != Value::Kind::Object) continue;
    ValueMap out;
    for (const auto& [label, item] : v.as_object()) {
      if (item.kind() != Value::Kind::Object) {
        out[label] = item;
        continue;
      }
      ValueMap inner = item.as_object();
      for (const auto& a : b.body->attributes) {
        Value& iv = inner[a.name];
        if (iv.is_null() && a.default_value) iv = *a.default_value;
        if (a.type.is(TypeKind::Duration) && iv.kind() == Value::Kind::Duration && iv.as_number() > 0)
          iv = DurationOfDays(DaysOf(iv));
      }
      out[label] = Value::Object(std::move(inner));
    }
    v = Value::Object(std::move(out));
  }
}

// S3 bucket naming rules (the DNS-compatible ones): 3-63 characters of
// lowercase letters, digits, '.' and '-', starting and ending with a letter
// or digit, no "..", not an IP address.
std::string BucketNameProblem(const std::string& n) {
  if (n.size() < 3 || n.size() > 63) return "must be 3 to 63 characters long";
  for (char c : n)
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' ||
          c == '-'))
      return "may hold only lowercase letters, digits, '.' and '-'";
  if (!std::isalnum(static_cast<unsigned char>(n.front())) || !std::isalnum(static_cast<unsigned char>(n.back())))
    return "must start and end with a letter or a digit";
  if (n.find("..") != std::string::npos) return "may not contain '..'";
  if (std::all_of(n.begin(), n.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)) || c == '.'; }))
    return "may not look like an IP address";
  return "";
}

// A principal of a grant: an RGW user name, or TENANT$USER.
std::string PrincipalProblem(const std::string& p) {
  if (p.empty()) return "is empty";
  int dollars = 0;
  for (char c : p) {
    if (c == '$') {
      ++dollars;
      continue;
    }
    if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("_+=,.@-").find(c) != std::string_view::npos))
      return "may hold only letters, digits and _+=,.@- (and one '$' between tenant and user)";
  }
  if (dollars > 1) return "may hold at most one '$' (TENANT$USER)";
  return "";
}

std::string PrincipalArn(const std::string& principal) {
  size_t dollar = principal.find('$');
  if (dollar == std::string::npos) return kUserArnPrefix + principal;
  return "arn:aws:iam::" + principal.substr(0, dollar) + ":user/" + principal.substr(dollar + 1);
}

// The inverse of PrincipalArn; "" for anything else.
std::string PrincipalOfArn(const std::string& arn) {
  if (arn.rfind(kUserArnPrefix, 0) == 0) return arn.substr(std::string(kUserArnPrefix).size());
  const std::string prefix = "arn:aws:iam::";
  if (arn.rfind(prefix, 0) != 0) return "";
  std::string rest = arn.substr(prefix.size());
  size_t colon = rest.find(":user/");
  if (colon == std::string::npos) return "";
  return rest.substr(0, colon) + "$" + rest.substr(colon + 6);
}

const char* AccessSid(const std::string& access) {
  if (access == "read") return "PlinthGrantRead";
  if (access == "write") return "PlinthGrantWrite";
  return "PlinthGrantAdmin";
}

json AccessActions(const std::string& access) {
  json read = {"s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket", "s3:ListBucketVersions",
               "s3:GetBucketLocation"};
  if (access == "read") return read;
  if (access == "write") {
    for (const char* a : {"s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:AbortMultipartUpload",
                          "s3:ListMultipartUploadParts", "s3:ListBucketMultipartUploads"})
      read.push_back(a);
    return read;
  }
  return json::array({"s3:*"});
}

// The statements of a policy document (an object or an array of them).
std::optional<json> StatementsOf(const std::string& text, std::string* why) {
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    *why = "is not a JSON object";
    return std::nullopt;
  }
  if (!doc.contains("Statement")) return json::array();
  const json& s = doc["Statement"];
  if (s.is_object()) return json::array({s});
  if (!s.is_array()) {
    *why = "has a Statement that is neither an object nor an array";
    return std::nullopt;
  }
  return s;
}

bool IsGenerated(const json& statement) {
  return statement.is_object() && statement.contains("Sid") && statement["Sid"].is_string() &&
         statement["Sid"].get<std::string>().rfind(kSidPrefix, 0) == 0;
}

// Configured lifecycle rules as the client's.
std::vector<s3::LifecycleRule> RulesOf(const ValueMap& planned) {
  std::vector<s3::LifecycleRule> out;
  const Value* rules = Find(planned, "lifecycle_rule");
  if (!rules || rules->kind() != Value::Kind::Object) return out;
  for (const auto& [label, item] : rules->as_object()) {
    if (item.kind() != Value::Kind::Object) continue;
    const ValueMap& m = item.as_object();
    s3::LifecycleRule r;
    r.id = label;
    r.prefix = StringOr(Find(m, "prefix"), "");
    auto days = [&](const char* key) -> std::optional<int64_t> {
      const Value* v = Find(m, key);
      if (!v || v->kind() != Value::Kind::Duration) return std::nullopt;
      return DaysOf(*v);
    };
    r.expiration_days = days("expire_after");
    r.noncurrent_expiration_days = days("noncurrent_expire_after");
    r.transition_days = days("transition_after");
    r.transition_storage_class = StringOr(Find(m, "transition_storage_class"), "");
    r.abort_incomplete_multipart_days = days("abort_incomplete_multipart_after");
    out.push_back(std::move(r));
  }
  return out;
}

Value RulesValue(const std::vector<s3::LifecycleRule>& rules) {
  ValueMap out;
  int unnamed = 0;
  auto days = [](const std::optional<int64_t>& d) { return d ? DurationOfDays(*d) : Value(); };
  for (const s3::LifecycleRule& r : rules) {
    std::string label = r.id.empty() ? "rule-" + std::to_string(++unnamed) : r.id;
    out[label] = Value::Object({
        {"prefix", Value::String(r.prefix)},
        {"expire_after", days(r.expiration_days)},
        {"noncurrent_expire_after", days(r.noncurrent_expiration_days)},
        {"transition_after", days(r.transition_days)},
        {"transition_storage_class",
         r.transition_storage_class.empty() ? Value() : Value::String(r.transition_storage_class)},
        {"abort_incomplete_multipart_after", days(r.abort_incomplete_multipart_days)},
    });
  }
  return Value::Object(std::move(out));
}

s3::Tags TagsOf(const ValueMap& planned) {
  s3::Tags out;
  const Value* t = Find(planned, "tags");
  if (!t || t->kind() != Value::Kind::Object) return out;
  for (const auto& [k, v] : t->as_object())
    if (v.kind() == Value::Kind::String) out[k] = v.as_string();
  return out;
}

// The bucket name of a configuration: `bucket` when known, else the
// instance's name.
std::string BucketNameOf(const ValueMap& m) {
  if (const Value* b = Find(m, "bucket"); IsKnownString(b)) return b->as_string();
  if (const Value* n = Find(m, "name"); IsKnownString(n)) return n->as_string();
  return "";
}

// Identity attributes the engine passes along (`name`, `address`) are kept.
void Carry(const ValueMap* from, ValueMap& to) {
  if (!from) return;
  for (const char* k : {"name", "address"}) {
    if (const Value* v = Find(*from, k); v && !v->is_null() && !to.count(k)) to[k] = *v;
  }
}

}  // namespace

// ================================================================ provider

S3Config S3Config::FromEnvironment() {
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  S3Config c;
  c.endpoint = env("AWS_ENDPOINT_URL_S3");
  if (c.endpoint.empty()) c.endpoint = env("AWS_ENDPOINT_URL");
  c.region = env("AWS_REGION");
  if (c.region.empty()) c.region = env("AWS_DEFAULT_REGION");
  if (c.region.empty()) c.region = "us-east-1";
  c.access_key = env("AWS_ACCESS_KEY_ID");
  c.secret_key = env("AWS_SECRET_ACCESS_KEY");
  return c;
}

namespace {

s3::ClientConfig ClientConfigOf(const S3Config& c, std::function<void(std::chrono::milliseconds)> sleep) {
  s3::ClientConfig cc;
  cc.endpoint = c.endpoint;
  cc.region = c.region.empty() ? "us-east-1" : c.region;
  cc.access_key = c.access_key;
  cc.secret_key = c.secret_key;
  cc.path_style = c.path_style;
  cc.sleep = std::move(sleep);
  return cc;
}

}  // namespace

S3Provider::S3Provider(S3Config config) : S3Provider(std::move(config), nullptr, {}) {}

S3Provider::S3Provider(S3Config config, std::shared_ptr<s3::Transport> transport,
                       std::function<void(std::chrono::milliseconds)> sleep)
    : config_(std::move(config)),
      client_(std::make_unique<s3::Client>(ClientConfigOf(config_, std::move(sleep)), std::move(transport))) {}

const SchemaSource& S3Provider::Schemas() const {
  return S3ProviderSchemas();
}

// ---------------------------------------------------------------- validate

std::vector<std::string> S3Provider::Validate(const std::string& type, const ValueMap& config) const {
  if (type != kType) return {UnknownType(type).message};
  std::vector<std::string> errs;
  const Value* b = Find(config, "bucket");
  const Value* named = IsKnownString(b) ? b : Find(config, "name");
  if (IsKnownString(named)) {
    if (std::string why = BucketNameProblem(named->as_string()); !why.empty())
      errs.push_back("bucket name " + Shown(*named, named->as_string()) + " " + why +
                     (named == b ? "" : "; set 'bucket' to a valid name"));
  }
  if (const Value* p = Find(config, "policy"); IsKnownString(p) && !p->as_string().empty()) {
    std::string why;
    auto statements = StatementsOf(p->as_string(), &why);
    if (!statements) {
      errs.push_back("policy " + why);
    } else {
      for (const json& s : *statements)
        if (IsGenerated(s))
          errs.push_back("policy statement Sid '" + s["Sid"].get<std::string>() +
                         "' starts with 'Plinth', which the s3 provider reserves for the statements it generates");
    }
  }
  if (const Value* rules = Find(config, "lifecycle_rule"); rules && rules->kind() == Value::Kind::Object) {
    for (const auto& [label, item] : rules->as_object()) {
      if (item.kind() != Value::Kind::Object) continue;
      const ValueMap& m = item.as_object();
      std::string where = "lifecycle_rule '" + label + "'";
      if (label.empty() || label.size() > 255) errs.push_back(where + ": a rule id must be 1 to 255 characters");
      bool any_known_action = false, any_unknown = false;
      for (const auto& k : DurationKeys()) {
        const Value* v = Find(m, k);
        if (!v || v->is_null()) continue;
        if (v->is_unknown()) {
          any_unknown = true;
          continue;
        }
        if (v->kind() == Value::Kind::Duration && v->as_number() <= 0)
          errs.push_back(where + ": " + k + " must be greater than zero");
        any_known_action = true;
      }
      if (!any_known_action && !any_unknown)
        errs.push_back(where + " does nothing: set expire_after, noncurrent_expire_after, transition_after or "
                               "abort_incomplete_multipart_after");
      const Value* ta = Find(m, "transition_after");
      const Value* tc = Find(m, "transition_storage_class");
      bool has_ta = ta && !ta->is_null(), has_tc = tc && !tc->is_null();
      if (has_ta != has_tc)
        errs.push_back(where + ": transition_after and transition_storage_class go together");
    }
  }
  if (const Value* grants = Find(config, "grant"); grants && grants->kind() == Value::Kind::Object) {
    for (const auto& [principal, item] : grants->as_object())
      if (std::string why = PrincipalProblem(principal); !why.empty())
        errs.push_back("grant principal '" + principal + "' " + why);
  }
  return errs;
}

// -------------------------------------------------------------------- plan

Result<PlanResponse> S3Provider::PlanChange(const PlanRequest& request) {
  if (request.type != kType) return UnknownType(request.type);
  const ValueMap* prior = request.prior;
  PlanResponse r;
  r.planned = request.config;
  ValueMap& p = r.planned;
  Normalize(p);

  // `bucket` left unset: the name chosen before, else the instance's name.
  bool bucket_unset = std::find(request.unset.begin(), request.unset.end(), "bucket") != request.unset.end();
  Value& bucket = p["bucket"];
  if (bucket.is_null() || (bucket.is_unknown() && bucket_unset)) {
    const Value* pv = prior ? Find(*prior, "bucket") : nullptr;
    const Value* name = Find(p, "name");
    if (IsKnownString(pv))
      bucket = *pv;
    else if (IsKnownString(name))
      bucket = *name;
    else
      bucket = Value::Unknown(Type::String());
  }
  if (prior) {
    const Value* pv = Find(*prior, "bucket");
    if (bucket.ContainsUnknown() || !pv || pv->is_null() || !bucket.Equals(*pv)) r.replace_because.push_back("bucket");
  }
  if (IsKnownString(&bucket)) {
    const std::string& n = bucket.as_string();
    p["id"] = Value::String(n);
    p["arn"] = Value::String("arn:aws:s3:::" + n);
    p["endpoint"] = Value::String(client_->Url(n));
  } else {
    p["id"] = p["arn"] = p["endpoint"] = Value::Unknown(Type::String());
  }
  return r;
}

// ----------------------------------------------------------------- policies

std::string S3Provider::PolicyFor(const std::string& bucket, const ValueMap& planned) {
  json statements = json::array();
  std::string version = "2012-10-17";
  if (const Value* p = Find(planned, "policy"); IsKnownString(p) && !p->as_string().empty()) {
    std::string why;
    if (auto s = StatementsOf(p->as_string(), &why)) statements = *s;
    json doc = json::parse(p->as_string(), nullptr, false);
    if (doc.is_object() && doc.contains("Version") && doc["Version"].is_string())
      version = doc["Version"].get<std::string>();
  }
  std::string bucket_arn = "arn:aws:s3:::" + bucket;
  std::map<std::string, std::vector<std::string>> by_access;  // access -> principal ARNs (sorted by principal)
  if (const Value* grants = Find(planned, "grant"); grants && grants->kind() == Value::Kind::Object) {
    for (const auto& [principal, item] : grants->as_object()) {
      if (item.kind() != Value::Kind::Object) continue;
      by_access[StringOr(Find(item.as_object(), "access"), "read")].push_back(PrincipalArn(principal));
    }
  }
  for (const char* access : {"read", "write", "admin"}) {
    auto it = by_access.find(access);
    if (it == by_access.end()) continue;
    statements.push_back({{"Sid", AccessSid(access)},
                          {"Effect", "Allow"},
                          {"Principal", {{"AWS", it->second}}},
                          {"Action", AccessActions(access)},
                          {"Resource", {bucket_arn, bucket_arn + "/*"}}});
  }
  if (BoolOf(Find(planned, "enforce_encryption"))) {
    statements.push_back({{"Sid", kSidEnforce},
                          {"Effect", "Deny"},
                          {"Principal", "*"},
                          {"Action", "s3:PutObject"},
                          {"Resource", bucket_arn + "/*"},
                          {"Condition", {{"Null", {{"s3:x-amz-server-side-encryption", "true"}}}}}});
  }
  if (statements.empty()) return "";
  json doc = {{"Version", version}, {"Statement", statements}};
  return doc.dump();
}

// ------------------------------------------------------------------ writes

namespace {

// The planned attributes of a write: defaults filled, validated, and every
// configured attribute known (the engine defers what is not).
Result<ValueMap> PrepareForWrite(const S3Provider& provider, const ValueMap& planned) {
  ValueMap p = planned;
  Normalize(p);
  if (auto errs = provider.Validate(kType, p); !errs.empty()) return Fail(errs.front());
  for (const auto& a : BucketSchema().body.attributes) {
    if (a.mode == AttrMode::Computed || a.name == "bucket") continue;
    if (const Value* v = Find(p, a.name); v && v->ContainsUnknown())
      return Fail("s3_bucket attribute '" + a.name + "' is not known at apply time");
  }
  for (const auto& b : BucketSchema().body.blocks)
    if (const Value* v = Find(p, b.name); v && v->ContainsUnknown())
      return Fail("s3_bucket block '" + b.name + "' is not known at apply time");
  std::string name = BucketNameOf(p);
  if (name.empty()) return Fail("an s3_bucket needs a known bucket name");
  if (std::string why = BucketNameProblem(name); !why.empty())
    return Fail("bucket name '" + name + "' " + why);
  p["bucket"] = Value::String(name);
  return p;
}

}  // namespace

Result<Done> S3Provider::Configure(const std::string& bucket, const ValueMap& p, bool creating) {
  s3::Client& c = *client_;
  // Versioning: only an actual change is sent. "Off" on a bucket that was
  // never versioned stays unset (S3 cannot return to unset once enabled).
  bool want_versioning = BoolOf(Find(p, "versioning"));
  auto status = c.GetBucketVersioning(bucket);
  if (!status.ok()) return StoreFail("read the versioning of", bucket, status.error());
  bool enabled = status.value().status == "Enabled";
  if (want_versioning != enabled) {
    if (auto res = c.PutBucketVersioning(bucket, want_versioning); !res.ok())
      return StoreFail(want_versioning ? "enable versioning of" : "suspend versioning of", bucket, res.error());
  }

  std::vector<s3::LifecycleRule> rules = RulesOf(p);
  if (!rules.empty()) {
    if (auto res = c.PutBucketLifecycle(bucket, rules); !res.ok())
      return StoreFail("set the lifecycle rules of", bucket, res.error());
  } else if (!creating) {
    if (auto res = c.DeleteBucketLifecycle(bucket); !res.ok())
      return StoreFail("remove the lifecycle rules of", bucket, res.error());
  }

  s3::Tags tags = TagsOf(p);
  if (!tags.empty()) {
    if (auto res = c.PutBucketTagging(bucket, tags); !res.ok()) return StoreFail("tag", bucket, res.error());
  } else if (!creating) {
    if (auto res = c.DeleteBucketTagging(bucket); !res.ok())
      return StoreFail("remove the tags of", bucket, res.error());
  }

  std::string encryption = StringOr(Find(p, "encryption"), "none");
  if (encryption != "none") {
    if (auto res = c.PutBucketEncryption(bucket, {encryption, ""}); !res.ok()) {
      if (c.encryption_support() == s3::EncryptionSupport::Unsupported)
        return Fail("cannot set the default encryption of bucket '" + bucket + "': the store has no "
                    "default-encryption API (PutBucketEncryption answered " + res.error().ToString() +
                    "); set encryption = \"none\" and enforce_encryption = true to refuse unencrypted uploads");
      return StoreFail("set the default encryption of", bucket, res.error());
    }
  } else if (!creating) {
    // Removed only where some is set now: a store without the API (Ceph 16)
    // reads as "none" and is never sent DeleteBucketEncryption.
    auto current = c.GetBucketEncryption(bucket);
    if (!current.ok()) return StoreFail("read the default encryption of", bucket, current.error());
    if (current.value()) {
      if (auto res = c.DeleteBucketEncryption(bucket); !res.ok())
        return StoreFail("remove the default encryption of", bucket, res.error());
    }
  }

  std::string policy = PolicyFor(bucket, p);
  if (!policy.empty()) {
    if (auto res = c.PutBucketPolicy(bucket, policy); !res.ok())
      return StoreFail("set the policy of", bucket, res.error());
  } else if (!creating) {
    if (auto res = c.DeleteBucketPolicy(bucket); !res.ok())
      return StoreFail("remove the policy of", bucket, res.error());
  }
  return Done{};
}

Result<ResourceObject> S3Provider::Create(const std::string& type, const ValueMap& planned) {
  if (type != kType) return UnknownType(type);
  auto prepared = PrepareForWrite(*this, planned);
  if (!prepared.ok()) return prepared.error();
  const ValueMap& p = prepared.value();
  std::string bucket = p.at("bucket").as_string();
  auto exists = client_->HeadBucket(bucket);
  if (!exists.ok()) return StoreFail("check for", bucket, exists.error());
  if (exists.value()) {
    ProviderError e = Fail("bucket '" + bucket + "' already exists at " + config_.endpoint);
    e.import_id = bucket;
    return e;
  }
  if (auto res = client_->CreateBucket(bucket); !res.ok()) {
    if (res.error().code == "BucketAlreadyExists")
      return Fail("bucket name '" + bucket + "' is taken by another owner at " + config_.endpoint);
    return StoreFail("create", bucket, res.error());
  }
  if (auto res = Configure(bucket, p, true); !res.ok()) {
    // The bucket is new and empty: take it away again, so that a retry
    // starts clean instead of finding a half-configured bucket.
    auto removed = client_->DeleteBucket(bucket);
    ProviderError e = res.error();
    e.message += removed.ok() ? "; the new bucket was removed again"
                              : "; the new bucket could not be removed again (" + removed.error().ToString() +
                                    "): import or delete it";
    return e;
  }
  auto read = ReadBucket(bucket, &planned);
  if (!read.ok()) return read.error();
  if (!read.value()) return Fail("bucket '" + bucket + "' vanished right after it was created", true);
  return std::move(*read.value());
}

Result<ResourceObject> S3Provider::Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                          const ValueMap& planned) {
  if (type != kType) return UnknownType(type);
  auto prepared = PrepareForWrite(*this, planned);
  if (!prepared.ok()) return prepared.error();
  const ValueMap& p = prepared.value();
  if (p.at("bucket").as_string() != id)
    return Fail("bucket '" + id + "' cannot be renamed to '" + p.at("bucket").as_string() + "' in place");
  auto exists = client_->HeadBucket(id);
  if (!exists.ok()) return StoreFail("check for", id, exists.error());
  if (!exists.value()) return Fail("bucket '" + id + "' no longer exists at " + config_.endpoint);
  if (auto res = Configure(id, p, false); !res.ok()) return res.error();
  auto read = ReadBucket(id, &planned);
  if (!read.ok()) return read.error();
  if (!read.value()) return Fail("bucket '" + id + "' vanished while it was updated", true);
  return std::move(*read.value());
}

namespace {

std::string Counted(uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// What a bucket holds: every page of ListObjectVersions.
Result<DeletePreview> Holdings(s3::Client& c, const std::string& bucket, const ValueMap& prior) {
  uint64_t objects = 0, object_bytes = 0, versions = 0, version_bytes = 0, markers = 0;
  std::string key_marker, version_marker;
  for (;;) {
    auto page = c.ListObjectVersions(bucket, "", key_marker, version_marker, 1000);
    if (!page.ok()) return StoreFail("list the objects of", bucket, page.error());
    for (const s3::ObjectVersion& v : page.value().versions) {
      if (v.delete_marker) {
        ++markers;
      } else if (v.is_latest) {
        ++objects;
        object_bytes += v.size;
      } else {
        ++versions;
        version_bytes += v.size;
      }
    }
    if (!page.value().truncated) break;
    if (page.value().next_key_marker == key_marker && page.value().next_version_id_marker == version_marker)
      return Fail("cannot list the objects of bucket '" + bucket + "': the store's listing does not advance");
    key_marker = page.value().next_key_marker;
    version_marker = page.value().next_version_id_marker;
  }
  DeletePreview p;
  if (objects > 0) {
    p.amounts["objects"] = objects;
    p.amounts["object_bytes"] = object_bytes;
    p.data.push_back(Counted(objects, "object", "objects") + " (" + storage::BytesText(object_bytes) + ")");
  }
  if (versions > 0) {
    p.amounts["versions"] = versions;
    p.amounts["version_bytes"] = version_bytes;
    p.data.push_back(Counted(versions, "noncurrent version", "noncurrent versions") + " (" +
                     storage::BytesText(version_bytes) + ")");
  }
  if (markers > 0) {
    p.amounts["delete_markers"] = markers;
    p.data.push_back(Counted(markers, "delete marker", "delete markers"));
  }
  if (!p.data.empty() && !BoolOf(Find(prior, "force_destroy"))) {
    const Value* a = Find(prior, "address");
    std::string name = IsKnownString(a) && !a->as_string().empty() ? a->as_string() : "bucket '" + bucket + "'";
    std::string held;
    for (size_t i = 0; i < p.data.size(); ++i)
      held += (i == 0 ? "" : i + 1 == p.data.size() ? " and " : ", ") + p.data[i];
    p.refusal = name + " still holds " + held + "; empty it first, or, to delete it with its data, set " +
                "force_destroy = true on " + name + ", apply, then destroy";
  }
  return p;
}

}  // namespace

Result<DeletePreview> S3Provider::PlanDelete(const std::string& type, const std::string& id, const ValueMap& prior) {
  if (type != kType) return UnknownType(type);
  auto exists = client_->HeadBucket(id);
  if (!exists.ok()) return StoreFail("check for", id, exists.error());
  if (!exists.value()) return DeletePreview{};
  return Holdings(*client_, id, prior);
}

Result<Done> S3Provider::Delete(const std::string& type, const std::string& id, const ValueMap& prior) {
  if (type != kType) return UnknownType(type);
  auto exists = client_->HeadBucket(id);
  if (!exists.ok()) return StoreFail("check for", id, exists.error());
  if (!exists.value()) return Done{};
  auto held = Holdings(*client_, id, prior);
  if (!held.ok()) return held.error();
  if (!held.value().refusal.empty()) return Fail(held.value().refusal);
  if (!held.value().data.empty()) {
    // force_destroy: every version and delete marker, page by page, until
    // the listing is empty (the plan showed what goes; apply checked that
    // nothing was added since).
    uint64_t total = 0;
    for (const auto& [kind, n] : held.value().amounts)
      if (kind == "objects" || kind == "versions" || kind == "delete_markers") total += n;
    for (uint64_t round = 0;; ++round) {
      auto page = client_->ListObjectVersions(id, "", "", "", 1000);
      if (!page.ok()) return StoreFail("list the objects of", id, page.error());
      if (page.value().versions.empty()) break;
      if (round > total / 1000 + 16)
        return Fail("cannot empty bucket '" + id + "': object versions keep appearing while it is deleted");
      for (const s3::ObjectVersion& v : page.value().versions) {
        if (auto res = client_->DeleteObject(id, v.key, v.version_id.empty() ? "null" : v.version_id); !res.ok()) {
          if (res.error().code == "NoSuchKey" || res.error().code == "NoSuchVersion") continue;
          return Fail("cannot delete object '" + v.key + "' (version " + v.version_id + ") of bucket '" + id +
                          "': " + res.error().ToString(),
                      res.error().retryable);
        }
      }
    }
  }
  if (auto res = client_->DeleteBucket(id); !res.ok()) {
    if (res.error().code == "NoSuchBucket") return Done{};
    if (res.error().code == "BucketNotEmpty")
      return Fail("bucket '" + id + "' is not empty (objects were written while it was being deleted); empty it "
                  "first (plinth does not delete data)");
    return StoreFail("delete", id, res.error());
  }
  return Done{};
}

// ------------------------------------------------------------------- reads

Result<std::optional<ResourceObject>> S3Provider::ReadBucket(const std::string& bucket, const ValueMap* carry) {
  using Out = std::optional<ResourceObject>;
  s3::Client& c = *client_;
  auto exists = c.HeadBucket(bucket);
  if (!exists.ok()) return StoreFail("read", bucket, exists.error());
  if (!exists.value()) return Out();
  ResourceObject o;
  o.id = bucket;
  ValueMap& a = o.attributes;
  a["id"] = Value::String(bucket);
  a["bucket"] = Value::String(bucket);
  a["arn"] = Value::String("arn:aws:s3:::" + bucket);
  a["endpoint"] = Value::String(c.Url(bucket));

  auto versioning = c.GetBucketVersioning(bucket);
  if (!versioning.ok()) return StoreFail("read the versioning of", bucket, versioning.error());
  a["versioning"] = Value::Bool(versioning.value().status == "Enabled");

  auto lifecycle = c.GetBucketLifecycle(bucket);
  if (!lifecycle.ok()) return StoreFail("read the lifecycle rules of", bucket, lifecycle.error());
  a["lifecycle_rule"] = RulesValue(lifecycle.value().value_or(std::vector<s3::LifecycleRule>{}));

  auto tags = c.GetBucketTagging(bucket);
  if (!tags.ok()) return StoreFail("read the tags of", bucket, tags.error());
  if (tags.value().empty()) {
    a["tags"] = Value();
  } else {
    ValueMap t;
    for (const auto& [k, v] : tags.value()) t[k] = Value::String(v);
    a["tags"] = Value::Object(std::move(t));
  }

  auto encryption = c.GetBucketEncryption(bucket);
  if (!encryption.ok()) return StoreFail("read the default encryption of", bucket, encryption.error());
  a["encryption"] = Value::String(encryption.value() && !encryption.value()->algorithm.empty()
                                      ? encryption.value()->algorithm
                                      : "none");

  // The policy: generated statements become grants and enforce_encryption;
  // the rest is the configured policy.
  auto policy = c.GetBucketPolicy(bucket);
  if (!policy.ok()) return StoreFail("read the policy of", bucket, policy.error());
  ValueMap grants;
  bool enforce = false;
  json user = json::array();
  std::string version = "2012-10-17";
  if (policy.value()) {
    std::string why;
    auto statements = StatementsOf(*policy.value(), &why);
    if (!statements) return Fail("the policy of bucket '" + bucket + "' " + why);
    json doc = json::parse(*policy.value(), nullptr, false);
    if (doc.is_object() && doc.contains("Version") && doc["Version"].is_string())
      version = doc["Version"].get<std::string>();
    for (const json& s : *statements) {
      if (!IsGenerated(s)) {
        user.push_back(s);
        continue;
      }
      std::string sid = s["Sid"].get<std::string>();
      if (sid == kSidEnforce) {
        enforce = true;
        continue;
      }
      std::string access = sid == "PlinthGrantRead" ? "read" : sid == "PlinthGrantWrite" ? "write" : "admin";
      if (!s.contains("Principal") || !s["Principal"].is_object() || !s["Principal"].contains("AWS")) continue;
      json arns = s["Principal"]["AWS"];
      if (arns.is_string()) arns = json::array({arns});
      for (const json& arn : arns) {
        if (!arn.is_string()) continue;
        std::string principal = PrincipalOfArn(arn.get<std::string>());
        if (!principal.empty()) grants[principal] = Value::Object({{"access", Value::String(access)}});
      }
    }
  }
  a["grant"] = Value::Object(std::move(grants));
  a["enforce_encryption"] = Value::Bool(enforce);
  if (user.empty()) {
    a["policy"] = Value();
  } else {
    // The configured text when it says the same, so formatting is no drift.
    Value shown = Value::String(json({{"Version", version}, {"Statement", user}}).dump());
    if (carry) {
      if (const Value* pp = Find(*carry, "policy"); IsKnownString(pp)) {
        std::string why;
        auto mine = StatementsOf(pp->as_string(), &why);
        if (mine && *mine == user) shown = *pp;
      }
    }
    a["policy"] = shown;
  }
  // Plinth's own setting, not the store's: what the state (or the plan) says.
  a["force_destroy"] = Value::Bool(carry && BoolOf(Find(*carry, "force_destroy")));
  Carry(carry, a);
  return Out(std::move(o));
}

Result<std::optional<ResourceObject>> S3Provider::Read(const std::string& type, const std::string& id,
                                                       const ValueMap& prior) {
  if (type != kType) return UnknownType(type);
  if (std::string why = BucketNameProblem(id); !why.empty()) return Fail("bucket id '" + id + "' " + why);
  return ReadBucket(id, &prior);
}

Result<ResourceObject> S3Provider::Import(const std::string& type, const std::string& id) {
  if (type != kType) return UnknownType(type);
  if (std::string why = BucketNameProblem(id); !why.empty()) return Fail("bucket id '" + id + "' " + why);
  auto read = ReadBucket(id, nullptr);
  if (!read.ok()) return read.error();
  if (!read.value()) return Fail("no bucket '" + id + "' at " + config_.endpoint);
  return std::move(*read.value());
}

}  // namespace plinth::runtime
