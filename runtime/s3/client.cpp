#include "runtime/s3/client.h"

#include <algorithm>
#include <random>
#include <thread>

#include "runtime/s3/sigv4.h"
#include "runtime/s3/xml.h"

namespace plinth::s3 {

std::string Error::ToString() const {
  std::string s = code.empty() ? "error" : code;
  if (!message.empty()) s += ": " + message;
  if (http_status != 0) s += " (http " + std::to_string(http_status) + ")";
  return s;
}

bool IsRetryable(int http_status, const std::string& code) {
  static const char* const kCodes[] = {"SlowDown",          "Throttling",         "ThrottlingException",
                                       "RequestTimeout",    "RequestTimeTooSkewed", "InternalError",
                                       "ServiceUnavailable", "ConnectionFailed",   "Timeout"};
  if (http_status == 0 || http_status >= 500 || http_status == 429) return true;
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

namespace {

Error ClientError(std::string code, std::string message) {
  Error e;
  e.code = std::move(code);
  e.message = std::move(message);
  return e;
}

// Codes for answers without a body (HEAD, some proxies).
std::string CodeOfStatus(int status) {
  switch (status) {
    case 301: return "PermanentRedirect";
    case 400: return "BadRequest";
    case 403: return "AccessDenied";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 501: return "NotImplemented";
    case 503: return "ServiceUnavailable";
    default: return "Http" + std::to_string(status);
  }
}

std::string HeaderOf(const HttpResponse& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? "" : it->second;
}

bool UnsupportedCode(const std::string& code) {
  return code == "InvalidArgument" || code == "NotImplemented" || code == "MethodNotAllowed" ||
         code == "InvalidRequest";
}

}  // namespace

Client::Client(ClientConfig config, std::shared_ptr<Transport> transport)
    : config_(std::move(config)), transport_(std::move(transport)) {
  if (!transport_) transport_ = std::make_shared<CurlTransport>(CurlOptions{config_.connect_timeout, config_.request_timeout});
  if (!config_.sleep) config_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
  if (!config_.now)
    config_.now = [] {
      return static_cast<long long>(
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
              .count());
    };
  if (config_.max_attempts < 1) config_.max_attempts = 1;
  std::string ep = config_.endpoint;
  size_t sep = ep.find("://");
  scheme_ = sep == std::string::npos ? "http" : ep.substr(0, sep);
  host_ = sep == std::string::npos ? ep : ep.substr(sep + 3);
  if (size_t slash = host_.find('/'); slash != std::string::npos) host_.resize(slash);
}

std::string Client::Url(const std::string& bucket, const std::string& key) const {
  std::string path = key.empty() ? "" : "/" + UriEncode(key, true);
  if (config_.path_style || bucket.empty())
    return scheme_ + "://" + host_ + (bucket.empty() ? "/" : "/" + UriEncode(bucket, false) + (path.empty() ? "" : path));
  return scheme_ + "://" + bucket + "." + host_ + (path.empty() ? "/" : path);
}

std::chrono::milliseconds Client::Backoff(int attempt) {
  // Full jitter: uniform in [0, min(cap, base * 2^attempt)].
  thread_local std::mt19937_64 rng{std::random_device{}()};
  long long ceiling = config_.backoff_base.count() << std::min(attempt, 20);
  ceiling = std::min<long long>(ceiling, config_.backoff_cap.count());
  std::uniform_int_distribution<long long> dist(0, std::max<long long>(ceiling, 0));
  return std::chrono::milliseconds(dist(rng));
}

HttpResponse Client::SendOnce(const Request& r) {
  std::string host = config_.path_style || r.bucket.empty() ? host_ : r.bucket + "." + host_;
  std::string path;
  if (config_.path_style && !r.bucket.empty()) path = "/" + UriEncode(r.bucket, false);
  if (!r.key.empty()) path += "/" + UriEncode(r.key, true);
  if (path.empty()) path = "/";
  else if (r.key.empty() && !config_.path_style) path = "/";

  std::string amz_date = AmzDate(config_.now());
  SigningInput in;
  in.method = r.method;
  in.path = path;
  in.query = r.query;
  in.headers = r.headers;
  in.headers["host"] = host;
  in.headers["x-amz-date"] = amz_date;
  in.payload_hash = Sha256Hex(r.body);
  in.headers["x-amz-content-sha256"] = in.payload_hash;
  if (r.content_md5) in.headers["content-md5"] = Md5Base64(r.body);
  Scope scope{amz_date.substr(0, 8), config_.region.empty() ? "us-east-1" : config_.region, "s3"};

  HttpRequest http;
  http.method = r.method;
  std::string query = CanonicalQuery(r.query);
  http.url = scheme_ + "://" + host + path + (query.empty() ? "" : "?" + query);
  http.headers = in.headers;
  http.headers["Authorization"] = Authorization(config_.access_key, config_.secret_key, amz_date, scope, in);
  http.body = r.body;
  return transport_->Send(http);
}

Result<HttpResponse> Client::Send(const Request& r) {
  Error last;
  for (int attempt = 0; attempt < config_.max_attempts; ++attempt) {
    if (attempt > 0) config_.sleep(Backoff(attempt - 1));
    HttpResponse resp = SendOnce(r);
    if (resp.status >= 200 && resp.status < 300) return resp;
    if (resp.status == 0) {
      last = ClientError(resp.timed_out ? "Timeout" : "ConnectionFailed",
                         "cannot reach " + host_ + ": " + resp.transport_error);
    } else {
      last = xml::ParseError(resp.body, resp.status);
      if (last.code.empty()) last.code = CodeOfStatus(resp.status);
      if (last.request_id.empty()) last.request_id = HeaderOf(resp, "x-amz-request-id");
    }
    last.retryable = IsRetryable(last.http_status, last.code);
    if (!last.retryable) break;
  }
  return last;
}

// ------------------------------------------------------------------ buckets

Result<None> Client::CreateBucket(const std::string& bucket) {
  Request r{"PUT", bucket};
  if (!config_.region.empty() && config_.region != "us-east-1") {
    r.body = "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>" +
             config_.region + "</LocationConstraint></CreateBucketConfiguration>";
  }
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return None{};
}

Result<bool> Client::HeadBucket(const std::string& bucket) {
  auto res = Send({"HEAD", bucket});
  if (res.ok()) return true;
  if (res.error().http_status == 404) return false;
  return res.error();
}

Result<None> Client::DeleteBucket(const std::string& bucket) {
  auto res = Send({"DELETE", bucket});
  if (!res.ok()) return res.error();
  return None{};
}

Result<std::vector<BucketInfo>> Client::ListBuckets() {
  auto res = Send({"GET"});
  if (!res.ok()) return res.error();
  return xml::ParseListBuckets(res.value().body);
}

Result<VersioningStatus> Client::GetBucketVersioning(const std::string& bucket) {
  auto res = Send({"GET", bucket, "", {{"versioning", ""}}});
  if (!res.ok()) return res.error();
  return xml::ParseVersioning(res.value().body);
}

Result<None> Client::PutBucketVersioning(const std::string& bucket, bool enabled) {
  Request r{"PUT", bucket, "", {{"versioning", ""}}};
  r.body = xml::BuildVersioning(enabled ? "Enabled" : "Suspended");
  r.content_md5 = true;
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return None{};
}

Result<std::optional<std::vector<LifecycleRule>>> Client::GetBucketLifecycle(const std::string& bucket) {
  using Out = std::optional<std::vector<LifecycleRule>>;
  auto res = Send({"GET", bucket, "", {{"lifecycle", ""}}});
  if (!res.ok()) {
    if (res.error().code == "NoSuchLifecycleConfiguration") return Out();
    return res.error();
  }
  auto rules = xml::ParseLifecycle(res.value().body);
  if (!rules.ok()) return rules.error();
  return Out(std::move(rules.value()));
}

Result<None> Client::PutBucketLifecycle(const std::string& bucket, const std::vector<LifecycleRule>& rules) {
  Request r{"PUT", bucket, "", {{"lifecycle", ""}}};
  r.body = xml::BuildLifecycle(rules);
  r.content_md5 = true;
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return None{};
}

Result<None> Client::DeleteBucketLifecycle(const std::string& bucket) {
  auto res = Send({"DELETE", bucket, "", {{"lifecycle", ""}}});
  if (!res.ok() && res.error().code != "NoSuchLifecycleConfiguration") return res.error();
  return None{};
}

Result<std::optional<std::string>> Client::GetBucketPolicy(const std::string& bucket) {
  using Out = std::optional<std::string>;
  auto res = Send({"GET", bucket, "", {{"policy", ""}}});
  if (!res.ok()) {
    if (res.error().code == "NoSuchBucketPolicy") return Out();
    return res.error();
  }
  return Out(std::move(res.value().body));
}

Result<None> Client::PutBucketPolicy(const std::string& bucket, const std::string& policy_json) {
  Request r{"PUT", bucket, "", {{"policy", ""}}};
  r.body = policy_json;
  r.headers["content-type"] = "application/json";
  r.content_md5 = true;
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return None{};
}

Result<None> Client::DeleteBucketPolicy(const std::string& bucket) {
  auto res = Send({"DELETE", bucket, "", {{"policy", ""}}});
  if (!res.ok() && res.error().code != "NoSuchBucketPolicy") return res.error();
  return None{};
}

Result<Tags> Client::GetBucketTagging(const std::string& bucket) {
  auto res = Send({"GET", bucket, "", {{"tagging", ""}}});
  if (!res.ok()) {
    if (res.error().code == "NoSuchTagSet" || res.error().code == "NoSuchTagSetError") return Tags{};
    return res.error();
  }
  return xml::ParseTagging(res.value().body);
}

Result<None> Client::PutBucketTagging(const std::string& bucket, const Tags& tags) {
  Request r{"PUT", bucket, "", {{"tagging", ""}}};
  r.body = xml::BuildTagging(tags);
  r.content_md5 = true;
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return None{};
}

Result<None> Client::DeleteBucketTagging(const std::string& bucket) {
  auto res = Send({"DELETE", bucket, "", {{"tagging", ""}}});
  if (!res.ok() && res.error().code != "NoSuchTagSet") return res.error();
  return None{};
}

Result<std::optional<EncryptionConfig>> Client::GetBucketEncryption(const std::string& bucket) {
  using Out = std::optional<EncryptionConfig>;
  auto res = Send({"GET", bucket, "", {{"encryption", ""}}});
  if (!res.ok()) {
    const Error& e = res.error();
    if (e.code == "ServerSideEncryptionConfigurationNotFoundError") {
      encryption_support_ = EncryptionSupport::Supported;
      return Out();
    }
    if (UnsupportedCode(e.code)) {
      encryption_support_ = EncryptionSupport::Unsupported;
      return Out();
    }
    return e;
  }
  // A store that does not know the subresource answers as if it were absent
  // (Ceph 16: a bucket listing); only the right document is an answer.
  if (xml::RootName(res.value().body) != "ServerSideEncryptionConfiguration") {
    encryption_support_ = EncryptionSupport::Unsupported;
    return Out();
  }
  auto cfg = xml::ParseEncryption(res.value().body);
  if (!cfg.ok()) return cfg.error();
  encryption_support_ = EncryptionSupport::Supported;
  return Out(std::move(cfg.value()));
}

Result<None> Client::PutBucketEncryption(const std::string& bucket, const EncryptionConfig& config) {
  Request r{"PUT", bucket, "", {{"encryption", ""}}};
  r.body = xml::BuildEncryption(config);
  r.content_md5 = true;
  auto res = Send(r);
  if (!res.ok()) {
    if (UnsupportedCode(res.error().code)) encryption_support_ = EncryptionSupport::Unsupported;
    return res.error();
  }
  encryption_support_ = EncryptionSupport::Supported;
  return None{};
}

Result<None> Client::DeleteBucketEncryption(const std::string& bucket) {
  if (encryption_support_ == EncryptionSupport::Unknown) {
    auto probe = GetBucketEncryption(bucket);
    if (!probe.ok()) return probe.error();
  }
  if (encryption_support_ != EncryptionSupport::Supported) {
    return ClientError("NotImplemented",
                       "the store has no default-encryption API, so DeleteBucketEncryption is not sent "
                       "(a store that does not know the subresource may take it for DeleteBucket)");
  }
  auto res = Send({"DELETE", bucket, "", {{"encryption", ""}}});
  if (!res.ok() && res.error().code != "ServerSideEncryptionConfigurationNotFoundError") return res.error();
  return None{};
}

// ------------------------------------------------------------------ objects

Result<PutObjectResult> Client::PutObject(const std::string& bucket, const std::string& key, const std::string& body,
                                          const PutObjectOptions& options) {
  Request r{"PUT", bucket, key};
  r.body = body;
  if (!options.content_type.empty()) r.headers["content-type"] = options.content_type;
  if (!options.server_side_encryption.empty())
    r.headers["x-amz-server-side-encryption"] = options.server_side_encryption;
  if (!options.kms_key_id.empty()) r.headers["x-amz-server-side-encryption-aws-kms-key-id"] = options.kms_key_id;
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return PutObjectResult{HeaderOf(res.value(), "etag"), HeaderOf(res.value(), "x-amz-version-id"),
                         HeaderOf(res.value(), "x-amz-server-side-encryption")};
}

Result<ObjectData> Client::GetObject(const std::string& bucket, const std::string& key,
                                     const std::string& version_id) {
  Request r{"GET", bucket, key};
  if (!version_id.empty()) r.query.emplace_back("versionId", version_id);
  auto res = Send(r);
  if (!res.ok()) return res.error();
  ObjectData d;
  d.body = std::move(res.value().body);
  d.etag = HeaderOf(res.value(), "etag");
  d.version_id = HeaderOf(res.value(), "x-amz-version-id");
  d.server_side_encryption = HeaderOf(res.value(), "x-amz-server-side-encryption");
  d.headers = res.value().headers;
  return d;
}

Result<std::optional<ObjectHead>> Client::HeadObject(const std::string& bucket, const std::string& key,
                                                     const std::string& version_id) {
  using Out = std::optional<ObjectHead>;
  Request r{"HEAD", bucket, key};
  if (!version_id.empty()) r.query.emplace_back("versionId", version_id);
  auto res = Send(r);
  if (!res.ok()) {
    if (res.error().http_status == 404) return Out();
    return res.error();
  }
  ObjectHead h;
  std::string len = HeaderOf(res.value(), "content-length");
  h.size = len.empty() ? 0 : std::strtoull(len.c_str(), nullptr, 10);
  h.etag = HeaderOf(res.value(), "etag");
  h.version_id = HeaderOf(res.value(), "x-amz-version-id");
  h.server_side_encryption = HeaderOf(res.value(), "x-amz-server-side-encryption");
  h.headers = res.value().headers;
  return Out(std::move(h));
}

Result<None> Client::DeleteObject(const std::string& bucket, const std::string& key, const std::string& version_id) {
  Request r{"DELETE", bucket, key};
  if (!version_id.empty()) r.query.emplace_back("versionId", version_id);
  auto res = Send(r);
  if (!res.ok() && res.error().code != "NoSuchKey") return res.error();
  return None{};
}

Result<ListObjectsResult> Client::ListObjectsV2(const std::string& bucket, const std::string& prefix,
                                                const std::string& continuation_token, int max_keys) {
  Request r{"GET", bucket, "", {{"list-type", "2"}, {"max-keys", std::to_string(max_keys)}}};
  if (!prefix.empty()) r.query.emplace_back("prefix", prefix);
  if (!continuation_token.empty()) r.query.emplace_back("continuation-token", continuation_token);
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return xml::ParseListObjectsV2(res.value().body);
}

Result<ListVersionsResult> Client::ListObjectVersions(const std::string& bucket, const std::string& prefix,
                                                      const std::string& key_marker,
                                                      const std::string& version_id_marker, int max_keys) {
  Request r{"GET", bucket, "", {{"versions", ""}, {"max-keys", std::to_string(max_keys)}}};
  if (!prefix.empty()) r.query.emplace_back("prefix", prefix);
  if (!key_marker.empty()) r.query.emplace_back("key-marker", key_marker);
  if (!version_id_marker.empty()) r.query.emplace_back("version-id-marker", version_id_marker);
  auto res = Send(r);
  if (!res.ok()) return res.error();
  return xml::ParseListObjectVersions(res.value().body);
}

}  // namespace plinth::s3
