// plinth policy test: runs the policy_test blocks of a configuration against
// its policies (docs/policy.md).
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compiler/check/checker.h"
#include "runtime/policy/policy.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"

namespace plinth::cli {

int Policy(const Options& o, const VariableSources& vars) {
  if (o.paths.empty() || o.paths[0] != "test" || o.paths.size() > 2) {
    std::fprintf(stderr, "usage: plinth policy test [--json] [DIR]\n");
    return 2;
  }
  const std::string dir = o.paths.size() == 2 ? o.paths[1] : !o.dir.empty() ? o.dir : ".";
  SourceManager sources;
  Diagnostics diags;
  runtime::ExternalProviders external(dir);
  CheckOptions co = ConfigCheckOptions(vars, external);
  CheckedConfig config = Check(dir, sources, diags, co);
  std::vector<runtime::PolicyTestResult> results;
  if (!diags.has_errors()) results = runtime::RunPolicyTests(config, diags);
  if (diags.has_errors()) {
    RenderOptions ro;
    ro.color = o.color && isatty(fileno(stderr));
    std::fputs(RenderText(diags.Sorted(sources), sources, ro).c_str(), stderr);
    return 1;
  }
  size_t failed = 0;
  for (const auto& r : results) failed += !r.ok();
  if (o.json) {
    nlohmann::json doc = {{"format_version", 1}, {"passed", results.size() - failed}, {"failed", failed}};
    doc["tests"] = nlohmann::json::array();
    for (const auto& r : results) {
      doc["tests"].push_back({{"name", r.name},
                              {"expected", r.expected},
                              {"got", r.got},
                              {"ok", r.ok()},
                              {"error", r.error},
                              {"message", r.message}});
    }
    std::cout << doc.dump(2) << "\n";
  } else {
    for (const auto& r : results) {
      if (r.ok()) {
        std::printf("ok    %s (%s)\n", r.name.c_str(), r.got.c_str());
      } else if (!r.error.empty()) {
        std::printf("FAIL  %s: %s\n", r.name.c_str(), r.error.c_str());
      } else {
        std::printf("FAIL  %s: expected %s, got %s%s\n", r.name.c_str(), r.expected.c_str(), r.got.c_str(),
                    r.message.empty() ? "" : (" (" + r.message + ")").c_str());
      }
    }
    std::printf("%zu passed, %zu failed, %zu policies\n", results.size() - failed, failed, config.policies.size());
    if (results.empty()) std::printf("no policy_test blocks found in %s\n", dir.c_str());
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace plinth::cli
