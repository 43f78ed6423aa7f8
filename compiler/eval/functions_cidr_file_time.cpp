// CIDR, file-system and time/unit functions.
//
// CIDR arithmetic uses 128-bit integers for IPv4 and IPv6 alike. File
// functions resolve relative paths against CallContext::base_dir (the
// directory of the calling file) and read at most 16 MiB. Timestamps are
// RFC 3339 strings kept to millisecond precision.

#include <arpa/inet.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <system_error>
#include <variant>

#include "compiler/eval/functions_internal.h"
#include "compiler/source/source.h"

namespace plinth::fn_internal {
namespace {

using u128 = unsigned __int128;

// ------------------------------------------------------------------ CIDR

struct Cidr {
  u128 address = 0;  // the network address (host bits cleared)
  int bits = 32;     // 32 for IPv4, 128 for IPv6
  int prefix = 0;
};

u128 Mask(int bits, int prefix) {  // ones in the top `prefix` of `bits` bits
  u128 all = bits == 128 ? ~u128(0) : ((u128(1) << bits) - 1);
  u128 host = (bits - prefix) >= 128 ? ~u128(0) : ((u128(1) << (bits - prefix)) - 1);
  return all & ~host;
}

// 2^n - 1 for n in [0, 128].
u128 LowOnes(int n) {
  return n >= 128 ? ~u128(0) : (u128(1) << n) - 1;
}

std::string FormatAddress(u128 a, int bits) {
  char buf[INET6_ADDRSTRLEN];
  if (bits == 32) {
    unsigned char b[4];
    for (int i = 0; i < 4; ++i) b[i] = static_cast<unsigned char>(a >> (24 - 8 * i));
    inet_ntop(AF_INET, b, buf, sizeof buf);
  } else {
    unsigned char b[16];
    for (int i = 0; i < 16; ++i) b[i] = static_cast<unsigned char>(a >> (120 - 8 * i));
    inet_ntop(AF_INET6, b, buf, sizeof buf);
  }
  return buf;
}

std::variant<Cidr, std::string> ParseCidr(const std::string& s) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) {
    return "'" + s + "' is not a CIDR prefix; write an address and a prefix length, like \"10.0.0.0/16\"";
  }
  std::string addr = s.substr(0, slash);
  std::string len = s.substr(slash + 1);
  Cidr c;
  unsigned char b[16];
  if (inet_pton(AF_INET, addr.c_str(), b) == 1) {
    c.bits = 32;
    for (int i = 0; i < 4; ++i) c.address = (c.address << 8) | b[i];
  } else if (inet_pton(AF_INET6, addr.c_str(), b) == 1) {
    c.bits = 128;
    for (int i = 0; i < 16; ++i) c.address = (c.address << 8) | b[i];
  } else {
    return "'" + addr + "' in '" + s + "' is not a valid IPv4 or IPv6 address";
  }
  if (len.empty() || len.size() > 3 || len.find_first_not_of("0123456789") != std::string::npos) {
    return "the prefix length in '" + s + "' must be a number from 0 to " + std::to_string(c.bits);
  }
  c.prefix = std::stoi(len);
  if (c.prefix > c.bits) {
    return "the prefix length " + len + " in '" + s + "' is too long; " + (c.bits == 32 ? "IPv4" : "IPv6") +
           " prefixes are at most " + std::to_string(c.bits) + " bits";
  }
  c.address &= Mask(c.bits, c.prefix);
  return c;
}

std::string FormatCidr(u128 a, int bits, int prefix) {
  return FormatAddress(a, bits) + "/" + std::to_string(prefix);
}

