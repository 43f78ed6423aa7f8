// The Slurm boundary (runtime/slurm/): hostlist expressions and their
// compression, the parsers of scontrol / sacct / sbatch output (captured from
// slurm-wlm 22.05 on tests/fixtures/slurm-cluster.sh), the mapping of Slurm
// job states to Plinth's, sbatch's argv (secrets never in it) and the
// provisioner file. The cluster itself is exercised end to end by
// tests/fixtures/run-slurm-tests.sh.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/slurm/client.h"
#include "runtime/slurm/hostlist.h"
#include "runtime/slurm/provisioner.h"

namespace plinth::slurm {
namespace {

namespace fs = std::filesystem;
using compute::JobStatus;
using Names = std::vector<std::string>;

Names Expand(const std::string& expr) {
  std::string error;
  auto names = ExpandHostlist(expr, &error);
  EXPECT_TRUE(names) << expr << ": " << error;
  return names ? *names : Names{};
}

std::string ExpandError(const std::string& expr) {
  std::string error;
  EXPECT_FALSE(ExpandHostlist(expr, &error)) << expr;
  return error;
}

TEST(HostlistTest, ExpandsRangesListsAndPlainNames) {
  EXPECT_EQ(Expand("gpu[1-3,5],cpu1"), (Names{"gpu1", "gpu2", "gpu3", "gpu5", "cpu1"}));
  EXPECT_EQ(Expand("node7"), (Names{"node7"}));
  EXPECT_EQ(Expand("a,b , c"), (Names{"a", "b", "c"}));
  EXPECT_EQ(Expand("gpu[2]"), (Names{"gpu2"}));
  EXPECT_EQ(Expand(""), Names{});
}

TEST(HostlistTest, KeepsZeroPadding) {
  Names n = Expand("n[01-10]");
  ASSERT_EQ(n.size(), 10u);
  EXPECT_EQ(n.front(), "n01");
  EXPECT_EQ(n[8], "n09");
  EXPECT_EQ(n.back(), "n10");
  EXPECT_EQ(Expand("n[098-101]"), (Names{"n098", "n099", "n100", "n101"}));
}

TEST(HostlistTest, SeveralBracketsAreTheProduct) {
  EXPECT_EQ(Expand("r[1-2]-n[1-2]"), (Names{"r1-n1", "r1-n2", "r2-n1", "r2-n2"}));
  EXPECT_EQ(Expand("gpu[1-2]x"), (Names{"gpu1x", "gpu2x"}));
}

TEST(HostlistTest, RejectsMalformedExpressionsSayingWhy) {
  EXPECT_NE(ExpandError("gpu[3-1]").find("ends before it starts"), std::string::npos);
  EXPECT_NE(ExpandError("gpu[1-3").find("'[' without ']'"), std::string::npos);
  EXPECT_NE(ExpandError("gpu1-3]").find("']' without '['"), std::string::npos);
  EXPECT_NE(ExpandError("gpu[a-b]").find("not N or N-M"), std::string::npos);
  EXPECT_NE(ExpandError("gpu[[1]]").find("nested"), std::string::npos);
  EXPECT_NE(ExpandError("gpu 1").find("space"), std::string::npos);
  std::string error;
  EXPECT_FALSE(ExpandHostlist("n[1-100000]", &error, 1000));
  EXPECT_NE(error.find("more than 1000"), std::string::npos);
}

TEST(HostlistTest, CompressesToRangesAndBack) {
  EXPECT_EQ(CompressHostlist({"gpu1", "gpu2", "gpu3", "gpu5", "cpu1"}), "gpu[1-3,5],cpu1");
  EXPECT_EQ(CompressHostlist({"n01", "n02", "n03", "n10"}), "n[01-03,10]");
  EXPECT_EQ(CompressHostlist({"a1"}), "a1");
  EXPECT_EQ(CompressHostlist({"login", "gpu2", "gpu1", "gpu2"}), "login,gpu[1-2]");
  EXPECT_EQ(CompressHostlist({}), "");
  for (std::string expr : {"gpu[1-3,5],cpu1", "n[01-10]", "x[7,9-12],y,z[003-004]"}) {
    Names names = Expand(expr);
    EXPECT_EQ(Expand(CompressHostlist(names)), names) << expr;
  }
}

// Captured with `scontrol show job -o ID` from slurm-wlm 22.05.8.
const char* kPending =
    R"(JobId=2 JobName=two words UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901758 Nice=0 Account=(null) QOS=(null) JobState=PENDING Reason=Priority Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-05T11:43:41 EligibleTime=2026-12-05T11:43:41 AccrueTime=Unknown StartTime=Unknown EndTime=Unknown Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-05T11:43:41 Scheduler=Main Partition=gpu AllocNode:Sid=localhost:24073 ReqNodeList=(null) ExcNodeList=(null) NodeList= NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,mem=1000M,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp/sc3/jobs StdErr=/tmp/sc3/jobs/slurm-2.out StdIn=/dev/null StdOut=/tmp/sc3/jobs/slurm-2.out Power= TresPerJob=gres:gpu:1)";
const char* kConfiguring =
    R"(JobId=2 JobName=two words UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901758 Nice=0 Account=(null) QOS=(null) JobState=CONFIGURING Reason=None Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:40 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-05T11:43:41 EligibleTime=2026-12-05T11:43:41 AccrueTime=2026-12-05T11:43:41 StartTime=2026-12-05T11:43:44 EndTime=Unknown Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-05T11:43:44 Scheduler=Main Partition=gpu AllocNode:Sid=localhost:24073 ReqNodeList=(null) ExcNodeList=(null) NodeList=gpu2 BatchHost=gpu2 NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp/sc3/jobs StdErr=/tmp/sc3/jobs/slurm-2.out StdIn=/dev/null StdOut=/tmp/sc3/jobs/slurm-2.out Power= TresPerJob=gres:gpu:1)";
const char* kFailed =
    R"(JobId=1 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901759 Nice=0 Account=(null) QOS=(null) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 ExitCode=3:0 RunTime=00:00:00 TimeLimit=UNLIMITED TimeMin=N/A SubmitTime=2026-12-05T11:43:41 EligibleTime=2026-12-05T11:43:41 AccrueTime=2026-12-05T11:43:41 StartTime=2026-12-05T11:44:11 EndTime=2026-12-05T11:44:11 Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-12-05T11:43:44 Scheduler=Main Partition=gpu AllocNode:Sid=localhost:24073 ReqNodeList=(null) ExcNodeList=(null) NodeList=gpu1 BatchHost=gpu1 NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 ReqB:S:C:T=0:0:*:* TRES=cpu=1,node=1,billing=1 Socks/Node=* NtasksPerN:B:S:C=0:0:*:* CoreSpec=* MinCPUsNode=1 MinMemoryNode=0 MinTmpDiskNode=0 Features=(null) DelayBoot=00:00:00 OverSubscribe=OK Contiguous=0 Licenses=(null) Network=(null) Command=(null) WorkDir=/tmp/sc3/jobs StdErr=/tmp/sc3/jobs/slurm-1.out StdIn=/dev/null StdOut=/tmp/sc3/jobs/slurm-1.out Power= TresPerJob=gres:gpu:1)";
const char* kNode =
    R"(NodeName=gpu1 Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=1 CPUTot=1 CPULoad=17.26 AvailableFeatures=(null) ActiveFeatures=(null) Gres=gpu:H100:2 NodeAddr=127.0.0.2 NodeHostName=gpu1 Port=56113 Version=22.05.8 OS=Linux 6.18.44-fc-v1272 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=1000 AllocMem=0 FreeMem=21225 Sockets=1 Boards=1 State=IDLE+CLOUD+POWERING_DOWN ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=gpu  BootTime=2026-12-05T11:43:46 SlurmdStartTime=2026-12-05T11:43:47 LastBusyTime=2026-12-05T11:44:11 CfgTRES=cpu=1,mem=1000M,billing=1 AllocTRES= CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s ExtSensorsWatts=0 ExtSensorsTemp=n/s)";

TEST(ScontrolParseTest, ReadsJobsIncludingValuesWithSpaces) {
  auto jobs = ParseScontrolJobs(kPending);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id, "2");
  EXPECT_EQ(jobs[0].name, "two words");
  EXPECT_EQ(jobs[0].state, "PENDING");
  EXPECT_EQ(jobs[0].reason, "Priority");
  EXPECT_EQ(jobs[0].nodes, "");
  EXPECT_EQ(jobs[0].start_time, "Unknown");
  EXPECT_EQ(Classify(jobs[0]).status, JobStatus::kPending);
  EXPECT_EQ(Classify(jobs[0]).reason, "waiting: Priority");

