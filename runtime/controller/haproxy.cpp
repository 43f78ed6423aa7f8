#include "runtime/controller/haproxy.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "runtime/io/durable.h"
#include "runtime/process/process.h"

namespace plinth::controller {
namespace fs = std::filesystem;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

namespace {

constexpr milliseconds kCheckDeadline{30000};
constexpr milliseconds kStartDeadline{10000};
constexpr milliseconds kReloadDeadline{15000};
constexpr milliseconds kPollInterval{50};
constexpr size_t kMaxAnswer = 4u << 20;

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

// Host names and IPv4 literals: nothing that could end a word in haproxy.cfg.
bool IsHost(std::string_view h) {
  if (h.empty() || h.size() > 253) return false;
  return std::all_of(h.begin(), h.end(), [](char c) { return IsNameChar(c) && c != '_'; });
}

// A URL path: printable ASCII without space, quotes, backslash or '#'.
bool IsHttpPath(std::string_view p) {
  if (p.empty() || p[0] != '/' || p.size() > 1024) return false;
  return std::all_of(p.begin(), p.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\' && c != '#';
  });
}

// A path haproxy.cfg and the command line can hold unquoted.
bool IsPlainPath(const fs::path& p) {
  const std::string s = p.string();
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '"' && c != '\'' && c != '\\' && c != '#' && c != ',';
  });
}

