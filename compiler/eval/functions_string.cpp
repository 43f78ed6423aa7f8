// String functions: case, trimming, splitting, formatting and regular
// expressions. Strings are UTF-8; lengths and offsets count code points.

#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>

#include "compiler/eval/functions_internal.h"
#include "compiler/eval/regex.h"
#include "compiler/source/source.h"

namespace plinth::fn_internal {
namespace {

// ------------------------------------------------------------------ UTF-8

uint32_t DecodeCodePoint(std::string_view cp) {
  unsigned char c = static_cast<unsigned char>(cp[0]);
  if (cp.size() == 1) return c;
  uint32_t v = cp.size() == 2 ? (c & 0x1F) : cp.size() == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t i = 1; i < cp.size(); ++i) v = (v << 6) | (static_cast<unsigned char>(cp[i]) & 0x3F);
  return v;
}

void AppendCodePoint(std::string& out, uint32_t v) {
  if (v < 0x80) {
    out += static_cast<char>(v);
  } else if (v < 0x800) {
    out += static_cast<char>(0xC0 | (v >> 6));
    out += static_cast<char>(0x80 | (v & 0x3F));
  } else if (v < 0x10000) {
    out += static_cast<char>(0xE0 | (v >> 12));
    out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (v & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (v >> 18));
    out += static_cast<char>(0x80 | ((v >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (v & 0x3F));
  }
}

// Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and
// Cyrillic; other code points are unchanged.
uint32_t ToUpper(uint32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 32;
  if (c >= 0x100 && c <= 0x137 && (c & 1)) return c - 1;
  if (c >= 0x139 && c <= 0x148 && !(c & 1)) return c - 1;
  if (c >= 0x14A && c <= 0x177 && (c & 1)) return c - 1;
  if (c == 0x17A || c == 0x17C || c == 0x17E) return c - 1;
  if (c >= 0x3B1 && c <= 0x3C9 && c != 0x3C2) return c - 32;
  if (c >= 0x430 && c <= 0x44F) return c - 32;
  if (c >= 0x450 && c <= 0x45F) return c - 80;
  return c;
}

uint32_t ToLower(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 32;
  if (c >= 0x100 && c <= 0x137 && !(c & 1)) return c + 1;
  if (c >= 0x139 && c <= 0x148 && (c & 1)) return c + 1;
  if (c >= 0x14A && c <= 0x177 && !(c & 1)) return c + 1;
  if (c == 0x179 || c == 0x17B || c == 0x17D) return c + 1;
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2) return c + 32;
  if (c >= 0x410 && c <= 0x42F) return c + 32;
  if (c >= 0x400 && c <= 0x40F) return c + 80;
  return c;
}

bool IsSpace(uint32_t c) {
  return c == ' ' || (c >= '\t' && c <= '\r') || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// Letters, digits and '_' continue a word for 'title'; every non-ASCII code
// point except white space counts as a letter.
bool IsWordChar(uint32_t c) {
  if (c >= 0x80) return !IsSpace(c);
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

template <typename F>
std::string MapCodePoints(std::string_view s, F f) {
  std::string out;
  out.reserve(s.size());
  for (std::string_view cp : CodePoints(s)) {
    uint32_t c = DecodeCodePoint(cp);
    uint32_t m = f(c);
    if (m == c) {
      out += cp;
    } else {
      AppendCodePoint(out, m);
    }
  }
  return out;
}

// ------------------------------------------------------------------ regex
// RE2, Go's syntax (compiler/eval/regex.h); result shapes and replacement
// templates as in Terraform. Specified in docs/functions.md.

// A pattern that cannot be compiled blames argument `arg`. The reason quotes
// RE2's fragment of the pattern, unless the pattern is sensitive.
std::optional<FunctionResult> CompileRegex(int arg, const Value& pattern, std::unique_ptr<const Regex>& out) {
  std::string error;
  out = Regex::Compile(pattern.as_string(), error);
  if (out) return std::nullopt;
  if (pattern.ContainsSensitive()) error = "invalid regular expression (the pattern is sensitive, so it is not shown)";
  return ValueError(arg, std::move(error));
}

std::optional<FunctionResult> CheckSubject(int arg, std::string_view s) {
  if (s.size() > kMaxRegexSubject) {
    return ValueError(arg, "regular expressions can only be applied to strings of at most " +
                               std::to_string(kMaxRegexSubject) + " bytes, this one has " +
                               std::to_string(s.size()));
  }
  return std::nullopt;
}

// When Regex::ForEachMatch gave up on the work limit.
FunctionResult TooMuchWork(int arg, const Regex& re, std::string_view s) {
  return ValueError(arg, "matching would take too long: the pattern compiles to " + std::to_string(re.cost()) +
                             " instructions and the string has " + std::to_string(s.size()) +
                             " bytes, over the limit of " + std::to_string(kRegexWorkLimit) +
                             " instructions times bytes searched; split the string or simplify the pattern");
}

// What one match of `re` is, as in Terraform: the matched string when there
// are no capture groups, the list of groups when none is named, an object of
// groups by name when all are named.
enum class MatchShape { String, List, Object };

std::optional<FunctionResult> ShapeOf(const Regex& re, MatchShape& shape) {
  if (re.MixesNamedAndUnnamedGroups()) {
    return ValueError(0, "the regular expression mixes named and unnamed capture groups; name every group, or make "
                         "the unnamed ones non-capturing with (?:...)");
  }
  shape = re.group_count() == 0          ? MatchShape::String
          : re.group_names()[1].empty() ? MatchShape::List
                                         : MatchShape::Object;
  return std::nullopt;
}

Value GroupValue(std::string_view g) {
  return g.data() ? Value::String(std::string(g)) : Value::Null();  // null: the group did not take part
}

Value MatchValue(const Regex& re, MatchShape shape, Regex::Groups groups) {
  switch (shape) {
    case MatchShape::String: return Value::String(std::string(groups[0]));
    case MatchShape::List: {
      ValueList list;
      for (size_t i = 1; i < groups.size(); ++i) list.push_back(GroupValue(groups[i]));
      return Value::List(std::move(list));
    }
    case MatchShape::Object: {
      ValueMap object;  // a name used twice takes the later group, as in Terraform
      for (size_t i = 1; i < groups.size(); ++i) object[re.group_names()[i]] = GroupValue(groups[i]);
      return Value::Object(std::move(object));
    }
  }
  return Value::Null();
}

bool IsNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Appends `tmpl` with references to the groups of one match expanded, as Go's
// Regexp.Expand does: $name or ${name} is the group of that name or number
// (the longest run of ASCII letters, digits and '_', so "$1x" is the group
// named "1x"; write "${1}x"), "" when there is no such group or it did not
// take part; "$$" is "$"; a '$' starting no reference is kept. Also "$&", the
// whole match, which Plinth's replace has always accepted.
void Expand(std::string& out, std::string_view tmpl, const Regex& re, Regex::Groups groups) {
  auto group = [&](std::string_view name) -> std::string_view {
    bool digits = name.size() <= 8 && (name.size() == 1 || name[0] != '0');
    size_t number = 0;
    for (char c : name) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) number = number * 10 + static_cast<size_t>(c - '0');
    }
    if (digits) return number < groups.size() ? groups[number] : std::string_view();
    for (size_t i = 1; i < groups.size(); ++i) {
      if (re.group_names()[i] == name && groups[i].data()) return groups[i];
    }
    return {};
  };
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t dollar = tmpl.find('$', i);
    if (dollar == std::string_view::npos) break;
    out.append(tmpl, i, dollar - i);
    i = dollar + 1;
    if (i < tmpl.size() && (tmpl[i] == '$' || tmpl[i] == '&')) {
      out += tmpl[i] == '$' ? std::string_view("$") : groups[0];
      ++i;
      continue;
    }
    const bool brace = i < tmpl.size() && tmpl[i] == '{';
    size_t begin = brace ? i + 1 : i;
    size_t end = begin;
    while (end < tmpl.size() && IsNameByte(tmpl[end])) ++end;
    if (end == begin || (brace && (end >= tmpl.size() || tmpl[end] != '}'))) {
      out += '$';  // not a reference: the '$' is kept as text
      continue;
    }
    out += group(tmpl.substr(begin, end - begin));
    i = brace ? end + 1 : end;
  }
  out.append(tmpl.substr(std::min(i, tmpl.size())));
}

// ------------------------------------------------------------------ format

// The text of a scalar for %s and %v.
std::optional<std::string> ScalarText(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::String: return v.as_string();
    case Value::Kind::Null: return std::nullopt;
    case Value::Kind::List:
    case Value::Kind::Object: return std::nullopt;
    default: return v.ToString(/*reveal=*/true);
  }
}

