// String literals and heredocs: escapes, `$${` and `${ expr }` interpolation.

#include <climits>

#include "compiler/syntax/internal.h"

namespace plinth::syntax {
namespace {

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Offset just past the `}` that closes the interpolation opened at `open`
// (the index of `$`), skipping nested braces and strings; npos if unclosed.
size_t FindInterpolationEnd(std::string_view s, size_t open) {
  int depth = 0;
  size_t i = open + 2;
  while (i < s.size()) {
    char c = s[i];
    if (c == '"') {
      ++i;
      while (i < s.size() && s[i] != '"') {
        if (s[i] == '\\') ++i;
        ++i;
      }
      ++i;
      continue;
    }
    if (c == '{') ++depth;
    if (c == '}') {
      if (depth == 0) return i + 1;
      --depth;
    }
    ++i;
  }
  return std::string_view::npos;
}

// `${a.b.c}` is by far the most common interpolation. Building its AST here
// gives the same tree the parser would, without starting a parser per string.
// Returns null for anything else.
ast::ExprPtr SimpleReference(std::string_view inner, FileId file, uint32_t base) {
  size_t b = inner.find_first_not_of(" \t");
  size_t e = inner.find_last_not_of(" \t");
  if (b == std::string_view::npos) return nullptr;
  std::string_view text = inner.substr(b, e - b + 1);
  std::vector<std::pair<size_t, size_t>> parts;  // [begin, end) within text
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (!(std::isalpha(c) || c == '_')) return nullptr;
    size_t start = i;
    while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
    parts.emplace_back(start, i);
    if (i == text.size()) break;
    if (text[i] != '.' || i + 1 == text.size()) return nullptr;
    ++i;
  }
  for (const auto& [pb, pe] : parts) {
    std::string_view w = text.substr(pb, pe - pb);
    if (w == "true" || w == "false" || w == "null" || w == "for" || w == "in" || w == "if") return nullptr;
  }
  uint32_t at = base + static_cast<uint32_t>(b);
  auto range = [&](size_t from, size_t to) { return Range{file, at + static_cast<uint32_t>(from), at + static_cast<uint32_t>(to)}; };
  ast::ExprPtr e0 = std::make_unique<ast::Name>(range(parts[0].first, parts[0].second),
                                                std::string(text.substr(parts[0].first, parts[0].second - parts[0].first)));
  for (size_t k = 1; k < parts.size(); ++k) {
    auto [pb, pe] = parts[k];
    e0 = std::make_unique<ast::GetAttr>(range(0, pe), std::move(e0), std::string(text.substr(pb, pe - pb)), range(pb, pe));
  }
  return e0;
}

struct Splitter {
  FileId file;
  uint32_t base;  // file offset of s[0]
  int depth;
  Diagnostics& diags;
  std::vector<ast::TemplatePart> parts;
  bool failed = false;

  void Literal(std::string_view text) {
    if (text.empty()) return;
    if (!parts.empty() && !parts.back().expr) {
      parts.back().text += text;
    } else {
      parts.push_back({std::string(text), nullptr});
    }
  }

  // Handles `${` at s[i]; returns the index after the interpolation.
  size_t Interpolation(std::string_view s, size_t i) {
    size_t end = FindInterpolationEnd(s, i);
    if (end == std::string_view::npos) {
      diags.Error(DiagCode::InvalidTemplate, {file, base + static_cast<uint32_t>(i), base + static_cast<uint32_t>(i + 2)},
                  "interpolation is not closed")
          .help = "add '}' to close '${', or write '$${' for a literal '${'";
      failed = true;
      return s.size();
    }
    std::string_view inner = s.substr(i + 2, end - i - 3);
    if (inner.find_first_not_of(" \t\r\n") == std::string_view::npos) {
      diags.Error(DiagCode::InvalidTemplate, {file, base + static_cast<uint32_t>(i), base + static_cast<uint32_t>(end)},
                  "interpolation is empty")
          .help = "put an expression inside '${ }', or write '$${' for a literal '${'";
      failed = true;
      return end;
    }
    ast::ExprPtr e = SimpleReference(inner, file, base + static_cast<uint32_t>(i + 2));
    if (!e) e = ParseSubExpression(inner, file, base + static_cast<uint32_t>(i + 2), depth + 1, diags);
    if (e->kind == ast::ExprKind::Error) failed = true;
    parts.push_back({"", std::move(e)});
    return end;
  }

  ast::ExprPtr Finish(Range range) {
    if (failed) return std::make_unique<ast::Error>(range);
    bool plain = parts.empty() || (parts.size() == 1 && !parts[0].expr);
    if (plain) return std::make_unique<ast::Literal>(range, Value::String(parts.empty() ? "" : parts[0].text));
    auto t = std::make_unique<ast::Template>(range);
    t->parts = std::move(parts);
    return t;
  }
};

}  // namespace

