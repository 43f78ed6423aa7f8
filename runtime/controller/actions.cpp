#include "runtime/controller/actions.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstring>

#include "runtime/io/durable.h"

namespace plinth::controller {

namespace fs = std::filesystem;

nlohmann::json ActionJson(const Action& a) {
  return {{"seq", a.seq},         {"at_ms", a.at_ms},   {"kind", a.kind},
          {"subject", a.subject}, {"detail", a.detail}, {"reason", a.reason}};
}

std::unique_ptr<ActionLog> ActionLog::Open(const fs::path& path, bool create, std::string* error) {
  std::error_code ec;
  if (!create && !fs::exists(path, ec)) return *error = "no controller actions in " + path.string(), nullptr;
  if (create) {
    // The controller's directory, as the controller makes it (0700): an agent
    // or apply may be the first to record an action.
    if (int e = io::MakeDirs(path.parent_path(), 0700))
      return *error = "cannot create " + path.parent_path().string() + ": " + std::strerror(e < 0 ? -e : e), nullptr;
    if (int e = io::CreateFileIfMissing(path, 0600); e < 0)
      return *error = "cannot create " + path.string() + ": " + std::strerror(-e), nullptr;
  }
  std::unique_ptr<ActionLog> log(new ActionLog());
  if (sqlite3_open_v2(path.c_str(), &log->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    *error = "cannot open " + path.string() + ": " + (log->db_ ? sqlite3_errmsg(log->db_) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(log->db_, 5000);
  char* msg = nullptr;
  if (sqlite3_exec(log->db_,
                   "PRAGMA journal_mode=WAL;"
                   "CREATE TABLE IF NOT EXISTS actions(seq INTEGER PRIMARY KEY AUTOINCREMENT, at_ms INTEGER NOT "
                   "NULL, kind TEXT NOT NULL, subject TEXT NOT NULL, detail TEXT NOT NULL, reason TEXT NOT NULL);",
                   nullptr, nullptr, &msg) != SQLITE_OK) {
    *error = "cannot set up " + path.string() + ": " + (msg ? msg : "unknown error");
    sqlite3_free(msg);
    return nullptr;
  }
  for (const char* suffix : {"-wal", "-shm"}) ::chmod((path.string() + suffix).c_str(), 0600);
  return log;
}

ActionLog::~ActionLog() {
  if (db_) sqlite3_close(db_);
}

bool ActionLog::Record(const Action& a, std::string* error) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "INSERT INTO actions(at_ms, kind, subject, detail, reason) VALUES(?1, ?2, ?3, ?4, ?5)",
                     -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, a.at_ms);
  sqlite3_bind_text(st, 2, a.kind.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, a.subject.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 4, a.detail.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 5, a.reason.c_str(), -1, SQLITE_TRANSIENT);
  const bool ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  if (!ok) return *error = std::string("cannot record the controller's action: ") + sqlite3_errmsg(db_), false;
  // Bounded: the oldest beyond kMaxActions go.
  sqlite3_prepare_v2(db_, "DELETE FROM actions WHERE seq <= (SELECT MAX(seq) FROM actions) - ?1", -1, &st, nullptr);
  sqlite3_bind_int64(st, 1, kMaxActions);
  sqlite3_step(st);
  sqlite3_finalize(st);
  return true;
}

std::vector<Action> ActionLog::List(const std::string& subject, int64_t limit) {
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "SELECT seq, at_ms, kind, subject, detail, reason FROM (SELECT * FROM actions"
                     " WHERE ?1 = '' OR subject = ?1 ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, subject.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, limit > 0 ? limit : -1);
  std::vector<Action> out;
  auto text = [&](int i) {
    const unsigned char* t = sqlite3_column_text(st, i);
    return t ? std::string(reinterpret_cast<const char*>(t)) : std::string();
  };
  while (sqlite3_step(st) == SQLITE_ROW)
    out.push_back(
        {sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), text(2), text(3), text(4), text(5)});
  sqlite3_finalize(st);
  return out;
}

}  // namespace plinth::controller
