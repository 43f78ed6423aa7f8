// plinth console: expressions evaluated against the configuration and the
// recorded state (docs/cli.md, "console"). The configuration is checked once,
// with resources reading as recorded in the state; then each line is one
// expression (compiler/check/console.h). Read only: the state is read once,
// before the first line, without the workspace lock, and nothing is written.
#include <fcntl.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "compiler/check/checker.h"
#include "compiler/check/console.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"
#include "runtime/state/state_store.h"

namespace plinth::cli {

namespace {

namespace fs = std::filesystem;

// Resources as the state records them; those not in the state as the
// configuration gives them (what only apply knows stays unknown).
class RecordedValues : public ResourceHook {
 public:
  explicit RecordedValues(std::map<std::string, ValueMap> recorded) : recorded_(std::move(recorded)) {}

  ValueMap Planned(const ResourceInstance& ri) override {
    auto it = recorded_.find(ri.address);
    if (it == recorded_.end()) return ri.attributes;
    ValueMap attrs = it->second;
    // What the configuration marks sensitive (a sensitive variable, a
    // sensitive schema attribute) stays hidden in the recorded value too.
    for (auto& [name, value] : attrs) {
      auto configured = ri.attributes.find(name);
      if (configured != ri.attributes.end() && configured->second.ContainsSensitive())
        value = value.WithSensitive();
    }
    return attrs;
  }

 private:
  std::map<std::string, ValueMap> recorded_;
};

// The workspace's recorded resources, by address; empty when the workspace
// has no state yet. False (after printing why) when the state exists but
// cannot be read. Opened for reading only: never created, never locked.
bool ReadRecorded(const Options& o, const std::string& dir, std::map<std::string, ValueMap>* out) {
  state::StoreOptions so;
  so.mode = state::OpenMode::kExisting;
  if (!StateKey(o, &so.encryption_key)) return false;
  auto store = state::StateStore::OpenWorkspace(dir, o.workspace, so);
  if (!store.ok()) {
    if (store.error().code != state::ErrorCode::kNotFound) {
      std::fprintf(stderr, "error: cannot open the state: %s\n", store.error().message.c_str());
      return false;
    }
    // Before the first apply that is expected; beside other workspaces'
    // state it may be a mistyped name.
    if (!state::StateStore::Workspaces(dir).empty()) {
      std::fprintf(stderr, "note: %s; resources read as configured\n", store.error().message.c_str());
    }
    return true;
  }
  auto records = store.value()->Resources();
  if (!records.ok()) {
    std::fprintf(stderr, "error: cannot read the state: %s\n", records.error().message.c_str());
    return false;
  }
  for (state::ResourceRecord& r : records.value()) {
    if (!r.id.empty()) r.attributes.emplace("id", Value::String(r.id));
    (*out)[r.address] = std::move(r.attributes);
  }
  return true;
}

bool Colored(const Options& o, FILE* stream) {
  const char* no_color = std::getenv("NO_COLOR");
  return o.color && !(no_color && *no_color) && isatty(fileno(stream));
}

// $XDG_STATE_HOME/plinth/console_history when XDG_STATE_HOME is set, else
// ~/.plinth_console_history; empty when neither can be had.
std::string HistoryFile() {
  const char* state_home = std::getenv("XDG_STATE_HOME");
  if (state_home && *state_home == '/') {
    fs::path dir = fs::path(state_home) / "plinth";
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return "";
    return (dir / "console_history").string();
  }
  const char* home = std::getenv("HOME");
  if (home && *home) return (fs::path(home) / ".plinth_console_history").string();
  return "";
}

std::string Trim(const std::string& s) {
  const char* space = " \t\r\n";
  size_t b = s.find_first_not_of(space);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(space) - b + 1);
}

}  // namespace

int Console(const Options& o, const VariableSources& vars) {
  const std::string dir = o.paths.empty() ? "." : o.paths[0];
  if (!ExistingDir(dir)) return 1;
  std::map<std::string, ValueMap> recorded;
  if (!ReadRecorded(o, dir, &recorded)) return 1;

  SourceManager sources;
  Diagnostics diags;
  RecordedValues hook(std::move(recorded));
  runtime::ExternalProviders external(dir);
  CheckOptions co = ConfigCheckOptions(vars, external);
  co.resource_hook = &hook;
  co.keep_root_scope = true;
  CheckedConfig config = Check(dir, sources, diags, co);
  RenderOptions ro;
  ro.color = Colored(o, stderr);
  std::fputs(RenderText(diags.Sorted(sources), sources, ro).c_str(), stderr);
  if (diags.has_errors() || !config.root_scope) return 1;

  plinth::Console console(config.root_scope, sources);
  // One line: its value on standard output, or its errors on standard error.
  auto run = [&](const std::string& line) {
    Diagnostics line_diags;
    std::optional<Value> value = console.EvaluateLine(line, line_diags);
    std::fputs(RenderText(line_diags.Sorted(sources), sources, ro).c_str(), stderr);
    if (value) std::printf("%s\n", plinth::Console::Display(*value).c_str());
    std::fflush(stdout);
    std::fflush(stderr);
    return value.has_value();
  };

  if (!isatty(fileno(stdin))) {
    bool all_ok = true;
    std::string line;
    while (std::getline(std::cin, line)) {
      line = Trim(line);
      if (line.empty()) continue;
      if (line == "exit") break;
      all_ok = run(line) && all_ok;
    }
    return all_ok ? 0 : 1;
  }

  // Each line is appended as it is entered, so the history survives a
  // closed terminal; the file keeps the last kHistoryLines.
  constexpr int kHistoryLines = 1000;
  const std::string history = HistoryFile();
  bool keep_history = false;
  if (!history.empty()) {
    // The history holds expressions only, never values; private all the same.
    int fd = open(history.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
    keep_history = fd >= 0;
    if (fd >= 0) close(fd);
    if (keep_history) {
      history_truncate_file(history.c_str(), kHistoryLines);
      read_history(history.c_str());
    }
  }
  stifle_history(kHistoryLines);
  while (char* raw = readline("> ")) {
    std::string line = Trim(raw);
    std::free(raw);
    if (line.empty()) continue;
    add_history(line.c_str());
    if (keep_history) append_history(1, history.c_str());
    if (line == "exit") break;
    run(line);
  }
  return 0;
}

}  // namespace plinth::cli
