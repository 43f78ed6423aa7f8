// kernels/qpu: the OpenQASM 2 parser and the state-vector simulator
// (docs/qpu.md). Amplitudes are checked against analytic values, gates
// against their matrices, sampling against binomial bounds, and every bad
// input against a located error (and against crashing).
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "kernels/gpu/cuda_backend.h"
#include "kernels/qpu/backend.h"
#include "kernels/qpu/cuda_state.h"
#include "kernels/qpu/device.h"
#include "kernels/qpu/memory.h"
#include "kernels/qpu/qasm.h"
#include "kernels/qpu/simulator.h"

namespace plinth::qpu {
namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr double kTol = 1e-12;

std::string Program(const std::string& body) {
  return "OPENQASM 2.0;\ninclude \"qelib1.inc\";\n" + body;
}

Circuit MustParse(const std::string& text) {
  ParseResult r = ParseQasm(text);
  std::string errors;
  for (const ParseError& e : r.errors) errors += FormatError(e, "test.qasm", text);
  EXPECT_TRUE(r.errors.empty()) << errors;
  return std::move(r.circuit);
}

std::vector<Complex> Amplitudes(const std::string& body, unsigned threads = 1) {
  return FinalState(MustParse(Program(body)), threads).amplitudes();
}

void ExpectAmplitudes(const std::vector<Complex>& got, const std::vector<Complex>& want, double tol = kTol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_NEAR(got[i].real(), want[i].real(), tol) << "amplitude " << i;
    EXPECT_NEAR(got[i].imag(), want[i].imag(), tol) << "amplitude " << i;
  }
}

// The unitary of `gate_line` on n qubits: column j is the state the gate
// makes from basis state |j> (prepared with x gates).
std::vector<std::vector<Complex>> Unitary(const std::string& gate_line, int n) {
  std::vector<std::vector<Complex>> columns;
  for (int j = 0; j < (1 << n); ++j) {
    std::string body = "qreg q[" + std::to_string(n) + "];\n";
    for (int b = 0; b < n; ++b) {
      if (j >> b & 1) body += "x q[" + std::to_string(b) + "];\n";
    }
    columns.push_back(Amplitudes(body + gate_line));
  }
  return columns;
}

void ExpectMatrix(const std::string& gate_line, const Matrix2& m) {
  SCOPED_TRACE(gate_line);
  auto u = Unitary(gate_line, 1);
  ExpectAmplitudes(u[0], {m[0], m[2]});
  ExpectAmplitudes(u[1], {m[1], m[3]});
}

// ------------------------------------------------------------- amplitudes

TEST(Qpu, BellState) {
  const double r = 1 / std::sqrt(2.0);
  ExpectAmplitudes(Amplitudes("qreg q[2];\nh q[0];\ncx q[0], q[1];\n"), {r, 0, 0, r});
}

TEST(Qpu, GhzStates) {
  for (int n = 3; n <= 10; ++n) {
    SCOPED_TRACE(n);
    std::string body = "qreg q[" + std::to_string(n) + "];\nh q[0];\n";
    for (int i = 0; i + 1 < n; ++i)
      body += "cx q[" + std::to_string(i) + "], q[" + std::to_string(i + 1) + "];\n";
    std::vector<Complex> want(size_t{1} << n);
    want.front() = want.back() = 1 / std::sqrt(2.0);
    ExpectAmplitudes(Amplitudes(body), want);
  }
}

// The textbook QFT (qiskit's circuit: controlled phases, then swaps) maps
// |j> to 1/sqrt(N) sum_k e^{2 pi i jk/N} |k>.
TEST(Qpu, QftOfBasisStates) {
  for (int n = 2; n <= 5; ++n) {
    const int big_n = 1 << n;
    std::string qft;
    for (int j = n - 1; j >= 0; --j) {
      qft += "h q[" + std::to_string(j) + "];\n";
      for (int k = j - 1; k >= 0; --k) {
        qft += "cu1(pi/" + std::to_string(1 << (j - k)) + ") q[" + std::to_string(k) + "], q[" +
               std::to_string(j) + "];\n";
      }
    }
    for (int i = 0; i < n / 2; ++i)
      qft += "swap q[" + std::to_string(i) + "], q[" + std::to_string(n - 1 - i) + "];\n";
    auto u = Unitary(qft, n);
    for (int j = 0; j < big_n; ++j) {
      SCOPED_TRACE("n=" + std::to_string(n) + " j=" + std::to_string(j));
      std::vector<Complex> want;
      for (int k = 0; k < big_n; ++k) {
        want.push_back(std::polar(1 / std::sqrt(double(big_n)), 2 * kPi * j * k / big_n));
      }
      ExpectAmplitudes(u[static_cast<size_t>(j)], want);
    }
  }
}

// Grover on 3 qubits marking |101>: after 2 iterations the marked state has
// probability sin^2(5 theta), sin(theta) = 1/sqrt(8): 0.9453...
TEST(Qpu, GroverThreeQubits) {
  const std::string oracle = "x q[1];\nh q[2];\nccx q[0], q[1], q[2];\nh q[2];\nx q[1];\n";
  const std::string diffusion = "h q;\nx q;\nh q[2];\nccx q[0], q[1], q[2];\nh q[2];\nx q;\nh q;\n";
  std::vector<Complex> a = Amplitudes("qreg q[3];\nh q;\n" + oracle + diffusion + oracle + diffusion);
  const double theta = std::asin(1 / std::sqrt(8.0));
  const double want = std::pow(std::sin(5 * theta), 2);
  EXPECT_NEAR(std::norm(a[5]), want, kTol);
  EXPECT_NEAR(want, 0.9453, 1e-4);
  for (size_t i = 0; i < 8; ++i) {
    if (i != 5) {
      EXPECT_NEAR(std::norm(a[i]), (1 - want) / 7, kTol) << i;
    }
  }
}

// ------------------------------------------------------------------ gates

