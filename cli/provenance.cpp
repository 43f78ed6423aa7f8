// Change provenance: blame and diffs to the commits behind planned changes
// (cli/provenance.h).
#include "cli/provenance.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/git_source.h"
#include "cli/workspace.h"
#include "runtime/git/repository.h"
#include "runtime/plan/plan.h"
#include "runtime/state/state_store.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxCommits = 1000;  // history looked at when the workspace applied no commit of this path
constexpr size_t kMaxCauses = 5;      // commits named per change

struct Span {
  std::string path;  // in the tree
  uint32_t first = 0, last = 0;
};

// "module.m[\"eu\"].marker.x[0]" -> {{"module","m"},{"marker","x"}}.
std::vector<std::pair<std::string, std::string>> Segments(const std::string& address) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < address.size(); ++i) {
    const char c = address[i];
    if (quoted) {
      if (c == '\\' && i + 1 < address.size()) ++i;
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '[') ++depth;
    else if (c == ']') --depth;
    else if (c == '.' && depth == 0) parts.push_back(std::move(cur)), cur.clear();
    else if (depth == 0) cur += c;
  }
  parts.push_back(cur);
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i + 1 < parts.size(); i += 2) out.emplace_back(parts[i], parts[i + 1]);
  return out;
}

// The address without its last instance key: "marker.x[3]" -> "marker.x".
std::string WithoutKey(const std::string& address) {
  if (address.empty() || address.back() != ']') return address;
  int depth = 0;
  bool quoted = false;
  for (size_t i = address.size(); i-- > 0;) {
    const char c = address[i];
    if (c == '"' && (i == 0 || address[i - 1] != '\\')) quoted = !quoted;
    if (quoted) continue;
    if (c == ']') ++depth;
    if (c == '[' && --depth == 0) return address.substr(0, i);
  }
  return address;
}

// A block header line: TYPE "NAME" {  ->  (TYPE, NAME).
std::optional<std::pair<std::string, std::string>> Header(const std::string& line) {
  size_t i = line.find_first_not_of(" \t");
  if (i == std::string::npos) return std::nullopt;
  size_t j = i;
  while (j < line.size() && (std::isalnum(static_cast<unsigned char>(line[j])) || line[j] == '_')) ++j;
  if (j == i) return std::nullopt;
  const std::string type = line.substr(i, j - i);
  size_t q = line.find_first_not_of(" \t", j);
  if (q == std::string::npos || line[q] != '"') return std::nullopt;
  size_t end = line.find('"', q + 1);
  if (end == std::string::npos) return std::nullopt;
  return std::make_pair(type, line.substr(q + 1, end - q - 1));
}

// One repository however it was named: file:///x and /x are the same.
std::string SameRepo(std::string repo) {
  if (repo.rfind("file://", 0) == 0) repo = repo.substr(7);
  while (repo.size() > 1 && repo.back() == '/') repo.pop_back();
  return repo;
}

}  // namespace

