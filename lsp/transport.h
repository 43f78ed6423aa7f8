// JSON-RPC 2.0 over a byte stream with LSP's framing: `Content-Length: N`
// headers, a blank line, then N bytes of JSON.
//
// The server reads from one thread and writes from several (replies and
// pushed diagnostics), so Write is serialised. Nothing else may write to the
// output stream: `plinth lsp` logs to stderr.
#pragma once

#include <cstdio>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace plinth::lsp {

using json = nlohmann::json;

// Messages larger than this are refused (the stream is then out of sync
// and the server stops).
inline constexpr size_t kMaxMessageBytes = size_t{256} << 20;

class Transport {
 public:
  Transport(int in_fd, int out_fd) : in_(in_fd), out_(out_fd) {}

  enum class ReadStatus { Ok, Eof, BadJson, BadFrame };
  // Reads the next message. BadJson: the frame was whole but not JSON (the
  // caller answers with a parse error and goes on); BadFrame: the headers
  // are broken, or a message is too large (the caller stops).
  ReadStatus Read(json* message, std::string* error);
  // Returns false once the peer has gone (the write failed).
  bool Write(const json& message);

 private:
  bool Fill();
  int in_, out_;
  std::string buffer_;
  size_t pos_ = 0;
  bool eof_ = false;
  std::mutex write_mu_;
};

}  // namespace plinth::lsp
