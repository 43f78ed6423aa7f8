// The probe: plan, measure, evaluate, render (gpu.h).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <vector>

#include "kernels/gpu/gpu.h"
#include "kernels/gpu/reference.h"

namespace plinth::gpu {

const char* LevelName(Level level) {
  return level == Level::kFull ? "full" : "quick";
}

const char* FakeFaultName(FakeFault fault) {
  switch (fault) {
    case FakeFault::kNone: return "none";
    case FakeFault::kBandwidth: return "bandwidth";
    case FakeFault::kGemm: return "gemm";
    case FakeFault::kMemory: return "memory";
  }
  return "none";
}

std::optional<Level> ParseLevel(const std::string& text) {
  if (text == "quick") return Level::kQuick;
  if (text == "full") return Level::kFull;
  return std::nullopt;
}

std::optional<FakeFault> ParseFakeFault(const std::string& text) {
  for (FakeFault f : {FakeFault::kNone, FakeFault::kBandwidth, FakeFault::kGemm, FakeFault::kMemory}) {
    if (text == FakeFaultName(f)) return f;
  }
  return std::nullopt;
}

std::string CudaVersionText(int version) {
  if (version <= 0) return "";
  return std::to_string(version / 1000) + "." + std::to_string((version % 1000) / 10);
}

// ------------------------------------------------------------ bandwidth arithmetic

double AttributePeak(int memory_clock_khz, int bus_width_bits) {
  if (memory_clock_khz <= 0 || bus_width_bits <= 0) return 0;
  return double(memory_clock_khz) * 1e3 * (double(bus_width_bits) / 8) * 2;
}

double Rate(double bytes, double seconds) {
  return seconds > 0 ? bytes / seconds : 0;
}

namespace {

bool Contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

// Parts whose attributes under-report their memory clock (HBM3 reports the
// clock of an older generation on some drivers): the vendor's figure wins.
struct KnownPart {
  const char* label;
  double bytes_per_second;
  bool (*matches)(const DeviceInfo&);
};

const KnownPart kKnownParts[] = {
    {"H200", 4.8e12, [](const DeviceInfo& d) { return Contains(d.name, "H200"); }},
    {"H100 PCIe", 2.0e12,
     [](const DeviceInfo& d) { return Contains(d.name, "H100") && Contains(d.name, "PCIe"); }},
    {"H100 SXM", 3.35e12,
     [](const DeviceInfo& d) { return Contains(d.name, "H100") && !Contains(d.name, "PCIe"); }},
    {"A100 80GB", 2.039e12,
     [](const DeviceInfo& d) {
       return Contains(d.name, "A100") && (Contains(d.name, "80GB") || d.total_bytes > (uint64_t(48) << 30));
     }},
    {"A100 40GB", 1.555e12, [](const DeviceInfo& d) { return Contains(d.name, "A100"); }},
};

}  // namespace

Peak PeakBandwidth(const DeviceInfo& device) {
  for (const KnownPart& part : kKnownParts) {
    if (part.matches(device)) return {part.bytes_per_second, std::string("table: ") + part.label};
  }
  const double attributes = AttributePeak(device.memory_clock_khz, device.bus_width_bits);
  if (attributes > 0) {
    char text[128];
    std::snprintf(text, sizeof text, "attributes: %d MHz x %d bit x 2", device.memory_clock_khz / 1000,
                  device.bus_width_bits);
    return {attributes, text};
  }
  return {0, "unknown: the device reports no memory clock and is not in the table"};
}

// ------------------------------------------------------------ thresholds

namespace {

std::string Gbps(double bytes_per_second) {
  char text[64];
  std::snprintf(text, sizeof text, "%.1f GB/s", bytes_per_second / 1e9);
  return text;
}

std::string Fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

std::string Flops(double flops_per_second) {
  return flops_per_second >= 1e12 ? Fixed(flops_per_second / 1e12, 2) + " TFLOPS"
                                  : Fixed(flops_per_second / 1e9, 2) + " GFLOPS";
}

}  // namespace

std::vector<Check> Evaluate(const Measurements& m, const Thresholds& t,
                            std::optional<double> baseline_triad) {
  std::vector<Check> checks;
  if (m.bandwidth) {
    Check c{"bandwidth", false, ""};
    const double triad = m.bandwidth->triad_bytes_per_second;
    if (baseline_triad && *baseline_triad > 0) {
      const double required = t.min_baseline_fraction * *baseline_triad;
      c.passed = triad >= required;
      c.detail = "triad " + Gbps(triad) + (c.passed ? " >= " : " < ") + Fixed(t.min_baseline_fraction, 2) +
                 " x this host's baseline " + Gbps(*baseline_triad);
    } else if (m.bandwidth->peak.bytes_per_second > 0) {
      const double peak = m.bandwidth->peak.bytes_per_second;
      const double required = t.min_peak_fraction * peak;
      c.passed = triad >= required;
      c.detail = "triad " + Gbps(triad) + " = " + Fixed(triad / peak, 3) + " of peak " + Gbps(peak) +
                 (c.passed ? " >= " : " < ") + Fixed(t.min_peak_fraction, 2);
    } else {
      c.detail = "triad " + Gbps(triad) + ", but no peak is known for this device and no baseline was given";
    }
    checks.push_back(std::move(c));
  }
  if (!m.gemm.empty()) {
    uint64_t mismatches = 0;
    std::string parts;
    for (const GemmResult& g : m.gemm) {
      mismatches += g.mismatched_elements + g.reference_mismatches;
      parts += (parts.empty() ? "" : ", ") + g.precision + ": " + std::to_string(g.mismatched_elements) +
               " in " + std::to_string(g.repeats) + " repeats, " + std::to_string(g.reference_mismatches) +
               " vs the CPU reference";
    }
    Check c{"gemm", mismatches <= t.max_gemm_mismatches, ""};
    c.detail = std::to_string(mismatches) + " mismatched elements (" + parts + ")" +
               (c.passed ? " <= " : " > ") + std::to_string(t.max_gemm_mismatches);
    checks.push_back(std::move(c));
  }
  if (m.memory) {
    Check c{"memory", m.memory->errors <= t.max_memory_errors, ""};
    c.detail = std::to_string(m.memory->errors) + " errors in " +
               Fixed(double(m.memory->bytes_tested) / (1 << 20), 0) + " MiB" + (c.passed ? " <= " : " > ") +
               std::to_string(t.max_memory_errors);
    checks.push_back(std::move(c));
  }
  return checks;
}

// ------------------------------------------------------------ the probe

ProbePlan PlanProbe(const DeviceInfo& device, const ProbeOptions& o) {
  const bool full = o.level == Level::kFull;
  const bool cpu = device.backend == "cpu";
  constexpr uint64_t MiB = uint64_t(1) << 20;
  ProbePlan p;
  const double fraction = std::clamp(o.memory_fraction.value_or(full ? 0.9 : 0.1), 0.0, 1.0);
  if (cpu) {
    // Sized so that a quick probe of the host takes about a second: the cpu
    // backend exercises the gate without a GPU; it does not judge the host.
    p.bandwidth_bytes = (full ? 256 : 32) * MiB;
    p.bandwidth_runs = full ? 10 : 3;
    const double fp32 = o.gemm_seconds.value_or(full ? 10 : 0.2),
                 fp64 = o.gemm_seconds.value_or(full ? 5 : 0.1);
    p.gemm = {{false, 128, fp32, 3}, {true, 128, fp64, 3}};
    p.reference_n = 64;
    const uint64_t cap = full ? 256 * MiB : 4 * MiB;
    p.memory_words = std::min<uint64_t>(uint64_t(fraction * double(device.free_bytes)), cap) / 4;
    return p;
  }
  // Three buffers, each at least 4x (here 8x) the L2 so that no run is served from cache.
  p.bandwidth_bytes = std::max<uint64_t>(8 * device.cache_bytes, (full ? 2048 : 512) * MiB);
  if (device.free_bytes > 0) p.bandwidth_bytes = std::min<uint64_t>(p.bandwidth_bytes, device.free_bytes / 8);
  p.bandwidth_runs = full ? 20 : 5;
  const double fp32 = o.gemm_seconds.value_or(full ? 60 : 2), fp64 = o.gemm_seconds.value_or(full ? 30 : 1);
  p.gemm = {{false, full ? 8192 : 4096, fp32, 3}, {true, full ? 4096 : 2048, fp64, 3}};
  p.reference_n = 256;
  p.memory_words = uint64_t(fraction * double(device.free_bytes)) / 4;
  p.transfer_bytes = (full ? 1024 : 256) * MiB;
  p.transfer_runs = full ? 10 : 3;
  return p;
}

namespace {

std::string NowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

template <typename T>
bool RunGemm(Backend& backend, const ProbePlan::Gemm& spec, int reference_n, bool inject, uint64_t seed,
             GemmResult* out, std::string* error) {
  const bool fp64 = sizeof(T) == 8;
  out->precision = fp64 ? "fp64" : "fp32";
  out->n = spec.n;
  // The burn-in: the same GEMM again and again, every result against the first.
  {
    const size_t elements = size_t(spec.n) * spec.n;
    std::vector<T> a(elements), b(elements);
    FillMatrix(a.data(), elements, seed);
    FillMatrix(b.data(), elements, seed + 1);
    GemmRequest rq;
    rq.fp64 = fp64;
    rq.n = spec.n;
    rq.a = a.data();
    rq.b = b.data();
    rq.seconds = spec.seconds;
    rq.min_repeats = spec.min_repeats;
    rq.inject_fault = inject;
    rq.with_cublas = true;
    GemmTiming timing;
    if (!backend.Gemm(rq, &timing, error)) return false;
    out->repeats = timing.repeats;
    out->mismatched_elements = timing.mismatched_elements;
    out->seconds = timing.seconds;
    const double flops = 2.0 * double(spec.n) * spec.n * spec.n;
    out->flops_per_second = Rate(flops * double(timing.repeats), timing.seconds);
    out->cublas_flops_per_second = timing.cublas_seconds > 0 ? flops / timing.cublas_seconds : -1;
    out->cublas = timing.cublas;
  }
  // Correctness: a small GEMM against the CPU reference, within the bound.
  {
    const int n = reference_n;
    const size_t elements = size_t(n) * n;
    std::vector<T> a(elements), b(elements), got(elements), want(elements);
    FillMatrix(a.data(), elements, seed + 2);
    FillMatrix(b.data(), elements, seed + 3);
    GemmRequest rq;
    rq.fp64 = fp64;
    rq.n = n;
    rq.a = a.data();
    rq.b = b.data();
    rq.first_result = got.data();
    rq.min_repeats = 1;
    GemmTiming timing;
    if (!backend.Gemm(rq, &timing, error)) return false;
    TiledGemm(a.data(), b.data(), want.data(), n);
    out->reference_n = n;
    out->reference_mismatches = CountBeyondBound(got.data(), want.data(), a.data(), b.data(), n);
  }
  return true;
}

}  // namespace

bool RunProbe(Backend& backend, const ProbeOptions& o, ProbeReport* out, std::string* error) {
  const auto began = std::chrono::steady_clock::now();
  *out = ProbeReport{};
  out->device = backend.Info();
  out->level = o.level;
  out->fault = o.fault;
  out->thresholds = o.thresholds;
  out->baseline_triad = o.baseline_triad;
  out->started_at = NowRfc3339();
  const ProbePlan plan = PlanProbe(out->device, o);
  Measurements& m = out->measurements;

  BandwidthResult bw;
  if (!backend.Bandwidth(plan.bandwidth_bytes, plan.bandwidth_runs, &bw, error)) return false;
  if (o.fault == FakeFault::kBandwidth) {
    // The fake fault: a degraded memory stack, which moves an eighth of the data in the same time.
    bw.copy_bytes_per_second /= 8;
    bw.triad_bytes_per_second /= 8;
  }
  m.bandwidth = bw;

  for (size_t i = 0; i < plan.gemm.size(); ++i) {
    const ProbePlan::Gemm& spec = plan.gemm[i];
    const bool inject = o.fault == FakeFault::kGemm && i == 0;
    GemmResult g;
    const bool ok = spec.fp64
                        ? RunGemm<double>(backend, spec, plan.reference_n, inject, o.seed + 10 * i, &g, error)
                        : RunGemm<float>(backend, spec, plan.reference_n, inject, o.seed + 10 * i, &g, error);
    if (!ok) return false;
    m.gemm.push_back(std::move(g));
  }

  if (plan.memory_words > 0) {
    MemoryTestResult mem;
    std::optional<uint64_t> fault_word;
    if (o.fault == FakeFault::kMemory) fault_word = plan.memory_words / 2 + 5;
    if (!backend.MemoryTest(plan.memory_words, o.level == Level::kFull, fault_word, &mem, error))
      return false;
    m.memory = std::move(mem);
  }

  if (plan.transfer_bytes > 0) {
    TransferResult t;
    if (backend.Transfer(plan.transfer_bytes, plan.transfer_runs, &t, error)) {
      m.transfer = t;
    } else if (!error->empty()) {
      return false;
    }
  }

  out->checks = Evaluate(m, o.thresholds, o.baseline_triad);
  out->passed = !out->checks.empty() &&
                std::all_of(out->checks.begin(), out->checks.end(), [](const Check& c) { return c.passed; });
  out->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  return true;
}

// ------------------------------------------------------------ renderings

nlohmann::json DeviceJson(const DeviceInfo& d) {
  const Peak peak = d.backend == "cpu" ? Peak{} : PeakBandwidth(d);
  nlohmann::json j = {
      {"index", d.index},
      {"backend", d.backend},
      {"name", d.name},
      {"pci_bus_id", d.pci_bus_id},
      {"compute_capability",
       d.backend == "cpu" ? nlohmann::json(nullptr)
                          : nlohmann::json(std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor))},
      {"total_bytes", d.total_bytes},
      {"free_bytes", d.free_bytes},
      {"cache_bytes", d.cache_bytes},
      {"multiprocessors", d.multiprocessors},
      {"ecc_enabled", d.ecc_enabled},
      {"memory_clock_khz", d.memory_clock_khz},
      {"bus_width_bits", d.bus_width_bits},
      {"driver_version",
       d.driver_version > 0 ? nlohmann::json(CudaVersionText(d.driver_version)) : nlohmann::json(nullptr)},
      {"runtime_version",
       d.runtime_version > 0 ? nlohmann::json(CudaVersionText(d.runtime_version)) : nlohmann::json(nullptr)},
      {"peak_bytes_per_second",
       peak.bytes_per_second > 0 ? nlohmann::json(peak.bytes_per_second) : nlohmann::json(nullptr)},
      {"peak_source", peak.source.empty() ? nlohmann::json(nullptr) : nlohmann::json(peak.source)},
  };
  return j;
}

