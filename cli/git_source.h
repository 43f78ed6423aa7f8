// --git=REPO[@REF] (docs/gitops.md): validate, inspect, plan, apply and
// destroy read the configuration from a commit's tree instead of a directory.
//
// The tree is written once under <home>/.plinth/.git-cache/trees/<tree id>
// (runtime/git/repository.h; $PLINTH_GIT_CACHE names another cache), where
// <home> is --dir or "."; the workspace's state and files stay in
// <home>/.plinth/<workspace> as for a directory. An apply points the stable
// link <home>/.plinth/<workspace>/git/tree at the tree it applies, under the
// workspace lock, so services and patch commands run relative programs from
// a path that does not change with every commit; the commit (repository,
// ref, id, author, time, summary) is recorded with the apply's serial.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "runtime/engine/engine.h"
#include "runtime/git/repository.h"

namespace plinth::cli {

// The git cache of a workspace directory: $PLINTH_GIT_CACHE, else
// <home>/.plinth/.git-cache.
std::filesystem::path GitCacheDir(const std::string& home);

// DIR given with --git: relative and never climbing out of the tree; *out
// is it normalised ("" for the root). Prints the error and returns false.
bool GitPathInTree(const std::string& given, std::string* out);

// A commit's configuration, read: the tree exported, the path in it checked.
struct GitRead {
  Options::FromGit from;
  std::string config;  // the directory (or .plinth file) to load
  git::Commit commit;
  std::vector<std::string> submodules;  // left empty in the tree
};
// Opens `source.repo` (a remote through the cache), resolves `source.ref`,
// exports the tree and checks `path` (relative, normalised) in it. Null
// with *error ("no ref 'x' in REPO: ...", "no directory or .plinth file
// 'envs/qa' in REPO@REF (commit ...)").
// With `base_ref`, from.compare holds the head compared with that ref
// (cli/pr_plan.h): the base commit, the merge base, the commits since it
// (at most 50) and the files they change.
std::optional<GitRead> ReadGit(const git::Source& source, const std::string& path, const std::string& home,
                               std::string* error, const std::string& base_ref = "");

// Opens the repository, resolves the ref, exports the tree and checks the
// path in it (o->paths[0], relative, inside the tree); then o->paths holds
// the directory (or .plinth file) to load and o->from_git is set. Prints the
// commit it read on stderr ("Configuration: REPO@REF, commit abc1234 …").
// Returns false after printing the error (exit code 1).
bool ResolveGit(Options* o);

// For a configuration from git (o.from_git): the engine's home, run
// directory, source and the link re-pointed when an apply begins.
void UseGitSource(const Options& o, runtime::EngineOptions* eo);

// The configuration directory of a controller task: for a controller
// syncing from git the path under the tree link (Options::paths[0]), else
// Options::dir.
std::string ConfigDirOf(const Options& o);

// The stable link an apply points at its tree:
// <home>/.plinth/<workspace>/git/tree.
std::filesystem::path GitTreeLink(const std::string& home, const std::string& workspace);

}  // namespace plinth::cli
