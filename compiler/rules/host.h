// Host helpers: the only functions generated rule code may call, and the same
// functions the interpreter calls, so string and regex results cannot differ
// between the two back ends.
//
// The JIT makes exactly HostSymbols() visible to generated code (plus the C
// library's fmod/memset/memcpy/memmove, which LLVM itself emits); no other
// process symbol resolves. Helpers never throw and never allocate on success
// paths except inside std::regex.
#pragma once

#include <cstdint>
#include <regex>
#include <string_view>
#include <vector>

#include "compiler/rules/strings.h"

namespace plinth::rules {

// What helpers need besides their arguments. Owned by the evaluating call;
// read-only while rules run, so evaluations on different threads are safe.
struct HostContext {
  const StringPool* strings = nullptr;
  const std::regex* regexes = nullptr;  // by pattern index
  size_t regex_count = 0;
  // Filled in by the JIT (JitProgram), never by callers: per string table of
  // the program (StringTables in orc_jit.h), the helper's result for every
  // string id of the pool.
  const double* const* tables = nullptr;
};

// Limits shared with the builtin regex functions (compiler/eval).
inline constexpr size_t kMaxRegexPattern = 4 * 1024;
inline constexpr size_t kMaxRegexSubject = 16 * 1024;

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
// length(regexall(pattern, s)); -1 when the match cannot be computed (the
// subject is over kMaxRegexSubject, or std::regex gave up).
double plinth_rules_regex_count(const plinth::rules::HostContext* ctx, uint32_t pattern, uint32_t s);
}