std::string Pad(std::string s, int width, bool left, char fill) {
  int n = static_cast<int>(CountCodePoints(s));
  if (width <= n) return s;
  std::string pad(static_cast<size_t>(width - n), fill);
  return left ? s + pad : pad + s;
}

FunctionResult Format(const CallContext&, std::span<const Value> args) {
  const std::string& spec = args[0].as_string();
  std::string out;
  size_t next = 1;
  for (size_t i = 0; i < spec.size(); ++i) {
    if (spec[i] != '%') {
      out += spec[i];
      continue;
    }
    size_t start = i++;
    std::string flags;
    while (i < spec.size() && std::string_view("-+ 0#").find(spec[i]) != std::string_view::npos)
      flags += spec[i++];
    int width = -1;
    int precision = -1;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
      width = std::min((width < 0 ? 0 : width) * 10 + (spec[i++] - '0'), 1000);
    }
    if (i < spec.size() && spec[i] == '.') {
      ++i;
      precision = 0;
      while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) {
        precision = std::min(precision * 10 + (spec[i++] - '0'), 100);
      }
    }
    if (i >= spec.size()) {
      return ValueError(0,
                        "the format string ends in the middle of a '%' verb; write '%%' for a literal '%'");
    }
    char verb = spec[i];
    std::string verb_text = spec.substr(start, i - start + 1);
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (std::string_view("sdfvq").find(verb) == std::string_view::npos) {
      return ValueError(0, "unknown format verb '" + verb_text + "'; use %s, %d, %f, %v, %q or %%");
    }
    if (next >= args.size()) {
      return ValueError(0, "the format string has more verbs than there are values (" +
                               std::to_string(args.size() - 1) + "); add a value for '" + verb_text + "'");
    }
    const int arg = static_cast<int>(next);
    const Value& v = args[next++];
    bool left = flags.find('-') != std::string::npos;
    switch (verb) {
      case 's': {
        std::optional<std::string> text = ScalarText(v);
        if (!text)
          return TypeError(arg, "'%s' needs a string, number, bool or unit value, got " + KindName(v));
        if (precision >= 0) {
          std::vector<std::string_view> cps = CodePoints(*text);
          std::string cut;
          for (size_t k = 0; k < cps.size() && k < static_cast<size_t>(precision); ++k) cut += cps[k];
          text = cut;
        }
        out += Pad(*text, width, left, ' ');
        break;
      }
      case 'v': {
        std::string text = v.kind() == Value::Kind::String ? v.as_string() : v.ToString(/*reveal=*/true);
        out += Pad(text, width, left, ' ');
        break;
      }
      case 'q': {
        if (v.kind() != Value::Kind::String) return TypeError(arg, "'%q' needs a string, got " + KindName(v));
        out += Pad(QuoteString(v.as_string()), width, left, ' ');
        break;
      }
      case 'd':
      case 'f': {
        if (v.kind() != Value::Kind::Number) {
          std::string hint =
              UnitOf(v) ? "; convert it first, for example with 'seconds' or 'bytes', or use %s" : "";
          return TypeError(arg, "'" + verb_text + "' needs a number, got " + KindName(v) + hint);
        }
        double d = v.as_number();
        if (verb == 'd' && !v.is_integer()) {
          return ValueError(arg, "'" + verb_text + "' needs a whole number, got " + Describe(v) +
                                     "; use %f or 'floor' first");
        }
        std::string fmt = "%" + flags + (width >= 0 ? std::to_string(width) : "") +
                          (precision >= 0 ? "." + std::to_string(precision) : "") +
                          (verb == 'd' ? ".0f" : "f");
        if (verb == 'd' && precision >= 0) {
          fmt = "%" + flags + (width >= 0 ? std::to_string(width) : "") + ".0f";
        }
        int n = std::snprintf(nullptr, 0, fmt.c_str(), d);
        if (n < 0) return ValueError(arg, "cannot format " + Describe(v) + " with '" + verb_text + "'");
        std::string buf(static_cast<size_t>(n) + 1, '\0');
        std::snprintf(buf.data(), buf.size(), fmt.c_str(), d);
        buf.resize(static_cast<size_t>(n));
        out += buf;
        break;
      }
    }
  }
  if (next < args.size()) {
    return ValueError(static_cast<int>(next), "the format string has " + std::to_string(next - 1) +
                                                  " verbs but " + std::to_string(args.size() - 1) +
                                                  " values were given; remove this value or add a verb");
  }
  return FunctionResult::Ok(Value::String(std::move(out)));
}

