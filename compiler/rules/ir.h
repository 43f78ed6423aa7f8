// The typed rule IR: what the rule checker produces (check.h) and both the
// interpreter (interpreter.h) and the LLVM code generator (jit.h) consume.
// Semantics are specified in docs/rules.md ("Evaluation"); the two back ends
// must agree on every input, which rules_diff_test checks.
//
// Layout: nodes, loops and argument lists live in flat vectors of a Program
// and refer to each other by typed ids; a node's operands always have smaller
// ids than the node (the checker builds bottom-up), so one forward pass visits
// operands first. A Program is immutable once built and may be shared by
// threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/eval/regex.h"
#include "compiler/rules/schema.h"
#include "compiler/rules/strings.h"
#include "compiler/source/source.h"

namespace plinth::rules {

enum class NodeKind : uint8_t {
#define RULE_NODE(name) name,
#include "compiler/rules/ir_kinds.def"
#undef RULE_NODE
};
const char* NodeKindName(NodeKind k);

// The state of a value during evaluation. The numeric order matters: the
// state of a strict operation is min(max(operand states), kError) — an error
// (or a null used as an operand) outweighs an unknown, which outweighs a
// known value. Input columns hold only kKnown, kUnknown and kNull.
enum State : uint8_t {
  kKnown = 0,
  kUnknown = 1,  // known only after apply (planned value), or a missing series
  kError = 2,    // the operation failed: null operand, division by zero, sum of nothing
  kNull = 3,     // null / absent: a value only == and != accept
};

// The outcome of a rule for one record.
enum class Verdict : uint8_t { False = 0, True = 1, Unknown = 2, Error = 3 };
const char* VerdictName(Verdict v);

// Static type of a node: a scalar type, or Null for the `null` literal.
struct VType {
  bool is_null = false;
  ScalarType scalar = ScalarType::Bool;
  static VType Null() { return {true, ScalarType::Bool}; }
  static VType Of(ScalarType s) { return {false, s}; }
  bool Is(ScalarType s) const { return !is_null && scalar == s; }
  bool operator==(const VType&) const = default;
};
std::string DescribeType(VType t);  // "a number", "a string", "null"

struct NodeId {
  uint32_t index = UINT32_MAX;
  bool valid() const { return index != UINT32_MAX; }
  bool operator==(const NodeId&) const = default;
};
struct LoopId {
  uint32_t index = UINT32_MAX;
  bool valid() const { return index != UINT32_MAX; }
  bool operator==(const LoopId&) const = default;
};
inline constexpr uint32_t kNoLoop = UINT32_MAX;

struct Node {
  NodeKind kind = NodeKind::Const;
  VType type;
  State const_state = kKnown;  // Const: kKnown or kNull
  NodeId a, b, c;              // operands, by kind (see ir_kinds.def)
  uint32_t payload = 0;        // field id, loop id, pattern index
  uint32_t payload2 = 0;       // ElementAttr: attribute index
  uint32_t first_arg = 0;      // Min/Max/aggregates over literal lists: Program::args range
  uint32_t arg_count = 0;
  double number = 0;           // Const value
  Range range;                 // the source expression, for tooling and dumps
};

// A loop over the elements of a list field, for one record. `value` is what
// each element contributes (an Element/ElementAttr node, or any scalar
// expression of a for expression); `filter` is the optional `if` clause.
struct Loop {
  FieldId field;
  bool null_is_empty = false;  // for expressions and splats treat a null list as empty
  NodeId value;                // invalid when the elements are objects (only counted)
  NodeId filter;               // invalid when there is none
};

struct Rule {
  std::string name;
  NodeId root;  // invalid when the rule did not type-check
  Range range;
};

// The compiled patterns of a program (RE2, compiler/eval/regex.h), owned,
// with the array of pointers HostContext::regexes points into.
class CompiledRegexes {
 public:
  void Add(std::unique_ptr<const Regex> re) {
    pointers_.push_back(re.get());
    owned_.push_back(std::move(re));
  }
  const Regex* const* data() const { return pointers_.data(); }
  size_t size() const { return pointers_.size(); }

 private:
  std::vector<std::unique_ptr<const Regex>> owned_;
  std::vector<const Regex*> pointers_;
};

// How rules read fields: per record from columns (policies), or from one
// snapshot of doubles where NaN means the value is missing (conditions).
enum class FieldMode : uint8_t { Columnar, Snapshot };

struct Program {
  RuleSchema schema;
  FieldMode mode = FieldMode::Columnar;
  std::vector<Node> nodes;
  std::vector<NodeId> args;
  std::vector<Loop> loops;
  std::vector<Rule> rules;
  std::vector<std::string> patterns;  // regex patterns, by RegexCount payload
  std::shared_ptr<const CompiledRegexes> regexes;  // compiled patterns, same order
  std::shared_ptr<StringPool> strings;

  const Node& node(NodeId id) const { return nodes[id.index]; }
  const Loop& loop(uint32_t id) const { return loops[id]; }
  NodeId arg(const Node& n, uint32_t i) const { return args[n.first_arg + i]; }
};

// True when length() over `loop` is simply the number of elements: no
// filter, and each element contributes a field value (input values are never
// errors, so no element can make the count an error).
bool CountsElements(const Program& program, const Loop& loop);

// A readable dump of one rule's IR, for tests and debugging.
std::string DumpRule(const Program& program, size_t rule);

// ---------------------------------------------------------------- layout
// Columns of a batch of records (records.h), derived from the schema. Shared
// by the interpreter and the generated code so both read the same layout.
//
//   Scalar field f:      column base(f): one value per record.
//   List field f:        column base(f): the list's state per record (values unused);
//                        column base(f)+1: the elements of all records, concatenated;
//                        offsets(f): record r's elements are [offsets[r], offsets[r+1]).
//   ObjectList field f:  as List, with column base(f)+1+k for attribute k.
struct ColumnLayout {
  std::vector<uint32_t> base;  // by field id
  uint32_t column_count = 0;
  static ColumnLayout For(const RuleSchema& schema);
};

// The plain-C view of a batch that generated code receives. Pointers are
// owned by the RecordBatch and valid while it is unchanged.
struct BatchView {
  const double* const* values;    // by column
  const uint8_t* const* states;   // by column
  const uint32_t* const* offsets; // by field id (null for scalar fields)
  uint64_t rows;
};

}  // namespace plinth::rules
