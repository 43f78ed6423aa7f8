// plinth-node-agent: the compute node agent alone (docs/compute.md, "Nodes").
// It takes the same arguments as the hidden `plinth compute agent`:
//   plinth-node-agent compute agent --compute-dir=DIR --node=NAME
// and runs RunAgent. It links the runtime only (no compiler, no LLVM), so it
// starts in a few milliseconds and forks each job from a small process; the
// queue starts it instead of `plinth` when it lies next to the plinth binary.
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "runtime/compute/queue.h"
#include "runtime/storage/keys.h"

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::string dir, node;
  int i = 1;
  if (argc >= 3 && std::strcmp(argv[1], "compute") == 0 && std::strcmp(argv[2], "agent") == 0) i = 3;
  for (; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--compute-dir=", 0) == 0) {
      dir = a.substr(14);
    } else if (a.rfind("--node=", 0) == 0) {
      node = a.substr(7);
    } else {
      std::fprintf(stderr, "error: unknown argument '%s'\n", argv[i]);
      dir.clear();
      break;
    }
  }
  if (dir.empty() || node.empty()) {
    std::fprintf(stderr,
                 "usage: plinth-node-agent compute agent --compute-dir=DIR --node=NAME\n"
                 "(started by the compute queue, not by hand: docs/compute.md)\n");
    return 2;
  }
  plinth::compute::QueueOptions qo;
  qo.agent_program = "/proc/self/exe";
  qo.workspace_key = plinth::storage::WorkspaceKeyPath(fs::path(dir).parent_path());
  return plinth::compute::RunAgent(dir, node, qo);
}
