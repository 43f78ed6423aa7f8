// Policies: a compiled set of rules evaluated over many records
// (docs/rules.md). This is the entry point for plan-time policy checks.
//
//   RuleSchema schema;                       // what rules can read
//   schema.AddScalar("self.encryption", ScalarType::String);
//   auto set = RuleSet::Compile(schema, {{"encrypted", &expr}}, diags);
//   RecordBatch batch = set->NewBatch();     // one row per planned resource
//   batch.AddValues({{"self", planned_object}}, &why);
//   std::vector<Verdict> out(set->size() * batch.rows());
//   set->EvaluateAll(batch, out);            // rule-major: True, False, Unknown (decided at apply) or Error
//
// Errors: type errors in rules are Diagnostics (the rule then evaluates to
// Verdict::Error); a JIT that cannot start is not a user error: the set falls
// back to the interpreter and jit_error() says why.
//
// Thread safety: a RuleSet is immutable after Compile; EvaluateAll and
// EvaluateRange may run on many threads at once over batches that are no
// longer being built.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "compiler/diag/diagnostic.h"
#include "compiler/rules/check.h"
#include "compiler/rules/interpreter.h"
#include "compiler/rules/ir.h"
#include "compiler/rules/jit.h"
#include "compiler/rules/records.h"

namespace plinth::rules {

enum class Backend : uint8_t {
  Jit,          // native code (falls back to the interpreter when the JIT is unavailable)
  Interpreter,  // the IR interpreter
};

struct RuleSetOptions {
  Backend backend = Backend::Jit;
  // The JIT to compile into; shared between sets to save start-up time.
  // Created on first use when null.
  std::shared_ptr<JitEngine> engine;
  // Where string literals are interned; a new pool when null.
  std::shared_ptr<StringPool> strings;
};

// A process-wide engine, created on first call (thread-safe). Null when the
// JIT cannot start; `error` then says why.
std::shared_ptr<JitEngine> SharedJitEngine(std::string* error = nullptr);

class RuleSet {
 public:
  static std::unique_ptr<RuleSet> Compile(RuleSchema schema, std::span<const RuleSource> rules, Diagnostics& diags,
                                          const RuleSetOptions& options = {});

  size_t size() const { return program_.rules.size(); }
  const std::string& name(size_t rule) const { return program_.rules[rule].name; }
  bool valid(size_t rule) const { return program_.rules[rule].root.valid(); }
  const Program& program() const { return program_; }
  const RuleSchema& schema() const { return program_.schema; }
  const std::shared_ptr<StringPool>& strings() const { return program_.strings; }

  // An empty batch with this set's schema and string pool.
  RecordBatch NewBatch() const { return RecordBatch(program_.schema, program_.strings); }

  bool jitted() const { return jit_ != nullptr; }
  const std::string& jit_error() const { return jit_error_; }
  const JitStats& jit_stats() const { return jit_stats_; }

  // Every rule over every record of `batch` (built with this set's string
  // pool): the verdict of rule r for record i is out[r * batch.rows() + i];
  // out.size() must be size() * batch.rows().
  void EvaluateAll(const RecordBatch& batch, std::span<Verdict> out) const {
    EvaluateAll(batch, out, jit_ ? Backend::Jit : Backend::Interpreter);
  }
  // With an explicit back end (tests, benchmarks); Jit needs jitted().
  void EvaluateAll(const RecordBatch& batch, std::span<Verdict> out, Backend backend) const;
  // Records [begin, end) only, rule-major with the given stride: the verdict
  // of rule r for record i is out[r * stride + (i - begin)]. Lets callers
  // split a large batch over threads.
  void EvaluateRange(const RecordBatch& batch, size_t begin, size_t end, Verdict* out, size_t stride,
                     Backend backend) const;

 private:
  RuleSet(Program program) : program_(std::move(program)), interpreter_(program_) {}

  Program program_;
  Interpreter interpreter_;
  std::unique_ptr<JitProgram> jit_;
  std::string jit_error_;
  JitStats jit_stats_;
};

}  // namespace plinth::rules
