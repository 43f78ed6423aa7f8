// The slurm provider (runtime/providers/slurm/) without a cluster: its
// schemas, plan-time checks, planned values and one apply, against fake
// scontrol / sbatch scripts that print captured slurm-wlm 22.05 output and
// record what they were given. The real cluster is exercised end to end by
// tests/fixtures/run-slurm-tests.sh.
#include "runtime/providers/slurm/provider.h"
#include "runtime/slurm/patch.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/providers/catalog.h"
#include "runtime/providers/slurm/schema.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

// scontrol: partition "gpu" (gpu[1-2]: one powered down, one drained) and
// "cpu" (no GPUs); job 42 COMPLETED on gpu1. sbatch: records argv, stdin and
// environment under the directory, prints job id 42.
const char* kScontrol = R"(#!/bin/sh
d=$(dirname "$0")
echo "$@" >>"$d/scontrol.calls"
case "$1 $2" in
"show partition")
  case "$4" in
  gpu) echo "PartitionName=gpu AllowGroups=ALL Default=YES Nodes=gpu[1-2] State=UP TotalCPUs=8 TotalNodes=2" ;;
  cpu) echo "PartitionName=cpu AllowGroups=ALL Nodes=c1 State=UP TotalCPUs=2 TotalNodes=1" ;;
  *) echo "Partition $4 not found" >&2; exit 1 ;;
  esac ;;
"show node")
  case "$4" in
  gpu1) echo "NodeName=gpu1 Arch=x86_64 CPUTot=4 Gres=gpu:H100:2 NodeAddr=127.0.0.2 RealMemory=2000 State=IDLE+CLOUD+POWERED_DOWN Partitions=gpu BootTime=None" ;;
  gpu2) echo "NodeName=gpu2 Arch=x86_64 CPUTot=4 Gres=gpu:H100:2(S:0) NodeAddr=127.0.0.3 RealMemory=1000 State=IDLE+DRAIN+CLOUD Partitions=gpu Reason=plinth: gpu probe failed [root@2026-12-05T12:01:07]" ;;
  c1) echo "NodeName=c1 CPUTot=2 Gres=(null) RealMemory=500 State=IDLE Partitions=cpu" ;;
  esac ;;
"show config") printf 'Configuration data as of 2026-12-05T12:00:00\nSuspendRate             = 60 nodes/min\nSuspendTime             = 300 sec\nSuspendTimeout          = 10 sec\n' ;;
"show job")
  st=$(cat "$d/job.state" 2>/dev/null || echo COMPLETED); ec=$(cat "$d/job.exit" 2>/dev/null || echo 0:0)
  echo "JobId=$4 JobName=slurm_job.train JobState=$st Reason=None ExitCode=$ec NodeList=gpu1 StartTime=2026-12-05T11:43:44 EndTime=2026-12-05T11:43:50" ;;
esac
)";
const char* kSbatch = R"(#!/bin/sh
d=$(dirname "$0")
echo "$@" >"$d/sbatch.argv"
cat >"$d/sbatch.stdin"
env >"$d/sbatch.env"
echo 42
)";
const char* kScancel = R"(#!/bin/sh
echo "$@" >>"$(dirname "$0")/scancel.calls"
)";

class SlurmProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/plinth-slurm-provider-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir = tmpl;
    Script("scontrol", kScontrol);
    Script("sbatch", kSbatch);
    Script("scancel", kScancel);
    SlurmSettings s;
    s.client.path_list = dir.string() + ":/usr/bin:/bin";
    s.client.slurm_conf = dir / "slurm.conf";
    s.workspace_key = dir / "workspace.key";
    s.compute_dir = dir / "compute";
    s.config_dir = dir;
    s.poll = std::chrono::milliseconds(1);
    provider = std::make_unique<SlurmProvider>(std::move(s));
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void Script(const std::string& name, const char* text) {
    std::ofstream(dir / name) << text;
    chmod((dir / name).c_str(), 0755);
  }
  std::string Slurp(const std::string& name) {
    std::ifstream in(dir / name);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  static ValueMap PoolConfig(const std::string& partition) {
    return {{"name", Value::String("train")},
            {"address", Value::String("slurm_pool.train")},
            {"partition", Value::String(partition)}};
  }
  ValueMap PlannedPool(const std::string& partition) {
    auto r = provider->PlanChange(PlanRequest{"slurm_pool", nullptr, PoolConfig(partition)});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    ValueMap p = r.ok() ? r.value().planned : ValueMap{};
    p["address"] = Value::String("slurm_pool.train");
    return p;
  }
  ValueMap JobConfig(const ValueMap& pool, int gpus) {
    return {{"name", Value::String("train")},
            {"address", Value::String("slurm_job.train")},
            {"pool", Value::Object(pool)},
            {"command", Value::List({Value::String("python3"), Value::String("train.py")})},
            {"cpus", Value::Number(1)},
            {"gpus", Value::Number(gpus)},
            {"env", Value::Object({{"EPOCHS", Value::String("3")}})},
            {"secret_env", Value::Object({{"TOKEN", Value::String("s3cret-value")}}).WithSensitive()},
            {"wait", Value::Bool(true)}};
  }

  fs::path dir;
  std::unique_ptr<SlurmProvider> provider;
};

