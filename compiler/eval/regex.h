// Regular expressions for the builtin functions `regex`, `regexall` and
// `replace` (functions_string.cpp) and for rules (compiler/rules,
// `length(regexall(...))`): RE2, whose syntax is that of Go's regexp package,
// the one Terraform's functions use. docs/functions.md ("Regular expressions")
// is the specification of the syntax and of the limits below.
//
// RE2 never backtracks: one search takes time linear in the subject, times
// at most the size of the compiled program. What remains is bounded here so
// that no call can use unbounded memory or run for more than seconds:
//  - the program: patterns are at most kMaxRegexPattern bytes and RE2's
//    memory (program and DFA cache) is capped at kRegexMaxMem, so a huge
//    program (`\pL{1000}`) is a compile error, not an out-of-memory;
//  - repeated searches: finding every match (regexall, replace, rules)
//    restarts the search after each match, and a search may read to the end
//    of the subject before it settles on a short match (`x*y|x` on "xxx…"),
//    so iterating is quadratic in the worst case — in Go and Rust as here.
//    Every search is charged (bytes it may read) × (program size) against
//    kRegexWorkLimit before it runs; a call that would exceed it fails. The
//    program size bounds the per-byte work of every RE2 engine, including
//    the NFA RE2 falls back to when a pattern's DFA explodes
//    (`[ab]*a[ab]{1000}c|...`), which is the slowest case: about 6 s at the
//    limit on a loaded 2-core machine; typical patterns run on the DFA, 10-20
//    times faster.
// A Regex is immutable after Compile and may be used by several threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace plinth {

inline constexpr size_t kMaxRegexPattern = 4 * 1024;       // bytes of pattern text
inline constexpr size_t kMaxRegexSubject = 1024 * 1024;    // bytes of subject
inline constexpr int64_t kRegexMaxMem = 8 << 20;           // RE2::Options::max_mem
inline constexpr uint64_t kRegexWorkLimit = uint64_t{1} << 30;  // instructions × bytes, see above

class Regex {
 public:
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // The compiled pattern, or null with `error` set to the reason, worded for
  // a diagnostic: RE2's own text ("missing ): (a"), with a hint where the
  // pattern uses a feature of other syntaxes that RE2 lacks (lookaround,
  // backreferences, `(?<name>...)`). Never logs.
  static std::unique_ptr<const Regex> Compile(std::string_view pattern, std::string& error);

  const std::string& pattern() const;
  // The number of capture groups, and their names by group number (index 0,
  // the whole match, and unnamed groups are "").
  size_t group_count() const { return names_.size() - 1; }
  const std::vector<std::string>& group_names() const { return names_; }
  // Whether some groups are named and others not: `regex` and `regexall`
  // reject such patterns, as Terraform does (a match would be neither a list
  // nor an object), and so do rules.
  bool MixesNamedAndUnnamedGroups() const;
  // The instructions of the compiled program: the per-byte cost of a search.
  uint64_t cost() const { return cost_; }

  // One match: groups[0] is the whole match and groups[i] capture group i, as
  // views into the subject; a group that did not take part has a null data().
  using Groups = std::span<const std::string_view>;

  // Visits the successive non-overlapping matches in `s`, leftmost first, as
  // Go's FindAll and ReplaceAll do: after an empty match the search resumes
  // one code point later, and an empty match right where the previous match
  // ended is skipped. Visits at most `max_matches`; only groups[0] is set
  // unless `want_groups`. Returns false when a search would exceed
  // kRegexWorkLimit (or `s` is over kMaxRegexSubject); the matches visited
  // until then are a prefix of the result, which callers discard.
  bool ForEachMatch(std::string_view s, size_t max_matches, bool want_groups,
                    const std::function<void(Groups)>& visit) const;

  // The number of matches ForEachMatch visits, or -1 when it returns false.
  int64_t CountMatches(std::string_view s) const;

 private:
  Regex() = default;
  std::unique_ptr<const re2::RE2> re_;
  std::vector<std::string> names_;
  uint64_t cost_ = 1;
};

}  // namespace plinth
