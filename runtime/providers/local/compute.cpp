#include "runtime/providers/local/compute.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "kernels/qpu/memory.h"
#include "runtime/process/process.h"
#include "runtime/providers/local/packages.h"
#include "runtime/providers/local/service.h"

namespace plinth::runtime::compute_config {
namespace fs = std::filesystem;
namespace {

using json = nlohmann::json;

const Value* Find(const ValueMap& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

bool Known(const Value* v) {
  return v && !v->is_null() && !v->ContainsUnknown();
}

bool KnownString(const Value* v) {
  return v && v->kind() == Value::Kind::String;
}

std::optional<int64_t> KnownInt(const Value* v) {
  if (!v || v->kind() != Value::Kind::Number || !v->is_integer()) return std::nullopt;
  return static_cast<int64_t>(v->as_number());
}

std::string Str(const ValueMap& m, const std::string& key) {
  const Value* v = Find(m, key);
  return KnownString(v) ? v->as_string() : "";
}

// The referenced resource's address ("bucket.datasets"), or empty.
std::string AddressOf(const Value& ref) {
  if (ref.kind() != Value::Kind::Object) return "";
  return Str(ref.as_object(), "address");
}

std::string TypeOfAddress(const std::string& address) {
  // "module.a.bucket.x[0]" -> "bucket": the segment before the last name.
  std::string a = address;
  if (auto bracket = a.find('['); bracket != std::string::npos) a = a.substr(0, bracket);
  auto last = a.rfind('.');
  if (last == std::string::npos) return "";
  auto before = a.rfind('.', last - 1);
  return a.substr(before == std::string::npos ? 0 : before + 1,
                  last - (before == std::string::npos ? 0 : before + 1));
}

std::string Plural(int64_t n, const std::string& one, const std::string& many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// A shape as planned or configured: accelerators parsed when they can be.
struct ShapeView {
  size_t index = 0;  // 1-based
  std::optional<int64_t> cpus;
  std::optional<uint64_t> memory;  // nullopt: unset or unknown
  bool memory_unset = false;
  std::optional<compute::Accelerators> acc;  // nullopt: unknown or invalid
  std::string acc_text;
};

std::vector<ShapeView> Shapes(const ValueMap& m) {
  std::vector<ShapeView> out;
  const Value* list = Find(m, "shape");
  if (!list || list->kind() != Value::Kind::List) return out;
  for (const Value& item : list->as_list()) {
    ShapeView s;
    s.index = out.size() + 1;
    if (item.kind() == Value::Kind::Object) {
      const ValueMap& o = item.as_object();
      s.cpus = KnownInt(Find(o, "cpus"));
      const Value* mem = Find(o, "memory");
      if (!mem || mem->is_null())
        s.memory_unset = true;
      else if (mem->kind() == Value::Kind::Size)
        s.memory = static_cast<uint64_t>(std::max(0.0, mem->as_number()));
      const Value* acc = Find(o, "accelerators");
      if (!acc || acc->is_null()) {
        s.acc = compute::Accelerators{};
      } else if (KnownString(acc)) {
        s.acc_text = acc->as_string();
        std::string why;
        s.acc = compute::ParseAccelerators(acc->as_string(), &why);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

int GpusOf(const compute::Accelerators& a) {
  return a.IsQpuSim() ? 0 : a.count;
}

// The identity of a reference kept in planned values.
Value RefIdentity(const Value& ref, bool with_path) {
  if (ref.kind() != Value::Kind::Object) return ref;
  const ValueMap& o = ref.as_object();
  ValueMap out;
  if (const Value* n = Find(o, "name")) out["name"] = *n;
  if (const Value* id = Find(o, "id")) out["id"] = *id;
  if (with_path) {
    if (const Value* p = Find(o, "path")) out["path"] = *p;
  }
  return Value::Object(std::move(out));
}

std::string Hex(const unsigned char* d, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += digits[d[i] >> 4];
    s += digits[d[i] & 15];
  }
  return s;
}

}  // namespace

// ----------------------------------------------------------------- validate

std::vector<std::string> CheckEnvironment(const ValueMap& config) {
  std::vector<std::string> errs;
  const Value* env = Find(config, "env");
  const Value* secret = Find(config, "secret_env");
  auto check_names = [&](const Value* m, const char* attr) {
    if (!m || m->kind() != Value::Kind::Object) return;
    for (const auto& [k, v] : m->as_object()) {
      bool ok = !k.empty() && !(k[0] >= '0' && k[0] <= '9');
      for (char ch : k)
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
          ok = false;
      if (!ok)
        errs.push_back(
            std::string(attr) + " name \"" + k +
            "\" is not an environment variable name: use letters, digits and '_', not starting with a digit");
    }
  };
  check_names(env, "env");
  check_names(secret, "secret_env");
  if (env && secret && env->kind() == Value::Kind::Object && secret->kind() == Value::Kind::Object) {
    for (const auto& [k, v] : secret->as_object())
      if (env->as_object().count(k))
        errs.push_back("env and secret_env both set " + k + ": keep it in secret_env only");
  }

  return errs;
}

std::vector<std::string> CheckBucketAccess(const ValueMap& config, const std::string& address,
                                           const std::string& principal) {
  std::vector<std::string> errs;
  auto check_buckets = [&](const char* attr, bool write) {
    const Value* list = Find(config, attr);
    if (!list || list->kind() != Value::Kind::List) return;
    for (const Value& ref : list->as_list()) {
      if (ref.is_unknown()) continue;
      std::string addr = AddressOf(ref);
      if (addr.empty() || TypeOfAddress(addr) != "bucket") {
        errs.push_back(
            std::string("'") + attr + "' takes bucket references, not " +
            (addr.empty() ? (ref.sensitive() ? std::string("a sensitive value") : ref.ToString()) : addr) +
            ": write " + attr + " = [bucket.NAME]");
        continue;
      }
      if (principal.empty()) continue;
      const Value* grants = Find(ref.as_object(), "grant");
      if (!grants || grants->ContainsUnknown()) continue;
      std::string access;
      if (grants->kind() == Value::Kind::Object) {
        if (const Value* g = Find(grants->as_object(), principal); g && g->kind() == Value::Kind::Object)
          access = Str(g->as_object(), "access");
      }
      bool ok = access == "admin" || access == "write" || (!write && access == "read");
      if (ok) continue;
      std::string bucket = Str(ref.as_object(), "name");
      std::string has = access.empty() ? "nothing" : "only " + access;
      errs.push_back(address + (write ? " writes" : " reads") + " bucket " + bucket + ", which grants '" +
                     principal + "' " + has + ": add grant \"" + principal + "\" { access = \"" +
                     (write ? "write" : "read") + "\" } to bucket " + bucket);
    }
  };
  check_buckets("reads", false);
  check_buckets("writes", true);
  return errs;
}

void ValidatePatch(const ValueMap& config, std::vector<std::string>& errs) {
  if (const Value* patch = Find(config, "patch"); patch && patch->kind() == Value::Kind::Object) {
    const ValueMap& o = patch->as_object();
    if (const Value* l = Find(o, "level"); KnownString(l) && l->as_string().empty())
      errs.push_back("patch.level is empty: give the level nodes should reach (\"2026-12\", a kernel version)");
    if (const Value* c = Find(o, "command"); c && c->kind() == Value::Kind::List) {
      if (c->as_list().empty())
        errs.push_back("patch.command is empty: give the program and its arguments, e.g. [\"./patch-node.sh\"]");
      else if (KnownString(&c->as_list()[0]) && c->as_list()[0].as_string().empty())
        errs.push_back("patch.command starts with an empty program name");
    }
    if (const Value* c = Find(o, "rollback_command"); c && c->kind() == Value::Kind::List) {
      if (c->as_list().empty())
        errs.push_back(
            "patch.rollback_command is empty: give the program that takes a node back, e.g. [\"./unpatch-node.sh\"], "
            "or leave it out");
      else if (KnownString(&c->as_list()[0]) && c->as_list()[0].as_string().empty())
        errs.push_back("patch.rollback_command starts with an empty program name");
    }
    if (auto t = KnownInt(Find(o, "failure_threshold")); t && *t < 1)
      errs.push_back("patch.failure_threshold is " + std::to_string(*t) +
                     ": the first failed node halts the level at 1; set 1 or more");
    if (const Value* t = Find(o, "timeout"); t && t->kind() == Value::Kind::Duration && t->as_number() < 1000)
      errs.push_back("patch.timeout is " + FormatDuration(t->as_number()) + ": set 1s or more");
    if (const Value* m = Find(o, "max_unavailable"); m && !m->is_null() && !m->is_unknown()) {
      if (m->kind() == Value::Kind::Number) {
        if (!m->is_integer() || m->as_number() < 1)
          errs.push_back("patch.max_unavailable is " + m->ToString() +
                         ": give a whole number of nodes (1 or more) or a percentage of them (\"25%\")");
      } else if (m->kind() == Value::Kind::String) {
        auto pct = service_config::ParsePercent(m->as_string());
        if (!pct || *pct < 1)
          errs.push_back("patch.max_unavailable is \"" + m->as_string() +
                         "\": give a number of nodes (1) or a percentage of them from \"1%\" to \"100%\"");
      } else {
        errs.push_back("patch.max_unavailable must be a number of nodes (1) or a percentage of them (\"25%\")");
      }
    }
  }
}

std::vector<std::string> ValidatePool(const ValueMap& config) {
  std::vector<std::string> errs;
  auto min = KnownInt(Find(config, "min_nodes"));
  auto max = KnownInt(Find(config, "max_nodes"));
  if (min && *min < 0) errs.push_back("min_nodes is " + std::to_string(*min) + ": it must be 0 or more");
  if (max && *max < 1)
    errs.push_back("max_nodes is " + std::to_string(*max) +
                   ": a pool needs at least 1 node; set max_nodes = 1 or more");
  if (min && max && *max >= 1 && *min > *max)
    errs.push_back("min_nodes (" + std::to_string(*min) + ") is above max_nodes (" + std::to_string(*max) +
                   "): lower min_nodes or raise max_nodes");
  if (const Value* idle = Find(config, "idle");
      idle && idle->kind() == Value::Kind::Duration && idle->as_number() < 1000)
    errs.push_back("idle is " + FormatDuration(idle->as_number()) +
                   ": nodes would be decommissioned between jobs; set idle = 1s or more");
  if (const Value* r = Find(config, "health_recheck");
      r && r->kind() == Value::Kind::Duration && r->as_number() < 10000)
    errs.push_back("health_recheck is " + FormatDuration(r->as_number()) +
                   ": a probe that often keeps GPUs from work; set health_recheck = 10s or more");
  ValidatePatch(config, errs);
  for (const ShapeView& s : Shapes(config)) {
    std::string at = "shape " + std::to_string(s.index);
    if (s.cpus && *s.cpus < 1)
      errs.push_back(at + ": cpus is " + std::to_string(*s.cpus) + ": set cpus = 1 or more");
    if (s.memory && *s.memory == 0)
      errs.push_back(at + ": memory must be greater than zero; leave it unset for no limit");
    if (!s.acc_text.empty() && !s.acc) {
      std::string why;
      compute::ParseAccelerators(s.acc_text, &why);
      errs.push_back(at + ": accelerators \"" + s.acc_text + "\": " + why);
    }
  }
  return errs;
}

std::vector<std::string> ValidateJob(const ValueMap& config) {
  std::vector<std::string> errs;
  std::string address = Str(config, "address");
  if (address.empty()) address = "job." + Str(config, "name");

  if (const Value* c = Find(config, "command"); c && c->kind() == Value::Kind::List) {
    if (c->as_list().empty())
      errs.push_back(
          "command is empty: give the program and its arguments, e.g. command = [\"python3\", \"train.py\"]");
    else if (KnownString(&c->as_list()[0]) && c->as_list()[0].as_string().empty())
      errs.push_back("command's program (its first element) is empty");
  }
  auto cpus = KnownInt(Find(config, "cpus"));
  auto gpus = KnownInt(Find(config, "gpus"));
  const Value* mem = Find(config, "memory");
  std::optional<uint64_t> memory;
  if (mem && mem->kind() == Value::Kind::Size)
    memory = static_cast<uint64_t>(std::max(0.0, mem->as_number()));
  if (cpus && *cpus < 1) errs.push_back("cpus is " + std::to_string(*cpus) + ": a task needs at least 1 CPU");
  if (gpus && *gpus < 0) errs.push_back("gpus is " + std::to_string(*gpus) + ": set gpus = 0 or more");
  if (memory && *memory == 0)
    errs.push_back("memory must be greater than zero; leave it unset for the node's share");
  if (const Value* t = Find(config, "timeout");
      t && t->kind() == Value::Kind::Duration && t->as_number() <= 0)
    errs.push_back("timeout must be greater than zero; leave it unset for none");
  if (const Value* r = Find(config, "retries"); r && r->kind() == Value::Kind::Object) {
    for (const char* k : {"infrastructure", "program"}) {
      if (auto n = KnownInt(Find(r->as_object(), k)); n && *n < 0)
        errs.push_back(std::string("retries.") + k + " is " + std::to_string(*n) + ": set it to 0 or more");
    }
  }
  if (const Value* p = Find(config, "principal"); KnownString(p) && p->as_string().empty())
    errs.push_back("principal is empty: leave it unset for \"job.<name>\" or name who the job acts as");

  for (std::string& e : CheckEnvironment(config)) errs.push_back(std::move(e));

  // Per-task resources against the pool's shapes.
  const Value* pool = Find(config, "pool");
  if (pool && pool->kind() == Value::Kind::Object) {
    const ValueMap& p = pool->as_object();
    std::string pool_name = Str(p, "name");
    std::vector<ShapeView> shapes = Shapes(p);
    bool all_known = !shapes.empty();
    for (const ShapeView& s : shapes)
      if (!s.acc || !s.cpus || (!s.memory && !s.memory_unset)) all_known = false;
    if (all_known) {
      const ShapeView* most_gpus = nullptr;
      const ShapeView* most_cpus = nullptr;
      const ShapeView* most_memory = nullptr;
      bool memory_unlimited = false;
      std::vector<std::string> kinds;
      for (const ShapeView& s : shapes) {
        if (!most_gpus || GpusOf(*s.acc) > GpusOf(*most_gpus->acc)) most_gpus = &s;
        if (!most_cpus || *s.cpus > *most_cpus->cpus) most_cpus = &s;
        if (s.memory_unset)
          memory_unlimited = true;
        else if (!most_memory || *s.memory > *most_memory->memory)
          most_memory = &s;
        kinds.push_back(compute::DescribeAccelerators(*s.acc));
      }
      auto describe = [](const ShapeView& s) {
        return s.acc->empty() ? std::string("cpu") : compute::DescribeAccelerators(*s.acc);
      };
      if (gpus && *gpus > 0) {
        int have = GpusOf(*most_gpus->acc);
        if (have == 0) {
          std::string list;
          for (size_t i = 0; i < shapes.size(); ++i) list += (i ? ", " : "") + describe(shapes[i]);
          errs.push_back(
              "job asks for " + Plural(*gpus, "GPU", "GPUs") + " per task but pool " + pool_name +
              " has no GPU shape (" + list +
              (std::any_of(shapes.begin(), shapes.end(), [](const ShapeView& s) { return s.acc->IsQpuSim(); })
                   ? "; a qpu-sim shape is a simulator, not a GPU"
                   : "") +
              "): set gpus = 0 or add a shape with accelerators = \"TYPE:N\"");
        } else if (*gpus > have) {
          errs.push_back("job asks for " + Plural(*gpus, "GPU", "GPUs") + " per task but pool " + pool_name +
                         "'s largest shape has " + std::to_string(have) + " (" + describe(*most_gpus) +
                         "): lower gpus or add a larger shape");
        }
      }
      if (cpus && *cpus > *most_cpus->cpus)
        errs.push_back("job asks for " + Plural(*cpus, "CPU", "CPUs") + " per task but pool " + pool_name +
                       "'s largest shape has " + std::to_string(*most_cpus->cpus) + " (" +
                       describe(*most_cpus) + "): lower cpus or add a larger shape");
      if (memory && !memory_unlimited && most_memory && *memory > *most_memory->memory)
        errs.push_back("job asks for " + FormatSize(static_cast<double>(*memory)) +
                       " of memory per task but pool " + pool_name + "'s largest shape has " +
                       FormatSize(static_cast<double>(*most_memory->memory)) + " (" + describe(*most_memory) +
                       "): lower memory or add a larger shape");
    }
  }

  std::string principal;
  if (const Value* p = Find(config, "principal"); p && !p->is_null()) {
    if (KnownString(p)) principal = p->as_string();
  } else {
    principal = "job." + Str(config, "name");
  }
  for (std::string& e : CheckBucketAccess(config, address, principal)) errs.push_back(std::move(e));
  if (const Value* after = Find(config, "after"); after && after->kind() == Value::Kind::List) {
    for (const Value& ref : after->as_list()) {
      if (ref.is_unknown()) continue;
      std::string addr = AddressOf(ref);
      if (addr.empty() || TypeOfAddress(addr) != "job")
        errs.push_back(
            "'after' takes job references, not " +
            (addr.empty() ? (ref.sensitive() ? std::string("a sensitive value") : ref.ToString()) : addr) +
            ": write after = [job.NAME]");
      else if (addr == Str(config, "address"))
        errs.push_back(address + " cannot run after itself: remove it from after");
    }
  }
  return errs;
}

// --------------------------------------------------------------------- plan

void NormalizeJobReferences(const ValueMap& config, ValueMap& planned) {
  if (const Value* pool = Find(config, "pool"); pool && pool->kind() == Value::Kind::Object) {
    ValueMap out;
    const ValueMap& o = pool->as_object();
    if (const Value* n = Find(o, "name")) out["name"] = *n;
    if (const Value* id = Find(o, "id")) {
      out["id"] = *id;
    } else {
      // A pool planned by another provider version: its id from its parts.
      const Value* r = Find(o, "region");
      const Value* rn = r && r->kind() == Value::Kind::Object ? Find(r->as_object(), "name") : nullptr;
      out["id"] = KnownString(rn) && KnownString(Find(o, "name"))
                      ? Value::String(rn->as_string() + "/" + Str(o, "name"))
                      : Value::Unknown(Type::String());
    }
    planned["pool"] = Value::Object(std::move(out));
  }
  for (const char* attr : {"reads", "writes", "after"}) {
    const Value* list = Find(config, attr);
    if (!list || list->kind() != Value::Kind::List) continue;
    ValueList out;
    for (const Value& ref : list->as_list()) out.push_back(RefIdentity(ref, std::string(attr) != "after"));
    planned[attr] = Value::List(std::move(out));
  }
  if (Value& p = planned["principal"]; p.is_null()) {
    if (const Value* n = Find(planned, "name"); KnownString(n)) p = Value::String("job." + n->as_string());
  }
}

bool RefListsDiffer(const Value& planned, const Value* prior) {
  auto ids = [](const Value* v, bool* unknown) {
    std::vector<std::string> out;
    if (!v || v->is_null()) return out;
    if (v->kind() != Value::Kind::List) {
      *unknown = true;
      return out;
    }
    for (const Value& item : v->as_list()) {
      const Value* id = item.kind() == Value::Kind::Object ? Find(item.as_object(), "id") : nullptr;
      if (!KnownString(id)) {
        *unknown = true;
        continue;
      }
      out.push_back(id->as_string());
    }
    return out;
  };
  bool unknown = false;
  auto a = ids(&planned, &unknown);
  auto b = ids(prior, &unknown);
  return unknown || a != b;
}

std::vector<std::string> PlacementLines(const compute::PoolSpec& pool, const compute::Inventory& inventory) {
  std::vector<std::string> out;
  for (size_t i = 0; i < pool.shapes.size(); ++i) {
    const compute::Shape& s = pool.shapes[i];
    std::string head = "shape " + std::to_string(i + 1) + " (" +
                       (s.accelerators.empty() ? Plural(s.cpus, "CPU", "CPUs")
                                               : compute::DescribeAccelerators(s.accelerators)) +
                       " in " + (s.region.empty() ? pool.region : s.region) + "): ";
    std::string misfit = compute::ShapeMisfit(s, inventory);
    if (!misfit.empty()) {
      out.push_back(head + "skipped: " + misfit);
      continue;
    }
    // How many nodes of this shape the machine holds at once.
    int64_t fit = pool.max_nodes;
    fit = std::min<int64_t>(fit, inventory.cpus / std::max(1, s.cpus));
    uint64_t memory = s.memory_bytes;
    if (s.accelerators.IsQpuSim())
      memory = std::max<uint64_t>(memory, qpu::StateBytes(static_cast<uint32_t>(s.accelerators.count)));
    if (memory > 0 && inventory.memory_bytes > 0)
      fit = std::min<int64_t>(fit, static_cast<int64_t>(inventory.memory_bytes / memory));
    if (!s.accelerators.empty() && !s.accelerators.IsQpuSim()) {
      int have = 0;
      for (const compute::Gpu& g : inventory.gpus)
        if (compute::GpuTypeMatches(s.accelerators.type, g.type)) ++have;
      fit = std::min<int64_t>(fit, have / s.accelerators.count);
    }
    out.push_back(head + "ok, " + std::to_string(fit) + " of " + Plural(pool.max_nodes, "node", "nodes") +
                  (fit == 1 ? " fits" : " fit") + (fit < pool.max_nodes ? " on this machine" : ""));
  }
  return out;
}

void PlanPool(ValueMap& p, const compute::Inventory& inventory) {
  const Value* region = Find(p, "region");
  const Value* rn =
      region && region->kind() == Value::Kind::Object ? Find(region->as_object(), "name") : nullptr;
  const Value* name = Find(p, "name");
  p["id"] = KnownString(rn) && KnownString(name) ? Value::String(rn->as_string() + "/" + name->as_string())
                                                 : Value::Unknown(Type::String());
  std::vector<ShapeView> shapes = Shapes(p);
  bool known = !shapes.empty();
  int max_gpus = 0;
  for (const ShapeView& s : shapes) {
    if (!s.acc)
      known = false;
    else
      max_gpus = std::max(max_gpus, GpusOf(*s.acc));
  }
  auto max_nodes = KnownInt(Find(p, "max_nodes"));
  p["gpus_per_node"] =
      !shapes.empty() && shapes[0].acc ? Value::Number(GpusOf(*shapes[0].acc)) : Value::Unknown(Type::Int());
  p["max_gpus"] = known && max_nodes ? Value::Number(static_cast<double>(*max_nodes * max_gpus))
                                     : Value::Unknown(Type::Int());
  std::string error;
  auto spec = PoolSpecFromPlanned(p, &error);
  if (!spec) {
    p["placement"] = Value::Unknown(Type::List(Type::String()));
    return;
  }
  ValueList lines;
  for (std::string& l : PlacementLines(*spec, inventory)) lines.push_back(Value::String(std::move(l)));
  p["placement"] = Value::List(std::move(lines));
}

void PlanJob(ValueMap& p) {
  std::optional<std::string> canonical = CanonicalJobJson(p);
  const Value* pool = Find(p, "pool");
  const Value* pool_id =
      pool && pool->kind() == Value::Kind::Object ? Find(pool->as_object(), "id") : nullptr;
  const Value* address = Find(p, "address");
  const Value* name = Find(p, "name");
  if (!canonical || !KnownString(pool_id) || !KnownString(address) || !KnownString(name)) {
    p["id"] = Value::Unknown(Type::String());
    return;
  }
  p["id"] = Value::String(JobId(pool_id->as_string(), address->as_string(), name->as_string(), *canonical));
}

// ---------------------------------------------------------------- to specs

bool PatchFromPlanned(const ValueMap& p, compute::PatchSpec* out, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  if (const Value* patch = Find(p, "patch"); patch && patch->kind() == Value::Kind::Object) {
    const ValueMap& o = patch->as_object();
    const Value* level = Find(o, "level");
    const Value* command = Find(o, "command");
    if (!KnownString(level) || !command || command->kind() != Value::Kind::List || command->ContainsUnknown())
      return fail("the patch's level and command are not known yet");
    out->level = level->as_string();
    for (const Value& w : command->as_list())
      if (w.kind() == Value::Kind::String) out->command.push_back(w.as_string());
    if (out->level.empty() || out->command.empty()) return fail("the patch needs a level and a command");
    if (const Value* r = Find(o, "rollback_command"); r && r->kind() == Value::Kind::List) {
      if (r->ContainsUnknown()) return fail("the patch's rollback_command is not known yet");
      for (const Value& w : r->as_list())
        if (w.kind() == Value::Kind::String) out->rollback_command.push_back(w.as_string());
    }
    if (const Value* t = Find(o, "timeout"); t && t->kind() == Value::Kind::Duration)
      out->timeout_ms = static_cast<int64_t>(t->as_number());
    if (auto t = KnownInt(Find(o, "failure_threshold"))) out->failure_threshold = static_cast<int>(*t);
    if (const Value* m = Find(o, "max_unavailable"); m && m->kind() == Value::Kind::Number) {
      out->max_unavailable = static_cast<int>(m->as_number());
    } else if (KnownString(m)) {
      auto pct = service_config::ParsePercent(m->as_string());
      if (!pct) return fail("patch.max_unavailable must be a number or a percentage");
      out->max_unavailable_percent = static_cast<int>(*pct);
    }
    if (const Value* w = Find(o, "window"); w && w->kind() == Value::Kind::Object) {
      std::string why;
      auto resolved = packages::WindowOf(w->as_object(), &why);
      if (!resolved) return fail(why);
      out->window = controller::NamedWindow{resolved->name, resolved->window, resolved->zone.name()};
    }
  }
  return true;
}

bool ResolvePatchCommands(compute::PatchSpec* patch, const fs::path& config_dir, const std::string& pool,
                          std::string* error) {
  const fs::path dir = fs::absolute(config_dir.empty() ? fs::current_path() : config_dir).lexically_normal();
  for (auto [argv, what] : {std::pair{&patch->command, "patch command"},
                            std::pair{&patch->rollback_command, "patch rollback_command"}}) {
    if (argv->empty()) continue;
    std::string& program = (*argv)[0];
    if (program.find('/') == std::string::npos) {
      const char* path = std::getenv("PATH");
      auto found = process::FindExecutable(program, path ? path : "/usr/local/bin:/usr/bin:/bin");
      if (!found) {
        *error = "pool '" + pool + "': " + what + " '" + program + "' is not found on PATH: give its path";
        return false;
      }
      program = found->string();
    } else if (fs::path(program).is_relative()) {
      program = (dir / program).lexically_normal().string();
    }
    if (::access(program.c_str(), X_OK) != 0) {
      *error = "pool '" + pool + "': " + what + " " + program +
               " is not an executable file: create it or fix the path (chmod +x)";
      return false;
    }
  }
  patch->cwd = dir.string();
  return true;
}

std::optional<compute::PoolSpec> PoolSpecFromPlanned(const ValueMap& p, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<compute::PoolSpec> {
    if (error) *error = why;
    return std::nullopt;
  };
  compute::PoolSpec s;
  const Value* region = Find(p, "region");
  const Value* rn = region && region->kind() == Value::Kind::Object ? Find(region->as_object(), "name")
                    : KnownString(region)                           ? region
                                                                    : nullptr;
  if (!KnownString(rn)) return fail("the pool's region is not known yet");
  s.region = rn->as_string();
  s.name = Str(p, "name");
  if (s.name.empty()) return fail("the pool has no name");
  s.id = s.region + "/" + s.name;
  auto min = KnownInt(Find(p, "min_nodes"));
  auto max = KnownInt(Find(p, "max_nodes"));
  if (!min || !max) return fail("min_nodes and max_nodes must be known whole numbers");
  if (*max < 1 || *min < 0 || *min > *max)
    return fail("min_nodes must be from 0 to max_nodes, and max_nodes at least 1");
  s.min_nodes = static_cast<int>(*min);
  s.max_nodes = static_cast<int>(*max);
  if (const Value* idle = Find(p, "idle"); idle && !idle->is_null()) {
    if (idle->kind() != Value::Kind::Duration) return fail("idle must be a known duration");
    s.idle_ms = static_cast<int64_t>(idle->as_number());
  }
  std::string health = Str(p, "health");
  if (health == "none")
    s.health = compute::HealthGate::kNone;
  else if (health == "full")
    s.health = compute::HealthGate::kFull;
  else if (health.empty() || health == "quick")
    s.health = compute::HealthGate::kQuick;
  else
    return fail("health must be none, quick or full");
  if (const Value* r = Find(p, "health_recheck"); r && r->kind() == Value::Kind::Duration)
    s.health_recheck_ms = static_cast<int64_t>(r->as_number());
  const Value* list = Find(p, "shape");
  if (!list || list->kind() != Value::Kind::List || list->as_list().empty())
    return fail("a pool needs at least one shape block");
  for (const Value& item : list->as_list()) {
    if (item.kind() != Value::Kind::Object || item.ContainsUnknown()) return fail("a shape is not known yet");
    const ValueMap& o = item.as_object();
    compute::Shape shape;
    auto cpus = KnownInt(Find(o, "cpus"));
    if (cpus && (*cpus < 1 || *cpus > 1 << 20)) return fail("a shape's cpus must be 1 or more");
    if (cpus) shape.cpus = static_cast<int>(*cpus);
    if (const Value* m = Find(o, "memory"); m && m->kind() == Value::Kind::Size)
      shape.memory_bytes = static_cast<uint64_t>(std::max(0.0, m->as_number()));
    if (const Value* a = Find(o, "accelerators"); KnownString(a)) {
      std::string why;
      auto acc = compute::ParseAccelerators(a->as_string(), &why);
      if (!acc) return fail("accelerators \"" + a->as_string() + "\": " + why);
      shape.accelerators = *acc;
    }
    if (const Value* r = Find(o, "region"); r && r->kind() == Value::Kind::Object)
      shape.region = Str(r->as_object(), "name");
    else if (KnownString(r))
      shape.region = r->as_string();
    s.shapes.push_back(std::move(shape));
  }
  if (!PatchFromPlanned(p, &s.patch, error)) return std::nullopt;
  return s;
}

std::optional<compute::JobSpec> JobSpecFromPlanned(const ValueMap& p,
                                                   std::map<std::string, std::string>* secrets,
                                                   std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<compute::JobSpec> {
    if (error) *error = why;
    return std::nullopt;
  };
  compute::JobSpec s;
  if (const Value* id = Find(p, "id"); KnownString(id)) s.id = id->as_string();
  s.name = Str(p, "address");
  if (s.name.empty()) s.name = Str(p, "name");
  const Value* pool = Find(p, "pool");
  const Value* pool_id =
      pool && pool->kind() == Value::Kind::Object ? Find(pool->as_object(), "id") : nullptr;
  if (!KnownString(pool_id)) return fail("the job's pool id is not known yet");
  s.pool = pool_id->as_string();
  const Value* command = Find(p, "command");
  if (!Known(command) || command->kind() != Value::Kind::List)
    return fail("the job's command is not known yet");
  for (const Value& arg : command->as_list()) {
    if (!KnownString(&arg)) return fail("the job's command must be a list of strings");
    s.argv.push_back(arg.as_string());
  }
  if (s.argv.empty()) return fail("the job's command is empty");
  auto int_of = [&](const char* key, int fallback, int* out) {
    const Value* v = Find(p, key);
    if (!v || v->is_null()) {
      *out = fallback;
      return true;
    }
    auto n = KnownInt(v);
    if (!n || *n < 0 || *n > 1 << 20) return false;
    *out = static_cast<int>(*n);
    return true;
  };
  if (!int_of("cpus", 1, &s.cpus) || s.cpus < 1)
    return fail("the job's cpus must be a known whole number from 1");
  if (!int_of("gpus", 0, &s.gpus)) return fail("the job's gpus must be a known whole number from 0");
  if (const Value* m = Find(p, "memory"); m && !m->is_null()) {
    if (m->kind() != Value::Kind::Size) return fail("the job's memory is not known yet");
    s.memory_bytes = static_cast<uint64_t>(std::max(0.0, m->as_number()));
  }
  if (const Value* env = Find(p, "env"); env && !env->is_null()) {
    if (!Known(env) || env->kind() != Value::Kind::Object) return fail("the job's env is not known yet");
    for (const auto& [k, v] : env->as_object()) {
      if (!KnownString(&v)) return fail("env " + k + " must be a string");
      s.env[k] = v.as_string();
    }
  }
  if (const Value* sec = Find(p, "secret_env"); sec && !sec->is_null()) {
    if (!Known(sec) || sec->kind() != Value::Kind::Object)
      return fail("the job's secret_env is not known yet");
    for (const auto& [k, v] : sec->as_object()) {
      if (!KnownString(&v)) return fail("secret_env " + k + " must be a string");
      s.secret_names.push_back(k);  // a map: sorted already
      if (secrets) (*secrets)[k] = v.as_string();
    }
  }
  s.principal = Str(p, "principal");
  if (s.principal.empty()) s.principal = "job." + Str(p, "name");
  // Buckets: one entry per bucket, written if any reference writes it.
  std::map<std::string, size_t> by_path;
  for (const char* attr : {"reads", "writes"}) {
    const Value* list = Find(p, attr);
    if (!list || list->is_null()) continue;
    if (list->kind() != Value::Kind::List)
      return fail(std::string("the job's ") + attr + " is not known yet");
    for (const Value& ref : list->as_list()) {
      if (ref.kind() != Value::Kind::Object)
        return fail(std::string("the job's ") + attr + " is not known yet");
      std::string name = Str(ref.as_object(), "name");
      std::string path = Str(ref.as_object(), "path");
      if (name.empty() || path.empty())
        return fail("the path of a bucket in " + std::string(attr) + " is not known yet");
      bool write = std::string(attr) == "writes";
      auto [it, fresh] = by_path.emplace(path, s.buckets.size());
      if (fresh)
        s.buckets.push_back({name, path, write});
      else
        s.buckets[it->second].write = s.buckets[it->second].write || write;
    }
  }
  if (const Value* r = Find(p, "retries"); r && !r->is_null()) {
    if (r->kind() != Value::Kind::Object) return fail("the job's retries are not known yet");
    const ValueMap& o = r->as_object();
    for (auto [key, out] :
         {std::pair{"infrastructure", &s.retries.infrastructure}, std::pair{"program", &s.retries.program}}) {
      const Value* v = Find(o, key);
      if (!v || v->is_null()) continue;
      auto n = KnownInt(v);
      if (!n || *n < 0 || *n > 1 << 20)
        return fail(std::string("retries.") + key + " must be a known whole number from 0");
      *out = static_cast<int>(*n);
    }
  }
  if (const Value* t = Find(p, "timeout"); t && !t->is_null()) {
    if (t->kind() != Value::Kind::Duration) return fail("the job's timeout is not known yet");
    s.timeout_ms = static_cast<int64_t>(t->as_number());
  }
  if (const Value* after = Find(p, "after"); after && !after->is_null()) {
    if (after->kind() != Value::Kind::List) return fail("the job's after is not known yet");
    for (const Value& ref : after->as_list()) {
      const Value* id = ref.kind() == Value::Kind::Object ? Find(ref.as_object(), "id") : nullptr;
      if (!KnownString(id)) return fail("the id of a job in after is not known yet");
      s.after.push_back(id->as_string());
    }
  }
  return s;
}

std::optional<std::string> CanonicalJobJson(const ValueMap& planned) {
  // Buckets by id (region and name), not by path: an id does not change
  // with the directory the workspace lives in.
  ValueMap by_id = planned;
  for (const char* attr : {"reads", "writes"}) {
    Value& list = by_id[attr];
    if (list.kind() != Value::Kind::List) continue;
    ValueList out;
    for (const Value& ref : list.as_list()) {
      if (ref.kind() != Value::Kind::Object) return std::nullopt;
      ValueMap o = ref.as_object();
      o["path"] = o.count("id") ? o["id"] : Value();
      out.push_back(Value::Object(std::move(o)));
    }
    list = Value::List(std::move(out));
  }
  std::string error;
  auto spec = JobSpecFromPlanned(by_id, nullptr, &error);
  const Value* wait = Find(planned, "wait");
  if (!spec || !wait || wait->kind() != Value::Kind::Bool) return std::nullopt;
  const compute::JobSpec& s = *spec;
  json j = json::object();
  j["pool"] = s.pool;
  j["command"] = s.argv;
  j["cpus"] = s.cpus;
  j["memory"] = s.memory_bytes;
  j["gpus"] = s.gpus;
  j["env"] = s.env;
  j["secret_env"] = s.secret_names;  // names only
  j["principal"] = s.principal;
  json buckets = json::array();
  for (const auto& b : s.buckets) buckets.push_back({{"bucket", b.path}, {"write", b.write}});
  j["buckets"] = buckets;
  j["retries"] = {{"infrastructure", s.retries.infrastructure}, {"program", s.retries.program}};
  j["timeout_ms"] = s.timeout_ms;
  j["after"] = s.after;
  j["wait"] = wait->as_bool();
  return j.dump();
}

std::string JobId(const std::string& pool_id, const std::string& address, const std::string& name,
                  const std::string& canonical_json) {
  std::string input = address + "\n" + canonical_json;
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  return pool_id + "/" + name + "-" + Hex(digest, SHA256_DIGEST_LENGTH).substr(0, 10);
}

// ------------------------------------------------------------------ secrets

std::string SecretDigest(const crypto::Key& key, const std::string& address, const std::string& name,
                         const std::string& value) {
  std::string input = address + std::string(1, '\0') + name + std::string(1, '\0') + value;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
  return "hmac:" + Hex(mac, std::min<unsigned int>(len, 16));
}

ValueMap WithSecretDigests(const ValueMap& attributes, const crypto::Key& key) {
  ValueMap out = attributes;
  const Value* sec = Find(attributes, "secret_env");
  if (!sec || sec->kind() != Value::Kind::Object) return out;
  std::string address = Str(attributes, "address");
  ValueMap digests;
  for (const auto& [k, v] : sec->as_object()) {
    if (KnownString(&v) && v.as_string().rfind("hmac:", 0) == 0)
      digests[k] = v.WithSensitive();
    else if (KnownString(&v))
      digests[k] = Value::String(SecretDigest(key, address, k, v.as_string())).WithSensitive();
    else
      digests[k] = v;
  }
  out["secret_env"] = Value::Object(std::move(digests)).WithSensitive();
  return out;
}

bool HoldsSecretDigests(const Value* prior) {
  if (!prior || prior->kind() != Value::Kind::Object) return false;
  for (const auto& [k, v] : prior->as_object())
    if (KnownString(&v) && v.as_string().rfind("hmac:", 0) == 0) return true;
  return false;
}

bool SecretEnvDiffers(const Value& configured, const Value* prior, const crypto::Key* key,
                      const std::string& address) {
  bool c_null = configured.is_null(), p_null = !prior || prior->is_null();
  if (c_null || p_null) return c_null != p_null;
  if (configured.ContainsUnknown() || configured.kind() != Value::Kind::Object ||
      prior->kind() != Value::Kind::Object)
    return true;
  const ValueMap& c = configured.as_object();
  const ValueMap& p = prior->as_object();
  if (c.size() != p.size()) return true;
  for (const auto& [k, v] : c) {
    const Value* pv = Find(p, k);
    if (!pv || !KnownString(pv) || !KnownString(&v)) return true;
    const std::string& recorded = pv->as_string();
    if (recorded.rfind("hmac:", 0) == 0) {
      if (!key || SecretDigest(*key, address, k, v.as_string()) != recorded) return true;
    } else if (recorded != v.as_string()) {
      return true;
    }
  }
  return false;
}

}  // namespace plinth::runtime::compute_config
