#include "kernels/gpu/reference.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <vector>

#include "kernels/gpu/module_abi.h"

namespace plinth::gpu {

// ------------------------------------------------------------ GEMM

template <typename T>
void FillMatrix(T* m, size_t count, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  for (size_t i = 0; i < count; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int step = static_cast<int>(x % 8193) - 4096;  // -4096 .. 4096
    m[i] = static_cast<T>(step) / static_cast<T>(4096);
  }
}

template <typename T>
void TiledGemm(const T* a, const T* b, T* c, int n) {
  constexpr int BM = PLINTH_GEMM_BLOCK, BK = PLINTH_GEMM_BLOCK_K, TM = PLINTH_GEMM_THREAD;
  constexpr int kThreadsPerSide = BM / TM;
  const size_t N = static_cast<size_t>(n);
  std::vector<T> acc(static_cast<size_t>(BM) * BM);
  // One thread block after another; within a block, each k-tile is applied to
  // every thread's micro-tile before the next, as __syncthreads orders it on
  // the GPU. Per element: one FMA per k, k increasing.
  for (int row0 = 0; row0 < n; row0 += BM) {
    for (int col0 = 0; col0 < n; col0 += BM) {
      std::fill(acc.begin(), acc.end(), T(0));
      for (int k0 = 0; k0 < n; k0 += BK) {
        const int k_end = std::min(k0 + BK, n);
        for (int ty = 0; ty < kThreadsPerSide; ++ty) {
          for (int tx = 0; tx < kThreadsPerSide; ++tx) {
            for (int k = k0; k < k_end; ++k) {
              for (int i = 0; i < TM; ++i) {
                const int row = row0 + ty * TM + i;
                if (row >= n) break;
                const T av = a[row * N + k];
                for (int j = 0; j < TM; ++j) {
                  const int col = col0 + tx * TM + j;
                  if (col >= n) break;
                  T& sum = acc[static_cast<size_t>(ty * TM + i) * BM + tx * TM + j];
                  sum = std::fma(av, b[k * N + col], sum);
                }
              }
            }
          }
        }
      }
      for (int i = 0; i < BM && row0 + i < n; ++i) {
        for (int j = 0; j < BM && col0 + j < n; ++j)
          c[(row0 + i) * N + col0 + j] = acc[static_cast<size_t>(i) * BM + j];
      }
    }
  }
}

template <typename T>
void NaiveGemm(const T* a, const T* b, T* c, int n) {
  const size_t N = static_cast<size_t>(n);
  for (size_t i = 0; i < N; ++i) {
    for (size_t j = 0; j < N; ++j) {
      T sum = 0;
      for (size_t k = 0; k < N; ++k) {
        const T product = a[i * N + k] * b[k * N + j];  // rounded: no fused multiply-add here
        sum = sum + product;
      }
      c[i * N + j] = sum;
    }
  }
}

template <typename T>
uint64_t CountBeyondBound(const T* got, const T* want, const T* a, const T* b, int n) {
  const size_t N = static_cast<size_t>(n);
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const double gamma = n * u / (1 - n * u);
  uint64_t beyond = 0;
  for (size_t i = 0; i < N; ++i) {
    for (size_t j = 0; j < N; ++j) {
      double magnitude = 0;
      for (size_t k = 0; k < N; ++k)
        magnitude += std::fabs(double(a[i * N + k])) * std::fabs(double(b[k * N + j]));
      const double g = double(got[i * N + j]), w = double(want[i * N + j]);
      // NaN or infinity in either is beyond any bound.
      if (!(std::fabs(g - w) <= 2 * gamma * magnitude)) ++beyond;
    }
  }
  return beyond;
}

template <typename T>
uint64_t CountBitMismatches(const T* x, const T* y, size_t count) {
  uint64_t mismatches = 0;
  for (size_t i = 0; i < count; ++i) mismatches += std::memcmp(&x[i], &y[i], sizeof(T)) != 0;
  return mismatches;
}

template void FillMatrix<float>(float*, size_t, uint64_t);
template void FillMatrix<double>(double*, size_t, uint64_t);
template void TiledGemm<float>(const float*, const float*, float*, int);
template void TiledGemm<double>(const double*, const double*, double*, int);
template void NaiveGemm<float>(const float*, const float*, float*, int);
template void NaiveGemm<double>(const double*, const double*, double*, int);
template uint64_t CountBeyondBound<float>(const float*, const float*, const float*, const float*, int);
template uint64_t CountBeyondBound<double>(const double*, const double*, const double*, const double*, int);
template uint64_t CountBitMismatches<float>(const float*, const float*, size_t);
template uint64_t CountBitMismatches<double>(const double*, const double*, size_t);

// ------------------------------------------------------------ memory patterns

const char* MemoryTestName(int test) {
  switch (test) {
    case PLINTH_TEST_WALKING_ONES: return "walking_ones";
    case PLINTH_TEST_MOVING_INVERSIONS: return "moving_inversions";
    default: return "address_in_address";
  }
}

MemoryTestResult PatternTest(uint32_t* words, uint64_t count, bool full, const FaultHook& after_write) {
  plinth_gpu_mem_step steps[PLINTH_GPU_MAX_STEPS];
  const int step_count = plinth_gpu_memtest_steps(full ? 1 : 0, steps);
  MemoryTestResult result;
  result.bytes_tested = count * 4;
  // volatile: every step really reads and writes memory, as on the device.
  volatile uint32_t* w = words;
  for (int s = 0; s < step_count; ++s) {
    const plinth_gpu_mem_step& step = steps[s];
    for (uint64_t i = 0; i < count; ++i) {
      if (step.action != PLINTH_STEP_WRITE) {
        const uint32_t want = plinth_gpu_pattern(step.expect_kind, step.expect_param, i);
        const uint32_t got = w[i];
        if (got != want) {
          ++result.errors;
          if (result.bad.size() < kMaxBadAddresses)
            result.bad.push_back({i * 4, want, got, MemoryTestName(step.test)});
        }
      }
      if (step.action != PLINTH_STEP_VERIFY) w[i] = plinth_gpu_pattern(step.write_kind, step.write_param, i);
    }
    if (after_write && step.action != PLINTH_STEP_VERIFY) after_write(words, count, s);
  }
  return result;
}

FaultHook FlipBitHook(uint64_t index) {
  return [index](uint32_t* words, uint64_t count, int) {
    if (index < count) words[index] ^= 1u;
  };
}

// ------------------------------------------------------------ the host as a device

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t start = line.find_first_not_of(' ', colon + 1);
        return start == std::string::npos ? "host CPU" : line.substr(start);
      }
    }
  }
  return "host CPU";
}

