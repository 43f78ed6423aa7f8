// GPU probes: what a node must pass before work lands on it (docs/gpu.md).
//
// Input: a Backend — a CUDA device through the dlopen()ed module
// (cuda_backend.h), or the host through the CPU reference kernels
// (reference.h), which run the same probe so that it can be tested without a
// GPU. Output: a ProbeReport with every measurement, the pass/fail decision
// of each check (Evaluate, a pure function of measurements and Thresholds)
// and renderings as JSON and Prometheus text.
//
// Architecture invariant: kernels/ is a leaf. Nothing here includes
// compiler/, runtime/ or cli/; cli/gpu_commands.cpp calls in.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace plinth::gpu {

enum class Level { kQuick, kFull };
// --fake-fault: make the probe fail as that fault would (on either backend).
enum class FakeFault { kNone, kBandwidth, kGemm, kMemory };

const char* LevelName(Level level);
const char* FakeFaultName(FakeFault fault);
std::optional<Level> ParseLevel(const std::string& text);
std::optional<FakeFault> ParseFakeFault(const std::string& text);

struct DeviceInfo {
  std::string backend = "cuda";  // "cuda", or "cpu" for the host through the reference kernels
  int index = 0;
  std::string name, pci_bus_id;
  int cc_major = 0, cc_minor = 0, multiprocessors = 0;
  bool ecc_enabled = false;
  int memory_clock_khz = 0, bus_width_bits = 0;
  int driver_version = 0, runtime_version = 0;  // 1000 * major + 10 * minor; 0 on the cpu backend
  uint64_t total_bytes = 0, free_bytes = 0;
  uint64_t cache_bytes = 0;  // L2 of a GPU, the last-level cache of the host
};

// "13.0" from CUDA's 13000.
std::string CudaVersionText(int version);

// ------------------------------------------------------------ bandwidth arithmetic

// A device's theoretical memory bandwidth and where the figure came from.
struct Peak {
  double bytes_per_second = 0;  // 0: unknown
  std::string source;           // "table: H100 SXM", "attributes: 2619 MHz x 5120 bit x 2", ...
};

// memory clock (kHz) x bus width (bits) / 8 x 2 (double data rate), in bytes per second.
double AttributePeak(int memory_clock_khz, int bus_width_bits);
// The table of parts whose attributes under-report (matched on the device name
// and, for the A100, its memory size) first, else AttributePeak, else unknown.
Peak PeakBandwidth(const DeviceInfo& device);
// bytes moved / seconds; 0 when seconds is not positive.
double Rate(double bytes, double seconds);

// ------------------------------------------------------------ measurements

struct BandwidthResult {
  uint64_t buffer_bytes = 0;  // each of three buffers
  int runs = 0;
  double copy_bytes_per_second = 0;   // 2 x buffer_bytes per copy (read + write)
  double triad_bytes_per_second = 0;  // 3 x buffer_bytes per triad (two reads, one write)
  Peak peak;
};

struct GemmResult {
  std::string precision;  // "fp32" or "fp64"
  int n = 0;
  uint64_t repeats = 0;
  // Over every repeat: elements whose bits differ from the first result.
  uint64_t mismatched_elements = 0;
  // Of a separate small GEMM (reference_n): elements farther from the CPU
  // reference than the documented bound (reference.h, GemmErrorBound).
  int reference_n = 0;
  uint64_t reference_mismatches = 0;
  double seconds = 0;                   // the repeats, kernels only
  double flops_per_second = 0;          // 2 n^3 x repeats / seconds
  double cublas_flops_per_second = -1;  // < 0: not run
  std::string cublas;                   // the library used, or why it was not
};

struct BadAddress {
  uint64_t offset_bytes = 0;  // from the start of the tested region
  uint32_t expected = 0, actual = 0;
  std::string test;  // "walking_ones", "moving_inversions", "address_in_address"
};

inline constexpr size_t kMaxBadAddresses = 64;

struct MemoryTestResult {
  uint64_t bytes_tested = 0;
  uint64_t errors = 0;          // mismatching words read, over every step
  std::vector<BadAddress> bad;  // the first errors seen, at most kMaxBadAddresses
};

struct TransferResult {
  uint64_t bytes = 0;
  int runs = 0;
  double host_to_device_bytes_per_second = 0, device_to_host_bytes_per_second = 0;
};

// ------------------------------------------------------------ backends

struct GemmRequest {
  bool fp64 = false;
  int n = 0;
  const void* a = nullptr;  // row-major n x n of float or double
  const void* b = nullptr;
  void* first_result = nullptr;  // n x n; receives the first result when not null
  double seconds = 0;            // repeat for at least this long
  uint64_t min_repeats = 1;      // and at least this many times
  bool inject_fault = false;     // flip one bit of the second result
  bool with_cublas = false;
};

