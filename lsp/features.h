// The language features: each takes the Index (syntax of the workspace),
// the provider schemas and what the last check evaluated, and answers one
// LSP request with the protocol's JSON.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler/check/checker.h"
#include "compiler/schema/schema.h"
#include "lsp/index.h"

namespace plinth::lsp {

using json = nlohmann::json;

// What a check of one module directory (as the root module) evaluated.
struct Evaluated {
  std::map<std::string, Value> variables, locals, outputs;
  // The check's result; its resource instances are looked up by address (a
  // scan: hovers are rare, an index of 100,000 addresses per edit is not free).
  std::shared_ptr<const CheckedConfig> config;
  const ValueMap* Resource(const std::string& address) const {
    if (config) {
      for (const ResourceInstance& r : config->resources)
        if (r.module.empty() && r.address == address) return &r.attributes;
    }
    return nullptr;
  }
};

struct Context {
  Index& index;
  const SchemaRegistry& schemas;
  Encoding encoding = Encoding::Utf16;
  // The last check's values of a module directory (null: not checked yet).
  std::function<std::shared_ptr<const Evaluated>(const std::string& dir)> evaluated;
};

// `params` is the request's params object; the result is the response's
// `result`. Bad params throw nlohmann::json exceptions (answered as
// InvalidParams by the server).
json Hover(Context& cx, const json& params);
json Completion(Context& cx, const json& params);
json SignatureHelp(Context& cx, const json& params);
json Definition(Context& cx, const json& params);
json References(Context& cx, const json& params);
json PrepareRename(Context& cx, const json& params);
// Throws RenameError for a name that is not an identifier.
json Rename(Context& cx, const json& params);
json DocumentSymbols(Context& cx, const json& params);
json WorkspaceSymbols(Context& cx, const json& params);
json FoldingRanges(Context& cx, const json& params);
json Formatting(Context& cx, const json& params, bool range);
json CodeActions(Context& cx, const json& params);
json InlayHints(Context& cx, const json& params);

struct RenameError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Semantic tokens: the legend announced in `initialize`, and the encoded
// data of one file.
json SemanticTokensLegend();
std::vector<uint32_t> SemanticTokens(const ParsedFile& file, Encoding encoding);

// The quick fixes a diagnostic's help names ("did you mean 'X'?", a string
// that should be quoted, a region to declare), as code actions' edits over
// `text` (the file the diagnostic is in). Attached to published diagnostics
// as `data.fixes`.
json FixesFor(const Diagnostic& d, std::string_view text, const LineIndex& lines, Encoding encoding,
              const std::string& uri);

json ToJson(Position p);
json RangeJson(const LineIndex& lines, Range r, Encoding e);

}  // namespace plinth::lsp
