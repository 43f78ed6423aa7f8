// The checker works in two passes over each module:
//  1. Analyse (once per module directory): collect declarations, check block
//     structure against schemas, resolve every reference to a declaration,
//     find dependency cycles and compute an evaluation order. Errors found
//     here are reported once even if the module is instantiated many times.
//  2. Instantiate (once per module instance): evaluate declarations in order,
//     expand count/for_each and type-check values against schemas.

#include "compiler/check/checker.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <unordered_map>

#include "compiler/check/backend_block.h"
#include "compiler/check/console.h"
#include "compiler/check/loader.h"
#include "compiler/check/types_expr.h"
#include "compiler/eval/evaluator.h"
#include "compiler/eval/regex.h"

namespace plinth {

// A table keyed by syntax nodes (pointers), flat (open addressing over a
// vector): a large module's memo holds one entry per declaration, and node-
// based maps spent most of an incremental check on cache misses.
template <class T>
class SyntaxTable {
 public:
  void Reserve(size_t n) {
    items_.reserve(n);
    if (slots_.size() < 2 * n) Rehash(2 * n);
  }
  // The entry for `key`, taken out of the table (a later Take of the same
  // key finds nothing); null when absent.
  T* Take(const void* key) {
    if (slots_.empty()) return nullptr;
    for (size_t i = Hash(key);; i = (i + 1) & (slots_.size() - 1)) {
      uint32_t slot = slots_[i];
      if (slot == 0) return nullptr;
      Item& item = items_[slot - 1];
      if (item.key == key) {
        if (item.taken) return nullptr;
        item.taken = true;
        return &item.value;
      }
    }
  }
  // Adds `key` (not yet in the table). The reference lasts until the next Put.
  T& Put(const void* key, T value) {
    if (2 * (items_.size() + 1) > slots_.size()) Rehash(std::max<size_t>(64, 4 * (items_.size() + 1)));
    items_.push_back({key, std::move(value), false});
    Insert(key, static_cast<uint32_t>(items_.size()));
    return items_.back().value;
  }
  size_t size() const { return items_.size(); }

 private:
  struct Item {
    const void* key;
    T value;
    bool taken;
  };
  size_t Hash(const void* key) const {
    return static_cast<size_t>((reinterpret_cast<uintptr_t>(key) >> 3) * 0x9E3779B97F4A7C15ull >> 20) &
           (slots_.size() - 1);
  }
  void Insert(const void* key, uint32_t slot) {
    size_t i = Hash(key);
    while (slots_[i] != 0) i = (i + 1) & (slots_.size() - 1);
    slots_[i] = slot;
  }
  void Rehash(size_t at_least) {
    size_t n = 64;
    while (n < at_least) n *= 2;
    slots_.assign(n, 0);
    for (uint32_t i = 0; i < items_.size(); ++i) Insert(items_[i].key, i + 1);
  }
  std::vector<Item> items_;
  std::vector<uint32_t> slots_;  // 0: empty, else an index into items_ + 1
};

// What one check of a CheckSession keeps for the next (see checker.h). Keys
// are pointers into syntax trees: `trees` keeps every tree they point into
// alive, so an address cannot be reused by a newer tree.
struct CheckMemo {
  // One declaration of one module instance (a resource block with all its
  // count/for_each instances, or a local value).
  struct Entry {
    std::vector<const void*> deps;   // the syntax of what it refers to, in order
    bool uses_vars = false;
    Value value;
    std::vector<Diagnostic> diags;   // what evaluating it reported
    size_t first = 0, count = 0;     // its resource instances in `config` (plus the instance's shift)
    bool reusable = false;           // false: only the value is kept (to tell whether it changed)
    // A module call: what its instances added besides resources (moves,
    // policies, alerts, ...; null when nothing), and how many instances.
    std::shared_ptr<const CheckedConfig> extra;
    size_t instances = 0;
  };
  // One module instance: its declarations by syntax (the block, or a
  // local's attribute: what a declaration is made of, so a changed file's
  // declarations are new keys).
  struct Instance {
    std::vector<std::string> inherited_deps;  // what resources reading a variable depend on
    std::vector<Range> call_sites;
    SyntaxTable<Entry> entries;
    // Added to entries' `first`: a module call kept whole moves its
    // instances' resources to where this check puts them.
    int64_t shift = 0;
  };
  std::string dir;
  const SchemaRegistry* schemas = nullptr;
  size_t schema_types = 0;
  std::vector<std::shared_ptr<const ast::File>> trees;
  std::map<std::string, Instance> instances;  // by address prefix ("" for the root); sorted: a call's instances are a range
  // The files of each module directory (whether a module is unchanged).
  std::unordered_map<std::string, std::vector<const ast::File*>> module_files;
  // Analysis by block: what checking a block's structure found, and the
  // references a declaration's syntax makes (keyed by SyntaxOf).
  struct Structure {
    std::vector<Diagnostic> diags;
    Type var_type;
    bool sensitive = false;
  };
  SyntaxTable<Structure> structure;
  SyntaxTable<std::vector<Reference>> references;
  std::shared_ptr<CheckedConfig> config;           // the check's result
  size_t reused = 0, evaluated = 0;
};

namespace {

namespace fs = std::filesystem;

enum class DeclKind : uint8_t { Variable, Local, Output, Module, Resource, Provider, Import };

const char* KindWord(DeclKind k) {
  switch (k) {
    case DeclKind::Variable: return "variable";
    case DeclKind::Local: return "local";
    case DeclKind::Output: return "output";
    case DeclKind::Provider: return "provider";
    case DeclKind::Module: return "module";
    case DeclKind::Resource: return "resource";
    case DeclKind::Import: return "import";
  }
  return "";
}

struct ModuleInfo;

struct Decl {
  DeclKind kind;
  std::string name;  // resources: "type.name"
  std::string type;  // resources
  std::string label;
  const ast::Block* block = nullptr;
  const ast::Attribute* attr = nullptr;  // locals
  Range range;
  std::vector<uint32_t> deps;
  std::vector<Range> dep_sites;
  bool in_cycle = false;
  bool referenced = false;
  const ResourceSchema* schema = nullptr;
  const ModuleInfo* child = nullptr;  // module calls
  const ProviderConfigSchema* provider_schema = nullptr;  // provider blocks
  std::vector<uint32_t> resource_deps;  // resources and module calls this depends on, through locals
  bool uses_vars = false;                // depends on a variable, directly or through locals
  Type var_type;                         // variables
  bool sensitive = false;                // variables and outputs

  std::string Address() const {
    switch (kind) {
      case DeclKind::Variable: return "var." + name;
      case DeclKind::Local: return "local." + name;
      case DeclKind::Output: return "output." + name;
      case DeclKind::Module: return "module." + name;
      case DeclKind::Resource: return name;
      case DeclKind::Provider: return "provider." + name;
      case DeclKind::Import: return "the import of " + name;
    }
    return name;
  }
};

struct ModuleInfo {
  const Module* module = nullptr;
  std::vector<Decl> decls;
  std::unordered_map<std::string, uint32_t> vars, locals, outputs, modules, resources, providers;
  std::set<std::string, std::less<>> resource_types;
  std::vector<const ast::Block*> policies, policy_tests;
  std::vector<const ast::Block*> alerts, receivers, notifications;  // receivers and notifications: root only
  std::vector<const ast::Block*> scale_rules;
  const ast::Block* backend = nullptr;  // root only (compiler/check/backend_block.h)
  // moved and removed blocks, addresses relative to the module instance
  std::vector<MoveStatement> moves;
  std::vector<RemovedStatement> removals;
  std::vector<uint32_t> imports;  // import declarations (root module)
  std::vector<uint32_t> order;
  bool is_root = false;
  // In a CheckSession: its files, and those of every module it calls, are
  // the last check's (a call of it with unchanged arguments gives the same).
  bool unchanged = false;
};

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

std::string KeySuffix(const Value& key) {
  if (key.is_null()) return "";
  if (key.kind() == Value::Kind::Number) return "[" + FormatNumber(key.as_number()) + "]";
  return "[" + QuoteString(key.as_string()) + "]";
}

const std::set<std::string, std::less<>>& MetaArguments() {
  static const std::set<std::string, std::less<>> meta = {"count", "for_each", "depends_on", "provider"};
  return meta;
}

// The resource type in an instance address: `module.a["x"].bucket.b[0]` -> "bucket".
std::string ResourceTypeOf(std::string_view addr) {
  while (addr.rfind("module.", 0) == 0) {
    size_t i = 7;
    while (i < addr.size() && addr[i] != '.' && addr[i] != '[') ++i;
    if (i < addr.size() && addr[i] == '[') {
      bool quoted = false;
      for (++i; i < addr.size(); ++i) {
        if (addr[i] == '\\' && quoted) {
          ++i;
        } else if (addr[i] == '"') {
          quoted = !quoted;
        } else if (addr[i] == ']' && !quoted) {
          ++i;
          break;
        }
      }
    }
    if (i >= addr.size() || addr[i] != '.') return "";
    addr.remove_prefix(i + 1);
  }
  return std::string(addr.substr(0, addr.find('.')));
}

// A name unique among the resources of one type in a configuration, for
// providers that need one (a region's directory, a bucket's name): the label
// alone at the root, else the module path, label and instance keys joined
// with '-': module.shard["a"].bucket.this[0] -> "shard-a-this-0".
std::string InstanceName(const std::string& prefix, const std::string& label, const Value& key) {
  auto clean = [](std::string s) {
    for (char& c : s) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) c = '_';
    }
    return s;
  };
  auto key_text = [](const Value& k) {
    return k.kind() == Value::Kind::Number ? FormatNumber(k.as_number()) : k.as_string();
  };
  std::string out;
  // prefix: module.a["k"].module.b. -> a-k-b
  size_t i = 0;
  while ((i = prefix.find("module.", i)) != std::string::npos) {
    i += 7;
    size_t end = i;
    while (end < prefix.size() && prefix[end] != '.' && prefix[end] != '[') ++end;
    out += (out.empty() ? "" : "-") + clean(prefix.substr(i, end - i));
    if (end < prefix.size() && prefix[end] == '[') {
      size_t close = prefix.find("].", end);
      std::string k = prefix.substr(end + 1, close - end - 1);
      if (k.size() >= 2 && k.front() == '"') k = k.substr(1, k.size() - 2);
      out += "-" + clean(k);
      end = close + 1;
    }
    i = end;
  }
  out += (out.empty() ? "" : "-") + label;
  if (!key.is_null()) out += "-" + clean(key_text(key));
  return out;
}

std::string JoinNames(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s;
}

const SchemaRegistry& NoSchemas() {
  static const SchemaRegistry none;
  return none;
}

class Checker {
 public:
  // With `prev` and `next` (a CheckSession): declarations whose syntax and
  // inputs are unchanged since `prev` are not evaluated again; what this
  // check computes goes to `next`.
  Checker(SourceManager& sources, Diagnostics& diags, const CheckOptions& options, CheckMemo* prev = nullptr,
          CheckMemo* next = nullptr)
      : prev_(prev),
        next_(next),
        diags_(diags),
        cur_(&diags),
        options_(options),
        schemas_(options.schemas ? options.schemas : &NoSchemas()),
        loader_(std::make_shared<ModuleLoader>(sources, diags, options.threads, options.display_root,
                                              options.overlay, options.parse_cache)),
        sources_(sources) {}

  CheckedConfig Run(const std::string& dir) {
    CheckedConfig out;
    if (prev_ && prev_->config) out.resources.reserve(prev_->config->resources.size());
    const Module* root = loader_->Load(dir, {});
    if (!root) return out;
    ResolveProviders(*root);
    if (next_) {
      next_->schemas = schemas_;
      next_->schema_types = schemas_->TypeNames().size();
      // Another registry (or one that loaded more providers): start afresh.
      if (prev_ && (prev_->schemas != next_->schemas || prev_->schema_types != next_->schema_types)) prev_ = nullptr;
      if (prev_) {
        next_->structure.Reserve(prev_->structure.size());
        next_->references.Reserve(prev_->references.size());
      }
    }
    const ModuleInfo* info = Analyse(root, {});
    if (!info) return out;
    const_cast<ModuleInfo*>(info)->is_root = true;
    root_inputs_ = GatherVariableInputs(dir, options_.variable_sources, sources_, *cur_);
    std::map<std::string, Value> inputs;
    std::map<std::string, Range> input_ranges;
    for (const auto& [name, in] : root_inputs_) {
      if (info->vars.count(name)) {
        inputs[name] = in.value;
        if (in.range.valid()) input_ranges[name] = in.range;
        continue;
      }
      // As Terraform: an explicit value for an undeclared variable is an
      // error, one from a file loaded automatically a warning (the file may
      // serve several configurations), one from the environment ignored.
      if (in.origin == VariableOrigin::Environment) continue;
      std::vector<std::string> names;
      for (const auto& [n, i] : info->vars) names.push_back(n);
      std::string message = "no variable named '" + name + "' is declared";
      if (!in.range.valid()) message += " (set by " + in.source + ")";
      Diagnostic& d = in.origin == VariableOrigin::AutoFile
                          ? cur_->Warning(DiagCode::UndefinedReference, in.name_range, message)
                          : cur_->Error(DiagCode::UndefinedReference, in.name_range, message);
      std::string near = ClosestName(name, names);
      d.help = !near.empty()                        ? "did you mean '" + near + "'?"
               : in.range.valid()                   ? "declare it with a variable block, or remove the assignment"
                                                    : "declare it with a variable block, or remove the --var option";
    }
    std::vector<std::string> chain;
    Instantiate(*info, "", inputs, input_ranges, out, chain);
    // Evaluation order is dependency order; users expect declaration order.
    auto by_position = [](const auto& a, const auto& b) {
      return std::tie(a.range.file, a.range.begin) < std::tie(b.range.file, b.range.begin);
    };
    std::stable_sort(out.variables.begin(), out.variables.end(), by_position);
    std::stable_sort(out.outputs.begin(), out.outputs.end(), by_position);
    std::stable_sort(out.locals.begin(), out.locals.end(), by_position);
    std::stable_sort(out.imports.begin(), out.imports.end(), by_position);
    for (const auto& [path, m] : analysed_) {
      if (m) out.files += m->module->files.size();
    }
    out.modules = analysed_.size();
    // Policy expressions are compiled by the caller after planning: the
    // syntax trees they point into stay alive with the result.
    if (!out.policies.empty() || !out.policy_tests.empty() || !out.alerts.empty() || !out.scale_rules.empty())
      out.syntax = loader_;
    return out;
  }

  // Every syntax tree of the modules analysed (what declarations point into).
  std::vector<std::shared_ptr<const ast::File>> Trees() const {
    std::vector<std::shared_ptr<const ast::File>> trees;
    for (const auto& [dir, info] : analysed_) {
      if (info) trees.insert(trees.end(), info->module->files.begin(), info->module->files.end());
    }
    return trees;
  }

  // An expression as a local value of the root module (RootScope): its
  // references are resolved as a local's are, then it is evaluated against
  // the root instance Run kept (CheckOptions::keep_root_scope).
  Value EvaluateInRoot(const ast::Expr& expr, Diagnostics& diags) {
    if (!root_) return Poison();  // the root module did not load: Run reported why
    ModuleInfo& info = const_cast<ModuleInfo&>(*root_->info);
    std::vector<Reference> refs;
    CollectReferences(expr, refs);
    const size_t errors_before = diags.error_count();
    Diagnostics* saved = cur_;
    cur_ = &diags;
    // A declaration of its own for the duration of the call: nothing else
    // refers to it, and what it records (its dependencies) is dropped.
    Decl line;
    line.kind = DeclKind::Local;
    line.name = "<console>";
    info.decls.push_back(std::move(line));
    ResolveReferences(info, static_cast<uint32_t>(info.decls.size() - 1), refs);
    info.decls.pop_back();
    cur_ = saved;
    if (diags.error_count() > errors_before) return Poison();
    InstanceScope scope(*this, *root_);
    return Evaluate(expr, scope, diags);
  }

 private:
  // Routes diagnostics to the muted sink for the lifetime of the object.
  class Mute {
   public:
    Mute(Checker* c, bool on) : c_(c), saved_(c->cur_) {
      if (on) c->cur_ = &c->muted_;
    }
    ~Mute() { c_->cur_ = saved_; }

   private:
    Checker* c_;
    Diagnostics* saved_;
  };

  static bool Damaged(const Decl& d) { return d.block && d.block->has_errors; }

  // ================================================================ analysis

  const ModuleInfo* Analyse(const Module* module, Range requested_at) {
    if (auto it = analysed_.find(module->dir); it != analysed_.end()) return it->second.get();
    if (std::find(analysing_.begin(), analysing_.end(), module->dir) != analysing_.end()) {
      std::string path;
      bool on = false;
      for (const auto& d : analysing_) {
        on = on || d == module->dir;
        if (on) path += d + " -> ";
      }
      cur_->Error(DiagCode::DependencyCycle, requested_at, "module calls form a cycle: " + path + module->dir)
          .help = "a module cannot call itself, directly or through other modules";
      return nullptr;
    }
    analysing_.push_back(module->dir);
    auto info = std::make_unique<ModuleInfo>();
    info->module = module;
    info->is_root = analysing_.size() == 1;  // the module Run loads first
    CollectDecls(*info);
    for (Decl& d : info->decls) {
      Mute mute(this, Damaged(d));
      if (next_ && !Damaged(d) && d.kind != DeclKind::Local && d.kind != DeclKind::Module) {
        StructureMemoized(*info, d);
      } else {
        CheckStructure(*info, d);
      }
    }
    for (uint32_t i = 0; i < info->decls.size(); ++i) {
      Mute mute(this, Damaged(info->decls[i]));
      const Decl& d = info->decls[i];
      if (next_ && !Damaged(d) && d.kind != DeclKind::Variable) {
        // The references a syntax tree makes do not change; what they
        // resolve to is resolved again (declarations come and go).
        const void* syntax = SyntaxOf(d);
        std::vector<Reference>* kept = prev_ ? prev_->references.Take(syntax) : nullptr;
        std::vector<Reference> refs;
        if (kept) refs = std::move(*kept);
        else CollectDeclReferences(d, refs);
        ResolveReferences(*info, i, next_->references.Put(syntax, std::move(refs)));
        continue;
      }
      ResolveDeps(*info, i);
    }
    LinkImports(*info);
    OrderAndFindCycles(*info);
    ComputeResourceDeps(*info);
    MarkPolicyReferences(*info);
    for (const Decl& d : info->decls) {
      // A module with parse errors may have lost the references that use a variable.
      if (d.kind == DeclKind::Variable && !d.referenced && !module->has_errors) {
        cur_->Warning(DiagCode::UnusedVariable, d.range, "variable '" + d.name + "' is declared but never used")
            .help = "remove it, or reference it as var." + d.name;
      }
    }
    if (next_) {
      std::vector<const ast::File*> files;
      for (const auto& f : module->files) files.push_back(f.get());
      bool same = prev_ && !module->has_errors;
      if (same) {
        auto it = prev_->module_files.find(module->dir);
        same = it != prev_->module_files.end() && it->second == files;
      }
      for (const Decl& d : info->decls) {
        if (d.kind == DeclKind::Module) same = same && d.child && d.child->unchanged;
      }
      info->unchanged = same;
      next_->module_files[module->dir] = std::move(files);
    }
    analysing_.pop_back();
    const ModuleInfo* result = info.get();
    analysed_[module->dir] = std::move(info);
    return result;
  }

