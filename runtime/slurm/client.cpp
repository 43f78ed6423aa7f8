#include "runtime/slurm/client.h"

#include <cstdlib>
#include <thread>

#include "runtime/process/process.h"
#include "runtime/slurm/hostlist.h"

namespace plinth::slurm {

namespace {

using namespace std::chrono_literals;
using compute::JobStatus;

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t end = s.find(sep, start);
    parts.push_back(s.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  return parts;
}

std::vector<std::string_view> Lines(std::string_view s) {
  std::vector<std::string_view> lines;
  for (std::string_view line : Split(s, '\n')) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

int ToInt(std::string_view s) {
  int v = 0;
  bool neg = !s.empty() && s[0] == '-';
  if (neg) s.remove_prefix(1);
  for (char c : s) {
    if (c < '0' || c > '9') break;
    v = v * 10 + (c - '0');
  }
  return neg ? -v : v;
}

// "Key=Value Key2=Value two" -> map; a word without a leading identifier and
// '=' continues the previous value.
std::map<std::string, std::string> KeyValues(std::string_view line) {
  std::map<std::string, std::string> kv;
  std::string last;
  for (std::string_view word : Split(line, ' ')) {
    if (word.empty()) continue;
    size_t eq = word.find('=');
    bool key = eq != std::string_view::npos && eq > 0;
    for (size_t i = 0; key && i < eq; ++i) {
      char c = word[i];
      if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
            c == ':' || c == '/'))
        key = false;
    }
    if (key) {
      last = std::string(word.substr(0, eq));
      kv[last] = std::string(word.substr(eq + 1));
    } else if (!last.empty()) {
      kv[last] += " " + std::string(word);
    }
  }
  return kv;
}

void ExitPair(std::string_view text, int* code, int* signal) {
  size_t colon = text.find(':');
  *code = ToInt(text.substr(0, colon));
  *signal = colon == std::string_view::npos ? 0 : ToInt(text.substr(colon + 1));
}

std::string Quote(const std::string& word) {
  std::string q = "'";
  for (char c : word) {
    if (c == '\'')
      q += "'\\''";
    else
      q += c;
  }
  return q + "'";
}

std::string Join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

}  // namespace

std::vector<std::string> SbatchArgs(const SubmitRequest& r) {
  const compute::JobSpec& j = r.job;
  std::vector<std::string> a = {"--parsable"};
  if (!j.name.empty()) a.push_back("--job-name=" + j.name);
  if (!r.partition.empty()) a.push_back("--partition=" + r.partition);
  a.push_back("--nodes=1");
  a.push_back("--ntasks=1");
  a.push_back("--cpus-per-task=" + std::to_string(j.cpus < 1 ? 1 : j.cpus));
  if (j.memory_bytes > 0) {
    uint64_t mib = (j.memory_bytes + (1u << 20) - 1) >> 20;
    a.push_back("--mem=" + std::to_string(mib) + "M");
  }
  if (j.gpus > 0) {
    std::string count = std::to_string(j.gpus);
    if (r.gres)
      a.push_back("--gres=gpu:" + (r.gpu_type.empty() ? "" : r.gpu_type + ":") + count);
    else
      a.push_back("--gpus=" + (r.gpu_type.empty() ? "" : r.gpu_type + ":") + count);
  }
  if (j.timeout_ms > 0) {
    int64_t minutes = (j.timeout_ms + 59999) / 60000;  // Slurm's --time is in minutes
    a.push_back("--time=" + std::to_string(minutes));
  }
  if (!r.after_slurm_ids.empty()) a.push_back("--dependency=afterok:" + Join(r.after_slurm_ids, ":"));
  if (!r.output.empty()) a.push_back("--output=" + r.output.string());
  if (!r.workdir.empty()) a.push_back("--chdir=" + r.workdir.string());
  if (!r.exclude_nodes.empty()) a.push_back("--exclude=" + CompressHostlist(r.exclude_nodes));
  // Plinth retries (it tells infrastructure failures from the program's own).
  a.push_back("--no-requeue");
  // Only the named variables reach the job; their values come from sbatch's
  // own environment, never from this argv.
  std::vector<std::string> names = {"PATH"};
  for (const auto& [k, v] : j.env)
    if (k != "PATH") names.push_back(k);
  for (const auto& [k, v] : r.secrets) names.push_back(k);
  a.push_back("--export=" + Join(names, ","));
  return a;
}