TEST_F(SlurmProviderTest, IsInTheCatalogWithAProviderBlock) {
  const CatalogEntry* e = FindCatalogEntry("slurm");
  ASSERT_NE(e, nullptr);
  auto config = e->config_schema();
  ASSERT_TRUE(config);
  for (const char* a : {"bin_dir", "slurm_conf", "partition"})
    EXPECT_NE(config->body.FindAttribute(a), nullptr) << a;
  std::vector<std::string> types;
  for (const ResourceSchema& s : SlurmProviderSchemas().ResourceSchemas()) types.push_back(s.type);
  EXPECT_EQ(types, (std::vector<std::string>{"slurm_pool", "slurm_job"}));
  const auto schemas = SlurmProviderSchemas().ResourceSchemas();
  const AttributeSchema* secret = schemas[1].body.FindAttribute("secret_env");
  ASSERT_NE(secret, nullptr);
  EXPECT_TRUE(secret->sensitive);
  EXPECT_EQ(schemas[0].body.FindAttribute("idle")->mode, AttrMode::Computed);
}

TEST_F(SlurmProviderTest, PlansAPoolFromThePartitionsNodes) {
  ValueMap p = PlannedPool("gpu");
  EXPECT_EQ(p["id"].as_string(), "gpu");
  EXPECT_EQ(p["max_nodes"].as_number(), 2);
  EXPECT_EQ(p["cpus_per_node"].as_number(), 4);
  EXPECT_EQ(p["gpus_per_node"].as_number(), 2);
  EXPECT_EQ(p["gpu_type"].as_string(), "H100");
  EXPECT_EQ(p["max_gpus"].as_number(), 4);
  EXPECT_EQ(p["memory_per_node"].as_number(), 1000.0 * 1024 * 1024);  // the smaller node
  EXPECT_EQ(p["idle"].kind(), Value::Kind::Duration);
  EXPECT_EQ(p["idle"].as_number(), 300000);  // SuspendTime = 300 sec
  EXPECT_EQ(p["nodes"].as_number(), 1);      // gpu1 is powered down
  ASSERT_EQ(p["placement"].kind(), Value::Kind::List);
  std::vector<std::string> lines;
  for (const Value& l : p["placement"].as_list()) lines.push_back(l.as_string());
  EXPECT_EQ(lines,
            (std::vector<std::string>{"gpu1: powered down (idle~), resumed when a job needs them (1 node)",
                                      "gpu2: drained (IDLE+DRAIN+CLOUD): plinth: gpu probe failed"}));
}

TEST_F(SlurmProviderTest, AMissingPartitionIsAnErrorNamingIt) {
  auto r = provider->PlanChange(PlanRequest{"slurm_pool", nullptr, PoolConfig("nope")});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("slurm has no partition 'nope'"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("scontrol show partition"), std::string::npos);
  auto read = provider->Read("slurm_pool", "nope", PoolConfig("nope"));
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("'nope'"), std::string::npos);
  // Validate: no partition at all and no default in the provider block.
  ValueMap none = PoolConfig("x");
  none.erase("partition");
  auto errs = provider->Validate("slurm_pool", none);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("set partition = \"NAME\""), std::string::npos);
}

TEST_F(SlurmProviderTest, AnExistingPoolKeepsWhatItsRefreshReadAndDeleteForgets) {
  ValueMap prior = PlannedPool("gpu");
  prior["nodes"] = Value::Number(2);
  ValueMap config = PoolConfig("gpu");
  auto r = provider->PlanChange(PlanRequest{"slurm_pool", &prior, config});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.value().replace_because.empty());
  EXPECT_EQ(r.value().planned.at("nodes").as_number(), 2);  // not re-read at plan
  auto other = provider->PlanChange(PlanRequest{"slurm_pool", &prior, PoolConfig("cpu")});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other.value().replace_because, std::vector<std::string>{"partition"});
  EXPECT_EQ(other.value().planned.at("gpus_per_node").as_number(), 0);
  std::remove((dir / "scontrol.calls").c_str());
  ASSERT_TRUE(provider->Delete("slurm_pool", "gpu", prior).ok());
  EXPECT_FALSE(fs::exists(dir / "scontrol.calls")) << "deleting a pool must not touch the cluster";
}

