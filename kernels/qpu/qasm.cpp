#include "kernels/qpu/qasm.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>

namespace plinth::qpu {

namespace {

constexpr double kPi = 3.14159265358979323846;

// ------------------------------------------------------------------ gates

Matrix2 U3(double theta, double phi, double lambda) {
  const double c = std::cos(theta / 2), s = std::sin(theta / 2);
  return {Complex(c, 0), -std::polar(s, lambda), std::polar(s, phi), std::polar(c, phi + lambda)};
}

bool OneQubitMatrix(std::string_view name, const std::vector<double>& p, Matrix2* m) {
  const Complex i(0, 1);
  const double r = 1 / std::sqrt(2.0);
  auto want = [&](size_t n) { return p.size() == n; };
  if (name == "id" && want(0)) {
    *m = {1, 0, 0, 1};
  } else if (name == "x" && want(0)) {
    *m = {0, 1, 1, 0};
  } else if (name == "y" && want(0)) {
    *m = {0, -i, i, 0};
  } else if (name == "z" && want(0)) {
    *m = {1, 0, 0, -1};
  } else if (name == "h" && want(0)) {
    *m = {r, r, r, -r};
  } else if (name == "s" && want(0)) {
    *m = {1, 0, 0, i};
  } else if (name == "sdg" && want(0)) {
    *m = {1, 0, 0, -i};
  } else if (name == "t" && want(0)) {
    *m = {1, 0, 0, std::polar(1.0, kPi / 4)};
  } else if (name == "tdg" && want(0)) {
    *m = {1, 0, 0, std::polar(1.0, -kPi / 4)};
  } else if (name == "sx" && want(0)) {
    *m = {Complex(0.5, 0.5), Complex(0.5, -0.5), Complex(0.5, -0.5), Complex(0.5, 0.5)};
  } else if (name == "sxdg" && want(0)) {
    *m = {Complex(0.5, -0.5), Complex(0.5, 0.5), Complex(0.5, 0.5), Complex(0.5, -0.5)};
  } else if (name == "rx" && want(1)) {
    const double c = std::cos(p[0] / 2), s = std::sin(p[0] / 2);
    *m = {c, -i * s, -i * s, c};
  } else if (name == "ry" && want(1)) {
    const double c = std::cos(p[0] / 2), s = std::sin(p[0] / 2);
    *m = {c, -s, s, c};
  } else if (name == "rz" && want(1)) {
    *m = {std::polar(1.0, -p[0] / 2), 0, 0, std::polar(1.0, p[0] / 2)};
  } else if ((name == "u1" || name == "p") && want(1)) {
    *m = {1, 0, 0, std::polar(1.0, p[0])};
  } else if (name == "u2" && want(2)) {
    *m = U3(kPi / 2, p[0], p[1]);
  } else if ((name == "u3" || name == "u" || name == "U") && want(3)) {
    *m = U3(p[0], p[1], p[2]);
  } else {
    return false;
  }
  return true;
}

// A gate of qelib1.inc (or a primitive) built in: a single-qubit matrix
// `base` with `controls` control qubits first, or a swap.
struct Builtin {
  const char* name;
  int params;
  int qubits;
  const char* base;  // a OneQubitMatrix name, or "swap"
  int controls;
  bool primitive;  // U and CX: always defined, no include needed
};

constexpr Builtin kBuiltins[] = {
    {"U", 3, 1, "U", 0, true},         {"CX", 0, 2, "x", 1, true},     {"id", 0, 1, "id", 0, false},
    {"x", 0, 1, "x", 0, false},        {"y", 0, 1, "y", 0, false},     {"z", 0, 1, "z", 0, false},
    {"h", 0, 1, "h", 0, false},        {"s", 0, 1, "s", 0, false},     {"sdg", 0, 1, "sdg", 0, false},
    {"t", 0, 1, "t", 0, false},        {"tdg", 0, 1, "tdg", 0, false}, {"sx", 0, 1, "sx", 0, false},
    {"sxdg", 0, 1, "sxdg", 0, false},  {"rx", 1, 1, "rx", 0, false},   {"ry", 1, 1, "ry", 0, false},
    {"rz", 1, 1, "rz", 0, false},      {"u1", 1, 1, "u1", 0, false},   {"p", 1, 1, "p", 0, false},
    {"u2", 2, 1, "u2", 0, false},      {"u3", 3, 1, "u3", 0, false},   {"u", 3, 1, "u", 0, false},
    {"cx", 0, 2, "x", 1, false},       {"cy", 0, 2, "y", 1, false},    {"cz", 0, 2, "z", 1, false},
    {"ch", 0, 2, "h", 1, false},       {"crx", 1, 2, "rx", 1, false},  {"cry", 1, 2, "ry", 1, false},
    {"crz", 1, 2, "rz", 1, false},     {"cu1", 1, 2, "u1", 1, false},  {"cp", 1, 2, "p", 1, false},
    {"cu3", 3, 2, "u3", 1, false},     {"ccx", 0, 3, "x", 2, false},   {"swap", 0, 2, "swap", 0, false},
    {"cswap", 0, 3, "swap", 1, false},
};

const Builtin* FindBuiltin(std::string_view name) {
  for (const Builtin& b : kBuiltins) {
    if (name == b.name) return &b;
  }
  return nullptr;
}

// ------------------------------------------------------------------ lexer

enum class Tok { kIdent, kInt, kReal, kString, kSymbol, kEnd };

struct Token {
  Tok kind = Tok::kEnd;
  std::string_view text;
  uint32_t line = 0, col = 0;
};

bool IsIdentStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

std::string Printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void Lex(std::string_view text, std::vector<Token>* tokens, std::vector<ParseError>* errors) {
  uint32_t line = 1;
  size_t line_start = 0;
  size_t i = 0;
  auto col = [&](size_t at) { return static_cast<uint32_t>(at - line_start + 1); };
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      line_start = ++i;
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++i;
      continue;
    }
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i < text.size() && text[i] != '\n') ++i;
      continue;
    }
    Token t;
    t.line = line;
    t.col = col(i);
    const size_t start = i;
    if (IsIdentStart(c)) {
      while (i < text.size() && (IsIdentStart(text[i]) || IsDigit(text[i]))) ++i;
      t.kind = Tok::kIdent;
    } else if (IsDigit(c) || (c == '.' && i + 1 < text.size() && IsDigit(text[i + 1]))) {
      t.kind = Tok::kInt;
      while (i < text.size() && IsDigit(text[i])) ++i;
      if (i < text.size() && text[i] == '.') {
        t.kind = Tok::kReal;
        ++i;
        while (i < text.size() && IsDigit(text[i])) ++i;
      }
      if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
        size_t j = i + 1;
        if (j < text.size() && (text[j] == '+' || text[j] == '-')) ++j;
        if (j < text.size() && IsDigit(text[j])) {
          t.kind = Tok::kReal;
          i = j;
          while (i < text.size() && IsDigit(text[i])) ++i;
        }
      }
    } else if (c == '"') {
      ++i;
      while (i < text.size() && text[i] != '"' && text[i] != '\n') ++i;
      if (i >= text.size() || text[i] != '"') {
        errors->push_back(
            {t.line, t.col, "string without its closing quote", "end the string with \" on the same line"});
        continue;
      }
      ++i;
      t.kind = Tok::kString;
    } else if ((c == '-' && i + 1 < text.size() && text[i + 1] == '>') ||
               (c == '=' && i + 1 < text.size() && text[i + 1] == '=')) {
      i += 2;
      t.kind = Tok::kSymbol;
    } else if (std::string_view(";,()[]{}+-*/^").find(c) != std::string_view::npos) {
      ++i;
      t.kind = Tok::kSymbol;
    } else {
      // One error per run of unexpected bytes.
      while (i < text.size() && !IsIdentStart(text[i]) && !IsDigit(text[i]) &&
             std::string_view(" \t\r\n;,()[]{}+-*/^\"").find(text[i]) == std::string_view::npos) {
        ++i;
      }
      errors->push_back(
          {t.line, t.col,
           "unexpected character '" + Printable(text.substr(start, std::min<size_t>(i - start, 8))) + "'",
           "OpenQASM 2 uses letters, digits, _ and ; , ( ) [ ] { } + - * / ^ -> =="});
      continue;
    }
    t.text = text.substr(start, i - start);
    tokens->push_back(t);
  }
  Token end;
  end.kind = Tok::kEnd;
  end.line = line;
  end.col = col(i);
  tokens->push_back(end);
}