TEST(Qpu, EverySingleQubitGateMatchesItsDefinition) {
  const Complex i(0, 1);
  const double r = 1 / std::sqrt(2.0);
  const double a = 0.7, b = -1.3, c = 2.1;
  auto u3 = [](double t, double p, double l) {
    return Matrix2{std::cos(t / 2), -std::exp(Complex(0, l)) * std::sin(t / 2),
                   std::exp(Complex(0, p)) * std::sin(t / 2), std::exp(Complex(0, p + l)) * std::cos(t / 2)};
  };
  ExpectMatrix("id q[0];", {1, 0, 0, 1});
  ExpectMatrix("x q[0];", {0, 1, 1, 0});
  ExpectMatrix("y q[0];", {0, -i, i, 0});
  ExpectMatrix("z q[0];", {1, 0, 0, -1});
  ExpectMatrix("h q[0];", {r, r, r, -r});
  ExpectMatrix("s q[0];", {1, 0, 0, i});
  ExpectMatrix("sdg q[0];", {1, 0, 0, -i});
  ExpectMatrix("t q[0];", {1, 0, 0, std::exp(i * kPi / 4.0)});
  ExpectMatrix("tdg q[0];", {1, 0, 0, std::exp(-i * kPi / 4.0)});
  ExpectMatrix("sx q[0];", {(1.0 + i) / 2.0, (1.0 - i) / 2.0, (1.0 - i) / 2.0, (1.0 + i) / 2.0});
  ExpectMatrix("sxdg q[0];", {(1.0 - i) / 2.0, (1.0 + i) / 2.0, (1.0 + i) / 2.0, (1.0 - i) / 2.0});
  // Rotations: exp(-i a P / 2) = cos(a/2) I - i sin(a/2) P.
  ExpectMatrix("rx(0.7) q[0];",
               {std::cos(a / 2), -i * std::sin(a / 2), -i * std::sin(a / 2), std::cos(a / 2)});
  ExpectMatrix("ry(0.7) q[0];", {std::cos(a / 2), -std::sin(a / 2), std::sin(a / 2), std::cos(a / 2)});
  ExpectMatrix("rz(0.7) q[0];", {std::exp(-i * a / 2.0), 0, 0, std::exp(i * a / 2.0)});
  ExpectMatrix("u1(0.7) q[0];", {1, 0, 0, std::exp(i * a)});
  ExpectMatrix("p(0.7) q[0];", {1, 0, 0, std::exp(i * a)});
  ExpectMatrix("u2(-1.3, 2.1) q[0];", u3(kPi / 2, b, c));
  ExpectMatrix("u3(0.7, -1.3, 2.1) q[0];", u3(a, b, c));
  ExpectMatrix("u(0.7, -1.3, 2.1) q[0];", u3(a, b, c));
  ExpectMatrix("U(0.7, -1.3, 2.1) q[0];", u3(a, b, c));
  // Identities between them.
  Matrix2 m;
  ASSERT_TRUE(GateMatrix("u3", {kPi, 0, kPi}, &m));
  ExpectMatrix("x q[0];", m);
  ASSERT_TRUE(GateMatrix("u2", {0, kPi}, &m));
  ExpectMatrix("h q[0];", m);
  EXPECT_FALSE(GateMatrix("rx", {}, &m));
  EXPECT_FALSE(GateMatrix("nope", {}, &m));
}

TEST(Qpu, ControlledGatesAndSwap) {
  // Column j of the unitary, as the basis index it maps to (permutations).
  auto permutation = [](const std::string& line, int n) {
    std::vector<int> image;
    for (const auto& column : Unitary(line, n)) {
      int to = -1;
      for (size_t k = 0; k < column.size(); ++k) {
        if (std::abs(column[k] - Complex(1, 0)) < kTol) to = static_cast<int>(k);
      }
      image.push_back(to);
    }
    return image;
  };
  // Qubit 0 is the lowest bit of the index; cx q[0], q[1]: control q[0].
  EXPECT_EQ(permutation("cx q[0], q[1];", 2), (std::vector<int>{0, 3, 2, 1}));
  EXPECT_EQ(permutation("CX q[1], q[0];", 2), (std::vector<int>{0, 1, 3, 2}));
  EXPECT_EQ(permutation("swap q[0], q[1];", 2), (std::vector<int>{0, 2, 1, 3}));
  EXPECT_EQ(permutation("ccx q[0], q[1], q[2];", 3), (std::vector<int>{0, 1, 2, 7, 4, 5, 6, 3}));
  EXPECT_EQ(permutation("cswap q[0], q[1], q[2];", 3), (std::vector<int>{0, 1, 2, 5, 4, 3, 6, 7}));
  // cz: -1 on |11> only.
  auto cz = Unitary("cz q[0], q[1];", 2);
  for (int j = 0; j < 4; ++j)
    ExpectAmplitudes(cz[j], [&] {
      std::vector<Complex> e(4);
      e[j] = j == 3 ? -1 : 1;
      return e;
    }());
  // Controlled rotations and phases act as the gate on the target when the control is 1.
  const double t = 0.9;
  for (const std::string g : {"crz", "cu1", "crx", "cry", "cp"}) {
    SCOPED_TRACE(g);
    Matrix2 m;
    ASSERT_TRUE(GateMatrix(g.substr(1), {t}, &m));
    auto u = Unitary(g + "(0.9) q[0], q[1];", 2);
    ExpectAmplitudes(u[0], {1, 0, 0, 0});
    ExpectAmplitudes(u[2], {0, 0, 1, 0});
    ExpectAmplitudes(u[1], {0, m[0], 0, m[2]});
    ExpectAmplitudes(u[3], {0, m[1], 0, m[3]});
  }
  auto cy = Unitary("cy q[0], q[1];", 2);
  ExpectAmplitudes(cy[1], {0, 0, 0, Complex(0, 1)});
  auto ch = Unitary("ch q[0], q[1];", 2);
  ExpectAmplitudes(ch[1], {0, 1 / std::sqrt(2.0), 0, 1 / std::sqrt(2.0)});
  Matrix2 m3;
  ASSERT_TRUE(GateMatrix("u3", {0.3, 0.2, 0.1}, &m3));
  auto cu3 = Unitary("cu3(0.3, 0.2, 0.1) q[0], q[1];", 2);
  ExpectAmplitudes(cu3[3], {0, m3[1], 0, m3[3]});
}

TEST(Qpu, Broadcast) {
  // h on a whole register: the uniform superposition.
  std::vector<Complex> uniform(8, Complex(1 / std::sqrt(8.0), 0));
  ExpectAmplitudes(Amplitudes("qreg q[3];\nh q;\n"), uniform);
  // cx a, b on two registers is cx a[i], b[i] for each i; cx a[0], b fans out.
  ExpectAmplitudes(Amplitudes("qreg a[2];\nqreg b[2];\nx a;\ncx a, b;\n"),
                   Amplitudes("qreg a[2];\nqreg b[2];\nx a[0];\nx a[1];\ncx a[0], b[0];\ncx a[1], b[1];\n"));
  std::vector<Complex> want(16);
  want[0b1101] = 1;  // a[0]=1, b[0]=b[1]=1 (b is bits 2 and 3)
  ExpectAmplitudes(Amplitudes("qreg a[2];\nqreg b[2];\nx a[0];\ncx a[0], b;\n"), want);
  Circuit c = MustParse(Program("qreg q[4];\ncreg c[4];\nmeasure q -> c;\nreset q;\nbarrier q;\n"));
  EXPECT_EQ(c.ops.size(), 8u);
}