FunctionResult CidrHost(const CallContext&, std::span<const Value> args) {
  auto parsed = ParseCidr(args[0].as_string());
  if (auto* err = std::get_if<std::string>(&parsed)) return ValueError(0, *err);
  const Cidr& c = std::get<Cidr>(parsed);
  const int host_bits = c.bits - c.prefix;
  std::optional<int64_t> n = IntIn(args[1], INT64_MIN / 2, INT64_MAX / 2);
  if (!n) return ValueError(1, "the host number must be a whole number, got " + Describe(args[1]));
  u128 max = LowOnes(host_bits);  // the largest host number
  u128 offset;
  if (*n >= 0) {
    offset = static_cast<u128>(*n);
    if (offset > max) {
      return ValueError(1, "host number " + std::to_string(*n) + " does not fit in '" + args[0].as_string() +
                               "', which has " + std::to_string(host_bits) + " host bits; use at most " +
                               (host_bits < 64 ? std::to_string(static_cast<uint64_t>(max))
                                               : "2^" + std::to_string(host_bits) + "-1"));
    }
  } else {
    u128 back = static_cast<u128>(-(*n));
    if (back - 1 > max) {
      return ValueError(1, "host number " + std::to_string(*n) + " does not fit in '" + args[0].as_string() +
                               "', which has " + std::to_string(host_bits) + " host bits");
    }
    offset = max - (back - 1);
  }
  return FunctionResult::Ok(Value::String(FormatAddress(c.address + offset, c.bits)));
}

FunctionResult CidrNetmask(const CallContext&, std::span<const Value> args) {
  auto parsed = ParseCidr(args[0].as_string());
  if (auto* err = std::get_if<std::string>(&parsed)) return ValueError(0, *err);
  const Cidr& c = std::get<Cidr>(parsed);
  if (c.bits != 32)
    return ValueError(0, "'cidrnetmask' only supports IPv4 prefixes; IPv6 has no netmask notation");
  return FunctionResult::Ok(Value::String(FormatAddress(Mask(32, c.prefix), 32)));
}

// The prefix length after adding `newbits` to `c`, or an error message.
std::variant<int, std::string> ExtendedLength(const Cidr& c, const std::string& text, int64_t newbits) {
  if (c.prefix + newbits > c.bits) {
    return "adding " + std::to_string(newbits) + " bits to the /" + std::to_string(c.prefix) +
           " prefix of '" + text + "' would give a /" + std::to_string(c.prefix + newbits) + " prefix, but " +
           (c.bits == 32 ? "IPv4" : "IPv6") + " addresses have only " + std::to_string(c.bits) + " bits";
  }
  return static_cast<int>(c.prefix + newbits);
}

FunctionResult CidrSubnet(const CallContext&, std::span<const Value> args) {
  const std::string& text = args[0].as_string();
  auto parsed = ParseCidr(text);
  if (auto* err = std::get_if<std::string>(&parsed)) return ValueError(0, *err);
  const Cidr& c = std::get<Cidr>(parsed);
  std::optional<int64_t> newbits = IntIn(args[1], 0, 128);
  if (!newbits)
    return ValueError(1, "the number of new bits must be from 0 to 128, got " + Describe(args[1]));
  auto extended = ExtendedLength(c, text, *newbits);
  if (auto* err = std::get_if<std::string>(&extended)) return ValueError(1, *err);
  const int length = std::get<int>(extended);
  std::optional<int64_t> netnum = IntIn(args[2], 0, INT64_MAX / 2);
  if (!netnum || static_cast<u128>(*netnum) > LowOnes(static_cast<int>(*newbits))) {
    std::string range =
        *newbits < 63 ? std::to_string((int64_t{1} << *newbits) - 1) : "2^" + std::to_string(*newbits) + "-1";
    return ValueError(2, "network number " + Describe(args[2]) + " does not fit in " +
                             std::to_string(*newbits) + " new bits; use a number from 0 to " + range);
  }
  u128 addr = c.address | (static_cast<u128>(*netnum) << (c.bits - length));
  return FunctionResult::Ok(Value::String(FormatCidr(addr, c.bits, length)));
}

