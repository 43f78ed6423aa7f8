// Encoding (base64, JSON, URL, CSV) and hashing (OpenSSL EVP) functions.

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "compiler/eval/functions_internal.h"
#include "compiler/source/source.h"

namespace plinth::fn_internal {
namespace {

using Kind = Value::Kind;

constexpr size_t kMaxJsonDepth = 512;

// ------------------------------------------------------------------ base64

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += kBase64Alphabet[(n >> 6) & 63];
    out += kBase64Alphabet[n & 63];
  }
  if (i < in.size()) {
    uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kBase64Alphabet[(n >> 18) & 63];
    out += kBase64Alphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kBase64Alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Strict standard base64 with padding. On error returns nullopt and sets the
// byte offset of the first bad character.
std::optional<std::string> Base64Decode(std::string_view in, size_t* bad) {
  if (in.size() % 4 != 0) {
    *bad = in.size();
    return std::nullopt;
  }
  std::string out;
  out.reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    uint32_t n = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      char c = in[i + k];
      size_t d = kBase64Alphabet.find(c);
      bool last_group = i + 4 == in.size();
      if (c == '=' && last_group && k >= 2 && (k == 3 || in[i + 3] == '=')) {
        ++pad;
        d = 0;
      } else if (d == std::string_view::npos || pad > 0) {
        *bad = i + k;
        return std::nullopt;
      }
      n = (n << 6) | static_cast<uint32_t>(d);
    }
    out += static_cast<char>((n >> 16) & 0xFF);
    if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
    if (pad < 1) out += static_cast<char>(n & 0xFF);
  }
  return out;
}

// ------------------------------------------------------------------ JSON

void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    unsigned char c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

// Shortest text that reads back as the same double.
std::string JsonNumber(double d) {
  if (std::floor(d) == d && std::fabs(d) < 1e15) return FormatNumber(d);
  char buf[40];
  for (int precision = 15; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

std::optional<FunctionResult> EncodeJson(const Value& v, std::string& out, size_t depth) {
  if (depth > kMaxJsonDepth) return ValueError(0, "the value is nested too deeply to encode as JSON");
  switch (v.kind()) {
    case Kind::Null: out += "null"; break;
    case Kind::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Kind::Number:
      if (!std::isfinite(v.as_number())) {
        return ValueError(
            0, "cannot represent " + FormatNumber(v.as_number()) + " in JSON; use a finite number");
      }
      out += JsonNumber(v.as_number());
      break;
    case Kind::String: AppendJsonString(out, v.as_string()); break;
    case Kind::Duration:
    case Kind::Size:
    case Kind::Percent: AppendJsonString(out, v.ToString(/*reveal=*/true)); break;
    case Kind::List: {
      out += '[';
      bool first = true;
      for (const Value& e : v.as_list()) {
        if (!first) out += ',';
        first = false;
        if (auto err = EncodeJson(e, out, depth + 1)) return err;
      }
      out += ']';
      break;
    }
    case Kind::Object: {
      out += '{';
      bool first = true;
      for (const auto& [k, e] : v.as_object()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, k);
        out += ':';
        if (auto err = EncodeJson(e, out, depth + 1)) return err;
      }
      out += '}';
      break;
    }
    case Kind::Unknown: return ValueError(0, "cannot encode a value that is known only after apply");
  }
  return std::nullopt;
}

// Builds a Value from nlohmann's SAX events with an explicit stack, so deep
// documents cannot overflow the C++ stack.
class JsonBuilder : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool null() override { return Add(Value::Null()); }
  bool boolean(bool b) override { return Add(Value::Bool(b)); }
  bool number_integer(number_integer_t n) override { return Add(Value::Number(static_cast<double>(n))); }
  bool number_unsigned(number_unsigned_t n) override { return Add(Value::Number(static_cast<double>(n))); }
  bool number_float(number_float_t n, const string_t&) override { return Add(Value::Number(n)); }
  bool string(string_t& s) override { return Add(Value::String(std::move(s))); }
  bool binary(binary_t&) override { return Fail("binary values are not supported"); }
  bool start_object(std::size_t) override { return Push(true); }
  bool key(string_t& k) override {
    stack_.back().key = std::move(k);
    return true;
  }
  bool end_object() override { return Pop(); }
  bool start_array(std::size_t) override { return Push(false); }
  bool end_array() override { return Pop(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    std::string what = ex.what();
    size_t close = what.find("] ");
    return Fail(close == std::string::npos ? what : what.substr(close + 2));
  }

  const std::string& error() const { return error_; }
  Value result() const { return result_; }

 private:
  struct Frame {
    bool object;
    ValueList list;
    ValueMap map;
    std::string key;
  };

  bool Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return false;
  }
  bool Add(Value v) {
    if (stack_.empty()) {
      result_ = std::move(v);
    } else if (stack_.back().object) {
      stack_.back().map[stack_.back().key] = std::move(v);
    } else {
      stack_.back().list.push_back(std::move(v));
    }
    return true;
  }
  bool Push(bool object) {
    if (stack_.size() >= kMaxJsonDepth) {
      return Fail("the document is nested more than " + std::to_string(kMaxJsonDepth) + " levels deep");
    }
    stack_.push_back(Frame{object, {}, {}, {}});
    return true;
  }
  bool Pop() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    return Add(f.object ? Value::Object(std::move(f.map)) : Value::List(std::move(f.list)));
  }

  std::vector<Frame> stack_;
  Value result_;
  std::string error_;
};

