#include "runtime/s3/xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstdlib>
#include <memory>
#include <mutex>

namespace plinth::s3::xml {
namespace {

constexpr const char* kNamespace = "http://s3.amazonaws.com/doc/2006-03-01/";

void Init() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;

Doc Parse(const std::string& body) {
  Init();
  if (body.empty()) return nullptr;
  // No network, no entity substitution, no DTD loading: the store's answer is data only.
  int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOBLANKS;
  return Doc(xmlReadMemory(body.data(), static_cast<int>(body.size()), "s3.xml", nullptr, options));
}

std::string Name(const xmlNode* n) {
  return n && n->name ? reinterpret_cast<const char*>(n->name) : "";
}

std::vector<const xmlNode*> Children(const xmlNode* n, const char* name) {
  std::vector<const xmlNode*> out;
  if (!n) return out;
  for (const xmlNode* c = n->children; c; c = c->next)
    if (c->type == XML_ELEMENT_NODE && Name(c) == name) out.push_back(c);
  return out;
}

const xmlNode* Child(const xmlNode* n, const char* name) {
  auto c = Children(n, name);
  return c.empty() ? nullptr : c.front();
}

std::string Text(const xmlNode* n) {
  if (!n) return "";
  xmlChar* t = xmlNodeGetContent(n);
  std::string s = t ? reinterpret_cast<const char*>(t) : "";
  xmlFree(t);
  return s;
}

std::string ChildText(const xmlNode* n, const char* name) {
  return Text(Child(n, name));
}

std::optional<int64_t> ChildInt(const xmlNode* n, const char* name) {
  const xmlNode* c = Child(n, name);
  if (!c) return std::nullopt;
  std::string t = Text(c);
  char* end = nullptr;
  long long v = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0') return std::nullopt;
  return v;
}

uint64_t ChildUint(const xmlNode* n, const char* name) {
  auto v = ChildInt(n, name);
  return v && *v > 0 ? static_cast<uint64_t>(*v) : 0;
}

bool ChildBool(const xmlNode* n, const char* name) {
  return ChildText(n, name) == "true";
}

Error Malformed(const std::string& what) {
  Error e;
  e.code = "InvalidResponse";
  e.message = "the store's answer is not " + what;
  return e;
}

// The root element when it has the expected local name.
const xmlNode* Root(const Doc& doc, const char* name) {
  if (!doc) return nullptr;
  const xmlNode* r = xmlDocGetRootElement(doc.get());
  return r && Name(r) == name ? r : nullptr;
}

// ---- building

struct Builder {
  Doc doc;
  xmlNode* root;
  explicit Builder(const char* root_name) : doc(xmlNewDoc(BAD_CAST "1.0")) {
    Init();
    root = xmlNewNode(nullptr, BAD_CAST root_name);
    xmlNewNs(root, BAD_CAST kNamespace, nullptr);
    xmlDocSetRootElement(doc.get(), root);
  }
  static xmlNode* Add(xmlNode* parent, const char* name) {
    return xmlNewChild(parent, nullptr, BAD_CAST name, nullptr);
  }
  static xmlNode* AddText(xmlNode* parent, const char* name, const std::string& text) {
    // xmlNewTextChild escapes the text (&, <, >).
    return xmlNewTextChild(parent, nullptr, BAD_CAST name, BAD_CAST text.c_str());
  }
  std::string Dump() {
    xmlChar* mem = nullptr;
    int size = 0;
    xmlDocDumpMemoryEnc(doc.get(), &mem, &size, "UTF-8");
    std::string s(reinterpret_cast<char*>(mem), static_cast<size_t>(size));
    xmlFree(mem);
    return s;
  }
};

}  // namespace

std::string RootName(const std::string& body) {
  Doc doc = Parse(body);
  if (!doc) return "";
  return Name(xmlDocGetRootElement(doc.get()));
}

Error ParseError(const std::string& body, int http_status) {
  Error e;
  e.http_status = http_status;
  Doc doc = Parse(body);
  if (const xmlNode* r = Root(doc, "Error")) {
    e.code = ChildText(r, "Code");
    e.message = ChildText(r, "Message");
    e.request_id = ChildText(r, "RequestId");
  }
  return e;
}

Result<std::vector<BucketInfo>> ParseListBuckets(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "ListAllMyBucketsResult");
  if (!r) return Malformed("a bucket list");
  std::vector<BucketInfo> out;
  for (const xmlNode* b : Children(Child(r, "Buckets"), "Bucket"))
    out.push_back({ChildText(b, "Name"), ChildText(b, "CreationDate")});
  return out;
}

Result<ListObjectsResult> ParseListObjectsV2(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "ListBucketResult");
  if (!r) return Malformed("an object list");
  ListObjectsResult out;
  for (const xmlNode* c : Children(r, "Contents")) {
    ObjectInfo o;
    o.key = ChildText(c, "Key");
    o.size = ChildUint(c, "Size");
    o.etag = ChildText(c, "ETag");
    o.last_modified = ChildText(c, "LastModified");
    o.storage_class = ChildText(c, "StorageClass");
    out.objects.push_back(std::move(o));
  }
  for (const xmlNode* p : Children(r, "CommonPrefixes")) out.common_prefixes.push_back(ChildText(p, "Prefix"));
  out.truncated = ChildBool(r, "IsTruncated");
  out.next_continuation_token = ChildText(r, "NextContinuationToken");
  out.key_count = ChildUint(r, "KeyCount");
  return out;
}

