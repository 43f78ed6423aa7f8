// Pools and jobs of the local provider as configuration (docs/compute.md):
// plan-time checks and their messages, planned ids and capacity, placement
// against a fake inventory, and the specs handed to the queue, with secret
// values kept out of everything but the secrets map.
#include "runtime/providers/local/compute.h"

#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>

#include "runtime/engine/engine.h"
#include "runtime/providers/local/provider.h"
#include "runtime/storage/keys.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;
namespace cc = compute_config;

using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::UpdatingGolden;
using plinth::testing::WriteFile;

Value S(const std::string& s) {
  return Value::String(s);
}
Value N(double n) {
  return Value::Number(n);
}

Value ShapeV(int cpus, const std::string& accelerators, Value memory = Value()) {
  return Value::Object({{"cpus", N(cpus)},
                        {"memory", memory},
                        {"accelerators", accelerators.empty() ? Value() : S(accelerators)},
                        {"region", Value()}});
}

// A pool's configuration as the checker hands it to the provider.
ValueMap PoolConfig(const std::string& name, ValueList shapes, ValueMap extra = {}) {
  ValueMap m = {{"name", S(name)},
                {"address", S("pool." + name)},
                {"id", Value::Unknown(Type::String())},
                {"region", Value::Object({{"name", S("east")},
                                          {"address", S("region.east")},
                                          {"path", S("/data/regions/east")}})},
                {"min_nodes", N(0)},
                {"max_nodes", N(2)},
                {"idle", Value::Duration(600000)},
                {"health", S("quick")},
                {"team", Value()},
                {"labels", Value()},
                {"shape", Value::List(std::move(shapes))}};
  for (auto& [k, v] : extra) m[k] = v;
  return m;
}

// A bucket as a reference to it carries it: its planned attributes.
Value BucketRef(const std::string& name, ValueMap grants) {
  ValueMap g;
  for (auto& [principal, access] : grants) g[principal] = Value::Object({{"access", access}});
  return Value::Object({{"name", S(name)},
                        {"address", S("bucket." + name)},
                        {"id", S("east/" + name)},
                        {"path", S("/data/regions/east/buckets/" + name)},
                        {"grant", Value::Object(std::move(g))}});
}

class ComputeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(tmp_.path().empty());
    provider_ = std::make_unique<LocalProvider>(tmp_.path() / "data", tmp_.path() / "workspace.key");
  }

  // The planned pool, with its address, as a job's reference sees it.
  Value PoolRef(const ValueMap& config) {
    auto r = provider_->PlanChange({"pool", nullptr, config, {}});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    return r.ok() ? Value::Object(r.value().planned) : Value();
  }

  ValueMap JobConfig(const std::string& name, const Value& pool, ValueMap extra = {}) {
    ValueMap m = {{"name", S(name)},
                  {"address", S("job." + name)},
                  {"id", Value::Unknown(Type::String())},
                  {"pool", pool},
                  {"command", Value::List({S("python3"), S("train.py")})},
                  {"cpus", N(1)},
                  {"memory", Value()},
                  {"gpus", N(0)},
                  {"env", Value()},
                  {"secret_env", Value()},
                  {"principal", Value()},
                  {"reads", Value()},
                  {"writes", Value()},
                  {"after", Value()},
                  {"retries", Value()},
                  {"timeout", Value()},
                  {"wait", Value::Bool(true)}};
    for (auto& [k, v] : extra) m[k] = v;
    return m;
  }

  ValueMap PlanJob(const ValueMap& config, const ValueMap* prior = nullptr,
                   std::vector<std::string>* replace = nullptr) {
    auto r = provider_->PlanChange({"job", prior, config, {}});
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) return {};
    if (replace) *replace = r.value().replace_because;
    return r.value().planned;
  }

  static std::string IdOf(const ValueMap& planned) {
    auto it = planned.find("id");
    return it != planned.end() && it->second.kind() == Value::Kind::String ? it->second.as_string()
                                                                           : "<unknown>";
  }

  TempDir tmp_{"plinth-compute-config"};
  std::unique_ptr<LocalProvider> provider_;
};

// ------------------------------------------------------------------ schemas

