// libplinth_gpu_cuda.so: the probe kernels on a CUDA device, behind the C
// table of kernels/gpu/module_abi.h (the one exported symbol is
// plinth_gpu_module). Linked with the static CUDA runtime, which loads the
// driver on first use; cuBLAS is dlopen()ed when a GEMM asks for it.
//
// Kept lean on purpose (CI compiles it on two cores for two architectures):
// one file, two GEMM instantiations, no Thrust or CUB.
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "kernels/gpu/module_abi.h"

namespace {

// ------------------------------------------------------------ errors

int Classify(cudaError_t e) {
  switch (e) {
    case cudaErrorInsufficientDriver:
    case cudaErrorCallRequiresNewerDriver: return PLINTH_GPU_NO_DRIVER;
    case cudaErrorNoDevice:
    case cudaErrorInvalidDevice: return PLINTH_GPU_NO_DEVICE;
    default: return PLINTH_GPU_ERROR;
  }
}

int Fail(char* err, int status, const char* format, ...) {
  va_list args;
  va_start(args, format);
  std::vsnprintf(err, PLINTH_GPU_ERROR_LEN, format, args);
  va_end(args);
  return status;
}

int CudaFail(cudaError_t e, const char* what, char* err) {
  return Fail(err, Classify(e), "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

#define PLINTH_CUDA(call)                                                 \
  do {                                                                    \
    cudaError_t plinth_e_ = (call);                                       \
    if (plinth_e_ != cudaSuccess) return CudaFail(plinth_e_, #call, err); \
  } while (0)

// ------------------------------------------------------------ ownership

struct DeviceBuffer {
  void* p = nullptr;
  ~DeviceBuffer() {
    if (p) cudaFree(p);
  }
  cudaError_t Allocate(size_t bytes) { return cudaMalloc(&p, bytes); }
};

struct PinnedBuffer {
  void* p = nullptr;
  ~PinnedBuffer() {
    if (p) cudaFreeHost(p);
  }
};

struct Event {
  cudaEvent_t e = nullptr;
  ~Event() {
    if (e) cudaEventDestroy(e);
  }
};

// Milliseconds between two recorded events, after waiting for the second.
cudaError_t Elapsed(const Event& start, const Event& stop, float* ms) {
  cudaError_t e = cudaEventSynchronize(stop.e);
  return e != cudaSuccess ? e : cudaEventElapsedTime(ms, start.e, stop.e);
}

int Select(int32_t ordinal, char* err) {
  int count = 0;
  PLINTH_CUDA(cudaGetDeviceCount(&count));
  if (ordinal < 0 || ordinal >= count) {
    return Fail(err, PLINTH_GPU_NO_DEVICE, "no CUDA device %d (there are %d)", ordinal, count);
  }
  PLINTH_CUDA(cudaSetDevice(ordinal));
  return PLINTH_GPU_OK;
}

// Enough blocks of 256 threads to fill every multiprocessor, for grid-stride loops.
template <typename Kernel>
int GridFor(Kernel kernel, size_t items, int* blocks, char* err) {
  int device = 0, sms = 0, per_sm = 0;
  PLINTH_CUDA(cudaGetDevice(&device));
  PLINTH_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  PLINTH_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 256, 0));
  size_t needed = (items + 255) / 256;
  *blocks =
      static_cast<int>(std::max<size_t>(1, std::min<size_t>(needed, size_t(sms) * std::max(per_sm, 1))));
  return PLINTH_GPU_OK;
}

// ------------------------------------------------------------ discovery

int DeviceCount(int32_t* count, char* err) {
  int n = 0;
  PLINTH_CUDA(cudaGetDeviceCount(&n));
  *count = n;
  return PLINTH_GPU_OK;
}

int DeviceInfo(int32_t ordinal, plinth_gpu_device* out, char* err) {
  if (int rc = Select(ordinal, err)) return rc;
  std::memset(out, 0, sizeof *out);
  out->ordinal = ordinal;
  cudaDeviceProp prop;
  PLINTH_CUDA(cudaGetDeviceProperties(&prop, ordinal));
  std::snprintf(out->name, sizeof out->name, "%s", prop.name);
  PLINTH_CUDA(cudaDeviceGetPCIBusId(out->pci_bus_id, sizeof out->pci_bus_id, ordinal));
  int v = 0;
  PLINTH_CUDA(cudaDeviceGetAttribute(&out->cc_major, cudaDevAttrComputeCapabilityMajor, ordinal));
  PLINTH_CUDA(cudaDeviceGetAttribute(&out->cc_minor, cudaDevAttrComputeCapabilityMinor, ordinal));
  PLINTH_CUDA(cudaDeviceGetAttribute(&out->multiprocessors, cudaDevAttrMultiProcessorCount, ordinal));
  PLINTH_CUDA(cudaDeviceGetAttribute(&out->ecc_enabled, cudaDevAttrEccEnabled, ordinal));
  // Some parts report no memory clock; the host then uses its table of peaks.
  if (cudaDeviceGetAttribute(&v, cudaDevAttrMemoryClockRate, ordinal) == cudaSuccess)
    out->memory_clock_khz = v;
  if (cudaDeviceGetAttribute(&v, cudaDevAttrGlobalMemoryBusWidth, ordinal) == cudaSuccess)
    out->bus_width_bits = v;
  cudaGetLastError();
  PLINTH_CUDA(cudaDeviceGetAttribute(&v, cudaDevAttrL2CacheSize, ordinal));
  out->l2_bytes = static_cast<uint64_t>(v);
  PLINTH_CUDA(cudaDriverGetVersion(&out->driver_version));
  PLINTH_CUDA(cudaRuntimeGetVersion(&out->runtime_version));
  size_t free_bytes = 0, total_bytes = 0;
  PLINTH_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
  out->free_bytes = free_bytes;
  out->total_bytes = total_bytes;
  return PLINTH_GPU_OK;
}

// ------------------------------------------------------------ HBM bandwidth

// 16-byte loads and stores, grid-stride.
__global__ void __launch_bounds__(256)
    CopyKernel(const float4* __restrict__ in, float4* __restrict__ out, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    out[i] = in[i];
  }
}

__global__ void __launch_bounds__(256) TriadKernel(double2* __restrict__ a, const double2* __restrict__ b,
                                                   const double2* __restrict__ c, double scalar, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const double2 x = b[i], y = c[i];
    a[i] = make_double2(x.x + scalar * y.x, x.y + scalar * y.y);
  }
}

