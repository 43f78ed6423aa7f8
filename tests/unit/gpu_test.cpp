// kernels/gpu without a GPU: the CPU reference kernels on known inputs (the
// tiled GEMM against a naive loop, pattern tests finding errors injected at
// known addresses), bandwidth and peak arithmetic, the pass/fail rules, the
// JSON and Prometheus renderings, the probe end to end on the cpu backend
// with each fake fault, and the CUDA module loader answering without a
// driver. No assertion depends on how fast this machine is.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "kernels/gpu/cuda_backend.h"
#include "kernels/gpu/gpu.h"
#include "kernels/gpu/module_abi.h"
#include "kernels/gpu/reference.h"

namespace plinth::gpu {
namespace {

// ------------------------------------------------------------ GEMM

// Each element accumulated by one FMA per k in increasing k: the order the
// CUDA kernel (and its tiled reproduction) must keep.
template <typename T>
void SequentialFmaGemm(const T* a, const T* b, T* c, int n) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      T acc = 0;
      for (int k = 0; k < n; ++k) acc = std::fma(a[i * n + k], b[k * n + j], acc);
      c[i * n + j] = acc;
    }
}

template <typename T>
void CheckTiledGemm(int n) {
  SCOPED_TRACE("n=" + std::to_string(n) + (sizeof(T) == 8 ? " fp64" : " fp32"));
  const size_t count = size_t(n) * n;
  std::vector<T> a(count), b(count), tiled(count), naive(count), sequential(count);
  // Full-width mantissas, so that products round (FillMatrix's values multiply exactly).
  for (size_t i = 0; i < count; ++i) {
    a[i] = static_cast<T>(std::sin(0.7 * double(i) + 1));
    b[i] = static_cast<T>(std::cos(1.3 * double(i) + 2));
  }
  TiledGemm(a.data(), b.data(), tiled.data(), n);
  NaiveGemm(a.data(), b.data(), naive.data(), n);
  SequentialFmaGemm(a.data(), b.data(), sequential.data(), n);
  // The tiling visits every (i, k, j) once, k in order: the same bits.
  EXPECT_EQ(CountBitMismatches(tiled.data(), sequential.data(), count), 0u);
  // Against the textbook loop (no FMA): within the documented bound.
  EXPECT_EQ(CountBeyondBound(tiled.data(), naive.data(), a.data(), b.data(), n), 0u);
  // And the two really differ somewhere for n large enough to round: the bound is not vacuous.
  if (n >= 64) {
    EXPECT_GT(CountBitMismatches(tiled.data(), naive.data(), count), 0u);
  }
}

TEST(GpuReference, TiledGemmMatchesNaive) {
  for (int n : {1, 5, 16, 63, 64, 65, 100, 128}) {
    CheckTiledGemm<float>(n);
    CheckTiledGemm<double>(n);
  }
}

TEST(GpuReference, TiledGemmKnownProduct) {
  // [1 2; 3 4] x [5 6; 7 8] = [19 22; 43 50]
  const double a[] = {1, 2, 3, 4}, b[] = {5, 6, 7, 8};
  double c[4] = {};
  TiledGemm(a, b, c, 2);
  EXPECT_EQ(c[0], 19);
  EXPECT_EQ(c[1], 22);
  EXPECT_EQ(c[2], 43);
  EXPECT_EQ(c[3], 50);
}

TEST(GpuReference, BoundCatchesAWrongElement) {
  const int n = 64;
  const size_t count = size_t(n) * n;
  std::vector<float> a(count), b(count), c(count), ref(count);
  FillMatrix(a.data(), count, 1);
  FillMatrix(b.data(), count, 2);
  TiledGemm(a.data(), b.data(), c.data(), n);
  ref = c;
  c[5 * n + 9] += 0.01f;         // a wrong value, far outside rounding
  c[7 * n + 1] = std::nanf("");  // and a NaN
  EXPECT_EQ(CountBeyondBound(c.data(), ref.data(), a.data(), b.data(), n), 2u);
  // One flipped low mantissa bit is within the bound but not bit-identical.
  std::vector<float> flipped = ref;
  uint32_t bits;
  std::memcpy(&bits, &flipped[3], 4);
  bits ^= 1u;
  std::memcpy(&flipped[3], &bits, 4);
  EXPECT_EQ(CountBitMismatches(flipped.data(), ref.data(), count), 1u);
}