  void Declare(ModuleInfo& info, std::unordered_map<std::string, uint32_t>& table, Decl&& decl) {
    auto it = table.find(decl.name);
    if (it != table.end()) {
      const Decl& first = info.decls[it->second];
      Diagnostic& d = cur_->Error(DiagCode::DuplicateDeclaration, decl.range,
                                   std::string(KindWord(decl.kind)) + " '" + decl.name + "' is declared twice");
      d.notes.push_back({first.range, "first declared here"});
      d.help = "rename or remove one of them";
      return;
    }
    table.emplace(decl.name, static_cast<uint32_t>(info.decls.size()));
    info.decls.push_back(std::move(decl));
  }

  bool ExpectLabels(const ast::Block& b, size_t n, std::string_view what) {
    if (b.labels.size() == n) {
      for (const auto& l : b.labels) {
        if (!IsIdentifier(l.value)) {
          Diagnostic& d = cur_->Error(DiagCode::InvalidLabels, l.range, "'" + l.value + "' is not a valid name");
          d.help = l.value.find('-') != std::string::npos
                       ? "names are referenced as TYPE.NAME, where '-' would mean minus: write '" +
                             [&] {
                               std::string v = l.value;
                               std::replace(v.begin(), v.end(), '-', '_');
                               return v;
                             }() +
                             "'"
                       : "names start with a letter or '_' and contain letters, digits and '_'";
          return false;
        }
      }
      return true;
    }
    Range r = b.labels.size() > n ? b.labels[n].range : b.type_range;
    Diagnostic& d = cur_->Error(DiagCode::InvalidLabels, r,
                                 "a '" + b.type + "' block takes " + (n == 0 ? "no labels" : n == 1 ? "one label" : "labels") +
                                     ", not " + std::to_string(b.labels.size()));
    d.help = n == 0 ? "write: " + b.type + " { ... }" : "write: " + b.type + " \"" + std::string(what) + "\" { ... }";
    return false;
  }

  // Out-of-process providers: the root module's provider blocks that name a
  // `source`, or a provider the registry does not know, go to the resolver
  // before any block is checked, so their resource types are known.
  void ResolveProviders(const Module& root) {
    std::vector<ProviderRequest> requests;
    for (const auto& file_ptr : root.files) {
      const ast::File& file = *file_ptr;
      for (const ast::Block& b : file.body.blocks) {
        if (b.type != "provider" || b.labels.size() != 1) continue;
        ProviderRequest r;
        r.name = b.labels[0].value;
        r.name_range = b.labels[0].range;
        if (const ast::Attribute* src = b.body.Find("source")) {
          r.source_range = src->value->range;
          std::optional<std::string> text = LiteralText(*src->value);
          if (!text || text->empty()) {
            resolved_names_.insert(r.name);  // this error is the one to fix
            cur_->Error(DiagCode::TypeMismatch, src->value->range,
                         "a provider's source must be a literal string, known before anything is evaluated")
                .help = "write the path or command name as text: source = \"./providers/plinth-provider-" + r.name +
                        "\"";
            continue;
          }
          r.source = *text;
        } else if (schemas_->FindProvider(r.name) || !options_.provider_resolver ||
                   !ClosestName(r.name, schemas_->ProviderNames()).empty()) {
          continue;  // a known provider, nothing that could load another, or a typo (reported with a suggestion)
        }
        requests.push_back(std::move(r));
      }
    }
    if (requests.empty()) return;
    if (!options_.provider_resolver) {
      for (const ProviderRequest& r : requests) {
        cur_->Error(DiagCode::UnknownBlockType, r.source_range,
                     "provider '" + r.name + "' runs in another process, which this command does not start")
            .help = "run plinth validate, plan or apply to check it with the provider's schemas";
      }
      return;
    }
    for (const ProviderRequest& r : requests) resolved_names_.insert(r.name);
    schemas_ = &options_.provider_resolver->Resolve(*schemas_, requests, *cur_);
  }

  // The text of a string literal without interpolation.
  static std::optional<std::string> LiteralText(const ast::Expr& e) { return ::plinth::LiteralString(e); }

  void CollectDecls(ModuleInfo& info) {
    static const std::vector<std::string> keywords = {"variable", "locals", "output", "module", "policy", "backend",
                                                      "policy_test", "provider", "moved", "removed", "import",
                                                      "alert", "receiver", "notification", "scale_rule"};
    size_t blocks = 0;
    for (const auto& file_ptr : info.module->files) {
      blocks += file_ptr->body.blocks.size();
      for (const ast::Block& b : file_ptr->body.blocks) {
        if (b.type == "locals") blocks += b.body.attributes.size();
      }
    }
    info.decls.reserve(blocks);
    info.resources.reserve(blocks);
    for (const auto& file_ptr : info.module->files) {
      const ast::File& file = *file_ptr;
      for (const ast::Attribute& a : file.body.attributes) {
        cur_->Error(DiagCode::UnknownBlockType, a.name_range, "attributes cannot be set at the top level")
            .help = "put it in a block: locals { " + a.name + " = ... }";
      }
      for (const ast::Block& b : file.body.blocks) {
        Decl d;
        d.block = &b;
        // Too many labels is reported, but the block is still declared under
        // its first label so references to it do not cascade.
        auto first_label_usable = [&] { return !b.labels.empty() && IsIdentifier(b.labels[0].value); };
        if (b.type == "variable" || b.type == "output" || b.type == "module") {
          if (!ExpectLabels(b, 1, "name") && !(b.labels.size() > 1 && first_label_usable())) continue;
          d.kind = b.type == "variable" ? DeclKind::Variable : b.type == "output" ? DeclKind::Output : DeclKind::Module;
          d.name = b.labels[0].value;
          d.range = b.labels[0].range;
          auto& table = d.kind == DeclKind::Variable ? info.vars : d.kind == DeclKind::Output ? info.outputs : info.modules;
          Declare(info, table, std::move(d));
        } else if (b.type == "provider") {
          if (!ExpectLabels(b, 1, "provider name")) continue;
          const ProviderConfigSchema* ps = schemas_->FindProvider(b.labels[0].value);
          if (!ps && resolved_names_.count(b.labels[0].value)) continue;  // the resolver said why
          if (!ps) {
            std::vector<std::string> names = schemas_->ProviderNames();
            Diagnostic& diag = cur_->Error(DiagCode::UnknownBlockType, b.labels[0].range,
                                            "no provider named '" + b.labels[0].value + "' takes configuration");
            std::string near = ClosestName(b.labels[0].value, names);
            diag.help = near.empty() ? "configurable providers: " + JoinNames(names) : "did you mean '" + near + "'?";
            continue;
          }
          if (!info.is_root) {
            cur_->Error(DiagCode::InvalidMetaArgument, b.type_range,
                         "a provider block belongs in the root module; modules use the root's providers")
                .help = "move this block to the configuration you run plinth on";
            continue;
          }
          d.kind = DeclKind::Provider;
          d.provider_schema = ps;
          d.name = b.labels[0].value;
          d.range = b.labels[0].range;
          Declare(info, info.providers, std::move(d));
        } else if (b.type == "policy") {
          if (ExpectLabels(b, 1, "name") && CheckPolicyBlock(b)) info.policies.push_back(&b);
        } else if (b.type == "alert") {
          if (ExpectLabels(b, 1, "name") && CheckAlertBlock(b, info)) info.alerts.push_back(&b);
        } else if (b.type == "scale_rule") {
          if (ExpectLabels(b, 1, "name") && CheckScaleRuleBlock(b, info)) info.scale_rules.push_back(&b);
        } else if (b.type == "receiver" || b.type == "notification") {
          bool receiver = b.type == "receiver";
          if (!ExpectLabels(b, receiver ? 1 : 0, receiver ? "name" : "") || b.has_errors) continue;
          if (!info.is_root) {
            cur_->Error(DiagCode::InvalidMetaArgument, b.type_range,
                        "a " + b.type + " block belongs in the root module; modules' alerts use the root's")
                .help = "move this block to the configuration you run plinth on";
            continue;
          }
          if (receiver) {
            CheckAllowed(b.body, {"url", "hmac_secret", "bearer_token", "send_resolved", "max_alerts", "timeout"}, {},
                         "a receiver block");
            if (!b.body.Find("url")) {
              cur_->Error(DiagCode::MissingAttribute, b.labels[0].range,
                          "receiver '" + b.labels[0].value + "' has no 'url'")
                  .help = "write: url = \"http://127.0.0.1:9099/alerts\"";
              continue;
            }
            for (const ast::Block* other : info.receivers) {
              if (other->labels[0].value == b.labels[0].value) {
                cur_->Error(DiagCode::DuplicateDeclaration, b.labels[0].range,
                            "receiver '" + b.labels[0].value + "' is declared twice")
                    .help = "rename one of them";
              }
            }
            info.receivers.push_back(&b);
          } else {
            static const std::vector<std::string> route_attrs = {"receiver", "group_by", "group_wait",
                                                                 "group_interval", "repeat_interval"};
            std::vector<std::string> attrs = route_attrs;
            attrs.push_back("alertmanager");
            attrs.push_back("evaluation_interval");
            CheckAllowed(b.body, attrs, {"route"}, "a notification block");
            for (const ast::Block& r : b.body.blocks) {
              if (r.type != "route") continue;
              std::vector<std::string> child = route_attrs;
              child.push_back("match");
              CheckAllowed(r.body, child, {}, "a route block");
              if (!r.labels.empty()) {
                cur_->Error(DiagCode::InvalidLabels, r.type_range, "a route block takes no labels")
                    .help = "write: route { match = { severity = \"page\" }  receiver = \"pager\" }";
              }
            }
            if (!info.notifications.empty()) {
              cur_->Error(DiagCode::DuplicateDeclaration, b.type_range, "a configuration has one notification block")
                  .help = "merge the two: child routes go in route { ... } blocks";
              continue;
            }
            info.notifications.push_back(&b);
          }
        } else if (b.type == "policy_test") {
          // The label is a description ("unencrypted buckets are denied"), not a name.
          if (b.labels.size() != 1) {
            cur_->Error(DiagCode::InvalidLabels, b.type_range, "a 'policy_test' block takes one label, a description")
                .help = "write: policy_test \"what it shows\" { ... }";
          } else if (CheckPolicyTestBlock(b)) {
            info.policy_tests.push_back(&b);
          }
        } else if (b.type == "moved" || b.type == "removed") {
          if (!ExpectLabels(b, 0, "") || b.has_errors) continue;
          if (b.type == "moved") {
            CheckMovedBlock(b, info);
          } else {
            CheckRemovedBlock(b, info);
          }
        } else if (b.type == "import") {
          CollectImport(info, b);
        } else if (b.type == "backend") {
          if (!info.is_root) {
            cur_->Error(DiagCode::UnknownBlockType, b.type_range, "a backend block belongs in the root module")
                .help = "move it to the configuration's own directory: a module's state is its caller's";
          } else if (info.backend) {
            cur_->Error(DiagCode::DuplicateDeclaration, b.type_range, "a configuration has one backend block")
                .help = "remove one of them";
          } else {
            info.backend = &b;
            auto read = ReadBackendBlock(b);
            if (auto* problem = std::get_if<BackendProblem>(&read)) {
              cur_->Error(problem->code, problem->range, problem->message).help = problem->help;
            }
          }
        } else if (b.type == "locals") {
          if (!ExpectLabels(b, 0, "")) continue;
          for (const ast::Block& nested : b.body.blocks) {
            cur_->Error(DiagCode::UnknownAttribute, nested.type_range, "a locals block holds only attributes")
                .help = "write: " + nested.type + " = { ... }";
          }
          for (const ast::Attribute& a : b.body.attributes) {
            Decl l;
            l.kind = DeclKind::Local;
            l.block = &b;
            l.attr = &a;
            l.name = a.name;
            l.range = a.name_range;
            Declare(info, info.locals, std::move(l));
          }
        } else if (const ResourceSchema* schema = schemas_->Find(b.type)) {
          info.resource_types.insert(b.type);
          if (!ExpectLabels(b, 1, "name") && !(b.labels.size() > 1 && first_label_usable())) continue;
          d.kind = DeclKind::Resource;
          d.schema = schema;
          d.type = b.type;
          d.label = b.labels[0].value;
          d.name = b.type + "." + d.label;
          d.range = b.labels[0].range;
          Declare(info, info.resources, std::move(d));
        } else {
          std::vector<std::string> names = keywords;
          for (const auto& t : schemas_->TypeNames()) names.push_back(t);
          Diagnostic& diag = cur_->Error(DiagCode::UnknownBlockType, b.type_range, "unknown block type '" + b.type + "'");
          std::string near = ClosestName(b.type, names);
          diag.help = near.empty() ? "top-level blocks are variable, locals, output, module, provider, policy and resource types: " +
                                         JoinNames(schemas_->TypeNames())
                                   : "did you mean '" + near + "'?";
        }
      }
    }
  }

  // ------------------------------------------------------ moved and removed
  // `from` and `to` are addresses written as bare references, never
  // evaluated: each is parsed here, relative to the declaring module.

  struct Endpoint {
    std::string address;      // as plans spell it: module.net["eu"].marker.a[0]
    bool is_module = false;   // ends at a module call (or module instance)
    bool has_key = false;     // the last step has an instance key
    std::string type;         // resources: the type
    std::string first_step;   // what is declared in this module: "marker.a" or "module.net"
    bool nested = false;      // reaches into a child module
  };

  std::optional<Endpoint> ParseEndpoint(const ast::Attribute& a, const char* role) {
    const std::string syntax_help = std::string("write the address as a reference: ") + role +
                                    " = marker.a, marker.a[0], marker.a[\"key\"], module.net or module.net.marker.a";
    struct Step {
      std::string name;
      std::optional<Value> key;
      Range range;
    };
    std::vector<Step> steps;
    const ast::Expr* e = a.value.get();
    bool ok = true;
    // Walk from the outside in; steps come out reversed.
    while (true) {
      if (e->kind == ast::ExprKind::GetAttr) {
        const auto& g = e->As<ast::GetAttr>();
        steps.push_back({g.name, std::nullopt, g.name_range});
        e = g.object.get();
      } else if (e->kind == ast::ExprKind::Index) {
        const auto& ix = e->As<ast::Index>();
        std::optional<Value> key;
        if (ix.key->kind == ast::ExprKind::Literal &&
            ix.key->As<ast::Literal>().value.kind() == Value::Kind::Number) {
          const Value& v = ix.key->As<ast::Literal>().value;
          if (v.is_integer() && v.as_number() >= 0) key = v;
        } else if (std::optional<std::string> text = LiteralText(*ix.key)) {
          key = Value::String(*text);
        }
        if (!key) {
          cur_->Error(DiagCode::InvalidMove, ix.key->range,
                      "an instance key in '" + std::string(role) +
                          "' must be a whole number or a string written out, not an expression")
              .help = "write the key itself: marker.a[0] or marker.a[\"eu\"]";
          return std::nullopt;
        }
        const ast::Expr* inner = ix.object.get();
        if (inner->kind != ast::ExprKind::GetAttr && inner->kind != ast::ExprKind::Name) {
          ok = false;
          break;
        }
        // The key belongs to the step the object ends with.
        steps.push_back({"", key, ix.key->range});
        e = inner;
      } else if (e->kind == ast::ExprKind::Name) {
        steps.push_back({e->As<ast::Name>().name, std::nullopt, e->range});
        break;
      } else {
        ok = false;
        break;
      }
    }
    if (!ok) {
      cur_->Error(DiagCode::InvalidMove, a.value->range, "'" + std::string(role) + "' must be an address, not a value")
          .help = syntax_help;
      return std::nullopt;
    }
    std::reverse(steps.begin(), steps.end());
    // Fold keys into the named step before them.
    std::vector<Step> named;
    for (Step& st : steps) {
      if (st.key) {
        if (named.empty() || named.back().key) {
          cur_->Error(DiagCode::InvalidMove, st.range, "an instance key here names nothing")
              .help = syntax_help;
          return std::nullopt;
        }
        named.back().key = st.key;
      } else {
        named.push_back(std::move(st));
      }
    }
    Endpoint ep;
    size_t i = 0;
    while (i < named.size() && named[i].name == "module") {
      if (named[i].key || i + 1 >= named.size()) {
        cur_->Error(DiagCode::InvalidMove, named[i].range, "'module' must be followed by the module call's name")
            .help = syntax_help;
        return std::nullopt;
      }
      const Step& call = named[i + 1];
      std::string part = "module." + call.name + (call.key ? KeySuffix(*call.key) : "");
      if (i == 0) ep.first_step = "module." + call.name;
      ep.address += (ep.address.empty() ? "" : ".") + part;
      i += 2;
      if (i == named.size()) {
        ep.is_module = true;
        ep.has_key = call.key.has_value();
        ep.nested = i > 2;
        return ep;
      }
    }
    ep.nested = i > 0;
    if (named.size() - i != 2 || named[i].key) {
      cur_->Error(DiagCode::InvalidMove, a.value->range,
                  "'" + std::string(role) + "' must name a resource (TYPE.NAME), one of its instances or a module call")
          .help = syntax_help;
      return std::nullopt;
    }
    const Step& type = named[i];
    const Step& name = named[i + 1];
    if (!schemas_->Find(type.name)) {
      Diagnostic& d = cur_->Error(DiagCode::InvalidMove, type.range, "no resource type '" + type.name + "'");
      std::string near = ClosestName(type.name, schemas_->TypeNames());
      d.help = near.empty() ? "resource types: " + JoinNames(schemas_->TypeNames()) : "did you mean '" + near + "'?";
      return std::nullopt;
    }
    ep.type = type.name;
    ep.has_key = name.key.has_value();
    if (i == 0) ep.first_step = type.name + "." + name.name;
    ep.address += (ep.address.empty() ? "" : ".") + type.name + "." + name.name + (name.key ? KeySuffix(*name.key) : "");
    return ep;
  }

  // The resource or module call a whole-resource or whole-module endpoint
  // names, when this module still declares it.
  const Decl* DeclaredHere(const ModuleInfo& info, const Endpoint& ep) {
    if (ep.nested) return nullptr;
    const auto& table = ep.is_module ? info.modules : info.resources;
    std::string key = ep.is_module ? ep.first_step.substr(7) : ep.first_step;
    auto it = table.find(key);
    return it == table.end() ? nullptr : &info.decls[it->second];
  }

