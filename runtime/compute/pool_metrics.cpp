#include "runtime/compute/pool_metrics.h"

#include <map>
#include <string>
#include <vector>

namespace plinth::compute {

namespace {

constexpr const char* kNodeStates[] = {"provisioning", "probing", "ready",    "draining",
                                       "patching",     "failed",  "released", "lost"};
constexpr const char* kJobStatuses[] = {"pending", "provisioning", "running", "succeeded", "failed", "cancelled"};

struct PoolFigures {
  std::string id;
  std::map<std::string, int> nodes_by_state;
  std::map<std::string, int> jobs_by_status;
  double gpu_seconds = 0;
  bool patched = false;
  int at_level = 0;
  bool halted = false;
};

}  // namespace

void WritePoolMetrics(Queue& q, int64_t now_ms, metrics::Exposition& out) {
  std::vector<PoolFigures> pools;
  for (const PoolSpec& pool : q.ListPools()) {
    PoolFigures f;
    f.id = pool.id;
    for (const NodeState& n : q.ListNodes(pool.id, true)) {
      const int64_t end = n.ended_at_ms ? n.ended_at_ms : now_ms;
      f.gpu_seconds += static_cast<double>(end - n.started_at_ms) / 1000.0 * static_cast<double>(n.gpus.size());
      ++f.nodes_by_state[n.state];
      if (!n.ended_at_ms && !pool.patch.empty() && n.patch_level == pool.patch.level) ++f.at_level;
    }
    for (const auto& [status, n] : q.CountJobs(pool.id)) f.jobs_by_status[JobStatusName(status)] = n;
    f.patched = !pool.patch.empty();
    f.halted = f.patched && q.PatchHalted(pool);
    pools.push_back(std::move(f));
  }
  out.Gauge("plinth_compute_nodes", "Nodes of a pool by state (ended nodes too: failed, released, lost).");
  for (PoolFigures& f : pools)
    for (const char* st : kNodeStates) out.Sample(f.nodes_by_state[st], {{"pool", f.id}, {"state", st}});
  out.Counter("plinth_compute_node_failures_total",
              "Nodes of a pool that failed: a health gate (at start, after a patch or a periodic check), a "
              "patch, a GPU lock.");
  for (PoolFigures& f : pools) out.Sample(f.nodes_by_state["failed"], {{"pool", f.id}});
  out.Gauge("plinth_compute_jobs", "Jobs of a pool by status.");
  for (PoolFigures& f : pools)
    for (const char* st : kJobStatuses) out.Sample(f.jobs_by_status[st], {{"pool", f.id}, {"status", st}});
  out.Counter("plinth_compute_gpu_seconds_total", "GPU-seconds held by a pool's nodes (node lifetime x GPUs).");
  for (const PoolFigures& f : pools) out.Sample(f.gpu_seconds, {{"pool", f.id}});
  out.Gauge("plinth_compute_nodes_at_patch_level", "Live nodes at the pool's patch level (pools with a patch).");
  for (const PoolFigures& f : pools)
    if (f.patched) out.Sample(f.at_level, {{"pool", f.id}});
  out.Gauge("plinth_compute_patch_halted", "1 when the pool's patch level is halted by failed nodes.");
  for (const PoolFigures& f : pools)
    if (f.patched) out.Sample(f.halted ? 1 : 0, {{"pool", f.id}});
}

}  // namespace plinth::compute