  jobs = ParseScontrolJobs(kConfiguring);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].state, "CONFIGURING");
  EXPECT_EQ(jobs[0].nodes, "gpu2");
  EXPECT_EQ(Classify(jobs[0]).status, JobStatus::kProvisioning);

  jobs = ParseScontrolJobs(std::string(kFailed) + "\n" + kPending + "\n");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].state, "FAILED");
  EXPECT_EQ(jobs[0].exit_code, 3);
  EXPECT_EQ(jobs[0].signal, 0);
  EXPECT_EQ(jobs[0].nodes, "gpu1");
  EXPECT_EQ(jobs[0].end_time, "2026-12-05T11:44:11");
  Classified c = Classify(jobs[0]);
  EXPECT_EQ(c.status, JobStatus::kFailed);
  EXPECT_EQ(c.failure, Failure::kProgram);
  EXPECT_EQ(c.reason, "exit code 3 (FAILED)");
}

TEST(ScontrolParseTest, ReadsNodes) {
  auto nodes = ParseScontrolNodes(kNode);
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].name, "gpu1");
  EXPECT_EQ(nodes[0].state, "IDLE+CLOUD+POWERING_DOWN");
  EXPECT_EQ(nodes[0].address, "127.0.0.2");
  EXPECT_EQ(nodes[0].boot_time, "2026-12-05T11:43:46");
  EXPECT_EQ(nodes[0].reason, "");
  nodes = ParseScontrolNodes(
      "NodeName=gpu2 Arch=x86_64 State=IDLE+DRAIN+CLOUD Partitions=gpu Reason=plinth: gpu probe failed "
      "[root@2026-12-05T12:01:07]\n");
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].state, "IDLE+DRAIN+CLOUD");
  EXPECT_EQ(nodes[0].reason, "plinth: gpu probe failed");
}

