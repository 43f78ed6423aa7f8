// The formatter works on the token stream (comments included), not on the
// AST: the AST drops comments and the exact spelling of literals, and the
// formatter must keep both. The parser is only run to refuse broken files.
//
// The source is cut into lines where the whitespace between two tokens holds a
// line break; each line is then laid out from its tokens alone (indentation
// from the bracket structure, spacing from the kinds of neighbouring tokens),
// and runs of one-line attributes are aligned. Nothing depends on the original
// whitespace except where lines break and whether a blank line separates them,
// and both survive formatting unchanged, which is what makes it idempotent.

#include "compiler/fmt/fmt.h"

#include <algorithm>
#include <vector>

#include "compiler/syntax/parse.h"

namespace plinth {
namespace {

struct Tok {
  TokenKind kind;
  std::string text;  // normalized by TokenText
  int line;          // index into the formatter's line list
};

struct Line {
  int first = 0;  // token range [first, end)
  int end = 0;
  bool blank_before = false;
  int indent = 0;  // in levels of two spaces
};

bool IsComment(TokenKind k) {
  return k == TokenKind::LineComment || k == TokenKind::BlockComment;
}
bool IsOpener(TokenKind k) {
  return k == TokenKind::LBrace || k == TokenKind::LBrack || k == TokenKind::LParen;
}
bool IsCloser(TokenKind k) {
  return k == TokenKind::RBrace || k == TokenKind::RBrack || k == TokenKind::RParen;
}

// Tokens that can end an operand: after them `-` is binary and `[` indexes.
bool EndsOperand(TokenKind k) {
  switch (k) {
    case TokenKind::Ident:
    case TokenKind::Number:
    case TokenKind::UnitNumber:
    case TokenKind::String:
    case TokenKind::Heredoc:
    case TokenKind::True:
    case TokenKind::False:
    case TokenKind::Null:
    case TokenKind::RParen:
    case TokenKind::RBrack:
    case TokenKind::RBrace: return true;
    default: return false;
  }
}

std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\f')) {
    s.remove_suffix(1);
  }
  return s;
}

// The text of a token as the formatter writes it. Only whitespace that ends
// an output line changes: after a line comment and after a heredoc's opening
// `<<EOT` (a CRLF file's '\r' included). Heredoc bodies stay byte for byte.
std::string TokenText(TokenKind kind, std::string_view s) {
  if (kind == TokenKind::LineComment) return std::string(TrimTrailingSpace(s));
  if (kind == TokenKind::Heredoc) {
    size_t nl = s.find('\n');
    if (nl != std::string_view::npos)
      return std::string(TrimTrailingSpace(s.substr(0, nl))) + std::string(s.substr(nl));
  }
  return std::string(s);
}

// Lexes `file`; nullopt on any lexical error (reported to `diags`).
std::optional<std::vector<Token>> LexClean(const SourceFile& file, Diagnostics& diags) {
  std::vector<Token> raw = Lex(file, diags);
  if (diags.has_errors()) return std::nullopt;
  for (const Token& t : raw) {
    if (t.kind == TokenKind::Invalid) return std::nullopt;
  }
  return raw;
}

std::vector<Tok> TokensOf(const SourceFile& file, const std::vector<Token>& raw) {
  std::vector<Tok> toks;
  toks.reserve(raw.size());
  for (const Token& t : raw) {
    toks.push_back({t.kind, TokenText(t.kind, file.text().substr(t.begin, t.end - t.begin)), 0});
  }
  return toks;
}

class Formatter {
 public:
  Formatter(std::string_view text, const std::vector<Tok>& toks, const std::vector<Token>& raw)
      : text_(text), toks_(toks) {
    SplitLines(raw);
    prev_sig_.resize(toks_.size());
    int last = -1;
    for (size_t i = 0; i < toks_.size(); ++i) {
      prev_sig_[i] = last;
      if (!IsComment(toks_[i].kind)) last = static_cast<int>(i);
    }
  }

  std::string Run() {
    if (toks_.empty()) return "";
    FindItemStarts();
    ComputeIndents();
    std::vector<Rendered> rendered(lines_.size());
    for (size_t l = 0; l < lines_.size(); ++l) rendered[l] = Render(static_cast<int>(l));
    Align(rendered);
    std::string out;
    for (size_t l = 0; l < lines_.size(); ++l) {
      if (lines_[l].blank_before) out += '\n';
      out.append(static_cast<size_t>(lines_[l].indent) * 2, ' ');
      out += rendered[l].code;
      out += '\n';
    }
    return out;
  }

