#include "compiler/rules/ir.h"

#include "compiler/types/types.h"

namespace plinth::rules {

const char* NodeKindName(NodeKind k) {
  switch (k) {
#define RULE_NODE(name) \
  case NodeKind::name: return #name;
#include "compiler/rules/ir_kinds.def"
#undef RULE_NODE
  }
  return "?";
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::False: return "false";
    case Verdict::True: return "true";
    case Verdict::Unknown: return "unknown";
    case Verdict::Error: return "error";
  }
  return "?";
}

std::string DescribeType(VType t) {
  if (t.is_null) return "null";
  switch (t.scalar) {
    case ScalarType::Bool: return "a bool";
    case ScalarType::Number: return "a number";
    case ScalarType::Duration: return "a duration";
    case ScalarType::Size: return "a size";
    case ScalarType::Percent: return "a percentage";
    case ScalarType::String: return "a string";
  }
  return "a value";
}

namespace {
void Dump(const Program& p, NodeId id, int depth, std::string& out) {
  const Node& n = p.node(id);
  out.append(static_cast<size_t>(depth) * 2, ' ');
  out += NodeKindName(n.kind);
  out += ":";
  out += n.type.is_null ? "null" : ScalarTypeName(n.type.scalar);
  switch (n.kind) {
    case NodeKind::Const:
      if (n.const_state == kNull) out += " null";
      else if (n.type.Is(ScalarType::String)) out.append(" ").append(QuoteString(p.strings->Get(static_cast<uint32_t>(n.number))));
      else out.append(" ").append(FormatNumber(n.number));
      break;
    case NodeKind::Field: out.append(" ").append(p.schema.field(FieldId{n.payload}).path); break;
    case NodeKind::Element:
    case NodeKind::LoopIndex: out.append(" loop").append(std::to_string(n.payload)); break;
    case NodeKind::ElementAttr:
      out.append(" loop").append(std::to_string(n.payload)).append(".");
      out += p.schema.field(p.loop(n.payload).field).attributes[n.payload2].name;
      break;
    case NodeKind::RegexCount: out.append(" /").append(p.patterns[n.payload]).append("/"); break;
    default: break;
  }
  bool aggregate = n.kind == NodeKind::AllTrue || n.kind == NodeKind::AnyTrue || n.kind == NodeKind::Count ||
                   n.kind == NodeKind::Sum || n.kind == NodeKind::Contains;
  if (aggregate && n.payload != kNoLoop) {
    const Loop& l = p.loop(n.payload);
    out.append(" loop").append(std::to_string(n.payload)).append(" over ");
    out += p.schema.field(l.field).path;
    if (l.null_is_empty) out += " (null is empty)";
  }
  out += "\n";
  for (NodeId c : {n.a, n.b, n.c}) {
    if (c.valid()) Dump(p, c, depth + 1, out);
  }
  for (uint32_t i = 0; i < n.arg_count; ++i) Dump(p, p.arg(n, i), depth + 1, out);
  if (aggregate && n.payload != kNoLoop) {
    const Loop& l = p.loop(n.payload);
    if (l.value.valid()) Dump(p, l.value, depth + 1, out);
    if (l.filter.valid()) {
      out.append(static_cast<size_t>(depth + 1) * 2, ' ');
      out += "if\n";
      Dump(p, l.filter, depth + 2, out);
    }
  }
}
}  // namespace

std::string DumpRule(const Program& program, size_t rule) {
  const Rule& r = program.rules[rule];
  std::string out = "rule " + r.name + "\n";
  if (!r.root.valid()) return out + "  (invalid)\n";
  Dump(program, r.root, 1, out);
  return out;
}

bool CountsElements(const Program& program, const Loop& loop) {
  if (loop.filter.valid()) return false;
  if (!loop.value.valid()) return true;
  NodeKind k = program.node(loop.value).kind;
  return k == NodeKind::Element || k == NodeKind::ElementAttr;
}

ColumnLayout ColumnLayout::For(const RuleSchema& schema) {
  ColumnLayout l;
  for (const FieldSpec& f : schema.fields()) {
    l.base.push_back(l.column_count);
    switch (f.shape) {
      case FieldShape::Scalar: l.column_count += 1; break;
      case FieldShape::List: l.column_count += 2; break;
      case FieldShape::ObjectList: l.column_count += 1 + static_cast<uint32_t>(f.attributes.size()); break;
    }
  }
  return l;
}

}  // namespace plinth::rules
