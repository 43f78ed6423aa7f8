// Conditions for autoscaling and alerts: rule expressions over named numeric
// series, compiled once and evaluated many times against snapshots
// (docs/rules.md, "Conditions" and "The for window").
//
//   std::vector<Series> series = {{"requests_per_second"}, {"replicas"},
//                                 {"latency_p99", ScalarType::Duration}};
//   auto set = ConditionSet::Compile(series, {{"hot", &expr}}, diags, &error);
//   std::vector<double> snapshot(set->series_count(), NAN);  // NaN = missing
//   std::vector<Verdict> out(set->size());
//   set->Evaluate(snapshot, out);
//   AlertTracker alerts({60'000});          // `for = 1m` per condition
//   alerts.Update(out, now_ms);
//
// Snapshot values are in canonical units (ms, bytes, percent as written). A
// missing series makes the conditions that read it Unknown (unless Kleene
// logic decides them anyway: `missing > 1 || true` is true).
//
// Thread safety: a ConditionSet is immutable after Compile and may be
// evaluated from many threads at once. An AlertTracker is a plain value: one
// thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compiler/rules/rules.h"

namespace plinth::rules {

struct Series {
  std::string name;  // how conditions refer to it: a name or dotted path
  ScalarType unit = ScalarType::Number;  // Number, Duration, Size or Percent
};

struct ConditionSource {
  std::string name;
  const ast::Expr* expr = nullptr;  // only read during Compile
};

class ConditionSet {
 public:
  // Returns null with `error` set when the series list itself is invalid
  // (duplicate or malformed names, a non-numeric unit): that is the caller's
  // mistake, not the user's. Type errors in conditions go to `diags`; such a
  // condition evaluates to Verdict::Error.
  static std::unique_ptr<ConditionSet> Compile(std::span<const Series> series,
                                               std::span<const ConditionSource> conditions, Diagnostics& diags,
                                               std::string* error, const RuleSetOptions& options = {});

  size_t size() const { return program_.rules.size(); }
  size_t series_count() const { return program_.schema.size(); }
  // The snapshot index of a series.
  std::optional<size_t> SeriesIndex(std::string_view name) const;
  const Program& program() const { return program_; }

  bool jitted() const { return jit_ != nullptr; }
  const std::string& jit_error() const { return jit_error_; }
  const JitStats& jit_stats() const { return jit_stats_; }

  // snapshot.size() == series_count(), out.size() == size().
  void Evaluate(std::span<const double> snapshot, std::span<Verdict> out) const {
    Evaluate(snapshot, out, jit_ ? Backend::Jit : Backend::Interpreter);
  }
  void Evaluate(std::span<const double> snapshot, std::span<Verdict> out, Backend backend) const;

 private:
  explicit ConditionSet(Program program) : program_(std::move(program)), interpreter_(program_) {}

  Program program_;
  Interpreter interpreter_;
  std::unique_ptr<JitProgram> jit_;
  std::string jit_error_;
  JitStats jit_stats_;
};

// ------------------------------------------------------------ the for window
// Prometheus alerting semantics per condition with window W (`for = W`):
//   Inactive --true--> Pending (active since t), or Firing at once when W == 0
//   Pending  --true, t - since >= W--> Firing
//   Pending/Firing --false--> Inactive
//   Unknown or Error: the state is kept (the streak is neither confirmed nor
//   broken) and reported through AlertStatus::last.
enum class AlertState : uint8_t { Inactive, Pending, Firing };
const char* AlertStateName(AlertState s);

struct AlertStatus {
  AlertState state = AlertState::Inactive;
  int64_t active_since_ms = 0;  // Pending/Firing: the first true evaluation of the streak
  int64_t firing_since_ms = 0;  // Firing: when it started firing
  Verdict last = Verdict::False;
  uint32_t undecided_in_a_row = 0;  // consecutive Unknown/Error evaluations
};

struct AlertChange {
  size_t condition;
  AlertState from;
  AlertState to;
};

class AlertTracker {
 public:
  // One window (ms, >= 0) per condition.
  explicit AlertTracker(std::vector<int64_t> for_ms);

  // Feeds one evaluation of every condition at `now_ms`. Timestamps must not
  // go backwards; an earlier one is treated as the latest seen, so a window
  // never completes early. Appends state changes to `changes` when given.
  void Update(std::span<const Verdict> verdicts, int64_t now_ms, std::vector<AlertChange>* changes = nullptr);

  size_t size() const { return status_.size(); }
  const AlertStatus& status(size_t condition) const { return status_[condition]; }

 private:
  std::vector<int64_t> for_ms_;
  std::vector<AlertStatus> status_;
  int64_t last_now_ = INT64_MIN;
};

}  // namespace plinth::rules
