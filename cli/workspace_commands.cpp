// workspace list|new|select|delete|show: the workspaces of a configuration
// directory (docs/cli.md, "Workspaces"). A workspace is its state,
// DIR/.plinth/W/state.db; the current one is recorded in DIR/.plinth/.workspace
// by `select` and read by every command through CurrentWorkspace.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/commands.h"
#include "cli/workspace.h"
#include "runtime/io/durable.h"
#include "runtime/state/lock.h"
#include "runtime/state/state_store.h"

namespace plinth::cli {

namespace {

namespace fs = std::filesystem;

fs::path SelectionFile(const std::string& dir) { return fs::path(dir) / ".plinth" / ".workspace"; }

bool ValidName(const std::string& name) { return state::StateStore::WorkspacePath(".", name).ok(); }

bool Exists(const std::string& dir, const std::string& name) {
  for (const std::string& w : state::StateStore::Workspaces(dir)) {
    if (w == name) return true;
  }
  return false;
}

// "error: invalid workspace name ..." and false when `name` is not one.
bool CheckName(const std::string& name) {
  if (ValidName(name)) return true;
  std::fprintf(stderr,
               "error: invalid workspace name '%s': use letters, digits, '_', '-' and '.', not '.' first\n",
               name.c_str());
  return false;
}

// The error for a workspace that has no state: the ones that do, the
// closest name, and how to create it.
void NoSuchWorkspace(const std::string& dir, const std::string& name) {
  std::vector<std::string> known = state::StateStore::Workspaces(dir);
  std::string message = "error: no workspace '" + name + "' in '" + dir + "'";
  if (known.empty()) {
    message += " (no workspace here has state)";
  } else {
    std::string list;
    for (const std::string& w : known) list += (list.empty() ? "" : ", ") + w;
    message += " (workspaces here: " + list + ")";
  }
  if (std::string near = ClosestName(name, known); !near.empty()) message += "; did you mean '" + near + "'?";
  message += "\nto create it: plinth workspace new " + name + (dir == "." ? "" : " --dir=" + dir);
  std::fprintf(stderr, "%s\n", message.c_str());
}

// A note when $PLINTH_WORKSPACE overrides what select just recorded.
void NoteEnvironment(const std::string& selected) {
  const char* env = std::getenv("PLINTH_WORKSPACE");
  if (env != nullptr && *env != '\0' && selected != env) {
    std::fprintf(stderr, "note: PLINTH_WORKSPACE=%s is set and overrides the selection until it is unset\n", env);
  }
}

// Records `name` as the directory's current workspace; "default" removes
// the record.
bool Select(const std::string& dir, const std::string& name) {
  const fs::path file = SelectionFile(dir);
  if (name == "default") {
    std::error_code ec;
    fs::remove(file, ec);
    if (ec) {
      std::fprintf(stderr, "error: cannot remove '%s': %s\n", file.c_str(), ec.message().c_str());
      return false;
    }
    return true;
  }
  const char* stage = nullptr;
  if (int e = io::WriteFileAtomic(file, name + "\n", 0600, &stage)) {
    std::fprintf(stderr, "error: cannot write '%s' (%s): %s\n", file.c_str(), stage ? stage : "write",
                 std::strerror(e));
    return false;
  }
  return true;
}

int List(const Options& o, const std::string& dir, const std::string& current) {
  std::vector<std::string> names = state::StateStore::Workspaces(dir);
  const bool current_has_state = Exists(dir, current);
  if (o.json) {
    nlohmann::json doc = {{"format_version", 1}, {"current", current}, {"workspaces", nlohmann::json::array()}};
    if (!current_has_state) {
      doc["workspaces"].push_back({{"name", current}, {"current", true}, {"has_state", false}});
    }
    for (const std::string& w : names) {
      doc["workspaces"].push_back({{"name", w}, {"current", w == current}, {"has_state", true}});
    }
    std::printf("%s\n", doc.dump(2).c_str());
    return 0;
  }
  if (!current_has_state) std::printf("* %s (no state yet)\n", current.c_str());
  for (const std::string& w : names) std::printf("%s %s\n", w == current ? "*" : " ", w.c_str());
  return 0;
}

int New(const Options& o, const std::string& dir, const std::string& name) {
  if (!CheckName(name)) return 1;
  if (Exists(dir, name)) {
    std::fprintf(stderr, "error: workspace '%s' already exists in '%s'; to use it: plinth workspace select %s\n",
                 name.c_str(), dir.c_str(), name.c_str());
    return 1;
  }
  state::StoreOptions so;
  so.mode = state::OpenMode::kCreate;
  if (!StateKey(o, &so.encryption_key)) return 1;
  auto store = state::StateStore::OpenWorkspace(dir, name, so);
  if (!store.ok()) {
    std::fprintf(stderr, "error: %s\n", store.error().message.c_str());
    return 1;
  }
  store.value().reset();
  if (!Select(dir, name)) return 1;
  std::printf("Created and selected workspace '%s'.\n", name.c_str());
  NoteEnvironment(name);
  return 0;
}

int SelectCommand(const std::string& dir, const std::string& name) {
  if (!CheckName(name)) return 1;
  if (name != "default" && !Exists(dir, name)) {
    NoSuchWorkspace(dir, name);
    return 1;
  }
  if (!Select(dir, name)) return 1;
  std::printf("Selected workspace '%s'.\n", name.c_str());
  NoteEnvironment(name);
  return 0;
}

int Delete(const Options& o, const std::string& dir, const std::string& name, const std::string& current) {
  if (!CheckName(name)) return 1;
  if (!Exists(dir, name)) {
    NoSuchWorkspace(dir, name);
    return 1;
  }
  if (name == current) {
    std::fprintf(stderr,
                 "error: workspace '%s' is the current one and cannot be deleted; select another first "
                 "(plinth workspace select NAME)\n",
                 name.c_str());
    return 1;
  }
  Options target = o;
  target.workspace = name;
  std::unique_ptr<state::StateStore> store = OpenState(target);
  if (!store) return 1;
  // The lock is a row of the state itself: held until the state is gone, so
  // that no plan or apply works on it meanwhile.
  auto lock = state::WorkspaceLock::Acquire(*store, state::WorkspaceLock::ThisProcess("workspace delete"));
  if (!lock.ok()) {
    std::fprintf(stderr, "error: %s\n", state::WorkspaceLock::Describe(lock.error()).c_str());
    return 1;
  }
  auto resources = store->Resources();
  if (!resources.ok()) {
    std::fprintf(stderr, "error: %s\n", resources.error().message.c_str());
    (void)state::WorkspaceLock::Release(*store, lock.value().id);
    return 1;
  }
  const size_t managed = resources.value().size();
  if (managed > 0 && !o.force) {
    std::string some;
    for (size_t i = 0; i < managed && i < 3; ++i) some += (i ? ", " : "") + resources.value()[i].address;
    if (managed > 3) some += ", ...";
    std::fprintf(stderr,
                 "error: workspace '%s' still manages %zu resource%s (%s); destroy them first "
                 "(plinth destroy --workspace=%s), or delete with --force to forget them\n",
                 name.c_str(), managed, managed == 1 ? "" : "s", some.c_str(), name.c_str());
    (void)state::WorkspaceLock::Release(*store, lock.value().id);
    return 1;
  }
  if (store->postgres()) {
    // The schema goes with its lock row, in one transaction.
    if (auto s = store->DropSchema(); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", s.error().message.c_str());
      (void)state::WorkspaceLock::Release(*store, lock.value().id);
      return 1;
    }
  }
  store.reset();  // closed with the lock still recorded in it
  const fs::path ws_dir = fs::path(dir) / ".plinth" / name;
  std::error_code ec;
  fs::remove_all(ws_dir, ec);
  if (ec) {
    std::fprintf(stderr, "error: cannot delete '%s': %s\n", ws_dir.c_str(), ec.message().c_str());
    return 1;
  }
  if (managed > 0) {
    std::fprintf(stderr, "warning: %zu resource%s of workspace '%s' %s forgotten, not destroyed\n", managed,
                 managed == 1 ? "" : "s", name.c_str(), managed == 1 ? "was" : "were");
  }
  std::printf("Deleted workspace '%s'.\n", name.c_str());
  return 0;
}

}  // namespace

std::string SelectedWorkspace(const std::string& dir, std::string* error) {
  const fs::path file = SelectionFile(dir);
  std::ifstream in(file);
  if (!in) {
    std::error_code ec;
    if (fs::exists(file, ec)) *error = "cannot read '" + file.string() + "'";
    return "";
  }
  std::stringstream text;
  text << in.rdbuf();
  std::string name = text.str();
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) name.pop_back();
  if (!ValidName(name)) {
    // (appended, not "'" + ... + "'": GCC 12 warns falsely about that, -Wrestrict)
    *error = std::string("'").append(file.string()).append("' does not hold a workspace name; run plinth workspace "
                                                            "select NAME");
    return "";
  }
  return name;
}

std::string CurrentWorkspace(const std::string& dir, std::string* error) {
  const char* env = std::getenv("PLINTH_WORKSPACE");
  if (env != nullptr && *env != '\0') return env;
  std::string selected = SelectedWorkspace(dir, error);
  return selected.empty() ? "default" : selected;
}

int WorkspaceCommand(const Options& o) {
  const std::string dir = ConfigDir(o);
  if (!ExistingDir(dir)) return 1;
  const std::string& sub = o.paths.at(0);
  // Options::workspace is CurrentWorkspace(dir): the command line resolved it.
  const std::string& current = o.workspace;
  if (sub == "list") return List(o, dir, current);
  if (sub == "show") {
    std::printf("%s\n", current.c_str());
    return 0;
  }
  if (sub == "new") return New(o, dir, o.paths.at(1));
  if (sub == "select") return SelectCommand(dir, o.paths.at(1));
  if (sub == "delete") return Delete(o, dir, o.paths.at(1), current);
  std::fprintf(stderr, "error: unknown workspace command '%s'\n", sub.c_str());
  return 2;
}

}  // namespace plinth::cli
