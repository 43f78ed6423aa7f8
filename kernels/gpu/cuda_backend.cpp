#include "kernels/gpu/cuda_backend.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "kernels/gpu/module_abi.h"
#include "kernels/gpu/reference.h"

#ifndef PLINTH_GPU_MODULE_BUILD_PATH
#define PLINTH_GPU_MODULE_BUILD_PATH ""
#endif

namespace plinth::gpu {

namespace fs = std::filesystem;

const char* NoGpuName(NoGpu why) {
  switch (why) {
    case NoGpu::kNone: return "";
    case NoGpu::kModuleNotBuilt: return "module_not_built";
    case NoGpu::kModuleBroken: return "module_broken";
    case NoGpu::kNoDriver: return "no_driver";
    case NoGpu::kNoDevice: return "no_device";
    case NoGpu::kError: return "error";
  }
  return "error";
}

class CudaModule {
 public:
  explicit CudaModule(const plinth_gpu_module_v1* table) : table_(table) {}
  const plinth_gpu_module_v1& table() const { return *table_; }

 private:
  const plinth_gpu_module_v1* table_;  // static storage in the module, which is never unloaded
};

namespace {

constexpr const char* kModuleName = "libplinth_gpu_cuda.so";

fs::path ExecutableDir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

DeviceInfo FromAbi(const plinth_gpu_device& d) {
  DeviceInfo info;
  info.backend = "cuda";
  info.index = d.ordinal;
  info.name = d.name;
  info.pci_bus_id = d.pci_bus_id;
  info.cc_major = d.cc_major;
  info.cc_minor = d.cc_minor;
  info.multiprocessors = d.multiprocessors;
  info.ecc_enabled = d.ecc_enabled != 0;
  info.memory_clock_khz = d.memory_clock_khz;
  info.bus_width_bits = d.bus_width_bits;
  info.driver_version = d.driver_version;
  info.runtime_version = d.runtime_version;
  info.total_bytes = d.total_bytes;
  info.free_bytes = d.free_bytes;
  info.cache_bytes = d.l2_bytes;
  return info;
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(std::shared_ptr<CudaModule> module, DeviceInfo info)
      : module_(std::move(module)), info_(std::move(info)) {}

  const DeviceInfo& Info() const override { return info_; }

  bool Bandwidth(uint64_t buffer_bytes, int runs, BandwidthResult* out, std::string* error) override {
    plinth_gpu_bandwidth r{};
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (module_->table().bandwidth(info_.index, buffer_bytes, runs, &r, err) != PLINTH_GPU_OK)
      return *error = err, false;
    out->buffer_bytes = r.buffer_bytes;
    out->runs = r.runs;
    out->copy_bytes_per_second = Rate(2.0 * double(r.buffer_bytes), r.copy_seconds);
    out->triad_bytes_per_second = Rate(3.0 * double(r.buffer_bytes), r.triad_seconds);
    out->peak = PeakBandwidth(info_);
    return true;
  }

  bool Gemm(const GemmRequest& rq, GemmTiming* out, std::string* error) override {
    plinth_gpu_gemm_request r{};
    r.fp64 = rq.fp64;
    r.n = rq.n;
    r.a = rq.a;
    r.b = rq.b;
    r.first_result = rq.first_result;
    r.seconds = rq.seconds;
    r.min_repeats = rq.min_repeats;
    r.inject_fault = rq.inject_fault;
    r.with_cublas = rq.with_cublas;
    plinth_gpu_gemm_result result{};
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (module_->table().gemm(info_.index, &r, &result, err) != PLINTH_GPU_OK) return *error = err, false;
    out->repeats = result.repeats;
    out->mismatched_elements = result.mismatched_elements;
    out->seconds = result.seconds;
    out->cublas_seconds = result.cublas_seconds;
    out->cublas = result.cublas_note;
    return true;
  }

  bool MemoryTest(uint64_t words, bool full, std::optional<uint64_t> fault_word, MemoryTestResult* out,
                  std::string* error) override {
    plinth_gpu_memtest_result r{};
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (module_->table().memory_test(info_.index, words, full ? 1 : 0, fault_word.value_or(UINT64_MAX), &r,
                                     err) != PLINTH_GPU_OK) {
      return *error = err, false;
    }
    plinth_gpu_mem_step steps[PLINTH_GPU_MAX_STEPS];
    const int step_count = plinth_gpu_memtest_steps(full ? 1 : 0, steps);
    out->bytes_tested = r.bytes_tested;
    out->errors = r.errors;
    out->bad.clear();
    for (uint32_t i = 0; i < r.bad_count && i < kMaxBadAddresses; ++i) {
      const plinth_gpu_bad_word& w = r.bad[i];
      const int test = int(w.step) < step_count ? int(steps[w.step].test) : int(PLINTH_TEST_ADDRESS);
      out->bad.push_back({w.offset_bytes, w.expected, w.actual, MemoryTestName(test)});
    }
    return true;
  }

  bool Transfer(uint64_t bytes, int runs, TransferResult* out, std::string* error) override {
    plinth_gpu_transfer r{};
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (module_->table().transfer(info_.index, bytes, runs, &r, err) != PLINTH_GPU_OK)
      return *error = err, false;
    out->bytes = r.bytes;
    out->runs = r.runs;
    out->host_to_device_bytes_per_second = Rate(double(r.bytes), r.h2d_seconds);
    out->device_to_host_bytes_per_second = Rate(double(r.bytes), r.d2h_seconds);
    return true;
  }

 private:
  std::shared_ptr<CudaModule> module_;
  DeviceInfo info_;
};

}  // namespace

std::vector<std::string> ModuleCandidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("PLINTH_GPU_MODULE"); env != nullptr && *env != '\0') out.push_back(env);
  if (fs::path dir = ExecutableDir(); !dir.empty()) {
    out.push_back((dir / kModuleName).string());
    out.push_back((dir.parent_path() / "lib" / "plinth" / kModuleName).string());
  }
  if (std::string built = PLINTH_GPU_MODULE_BUILD_PATH; !built.empty()) out.push_back(built);
  // The binary may be the build's own: name each place once.
  std::vector<std::string> unique;
  for (const std::string& path : out) {
    if (std::find(unique.begin(), unique.end(), path) == unique.end()) unique.push_back(path);
  }
  return unique;
}

