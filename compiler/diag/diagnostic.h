// Diagnostics: what the compiler tells users about their configuration.
//
// This is the user channel only. Internal invariants use assertions and
// environment failures (a disk error in the CLI) are reported by the CLI;
// neither is ever turned into a Diagnostic. Every stage returns its result and
// appends all the diagnostics it can find to a Diagnostics sink; nothing stops
// at the first error.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/source/source.h"

namespace plinth {

enum class DiagCode : uint16_t {
#define DIAG(code, name, summary) name,
#include "compiler/diag/codes.def"
#undef DIAG
};

struct DiagCodeInfo {
  std::string_view code;     // "P0202"
  std::string_view name;     // "UndefinedReference"
  std::string_view summary;  // one line for docs/diagnostics.md
};
const DiagCodeInfo& Info(DiagCode code);
const std::vector<DiagCode>& AllDiagCodes();

enum class Severity { Error, Warning };

struct DiagNote {
  Range range;  // may be invalid: a note without a location
  std::string message;
};

struct Diagnostic {
  DiagCode code;
  Severity severity = Severity::Error;
  Range range;
  std::string message;  // lowercase, no trailing period, names in 'quotes'
  std::vector<DiagNote> notes;
  std::string help;  // the next step for the user; may be empty
};

// Collects diagnostics. Thread-safe: parallel parsers share one sink.
class Diagnostics {
 public:
  Diagnostic& Error(DiagCode code, Range range, std::string message);
  Diagnostic& Warning(DiagCode code, Range range, std::string message);
  void Append(Diagnostics&& other);

  size_t error_count() const;
  size_t warning_count() const;
  bool has_errors() const { return error_count() > 0; }

  // Sorted by file path, offset and code so output is deterministic.
  std::vector<Diagnostic> Sorted(const SourceManager& sources) const;
  const std::vector<Diagnostic>& items() const { return items_; }

  // A diagnostic made elsewhere (replayed from a cache).
  Diagnostic& Add(Diagnostic d);

 private:
  mutable std::mutex mu_;
  std::vector<Diagnostic> items_;
};

struct RenderOptions {
  bool color = false;
};

// Clang style: `path:line:col: error[P0202]: message`, the source line, a caret
// and tildes under the range, notes, then `help:`.
std::string RenderText(const std::vector<Diagnostic>& diags, const SourceManager& sources,
                       const RenderOptions& options);
// The stable JSON form documented in docs/diagnostics.md (format_version 1).
std::string RenderJson(const std::vector<Diagnostic>& diags, const SourceManager& sources);

}  // namespace plinth
