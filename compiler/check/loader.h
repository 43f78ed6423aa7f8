// Loading configuration directories: every *.plinth file of a directory is
// read and parsed (files in parallel), once per directory per run.
#pragma once

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
  std::vector<ast::File> files;
  bool has_errors = false;
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
               const std::map<std::string, std::string>* overlay = nullptr);

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
  std::map<std::string, std::unique_ptr<Module>> cache_;
};

// Parses `files` (already added to the SourceManager) in parallel.
std::vector<ast::File> ParseFiles(const std::vector<const SourceFile*>& files, Diagnostics& diags, unsigned threads);

}  // namespace plinth
