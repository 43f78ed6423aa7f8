// Finding and loading the CUDA module (libplinth_gpu_cuda.so), and CUDA
// devices as probe Backends. plinth links no CUDA library: the module is
// dlopen()ed from, in order,
//   1. $PLINTH_GPU_MODULE (a file),
//   2. the running binary's directory (where the build and an install put it),
//   3. <binary's directory>/../lib/plinth/,
//   4. the path the build wrote it to (PLINTH_GPU_MODULE_BUILD_PATH).
// Any failure is an answer (Discovery::why), never a crash: a module not
// built or not found, a module of another ABI version, no driver, no device.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "kernels/gpu/gpu.h"
#include "kernels/gpu/module_abi.h"

namespace plinth::gpu {

enum class NoGpu {
  kNone,            // devices found
  kModuleNotBuilt,  // no libplinth_gpu_cuda.so in any place searched
  kModuleBroken,    // found, but it does not load or speaks another ABI version
  kNoDriver,        // the CUDA runtime found no (recent enough) driver
  kNoDevice,        // a driver, but no CUDA device
  kError,           // a device that fails discovery
};

// "module_not_built", "module_broken", "no_driver", "no_device", "error"; "" for kNone.
const char* NoGpuName(NoGpu why);

class CudaModule;

struct Discovery {
  NoGpu why = NoGpu::kNone;
  std::string message;      // why, in words, when why != kNone
  std::string module_path;  // the module loaded, when one was
  std::vector<DeviceInfo> devices;
  std::shared_ptr<CudaModule> module;  // kept loaded for OpenCuda
};

// The places searched, in order (see above).
std::vector<std::string> ModuleCandidates();

// Loads the module from the first of ModuleCandidates() that exists and lists the devices.
Discovery DiscoverCuda();
// The same over given places (tests).
Discovery DiscoverCudaFrom(const std::vector<std::string>& candidates);

// Device `index` of a successful discovery as a Backend; nullptr with *error
// when there is no such device.
std::unique_ptr<Backend> OpenCuda(const Discovery& discovery, int index, std::string* error);

// The loaded module's table, for other kernels that run on the device (the
// state-vector simulator, kernels/qpu/cuda_state.h); nullptr when discovery
// loaded none. The table stays valid for the life of the process.
const plinth_gpu_module_v1* ModuleTable(const Discovery& discovery);

}  // namespace plinth::gpu
