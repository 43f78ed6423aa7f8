// plinth-fault: runs the engine's apply or destroy with a fault injected at
// the N-th provider call (tests/support/fault_provider.h). For the crash
// harness (scripts/crash-test.sh), which then checks that plain `plinth`
// converges. Not installed; not part of the user-facing CLI.
//
//   plinth-fault SPEC apply|destroy DIR [PARALLELISM]
//
// Exit status: 0 the run succeeded, 1 it failed (the injected error, or any
// other), 2 usage; a kill-* spec that is reached ends the process by SIGKILL.
#include <cstdio>
#include <memory>
#include <string>

#include "runtime/engine/engine.h"
#include "tests/support/fault_provider.h"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5 || (std::string(argv[2]) != "apply" && std::string(argv[2]) != "destroy")) {
    std::fprintf(stderr, "usage: plinth-fault SPEC apply|destroy DIR [PARALLELISM]\n");
    return 2;
  }
  std::string error;
  auto spec = plinth::testing::ParseFaultSpec(argv[1], &error);
  if (!spec) {
    std::fprintf(stderr, "error: %s\n", error.c_str());
    return 2;
  }
  plinth::runtime::EngineOptions eo;
  eo.config_dir = argv[3];
  if (argc == 5) eo.parallelism = static_cast<unsigned>(std::stoul(argv[4]));
  eo.wrap_provider = [&](std::unique_ptr<plinth::runtime::Provider> inner) -> std::unique_ptr<plinth::runtime::Provider> {
    return std::make_unique<plinth::testing::FaultProvider>(std::move(inner), *spec);
  };
  plinth::SourceManager sources;
  plinth::Diagnostics diags;
  plinth::runtime::Engine engine(eo, sources, diags);
  plinth::runtime::EngineResult r = engine.Apply(std::string(argv[2]) == "destroy");
  for (const std::string& e : r.errors) std::fprintf(stderr, "error: %s\n", e.c_str());
  if (diags.has_errors()) std::fprintf(stderr, "error: the configuration has errors\n");
  std::printf("%zu changed, %zu failed, %zu skipped\n", r.applied, r.failed, r.skipped);
  return r.ok ? 0 : 1;
}