// ------------------------------------------------------------ expressions

struct ExprOp {
  enum Kind : uint8_t {
    kNum,
    kParam,
    kNeg,
    kAdd,
    kSub,
    kMul,
    kDiv,
    kPow,
    kSin,
    kCos,
    kTan,
    kExp,
    kLn,
    kSqrt
  };
  Kind kind = kNum;
  uint32_t param = 0;
  double value = 0;
};
using Rpn = std::vector<ExprOp>;  // evaluated on a stack: no recursion

double Evaluate(const Rpn& rpn, const std::vector<double>& params) {
  std::vector<double> stack;
  stack.reserve(16);
  for (const ExprOp& op : rpn) {
    if (op.kind == ExprOp::kNum) {
      stack.push_back(op.value);
    } else if (op.kind == ExprOp::kParam) {
      stack.push_back(params[op.param]);
    } else if (op.kind >= ExprOp::kAdd && op.kind <= ExprOp::kPow) {
      const double b = stack.back();
      stack.pop_back();
      double& a = stack.back();
      switch (op.kind) {
        case ExprOp::kAdd: a += b; break;
        case ExprOp::kSub: a -= b; break;
        case ExprOp::kMul: a *= b; break;
        case ExprOp::kDiv: a /= b; break;
        default: a = std::pow(a, b); break;
      }
    } else {
      double& a = stack.back();
      switch (op.kind) {
        case ExprOp::kNeg: a = -a; break;
        case ExprOp::kSin: a = std::sin(a); break;
        case ExprOp::kCos: a = std::cos(a); break;
        case ExprOp::kTan: a = std::tan(a); break;
        case ExprOp::kExp: a = std::exp(a); break;
        case ExprOp::kLn: a = std::log(a); break;
        default: a = std::sqrt(a); break;
      }
    }
  }
  return stack.empty() ? 0 : stack.back();
}