  void CheckMovedBlock(const ast::Block& b, ModuleInfo& info) {
    CheckAllowed(b.body, {"from", "to"}, {}, "a moved block");
    const ast::Attribute* from = b.body.Find("from");
    const ast::Attribute* to = b.body.Find("to");
    if (!from || !to) {
      cur_->Error(DiagCode::MissingAttribute, b.type_range,
                  std::string("a moved block needs '") + (from ? "to" : "from") + "'")
          .help = "write: moved { from = marker.old  to = marker.new }";
      return;
    }
    std::optional<Endpoint> f = ParseEndpoint(*from, "from");
    std::optional<Endpoint> t = ParseEndpoint(*to, "to");
    if (!f || !t) return;
    if (f->is_module != t->is_module) {
      cur_->Error(DiagCode::InvalidMove, to->value->range,
                  "cannot move " + std::string(f->is_module ? "module call " : "resource ") + f->address + " to " +
                      (t->is_module ? "module call " : "resource ") + t->address)
          .help = "a resource moves to a resource of the same type, a module call to a module call; to move a "
                  "resource into a module, write the resource's address in it: module.NAME." +
                  (f->is_module ? std::string("TYPE.NAME") : f->address);
      return;
    }
    if (!f->is_module && f->type != t->type) {
      cur_->Error(DiagCode::InvalidMove, to->value->range,
                  "cannot move a '" + f->type + "' to a '" + t->type + "': " + f->address + " and " + t->address +
                      " are different resource types")
          .help = "a move keeps the object, so both addresses must have the same type; to change the type, remove "
                  "the old resource and create the new one";
      return;
    }
    if (f->address == t->address) {
      cur_->Error(DiagCode::InvalidMove, b.type_range, "this block moves " + f->address + " to itself")
          .help = "remove the block, or correct 'from' or 'to'";
      return;
    }
    // A whole resource or module call that is still declared here cannot
    // have moved away (instance moves are checked against the expanded
    // configuration when planning).
    if (!f->has_key && !t->has_key) {
      if (const Decl* d = DeclaredHere(info, *f)) {
        Diagnostic& diag = cur_->Error(DiagCode::InvalidMove, from->value->range,
                                       f->address + " is still declared, so it cannot have moved to " + t->address);
        diag.notes.push_back({d->range, "declared here"});
        diag.help = "rename the block to the new name (the moved block then maps the old objects to it), or remove "
                    "this moved block";
        return;
      }
    }
    MoveStatement m;
    m.from = f->address;
    m.to = t->address;
    m.range = b.type_range;
    info.moves.push_back(std::move(m));
  }

  void CheckRemovedBlock(const ast::Block& b, ModuleInfo& info) {
    CheckAllowed(b.body, {"from"}, {"lifecycle"}, "a removed block");
    const ast::Attribute* from = b.body.Find("from");
    const ast::Block* lifecycle = nullptr;
    for (const ast::Block& nested : b.body.blocks) {
      if (nested.type == "lifecycle") lifecycle = &nested;
    }
    if (!from) {
      cur_->Error(DiagCode::MissingAttribute, b.type_range, "a removed block needs 'from'")
          .help = "write: removed { from = marker.old  lifecycle { destroy = false } }";
      return;
    }
    // As Terraform: the choice between forgetting and destroying is
    // written out, never defaulted.
    const ast::Attribute* destroy = lifecycle ? lifecycle->body.Find("destroy") : nullptr;
    if (lifecycle) CheckAllowed(lifecycle->body, {"destroy"}, {}, "the lifecycle block of a removed block");
    if (!destroy) {
      cur_->Error(DiagCode::MissingAttribute, lifecycle ? lifecycle->type_range : b.type_range,
                  "a removed block must say whether the objects are destroyed")
          .help = "add lifecycle { destroy = false } to forget them and leave them in place, or destroy = true to "
                  "delete them";
      return;
    }
    std::optional<Endpoint> f = ParseEndpoint(*from, "from");
    if (!f) return;
    bool value = false;
    if (destroy->value->kind == ast::ExprKind::Literal &&
        destroy->value->As<ast::Literal>().value.kind() == Value::Kind::Bool) {
      value = destroy->value->As<ast::Literal>().value.as_bool();
    } else {
      cur_->Error(DiagCode::TypeMismatch, destroy->value->range, "'destroy' must be true or false, written out")
          .help = "write: destroy = false";
      return;
    }
    if (f->has_key) {
      cur_->Error(DiagCode::InvalidMove, from->value->range,
                  "a removed block names a whole resource or module call, not the instance " + f->address)
          .help = "write: from = " + f->address.substr(0, f->address.rfind('[')) +
                  " (to remove one instance, change count or for_each; plinth state rm forgets one instance)";
      return;
    }
    if (const Decl* d = DeclaredHere(info, *f)) {
      Diagnostic& diag = cur_->Error(DiagCode::InvalidMove, from->value->range,
                                     f->address + " is still declared, so it cannot be removed");
      diag.notes.push_back({d->range, "declared here"});
      diag.help = "delete the " + std::string(f->is_module ? "module" : "resource") +
                  " block (the removed block takes its place), or remove this removed block";
      return;
    }
    RemovedStatement r;
    r.from = f->address;
    r.destroy = value;
    r.range = b.type_range;
    info.removals.push_back(std::move(r));
  }

  // ----------------------------------------------------------------- imports
  // `import { to = ADDR, id = "..." }` (docs/language.md, "Importing existing
  // objects"). `to` is read as an address, never evaluated; `id` is an
  // expression evaluated before the target is planned.

  // `to` as plans spell it (marker.a, bucket.b["k"], module.net[0].marker.a),
  // with its resource type; nullopt after reporting why it is not one.
  std::optional<std::pair<std::string, std::string>> ImportAddress(const ast::Expr& to) {
    struct Step {
      std::string name;                  // a name step
      const ast::Expr* key = nullptr;    // an index step
      Range range;
    };
    std::vector<Step> steps;
    const ast::Expr* e = &to;
    for (;;) {
      if (e->kind == ast::ExprKind::GetAttr) {
        const auto& g = e->As<ast::GetAttr>();
        steps.push_back({g.name, nullptr, g.name_range});
        e = g.object.get();
      } else if (e->kind == ast::ExprKind::Index) {
        const auto& ix = e->As<ast::Index>();
        steps.push_back({"", ix.key.get(), ix.key->range});
        e = ix.object.get();
      } else {
        break;
      }
    }
    auto fail = [&](Range r, const std::string& message, const std::string& help) {
      cur_->Error(DiagCode::InvalidImport, r, message).help = help;
      return std::nullopt;
    };
    const std::string example = "write: to = marker.logs, to = bucket.data[\"eu\"] or to = module.net.region.eu";
    if (e->kind == ast::ExprKind::Error) return std::nullopt;
    if (e->kind != ast::ExprKind::Name) {
      std::optional<std::string> text = LiteralText(*e);
      if (text && steps.empty()) {
        return fail(to.range, "an import's 'to' is a resource address, not a string",
                    "write it without quotes: to = " + *text);
      }
      return fail(to.range, "an import's 'to' must be a resource address", example);
    }
    steps.push_back({e->As<ast::Name>().name, nullptr, e->range});
    std::reverse(steps.begin(), steps.end());
    std::string address;
    size_t i = 0;
    // A key: a literal string, or a whole number (a count index).
    auto key_text = [&](const Step& s) -> std::optional<std::string> {
      if (s.key->kind == ast::ExprKind::Literal) {
        const Value& v = s.key->As<ast::Literal>().value;
        if (v.kind() == Value::Kind::String) return "[" + QuoteString(v.as_string()) + "]";
        if (v.kind() == Value::Kind::Number && v.as_number() >= 0 && v.as_number() == static_cast<double>(
                                                                                         static_cast<int64_t>(v.as_number()))) {
          return "[" + FormatNumber(v.as_number()) + "]";
        }
      } else if (std::optional<std::string> text = LiteralText(*s.key)) {
        return "[" + QuoteString(*text) + "]";
      }
      cur_->Error(DiagCode::InvalidImport, s.range,
                  "an instance key in an import's 'to' must be a literal string or a whole number")
          .help = "name one instance: to = bucket.data[\"eu\"] or to = marker.shard[0]; write one import block per "
                  "instance";
      return std::nullopt;
    };
    while (i < steps.size() && steps[i].key == nullptr && steps[i].name == "module") {
      if (i + 1 >= steps.size() || steps[i + 1].key != nullptr) {
        return fail(steps[i].range, "'module' in an import's 'to' must be followed by a module name", example);
      }
      address += "module." + steps[i + 1].name;
      i += 2;
      if (i < steps.size() && steps[i].key != nullptr) {
        std::optional<std::string> k = key_text(steps[i]);
        if (!k) return std::nullopt;
        address += *k;
        ++i;
      }
      address += ".";
    }
    if (i >= steps.size() || steps[i].key != nullptr) {
      return fail(to.range, "an import's 'to' must end in a resource, like marker.logs", example);
    }
    const std::string type = steps[i].name;
    if (!schemas_->Find(type)) {
      std::string near = ClosestName(type, schemas_->TypeNames());
      return fail(steps[i].range, "no resource type '" + type + "' to import to",
                  near.empty() ? "resource types: " + JoinNames(schemas_->TypeNames())
                               : "did you mean '" + near + "'?");
    }
    if (i + 1 >= steps.size() || steps[i + 1].key != nullptr) {
      return fail(steps[i].range, "'" + type + "' in an import's 'to' must be followed by a resource name",
                  "write: to = " + type + ".NAME");
    }
    address += type + "." + steps[i + 1].name;
    i += 2;
    if (i < steps.size() && steps[i].key != nullptr) {
      std::optional<std::string> k = key_text(steps[i]);
      if (!k) return std::nullopt;
      address += *k;
      ++i;
    }
    if (i < steps.size()) {
      return fail(steps[i].range, "an import's 'to' names a resource instance, not one of its attributes",
                  "remove '" + (steps[i].key ? std::string("[...]") : "." + steps[i].name) + "': to = " + address);
    }
    return std::make_pair(address, type);
  }

  void CollectImport(ModuleInfo& info, const ast::Block& b) {
    if (!ExpectLabels(b, 0, "")) return;
    if (!info.is_root) {
      cur_->Error(DiagCode::InvalidImport, b.type_range, "an import block belongs in the root module")
          .help = "move it to the configuration you run plinth on, with the full address: to = module.NAME.TYPE.NAME";
      return;
    }
    if (b.has_errors) return;  // the parser said what is wrong
    CheckAllowed(b.body, {"to", "id"}, {}, "an import block");
    for (const char* required : {"to", "id"}) {
      if (!b.body.Find(required)) {
        cur_->Error(DiagCode::MissingAttribute, b.type_range, std::string("an import block needs '") + required + "'")
            .help = "write: import { to = marker.logs, id = \"logs/today\" }";
        return;
      }
    }
    auto target = ImportAddress(*b.body.Find("to")->value);
    if (!target) return;
    for (uint32_t other : info.imports) {
      const Decl& first = info.decls[other];
      if (first.name != target->first) continue;
      Diagnostic& d = cur_->Error(DiagCode::DuplicateImport, b.body.Find("to")->value->range,
                                  "two import blocks import to " + target->first);
      d.notes.push_back({first.block->body.Find("to")->value->range, "first imported here"});
      d.help = "one object per address: remove one of them, or import the other object to another address";
      return;
    }
    Decl d;
    d.kind = DeclKind::Import;
    d.block = &b;
    d.name = target->first;
    d.type = target->second;
    d.schema = schemas_->Find(d.type);  // its provider is configured before the object is read
    d.range = b.type_range;
    info.imports.push_back(static_cast<uint32_t>(info.decls.size()));
    info.decls.push_back(std::move(d));
  }

  // The declaration that plans an import's target waits for the import: the
  // resource itself at the root, else the module call that holds it.
  void LinkImports(ModuleInfo& info) {
    for (uint32_t idx : info.imports) {
      const Decl& imp = info.decls[idx];
      const std::string& to = imp.name;
      auto target = info.decls.size();
      if (to.rfind("module.", 0) == 0) {
        size_t end = 7;
        while (end < to.size() && to[end] != '.' && to[end] != '[') ++end;
        if (auto it = info.modules.find(to.substr(7, end - 7)); it != info.modules.end()) target = it->second;
      } else {
        std::string resource = to.substr(0, to.find('['));
        if (auto it = info.resources.find(resource); it != info.resources.end()) target = it->second;
      }
      // Not in the configuration: the plan says so (or generates it).
      if (target == info.decls.size()) continue;
      Decl& t = info.decls[target];
      t.deps.push_back(idx);
      t.dep_sites.push_back(imp.block->body.Find("to")->value->range);
    }
  }

  // ---------------------------------------------------------------- policies
  // The structure of policy and policy_test blocks; the expressions in them
  // are typed by the rule compiler (compiler/rules) when they are compiled.

  // A string literal attribute, or nullopt (reported) when it is something else.
  std::optional<std::string> PolicyString(const ast::Attribute& a) {
    if (a.value->kind == ast::ExprKind::Literal) {
      const Value& v = a.value->As<ast::Literal>().value;
      if (v.kind() == Value::Kind::String) return v.as_string();
    }
    cur_->Error(DiagCode::TypeMismatch, a.value->range, "'" + a.name + "' must be a string literal");
    return std::nullopt;
  }

  bool CheckPolicyBlock(const ast::Block& b) {
    if (b.has_errors) return false;
    CheckAllowed(b.body, {"for_all", "where", "group_by", "require", "severity", "message"}, {}, "a policy block");
    for (const ast::Block& nested : b.body.blocks) {
      cur_->Error(DiagCode::UnknownAttribute, nested.type_range, "a policy block has no nested blocks");
    }
    bool ok = true;
    for (const char* required : {"for_all", "require"}) {
      if (!b.body.Find(required)) {
        cur_->Error(DiagCode::MissingAttribute, b.labels[0].range,
                    std::string("policy '") + b.labels[0].value + "' has no '" + required + "'")
            .help = std::string(required) == "for_all" ? "write: for_all = bucket   (the resource type it checks)"
                                                       : "write: require = self.ATTRIBUTE ...  (true when compliant)";
        ok = false;
      }
    }
    if (const ast::Attribute* f = b.body.Find("for_all")) {
      if (f->value->kind != ast::ExprKind::Name) {
        cur_->Error(DiagCode::InvalidReference, f->value->range, "'for_all' must name a resource type")
            .help = "write: for_all = bucket";
        ok = false;
      } else if (const std::string& type = f->value->As<ast::Name>().name; !schemas_->Find(type)) {
        Diagnostic& d = cur_->Error(DiagCode::UndefinedReference, f->value->range, "no resource type '" + type + "'");
        std::string near = ClosestName(type, schemas_->TypeNames());
        d.help = near.empty() ? "resource types: " + JoinNames(schemas_->TypeNames()) : "did you mean '" + near + "'?";
        ok = false;
      }
    }
    if (const ast::Attribute* s = b.body.Find("severity")) {
      std::optional<std::string> v = PolicyString(*s);
      if (!v) {
        ok = false;
      } else if (*v != "deny" && *v != "warn") {
        cur_->Error(DiagCode::TypeMismatch, s->value->range, "severity must be \"deny\" or \"warn\", not " + QuoteString(*v));
        ok = false;
      }
    }
    return ok;
  }

