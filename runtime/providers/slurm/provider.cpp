#include "runtime/providers/slurm/provider.h"

#include <algorithm>
#include <ctime>
#include <map>

#include "runtime/providers/local/compute.h"
#include "runtime/providers/local/packages.h"
#include "runtime/providers/slurm/schema.h"
#include "runtime/slurm/hostlist.h"
#include "runtime/slurm/patch.h"
#include "runtime/storage/keys.h"

namespace plinth::runtime {
namespace {

constexpr const char* kPool = "slurm_pool";
constexpr const char* kJob = "slurm_job";

const Value* Find(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool KnownString(const Value* v) {
  return v && v->kind() == Value::Kind::String;
}

std::string Str(const ValueMap& m, const std::string& key) {
  const Value* v = Find(m, key);
  return KnownString(v) ? v->as_string() : "";
}

std::optional<int64_t> KnownInt(const Value* v) {
  if (!v || v->kind() != Value::Kind::Number || !v->is_integer()) return std::nullopt;
  return static_cast<int64_t>(v->as_number());
}

bool SameValue(const Value* a, const Value* b) {
  bool an = !a || a->is_null(), bn = !b || b->is_null();
  if (an || bn) return an == bn;
  if (a->ContainsUnknown() || b->ContainsUnknown()) return false;
  return a->Equals(*b);
}

ProviderError Fail(std::string message) {
  return ProviderError{std::move(message), false};
}

ProviderError UnknownType(const std::string& type) {
  return Fail("the slurm provider has no resource type '" + type + "' (it has slurm_pool and slurm_job)");
}

// "slurm_job.a" from "module.m.slurm_job.a[0]": the type segment.
std::string TypeOfAddress(std::string a) {
  if (auto bracket = a.find('['); bracket != std::string::npos) a = a.substr(0, bracket);
  auto last = a.rfind('.');
  if (last == std::string::npos || last == 0) return "";
  auto before = a.rfind('.', last - 1);
  size_t from = before == std::string::npos ? 0 : before + 1;
  return a.substr(from, last - from);
}

std::string Plural(int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// Slurm's time text ("2026-12-05T11:43:44", the controller's local time)
// as RFC 3339 in UTC; null when unset ("Unknown", "None", "").
Value SlurmTime(const std::string& text) {
  std::tm tm{};
  if (text.size() < 19 || !strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return Value();
  tm.tm_isdst = -1;
  std::time_t t = std::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) return Value();
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return Value::String(buf);
}

bool HasFlag(const std::string& state, const std::string& flag) {
  size_t start = 0;
  while (start <= state.size()) {
    size_t end = state.find('+', start);
    if (state.compare(start, end == std::string::npos ? std::string::npos : end - start, flag) == 0 &&
        (end == std::string::npos ? state.size() - start : end - start) == flag.size())
      return true;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return false;
}

bool PoweredUp(const slurm::SlurmNode& n) {
  return !HasFlag(n.state, "POWERED_DOWN") && !HasFlag(n.state, "DOWN") && !HasFlag(n.state, "POWERING_UP");
}

// The job's computed values from what Slurm reports of its last submission.
void ApplySlurmJob(ValueMap& attrs, const slurm::SlurmJob& job) {
  slurm::Classified c = slurm::Classify(job);
  attrs["status"] = Value::String(compute::JobStatusName(c.status));
  attrs["reason"] = Value::String(c.reason);
  attrs["node"] = Value::String(job.nodes == "(null)" ? "" : job.nodes);
  attrs["exit_code"] =
      compute::IsTerminal(c.status) && job.signal == 0 && c.status != compute::JobStatus::kCancelled
          ? Value::Number(job.exit_code)
          : Value();
  attrs["started_at"] = SlurmTime(job.start_time);
  attrs["finished_at"] = compute::IsTerminal(c.status) ? SlurmTime(job.end_time) : Value();
  attrs["slurm_job_id"] = Value::String(job.id);
}

const char* const kJobComputed[] = {"status", "exit_code",  "attempts",    "node",
                                    "reason", "started_at", "finished_at", "slurm_job_id"};
const char* const kPoolComputed[] = {"max_nodes",     "cpus_per_node", "memory_per_node",
                                     "gpus_per_node", "gpu_type",      "max_gpus",
                                     "idle",          "placement",     "nodes"};

Type PoolComputedType(const std::string& name) {
  if (name == "memory_per_node") return Type::Size();
  if (name == "gpu_type") return Type::String();
  if (name == "idle") return Type::Duration();
  if (name == "placement") return Type::List(Type::String());
  return Type::Int();
}

// A job's `after` entries as kept in planned values: {name, id, slurm_job_id}.
Value AfterIdentity(const Value& list) {
  if (list.kind() != Value::Kind::List) return list;
  ValueList out;
  for (const Value& ref : list.as_list()) {
    if (ref.kind() != Value::Kind::Object) {
      out.push_back(ref);
      continue;
    }
    ValueMap o;
    for (const char* k : {"name", "id", "slurm_job_id"})
      if (const Value* v = Find(ref.as_object(), k)) o[k] = *v;
    out.push_back(Value::Object(std::move(o)));
  }
  return Value::List(std::move(out));
}

}  // namespace

SlurmProvider::SlurmProvider(SlurmSettings settings) : settings_(std::move(settings)) {}

const SchemaSource& SlurmProvider::Schemas() const {
  return SlurmProviderSchemas();
}

// ----------------------------------------------------------------- validate

std::vector<std::string> SlurmProvider::Validate(const std::string& type, const ValueMap& config) const {
  std::vector<std::string> errs;
  if (type == kPool) {
    const Value* p = Find(config, "partition");
    if (KnownString(p)) {
      const std::string& name = p->as_string();
      if (name.empty() || name.find_first_of(" \t\n,=") != std::string::npos)
        errs.push_back("partition \"" + name +
                       "\" is not a partition name: give one scontrol show partition lists");
    } else if ((!p || p->is_null()) && settings_.default_partition.empty()) {
      errs.push_back(
          "slurm_pool has no partition: set partition = \"NAME\" (scontrol show partition lists them), or "
          "partition in the provider \"slurm\" { } block");
    }
    compute_config::ValidatePatch(config, errs);
    return errs;
  }
  if (type != kJob) return errs;
  // The local job's checks, without the parts that differ here: the pool
  // (a partition, checked below) and after (slurm_job references).
  ValueMap common = config;
  common.erase("pool");
  common.erase("after");
  errs = compute_config::ValidateJob(common);
  std::string address = Str(config, "address");
  if (address.empty()) address = "slurm_job." + Str(config, "name");
  if (const Value* after = Find(config, "after"); after && after->kind() == Value::Kind::List) {
    for (const Value& ref : after->as_list()) {
      if (ref.is_unknown()) continue;
      std::string addr = ref.kind() == Value::Kind::Object ? Str(ref.as_object(), "address") : "";
      if (addr.empty() || TypeOfAddress(addr) != kJob)
        errs.push_back(
            "'after' takes slurm_job references, not " +
            (addr.empty() ? (ref.sensitive() ? std::string("a sensitive value") : ref.ToString()) : addr) +
            ": write after = [slurm_job.NAME]");
      else if (addr == Str(config, "address"))
        errs.push_back(address + " cannot run after itself: remove it from after");
    }
  }
  // Per-task resources against the partition's nodes, when the pool's plan read them.
  const Value* pool = Find(config, "pool");
  if (pool && pool->kind() == Value::Kind::Object) {
    const ValueMap& p = pool->as_object();
    std::string partition = Str(p, "partition");
    if (partition.empty()) partition = Str(p, "id");
    std::string where = "partition " + (partition.empty() ? std::string("?") : partition);
    auto gpus = KnownInt(Find(config, "gpus"));
    auto have_gpus = KnownInt(Find(p, "gpus_per_node"));
    if (gpus && have_gpus && *gpus > *have_gpus) {
      std::string type_text = Str(p, "gpu_type");
      errs.push_back(
          *have_gpus == 0
              ? "job asks for " + Plural(*gpus, "GPU", "GPUs") + " per task but " + where +
                    "'s nodes have no GPU (no gpu gres): set gpus = 0 or use a partition of GPU nodes"
              : "job asks for " + Plural(*gpus, "GPU", "GPUs") + " per task but " + where +
                    "'s largest node has " + std::to_string(*have_gpus) +
                    (type_text.empty() ? "" : " (" + type_text + ")") +
                    ": lower gpus or use a partition with larger nodes");
    }
    auto cpus = KnownInt(Find(config, "cpus"));
    auto have_cpus = KnownInt(Find(p, "cpus_per_node"));
    if (cpus && have_cpus && *have_cpus > 0 && *cpus > *have_cpus)
      errs.push_back("job asks for " + Plural(*cpus, "CPU", "CPUs") + " per task but " + where +
                     "'s nodes have " + std::to_string(*have_cpus) +
                     ": lower cpus or use a partition with larger nodes");
    const Value* mem = Find(config, "memory");
    const Value* have_mem = Find(p, "memory_per_node");
    if (mem && mem->kind() == Value::Kind::Size && have_mem && have_mem->kind() == Value::Kind::Size &&
        have_mem->as_number() > 0 && mem->as_number() > have_mem->as_number())
      errs.push_back("job asks for " + FormatSize(mem->as_number()) + " of memory per task but " + where +
                     "'s nodes have " + FormatSize(have_mem->as_number()) +
                     ": lower memory or use a partition with larger nodes");
  }
  return errs;
}

// --------------------------------------------------------------------- pools

std::vector<std::string> SlurmProvider::PlacementLines(const std::vector<slurm::SlurmNode>& nodes) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> groups;
  std::vector<std::string> singles;
  for (const slurm::SlurmNode& n : nodes) {
    const std::string& s = n.state;
    std::string why = n.reason.empty() ? "" : ": " + n.reason;
    if (HasFlag(s, "DRAIN") || HasFlag(s, "DRAINED") || HasFlag(s, "DRAINING")) {
      singles.push_back(n.name + ": drained (" + s + ")" + (why.empty() ? ": no reason given" : why));
      continue;
    }
    if (HasFlag(s, "DOWN") || HasFlag(s, "FAIL")) {
      singles.push_back(n.name + ": down (" + s + ")" + why);
      continue;
    }
    std::string what;
    if (HasFlag(s, "POWERED_DOWN"))
      what = "powered down (idle~), resumed when a job needs them";
    else if (HasFlag(s, "POWERING_UP"))
      what = "powering up (alloc#/idle#)";
    else if (HasFlag(s, "POWERING_DOWN"))
      what = "powering down (idle%)";
    else if (HasFlag(s, "ALLOCATED") || HasFlag(s, "MIXED") || HasFlag(s, "COMPLETING"))
      what = "allocated (running jobs)";
    else if (HasFlag(s, "IDLE"))
      what = "idle (powered up, taking jobs)";
    else
      what = s;
    if (!groups.count(what)) order.push_back(what);
    groups[what].push_back(n.name);
  }
  std::vector<std::string> out;
  for (const std::string& what : order) {
    const auto& names = groups[what];
    out.push_back(slurm::CompressHostlist(names) + ": " + what + " (" +
                  Plural(static_cast<int64_t>(names.size()), "node", "nodes") + ")");
  }
  out.insert(out.end(), singles.begin(), singles.end());
  return out;
}

std::optional<ProviderError> SlurmProvider::DescribePartition(const std::string& partition, ValueMap& attrs) {
  slurm::Client client(settings_.client);
  std::string error;
  bool missing = false;
  auto part = client.Partition(partition, &missing, &error);
  if (!part) {
    if (missing)
      return Fail(
          "slurm has no partition '" + partition +
          "' (scontrol show partition lists them): add it to slurm.conf, or set partition to one that "
          "exists");
    return Fail("cannot read slurm partition '" + partition + "': " + error);
  }
  std::vector<slurm::SlurmNode> nodes;
  if (!part->nodes.empty()) {
    auto read = client.Nodes(part->nodes, &error);
    if (!read) return Fail("cannot read the nodes of slurm partition '" + partition + "': " + error);
    nodes = std::move(*read);
  }
  auto idle = client.SuspendTime(&error);
  if (!idle && !error.empty())
    return Fail("cannot read slurm's configuration (scontrol show config): " + error);

  int64_t min_cpus = 0, min_mem = 0, max_gpus_node = 0, all_gpus = 0, up = 0;
  std::string gpu_type;
  bool mixed = false;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const slurm::SlurmNode& n = nodes[i];
    slurm::GresGpus g = slurm::ParseGresGpus(n.gres);
    if (i == 0 || n.cpus < min_cpus) min_cpus = n.cpus;
    if (i == 0 || n.real_memory_mb < min_mem) min_mem = n.real_memory_mb;
    max_gpus_node = std::max<int64_t>(max_gpus_node, g.count);
    all_gpus += g.count;
    if (g.count > 0) {
      if (gpu_type.empty() && !mixed)
        gpu_type = g.type;
      else if (g.type != gpu_type)
        mixed = true;
    }
    if (PoweredUp(n)) ++up;
  }
  if (mixed) gpu_type.clear();
  attrs["partition"] = Value::String(partition);
  attrs["max_nodes"] = Value::Number(static_cast<double>(nodes.size()));
  attrs["cpus_per_node"] = Value::Number(static_cast<double>(min_cpus));
  attrs["memory_per_node"] = Value::Size(static_cast<double>(min_mem) * 1024.0 * 1024.0);
  attrs["gpus_per_node"] = Value::Number(static_cast<double>(max_gpus_node));
  attrs["gpu_type"] = Value::String(gpu_type);
  attrs["max_gpus"] = Value::Number(static_cast<double>(all_gpus));
  attrs["idle"] = idle ? Value::Duration(static_cast<double>(*idle) * 1000.0) : Value();
  ValueList lines;
  for (std::string& l : PlacementLines(nodes)) lines.push_back(Value::String(std::move(l)));
  if (!part->state.empty() && part->state != "UP")
    lines.push_back(Value::String("partition " + partition + " is " + part->state + ": it takes no jobs"));
  attrs["placement"] = Value::List(std::move(lines));
  attrs["nodes"] = Value::Number(static_cast<double>(up));
  attrs["id"] = Value::String(partition);
  return std::nullopt;
}

Result<ResourceObject> SlurmProvider::WritePool(const ValueMap& planned) {
  std::string partition = Str(planned, "partition");
  if (partition.empty()) return Fail("the pool's partition is not known");
  ValueMap attrs = planned;
  if (auto err = DescribePartition(partition, attrs)) return *err;
  // The patch plan the leading controller follows (runtime/slurm/patch.h); none without a patch block.
  slurm::SlurmPatchPlan plan;
  std::string error;
  if (!compute_config::PatchFromPlanned(planned, &plan.patch, &error))
    return Fail("cannot apply the pool's patch: " + error);
  if (plan.patch.empty()) {
    if (!settings_.compute_dir.empty()) slurm::RemovePatchPlan(settings_.compute_dir, partition);
    return ResourceObject{partition, std::move(attrs)};
  }
  if (settings_.compute_dir.empty()) return Fail("the pool's patch needs a workspace (no compute directory)");
  if (!compute_config::ResolvePatchCommands(&plan.patch, settings_.config_dir, partition, &error)) return Fail(error);
  plan.pool = Str(planned, "address").empty() ? std::string(kPool) + "." + Str(planned, "name")
                                               : Str(planned, "address");
  plan.partition = partition;
  plan.client = settings_.client;
  if (!slurm::WritePatchPlan(settings_.compute_dir, plan, &error)) return Fail(error);
  return ResourceObject{partition, std::move(attrs)};
}

// ---------------------------------------------------------------------- plan

Result<PlanResponse> SlurmProvider::PlanChange(const PlanRequest& request) {
  const ValueMap* prior = request.prior;
  PlanResponse r;
  r.planned = request.config;
  ValueMap& p = r.planned;
  if (request.type == kPool) {
    Value& part = p["partition"];
    if (part.is_null() && !settings_.default_partition.empty())
      part = Value::String(settings_.default_partition);
    if (prior && !SameValue(&part, Find(*prior, "partition"))) r.replace_because.push_back("partition");
    // The patch's window keeps the settings the controller decides by.
    if (const Value* cp = Find(request.config, "patch"); cp && cp->kind() == Value::Kind::Object) {
      if (auto it = p.find("patch"); it != p.end() && it->second.kind() == Value::Kind::Object) {
        ValueMap o = it->second.as_object();
        packages::NormalizeWindowReference(cp->as_object(), o);
        it->second = Value::Object(std::move(o));
      }
    }
    bool keep_prior = prior && r.replace_because.empty() && KnownString(&part);
    if (keep_prior) {
      // The values the last refresh read: node states change all the time,
      // and a plan shows what the configuration changes, not that.
      for (const char* k : kPoolComputed) {
        const Value* v = Find(*prior, k);
        p[k] = v ? *v : Value();
      }
      p["id"] = Value::String(part.as_string());
    } else if (KnownString(&part)) {
      if (auto err = DescribePartition(part.as_string(), p)) return *err;
    } else {
      for (const char* k : kPoolComputed) p[k] = Value::Unknown(PoolComputedType(k));
      p["id"] = Value::Unknown(Type::String());
    }
    return r;
  }
  if (request.type != kJob) return UnknownType(request.type);

  compute_config::NormalizeJobReferences(request.config, p);
  p.erase("principal");  // no bucket grants on Slurm
  if (const Value* after = Find(request.config, "after")) p["after"] = AfterIdentity(*after);

  if (prior) {
    const ResourceSchema* schema = nullptr;
    static const std::vector<ResourceSchema> schemas = SlurmProviderSchemas().ResourceSchemas();
    for (const ResourceSchema& s : schemas)
      if (s.type == kJob) schema = &s;
    for (const auto& a : schema->body.attributes) {
      if (!a.force_new) continue;
      const Value& c = p[a.name];
      const Value* pv = Find(*prior, a.name);
      bool differs;
      if (a.name == "after") {
        differs = compute_config::RefListsDiffer(c, pv);
      } else if (a.name == "pool") {
        const Value* ci = c.kind() == Value::Kind::Object ? Find(c.as_object(), "id") : nullptr;
        const Value* pi = pv && pv->kind() == Value::Kind::Object ? Find(pv->as_object(), "id") : nullptr;
        differs = !KnownString(ci) || !SameValue(ci, pi);
      } else if (a.name == "secret_env") {
        std::optional<crypto::Key> key;
        if (compute_config::HoldsSecretDigests(pv)) {
          auto ws = storage::LoadWorkspaceKey(settings_.workspace_key, /*create=*/false);
          if (ws.ok()) key = ws.value().key;
        }
        differs = compute_config::SecretEnvDiffers(c, pv, key ? &*key : nullptr, Str(p, "address"));
      } else {
        differs = c.ContainsUnknown() || !SameValue(&c, pv);
      }
      if (differs) r.replace_because.push_back(a.name);
    }
    const Value* cr = Find(p, "retries");
    if (cr && (cr->ContainsUnknown() || !SameValue(cr, Find(*prior, "retries"))))
      r.replace_because.push_back("retries");
  }
  bool keep_prior = prior && r.replace_because.empty();
  compute_config::PlanJob(p);
  // workdir and output are Slurm's, not in the shared canonical form: they
  // join the id's input here, so a changed one is a new id.
  if (const Value* id = Find(p, "id"); KnownString(id)) {
    auto canonical = compute_config::CanonicalJobJson(p);
    const Value* pool = Find(p, "pool");
    std::string pool_id = pool && pool->kind() == Value::Kind::Object ? Str(pool->as_object(), "id") : "";
    const Value* wd = Find(p, "workdir");
    const Value* out = Find(p, "output");
    if (canonical && ((wd && wd->is_unknown()) || (out && out->is_unknown())))
      p["id"] = Value::Unknown(Type::String());
    else if (canonical)
      p["id"] = Value::String(compute_config::JobId(
          pool_id, Str(p, "address"), Str(p, "name"),
          *canonical + "\nworkdir=" + Str(p, "workdir") + "\noutput=" + Str(p, "output")));
  }
  if (keep_prior) {
    if (const Value* v = Find(*prior, "secret_env")) p["secret_env"] = *v;
    if (const Value* v = Find(*prior, "id"); KnownString(v)) p["id"] = *v;
  }
  static const std::map<std::string, Type> computed_types = {
      {"status", Type::String()},      {"exit_code", Type::Int()},      {"attempts", Type::Int()},
      {"node", Type::String()},        {"reason", Type::String()},      {"started_at", Type::String()},
      {"finished_at", Type::String()}, {"slurm_job_id", Type::String()}};
  for (const auto& [k, t] : computed_types) {
    const Value* v = keep_prior ? Find(*prior, k) : nullptr;
    p[k] = v && !v->ContainsUnknown() ? *v : Value::Unknown(t);
  }
  return r;
}

std::vector<PlanConflict> SlurmProvider::CheckPlan(const std::vector<PlanItem>& items) {
  std::vector<PlanConflict> out;
  std::map<std::string, const PlanItem*> jobs;
  for (const PlanItem& item : items) {
    if (item.type != kJob || !item.planned) continue;
    const Value* id = Find(*item.planned, "id");
    if (!KnownString(id)) continue;
    auto [at, fresh] = jobs.emplace(id->as_string(), &item);
    if (fresh) continue;
    const PlanItem& first = *at->second;
    const PlanItem& change = item.existing && !first.existing ? first : item;
    const PlanItem& other = &change == &item ? first : item;
    out.push_back({{change.address, other.address},
                   change.address + " and " + other.address + " are both slurm job '" + id->as_string() +
                       "' (same pool, name and configuration); rename one of them"});
  }
  return out;
}

// ---------------------------------------------------------------------- jobs

Result<ResourceObject> SlurmProvider::CreateJob(const ValueMap& planned) {
  std::map<std::string, std::string> secrets;
  std::string error;
  auto spec = compute_config::JobSpecFromPlanned(planned, &secrets, &error);
  if (!spec) return Fail("cannot apply the job: " + error);
  auto key = storage::LoadWorkspaceKey(settings_.workspace_key, true);
  if (!key.ok()) return key.error();
  slurm::SubmitRequest req;
  req.job = *spec;
  req.partition = spec->pool;  // a slurm_pool's id is its partition
  req.output = Str(planned, "output");
  req.workdir = Str(planned, "workdir");
  req.secrets = std::move(secrets);
  if (const Value* after = Find(planned, "after"); after && after->kind() == Value::Kind::List) {
    for (const Value& ref : after->as_list()) {
      const ValueMap empty;
      const ValueMap& o = ref.kind() == Value::Kind::Object ? ref.as_object() : empty;
      std::string sid = Str(o, "slurm_job_id");
      if (sid.empty())
        return Fail("cannot submit job '" + spec->id + "': job " + Str(o, "name") +
                    " in after has no slurm job id yet; apply it first");
      req.after_slurm_ids.push_back(sid);
    }
  }
  slurm::Client client(settings_.client);
  ValueMap attrs = planned;
  std::string last_id;
  int attempts = 0;
  if (Find(planned, "wait") == nullptr || Find(planned, "wait")->kind() != Value::Kind::Bool ||
      Find(planned, "wait")->as_bool()) {
    auto run = client.RunToEnd(req, settings_.poll, std::chrono::milliseconds(0), {}, &error, settings_.stop);
    if (!run) return Fail("cannot run slurm job for '" + spec->id + "': " + error);
    last_id = run->slurm_ids.empty() ? "" : run->slurm_ids.back();
    attempts = run->state.attempts;
    const compute::JobState& s = run->state;
    attrs["status"] = Value::String(compute::JobStatusName(s.status));
    attrs["reason"] = Value::String(s.reason);
    attrs["node"] = Value::String(s.node);
    attrs["exit_code"] = compute::IsTerminal(s.status) && s.exit_code ? Value::Number(*s.exit_code) : Value();
    attrs["started_at"] = Value();
    attrs["finished_at"] = Value();
    attrs["slurm_job_id"] = Value::String(last_id);
    if (auto q = client.Query(last_id, &error)) {
      ValueMap seen = attrs;
      ApplySlurmJob(seen, *q);
      attrs["started_at"] = seen["started_at"];
      attrs["finished_at"] = seen["finished_at"];
    }
    if (s.status == compute::JobStatus::kFailed || s.status == compute::JobStatus::kCancelled) {
      std::string ids;
      for (const std::string& id : run->slurm_ids) ids += (ids.empty() ? "" : ",") + id;
      return Fail("job '" + spec->id + "' " + compute::JobStatusName(s.status) + " after " +
                  Plural(attempts, "run", "runs") + " (" +
                  (s.reason.empty() ? "no reason recorded" : s.reason) + "; slurm jobs " + ids +
                  ", sacct -j " + last_id + " shows it); the next apply submits it again");
    }
  } else {
    auto id = client.Submit(req, &error);
    if (!id) return Fail("cannot submit job '" + spec->id + "': " + error);
    last_id = *id;
    attempts = 1;
    attrs["slurm_job_id"] = Value::String(last_id);
    auto q = client.Query(last_id, &error);
    if (q) {
      ApplySlurmJob(attrs, *q);
    } else {
      attrs["status"] = Value::String(compute::JobStatusName(compute::JobStatus::kPending));
      attrs["reason"] = Value::String("submitted");
      attrs["node"] = Value::String("");
      attrs["exit_code"] = attrs["started_at"] = attrs["finished_at"] = Value();
    }
  }
  attrs["attempts"] = Value::Number(attempts);
  return ResourceObject{spec->id, compute_config::WithSecretDigests(attrs, key.value().key)};
}

Result<std::optional<ResourceObject>> SlurmProvider::ReadJob(const std::string& id, const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  std::string sid = Str(prior, "slurm_job_id");
  if (sid.empty()) return Out();  // never submitted: nothing to read
  slurm::Client client(settings_.client);
  std::string error;
  auto q = client.Query(sid, &error);
  ValueMap attrs = prior;
  if (!q) {
    // A job slurmctld forgot (past MinJobAge) with no accounting to ask:
    // its record stays as last seen, so it is not run again.
    if (error.find("Invalid job id") != std::string::npos) return Out(ResourceObject{id, std::move(attrs)});
    return Fail("cannot read slurm job " + sid + " of '" + id + "': " + error);
  }
  ApplySlurmJob(attrs, *q);
  return Out(ResourceObject{id, std::move(attrs)});
}

Result<Done> SlurmProvider::DeleteJob(const ValueMap& prior) {
  std::string sid = Str(prior, "slurm_job_id");
  if (sid.empty()) return Done{};
  slurm::Client client(settings_.client);
  std::string error;
  auto q = client.Query(sid, &error);
  if (!q) return Done{};  // Slurm no longer knows it: nothing runs
  if (compute::IsTerminal(slurm::Classify(*q).status)) return Done{};
  if (!client.Cancel(sid, &error)) return Fail("cannot cancel slurm job " + sid + ": " + error);
  return Done{};
}

// ----------------------------------------------------------------- interface

Result<ResourceObject> SlurmProvider::Create(const std::string& type, const ValueMap& planned) {
  if (type == kPool) return WritePool(planned);
  if (type == kJob) return CreateJob(planned);
  return UnknownType(type);
}

Result<std::optional<ResourceObject>> SlurmProvider::Read(const std::string& type, const std::string& id,
                                                          const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  if (type == kPool) {
    ValueMap attrs = prior;
    if (auto err = DescribePartition(id, attrs)) return *err;
    return Out(ResourceObject{id, std::move(attrs)});
  }
  if (type == kJob) return ReadJob(id, prior);
  return UnknownType(type);
}

Result<ResourceObject> SlurmProvider::Update(const std::string& type, const std::string& id,
                                             const ValueMap& prior, const ValueMap& planned) {
  if (type == kPool) return WritePool(planned);
  if (type == kJob) {
    // Every configurable attribute is force-new: an update only carries the
    // run's recorded values over.
    ValueMap attrs = planned;
    for (const char* k : kJobComputed)
      if (auto it = prior.find(k); it != prior.end()) attrs[k] = it->second;
    if (auto it = prior.find("secret_env"); it != prior.end()) attrs["secret_env"] = it->second;
    return ResourceObject{id, std::move(attrs)};
  }
  return UnknownType(type);
}

Result<Done> SlurmProvider::Delete(const std::string& type, const std::string& id, const ValueMap& prior) {
  (void)id;
  if (type == kPool) {  // the partition is the cluster's: forgotten, never deleted; its patch plan goes
    if (!settings_.compute_dir.empty()) slurm::RemovePatchPlan(settings_.compute_dir, id);
    return Done{};
  }
  if (type == kJob) return DeleteJob(prior);
  return UnknownType(type);
}

ValueMap SlurmProvider::StateValues(const std::string& type, const ValueMap& attributes) {
  if (type != kJob) return attributes;
  auto it = attributes.find("secret_env");
  if (it == attributes.end() || it->second.is_null()) return attributes;
  auto key = storage::LoadWorkspaceKey(settings_.workspace_key, true);
  if (key.ok()) return compute_config::WithSecretDigests(attributes, key.value().key);
  // Without the key no digest can stand for the values: they are dropped.
  ValueMap out = attributes;
  out["secret_env"] = Value::Object(ValueMap{}).WithSensitive();
  return out;
}

Result<ResourceObject> SlurmProvider::Import(const std::string& type, const std::string& id) {
  if (type == kPool) {
    ValueMap attrs;
    if (auto err = DescribePartition(id, attrs)) return *err;
    return ResourceObject{id, std::move(attrs)};
  }
  if (type == kJob)
    return Fail("slurm jobs are not imported: declare the slurm_job and apply (an id names one run)");
  return UnknownType(type);
}

}  // namespace plinth::runtime
