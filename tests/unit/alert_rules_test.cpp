// Alert rules (docs/automation.md, "Alert rules"): the metric query calls
// (compiler/rules/metric_query.h), the alert, receiver and notification
// blocks of the checker, and AlertRules evaluating them over a metrics
// window (runtime/controller/alert_rules.h).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "compiler/check/checker.h"
#include "compiler/rules/metric_query.h"
#include "compiler/syntax/parse.h"
#include "runtime/controller/alert_rules.h"
#include "runtime/policy/policy.h"
#include "runtime/providers/catalog.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

class AlertRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-alerts-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  CheckedConfig Run(const std::string& text) {
    std::ofstream(dir_ / "main.plinth") << text;
    diags_ = std::make_unique<Diagnostics>();
    sources_ = std::make_unique<SourceManager>();
    CheckOptions options;
    options.schemas = &runtime::BuiltinSchemas();
    CheckedConfig c = Check(dir_.string(), *sources_, *diags_, options);
    if (!diags_->has_errors()) runtime::CheckPolicies(c.policies, *diags_);
    if (!diags_->has_errors()) controller::CheckAlertRules(c.alerts, *diags_);
    return c;
  }
  std::string Text() const { return RenderText(diags_->Sorted(*sources_), *sources_, {}); }

  fs::path dir_;
  std::unique_ptr<Diagnostics> diags_;
  std::unique_ptr<SourceManager> sources_;
};

