#include "compiler/rules/condition.h"

#include <algorithm>
#include <cassert>

namespace plinth::rules {

std::unique_ptr<ConditionSet> ConditionSet::Compile(std::span<const Series> series,
                                                    std::span<const ConditionSource> conditions, Diagnostics& diags,
                                                    std::string* error, const RuleSetOptions& options) {
  RuleSchema schema;
  for (const Series& s : series) {
    if (s.unit == ScalarType::Bool || s.unit == ScalarType::String) {
      if (error) *error = "series '" + s.name + "' must be numeric, not " + ScalarTypeName(s.unit);
      return nullptr;
    }
    std::string why;
    if (!schema.AddScalar(s.name, s.unit, &why).valid()) {
      if (error) *error = why;
      return nullptr;
    }
  }
  std::vector<RuleSource> rules;
  rules.reserve(conditions.size());
  for (const ConditionSource& c : conditions) rules.push_back({c.name, c.expr});
  Program program = CheckRules(std::move(schema), rules, FieldMode::Snapshot, options.strings, diags);
  std::unique_ptr<ConditionSet> set(new ConditionSet(std::move(program)));
  if (options.backend == Backend::Jit) {
    std::shared_ptr<JitEngine> engine = options.engine ? options.engine : SharedJitEngine(&set->jit_error_);
    if (engine) set->jit_ = JitProgram::Compile(engine, set->program_, &set->jit_error_, &set->jit_stats_);
  }
  return set;
}

std::optional<size_t> ConditionSet::SeriesIndex(std::string_view name) const {
  std::optional<FieldId> f = program_.schema.Find(name);
  if (!f) return std::nullopt;
  return f->index;
}

void ConditionSet::Evaluate(std::span<const double> snapshot, std::span<Verdict> out, Backend backend) const {
  assert(snapshot.size() == series_count() && out.size() == size());
  HostContext host{program_.strings.get(), program_.regexes->data(), program_.regexes->size()};
  if (backend == Backend::Jit && jit_) {
    jit_->RunSnapshot(snapshot.data(), host, out.data());
  } else {
    interpreter_.RunSnapshot(snapshot.data(), host, out.data());
  }
}

const char* AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::Inactive: return "inactive";
    case AlertState::Pending: return "pending";
    case AlertState::Firing: return "firing";
  }
  return "?";
}

AlertTracker::AlertTracker(std::vector<int64_t> for_ms) : for_ms_(std::move(for_ms)), status_(for_ms_.size()) {
  for (int64_t& w : for_ms_) w = std::max<int64_t>(w, 0);
}

void AlertTracker::Update(std::span<const Verdict> verdicts, int64_t now_ms, std::vector<AlertChange>* changes) {
  assert(verdicts.size() == status_.size());
  now_ms = std::max(now_ms, last_now_);
  last_now_ = now_ms;
  for (size_t i = 0; i < status_.size(); ++i) {
    AlertStatus& st = status_[i];
    AlertState before = st.state;
    Verdict v = verdicts[i];
    st.last = v;
    switch (v) {
      case Verdict::Unknown:
      case Verdict::Error: ++st.undecided_in_a_row; continue;
      case Verdict::False:
        st.undecided_in_a_row = 0;
        st.state = AlertState::Inactive;
        break;
      case Verdict::True:
        st.undecided_in_a_row = 0;
        if (st.state == AlertState::Inactive) {
          st.state = AlertState::Pending;
          st.active_since_ms = now_ms;
        }
        if (st.state == AlertState::Pending && now_ms - st.active_since_ms >= for_ms_[i]) {
          st.state = AlertState::Firing;
          st.firing_since_ms = now_ms;
        }
        break;
    }
    if (changes && st.state != before) changes->push_back({i, before, st.state});
  }
}

}  // namespace plinth::rules