TEST(Qpu, UserGatesAndExpressions) {
  // A parameterised user gate calling another user gate equals the builtin.
  ExpectAmplitudes(
      Amplitudes("gate half(t) a { rz(t/2) a; }\ngate twice(t) a, b { half(t) a; half(t) a; cx a, b; }\n"
                 "qreg q[2];\nh q;\ntwice(0.8) q[0], q[1];\n"),
      Amplitudes("qreg q[2];\nh q;\nrz(0.8) q[0];\ncx q[0], q[1];\n"));
  // A user gate broadcast over registers.
  ExpectAmplitudes(Amplitudes("gate bell a, b { h a; cx a, b; }\nqreg a[2];\nqreg b[2];\nbell a, b;\n"),
                   Amplitudes("qreg a[2];\nqreg b[2];\nh a[0];\ncx a[0], b[0];\nh a[1];\ncx a[1], b[1];\n"));
  // Primitives only, without qelib1: U and CX.
  ParseResult bare =
      ParseQasm("OPENQASM 2.0;\ngate myh a { U(pi/2, 0, pi) a; }\nqreg q[2];\nmyh q[0];\nCX q[0], q[1];\n");
  ASSERT_TRUE(bare.errors.empty()) << bare.errors[0].message;
  const double r = 1 / std::sqrt(2.0);
  ExpectAmplitudes(FinalState(bare.circuit).amplitudes(), {r, 0, 0, r});
  // Expressions: the phase u1(e) puts on |1> is e^{ie}.
  const std::vector<std::pair<std::string, double>> cases = {
      {"-2^2", -4},  // unary minus binds looser than ^
      {"2^3^2", 512},
      {"1 + 2 * 3 - 4 / 8", 6.5},
      {"(1 + 2) * 3", 9},
      {"sin(pi/6) + cos(0) + tan(pi/4)", 2.5},
      {"exp(1) * ln(2) + sqrt(16)", std::exp(1.0) * std::log(2.0) + 4},
      {"-(-pi)", kPi},
      {"1.5e-1 + .25 + 2.", 2.4},
  };
  for (const auto& [expr, value] : cases) {
    SCOPED_TRACE(expr);
    auto a = Amplitudes("qreg q[1];\nx q[0];\nu1(" + expr + ") q[0];\n");
    ExpectAmplitudes(a, {0, std::polar(1.0, value)}, 1e-9);
  }
  // Parameters inside a gate body.
  auto a = Amplitudes("gate ph(x, y) q { u1(x * y - x ^ 2) q; }\nqreg q[1];\nx q[0];\nph(3, 0.5) q[0];\n");
  ExpectAmplitudes(a, {0, std::polar(1.0, 3 * 0.5 - 9.0)}, 1e-12);
  // Opaque declarations parse; applying one is an error.
  EXPECT_TRUE(ParseQasm(Program("opaque magic(t) a, b;\nqreg q[1];\n")).errors.empty());
}

// ----------------------------------------------------- measurement and runs

RunResult RunProgram(const std::string& body, uint64_t shots, uint64_t seed, unsigned threads = 1) {
  RunOptions o;
  o.shots = shots;
  o.seed = seed;
  o.threads = threads;
  RunResult r = Run(MustParse(Program(body)), o);
  EXPECT_TRUE(r.ok) << r.error;
  return r;
}

std::map<std::string, uint64_t> CountsOf(const RunResult& r) {
  return {r.counts.begin(), r.counts.end()};
}

TEST(Qpu, IfAppliesOnlyWhenTheRegisterMatches) {
  RunResult r = RunProgram(
      "qreg q[2];\ncreg c[2];\nx q[0];\nmeasure q[0] -> c[0];\nif (c == 1) x q[1];\n"
      "measure q[1] -> c[1];\n",
      50, 1);
  EXPECT_TRUE(r.per_shot);
  EXPECT_EQ(CountsOf(r), (std::map<std::string, uint64_t>{{"11", 50}}));
  r = RunProgram(
      "qreg q[2];\ncreg c[2];\nx q[0];\nmeasure q[0] -> c[0];\nif (c == 0) x q[1];\nmeasure q[1] -> c[1];\n",
      50, 1);
  EXPECT_EQ(CountsOf(r), (std::map<std::string, uint64_t>{{"01", 50}}));
  // reset returns a qubit to |0>; measure after a gate follows the new state.
  r = RunProgram(
      "qreg q[1];\ncreg c[2];\nh q[0];\nmeasure q[0] -> c[0];\nreset q[0];\nmeasure q[0] -> c[1];\n", 400, 2);
  auto counts = CountsOf(r);
  EXPECT_EQ(counts["00"] + counts["01"], 400u);
  EXPECT_GT(counts["00"], 100u);
  EXPECT_GT(counts["01"], 100u);
}

TEST(Qpu, SamplingStatisticsAndSeeds) {
  // 10000 shots of a fair coin: within 5 sigma (sigma = 50) of 5000, on both paths.
  for (const std::string& tail : {std::string(""), std::string("reset q[1];\n")}) {
    SCOPED_TRACE(tail.empty() ? "final state" : "per shot");
    RunResult r =
        RunProgram("qreg q[2];\ncreg c[1];\nh q[0];\n" + tail + "measure q[0] -> c[0];\n", 10000, 42);
    EXPECT_EQ(r.per_shot, !tail.empty());
    auto counts = CountsOf(r);
    EXPECT_EQ(counts["0"] + counts["1"], 10000u);
    EXPECT_LT(std::abs(static_cast<double>(counts["1"]) - 5000), 250);
    // The same seed gives the same counts; the generator is seeded, not shared.
    EXPECT_EQ(
        RunProgram("qreg q[2];\ncreg c[1];\nh q[0];\n" + tail + "measure q[0] -> c[0];\n", 10000, 42).counts,
        r.counts);
  }
  // An uneven distribution: ry(2 asin(sqrt(0.2))) gives P(1) = 0.2 (sigma = 40 at 10000).
  RunResult r =
      RunProgram("qreg q[1];\ncreg c[1];\nry(2*0.4636476090008061) q[0];\nmeasure q -> c;\n", 10000, 9);
  EXPECT_LT(std::abs(static_cast<double>(CountsOf(r)["1"]) - 2000), 200);
  // GHZ on 10 qubits: only all-zeros and all-ones.
  std::string ghz = "qreg q[10];\ncreg c[10];\nh q[0];\n";
  for (int i = 0; i < 9; ++i) ghz += "cx q[" + std::to_string(i) + "], q[" + std::to_string(i + 1) + "];\n";
  auto counts = CountsOf(RunProgram(ghz + "measure q -> c;\n", 4000, 5));
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_LT(std::abs(static_cast<double>(counts["1111111111"]) - 2000), 5 * 32);
}

