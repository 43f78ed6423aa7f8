// Pull-request plans: the Markdown summary and the artifacts (cli/pr_plan.h).
#include "cli/pr_plan.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/io/durable.h"
#include "runtime/plan/plan.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kDefaultLimit = 60'000;

// Inline code that survives any text: control characters escaped, and a
// fence longer than any run of backticks inside.
std::string Code(const std::string& text) {
  const std::string t = runtime::EscapeControls(text);
  size_t run = 0, longest = 0;
  for (char c : t) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(longest + 1, '`');
  const bool pad = !t.empty() && (t.front() == '`' || t.back() == '`');
  return fence + (pad ? " " : "") + t + (pad ? " " : "") + fence;
}

// Plain text in Markdown: control characters escaped, and the characters
// that would start markup or a table cell escaped with a backslash.
std::string Text(const std::string& text) {
  std::string out;
  for (char c : runtime::EscapeControls(text)) {
    if (std::strchr("\\`*_[]<>|#", c)) out += '\\';
    out += c;
  }
  return out;
}

// Lines added while they fit the budget; the rest is counted.
class Budget {
 public:
  explicit Budget(size_t limit) : limit_(limit) {}
  // Adds `line` when it fits with `reserve` characters kept for what must
  // follow; false (and nothing added) otherwise.
  bool Add(const std::string& line, size_t reserve = 0) {
    if (out_.size() + line.size() + 1 + reserve > limit_) return false;
    out_ += line + "\n";
    return true;
  }
  void Force(const std::string& line) { out_ += line + "\n"; }
  const std::string& text() const { return out_; }

 private:
  size_t limit_;
  std::string out_;
};

constexpr size_t kTail = 600;  // kept for the closing lines and the pointer to the artifacts

}  // namespace

