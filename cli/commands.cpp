#include "cli/commands.h"
#include "runtime/controller/alert_rules.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "compiler/check/checker.h"
#include "compiler/check/loader.h"
#include "compiler/eval/evaluator.h"
#include "compiler/fmt/fmt.h"
#include "compiler/syntax/parse.h"
#include "compiler/types/user_json.h"
#include "runtime/git/repository.h"
#include "runtime/io/durable.h"
#include "runtime/plan/plan.h"
#include "runtime/policy/policy.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"

namespace plinth::cli {

namespace fs = std::filesystem;

namespace {

bool UseColor(const Options& o, FILE* stream) {
  if (!o.color) return false;
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color && *no_color) return false;
  return isatty(fileno(stream));
}


// Like Value::ToString, but a reference to a resource (an object carrying
// its `address`) prints as that address: `region = region.eu`.
std::string ValueText(const Value& v) {
  if (v.sensitive()) return "(sensitive)";
  if (v.kind() == Value::Kind::Object) {
    const ValueMap& m = v.as_object();
    auto it = m.find("address");
    if (it != m.end() && it->second.kind() == Value::Kind::String && m.count("id")) return it->second.as_string();
    if (m.empty()) return "{}";
    std::string s = "{ ";
    bool first = true;
    for (const auto& [k, x] : m) {
      s += (first ? "" : ", ") + FormatObjectKey(k) + " = " + ValueText(x);
      first = false;
    }
    return s + " }";
  }
  if (v.kind() == Value::Kind::List) {
    std::string s = "[";
    for (size_t i = 0; i < v.as_list().size(); ++i) s += (i ? ", " : "") + ValueText(v.as_list()[i]);
    return s + "]";
  }
  return v.ToString(false);
}

void PrintAttributes(const ValueMap& attrs, int indent) {
  size_t width = 0;
  for (const auto& [k, v] : attrs) {
    if (k != "address" && k != "name") width = std::max(width, k.size());
  }
  for (const auto& [k, v] : attrs) {
    if (k == "address" || k == "name") continue;
    std::printf("%*s%-*s = %s\n", indent, "", static_cast<int>(width), k.c_str(), ValueText(v).c_str());
  }
}

}  // namespace

void PrintDiagnostics(const Options& o, const SourceManager& sources, const Diagnostics& diags) {
  std::vector<Diagnostic> sorted = diags.Sorted(sources);
  if (o.json) return;
  RenderOptions ro;
  ro.color = UseColor(o, stderr);
  std::string text = RenderText(sorted, sources, ro);
  std::fputs(text.c_str(), stderr);
}

VariableSources VariableSourcesOf(const Options& o) {
  VariableSources v;
  // PLINTH_VAR_NAME=VALUE; the name is case-sensitive, as in the configuration.
  static constexpr std::string_view kPrefix = "PLINTH_VAR_";
  for (char** e = environ; e && *e; ++e) {
    std::string_view entry(*e);
    size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq <= kPrefix.size() || entry.substr(0, kPrefix.size()) != kPrefix) continue;
    v.environment.emplace_back(std::string(entry.substr(kPrefix.size(), eq - kPrefix.size())),
                               std::string(entry.substr(eq + 1)));
  }
  v.auto_files = true;
  v.arguments = o.vars;
  return v;
}

CheckOptions ConfigCheckOptions(const VariableSources& vars, runtime::ExternalProviders& external) {
  CheckOptions co;
  co.variable_sources = vars;
  co.schemas = &runtime::BuiltinSchemas();
  co.provider_resolver = &external;
  return co;
}

