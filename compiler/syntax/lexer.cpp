#include <pthread.h>

#include <cstring>

#include "compiler/syntax/internal.h"
#include "compiler/syntax/parse.h"

namespace plinth {
namespace syntax {

using plinth_antlr::PlinthLexer;

OffsetMap::OffsetMap(std::string_view text, uint32_t base) : base_(base), size_(static_cast<uint32_t>(text.size())) {
  bool ascii = true;
  for (unsigned char c : text) {
    if (c >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return;
  for (uint32_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) bytes_.push_back(i);
  }
}

uint32_t OffsetMap::ByteOffset(size_t cp) const {
  if (bytes_.empty()) return base_ + static_cast<uint32_t>(std::min<size_t>(cp, size_));
  if (cp >= bytes_.size()) return base_ + size_;
  return base_ + bytes_[cp];
}

std::unique_ptr<antlr4::Token> HeredocLexer::nextToken() {
  std::unique_ptr<antlr4::Token> start = PlinthLexer::nextToken();
  if (start->getType() != PlinthLexer::HEREDOC_START) return start;

  // The marker is the identifier after `<<` or `<<-`.
  std::string head = start->getText();
  size_t p = 2;
  if (p < head.size() && head[p] == '-') ++p;
  size_t q = p;
  while (q < head.size() && (std::isalnum(static_cast<unsigned char>(head[q])) || head[q] == '_')) ++q;
  std::string marker = head.substr(p, q - p);

  antlr4::CharStream* in = getInputStream();
  auto* sim = getInterpreter<antlr4::atn::LexerATNSimulator>();
  size_t stop = start->getStopIndex();
  bool terminated = false;
  while (in->LA(1) != antlr4::Token::EOF) {
    // Read one line.
    std::u32string line;
    while (in->LA(1) != antlr4::Token::EOF && in->LA(1) != '\n') {
      line.push_back(static_cast<char32_t>(in->LA(1)));
      sim->consume(in);
    }
    size_t line_last = in->index() == 0 ? 0 : in->index() - 1;
    // Does it consist of the marker, optionally indented?
    size_t b = 0;
    while (b < line.size() && (line[b] == ' ' || line[b] == '\t')) ++b;
    size_t e = line.size();
    while (e > b && (line[e - 1] == '\r' || line[e - 1] == ' ' || line[e - 1] == '\t')) --e;
    bool is_marker = e - b == marker.size();
    for (size_t i = 0; is_marker && i < marker.size(); ++i) is_marker = line[b + i] == static_cast<char32_t>(marker[i]);
    if (is_marker) {
      // The token ends after the marker; the rest of the line is whitespace.
      stop = line_last - (line.size() - e);
      terminated = true;
      break;
    }
    stop = line_last;
    if (in->LA(1) == '\n') {
      stop = in->index();
      sim->consume(in);
    }
  }
  size_t type = terminated ? kHeredoc : kUnterminatedHeredoc;
  auto token = std::make_unique<antlr4::CommonToken>(std::make_pair(static_cast<antlr4::TokenSource*>(this), _input), type, antlr4::Token::DEFAULT_CHANNEL,
                                                     start->getStartIndex(), stop);
  token->setLine(start->getLine());
  token->setCharPositionInLine(start->getCharPositionInLine());
  return token;
}

LexedText::LexedText(std::string_view text, FileId f, uint32_t b) : file(f), base(b), lexer(text), tokens(&lexer) {}

Range LexedText::RangeOf(const antlr4::Token* t) const { return RangeOf(t, t); }

Range LexedText::RangeOf(const antlr4::Token* first, const antlr4::Token* last) const {
  if (!first || !last) return {};
  // Tokens the parser invents while recovering have no position.
  if (first->getStartIndex() == INVALID_INDEX) return {};
  uint32_t b = base + static_cast<uint32_t>(first->getStartIndex());
  if (first->getType() == antlr4::Token::EOF) return {file, b, b};
  size_t stop = last->getStopIndex();
  uint32_t e = (last->getType() == antlr4::Token::EOF || stop == INVALID_INDEX) ? b : base + static_cast<uint32_t>(stop + 1);
  if (e < b) e = b;
  return {file, b, e};
}

}  // namespace syntax

namespace syntax_testing {
using syntax::HeredocLexer;
using syntax::OffsetMap;
using syntax::FastLexer;
using plinth_antlr::PlinthLexer;

std::vector<LexedToken> LexWithGeneratedLexer(std::string_view text) {
  antlr4::ANTLRInputStream input(text.data(), text.size());
  HeredocLexer lexer(&input);
  lexer.removeErrorListeners();
  OffsetMap offsets(text, 0);
  std::vector<LexedToken> out;
  for (;;) {
    std::unique_ptr<antlr4::Token> t = lexer.nextToken();
    size_t type = t->getType();
    if (type == antlr4::Token::EOF) break;
    if (type == PlinthLexer::WS || type == PlinthLexer::NEWLINE) continue;
    out.push_back({type, offsets.ByteOffset(t->getStartIndex()), offsets.ByteOffset(t->getStopIndex() + 1)});
  }
  return out;
}

std::vector<LexedToken> LexWithFastLexer(std::string_view text) {
  FastLexer lexer(text);
  std::vector<LexedToken> out;
  for (;;) {
    std::unique_ptr<antlr4::Token> t = lexer.nextToken();
    size_t type = t->getType();
    if (type == antlr4::Token::EOF) break;
    out.push_back({type, static_cast<uint32_t>(t->getStartIndex()), static_cast<uint32_t>(t->getStopIndex() + 1)});
  }
  return out;
}

}  // namespace syntax_testing

namespace syntax {

bool LexAndCheck(LexedText& lexed, Diagnostics& diags) {
  lexed.tokens.fill();
  bool ok = true;
  int depth = 0;
  bool depth_reported = false;
  std::vector<size_t> open;  // token types of open brackets
  for (antlr4::Token* t : lexed.tokens.getTokens()) {
    Range r = lexed.RangeOf(t);
    switch (t->getType()) {
      case PlinthLexer::BAD_CHAR: {
        std::string text = t->getText();
        diags.Error(DiagCode::UnexpectedCharacter, r, "unexpected character '" + text + "'").help =
            text == "'" ? "strings are written in double quotes: \"text\""
                        : "remove it, or put it inside a string";
        break;
      }
      case PlinthLexer::UNTERMINATED_STRING:
        diags.Error(DiagCode::UnterminatedString, r, "string is not terminated before the end of the line").help =
            "add the closing '\"'; for text over several lines use a heredoc (<<EOT ... EOT)";
        break;
      case PlinthLexer::UNTERMINATED_COMMENT:
        diags.Error(DiagCode::UnterminatedComment, {r.file, r.begin, r.begin + 2}, "block comment is not closed")
            .help = "add '*/' where the comment ends";
        break;
      case kUnterminatedHeredoc: {
        std::string head = t->getText();
        size_t nl = head.find('\n');
        Range first_line{r.file, r.begin, r.begin + static_cast<uint32_t>(nl == std::string::npos ? 2 : nl)};
        size_t p = head[2] == '-' ? 3 : 2, q = p;
        while (q < head.size() && (std::isalnum(static_cast<unsigned char>(head[q])) || head[q] == '_')) ++q;
        diags.Error(DiagCode::UnterminatedHeredoc, first_line,
                    "heredoc has no terminator line '" + head.substr(p, q - p) + "'")
            .help = "end the heredoc with a line containing only '" + head.substr(p, q - p) + "'";
        ok = false;
        break;
      }
      case PlinthLexer::LBRACE:
      case PlinthLexer::LBRACK:
      case PlinthLexer::LPAREN:
        if (++depth > ast::kMaxNesting && !depth_reported) {
          diags.Error(DiagCode::NestingTooDeep, r,
                      "brackets are nested more than " + std::to_string(ast::kMaxNesting) + " levels deep")
              .help = "split the value into locals";
          depth_reported = true;
          ok = false;
        }
        break;
      case PlinthLexer::RBRACE:
      case PlinthLexer::RBRACK:
      case PlinthLexer::RPAREN:
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return ok;
}

namespace {
struct StackJob {
  const std::function<void()>* fn;
};
thread_local bool on_large_stack = false;

void* RunJob(void* arg) {
  on_large_stack = true;
  (*static_cast<StackJob*>(arg)->fn)();
  return nullptr;
}
}  // namespace

bool OnLargeStack() { return on_large_stack; }

bool CheckEncoding(const SourceFile& file, Diagnostics& diags) {
  size_t bad = FindInvalidUtf8(file.text());
  if (bad == std::string_view::npos) return true;
  diags.Error(DiagCode::InvalidEncoding, {file.id(), static_cast<uint32_t>(bad), static_cast<uint32_t>(bad + 1)},
              file.text()[bad] == 0 ? "file contains a NUL byte" : "file is not valid UTF-8")
      .help = "save the file as UTF-8 text";
  return false;
}

void RunOnLargeStack(const std::function<void()>& fn) {
  if (on_large_stack) {
    fn();
    return;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, size_t{512} << 20);
  StackJob job{&fn};
  pthread_t thread;
  if (pthread_create(&thread, &attr, RunJob, &job) != 0) {
    // No thread available: run here; nesting limits still bound the depth.
    pthread_attr_destroy(&attr);
    fn();
    return;
  }
  pthread_attr_destroy(&attr);
  pthread_join(thread, nullptr);
}

}  // namespace syntax

namespace {
TokenKind KindOf(size_t type) {
  using L = plinth_antlr::PlinthLexer;
  switch (type) {
    case L::IDENT: return TokenKind::Ident;
    case L::NUMBER: return TokenKind::Number;
    case L::UNIT_NUMBER: return TokenKind::UnitNumber;
    case L::STRING: return TokenKind::String;
    case syntax::kHeredoc: return TokenKind::Heredoc;
    case L::KW_TRUE: return TokenKind::True;
    case L::KW_FALSE: return TokenKind::False;
    case L::KW_NULL: return TokenKind::Null;
    case L::KW_FOR: return TokenKind::For;
    case L::KW_IN: return TokenKind::In;
    case L::KW_IF: return TokenKind::If;
    case L::LBRACE: return TokenKind::LBrace;
    case L::RBRACE: return TokenKind::RBrace;
    case L::LBRACK: return TokenKind::LBrack;
    case L::RBRACK: return TokenKind::RBrack;
    case L::LPAREN: return TokenKind::LParen;
    case L::RPAREN: return TokenKind::RParen;
    case L::ASSIGN: return TokenKind::Assign;
    case L::ARROW: return TokenKind::Arrow;
    case L::COMMA: return TokenKind::Comma;
    case L::DOT: return TokenKind::Dot;
    case L::COLON: return TokenKind::Colon;
    case L::QUESTION: return TokenKind::Question;
    case L::NOT: return TokenKind::Not;
    case L::PLUS: return TokenKind::Plus;
    case L::MINUS: return TokenKind::Minus;
    case L::STAR: return TokenKind::Star;
    case L::SLASH: return TokenKind::Slash;
    case L::PERCENT: return TokenKind::Percent;
    case L::EQ: return TokenKind::Eq;
    case L::NE: return TokenKind::Ne;
    case L::LT: return TokenKind::Lt;
    case L::LE: return TokenKind::Le;
    case L::GT: return TokenKind::Gt;
    case L::GE: return TokenKind::Ge;
    case L::AND: return TokenKind::And;
    case L::OR: return TokenKind::Or;
    case L::LINE_COMMENT: return TokenKind::LineComment;
    case L::BLOCK_COMMENT: return TokenKind::BlockComment;
    default: return TokenKind::Invalid;
  }
}
}  // namespace

std::vector<Token> Lex(const SourceFile& file, Diagnostics& diags) {
  std::vector<Token> out;
  if (!syntax::CheckEncoding(file, diags)) return out;
  syntax::LexedText lexed(file.text(), file.id(), 0);
  syntax::LexAndCheck(lexed, diags);
  for (antlr4::Token* t : lexed.tokens.getTokens()) {
    size_t type = t->getType();
    if (type == antlr4::Token::EOF || type == plinth_antlr::PlinthLexer::WS ||
        type == plinth_antlr::PlinthLexer::NEWLINE)
      continue;
    Range r = lexed.RangeOf(t);
    out.push_back({KindOf(type), r.begin, r.end});
  }
  return out;
}

}  // namespace plinth