std::string Quote(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

std::string FrontendName(const LbSpec& spec) {
  return "fe_" + SanitizeServerName(spec.name);
}
std::string BackendName(const LbSpec& spec) {
  return "be_" + SanitizeServerName(spec.name);
}

std::vector<std::string> SplitLines(std::string_view text) {
  std::vector<std::string> lines;
  std::string cur;
  for (char c : text) {
    if (c == '\n') {
      lines.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  if (!cur.empty()) lines.push_back(cur);
  return lines;
}

std::vector<std::string> Words(std::string_view line) {
  std::vector<std::string> words;
  std::istringstream in{std::string(line)};
  std::string w;
  while (in >> w) words.push_back(w);
  return words;
}

// The error lines of haproxy's output ("[ALERT]"), at most `max`; without
// any, its last non-empty lines.
std::string ErrorLines(std::string_view text, size_t max) {
  std::vector<std::string> lines = SplitLines(text);
  std::vector<std::string> picked;
  for (const std::string& l : lines) {
    if (l.rfind("[ALERT]", 0) != 0 || picked.size() >= max) continue;
    // "[ALERT]    (1234) : config : ..." -> "config : ..."
    size_t colon = l.find(") : ");
    picked.push_back(colon == std::string::npos ? l : l.substr(colon + 4));
  }
  if (picked.empty()) {
    for (auto it = lines.rbegin(); it != lines.rend() && picked.size() < max; ++it)
      if (!it->empty()) picked.insert(picked.begin(), *it);
  }
  std::string out;
  for (const std::string& l : picked) out += (out.empty() ? "" : "\n") + l;
  return out;
}

bool ReadWhole(const fs::path& p, std::string* out) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// Alive with this start time and not a zombie (nobody may reap a daemon
// whose parent is gone, so a dead master can linger as one).
bool Alive(pid_t pid, uint64_t start_time) {
  if (pid <= 0) return false;
  std::optional<uint64_t> st = process::ProcessStartTime(pid);
  if (!st || *st != start_time) return false;
  std::string stat;
  if (!ReadWhole("/proc/" + std::to_string(pid) + "/stat", &stat)) return false;
  size_t close = stat.rfind(')');
  if (close == std::string::npos || close + 2 >= stat.size()) return false;
  char state = stat[close + 2];
  return state != 'Z' && state != 'X';
}

// `show proc` on the master CLI: the master's reload and failure counts
// and the current workers' pids.
struct ProcInfo {
  int64_t reloads = -1;
  int64_t failed = -1;
  std::vector<pid_t> workers;
};

std::optional<ProcInfo> ParseShowProc(std::string_view text) {
  ProcInfo info;
  bool in_workers = false;
  for (const std::string& line : SplitLines(text)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      in_workers = line.rfind("# workers", 0) == 0;
      continue;
    }
    std::vector<std::string> w = Words(line);
    if (w.size() < 3) continue;
    try {
      if (w[1] == "master") {
        info.reloads = std::stoll(w[2]);
        info.failed = 0;
        for (size_t i = 3; i + 1 < w.size(); ++i)
          if (w[i] == "[failed:") info.failed = std::stoll(w[i + 1]);
      } else if (w[1] == "worker" && in_workers) {
        info.workers.push_back(static_cast<pid_t>(std::stol(w[0])));
      }
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  if (info.reloads < 0) return std::nullopt;
  return info;
}

std::vector<std::string> SplitCsv(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

int64_t ToInt(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (const std::exception&) {
    return 0;
  }
}

}  // namespace

std::string_view ServerAdminName(ServerAdmin state) {
  switch (state) {
    case ServerAdmin::kReady: return "ready";
    case ServerAdmin::kDrain: return "drain";
    case ServerAdmin::kMaint: return "maint";
  }
  return "ready";
}

std::string SanitizeServerName(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (char c : id) out += IsNameChar(c) ? c : '_';
  if (out.empty()) out = "_";
  return out;
}

std::optional<std::string> ValidateSpec(const LbSpec& spec) {
  const std::string lb = "load balancer " + Quote(spec.name);
  if (spec.name.empty()) return std::string("a load balancer needs a name");
  if (!IsHost(spec.bind_host))
    return lb + ": bind_host " + Quote(spec.bind_host) + " is not a host name or IPv4 address";
  if (spec.bind_port < 1 || spec.bind_port > 65535)
    return lb + ": bind_port " + std::to_string(spec.bind_port) + " is outside 1..65535";
  const LbHealth& h = spec.health;
  if (h.kind == LbHealth::Kind::kHttp && spec.protocol == LbProtocol::kTcp)
    return lb + ": an http health check needs protocol http; use a tcp health check";
  if (h.kind == LbHealth::Kind::kHttp && !IsHttpPath(h.path))
    return lb + ": health path " + Quote(h.path) +
           " must start with '/' and hold no space, quote, backslash, '#' or control character";
  if (h.interval_ms < 100 || h.interval_ms > 3'600'000)
    return lb + ": health interval " + std::to_string(h.interval_ms) + " ms is outside 100 ms..1 h";
  if (h.rise < 1 || h.rise > 100 || h.fall < 1 || h.fall > 100)
    return lb + ": health rise and fall must be within 1..100";
  if (spec.mode == LbMode::kFailover && spec.primary_region.empty())
    return lb + ": failover needs a primary_region";
  std::map<std::string, std::string> by_server;  // server name -> id
  std::set<std::string> ids;
  for (const LbBackend& b : spec.backends) {
    const std::string be = lb + ": backend " + Quote(b.id);
    if (b.id.empty()) return lb + ": a backend has an empty id";
    if (!ids.insert(b.id).second) return lb + ": backend id " + Quote(b.id) + " appears twice";
    std::string server = SanitizeServerName(b.id);
    auto [it, fresh] = by_server.emplace(server, b.id);
    if (!fresh)
      return lb + ": backends " + Quote(it->second) + " and " + Quote(b.id) + " both become server " +
             Quote(server) + "; rename one";
    if (!IsHost(b.host)) return be + ": host " + Quote(b.host) + " is not a host name or IPv4 address";
    if (b.port < 1 || b.port > 65535) return be + ": port " + std::to_string(b.port) + " is outside 1..65535";
    if (b.weight < 1 || b.weight > 256)
      return be + ": weight " + std::to_string(b.weight) + " is outside 1..256";
    if (spec.mode != LbMode::kRoundRobin && b.region.empty())
      return be + ": failover and latency modes need a region on every backend";
  }
  return std::nullopt;
}

std::vector<std::string> ActiveRegions(const LbSpec& spec, const LbRuntime& runtime) {
  std::set<std::string> regions;
  for (const LbBackend& b : spec.backends) regions.insert(b.region);
  switch (spec.mode) {
    case LbMode::kRoundRobin: return {regions.begin(), regions.end()};
    case LbMode::kFailover: return {spec.primary_region};
    case LbMode::kLatency: {
      // A region is a candidate when some backend of it is ready.
      std::set<std::string> serving;
      for (const LbBackend& b : spec.backends) {
        auto it = runtime.server_admin.find(b.id);
        if (it == runtime.server_admin.end() || it->second == ServerAdmin::kReady) serving.insert(b.region);
      }
      const std::string* best = nullptr;
      int64_t best_rtt = 0;
      for (const std::string& r : regions) {  // sorted: the first of equal RTTs wins
        auto it = runtime.region_rtt_us.find(r);
        if (it == runtime.region_rtt_us.end() || serving.count(r) == 0) continue;
        if (best == nullptr || it->second < best_rtt) {
          best = &r;
          best_rtt = it->second;
        }
      }
      if (best != nullptr) return {*best};
      if (!spec.primary_region.empty()) return {spec.primary_region};
      return {regions.begin(), regions.end()};
    }
  }
  return {};
}

std::string RenderConfig(const LbSpec& spec, const LbRuntime& runtime) {
  const bool http = spec.protocol == LbProtocol::kHttp;
  const std::vector<std::string> active = ActiveRegions(spec, runtime);
  std::ostringstream o;
  o << "# Generated by plinth for load balancer " << SanitizeServerName(spec.name)
    << ". Do not edit: plinth rewrites it.\n";
  o << "global\n"
    << "    master-worker\n"
    << "    stats socket " << (runtime.instance_dir / "admin.sock").string()
    << " mode 600 level admin expose-fd listeners\n"
    << "    stats timeout 30s\n"
    << "    hard-stop-after 30s\n"
    << "\n"
    << "defaults\n"
    << "    mode " << (http ? "http" : "tcp") << "\n"
    << "    timeout connect 5s\n"
    << "    timeout client 30s\n"
    << "    timeout server 30s\n"
    << "    timeout queue 10s\n";
  if (http) o << "    timeout http-request 10s\n";
  // Every retry goes to another server (redispatch 1), and there are enough
  // of them to try each server once: with HAProxy's default (redispatch on the
  // last retry only) the first three attempts hit the same dead server a second
  // apart and the last one could land on another dead replica of the same
  // region that no check had marked down yet.
  const size_t retries = std::max<size_t>(3, spec.backends.size());
  o << "    retries " << retries << "\n"
    << "    option redispatch 1\n";
  // HTTP: a request whose server closed without answering (a replica being
  // replaced or killed mid-request) is sent again to another server. This
  // resends POSTs too: fine for inference, documented for the rest.
  if (http) o << "    retry-on conn-failure empty-response response-timeout\n";
  o << ""
    << "\n"
    << "frontend " << FrontendName(spec) << "\n"
    << "    bind " << spec.bind_host << ":" << spec.bind_port << "\n"
    << "    default_backend " << BackendName(spec) << "\n"
    << "\n"
    << "backend " << BackendName(spec) << "\n"
    << "    balance roundrobin\n"
    << "    option allbackups\n";
  if (spec.health.kind == LbHealth::Kind::kHttp) {
    o << "    option httpchk GET " << spec.health.path << "\n"
      << "    http-check expect status 200-399\n";
  }
  // A connection a server refuses marks it down at once (observe layer4,
  // error-limit 1), and the request is retried on another server, a backup
  // when no active one is left (retries, redispatch): a replica or region that
  // dies costs no request, instead of failing them for fall x inter until the
  // health check notices. The health check brings it back (rise).
  o << "    default-server inter " << spec.health.interval_ms << " rise " << spec.health.rise << " fall "
    << spec.health.fall << " observe layer4 error-limit 1 on-error mark-down\n";
  // One line per server; the region name stays out of the file (it is not
  // sanitized), the order is the spec's.
  for (const LbBackend& b : spec.backends) {
    ServerAdmin admin = ServerAdmin::kReady;
    if (auto it = runtime.server_admin.find(b.id); it != runtime.server_admin.end()) admin = it->second;
    const bool backup = std::find(active.begin(), active.end(), b.region) == active.end();
    o << "    server " << SanitizeServerName(b.id) << " " << b.host << ":" << b.port << " check weight "
      << (admin == ServerAdmin::kDrain ? 0 : b.weight);
    if (backup) o << " backup";
    if (admin == ServerAdmin::kMaint) o << " disabled";
    o << "\n";
  }
  return o.str();
}

std::optional<int64_t> MeasureConnectRttUs(const std::string& host, int port, int samples,
                                           milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr)
    return std::nullopt;
  sockaddr_in addr{};
  std::memcpy(&addr, found->ai_addr, sizeof(addr));
  ::freeaddrinfo(found);
  std::vector<int64_t> rtts;
  for (int i = 0; i < std::max(1, samples); ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) break;
    const auto begin = SteadyClock::now();
    bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (!connected && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        connected = err == 0;
      }
    }
    const auto end = SteadyClock::now();
    ::close(fd);
    if (connected) rtts.push_back(std::chrono::duration_cast<std::chrono::microseconds>(end - begin).count());
  }
  if (rtts.empty()) return std::nullopt;
  std::sort(rtts.begin(), rtts.end());
  return std::max<int64_t>(1, rtts[rtts.size() / 2]);
}

std::map<std::string, int64_t> MeasureRegionRtt(const LbSpec& spec, int samples, milliseconds timeout) {
  std::map<std::string, int64_t> out;
  for (const LbBackend& b : spec.backends) {
    std::optional<int64_t> rtt = MeasureConnectRttUs(b.host, b.port, samples, timeout);
    if (!rtt) continue;
    auto [it, fresh] = out.emplace(b.region, *rtt);
    if (!fresh) it->second = std::min(it->second, *rtt);
  }
  return out;
}

nlohmann::json LbSpecJson(const LbSpec& spec) {
  nlohmann::json backends = nlohmann::json::array();
  for (const LbBackend& b : spec.backends)
    backends.push_back({{"id", b.id},
                        {"region", b.region},
                        {"host", b.host},
                        {"port", b.port},
                        {"weight", b.weight},
                        {"replica", b.replica}});
  const char* mode = spec.mode == LbMode::kFailover  ? "failover"
                     : spec.mode == LbMode::kLatency ? "latency"
                                                     : "round_robin";
  return {{"name", spec.name},
          {"service", spec.service},
          {"bind_host", spec.bind_host},
          {"bind_port", spec.bind_port},
          {"protocol", spec.protocol == LbProtocol::kHttp ? "http" : "tcp"},
          {"mode", mode},
          {"primary_region", spec.primary_region},
          {"health",
           {{"kind", spec.health.kind == LbHealth::Kind::kHttp ? "http" : "tcp"},
            {"path", spec.health.path},
            {"interval_ms", spec.health.interval_ms},
            {"rise", spec.health.rise},
            {"fall", spec.health.fall}}},
          {"backends", backends}};
}

std::optional<LbSpec> LbSpecFromJson(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("backends") || !j["backends"].is_array()) return std::nullopt;
  try {
    LbSpec s;
    s.name = j.value("name", "");
    s.service = j.value("service", "");
    s.bind_host = j.value("bind_host", "127.0.0.1");
    s.bind_port = j.value("bind_port", 0);
    s.protocol = j.value("protocol", "http") == "tcp" ? LbProtocol::kTcp : LbProtocol::kHttp;
    const std::string mode = j.value("mode", "round_robin");
    s.mode = mode == "failover"  ? LbMode::kFailover
             : mode == "latency" ? LbMode::kLatency
                                 : LbMode::kRoundRobin;
    s.primary_region = j.value("primary_region", "");
    const nlohmann::json h = j.value("health", nlohmann::json::object());
    s.health.kind = h.value("kind", "http") == "tcp" ? LbHealth::Kind::kTcp : LbHealth::Kind::kHttp;
    s.health.path = h.value("path", "/");
    s.health.interval_ms = h.value("interval_ms", 2000);
    s.health.rise = h.value("rise", 2);
    s.health.fall = h.value("fall", 3);
    for (const auto& b : j["backends"]) {
      LbBackend x;
      x.id = b.value("id", "");
      x.region = b.value("region", "");
      x.host = b.value("host", "127.0.0.1");
      x.port = b.value("port", 0);
      x.weight = b.value("weight", 1);
      x.replica = b.value("replica", "");
      s.backends.push_back(std::move(x));
    }
    return s;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

HaproxyInstance::HaproxyInstance(fs::path dir, fs::path haproxy)
    : dir_(std::move(dir)), haproxy_(std::move(haproxy)) {
  io::MakeDirs(dir_, 0700);
  ::chmod(dir_.c_str(), 0700);
  std::string recorded;
  if (ReadWhole(dir_ / "spec.json", &recorded)) {
    if (auto s = LbSpecFromJson(nlohmann::json::parse(recorded, nullptr, false))) spec_ = std::move(*s);
  }
  if (!ReadWhole(dir_ / "instance", &recorded)) return;
  std::istringstream in(recorded);
  long long pid = 0;
  unsigned long long start = 0;
  if (!(in >> pid >> start)) return;
  if (Alive(static_cast<pid_t>(pid), start)) {
    pid_ = static_cast<pid_t>(pid);
    start_time_ = start;
  }
}

bool HaproxyInstance::Running() const {
  return Alive(pid_, start_time_);
}

void HaproxyInstance::Forget() {
  pid_ = 0;
  start_time_ = 0;
  std::error_code ec;
  fs::remove(dir_ / "instance", ec);
}

std::string HaproxyInstance::LogTail() const {
  std::string log;
  if (!ReadWhole(dir_ / "haproxy.log", &log)) return "";
  if (log.size() > 64 * 1024) log.erase(0, log.size() - 64 * 1024);
  return log;
}

std::optional<std::string> HaproxyInstance::Command(const std::string& socket_name,
                                                    const std::string& command, std::string* answer,
                                                    milliseconds timeout) const {
  answer->clear();
  const std::string path = (dir_ / socket_name).string();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path))
    return "socket path " + path + " is too long for a UNIX socket; use a shorter instance directory";
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return std::string("cannot create a socket: ") + std::strerror(errno);
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  const auto deadline = SteadyClock::now() + timeout;
  auto wait = [&](short events) -> bool {
    for (;;) {
      auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(left));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) return false;
    }
  };
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN)
      return "cannot connect to " + path + ": " + std::strerror(errno);
    if (!wait(POLLOUT)) return "cannot connect to " + path + ": timed out";
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return "cannot connect to " + path + ": " + std::strerror(err);
  }
  const std::string line = command + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT)) return "writing to " + path + " timed out";
    } else {
      return "cannot write to " + path + ": " + std::strerror(errno);
    }
  }
  // The master CLI answers once the client has finished sending.
  ::shutdown(fd, SHUT_WR);
  char buf[8192];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n > 0) {
      if (answer->size() + static_cast<size_t>(n) > kMaxAnswer)
        return "the answer from " + path + " is too long";
      answer->append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return std::nullopt;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait(POLLIN))
        return "no answer from " + path + " within " + std::to_string(timeout.count()) + " ms";
    } else {
      return "cannot read from " + path + ": " + std::strerror(errno);
    }
  }
}

