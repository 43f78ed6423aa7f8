// The process layer over Boost.Process v2 (1.81, header-only, with
// std::filesystem: BOOST_PROCESS_USE_STD_FS is set for this target in
// CMakeLists.txt). Boost launches the child (fork, the init hooks, execve,
// the exec error reported through a pipe), watches it through a pidfd and
// reaps it; asio drives the pipes and the timers. What Boost 1.81 does not
// do, or does wrongly, is done here and marked so:
//  * process groups and signals to a group: there is no group API, so
//    ChildSetup calls setpgid in the child and the layer calls kill(-pgid);
//  * a failed exec calls exit() in the forked child (running the parent's
//    atexit handlers and flushing its stdio buffers twice) and leaves the
//    child unreaped: ChildSetup::on_exec_error calls _exit instead, and
//    Launch reaps it;
//  * close_all skips descriptors below the launcher's own error pipe:
//    ChildSetup marks every descriptor above 2 close-on-exec itself;
//  * basic_process::native_handle does not compile (no pidfd accessor).
#include "runtime/process/process.h"

#ifndef BOOST_PROCESS_USE_STD_FS
#error "runtime/process needs BOOST_PROCESS_USE_STD_FS (std::filesystem paths; no Boost.Filesystem library)"
#endif

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
// Boost 1.81's Process v2 needs these with BOOST_PROCESS_USE_STD_FS but
// includes them only without it (it names boost::optional, boost::decay and
// boost::is_convertible unqualified).
#include <boost/optional.hpp>
#include <boost/type_traits/decay.hpp>
#include <boost/type_traits/is_convertible.hpp>
// Then the library itself.
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/writable_pipe.hpp>
#include <boost/asio/write.hpp>
#include <boost/process/v2/posix/default_launcher.hpp>
#include <boost/process/v2/process.hpp>
#include <boost/process/v2/start_dir.hpp>
#include <boost/process/v2/stdio.hpp>
#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

extern char** environ;

namespace plinth::process {

namespace asio = boost::asio;
namespace bp = boost::process::v2;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kCancelPoll{50};

std::string ErrnoText(int e) {
  return std::error_code(e, std::system_category()).message();
}

// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.Release()) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.Release();
    }
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  int Release() { return std::exchange(fd_, -1); }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // Moves the descriptor above 2, so that dup2 onto the child's 0, 1 or 2
  // never finds it already there (a parent started with a standard
  // descriptor closed would otherwise hand the child a close-on-exec one).
  bool LiftAboveStdio() {
    if (fd_ > 2) return true;
    int moved = ::fcntl(fd_, F_DUPFD_CLOEXEC, 3);
    if (moved < 0) return false;
    Reset();
    fd_ = moved;
    return true;
  }

 private:
  int fd_ = -1;
};

// Close-on-exec from the start, so a child another thread forks meanwhile
// does not inherit it.
bool MakePipe(Fd& read_end, Fd& write_end, std::string* error) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    *error = "cannot create a pipe: " + ErrnoText(errno);
    return false;
  }
  read_end = Fd(p[0]);
  write_end = Fd(p[1]);
  if (!read_end.LiftAboveStdio() || !write_end.LiftAboveStdio()) {
    *error = "cannot create a pipe: " + ErrnoText(errno);
    return false;
  }
  return true;
}

bool OpenDevNull(Fd& fd, std::string* error) {
  fd = Fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0 || !fd.LiftAboveStdio()) {
    *error = "cannot open /dev/null: " + ErrnoText(errno);
    return false;
  }
  return true;
}

// Opens (creates, mode 0600) a file that a child's stdout and stderr are
// appended to; a symlink is refused (O_NOFOLLOW).
bool OpenOutputFile(const fs::path& path, Fd& fd, std::string* error) {
  fd = Fd(::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.get() < 0 || !fd.LiftAboveStdio()) {
    *error = "cannot open the output file " + path.string() + ": " + ErrnoText(errno);
    return false;
  }
  return true;
}

// Boost.Process init hooks for what every child needs. on_exec_setup runs in
// the forked child before execve: async-signal-safe calls only.
struct ChildSetup {
  bool die_with_parent = false;
  pid_t parent = 0;                // the starter's pid, for the PR_SET_PDEATHSIG race
  int cgroup_procs = -1;           // an open cgroup.procs to join, or -1
  uint64_t address_space = 0;      // RLIMIT_AS, or 0
  const char* hostname = nullptr;  // a UTS namespace with this hostname, or none
  size_t hostname_size = 0;