int Validate(const Options& o, bool inspect) {
  std::string dir = o.paths.empty() ? "." : o.paths[0];
  if (o.paths.size() > 1) {
    std::fprintf(stderr, "plinth: validate takes one directory, got %zu paths\n", o.paths.size());
    return 2;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec) && !(fs::is_regular_file(dir, ec) && fs::path(dir).extension() == ".plinth")) {
    std::fprintf(stderr, "plinth: '%s' is not a directory or a .plinth file\n", dir.c_str());
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  SourceManager sources;
  Diagnostics diags;
  // Providers in other processes are started to learn their schemas, and
  // stopped when this function returns.
  runtime::ExternalProviders external(dir);
  CheckOptions co = ConfigCheckOptions(VariableSourcesOf(o), external);
  co.threads = o.threads;
  if (o.from_git) co.display_root = o.from_git->tree;
  // How the summary names the configuration: the directory, or for --git the repository and path.
  const std::string label = !o.from_git ? dir
                                        : runtime::EscapeControls(git::RedactUrl(o.git)) +
                                              (o.from_git->path.empty() ? "" : " " + o.from_git->path);
  CheckedConfig config = Check(dir, sources, diags, co);
  if (!diags.has_errors()) runtime::CheckPolicies(config.policies, diags);
  if (!diags.has_errors()) controller::CheckAlertRules(config.alerts, diags);
  if (!diags.has_errors()) controller::CheckScaleRules(config, diags);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::vector<Diagnostic> sorted = diags.Sorted(sources);
  bool ok = !diags.has_errors();
  // Counted after de-duplication: an error repeated for every instance of a
  // module or a count is shown, and counted, once.
  size_t errors = 0, warnings = 0;
  for (const Diagnostic& d : sorted) (d.severity == Severity::Error ? errors : warnings)++;

  if (o.json) {
    nlohmann::json doc = nlohmann::json::parse(RenderJson(sorted, sources));
    doc["summary"] = {{"files", config.files},
                      {"modules", config.modules},
                      {"module_instances", config.module_instances},
                      {"resource_instances", config.resources.size()},
                      {"outputs", config.outputs.size()},
                      {"variables", config.variables.size()}};
    if (inspect) {
      nlohmann::json resources = nlohmann::json::array();
      for (const ResourceInstance& r : config.resources) {
        nlohmann::json attrs = nlohmann::json::object();
        for (const auto& [k, v] : r.attributes) attrs[k] = ValueToUserJson(v);
        resources.push_back({{"address", r.address},
                             {"module", r.module},
                             {"type", r.type},
                             {"name", r.name},
                             {"key", ValueToUserJson(r.key)},
                             {"depends_on", r.depends_on},
                             {"lifecycle",
                              {{"prevent_destroy", r.prevent_destroy},
                               {"create_before_destroy", r.create_before_destroy},
                               {"ignore_changes", r.ignore_changes},
                               {"correct_drift", r.correct_drift}}},
                             {"attributes", attrs}});
      }
      nlohmann::json outputs = nlohmann::json::object();
      for (const OutputValue& out : config.outputs) outputs[out.name] = {{"value", ValueToUserJson(out.value)}, {"sensitive", out.sensitive}};
      nlohmann::json variables = nlohmann::json::object();
      for (const VariableValue& v : config.variables) {
        variables[v.name] = {{"type", v.type.ToString()}, {"value", ValueToUserJson(v.value)}, {"sensitive", v.sensitive}};
      }
      doc["resources"] = resources;
      doc["outputs"] = outputs;
      doc["variables"] = variables;
      nlohmann::json locals = nlohmann::json::object();
      for (const LocalValue& l : config.locals) locals[l.name] = ValueToUserJson(l.value);
      doc["locals"] = locals;
    }
    std::cout << doc.dump(2) << "\n";
    return ok ? 0 : 1;
  }

  PrintDiagnostics(o, sources, diags);
  if (inspect && ok) {
    for (const VariableValue& v : config.variables) {
      std::printf("var.%s (%s) = %s\n", v.name.c_str(), v.type.ToString().c_str(), ValueText(v.value).c_str());
    }
    if (!config.variables.empty()) std::printf("\n");
    // As language.md's `# =>` annotations show them: Plinth text.
    for (const LocalValue& l : config.locals)
      std::printf("local.%s = %s\n", l.name.c_str(), l.value.ToString().c_str());
    if (!config.locals.empty()) std::printf("\n");
    for (const ResourceInstance& r : config.resources) {
      std::printf("%s\n", r.address.c_str());
      PrintAttributes(r.attributes, 4);
      std::vector<std::string> lifecycle;
      if (r.prevent_destroy) lifecycle.push_back("prevent_destroy");
      if (r.create_before_destroy) lifecycle.push_back("create_before_destroy");
      for (const auto& a : r.ignore_changes) lifecycle.push_back("ignore_changes " + a);
      if (r.correct_drift) lifecycle.push_back("correct_drift");
      if (!lifecycle.empty()) {
        std::string text;
        for (const auto& l : lifecycle) text += (text.empty() ? "" : ", ") + l;
        std::printf("    (lifecycle: %s)\n", text.c_str());
      }
      if (!r.depends_on.empty()) {
        std::string deps;
        for (const auto& d : r.depends_on) deps += (deps.empty() ? "" : ", ") + d;
        std::printf("    (depends on %s)\n", deps.c_str());
      }
      std::printf("\n");
    }
    for (const OutputValue& out : config.outputs) {
      std::printf("output.%s = %s\n", out.name.c_str(), ValueText(out.value).c_str());
    }
    if (!config.outputs.empty()) std::printf("\n");
  }
  if (ok) {
    std::printf("%s: valid: %zu resource instance%s, %zu output%s, %zu file%s, %zu module instance%s (%.0f ms)%s\n",
                label.c_str(), config.resources.size(), config.resources.size() == 1 ? "" : "s", config.outputs.size(),
                config.outputs.size() == 1 ? "" : "s", config.files, config.files == 1 ? "" : "s",
                config.module_instances, config.module_instances == 1 ? "" : "s", ms,
                warnings ? (", " + std::to_string(warnings) + " warning" + (warnings == 1 ? "" : "s")).c_str() : "");
    return 0;
  }
  std::fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", label.c_str(), errors, errors == 1 ? "" : "s", warnings,
               warnings == 1 ? "" : "s");
  return 1;
}

