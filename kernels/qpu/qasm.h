// The OpenQASM 2 front end: text -> Circuit (kernels/qpu/circuit.h).
//
// A hand-written lexer and recursive-descent parser for OpenQASM 2.0
// (docs/qpu.md lists the subset): the header, include "qelib1.inc" (its
// gates are built in), qreg/creg, gate and opaque declarations, gate
// application with register broadcast, parameter expressions, measure,
// reset, barrier and if. User gates are expanded while parsing, so the
// result is a flat list of primitive operations.
//
// Never throws and never crashes on any input: every problem is a located
// ParseError (line and column are 1-based; columns count bytes), and parsing
// recovers at the next ';' to report further errors (at most kMaxErrors).
// Expression nesting, gate-definition nesting, qubit and bit counts and the
// expanded operation count are bounded (docs/qpu.md, "Limits").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kernels/qpu/circuit.h"

namespace plinth::qpu {

struct ParseError {
  uint32_t line = 0, col = 0;
  std::string message;  // what is wrong: lowercase, no trailing period
  std::string hint;     // how to fix it; may be empty
};

struct ParseResult {
  Circuit circuit;  // complete only when errors is empty
  std::vector<ParseError> errors;
};

inline constexpr size_t kMaxErrors = 20;
inline constexpr int kMaxExpressionDepth = 200;
inline constexpr int kMaxGateDepth = 200;

ParseResult ParseQasm(std::string_view text);

// `FILE:LINE:COL: error: MESSAGE`, the source line with a caret under the
// column, and `help: HINT` when there is one.
std::string FormatError(const ParseError& error, std::string_view file, std::string_view text);

// The matrix of a named single-qubit gate of qelib1.inc with its parameters
// (for tests and benchmarks): false for an unknown name or a wrong
// parameter count. Conventions are qiskit's: u1(l) = diag(1, e^{il}),
// rz(t) = diag(e^{-it/2}, e^{it/2}), U = u3.
bool GateMatrix(std::string_view name, const std::vector<double>& params, Matrix2* out);

}  // namespace plinth::qpu