  bp::error_code on_exec_setup(bp::posix::default_launcher&, const fs::path&, const char* const*) {
    // Its own process group, so that signals reach its descendants too.
    // Boost.Process v2 has no process-group support of its own.
    if (::setpgid(0, 0) != 0) return bp::error_code(errno, bp::system_category());
    if (die_with_parent) {
      if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return bp::error_code(errno, bp::system_category());
      if (::getppid() != parent) ::_exit(127);  // the starter died before the prctl
    }
    if (cgroup_procs >= 0) {
      // "0" moves the writing process (cgroup v2).
      if (::write(cgroup_procs, "0", 1) != 1) return bp::error_code(errno, bp::system_category());
    }
    if (hostname) {
      if (::unshare(CLONE_NEWUTS) != 0 || ::sethostname(hostname, hostname_size) != 0)
        return bp::error_code(errno, bp::system_category());
    }
    if (address_space > 0) {
      struct rlimit rl {};
      rl.rlim_cur = rl.rlim_max = static_cast<rlim_t>(address_space);
      if (::setrlimit(RLIMIT_AS, &rl) != 0) return bp::error_code(errno, bp::system_category());
    }
    // Default dispositions and an empty mask: a parent that ignores SIGPIPE
    // or blocks SIGTERM in this thread must not make the child unkillable.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; ++s) {
      if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);  // invalid numbers fail harmlessly
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    // Boost 1.81's close_all leaves the descriptors between 2 and its error
    // pipe open; marking all of them close-on-exec here closes them at
    // execve and keeps the error pipe working until then.
    ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    return {};
  }

  // Boost 1.81 calls exit() after a failed exec (the errno has already gone
  // to the parent through the launcher's pipe); _exit runs nothing of the
  // parent's. Variadic because 1.81 detects this hook with a five-argument
  // signature but calls it with four.
  template <typename... A>
  void on_exec_error(A&&...) {
    ::_exit(127);
  }
};

// Blocks SIGPIPE in the calling thread while the layer writes to a child's
// stdin, so a child that exits without reading turns into EPIPE, not into
// the death of Plinth; a SIGPIPE raised meanwhile is consumed.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlock() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      timespec zero{0, 0};
      sigtimedwait(&pipe_, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;

 private:
  sigset_t pipe_, old_;
  bool was_pending_ = false;
};

void Wipe(std::string& s) {
  if (!s.empty()) explicit_bzero(s.data(), s.size());
  s.clear();
}

// Sends `sig` to the child's whole group. The group id is the child's pid.
// After the child itself is reaped this is still safe: while any member is
// left the id stays reserved, and with none left kill finds nothing (a new
// group with the same id would need the kernel's pid counter to wrap around
// first).
void SignalGroup(pid_t pgid, int sig) {
  if (pgid > 0) ::kill(-pgid, sig);
}

// The groups of the children started and not reaped yet, for
// SignalAllChildren (lock-free atomics: readable from a signal handler).
std::array<std::atomic<pid_t>, kMaxTrackedChildren> live_groups{};

void Track(pid_t pgid) {
  for (auto& slot : live_groups) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pgid)) return;
  }
}

void Untrack(pid_t pgid) {
  for (auto& slot : live_groups) {
    pid_t mine = pgid;
    if (slot.compare_exchange_strong(mine, 0)) return;
  }
}

// Untracks a group when the scope that reaps its leader ends.
struct Tracked {
  pid_t pgid;
  explicit Tracked(pid_t p) : pgid(p) { Track(p); }
  ~Tracked() { Untrack(pgid); }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;
};

