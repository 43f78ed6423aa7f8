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
// checked explicitly, and only where it can be proven. The holder's machine
// id (a keyed hash of /etc/machine-id, else /var/lib/dbus/machine-id, never
// the id itself), PID namespace
// (/proc/self/ns/pid), boot id and process start time are recorded with it.
// A holder is stale only when it ran on this machine (same machine id) in
// this PID namespace and the machine was rebooted since (boot id), or its pid
// no longer exists, is a zombie, or belongs to a newer process (start time
// from /proc differs: pid reuse). Every other holder — another machine, even
// one with the same host name; another container; a machine without a
// machine id; a lock row from an older Plinth that recorded none — is never
// presumed dead: the refusal names it and says to run force-unlock.
//
// Thread safety: as StateStore. The lock is not reentrant: the same process
// acquiring twice gets kLockHeld.
#pragma once

#include <chrono>
#include <functional>
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
  // This process as a holder: getpid(), gethostname(), machine id, PID
  // namespace, boot id, now.
  static LockHolder ThisProcess(const std::string& command);

  // kLockHeld (Error::holder set) when a live process holds the lock.
  static Result<AcquiredLock> Acquire(StateStore& store, const LockHolder& holder);
  // Acquire, tried again every second while the lock is held (kLockHeld),
  // for up to `timeout` (Terraform's -lock-timeout); `waiting` is called
  // once, with the first refusal, so the caller can say whom it waits for.
  // A zero timeout is one attempt.
  static Result<AcquiredLock> AcquireWithin(StateStore& store, const LockHolder& holder,
                                            std::chrono::milliseconds timeout,
                                            const std::function<void(const Error&)>& waiting = {});
  // Releases a lock this caller acquired; kNotFound when `id` is not the
  // current lock (it was force-unlocked or taken over meanwhile).
  static Status Release(StateStore& store, const std::string& id);
  // Removes the lock whatever its holder; `id` must be the current lock's id
  // (kNotFound otherwise, so a stale command line cannot break a new lock).
  static Status ForceUnlock(StateStore& store, const std::string& id);
  // The current lock, if any.
  static Result<std::optional<LockInfo>> Current(StateStore& store);
  // What a refused command prints: for kLockHeld, the holder (pid, host,
  // command, since), why it is presumed alive and how to break a lock whose
  // holder is gone for good (the same text as the error's message).
  static std::string Describe(const Error& error);
};

}  // namespace plinth::state