TEST_F(AlertRulesTest, BlocksAreCheckedAndEvaluated) {
  CheckedConfig c = Run(R"(
variable "secret" {
  type      = string
  sensitive = true
  default   = "s3cret"
}
alert "QueueDeep" {
  when            = metric("queue_depth", {service = "api", region = "!=us"}) > 10 && rate(metric("jobs_total"), 1m) < 5
  pending_for     = 2m
  keep_firing_for = 30s
  severity        = "page"
  labels          = { team = "ml" }
  annotations     = { summary = "depth {{ $value }} on {{ $labels.team }}" }
}
receiver "oncall" {
  url         = "http://127.0.0.1:9/hook"
  hmac_secret = var.secret
  max_alerts  = 20
}
receiver "pager" {
  url = "http://127.0.0.1:9/pager"
}
notification {
  receiver       = "oncall"
  group_by       = ["alertname"]
  group_wait     = 0s
  repeat_interval = 1h
  route {
    match    = { severity = "page", team = "=~ml|data" }
    receiver = "pager"
  }
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  ASSERT_EQ(c.alerts.size(), 1u);
  const AlertInstance& a = c.alerts[0];
  EXPECT_EQ(a.name, "alert.QueueDeep");
  EXPECT_EQ(a.for_ms, 120'000);
  EXPECT_EQ(a.keep_firing_for_ms, 30'000);
  EXPECT_EQ(a.severity, "page");
  EXPECT_EQ(a.labels.at("team"), "ml");
  ASSERT_EQ(c.receivers.size(), 2u);
  EXPECT_EQ(c.receivers[0].hmac_secret, "s3cret");
  EXPECT_EQ(c.receivers[0].max_alerts, 20);
  EXPECT_TRUE(c.notification.declared);
  EXPECT_EQ(c.notification.root.group_wait_ms, 0);  // set to 0: not "unset" (-1)
  EXPECT_EQ(c.notification.root.repeat_interval_ms, 3'600'000);
  ASSERT_EQ(c.notification.routes.size(), 1u);
  EXPECT_EQ(c.notification.routes[0].matchers,
            (std::vector<std::string>{"severity=\"page\"", "team=~\"ml|data\""}));

  // Evaluation: depth 12 with a slow job rate -> pending, firing after 2m.
  std::string error;
  Diagnostics d;
  auto rules = controller::AlertRules::Compile(c.alerts, d, &error);
  ASSERT_TRUE(rules) << error;
  ASSERT_FALSE(d.has_errors());
  metrics::Window w;
  const int64_t t0 = 1'000'000'000;
  auto feed = [&](int64_t t, double depth, double jobs) {
    w.Append("queue_depth", {{"region", "eu"}, {"service", "api"}}, t, depth);
    w.Append("queue_depth", {{"region", "us"}, {"service", "api"}}, t, 1000);  // excluded by region != us
    w.Append("jobs_total", {}, t, jobs);
  };
  int64_t t = t0;
  for (int i = 0; i < 4; ++i, t += 15'000) feed(t, 12, i);  // 1 job per 15 s: rate 0.067/s
  rules->Evaluate(w, t - 15'000);
  EXPECT_EQ(rules->Status()[0]["state"], "pending");
  EXPECT_DOUBLE_EQ(rules->Status()[0]["value"].get<double>(), 12);
  EXPECT_TRUE(rules->Notifiable().empty());
  for (int i = 4; i < 14; ++i, t += 15'000) feed(t, 12, i);
  rules->Evaluate(w, t - 15'000);
  EXPECT_EQ(rules->Status()[0]["state"], "firing");
  std::vector<controller::Alert> firing = rules->Notifiable();
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].labels.at("alertname"), "QueueDeep");
  EXPECT_EQ(firing[0].labels.at("severity"), "page");
  EXPECT_EQ(firing[0].annotations.at("summary"), "depth 12 on ml");
  // No data (the series go stale): the state is kept, never read as 0.
  rules->Evaluate(w, t + 10 * 60'000);
  EXPECT_EQ(rules->Status()[0]["state"], "firing");
  EXPECT_TRUE(rules->Status()[0].value("no_data", false));
  // Back below the threshold: keep_firing_for 30s, then resolved.
  for (int i = 0; i < 3; ++i, t += 15'000) feed(t + 10 * 60'000, 3, 100 + i);
  int64_t later = t + 10 * 60'000 - 15'000;
  rules->Evaluate(w, later);
  EXPECT_EQ(rules->Status()[0]["state"], "firing");
  feed(later + 45'000, 3, 104);
  rules->Evaluate(w, later + 45'000);
  EXPECT_EQ(rules->Status()[0]["state"], "inactive");
  ASSERT_EQ(rules->Notifiable().size(), 1u);
  EXPECT_EQ(rules->Notifiable()[0].phase, controller::AlertPhase::Resolved);

  // The same rules for Prometheus.
  Diagnostics ed;
  std::string file = controller::PrometheusRuleFile(c.alerts, "plinth", 15'000, ed);
  EXPECT_FALSE(ed.has_errors());
  EXPECT_NE(file.find("      - alert: QueueDeep\n"), std::string::npos) << file;
  EXPECT_NE(file.find(R"x(expr: "((sum(queue_depth{service=\"api\", region!=\"us\"}) > 10) and (sum(rate(jobs_total[1m])) < 5))")x"),
            std::string::npos)
      << file;
  EXPECT_NE(file.find("        for: 2m\n        keep_firing_for: 30s\n"), std::string::npos) << file;
  EXPECT_NE(file.find("          severity: \"page\"\n"), std::string::npos) << file;
  EXPECT_EQ(file.find("s3cret"), std::string::npos);
}

TEST_F(AlertRulesTest, BadBlocksAreLocatedErrors) {
  struct Case {
    std::string text, message;
  } cases[] = {
      {"alert \"A\" {\n  when = metric(\"x\") > 1\n  pending_for = 5\n}\n", "'pending_for' must be a duration"},
      {"alert \"A\" {\n  pending_for = 5s\n}\n", "alert 'A' has no 'when'"},
      {"alert \"a-b\" {\n  when = metric(\"x\") > 1\n}\n", "'a-b' is not a valid name"},
      {"alert \"A\" {\n  when = rate(metric(\"x\"), 0s) > 1\n}\n", "the range must be a duration of at least 1s"},
      {"alert \"A\" {\n  when = rate(\"x\", 1m) > 1\n}\n", "'rate' reads a metric(...) call here"},
      {"alert \"A\" {\n  when = metric(\"9x\") > 1\n}\n", "'9x' is not a metric name"},
      {"alert \"A\" {\n  when = metric(\"x\", {code = \"=~5(\"}) > 1\n}\n", "cannot read this metric"},
      {"alert \"A\" {\n  when = metric(\"x\") > 1s\n}\n", "cannot compare"},
      {"alert \"A\" {\n  when = metric(\"x\") > 1\n}\nalert \"A\" {\n  when = metric(\"y\") > 1\n}\n",
       "alert 'A' is declared twice"},
      {"alert \"A\" {\n  when = metric(\"x\") > 1\n  labels = { alertname = \"B\" }\n}\n", "set by the alert itself"},
      {"notification {\n  receiver = \"nobody\"\n}\nreceiver \"oncall\" {\n  url = \"http://127.0.0.1:9/\"\n}\n",
       "no receiver named 'nobody'"},
      {"receiver \"r\" {\n  url = \"ftp://x\"\n}\n", "must start with http:// or https://"},
      {"notification {\n  receiver = \"r\"\n  route {\n    receiver = \"r\"\n  }\n}\nreceiver \"r\" {\n  url = \"http://x/\"\n}\n",
       "a route needs 'match'"},
      {"policy \"p\" {\n  for_all = bucket\n  require = metric(\"x\") > 1\n}\n", "only alert conditions see"},
      {"receiver \"r\" {\n  url = \"http://x/\"\n  hmac_secret = var.nope\n}\n", "no variable named 'nope'"},
  };
  for (const Case& c : cases) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    Run(c.text);
    EXPECT_TRUE(diags_->has_errors()) << c.text;
    EXPECT_NE(Text().find(c.message), std::string::npos) << c.text << "\n---\n" << Text();
    EXPECT_NE(Text().find("main.plinth:"), std::string::npos) << Text();
  }
}

TEST_F(AlertRulesTest, ValuesNotKnownYetAreHeldBackForTheController) {
  CheckedConfig c = Run(R"(
variable "secret" {
  type      = string
  sensitive = true
}
receiver "r" {
  url         = "http://127.0.0.1:9/"
  hmac_secret = var.secret
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  EXPECT_EQ(c.alerting_unknown, (std::vector<std::string>{"receiver.r.hmac_secret"}));
  ASSERT_EQ(c.receivers.size(), 1u);
  EXPECT_EQ(c.receivers[0].hmac_secret, "");
}

// Self-healing's alert: a replica the controller restarted three times in
// ten minutes fires ReplicaFlapping, per replica slot (autoscale.max counts).
TEST_F(AlertRulesTest, AReplicaRestartedThreeTimesInTenMinutesIsFlapping) {
  CheckedConfig c = Run(R"(
region "eu" {}
service "api" {
  regions  = [region.eu]
  replicas = 1
  port     = 20100
  command  = ["sleep", "600"]
  autoscale {
    min = 1
    max = 2
    target "requests_per_second" {
      average = 10
    }
  }
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  Diagnostics d;
  controller::BuiltinAlerts b;
  controller::AddServiceAlerts(c, *sources_, d, &b);
  ASSERT_FALSE(d.has_errors());
  ASSERT_EQ(b.alerts.size(), 2u);
  EXPECT_EQ(b.alerts[1].labels.at("replica"), "api.eu.1");
  EXPECT_EQ(b.alerts[1].alertname, "ReplicaFlapping");
  std::string error;
  auto rules = controller::AlertRules::Compile(b.alerts, d, &error);
  ASSERT_TRUE(rules) << error;
  metrics::Window w;
  const int64_t t0 = 1'000'000'000;
  for (int i = 0; i <= 4; ++i) {
    const int64_t t = t0 + i * 60'000;
    w.Append("plinth_service_replica_restarts_total", {{"replica", "api.eu.0"}, {"service", "api"}}, t, 1);
    w.Append("plinth_service_replica_restarts_total", {{"replica", "api.eu.1"}, {"service", "api"}}, t, i);
  }
  rules->Evaluate(w, t0 + 4 * 60'000);
  const nlohmann::json st = rules->Status();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0]["state"], "inactive") << st.dump();
  EXPECT_EQ(st[1]["state"], "firing") << st.dump();
  std::vector<controller::Alert> firing = rules->Notifiable();
  ASSERT_EQ(firing.size(), 1u);
  EXPECT_EQ(firing[0].labels.at("replica"), "api.eu.1");
  EXPECT_EQ(firing[0].annotations.at("summary"), "replica api.eu.1 was restarted 4 times in 10 minutes");
}

// A service's flapping block sets what flapping is: 2 restarts in one minute here.
TEST_F(AlertRulesTest, AServicesFlappingBlockSetsTheRestartsAndTheWindow) {
  CheckedConfig c = Run(R"(
region "eu" {}
region "us" {
  host = "127.0.2.1"
}
service "api" {
  regions  = [region.eu, region.us]
  replicas = 1
  port     = 20100
  command  = ["sleep", "600"]
  flapping {
    restarts = 2
    within   = 1m
    remedy   = "move"
  }
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  Diagnostics d;
  controller::BuiltinAlerts b;
  controller::AddServiceAlerts(c, *sources_, d, &b);
  ASSERT_FALSE(d.has_errors());
  ASSERT_EQ(b.alerts.size(), 2u);
  std::string error;
  auto rules = controller::AlertRules::Compile(b.alerts, d, &error);
  ASSERT_TRUE(rules) << error;
  metrics::Window w;
  const int64_t t0 = 1'000'000'000;
  // eu.0: 2 restarts within a minute; us.0: 2 restarts, but 90 s apart.
  for (int i = 0; i <= 6; ++i) {
    const int64_t t = t0 + i * 15'000;
    w.Append("plinth_service_replica_restarts_total", {{"replica", "api.eu.0"}, {"service", "api"}}, t,
             i < 4 ? 0 : 2);
    w.Append("plinth_service_replica_restarts_total", {{"replica", "api.us.0"}, {"service", "api"}}, t,
             i == 0 ? 0 : i < 6 ? 1 : 2);
  }
  rules->Evaluate(w, t0 + 6 * 15'000);
  std::vector<controller::Alert> firing = rules->Notifiable();
  ASSERT_EQ(firing.size(), 1u) << rules->Status().dump();
  EXPECT_EQ(firing[0].labels.at("replica"), "api.eu.0");
  EXPECT_EQ(firing[0].annotations.at("summary"), "replica api.eu.0 was restarted 2 times in 1 minute");
}

// Self-healing's pool alerts: a failed node (health gate or patch) fires
// NodeFailed for ten minutes; a halted patch level fires PatchHalted.
TEST_F(AlertRulesTest, APoolsFailedNodeAndHaltedPatchFire) {
  CheckedConfig c = Run(R"(
region "lab" {}
pool "train" {
  region    = region.lab
  min_nodes = 1
  shape {
    cpus = 1
  }
  patch {
    level   = "v2"
    command = ["./patch.sh"]
  }
}
pool "plain" {
  region = region.lab
  shape {
    cpus = 1
  }
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  Diagnostics d;
  controller::BuiltinAlerts b;
  controller::AddPoolAlerts(c, *sources_, d, &b);
  ASSERT_FALSE(d.has_errors());
  std::vector<std::string> names;
  for (const auto& a : b.alerts) names.push_back(a.alertname + " " + a.labels.at("pool") + " " + a.severity);
  // Pools in the configuration's order; only the patched one has PatchHalted.
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"NodeFailed lab/plain warning", "NodeFailed lab/train warning",
                                             "PatchHalted lab/train critical"}));
  std::string error;
  auto rules = controller::AlertRules::Compile(b.alerts, d, &error);
  ASSERT_TRUE(rules) << error;
  metrics::Window w;
  const int64_t t0 = 1'000'000'000;
  for (int i = 0; i <= 4; ++i) {
    const int64_t t = t0 + i * 60'000;
    w.Append("plinth_compute_node_failures_total", {{"pool", "lab/train"}}, t, i < 3 ? 0 : 1);
    w.Append("plinth_compute_node_failures_total", {{"pool", "lab/plain"}}, t, 2);
    w.Append("plinth_compute_patch_halted", {{"pool", "lab/train"}}, t, i < 4 ? 0 : 1);
  }
  rules->Evaluate(w, t0 + 4 * 60'000);
  std::vector<controller::Alert> firing = rules->Notifiable();
  std::vector<std::string> fired;
  for (const auto& a : firing) fired.push_back(a.labels.at("alertname") + " " + a.labels.at("pool"));
  std::sort(fired.begin(), fired.end());
  // lab/plain's two failures are older than the window's first sample: no increase.
  EXPECT_EQ(fired, (std::vector<std::string>{"NodeFailed lab/train", "PatchHalted lab/train"}));
  for (const auto& a : firing) {
    if (a.labels.at("alertname") != "NodeFailed") continue;
    EXPECT_EQ(a.annotations.at("summary"),
              "1 node(s) of pool lab/train failed in 10 minutes (health gate or patch; see plinth compute "
              "status); replacements are provisioned");
  }
}

// scale_rule blocks (docs/automation.md, "Scale rules"): checked by the
// checker and CheckScaleRules, evaluated as conditions named <rule>.up/.down.
TEST_F(AlertRulesTest, ScaleRulesNameAnAutoscaledServiceAndCompileAsConditions) {
  const std::string service = R"(
region "eu" {}
service "api" {
  regions  = [region.eu]
  replicas = 1
  port     = 20100
  command  = ["sleep", "600"]
  autoscale {
    min = 1
    max = 4
  }
}
service "plain" {
  regions  = [region.eu]
  replicas = 1
  port     = 20200
  command  = ["sleep", "600"]
}
)";
  CheckedConfig c = Run(service + R"(
scale_rule "latency" {
  service   = "api"
  up_when   = histogram_quantile(0.95, metric("req_seconds_bucket", {service = "api"}), 1m) > 0.25
  down_when = histogram_quantile(0.95, metric("req_seconds_bucket", {service = "api"}), 1m) < 0.05
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  ASSERT_EQ(c.scale_rules.size(), 1u);
  EXPECT_EQ(c.scale_rules[0].name, "scale_rule.latency");
  EXPECT_EQ(c.scale_rules[0].service, "api");
  controller::CheckScaleRules(c, *diags_);
  EXPECT_FALSE(diags_->has_errors()) << Text();
  std::vector<AlertInstance> conditions = controller::ScaleRuleConditions(c.scale_rules);
  ASSERT_EQ(conditions.size(), 2u);
  EXPECT_EQ(conditions[0].name, "scale_rule.latency.up");
  EXPECT_EQ(conditions[1].name, "scale_rule.latency.down");
  std::string error;
  Diagnostics d;
  auto rules = controller::AlertRules::Compile(conditions, d, &error);
  ASSERT_TRUE(rules) << error;
  metrics::Window w;
  for (int i = 0; i <= 4; ++i)  // every request in the 0.5 s bucket: p95 ~ 0.49 > 0.25
    for (const char* le : {"0.1", "0.5", "+Inf"})
      w.Append("req_seconds_bucket", {{"le", le}, {"service", "api"}}, 1'000'000 + i * 15'000,
               std::string(le) == "0.1" ? 0 : 10.0 * i);
  rules->Evaluate(w, 1'000'000 + 4 * 15'000);
  EXPECT_EQ(rules->Status()[0]["state"], "firing") << rules->Status().dump();
  EXPECT_EQ(rules->Status()[1]["state"], "inactive") << rules->Status().dump();

  // A service that is not there, one without autoscale, a rule with no condition.
  c = Run(service + R"(
scale_rule "typo" {
  service = "apj"
  up_when = metric("queue_depth") > 10
}
scale_rule "fixed" {
  service = "plain"
  up_when = metric("queue_depth") > 10
}
scale_rule "empty" {
  service = "api"
}
scale_rule "elsewhere" {
  service = "api"
  region  = "us"
  up_when = metric("queue_depth") > 10
}
)");
  EXPECT_NE(Text().find("scale_rule 'empty' has neither 'up_when' nor 'down_when'"), std::string::npos) << Text();
  diags_ = std::make_unique<Diagnostics>();
  controller::CheckScaleRules(c, *diags_);
  EXPECT_NE(Text().find("scale_rule.typo: no service named 'apj' in this configuration"), std::string::npos)
      << Text();
  EXPECT_NE(Text().find("the services here: api, plain"), std::string::npos) << Text();
  EXPECT_NE(Text().find("scale_rule.fixed: service 'plain' has no autoscale block"), std::string::npos) << Text();
  EXPECT_NE(Text().find("scale_rule.elsewhere: service 'api' does not run in region 'us'"), std::string::npos)
      << Text();
  EXPECT_NE(Text().find("its regions: eu"), std::string::npos) << Text();
}

// A scale rule with a value: one metric query the autoscaler keeps at
// `average` per replica; the ways to get it wrong are located errors.
TEST_F(AlertRulesTest, AScaleRuleValueIsOneMetricQueryWithAnAverage) {
  const std::string service = R"(
region "eu" {}
service "api" {
  regions  = [region.eu]
  replicas = 1
  port     = 20100
  command  = ["sleep", "600"]
  autoscale {
    min = 1
    max = 8
  }
}
)";
  CheckedConfig c = Run(service + R"(
scale_rule "queue" {
  service = "api"
  value   = max_over_time(metric("queue_depth", {service = "api"}), 1m)
  average = 10
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  ASSERT_EQ(c.scale_rules.size(), 1u);
  EXPECT_EQ(c.scale_rules[0].average, 10);
  controller::CheckScaleRules(c, *diags_);
  EXPECT_FALSE(diags_->has_errors()) << Text();
  EXPECT_TRUE(controller::ScaleRuleConditions(c.scale_rules).empty());
  std::vector<controller::ScaleValueRule> values = controller::ScaleValueRules(c.scale_rules, *diags_);
  ASSERT_EQ(values.size(), 1u);
  EXPECT_EQ(values[0].rule, "scale_rule.queue");
  EXPECT_EQ(values[0].service, "api");
  EXPECT_EQ(values[0].average, 10);
  metrics::Window w;
  const int64_t t0 = 1'000'000;
  EXPECT_TRUE(std::isnan(controller::QueryValue(values[0].query, values[0].selector, w, t0)))
      << "nothing scraped is no data, never 0";
  w.Append("queue_depth", {{"service", "api"}, {"shard", "a"}}, t0, 20);
  w.Append("queue_depth", {{"service", "api"}, {"shard", "b"}}, t0, 15);
  w.Append("queue_depth", {{"service", "other"}}, t0, 99);
  EXPECT_EQ(controller::QueryValue(values[0].query, values[0].selector, w, t0 + 1000), 35);

  c = Run(service + R"(
scale_rule "no_average" {
  service = "api"
  value   = metric("queue_depth")
}
scale_rule "no_value" {
  service = "api"
  average = 5
}
scale_rule "both" {
  service = "api"
  up_when = metric("queue_depth") > 10
  value   = metric("queue_depth")
  average = 5
}
scale_rule "zero" {
  service = "api"
  value   = metric("queue_depth")
  average = 0
}
)");
  EXPECT_NE(Text().find("scale_rule 'no_average' has 'value' but no 'average'"), std::string::npos) << Text();
  EXPECT_NE(Text().find("scale_rule 'no_value' has 'average' but no 'value'"), std::string::npos) << Text();
  EXPECT_NE(Text().find("scale_rule 'both' has both 'value' and 'up_when'/'down_when'"), std::string::npos) << Text();
  EXPECT_NE(Text().find("'average' must be a number above 0"), std::string::npos) << Text();
  c = Run(service + R"(
scale_rule "sum" {
  service = "api"
  value   = metric("queue_depth") + 1
  average = 5
}
)");
  ASSERT_FALSE(diags_->has_errors()) << Text();
  controller::CheckScaleRules(c, *diags_);
  EXPECT_NE(Text().find("scale_rule.sum: 'value' must be one metric query"), std::string::npos) << Text();
  EXPECT_NE(Text().find("main.plinth:"), std::string::npos) << "located: " << Text();
}

TEST(MetricQuery, KeysAndPromQL) {
  SourceManager sources;
  Diagnostics diags;
  auto parse = [&](const std::string& text) { return ParseExpression(sources.Add("t", text), diags); };
  auto f1 = parse(R"(rate(metric("a_total", {x = "1"}), 60s) > 2)");
  auto f2 = parse(R"(rate(metric("a_total", {x = "=1"}), 1m) > 3)");
  ASSERT_FALSE(diags.has_errors());
  std::vector<rules::MetricQuery> q;
  rules::CollectMetricQueries(*f1, q);
  rules::CollectMetricQueries(*f2, q);
  ASSERT_EQ(q.size(), 1u) << "equal queries share one series";
  EXPECT_EQ(q[0].key, R"(rate(a_total{x="1"}[1m]))");
  EXPECT_EQ(q[0].series.rfind("__metric_", 0), 0u);
  std::string error;
  Range where;
  EXPECT_EQ(rules::ToPromQL(*f1, &error, &where).value_or(error),
            R"x((sum(rate(a_total{x="1"}[1m])) > 2))x");
  auto f3 = parse(R"(!(metric("a") > 1))");
  EXPECT_FALSE(rules::ToPromQL(*f3, &error, &where));
  EXPECT_EQ(rules::PromDuration(90'000), "90s");
  EXPECT_EQ(rules::PromDuration(7'200'000), "2h");
  EXPECT_EQ(controller::RenderAlertTemplate("v={{$value}} a={{ $labels.a }} b={{ $labels.b }} {{ other }}", 2.5,
                                            {{"a", "x"}}),
            "v=2.5 a=x b= {{ other }}");
}

}  // namespace
}  // namespace plinth
