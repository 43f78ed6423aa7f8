// The production lexer: a hand-written scanner that produces exactly the
// tokens the lexer rules of grammar/Plinth.g4 define (the generated lexer
// stays the executable specification; tests/unit/lexer_diff_test.cpp checks
// that both agree). It exists because the generated lexer costs about 1,500
// instructions per byte and its recursive STRING rule explodes on deeply
// nested interpolations; this one is linear in the input.
//
// Token start/stop indices are byte offsets relative to the lexed text, and
// every token carries its text, so no CharStream is needed.

#include <cstring>

#include "compiler/syntax/internal.h"

namespace plinth::syntax {
namespace {

using L = plinth_antlr::PlinthLexer;

bool IsIdentStart(unsigned char c) { return std::isalpha(c) || c == '_'; }
bool IsIdentChar(unsigned char c) { return std::isalnum(c) || c == '_'; }
bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
bool IsAlpha(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

}  // namespace

FastLexer::FastLexer(std::string_view text)
    : text_(text), rescan_budget_(4 * static_cast<long long>(text.size()) + 4096) {}

size_t FastLexer::getLine() const { return line_; }
size_t FastLexer::getCharPositionInLine() { return pos_ - line_start_; }
antlr4::CharStream* FastLexer::getInputStream() { return nullptr; }
std::string FastLexer::getSourceName() { return "plinth"; }
antlr4::TokenFactory<antlr4::CommonToken>* FastLexer::getTokenFactory() {
  return antlr4::CommonTokenFactory::DEFAULT.get();
}

void FastLexer::Advance(size_t n) {
  for (size_t i = 0; i < n && pos_ < text_.size(); ++i) {
    if (text_[pos_] == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    }
    ++pos_;
  }
}

std::unique_ptr<antlr4::Token> FastLexer::Make(size_t type, size_t start, size_t line, size_t column,
                                               size_t channel) {
  auto t = std::make_unique<antlr4::CommonToken>(std::make_pair(static_cast<antlr4::TokenSource*>(this), nullptr),
                                                 type, channel, start, pos_ - 1);
  t->setLine(line);
  t->setCharPositionInLine(column);
  t->setText(std::string(text_.substr(start, pos_ - start)));
  return t;
}

// Length of the STRING token starting at `start` (a '"'), or 0 when the
// string is not terminated. Each `${` is a choice: an interpolation (which
// may hold braces, nested strings and newlines) or two ordinary characters.
// Like the grammar's longest match, interpolations are tried first; when the
// scan gets stuck (end of input, or a line break in a string) the latest
// choice is revisited as ordinary text. A budget on re-scanned text keeps the
// worst case linear: once spent, `${` is only ordinary text.
size_t FastLexer::ScanString(size_t start) {
  std::vector<Frame> stack{{true, 0}};
  std::vector<Choice> choices;
  size_t i = start + 1;
  for (;;) {
    size_t len = RunString(stack, choices, i, start);
    if (len) return len;
    if (choices.empty()) return 0;
    Choice c = std::move(choices.back());
    choices.pop_back();
    rescan_budget_ -= static_cast<long long>(i - c.dollar);
    stack = std::move(c.stack);
    i = c.dollar + 1;  // the '$' was ordinary; so is the '{' that follows
  }
}

// Scans from `i`. Returns the token length when the outermost string
// closes; 0 when stuck, leaving `i` where it stopped.
size_t FastLexer::RunString(std::vector<Frame>& stack, std::vector<Choice>& choices, size_t& i, size_t start) {
  const size_t n = text_.size();
  while (i < n) {
    char c = text_[i];
    if (stack.back().in_string) {
      if (c == '"') {
        stack.pop_back();
        ++i;
        if (stack.empty()) return i - start;
      } else if (c == '\\') {
        if (i + 1 >= n) return 0;
        i += 2;
      } else if (c == '\r' || c == '\n') {
        return 0;
      } else if (c == '$' && i + 1 < n && text_[i + 1] == '{' && rescan_budget_ > 0) {
        choices.push_back({i, stack});
        stack.push_back({false, 0});
        i += 2;
      } else {
        ++i;
      }
      continue;
    }
    // Inside an interpolation.
    if (c == '"') {
      stack.push_back({true, 0});
    } else if (c == '{') {
      ++stack.back().braces;
    } else if (c == '}') {
      if (stack.back().braces == 0) {
        stack.pop_back();
      } else {
        --stack.back().braces;
      }
    }
    ++i;
  }
  return 0;
}

std::unique_ptr<antlr4::Token> FastLexer::nextToken() {
  const size_t n = text_.size();
  for (;;) {
    // Whitespace and newlines are skipped ('\r' only before '\n').
    while (pos_ < n) {
      char c = text_[pos_];
      if (c == ' ' || c == '\t' || c == '\f' || c == '\n') {
        Advance(1);
      } else if (c == '\r' && pos_ + 1 < n && text_[pos_ + 1] == '\n') {
        Advance(2);
      } else {
        break;
      }
    }
    size_t start = pos_, line = line_, column = pos_ - line_start_;
    if (pos_ >= n) {
      auto eof = std::make_unique<antlr4::CommonToken>(std::make_pair(static_cast<antlr4::TokenSource*>(this), nullptr),
                                                       antlr4::Token::EOF, antlr4::Token::DEFAULT_CHANNEL, n, n - 1);
      eof->setLine(line);
      eof->setCharPositionInLine(column);
      eof->setText("<EOF>");
      return eof;
    }
    unsigned char c = static_cast<unsigned char>(text_[pos_]);
    auto next = [&](size_t k) -> unsigned char { return pos_ + k < n ? static_cast<unsigned char>(text_[pos_ + k]) : 0; };
    auto single = [&](size_t type, size_t len = 1) {
      Advance(len);
      return Make(type, start, line, column);
    };

    // Comments.
    if (c == '#' || (c == '/' && next(1) == '/')) {
      while (pos_ < n && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
      return Make(L::LINE_COMMENT, start, line, column, antlr4::Token::HIDDEN_CHANNEL);
    }
    if (c == '/' && next(1) == '*') {
      size_t end = text_.find("*/", pos_ + 2);
      if (end == std::string_view::npos) {
        Advance(n - pos_);
        return Make(L::UNTERMINATED_COMMENT, start, line, column);
      }
      Advance(end + 2 - pos_);
      return Make(L::BLOCK_COMMENT, start, line, column, antlr4::Token::HIDDEN_CHANNEL);
    }

    if (IsIdentStart(c)) {
      while (pos_ < n && IsIdentChar(static_cast<unsigned char>(text_[pos_]))) ++pos_;
      std::string_view word = text_.substr(start, pos_ - start);
      size_t type = L::IDENT;
      if (word == "true") type = L::KW_TRUE;
      else if (word == "false") type = L::KW_FALSE;
      else if (word == "null") type = L::KW_NULL;
      else if (word == "for") type = L::KW_FOR;
      else if (word == "in") type = L::KW_IN;
      else if (word == "if") type = L::KW_IF;
      return Make(type, start, line, column);
    }

    if (IsDigit(c)) {
      // NUMBER: DIGITS ('.' DIGITS)? EXPONENT?   UNIT_NUMBER: DIGITS ('.' DIGITS)? ([A-Za-z]+ | '%')
      size_t i = pos_;
      while (i < n && IsDigit(static_cast<unsigned char>(text_[i]))) ++i;
      if (i + 1 < n && text_[i] == '.' && IsDigit(static_cast<unsigned char>(text_[i + 1]))) {
        ++i;
        while (i < n && IsDigit(static_cast<unsigned char>(text_[i]))) ++i;
      }
      size_t number_end = i;
      if (i < n && (text_[i] == 'e' || text_[i] == 'E')) {
        size_t j = i + 1;
        if (j < n && (text_[j] == '+' || text_[j] == '-')) ++j;
        if (j < n && IsDigit(static_cast<unsigned char>(text_[j]))) {
          while (j < n && IsDigit(static_cast<unsigned char>(text_[j]))) ++j;
          number_end = j;
        }
      }
      size_t unit_end = i;
      if (i < n && text_[i] == '%') {
        unit_end = i + 1;
      } else {
        while (unit_end < n && IsAlpha(static_cast<unsigned char>(text_[unit_end]))) ++unit_end;
      }
      // Longest match; NUMBER wins ties (it is listed first in the grammar).
      if (unit_end > i && unit_end > number_end) {
        pos_ = unit_end;
        return Make(L::UNIT_NUMBER, start, line, column);
      }
      pos_ = number_end;
      return Make(L::NUMBER, start, line, column);
    }

    if (c == '"') {
      size_t len = ScanString(pos_);
      if (len) {
        Advance(len);
        return Make(L::STRING, start, line, column);
      }
      // UNTERMINATED_STRING: '"' (ESCAPE | ~["\\\r\n])*
      size_t i = pos_ + 1;
      while (i < n && text_[i] != '"' && text_[i] != '\r' && text_[i] != '\n') {
        if (text_[i] == '\\' && i + 1 < n) {
          i += 2;
        } else {
          ++i;
        }
      }
      Advance(std::min(i, n) - pos_);
      return Make(L::UNTERMINATED_STRING, start, line, column);
    }

    if (c == '<' && next(1) == '<') {
      // HEREDOC_START: '<<' '-'? [A-Za-z_] [A-Za-z0-9_]* [ \t]* '\r'? '\n'
      size_t i = pos_ + 2;
      if (i < n && text_[i] == '-') ++i;
      size_t marker_begin = i;
      if (i < n && IsIdentStart(static_cast<unsigned char>(text_[i]))) {
        while (i < n && IsIdentChar(static_cast<unsigned char>(text_[i]))) ++i;
        std::string_view marker = text_.substr(marker_begin, i - marker_begin);
        while (i < n && (text_[i] == ' ' || text_[i] == '\t')) ++i;
        if (i < n && text_[i] == '\r') ++i;
        if (i < n && text_[i] == '\n') {
          return ReadHeredoc(start, line, column, marker, i + 1);
        }
      }
    }

    switch (c) {
      case '{': return single(L::LBRACE);
      case '}': return single(L::RBRACE);
      case '[': return single(L::LBRACK);
      case ']': return single(L::RBRACK);
      case '(': return single(L::LPAREN);
      case ')': return single(L::RPAREN);
      case ',': return single(L::COMMA);
      case '.': return single(L::DOT);
      case ':': return single(L::COLON);
      case '?': return single(L::QUESTION);
      case '+': return single(L::PLUS);
      case '-': return single(L::MINUS);
      case '*': return single(L::STAR);
      case '/': return single(L::SLASH);
      case '%': return single(L::PERCENT);
      case '=':
        if (next(1) == '>') return single(L::ARROW, 2);
        if (next(1) == '=') return single(L::EQ, 2);
        return single(L::ASSIGN);
      case '!': return next(1) == '=' ? single(L::NE, 2) : single(L::NOT);
      case '<': return next(1) == '=' ? single(L::LE, 2) : single(L::LT);
      case '>': return next(1) == '=' ? single(L::GE, 2) : single(L::GT);
      case '&':
        if (next(1) == '&') return single(L::AND, 2);
        break;
      case '|':
        if (next(1) == '|') return single(L::OR, 2);
        break;
      default: break;
    }
    // BAD_CHAR: one code point.
    size_t len = 1;
    if (c >= 0xC0) {
      while (pos_ + len < n && (static_cast<unsigned char>(text_[pos_ + len]) & 0xC0) == 0x80 && len < 4) ++len;
    }
    Advance(len);
    return Make(L::BAD_CHAR, start, line, column);
  }
}

// After HEREDOC_START (ending at `body`), reads lines up to one that holds
// only the marker (optionally indented) and emits HEREDOC, or
// UNTERMINATED_HEREDOC at end of input.
std::unique_ptr<antlr4::Token> FastLexer::ReadHeredoc(size_t start, size_t line, size_t column, std::string_view marker,
                                                      size_t body) {
  const size_t n = text_.size();
  size_t i = body;
  while (i < n) {
    size_t eol = text_.find('\n', i);
    if (eol == std::string_view::npos) eol = n;
    std::string_view l = text_.substr(i, eol - i);
    size_t b = 0;
    while (b < l.size() && (l[b] == ' ' || l[b] == '\t')) ++b;
    size_t e = l.size();
    while (e > b && (l[e - 1] == '\r' || l[e - 1] == ' ' || l[e - 1] == '\t')) --e;
    if (l.substr(b, e - b) == marker) {
      // The token ends after the marker; trailing blanks are whitespace.
      Advance(i + e - pos_);
      return Make(kHeredoc, start, line, column);
    }
    i = eol + 1;
  }
  Advance(n - pos_);
  return Make(kUnterminatedHeredoc, start, line, column);
}

}  // namespace plinth::syntax
