#include "lsp/index.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "compiler/check/loader.h"

namespace plinth::lsp {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kLanguageBlocks[] = {
    "variable", "locals", "output", "module", "provider", "backend", "moved", "removed", "import",
    "policy", "policy_test", "alert", "scale_rule", "receiver", "notification",
};

struct Step {
  std::string name;  // empty: an index or splat step
  Range range;
};

class RefCollector {
 public:
  RefCollector(ModuleIndex& index, const ParsedFile& file) : index_(index), file_(file) {}

  void Body(const ast::Body& body, std::string_view block_type) {
    for (const ast::Attribute& a : body.attributes) {
      // moved/removed `from` names what no longer exists; lifecycle lists
      // attribute names, not references.
      if ((block_type == "moved" || block_type == "removed") && a.name == "from") continue;
      if (block_type == "lifecycle" && a.name == "ignore_changes") continue;
      Expr(*a.value);
    }
    for (const ast::Block& b : body.blocks) Body(b.body, b.type);
  }

  void Expr(const ast::Expr& e) {
    using K = ast::ExprKind;
    if (e.kind == K::Name || e.kind == K::GetAttr || e.kind == K::Index || e.kind == K::Splat) {
      Traversal(e);
    } else if (e.kind == K::For) {
      // The for's variables shadow everything inside it, not its collection.
      const auto& f = e.As<ast::For>();
      Expr(*f.collection);
      std::vector<std::string> added;
      for (const std::string* v : {&f.key_var, &f.value_var})
        if (!v->empty() && shadowed_.insert(*v).second) added.push_back(*v);
      for (const ast::Expr* part : {f.key.get(), f.value.get(), f.cond.get()})
        if (part) Expr(*part);
      for (const auto& v : added) shadowed_.erase(v);
    } else {
      ForEachChild(e, [this](const ast::Expr& child) { Expr(child); });
    }
  }

 private:
  // A chain of attribute and index steps down to a name: collects the steps
  // in source order and visits index keys and splat chains.
  void Traversal(const ast::Expr& e) {
    std::vector<Step> steps;
    const ast::Expr* cur = &e;
    std::vector<const ast::Expr*> keys;
    for (;;) {
      if (cur->kind == ast::ExprKind::GetAttr) {
        const auto& g = cur->As<ast::GetAttr>();
        steps.push_back({g.name, g.name_range});
        cur = g.object.get();
      } else if (cur->kind == ast::ExprKind::Index) {
        const auto& i = cur->As<ast::Index>();
        steps.push_back({"", i.key->range});
        keys.push_back(i.key.get());
        cur = i.object.get();
      } else if (cur->kind == ast::ExprKind::Splat) {
        const auto& s = cur->As<ast::Splat>();
        steps.clear();  // steps after a splat apply to each element: not a member of the root
        for (const auto& step : s.chain)
          if (step.key) keys.push_back(step.key.get());
        steps.push_back({"", s.range});
        cur = s.source.get();
      } else {
        break;
      }
    }
    for (const ast::Expr* k : keys) Expr(*k);
    if (cur->kind != ast::ExprKind::Name) {
      Expr(*cur);
      return;
    }
    const auto& root = cur->As<ast::Name>();
    if (shadowed_.count(root.name)) return;
    std::reverse(steps.begin(), steps.end());
    if (steps.empty() || steps[0].name.empty()) return;
    Reference ref;
    ref.file = &file_;
    ref.whole = e.range;
    ref.range = steps[0].range;
    if (root.name == "var" || root.name == "local" || root.name == "module") {
      ref.key = root.name + "." + steps[0].name;
    } else if (!IsBuiltinRoot(root.name)) {
      ref.key = root.name + "." + steps[0].name;
    } else {
      return;
    }
    // The member: the first attribute step after the name, past index steps.
    for (size_t i = 1; i < steps.size(); ++i) {
      if (steps[i].name.empty()) continue;
      ref.member = steps[i].name;
      ref.member_range = steps[i].range;
      break;
    }
    index_.refs.push_back(std::move(ref));
  }

  ModuleIndex& index_;
  const ParsedFile& file_;
  std::set<std::string> shadowed_;
};

bool IsMetaArgument(std::string_view name) {
  return name == "source" || name == "count" || name == "for_each" || name == "depends_on" || name == "providers";
}

uint64_t HashText(std::string_view text) { return std::hash<std::string_view>{}(text); }

}  // namespace

