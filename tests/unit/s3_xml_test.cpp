// The S3 XML documents: parsing the store's answers (in the formats of the
// S3 API reference, with and without the namespace, as Ceph writes them) and
// building request bodies that parse back to what was built.
#include "runtime/s3/xml.h"

#include <gtest/gtest.h>

namespace plinth::s3::xml {
namespace {

TEST(S3XmlTest, ErrorDocument) {
  Error e = ParseError(R"(<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code>
    <Message>The specified bucket does not exist</Message><BucketName>b</BucketName>
    <RequestId>tx000-1</RequestId></Error>)",
                       404);
  EXPECT_EQ(e.code, "NoSuchBucket");
  EXPECT_EQ(e.message, "The specified bucket does not exist");
  EXPECT_EQ(e.request_id, "tx000-1");
  EXPECT_EQ(e.http_status, 404);
  EXPECT_EQ(e.ToString(), "NoSuchBucket: The specified bucket does not exist (http 404)");
  Error empty = ParseError("", 500);
  EXPECT_EQ(empty.code, "");
  EXPECT_EQ(ParseError("<html>gateway</html>", 502).code, "");
}

TEST(S3XmlTest, ListBuckets) {
  auto r = ParseListBuckets(R"(<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Owner><ID>plinth</ID></Owner><Buckets>
    <Bucket><Name>a</Name><CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>
    <Bucket><Name>b</Name><CreationDate>2026-01-02T00:00:00.000Z</CreationDate></Bucket></Buckets>
    </ListAllMyBucketsResult>)");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().size(), 2u);
  EXPECT_EQ(r.value()[1].name, "b");
  EXPECT_EQ(r.value()[0].creation_date, "2026-01-01T00:00:00.000Z");
  EXPECT_FALSE(ParseListBuckets("<Error/>").ok());
}

TEST(S3XmlTest, ListObjectsV2) {
  auto r = ParseListObjectsV2(R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Name>b</Name><Prefix></Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
    <NextContinuationToken>tok&amp;1</NextContinuationToken>
    <Contents><Key>a &amp; b.txt</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>
      <ETag>"abc"</ETag><Size>5</Size><StorageClass>STANDARD</StorageClass></Contents>
    <Contents><Key>c.txt</Key><Size>12345678901</Size></Contents>
    <CommonPrefixes><Prefix>logs/</Prefix></CommonPrefixes></ListBucketResult>)");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().objects.size(), 2u);
  EXPECT_EQ(r.value().objects[0].key, "a & b.txt");
  EXPECT_EQ(r.value().objects[0].etag, "\"abc\"");
  EXPECT_EQ(r.value().objects[1].size, 12345678901u);
  EXPECT_TRUE(r.value().truncated);
  EXPECT_EQ(r.value().next_continuation_token, "tok&1");
  EXPECT_EQ(r.value().common_prefixes, std::vector<std::string>{"logs/"});
  EXPECT_EQ(r.value().key_count, 2u);
}

TEST(S3XmlTest, ListObjectVersionsKeepsOrderAndDeleteMarkers) {
  auto r = ParseListObjectVersions(R"(<ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Name>b</Name><IsTruncated>false</IsTruncated>
    <DeleteMarker><Key>k</Key><VersionId>v3</VersionId><IsLatest>true</IsLatest></DeleteMarker>
    <Version><Key>k</Key><VersionId>v2</VersionId><IsLatest>false</IsLatest><Size>3</Size></Version>
    <Version><Key>k</Key><VersionId>null</VersionId><IsLatest>false</IsLatest><Size>1</Size></Version>
    </ListVersionsResult>)");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.value().versions.size(), 3u);
  EXPECT_TRUE(r.value().versions[0].delete_marker);
  EXPECT_TRUE(r.value().versions[0].is_latest);
  EXPECT_EQ(r.value().versions[1].version_id, "v2");
  EXPECT_EQ(r.value().versions[1].size, 3u);
  EXPECT_FALSE(r.value().versions[2].delete_marker);
}

TEST(S3XmlTest, Versioning) {
  EXPECT_EQ(ParseVersioning(R"(<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>)")
                .value()
                .status,
            "");
  EXPECT_EQ(ParseVersioning("<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>")
                .value()
                .status,
            "Suspended");
  auto built = ParseVersioning(BuildVersioning("Enabled"));
  ASSERT_TRUE(built.ok());
  EXPECT_EQ(built.value().status, "Enabled");
}

TEST(S3XmlTest, LifecycleRoundTripAndOlderForms) {
  std::vector<LifecycleRule> rules(2);
  rules[0].id = "logs";
  rules[0].prefix = "logs/<x>&";
  rules[0].expiration_days = 30;
  rules[0].noncurrent_expiration_days = 2;
  rules[1].id = "cold";
  rules[1].transition_days = 7;
  rules[1].transition_storage_class = "COLD";
  rules[1].abort_incomplete_multipart_days = 1;
  std::string body = BuildLifecycle(rules);
  EXPECT_NE(body.find("xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\""), std::string::npos) << body;
  EXPECT_NE(body.find("logs/&lt;x&gt;&amp;"), std::string::npos) << body;
  auto parsed = ParseLifecycle(body);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value(), rules);

