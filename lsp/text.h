// Positions and URIs as the Language Server Protocol spells them.
//
// LSP positions are (line, character), both 0-based; `character` counts
// UTF-16 code units unless the client accepted UTF-8 (positionEncoding).
// The compiler's ranges are byte offsets (compiler/source/source.h); a
// LineIndex converts between the two for one text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace plinth::lsp {

struct Position {
  uint32_t line = 0;
  uint32_t character = 0;
};

enum class Encoding { Utf16, Utf8 };

class LineIndex {
 public:
  LineIndex() = default;
  explicit LineIndex(std::string_view text);
  // Byte offset of a position; positions past a line's end clamp to it, past
  // the text's end to its end (as the protocol asks).
  uint32_t Offset(Position p, Encoding e) const;
  Position At(uint32_t offset, Encoding e) const;
  uint32_t Lines() const { return static_cast<uint32_t>(starts_.size()); }
  uint32_t LineStart(uint32_t line) const { return starts_[line]; }
  std::string_view text() const { return text_; }

 private:
  std::string_view text_;
  std::vector<uint32_t> starts_;  // byte offset of each line's start
};

// file:///a%20b/x.plinth <-> /a b/x.plinth. Empty when the URI is not a
// file URI.
std::string UriToPath(std::string_view uri);
std::string PathToUri(std::string_view path);

// Replaces [begin, end) of `text` (byte offsets, clamped) with `with`.
void Splice(std::string& text, uint32_t begin, uint32_t end, std::string_view with);

}  // namespace plinth::lsp