// ------------------------------------------------------------------ others

std::set<uint32_t> CodePointSet(std::string_view s) {
  std::set<uint32_t> set;
  for (std::string_view cp : CodePoints(s)) set.insert(DecodeCodePoint(cp));
  return set;
}

template <typename Pred>
std::string TrimIf(std::string_view s, Pred drop) {
  std::vector<std::string_view> cps = CodePoints(s);
  size_t b = 0;
  size_t e = cps.size();
  while (b < e && drop(DecodeCodePoint(cps[b]))) ++b;
  while (e > b && drop(DecodeCodePoint(cps[e - 1]))) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return out;
}

FunctionResult Replace(const CallContext&, std::span<const Value> args) {
  const std::string& s = args[0].as_string();
  const std::string& sub = args[1].as_string();
  const std::string& repl = args[2].as_string();
  if (sub.size() >= 2 && sub.front() == '/' && sub.back() == '/') {
    std::unique_ptr<const Regex> re;
    if (auto err = CompileRegex(1, Value::String(sub.substr(1, sub.size() - 2)).WithSensitive(args[1].sensitive()), re))
      return *err;
    if (auto err = CheckSubject(0, s)) return *err;
    std::string out;
    size_t copied = 0;  // s[0, copied) is in out
    bool ok = re->ForEachMatch(s, SIZE_MAX, true, [&](Regex::Groups groups) {
      size_t begin = static_cast<size_t>(groups[0].data() - s.data());
      out.append(s, copied, begin - copied);
      Expand(out, repl, *re, groups);
      copied = begin + groups[0].size();
    });
    if (!ok) return TooMuchWork(0, *re, s);
    out.append(s, copied);
    return FunctionResult::Ok(Value::String(std::move(out)));
  }
  if (sub.empty()) {
    return ValueError(1, "the substring to replace is empty; give the text to look for, or /regex/");
  }
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(sub, pos);
    if (hit == std::string::npos) break;
    out.append(s, pos, hit - pos);
    out += repl;
    pos = hit + sub.size();
  }
  out.append(s, pos);
  return FunctionResult::Ok(Value::String(std::move(out)));
}