// ------------------------------------------------------------------ parser

struct GateDef;

struct GateCall {
  Token name;
  const GateDef* def = nullptr;      // the callee: a user gate,
  const Builtin* builtin = nullptr;  // or a builtin one
  std::vector<Rpn> params;
  std::vector<uint32_t> args;  // indices into the enclosing gate's qubit arguments
};

struct GateDef {
  std::string name;
  Token at;
  size_t params = 0;
  size_t qubits = 0;
  bool opaque = false;
  std::vector<GateCall> body;
  uint64_t ops = 0;  // primitive operations one application expands to (saturating at kMaxOps + 1)
};

// One qubit or bit argument: a whole register, or one element of it.
struct Arg {
  Token at;
  size_t reg = 0;
  bool quantum = true;
  bool indexed = false;
  uint32_t index = 0;
};

struct Fail {
  bool synced = false;  // the statement's tokens were skipped already
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::vector<ParseError> errors)
      : tokens_(std::move(tokens)), errors_(std::move(errors)) {}

  ParseResult Run() {
    try {
      Header();
    } catch (const Fail& f) {
      if (!f.synced) Sync();
    }
    while (Peek().kind != Tok::kEnd && errors_.size() < kMaxErrors) {
      statement_start_ = pos_;
      try {
        Statement();
      } catch (const Fail& f) {
        if (!f.synced) Sync();
      }
    }
    if (errors_.size() > kMaxErrors) errors_.resize(kMaxErrors);
    ParseResult r;
    r.circuit = std::move(c_);
    r.errors = std::move(errors_);
    return r;
  }

 private:
  const Token& Peek(size_t ahead = 0) const { return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)]; }
  const Token& Next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool IsSymbol(std::string_view s) const { return Peek().kind == Tok::kSymbol && Peek().text == s; }
  bool IsWord(std::string_view s) const { return Peek().kind == Tok::kIdent && Peek().text == s; }

  [[noreturn]] void Error(const Token& at, std::string message, std::string hint = "") {
    errors_.push_back({at.line, at.col, std::move(message), std::move(hint)});
    throw Fail{};
  }
  static std::string Describe(const Token& t) {
    if (t.kind == Tok::kEnd) return "the end of the file";
    std::string out = "'";
    out.append(t.text.substr(0, 40));
    out += '\'';
    return out;
  }
  void Expect(std::string_view symbol, const char* hint = "") {
    if (IsSymbol(symbol)) {
      Next();
      return;
    }
    if (symbol == ";" && pos_ > 0 && Previous().line < Peek().line) {
      // A missing ';' at the end of a line: point just after the line's last token.
      Token after = Previous();
      after.col += static_cast<uint32_t>(after.text.size());
      Error(after, "expected ';' after " + Describe(Previous()), hint);
    }
    Error(Peek(), "expected '" + std::string(symbol) + "', found " + Describe(Peek()), hint);
  }
  void ExpectSemicolon() { Expect(";", "every statement ends with ;"); }
  const Token& Ident(const char* what) {
    if (Peek().kind != Tok::kIdent)
      Error(Peek(), std::string("expected ") + what + ", found " + Describe(Peek()));
    return Next();
  }
  // Skips to just after the statement's ';' (or a '}' that closes a
  // statement list), unless the statement's ';' was read already.
  void Sync() {
    if (pos_ > statement_start_ && Previous().kind == Tok::kSymbol && Previous().text == ";") return;
    while (Peek().kind != Tok::kEnd) {
      const Token& t = Next();
      if (t.kind == Tok::kSymbol && (t.text == ";" || t.text == "}")) return;
    }
  }

  uint64_t Integer(const Token& t, const char* what) {
    if (t.kind != Tok::kInt) Error(t, std::string("expected ") + what + ", found " + Describe(t));
    uint64_t v = 0;
    auto [end, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (ec != std::errc() || end != t.text.data() + t.text.size()) {
      Error(t, std::string(what) + " " + std::string(t.text.substr(0, 40)) + " is too large");
    }
    return v;
  }

  void Header() {
    const Token& t = Peek();
    if (!IsWord("OPENQASM")) {
      Error(t, "a program starts with 'OPENQASM 2.0;', found " + Describe(t),
            "add OPENQASM 2.0; as the first line");
    }
    Next();
    const Token& v = Next();
    if ((v.kind != Tok::kReal && v.kind != Tok::kInt) || v.text.substr(0, 2) != "2." || v.text.size() < 3) {
      Error(v, "only OpenQASM 2 is supported, found version " + Describe(v), "write OPENQASM 2.0;");
    }
    ExpectSemicolon();
  }

  void Statement() {
    const Token& t = Peek();
    if (t.kind != Tok::kIdent) Error(t, "expected a statement, found " + Describe(t));
    if (t.text == "include") return Include();
    if (t.text == "qreg" || t.text == "creg") return RegisterDecl();
    if (t.text == "gate") return GateDecl(false);
    if (t.text == "opaque") return GateDecl(true);
    if (t.text == "barrier") return Barrier();
    if (t.text == "if") return If();
    if (t.text == "OPENQASM") Error(t, "'OPENQASM' may appear only once, on the first line");
    QuantumOp(-1, 0);
  }

  void Include() {
    Next();
    const Token& file = Next();
    if (file.kind != Tok::kString) Error(file, "expected a file name in quotes, found " + Describe(file));
    if (file.text != "\"qelib1.inc\"") {
      Error(file,
            "cannot include " + std::string(file.text) + ": only \"qelib1.inc\" is available (built in)",
            "copy the file's gate definitions into the program");
    }
    ExpectSemicolon();
    qelib1_ = true;
  }

  void CheckNameFree(const Token& name) {
    const std::string n(name.text);
    if (regs_.count(n)) Error(name, "'" + n + "' is already declared as a register", "choose another name");
    if (gates_.count(n) || (FindBuiltin(n) && (qelib1_ || FindBuiltin(n)->primitive))) {
      Error(name, "'" + n + "' is already declared as a gate", "choose another name");
    }
  }

  void RegisterDecl() {
    const bool quantum = Next().text == "qreg";
    const Token& name = Ident("a register name");
    CheckNameFree(name);
    Expect("[");
    const Token& size_tok = Next();
    const uint64_t size = Integer(size_tok, "a register size");
    Expect("]");
    ExpectSemicolon();
    const uint64_t limit = quantum ? kMaxQubits : kMaxClbits;
    const uint64_t used = quantum ? c_.num_qubits : c_.num_clbits;
    if (size == 0) Error(size_tok, "a register needs at least one " + std::string(quantum ? "qubit" : "bit"));
    if (size > limit - used) {
      Error(size_tok,
            "this register brings the program to " +
                std::to_string(used + std::min<uint64_t>(size, uint64_t{1} << 62)) +
                (quantum ? " qubits" : " classical bits") + "; at most " + std::to_string(limit) +
                " are supported",
            quantum ? "a state vector needs 16*2^n bytes: even 40 qubits need 16 TiB" : "");
    }
    std::vector<Register>& regs = quantum ? c_.qregs : c_.cregs;
    uint32_t& total = quantum ? c_.num_qubits : c_.num_clbits;
    regs_[std::string(name.text)] = {quantum, regs.size()};
    regs.push_back({std::string(name.text), total, static_cast<uint32_t>(size)});
    total += static_cast<uint32_t>(size);
  }

  // ---- expressions (params: the enclosing gate's parameter names, or null)
  void Expression(Rpn* out, const std::vector<std::string>* params, int depth) {
    Term(out, params, depth);
    while (IsSymbol("+") || IsSymbol("-")) {
      const bool add = Next().text == "+";
      Term(out, params, depth);
      out->push_back({add ? ExprOp::kAdd : ExprOp::kSub});
    }
  }
  void Term(Rpn* out, const std::vector<std::string>* params, int depth) {
    Unary(out, params, depth);
    while (IsSymbol("*") || IsSymbol("/")) {
      const bool mul = Next().text == "*";
      Unary(out, params, depth);
      out->push_back({mul ? ExprOp::kMul : ExprOp::kDiv});
    }
  }
  void Unary(Rpn* out, const std::vector<std::string>* params, int depth) {
    if (depth > kMaxExpressionDepth) {
      Error(Peek(), "expression nested more than " + std::to_string(kMaxExpressionDepth) + " deep",
            "simplify the expression");
    }
    if (IsSymbol("-")) {
      Next();
      Unary(out, params, depth + 1);
      out->push_back({ExprOp::kNeg});
      return;
    }
    if (IsSymbol("+")) {
      Next();
      return Unary(out, params, depth + 1);
    }
    Primary(out, params, depth + 1);
    if (IsSymbol("^")) {
      Next();
      Unary(out, params, depth + 1);  // right-associative; binds tighter than unary minus on its left
      out->push_back({ExprOp::kPow});
    }
  }
  void Primary(Rpn* out, const std::vector<std::string>* params, int depth) {
    const Token& t = Next();
    if (t.kind == Tok::kInt || t.kind == Tok::kReal) {
      const std::string text(t.text);
      const double v = std::strtod(text.c_str(), nullptr);
      if (!std::isfinite(v)) Error(t, "number " + text.substr(0, 40) + " is too large for a double");
      out->push_back({ExprOp::kNum, 0, v});
      return;
    }
    if (t.kind == Tok::kSymbol && t.text == "(") {
      Expression(out, params, depth + 1);
      Expect(")", "close the parenthesis");
      return;
    }
    if (t.kind == Tok::kIdent) {
      static const std::map<std::string_view, ExprOp::Kind> kFunctions = {
          {"sin", ExprOp::kSin}, {"cos", ExprOp::kCos}, {"tan", ExprOp::kTan},
          {"exp", ExprOp::kExp}, {"ln", ExprOp::kLn},   {"sqrt", ExprOp::kSqrt}};
      if (t.text == "pi") {
        out->push_back({ExprOp::kNum, 0, kPi});
        return;
      }
      if (auto f = kFunctions.find(t.text); f != kFunctions.end()) {
        Expect("(", "a function's argument is in parentheses: sin(pi/4)");
        Expression(out, params, depth + 1);
        Expect(")", "close the parenthesis");
        out->push_back({f->second});
        return;
      }
      if (params != nullptr) {
        for (size_t i = 0; i < params->size(); ++i) {
          if ((*params)[i] == t.text) {
            out->push_back({ExprOp::kParam, static_cast<uint32_t>(i), 0});
            return;
          }
        }
        Error(t, "'" + std::string(t.text) + "' is not a parameter of this gate",
              "use pi, a number, a function (sin cos tan exp ln sqrt) or one of the gate's parameters");
      }
      Error(t,
            "'" + std::string(t.text) +
                "' is not a known value; outside a gate definition only numbers and pi are",
            "use pi, a number or a function (sin cos tan exp ln sqrt)");
    }
    Error(t, "expected an expression, found " + Describe(t));
  }

  std::vector<Rpn> ParamList(const std::vector<std::string>* params) {
    std::vector<Rpn> out;
    if (!IsSymbol("(")) return out;
    Next();
    if (IsSymbol(")")) {
      Next();
      return out;
    }
    for (;;) {
      out.emplace_back();
      Expression(&out.back(), params, 0);
      if (IsSymbol(")")) break;
      Expect(",", "separate parameters with ,");
    }
    Next();
    return out;
  }

  // ---- gates
  struct GateRef {
    const Builtin* builtin = nullptr;
    const GateDef* def = nullptr;
    size_t params = 0, qubits = 0;
  };
  GateRef FindGate(const Token& name) {
    const std::string n(name.text);
    GateRef r;
    if (auto it = gates_.find(n); it != gates_.end()) {
      r.def = &it->second;
      r.params = r.def->params;
      r.qubits = r.def->qubits;
      return r;
    }
    if (const Builtin* b = FindBuiltin(n)) {
      if (!b->primitive && !qelib1_) {
        Error(name, "gate '" + n + "' is not defined", "add include \"qelib1.inc\"; after the OPENQASM line");
      }
      r.builtin = b;
      r.params = static_cast<size_t>(b->params);
      r.qubits = static_cast<size_t>(b->qubits);
      return r;
    }
    if (regs_.count(n)) Error(name, "'" + n + "' is a register, not a gate");
    Error(name, "gate '" + n + "' is not defined",
          qelib1_ ? "define it with gate " + n + " a { ... } before its first use"
                  : "define it with gate, or add include \"qelib1.inc\"; for the standard gates");
  }
  void CheckArity(const Token& name, const GateRef& g, size_t params, size_t qubits) {
    const std::string n(name.text);
    if (params != g.params) {
      Error(name, "gate '" + n + "' takes " + std::to_string(g.params) + " parameter" +
                      (g.params == 1 ? "" : "s") + ", given " + std::to_string(params));
    }
    if (qubits != g.qubits) {
      Error(name, "gate '" + n + "' acts on " + std::to_string(g.qubits) + " qubit" +
                      (g.qubits == 1 ? "" : "s") + ", given " + std::to_string(qubits));
    }
  }

  void GateDecl(bool opaque) {
    Next();  // gate or opaque
    const Token& name = Ident("a gate name");
    CheckNameFree(name);
    GateDef def;
    def.name = std::string(name.text);
    def.at = name;
    def.opaque = opaque;
    std::vector<std::string> params, qargs;
    if (IsSymbol("(")) {
      Next();
      while (!IsSymbol(")")) {
        const Token& p = Ident("a parameter name");
        for (const std::string& q : params) {
          if (q == p.text) Error(p, "parameter '" + q + "' is declared twice");
        }
        params.emplace_back(p.text);
        if (!IsSymbol(")")) Expect(",", "separate parameters with ,");
      }
      Next();
    }
    for (;;) {
      const Token& q = Ident("a qubit argument name");
      for (const std::string& other : qargs) {
        if (other == q.text) Error(q, "qubit argument '" + other + "' is declared twice");
      }
      qargs.emplace_back(q.text);
      if (!IsSymbol(",")) break;
      Next();
    }
    def.params = params.size();
    def.qubits = qargs.size();
    if (opaque) {
      ExpectSemicolon();
      gates_[def.name] = std::move(def);
      return;
    }
    Expect("{", "a gate's body is in braces: gate g a { h a; }");
    try {
      while (!IsSymbol("}")) {
        const Token& t = Peek();
        if (t.kind == Tok::kEnd) Error(t, "gate '" + def.name + "' has no closing '}'");
        if (IsWord("barrier")) {
          Next();
          for (;;) {
            GateArg(qargs);
            if (!IsSymbol(",")) break;
            Next();
          }
          ExpectSemicolon();
          continue;
        }
        const Token& g = Ident("a gate application");
        if (g.text == "measure" || g.text == "reset" || g.text == "if" || g.text == "gate" ||
            g.text == "qreg" || g.text == "creg") {
          Error(g, "'" + std::string(g.text) + "' cannot appear in a gate definition",
                "a gate body holds gate applications and barriers only");
        }
        GateRef ref = FindGate(g);
        GateCall call;
        call.name = g;
        call.params = ParamList(&params);
        for (;;) {
          const uint32_t a = GateArg(qargs);
          for (uint32_t b : call.args) {
            if (a == b) Error(Previous(), "qubit '" + qargs[a] + "' is used twice in one gate");
          }
          call.args.push_back(a);
          if (!IsSymbol(",")) break;
          Next();
        }
        CheckArity(g, ref, call.params.size(), call.args.size());
        ExpectSemicolon();
        call.def = ref.def;
        call.builtin = ref.builtin;
        def.ops = std::min<uint64_t>(kMaxOps + 1, def.ops + (ref.def != nullptr ? ref.def->ops : 1));
        def.body.push_back(std::move(call));
      }
      Next();
    } catch (const Fail&) {
      // Skip the rest of the body, so its statements are not read as top-level ones.
      while (Peek().kind != Tok::kEnd && !IsSymbol("}")) Next();
      if (IsSymbol("}")) Next();
      throw Fail{true};
    }
    gates_[def.name] = std::move(def);
  }
  const Token& Previous() const { return tokens_[pos_ == 0 ? 0 : pos_ - 1]; }

  uint32_t GateArg(const std::vector<std::string>& qargs) {
    const Token& t = Ident("a qubit argument");
    if (IsSymbol("["))
      Error(Peek(), "inside a gate definition qubits are named, not indexed", "write the name alone");
    for (size_t i = 0; i < qargs.size(); ++i) {
      if (qargs[i] == t.text) return static_cast<uint32_t>(i);
    }
    Error(t, "'" + std::string(t.text) + "' is not a qubit argument of this gate");
  }

  // ---- top-level operations
  Arg Argument(bool quantum) {
    Arg a;
    a.at = Ident(quantum ? "a qubit or quantum register" : "a bit or classical register");
    const std::string n(a.at.text);
    auto it = regs_.find(n);
    if (it == regs_.end()) {
      Error(a.at, "'" + n + "' is not a declared register",
            std::string("declare it with ") + (quantum ? "qreg " : "creg ") + n + "[N];");
    }
    if (it->second.first != quantum) {
      Error(a.at, "'" + n + "' is a " + (quantum ? "classical" : "quantum") + " register; a " +
                      (quantum ? "quantum" : "classical") + " one is needed here");
    }
    a.reg = it->second.second;
    a.quantum = quantum;
    if (IsSymbol("[")) {
      Next();
      const Token& idx = Next();
      const uint64_t i = Integer(idx, "an index");
      const Register& r = (quantum ? c_.qregs : c_.cregs)[a.reg];
      if (i >= r.size) {
        Error(idx,
              "index " + std::to_string(i) + " is out of range: " + n + " has " + std::to_string(r.size) +
                  (r.size == 1 ? " element" : " elements"),
              "use an index from 0 to " + std::to_string(r.size - 1));
      }
      Expect("]");
      a.indexed = true;
      a.index = static_cast<uint32_t>(i);
    }
    return a;
  }
  const Register& Reg(const Arg& a) const { return (a.quantum ? c_.qregs : c_.cregs)[a.reg]; }
  // The broadcast width of arguments: 1, or the size shared by every whole register.
  uint32_t Width(const std::vector<Arg>& args) {
    uint32_t width = 0;
    const Arg* first = nullptr;
    for (const Arg& a : args) {
      if (a.indexed) continue;
      const uint32_t size = Reg(a).size;
      if (first != nullptr && size != width) {
        Error(a.at,
              "registers of different sizes: " + Reg(*first).name + " has " + std::to_string(width) + ", " +
                  Reg(a).name + " has " + std::to_string(size),
              "a gate applied to whole registers needs registers of one size");
      }
      first = &a;
      width = size;
    }
    return first == nullptr ? 1 : width;
  }
  static uint32_t Element(const Register& r, const Arg& a, uint32_t k) {
    return r.offset + (a.indexed ? a.index : k);
  }

  void Emit(Op op, const Token& at) {
    if (c_.ops.size() >= kMaxOps) {
      Error(at, "the program expands to more than " + std::to_string(kMaxOps) + " operations",
            "shorten the program or its gate definitions");
    }
    op.line = at.line;
    c_.ops.push_back(op);
  }

  void Barrier() {
    Next();
    for (;;) {
      Argument(true);
      if (!IsSymbol(",")) break;
      Next();
    }
    ExpectSemicolon();
  }

  void If() {
    Next();
    Expect("(", "write if (c == N) op;");
    const Arg creg = Argument(false);
    if (creg.indexed) {
      Error(creg.at, "'if' compares a whole classical register, not one bit",
            "write if (" + Reg(creg).name + " == N)");
    }
    Expect("==", "write if (c == N) op;");
    const Token& v = Next();
    const uint64_t value = Integer(v, "an integer");
    const Register& r = Reg(creg);
    if (r.size < 64 && value >> r.size != 0) {
      Error(v, Reg(creg).name + " has " + std::to_string(r.size) + " bits; it never holds " +
                   std::to_string(value));
    }
    Expect(")", "write if (c == N) op;");
    if (IsWord("if") || IsWord("barrier") || IsWord("gate") || IsWord("qreg") || IsWord("creg")) {
      Error(Peek(), "'if' applies to a gate, measure or reset, not to " + Describe(Peek()));
    }
    QuantumOp(static_cast<int32_t>(creg.reg), value);
  }

  void QuantumOp(int32_t cond_creg, uint64_t cond_value) {
    const Token& t = Peek();
    Op base;
    base.cond_creg = cond_creg;
    base.cond_value = cond_value;
    if (IsWord("measure")) {
      Next();
      const Arg q = Argument(true);
      Expect("->", "write measure q -> c;");
      const Arg c = Argument(false);
      ExpectSemicolon();
      if (q.indexed != c.indexed || (!q.indexed && Reg(q).size != Reg(c).size)) {
        Error(t, "measure needs a qubit and a bit, or two registers of one size",
              "write measure q[i] -> c[j]; or measure q -> c; with as many bits as qubits");
      }
      const uint32_t width = q.indexed ? 1 : Reg(q).size;
      for (uint32_t k = 0; k < width; ++k) {
        Op op = base;
        op.kind = Op::Kind::kMeasure;
        op.target = Element(Reg(q), q, k);
        op.clbit = Element(Reg(c), c, k);
        Emit(op, t);
      }
      return;
    }
    if (IsWord("reset")) {
      Next();
      const Arg q = Argument(true);
      ExpectSemicolon();
      const uint32_t width = q.indexed ? 1 : Reg(q).size;
      for (uint32_t k = 0; k < width; ++k) {
        Op op = base;
        op.kind = Op::Kind::kReset;
        op.target = Element(Reg(q), q, k);
        Emit(op, t);
      }
      return;
    }
    const Token& name = Ident("a statement");
    GateRef g = FindGate(name);
    std::vector<Rpn> exprs = ParamList(nullptr);
    std::vector<double> params;
    for (const Rpn& e : exprs) params.push_back(Evaluate(e, {}));
    std::vector<Arg> args;
    for (;;) {
      args.push_back(Argument(true));
      if (!IsSymbol(",")) break;
      Next();
    }
    CheckArity(name, g, params.size(), args.size());
    ExpectSemicolon();
    for (size_t i = 0; i < params.size(); ++i) {
      if (!std::isfinite(params[i])) {
        Error(name,
              "parameter " + std::to_string(i + 1) + " of '" + std::string(name.text) +
                  "' is not a finite number",
              "check for a division by zero, ln of a negative number or an overflow");
      }
    }
    const uint32_t width = Width(args);
    const uint64_t per_application = g.def != nullptr ? g.def->ops : 1;
    if (c_.ops.size() + uint64_t{width} * per_application > kMaxOps) {
      Error(name, "the program expands to more than " + std::to_string(kMaxOps) + " operations",
            "shorten the program or its gate definitions");
    }
    std::vector<uint32_t> qubits(args.size());
    for (uint32_t k = 0; k < width; ++k) {
      for (size_t i = 0; i < args.size(); ++i) {
        qubits[i] = Element(Reg(args[i]), args[i], k);
        for (size_t j = 0; j < i; ++j) {
          if (qubits[j] == qubits[i]) {
            Error(args[i].at,
                  "qubit " + Reg(args[i]).name + "[" + std::to_string(qubits[i] - Reg(args[i]).offset) +
                      "] is used twice in one application of '" + std::string(name.text) + "'",
                  "a gate's qubits must be distinct");
          }
        }
      }
      Apply(g, params, qubits, base, name, 0);
    }
  }

  // Lowers one application of a gate to primitive operations.
  void Apply(const GateRef& g, const std::vector<double>& params, const std::vector<uint32_t>& qubits,
             const Op& base, const Token& site, int depth) {
    if (g.builtin != nullptr) {
      Op op = base;
      const Builtin& b = *g.builtin;
      for (int i = 0; i < b.controls; ++i) op.controls |= uint64_t{1} << qubits[static_cast<size_t>(i)];
      if (std::string_view(b.base) == "swap") {
        op.kind = Op::Kind::kSwap;
        op.target = qubits[static_cast<size_t>(b.controls)];
        op.target2 = qubits[static_cast<size_t>(b.controls) + 1];
      } else {
        op.kind = Op::Kind::kUnitary;
        op.target = qubits[static_cast<size_t>(b.controls)];
        OneQubitMatrix(b.base, params, &op.matrix);
      }
      return Emit(op, site);
    }
    const GateDef& def = *g.def;
    if (def.opaque) {
      Error(site, "gate '" + def.name + "' is opaque: it has no definition to simulate",
            "define it with gate " + def.name + " ... { ... } instead of opaque");
    }
    if (depth >= kMaxGateDepth) {
      Error(site, "gate definitions nested more than " + std::to_string(kMaxGateDepth) + " deep");
    }
    for (const GateCall& call : def.body) {
      std::vector<double> values;
      for (const Rpn& e : call.params) {
        values.push_back(Evaluate(e, params));
        if (!std::isfinite(values.back())) {
          Error(site,
                "in gate '" + def.name + "' (line " + std::to_string(def.at.line) + "), a parameter of '" +
                    std::string(call.name.text) + "' (line " + std::to_string(call.name.line) +
                    ") is not a finite number",
                "check for a division by zero, ln of a negative number or an overflow");
        }
      }
      std::vector<uint32_t> inner;
      for (uint32_t a : call.args) inner.push_back(qubits[a]);
      GateRef ref;
      ref.def = call.def;
      ref.builtin = call.builtin;
      Apply(ref, values, inner, base, site, depth + 1);
    }
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  size_t statement_start_ = 0;
  std::vector<ParseError> errors_;
  Circuit c_;
  bool qelib1_ = false;
  std::map<std::string, GateDef> gates_;
  std::map<std::string, std::pair<bool, size_t>> regs_;  // name -> (quantum, index)
};

}  // namespace