FunctionResult JsonDecode(const CallContext&, std::span<const Value> args) {
  JsonBuilder builder;
  bool ok = nlohmann::json::sax_parse(args[0].as_string(), &builder);
  if (!ok || !builder.error().empty()) {
    std::string why = builder.error().empty() ? "parse error" : builder.error();
    return ValueError(0, "the string is not valid JSON: " + why);
  }
  return FunctionResult::Ok(builder.result());
}

// ------------------------------------------------------------------ URL, CSV

FunctionResult UrlEncode(const CallContext&, std::span<const Value> args) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : args[0].as_string()) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += ch;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return FunctionResult::Ok(Value::String(std::move(out)));
}

// RFC 4180 records. Returns an error message (with the line number) or empty.
std::string ParseCsv(std::string_view s, std::vector<std::vector<std::string>>& rows) {
  size_t i = 0;
  size_t line = 1;
  while (i < s.size()) {
    std::vector<std::string> row;
    const size_t row_line = line;
    while (true) {
      std::string field;
      if (i < s.size() && s[i] == '"') {
        ++i;
        while (true) {
          if (i >= s.size()) return "line " + std::to_string(row_line) + ": a quoted field is not closed";
          if (s[i] == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              field += '"';
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (s[i] == '\n') ++line;
          field += s[i++];
        }
        if (i < s.size() && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
          return "line " + std::to_string(line) + ": unexpected text after a closing quote";
        }
      } else {
        while (i < s.size() && s[i] != ',' && s[i] != '\n' && s[i] != '\r') {
          if (s[i] == '"') {
            return "line " + std::to_string(line) +
                   ": a quote inside an unquoted field; quote the whole field";
          }
          field += s[i++];
        }
      }
      row.push_back(std::move(field));
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    if (i < s.size() && s[i] == '\r') ++i;
    if (i < s.size() && s[i] == '\n') {
      ++i;
      ++line;
    }
    rows.push_back(std::move(row));
  }
  return "";
}

FunctionResult CsvDecode(const CallContext&, std::span<const Value> args) {
  std::vector<std::vector<std::string>> rows;
  std::string err = ParseCsv(args[0].as_string(), rows);
  if (!err.empty()) return ValueError(0, "invalid CSV: " + err);
  ValueList out;
  if (rows.empty()) return FunctionResult::Ok(Value::List({}));
  const std::vector<std::string>& header = rows[0];
  for (size_t r = 1; r < rows.size(); ++r) {
    if (rows[r].size() != header.size()) {
      return ValueError(0, "invalid CSV: record " + std::to_string(r) + " has " +
                               std::to_string(rows[r].size()) + " fields but the header has " +
                               std::to_string(header.size()));
    }
    ValueMap m;
    for (size_t c = 0; c < header.size(); ++c) m[header[c]] = Value::String(rows[r][c]);
    out.push_back(Value::Object(std::move(m)));
  }
  return FunctionResult::Ok(Value::List(std::move(out)));
}

// ------------------------------------------------------------------ hashing

std::string Digest(const EVP_MD* md, std::string_view data) {
  unsigned char buf[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), buf, &len, md, nullptr) != 1) {
    throw std::runtime_error("the OpenSSL digest failed");
  }
  return std::string(reinterpret_cast<const char*>(buf), len);
}