  // The rule-level <Prefix> (before filters) and <Filter><And>.
  auto old = ParseLifecycle(R"(<LifecycleConfiguration><Rule><ID>a</ID><Prefix>p/</Prefix>
    <Status>Disabled</Status><Expiration><Days>3</Days></Expiration></Rule>
    <Rule><ID>b</ID><Filter><And><Prefix>q/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>
    <Status>Enabled</Status></Rule></LifecycleConfiguration>)");
  ASSERT_TRUE(old.ok());
  ASSERT_EQ(old.value().size(), 2u);
  EXPECT_EQ(old.value()[0].prefix, "p/");
  EXPECT_FALSE(old.value()[0].enabled);
  EXPECT_EQ(old.value()[0].expiration_days, 3);
  EXPECT_EQ(old.value()[1].prefix, "q/");
  EXPECT_FALSE(old.value()[1].expiration_days.has_value());
}

TEST(S3XmlTest, TaggingRoundTrip) {
  Tags tags = {{"team", "ml & data"}, {"env", "<test>"}};
  auto parsed = ParseTagging(BuildTagging(tags));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value(), tags);
  EXPECT_TRUE(ParseTagging("<Tagging><TagSet/></Tagging>").value().empty());
}

TEST(S3XmlTest, EncryptionAndTheWrongRootCeph16Sends) {
  auto parsed = ParseEncryption(BuildEncryption({"AES256", ""}));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed.value().algorithm, "AES256");
  auto kms = ParseEncryption(R"(<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>
    <SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>k1</KMSMasterKeyID>
    </ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>)");
  ASSERT_TRUE(kms.ok());
  EXPECT_EQ(kms.value().kms_key_id, "k1");
  // Ceph 16 answers GET ?encryption with the bucket's listing.
  std::string listing = R"(<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
    </ListBucketResult>)";
  EXPECT_EQ(RootName(listing), "ListBucketResult");
  EXPECT_FALSE(ParseEncryption(listing).ok());
  EXPECT_EQ(ParseEncryption(listing).error().code, "InvalidResponse");
}

TEST(S3XmlTest, NoEntityExpansionAndGarbageIsRejected) {
  std::string xxe = R"(<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>
    <Tagging><TagSet><Tag><Key>k</Key><Value>&x;</Value></Tag></TagSet></Tagging>)";
  auto parsed = ParseTagging(xxe);
  if (parsed.ok()) {
    EXPECT_EQ(parsed.value().at("k").find("root:"), std::string::npos) << "an external entity was loaded";
  }
  EXPECT_FALSE(ParseTagging("not xml at all").ok());
  EXPECT_FALSE(ParseListObjectsV2("").ok());
  EXPECT_EQ(RootName("<<<"), "");
}

}  // namespace
}  // namespace plinth::s3::xml
