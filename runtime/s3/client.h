// An S3 client for the S3 provider and its tests: bucket configuration and
// simple object operations against AWS S3 or an S3-compatible store (Ceph
// RADOS Gateway is the one tested, docs/providers/s3.md).
//
// Requests are signed with Signature Version 4 (sigv4.h), sent through a
// Transport (http.h; libcurl by default) and answered in XML (xml.h).
//
// Errors carry the store's Code, Message and HTTP status. Retryable ones
// (5xx, SlowDown, Throttling, RequestTimeout, connection failures) are tried
// again up to `max_attempts` times with full-jitter exponential backoff;
// `sleep` is injectable so tests do not wait.
//
// The secret key is used only to sign; it never appears in an error, and the
// client logs nothing.
//
// Thread safety: every method may be called concurrently. The one piece of
// mutable state is what the client learned about the store's default
// encryption API (atomic).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "runtime/s3/http.h"
#include "runtime/s3/types.h"

namespace plinth::s3 {

struct ClientConfig {
  std::string endpoint;  // "http://127.0.0.1:8080" (scheme, host, optional port; no path)
  std::string region = "us-east-1";
  std::string access_key;
  std::string secret_key;
  // Path-style addressing (ENDPOINT/bucket/key); otherwise virtual-hosted
  // (SCHEME://bucket.HOST/key).
  bool path_style = true;
  int max_attempts = 4;
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_cap{2000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{60000};
  // How the client waits between attempts (tests pass a recorder).
  std::function<void(std::chrono::milliseconds)> sleep;
  // Seconds since the epoch for signatures (tests pin it).
  std::function<long long()> now;
};

// Whether the store implements the default-encryption API (PutBucketEncryption).
enum class EncryptionSupport : uint8_t { Unknown, Supported, Unsupported };

class Client {
 public:
  // `transport` null: a CurlTransport with the configured timeouts.
  explicit Client(ClientConfig config, std::shared_ptr<Transport> transport = nullptr);

  const ClientConfig& config() const { return config_; }
  // The URL of a bucket (or an object, with `key`), as addressed.
  std::string Url(const std::string& bucket, const std::string& key = "") const;

  // ---- buckets
  // CreateBucket sends a LocationConstraint only for regions other than
  // us-east-1 (and none when the region is empty).
  Result<None> CreateBucket(const std::string& bucket);
  // true: exists (and is reachable with these keys); false: 404.
  Result<bool> HeadBucket(const std::string& bucket);
  Result<None> DeleteBucket(const std::string& bucket);
  Result<std::vector<BucketInfo>> ListBuckets();

  Result<VersioningStatus> GetBucketVersioning(const std::string& bucket);
  Result<None> PutBucketVersioning(const std::string& bucket, bool enabled);

  // nullopt: no lifecycle configuration.
  Result<std::optional<std::vector<LifecycleRule>>> GetBucketLifecycle(const std::string& bucket);
  Result<None> PutBucketLifecycle(const std::string& bucket, const std::vector<LifecycleRule>& rules);
  Result<None> DeleteBucketLifecycle(const std::string& bucket);

  // nullopt: no policy.
  Result<std::optional<std::string>> GetBucketPolicy(const std::string& bucket);
  Result<None> PutBucketPolicy(const std::string& bucket, const std::string& policy_json);
  Result<None> DeleteBucketPolicy(const std::string& bucket);

  // An empty map: no tags.
  Result<Tags> GetBucketTagging(const std::string& bucket);
  Result<None> PutBucketTagging(const std::string& bucket, const Tags& tags);
  Result<None> DeleteBucketTagging(const std::string& bucket);

  // nullopt: no default encryption, or the store has no default-encryption
  // API (then encryption_support() is Unsupported).
  Result<std::optional<EncryptionConfig>> GetBucketEncryption(const std::string& bucket);
  // An InvalidArgument/NotImplemented/MethodNotAllowed answer marks the
  // store Unsupported (and is returned as the error).
  Result<None> PutBucketEncryption(const std::string& bucket, const EncryptionConfig& config);
  // Sent only to a store known to support the API: Ceph 16 does not know the
  // ?encryption subresource and treats DELETE /bucket?encryption as
  // DeleteBucket. With support Unknown, GetBucketEncryption probes first;
  // on an Unsupported store this returns NotImplemented without sending.
  Result<None> DeleteBucketEncryption(const std::string& bucket);
  EncryptionSupport encryption_support() const { return encryption_support_.load(); }

  // ---- objects
  Result<PutObjectResult> PutObject(const std::string& bucket, const std::string& key, const std::string& body,
                                    const PutObjectOptions& options = {});
  Result<ObjectData> GetObject(const std::string& bucket, const std::string& key,
                               const std::string& version_id = "");
  // nullopt: no such object.
  Result<std::optional<ObjectHead>> HeadObject(const std::string& bucket, const std::string& key,
                                               const std::string& version_id = "");
  Result<None> DeleteObject(const std::string& bucket, const std::string& key, const std::string& version_id = "");
  Result<ListObjectsResult> ListObjectsV2(const std::string& bucket, const std::string& prefix = "",
                                          const std::string& continuation_token = "", int max_keys = 1000);
  Result<ListVersionsResult> ListObjectVersions(const std::string& bucket, const std::string& prefix = "",
                                                const std::string& key_marker = "",
                                                const std::string& version_id_marker = "", int max_keys = 1000);

 private:
  struct Request {
    Request(std::string m, std::string b = "", std::string k = "",
            std::vector<std::pair<std::string, std::string>> q = {})
        : method(std::move(m)), bucket(std::move(b)), key(std::move(k)), query(std::move(q)) {}
    std::string method;
    std::string bucket;
    std::string key;
    std::vector<std::pair<std::string, std::string>> query;
    std::map<std::string, std::string> headers;
    std::string body;
    bool content_md5 = false;  // send Content-MD5 (required for some bucket subresources)
  };
  // Signs and sends `r`, retrying what is retryable. A non-2xx answer is an
  // Error built from its body.
  Result<HttpResponse> Send(const Request& r);
  HttpResponse SendOnce(const Request& r);
  std::chrono::milliseconds Backoff(int attempt);

  ClientConfig config_;
  std::shared_ptr<Transport> transport_;
  std::string scheme_;  // "http"
  std::string host_;    // "127.0.0.1:8080"
  std::atomic<EncryptionSupport> encryption_support_{EncryptionSupport::Unknown};
};

}  // namespace plinth::s3
