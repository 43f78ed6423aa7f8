#include "compiler/rules/interpreter.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace plinth::rules {

namespace {
// The state of a strict operation on operands with states a and b.
inline uint8_t Strict(uint8_t a, uint8_t b) { return std::min<uint8_t>(std::max(a, b), kError); }
inline uint8_t Strict1(uint8_t a) { return std::min<uint8_t>(a, kError); }

// a == b where null is a value: null == null, null != anything else. Unknown
// and error operands make the result unknown or an error.
inline void Equal(double av, uint8_t as, double bv, uint8_t bs, double* v, uint8_t* s) {
  bool na = as == kNull, nb = bs == kNull;
  *s = std::max<uint8_t>(na ? uint8_t{kKnown} : as, nb ? uint8_t{kKnown} : bs);
  *v = (na && nb) || (!na && !nb && av == bv) ? 1.0 : 0.0;
}

Verdict ToVerdict(double v, uint8_t s) {
  if (s == kKnown) return v != 0 ? Verdict::True : Verdict::False;
  return s == kUnknown ? Verdict::Unknown : Verdict::Error;
}
}  // namespace

struct Interpreter::Frame {
  const BatchView* batch = nullptr;
  const double* snapshot = nullptr;
  const HostContext* host = nullptr;
  uint64_t row = 0;
  std::vector<uint32_t> element;  // by loop id: the current element's index in the element columns
};

Interpreter::Interpreter(const Program& program) : p_(program), layout_(ColumnLayout::For(program.schema)) {}

void Interpreter::Run(size_t rule, const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin,
                      uint64_t end) const {
  NodeId root = p_.rules[rule].root;
  if (!root.valid()) {
    std::fill(out, out + (end - begin), Verdict::Error);
    return;
  }
  Frame f;
  f.batch = &batch;
  f.host = &host;
  f.element.assign(p_.loops.size(), 0);
  for (uint64_t row = begin; row < end; ++row) {
    f.row = row;
    Val v = Eval(root, f);
    out[row - begin] = ToVerdict(v.v, v.s);
  }
}

void Interpreter::RunAll(const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin,
                         uint64_t end, uint64_t stride) const {
  for (size_t r = 0; r < p_.rules.size(); ++r) Run(r, batch, host, out + r * stride, begin, end);
}

void Interpreter::RunSnapshot(const double* snapshot, const HostContext& host, Verdict* out) const {
  Frame f;
  f.snapshot = snapshot;
  f.host = &host;
  f.element.assign(p_.loops.size(), 0);
  for (size_t r = 0; r < p_.rules.size(); ++r) {
    NodeId root = p_.rules[r].root;
    if (!root.valid()) {
      out[r] = Verdict::Error;
      continue;
    }
    Val v = Eval(root, f);
    out[r] = ToVerdict(v.v, v.s);
  }
}