int Bandwidth(int32_t ordinal, uint64_t buffer_bytes, int32_t runs, plinth_gpu_bandwidth* out, char* err) {
  if (int rc = Select(ordinal, err)) return rc;
  const size_t vectors = buffer_bytes / 16;
  if (vectors == 0 || runs < 1) return Fail(err, PLINTH_GPU_ERROR, "bandwidth: nothing to measure");
  const size_t bytes = vectors * 16;
  DeviceBuffer a, b, c;
  PLINTH_CUDA(a.Allocate(bytes));
  PLINTH_CUDA(b.Allocate(bytes));
  PLINTH_CUDA(c.Allocate(bytes));
  PLINTH_CUDA(cudaMemset(a.p, 0, bytes));
  PLINTH_CUDA(cudaMemset(b.p, 0, bytes));
  PLINTH_CUDA(cudaMemset(c.p, 0, bytes));
  int copy_blocks = 0, triad_blocks = 0;
  if (int rc = GridFor(CopyKernel, vectors, &copy_blocks, err)) return rc;
  if (int rc = GridFor(TriadKernel, vectors, &triad_blocks, err)) return rc;
  Event start, stop;
  PLINTH_CUDA(cudaEventCreate(&start.e));
  PLINTH_CUDA(cudaEventCreate(&stop.e));
  float best_copy = 0, best_triad = 0;
  // Run 0 warms up (page mapping, clocks) and is not counted.
  for (int run = 0; run <= runs; ++run) {
    float ms = 0;
    PLINTH_CUDA(cudaEventRecord(start.e));
    CopyKernel<<<copy_blocks, 256>>>(static_cast<const float4*>(b.p), static_cast<float4*>(a.p), vectors);
    PLINTH_CUDA(cudaGetLastError());
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    if (run > 0 && (best_copy == 0 || ms < best_copy)) best_copy = ms;
    PLINTH_CUDA(cudaEventRecord(start.e));
    TriadKernel<<<triad_blocks, 256>>>(static_cast<double2*>(a.p), static_cast<const double2*>(b.p),
                                       static_cast<const double2*>(c.p), 3.0, vectors);
    PLINTH_CUDA(cudaGetLastError());
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    if (run > 0 && (best_triad == 0 || ms < best_triad)) best_triad = ms;
  }
  out->buffer_bytes = bytes;
  out->runs = runs;
  out->copy_seconds = best_copy / 1e3;
  out->triad_seconds = best_triad / 1e3;
  return PLINTH_GPU_OK;
}

// ------------------------------------------------------------ GEMM burn-in

__device__ __forceinline__ float Fma(float a, float b, float c) {
  return __fmaf_rn(a, b, c);
}
__device__ __forceinline__ double Fma(double a, double b, double c) {
  return __fma_rn(a, b, c);
}