ast::ExprPtr BuildStringLiteral(std::string_view text, FileId file, uint32_t base, int depth, Diagnostics& diags) {
  Range range{file, base, base + static_cast<uint32_t>(text.size())};
  Splitter sp{file, base, depth, diags, {}};
  std::string lit;
  size_t n = text.size() >= 2 ? text.size() - 1 : text.size();  // without the closing quote
  size_t i = 1;
  while (i < n) {
    char c = text[i];
    if (c == '\\' && i + 1 < n) {
      char e = text[i + 1];
      size_t len = 2;
      switch (e) {
        case 'n': lit += '\n'; break;
        case 't': lit += '\t'; break;
        case 'r': lit += '\r'; break;
        case '"': lit += '"'; break;
        case '\\': lit += '\\'; break;
        case 'u': {
          // \uXXXX or \u{X...}
          uint32_t cp = 0;
          bool ok = false;
          if (i + 2 < n && text[i + 2] == '{') {
            size_t j = i + 3;
            while (j < n && j < i + 11 && std::isxdigit(static_cast<unsigned char>(text[j]))) {
              cp = cp * 16 + static_cast<uint32_t>(std::stoi(std::string(1, text[j]), nullptr, 16));
              ++j;
            }
            ok = j < n && text[j] == '}' && j > i + 3;
            len = j + 1 - i;
          } else {
            size_t j = i + 2;
            while (j < n && j < i + 6 && std::isxdigit(static_cast<unsigned char>(text[j]))) {
              cp = cp * 16 + static_cast<uint32_t>(std::stoi(std::string(1, text[j]), nullptr, 16));
              ++j;
            }
            ok = j == i + 6;
            len = j - i;
          }
          if (!ok || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0) {
            diags.Error(DiagCode::InvalidEscape,
                        {file, base + static_cast<uint32_t>(i), base + static_cast<uint32_t>(i + len)},
                        "invalid unicode escape")
                .help = "write \\uXXXX with four hex digits or \\u{X...} with a valid non-zero code point";
            sp.failed = true;
          } else {
            AppendUtf8(lit, cp);
          }
          break;
        }
        default:
          diags.Error(DiagCode::InvalidEscape, {file, base + static_cast<uint32_t>(i), base + static_cast<uint32_t>(i + 2)},
                      std::string("unknown escape sequence '\\") + e + "'")
              .help = "valid escapes are \\n \\t \\r \\\" \\\\ \\uXXXX; write '\\\\' for a backslash";
          sp.failed = true;
      }
      i += len;
      continue;
    }
    if (c == '$' && i + 2 < n + 1 && text.substr(i, 3) == "$${") {
      lit += "${";
      i += 3;
      continue;
    }
    if (c == '$' && i + 1 < n && text[i + 1] == '{') {
      sp.Literal(lit);
      lit.clear();
      i = sp.Interpolation(text.substr(0, n), i);
      continue;
    }
    lit += c;
    ++i;
  }
  sp.Literal(lit);
  return sp.Finish(range);
}

ast::ExprPtr BuildHeredoc(std::string_view text, FileId file, uint32_t base, int depth, Diagnostics& diags) {
  Range range{file, base, base + static_cast<uint32_t>(text.size())};
  bool indented = text.size() > 2 && text[2] == '-';
  size_t body_begin = text.find('\n');
  body_begin = body_begin == std::string_view::npos ? text.size() : body_begin + 1;
  // The terminator line is the last line of the token.
  size_t last_nl = text.rfind('\n');
  size_t body_end = (last_nl == std::string_view::npos || last_nl + 1 < body_begin) ? body_begin : last_nl + 1;
  std::string_view body = text.substr(body_begin, body_end - body_begin);

  // Common indentation of non-blank lines for <<-.
  size_t strip = 0;
  if (indented) {
    strip = SIZE_MAX;
    size_t pos = 0;
    while (pos < body.size()) {
      size_t eol = body.find('\n', pos);
      if (eol == std::string_view::npos) eol = body.size();
      std::string_view line = body.substr(pos, eol - pos);
      size_t ws = line.find_first_not_of(" \t");
      if (ws != std::string_view::npos && !(line.size() == ws + 1 && line[ws] == '\r')) strip = std::min(strip, ws);
      pos = eol + 1;
    }
    if (strip == SIZE_MAX) strip = 0;
  }

  Splitter sp{file, base + static_cast<uint32_t>(body_begin), depth, diags, {}};
  std::string lit;
  size_t i = 0;
  size_t column = 0;  // characters seen on the current line
  while (i < body.size()) {
    char c = body[i];
    if (column < strip && (c == ' ' || c == '\t')) {
      ++column;
      ++i;
      continue;
    }
    column = strip;  // past the indentation of this line
    if (c == '\n') {
      lit += c;
      column = 0;
      ++i;
      continue;
    }
    if (body.substr(i, 3) == "$${") {
      lit += "${";
      i += 3;
      continue;
    }
    if (c == '$' && i + 1 < body.size() && body[i + 1] == '{') {
      sp.Literal(lit);
      lit.clear();
      i = sp.Interpolation(body, i);
      continue;
    }
    lit += c;
    ++i;
  }
  sp.Literal(lit);
  return sp.Finish(range);
}

}  // namespace plinth::syntax