// Per-shot runs simulate the gates before the first measurement once and
// copy that state per shot when two states fit; without room for the copy
// they repeat the gates. Both give the same counts.
TEST(Qpu, PerShotPrefixIsSimulatedOnceWhenItFits) {
  Circuit c =
      MustParse(Program("qreg q[12];\ncreg c[12];\nh q[0];\ncx q[0], q[1];\nry(0.4) q[2];\nh q[4];\n"
                        "measure q[0] -> c[0];\nif (c == 1) x q[3];\nmeasure q -> c;\n"));
  RunOptions o;
  o.shots = 300;
  o.seed = 17;
  RunResult copied = qpu::Run(c, o);
  o.max_memory = StateBytes(12);  // room for one state only
  RunResult repeated = qpu::Run(c, o);
  ASSERT_TRUE(copied.ok && repeated.ok);
  EXPECT_TRUE(copied.per_shot);
  EXPECT_EQ(copied.counts, repeated.counts);
  uint64_t total = 0;
  for (const auto& [key, n] : copied.counts) {
    total += n;
    EXPECT_EQ(key[key.size() - 4], key.back()) << key;  // q[3] flipped exactly when c[0] was 1
    EXPECT_EQ(key[key.size() - 2], key.back()) << key;  // q[1] entangled with q[0]
  }
  EXPECT_EQ(total, 300u);
}

TEST(Qpu, CountsKeysFollowQiskitOrder) {
  // c1 declared last is printed first; within a register, c[n-1] ... c[0].
  RunResult r = RunProgram(
      "qreg q[3];\ncreg c0[2];\ncreg c1[1];\nx q[0];\nx q[2];\nmeasure q[0] -> c0[0];\n"
      "measure q[1] -> c0[1];\nmeasure q[2] -> c1[0];\n",
      10, 3);
  EXPECT_EQ(CountsOf(r), (std::map<std::string, uint64_t>{{"1 01", 10}}));
}

TEST(Qpu, PerShotRunsOnlyWhenNeeded) {
  EXPECT_FALSE(NeedsPerShotRuns(MustParse(Program("qreg q[2];\ncreg c[2];\nh q;\nmeasure q -> c;\n"))));
  EXPECT_FALSE(
      NeedsPerShotRuns(MustParse(Program("qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nh q[1];\n"))));
  EXPECT_TRUE(
      NeedsPerShotRuns(MustParse(Program("qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\nh q[0];\n"))));
  EXPECT_TRUE(NeedsPerShotRuns(
      MustParse(Program("qreg q[2];\ncreg c[2];\nmeasure q[0] -> c[0];\ncx q[0], q[1];\n"))));
  EXPECT_TRUE(NeedsPerShotRuns(MustParse(Program("qreg q[1];\ncreg c[1];\nreset q[0];\n"))));
  EXPECT_TRUE(NeedsPerShotRuns(MustParse(Program("qreg q[1];\ncreg c[1];\nif (c == 0) x q[0];\n"))));
}

TEST(Qpu, ThreadCountDoesNotChangeResults) {
  // 19 qubits: above the threshold where passes split over threads.
  std::string body = "qreg q[19];\nh q;\n";
  for (int i = 0; i < 18; ++i)
    body += "crz(0." + std::to_string(i + 1) + ") q[" + std::to_string(i) + "], q[18];\n";
  body += "u3(0.3, 0.2, 0.1) q[18];\nswap q[0], q[18];\nccx q[3], q[7], q[11];\n";
  Circuit c = MustParse(Program(body));
  StateVector one = FinalState(c, 1), four = FinalState(c, 4);
  EXPECT_TRUE(one.amplitudes() == four.amplitudes());
  EXPECT_NEAR(one.Norm(), 1, 1e-9);
  EXPECT_EQ(one.ProbabilityOfOne(5), four.ProbabilityOfOne(5));
  RunOptions o;
  o.shots = 500;
  o.seed = 8;
  c.cregs.push_back({"c", 0, 19});
  c.num_clbits = 19;
  for (uint32_t q = 0; q < 19; ++q) {
    Op m;
    m.kind = Op::Kind::kMeasure;
    m.target = m.clbit = q;
    c.ops.push_back(m);
  }
  o.threads = 1;
  RunResult r1 = qpu::Run(c, o);
  o.threads = 3;
  EXPECT_EQ(qpu::Run(c, o).counts, r1.counts);
}

// ------------------------------------------------------------------ memory

TEST(Qpu, MemoryRefusal) {
  EXPECT_EQ(StateBytes(26), uint64_t{1} << 30);
  EXPECT_EQ(StateBytes(62), UINT64_MAX);
  MemoryCheck fits = CheckStateMemory(16, uint64_t{1} << 20, uint64_t{1} << 30);
  EXPECT_TRUE(fits.fits);  // exactly 1 MiB
  MemoryCheck cap = CheckStateMemory(17, uint64_t{1} << 20, uint64_t{1} << 30);
  EXPECT_FALSE(cap.fits);
  EXPECT_EQ(cap.reason,
            "17 qubits need 2.0 MiB for the state vector (16*2^n bytes), more than --max-memory=1.0 MiB; "
            "raise it, or use fewer qubits");
  MemoryCheck machine = CheckStateMemory(40, 0, uint64_t{8} << 30);
  EXPECT_FALSE(machine.fits);
  EXPECT_NE(machine.reason.find("40 qubits need 16.0 TiB"), std::string::npos) << machine.reason;
  EXPECT_NE(machine.reason.find("the 8.0 GiB of memory available on this machine"), std::string::npos);
  EXPECT_FALSE(CheckStateMemory(61, 0, std::nullopt).fits);
  EXPECT_TRUE(CheckStateMemory(10, 0, std::nullopt).fits);
  // This machine: a handful of qubits fits, 50 (16 PiB) does not.
  EXPECT_TRUE(QubitsFit(10));
  EXPECT_FALSE(QubitsFit(50));
  // Run refuses before allocating anything.
  Circuit c = MustParse(Program("qreg q[30];\ncreg c[1];\nmeasure q[0] -> c[0];\n"));
  RunOptions o;
  o.max_memory = uint64_t{1} << 20;
  RunResult r = qpu::Run(c, o);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("30 qubits need 16.0 GiB"), std::string::npos) << r.error;
  // Sizes.
  uint64_t n = 0;
  EXPECT_TRUE(ParseSize("4G", &n) && n == uint64_t{4} << 30);
  EXPECT_TRUE(ParseSize("512MiB", &n) && n == uint64_t{512} << 20);
  EXPECT_TRUE(ParseSize("1KB", &n) && n == 1024);
  EXPECT_TRUE(ParseSize("123", &n) && n == 123);
  EXPECT_TRUE(ParseSize("2T", &n) && n == uint64_t{2} << 40);
  for (const char* bad : {"", "G", "4X", "4GG", "-1", "99999999999T", "1.5G"})
    EXPECT_FALSE(ParseSize(bad, &n)) << bad;
  EXPECT_EQ(FormatBytes(100), "100 B");
  EXPECT_EQ(FormatBytes(uint64_t{3} << 29), "1.5 GiB");
}