// C = A B, row-major n x n, n a multiple of the block. The tile shape is the
// one in module_abi.h; kernels/gpu/reference.cpp reproduces it on the CPU.
// Every C element is one accumulator updated by one rounded FMA per k in
// increasing k, so results are reproducible bit for bit.
template <typename T>
__global__ void __launch_bounds__(256)
    TiledGemm(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, int n) {
  constexpr int BM = PLINTH_GEMM_BLOCK, BK = PLINTH_GEMM_BLOCK_K, TM = PLINTH_GEMM_THREAD;
  constexpr int kThreads = (BM / TM) * (BM / TM);
  static_assert(kThreads == 256, "the launch uses 256 threads");
  __shared__ T As[BK][BM + 1];  // As[k][m] = A[row0 + m][k0 + k]; +1 avoids bank conflicts on the store
  __shared__ T Bs[BK][BM];      // Bs[k][j] = B[k0 + k][col0 + j]
  const int tx = threadIdx.x % (BM / TM), ty = threadIdx.x / (BM / TM);
  const size_t row0 = size_t(blockIdx.y) * BM, col0 = size_t(blockIdx.x) * BM;
  T acc[TM][TM];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TM; ++j) acc[i][j] = T(0);
  for (int k0 = 0; k0 < n; k0 += BK) {
    for (int l = threadIdx.x; l < BM * BK; l += kThreads) {
      const int am = l / BK, ak = l % BK;
      As[ak][am] = A[(row0 + am) * n + k0 + ak];
      const int bk = l / BM, bj = l % BM;
      Bs[bk][bj] = B[(size_t(k0) + bk) * n + col0 + bj];
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      T a[TM], b[TM];
#pragma unroll
      for (int i = 0; i < TM; ++i) a[i] = As[k][ty * TM + i];
#pragma unroll
      for (int j = 0; j < TM; ++j) b[j] = Bs[k][tx * TM + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TM; ++j) acc[i][j] = Fma(a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TM; ++j) C[(row0 + ty * TM + i) * n + col0 + tx * TM + j] = acc[i][j];
}

// Elements whose bits differ, added to *count.
template <typename Bits>
__global__ void __launch_bounds__(256) CountMismatches(const Bits* __restrict__ x, const Bits* __restrict__ y,
                                                       size_t n, unsigned long long* count) {
  unsigned long long local = 0;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    local += x[i] != y[i];
  }
  for (int offset = 16; offset > 0; offset /= 2) local += __shfl_down_sync(0xffffffffu, local, offset);
  if ((threadIdx.x & 31) == 0 && local != 0) atomicAdd(count, local);
}

// cuBLAS, loaded on demand; its handle and stream are its own (the default stream).
struct Cublas {
  using Create = int (*)(void**);
  using Destroy = int (*)(void*);
  using Sgemm = int (*)(void*, int, int, int, int, int, const float*, const float*, int, const float*, int,
                        const float*, float*, int);
  using Dgemm = int (*)(void*, int, int, int, int, int, const double*, const double*, int, const double*, int,
                        const double*, double*, int);
  void* library = nullptr;
  void* handle = nullptr;
  Create create = nullptr;
  Destroy destroy = nullptr;
  Sgemm sgemm = nullptr;
  Dgemm dgemm = nullptr;
  char loaded[PLINTH_GPU_ERROR_LEN] = "";

  bool Load(char* why) {
    for (const char* name : {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                             "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so"}) {
      library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (library) {
        std::snprintf(loaded, sizeof loaded, "%s", name);
        break;
      }
    }
    if (!library)
      return std::snprintf(why, PLINTH_GPU_ERROR_LEN, "not available (libcublas not found)"), false;
    create = reinterpret_cast<Create>(dlsym(library, "cublasCreate_v2"));
    destroy = reinterpret_cast<Destroy>(dlsym(library, "cublasDestroy_v2"));
    sgemm = reinterpret_cast<Sgemm>(dlsym(library, "cublasSgemm_v2"));
    dgemm = reinterpret_cast<Dgemm>(dlsym(library, "cublasDgemm_v2"));
    if (!create || !destroy || !sgemm || !dgemm) {
      return std::snprintf(why, PLINTH_GPU_ERROR_LEN, "not available (%s lacks the GEMM entry points)",
                           loaded),
             false;
    }
    if (int status = create(&handle)) {
      handle = nullptr;
      return std::snprintf(why, PLINTH_GPU_ERROR_LEN, "not available (cublasCreate failed: status %d)",
                           status),
             false;
    }
    return true;
  }
  // The library stays loaded (cuBLAS and its CUDA runtime are not meant to be unloaded).
  ~Cublas() {
    if (handle) destroy(handle);
  }
};

// Row-major C = A B is column-major C^T = B^T A^T: pass B first.
int CublasGemm(Cublas& blas, const float* a, const float* b, float* c, int n) {
  const float one = 1, zero = 0;
  return blas.sgemm(blas.handle, 0, 0, n, n, n, &one, b, n, a, n, &zero, c, n);
}
int CublasGemm(Cublas& blas, const double* a, const double* b, double* c, int n) {
  const double one = 1, zero = 0;
  return blas.dgemm(blas.handle, 0, 0, n, n, n, &one, b, n, a, n, &zero, c, n);
}