ParseResult ParseQasm(std::string_view text) {
  std::vector<Token> tokens;
  std::vector<ParseError> errors;
  Lex(text, &tokens, &errors);
  return Parser(std::move(tokens), std::move(errors)).Run();
}

std::string FormatError(const ParseError& e, std::string_view file, std::string_view text) {
  std::string out = std::string(file) + ":" + std::to_string(e.line) + ":" + std::to_string(e.col) +
                    ": error: " + e.message + "\n";
  // The source line and a caret under the column.
  size_t start = 0;
  for (uint32_t l = 1; l < e.line && start < text.size(); ++l) {
    size_t nl = text.find('\n', start);
    start = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  if (start < text.size() || e.line == 1) {
    size_t end = text.find('\n', start);
    std::string_view line = text.substr(start, (end == std::string_view::npos ? text.size() : end) - start);
    if (line.size() > 200) line = line.substr(0, 200);
    const std::string shown = Printable(line);
    if (shown.size() == line.size()) {
      out += "  " + shown + "\n  ";
      for (uint32_t i = 1; i < e.col && i <= line.size(); ++i) out += line[i - 1] == '\t' ? '\t' : ' ';
      out += "^\n";
    }
  }
  if (!e.hint.empty()) out += "  help: " + e.hint + "\n";
  return out;
}

bool GateMatrix(std::string_view name, const std::vector<double>& params, Matrix2* out) {
  return OneQubitMatrix(name, params, out);
}

}  // namespace plinth::qpu