// ------------------------------------------------------------------ errors

struct BadCase {
  std::string text;
  uint32_t line, col;
  std::string message;  // a substring of the first error
};

TEST(Qpu, ParseErrorsAreLocated) {
  const std::string h = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\n";  // lines 1-2
  const std::vector<BadCase> cases = {
      {"qreg q[1];\n", 1, 1, "a program starts with 'OPENQASM 2.0;'"},
      {"OPENQASM 3.0;\n", 1, 10, "only OpenQASM 2 is supported"},
      {"OPENQASM 2.0;\nqreg q[1];\nh q[0];\n", 3, 1, "gate 'h' is not defined"},
      {h + "qreg q[2];\nh q[2];\n", 4, 5, "index 2 is out of range: q has 2 elements"},
      {h + "qreg q[2];\nqreg r[3];\ncx q, r;\n", 5, 7, "registers of different sizes"},
      {h + "qreg q[2];\nrx q[0];\n", 4, 1, "gate 'rx' takes 1 parameter, given 0"},
      {h + "qreg q[2];\ncx q[0];\n", 4, 1, "gate 'cx' acts on 2 qubits, given 1"},
      {h + "qreg q[2];\ncx q[1], q[1];\n", 4, 10, "qubit q[1] is used twice"},
      {h + "h r[0];\n", 3, 3, "'r' is not a declared register"},
      {h + "qreg q[1];\nh q[0]\nh q[0];\n", 4, 7, "expected ';' after ']'"},
      {"OPENQASM 2.0;\ninclude \"stdgates.inc\";\n", 2, 9, "only \"qelib1.inc\" is available"},
      {h + "qreg q[1];\ncreg c[1];\nmeasure q[0] -> q[0];\n", 5, 17, "'q' is a quantum register"},
      {h + "qreg q[2];\ncreg c[1];\nmeasure q -> c;\n", 5, 1, "two registers of one size"},
      {h + "qreg q[1];\nqreg q[2];\n", 4, 6, "'q' is already declared as a register"},
      {h + "gate h a { x a; }\n", 3, 6, "'h' is already declared as a gate"},
      {h + "gate g a { h b; }\n", 3, 14, "'b' is not a qubit argument of this gate"},
      {h + "gate g(t) a { rx(u) a; }\n", 3, 18, "'u' is not a parameter of this gate"},
      {h + "gate g a { measure a; }\n", 3, 12, "'measure' cannot appear in a gate definition"},
      {h + "qreg q[1];\nrx(theta) q[0];\n", 4, 4, "'theta' is not a known value"},
      {h + "qreg q[1];\nrx(1e999) q[0];\n", 4, 4, "number 1e999 is too large"},
      {h + "qreg q[1];\nrx(ln(0)) q[0];\n", 4, 1, "parameter 1 of 'rx' is not a finite number"},
      {h + "qreg q[1000000000];\n", 3, 8,
       "this register brings the program to 1000000000 qubits; at most 62"},
      {h + "qreg q[99999999999999999999999];\n", 3, 8, "is too large"},
      {h + "qreg q[0];\n", 3, 8, "a register needs at least one qubit"},
      {h + "creg c[5000];\n", 3, 8, "at most 4096"},
      {h + "qreg q[1];\ncreg c[2];\nif (c == 4) x q[0];\n", 5, 10, "c has 2 bits; it never holds 4"},
      {h + "qreg q[1];\ncreg c[2];\nif (c[0] == 1) x q[0];\n", 5, 5, "compares a whole classical register"},
      {h + "qreg q[1];\nopaque magic a;\nmagic q[0];\n", 5, 1, "gate 'magic' is opaque"},
      {h + "qreg q[1];\nh q[0] @ ;\n", 4, 8, "unexpected character '@'"},
      {h + "include \"qelib1.inc;\n", 3, 9, "string without its closing quote"},
      {h + "qreg q[1];\nU(1,2) q[0];\n", 4, 1, "gate 'U' takes 3 parameters, given 2"},
      {h + "qreg q[1];\nrx(1 +) q[0];\n", 4, 7, "expected an expression, found ')'"},
      {h + "qreg q[1];\nrx(sin 1) q[0];\n", 4, 8, "expected '(', found '1'"},
      {h + "gate g a { h a;\n", 4, 1, "gate 'g' has no closing '}'"},
      {h + "qreg q[1];\nOPENQASM 2.0;\n", 4, 1, "'OPENQASM' may appear only once"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.text);
    ParseResult r = ParseQasm(c.text);
    ASSERT_FALSE(r.errors.empty());
    EXPECT_EQ(r.errors[0].line, c.line) << r.errors[0].message;
    EXPECT_EQ(r.errors[0].col, c.col) << r.errors[0].message;
    EXPECT_NE(r.errors[0].message.find(c.message), std::string::npos) << r.errors[0].message;
  }
}

TEST(Qpu, ErrorsAreRenderedWithSourceCaretAndHelp) {
  const std::string text = "OPENQASM 2.0;\nqreg q[1];\nh q[0];\n";
  ParseResult r = ParseQasm(text);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(FormatError(r.errors[0], "bell.qasm", text),
            "bell.qasm:3:1: error: gate 'h' is not defined\n"
            "  h q[0];\n"
            "  ^\n"
            "  help: add include \"qelib1.inc\"; after the OPENQASM line\n");
}

TEST(Qpu, ParsingRecoversAndReportsEveryError) {
  ParseResult r =
      ParseQasm(Program("qreg q[2];\nfoo q[0];\nh q[5];\nrx(1/0) q[0];\ncx q[0], q[1];\nbar q;\n"));
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].line, 4u);
  EXPECT_EQ(r.errors[1].line, 5u);
  EXPECT_EQ(r.errors[2].line, 6u);
  EXPECT_EQ(r.errors[3].line, 8u);
  // An error inside a gate body does not spill its statements to the top level.
  r = ParseQasm(Program("gate g a { h b; x a; y a; }\nqreg q[1];\ng q[0];\n"));
  ASSERT_EQ(r.errors.size(), 2u);  // b, then g (never defined)
  EXPECT_EQ(r.errors[1].line, 5u);
  // At most kMaxErrors.
  std::string many;
  for (int i = 0; i < 100; ++i) many += "nope;\n";
  EXPECT_EQ(ParseQasm(Program(many)).errors.size(), kMaxErrors);
}