class CpuBackend final : public Backend {
 public:
  CpuBackend() {
    info_.backend = "cpu";
    info_.index = 0;
    info_.name = CpuModelName();
    info_.pci_bus_id = "host";
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    info_.multiprocessors = cpus > 0 ? static_cast<int>(cpus) : 1;
    const long page = sysconf(_SC_PAGESIZE);
    const long pages = sysconf(_SC_PHYS_PAGES), available = sysconf(_SC_AVPHYS_PAGES);
    if (page > 0 && pages > 0) info_.total_bytes = uint64_t(page) * uint64_t(pages);
    if (page > 0 && available > 0) info_.free_bytes = uint64_t(page) * uint64_t(available);
    long cache = -1;
#ifdef _SC_LEVEL3_CACHE_SIZE
    cache = sysconf(_SC_LEVEL3_CACHE_SIZE);
#endif
    info_.cache_bytes = cache > 0 ? uint64_t(cache) : uint64_t(32) << 20;
  }

  const DeviceInfo& Info() const override {
    return info_;
  }

  bool Bandwidth(uint64_t buffer_bytes, int runs, BandwidthResult* out, std::string* error) override {
    const size_t n = buffer_bytes / sizeof(double);
    if (n == 0 || runs < 1) return *error = "bandwidth: nothing to measure", false;
    std::vector<double> a(n, 0.0), b(n, 1.0), c(n, 2.0);
    double best_copy = 0, best_triad = 0, best_memcpy = 0;
    for (int run = 0; run <= runs; ++run) {  // run 0 warms up
      auto t = std::chrono::steady_clock::now();
      std::memcpy(a.data(), b.data(), n * sizeof(double));
      const double memcpy_s = Seconds(t);
      t = std::chrono::steady_clock::now();
      for (size_t i = 0; i < n; ++i) a[i] = b[i];
      const double copy_s = Seconds(t);
      t = std::chrono::steady_clock::now();
      for (size_t i = 0; i < n; ++i) a[i] = b[i] + 3.0 * c[i];
      const double triad_s = Seconds(t);
      if (run == 0) continue;
      if (best_memcpy == 0 || memcpy_s < best_memcpy) best_memcpy = memcpy_s;
      if (best_copy == 0 || copy_s < best_copy) best_copy = copy_s;
      if (best_triad == 0 || triad_s < best_triad) best_triad = triad_s;
    }
    // The loops' results are used, so that they are not optimised away.
    if (a[n / 2] != 1.0 + 3.0 * 2.0) return *error = "bandwidth: the triad computed a wrong value", false;
    const double bytes = double(n * sizeof(double));
    out->buffer_bytes = n * sizeof(double);
    out->runs = runs;
    out->copy_bytes_per_second = Rate(2 * bytes, best_copy);
    out->triad_bytes_per_second = Rate(3 * bytes, best_triad);
    // A host reports no memory clock: its peak is the best rate any loop
    // reached in this run, so a fraction never exceeds 1 (and the fake
    // bandwidth fault, an eighth, always fails 0.75).
    out->peak.bytes_per_second =
        std::max({Rate(2 * bytes, best_memcpy), out->copy_bytes_per_second, out->triad_bytes_per_second});
    out->peak.source = "measured: the best of memcpy, copy and triad in this run";
    return true;
  }