void ForEachChild(const ast::Expr& e, const std::function<void(const ast::Expr&)>& visit) {
  using K = ast::ExprKind;
  auto v = [&](const ast::ExprPtr& child) {
    if (child) visit(*child);
  };
  switch (e.kind) {
    case K::Template:
      for (const auto& p : e.As<ast::Template>().parts) v(p.expr);
      return;
    case K::GetAttr: v(e.As<ast::GetAttr>().object); return;
    case K::Index:
      v(e.As<ast::Index>().object);
      v(e.As<ast::Index>().key);
      return;
    case K::Splat:
      v(e.As<ast::Splat>().source);
      for (const auto& step : e.As<ast::Splat>().chain) v(step.key);
      return;
    case K::Call:
      for (const auto& a : e.As<ast::Call>().args) v(a);
      return;
    case K::Unary: v(e.As<ast::Unary>().operand); return;
    case K::Binary:
      v(e.As<ast::Binary>().lhs);
      v(e.As<ast::Binary>().rhs);
      return;
    case K::Conditional:
      v(e.As<ast::Conditional>().cond);
      v(e.As<ast::Conditional>().then);
      v(e.As<ast::Conditional>().otherwise);
      return;
    case K::List:
      for (const auto& i : e.As<ast::List>().items) v(i);
      return;
    case K::Object:
      for (const auto& i : e.As<ast::Object>().items) v(i.value);
      return;
    case K::For: {
      const auto& f = e.As<ast::For>();
      v(f.collection);
      v(f.key);
      v(f.value);
      v(f.cond);
      return;
    }
    default: return;
  }
}

bool IsBuiltinRoot(std::string_view name) {
  return name == "var" || name == "local" || name == "module" || name == "each" || name == "count" ||
         name == "self" || name == "path" || name == "value" || name == "group" || name == "group_key";
}

Range LabelName(const ast::Label& label) {
  Range r = label.range;
  if (label.quoted && r.end - r.begin >= 2) {
    ++r.begin;
    --r.end;
  }
  return r;
}

bool IsLanguageBlock(std::string_view type) {
  return std::find(std::begin(kLanguageBlocks), std::end(kLanguageBlocks), type) != std::end(kLanguageBlocks);
}

std::string Declaration::Key() const {
  switch (kind) {
    case SymbolKind::Variable: return "var." + name;
    case SymbolKind::Local: return "local." + name;
    case SymbolKind::Output: return "output." + name;
    case SymbolKind::Module: return "module." + name;
    case SymbolKind::Resource: return type + "." + name;
  }
  return name;
}

const Declaration* ModuleIndex::Find(std::string_view key) const {
  for (const Declaration& d : decls)
    if (d.Key() == key) return &d;
  return nullptr;
}

const ParsedFile* ModuleIndex::FileAt(std::string_view path) const {
  for (const auto& f : files)
    if (f->path == path) return f.get();
  return nullptr;
}

std::string ResolveModuleSource(const std::string& from_dir, const std::string& source) {
  if (source.rfind("std/", 0) == 0) return (fs::path(ModuleLoader::StdlibDir()) / source).lexically_normal().string();
  if (source.rfind("./", 0) == 0 || source.rfind("../", 0) == 0)
    return (fs::path(from_dir) / source).lexically_normal().string();
  if (!source.empty() && source[0] == '/') return fs::path(source).lexically_normal().string();
  return "";
}

std::shared_ptr<const ParsedFile> Index::Parse(const std::string& path, std::string text, bool open) {
  auto file = std::make_shared<ParsedFile>();
  file->path = path;
  file->uri = PathToUri(path);
  file->hash = HashText(text);
  file->open = open;
  file->source = std::make_unique<SourceFile>(next_id_++, path, std::move(text));
  Diagnostics ignored;  // the background check reports them
  file->tree = plinth::Parse(*file->source, ignored);
  Diagnostics ignored_lex;
  file->tokens = Lex(*file->source, ignored_lex);
  file->lines = LineIndex(file->source->text());
  if (next_id_ == kNoFile) next_id_ = 0;
  return file;
}

const ParsedFile& Index::Open(const std::string& path, std::string text) {
  auto it = open_.find(path);
  if (it != open_.end() && it->second->hash == HashText(text) && it->second->text() == text) return *it->second;
  buffers_[path] = text;
  auto parsed = Parse(path, std::move(text), true);
  open_[path] = parsed;
  return *parsed;
}

void Index::Close(const std::string& path) {
  buffers_.erase(path);
  open_.erase(path);
}