template <typename T, typename Bits>
int GemmOf(const plinth_gpu_gemm_request* rq, plinth_gpu_gemm_result* out, char* err) {
  const int n = rq->n;
  const size_t elements = size_t(n) * n, bytes = elements * sizeof(T);
  DeviceBuffer a, b, first, current;
  unsigned long long* count = nullptr;
  PLINTH_CUDA(a.Allocate(bytes));
  PLINTH_CUDA(b.Allocate(bytes));
  PLINTH_CUDA(first.Allocate(bytes));
  PLINTH_CUDA(current.Allocate(bytes));
  DeviceBuffer count_buffer;
  PLINTH_CUDA(count_buffer.Allocate(sizeof(unsigned long long)));
  count = static_cast<unsigned long long*>(count_buffer.p);
  PLINTH_CUDA(cudaMemset(count, 0, sizeof(unsigned long long)));
  PLINTH_CUDA(cudaMemcpy(a.p, rq->a, bytes, cudaMemcpyHostToDevice));
  PLINTH_CUDA(cudaMemcpy(b.p, rq->b, bytes, cudaMemcpyHostToDevice));
  const T* da = static_cast<const T*>(a.p);
  const T* db = static_cast<const T*>(b.p);
  const dim3 grid(n / PLINTH_GEMM_BLOCK, n / PLINTH_GEMM_BLOCK);
  int compare_blocks = 0;
  if (int rc = GridFor(CountMismatches<Bits>, elements, &compare_blocks, err)) return rc;
  Event start, stop;
  PLINTH_CUDA(cudaEventCreate(&start.e));
  PLINTH_CUDA(cudaEventCreate(&stop.e));

  const uint64_t min_repeats = std::max<uint64_t>(rq->inject_fault ? 2 : 1, rq->min_repeats);
  const auto began = std::chrono::steady_clock::now();
  double kernel_seconds = 0;
  uint64_t repeats = 0;
  for (;;) {
    T* target = static_cast<T*>(repeats == 0 ? first.p : current.p);
    float ms = 0;
    PLINTH_CUDA(cudaEventRecord(start.e));
    TiledGemm<T><<<grid, 256>>>(da, db, target, n);
    PLINTH_CUDA(cudaGetLastError());
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    kernel_seconds += ms / 1e3;
    if (repeats == 1 && rq->inject_fault) {
      // The fake fault: one flipped bit in one element, as a bad ALU or SRAM cell would leave.
      Bits word;
      Bits* at = static_cast<Bits*>(current.p) + (elements / 2 + n / 2);
      PLINTH_CUDA(cudaMemcpy(&word, at, sizeof word, cudaMemcpyDeviceToHost));
      word ^= Bits(1);
      PLINTH_CUDA(cudaMemcpy(at, &word, sizeof word, cudaMemcpyHostToDevice));
    }
    if (repeats > 0) {
      CountMismatches<Bits><<<compare_blocks, 256>>>(static_cast<const Bits*>(first.p),
                                                     static_cast<const Bits*>(current.p), elements, count);
      PLINTH_CUDA(cudaGetLastError());
    }
    ++repeats;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    if (repeats >= min_repeats && wall >= rq->seconds) break;
  }
  unsigned long long mismatches = 0;
  PLINTH_CUDA(cudaMemcpy(&mismatches, count, sizeof mismatches, cudaMemcpyDeviceToHost));
  if (rq->first_result) PLINTH_CUDA(cudaMemcpy(rq->first_result, first.p, bytes, cudaMemcpyDeviceToHost));
  out->repeats = repeats;
  out->mismatched_elements = mismatches;
  out->seconds = kernel_seconds;
  out->cublas_seconds = -1;
  out->cublas_note[0] = '\0';

  if (rq->with_cublas) {
    Cublas blas;
    if (blas.Load(out->cublas_note)) {
      T* dc = static_cast<T*>(current.p);
      PLINTH_CUDA(cudaDeviceSynchronize());
      if (int status = CublasGemm(blas, da, db, dc, n)) {  // warm-up (and plan selection)
        std::snprintf(out->cublas_note, PLINTH_GPU_ERROR_LEN, "failed (%s: status %d)", blas.loaded, status);
        return PLINTH_GPU_OK;
      }
      PLINTH_CUDA(cudaDeviceSynchronize());
      const int runs = 5;
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < runs; ++i) CublasGemm(blas, da, db, dc, n);
      PLINTH_CUDA(cudaDeviceSynchronize());
      out->cublas_seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / runs;
      std::snprintf(out->cublas_note, PLINTH_GPU_ERROR_LEN, "%s", blas.loaded);
    }
  }
  return PLINTH_GPU_OK;
}

int Gemm(int32_t ordinal, const plinth_gpu_gemm_request* rq, plinth_gpu_gemm_result* out, char* err) {
  if (int rc = Select(ordinal, err)) return rc;
  if (rq->n <= 0 || rq->n % PLINTH_GEMM_BLOCK != 0 || !rq->a || !rq->b) {
    return Fail(err, PLINTH_GPU_ERROR, "gemm: n must be a positive multiple of %d", PLINTH_GEMM_BLOCK);
  }
  return rq->fp64 ? GemmOf<double, unsigned long long>(rq, out, err)
                  : GemmOf<float, unsigned int>(rq, out, err);
}

// ------------------------------------------------------------ memory patterns

struct BadLog {
  unsigned long long errors;
  unsigned int count;
  plinth_gpu_bad_word bad[PLINTH_GPU_MAX_BAD];
};

// One step over every word: verify what the last step wrote, then write the next pattern.
__global__ void __launch_bounds__(256)
    MemoryStep(uint32_t* words, uint64_t n, plinth_gpu_mem_step step, uint32_t step_index, BadLog* log) {
  for (uint64_t i = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; i < n;
       i += uint64_t(gridDim.x) * blockDim.x) {
    if (step.action != PLINTH_STEP_WRITE) {
      const uint32_t want = plinth_gpu_pattern(step.expect_kind, step.expect_param, i);
      const uint32_t got = words[i];
      if (got != want) {
        atomicAdd(&log->errors, 1ull);
        // Stop counting slots once the list is full, so that the counter never wraps.
        const unsigned int slot =
            log->count < PLINTH_GPU_MAX_BAD ? atomicAdd(&log->count, 1u) : PLINTH_GPU_MAX_BAD;
        if (slot < PLINTH_GPU_MAX_BAD) {
          log->bad[slot].offset_bytes = i * 4;
          log->bad[slot].expected = want;
          log->bad[slot].actual = got;
          log->bad[slot].step = step_index;
        }
      }
    }
    if (step.action != PLINTH_STEP_VERIFY)
      words[i] = plinth_gpu_pattern(step.write_kind, step.write_param, i);
  }
}