TEST(GpuReference, FillMatrixIsDeterministicAndInRange) {
  std::vector<float> x(1000), y(1000), z(1000);
  FillMatrix(x.data(), x.size(), 3);
  FillMatrix(y.data(), y.size(), 3);
  FillMatrix(z.data(), z.size(), 4);
  EXPECT_EQ(CountBitMismatches(x.data(), y.data(), x.size()), 0u);
  EXPECT_GT(CountBitMismatches(x.data(), z.data(), x.size()), 900u);
  for (float v : x) {
    EXPECT_LE(std::fabs(v), 1.0f);
    EXPECT_EQ(v * 4096, std::round(v * 4096));  // exact in FP32
  }
}

// ------------------------------------------------------------ memory patterns

TEST(GpuReference, PatternTestCleanBufferHasNoErrors) {
  std::vector<uint32_t> words(4096);
  MemoryTestResult r = PatternTest(words.data(), words.size(), /*full=*/true, nullptr);
  EXPECT_EQ(r.errors, 0u);
  EXPECT_TRUE(r.bad.empty());
  EXPECT_EQ(r.bytes_tested, 4096u * 4);
}

TEST(GpuReference, PatternTestFindsInjectedFaultsAtTheirAddresses) {
  std::vector<uint32_t> words(1000);
  plinth_gpu_mem_step steps[PLINTH_GPU_MAX_STEPS];
  const int step_count = plinth_gpu_memtest_steps(0, steps);
  int writes = 0;
  for (int s = 0; s < step_count; ++s) writes += steps[s].action != PLINTH_STEP_VERIFY;
  // Bit 0 of word 321 flips after every write: every verify that follows sees it.
  MemoryTestResult r = PatternTest(words.data(), words.size(), false, FlipBitHook(321));
  EXPECT_EQ(r.errors, uint64_t(writes));
  ASSERT_FALSE(r.bad.empty());
  std::set<std::string> tests;
  for (const BadAddress& bad : r.bad) {
    EXPECT_EQ(bad.offset_bytes, 321u * 4);
    EXPECT_EQ(bad.expected ^ bad.actual, 1u);
    tests.insert(bad.test);
  }
  EXPECT_EQ(tests, (std::set<std::string>{"walking_ones", "moving_inversions", "address_in_address"}));
}

TEST(GpuReference, PatternTestFindsAStuckBitAndBoundsTheList) {
  // A stuck-at-zero bit 3 in words 100..199: the walking-ones step for bit 3
  // and every pattern with bit 3 set see each of them.
  std::vector<uint32_t> words(512);
  FaultHook stuck = [](uint32_t* w, uint64_t count, int) {
    for (uint64_t i = 100; i < 200 && i < count; ++i) w[i] &= ~(1u << 3);
  };
  MemoryTestResult r = PatternTest(words.data(), words.size(), true, stuck);
  EXPECT_GT(r.errors, kMaxBadAddresses);
  EXPECT_EQ(r.bad.size(), kMaxBadAddresses);
  for (const BadAddress& bad : r.bad) {
    EXPECT_GE(bad.offset_bytes, 100u * 4);
    EXPECT_LT(bad.offset_bytes, 200u * 4);
    EXPECT_EQ(bad.expected & ~bad.actual, 1u << 3);
  }
}

TEST(GpuReference, AddressPatternTellsAliasedAddressesApart) {
  // An address line that aliases word 64 onto word 0: address-in-address sees it.
  std::vector<uint32_t> words(256);
  FaultHook alias = [](uint32_t* w, uint64_t, int step) {
    plinth_gpu_mem_step steps[PLINTH_GPU_MAX_STEPS];
    plinth_gpu_memtest_steps(0, steps);
    if (steps[step].test == PLINTH_TEST_ADDRESS) w[0] = w[64];
  };
  MemoryTestResult r = PatternTest(words.data(), words.size(), false, alias);
  ASSERT_GE(r.errors, 1u);
  EXPECT_EQ(r.bad[0].offset_bytes, 0u);
  EXPECT_EQ(r.bad[0].test, "address_in_address");
}