std::string BatchScript(const std::vector<std::string>& argv) {
  std::string s = "#!/bin/sh\nexec";
  for (const auto& w : argv) {
    s += ' ';
    s += Quote(w);
  }
  return s + "\n";
}

std::optional<std::string> ParseSbatchParsable(std::string_view out) {
  for (std::string_view line : Lines(out)) {
    std::string_view id = line.substr(0, line.find(';'));
    if (!id.empty() && id.find_first_not_of("0123456789_") == std::string_view::npos) return std::string(id);
  }
  return std::nullopt;
}

std::vector<SlurmJob> ParseScontrolJobs(std::string_view out) {
  std::vector<SlurmJob> jobs;
  for (std::string_view line : Lines(out)) {
    auto kv = KeyValues(line);
    if (!kv.count("JobId")) continue;
    SlurmJob j;
    j.id = kv["JobId"];
    j.name = kv["JobName"];
    j.state = kv["JobState"];
    j.reason = kv["Reason"];
    j.nodes = kv["NodeList"];
    if (j.nodes == "(null)") j.nodes.clear();
    ExitPair(kv["ExitCode"], &j.exit_code, &j.signal);
    j.restarts = ToInt(kv["Restarts"]);
    j.submit_time = kv["SubmitTime"];
    j.start_time = kv["StartTime"];
    j.end_time = kv["EndTime"];
    jobs.push_back(std::move(j));
  }
  return jobs;
}

std::vector<SlurmJob> ParseSacct(std::string_view out) {
  std::vector<SlurmJob> jobs;
  for (std::string_view line : Lines(out)) {
    auto f = Split(line, '|');
    if (f.size() < 8) continue;
    SlurmJob j;
    j.id = std::string(f[0]);
    j.name = std::string(f[1]);
    std::string_view state = f[2];
    j.state = std::string(state.substr(0, state.find(' ')));  // "CANCELLED by 0"
    ExitPair(f[3], &j.exit_code, &j.signal);
    j.nodes = std::string(f[4]);
    if (j.nodes == "None assigned") j.nodes.clear();
    j.submit_time = std::string(f[5]);
    j.start_time = std::string(f[6]);
    j.end_time = std::string(f[7]);
    jobs.push_back(std::move(j));
  }
  return jobs;
}

Classified Classify(const SlurmJob& job) {
  const std::string& s = job.state;
  Classified c;
  auto fail = [&](Failure f, std::string why) {
    c.status = JobStatus::kFailed;
    c.failure = f;
    c.reason = std::move(why);
    return c;
  };
  if (s == "PENDING" || s == "REQUEUED" || s == "REQUEUE_HOLD" || s == "REQUEUE_FED" ||
      s == "RESV_DEL_HOLD") {
    c.status = JobStatus::kPending;
    c.reason =
        job.reason.empty() || job.reason == "None" ? "waiting in Slurm's queue" : "waiting: " + job.reason;
    return c;
  }
  if (s == "CONFIGURING") {
    c.status = JobStatus::kProvisioning;
    c.reason = "its node is being powered up";
    return c;
  }
  if (s == "RUNNING" || s == "COMPLETING" || s == "SUSPENDED" || s == "STOPPED" || s == "RESIZING" ||
      s == "SIGNALING" || s == "STAGE_OUT") {
    c.status = JobStatus::kRunning;
    return c;
  }
  if (s == "COMPLETED") {
    c.status = JobStatus::kSucceeded;
    return c;
  }
  if (s == "CANCELLED" || s == "REVOKED") {
    c.status = JobStatus::kCancelled;
    c.reason = "cancelled in Slurm (" + s + ")";
    return c;
  }
  if (s == "NODE_FAIL") return fail(Failure::kInfrastructure, "its node failed (NODE_FAIL)");
  if (s == "BOOT_FAIL") return fail(Failure::kInfrastructure, "its node did not boot (BOOT_FAIL)");
  if (s == "PREEMPTED") return fail(Failure::kInfrastructure, "preempted (PREEMPTED)");
  if (s == "TIMEOUT") return fail(Failure::kProgram, "ran past its time limit (TIMEOUT)");
  if (s == "OUT_OF_MEMORY") return fail(Failure::kProgram, "ran out of memory (OUT_OF_MEMORY)");
  if (s == "DEADLINE") return fail(Failure::kProgram, "missed its deadline (DEADLINE)");
  if (s == "FAILED" || s == "SPECIAL_EXIT") {
    if (job.signal != 0)
      return fail(Failure::kProgram, "killed by signal " + std::to_string(job.signal) + " (" + s + ")");
    return fail(Failure::kProgram, "exit code " + std::to_string(job.exit_code) + " (" + s + ")");
  }
  c.status = JobStatus::kPending;
  c.reason = "unknown Slurm job state '" + s + "'";
  return c;
}

