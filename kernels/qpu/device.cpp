#include "kernels/qpu/device.h"

#include <memory>

#include "kernels/gpu/cuda_backend.h"
#include "kernels/qpu/backend.h"
#include "kernels/qpu/cuda_state.h"
#include "kernels/qpu/memory.h"

namespace plinth::qpu {

bool ParseDeviceChoice(std::string_view text, DeviceChoice* out) {
  if (text == "auto") return *out = DeviceChoice::kAuto, true;
  if (text == "cpu") return *out = DeviceChoice::kCpu, true;
  if (text == "gpu") return *out = DeviceChoice::kGpu, true;
  return false;
}

DeviceDecision ChooseDevice(DeviceChoice choice, const GpuStatus& gpu, uint32_t qubits, uint64_t max_memory) {
  DeviceDecision d;
  if (choice == DeviceChoice::kCpu) return d.ok = true, d;
  std::string why;
  if (!gpu.present) {
    why = "no GPU: " + gpu.why_not;
  } else if (qubits == 0) {
    why = "a circuit of no qubits runs on the CPU only";
  } else {
    const uint64_t needed = CudaStateBytes(qubits);
    const uint64_t usable = gpu.free_bytes / 10 * 9;
    if (max_memory != 0 && StateBytes(qubits) > max_memory) {
      why = FormatBytes(StateBytes(qubits)) +
            " for the state vector (16*2^n bytes), more than --max-memory=" + FormatBytes(max_memory) +
            "; raise it, or use fewer qubits";
    } else if (needed > usable) {
      why = qubits <= 62 && needed != UINT64_MAX
                ? FormatBytes(needed) + " for the state vector on cuda:" + std::to_string(gpu.index) + " (" +
                      gpu.name + "), more than nine tenths of its " + FormatBytes(gpu.free_bytes) +
                      " of free memory; use fewer qubits, or --device=cpu"
                : "the state vector does not fit on cuda:" + std::to_string(gpu.index);
    }
  }
  if (why.empty()) {
    d.ok = true;
    d.gpu = true;
    return d;
  }
  if (choice == DeviceChoice::kGpu) {
    d.error = "--device=gpu: " + why;
    return d;
  }
  d.ok = true;
  d.reason = why;
  return d;
}

RunResult RunOnDevice(const Circuit& circuit, const RunOptions& options, DeviceChoice choice) {
  if (choice == DeviceChoice::kCpu) return Run(circuit, options);
  const gpu::Discovery discovery = gpu::DiscoverCuda();
  GpuStatus status;
  status.present = discovery.why == gpu::NoGpu::kNone && !discovery.devices.empty();
  status.why_not = discovery.message;
  if (status.present) {
    status.index = 0;
    status.name = discovery.devices[0].name;
    status.free_bytes = discovery.devices[0].free_bytes;
  }
  const DeviceDecision decision = ChooseDevice(choice, status, circuit.num_qubits, options.max_memory);
  RunResult result;
  if (!decision.ok) {
    result.error = decision.error;
    return result;
  }
  if (!decision.gpu) return Run(circuit, options);
  // Sampling from the final state reads the probabilities (8*2^n bytes) on the host.
  if (!NeedsPerShotRuns(circuit)) {
    const MemoryCheck host = CheckStateMemory(circuit.num_qubits - 1, 0);
    if (!host.fits) {
      result.error = "the " + FormatBytes(host.needed) +
                     " of probabilities sampled on the host do not fit in its memory; use fewer qubits";
      return result;
    }
  }
  std::string error;
  std::unique_ptr<StateBackend> state =
      OpenCudaState(gpu::ModuleTable(discovery), status.index, circuit.num_qubits, &error);
  if (!state) {
    result.error = "on cuda:" + std::to_string(status.index) + ": " + error;
    return result;
  }
  return RunOn(circuit, *state, options);
}

}  // namespace plinth::qpu
