// The S3 client against a transport that plays the store: signing headers,
// addressing, retries with backoff, error contents (never the secret) and
// the guard that keeps DeleteBucketEncryption away from stores that would
// take it for DeleteBucket.
#include "runtime/s3/client.h"

#include <gtest/gtest.h>

#include <deque>
#include <mutex>

#include "runtime/s3/sigv4.h"

namespace plinth::s3 {
namespace {

constexpr const char* kSecret = "SECRET-do-not-leak-0123456789";

class FakeStore : public Transport {
 public:
  HttpResponse Send(const HttpRequest& request) override {
    std::lock_guard lock(mu);
    requests.push_back(request);
    if (responses.empty()) return {200, {}, "", "", false};
    HttpResponse r = responses.front();
    responses.pop_front();
    return r;
  }
  void Reply(int status, std::string body = "", std::map<std::string, std::string> headers = {}) {
    responses.push_back({status, std::move(headers), std::move(body), "", false});
  }
  void Unreachable() { responses.push_back({0, {}, "", "Failed to connect to 127.0.0.1 port 1", false}); }

  std::mutex mu;
  std::deque<HttpResponse> responses;
  std::vector<HttpRequest> requests;
};

std::string ErrorXml(const std::string& code, const std::string& message = "") {
  return "<Error><Code>" + code + "</Code><Message>" + message + "</Message><RequestId>r1</RequestId></Error>";
}

class S3ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store = std::make_shared<FakeStore>();
    config.endpoint = "http://127.0.0.1:7480";
    config.region = "us-east-1";
    config.access_key = "AKIDPLINTH";
    config.secret_key = kSecret;
    config.sleep = [this](std::chrono::milliseconds d) { sleeps.push_back(d); };
    config.now = [] { return 1369353600LL; };  // 2013-05-24T00:00:00Z
  }
  std::unique_ptr<Client> Make() { return std::make_unique<Client>(config, store); }

  std::shared_ptr<FakeStore> store;
  ClientConfig config;
  std::vector<std::chrono::milliseconds> sleeps;
};

TEST_F(S3ClientTest, SignsEveryRequest) {
  auto c = Make();
  store->Reply(200);
  ASSERT_TRUE(c->PutObject("data", "dir/a b.txt", "hello").ok());
  ASSERT_EQ(store->requests.size(), 1u);
  const HttpRequest& r = store->requests[0];
  EXPECT_EQ(r.method, "PUT");
  EXPECT_EQ(r.url, "http://127.0.0.1:7480/data/dir/a%20b.txt");
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:7480");
  EXPECT_EQ(r.headers.at("x-amz-date"), "20130524T000000Z");
  EXPECT_EQ(r.headers.at("x-amz-content-sha256"), Sha256Hex("hello"));
  const std::string& auth = r.headers.at("Authorization");
  EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKIDPLINTH/20130524/us-east-1/s3/aws4_request, "
                       "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=",
                       0),
            0u)
      << auth;
  EXPECT_EQ(auth.find(kSecret), std::string::npos);
  EXPECT_EQ(r.body, "hello");
}

TEST_F(S3ClientTest, SubresourcesQueriesAndContentMd5) {
  auto c = Make();
  LifecycleRule rule;
  rule.id = "r";
  rule.expiration_days = 1;
  store->Reply(200);
  store->Reply(200, "<ListBucketResult><Name>b</Name></ListBucketResult>");
  ASSERT_TRUE(c->PutBucketLifecycle("b", {rule}).ok());
  ASSERT_TRUE(c->ListObjectsV2("b", "logs/", "t k").ok());
  const HttpRequest& put = store->requests[0];
  EXPECT_EQ(put.url, "http://127.0.0.1:7480/b?lifecycle=");
  EXPECT_EQ(put.headers.at("content-md5"), Md5Base64(put.body));
  EXPECT_NE(put.headers.at("Authorization").find("content-md5;host;"), std::string::npos);
  EXPECT_EQ(store->requests[1].url,
            "http://127.0.0.1:7480/b?continuation-token=t%20k&list-type=2&max-keys=1000&prefix=logs%2F");
}

TEST_F(S3ClientTest, VirtualHostedAddressing) {
  config.path_style = false;
  auto c = Make();
  EXPECT_EQ(c->Url("data"), "http://data.127.0.0.1:7480/");
  EXPECT_EQ(c->Url("data", "k"), "http://data.127.0.0.1:7480/k");
  ASSERT_TRUE(c->HeadBucket("data").ok());
  EXPECT_EQ(store->requests[0].url, "http://data.127.0.0.1:7480/");
  EXPECT_EQ(store->requests[0].headers.at("host"), "data.127.0.0.1:7480");
  config.path_style = true;
  EXPECT_EQ(Make()->Url("data", "k"), "http://127.0.0.1:7480/data/k");
}

