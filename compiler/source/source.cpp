#include "compiler/source/source.h"

#include <algorithm>
#include <deque>
#include <mutex>

namespace plinth {

SourceFile::SourceFile(FileId id, std::string path, std::string text, bool confidential)
    : id_(id), path_(std::move(path)), text_(std::move(text)), confidential_(confidential) {
  line_starts_.push_back(0);
  for (size_t i = 0; i < text_.size(); ++i) {
    if (text_[i] == '\n') line_starts_.push_back(static_cast<uint32_t>(i + 1));
  }
}

LineCol SourceFile::Position(uint32_t offset) const {
  if (offset > text_.size()) offset = static_cast<uint32_t>(text_.size());
  auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
  uint32_t line = static_cast<uint32_t>(it - line_starts_.begin());
  uint32_t start = line_starts_[line - 1];
  uint32_t column = CountCodePoints(std::string_view(text_).substr(start, offset - start)) + 1;
  return {line, column};
}

std::string_view SourceFile::Line(uint32_t line) const {
  if (line == 0 || line > line_starts_.size()) return {};
  uint32_t start = line_starts_[line - 1];
  uint32_t end = line < line_starts_.size() ? line_starts_[line] : static_cast<uint32_t>(text_.size());
  std::string_view s = std::string_view(text_).substr(start, end - start);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

struct SourceManager::Impl {
  mutable std::mutex mu;
  std::deque<SourceFile> files;  // deque: stable addresses
};

SourceManager::SourceManager() : impl_(std::make_unique<Impl>()) {}
SourceManager::~SourceManager() = default;

const SourceFile& SourceManager::Add(std::string path, std::string text, bool confidential) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  FileId id = static_cast<FileId>(impl_->files.size());
  return impl_->files.emplace_back(id, std::move(path), std::move(text), confidential);
}

const SourceFile& SourceManager::Get(FileId id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->files.at(id);
}

size_t SourceManager::size() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->files.size();
}

uint32_t CountCodePoints(std::string_view text) {
  uint32_t n = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++n;
  }
  return n;
}

size_t FindInvalidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == 0) return i;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (size_t k = 1; k < len; ++k) {
      unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (d & 0x3F);
    }
    // Overlong encodings, surrogates and out-of-range code points.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

}  // namespace plinth
