// plinth-slurm-job: runs one job on a Slurm cluster through Plinth's client
// (runtime/slurm/client.h) to its end, with Plinth's retries, for the end to
// end tests and the benchmark (tests/fixtures/run-slurm-tests.sh).
//
//   plinth-slurm-job [--partition=P] [--gpus=N] [--gres] [--cpus=N] [--name=NAME]
//                    [--output=FILE] [--chdir=DIR] [--env=K=V]... [--secret-env=K]...
//                    [--retries-infra=N] [--retries-program=N] [--limit-s=S] -- ARGV...
//   plinth-slurm-job --drain=NODE --reason=TEXT   (Client::Drain: a node failing the GPU gate)
//
// Progress goes to stderr; the outcome to stdout as key=value lines:
// status, exit_code, signal, node, attempts, infrastructure_failures,
// program_failures, slurm_ids, first_running_ms, last_failure. Exit status 0
// when the job succeeded, 1 otherwise. --secret-env K takes K's value from
// this program's environment and hands it to the job only through sbatch's
// environment. SLURM_CONF comes from the environment.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/slurm/client.h"

namespace {

bool Flag(const std::string& arg, const std::string& name, std::string* value) {
  if (arg.rfind(name + "=", 0) != 0) return false;
  *value = arg.substr(name.size() + 1);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace plinth;
  slurm::SubmitRequest r;
  r.job.name = "plinth-job";
  r.job.retries.infrastructure = 0;
  r.job.retries.program = 0;
  int limit_s = 300;
  std::string drain, reason;
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "--") {
      ++i;
      break;
    }
    if (Flag(a, "--partition", &v))
      r.partition = v;
    else if (Flag(a, "--gpus", &v))
      r.job.gpus = std::atoi(v.c_str());
    else if (a == "--gres")
      r.gres = true;
    else if (Flag(a, "--gpu-type", &v))
      r.gpu_type = v;
    else if (Flag(a, "--cpus", &v))
      r.job.cpus = std::atoi(v.c_str());
    else if (Flag(a, "--name", &v))
      r.job.name = v;
    else if (Flag(a, "--output", &v))
      r.output = v;
    else if (Flag(a, "--chdir", &v))
      r.workdir = v;
    else if (Flag(a, "--env", &v) && v.find('=') != std::string::npos)
      r.job.env[v.substr(0, v.find('='))] = v.substr(v.find('=') + 1);
    else if (Flag(a, "--secret-env", &v)) {
      const char* value = std::getenv(v.c_str());
      if (!value) {
        std::fprintf(stderr, "plinth-slurm-job: --secret-env=%s: %s is not set in the environment\n",
                     v.c_str(), v.c_str());
        return 2;
      }
      r.secrets[v] = value;
    } else if (Flag(a, "--retries-infra", &v))
      r.job.retries.infrastructure = std::atoi(v.c_str());
    else if (Flag(a, "--retries-program", &v))
      r.job.retries.program = std::atoi(v.c_str());
    else if (Flag(a, "--limit-s", &v))
      limit_s = std::atoi(v.c_str());
    else if (Flag(a, "--drain", &v))
      drain = v;
    else if (Flag(a, "--reason", &v))
      reason = v;
    else {
      std::fprintf(stderr, "plinth-slurm-job: unknown argument '%s'\n", a.c_str());
      return 2;
    }
  }
  for (; i < argc; ++i) r.job.argv.push_back(argv[i]);
  if (!drain.empty()) {
    slurm::Client client({});
    std::string error;
    if (!client.Drain(drain, reason, &error)) {
      std::fprintf(stderr, "plinth-slurm-job: %s\n", error.c_str());
      return 1;
    }
    auto node = client.Node(drain, &error);
    if (!node) {
      std::fprintf(stderr, "plinth-slurm-job: %s\n", error.c_str());
      return 1;
    }
    std::printf("node=%s\nstate=%s\nreason=%s\n", node->name.c_str(), node->state.c_str(),
                node->reason.c_str());
    return 0;
  }
  if (r.job.argv.empty() && drain.empty()) {
    std::fprintf(stderr, "usage: plinth-slurm-job [options] -- ARGV...\n");
    return 2;
  }
  slurm::Client client({});
  std::string error;
  auto result = client.RunToEnd(
      r, std::chrono::milliseconds(200), std::chrono::seconds(limit_s),
      [](const std::string& line) { std::fprintf(stderr, "plinth-slurm-job: %s\n", line.c_str()); }, &error);
  if (!result) {
    std::fprintf(stderr, "plinth-slurm-job: %s\n", error.c_str());
    return 1;
  }
  const compute::JobState& s = result->state;
  std::string ids;
  for (const auto& id : result->slurm_ids) ids += (ids.empty() ? "" : ",") + id;
  std::printf("status=%s\n", compute::JobStatusName(s.status));
  std::printf("exit_code=%s\n", s.exit_code ? std::to_string(*s.exit_code).c_str() : "");
  std::printf("signal=%s\n", s.signal ? std::to_string(*s.signal).c_str() : "");
  std::printf("node=%s\n", s.node.c_str());
  std::printf("reason=%s\n", s.reason.c_str());
  std::printf("attempts=%d\n", s.attempts);
  std::printf("infrastructure_failures=%d\n", s.infrastructure_failures);
  std::printf("program_failures=%d\n", s.program_failures);
  std::printf("slurm_ids=%s\n", ids.c_str());
  std::printf("first_running_ms=%lld\n", static_cast<long long>(result->first_running_ms));
  std::printf("last_failure=%s\n", result->last_failure == slurm::Failure::kInfrastructure ? "infrastructure"
                                   : result->last_failure == slurm::Failure::kProgram      ? "program"
                                                                                           : "none");
  return s.status == compute::JobStatus::kSucceeded ? 0 : 1;
}