TEST(GpuReference, StepsCoverEachTestAndFitTheTable) {
  plinth_gpu_mem_step steps[PLINTH_GPU_MAX_STEPS];
  const int quick = plinth_gpu_memtest_steps(0, steps);
  const int full = plinth_gpu_memtest_steps(1, steps);
  EXPECT_EQ(quick, 33 + 2 * 4 + 3);
  EXPECT_EQ(full, 33 + 4 * 4 + 3);
  EXPECT_LE(full, PLINTH_GPU_MAX_STEPS);
  // Walking ones: word i in step b has exactly one bit set, and it moves.
  EXPECT_EQ(plinth_gpu_pattern(PLINTH_PATTERN_WALK, 0, 0), 1u);
  EXPECT_EQ(plinth_gpu_pattern(PLINTH_PATTERN_WALK, 3, 1), 1u << 4);
  EXPECT_EQ(plinth_gpu_pattern(PLINTH_PATTERN_WALK, 31, 1), 1u);
  EXPECT_EQ(plinth_gpu_pattern(PLINTH_PATTERN_ADDR, 0, 0x100000007ull), 6u);
  EXPECT_EQ(plinth_gpu_pattern(PLINTH_PATTERN_ADDR_INV, 0, 5), ~5u);
}

// ------------------------------------------------------------ bandwidth arithmetic

DeviceInfo Device(const std::string& name, int clock_khz, int width, uint64_t total = 0) {
  DeviceInfo d;
  d.name = name;
  d.memory_clock_khz = clock_khz;
  d.bus_width_bits = width;
  d.total_bytes = total;
  d.pci_bus_id = "0000:17:00.0";
  return d;
}

TEST(GpuBandwidth, AttributePeakIsClockTimesWidthTimesTwo) {
  // 1215 MHz x 5120 bit / 8 x 2 = 1.5552 TB/s (an A100 40GB's attributes).
  EXPECT_DOUBLE_EQ(AttributePeak(1215000, 5120), 1215e6 * 640 * 2);
  EXPECT_EQ(AttributePeak(0, 5120), 0);
  EXPECT_EQ(AttributePeak(1215000, 0), 0);
  EXPECT_DOUBLE_EQ(Rate(3e9, 1.5), 2e9);
  EXPECT_EQ(Rate(3e9, 0), 0);
}

TEST(GpuBandwidth, TableOverridesUnderReportingAttributes) {
  EXPECT_EQ(PeakBandwidth(Device("NVIDIA H100 80GB HBM3", 1593000, 5120)).bytes_per_second, 3.35e12);
  EXPECT_EQ(PeakBandwidth(Device("NVIDIA H100 PCIe", 1593000, 5120)).bytes_per_second, 2.0e12);
  EXPECT_EQ(PeakBandwidth(Device("NVIDIA H200", 2619000, 6144)).bytes_per_second, 4.8e12);
  EXPECT_EQ(PeakBandwidth(Device("NVIDIA A100-SXM4-80GB", 1593000, 5120)).bytes_per_second, 2.039e12);
  EXPECT_EQ(
      PeakBandwidth(Device("NVIDIA A100-PCIE-40GB", 1215000, 5120, uint64_t(40) << 30)).bytes_per_second,
      1.555e12);
  EXPECT_EQ(PeakBandwidth(Device("NVIDIA A100 80GB PCIe", 1512000, 5120)).source, "table: A100 80GB");
  const Peak l4 = PeakBandwidth(Device("NVIDIA L4", 6251000, 192));
  EXPECT_DOUBLE_EQ(l4.bytes_per_second, 6251e6 * 24 * 2);
  EXPECT_EQ(l4.source, "attributes: 6251 MHz x 192 bit x 2");
  EXPECT_EQ(PeakBandwidth(Device("Mystery", 0, 0)).bytes_per_second, 0);
}

// ------------------------------------------------------------ thresholds

