// The controller's leader lease (docs/controller.md, "Leader election"), a
// row in its own SQLite database, `.plinth/<ws>/controller/lease.db` (not
// the workspace state DB: the lease is renewed every loop and must not
// contend with, or appear in the history of, the state).
//
// Table `lease(name PRIMARY KEY, holder_id, holder_pid, expires_at_ms, term)`.
// A holder holds the lease while its row names it and `expires_at_ms` is in
// the future by the Clock's wall time. Every operation is one transaction
// begun with BEGIN IMMEDIATE (the write lock is taken before the row is
// read), so two processes can never both acquire it.
//
// Fencing: `term` increases by one each time a holder acquires the lease it
// did not hold at that moment (free, released, expired and someone else's,
// or first use). A renewal, or re-acquiring one's own expired lease that no
// one took meanwhile, keeps the term. Work done as leader can carry the term
// so that a deposed leader's late writes can be told apart.
//
// With a PostgreSQL state backend (PLINTH_BACKEND, docs/state.md) the table
// lives in the workspace's schema instead (the workspace named by the path,
// .plinth/<workspace>/controller/lease.db), so controllers on different
// machines sharing one state elect one leader; its transactions lock the
// lease table only, never the state's.
//
// Thread safety: one Lease per thread; any number of processes.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "runtime/controller/clock.h"

namespace plinth::state {
class SqlConnection;
}

namespace plinth::controller {

struct LeaseRecord {
  std::string name;
  std::string holder_id;  // empty: released
  int64_t holder_pid = 0;
  int64_t expires_at_ms = 0;
  int64_t term = 0;
};

struct LeaseOutcome {
  bool held = false;   // the caller holds the lease now
  LeaseRecord record;  // the row after the operation (the other holder's when not held)
  std::string error;   // non-empty: the database failed (held is false)
};

class Lease {
 public:
  // Opens (creating when missing, mode 0600) the database at `path` for the
  // lease `name`, held as `holder_id` (unique per process: see NewHolderId)
  // by process `pid`. Null with *error when the database cannot be opened.
  static std::unique_ptr<Lease> Open(const std::filesystem::path& path, std::string name,
                                     std::string holder_id, int64_t pid, Clock& clock, std::string* error);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;

  // Takes the lease for `ttl` when it is free, released, expired, or ours;
  // otherwise reports who holds it.
  LeaseOutcome TryAcquire(std::chrono::milliseconds ttl);
  // Extends our lease by `ttl` from now; fails (held false) when another
  // holder has it or it is released. An expired lease of ours that no one
  // took is renewed.
  LeaseOutcome Renew(std::chrono::milliseconds ttl);
  // Gives the lease up at once (holder cleared, expiry now) if we hold it;
  // the term is kept, so the next holder's term is higher.
  LeaseOutcome Release();
  // The row as it is (nullopt: never acquired).
  std::optional<LeaseRecord> Read(std::string* error);

  const std::string& holder_id() const { return holder_id_; }

 private:
  Lease(std::unique_ptr<state::SqlConnection> db, std::string name, std::string holder_id, int64_t pid,
        Clock& clock);
  enum class Op { kAcquire, kRenew, kRelease };
  LeaseOutcome Change(Op op, std::chrono::milliseconds ttl);

  std::unique_ptr<state::SqlConnection> db_;
  std::string name_, holder_id_;
  int64_t pid_;
  Clock& clock_;
};

// "<host>/<pid>/<8 random hex digits>": a holder id that no other process,
// now or later, has.
std::string NewHolderId();

}  // namespace plinth::controller
