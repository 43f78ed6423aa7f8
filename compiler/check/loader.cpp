#include "compiler/check/loader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "compiler/syntax/parse.h"

namespace plinth {

namespace fs = std::filesystem;

ModuleLoader::ModuleLoader(SourceManager& sources, Diagnostics& diags, unsigned threads, std::string display_root,
                           const std::map<std::string, std::string>* overlay, ParseCache* parse_cache)
    : sources_(sources),
      diags_(diags),
      threads_(threads ? threads : std::max(1u, std::thread::hardware_concurrency())),
      display_root_(std::move(display_root)),
      overlay_(overlay),
      parse_cache_(parse_cache) {}

std::string ModuleLoader::StdlibDir() {
  if (const char* env = std::getenv("PLINTH_STDLIB"); env && *env) return env;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path installed = exe.parent_path().parent_path() / "share" / "plinth" / "stdlib";
    if (fs::is_directory(installed, ec)) return installed.string();
  }
#ifdef PLINTH_SOURCE_STDLIB
  return PLINTH_SOURCE_STDLIB;
#else
  return "stdlib";
#endif
}

ParseCache::ParseCache() : sources_(std::make_unique<SourceManager>()) {}
ParseCache::~ParseCache() = default;

std::vector<ast::File> ParseFiles(const std::vector<const SourceFile*>& files, Diagnostics& diags, unsigned threads,
                                  std::deque<Diagnostics>* per_file) {
  std::vector<ast::File> out(files.size());
  if (files.empty()) return out;
  if (per_file) per_file->resize(files.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < files.size(); i = next++) out[i] = Parse(*files[i], per_file ? (*per_file)[i] : diags);
  };
  unsigned n = std::min<unsigned>(threads, static_cast<unsigned>(files.size()));
  if (n <= 1) {
    work();
  } else {
    // Parse() moves to a large-stack thread itself; workers only distribute files.
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < n; ++t) pool.emplace_back(work);
    for (auto& th : pool) th.join();
  }
  if (per_file)
    for (const Diagnostics& d : *per_file)
      for (const Diagnostic& item : d.items()) diags.Add(item);
  return out;
}