Measurements Passing() {
  Measurements m;
  BandwidthResult b;
  b.triad_bytes_per_second = 3.0e12;
  b.copy_bytes_per_second = 3.1e12;
  b.peak = {3.35e12, "table: H100 SXM"};
  m.bandwidth = b;
  GemmResult g;
  g.precision = "fp32";
  g.repeats = 10;
  m.gemm.push_back(g);
  m.memory = MemoryTestResult{1 << 30, 0, {}};
  return m;
}

const Check* Find(const std::vector<Check>& checks, const std::string& name) {
  for (const Check& c : checks)
    if (c.name == name) return &c;
  return nullptr;
}

TEST(GpuThresholds, DefaultsPassAHealthyDevice) {
  std::vector<Check> checks = Evaluate(Passing(), Thresholds{}, std::nullopt);
  ASSERT_EQ(checks.size(), 3u);
  for (const Check& c : checks) EXPECT_TRUE(c.passed) << c.name << ": " << c.detail;
}

TEST(GpuThresholds, BandwidthAgainstPeakAtTheBoundary) {
  Measurements m = Passing();
  m.bandwidth->triad_bytes_per_second = 0.75 * 3.35e12;  // exactly the default
  EXPECT_TRUE(Find(Evaluate(m, {}, std::nullopt), "bandwidth")->passed);
  m.bandwidth->triad_bytes_per_second = 0.7499 * 3.35e12;
  const Check* c = Find(Evaluate(m, {}, std::nullopt), "bandwidth");
  EXPECT_FALSE(c->passed);
  EXPECT_NE(c->detail.find("< 0.75"), std::string::npos) << c->detail;
  Thresholds lax;
  lax.min_peak_fraction = 0.5;
  EXPECT_TRUE(Find(Evaluate(m, lax, std::nullopt), "bandwidth")->passed);
}

TEST(GpuThresholds, BaselineReplacesPeak) {
  Measurements m = Passing();
  m.bandwidth->triad_bytes_per_second = 2.0e12;  // 0.6 of peak: fails the peak rule
  EXPECT_FALSE(Find(Evaluate(m, {}, std::nullopt), "bandwidth")->passed);
  EXPECT_TRUE(Find(Evaluate(m, {}, 2.2e12), "bandwidth")->passed);   // 0.909 of the baseline
  EXPECT_FALSE(Find(Evaluate(m, {}, 2.3e12), "bandwidth")->passed);  // 0.87 of it
  EXPECT_NE(Find(Evaluate(m, {}, 2.3e12), "bandwidth")->detail.find("baseline"), std::string::npos);
}

TEST(GpuThresholds, UnknownPeakWithoutBaselineFails) {
  Measurements m = Passing();
  m.bandwidth->peak = {};
  const Check* c = Find(Evaluate(m, {}, std::nullopt), "bandwidth");
  EXPECT_FALSE(c->passed);
  EXPECT_NE(c->detail.find("no peak"), std::string::npos);
}

TEST(GpuThresholds, GemmAndMemoryCountAgainstTheirLimits) {
  Measurements m = Passing();
  m.gemm[0].mismatched_elements = 1;
  EXPECT_FALSE(Find(Evaluate(m, {}, std::nullopt), "gemm")->passed);
  m.gemm[0].mismatched_elements = 0;
  m.gemm[0].reference_mismatches = 1;
  EXPECT_FALSE(Find(Evaluate(m, {}, std::nullopt), "gemm")->passed);
  Thresholds t;
  t.max_gemm_mismatches = 1;
  EXPECT_TRUE(Find(Evaluate(m, t, std::nullopt), "gemm")->passed);
  m.memory->errors = 3;
  EXPECT_FALSE(Find(Evaluate(m, t, std::nullopt), "memory")->passed);
  t.max_memory_errors = 3;
  EXPECT_TRUE(Find(Evaluate(m, t, std::nullopt), "memory")->passed);
}

// ------------------------------------------------------------ the probe on the cpu backend

ProbeOptions Fast() {
  ProbeOptions o;
  o.gemm_seconds = 0;                  // three repeats, however fast this machine is
  o.thresholds.min_peak_fraction = 0;  // timing is not under test here
  return o;
}

