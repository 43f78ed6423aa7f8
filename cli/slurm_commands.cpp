// plinth compute resume|suspend|resume-fail HOSTLIST: the programs slurmctld
// runs for power saving (docs/providers/slurm.md), over runtime/slurm/.
// Exit codes: 0 every node handled, 1 a node failed or the provisioner file
// cannot be used, 2 usage (a malformed hostlist), 4 resume-fail reported.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/commands.h"
#include "runtime/slurm/hostlist.h"
#include "runtime/slurm/provisioner.h"

namespace plinth::cli {

namespace {

constexpr int kResumeFailReported = 4;

int Usage(const std::string& message) {
  std::fprintf(stderr, "plinth compute: %s\nrun 'plinth compute --help' for usage\n", message.c_str());
  return 2;
}

}  // namespace

int SlurmPower(const Options& o) {
  if (o.paths.empty()) return Usage("expected: plinth compute resume|suspend|resume-fail HOSTLIST");
  const std::string& action = o.paths[0];
  if (action != "resume" && action != "suspend" && action != "resume-fail")
    return Usage("'" + action + "' is not a compute subcommand handled here");
  if (o.paths.size() != 2) return Usage("expected: plinth compute " + action + " HOSTLIST");
  std::string error;
  auto nodes = slurm::ExpandHostlist(o.paths[1], &error);
  if (!nodes) return Usage(error);
  if (nodes->empty()) return Usage("hostlist '" + o.paths[1] + "' names no node");
  std::string file = o.slurm_provisioner;
  if (file.empty()) {
    const char* env = std::getenv("PLINTH_SLURM_PROVISIONER");
    if (env) file = env;
  }
  if (file.empty()) {
    std::fprintf(
        stderr,
        "plinth compute %s: no provisioner file: pass --provisioner=FILE or set PLINTH_SLURM_PROVISIONER "
        "(docs/providers/slurm.md)\n",
        action.c_str());
    return 1;
  }
  auto p = slurm::LoadProvisioner(file, &error);
  if (!p) {
    std::fprintf(stderr, "plinth compute %s: %s\n", action.c_str(), error.c_str());
    return 1;
  }
  slurm::LogTransition(*p, action, slurm::CompressHostlist(*nodes),
                       "called with hostlist '" + o.paths[1] + "'");
  slurm::PowerReport r = action == "resume"    ? slurm::Resume(*p, *nodes)
                         : action == "suspend" ? slurm::Suspend(*p, *nodes)
                                               : slurm::ResumeFail(*p, *nodes);
  if (!r.failed.empty()) {
    std::fprintf(stderr, "plinth compute %s: %zu of %zu node(s) failed: %s (log: %s)\n", action.c_str(),
                 r.failed.size(), nodes->size(), slurm::CompressHostlist(r.failed).c_str(),
                 p->log_path.c_str());
    return 1;
  }
  return action == "resume-fail" ? kResumeFailReported : 0;
}

}  // namespace plinth::cli
