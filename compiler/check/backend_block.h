// The `backend` block (docs/state.md, "Backends"): where a configuration's
// state lives when it is not the SQLite file of its workspace directory.
//
//   backend "postgres" {
//     url    = "postgres://plinth@db.internal:5432/infra?sslmode=verify-full"
//     schema = "payments"     # optional: the schema prefix (default plinth)
//   }
//
// Only in the root module, at most one, literal strings only (the state is
// opened before anything is evaluated), and never a password: a file kept in
// git is no place for one (PGPASSWORD or ~/.pgpass instead). The checker
// reports problems as diagnostics; the CLI reads the block before it opens
// the state (cli/backend_source.h). --backend and PLINTH_BACKEND take
// precedence over it.
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"

namespace plinth {

struct BackendSetting {
  std::string url;     // as written
  std::string schema;  // the schema prefix; empty: the default
  // The URL Plinth's state layer takes: url with `schema=PREFIX` added.
  std::string BackendUrl() const;
};

struct BackendProblem {
  DiagCode code;
  Range range;
  std::string message;
  std::string help;
};

// The text of a string literal without interpolation; nullopt for anything
// else (also used by the checker for labels-like attributes).
std::optional<std::string> LiteralString(const ast::Expr& e);

// Reads one top-level `backend` block: its settings, or the first problem.
std::variant<BackendSetting, BackendProblem> ReadBackendBlock(const ast::Block& block);

}  // namespace plinth
