#include "runtime/controller/region_faults.h"

#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include <nlohmann/json.hpp>

#include "runtime/io/durable.h"

namespace plinth::controller {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
constexpr const char* kSuffix = ".failed";
}

fs::path RegionFaultFile(const fs::path& workspace_dir, const std::string& region) {
  return workspace_dir / "regions" / (region + kSuffix);
}

bool RecordRegionFault(const fs::path& workspace_dir, const RegionFault& fault, std::string* error) {
  std::error_code ec;
  fs::create_directories(workspace_dir / "regions", ec);
  if (ec)
    return *error = "cannot create " + (workspace_dir / "regions").string() + ": " + ec.message(), false;
  json j = {{"region", fault.region}, {"since", fault.since}, {"method", fault.method}};
  const fs::path file = RegionFaultFile(workspace_dir, fault.region);
  if (int rc = io::WriteFileAtomic(file, j.dump() + "\n", 0644); rc < 0)
    return *error = "cannot write " + file.string() + ": " + std::strerror(-rc), false;
  return true;
}

bool ClearRegionFault(const fs::path& workspace_dir, const std::string& region, std::string* error) {
  std::error_code ec;
  const fs::path file = RegionFaultFile(workspace_dir, region);
  fs::remove(file, ec);
  if (ec) return *error = "cannot remove " + file.string() + ": " + ec.message(), false;
  return true;
}

std::set<std::string> FailedRegions(const fs::path& workspace_dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(workspace_dir / "regions", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t n = std::strlen(kSuffix);
    if (name.size() > n && name.compare(name.size() - n, n, kSuffix) == 0)
      out.insert(name.substr(0, name.size() - n));
  }
  return out;
}

bool ReadRegionFault(const fs::path& workspace_dir, const std::string& region, RegionFault* out) {
  std::ifstream in(RegionFaultFile(workspace_dir, region));
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, false);
  if (!j.is_object()) return false;
  out->region = j.value("region", region);
  out->since = j.value("since", int64_t{0});
  out->method = j.value("method", "");
  return true;
}

}  // namespace plinth::controller