std::vector<SlurmNode> ParseScontrolNodes(std::string_view out) {
  std::vector<SlurmNode> nodes;
  for (std::string_view line : Lines(out)) {
    auto kv = KeyValues(line);
    if (!kv.count("NodeName")) continue;
    SlurmNode n;
    n.name = kv["NodeName"];
    n.state = kv["State"];
    n.reason = kv["Reason"];
    // scontrol appends who set the reason and when: "Reason=why [root@2026-12-05T12:01:07]".
    if (size_t at = n.reason.rfind(" [");
        at != std::string::npos && n.reason.back() == ']' && n.reason.find('@', at) != std::string::npos)
      n.reason.erase(at);
    n.address = kv["NodeAddr"];
    n.boot_time = kv["BootTime"];
    n.cpus = ToInt(kv["CPUTot"]);
    n.real_memory_mb = ToInt(kv["RealMemory"]);
    n.gres = kv["Gres"];
    nodes.push_back(std::move(n));
  }
  return nodes;
}

GresGpus ParseGresGpus(std::string_view gres) {
  GresGpus g;
  bool mixed = false;
  for (std::string_view entry : Split(gres, ',')) {
    // "gpu:H100:2(S:0-1)" -> "gpu:H100:2"
    if (size_t paren = entry.find('('); paren != std::string_view::npos) entry = entry.substr(0, paren);
    auto parts = Split(entry, ':');
    if (parts.empty() || parts[0] != "gpu") continue;
    std::string type;
    int count = 1;
    if (parts.size() == 2) {
      bool number = !parts[1].empty() && parts[1].find_first_not_of("0123456789") == std::string_view::npos;
      if (number)
        count = ToInt(parts[1]);
      else
        type = std::string(parts[1]);
    } else if (parts.size() >= 3) {
      type = std::string(parts[1]);
      count = ToInt(parts[2]);
    }
    if (g.count > 0 && type != g.type) mixed = true;
    if (g.count == 0) g.type = type;
    g.count += count;
  }
  if (mixed) g.type.clear();
  return g;
}

std::vector<SlurmPartition> ParseScontrolPartitions(std::string_view out) {
  std::vector<SlurmPartition> parts;
  for (std::string_view line : Lines(out)) {
    auto kv = KeyValues(line);
    if (!kv.count("PartitionName")) continue;
    SlurmPartition p;
    p.name = kv["PartitionName"];
    p.nodes = kv["Nodes"];
    if (p.nodes == "(null)") p.nodes.clear();
    p.state = kv["State"];
    p.total_nodes = ToInt(kv["TotalNodes"]);
    parts.push_back(std::move(p));
  }
  return parts;
}

std::optional<int64_t> ParseSuspendTime(std::string_view config_out) {
  for (std::string_view line : Lines(config_out)) {
    if (line.substr(0, 11) != "SuspendTime") continue;
    size_t eq = line.find('=');
    if (line.find_first_not_of(' ', 11) != eq || eq == std::string_view::npos) continue;
    std::string_view v = line.substr(eq + 1);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (v.empty() || v[0] < '0' || v[0] > '9') return std::nullopt;  // NONE, INFINITE
    return ToInt(v);
  }
  return std::nullopt;
}

Client::Client(ClientOptions options) : options_(std::move(options)) {
  if (options_.slurm_conf.empty()) {
    if (const char* c = std::getenv("SLURM_CONF")) options_.slurm_conf = c;
  }
  if (options_.path_list.empty()) {
    const char* p = std::getenv("PATH");
    options_.path_list = p && *p ? p : "/usr/local/bin:/usr/bin:/bin";
  }
}

