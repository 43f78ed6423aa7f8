#include "kernels/qpu/simulator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include "kernels/qpu/backend.h"
#include "kernels/qpu/memory.h"

namespace plinth::qpu {

namespace {

constexpr size_t kChunk = StateVector::kChunk;

size_t ChunksFor(size_t items) {
  return (items + kChunk - 1) / kChunk;
}

// i with a 0 bit inserted at position `bit`.
inline uint64_t InsertZero(uint64_t i, uint32_t bit) {
  const uint64_t low = i & ((uint64_t{1} << bit) - 1);
  return ((i >> bit) << (bit + 1)) | low;
}

// a*b without the C99 Annex G checks (NaN/infinity recovery) that
// std::complex's operator* calls out of line for: amplitudes are finite.
inline Complex Mul(Complex a, Complex b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

}  // namespace

StateVector::StateVector(uint32_t qubits, unsigned threads)
    : qubits_(qubits),
      threads_(threads != 0 ? threads : std::max(1u, std::thread::hardware_concurrency())),
      amps_(size_t{1} << qubits) {
  amps_[0] = 1;
}

void StateVector::SetZeroState() {
  Complex* a = amps_.data();
  ForChunks(ChunksFor(amps_.size()), amps_.size(), [&](size_t c) {
    const size_t end = std::min(amps_.size(), (c + 1) * kChunk);
    std::fill(a + c * kChunk, a + end, Complex(0, 0));
  });
  amps_[0] = 1;
}

void StateVector::ApplyMatrix(const Matrix2& m, uint32_t target, uint64_t controls) {
  const uint64_t pairs = amps_.size() / 2;
  const uint64_t stride = uint64_t{1} << target;
  Complex* a = amps_.data();
  const bool diagonal = m[1] == Complex(0, 0) && m[2] == Complex(0, 0);
  const bool keep0 = diagonal && m[0] == Complex(1, 0);
  const Complex m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3];
  // Pairs p..p+run-1 whose first amplitudes are consecutive (i0 .. i0+run-1,
  // partners stride above): plain loops the compiler can vectorise.
  auto runs = [&](uint64_t begin, uint64_t end, auto&& body) {
    for (uint64_t p = begin; p < end;) {
      const uint64_t run = std::min(end - p, stride - (p & (stride - 1)));
      const uint64_t i0 = InsertZero(p, target);
      if ((i0 & controls) == controls) body(a + i0, a + i0 + stride, run);
      p += run;
    }
  };
  ForChunks(ChunksFor(pairs), amps_.size(), [&](size_t c) {
    const uint64_t begin = c * kChunk, end = std::min<uint64_t>(pairs, begin + kChunk);
    if (controls == 0 && stride == 1 && !diagonal) {
      // Target 0: each pair is two neighbouring amplitudes.
      for (uint64_t p = begin; p < end; ++p) {
        const Complex x0 = a[2 * p], y0 = a[2 * p + 1];
        a[2 * p] = Mul(m0, x0) + Mul(m1, y0);
        a[2 * p + 1] = Mul(m2, x0) + Mul(m3, y0);
      }
      return;
    }
    if (controls != 0 || stride == 1) {
      // Element by element: controls are checked per pair; target 0 has runs of one.
      for (uint64_t p = begin; p < end; ++p) {
        const uint64_t i0 = InsertZero(p, target);
        if ((i0 & controls) != controls) continue;
        Complex& x = a[i0];
        Complex& y = a[i0 | stride];
        if (diagonal) {
          if (!keep0) x = Mul(m0, x);
          y = Mul(m3, y);
        } else {
          const Complex x0 = x, y0 = y;
          x = Mul(m0, x0) + Mul(m1, y0);
          y = Mul(m2, x0) + Mul(m3, y0);
        }
      }
      return;
    }
    if (diagonal) {
      runs(begin, end, [&](Complex* x, Complex* y, uint64_t n) {
        if (!keep0) {
          for (uint64_t k = 0; k < n; ++k) x[k] = Mul(m0, x[k]);
        }
        for (uint64_t k = 0; k < n; ++k) y[k] = Mul(m3, y[k]);
      });
    } else {
      runs(begin, end, [&](Complex* x, Complex* y, uint64_t n) {
        for (uint64_t k = 0; k < n; ++k) {
          const Complex x0 = x[k], y0 = y[k];
          x[k] = Mul(m0, x0) + Mul(m1, y0);
          y[k] = Mul(m2, x0) + Mul(m3, y0);
        }
      });
    }
  });
}

void StateVector::ApplySwap(uint32_t qa, uint32_t qb, uint64_t controls) {
  if (qa == qb) return;
  const uint32_t lo = std::min(qa, qb), hi = std::max(qa, qb);
  const uint64_t quads = amps_.size() / 4;
  Complex* a = amps_.data();
  ForChunks(ChunksFor(quads), amps_.size(), [&](size_t c) {
    const uint64_t end = std::min<uint64_t>(quads, (c + 1) * kChunk);
    for (uint64_t p = c * kChunk; p < end; ++p) {
      const uint64_t base = InsertZero(InsertZero(p, lo), hi);
      if ((base & controls) != controls) continue;
      std::swap(a[base | (uint64_t{1} << lo)], a[base | (uint64_t{1} << hi)]);
    }
  });
}

void StateVector::Apply(const Op& op) {
  if (op.kind == Op::Kind::kUnitary) ApplyMatrix(op.matrix, op.target, op.controls);
  if (op.kind == Op::Kind::kSwap) ApplySwap(op.target, op.target2, op.controls);
}

double StateVector::ProbabilityOfOne(uint32_t qubit) const {
  const uint64_t pairs = amps_.size() / 2;
  const uint64_t bit = uint64_t{1} << qubit;
  std::vector<double> sums(ChunksFor(pairs));
  const Complex* a = amps_.data();
  ForChunks(sums.size(), amps_.size() / 2, [&](size_t c) {
    const uint64_t end = std::min<uint64_t>(pairs, (c + 1) * kChunk);
    double s = 0;
    for (uint64_t p = c * kChunk; p < end; ++p) s += std::norm(a[InsertZero(p, qubit) | bit]);
    sums[c] = s;
  });
  double total = 0;
  for (double s : sums) total += s;
  return total;
}

void StateVector::Collapse(uint32_t qubit, bool one, double probability) {
  const uint64_t pairs = amps_.size() / 2;
  const uint64_t bit = uint64_t{1} << qubit;
  const double scale = probability > 0 ? 1 / std::sqrt(probability) : 0;
  Complex* a = amps_.data();
  ForChunks(ChunksFor(pairs), amps_.size(), [&](size_t c) {
    const uint64_t end = std::min<uint64_t>(pairs, (c + 1) * kChunk);
    for (uint64_t p = c * kChunk; p < end; ++p) {
      const uint64_t i0 = InsertZero(p, qubit);
      a[one ? i0 : i0 | bit] = 0;
      a[one ? i0 | bit : i0] *= scale;  // a real factor: no complex multiply
    }
  });
}

double StateVector::Norm() const {
  std::vector<double> sums(ChunksFor(amps_.size()));
  const Complex* a = amps_.data();
  ForChunks(sums.size(), amps_.size(), [&](size_t c) {
    const size_t end = std::min(amps_.size(), (c + 1) * kChunk);
    double s = 0;
    for (size_t i = c * kChunk; i < end; ++i) s += std::norm(a[i]);
    sums[c] = s;
  });
  double total = 0;
  for (double s : sums) total += s;
  return total;
}

bool NeedsPerShotRuns(const Circuit& circuit) {
  uint64_t measured = 0;
  for (const Op& op : circuit.ops) {
    if (op.kind == Op::Kind::kReset || op.cond_creg >= 0) return true;
    if (op.kind == Op::Kind::kMeasure) {
      measured |= uint64_t{1} << op.target;
      continue;
    }
    uint64_t touched = op.controls | (uint64_t{1} << op.target);
    if (op.kind == Op::Kind::kSwap) touched |= uint64_t{1} << op.target2;
    if (touched & measured) return true;
  }
  return false;
}

std::string CountsKey(const Circuit& circuit, const std::vector<uint8_t>& bits) {
  std::string key;
  for (size_t r = circuit.cregs.size(); r-- > 0;) {
    const Register& reg = circuit.cregs[r];
    if (!key.empty()) key += ' ';
    for (uint32_t k = reg.size; k-- > 0;) key += bits[reg.offset + k] ? '1' : '0';
  }
  return key;
}

namespace {

bool ConditionHolds(const Circuit& circuit, const Op& op, const std::vector<uint8_t>& bits) {
  if (op.cond_creg < 0) return true;
  const Register& reg = circuit.cregs[static_cast<size_t>(op.cond_creg)];
  uint64_t value = 0;
  for (uint32_t k = 0; k < reg.size; ++k) {
    if (!bits[reg.offset + k]) continue;
    if (k >= 64) return false;
    value |= uint64_t{1} << k;
  }
  return value == op.cond_value;
}

// Measures `qubit`: samples the outcome, collapses the state, returns it.
bool Measure(StateBackend& state, uint32_t qubit, std::mt19937_64& rng) {
  const double p1 = std::clamp(state.ProbabilityOfOne(qubit), 0.0, 1.0);
  const bool one = Uniform(rng) < p1;
  state.Collapse(qubit, one, one ? p1 : 1 - p1);
  return one;
}

const Matrix2 kX = {0, 1, 1, 0};

// Every shot sampled from the final state: `shots` sorted uniforms swept
// once against the cumulative probabilities. prob(i) is |a_i|^2; for_chunks
// runs fn(c) for every chunk c (in any order or thread: each writes its own sum).
template <typename Prob, typename ForChunksFn>
void Sample(const Circuit& circuit, size_t size, Prob&& prob, ForChunksFn&& for_chunks, uint64_t shots,
            std::mt19937_64& rng, std::map<std::string, uint64_t>* counts) {
  std::vector<double> chunk_sums(ChunksFor(size));
  for_chunks(chunk_sums.size(), [&](size_t c) {
    const size_t end = std::min(size, (c + 1) * kChunk);
    double s = 0;
    for (size_t i = c * kChunk; i < end; ++i) s += prob(i);
    chunk_sums[c] = s;
  });
  double total = 0;
  size_t last_chunk = 0;  // the last chunk with a nonzero probability
  for (size_t c = 0; c < chunk_sums.size(); ++c) {
    total += chunk_sums[c];
    if (chunk_sums[c] > 0) last_chunk = c;
  }
  std::vector<double> draws(shots);
  for (double& d : draws) d = Uniform(rng) * total;
  std::sort(draws.begin(), draws.end());
  std::map<uint64_t, uint64_t> by_index;
  size_t chunk = 0;
  double before_chunk = 0;  // probability of every chunk before `chunk`
  size_t i = 0;             // the amplitude being swept, and the probability before it
  double before_i = 0;
  for (double u : draws) {
    while (chunk < last_chunk && before_chunk + chunk_sums[chunk] <= u) {
      before_chunk += chunk_sums[chunk++];
      i = chunk * kChunk;
      before_i = before_chunk;
    }
    const size_t end = std::min(size, (chunk + 1) * kChunk);
    // The last index whose cumulative probability exceeds u (rounding: the
    // chunk's last amplitude with a nonzero probability).
    size_t last_nonzero = i;
    while (i < end) {
      const double p = prob(i);
      if (p > 0) last_nonzero = i;
      if (before_i + p > u && p > 0) break;
      before_i += p;
      ++i;
    }
    if (i >= end) {
      i = last_nonzero;
      before_i -= prob(i);
    }
    ++by_index[i];
  }
  std::vector<uint8_t> bits(circuit.num_clbits);
  for (const auto& [index, n] : by_index) {
    std::fill(bits.begin(), bits.end(), 0);
    for (const Op& op : circuit.ops) {
      if (op.kind == Op::Kind::kMeasure) bits[op.clbit] = (index >> op.target) & 1;
    }
    (*counts)[CountsKey(circuit, bits)] += n;
  }
}

}  // namespace

void CpuState::SampleFinalState(const Circuit& circuit, uint64_t shots, std::mt19937_64& rng,
                                std::map<std::string, uint64_t>* counts) {
  const Complex* a = state_.amplitudes().data();
  Sample(
      circuit, state_.amplitudes().size(), [a](size_t i) { return std::norm(a[i]); },
      [&](size_t chunks, auto&& fn) { state_.ForChunks(chunks, state_.amplitudes().size(), fn); }, shots, rng,
      counts);
}

void SampleProbabilities(const Circuit& circuit, const std::vector<double>& probabilities, uint64_t shots,
                         std::mt19937_64& rng, std::map<std::string, uint64_t>* counts) {
  const double* p = probabilities.data();
  Sample(
      circuit, probabilities.size(), [p](size_t i) { return p[i]; },
      [](size_t chunks, auto&& fn) {
        for (size_t c = 0; c < chunks; ++c) fn(c);
      },
      shots, rng, counts);
}

bool CpuState::PrefixFits(uint64_t max_memory) {
  return CheckStateMemory(state_.qubits() + 1, max_memory).fits;
}

void CpuState::SavePrefix() {
  prefix_ = state_.amplitudes();
}

void CpuState::RestorePrefix() {
  std::copy(prefix_.begin(), prefix_.end(), state_.amplitudes().begin());
}

RunResult Run(const Circuit& circuit, const RunOptions& options) {
  RunResult result;
  const MemoryCheck memory = CheckStateMemory(circuit.num_qubits, options.max_memory);
  if (!memory.fits) {
    result.error = memory.reason;
    return result;
  }
  CpuState state(circuit.num_qubits, options.threads);
  return RunOn(circuit, state, options);
}

RunResult RunOn(const Circuit& circuit, StateBackend& state, const RunOptions& options) {
  RunResult result;
  result.device = state.Device();
  std::mt19937_64 rng(options.seed);
  std::map<std::string, uint64_t> counts;
  result.per_shot = NeedsPerShotRuns(circuit);
  if (!result.per_shot) {
    for (const Op& op : circuit.ops) state.Apply(op);
    state.SampleFinalState(circuit, options.shots, rng, &counts);
  } else {
    // The gates before the first measurement, reset or `if` are the same in
    // every shot: simulated once and copied per shot when a second state
    // fits (a copy costs about one gate pass), otherwise repeated per shot.
    size_t prefix_ops = 0;
    while (prefix_ops < circuit.ops.size() && circuit.ops[prefix_ops].cond_creg < 0 &&
           (circuit.ops[prefix_ops].kind == Op::Kind::kUnitary ||
            circuit.ops[prefix_ops].kind == Op::Kind::kSwap)) {
      ++prefix_ops;
    }
    // The prefix is applied only when a copy fits: otherwise every shot
    // starts from |0...0> (the gates touch no random source either way).
    if (prefix_ops >= 2 && state.PrefixFits(options.max_memory)) {
      for (size_t i = 0; i < prefix_ops; ++i) state.Apply(circuit.ops[i]);
      state.SavePrefix();
    } else {
      prefix_ops = 0;
    }
    std::vector<uint8_t> bits(circuit.num_clbits);
    for (uint64_t shot = 0; shot < options.shots; ++shot) {
      if (state.failed()) break;
      if (prefix_ops > 0) {
        state.RestorePrefix();
      } else if (shot > 0) {
        state.SetZeroState();
      }
      std::fill(bits.begin(), bits.end(), 0);
      for (size_t i = prefix_ops; i < circuit.ops.size(); ++i) {
        const Op& op = circuit.ops[i];
        if (!ConditionHolds(circuit, op, bits)) continue;
        switch (op.kind) {
          case Op::Kind::kUnitary:
          case Op::Kind::kSwap: state.Apply(op); break;
          case Op::Kind::kMeasure: bits[op.clbit] = Measure(state, op.target, rng); break;
          case Op::Kind::kReset:
            if (Measure(state, op.target, rng)) state.ApplyMatrix(kX, op.target);
            break;
        }
      }
      ++counts[CountsKey(circuit, bits)];
    }
  }
  if (state.failed()) {
    result.error = "on " + state.Device() + ": " + state.error();
    return result;
  }
  result.counts.assign(counts.begin(), counts.end());
  result.ok = true;
  return result;
}

StateVector FinalState(const Circuit& circuit, unsigned threads) {
  StateVector state(circuit.num_qubits, threads);
  for (const Op& op : circuit.ops) state.Apply(op);
  return state;
}

}  // namespace plinth::qpu
