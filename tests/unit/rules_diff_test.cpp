// Differential test: the JIT against the interpreter.
//
// Generates thousands of random, well-typed rule expressions (as source text,
// so the parser and checker are exercised too) and random records that
// include unknown and null values, null and unknown lists and unknown list
// elements, then requires identical verdicts from both back ends. Seeded, so
// a failure reproduces; the first mismatches are printed with their inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "compiler/rules/condition.h"
#include "compiler/rules/rules.h"
#include "compiler/syntax/parse.h"

namespace plinth::rules {
namespace {

enum class T { Bool, Number, Duration, Size, Percent, String };

struct LoopVar {
  std::string name;
  std::string list;  // the field's short name: nums, strs, bools, sizes, items
  bool index = false;
};

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  std::string Rule() { return Gen(T::Bool, 3); }

  // Scalar fields and their types.
  static const std::vector<std::pair<std::string, T>>& Scalars() {
    static const std::vector<std::pair<std::string, T>> s = {
        {"n1", T::Number}, {"n2", T::Number}, {"d1", T::Duration}, {"z1", T::Size},  {"p1", T::Percent},
        {"b1", T::Bool},   {"b2", T::Bool},   {"s1", T::String},   {"s2", T::String}};
    return s;
  }

 private:
  int Pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename V>
  const V& One(const std::vector<V>& v) {
    return v[static_cast<size_t>(Pick(static_cast<int>(v.size())))];
  }
  static std::string P(const std::string& s) { return "(" + s + ")"; }

  std::string Literal(T t) {
    switch (t) {
      case T::Bool: return Chance(0.5) ? "true" : "false";
      case T::Number: return One<std::string>({"0", "1", "2", "3", "0.5", "100", "(-1)", "0.8"});
      case T::Duration: return One<std::string>({"0s", "1s", "30s", "1m", "1500ms"});
      case T::Size: return One<std::string>({"0B", "1KiB", "512B", "2MiB", "1024B"});
      case T::Percent: return One<std::string>({"0%", "5%", "50%", "80%", "100%"});
      case T::String: return One<std::string>({"\"a\"", "\"ab\"", "\"b\"", "\"prod\"", "\"x-1\"", "\"\""});
    }
    return "0";
  }

  // A term of type t from the fields or the loop variables in scope; empty when none.
  std::string Term(T t) {
    std::vector<std::string> c;
    for (const auto& [name, ty] : Scalars()) {
      if (ty == t) c.push_back("r." + name);
    }
    for (const LoopVar& v : scope_) {
      if (v.index) {
        if (t == T::Number) c.push_back(v.name);
        continue;
      }
      if (v.list == "items") {
        if (t == T::String) c.push_back(v.name + ".name");
        if (t == T::Number) c.push_back(v.name + ".n");
        if (t == T::Bool) c.push_back(v.name + ".on");
        if (t == T::Duration) c.push_back(v.name + ".d");
      } else if (ElementOf(v.list) == t) {
        c.push_back(v.name);
      }
    }
    if (c.empty()) return "";
    return One(c);
  }

  static T ElementOf(const std::string& list) {
    if (list == "nums") return T::Number;
    if (list == "strs") return T::String;
    if (list == "bools") return T::Bool;
    return T::Size;  // sizes
  }
  static std::vector<std::string> ListsOf(T t) {
    switch (t) {
      case T::Number: return {"nums"};
      case T::String: return {"strs"};
      case T::Bool: return {"bools"};
      case T::Size: return {"sizes"};
      default: return {};
    }
  }

