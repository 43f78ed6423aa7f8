// import: take existing objects under management (docs/cli.md, "Importing
// existing objects"): `plinth import ADDR ID` records one object in the
// state; `--print-config` prints a resource block for it instead; and
// `plan --generate-config-out=FILE` writes blocks for the import blocks
// whose target the configuration lacks.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "compiler/types/user_json.h"
#include "runtime/engine/engine.h"
#include "runtime/plan/imports.h"

namespace plinth::cli {

namespace {

namespace fs = std::filesystem;

std::optional<runtime::EngineOptions> ImportEngineOptions(const Options& o, const VariableSources& vars,
                                                          const std::string& dir) {
  runtime::EngineOptions eo;
  eo.config_dir = dir;
  if (!ExistingDir(eo.config_dir) || !StateKey(o, &eo.state_key)) return std::nullopt;
  eo.workspace = o.workspace;
  eo.variable_sources = vars;
  return eo;
}

void PrintErrors(const runtime::EngineResult& r, const SourceManager& sources, const Diagnostics& diags) {
  std::fputs(RenderText(diags.Sorted(sources), sources, RenderOptions{}).c_str(), stderr);
  for (const std::string& n : r.notes) std::fprintf(stderr, "note: %s\n", runtime::EscapeControls(n).c_str());
  for (const std::string& e : r.errors) std::fprintf(stderr, "error: %s\n", runtime::EscapeControls(e).c_str());
  for (const runtime::PlanProblem& p : r.plan.problems)
    std::fprintf(stderr, "error: %s\n", runtime::EscapeControls(p.message).c_str());
}

// The resource blocks for `objects`, one after another; false (after
// printing why) when one cannot be generated.
bool Blocks(const std::vector<runtime::ImportedObject>& objects, std::string* text) {
  for (const runtime::ImportedObject& obj : objects) {
    if (!obj.schema) {
      std::fprintf(stderr, "error: no schema for resource type '%s'\n", obj.type.c_str());
      return false;
    }
    std::string error;
    std::string block = runtime::GenerateResourceBlock(obj, *obj.schema, &error);
    if (block.empty()) {
      std::fprintf(stderr, "error: %s\n", runtime::EscapeControls(error).c_str());
      return false;
    }
    *text += (text->empty() ? "" : "\n") + block;
  }
  return true;
}

// Creates `path` (which must not exist) holding `text`, synced.
int WriteNewFile(const fs::path& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  size_t done = 0;
  int e = 0;
  while (done < text.size() && e == 0) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno != EINTR) e = errno;
    if (n > 0) done += static_cast<size_t>(n);
  }
  if (e == 0 && ::fsync(fd) != 0) e = errno;
  ::close(fd);
  if (e != 0) ::unlink(path.c_str());
  return e;
}

}  // namespace

