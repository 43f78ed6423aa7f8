// ANTLR parse tree -> Plinth AST.
//
// Parsing is two-stage: SLL prediction with a bail-out strategy first (fast,
// enough for nearly every real file), then full LL with error recovery when
// SLL fails, so error messages and recovery come from the precise mode.

#include "compiler/syntax/parse.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "PlinthBaseVisitor.h"
#include "PlinthParser.h"
#include "compiler/syntax/internal.h"

namespace plinth {
namespace syntax {
namespace {

using plinth_antlr::PlinthLexer;
using plinth_antlr::PlinthParser;

std::string TokenDisplay(const antlr4::Token* t) {
  if (!t || t->getType() == antlr4::Token::EOF) return "end of file";
  std::string text = t->getText();
  if (t->getType() == PlinthLexer::STRING) return "string " + (text.size() > 20 ? text.substr(0, 17) + "...\"" : text);
  if (t->getType() == kHeredoc) return "heredoc";
  if (text.size() > 24) text = text.substr(0, 21) + "...";
  return "'" + text + "'";
}

std::string ExpectedDisplay(const antlr4::misc::IntervalSet& set, const antlr4::dfa::Vocabulary& vocab) {
  std::vector<std::string> names;
  bool expr = false;
  for (size_t t : set.toList()) {
    switch (t) {
      case PlinthLexer::NUMBER:
      case PlinthLexer::UNIT_NUMBER:
      case PlinthLexer::STRING:
      case kHeredoc:
      case PlinthLexer::HEREDOC_START:
      case PlinthLexer::KW_TRUE:
      case PlinthLexer::KW_FALSE:
      case PlinthLexer::KW_NULL:
      case PlinthLexer::NOT:
      case PlinthLexer::MINUS:
      case PlinthLexer::LPAREN: expr = true; continue;
      case PlinthLexer::IDENT: names.push_back("a name"); continue;
      case antlr4::Token::EOF: names.push_back("end of file"); continue;
      default: break;
    }
    std::string lit = vocab.getLiteralName(t);
    if (!lit.empty()) names.push_back(lit);
  }
  if (expr) {
    std::vector<std::string> keep;
    for (auto& n : names) {
      if (n != "'['" && n != "'{'" && n != "a name") keep.push_back(n);
    }
    names = std::move(keep);
    names.insert(names.begin(), "an expression");
  }
  if (names.empty() || names.size() > 6) return "";
  std::string s;
  for (size_t i = 0; i < names.size(); ++i) {
    s += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
  }
  return s;
}

class ErrorListener : public antlr4::BaseErrorListener {
 public:
  ErrorListener(LexedText& lexed, Diagnostics& diags) : lexed_(lexed), diags_(diags) {}

  void syntaxError(antlr4::Recognizer* recognizer, antlr4::Token* offending, size_t, size_t, const std::string&,
                   std::exception_ptr) override {
    ++count_;
    if (offending && offending->getStartIndex() != INVALID_INDEX) {
      error_offsets.push_back(lexed_.RangeOf(offending).begin);
    }
    // Lexical errors were reported already.
    if (offending) {
      switch (offending->getType()) {
        case PlinthLexer::BAD_CHAR:
        case PlinthLexer::UNTERMINATED_STRING:
        case PlinthLexer::UNTERMINATED_COMMENT:
        case kUnterminatedHeredoc: return;
        default: break;
      }
    }
    if (reported_ >= kMaxReported) return;
    // One error per offending token: recovery may report the same spot twice.
    size_t index = offending ? offending->getTokenIndex() : 0;
    if (reported_ > 0 && index == last_index_) return;
    last_index_ = index;
    ++reported_;

    auto* parser = static_cast<antlr4::Parser*>(recognizer);
    std::string expected;
    try {
      expected = ExpectedDisplay(parser->getExpectedTokens(), parser->getVocabulary());
    } catch (...) {
    }
    std::string message = "unexpected " + TokenDisplay(offending);
    if (!expected.empty()) message += "; expected " + expected;
    // `name value` inside a block: the '=' is missing.
    antlr4::Token* previous = nullptr;
    if (offending && offending->getTokenIndex() != INVALID_INDEX) {
      for (size_t i = offending->getTokenIndex(); i-- > 0;) {
        antlr4::Token* t = lexed_.tokens.get(i);
        if (t->getChannel() == antlr4::Token::DEFAULT_CHANNEL) {
          previous = t;
          break;
        }
      }
    }
    std::string missing_assign;
    size_t rule = parser->getContext() ? parser->getContext()->getRuleIndex() : SIZE_MAX;
    bool at_item = rule == PlinthParser::RuleFile || rule == PlinthParser::RuleBlock ||
                   rule == PlinthParser::RuleItem || rule == PlinthParser::RuleAttribute;
    if (at_item && offending && previous && previous->getType() == PlinthLexer::IDENT) {
      switch (offending->getType()) {
        case PlinthLexer::NUMBER:
        case PlinthLexer::UNIT_NUMBER:
        case PlinthLexer::KW_TRUE:
        case PlinthLexer::KW_FALSE:
        case PlinthLexer::KW_NULL:
        case PlinthLexer::LBRACK:
          missing_assign = previous->getText();
          message = "expected '=' after '" + missing_assign + "'";
          break;
        default: break;
      }
    }
    Diagnostic& d = diags_.Error(DiagCode::SyntaxError, lexed_.RangeOf(offending), message);
    if (!missing_assign.empty()) {
      d.help = "write: " + missing_assign + " = " + offending->getText();
      return;
    }
    if (offending) {
      std::string text = offending->getText();
      if (text == ":" && expected.find("'='") != std::string::npos) {
        d.help = "attributes are assigned with '=': name = value";
      } else if (text == "," && expected.find("a name") != std::string::npos) {
        d.help = "attributes in a block are not separated by commas";
      } else if (offending->getType() == antlr4::Token::EOF) {
        d.help = "a block or bracket opened above is not closed";
      } else if (offending->getType() == PlinthLexer::UNIT_NUMBER || offending->getType() == PlinthLexer::NUMBER) {
        d.help = "a number must be followed by an operator; units are written without a space: 30s, 10GiB";
      }
    }
  }