 private:
  struct Rendered {
    std::string code;
    bool alignable = false;                 // a complete one-line `name = value`
    size_t key_end = 0;                     // bytes of `code` taken by the name
    size_t comment_at = std::string::npos;  // where the end-of-line comment starts
  };

  int Size() const { return static_cast<int>(toks_.size()); }

  // First significant (non-comment) token at or after i, or -1.
  int NextSig(int i) const {
    for (; i < Size(); ++i) {
      if (!IsComment(toks_[i].kind)) return i;
    }
    return -1;
  }

  // Last significant token of line l, or -1 when the line holds only comments.
  int LastSigOnLine(int l) const {
    for (int i = lines_[l].end - 1; i >= lines_[l].first; --i) {
      if (!IsComment(toks_[i].kind)) return i;
    }
    return -1;
  }

  void SplitLines(const std::vector<Token>& raw) {
    for (size_t i = 0; i < toks_.size(); ++i) {
      int newlines = 0;
      if (i > 0) {
        for (uint32_t p = raw[i - 1].end; p < raw[i].begin; ++p) newlines += text_[p] == '\n';
      }
      if (i == 0 || newlines > 0) {
        Line line;
        line.first = static_cast<int>(i);
        line.blank_before = i > 0 && newlines > 1;
        lines_.push_back(line);
      }
      lines_.back().end = static_cast<int>(i) + 1;
      toks_[i].line = static_cast<int>(lines_.size()) - 1;
    }
  }

  // Marks the first token of every body item (`name = ...`, `type label... {`)
  // and object item (`key = ...`). Lookahead alone cannot tell `x b {` in
  // `a = x` + `b {}` from a block header, so this walks the file keeping track
  // of what each open bracket holds: an item starts where a name follows the
  // opening `{`, a comma, or a complete operand, outside a block header.
  void FindItemStarts() {
    enum class Ctx { kBody, kObject, kOther };
    std::vector<Ctx> ctx = {Ctx::kBody};
    bool header = false;  // between a block's type and its `{`
    int p = -1;
    item_start_.assign(toks_.size(), false);
    for (int i = NextSig(0); i >= 0; p = i, i = NextSig(i + 1)) {
      TokenKind k = toks_[i].kind;
      bool name = k == TokenKind::Ident || (ctx.back() == Ctx::kObject && k == TokenKind::String);
      if (!header && ctx.back() != Ctx::kOther && name &&
          (p < 0 || toks_[p].kind == TokenKind::LBrace || toks_[p].kind == TokenKind::Comma ||
           EndsOperand(toks_[p].kind))) {
        item_start_[i] = true;
        int next = NextSig(i + 1);
        if (ctx.back() == Ctx::kBody && (next < 0 || toks_[next].kind != TokenKind::Assign)) header = true;
      }
      if (k == TokenKind::LBrace) {
        int next = NextSig(i + 1);
        if (header) {
          ctx.push_back(Ctx::kBody);
        } else if (next >= 0 && toks_[next].kind == TokenKind::For) {
          ctx.push_back(Ctx::kOther);
        } else {
          ctx.push_back(Ctx::kObject);
        }
        header = false;
      } else if (k == TokenKind::LBrack || k == TokenKind::LParen) {
        ctx.push_back(Ctx::kOther);
      } else if (IsCloser(k) && ctx.size() > 1) {
        ctx.pop_back();
      }
    }
  }

  bool IsItemStart(int i) const { return item_start_[i]; }

  bool IsUnary(int i) const {
    if (toks_[i].kind == TokenKind::Not) return true;
    if (toks_[i].kind != TokenKind::Minus) return false;
    int p = prev_sig_[i];
    return p < 0 || !EndsOperand(toks_[p].kind);
  }