ProvenanceStats TraceProvenance(const Options& o, runtime::Plan& plan, const SourceManager& sources) {
  ProvenanceStats stats;
  const auto t0 = std::chrono::steady_clock::now();
  auto done = [&] {
    stats.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    return stats;
  };
  if (!o.from_git || !plan.HasChanges()) return done();
  const Options::FromGit& g = *o.from_git;
  const json source = json::parse(g.source, nullptr, false);
  if (!source.is_object()) return done();
  const std::string repo_name = source.value("repo", std::string());
  const std::string head_id = source.value("commit", std::string());
  std::string error;
  auto note = [&](const std::string& why) {
    std::fprintf(stderr, "note: no change provenance: %s\n", runtime::EscapeControls(why).c_str());
    return done();
  };

  // The boundary: the commit this workspace last applied from this repository and path.
  std::string since;
  {
    std::optional<std::array<uint8_t, 32>> key;
    state::StoreOptions so;
    so.mode = state::OpenMode::kExisting;
    if (StateKey(o, &key)) so.encryption_key = key;
    auto store = state::StateStore::OpenWorkspace(g.home, o.workspace, so);
    if (store.ok()) {
      auto serials = store.value()->Serials();
      if (serials.ok()) {
        for (const state::SerialRecord& s : serials.value()) {
          if (s.status != state::ApplyStatus::kSucceeded || s.source.empty()) continue;
          const json applied = json::parse(s.source, nullptr, false);
          if (applied.is_object() && SameRepo(applied.value("repo", std::string())) == SameRepo(repo_name) &&
              applied.value("path", std::string()) == g.path)
            since = applied.value("commit", std::string());
        }
      }
    }
  }
  auto repo = git::Repository::Open(repo_name, GitCacheDir(g.home), &error, /*fetch=*/false);
  if (!repo) return note(error);
  auto head = repo->Lookup(head_id, &error);
  if (!head) return note(error);
  std::string oldest;
  if (!since.empty()) {
    auto applied = repo->Lookup(since, &error);
    auto base = applied ? repo->MergeBase(*applied, *head, &error) : std::nullopt;
    if (base) oldest = base->id;  // after a force-push: where the histories meet
  }
  if (oldest.empty()) {
    bool truncated = false;
    auto recent = repo->CommitsBetween(git::Commit{}, *head, kMaxCommits, &truncated, &error);
    if (recent && truncated && !recent->empty()) oldest = recent->back().id;
  }
  stats.boundary = oldest;

  // Where a range is in the tree.
  auto span_of = [&](Range range) -> std::optional<Span> {
    if (!range.valid()) return std::nullopt;
    const SourceFile& f = sources.Get(range.file);
    fs::path p = f.path();
    std::error_code ec;
    if (p.is_absolute()) {
      fs::path rel = p.lexically_normal().lexically_relative(g.tree);
      if (rel.empty() || rel.native().rfind("..", 0) == 0) return std::nullopt;
      p = rel;
    } else if (!fs::exists(fs::path(g.tree) / p, ec)) {
      return std::nullopt;
    }
    return Span{p.string(), f.Position(range.begin).line, f.Position(range.end).line};
  };
  std::map<std::string, std::optional<std::vector<git::Repository::BlameHunk>>> blames;
  std::map<std::string, std::optional<git::Commit>> commits;
  auto commit_of = [&](const std::string& id) -> const std::optional<git::Commit>& {
    auto it = commits.find(id);
    if (it == commits.end()) it = commits.emplace(id, repo->Lookup(id, &error)).first;
    return it->second;
  };
  const fs::path cache = GitCacheDir(g.home);
  // Causes of the lines of `spans`: commit -> where.
  auto blame_spans = [&](const std::vector<Span>& spans, std::map<std::string, std::string>* causes) {
    for (const Span& s : spans) {
      auto it = blames.find(s.path);
      if (it == blames.end()) {
        bool cached = false;
        it = blames.emplace(s.path, repo->Blame(*head, s.path, oldest, cache, &cached, &error)).first;
        ++(cached ? stats.files_cached : stats.files_blamed);
      }
      if (!it->second) continue;
      for (const auto& h : *it->second) {
        if (h.boundary || h.first_line > s.last || h.first_line + h.lines <= s.first) continue;
        const uint32_t a = std::max(h.first_line, s.first), b = std::min(h.first_line + h.lines - 1, s.last);
        std::string& where = (*causes)[h.commit];
        where += (where.empty() ? "changed " : ", ") + s.path + ":" + std::to_string(a) +
                 (b > a ? "-" + std::to_string(b) : "");
      }
    }
  };
  // Block headers removed after the boundary, read once when a delete needs them.
  std::optional<std::vector<git::Repository::RemovedLine>> removed;
  auto removed_headers = [&]() -> const std::vector<git::Repository::RemovedLine>& {
    if (!removed) {
      bool truncated = false;
      removed = repo->RemovedLines(
          oldest.empty() ? since : oldest, *head, kMaxCommits,
          [](const std::string& path, const std::string& line) {
            return path.size() > 7 && path.compare(path.size() - 7, 7, ".plinth") == 0 && Header(line).has_value();
          },
          &truncated, &error);
      if (!removed) removed.emplace();
    }
    return *removed;
  };
  // Blocks of the configuration by their address without the key (for
  // instances deleted while their block remains).
  std::map<std::string, const runtime::PlannedResource*> blocks;
  for (const runtime::PlannedResource& pr : plan.resources)
    if (pr.range.valid()) blocks.emplace(WithoutKey(pr.address), &pr);

  for (runtime::PlannedResource& pr : plan.resources) {
    if (pr.action == runtime::Action::NoOp) continue;
    ++stats.changes;
    std::map<std::string, std::string> causes;  // commit -> how
    const runtime::PlannedResource* declared = pr.range.valid() ? &pr : nullptr;
    if (!declared) {
      auto it = blocks.find(WithoutKey(pr.address));
      if (it != blocks.end()) declared = it->second;
    }
    if (declared) {
      std::vector<Span> spans;
      if (auto s = span_of(declared->range)) spans.push_back(*s);
      for (const Range& call : declared->call_sites)
        if (auto s = span_of(call)) spans.push_back(*s);
      blame_spans(spans, &causes);
    } else if (pr.action == runtime::Action::Delete) {
      const auto segments = Segments(pr.address);
      for (const auto& line : removed_headers()) {
        auto h = Header(line.line);
        if (!h) continue;
        const bool match = std::any_of(segments.begin(), segments.end(), [&](const auto& seg) { return seg == *h; });
        if (match) causes[line.commit.id] = "removed " + h->first + " \"" + h->second + "\" from " + line.path;
      }
    }
    std::vector<runtime::PlannedResource::Cause> out;
    for (const auto& [id, how] : causes) {
      const std::optional<git::Commit>& c = commit_of(id);
      if (!c) continue;
      out.push_back({c->id, c->author, c->time_s, c->summary, how});
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
      return a.time_s != b.time_s ? a.time_s > b.time_s : a.commit < b.commit;
    });
    if (out.size() > kMaxCauses) out.resize(kMaxCauses);
    if (!out.empty()) ++stats.traced;
    pr.caused_by = std::move(out);
  }
  return done();
}

void TraceAndReport(const Options& o, runtime::Plan& plan, const SourceManager& sources) {
  const ProvenanceStats p = TraceProvenance(o, plan, sources);
  if (p.changes == 0) return;
  std::fprintf(stderr,
               "Provenance: %zu of %zu changes traced to commits%s%s (%zu files blamed, %zu from the cache) in %.0f ms\n",
               p.traced, p.changes, p.boundary.empty() ? "" : " after ", p.boundary.substr(0, 12).c_str(),
               p.files_blamed, p.files_cached, p.ms);
}

}  // namespace plinth::cli
