// plinth qpu run: an OpenQASM 2 program on the state-vector simulator
// (kernels/qpu, docs/qpu.md) on the CPU or a CUDA GPU (--device). Exit codes:
// 0 the program ran, 1 it has errors, cannot be read, needs more memory than
// allowed, or --device=gpu found no usable GPU, 2 usage error.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "kernels/qpu/device.h"
#include "kernels/qpu/memory.h"
#include "kernels/qpu/qasm.h"
#include "kernels/qpu/simulator.h"

namespace plinth::cli {

namespace {

// The most shots one run takes (the final-state path keeps one double per shot).
constexpr uint64_t kMaxShots = 100'000'000;
// The largest program file read.
constexpr std::streamoff kMaxFileBytes = 64 << 20;

int Usage(const std::string& message) {
  std::fprintf(stderr, "error: %s\n  run 'plinth qpu run --help' for usage\n", message.c_str());
  return 2;
}

bool ParseUnsigned(const std::string& text, uint64_t* out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && !text.empty();
}

int Run(const Options& o, const std::string& file) {
  qpu::RunOptions run;
  if (!o.qpu_shots.empty()) {
    if (!ParseUnsigned(o.qpu_shots, &run.shots) || run.shots == 0 || run.shots > kMaxShots) {
      return Usage("--shots takes a number from 1 to " + std::to_string(kMaxShots) + ", got '" + o.qpu_shots +
                   "'");
    }
  }
  if (!o.qpu_seed.empty()) {
    if (!ParseUnsigned(o.qpu_seed, &run.seed)) {
      return Usage("--seed takes a number from 0 to " + std::to_string(std::numeric_limits<uint64_t>::max()) +
                   ", got '" + o.qpu_seed + "'");
    }
  } else {
    // Below 2^53, so the seed printed in JSON reads back exactly.
    std::random_device random;
    run.seed = ((uint64_t{random()} << 32) ^ random()) & ((uint64_t{1} << 53) - 1);
  }
  if (!o.qpu_max_memory.empty()) {
    if (!qpu::ParseSize(o.qpu_max_memory, &run.max_memory) || run.max_memory == 0) {
      return Usage("--max-memory takes a size such as 512M, 4G or 1073741824, got '" + o.qpu_max_memory +
                   "'");
    }
  }

  qpu::DeviceChoice device = qpu::DeviceChoice::kAuto;
  if (!o.qpu_device.empty() && !qpu::ParseDeviceChoice(o.qpu_device, &device)) {
    return Usage("--device takes auto, cpu or gpu, got '" + o.qpu_device + "'");
  }

  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    std::fprintf(stderr, "error: '%s' is a directory; give an OpenQASM file\n", file.c_str());
    return 1;
  }
  if (std::filesystem::exists(file, ec) && !std::filesystem::is_regular_file(file, ec)) {
    // A device or a pipe could be endless: only files are read.
    std::fprintf(stderr, "error: '%s' is not a regular file\n", file.c_str());
    return 1;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "error: cannot read '%s'\n", file.c_str());
    return 1;
  }
  std::ostringstream buffer;
  in.seekg(0, std::ios::end);
  if (in.tellg() > kMaxFileBytes) {
    std::fprintf(stderr, "error: '%s' is larger than 64 MiB\n", file.c_str());
    return 1;
  }
  in.seekg(0);
  buffer << in.rdbuf();
  if (in.bad()) {
    std::fprintf(stderr, "error: cannot read '%s'\n", file.c_str());
    return 1;
  }
  const std::string text = buffer.str();

  qpu::ParseResult parsed = qpu::ParseQasm(text);
  if (!parsed.errors.empty()) {
    for (const qpu::ParseError& e : parsed.errors)
      std::fputs(qpu::FormatError(e, file, text).c_str(), stderr);
    std::fprintf(stderr, "%zu error%s\n", parsed.errors.size(), parsed.errors.size() == 1 ? "" : "s");
    return 1;
  }
  const qpu::Circuit& circuit = parsed.circuit;
  if (circuit.cregs.empty()) {
    std::fprintf(stderr,
                 "%s: error: the program has no classical register to count\n"
                 "  help: declare one (creg c[N];) and measure into it (measure q -> c;)\n",
                 file.c_str());
    return 1;
  }
  const auto start = std::chrono::steady_clock::now();
  qpu::RunResult result = qpu::RunOnDevice(circuit, run, device);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  if (!result.ok) {
    std::fprintf(stderr, "%s: error: %s\n", file.c_str(), result.error.c_str());
    return 1;
  }
  const char* method = result.per_shot ? "per-shot" : "final-state";
  if (o.json) {
    nlohmann::ordered_json doc;
    doc["format_version"] = 1;
    doc["qubits"] = circuit.num_qubits;
    doc["clbits"] = circuit.num_clbits;
    doc["shots"] = run.shots;
    doc["seed"] = run.seed;
    doc["method"] = method;
    doc["device"] = result.device;
    nlohmann::ordered_json counts = nlohmann::ordered_json::object();
    for (const auto& [key, n] : result.counts) counts[key] = n;
    doc["counts"] = std::move(counts);
    doc["duration_ms"] = static_cast<double>(static_cast<int64_t>(ms * 1000)) / 1000;
    std::printf("%s\n", doc.dump(2).c_str());
    return 0;
  }
  std::printf("%u qubit%s, %llu shot%s, seed %llu, %s, on %s, %.1f ms\n", circuit.num_qubits,
              circuit.num_qubits == 1 ? "" : "s", static_cast<unsigned long long>(run.shots),
              run.shots == 1 ? "" : "s", static_cast<unsigned long long>(run.seed),
              result.per_shot ? "simulated once per shot" : "sampled from the final state",
              result.device.c_str(), ms);
  size_t width = 4;
  for (const auto& [key, n] : result.counts) width = std::max(width, key.size());
  std::printf("%-*s  %10s  %11s\n", static_cast<int>(width), "bits", "count", "probability");
  for (const auto& [key, n] : result.counts) {
    std::printf("%-*s  %10llu  %11.4f\n", static_cast<int>(width), key.c_str(),
                static_cast<unsigned long long>(n), static_cast<double>(n) / static_cast<double>(run.shots));
  }
  return 0;
}

}  // namespace

int Qpu(const Options& o) {
  // paths: {"run", FILE}
  if (o.paths.size() != 2 || o.paths[0] != "run") return Usage("expected: plinth qpu run FILE.qasm");
  return Run(o, o.paths[1]);
}

}  // namespace plinth::cli
