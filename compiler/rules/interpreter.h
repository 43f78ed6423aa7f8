// The rule interpreter: evaluates a Program's typed IR directly.
//
// Used where compiling is not worth it (one evaluation, a handful of records)
// and as the oracle for the JIT: for every program and input both back ends
// must give the same verdicts (rules_diff_test). Semantics: docs/rules.md.
//
// Thread safety: an Interpreter is immutable after construction; Run may be
// called from many threads at once (each call has its own scratch state).
#pragma once

#include <span>

#include "compiler/rules/host.h"
#include "compiler/rules/ir.h"

namespace plinth::rules {

class Interpreter {
 public:
  // `program` must outlive the interpreter.
  explicit Interpreter(const Program& program);

  // Columnar programs: every rule over rows [begin, end) of `batch`; the
  // verdict of rule r for row i is out[r * stride + (i - begin)].
  void RunAll(const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin, uint64_t end,
              uint64_t stride) const;
  // One rule only; out[i - begin] is the verdict of row i.
  void Run(size_t rule, const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin,
           uint64_t end) const;
  // Snapshot programs: every rule over one snapshot (NaN = missing series);
  // out[r] is rule r's verdict.
  void RunSnapshot(const double* snapshot, const HostContext& host, Verdict* out) const;

 private:
  struct Frame;
  struct Val {
    double v;
    uint8_t s;
  };
  Val Eval(NodeId id, Frame& f) const;
  Val Aggregate(const Node& n, Frame& f) const;

  const Program& p_;
  ColumnLayout layout_;
};

}  // namespace plinth::rules