std::shared_ptr<const ParsedFile> Index::File(const std::string& path) {
  if (auto it = open_.find(path); it != open_.end()) return it->second;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || static_cast<size_t>(st.st_size) > kMaxFileBytes) {
    disk_.erase(path);
    return nullptr;
  }
  int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  DiskEntry& entry = disk_[path];
  if (entry.file && entry.mtime == mtime && entry.size == static_cast<uintmax_t>(st.st_size)) return entry.file;
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in && !in.eof()) return nullptr;
  if (!entry.file || entry.file->hash != HashText(text) || entry.file->text() != text) {
    entry.file = Parse(path, std::move(text), false);
  }
  entry.mtime = mtime;
  entry.size = static_cast<uintmax_t>(st.st_size);
  return entry.file;
}

std::shared_ptr<const ModuleIndex> Index::Module(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::error_code type_ec;
    if (entry.path().extension() == ".plinth" && !entry.is_directory(type_ec)) paths.push_back(entry.path().string());
  }
  for (auto it = buffers_.lower_bound(dir + "/"); it != buffers_.end() && it->first.rfind(dir + "/", 0) == 0; ++it)
    if (fs::path(it->first).parent_path() == fs::path(dir)) paths.push_back(it->first);
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());

  std::vector<std::shared_ptr<const ParsedFile>> files;
  std::vector<const ParsedFile*> ids;
  for (const std::string& p : paths) {
    if (auto f = File(p)) {
      ids.push_back(f.get());
      files.push_back(std::move(f));
    }
  }
  ModuleEntry& entry = modules_[dir];
  if (entry.index && entry.files == ids) return entry.index;

  auto index = std::make_shared<ModuleIndex>();
  index->dir = dir;
  index->files = files;
  for (const auto& f : files) {
    for (const ast::Block& b : f->tree.body.blocks) {
      if (b.type == "locals") {
        for (const ast::Attribute& a : b.body.attributes) {
          index->decls.push_back({SymbolKind::Local, "", a.name, f.get(), a.name_range, a.range, nullptr, &a});
        }
      } else if (b.labels.size() == 1 && (b.type == "variable" || b.type == "output" || b.type == "module" ||
                                           !IsLanguageBlock(b.type))) {
        SymbolKind kind = b.type == "variable" ? SymbolKind::Variable
                          : b.type == "output" ? SymbolKind::Output
                          : b.type == "module" ? SymbolKind::Module
                                               : SymbolKind::Resource;
        Declaration d{kind, kind == SymbolKind::Resource ? b.type : "", b.labels[0].value, f.get(),
                      LabelName(b.labels[0]), b.range, &b, nullptr};
        index->decls.push_back(std::move(d));
        if (kind == SymbolKind::Module) {
          const ast::Attribute* source = b.body.Find("source");
          std::string resolved;
          if (source && source->value->kind == ast::ExprKind::Literal &&
              source->value->As<ast::Literal>().value.kind() == Value::Kind::String) {
            resolved = ResolveModuleSource(dir, source->value->As<ast::Literal>().value.as_string());
          }
          index->call_dirs[b.labels[0].value] = resolved;
          for (const ast::Attribute& a : b.body.attributes)
            if (!IsMetaArgument(a.name)) index->args.push_back({b.labels[0].value, a.name, a.name_range, f.get()});
        }
      }
    }
    RefCollector collector(*index, *f);
    for (const ast::Block& b : f->tree.body.blocks) collector.Body(b.body, b.type);
  }
  entry.files = std::move(ids);
  entry.index = index;
  return index;
}

std::vector<std::string> Index::ModuleDirs() {
  std::set<std::string> dirs;
  size_t seen = 0;
  for (const std::string& root : roots_) {
    std::error_code ec;
    fs::recursive_directory_iterator it(root, fs::directory_options::skip_permission_denied, ec), end;
    for (; !ec && it != end && seen < kMaxScan * 20; it.increment(ec)) {
      ++seen;
      const fs::path& p = it->path();
      std::string name = p.filename().string();
      std::error_code type_ec;
      if (it->is_directory(type_ec)) {
        if ((!name.empty() && name[0] == '.') || name == "node_modules" || name == "build" || it.depth() > 12 ||
            it->is_symlink(type_ec)) {
          it.disable_recursion_pending();
        }
        continue;
      }
      if (p.extension() == ".plinth") dirs.insert(p.parent_path().string());
      if (dirs.size() >= kMaxScan) break;
    }
  }
  for (const auto& [path, text] : buffers_) dirs.insert(fs::path(path).parent_path().string());
  return {dirs.begin(), dirs.end()};
}

std::vector<Index::Caller> Index::Callers(const std::string& dir) {
  std::vector<Caller> out;
  for (const std::string& d : ModuleDirs()) {
    auto m = Module(d);
    for (const auto& [call, target] : m->call_dirs)
      if (target == dir) out.push_back({m, call});
  }
  return out;
}

}  // namespace plinth::lsp