int MemoryTest(int32_t ordinal, uint64_t words, int32_t full, uint64_t fault_word,
               plinth_gpu_memtest_result* out, char* err) {
  if (int rc = Select(ordinal, err)) return rc;
  if (words == 0) return Fail(err, PLINTH_GPU_ERROR, "memory test: nothing to test");
  // The log first: the region takes nearly all that is free.
  DeviceBuffer log_buffer;
  PLINTH_CUDA(log_buffer.Allocate(sizeof(BadLog)));
  PLINTH_CUDA(cudaMemset(log_buffer.p, 0, sizeof(BadLog)));
  BadLog* log = static_cast<BadLog*>(log_buffer.p);
  // What was free a moment ago may not all be allocatable: back off by sixteenths.
  DeviceBuffer region;
  for (int attempt = 0;; ++attempt) {
    cudaError_t e = region.Allocate(words * 4);
    if (e == cudaSuccess) break;
    cudaGetLastError();  // an allocation failure is not sticky; clear it
    if (e != cudaErrorMemoryAllocation || attempt == 8 || words < 32)
      return CudaFail(e, "cudaMalloc(memory test region)", err);
    words -= words / 16;
  }
  uint32_t* w = static_cast<uint32_t*>(region.p);
  int blocks = 0;
  if (int rc = GridFor(MemoryStep, words, &blocks, err)) return rc;
  plinth_gpu_mem_step steps[PLINTH_GPU_MAX_STEPS];
  const int count = plinth_gpu_memtest_steps(full, steps);
  for (int s = 0; s < count; ++s) {
    MemoryStep<<<blocks, 256>>>(w, words, steps[s], uint32_t(s), log);
    PLINTH_CUDA(cudaGetLastError());
    if (fault_word < words && steps[s].action != PLINTH_STEP_VERIFY) {
      // The fake fault: a cell that flips bit 0 after every write.
      uint32_t value = 0;
      PLINTH_CUDA(cudaMemcpy(&value, w + fault_word, 4, cudaMemcpyDeviceToHost));
      value ^= 1u;
      PLINTH_CUDA(cudaMemcpy(w + fault_word, &value, 4, cudaMemcpyHostToDevice));
    }
  }
  PLINTH_CUDA(cudaDeviceSynchronize());
  BadLog host;
  PLINTH_CUDA(cudaMemcpy(&host, log, sizeof host, cudaMemcpyDeviceToHost));
  out->bytes_tested = words * 4;
  out->errors = host.errors;
  out->bad_count = std::min<unsigned int>(host.count, PLINTH_GPU_MAX_BAD);
  std::memcpy(out->bad, host.bad, sizeof(plinth_gpu_bad_word) * out->bad_count);
  return PLINTH_GPU_OK;
}

// ------------------------------------------------------------ host <-> device

int Transfer(int32_t ordinal, uint64_t bytes, int32_t runs, plinth_gpu_transfer* out, char* err) {
  if (int rc = Select(ordinal, err)) return rc;
  if (bytes == 0 || runs < 1) return Fail(err, PLINTH_GPU_ERROR, "transfer: nothing to measure");
  PinnedBuffer host;
  PLINTH_CUDA(cudaMallocHost(&host.p, bytes));
  std::memset(host.p, 0x5a, bytes);
  DeviceBuffer device;
  PLINTH_CUDA(device.Allocate(bytes));
  Event start, stop;
  PLINTH_CUDA(cudaEventCreate(&start.e));
  PLINTH_CUDA(cudaEventCreate(&stop.e));
  float best_h2d = 0, best_d2h = 0;
  for (int run = 0; run <= runs; ++run) {  // run 0 warms up
    float ms = 0;
    PLINTH_CUDA(cudaEventRecord(start.e));
    PLINTH_CUDA(cudaMemcpyAsync(device.p, host.p, bytes, cudaMemcpyHostToDevice));
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    if (run > 0 && (best_h2d == 0 || ms < best_h2d)) best_h2d = ms;
    PLINTH_CUDA(cudaEventRecord(start.e));
    PLINTH_CUDA(cudaMemcpyAsync(host.p, device.p, bytes, cudaMemcpyDeviceToHost));
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    if (run > 0 && (best_d2h == 0 || ms < best_d2h)) best_d2h = ms;
  }
  out->bytes = bytes;
  out->runs = runs;
  out->h2d_seconds = best_h2d / 1e3;
  out->d2h_seconds = best_d2h / 1e3;
  return PLINTH_GPU_OK;
}