Result<ListVersionsResult> ParseListObjectVersions(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "ListVersionsResult");
  if (!r) return Malformed("a version list");
  ListVersionsResult out;
  for (const xmlNode* c = r->children; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    std::string n = Name(c);
    if (n != "Version" && n != "DeleteMarker") continue;
    ObjectVersion v;
    v.key = ChildText(c, "Key");
    v.version_id = ChildText(c, "VersionId");
    v.is_latest = ChildBool(c, "IsLatest");
    v.delete_marker = n == "DeleteMarker";
    v.size = ChildUint(c, "Size");
    v.last_modified = ChildText(c, "LastModified");
    out.versions.push_back(std::move(v));
  }
  out.truncated = ChildBool(r, "IsTruncated");
  out.next_key_marker = ChildText(r, "NextKeyMarker");
  out.next_version_id_marker = ChildText(r, "NextVersionIdMarker");
  return out;
}

Result<VersioningStatus> ParseVersioning(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "VersioningConfiguration");
  if (!r) return Malformed("a versioning configuration");
  return VersioningStatus{ChildText(r, "Status"), ChildText(r, "MfaDelete")};
}

Result<std::vector<LifecycleRule>> ParseLifecycle(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "LifecycleConfiguration");
  if (!r) return Malformed("a lifecycle configuration");
  std::vector<LifecycleRule> out;
  for (const xmlNode* c : Children(r, "Rule")) {
    LifecycleRule rule;
    rule.id = ChildText(c, "ID");
    // The prefix is either the rule's own (the older form) or its filter's.
    if (const xmlNode* f = Child(c, "Filter")) {
      if (const xmlNode* p = Child(f, "Prefix"))
        rule.prefix = Text(p);
      else if (const xmlNode* a = Child(f, "And"))
        rule.prefix = ChildText(a, "Prefix");
    } else {
      rule.prefix = ChildText(c, "Prefix");
    }
    rule.enabled = ChildText(c, "Status") == "Enabled";
    if (const xmlNode* e = Child(c, "Expiration")) rule.expiration_days = ChildInt(e, "Days");
    if (const xmlNode* e = Child(c, "NoncurrentVersionExpiration"))
      rule.noncurrent_expiration_days = ChildInt(e, "NoncurrentDays");
    if (const xmlNode* t = Child(c, "Transition")) {
      rule.transition_days = ChildInt(t, "Days");
      rule.transition_storage_class = ChildText(t, "StorageClass");
    }
    if (const xmlNode* a = Child(c, "AbortIncompleteMultipartUpload"))
      rule.abort_incomplete_multipart_days = ChildInt(a, "DaysAfterInitiation");
    out.push_back(std::move(rule));
  }
  return out;
}

Result<Tags> ParseTagging(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "Tagging");
  if (!r) return Malformed("a tag set");
  Tags out;
  for (const xmlNode* t : Children(Child(r, "TagSet"), "Tag")) out[ChildText(t, "Key")] = ChildText(t, "Value");
  return out;
}

Result<EncryptionConfig> ParseEncryption(const std::string& body) {
  Doc doc = Parse(body);
  const xmlNode* r = Root(doc, "ServerSideEncryptionConfiguration");
  if (!r) return Malformed("an encryption configuration");
  EncryptionConfig out;
  for (const xmlNode* rule : Children(r, "Rule")) {
    if (const xmlNode* d = Child(rule, "ApplyServerSideEncryptionByDefault")) {
      out.algorithm = ChildText(d, "SSEAlgorithm");
      out.kms_key_id = ChildText(d, "KMSMasterKeyID");
      break;
    }
  }
  return out;
}

std::string BuildVersioning(const std::string& status) {
  Builder b("VersioningConfiguration");
  Builder::AddText(b.root, "Status", status);
  return b.Dump();
}

std::string BuildLifecycle(const std::vector<LifecycleRule>& rules) {
  Builder b("LifecycleConfiguration");
  for (const LifecycleRule& r : rules) {
    xmlNode* rule = Builder::Add(b.root, "Rule");
    Builder::AddText(rule, "ID", r.id);
    Builder::AddText(Builder::Add(rule, "Filter"), "Prefix", r.prefix);
    Builder::AddText(rule, "Status", r.enabled ? "Enabled" : "Disabled");
    if (r.expiration_days)
      Builder::AddText(Builder::Add(rule, "Expiration"), "Days", std::to_string(*r.expiration_days));
    if (r.transition_days) {
      xmlNode* t = Builder::Add(rule, "Transition");
      Builder::AddText(t, "Days", std::to_string(*r.transition_days));
      Builder::AddText(t, "StorageClass", r.transition_storage_class);
    }
    if (r.noncurrent_expiration_days)
      Builder::AddText(Builder::Add(rule, "NoncurrentVersionExpiration"), "NoncurrentDays",
                       std::to_string(*r.noncurrent_expiration_days));
    if (r.abort_incomplete_multipart_days)
      Builder::AddText(Builder::Add(rule, "AbortIncompleteMultipartUpload"), "DaysAfterInitiation",
                       std::to_string(*r.abort_incomplete_multipart_days));
  }
  return b.Dump();
}

std::string BuildTagging(const Tags& tags) {
  Builder b("Tagging");
  xmlNode* set = Builder::Add(b.root, "TagSet");
  for (const auto& [k, v] : tags) {
    xmlNode* t = Builder::Add(set, "Tag");
    Builder::AddText(t, "Key", k);
    Builder::AddText(t, "Value", v);
  }
  return b.Dump();
}

std::string BuildEncryption(const EncryptionConfig& config) {
  Builder b("ServerSideEncryptionConfiguration");
  xmlNode* d = Builder::Add(Builder::Add(b.root, "Rule"), "ApplyServerSideEncryptionByDefault");
  Builder::AddText(d, "SSEAlgorithm", config.algorithm);
  if (!config.kms_key_id.empty()) Builder::AddText(d, "KMSMasterKeyID", config.kms_key_id);
  return b.Dump();
}

}  // namespace plinth::s3::xml