  bool Gemm(const GemmRequest& rq, GemmTiming* out, std::string* error) override {
    return rq.fp64 ? GemmOf<double>(rq, out, error) : GemmOf<float>(rq, out, error);
  }

  bool MemoryTest(uint64_t words, bool full, std::optional<uint64_t> fault_word, MemoryTestResult* out,
                  std::string* error) override {
    if (words == 0) return *error = "memory test: nothing to test", false;
    std::vector<uint32_t> region(words);
    *out = PatternTest(region.data(), words, full, fault_word ? FlipBitHook(*fault_word) : FaultHook());
    return true;
  }

  bool Transfer(uint64_t, int, TransferResult*, std::string* error) override {
    error->clear();  // the host has no host/device link
    return false;
  }

 private:
  template <typename T>
  bool GemmOf(const GemmRequest& rq, GemmTiming* out, std::string* error) {
    if (rq.n <= 0 || !rq.a || !rq.b) return *error = "gemm: n must be positive", false;
    const size_t elements = size_t(rq.n) * rq.n;
    const T* a = static_cast<const T*>(rq.a);
    const T* b = static_cast<const T*>(rq.b);
    std::vector<T> first(elements), current(elements);
    const uint64_t min_repeats = std::max<uint64_t>(rq.inject_fault ? 2 : 1, rq.min_repeats);
    const auto began = std::chrono::steady_clock::now();
    *out = GemmTiming{};
    for (;;) {
      std::vector<T>& target = out->repeats == 0 ? first : current;
      const auto t = std::chrono::steady_clock::now();
      TiledGemm(a, b, target.data(), rq.n);
      out->seconds += Seconds(t);
      if (out->repeats == 1 && rq.inject_fault) {
        // The fake fault: one flipped bit, as on the device.
        T& at = current[elements / 2 + rq.n / 2];
        unsigned char bytes[sizeof(T)];
        std::memcpy(bytes, &at, sizeof(T));
        bytes[0] ^= 1u;
        std::memcpy(&at, bytes, sizeof(T));
      }
      if (out->repeats > 0)
        out->mismatched_elements += CountBitMismatches(first.data(), current.data(), elements);
      ++out->repeats;
      if (out->repeats >= min_repeats && Seconds(began) >= rq.seconds) break;
    }
    if (rq.first_result) std::memcpy(rq.first_result, first.data(), elements * sizeof(T));
    out->cublas_seconds = -1;
    out->cublas = "not available (cpu backend)";
    return true;
  }

  DeviceInfo info_;
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend() {
  return std::make_unique<CpuBackend>();
}

}  // namespace plinth::gpu