// ------------------------------------------------------------ state-vector simulator
//
// The CPU simulator's passes (kernels/qpu/simulator.cpp) on the device: one
// thread per amplitude pair (or quadruple for swap), grid-stride. Pair p's
// first amplitude is p with a 0 inserted at the target bit, so consecutive
// threads touch consecutive amplitudes for every target (for target 0 the
// pair's two amplitudes are neighbours): loads are coalesced. Products and
// sums use the _rn intrinsics, which the compiler never fuses into an FMA,
// in the CPU's order: the same inputs give the same bits as the CPU wherever
// its compiler does not fuse either (docs/qpu.md).

struct QpuState {
  int32_t ordinal = 0;
  uint32_t qubits = 0;
  uint64_t size = 0;             // amplitudes
  double2* amps = nullptr;       // size amplitudes
  double* chunk_sums = nullptr;  // one per PLINTH_QPU_CHUNK pairs
  uint64_t chunks = 0;
};

constexpr uint64_t kQpuWindow = uint64_t{1} << 22;  // probabilities staged per copy to the host

__device__ __forceinline__ uint64_t InsertZero(uint64_t i, uint32_t bit) {
  const uint64_t low = i & ((uint64_t{1} << bit) - 1);
  return ((i >> bit) << (bit + 1)) | low;
}

__device__ __forceinline__ double2 CMul(double2 a, double2 b) {
  return make_double2(__dsub_rn(__dmul_rn(a.x, b.x), __dmul_rn(a.y, b.y)),
                      __dadd_rn(__dmul_rn(a.x, b.y), __dmul_rn(a.y, b.x)));
}

__device__ __forceinline__ double2 CAdd(double2 a, double2 b) {
  return make_double2(__dadd_rn(a.x, b.x), __dadd_rn(a.y, b.y));
}

__device__ __forceinline__ double Norm(double2 a) {
  return __dadd_rn(__dmul_rn(a.x, a.x), __dmul_rn(a.y, a.y));
}

// diagonal: m01 == m10 == 0 (only m00 and m11 multiply); keep0: also m00 == 1.
__global__ void QpuMatrixKernel(double2* a, uint64_t pairs, uint32_t target, uint64_t controls, double2 m0,
                                double2 m1, double2 m2, double2 m3, int diagonal, int keep0) {
  const uint64_t stride = uint64_t{1} << target;
  for (uint64_t p = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; p < pairs;
       p += uint64_t{gridDim.x} * blockDim.x) {
    const uint64_t i0 = InsertZero(p, target);
    if ((i0 & controls) != controls) continue;
    const double2 x = a[i0], y = a[i0 | stride];
    if (diagonal) {
      if (!keep0) a[i0] = CMul(m0, x);
      a[i0 | stride] = CMul(m3, y);
    } else {
      a[i0] = CAdd(CMul(m0, x), CMul(m1, y));
      a[i0 | stride] = CAdd(CMul(m2, x), CMul(m3, y));
    }
  }
}

__global__ void QpuSwapKernel(double2* a, uint64_t quads, uint32_t lo, uint32_t hi, uint64_t controls) {
  for (uint64_t p = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; p < quads;
       p += uint64_t{gridDim.x} * blockDim.x) {
    const uint64_t base = InsertZero(InsertZero(p, lo), hi);
    if ((base & controls) != controls) continue;
    const uint64_t i = base | (uint64_t{1} << lo), j = base | (uint64_t{1} << hi);
    const double2 t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

// Chunk c's sum of |a|^2 over the pairs' `one` amplitudes, added in index
// order (the CPU's order; a deterministic result, unlike atomics).
__global__ void QpuProbabilityKernel(const double2* a, uint64_t pairs, uint32_t qubit, uint64_t chunks,
                                     double* sums) {
  const uint64_t c = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x;
  if (c >= chunks) return;
  const uint64_t bit = uint64_t{1} << qubit;
  const uint64_t begin = c * PLINTH_QPU_CHUNK;
  const uint64_t end = begin + PLINTH_QPU_CHUNK < pairs ? begin + PLINTH_QPU_CHUNK : pairs;
  double s = 0;
  for (uint64_t p = begin; p < end; ++p) s = __dadd_rn(s, Norm(a[InsertZero(p, qubit) | bit]));
  sums[c] = s;
}

__global__ void QpuCollapseKernel(double2* a, uint64_t pairs, uint32_t qubit, int one, double scale) {
  const uint64_t bit = uint64_t{1} << qubit;
  for (uint64_t p = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; p < pairs;
       p += uint64_t{gridDim.x} * blockDim.x) {
    const uint64_t i0 = InsertZero(p, qubit);
    const uint64_t zero = one ? i0 : i0 | bit, keep = one ? i0 | bit : i0;
    a[zero] = make_double2(0, 0);
    const double2 v = a[keep];
    a[keep] = make_double2(__dmul_rn(v.x, scale), __dmul_rn(v.y, scale));
  }
}

__global__ void QpuNormKernel(const double2* a, uint64_t count, double* out) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < count;
       i += uint64_t{gridDim.x} * blockDim.x) {
    out[i] = Norm(a[i]);
  }
}

__global__ void QpuZeroStateKernel(double2* a, uint64_t size) {
  for (uint64_t i = blockIdx.x * uint64_t{blockDim.x} + threadIdx.x; i < size;
       i += uint64_t{gridDim.x} * blockDim.x) {
    a[i] = make_double2(i == 0 ? 1.0 : 0.0, 0);
  }
}

constexpr unsigned kQpuThreads = 256;

