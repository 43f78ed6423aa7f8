#include "runtime/controller/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace plinth::controller {

namespace {

using SteadyClock = std::chrono::steady_clock;

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Writes all of `data` unless the peer is gone or too slow (SO_SNDTIMEO).
void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

void Respond(int fd, const HttpResponse& r) {
  std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + Reason(r.status) + "\r\n";
  head += "Content-Type: " + r.content_type + "\r\n";
  head += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (r.status == 401) head += "WWW-Authenticate: Bearer\r\n";
  head += "Connection: close\r\n\r\n";
  WriteAll(fd, head + r.body);
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body) + "\n";
  return r;
}

// Parses the head (request line and headers, without the blank line).
bool ParseHead(const std::string& head, HttpRequest* req) {
  size_t eol = head.find("\r\n");
  std::string line = head.substr(0, eol);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos) return false;
  req->method = line.substr(0, sp1);
  std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
  if (target.empty() || target[0] != '/') return false;
  size_t q = target.find('?');
  req->path = target.substr(0, q);
  if (q != std::string::npos) req->query = target.substr(q + 1);
  size_t pos = eol == std::string::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string h = head.substr(pos, end - pos);
    pos = end + 2;
    size_t colon = h.find(':');
    if (colon == std::string::npos || colon == 0) return false;
    req->headers[Lower(h.substr(0, colon))] = Trim(h.substr(colon + 1));
  }
  return true;
}

}  // namespace

bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  unsigned char ha[SHA256_DIGEST_LENGTH], hb[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(a.data()), a.size(), ha);
  SHA256(reinterpret_cast<const unsigned char*>(b.data()), b.size(), hb);
  // Equal digests with unequal lengths cannot happen short of a collision;
  // the length check after the digest comparison leaks only the length.
  return CRYPTO_memcmp(ha, hb, sizeof ha) == 0 && a.size() == b.size();
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() {
  Stop();
}

void HttpServer::Get(const std::string& path, HttpHandler handler) {
  get_[path] = std::move(handler);
}
void HttpServer::Post(const std::string& path, HttpHandler handler) {
  post_[path] = std::move(handler);
}

void HttpServer::PostSigned(const std::string& path, HttpHandler handler) {
  post_signed_[path] = std::move(handler);
}

bool HttpServer::Start(std::string* error) {
  std::string where = options_.host + ":" + std::to_string(options_.port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(options_.port));
  if (::inet_pton(AF_INET, options_.host.c_str(), &addr.sin_addr) != 1) {
    *error = "cannot listen on '" + options_.host + "': not an IPv4 address (use 127.0.0.1)";
    return false;
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = "cannot create a socket: " + std::string(std::strerror(errno));
    return false;
  }
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 64) != 0) {
    *error = "cannot listen on " + where + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  if (::pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    *error = "cannot create a pipe: " + std::string(std::strerror(errno));
    ::close(fd);
    return false;
  }
  listen_fd_ = fd;
  stopping_ = false;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
  return true;
}

void HttpServer::Stop() {
  if (listen_fd_ < 0) return;
  stopping_ = true;
  char c = 1;
  (void)!::write(wake_[1], &c, 1);  // the pipe stays readable: wakes every poll
  if (accept_thread_.joinable()) accept_thread_.join();
  Reap(true);
  ::close(listen_fd_);
  ::close(wake_[0]);
  ::close(wake_[1]);
  listen_fd_ = -1;
  wake_[0] = wake_[1] = -1;
}

void HttpServer::Reap(bool all) {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (all || (*it)->done) {
      (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::AcceptLoop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    Reap(false);
    if (n < 0 && errno != EINTR) return;
    if (stopping_ || (fds[1].revents & POLLIN)) return;
    if (n <= 0 || !(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(options_.read_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((options_.read_timeout.count() % 1000) * 1000);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connections_.size() >= options_.max_connections) {
      Respond(fd, Text(503, "too many connections; try again"));
      ::close(fd);
      continue;
    }
    auto conn = std::make_unique<Connection>();
    Connection* c = conn.get();
    c->thread = std::thread([this, fd, c] {
      Serve(fd);
      ::close(fd);
      c->done = true;
    });
    connections_.push_back(std::move(conn));
  }
}

void HttpServer::Serve(int fd) {
  const auto deadline = SteadyClock::now() + options_.read_timeout;
  std::string data;
  size_t head_end = std::string::npos;
  size_t need = 0;  // total bytes (head + body) once the head is parsed
  HttpRequest req;
  char buf[4096];
  for (;;) {
    if (head_end != std::string::npos && data.size() >= need) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      Respond(fd, Text(408, "request not received within " + std::to_string(options_.read_timeout.count()) +
                                " ms"));
      return;
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || (fds[1].revents & POLLIN)) return;  // stopping
    if (n == 0) continue;
    ssize_t got = ::recv(fd, buf, sizeof buf, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return;  // the client went away
    data.append(buf, static_cast<size_t>(got));
    if (data.size() > options_.max_request_bytes) {
      Respond(fd, Text(413, "request larger than " + std::to_string(options_.max_request_bytes) + " bytes"));
      return;
    }
    if (head_end == std::string::npos) {
      head_end = data.find("\r\n\r\n");
      if (head_end == std::string::npos) continue;
      if (!ParseHead(data.substr(0, head_end), &req)) {
        Respond(fd, Text(400, "malformed request"));
        return;
      }
      size_t body = 0;
      if (auto it = req.headers.find("content-length"); it != req.headers.end()) {
        const std::string& v = it->second;
        if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos) {
          Respond(fd, Text(400, "malformed Content-Length"));
          return;
        }
        body = std::stoull(v);
      }
      if (req.headers.count("transfer-encoding")) {
        // Chunked bodies are not read: the client must say how long its body is.
        Respond(fd, Text(411, "Transfer-Encoding is not supported; send Content-Length"));
        return;
      }
      need = head_end + 4 + body;
      if (need > options_.max_request_bytes) {
        Respond(fd,
                Text(413, "request larger than " + std::to_string(options_.max_request_bytes) + " bytes"));
        return;
      }
    }
  }
  req.body = data.substr(head_end + 4, need - head_end - 4);
  HttpResponse response;
  try {
    response = Dispatch(req);
  } catch (const std::exception& e) {
    response = Text(500, std::string("internal error: ") + e.what());
  }
  Respond(fd, response);
}

HttpResponse HttpServer::Dispatch(const HttpRequest& req) const {
  if (req.method == "GET") {
    if (auto it = get_.find(req.path); it != get_.end()) return it->second(req);
  } else if (req.method == "POST") {
    if (auto it = post_signed_.find(req.path); it != post_signed_.end()) return it->second(req);
    if (auto it = post_.find(req.path); it != post_.end()) {
      auto auth = req.headers.find("authorization");
      const std::string prefix = "Bearer ";
      bool ok = !options_.token.empty() && auth != req.headers.end() && auth->second.rfind(prefix, 0) == 0 &&
                ConstantTimeEquals(auth->second.substr(prefix.size()), options_.token);
      if (!ok)
        return Text(401,
                    "missing or wrong bearer token; send 'Authorization: Bearer <token>' (the token file)");
      return it->second(req);
    }
  } else {
    return Text(405, "method " + req.method + " not allowed; use GET or POST");
  }
  if (get_.count(req.path) || post_.count(req.path) || post_signed_.count(req.path)) {
    return Text(405, "method " + req.method + " not allowed on " + req.path);
  }
  return Text(404, "no such endpoint: " + req.path);
}

}  // namespace plinth::controller