FunctionResult CidrSubnets(const CallContext&, std::span<const Value> args) {
  const std::string& text = args[0].as_string();
  auto parsed = ParseCidr(text);
  if (auto* err = std::get_if<std::string>(&parsed)) return ValueError(0, *err);
  const Cidr& c = std::get<Cidr>(parsed);
  const u128 last = LowOnes(c.bits - c.prefix);  // the largest offset inside the prefix
  u128 next = 0;                                 // the first free offset
  bool full = false;
  ValueList out;
  for (size_t i = 1; i < args.size(); ++i) {
    const int arg = static_cast<int>(i);
    std::optional<int64_t> newbits = IntIn(args[i], 0, 128);
    if (!newbits)
      return ValueError(arg, "the number of new bits must be from 0 to 128, got " + Describe(args[i]));
    auto extended = ExtendedLength(c, text, *newbits);
    if (auto* err = std::get_if<std::string>(&extended)) return ValueError(arg, *err);
    const int length = std::get<int>(extended);
    const u128 block_minus_1 = LowOnes(c.bits - length);
    // Align up to the block size.
    u128 start = (next + block_minus_1) & ~block_minus_1;
    bool overflow = full || start < next || start > last || last - start < block_minus_1;
    if (overflow) {
      return ValueError(arg, "not enough address space left in '" + text + "' for a /" +
                                 std::to_string(length) + " subnet after " + std::to_string(out.size()) +
                                 " earlier subnets; use a larger prefix or fewer new bits");
    }
    out.push_back(Value::String(FormatCidr(c.address + start, c.bits, length)));
    next = start + block_minus_1 + 1;
    full = next == 0 || start + block_minus_1 == last;
  }
  return FunctionResult::Ok(Value::List(std::move(out)));
}

// ------------------------------------------------------------------ files

constexpr uintmax_t kMaxFileSize = 16 * 1024 * 1024;

std::filesystem::path Resolve(const CallContext& ctx, const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative() && !ctx.base_dir.empty()) p = std::filesystem::path(ctx.base_dir) / p;
  return p;
}

