// The S3 XML documents the client reads and writes, through libxml2.
// Parsing matches elements by local name (namespaces ignored), never loads
// DTDs or external entities, and rejects a document whose root is not the
// one expected: Ceph 16 answers some subresources it does not know (for
// example GET ?encryption) with a bucket listing, which must not be read as
// the answer.
#pragma once

#include <string>
#include <vector>

#include "runtime/s3/types.h"

namespace plinth::s3::xml {

// The local name of the root element, or "" when `body` is not XML.
std::string RootName(const std::string& body);

// An S3 <Error> document: Code, Message, RequestId. Missing parts stay empty.
Error ParseError(const std::string& body, int http_status);

Result<std::vector<BucketInfo>> ParseListBuckets(const std::string& body);
Result<ListObjectsResult> ParseListObjectsV2(const std::string& body);
Result<ListVersionsResult> ParseListObjectVersions(const std::string& body);
Result<VersioningStatus> ParseVersioning(const std::string& body);
Result<std::vector<LifecycleRule>> ParseLifecycle(const std::string& body);
Result<Tags> ParseTagging(const std::string& body);
Result<EncryptionConfig> ParseEncryption(const std::string& body);

std::string BuildVersioning(const std::string& status);  // "Enabled" | "Suspended"
std::string BuildLifecycle(const std::vector<LifecycleRule>& rules);
std::string BuildTagging(const Tags& tags);
std::string BuildEncryption(const EncryptionConfig& config);

}  // namespace plinth::s3::xml
