// A workspace's compute pools as Prometheus metric families (docs/compute.md,
// "Commands"): what `plinth compute status --metrics` prints and what the
// controller's compute task exposes on /metrics, where the built-in pool
// alerts (NodeFailed, PatchHalted; docs/automation.md) read them.
//
//   plinth_compute_nodes{pool,state}               gauge: node rows by state (ended ones too)
//   plinth_compute_node_failures_total{pool}       counter: nodes that failed (health gate, patch, GPU lock)
//   plinth_compute_jobs{pool,status}               gauge: jobs by status
//   plinth_compute_gpu_seconds_total{pool}         counter: GPU-seconds held by the pool's nodes
//   plinth_compute_nodes_at_patch_level{pool}      gauge: live nodes at the pool's patch level (pools with one)
//   plinth_compute_patch_halted{pool}              gauge: 1 when the pool's patch level is halted
//
// Thread safety: as the Queue (its calls are serialised).
#pragma once

#include <cstdint>

#include "runtime/compute/queue.h"
#include "runtime/metrics/exposition.h"

namespace plinth::compute {

// Appends the families above for every pool of `q`, at wall time `now_ms`.
void WritePoolMetrics(Queue& q, int64_t now_ms, metrics::Exposition& out);

}  // namespace plinth::compute
