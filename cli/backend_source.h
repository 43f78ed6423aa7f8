// The state backend a command uses (docs/state.md, "Backends"): --backend,
// else PLINTH_BACKEND, else the root module's `backend` block
// (compiler/check/backend_block.h), else the SQLite file of the workspace.
#pragma once

#include <string>

#include "cli/commands.h"

namespace plinth::cli {

// Reads the `backend` block of the configuration directory's own *.plinth
// files (only files that have a top-level `backend` are parsed) and exports
// it as PLINTH_BACKEND for the state layer, unless --backend or
// PLINTH_BACKEND is set. False with *error ("FILE:LINE:COL: what; how to
// fix") when the block is invalid or given twice.
bool UseBackendBlock(const Options& o, std::string* error);

}  // namespace plinth::cli
