// Helpers shared by the commands that work on a workspace's state without
// planning (state, show, force-unlock, bucket, storage, backup, restore).
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "cli/commands.h"
#include "runtime/state/lock.h"
#include "runtime/state/state_store.h"

namespace plinth::cli {

// The configuration directory of a command whose arguments are something
// else: --dir, or ".".
std::string ConfigDir(const Options& o);

// Whether `dir` is an existing directory; prints "error: directory 'X' does
// not exist" (or "is not a directory") when it is not.
bool ExistingDir(const std::string& dir);

// The state's encryption key from --state-key-file, else the file named by
// $PLINTH_STATE_KEY_FILE: 64 hexadecimal digits, in a regular file that
// group and others cannot read. Leaves `key` empty when neither is set;
// prints the error and returns false when the file is not a usable key.
bool StateKey(const Options& o, std::optional<std::array<uint8_t, 32>>* key);

// The workspace `plinth workspace select` recorded for `dir`, in
// DIR/.plinth/.workspace (a name no workspace can have, as none starts with
// "."); empty when none is. Sets *error when the file cannot be read or does
// not hold a valid workspace name.
std::string SelectedWorkspace(const std::string& dir, std::string* error);

// The workspace a command works on when --workspace is not given:
// $PLINTH_WORKSPACE when set and not empty, else SelectedWorkspace(dir),
// else "default".
std::string CurrentWorkspace(const std::string& dir, std::string* error);

// Opens the workspace's state (never creates it); prints the error and
// returns null when there is none or it cannot be opened.
std::unique_ptr<state::StateStore> OpenState(const Options& o);

// Runs `fn` holding the workspace lock; prints who holds it when it is taken.
template <typename Fn>
int WithLock(state::StateStore& store, const std::string& command, Fn fn) {
  auto lock = state::WorkspaceLock::Acquire(store, state::WorkspaceLock::ThisProcess(command));
  if (!lock.ok()) {
    std::fprintf(stderr, "error: %s\n", state::WorkspaceLock::Describe(lock.error()).c_str());
    return 1;
  }
  int rc = fn();
  (void)state::WorkspaceLock::Release(store, lock.value().id);
  return rc;
}

}  // namespace plinth::cli
