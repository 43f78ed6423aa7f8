#include "runtime/controller/region_replicas.h"

#include <sqlite3.h>

#include <system_error>

#include "runtime/process/process.h"

namespace plinth::controller {

std::string RegionOfReplicaId(const std::string& id) {
  const size_t first = id.find('.'), last = id.rfind('.');
  if (first == std::string::npos || last == first || first == 0 || last + 1 >= id.size()) return "";
  for (size_t i = last + 1; i < id.size(); ++i)
    if (id[i] < '0' || id[i] > '9') return "";
  return id.substr(first + 1, last - first - 1);
}

bool LiveReplicasOf(const std::filesystem::path& db, const std::string& region,
                    std::vector<RecordedReplica>* out, std::string* error) {
  out->clear();
  std::error_code ec;
  if (!std::filesystem::exists(db, ec)) return true;
  sqlite3* handle = nullptr;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    *error = "cannot open " + db.string() + ": " + (handle ? sqlite3_errmsg(handle) : "out of memory");
    sqlite3_close(handle);
    return false;
  }
  sqlite3_busy_timeout(handle, 5000);
  sqlite3_stmt* q = nullptr;
  if (sqlite3_prepare_v2(handle, "SELECT id, pid, start_time FROM replicas", -1, &q, nullptr) != SQLITE_OK) {
    *error = "cannot read " + db.string() + ": " + sqlite3_errmsg(handle);
    sqlite3_close(handle);
    return false;
  }
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const unsigned char* text = sqlite3_column_text(q, 0);
    RecordedReplica r;
    r.id = text ? reinterpret_cast<const char*>(text) : "";
    r.pid = static_cast<pid_t>(sqlite3_column_int64(q, 1));
    r.start_time = static_cast<uint64_t>(sqlite3_column_int64(q, 2));
    if (RegionOfReplicaId(r.id) != region || r.pid <= 0 || r.start_time == 0) continue;
    if (process::ProcessStartTime(r.pid) != r.start_time) continue;  // gone, or the pid is another's now
    out->push_back(std::move(r));
  }
  const bool ok = rc == SQLITE_DONE;
  if (!ok) *error = "cannot read " + db.string() + ": " + sqlite3_errmsg(handle);
  sqlite3_finalize(q);
  sqlite3_close(handle);
  return ok;
}

int SignalReplicas(const std::vector<RecordedReplica>& replicas, int sig) {
  int n = 0;
  for (const RecordedReplica& r : replicas) {
    if (process::ProcessStartTime(r.pid) != r.start_time) continue;
    if (process::SignalGroupMembers(r.pid, r.pid, r.start_time, sig) > 0) ++n;
  }
  return n;
}

}  // namespace plinth::controller
