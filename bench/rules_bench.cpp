// plinth-rules-bench: throughput of the rule JIT against the interpreter, and
// JIT compile latency (docs/rules.md, "Performance"; figures in the closing
// note of issue 4 and docs/benchmarks.md).
//
//   plinth-rules-bench [--records N] [--conditions N] [--evaluations N]
//                      [--only compile|policies|conditions]
//
// (a) N resource records (default 1M) x 10 policies, (b) N conditions
// (default 10k) x N evaluations (default 1k) over snapshots of 200 series,
// (c) compile latency of a 100-rule policy set. Inputs are generated from a
// fixed seed and include unknown and null values. Every run also checks that
// both back ends gave the same verdicts.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "compiler/rules/condition.h"
#include "compiler/rules/rules.h"
#include "compiler/syntax/parse.h"

using namespace plinth;
using namespace plinth::rules;

namespace {

using Clock = std::chrono::steady_clock;
double Ms(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

RuleSchema PolicySchema() {
  RuleSchema s;
  s.AddScalar("self.name", ScalarType::String);
  s.AddScalar("self.encryption", ScalarType::String);
  s.AddScalar("self.region", ScalarType::String);
  s.AddScalar("self.capacity", ScalarType::Size);
  s.AddScalar("self.replicas", ScalarType::Number);
  s.AddScalar("self.gpus", ScalarType::Number);
  s.AddScalar("self.retention", ScalarType::Duration);
  s.AddScalar("self.usage", ScalarType::Percent);
  s.AddScalar("self.public", ScalarType::Bool);
  s.AddScalar("self.versioning", ScalarType::Bool);
  s.AddList("self.tags", ScalarType::String);
  s.AddObjectList("self.grants", {{"access", ScalarType::String}, {"principal", ScalarType::String}});
  return s;
}

const std::vector<std::string>& Policies() {
  static const std::vector<std::string> p = {
      "self.encryption != \"none\"",
      "!self.public || self.encryption == \"aes256\"",
      "self.capacity <= 10TiB",
      "self.replicas >= 2 || startswith(self.name, \"tmp-\")",
      "alltrue([for g in self.grants : g.access != \"write\" || g.principal != \"*\"])",
      "contains([\"eu-west\", \"eu-central\", \"us-east\"], self.region)",
      "self.gpus <= 16",
      "self.retention >= 7d ? true : contains(self.tags, \"ephemeral\")",
      "self.usage < 90% && self.capacity * self.usage < 9TiB",
      "length(self.tags) > 0 && self.versioning",
  };
  return p;
}

// Fills `batch` with `rows` records: ~3% unknown and ~2% null values.
void FillRecords(RecordBatch& batch, size_t rows, uint64_t seed) {
  std::mt19937_64 rng(seed);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const RuleSchema& s = batch.schema();
  auto id = [&](const char* p) { return *s.Find(p); };
  FieldId name = id("self.name"), enc = id("self.encryption"), region = id("self.region"), cap = id("self.capacity"),
          replicas = id("self.replicas"), gpus = id("self.gpus"), retention = id("self.retention"),
          usage = id("self.usage"), pub = id("self.public"), ver = id("self.versioning"), tags = id("self.tags"),
          grants = id("self.grants");
  const char* names[] = {"logs-1", "tmp-scratch", "data-lake", "models", "tmp-2", "backups"};
  const char* encs[] = {"aes256", "aes256", "kms", "none"};
  const char* regions[] = {"eu-west", "eu-central", "us-east", "ap-south"};
  const char* tag_names[] = {"prod", "ephemeral", "team-a", "pii"};
  const char* access[] = {"read", "list", "write"};
  const char* principals[] = {"alice", "*", "ci"};
  Cell c_name[6], c_enc[4], c_region[4], c_tag[4], c_access[3], c_principal[3];
  for (int i = 0; i < 6; ++i) c_name[i] = batch.String(names[i]);
  for (int i = 0; i < 4; ++i) c_enc[i] = batch.String(encs[i]);
  for (int i = 0; i < 4; ++i) c_region[i] = batch.String(regions[i]);
  for (int i = 0; i < 4; ++i) c_tag[i] = batch.String(tag_names[i]);
  for (int i = 0; i < 3; ++i) c_access[i] = batch.String(access[i]);
  for (int i = 0; i < 3; ++i) c_principal[i] = batch.String(principals[i]);
  auto maybe = [&](Cell c) {
    int k = pick(100);
    if (k < 3) return Cell::Unknown();
    if (k < 5) return Cell::Null();
    return c;
  };
  batch.Reserve(rows);
  for (size_t r = 0; r < rows; ++r) {
    size_t row = batch.AddRow();
    batch.Set(row, name, maybe(c_name[pick(6)]));
    batch.Set(row, enc, maybe(c_enc[pick(4)]));
    batch.Set(row, region, maybe(c_region[pick(4)]));
    batch.Set(row, cap, maybe(Cell::Number(std::ldexp(1.0, 30 + pick(15)))));
    batch.Set(row, replicas, maybe(Cell::Number(pick(5))));
    batch.Set(row, gpus, maybe(Cell::Number(pick(24))));
    batch.Set(row, retention, maybe(Cell::Number(86'400'000.0 * pick(30))));
    batch.Set(row, usage, maybe(Cell::Number(pick(101))));
    batch.Set(row, pub, maybe(Cell::Bool(pick(4) == 0)));
    batch.Set(row, ver, maybe(Cell::Bool(pick(3) != 0)));
    int nt = pick(4);
    if (pick(50) == 0) batch.SetListState(tags, kUnknown);
    else {
      batch.SetListState(tags, kKnown);
      for (int i = 0; i < nt; ++i) batch.AppendElement(tags, c_tag[pick(4)]);
    }
    int ng = pick(4);
    batch.SetListState(grants, kKnown);
    for (int i = 0; i < ng; ++i) {
      Cell attrs[2] = {maybe(c_access[pick(3)]), c_principal[pick(3)]};
      batch.AppendObject(grants, attrs);
    }
  }
}

struct Parsed {
  SourceManager sources;
  Diagnostics diags;
  std::vector<ast::ExprPtr> exprs;
  std::vector<RuleSource> rules;
  void Add(const std::string& name, const std::string& text) {
    exprs.push_back(ParseExpression(sources.Add(name, text), diags));
    rules.push_back({name, exprs.back().get()});
  }
  bool Check() {
    if (!diags.has_errors()) return true;
    std::fputs(RenderText(diags.Sorted(sources), sources, {}).c_str(), stderr);
    return false;
  }
};

size_t Arg(int argc, char** argv, const char* name, size_t def) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::strtoull(argv[i + 1], nullptr, 10);
  }
  return def;
}

