// Parsing: source text -> Plinth AST (compiler/syntax/ast.h).
//
// Entry points take a SourceFile and append every lexical and syntax error to
// the sink; they never throw and always return a tree (with Error nodes where
// the parser recovered). ANTLR is an implementation detail of this folder.
#pragma once

#include <string_view>
#include <vector>

#include "compiler/diag/diagnostic.h"
#include "compiler/syntax/ast.h"

namespace plinth {

// Parses one file. Runs on a thread with a large stack, so pathological
// inputs (very long operator chains) give errors instead of stack overflows.
ast::File Parse(const SourceFile& file, Diagnostics& diags);

// Parses a standalone expression (used by tests, `plinth console`-style
// tools and the language server).
ast::ExprPtr ParseExpression(const SourceFile& file, Diagnostics& diags);

// ------------------------------------------------------------------- tokens
// The token stream with comments, for the formatter and the language server.

enum class TokenKind : uint8_t {
  Ident, Number, UnitNumber, String, Heredoc, True, False, Null, For, In, If,
  LBrace, RBrace, LBrack, RBrack, LParen, RParen, Assign, Arrow, Comma, Dot, Colon, Question,
  Not, Plus, Minus, Star, Slash, Percent, Eq, Ne, Lt, Le, Gt, Ge, And, Or,
  LineComment, BlockComment,
  Invalid,  // any lexical error (reported to the sink)
};

struct Token {
  TokenKind kind;
  uint32_t begin;  // byte offsets into the file
  uint32_t end;
};

// All tokens except whitespace, in order. Line breaks are recovered from
// offsets by the caller.
std::vector<Token> Lex(const SourceFile& file, Diagnostics& diags);

// For tests: the production lexer is checked against the lexer generated from
// the grammar. Tokens as (ANTLR token type, byte begin, byte end), comments
// included, whitespace excluded.
namespace syntax_testing {
struct LexedToken {
  size_t type;
  uint32_t begin;
  uint32_t end;
  bool operator==(const LexedToken&) const = default;
};
std::vector<LexedToken> LexWithGeneratedLexer(std::string_view text);
std::vector<LexedToken> LexWithFastLexer(std::string_view text);
}  // namespace syntax_testing

}  // namespace plinth
