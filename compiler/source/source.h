// Source files and positions.
//
// A SourceManager owns the text of every file the compiler reads; everything
// else refers to text by FileId and byte offsets. Line/column numbers are
// computed on demand from a per-file line table, so ranges stay 12 bytes.
// Columns shown to users are 1-based and count code points, not bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace plinth {

using FileId = uint32_t;
inline constexpr FileId kNoFile = UINT32_MAX;

// Half-open byte range [begin, end) in one file.
struct Range {
  FileId file = kNoFile;
  uint32_t begin = 0;
  uint32_t end = 0;

  bool valid() const { return file != kNoFile; }
  bool operator==(const Range& o) const { return file == o.file && begin == o.begin && end == o.end; }
  static Range Cover(Range a, Range b) {
    if (!a.valid()) return b;
    if (!b.valid()) return a;
    return {a.file, a.begin < b.begin ? a.begin : b.begin, a.end > b.end ? a.end : b.end};
  }
};

struct LineCol {
  uint32_t line = 0;    // 1-based
  uint32_t column = 0;  // 1-based, in code points
};

class SourceFile {
 public:
  SourceFile(FileId id, std::string path, std::string text, bool confidential = false);

  FileId id() const { return id_; }
  const std::string& path() const { return path_; }
  std::string_view text() const { return text_; }

  LineCol Position(uint32_t offset) const;
  // The text of 1-based line `line`, without its line terminator.
  std::string_view Line(uint32_t line) const;
  uint32_t LineCount() const { return static_cast<uint32_t>(line_starts_.size()); }
  uint32_t LineStart(uint32_t line) const { return line_starts_[line - 1]; }
  // A file that may hold secrets (a variables file): diagnostics locate
  // problems in it but never quote its text (no source line in excerpts).
  bool confidential() const { return confidential_; }

 private:
  FileId id_;
  std::string path_;
  std::string text_;
  bool confidential_ = false;
  std::vector<uint32_t> line_starts_;
};

// Owns source files. Thread-safe for Add() from parallel parsers; files are
// never removed, so references returned by Get() stay valid for the manager's life.
class SourceManager {
 public:
  SourceManager();
  ~SourceManager();
  SourceManager(const SourceManager&) = delete;
  SourceManager& operator=(const SourceManager&) = delete;

  const SourceFile& Add(std::string path, std::string text, bool confidential = false);
  const SourceFile& Get(FileId id) const;
  size_t size() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Number of code points in a UTF-8 string (invalid bytes count as one each).
uint32_t CountCodePoints(std::string_view text);

// Returns the offset of the first byte that is not valid UTF-8 (or a NUL), or
// npos when the text is clean.
size_t FindInvalidUtf8(std::string_view text);

}  // namespace plinth
