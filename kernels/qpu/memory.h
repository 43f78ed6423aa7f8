// How much memory a state vector needs and whether it fits on this machine.
//
// A state vector of n qubits holds 2^n complex<double> amplitudes: 16·2^n
// bytes. The simulator refuses a circuit before allocating anything when
// that exceeds the memory available now (MemAvailable in /proc/meminfo, else
// sysconf) or a cap the caller sets (`plinth qpu run --max-memory`).
// QubitsFit is the question compute pools will ask of a `qpu-sim:N` shape.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace plinth::qpu {

// 16·2^n bytes, saturating at UINT64_MAX.
uint64_t StateBytes(uint32_t qubits);

// Memory available to a new allocation now, in bytes: MemAvailable from
// /proc/meminfo, else free pages from sysconf; nullopt when neither is known.
std::optional<uint64_t> AvailableMemory();

struct MemoryCheck {
  bool fits = false;
  uint64_t needed = 0;  // StateBytes(qubits)
  uint64_t limit = 0;   // the smaller of the cap and the available memory
  std::string reason;   // when !fits: what is too small, and what to do
};

// Whether a state of `qubits` qubits fits under `max_memory` (0: no cap)
// and within `available` bytes (nullopt: unknown, then only the cap counts).
MemoryCheck CheckStateMemory(uint32_t qubits, uint64_t max_memory, std::optional<uint64_t> available);
// The same with this machine's AvailableMemory().
MemoryCheck CheckStateMemory(uint32_t qubits, uint64_t max_memory);

// Whether `qubits` qubits can be simulated on this machine now.
bool QubitsFit(uint32_t qubits);

// A byte count: digits with an optional unit K, M, G or T (powers of 1024;
// KiB, MB, "G" and "GiB" all mean the same), e.g. 512M, 1GiB, 1048576.
bool ParseSize(std::string_view text, uint64_t* bytes);

// "1.0 GiB", "512 MiB", "16 TiB", "100 B".
std::string FormatBytes(uint64_t bytes);

}  // namespace plinth::qpu
