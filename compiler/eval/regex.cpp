#include "compiler/eval/regex.h"

#include <re2/re2.h>

#include <algorithm>
#include <map>

namespace plinth {
namespace {

// At most `max` bytes of `s`, cut at a code point boundary, with "..." when cut.
std::string Shorten(std::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return std::string(s.substr(0, cut)) + "...";
}

// The first "(?<" that is not escaped, or npos.
size_t FindGroupAngle(std::string_view p) {
  for (size_t i = 0; i + 3 <= p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
      continue;
    }
    if (p.compare(i, 3, "(?<") == 0) return i;
  }
  return std::string_view::npos;
}

// What to do instead, for the features of Perl, PCRE, ECMAScript or newer Go
// that this RE2 rejects; "" when there is nothing to add to RE2's message.
std::string Hint(const re2::RE2& re, std::string_view pattern) {
  const std::string& arg = re.error_arg();
  switch (re.error_code()) {
    case re2::RE2::ErrorBadPerlOp:
      if (arg == "(?=" || arg == "(?!") return "lookahead is not supported (RE2 syntax, as in Go)";
      if (arg == "(?<") {
        size_t at = FindGroupAngle(pattern);
        if (at != std::string_view::npos && at + 3 < pattern.size() && (pattern[at + 3] == '=' || pattern[at + 3] == '!'))
          return "lookbehind is not supported (RE2 syntax, as in Go)";
        return "write a named group as (?P<name>...)";
      }
      return "";
    case re2::RE2::ErrorBadEscape:
      if (arg.size() == 2 && arg[1] >= '1' && arg[1] <= '9') return "backreferences are not supported (RE2 syntax, as in Go)";
      return "";
    case re2::RE2::ErrorRepeatSize: return "a repetition count may be at most 1000, also when nested counts are multiplied";
    case re2::RE2::ErrorPatternTooLarge:
      return "it compiles to more than " + std::to_string(kRegexMaxMem >> 20) +
             " MiB; use smaller counted repetitions or fewer alternatives";
    default: return "";
  }
}

size_t CodePointWidth(std::string_view s, size_t pos) {
  unsigned char c = static_cast<unsigned char>(s[pos]);
  size_t w = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  return std::min(w, s.size() - pos);
}

}  // namespace

Regex::~Regex() = default;

std::unique_ptr<const Regex> Regex::Compile(std::string_view pattern, std::string& error) {
  if (pattern.size() > kMaxRegexPattern) {
    error = "the regular expression is longer than " + std::to_string(kMaxRegexPattern) + " bytes (it has " +
            std::to_string(pattern.size()) + "); use a shorter pattern";
    return nullptr;
  }
  re2::RE2::Options options;  // UTF-8, Perl classes and flags, leftmost-first: Go's defaults
  options.set_log_errors(false);
  options.set_max_mem(kRegexMaxMem);
  auto re = std::make_unique<const re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) {
    error = "invalid regular expression: " + Shorten(re->error(), 120);
    std::string hint = Hint(*re, pattern);
    if (!hint.empty()) error += "; " + hint;
    return nullptr;
  }
  std::unique_ptr<Regex> out(new Regex());
  out->names_.assign(static_cast<size_t>(re->NumberOfCapturingGroups()) + 1, "");
  for (const auto& [index, name] : re->CapturingGroupNames()) out->names_[static_cast<size_t>(index)] = name;
  out->cost_ = static_cast<uint64_t>(std::max(re->ProgramSize(), 1));
  out->re_ = std::move(re);
  return out;
}

const std::string& Regex::pattern() const { return re_->pattern(); }

bool Regex::MixesNamedAndUnnamedGroups() const {
  size_t named = 0;
  for (size_t i = 1; i < names_.size(); ++i) named += names_[i].empty() ? 0 : 1;
  return named > 0 && named < group_count();
}

bool Regex::ForEachMatch(std::string_view s, size_t max_matches, bool want_groups,
                         const std::function<void(Groups)>& visit) const {
  if (s.size() > kMaxRegexSubject) return false;
  if (s.data() == nullptr) s = std::string_view("", 0);  // match offsets are computed from s.data()
  const re2::StringPiece text(s.data(), s.size());
  const int n = want_groups ? static_cast<int>(names_.size()) : 1;
  std::vector<re2::StringPiece> pieces(static_cast<size_t>(n));
  std::vector<std::string_view> groups(static_cast<size_t>(n));
  uint64_t work = 0;
  size_t found = 0;
  size_t pos = 0;
  size_t prev_end = SIZE_MAX;
  while (found < max_matches && pos <= s.size()) {
    // Charged before the search: it may read everything from pos to the end.
    work += (s.size() - pos + 1) * cost_;
    if (work > kRegexWorkLimit) return false;
    if (!re_->Match(text, pos, s.size(), re2::RE2::UNANCHORED, pieces.data(), n)) break;
    const size_t begin = static_cast<size_t>(pieces[0].data() - s.data());
    const size_t end = begin + pieces[0].size();
    bool accept = true;
    if (end == pos) {
      // An empty match at pos: skipped right after the previous match, and
      // the next search starts one code point on.
      if (begin == prev_end) accept = false;
      pos += pos < s.size() ? CodePointWidth(s, pos) : 1;
    } else {
      pos = end;
    }
    prev_end = end;
    if (!accept) continue;
    for (int i = 0; i < n; ++i) {
      const re2::StringPiece& p = pieces[static_cast<size_t>(i)];
      groups[static_cast<size_t>(i)] = p.data() ? std::string_view(p.data(), p.size()) : std::string_view();
    }
    visit(Groups(groups));
    ++found;
  }
  return true;
}

int64_t Regex::CountMatches(std::string_view s) const {
  int64_t count = 0;
  if (!ForEachMatch(s, SIZE_MAX, false, [&](Groups) { ++count; })) return -1;
  return count;
}

}  // namespace plinth