TEST(SacctParseTest, ReadsParsableLines) {
  // The -P -n -X -o kSacctFormat layout (sacct needs slurmdbd, which the
  // fixture does not run: "Slurm accounting storage is disabled").
  auto jobs = ParseSacct(
      "41|train|COMPLETED|0:0|gpu1|2026-12-05T10:00:00|2026-12-05T10:00:30|2026-12-05T10:05:00\n"
      "42|train|CANCELLED by 0|0:15|gpu2|2026-12-05T10:01:00|2026-12-05T10:01:02|2026-12-05T10:02:00\n"
      "43|train|NODE_FAIL|0:0|gpu3|2026-12-05T10:01:00|2026-12-05T10:01:02|2026-12-05T10:02:00\n"
      "44|prep|PENDING|0:0|None assigned|2026-12-05T10:01:00|Unknown|Unknown\n");
  ASSERT_EQ(jobs.size(), 4u);
  EXPECT_EQ(Classify(jobs[0]).status, JobStatus::kSucceeded);
  EXPECT_EQ(jobs[1].state, "CANCELLED");
  EXPECT_EQ(jobs[1].signal, 15);
  EXPECT_EQ(Classify(jobs[1]).status, JobStatus::kCancelled);
  EXPECT_EQ(Classify(jobs[2]).failure, Failure::kInfrastructure);
  EXPECT_EQ(jobs[3].nodes, "");
}

TEST(ClassifyTest, TellsInfrastructureFromProgramFailures) {
  auto of = [](const std::string& state, int code = 0, int sig = 0) {
    SlurmJob j;
    j.state = state;
    j.exit_code = code;
    j.signal = sig;
    return Classify(j);
  };
  for (const char* s : {"NODE_FAIL", "BOOT_FAIL", "PREEMPTED"}) {
    EXPECT_EQ(of(s).status, JobStatus::kFailed) << s;
    EXPECT_EQ(of(s).failure, Failure::kInfrastructure) << s;
  }
  for (const char* s : {"FAILED", "TIMEOUT", "OUT_OF_MEMORY", "DEADLINE"}) {
    EXPECT_EQ(of(s, 1).status, JobStatus::kFailed) << s;
    EXPECT_EQ(of(s, 1).failure, Failure::kProgram) << s;
  }
  EXPECT_EQ(of("FAILED", 0, 9).reason, "killed by signal 9 (FAILED)");
  EXPECT_EQ(of("RUNNING").status, JobStatus::kRunning);
  EXPECT_EQ(of("COMPLETING").status, JobStatus::kRunning);
  EXPECT_EQ(of("REQUEUED").status, JobStatus::kPending);
  EXPECT_EQ(of("COMPLETED").failure, Failure::kNone);
  EXPECT_EQ(of("CANCELLED").status, JobStatus::kCancelled);
  EXPECT_NE(of("MYSTERY").reason.find("unknown Slurm job state 'MYSTERY'"), std::string::npos);
}

