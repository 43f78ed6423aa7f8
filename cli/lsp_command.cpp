// plinth lsp: the language server on stdin/stdout (docs/editor.md). The
// server itself (lsp/) knows only the compiler; this file hands it the
// built-in provider schemas and the loader of out-of-process providers.
#include <unistd.h>

#include <cstdio>

#include "cli/commands.h"
#include "lsp/server.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"

namespace plinth::cli {

int Lsp(const Options& o, const VariableSources& vars) {
  if (!o.paths.empty()) {
    std::fprintf(stderr, "plinth lsp: takes no arguments (it talks LSP on stdin and stdout)\n");
    return 2;
  }
  if (::isatty(STDIN_FILENO)) {
    std::fprintf(stderr,
                 "plinth lsp: the language server speaks LSP on stdin/stdout; start it from an editor "
                 "(docs/editor.md)\n");
  }
  lsp::ServerOptions options;
  options.schemas = &runtime::BuiltinSchemas();
  options.version = kVersion;
  options.variable_sources = vars;
  options.resolver_for = [](const std::string& dir) -> std::unique_ptr<ProviderResolver> {
    return std::make_unique<runtime::ExternalProviders>(dir);
  };
  // Nothing but the protocol may reach stdout: anything else printed by
  // accident goes to stderr.
  int out = ::dup(STDOUT_FILENO);
  if (out < 0 || ::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) {
    std::perror("plinth lsp: dup");
    return 1;
  }
  return lsp::Serve(STDIN_FILENO, out, options);
}

}  // namespace plinth::cli