// A patch block is checked like a local pool's; apply writes the plan the
// controller follows (runtime/slurm/patch.h), with absolute commands, and a
// pool without one (or deleted) has none.
TEST_F(SlurmProviderTest, APatchBlockBecomesThePlanTheControllerFollows) {
  auto with_patch = [&](ValueMap patch) {
    ValueMap c = PoolConfig("gpu");
    c["patch"] = Value::Object(std::move(patch));
    return c;
  };
  auto errs = provider->Validate("slurm_pool", with_patch({{"level", Value::String("")},
                                                          {"command", Value::List({Value::String("sh")})},
                                                          {"failure_threshold", Value::Number(0)}}));
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_NE(errs[0].find("patch.level is empty"), std::string::npos) << errs[0];
  EXPECT_NE(errs[1].find("patch.failure_threshold is 0"), std::string::npos) << errs[1];
  Script("patch-node.sh", "#!/bin/sh\n");
  ValueMap config = with_patch({{"level", Value::String("2026-12")},
                                {"command", Value::List({Value::String("./patch-node.sh")})},
                                {"max_unavailable", Value::String("50%")}});
  EXPECT_TRUE(provider->Validate("slurm_pool", config).empty());
  auto planned = provider->PlanChange(PlanRequest{"slurm_pool", nullptr, config});
  ASSERT_TRUE(planned.ok()) << planned.error().message;
  ValueMap p = planned.value().planned;
  ASSERT_TRUE(provider->Create("slurm_pool", p).ok());
  std::string error;
  auto plans = slurm::ReadPatchPlans(dir / "compute", &error);
  ASSERT_EQ(plans.size(), 1u) << error;
  EXPECT_EQ(plans[0].pool, "slurm_pool.train");
  EXPECT_EQ(plans[0].partition, "gpu");
  EXPECT_EQ(plans[0].patch.level, "2026-12");
  EXPECT_EQ(plans[0].patch.command, std::vector<std::string>{(dir / "patch-node.sh").string()});
  EXPECT_EQ(plans[0].patch.cwd, dir.string());
  EXPECT_EQ(plans[0].patch.max_unavailable_percent, 50);
  EXPECT_EQ(plans[0].client.path_list, dir.string() + ":/usr/bin:/bin");
  // Without the block (an update), then deleted: no plan.
  ASSERT_TRUE(provider->Update("slurm_pool", "gpu", p, PlannedPool("gpu")).ok());
  EXPECT_TRUE(slurm::ReadPatchPlans(dir / "compute", &error).empty());
  ASSERT_TRUE(provider->Create("slurm_pool", p).ok());
  ASSERT_TRUE(provider->Delete("slurm_pool", "gpu", p).ok());
  EXPECT_TRUE(slurm::ReadPatchPlans(dir / "compute", &error).empty());
  // A command that is not there is apply's error, naming it.
  ValueMap missing = p;
  ValueMap patch = missing["patch"].as_object();
  patch["command"] = Value::List({Value::String("./no-such-script.sh")});
  missing["patch"] = Value::Object(patch);
  auto r = provider->Create("slurm_pool", missing);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("no-such-script.sh is not an executable file"), std::string::npos)
      << r.error().message;
}

TEST_F(SlurmProviderTest, TooManyGpusForThePartitionIsAPlanError) {
  ValueMap pool = PlannedPool("gpu");
  EXPECT_TRUE(provider->Validate("slurm_job", JobConfig(pool, 2)).empty());
  auto errs = provider->Validate("slurm_job", JobConfig(pool, 3));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "job asks for 3 GPUs per task but partition gpu's largest node has 2 (H100): lower gpus or use a "
            "partition with larger nodes");
  ValueMap cpu = PlannedPool("cpu");
  errs = provider->Validate("slurm_job", JobConfig(cpu, 1));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("partition cpu's nodes have no GPU"), std::string::npos) << errs[0];
  // The shared job checks apply, and after takes slurm_job references only.
  ValueMap bad = JobConfig(pool, 1);
  bad["command"] = Value::List({});
  bad["after"] = Value::List({Value::Object({{"address", Value::String("job.other")}})});
  errs = provider->Validate("slurm_job", bad);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_NE(errs[0].find("command is empty"), std::string::npos);
  EXPECT_NE(errs[1].find("'after' takes slurm_job references, not job.other"), std::string::npos);
}

