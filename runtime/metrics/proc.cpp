#include "runtime/metrics/proc.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string_view>
#include <vector>

namespace plinth::metrics {

namespace {

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

bool ToU64(std::string_view s, uint64_t* v) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

}  // namespace

std::optional<StatFields> ParseProcStat(const std::string& text, std::string* error) {
  // "PID (comm) S f4 f5 ...": comm may hold spaces and ')', so split after the last ')'.
  size_t paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size()) {
    if (error) *error = "malformed /proc stat line: no ')' after the command name";
    return std::nullopt;
  }
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::string_view rest(text.data() + paren + 2, text.size() - paren - 2);
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t sp = rest.find_first_of(" \n", pos);
    if (sp == std::string_view::npos) sp = rest.size();
    if (sp > pos) fields.push_back(rest.substr(pos, sp - pos));
    pos = sp + 1;
  }
  if (fields.size() < 20) {
    if (error)
      *error =
          "malformed /proc stat line: " + std::to_string(fields.size() + 2) + " fields, expected at least 22";
    return std::nullopt;
  }
  StatFields f;
  f.state = fields[0].empty() ? '?' : fields[0][0];
  // Field n is fields[n - 3].
  if (!ToU64(fields[14 - 3], &f.utime) || !ToU64(fields[15 - 3], &f.stime) ||
      !ToU64(fields[22 - 3], &f.start_time)) {
    if (error) *error = "malformed /proc stat line: utime, stime or starttime is not a number";
    return std::nullopt;
  }
  return f;
}

std::optional<uint64_t> ParseVmRssBytes(const std::string& status_text) {
  std::istringstream in(status_text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    uint64_t kb = 0;
    std::string unit;
    if (!(fields >> kb >> unit) || unit != "kB") return std::nullopt;
    return kb * 1024;
  }
  return std::nullopt;
}

std::optional<ProcessUsage> ReadProcessUsage(pid_t pid, uint64_t start_time, std::string* error) {
  std::string dir = "/proc/" + std::to_string(pid);
  std::string stat_text, status_text;
  if (pid <= 0 || !ReadFile(dir + "/stat", &stat_text)) {
    if (error) *error = "no process " + std::to_string(pid);
    return std::nullopt;
  }
  auto stat = ParseProcStat(stat_text, error);
  if (!stat) return std::nullopt;
  if (start_time != 0 && stat->start_time != start_time) {
    if (error)
      *error =
          "process " + std::to_string(pid) + " is another process than the one recorded (start time differs)";
    return std::nullopt;
  }
  if (stat->state == 'Z' || stat->state == 'X') {
    if (error) *error = "process " + std::to_string(pid) + " has exited";
    return std::nullopt;
  }
  if (!ReadFile(dir + "/status", &status_text)) {
    if (error) *error = "process " + std::to_string(pid) + " exited while being read";
    return std::nullopt;
  }
  ProcessUsage usage;
  long ticks = ::sysconf(_SC_CLK_TCK);
  if (ticks <= 0) ticks = 100;
  usage.cpu_seconds = static_cast<double>(stat->utime + stat->stime) / static_cast<double>(ticks);
  auto rss = ParseVmRssBytes(status_text);
  if (!rss) {
    if (error)
      *error = "process " + std::to_string(pid) + " has no VmRSS (a kernel thread or an exiting process)";
    return std::nullopt;
  }
  usage.rss_bytes = static_cast<double>(*rss);
  // The pid might have been reused between the two reads: check again.
  std::string again;
  auto stat2 = ReadFile(dir + "/stat", &again) ? ParseProcStat(again, nullptr) : std::nullopt;
  if (!stat2 || stat2->start_time != stat->start_time) {
    if (error) *error = "process " + std::to_string(pid) + " exited while being read";
    return std::nullopt;
  }
  return usage;
}

bool AppendReplicaUsage(Window& window, const Labels& labels, pid_t pid, uint64_t start_time, int64_t now_ms,
                        std::string* error) {
  auto usage = ReadProcessUsage(pid, start_time, error);
  if (!usage) return false;
  window.Append("plinth_replica_cpu_seconds_total", labels, now_ms, usage->cpu_seconds);
  window.Append("plinth_replica_memory_bytes", labels, now_ms, usage->rss_bytes);
  return true;
}

}  // namespace plinth::metrics
