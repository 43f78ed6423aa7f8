// The source formatter behind `plinth fmt`: Plinth text -> canonical Plinth text.
//
// Input: one SourceFile. A file that does not lex and parse cleanly is never
// rewritten: Format returns nullopt and the syntax errors are in the sink.
//
// Output: the canonical text (style rules in docs/fmt.md): 2-space indentation
// by bracket nesting (+1 for continuation lines of an expression), one space
// around operators, `=`, `=>`, `?`, `:`, after commas and inside one-line
// `{ ... }`, none inside `()` `[]` or before `.` `(` `[` of calls and indexes,
// `=` and end-of-line comments aligned in runs of one-line attributes, runs of
// blank lines collapsed, one final newline.
//
// Invariants:
//   * Only whitespace between tokens changes. Strings, heredocs (bodies and
//     terminators included) and comments are copied byte for byte. The only
//     exceptions are trailing blanks (and a CRLF file's '\r') at the end of a
//     line comment and after a heredoc's `<<EOT`, which are dropped. Format
//     checks this on every run by lexing its output and comparing token texts
//     with the input's; on a mismatch (a formatter bug) it returns the input
//     unchanged, so user code is never lost.
//   * The line structure is kept: a line break between two tokens stays a line
//     break and none is added, so the layout depends only on the token
//     sequence and where lines break. That makes Format idempotent:
//     Format(Format(x)) == Format(x).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "compiler/diag/diagnostic.h"
#include "compiler/source/source.h"

namespace plinth {

// Returns the canonical form of `file`, or nullopt when it has lexical or
// syntax errors (reported to `diags`). `internal_failure`, when given, is set
// to true if the token-preservation check failed and the input was returned
// unchanged (worth reporting as a bug), false otherwise.
std::optional<std::string> Format(const SourceFile& file, Diagnostics& diags,
                                  bool* internal_failure = nullptr);

// True when both texts lex without errors into the same token sequence: same
// kinds and texts, comments included, line comments compared without trailing
// whitespace. This is the check Format applies to its own output.
bool SameTokens(std::string_view before, std::string_view after);

namespace fmt_testing {
// Format with `tamper` applied to the laid-out text before the token check, so
// tests can simulate a layout bug and watch the check refuse it.
std::optional<std::string> FormatTampered(const SourceFile& file, Diagnostics& diags,
                                          const std::function<std::string(std::string)>& tamper,
                                          bool* internal_failure);
}  // namespace fmt_testing

}  // namespace plinth
