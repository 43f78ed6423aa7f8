// The `local` provider: regions, buckets and markers as directories and files
// under one data root (docs/providers/local.md describes the on-disk layout,
// ids, drift and failure behaviour), and compute pools and jobs on this
// machine (docs/compute.md; their plan-time checks, planned values and specs
// are in compute.h).
//
// Input: the data root, an absolute directory (created on the first write).
// Every path the provider writes is checked, after resolving symlinks, to lie
// strictly inside the data root; a path that would leave it is refused.
//
// Layout under the data root:
//   <region root>/.plinth-region.json     region metadata (ports, labels)
//   <region root>/DOWN                    present while the region is down
//   <region root>/buckets/<bucket>/.plinth-bucket.json
//   .plinth-local/regions/<name>.json     index: region name -> root, used by
//                                         import, port-overlap and isolation checks
//   <marker path>                         a marker's file
//
// Thread safety: every method may be called concurrently. Region operations
// are serialised among themselves (port ranges and roots are checked against
// all regions); bucket operations hold the region lock shared; markers take
// no lock. Files are replaced atomically (temp file in the same directory,
// fsync, rename, fsync of the directory), so a reader never sees a torn file
// and a crash leaves either the old or the new content.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>

#include "runtime/provider/provider.h"

namespace plinth::compute {
class Queue;
}
namespace plinth::controller {
class ServiceStore;
}
namespace plinth::runtime::config_file {
struct Context;
}

namespace plinth::runtime {

class LocalProvider : public Provider {
 public:
  // `data_root` must be absolute; it need not exist yet. `workspace_key` is
  // the workspace key file that wraps bucket keys (runtime/storage/keys.h);
  // empty: `<data_root>/../workspace.key`. It is created by the first bucket.
  // `stop` (may be null): set on the first Ctrl-C; a job's create then stops
  // waiting for the job (which goes on running) and returns it as it is.
  // `compute_dir`: the workspace's compute queue directory; empty:
  // `<data_root>/../compute`.
  // `config_dir`: the configuration's directory, where a service's relative
  // program path starts (empty: the current directory).
  explicit LocalProvider(std::filesystem::path data_root, std::filesystem::path workspace_key = {},
                         const std::atomic<bool>* stop = nullptr, std::filesystem::path compute_dir = {},
                         std::filesystem::path config_dir = {});
  ~LocalProvider() override;

  std::string Name() const override { return "local"; }
  const SchemaSource& Schemas() const override;

  std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const override;
  Result<PlanResponse> PlanChange(const PlanRequest& request) override;
  Result<ResourceObject> Create(const std::string& type, const ValueMap& planned) override;
  Result<std::optional<ResourceObject>> Read(const std::string& type, const std::string& id,
                                             const ValueMap& prior) override;
  Result<ResourceObject> Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                const ValueMap& planned) override;
  Result<Done> Delete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  // Buckets: the objects, stored versions, archived objects and backups a
  // delete removes (all of them only with force_destroy; otherwise a bucket
  // that holds data is refused). Regions: their empty backup repositories;
  // repositories holding snapshots refuse the delete unless their bucket
  // has force_destroy (its delete removes them first).
  Result<DeletePreview> PlanDelete(const std::string& type, const std::string& id,
                                   const ValueMap& prior) override;
  Result<ResourceObject> Import(const std::string& type, const std::string& id) override;
  // Regions whose port ranges overlap, whose roots are the same or nested,
  // or whose names are the same; two buckets with the same region and name;
  // two markers with the same path; two pools or two jobs with one id
  // (docs/providers/local.md, "Plan checks").
  std::vector<PlanConflict> CheckPlan(const std::vector<PlanItem>& items) override;
  // Jobs and services: secret_env's values become keyed digests (compute_config::WithSecretDigests).
  ValueMap StateValues(const std::string& type, const ValueMap& attributes) override;

  // The data root as resolved at construction (symlinks resolved, normalised).
  const std::filesystem::path& data_root() const { return root_; }

  // The regions of this data root as `plinth region` shows and acts on them
  // (cli/region_commands.cpp), by name. Reads files only.
  struct RegionSummary {
    std::string name;
    std::string host;  // "127.0.0.1" when unset
    std::filesystem::path dir;
    bool namespaced = false;  // isolation = "namespace"
    bool down = false;        // the configuration's `down`
  };
  std::vector<RegionSummary> Regions() const;

 private:
  struct RegionInfo;

  // Path checks: `p` resolved (symlinks followed) and strictly inside root_.
  Result<std::filesystem::path> Inside(const std::filesystem::path& p, const std::string& shown) const;

