// What this machine offers to compute pools (docs/compute.md, "Inventory"):
// its CPUs and memory, and its GPUs, discovered through kernels/gpu (the CUDA
// module) or read from a fake inventory file named by $PLINTH_FAKE_GPUS, so
// pools, jobs and the health gate are tested without a GPU.
//
// Fake inventory file (JSON):
//   {"cpus": 8, "memory": "64GiB",
//    "gpus": [{"index": 0, "type": "H100", "memory": "80GiB", "fault": "none"}, ...]}
// `cpus` (a whole number from 1) and `memory` (a size with a binary unit, or
// a byte count) are optional: the machine's CPUs and memory for placement and
// the CPU/memory ledger (ledger.h) instead of this machine's; `gpus` may be [].
// `index` is what CUDA_VISIBLE_DEVICES will name (distinct, 0..4095);
// `type` is matched case-insensitively against "TYPE:N" requests; `memory`
// is optional (a size with a binary unit, or a byte count); `fault` is
// optional, a kernels/gpu FakeFault name ("none", "bandwidth", "gemm",
// "memory"): the health gate probes a fake GPU with the CPU reference
// kernels at a tiny size and injects that fault.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/compute/spec.h"

namespace plinth::compute {

struct Gpu {
  int index = 0;
  std::string type;  // "H100"; from CUDA: the device name's model ("NVIDIA H100 80GB HBM3" -> "H100")
  uint64_t memory_bytes = 0;
  std::string fault = "none";  // fake GPUs only
  bool fake = false;
};

struct Inventory {
  int cpus = 1;               // CPUs this process may run on (sched_getaffinity)
  uint64_t memory_bytes = 0;  // MemTotal
  std::vector<Gpu> gpus;
  // Where the GPUs came from, for people: "fake inventory /x/gpus.json",
  // "CUDA (2 devices)", "no GPU: the CUDA module was not built".
  std::string source;
  bool fake = false;
};

// $PLINTH_FAKE_GPUS when set (an unreadable or invalid file is an error:
// false with *error naming the file and what is wrong), else CUDA discovery
// (no GPU is an inventory without GPUs, not an error). Cheap enough to call
// per plan: the result is kept for the life of the process while
// $PLINTH_FAKE_GPUS names the same file (a different value reads again).
bool DiscoverInventory(Inventory* out, std::string* error);

// Reads a fake inventory file (format above). Used by DiscoverInventory and tests.
bool ReadFakeInventory(const std::string& path, Inventory* out, std::string* error);

// The model in a CUDA device name: "NVIDIA H100 80GB HBM3" -> "H100",
// "NVIDIA A100-SXM4-40GB" -> "A100", "Tesla V100-PCIE-16GB" -> "V100",
// "NVIDIA GeForce RTX 4090" -> "RTX4090"; otherwise the name without spaces.
std::string GpuModel(const std::string& device_name);

// Whether a GPU of type `have` satisfies a request for `want` ("" = any).
bool GpuTypeMatches(const std::string& want, const std::string& have);

// Why `shape` cannot be placed on this machine at all (not counting what other
// nodes hold now): "this machine has no A100 (inventory: 2 fake H100)",
// "8 H100 wanted, this machine has 2", "64 CPUs wanted, this machine has 16";
// empty when it can. qpu-sim:N shapes need 16·2^N bytes of memory.
std::string ShapeMisfit(const Shape& shape, const Inventory& inventory);

// "H100:8", "8 GPUs", "qpu-sim:24", "cpu" — a shape's accelerators for people.
std::string DescribeAccelerators(const Accelerators& a);

}  // namespace plinth::compute
