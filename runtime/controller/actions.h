// The controller's record of what it did on its own (docs/controller.md,
// "Automatic actions"): each rollout it started when a maintenance window
// opened, each failed rollout it rolled back, each autoscaling step, with
// the reason, kept in `<workspace dir>/controller/actions.db` (SQLite, mode
// 0600) and shown by `plinth history` next to the applies.
//
// Input: one Action per decision, from the controller's tasks. Output: rows,
// newest last, bounded (the oldest beyond kMaxActions are dropped). No
// secret value is ever part of an action: callers pass versions, counts,
// region names and reasons built from them.
//
// Thread safety: an ActionLog may be used from several threads (one
// connection, serialised by SQLite's full mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace plinth::controller {

struct Action {
  int64_t seq = 0;      // total order (assigned by Record)
  int64_t at_ms = 0;    // wall clock
  std::string kind;     // "rollout", "rollback", "scale"
  std::string subject;  // the resource's address: "service.model"
  std::string detail;   // what: "version \"v2\" (generation 7)", "eu 1 -> 3"
  std::string reason;   // why: "maintenance window nightly opened"
};

nlohmann::json ActionJson(const Action& a);

inline constexpr int64_t kMaxActions = 10000;

class ActionLog {
 public:
  // Opens `path` (creating it and its table when `create`); nullptr with
  // *error when it cannot, or (not create) when it does not exist.
  static std::unique_ptr<ActionLog> Open(const std::filesystem::path& path, bool create, std::string* error);
  ~ActionLog();
  ActionLog(const ActionLog&) = delete;
  ActionLog& operator=(const ActionLog&) = delete;

  // Appends `a` (its seq is assigned); false with *error on a database error.
  bool Record(const Action& a, std::string* error);
  // The last `limit` actions (all when 0), of `subject` only when not
  // empty, oldest first.
  std::vector<Action> List(const std::string& subject = "", int64_t limit = 0);

 private:
  ActionLog() = default;
  sqlite3* db_ = nullptr;
};

}  // namespace plinth::controller
