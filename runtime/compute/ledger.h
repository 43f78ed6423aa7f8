// The machine-wide ledger of CPUs and memory held by local compute nodes
// (docs/compute.md, "CPU and memory reservations"): one small file per node
// in the lock directory (GpuLockDir()), so that the nodes of every pool and
// of every workspace on this machine never hold more CPUs or memory than the
// machine has.
//
//   <lock dir>/node-<16 hex: FNV-1a of the compute dir>-<node>.res
//   {"dir": "/abs/compute/dir", "node": "east-cpu-1", "cpus": 2, "memory": 0, "pid": 0, "at": <ms>}
//
// Life of an entry:
//  * the provisioner writes it (pid 0) under the ledger lock, together with
//    the check that the node fits what is left (ReserveLocked);
//  * the node's agent takes flock(LOCK_EX) on it for its whole life and
//    writes its pid (NodeReservation::Claim);
//  * an entry nobody holds is stale when it has a pid (its agent ended or was
//    killed) or when it was written more than 30 s ago without one (the agent
//    never started); ReadHeld removes stale entries and does not count them.
// A node whose shape leaves memory unset holds 0 bytes of memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace plinth::compute {

// CPUs and memory held by live reservations, and by which nodes.
struct HeldResources {
  int cpus = 0;
  uint64_t memory_bytes = 0;
  std::vector<std::string> cpu_nodes;     // nodes holding at least one CPU
  std::vector<std::string> memory_nodes;  // nodes holding some memory
};

// The reservation file of `node` of the queue in `compute_dir` (absolute).
std::filesystem::path ReservationPath(const std::filesystem::path& compute_dir, const std::string& node);

// flock(LOCK_EX) on <lock dir>/ledger.lock for the life of the object: the
// check of what is free and the writing of new entries are one step across
// processes. Take it only while no other ledger lock is held by this thread.
class LedgerLock {
 public:
  LedgerLock();
  ~LedgerLock();
  LedgerLock(const LedgerLock&) = delete;
  LedgerLock& operator=(const LedgerLock&) = delete;
  // False (with *error) when the lock file cannot be opened or locked.
  bool ok(std::string* error) const;

 private:
  int fd_ = -1;
  std::string error_;
};

// Sums the live entries of the lock directory and removes the stale ones.
// Call with a LedgerLock held.
HeldResources ReadHeld();

// Writes the unclaimed entry of a node about to be started. Call with a
// LedgerLock held, after checking the node fits. False with *error on failure.
bool ReserveLocked(const std::filesystem::path& compute_dir, const std::string& node, int cpus,
                   uint64_t memory_bytes, std::string* error);

// Removes a node's entry (its provisioning was rolled back).
void Unreserve(const std::filesystem::path& compute_dir, const std::string& node);

// An agent's hold on its node's entry.
class NodeReservation {
 public:
  NodeReservation() = default;
  ~NodeReservation() { Release(); }
  NodeReservation(const NodeReservation&) = delete;
  NodeReservation& operator=(const NodeReservation&) = delete;
  // Locks the node's entry (creating it when the provisioner's is gone) and
  // records this process's pid in it. False with *error on failure.
  bool Claim(const std::filesystem::path& compute_dir, const std::string& node, int cpus,
             uint64_t memory_bytes, std::string* error);
  // Removes the entry and drops the lock (the node's CPUs and memory are free).
  void Release();

 private:
  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace plinth::compute