int PullRequestPlan(const Options& o, const runtime::EngineResult& r, const SourceManager& sources,
                    const Diagnostics& diags) {
  const Options::FromGit& g = *o.from_git;
  const json compare = json::parse(g.compare, nullptr, false);
  const json source = json::parse(g.source, nullptr, false);
  const std::string dir = o.artifacts.empty() ? "plinth-plan" : o.artifacts;
  const bool failed = !r.ok || diags.has_errors() || !r.plan.problems.empty();
  const bool denied = !failed && r.plan.Denied();
  Budget md(o.summary_limit ? o.summary_limit : kDefaultLimit);

  const std::string head_ref = compare.value("head_ref", std::string());
  const std::string base_ref = compare.value("base_ref", std::string());
  const std::string commit = source.value("commit", std::string()).substr(0, 12);
  md.Force("### Plinth plan: " + (g.path.empty() ? std::string("the repository's root") : Code(g.path)) + " at " +
           Code(head_ref) + " (" + Code(commit) + ") against " + Code(base_ref));
  md.Force("");
  if (failed) {
    md.Force("**The configuration has errors; nothing can be applied.**");
    md.Force("");
    md.Force("```text");
    RenderOptions ro;
    ro.color = false;
    std::string text = RenderText(diags.Sorted(sources), sources, ro);
    for (const std::string& e : r.errors) text += "error: " + e + "\n";
    for (const runtime::PlanProblem& p : r.plan.problems) text += "error: " + p.message + "\n";
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string line = runtime::EscapeControls(text.substr(start, end - start));
      if (line.find("```") != std::string::npos) line = Text(line);
      if (!md.Add(line, kTail)) {
        md.Force("... (cut: the full output is in " + dir + "/plan.txt)");
        break;
      }
      start = end + 1;
    }
    md.Force("```");
  } else {
    const runtime::Plan& plan = r.plan;
    if (!plan.HasChanges()) {
      md.Force("**No changes.** The workspace already matches this branch.");
    } else {
      md.Force("**" + runtime::ChangeCounts(plan) + "**" +
               (plan.Moved() ? ", " + std::to_string(plan.Moved()) + " moved" : "") +
               (plan.Imports() ? ", " + std::to_string(plan.Imports()) + " to import" : ""));
      md.Force("");
      md.Force("| action | address | why | caused by |");
      md.Force("|---|---|---|---|");
      size_t shown = 0, total = 0;
      // Deletes and replacements first: they are what a reviewer must not miss.
      for (runtime::Action a : {runtime::Action::Delete, runtime::Action::Replace, runtime::Action::Create,
                                runtime::Action::Update, runtime::Action::Forget, runtime::Action::NoOp}) {
        for (const runtime::PlannedResource& pr : plan.resources) {
          if (pr.action != a) continue;
          if (a == runtime::Action::NoOp && pr.moved_from.empty() && pr.import_id.empty()) continue;
          ++total;
          // Why, in words; for an update the attributes it changes (names
          // only: the values may be secret).
          std::string why;
          for (const std::string& reason : pr.reasons) why += (why.empty() ? "" : "; ") + reason;
          if (why.empty() && (a == runtime::Action::Update || a == runtime::Action::Replace)) {
            for (const runtime::AttributeChange& c : pr.changes) why += (why.empty() ? "changes " : ", ") + c.name;
          }
          if (!pr.moved_from.empty()) why += (why.empty() ? "" : "; ") + std::string("moved from ") + pr.moved_from;
          if (why.size() > 200) why = why.substr(0, 200) + "...";
          std::string causes;
          for (const runtime::PlannedResource::Cause& c : pr.caused_by)
            causes += (causes.empty() ? "" : " ") + Code(c.commit.substr(0, 12));
          const std::string row = "| " + std::string(runtime::ActionName(a)) + " | " + Code(pr.address) + " | " +
                                  Text(why) + " | " + causes + " |";
          if (shown == total - 1 && md.Add(row, kTail)) ++shown;
        }
      }
      if (shown < total) {
        md.Force("");
        md.Force("... and " + std::to_string(total - shown) + " more changes: the full plan is in " + Code(dir + "/plan.txt") +
                 " (JSON: " + Code(dir + "/plan.json") + ").");
      }
    }
    std::vector<std::string> findings;
    for (const runtime::PolicyFinding& f : plan.policy_findings) {
      const char* kind = f.outcome == runtime::PolicyFinding::Outcome::Undecided ? "undecided"
                         : f.deny                                                 ? "**denied**"
                                                                                  : "warning";
      findings.push_back("- " + std::string(kind) + ": " + Code(f.policy) + " on " + Code(f.address) + ": " +
                         Text(f.message));
    }
    if (!findings.empty()) {
      md.Force("");
      md.Force(denied ? "**Denied by policy: apply would refuse this plan.**" : "**Policy findings**");
      size_t shown = 0;
      for (const std::string& line : findings) {
        if (!md.Add(line, kTail)) break;
        ++shown;
      }
      if (shown < findings.size())
        md.Force("- ... and " + std::to_string(findings.size() - shown) + " more in " + Code(dir + "/plan.txt"));
    }
  }
  // What the branch changed since it left the base.
  const json commits = compare.value("commits", json::array());
  const json files = compare.value("files", json::array());
  md.Force("");
  md.Force("<details><summary>" + std::to_string(commits.size()) +
           (compare.value("commits_truncated", false) ? "+" : "") + " commit" + (commits.size() == 1 ? "" : "s") +
           " and " + std::to_string(files.size()) + " file" + (files.size() == 1 ? "" : "s") + " changed since " +
           Text(base_ref) + "</summary>");
  md.Force("");
  if (!commits.empty()) md.Force("**Commits**");
  for (const json& c : commits) {
    if (!md.Add("- " + Code(c.value("commit", std::string()).substr(0, 12)) + " " +
                    Text(c.value("summary", std::string())) + " (" + Text(c.value("author", std::string())) + ")",
                kTail))
      break;
  }
  size_t shown_files = 0;
  if (!files.empty()) md.Force("\n**Files**");
  for (const json& f : files) {
    if (!f.is_string()) continue;
    if (!md.Add("- " + Code(f.get<std::string>()), kTail)) break;
    ++shown_files;
  }
  if (shown_files < files.size()) md.Force("- ... and " + std::to_string(files.size() - shown_files) + " more files");
  md.Force("");
  md.Force("</details>");
  md.Force("");
  md.Force("<sub>plinth " + std::string(kVersion) + ", workspace " + Code(o.workspace) + ", state serial " +
           std::to_string(r.serial) + "; full plan: " + Code(dir + "/plan.txt") + ", " + Code(dir + "/plan.json") +
           "</sub>");

  // The artifacts.
  std::error_code ec;
  if (int e = io::MakeDirs(dir, 0755)) {
    std::fprintf(stderr, "error: cannot create the artifacts directory '%s': %s\n", dir.c_str(), std::strerror(e));
    return 1;
  }
  std::string text;
  if (failed) {
    RenderOptions ro;
    ro.color = false;
    text = RenderText(diags.Sorted(sources), sources, ro);
    for (const std::string& e : r.errors) text += "error: " + runtime::EscapeControls(e) + "\n";
    for (const runtime::PlanProblem& p : r.plan.problems) text += "error: " + runtime::EscapeControls(p.message) + "\n";
  } else {
    text = runtime::RenderPlanText(r.plan, false);
  }
  std::string plan_json;
  if (failed) {
    json doc = json::parse(RenderJson(diags.Sorted(sources), sources), nullptr, false);
    if (!doc.is_object()) doc = json::object();
    doc["errors"] = r.errors;
    plan_json = doc.dump(2) + "\n";
  } else {
    plan_json = runtime::RenderPlanJson(r.plan);
  }
  for (const auto& [name, body] : {std::pair<std::string, std::string>{"plan.txt", text},
                                   {"plan.json", plan_json},
                                   {"summary.md", md.text()}}) {
    if (int e = io::WriteFileAtomic(fs::path(dir) / name, body, 0644)) {
      std::fprintf(stderr, "error: cannot write %s/%s: %s\n", dir.c_str(), name.c_str(), std::strerror(e));
      return 1;
    }
  }
  std::fputs(md.text().c_str(), stdout);
  if (failed) return 1;
  if (denied) return 4;
  if (o.detailed_exitcode && r.plan.HasChanges()) return 2;
  return 0;
}

}  // namespace plinth::cli
