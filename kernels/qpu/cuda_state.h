// The state vector on a CUDA device: a StateBackend (kernels/qpu/backend.h)
// that calls the qpu_* entries of the CUDA module's table
// (kernels/gpu/module_abi.h). plinth links no CUDA library: the table comes
// from the module that kernels/gpu/cuda_backend.h loaded with dlopen().
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "kernels/gpu/module_abi.h"
#include "kernels/qpu/backend.h"

namespace plinth::qpu {

// Bytes a state of `qubits` qubits takes on the device: the amplitudes
// (16*2^n), one double per PLINTH_QPU_CHUNK pairs for measurement sums, and
// the staging buffer that carries probabilities to the host (8 bytes per
// amplitude, at most 2^22 amplitudes).
uint64_t CudaStateBytes(uint32_t qubits);

// |0...0> on `qubits` qubits of device `index`; nullptr with *error when
// the device cannot hold it. `table` must outlive the state.
std::unique_ptr<StateBackend> OpenCudaState(const plinth_gpu_module_v1* table, int index, uint32_t qubits,
                                            std::string* error);

}  // namespace plinth::qpu
