#include "runtime/metrics/parse.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <set>

namespace plinth::metrics {

namespace {

bool NameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool NameChar(char c) {
  return NameStart(c) || (c >= '0' && c <= '9');
}
bool LabelStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool LabelChar(char c) {
  return LabelStart(c) || (c >= '0' && c <= '9');
}
bool Blank(char c) {
  return c == ' ' || c == '\t';
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Shows at most 40 bytes of user text in an error, printable ASCII only.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < 40; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (s.size() > 40) out += "...";
  return out + "\"";
}

// A cursor over one line.
struct Line {
  std::string_view s;
  size_t pos = 0;
  bool End() const { return pos >= s.size(); }
  char Peek() const { return pos < s.size() ? s[pos] : '\0'; }
  void SkipBlanks() {
    while (pos < s.size() && Blank(s[pos])) ++pos;
  }
  std::string_view Token() {  // up to the next blank
    size_t b = pos;
    while (pos < s.size() && !Blank(s[pos])) ++pos;
    return s.substr(b, pos - b);
  }
};

class Parser {
 public:
  Parser(std::string_view text, const ParseLimits& limits) : text_(text), limits_(limits) {}

  ParseResult Run() {
    size_t start = 0;
    while (start < text_.size()) {
      ++line_no_;
      size_t nl = text_.find('\n', start);
      size_t end = nl == std::string_view::npos ? text_.size() : nl;
      if (end - start > limits_.max_line_bytes)
        return Fail("line longer than " + std::to_string(limits_.max_line_bytes) +
                    " bytes; the target's exposition is malformed or hostile");
      std::string_view line = text_.substr(start, end - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!ParseLine(line)) return std::move(result_);
      start = end + 1;
    }
    result_.ok = true;
    return std::move(result_);
  }

 private:
  ParseResult Fail(const std::string& message) {
    result_.ok = false;
    result_.error = "line " + std::to_string(line_no_) + ": " + message;
    result_.samples.clear();
    return std::move(result_);
  }
  bool Error(const std::string& message) {
    result_.ok = false;
    result_.error = "line " + std::to_string(line_no_) + ": " + message;
    result_.samples.clear();
    return false;
  }

  bool ParseLine(std::string_view text) {
    Line line{text};
    line.SkipBlanks();
    if (line.End()) return true;
    if (line.Peek() == '#') return ParseComment(line);
    return ParseSample(line);
  }

  bool ParseComment(Line& line) {
    ++line.pos;
    line.SkipBlanks();
    std::string_view keyword = line.Token();
    if (keyword != "HELP" && keyword != "TYPE") return true;  // a plain comment
    line.SkipBlanks();
    std::string_view name = line.Token();
    if (!ValidName(name))
      return Error("invalid metric name " + Quote(name) + " in " + std::string(keyword) + " line");
    line.SkipBlanks();
    std::string_view rest = line.s.substr(line.pos);
    ParsedFamily& family = result_.families[std::string(name)];
    if (keyword == "HELP") {
      if (!help_seen_.insert(std::string(name)).second) return Error("second HELP line for " + Quote(name));
      std::string help;
      for (size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size() && (rest[i + 1] == '\\' || rest[i + 1] == 'n')) {
          help += rest[i + 1] == 'n' ? '\n' : '\\';
          ++i;
        } else {
          help += rest[i];
        }
      }
      family.help = std::move(help);
      return true;
    }
    while (!rest.empty() && Blank(rest.back())) rest.remove_suffix(1);
    MetricType type;
    if (rest == "counter")
      type = MetricType::Counter;
    else if (rest == "gauge")
      type = MetricType::Gauge;
    else if (rest == "histogram")
      type = MetricType::Histogram;
    else if (rest == "summary")
      type = MetricType::Summary;
    else if (rest == "untyped")
      type = MetricType::Untyped;
    else
      return Error("unknown metric type " + Quote(rest) + " for " + Quote(name) +
                   "; expected counter, gauge, histogram, summary or untyped");
    if (!type_seen_.insert(std::string(name)).second) return Error("second TYPE line for " + Quote(name));
    if (sampled_families_.count(std::string(name)))
      return Error("TYPE line for " + Quote(name) + " after its samples; TYPE must come first");
    family.type = type;
    return true;
  }

