// plinth-automation-bench: what the controller's automation rules cost per
// evaluation interval, and how long a metric change takes to become a
// decision (issue 16; figures in docs/benchmarks.md, "Automation rules").
//
//   plinth-automation-bench [--services N] [--conditions N] [--intervals N]
//                           [--trials N] [--targeted-trials N] [--repeat N]
//
// A simulated fleet of --services services (default 1,000), each exporting 10
// series (5 counters, 5 gauges: 10,000 series in all), scraped every 15 s
// into a metrics::Window (runtime/metrics/window.h) that first fills with 10
// minutes of history (40 points per series). Then:
//
//  (a) per 15 s interval, --intervals times (default 40): the scrape is
//      appended (timed for reference, not counted against the rules); the
//      snapshot the rules read is computed from the window (rate over 1m of
//      the 5 counters, latest of the 5 gauges, all in canonical units: one
//      vector of 10,000 values); --conditions generated alert conditions
//      (default 1,000, all distinct: comparisons, &&/||, arithmetic across 2
//      to 4 series, durations, sizes and percentages), compiled as one
//      ConditionSet (compiler/rules/condition.h), are evaluated by the
//      interpreter and by the JIT on the same snapshot (verdicts must agree);
//      then the for-window tracker (AlertTracker), one AlertSet per condition
//      (runtime/controller/alerts.h) and one Autoscaler per service
//      (runtime/controller/autoscale.h, signals from the snapshot) are
//      updated. Prints each phase's wall time (median, p90, max over the
//      intervals), the fraction of one core at a 15 s interval, the
//      JIT/interpreter ratio (first call per interval, and best of --repeat)
//      and the compile time.
//  (b) decision latency: service s0000's queue depth alternates between 400
//      and 20 (condition 0 is `s0000.queue > 100` with no for-window; its own
//      autoscaler targets 10 queued per replica). The clock runs from
//      appending that point to the window to the alert's state change (both
//      AlertTracker and AlertSet) and to the autoscaler's new desired count,
//      in-process; median and p99 over --trials full passes (the whole
//      snapshot, every condition, every alert) and --targeted-trials passes
//      that query only the changed series. Every trial must change both the
//      alert and the count, or the bench fails. The wait for the controller's
//      next tick (up to one interval) is not included.
//
// Inputs come from a fixed seed; the fleet's load is a mean-reverting random
// walk with bursts, counters reset now and then (restarts), and about 0.7% of
// the services are silent at any time (their series go stale: missing, not
// 0). Single-threaded. Exit status 1 when a back end disagrees, a condition
// does not compile, or a trial fails to change the decision.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "compiler/rules/condition.h"
#include "compiler/rules/rules.h"
#include "compiler/syntax/parse.h"
#include "runtime/controller/alerts.h"
#include "runtime/controller/autoscale.h"
#include "runtime/metrics/window.h"

using namespace plinth;
using rules::ScalarType;
using rules::Verdict;

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
double Ms(Clock::time_point t0, Clock::time_point t1) {
  return std::chrono::duration<double, std::milli>(t1 - t0).count();
}
double ThreadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

constexpr int64_t kIntervalMs = 15'000;
constexpr int64_t kRateRangeMs = 60'000;
constexpr int kPerService = 10;
constexpr int64_t kStartMs = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

// The 10 series of a service: the Prometheus metric, how the snapshot reads
// it, and the condition series it becomes (`s0042.<field>`).
struct MetricDef {
  const char* metric;
  bool counter;       // snapshot: rate over 1m; otherwise the latest value
  const char* field;  // the condition series is s<NNNN>.<field>
  ScalarType unit;
  double scale;  // window value (per second for counters) -> canonical unit (ms, bytes, percent)
};
enum Metric { kRequests, kErrors, kCpu, kTx, kGc, kMem, kP99, kQueue, kDisk, kReplicas };
const MetricDef kMetrics[kPerService] = {
    {"http_requests_total", true, "rps", ScalarType::Number, 1},
    {"http_request_errors_total", true, "errors", ScalarType::Number, 1},
    {"process_cpu_seconds_total", true, "cpu", ScalarType::Number, 1},
    {"network_transmit_bytes_total", true, "tx", ScalarType::Size, 1},
    {"gc_pause_seconds_total", true, "gc", ScalarType::Percent, 100},
    {"process_resident_memory_bytes", false, "mem", ScalarType::Size, 1},
    {"http_request_duration_p99_seconds", false, "p99", ScalarType::Duration, 1000},
    {"queue_depth", false, "queue", ScalarType::Number, 1},
    {"disk_used_ratio", false, "disk", ScalarType::Percent, 100},
    {"service_replicas", false, "replicas", ScalarType::Number, 1},
};

