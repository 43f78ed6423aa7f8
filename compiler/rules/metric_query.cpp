#include "compiler/rules/metric_query.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace plinth::rules {
namespace {

bool ValidMetricName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool ValidLabelName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

const ast::Literal* LiteralOf(const ast::Expr& e) {
  return e.kind == ast::ExprKind::Literal ? &e.As<ast::Literal>() : nullptr;
}

// A string literal, or a template with no interpolation.
std::optional<std::string> StringOf(const ast::Expr& e) {
  if (const ast::Literal* l = LiteralOf(e); l && l->value.kind() == Value::Kind::String) return l->value.as_string();
  if (e.kind == ast::ExprKind::Template) {
    std::string text;
    for (const ast::TemplatePart& p : e.As<ast::Template>().parts) {
      if (p.expr) return std::nullopt;
      text += p.text;
    }
    return text;
  }
  return std::nullopt;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

const char* OpText(MetricMatcher::Op op) {
  switch (op) {
    case MetricMatcher::Op::Equal: return "=";
    case MetricMatcher::Op::NotEqual: return "!=";
    case MetricMatcher::Op::Regex: return "=~";
    case MetricMatcher::Op::NotRegex: return "!~";
  }
  return "=";
}

std::string Selector(const MetricQuery& q) {
  std::string s = q.metric;
  if (q.matchers.empty()) return s;
  s += "{";
  for (size_t i = 0; i < q.matchers.size(); ++i) {
    const MetricMatcher& m = q.matchers[i];
    s += (i ? ", " : "") + m.name + OpText(m.op) + Quote(m.value);
  }
  return s + "}";
}

const char* FnName(MetricQuery::Fn fn) {
  switch (fn) {
    case MetricQuery::Fn::Latest: return "metric";
    case MetricQuery::Fn::Rate: return "rate";
    case MetricQuery::Fn::Increase: return "increase";
    case MetricQuery::Fn::AvgOverTime: return "avg_over_time";
    case MetricQuery::Fn::MaxOverTime: return "max_over_time";
    case MetricQuery::Fn::HistogramQuantile: return "histogram_quantile";
  }
  return "metric";
}

std::string FormatNumber(double v) {
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  // Shortest form that reads back the same.
  for (int p = 1; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (std::strtod(buf, nullptr) == v) return buf;
  }
  return s;
}

std::string PromQLOf(const MetricQuery& q) {
  std::string sel = Selector(q);
  switch (q.fn) {
    case MetricQuery::Fn::Latest: return "sum(" + sel + ")";
    case MetricQuery::Fn::HistogramQuantile:
      return "max(histogram_quantile(" + FormatNumber(q.quantile) + ", rate(" + sel + "[" + PromDuration(q.range_ms) +
             "])))";
    default: return std::string("sum(") + FnName(q.fn) + "(" + sel + "[" + PromDuration(q.range_ms) + "]))";
  }
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

const char* Signature(const std::string& fn) {
  if (fn == "metric") return "metric(name string, labels object?) number";
  if (fn == "histogram_quantile") return "histogram_quantile(q number, buckets metric(...), range duration) number";
  return "FN(series metric(...), range duration) number";
}

}  // namespace

bool IsMetricFunction(std::string_view name) {
  return name == "metric" || name == "rate" || name == "increase" || name == "avg_over_time" ||
         name == "max_over_time" || name == "histogram_quantile";
}

std::string PromDuration(int64_t ms) {
  struct Unit {
    int64_t ms;
    const char* suffix;
  };
  static const Unit units[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  if (ms <= 0) return "0s";
  for (const Unit& u : units) {
    if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
  }
  return std::to_string(ms) + "ms";
}

std::optional<MetricQuery> ParseMetricQuery(const ast::Call& call, Diagnostics& diags) {
  const std::string& fn = call.name;
  auto fail = [&](Range r, std::string msg, std::string help = "") -> std::optional<MetricQuery> {
    Diagnostic& d = diags.Error(DiagCode::FunctionArguments, r, std::move(msg));
    d.help = help.empty() ? std::string("signature: ") + Signature(fn) : std::move(help);
    return std::nullopt;
  };
  MetricQuery q;
  q.range = call.range;
  // metric(name, labels?)
  auto parse_selector = [&](const ast::Call& m) -> bool {
    if (m.args.empty() || m.args.size() > 2) {
      fail(m.range, "'metric' takes a metric name and optionally an object of labels, got " +
                        std::to_string(m.args.size()) + " arguments",
           "write: metric(\"http_requests_total\", {service = \"api\"})");
      return false;
    }
    std::optional<std::string> name = StringOf(*m.args[0]);
    if (!name) {
      fail(m.args[0]->range, "the metric name must be a string written out", "write: metric(\"http_requests_total\")");
      return false;
    }
    if (!ValidMetricName(*name)) {
      fail(m.args[0]->range, "'" + *name + "' is not a metric name",
           "metric names are letters, digits, '_' and ':', not starting with a digit");
      return false;
    }
    q.metric = *name;
    if (m.args.size() == 2) {
      if (m.args[1]->kind != ast::ExprKind::Object) {
        fail(m.args[1]->range, "the labels must be an object of strings",
             "write: {service = \"api\", code = \"=~5..\"}");
        return false;
      }
      for (const ast::ObjectItem& item : m.args[1]->As<ast::Object>().items) {
        if (!ValidLabelName(item.key) || item.key.rfind("__", 0) == 0) {
          fail(item.key_range, "'" + item.key + "' is not a label name",
               "label names are letters, digits and '_', not starting with a digit or '__'");
          return false;
        }
        std::optional<std::string> v = StringOf(*item.value);
        if (!v) {
          fail(item.value->range, "label '" + item.key + "' must be matched against a string written out",
               "write: " + item.key + " = \"value\" (or \"=~regex\", \"!=value\", \"!~regex\")");
          return false;
        }
        MetricMatcher mm;
        mm.name = item.key;
        std::string text = *v;
        if (text.rfind("=~", 0) == 0) {
          mm.op = MetricMatcher::Op::Regex, text = text.substr(2);
        } else if (text.rfind("!~", 0) == 0) {
          mm.op = MetricMatcher::Op::NotRegex, text = text.substr(2);
        } else if (text.rfind("!=", 0) == 0) {
          mm.op = MetricMatcher::Op::NotEqual, text = text.substr(2);
        } else if (text.rfind("=", 0) == 0) {
          text = text.substr(1);
        }
        mm.value = std::move(text);
        q.matchers.push_back(std::move(mm));
      }
    }
    return true;
  };
  auto inner_metric = [&](const ast::Expr& e) -> bool {
    if (e.kind != ast::ExprKind::Call || e.As<ast::Call>().name != "metric") {
      fail(e.range, "'" + fn + "' reads a metric(...) call here",
           "write: " + fn + "(metric(\"http_requests_total\", {service = \"api\"}), 1m)");
      return false;
    }
    return parse_selector(e.As<ast::Call>());
  };
  auto range_arg = [&](const ast::Expr& e) -> bool {
    const ast::Literal* l = LiteralOf(e);
    if (!l || l->value.kind() != Value::Kind::Duration || l->value.as_number() < 1000) {
      fail(e.range, "the range must be a duration of at least 1s written out", "write: 1m, 5m or 30s");
      return false;
    }
    q.range_ms = static_cast<int64_t>(l->value.as_number());
    return true;
  };
  if (fn == "metric") {
    q.fn = MetricQuery::Fn::Latest;
    if (!parse_selector(call)) return std::nullopt;
  } else if (fn == "histogram_quantile") {
    q.fn = MetricQuery::Fn::HistogramQuantile;
    if (call.args.size() != 3) {
      return fail(call.range, "'histogram_quantile' takes 3 arguments, got " + std::to_string(call.args.size()));
    }
    const ast::Literal* l = LiteralOf(*call.args[0]);
    if (!l || l->value.kind() != Value::Kind::Number || l->value.as_number() < 0 || l->value.as_number() > 1) {
      return fail(call.args[0]->range, "the quantile must be a number from 0 to 1 written out", "write: 0.95");
    }
    q.quantile = l->value.as_number();
    if (!inner_metric(*call.args[1]) || !range_arg(*call.args[2])) return std::nullopt;
    if (q.metric.size() < 7 || q.metric.compare(q.metric.size() - 7, 7, "_bucket") != 0) {
      return fail(call.args[1]->range, "histogram_quantile reads a histogram's buckets, not '" + q.metric + "'",
                  "name the _bucket series: metric(\"" + q.metric + "_bucket\")");
    }
  } else if (IsMetricFunction(fn)) {
    q.fn = fn == "rate"       ? MetricQuery::Fn::Rate
           : fn == "increase" ? MetricQuery::Fn::Increase
           : fn == "avg_over_time" ? MetricQuery::Fn::AvgOverTime
                                   : MetricQuery::Fn::MaxOverTime;
    if (call.args.size() != 2) {
      return fail(call.range, "'" + fn + "' takes 2 arguments, got " + std::to_string(call.args.size()));
    }
    if (!inner_metric(*call.args[0]) || !range_arg(*call.args[1])) return std::nullopt;
  } else {
    return fail(call.range, "'" + fn + "' is not a metric function");
  }
  q.key = std::string(FnName(q.fn)) + "(" + (q.fn == MetricQuery::Fn::HistogramQuantile ? FormatNumber(q.quantile) + ", " : "") +
          Selector(q) + (q.range_ms ? "[" + PromDuration(q.range_ms) + "]" : "") + ")";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Fnv1a(q.key)));
  q.series = std::string("__metric_") + hex;
  return q;
}

void CollectMetricQueries(const ast::Expr& expr, std::vector<MetricQuery>& out) {
  using K = ast::ExprKind;
  switch (expr.kind) {
    case K::Call: {
      const auto& c = expr.As<ast::Call>();
      if (IsMetricFunction(c.name)) {
        Diagnostics scratch;
        if (std::optional<MetricQuery> q = ParseMetricQuery(c, scratch)) {
          bool seen = false;
          for (const MetricQuery& o : out) seen = seen || o.key == q->key;
          if (!seen) out.push_back(std::move(*q));
        }
        return;
      }
      for (const ast::ExprPtr& a : c.args) CollectMetricQueries(*a, out);
      return;
    }
    case K::Unary: CollectMetricQueries(*expr.As<ast::Unary>().operand, out); return;
    case K::Binary:
      CollectMetricQueries(*expr.As<ast::Binary>().lhs, out);
      CollectMetricQueries(*expr.As<ast::Binary>().rhs, out);
      return;
    case K::Conditional: {
      const auto& c = expr.As<ast::Conditional>();
      CollectMetricQueries(*c.cond, out);
      CollectMetricQueries(*c.then, out);
      CollectMetricQueries(*c.otherwise, out);
      return;
    }
    case K::List:
      for (const ast::ExprPtr& i : expr.As<ast::List>().items) CollectMetricQueries(*i, out);
      return;
    case K::Template:
      for (const ast::TemplatePart& p : expr.As<ast::Template>().parts) {
        if (p.expr) CollectMetricQueries(*p.expr, out);
      }
      return;
    default: return;
  }
}

std::optional<std::string> ToPromQL(const ast::Expr& expr, std::string* error, Range* where) {
  using K = ast::ExprKind;
  auto refuse = [&](Range r, std::string why) -> std::optional<std::string> {
    *error = std::move(why);
    *where = r;
    return std::nullopt;
  };
  switch (expr.kind) {
    case K::Literal: {
      const Value& v = expr.As<ast::Literal>().value;
      if (v.kind() == Value::Kind::Number) return FormatNumber(v.as_number());
      if (v.kind() == Value::Kind::Duration) return FormatNumber(v.as_number() / 1000.0);
      return refuse(expr.range, "PromQL has no such literal here: use plain numbers (seconds for durations)");
    }
    case K::Call: {
      const auto& c = expr.As<ast::Call>();
      if (!IsMetricFunction(c.name)) return refuse(c.name_range, "'" + c.name + "' has no PromQL equivalent");
      Diagnostics scratch;
      std::optional<MetricQuery> q = ParseMetricQuery(c, scratch);
      if (!q) return refuse(c.range, "this metric call does not parse (plinth validate says why)");
      return PromQLOf(*q);
    }
    case K::Unary: {
      const auto& u = expr.As<ast::Unary>();
      if (u.op != ast::Op::Neg) return refuse(expr.range, "'!' has no PromQL equivalent in an alert expression");
      std::optional<std::string> inner = ToPromQL(*u.operand, error, where);
      if (!inner) return std::nullopt;
      return "-(" + *inner + ")";
    }
    case K::Binary: {
      const auto& b = expr.As<ast::Binary>();
      std::optional<std::string> l = ToPromQL(*b.lhs, error, where);
      if (!l) return std::nullopt;
      std::optional<std::string> r = ToPromQL(*b.rhs, error, where);
      if (!r) return std::nullopt;
      const char* op = nullptr;
      switch (b.op) {
        case ast::Op::Mul: op = "*"; break;
        case ast::Op::Div: op = "/"; break;
        case ast::Op::Mod: op = "%"; break;
        case ast::Op::Add: op = "+"; break;
        case ast::Op::Sub: op = "-"; break;
        case ast::Op::Lt: op = "<"; break;
        case ast::Op::Le: op = "<="; break;
        case ast::Op::Gt: op = ">"; break;
        case ast::Op::Ge: op = ">="; break;
        case ast::Op::Eq: op = "=="; break;
        case ast::Op::Ne: op = "!="; break;
        case ast::Op::And: op = "and"; break;
        case ast::Op::Or: op = "or"; break;
        default: return refuse(expr.range, "this operator has no PromQL equivalent");
      }
      return "(" + *l + " " + op + " " + *r + ")";
    }
    default: return refuse(expr.range, "this expression has no PromQL equivalent in an alert rule");
  }
}

}  // namespace plinth::rules
