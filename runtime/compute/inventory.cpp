#include "runtime/compute/inventory.h"

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "kernels/gpu/cuda_backend.h"
#include "kernels/gpu/gpu.h"
#include "kernels/qpu/memory.h"

namespace plinth::compute {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

int ThisMachineCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

uint64_t ThisMachineMemory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit) {
    if (key == "MemTotal:") return kib * 1024;
  }
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) : 0;
}

std::string Summary(const std::vector<Gpu>& gpus, bool fake) {
  if (gpus.empty()) return "no GPU";
  std::map<std::string, int> by_type;
  for (const Gpu& g : gpus) by_type[g.type]++;
  std::string out;
  for (const auto& [type, n] : by_type) {
    if (!out.empty()) out += ", ";
    out += std::to_string(n) + (fake ? " fake " : " ") + type;
  }
  return out;
}

}  // namespace

std::string GpuModel(const std::string& device_name) {
  std::istringstream words(device_name);
  std::string w;
  std::vector<std::string> parts;
  while (words >> w) parts.push_back(w);
  static const std::set<std::string> vendor = {"NVIDIA", "Tesla", "Quadro"};
  size_t i = 0;
  while (i < parts.size() && vendor.count(parts[i])) ++i;
  if (i < parts.size() && (parts[i] == "GeForce" || parts[i] == "RTX") && i + 1 < parts.size()) {
    std::string model = parts[i] == "GeForce" ? "" : "RTX";
    for (size_t j = i + 1; j < parts.size() && j < i + 3; ++j) model += parts[j];
    return model;
  }
  if (i < parts.size()) {
    std::string model = parts[i];
    if (auto dash = model.find('-'); dash != std::string::npos) model = model.substr(0, dash);
    return model;
  }
  std::string compact;
  for (char c : device_name)
    if (!std::isspace(static_cast<unsigned char>(c))) compact += c;
  return compact.empty() ? "GPU" : compact;
}

bool GpuTypeMatches(const std::string& want, const std::string& have) {
  return want.empty() || Lower(want) == Lower(have);
}

std::string DescribeAccelerators(const Accelerators& a) {
  if (a.empty()) return "cpu";
  if (a.type.empty()) return std::to_string(a.count) + (a.count == 1 ? " GPU" : " GPUs");
  return a.type + ":" + std::to_string(a.count);
}

bool ReadFakeInventory(const std::string& path, Inventory* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read the fake GPU inventory '" + path + "' (PLINTH_FAKE_GPUS)";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  auto bad = [&](const std::string& what) {
    *error = "fake GPU inventory '" + path + "': " + what + " (docs/compute.md, \"Inventory\")";
    return false;
  };
  if (j.is_discarded() || !j.is_object()) return bad("not a JSON object");
  if (!j.contains("gpus") || !j["gpus"].is_array()) return bad("expected {\"gpus\": [...]}");
  std::set<int> seen;
  std::vector<Gpu> gpus;
  for (size_t i = 0; i < j["gpus"].size(); ++i) {
    const auto& e = j["gpus"][i];
    std::string at = "gpus[" + std::to_string(i) + "]";
    if (!e.is_object()) return bad(at + " is not an object");
    Gpu g;
    g.fake = true;
    if (!e.contains("index") || !e["index"].is_number_integer())
      return bad(at + ".index must be a whole number");
    int64_t index = e["index"].get<int64_t>();
    if (index < 0 || index > 4095) return bad(at + ".index must be from 0 to 4095");
    g.index = static_cast<int>(index);
    if (!seen.insert(g.index).second) return bad(at + ".index " + std::to_string(g.index) + " appears twice");
    if (!e.contains("type") || !e["type"].is_string() || e["type"].get<std::string>().empty())
      return bad(at + ".type must be a GPU type such as \"H100\"");
    g.type = e["type"].get<std::string>();
    std::string why;
    if (!ParseAccelerators(g.type + ":1", &why)) return bad(at + ".type '" + g.type + "' is not a name");
    if (e.contains("memory")) {
      if (e["memory"].is_number_unsigned())
        g.memory_bytes = e["memory"].get<uint64_t>();
      else if (!e["memory"].is_string() || !qpu::ParseSize(e["memory"].get<std::string>(), &g.memory_bytes))
        return bad(at + ".memory must be a size such as \"80GiB\"");
    }
    if (e.contains("fault")) {
      if (!e["fault"].is_string() || !gpu::ParseFakeFault(e["fault"].get<std::string>()))
        return bad(at + ".fault must be one of none, bandwidth, gemm, memory");
      g.fault = e["fault"].get<std::string>();
    }
    gpus.push_back(std::move(g));
  }
  // The machine's CPUs and memory, when the file describes them (else this machine's).
  if (j.contains("cpus")) {
    if (!j["cpus"].is_number_integer() || j["cpus"].get<int64_t>() < 1 || j["cpus"].get<int64_t>() > 1 << 20)
      return bad("cpus must be a whole number from 1");
    out->cpus = static_cast<int>(j["cpus"].get<int64_t>());
  }
  if (j.contains("memory")) {
    uint64_t bytes = 0;
    if (j["memory"].is_number_unsigned())
      bytes = j["memory"].get<uint64_t>();
    else if (!j["memory"].is_string() || !qpu::ParseSize(j["memory"].get<std::string>(), &bytes))
      return bad("memory must be a size such as \"64GiB\"");
    if (bytes == 0) return bad("memory must be a size such as \"64GiB\"");
    out->memory_bytes = bytes;
  }
  out->gpus = std::move(gpus);
  out->fake = true;
  out->source = "fake inventory " + path + " (" + Summary(out->gpus, true) + ")";
  return true;
}