namespace {

std::string Hex32(uint32_t v) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

nlohmann::json OrNull(double v) {
  return v >= 0 ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

nlohmann::json ReportJson(const ProbeReport& r) {
  nlohmann::json j;
  j["format"] = "plinth-gpu-probe/1";
  j["started_at"] = r.started_at;
  j["seconds"] = r.seconds;
  j["level"] = LevelName(r.level);
  j["fake_fault"] =
      r.fault == FakeFault::kNone ? nlohmann::json(nullptr) : nlohmann::json(FakeFaultName(r.fault));
  j["device"] = DeviceJson(r.device);
  j["passed"] = r.passed;
  j["checks"] = nlohmann::json::array();
  for (const Check& c : r.checks)
    j["checks"].push_back({{"name", c.name}, {"passed", c.passed}, {"detail", c.detail}});
  j["thresholds"] = {{"min_peak_fraction", r.thresholds.min_peak_fraction},
                     {"min_baseline_fraction", r.thresholds.min_baseline_fraction},
                     {"max_gemm_mismatches", r.thresholds.max_gemm_mismatches},
                     {"max_memory_errors", r.thresholds.max_memory_errors}};
  j["baseline_triad_bytes_per_second"] =
      r.baseline_triad ? nlohmann::json(*r.baseline_triad) : nlohmann::json(nullptr);
  const Measurements& m = r.measurements;
  if (m.bandwidth) {
    const BandwidthResult& b = *m.bandwidth;
    const double peak = b.peak.bytes_per_second;
    j["bandwidth"] = {{"buffer_bytes", b.buffer_bytes},
                      {"runs", b.runs},
                      {"copy_bytes_per_second", b.copy_bytes_per_second},
                      {"triad_bytes_per_second", b.triad_bytes_per_second},
                      {"peak_bytes_per_second", peak > 0 ? nlohmann::json(peak) : nlohmann::json(nullptr)},
                      {"peak_source", b.peak.source},
                      {"copy_peak_fraction",
                       peak > 0 ? nlohmann::json(b.copy_bytes_per_second / peak) : nlohmann::json(nullptr)},
                      {"triad_peak_fraction",
                       peak > 0 ? nlohmann::json(b.triad_bytes_per_second / peak) : nlohmann::json(nullptr)}};
  } else {
    j["bandwidth"] = nullptr;
  }
  j["gemm"] = nlohmann::json::array();
  for (const GemmResult& g : m.gemm) {
    j["gemm"].push_back({{"precision", g.precision},
                         {"n", g.n},
                         {"repeats", g.repeats},
                         {"mismatched_elements", g.mismatched_elements},
                         {"reference_n", g.reference_n},
                         {"reference_mismatches", g.reference_mismatches},
                         {"seconds", g.seconds},
                         {"flops_per_second", g.flops_per_second},
                         {"cublas_flops_per_second", OrNull(g.cublas_flops_per_second)},
                         {"cublas", g.cublas}});
  }
  if (m.memory) {
    nlohmann::json bad = nlohmann::json::array();
    for (const BadAddress& a : m.memory->bad) {
      bad.push_back({{"offset", a.offset_bytes},
                     {"expected", Hex32(a.expected)},
                     {"actual", Hex32(a.actual)},
                     {"test", a.test}});
    }
    j["memory"] = {
        {"bytes_tested", m.memory->bytes_tested}, {"errors", m.memory->errors}, {"bad_addresses", bad}};
  } else {
    j["memory"] = nullptr;
  }
  if (m.transfer) {
    j["transfer"] = {{"bytes", m.transfer->bytes},
                     {"runs", m.transfer->runs},
                     {"host_to_device_bytes_per_second", m.transfer->host_to_device_bytes_per_second},
                     {"device_to_host_bytes_per_second", m.transfer->device_to_host_bytes_per_second}};
  } else {
    j["transfer"] = nullptr;
  }
  return j;
}

std::string ReportText(const ProbeReport& r) {
  const DeviceInfo& d = r.device;
  std::string out = "GPU " + std::to_string(d.index) + " (" + d.backend + "): " + d.name;
  if (d.backend != "cpu") out += ", " + d.pci_bus_id;
  out += "\nprobe " + std::string(LevelName(r.level));
  if (r.fault != FakeFault::kNone) out += " with fake fault '" + std::string(FakeFaultName(r.fault)) + "'";
  out += ", " + Fixed(r.seconds, 1) + " s\n";
  const Measurements& m = r.measurements;
  if (m.bandwidth) {
    out += "  memory bandwidth: copy " + Gbps(m.bandwidth->copy_bytes_per_second) + ", triad " +
           Gbps(m.bandwidth->triad_bytes_per_second);
    if (m.bandwidth->peak.bytes_per_second > 0) {
      out += " (" + Fixed(m.bandwidth->triad_bytes_per_second / m.bandwidth->peak.bytes_per_second, 3) +
             " of peak " + Gbps(m.bandwidth->peak.bytes_per_second) + ", " + m.bandwidth->peak.source + ")";
    }
    out += "\n";
  }
  for (const GemmResult& g : m.gemm) {
    out += "  gemm " + g.precision + " n=" + std::to_string(g.n) + ": " + Flops(g.flops_per_second) + ", " +
           std::to_string(g.repeats) + " repeats, " + std::to_string(g.mismatched_elements) +
           " mismatched, " + std::to_string(g.reference_mismatches) + " off the reference; cuBLAS: " +
           (g.cublas_flops_per_second > 0 ? Flops(g.cublas_flops_per_second) + " (" + g.cublas + ")"
                                          : g.cublas) +
           "\n";
  }
  if (m.memory) {
    out += "  memory test: " + Fixed(double(m.memory->bytes_tested) / (1 << 20), 0) + " MiB, " +
           std::to_string(m.memory->errors) + " errors\n";
    for (const BadAddress& a : m.memory->bad) {
      char line[160];
      std::snprintf(line, sizeof line, "    bad word at offset 0x%llx: expected 0x%08x, read 0x%08x (%s)\n",
                    static_cast<unsigned long long>(a.offset_bytes), a.expected, a.actual, a.test.c_str());
      out += line;
    }
    if (m.memory->errors > m.memory->bad.size()) {
      out += "    (" + std::to_string(m.memory->errors - m.memory->bad.size()) + " more errors not listed)\n";
    }
  }
  if (m.transfer) {
    out += "  host to device " + Gbps(m.transfer->host_to_device_bytes_per_second) + ", device to host " +
           Gbps(m.transfer->device_to_host_bytes_per_second) + " (pinned)\n";
  }
  for (const Check& c : r.checks)
    out += std::string(c.passed ? "  pass  " : "  FAIL  ") + c.name + ": " + c.detail + "\n";
  out += r.passed ? "passed\n" : "FAILED\n";
  return out;
}

namespace {

std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string Number(double v) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

}  // namespace

std::string ReportMetrics(const ProbeReport& r) {
  const std::string base = "device=\"" + std::to_string(r.device.index) + "\",pci_bus_id=\"" +
                           LabelValue(r.device.pci_bus_id) + "\",backend=\"" + LabelValue(r.device.backend) +
                           "\"";
  std::string out;
  auto family = [&out](const char* name, const char* help) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " gauge\n";
  };
  auto sample = [&out, &base](const char* name, const std::string& extra, double v) {
    out += std::string(name) + "{" + base + (extra.empty() ? "" : "," + extra) + "} " + Number(v) + "\n";
  };
  const std::string level = std::string("level=\"") + LevelName(r.level) + "\"";
  family("plinth_gpu_probe_passed", "1 when the last probe passed every check");
  sample("plinth_gpu_probe_passed", level, r.passed ? 1 : 0);
  family("plinth_gpu_probe_duration_seconds", "how long the last probe ran");
  sample("plinth_gpu_probe_duration_seconds", level, r.seconds);
  family("plinth_gpu_probe_timestamp_seconds", "when the last probe started (Unix time)");
  {
    std::tm tm{};
    double started = 0;
    if (strptime(r.started_at.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) != nullptr) started = double(timegm(&tm));
    sample("plinth_gpu_probe_timestamp_seconds", level, started);
  }
  family("plinth_gpu_check_passed", "1 when the check passed in the last probe");
  for (const Check& c : r.checks)
    sample("plinth_gpu_check_passed", "check=\"" + c.name + "\"", c.passed ? 1 : 0);
  const Measurements& m = r.measurements;
  if (m.bandwidth) {
    family("plinth_gpu_memory_bandwidth_bytes_per_second", "device memory bandwidth measured by the probe");
    sample("plinth_gpu_memory_bandwidth_bytes_per_second", "kernel=\"copy\"",
           m.bandwidth->copy_bytes_per_second);
    sample("plinth_gpu_memory_bandwidth_bytes_per_second", "kernel=\"triad\"",
           m.bandwidth->triad_bytes_per_second);
    if (m.bandwidth->peak.bytes_per_second > 0) {
      family("plinth_gpu_memory_peak_bytes_per_second",
             "the theoretical peak the bandwidth is compared with");
      sample("plinth_gpu_memory_peak_bytes_per_second", "", m.bandwidth->peak.bytes_per_second);
      family("plinth_gpu_memory_bandwidth_peak_ratio", "measured bandwidth as a fraction of the peak");
      sample("plinth_gpu_memory_bandwidth_peak_ratio", "kernel=\"copy\"",
             m.bandwidth->copy_bytes_per_second / m.bandwidth->peak.bytes_per_second);
      sample("plinth_gpu_memory_bandwidth_peak_ratio", "kernel=\"triad\"",
             m.bandwidth->triad_bytes_per_second / m.bandwidth->peak.bytes_per_second);
    }
  }
  if (!m.gemm.empty()) {
    family("plinth_gpu_gemm_flops_per_second", "GEMM throughput: the probe's own kernel and cuBLAS");
    for (const GemmResult& g : m.gemm) {
      sample("plinth_gpu_gemm_flops_per_second", "precision=\"" + g.precision + "\",implementation=\"own\"",
             g.flops_per_second);
      if (g.cublas_flops_per_second > 0) {
        sample("plinth_gpu_gemm_flops_per_second",
               "precision=\"" + g.precision + "\",implementation=\"cublas\"", g.cublas_flops_per_second);
      }
    }
    family("plinth_gpu_gemm_mismatched_elements",
           "GEMM result elements that differed from the first result or the reference");
    for (const GemmResult& g : m.gemm) {
      sample("plinth_gpu_gemm_mismatched_elements", "precision=\"" + g.precision + "\",against=\"first\"",
             double(g.mismatched_elements));
      sample("plinth_gpu_gemm_mismatched_elements", "precision=\"" + g.precision + "\",against=\"reference\"",
             double(g.reference_mismatches));
    }
  }
  if (m.memory) {
    family("plinth_gpu_memory_test_errors", "mismatching words found by the memory pattern test");
    sample("plinth_gpu_memory_test_errors", "", double(m.memory->errors));
    family("plinth_gpu_memory_test_bytes", "bytes the memory pattern test covered");
    sample("plinth_gpu_memory_test_bytes", "", double(m.memory->bytes_tested));
  }
  if (m.transfer) {
    family("plinth_gpu_transfer_bytes_per_second", "pinned host/device copy bandwidth");
    sample("plinth_gpu_transfer_bytes_per_second", "direction=\"host_to_device\"",
           m.transfer->host_to_device_bytes_per_second);
    sample("plinth_gpu_transfer_bytes_per_second", "direction=\"device_to_host\"",
           m.transfer->device_to_host_bytes_per_second);
  }
  return out;
}

std::optional<double> BaselineFromRecord(const nlohmann::json& record, const DeviceInfo& device,
                                         std::string* error) {
  if (!record.is_object() || record.value("format", "") != "plinth-gpu-probe/1") {
    return *error = "not a probe record (format plinth-gpu-probe/1)", std::nullopt;
  }
  static const nlohmann::json kNoDevice;
  const nlohmann::json& d = record.contains("device") ? record["device"] : kNoDevice;
  if (!d.is_object() || d.value("name", "") != device.name ||
      d.value("pci_bus_id", "") != device.pci_bus_id || d.value("backend", "") != device.backend) {
    return *error = "the record is of another device (" +
                    (d.is_object() ? d.value("name", "?") + " at " + d.value("pci_bus_id", "?") : "none") +
                    "), not " + device.name + " at " + device.pci_bus_id,
           std::nullopt;
  }
  if (record.contains("fake_fault") && !record["fake_fault"].is_null())
    return *error = "the record is of a probe with a fake fault", std::nullopt;
  if (!record.value("passed", false)) return *error = "the record is of a probe that failed", std::nullopt;
  static const nlohmann::json kNone;
  const nlohmann::json& b = record.contains("bandwidth") ? record["bandwidth"] : kNone;
  if (!b.is_object() || !b.contains("triad_bytes_per_second") || !b["triad_bytes_per_second"].is_number() ||
      b["triad_bytes_per_second"].get<double>() <= 0) {
    return *error = "the record has no triad bandwidth", std::nullopt;
  }
  return b["triad_bytes_per_second"].get<double>();
}

}  // namespace plinth::gpu