  size_t count() const { return count_; }
  std::vector<uint32_t> error_offsets;  // every syntax error, reported or not

 private:
  static constexpr size_t kMaxReported = 50;
  LexedText& lexed_;
  Diagnostics& diags_;
  size_t count_ = 0;
  size_t reported_ = 0;
  size_t last_index_ = 0;
};

// Which labeled alternative a context is: one virtual call through the
// generated visitor instead of a chain of dynamic_casts (which were a fifth of
// the parse time).
enum class Alt : uint8_t { PrimaryExpr, GetAttrExpr, SplatExpr, IndexExpr, UnaryExpr, BinaryExpr, ConditionalExpr, NumberLit, UnitLit, StringLit, HeredocLit, TrueLit, FalseLit, NullLit, CallExpr, NameExpr, ParenExpr, ForListExpr, ForObjectExpr, ListExpr, ObjectExpr, Other };

class Classifier : public plinth_antlr::PlinthBaseVisitor {
 public:
  Alt alt = Alt::Other;
  antlrcpp::Any visitPrimaryExpr(PlinthParser::PrimaryExprContext*) override {
    alt = Alt::PrimaryExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitGetAttrExpr(PlinthParser::GetAttrExprContext*) override {
    alt = Alt::GetAttrExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitSplatExpr(PlinthParser::SplatExprContext*) override {
    alt = Alt::SplatExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitIndexExpr(PlinthParser::IndexExprContext*) override {
    alt = Alt::IndexExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitUnaryExpr(PlinthParser::UnaryExprContext*) override {
    alt = Alt::UnaryExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitBinaryExpr(PlinthParser::BinaryExprContext*) override {
    alt = Alt::BinaryExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitConditionalExpr(PlinthParser::ConditionalExprContext*) override {
    alt = Alt::ConditionalExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitNumberLit(PlinthParser::NumberLitContext*) override {
    alt = Alt::NumberLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitUnitLit(PlinthParser::UnitLitContext*) override {
    alt = Alt::UnitLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitStringLit(PlinthParser::StringLitContext*) override {
    alt = Alt::StringLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitHeredocLit(PlinthParser::HeredocLitContext*) override {
    alt = Alt::HeredocLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitTrueLit(PlinthParser::TrueLitContext*) override {
    alt = Alt::TrueLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitFalseLit(PlinthParser::FalseLitContext*) override {
    alt = Alt::FalseLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitNullLit(PlinthParser::NullLitContext*) override {
    alt = Alt::NullLit;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitCallExpr(PlinthParser::CallExprContext*) override {
    alt = Alt::CallExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitNameExpr(PlinthParser::NameExprContext*) override {
    alt = Alt::NameExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitParenExpr(PlinthParser::ParenExprContext*) override {
    alt = Alt::ParenExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitForListExpr(PlinthParser::ForListExprContext*) override {
    alt = Alt::ForListExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitForObjectExpr(PlinthParser::ForObjectExprContext*) override {
    alt = Alt::ForObjectExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitListExpr(PlinthParser::ListExprContext*) override {
    alt = Alt::ListExpr;
    return antlrcpp::Any();
  }
  antlrcpp::Any visitObjectExpr(PlinthParser::ObjectExprContext*) override {
    alt = Alt::ObjectExpr;
    return antlrcpp::Any();
  }
};

Alt Classify(antlr4::ParserRuleContext* ctx) {
  Classifier c;
  ctx->accept(&c);
  return c.alt;
}

template <typename T>
struct AltOf;
template <>
struct AltOf<PlinthParser::PrimaryExprContext> {
  static constexpr Alt value = Alt::PrimaryExpr;
};
template <>
struct AltOf<PlinthParser::GetAttrExprContext> {
  static constexpr Alt value = Alt::GetAttrExpr;
};
template <>
struct AltOf<PlinthParser::SplatExprContext> {
  static constexpr Alt value = Alt::SplatExpr;
};
template <>
struct AltOf<PlinthParser::IndexExprContext> {
  static constexpr Alt value = Alt::IndexExpr;
};
template <>
struct AltOf<PlinthParser::UnaryExprContext> {
  static constexpr Alt value = Alt::UnaryExpr;
};
template <>
struct AltOf<PlinthParser::BinaryExprContext> {
  static constexpr Alt value = Alt::BinaryExpr;
};
template <>
struct AltOf<PlinthParser::ConditionalExprContext> {
  static constexpr Alt value = Alt::ConditionalExpr;
};
template <>
struct AltOf<PlinthParser::NumberLitContext> {
  static constexpr Alt value = Alt::NumberLit;
};
template <>
struct AltOf<PlinthParser::UnitLitContext> {
  static constexpr Alt value = Alt::UnitLit;
};
template <>
struct AltOf<PlinthParser::StringLitContext> {
  static constexpr Alt value = Alt::StringLit;
};
template <>
struct AltOf<PlinthParser::HeredocLitContext> {
  static constexpr Alt value = Alt::HeredocLit;
};
template <>
struct AltOf<PlinthParser::TrueLitContext> {
  static constexpr Alt value = Alt::TrueLit;
};
template <>
struct AltOf<PlinthParser::FalseLitContext> {
  static constexpr Alt value = Alt::FalseLit;
};
template <>
struct AltOf<PlinthParser::NullLitContext> {
  static constexpr Alt value = Alt::NullLit;
};
template <>
struct AltOf<PlinthParser::CallExprContext> {
  static constexpr Alt value = Alt::CallExpr;
};
template <>
struct AltOf<PlinthParser::NameExprContext> {
  static constexpr Alt value = Alt::NameExpr;
};
template <>
struct AltOf<PlinthParser::ParenExprContext> {
  static constexpr Alt value = Alt::ParenExpr;
};
template <>
struct AltOf<PlinthParser::ForListExprContext> {
  static constexpr Alt value = Alt::ForListExpr;
};
template <>
struct AltOf<PlinthParser::ForObjectExprContext> {
  static constexpr Alt value = Alt::ForObjectExpr;
};
template <>
struct AltOf<PlinthParser::ListExprContext> {
  static constexpr Alt value = Alt::ListExpr;
};
template <>
struct AltOf<PlinthParser::ObjectExprContext> {
  static constexpr Alt value = Alt::ObjectExpr;
};
template <typename T, typename C>
T* AltCast(C* ctx, Alt alt) {
  return alt == AltOf<T>::value ? static_cast<T*>(ctx) : nullptr;
}

ast::Op OpFromToken(size_t type) {
  switch (type) {
    case PlinthLexer::NOT: return ast::Op::Not;
    case PlinthLexer::STAR: return ast::Op::Mul;
    case PlinthLexer::SLASH: return ast::Op::Div;
    case PlinthLexer::PERCENT: return ast::Op::Mod;
    case PlinthLexer::PLUS: return ast::Op::Add;
    case PlinthLexer::MINUS: return ast::Op::Sub;
    case PlinthLexer::LT: return ast::Op::Lt;
    case PlinthLexer::LE: return ast::Op::Le;
    case PlinthLexer::GT: return ast::Op::Gt;
    case PlinthLexer::GE: return ast::Op::Ge;
    case PlinthLexer::EQ: return ast::Op::Eq;
    case PlinthLexer::NE: return ast::Op::Ne;
    case PlinthLexer::AND: return ast::Op::And;
    default: return ast::Op::Or;
  }
}

// Closest known unit for a mistyped suffix ("gib" -> "GiB").
std::string SuggestUnit(std::string_view suffix) {
  for (const UnitInfo& u : AllUnits()) {
    if (u.suffix.size() != suffix.size()) continue;
    bool same = true;
    for (size_t i = 0; i < suffix.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(u.suffix[i])) == std::tolower(static_cast<unsigned char>(suffix[i]));
    }
    if (same) return std::string(u.suffix);
  }
  static const std::pair<std::string_view, std::string_view> common[] = {
      {"sec", "s"}, {"secs", "s"}, {"min", "m"}, {"mins", "m"}, {"hr", "h"}, {"hrs", "h"}, {"day", "d"},
      {"days", "d"}, {"k", "KB"}, {"M", "MB"}, {"G", "GB"}, {"T", "TB"}, {"Ki", "KiB"}, {"Mi", "MiB"},
      {"Gi", "GiB"}, {"Ti", "TiB"}, {"us", "ms"}, {"ns", "ms"}, {"pct", "%"}, {"percent", "%"},
      {"y", "d"}, {"yr", "d"}, {"year", "d"}, {"years", "d"}, {"mo", "d"}, {"month", "d"}, {"months", "d"},
      {"week", "w"}, {"weeks", "w"}, {"hour", "h"}, {"hours", "h"}, {"minute", "m"}, {"minutes", "m"},
      {"second", "s"}, {"seconds", "s"}, {"b", "B"}, {"bytes", "B"}};
  for (auto [bad, good] : common) {
    if (bad == suffix) return std::string(good);
  }
  return "";
}

class Builder {
 public:
  Builder(LexedText& lexed, Diagnostics& diags, int depth) : lexed_(lexed), diags_(diags), depth_(depth) {}

  ast::Body BuildItems(const std::vector<PlinthParser::ItemContext*>& items, bool* has_errors) {
    ast::Body body;
    for (auto* item : items) {
      if (!item) continue;
      if (item->exception) *has_errors = true;
      if (auto* a = item->attribute()) {
        body.attributes.push_back(BuildAttribute(a, has_errors));
      } else if (auto* b = item->block()) {
        body.blocks.push_back(BuildBlock(b));
      } else {
        *has_errors = true;
      }
    }
    return body;
  }

  ast::ExprPtr BuildExpr(PlinthParser::ExprContext* ctx) {
    if (!ctx || ctx->exception) return Error(ctx);
    if (++depth_ > ast::kMaxNesting) {
      --depth_;
      has_errors = true;
      if (!depth_reported_) {
        depth_reported_ = true;
        diags_.Error(DiagCode::NestingTooDeep, RangeOf(ctx),
                     "expression is nested more than " + std::to_string(ast::kMaxNesting) + " levels deep")
            .help = "split the expression into locals";
      }
      return std::make_unique<ast::Error>(RangeOf(ctx));
    }
    ast::ExprPtr e = BuildExprInner(ctx);
    --depth_;
    return e;
  }

  bool has_errors = false;

 private:
  Range RangeOf(antlr4::ParserRuleContext* ctx) const {
    if (!ctx || !ctx->getStart()) return {};
    antlr4::Token* stop = ctx->getStop();
    if (!stop || stop->getTokenIndex() < ctx->getStart()->getTokenIndex()) stop = ctx->getStart();
    return lexed_.RangeOf(ctx->getStart(), stop);
  }
  Range RangeOf(antlr4::tree::TerminalNode* node) const {
    return node ? lexed_.RangeOf(node->getSymbol()) : Range{};
  }
  static bool Missing(antlr4::tree::TerminalNode* node) {
    return !node || node->getSymbol()->getTokenIndex() == INVALID_INDEX;
  }

  ast::ExprPtr Error(antlr4::ParserRuleContext* ctx) {
    has_errors = true;
    return std::make_unique<ast::Error>(RangeOf(ctx));
  }

  ast::Attribute BuildAttribute(PlinthParser::AttributeContext* ctx, bool* has_errors_out) {
    ast::Attribute a;
    a.name = ctx->IDENT() ? ctx->IDENT()->getText() : "";
    a.name_range = RangeOf(ctx->IDENT());
    a.range = RangeOf(ctx);
    a.value = BuildExpr(ctx->expr());
    if (ctx->exception) *has_errors_out = true;
    return a;
  }

  ast::Block BuildBlock(PlinthParser::BlockContext* ctx) {
    ast::Block b;
    b.type = ctx->IDENT() ? ctx->IDENT()->getText() : "";
    b.type_range = RangeOf(ctx->IDENT());
    b.range = RangeOf(ctx);
    b.has_errors = ctx->exception != nullptr || Missing(ctx->LBRACE()) || Missing(ctx->RBRACE());
    for (auto* l : ctx->label()) {
      ast::Label label;
      label.range = RangeOf(l);
      if (l->STRING()) {
        ast::ExprPtr s = BuildStringLiteral(l->STRING()->getText(), lexed_.file, label.range.begin, depth_, diags_);
        if (s->kind == ast::ExprKind::Literal && s->As<ast::Literal>().value.kind() == Value::Kind::String) {
          label.value = s->As<ast::Literal>().value.as_string();
        } else if (s->kind == ast::ExprKind::Template) {
          diags_.Error(DiagCode::InvalidLabels, label.range, "block labels cannot contain interpolations").help =
              "write the label as a plain string; use for_each to create several instances";
          b.has_errors = true;
        }
      } else if (l->IDENT()) {
        label.value = l->IDENT()->getText();
        label.quoted = false;
      }
      b.labels.push_back(std::move(label));
    }
    b.body = BuildItems(ctx->item(), &b.has_errors);
    return b;
  }

  ast::ExprPtr BuildExprInner(PlinthParser::ExprContext* ctx) {
    Range range = RangeOf(ctx);
    Alt alt = Classify(ctx);
    if (auto* p = AltCast<PlinthParser::PrimaryExprContext>(ctx, alt)) return BuildPrimary(p->primary());
    if (auto* g = AltCast<PlinthParser::GetAttrExprContext>(ctx, alt)) {
      ast::ExprPtr object = BuildExpr(g->expr());
      if (Missing(g->IDENT())) return Error(ctx);
      std::string name = g->IDENT()->getText();
      if (object->kind == ast::ExprKind::Splat) {
        auto& splat = static_cast<ast::Splat&>(*object);
        splat.chain.push_back({name, nullptr, RangeOf(g->IDENT())});
        splat.range = range;
        return object;
      }
      return std::make_unique<ast::GetAttr>(range, std::move(object), name, RangeOf(g->IDENT()));
    }
    if (auto* s = AltCast<PlinthParser::SplatExprContext>(ctx, alt)) {
      ast::ExprPtr source = BuildExpr(s->expr());
      if (source->kind == ast::ExprKind::Splat) {
        diags_.Error(DiagCode::InvalidOperation, range, "a splat cannot be applied to a splat").help =
            "use flatten(list[*].attribute) to combine nested lists";
        return Error(ctx);
      }
      return std::make_unique<ast::Splat>(range, std::move(source));
    }
    if (auto* x = AltCast<PlinthParser::IndexExprContext>(ctx, alt)) {
      auto exprs = x->expr();
      ast::ExprPtr object = BuildExpr(exprs.size() > 0 ? exprs[0] : nullptr);
      ast::ExprPtr key = BuildExpr(exprs.size() > 1 ? exprs[1] : nullptr);
      if (object->kind == ast::ExprKind::Splat) {
        auto& splat = static_cast<ast::Splat&>(*object);
        Range step{range.file, key->range.begin, range.end};
        splat.chain.push_back({"", std::move(key), step});
        splat.range = range;
        return object;
      }
      return std::make_unique<ast::Index>(range, std::move(object), std::move(key));
    }
    if (auto* u = AltCast<PlinthParser::UnaryExprContext>(ctx, alt)) {
      ast::Op op = u->op && u->op->getType() == PlinthLexer::NOT ? ast::Op::Not : ast::Op::Neg;
      return std::make_unique<ast::Unary>(range, op, BuildExpr(u->expr()));
    }
    if (auto* b = AltCast<PlinthParser::BinaryExprContext>(ctx, alt)) {
      auto exprs = b->expr();
      ast::ExprPtr lhs = BuildExpr(exprs.size() > 0 ? exprs[0] : nullptr);
      ast::ExprPtr rhs = BuildExpr(exprs.size() > 1 ? exprs[1] : nullptr);
      ast::Op op = OpFromToken(b->op ? b->op->getType() : 0);
      return std::make_unique<ast::Binary>(range, op, b->op ? lexed_.RangeOf(b->op) : range, std::move(lhs),
                                           std::move(rhs));
    }
    if (auto* c = AltCast<PlinthParser::ConditionalExprContext>(ctx, alt)) {
      auto exprs = c->expr();
      auto get = [&](size_t i) { return BuildExpr(i < exprs.size() ? exprs[i] : nullptr); };
      ast::ExprPtr cond = get(0), then = get(1), otherwise = get(2);
      return std::make_unique<ast::Conditional>(range, std::move(cond), std::move(then), std::move(otherwise));
    }
    return Error(ctx);
  }

  ast::ExprPtr BuildPrimary(PlinthParser::PrimaryContext* ctx) {
    if (!ctx || ctx->exception) return Error(ctx);
    Range range = RangeOf(ctx);
    Alt alt = Classify(ctx);
    if (auto* n = AltCast<PlinthParser::NumberLitContext>(ctx, alt)) {
      std::string text = n->NUMBER()->getText();
      return std::make_unique<ast::Literal>(range, Value::Number(std::strtod(text.c_str(), nullptr)));
    }
    if (auto* u = AltCast<PlinthParser::UnitLitContext>(ctx, alt)) return BuildUnit(u->UNIT_NUMBER()->getText(), range);
    if (auto* s = AltCast<PlinthParser::StringLitContext>(ctx, alt)) {
      return BuildStringLiteral(s->STRING()->getText(), lexed_.file, range.begin, depth_, diags_);
    }
    if (auto* h = AltCast<PlinthParser::HeredocLitContext>(ctx, alt)) {
      return BuildHeredoc(h->HEREDOC()->getText(), lexed_.file, range.begin, depth_, diags_);
    }
    if (AltCast<PlinthParser::TrueLitContext>(ctx, alt)) return std::make_unique<ast::Literal>(range, Value::Bool(true));
    if (AltCast<PlinthParser::FalseLitContext>(ctx, alt)) return std::make_unique<ast::Literal>(range, Value::Bool(false));
    if (AltCast<PlinthParser::NullLitContext>(ctx, alt)) return std::make_unique<ast::Literal>(range, Value::Null());
    if (auto* c = AltCast<PlinthParser::CallExprContext>(ctx, alt)) {
      auto call = std::make_unique<ast::Call>(range, c->IDENT()->getText(), RangeOf(c->IDENT()));
      for (auto* arg : c->expr()) call->args.push_back(BuildExpr(arg));
      if (Missing(c->RPAREN())) has_errors = true;
      return call;
    }
    if (auto* n = AltCast<PlinthParser::NameExprContext>(ctx, alt)) {
      return std::make_unique<ast::Name>(range, n->IDENT()->getText());
    }
    if (auto* p = AltCast<PlinthParser::ParenExprContext>(ctx, alt)) {
      ast::ExprPtr inner = BuildExpr(p->expr());
      return inner;
    }
    if (auto* l = AltCast<PlinthParser::ListExprContext>(ctx, alt)) {
      auto list = std::make_unique<ast::List>(range);
      for (auto* item : l->expr()) list->items.push_back(BuildExpr(item));
      return list;
    }
    if (auto* o = AltCast<PlinthParser::ObjectExprContext>(ctx, alt)) {
      auto object = std::make_unique<ast::Object>(range);
      for (auto* item : o->objectItem()) {
        if (!item || !item->key) continue;
        ast::ObjectItem oi;
        oi.key_range = lexed_.RangeOf(item->key);
        if (item->key->getType() == PlinthLexer::STRING) {
          ast::ExprPtr k = BuildStringLiteral(item->key->getText(), lexed_.file, oi.key_range.begin, depth_, diags_);
          if (k->kind != ast::ExprKind::Literal) {
            diags_.Error(DiagCode::InvalidTemplate, oi.key_range, "object keys cannot contain interpolations").help =
                "build computed keys with a for expression: { for k in list : \"${k}-x\" => ... }";
            continue;
          }
          oi.key = k->As<ast::Literal>().value.kind() == Value::Kind::String ? k->As<ast::Literal>().value.as_string() : "";
        } else {
          oi.key = item->key->getText();
        }
        oi.value = BuildExpr(item->expr());
        object->items.push_back(std::move(oi));
      }
      return object;
    }
    if (auto* f = AltCast<PlinthParser::ForListExprContext>(ctx, alt)) {
      auto e = std::make_unique<ast::For>(range, false);
      auto ids = f->IDENT();
      auto exprs = f->expr();
      SetForVars(*e, ids);
      e->collection = BuildExpr(exprs.size() > 0 ? exprs[0] : nullptr);
      e->value = BuildExpr(exprs.size() > 1 ? exprs[1] : nullptr);
      if (f->KW_IF()) e->cond = BuildExpr(exprs.size() > 2 ? exprs[2] : nullptr);
      return e;
    }
    if (auto* f = AltCast<PlinthParser::ForObjectExprContext>(ctx, alt)) {
      auto e = std::make_unique<ast::For>(range, true);
      auto ids = f->IDENT();
      auto exprs = f->expr();
      SetForVars(*e, ids);
      e->collection = BuildExpr(exprs.size() > 0 ? exprs[0] : nullptr);
      e->key = BuildExpr(exprs.size() > 1 ? exprs[1] : nullptr);
      e->value = BuildExpr(exprs.size() > 2 ? exprs[2] : nullptr);
      if (f->KW_IF()) e->cond = BuildExpr(exprs.size() > 3 ? exprs[3] : nullptr);
      return e;
    }
    return Error(ctx);
  }

  void SetForVars(ast::For& e, const std::vector<antlr4::tree::TerminalNode*>& ids) {
    if (ids.size() >= 2) {
      e.key_var = ids[0]->getText();
      e.key_var_range = RangeOf(ids[0]);
      e.value_var = ids[1]->getText();
      e.value_var_range = RangeOf(ids[1]);
    } else if (ids.size() == 1) {
      e.value_var = ids[0]->getText();
      e.value_var_range = RangeOf(ids[0]);
    }
  }

  ast::ExprPtr BuildUnit(const std::string& text, Range range) {
    size_t i = 0;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
    std::string suffix = text.substr(i);
    double magnitude = std::strtod(text.substr(0, i).c_str(), nullptr);
    const UnitInfo* unit = FindUnit(suffix);
    if (!unit) {
      Range suffix_range{range.file, range.begin + static_cast<uint32_t>(i), range.end};
      Diagnostic& d = diags_.Error(DiagCode::UnknownUnit, suffix_range, "unknown unit '" + suffix + "'");
      std::string suggestion = SuggestUnit(suffix);
      std::string number = text.substr(0, i);
      if (suggestion == "d" && (suffix[0] == 'y' || suffix.rfind("mo", 0) == 0)) {
        // No calendar units: durations are exact.
        bool years = suffix[0] == 'y';
        d.help = std::string("there is no ") + (years ? "year" : "month") + " unit (their length varies); write days: " +
                 FormatNumber(magnitude * (years ? 365 : 30)) + "d";
      } else if (!suggestion.empty()) {
        d.help = "did you mean '" + number + suggestion + "'?";
      } else {
        d.help = "durations use ms, s, m, h, d, w; sizes B, KB, MB, GB, TB, PB, KiB, MiB, GiB, TiB, PiB; percentages %";
      }
      has_errors = true;
      return std::make_unique<ast::Error>(range);
    }
    return std::make_unique<ast::Literal>(range, MakeUnitValue(unit->dimension, magnitude * unit->factor));
  }

  LexedText& lexed_;
  Diagnostics& diags_;
  int depth_;
  bool depth_reported_ = false;
};

// Runs the two-stage parse of `rule` over lexed text.
template <typename Ctx>
Ctx* RunParser(PlinthParser& parser, LexedText& lexed, ErrorListener& listener, Ctx* (PlinthParser::*rule)()) {
  parser.removeErrorListeners();
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::SLL);
  parser.setErrorHandler(std::make_shared<antlr4::BailErrorStrategy>());
  try {
    return (parser.*rule)();
  } catch (const antlr4::ParseCancellationException&) {
  } catch (const antlr4::RecognitionException&) {
  }
  lexed.tokens.seek(0);
  parser.reset();
  parser.getInterpreter<antlr4::atn::ParserATNSimulator>()->setPredictionMode(antlr4::atn::PredictionMode::LL);
  parser.setErrorHandler(std::make_shared<antlr4::DefaultErrorStrategy>());
  parser.addErrorListener(&listener);
  return (parser.*rule)();
}

}  // namespace

ast::ExprPtr ParseSubExpression(std::string_view text, FileId file, uint32_t base, int depth, Diagnostics& diags) {
  Range whole{file, base, base + static_cast<uint32_t>(text.size())};
  if (depth > ast::kMaxNesting) {
    diags.Error(DiagCode::NestingTooDeep, whole, "interpolations are nested too deeply");
    return std::make_unique<ast::Error>(whole);
  }
  LexedText lexed(text, file, base);
  if (!LexAndCheck(lexed, diags)) return std::make_unique<ast::Error>(whole);
  PlinthParser parser(&lexed.tokens);
  ErrorListener listener(lexed, diags);
  auto* tree = RunParser(parser, lexed, listener, &PlinthParser::standaloneExpr);
  Builder builder(lexed, diags, depth);
  if (!tree || listener.count() > 0) return std::make_unique<ast::Error>(whole);
  return builder.BuildExpr(tree->expr());
}

}  // namespace syntax

namespace {

// Marks every block that contains an error so the checker skips checks that
// would only repeat it (missing attributes, unknown names the parser
// invented while recovering).
bool MarkBlocksWithErrors(ast::Body& body, const std::vector<uint32_t>& offsets) {
  bool any = false;
  for (ast::Block& b : body.blocks) {
    auto it = std::lower_bound(offsets.begin(), offsets.end(), b.range.begin);
    bool inside = it != offsets.end() && *it <= b.range.end;
    if (MarkBlocksWithErrors(b.body, offsets)) inside = true;
    if (inside) b.has_errors = true;
    any = any || b.has_errors;
  }
  return any;
}

ast::File ParseFileWith(const SourceFile& file, Diagnostics& diags, std::vector<uint32_t>& error_offsets);

// Parses into a private sink first: its error positions tell which blocks
// are damaged, then everything is handed to the shared sink at once.
ast::File ParseOnThisThread(const SourceFile& file, Diagnostics& shared) {
  Diagnostics diags;
  std::vector<uint32_t> offsets;
  ast::File out = ParseFileWith(file, diags, offsets);
  std::sort(offsets.begin(), offsets.end());
  MarkBlocksWithErrors(out.body, offsets);
  shared.Append(std::move(diags));
  return out;
}

ast::File ParseFileWith(const SourceFile& file, Diagnostics& diags, std::vector<uint32_t>& error_offsets) {
  ast::File out;
  out.file = file.id();
  if (!syntax::CheckEncoding(file, diags)) {
    out.has_errors = true;
    return out;
  }
  syntax::LexedText lexed(file.text(), file.id(), 0);
  if (!syntax::LexAndCheck(lexed, diags)) {
    out.has_errors = true;
    return out;
  }
  // Lexical errors (bad characters, unterminated strings) damage the
  // structure around them; errors found later inside well-formed tokens
  // (an unknown unit, a bad escape) do not.
  for (const Diagnostic& d : diags.items()) {
    if (d.severity == Severity::Error && d.range.valid()) error_offsets.push_back(d.range.begin);
  }
  plinth_antlr::PlinthParser parser(&lexed.tokens);
  syntax::ErrorListener listener(lexed, diags);
  auto* tree = syntax::RunParser(parser, lexed, listener, &plinth_antlr::PlinthParser::file);
  syntax::Builder builder(lexed, diags, 0);
  bool has_errors = listener.count() > 0;
  if (tree) out.body = builder.BuildItems(tree->item(), &has_errors);
  out.has_errors = has_errors || builder.has_errors;
  error_offsets.insert(error_offsets.end(), listener.error_offsets.begin(), listener.error_offsets.end());
  return out;
}

}  // namespace

ast::File Parse(const SourceFile& file, Diagnostics& diags) {
  ast::File result;
  syntax::RunOnLargeStack([&] {
    try {
      result = ParseOnThisThread(file, diags);
    } catch (const std::exception& e) {
      // The ANTLR runtime should never throw past its error strategy; if it
      // does, the file is reported as unparsable rather than crashing.
      diags.Error(DiagCode::SyntaxError, {file.id(), 0, 0}, std::string("the parser gave up on this file: ") + e.what());
      result.file = file.id();
      result.has_errors = true;
    }
  });
  return result;
}

ast::ExprPtr ParseExpression(const SourceFile& file, Diagnostics& diags) {
  ast::ExprPtr result;
  syntax::RunOnLargeStack([&] {
    if (!syntax::CheckEncoding(file, diags)) {
      result = std::make_unique<ast::Error>(Range{file.id(), 0, 0});
      return;
    }
    try {
      result = syntax::ParseSubExpression(file.text(), file.id(), 0, 0, diags);
    } catch (const std::exception& e) {
      diags.Error(DiagCode::SyntaxError, {file.id(), 0, 0}, std::string("the parser gave up: ") + e.what());
      result = std::make_unique<ast::Error>(Range{file.id(), 0, 0});
    }
  });
  return result;
}

namespace ast {
const char* OpText(Op op) {
  switch (op) {
    case Op::Not: return "!";
    case Op::Neg: return "-";
    case Op::Mul: return "*";
    case Op::Div: return "/";
    case Op::Mod: return "%";
    case Op::Add: return "+";
    case Op::Sub: return "-";
    case Op::Lt: return "<";
    case Op::Le: return "<=";
    case Op::Gt: return ">";
    case Op::Ge: return ">=";
    case Op::Eq: return "==";
    case Op::Ne: return "!=";
    case Op::And: return "&&";
    case Op::Or: return "||";
  }
  return "?";
}

const Attribute* Body::Find(std::string_view name) const {
  for (const Attribute& a : attributes) {
    if (a.name == name) return &a;
  }
  return nullptr;
}
}  // namespace ast

}  // namespace plinth