TEST(Qpu, HostileInputsNeverCrash) {
  // Deep nesting of parentheses and unary minus: a located error, no stack overflow.
  for (const std::string& open : {std::string("("), std::string("-"), std::string("sin(")}) {
    std::string deep;
    for (int i = 0; i < 100000; ++i) deep += open;
    ParseResult r = ParseQasm(Program("qreg q[1];\nrx(" + deep + "1) q[0];\n"));
    ASSERT_FALSE(r.errors.empty());
    EXPECT_NE(r.errors[0].message.find("nested more than 200 deep"), std::string::npos)
        << r.errors[0].message;
  }
  // An exponential gate expansion stops at the operation limit.
  std::string bomb = "gate g0 a { x a; }\n";
  for (int i = 1; i <= 40; ++i) {
    bomb += "gate g" + std::to_string(i) + " a { g" + std::to_string(i - 1) + " a; g" +
            std::to_string(i - 1) + " a; }\n";
  }
  ParseResult r = ParseQasm(Program(bomb + "qreg q[1];\ng40 q[0];\n"));
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].message.find("expands to more than"), std::string::npos) << r.errors[0].message;
  // Deeply nested gate definitions (each calling the previous once).
  std::string chain = "gate g0 a { x a; }\n";
  for (int i = 1; i <= 300; ++i)
    chain += "gate g" + std::to_string(i) + " a { g" + std::to_string(i - 1) + " a; }\n";
  r = ParseQasm(Program(chain + "qreg q[1];\ng300 q[0];\n"));
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].message.find("nested more than 200 deep"), std::string::npos) << r.errors[0].message;
  // Every prefix of a valid program, and random bytes and token soup.
  const std::string valid = Program(
      "gate bell(t) a, b { h a; cx a, b; rz(t*2) b; }\nqreg q[3];\ncreg c[3];\nbell(pi/2) q[0], q[1];\n"
      "if (c == 2) x q[2];\nmeasure q -> c;\nbarrier q;\nreset q[0];\n");
  EXPECT_TRUE(ParseQasm(valid).errors.empty());
  for (size_t n = 0; n < valid.size(); ++n) ParseQasm(valid.substr(0, n));
  std::mt19937_64 rng(1234);
  const std::vector<std::string> soup = {"OPENQASM", "2.0",     ";",
                                         "qreg",     "creg",    "q",
                                         "c",        "[",       "]",
                                         "(",        ")",       "{",
                                         "}",        "1",       "99999999999999999999",
                                         "gate",     "h",       "cx",
                                         "->",       "==",      "if",
                                         "measure",  "pi",      "^",
                                         "-",        ",",       "\"qelib1.inc\"",
                                         "include",  "1e308",   "opaque",
                                         "reset",    "barrier", "U",
                                         "CX",       "\n",      "\x00",
                                         "\xff"};
  for (int iter = 0; iter < 3000; ++iter) {
    std::string text;
    const size_t len = rng() % 60;
    for (size_t i = 0; i < len; ++i) {
      if (iter % 2 == 0) {
        text += soup[rng() % soup.size()];
        text += ' ';
      } else {
        text += static_cast<char>(rng() & 0xff);
      }
    }
    ParseResult pr = ParseQasm(iter % 3 == 0 ? Program(text) : text);
    for (const ParseError& e : pr.errors) {
      EXPECT_GE(e.line, 1u);
      EXPECT_GE(e.col, 1u);
      FormatError(e, "fuzz.qasm", text);
    }
    if (pr.errors.empty() && pr.circuit.num_qubits <= 12) FinalState(pr.circuit);
  }
}

// ---- devices (kernels/qpu/device.h, backend.h): --device=auto|cpu|gpu

GpuStatus NoGpu() {
  GpuStatus g;
  g.why_not = "no NVIDIA driver, or one too old for CUDA (cudaErrorInsufficientDriver)";
  return g;
}

GpuStatus Gpu(uint64_t free_bytes) {
  GpuStatus g;
  g.present = true;
  g.name = "NVIDIA H100 80GB HBM3";
  g.free_bytes = free_bytes;
  return g;
}

TEST(QpuDevice, ParsesTheChoice) {
  DeviceChoice c = DeviceChoice::kCpu;
  EXPECT_TRUE(ParseDeviceChoice("auto", &c));
  EXPECT_EQ(c, DeviceChoice::kAuto);
  EXPECT_TRUE(ParseDeviceChoice("gpu", &c));
  EXPECT_EQ(c, DeviceChoice::kGpu);
  EXPECT_TRUE(ParseDeviceChoice("cpu", &c));
  EXPECT_EQ(c, DeviceChoice::kCpu);
  EXPECT_FALSE(ParseDeviceChoice("GPU", &c));
  EXPECT_FALSE(ParseDeviceChoice("cuda:0", &c));
  EXPECT_FALSE(ParseDeviceChoice("", &c));
}

TEST(QpuDevice, AutoWithoutAGpuRunsOnTheCpu) {
  DeviceDecision d = ChooseDevice(DeviceChoice::kAuto, NoGpu(), 10, 0);
  EXPECT_TRUE(d.ok);
  EXPECT_FALSE(d.gpu);
  EXPECT_EQ(d.reason, "no GPU: no NVIDIA driver, or one too old for CUDA (cudaErrorInsufficientDriver)");
  d = ChooseDevice(DeviceChoice::kCpu, Gpu(uint64_t{80} << 30), 10, 0);
  EXPECT_TRUE(d.ok);
  EXPECT_FALSE(d.gpu);  // cpu is cpu, whatever the machine has
}

TEST(QpuDevice, GpuWithoutAGpuIsAnErrorNamingWhy) {
  for (const std::string& why : {std::string("no CUDA device (the driver reports none)"),
                                 std::string("the CUDA module libplinth_gpu_cuda.so was not built")}) {
    GpuStatus g;
    g.why_not = why;
    DeviceDecision d = ChooseDevice(DeviceChoice::kGpu, g, 3, 0);
    EXPECT_FALSE(d.ok);
    EXPECT_EQ(d.error, "--device=gpu: no GPU: " + why);
  }
}