std::string Hex(std::string_view bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : bytes) {
    unsigned char c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string FormatUuid(const unsigned char* b) {
  std::string h = Hex(std::string_view(reinterpret_cast<const char*>(b), 16));
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" +
         h.substr(20);
}

std::optional<std::string> ParseUuid(std::string_view s) {
  if (s.size() != 36) return std::nullopt;
  std::string bytes;
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nib(s[i]);
    int lo = nib(s[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    bytes += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return bytes;
}

FunctionResult UuidV5(const CallContext&, std::span<const Value> args) {
  const std::string& ns = args[0].as_string();
  std::string_view text = ns == "dns"    ? "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
                          : ns == "url"  ? "6ba7b811-9dad-11d1-80b4-00c04fd430c8"
                          : ns == "oid"  ? "6ba7b812-9dad-11d1-80b4-00c04fd430c8"
                          : ns == "x500" ? "6ba7b814-9dad-11d1-80b4-00c04fd430c8"
                                         : std::string_view(ns);
  std::optional<std::string> ns_bytes = ParseUuid(text);
  if (!ns_bytes) {
    return ValueError(0,
                      "the namespace must be \"dns\", \"url\", \"oid\", \"x500\" or a UUID like "
                      "\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\", got " +
                          Describe(args[0]));
  }
  std::string hash = Digest(EVP_sha1(), *ns_bytes + args[1].as_string());
  unsigned char b[16];
  std::memcpy(b, hash.data(), 16);
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x50);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  return FunctionResult::Ok(Value::String(FormatUuid(b)));
}

FunctionResult UuidV4(const CallContext&, std::span<const Value>) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return ValueError(-1, "the system random number generator failed");
  b[6] = static_cast<unsigned char>((b[6] & 0x0F) | 0x40);
  b[8] = static_cast<unsigned char>((b[8] & 0x3F) | 0x80);
  return FunctionResult::Ok(Value::String(FormatUuid(b)));
}

using Impl = std::function<FunctionResult(const CallContext&, std::span<const Value>)>;

Impl HexHash(const EVP_MD* (*md)()) {
  return [md](const CallContext&, std::span<const Value> args) {
    return FunctionResult::Ok(Value::String(Hex(Digest(md(), args[0].as_string()))));
  };
}

Impl Base64Hash(const EVP_MD* (*md)()) {
  return [md](const CallContext&, std::span<const Value> args) {
    return FunctionResult::Ok(Value::String(Base64Encode(Digest(md(), args[0].as_string()))));
  };
}

}  // namespace

// Used by filebase64 and filesha256 in functions_cidr_file_time.cpp.
std::string Base64EncodeBytes(std::string_view bytes) {
  return Base64Encode(bytes);
}
std::string Sha256Hex(std::string_view bytes) {
  return Hex(Digest(EVP_sha256(), bytes));
}

