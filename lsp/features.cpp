#include "lsp/features.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <regex>

#include "compiler/diag/diagnostic.h"
#include "compiler/eval/functions.h"
#include "compiler/fmt/fmt.h"

namespace plinth::lsp {

namespace fs = std::filesystem;

// ------------------------------------------------------------------ helpers

json ToJson(Position p) { return {{"line", p.line}, {"character", p.character}}; }

json RangeJson(const LineIndex& lines, Range r, Encoding e) {
  return {{"start", ToJson(lines.At(r.begin, e))}, {"end", ToJson(lines.At(r.end, e))}};
}

namespace {

bool Contains(Range r, uint32_t offset) { return r.valid() && r.begin <= offset && offset <= r.end; }

json Location(const ParsedFile& f, Range r, Encoding e) { return {{"uri", f.uri}, {"range", RangeJson(f.lines, r, e)}}; }

struct Cursor {
  std::shared_ptr<const ParsedFile> file;
  std::shared_ptr<const ModuleIndex> module;
  uint32_t offset = 0;
};

// The document and offset a TextDocumentPositionParams names; null file when
// the document is unknown (not open and not on disk).
Cursor At(Context& cx, const json& params) {
  Cursor c;
  std::string path = UriToPath(params.at("textDocument").at("uri").get<std::string>());
  if (path.empty()) return c;
  c.file = cx.index.File(path);
  if (!c.file) return c;
  c.module = cx.index.Module(fs::path(path).parent_path().string());
  if (params.contains("position")) {
    Position p{params["position"].at("line").get<uint32_t>(), params["position"].at("character").get<uint32_t>()};
    c.offset = c.file->lines.Offset(p, cx.encoding);
  }
  return c;
}

std::shared_ptr<const ParsedFile> DocumentOf(Context& cx, const json& params) {
  std::string path = UriToPath(params.at("textDocument").at("uri").get<std::string>());
  return path.empty() ? nullptr : cx.index.File(path);
}

// The blocks around an offset, outermost first.
std::vector<const ast::Block*> BlockPath(const ast::Body& body, uint32_t offset) {
  std::vector<const ast::Block*> path;
  const ast::Body* cur = &body;
  for (;;) {
    const ast::Block* inner = nullptr;
    for (const ast::Block& b : cur->blocks)
      if (b.range.begin <= offset && offset < b.range.end) inner = &b;
    if (!inner) return path;
    path.push_back(inner);
    cur = &inner->body;
  }
}

// The schema of the innermost block of `path` (resource or provider blocks
// and their nested blocks); null when there is none.
const BlockSchema* SchemaOf(const SchemaRegistry& schemas, const std::vector<const ast::Block*>& path, size_t depth) {
  if (path.empty() || depth == 0) return nullptr;
  const BlockSchema* body = nullptr;
  const ast::Block& top = *path[0];
  if (top.type == "provider" && !top.labels.empty()) {
    if (const ProviderConfigSchema* p = schemas.FindProvider(top.labels[0].value)) body = &p->body;
  } else if (!IsLanguageBlock(top.type)) {
    if (const ResourceSchema* r = schemas.Find(top.type)) body = &r->body;
  }
  for (size_t i = 1; i < depth && body; ++i) {
    const NestedBlockSchema* nested = body->FindBlock(path[i]->type);
    body = nested && nested->body ? nested->body.get() : nullptr;
  }
  return body;
}

std::string ModeText(AttrMode m) {
  switch (m) {
    case AttrMode::Required: return "required";
    case AttrMode::Optional: return "optional";
    case AttrMode::Computed: return "computed";
    case AttrMode::OptionalComputed: return "optional, computed when unset";
  }
  return "";
}

std::string AttributeDoc(const AttributeSchema& a) {
  std::string s = "```plinth\n" + a.name + ": " + a.type.ToString() + "\n```\n";
  s += ModeText(a.mode);
  if (a.default_value) s += " · default `" + a.default_value->ToString() + "`";
  if (a.force_new) s += " · changing it replaces the resource";
  if (a.sensitive) s += " · sensitive";
  if (!a.ref_type.empty()) s += " · a `" + a.ref_type + "` (`" + a.ref_type + ".NAME`)";
  s += "\n\n" + a.doc;
  if (!a.allowed_values.empty()) {
    s += "\n\nOne of:";
    for (const auto& v : a.allowed_values) s += " `\"" + v + "\"`";
  }
  if (!a.caveat.empty()) s += "\n\n" + a.caveat;
  return s;
}

std::string LiteralOf(const ast::Block& b, std::string_view attr) {
  const ast::Attribute* a = b.body.Find(attr);
  if (a && a->value->kind == ast::ExprKind::Literal && a->value->As<ast::Literal>().value.kind() == Value::Kind::String)
    return a->value->As<ast::Literal>().value.as_string();
  return "";
}

std::string ShortValue(const Value& v, size_t limit = 200) {
  std::string s = v.ToString();
  if (s.size() > limit) s = s.substr(0, limit) + " …";
  return s;
}

// ---------------------------------------------------------------- symbols

// A declaration as a symbol: the module directory it lives in and its key.
struct Symbol {
  std::string dir;
  std::string key;
  Range range;                   // the name under the cursor
  const ParsedFile* file = nullptr;
};

// What the cursor names: a declaration, a reference to one, a module output
// or a module argument. nullopt when it names none (a resource attribute, a
// keyword, a literal...).
std::optional<Symbol> SymbolAt(Context& cx, const Cursor& c) {
  const ModuleIndex& m = *c.module;
  for (const Declaration& d : m.decls)
    if (d.file == c.file.get() && Contains(d.name_range, c.offset)) return Symbol{m.dir, d.Key(), d.name_range, d.file};
  for (const Reference& r : m.refs) {
    if (r.file != c.file.get()) continue;
    // On the name, or on the root before it (`var` of var.region, `bucket` of bucket.data).
    if (Contains(r.range, c.offset) || (r.whole.begin <= c.offset && c.offset < r.range.begin))
      return Symbol{m.dir, r.key, r.range, r.file};
    if (Contains(r.member_range, c.offset) && r.key.rfind("module.", 0) == 0) {
      auto it = m.call_dirs.find(r.key.substr(7));
      if (it == m.call_dirs.end() || it->second.empty()) return std::nullopt;
      return Symbol{it->second, "output." + r.member, r.member_range, r.file};
    }
  }
  for (const ModuleArgument& a : m.args) {
    if (a.file != c.file.get() || !Contains(a.range, c.offset)) continue;
    auto it = m.call_dirs.find(a.call);
    if (it == m.call_dirs.end() || it->second.empty()) return std::nullopt;
    return Symbol{it->second, "var." + a.name, a.range, a.file};
  }
  return std::nullopt;
}

struct Occurrence {
  const ParsedFile* file;
  Range range;
  bool declaration;
  std::shared_ptr<const ModuleIndex> module;  // keeps the file alive
};

std::vector<Occurrence> Occurrences(Context& cx, const Symbol& s, bool include_declaration) {
  std::vector<Occurrence> out;
  auto m = cx.index.Module(s.dir);
  if (const Declaration* d = m->Find(s.key); d && include_declaration) out.push_back({d->file, d->name_range, true, m});
  for (const Reference& r : m->refs)
    if (r.key == s.key) out.push_back({r.file, r.range, false, m});
  bool is_var = s.key.rfind("var.", 0) == 0, is_output = s.key.rfind("output.", 0) == 0;
  if (is_var || is_output) {
    std::string name = s.key.substr(is_var ? 4 : 7);
    for (const Index::Caller& caller : cx.index.Callers(s.dir)) {
      if (is_var) {
        for (const ModuleArgument& a : caller.module->args)
          if (a.call == caller.call && a.name == name) out.push_back({a.file, a.range, false, caller.module});
      } else {
        for (const Reference& r : caller.module->refs)
          if (r.key == "module." + caller.call && r.member == name)
            out.push_back({r.file, r.member_range, false, caller.module});
      }
    }
  }
  return out;
}

std::optional<Occurrence> DefinitionOf(Context& cx, const Symbol& s) {
  auto m = cx.index.Module(s.dir);
  if (const Declaration* d = m->Find(s.key)) return Occurrence{d->file, d->name_range, true, m};
  return std::nullopt;
}

// ---------------------------------------------------------------- hover

std::string DeclarationHover(Context& cx, const std::string& dir, const Declaration& d) {
  std::shared_ptr<const Evaluated> ev = cx.evaluated ? cx.evaluated(dir) : nullptr;
  std::string s;
  switch (d.kind) {
    case SymbolKind::Variable: {
      s = "```plinth\nvariable \"" + d.name + "\"";
      if (const ast::Attribute* t = d.block->body.Find("type")) s += ": " + std::string(d.file->Text(t->value->range));
      s += "\n```\n";
      if (std::string desc = LiteralOf(*d.block, "description"); !desc.empty()) s += desc + "\n\n";
      if (const ast::Attribute* def = d.block->body.Find("default"))
        s += "default: `" + std::string(d.file->Text(def->value->range)) + "`\n\n";
      else
        s += "required: no default\n\n";
      if (ev) {
        if (auto it = ev->variables.find(d.name); it != ev->variables.end())
          s += "value: `" + ShortValue(it->second) + "`\n";
      }
      break;
    }
    case SymbolKind::Local: {
      s = "```plinth\nlocal." + d.name + " = " + std::string(d.file->Text(d.attribute->value->range)).substr(0, 400) +
          "\n```\n";
      if (ev) {
        if (auto it = ev->locals.find(d.name); it != ev->locals.end()) s += "value: `" + ShortValue(it->second) + "`\n";
      }
      break;
    }
    case SymbolKind::Output: {
      s = "```plinth\noutput \"" + d.name + "\"\n```\n";
      if (std::string desc = LiteralOf(*d.block, "description"); !desc.empty()) s += desc + "\n\n";
      if (ev) {
        if (auto it = ev->outputs.find(d.name); it != ev->outputs.end()) s += "value: `" + ShortValue(it->second) + "`\n";
      }
      break;
    }
    case SymbolKind::Module: {
      s = "```plinth\nmodule \"" + d.name + "\"\n```\nsource: `" + LiteralOf(*d.block, "source") + "`\n";
      auto mi = cx.index.Module(d.file->path.substr(0, d.file->path.rfind('/')));
      if (auto it = mi->call_dirs.find(d.name); it != mi->call_dirs.end() && !it->second.empty()) {
        auto callee = cx.index.Module(it->second);
        std::string outs;
        for (const Declaration& o : callee->decls)
          if (o.kind == SymbolKind::Output) outs += (outs.empty() ? "" : ", ") + ("`" + o.name + "`");
        if (!outs.empty()) s += "\noutputs: " + outs + "\n";
      }
      break;
    }
    case SymbolKind::Resource: {
      s = "```plinth\n" + d.type + " \"" + d.name + "\"\n```\n";
      if (const ResourceSchema* r = cx.schemas.Find(d.type)) s += r->doc + " (provider `" + r->provider + "`)\n";
      if (ev) {
        if (const ValueMap* values = ev->Resource(d.Key())) {
          std::string attrs;
          for (const auto& [k, v] : *values) {
            if (v.kind() == Value::Kind::Unknown || v.kind() == Value::Kind::Null) continue;
            attrs += "\n" + k + " = " + ShortValue(v, 80);
          }
          if (!attrs.empty()) s += "\n```plinth" + attrs + "\n```\n";
        }
      }
      break;
    }
  }
  return s;
}

json MarkupHover(const std::string& markdown, const ParsedFile& f, Range r, Encoding e) {
  return {{"contents", {{"kind", "markdown"}, {"value", markdown}}}, {"range", RangeJson(f.lines, r, e)}};
}

// The expression node at an offset (innermost), for calls and literals.
const ast::Expr* ExprAt(const ast::Expr& e, uint32_t offset) {
  if (!(e.range.begin <= offset && offset <= e.range.end)) return nullptr;
  const ast::Expr* found = nullptr;
  ForEachChild(e, [&](const ast::Expr& child) {
    if (!found) found = ExprAt(child, offset);
  });
  return found ? found : &e;
}

const ast::Expr* ExprInBody(const ast::Body& body, uint32_t offset) {
  for (const ast::Attribute& a : body.attributes)
    if (a.value && a.value->range.begin <= offset && offset <= a.value->range.end)
      if (const ast::Expr* e = ExprAt(*a.value, offset)) return e;
  for (const ast::Block& b : body.blocks)
    if (b.range.begin <= offset && offset <= b.range.end)
      if (const ast::Expr* e = ExprInBody(b.body, offset)) return e;
  return nullptr;
}

}  // namespace

json Hover(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  const ParsedFile& f = *c.file;
  if (auto s = SymbolAt(cx, c)) {
    auto m = cx.index.Module(s->dir);
    if (const Declaration* d = m->Find(s->key)) return MarkupHover(DeclarationHover(cx, s->dir, *d), f, s->range, cx.encoding);
  }
  // A resource reference's attribute: bucket.data.path
  for (const Reference& r : c.module->refs) {
    if (r.file != &f || !Contains(r.member_range, c.offset) || r.key.rfind("module.", 0) == 0) continue;
    std::string type = r.key.substr(0, r.key.find('.'));
    if (type == "var" || type == "local") break;
    if (const ResourceSchema* rs = cx.schemas.Find(type)) {
      if (const AttributeSchema* a = rs->body.FindAttribute(r.member))
        return MarkupHover(AttributeDoc(*a), f, r.member_range, cx.encoding);
      if (r.member == "id" || r.member == "name" || r.member == "address")
        return MarkupHover("`" + r.member + "`: the instance's " + r.member + " (string)", f, r.member_range, cx.encoding);
    }
  }
  std::vector<const ast::Block*> path = BlockPath(f.tree.body, c.offset);
  // Block types and attribute names.
  for (size_t depth = 1; depth <= path.size(); ++depth) {
    const ast::Block& b = *path[depth - 1];
    if (Contains(b.type_range, c.offset)) {
      if (depth == 1) {
        if (const ResourceSchema* r = cx.schemas.Find(b.type))
          return MarkupHover("```plinth\n" + b.type + "\n```\n" + r->doc + " (provider `" + r->provider + "`)", f,
                             b.type_range, cx.encoding);
        return nullptr;
      }
      if (const BlockSchema* parent = SchemaOf(cx.schemas, path, depth - 1))
        if (const NestedBlockSchema* nb = parent->FindBlock(b.type))
          return MarkupHover("```plinth\n" + b.type + (nb->labeled ? " \"LABEL\"" : "") + " { ... }\n```\n" + nb->doc,
                             f, b.type_range, cx.encoding);
    }
  }
  if (!path.empty()) {
    const ast::Block& b = *path.back();
    for (const ast::Attribute& a : b.body.attributes) {
      if (!Contains(a.name_range, c.offset)) continue;
      if (const BlockSchema* bs = SchemaOf(cx.schemas, path, path.size()))
        if (const AttributeSchema* as = bs->FindAttribute(a.name))
          return MarkupHover(AttributeDoc(*as), f, a.name_range, cx.encoding);
    }
  }
  // Function calls and unit literals.
  if (const ast::Expr* e = ExprInBody(f.tree.body, c.offset)) {
    if (e->kind == ast::ExprKind::Call && Contains(e->As<ast::Call>().name_range, c.offset)) {
      if (const FunctionDef* fn = FindFunction(e->As<ast::Call>().name))
        return MarkupHover("```plinth\n" + std::string(fn->signature) + "\n```\n" + std::string(fn->summary), f,
                           e->As<ast::Call>().name_range, cx.encoding);
    }
    if (e->kind == ast::ExprKind::Literal) {
      const Value& v = e->As<ast::Literal>().value;
      if (v.kind() == Value::Kind::Duration)
        return MarkupHover("duration: " + FormatNumber(v.as_number()) + " ms", f, e->range, cx.encoding);
      if (v.kind() == Value::Kind::Size)
        return MarkupHover("size: " + FormatNumber(v.as_number()) + " bytes", f, e->range, cx.encoding);
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------- definition, references, rename

json Definition(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  if (auto s = SymbolAt(cx, c)) {
    if (auto d = DefinitionOf(cx, *s)) return Location(*d->file, d->range, cx.encoding);
    return nullptr;
  }
  // A module's source: its first file.
  for (const ast::Block* b : BlockPath(c.file->tree.body, c.offset)) {
    if (b->type != "module") continue;
    const ast::Attribute* src = b->body.Find("source");
    if (!src || !Contains(src->value->range, c.offset) || b->labels.empty()) continue;
    auto it = c.module->call_dirs.find(b->labels[0].value);
    if (it == c.module->call_dirs.end() || it->second.empty()) return nullptr;
    auto callee = cx.index.Module(it->second);
    if (callee->files.empty()) return nullptr;
    return Location(*callee->files[0], Range{callee->files[0]->source->id(), 0, 0}, cx.encoding);
  }
  return nullptr;
}

json References(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  auto s = SymbolAt(cx, c);
  if (!s) return nullptr;
  bool include = params.value("context", json::object()).value("includeDeclaration", true);
  json out = json::array();
  for (const Occurrence& o : Occurrences(cx, *s, include)) out.push_back(Location(*o.file, o.range, cx.encoding));
  return out;
}

json PrepareRename(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  auto s = SymbolAt(cx, c);
  if (!s) return nullptr;
  auto m = cx.index.Module(s->dir);
  if (!m->Find(s->key)) return nullptr;  // nothing declares it: nothing to rename consistently
  // LSP 3.17's PrepareRenameResult: { range, placeholder } (the field's name
  // in the protocol: the text the editor pre-fills for the new name).
  return {{"range", RangeJson(c.file->lines, s->range, cx.encoding)},
          {"placeholder", std::string(c.file->Text(s->range))}};
}

json Rename(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  std::string name = params.at("newName").get<std::string>();
  static const std::regex kName("[A-Za-z_][A-Za-z0-9_]*");
  if (!std::regex_match(name, kName))
    throw RenameError("'" + name + "' is not a name: use a letter or '_', then letters, digits and '_'");
  auto s = SymbolAt(cx, c);
  if (!s) throw RenameError("nothing to rename here: place the cursor on a declaration or a reference to one");
  auto m = cx.index.Module(s->dir);
  if (!m->Find(s->key)) throw RenameError("'" + s->key + "' is not declared, so it cannot be renamed");
  std::string prefix = s->key.substr(0, s->key.find('.') + 1);
  if (m->Find(prefix + name)) throw RenameError("'" + prefix + name + "' is already declared in this module");
  json changes = json::object();
  std::set<std::pair<std::string, uint32_t>> seen;
  for (const Occurrence& o : Occurrences(cx, *s, true)) {
    if (!seen.insert({o.file->uri, o.range.begin}).second) continue;
    changes[o.file->uri].push_back({{"range", RangeJson(o.file->lines, o.range, cx.encoding)}, {"newText", name}});
  }
  // A resource or module call has objects in the state under its address: a
  // `moved` block keeps them (without it, the next plan would destroy and
  // create). Written at the end of the declaring file.
  const Declaration* d = m->Find(s->key);
  if (d->kind == SymbolKind::Resource || d->kind == SymbolKind::Module) {
    std::string_view text = d->file->text();
    uint32_t end = static_cast<uint32_t>(text.size());
    std::string block = std::string(text.empty() || text.back() == '\n' ? "" : "\n") + "\nmoved {\n  from = " +
                        s->key + "\n  to   = " + prefix + name + "\n}\n";
    changes[d->file->uri].push_back(
        {{"range", RangeJson(d->file->lines, Range{d->name_range.file, end, end}, cx.encoding)}, {"newText", block}});
  }
  return {{"changes", changes}};
}

// ---------------------------------------------------------------- symbols

namespace {

int BlockSymbolKind(const ast::Block& b, bool top) {
  if (!top) return 23;  // Struct
  if (b.type == "variable") return 13;
  if (b.type == "output") return 8;  // Field
  if (b.type == "module") return 2;
  if (b.type == "locals") return 3;  // Namespace
  if (IsLanguageBlock(b.type)) return 19;  // Object
  return 5;  // Class
}

json SymbolOf(const ParsedFile& f, const ast::Block& b, bool top, Encoding e) {
  std::string name = b.type;
  for (const auto& l : b.labels) name += " \"" + l.value + "\"";
  if (top && !IsLanguageBlock(b.type) && b.labels.size() == 1) name = b.type + "." + b.labels[0].value;
  Range sel = b.labels.empty() ? b.type_range : Range::Cover(b.type_range, b.labels.back().range);
  json children = json::array();
  for (const ast::Attribute& a : b.body.attributes) {
    children.push_back({{"name", a.name},
                        {"kind", b.type == "locals" ? 13 : 7},
                        {"range", RangeJson(f.lines, a.range, e)},
                        {"selectionRange", RangeJson(f.lines, a.name_range, e)}});
  }
  for (const ast::Block& nb : b.body.blocks) children.push_back(SymbolOf(f, nb, false, e));
  json s = {{"name", name},
            {"kind", BlockSymbolKind(b, top)},
            {"range", RangeJson(f.lines, b.range, e)},
            {"selectionRange", RangeJson(f.lines, sel, e)},
            {"children", children}};
  if (top && !IsLanguageBlock(b.type)) s["detail"] = "resource";
  return s;
}

bool FuzzyMatch(std::string_view query, std::string_view name) {
  size_t i = 0;
  for (char c : name) {
    if (i < query.size() && std::tolower(static_cast<unsigned char>(c)) == std::tolower(static_cast<unsigned char>(query[i]))) ++i;
  }
  return i == query.size();
}

}  // namespace

json DocumentSymbols(Context& cx, const json& params) {
  auto f = DocumentOf(cx, params);
  if (!f) return nullptr;
  json out = json::array();
  for (const ast::Block& b : f->tree.body.blocks) out.push_back(SymbolOf(*f, b, true, cx.encoding));
  return out;
}

json WorkspaceSymbols(Context& cx, const json& params) {
  std::string query = params.value("query", "");
  json out = json::array();
  static constexpr int kKinds[] = {13, 13, 8, 2, 5};
  for (const std::string& dir : cx.index.ModuleDirs()) {
    auto m = cx.index.Module(dir);
    for (const Declaration& d : m->decls) {
      std::string key = d.Key();
      if (!FuzzyMatch(query, key)) continue;
      out.push_back({{"name", key},
                     {"kind", kKinds[static_cast<int>(d.kind)]},
                     {"containerName", fs::path(dir).filename().string()},
                     {"location", Location(*d.file, d.name_range, cx.encoding)}});
      if (out.size() >= 1000) return out;
    }
  }
  return out;
}

// ---------------------------------------------------------------- folding

json FoldingRanges(Context& cx, const json& params) {
  auto f = DocumentOf(cx, params);
  if (!f) return nullptr;
  json out = json::array();
  auto line = [&](uint32_t offset) { return f->lines.At(offset, Encoding::Utf8).line; };
  std::vector<const Token*> open;
  int64_t comment_start = -1, comment_end = -1;
  auto flush_comments = [&] {
    if (comment_start >= 0 && comment_end > comment_start)
      out.push_back({{"startLine", comment_start}, {"endLine", comment_end}, {"kind", "comment"}});
    comment_start = comment_end = -1;
  };
  for (const Token& t : f->tokens) {
    switch (t.kind) {
      case TokenKind::LBrace:
      case TokenKind::LBrack:
      case TokenKind::LParen: open.push_back(&t); break;
      case TokenKind::RBrace:
      case TokenKind::RBrack:
      case TokenKind::RParen:
        if (!open.empty()) {
          uint32_t a = line(open.back()->begin), b = line(t.begin);
          // The closing line stays visible: fold the lines between.
          if (b >= a + 2) out.push_back({{"startLine", a}, {"endLine", b - 1}});
          open.pop_back();
        }
        break;
      case TokenKind::LineComment: {
        int64_t l = line(t.begin);
        if (comment_start >= 0 && l == comment_end + 1) comment_end = l;
        else {
          flush_comments();
          comment_start = comment_end = l;
        }
        continue;
      }
      case TokenKind::BlockComment:
      case TokenKind::Heredoc:
      case TokenKind::String: {
        uint32_t a = line(t.begin), b = line(t.end > t.begin ? t.end - 1 : t.end);
        if (b > a) {
          json r = {{"startLine", a}, {"endLine", b}};
          if (t.kind == TokenKind::BlockComment) r["kind"] = "comment";
          out.push_back(r);
        }
        break;
      }
      default: break;
    }
    if (t.kind != TokenKind::LineComment) flush_comments();
  }
  flush_comments();
  return out;
}

// ---------------------------------------------------------------- formatting

json Formatting(Context& cx, const json& params, bool range) {
  auto f = DocumentOf(cx, params);
  if (!f) return nullptr;
  Diagnostics diags;
  std::optional<std::string> formatted = Format(*f->source, diags);
  if (!formatted) return nullptr;  // syntax errors: never rewrite
  std::string_view before = f->text();
  std::string_view after = *formatted;
  Diagnostics d1, d2;
  SourceFile sb(0, f->path, std::string(before)), sa(0, f->path, std::string(after));
  std::vector<Token> tb = Lex(sb, d1), ta = Lex(sa, d2);
  json edits = json::array();
  if (tb.size() != ta.size()) return edits;  // cannot happen: Format keeps every token
  uint32_t lo = 0, hi = static_cast<uint32_t>(before.size());
  if (range) {
    Position s{params["range"]["start"]["line"].get<uint32_t>(), 0};
    Position e{params["range"]["end"]["line"].get<uint32_t>() + 1, 0};
    lo = f->lines.Offset(s, cx.encoding);
    hi = f->lines.Offset(e, cx.encoding);
  }
  auto edit = [&](uint32_t b, uint32_t e, std::string_view text) {
    if (range && (e < lo || b > hi)) return;
    if (before.substr(b, e - b) == text) return;
    edits.push_back({{"range", RangeJson(f->lines, Range{0, b, e}, cx.encoding)}, {"newText", std::string(text)}});
  };
  uint32_t pb = 0, pa = 0;
  for (size_t i = 0; i < tb.size(); ++i) {
    edit(pb, tb[i].begin, after.substr(pa, ta[i].begin - pa));
    edit(tb[i].begin, tb[i].end, after.substr(ta[i].begin, ta[i].end - ta[i].begin));
    pb = tb[i].end;
    pa = ta[i].end;
  }
  edit(pb, static_cast<uint32_t>(before.size()), after.substr(pa));
  return edits;
}

// ---------------------------------------------------------------- completion

namespace {

enum CompletionKind {
  kText = 1, kMethod = 2, kFunction = 3, kField = 5, kVariable = 6, kClass = 7, kModule = 9, kProperty = 10,
  kUnit = 11, kValue = 12, kEnum = 13, kKeyword = 14, kSnippet = 15, kReference = 18, kStruct = 22, kEnumMember = 20,
};

struct Completer {
  Context& cx;
  const Cursor& c;
  json items = json::array();
  Range replace;  // the partial word being completed
  json replace_json;  // its LSP range, computed once

  void Add(const std::string& label, int kind, const std::string& detail, const std::string& doc = "",
           const std::string& snippet = "", const std::string& sort = "") {
    json item = {{"label", label}, {"kind", kind}};
    if (!detail.empty()) item["detail"] = detail;
    if (!doc.empty()) item["documentation"] = {{"kind", "markdown"}, {"value", doc}};
    std::string text = snippet.empty() ? label : snippet;
    if (replace_json.is_null()) replace_json = RangeJson(c.file->lines, replace, cx.encoding);
    item["textEdit"] = {{"range", replace_json}, {"newText", text}};
    if (!snippet.empty()) item["insertTextFormat"] = 2;
    if (!sort.empty()) item["sortText"] = sort;
    items.push_back(std::move(item));
  }

  std::string_view Text() const { return c.file->text(); }

  // Item position: attribute and block names of the enclosing block.
  void Items(const std::vector<const ast::Block*>& path) {
    std::set<std::string> present;
    if (!path.empty())
      for (const ast::Attribute& a : path.back()->body.attributes) present.insert(a.name);
    auto attr = [&](const std::string& name, const std::string& detail, const std::string& doc = "") {
      if (!present.count(name)) Add(name, kProperty, detail, doc, name + " = $0");
    };
    auto block = [&](const std::string& name, bool labeled, const std::string& doc = "") {
      Add(name, kStruct, "block", doc, name + (labeled ? " \"${1:name}\"" : "") + " {\n\t$0\n}");
    };
    if (path.empty()) {
      Add("variable", kKeyword, "an input of the module", "", "variable \"${1:name}\" {\n\ttype = ${2:string}\n}");
      Add("output", kKeyword, "a result of the module", "", "output \"${1:name}\" {\n\tvalue = $0\n}");
      Add("locals", kKeyword, "named values", "", "locals {\n\t$0\n}");
      Add("module", kKeyword, "a call of another module", "", "module \"${1:name}\" {\n\tsource = \"${2:./modules/}\"\n}");
      Add("provider", kKeyword, "a provider's configuration", "", "provider \"${1:name}\" {\n\t$0\n}");
      for (const char* kw : {"moved", "removed", "import", "policy", "policy_test", "alert", "scale_rule", "receiver",
                             "notification", "backend"})
        Add(kw, kKeyword, "block");
      for (const std::string& type : cx.schemas.TypeNames()) {
        const ResourceSchema* r = cx.schemas.Find(type);
        std::string body;
        int n = 1;
        for (const AttributeSchema& a : r->body.attributes)
          if (a.mode == AttrMode::Required) body += "\n\t" + a.name + " = ${" + std::to_string(++n) + "}";
        Add(type, kClass, "resource (" + r->provider + ")", r->doc,
            type + " \"${1:name}\" {" + (body.empty() ? "\n\t$0" : body) + "\n}");
      }
      return;
    }
    const ast::Block& top = *path[0];
    const ast::Block& inner = *path.back();
    if (path.size() == 1 && top.type == "variable") {
      for (const char* a : {"type", "default", "description", "sensitive", "nullable"}) attr(a, "variable");
      block("validation", false);
      return;
    }
    if (path.size() == 1 && top.type == "output") {
      for (const char* a : {"value", "description", "sensitive", "depends_on"}) attr(a, "output");
      return;
    }
    if (path.size() == 1 && top.type == "module") {
      for (const char* a : {"source", "count", "for_each", "depends_on"}) attr(a, "meta-argument");
      if (!top.labels.empty()) {
        auto it = c.module->call_dirs.find(top.labels[0].value);
        if (it != c.module->call_dirs.end() && !it->second.empty()) {
          for (const Declaration& d : cx.index.Module(it->second)->decls) {
            if (d.kind != SymbolKind::Variable) continue;
            bool required = !d.block->body.Find("default");
            attr(d.name, required ? "variable (required)" : "variable", LiteralOf(*d.block, "description"));
          }
        }
      }
      return;
    }
    if (inner.type == "lifecycle") {
      for (const char* a : {"prevent_destroy", "create_before_destroy", "ignore_changes", "correct_drift"})
        attr(a, "lifecycle");
      return;
    }
    if (const BlockSchema* bs = SchemaOf(cx.schemas, path, path.size())) {
      for (const AttributeSchema& a : bs->attributes) {
        if (a.mode == AttrMode::Computed) continue;
        attr(a.name, a.type.ToString() + " · " + ModeText(a.mode), AttributeDoc(a));
      }
      for (const NestedBlockSchema& nb : bs->blocks) block(nb.name, nb.labeled, nb.doc);
      if (path.size() == 1) {
        for (const char* a : {"count", "for_each", "depends_on"}) attr(a, "meta-argument");
        block("lifecycle", false);
      }
    }
  }

  // Expression position: references, functions, keywords.
  void Expression(std::string_view chain, const std::vector<const ast::Block*>& path) {
    // Index steps ([0], ["k"], [*]) are dropped: bucket.data[0].pa -> bucket, data, pa
    std::vector<std::string> segs;
    size_t start = 0;
    std::string no_index;
    int depth = 0;
    for (char ch : chain) {
      if (ch == '[') ++depth;
      else if (ch == ']') --depth;
      else if (depth == 0) no_index.push_back(ch);
    }
    for (size_t i = 0; i <= no_index.size(); ++i) {
      if (i == no_index.size() || no_index[i] == '.') {
        segs.push_back(no_index.substr(start, i - start));
        start = i + 1;
      }
    }
    const ModuleIndex& m = *c.module;
    if (segs.size() == 1) {
      for (const char* root : {"var", "local", "module", "path"}) Add(root, kModule, "references");
      if (!path.empty()) {
        const ast::Block& top = *path[0];
        if (top.body.Find("for_each")) Add("each", kModule, "each.key, each.value");
        if (top.body.Find("count")) Add("count", kModule, "count.index");
        if (!IsLanguageBlock(top.type)) Add("self", kModule, "this resource instance");
      }
      std::set<std::string> types;
      for (const Declaration& d : m.decls)
        if (d.kind == SymbolKind::Resource) types.insert(d.type);
      for (const std::string& t : types) Add(t, kClass, "resources of type " + t);
      for (const FunctionDef& fn : AllFunctions())
        Add(std::string(fn.name), kFunction, std::string(fn.signature), std::string(fn.summary),
            std::string(fn.name) + "($0)");
      for (const char* kw : {"true", "false", "null", "for", "if", "in"}) Add(kw, kKeyword, "");
      return;
    }
    const std::string& root = segs[0];
    if (segs.size() == 2) {
      if (root == "var" || root == "local" || root == "module") {
        SymbolKind want = root == "var" ? SymbolKind::Variable : root == "local" ? SymbolKind::Local : SymbolKind::Module;
        for (const Declaration& d : m.decls) {
          if (d.kind != want) continue;
          std::string detail = root == "var" ? "variable" : root == "local" ? "local" : "module " + LiteralOf(*d.block, "source");
          std::string doc = d.block ? LiteralOf(*d.block, "description") : "";
          Add(d.name, root == "module" ? kModule : kVariable, detail, doc);
        }
      } else if (root == "each") {
        Add("key", kField, "the instance's key");
        Add("value", kField, "the instance's value");
      } else if (root == "count") {
        Add("index", kField, "the instance's index (0, 1, ...)");
      } else if (root == "path") {
        Add("module", kField, "this module's directory");
        Add("root", kField, "the root module's directory");
        Add("cwd", kField, "the working directory");
      } else if (root == "self") {
        Members(path.empty() ? "" : path[0]->type, true);
      } else {
        for (const Declaration& d : m.decls)
          if (d.kind == SymbolKind::Resource && d.type == root) Add(d.name, kVariable, root + " resource");
      }
      return;
    }
    if (segs.size() == 3 && root == "module") {
      auto it = m.call_dirs.find(segs[1]);
      if (it == m.call_dirs.end() || it->second.empty()) return;
      for (const Declaration& d : cx.index.Module(it->second)->decls)
        if (d.kind == SymbolKind::Output) Add(d.name, kField, "output", LiteralOf(*d.block, "description"));
      return;
    }
    if (segs.size() == 3 && root != "var" && root != "local" && root != "each" && root != "count" && root != "path" &&
        root != "self") {
      Members(root, false);
    }
  }

  void Members(const std::string& type, bool self) {
    for (const char* a : {"id", "name", "address"}) Add(a, kField, "string");
    const ResourceSchema* r = cx.schemas.Find(type);
    if (!r) return;
    for (const AttributeSchema& a : r->body.attributes) {
      if (self && a.mode != AttrMode::Computed && a.mode != AttrMode::OptionalComputed) continue;
      Add(a.name, kProperty, a.type.ToString(), AttributeDoc(a));
    }
    if (!self)
      for (const NestedBlockSchema& nb : r->body.blocks) Add(nb.name, kStruct, "block", nb.doc);
  }
};

bool IsWord(char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-'; }

// Where the cursor is relative to brackets and strings: item position of a
// block body, inside a string's plain text, or an expression.
enum class Place { Item, String, Expression };

Place PlaceAt(const ParsedFile& f, uint32_t offset, uint32_t* string_begin) {
  struct Open {
    TokenKind kind;
    bool block;
  };
  std::vector<Open> stack;
  const Token* prev = nullptr;
  const Token* last_on_line = nullptr;
  for (const Token& t : f.tokens) {
    if (t.begin >= offset) break;
    if (t.kind == TokenKind::String && offset > t.begin && offset < t.end + (t.end == f.text().size() ? 1 : 0)) {
      // Inside a string: plain text or an interpolation?
      int depth = 0;
      std::string_view s = f.text();
      for (uint32_t i = t.begin + 1; i < offset; ++i) {
        if (s[i] == '\\') {
          ++i;
          continue;
        }
        if (s[i] == '$' && i + 1 < offset && s[i + 1] == '{') {
          if (i > t.begin + 1 && s[i - 1] == '$') continue;
          ++depth;
          ++i;
        } else if (s[i] == '}' && depth > 0) {
          --depth;
        }
      }
      if (depth > 0) return Place::Expression;
      *string_begin = t.begin;
      return Place::String;
    }
    if (t.end > offset) break;
    if (t.kind == TokenKind::LineComment || t.kind == TokenKind::BlockComment) continue;
    switch (t.kind) {
      case TokenKind::LBrace:
        stack.push_back({t.kind, prev && (prev->kind == TokenKind::String || prev->kind == TokenKind::Ident)});
        break;
      case TokenKind::LBrack:
      case TokenKind::LParen: stack.push_back({t.kind, false}); break;
      case TokenKind::RBrace:
      case TokenKind::RBrack:
      case TokenKind::RParen:
        if (!stack.empty()) stack.pop_back();
        break;
      default: break;
    }
    prev = &t;
    last_on_line = &t;
  }
  if (!stack.empty() && !stack.back().block) return Place::Expression;
  // In a block body (or at the top): an item position when nothing but a
  // partial name precedes the cursor on its line.
  std::string_view text = f.text();
  uint32_t i = offset;
  while (i > 0 && IsWord(text[i - 1])) --i;
  uint32_t j = i;
  while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t')) --j;
  (void)last_on_line;
  if (j == 0 || text[j - 1] == '\n' || text[j - 1] == '{' || text[j - 1] == '\r') return Place::Item;
  return Place::Expression;
}

}  // namespace

json Completion(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  std::string_view text = c.file->text();
  uint32_t off = c.offset;
  uint32_t word = off;
  while (word > 0 && IsWord(text[word - 1])) --word;
  Completer comp{cx, c, json::array(), {}, nullptr};
  comp.replace = Range{c.file->source->id(), word, off};
  std::vector<const ast::Block*> path = BlockPath(c.file->tree.body, off);
  uint32_t string_begin = 0;
  Place place = PlaceAt(*c.file, off, &string_begin);
  if (place == Place::String) {
    // Enum values of the attribute whose string this is.
    if (const BlockSchema* bs = SchemaOf(cx.schemas, path, path.size())) {
      for (const ast::Attribute& a : path.back()->body.attributes) {
        if (!(a.value->range.begin <= string_begin && string_begin < a.value->range.end)) continue;
        if (const AttributeSchema* as = bs->FindAttribute(a.name))
          for (const std::string& v : as->allowed_values) comp.Add(v, kEnumMember, a.name);
      }
    }
    return {{"isIncomplete", false}, {"items", comp.items}};
  }
  // Unit suffixes after digits: 10Gi| -> 10GiB
  {
    uint32_t k = off;
    while (k > 0 && std::isalpha(static_cast<unsigned char>(text[k - 1]))) --k;
    if (k > 0 && std::isdigit(static_cast<unsigned char>(text[k - 1]))) {
      uint32_t n = k;
      while (n > 0 && (std::isdigit(static_cast<unsigned char>(text[n - 1])) || text[n - 1] == '.')) --n;
      if (n == 0 || !IsWord(text[n - 1])) {
        comp.replace = Range{c.file->source->id(), k, off};
        comp.replace_json = nullptr;
        for (const UnitInfo& u : AllUnits()) {
          const char* dim = u.dimension == UnitDimension::Duration ? "duration"
                            : u.dimension == UnitDimension::Size   ? "size"
                                                                   : "percent";
          comp.Add(std::string(u.suffix), kUnit, dim);
        }
        return {{"isIncomplete", false}, {"items", comp.items}};
      }
    }
  }
  if (place == Place::Item) {
    comp.Items(path);
    return {{"isIncomplete", false}, {"items", comp.items}};
  }
  // The reference chain before the cursor: word(.word|[...])*
  uint32_t b = off;
  int depth = 0;
  while (b > 0) {
    char ch = text[b - 1];
    if (depth > 0) {
      if (ch == '[') --depth;
      else if (ch == ']') ++depth;
      else if (ch == '\n') break;
      --b;
      continue;
    }
    if (IsWord(ch) || ch == '.') --b;
    else if (ch == ']') {
      ++depth;
      --b;
    } else break;
  }
  std::string_view chain = text.substr(b, off - b);
  // Right after `NAME =`: what that attribute takes first (the resources of
  // its reference type, its enum values quoted).
  if (chain.find('.') == std::string_view::npos) {
    uint32_t line_start = b;
    while (line_start > 0 && text[line_start - 1] != '\n') --line_start;
    static const std::regex kAssign(R"(^\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*$)");
    std::string before(text.substr(line_start, b - line_start));
    std::smatch m;
    const BlockSchema* bs = SchemaOf(cx.schemas, path, path.size());
    if (bs && std::regex_match(before, m, kAssign)) {
      if (const AttributeSchema* as = bs->FindAttribute(m[1].str())) {
        if (!as->ref_type.empty())
          for (const Declaration& d : c.module->decls)
            if (d.kind == SymbolKind::Resource && d.type == as->ref_type)
              comp.Add(d.Key(), kReference, as->name + " takes a " + as->ref_type, "", "", "0" + d.Key());
        for (const std::string& v : as->allowed_values)
          comp.Add("\"" + v + "\"", kEnumMember, as->name, "", "", "0" + v);
      }
    }
  }
  comp.Expression(chain, path);
  return {{"isIncomplete", false}, {"items", comp.items}};
}

// ---------------------------------------------------------------- signature help

json SignatureHelp(Context& cx, const json& params) {
  Cursor c = At(cx, params);
  if (!c.file) return nullptr;
  int depth = 0, commas = 0;
  const std::vector<Token>& toks = c.file->tokens;
  size_t n = 0;
  while (n < toks.size() && toks[n].end <= c.offset) ++n;
  for (size_t i = n; i-- > 0;) {
    TokenKind k = toks[i].kind;
    if (k == TokenKind::RParen || k == TokenKind::RBrack || k == TokenKind::RBrace) ++depth;
    else if (k == TokenKind::LBrack || k == TokenKind::LBrace) {
      if (depth == 0) return nullptr;
      --depth;
    } else if (k == TokenKind::LParen) {
      if (depth > 0) {
        --depth;
        continue;
      }
      if (i == 0 || toks[i - 1].kind != TokenKind::Ident) return nullptr;
      std::string name(c.file->text().substr(toks[i - 1].begin, toks[i - 1].end - toks[i - 1].begin));
      const FunctionDef* fn = FindFunction(name);
      if (!fn) return nullptr;
      // Parameters from the documented signature: name(p1 t1, p2 t2) result
      std::string sig(fn->signature);
      json parameters = json::array();
      size_t open = sig.find('('), close = sig.rfind(')');
      if (open != std::string::npos && close != std::string::npos && close > open + 1) {
        std::string inner = sig.substr(open + 1, close - open - 1);
        int d = 0;
        size_t start = 0;
        for (size_t j = 0; j <= inner.size(); ++j) {
          if (j < inner.size() && (inner[j] == '(' || inner[j] == '[')) ++d;
          if (j < inner.size() && (inner[j] == ')' || inner[j] == ']')) --d;
          if (j == inner.size() || (inner[j] == ',' && d == 0)) {
            size_t s = start;
            while (s < j && inner[s] == ' ') ++s;
            parameters.push_back({{"label", json::array({open + 1 + s, open + 1 + j})}});
            start = j + 1;
          }
        }
      }
      size_t active = parameters.empty() ? 0 : std::min<size_t>(commas, parameters.size() - 1);
      return {{"signatures", json::array({{{"label", sig},
                                           {"documentation", std::string(fn->summary)},
                                           {"parameters", parameters}}})},
              {"activeSignature", 0},
              {"activeParameter", active}};
    } else if (k == TokenKind::Comma && depth == 0) {
      ++commas;
    }
  }
  return nullptr;
}

// ---------------------------------------------------------------- semantic tokens

namespace {

enum TokenType { kNamespace, kType, kClassT, kVariableT, kPropertyT, kFunctionT, kKeywordT, kStringT, kNumberT,
                 kCommentT, kOperatorT, kParameterT, kEnumMemberT };
enum TokenModifier { kDeclaration = 1, kReadonly = 2, kDefaultLibrary = 4 };

struct Span {
  uint32_t begin, end;
  int type;
  int modifiers;
};

class SpanCollector {
 public:
  std::vector<Span> spans;

  void Body(const ast::Body& body, bool top, std::string_view block_type) {
    for (const ast::Attribute& a : body.attributes) {
      bool local = block_type == "locals";
      Add(a.name_range, local ? kVariableT : kPropertyT, local ? kDeclaration : 0);
      if (a.value) Expr(*a.value);
    }
    for (const ast::Block& b : body.blocks) {
      if (top) Add(b.type_range, IsLanguageBlock(b.type) ? kKeywordT : kType, 0);
      else Add(b.type_range, kPropertyT, 0);
      if (top && !b.labels.empty() && b.type != "locals")
        Add(LabelName(b.labels[0]), IsLanguageBlock(b.type) ? kVariableT : kClassT, kDeclaration);
      Body(b.body, false, b.type);
    }
  }

 private:
  void Add(Range r, int type, int mods) {
    if (r.valid() && r.end > r.begin) spans.push_back({r.begin, r.end, type, mods});
  }
  void Expr(const ast::Expr& e) {
    using K = ast::ExprKind;
    switch (e.kind) {
      case K::Name: {
        const std::string& n = e.As<ast::Name>().name;
        if (shadowed_.count(n)) Add(e.range, kParameterT, 0);
        else if (IsBuiltinRoot(n)) Add(e.range, kNamespace, kDefaultLibrary);
        else Add(e.range, kType, 0);
        return;
      }
      case K::GetAttr: {
        const auto& g = e.As<ast::GetAttr>();
        Expr(*g.object);
        int type = kPropertyT, mods = 0;
        if (g.object->kind == K::Name) {
          const std::string& root = g.object->As<ast::Name>().name;
          if (shadowed_.count(root)) type = kPropertyT;
          else if (root == "var" || root == "local") {
            type = kVariableT;
            mods = kReadonly;
          } else if (root == "module") type = kNamespace;
          else if (!IsBuiltinRoot(root)) type = kClassT;
        }
        Add(g.name_range, type, mods);
        return;
      }
      case K::Splat: {
        const auto& s = e.As<ast::Splat>();
        Expr(*s.source);
        for (const auto& step : s.chain)
          if (step.key) Expr(*step.key);
          else Add(step.range, kPropertyT, 0);
        return;
      }
      case K::Call: {
        const auto& call = e.As<ast::Call>();
        Add(call.name_range, kFunctionT, kDefaultLibrary);
        for (const auto& a : call.args) Expr(*a);
        return;
      }
      case K::Object:
        for (const auto& i : e.As<ast::Object>().items) {
          Add(i.key_range, kPropertyT, 0);
          Expr(*i.value);
        }
        return;
      case K::For: {
        const auto& f = e.As<ast::For>();
        Expr(*f.collection);
        std::vector<std::string> added;
        if (!f.key_var.empty()) {
          Add(f.key_var_range, kParameterT, kDeclaration);
          if (shadowed_.insert(f.key_var).second) added.push_back(f.key_var);
        }
        Add(f.value_var_range, kParameterT, kDeclaration);
        if (shadowed_.insert(f.value_var).second) added.push_back(f.value_var);
        if (f.key) Expr(*f.key);
        if (f.value) Expr(*f.value);
        if (f.cond) Expr(*f.cond);
        for (const auto& v : added) shadowed_.erase(v);
        return;
      }
      default:
        ForEachChild(e, [this](const ast::Expr& child) { Expr(child); });
        return;
    }
  }
  std::set<std::string> shadowed_;
};

int TokenSpanType(TokenKind k) {
  switch (k) {
    case TokenKind::String:
    case TokenKind::Heredoc: return kStringT;
    case TokenKind::Number:
    case TokenKind::UnitNumber: return kNumberT;
    case TokenKind::LineComment:
    case TokenKind::BlockComment: return kCommentT;
    case TokenKind::True:
    case TokenKind::False:
    case TokenKind::Null:
    case TokenKind::For:
    case TokenKind::In:
    case TokenKind::If: return kKeywordT;
    case TokenKind::Arrow:
    case TokenKind::Question:
    case TokenKind::Colon:
    case TokenKind::Not:
    case TokenKind::Plus:
    case TokenKind::Minus:
    case TokenKind::Star:
    case TokenKind::Slash:
    case TokenKind::Percent:
    case TokenKind::Eq:
    case TokenKind::Ne:
    case TokenKind::Lt:
    case TokenKind::Le:
    case TokenKind::Gt:
    case TokenKind::Ge:
    case TokenKind::And:
    case TokenKind::Or: return kOperatorT;
    default: return -1;
  }
}

}  // namespace

json SemanticTokensLegend() {
  return {{"tokenTypes", {"namespace", "type", "class", "variable", "property", "function", "keyword", "string",
                          "number", "comment", "operator", "parameter", "enumMember"}},
          {"tokenModifiers", {"declaration", "readonly", "defaultLibrary"}}};
}

std::vector<uint32_t> SemanticTokens(const ParsedFile& f, Encoding encoding) {
  SpanCollector ast_spans;
  ast_spans.Body(f.tree.body, true, "");
  std::vector<Span>& over = ast_spans.spans;
  std::sort(over.begin(), over.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  // Token spans, cut where the syntax tree says more (names inside `${ }`).
  std::vector<Span> spans;
  size_t oi = 0;
  for (const Token& t : f.tokens) {
    int type = TokenSpanType(t.kind);
    if (type < 0) continue;
    while (oi < over.size() && over[oi].end <= t.begin) ++oi;
    uint32_t pos = t.begin;
    for (size_t j = oi; j < over.size() && over[j].begin < t.end; ++j) {
      if (over[j].begin > pos) spans.push_back({pos, over[j].begin, type, 0});
      pos = std::max(pos, over[j].end);
    }
    if (pos < t.end) spans.push_back({pos, t.end, type, 0});
  }
  // AST spans that overlap no other AST span win; the merged list is sorted
  // and without overlaps.
  uint32_t last_end = 0;
  for (const Span& s : over) {
    if (s.begin < last_end) continue;
    spans.push_back(s);
    last_end = s.end;
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::vector<uint32_t> data;
  uint32_t prev_line = 0, prev_char = 0;
  uint32_t covered = 0;
  std::string_view text = f.text();
  for (const Span& s : spans) {
    if (s.begin < covered) continue;  // an overlap (a name inside a token counted twice)
    covered = s.end;
    // One entry per line of a multi-line span.
    uint32_t b = s.begin;
    while (b < s.end) {
      uint32_t e = b;
      while (e < s.end && text[e] != '\n' && text[e] != '\r') ++e;
      if (e > b) {
        Position pb = f.lines.At(b, encoding), pe = f.lines.At(e, encoding);
        uint32_t delta_line = pb.line - prev_line;
        uint32_t delta_char = delta_line == 0 ? pb.character - prev_char : pb.character;
        data.insert(data.end(), {delta_line, delta_char, pe.character - pb.character, static_cast<uint32_t>(s.type),
                                 static_cast<uint32_t>(s.modifiers)});
        prev_line = pb.line;
        prev_char = pb.character;
      }
      b = e;
      while (b < s.end && (text[b] == '\n' || text[b] == '\r')) ++b;
    }
  }
  return data;
}

// ---------------------------------------------------------------- code actions

json FixesFor(const Diagnostic& d, std::string_view text, const LineIndex& lines, Encoding encoding,
              const std::string& uri) {
  json fixes = json::array();
  if (!d.range.valid() || d.range.end > text.size()) return fixes;
  std::string_view target = text.substr(d.range.begin, d.range.end - d.range.begin);
  static const std::regex kMean(R"(did you mean '([^']+)'\?)");
  static const std::regex kQuoted(R"(did you mean (\"[^\"]*\")\?)");
  std::smatch m;
  auto fix = [&](const std::string& title, Range r, const std::string& with) {
    fixes.push_back({{"title", title},
                     {"edit", {{"changes", {{uri, json::array({{{"range", RangeJson(lines, r, encoding)},
                                                                  {"newText", with}}})}}}}}});
  };
  if (std::regex_search(d.help, m, kQuoted)) {
    fix("Replace with " + m[1].str(), d.range, m[1].str());
  } else if (std::regex_search(d.help, m, kMean)) {
    std::string s = m[1].str();
    size_t dots_t = std::count(target.begin(), target.end(), '.'), dots_s = std::count(s.begin(), s.end(), '.');
    if (!target.empty() && target.front() == '"' && s.front() != '"') {
      fix("Replace with \"" + s + "\"", d.range, "\"" + s + "\"");
    } else if (dots_t == dots_s) {
      fix("Replace with '" + s + "'", d.range, s);
    } else if (dots_s == 0 && dots_t > 0) {
      // The suggestion names the last step: var.regon -> region
      size_t dot = target.rfind('.');
      fix("Replace with '" + s + "'", Range{d.range.file, d.range.begin + static_cast<uint32_t>(dot) + 1, d.range.end}, s);
    }
  }
  // Something to declare (an undeclared region): an empty declaration at the
  // end of the file.
  static const std::regex kDeclare(R"re(^declare it: ([a-z_]+) "([A-Za-z_][A-Za-z0-9_-]*)")re");
  if (std::regex_search(d.help, m, kDeclare)) {
    uint32_t end = static_cast<uint32_t>(text.size());
    std::string decl = std::string(text.empty() || text.back() == '\n' ? "" : "\n") + "\n" + m[1].str() + " \"" +
                       m[2].str() + "\" {}\n";
    fix("Declare " + m[1].str() + " \"" + m[2].str() + "\"", Range{d.range.file, end, end}, decl);
  }
  return fixes;
}

json CodeActions(Context& cx, const json& params) {
  json out = json::array();
  const json& diags = params.value("context", json::object()).value("diagnostics", json::array());
  for (const json& d : diags) {
    if (!d.contains("data") || !d["data"].contains("fixes")) continue;
    for (const json& f : d["data"]["fixes"]) {
      json action = {{"title", f["title"]}, {"kind", "quickfix"}, {"diagnostics", json::array({d})},
                     {"edit", f["edit"]}};
      if (d["data"]["fixes"].size() == 1) action["isPreferred"] = true;
      out.push_back(action);
    }
  }
  (void)cx;
  return out;
}

// ---------------------------------------------------------------- inlay hints

json InlayHints(Context& cx, const json& params) {
  auto f = DocumentOf(cx, params);
  if (!f) return nullptr;
  json out = json::array();
  std::string dir = fs::path(f->path).parent_path().string();
  std::shared_ptr<const Evaluated> ev = cx.evaluated ? cx.evaluated(dir) : nullptr;
  uint32_t lo = 0, hi = static_cast<uint32_t>(f->text().size());
  if (params.contains("range")) {
    const json& r = params["range"];
    lo = f->lines.Offset({r["start"]["line"].get<uint32_t>(), r["start"]["character"].get<uint32_t>()}, cx.encoding);
    hi = f->lines.Offset({r["end"]["line"].get<uint32_t>(), r["end"]["character"].get<uint32_t>()}, cx.encoding);
  }
  auto hint = [&](uint32_t at, const std::string& label) {
    if (at < lo || at > hi) return;
    out.push_back({{"position", ToJson(f->lines.At(at, cx.encoding))}, {"label", label}, {"paddingLeft", true}});
  };
  // Unit literals in their canonical unit (90m -> 1h 30m is not done; 1.5h -> 90m is).
  for (const Token& t : f->tokens) {
    if (t.kind != TokenKind::UnitNumber) continue;
    std::string_view lit = f->text().substr(t.begin, t.end - t.begin);
    size_t k = 0;
    while (k < lit.size() && (std::isdigit(static_cast<unsigned char>(lit[k])) || lit[k] == '.')) ++k;
    const UnitInfo* u = FindUnit(lit.substr(k));
    if (!u || u->dimension == UnitDimension::Percent) continue;
    double v = std::strtod(std::string(lit.substr(0, k)).c_str(), nullptr) * u->factor;
    std::string canonical = u->dimension == UnitDimension::Duration ? FormatDuration(v) : FormatSize(v);
    if (canonical != lit) hint(t.end, "= " + canonical);
  }
  // Evaluated locals (root module checks only).
  if (ev) {
    for (const ast::Block& b : f->tree.body.blocks) {
      if (b.type != "locals") continue;
      for (const ast::Attribute& a : b.body.attributes) {
        auto it = ev->locals.find(a.name);
        if (it == ev->locals.end() || it->second.kind() == Value::Kind::Unknown) continue;
        if (a.value->kind == ast::ExprKind::Literal) continue;
        std::string v = it->second.ToString();
        if (v.size() > 60 || v.find('\n') != std::string::npos) continue;
        auto squeeze = [](std::string_view t) {
          std::string out;
          for (char ch : t)
            if (!std::isspace(static_cast<unsigned char>(ch))) out.push_back(ch);
          return out;
        };
        if (squeeze(v) == squeeze(f->Text(a.value->range))) continue;  // the value is what is written
        hint(a.value->range.end, "= " + v);
      }
    }
  }
  return out;
}

}  // namespace plinth::lsp