Client::Ran Client::RunTool(const std::string& tool, std::vector<std::string> args,
                            std::map<std::string, std::string> extra_env, std::string stdin_data) {
  Ran r;
  auto program = process::FindExecutable(tool, options_.path_list);
  if (!program) {
    r.error = "cannot find " + tool + " on " + options_.path_list + ": install slurm-client";
    return r;
  }
  process::Spec spec;
  spec.program = *program;
  spec.args = std::move(args);
  spec.env = std::move(extra_env);
  spec.env["PATH"] = spec.env.count("PATH") ? spec.env["PATH"] : options_.path_list;
  if (!options_.slurm_conf.empty()) spec.env["SLURM_CONF"] = options_.slurm_conf.string();
  spec.env["LANG"] = "C";
  spec.deadline = options_.deadline;
  spec.stdin_data = std::move(stdin_data);
  process::Outcome out = process::Run(std::move(spec));
  r.ok = out.ok();
  r.out = std::move(out.out);
  if (!r.ok) r.error = out.Describe(tool);
  return r;
}

std::optional<std::string> Client::Submit(const SubmitRequest& r, std::string* error) {
  // sbatch's environment: the job's variables and secrets (exported by name).
  std::map<std::string, std::string> env = r.job.env;
  for (const auto& [k, v] : r.secrets) env[k] = v;
  if (!env.count("PATH")) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  Ran ran = RunTool("sbatch", SbatchArgs(r), std::move(env), BatchScript(r.job.argv));
  if (!ran.ok) {
    if (error) *error = ran.error;
    return std::nullopt;
  }
  auto id = ParseSbatchParsable(ran.out);
  if (!id && error) *error = "sbatch printed no job id: '" + ran.out + "'";
  return id;
}

std::optional<SlurmJob> Client::Query(const std::string& id, std::string* error) {
  Ran ran = RunTool("scontrol", {"show", "job", "-o", id}, {}, "");
  if (ran.ok) {
    for (auto& j : ParseScontrolJobs(ran.out))
      if (j.id == id) return j;
  }
  // A job slurmctld has forgotten (past MinJobAge): accounting, when there is any.
  Ran acct = RunTool("sacct", {"-P", "-n", "-X", "-j", id, "-o", kSacctFormat}, {}, "");
  if (acct.ok) {
    for (auto& j : ParseSacct(acct.out))
      if (j.id == id) return j;
  }
  if (error) *error = "slurm job " + id + " is unknown: " + (ran.ok ? acct.error : ran.error);
  return std::nullopt;
}

bool Client::Cancel(const std::string& id, std::string* error) {
  Ran ran = RunTool("scancel", {id}, {}, "");
  if (!ran.ok && error) *error = ran.error;
  return ran.ok;
}

std::optional<SlurmNode> Client::Node(const std::string& name, std::string* error) {
  Ran ran = RunTool("scontrol", {"show", "node", "-o", name}, {}, "");
  if (ran.ok) {
    for (auto& n : ParseScontrolNodes(ran.out))
      if (n.name == name) return n;
  }
  if (error) *error = ran.ok ? "slurm node " + name + " is unknown" : ran.error;
  return std::nullopt;
}

std::optional<SlurmPartition> Client::Partition(const std::string& name, bool* missing, std::string* error) {
  if (missing) *missing = false;
  Ran ran = RunTool("scontrol", {"show", "partition", "-o", name}, {}, "");
  if (ran.ok) {
    for (auto& p : ParseScontrolPartitions(ran.out))
      if (p.name == name) return p;
  }
  // scontrol exits 1 with "Partition NAME not found" for an unknown one.
  bool absent = ran.ok || ran.error.find("not found") != std::string::npos;
  if (absent && missing) *missing = true;
  if (error) *error = absent ? "slurm has no partition '" + name + "'" : ran.error;
  return std::nullopt;
}

std::optional<std::vector<SlurmNode>> Client::Nodes(const std::string& hostlist, std::string* error) {
  auto names = ExpandHostlist(hostlist, error);
  if (!names) return std::nullopt;
  std::vector<SlurmNode> out;
  for (const std::string& n : *names) {
    auto node = Node(n, error);
    if (!node) return std::nullopt;
    out.push_back(std::move(*node));
  }
  return out;
}

