// The one process layer: every child process Plinth starts goes through here
// (docs/process.md). Built on Boost.Process v2; nothing outside this folder
// forks, spawns or execs.
//
// What every child gets, from Run and Child::Start alike:
//  * argv only, never a shell: argv[0] is `program`, then `args` verbatim.
//    `program` is a path (a relative one is taken against the caller's
//    working directory); it is never searched on PATH. FindExecutable does
//    that lookup, explicitly.
//  * exactly the environment in `env`: nothing is inherited unless the caller
//    copies it (CurrentEnvironment()). Secrets belong there and nowhere else
//    (never in args). The layer's own "K=V" copies are wiped (explicit_bzero)
//    right after the spawn, and so are the values of `spec.env`, which is
//    taken by value: move it in and no copy outlives the spawn.
//  * `cwd` as its working directory (empty: the caller's);
//  * stdin from /dev/null unless `stdin_data` (Run) or the stdin pipe (Child);
//  * its own process group (setpgid before exec), so every signal the layer
//    sends goes to the whole group and no grandchild that stays in the group
//    outlives the child: when the direct child exits, the rest of its group is
//    SIGKILLed. (A grandchild that calls setsid leaves the group and cannot be
//    reached; reading its inherited pipes then stops kDrainAfterExit after the
//    child's exit instead of hanging.)
//  * default signal dispositions, an empty signal mask and no inherited file
//    descriptors beyond 0, 1 and 2, whatever the calling thread had.
//
// Run runs a child to completion: bounded capture of stdout (whole up to
// max_stdout, or line by line to on_stdout_line) and of stderr (its last
// max_stderr bytes), a deadline (SIGTERM to the group, SIGKILL after
// kill_grace) and cancellation through `stop` or `cancel` (the same two
// steps). Run blocks the calling thread; many threads may each run their own.
//
// Child is a long-lived child with pipes on stdin and stdout (an
// out-of-process provider speaking JSON-RPC). A Child is used by one thread at
// a time: its owner serialises the calls. Only its stderr is read in the
// background (a small thread keeps the last max_stderr bytes), so a child that
// writes much to stderr never blocks on it. `deadline`, `stdin_data`,
// `on_stdout_line`, `stop` and `cancel` do not apply to a Child; its owner
// bounds each call with a timeout and ends it with Stop or the destructor.
//
// Linux only (pidfd_open, close_range: kernel 5.11 or later).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace plinth::process {

// How long reading goes on after the direct child has exited and its group
// was killed: only a process that left the group (setsid) can still hold the
// pipes then, and it must not hold the caller too.
inline constexpr std::chrono::milliseconds kDrainAfterExit{500};

struct Spec {
  std::filesystem::path program;           // an executable's path; see FindExecutable
  std::vector<std::string> args;           // argv[1...], passed verbatim
  std::map<std::string, std::string> env;  // the child's whole environment
  std::filesystem::path cwd;               // empty: the caller's working directory

  // Run only. Zero: no deadline. At the deadline the group gets SIGTERM, and
  // SIGKILL kill_grace later if the child has not exited (Child::Stop uses
  // kill_grace the same way).
  std::chrono::milliseconds deadline{0};
  std::chrono::milliseconds kill_grace{5000};

  // stdout is kept whole up to max_stdout bytes (Outcome::out_truncated says
  // whether more came, which is read and dropped so the child never blocks).
  // With on_stdout_line, each complete line (without its '\n') goes to the
  // callback instead and nothing is kept; a final unterminated line is passed
  // too, and a line longer than max_stdout is passed cut to max_stdout bytes
  // (out_truncated). The callback runs on Run's thread and must not throw.
  // stderr keeps its last max_stderr bytes.
  size_t max_stdout = 16 << 20;
  size_t max_stderr = 256 << 10;
  std::function<void(std::string_view)> on_stdout_line;

  // Run only: written to stdin, which is then closed; empty: /dev/null. A
  // child that exits or closes stdin before reading all of it is not an error.
  std::string stdin_data;

  // Run only: cancellation. A stop request on `stop`, or `*cancel` becoming
  // true (polled every 50 ms), ends the child as the deadline does
  // (Outcome::cancelled). Requested before the start: the child never starts.
  std::stop_token stop;
  const std::atomic<bool>* cancel = nullptr;