std::string ServiceName(size_t s) {
  char b[32];  // "s" and up to 20 digits
  std::snprintf(b, sizeof b, "s%04zu", s);
  return b;
}
std::string Field(size_t s, Metric m) {
  return ServiceName(s) + "." + kMetrics[m].field;
}

// The simulated fleet: what each service's /metrics would say.
class Fleet {
 public:
  Fleet(size_t services, uint64_t seed) : rng_(seed), services_(services) {
    std::uniform_real_distribution<double> u(0, 1);
    for (size_t s = 0; s < services; ++s) {
      Service& v = services_[s];
      v.labels = {{"region", s % 2 ? "us" : "eu"}, {"service", ServiceName(s)}};
      v.base = 20 + 480 * u(rng_) * u(rng_);
      v.replicas = 1 + static_cast<int>(v.base / 100);
      v.mem_base = std::ldexp(1.0, 28) * (1 + 7 * u(rng_));
      v.disk = 0.2 + 0.7 * u(rng_);
      v.err_base = 0.002 + 0.03 * u(rng_) * u(rng_);
      v.latency_base = 0.01 + 0.05 * u(rng_);
    }
  }
  size_t size() const { return services_.size(); }
  const metrics::Labels& labels(size_t s) const { return services_[s].labels; }
  int replicas(size_t s) const { return services_[s].replicas; }
  void set_replicas(size_t s, int n) { services_[s].replicas = std::max(n, 1); }

  // Advances every service by one interval and appends the scrape of every
  // service that reports at `now_ms`; `held`: a service whose queue depth the
  // caller appends itself (-1: none).
  void Scrape(metrics::Window& w, int64_t now_ms, long held = -1) {
    std::normal_distribution<double> n(0, 1);
    std::uniform_real_distribution<double> u(0, 1);
    const double dt = static_cast<double>(kIntervalMs) / 1000;
    const int64_t step = (now_ms - kStartMs) / kIntervalMs;
    for (size_t s = 0; s < services_.size(); ++s) {
      Service& v = services_[s];
      v.walk = 0.9 * v.walk + 0.15 * n(rng_) + (u(rng_) < 0.005 ? 1.2 : 0);
      const double load = v.base * std::exp(v.walk);
      const double per_replica = load / v.replicas;
      if (u(rng_) < 0.0005) std::fill(std::begin(v.counters), std::end(v.counters), 0.0);  // a restart
      v.counters[kRequests] += load * dt;
      v.counters[kErrors] += load * std::min(0.5, v.err_base * std::exp(0.8 * n(rng_))) * dt;
      v.counters[kCpu] += (0.002 * load + 0.05 * v.replicas) * dt;
      v.counters[kTx] += load * 16'384 * (0.5 + u(rng_)) * dt;
      v.counters[kGc] += std::min(0.9, 0.01 + 0.0002 * per_replica) * v.replicas * dt;
      v.disk += 0.002 * u(rng_);
      if (v.disk > 0.98) v.disk = 0.3;  // cleaned up
      double gauges[kPerService];
      gauges[kMem] = v.mem_base * (1 + 0.3 * per_replica / 100) * (0.95 + 0.1 * u(rng_));
      gauges[kP99] = v.latency_base * (1 + std::pow(per_replica / 150, 2)) * std::exp(0.1 * n(rng_));
      gauges[kQueue] = std::floor(std::max(0.0, per_replica - 120) * 3 + 5 * u(rng_));
      gauges[kDisk] = v.disk;
      gauges[kReplicas] = v.replicas;
      // Silent services: runs of 8 scrapes, about 1 in 150 at a time; s0000 always reports.
      if (s != 0 && (s * 7 + static_cast<size_t>(step / 8)) % 150 == 0) continue;
      for (int m = 0; m < kPerService; ++m) {
        if (static_cast<long>(s) == held && m == kQueue) continue;
        double value = kMetrics[m].counter ? v.counters[m] : gauges[m];
        w.Append(kMetrics[m].metric, v.labels, now_ms, value);
      }
    }
  }

