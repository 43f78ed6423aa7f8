#include "cli/backend_source.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <variant>
#include <vector>

#include "cli/git_source.h"
#include "cli/workspace.h"
#include "compiler/check/backend_block.h"
#include "compiler/syntax/parse.h"

namespace plinth::cli {
namespace fs = std::filesystem;

namespace {

// Whether `text` has a line that starts (after blanks) with the word backend.
bool MentionsBackend(const std::string& text) {
  for (size_t pos = text.find("backend"); pos != std::string::npos; pos = text.find("backend", pos + 1)) {
    size_t start = pos;
    while (start > 0 && (text[start - 1] == ' ' || text[start - 1] == '\t')) --start;
    const bool line_start = start == 0 || text[start - 1] == '\n';
    const char after = pos + 7 < text.size() ? text[pos + 7] : '\n';
    if (line_start && (after == ' ' || after == '\t' || after == '"')) return true;
  }
  return false;
}

}  // namespace

bool UseBackendBlock(const Options& o, std::string* error) {
  if (!o.backend.empty()) return true;
  if (const char* env = std::getenv("PLINTH_BACKEND"); env && *env) return true;
  // The configuration directory as the commands take it: --git's tree, --dir,
  // the DIR argument (plan DIR), or the working directory.
  std::error_code ec;
  std::string dir = ".";
  if (o.from_git) {
    dir = ConfigDirOf(o);
  } else if (!o.dir.empty()) {
    dir = o.dir;
  } else if (!o.paths.empty() && fs::is_directory(o.paths[0], ec)) {
    dir = o.paths[0];
  }
  if (!fs::is_directory(dir, ec)) return true;
  std::vector<fs::path> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".plinth" && it->is_regular_file(ec)) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  std::optional<BackendSetting> found;
  std::string found_at;
  FileId id = 1;
  for (const fs::path& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!MentionsBackend(text)) continue;
    SourceFile source(id++, path.string(), std::move(text));
    Diagnostics diags;
    ast::File file = Parse(source, diags);
    for (const ast::Block& b : file.body.blocks) {
      if (b.type != "backend") continue;
      auto where = [&](const Range& r) {
        LineCol lc = source.Position(r.begin);
        return path.string() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column);
      };
      if (found) {
        *error = where(b.type_range) + ": a configuration has one backend block (another is at " + found_at +
                 "); remove one of them";
        return false;
      }
      auto read = ReadBackendBlock(b);
      if (auto* problem = std::get_if<BackendProblem>(&read)) {
        *error = where(problem->range) + ": " + problem->message + "; " + problem->help;
        return false;
      }
      found = std::get<BackendSetting>(read);
      found_at = where(b.type_range);
    }
  }
  if (found) ::setenv("PLINTH_BACKEND", found->BackendUrl().c_str(), 1);
  return true;
}

}  // namespace plinth::cli