  bool ValidName(std::string_view name) const {
    if (name.empty() || !NameStart(name[0])) return false;
    for (char c : name)
      if (!NameChar(c)) return false;
    return true;
  }

  // The family a sample name belongs to, by the TYPE lines seen so far.
  std::pair<std::string, MetricType> FamilyOf(const std::string& name) const {
    auto typed = [&](std::string_view base, MetricType want_a, MetricType want_b) -> bool {
      auto it = result_.families.find(std::string(base));
      return it != result_.families.end() && type_seen_.count(it->first) &&
             (it->second.type == want_a || it->second.type == want_b);
    };
    if (EndsWith(name, "_bucket")) {
      std::string_view base(name.data(), name.size() - 7);
      if (typed(base, MetricType::Histogram, MetricType::Histogram))
        return {std::string(base), MetricType::Histogram};
    }
    for (std::string_view suffix : {std::string_view("_sum"), std::string_view("_count")}) {
      if (EndsWith(name, suffix)) {
        std::string_view base(name.data(), name.size() - suffix.size());
        if (typed(base, MetricType::Histogram, MetricType::Summary))
          return {std::string(base), result_.families.at(std::string(base)).type};
      }
    }
    auto it = result_.families.find(name);
    if (it != result_.families.end() && type_seen_.count(name)) return {name, it->second.type};
    return {name, MetricType::Untyped};
  }

  bool ParseSample(Line& line) {
    if (result_.samples.size() >= limits_.max_samples)
      return Error("more than " + std::to_string(limits_.max_samples) +
                   " samples in one scrape; export fewer series or raise the sample limit");
    ParsedSample sample;
    size_t b = line.pos;
    while (!line.End() && NameChar(line.Peek())) ++line.pos;
    sample.name = std::string(line.s.substr(b, line.pos - b));
    if (!ValidName(sample.name))
      return Error("expected a metric name at " + Quote(line.s.substr(b)) +
                   "; names match [a-zA-Z_:][a-zA-Z0-9_:]*");
    size_t after_name = line.pos;
    line.SkipBlanks();
    if (line.Peek() == '{') {
      ++line.pos;
      if (!ParseLabels(line, sample.labels)) return false;
    } else if (line.pos > after_name) {
      line.pos = after_name;  // the blank before the value
    }
    if (!line.End() && !Blank(line.Peek()))
      return Error("expected a space before the value of " + Quote(sample.name) + ", found " +
                   Quote(line.s.substr(line.pos)));
    line.SkipBlanks();
    std::string_view value = line.Token();
    if (value.empty()) return Error("missing value for " + Quote(sample.name));
    auto v = ParseSampleValue(value);
    if (!v)
      return Error("invalid value " + Quote(value) + " for " + Quote(sample.name) +
                   "; expected a float, NaN, +Inf or -Inf");
    sample.value = *v;
    line.SkipBlanks();
    if (!line.End()) {
      std::string_view ts = line.Token();
      int64_t t = 0;
      auto r = std::from_chars(ts.data(), ts.data() + ts.size(), t);
      if (r.ec != std::errc() || r.ptr != ts.data() + ts.size())
        return Error("invalid timestamp " + Quote(ts) + " for " + Quote(sample.name) +
                     "; expected integer milliseconds");
      sample.timestamp_ms = t;
      line.SkipBlanks();
      if (!line.End()) return Error("unexpected " + Quote(line.s.substr(line.pos)) + " after the timestamp");
    }
    auto [family, type] = FamilyOf(sample.name);
    sample.family = std::move(family);
    sample.type = type;
    if (type == MetricType::Histogram && EndsWith(sample.name, "_bucket") && !FloatLabel(sample, "le"))
      return false;
    if (type == MetricType::Summary && sample.name == sample.family && !FloatLabel(sample, "quantile"))
      return false;
    sampled_families_.insert(sample.family);
    result_.samples.push_back(std::move(sample));
    return true;
  }