TEST_F(SlurmProviderTest, PlansAJobIdAndReplacesItWhenItsInputChanges) {
  ValueMap pool = PlannedPool("gpu");
  auto r = provider->PlanChange(PlanRequest{"slurm_job", nullptr, JobConfig(pool, 1)});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ValueMap& p = r.value().planned;
  ASSERT_EQ(p.at("id").kind(), Value::Kind::String);
  EXPECT_EQ(p.at("id").as_string().rfind("gpu/train-", 0), 0u) << p.at("id").as_string();
  EXPECT_EQ(p.at("id").as_string().find("s3cret"), std::string::npos);
  EXPECT_TRUE(p.at("status").is_unknown());
  EXPECT_EQ(p.count("principal"), 0u);
  ValueMap other = JobConfig(pool, 2);
  auto r2 = provider->PlanChange(PlanRequest{"slurm_job", nullptr, other});
  ASSERT_TRUE(r2.ok());
  EXPECT_NE(r2.value().planned.at("id").as_string(), p.at("id").as_string());
  ValueMap prior = p;
  prior["status"] = Value::String("succeeded");
  auto same = provider->PlanChange(PlanRequest{"slurm_job", &prior, JobConfig(pool, 1)});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same.value().replace_because.empty());
  EXPECT_EQ(same.value().planned.at("status").as_string(), "succeeded");
  auto changed = provider->PlanChange(PlanRequest{"slurm_job", &prior, other});
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(changed.value().replace_because, std::vector<std::string>{"gpus"});
}

TEST_F(SlurmProviderTest, CreateSubmitsWithSecretsOnlyInSbatchsEnvironment) {
  ValueMap pool = PlannedPool("gpu");
  auto plan = provider->PlanChange(PlanRequest{"slurm_job", nullptr, JobConfig(pool, 1)});
  ASSERT_TRUE(plan.ok());
  auto created = provider->Create("slurm_job", plan.value().planned);
  ASSERT_TRUE(created.ok()) << created.error().message;
  const ValueMap& a = created.value().attributes;
  EXPECT_EQ(a.at("status").as_string(), "succeeded");
  EXPECT_EQ(a.at("exit_code").as_number(), 0);
  EXPECT_EQ(a.at("attempts").as_number(), 1);
  EXPECT_EQ(a.at("node").as_string(), "gpu1");
  EXPECT_EQ(a.at("slurm_job_id").as_string(), "42");
  EXPECT_EQ(a.at("started_at").kind(), Value::Kind::String);
  // The state never holds the value: a keyed digest stands for it.
  const Value& sec = a.at("secret_env").as_object().at("TOKEN");
  EXPECT_EQ(sec.as_string().rfind("hmac:", 0), 0u);
  std::string argv = Slurp("sbatch.argv");
  EXPECT_NE(argv.find("--partition=gpu"), std::string::npos) << argv;
  EXPECT_NE(argv.find("--gpus=1"), std::string::npos) << argv;
  EXPECT_EQ(argv.find("s3cret-value"), std::string::npos) << "a secret value reached sbatch's argv";
  EXPECT_NE(Slurp("sbatch.env").find("TOKEN=s3cret-value"), std::string::npos);
  EXPECT_EQ(Slurp("sbatch.stdin").find("s3cret-value"), std::string::npos);
  ValueMap state = provider->StateValues("slurm_job", plan.value().planned);
  EXPECT_EQ(state.at("secret_env").ToString(true).find("s3cret-value"), std::string::npos);
  // Read maps Slurm's state; a finished job is not cancelled by Delete.
  auto read = provider->Read("slurm_job", created.value().id, a);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_EQ(read.value()->attributes.at("status").as_string(), "succeeded");
  ASSERT_TRUE(provider->Delete("slurm_job", created.value().id, a).ok());
  EXPECT_FALSE(fs::exists(dir / "scancel.calls")) << "a finished job is not cancelled";
}