std::optional<std::string> HaproxyInstance::Apply(const LbSpec& spec, LbRuntime runtime) {
  if (auto err = ValidateSpec(spec)) return err;
  if (!IsPlainPath(dir_))
    return "instance directory " + dir_.string() +
           " holds a character haproxy.cfg cannot take unquoted; use another";
  runtime.instance_dir = dir_;
  std::map<std::string, ServerAdmin> admin;
  for (const LbBackend& b : spec.backends) {
    if (auto it = runtime.server_admin.find(b.id); it != runtime.server_admin.end()) {
      admin[b.id] = it->second;
    } else if (auto old = admin_.find(b.id); old != admin_.end()) {
      admin[b.id] = old->second;
    }
  }
  runtime.server_admin = admin;
  const std::string text = RenderConfig(spec, runtime);

  const fs::path candidate = dir_ / "haproxy.cfg.new";
  const fs::path current = dir_ / "haproxy.cfg";
  const char* stage = nullptr;
  if (int e = io::WriteFileAtomic(candidate, text, 0600, &stage))
    return std::string("cannot ") + (stage ? stage : "write") + " " + candidate.string() + ": " +
           std::strerror(e);
  process::Spec check;
  check.program = haproxy_;
  check.args = {"-c", "-f", candidate.string()};
  check.cwd = dir_;
  check.deadline = kCheckDeadline;
  process::Outcome checked = process::Run(std::move(check));
  if (!checked.started) return checked.start_error;
  if (!checked.ok()) {
    return "haproxy rejected the configuration of load balancer " + Quote(spec.name) +
           " (the running one is kept; the candidate is " + candidate.string() + "):\n" +
           ErrorLines(checked.out + "\n" + checked.err, 5);
  }

  std::string old_text;
  const bool had_old = ReadWhole(current, &old_text);
  const bool running = Running();
  if (running && had_old && old_text == text) {
    spec_ = spec;
    admin_ = std::move(admin);
    RecordSpec();
    return std::nullopt;
  }
  if (::rename(candidate.c_str(), current.c_str()) != 0)
    return "cannot rename " + candidate.string() + " to " + current.string() + ": " + std::strerror(errno);
  io::SyncDir(dir_);
  std::optional<std::string> err = running ? Reload() : Start();
  if (err) {
    // Whatever runs (the old configuration, or nothing) is what haproxy.cfg says.
    if (had_old) {
      io::WriteFileAtomic(current, old_text, 0600);
    } else {
      std::error_code ec;
      fs::remove(current, ec);
    }
    return "load balancer " + Quote(spec.name) + ": " + *err;
  }
  spec_ = spec;
  admin_ = std::move(admin);
  RecordSpec();
  return std::nullopt;
}

