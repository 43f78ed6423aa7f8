// The autoscaler's decision (runtime/controller/autoscale.h): Kubernetes'
// HPA algorithm with behaviors. Hand-computed cases for tolerance, rate
// policies, stabilization, bounds, no data and scale from zero; a saved and
// restored history decides as the original; and a reference written after
// the Kubernetes controller's Go code (normalizeDesiredReplicasWithBehaviors,
// stabilizeRecommendationWithBehaviors, calculateScaleUp/DownLimit...) agrees
// with every decision over random load sequences.
#include "runtime/controller/autoscale.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <random>

namespace plinth::controller {
namespace {

ScaleSignal PerReplica(double value, double target = 100) {
  return {"rps", value, target, true};
}

TEST(ControllerAutoscale, WithinToleranceNothingChanges) {
  AutoscaleSpec spec;
  spec.min = 1;
  spec.max = 20;
  Autoscaler a(spec);
  ScaleSignal s = PerReplica(105);
  auto d = a.Decide(4, {&s, 1}, 0);
  EXPECT_EQ(d.desired, 4);
  EXPECT_FALSE(d.changed);
  s = PerReplica(150);
  d = a.Decide(4, {&s, 1}, 1000);
  EXPECT_EQ(d.recommendation, 6);  // ceil(1.5 * 4)
  EXPECT_EQ(d.desired, 6);
  EXPECT_TRUE(d.changed);
  EXPECT_NE(d.reason.find("rps = 150 per replica (target 100): recommends 6"), std::string::npos) << d.reason;
}

TEST(ControllerAutoscale, ScaleUpIsLimitedByTheRatePoliciesOfTheLastPeriod) {
  AutoscaleSpec spec;
  spec.max = 50;
  Autoscaler a(spec);
  ScaleSignal s = PerReplica(1000);
  // From 1: 100% allows 2, 4 pods allows 5; kMax takes 5.
  auto d = a.Decide(1, {&s, 1}, 0);
  EXPECT_EQ(d.recommendation, 10);
  EXPECT_EQ(d.desired, 5);
  EXPECT_NE(d.reason.find("limited by the scale-up policies allow 5"), std::string::npos) << d.reason;
  // 5 s later the period still holds the +4: it started at 1, so 5 is all.
  s = PerReplica(200);
  d = a.Decide(5, {&s, 1}, 5000);
  EXPECT_EQ(d.recommendation, 10);
  EXPECT_EQ(d.desired, 5);
  // After the period: from 5, 100% allows 10.
  d = a.Decide(5, {&s, 1}, 15001);
  EXPECT_EQ(d.desired, 10);
  // And max holds.
  s = PerReplica(10000);
  d = a.Decide(10, {&s, 1}, 40000);
  EXPECT_EQ(d.desired, 20);
  d = a.Decide(20, {&s, 1}, 60000);
  EXPECT_EQ(d.desired, 40);
  d = a.Decide(40, {&s, 1}, 80000);
  EXPECT_EQ(d.desired, 50);
  EXPECT_NE(d.reason.find("limited by max 50"), std::string::npos) << d.reason;
}

TEST(ControllerAutoscale, ScaleDownWaitsOutTheStabilizationWindow) {
  AutoscaleSpec spec;
  spec.min = 1;
  spec.max = 10;
  Autoscaler a(spec);
  ScaleSignal high = PerReplica(100), low = PerReplica(10);
  EXPECT_EQ(a.Decide(10, {&high, 1}, 0).desired, 10);
  for (int64_t t = 15'000; t < 300'000; t += 15'000) {
    auto d = a.Decide(10, {&low, 1}, t);
    ASSERT_EQ(d.desired, 10) << "scaled down at " << t << " ms, inside the 300 s window: " << d.reason;
    EXPECT_EQ(d.recommendation, 1);
  }
  // 300 s after the high recommendation it has left the window: down to 1 (100% per 15 s, min 1).
  auto d = a.Decide(10, {&low, 1}, 300'000);
  EXPECT_EQ(d.desired, 1);
  EXPECT_TRUE(d.changed);
}

TEST(ControllerAutoscale, NoDataKeepsTheCountAndNeverReadsAsZero) {
  AutoscaleSpec spec;
  spec.max = 10;
  spec.down.stabilization_ms = 0;
  Autoscaler a(spec);
  ScaleSignal none = PerReplica(NAN);
  auto d = a.Decide(6, {&none, 1}, 0);
  EXPECT_EQ(d.desired, 6);
  EXPECT_NE(d.reason.find("no data"), std::string::npos) << d.reason;
  // One signal without data, one with: the one with data decides.
  ScaleSignal both[] = {PerReplica(NAN), PerReplica(50)};
  EXPECT_EQ(a.Decide(6, both, 1000).desired, 3);
}

TEST(ControllerAutoscale, BoundsAndScaleFromZeroOnATotal) {
  AutoscaleSpec spec;
  spec.min = 2;
  spec.max = 10;
  Autoscaler a(spec);
  EXPECT_EQ(a.Decide(12, {}, 0).desired, 10);
  EXPECT_EQ(a.Decide(1, {}, 0).desired, 2);
  // A pool that may be empty: 12 jobs queued, 4 per node wanted -> 3 nodes.
  AutoscaleSpec pool;
  pool.min = 0;
  pool.max = 8;
  pool.down.stabilization_ms = 0;
  Autoscaler p(pool);
  ScaleSignal queue{"pending_jobs", 12, 4, false};
  auto d = p.Decide(0, {&queue, 1}, 0);
  EXPECT_EQ(d.desired, 3);
  // A per-replica signal says nothing while there is no replica.
  ScaleSignal avg = PerReplica(500);
  EXPECT_EQ(p.Decide(0, {&avg, 1}, 1000).desired, 0);
  // The queue drains: back to zero.
  queue.value = 0;
  EXPECT_EQ(p.Decide(3, {&queue, 1}, 20'000).desired, 0);
}

TEST(ControllerAutoscale, DisabledDirectionAndMinPolicy) {
  AutoscaleSpec spec;
  spec.max = 100;
  spec.down.select = ScalingRules::Select::kDisabled;
  spec.up.select = ScalingRules::Select::kMin;  // the policy that allows the least: min(2x, +4)
  Autoscaler a(spec);
  ScaleSignal hot = PerReplica(1000), cold = PerReplica(1);
  EXPECT_EQ(a.Decide(10, {&hot, 1}, 0).desired, 14);
  EXPECT_EQ(a.Decide(14, {&cold, 1}, 600'000).desired, 14);
}

TEST(ControllerAutoscale, ARestoredHistoryDecidesAsTheOriginal) {
  AutoscaleSpec spec;
  spec.max = 30;
  Autoscaler a(spec);
  ScaleSignal s = PerReplica(400);
  int n = a.Decide(2, {&s, 1}, 0).desired;  // 6 (up to 2+4)
  Autoscaler b(spec);
  b.Restore(nlohmann::json::parse(a.State().dump()));
  ScaleSignal again = PerReplica(400);
  auto da = a.Decide(n, {&again, 1}, 5000);
  auto db = b.Decide(n, {&again, 1}, 5000);
  EXPECT_EQ(da.desired, db.desired);
  EXPECT_EQ(da.desired, n);  // the period still holds the first +4
  Autoscaler c(spec);
  c.Restore(nlohmann::json("garbage"));
  EXPECT_EQ(c.Decide(n, {&again, 1}, 5000).desired, 12);  // no history: 100% of 6
}

TEST(ControllerAutoscale, ValidationSaysWhatIsWrong) {
  AutoscaleSpec spec;
  spec.min = 3;
  spec.max = 2;
  spec.up.policies.clear();
  auto errs = ValidateAutoscale(spec);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0], "max 2 is below min 3: raise max or lower min");
  EXPECT_EQ(errs[1], "scale_up has no policy: add one (e.g. 100% per 15s), or disable it");
  EXPECT_TRUE(ValidateAutoscale(AutoscaleSpec{}).empty());
}

// ---------------------------------------------------------------- reference
// After pkg/controller/podautoscaler/horizontal.go (Kubernetes 1.27), for a
// single per-replica metric: replica count math, stabilization, rate limits.
struct Reference {
  AutoscaleSpec spec;
  std::vector<std::pair<int64_t, int>> recs;      // (time, recommendation)
  std::vector<std::pair<int64_t, int>> up, down;  // scale events (time, |change|)

  static int ChangeInPeriod(const std::vector<std::pair<int64_t, int>>& events, int64_t period, int64_t now) {
    int sum = 0;
    for (auto [t, n] : events)
      if (t > now - period) sum += n;
    return sum;
  }
  int Decide(int current, double value, double target, int64_t now) {
    if (current > spec.max) return Record(current, spec.max, now);
    if (current < spec.min) return Record(current, spec.min, now);
    if (std::isnan(value)) return current;
    double ratio = value / target;
    int desired = std::fabs(1.0 - ratio) <= spec.tolerance ? current : (int)std::ceil(ratio * current);
    // stabilizeRecommendationWithBehaviors
    int upRec = desired, downRec = desired;
    for (auto [t, r] : recs) {
      if (t > now - spec.up.stabilization_ms) upRec = std::min(r, upRec);
      if (t > now - spec.down.stabilization_ms) downRec = std::max(r, downRec);
    }
    int rec = current;
    if (rec < upRec) rec = upRec;
    if (rec > downRec) rec = downRec;
    recs.push_back({now, desired});
    // convertDesiredReplicasWithBehaviorRate
    if (rec > current) {
      int limit;
      if (spec.up.select == ScalingRules::Select::kDisabled) {
        limit = current;
      } else {
        bool mn = spec.up.select == ScalingRules::Select::kMin;
        limit = mn ? INT_MAX : INT_MIN;
        for (const auto& p : spec.up.policies) {
          int start = current - ChangeInPeriod(up, p.period_ms, now);
          int proposed = p.kind == ScalingPolicy::Kind::kPods ? start + p.value
                                                              : (int)std::ceil(start * (1 + p.value / 100.0));
          limit = mn ? std::min(limit, proposed) : std::max(limit, proposed);
        }
      }
      if (limit < current) limit = current;
      int allowed = std::min(spec.max, limit);
      if (rec > allowed) rec = allowed;
    } else if (rec < current) {
      int limit;
      if (spec.down.select == ScalingRules::Select::kDisabled) {
        limit = current;
      } else {
        bool mn = spec.down.select == ScalingRules::Select::kMin;
        limit = mn ? INT_MIN : INT_MAX;
        for (const auto& p : spec.down.policies) {
          int start = current + ChangeInPeriod(down, p.period_ms, now);
          int proposed =
              p.kind == ScalingPolicy::Kind::kPods ? start - p.value : (int)(start * (1 - p.value / 100.0));
          limit = mn ? std::max(limit, proposed) : std::min(limit, proposed);
        }
      }
      if (limit > current) limit = current;
      int allowed = std::max(spec.min, limit);
      if (rec < allowed) rec = allowed;
    }
    return Record(current, rec, now);
  }
  int Record(int current, int desired, int64_t now) {
    if (desired > current) up.push_back({now, desired - current});
    if (desired < current) down.push_back({now, current - desired});
    return desired;
  }
};

TEST(ControllerAutoscale, AgreesWithTheKubernetesReferenceOverRandomLoad) {
  std::mt19937 rng(20261205);
  for (int variant = 0; variant < 40; ++variant) {
    AutoscaleSpec spec;
    spec.min = static_cast<int>(rng() % 3);
    spec.max = spec.min + 1 + static_cast<int>(rng() % 30);
    spec.tolerance = (rng() % 3) * 0.05;
    spec.up.stabilization_ms = (rng() % 2) * 30'000;
    spec.down.stabilization_ms = (rng() % 3) * 60'000;
    if (rng() % 2) spec.down.policies.push_back({ScalingPolicy::Kind::kPods, 1 + (int)(rng() % 3), 30'000});
    if (rng() % 4 == 0) spec.up.select = ScalingRules::Select::kMin;
    if (rng() % 5 == 0) spec.down.select = ScalingRules::Select::kMin;
    Autoscaler ours(spec);
    Reference ref{spec};
    int replicas = std::max(1, spec.min), ref_replicas = replicas;
    double load = 100.0 * replicas;  // total requests per second
    for (int step = 0; step < 300; ++step) {
      const int64_t now = step * 15'000LL + (rng() % 5000);
      load = std::max(0.0, load * (0.7 + (rng() % 700) / 1000.0) + (rng() % 200) - 50);
      const bool gap = rng() % 25 == 0;  // a scrape that found nothing
      const double per = replicas == 0 ? NAN : load / replicas;
      ScaleSignal s{"rps", gap ? NAN : per, 100, true};
      const int got = ours.Decide(replicas, {&s, 1}, now).desired;
      const int want = ref.Decide(ref_replicas, gap ? NAN : per, 100, now);
      ASSERT_EQ(got, want) << "variant " << variant << " step " << step << " replicas " << replicas
                           << " load " << load;
      ASSERT_GE(got, spec.min);
      ASSERT_LE(got, spec.max);
      replicas = ref_replicas = got;
    }
  }
}

}  // namespace
}  // namespace plinth::controller
