#include "runtime/s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cctype>
#include <ctime>

namespace plinth::s3 {

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

namespace {

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, md, nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Header values are trimmed and inner runs of spaces collapsed.
std::string TrimValue(const std::string& v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

}  // namespace

std::string Sha256Hex(std::string_view data) {
  return Hex(Digest(EVP_sha256(), data));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Md5Base64(std::string_view data) {
  std::string md5 = Digest(EVP_md5(), data);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, reinterpret_cast<const unsigned char*>(md5.data()), static_cast<int>(md5.size()));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> enc;
  for (const auto& [k, v] : query) enc.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

std::string SignedHeaders(const std::map<std::string, std::string>& headers) {
  std::vector<std::string> names;
  for (const auto& [k, v] : headers) names.push_back(Lower(k));
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ";") + n;
  return out;
}

std::string CanonicalRequest(const SigningInput& in) {
  std::map<std::string, std::string> lower;
  for (const auto& [k, v] : in.headers) lower[Lower(k)] = TrimValue(v);
  std::string headers;
  for (const auto& [k, v] : lower) headers += k + ":" + v + "\n";
  return in.method + "\n" + (in.path.empty() ? "/" : in.path) + "\n" + CanonicalQuery(in.query) + "\n" + headers +
         "\n" + SignedHeaders(in.headers) + "\n" + in.payload_hash;
}

std::string StringToSign(const std::string& amz_date, const Scope& scope, const std::string& canonical_request) {
  return "AWS4-HMAC-SHA256\n" + amz_date + "\n" + scope.String() + "\n" + Sha256Hex(canonical_request);
}

std::string SigningKey(std::string_view secret_key, const Scope& scope) {
  std::string k = HmacSha256("AWS4" + std::string(secret_key), scope.date);
  k = HmacSha256(k, scope.region);
  k = HmacSha256(k, scope.service);
  return HmacSha256(k, "aws4_request");
}

std::string Signature(std::string_view secret_key, const Scope& scope, const std::string& string_to_sign) {
  return Hex(HmacSha256(SigningKey(secret_key, scope), string_to_sign));
}

std::string Authorization(std::string_view access_key, std::string_view secret_key, const std::string& amz_date,
                          const Scope& scope, const SigningInput& in) {
  std::string sts = StringToSign(amz_date, scope, CanonicalRequest(in));
  return "AWS4-HMAC-SHA256 Credential=" + std::string(access_key) + "/" + scope.String() +
         ", SignedHeaders=" + SignedHeaders(in.headers) + ", Signature=" + Signature(secret_key, scope, sts);
}

std::string AmzDate(long long unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace plinth::s3
