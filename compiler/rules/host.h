// Host helpers: the only functions generated rule code may call, and the same
// functions the interpreter calls, so string and regex results cannot differ
// between the two back ends.
//
// The JIT makes exactly HostSymbols() visible to generated code (plus the C
// library's fmod/memset/memcpy/memmove, which LLVM itself emits); no other
// process symbol resolves. Helpers never throw and never allocate on success
// paths except inside RE2 (its DFA cache, and the match vector of a search).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "compiler/eval/regex.h"
#include "compiler/rules/strings.h"

namespace plinth::rules {

// What helpers need besides their arguments. Owned by the evaluating call;
// read-only while rules run, so evaluations on different threads are safe.
struct HostContext {
  const StringPool* strings = nullptr;
  const Regex* const* regexes = nullptr;  // by pattern index (CompiledRegexes::data())
  size_t regex_count = 0;
  // Filled in by the JIT (JitProgram), never by callers: per string table of
  // the program (StringTables in orc_jit.h), the helper's result for every
  // string id of the pool.
  const double* const* tables = nullptr;
};

struct HostSymbol {
  const char* name;
  void* address;
};
// The allow-list, by unmangled C name.
const std::vector<HostSymbol>& HostSymbols();

}  // namespace plinth::rules

extern "C" {
// Strings are interned ids. Booleans are returned as 0/1.
uint8_t plinth_rules_startswith(const plinth::rules::HostContext* ctx, uint32_t s, uint32_t prefix);
uint8_t plinth_rules_endswith(const plinth::rules::HostContext* ctx, uint32_t s, uint32_t suffix);
uint8_t plinth_rules_strcontains(const plinth::rules::HostContext* ctx, uint32_t s, uint32_t part);
// Length in code points, like the builtin length() of a string.
double plinth_rules_strlen(const plinth::rules::HostContext* ctx, uint32_t s);
// The number of non-overlapping matches of pattern `pattern` in `s`, like
// length(regexall(pattern, s)); -1 when regexall would fail: the subject is
// over kMaxRegexSubject or matching exceeds kRegexWorkLimit (compiler/eval/regex.h).
double plinth_rules_regex_count(const plinth::rules::HostContext* ctx, uint32_t pattern, uint32_t s);
}
