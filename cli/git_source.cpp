// --git=REPO[@REF]: the configuration from a commit's tree (cli/git_source.h).
#include "cli/git_source.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "runtime/git/repository.h"
#include "runtime/io/durable.h"
#include "runtime/plan/plan.h"

namespace plinth::cli {

namespace fs = std::filesystem;

namespace {

std::string Utc(int64_t s) {
  const std::time_t t = static_cast<std::time_t>(s);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", &tm);
  return buf;
}

}  // namespace

bool GitPathInTree(const std::string& given, std::string* out) {
  if (given.empty() || given == ".") return out->clear(), true;
  const fs::path p = fs::path(given).lexically_normal();
  if (p.is_absolute() || p.empty() || *p.begin() == "..") {
    std::fprintf(stderr,
                 "error: with --git, DIR is a path inside the repository (such as envs/prod), not '%s'; the "
                 "workspace's directory is --dir\n",
                 given.c_str());
    return false;
  }
  *out = p.string();
  if (!out->empty() && out->back() == '/') out->pop_back();
  return true;
}

fs::path GitCacheDir(const std::string& home) {
  const char* env = std::getenv("PLINTH_GIT_CACHE");
  if (env && *env) return fs::absolute(env);
  return fs::absolute(fs::path(home) / ".plinth" / ".git-cache");
}

std::string ConfigDirOf(const Options& o) { return o.from_git && !o.paths.empty() ? o.paths[0] : o.dir; }

fs::path GitTreeLink(const std::string& home, const std::string& workspace) {
  return fs::path(home) / ".plinth" / workspace / "git" / "tree";
}

std::optional<GitRead> ReadGit(const git::Source& source, const std::string& path, const std::string& home,
                               std::string* error, const std::string& base_ref) {
  GitRead out;
  out.from.home = home;
  out.from.path = path;
  const fs::path cache = GitCacheDir(home);
  if (int e = io::MakeDirs(cache, 0700)) {
    *error = "cannot create the git cache '" + cache.string() + "': " + std::strerror(e);
    return std::nullopt;
  }
  // A local repository given by a relative path is read from here.
  std::error_code ec;
  std::string repo = source.repo;
  if (!git::IsRemote(repo)) repo = fs::absolute(repo, ec).lexically_normal().string();
  auto opened = git::Repository::Open(repo, cache, error);
  if (!opened) return std::nullopt;
  auto commit = opened->Resolve(source.ref, error);
  if (!commit) return std::nullopt;
  auto exported = opened->Export(*commit, cache, error);
  if (!exported) return std::nullopt;
  out.commit = *commit;
  out.submodules = exported->submodules;
  out.from.tree = exported->dir.string();
  const fs::path config = path.empty() ? exported->dir : exported->dir / path;
  const bool file = fs::is_regular_file(config, ec) && config.extension() == ".plinth";
  if (!fs::is_directory(config, ec) && !file) {
    *error = "no directory or .plinth file '" + path + "' in " + git::RedactUrl(source.repo) + "@" + source.ref +
             " (commit " + commit->id.substr(0, 12) + ")";
    return std::nullopt;
  }
  out.config = config.string();
  if (!base_ref.empty()) {
    auto base = opened->Resolve(base_ref, error);
    if (!base) return std::nullopt;
    auto merge_base = opened->MergeBase(*base, *commit, error);
    if (!merge_base) return std::nullopt;
    bool truncated = false;
    auto commits = opened->CommitsBetween(*merge_base, *commit, 50, &truncated, error);
    if (!commits) return std::nullopt;
    auto files = opened->ChangedFiles(*merge_base, *commit, error);
    if (!files) return std::nullopt;
    nlohmann::json list = nlohmann::json::array();
    for (const git::Commit& c : *commits)
      list.push_back({{"commit", c.id}, {"author", c.author}, {"summary", c.summary}, {"time_s", c.time_s}});
    out.from.compare = nlohmann::json{{"base_ref", base_ref},
                                      {"base", base->id},
                                      {"merge_base", merge_base->id},
                                      {"head_ref", source.ref},
                                      {"commits", list},
                                      {"commits_truncated", truncated},
                                      {"files", *files}}
                           .dump();
  }
  out.from.source = nlohmann::json{{"kind", "git"},
                                   {"repo", git::RedactUrl(source.repo)},
                                   {"ref", source.ref},
                                   {"path", path},
                                   {"commit", commit->id},
                                   {"tree", commit->tree_id},
                                   {"author", commit->author},
                                   {"email", commit->email},
                                   {"time_s", commit->time_s},
                                   {"summary", commit->summary}}
                        .dump();
  return out;
}

bool ResolveGit(Options* o) {
  std::string error;
  auto source = git::ParseSource(o->git, &error);
  if (!source) return std::fprintf(stderr, "error: --git: %s\n", error.c_str()), false;
  if (o->paths.size() > 1) {
    std::fprintf(stderr, "error: with --git, give at most one path inside the repository\n");
    return false;
  }
  std::string path;
  if (!GitPathInTree(o->paths.empty() ? "" : o->paths[0], &path)) return false;
  if (!o->head.empty()) {
    if (source->ref != "HEAD") {
      std::fprintf(stderr, "error: the head is given twice, as --git=...@%s and --head=%s; give one\n",
                   source->ref.c_str(), o->head.c_str());
      return false;
    }
    source->ref = o->head;
  }
  std::string home = o->dir.empty() ? "." : o->dir;
  std::error_code ec;
  if (!fs::is_directory(home, ec)) {
    std::fprintf(stderr, "error: --dir '%s' is not a directory (the workspace's files live in DIR/.plinth)\n",
                 home.c_str());
    return false;
  }
  home = fs::absolute(home, ec).lexically_normal().string();
  if (home.size() > 1 && home.back() == '/') home.pop_back();
  auto read = ReadGit(*source, path, home, &error, o->base);
  if (!read) return std::fprintf(stderr, "error: %s\n", error.c_str()), false;
  const std::string shown = git::RedactUrl(source->repo) + "@" + source->ref;
  for (const std::string& sub : read->submodules) {
    std::fprintf(stderr, "warning: submodule '%s' of %s is not read (its directory is empty)\n", sub.c_str(),
                 shown.c_str());
  }
  // Names and the summary come from the repository: never raw.
  const git::Commit& c = read->commit;
  std::fprintf(stderr, "Configuration: %s%s%s, commit %s by %s at %s: %s\n", runtime::EscapeControls(shown).c_str(),
               path.empty() ? "" : " path ", runtime::EscapeControls(path).c_str(), c.id.substr(0, 12).c_str(),
               runtime::EscapeControls(c.author).c_str(), Utc(c.time_s).c_str(),
               runtime::EscapeControls(c.summary).c_str());
  o->paths = {read->config};
  o->dir.clear();
  o->from_git = std::move(read->from);
  return true;
}

void UseGitSource(const Options& o, runtime::EngineOptions* eo) {
  if (!o.from_git) return;
  const Options::FromGit& g = *o.from_git;
  eo->home_dir = g.home;
  eo->display_root = g.tree;
  eo->source = g.source;
  const fs::path link = GitTreeLink(g.home, o.workspace);
  const fs::path link_dir = link.parent_path();
  eo->run_dir = (g.path.empty() ? link : link / g.path).string();
  const std::string tree = g.tree;
  eo->on_begin = [link_dir, link, tree](std::string* error) {
    if (int e = io::MakeDirs(link_dir, 0700)) {
      *error = "cannot create " + link_dir.string() + ": " + std::strerror(e);
      return false;
    }
    // A new link under a temporary name, renamed over the old one: a
    // reader sees the previous tree or this one, never none.
    const fs::path tmp = link_dir / (".tree." + std::to_string(::getpid()));
    ::unlink(tmp.c_str());
    if (::symlink(tree.c_str(), tmp.c_str()) != 0 || ::rename(tmp.c_str(), link.c_str()) != 0) {
      *error = "cannot point " + link.string() + " at " + tree + ": " + std::strerror(errno);
      ::unlink(tmp.c_str());
      return false;
    }
    return true;
  };
}

}  // namespace plinth::cli
