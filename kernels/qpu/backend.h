// Where a state vector lives: the interface the simulator's Run drives
// (kernels/qpu/simulator.h), with the CPU implementation here and the CUDA
// one in kernels/qpu/cuda_state.h. Both hold 2^n complex<double> amplitudes
// (bit q of an index is qubit q) and do the same arithmetic in the same
// order; sampling shots from the final state uses the one seeded sampler of
// simulator.cpp on the host, whichever device computed the probabilities.
//
// Errors are sticky: after a failed device call every later call does
// nothing and failed() says why; Run checks it and reports the first error.
// The CPU backend never fails.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/qpu/circuit.h"
#include "kernels/qpu/simulator.h"

namespace plinth::qpu {

class StateBackend {
 public:
  virtual ~StateBackend() = default;

  // "cpu" or "cuda:N": the device that runs the state, as output names it.
  virtual std::string Device() const = 0;
  virtual uint32_t qubits() const = 0;

  virtual void SetZeroState() = 0;
  virtual void ApplyMatrix(const Matrix2& m, uint32_t target, uint64_t controls = 0) = 0;
  virtual void ApplySwap(uint32_t a, uint32_t b, uint64_t controls = 0) = 0;
  // kUnitary and kSwap operations.
  void Apply(const Op& op) {
    if (op.kind == Op::Kind::kUnitary) ApplyMatrix(op.matrix, op.target, op.controls);
    if (op.kind == Op::Kind::kSwap) ApplySwap(op.target, op.target2, op.controls);
  }
  // The probability that measuring `qubit` gives 1.
  virtual double ProbabilityOfOne(uint32_t qubit) = 0;
  // Projects onto `qubit` == `one`, whose probability was `probability`, and renormalises.
  virtual void Collapse(uint32_t qubit, bool one, double probability) = 0;

  // Whether a second state, kept by SavePrefix, fits (under `max_memory`
  // when nonzero, and in the device's free memory).
  virtual bool PrefixFits(uint64_t max_memory) = 0;
  // Keeps a copy of the current state; RestorePrefix copies it back.
  virtual void SavePrefix() = 0;
  virtual void RestorePrefix() = 0;

  // Samples `shots` basis states from the current state with `rng`, adding
  // the measured bits' counts by CountsKey (simulator.cpp's sampler).
  virtual void SampleFinalState(const Circuit& circuit, uint64_t shots, std::mt19937_64& rng,
                                std::map<std::string, uint64_t>* counts) = 0;

  // The amplitudes (copied from the device where there is one).
  virtual std::vector<Complex> Amplitudes() = 0;

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 protected:
  // Records the first error.
  void Fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }

 private:
  std::string error_;
};

// The CPU backend: a StateVector run on std::threads.
class CpuState final : public StateBackend {
 public:
  explicit CpuState(uint32_t qubits, unsigned threads = 0) : state_(qubits, threads) {}

  std::string Device() const override { return "cpu"; }
  uint32_t qubits() const override { return state_.qubits(); }
  void SetZeroState() override { state_.SetZeroState(); }
  void ApplyMatrix(const Matrix2& m, uint32_t target, uint64_t controls = 0) override {
    state_.ApplyMatrix(m, target, controls);
  }
  void ApplySwap(uint32_t a, uint32_t b, uint64_t controls = 0) override { state_.ApplySwap(a, b, controls); }
  double ProbabilityOfOne(uint32_t qubit) override { return state_.ProbabilityOfOne(qubit); }
  void Collapse(uint32_t qubit, bool one, double probability) override {
    state_.Collapse(qubit, one, probability);
  }
  bool PrefixFits(uint64_t max_memory) override;
  void SavePrefix() override;
  void RestorePrefix() override;
  void SampleFinalState(const Circuit& circuit, uint64_t shots, std::mt19937_64& rng,
                        std::map<std::string, uint64_t>* counts) override;
  std::vector<Complex> Amplitudes() override { return state_.amplitudes(); }

  StateVector& state() { return state_; }

 private:
  StateVector state_;
  std::vector<Complex> prefix_;
};

// Samples `shots` basis states from per-index probabilities (|a_i|^2, in
// index order) exactly as CpuState samples from its amplitudes: the same
// probabilities and seed give the same counts. For device backends.
void SampleProbabilities(const Circuit& circuit, const std::vector<double>& probabilities, uint64_t shots,
                         std::mt19937_64& rng, std::map<std::string, uint64_t>* counts);

// Runs the circuit on `state` (of circuit.num_qubits qubits, in |0...0>).
// Memory must have been checked by the caller. On a backend failure,
// !ok and error says why.
RunResult RunOn(const Circuit& circuit, StateBackend& state, const RunOptions& options);

}  // namespace plinth::qpu
