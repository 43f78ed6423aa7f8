// What the language server knows about the configuration: parsed files
// (cached by content), and per module directory its declarations, the
// references between them and its module calls.
//
// Everything here is built from syntax alone (compiler/syntax/parse.h), so it
// keeps working while a file has syntax errors: the error-tolerant parser
// leaves every block outside the damaged one intact. The checker's results
// (diagnostics, evaluated values) come from lsp/server.cpp's background check.
//
// Not thread-safe: the server's main thread owns the Index.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/source/source.h"
#include "compiler/syntax/ast.h"
#include "compiler/syntax/parse.h"
#include "lsp/text.h"

namespace plinth::lsp {

struct ParsedFile {
  std::string path;  // absolute
  std::string uri;
  std::unique_ptr<SourceFile> source;  // a FileId of the Index's own
  ast::File tree;
  std::vector<Token> tokens;  // comments included
  LineIndex lines;
  uint64_t hash = 0;  // of the text
  bool open = false;  // an editor buffer, not the file on disk

  std::string_view text() const { return source->text(); }
  std::string_view Text(Range r) const { return text().substr(r.begin, r.end - r.begin); }
};

enum class SymbolKind : uint8_t { Variable, Local, Output, Module, Resource };

struct Declaration {
  SymbolKind kind;
  std::string type;  // resource type; empty otherwise
  std::string name;
  const ParsedFile* file = nullptr;
  Range name_range;  // the name itself (inside a label's quotes)
  Range range;       // the whole block, or the attribute of a local
  const ast::Block* block = nullptr;          // null for locals
  const ast::Attribute* attribute = nullptr;  // locals only

  // How references spell it: var.NAME, local.NAME, output.NAME (never
  // referenced), module.NAME, TYPE.NAME.
  std::string Key() const;
};

// `var.region`, `bucket.data[0].path`, `module.net.cidr`: the declaration it
// names (by key) and the name after it, if any (an attribute of a resource,
// an output of a module call).
struct Reference {
  std::string key;
  Range range;  // the declaration's name in the reference (`region` of var.region)
  std::string member;
  Range member_range;  // invalid when there is no member
  Range whole;         // the whole reference
  const ParsedFile* file = nullptr;
};

// `cidr = "10.0.0.0/16"` in `module "net" { ... }`: an argument for the
// called module's variable `cidr`.
struct ModuleArgument {
  std::string call;  // "net"
  std::string name;  // "cidr"
  Range range;       // the attribute's name
  const ParsedFile* file = nullptr;
};

struct ModuleIndex {
  std::string dir;
  std::vector<std::shared_ptr<const ParsedFile>> files;
  std::vector<Declaration> decls;
  std::vector<Reference> refs;
  std::vector<ModuleArgument> args;
  // Module call name -> the absolute directory its source names ("" when
  // the source is not a plain path).
  std::map<std::string, std::string> call_dirs;

  const Declaration* Find(std::string_view key) const;
  const ParsedFile* FileAt(std::string_view path) const;
};

// Calls `visit` with each direct sub-expression of `e`, in source order
// (template parts, call arguments, operands, items, a for's parts...).
void ForEachChild(const ast::Expr& e, const std::function<void(const ast::Expr&)>& visit);

// The language blocks (variable, locals, output, module, provider, ...): a
// top-level block of any other type is a resource.
bool IsLanguageBlock(std::string_view type);
// The roots of references that are not resource types: var, local, module,
// each, count, self, path, value, group, group_key.
bool IsBuiltinRoot(std::string_view name);
// A block label's name: its range without the quotes.
Range LabelName(const ast::Label& label);
// A module source as the checker resolves it, relative to `from_dir`; empty
// when `source` is not a path.
std::string ResolveModuleSource(const std::string& from_dir, const std::string& source);

class Index {
 public:
  // Editor buffers replace files on disk. Returns the parsed buffer.
  const ParsedFile& Open(const std::string& path, std::string text);
  void Close(const std::string& path);
  const std::map<std::string, std::string>& Buffers() const { return buffers_; }

  // The file at `path` (a buffer, else the disk); null when neither has it.
  std::shared_ptr<const ParsedFile> File(const std::string& path);
  // The module in `dir` (buffers and *.plinth files on disk).
  std::shared_ptr<const ModuleIndex> Module(const std::string& dir);

  // Folders searched for modules and symbols (the editor's workspace).
  void SetRoots(std::vector<std::string> roots) { roots_ = std::move(roots); }
  // Every directory under the roots holding .plinth files (hidden folders,
  // node_modules and build outputs skipped; at most kMaxScan directories),
  // plus those of open buffers.
  std::vector<std::string> ModuleDirs();
  // Module calls anywhere in the workspace whose source is `dir`.
  struct Caller {
    std::shared_ptr<const ModuleIndex> module;
    std::string call;
  };
  std::vector<Caller> Callers(const std::string& dir);

  static constexpr size_t kMaxScan = 5000;

 private:
  std::shared_ptr<const ParsedFile> Parse(const std::string& path, std::string text, bool open);

  struct DiskEntry {
    int64_t mtime = 0;
    uintmax_t size = 0;
    std::shared_ptr<const ParsedFile> file;
  };
  std::map<std::string, std::string> buffers_;
  std::map<std::string, std::shared_ptr<const ParsedFile>> open_;
  std::map<std::string, DiskEntry> disk_;
  struct ModuleEntry {
    std::vector<const ParsedFile*> files;
    std::shared_ptr<const ModuleIndex> index;
  };
  std::map<std::string, ModuleEntry> modules_;
  std::vector<std::string> roots_;
  FileId next_id_ = 0;
};

}  // namespace plinth::lsp
