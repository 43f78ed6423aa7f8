#include "lsp/transport.h"

#include <unistd.h>

#include <cerrno>
#include <cctype>
#include <charconv>

namespace plinth::lsp {

bool Transport::Fill() {
  if (eof_) return false;
  if (pos_ > 0 && pos_ == buffer_.size()) {
    buffer_.clear();
    pos_ = 0;
  } else if (pos_ > (1u << 20)) {
    buffer_.erase(0, pos_);
    pos_ = 0;
  }
  char chunk[65536];
  for (;;) {
    ssize_t n = ::read(in_, chunk, sizeof chunk);
    if (n > 0) {
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    eof_ = true;
    return false;
  }
}

Transport::ReadStatus Transport::Read(json* message, std::string* error) {
  size_t length = SIZE_MAX;
  bool headers = false;
  // Headers: lines ending in \r\n (a bare \n is accepted), up to a blank line.
  for (;;) {
    size_t nl = buffer_.find('\n', pos_);
    while (nl == std::string::npos) {
      if (buffer_.size() - pos_ > 8192) {
        *error = "a header line is longer than 8 KiB";
        return ReadStatus::BadFrame;
      }
      if (!Fill()) {
        if (pos_ < buffer_.size()) {
          *error = "the stream ended inside a header";
          return ReadStatus::BadFrame;
        }
        return ReadStatus::Eof;
      }
      nl = buffer_.find('\n', pos_);
    }
    std::string_view line(buffer_.data() + pos_, nl - pos_);
    pos_ = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      if (!headers) continue;  // stray blank lines before a message
      if (length == SIZE_MAX) {
        *error = "a message has no Content-Length header";
        return ReadStatus::BadFrame;
      }
      break;
    }
    headers = true;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      *error = "a header line has no ':'";
      return ReadStatus::BadFrame;
    }
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (name == "content-length") {
      size_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size()) {
        *error = "Content-Length is not a number";
        return ReadStatus::BadFrame;
      }
      if (n > kMaxMessageBytes) {
        *error = "a message of " + std::to_string(n) + " bytes is larger than the limit of 256 MiB";
        return ReadStatus::BadFrame;
      }
      length = n;
    }
  }
  while (buffer_.size() - pos_ < length) {
    if (!Fill()) {
      *error = "the stream ended inside a message";
      return ReadStatus::BadFrame;
    }
  }
  std::string_view body(buffer_.data() + pos_, length);
  pos_ += length;
  *message = json::parse(body, nullptr, false);
  if (message->is_discarded()) {
    *error = "a message is not valid JSON";
    return ReadStatus::BadJson;
  }
  return ReadStatus::Ok;
}

bool Transport::Write(const json& message) {
  std::string body = message.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string frame = "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::lock_guard lock(write_mu_);
  const char* p = frame.data();
  size_t left = frame.size();
  while (left > 0) {
    ssize_t n = ::write(out_, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace plinth::lsp