  bool FloatLabel(const ParsedSample& sample, const char* label) {
    for (const auto& [k, v] : sample.labels)
      if (k == label) {
        if (ParseSampleValue(v)) return true;
        return Error("label " + std::string(label) + "=" + Quote(v) + " of " + Quote(sample.name) +
                     " is not a float");
      }
    return Error(Quote(sample.name) + " of " + MetricTypeName(sample.type) + " " + Quote(sample.family) +
                 " has no " + label + " label");
  }

  bool ParseLabels(Line& line, Labels& labels) {
    for (;;) {
      line.SkipBlanks();
      if (line.Peek() == '}') {
        ++line.pos;
        return true;
      }
      if (line.End()) return Error("unterminated label set; expected '}'");
      size_t b = line.pos;
      if (!LabelStart(line.Peek()))
        return Error("expected a label name or '}' at " + Quote(line.s.substr(line.pos)));
      while (!line.End() && LabelChar(line.Peek())) ++line.pos;
      std::string name(line.s.substr(b, line.pos - b));
      line.SkipBlanks();
      if (line.Peek() != '=') return Error("expected '=' after label name " + Quote(name));
      ++line.pos;
      line.SkipBlanks();
      if (line.Peek() != '"') return Error("expected '\"' to open the value of label " + Quote(name));
      ++line.pos;
      std::string value;
      for (;;) {
        if (line.End()) return Error("unterminated value of label " + Quote(name));
        char c = line.s[line.pos++];
        if (c == '"') break;
        if (c != '\\') {
          value += c;
          continue;
        }
        if (line.End()) return Error("unterminated value of label " + Quote(name));
        char e = line.s[line.pos++];
        if (e == '\\')
          value += '\\';
        else if (e == '"')
          value += '"';
        else if (e == 'n')
          value += '\n';
        else
          return Error("invalid escape '\\" + std::string(1, e) + "' in the value of label " + Quote(name) +
                       "; only \\\\, \\\" and \\n are allowed");
      }
      for (const auto& [k, v] : labels)
        if (k == name) return Error("label " + Quote(name) + " repeated");
      if (labels.size() >= limits_.max_labels)
        return Error("more than " + std::to_string(limits_.max_labels) + " labels on one sample");
      labels.emplace_back(std::move(name), std::move(value));
      line.SkipBlanks();
      if (line.Peek() == ',') {
        ++line.pos;
        continue;
      }
      if (line.Peek() == '}') {
        ++line.pos;
        return true;
      }
      return Error("expected ',' or '}' after the value of label " + Quote(labels.back().first));
    }
  }

  std::string_view text_;
  const ParseLimits& limits_;
  size_t line_no_ = 0;
  ParseResult result_;
  std::set<std::string> help_seen_, type_seen_, sampled_families_;
};

}  // namespace

const char* MetricTypeName(MetricType t) {
  switch (t) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
    case MetricType::Summary: return "summary";
    case MetricType::Untyped: break;
  }
  return "untyped";
}

std::optional<double> ParseSampleValue(std::string_view s) {
  if (s.empty()) return std::nullopt;
  bool negative = false;
  std::string_view body = s;
  if (body[0] == '+' || body[0] == '-') {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (EqualsIgnoreCase(body, "inf") || EqualsIgnoreCase(body, "infinity"))
    return negative ? -HUGE_VAL : HUGE_VAL;
  if (EqualsIgnoreCase(body, "nan"))
    return s.size() == 3 ? std::optional<double>(std::nan("")) : std::nullopt;
  if (body.empty() || !((body[0] >= '0' && body[0] <= '9') || body[0] == '.')) return std::nullopt;
  double v = 0;
  auto r = std::from_chars(body.data(), body.data() + body.size(), v, std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range && r.ptr == body.data() + body.size()) {
    // Go's ParseFloat fails on overflow (Prometheus rejects the scrape) but
    // rounds an underflow to the nearest subnormal or 0.
    std::string copy(body);
    double u = std::strtod(copy.c_str(), nullptr);
    if (std::isinf(u)) return std::nullopt;
    return negative ? -u : u;
  }
  if (r.ec != std::errc() || r.ptr != body.data() + body.size()) return std::nullopt;
  return negative ? -v : v;
}

ParseResult ParseExposition(std::string_view text, const ParseLimits& limits) {
  return Parser(text, limits).Run();
}

}  // namespace plinth::metrics
