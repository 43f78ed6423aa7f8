// plinth graph: the configuration's dependency graph in DOT, or with --plan
// the execution graph of the current plan (docs/cli.md, "graph"). Neither
// writes anything: no state, no lock, no directory.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "compiler/check/checker.h"
#include "runtime/engine/engine.h"
#include "runtime/plan/plan.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"

namespace plinth::cli {

namespace {

std::string DotString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void PrintErrors(const SourceManager& sources, const Diagnostics& diags, const std::vector<std::string>& errors) {
  RenderOptions ro;
  ro.color = isatty(fileno(stderr)) != 0;
  std::fputs(RenderText(diags.Sorted(sources), sources, ro).c_str(), stderr);
  for (const auto& e : errors) std::fprintf(stderr, "error: %s\n", e.c_str());
}

// Every resource instance of the configuration, an edge to each instance it
// depends on (a dependency on a resource or a module call is an edge to each
// of their instances). No state is read: this is what the configuration
// says, whatever has been applied.
int ConfigurationGraph(const Options& o, const VariableSources& vars, const std::string& dir) {
  SourceManager sources;
  Diagnostics diags;
  runtime::ExternalProviders external(dir);
  CheckOptions co = ConfigCheckOptions(vars, external);
  CheckedConfig config = Check(dir, sources, diags, co);
  if (diags.has_errors()) {
    PrintErrors(sources, diags, {});
    return 1;
  }
  const std::vector<ResourceInstance>& rs = config.resources;
  // Which instances a dependency string names: the instance's address, its
  // resource, and its enclosing module calls.
  std::unordered_map<std::string, std::vector<size_t>> named;
  for (size_t i = 0; i < rs.size(); ++i) {
    const std::string& a = rs[i].address;
    for (size_t cut = 1; cut <= a.size(); ++cut) {
      if (cut < a.size() && a[cut] != '[' && a[cut] != '.') continue;
      std::string prefix = a.substr(0, cut);
      if (runtime::AddressSelects(prefix, a)) named[prefix].push_back(i);
    }
  }
  std::printf("digraph plinth {\n  rankdir = \"BT\";\n  node [shape = box];\n");
  for (size_t i = 0; i < rs.size(); ++i) std::printf("  n%zu [label = %s];\n", i, DotString(rs[i].address).c_str());
  for (size_t i = 0; i < rs.size(); ++i) {
    std::vector<size_t> to;
    for (const std::string& dep : rs[i].depends_on) {
      auto it = named.find(dep);
      if (it == named.end()) continue;
      for (size_t j : it->second) {
        if (j != i && std::find(to.begin(), to.end(), j) == to.end()) to.push_back(j);
      }
    }
    for (size_t j : to) std::printf("  n%zu -> n%zu;\n", i, j);
  }
  std::printf("}\n");
  return 0;
}

// The execution graph of the plan: a node per change, in the order apply
// runs them. Planned without the workspace lock, like plan --lock=false, so
// nothing is written (an interrupted run's bookkeeping is left to plan).
int PlanGraph(const Options& o, const VariableSources& vars, const std::string& dir) {
  SourceManager sources;
  Diagnostics diags;
  runtime::EngineOptions eo;
  eo.config_dir = dir;
  if (!StateKey(o, &eo.state_key)) return 1;
  eo.workspace = o.workspace;
  eo.variable_sources = vars;
  eo.refresh = o.refresh;
  eo.lock = false;
  runtime::Engine engine(eo, sources, diags);
  runtime::EngineResult r = engine.Plan(false);
  if (!r.ok) {
    PrintErrors(sources, diags, r.errors);
    return 1;
  }
  runtime::Graph g = runtime::BuildGraph(r.plan);
  std::printf("digraph plinth {\n  rankdir = \"BT\";\n  node [shape = box];\n");
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const runtime::GraphNode& n = g.nodes[i];
    std::string label = (n.step == runtime::GraphNode::Step::Destroy ? "destroy " : "") + n.address;
    std::printf("  n%zu [label = %s%s];\n", i, DotString(label).c_str(),
                n.step == runtime::GraphNode::Step::Group ? ", shape = point" : "");
    for (uint32_t dep : n.after) std::printf("  n%zu -> n%u;\n", i, dep);
  }
  std::printf("}\n");
  if (g.nodes.empty()) std::fprintf(stderr, "note: the plan has no changes, so its execution graph is empty\n");
  return 0;
}

}  // namespace

int Graph(const Options& o, const VariableSources& vars) {
  const std::string dir = o.paths.empty() ? "." : o.paths[0];
  if (!ExistingDir(dir)) return 1;
  return o.graph_plan ? PlanGraph(o, vars, dir) : ConfigurationGraph(o, vars, dir);
}

}  // namespace plinth::cli