TEST_F(S3ClientTest, RetriesServerErrorsAndThrottlingWithBoundedBackoff) {
  auto c = Make();
  store->Reply(503, ErrorXml("ServiceUnavailable"));
  store->Reply(400, ErrorXml("SlowDown"));
  store->Unreachable();
  store->Reply(200, "<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>");
  auto v = c->GetBucketVersioning("b");
  ASSERT_TRUE(v.ok()) << v.error().ToString();
  EXPECT_EQ(v.value().status, "Enabled");
  EXPECT_EQ(store->requests.size(), 4u);
  ASSERT_EQ(sleeps.size(), 3u);
  for (size_t i = 0; i < sleeps.size(); ++i) {
    EXPECT_GE(sleeps[i].count(), 0);
    EXPECT_LE(sleeps[i], std::min(config.backoff_cap, config.backoff_base * (1 << i)));
  }
  // Each attempt is signed afresh.
  EXPECT_NE(store->requests[0].headers.at("Authorization"), "");
}

TEST_F(S3ClientTest, GivesUpAfterMaxAttemptsAndSaysWhy) {
  config.max_attempts = 3;
  auto c = Make();
  for (int i = 0; i < 5; ++i) store->Unreachable();
  auto r = c->HeadBucket("b");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(store->requests.size(), 3u);
  EXPECT_EQ(r.error().code, "ConnectionFailed");
  EXPECT_TRUE(r.error().retryable);
  EXPECT_EQ(r.error().http_status, 0);
  EXPECT_NE(r.error().message.find("127.0.0.1"), std::string::npos);
}

TEST_F(S3ClientTest, ClientErrorsAreNotRetriedAndNeverCarryTheSecret) {
  auto c = Make();
  store->Reply(403, ErrorXml("SignatureDoesNotMatch", "The request signature we calculated does not match"));
  auto r = c->GetObject("b", "k");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(store->requests.size(), 1u);
  EXPECT_TRUE(sleeps.empty());
  EXPECT_EQ(r.error().code, "SignatureDoesNotMatch");
  EXPECT_EQ(r.error().http_status, 403);
  EXPECT_EQ(r.error().request_id, "r1");
  EXPECT_FALSE(r.error().retryable);
  EXPECT_EQ(r.error().ToString().find(kSecret), std::string::npos);
  // A body-less answer (HEAD) still has a code.
  store->Reply(403);
  auto h = c->HeadBucket("b");
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, "AccessDenied");
  store->Reply(404);
  auto missing = c->HeadBucket("b");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing.value());
}

TEST_F(S3ClientTest, MissingConfigurationsReadAsAbsent) {
  auto c = Make();
  store->Reply(404, ErrorXml("NoSuchLifecycleConfiguration"));
  store->Reply(404, ErrorXml("NoSuchBucketPolicy"));
  store->Reply(404, ErrorXml("NoSuchTagSet"));
  store->Reply(404, ErrorXml("NoSuchKey"));
  EXPECT_FALSE(c->GetBucketLifecycle("b").value().has_value());
  EXPECT_FALSE(c->GetBucketPolicy("b").value().has_value());
  EXPECT_TRUE(c->GetBucketTagging("b").value().empty());
  EXPECT_FALSE(c->HeadObject("b", "k").value().has_value());
}

TEST_F(S3ClientTest, Ceph16EncryptionAnswersMarkTheApiUnsupported) {
  auto c = Make();
  EXPECT_EQ(c->encryption_support(), EncryptionSupport::Unknown);
  store->Reply(400, ErrorXml("InvalidArgument"));
  auto put = c->PutBucketEncryption("b", {"AES256", ""});
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(c->encryption_support(), EncryptionSupport::Unsupported);
  size_t sent = store->requests.size();
  auto del = c->DeleteBucketEncryption("b");
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().code, "NotImplemented");
  EXPECT_EQ(store->requests.size(), sent) << "DeleteBucketEncryption was sent to a store without the API";
}

TEST_F(S3ClientTest, UnknownSupportIsProbedBeforeDeleteBucketEncryption) {
  auto c = Make();
  // Ceph 16 answers GET ?encryption with a bucket listing.
  store->Reply(200, "<ListBucketResult><Name>b</Name></ListBucketResult>");
  auto del = c->DeleteBucketEncryption("b");
  ASSERT_FALSE(del.ok());
  ASSERT_EQ(store->requests.size(), 1u);
  EXPECT_EQ(store->requests[0].method, "GET");
  EXPECT_EQ(c->encryption_support(), EncryptionSupport::Unsupported);

  // A store with the API: the probe's answer lets the delete through.
  auto c2 = Make();
  store->Reply(404, ErrorXml("ServerSideEncryptionConfigurationNotFoundError"));
  store->Reply(204);
  ASSERT_TRUE(c2->DeleteBucketEncryption("b").ok());
  ASSERT_EQ(store->requests.size(), 3u);
  EXPECT_EQ(store->requests[2].method, "DELETE");
  EXPECT_EQ(store->requests[2].url, "http://127.0.0.1:7480/b?encryption=");
}

TEST_F(S3ClientTest, RealTransportReportsConnectionFailures) {
  // Port 1 on 127.0.0.1: nothing listens there.
  ClientConfig cc = config;
  cc.endpoint = "http://127.0.0.1:1";
  cc.max_attempts = 2;
  cc.connect_timeout = std::chrono::milliseconds(500);
  Client c(cc);
  auto r = c.ListBuckets();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "ConnectionFailed");
  EXPECT_TRUE(r.error().retryable);
  EXPECT_EQ(sleeps.size(), 1u);
  EXPECT_EQ(r.error().ToString().find(kSecret), std::string::npos);
}

}  // namespace
}  // namespace plinth::s3