std::optional<int64_t> Client::SuspendTime(std::string* error) {
  if (error) error->clear();
  Ran ran = RunTool("scontrol", {"show", "config"}, {}, "");
  if (!ran.ok) {
    if (error) *error = ran.error;
    return std::nullopt;
  }
  return ParseSuspendTime(ran.out);
}

bool Client::Drain(const std::string& node, const std::string& reason, std::string* error) {
  Ran ran = RunTool("scontrol", {"update", "NodeName=" + node, "State=DRAIN", "Reason=" + reason}, {}, "");
  if (!ran.ok && error) *error = ran.error;
  return ran.ok;
}

bool Client::Resume(const std::string& node, std::string* error) {
  Ran ran = RunTool("scontrol", {"update", "NodeName=" + node, "State=RESUME"}, {}, "");
  if (!ran.ok && error) *error = ran.error;
  return ran.ok;
}

std::optional<Client::RunResult> Client::RunToEnd(SubmitRequest r, std::chrono::milliseconds poll,
                                                  std::chrono::milliseconds limit,
                                                  const std::function<void(const std::string&)>& progress,
                                                  std::string* error, const std::atomic<bool>* stop) {
  RunResult result;
  result.state.spec = r.job;
  const auto t0 = std::chrono::steady_clock::now();
  auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  while (true) {
    auto id = Submit(r, error);
    if (!id) return std::nullopt;
    result.slurm_ids.push_back(*id);
    result.state.attempts++;
    say("submitted attempt " + std::to_string(result.state.attempts) + " as slurm job " + *id);
    std::string last;
    Classified c;
    SlurmJob job;
    while (true) {
      if (limit.count() > 0 && std::chrono::steady_clock::now() - t0 > limit) {
        std::string ignored;
        Cancel(*id, &ignored);
        if (error) *error = "slurm job " + *id + " did not end within the wait limit: cancelled";
        return std::nullopt;
      }
      auto q = Query(*id, error);
      if (!q) return std::nullopt;
      job = *q;
      c = Classify(job);
      std::string now = job.state + (job.nodes.empty() ? "" : " on " + job.nodes);
      if (now != last) {
        say("slurm job " + *id + ": " + now + " -> " + compute::JobStatusName(c.status) +
            (c.reason.empty() ? "" : " (" + c.reason + ")"));
        last = now;
      }
      if (c.status == JobStatus::kRunning && result.first_running_ms == 0)
        result.first_running_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0)
                .count();
      if (compute::IsTerminal(c.status)) break;
      if (stop && stop->load()) {
        // Stop waiting, not the job: it goes on in Slurm.
        result.state.status = c.status;
        result.state.reason = c.reason;
        result.state.node = job.nodes;
        say("stopped waiting for slurm job " + *id + " (it goes on running)");
        return result;
      }
      std::this_thread::sleep_for(poll);
    }
    compute::JobState& s = result.state;
    s.status = c.status;
    s.reason = c.reason;
    s.node = job.nodes;
    if (job.signal)
      s.signal = job.signal;
    else
      s.exit_code = job.exit_code;
    result.last_failure = c.failure;
    if (c.failure == Failure::kInfrastructure) {
      s.infrastructure_failures++;
      if (s.infrastructure_failures <= r.job.retries.infrastructure) {
        if (!job.nodes.empty()) {
          if (auto names = ExpandHostlist(job.nodes, nullptr))
            r.exclude_nodes.insert(r.exclude_nodes.end(), names->begin(), names->end());
        }
        say("infrastructure failure (" + c.reason + "): retry " + std::to_string(s.infrastructure_failures) +
            " of " + std::to_string(r.job.retries.infrastructure) + ", avoiding " + job.nodes);
        continue;
      }
    } else if (c.failure == Failure::kProgram) {
      s.program_failures++;
      if (s.program_failures <= r.job.retries.program) {
        say("program failure (" + c.reason + "): retry " + std::to_string(s.program_failures) + " of " +
            std::to_string(r.job.retries.program));
        continue;
      }
    }
    return result;
  }
}

}  // namespace plinth::slurm