int Import(const Options& o, const VariableSources& vars) {
  // Positionals: [DIR] ADDR ID.
  std::vector<std::string> args = o.paths;
  std::string dir = o.dir.empty() ? "." : o.dir;
  // --dir=D comes last in paths (the command line's reading of DIR).
  if (!o.dir.empty() && args.size() == 3 && args.back() == o.dir) args.pop_back();
  if (args.size() == 3) {
    dir = args[0];
    args.erase(args.begin());
  }
  if (args.size() != 2) {
    std::fprintf(stderr, "error: plinth import takes [DIR] ADDR ID, like: plinth import marker.logs logs/today\n"
                         "run 'plinth import --help' for more\n");
    return 2;
  }
  const std::string& address = args[0];
  const std::string& id = args[1];
  if (id.empty()) {
    std::fprintf(stderr, "error: the id is empty; give the provider's id for the object\n");
    return 2;
  }
  SourceManager sources;
  Diagnostics diags;
  std::optional<runtime::EngineOptions> eo = ImportEngineOptions(o, vars, dir);
  if (!eo) return 1;
  runtime::Engine engine(std::move(*eo), sources, diags);
  if (o.print_config) {
    std::string type, name;
    if (!runtime::SplitResourceAddress(address, &type, &name)) {
      std::fprintf(stderr,
                   "error: --print-config takes a root-module address without an instance key, TYPE.NAME "
                   "(like marker.logs), not '%s'\n",
                   runtime::EscapeControls(address).c_str());
      return 2;
    }
    runtime::EngineResult r = engine.ImportObject(address, type, id);
    if (!r.ok) {
      PrintErrors(r, sources, diags);
      return 1;
    }
    std::string text;
    if (!Blocks(r.generated, &text)) return 1;
    if (o.json) {
      std::cout << nlohmann::json{{"address", address}, {"type", type}, {"id", id}, {"config", text}}.dump(2) << "\n";
    } else {
      std::fputs(text.c_str(), stdout);
    }
    return 0;
  }
  runtime::EngineResult r = engine.Import(address, id);
  if (!r.ok || r.generated.empty()) {
    if (o.json) {
      nlohmann::json doc = nlohmann::json::parse(RenderJson(diags.Sorted(sources), sources));
      doc["errors"] = r.errors;
      std::cout << doc.dump(2) << "\n";
    } else {
      PrintErrors(r, sources, diags);
    }
    return 1;
  }
  const runtime::ImportedObject& obj = r.generated.front();
  if (o.json) {
    nlohmann::json attrs = nlohmann::json::object();
    for (const auto& [k, v] : obj.attributes) attrs[k] = ValueToUserJson(v);
    nlohmann::json doc = {{"imported", {{"address", obj.address}, {"type", obj.type}, {"id", obj.id}, {"attributes", attrs}}},
                          {"workspace", o.workspace},
                          {"serial", r.serial}};
    std::cout << doc.dump(2) << "\n";
    return 0;
  }
  for (const std::string& n : r.notes) std::fprintf(stderr, "note: %s\n", runtime::EscapeControls(n).c_str());
  std::printf("Imported %s (id %s) into workspace %s (serial %lld).\n", runtime::EscapeControls(obj.address).c_str(),
              runtime::EscapeControls(QuoteString(obj.id)).c_str(), o.workspace.c_str(),
              static_cast<long long>(r.serial));
  std::printf("Plinth manages it now; run plinth plan to compare it with its configuration.\n");
  return 0;
}

int GenerateImportConfig(const Options& o, const VariableSources& vars, bool destroy) {
  const std::string dir = !o.dir.empty() ? o.dir : o.paths.empty() ? "." : o.paths[0];
  const fs::path out = o.generate_config_out;
  std::error_code ec;
  if (destroy) {
    std::fprintf(stderr, "error: --generate-config-out cannot be combined with a destroy plan, which imports nothing\n");
    return 2;
  }
  if (out.extension() != ".plinth" || fs::weakly_canonical(fs::absolute(out).parent_path(), ec) !=
                                          fs::weakly_canonical(fs::absolute(dir), ec)) {
    std::fprintf(stderr,
                 "error: --generate-config-out takes a new .plinth file in the configuration directory (like "
                 "%s/generated.plinth), so that this plan and later ones read it; got '%s'\n",
                 dir.c_str(), out.c_str());
    return 2;
  }
  if (fs::symlink_status(out, ec).type() != fs::file_type::not_found) {
    std::fprintf(stderr, "error: '%s' exists; --generate-config-out writes a new file only: remove it or name another\n",
                 out.c_str());
    return 1;
  }
  SourceManager sources;
  Diagnostics diags;
  std::optional<runtime::EngineOptions> eo = ImportEngineOptions(o, vars, dir);
  if (!eo) return 1;
  eo->generate_config = true;
  eo->lock = o.lock;
  runtime::Engine engine(std::move(*eo), sources, diags);
  runtime::EngineResult r = engine.Plan();
  if (!r.ok || diags.has_errors()) {
    PrintErrors(r, sources, diags);
    return 1;
  }
  if (r.generated.empty()) {
    if (!o.json) std::fprintf(stderr, "note: every import block's target is in the configuration; nothing to generate\n");
    return 0;
  }
  std::string text =
      "# Generated by plinth plan --generate-config-out for the import blocks below it needs.\n"
      "# Review it: every attribute the object has is written out; sensitive ones are left for you to set.\n\n";
  if (!Blocks(r.generated, &text)) return 1;
  if (int e = WriteNewFile(out, text)) {
    std::fprintf(stderr, "error: cannot create '%s': %s\n", out.c_str(), std::strerror(e));
    return 1;
  }
  if (!o.json) {
    std::fprintf(stderr, "Wrote %zu resource block%s for import blocks to %s.\n", r.generated.size(),
                 r.generated.size() == 1 ? "" : "s", out.c_str());
  }
  return 0;
}

}  // namespace plinth::cli