  // Indentation: the content of a bracket sits one level deeper than the line
  // that opened it, a line starting with a closing bracket sits at the level
  // of the line that opened that bracket, and a line that continues an
  // expression (it follows neither an opening bracket nor a comma and starts no
  // item) gets one extra level. Comment lines take the level of the code that
  // follows them, except that before a closing bracket they stay inside.
  void ComputeIndents() {
    std::vector<int> open;  // for each open bracket, the indent of its line
    for (size_t l = 0; l < lines_.size(); ++l) {
      Line& line = lines_[l];
      int fs = NextSig(line.first);
      bool code_line = fs >= 0 && fs < line.end;
      if (code_line && IsCloser(toks_[fs].kind)) {
        line.indent = open.empty() ? 0 : open.back();
      } else {
        int base = open.empty() ? 0 : open.back() + 1;
        int p = prev_sig_[line.first];
        bool continuation = p >= 0 && !IsOpener(toks_[p].kind) && toks_[p].kind != TokenKind::Comma &&
                            fs >= 0 && !IsCloser(toks_[fs].kind) && !IsItemStart(fs);
        line.indent = base + (continuation ? 1 : 0);
      }
      // Blank lines right inside a bracket or right before its closer go.
      if (line.blank_before) {
        int last_prev = LastSigOnLine(static_cast<int>(l) - 1);
        if ((last_prev >= 0 && IsOpener(toks_[last_prev].kind)) || (code_line && IsCloser(toks_[fs].kind))) {
          line.blank_before = false;
        }
      }
      for (int i = line.first; i < line.end; ++i) {
        if (IsOpener(toks_[i].kind)) {
          open.push_back(line.indent);
        } else if (IsCloser(toks_[i].kind) && !open.empty()) {
          open.pop_back();
        }
      }
    }
  }

  // Whether one space separates tokens a and b = a + 1 on the same line.
  bool SpaceBetween(int a, int b) const {
    TokenKind ka = toks_[a].kind, kb = toks_[b].kind;
    if (IsComment(kb)) return ka != TokenKind::LParen && ka != TokenKind::LBrack;
    if (IsComment(ka)) return kb != TokenKind::RParen && kb != TokenKind::RBrack && kb != TokenKind::Comma;
    if (ka == TokenKind::LParen || ka == TokenKind::LBrack) return false;
    if (kb == TokenKind::RParen || kb == TokenKind::RBrack) return false;
    if (ka == TokenKind::LBrace) return kb != TokenKind::RBrace;
    if (kb == TokenKind::RBrace) return true;
    if (kb == TokenKind::Comma) return false;
    if (ka == TokenKind::Comma) return true;
    if (ka == TokenKind::Dot || kb == TokenKind::Dot) return false;
    if (kb == TokenKind::LParen) return ka != TokenKind::Ident;  // f(x) is a call
    if (kb == TokenKind::LBrack) return !EndsOperand(ka);        // x[0] is an index
    if ((ka == TokenKind::Minus || ka == TokenKind::Not) && IsUnary(a)) {
      return ka == TokenKind::Minus && kb == TokenKind::Minus;  // `- -x`, not `--x`
    }
    return true;
  }

  // End (exclusive) of the attribute or object item whose name is token f:
  // the first significant token after its value at the same depth, that is a
  // comma, the closer of the enclosing bracket or the start of the next item.
  int ItemEnd(int f) const {
    int depth = 0;
    int value = NextSig(f + 2);
    for (int j = value; j >= 0; j = NextSig(j + 1)) {
      TokenKind k = toks_[j].kind;
      if (depth == 0 && (IsCloser(k) || k == TokenKind::Comma || (j != value && IsItemStart(j)))) return j;
      if (IsOpener(k)) ++depth;
      if (IsCloser(k)) --depth;
    }
    return Size();
  }

  // A line is alignable when it holds exactly one complete `name = value`
  // (plus an optional comma and end-of-line comments) and no multi-line token.
  bool Alignable(int l) const {
    const Line& line = lines_[l];
    int f = line.first;
    TokenKind k = toks_[f].kind;
    if ((k != TokenKind::Ident && k != TokenKind::String) || f + 1 >= line.end ||
        toks_[f + 1].kind != TokenKind::Assign) {
      return false;
    }
    for (int i = f; i < line.end; ++i) {
      if (toks_[i].text.find('\n') != std::string::npos) return false;
    }
    int end = ItemEnd(f);
    int last = end < Size() ? prev_sig_[end] : IsComment(toks_.back().kind) ? prev_sig_.back() : Size() - 1;
    if (last < 0 || toks_[last].line != l) return false;
    if (end == Size()) return true;
    if (toks_[end].kind == TokenKind::Comma && toks_[end].line == l) {
      int after = NextSig(end + 1);
      return after < 0 || toks_[after].line != l;
    }
    return toks_[end].line != l;
  }

  Rendered Render(int l) const {
    const Line& line = lines_[l];
    Rendered r;
    int last_sig = LastSigOnLine(l);
    for (int i = line.first; i < line.end; ++i) {
      if (i > line.first && SpaceBetween(i - 1, i)) r.code += ' ';
      if (i == last_sig + 1 && last_sig >= 0) r.comment_at = r.code.size();
      r.code += toks_[i].text;
      if (i == line.first) r.key_end = r.code.size();
    }
    r.alignable = Alignable(l);
    return r;
  }