  // A list argument whose elements have type t: a field, a for expression
  // (over any list, with an optional filter), a splat, or a literal.
  // `nonempty`: a literal gets at least one item (sum([]) does not type-check).
  std::string List(T t, int depth, bool nonempty = false) {
    int k = Pick(4);
    std::vector<std::string> fields = ListsOf(t);
    if (k == 0 && !fields.empty()) return "r." + One(fields);
    if (k == 1) {
      std::vector<std::string> items;
      int n = Pick(3) + (nonempty ? 1 : 0);
      for (int i = 0; i < n; ++i) items.push_back(Gen(t, depth - 1));
      std::string s = "[";
      for (size_t i = 0; i < items.size(); ++i) s += (i ? ", " : "") + items[i];
      return s + "]";
    }
    if (k == 2 && t != T::Percent) {
      std::vector<std::string> attrs;
      if (t == T::String) attrs.push_back("name");
      if (t == T::Number) attrs.push_back("n");
      if (t == T::Bool) attrs.push_back("on");
      if (t == T::Duration) attrs.push_back("d");
      if (!attrs.empty()) return "r.items[*]." + One(attrs);
    }
    std::string list = One<std::string>({"nums", "strs", "bools", "sizes", "items", "items"});
    std::string var = "v" + std::to_string(next_var_++);
    std::string idx = Chance(0.3) ? "i" + std::to_string(next_var_++) : "";
    size_t mark = scope_.size();
    if (!idx.empty()) scope_.push_back({idx, list, true});
    scope_.push_back({var, list, false});
    std::string value = Gen(t, depth - 1);
    std::string cond = Chance(0.4) ? " if " + Gen(T::Bool, depth - 1) : "";
    scope_.resize(mark);
    return "[for " + (idx.empty() ? "" : idx + ", ") + var + " in r." + list + " : " + value + cond + "]";
  }

  std::string Gen(T t, int depth) {
    if (depth <= 0 || Chance(0.2)) {
      std::string term = Term(t);
      if (!term.empty() && Chance(0.75)) return term;
      return Literal(t);
    }
    switch (t) {
      case T::Bool: return GenBool(depth);
      case T::String: {
        if (Chance(0.3)) return P(Gen(T::Bool, depth - 1) + " ? " + Gen(T::String, depth - 1) + " : " + Gen(T::String, depth - 1));
        std::string term = Term(T::String);
        return term.empty() ? Literal(T::String) : term;
      }
      default: return GenNumeric(t, depth);
    }
  }

  std::string GenBool(int depth) {
    switch (Pick(14)) {
      case 0:
      case 1: {  // ordering
        T t = One<T>({T::Number, T::Duration, T::Size, T::Percent, T::Number});
        std::string op = One<std::string>({"<", "<=", ">", ">="});
        if (t == T::Percent && Chance(0.3)) return P(Gen(T::Percent, depth - 1) + " " + op + " " + Gen(T::Number, depth - 1));
        return P(Gen(t, depth - 1) + " " + op + " " + Gen(t, depth - 1));
      }
      case 2: {  // equality, including null
        T t = One<T>({T::Number, T::String, T::Bool, T::Duration, T::Size, T::Percent, T::String});
        std::string op = Chance(0.5) ? "==" : "!=";
        if (Chance(0.2)) return P(Gen(t, depth - 1) + " " + op + " null");
        if (t == T::Percent && Chance(0.3)) return P(Gen(T::Number, depth - 1) + " " + op + " " + Gen(T::Percent, depth - 1));
        return P(Gen(t, depth - 1) + " " + op + " " + Gen(t, depth - 1));
      }
      case 3: return P(Gen(T::Bool, depth - 1) + " && " + Gen(T::Bool, depth - 1));
      case 4: return P(Gen(T::Bool, depth - 1) + " || " + Gen(T::Bool, depth - 1));
      case 5: return "!" + P(Gen(T::Bool, depth - 1));
      case 6: return P(Gen(T::Bool, depth - 1) + " ? " + Gen(T::Bool, depth - 1) + " : " + Gen(T::Bool, depth - 1));
      case 7: {
        std::string fn = One<std::string>({"startswith", "endswith", "strcontains"});
        return fn + "(" + Gen(T::String, depth - 1) + ", " + Gen(T::String, depth - 1) + ")";
      }
      case 8: return std::string(Chance(0.5) ? "alltrue" : "anytrue") + "(" + List(T::Bool, depth - 1) + ")";
      case 9: {
        T t = One<T>({T::String, T::Number, T::Bool, T::Size});
        std::string needle = Chance(0.1) ? "null" : Gen(t, depth - 1);
        return "contains(" + List(t, depth - 1) + ", " + needle + ")";
      }
      case 10: {
        // RE2 syntax (flags, \d, named groups, empty matches) and patterns that
        // backtracking engines take exponential time on.
        std::string pat = One<std::string>({"^[a-z]+$", "[0-9]", "^p", "b$", "x-?[0-9]", "(?i)^P", "\\\\d",
                                            "(?P<n>[a-z])b", "a*", "(a*)*c", "(a|a)*b"});
        return P("length(regexall(\"" + pat + "\", " + Gen(T::String, depth - 1) + ")) > " + One<std::string>({"0", "1"}));
      }
      default: {
        std::string term = Term(T::Bool);
        return term.empty() ? Literal(T::Bool) : term;
      }
    }
  }

