// The `s3` provider: `s3_bucket` resources in AWS S3 or an S3-compatible
// store, through the client in runtime/s3 (docs/providers/s3.md).
//
// Input: an S3Config (endpoint, region, keys, addressing). Nothing is
// contacted at construction; every call goes to the configured endpoint only.
//
// What a bucket is made of at the store: the bucket, its versioning state,
// lifecycle configuration, tag set, default encryption (where the store has
// that API) and bucket policy. The policy holds the statements generated from
// `grant` blocks and `enforce_encryption` (Sids starting with "Plinth") plus
// the statements of the configured `policy`; Read splits them apart again, so
// every attribute is refreshed from the store and drift shows.
//
// Thread safety: every method may be called concurrently (the client is
// thread-safe; the provider keeps no other mutable state).
// Secrets: the secret key is used only by the client to sign; it never
// appears in an error.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "runtime/provider/provider.h"
#include "runtime/s3/client.h"

namespace plinth::runtime {

struct S3Config {
  std::string endpoint;  // "http://127.0.0.1:8080"
  std::string region;    // "us-east-1" when empty
  std::string access_key;
  std::string secret_key;
  bool path_style = true;  // ENDPOINT/bucket/key rather than bucket.HOST/key

  // From AWS_ENDPOINT_URL_S3 (else AWS_ENDPOINT_URL), AWS_REGION (else
  // AWS_DEFAULT_REGION, else "us-east-1"), AWS_ACCESS_KEY_ID and
  // AWS_SECRET_ACCESS_KEY. Missing variables stay empty.
  static S3Config FromEnvironment();
};

class S3Provider : public Provider {
 public:
  explicit S3Provider(S3Config config);
  // For tests: a transport that plays the store, and a sleep that does not wait.
  S3Provider(S3Config config, std::shared_ptr<s3::Transport> transport,
             std::function<void(std::chrono::milliseconds)> sleep = {});

  std::string Name() const override { return "s3"; }
  const SchemaSource& Schemas() const override;

  std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const override;
  Result<PlanResponse> PlanChange(const PlanRequest& request) override;
  Result<ResourceObject> Create(const std::string& type, const ValueMap& planned) override;
  Result<std::optional<ResourceObject>> Read(const std::string& type, const std::string& id,
                                             const ValueMap& prior) override;
  Result<ResourceObject> Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                const ValueMap& planned) override;
  Result<Done> Delete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  // Every object version and delete marker of the bucket (ListObjectVersions,
  // one request per 1000); refused unless force_destroy when there are any.
  Result<DeletePreview> PlanDelete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  Result<ResourceObject> Import(const std::string& type, const std::string& id) override;

  s3::Client& client() { return *client_; }

  // The bucket policy the provider writes for `planned` (grants,
  // enforce_encryption and the configured policy's statements), or "" when
  // there is none. Exposed for tests.
  static std::string PolicyFor(const std::string& bucket, const ValueMap& planned);

 private:
  Result<std::optional<ResourceObject>> ReadBucket(const std::string& bucket, const ValueMap* carry);
  Result<Done> Configure(const std::string& bucket, const ValueMap& planned, bool creating);

  S3Config config_;
  std::unique_ptr<s3::Client> client_;
};

}  // namespace plinth::runtime
