// CPU and memory of one process from /proc, for the controller's per-replica
// series `plinth_replica_cpu_seconds_total` (a counter) and
// `plinth_replica_memory_bytes` (a gauge) — docs/automation.md, "Metrics".
//
// A process is named by pid + start time (process::ProcessStartTime, field
// 22 of /proc/PID/stat): when the pid now belongs to another process (a
// different start time), or to none, or to a zombie, the result is nullopt,
// so a reused pid never lends its numbers to a replica. Linux only.
// Thread-safe (reads files only).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "runtime/metrics/window.h"

namespace plinth::metrics {

struct ProcessUsage {
  double cpu_seconds = 0;  // utime + stime (fields 14, 15 of stat) / clock ticks per second
  double rss_bytes = 0;    // VmRSS of /proc/PID/status
};

// `start_time` 0: any process with this pid.
std::optional<ProcessUsage> ReadProcessUsage(pid_t pid, uint64_t start_time, std::string* error = nullptr);

// Reads the process and appends `plinth_replica_cpu_seconds_total` and
// `plinth_replica_memory_bytes` with `labels` (service, replica...) at
// `now_ms`. False with *error, appending nothing, when the process cannot be
// read: its series then go stale in the window (missing, never 0).
bool AppendReplicaUsage(Window& window, const Labels& labels, pid_t pid, uint64_t start_time, int64_t now_ms,
                        std::string* error = nullptr);

// The fields of /proc/PID/stat and /proc/PID/status as text (exposed for
// tests): nullopt with *error when malformed.
struct StatFields {
  char state = '?';
  uint64_t utime = 0, stime = 0, start_time = 0;
};
std::optional<StatFields> ParseProcStat(const std::string& text, std::string* error);
// VmRSS in bytes; nullopt when the line is absent (kernel threads) or malformed.
std::optional<uint64_t> ParseVmRssBytes(const std::string& status_text);

}  // namespace plinth::metrics
