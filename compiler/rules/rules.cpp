#include "compiler/rules/rules.h"

#include <cassert>
#include <mutex>

namespace plinth::rules {

std::shared_ptr<JitEngine> SharedJitEngine(std::string* error) {
  static std::mutex mu;
  static std::shared_ptr<JitEngine> engine;
  static std::string failure;
  std::lock_guard<std::mutex> lock(mu);
  if (!engine && failure.empty()) engine = JitEngine::Create(&failure);
  if (!engine && error) *error = failure;
  return engine;
}

std::unique_ptr<RuleSet> RuleSet::Compile(RuleSchema schema, std::span<const RuleSource> rules, Diagnostics& diags,
                                          const RuleSetOptions& options) {
  Program program = CheckRules(std::move(schema), rules, FieldMode::Columnar, options.strings, diags);
  std::unique_ptr<RuleSet> set(new RuleSet(std::move(program)));
  if (options.backend == Backend::Jit) {
    std::shared_ptr<JitEngine> engine = options.engine ? options.engine : SharedJitEngine(&set->jit_error_);
    if (engine) set->jit_ = JitProgram::Compile(engine, set->program_, &set->jit_error_, &set->jit_stats_);
  }
  return set;
}

void RuleSet::EvaluateAll(const RecordBatch& batch, std::span<Verdict> out, Backend backend) const {
  assert(out.size() == size() * batch.rows());
  EvaluateRange(batch, 0, batch.rows(), out.data(), batch.rows(), backend);
}

void RuleSet::EvaluateRange(const RecordBatch& batch, size_t begin, size_t end, Verdict* out, size_t stride,
                            Backend backend) const {
  assert(batch.strings() == program_.strings && batch.schema().size() == program_.schema.size());
  assert(begin <= end && end <= batch.rows() && end - begin <= stride);
  if (begin == end) return;
  RecordBatch::OwnedView view = batch.View();
  HostContext host{program_.strings.get(), program_.regexes->data(), program_.regexes->size()};
  if (backend == Backend::Jit && jit_) {
    jit_->RunAll(view.view, host, out, begin, end, stride);
  } else {
    interpreter_.RunAll(view.view, host, out, begin, end, stride);
  }
}

}  // namespace plinth::rules
