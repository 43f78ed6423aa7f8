// Health probes for supervised replicas (docs/services.md): one check of an
// HTTP path, a TCP port or a command (RunProbe), and the state a series of
// checks adds up to (ProbeTracker), with Kubernetes' defaults and meanings.
//
// RunProbe does the I/O and blocks its caller for at most about the probe's
// timeout; ProbeTracker is pure bookkeeping on a Clock's time points, so the
// thresholds, periods and initial delay are tested on a ManualClock.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/controller/clock.h"

namespace plinth::controller {

enum class ProbeKind {
  kHttp,  // GET `path` on host:port over plain HTTP/1.1: status 200-399 is a success
  kTcp,   // a TCP connection to host:port is accepted
  kExec,  // `argv` exits with status 0 within the timeout
};

struct ProbeSpec {
  ProbeKind kind = ProbeKind::kHttp;
  std::string path = "/";         // kHttp: the request target, starting with '/'
  int port = 0;                   // kHttp, kTcp: 1-65535
  std::vector<std::string> argv;  // kExec: argv[0] is a path, or a name looked up on PATH
  int period_s = 10;              // how often the probe runs
  int timeout_s = 1;              // one run's bound: connect + request + status line, or the command
  int success_threshold = 1;      // consecutive successes that make the state ok
  int failure_threshold = 3;      // consecutive failures that make the state failed
  int initial_delay_s = 0;        // from the start of the replica to the first run
};

// "" when `spec` can be run, else what is wrong and how to fix it (one line).
// `liveness_like`: the probe restarts its replica (liveness, startup), where,
// as in Kubernetes, success_threshold must be 1.
std::string ValidateProbe(const ProbeSpec& spec, bool liveness_like);

// Where and how a probe runs. An exec probe gets exactly `env` (the
// replica's: secrets are allowed there, and never appear in a result) and
// runs in `cwd`; its argv[0], when it holds no '/', is looked up on env's
// PATH, or this process's PATH when env has none.
struct ProbeTarget {
  std::string host = "127.0.0.1";  // an IPv4 or IPv6 address literal (no name lookup)
  std::map<std::string, std::string> env;
  std::filesystem::path cwd;
};

struct ProbeResult {
  bool ok = false;
  // One line: why it failed ("connection refused on 127.0.0.1:8080",
  // "HTTP 500 from GET /healthz", "timed out after 1 s connecting to ...") or
  // what succeeded ("HTTP 200", "connected", "exited with status 0").
  std::string message;
};

// Runs one probe. Never throws; never blocks much longer than timeout_s (an
// exec probe's group is SIGTERMed at the deadline and SIGKILLed 1 s later).
ProbeResult RunProbe(const ProbeSpec& spec, const ProbeTarget& target);

enum class ProbeState { kUnknown, kOk, kFailed };
std::string_view ProbeStateName(ProbeState s);  // "unknown", "ok", "failed"

// The state of one probe of one replica over time: kUnknown until a
// threshold is reached, then kOk after success_threshold consecutive
// successes and kFailed after failure_threshold consecutive failures (a
// state holds until the other threshold is reached). Not thread-safe: its
// owner serialises calls.
class ProbeTracker {
 public:
  // `started`: when the replica (or, after a startup probe, its started
  // phase) began; the first run is due initial_delay_s after it.
  ProbeTracker(ProbeSpec spec, Clock::TimePoint started);

  // Whether a run is due at `now`: the initial delay has passed and no run
  // began within the last period_s.
  bool Due(Clock::TimePoint now) const;

  // Records the result of the run that began at `began` (the time Due was
  // asked), and returns the new state.
  ProbeState Record(const ProbeResult& result, Clock::TimePoint began);

  ProbeState state() const { return state_; }
  int consecutive_successes() const { return successes_; }
  int consecutive_failures() const { return failures_; }
  const std::string& last_message() const { return last_message_; }
  const ProbeSpec& spec() const { return spec_; }

 private:
  ProbeSpec spec_;
  Clock::TimePoint first_due_;
  Clock::TimePoint last_run_{};
  bool ran_ = false;
  ProbeState state_ = ProbeState::kUnknown;
  int successes_ = 0;
  int failures_ = 0;
  std::string last_message_;
};

}  // namespace plinth::controller