const Module* ModuleLoader::Load(const std::string& dir, Range requested_at, const std::string& shown_as) {
  const std::string& name = shown_as.empty() ? dir : shown_as;
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(fs::path(dir), ec);
  std::string key = ec ? dir : canonical.string();
  if (auto it = cache_.find(key); it != cache_.end()) return it->second.get();

  // Unsaved files of the overlay in this directory (none when it is a file).
  std::vector<std::string> overlaid;
  if (overlay_) {
    for (auto it = overlay_->lower_bound(key + "/"); it != overlay_->end() && it->first.rfind(key + "/", 0) == 0; ++it) {
      fs::path p(it->first);
      if (p.parent_path() == fs::path(key) && p.extension() == ".plinth") overlaid.push_back(it->first);
    }
  }
  if (!fs::is_directory(key, ec) && overlaid.empty()) {
    if ((fs::is_regular_file(key, ec) || (overlay_ && overlay_->count(key))) && fs::path(key).extension() == ".plinth") {
      // A single file may be checked on its own.
    } else {
      if (requested_at.valid()) {
        diags_.Error(DiagCode::ModuleNotFound, requested_at, "module source '" + name + "' is not a directory")
            .help = name.rfind("std/", 0) == 0
                        ? "standard modules are in " + StdlibDir() + "/std; check the name"
                        : "relative sources start from the directory of the calling module";
      } else {
        diags_.Error(DiagCode::FileUnreadable, requested_at, "cannot read configuration directory '" + name + "'")
            .help = "pass a directory that holds .plinth files, or a single .plinth file";
      }
      cache_[key] = nullptr;
      return nullptr;
    }
  }

  std::vector<std::string> paths = overlaid;
  bool single_file = overlaid.empty() && !fs::is_directory(key, ec);
  if (single_file) {
    paths.push_back(key);
  } else {
    for (const auto& entry : fs::directory_iterator(key, ec)) {
      if (entry.path().extension() != ".plinth") continue;
      std::error_code type_ec;
      if (entry.is_directory(type_ec)) continue;  // a directory named x.plinth is not a file to read
      // Anything else (a regular file, or a symlink that leads nowhere) is
      // read below, so an unreadable one is reported rather than skipped.
      paths.push_back(entry.path().string());
    }
    std::sort(paths.begin(), paths.end());
    paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  }
  if (paths.empty()) {
    diags_.Error(requested_at.valid() ? DiagCode::ModuleNotFound : DiagCode::NoConfiguration, requested_at,
                 "no .plinth files in '" + name + "'")
        .help = "configuration files end in .plinth";
    cache_[key] = nullptr;
    return nullptr;
  }

  auto module = std::make_unique<Module>();
  module->dir = single_file ? fs::path(key).parent_path().string() : key;
  std::vector<const SourceFile*> files;
  // With a parse cache: files whose text is unchanged keep their tree (by
  // position in `paths`); the others are parsed below and cached.
  // module->files keeps the files' order; parse_slot[i] is where the i-th
  // parsed file goes.
  std::vector<size_t> parse_slot;
  std::vector<std::string> parsed_paths;
  auto add = [&](const std::string& shown, std::string text) {
    if (!parse_cache_) {
      files.push_back(&sources_.Add(shown, std::move(text)));
      parse_slot.push_back(module->files.size());
      module->files.push_back(nullptr);
      return;
    }
    auto it = parse_cache_->entries_.find(shown);
    if (it != parse_cache_->entries_.end() && it->second.text == text) {
      module->files.push_back(it->second.tree);
      for (const Diagnostic& d : it->second.diags) {
        diags_.Add(d);
        if (d.severity == Severity::Error) module->has_errors = true;
      }
      parse_cache_->used_.push_back(it->second.source->id());
      return;
    }
    if (it != parse_cache_->entries_.end()) {
      parse_cache_->stale_bytes_ += it->second.text.size();
      parse_cache_->live_bytes_ -= it->second.text.size();
    }
    parse_cache_->live_bytes_ += text.size();
    const SourceFile& sf = sources_.Add(shown, text);
    parse_cache_->entries_[shown] = {std::move(text), &sf, nullptr, {}};
    parse_cache_->used_.push_back(sf.id());
    files.push_back(&sf);
    parsed_paths.push_back(shown);
    parse_slot.push_back(module->files.size());
    module->files.push_back(nullptr);
  };
  fs::path cwd = fs::current_path(ec);
  for (const std::string& p : paths) {
    // Paths in diagnostics are relative to the display root (a git tree) or
    // the working directory when possible.
    std::string shown = p;
    for (const fs::path& base : {fs::path(display_root_), cwd}) {
      if (base.empty() || display_root_ == "/") continue;
      fs::path rel = fs::absolute(p, ec).lexically_normal().lexically_relative(base);
      if (!rel.empty() && rel.native().rfind("..", 0) != 0) {
        shown = rel.string();
        break;
      }
    }
    if (overlay_) {
      if (auto it = overlay_->find(p); it != overlay_->end()) {
        if (it->second.size() > kMaxFileBytes) {
          diags_.Error(DiagCode::FileUnreadable, requested_at, "'" + shown + "' is larger than 64 MiB")
              .help = "split the configuration into several files";
          module->has_errors = true;
        } else {
          add(shown, it->second);
        }
        continue;
      }
    }
    std::ifstream in(p, std::ios::binary);
    std::error_code size_ec;
    uintmax_t size = fs::file_size(p, size_ec);
    if (!in || size_ec) {
      std::string why = size_ec ? size_ec.message() : std::strerror(errno);
      std::transform(why.begin(), why.begin() + (why.empty() ? 0 : 1), why.begin(), ::tolower);
      Diagnostic& d = diags_.Error(DiagCode::FileUnreadable, requested_at, "cannot read '" + shown + "': " + why);
      d.help = fs::is_symlink(p, ec) ? "the file is a symbolic link whose target cannot be read; fix or remove it"
                                     : "check the file's permissions";
      module->has_errors = true;
      continue;
    }
    if (size > kMaxFileBytes) {
      diags_.Error(DiagCode::FileUnreadable, requested_at,
                   "'" + shown + "' is " + std::to_string(size >> 20) + " MiB; files are limited to 64 MiB")
          .help = "split the configuration into several files";
      module->has_errors = true;
      continue;
    }
    std::string text(static_cast<size_t>(size), '\0');
    in.read(text.data(), static_cast<std::streamsize>(size));
    text.resize(static_cast<size_t>(in.gcount()));
    add(shown, std::move(text));
  }
  size_t errors_before = diags_.error_count();
  std::deque<Diagnostics> per_file;
  std::vector<ast::File> trees = ParseFiles(files, diags_, threads_, parse_cache_ ? &per_file : nullptr);
  for (size_t i = 0; i < trees.size(); ++i) {
    auto tree = std::make_shared<const ast::File>(std::move(trees[i]));
    if (parse_cache_) {
      ParseCache::Entry& e = parse_cache_->entries_[parsed_paths[i]];
      e.tree = tree;
      e.diags = per_file[i].items();
    }
    module->files[parse_slot[i]] = std::move(tree);
  }
  for (const auto& f : module->files) module->has_errors = module->has_errors || f->has_errors;
  if (diags_.error_count() > errors_before) module->has_errors = true;
  const Module* result = module.get();
  cache_[key] = std::move(module);
  return result;
}

}  // namespace plinth
