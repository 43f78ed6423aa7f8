// Signature Version 4 against the worked examples of the specification
// (AWS General Reference "signing key" example, the S3 API reference's
// header-signing examples and the SigV4 test suite's get-vanilla case).
// The values are specification data; the code under test is ours.
#include "runtime/s3/sigv4.h"

#include <gtest/gtest.h>

namespace plinth::s3 {
namespace {

constexpr const char* kEmptySha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(S3SigV4Test, HashesAndEncoding) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha);
  EXPECT_EQ(UriEncode("a b/c~d_e.f-g$h", true), "a%20b/c~d_e.f-g%24h");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriEncode("\xc3\xa9", false), "%C3%A9");
  EXPECT_EQ(CanonicalQuery({{"prefix", "J"}, {"max-keys", "2"}}), "max-keys=2&prefix=J");
  EXPECT_EQ(CanonicalQuery({{"lifecycle", ""}}), "lifecycle=");
  EXPECT_EQ(AmzDate(1369353600), "20130524T000000Z");
  EXPECT_EQ(Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

TEST(S3SigV4Test, SigningKeyOfTheSpecificationExample) {
  Scope scope{"20120215", "us-east-1", "iam"};
  EXPECT_EQ(Hex(SigningKey("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", scope)),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

TEST(S3SigV4Test, TestSuiteGetVanilla) {
  SigningInput in;
  in.method = "GET";
  in.path = "/";
  in.headers = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", "20150830T123600Z"}};
  in.payload_hash = kEmptySha;
  std::string canonical = CanonicalRequest(in);
  EXPECT_EQ(canonical, std::string("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                                   "host;x-amz-date\n") + kEmptySha);
  Scope scope{"20150830", "us-east-1", "service"};
  EXPECT_EQ(Sha256Hex(canonical), "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
  EXPECT_EQ(Authorization("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20150830T123600Z", scope, in),
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            "SignedHeaders=host;x-amz-date, "
            "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

// The S3 API reference's examples: bucket "examplebucket", 24 May 2013.
class S3SigV4ExampleTest : public ::testing::Test {
 protected:
  const std::string access = "AKIAIOSFODNN7EXAMPLE";
  const std::string secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const std::string date = "20130524T000000Z";
  const Scope scope{"20130524", "us-east-1", "s3"};

  SigningInput Get(std::string path, std::vector<std::pair<std::string, std::string>> query) {
    SigningInput in;
    in.method = "GET";
    in.path = std::move(path);
    in.query = std::move(query);
    in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                  {"x-amz-content-sha256", kEmptySha},
                  {"x-amz-date", date}};
    in.payload_hash = kEmptySha;
    return in;
  }
  std::string SignatureOf(const SigningInput& in) {
    std::string auth = Authorization(access, secret, date, scope, in);
    return auth.substr(auth.find("Signature=") + 10);
  }
};

TEST_F(S3SigV4ExampleTest, GetObject) {
  SigningInput in = Get("/test.txt", {});
  in.headers["Range"] = "bytes=0-9";
  EXPECT_EQ(Sha256Hex(CanonicalRequest(in)), "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(SignatureOf(in), "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(SignedHeaders(in.headers), "host;range;x-amz-content-sha256;x-amz-date");
}

TEST_F(S3SigV4ExampleTest, PutObject) {
  SigningInput in;
  in.method = "PUT";
  in.path = "/" + UriEncode("test$file.text", true);
  std::string body = "Welcome to Amazon S3.";
  in.payload_hash = Sha256Hex(body);
  EXPECT_EQ(in.payload_hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  in.headers = {{"Host", "examplebucket.s3.amazonaws.com"},
                {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                {"x-amz-date", date},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                {"x-amz-content-sha256", in.payload_hash}};
  EXPECT_EQ(SignatureOf(in), "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST_F(S3SigV4ExampleTest, GetBucketLifecycle) {
  EXPECT_EQ(SignatureOf(Get("/", {{"lifecycle", ""}})),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST_F(S3SigV4ExampleTest, ListObjects) {
  EXPECT_EQ(SignatureOf(Get("/", {{"max-keys", "2"}, {"prefix", "J"}})),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(S3SigV4Test, HeaderValuesAreTrimmedAndNamesLowercased) {
  SigningInput in{"GET", "/b", {}, {{"X-Amz-Meta-A", "  one   two  "}, {"host", "h"}}, "UNSIGNED-PAYLOAD"};
  EXPECT_EQ(CanonicalRequest(in), "GET\n/b\n\nhost:h\nx-amz-meta-a:one two\n\nhost;x-amz-meta-a\nUNSIGNED-PAYLOAD");
}

}  // namespace
}  // namespace plinth::s3