Interpreter::Val Interpreter::Eval(NodeId id, Frame& f) const {
  const Node& n = p_.node(id);
  switch (n.kind) {
    case NodeKind::Const: return {n.number, n.const_state};
    case NodeKind::Field: {
      if (f.snapshot) {
        double v = f.snapshot[n.payload];
        return {v, std::isnan(v) ? uint8_t{kUnknown} : uint8_t{kKnown}};
      }
      uint32_t col = layout_.base[n.payload];
      return {f.batch->values[col][f.row], f.batch->states[col][f.row]};
    }
    case NodeKind::Element:
    case NodeKind::ElementAttr: {
      uint32_t col = layout_.base[p_.loop(n.payload).field.index] + 1 +
                     (n.kind == NodeKind::ElementAttr ? n.payload2 : 0);
      uint32_t i = f.element[n.payload];
      return {f.batch->values[col][i], f.batch->states[col][i]};
    }
    case NodeKind::LoopIndex: {
      const uint32_t* off = f.batch->offsets[p_.loop(n.payload).field.index];
      return {static_cast<double>(f.element[n.payload] - off[f.row]), kKnown};
    }
    case NodeKind::Neg: {
      Val a = Eval(n.a, f);
      return {-a.v, Strict1(a.s)};
    }
    case NodeKind::Not: {
      Val a = Eval(n.a, f);
      return {a.v == 0 ? 1.0 : 0.0, Strict1(a.s)};
    }
    case NodeKind::Add:
    case NodeKind::Sub:
    case NodeKind::Mul:
    case NodeKind::Div:
    case NodeKind::Mod:
    case NodeKind::Lt:
    case NodeKind::Le:
    case NodeKind::Gt:
    case NodeKind::Ge: {
      Val a = Eval(n.a, f), b = Eval(n.b, f);
      uint8_t s = Strict(a.s, b.s);
      double v = 0;
      switch (n.kind) {
        case NodeKind::Add: v = a.v + b.v; break;
        case NodeKind::Sub: v = a.v - b.v; break;
        case NodeKind::Mul: v = a.v * b.v; break;
        case NodeKind::Div:
          v = a.v / b.v;
          if (b.v == 0 && s == kKnown) s = kError;
          break;
        case NodeKind::Mod:
          v = std::fmod(a.v, b.v);
          if (b.v == 0 && s == kKnown) s = kError;
          break;
        case NodeKind::Lt: v = a.v < b.v; break;
        case NodeKind::Le: v = a.v <= b.v; break;
        case NodeKind::Gt: v = a.v > b.v; break;
        default: v = a.v >= b.v; break;
      }
      return {v, s};
    }
    case NodeKind::Eq:
    case NodeKind::Ne: {
      Val a = Eval(n.a, f), b = Eval(n.b, f);
      Val r;
      Equal(a.v, a.s, b.v, b.s, &r.v, &r.s);
      if (n.kind == NodeKind::Ne) r.v = 1.0 - r.v;
      return r;
    }
    case NodeKind::And:
    case NodeKind::Or: {
      // Kleene logic: a known false (&&) or true (||) operand decides.
      double decisive = n.kind == NodeKind::And ? 0.0 : 1.0;
      Val a = Eval(n.a, f);
      if (a.s == kKnown && (a.v != 0) == (decisive != 0)) return {decisive, kKnown};
      Val b = Eval(n.b, f);
      if (b.s == kKnown && (b.v != 0) == (decisive != 0)) return {decisive, kKnown};
      return {1.0 - decisive, Strict(a.s, b.s)};
    }
    case NodeKind::Cond: {
      Val c = Eval(n.a, f);
      if (c.s != kKnown) return {0, Strict1(c.s)};
      return c.v != 0 ? Eval(n.b, f) : Eval(n.c, f);
    }
    case NodeKind::Min:
    case NodeKind::Max: {
      Val best = Eval(p_.arg(n, 0), f);
      uint8_t s = Strict1(best.s);
      for (uint32_t i = 1; i < n.arg_count; ++i) {
        Val x = Eval(p_.arg(n, i), f);
        s = Strict(s, x.s);
        if (n.kind == NodeKind::Max ? x.v > best.v : x.v < best.v) best.v = x.v;
      }
      return {best.v, s};
    }
    case NodeKind::StartsWith:
    case NodeKind::EndsWith:
    case NodeKind::StrContains: {
      Val a = Eval(n.a, f), b = Eval(n.b, f);
      uint8_t s = Strict(a.s, b.s);
      if (s != kKnown) return {0, s};
      uint32_t x = static_cast<uint32_t>(a.v), y = static_cast<uint32_t>(b.v);
      uint8_t r = n.kind == NodeKind::StartsWith ? plinth_rules_startswith(f.host, x, y)
                  : n.kind == NodeKind::EndsWith ? plinth_rules_endswith(f.host, x, y)
                                                 : plinth_rules_strcontains(f.host, x, y);
      return {static_cast<double>(r), kKnown};
    }
    case NodeKind::StrLength: {
      Val a = Eval(n.a, f);
      if (a.s != kKnown) return {0, Strict1(a.s)};
      return {plinth_rules_strlen(f.host, static_cast<uint32_t>(a.v)), kKnown};
    }
    case NodeKind::RegexCount: {
      Val a = Eval(n.a, f);
      if (a.s != kKnown) return {0, Strict1(a.s)};
      double c = plinth_rules_regex_count(f.host, n.payload, static_cast<uint32_t>(a.v));
      return {c, c < 0 ? uint8_t{kError} : uint8_t{kKnown}};
    }
    case NodeKind::AllTrue:
    case NodeKind::AnyTrue:
    case NodeKind::Count:
    case NodeKind::Sum:
    case NodeKind::Contains: return Aggregate(n, f);
  }
  return {0, kError};
}