void RegisterEncodingFunctions(std::vector<FunctionDef>& out) {
  const Type S = Type::String();
  const Type A = Type::Any();

  out.push_back({"base64encode",
                 "encoding",
                 "base64encode(s string) string",
                 "encodes the UTF-8 bytes of a string as standard base64",
                 1,
                 1,
                 {S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(Value::String(Base64Encode(args[0].as_string())));
                 }});
  out.push_back(
      {"base64decode",
       "encoding",
       "base64decode(s string) string",
       "decodes standard, padded base64 into a UTF-8 string",
       1,
       1,
       {S},
       Returns(S),
       [](const CallContext&, std::span<const Value> args) {
         size_t bad = 0;
         std::optional<std::string> bytes = Base64Decode(args[0].as_string(), &bad);
         if (!bytes) {
           if (bad == args[0].as_string().size()) {
             return ValueError(0, "invalid base64: the length is not a multiple of 4; add '=' padding");
           }
           return ValueError(0, "invalid base64: unexpected character at byte " + std::to_string(bad));
         }
         if (FindInvalidUtf8(*bytes) != std::string::npos) {
           return ValueError(0, "the decoded bytes are not UTF-8 text; strings cannot hold binary data");
         }
         return FunctionResult::Ok(Value::String(std::move(*bytes)));
       }});
  out.push_back({"jsonencode",
                 "encoding",
                 "jsonencode(value any) string",
                 "encodes a value as compact JSON; units become strings like \"30s\"",
                 1,
                 1,
                 {A},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   std::string text;
                   if (auto err = EncodeJson(args[0], text, 0)) return *err;
                   return FunctionResult::Ok(Value::String(std::move(text)));
                 }});
  out.push_back({"jsondecode",
                 "encoding",
                 "jsondecode(s string) any",
                 "parses a JSON document; every JSON number becomes a number",
                 1,
                 1,
                 {S},
                 Returns(A),
                 JsonDecode});
  out.push_back({"urlencode",
                 "encoding",
                 "urlencode(s string) string",
                 "escapes a string for a URL query: spaces become '+', other reserved bytes %XX",
                 1,
                 1,
                 {S},
                 Returns(S),
                 UrlEncode});
  out.push_back({"csvdecode",
                 "encoding",
                 "csvdecode(s string) list(map(string))",
                 "parses CSV whose first line names the columns into a list of maps",
                 1,
                 1,
                 {S},
                 Returns(Type::List(Type::Map(S))),
                 CsvDecode});

  out.push_back({"md5",
                 "hashing",
                 "md5(s string) string",
                 "the MD5 hash of a string, as hex",
                 1,
                 1,
                 {S},
                 Returns(S),
                 HexHash(EVP_md5)});
  out.push_back({"sha1",
                 "hashing",
                 "sha1(s string) string",
                 "the SHA-1 hash of a string, as hex",
                 1,
                 1,
                 {S},
                 Returns(S),
                 HexHash(EVP_sha1)});
  out.push_back({"sha256",
                 "hashing",
                 "sha256(s string) string",
                 "the SHA-256 hash of a string, as hex",
                 1,
                 1,
                 {S},
                 Returns(S),
                 HexHash(EVP_sha256)});
  out.push_back({"sha512",
                 "hashing",
                 "sha512(s string) string",
                 "the SHA-512 hash of a string, as hex",
                 1,
                 1,
                 {S},
                 Returns(S),
                 HexHash(EVP_sha512)});
  out.push_back({"base64sha256",
                 "hashing",
                 "base64sha256(s string) string",
                 "the SHA-256 hash of a string, as base64",
                 1,
                 1,
                 {S},
                 Returns(S),
                 Base64Hash(EVP_sha256)});
  out.push_back({"base64sha512",
                 "hashing",
                 "base64sha512(s string) string",
                 "the SHA-512 hash of a string, as base64",
                 1,
                 1,
                 {S},
                 Returns(S),
                 Base64Hash(EVP_sha512)});
  out.push_back({"uuid",
                 "hashing",
                 "uuid() string",
                 "a random version 4 UUID; known only after apply",
                 0,
                 0,
                 {},
                 Returns(S),
                 UuidV4,
                 /*impure=*/true});
  out.push_back({"uuidv5",
                 "hashing",
                 "uuidv5(namespace string, name string) string",
                 "the name-based (SHA-1) version 5 UUID of a name in a namespace",
                 2,
                 2,
                 {S, S},
                 Returns(S),
                 UuidV5});
}

}  // namespace plinth::fn_internal