Discovery DiscoverCuda() {
  return DiscoverCudaFrom(ModuleCandidates());
}

Discovery DiscoverCudaFrom(const std::vector<std::string>& candidates) {
  Discovery d;
  // dlopen() of a loaded module returns it again: the CUDA runtime inside is
  // initialised once per process, and the module is never unloaded.
  std::shared_ptr<CudaModule> loaded;
  std::string loaded_path, looked;
  for (const std::string& path : candidates) {
    looked += (looked.empty() ? "" : ", ") + path;
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) continue;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* why = dlerror();
      d.why = NoGpu::kModuleBroken;
      d.message = "the CUDA module " + path + " does not load: " + (why ? why : "unknown error");
      return d;
    }
    auto entry = reinterpret_cast<plinth_gpu_module_fn>(dlsym(handle, PLINTH_GPU_MODULE_SYMBOL));
    const plinth_gpu_module_v1* table = entry ? entry(PLINTH_GPU_ABI_VERSION) : nullptr;
    if (table == nullptr || table->abi_version != PLINTH_GPU_ABI_VERSION ||
        table->struct_size != sizeof(plinth_gpu_module_v1)) {
      d.why = NoGpu::kModuleBroken;
      d.message = "the CUDA module " + path + " is not of this plinth (ABI version " +
                  std::to_string(PLINTH_GPU_ABI_VERSION) + " wanted); rebuild or reinstall it with plinth";
      return d;
    }
    loaded = std::make_shared<CudaModule>(table);
    loaded_path = path;
    break;
  }
  if (!loaded) {
    d.why = NoGpu::kModuleNotBuilt;
    d.message = std::string("the CUDA module ") + kModuleName +
                " was not built (no nvcc at build time) or is not installed; looked in: " +
                (looked.empty() ? "nowhere" : looked);
    return d;
  }
  d.module = loaded;
  d.module_path = loaded_path;
  const plinth_gpu_module_v1& t = loaded->table();
  char err[PLINTH_GPU_ERROR_LEN] = "";
  int32_t count = 0;
  switch (t.device_count(&count, err)) {
    case PLINTH_GPU_OK: break;
    case PLINTH_GPU_NO_DRIVER:
      d.why = NoGpu::kNoDriver;
      d.message = std::string("no NVIDIA driver, or one too old for CUDA ") + "(" + err + ")";
      return d;
    case PLINTH_GPU_NO_DEVICE:
      d.why = NoGpu::kNoDevice;
      d.message = std::string("no CUDA device (") + err + ")";
      return d;
    default:
      d.why = NoGpu::kError;
      d.message = std::string("CUDA device discovery failed: ") + err;
      return d;
  }
  if (count == 0) {
    d.why = NoGpu::kNoDevice;
    d.message = "no CUDA device (the driver reports none)";
    return d;
  }
  for (int32_t i = 0; i < count; ++i) {
    plinth_gpu_device dev{};
    if (t.device_info(i, &dev, err) != PLINTH_GPU_OK) {
      d.why = NoGpu::kError;
      d.message = "CUDA device " + std::to_string(i) + ": " + err;
      d.devices.clear();
      return d;
    }
    d.devices.push_back(FromAbi(dev));
  }
  return d;
}

std::unique_ptr<Backend> OpenCuda(const Discovery& discovery, int index, std::string* error) {
  if (discovery.why != NoGpu::kNone || !discovery.module) return *error = discovery.message, nullptr;
  if (index < 0 || index >= static_cast<int>(discovery.devices.size())) {
    *error = "no GPU " + std::to_string(index) + " (there " +
             (discovery.devices.size() == 1 ? std::string("is 1: 0")
                                            : "are " + std::to_string(discovery.devices.size()) + ": 0-" +
                                                  std::to_string(discovery.devices.size() - 1)) +
             ")";
    return nullptr;
  }
  return std::make_unique<CudaBackend>(discovery.module, discovery.devices[index]);
}

const plinth_gpu_module_v1* ModuleTable(const Discovery& discovery) {
  return discovery.module ? &discovery.module->table() : nullptr;
}

}  // namespace plinth::gpu
