#include "kernels/qpu/memory.h"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>

namespace plinth::qpu {

uint64_t StateBytes(uint32_t qubits) {
  if (qubits >= 60) return std::numeric_limits<uint64_t>::max();  // 16·2^60 = 2^64
  return uint64_t{16} << qubits;
}

std::optional<uint64_t> AvailableMemory() {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1) return uint64_t{kib} * 1024;
  }
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page);
  return std::nullopt;
}

MemoryCheck CheckStateMemory(uint32_t qubits, uint64_t max_memory, std::optional<uint64_t> available) {
  MemoryCheck c;
  c.needed = StateBytes(qubits);
  c.limit = std::numeric_limits<uint64_t>::max();
  if (max_memory != 0) c.limit = max_memory;
  if (available && *available < c.limit) c.limit = *available;
  c.fits = qubits < 60 && c.needed <= c.limit;  // StateBytes saturates from 60 qubits
  if (!c.fits) {
    const std::string needed =
        qubits >= 60 ? "16*2^" + std::to_string(qubits) + " bytes" : FormatBytes(c.needed);
    c.reason = std::to_string(qubits) + " qubits need " + needed +
               " for the state vector (16*2^n bytes), more than ";
    if (max_memory != 0 && c.limit == max_memory) {
      c.reason += "--max-memory=" + FormatBytes(max_memory) + "; raise it, or use fewer qubits";
    } else {
      c.reason += "the " + FormatBytes(c.limit) + " of memory available on this machine; use fewer qubits";
    }
  }
  return c;
}

MemoryCheck CheckStateMemory(uint32_t qubits, uint64_t max_memory) {
  return CheckStateMemory(qubits, max_memory, AvailableMemory());
}

bool QubitsFit(uint32_t qubits) {
  return CheckStateMemory(qubits, 0).fits;
}

bool ParseSize(std::string_view text, uint64_t* bytes) {
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end == text.data()) return false;
  std::string_view unit(end, static_cast<size_t>(text.data() + text.size() - end));
  int shift = 0;
  if (!unit.empty()) {
    switch (unit[0]) {
      case 'K':
      case 'k': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B': shift = 0; break;
      default: return false;
    }
    std::string_view rest = unit.substr(1);
    if (unit[0] == 'B') {
      if (!rest.empty()) return false;
    } else if (!(rest.empty() || rest == "B" || rest == "iB" || rest == "i")) {
      return false;
    }
  }
  if (shift > 0 && n > (std::numeric_limits<uint64_t>::max() >> shift)) return false;
  *bytes = n << shift;
  return true;
}

std::string FormatBytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && u < 6) {
    v /= 1024;
    ++u;
  }
  std::ostringstream out;
  out.precision(u == 0 ? 0 : 1);
  out << std::fixed << v << " " << kUnits[u];
  return out.str();
}

}  // namespace plinth::qpu
