// HAProxy as Plinth's load balancer (docs/load-balancing.md).
//
// Two layers:
//  * RenderConfig: a pure function from what the user asked for (LbSpec) and
//    what the controller observed (LbRuntime: measured RTT per region, the
//    admin state of each backend, the instance directory) to the text of
//    haproxy.cfg. Same inputs, same bytes. ValidateSpec says what in a spec
//    cannot be rendered safely; RenderConfig requires a valid spec.
//  * HaproxyInstance: one HAProxy master-worker process per directory. Apply
//    renders, checks the candidate with `haproxy -c`, and only then swaps it
//    in and starts or reloads (master CLI `reload`, listeners handed to the
//    new worker: no connection is refused during a reload). A configuration
//    that haproxy rejects never replaces the running one. SetServerState
//    gates a backend at run time without a reload (readiness). The process
//    is a daemon that outlives its starter; a new HaproxyInstance on the same
//    directory adopts it (pid + ProcessStartTime, never a reused pid).
//
// Every child goes through runtime/process. Everything listens on the
// addresses the spec names (127.0.0.1 by default); the admin and master
// sockets are UNIX sockets of mode 0600 in the instance directory (0700).
// The configuration holds no secret; it is written with mode 0600 anyway.
//
// Waiting for HAProxy (start, reload, stop) is bounded by real-time
// deadlines: these are I/O waits on a real process, not controller decisions,
// so they take no Clock.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace plinth::controller {

enum class LbMode {
  kRoundRobin,  // every backend active, weighted round robin
  kFailover,    // primary_region's backends active, every other one `backup`
  kLatency,     // the nearest measured region's backends active, others `backup`
};

enum class LbProtocol { kHttp, kTcp };

// How HAProxy checks a backend by itself (independently of the controller's
// probes, which gate through SetServerState). kHttp: GET `path`, status
// 2xx/3xx is healthy; kTcp: a connect.
struct LbHealth {
  enum class Kind { kHttp, kTcp };
  Kind kind = Kind::kHttp;
  std::string path = "/";
  int interval_ms = 2000;
  int rise = 2;
  int fall = 3;
};

struct LbBackend {
  std::string id;      // unique in the spec; the server name is SanitizeServerName(id)
  std::string region;  // used by kFailover and kLatency
  std::string host = "127.0.0.1";
  int port = 0;
  int weight = 1;       // 1..256
  std::string replica;  // the supervised replica behind it ("model.eu.0"); empty when none
};

struct LbSpec {
  std::string name;     // the proxy names are fe_<name> and be_<name>, sanitized
  std::string service;  // the service whose replicas the backends are (not rendered); may be empty
  std::string bind_host = "127.0.0.1";
  int bind_port = 0;
  LbProtocol protocol = LbProtocol::kHttp;
  LbMode mode = LbMode::kRoundRobin;
  std::string primary_region;  // required by kFailover; kLatency's choice when no RTT is known
  LbHealth health;
  std::vector<LbBackend> backends;
};

// The spec as JSON (every field) and back; nullopt when `j` is not one.
nlohmann::json LbSpecJson(const LbSpec& spec);
std::optional<LbSpec> LbSpecFromJson(const nlohmann::json& j);

// The admin state of a server: ready takes traffic; drain keeps the
// connections it has (and persistent ones) but gets no new ones; maint gets
// nothing and is not health checked.
enum class ServerAdmin { kReady, kDrain, kMaint };

std::string_view ServerAdminName(ServerAdmin state);  // "ready", "drain", "maint"

// What the controller observed, as opposed to what the user asked for.
struct LbRuntime {
  // Measured round-trip time per region, in microseconds (kLatency).
  std::map<std::string, int64_t> region_rtt_us;
  // Admin state per backend id; a backend not listed is ready.
  std::map<std::string, ServerAdmin> server_admin;
  // Where the admin socket lives (<instance_dir>/admin.sock).
  std::filesystem::path instance_dir;
};

// A valid HAProxy server/proxy name made of `id`: letters, digits, '-', '_',
// '.' are kept, anything else becomes '_'; an empty result is "_".
std::string SanitizeServerName(std::string_view id);

// The first problem that keeps `spec` from rendering, in one line ("backend
// \"a b\" and \"a_b\" both become server \"a_b\": rename one"), or nullopt.
// Checks names, ports, hosts and paths (no whitespace or control character
// can reach the file), weights, health numbers and the mode's regions.
std::optional<std::string> ValidateSpec(const LbSpec& spec);

// Which regions' backends are active (the others are `backup`), by the
// mode's rule:
//  * kRoundRobin: every region.
//  * kFailover: primary_region only.
//  * kLatency: the region with the smallest measured RTT among those that
//    have a ready backend (one not set to drain or maint in
//    runtime.server_admin; ties: the smaller region name); with no such
//    measured region, primary_region, or every region when that is empty.
// Sorted.
std::vector<std::string> ActiveRegions(const LbSpec& spec, const LbRuntime& runtime);

// The text of haproxy.cfg: global (master-worker, admin socket with
// expose-fd listeners, hard-stop-after), defaults (timeouts, redispatch),
// one frontend, one backend with one server line per backend in spec order
// (`backup` outside ActiveRegions, `disabled` for maint, weight 0 for drain).
// Requires ValidateSpec(spec) == nullopt.
std::string RenderConfig(const LbSpec& spec, const LbRuntime& runtime);