 private:
  struct Service {
    metrics::Labels labels;
    double base = 0, walk = 0, mem_base = 0, disk = 0, err_base = 0, latency_base = 0;
    double counters[5] = {0, 0, 0, 0, 0};
    int replicas = 1;
  };
  std::mt19937_64 rng_;
  std::vector<Service> services_;
};

metrics::Selector Sel(const std::string& metric, std::vector<metrics::LabelMatcher> matchers = {}) {
  std::string error;
  auto s = metrics::Selector::Make(metric, std::move(matchers), &error);
  if (!s) {
    std::fprintf(stderr, "selector %s: %s\n", metric.c_str(), error.c_str());
    std::exit(1);
  }
  return *s;
}

// The snapshot of the whole fleet: rate over 1m of the counters and the
// latest gauge values, one query per metric, placed by the `service` label.
class Snapshotter {
 public:
  explicit Snapshotter(size_t services) {
    for (const MetricDef& m : kMetrics) selectors_.push_back(Sel(m.metric));
    for (size_t s = 0; s < services; ++s) index_.emplace(ServiceName(s), s);
  }
  size_t Compute(const metrics::Window& w, int64_t now_ms, std::vector<double>& out) const {
    std::fill(out.begin(), out.end(), NAN);
    size_t present = 0;
    for (int m = 0; m < kPerService; ++m) {
      metrics::InstantVector v =
          kMetrics[m].counter ? w.Rate(selectors_[m], kRateRangeMs, now_ms) : w.Latest(selectors_[m], now_ms);
      for (const metrics::SeriesValue& sv : v) {
        for (const auto& [name, value] : sv.labels) {
          if (name != "service") continue;
          auto it = index_.find(value);
          if (it != index_.end()) {
            out[it->second * kPerService + static_cast<size_t>(m)] = sv.value * kMetrics[m].scale;
            ++present;
          }
        }
      }
    }
    return present;
  }

 private:
  std::vector<metrics::Selector> selectors_;
  std::unordered_map<std::string, size_t> index_;
};

struct Parsed {
  SourceManager sources;
  Diagnostics diags;
  std::vector<ast::ExprPtr> exprs;
  std::vector<rules::ConditionSource> conditions;
  void Add(const std::string& name, const std::string& text) {
    exprs.push_back(ParseExpression(sources.Add(name, text), diags));
    conditions.push_back({name, exprs.back().get()});
  }
  bool Check() {
    if (!diags.has_errors()) return true;
    std::fputs(RenderText(diags.Sorted(sources), sources, {}).c_str(), stderr);
    return false;
  }
};