TEST(GpuProbe, CpuBackendPassesWithoutFaults) {
  std::unique_ptr<Backend> cpu = MakeCpuBackend();
  ProbeReport r;
  std::string error;
  ASSERT_TRUE(RunProbe(*cpu, Fast(), &r, &error)) << error;
  EXPECT_TRUE(r.passed) << ReportText(r);
  ASSERT_EQ(r.measurements.gemm.size(), 2u);
  for (const GemmResult& g : r.measurements.gemm) {
    EXPECT_GE(g.repeats, 3u);
    EXPECT_EQ(g.mismatched_elements, 0u);
    EXPECT_EQ(g.reference_mismatches, 0u);
    EXPECT_EQ(g.cublas_flops_per_second, -1);
  }
  ASSERT_TRUE(r.measurements.memory.has_value());
  EXPECT_EQ(r.measurements.memory->errors, 0u);
  EXPECT_GT(r.measurements.bandwidth->peak.bytes_per_second, 0);
  EXPECT_FALSE(r.measurements.transfer.has_value());
}

TEST(GpuProbe, EachFakeFaultFailsItsCheckOnly) {
  for (FakeFault fault : {FakeFault::kGemm, FakeFault::kMemory, FakeFault::kBandwidth}) {
    SCOPED_TRACE(FakeFaultName(fault));
    ProbeOptions o = Fast();
    o.fault = fault;
    // Bandwidth against the peak the host measured in the same run (the best
    // rate of any of its loops): an eighth of the triad is at most 0.125 of it.
    if (fault == FakeFault::kBandwidth) o.thresholds.min_peak_fraction = 0.75;
    std::unique_ptr<Backend> cpu = MakeCpuBackend();
    ProbeReport r;
    std::string error;
    ASSERT_TRUE(RunProbe(*cpu, o, &r, &error)) << error;
    EXPECT_FALSE(r.passed);
    const char* failing = fault == FakeFault::kGemm     ? "gemm"
                          : fault == FakeFault::kMemory ? "memory"
                                                        : "bandwidth";
    for (const Check& c : r.checks) EXPECT_EQ(c.passed, c.name != failing) << c.name << ": " << c.detail;
    if (fault == FakeFault::kGemm) {
      EXPECT_EQ(r.measurements.gemm[0].mismatched_elements, 1u);
    }
    if (fault == FakeFault::kMemory) {
      EXPECT_GT(r.measurements.memory->errors, 0u);
      const uint64_t words = r.measurements.memory->bytes_tested / 4;
      EXPECT_EQ(r.measurements.memory->bad[0].offset_bytes, (words / 2 + 5) * 4);
    }
  }
}

TEST(GpuProbe, PlanSizesBuffersFromTheDevice) {
  DeviceInfo h100 = Device("NVIDIA H100 80GB HBM3", 1593000, 5120, uint64_t(80) << 30);
  h100.free_bytes = uint64_t(79) << 30;
  h100.cache_bytes = 50 << 20;
  ProbeOptions o;
  ProbePlan quick = PlanProbe(h100, o);
  EXPECT_GE(quick.bandwidth_bytes, 4 * h100.cache_bytes);
  EXPECT_EQ(quick.memory_words, uint64_t(0.1 * double(h100.free_bytes)) / 4);
  EXPECT_EQ(quick.gemm.size(), 2u);
  for (const ProbePlan::Gemm& g : quick.gemm) EXPECT_EQ(g.n % PLINTH_GEMM_BLOCK, 0);
  EXPECT_GT(quick.transfer_bytes, 0u);
  o.level = Level::kFull;
  ProbePlan full = PlanProbe(h100, o);
  EXPECT_GT(full.gemm[0].seconds, quick.gemm[0].seconds);
  EXPECT_EQ(full.memory_words, uint64_t(0.9 * double(h100.free_bytes)) / 4);
  o.memory_fraction = 0.5;
  EXPECT_EQ(PlanProbe(h100, o).memory_words, uint64_t(0.5 * double(h100.free_bytes)) / 4);
  // A small card: the three bandwidth buffers still fit.
  DeviceInfo small = Device("Small", 1000000, 128, uint64_t(2) << 30);
  small.free_bytes = uint64_t(1) << 30;
  small.cache_bytes = 2 << 20;
  EXPECT_LE(3 * PlanProbe(small, {}).bandwidth_bytes, small.free_bytes);
}

