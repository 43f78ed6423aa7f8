// A quantum circuit as the simulator runs it: OpenQASM 2 programs
// (kernels/qpu/qasm.h) are lowered to this flat list of primitive
// operations — every gate, builtin or user-defined, applied to whole
// registers or to single qubits, becomes single-qubit matrices with optional
// controls and (controlled) swaps. Qubit q is bit q of a basis-state index.
#pragma once

#include <array>
#include <complex>
#include <cstdint>
#include <string>
#include <vector>

namespace plinth::qpu {

using Complex = std::complex<double>;
// Row-major 2x2 matrix: {m00, m01, m10, m11}.
using Matrix2 = std::array<Complex, 4>;

// The most qubits a circuit may declare: qubit indices are bits of a 64-bit
// basis index. Memory refuses far fewer (kernels/qpu/memory.h).
inline constexpr uint32_t kMaxQubits = 62;
// The most classical bits a circuit may declare.
inline constexpr uint32_t kMaxClbits = 4096;
// The most primitive operations a program may expand to (user gates can
// multiply a short file into many operations).
inline constexpr size_t kMaxOps = size_t{1} << 22;

struct Register {
  std::string name;
  uint32_t offset = 0;  // first qubit (or bit) of the register
  uint32_t size = 0;
};

struct Op {
  enum class Kind : uint8_t {
    kUnitary,  // `matrix` on `target`, when every qubit in `controls` is 1
    kSwap,     // swap `target` and `target2`, when every qubit in `controls` is 1
    kMeasure,  // measure `target` into classical bit `clbit`
    kReset,    // reset `target` to |0>
  };
  Kind kind = Kind::kUnitary;
  uint32_t target = 0;
  uint32_t target2 = 0;
  uint32_t clbit = 0;
  uint64_t controls = 0;  // a mask of control qubits
  // `if (creg == value)`: the op runs only when the classical register
  // cond_creg (an index into Circuit::cregs; -1: unconditional) holds value.
  int32_t cond_creg = -1;
  uint64_t cond_value = 0;
  uint32_t line = 0;  // the source line it came from
  Matrix2 matrix{};
};

struct Circuit {
  std::vector<Register> qregs, cregs;  // in declaration order
  uint32_t num_qubits = 0;
  uint32_t num_clbits = 0;
  std::vector<Op> ops;
};

// True when a run needs one simulation per shot: the program resets a qubit,
// conditions an operation on a classical register, or acts on a qubit after
// measuring it. Otherwise every shot can be sampled from one final state.
bool NeedsPerShotRuns(const Circuit& circuit);

// The counts key of a classical bit vector (bit i of `bits` is clbit i):
// each register's bits from c[n-1] to c[0], registers from the last declared
// to the first, separated by spaces (qiskit's convention).
std::string CountsKey(const Circuit& circuit, const std::vector<uint8_t>& bits);

}  // namespace plinth::qpu