FunctionResult Split(const CallContext&, std::span<const Value> args) {
  const std::string& sep = args[0].as_string();
  const std::string& s = args[1].as_string();
  ValueList parts;
  if (sep.empty()) {
    for (std::string_view cp : CodePoints(s)) parts.push_back(Value::String(std::string(cp)));
    return FunctionResult::Ok(Value::List(std::move(parts)));
  }
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(sep, pos);
    if (hit == std::string::npos) break;
    parts.push_back(Value::String(s.substr(pos, hit - pos)));
    pos = hit + sep.size();
  }
  parts.push_back(Value::String(s.substr(pos)));
  return FunctionResult::Ok(Value::List(std::move(parts)));
}

FunctionResult Join(const CallContext&, std::span<const Value> args) {
  const std::string& sep = args[0].as_string();
  std::string out;
  const ValueList& items = args[1].as_list();
  for (size_t i = 0; i < items.size(); ++i) {
    if (items[i].kind() != Value::Kind::String) {
      return TypeError(1, "element " + std::to_string(i) + " of the list is " + KindName(items[i]) +
                              ", but 'join' needs strings; convert it with 'tostring'");
    }
    if (i) out += sep;
    out += items[i].as_string();
  }
  return FunctionResult::Ok(Value::String(std::move(out)));
}

