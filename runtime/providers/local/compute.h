// The configuration side of compute pools and jobs on the `local` provider
// (docs/compute.md): plan-time checks, planned values (ids, capacity,
// placement) and the conversion of planned values into the plain specs the
// queue takes (runtime/compute/spec.h).
//
// Input: a resource's configuration or planned ValueMap as the engine hands
// it to the provider. References arrive as the referenced resource's whole
// object (`pool = pool.train` carries the pool's planned attributes, its
// shapes among them; `writes = [bucket.x]` carries the bucket's `grant`s);
// planned values keep only their identity ({name, id} and a bucket's path).
//
// Invariants: the values of `secret_env` never appear in an id, a spec's
// plain fields, a message or a placement line; only their names do.
// Everything here is pure (no file, process or queue is touched) except
// PlanPool, which reads the machine's inventory (runtime/compute/inventory.h).
// Thread safety: every function may be called from any thread.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "compiler/types/types.h"
#include "runtime/compute/inventory.h"
#include "runtime/compute/spec.h"
#include "runtime/crypto/aead.h"

namespace plinth::runtime::compute_config {

// Plan-time problems of a pool or job configuration (lowercase, no trailing
// period, each says how to fix it). Values still unknown are not checked
// (apply checks them). Pools: min_nodes > max_nodes, max_nodes < 1, idle <
// 1s, a bad accelerators string, cpus < 1. Jobs: an empty command, per-task
// gpus/cpus/memory above every shape of the pool, gpus on a pool without a
// GPU shape, reads/writes that are not buckets or whose grants do not give
// the principal the access, after entries that are not jobs.
std::vector<std::string> ValidatePool(const ValueMap& config);

// Shared by jobs and services: `env`/`secret_env` names are environment
// variable names and no name is in both.
std::vector<std::string> CheckEnvironment(const ValueMap& config);

// Shared by jobs and services: each of `reads`/`writes` is a bucket reference
// whose grants give `principal` read (reads) or write (writes) access; the
// messages name the resource by `address` ("job.train").
std::vector<std::string> CheckBucketAccess(const ValueMap& config, const std::string& address,
                                           const std::string& principal);
std::vector<std::string> ValidateJob(const ValueMap& config);

// The identity kept in planned values for a job's references, from the
// configured ones (whole objects): pool -> {name, id}, each of reads/writes
// -> {name, id, path}, each of after -> {name, id}. Also fills `principal`
// ("job.<name>") when unset. Call after defaults are filled.
void NormalizeJobReferences(const ValueMap& config, ValueMap& planned);

// Whether two planned reference lists (reads, writes, after) name other
// resources: compared by id; an unknown id counts as different.
bool RefListsDiffer(const Value& planned, const Value* prior);

// Fills a planned pool's computed values: id "<region>/<name>",
// gpus_per_node, max_gpus and placement (against `inventory`); `nodes` is
// left to the caller. Values that depend on something unknown are unknown.
void PlanPool(ValueMap& planned, const compute::Inventory& inventory);

// Fills a planned job's id (docs/compute.md, "Job ids"): unknown while any
// configured value is. `planned` must be normalized (NormalizeJobReferences).
void PlanJob(ValueMap& planned);

// One line per shape, in order: "shape 1 (H100:8 in east): ok, 2 of 2 nodes
// fit" or "shape 2 (A100:8 in east): skipped: this machine has no A100
// (inventory: 2 fake H100)". How many nodes fit counts this machine's whole
// inventory, not what other nodes hold now.
std::vector<std::string> PlacementLines(const compute::PoolSpec& pool, const compute::Inventory& inventory);

// The queue's spec of a planned pool (every value known, shapes valid). On
// failure nullopt and *error says what is missing or wrong.
std::optional<compute::PoolSpec> PoolSpecFromPlanned(const ValueMap& planned, std::string* error);

// A pool's `patch` block (docs/compute.md, "Patching nodes"), shared by the
// local pool and the Slurm pool: its problems appended to `errs`; the policy
// from planned values (true and *out untouched without a block; false with
// *error while something is unknown); its commands made absolute (a name on
// PATH, a path relative to `config_dir`, which becomes their working
// directory) and checked executable.
void ValidatePatch(const ValueMap& config, std::vector<std::string>& errs);
bool PatchFromPlanned(const ValueMap& planned, compute::PatchSpec* out, std::string* error);
bool ResolvePatchCommands(compute::PatchSpec* patch, const std::filesystem::path& config_dir,
                          const std::string& pool, std::string* error);

// The queue's spec of a planned job, with its id when planned holds a known
// one. `secrets` (may be null) receives secret_env's values by name; the
// spec holds only their names (sorted). Buckets read and written become
// BucketAccess entries (one per bucket; write when written).
std::optional<compute::JobSpec> JobSpecFromPlanned(const ValueMap& planned,
                                                   std::map<std::string, std::string>* secrets,
                                                   std::string* error);

// Secrets in the state (docs/compute.md, "Secrets"): the state keeps each
// secret_env value only as "hmac:<32 hex>", the first 16 bytes of
// HMAC-SHA-256 under the workspace key of (address, NUL, name, NUL, value),
// so a changed value is still seen (the job is force-new) and the value is
// never stored.
std::string SecretDigest(const crypto::Key& key, const std::string& address, const std::string& name,
                         const std::string& value);

// `attributes` with secret_env's values replaced by their digests (still
// marked sensitive): what Create and Read of a job return for the state.
ValueMap WithSecretDigests(const ValueMap& attributes, const crypto::Key& key);

// Whether the configured secret_env (values) differs from the prior one
// (digests, or values recorded by an older version). Different or unknown
// names differ; a digest with no `key` to check it (null) differs.
bool SecretEnvDiffers(const Value& configured, const Value* prior, const crypto::Key* key,
                      const std::string& address);

// True when a prior secret_env holds digests (so SecretEnvDiffers needs the key).
bool HoldsSecretDigests(const Value* prior);

// The job's configuration as canonical JSON (sorted keys, no spaces) from
// its planned (normalized) values: everything configurable, buckets by id,
// secret names included, secret values never. nullopt while anything in it
// is unknown.
std::optional<std::string> CanonicalJobJson(const ValueMap& planned);

// "<pool id>/<name>-<first 10 hex digits of SHA-256 of the address, a
// newline and the canonical JSON>". `name` is the instance name (the
// resource label, with "-key" for count/for_each instances).
std::string JobId(const std::string& pool_id, const std::string& address, const std::string& name,
                  const std::string& canonical_json);

}  // namespace plinth::runtime::compute_config
