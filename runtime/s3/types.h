// Plain data of the S3 client: errors, results and the documents the store
// returns. Nothing here depends on libcurl or libxml2, so headers that use
// these types compile without them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace plinth::s3 {

// An error from the store or from the way to it. Never carries a secret key:
// messages are built from the store's Code and Message, the operation and the
// bucket/key names only.
struct Error {
  int http_status = 0;    // 0: no HTTP response (connection failure, timeout)
  std::string code;       // the store's Code ("NoSuchBucket"), or a client code ("ConnectionFailed")
  std::string message;    // the store's Message, or what went wrong on the way
  std::string request_id; // x-amz-request-id, when the store sent one
  bool retryable = false;

  // "NoSuchBucket: The specified bucket does not exist (http 404)"
  std::string ToString() const;
};

// True for errors worth retrying unchanged: 5xx, throttling, request
// timeouts and connection failures.
bool IsRetryable(int http_status, const std::string& code);

template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  const T& value() const { return std::get<0>(v_); }
  T& value() { return std::get<0>(v_); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct None {};  // the value of operations that return nothing

struct BucketInfo {
  std::string name;
  std::string creation_date;  // as the store wrote it (ISO 8601)
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;
  std::string last_modified;
  std::string storage_class;
};

struct ListObjectsResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_continuation_token;
  uint64_t key_count = 0;
};

struct ObjectVersion {
  std::string key;
  std::string version_id;
  bool is_latest = false;
  bool delete_marker = false;
  uint64_t size = 0;
  std::string last_modified;
};

struct ListVersionsResult {
  std::vector<ObjectVersion> versions;  // object versions and delete markers, in the store's order
  bool truncated = false;
  std::string next_key_marker;
  std::string next_version_id_marker;
};

// "" (never configured), "Enabled" or "Suspended".
struct VersioningStatus {
  std::string status;
  std::string mfa_delete;
};

// One lifecycle rule. Days are whole days (S3 has no finer unit); unset
// optionals are absent from the XML.
struct LifecycleRule {
  std::string id;
  std::string prefix;
  bool enabled = true;
  std::optional<int64_t> expiration_days;
  std::optional<int64_t> noncurrent_expiration_days;
  std::optional<int64_t> transition_days;
  std::string transition_storage_class;
  std::optional<int64_t> abort_incomplete_multipart_days;

  bool operator==(const LifecycleRule&) const = default;
};

using Tags = std::map<std::string, std::string>;

// The bucket's default encryption: "AES256" or "aws:kms" (with a key id).
struct EncryptionConfig {
  std::string algorithm;
  std::string kms_key_id;
};

struct ObjectData {
  std::string body;
  std::string etag;
  std::string version_id;
  std::string server_side_encryption;  // x-amz-server-side-encryption of the response
  std::map<std::string, std::string> headers;  // lowercase names
};

struct ObjectHead {
  uint64_t size = 0;
  std::string etag;
  std::string version_id;
  std::string server_side_encryption;
  std::map<std::string, std::string> headers;  // lowercase names
};

struct PutObjectOptions {
  std::string content_type;
  // x-amz-server-side-encryption: "AES256" or "aws:kms"; empty: not sent.
  std::string server_side_encryption;
  std::string kms_key_id;  // x-amz-server-side-encryption-aws-kms-key-id, with "aws:kms"
};

struct PutObjectResult {
  std::string etag;
  std::string version_id;
  std::string server_side_encryption;
};

}  // namespace plinth::s3