struct GemmTiming {
  uint64_t repeats = 0, mismatched_elements = 0;
  double seconds = 0;
  double cublas_seconds = -1;  // per GEMM; < 0 when not run
  std::string cublas;
};

// One device. Methods return false with *error set when the device fails
// (not when it measures badly: that is for Evaluate to judge).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual const DeviceInfo& Info() const = 0;
  // Fills out->peak too: PeakBandwidth for a GPU; the cpu backend measures one.
  virtual bool Bandwidth(uint64_t buffer_bytes, int runs, BandwidthResult* out, std::string* error) = 0;
  virtual bool Gemm(const GemmRequest& request, GemmTiming* out, std::string* error) = 0;
  // Tests `words` 32-bit words; fault_word: a word whose bit 0 flips after every write.
  virtual bool MemoryTest(uint64_t words, bool full, std::optional<uint64_t> fault_word,
                          MemoryTestResult* out, std::string* error) = 0;
  // False with an empty error when the backend has no host/device link.
  virtual bool Transfer(uint64_t bytes, int runs, TransferResult* out, std::string* error) = 0;
};

// ------------------------------------------------------------ thresholds

// The pass/fail rules. A compute pool will carry one of these in its
// configuration (next issue); the CLI fills it from flags.
struct Thresholds {
  double min_peak_fraction = 0.75;     // triad >= this x theoretical peak ...
  double min_baseline_fraction = 0.9;  // ... or, with a baseline, >= this x the baseline triad
  uint64_t max_gemm_mismatches = 0;    // repeats and reference together
  uint64_t max_memory_errors = 0;
};

struct Check {
  std::string name;  // "bandwidth", "gemm", "memory"
  bool passed = false;
  std::string detail;  // what was measured against what was required
};

struct Measurements {
  std::optional<BandwidthResult> bandwidth;
  std::vector<GemmResult> gemm;
  std::optional<MemoryTestResult> memory;
  std::optional<TransferResult> transfer;
};

// One check per measurement present. `baseline_triad`: this host's recorded
// triad rate (bytes/s); when given it replaces the peak rule.
std::vector<Check> Evaluate(const Measurements& m, const Thresholds& t, std::optional<double> baseline_triad);

// ------------------------------------------------------------ the probe

struct ProbeOptions {
  Level level = Level::kQuick;
  FakeFault fault = FakeFault::kNone;
  Thresholds thresholds;
  std::optional<double> baseline_triad;   // bytes/s, from a record of this device
  std::optional<double> memory_fraction;  // of free memory; default: quick 0.1, full 0.9 (cpu: capped)
  std::optional<double> gemm_seconds;  // per precision; default: quick 2 (fp32) and 1 (fp64), full 60 and 30
  uint64_t seed = 1;
};

// What a probe at a level runs, derived from the device and the options.
struct ProbePlan {
  uint64_t bandwidth_bytes = 0;
  int bandwidth_runs = 0;
  struct Gemm {
    bool fp64 = false;
    int n = 0;
    double seconds = 0;
    uint64_t min_repeats = 0;
  };
  std::vector<Gemm> gemm;
  int reference_n = 0;
  uint64_t memory_words = 0;
  uint64_t transfer_bytes = 0;
  int transfer_runs = 0;
};
ProbePlan PlanProbe(const DeviceInfo& device, const ProbeOptions& options);

struct ProbeReport {
  DeviceInfo device;
  Level level = Level::kQuick;
  FakeFault fault = FakeFault::kNone;
  Thresholds thresholds;
  std::optional<double> baseline_triad;
  Measurements measurements;
  std::vector<Check> checks;
  bool passed = false;
  double seconds = 0;
  std::string started_at;  // RFC 3339, UTC
};

// Runs the probe; false with *error when the device failed (a CUDA error, not
// a failed check).
bool RunProbe(Backend& backend, const ProbeOptions& options, ProbeReport* out, std::string* error);

// ------------------------------------------------------------ renderings

nlohmann::json DeviceJson(const DeviceInfo& device);
nlohmann::json ReportJson(const ProbeReport& report);  // format in docs/gpu.md, "JSON"
std::string ReportText(const ProbeReport& report);
// Prometheus text exposition (docs/gpu.md, "Metrics"); every sample labelled
// with the device index, its PCI bus id and the backend.
std::string ReportMetrics(const ProbeReport& report);
// The triad rate a record (ReportJson of an earlier probe) holds for `device`;
// nullopt with *error when the record is unreadable or is of another device.
std::optional<double> BaselineFromRecord(const nlohmann::json& record, const DeviceInfo& device,
                                         std::string* error);

}  // namespace plinth::gpu