// ------------------------------------------------------------ renderings

ProbeReport SampleReport() {
  ProbeReport r;
  r.device = Device("NVIDIA H100 80GB HBM3", 1593000, 5120, uint64_t(80) << 30);
  r.device.driver_version = 13000;
  r.device.runtime_version = 13000;
  r.device.cc_major = 9;
  r.measurements = Passing();
  r.measurements.memory->errors = 2;
  r.measurements.memory->bad = {{4096, 0x55555555u, 0x55555554u, "moving_inversions"}};
  r.measurements.gemm[0].cublas_flops_per_second = 50e12;
  r.measurements.gemm[0].flops_per_second = 20e12;
  r.checks = Evaluate(r.measurements, {}, std::nullopt);
  r.passed = false;
  r.seconds = 4.5;
  r.started_at = "2026-12-05T09:00:00Z";
  return r;
}

TEST(GpuRender, JsonRecord) {
  nlohmann::json j = ReportJson(SampleReport());
  EXPECT_EQ(j["format"], "plinth-gpu-probe/1");
  EXPECT_EQ(j["passed"], false);
  EXPECT_EQ(j["level"], "quick");
  EXPECT_TRUE(j["fake_fault"].is_null());
  EXPECT_EQ(j["device"]["compute_capability"], "9.0");
  EXPECT_EQ(j["device"]["driver_version"], "13.0");
  EXPECT_EQ(j["device"]["peak_bytes_per_second"], 3.35e12);
  EXPECT_DOUBLE_EQ(j["bandwidth"]["triad_peak_fraction"].get<double>(), 3.0e12 / 3.35e12);
  EXPECT_EQ(j["gemm"][0]["cublas_flops_per_second"], 50e12);
  EXPECT_EQ(j["memory"]["bad_addresses"][0]["offset"], 4096);
  EXPECT_EQ(j["memory"]["bad_addresses"][0]["actual"], "0x55555554");
  EXPECT_TRUE(j["transfer"].is_null());
  ASSERT_EQ(j["checks"].size(), 3u);
  EXPECT_EQ(j["checks"][2]["name"], "memory");
  EXPECT_EQ(j["checks"][2]["passed"], false);
}

TEST(GpuRender, BaselineComesFromAPassingRecordOfTheSameDevice) {
  ProbeReport r = SampleReport();
  r.passed = true;
  nlohmann::json record = ReportJson(r);
  std::string error;
  EXPECT_EQ(BaselineFromRecord(record, r.device, &error), 3.0e12) << error;
  DeviceInfo other = r.device;
  other.pci_bus_id = "0000:18:00.0";
  EXPECT_FALSE(BaselineFromRecord(record, other, &error));
  EXPECT_NE(error.find("another device"), std::string::npos);
  record["fake_fault"] = "gemm";
  EXPECT_FALSE(BaselineFromRecord(record, r.device, &error));
  record["fake_fault"] = nullptr;
  record["passed"] = false;
  EXPECT_FALSE(BaselineFromRecord(record, r.device, &error));
  EXPECT_FALSE(BaselineFromRecord(nlohmann::json::array(), r.device, &error));
  EXPECT_FALSE(BaselineFromRecord(nlohmann::json{{"format", "plinth-gpu-probe/1"}}, r.device, &error));
}