// Condition 0 is the latency probe's; the others are generated, all distinct.
std::vector<std::string> MakeConditions(size_t count, size_t services, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](size_t n) {
    return static_cast<size_t>(std::uniform_int_distribution<uint64_t>(0, n - 1)(rng));
  };
  auto other = [&](size_t not_this) {
    size_t s = pick(services - 1);
    return s >= not_this ? s + 1 : s;
  };
  std::set<std::string> seen;
  std::vector<std::string> out = {Field(0, kQueue) + " > 100"};
  seen.insert(out[0]);
  for (size_t i = 1; out.size() < count; ++i) {
    size_t a = pick(services), b = other(a), c = other(a);
    std::string n = std::to_string(i % 997), t;
    switch (i % 8) {
      case 0:
        t = Field(a, kP99) + " > " + std::to_string(100 + i % 500) + "ms && " + Field(a, kRequests) + " > " +
            std::to_string(20 + i % 50);
        break;
      case 1:
        t = Field(a, kErrors) + " > " + Field(a, kRequests) + " * 0.0" + std::to_string(1 + i % 9) + " || " +
            Field(a, kP99) + " > " + std::to_string(300 + i % 400) + "ms";
        break;
      case 2:
        t = Field(a, kMem) + " > " + std::to_string(1200 + i % 900) + "MiB || " + Field(a, kDisk) + " > " +
            std::to_string(85 + i % 14) + "%";
        break;
      case 3:
        t = Field(a, kCpu) + " / " + Field(a, kReplicas) + " > 0." + std::to_string(2 + i % 7) + " && " +
            Field(a, kQueue) + " > " + std::to_string(10 + i % 80);
        break;
      case 4: t = Field(a, kTx) + " + " + Field(b, kTx) + " > " + std::to_string(5 + i % 60) + "MiB"; break;
      case 5:
        t = "(" + Field(a, kRequests) + " + " + Field(b, kRequests) + " + " + Field(c, kRequests) +
            ") / 3 > " + std::to_string(100 + i % 300) + " && " + Field(a, kGc) + " > " +
            std::to_string(1 + i % 8) + "%";
        break;
      case 6:
        t = Field(a, kQueue) + " - " + Field(b, kQueue) + " > " + std::to_string(10 + i % 100) + " || " +
            Field(a, kP99) + " - " + Field(b, kP99) + " > " + std::to_string(100 + i % 300) + "ms";
        break;
      default:
        t = "max(" + Field(a, kCpu) + ", " + Field(b, kCpu) + ") > 0." + std::to_string(3 + i % 6) +
            " && min(" + Field(a, kReplicas) + ", " + Field(b, kReplicas) + ") < " +
            std::to_string(2 + i % 4);
        break;
    }
    if (seen.insert(t).second) out.push_back(t);
  }
  return out;
}

int64_t ForMs(size_t condition) {
  if (condition == 0) return 0;
  const int64_t windows[] = {0, 60'000, 300'000};
  return windows[condition % 3];
}

struct Stat {
  double median, p90, p99, max, mean;
};
Stat Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::min(v.size() - 1, i == 0 ? 0 : i - 1)];
  };
  double sum = 0;
  for (double x : v) sum += x;
  return {at(0.5), at(0.9), at(0.99), v.back(), sum / static_cast<double>(v.size())};
}

void Row(const char* name, const std::vector<double>& ms) {
  Stat s = Summarize(ms);
  std::printf("  %-40s %9.3f %9.3f %9.3f %9.3f\n", name, s.median, s.p90, s.max, s.mean);
}

struct Options {
  size_t services = 1'000;
  size_t conditions = 1'000;
  size_t intervals = 40;
  size_t trials = 200;
  size_t targeted_trials = 2'000;
  size_t repeat = 20;
};

bool ParseArgs(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    size_t* target = nullptr;
    if (!std::strcmp(argv[i], "--services"))
      target = &o.services;
    else if (!std::strcmp(argv[i], "--conditions"))
      target = &o.conditions;
    else if (!std::strcmp(argv[i], "--intervals"))
      target = &o.intervals;
    else if (!std::strcmp(argv[i], "--trials"))
      target = &o.trials;
    else if (!std::strcmp(argv[i], "--targeted-trials"))
      target = &o.targeted_trials;
    else if (!std::strcmp(argv[i], "--repeat"))
      target = &o.repeat;
    if (!target || i + 1 >= argc) return false;
    char* end = nullptr;
    *target = std::strtoull(argv[++i], &end, 10);
    if (end == argv[i] || *end != '\0') return false;
  }
  return o.services >= 4 && o.conditions >= 1 && o.intervals >= 1 && o.trials >= 1 &&
         o.targeted_trials >= 1 && o.repeat >= 1;
}