// Blocks for a grid-stride loop over `items`: enough to fill any device,
// capped so the grid stays legal and each thread does a few items.
unsigned QpuBlocks(uint64_t items) {
  const uint64_t blocks = (items + kQpuThreads - 1) / kQpuThreads;
  return static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(blocks, uint64_t{1} << 16)));
}

QpuState* AsState(void* state) {
  return static_cast<QpuState*>(state);
}

int QpuLaunched(const char* what, char* err) {
  cudaError_t e = cudaGetLastError();
  return e == cudaSuccess ? PLINTH_GPU_OK : CudaFail(e, what, err);
}

int QpuSetZero(void* state, char* err) {
  QpuState* s = AsState(state);
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  QpuZeroStateKernel<<<QpuBlocks(s->size), kQpuThreads>>>(s->amps, s->size);
  return QpuLaunched("qpu set_zero", err);
}

void QpuDestroy(void* state) {
  QpuState* s = AsState(state);
  if (s == nullptr) return;
  cudaSetDevice(s->ordinal);
  if (s->amps) cudaFree(s->amps);
  if (s->chunk_sums) cudaFree(s->chunk_sums);
  delete s;
}

int QpuCreate(int32_t ordinal, uint32_t qubits, void** state, char* err) {
  *state = nullptr;
  if (qubits < 1 || qubits > 40)
    return Fail(err, PLINTH_GPU_ERROR, "qpu: %u qubits (1 to 40 on a GPU)", qubits);
  if (int rc = Select(ordinal, err)) return rc;
  QpuState* s = new QpuState;
  s->ordinal = ordinal;
  s->qubits = qubits;
  s->size = uint64_t{1} << qubits;
  s->chunks = (s->size / 2 + PLINTH_QPU_CHUNK - 1) / PLINTH_QPU_CHUNK;
  cudaError_t e = cudaMalloc(reinterpret_cast<void**>(&s->amps), s->size * sizeof(double2));
  if (e == cudaSuccess) e = cudaMalloc(reinterpret_cast<void**>(&s->chunk_sums), s->chunks * sizeof(double));
  if (e != cudaSuccess) {
    QpuDestroy(s);
    return CudaFail(e, "qpu: allocating the state vector", err);
  }
  if (int rc = QpuSetZero(s, err)) {
    QpuDestroy(s);
    return rc;
  }
  *state = s;
  return PLINTH_GPU_OK;
}

int QpuCopy(void* dst, const void* src, char* err) {
  QpuState* d = AsState(dst);
  const QpuState* s = static_cast<const QpuState*>(src);
  if (d->size != s->size || d->ordinal != s->ordinal)
    return Fail(err, PLINTH_GPU_ERROR, "qpu copy: states differ");
  PLINTH_CUDA(cudaSetDevice(d->ordinal));
  PLINTH_CUDA(cudaMemcpyAsync(d->amps, s->amps, s->size * sizeof(double2), cudaMemcpyDeviceToDevice));
  return PLINTH_GPU_OK;
}

int QpuApplyMatrix(void* state, const double* m, uint32_t target, uint64_t controls, char* err) {
  QpuState* s = AsState(state);
  if (target >= s->qubits) return Fail(err, PLINTH_GPU_ERROR, "qpu: no qubit %u", target);
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  const double2 m0 = make_double2(m[0], m[1]), m1 = make_double2(m[2], m[3]), m2 = make_double2(m[4], m[5]),
                m3 = make_double2(m[6], m[7]);
  const bool diagonal = m[2] == 0 && m[3] == 0 && m[4] == 0 && m[5] == 0;
  const bool keep0 = diagonal && m[0] == 1 && m[1] == 0;
  const uint64_t pairs = s->size / 2;
  QpuMatrixKernel<<<QpuBlocks(pairs), kQpuThreads>>>(s->amps, pairs, target, controls, m0, m1, m2, m3,
                                                     diagonal ? 1 : 0, keep0 ? 1 : 0);
  return QpuLaunched("qpu gate", err);
}

int QpuApplySwap(void* state, uint32_t qa, uint32_t qb, uint64_t controls, char* err) {
  QpuState* s = AsState(state);
  if (qa >= s->qubits || qb >= s->qubits)
    return Fail(err, PLINTH_GPU_ERROR, "qpu: no qubit %u or %u", qa, qb);
  if (qa == qb) return PLINTH_GPU_OK;
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  const uint64_t quads = s->size / 4;
  QpuSwapKernel<<<QpuBlocks(quads), kQpuThreads>>>(s->amps, quads, std::min(qa, qb), std::max(qa, qb),
                                                   controls);
  return QpuLaunched("qpu swap", err);
}