TEST_F(ComputeConfigTest, SchemasDeclareTheLanguageSurface) {
  const ResourceSchema* pool = nullptr;
  const ResourceSchema* job = nullptr;
  auto schemas = provider_->Schemas().ResourceSchemas();
  for (const auto& s : schemas) {
    if (s.type == "pool") pool = &s;
    if (s.type == "job") job = &s;
  }
  ASSERT_NE(pool, nullptr);
  ASSERT_NE(job, nullptr);
  const NestedBlockSchema* shape = pool->body.FindBlock("shape");
  ASSERT_NE(shape, nullptr);
  EXPECT_FALSE(shape->labeled);
  EXPECT_EQ(shape->min_items, 1u);
  EXPECT_TRUE(pool->body.FindAttribute("region")->force_new);
  EXPECT_EQ(pool->body.FindAttribute("placement")->mode, AttrMode::Computed);
  EXPECT_EQ(job->body.FindBlock("retries")->max_items, 1u);
  EXPECT_TRUE(job->body.FindAttribute("secret_env")->sensitive);
  // Every configurable attribute of a job is force-new: a changed input is a new run.
  for (const auto& a : job->body.attributes) {
    if (a.mode == AttrMode::Computed) continue;
    EXPECT_TRUE(a.force_new) << a.name;
  }
}

// ----------------------------------------------------------------- validate

TEST_F(ComputeConfigTest, PoolSanity) {
  EXPECT_TRUE(cc::ValidatePool(PoolConfig("train", {ShapeV(8, "H100:8")})).empty());
  auto errs = cc::ValidatePool(
      PoolConfig("train", {ShapeV(0, "H100:x"), ShapeV(2, "")},
                 {{"min_nodes", N(3)}, {"max_nodes", N(2)}, {"idle", Value::Duration(500)}}));
  ASSERT_EQ(errs.size(), 4u);
  EXPECT_EQ(errs[0], "min_nodes (3) is above max_nodes (2): lower min_nodes or raise max_nodes");
  EXPECT_EQ(errs[1], "idle is 500ms: nodes would be decommissioned between jobs; set idle = 1s or more");
  EXPECT_EQ(errs[2], "shape 1: cpus is 0: set cpus = 1 or more");
  std::string why;
  ASSERT_FALSE(compute::ParseAccelerators("H100:x", &why));
  EXPECT_EQ(errs[3], "shape 1: accelerators \"H100:x\": " + why);

  errs = cc::ValidatePool(PoolConfig("train", {ShapeV(1, "")}, {{"max_nodes", N(0)}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "max_nodes is 0: a pool needs at least 1 node; set max_nodes = 1 or more");
  // Unknown values are apply's to check.
  EXPECT_TRUE(
      cc::ValidatePool(PoolConfig("train", {ShapeV(1, "")}, {{"max_nodes", Value::Unknown(Type::Int())}}))
          .empty());
  // Through the provider as the engine calls it.
  EXPECT_EQ(provider_->Validate("pool", PoolConfig("train", {ShapeV(1, "")}, {{"max_nodes", N(0)}})).size(),
            1u);
}

TEST_F(ComputeConfigTest, PatchBlockIsCheckedAndBecomesThePoolsPatchSpec) {
  auto patch = [](ValueMap m) {
    ValueMap base = {{"level", S("2026-12")},
                     {"command", Value::List({S("./patch-node.sh"), S("--reboot")})},
                     {"max_unavailable", N(1)},
                     {"failure_threshold", N(1)},
                     {"timeout", Value::Duration(600000)}};
    for (auto& [k, v] : m) base[k] = v;
    return ValueMap{{"patch", Value::Object(base)}};
  };
  EXPECT_TRUE(cc::ValidatePool(PoolConfig("train", {ShapeV(1, "")}, patch({}))).empty());
  auto errs = cc::ValidatePool(PoolConfig(
      "train", {ShapeV(1, "")},
      patch({{"level", S("")}, {"command", Value::List({})}, {"failure_threshold", N(0)},
             {"timeout", Value::Duration(10)}, {"max_unavailable", S("0%")}})));
  ASSERT_EQ(errs.size(), 5u);
  EXPECT_EQ(errs[0], "patch.level is empty: give the level nodes should reach (\"2026-12\", a kernel version)");
  EXPECT_EQ(errs[1], "patch.command is empty: give the program and its arguments, e.g. [\"./patch-node.sh\"]");
  EXPECT_EQ(errs[2], "patch.failure_threshold is 0: the first failed node halts the level at 1; set 1 or more");
  EXPECT_EQ(errs[3], "patch.timeout is 10ms: set 1s or more");
  EXPECT_EQ(errs[4],
            "patch.max_unavailable is \"0%\": give a number of nodes (1) or a percentage of them from \"1%\" to "
            "\"100%\"");
  errs = cc::ValidatePool(PoolConfig("train", {ShapeV(1, "")}, patch({{"max_unavailable", N(1.5)}})));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("give a whole number of nodes"), std::string::npos) << errs[0];
  errs = cc::ValidatePool(PoolConfig("train", {ShapeV(1, "")}, patch({{"rollback_command", Value::List({})}})));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "patch.rollback_command is empty: give the program that takes a node back, e.g. "
            "[\"./unpatch-node.sh\"], or leave it out");

  std::string err;
  auto spec = cc::PoolSpecFromPlanned(
      PoolConfig("train", {ShapeV(1, "")},
                 patch({{"max_unavailable", S("25%")},
                        {"failure_threshold", N(2)},
                        {"rollback_command", Value::List({S("./unpatch-node.sh")})},
                        {"timeout", Value::Duration(90000)},
                        {"window", Value::Object({{"name", S("nightly")},
                                                  {"days", S("mon-fri")},
                                                  {"start", S("02:30")},
                                                  {"duration", Value::Duration(7200000)},
                                                  {"timezone", S("UTC")}})}})),
      &err);
  ASSERT_TRUE(spec) << err;
  EXPECT_EQ(spec->patch.level, "2026-12");
  EXPECT_EQ(spec->patch.command, (std::vector<std::string>{"./patch-node.sh", "--reboot"}));
  EXPECT_EQ(spec->patch.max_unavailable_percent, 25);
  EXPECT_EQ(spec->patch.failure_threshold, 2);
  EXPECT_EQ(spec->patch.rollback_command, (std::vector<std::string>{"./unpatch-node.sh"}));
  EXPECT_EQ(spec->patch.timeout_ms, 90000);
  ASSERT_TRUE(spec->patch.window);
  EXPECT_EQ(spec->patch.window->name, "nightly");
  EXPECT_EQ(spec->patch.window->window.start_minute, 150);
  EXPECT_EQ(spec->patch.window->window.duration_s, 7200);
  EXPECT_EQ(spec->patch.window->window.weekdays, (std::vector<int>{1, 2, 3, 4, 5}));
  // 25% of 10 live nodes is 3 (rounded up); of 2, 1; a number is taken as it is.
  EXPECT_EQ(spec->patch.Allowed(10), 3);
  EXPECT_EQ(spec->patch.Allowed(2), 1);
  compute::PatchSpec two;
  two.level = "x";
  two.max_unavailable = 2;
  EXPECT_EQ(two.Allowed(10), 2);
  // Without a patch block the pool has no patch policy.
  spec = cc::PoolSpecFromPlanned(PoolConfig("train", {ShapeV(1, "")}), &err);
  ASSERT_TRUE(spec) << err;
  EXPECT_TRUE(spec->patch.empty());
}