TEST(GpuRender, PrometheusText) {
  const std::string text = ReportMetrics(SampleReport());
  const std::string labels = "device=\"0\",pci_bus_id=\"0000:17:00.0\",backend=\"cuda\"";
  EXPECT_NE(text.find("# TYPE plinth_gpu_probe_passed gauge\nplinth_gpu_probe_passed{" + labels +
                      ",level=\"quick\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("plinth_gpu_check_passed{" + labels + ",check=\"memory\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("plinth_gpu_check_passed{" + labels + ",check=\"gemm\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("plinth_gpu_memory_bandwidth_bytes_per_second{" + labels +
                      ",kernel=\"triad\"} 3000000000000\n"),
            std::string::npos);
  EXPECT_NE(text.find("plinth_gpu_gemm_flops_per_second{" + labels +
                      ",precision=\"fp32\",implementation=\"cublas\"} 50000000000000\n"),
            std::string::npos);
  EXPECT_NE(text.find("plinth_gpu_memory_test_errors{" + labels + "} 2\n"), std::string::npos);
  EXPECT_NE(text.find("plinth_gpu_probe_timestamp_seconds{" + labels + ",level=\"quick\"} 1796461200\n"),
            std::string::npos);
  // Every sample line belongs to a family declared just before it.
  std::set<std::string> declared;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    std::string line = text.substr(begin, end - begin);
    begin = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) declared.insert(line.substr(7, line.find(' ', 7) - 7));
    if (line.empty() || line[0] == '#') continue;
    EXPECT_TRUE(declared.count(line.substr(0, line.find('{')))) << line;
  }
}

TEST(GpuRender, LabelValuesAreEscaped) {
  ProbeReport r = SampleReport();
  r.device.pci_bus_id = "a\"b\\c\nd";
  EXPECT_NE(ReportMetrics(r).find("pci_bus_id=\"a\\\"b\\\\c\\nd\""), std::string::npos);
}

TEST(GpuRender, ParseNames) {
  EXPECT_EQ(ParseLevel("quick"), Level::kQuick);
  EXPECT_EQ(ParseLevel("full"), Level::kFull);
  EXPECT_FALSE(ParseLevel("r3"));
  EXPECT_EQ(ParseFakeFault("memory"), FakeFault::kMemory);
  EXPECT_FALSE(ParseFakeFault("ecc"));
  EXPECT_EQ(CudaVersionText(12040), "12.4");
}

// ------------------------------------------------------------ the CUDA module loader

TEST(GpuModule, ModuleProblemsAreAnswers) {
  setenv("PLINTH_GPU_MODULE", "/nonexistent/libplinth_gpu_cuda.so", 1);
  std::vector<std::string> candidates = ModuleCandidates();
  unsetenv("PLINTH_GPU_MODULE");
  ASSERT_FALSE(candidates.empty());
  EXPECT_EQ(candidates[0], "/nonexistent/libplinth_gpu_cuda.so");

  Discovery none = DiscoverCudaFrom({"/nonexistent/a.so", "/nonexistent/b.so"});
  EXPECT_EQ(none.why, NoGpu::kModuleNotBuilt);
  EXPECT_NE(none.message.find("was not built"), std::string::npos) << none.message;
  EXPECT_NE(none.message.find("/nonexistent/b.so"), std::string::npos) << none.message;

  // A file that is no shared library.
  const std::string junk = testing::TempDir() + "/plinth-gpu-junk.so";
  FILE* f = std::fopen(junk.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("not an ELF file", f);
  std::fclose(f);
  Discovery broken = DiscoverCudaFrom({junk});
  EXPECT_EQ(broken.why, NoGpu::kModuleBroken);
  EXPECT_NE(broken.message.find("does not load"), std::string::npos) << broken.message;
  std::remove(junk.c_str());
  EXPECT_STREQ(NoGpuName(NoGpu::kModuleBroken), "module_broken");
}

TEST(GpuModule, DiscoveryWithoutAGpuSaysWhy) {
  // On a machine with a GPU this lists it; without one (this CI), it must
  // answer with a reason and a message, never crash or fail to link.
  Discovery d = DiscoverCuda();
  if (d.why == NoGpu::kNone) {
    EXPECT_FALSE(d.devices.empty());
    std::string error;
    EXPECT_NE(OpenCuda(d, 0, &error), nullptr) << error;
    EXPECT_EQ(OpenCuda(d, 1024, &error), nullptr);
    return;
  }
  EXPECT_TRUE(d.devices.empty());
  EXPECT_FALSE(d.message.empty());
  EXPECT_TRUE(d.why == NoGpu::kNoDriver || d.why == NoGpu::kNoDevice || d.why == NoGpu::kModuleNotBuilt)
      << NoGpuName(d.why) << ": " << d.message;
  std::string error;
  EXPECT_EQ(OpenCuda(d, 0, &error), nullptr);
  EXPECT_EQ(error, d.message);
}

}  // namespace
}  // namespace plinth::gpu
