// The autoscaler's decision (docs/automation.md, "Autoscaling"): how many
// replicas (or nodes) a target should have, by the Kubernetes Horizontal Pod
// Autoscaler's algorithm (autoscaling/v2 with `behavior`), as a pure
// function of the target's recorded history and the signals of this
// evaluation.
//
// Per evaluation, for each signal i with a value (a metric series or a
// compiled condition's number) and a target:
//   ratio_i   = value_i / target_i
//   desired_i = current                          when |ratio_i - 1| <= tolerance
//             = ceil(ratio_i * current)          otherwise (a signal with
//               `per_replica = false` is a total: ceil(value_i / target_i))
// The recommendation is the largest desired_i; a signal without data (NaN)
// is left out, and with no signal that has data nothing changes ("no data"
// is never read as 0). A current count of 0 (scaled to zero) with demand
// recommends ceil(value / target) for totals and 1 for per-replica signals.
//
// Stabilization (Kubernetes' stabilizeRecommendationWithBehaviors): the
// recommendations of the last `down.stabilization` are kept; scaling down
// goes only to the highest of them (so a dip must last the whole window),
// scaling up only to the lowest within `up.stabilization` (0 by default:
// at once).
//
// Rate policies (Kubernetes' calculateScaleUpLimitWithScalingRules and
// ...ScaleDownLimit...): from the scale events of each policy's period, the
// count at the start of the period is worked out; a Pods policy allows
// start ± value, a Percent policy start × (1 ± value/100) (up: rounded up;
// down: rounded down); `select` kMax takes the policy that allows the most
// change, kMin the least, kDisabled forbids scaling in that direction.
// Defaults are Kubernetes': up 100% or 4 per 15 s (kMax), no
// stabilization; down 100% per 15 s after a 300 s stabilization window.
// The result is clamped to [min, max].
//
// Input: an AutoscaleSpec, the current count, signals, the time. Output: a
// Decision (the new count and a one-line reason). The history
// (recommendations and scale events) is kept in the Autoscaler and can be
// saved and restored (State/Restore) so a restarted controller decides as
// the old one would have.
//
// Thread safety: an Autoscaler is a plain value: one thread at a time.
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace plinth::controller {

struct ScalingPolicy {
  enum class Kind { kPods, kPercent };
  Kind kind = Kind::kPods;
  int value = 1;               // replicas, or percent (> 0)
  int64_t period_ms = 15'000;  // > 0
};

struct ScalingRules {
  enum class Select { kMax, kMin, kDisabled };
  int64_t stabilization_ms = 0;
  std::vector<ScalingPolicy> policies;
  Select select = Select::kMax;
};

struct AutoscaleSpec {
  int min = 1;  // >= 0; 0 allows scale to zero
  int max = 1;  // >= min, >= 1
  double tolerance = 0.1;
  ScalingRules up{0,
                  {{ScalingPolicy::Kind::kPercent, 100, 15'000}, {ScalingPolicy::Kind::kPods, 4, 15'000}},
                  ScalingRules::Select::kMax};
  ScalingRules down{300'000, {{ScalingPolicy::Kind::kPercent, 100, 15'000}}, ScalingRules::Select::kMax};
};

// One scaling signal of one evaluation.
struct ScaleSignal {
  std::string name;         // for the reason: "rate(http_requests_total)"
  double value = 0;         // NaN: no data
  double target = 1;        // > 0
  bool per_replica = true;  // value is an average per replica (HPA's AverageValue); false: a total
};

struct ScaleDecision {
  int desired = 0;         // what to run now (== current when nothing changes)
  int recommendation = 0;  // before stabilization, rate limits and bounds
  bool changed = false;    // desired != current
  std::string reason;      // one line: which signal, its value and target, what limited the change
};

class Autoscaler {
 public:
  explicit Autoscaler(AutoscaleSpec spec) : spec_(std::move(spec)) {}

  // The decision for `current` replicas now. Records the recommendation and,
  // when the count changes, the scale event (so call it once per evaluation
  // and act on the result).
  ScaleDecision Decide(int current, std::span<const ScaleSignal> signals, int64_t now_ms);

  const AutoscaleSpec& spec() const { return spec_; }
  void set_spec(AutoscaleSpec spec) { spec_ = std::move(spec); }

  // The history as JSON, and back (unknown or damaged input: an empty history).
  nlohmann::json State() const;
  void Restore(const nlohmann::json& state);

 private:
  struct Recommendation {
    int64_t at_ms;
    int replicas;
  };
  struct ScaleEvent {
    int64_t at_ms;
    int change;  // + up, - down
  };
  void Forget(int64_t now_ms);
  int UpLimit(int current, int64_t now_ms, std::string* why) const;
  int DownLimit(int current, int64_t now_ms, std::string* why) const;

  AutoscaleSpec spec_;
  std::deque<Recommendation> recommendations_;
  std::deque<ScaleEvent> events_;
};

// The problems of a spec, one line each ("max 0 is below min 1: ..."); empty when valid.
std::vector<std::string> ValidateAutoscale(const AutoscaleSpec& spec);

}  // namespace plinth::controller
