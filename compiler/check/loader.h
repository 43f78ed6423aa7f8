// Loading configuration directories: every *.plinth file of a directory is
// read and parsed (files in parallel), once per directory per run.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"

namespace plinth {

inline constexpr size_t kMaxFileBytes = size_t{64} << 20;

struct Module {
  std::string dir;  // canonical path
  std::vector<std::shared_ptr<const ast::File>> files;
  bool has_errors = false;
};

// Parsed files kept from one check to the next (the language server's): a
// file whose shown path and text are unchanged since the last check is not
// parsed again; its syntax errors are reported again from the cache. The
// trees point into the cache's SourceManager, which must be the one given to
// every Check that uses the cache (CheckOptions::parse_cache). Not
// thread-safe: one check at a time.
class ParseCache {
 public:
  ParseCache();
  ~ParseCache();
  SourceManager& sources() { return *sources_; }
  // Call before each check: Used() then lists what that check read.
  void BeginCheck() { used_.clear(); }
  const std::vector<FileId>& Used() const { return used_; }
  // Bytes of text held for files whose text has since changed (they stay in
  // the SourceManager, which never forgets a file). The owner starts a new
  // cache when this grows past what it wants to keep.
  size_t stale_bytes() const { return stale_bytes_; }
  size_t live_bytes() const { return live_bytes_; }

 private:
  friend class ModuleLoader;
  struct Entry {
    std::string text;
    const SourceFile* source = nullptr;
    std::shared_ptr<const ast::File> tree;
    std::vector<Diagnostic> diags;  // the file's lexical and syntax errors
  };
  std::unique_ptr<SourceManager> sources_;
  std::map<std::string, Entry> entries_;  // by shown path
  std::vector<FileId> used_;
  size_t stale_bytes_ = 0, live_bytes_ = 0;
};

class ModuleLoader {
 public:
  // `threads` == 0 uses one thread per hardware core.
  // `display_root`: files under it are named relative to it (a git tree:
  // "envs/prod/main.plinth"); empty or for other files: relative to the
  // working directory when they are under it.
  // `overlay` (may be null): file texts that replace what is on disk, by
  // absolute path (an editor's unsaved buffers); a path in it that is not on
  // disk is part of its directory. `display_root` "/" names every file by
  // its absolute path.
  ModuleLoader(SourceManager& sources, Diagnostics& diags, unsigned threads = 0, std::string display_root = "",
               const std::map<std::string, std::string>* overlay = nullptr, ParseCache* parse_cache = nullptr);

  // Loads `dir` (cached by canonical path). Returns null and reports P0207 /
  // P0110 / P0212 at `requested_at` when it cannot be read or holds no file.
  // `shown` is how errors name the directory (a module source as written);
  // empty: the path itself.
  const Module* Load(const std::string& dir, Range requested_at, const std::string& shown = "");

  // The directory of the standard library (`std/...` module sources):
  // $PLINTH_STDLIB, else <binary>/../share/plinth/stdlib, else the source tree's.
  static std::string StdlibDir();

 private:
  SourceManager& sources_;
  Diagnostics& diags_;
  unsigned threads_;
  std::string display_root_;
  const std::map<std::string, std::string>* overlay_ = nullptr;
  ParseCache* parse_cache_ = nullptr;
  std::map<std::string, std::unique_ptr<Module>> cache_;
};

// Parses `files` (already added to the SourceManager) in parallel. With
// `per_file`, each file's diagnostics also go to per_file[i].
std::vector<ast::File> ParseFiles(const std::vector<const SourceFile*>& files, Diagnostics& diags, unsigned threads,
                                  std::deque<Diagnostics>* per_file = nullptr);

}  // namespace plinth