namespace {

void CollectPlinthFiles(const std::string& path, std::vector<std::string>& out, std::string* error) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    out.push_back(path);
    return;
  }
  if (!fs::is_directory(path, ec)) {
    *error = "cannot read '" + path + "'";
    return;
  }
  std::vector<std::string> found;
  for (auto it = fs::recursive_directory_iterator(path, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const fs::path& p = it->path();
    std::string name = p.filename().string();
    if (it->is_directory() && !name.empty() && name[0] == '.') {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && p.extension() == ".plinth") found.push_back(p.string());
  }
  std::sort(found.begin(), found.end());
  out.insert(out.end(), found.begin(), found.end());
}

// A minimal line diff for --diff: the changed region of each file.
std::string SimpleDiff(const std::string& path, const std::string& a, const std::string& b) {
  auto lines = [](const std::string& s) {
    std::vector<std::string> v;
    std::istringstream in(s);
    std::string l;
    while (std::getline(in, l)) v.push_back(l);
    return v;
  };
  std::vector<std::string> x = lines(a), y = lines(b);
  size_t pre = 0;
  while (pre < x.size() && pre < y.size() && x[pre] == y[pre]) ++pre;
  size_t suf = 0;
  while (suf < x.size() - pre && suf < y.size() - pre && x[x.size() - 1 - suf] == y[y.size() - 1 - suf]) ++suf;
  std::string out = "--- " + path + "\n+++ " + path + " (formatted)\n";
  out += "@@ -" + std::to_string(pre + 1) + "," + std::to_string(x.size() - pre - suf) + " +" + std::to_string(pre + 1) +
         "," + std::to_string(y.size() - pre - suf) + " @@\n";
  for (size_t i = pre; i < x.size() - suf; ++i) out += "-" + x[i] + "\n";
  for (size_t i = pre; i < y.size() - suf; ++i) out += "+" + y[i] + "\n";
  return out;
}

}  // namespace

int Fmt(const Options& o) {
  std::vector<std::string> paths = o.paths.empty() ? std::vector<std::string>{"."} : o.paths;
  std::vector<std::string> files;
  for (const std::string& p : paths) {
    std::string error;
    CollectPlinthFiles(p, files, &error);
    if (!error.empty()) {
      std::fprintf(stderr, "plinth fmt: %s\n", error.c_str());
      return 2;
    }
  }
  SourceManager sources;
  Diagnostics diags;
  std::vector<std::string> changed;
  bool failed = false;
  for (const std::string& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "plinth fmt: cannot read '%s'\n", path.c_str());
      failed = true;
      continue;
    }
    std::string text = ss.str();
    if (text.size() > kMaxFileBytes) {
      std::fprintf(stderr, "plinth fmt: '%s' is larger than 64 MiB; skipped\n", path.c_str());
      failed = true;
      continue;
    }
    const SourceFile& file = sources.Add(path, text);
    bool internal = false;
    std::optional<std::string> formatted = Format(file, diags, &internal);
    if (!formatted) {
      failed = true;
      continue;
    }
    if (internal) {
      std::fprintf(stderr, "plinth fmt: internal error formatting '%s'; the file was left unchanged\n", path.c_str());
      failed = true;
      continue;
    }
    if (*formatted == text) continue;
    changed.push_back(path);
    if (o.diff) std::fputs(SimpleDiff(path, text, *formatted).c_str(), stdout);
    if (!o.check) {
      // An exclusively created temp file next to the original (through a
      // symlinked file, next to its target), then rename: never a
      // half-written file, and the original's permission bits are kept.
      std::error_code ec;
      fs::path target = fs::canonical(path, ec);
      if (ec) target = path;
      struct stat st;
      unsigned mode = ::stat(target.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0644;
      const char* stage = "write";
      if (int e = io::WriteFileAtomic(target, *formatted, mode, &stage)) {
        std::fprintf(stderr, "plinth fmt: cannot %s '%s': %s\n", stage, path.c_str(), std::strerror(e));
        failed = true;
        continue;
      }
    }
  }
  PrintDiagnostics(o, sources, diags);
  if (o.json) {
    nlohmann::json doc = nlohmann::json::parse(RenderJson(diags.Sorted(sources), sources));
    doc["changed"] = changed;
    doc["checked"] = files.size();
    std::cout << doc.dump(2) << "\n";
  } else {
    for (const std::string& c : changed) std::printf("%s\n", c.c_str());
  }
  if (failed) return 1;
  if (o.check && !changed.empty()) return 3;
  return 0;
}

}  // namespace plinth::cli