  std::string GenNumeric(T t, int depth) {
    auto same = [&](const char* op) { return P(Gen(t, depth - 1) + " " + op + " " + Gen(t, depth - 1)); };
    switch (Pick(11)) {
      case 0: return same("+");
      case 1: return same("-");
      case 2:
        if (t == T::Number) return same("*");
        if (t == T::Percent && Chance(0.5)) return same("*");
        if (t != T::Percent && Chance(0.5)) return P(Gen(T::Percent, depth - 1) + " * " + Gen(t, depth - 1));
        return P(Gen(t, depth - 1) + " * " + Gen(T::Number, depth - 1));
      case 3:
        if (t == T::Number) {
          T u = One<T>({T::Number, T::Duration, T::Size, T::Percent});
          return P(Gen(u, depth - 1) + " / " + Gen(u, depth - 1));
        }
        return P(Gen(t, depth - 1) + " / " + Gen(T::Number, depth - 1));
      case 4: return same("%");
      case 5: return "-" + P(Gen(t, depth - 1));
      case 6: return P(Gen(T::Bool, depth - 1) + " ? " + Gen(t, depth - 1) + " : " + Gen(t, depth - 1));
      case 7: {
        std::string fn = Chance(0.5) ? "min" : "max";
        int n = 1 + Pick(3);
        std::string s = fn + "(";
        for (int i = 0; i < n; ++i) s += (i ? ", " : "") + Gen(t, depth - 1);
        return s + ")";
      }
      case 8:
        if (t == T::Number) {
          if (Chance(0.5)) return "length(" + Gen(T::String, depth - 1) + ")";
          return "length(" + List(One<T>({T::String, T::Number, T::Bool}), depth - 1) + ")";
        }
        [[fallthrough]];
      case 9:
        if (t == T::Number || t == T::Size || t == T::Duration) return "sum(" + List(t, depth - 1, true) + ")";
        [[fallthrough]];
      default: {
        std::string term = Term(t);
        return term.empty() ? Literal(t) : term;
      }
    }
  }

