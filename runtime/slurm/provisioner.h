// The Slurm power-saving boundary (docs/providers/slurm.md): slurmctld runs
// ResumeProgram / SuspendProgram / ResumeFailProgram with a hostlist, and
// `plinth compute resume|suspend|resume-fail HOSTLIST` answers them here.
//
// This is exactly the boundary a cloud node provisioner implements: resume =
// create the machines and boot them so that their slurmd registers with a boot
// time later than the request (within ResumeTimeout); suspend = stop and
// release them (within SuspendTimeout); resume-fail = report the nodes
// slurmctld gave up on and keep them out of service. Locally a "machine" is a
// slurmd started for one node name in its own time namespace (a fresh
// /proc/uptime, hence a boot time after the request) and its own UTS
// namespace whose hostname is the node's (so `hostname` in a job prints the
// node it runs on), at the node's own loopback NodeAddr and Port from
// slurm.conf. The UTS namespace needs CAP_SYS_ADMIN (root); without it the
// slurmd keeps the host's hostname (as does everything else then: the time
// namespace needs the same capability).
//
// The provisioner file (JSON; its path from --provisioner or
// $PLINTH_SLURM_PROVISIONER; tests/fixtures/slurm-cluster.sh writes one):
//   {"slurm_conf": "/d/etc/slurm.conf",
//    "nodes": {"gpu1": {"address": "127.0.0.2", "port": 6818,
//                       "config": "/d/etc/slurm.conf", "spool": "/d/nodes/gpu1/spool",
//                       "pid_file": "/d/run/slurmd-gpu1.pid", "log_file": "/d/log/slurmd-gpu1.log",
//                       "hostname": "gpu1"}}}
// address and port are informative (slurmd takes them from slurm.conf by its
// node name); config, spool and pid_file are required; log_file is optional;
// hostname (slurm.conf's NodeHostname) is optional and defaults to the node's
// name.
//
// Every transition is logged with its reason to stderr and appended to
// <provisioner file's directory>/provisioner.log. A node's processes are
// found by markers in slurmd's environment (PLINTH_SLURM_NODE=NAME and
// PLINTH_SLURM_PROVISIONER=FILE, inherited by slurmstepd) and the time
// namespace they share with the jobs they run.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plinth::slurm {

struct ProvisionedNode {
  std::string name;
  std::string address;
  int port = 0;
  std::filesystem::path config;    // slurm.conf the node's slurmd reads (-f)
  std::filesystem::path spool;     // its SlurmdSpoolDir (created before the start)
  std::filesystem::path pid_file;  // its SlurmdPidFile (%n expanded)
  std::filesystem::path log_file;  // its SlurmdLogFile, for messages; may be empty
  std::string hostname;            // its NodeHostname: the hostname its slurmd and jobs see
};

struct Provisioner {
  std::filesystem::path file;
  std::filesystem::path slurm_conf;  // for scontrol (resume-fail)
  std::map<std::string, ProvisionedNode> nodes;
  std::filesystem::path log_path;  // <dir>/provisioner.log
  // Where slurmd, scontrol and unshare are looked up (colon-separated, as
  // $PATH): the caller's PATH, else the usual sbin and bin directories.
  std::string path_list;
  std::chrono::milliseconds stop_grace{10000};  // SIGTERM to SIGKILL on suspend
};

// Reads and checks the provisioner file. On error: nullopt and *error says
// what is wrong and how to fix it.
std::optional<Provisioner> LoadProvisioner(const std::filesystem::path& file, std::string* error);

// The outcome of one power command over a hostlist.
struct PowerReport {
  std::vector<std::string> done;    // nodes handled (including "already running"/"not running")
  std::vector<std::string> failed;  // nodes that could not be handled; each logged with why
};

// resume: for each node, start its slurmd unless one already runs for it
// (idempotent). Returns when every slurmd has written its pid file (or
// failed); registration with slurmctld follows on its own.
PowerReport Resume(const Provisioner& p, const std::vector<std::string>& nodes);
// suspend: for each node, SIGTERM its slurmd, SIGKILL after stop_grace, and
// SIGKILL whatever else still runs in its time namespace (slurmstepd, jobs).
// A node that is not running is done.
PowerReport Suspend(const Provisioner& p, const std::vector<std::string>& nodes);
// resume-fail: for each node, log the failure, stop whatever was started for
// it, and set it DOWN with a reason through `scontrol update`. `failed` holds
// the nodes whose state could not be set.
PowerReport ResumeFail(const Provisioner& p, const std::vector<std::string>& nodes);

// Appends "<RFC 3339 time> <action> <node>: <text>" to the log file and
// prints "plinth compute <action>: <node>: <text>" on stderr.
void LogTransition(const Provisioner& p, const std::string& action, const std::string& node,
                   const std::string& text);

// The pid of the slurmd that runs for `node` per its pid file, or 0 when the
// file is missing, stale, or names a process that is not `slurmd -N node`.
pid_t RunningSlurmd(const ProvisionedNode& node);

// The time-namespace offset (seconds, negative) that makes a child's
// /proc/uptime start near zero, given this host's uptime in seconds.
long BoottimeOffset(double host_uptime_seconds);

// How a node's slurmd is started: the command (argv[0] is the program's
// path) and the hostname of the UTS namespace the process layer creates for
// it before exec (process::Spec::hostname; empty: the host's namespace).
struct SlurmdLaunch {
  std::vector<std::string> argv;
  std::string hostname;
};

// `SETSID --fork --wait UNSHARE --time --boottime=OFFSET --fork -- SLURMD -f
// CONFIG -N NAME`, with hostname = node.hostname (node.name when that is
// empty) when own_uts, else empty. setsid moves unshare and slurmd out of
// the process layer's group before slurmd daemonizes (docs/providers/slurm.md).
SlurmdLaunch SlurmdCommand(const ProvisionedNode& node, const std::filesystem::path& setsid,
                           const std::filesystem::path& unshare, const std::filesystem::path& slurmd,
                           long boottime_offset, bool own_uts);

// Whether a /proc/PID/status text's CapEff line holds CAP_SYS_ADMIN (bit 21),
// which a UTS (and a time) namespace needs. False when there is no CapEff.
bool HasCapSysAdmin(std::string_view proc_status);

// Whether `name` can be a host name here: 1 to 64 bytes of letters, digits,
// '-', '_' and '.'.
bool ValidHostname(std::string_view name);

}  // namespace plinth::slurm