  // Regions.
  Result<RegionInfo> LoadRegion(const std::string& name, const std::filesystem::path& dir) const;
  std::filesystem::path RegionDirFor(const std::string& name, const ValueMap* hint) const;
  std::vector<RegionInfo> ListRegions() const;
  std::vector<std::string> CheckRegionPlacement(const RegionInfo& candidate) const;
  Result<ResourceObject> WriteRegion(const ValueMap& planned, bool creating);
  ResourceObject RegionObject(const RegionInfo& r, const ValueMap* carry) const;

  // Buckets.
  Result<ResourceObject> WriteBucket(const ValueMap& planned, const ValueMap* prior);
  // Creates the bucket's restic repository (docs/storage.md) unless it
  // exists, from the settings being written (`settings`, with `key`), never
  // from the bucket's metadata file. `created` tells whether this call made
  // the repository's directory (so a failed create can remove it).
  std::optional<ProviderError> EnsureBackupRepository(const std::string& region, const std::string& bucket,
                                                      const ValueMap& settings,
                                                      const std::string& wrapped_key, bool* created) const;
  // The bucket as it is on disk. The metadata file is not trusted: with
  // `prior` (the state, or what is being written), settings that disagree
  // with it read as unset (drift that the next apply repairs) and the key is
  // always prior's; identity always comes from the arguments.
  Result<std::optional<ResourceObject>> ReadBucketAt(const std::string& region_name,
                                                     const std::filesystem::path& region_dir,
                                                     const std::string& bucket_name,
                                                     const ValueMap* prior) const;

  // Deletes: what a delete would remove, and whether it is refused; the
  // same inspection backs PlanDelete and Delete. Callers hold the locks.
  struct BucketDeletion;
  struct RegionDeletion;
  Result<BucketDeletion> InspectBucketDeletion(const std::string& id, const ValueMap& prior) const;
  // `at_apply`: the region's buckets are gone by now, so a repository with
  // snapshots refuses whatever its bucket's force_destroy said.
  Result<RegionDeletion> InspectRegionDeletion(const std::string& id, const std::filesystem::path& dir,
                                               const ValueMap& prior, bool at_apply) const;
  // Data root relative form of a path, for messages and plans.
  std::string RootRelative(const std::filesystem::path& p) const;

  // Markers.
  // The file of marker `rel`: its directory resolved and inside root_, its
  // own name not followed.
  Result<std::filesystem::path> MarkerPath(const std::string& rel, const std::string& shown) const;
  Result<ResourceObject> WriteMarker(const ValueMap& planned);

  // Pools and jobs (compute_resources.cpp): through the workspace's compute
  // queue, <workspace dir>/compute/compute.db, opened on first use (created
  // only by a create: nothing else writes a queue that is not there).
  std::filesystem::path ComputeDir() const;
  Result<compute::Queue*> ComputeQueue(bool create);  // null: none yet (create false)
  Result<ResourceObject> WritePool(const ValueMap& planned);
  Result<std::optional<ResourceObject>> ReadPool(const std::string& id, const ValueMap& prior);
  Result<Done> DeletePool(const std::string& id);
  Result<ResourceObject> CreateJob(const ValueMap& planned);
  Result<std::optional<ResourceObject>> ReadJob(const std::string& id, const ValueMap& prior);
  Result<Done> DeleteJob(const std::string& id);

  // Services (service_resources.cpp): recorded in <workspace dir>/services
  // (runtime/controller/services.h); their replicas are supervised from
  // <workspace dir>/controller/replicas.db, by apply while no controller
  // leads the workspace.
  std::filesystem::path WorkspaceDir() const { return root_.parent_path(); }
  Result<controller::ServiceStore*> Services(bool create);  // null: none yet (create false)
  Result<ResourceObject> WriteService(const ValueMap& planned, bool creating);
  Result<std::optional<ResourceObject>> ReadService(const std::string& id, const ValueMap& prior);
  Result<Done> DeleteService(const std::string& id);
  // Load balancers: one HAProxy per load balancer in <workspace dir>/lb/<name>
  // (runtime/controller/haproxy.h).
  Result<ResourceObject> WriteLoadBalancer(const ValueMap& planned);
  Result<std::optional<ResourceObject>> ReadLoadBalancer(const std::string& id, const ValueMap& prior);
  Result<Done> DeleteLoadBalancer(const std::string& id);
  // Configuration files (file_resources.{h,cpp}): what they need of the provider.
  config_file::Context FileContext() const;

  std::filesystem::path root_;
  std::filesystem::path workspace_key_;
  std::filesystem::path config_dir_;
  std::mutex services_mu_;
  std::unique_ptr<controller::ServiceStore> services_;
  const std::atomic<bool>* stop_ = nullptr;
  std::filesystem::path compute_dir_;
  std::mutex compute_mu_;
  std::unique_ptr<compute::Queue> queue_;
  mutable std::shared_mutex regions_mu_;  // exclusive: region writes; shared: bucket writes
  std::mutex buckets_mu_;                 // bucket create/update/delete (existence checks + writes)
};

}  // namespace plinth::runtime
