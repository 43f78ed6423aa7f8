// plinth-qpu-bench: how close a single-qubit gate pass of the state-vector
// simulator (kernels/qpu) comes to the machine's memory bandwidth.
//
// A gate pass reads and writes every amplitude once (2 x 16*2^n bytes moved);
// so does a STREAM-style copy of the same byte count into a second buffer,
// timed in the same run with the same threads. The ratio copy time / gate
// time is the fraction of measured bandwidth the gate pass reaches (target
// >= 0.5, docs/benchmarks.md). Both buffers must fit: with less free memory
// than 2 x 16*2^26 bytes, the largest n that fits is used, and said.
//
// Then, where a CUDA GPU is usable (kernels/gpu/cuda_backend.h), the same
// pass (h on qubit 0 and on the top qubit) on GPU 0 against a device-to-device
// copy of the same bytes, timed with CUDA events (module entry qpu_bench);
// without a GPU it says why and skips that part.
//
//   plinth-qpu-bench [--qubits=26] [--threads=0] [--reps=5]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/gpu/cuda_backend.h"
#include "kernels/qpu/memory.h"
#include "kernels/qpu/qasm.h"
#include "kernels/qpu/simulator.h"

namespace {

using plinth::qpu::Complex;

template <typename Fn>
double BestSeconds(int reps, Fn&& fn) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

bool Flag(const char* arg, const char* name, long* value) {
  const size_t n = std::strlen(name);
  if (std::strncmp(arg, name, n) != 0 || arg[n] != '=') return false;
  *value = std::strtol(arg + n + 1, nullptr, 10);
  return true;
}

// The gate pass on GPU 0 against a device-to-device copy; 0 also when there
// is no GPU (said), 1 when a GPU fails.
int GpuPass(uint32_t qubits, int reps) {
  const plinth::gpu::Discovery d = plinth::gpu::DiscoverCuda();
  if (d.why != plinth::gpu::NoGpu::kNone || d.devices.empty()) {
    std::printf("gpu: not measured: %s\n", d.message.c_str());
    return 0;
  }
  const plinth::gpu::DeviceInfo& dev = d.devices[0];
  const uint32_t wanted = qubits;
  // The state and the copy's destination, with a tenth of free memory to spare.
  while (qubits > 20 && 2 * plinth::qpu::StateBytes(qubits) > dev.free_bytes / 10 * 9) --qubits;
  if (qubits != wanted) {
    std::printf("gpu note: %u qubits do not fit twice in the %s free on %s; using %u qubits\n", wanted,
                plinth::qpu::FormatBytes(dev.free_bytes).c_str(), dev.name.c_str(), qubits);
  }
  const plinth_gpu_module_v1* table = plinth::gpu::ModuleTable(d);
  const double moved = 2.0 * static_cast<double>(plinth::qpu::StateBytes(qubits));
  std::printf("gpu: cuda:0 (%s), %u qubits, %s; best of %d\n", dev.name.c_str(), qubits,
              plinth::qpu::FormatBytes(plinth::qpu::StateBytes(qubits)).c_str(), reps);
  double worst = 1e300;
  for (uint32_t target : {0u, qubits - 1}) {
    double gate_s = 0, copy_s = 0;
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (table->qpu_bench(0, qubits, target, reps, &gate_s, &copy_s, err) != PLINTH_GPU_OK) {
      std::fprintf(stderr, "gpu: %s\n", err);
      return 1;
    }
    if (target == 0) {
      std::printf("%-22s %9.3f ms  %7.2f GB/s\n", "gpu copy (d2d)", copy_s * 1e3, moved / copy_s / 1e9);
    }
    worst = std::min(worst, copy_s / gate_s);
    std::printf("gpu h on qubit %-7u %9.3f ms  %7.2f GB/s  ratio to copy %.2f\n", target, gate_s * 1e3,
                moved / gate_s / 1e9, copy_s / gate_s);
  }
  std::printf("gpu worst ratio: %.2f (target >= 0.5)\n", worst);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  long qubits = 26, threads = 0, reps = 5;
  for (int i = 1; i < argc; ++i) {
    if (!Flag(argv[i], "--qubits", &qubits) && !Flag(argv[i], "--threads", &threads) &&
        !Flag(argv[i], "--reps", &reps)) {
      std::fprintf(stderr, "usage: plinth-qpu-bench [--qubits=26] [--threads=0] [--reps=5]\n");
      return 2;
    }
  }
  if (qubits < 20 || qubits > 40 || threads < 0 || reps < 1) {
    std::fprintf(stderr, "plinth-qpu-bench: --qubits from 20 to 40, --threads >= 0, --reps >= 1\n");
    return 2;
  }
  // The state and the copy's destination, with a tenth of the memory to spare.
  const auto available = plinth::qpu::AvailableMemory();
  const long wanted = qubits;
  while (available && qubits > 20 &&
         2 * plinth::qpu::StateBytes(static_cast<uint32_t>(qubits)) > *available / 10 * 9) {
    --qubits;
  }
  const uint32_t n = static_cast<uint32_t>(qubits);
  const uint64_t bytes = plinth::qpu::StateBytes(n);
  if (qubits != wanted) {
    std::printf("note: %ld qubits (2 x %s) do not fit in the %s available; using %u qubits\n", wanted,
                plinth::qpu::FormatBytes(plinth::qpu::StateBytes(static_cast<uint32_t>(wanted))).c_str(),
                plinth::qpu::FormatBytes(*available).c_str(), n);
  }

  plinth::qpu::StateVector state(n, static_cast<unsigned>(threads));
  std::vector<Complex> copy(state.amplitudes().size());  // zeroed: its pages are touched before timing
  const size_t chunk = plinth::qpu::StateVector::kChunk;
  const size_t chunks = (copy.size() + chunk - 1) / chunk;
  const Complex* src = state.amplitudes().data();
  Complex* dst = copy.data();
  auto stream_copy = [&] {
    state.ForChunks(chunks, copy.size(), [&](size_t c) {
      const size_t begin = c * chunk, end = std::min(copy.size(), begin + chunk);
      std::memcpy(dst + begin, src + begin, (end - begin) * sizeof(Complex));
    });
  };
  plinth::qpu::Matrix2 h, t;
  plinth::qpu::GateMatrix("h", {}, &h);
  plinth::qpu::GateMatrix("t", {}, &t);

  stream_copy();  // warm-up
  const double copy_s = BestSeconds(static_cast<int>(reps), stream_copy);
  const double moved = 2.0 * static_cast<double>(bytes);
  std::printf("state: %u qubits, %s; threads: %u; best of %ld\n", n, plinth::qpu::FormatBytes(bytes).c_str(),
              state.threads(), reps);
  std::printf("%-22s %9.1f ms  %7.2f GB/s\n", "copy (STREAM-style)", copy_s * 1e3, moved / copy_s / 1e9);
  struct Pass {
    const char* name;
    const plinth::qpu::Matrix2* m;
    uint32_t target;
  };
  const Pass passes[] = {
      {"h on qubit 0", &h, 0}, {"h on the top qubit", &h, n - 1}, {"t on qubit 0 (diagonal)", &t, 0}};
  double worst = 1e300;
  for (const Pass& p : passes) {
    state.ApplyMatrix(*p.m, p.target);  // warm-up
    const double s = BestSeconds(static_cast<int>(reps), [&] { state.ApplyMatrix(*p.m, p.target); });
    worst = std::min(worst, copy_s / s);
    std::printf("%-22s %9.1f ms  %7.2f GB/s  ratio to copy %.2f\n", p.name, s * 1e3, moved / s / 1e9,
                copy_s / s);
  }
  std::printf("worst ratio: %.2f (target >= 0.5)\n", worst);
  return GpuPass(static_cast<uint32_t>(wanted), static_cast<int>(reps));
}