TEST(SbatchTest, ArgsCarryResourcesAndOnlyVariableNames) {
  SubmitRequest r;
  r.job.name = "train";
  r.job.cpus = 4;
  r.job.memory_bytes = 3ull << 30;
  r.job.gpus = 2;
  r.job.timeout_ms = 90 * 1000;
  r.job.env = {{"EPOCHS", "3"}};
  r.partition = "gpu";
  r.gpu_type = "H100";
  r.after_slurm_ids = {"7", "8"};
  r.output = "/d/%j.out";
  r.exclude_nodes = {"gpu1", "gpu2"};
  r.secrets = {{"HF_TOKEN", "hf_very_secret"}};
  auto args = SbatchArgs(r);
  auto has = [&](const std::string& a) { return std::find(args.begin(), args.end(), a) != args.end(); };
  EXPECT_TRUE(has("--parsable"));
  EXPECT_TRUE(has("--job-name=train"));
  EXPECT_TRUE(has("--partition=gpu"));
  EXPECT_TRUE(has("--cpus-per-task=4"));
  EXPECT_TRUE(has("--mem=3072M"));
  EXPECT_TRUE(has("--gpus=H100:2"));
  EXPECT_TRUE(has("--time=2"));
  EXPECT_TRUE(has("--dependency=afterok:7:8"));
  EXPECT_TRUE(has("--output=/d/%j.out"));
  EXPECT_TRUE(has("--exclude=gpu[1-2]"));
  EXPECT_TRUE(has("--no-requeue"));
  EXPECT_TRUE(has("--export=PATH,EPOCHS,HF_TOKEN"));
  for (const auto& a : args) {
    EXPECT_EQ(a.find("hf_very_secret"), std::string::npos) << a;
    EXPECT_EQ(a.find("EPOCHS=3"), std::string::npos) << a;
  }
  r.gres = true;
  r.gpu_type.clear();
  args = SbatchArgs(r);
  EXPECT_TRUE(has("--gres=gpu:2"));
}

TEST(SbatchTest, ScriptQuotesEveryWordAndIdsAreParsed) {
  EXPECT_EQ(BatchScript({"python3", "it's", "$HOME"}), "#!/bin/sh\nexec 'python3' 'it'\\''s' '$HOME'\n");
  EXPECT_EQ(ParseSbatchParsable("123\n"), "123");
  EXPECT_EQ(ParseSbatchParsable("124;plinth\n"), "124");
  EXPECT_FALSE(ParseSbatchParsable("sbatch: error: Batch job submission failed\n"));
}

TEST(ProvisionerTest, LoadsTheFileAndSaysWhatIsWrong) {
  fs::path dir = fs::path(::testing::TempDir()) / ("slurm-prov-" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string error;
  EXPECT_FALSE(LoadProvisioner(dir / "missing.json", &error));
  EXPECT_NE(error.find("PLINTH_SLURM_PROVISIONER"), std::string::npos);
  std::ofstream(dir / "bad.json") << R"({"nodes": {"gpu1": {"config": "/c"}}})";
  EXPECT_FALSE(LoadProvisioner(dir / "bad.json", &error));
  EXPECT_NE(error.find("node gpu1 needs"), std::string::npos);
  std::ofstream(dir / "p.json")
      << R"({"slurm_conf": "/c/slurm.conf", "nodes": {"gpu1": {"address": "127.0.0.2",
      "port": 7001, "config": "/c/slurm.conf", "spool": "/s/gpu1", "pid_file": ")" +
             (dir / "gpu1.pid").string() + R"("}}})";
  auto p = LoadProvisioner(dir / "p.json", &error);
  ASSERT_TRUE(p) << error;
  ASSERT_EQ(p->nodes.size(), 1u);
  const ProvisionedNode& n = p->nodes.at("gpu1");
  EXPECT_EQ(n.port, 7001);
  EXPECT_EQ(p->log_path, dir / "provisioner.log");
  // A pid file naming a live process that is not `slurmd -N gpu1` is stale.
  EXPECT_EQ(RunningSlurmd(n), 0);
  std::ofstream(n.pid_file) << getpid() << "\n";
  EXPECT_EQ(RunningSlurmd(n), 0);
  // A node not in the file fails, and the failure is logged.
  PowerReport r = Suspend(*p, {"gpu9"});
  EXPECT_EQ(r.failed, Names{"gpu9"});
  std::ifstream log(p->log_path);
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("suspend gpu9: not in the provisioner file"), std::string::npos);
  // Suspending a node that does not run is done, not an error (idempotent).
  r = Suspend(*p, {"gpu1"});
  EXPECT_EQ(r.done, Names{"gpu1"});
  fs::remove_all(dir);
}

