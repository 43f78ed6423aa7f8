// Which device runs a circuit: `plinth qpu run --device=auto|cpu|gpu`
// (docs/qpu.md). ChooseDevice is the pure decision, tested without a GPU;
// RunOnDevice looks for a GPU (kernels/gpu/cuda_backend.h) only when the
// choice is not cpu, decides, and runs on the CPU or the CUDA backend.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/qpu/circuit.h"
#include "kernels/qpu/simulator.h"

namespace plinth::qpu {

enum class DeviceChoice { kAuto, kCpu, kGpu };

// "auto", "cpu" or "gpu".
bool ParseDeviceChoice(std::string_view text, DeviceChoice* out);

// What the machine offers: GPU 0 when one is usable.
struct GpuStatus {
  bool present = false;  // the module loaded, a driver answered, a device exists
  std::string why_not;   // when !present: module not built, no driver, no device ... in words
  int index = 0;         // the device used: always 0 for now
  std::string name;
  uint64_t free_bytes = 0;  // free device memory now
};

struct DeviceDecision {
  bool ok = false;
  bool gpu = false;    // when ok: run on GPU `index`, else on the CPU
  std::string error;   // when !ok: why --device=gpu cannot run (no GPU, or not enough GPU memory)
  std::string reason;  // when ok and on the CPU under auto: why not the GPU
};

// auto: the GPU when one is present and CudaStateBytes(qubits) fits in
// nine tenths of its free memory (and under max_memory, when nonzero), else
// the CPU. cpu: the CPU. gpu: the GPU, or an error naming why not.
DeviceDecision ChooseDevice(DeviceChoice choice, const GpuStatus& gpu, uint32_t qubits, uint64_t max_memory);

// Runs the circuit on the chosen device. Under --device=gpu without a GPU,
// !ok and error is ChooseDevice's. RunResult::device names the device.
RunResult RunOnDevice(const Circuit& circuit, const RunOptions& options, DeviceChoice choice);

}  // namespace plinth::qpu