void HaproxyInstance::RecordSpec() {
  // Best effort: without it a later object cannot gate servers by id, which
  // SetServerState then says.
  if (spec_) io::WriteFileAtomic(dir_ / "spec.json", LbSpecJson(*spec_).dump() + "\n", 0600);
}

std::optional<std::string> HaproxyInstance::Start() {
  std::error_code ec;
  const uintmax_t log_offset =
      fs::exists(dir_ / "haproxy.log", ec) ? fs::file_size(dir_ / "haproxy.log", ec) : 0;
  process::Spec spec;
  spec.program = haproxy_;
  spec.args = {"-W",
               "-S",
               (dir_ / "master.sock").string() + ",mode,600",
               "-f",
               (dir_ / "haproxy.cfg").string(),
               "-p",
               (dir_ / "haproxy.pid").string()};
  spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}};
  spec.cwd = dir_;
  spec.output_file = dir_ / "haproxy.log";
  std::string error;
  pid_t pid = process::StartDaemon(std::move(spec), &error);
  if (pid <= 0) return error;
  std::optional<uint64_t> start = process::ProcessStartTime(pid);
  if (!start) start = 0;
  pid_ = pid;
  start_time_ = *start;
  const std::string record = std::to_string(pid) + " " + std::to_string(*start) + "\n";
  if (int e = io::WriteFileAtomic(dir_ / "instance", record, 0600)) {
    Stop(milliseconds(0));
    return "cannot record the haproxy instance in " + (dir_ / "instance").string() + ": " + std::strerror(e);
  }
  auto since_start = [&]() {
    std::string all;
    ReadWhole(dir_ / "haproxy.log", &all);
    return ErrorLines(all.size() > log_offset ? std::string_view(all).substr(log_offset) : std::string_view(),
                      5);
  };
  const auto deadline = SteadyClock::now() + kStartDeadline;
  for (;;) {
    if (!Running()) {
      Forget();
      return "haproxy exited at start:\n" + since_start();
    }
    std::string answer;
    if (!Command("master.sock", "show proc", &answer, milliseconds(1000))) {
      std::optional<ProcInfo> info = ParseShowProc(answer);
      std::string stat;
      if (info && !info->workers.empty() && !Command("admin.sock", "show info", &stat, milliseconds(1000)))
        return std::nullopt;
    }
    if (SteadyClock::now() > deadline) {
      Stop(milliseconds(0));
      return "haproxy did not become ready within " + std::to_string(kStartDeadline.count() / 1000) +
             " s:\n" + since_start();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<std::string> HaproxyInstance::Reload() {
  std::string answer;
  if (auto err = Command("master.sock", "show proc", &answer))
    return "cannot reach the haproxy master: " + *err;
  std::optional<ProcInfo> before = ParseShowProc(answer);
  if (!before) return "cannot read the haproxy master's process list";
  std::error_code ec;
  const uintmax_t log_offset = fs::file_size(dir_ / "haproxy.log", ec);
  if (auto err = Command("master.sock", "reload", &answer)) return "cannot reload haproxy: " + *err;
  const auto deadline = SteadyClock::now() + kReloadDeadline;
  for (;;) {
    if (!Running()) return "haproxy exited during the reload:\n" + ErrorLines(LogTail(), 5);
    if (!Command("master.sock", "show proc", &answer, milliseconds(1000))) {
      std::optional<ProcInfo> now = ParseShowProc(answer);
      if (now && now->reloads > before->reloads) {
        if (now->failed > 0) {
          std::string all;
          ReadWhole(dir_ / "haproxy.log", &all);
          return "haproxy refused the reload; the previous configuration keeps serving:\n" +
                 ErrorLines(all.size() > log_offset ? std::string_view(all).substr(log_offset) : "", 5);
        }
        bool fresh = std::any_of(now->workers.begin(), now->workers.end(), [&](pid_t w) {
          return std::find(before->workers.begin(), before->workers.end(), w) == before->workers.end();
        });
        std::string info;
        if (fresh && !Command("admin.sock", "show info", &info, milliseconds(1000))) return std::nullopt;
      }
    }
    if (SteadyClock::now() > deadline)
      return "haproxy did not finish reloading within " + std::to_string(kReloadDeadline.count() / 1000) +
             " s";
    std::this_thread::sleep_for(kPollInterval);
  }
}

std::optional<std::string> HaproxyInstance::SetServerState(const std::string& backend_id, ServerAdmin state) {
  if (!spec_) return "no configuration was applied through this instance yet; call Apply first";
  auto it = std::find_if(spec_->backends.begin(), spec_->backends.end(),
                         [&](const LbBackend& b) { return b.id == backend_id; });
  if (it == spec_->backends.end())
    return "load balancer " + Quote(spec_->name) + " has no backend " + Quote(backend_id);
  const std::string target = BackendName(*spec_) + "/" + SanitizeServerName(backend_id);
  std::vector<std::string> commands = {"set server " + target + " state " +
                                       std::string(ServerAdminName(state))};
  // A drained server is rendered with weight 0; ready gives it its weight back.
  if (state == ServerAdmin::kReady)
    commands.push_back("set weight " + target + " " + std::to_string(it->weight));
  for (const std::string& command : commands) {
    std::string answer;
    if (auto err = Command("admin.sock", command, &answer)) return err;
    for (const std::string& line : SplitLines(answer))
      if (!line.empty()) return "haproxy refused \"" + command + "\": " + line;
  }
  admin_[backend_id] = state;
  return std::nullopt;
}

std::optional<std::string> HaproxyInstance::ServerStates(std::vector<LbServerState>* out) const {
  out->clear();
  if (!Running()) return std::string("haproxy is not running in ") + dir_.string();
  std::string answer;
  if (auto err = Command("admin.sock", "show stat", &answer)) return err;
  std::vector<std::string> lines = SplitLines(answer);
  if (lines.empty() || lines[0].rfind("# ", 0) != 0) return std::string("unexpected answer to \"show stat\"");
  std::vector<std::string> header = SplitCsv(lines[0].substr(2));
  auto column = [&](std::string_view name) -> int {
    for (size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  const int px = column("pxname"), sv = column("svname"), status = column("status"), scur = column("scur"),
            stot = column("stot"), bck = column("bck"), check = column("check_status");
  std::vector<int> responses;  // HTTP responses by class: requests answered
  for (const char* c : {"hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"})
    if (column(c) >= 0) responses.push_back(column(c));
  if (px < 0 || sv < 0 || status < 0)
    return std::string("\"show stat\" lacks the pxname, svname or status column");
  const std::string backend = spec_ ? BackendName(*spec_) : "";
  auto field = [](const std::vector<std::string>& row, int i) {
    return i >= 0 && i < (int)row.size() ? row[i] : "";
  };
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    std::vector<std::string> row = SplitCsv(lines[i]);
    const std::string name = field(row, sv);
    if (name == "FRONTEND" || name == "BACKEND") continue;
    if (!backend.empty() && field(row, px) != backend) continue;
    LbServerState s;
    s.server = name;
    s.backend_id = name;
    if (spec_) {
      for (const LbBackend& b : spec_->backends)
        if (SanitizeServerName(b.id) == name) s.backend_id = b.id;
    }
    s.status = field(row, status);
    s.up = s.status.rfind("UP", 0) == 0 || s.status == "no check";
    if (s.status.rfind("MAINT", 0) == 0) s.admin = ServerAdmin::kMaint;
    if (s.status.rfind("DRAIN", 0) == 0) s.admin = ServerAdmin::kDrain;
    s.backup = ToInt(field(row, bck)) > 0;
    s.current_sessions = ToInt(field(row, scur));
    s.total_sessions = ToInt(field(row, stot));
    for (int c : responses) s.responses += ToInt(field(row, c));
    s.check_status = field(row, check);
    out->push_back(std::move(s));
  }
  return std::nullopt;
}

std::optional<std::string> HaproxyInstance::Stop(milliseconds grace) {
  if (!Running()) {
    Forget();
    return std::nullopt;
  }
  auto wait_gone = [&](milliseconds limit) {
    const auto deadline = SteadyClock::now() + limit;
    while (Running()) {
      if (SteadyClock::now() >= deadline) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
  };
  // Soft stop: the master tells its workers to finish their connections.
  ::kill(pid_, SIGUSR1);
  if (!wait_gone(grace)) {
    process::SignalGroupMembers(pid_, pid_, start_time_, SIGTERM);
    if (!wait_gone(milliseconds(2000))) {
      process::SignalGroupMembers(pid_, pid_, start_time_, SIGKILL);
      if (!wait_gone(milliseconds(2000)))
        return "haproxy (pid " + std::to_string(pid_) + ") did not exit after SIGKILL";
    }
  }
  // Workers left in the group (the master went first) go too.
  process::SignalGroupMembers(pid_, pid_, start_time_, SIGKILL);
  Forget();
  return std::nullopt;
}

}  // namespace plinth::controller
