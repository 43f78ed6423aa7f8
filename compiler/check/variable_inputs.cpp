#include "compiler/check/variable_inputs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "compiler/eval/evaluator.h"
#include "compiler/syntax/parse.h"

namespace plinth {
namespace fs = std::filesystem;

namespace {

// Values outside the configuration are constants: every reference is an
// error, reported at the reference.
class ConstantScope : public Scope {
 public:
  explicit ConstantScope(bool report) : report_(report) {}
  bool Resolve(const ast::Name& root, std::span<const ast::GetAttr* const>, Value* out, size_t* consumed,
               Diagnostics& diags) override {
    if (!report_) return false;
    diags.Error(DiagCode::InvalidReference, root.range,
                "a variables file takes constant values; '" + root.name + "' is a reference")
        .help = "write the value itself: a literal, or operators and functions over literals";
    *out = Value::Unknown(Type::Any());
    *consumed = 0;
    return true;
  }
  std::vector<std::string> RootNames() const override { return {}; }
  std::string BaseDir() const override { return "."; }

 private:
  bool report_;
};

// Loads one variables file into `out`. `required`: a missing file is an
// error (an explicit --var-file), else it is skipped.
void LoadFile(const std::string& path, VariableOrigin origin, SourceManager& sources, Diagnostics& diags,
              std::map<std::string, VariableInput>& out) {
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || fs::is_directory(path, ec)) {
    std::string why = fs::is_directory(path, ec) ? "it is a directory" : std::strerror(errno);
    std::transform(why.begin(), why.begin() + (why.empty() ? 0 : 1), why.begin(), ::tolower);
    diags.Error(DiagCode::FileUnreadable, {}, "cannot read variables file '" + path + "': " + why)
        .help = "check the path given to --var-file and the file's permissions";
    return;
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Variables files hold secrets: diagnostics locate problems in them but
  // never show their lines.
  const SourceFile& file = sources.Add(path, std::move(text), /*confidential=*/true);
  ast::File parsed = Parse(file, diags);
  for (const ast::Block& b : parsed.body.blocks) {
    diags.Error(DiagCode::UnknownBlockType, b.type_range,
                "a variables file takes only NAME = VALUE assignments, not a '" + b.type + "' block")
        .help = "declare variables in a .plinth file; set their values here as NAME = VALUE";
  }
  std::map<std::string, Range> seen;
  for (const ast::Attribute& a : parsed.body.attributes) {
    if (auto s = seen.find(a.name); s != seen.end()) {
      diags.Error(DiagCode::DuplicateAttribute, a.name_range, "variable '" + a.name + "' is set twice in this file")
          .notes.push_back({s->second, "first set here"});
      continue;
    }
    seen[a.name] = a.name_range;
    ConstantScope scope(true);
    Value v = Evaluate(*a.value, scope, diags);
    out[a.name] = VariableInput{v, "", false, a.value->range, a.name_range, path, origin};
  }
}

VariableInput FromText(const std::string& text, std::string source, VariableOrigin origin) {
  VariableInput v;
  v.value = ValueOfText(text);
  v.text = text;
  v.has_text = true;
  v.source = std::move(source);
  v.origin = origin;
  return v;
}

}  // namespace

Value ValueOfText(const std::string& text) {
  SourceManager sources;
  const SourceFile& f = sources.Add("<value>", text);
  Diagnostics local;
  ast::ExprPtr e = ParseExpression(f, local);
  Value v;
  if (!local.has_errors()) {
    ConstantScope scope(false);
    v = Evaluate(*e, scope, local);
  }
  if (local.has_errors()) v = Value::String(text);
  return v;
}

std::map<std::string, VariableInput> GatherVariableInputs(const std::string& config_dir,
                                                          const VariableSources& in, SourceManager& sources,
                                                          Diagnostics& diags) {
  std::map<std::string, VariableInput> out;
  for (const auto& [name, text] : in.environment) {
    out[name] = FromText(text, "PLINTH_VAR_" + name, VariableOrigin::Environment);
  }
  if (in.auto_files) {
    std::error_code ec;
    fs::path dir = fs::is_directory(config_dir, ec) ? fs::path(config_dir) : fs::path(config_dir).parent_path();
    std::vector<std::string> names;
    for (const fs::directory_entry& e : fs::directory_iterator(dir.empty() ? "." : dir, ec)) {
      std::string n = e.path().filename().string();
      if (n.size() > std::strlen(kAutoVarsSuffix) &&
          n.compare(n.size() - std::strlen(kAutoVarsSuffix), std::string::npos, kAutoVarsSuffix) == 0) {
        names.push_back(n);
      }
    }
    std::sort(names.begin(), names.end());
    if (fs::exists(dir / kDefaultVarsFile, ec)) names.insert(names.begin(), kDefaultVarsFile);
    for (const std::string& n : names) {
      LoadFile((dir / n).lexically_normal().string(), VariableOrigin::AutoFile, sources, diags, out);
    }
  }
  for (const VariableArgument& a : in.arguments) {
    if (a.is_file) {
      LoadFile(a.text, VariableOrigin::Argument, sources, diags, out);
    } else {
      out[a.name] = FromText(a.text, "--var " + a.name, VariableOrigin::Argument);
    }
  }
  return out;
}

}  // namespace plinth