// Aggregates fold over the elements of a loop or the items of a list literal.
// Per element: the filter F (true when absent) and the value V.
//   alltrue:  Kleene AND over (!F || V); anytrue: Kleene OR over (F && V)
//   contains: Kleene OR over (F && V == needle)
//   length:   counts F known true; F unknown -> unknown; F error or V error -> error
//   sum:      adds V where F known true; strict in F and V; nothing to add -> error
Interpreter::Val Interpreter::Aggregate(const Node& n, Frame& f) const {
  uint32_t begin = 0, end = n.arg_count;
  uint8_t st = kKnown;
  const Loop* loop = nullptr;
  if (n.payload != kNoLoop) {
    loop = &p_.loop(n.payload);
    uint32_t field = loop->field.index;
    uint8_t ls = f.batch->states[layout_.base[field]][f.row];
    begin = f.batch->offsets[field][f.row];
    end = f.batch->offsets[field][f.row + 1];
    if (ls != kKnown) {
      end = begin;
      st = ls == kUnknown ? uint8_t{kUnknown} : loop->null_is_empty ? uint8_t{kKnown} : uint8_t{kError};
    }
    if (n.kind == NodeKind::Count && CountsElements(p_, *loop)) return {static_cast<double>(end - begin), st};
  }
  Val needle{0, kKnown};
  if (n.kind == NodeKind::Contains) needle = Eval(n.a, f);
  double total = 0;
  uint32_t count = 0;
  for (uint32_t i = begin; i < end; ++i) {
    Val filter{1, kKnown};
    NodeId value_id;
    if (loop) {
      f.element[n.payload] = i;
      if (loop->filter.valid()) filter = Eval(loop->filter, f);
      value_id = loop->value;
    } else {
      value_id = p_.arg(n, i);
    }
    bool skip = filter.s == kKnown && filter.v == 0;
    bool take = filter.s == kKnown && filter.v != 0;
    switch (n.kind) {
      case NodeKind::AllTrue: {
        if (skip) break;
        Val v = Eval(value_id, f);
        // !F || V
        if (v.s == kKnown && v.v != 0) break;
        uint8_t c = Strict(filter.s, v.s);
        if (c == kKnown) return {0, kKnown};  // F true and V false
        st = std::max(st, c);
        break;
      }
      case NodeKind::AnyTrue:
      case NodeKind::Contains: {
        if (skip) break;
        Val v = Eval(value_id, f);
        if (n.kind == NodeKind::Contains) Equal(v.v, v.s, needle.v, needle.s, &v.v, &v.s);
        // F && V
        if (v.s == kKnown && v.v == 0) break;
        uint8_t c = Strict(filter.s, v.s);
        if (c == kKnown) return {1, kKnown};
        st = std::max(st, c);
        break;
      }
      case NodeKind::Count: {
        if (skip) break;
        st = std::max(st, Strict1(filter.s));
        if (value_id.valid() && Eval(value_id, f).s == kError) st = kError;
        if (take) ++count;
        break;
      }
      case NodeKind::Sum: {
        if (skip) break;
        Val v = Eval(value_id, f);
        st = std::max(st, Strict(filter.s, v.s));
        if (take) {
          total += v.v;
          ++count;
        }
        break;
      }
      default: break;
    }
  }
  switch (n.kind) {
    case NodeKind::AllTrue: return {1, st};
    case NodeKind::AnyTrue:
    case NodeKind::Contains: return {0, st};
    case NodeKind::Count: return {static_cast<double>(count), st};
    case NodeKind::Sum:
      if (st == kKnown && count == 0) return {0, kError};
      return {total, st};
    default: return {0, kError};
  }
}

}  // namespace plinth::rules