TEST(QpuDevice, GpuMemoryDecides) {
  // 20 qubits: 16 MiB of amplitudes, 256 bytes of chunk sums, 8 MiB of staging.
  EXPECT_EQ(CudaStateBytes(20), (uint64_t{16} << 20) + 32 * 8 + (uint64_t{8} << 20));
  // 30 qubits: 16 GiB + 2^15 sums + a 2^22-amplitude staging window.
  EXPECT_EQ(CudaStateBytes(30), (uint64_t{16} << 30) + (uint64_t{1} << 15) * 8 + (uint64_t{32} << 20));
  const uint64_t free80 = uint64_t{80} << 30;
  DeviceDecision d = ChooseDevice(DeviceChoice::kAuto, Gpu(free80), 30, 0);
  EXPECT_TRUE(d.ok && d.gpu);
  d = ChooseDevice(DeviceChoice::kGpu, Gpu(free80), 30, 0);
  EXPECT_TRUE(d.ok && d.gpu);
  // 33 qubits need 128 GiB: auto falls back to the CPU and says why; gpu refuses.
  d = ChooseDevice(DeviceChoice::kAuto, Gpu(free80), 33, 0);
  EXPECT_TRUE(d.ok);
  EXPECT_FALSE(d.gpu);
  EXPECT_NE(d.reason.find("more than nine tenths of its 80.0 GiB of free memory"), std::string::npos)
      << d.reason;
  d = ChooseDevice(DeviceChoice::kGpu, Gpu(free80), 33, 0);
  EXPECT_FALSE(d.ok);
  EXPECT_NE(d.error.find("--device=gpu: 128.0 GiB for the state vector on cuda:0 (NVIDIA H100 80GB HBM3)"),
            std::string::npos)
      << d.error;
  // Exactly at nine tenths of free memory fits; one byte less does not.
  const uint64_t need = CudaStateBytes(24);
  EXPECT_TRUE(ChooseDevice(DeviceChoice::kGpu, Gpu(need / 9 * 10 + 10), 24, 0).gpu);
  EXPECT_FALSE(ChooseDevice(DeviceChoice::kGpu, Gpu(need), 24, 0).ok);
  // --max-memory caps the state on the GPU as on the CPU.
  d = ChooseDevice(DeviceChoice::kGpu, Gpu(free80), 24, 64 << 20);
  EXPECT_FALSE(d.ok);
  EXPECT_EQ(
      d.error,
      "--device=gpu: 256.0 MiB for the state vector (16*2^n bytes), more than --max-memory=64.0 MiB; raise "
      "it, or use fewer qubits");
  EXPECT_TRUE(ChooseDevice(DeviceChoice::kGpu, Gpu(free80), 24, StateBytes(24)).gpu);
  // No qubits: the CPU only.
  EXPECT_FALSE(ChooseDevice(DeviceChoice::kAuto, Gpu(free80), 0, 0).gpu);
}

// A backend that keeps its state on the CPU but samples the way the CUDA
// backend does (probabilities copied out, then SampleProbabilities), and
// can be told to fail after some calls: RunOn's contract with any device.
class HostProbabilityState final : public StateBackend {
 public:
  HostProbabilityState(uint32_t qubits, int fail_after) : cpu_(qubits, 1), fail_after_(fail_after) {}
  std::string Device() const override { return "fake:0"; }
  uint32_t qubits() const override { return cpu_.qubits(); }
  void SetZeroState() override {
    if (Count()) cpu_.SetZeroState();
  }
  void ApplyMatrix(const Matrix2& m, uint32_t target, uint64_t controls = 0) override {
    if (Count()) cpu_.ApplyMatrix(m, target, controls);
  }
  void ApplySwap(uint32_t a, uint32_t b, uint64_t controls = 0) override {
    if (Count()) cpu_.ApplySwap(a, b, controls);
  }
  double ProbabilityOfOne(uint32_t qubit) override { return Count() ? cpu_.ProbabilityOfOne(qubit) : 0; }
  void Collapse(uint32_t qubit, bool one, double p) override {
    if (Count()) cpu_.Collapse(qubit, one, p);
  }
  bool PrefixFits(uint64_t max_memory) override { return cpu_.PrefixFits(max_memory); }
  void SavePrefix() override {
    if (Count()) cpu_.SavePrefix();
  }
  void RestorePrefix() override {
    if (Count()) cpu_.RestorePrefix();
  }
  void SampleFinalState(const Circuit& circuit, uint64_t shots, std::mt19937_64& rng,
                        std::map<std::string, uint64_t>* counts) override {
    if (!Count()) return;
    std::vector<double> p;
    for (const Complex& a : cpu_.Amplitudes()) p.push_back(a.real() * a.real() + a.imag() * a.imag());
    SampleProbabilities(circuit, p, shots, rng, counts);
  }
  std::vector<Complex> Amplitudes() override { return cpu_.Amplitudes(); }
  int calls = 0;

 private:
  bool Count() {
    if (failed()) return false;
    if (fail_after_ >= 0 && ++calls > fail_after_) Fail("device lost (injected)");
    return !failed();
  }
  CpuState cpu_;
  int fail_after_;
};

TEST(QpuDevice, CpuBackendBehindTheInterfaceGivesTheSameResults) {
  const std::string grover =
      "qreg q[3];\ncreg c[3];\nh q;\nccx q[0], q[1], q[2];\nh q;\nx q;\nh q[2];\nccx q[0], q[1], q[2];\n"
      "h q[2];\nx q;\nh q;\nry(0.3) q[1];\ncswap q[0], q[1], q[2];\nmeasure q -> c;\n";
  const std::string per_shot =
      "qreg q[3];\ncreg c[3];\nh q[0];\ncx q[0], q[1];\nmeasure q[0] -> c[0];\n"
      "reset q[0];\nh q[0];\nif (c == 1) x q[2];\nmeasure q -> c;\n";
  for (const std::string& body : {grover, per_shot}) {
    Circuit c = MustParse(Program(body));
    RunOptions o;
    o.shots = 2000;
    o.seed = 23;
    o.threads = 1;
    RunResult reference = qpu::Run(c, o);
    ASSERT_TRUE(reference.ok);
    EXPECT_EQ(reference.device, "cpu");
    CpuState cpu(c.num_qubits, 1);
    RunResult on_cpu = RunOn(c, cpu, o);
    ASSERT_TRUE(on_cpu.ok);
    EXPECT_EQ(on_cpu.counts, reference.counts);
    EXPECT_EQ(on_cpu.per_shot, reference.per_shot);
    // The device path's sampler (host probabilities) gives the same counts for the same seed.
    HostProbabilityState host(c.num_qubits, -1);
    RunResult on_host = RunOn(c, host, o);
    ASSERT_TRUE(on_host.ok) << on_host.error;
    EXPECT_EQ(on_host.device, "fake:0");
    EXPECT_EQ(on_host.counts, reference.counts);
    EXPECT_EQ(RunOnDevice(c, o, DeviceChoice::kCpu).counts, reference.counts);
  }
  // The interface's amplitudes are the simulator's.
  Circuit bell = MustParse(Program("qreg q[2];\nh q[0];\ncx q[0], q[1];\n"));
  CpuState state(2, 1);
  for (const Op& op : bell.ops) state.Apply(op);
  ExpectAmplitudes(state.Amplitudes(), FinalState(bell, 1).amplitudes());
  EXPECT_NEAR(state.ProbabilityOfOne(1), 0.5, kTol);
}

