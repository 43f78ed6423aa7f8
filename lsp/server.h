// `plinth lsp`: the language server (LSP 3.17 over stdio).
//
// Threads: a reader thread turns the input into a queue of messages; the
// main thread answers requests in order from the Index (syntax only, fast);
// a checker thread runs the full check (compiler/check/checker.h) of the
// module directories that changed, debounced, and pushes diagnostics.
//
// Incremental work: a file is re-parsed only when its text changes (the
// Index caches by content); a check covers the changed file's module (and
// the open modules that call it); a check superseded by a newer edit before
// it finishes is thrown away, and requests superseded by an edit of their
// document or cancelled by `$/cancelRequest` before they ran are answered
// with ContentModified / RequestCancelled without being computed.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "compiler/check/checker.h"
#include "compiler/schema/schema.h"

namespace plinth::lsp {

struct ServerOptions {
  const SchemaRegistry* schemas = nullptr;
  std::string version;
  int debounce_ms = 20;  // wait after an edit before checking (initializationOptions.debounceMs)
  // Root variable values for checks (environment, variables files), as
  // `plinth validate` takes them.
  VariableSources variable_sources;
  // Loads the out-of-process providers a module directory names (null: such
  // providers are reported). Called once per directory; the resolver lives
  // until the server exits.
  std::function<std::unique_ptr<ProviderResolver>(const std::string& dir)> resolver_for;
};

// Serves one client on the two file descriptors until `exit` or the end of
// the input. Returns the process exit code: 0 after shutdown + exit, 1
// otherwise (as the protocol asks).
int Serve(int in_fd, int out_fd, const ServerOptions& options);

}  // namespace plinth::lsp