// Starts spec.program with `in`, `out` and `err` as its descriptors 0, 1 and
// 2. Wipes the environment (both the spec's values and the "K=V" copies)
// whether or not it started.
std::optional<bp::process> Launch(asio::io_context& ctx, Spec& spec, int in, int out, int err,
                                  std::string* error) {
  fs::path program = spec.program;
  std::error_code fec;
  if (!program.empty() && program.is_relative()) program = fs::absolute(program, fec);

  std::vector<std::string> lines;
  lines.reserve(spec.env.size());
  for (auto& [key, value] : spec.env) {
    std::string line;
    line.reserve(key.size() + 1 + value.size());
    line.append(key).append(1, '=').append(value);
    lines.push_back(std::move(line));
  }
  std::vector<const char*> envp;
  envp.reserve(lines.size() + 1);
  for (const auto& l : lines) envp.push_back(l.c_str());
  envp.push_back(nullptr);

  ChildSetup setup;
  setup.die_with_parent = spec.die_with_parent;
  setup.parent = ::getpid();
  setup.address_space = spec.address_space_limit;
  if (!spec.hostname.empty()) {
    // HOST_NAME_MAX; sethostname refuses longer names (EINVAL).
    if (spec.hostname.size() > 64 || spec.hostname.find('\0') != std::string::npos) {
      *error = "cannot start " + program.string() + ": hostname '" + spec.hostname +
               "' is not a valid host name: use 1 to 64 bytes without NUL";
      for (auto& l : lines) Wipe(l);
      WipeEnvironment(spec.env);
      return std::nullopt;
    }
    setup.hostname = spec.hostname.c_str();
    setup.hostname_size = spec.hostname.size();
  }
  Fd cgroup_procs;
  if (!spec.cgroup.empty()) {
    fs::path procs = spec.cgroup / "cgroup.procs";
    cgroup_procs = Fd(::open(procs.c_str(), O_WRONLY | O_CLOEXEC));
    if (cgroup_procs.get() < 0) {
      *error =
          "cannot start " + program.string() + ": cannot open " + procs.string() + ": " + ErrnoText(errno);
      for (auto& l : lines) Wipe(l);
      WipeEnvironment(spec.env);
      return std::nullopt;
    }
    setup.cgroup_procs = cgroup_procs.get();
  }

  bp::posix::default_launcher launcher;
  launcher.env = envp.data();
  bp::error_code ec;
  std::optional<bp::process> proc;
  std::string failure;
  if (program.empty()) {
    failure = "cannot start a child process: no program was given";
  } else {
    try {
      asio::any_io_executor exec = ctx.get_executor();
      bp::process_stdio stdio{{in}, {out}, {err}};
      if (spec.cwd.empty()) {
        proc.emplace(launcher(exec, ec, program, spec.args, stdio, setup));
      } else {
        proc.emplace(launcher(exec, ec, program, spec.args, stdio, bp::process_start_dir(spec.cwd), setup));
      }
    } catch (const std::exception& e) {
      // The child may run although its handle could not be made (pidfd_open).
      if (launcher.pid > 0) {
        SignalGroup(launcher.pid, SIGKILL);
        while (::waitpid(launcher.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
      }
      proc.reset();
      failure = "cannot start " + program.string() + ": " + e.what();
    }
  }
  for (auto& l : lines) Wipe(l);
  WipeEnvironment(spec.env);
  if (failure.empty() && ec) {
    // Boost leaves a child whose exec failed unreaped.
    if (launcher.pid > 0) {
      while (::waitpid(launcher.pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    proc.reset();
    failure = "cannot start " + program.string() + ": " + ec.message();
    if (!spec.hostname.empty() && ec.value() == EPERM)
      failure += " (a UTS namespace of its own, for hostname '" + spec.hostname +
                 "', needs CAP_SYS_ADMIN: run as root)";
    struct stat st;
    if (!spec.cwd.empty()) {
      if (::stat(spec.cwd.c_str(), &st) != 0) {
        failure = "cannot start " + program.string() + " in " + spec.cwd.string() + ": " + ErrnoText(errno);
      } else if (!S_ISDIR(st.st_mode)) {
        failure = "cannot start " + program.string() + " in " + spec.cwd.string() + ": " + ErrnoText(ENOTDIR);
      }
    }
  }
  if (!failure.empty()) {
    *error = std::move(failure);
    return std::nullopt;
  }
  return proc;
}

// Decodes a wait status into the outcome.
void SetExit(Outcome& o, int raw_status, bool wait_failed) {
  if (wait_failed) return;  // exit_code -1, signal 0: unknown
  if (WIFEXITED(raw_status)) o.exit_code = WEXITSTATUS(raw_status);
  if (WIFSIGNALED(raw_status)) o.signal = WTERMSIG(raw_status);
}

// Appends to a tail buffer that keeps the last `keep` bytes (amortised: it
// is cut back only when twice as long).
void AppendTail(std::string& tail, bool& truncated, std::string_view chunk, size_t keep) {
  tail.append(chunk);
  if (tail.size() > 2 * keep + 4096) {
    tail.erase(0, tail.size() - keep);
    truncated = true;
  }
}

void TrimTail(std::string& tail, bool& truncated, size_t keep) {
  if (tail.size() > keep) {
    tail.erase(0, tail.size() - keep);
    truncated = true;
  }
}

std::string SignalName(int sig) {
  if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

std::string DurationText(milliseconds d) {
  if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
  return std::to_string(d.count()) + " ms";
}

std::string LastLine(std::string_view text) {
  auto is_space = [](char c) { return c == '\n' || c == '\r' || c == ' ' || c == '\t'; };
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  size_t nl = text.rfind('\n');
  if (nl != std::string_view::npos) text.remove_prefix(nl + 1);
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  constexpr size_t kMax = 500;
  if (text.size() > kMax) return std::string(text.substr(0, kMax)) + "...";
  return std::string(text);
}

// ------------------------------------------------------------------ Run

// The event loop of one Run: three pipes, the exit, and the timers.
class Runner {
 public:
  Runner(asio::io_context& ctx, bp::process& proc, Spec& spec, Outcome& o, Clock::time_point started)
      : ctx_(ctx),
        proc_(proc),
        spec_(spec),
        o_(o),
        pgid_(proc.id()),
        started_(started),
        in_(ctx),
        out_(ctx),
        err_(ctx),
        deadline_timer_(ctx),
        grace_timer_(ctx),
        poll_timer_(ctx),
        drain_timer_(ctx) {}

  // Runs the child to its end. Rethrows what on_stdout_line (or asio) threw,
  // after killing the group and reaping the child.
  void Go(Fd in, Fd out, Fd err) {
    SigpipeBlock no_sigpipe;
    try {
      if (in.get() >= 0) in_.assign(in.Release());
      if (out.get() >= 0) {  // not with Spec::output_file
        out_.assign(out.Release());
        ReadOut();
      }
      if (err.get() >= 0) {
        err_.assign(err.Release());
        ReadErr();
      }
      if (in_.is_open()) {
        asio::async_write(in_, asio::buffer(spec_.stdin_data), [this](bp::error_code, size_t) { CloseIn(); });
      }
      proc_.async_wait([this](bp::error_code ec, int) { OnExit(ec); });
      if (spec_.deadline.count() > 0) {
        deadline_timer_.expires_after(spec_.deadline);
        deadline_timer_.async_wait([this](bp::error_code ec) {
          if (!ec) BeginStop(/*timeout=*/true);
        });
      }
      if (spec_.cancel) PollCancel();
      std::stop_callback on_stop(spec_.stop,
                                 [this] { asio::post(ctx_, [this] { BeginStop(/*timeout=*/false); }); });
      ctx_.run();
    } catch (...) {
      SignalGroup(pgid_, SIGKILL);
      bp::error_code ec;
      if (!reaped_) proc_.wait(ec);
      throw;
    }
    if (!pending_line_.empty()) Deliver();
    TrimTail(o_.err, o_.err_truncated, spec_.max_stderr);
  }

 private:
  void ReadOut() {
    out_.async_read_some(asio::buffer(out_buf_), [this](bp::error_code ec, size_t n) {
      if (n > 0) OnOut(std::string_view(out_buf_.data(), n));
      if (ec) return Closed(out_);
      ReadOut();
    });
  }

  void ReadErr() {
    err_.async_read_some(asio::buffer(err_buf_), [this](bp::error_code ec, size_t n) {
      if (n > 0) AppendTail(o_.err, o_.err_truncated, std::string_view(err_buf_.data(), n), spec_.max_stderr);
      if (ec) return Closed(err_);
      ReadErr();
    });
  }

  void OnOut(std::string_view chunk) {
    const size_t max = spec_.max_stdout;
    if (!spec_.on_stdout_line) {
      size_t room = max - std::min(max, o_.out.size());
      if (chunk.size() > room) {
        o_.out_truncated = true;
        chunk = chunk.substr(0, room);
      }
      o_.out.append(chunk);
      return;
    }
    size_t start = 0;
    while (start <= chunk.size()) {
      size_t nl = chunk.find('\n', start);
      std::string_view piece =
          chunk.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
      size_t room = max - std::min(max, pending_line_.size());
      if (piece.size() > room) {
        o_.out_truncated = true;
        piece = piece.substr(0, room);
      }
      pending_line_.append(piece);
      if (nl == std::string_view::npos) break;
      Deliver();
      start = nl + 1;
    }
  }

  void Deliver() {
    spec_.on_stdout_line(pending_line_);
    pending_line_.clear();
  }

  void Closed(asio::readable_pipe& pipe) {
    bp::error_code ignored;
    pipe.close(ignored);
    if (reaped_ && !out_.is_open() && !err_.is_open()) drain_timer_.cancel();
  }

  void CloseIn() {
    bp::error_code ignored;
    in_.close(ignored);
  }

  void OnExit(bp::error_code ec) {
    reaped_ = true;
    o_.elapsed = std::chrono::duration_cast<milliseconds>(Clock::now() - started_);
    SetExit(o_, proc_.native_exit_code(), static_cast<bool>(ec));
    // What is left of the group dies with the child: a daemonised
    // grandchild must not outlive the run.
    SignalGroup(pgid_, SIGKILL);
    deadline_timer_.cancel();
    grace_timer_.cancel();
    poll_timer_.cancel();
    CloseIn();
    if (!out_.is_open() && !err_.is_open()) return;
    // Only a process that left the group can still hold the pipes now.
    drain_timer_.expires_after(kDrainAfterExit);
    drain_timer_.async_wait([this](bp::error_code ec) {
      if (ec) return;
      bp::error_code ignored;
      out_.close(ignored);
      err_.close(ignored);
    });
  }

  void PollCancel() {
    poll_timer_.expires_after(kCancelPoll);
    poll_timer_.async_wait([this](bp::error_code ec) {
      if (ec || reaped_) return;
      if (spec_.cancel->load()) return BeginStop(/*timeout=*/false);
      PollCancel();
    });
  }

  // SIGTERM to the group now, SIGKILL kill_grace later.
  void BeginStop(bool timeout) {
    if (reaped_ || stopping_) return;
    stopping_ = true;
    (timeout ? o_.timed_out : o_.cancelled) = true;
    deadline_timer_.cancel();
    poll_timer_.cancel();
    SignalGroup(pgid_, SIGTERM);
    grace_timer_.expires_after(spec_.kill_grace);
    grace_timer_.async_wait([this](bp::error_code ec) {
      if (!ec && !reaped_) SignalGroup(pgid_, SIGKILL);
    });
  }

  asio::io_context& ctx_;
  bp::process& proc_;
  Spec& spec_;
  Outcome& o_;
  const pid_t pgid_;
  const Clock::time_point started_;
  asio::writable_pipe in_;
  asio::readable_pipe out_, err_;
  asio::steady_timer deadline_timer_, grace_timer_, poll_timer_, drain_timer_;
  std::array<char, 65536> out_buf_;
  std::array<char, 16384> err_buf_;
  std::string pending_line_;
  bool reaped_ = false;
  bool stopping_ = false;
};

}  // namespace

// ------------------------------------------------------------------ Outcome

std::string Outcome::Describe(std::string_view what) const {
  if (!started) return start_error.empty() ? "cannot start " + std::string(what) : start_error;
  std::string s(what);
  if (signal != 0) {
    s += " was killed by " + SignalName(signal);
  } else if (exit_code >= 0) {
    s += " exited with status " + std::to_string(exit_code);
  } else {
    s += " ended with an unknown status";
  }
  if (timed_out) {
    s += " after its " + DurationText(deadline) + " deadline";
  } else if (cancelled) {
    s += " after it was cancelled";
  } else if (stopped) {
    s += " when it was stopped";
  }
  std::string line = LastLine(err);
  if (!line.empty()) s += ": " + line;
  return s;
}

// ------------------------------------------------------------------ free functions

Outcome Run(Spec spec) {
  Outcome o;
  o.deadline = spec.deadline;
  if (spec.stop.stop_requested() || (spec.cancel && spec.cancel->load())) {
    o.cancelled = true;
    o.start_error = "did not start " + spec.program.string() + ": cancelled";
    WipeEnvironment(spec.env);
    return o;
  }
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  bool piped =
      spec.stdin_data.empty() ? OpenDevNull(in_r, &o.start_error) : MakePipe(in_r, in_w, &o.start_error);
  if (piped && !spec.output_file.empty()) {
    piped = OpenOutputFile(spec.output_file, out_w, &o.start_error);
    if (piped) {
      err_w = Fd(::fcntl(out_w.get(), F_DUPFD_CLOEXEC, 3));
      if (err_w.get() < 0)
        piped = false, o.start_error = "cannot duplicate a descriptor: " + ErrnoText(errno);
    }
  } else if (piped) {
    piped = MakePipe(out_r, out_w, &o.start_error) && MakePipe(err_r, err_w, &o.start_error);
  }
  if (!piped) {
    WipeEnvironment(spec.env);
    return o;
  }
  try {
    asio::io_context ctx;
    auto started = Clock::now();
    auto proc = Launch(ctx, spec, in_r.get(), out_w.get(), err_w.get(), &o.start_error);
    in_r.Reset();
    out_w.Reset();
    err_w.Reset();
    if (!proc) return o;
    o.started = true;
    Tracked tracked(proc->id());
    if (spec.on_start) spec.on_start(proc->id());
    Runner runner(ctx, *proc, spec, o, started);
    runner.Go(std::move(in_w), std::move(out_r), std::move(err_r));
  } catch (const std::exception& e) {
    if (o.started) throw;
    o.start_error = "cannot start " + spec.program.string() + ": " + e.what();
  }
  return o;
}

pid_t StartDaemon(Spec spec, std::string* error) {
  fs::path program = spec.program;
  std::error_code fec;
  if (!program.empty() && program.is_relative()) program = fs::absolute(program, fec);
  auto fail = [&](std::string why) {
    WipeEnvironment(spec.env);
    *error = std::move(why);
    return pid_t{0};
  };
  if (program.empty()) return fail("cannot start a daemon: no program was given");
  if (spec.output_file.empty())
    return fail("cannot start " + program.string() + ": a daemon needs a log file");
  Fd null_in, log, report_r, report_w;
  std::string why;
  if (!OpenDevNull(null_in, &why) || !OpenOutputFile(spec.output_file, log, &why) ||
      !MakePipe(report_r, report_w, &why)) {
    return fail(why);
  }
  // Everything the children need is built before fork: after it, in a
  // process that may have other threads, only async-signal-safe calls.
  std::vector<std::string> lines;
  for (auto& [key, value] : spec.env) lines.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& l : lines) envp.push_back(l.data());
  envp.push_back(nullptr);
  std::string prog = program.string();
  std::vector<std::string> argv_s{prog};
  for (const auto& a : spec.args) argv_s.push_back(a);
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string cwd = spec.cwd.string();
  const int in_fd = null_in.get(), log_fd = log.get(), rep_fd = report_w.get();
  const bool set_ids = spec.uid.has_value() || spec.gid.has_value();
  const uid_t run_uid = spec.uid.value_or(::getuid());
  const gid_t run_gid = spec.gid.value_or(::getgid());

  // Records on the report pipe: {'P', pid} from the intermediate child,
  // {'E', errno} from the daemon when it cannot exec (or set itself up).
  struct Record {
    int32_t tag;
    int32_t value;
  };
  pid_t mid = ::fork();
  if (mid < 0) {
    for (auto& l : lines) Wipe(l);
    return fail("cannot start " + prog + ": fork: " + ErrnoText(errno));
  }
  if (mid == 0) {
    auto report = [&](int32_t tag, int32_t value) {
      Record r{tag, value};
      (void)!::write(rep_fd, &r, sizeof r);
    };
    pid_t daemon = ::fork();
    if (daemon < 0) {
      report('E', errno);
      ::_exit(127);
    }
    if (daemon > 0) {
      report('P', daemon);
      ::_exit(0);
    }
    // The daemon leads its own session (and group): its pid is both ids.
    if (::setsid() < 0) {
      report('E', errno);
      ::_exit(127);
    }
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int sg = 1; sg < NSIG; ++sg) {
      if (sg != SIGKILL && sg != SIGSTOP) ::sigaction(sg, &dfl, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (::dup2(in_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) {
      report('E', errno);
      ::_exit(127);
    }
    // Another user: groups first, then the gid, then the uid (after which
    // nothing can be changed back).
    if (set_ids && (::setgroups(1, &run_gid) != 0 || ::setgid(run_gid) != 0 || ::setuid(run_uid) != 0)) {
      report('E', errno);
      ::_exit(127);
    }
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      report('E', errno);
      ::_exit(127);
    }
    ::syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
    ::execve(argv[0], argv.data(), envp.data());
    report('E', errno);
    ::_exit(127);
  }
  for (auto& l : lines) Wipe(l);
  WipeEnvironment(spec.env);
  report_w.Reset();
  while (::waitpid(mid, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_t daemon = 0;
  int exec_errno = 0;
  for (;;) {
    Record r{};
    ssize_t n = ::read(report_r.get(), &r, sizeof r);
    if (n < 0 && errno == EINTR) continue;
    if (n != static_cast<ssize_t>(sizeof r)) break;  // EOF: the daemon has exec'd (or died)
    if (r.tag == 'P') daemon = r.value;
    if (r.tag == 'E') exec_errno = r.value;
  }
  if (exec_errno != 0) {
    *error = "cannot start " + prog + ": " + ErrnoText(exec_errno);
    return 0;
  }
  if (daemon <= 0) {
    *error = "cannot start " + prog + ": the daemon's pid was not reported";
    return 0;
  }
  return daemon;
}

std::optional<UnixUser> LookUpUser(const std::string& name) {
  struct passwd pw {};
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  if (name.empty() || ::getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
    return std::nullopt;
  return UnixUser{found->pw_uid, found->pw_gid};
}

bool MayRunAs(const UnixUser& user) {
  return ::geteuid() == 0 || user.uid == ::geteuid();
}

std::optional<uint64_t> ProcessStartTime(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return std::nullopt;
  std::string_view text(buf, static_cast<size_t>(n));
  size_t paren = text.rfind(')');  // the command name may hold spaces and ')'
  if (paren == std::string_view::npos) return std::nullopt;
  text.remove_prefix(paren + 2);  // now at field 3 (state)
  // Fields 3.. separated by spaces; the start time is field 22.
  int field = 3;
  size_t pos = 0;
  while (field < 22) {
    pos = text.find(' ', pos);
    if (pos == std::string_view::npos) return std::nullopt;
    ++pos;
    ++field;
  }
  uint64_t v = 0;
  while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') v = v * 10 + (text[pos++] - '0');
  if (text.size() > 0 && text[0] == 'Z')
    return std::nullopt;  // a zombie has ended; only its reaper is missing
  return v;
}

int SignalGroupMembers(pid_t pgid, pid_t sid, uint64_t min_start, int sig) {
  if (pgid <= 1) return 0;
  int signalled = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (::getpgid(pid) != pgid) continue;
    if (sid != 0 && ::getsid(pid) != sid) continue;
    auto start = ProcessStartTime(pid);
    if (!start || (min_start != 0 && *start < min_start)) continue;
    if (::kill(pid, sig) == 0) ++signalled;
  }
  return signalled;
}

void SignalAllChildren(int sig) {
  for (auto& slot : live_groups) {
    pid_t pgid = slot.load();
    if (pgid > 0) ::kill(-pgid, sig);
  }
}

std::optional<fs::path> FindExecutable(std::string_view name, std::string_view path_list) {
  auto executable = [](const fs::path& p) {
    struct stat st;
    return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
  };
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string_view::npos) {
    std::error_code ec;
    fs::path p = fs::absolute(fs::path(name), ec);
    if (ec || !executable(p)) return std::nullopt;
    return p.lexically_normal();
  }
  size_t pos = 0;
  for (;;) {
    size_t colon = path_list.find(':', pos);
    std::string_view dir =
        path_list.substr(pos, colon == std::string_view::npos ? std::string_view::npos : colon - pos);
    if (!dir.empty() && dir.front() == '/') {
      fs::path p = fs::path(dir) / fs::path(name);
      if (executable(p)) return p.lexically_normal();
    }
    if (colon == std::string_view::npos) break;
    pos = colon + 1;
  }
  return std::nullopt;
}

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

void DropStateCredentials(std::map<std::string, std::string>& env) {
  for (const char* key : {"PLINTH_BACKEND", "PGPASSWORD"}) {
    if (auto it = env.find(key); it != env.end()) {
      Wipe(it->second);
      env.erase(it);
    }
  }
}

void WipeEnvironment(std::map<std::string, std::string>& env) {
  for (auto& [key, value] : env) Wipe(value);
  env.clear();
}

// ------------------------------------------------------------------ Child

struct Child::State {
  // Declared before everything registered with it, so it is destroyed last.
  asio::io_context ctx;
  std::optional<bp::process> proc;
  asio::writable_pipe in{ctx};
  asio::readable_pipe out{ctx};
  pid_t pid = -1;
  milliseconds kill_grace{0};
  size_t max_stdout = 0;
  size_t max_stderr = 0;
  Clock::time_point started;

  // stdout: bytes read and not yet returned are rbuf[rpos...].
  std::array<char, 65536> chunk;
  std::string rbuf;
  size_t rpos = 0;
  bool read_pending = false;
  bool out_eof = false;
  bool skipping = false;  // dropping the rest of an over-long line
  bool draining = false;  // Stop: keep at most max_stdout bytes
  bool out_truncated = false;

  // The direct child.
  bool reaped = false;
  bool wait_failed = false;
  int raw_status = 0;
  Clock::time_point reaped_at;
  std::optional<Outcome> outcome;  // after Stop

  // stderr, read on its own thread and context.
  asio::io_context err_ctx;
  asio::readable_pipe err{err_ctx};
  std::array<char, 16384> err_chunk;
  mutable std::mutex mu;
  std::condition_variable err_cv;
  std::string err_tail;  // guarded by mu
  bool err_truncated = false;
  bool err_eof = false;
  std::thread err_thread;

  size_t Buffered() const { return rbuf.size() - rpos; }

  void ArmRead() {
    if (read_pending || out_eof) return;
    read_pending = true;
    out.async_read_some(asio::buffer(chunk), [this](bp::error_code ec, size_t n) {
      read_pending = false;
      if (n > 0) {
        if (rpos > 0 && rpos >= rbuf.size() / 2) {
          rbuf.erase(0, rpos);
          rpos = 0;
        }
        rbuf.append(chunk.data(), n);
        if (draining && Buffered() > max_stdout) {
          rbuf.resize(rpos + max_stdout);
          out_truncated = true;
        }
      }
      // A cancelled read (a ReadLine timeout) leaves the pipe as it was.
      if (ec && ec != asio::error::operation_aborted) out_eof = true;
    });
  }

  void CloseOut() {
    bp::error_code ignored;
    out.close(ignored);
    out_eof = true;
  }

  void CloseIn() {
    bp::error_code ignored;
    in.close(ignored);
  }

  void OnExit(bp::error_code ec) {
    reaped = true;
    reaped_at = Clock::now();
    wait_failed = static_cast<bool>(ec);
    raw_status = proc->native_exit_code();
    SignalGroup(pid, SIGKILL);  // what is left of the group dies with the child
    Untrack(pid);
    CloseIn();
  }

  // Runs one handler; without a deadline it waits as long as it takes. False
  // when the deadline passed first.
  bool RunOne(std::optional<Clock::time_point> until) {
    for (;;) {
      if (ctx.stopped()) ctx.restart();
      size_t n = until ? ctx.run_one_until(*until) : ctx.run_one();
      if (n > 0) return true;
      if (until && Clock::now() >= *until) return false;
      if (!until && ctx.stopped())
        return false;  // nothing left to wait for (not reached: the exit wait is pending until reaped)
    }
  }

  void RunUntilReaped(std::optional<Clock::time_point> until) {
    while (!reaped) {
      ArmRead();
      if (!RunOne(until)) return;
    }
  }

  // After the exit: read stdout to its end, or until only an escaped
  // grandchild could be holding it.
  void DrainOut() {
    Clock::time_point until = reaped_at + kDrainAfterExit;
    while (!out_eof) {
      ArmRead();
      if (!RunOne(until)) CloseOut();
    }
    if (read_pending) {
      CloseOut();
      while (read_pending) RunOne(std::nullopt);
    }
  }

  void ReadErr() {
    err.async_read_some(asio::buffer(err_chunk), [this](bp::error_code ec, size_t n) {
      std::lock_guard lock(mu);
      if (n > 0) AppendTail(err_tail, err_truncated, std::string_view(err_chunk.data(), n), max_stderr);
      if (ec) {
        err_eof = true;
        err_cv.notify_all();
        return;
      }
      ReadErr();
    });
  }

  // Waits for stderr's end until `until`, then stops its thread.
  void StopStderr(std::optional<Clock::time_point> until) {
    if (until) {
      std::unique_lock lock(mu);
      err_cv.wait_until(lock, *until, [this] { return err_eof; });
    }
    err_ctx.stop();
    if (err_thread.joinable()) err_thread.join();
  }

  // Takes one line (or reports an over-long one) from the buffer.
  std::optional<ReadResult> TakeLine(size_t max_len) {
    if (skipping) {
      size_t nl = rbuf.find('\n', rpos);
      if (nl == std::string::npos) {
        rbuf.clear();
        rpos = 0;
        return std::nullopt;
      }
      rpos = nl + 1;
      skipping = false;
    }
    size_t nl = rbuf.find('\n', rpos);
    size_t len = (nl == std::string::npos ? rbuf.size() : nl) - rpos;
    if (len > max_len) {
      if (nl == std::string::npos) {
        rbuf.clear();
        rpos = 0;
        skipping = true;
      } else {
        rpos = nl + 1;
      }
      return ReadResult{ReadResult::Kind::kTooLong, {}};
    }
    if (nl == std::string::npos) return std::nullopt;
    ReadResult r{ReadResult::Kind::kLine, rbuf.substr(rpos, len)};
    rpos = nl + 1;
    return r;
  }
};

Child::Child(std::unique_ptr<State> state) : s_(std::move(state)) {}

std::unique_ptr<Child> Child::Start(Spec spec, std::string* error) {
  auto s = std::make_unique<State>();
  s->kill_grace = spec.kill_grace;
  s->max_stdout = spec.max_stdout;
  s->max_stderr = spec.max_stderr;
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  if (!MakePipe(in_r, in_w, error) || !MakePipe(out_r, out_w, error) || !MakePipe(err_r, err_w, error)) {
    WipeEnvironment(spec.env);
    return nullptr;
  }
  State* st = s.get();
  try {
    s->started = Clock::now();
    auto proc = Launch(s->ctx, spec, in_r.get(), out_w.get(), err_w.get(), error);
    in_r.Reset();
    out_w.Reset();
    err_w.Reset();
    if (!proc) return nullptr;
    s->proc.emplace(std::move(*proc));
    s->pid = s->proc->id();
    Track(s->pid);
    s->in.assign(in_w.Release());
    s->out.assign(out_r.Release());
    s->err.assign(err_r.Release());
    s->proc->async_wait([st](bp::error_code ec, int) { st->OnExit(ec); });
    s->ReadErr();
    s->err_thread = std::thread([st] { st->err_ctx.run(); });
  } catch (const std::exception& e) {
    if (s->pid > 0 && !s->reaped) {
      SignalGroup(s->pid, SIGKILL);
      bp::error_code ec;
      s->proc->wait(ec);
      Untrack(s->pid);
    }
    *error = "cannot start " + spec.program.string() + ": " + e.what();
    return nullptr;
  }
  return std::unique_ptr<Child>(new Child(std::move(s)));
}

Child::~Child() {
  if (!s_) return;
  State& s = *s_;
  if (s.proc && !s.reaped) {
    SignalGroup(s.pid, SIGKILL);
    s.RunUntilReaped(std::nullopt);
  }
  s.StopStderr(std::nullopt);
}

bool Child::WriteAll(std::string_view data, milliseconds timeout) {
  State& s = *s_;
  if (s.outcome || !s.in.is_open()) return false;
  SigpipeBlock no_sigpipe;
  bool done = false;
  bp::error_code result;
  asio::async_write(s.in, asio::buffer(data.data(), data.size()), [&](bp::error_code ec, size_t) {
    done = true;
    result = ec;
  });
  auto until = Clock::now() + timeout;
  while (!done) {
    if (s.Buffered() < s.max_stdout) s.ArmRead();
    if (!s.RunOne(until)) break;
  }
  if (!done) {
    s.CloseIn();  // cancels the write
    while (!done) s.RunOne(std::nullopt);
    return false;
  }
  if (result) {
    s.CloseIn();
    return false;
  }
  return true;
}

ReadResult Child::ReadLine(milliseconds timeout, size_t max_len) {
  State& s = *s_;
  auto until = Clock::now() + timeout;
  for (;;) {
    if (auto r = s.TakeLine(max_len)) return std::move(*r);
    if (s.out_eof) {
      std::string rest = s.skipping ? std::string() : s.rbuf.substr(s.rpos);
      s.rbuf.clear();
      s.rpos = 0;
      s.skipping = false;
      if (rest.empty()) return {ReadResult::Kind::kEof, {}};
      return {ReadResult::Kind::kLine, std::move(rest)};  // length checked by TakeLine above
    }
    s.ArmRead();
    auto wait_until = until;
    if (s.reaped) wait_until = std::min(until, s.reaped_at + kDrainAfterExit);
    if (!s.RunOne(wait_until)) {
      if (wait_until < until || (s.reaped && Clock::now() >= s.reaped_at + kDrainAfterExit)) {
        s.CloseOut();  // only an escaped grandchild holds stdout now
        continue;
      }
      return {ReadResult::Kind::kTimeout, {}};
    }
  }
}

std::string Child::StderrTail() const {
  std::lock_guard lock(s_->mu);
  std::string tail = s_->err_tail;
  if (tail.size() > s_->max_stderr) tail.erase(0, tail.size() - s_->max_stderr);
  return tail;
}

bool Child::Running() {
  State& s = *s_;
  if (s.reaped) return false;
  siginfo_t info{};
  if (::waitid(P_PID, static_cast<id_t>(s.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
      info.si_pid == s.pid) {
    s.RunUntilReaped(std::nullopt);  // it has exited: the pending wait reaps it now
    return false;
  }
  if (s.ctx.stopped()) s.ctx.restart();
  s.ctx.poll();
  return !s.reaped;
}

Outcome Child::Stop(milliseconds grace) {
  State& s = *s_;
  if (s.outcome) return *s.outcome;
  Outcome o;
  o.started = true;
  s.CloseIn();
  s.draining = true;
  if (s.Buffered() > s.max_stdout) {  // keep the first max_stdout unread bytes
    s.rbuf.resize(s.rpos + s.max_stdout);
    s.out_truncated = true;
  }
  s.RunUntilReaped(Clock::now() + grace);
  if (!s.reaped) {
    o.stopped = true;
    SignalGroup(s.pid, SIGTERM);
    s.RunUntilReaped(Clock::now() + s.kill_grace);
  }
  if (!s.reaped) {
    SignalGroup(s.pid, SIGKILL);
    s.RunUntilReaped(std::nullopt);
  }
  s.DrainOut();
  s.StopStderr(s.reaped_at + kDrainAfterExit);
  SetExit(o, s.raw_status, s.wait_failed);
  o.elapsed = std::chrono::duration_cast<milliseconds>(s.reaped_at - s.started);
  o.out = s.skipping ? std::string() : s.rbuf.substr(s.rpos);
  o.out_truncated = s.out_truncated;
  s.rbuf.clear();
  s.rpos = 0;
  {
    std::lock_guard lock(s.mu);
    o.err = s.err_tail;
    o.err_truncated = s.err_truncated;
  }
  TrimTail(o.err, o.err_truncated, s.max_stderr);
  s.outcome = o;
  return o;
}

pid_t Child::pid() const {
  return s_->pid;
}

}  // namespace plinth::process
