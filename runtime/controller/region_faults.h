// Regions that have failed at run time (docs/services.md, "Regions that
// fail"): `plinth region fail NAME` cuts a region off and records it here;
// `plinth region recover NAME` restores it and removes the record. The
// controller and apply read the record: a failed region's replicas are not
// restarted while it is failed, and a service that allows it runs them in
// its other regions until the region recovers.
//
// A record is one small file, <workspace dir>/regions/<name>.failed, holding
// {"region", "since" (unix seconds), "method"} as JSON, written atomically
// (temp file + rename) so a reader sees the whole record or none. The
// configuration's `down = true` is a different thing (nothing is placed in
// the region at all) and is not recorded here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>
#include <string>

namespace plinth::controller {

// How a failure was injected: "namespace" (the region's network namespace
// lost its link), "stopped" (its replicas were frozen with SIGSTOP: the
// fallback without network namespaces).
struct RegionFault {
  std::string region;
  int64_t since = 0;  // unix seconds
  std::string method;
};

// <workspace_dir>/regions/<region>.failed
std::filesystem::path RegionFaultFile(const std::filesystem::path& workspace_dir, const std::string& region);

// Records `fault` (creating the directory). False with *error on an I/O
// failure; nothing half-written is left.
bool RecordRegionFault(const std::filesystem::path& workspace_dir, const RegionFault& fault,
                       std::string* error);

// Removes the record of `region`; no record is not an error.
bool ClearRegionFault(const std::filesystem::path& workspace_dir, const std::string& region,
                      std::string* error);

// The regions recorded as failed (names). An unreadable record counts as
// failed: a half-known failure is not a recovery.
std::set<std::string> FailedRegions(const std::filesystem::path& workspace_dir);

// The record of `region`, when there is one and it parses.
bool ReadRegionFault(const std::filesystem::path& workspace_dir, const std::string& region, RegionFault* out);

}  // namespace plinth::controller
