// HTTP for the S3 client: one request in, one response out. `Transport` is
// the seam tests use to play a store that fails on purpose; `CurlTransport`
// is the real one (libcurl's easy API, one handle per request, so it is
// thread-safe without locks).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace plinth::s3 {

struct HttpRequest {
  std::string method;
  std::string url;
  std::map<std::string, std::string> headers;
  std::string body;
};

struct HttpResponse {
  // 0 when no response arrived; `transport_error` then says why.
  int status = 0;
  std::map<std::string, std::string> headers;  // names lowercase
  std::string body;
  std::string transport_error;
  bool timed_out = false;
};

class Transport {
 public:
  virtual ~Transport() = default;
  // Must be safe to call from several threads at once.
  virtual HttpResponse Send(const HttpRequest& request) = 0;
};

struct CurlOptions {
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{60000};
};

class CurlTransport : public Transport {
 public:
  explicit CurlTransport(CurlOptions options = {});
  HttpResponse Send(const HttpRequest& request) override;

 private:
  CurlOptions options_;
};

}  // namespace plinth::s3