  // StartDaemon only: the user and group the daemon runs as (its
  // supplementary groups become just `gid`; set before chdir and exec, so the
  // working directory and program must be reachable by that user). Needs
  // privilege to change; unset: the caller's.
  std::optional<uid_t> uid;
  std::optional<gid_t> gid;

  // Run and StartDaemon: stdout and stderr both appended to this file
  // instead of captured (opened O_APPEND | O_NOFOLLOW, created with mode
  // 0600; a symlink there is an error). Outcome::out and err stay empty and
  // on_stdout_line is not called.
  std::filesystem::path output_file;

  // Run only: the child is SIGKILLed when the thread that started it ends
  // (PR_SET_PDEATHSIG, set in the child before exec; a parent already gone
  // by then makes the child exit 127 instead of running). Whoever starts
  // such a child on a worker thread keeps that thread until Run returns,
  // which Run does anyway.
  bool die_with_parent = false;

  // Run only: a cgroup v2 directory the child joins before exec (it writes
  // "0" to <cgroup>/cgroup.procs); empty: none. The directory must exist and
  // be writable, else the child does not start (start_error names it).
  std::filesystem::path cgroup;

  // Run and Child::Start: the child gets a UTS namespace of its own whose
  // hostname is this (the NIS domain name stays the caller's), set before exec
  // (unshare(CLONE_NEWUTS) and sethostname in the child), and everything it
  // starts inherits it; empty: the caller's namespace. Needs CAP_SYS_ADMIN:
  // without it, or for a name that is not 1 to 64 bytes, the child does not
  // start (start_error says why).
  std::string hostname;

  // Run only: RLIMIT_AS (bytes) of the child, the fallback where no cgroup
  // can be used; 0: not limited.
  uint64_t address_space_limit = 0;

  // Run only: called on Run's thread right after the child started, with its
  // pid (also its group id), before Run waits for it; must not throw. The
  // compute agent records the pid here so another process can find the group.
  std::function<void(pid_t)> on_start;
};

struct Outcome {
  bool started = false;
  std::string start_error;  // when !started: "cannot start /x/y: No such file or directory"
  int exit_code = -1;       // when it exited (signal == 0)
  int signal = 0;           // the signal that ended it, or 0
  bool timed_out = false;   // Run's deadline passed and the group was signalled
  bool cancelled = false;   // Run was cancelled and the group was signalled
  bool stopped = false;     // Child::Stop had to signal it (it did not exit within grace)
  std::string out;          // Run: stdout, unless on_stdout_line; Child::Stop: stdout left unread
  bool out_truncated = false;
  std::string err;  // the last max_stderr bytes of stderr
  bool err_truncated = false;
  std::chrono::milliseconds deadline{0};  // the spec's, for Describe
  std::chrono::milliseconds elapsed{0};   // from the start to the exit

  // Started, exited with status 0, and not ended by the layer.
  bool ok() const { return started && signal == 0 && exit_code == 0 && !timed_out && !cancelled && !stopped; }

  // One line for a message, naming the child `what` ("restic"):
  //   "cannot start /x/y: No such file or directory"
  //   "restic exited with status 3: Fatal: unable to open config file"
  //   "restic was killed by SIGKILL after its 30 s deadline"
  //   "restic was killed by SIGSEGV: <last stderr line>"
  //   "restic exited with status 0"
  // The last non-empty stderr line is appended when there is one; the caller
  // scrubs `err` first if it may hold a secret.
  std::string Describe(std::string_view what) const;
};

// Runs `spec` to completion (or to its deadline or cancellation). Never
// throws; a child that could not start is reported in the outcome.
Outcome Run(Spec spec);

// Starts a detached daemon: a grandchild of this process (the intermediate
// child is reaped at once) in its own session (setsid), so it is neither a
// zombie of nor killed with its starter; stdin /dev/null, stdout and stderr
// appended to spec.output_file (required), argv and env as for Run (env is
// wiped after the spawn). Not tracked by SignalAllChildren. Returns its pid
// (also its session and group id), or 0 with *error ("cannot start /x/y:
// No such file or directory"). Uses program, args, env, cwd, output_file.
pid_t StartDaemon(Spec spec, std::string* error);

// A Unix account a child may run as (Spec::uid/gid).
struct UnixUser {
  uid_t uid = 0;
  gid_t gid = 0;  // its primary group
};
// Looks `name` up in the user database (getpwnam_r). nullopt when there is
// no such user; *why (optional) then says so in one line.
std::optional<UnixUser> LookUpUser(const std::string& name);
// Whether this process may run children as `user`: it is root, or `user` is
// its own uid.
bool MayRunAs(const UnixUser& user);

