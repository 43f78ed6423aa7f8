// The Prometheus text format parser (runtime/metrics/parse.h): the format's
// cases, located errors, limits, garbage that must never crash it, and a
// round trip with the writer (exposition.h).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "runtime/metrics/exposition.h"
#include "runtime/metrics/parse.h"

namespace plinth::metrics {
namespace {

const ParsedSample* Find(const ParseResult& r, const std::string& name, const Labels& labels) {
  for (const auto& s : r.samples)
    if (s.name == name && s.labels == labels) return &s;
  return nullptr;
}

TEST(MetricsParse, TheFormatsCases) {
  // After the example in Prometheus' exposition format documentation.
  const std::string text = R"(# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

# Minimalistic line:
metric_without_timestamp_and_labels 12.47

# A weird metric from before the epoch:
something_weird{problem="division by zero"} +Inf -3982045
nan_gauge NaN
neg_inf{a="b",} -Inf

# HELP http_request_duration_seconds A histogram of the request duration.\nSecond line \\ end
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE temperature gauge
temperature	{ room = "a" }	21.5
)";
  ParseResult r = ParseExposition(text);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.samples.size(), 17u);

  const ParsedSample* s = Find(r, "http_requests_total", {{"method", "post"}, {"code", "400"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 3);
  EXPECT_EQ(s->timestamp_ms, 1395066363000);
  EXPECT_EQ(s->type, MetricType::Counter);
  EXPECT_EQ(r.families.at("http_requests_total").help, "The total number of HTTP requests.");

  s = Find(r, "msdos_file_access_time_seconds",
           {{"path", "C:\\DIR\\FILE.TXT"}, {"error", "Cannot find file:\n\"FILE.TXT\""}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 1.458255915e9);
  EXPECT_EQ(s->type, MetricType::Untyped);
  EXPECT_FALSE(s->timestamp_ms);

  s = Find(r, "something_weird", {{"problem", "division by zero"}});
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(std::isinf(s->value) && s->value > 0);
  EXPECT_EQ(s->timestamp_ms, -3982045);
  EXPECT_TRUE(std::isnan(Find(r, "nan_gauge", {})->value));
  s = Find(r, "neg_inf", {{"a", "b"}});  // a trailing comma is allowed
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(std::isinf(s->value) && s->value < 0);

  s = Find(r, "http_request_duration_seconds_bucket", {{"le", "+Inf"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->family, "http_request_duration_seconds");
  EXPECT_EQ(s->type, MetricType::Histogram);
  EXPECT_EQ(Find(r, "http_request_duration_seconds_count", {})->family, "http_request_duration_seconds");
  EXPECT_EQ(r.families.at("http_request_duration_seconds").help,
            "A histogram of the request duration.\nSecond line \\ end");

  s = Find(r, "rpc_duration_seconds_sum", {});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, MetricType::Summary);
  EXPECT_EQ(s->value, 1.7560473e+07);
  EXPECT_EQ(Find(r, "rpc_duration_seconds", {{"quantile", "0.99"}})->value, 76656);

  s = Find(r, "temperature", {{"room", "a"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->type, MetricType::Gauge);
  EXPECT_EQ(s->value, 21.5);
}

TEST(MetricsParse, CrLfAndEmptyInput) {
  ParseResult r = ParseExposition("a 1\r\nb{x=\"y\"} 2\r\n");
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_EQ(r.samples.size(), 2u);
  EXPECT_EQ(r.samples[1].value, 2);
  EXPECT_TRUE(ParseExposition("").ok);
  EXPECT_TRUE(ParseExposition("\n\n# just a comment\n").ok);
}

TEST(MetricsParse, ValuesAsGoReadsThem) {
  EXPECT_EQ(ParseSampleValue("1e3"), 1000);
  EXPECT_EQ(ParseSampleValue("-0.5"), -0.5);
  EXPECT_EQ(ParseSampleValue("+2"), 2);
  EXPECT_EQ(ParseSampleValue(".5"), 0.5);
  EXPECT_TRUE(std::isinf(*ParseSampleValue("inf")));
  EXPECT_TRUE(std::isinf(*ParseSampleValue("+Infinity")));
  EXPECT_TRUE(std::isnan(*ParseSampleValue("nan")));
  EXPECT_EQ(ParseSampleValue("1e-400"), 0);  // underflow rounds, as in Go
  for (const char* bad : {"", "+", "-", "1x", "0x10", "1e999", "NaNa", "+NaN", "--1", "1 2", "e5"})
    EXPECT_FALSE(ParseSampleValue(bad)) << bad;
}

// Each bad input, and the error it must give (located by line).
TEST(MetricsParse, LocatedErrors) {
  struct Case {
    std::string text, error;
  };
  std::vector<Case> cases = {
      {"a 1\nb{x=\"1\" 2\n", "line 2: expected ',' or '}' after the value of label \"x\""},
      {"a{x=1} 2\n", "line 1: expected '\"' to open the value of label \"x\""},
      {"a{x=\"1} 2\n", "line 1: unterminated value of label \"x\""},
      {"a{x\"1\"} 2\n", "line 1: expected '=' after label name \"x\""},
      {"a{x=\"\\t\"} 2\n",
       "line 1: invalid escape '\\t' in the value of label \"x\"; only \\\\, \\\" and \\n are allowed"},
      {"a{x=\"1\",x=\"2\"} 2\n", "line 1: label \"x\" repeated"},
      {"a{1x=\"1\"} 2\n", "line 1: expected a label name or '}' at \"1x=\"1\"} 2\""},
      {"\n\n\na\n", "line 4: missing value for \"a\""},
      {"a one\n", "line 1: invalid value \"one\" for \"a\"; expected a float, NaN, +Inf or -Inf"},
      {"a 1 12.5\n", "line 1: invalid timestamp \"12.5\" for \"a\"; expected integer milliseconds"},
      {"a 1 12 13\n", "line 1: unexpected \"13\" after the timestamp"},
      {"1a 1\n", "line 1: expected a metric name at \"1a 1\"; names match [a-zA-Z_:][a-zA-Z0-9_:]*"},
      {"# TYPE a countr\n",
       "line 1: unknown metric type \"countr\" for \"a\"; expected counter, gauge, histogram, summary or "
       "untyped"},
      {"# TYPE a gauge\n# TYPE a gauge\n", "line 2: second TYPE line for \"a\""},
      {"a 1\n# TYPE a gauge\n", "line 2: TYPE line for \"a\" after its samples; TYPE must come first"},
      {"# HELP a x\n# HELP a y\n", "line 2: second HELP line for \"a\""},
      {"# TYPE h histogram\nh_bucket 1\n", "line 2: \"h_bucket\" of histogram \"h\" has no le label"},
      {"# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", "line 2: label le=\"x\" of \"h_bucket\" is not a float"},
      {"# TYPE s summary\ns 1\n", "line 2: \"s\" of summary \"s\" has no quantile label"},
      {"a{x=\"1\"}2\n", "line 1: expected a space before the value of \"a\", found \"2\""},
  };
  for (const auto& c : cases) {
    ParseResult r = ParseExposition(c.text);
    EXPECT_FALSE(r.ok) << c.text;
    EXPECT_EQ(r.error, c.error) << c.text;
    EXPECT_TRUE(r.samples.empty()) << "a failed parse keeps no samples: " << c.text;
  }
}

TEST(MetricsParse, Limits) {
  ParseLimits limits;
  limits.max_line_bytes = 100;
  limits.max_samples = 3;
  limits.max_labels = 2;
  EXPECT_EQ(ParseExposition("a 1\n" + std::string(101, 'b') + " 1\n", limits).error,
            "line 2: line longer than 100 bytes; the target's exposition is malformed or hostile");
  EXPECT_TRUE(ParseExposition("a 1\nb 1\nc 1\n", limits).ok);
  EXPECT_EQ(ParseExposition("a 1\nb 1\nc 1\nd 1\n", limits).error,
            "line 4: more than 3 samples in one scrape; export fewer series or raise the sample limit");
  EXPECT_EQ(ParseExposition("a{x=\"1\",y=\"2\",z=\"3\"} 1\n", limits).error,
            "line 1: more than 2 labels on one sample");
  // A huge label value on one line: cut off by the line limit, not read into memory first.
  ParseLimits defaults;
  std::string huge = "a{x=\"" + std::string(10 * 1024 * 1024, 'v') + "\"} 1\n";
  ParseResult r = ParseExposition(huge, defaults);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.rfind("line 1: line longer than", 0), 0u) << r.error;
}

// Random bytes and random mutations of a valid exposition: the parser
// returns (ok, or a located error) and never crashes, loops or keeps
// samples after an error. Seeds are fixed, so a failure reproduces.
TEST(MetricsParse, GarbageNeverCrashes) {
  const std::string valid =
      "# HELP x_total help \\n\n# TYPE x_total counter\nx_total{a=\"b\\\"c\",d=\"\\\\\"} 1.5e3 "
      "1700000000000\n"
      "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\nh_count 2\ny NaN\n";
  const std::string alphabet = "{}=\",\\ \t\n#+-.eE0123456789abcxyzNaInf_:le\r\x00\xff";
  std::mt19937 rng(20261205);
  size_t ok = 0, failed = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    if (round % 2 == 0) {
      std::uniform_int_distribution<size_t> len(0, 200);
      size_t n = len(rng);
      for (size_t i = 0; i < n; ++i) {
        if (round % 4 == 0)
          text += static_cast<char>(rng() & 0xff);
        else
          text += alphabet[rng() % alphabet.size()];
      }
    } else {
      text = valid;
      int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        size_t at = rng() % (text.size() + 1);
        switch (rng() % 3) {
          case 0: text.insert(at, 1, alphabet[rng() % alphabet.size()]); break;
          case 1:
            if (at < text.size()) text.erase(at, 1);
            break;
          default:
            if (at < text.size()) text[at] = alphabet[rng() % alphabet.size()];
        }
      }
    }
    ParseResult r = ParseExposition(text);
    if (r.ok) {
      ++ok;
    } else {
      ++failed;
      ASSERT_EQ(r.error.rfind("line ", 0), 0u) << r.error;
      ASSERT_TRUE(r.samples.empty());
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(ok, 100u);
  EXPECT_GT(failed, 100u);
}

// What Exposition writes, this reads back exactly.
TEST(MetricsParse, RoundTripWithExposition) {
  Exposition m;
  m.Counter("plinth_requests_total", "Requests \\ served\nby code.");
  m.Sample(1027, {{"code", "200"}, {"path", "/a\"b\\c\nd"}});
  m.Sample(3, {{"code", "500"}, {"path", ""}});
  m.Gauge("plinth_temperature", "Degrees.");
  m.Sample(-21.125);
  m.Sample(NAN, {{"room", "x"}});
  m.Sample(HUGE_VAL, {{"room", "y"}});
  m.Sample(-HUGE_VAL, {{"room", "z"}});
  m.Sample(0.1, {{"room", "w"}});
  m.Sample(1e300, {{"room", "v"}});
  m.GaugeValue("plinth_small", "Tiny.", 5e-324);
  ParseResult r = ParseExposition(m.Text());
  ASSERT_TRUE(r.ok) << r.error << "\n" << m.Text();
  ASSERT_EQ(r.samples.size(), 9u);
  EXPECT_EQ(r.families.at("plinth_requests_total").type, MetricType::Counter);
  EXPECT_EQ(r.families.at("plinth_requests_total").help, "Requests \\ served\nby code.");
  EXPECT_EQ(r.families.at("plinth_temperature").type, MetricType::Gauge);
  const ParsedSample* s = Find(r, "plinth_requests_total", {{"code", "200"}, {"path", "/a\"b\\c\nd"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->value, 1027);
  EXPECT_EQ(Find(r, "plinth_requests_total", {{"code", "500"}, {"path", ""}})->value, 3);
  EXPECT_EQ(Find(r, "plinth_temperature", {})->value, -21.125);
  EXPECT_TRUE(std::isnan(Find(r, "plinth_temperature", {{"room", "x"}})->value));
  EXPECT_EQ(Find(r, "plinth_temperature", {{"room", "y"}})->value, HUGE_VAL);
  EXPECT_EQ(Find(r, "plinth_temperature", {{"room", "z"}})->value, -HUGE_VAL);
  EXPECT_EQ(Find(r, "plinth_temperature", {{"room", "w"}})->value, 0.1);
  EXPECT_EQ(Find(r, "plinth_temperature", {{"room", "v"}})->value, 1e300);
  EXPECT_EQ(Find(r, "plinth_small", {})->value, 5e-324);
}

}  // namespace
}  // namespace plinth::metrics