int PolicyBench(size_t rows, const std::shared_ptr<JitEngine>& engine) {
  Parsed parsed;
  for (size_t i = 0; i < Policies().size(); ++i) parsed.Add("policy" + std::to_string(i + 1), Policies()[i]);
  RuleSetOptions options;
  options.engine = engine;
  auto set = RuleSet::Compile(PolicySchema(), parsed.rules, parsed.diags, options);
  if (!parsed.Check() || !set->jitted()) {
    std::fprintf(stderr, "compile failed: %s\n", set->jit_error().c_str());
    return 1;
  }
  auto t0 = Clock::now();
  RecordBatch batch = set->NewBatch();
  FillRecords(batch, rows, 1);
  std::printf("(a) %zu records x %zu policies (records generated in %.0f ms)\n\n", rows, set->size(), Ms(t0));
  // Per policy: a one-rule set each, so the table shows where the JIT gains.
  std::printf("  %-8s %14s %14s %8s %9s %10s   %s\n", "policy", "interp ms", "jit ms", "ratio", "IR instr", "compile ms",
              "verdicts (false/true/unknown/error)");
  std::vector<Verdict> a(rows), b(rows);
  for (size_t r = 0; r < set->size(); ++r) {
    RuleSetOptions one_options;
    one_options.engine = engine;
    one_options.strings = set->strings();
    Diagnostics d;
    auto one = RuleSet::Compile(PolicySchema(), {&parsed.rules[r], 1}, d, one_options);
    double ti = 1e300, tj = 1e300;
    for (int rep = 0; rep < 3; ++rep) {
      t0 = Clock::now();
      one->EvaluateAll(batch, a, Backend::Interpreter);
      ti = std::min(ti, Ms(t0));
      t0 = Clock::now();
      one->EvaluateAll(batch, b, Backend::Jit);
      tj = std::min(tj, Ms(t0));
    }
    if (a != b) {
      std::fprintf(stderr, "MISMATCH between back ends on policy %zu\n", r + 1);
      return 1;
    }
    size_t counts[4] = {0, 0, 0, 0};
    for (Verdict v : a) ++counts[static_cast<int>(v)];
    const JitStats& js = one->jit_stats();
    std::printf("  %-8zu %14.1f %14.1f %7.1fx %9zu %10.1f   %zu/%zu/%zu/%zu\n", r + 1, ti, tj, ti / tj, js.ir_instructions,
                js.ir_ms + js.machine_code_ms, counts[0], counts[1],
                counts[2], counts[3]);
  }
  // All 10 as one set: the JIT evaluates them in one pass over the records.
  std::vector<Verdict> all_a(rows * set->size()), all_b(rows * set->size());
  double total_i = 1e300, total_j = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    t0 = Clock::now();
    set->EvaluateAll(batch, all_a, Backend::Interpreter);
    total_i = std::min(total_i, Ms(t0));
    t0 = Clock::now();
    set->EvaluateAll(batch, all_b, Backend::Jit);
    total_j = std::min(total_j, Ms(t0));
  }
  if (all_a != all_b) {
    std::fprintf(stderr, "MISMATCH between back ends on the policy set\n");
    return 1;
  }
  double evals = static_cast<double>(rows) * static_cast<double>(set->size());
  std::printf("  %-8s %14.1f %14.1f %7.1fx   (one set, one pass)\n", "all 10", total_i, total_j, total_i / total_j);
  std::printf("\n  interpreter: %.1f M record-policies/s (%.2f M records/s through all 10)\n", evals / total_i / 1e3,
              static_cast<double>(rows) / total_i / 1e3);
  std::printf("  jit:         %.1f M record-policies/s (%.2f M records/s through all 10)\n", evals / total_j / 1e3,
              static_cast<double>(rows) / total_j / 1e3);
  std::printf("  jit compile of the 10 policies: %.1f ms\n\n",
              set->jit_stats().ir_ms + set->jit_stats().machine_code_ms);
  return 0;
}