// Reads a whole regular file, or returns an error result blaming argument 0.
std::variant<std::string, FunctionResult> ReadFile(const CallContext& ctx, const std::string& path) {
  if (path.empty()) return ValueError(0, "the path is empty; give the path of a file");
  std::filesystem::path p = Resolve(ctx, path);
  std::error_code ec;
  auto status = std::filesystem::status(p, ec);
  if (ec || !std::filesystem::exists(status)) {
    return ValueError(0, "cannot read '" + path + "': no such file (looked for '" + p.string() + "')");
  }
  if (std::filesystem::is_directory(status))
    return ValueError(0, "cannot read '" + path + "': it is a directory");
  if (!std::filesystem::is_regular_file(status)) {
    return ValueError(0, "cannot read '" + path + "': it is not a regular file");
  }
  uintmax_t size = std::filesystem::file_size(p, ec);
  if (ec) return ValueError(0, "cannot read '" + path + "': " + ec.message());
  if (size > kMaxFileSize) {
    return ValueError(0, "cannot read '" + path + "': it has " + std::to_string(size) +
                             " bytes, more than the limit of 16 MiB");
  }
  std::ifstream in(p, std::ios::binary);
  if (!in) return ValueError(0, "cannot read '" + path + "': permission denied or the file vanished");
  std::string data(static_cast<size_t>(size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  data.resize(static_cast<size_t>(in.gcount()));
  if (in.bad()) return ValueError(0, "cannot read '" + path + "': a read error occurred");
  return data;
}

FunctionResult File(const CallContext& ctx, std::span<const Value> args) {
  auto r = ReadFile(ctx, args[0].as_string());
  if (auto* err = std::get_if<FunctionResult>(&r)) return *err;
  std::string& data = std::get<std::string>(r);
  size_t bad = FindInvalidUtf8(data);
  if (bad != std::string::npos) {
    return ValueError(0, "'" + args[0].as_string() + "' is not UTF-8 text (invalid byte at offset " +
                             std::to_string(bad) + "); use 'filebase64' for binary files");
  }
  return FunctionResult::Ok(Value::String(std::move(data)));
}

FunctionResult FileExists(const CallContext& ctx, std::span<const Value> args) {
  const std::string& path = args[0].as_string();
  if (path.empty()) return ValueError(0, "the path is empty; give the path of a file");
  std::error_code ec;
  auto status = std::filesystem::status(Resolve(ctx, path), ec);
  if (!std::filesystem::exists(status)) return FunctionResult::Ok(Value::Bool(false));
  if (std::filesystem::is_directory(status)) {
    return ValueError(0, "'" + path + "' is a directory, not a file");
  }
  return FunctionResult::Ok(Value::Bool(true));
}

// Lexical clean in the manner of Go's path.Clean.
std::string CleanPath(std::string_view path) {
  if (path.empty()) return ".";
  const bool rooted = path[0] == '/';
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    std::string_view part = path.substr(i, j - i);
    i = j + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
      continue;
    }
    parts.push_back(part);
  }
  std::string out = rooted ? "/" : "";
  for (size_t k = 0; k < parts.size(); ++k) {
    if (k) out += '/';
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

std::string Basename(std::string_view p) {
  if (p.empty()) return ".";
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  if (p == "/") return "/";
  size_t slash = p.rfind('/');
  return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

std::string Dirname(std::string_view p) {
  size_t slash = p.rfind('/');
  if (slash == std::string_view::npos) return ".";
  return CleanPath(p.substr(0, slash + 1));
}

// ------------------------------------------------------------------ time

struct Timestamp {
  int64_t ms = 0;          // since 1970-01-01T00:00:00Z
  int offset_minutes = 0;  // the zone offset written in the text
};

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
}

bool LeapYear(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned DaysInMonth(int64_t y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && LeapYear(y) ? 29 : kDays[m - 1];
}

std::optional<Timestamp> ParseRfc3339(std::string_view s) {
  auto digits = [&](size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!digits(0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(5, 2, month) || s[7] != '-' ||
      !digits(8, 2, day) || (s[10] != 'T' && s[10] != 't') || !digits(11, 2, hour) || s[13] != ':' ||
      !digits(14, 2, minute) || s[16] != ':' || !digits(17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || static_cast<unsigned>(day) > DaysInMonth(year, month) ||
      hour > 23 || minute > 59 || second > 59) {
    return std::nullopt;
  }
  size_t i = 19;
  int ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    int scale = 100;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      ms += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
    }
    if (i == start) return std::nullopt;
  }
  int offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(i + 1, 2, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !digits(i + 4, 2, om) || oh > 23 ||
        om > 59) {
      return std::nullopt;
    }
    offset = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  int64_t local_ms = ((days * 24 + hour) * 60 + minute) * 60'000 + second * 1000 + ms;
  return Timestamp{local_ms - int64_t{offset} * 60'000, offset};
}

struct Civil {
  int64_t year;
  unsigned month, day, hour, minute, second, ms, weekday;  // weekday 0 = Sunday
};

Civil ToCivil(const Timestamp& t) {
  int64_t local = t.ms + int64_t{t.offset_minutes} * 60'000;
  int64_t days = local >= 0 ? local / 86'400'000 : -((-local + 86'399'999) / 86'400'000);
  int64_t rest = local - days * 86'400'000;
  Civil c{};
  CivilFromDays(days, c.year, c.month, c.day);
  c.hour = static_cast<unsigned>(rest / 3'600'000);
  c.minute = static_cast<unsigned>(rest / 60'000 % 60);
  c.second = static_cast<unsigned>(rest / 1000 % 60);
  c.ms = static_cast<unsigned>(rest % 1000);
  c.weekday = static_cast<unsigned>(((days % 7) + 7 + 4) % 7);  // 1970-01-01 was a Thursday
  return c;
}

std::string Zero(int64_t v, int width) {
  std::string s = std::to_string(v < 0 ? -v : v);
  if (static_cast<int>(s.size()) < width) s.insert(0, static_cast<size_t>(width) - s.size(), '0');
  return v < 0 ? "-" + s : s;
}

std::string OffsetText(int minutes, bool colon) {
  int a = minutes < 0 ? -minutes : minutes;
  return std::string(minutes < 0 ? "-" : "+") + Zero(a / 60, 2) + (colon ? ":" : "") + Zero(a % 60, 2);
}

std::optional<std::string> FormatRfc3339(const Timestamp& t) {
  Civil c = ToCivil(t);
  if (c.year < 0 || c.year > 9999) return std::nullopt;
  std::string s = Zero(c.year, 4) + "-" + Zero(c.month, 2) + "-" + Zero(c.day, 2) + "T" + Zero(c.hour, 2) +
                  ":" + Zero(c.minute, 2) + ":" + Zero(c.second, 2);
  if (c.ms) {
    std::string frac = Zero(c.ms, 3);
    while (frac.back() == '0') frac.pop_back();
    s += "." + frac;
  }
  s += t.offset_minutes == 0 ? "Z" : OffsetText(t.offset_minutes, true);
  return s;
}

constexpr std::string_view kTimestampHint = "; write an RFC 3339 timestamp like \"2024-01-31T12:00:00Z\"";

FunctionResult FormatDate(const CallContext&, std::span<const Value> args) {
  std::optional<Timestamp> t = ParseRfc3339(args[1].as_string());
  if (!t) return ValueError(1, Describe(args[1]) + " is not a valid timestamp" + std::string(kTimestampHint));
  static const char* const kMonths[] = {"January",   "February", "March",    "April",
                                        "May",       "June",     "July",     "August",
                                        "September", "October",  "November", "December"};
  static const char* const kDays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                      "Thursday", "Friday", "Saturday"};
  const Civil c = ToCivil(*t);
  const std::string& f = args[0].as_string();
  std::string out;
  size_t i = 0;
  while (i < f.size()) {
    char ch = f[i];
    if (ch == '\'') {
      size_t end = f.find('\'', i + 1);
      if (end == std::string::npos) {
        return ValueError(
            0, "the format has an unclosed quote at byte " + std::to_string(i) + "; write '' for a quote");
      }
      out += end == i + 1 ? "'" : f.substr(i + 1, end - i - 1);
      i = end + 1;
      continue;
    }
    if (!std::isalpha(static_cast<unsigned char>(ch))) {
      out += ch;
      ++i;
      continue;
    }
    size_t j = i;
    while (j < f.size() && f[j] == ch) ++j;
    const std::string verb = f.substr(i, j - i);
    i = j;
    const unsigned h12 = c.hour % 12 == 0 ? 12 : c.hour % 12;
    if (verb == "YYYY")
      out += Zero(c.year, 4);
    else if (verb == "YY")
      out += Zero(c.year % 100, 2);
    else if (verb == "MMMM")
      out += kMonths[c.month - 1];
    else if (verb == "MMM")
      out += std::string(kMonths[c.month - 1]).substr(0, 3);
    else if (verb == "MM")
      out += Zero(c.month, 2);
    else if (verb == "M")
      out += std::to_string(c.month);
    else if (verb == "DD")
      out += Zero(c.day, 2);
    else if (verb == "D")
      out += std::to_string(c.day);
    else if (verb == "EEEE")
      out += kDays[c.weekday];
    else if (verb == "EEE")
      out += std::string(kDays[c.weekday]).substr(0, 3);
    else if (verb == "hh")
      out += Zero(c.hour, 2);
    else if (verb == "h")
      out += std::to_string(c.hour);
    else if (verb == "HH")
      out += Zero(h12, 2);
    else if (verb == "H")
      out += std::to_string(h12);
    else if (verb == "AA")
      out += c.hour < 12 ? "AM" : "PM";
    else if (verb == "aa")
      out += c.hour < 12 ? "am" : "pm";
    else if (verb == "mm")
      out += Zero(c.minute, 2);
    else if (verb == "m")
      out += std::to_string(c.minute);
    else if (verb == "ss")
      out += Zero(c.second, 2);
    else if (verb == "s")
      out += std::to_string(c.second);
    else if (verb == "ZZZZZ")
      out += OffsetText(t->offset_minutes, true);
    else if (verb == "ZZZZ")
      out += OffsetText(t->offset_minutes, false);
    else if (verb == "ZZZ")
      out += t->offset_minutes == 0 ? "UTC" : OffsetText(t->offset_minutes, false);
    else if (verb == "Z")
      out += t->offset_minutes == 0 ? "Z" : OffsetText(t->offset_minutes, true);
    else {
      return ValueError(0,
                        "unknown date format sequence '" + verb +
                            "'; quote literal letters like 'at', or see docs/functions.md for the sequences");
    }
  }
  return FunctionResult::Ok(Value::String(std::move(out)));
}

FunctionResult TimeAdd(const CallContext&, std::span<const Value> args) {
  std::optional<Timestamp> t = ParseRfc3339(args[0].as_string());
  if (!t) return ValueError(0, Describe(args[0]) + " is not a valid timestamp" + std::string(kTimestampHint));
  double d = args[1].as_number();
  if (!std::isfinite(d) || std::fabs(d) > 1e15) {
    return ValueError(1, "the duration " + Describe(args[1]) + " is too large to add to a timestamp");
  }
  Timestamp r{t->ms + static_cast<int64_t>(std::llround(d)), t->offset_minutes};
  std::optional<std::string> text = FormatRfc3339(r);
  if (!text) return ValueError(1, "the result is outside the years 0000 to 9999");
  return FunctionResult::Ok(Value::String(*text));
}

FunctionResult TimeCmp(const CallContext&, std::span<const Value> args) {
  std::optional<Timestamp> a = ParseRfc3339(args[0].as_string());
  if (!a) return ValueError(0, Describe(args[0]) + " is not a valid timestamp" + std::string(kTimestampHint));
  std::optional<Timestamp> b = ParseRfc3339(args[1].as_string());
  if (!b) return ValueError(1, Describe(args[1]) + " is not a valid timestamp" + std::string(kTimestampHint));
  return FunctionResult::Ok(Value::Number(a->ms < b->ms ? -1 : a->ms > b->ms ? 1 : 0));
}

FunctionResult Now(const CallContext&, std::span<const Value>) {
  auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  Timestamp t{static_cast<int64_t>(now.time_since_epoch().count()) * 1000, 0};
  return FunctionResult::Ok(Value::String(FormatRfc3339(t).value_or("")));
}

// Parses a decimal number at the start of `s`; advances `s`.
std::optional<double> TakeNumber(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
  size_t int_digits = i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t frac_start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == frac_start) return std::nullopt;
  } else if (int_digits == 0) {
    return std::nullopt;
  }
  double v = std::strtod(std::string(s.substr(0, i)).c_str(), nullptr);
  s.remove_prefix(i);
  return v;
}

// The longest unit suffix of `dim` at the start of `s`; advances `s`.
const UnitInfo* TakeUnit(std::string_view& s, UnitDimension dim) {
  const UnitInfo* best = nullptr;
  for (const UnitInfo& u : AllUnits()) {
    if (u.dimension == dim && s.starts_with(u.suffix) && (!best || u.suffix.size() > best->suffix.size()))
      best = &u;
  }
  if (best) s.remove_prefix(best->suffix.size());
  return best;
}

std::string UnitList(UnitDimension dim) {
  std::string out;
  for (const UnitInfo& u : AllUnits()) {
    if (u.dimension == dim) out += (out.empty() ? "" : ", ") + std::string(u.suffix);
  }
  return out;
}

std::string_view TrimAscii(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

FunctionResult ParseDuration(const CallContext&, std::span<const Value> args) {
  std::string_view s = TrimAscii(args[0].as_string());
  const std::string hint =
      "; write a number and a unit (" + UnitList(UnitDimension::Duration) + "), repeated as in \"1h30m\"";
  bool negative = false;
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  if (s.empty()) return ValueError(0, "the duration " + Describe(args[0]) + " is empty" + hint);
  double total = 0;
  while (!s.empty()) {
    std::optional<double> n = TakeNumber(s);
    if (!n) return ValueError(0, Describe(args[0]) + " is not a valid duration" + hint);
    const UnitInfo* u = TakeUnit(s, UnitDimension::Duration);
    if (!u) return ValueError(0, Describe(args[0]) + " has a number without a known duration unit" + hint);
    total += *n * u->factor;
  }
  if (!std::isfinite(total)) return ValueError(0, Describe(args[0]) + " is too large");
  return FunctionResult::Ok(Value::Duration(negative ? -total : total));
}

FunctionResult ParseSize(const CallContext&, std::span<const Value> args) {
  std::string_view s = TrimAscii(args[0].as_string());
  const std::string hint =
      "; write a number and a unit (" + UnitList(UnitDimension::Size) + "), like \"10GiB\"";
  std::optional<double> n = TakeNumber(s);
  if (!n) return ValueError(0, Describe(args[0]) + " is not a valid size" + hint);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  const UnitInfo* u = TakeUnit(s, UnitDimension::Size);
  if (!u || !s.empty()) {
    return ValueError(
        0, Describe(args[0]) + " does not end in a known size unit (units are case-sensitive)" + hint);
  }
  double bytes = *n * u->factor;
  if (!std::isfinite(bytes)) return ValueError(0, Describe(args[0]) + " is too large");
  return FunctionResult::Ok(Value::Size(bytes));
}

using Impl = std::function<FunctionResult(const CallContext&, std::span<const Value>)>;

Impl Scaled(double divisor) {
  return [divisor](const CallContext&, std::span<const Value> args) {
    return FunctionResult::Ok(Value::Number(args[0].as_number() / divisor));
  };
}

}  // namespace

void RegisterCidrFileTimeFunctions(std::vector<FunctionDef>& out) {
  const Type S = Type::String();
  const Type I = Type::Int();
  const Type N = Type::Number();
  const Type B = Type::Bool();
  const Type D = Type::Duration();

  // ---- cidr
  out.push_back({"cidrhost",
                 "cidr",
                 "cidrhost(prefix string, hostnum int) string",
                 "the address of host number `hostnum` in a prefix (negative: from the end)",
                 2,
                 2,
                 {S, I},
                 Returns(S),
                 CidrHost});
  out.push_back({"cidrnetmask",
                 "cidr",
                 "cidrnetmask(prefix string) string",
                 "the dotted netmask of an IPv4 prefix",
                 1,
                 1,
                 {S},
                 Returns(S),
                 CidrNetmask});
  out.push_back({"cidrsubnet",
                 "cidr",
                 "cidrsubnet(prefix string, newbits int, netnum int) string",
                 "subnet number `netnum` of a prefix extended by `newbits` bits",
                 3,
                 3,
                 {S, I, I},
                 Returns(S),
                 CidrSubnet});
  out.push_back({"cidrsubnets",
                 "cidr",
                 "cidrsubnets(prefix string, newbits int...) list(string)",
                 "consecutive, aligned subnets of a prefix, one per `newbits` argument",
                 1,
                 SIZE_MAX,
                 {S, I},
                 Returns(Type::List(S)),
                 CidrSubnets});

  // ---- file
  out.push_back({"file",
                 "file",
                 "file(path string) string",
                 "the contents of a UTF-8 text file of at most 16 MiB",
                 1,
                 1,
                 {S},
                 Returns(S),
                 File});
  out.push_back({"fileexists",
                 "file",
                 "fileexists(path string) bool",
                 "whether a file exists at a path",
                 1,
                 1,
                 {S},
                 Returns(B),
                 FileExists});
  out.push_back({"filebase64",
                 "file",
                 "filebase64(path string) string",
                 "the contents of a file of at most 16 MiB, as base64",
                 1,
                 1,
                 {S},
                 Returns(S),
                 [](const CallContext& ctx, std::span<const Value> args) {
                   auto r = ReadFile(ctx, args[0].as_string());
                   if (auto* err = std::get_if<FunctionResult>(&r)) return *err;
                   return FunctionResult::Ok(Value::String(Base64EncodeBytes(std::get<std::string>(r))));
                 }});
  out.push_back({"filesha256",
                 "file",
                 "filesha256(path string) string",
                 "the SHA-256 hash of a file's contents, as hex",
                 1,
                 1,
                 {S},
                 Returns(S),
                 [](const CallContext& ctx, std::span<const Value> args) {
                   auto r = ReadFile(ctx, args[0].as_string());
                   if (auto* err = std::get_if<FunctionResult>(&r)) return *err;
                   return FunctionResult::Ok(Value::String(Sha256Hex(std::get<std::string>(r))));
                 }});
  out.push_back({"basename",
                 "file",
                 "basename(path string) string",
                 "the last element of a path",
                 1,
                 1,
                 {S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(Value::String(Basename(args[0].as_string())));
                 }});
  out.push_back({"dirname",
                 "file",
                 "dirname(path string) string",
                 "a path without its last element",
                 1,
                 1,
                 {S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(Value::String(Dirname(args[0].as_string())));
                 }});
  out.push_back({"abspath",
                 "file",
                 "abspath(path string) string",
                 "an absolute, cleaned path; relative paths start at the calling file's directory",
                 1,
                 1,
                 {S},
                 Returns(S),
                 [](const CallContext& ctx, std::span<const Value> args) {
                   std::filesystem::path p = Resolve(ctx, args[0].as_string());
                   std::error_code ec;
                   if (p.is_relative()) p = std::filesystem::absolute(p, ec);
                   if (ec)
                     return ValueError(0,
                                       "cannot make '" + args[0].as_string() + "' absolute: " + ec.message());
                   return FunctionResult::Ok(Value::String(CleanPath(p.generic_string())));
                 }});
  out.push_back({"pathjoin",
                 "file",
                 "pathjoin(parts string...) string",
                 "joins path elements with '/' and cleans the result",
                 1,
                 SIZE_MAX,
                 {S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   std::string joined;
                   for (const Value& a : args) {
                     if (a.as_string().empty()) continue;
                     if (!joined.empty()) joined += '/';
                     joined += a.as_string();
                   }
                   return FunctionResult::Ok(Value::String(joined.empty() ? "" : CleanPath(joined)));
                 }});

  // ---- time
  out.push_back({"timestamp",
                 "time",
                 "timestamp() string",
                 "the current UTC time in RFC 3339; known only after apply",
                 0,
                 0,
                 {},
                 Returns(S),
                 Now,
                 /*impure=*/true});
  out.push_back({"formatdate",
                 "time",
                 "formatdate(format string, timestamp string) string",
                 "formats an RFC 3339 timestamp with sequences like YYYY-MM-DD hh:mm",
                 2,
                 2,
                 {S, S},
                 Returns(S),
                 FormatDate});
  out.push_back({"timeadd",
                 "time",
                 "timeadd(timestamp string, duration duration) string",
                 "adds a duration such as 30m to an RFC 3339 timestamp",
                 2,
                 2,
                 {S, D},
                 Returns(S),
                 TimeAdd});
  out.push_back({"timecmp",
                 "time",
                 "timecmp(a string, b string) int",
                 "compares two RFC 3339 timestamps: -1, 0 or 1",
                 2,
                 2,
                 {S, S},
                 Returns(I),
                 TimeCmp});
  out.push_back({"parseduration",
                 "time",
                 "parseduration(s string) duration",
                 "parses a duration string like \"1h30m\" into a duration",
                 1,
                 1,
                 {S},
                 Returns(D),
                 ParseDuration});
  out.push_back({"seconds",
                 "time",
                 "seconds(d duration) number",
                 "a duration as a number of seconds",
                 1,
                 1,
                 {D},
                 Returns(N),
                 Scaled(1000)});
  out.push_back({"milliseconds",
                 "time",
                 "milliseconds(d duration) number",
                 "a duration as a number of milliseconds",
                 1,
                 1,
                 {D},
                 Returns(N),
                 Scaled(1)});
  out.push_back({"parsesize",
                 "numeric",
                 "parsesize(s string) size",
                 "parses a size string like \"10GiB\" into a size",
                 1,
                 1,
                 {S},
                 Returns(Type::Size()),
                 ParseSize});
  out.push_back({"bytes",
                 "numeric",
                 "bytes(size size) number",
                 "a size as a number of bytes",
                 1,
                 1,
                 {Type::Size()},
                 Returns(N),
                 Scaled(1)});
  out.push_back({"gibibytes",
                 "numeric",
                 "gibibytes(size size) number",
                 "a size as a number of GiB (2^30 bytes)",
                 1,
                 1,
                 {Type::Size()},
                 Returns(N),
                 Scaled(1024.0 * 1024 * 1024)});
}

}  // namespace plinth::fn_internal
