// The workspace lock: at most one plan/apply/state command changes a
// workspace at a time (docs/state.md, "Locking").
//
// Design: the lock is a single row in the `lock` table of the workspace's own
// state.db, taken and released inside BEGIN IMMEDIATE transactions. Chosen
// over a lock file because
//  * acquiring is one SQLite write transaction, so two processes racing for the
//    lock are serialized by SQLite's own file locking — there is no
//    create/unlink/inode race to get right, and no second file to lose or leave
//    behind next to the state;
//  * the holder (pid, host, command, since) is stored durably with the lock, so
//    a refused command can name it and force-unlock can check the id;
//  * the lock lives exactly as long as the state it protects: moving, copying
//    or deleting state.db moves, copies or deletes its lock too.
// A lock is not released by the kernel when its holder dies, so liveness is
// checked explicitly: a holder on the same host is stale when the machine was
// rebooted since (boot id), its pid no longer exists, is a zombie, or belongs
// to a newer process (process start time from /proc differs: pid reuse). A
// holder on another host is never presumed dead; force-unlock is for that.
//
// Thread safety: as StateStore. The lock is not reentrant: the same process
// acquiring twice gets kLockHeld.
#pragma once

#include <optional>
#include <string>

#include "runtime/state/state_store.h"

namespace plinth::state {

struct AcquiredLock {
  std::string id;  // pass to Release
  // Set when a stale lock (its holder process was gone) was taken over.
  std::optional<LockInfo> taken_over;
};

class WorkspaceLock {
 public:
  // This process as a holder: getpid(), gethostname(), now.
  static LockHolder ThisProcess(const std::string& command);

  // kLockHeld (Error::holder set) when a live process holds the lock.
  static Result<AcquiredLock> Acquire(StateStore& store, const LockHolder& holder);
  // Releases a lock this caller acquired; kNotFound when `id` is not the
  // current lock (it was force-unlocked or taken over meanwhile).
  static Status Release(StateStore& store, const std::string& id);
  // Removes the lock whatever its holder; `id` must be the current lock's id
  // (kNotFound otherwise, so a stale command line cannot break a new lock).
  static Status ForceUnlock(StateStore& store, const std::string& id);
  // The current lock, if any.
  static Result<std::optional<LockInfo>> Current(StateStore& store);
  // What a refused command prints: for kLockHeld, the holder (pid, host,
  // command, since) and how to break a lock whose holder is gone for good.
  static std::string Describe(const Error& error);
};

}  // namespace plinth::state