int ConditionBench(size_t conditions, size_t evaluations, const std::shared_ptr<JitEngine>& engine) {
  constexpr size_t kSeries = 200;
  std::vector<Series> series;
  for (size_t i = 0; i < kSeries; ++i) {
    ScalarType unit = i % 4 == 0 ? ScalarType::Duration : i % 4 == 1 ? ScalarType::Size : ScalarType::Number;
    series.push_back({"m" + std::to_string(i), unit});
  }
  std::mt19937_64 rng(5);
  auto pick = [&](size_t n) { return static_cast<size_t>(std::uniform_int_distribution<uint64_t>(0, n - 1)(rng)); };
  // A series index with the wanted unit (i % 4 as above).
  auto of = [&](int unit) { return "m" + std::to_string(pick(kSeries / 4) * 4 + static_cast<size_t>(unit)); };
  Parsed parsed;
  for (size_t i = 0; i < conditions; ++i) {
    std::string t;
    switch (i % 5) {
      case 0: t = of(2) + " / " + of(3) + " > " + std::to_string(pick(200)); break;
      case 1: t = of(2) + " > " + std::to_string(pick(10)) + "%"; break;
      case 2: t = of(0) + " > " + std::to_string(100 + pick(400)) + "ms || " + of(1) + " > 1GiB"; break;
      case 3: t = "(" + of(2) + " + " + of(3) + ") * 2 >= " + std::to_string(pick(500)) + " && " + of(0) + " < 1m"; break;
      default: t = "max(" + of(2) + ", " + of(3) + ") - min(" + of(2) + ", " + of(3) + ") > " + std::to_string(pick(50)); break;
    }
    parsed.Add("c" + std::to_string(i), t);
  }
  std::vector<ConditionSource> src;
  for (const RuleSource& r : parsed.rules) src.push_back({r.name, r.expr});
  RuleSetOptions options;
  options.engine = engine;
  std::string error;
  auto t0 = Clock::now();
  auto set = ConditionSet::Compile(series, src, parsed.diags, &error, options);
  double compile = Ms(t0);
  if (!set || !parsed.Check() || !set->jitted()) {
    std::fprintf(stderr, "compile failed: %s %s\n", error.c_str(), set ? set->jit_error().c_str() : "");
    return 1;
  }
  std::vector<std::vector<double>> snapshots(evaluations, std::vector<double>(kSeries));
  for (auto& s : snapshots) {
    for (size_t i = 0; i < kSeries; ++i) {
      s[i] = pick(100) == 0 ? NAN : static_cast<double>(pick(1000)) * (i % 4 == 0 ? 1.0 : i % 4 == 1 ? 4e6 : 0.01);
    }
  }
  std::vector<Verdict> a(conditions), b(conditions);
  std::vector<std::vector<Verdict>> keep(2, std::vector<Verdict>(conditions));
  double ti = 0, tj = 0;
  size_t differ = 0;
  for (size_t e = 0; e < evaluations; ++e) {
    auto t1 = Clock::now();
    set->Evaluate(snapshots[e], a, Backend::Interpreter);
    ti += Ms(t1);
    t1 = Clock::now();
    set->Evaluate(snapshots[e], b, Backend::Jit);
    tj += Ms(t1);
    if (a != b) ++differ;
  }
  if (differ) {
    std::fprintf(stderr, "MISMATCH between back ends on %zu snapshots\n", differ);
    return 1;
  }
  AlertTracker alerts(std::vector<int64_t>(conditions, 60'000));
  t0 = Clock::now();
  for (size_t e = 0; e < evaluations; ++e) alerts.Update(b, static_cast<int64_t>(e) * 15'000);
  double tracker = Ms(t0);
  double evals = static_cast<double>(conditions) * static_cast<double>(evaluations);
  std::printf("(b) %zu conditions x %zu evaluations (200 series, ~1%% missing)\n\n", conditions, evaluations);
  std::printf("  %-12s %12s %16s %18s\n", "back end", "total ms", "per snapshot us", "M conditions/s");
  std::printf("  %-12s %12.1f %16.1f %18.1f\n", "interpreter", ti, ti * 1e3 / static_cast<double>(evaluations), evals / ti / 1e3);
  std::printf("  %-12s %12.1f %16.1f %18.1f\n", "jit", tj, tj * 1e3 / static_cast<double>(evaluations), evals / tj / 1e3);
  std::printf("  ratio %.1fx; JIT compile of %zu conditions: %.0f ms (IR %.0f, machine code %.0f); "
              "for-window tracking: %.1f us per snapshot\n\n",
              ti / tj, conditions, compile, set->jit_stats().ir_ms,
              set->jit_stats().machine_code_ms, tracker * 1e3 / static_cast<double>(evaluations));
  return 0;
}

// 100 rules from the 10 policies. `distinct`: every rule differs from every
// other (a constant of each varies with its number); otherwise only three of
// the ten vary, and the other 70 rules are 7 rules repeated ten times, which
// common-subexpression elimination in the code generator compiles once.
std::string CompileBenchRule(size_t i, bool distinct) {
  std::string t = Policies()[i % 10];
  std::string n = std::to_string(i);
  if (i % 10 == 2) t = "self.capacity <= " + std::to_string(1 + i) + "TiB";
  if (i % 10 == 6) t = "self.gpus <= " + n;
  if (i % 10 == 0) t = "self.encryption != \"none-" + n + "\"";
  if (!distinct) return t;
  switch (i % 10) {
    case 1: return "!self.public || self.encryption == \"aes256-" + n + "\"";
    case 3: return "self.replicas >= " + std::to_string(i % 5) + " || startswith(self.name, \"tmp-" + n + "\")";
    case 4: return "alltrue([for g in self.grants : g.access != \"write-" + n + "\" || g.principal != \"*\"])";
    case 5: return "contains([\"eu-west\", \"eu-central\", \"us-east-" + n + "\"], self.region)";
    case 7: return "self.retention >= " + n + "d ? true : contains(self.tags, \"ephemeral-" + n + "\")";
    case 8: return "self.usage < " + n + "% && self.capacity * self.usage < 9TiB";
    case 9: return "length(self.tags) > " + std::to_string(i % 4) + " && self.versioning";
    default: return t;
  }
}

int CompileBench(const std::shared_ptr<JitEngine>& engine, bool distinct) {
  Parsed parsed;
  for (size_t i = 0; i < 100; ++i) parsed.Add("rule" + std::to_string(i), CompileBenchRule(i, distinct));
  if (!parsed.Check()) return 1;
  std::vector<double> total, ir, mc;
  JitStats stats;
  for (int rep = 0; rep < 7; ++rep) {
    RuleSetOptions options;
    options.engine = engine;
    Diagnostics diags;
    auto t0 = Clock::now();
    auto set = RuleSet::Compile(PolicySchema(), parsed.rules, diags, options);
    total.push_back(Ms(t0));
    if (!set->jitted()) {
      std::fprintf(stderr, "compile failed: %s\n", set->jit_error().c_str());
      return 1;
    }
    stats = set->jit_stats();
    ir.push_back(set->jit_stats().ir_ms);
    mc.push_back(set->jit_stats().machine_code_ms);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("(c) JIT compile latency, 100-rule policy set%s (median of 7, warm engine, no cache)\n\n",
              distinct ? ", all rules distinct" : "");
  std::printf("  total %.1f ms = check + IR %.1f ms + machine code %.1f ms (min total %.1f ms)\n", median(total),
              median(ir), median(mc), *std::min_element(total.begin(), total.end()));
  std::printf("  %zu LLVM IR instructions in %zu functions\n", stats.ir_instructions, stats.functions);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  size_t records = Arg(argc, argv, "--records", 1'000'000);
  size_t conditions = Arg(argc, argv, "--conditions", 10'000);
  size_t evaluations = Arg(argc, argv, "--evaluations", 1'000);
  auto t0 = Clock::now();
  std::string error;
  std::shared_ptr<JitEngine> engine = JitEngine::Create(&error);
  if (!engine) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::printf("plinth-rules-bench: JIT engine created in %.1f ms\n\n", Ms(t0));
  std::string only;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  if (only.empty() || only == "compile") {
    if (int rc = CompileBench(engine, false)) return rc;
    std::printf("\n");
    if (int rc = CompileBench(engine, true)) return rc;
    std::printf("\n");
  }
  if (only.empty() || only == "policies") {
    if (int rc = PolicyBench(records, engine)) return rc;
  }
  if (only.empty() || only == "conditions") return ConditionBench(conditions, evaluations, engine);
  return 0;
}
