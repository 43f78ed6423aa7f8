// plinth gpu list|probe (docs/gpu.md): the CLI over kernels/gpu. Exit codes:
// 0 ok / passed, 1 error, 2 usage, 3 no GPU, 4 the probe failed a check.
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "kernels/gpu/cuda_backend.h"
#include "kernels/gpu/gpu.h"
#include "kernels/gpu/reference.h"
#include "runtime/io/durable.h"

namespace plinth::cli {

namespace {

constexpr int kNoGpu = 3;
constexpr int kProbeFailed = 4;

int Usage(const std::string& message) {
  std::fprintf(stderr, "plinth gpu probe: %s\nrun 'plinth gpu probe --help' for usage\n", message.c_str());
  return 2;
}

bool ParseFraction(const std::string& text, double* out) {
  if (text.empty()) return false;
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v) || v < 0) return false;
  *out = v;
  return true;
}

bool ParseCount(const std::string& text, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return !text.empty() && ec == std::errc() && end == text.data() + text.size();
}

// The no-GPU answer: one line on standard error (and, with --json, a document on standard output).
int NoGpu(const gpu::Discovery& d, bool json) {
  if (json) {
    nlohmann::json j = {{"devices", nlohmann::json::array()},
                        {"no_gpu", {{"reason", gpu::NoGpuName(d.why)}, {"message", d.message}}}};
    std::printf("%s\n", j.dump(2).c_str());
  }
  std::fprintf(stderr, "no GPU: %s\n", d.message.c_str());
  return d.why == gpu::NoGpu::kModuleBroken || d.why == gpu::NoGpu::kError ? 1 : kNoGpu;
}

std::string Gib(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f GiB", double(bytes) / double(uint64_t(1) << 30));
  return text;
}