FunctionResult Substr(const CallContext&, std::span<const Value> args) {
  std::vector<std::string_view> cps = CodePoints(args[0].as_string());
  const int64_t n = static_cast<int64_t>(cps.size());
  std::optional<int64_t> offset = IntIn(args[1], -n, n);
  if (!offset) {
    return ValueError(1, "offset " + Describe(args[1]) + " is outside the string, which has " +
                             std::to_string(n) + " characters; use an offset from " + std::to_string(-n) +
                             " to " + std::to_string(n));
  }
  std::optional<int64_t> length = IntIn(args[2], -1, INT64_MAX / 2);
  if (!length) return ValueError(2, "length must be -1 (to the end) or at least 0, got " + Describe(args[2]));
  int64_t begin = *offset < 0 ? n + *offset : *offset;
  int64_t end = *length < 0 ? n : std::min(n, begin + *length);
  std::string out;
  for (int64_t i = begin; i < end; ++i) out += cps[static_cast<size_t>(i)];
  return FunctionResult::Ok(Value::String(std::move(out)));
}

FunctionResult RegexFn(const CallContext&, std::span<const Value> args) {
  std::unique_ptr<const Regex> re;
  if (auto err = CompileRegex(0, args[0], re)) return *err;
  MatchShape shape;
  if (auto err = ShapeOf(*re, shape)) return *err;
  const std::string& s = args[1].as_string();
  if (auto err = CheckSubject(1, s)) return *err;
  std::optional<Value> first;
  bool ok = re->ForEachMatch(s, 1, shape != MatchShape::String,
                             [&](Regex::Groups groups) { first = MatchValue(*re, shape, groups); });
  if (!ok) return TooMuchWork(1, *re, s);
  if (!first) {
    return ValueError(1, "the regular expression " + Describe(args[0]) +
                             " does not match the string; use 'regexall' when no match is acceptable");
  }
  return FunctionResult::Ok(std::move(*first));
}

FunctionResult RegexAll(const CallContext&, std::span<const Value> args) {
  std::unique_ptr<const Regex> re;
  if (auto err = CompileRegex(0, args[0], re)) return *err;
  MatchShape shape;
  if (auto err = ShapeOf(*re, shape)) return *err;
  const std::string& s = args[1].as_string();
  if (auto err = CheckSubject(1, s)) return *err;
  ValueList out;
  bool ok = re->ForEachMatch(s, SIZE_MAX, shape != MatchShape::String,
                             [&](Regex::Groups groups) { out.push_back(MatchValue(*re, shape, groups)); });
  if (!ok) return TooMuchWork(1, *re, s);
  return FunctionResult::Ok(Value::List(std::move(out)));
}