// The start time of a process (field 22 of /proc/PID/stat, clock ticks since
// boot), or nullopt when there is no such process. A pid together with its
// start time names one process: a reused pid has a later start time.
std::optional<uint64_t> ProcessStartTime(pid_t pid);

// Sends `sig` to every process whose group is `pgid`, whose session is
// `sid` (0: any) and that started at or after `min_start` (ProcessStartTime
// ticks; 0: any) — what is left of a group whose leader may be gone, never
// a process that merely reused the id. Returns how many were signalled.
int SignalGroupMembers(pid_t pgid, pid_t sid, uint64_t min_start, int sig);

// Sends `sig` to the group of every child of this process that Run or Child
// started and has not reaped yet. Async-signal-safe: for a handler that is
// about to _exit (a second Ctrl-C), so that no child goes on changing the
// world once its caller is gone. Tracks up to kMaxTrackedChildren at once
// (more are started, just not reached by this).
inline constexpr size_t kMaxTrackedChildren = 1024;
void SignalAllChildren(int sig);

// The first `name` on `path_list` (colon-separated directories, as $PATH)
// that is a regular file the caller may execute. Empty and relative entries
// are skipped (no implicit current directory). A name with a '/' is not
// searched: it is returned, made absolute, when it is executable.
std::optional<std::filesystem::path> FindExecutable(std::string_view name, std::string_view path_list);

// A copy of this process's environment, for a caller that chooses to pass
// some or all of it on.
std::map<std::string, std::string> CurrentEnvironment();

// Overwrites the values (explicit_bzero), then clears the map.
void WipeEnvironment(std::map<std::string, std::string>& env);
// Removes the state backend's credentials (PLINTH_BACKEND, whose URL may hold
// a password, and libpq's PGPASSWORD) from an environment Plinth passes to a
// program it runs for a resource, a backup or an agent: those never need the
// state database (docs/state.md, "Backends").
void DropStateCredentials(std::map<std::string, std::string>& env);

// The result of Child::ReadLine.
struct ReadResult {
  enum class Kind {
    kLine,     // `line` holds one line without its '\n'
    kEof,      // stdout is closed: the child closed it or exited (and nothing is left)
    kTimeout,  // no complete line within the timeout; what was read is kept for the next call
    kTooLong,  // the line exceeds max_len; it is skipped, and the next call returns the line after it
  };
  Kind kind = Kind::kEof;
  std::string line;
};

class Child {
 public:
  // Starts `spec` with pipes on stdin and stdout. Null, with `*error` set
  // ("cannot start /x/y: No such file or directory"), when it could not start.
  static std::unique_ptr<Child> Start(Spec spec, std::string* error);

  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // Kills the group if the child still runs and reaps it: never leaves a
  // zombie, never blocks longer than kDrainAfterExit on an escaped grandchild.
  ~Child();

  // Writes all of `data` to the child's stdin. False when stdin is closed
  // (the child exited, closed it, or Stop ran) or `timeout` passed; after a
  // false return stdin is closed, since part of `data` may have been written.
  // While it waits, stdout is read into the line buffer (up to max_stdout
  // bytes), so a child that writes while it reads cannot deadlock the pair.
  bool WriteAll(std::string_view data, std::chrono::milliseconds timeout);

  // One line from stdout; see ReadResult. A final line without '\n' is
  // returned as a line before kEof. `max_len` bounds the line, not the buffer
  // of lines already read.
  ReadResult ReadLine(std::chrono::milliseconds timeout, size_t max_len);

  // The last max_stderr bytes of stderr so far.
  std::string StderrTail() const;

  // Whether the direct child is still running; never blocks. Once it has
  // exited, its group is killed and it is reaped.
  bool Running();

  // Closes stdin, waits up to `grace` for the child to exit, then SIGTERMs
  // the group, then SIGKILLs it kill_grace later; reaps it. The outcome has
  // the exit status, the stderr tail and the stdout not yet read. Later calls
  // return the same outcome; other calls then fail (kEof, false).
  Outcome Stop(std::chrono::milliseconds grace);

  pid_t pid() const;

 private:
  struct State;
  explicit Child(std::unique_ptr<State> state);
  std::unique_ptr<State> s_;
};

}  // namespace plinth::process