TEST(QpuDevice, SampleProbabilitiesMatchesTheCpuSamplerOnLargeStates) {
  // 16 qubits span four sampling chunks: sums, sweeps and chunk skips all agree.
  std::string body = "qreg q[16];\ncreg c[16];\n";
  for (int i = 0; i < 16; ++i)
    body += "ry(" + std::to_string(0.1 * (i + 1)) + ") q[" + std::to_string(i) + "];\n";
  body += "cx q[0], q[15];\nmeasure q -> c;\n";
  Circuit c = MustParse(Program(body));
  CpuState cpu(16, 2);
  for (const Op& op : c.ops) cpu.Apply(op);
  std::vector<double> p;
  for (const Complex& a : cpu.Amplitudes()) p.push_back(std::norm(a));
  std::mt19937_64 rng_a(99), rng_b(99);
  std::map<std::string, uint64_t> from_amplitudes, from_probabilities;
  cpu.SampleFinalState(c, 5000, rng_a, &from_amplitudes);
  SampleProbabilities(c, p, 5000, rng_b, &from_probabilities);
  EXPECT_EQ(from_amplitudes, from_probabilities);
  EXPECT_GT(from_amplitudes.size(), 100u);
}

TEST(QpuDevice, ABackendFailureIsReportedNotIgnored) {
  Circuit c =
      MustParse(Program("qreg q[2];\ncreg c[2];\nh q[0];\nmeasure q[0] -> c[0];\nreset q[0];\n"
                        "measure q -> c;\n"));
  RunOptions o;
  o.shots = 50;
  for (int fail_after : {0, 1, 5, 40}) {
    HostProbabilityState state(2, fail_after);
    RunResult r = RunOn(c, state, o);
    EXPECT_FALSE(r.ok) << fail_after;
    EXPECT_EQ(r.error, "on fake:0: device lost (injected)");
    EXPECT_TRUE(r.counts.empty());
  }
  Circuit final_state = MustParse(Program("qreg q[2];\ncreg c[2];\nh q[0];\nmeasure q -> c;\n"));
  HostProbabilityState state(2, 1);  // the gate passes, sampling fails
  RunResult r = RunOn(final_state, state, o);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "on fake:0: device lost (injected)");
}

TEST(QpuDevice, ExplicitGpuEitherRunsOnCudaOrSaysWhyNot) {
  Circuit c = MustParse(Program("qreg q[2];\ncreg c[2];\nh q[0];\ncx q[0], q[1];\nmeasure q -> c;\n"));
  RunOptions o;
  o.shots = 400;
  o.seed = 5;
  RunResult r = RunOnDevice(c, o, DeviceChoice::kGpu);
  if (r.ok) {  // a machine with a GPU
    EXPECT_EQ(r.device, "cuda:0");
    auto counts = CountsOf(r);
    EXPECT_EQ(counts["00"] + counts["11"], 400u);
  } else {
    EXPECT_EQ(r.error.rfind("--device=gpu: no GPU: ", 0), 0u) << r.error;
    // auto then runs on the CPU, with the CPU's counts.
    RunResult a = RunOnDevice(c, o, DeviceChoice::kAuto);
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.device, "cpu");
    EXPECT_EQ(a.counts, qpu::Run(c, o).counts);
  }
}

// The built CUDA module itself: without a GPU its qpu_* entries exist and
// answer with the discovery's reason; with one, the CUDA state gives the
// CPU's amplitudes and measurement probabilities.
TEST(QpuDevice, CudaModuleStateEntries) {
  const gpu::Discovery d = gpu::DiscoverCuda();
  if (d.why == gpu::NoGpu::kModuleNotBuilt)
    GTEST_SKIP() << "no CUDA module (nvcc absent at build time): " << d.message;
  ASSERT_NE(d.why, gpu::NoGpu::kModuleBroken) << d.message;
  const plinth_gpu_module_v1* t = gpu::ModuleTable(d);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->abi_version, 2u);
  for (const void* entry :
       {reinterpret_cast<const void*>(t->qpu_create), reinterpret_cast<const void*>(t->qpu_destroy),
        reinterpret_cast<const void*>(t->qpu_set_zero), reinterpret_cast<const void*>(t->qpu_copy),
        reinterpret_cast<const void*>(t->qpu_apply_matrix), reinterpret_cast<const void*>(t->qpu_apply_swap),
        reinterpret_cast<const void*>(t->qpu_probability_of_one),
        reinterpret_cast<const void*>(t->qpu_collapse), reinterpret_cast<const void*>(t->qpu_probabilities),
        reinterpret_cast<const void*>(t->qpu_read), reinterpret_cast<const void*>(t->qpu_bench)}) {
    EXPECT_NE(entry, nullptr);
  }
  std::string error;
  if (d.why != gpu::NoGpu::kNone) {  // no driver or no device: every entry says so, nothing is allocated
    EXPECT_EQ(OpenCudaState(t, 0, 3, &error), nullptr);
    EXPECT_FALSE(error.empty());
    double gate = 0, copy = 0;
    char err[PLINTH_GPU_ERROR_LEN] = "";
    EXPECT_NE(t->qpu_bench(0, 20, 0, 1, &gate, &copy, err), PLINTH_GPU_OK);
    EXPECT_NE(err[0], '\0');
    return;
  }
  const std::string body =
      "qreg q[12];\nh q;\nccx q[0], q[1], q[2];\ncswap q[3], q[4], q[11];\nu3(0.3,0.2,0.1) q[5];\n"
      "cu1(0.7) q[6], q[0];\nswap q[0], q[11];\nt q[7];\ncz q[8], q[9];\nry(1.1) q[10];\n";
  Circuit c = MustParse(Program(body));
  std::unique_ptr<StateBackend> gpu_state = OpenCudaState(t, 0, c.num_qubits, &error);
  ASSERT_NE(gpu_state, nullptr) << error;
  CpuState cpu(c.num_qubits, 1);
  for (const Op& op : c.ops) {
    gpu_state->Apply(op);
    cpu.Apply(op);
  }
  ExpectAmplitudes(gpu_state->Amplitudes(), cpu.Amplitudes());
  for (uint32_t q = 0; q < c.num_qubits; ++q)
    EXPECT_NEAR(gpu_state->ProbabilityOfOne(q), cpu.ProbabilityOfOne(q), kTol);
  gpu_state->Collapse(3, true, cpu.ProbabilityOfOne(3));
  cpu.Collapse(3, true, cpu.ProbabilityOfOne(3));
  ExpectAmplitudes(gpu_state->Amplitudes(), cpu.Amplitudes());
  EXPECT_FALSE(gpu_state->failed()) << gpu_state->error();
}

}  // namespace
}  // namespace plinth::qpu