// The autoscaler of the latency probe: 10 queued per replica, no scale-down
// stabilization, so that every trial changes the count.
controller::AutoscaleSpec ProbeSpec() {
  controller::AutoscaleSpec spec;
  spec.min = 1;
  spec.max = 50;
  spec.down.stabilization_ms = 0;
  return spec;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, o)) {
    std::fprintf(stderr,
                 "usage: plinth-automation-bench [--services N (>= 4)] [--conditions N] [--intervals N] "
                 "[--trials N] [--targeted-trials N] [--repeat N]\n");
    return 2;
  }
  const size_t series_count = o.services * kPerService;
  std::printf(
      "plinth-automation-bench: %zu services x %d series = %zu series, %zu conditions, 15 s interval\n\n",
      o.services, kPerService, series_count, o.conditions);

  // ------------------------------------------------------------ compile
  auto t0 = Clock::now();
  std::string error;
  std::shared_ptr<rules::JitEngine> engine = rules::JitEngine::Create(&error);
  if (!engine) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  const double engine_ms = Ms(t0);
  std::vector<rules::Series> series;
  series.reserve(series_count);
  for (size_t s = 0; s < o.services; ++s)
    for (int m = 0; m < kPerService; ++m)
      series.push_back({Field(s, static_cast<Metric>(m)), kMetrics[m].unit});
  t0 = Clock::now();
  const std::vector<std::string> texts = MakeConditions(o.conditions, o.services, 7);
  Parsed parsed;
  double first_parse_ms = 0;  // includes the parser's one-time start-up
  for (size_t i = 0; i < texts.size(); ++i) {
    parsed.Add("c" + std::to_string(i), texts[i]);
    if (i == 0) first_parse_ms = Ms(t0);
  }
  const double parse_ms = Ms(t0);
  rules::RuleSetOptions check_only;
  check_only.backend = rules::Backend::Interpreter;
  t0 = Clock::now();
  {
    Diagnostics d;
    if (!rules::ConditionSet::Compile(series, parsed.conditions, d, &error, check_only)) {
      std::fprintf(stderr, "series: %s\n", error.c_str());
      return 1;
    }
  }
  const double check_ms = Ms(t0);
  rules::RuleSetOptions jit_options;
  jit_options.engine = engine;
  t0 = Clock::now();
  auto set = rules::ConditionSet::Compile(series, parsed.conditions, parsed.diags, &error, jit_options);
  const double compile_ms = Ms(t0);
  if (!set || !parsed.Check() || !set->jitted()) {
    std::fprintf(stderr, "compile failed: %s %s\n", error.c_str(), set ? set->jit_error().c_str() : "");
    return 1;
  }
  const rules::JitStats& js = set->jit_stats();
  std::printf(
      "compile: JIT engine %.1f ms; parse %zu conditions %.1f ms (the first %.1f ms); check alone "
      "(interpreter set) %.1f ms;\n"
      "  check + JIT %.1f ms (LLVM IR %.1f ms, machine code %.1f ms; %zu functions, %zu IR instructions)\n",
      engine_ms, texts.size(), parse_ms, first_parse_ms, check_ms, compile_ms, js.ir_ms, js.machine_code_ms,
      js.functions, js.ir_instructions);
  std::printf("  e.g. c1: %s\n       c5: %s\n\n", texts[1].c_str(),
              texts[std::min<size_t>(5, texts.size() - 1)].c_str());

  // ------------------------------------------------------------ the window
  metrics::Window window;
  Fleet fleet(o.services, 11);
  Snapshotter snapshotter(o.services);
  int64_t now = kStartMs;
  t0 = Clock::now();
  for (int i = 0; i < 40; ++i) {
    now += kIntervalMs;
    fleet.Scrape(window, now);
    window.Compact(now);
  }
  std::printf("window: %zu series, 40 scrapes (10 min) appended in %.0f ms\n\n", window.series_count(),
              Ms(t0));

  // ------------------------------------------------------------ (a) per interval
  std::vector<double> snapshot(series_count, NAN);
  std::vector<Verdict> vi(set->size()), vj(set->size());
  std::vector<int64_t> for_ms(set->size());
  for (size_t c = 0; c < set->size(); ++c) for_ms[c] = ForMs(c);
  rules::AlertTracker tracker(for_ms);
  std::vector<controller::AlertSet> alert_sets;
  alert_sets.reserve(set->size());
  for (size_t c = 0; c < set->size(); ++c) {
    controller::AlertRule rule;
    rule.name = "c" + std::to_string(c);
    rule.for_ms = for_ms[c];
    rule.severity = c % 4 == 0 ? "critical" : "warning";
    rule.labels = {{"team", "t" + std::to_string(c % 20)}};
    alert_sets.emplace_back(std::move(rule));
  }
  std::vector<controller::Autoscaler> scalers;
  controller::AutoscaleSpec fleet_spec;
  fleet_spec.min = 1;
  fleet_spec.max = 40;
  scalers.reserve(o.services);
  for (size_t s = 0; s < o.services; ++s) scalers.emplace_back(fleet_spec);

  std::vector<double> ingest_ms, snap_ms, interp_cold, jit_cold, interp_warm, jit_warm, tracker_ms, sets_ms,
      scale_ms, pass_cpu_ms, pass_jit_ms, pass_interp_ms;
  size_t verdicts[4] = {0, 0, 0, 0}, present_total = 0, transitions = 0, scale_changes = 0;
  std::vector<rules::AlertChange> changes;
  // The fleet's autoscalers, signals from the snapshot: requests per second
  // (target 100 per replica) and CPU (0.7 cores per replica).
  auto scale_fleet = [&](int64_t at) {
    for (size_t s = 0; s < o.services; ++s) {
      const int current = fleet.replicas(s);
      const double rps = snapshot[s * kPerService + kRequests], cpu = snapshot[s * kPerService + kCpu];
      controller::ScaleSignal signals[2] = {{"rps", rps / current, 100, true},
                                            {"cpu", cpu / current, 0.7, true}};
      controller::ScaleDecision d = scalers[s].Decide(current, signals, at);
      if (d.changed) {
        ++scale_changes;
        fleet.set_replicas(s, d.desired);
      }
    }
  };
  for (size_t k = 0; k < o.intervals; ++k) {
    now += kIntervalMs;
    t0 = Clock::now();
    fleet.Scrape(window, now);
    window.Compact(now);
    ingest_ms.push_back(Ms(t0));

    const double cpu0 = ThreadCpuMs();
    t0 = Clock::now();
    present_total += snapshotter.Compute(window, now, snapshot);
    snap_ms.push_back(Ms(t0));
    const double snap_cpu = ThreadCpuMs() - cpu0;
    // First call of each back end on this snapshot (what a 15 s controller
    // sees: caches cold), alternating which goes first.
    for (int side = 0; side < 2; ++side) {
      bool jit = (side == 0) == (k % 2 == 0);
      auto t1 = Clock::now();
      set->Evaluate(snapshot, jit ? vj : vi, jit ? rules::Backend::Jit : rules::Backend::Interpreter);
      (jit ? jit_cold : interp_cold).push_back(Ms(t1));
    }
    if (vi != vj) {
      std::fprintf(stderr, "MISMATCH between back ends at interval %zu\n", k);
      return 1;
    }
    double best_i = 1e300, best_j = 1e300;
    for (size_t r = 0; r < o.repeat; ++r) {
      auto t1 = Clock::now();
      set->Evaluate(snapshot, vi, rules::Backend::Interpreter);
      best_i = std::min(best_i, Ms(t1));
      t1 = Clock::now();
      set->Evaluate(snapshot, vj, rules::Backend::Jit);
      best_j = std::min(best_j, Ms(t1));
    }
    interp_warm.push_back(best_i);
    jit_warm.push_back(best_j);
    for (Verdict v : vj) ++verdicts[static_cast<int>(v)];
    const double cpu1 = ThreadCpuMs();
    auto t1 = Clock::now();
    changes.clear();
    tracker.Update(vj, now, &changes);
    transitions += changes.size();
    auto t2 = Clock::now();
    for (size_t c = 0; c < alert_sets.size(); ++c) alert_sets[c].Evaluate(vj[c] == Verdict::True, now);
    auto t3 = Clock::now();
    scale_fleet(now);
    auto t4 = Clock::now();
    const double cpu2 = ThreadCpuMs();
    tracker_ms.push_back(Ms(t1, t2));
    sets_ms.push_back(Ms(t2, t3));
    scale_ms.push_back(Ms(t3, t4));
    const double state = Ms(t1, t4);
    pass_jit_ms.push_back(snap_ms.back() + jit_cold.back() + state);
    pass_interp_ms.push_back(snap_ms.back() + interp_cold.back() + state);
    // CPU time: the snapshot and the state updates measured, the JIT's first call as its wall time.
    pass_cpu_ms.push_back(snap_cpu + jit_cold.back() + (cpu2 - cpu1));
  }

  size_t firing = 0;
  for (const controller::AlertSet& a : alert_sets)
    for (const controller::Alert& al : a.Alerts()) firing += al.phase == controller::AlertPhase::Firing;
  const double evaluated = static_cast<double>(o.intervals) * static_cast<double>(set->size());
  std::printf(
      "(a) %zu intervals of 15 s: %zu series read per snapshot on average (of %zu; silent services are "
      "missing)\n",
      o.intervals, present_total / o.intervals, series_count);
  std::printf(
      "    verdicts true %.1f%%, false %.1f%%, unknown %.1f%%, error %zu; %zu for-window transitions, "
      "%zu alerts firing at the end, %zu scaling changes\n\n",
      100.0 * verdicts[1] / evaluated, 100.0 * verdicts[0] / evaluated, 100.0 * verdicts[2] / evaluated,
      verdicts[3], transitions, firing, scale_changes);
  std::printf("  %-40s %9s %9s %9s %9s\n", "phase (ms per interval)", "median", "p90", "max", "mean");
  Row("scrape append + compact (not counted)", ingest_ms);
  Row("snapshot: 5 rate[1m] + 5 latest queries", snap_ms);
  Row("evaluate, interpreter (first call)", interp_cold);
  Row("evaluate, JIT (first call)", jit_cold);
  Row("evaluate, interpreter (best of --repeat)", interp_warm);
  Row("evaluate, JIT (best of --repeat)", jit_warm);
  Row("state: AlertTracker.Update", tracker_ms);
  Row("state: AlertSet.Evaluate x conditions", sets_ms);
  Row("state: Autoscaler.Decide x services", scale_ms);
  Row("pass with JIT (snapshot+eval+state)", pass_jit_ms);
  Row("pass with interpreter", pass_interp_ms);
  Row("pass with JIT, thread CPU time", pass_cpu_ms);
  const Stat pj = Summarize(pass_jit_ms), pi = Summarize(pass_interp_ms), pc = Summarize(pass_cpu_ms);
  const double interval = static_cast<double>(kIntervalMs);
  std::printf(
      "\n  one core at a 15 s interval: JIT %.3f%% (median; p90 %.3f%%, max %.3f%%), interpreter %.3f%%; "
      "by CPU time %.3f%%\n",
      100 * pj.median / interval, 100 * pj.p90 / interval, 100 * pj.max / interval,
      100 * pi.median / interval, 100 * pc.median / interval);
  std::printf(
      "  JIT vs interpreter, same snapshots: first call %.1fx (medians %.3f / %.3f ms), best of %zu %.1fx "
      "(%.3f / %.3f ms)\n\n",
      Summarize(interp_cold).median / Summarize(jit_cold).median, Summarize(interp_cold).median,
      Summarize(jit_cold).median, o.repeat, Summarize(interp_warm).median / Summarize(jit_warm).median,
      Summarize(interp_warm).median, Summarize(jit_warm).median);

  // ------------------------------------------------------------ (b) latency
  const size_t probe_index = *set->SeriesIndex(Field(0, kQueue));
  controller::Autoscaler probe(ProbeSpec());
  int probe_current = 2;
  const metrics::Selector probe_selector =
      Sel(kMetrics[kQueue].metric, {{"service", metrics::MatchOp::Equal, ServiceName(0)}});
  size_t failures = 0;
  // One trial: `value` appended at `at`; true when the alert and the count changed.
  auto trial = [&](bool full, double value, int64_t at, double* to_alert, double* to_scale) {
    const controller::AlertPhase before =
        alert_sets[0].Alerts().empty() ? controller::AlertPhase::Resolved : alert_sets[0].Alerts()[0].phase;
    auto t1 = Clock::now();
    window.Append(kMetrics[kQueue].metric, fleet.labels(0), at, value);
    changes.clear();
    if (full) {
      snapshotter.Compute(window, at, snapshot);
      set->Evaluate(snapshot, vj, rules::Backend::Jit);
      tracker.Update(vj, at, &changes);
      for (size_t c = 0; c < alert_sets.size(); ++c) alert_sets[c].Evaluate(vj[c] == Verdict::True, at);
    } else {
      metrics::InstantVector v = window.Latest(probe_selector, at);
      snapshot[probe_index] = v.empty() ? NAN : v[0].value * kMetrics[kQueue].scale;
      set->Evaluate(snapshot, vj, rules::Backend::Jit);
      tracker.Update(vj, at, &changes);
      alert_sets[0].Evaluate(vj[0] == Verdict::True, at);
    }
    auto t2 = Clock::now();
    controller::ScaleSignal signal{"queue", snapshot[probe_index] / probe_current, 10, true};
    controller::ScaleDecision d = probe.Decide(probe_current, {&signal, 1}, at);
    auto t3 = Clock::now();
    *to_alert = Ms(t1, t2);
    *to_scale = Ms(t1, t3);
    bool tracked = std::any_of(changes.begin(), changes.end(),
                               [](const rules::AlertChange& c) { return c.condition == 0; });
    const controller::AlertPhase after =
        alert_sets[0].Alerts().empty() ? controller::AlertPhase::Resolved : alert_sets[0].Alerts()[0].phase;
    const bool ok = d.changed && tracked && after != before;
    probe_current = d.desired;
    return ok;
  };
  std::vector<double> full_alert, full_scale, quick_alert, quick_scale;
  // The probe's queue depth: 400 and 20 by turns across both kinds of trial.
  bool high = false;
  auto next_value = [&high] {
    high = !high;
    return high ? 400.0 : 20.0;
  };
  for (long k = -1; k < static_cast<long>(o.trials); ++k) {  // k = -1: settles the probe at "low"
    now += kIntervalMs;
    fleet.Scrape(window, now, 0);
    window.Compact(now);
    double a = 0, s = 0;
    const bool ok = trial(true, k < 0 ? 20 : next_value(), now, &a, &s);
    scale_fleet(now);  // the rest of the pass: the fleet's autoscalers
    if (k < 0) continue;
    failures += !ok;
    full_alert.push_back(a);
    full_scale.push_back(s);
  }
  for (size_t k = 0; k < o.targeted_trials; ++k) {
    now += kIntervalMs;
    double a = 0, s = 0;
    const bool ok = trial(false, next_value(), now, &a, &s);
    failures += !ok;
    quick_alert.push_back(a);
    quick_scale.push_back(s);
  }
  std::printf(
      "(b) decision latency, append to the window -> decision, in-process (ms; the wait for the next tick "
      "not included)\n\n");
  std::printf("  %-58s %9s %9s %9s\n", "", "median", "p99", "max");
  auto lat = [](const char* name, const std::vector<double>& v) {
    Stat s = Summarize(v);
    std::printf("  %-58s %9.3f %9.3f %9.3f\n", name, s.median, s.p99, s.max);
  };
  std::printf("  full pass (%zu trials: snapshot of all series, all conditions, all alerts)\n", o.trials);
  lat("  -> alert state change (AlertTracker and AlertSet)", full_alert);
  lat("  -> autoscaler's new desired count", full_scale);
  std::printf("  targeted (%zu trials: only the changed series queried)\n", o.targeted_trials);
  lat("  -> alert state change (AlertTracker and AlertSet)", quick_alert);
  lat("  -> autoscaler's new desired count", quick_scale);
  if (failures) {
    std::fprintf(stderr, "FAILED: %zu trials did not change the alert and the count\n", failures);
    return 1;
  }
  std::printf(
      "\n  every trial changed the alert's state and the desired count (probe ended at %d replicas); window: "
      "%llu evicted, %llu out of order\n",
      probe_current, static_cast<unsigned long long>(window.evicted()),
      static_cast<unsigned long long>(window.out_of_order()));
  return 0;
}
