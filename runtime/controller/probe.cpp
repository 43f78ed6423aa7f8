// Health probes (see probe.h and docs/services.md).
#include "runtime/controller/probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "runtime/process/process.h"

namespace plinth::controller {

namespace {

using SteadyClock = std::chrono::steady_clock;

std::string Seconds(int s) {
  return std::to_string(s) + " s";
}

// A socket closed when it goes out of scope.
class Socket {
 public:
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() {
    if (fd_ >= 0) ::close(fd_);
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// The address of host:port, or false when host is not an address literal.
bool ParseAddress(const std::string& host, int port, sockaddr_storage* addr, socklen_t* len) {
  std::memset(addr, 0, sizeof *addr);
  auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    *len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

std::string HostPort(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

int RemainingMs(SteadyClock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// Waits for `events` on fd until the deadline: 1 ready, 0 timed out, -1 error.
int WaitFd(int fd, short events, SteadyClock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    return r == 0 ? 0 : 1;
  }
}

// Connects a non-blocking socket to host:port before the deadline. On
// failure returns -1 with *why set.
int Connect(const ProbeSpec& spec, const std::string& host, SteadyClock::time_point deadline,
            std::string* why) {
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!ParseAddress(host, spec.port, &addr, &len)) {
    *why = "probe host '" + host + "' is not an IP address";
    return -1;
  }
  int fd = ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::string("cannot create a socket: ") + std::strerror(errno);
    return -1;
  }
  const std::string where = HostPort(host, spec.port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), len);
  if (rc != 0 && errno != EINPROGRESS) {
    int e = errno;
    ::close(fd);
    *why = (e == ECONNREFUSED ? std::string("connection refused") : std::string(std::strerror(e))) + " on " +
           where;
    return -1;
  }
  if (rc != 0) {
    int w = WaitFd(fd, POLLOUT, deadline);
    if (w <= 0) {
      ::close(fd);
      *why = w == 0 ? "timed out after " + Seconds(spec.timeout_s) + " connecting to " + where
                    : std::string("poll: ") + std::strerror(errno);
      return -1;
    }
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) {
      ::close(fd);
      *why = (err == ECONNREFUSED ? std::string("connection refused") : std::string(std::strerror(err))) +
             " on " + where;
      return -1;
    }
  }
  return fd;
}

// Printable and short: for quoting what a server sent.
std::string Quote(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return "'" + out + "'";
}

ProbeResult HttpProbe(const ProbeSpec& spec, const std::string& host) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(spec.timeout_s);
  std::string why;
  int fd = Connect(spec, host, deadline, &why);
  if (fd < 0) return {false, why};
  Socket sock(fd);
  const std::string where = HostPort(host, spec.port);
  const std::string what = "GET " + spec.path + " on " + where;
  std::string request = "GET " + spec.path + " HTTP/1.1\r\nHost: " + where +
                        "\r\nUser-Agent: plinth-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n";
  size_t sent = 0;
  while (sent < request.size()) {
    ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int w = WaitFd(fd, POLLOUT, deadline);
      if (w == 0) return {false, "timed out after " + Seconds(spec.timeout_s) + " sending " + what};
      if (w < 0) return {false, std::string("poll: ") + std::strerror(errno)};
      continue;
    }
    return {false, std::string("cannot send ") + what + ": " + std::strerror(errno)};
  }
  // Only the status line matters; it must come within the timeout.
  std::string got;
  char buf[1024];
  while (got.find("\r\n") == std::string::npos && got.size() < 4096) {
    int w = WaitFd(fd, POLLIN, deadline);
    if (w == 0)
      return {false, "timed out after " + Seconds(spec.timeout_s) + " waiting for the response to " + what};
    if (w < 0) return {false, std::string("poll: ") + std::strerror(errno)};
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0)
      return {false, std::string("cannot read the response to ") + what + ": " + std::strerror(errno)};
    if (n == 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  size_t eol = got.find("\r\n");
  std::string_view line(got.data(), eol == std::string::npos ? got.size() : eol);
  if (line.empty()) return {false, "the connection closed without a response to " + what};
  // "HTTP/1.x NNN reason"
  if (line.substr(0, 5) != "HTTP/" || line.size() < 12 || line[8] != ' ' || !std::isdigit(line[9]) ||
      !std::isdigit(line[10]) || !std::isdigit(line[11])) {
    return {false, "malformed status line " + Quote(line) + " in the response to " + what};
  }
  int status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
  if (status >= 200 && status < 400) return {true, "HTTP " + std::to_string(status)};
  return {false, "HTTP " + std::to_string(status) + " from " + what};
}

ProbeResult TcpProbe(const ProbeSpec& spec, const std::string& host) {
  auto deadline = SteadyClock::now() + std::chrono::seconds(spec.timeout_s);
  std::string why;
  int fd = Connect(spec, host, deadline, &why);
  if (fd < 0) return {false, why};
  ::close(fd);
  return {true, "connected to " + HostPort(host, spec.port)};
}

// Replaces every longer value of `env` in `text` with "***": an exec probe's
// stderr may echo what it was given, and env may hold secrets.
std::string Scrub(std::string text, const std::map<std::string, std::string>& env) {
  for (const auto& [key, value] : env) {
    if (value.size() < 6) continue;
    for (size_t at = text.find(value); at != std::string::npos; at = text.find(value, at + 3))
      text.replace(at, value.size(), "***");
  }
  return text;
}

ProbeResult ExecProbe(const ProbeSpec& spec, const ProbeTarget& target) {
  const std::string& name = spec.argv.front();
  process::Spec ps;
  if (name.find('/') != std::string::npos) {
    ps.program = name;
  } else {
    auto path = target.env.find("PATH");
    const char* own = std::getenv("PATH");
    std::string list = path != target.env.end() ? path->second : (own ? own : "");
    auto found = process::FindExecutable(name, list);
    if (!found) return {false, "exec probe command '" + name + "' was not found on PATH"};
    ps.program = *found;
  }
  ps.args.assign(spec.argv.begin() + 1, spec.argv.end());
  ps.env = target.env;
  ps.cwd = target.cwd;
  ps.deadline = std::chrono::seconds(spec.timeout_s);
  ps.kill_grace = std::chrono::seconds(1);
  ps.max_stdout = 4096;
  ps.max_stderr = 4096;
  process::Outcome o = process::Run(std::move(ps));
  if (o.ok()) return {true, "exited with status 0"};
  return {false, Scrub(o.Describe("exec probe " + name), target.env)};
}

}  // namespace