FunctionResult Indent(const CallContext&, std::span<const Value> args) {
  std::optional<int64_t> spaces = IntIn(args[0], 0, 1024);
  if (!spaces) return ValueError(0, "the number of spaces must be from 0 to 1024, got " + Describe(args[0]));
  const std::string pad(static_cast<size_t>(*spaces), ' ');
  std::string out;
  for (char c : args[1].as_string()) {
    out += c;
    if (c == '\n') out += pad;
  }
  return FunctionResult::Ok(Value::String(std::move(out)));
}

FunctionResult Chomp(const CallContext&, std::span<const Value> args) {
  std::string s = args[0].as_string();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return FunctionResult::Ok(Value::String(std::move(s)));
}

FunctionResult Strrev(const CallContext&, std::span<const Value> args) {
  std::vector<std::string_view> cps = CodePoints(args[0].as_string());
  std::string out;
  out.reserve(args[0].as_string().size());
  for (auto it = cps.rbegin(); it != cps.rend(); ++it) out += *it;
  return FunctionResult::Ok(Value::String(std::move(out)));
}

using Impl = std::function<FunctionResult(const CallContext&, std::span<const Value>)>;

// A function of one string returning a string.
Impl StringMap(std::string (*f)(std::string_view)) {
  return [f](const CallContext&, std::span<const Value> args) {
    return FunctionResult::Ok(Value::String(f(args[0].as_string())));
  };
}

}  // namespace

