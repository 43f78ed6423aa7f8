#include "lsp/text.h"

#include <algorithm>
#include <cctype>

namespace plinth::lsp {

namespace {

// Length of the UTF-8 sequence that starts with `c` (1 for invalid bytes,
// which count as one unit everywhere, as in the compiler).
uint32_t SequenceLength(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c >> 5) == 0x6) return 2;
  if ((c >> 4) == 0xE) return 3;
  if ((c >> 3) == 0x1E) return 4;
  return 1;
}

}  // namespace

LineIndex::LineIndex(std::string_view text) : text_(text) {
  starts_.push_back(0);
  for (uint32_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') starts_.push_back(i + 1);
    else if (text[i] == '\r' && (i + 1 >= text.size() || text[i + 1] != '\n')) starts_.push_back(i + 1);
  }
}

uint32_t LineIndex::Offset(Position p, Encoding e) const {
  if (p.line >= starts_.size()) return static_cast<uint32_t>(text_.size());
  uint32_t begin = starts_[p.line];
  uint32_t end = p.line + 1 < starts_.size() ? starts_[p.line + 1] : static_cast<uint32_t>(text_.size());
  while (end > begin && (text_[end - 1] == '\n' || text_[end - 1] == '\r')) --end;
  uint32_t units = 0, i = begin;
  while (i < end && units < p.character) {
    uint32_t n = std::min(SequenceLength(static_cast<unsigned char>(text_[i])), end - i);
    units += e == Encoding::Utf8 ? n : (n == 4 ? 2 : 1);
    if (units > p.character) break;  // inside a surrogate pair: stay before it
    i += n;
  }
  return i;
}

Position LineIndex::At(uint32_t offset, Encoding e) const {
  offset = std::min<uint32_t>(offset, static_cast<uint32_t>(text_.size()));
  auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
  uint32_t line = static_cast<uint32_t>(it - starts_.begin()) - 1;
  uint32_t units = 0;
  for (uint32_t i = starts_[line]; i < offset;) {
    uint32_t n = std::min(SequenceLength(static_cast<unsigned char>(text_[i])), offset - i);
    units += e == Encoding::Utf8 ? n : (n == 4 ? 2 : 1);
    i += n;
  }
  return {line, units};
}

std::string UriToPath(std::string_view uri) {
  constexpr std::string_view kScheme = "file://";
  if (uri.substr(0, kScheme.size()) != kScheme) return "";
  std::string_view rest = uri.substr(kScheme.size());
  size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return "";
  rest = rest.substr(slash);  // drop an authority (file://localhost/...)
  std::string out;
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%' && i + 2 < rest.size() && hex(rest[i + 1]) >= 0 && hex(rest[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(rest[i + 1]) * 16 + hex(rest[i + 2])));
      i += 2;
      continue;
    }
    if (rest[i] == '?' || rest[i] == '#') break;
    out.push_back(rest[i]);
  }
  return out;
}

std::string PathToUri(std::string_view path) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out = "file://";
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

void Splice(std::string& text, uint32_t begin, uint32_t end, std::string_view with) {
  begin = std::min<uint32_t>(begin, static_cast<uint32_t>(text.size()));
  end = std::min<uint32_t>(std::max(begin, end), static_cast<uint32_t>(text.size()));
  text.replace(begin, end - begin, with);
}

}  // namespace plinth::lsp