  std::mt19937_64 rng_;
  std::vector<LoopVar> scope_;
  int next_var_ = 0;
};

RuleSchema DiffSchema() {
  RuleSchema s;
  for (const auto& [name, t] : Generator::Scalars()) {
    ScalarType st = t == T::Bool       ? ScalarType::Bool
                    : t == T::Number   ? ScalarType::Number
                    : t == T::Duration ? ScalarType::Duration
                    : t == T::Size     ? ScalarType::Size
                    : t == T::Percent  ? ScalarType::Percent
                                       : ScalarType::String;
    s.AddScalar("r." + name, st);
  }
  s.AddList("r.nums", ScalarType::Number);
  s.AddList("r.strs", ScalarType::String);
  s.AddList("r.bools", ScalarType::Bool);
  s.AddList("r.sizes", ScalarType::Size);
  s.AddObjectList("r.items", {{"name", ScalarType::String},
                              {"n", ScalarType::Number},
                              {"on", ScalarType::Bool},
                              {"d", ScalarType::Duration}});
  return s;
}

// Random records: ~10% null and ~10% unknown values, lists of 0-4 elements.
void AddRandomRecords(RecordBatch& batch, size_t rows, std::mt19937_64& rng, std::vector<std::string>* shown) {
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };
  const RuleSchema& schema = batch.schema();
  auto cell = [&](ScalarType t, std::string& text) -> Cell {
    int k = pick(10);
    if (k == 0) {
      text += "null";
      return Cell::Null();
    }
    if (k == 1) {
      text += "unknown";
      return Cell::Unknown();
    }
    static const double numbers[] = {0, 1, 2, 3, 0.5, 100, -1, 0.8};
    static const double durations[] = {0, 1000, 30000, 60000, 1500};
    static const double sizes[] = {0, 1024, 512, 2097152, 3};
    static const double percents[] = {0, 5, 50, 80, 100};
    static const char* strings[] = {"a", "ab", "b", "prod", "x-1", "", "pb", "zz9", "Prod", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab"};
    switch (t) {
      case ScalarType::Bool: {
        bool b = pick(2);
        text += b ? "true" : "false";
        return Cell::Bool(b);
      }
      case ScalarType::Number: {
        double v = numbers[pick(8)];
        text += std::to_string(v);
        return Cell::Number(v);
      }
      case ScalarType::Duration: {
        double v = durations[pick(5)];
        text += std::to_string(v) + "ms";
        return Cell::Number(v);
      }
      case ScalarType::Size: {
        double v = sizes[pick(5)];
        text += std::to_string(v) + "B";
        return Cell::Number(v);
      }
      case ScalarType::Percent: {
        double v = percents[pick(5)];
        text += std::to_string(v) + "%";
        return Cell::Number(v);
      }
      case ScalarType::String: {
        const char* s = strings[pick(10)];
        text += std::string("\"") + s + "\"";
        return batch.String(s);
      }
    }
    return Cell::Null();
  };
  for (size_t r = 0; r < rows; ++r) {
    size_t row = batch.AddRow();
    std::string text;
    for (size_t f = 0; f < schema.size(); ++f) {
      const FieldSpec& spec = schema.fields()[f];
      FieldId id{static_cast<uint32_t>(f)};
      text += spec.path + "=";
      if (spec.shape == FieldShape::Scalar) {
        batch.Set(row, id, cell(spec.type, text));
      } else {
        int k = pick(12);
        if (k == 0) {
          batch.SetListState(id, kNull);
          text += "null";
        } else if (k == 1) {
          batch.SetListState(id, kUnknown);
          text += "unknown";
        } else {
          batch.SetListState(id, kKnown);
          int n = pick(5);
          text += "[";
          for (int i = 0; i < n; ++i) {
            if (spec.shape == FieldShape::List) {
              batch.AppendElement(id, cell(spec.type, text));
            } else {
              std::vector<Cell> attrs;
              text += "{";
              for (const ObjectAttribute& a : spec.attributes) {
                text += a.name + "=";
                attrs.push_back(cell(a.type, text));
                text += " ";
              }
              text += "}";
              batch.AppendObject(id, attrs);
            }
            text += " ";
          }
          text += "]";
        }
      }
      text += " ";
    }
    if (shown) shown->push_back(text);
  }
}

TEST(RulesDifferential, JitMatchesInterpreterOnRandomRules) {
  constexpr size_t kRules = 3000;
  constexpr size_t kPerSet = 250;  // rules per compiled set (one LLVM module each)
  // Not a multiple of the JIT's 4 lanes, so the last records take the
  // padded path (JitProgram::RunAll).
  constexpr size_t kRecords = 67;
  Generator gen(20240611);
  std::mt19937_64 rng(7);
  std::string error;
  std::shared_ptr<JitEngine> engine = JitEngine::Create(&error);
  ASSERT_TRUE(engine) << error;

  size_t mismatches = 0, compared = 0;
  size_t counts[4] = {0, 0, 0, 0};
  double compile_ms = 0;
  for (size_t first = 0; first < kRules; first += kPerSet) {
    SourceManager sources;
    Diagnostics diags;
    std::vector<std::string> texts;
    std::vector<ast::ExprPtr> exprs;
    std::vector<RuleSource> src;
    for (size_t i = 0; i < kPerSet; ++i) {
      texts.push_back(gen.Rule());
      exprs.push_back(ParseExpression(sources.Add("rule" + std::to_string(first + i), texts.back()), diags));
    }
    for (size_t i = 0; i < kPerSet; ++i) src.push_back({texts[i], exprs[i].get()});
    RuleSetOptions options;
    options.engine = engine;
    auto set = RuleSet::Compile(DiffSchema(), src, diags, options);
    // The generator only writes well-typed rules: any diagnostic is a bug in
    // the generator or the checker.
    ASSERT_FALSE(diags.has_errors()) << RenderText(diags.Sorted(sources), sources, {});
    ASSERT_TRUE(set->jitted()) << set->jit_error();
    const JitStats& js = set->jit_stats();
    compile_ms += js.ir_ms + js.machine_code_ms;

    RecordBatch batch = set->NewBatch();
    std::vector<std::string> shown;
    AddRandomRecords(batch, kRecords, rng, &shown);
    std::vector<Verdict> a(kPerSet * kRecords), b(kPerSet * kRecords);
    set->EvaluateAll(batch, a, Backend::Interpreter);
    set->EvaluateAll(batch, b, Backend::Jit);
    // A range that starts and ends off the lane grid, as threads splitting a
    // batch would ask for.
    {
      constexpr size_t kBegin = 5, kEnd = 63;
      std::vector<Verdict> part(kPerSet * (kEnd - kBegin));
      set->EvaluateRange(batch, kBegin, kEnd, part.data(), kEnd - kBegin, Backend::Jit);
      size_t differ = 0;
      for (size_t r = 0; r < set->size(); ++r) {
        for (size_t i = kBegin; i < kEnd; ++i) differ += part[r * (kEnd - kBegin) + (i - kBegin)] != a[r * kRecords + i];
      }
      EXPECT_EQ(differ, 0u) << "EvaluateRange(" << kBegin << ", " << kEnd << ") differs from the interpreter";
    }
    for (size_t r = 0; r < set->size(); ++r) {
      for (size_t i = 0; i < kRecords; ++i) {
        size_t k = r * kRecords + i;
        ++compared;
        ++counts[static_cast<int>(a[k])];
        if (a[k] == b[k]) continue;
        if (++mismatches <= 5) {
          ADD_FAILURE() << "rule: " << texts[r] << "\nrecord: " << shown[i] << "\ninterpreter: " << VerdictName(a[k])
                        << ", jit: " << VerdictName(b[k]) << "\n"
                        << DumpRule(set->program(), r);
        }
      }
    }
  }
  std::printf("[ rules    ] %zu verdicts compared; false %zu, true %zu, unknown %zu, error %zu; JIT compile %.0f ms\n",
              compared, counts[0], counts[1], counts[2], counts[3], compile_ms);
  EXPECT_EQ(mismatches, 0u) << "of " << compared << " verdicts";
  EXPECT_EQ(compared, kRules * kRecords);
  // The comparison only means something if every outcome occurs often.
  for (int v = 0; v < 4; ++v) {
    EXPECT_GT(counts[v], compared / 20) << VerdictName(static_cast<Verdict>(v)) << " is too rare";
  }
}

TEST(RulesDifferential, ConditionsMatchOnRandomSnapshots) {
  // Conditions read series from a snapshot (NaN = missing) instead of columns.
  Generator gen(99);
  std::vector<Series> series;
  for (const auto& [name, t] : Generator::Scalars()) {
    if (t == T::Number) series.push_back({"r." + name, ScalarType::Number});
    if (t == T::Duration) series.push_back({"r." + name, ScalarType::Duration});
    if (t == T::Size) series.push_back({"r." + name, ScalarType::Size});
    if (t == T::Percent) series.push_back({"r." + name, ScalarType::Percent});
  }
  // Keep only rules over numeric series: regenerate until one type-checks
  // against the series (strings, bools and lists are not series).
  SourceManager sources;
  std::vector<std::string> texts;
  std::vector<ast::ExprPtr> exprs;
  std::vector<ConditionSource> src;
  size_t attempts = 0;
  while (texts.size() < 600 && attempts < 100000) {
    ++attempts;
    std::string t = gen.Rule();
    if (t.find("r.b") != std::string::npos || t.find("r.s") != std::string::npos || t.find(" in ") != std::string::npos ||
        t.find("[*]") != std::string::npos || t.find("r.nums") != std::string::npos || t.find("r.z1") == std::string::npos) {
      continue;
    }
    Diagnostics d;
    exprs.push_back(ParseExpression(sources.Add("c", t), d));
    texts.push_back(t);
  }
  ASSERT_EQ(texts.size(), 600u);
  for (size_t i = 0; i < texts.size(); ++i) src.push_back({texts[i], exprs[i].get()});
  Diagnostics diags;
  std::string error;
  auto set = ConditionSet::Compile(series, src, diags, &error);
  ASSERT_TRUE(set) << error;
  ASSERT_FALSE(diags.has_errors()) << RenderText(diags.Sorted(sources), sources, {});
  ASSERT_TRUE(set->jitted()) << set->jit_error();
  std::mt19937_64 rng(3);
  const double values[] = {NAN, 0, 1, 2, 0.5, 100, -1, 1024, 60000, 80};
  size_t mismatches = 0;
  std::vector<Verdict> a(set->size()), b(set->size());
  for (int round = 0; round < 64; ++round) {
    std::vector<double> snapshot(set->series_count());
    for (double& v : snapshot) v = values[std::uniform_int_distribution<int>(0, 9)(rng)];
    set->Evaluate(snapshot, a, Backend::Interpreter);
    set->Evaluate(snapshot, b, Backend::Jit);
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] != b[i] && ++mismatches <= 5) {
        ADD_FAILURE() << texts[i] << ": interpreter " << VerdictName(a[i]) << ", jit " << VerdictName(b[i]);
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

}  // namespace
}  // namespace plinth::rules