  // The shape of an alert block; its values are checked when the module
  // instance is evaluated (EvalAlerts), its condition by the rule compiler.
  bool CheckAlertBlock(const ast::Block& b, ModuleInfo& info) {
    if (b.has_errors) return false;
    CheckAllowed(b.body, {"when", "pending_for", "keep_firing_for", "severity", "labels", "annotations"}, {}, "an alert block");
    for (const ast::Block& nested : b.body.blocks) {
      cur_->Error(DiagCode::UnknownAttribute, nested.type_range, "an alert block has no nested blocks");
    }
    const std::string& name = b.labels[0].value;
    bool ok = true;
    bool valid_name = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
    for (char c : name) valid_name = valid_name && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!valid_name) {
      cur_->Error(DiagCode::InvalidLabels, b.labels[0].range, "'" + name + "' cannot be an alert name")
          .help = "alert names are letters, digits and '_' (the alertname label), for example ModelSlow";
      ok = false;
    }
    if (!b.body.Find("when")) {
      cur_->Error(DiagCode::MissingAttribute, b.labels[0].range, "alert '" + name + "' has no 'when'")
          .help = "write: when = rate(metric(\"http_requests_total\", {code = \"=~5..\"}), 1m) > 1";
      ok = false;
    }
    for (const ast::Block* other : info.alerts) {
      if (other->labels[0].value == name) {
        cur_->Error(DiagCode::DuplicateDeclaration, b.labels[0].range, "alert '" + name + "' is declared twice")
            .help = "rename one of them";
        ok = false;
      }
    }
    return ok;
  }

  // The shape of a scale_rule block: a service name and at least one of
  // up_when / down_when, whose conditions the rule compiler checks.
  bool CheckScaleRuleBlock(const ast::Block& b, ModuleInfo& info) {
    if (b.has_errors) return false;
    CheckAllowed(b.body, {"service", "region", "up_when", "down_when", "value", "average"}, {}, "a scale_rule block");
    for (const ast::Block& nested : b.body.blocks) {
      cur_->Error(DiagCode::UnknownAttribute, nested.type_range, "a scale_rule block has no nested blocks");
    }
    const std::string& name = b.labels[0].value;
    bool ok = true;
    if (!b.body.Find("service")) {
      cur_->Error(DiagCode::MissingAttribute, b.labels[0].range, "scale_rule '" + name + "' has no 'service'")
          .help = "write: service = \"model\" (the name of an autoscaled service)";
      ok = false;
    }
    const bool votes = b.body.Find("up_when") || b.body.Find("down_when");
    const ast::Attribute* value = b.body.Find("value");
    const ast::Attribute* average = b.body.Find("average");
    if (!votes && !value) {
      cur_->Error(DiagCode::MissingAttribute, b.labels[0].range,
                  "scale_rule '" + name + "' has neither 'up_when' nor 'down_when' nor 'value'")
          .help = "write: up_when = histogram_quantile(0.95, metric(\"x_bucket\"), 1m) > 0.25, or value = "
                  "metric(\"queue_depth\") with average = 10";
      ok = false;
    }
    if (votes && value) {
      cur_->Error(DiagCode::InvalidOperation, value->name_range,
                  "scale_rule '" + name + "' has both 'value' and 'up_when'/'down_when'")
          .help = "a rule either votes (up_when, down_when) or gives a number to keep per replica (value, "
                  "average): split it into two scale_rule blocks";
      ok = false;
    }
    if (value && !average) {
      cur_->Error(DiagCode::MissingAttribute, value->name_range, "scale_rule '" + name + "' has 'value' but no 'average'")
          .help = "write: average = 10 (the value each replica should carry: replicas = ceil(value / average))";
      ok = false;
    }
    if (average && !value) {
      cur_->Error(DiagCode::InvalidOperation, average->name_range,
                  "scale_rule '" + name + "' has 'average' but no 'value'")
          .help = "write: value = metric(\"queue_depth\", { service = \"model\" })";
      ok = false;
    }
    for (const ast::Block* other : info.scale_rules) {
      if (other->labels[0].value == name) {
        cur_->Error(DiagCode::DuplicateDeclaration, b.labels[0].range, "scale_rule '" + name + "' is declared twice")
            .help = "rename one of them";
        ok = false;
      }
    }
    return ok;
  }

  // Variables and locals that policies read are used (policies are
  // evaluated after planning, so they add no ordering dependency).
  void MarkPolicyReferences(ModuleInfo& info) {
    std::vector<const ast::Block*> reading = info.policies;
    for (const auto* list : {&info.alerts, &info.receivers, &info.notifications, &info.scale_rules}) {
      reading.insert(reading.end(), list->begin(), list->end());
    }
    // Alerting blocks are evaluated when their module instance is: a
    // variable or local they name must exist (their `when` reads metric
    // queries only, which the rule compiler checks).
    for (const auto* list : {&info.alerts, &info.receivers, &info.notifications, &info.scale_rules}) {
      for (const ast::Block* b : *list) {
        std::vector<Reference> refs;
        for (const ast::Attribute& a : b->body.attributes) {
          if (a.name != "when" && a.name != "up_when" && a.name != "down_when") CollectReferences(*a.value, refs);
        }
        for (const ast::Block& nested : b->body.blocks) {
          for (const ast::Attribute& a : nested.body.attributes) CollectReferences(*a.value, refs);
        }
        for (const Reference& r : refs) {
          if (r.root != "var" && r.root != "local") continue;
          const auto& table = r.root == "var" ? info.vars : info.locals;
          if (table.count(r.name)) continue;
          std::vector<std::string> names;
          for (const auto& [n, idx] : table) names.push_back(n);
          Diagnostic& d = cur_->Error(DiagCode::UndefinedReference, r.range,
                                      "no " + std::string(r.root == "var" ? "variable" : "local value") + " named '" +
                                          r.name + "'");
          std::string near = ClosestName(r.name, names);
          d.help = !near.empty() ? "did you mean '" + near + "'?"
                                 : r.root == "var" ? "declare it: variable \"" + r.name + "\" { ... }"
                                                   : "declare it in a locals block";
        }
      }
    }
    for (const ast::Block* b : reading) {
      std::vector<Reference> refs;
      for (const ast::Attribute& a : b->body.attributes) CollectReferences(*a.value, refs);
      for (const ast::Block& nested : b->body.blocks) {
        for (const ast::Attribute& a : nested.body.attributes) CollectReferences(*a.value, refs);
      }
      for (const Reference& r : refs) {
        const auto& table = r.root == "var" ? info.vars : r.root == "local" ? info.locals : info.vars;
        if (r.root != "var" && r.root != "local") continue;
        if (auto it = table.find(r.name); it != table.end()) info.decls[it->second].referenced = true;
      }
    }
  }

  bool CheckPolicyTestBlock(const ast::Block& b) {
    if (b.has_errors) return false;
    CheckAllowed(b.body, {"policy", "resource", "peers", "vars", "unknown", "expect"}, {}, "a policy_test block");
    bool ok = true;
    for (const char* required : {"policy", "resource", "expect"}) {
      if (!b.body.Find(required)) {
        cur_->Error(DiagCode::MissingAttribute, b.labels[0].range,
                    std::string("policy_test '") + b.labels[0].value + "' has no '" + required + "'");
        ok = false;
      }
    }
    if (const ast::Attribute* p = b.body.Find("policy")) ok = PolicyString(*p).has_value() && ok;
    if (const ast::Attribute* e = b.body.Find("expect")) {
      std::optional<std::string> v = PolicyString(*e);
      if (v && *v != "pass" && *v != "fail" && *v != "undecided" && *v != "skip") {
        cur_->Error(DiagCode::TypeMismatch, e->value->range,
                    "expect must be \"pass\", \"fail\", \"undecided\" or \"skip\", not " + QuoteString(*v));
        ok = false;
      }
      ok = ok && v.has_value();
    }
    return ok;
  }

  // ------------------------------------------------------- block structure

  void CheckAllowed(const ast::Body& body, const std::vector<std::string>& attrs, const std::vector<std::string>& blocks,
                    const std::string& where) {
    std::set<std::string, std::less<>> seen;
    for (const ast::Attribute& a : body.attributes) {
      if (!seen.insert(a.name).second) {
        cur_->Error(DiagCode::DuplicateAttribute, a.name_range, "'" + a.name + "' is set twice in this block")
            .help = "remove one of the two";
      }
      if (std::find(attrs.begin(), attrs.end(), a.name) == attrs.end()) {
        Diagnostic& d = cur_->Error(DiagCode::UnknownAttribute, a.name_range,
                                     where + " has no attribute '" + a.name + "'");
        std::string near = ClosestName(a.name, attrs);
        d.help = near.empty() ? "valid attributes: " + JoinNames(attrs) : "did you mean '" + near + "'?";
      }
    }
    for (const ast::Block& b : body.blocks) {
      if (std::find(blocks.begin(), blocks.end(), b.type) == blocks.end()) {
        Diagnostic& d = cur_->Error(DiagCode::UnknownAttribute, b.type_range, where + " has no block '" + b.type + "'");
        if (std::find(attrs.begin(), attrs.end(), b.type) != attrs.end()) {
          d.help = "'" + b.type + "' is an attribute: write " + b.type + " = { ... }";
        } else {
          std::string near = ClosestName(b.type, blocks);
          if (!near.empty()) d.help = "did you mean '" + near + "'?";
        }
      }
    }
  }

  void CheckStructure(ModuleInfo& info, Decl& d) {
    if (d.kind == DeclKind::Local) return;
    const ast::Block& b = *d.block;
    switch (d.kind) {
      case DeclKind::Variable: {
        CheckAllowed(b.body, {"type", "default", "description", "sensitive"}, {"validation"}, "a variable");
        if (const ast::Attribute* t = b.body.Find("type")) {
          d.var_type = ParseTypeExpr(*t->value, *cur_);
        }
        if (const ast::Attribute* s = b.body.Find("sensitive")) d.sensitive = LiteralBool(*s, "sensitive");
        for (const ast::Block& v : b.body.blocks) {
          if (v.type != "validation") continue;
          ExpectLabels(v, 0, "");
          CheckAllowed(v.body, {"condition", "message"}, {}, "a validation block");
          if (!v.has_errors) {
            for (const char* req : {"condition", "message"}) {
              if (!v.body.Find(req)) {
                cur_->Error(DiagCode::MissingAttribute, v.type_range,
                             std::string("a validation block needs '") + req + "'")
                    .help = "write: validation { condition = ... message = \"...\" }";
              }
            }
          }
        }
        return;
      }
      case DeclKind::Output: {
        CheckAllowed(b.body, {"value", "description", "sensitive", "depends_on"}, {}, "an output");
        if (!b.body.Find("value") && !b.has_errors) {
          cur_->Error(DiagCode::MissingAttribute, b.type_range, "output '" + d.name + "' has no 'value'")
              .help = "write: value = <expression>";
        }
        if (const ast::Attribute* s = b.body.Find("sensitive")) d.sensitive = LiteralBool(*s, "sensitive");
        if (const ast::Attribute* dep = b.body.Find("depends_on")) CheckDependsOn(*dep);
        return;
      }
      case DeclKind::Module: {
        CheckModuleCall(info, d);
        return;
      }
      case DeclKind::Resource: {
        CheckMeta(b);
        CheckSchemaBody(b.body, d.schema->body, "resource type '" + d.type + "'", b.has_errors, b.type_range, true);
        return;
      }
      case DeclKind::Provider: {
        CheckSchemaBody(b.body, d.provider_schema->body, "provider '" + d.name + "'", b.has_errors, b.type_range,
                        false);
        return;
      }
      default: return;
    }
  }

  bool LiteralBool(const ast::Attribute& a, const std::string& what) {
    if (a.value->kind == ast::ExprKind::Literal && a.value->As<ast::Literal>().value.kind() == Value::Kind::Bool) {
      return a.value->As<ast::Literal>().value.as_bool();
    }
    if (a.value->kind != ast::ExprKind::Error) {
      cur_->Error(DiagCode::InvalidMetaArgument, a.value->range, "'" + what + "' must be true or false")
          .help = "it is read before anything is evaluated, so it cannot use references";
    }
    return false;
  }

  void CheckDependsOn(const ast::Attribute& a) {
    if (a.value->kind != ast::ExprKind::List) {
      if (a.value->kind != ast::ExprKind::Error) {
        cur_->Error(DiagCode::InvalidMetaArgument, a.value->range, "depends_on must be a list of references")
            .help = "write: depends_on = [bucket.models, module.network]";
      }
      return;
    }
    for (const auto& item : a.value->As<ast::List>().items) {
      bool ok = item->kind == ast::ExprKind::GetAttr && item->As<ast::GetAttr>().object->kind == ast::ExprKind::Name;
      if (ok) {
        const std::string& root = item->As<ast::GetAttr>().object->As<ast::Name>().name;
        ok = root != "var" && root != "local" && root != "each" && root != "count" && root != "self" && root != "path";
      }
      if (!ok && item->kind != ast::ExprKind::Error) {
        cur_->Error(DiagCode::InvalidMetaArgument, item->range,
                     "depends_on entries must name a resource or a module, like bucket.models or module.network")
            .help = "dependencies on values are implicit: referencing a value is enough";
      }
    }
  }

  void CheckMeta(const ast::Block& b) {
    const ast::Attribute* count = b.body.Find("count");
    const ast::Attribute* for_each = b.body.Find("for_each");
    if (count && for_each) {
      cur_->Error(DiagCode::InvalidMetaArgument, for_each->name_range, "count and for_each cannot be used together")
          .help = "use for_each with a map to create named instances, or count for numbered ones";
    }
    if (const ast::Attribute* dep = b.body.Find("depends_on")) CheckDependsOn(*dep);
    if (const ast::Attribute* p = b.body.Find("provider")) {
      cur_->Error(DiagCode::InvalidMetaArgument, p->name_range,
                   "'provider' has nothing to select: each resource type has one provider (bucket: local, "
                   "s3_bucket: s3)")
          .help = "remove it; configure a provider with a provider \"NAME\" { ... } block in the root module";
    }
  }

  void CheckLifecycle(const ast::Block& lc, const BlockSchema& schema) {
    ExpectLabels(lc, 0, "");
    CheckAllowed(lc.body, {"prevent_destroy", "create_before_destroy", "ignore_changes", "correct_drift"}, {},
                 "a lifecycle block");
    for (const char* flag : {"prevent_destroy", "create_before_destroy", "correct_drift"}) {
      if (const ast::Attribute* a = lc.body.Find(flag)) LiteralBool(*a, flag);
    }
    if (const ast::Attribute* ic = lc.body.Find("ignore_changes")) {
      if (ic->value->kind == ast::ExprKind::Name && ic->value->As<ast::Name>().name == "all") return;
      if (ic->value->kind != ast::ExprKind::List) {
        cur_->Error(DiagCode::InvalidMetaArgument, ic->value->range,
                     "ignore_changes must be a list of attribute names, or all")
            .help = "write: ignore_changes = [labels, capacity]";
        return;
      }
      for (const auto& item : ic->value->As<ast::List>().items) {
        std::string name;
        if (item->kind == ast::ExprKind::Name) name = item->As<ast::Name>().name;
        else if (item->kind == ast::ExprKind::Literal && item->As<ast::Literal>().value.kind() == Value::Kind::String)
          name = item->As<ast::Literal>().value.as_string();
        else {
          cur_->Error(DiagCode::InvalidMetaArgument, item->range, "ignore_changes entries are attribute names");
          continue;
        }
        if (!schema.FindAttribute(name) && !schema.FindBlock(name)) {
          std::vector<std::string> names;
          for (const auto& a : schema.attributes) names.push_back(a.name);
          Diagnostic& d = cur_->Error(DiagCode::UnknownAttribute, item->range, "no attribute '" + name + "' to ignore");
          std::string near = ClosestName(name, names);
          if (!near.empty()) d.help = "did you mean '" + near + "'?";
        }
      }
    }
  }

  void CheckSchemaBody(const ast::Body& body, const BlockSchema& schema, const std::string& where, bool has_errors,
                       Range block_range, bool top) {
    std::vector<std::string> attr_names, block_names;
    for (const auto& a : schema.attributes) {
      if (a.mode != AttrMode::Computed) attr_names.push_back(a.name);
    }
    for (const auto& b : schema.blocks) block_names.push_back(b.name);
    std::set<std::string, std::less<>> seen;
    for (const ast::Attribute& a : body.attributes) {
      if (!seen.insert(a.name).second) {
        cur_->Error(DiagCode::DuplicateAttribute, a.name_range, "'" + a.name + "' is set twice in this block")
            .help = "remove one of the two";
        continue;
      }
      if (top && MetaArguments().count(a.name)) continue;
      const AttributeSchema* as = schema.FindAttribute(a.name);
      if (!as) {
        if (schema.FindBlock(a.name)) {
          cur_->Error(DiagCode::UnknownAttribute, a.name_range, "'" + a.name + "' is a block, not an attribute")
              .help = "write: " + a.name + " { ... }";
          continue;
        }
        Diagnostic& d = cur_->Error(DiagCode::UnknownAttribute, a.name_range, where + " has no attribute '" + a.name + "'");
        std::string near = ClosestName(a.name, attr_names);
        d.help = near.empty() ? "valid attributes: " + JoinNames(attr_names) : "did you mean '" + near + "'?";
        continue;
      }
      if (as->mode == AttrMode::Computed) {
        cur_->Error(DiagCode::ComputedAttribute, a.name_range, "'" + a.name + "' is set by the provider and cannot be assigned")
            .help = "remove it; read it elsewhere as <type>.<name>." + a.name;
      }
    }
    if (!has_errors) {
      for (const auto& as : schema.attributes) {
        if (as.mode == AttrMode::Required && !body.Find(as.name)) {
          cur_->Error(DiagCode::MissingAttribute, block_range, where + " requires '" + as.name + "'")
              .help = as.doc.empty() ? "add: " + as.name + " = ..." : as.name + ": " + as.doc;
        }
      }
    }
    std::map<std::string, size_t> counts;
    for (const ast::Block& b : body.blocks) {
      if (top && b.type == "lifecycle") {
        CheckLifecycle(b, schema);
        continue;
      }
      const NestedBlockSchema* ns = schema.FindBlock(b.type);
      if (!ns) {
        Diagnostic& d = cur_->Error(DiagCode::UnknownAttribute, b.type_range, where + " has no block '" + b.type + "'");
        if (schema.FindAttribute(b.type)) {
          d.help = "'" + b.type + "' is an attribute: write " + b.type + " = { ... }";
        } else {
          std::string near = ClosestName(b.type, block_names);
          d.help = near.empty() ? (block_names.empty() ? "this resource has no nested blocks"
                                                       : "valid blocks: " + JoinNames(block_names))
                                : "did you mean '" + near + "'?";
        }
        continue;
      }
      if (ns->labeled ? b.labels.size() != 1 : !b.labels.empty()) {
        cur_->Error(DiagCode::InvalidLabels, b.labels.empty() ? b.type_range : b.labels.back().range,
                     "a '" + b.type + "' block takes " + (ns->labeled ? "one label (" + ns->label_doc + ")" : "no labels"))
            .help = ns->labeled ? "write: " + b.type + " \"name\" { ... }" : "write: " + b.type + " { ... }";
      }
      if (ns->labeled && b.labels.size() == 1) {
        for (const ast::Block& other : body.blocks) {
          if (&other == &b) break;
          if (other.type == b.type && other.labels.size() == 1 && other.labels[0].value == b.labels[0].value) {
            Diagnostic& d = cur_->Error(DiagCode::DuplicateDeclaration, b.labels[0].range,
                                         "'" + b.type + " \"" + b.labels[0].value + "\"' is declared twice");
            d.notes.push_back({other.labels[0].range, "first declared here"});
            d.help = "rename one of them, or merge the two blocks";
          }
        }
      }
      if (++counts[b.type] == ns->max_items + 1) {
        cur_->Error(DiagCode::DuplicateAttribute, b.type_range,
                     where + " takes at most " + std::to_string(ns->max_items) + " '" + b.type + "' block" +
                         (ns->max_items == 1 ? "" : "s"))
            .help = "merge the blocks into one";
      }
      CheckSchemaBody(b.body, *ns->body, "a '" + b.type + "' block", b.has_errors || has_errors, b.type_range, false);
    }
    if (!has_errors) {
      for (const auto& ns : schema.blocks) {
        if (counts[ns.name] < ns.min_items) {
          cur_->Error(DiagCode::MissingAttribute, block_range, where + " requires a '" + ns.name + "' block");
        }
      }
    }
  }

  void CheckModuleCall(ModuleInfo& info, Decl& d) {
    const ast::Block& b = *d.block;
    CheckMeta(b);
    const ast::Attribute* source = b.body.Find("source");
    if (!source) {
      if (!b.has_errors) {
        cur_->Error(DiagCode::MissingAttribute, b.type_range, "module '" + d.name + "' has no 'source'")
            .help = "write: source = \"./modules/NAME\" or source = \"std/NAME\"";
      }
      return;
    }
    if (source->value->kind != ast::ExprKind::Literal ||
        source->value->As<ast::Literal>().value.kind() != Value::Kind::String) {
      cur_->Error(DiagCode::ModuleNotFound, source->value->range, "a module source must be a plain string")
          .help = "sources are read before anything is evaluated, so they cannot use references";
      return;
    }
    std::string src = source->value->As<ast::Literal>().value.as_string();
    std::string dir;
    if (src.rfind("std/", 0) == 0) {
      dir = (fs::path(ModuleLoader::StdlibDir()) / src).string();
    } else if (src.rfind("./", 0) == 0 || src.rfind("../", 0) == 0 || (!src.empty() && src[0] == '/')) {
      dir = src[0] == '/' ? src : (fs::path(info.module->dir) / src).lexically_normal().string();
    } else {
      cur_->Error(DiagCode::ModuleNotFound, source->value->range, "module source '" + src + "' is not a path")
          .help = "write a relative path (\"./modules/net\") or a standard module (\"std/NAME\")";
      return;
    }
    const Module* m = loader_->Load(dir, source->value->range, src);
    if (!m) return;
    const ModuleInfo* child = Analyse(m, source->value->range);
    if (!child) return;
    d.child = child;
    // Inputs must match the child's variables.
    std::vector<std::string> var_names;
    for (const auto& [n, i] : child->vars) var_names.push_back(n);
    std::sort(var_names.begin(), var_names.end());
    for (const ast::Attribute& a : b.body.attributes) {
      if (a.name == "source" || MetaArguments().count(a.name)) continue;
      if (!child->vars.count(a.name)) {
        Diagnostic& diag = cur_->Error(DiagCode::UnknownAttribute, a.name_range,
                                        "module '" + d.name + "' has no input variable '" + a.name + "'");
        std::string near = ClosestName(a.name, var_names);
        diag.help = near.empty() ? (var_names.empty() ? "the module declares no variables"
                                                      : "its variables are: " + JoinNames(var_names))
                                 : "did you mean '" + near + "'?";
      }
    }
    for (const ast::Block& nb : b.body.blocks) {
      cur_->Error(DiagCode::UnknownAttribute, nb.type_range, "a module block takes only attributes")
          .help = "pass values as inputs: " + nb.type + " = { ... }";
    }
    if (!b.has_errors) {
      for (const auto& [name, idx] : child->vars) {
        const Decl& v = child->decls[idx];
        if (!v.block->body.Find("default") && !b.body.Find(name)) {
          Diagnostic& diag = cur_->Error(DiagCode::MissingAttribute, b.type_range,
                                          "module '" + d.name + "' requires the input '" + name + "'");
          diag.notes.push_back({v.range, "declared here without a default"});
          diag.help = "add: " + name + " = ...";
        }
      }
    }
  }

  // ------------------------------------------------------------ references

  void ReferencesOf(const ast::Body& body, std::vector<Reference>& refs, bool top, bool skip_lifecycle,
                    bool literal_flags = false) {
    for (const ast::Attribute& a : body.attributes) {
      if (top && a.name == "source") continue;
      // An output's `sensitive` and `description` are literals, checked as such.
      if (literal_flags && (a.name == "sensitive" || a.name == "description")) continue;
      CollectReferences(*a.value, refs);
    }
    for (const ast::Block& b : body.blocks) {
      if (skip_lifecycle && b.type == "lifecycle") continue;
      ReferencesOf(b.body, refs, false, false);
    }
  }

  void ResolveDeps(ModuleInfo& info, uint32_t index) {
    std::vector<Reference> refs;
    CollectDeclReferences(info.decls[index], refs);
    ResolveReferences(info, index, refs);
  }

  // What a declaration's expressions refer to (a variable's default may
  // refer to nothing: reported here).
  void CollectDeclReferences(const Decl& d, std::vector<Reference>& refs) {
    if (d.kind == DeclKind::Local) {
      CollectReferences(*d.attr->value, refs);
    } else if (d.kind == DeclKind::Import) {
      // `to` is an address, not a value: only `id` refers to anything.
      if (const ast::Attribute* id = d.block->body.Find("id")) CollectReferences(*id->value, refs);
    } else if (d.kind == DeclKind::Variable) {
      if (const ast::Attribute* def = d.block->body.Find("default")) {
        std::vector<Reference> r;
        CollectReferences(*def->value, r);
        for (const Reference& ref : r) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "a variable default cannot refer to '" + ref.root +
                                                                  (ref.name.empty() ? "" : "." + ref.name) + "'")
              .help = "defaults must be constant; compute derived values in a locals block";
        }
      }
      for (const ast::Block& v : d.block->body.blocks) ReferencesOf(v.body, refs, false, false);
    } else {
      ReferencesOf(d.block->body, refs, d.kind == DeclKind::Module, d.kind == DeclKind::Resource,
                   d.kind == DeclKind::Output);
    }
  }

  // CheckStructure in a CheckSession: a block checked by the last check
  // (the same syntax tree, the same schemas) has the same findings.
  void StructureMemoized(ModuleInfo& info, Decl& d) {
    if (CheckMemo::Structure* kept = prev_ ? prev_->structure.Take(d.block) : nullptr) {
      for (const Diagnostic& diag : kept->diags) cur_->Add(diag);
      d.var_type = kept->var_type;
      d.sensitive = kept->sensitive;
      next_->structure.Put(d.block, std::move(*kept));
      return;
    }
    Diagnostics scratch;
    Diagnostics* sink = cur_;
    cur_ = &scratch;
    CheckStructure(info, d);
    cur_ = sink;
    CheckMemo::Structure memo{scratch.items(), d.var_type, d.sensitive};
    for (const Diagnostic& diag : memo.diags) cur_->Add(diag);
    for (const Diagnostic& diag : memo.diags) {
      for (const DiagNote& n : diag.notes) {
        if (n.range.valid() && n.range.file != d.block->range.file) return;  // not kept: see Memoized
      }
    }
    next_->structure.Put(d.block, std::move(memo));
  }

  // Resolves the references of declaration `index` (reporting each that
  // names nothing) and records what it depends on.
  void ResolveReferences(ModuleInfo& info, uint32_t index, const std::vector<Reference>& refs) {
    Decl& d = info.decls[index];
    bool has_count = false, has_each = false;
    if (d.kind == DeclKind::Resource || d.kind == DeclKind::Module) {
      has_count = d.block->body.Find("count") != nullptr;
      has_each = d.block->body.Find("for_each") != nullptr;
    }
    // What it depends on so far (few: a linear search beats a set).
    auto add_dep = [&](uint32_t target) {
      if (std::find(d.deps.begin(), d.deps.end(), target) != d.deps.end()) return false;
      d.deps.push_back(target);
      return true;
    };
    std::string key;  // TYPE.NAME, reused
    for (const Reference& ref : refs) {
      uint32_t target = UINT32_MAX;
      std::unordered_map<std::string, uint32_t>* table = nullptr;
      std::string what;
      if (ref.root == "var") {
        table = &info.vars;
        what = "variable";
      } else if (ref.root == "local") {
        table = &info.locals;
        what = "local value";
      } else if (ref.root == "module") {
        table = &info.modules;
        what = "module";
      } else if (ref.root == "each") {
        if (!has_each) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'each' is only available in blocks with for_each")
              .help = "add for_each to this block, or use a for expression";
        } else if (ref.name != "key" && ref.name != "value") {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'each' has only 'each.key' and 'each.value'");
        } else if (IsMetaExpr(d, "for_each", ref.range)) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "for_each cannot refer to 'each'");
        }
        continue;
      } else if (ref.root == "count") {
        if (!has_count) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'count' is only available in blocks with count")
              .help = "add count to this block";
        } else if (ref.name != "index") {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'count' has only 'count.index'");
        } else if (IsMetaExpr(d, "count", ref.range)) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "count cannot refer to 'count.index'");
        }
        continue;
      } else if (ref.root == "self") {
        if (d.kind != DeclKind::Resource) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'self' is only available inside a resource block");
        }
        continue;
      } else if (ref.root == "path") {
        if (ref.name != "module" && ref.name != "root" && ref.name != "cwd") {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'path' has only path.module, path.root and path.cwd");
        }
        continue;
      } else if (ref.root == "value" && d.kind == DeclKind::Variable) {
        d.referenced = true;
        continue;
      } else if (info.resource_types.count(ref.root) || schemas_->Find(ref.root)) {
        if (ref.name.empty()) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'" + ref.root + "' must be followed by a resource name")
              .help = "write: " + ref.root + ".NAME";
          continue;
        }
        key.assign(ref.root).append(".").append(ref.name);
        auto it = info.resources.find(key);
        if (it == info.resources.end()) {
          std::vector<std::string> names;
          for (const auto& [n, i] : info.resources) {
            if (info.decls[i].type == ref.root) names.push_back(info.decls[i].label);
          }
          Diagnostic& diag = cur_->Error(DiagCode::UndefinedReference, ref.range,
                                          "no " + ref.root + " named '" + ref.name + "' is declared");
          std::string near = ClosestName(ref.name, names);
          diag.help = near.empty() ? "declare it: " + ref.root + " \"" + ref.name + "\" { ... }"
                                   : "did you mean '" + ref.root + "." + near + "'?";
          continue;
        }
        target = it->second;
      } else {
        std::vector<std::string> roots = {"var", "local", "module", "each", "count", "self", "path"};
        for (const auto& t : info.resource_types) roots.push_back(t);
        Diagnostic& diag = cur_->Error(DiagCode::UndefinedReference, ref.root_range, "unknown name '" + ref.root + "'");
        std::string near = ClosestName(ref.root, roots);
        if (!near.empty()) {
          diag.help = "did you mean '" + near + "'?";
        } else {
          diag.help = UnknownNameHelp(info, d, ref);
        }
        continue;
      }
      if (table) {
        if (ref.name.empty()) {
          cur_->Error(DiagCode::InvalidReference, ref.range, "'" + ref.root + "' must be followed by a name")
              .help = "write: " + ref.root + ".NAME";
          continue;
        }
        auto it = table->find(ref.name);
        if (it == table->end()) {
          std::vector<std::string> names;
          for (const auto& [n, i] : *table) names.push_back(n);
          Diagnostic& diag = cur_->Error(DiagCode::UndefinedReference, ref.range,
                                          "no " + what + " named '" + ref.name + "' is declared");
          std::string near = ClosestName(ref.name, names);
          if (!near.empty()) {
            diag.help = "did you mean '" + ref.root + "." + near + "'?";
            diag.notes.push_back({info.decls[table->at(near)].range, "'" + ref.root + "." + near + "' is declared here"});
          } else {
            diag.help = ref.root == "var"     ? "declare it: variable \"" + ref.name + "\" { type = ... }"
                        : ref.root == "local" ? "declare it in a locals block: " + ref.name + " = ..."
                                              : "declare it: module \"" + ref.name + "\" { source = ... }";
          }
          continue;
        }
        target = it->second;
      }
      if (target == index && d.kind == DeclKind::Variable) {
        d.referenced = true;  // a validation condition reading its own variable
        continue;
      }
      info.decls[target].referenced = true;
      if (d.kind == DeclKind::Variable) {
        cur_->Error(DiagCode::InvalidReference, ref.range, "a variable's validation can only refer to the variable itself")
            .help = "write the condition in terms of var." + d.name;
        continue;
      }
      if (add_dep(target)) d.dep_sites.push_back(ref.range);
    }
    // A provider is configured before anything that may use it is planned:
    // its resources, and module calls (their resources use the root's providers).
    for (const auto& [name, pidx] : info.providers) {
      bool uses = d.kind == DeclKind::Module || ((d.kind == DeclKind::Resource || d.kind == DeclKind::Import) &&
                                                 d.schema && d.schema->provider == name);
      if (uses && add_dep(pidx)) d.dep_sites.push_back(info.decls[pidx].range);
    }
  }

  // Help for an unknown bare name. When the name is the whole value of an
  // attribute it is most likely text that lost its quotes.
  std::string UnknownNameHelp(const ModuleInfo& info, const Decl& d, const Reference& ref) {
    std::string generic = "references start with var., local., module., each., count., self., path. or a resource type";
    if (!ref.name.empty()) return generic;
    const ast::Attribute* attr = nullptr;
    const BlockSchema* schema = d.schema ? &d.schema->body : nullptr;
    const BlockSchema* attr_schema = nullptr;
    std::vector<std::pair<const ast::Body*, const BlockSchema*>> work;
    if (d.attr) {
      if (d.attr->value->range.begin == ref.range.begin && d.attr->value->range.end == ref.range.end) attr = d.attr;
    } else if (d.block) {
      work.push_back({&d.block->body, schema});
    }
    while (!work.empty() && !attr) {
      auto [body, bs] = work.back();
      work.pop_back();
      for (const ast::Attribute& a : body->attributes) {
        if (a.value->range.begin == ref.range.begin && a.value->range.end == ref.range.end) {
          attr = &a;
          attr_schema = bs;
          break;
        }
      }
      for (const ast::Block& b : body->blocks) {
        const NestedBlockSchema* ns = bs ? bs->FindBlock(b.type) : nullptr;
        work.push_back({&b.body, ns ? ns->body.get() : nullptr});
      }
    }
    if (!attr) return generic;
    if (attr_schema) {
      if (const AttributeSchema* as = attr_schema->FindAttribute(attr->name)) {
        if (!as->allowed_values.empty()) {
          std::string near = ClosestName(ref.root, as->allowed_values);
          if (near.empty()) {
            for (const auto& v : as->allowed_values) {
              if (v == ref.root) near = v;
            }
          }
          return near.empty() ? "'" + attr->name + "' is one of " + JoinNames(as->allowed_values) + ", in quotes"
                              : "strings are quoted: did you mean \"" + near + "\"?";
        }
        if (!as->ref_type.empty()) return "write: " + attr->name + " = " + as->ref_type + ".NAME";
      }
    }
    (void)info;
    return "if this is text, put it in quotes: \"" + ref.root + "\"";
  }

  static bool IsMetaExpr(const Decl& d, const char* meta, Range r) {
    const ast::Attribute* a = d.block->body.Find(meta);
    return a && r.file == a->value->range.file && r.begin >= a->value->range.begin && r.end <= a->value->range.end;
  }

  // Iterative DFS: post-order gives the evaluation order; back edges are cycles.
  void OrderAndFindCycles(ModuleInfo& info) {
    const size_t n = info.decls.size();
    std::vector<uint8_t> state(n, 0);  // 0 new, 1 on stack, 2 done
    std::vector<std::pair<uint32_t, size_t>> stack;
    info.order.reserve(n);
    for (uint32_t start = 0; start < n; ++start) {
      if (state[start]) continue;
      stack.push_back({start, 0});
      state[start] = 1;
      while (!stack.empty()) {
        auto& [node, edge] = stack.back();
        Decl& d = info.decls[node];
        if (edge < d.deps.size()) {
          uint32_t next = d.deps[edge];
          Range site = d.dep_sites[edge];
          ++edge;
          if (state[next] == 0) {
            state[next] = 1;
            stack.push_back({next, 0});
          } else if (state[next] == 1) {
            ReportCycle(info, stack, next, site);
          }
          continue;
        }
        state[node] = 2;
        info.order.push_back(node);
        stack.pop_back();
      }
    }
  }

  void ReportCycle(ModuleInfo& info, const std::vector<std::pair<uint32_t, size_t>>& stack, uint32_t target,
                   Range closing_site) {
    size_t from = 0;
    while (from < stack.size() && stack[from].first != target) ++from;
    std::string path;
    std::vector<DiagNote> notes;
    for (size_t i = from; i < stack.size(); ++i) {
      Decl& d = info.decls[stack[i].first];
      d.in_cycle = true;
      path += d.Address() + " -> ";
      // The edge this node followed is the one just before its cursor.
      Range site = i + 1 < stack.size() ? d.dep_sites[stack[i].second - 1] : closing_site;
      std::string next = i + 1 < stack.size() ? info.decls[stack[i + 1].first].Address() : info.decls[target].Address();
      notes.push_back({site, d.Address() + " refers to " + next + " here"});
    }
    path += info.decls[target].Address();
    Diagnostic& diag = cur_->Error(DiagCode::DependencyCycle, info.decls[target].range, "dependency cycle: " + path);
    diag.notes = std::move(notes);
    diag.help = "break the cycle by removing one of these references";
  }

  // Resources and module calls each declaration depends on, looking through
  // locals (declarations are in dependency order, so one pass suffices).
  void ComputeResourceDeps(ModuleInfo& info) {
    for (uint32_t idx : info.order) {
      Decl& d = info.decls[idx];
      std::set<uint32_t> out;
      for (uint32_t dep : d.deps) {
        const Decl& t = info.decls[dep];
        if (t.kind == DeclKind::Variable || (!t.in_cycle && t.uses_vars && t.kind != DeclKind::Resource)) d.uses_vars = true;
        if (t.kind == DeclKind::Resource || t.kind == DeclKind::Module) {
          out.insert(dep);
        } else if (!t.in_cycle) {
          out.insert(t.resource_deps.begin(), t.resource_deps.end());
        }
      }
      d.resource_deps.assign(out.begin(), out.end());
    }
  }

  // ========================================================= instantiation

  struct Instance;

  class InstanceScope : public Scope {
   public:
    InstanceScope(Checker& c, Instance& inst) : c_(c), inst_(inst) {}

    bool Resolve(const ast::Name& root, std::span<const ast::GetAttr* const> steps, Value* out, size_t* consumed,
                 Diagnostics& diags) override;
    std::vector<std::string> RootNames() const override {
      return {"var", "local", "module", "each", "count", "self", "path"};
    }
    std::string BaseDir() const override;
    bool ImpureKnown() const override;
    void ReadsFiles() override { c_.reads_files_ = true; }

    bool has_each = false;
    Value each_key, each_value;
    bool has_count = false;
    Value count_index;
    bool has_self = false;
    Value self;
    const Decl* variable = nullptr;  // inside a variable validation: `value`
    Value variable_value;

   private:
    Checker& c_;
    Instance& inst_;
  };

  struct Instance {
    const ModuleInfo* info;
    std::string prefix;  // address prefix: "" or `module.net["eu"].`
    std::vector<Value> values;
    std::string root_dir;
    // What the module call's inputs depend on: every resource in this
    // instance that reads a variable depends on these too.
    std::vector<std::string> inherited_deps;
    std::vector<Range> call_sites;  // ResourceInstance::call_sites
    // In a CheckSession: this instance in the last check (null when it had
    // none) and in this one; whether its call sites and inherited
    // dependencies are the last check's.
    CheckMemo::Instance* prev = nullptr;
    CheckMemo::Instance* next = nullptr;
    bool same_call = true;
  };

  static Value Poison() { return Value::Unknown(Type::Any()); }

  // `module.net["eu"].` -> `module.net["eu"]`
  static std::string ModuleAddress(const std::string& prefix) {
    return prefix.empty() ? "" : prefix.substr(0, prefix.size() - 1);
  }

  static const void* SyntaxOf(const Decl& d) {
    return d.kind == DeclKind::Local ? static_cast<const void*>(d.attr) : static_cast<const void*>(d.block);
  }

  // One declaration of a module instance in a CheckSession: a resource or
  // local whose syntax is the last check's and whose dependencies are the
  // same declarations with unchanged values keeps its value, diagnostics and
  // resource instances; anything else is evaluated, and its value compared
  // with the last one so that what depends on it can tell.
  void Memoized(Instance& inst, const Decl& d, uint32_t idx, const std::map<std::string, Value>& inputs,
                const std::map<std::string, Range>& input_ranges, CheckedConfig& out, std::vector<std::string>& chain,
                std::vector<char>& changed) {
    const ModuleInfo& info = *inst.info;
    const void* syntax = SyntaxOf(d);
    CheckMemo::Entry* old = inst.prev ? inst.prev->entries.Take(syntax) : nullptr;
    // Kept: resources, locals and module calls (evaluated whole; kept only
    // while the called module and the call's place are unchanged).
    const bool kind_ok = (d.kind == DeclKind::Resource || d.kind == DeclKind::Local ||
                          (d.kind == DeclKind::Module && d.child)) &&
                         cur_ != &muted_;
    bool same = kind_ok && old && old->reusable && old->deps.size() == d.deps.size() &&
                old->uses_vars == d.uses_vars &&
                (d.kind != DeclKind::Module || (d.child->unchanged && inst.same_call));
    for (size_t i = 0; same && i < d.deps.size(); ++i) {
      same = old->deps[i] == SyntaxOf(info.decls[d.deps[i]]) && !changed[d.deps[i]];
    }
    if (same) {
      CheckMemo::Entry& e = inst.next->entries.Put(syntax, std::move(*old));
      inst.values[idx] = e.value;
      for (const Diagnostic& diag : e.diags) cur_->Add(diag);
      const int64_t delta =
          static_cast<int64_t>(out.resources.size()) - static_cast<int64_t>(e.first + inst.prev->shift);
      if (e.count) {
        CheckedConfig& from = *prev_->config;
        const bool steal = prev_->config.use_count() == 1;
        const size_t first = out.resources.size();
        const size_t from_first = e.first + inst.prev->shift;
        for (size_t i = from_first; i < from_first + e.count; ++i) {
          if (steal) out.resources.push_back(std::move(from.resources[i]));
          else out.resources.push_back(from.resources[i]);
        }
        e.first = first;
        // Where the module call is and what its arguments read are not
        // part of the value: set as this check sees them.
        if (!inst.same_call) {
          std::vector<std::string> deps = DependencyAddresses(inst, d);
          for (size_t i = first; i < out.resources.size(); ++i) {
            out.resources[i].call_sites = inst.call_sites;
            out.resources[i].depends_on = deps;
          }
        }
      }
      if (d.kind == DeclKind::Module) KeepCall(inst, d, e, delta, out);
      if (d.kind == DeclKind::Local && info.is_root) out.locals.push_back({d.name, e.value, d.range});
      changed[idx] = 0;
      ++next_->reused;
      return;
    }
    ++next_->evaluated;
    CheckMemo::Entry e;
    Diagnostics scratch;
    Diagnostics* sink = cur_;
    if (kind_ok) cur_ = &scratch;
    const bool outer_reads_files = reads_files_;
    reads_files_ = false;
    const size_t first = out.resources.size();
    const OutSizes before = Sizes(out);
    Value value;
    switch (d.kind) {
      case DeclKind::Variable: value = EvalVariable(inst, d, inputs, input_ranges, out); break;
      case DeclKind::Local: {
        InstanceScope scope(*this, inst);
        value = Evaluate(*d.attr->value, scope, *cur_);
        if (info.is_root) out.locals.push_back({d.name, value, d.range});
        break;
      }
      case DeclKind::Output: value = EvalOutput(inst, d, out); break;
      case DeclKind::Resource: value = EvalResource(inst, d, out); break;
      case DeclKind::Module: value = EvalModuleCall(inst, d, out, chain); break;
      case DeclKind::Provider: value = EvalProvider(inst, d, out); break;
      case DeclKind::Import: value = EvalImport(inst, d, out); break;
    }
    inst.values[idx] = value;
    e.deps.reserve(d.deps.size());
    for (uint32_t dep : d.deps) e.deps.push_back(SyntaxOf(info.decls[dep]));
    e.uses_vars = d.uses_vars;
    // Unchanged: the same value from the same dependencies (what depends
    // on it then also depends on the same resources).
    changed[idx] = !(old && old->value.Identical(value) && old->deps == e.deps && old->uses_vars == e.uses_vars);
    e.value = std::move(value);
    if (kind_ok) {
      cur_ = sink;
      e.reusable = !reads_files_;
      if (d.kind == DeclKind::Module) {
        e.extra = Added(before, out);
        e.instances = out.module_instances - before.module_instances;
      }
      e.diags = scratch.items();
      // A note elsewhere (another file may change while this block does not)
      // is not replayed: the block is evaluated again.
      for (const Diagnostic& diag : e.diags) {
        for (const DiagNote& n : diag.notes) {
          if (n.range.valid() && n.range.file != d.block->range.file) e.reusable = false;
        }
      }
      for (const Diagnostic& diag : e.diags) cur_->Add(diag);
      e.first = first;
      e.count = out.resources.size() - first;
    }
    reads_files_ = reads_files_ || outer_reads_files;
    inst.next->entries.Put(syntax, std::move(e));
  }

  // How much of what instances add to a CheckedConfig besides resources
  // there is (before a module call is evaluated; Added takes what it added).
  struct OutSizes {
    size_t moves, removals, policies, policy_tests, alerts, scale_rules, alerting_unknown, module_instances;
  };
  static OutSizes Sizes(const CheckedConfig& out) {
    return {out.moves.size(),  out.removals.size(),    out.policies.size(),         out.policy_tests.size(),
            out.alerts.size(), out.scale_rules.size(), out.alerting_unknown.size(), out.module_instances};
  }
  // What `out` gained since `before`, besides resources; null when nothing.
  static std::shared_ptr<const CheckedConfig> Added(const OutSizes& before, const CheckedConfig& out) {
    auto tail = [](const auto& all, size_t from, auto& into) { into.assign(all.begin() + from, all.end()); };
    auto extra = std::make_shared<CheckedConfig>();
    tail(out.moves, before.moves, extra->moves);
    tail(out.removals, before.removals, extra->removals);
    tail(out.policies, before.policies, extra->policies);
    tail(out.policy_tests, before.policy_tests, extra->policy_tests);
    tail(out.alerts, before.alerts, extra->alerts);
    tail(out.scale_rules, before.scale_rules, extra->scale_rules);
    tail(out.alerting_unknown, before.alerting_unknown, extra->alerting_unknown);
    const OutSizes n = Sizes(*extra);
    if (n.moves + n.removals + n.policies + n.policy_tests + n.alerts + n.scale_rules + n.alerting_unknown == 0)
      return nullptr;
    return extra;
  }

  // A module call kept whole: what its instances added besides resources,
  // and their memo (moved from the last check's, where this check puts
  // their resources `delta` further on).
  void KeepCall(Instance& inst, const Decl& d, const CheckMemo::Entry& e, int64_t delta, CheckedConfig& out) {
    out.module_instances += e.instances;
    if (e.extra) {
      const CheckedConfig& x = *e.extra;
      out.moves.insert(out.moves.end(), x.moves.begin(), x.moves.end());
      out.removals.insert(out.removals.end(), x.removals.begin(), x.removals.end());
      out.policies.insert(out.policies.end(), x.policies.begin(), x.policies.end());
      out.policy_tests.insert(out.policy_tests.end(), x.policy_tests.begin(), x.policy_tests.end());
      out.alerts.insert(out.alerts.end(), x.alerts.begin(), x.alerts.end());
      out.scale_rules.insert(out.scale_rules.end(), x.scale_rules.begin(), x.scale_rules.end());
      out.alerting_unknown.insert(out.alerting_unknown.end(), x.alerting_unknown.begin(), x.alerting_unknown.end());
    }
    // Its instances' prefixes: PREFIX module.NAME. or PREFIX module.NAME[KEY]. and below.
    const std::string call = inst.prefix + "module." + d.name;
    for (auto it = prev_->instances.lower_bound(call); it != prev_->instances.end();) {
      const std::string& p = it->first;
      if (p.compare(0, call.size(), call) != 0) break;
      if (p.size() == call.size() || (p[call.size()] != '.' && p[call.size()] != '[')) {
        ++it;
        continue;
      }
      auto node = prev_->instances.extract(it++);
      node.mapped().shift += delta;
      next_->instances.insert(std::move(node));
    }
  }

  // Evaluates one instance of a module; returns its outputs.
  ValueMap Instantiate(const ModuleInfo& info, const std::string& prefix, const std::map<std::string, Value>& inputs,
                       const std::map<std::string, Range>& input_ranges, CheckedConfig& out,
                       std::vector<std::string>& chain, std::vector<std::string> inherited_deps = {},
                       std::vector<Range> call_sites = {}) {
    ++out.module_instances;
    Instance inst{&info, prefix, std::vector<Value>(info.decls.size()), root_dir_, std::move(inherited_deps),
                  std::move(call_sites)};
    if (info.is_root) root_dir_ = info.module->dir, inst.root_dir = root_dir_;
    // With a memo: whether each declaration's value differs from the last
    // check's (what refers only to unchanged values is not evaluated again).
    std::vector<char> changed(next_ ? info.decls.size() : 0, 1);
    if (next_) {
      CheckMemo::Instance& mine = next_->instances[prefix];
      mine.inherited_deps = inst.inherited_deps;
      mine.call_sites = inst.call_sites;
      inst.next = &mine;
      if (prev_) {
        if (auto it = prev_->instances.find(prefix); it != prev_->instances.end()) {
          inst.prev = &it->second;
          mine.entries.Reserve(it->second.entries.size());
          inst.same_call = it->second.inherited_deps == mine.inherited_deps && it->second.call_sites == mine.call_sites;
        }
      }
    }
    for (uint32_t idx : info.order) {
      const Decl& d = info.decls[idx];
      if (d.in_cycle) {
        inst.values[idx] = Poison();
        continue;
      }
      Mute mute(this, Damaged(d));
      if (next_) {
        Memoized(inst, d, idx, inputs, input_ranges, out, chain, changed);
        continue;
      }
      switch (d.kind) {
        case DeclKind::Variable: inst.values[idx] = EvalVariable(inst, d, inputs, input_ranges, out); break;
        case DeclKind::Local: {
          InstanceScope scope(*this, inst);
          inst.values[idx] = Evaluate(*d.attr->value, scope, *cur_);
          if (info.is_root) out.locals.push_back({d.name, inst.values[idx], d.range});
          break;
        }
        case DeclKind::Output: inst.values[idx] = EvalOutput(inst, d, out); break;
        case DeclKind::Resource: inst.values[idx] = EvalResource(inst, d, out); break;
        case DeclKind::Module: inst.values[idx] = EvalModuleCall(inst, d, out, chain); break;
        case DeclKind::Provider: inst.values[idx] = EvalProvider(inst, d, out); break;
        case DeclKind::Import: inst.values[idx] = EvalImport(inst, d, out); break;
      }
    }
    for (const MoveStatement& m : info.moves) {
      out.moves.push_back({prefix + m.from, prefix + m.to, ModuleAddress(prefix), m.range});
    }
    for (const RemovedStatement& r : info.removals) {
      out.removals.push_back({prefix + r.from, ModuleAddress(prefix), r.destroy, r.range});
    }
    if (!info.alerts.empty() || !info.receivers.empty() || !info.notifications.empty() ||
        !info.scale_rules.empty()) {
      EvalAlerting(inst, info, prefix, out);
    }
    if (!info.policies.empty() || !info.policy_tests.empty()) {
      ValueMap vars, locals;
      for (const auto& [name, idx] : info.vars) vars[name] = inst.values[idx];
      for (const auto& [name, idx] : info.locals) locals[name] = inst.values[idx];
      for (const ast::Block* b : info.policies) {
        PolicyInstance pi;
        pi.name = prefix + "policy." + b->labels[0].value;
        pi.label = b->labels[0].value;
        pi.resource_type = b->body.Find("for_all")->value->As<ast::Name>().name;
        pi.schema = schemas_->Find(pi.resource_type);
        pi.where = b->body.Find("where") ? b->body.Find("where")->value.get() : nullptr;
        pi.require = b->body.Find("require")->value.get();
        pi.group_by = b->body.Find("group_by") ? b->body.Find("group_by")->value.get() : nullptr;
        pi.message = b->body.Find("message") ? b->body.Find("message")->value.get() : nullptr;
        const ast::Attribute* sev = b->body.Find("severity");
        pi.deny = !sev || sev->value->As<ast::Literal>().value.as_string() == "deny";
        pi.vars = vars;
        pi.locals = locals;
        pi.base_dir = info.module->dir;
        pi.range = b->labels[0].range;
        out.policies.push_back(std::move(pi));
      }
      for (const ast::Block* b : info.policy_tests) {
        PolicyTestCase tc;
        tc.name = b->labels[0].value;
        tc.policy = b->body.Find("policy")->value->As<ast::Literal>().value.as_string();
        tc.expect = b->body.Find("expect")->value->As<ast::Literal>().value.as_string();
        InstanceScope scope(*this, inst);
        tc.resource = Evaluate(*b->body.Find("resource")->value, scope, *cur_);
        if (tc.resource.kind() != Value::Kind::Object && !tc.resource.is_unknown()) {
          cur_->Error(DiagCode::TypeMismatch, b->body.Find("resource")->value->range,
                      "'resource' must be an object of the attributes the policy reads");
        }
        if (const ast::Attribute* peers = b->body.Find("peers")) {
          Value list = Evaluate(*peers->value, scope, *cur_);
          bool objects = list.kind() == Value::Kind::List;
          if (objects) {
            for (const Value& item : list.as_list()) objects = objects && item.kind() == Value::Kind::Object;
          }
          if (objects) {
            tc.peers = list.as_list();
          } else if (!list.is_unknown()) {
            cur_->Error(DiagCode::TypeMismatch, peers->value->range,
                        "'peers' must be a list of objects: the other planned instances the policy's groups see");
          }
        }
        if (const ast::Attribute* vars = b->body.Find("vars")) {
          Value v = Evaluate(*vars->value, scope, *cur_);
          if (v.kind() == Value::Kind::Object) {
            for (const auto& [name, value] : v.as_object()) {
              if (!info.vars.count(name)) {
                cur_->Error(DiagCode::UndefinedReference, vars->value->range,
                            "'vars' sets '" + name + "', which is not a variable of this module")
                    .help = "declare it with a variable block, or remove it from 'vars'";
              }
              tc.vars[name] = value;
            }
          } else if (!v.is_unknown()) {
            cur_->Error(DiagCode::TypeMismatch, vars->value->range,
                        "'vars' must be an object of variable values for this case, e.g. { max_gpus_per_pool = 8 }");
          }
        }
        if (const ast::Attribute* u = b->body.Find("unknown")) {
          Value names = Evaluate(*u->value, scope, *cur_);
          if (names.kind() == Value::Kind::List) {
            for (const Value& n : names.as_list()) {
              if (n.kind() == Value::Kind::String) tc.unknown.push_back(n.as_string());
            }
          } else if (!names.is_unknown()) {
            cur_->Error(DiagCode::TypeMismatch, u->value->range, "'unknown' must be a list of attribute names");
          }
        }
        tc.range = b->labels[0].range;
        out.policy_tests.push_back(std::move(tc));
      }
    }
    ValueMap outputs;
    for (const auto& [name, idx] : info.outputs) outputs[name] = inst.values[idx];
    if (info.is_root && options_.keep_root_scope) root_ = std::make_unique<Instance>(std::move(inst));
    return outputs;
  }

  // ---- alerting blocks (docs/automation.md, "Alert rules")
  // Values of alert, receiver and notification attributes, evaluated in the
  // module instance; a wrong kind is a located error and the value is left
  // at its default.
  struct AlertValues {
    Diagnostics& diags;
    InstanceScope& scope;
    Value Get(const ast::Body& body, const char* name, const ast::Attribute** attr) {
      *attr = body.Find(name);
      if (!*attr) return Value();
      return Evaluate(*(*attr)->value, scope, diags);
    }
    std::string where;                  // "receiver.oncall": the block being read
    std::vector<std::string>* unknown;  // where an unknown value (a variable without a value yet) is recorded
    bool Unknown(const Value& v, const ast::Attribute& a) {
      if (!v.is_unknown()) return false;
      unknown->push_back(where + "." + a.name);
      return true;
    }
    std::optional<std::string> String(const ast::Body& body, const char* name) {
      const ast::Attribute* a;
      Value v = Get(body, name, &a);
      if (!a || v.is_null() || Unknown(v, *a)) return std::nullopt;
      if (v.kind() != Value::Kind::String) {
        diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "' must be a string");
        return std::nullopt;
      }
      return v.as_string();
    }
    // Milliseconds; `min_ms` the least allowed.
    std::optional<int64_t> Duration(const ast::Body& body, const char* name, int64_t min_ms) {
      const ast::Attribute* a;
      Value v = Get(body, name, &a);
      if (!a || v.is_null() || Unknown(v, *a)) return std::nullopt;
      if (v.kind() != Value::Kind::Duration || v.as_number() < static_cast<double>(min_ms)) {
        diags.Error(DiagCode::TypeMismatch, a->value->range,
                    "'" + a->name + "' must be a duration" + (min_ms > 0 ? " of at least " + FormatDuration(min_ms) : ""))
            .help = "write: " + a->name + " = 5m";
        return std::nullopt;
      }
      return static_cast<int64_t>(v.as_number());
    }
    std::optional<bool> Bool(const ast::Body& body, const char* name) {
      const ast::Attribute* a;
      Value v = Get(body, name, &a);
      if (!a || v.is_null() || Unknown(v, *a)) return std::nullopt;
      if (v.kind() != Value::Kind::Bool) {
        diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "' must be true or false");
        return std::nullopt;
      }
      return v.as_bool();
    }
    std::optional<int64_t> Count(const ast::Body& body, const char* name) {
      const ast::Attribute* a;
      Value v = Get(body, name, &a);
      if (!a || v.is_null() || Unknown(v, *a)) return std::nullopt;
      if (v.kind() != Value::Kind::Number || v.as_number() < 0 || v.as_number() != std::floor(v.as_number())) {
        diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "' must be a whole number, 0 or more");
        return std::nullopt;
      }
      return static_cast<int64_t>(v.as_number());
    }
    // An object of strings; label names are checked when `label_names`.
    std::map<std::string, std::string> Strings(const ast::Body& body, const char* name, bool label_names) {
      std::map<std::string, std::string> out;
      const ast::Attribute* a;
      Value v = Get(body, name, &a);
      if (!a || v.is_null() || Unknown(v, *a)) return out;
      if (v.kind() != Value::Kind::Object) {
        diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "' must be an object of strings")
            .help = "write: " + a->name + " = { team = \"ml\" }";
        return out;
      }
      for (const auto& [k, item] : v.as_object()) {
        bool ok = !k.empty() && !(k[0] >= '0' && k[0] <= '9') && k.rfind("__", 0) != 0;
        for (char ch : k) ok = ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_');
        if (label_names && !ok) {
          diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + k + "' is not a label name")
              .help = "label names are letters, digits and '_', not starting with a digit or '__'";
          continue;
        }
        if (item.kind() != Value::Kind::String) {
          diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "." + k + "' must be a string");
          continue;
        }
        out[k] = item.as_string();
      }
      return out;
    }
    std::vector<std::string> StringList(const ast::Body& body, const char* name, bool* set) {
      std::vector<std::string> out;
      const ast::Attribute* a;
      Value v = Get(body, name, &a);
      *set = a != nullptr;
      if (!a || v.is_null() || Unknown(v, *a)) return out;
      if (v.kind() != Value::Kind::List) {
        diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "' must be a list of strings")
            .help = "write: " + a->name + " = [\"alertname\", \"service\"]";
        return out;
      }
      for (const Value& item : v.as_list()) {
        if (item.kind() != Value::Kind::String) {
          diags.Error(DiagCode::TypeMismatch, a->value->range, "'" + a->name + "' must be a list of strings");
          return {};
        }
        out.push_back(item.as_string());
      }
      return out;
    }
  };

  void EvalRoute(AlertValues& vals, const ast::Block& b, NotificationRouteConfig& r, bool child) {
    r.range = b.type_range;
    r.receiver = vals.String(b.body, "receiver").value_or("");
    r.group_by = vals.StringList(b.body, "group_by", &r.group_by_set);
    r.group_wait_ms = vals.Duration(b.body, "group_wait", 0).value_or(-1);
    r.group_interval_ms = vals.Duration(b.body, "group_interval", 1000).value_or(0);
    r.repeat_interval_ms = vals.Duration(b.body, "repeat_interval", 1000).value_or(0);
    if (!child) return;
    const ast::Attribute* m = b.body.Find("match");
    if (!m) {
      cur_->Error(DiagCode::MissingAttribute, b.type_range, "a route needs 'match': the labels of the alerts it takes")
          .help = "write: match = { severity = \"page\" }";
      return;
    }
    for (const auto& [name, value] : vals.Strings(b.body, "match", true)) {
      std::string op = "=", text = value;
      for (const char* p : {"=~", "!~", "!="}) {
        if (value.rfind(p, 0) == 0) op = p, text = value.substr(2);
      }
      if (op == "=" && value.rfind("=", 0) == 0) text = value.substr(1);
      if (op == "=~" || op == "!~") {
        std::string why;
        if (!Regex::Compile(text, why)) {
          cur_->Error(DiagCode::InvalidOperation, m->value->range, "match." + name + ": " + why);
          continue;
        }
      }
      std::string quoted;
      for (char ch : text) {
        if (ch == '"' || ch == '\\') quoted += '\\';
        quoted += ch;
      }
      r.matchers.push_back(name + op + "\"" + quoted + "\"");
    }
  }

  void EvalAlerting(Instance& inst, const ModuleInfo& info, const std::string& prefix, CheckedConfig& out) {
    InstanceScope scope(*this, inst);
    AlertValues vals{*cur_, scope, "", &out.alerting_unknown};
    for (const ast::Block* b : info.alerts) {
      vals.where = prefix + "alert." + b->labels[0].value;
      AlertInstance a;
      a.alertname = b->labels[0].value;
      a.name = prefix + "alert." + a.alertname;
      a.when = b->body.Find("when")->value.get();
      a.range = b->labels[0].range;
      a.for_ms = vals.Duration(b->body, "pending_for", 0).value_or(0);
      a.keep_firing_for_ms = vals.Duration(b->body, "keep_firing_for", 0).value_or(0);
      a.severity = vals.String(b->body, "severity").value_or("");
      a.labels = vals.Strings(b->body, "labels", true);
      a.annotations = vals.Strings(b->body, "annotations", true);
      for (const char* reserved : {"alertname", "severity"}) {
        if (a.labels.count(reserved)) {
          cur_->Error(DiagCode::InvalidOperation, b->body.Find("labels")->value->range,
                      std::string("the label '") + reserved + "' is set by the alert itself")
              .help = std::string(reserved) == "severity" ? "write: severity = \"page\"" : "the block's label is the alertname";
        }
      }
      out.alerts.push_back(std::move(a));
    }
    for (const ast::Block* b : info.scale_rules) {
      vals.where = prefix + "scale_rule." + b->labels[0].value;
      ScaleRuleInstance r;
      r.name = prefix + "scale_rule." + b->labels[0].value;
      r.service = vals.String(b->body, "service").value_or("");
      r.region = vals.String(b->body, "region").value_or("");
      if (const ast::Attribute* up = b->body.Find("up_when")) r.up_when = up->value.get();
      if (const ast::Attribute* down = b->body.Find("down_when")) r.down_when = down->value.get();
      if (const ast::Attribute* value = b->body.Find("value")) r.value = value->value.get();
      if (const ast::Attribute* a = b->body.Find("average")) {
        const Value v = Evaluate(*a->value, vals.scope, vals.diags);
        if (v.kind() == Value::Kind::Number && v.as_number() > 0 && std::isfinite(v.as_number()))
          r.average = v.as_number();
        else if (!v.is_unknown())
          vals.diags.Error(DiagCode::TypeMismatch, a->value->range, "'average' must be a number above 0")
              .help = "write: average = 10 (the value each replica should carry)";
      }
      r.range = b->labels[0].range;
      out.scale_rules.push_back(std::move(r));
    }
    for (const ast::Block* b : info.receivers) {
      vals.where = "receiver." + b->labels[0].value;
      ReceiverConfig r;
      r.name = b->labels[0].value;
      r.range = b->labels[0].range;
      r.url = vals.String(b->body, "url").value_or("");
      if (const ast::Attribute* u = b->body.Find("url");
          u && !r.url.empty() && r.url.rfind("http://", 0) != 0 && r.url.rfind("https://", 0) != 0) {
        cur_->Error(DiagCode::InvalidOperation, u->value->range, "a receiver's url must start with http:// or https://");
      }
      r.hmac_secret = vals.String(b->body, "hmac_secret").value_or("");
      r.bearer_token = vals.String(b->body, "bearer_token").value_or("");
      r.send_resolved = vals.Bool(b->body, "send_resolved").value_or(true);
      r.max_alerts = vals.Count(b->body, "max_alerts").value_or(0);
      r.timeout_ms = vals.Duration(b->body, "timeout", 100).value_or(10'000);
      out.receivers.push_back(std::move(r));
    }
    for (const ast::Block* b : info.notifications) {
      vals.where = "notification";
      NotificationConfig& n = out.notification;
      n.declared = true;
      n.range = b->type_range;
      EvalRoute(vals, *b, n.root, false);
      n.alertmanager_url = vals.String(b->body, "alertmanager").value_or("");
      n.evaluation_interval_ms = vals.Duration(b->body, "evaluation_interval", 1000).value_or(15'000);
      for (const ast::Block& r : b->body.blocks) {
        if (r.type != "route") continue;
        NotificationRouteConfig route;
        EvalRoute(vals, r, route, true);
        n.routes.push_back(std::move(route));
      }
      // Receivers named by routes exist.
      std::vector<std::string> names;
      for (const ast::Block* rb : info.receivers) names.push_back(rb->labels[0].value);
      auto check = [&](const NotificationRouteConfig& route, const ast::Block& where) {
        const ast::Attribute* attr = where.body.Find("receiver");
        if (route.receiver.empty()) {
          if (!attr) {
            cur_->Error(DiagCode::MissingAttribute, where.type_range, "a route needs 'receiver'")
                .help = names.empty() ? "declare one: receiver \"oncall\" { url = \"http://...\" }"
                                      : "receivers: " + JoinNames(names);
          }
          return;
        }
        if (std::find(names.begin(), names.end(), route.receiver) == names.end()) {
          Diagnostic& d = cur_->Error(DiagCode::UndefinedReference, attr->value->range,
                                      "no receiver named '" + route.receiver + "'");
          std::string near = ClosestName(route.receiver, names);
          d.help = !near.empty() ? "did you mean '" + near + "'?"
                   : names.empty() ? "declare it: receiver \"" + route.receiver + "\" { url = \"http://...\" }"
                                   : "receivers: " + JoinNames(names);
        }
      };
      check(n.root, *b);
      size_t i = 0;
      for (const ast::Block& r : b->body.blocks) {
        if (r.type == "route" && i < n.routes.size()) check(n.routes[i++], r);
      }
    }
  }

  Value EvalVariable(Instance& inst, const Decl& d, const std::map<std::string, Value>& inputs,
                     const std::map<std::string, Range>& input_ranges, CheckedConfig& out) {
    const ast::Body& body = d.block->body;
    Value value;
    Range where = d.range;
    bool provided = false;
    const VariableInput* source = nullptr;  // a root variable's value from outside the configuration
    std::string from;                       // " from --var x": where that value came from, for messages
    if (auto it = inputs.find(d.name); it != inputs.end()) {
      value = it->second;
      provided = true;
      if (inst.info->is_root) {
        // A --var or PLINTH_VAR_ text is a literal of the declared type: a
        // string variable takes it verbatim (`null` stays null).
        const VariableInput& in = root_inputs_.at(d.name);
        source = &in;
        if (in.has_text && d.var_type.is(TypeKind::String) && !value.is_null()) value = Value::String(in.text);
      }
      if (auto r = input_ranges.find(d.name); r != input_ranges.end()) where = r->second;
      if (source && !source->range.valid()) {
        from = " from " + source->source;
      } else if (source && d.sensitive) {
        // Diagnostics show their source line: a sensitive value's is not
        // shown, the error is at the declaration and names the assignment.
        const SourceFile& f = sources_.Get(source->range.file);
        LineCol at = f.Position(source->range.begin);
        from = " from " + f.path() + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
        where = d.range;
      }
    } else if (const ast::Attribute* def = body.Find("default")) {
      InstanceScope scope(*this, inst);
      value = Evaluate(*def->value, scope, *cur_);
      where = def->value->range;
      provided = true;
    } else {
      value = Value::Unknown(d.var_type);  // no value yet: known when the caller supplies one
      // Validate treats it as unknown; planning needs every root value, and
      // says so before anything runs.
      if (inst.info->is_root && options_.resource_hook) {
        cur_->Error(DiagCode::MissingAttribute, d.range, "root variable '" + d.name + "' has no value")
            .help = "set it with --var " + d.name + "=VALUE, in a --var-file or " + kDefaultVarsFile +
                    " file, or with the environment variable PLINTH_VAR_" + d.name + "; or give it a default";
      }
    }
    if (provided && !value.is_null()) {
      Type got = value.is_unknown() ? value.unknown_type() : value.type();
      if (!Assignable(got, d.var_type)) {
        bool hide = value.is_unknown() || value.sensitive() || d.sensitive;
        Diagnostic& diag = cur_->Error(DiagCode::TypeMismatch, where,
                                        "variable '" + d.name + "' expects " + d.var_type.ToString() + ", got " +
                                            (hide ? got.ToString() : value.ToString()) + from);
        if (!from.empty()) diag.help = "the value" + from + " must be of type " + d.var_type.ToString();
        if (where.begin != d.range.begin || where.file != d.range.file) diag.notes.push_back({d.range, "declared here"});
        value = Value::Unknown(d.var_type);
      }
    }
    if (d.sensitive) value = value.WithSensitive();
    // Validation rules.
    for (const ast::Block& v : body.blocks) {
      if (v.type != "validation") continue;
      const ast::Attribute* cond = v.body.Find("condition");
      const ast::Attribute* msg = v.body.Find("message");
      if (!cond || value.ContainsUnknown()) continue;
      InstanceScope scope(*this, inst);
      scope.variable = &d;
      scope.variable_value = value;
      Value ok = Evaluate(*cond->value, scope, *cur_);
      if (ok.is_unknown()) continue;
      if (ok.kind() != Value::Kind::Bool) {
        cur_->Error(DiagCode::TypeMismatch, cond->value->range, "a validation condition must be a bool");
        continue;
      }
      if (!ok.as_bool()) {
        std::string text = "value is not valid";
        if (msg) {
          Value m = Evaluate(*msg->value, scope, *cur_);
          if (m.kind() == Value::Kind::String && !m.sensitive()) text = m.as_string();
        }
        Diagnostic& diag = cur_->Error(DiagCode::ValidationFailed, where,
                                        "invalid value for variable '" + d.name + "': " + text);
        diag.notes.push_back({cond->value->range, "rule defined here"});
        if (!where.valid()) diag.range = d.range;
        if (!d.sensitive) diag.help = "the value is " + value.ToString();
      }
    }
    if (inst.info->is_root) {
      out.variables.push_back({d.name, d.var_type, value, d.sensitive,
                               body.Find("description") ? LiteralString(*body.Find("description")) : "", d.range});
    }
    return value;
  }

  static std::string LiteralString(const ast::Attribute& a) {
    if (a.value->kind == ast::ExprKind::Literal && a.value->As<ast::Literal>().value.kind() == Value::Kind::String) {
      return a.value->As<ast::Literal>().value.as_string();
    }
    return "";
  }

  // A provider block's configuration, checked against its schema; handed to
  // the resource hook at once so the provider is ready for its resources.
  Value EvalProvider(Instance& inst, const Decl& d, CheckedConfig& out) {
    InstanceScope scope(*this, inst);
    ValueMap attrs;
    EvalSchemaBody(d.block->body, d.provider_schema->body, scope, attrs, false);
    for (const AttributeSchema& a : d.provider_schema->body.attributes) {
      auto it = attrs.find(a.name);
      if (a.sensitive && it != attrs.end()) it->second = it->second.WithSensitive();
      // Planning needs the values; validate (no hook) accepts unset variables.
      if (options_.resource_hook && it != attrs.end() && it->second.is_unknown()) {
        cur_->Error(DiagCode::UnknownAtPlan, d.block->body.Find(a.name) ? d.block->body.Find(a.name)->value->range : d.range,
                     "provider '" + d.name + "' needs '" + a.name + "' when planning, and it is known only after apply")
            .help = "configure providers from variables and literal values";
      }
    }
    if (options_.resource_hook) options_.resource_hook->ProviderConfigured(d.name, attrs);
    out.providers[d.name] = attrs;
    return Poison();
  }

  Value EvalImport(Instance& inst, const Decl& d, CheckedConfig& out) {
    const ast::Attribute* id_attr = d.block->body.Find("id");
    InstanceScope scope(*this, inst);
    Value id = Evaluate(*id_attr->value, scope, *cur_);
    ImportStatement st;
    st.to = d.name;
    st.type = d.type;
    st.range = d.range;
    st.to_range = d.block->body.Find("to")->value->range;
    st.id_range = id_attr->value->range;
    if (id.ContainsUnknown()) {
      // Validate accepts what planning will know (a variable without a value yet).
      if (options_.resource_hook && !(id.is_unknown() && id.unknown_type().is(TypeKind::Any))) {
        cur_->Error(DiagCode::UnknownAtPlan, st.id_range, "the id of the import to " + st.to +
                                                              " is known only after apply")
            .help = "an import id must be known when planning: use a string, variables or locals";
      }
    } else if (id.kind() != Value::Kind::String) {
      cur_->Error(DiagCode::TypeMismatch, st.id_range,
                  "an import id is a string, not " + (id.sensitive() ? id.type().ToString() : id.ToString()))
          .help = "write the provider's id for the object as text: id = \"logs/today\"";
    } else if (id.sensitive()) {
      cur_->Error(DiagCode::TypeMismatch, st.id_range, "an import id cannot be sensitive")
          .help = "plans show the id and the state records it; import by a value that is not secret";
    } else if (id.as_string().empty()) {
      cur_->Error(DiagCode::TypeMismatch, st.id_range, "the id of the import to " + st.to + " is empty")
          .help = "write the provider's id for the object: id = \"logs/today\"";
    } else {
      st.id = id.as_string();
      if (options_.resource_hook) options_.resource_hook->Import(st);
    }
    out.imports.push_back(std::move(st));
    return Value::Null();
  }

  Value EvalOutput(Instance& inst, const Decl& d, CheckedConfig& out) {
    const ast::Attribute* v = d.block->body.Find("value");
    if (!v) return Poison();
    InstanceScope scope(*this, inst);
    Value value = Evaluate(*v->value, scope, *cur_);
    if (value.ContainsSensitive() && !d.sensitive) {
      cur_->Warning(DiagCode::SensitiveOutput, v->value->range,
                     "output '" + d.name + "' exposes a sensitive value")
          .help = "add sensitive = true to the output so it is hidden in plans and logs";
    }
    if (d.sensitive) value = value.WithSensitive();
    if (inst.info->is_root) {
      const ast::Attribute* desc = d.block->body.Find("description");
      out.outputs.push_back({d.name, value, d.sensitive, desc ? LiteralString(*desc) : "", d.range});
    }
    return value;
  }

  // Instance keys from count / for_each. Returns false when the block must
  // not be expanded (errors reported).
  bool ExpansionKeys(Instance& inst, const Decl& d, std::vector<std::pair<Value, Value>>& keys, int* mode) {
    const ast::Attribute* count = d.block->body.Find("count");
    const ast::Attribute* for_each = d.block->body.Find("for_each");
    *mode = 0;
    if (count && !for_each) {
      *mode = 1;
      InstanceScope scope(*this, inst);
      size_t errors_before = cur_->error_count();
      Value n = Evaluate(*count->value, scope, *cur_);
      if (n.is_unknown()) {
        // An error in the expression itself was reported; do not add another.
        if (cur_->error_count() == errors_before) {
          cur_->Error(DiagCode::UnknownAtPlan, count->value->range, "count depends on a value known only after apply")
              .help = "count must be known when planning; derive it from variables or literal values";
        }
        return false;
      }
      if (n.kind() != Value::Kind::Number || !n.is_integer() || n.as_number() < 0) {
        Diagnostic& d = cur_->Error(DiagCode::InvalidExpansion, count->value->range,
                                    "count must be a whole number of zero or more, not " + n.ToString());
        if (n.kind() == Value::Kind::List || n.kind() == Value::Kind::Object) {
          d.help = "use length(...) to count a collection, or for_each to create one instance per element";
        } else if (n.kind() == Value::Kind::Number) {
          d.help = n.as_number() < 0 ? "use max(0, n) to clamp a count that can be negative"
                                     : "round it with floor() or ceil()";
        } else if (n.kind() == Value::Kind::String) {
          d.help = "write the number without quotes, or convert it with tonumber()";
        }
        return false;
      }
      if (n.as_number() > 1'000'000) {
        cur_->Error(DiagCode::InvalidExpansion, count->value->range, "count is larger than 1000000");
        return false;
      }
      for (size_t i = 0; i < static_cast<size_t>(n.as_number()); ++i) {
        keys.emplace_back(Value::Number(static_cast<double>(i)), Value());
      }
      return true;
    }
    if (for_each) {
      *mode = 2;
      InstanceScope scope(*this, inst);
      size_t errors_before = cur_->error_count();
      Value coll = Evaluate(*for_each->value, scope, *cur_);
      if (coll.is_unknown()) {
        if (cur_->error_count() == errors_before) {
          cur_->Error(DiagCode::UnknownAtPlan, for_each->value->range,
                       "for_each depends on a value known only after apply")
              .help = "for_each keys must be known when planning; use keys from variables or literal values";
        }
        return false;
      }
      if (coll.sensitive()) {
        cur_->Error(DiagCode::InvalidExpansion, for_each->value->range, "for_each cannot use a sensitive value")
            .help = "instance keys appear in addresses and plans; use nonsensitive keys";
        return false;
      }
      if (coll.kind() == Value::Kind::Object) {
        for (const auto& [k, v] : coll.as_object()) keys.emplace_back(Value::String(k), v);
        return true;
      }
      if (coll.kind() == Value::Kind::List) {
        std::set<std::string> seen;
        for (const Value& v : coll.as_list()) {
          if (v.is_unknown()) {
            cur_->Error(DiagCode::UnknownAtPlan, for_each->value->range,
                         "for_each contains a value known only after apply");
            return false;
          }
          if (v.kind() != Value::Kind::String) {
            cur_->Error(DiagCode::InvalidExpansion, for_each->value->range,
                         "for_each over a list needs strings, but it contains " + v.ToString())
                .help = "use a map, or convert the elements: [for x in list : tostring(x)]";
            return false;
          }
          if (!seen.insert(v.as_string()).second) {
            cur_->Error(DiagCode::InvalidExpansion, for_each->value->range,
                         "for_each has the key " + QuoteString(v.as_string()) + " twice")
                .help = "use distinct(list) to drop duplicates";
            return false;
          }
          keys.emplace_back(v, v);
        }
        return true;
      }
      cur_->Error(DiagCode::InvalidExpansion, for_each->value->range,
                   "for_each needs a map or a list of strings, not " + coll.ToString())
          .help = "for example: for_each = { eu = region.eu, us = region.us }";
      return false;
    }
    keys.emplace_back(Value(), Value());
    return true;
  }

  static std::vector<std::string> DependencyAddresses(const Instance& inst, const Decl& d) {
    std::vector<std::string> deps;
    for (uint32_t dep : d.resource_deps) deps.push_back(inst.prefix + inst.info->decls[dep].Address());
    if (d.uses_vars) deps.insert(deps.end(), inst.inherited_deps.begin(), inst.inherited_deps.end());
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    return deps;
  }

  Value EvalResource(Instance& inst, const Decl& d, CheckedConfig& out) {
    std::vector<std::pair<Value, Value>> keys;
    int mode = 0;
    if (!ExpansionKeys(inst, d, keys, &mode)) return Poison();
    std::vector<std::string> deps = DependencyAddresses(inst, d);
    ValueList list;
    ValueMap map;
    Value single;
    bool prevent = false, cbd = false, correct = false;
    std::vector<std::string> ignore;
    for (const ast::Block& b : d.block->body.blocks) {
      if (b.type != "lifecycle") continue;
      if (auto* a = b.body.Find("prevent_destroy"); a && a->value->kind == ast::ExprKind::Literal)
        prevent = a->value->As<ast::Literal>().value.as_bool();
      if (auto* a = b.body.Find("create_before_destroy"); a && a->value->kind == ast::ExprKind::Literal)
        cbd = a->value->As<ast::Literal>().value.as_bool();
      if (auto* a = b.body.Find("correct_drift");
          a && a->value->kind == ast::ExprKind::Literal &&
          a->value->As<ast::Literal>().value.kind() == Value::Kind::Bool)
        correct = a->value->As<ast::Literal>().value.as_bool();
      if (auto* a = b.body.Find("ignore_changes")) {
        if (a->value->kind == ast::ExprKind::Name) ignore.push_back("all");
        if (a->value->kind == ast::ExprKind::List) {
          for (const auto& item : a->value->As<ast::List>().items) {
            if (item->kind == ast::ExprKind::Name) ignore.push_back(item->As<ast::Name>().name);
            else if (item->kind == ast::ExprKind::Literal && item->As<ast::Literal>().value.kind() == Value::Kind::String)
              ignore.push_back(item->As<ast::Literal>().value.as_string());
          }
        }
      }
    }
    for (auto& [key, each_value] : keys) {
      std::string address = inst.prefix + d.name + KeySuffix(key);
      InstanceScope scope(*this, inst);
      if (mode == 1) {
        scope.has_count = true;
        scope.count_index = key;
      } else if (mode == 2) {
        scope.has_each = true;
        scope.each_key = key;
        scope.each_value = each_value;
      }
      // self: identity and computed attributes (configured ones may depend on it).
      ValueMap self_attrs;
      for (const auto& as : d.schema->body.attributes) {
        if (as.mode == AttrMode::Computed) self_attrs.emplace(as.name, Value::Unknown(as.type));
      }
      self_attrs.emplace("id", Value::Unknown(Type::String()));
      self_attrs.emplace("name", Value::String(InstanceName(inst.prefix, d.label, key)));
      self_attrs.emplace("address", Value::String(address));
      scope.has_self = true;
      scope.self = Value::Object(self_attrs);

      ValueMap attrs;
      EvalSchemaBody(d.block->body, d.schema->body, scope, attrs, true);
      attrs.insert(self_attrs.begin(), self_attrs.end());
      ResourceInstance ri;
      for (const auto& as : d.schema->body.attributes) {
        if (as.mode == AttrMode::OptionalComputed && !as.default_value) {
          const ast::Attribute* a = d.block->body.Find(as.name);
          if (!a) ri.unset_computed.push_back(as.name);
        }
      }
      ri.address = address;
      ri.module = inst.prefix.empty() ? "" : inst.prefix.substr(0, inst.prefix.size() - 1);
      ri.type = d.type;
      ri.name = d.label;
      ri.key = key;
      ri.attributes = std::move(attrs);
      ri.depends_on = deps;
      ri.prevent_destroy = prevent;
      ri.create_before_destroy = cbd;
      ri.ignore_changes = ignore;
      ri.correct_drift = correct;
      ri.range = d.block->range;
      ri.call_sites = inst.call_sites;
      // The planner may know more than the configuration (computed values of
      // a resource that already exists); references then see its answer.
      if (options_.resource_hook) {
        ValueMap planned = options_.resource_hook->Planned(ri);
        for (auto& [k, v] : self_attrs) planned.emplace(k, v);  // identity stays as the checker set it
        ri.attributes = std::move(planned);
      }
      Value object = Value::Object(ri.attributes);
      out.resources.push_back(std::move(ri));
      if (mode == 1) list.push_back(object);
      else if (mode == 2) map.emplace(key.as_string(), object);
      else single = object;
    }
    if (mode == 1) return Value::List(std::move(list));
    if (mode == 2) return Value::Object(std::move(map));
    return single;
  }

  void EvalSchemaBody(const ast::Body& body, const BlockSchema& schema, InstanceScope& scope, ValueMap& out, bool top) {
    for (const auto& as : schema.attributes) {
      const ast::Attribute* a = body.Find(as.name);
      if (as.mode == AttrMode::Computed) {
        out[as.name] = Value::Unknown(as.type);
        continue;
      }
      Value v;
      if (a) {
        v = Evaluate(*a->value, scope, *cur_);
        v = CheckAttributeValue(v, as, a->value->range);
      }
      if (v.is_null()) {
        if (as.default_value) v = *as.default_value;
        else if (as.mode == AttrMode::OptionalComputed) v = Value::Unknown(as.type);
      }
      if (as.sensitive) v = v.WithSensitive();
      out[as.name] = v;
    }
    for (const auto& ns : schema.blocks) {
      ValueList list;
      ValueMap map;
      for (const ast::Block& b : body.blocks) {
        if (b.type != ns.name) continue;
        ValueMap attrs;
        EvalSchemaBody(b.body, *ns.body, scope, attrs, false);
        if (ns.labeled) {
          if (b.labels.size() == 1) map.emplace(b.labels[0].value, Value::Object(std::move(attrs)));
        } else {
          list.push_back(Value::Object(std::move(attrs)));
        }
      }
      if (ns.labeled) out[ns.name] = Value::Object(std::move(map));
      else if (ns.max_items == 1) out[ns.name] = list.empty() ? Value() : list[0];
      else out[ns.name] = Value::List(std::move(list));
    }
    (void)top;
  }

  Value CheckAttributeValue(const Value& v, const AttributeSchema& as, Range range) {
    if (v.is_null()) return v;
    if (!as.ref_type.empty()) {
      if (v.is_unknown()) {
        const Type& t = v.unknown_type();
        if (t.is(TypeKind::Any) || t.is(TypeKind::Object)) return v;
      } else if (v.kind() == Value::Kind::Object) {
        auto it = v.as_object().find("address");
        if (it != v.as_object().end() && it->second.kind() == Value::Kind::String) {
          const std::string& addr = it->second.as_string();
          if (ResourceTypeOf(addr) == as.ref_type) return v;
          cur_->Error(DiagCode::TypeMismatch, range,
                       "'" + as.name + "' needs a " + as.ref_type + ", but this is " + addr)
              .help = "refer to a " + as.ref_type + ": " + as.name + " = " + as.ref_type + ".NAME";
          return Poison();
        }
      }
      Diagnostic& d = cur_->Error(DiagCode::TypeMismatch, range,
                                  "'" + as.name + "' needs a reference to a " + as.ref_type + ", not " +
                                      (v.sensitive() ? std::string("a sensitive value") : v.ToString()));
      d.help = v.kind() == Value::Kind::String
                   ? "refer to the resource itself so the dependency is known: " + as.name + " = " + as.ref_type + "." +
                         (IsIdentifier(v.as_string()) ? v.as_string() : "NAME")
                   : "write: " + as.name + " = " + as.ref_type + ".NAME";
      return Poison();
    }
    Type got = v.is_unknown() ? v.unknown_type() : v.type();
    if (!Assignable(got, as.type)) {
      Diagnostic& d = cur_->Error(DiagCode::TypeMismatch, range,
                                   "'" + as.name + "' expects " + as.type.ToString() + ", got " +
                                       (v.is_unknown() ? got.ToString() : v.sensitive() ? got.ToString() : v.ToString()));
      if (v.kind() == Value::Kind::String && (as.type.is(TypeKind::Duration) || as.type.is(TypeKind::Size) ||
                                              as.type.is(TypeKind::Percent))) {
        d.help = "write the value without quotes, with its unit: " +
                 std::string(as.type.is(TypeKind::Duration) ? "30s, 5m, 7d" : as.type.is(TypeKind::Size) ? "512MiB, 10GiB" : "80%");
      } else if (v.kind() == Value::Kind::Number && (as.type.is(TypeKind::Duration) || as.type.is(TypeKind::Size))) {
        d.help = "add a unit: " + FormatNumber(v.as_number()) + (as.type.is(TypeKind::Duration) ? "s" : "GiB");
      } else if (v.kind() == Value::Kind::Number && as.type.is(TypeKind::Percent)) {
        d.help = v.as_number() <= 1 ? "write it as a percentage: " + FormatNumber(v.as_number() * 100) + "%"
                                    : "write it as a percentage: " + FormatNumber(v.as_number()) + "%";
      } else if (v.kind() == Value::Kind::String && as.type.IsNumeric()) {
        d.help = "write the number without quotes";
      } else if (as.type.is(TypeKind::Bool) && (v.kind() == Value::Kind::String || v.kind() == Value::Kind::Number)) {
        d.help = "write true or false, without quotes";
      } else if (!as.doc.empty()) {
        d.help = as.name + ": " + as.doc;
      }
      return Poison();
    }
    if (!as.allowed_values.empty() && v.kind() == Value::Kind::String) {
      if (std::find(as.allowed_values.begin(), as.allowed_values.end(), v.as_string()) == as.allowed_values.end()) {
        Diagnostic& d = cur_->Error(DiagCode::TypeMismatch, range,
                                     "'" + as.name + "' must be one of " + JoinNames(as.allowed_values) + ", not " +
                                         QuoteString(v.as_string()));
        std::string near = ClosestName(v.as_string(), as.allowed_values);
        if (!near.empty()) d.help = "did you mean \"" + near + "\"?";
        return Poison();
      }
    }
    if (!as.caveat.empty() && !v.is_unknown() && !v.is_null() && !(as.default_value && v.Equals(*as.default_value))) {
      cur_->Warning(DiagCode::SettingCaveat, range, "'" + as.name + "' = " + v.ToString() + ": " + as.caveat);
    }
    return v;
  }

  Value EvalModuleCall(Instance& inst, const Decl& d, CheckedConfig& out, std::vector<std::string>& chain) {
    if (!d.child) return Poison();
    std::vector<std::pair<Value, Value>> keys;
    int mode = 0;
    if (!ExpansionKeys(inst, d, keys, &mode)) return Poison();
    ValueList list;
    ValueMap map;
    Value single;
    for (auto& [key, each_value] : keys) {
      InstanceScope scope(*this, inst);
      if (mode == 1) {
        scope.has_count = true;
        scope.count_index = key;
      } else if (mode == 2) {
        scope.has_each = true;
        scope.each_key = key;
        scope.each_value = each_value;
      }
      std::map<std::string, Value> inputs;
      std::map<std::string, Range> ranges;
      for (const ast::Attribute& a : d.block->body.attributes) {
        if (a.name == "source" || MetaArguments().count(a.name) || !d.child->vars.count(a.name)) continue;
        inputs[a.name] = Evaluate(*a.value, scope, *cur_);
        ranges[a.name] = a.value->range;
      }
      std::string prefix = inst.prefix + "module." + d.name + KeySuffix(key) + ".";
      std::vector<Range> call_sites = inst.call_sites;
      call_sites.push_back(d.block->range);
      ValueMap outputs =
          Instantiate(*d.child, prefix, inputs, ranges, out, chain, DependencyAddresses(inst, d), std::move(call_sites));
      Value v = Value::Object(std::move(outputs));
      if (mode == 1) list.push_back(v);
      else if (mode == 2) map.emplace(key.as_string(), v);
      else single = v;
    }
    if (mode == 1) return Value::List(std::move(list));
    if (mode == 2) return Value::Object(std::move(map));
    return single;
  }

  CheckMemo* prev_ = nullptr;  // the last check of a CheckSession (may be null)
  CheckMemo* next_ = nullptr;  // what this one keeps for the next; null outside a session
  bool reads_files_ = false;   // a file function ran since this was last cleared
  Diagnostics& diags_;
  // Where diagnostics go right now: diags_, or muted_ while checking a block
  // the parser already reported as broken (its errors would only repeat).
  Diagnostics* cur_;
  Diagnostics muted_;
  const CheckOptions& options_;
  const SchemaRegistry* schemas_;  // options.schemas, or the resolver's registry
  std::set<std::string, std::less<>> resolved_names_;  // providers handed to the resolver
  std::shared_ptr<ModuleLoader> loader_;
  std::map<std::string, std::unique_ptr<ModuleInfo>> analysed_;
  std::vector<std::string> analysing_;
  std::string root_dir_;
  SourceManager& sources_;
  // Root variable values from the environment, variables files and --var.
  std::map<std::string, VariableInput> root_inputs_;
  // The root module instance, with CheckOptions::keep_root_scope.
  std::unique_ptr<Instance> root_;
};

class CheckerRootScope : public RootScope {
 public:
  explicit CheckerRootScope(std::unique_ptr<Checker> checker) : checker_(std::move(checker)) {}
  Value Evaluate(const ast::Expr& expr, Diagnostics& diags) override {
    return checker_->EvaluateInRoot(expr, diags);
  }

 private:
  std::unique_ptr<Checker> checker_;
};

bool Checker::InstanceScope::Resolve(const ast::Name& root, std::span<const ast::GetAttr* const> steps, Value* out,
                                     size_t* consumed, Diagnostics& diags) {
  const ModuleInfo& info = *inst_.info;
  const std::string& r = root.name;
  *consumed = 0;
  *out = Poison();
  auto first = [&]() -> const std::string* { return steps.empty() ? nullptr : &steps[0]->name; };
  auto lookup = [&](const std::unordered_map<std::string, uint32_t>& table) {
    if (const std::string* name = first()) {
      *consumed = 1;
      if (auto it = table.find(*name); it != table.end()) *out = inst_.values[it->second];
    }
    return true;
  };
  if (r == "var") {
    // Inside a validation rule the variable being validated is not stored yet.
    if (variable && first() && *first() == variable->name) {
      *consumed = 1;
      *out = variable_value;
      return true;
    }
    return lookup(info.vars);
  }
  if (r == "local") return lookup(info.locals);
  if (r == "module") {
    if (const std::string* name = first()) {
      *consumed = 1;
      auto it = info.modules.find(*name);
      if (it == info.modules.end()) return true;
      *out = inst_.values[it->second];
      // module.NAME.OUTPUT: name the module in the error rather than "object".
      if (steps.size() >= 2 && out->kind() == Value::Kind::Object && !out->as_object().count(steps[1]->name)) {
        const ModuleInfo* child = info.decls[it->second].child;
        if (child) {
          std::vector<std::string> names;
          for (const auto& [n, i] : child->outputs) names.push_back(n);
          Diagnostic& d = diags.Error(DiagCode::UndefinedReference, steps[1]->name_range,
                                      "module '" + *name + "' has no output '" + steps[1]->name + "'");
          std::string near = ClosestName(steps[1]->name, names);
          d.help = near.empty() ? (names.empty() ? "the module declares no outputs"
                                                 : "its outputs are: " + JoinNames(names))
                                : "did you mean '" + near + "'?";
          *out = Poison();
          *consumed = 2;
        }
      }
    }
    return true;
  }
  if (r == "each") {
    if (has_each && first()) {
      *consumed = 1;
      if (*first() == "key") *out = each_key;
      if (*first() == "value") *out = each_value;
    }
    return true;
  }
  if (r == "count") {
    if (has_count && first()) {
      *consumed = 1;
      if (*first() == "index") *out = count_index;
    }
    return true;
  }
  if (r == "self") {
    if (has_self) *out = self;
    return true;
  }
  if (r == "value" && variable) {
    *out = variable_value;
    return true;
  }
  if (r == "path") {
    if (const std::string* name = first()) {
      *consumed = 1;
      std::error_code ec;
      if (*name == "module") *out = Value::String(info.module->dir);
      if (*name == "root") *out = Value::String(inst_.root_dir);
      if (*name == "cwd") *out = Value::String(fs::current_path(ec).string());
    }
    return true;
  }
  if (info.resource_types.count(r)) {
    if (const std::string* name = first()) {
      *consumed = 1;
      auto it = info.resources.find(r + "." + *name);
      if (it == info.resources.end()) return true;
      *out = inst_.values[it->second];
      const Decl& decl = info.decls[it->second];
      // TYPE.NAME.ATTR on a single instance: name the resource in the error.
      bool single = !decl.block->body.Find("count") && !decl.block->body.Find("for_each");
      if (single && steps.size() >= 2 && out->kind() == Value::Kind::Object && !out->as_object().count(steps[1]->name)) {
        std::vector<std::string> names;
        for (const auto& [k, v] : out->as_object()) names.push_back(k);
        Diagnostic& d = diags.Error(DiagCode::InvalidIndex, steps[1]->name_range,
                                    r + " '" + *name + "' has no attribute '" + steps[1]->name + "'");
        std::string near = ClosestName(steps[1]->name, names);
        d.help = near.empty() ? "its attributes are: " + JoinNames(names) : "did you mean '" + near + "'?";
        *out = Poison();
        *consumed = 2;
      } else if (!single && steps.size() >= 2 && out->kind() == Value::Kind::List) {
        // count: the value is a list, handled by the evaluator's message.
      }
    }
    return true;
  }
  // Unknown roots were reported by the analysis pass.
  return true;
}

std::string Checker::InstanceScope::BaseDir() const { return inst_.info->module->dir; }

bool Checker::InstanceScope::ImpureKnown() const { return c_.options_.apply_time; }

}  // namespace