void RegisterStringFunctions(std::vector<FunctionDef>& out) {
  const Type S = Type::String();
  const Type I = Type::Int();
  const Type B = Type::Bool();

  out.push_back({"upper",
                 "string",
                 "upper(s string) string",
                 "converts letters to upper case",
                 1,
                 1,
                 {S},
                 Returns(S),
                 StringMap([](std::string_view s) { return MapCodePoints(s, ToUpper); })});
  out.push_back({"lower",
                 "string",
                 "lower(s string) string",
                 "converts letters to lower case",
                 1,
                 1,
                 {S},
                 Returns(S),
                 StringMap([](std::string_view s) { return MapCodePoints(s, ToLower); })});
  out.push_back({"title",
                 "string",
                 "title(s string) string",
                 "converts the first letter of every word to upper case",
                 1,
                 1,
                 {S},
                 Returns(S),
                 StringMap([](std::string_view s) {
                   bool word = false;
                   return MapCodePoints(s, [&word](uint32_t c) {
                     uint32_t r = word ? c : ToUpper(c);
                     word = IsWordChar(c);
                     return r;
                   });
                 })});
  out.push_back({"trim",
                 "string",
                 "trim(s string, chars string) string",
                 "removes the given characters from both ends of a string",
                 2,
                 2,
                 {S, S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   std::set<uint32_t> set = CodePointSet(args[1].as_string());
                   return FunctionResult::Ok(Value::String(
                       TrimIf(args[0].as_string(), [&](uint32_t c) { return set.count(c) > 0; })));
                 }});
  out.push_back({"trimprefix",
                 "string",
                 "trimprefix(s string, prefix string) string",
                 "removes a prefix once, if the string starts with it",
                 2,
                 2,
                 {S, S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   std::string_view s = args[0].as_string();
                   if (s.starts_with(args[1].as_string())) s.remove_prefix(args[1].as_string().size());
                   return FunctionResult::Ok(Value::String(std::string(s)));
                 }});
  out.push_back({"trimsuffix",
                 "string",
                 "trimsuffix(s string, suffix string) string",
                 "removes a suffix once, if the string ends with it",
                 2,
                 2,
                 {S, S},
                 Returns(S),
                 [](const CallContext&, std::span<const Value> args) {
                   std::string_view s = args[0].as_string();
                   if (s.ends_with(args[1].as_string())) s.remove_suffix(args[1].as_string().size());
                   return FunctionResult::Ok(Value::String(std::string(s)));
                 }});
  out.push_back({"trimspace",
                 "string",
                 "trimspace(s string) string",
                 "removes Unicode white space from both ends of a string",
                 1,
                 1,
                 {S},
                 Returns(S),
                 StringMap([](std::string_view s) { return TrimIf(s, IsSpace); })});
  out.push_back({"replace",
                 "string",
                 "replace(s string, substr string, replacement string) string",
                 "replaces every occurrence of a substring, or of a /regex/",
                 3,
                 3,
                 {S, S, S},
                 Returns(S),
                 Replace});
  out.push_back({"split",
                 "string",
                 "split(separator string, s string) list(string)",
                 "splits a string at every occurrence of the separator",
                 2,
                 2,
                 {S, S},
                 Returns(Type::List(S)),
                 Split});
  out.push_back({"join",
                 "string",
                 "join(separator string, list list(string)) string",
                 "concatenates the strings of a list with the separator between them",
                 2,
                 2,
                 {S, Type::List(S)},
                 Returns(S),
                 Join});
  out.push_back({"format",
                 "string",
                 "format(spec string, values any...) string",
                 "formats values printf-style with %s, %d, %f, %v, %q and %%",
                 1,
                 SIZE_MAX,
                 {S, Type::Any()},
                 Returns(S),
                 Format});
  out.push_back({"substr",
                 "string",
                 "substr(s string, offset int, length int) string",
                 "extracts `length` characters starting at `offset` (negative: from the end)",
                 3,
                 3,
                 {S, I, I},
                 Returns(S),
                 Substr});
  out.push_back({"strlen",
                 "string",
                 "strlen(s string) int",
                 "the number of characters (code points) in a string",
                 1,
                 1,
                 {S},
                 Returns(I),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(Value::Number(CountCodePoints(args[0].as_string())));
                 }});
  out.push_back({"startswith",
                 "string",
                 "startswith(s string, prefix string) bool",
                 "whether a string starts with the prefix",
                 2,
                 2,
                 {S, S},
                 Returns(B),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(
                       Value::Bool(std::string_view(args[0].as_string()).starts_with(args[1].as_string())));
                 }});
  out.push_back({"endswith",
                 "string",
                 "endswith(s string, suffix string) bool",
                 "whether a string ends with the suffix",
                 2,
                 2,
                 {S, S},
                 Returns(B),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(
                       Value::Bool(std::string_view(args[0].as_string()).ends_with(args[1].as_string())));
                 }});
  out.push_back({"strcontains",
                 "string",
                 "strcontains(s string, substr string) bool",
                 "whether a string contains the substring",
                 2,
                 2,
                 {S, S},
                 Returns(B),
                 [](const CallContext&, std::span<const Value> args) {
                   return FunctionResult::Ok(
                       Value::Bool(args[0].as_string().find(args[1].as_string()) != std::string::npos));
                 }});
  out.push_back({"regex",
                 "string",
                 "regex(pattern string, s string) any",
                 "the first match of a regular expression: a string, or its capture groups as a list or an object",
                 2,
                 2,
                 {S, S},
                 Returns(Type::Any()),
                 RegexFn});
  out.push_back({"regexall",
                 "string",
                 "regexall(pattern string, s string) list(any)",
                 "every match of a regular expression, each shaped as in 'regex'",
                 2,
                 2,
                 {S, S},
                 Returns(Type::List(Type::Any())),
                 RegexAll});
  out.push_back({"indent",
                 "string",
                 "indent(spaces int, s string) string",
                 "adds spaces at the start of every line except the first",
                 2,
                 2,
                 {I, S},
                 Returns(S),
                 Indent});
  out.push_back({"chomp",
                 "string",
                 "chomp(s string) string",
                 "removes newlines at the end of a string",
                 1,
                 1,
                 {S},
                 Returns(S),
                 Chomp});
  out.push_back({"strrev",
                 "string",
                 "strrev(s string) string",
                 "reverses the characters of a string",
                 1,
                 1,
                 {S},
                 Returns(S),
                 Strrev});
}

}  // namespace plinth::fn_internal