  // Pads names so `=` lines up, then end-of-line comments, within each run of
  // alignable lines at the same indent. Comment-only lines do not end a run;
  // a blank line or any other line does.
  void Align(std::vector<Rendered>& rendered) const {
    std::vector<size_t> run;
    auto flush = [&] {
      size_t width = 0;
      for (size_t l : run)
        width = std::max<size_t>(
            width, CountCodePoints(std::string_view(rendered[l].code).substr(0, rendered[l].key_end)));
      for (size_t l : run) {
        Rendered& r = rendered[l];
        size_t pad = width - CountCodePoints(std::string_view(r.code).substr(0, r.key_end));
        r.code.insert(r.key_end, pad, ' ');
        if (r.comment_at != std::string::npos) r.comment_at += pad;
      }
      // Comments start one space after the longest code among the lines that have one.
      size_t column = 0;
      for (size_t l : run) {
        const Rendered& r = rendered[l];
        if (r.comment_at != std::string::npos) {
          column = std::max<size_t>(
              column,
              CountCodePoints(TrimTrailingSpace(std::string_view(r.code).substr(0, r.comment_at))) + 1);
        }
      }
      for (size_t l : run) {
        Rendered& r = rendered[l];
        if (r.comment_at == std::string::npos) continue;
        std::string code(TrimTrailingSpace(std::string_view(r.code).substr(0, r.comment_at)));
        std::string comment = r.code.substr(r.comment_at);
        size_t used = CountCodePoints(code);
        r.code = code + std::string(column - used, ' ') + comment;
      }
      run.clear();
    };
    for (size_t l = 0; l < lines_.size(); ++l) {
      if (lines_[l].blank_before) flush();
      if (rendered[l].alignable) {
        if (!run.empty() && lines_[run.front()].indent != lines_[l].indent) flush();
        run.push_back(l);
      } else if (LastSigOnLine(static_cast<int>(l)) >= 0) {
        flush();
      }
    }
    flush();
  }

  std::string_view text_;
  std::vector<Tok> toks_;
  std::vector<Line> lines_;
  std::vector<int> prev_sig_;  // previous significant token of each token, or -1
  std::vector<bool> item_start_;
};

// Whether `text` lexes cleanly into exactly `toks` (kinds and normalized texts).
bool SameTokensAs(const std::vector<Tok>& toks, std::string_view text) {
  SourceFile file(0, "<formatted>", std::string(text));
  Diagnostics diags;
  std::optional<std::vector<Token>> raw = LexClean(file, diags);
  if (!raw || raw->size() != toks.size()) return false;
  std::vector<Tok> other = TokensOf(file, *raw);
  for (size_t i = 0; i < toks.size(); ++i) {
    if (toks[i].kind != other[i].kind || toks[i].text != other[i].text) return false;
  }
  return true;
}

std::optional<std::string> FormatImpl(const SourceFile& file, Diagnostics& diags,
                                      const std::function<std::string(std::string)>* tamper,
                                      bool* internal_failure) {
  if (internal_failure) *internal_failure = false;
  size_t errors_before = diags.error_count();
  Parse(file, diags);
  if (diags.error_count() > errors_before) return std::nullopt;

  Diagnostics lex_diags;
  std::optional<std::vector<Token>> raw = LexClean(file, lex_diags);
  if (!raw) {
    // Parse reports lexical errors too; this only guards against the two disagreeing.
    diags.Append(std::move(lex_diags));
    return std::nullopt;
  }

  std::vector<Tok> toks = TokensOf(file, *raw);
  std::string out = Formatter(file.text(), toks, *raw).Run();
  if (tamper) out = (*tamper)(std::move(out));
  if (!SameTokensAs(toks, out)) {
    if (internal_failure) *internal_failure = true;
    return std::string(file.text());
  }
  return out;
}

}  // namespace

bool SameTokens(std::string_view before, std::string_view after) {
  SourceFile a(0, "<before>", std::string(before));
  Diagnostics diags;
  std::optional<std::vector<Token>> raw = LexClean(a, diags);
  return raw && SameTokensAs(TokensOf(a, *raw), after);
}

std::optional<std::string> Format(const SourceFile& file, Diagnostics& diags, bool* internal_failure) {
  return FormatImpl(file, diags, nullptr, internal_failure);
}

namespace fmt_testing {
std::optional<std::string> FormatTampered(const SourceFile& file, Diagnostics& diags,
                                          const std::function<std::string(std::string)>& tamper,
                                          bool* internal_failure) {
  return FormatImpl(file, diags, &tamper, internal_failure);
}
}  // namespace fmt_testing

}  // namespace plinth
