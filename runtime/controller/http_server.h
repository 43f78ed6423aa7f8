// A tiny HTTP/1.1 server for the controller's endpoints (docs/controller.md).
//
// Input: routes (method + exact path → handler) registered before Start.
// Output: one accept thread plus one thread per connection (at most
// `max_connections` at once; more are answered 503 and closed). One request
// per connection (every response says `Connection: close`).
//
// Hostile clients: the request line, headers and body together are bounded
// by `max_request_bytes` (413 beyond) and must arrive within `read_timeout`
// of the connection being accepted (408 after it) — a deadline for the whole
// request, not per read, so a client sending one byte at a time (slowloris)
// is cut off and never blocks another connection.
//
// Authorization: every POST route requires `Authorization: Bearer <token>`
// equal to `token`, compared in constant time (401 otherwise, and always
// when `token` is empty), except PostSigned routes, whose handlers check a
// signature of the body themselves. GET routes are open (they expose no
// secret).
//
// Listens only where told; the caller refuses non-loopback hosts unless the
// user allowed them (cli/controller_commands.cpp). Thread safety: handlers
// run on connection threads, concurrently; they must be thread-safe. Start,
// Stop and port() are called from one owning thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace plinth::controller {

struct HttpRequest {
  std::string method;                          // "GET", "POST"
  std::string path;                            // without the query
  std::string query;                           // after '?', undecoded
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // an IPv4 address
  int port = 0;                    // 0: the kernel picks; see HttpServer::port()
  size_t max_request_bytes = 64 * 1024;
  std::chrono::milliseconds read_timeout{5000};
  size_t max_connections = 32;
  std::string token;  // POST routes' bearer token; empty: every POST is 401
};

// Whether two strings are equal, in time that depends only on their
// lengths' maximum (both are hashed first), not on where they differ.
bool ConstantTimeEquals(const std::string& a, const std::string& b);

class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes; before Start only.
  void Get(const std::string& path, HttpHandler handler);
  void Post(const std::string& path, HttpHandler handler);
  // A POST route that authenticates its requests itself (a webhook signed
  // with HMAC by a sender that has no bearer token): no token is checked.
  void PostSigned(const std::string& path, HttpHandler handler);

  // Binds, listens and starts the accept thread. False with *error ("cannot
  // listen on 127.0.0.1:8080: Address already in use") when it cannot.
  bool Start(std::string* error);
  // The bound port (after Start).
  int port() const { return port_; }
  // Stops accepting, wakes and joins every connection thread. Idempotent.
  void Stop();

 private:
  struct Connection {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  void AcceptLoop();
  void Serve(int fd);
  HttpResponse Dispatch(const HttpRequest& request) const;
  void Reap(bool all);

  HttpServerOptions options_;
  std::map<std::string, HttpHandler> get_, post_, post_signed_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe: written by Stop to wake every poll
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::list<std::unique_ptr<Connection>> connections_;  // accept thread only (and Stop after joining it)
};

}  // namespace plinth::controller