std::string ValidateProbe(const ProbeSpec& spec, bool liveness_like) {
  if (spec.kind == ProbeKind::kHttp || spec.kind == ProbeKind::kTcp) {
    if (spec.port < 1 || spec.port > 65535)
      return "probe port " + std::to_string(spec.port) + " is out of range: give a port from 1 to 65535";
  }
  if (spec.kind == ProbeKind::kHttp) {
    if (spec.path.empty() || spec.path[0] != '/')
      return "http probe path '" + spec.path + "' must start with '/'";
    for (char c : spec.path) {
      if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
        return "http probe path must not hold spaces or control characters: percent-encode them";
    }
  }
  if (spec.kind == ProbeKind::kExec && (spec.argv.empty() || spec.argv[0].empty()))
    return "exec probe has no command: give argv with the program first";
  if (spec.period_s < 1) return "probe period_s must be at least 1";
  if (spec.timeout_s < 1) return "probe timeout_s must be at least 1";
  if (spec.initial_delay_s < 0) return "probe initial_delay_s must not be negative";
  if (spec.success_threshold < 1 || spec.failure_threshold < 1)
    return "probe success_threshold and failure_threshold must be at least 1";
  if (liveness_like && spec.success_threshold != 1)
    return "liveness and startup probes must have success_threshold 1 (as in Kubernetes)";
  return "";
}

ProbeResult RunProbe(const ProbeSpec& spec, const ProbeTarget& target) {
  try {
    std::string invalid = ValidateProbe(spec, false);
    if (!invalid.empty()) return {false, invalid};
    switch (spec.kind) {
      case ProbeKind::kHttp: return HttpProbe(spec, target.host);
      case ProbeKind::kTcp: return TcpProbe(spec, target.host);
      case ProbeKind::kExec: return ExecProbe(spec, target);
    }
    return {false, "unknown probe kind"};
  } catch (const std::exception& e) {
    return {false, std::string("probe failed: ") + e.what()};
  }
}

std::string_view ProbeStateName(ProbeState s) {
  switch (s) {
    case ProbeState::kUnknown: return "unknown";
    case ProbeState::kOk: return "ok";
    case ProbeState::kFailed: return "failed";
  }
  return "unknown";
}

ProbeTracker::ProbeTracker(ProbeSpec spec, Clock::TimePoint started)
    : spec_(std::move(spec)), first_due_(started + std::chrono::seconds(spec_.initial_delay_s)) {}

bool ProbeTracker::Due(Clock::TimePoint now) const {
  if (now < first_due_) return false;
  return !ran_ || now >= last_run_ + std::chrono::seconds(spec_.period_s);
}

ProbeState ProbeTracker::Record(const ProbeResult& result, Clock::TimePoint began) {
  ran_ = true;
  last_run_ = began;
  last_message_ = result.message;
  if (result.ok) {
    ++successes_;
    failures_ = 0;
    if (successes_ >= spec_.success_threshold) state_ = ProbeState::kOk;
  } else {
    ++failures_;
    successes_ = 0;
    if (failures_ >= spec_.failure_threshold) state_ = ProbeState::kFailed;
  }
  return state_;
}

}  // namespace plinth::controller