bool DiscoverInventory(Inventory* out, std::string* error) {
  static std::mutex mu;
  static bool done = false;
  static bool ok = false;
  static Inventory cached;
  static std::string cached_error;
  static std::string cached_fake;  // the $PLINTH_FAKE_GPUS the cache was made for
  static std::string cached_stamp;  // its size and modification time then
  std::lock_guard<std::mutex> lock(mu);
  const char* fake = std::getenv("PLINTH_FAKE_GPUS");
  // A fake machine is read again when its file changes (a test injecting a
  // fault into a GPU after a node started, as a failed driver patch would).
  std::string stamp;
  if (fake && *fake) {
    struct stat st {};
    if (::stat(fake, &st) == 0)
      stamp = std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
              std::to_string(st.st_mtim.tv_nsec);
  }
  if (done && (cached_fake != (fake ? fake : "") || cached_stamp != stamp)) done = false;
  cached_stamp = stamp;
  if (!done) {
    done = true;
    cached = Inventory{};
    cached_error.clear();
    cached_fake = fake ? fake : "";
    cached.cpus = ThisMachineCpus();
    cached.memory_bytes = ThisMachineMemory();
    if (fake && *fake) {
      ok = ReadFakeInventory(fake, &cached, &cached_error);
    } else {
      gpu::Discovery d = gpu::DiscoverCuda();
      for (const gpu::DeviceInfo& dev : d.devices) {
        Gpu g;
        g.index = dev.index;
        g.type = GpuModel(dev.name);
        g.memory_bytes = dev.total_bytes;
        cached.gpus.push_back(std::move(g));
      }
      cached.source =
          d.why == gpu::NoGpu::kNone ? "CUDA (" + Summary(cached.gpus, false) + ")" : "no GPU: " + d.message;
      ok = true;
    }
  }
  if (!ok) {
    *error = cached_error;
    return false;
  }
  *out = cached;
  return true;
}

std::string ShapeMisfit(const Shape& shape, const Inventory& inventory) {
  if (shape.cpus > inventory.cpus)
    return std::to_string(shape.cpus) + " CPUs wanted, this machine has " + std::to_string(inventory.cpus);
  if (shape.memory_bytes > 0 && inventory.memory_bytes > 0 && shape.memory_bytes > inventory.memory_bytes)
    return qpu::FormatBytes(shape.memory_bytes) + " of memory wanted, this machine has " +
           qpu::FormatBytes(inventory.memory_bytes);
  const Accelerators& a = shape.accelerators;
  if (a.empty()) return "";
  if (a.IsQpuSim()) {
    uint64_t need = qpu::StateBytes(static_cast<uint32_t>(a.count));
    if (inventory.memory_bytes > 0 && need > inventory.memory_bytes)
      return "a " + std::to_string(a.count) + "-qubit state vector needs " + qpu::FormatBytes(need) +
             ", this machine has " + qpu::FormatBytes(inventory.memory_bytes);
    return "";
  }
  int have = 0;
  for (const Gpu& g : inventory.gpus)
    if (GpuTypeMatches(a.type, g.type)) ++have;
  std::string what = a.type.empty() ? "GPU" : a.type;
  if (have == 0)
    return "this machine has no " + what + " (inventory: " +
           (inventory.gpus.empty() ? std::string("no GPU") : Summary(inventory.gpus, inventory.fake)) + ")";
  if (have < a.count)
    return std::to_string(a.count) + " " + what + " wanted, this machine has " + std::to_string(have);
  return "";
}

}  // namespace plinth::compute