// The round-trip time to host:port in microseconds, measured as the time a
// TCP connect takes (the handshake is one round trip): the median of
// `samples` tries, each bounded by `timeout`. nullopt when no try connected
// (the backend is not reachable: it is no candidate for latency routing).
// `host` is an IPv4 address or a name resolved to one. Blocks the caller.
std::optional<int64_t> MeasureConnectRttUs(
    const std::string& host, int port, int samples = 3,
    std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// LbRuntime::region_rtt_us for `spec`: per region, the smallest
// MeasureConnectRttUs of its backends; a region none of whose backends
// answers is left out.
std::map<std::string, int64_t> MeasureRegionRtt(
    const LbSpec& spec, int samples = 3, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000));

// One server as HAProxy reports it (`show stat`).
struct LbServerState {
  std::string backend_id;  // the spec's id when this instance knows it; else the server name
  std::string server;      // the HAProxy server name
  std::string status;      // "UP", "DOWN", "MAINT", "DRAIN", "UP 1/3", "no check", ...
  bool up = false;         // status starts with "UP" (or "no check"): takes traffic if ready
  ServerAdmin admin = ServerAdmin::kReady;
  bool backup = false;
  int64_t current_sessions = 0;
  int64_t total_sessions = 0;
  int64_t responses = 0;     // HTTP responses sent (hrsp_1xx .. hrsp_other); 0 in TCP mode
  std::string check_status;  // "L7OK", "L4CON", ... (empty without checks)
};

// The files of an instance, all in `dir`:
//   haproxy.cfg      the running configuration      haproxy.cfg.new  the candidate
//   admin.sock       admin socket (worker)           master.sock      master CLI
//   haproxy.pid      HAProxy's pidfile               instance         "PID START_TIME" of the master
//   haproxy.log      HAProxy's stdout and stderr (appended)
//   spec.json        the LbSpec the running configuration was rendered from
//                    (LbSpecJson, 0600): a later object on the directory
//                    (another apply, the controller) knows the backends
//
// Not thread-safe: one owner (the controller's loop) calls it.
class HaproxyInstance {
 public:
  // Creates `dir` (0700) if needed and adopts a running master recorded in
  // it (alive with the recorded start time) with the spec recorded in
  // spec.json. `haproxy` is the executable.
  HaproxyInstance(std::filesystem::path dir, std::filesystem::path haproxy);

  // Does not stop HAProxy: it outlives its owner. Call Stop to end it.
  ~HaproxyInstance() = default;
  HaproxyInstance(const HaproxyInstance&) = delete;
  HaproxyInstance& operator=(const HaproxyInstance&) = delete;

  // Makes the instance serve `spec`: validate, render (runtime.instance_dir
  // is set to dir; runtime.server_admin entries override the states set by
  // SetServerState, which are kept otherwise), write haproxy.cfg.new (0600),
  // `haproxy -c`; then, if the text differs from the running one or nothing
  // runs, swap it in and start or reload, waiting until the new worker
  // serves. Returns nullopt on success, else one message; the first lines of
  // haproxy's own error are included when it refused the file. On any
  // failure the configuration that was running stays running, and
  // haproxy.cfg is the one it runs.
  std::optional<std::string> Apply(const LbSpec& spec, LbRuntime runtime = {});

  // Sets a backend's admin state at run time (`set server`), without a
  // reload. The state is remembered and rendered into later configurations,
  // so a reload by this object keeps it. Requires a spec: a successful
  // Apply, or one recorded in spec.json. Returns nullopt or the error.
  std::optional<std::string> SetServerState(const std::string& backend_id, ServerAdmin state);

  // The servers of the backend as the running worker reports them; an error
  // when nothing runs or the socket does not answer.
  std::optional<std::string> ServerStates(std::vector<LbServerState>* out) const;

  // SIGUSR1 (soft stop: connections finish), then SIGTERM after `grace`,
  // then SIGKILL to the whole group; waits until the master is gone and
  // forgets it. Nothing running is not an error.
  std::optional<std::string> Stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000));

  // Whether the recorded master is alive (pid with its start time, not a
  // zombie).
  bool Running() const;
  // The spec last applied (by this object or recorded in spec.json).
  const std::optional<LbSpec>& spec() const { return spec_; }
  pid_t master_pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }

  // Sends one command to a UNIX socket of this instance ("admin.sock" or
  // "master.sock") and returns the whole answer; bounded by `timeout`.
  std::optional<std::string> Command(
      const std::string& socket_name, const std::string& command, std::string* answer,
      std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) const;

 private:
  std::optional<std::string> Start();
  std::optional<std::string> Reload();
  std::string LogTail() const;
  void Forget();
  void RecordSpec();

  std::filesystem::path dir_;
  std::filesystem::path haproxy_;
  pid_t pid_ = 0;
  uint64_t start_time_ = 0;
  std::optional<LbSpec> spec_;                // the last spec applied by this object
  std::map<std::string, ServerAdmin> admin_;  // by backend id
};

}  // namespace plinth::controller
