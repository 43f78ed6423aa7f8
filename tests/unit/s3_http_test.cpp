// The real HTTP transport against a one-shot listener on 127.0.0.1: what
// goes on the wire is what the client signed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "runtime/s3/http.h"

namespace plinth::s3 {
namespace {

// Accepts one connection, records the request head, answers 200.
class OneShotServer {
 public:
  OneShotServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 1), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      while (head_.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        head_.append(buf, static_cast<size_t>(n));
      }
      std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!::write(c, reply.data(), reply.size());
      ::close(c);
    });
  }
  ~OneShotServer() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string RequestLine() {
    if (thread_.joinable()) thread_.join();
    return head_.substr(0, head_.find("\r\n"));
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string head_;
};

TEST(CurlTransportTest, SendsDotSegmentsExactlyAsSigned) {
  OneShotServer server;
  CurlTransport transport;
  HttpRequest request;
  request.method = "GET";
  request.url = "http://127.0.0.1:" + std::to_string(server.port()) + "/bucket/a/../b/./c";
  HttpResponse response = transport.Send(request);
  EXPECT_EQ(response.status, 200) << response.transport_error;
  EXPECT_EQ(server.RequestLine(), "GET /bucket/a/../b/./c HTTP/1.1");
}

}  // namespace
}  // namespace plinth::s3