CheckSession::CheckSession() : cache_(std::make_unique<ParseCache>()) {}
CheckSession::~CheckSession() = default;

std::shared_ptr<const CheckedConfig> CheckSession::Check(const std::string& dir, Diagnostics& diags,
                                                         CheckOptions options) {
  options.parse_cache = cache_.get();
  cache_->BeginCheck();
  // What the memo cannot see: a planner's answers, values known only at
  // apply, a scope kept for more expressions.
  const bool memo = incremental_ && !options.resource_hook && !options.apply_time && !options.keep_root_scope;
  if (!memo || (last_ && last_->dir != dir)) last_.reset();
  auto next = std::make_unique<CheckMemo>();
  next->dir = dir;
  next->config = std::make_shared<CheckedConfig>();
  retired_.clear();
  auto checker = std::make_shared<Checker>(cache_->sources(), diags, options, last_.get(), memo ? next.get() : nullptr);
  try {
    *next->config = checker->Run(dir);
    next->trees = checker->Trees();
  } catch (...) {
    last_.reset();  // it may have been moved from
    throw;
  }
  // Freeing the checker's analyses and the last memo takes a while in a
  // large workspace: the caller may do it after using the result.
  retired_.push_back(std::move(checker));
  last_stats_ = {next->evaluated, next->reused};
  std::shared_ptr<const CheckedConfig> result = next->config;
  retired_.push_back(std::shared_ptr<CheckMemo>(std::move(last_)));
  if (memo) last_ = std::move(next);
  return result;
}

CheckedConfig Check(const std::string& dir, SourceManager& sources, Diagnostics& diags, const CheckOptions& options) {
  if (options.keep_root_scope) {
    auto checker = std::make_unique<Checker>(sources, diags, options);
    CheckedConfig out = checker->Run(dir);
    out.root_scope = std::make_shared<CheckerRootScope>(std::move(checker));
    return out;
  }
  Checker checker(sources, diags, options);
  return checker.Run(dir);
}

}  // namespace plinth