TEST_F(ComputeConfigTest, JobAskingMoreThanAnyShape) {
  Value pool = PoolRef(
      PoolConfig("train", {ShapeV(8, "H100:8", Value::Size(64.0 * (1ull << 30))), ShapeV(4, "A100:4")}));
  auto errs = cc::ValidateJob(JobConfig("finetune", pool, {{"gpus", N(16)}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "job asks for 16 GPUs per task but pool train's largest shape has 8 (H100:8): lower gpus or add "
            "a larger shape");
  errs = cc::ValidateJob(JobConfig("finetune", pool, {{"cpus", N(12)}, {"gpus", N(8)}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "job asks for 12 CPUs per task but pool train's largest shape has 8 (H100:8): lower cpus or add "
            "a larger shape");
  // Memory: one shape without a limit offers any amount.
  EXPECT_TRUE(cc::ValidateJob(JobConfig("finetune", pool, {{"memory", Value::Size(1e12)}})).empty());
  Value limited = PoolRef(PoolConfig("small", {ShapeV(8, "", Value::Size(16.0 * (1ull << 30)))}));
  errs = cc::ValidateJob(JobConfig("finetune", limited, {{"memory", Value::Size(32.0 * (1ull << 30))}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "job asks for 32GiB of memory per task but pool small's largest shape has 16GiB (cpu): lower "
            "memory or add "
            "a larger shape");
  // What fits passes.
  EXPECT_TRUE(cc::ValidateJob(JobConfig("finetune", pool, {{"gpus", N(8)}, {"cpus", N(8)}})).empty());
}

TEST_F(ComputeConfigTest, GpusOnAPoolWithoutGpus) {
  Value pool = PoolRef(PoolConfig("sim", {ShapeV(4, "qpu-sim:20"), ShapeV(2, "")}));
  auto errs = cc::ValidateJob(JobConfig("circuit", pool, {{"gpus", N(1)}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(
      errs[0],
      "job asks for 1 GPU per task but pool sim has no GPU shape (qpu-sim:20, cpu; a qpu-sim shape is a "
      "simulator, not a GPU): set gpus = 0 or add a shape with accelerators = \"TYPE:N\"");
  EXPECT_TRUE(cc::ValidateJob(JobConfig("circuit", pool)).empty());
}

TEST_F(ComputeConfigTest, BucketGrants) {
  Value pool = PoolRef(PoolConfig("train", {ShapeV(8, "H100:8")}));
  Value checkpoints = BucketRef("checkpoints", {{"trainer", S("read")}});
  Value datasets = BucketRef("datasets", {{"trainer", S("admin")}});
  auto errs = cc::ValidateJob(JobConfig("finetune", pool,
                                        {{"principal", S("trainer")},
                                         {"reads", Value::List({datasets})},
                                         {"writes", Value::List({checkpoints})}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "job.finetune writes bucket checkpoints, which grants 'trainer' only read: add grant \"trainer\" "
            "{ access "
            "= \"write\" } to bucket checkpoints");
  // The default principal is job.<name>; no grant at all is nothing.
  errs = cc::ValidateJob(JobConfig("finetune", pool, {{"reads", Value::List({checkpoints})}}));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "job.finetune reads bucket checkpoints, which grants 'job.finetune' nothing: add grant "
            "\"job.finetune\" { "
            "access = \"read\" } to bucket checkpoints");
  // Reading needs read, write or admin.
  EXPECT_TRUE(cc::ValidateJob(
                  JobConfig("finetune", pool,
                            {{"principal", S("trainer")}, {"reads", Value::List({checkpoints, datasets})}}))
                  .empty());
  // Grants known only after apply are apply's to check.
  Value later = Value::Object(
      {{"name", S("later")}, {"address", S("bucket.later")}, {"grant", Value::Unknown(Type::Any())}});
  EXPECT_TRUE(cc::ValidateJob(JobConfig("finetune", pool, {{"writes", Value::List({later})}})).empty());
}

TEST_F(ComputeConfigTest, ReferencesOfTheWrongTypeAndEmptyCommand) {
  Value pool = PoolRef(PoolConfig("train", {ShapeV(1, "")}));
  Value region = Value::Object({{"name", S("east")}, {"address", S("region.east")}});
  auto errs = cc::ValidateJob(JobConfig("j", pool,
                                        {{"command", Value::List({})},
                                         {"reads", Value::List({region})},
                                         {"after", Value::List({BucketRef("b", {})})}}));
  ASSERT_EQ(errs.size(), 3u);
  EXPECT_EQ(
      errs[0],
      "command is empty: give the program and its arguments, e.g. command = [\"python3\", \"train.py\"]");
  EXPECT_EQ(errs[1], "'reads' takes bucket references, not region.east: write reads = [bucket.NAME]");
  EXPECT_EQ(errs[2], "'after' takes job references, not bucket.b: write after = [job.NAME]");
}

// --------------------------------------------------------------------- plan

TEST_F(ComputeConfigTest, PoolPlanHasIdCapacityAndPlacement) {
  auto r = provider_->PlanChange(
      {"pool", nullptr, PoolConfig("train", {ShapeV(8, "H100:2"), ShapeV(8, "A100:8")}), {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  const ValueMap& p = r.value().planned;
  EXPECT_EQ(p.at("id").as_string(), "east/train");
  EXPECT_EQ(p.at("gpus_per_node").as_number(), 2);
  EXPECT_EQ(p.at("max_gpus").as_number(), 16);  // 2 nodes x the largest shape's 8
  ASSERT_EQ(p.at("placement").kind(), Value::Kind::List);
  EXPECT_EQ(p.at("placement").as_list().size(), 2u);
  EXPECT_TRUE(p.at("nodes").is_unknown());
}

TEST_F(ComputeConfigTest, PlacementAgainstAFakeInventory) {
  fs::path file = tmp_.path() / "gpus.json";
  WriteFile(
      file,
      R"({"gpus":[{"index":0,"type":"H100","memory":"80GiB"},{"index":1,"type":"H100","memory":"80GiB"}]})");
  compute::Inventory inv;
  std::string error;
  ASSERT_TRUE(compute::ReadFakeInventory(file.string(), &inv, &error)) << error;
  inv.cpus = 4;
  inv.memory_bytes = 64ull << 30;
  std::string err;
  auto spec = cc::PoolSpecFromPlanned(
      PoolConfig("train", {ShapeV(1, "H100:1"), ShapeV(1, "A100:8"), ShapeV(4, "H100:2"), ShapeV(1, "")},
                 {{"max_nodes", N(2)}}),
      &err);
  ASSERT_TRUE(spec) << err;
  auto lines = cc::PlacementLines(*spec, inv);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0], "shape 1 (H100:1 in east): ok, 2 of 2 nodes fit");
  EXPECT_EQ(lines[1], "shape 2 (A100:8 in east): skipped: this machine has no A100 (inventory: 2 fake H100)");
  EXPECT_EQ(lines[2], "shape 3 (H100:2 in east): ok, 1 of 2 nodes fits on this machine");
  EXPECT_EQ(lines[3], "shape 4 (1 CPU in east): ok, 2 of 2 nodes fit");
}

TEST_F(ComputeConfigTest, JobIdsAreStableAndFollowTheConfiguration) {
  Value pool = PoolRef(PoolConfig("train", {ShapeV(8, "H100:8")}));
  ValueMap secrets = {{"HF_TOKEN", S("s3cr3t-value")}};
  ValueMap config = JobConfig("finetune", pool, {{"secret_env", Value::Object(secrets).WithSensitive()}});
  std::string id = IdOf(PlanJob(config));
  ASSERT_EQ(id.rfind("east/train/finetune-", 0), 0u) << id;
  EXPECT_EQ(id.size(), std::string("east/train/finetune-").size() + 10);
  EXPECT_EQ(IdOf(PlanJob(config)), id);  // stable

  // Another command, address or secret name is another run; another secret value is not.
  ValueMap other = config;
  other["command"] = Value::List({S("python3"), S("train.py"), S("--epochs"), S("3")});
  EXPECT_NE(IdOf(PlanJob(other)), id);
  other = config;
  other["address"] = S("module.a.job.finetune");
  EXPECT_NE(IdOf(PlanJob(other)), id);
  other = config;
  other["secret_env"] = Value::Object({{"HF_TOKEN", S("another-value")}}).WithSensitive();
  EXPECT_EQ(IdOf(PlanJob(other)), id);
  other = config;
  other["secret_env"] = Value::Object({{"WANDB_KEY", S("s3cr3t-value")}}).WithSensitive();
  EXPECT_NE(IdOf(PlanJob(other)), id);
  EXPECT_EQ(id.find("s3cr3t"), std::string::npos);
  // The workspace's directory (a bucket's path) is not part of the id; the bucket is.
  ValueMap reading = config;
  reading["reads"] = Value::List({BucketRef("data", {{"job.finetune", S("read")}})});
  std::string reading_id = IdOf(PlanJob(reading));
  EXPECT_NE(reading_id, id);
  ValueMap elsewhere = reading;
  ValueMap moved_bucket = reading["reads"].as_list()[0].as_object();
  moved_bucket["path"] = S("/elsewhere/regions/east/buckets/data");
  elsewhere["reads"] = Value::List({Value::Object(moved_bucket)});
  EXPECT_EQ(IdOf(PlanJob(elsewhere)), reading_id);

  // A pool in another region is another pool: the job is replaced, with a new id.
  ValueMap moved_pool_config = PoolConfig("train", {ShapeV(8, "H100:8")});
  moved_pool_config["region"] = Value::Object({{"name", S("west")}, {"address", S("region.west")}});
  ValueMap moved = config;
  moved["pool"] = PoolRef(moved_pool_config);
  ValueMap prior = PlanJob(config);
  std::vector<std::string> replace;
  ValueMap replanned = PlanJob(moved, &prior, &replace);
  EXPECT_EQ(IdOf(replanned).rfind("west/train/finetune-", 0), 0u);
  EXPECT_NE(std::find(replace.begin(), replace.end(), "pool"), replace.end());
  // Unchanged: nothing to replace, the recorded run's values are kept.
  prior["status"] = S("succeeded");
  replanned = PlanJob(config, &prior, &replace);
  EXPECT_TRUE(replace.empty());
  EXPECT_EQ(IdOf(replanned), id);
  EXPECT_EQ(replanned.at("status").as_string(), "succeeded");
}

TEST_F(ComputeConfigTest, UnknownConfigurationMeansUnknownId) {
  Value pool = PoolRef(PoolConfig("train", {ShapeV(8, "H100:8")}));
  ValueMap planned =
      PlanJob(JobConfig("finetune", pool, {{"command", Value::Unknown(Type::List(Type::String()))}}));
  EXPECT_TRUE(planned.at("id").is_unknown());
  EXPECT_TRUE(planned.at("status").is_unknown());
}

TEST_F(ComputeConfigTest, JobSpecKeepsSecretsApart) {
  Value pool = PoolRef(PoolConfig("train", {ShapeV(8, "H100:8")}));
  Value prep_pool = pool;
  ValueMap prep = PlanJob(JobConfig("prep", pool));
  ValueMap prep_ref = prep;
  prep_ref["address"] = S("job.prep");
  Value data = BucketRef("data", {{"trainer", S("write")}});
  ValueMap config =
      JobConfig("finetune", pool,
                {{"principal", S("trainer")},
                 {"env", Value::Object({{"EPOCHS", S("3")}})},
                 {"secret_env", Value::Object({{"HF_TOKEN", S("s3cr3t-value")}}).WithSensitive()},
                 {"reads", Value::List({data, BucketRef("shared", {{"trainer", S("read")}})})},
                 {"writes", Value::List({data})},
                 {"after", Value::List({Value::Object(prep_ref)})},
                 {"retries", Value::Object({{"infrastructure", N(2)}, {"program", N(1)}})},
                 {"timeout", Value::Duration(7200000)},
                 {"gpus", N(2)},
                 {"memory", Value::Size(16.0 * (1ull << 30))}});
  ValueMap planned = PlanJob(config);
  std::map<std::string, std::string> secrets;
  std::string error;
  auto spec = cc::JobSpecFromPlanned(planned, &secrets, &error);
  ASSERT_TRUE(spec) << error;
  EXPECT_EQ(spec->id, IdOf(planned));
  EXPECT_EQ(spec->pool, "east/train");
  EXPECT_EQ(spec->argv, (std::vector<std::string>{"python3", "train.py"}));
  EXPECT_EQ(spec->gpus, 2);
  EXPECT_EQ(spec->memory_bytes, 16ull << 30);
  EXPECT_EQ(spec->env.at("EPOCHS"), "3");
  EXPECT_EQ(spec->secret_names, std::vector<std::string>{"HF_TOKEN"});
  EXPECT_EQ(secrets.at("HF_TOKEN"), "s3cr3t-value");
  EXPECT_EQ(spec->principal, "trainer");
  ASSERT_EQ(spec->buckets.size(), 2u);  // one entry per bucket, written if any reference writes it
  EXPECT_EQ(spec->buckets[0].name, "data");
  EXPECT_EQ(spec->buckets[0].path, "/data/regions/east/buckets/data");
  EXPECT_TRUE(spec->buckets[0].write);
  EXPECT_EQ(spec->buckets[1].name, "shared");
  EXPECT_FALSE(spec->buckets[1].write);
  EXPECT_EQ(spec->after, std::vector<std::string>{IdOf(prep)});
  EXPECT_EQ(spec->retries.infrastructure, 2);
  EXPECT_EQ(spec->retries.program, 1);
  EXPECT_EQ(spec->timeout_ms, 7200000);
  // The secret's value is nowhere but the secrets map.
  auto canonical = cc::CanonicalJobJson(planned);
  ASSERT_TRUE(canonical);
  std::string plain = *canonical + spec->id + spec->name + spec->principal;
  for (const auto& [k, v] : spec->env) plain += k + v;
  EXPECT_EQ(plain.find("s3cr3t"), std::string::npos);
  EXPECT_NE(canonical->find("HF_TOKEN"), std::string::npos);
  // Buckets enter the id by their ids, not their paths (which follow the workspace's directory).
  EXPECT_NE(canonical->find("east/data"), std::string::npos);
  EXPECT_EQ(canonical->find("/data/regions"), std::string::npos);
  // References keep only their identity in planned values.
  EXPECT_EQ(planned.at("pool").as_object().count("shape"), 0u);
  EXPECT_EQ(planned.at("writes").as_list()[0].as_object().count("grant"), 0u);
}

TEST_F(ComputeConfigTest, TheStateKeepsOnlyDigestsOfSecrets) {
  auto ws = storage::LoadWorkspaceKey(tmp_.path() / "workspace.key", /*create=*/true);
  ASSERT_TRUE(ws.ok()) << ws.error().message;
  Value pool = PoolRef(PoolConfig("train", {ShapeV(8, "H100:8")}));
  ValueMap config = JobConfig(
      "finetune", pool, {{"secret_env", Value::Object({{"HF_TOKEN", S("s3cr3t-value")}}).WithSensitive()}});
  ValueMap stored = cc::WithSecretDigests(PlanJob(config), ws.value().key);
  const Value& digest = stored.at("secret_env").as_object().at("HF_TOKEN");
  EXPECT_TRUE(digest.sensitive());
  EXPECT_EQ(digest.as_string().rfind("hmac:", 0), 0u);
  EXPECT_EQ(digest.as_string().size(), 5u + 32u);
  EXPECT_EQ(stored.at("secret_env").ToString(true).find("s3cr3t"), std::string::npos);
  EXPECT_EQ(stored.at("id").as_string(), IdOf(PlanJob(config)));

  // The same value against the digest: no change. Another value: a new run.
  std::vector<std::string> replace;
  ValueMap same = PlanJob(config, &stored, &replace);
  EXPECT_TRUE(replace.empty());
  EXPECT_TRUE(same.at("secret_env").Equals(stored.at("secret_env")));  // no change shown
  ValueMap changed = config;
  changed["secret_env"] = Value::Object({{"HF_TOKEN", S("another-value")}}).WithSensitive();
  PlanJob(changed, &stored, &replace);
  EXPECT_EQ(replace, std::vector<std::string>{"secret_env"});
  // Digests are bound to the job: another address gives another digest.
  EXPECT_NE(cc::SecretDigest(ws.value().key, "job.a", "K", "v"),
            cc::SecretDigest(ws.value().key, "job.b", "K", "v"));
  // Without the key a digest cannot be checked: a possible change.
  EXPECT_TRUE(
      cc::SecretEnvDiffers(config.at("secret_env"), &stored.at("secret_env"), nullptr, "job.finetune"));
}

TEST_F(ComputeConfigTest, PoolSpecFromPlanned) {
  auto r = provider_->PlanChange(
      {"pool",
       nullptr,
       PoolConfig("train", {ShapeV(8, "H100:8", Value::Size(32.0 * (1ull << 30))), ShapeV(4, "qpu-sim:24")},
                  {{"min_nodes", N(1)}, {"health", S("full")}, {"idle", Value::Duration(30000)}}),
       {}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  std::string error;
  auto spec = cc::PoolSpecFromPlanned(r.value().planned, &error);
  ASSERT_TRUE(spec) << error;
  EXPECT_EQ(spec->id, "east/train");
  EXPECT_EQ(spec->region, "east");
  EXPECT_EQ(spec->min_nodes, 1);
  EXPECT_EQ(spec->max_nodes, 2);
  EXPECT_EQ(spec->idle_ms, 30000);
  EXPECT_EQ(spec->health, compute::HealthGate::kFull);
  ASSERT_EQ(spec->shapes.size(), 2u);
  EXPECT_EQ(spec->shapes[0].accelerators.type, "H100");
  EXPECT_EQ(spec->shapes[0].memory_bytes, 32ull << 30);
  EXPECT_TRUE(spec->shapes[1].accelerators.IsQpuSim());
}

TEST_F(ComputeConfigTest, CheckPlanFindsTwoPoolsOrJobsWithOneId) {
  ValueMap a = {{"id", S("east/train")}};
  ValueMap b = {{"id", S("east/train")}};
  ValueMap j = {{"id", S("east/train/x-0123456789")}};
  auto conflicts = provider_->CheckPlan({{"pool.train", "pool", &a, true},
                                         {"module.m.pool.train", "pool", &b, false},
                                         {"job.x", "job", &j, false},
                                         {"module.m.job.x", "job", &j, false}});
  ASSERT_EQ(conflicts.size(), 2u);
  EXPECT_EQ(conflicts[0].message,
            "module.m.pool.train and pool.train are both pool 'east/train' (same region and name); rename "
            "one of them "
            "or place it in another region");
  EXPECT_EQ(conflicts[1].addresses[0], "module.m.job.x");
}

// The engine locates a provider's plan-time problem at the job's block.
TEST(ComputeConfigEngine, TooManyGpusIsLocatedAtTheJob) {
  TempDir dir("plinth-compute-plan");
  ASSERT_FALSE(dir.path().empty());
  WriteFile(dir.path() / "main.plinth", R"(region "east" {}

pool "train" {
  region = region.east
  shape {
    cpus         = 8
    accelerators = "H100:8"
  }
}

job "finetune" {
  pool    = pool.train
  command = ["python3", "train.py"]
  gpus    = 16
}
)");
  EngineOptions eo;
  eo.config_dir = dir.path().string();
  eo.parallelism = 1;
  SourceManager sources;
  Diagnostics diags;
  Engine engine(std::move(eo), sources, diags);
  EngineResult r = engine.Plan(false);
  ASSERT_FALSE(diags.has_errors());
  ASSERT_EQ(r.plan.problems.size(), 1u);
  const PlanProblem& p = r.plan.problems[0];
  EXPECT_EQ(p.address, "job.finetune");
  EXPECT_EQ(p.message,
            "job asks for 16 GPUs per task but pool train's largest shape has 8 (H100:8): lower gpus or add "
            "a larger shape");
  ASSERT_TRUE(p.range.valid());
  LineCol at = sources.Get(p.range.file).Position(p.range.begin);
  EXPECT_EQ(at.line, 11u);
  EXPECT_EQ(at.column, 1u);
}

// ------------------------------------------------------------------ golden

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

std::string Quote(const std::string& s) {
  return "'" + ReplaceAll(s, "'", "'\\''") + "'";
}

// One case of tests/golden/compute/NAME/: main.plinth planned by the plinth
// binary (so the fake inventory gpus.json is this process's first and only
// one), then by the engine in this process for the location of each plan
// problem. The temporary directory prints as $DIR.
std::string RunComputeCase(const fs::path& c) {
  TempDir tmp("plinth-golden-compute");
  if (tmp.path().empty()) return "cannot create a temporary directory";
  const fs::path& dir = tmp.path();
  fs::copy_file(c / "main.plinth", dir / "main.plinth");
  const fs::path out = dir / "stdout", err = dir / "stderr";
  std::string command = "cd " + Quote(dir.string()) +
                        " && PLINTH_FAKE_GPUS=" + Quote((c / "gpus.json").string()) + " NO_COLOR=1 " +
                        Quote(PLINTH_BINARY) + " plan --no-color --lock=false >" + Quote(out.string()) +
                        " 2>" + Quote(err.string()) + " </dev/null";
  int rc = std::system(command.c_str());
  std::string text = "exit: " + std::to_string(WIFEXITED(rc) ? WEXITSTATUS(rc) : -1) + "\n";
  text += "---- stdout ----\n" + ReadFile(out) + "---- stderr ----\n" + ReadFile(err);
  fs::remove(out);
  fs::remove(err);

  EngineOptions eo;
  eo.config_dir = dir.string();
  eo.parallelism = 1;
  SourceManager sources;
  Diagnostics diags;
  Engine engine(std::move(eo), sources, diags);
  EngineResult r = engine.Plan(false);
  text += "---- located problems ----\n";
  for (const PlanProblem& p : r.plan.problems) {
    std::string where = "(no location)";
    if (p.range.valid()) {
      const SourceFile& f = sources.Get(p.range.file);
      LineCol at = f.Position(p.range.begin);
      where = fs::path(f.path()).filename().string() + ":" + std::to_string(at.line) + ":" +
              std::to_string(at.column);
    }
    text += where + ": " + p.address + ": " + p.message + "\n";
  }
  return ReplaceAll(text, dir.string(), "$DIR");
}

TEST(ComputeGolden, PlanCases) {
  const fs::path root = fs::path(PLINTH_SOURCE_DIR) / "tests" / "golden" / "compute";
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  ASSERT_GE(cases.size(), 2u);
  for (const fs::path& c : cases) {
    SCOPED_TRACE(c.filename().string());
    const std::string got = RunComputeCase(c);
    EXPECT_EQ(got.find("s3cr3t"), std::string::npos);  // the sensitive variable's value
    bool expect_fail = c.filename().string().rfind("fail_", 0) == 0;
    EXPECT_EQ(expect_fail, got.find("exit: 0\n") != 0) << got;
    const fs::path expected = c / "expected.txt";
    if (UpdatingGolden()) {
      WriteFile(expected, got);
      continue;
    }
    ASSERT_TRUE(fs::exists(expected)) << "no expected.txt; run scripts/update-golden.sh";
    EXPECT_EQ(ReadFile(expected), got);
  }
}

}  // namespace
}  // namespace plinth::runtime
