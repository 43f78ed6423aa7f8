// The CPU state-vector simulator: a Circuit (kernels/qpu/circuit.h) run for
// a number of shots, giving counts of classical bit strings.
//
// The state is 2^n complex<double> amplitudes (16·2^n bytes); amplitude i
// belongs to the basis state whose bit q is qubit q. A single-qubit gate is
// one pass over the amplitude pairs that differ in its target bit; controls
// skip pairs whose control bits are not all 1. Large passes are split into
// fixed-size chunks run on std::threads; every chunk is computed the same way
// whatever the thread count, and reductions add chunk sums in chunk order, so
// a result never depends on the number of threads.
//
// Measurement samples with std::mt19937_64 seeded from RunOptions::seed:
// counts are reproducible for a seed on one build. When NeedsPerShotRuns is
// false, every shot is sampled from the one final state; otherwise the
// circuit is run again for each shot (the gates before its first
// measurement, reset or if once, copied per shot when a second state fits).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "kernels/qpu/circuit.h"

namespace plinth::qpu {

class StateVector {
 public:
  // |0...0> on `qubits` qubits; threads 0: one per core. Allocates
  // StateBytes(qubits): check CheckStateMemory (kernels/qpu/memory.h) first.
  explicit StateVector(uint32_t qubits, unsigned threads = 0);

  uint32_t qubits() const { return qubits_; }
  const std::vector<Complex>& amplitudes() const { return amps_; }
  std::vector<Complex>& amplitudes() { return amps_; }

  void SetZeroState();
  void ApplyMatrix(const Matrix2& m, uint32_t target, uint64_t controls = 0);
  void ApplySwap(uint32_t a, uint32_t b, uint64_t controls = 0);
  // kUnitary and kSwap operations (measure and reset need a random source: see Run).
  void Apply(const Op& op);
  // The probability that measuring `qubit` gives 1.
  double ProbabilityOfOne(uint32_t qubit) const;
  // Projects onto `qubit` == `one`, whose probability was `probability`, and renormalises.
  void Collapse(uint32_t qubit, bool one, double probability);
  // Squared norms summed in chunk order (1 up to rounding).
  double Norm() const;

  // Amplitude pairs (or amplitudes) per chunk: the unit of work and of
  // reductions. Fixed, so results never depend on the thread count.
  static constexpr size_t kChunk = size_t{1} << 14;
  // Below this many amplitudes touched, a pass runs on the calling thread.
  static constexpr size_t kParallelThreshold = size_t{1} << 18;

  // Runs fn(chunk) for chunk in [0, chunks), on up to threads() threads
  // when `work` (amplitudes touched) is large enough to pay for them.
  template <typename Fn>
  void ForChunks(size_t chunks, size_t work, Fn&& fn) const;
  unsigned threads() const { return threads_; }

 private:
  uint32_t qubits_;
  unsigned threads_;
  std::vector<Complex> amps_;
};

struct RunOptions {
  uint64_t shots = 1024;
  uint64_t seed = 0;
  unsigned threads = 0;     // 0: one per core
  uint64_t max_memory = 0;  // a cap on the state vector's bytes; 0: none (available memory still counts)
};

struct RunResult {
  bool ok = false;
  std::string error;  // when !ok: the memory refusal
  // Counts by key (CountsKey), sorted by key.
  std::vector<std::pair<std::string, uint64_t>> counts;
  bool per_shot = false;       // the circuit was run once per shot (NeedsPerShotRuns)
  std::string device = "cpu";  // the device that ran it: "cpu" or "cuda:N" (StateBackend::Device)
};

template <typename Fn>
inline void StateVector::ForChunks(size_t chunks, size_t work, Fn&& fn) const {
  const unsigned threads =
      work < kParallelThreshold ? 1 : static_cast<unsigned>(std::min<size_t>(threads_, chunks));
  if (threads <= 1) {
    for (size_t c = 0; c < chunks; ++c) fn(c);
    return;
  }
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) fn(c);
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();
}

// Checks memory (refusing before allocating), then runs the circuit on the
// CPU (CpuState; other devices: RunOn in kernels/qpu/backend.h, chosen by
// kernels/qpu/device.h).
RunResult Run(const Circuit& circuit, const RunOptions& options);

// The state after the circuit's gates, from |0...0>, for circuits without
// measure, reset or if (those are skipped here); for tests and tools.
StateVector FinalState(const Circuit& circuit, unsigned threads = 0);

// A uniform double in [0, 1) from the generator: the top 53 bits of one draw.
inline double Uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

}  // namespace plinth::qpu