TEST(ProvisionerTest, HostnameIsTheNodesNameUnlessTheFileSetsOne) {
  fs::path dir = fs::path(::testing::TempDir()) / ("slurm-host-" + std::to_string(getpid()));
  fs::create_directories(dir);
  auto node = [](const std::string& name, const std::string& extra) {
    return "\"" + name + R"(": {"config": "/c", "spool": "/s", "pid_file": "/p")" + extra + "}";
  };
  std::ofstream(dir / "p.json") << "{\"nodes\": {" + node("gpu1", "") + ", " +
                                       node("gpu2", R"(, "hostname": "gpu2.cluster")") + "}}";
  std::string error;
  auto p = LoadProvisioner(dir / "p.json", &error);
  ASSERT_TRUE(p) << error;
  EXPECT_EQ(p->nodes.at("gpu1").hostname, "gpu1");
  EXPECT_EQ(p->nodes.at("gpu2").hostname, "gpu2.cluster");
  // A name that cannot be a hostname is refused with how to fix it.
  std::ofstream(dir / "bad.json") << "{\"nodes\": {" + node("gpu1", R"(, "hostname": "gpu 1")") + "}}";
  EXPECT_FALSE(LoadProvisioner(dir / "bad.json", &error));
  EXPECT_NE(error.find("node gpu1: 'gpu 1' is not a valid hostname"), std::string::npos) << error;
  EXPECT_NE(error.find("set its \"hostname\""), std::string::npos) << error;
  fs::remove_all(dir);
}

TEST(ProvisionerTest, SlurmdRunsInTheNodesTimeAndUtsNamespaces) {
  ProvisionedNode n;
  n.name = "gpu2";
  n.config = "/d/etc/slurm.conf";
  n.hostname = "gpu2";
  SlurmdLaunch l = SlurmdCommand(n, "/usr/bin/setsid", "/usr/bin/unshare", "/usr/sbin/slurmd", -29439, true);
  EXPECT_EQ(l.argv,
            (Names{"/usr/bin/setsid", "--fork", "--wait", "/usr/bin/unshare", "--time", "--boottime=-29439",
                   "--fork", "--", "/usr/sbin/slurmd", "-f", "/d/etc/slurm.conf", "-N", "gpu2"}));
  EXPECT_EQ(l.hostname, "gpu2");
  // NodeHostname from the file wins; an empty one is the node's name.
  n.hostname = "gpu2.cluster";
  EXPECT_EQ(SlurmdCommand(n, "s", "u", "d", 0, true).hostname, "gpu2.cluster");
  n.hostname.clear();
  EXPECT_EQ(SlurmdCommand(n, "s", "u", "d", 0, true).hostname, "gpu2");
  // Without CAP_SYS_ADMIN: the same command in the host's UTS namespace.
  SlurmdLaunch host =
      SlurmdCommand(n, "/usr/bin/setsid", "/usr/bin/unshare", "/usr/sbin/slurmd", -29439, false);
  EXPECT_EQ(host.hostname, "");
  EXPECT_EQ(host.argv, l.argv);
}

TEST(ProvisionerTest, CapSysAdminIsBit21OfCapEff) {
  EXPECT_TRUE(HasCapSysAdmin("Name:\tplinth\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n"));
  EXPECT_TRUE(HasCapSysAdmin("CapEff:\t0000000000200000"));
  EXPECT_FALSE(HasCapSysAdmin("CapPrm:\t000001ffffffffff\nCapEff:\t0000000000000000\n"));
  EXPECT_FALSE(HasCapSysAdmin("CapEff:\t00000000001fffff\n"));  // bits 0-20 only
  EXPECT_FALSE(HasCapSysAdmin("CapEff:\t\n"));
  EXPECT_FALSE(HasCapSysAdmin("CapEff:\tzz\n"));
  EXPECT_FALSE(HasCapSysAdmin("Name:\tplinth\n"));
}

TEST(ProvisionerTest, ValidHostnames) {
  EXPECT_TRUE(ValidHostname("gpu1"));
  EXPECT_TRUE(ValidHostname("node-01.rack_2"));
  EXPECT_TRUE(ValidHostname(std::string(64, 'a')));
  EXPECT_FALSE(ValidHostname(std::string(65, 'a')));
  EXPECT_FALSE(ValidHostname(""));
  EXPECT_FALSE(ValidHostname("gpu 1"));
  EXPECT_FALSE(ValidHostname("gpu/1"));
}

TEST(ProvisionerTest, BoottimeOffsetStartsUptimeBelowOneSecond) {
  EXPECT_EQ(BoottimeOffset(29439.33), -29439);
  EXPECT_EQ(BoottimeOffset(0.5), 0);
  EXPECT_EQ(BoottimeOffset(0), 0);
}

}  // namespace
}  // namespace plinth::slurm