TEST_F(SlurmProviderTest, AfterBecomesAfterokAndAFailedJobFailsTheApply) {
  ValueMap pool = PlannedPool("gpu");
  ValueMap config = JobConfig(pool, 1);
  config["after"] = Value::List({Value::Object({{"address", Value::String("slurm_job.prep")},
                                                {"name", Value::String("prep")},
                                                {"id", Value::String("gpu/prep-0123456789")},
                                                {"slurm_job_id", Value::String("41")}})});
  config["retries"] = Value::Object({{"infrastructure", Value::Number(0)}, {"program", Value::Number(1)}});
  EXPECT_TRUE(provider->Validate("slurm_job", config).empty());
  auto plan = provider->PlanChange(PlanRequest{"slurm_job", nullptr, config});
  ASSERT_TRUE(plan.ok());
  std::ofstream(dir / "job.state") << "FAILED\n";
  std::ofstream(dir / "job.exit") << "3:0\n";
  auto created = provider->Create("slurm_job", plan.value().planned);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message.find("failed after 2 runs (exit code 3 (FAILED)"), std::string::npos)
      << created.error().message;
  EXPECT_NE(Slurp("sbatch.argv").find("--dependency=afterok:41"), std::string::npos) << Slurp("sbatch.argv");
}

TEST_F(SlurmProviderTest, WaitFalseRecordsTheJobAsSubmittedAndDeleteCancelsIt) {
  ValueMap config = JobConfig(PlannedPool("gpu"), 1);
  config["wait"] = Value::Bool(false);
  std::ofstream(dir / "job.state") << "RUNNING\n";
  auto plan = provider->PlanChange(PlanRequest{"slurm_job", nullptr, config});
  ASSERT_TRUE(plan.ok());
  auto created = provider->Create("slurm_job", plan.value().planned);
  ASSERT_TRUE(created.ok()) << created.error().message;
  const ValueMap& a = created.value().attributes;
  EXPECT_EQ(a.at("status").as_string(), "running");
  EXPECT_TRUE(a.at("exit_code").is_null());
  EXPECT_TRUE(a.at("finished_at").is_null());
  ASSERT_TRUE(provider->Delete("slurm_job", created.value().id, a).ok());
  EXPECT_EQ(Slurp("scancel.calls"), "42\n");
}

TEST_F(SlurmProviderTest, AStopEndsTheWaitAndRecordsTheJobAsItIs) {
  std::atomic<bool> stop{true};  // as after the first Ctrl-C
  SlurmSettings s;
  s.client.path_list = dir.string() + ":/usr/bin:/bin";
  s.workspace_key = dir / "workspace.key";
  s.stop = &stop;
  SlurmProvider stopped(std::move(s));
  std::ofstream(dir / "job.state") << "RUNNING\n";
  auto plan = stopped.PlanChange(PlanRequest{"slurm_job", nullptr, JobConfig(PlannedPool("gpu"), 1)});
  ASSERT_TRUE(plan.ok());
  auto created = stopped.Create("slurm_job", plan.value().planned);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_EQ(created.value().attributes.at("status").as_string(), "running");
  EXPECT_EQ(created.value().attributes.at("slurm_job_id").as_string(), "42");
  EXPECT_FALSE(fs::exists(dir / "scancel.calls")) << "stopping the wait must not cancel the job";
}

TEST(SlurmParseTest, ReadsPartitionsGresAndSuspendTime) {
  auto parts = slurm::ParseScontrolPartitions(
      "PartitionName=gpu AllowGroups=ALL Nodes=gpu[1-3] State=UP TotalCPUs=3 TotalNodes=3\n");
  ASSERT_EQ(parts.size(), 1u);
  EXPECT_EQ(parts[0].nodes, "gpu[1-3]");
  EXPECT_EQ(parts[0].total_nodes, 3);
  EXPECT_EQ(parts[0].state, "UP");
  auto g = slurm::ParseGresGpus("gpu:H100:2(S:0-1)");
  EXPECT_EQ(g.count, 2);
  EXPECT_EQ(g.type, "H100");
  g = slurm::ParseGresGpus("gpu:H100:2,gpu:A100:1");
  EXPECT_EQ(g.count, 3);
  EXPECT_EQ(g.type, "");
  EXPECT_EQ(slurm::ParseGresGpus("gpu:4").count, 4);
  EXPECT_EQ(slurm::ParseGresGpus("(null)").count, 0);
  EXPECT_EQ(slurm::ParseSuspendTime("SuspendTimeout          = 30 sec\nSuspendTime             = 5 sec\n"),
            5);
  EXPECT_FALSE(slurm::ParseSuspendTime("SuspendTime             = NONE\n"));
}

}  // namespace
}  // namespace plinth::runtime