int QpuProbabilityOfOne(void* state, uint32_t qubit, double* out, char* err) {
  QpuState* s = AsState(state);
  if (qubit >= s->qubits) return Fail(err, PLINTH_GPU_ERROR, "qpu: no qubit %u", qubit);
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  const unsigned blocks = static_cast<unsigned>((s->chunks + kQpuThreads - 1) / kQpuThreads);
  QpuProbabilityKernel<<<blocks, kQpuThreads>>>(s->amps, s->size / 2, qubit, s->chunks, s->chunk_sums);
  if (int rc = QpuLaunched("qpu probability", err)) return rc;
  // At most 2^40 / 2 / 16384 = 2^25 sums; added on the host in chunk order.
  double* sums = new double[s->chunks];
  cudaError_t e = cudaMemcpy(sums, s->chunk_sums, s->chunks * sizeof(double), cudaMemcpyDeviceToHost);
  double total = 0;
  for (uint64_t c = 0; c < s->chunks; ++c) total += sums[c];
  delete[] sums;
  if (e != cudaSuccess) return CudaFail(e, "qpu probability", err);
  *out = total;
  return PLINTH_GPU_OK;
}

int QpuCollapse(void* state, uint32_t qubit, int32_t one, double probability, char* err) {
  QpuState* s = AsState(state);
  if (qubit >= s->qubits) return Fail(err, PLINTH_GPU_ERROR, "qpu: no qubit %u", qubit);
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  const double scale = probability > 0 ? 1 / std::sqrt(probability) : 0;  // as the CPU computes it
  const uint64_t pairs = s->size / 2;
  QpuCollapseKernel<<<QpuBlocks(pairs), kQpuThreads>>>(s->amps, pairs, qubit, one ? 1 : 0, scale);
  return QpuLaunched("qpu collapse", err);
}

int QpuProbabilities(void* state, double* host_out, char* err) {
  QpuState* s = AsState(state);
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  const uint64_t window = std::min(s->size, kQpuWindow);
  DeviceBuffer staging;
  PLINTH_CUDA(staging.Allocate(window * sizeof(double)));
  double* d = static_cast<double*>(staging.p);
  for (uint64_t first = 0; first < s->size; first += window) {
    const uint64_t count = std::min(window, s->size - first);
    QpuNormKernel<<<QpuBlocks(count), kQpuThreads>>>(s->amps + first, count, d);
    if (int rc = QpuLaunched("qpu probabilities", err)) return rc;
    PLINTH_CUDA(cudaMemcpy(host_out + first, d, count * sizeof(double), cudaMemcpyDeviceToHost));
  }
  return PLINTH_GPU_OK;
}

int QpuRead(void* state, void* host_out, char* err) {
  QpuState* s = AsState(state);
  PLINTH_CUDA(cudaSetDevice(s->ordinal));
  PLINTH_CUDA(cudaMemcpy(host_out, s->amps, s->size * sizeof(double2), cudaMemcpyDeviceToHost));
  return PLINTH_GPU_OK;
}

int QpuBench(int32_t ordinal, uint32_t qubits, uint32_t target, int32_t reps, double* gate_seconds,
             double* copy_seconds, char* err) {
  if (reps < 1 || target >= qubits)
    return Fail(err, PLINTH_GPU_ERROR, "qpu bench: reps >= 1, target < qubits");
  void* handle = nullptr;
  if (int rc = QpuCreate(ordinal, qubits, &handle, err)) return rc;
  struct Owned {
    void* h;
    ~Owned() { QpuDestroy(h); }
  } owned{handle};
  QpuState* s = AsState(handle);
  const uint64_t bytes = s->size * sizeof(double2);
  DeviceBuffer copy;
  PLINTH_CUDA(copy.Allocate(bytes));
  Event start, stop;
  PLINTH_CUDA(cudaEventCreate(&start.e));
  PLINTH_CUDA(cudaEventCreate(&stop.e));
  const double r = 0.70710678118654752440;
  const double h[8] = {r, 0, r, 0, r, 0, -r, 0};
  float best_gate = 0, best_copy = 0;
  for (int32_t run = 0; run <= reps; ++run) {  // run 0 warms up
    float ms = 0;
    PLINTH_CUDA(cudaEventRecord(start.e));
    if (int rc = QpuApplyMatrix(handle, h, target, 0, err)) return rc;
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    if (run > 0 && (best_gate == 0 || ms < best_gate)) best_gate = ms;
    PLINTH_CUDA(cudaEventRecord(start.e));
    PLINTH_CUDA(cudaMemcpyAsync(copy.p, s->amps, bytes, cudaMemcpyDeviceToDevice));
    PLINTH_CUDA(cudaEventRecord(stop.e));
    PLINTH_CUDA(Elapsed(start, stop, &ms));
    if (run > 0 && (best_copy == 0 || ms < best_copy)) best_copy = ms;
  }
  *gate_seconds = best_gate / 1e3;
  *copy_seconds = best_copy / 1e3;
  return PLINTH_GPU_OK;
}

const plinth_gpu_module_v1 kModule = {
    PLINTH_GPU_ABI_VERSION,
    sizeof(plinth_gpu_module_v1),
    DeviceCount,
    DeviceInfo,
    Bandwidth,
    Gemm,
    MemoryTest,
    Transfer,
    QpuCreate,
    QpuDestroy,
    QpuSetZero,
    QpuCopy,
    QpuApplyMatrix,
    QpuApplySwap,
    QpuProbabilityOfOne,
    QpuCollapse,
    QpuProbabilities,
    QpuRead,
    QpuBench,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const plinth_gpu_module_v1* plinth_gpu_module(
    uint32_t abi_version) {
  return abi_version == PLINTH_GPU_ABI_VERSION ? &kModule : nullptr;
}