int List(const Options& o) {
  const gpu::Discovery d = gpu::DiscoverCuda();
  if (d.why != gpu::NoGpu::kNone) return NoGpu(d, o.json);
  if (o.json) {
    nlohmann::json j = {{"devices", nlohmann::json::array()}, {"no_gpu", nullptr}, {"module", d.module_path}};
    for (const gpu::DeviceInfo& dev : d.devices) j["devices"].push_back(gpu::DeviceJson(dev));
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  for (const gpu::DeviceInfo& dev : d.devices) {
    const gpu::Peak peak = gpu::PeakBandwidth(dev);
    std::printf(
        "%d  %s  %s  %s total, %s free  compute %d.%d  ECC %s  driver %s  runtime %s  peak %.0f GB/s (%s)\n",
        dev.index, dev.name.c_str(), dev.pci_bus_id.c_str(), Gib(dev.total_bytes).c_str(),
        Gib(dev.free_bytes).c_str(), dev.cc_major, dev.cc_minor, dev.ecc_enabled ? "on" : "off",
        gpu::CudaVersionText(dev.driver_version).c_str(), gpu::CudaVersionText(dev.runtime_version).c_str(),
        peak.bytes_per_second / 1e9, peak.source.c_str());
  }
  return 0;
}

bool ReadJsonFile(const std::string& path, nlohmann::json* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return *error = "cannot read " + path, false;
  std::stringstream text;
  text << in.rdbuf();
  *out = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (out->is_discarded()) return *error = path + " is not JSON", false;
  return true;
}

int Probe(const Options& o) {
  const Options::Gpu& f = o.gpu;
  gpu::ProbeOptions po;
  if (!f.level.empty()) {
    std::optional<gpu::Level> level = gpu::ParseLevel(f.level);
    if (!level) return Usage("--level takes quick or full, got '" + f.level + "'");
    po.level = *level;
  }
  if (!f.fake_fault.empty()) {
    std::optional<gpu::FakeFault> fault = gpu::ParseFakeFault(f.fake_fault);
    if (!fault || *fault == gpu::FakeFault::kNone) {
      return Usage("--fake-fault takes bandwidth, gemm or memory, got '" + f.fake_fault + "'");
    }
    po.fault = *fault;
  }
  double x = 0;
  uint64_t n = 0;
  if (!f.min_peak_fraction.empty()) {
    if (!ParseFraction(f.min_peak_fraction, &x) || x > 1)
      return Usage("--min-peak-fraction takes a number from 0 to 1");
    po.thresholds.min_peak_fraction = x;
  }
  if (!f.min_baseline_fraction.empty()) {
    if (!ParseFraction(f.min_baseline_fraction, &x) || x > 2) {
      return Usage("--min-baseline-fraction takes a number from 0 to 2");
    }
    po.thresholds.min_baseline_fraction = x;
  }
  if (!f.max_gemm_mismatches.empty()) {
    if (!ParseCount(f.max_gemm_mismatches, &n)) return Usage("--max-gemm-mismatches takes a count");
    po.thresholds.max_gemm_mismatches = n;
  }
  if (!f.max_memory_errors.empty()) {
    if (!ParseCount(f.max_memory_errors, &n)) return Usage("--max-memory-errors takes a count");
    po.thresholds.max_memory_errors = n;
  }
  if (!f.memory_fraction.empty()) {
    if (!ParseFraction(f.memory_fraction, &x) || x > 0.95) {
      return Usage("--memory-fraction takes a number from 0 to 0.95");
    }
    po.memory_fraction = x;
  }
  if (!f.gemm_seconds.empty()) {
    if (!ParseFraction(f.gemm_seconds, &x) || x > 86400)
      return Usage("--gemm-seconds takes seconds, at most 86400");
    po.gemm_seconds = x;
  }
  if (o.json && f.metrics) return Usage("--json and --metrics are two outputs; give one of them");

  std::unique_ptr<gpu::Backend> backend;
  if (f.device == "cpu") {
    backend = gpu::MakeCpuBackend();
  } else {
    int index = 0;
    if (!f.device.empty()) {
      uint64_t v = 0;
      if (!ParseCount(f.device, &v) || v > 1024)
        return Usage("--device takes a GPU index or cpu, got '" + f.device + "'");
      index = static_cast<int>(v);
    }
    const gpu::Discovery d = gpu::DiscoverCuda();
    if (d.why != gpu::NoGpu::kNone) return NoGpu(d, o.json);
    std::string error;
    backend = gpu::OpenCuda(d, index, &error);
    if (!backend) {
      std::fprintf(stderr, "error: %s\n", error.c_str());
      return 1;
    }
  }

  if (!f.baseline.empty()) {
    nlohmann::json record;
    std::string error;
    if (!ReadJsonFile(f.baseline, &record, &error)) {
      std::fprintf(stderr, "error: --baseline: %s\n", error.c_str());
      return 1;
    }
    po.baseline_triad = gpu::BaselineFromRecord(record, backend->Info(), &error);
    if (!po.baseline_triad) {
      std::fprintf(stderr, "error: --baseline %s: %s\n", f.baseline.c_str(), error.c_str());
      return 1;
    }
  }

  gpu::ProbeReport report;
  std::string error;
  if (!gpu::RunProbe(*backend, po, &report, &error)) {
    std::fprintf(stderr, "error: GPU %d (%s) failed during the probe: %s\n", backend->Info().index,
                 backend->Info().name.c_str(), error.c_str());
    return 1;
  }
  const nlohmann::json record = gpu::ReportJson(report);
  if (!f.record.empty()) {
    if (int rc = io::WriteFileAtomic(f.record, record.dump(2) + "\n", 0644)) {
      std::fprintf(stderr, "error: cannot write the record %s: %s\n", f.record.c_str(), std::strerror(rc));
      return 1;
    }
  }
  if (o.json) {
    std::printf("%s\n", record.dump(2).c_str());
  } else if (f.metrics) {
    std::fputs(gpu::ReportMetrics(report).c_str(), stdout);
  } else {
    std::fputs(gpu::ReportText(report).c_str(), stdout);
  }
  return report.passed ? 0 : kProbeFailed;
}

}  // namespace

int Gpu(const Options& o) {
  if (!o.paths.empty() && o.paths[0] == "list") return List(o);
  if (!o.paths.empty() && o.paths[0] == "probe") return Probe(o);
  std::fprintf(stderr, "usage: plinth gpu list|probe\n");
  return 2;
}

}  // namespace plinth::cli
