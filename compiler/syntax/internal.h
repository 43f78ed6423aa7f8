// Internal to compiler/syntax: the ANTLR lexer wrapper shared by Lex() and
// Parse(), and the template splitter. Nothing outside this folder includes it,
// so ANTLR types never leak into the rest of the compiler.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "PlinthLexer.h"
#include "PlinthParser.h"
#include "antlr4-runtime.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"

namespace plinth::syntax {

// Token types declared in the grammar's tokens{} section live in the parser.
inline constexpr size_t kHeredoc = plinth_antlr::PlinthParser::HEREDOC;
inline constexpr size_t kUnterminatedHeredoc = plinth_antlr::PlinthParser::UNTERMINATED_HEREDOC;

// Maps code-point indices of a text to byte offsets in its file.
class OffsetMap {
 public:
  OffsetMap(std::string_view text, uint32_t base);
  uint32_t ByteOffset(size_t code_point_index) const;

 private:
  uint32_t base_;
  uint32_t size_;
  std::vector<uint32_t> bytes_;  // empty when the text is ASCII
};

// The generated lexer plus heredoc bodies: after HEREDOC_START it reads lines
// up to the terminator and emits one HEREDOC (or UNTERMINATED_HEREDOC) token.
class HeredocLexer : public plinth_antlr::PlinthLexer {
 public:
  using PlinthLexer::PlinthLexer;
  std::unique_ptr<antlr4::Token> nextToken() override;
};

// The production lexer (fast_lexer.cpp): the same tokens as the grammar's
// lexer rules, in linear time. Token indices are byte offsets.
class FastLexer : public antlr4::TokenSource {
 public:
  explicit FastLexer(std::string_view text);
  std::unique_ptr<antlr4::Token> nextToken() override;
  size_t getLine() const override;
  size_t getCharPositionInLine() override;
  antlr4::CharStream* getInputStream() override;
  std::string getSourceName() override;
  antlr4::TokenFactory<antlr4::CommonToken>* getTokenFactory() override;

 private:
  struct Frame {
    bool in_string;  // else inside ${ ... }
    int braces;      // open '{' inside the interpolation
  };
  struct Choice {
    size_t dollar;             // where a `${` was taken as an interpolation
    std::vector<Frame> stack;  // the scan state just before it
  };
  void Advance(size_t n);
  std::unique_ptr<antlr4::Token> Make(size_t type, size_t start, size_t line, size_t column,
                                      size_t channel = antlr4::Token::DEFAULT_CHANNEL);
  size_t ScanString(size_t start);
  size_t RunString(std::vector<Frame>& stack, std::vector<Choice>& choices, size_t& i, size_t start);
  std::unique_ptr<antlr4::Token> ReadHeredoc(size_t start, size_t line, size_t column, std::string_view marker,
                                             size_t body);

  std::string_view text_;
  size_t pos_ = 0;
  size_t line_ = 1;
  size_t line_start_ = 0;
  long long rescan_budget_;
};

// A lexed piece of text: `text` starts at byte `base` of file `file`.
struct LexedText {
  LexedText(std::string_view text, FileId file, uint32_t base);
  Range RangeOf(const antlr4::Token* t) const;
  Range RangeOf(const antlr4::Token* first, const antlr4::Token* last) const;

  FileId file;
  uint32_t base;
  FastLexer lexer;
  antlr4::CommonTokenStream tokens;
};



// Fills the token stream and reports lexical errors (bad characters,
// unterminated strings, comments and heredocs) and nesting deeper than
// ast::kMaxNesting. Returns false when the text must not be parsed.
bool LexAndCheck(LexedText& lexed, Diagnostics& diags);

// Parses `text` (at byte `base` of `file`) with the standaloneExpr rule;
// used for ${...} interpolations. `depth` is the nesting depth so far.
ast::ExprPtr ParseSubExpression(std::string_view text, FileId file, uint32_t base, int depth,
                                Diagnostics& diags);

// Turns the text of a STRING token (quotes included) or HEREDOC token into a
// Literal or Template. `base` is the token's byte offset in the file.
ast::ExprPtr BuildStringLiteral(std::string_view token_text, FileId file, uint32_t base, int depth,
                                Diagnostics& diags);
ast::ExprPtr BuildHeredoc(std::string_view token_text, FileId file, uint32_t base, int depth,
                          Diagnostics& diags);

// Reports P0104 and returns false when `file` is not valid UTF-8 (or holds
// a NUL byte); the parser never sees such text.
bool CheckEncoding(const SourceFile& file, Diagnostics& diags);

bool OnLargeStack();
// Runs fn on a thread with a 512 MiB stack (reserved address space; only the
// pages actually used are committed) and waits for it.
void RunOnLargeStack(const std::function<void()>& fn);

}  // namespace plinth::syntax
