// AWS Signature Version 4 for S3: canonical request, string to sign, signing
// key and the Authorization header. Pure functions of their inputs (the time
// is an argument), so the specification's worked examples are unit tests.
//
// S3 differs from other services in two ways the functions follow: the path
// is encoded once (not twice), and the payload hash is sent in
// x-amz-content-sha256 and signed.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plinth::s3 {

// Lowercase hex of SHA-256 / HMAC-SHA-256 (raw bytes) / base64 of MD5.
std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);
std::string Hex(std::string_view bytes);
std::string Md5Base64(std::string_view data);

// RFC 3986 encoding as SigV4 wants it: unreserved characters
// (A-Z a-z 0-9 - _ . ~) stay, everything else is %XX with uppercase hex;
// '/' stays when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);

struct SigningInput {
  std::string method;                                    // "GET"
  std::string path;                                      // already encoded: "/bucket/my%20key"
  std::vector<std::pair<std::string, std::string>> query;  // raw (unencoded) names and values
  std::map<std::string, std::string> headers;            // names in any case; host included
  std::string payload_hash;                              // hex SHA-256, or "UNSIGNED-PAYLOAD"
};

struct Scope {
  std::string date;     // YYYYMMDD
  std::string region;   // "us-east-1"
  std::string service;  // "s3"
  std::string String() const { return date + "/" + region + "/" + service + "/aws4_request"; }
};

// Sorted, encoded query string: "a=1&list-type=2&versioning=".
std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);
// "host;x-amz-content-sha256;x-amz-date"
std::string SignedHeaders(const std::map<std::string, std::string>& headers);
std::string CanonicalRequest(const SigningInput& in);
// `amz_date` is YYYYMMDDTHHMMSSZ.
std::string StringToSign(const std::string& amz_date, const Scope& scope, const std::string& canonical_request);
std::string SigningKey(std::string_view secret_key, const Scope& scope);  // raw bytes
std::string Signature(std::string_view secret_key, const Scope& scope, const std::string& string_to_sign);

// The Authorization header's value for `in` signed at `amz_date`.
std::string Authorization(std::string_view access_key, std::string_view secret_key, const std::string& amz_date,
                          const Scope& scope, const SigningInput& in);

// YYYYMMDDTHHMMSSZ of a Unix time.
std::string AmzDate(long long unix_seconds);

}  // namespace plinth::s3
