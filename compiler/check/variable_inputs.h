// Root variable values from outside the configuration: the environment,
// variables files and --var options (docs/language.md, "Where values come
// from", and docs/cli.md, "Variable values").
//
// Input: the sources as the command line and the environment give them.
// Output: for each variable name the value from the source with the highest
// precedence, and where it came from. Variables files are read into the
// caller's SourceManager, so their diagnostics and the checker's type errors
// point at file:line:col.
//
// Invariants:
//  * Nothing here reads the process environment: the caller passes the
//    PLINTH_VAR_ values, so a check stays a function of its inputs.
//  * A variables file holds only `NAME = EXPRESSION` assignments whose
//    expressions are constant (literals, operators and function calls over
//    literals); a reference or a block is an error.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/source/source.h"
#include "compiler/types/types.h"

namespace plinth {

// One --var NAME=VALUE or --var-file=FILE, kept in command-line order.
struct VariableArgument {
  bool is_file = false;
  std::string name;  // --var only
  std::string text;  // --var: VALUE; --var-file: the file's path
};

// The names of the variables files loaded from the configuration directory.
inline constexpr const char* kDefaultVarsFile = "plinth.plinthvars";
inline constexpr const char* kAutoVarsSuffix = ".auto.plinthvars";

struct VariableSources {
  // PLINTH_VAR_NAME=TEXT from the environment, as {NAME, TEXT}.
  std::vector<std::pair<std::string, std::string>> environment;
  // Load plinth.plinthvars, then *.auto.plinthvars in byte-wise name order,
  // from the configuration directory.
  bool auto_files = false;
  std::vector<VariableArgument> arguments;

  bool empty() const { return environment.empty() && !auto_files && arguments.empty(); }
};

// Lowest precedence first.
enum class VariableOrigin : uint8_t { Environment, AutoFile, Argument };

struct VariableInput {
  Value value;
  // The text of a --var or PLINTH_VAR_ value (empty for files): a variable of
  // type string takes it verbatim, so `--var version=1.10` is "1.10".
  std::string text;
  bool has_text = false;
  // The value and the name of the assignment in a variables file; invalid
  // for --var and the environment.
  Range range;
  Range name_range;
  // How a diagnostic names the source: "--var name", "PLINTH_VAR_name", or
  // the variables file's path.
  std::string source;
  VariableOrigin origin = VariableOrigin::Argument;
};

// Reads every source, lowest precedence first (environment, plinth.plinthvars,
// *.auto.plinthvars, then the arguments in order), later values replacing
// earlier ones. Problems in variables files are reported to `diags`.
std::map<std::string, VariableInput> GatherVariableInputs(const std::string& config_dir,
                                                          const VariableSources& in, SourceManager& sources,
                                                          Diagnostics& diags);

// The value of a --var or environment text when the variable's type is not
// known: a constant expression's value, else the text as a string.
Value ValueOfText(const std::string& text);

}  // namespace plinth
