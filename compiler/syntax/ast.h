// Plinth's abstract syntax tree: what the parser produces and every later
// stage consumes. It carries source ranges and nothing from ANTLR.
//
// Ownership: a File owns its whole tree through unique_ptr. Nodes are
// immutable after parsing. Nesting depth is bounded by the parser
// (kMaxNesting), so recursive walks over the tree are safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/source/source.h"
#include "compiler/types/types.h"

namespace plinth::ast {

inline constexpr int kMaxNesting = 256;

enum class ExprKind : uint8_t {
#define EXPR(name) name,
#include "compiler/syntax/expr_kinds.def"
#undef EXPR
};

enum class Op : uint8_t { Not, Neg, Mul, Div, Mod, Add, Sub, Lt, Le, Gt, Ge, Eq, Ne, And, Or };
const char* OpText(Op op);

struct Expr {
  explicit Expr(ExprKind k, Range r) : kind(k), range(r) {}
  virtual ~Expr() = default;
  ExprKind kind;
  Range range;

  template <typename T>
  const T& As() const {
    return static_cast<const T&>(*this);
  }
};
using ExprPtr = std::unique_ptr<Expr>;

struct Literal : Expr {
  Literal(Range r, Value v) : Expr(ExprKind::Literal, r), value(std::move(v)) {}
  Value value;
};

struct TemplatePart {
  std::string text;  // used when expr is null
  ExprPtr expr;
};
struct Template : Expr {
  explicit Template(Range r) : Expr(ExprKind::Template, r) {}
  std::vector<TemplatePart> parts;
};

struct Name : Expr {
  Name(Range r, std::string n) : Expr(ExprKind::Name, r), name(std::move(n)) {}
  std::string name;
};

struct GetAttr : Expr {
  GetAttr(Range r, ExprPtr o, std::string n, Range nr)
      : Expr(ExprKind::GetAttr, r), object(std::move(o)), name(std::move(n)), name_range(nr) {}
  ExprPtr object;
  std::string name;
  Range name_range;
};

struct Index : Expr {
  Index(Range r, ExprPtr o, ExprPtr k) : Expr(ExprKind::Index, r), object(std::move(o)), key(std::move(k)) {}
  ExprPtr object;
  ExprPtr key;
};

// `source[*]` followed by the traversal applied to every element:
// `xs[*].a.b[0]` has chain [.a, .b, [0]].
struct SplatStep {
  std::string name;  // attribute step when key is null
  ExprPtr key;       // index step
  Range range;
};
struct Splat : Expr {
  Splat(Range r, ExprPtr s) : Expr(ExprKind::Splat, r), source(std::move(s)) {}
  ExprPtr source;
  std::vector<SplatStep> chain;
};

struct Call : Expr {
  Call(Range r, std::string n, Range nr) : Expr(ExprKind::Call, r), name(std::move(n)), name_range(nr) {}
  std::string name;
  Range name_range;
  std::vector<ExprPtr> args;
};

struct Unary : Expr {
  Unary(Range r, Op o, ExprPtr e) : Expr(ExprKind::Unary, r), op(o), operand(std::move(e)) {}
  Op op;
  ExprPtr operand;
};

struct Binary : Expr {
  Binary(Range r, Op o, Range orange, ExprPtr l, ExprPtr rr)
      : Expr(ExprKind::Binary, r), op(o), op_range(orange), lhs(std::move(l)), rhs(std::move(rr)) {}
  Op op;
  Range op_range;
  ExprPtr lhs;
  ExprPtr rhs;
};

struct Conditional : Expr {
  Conditional(Range r, ExprPtr c, ExprPtr t, ExprPtr e)
      : Expr(ExprKind::Conditional, r), cond(std::move(c)), then(std::move(t)), otherwise(std::move(e)) {}
  ExprPtr cond;
  ExprPtr then;
  ExprPtr otherwise;
};

struct List : Expr {
  explicit List(Range r) : Expr(ExprKind::List, r) {}
  std::vector<ExprPtr> items;
};

struct ObjectItem {
  std::string key;
  Range key_range;
  ExprPtr value;
};
struct Object : Expr {
  explicit Object(Range r) : Expr(ExprKind::Object, r) {}
  std::vector<ObjectItem> items;
};

// [for k, v in coll : value if cond]  or  {for k, v in coll : key => value if cond}
struct For : Expr {
  For(Range r, bool obj) : Expr(ExprKind::For, r), is_object(obj) {}
  bool is_object;
  std::string key_var;  // empty when only one variable is declared
  Range key_var_range;
  std::string value_var;
  Range value_var_range;
  ExprPtr collection;
  ExprPtr key;  // object form only
  ExprPtr value;
  ExprPtr cond;  // may be null
};

struct Error : Expr {
  explicit Error(Range r) : Expr(ExprKind::Error, r) {}
};

// ------------------------------------------------------------------- bodies

struct Attribute {
  std::string name;
  Range name_range;
  ExprPtr value;  // never null (Error when the parser recovered)
  Range range;
};

struct Label {
  std::string value;
  Range range;
  bool quoted = true;
};

struct Block;
struct Body {
  std::vector<Attribute> attributes;
  std::vector<Block> blocks;

  const Attribute* Find(std::string_view name) const;
};

struct Block {
  std::string type;
  Range type_range;
  std::vector<Label> labels;
  Body body;
  Range range;
  // The parser recovered from a syntax error inside this block: checks that
  // need the whole block (required attributes) are skipped for it.
  bool has_errors = false;
};

struct File {
  FileId file = kNoFile;
  Body body;
  bool has_errors = false;
};

}  // namespace plinth::ast
