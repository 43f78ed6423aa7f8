// Alerts and notifications (runtime/controller/alerts.h, notify.h,
// alertmanager.h): Prometheus alert semantics, and the Notifier on a
// ManualClock delivering to a real HTTP receiver on 127.0.0.1 — grouping,
// group_wait/group_interval/repeat_interval, resolutions, HMAC signatures,
// retries with back-off, restarts on the same database, silences and a storm.
// AlertmanagerClient.RealAlertmanager runs against a real Alertmanager when
// PLINTH_ALERTMANAGER_URL is set (scripts/alertmanager-test.sh).
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/controller/alertmanager.h"
#include "runtime/controller/alerts.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/http_server.h"
#include "runtime/controller/notify.h"
#include "runtime/s3/http.h"

namespace plinth::controller {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr const char* kToken = "receiver-token";

Labels JsonToLabels(const json& j) {
  Labels l;
  for (auto it = j.begin(); it != j.end(); ++it) l[it.key()] = it.value().get<std::string>();
  return l;
}

// A webhook receiver on 127.0.0.1 that records every POST to /hook.
class WebhookSink {
 public:
  struct Got {
    json body;
    std::string raw;
    std::map<std::string, std::string> headers;
  };
  // port 0: any free port.
  explicit WebhookSink(int port = 0, int status = 200) : status_(status) {
    HttpServerOptions o;
    o.port = port;
    o.token = kToken;
    o.max_request_bytes = 8 << 20;
    server_ = std::make_unique<HttpServer>(o);
    server_->Post("/hook", [this](const HttpRequest& r) {
      std::lock_guard<std::mutex> lock(mu_);
      got_.push_back({json::parse(r.body, nullptr, false), r.body, r.headers});
      HttpResponse resp;
      resp.status = status_;
      return resp;
    });
    std::string error;
    started_ = server_->Start(&error);
    EXPECT_TRUE(started_) << error;
  }
  bool started() const { return started_; }
  int port() const { return server_->port(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()) + "/hook"; }
  std::vector<Got> got() {
    std::lock_guard<std::mutex> lock(mu_);
    return got_;
  }
  size_t count() { return got().size(); }
  void Stop() { server_->Stop(); }

 private:
  std::unique_ptr<HttpServer> server_;
  std::mutex mu_;
  std::vector<Got> got_;
  int status_;
  bool started_ = false;
};

// A port nothing listens on (bound by the kernel, then released).
int FreePort() {
  WebhookSink r;
  int p = r.port();
  r.Stop();
  return p;
}

class NotifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("plinth-notify-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  NotifierOptions Options(const std::string& url, const std::string& secret = "") {
    NotifierOptions o;
    o.database = dir_ / "notify.db";
    Receiver r;
    r.name = "team";
    r.url = url;
    r.hmac_secret = secret;
    r.bearer_token = kToken;
    o.receivers.push_back(r);
    o.route.receiver = "team";
    o.route.group_by = {"alertname"};
    o.external_url = "http://127.0.0.1:7000";
    o.retry_initial = seconds(1);
    o.retry_max = seconds(8);
    return o;
  }
  std::unique_ptr<Notifier> Open(NotifierOptions o) {
    std::string error;
    auto n = Notifier::Open(std::move(o), clock_, &error);
    EXPECT_NE(n, nullptr) << error;
    return n;
  }
  Alert Firing(const std::string& name, Labels extra) {
    Alert a;
    a.name = name;
    a.labels = std::move(extra);
    a.labels["alertname"] = name;
    a.annotations["summary"] = name + " is firing";
    a.phase = AlertPhase::Firing;
    a.active_at_ms = a.starts_at_ms = clock_.WallMs();
    a.fingerprint = Fingerprint(a.labels);
    return a;
  }
  Alert Resolved(Alert a) {
    a.phase = AlertPhase::Resolved;
    a.ends_at_ms = clock_.WallMs();
    return a;
  }
  std::vector<Alert> Three() {
    return {Firing("HighLatency", {{"replica", "1"}}), Firing("HighLatency", {{"replica", "2"}}),
            Firing("HighLatency", {{"replica", "3"}})};
  }
  void Advance(milliseconds d) { clock_.Advance(d); }

  fs::path dir_;
  ManualClock clock_;
};

// ---------------------------------------------------------------- AlertSet

TEST(AlertSet, PendingFiringKeepFiringResolved) {
  AlertRule rule;
  rule.name = "DiskFull";
  rule.for_ms = 60'000;
  rule.keep_firing_for_ms = 30'000;
  rule.severity = "page";
  rule.labels = {{"team", "storage"}};
  AlertSet set(rule);
  set.Evaluate(true, 0);
  ASSERT_EQ(set.Alerts().size(), 1u);
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Pending);
  EXPECT_TRUE(set.Notifiable().empty());
  set.Evaluate(true, 59'999);
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Pending);
  set.Evaluate(true, 60'000);
  Alert a = set.Alerts()[0];
  EXPECT_EQ(a.phase, AlertPhase::Firing);
  EXPECT_EQ(a.starts_at_ms, 60'000);
  EXPECT_EQ(a.active_at_ms, 0);
  EXPECT_EQ(a.labels.at("alertname"), "DiskFull");
  EXPECT_EQ(a.labels.at("severity"), "page");
  EXPECT_EQ(a.labels.at("team"), "storage");
  // keep_firing_for: inactive for less than 30 s keeps it firing.
  set.Evaluate(false, 70'000);
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Firing);
  set.Evaluate(true, 80'000);  // active again: the inactive streak is forgotten
  set.Evaluate(false, 90'000);
  set.Evaluate(false, 119'999);
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Firing);
  set.Evaluate(false, 120'000);
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Resolved);
  EXPECT_EQ(set.Alerts()[0].ends_at_ms, 120'000);
  EXPECT_EQ(set.Notifiable().size(), 1u);
  // Active again after resolving: a new pending streak.
  set.Evaluate(true, 130'000);
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Pending);
  EXPECT_EQ(set.Alerts()[0].active_at_ms, 130'000);
  // Pending and inactive: dropped, never notified.
  set.Evaluate(false, 140'000);
  EXPECT_TRUE(set.Alerts().empty());
}

TEST(AlertSet, ResolvedKeptForRetentionThenForgotten) {
  AlertRule rule;
  rule.name = "X";
  rule.resolved_retention_ms = 1000;
  AlertSet set(rule);
  set.Evaluate(true, 0);  // for = 0: firing at once
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Firing);
  set.Evaluate(false, 10);  // keep_firing_for = 0: resolves at once
  EXPECT_EQ(set.Alerts()[0].phase, AlertPhase::Resolved);
  set.Evaluate(false, 1009);
  EXPECT_EQ(set.Alerts().size(), 1u);
  set.Evaluate(false, 1010);
  EXPECT_TRUE(set.Alerts().empty());
}

TEST(AlertSet, OneInstancePerLabelSetAndStableFingerprints) {
  AlertRule rule;
  rule.name = "ReplicaDown";
  AlertSet set(rule);
  set.Evaluate(std::vector<Labels>{{{"replica", "1"}}, {{"replica", "2"}}}, 0);
  ASSERT_EQ(set.Alerts().size(), 2u);
  set.Evaluate(std::vector<Labels>{{{"replica", "2"}}}, 1);  // replica 1 absent: inactive
  auto alerts = set.Alerts();
  ASSERT_EQ(alerts.size(), 2u);
  for (const Alert& a : alerts)
    EXPECT_EQ(a.phase, a.labels.at("replica") == "1" ? AlertPhase::Resolved : AlertPhase::Firing);
  EXPECT_EQ(Fingerprint({{"a", "1"}, {"b", "2"}}), Fingerprint({{"b", "2"}, {"a", "1"}}));
  EXPECT_NE(Fingerprint({{"a", "1"}, {"b", "2"}}), Fingerprint({{"a", "12"}}));
  EXPECT_NE(Fingerprint({{"ab", ""}}), Fingerprint({{"a", "b"}}));
  EXPECT_EQ(Fingerprint({}).size(), 16u);
}

// A restarted (or reloaded) controller carries its alert states over: a
// pending alert keeps its `for` progress, a firing one its start, and one that
// cleared while no controller ran resolves at the next evaluation.
TEST(AlertSet, StatesCarryOverAcrossARestart) {
  AlertRule rule;
  rule.name = "ReplicaDown";
  rule.for_ms = 60'000;
  AlertSet before(rule);
  before.Evaluate(std::vector<Labels>{{{"replica", "1"}}, {{"replica", "2"}}}, 0);
  before.Evaluate(std::vector<Labels>{{{"replica", "1"}}, {{"replica", "2"}}}, 60'000);  // both firing
  before.Evaluate(std::vector<Labels>{{{"replica", "1"}}, {{"replica", "2"}}, {{"replica", "3"}}}, 70'000);
  const nlohmann::json state = before.State();
  ASSERT_EQ(state.size(), 3u) << state.dump();

  AlertSet after(rule);
  after.Restore(nlohmann::json::parse(state.dump()));
  auto alerts = after.Alerts();
  ASSERT_EQ(alerts.size(), 3u);
  std::map<std::string, Alert> by;
  for (const Alert& a : alerts) by[a.labels.at("replica")] = a;
  EXPECT_EQ(by["1"].phase, AlertPhase::Firing);
  EXPECT_EQ(by["1"].starts_at_ms, 60'000);
  for (const Alert& a : before.Alerts()) EXPECT_EQ(by[a.labels.at("replica")].fingerprint, a.fingerprint);
  EXPECT_EQ(by["3"].phase, AlertPhase::Pending);
  EXPECT_EQ(after.Notifiable().size(), 2u);
  // The next evaluation: 1 still active, 2 cleared while down (resolved and notified), 3 fires on time.
  after.Evaluate(std::vector<Labels>{{{"replica", "1"}}, {{"replica", "3"}}}, 130'000);
  by.clear();
  for (const Alert& a : after.Alerts()) by[a.labels.at("replica")] = a;
  EXPECT_EQ(by["1"].phase, AlertPhase::Firing);
  EXPECT_EQ(by["1"].starts_at_ms, 60'000);
  EXPECT_EQ(by["2"].phase, AlertPhase::Resolved);
  EXPECT_EQ(by["2"].ends_at_ms, 130'000);
  EXPECT_EQ(by["3"].phase, AlertPhase::Firing);
  EXPECT_EQ(by["3"].active_at_ms, 70'000);
  // Nothing readable: no instance.
  AlertSet empty(rule);
  empty.Restore(nlohmann::json::parse(R"([{"labels": {"a": 1}}, {"phase": "firing"}, 7, {"labels": {}, "phase": "x"}])"));
  EXPECT_TRUE(empty.Alerts().empty());
}

// ---------------------------------------------------------------- matchers

TEST(Matchers, ParseAndMatch) {
  Matcher m;
  std::string error;
  ASSERT_TRUE(ParseMatcher("severity=\"page\"", &m, &error)) << error;
  EXPECT_EQ(m.op, Matcher::Op::Eq);
  EXPECT_EQ(m.value, "page");
  ASSERT_TRUE(ParseMatcher("team!=db", &m, &error));
  EXPECT_EQ(m.op, Matcher::Op::Ne);
  EXPECT_TRUE(MatchesAll({m}, {{"team", "web"}}));
  EXPECT_FALSE(MatchesAll({m}, {{"team", "db"}}));
  ASSERT_TRUE(ParseMatcher("instance=~\"node-[0-9]+\"", &m, &error));
  EXPECT_TRUE(MatchesAll({m}, {{"instance", "node-12"}}));
  EXPECT_FALSE(MatchesAll({m}, {{"instance", "xnode-12"}}));  // anchored
  ASSERT_TRUE(ParseMatcher("instance!~node.*", &m, &error));
  EXPECT_TRUE(MatchesAll({m}, {{"instance", "db-1"}}));
  EXPECT_FALSE(ParseMatcher("1x=\"a\"", &m, &error));
  EXPECT_NE(error.find("label name"), std::string::npos);
  EXPECT_FALSE(ParseMatcher("x<3", &m, &error));
  EXPECT_FALSE(ParseMatcher("x=~\"(\"", &m, &error));
  EXPECT_NE(error.find("regular expression"), std::string::npos);
}

TEST(Hmac, Rfc4231TestCase2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

// ---------------------------------------------------------------- Notifier

TEST_F(NotifyTest, GroupWaitThenOneNotificationForThree) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  n->Put(Three());
  n->Tick();
  EXPECT_EQ(rx.count(), 0u);
  Advance(seconds(29));
  n->Tick();
  EXPECT_EQ(rx.count(), 0u);  // group_wait is 30 s
  EXPECT_EQ(n->NextWakeMs(), clock_.WallMs() + 1000);
  Advance(seconds(1));
  EXPECT_EQ(n->Tick(), 1);
  auto got = rx.got();
  ASSERT_EQ(got.size(), 1u);
  const json& p = got[0].body;
  EXPECT_EQ(p["version"], "4");
  EXPECT_EQ(p["status"], "firing");
  EXPECT_EQ(p["receiver"], "team");
  EXPECT_EQ(p["groupKey"], "{}:{alertname=\"HighLatency\"}");
  EXPECT_EQ(p["groupLabels"], json({{"alertname", "HighLatency"}}));
  EXPECT_EQ(p["commonLabels"], json({{"alertname", "HighLatency"}}));
  EXPECT_EQ(p["commonAnnotations"], json({{"summary", "HighLatency is firing"}}));
  EXPECT_EQ(p["externalURL"], "http://127.0.0.1:7000");
  EXPECT_EQ(p["truncatedAlerts"], 0);
  ASSERT_EQ(p["alerts"].size(), 3u);
  std::set<std::string> replicas;
  for (const json& a : p["alerts"]) {
    EXPECT_EQ(a["status"], "firing");
    EXPECT_EQ(a["endsAt"], "0001-01-01T00:00:00Z");
    EXPECT_EQ(a["startsAt"], "2023-11-14T22:13:20.000Z");
    EXPECT_EQ(a["fingerprint"], Fingerprint(JsonToLabels(a["labels"])));
    replicas.insert(a["labels"]["replica"].get<std::string>());
  }
  EXPECT_EQ(replicas, (std::set<std::string>{"1", "2", "3"}));
  EXPECT_EQ(got[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(got[0].headers.count("x-plinth-signature"), 0u);
  // Nothing changed: no second notification on later flushes.
  for (int i = 0; i < 5; ++i) {
    Advance(minutes(5));
    n->Tick();
  }
  EXPECT_EQ(rx.count(), 1u);
  EXPECT_EQ(n->stats().delivered, 1);
}

TEST_F(NotifyTest, NewAlertInGroupWaitsGroupInterval) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  n->Put(Three());
  Advance(seconds(30));
  n->Tick();  // first flush at 30 s
  ASSERT_EQ(rx.count(), 1u);
  Advance(seconds(30));  // 60 s: a fourth alert
  n->Put({Firing("HighLatency", {{"replica", "4"}})});
  n->Tick();
  EXPECT_EQ(rx.count(), 1u);
  Advance(minutes(5) - seconds(31));  // 30 s + 5 m - 1 s
  n->Tick();
  EXPECT_EQ(rx.count(), 1u);
  Advance(seconds(1));  // 30 s + 5 m
  n->Tick();
  ASSERT_EQ(rx.count(), 2u);
  EXPECT_EQ(rx.got()[1].body["alerts"].size(), 4u);
}

TEST_F(NotifyTest, RepeatAfterRepeatIntervalAndNotBefore) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  auto alerts = Three();
  n->Put(alerts);
  Advance(seconds(30));
  n->Tick();
  ASSERT_EQ(rx.count(), 1u);
  // Flushes every 5 minutes; the 48th is 4 h after the delivery.
  for (int k = 1; k < 48; ++k) {
    Advance(minutes(5));
    n->Put(alerts);  // the controller keeps re-sending the same firing alerts
    n->Tick();
    ASSERT_EQ(rx.count(), 1u) << "flush " << k;
  }
  Advance(minutes(5));
  n->Tick();
  ASSERT_EQ(rx.count(), 2u);
  EXPECT_EQ(rx.got()[1].body["alerts"].size(), 3u);
  Advance(minutes(5));
  n->Tick();
  EXPECT_EQ(rx.count(), 2u);
}

TEST_F(NotifyTest, ResolvedIsSent) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  auto alerts = Three();
  n->Put(alerts);
  Advance(seconds(30));
  n->Tick();
  ASSERT_EQ(rx.count(), 1u);
  Advance(minutes(1));
  // One resolves: a notification listing it as resolved at the next flush.
  n->Put({Resolved(alerts[0])});
  Advance(minutes(4));
  n->Tick();
  ASSERT_EQ(rx.count(), 2u);
  json p = rx.got()[1].body;
  EXPECT_EQ(p["status"], "firing");
  ASSERT_EQ(p["alerts"].size(), 3u);
  int resolved = 0;
  for (const json& a : p["alerts"])
    if (a["status"] == "resolved") {
      ++resolved;
      EXPECT_EQ(a["labels"]["replica"], "1");
      EXPECT_EQ(a["endsAt"], "2023-11-14T22:14:50.000Z");  // 30 s + 1 m after the start
    }
  EXPECT_EQ(resolved, 1);
  // The rest resolve: an all-resolved notification, then the group is gone.
  n->Put({Resolved(alerts[1]), Resolved(alerts[2])});
  Advance(minutes(5));
  n->Tick();
  ASSERT_EQ(rx.count(), 3u);
  p = rx.got()[2].body;
  EXPECT_EQ(p["status"], "resolved");
  EXPECT_EQ(p["alerts"].size(), 2u);  // the first was removed after its resolution was flushed
  EXPECT_EQ(n->stats().groups, 0u);
  Advance(minutes(5));
  n->Tick();
  EXPECT_EQ(rx.count(), 3u);
}

TEST_F(NotifyTest, HmacSignatureVerifiedByReceiver) {
  WebhookSink rx;
  const std::string secret = "s3cret-for-webhooks";
  auto n = Open(Options(rx.url(), secret));
  n->Put(Three());
  Advance(seconds(30));
  n->Tick();
  auto got = rx.got();
  ASSERT_EQ(got.size(), 1u);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(got[0].raw.data()), got[0].raw.size(), mac, &len);
  std::string hex;
  char b[3];
  for (unsigned i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", mac[i]);
    hex += b;
  }
  EXPECT_EQ(got[0].headers.at("x-plinth-signature"), "sha256=" + hex);
  // A different secret does not verify.
  EXPECT_NE(got[0].headers.at("x-plinth-signature"), "sha256=" + HmacSha256Hex("other", got[0].raw));
  // The secret is stored nowhere in the database.
  n.reset();
  for (const char* f : {"notify.db", "notify.db-wal"}) {
    if (!fs::exists(dir_ / f)) continue;
    std::ifstream in(dir_ / f, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(all.find(secret), std::string::npos) << f;
    EXPECT_EQ(all.find(kToken), std::string::npos) << f;
  }
}

TEST_F(NotifyTest, ReceiverDownRetriesWithBackoffThenDelivers) {
  int port = FreePort();
  auto n = Open(Options("http://127.0.0.1:" + std::to_string(port) + "/hook"));
  n->Put(Three());
  Advance(seconds(30));
  EXPECT_EQ(n->Tick(), 0);  // connection refused
  NotifierStats s = n->stats();
  EXPECT_EQ(s.failed_attempts, 1);
  EXPECT_EQ(s.outbox, 1u);
  EXPECT_NE(s.last_error.find("attempt 1"), std::string::npos) << s.last_error;
  // Back-off 1 s, 2 s, 4 s, 8 s, then capped at 8 s.
  int64_t expect[] = {1000, 2000, 4000, 8000, 8000, 8000};
  for (int i = 0; i < 6; ++i) {
    int64_t wake = *n->NextWakeMs();
    EXPECT_EQ(wake - clock_.WallMs(), expect[i]) << "attempt " << i + 1;
    Advance(milliseconds(expect[i] - 1));
    n->Tick();
    EXPECT_EQ(n->stats().failed_attempts, i + 1);  // not before the back-off
    Advance(milliseconds(1));
    n->Tick();
    EXPECT_EQ(n->stats().failed_attempts, i + 2);
  }
  // A receiver that answers 500 is retried too.
  WebhookSink failing(port, 500);
  ASSERT_TRUE(failing.started());
  Advance(seconds(8));
  n->Tick();
  EXPECT_EQ(failing.count(), 1u);
  EXPECT_EQ(n->stats().failed_attempts, 8);
  EXPECT_NE(n->stats().last_error.find("HTTP 500"), std::string::npos);
  failing.Stop();
  // Up again: delivered once at the next attempt.
  WebhookSink rx(port);
  ASSERT_TRUE(rx.started());
  Advance(seconds(8));
  EXPECT_EQ(n->Tick(), 1);
  EXPECT_EQ(rx.count(), 1u);
  EXPECT_EQ(rx.got()[0].body["alerts"].size(), 3u);
  EXPECT_EQ(n->stats().outbox, 0u);
  Advance(minutes(5));
  n->Tick();
  EXPECT_EQ(rx.count(), 1u);
}

TEST_F(NotifyTest, RestartDeliversPendingAndDoesNotRepeatDelivered) {
  int port = FreePort();
  std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  {
    auto n = Open(Options(url));
    n->Put(Three());
    Advance(seconds(30));
    n->Tick();  // receiver down: stays in the outbox
    EXPECT_EQ(n->stats().outbox, 1u);
  }  // the controller stops
  WebhookSink rx(port);
  ASSERT_TRUE(rx.started());
  {
    auto n = Open(Options(url));  // a new controller, the same database
    EXPECT_EQ(n->stats().outbox, 1u);
    Advance(seconds(1));
    EXPECT_EQ(n->Tick(), 1);
    ASSERT_EQ(rx.count(), 1u);
    EXPECT_EQ(rx.got()[0].body["alerts"].size(), 3u);
  }
  {
    auto n = Open(Options(url));  // and again: the delivery is remembered
    for (int i = 0; i < 3; ++i) {
      Advance(minutes(5));
      n->Put(Three());
      n->Tick();
    }
    EXPECT_EQ(rx.count(), 1u);
    EXPECT_EQ(n->stats().delivered, 1);
    // A timer kept across the restart: a new alert still groups and waits
    // for the group's interval, not group_wait.
    n->Put({Firing("HighLatency", {{"replica", "9"}})});
    Advance(minutes(5));
    n->Tick();
    EXPECT_EQ(rx.count(), 2u);
  }
}

TEST_F(NotifyTest, SilenceHoldsAndExpires) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  std::string error;
  Silence s;
  Matcher m;
  ASSERT_TRUE(ParseMatcher("alertname=\"HighLatency\"", &m, &error));
  s.matchers = {m};
  s.ends_at_ms = clock_.WallMs() + 3600'000;
  s.created_by = "ops";
  s.comment = "maintenance";
  auto id = n->AddSilence(s, &error);
  ASSERT_TRUE(id) << error;
  ASSERT_EQ(n->Silences(false).size(), 1u);
  EXPECT_EQ(n->Silences(false)[0].created_by, "ops");
  n->Put(Three());
  n->Put({Firing("DiskFull", {})});
  Advance(seconds(30));
  n->Tick();
  // Only the unsilenced group is notified.
  ASSERT_EQ(rx.count(), 1u);
  EXPECT_EQ(rx.got()[0].body["groupLabels"]["alertname"], "DiskFull");
  EXPECT_EQ(n->stats().silenced, 3);
  for (int i = 0; i < 11; ++i) {  // up to 55 m 30 s: still silenced
    Advance(minutes(5));
    n->Tick();
  }
  EXPECT_EQ(rx.count(), 1u);
  Advance(minutes(5));  // 60 m 30 s: the silence ended
  n->Tick();
  ASSERT_EQ(rx.count(), 2u);
  EXPECT_EQ(rx.got()[1].body["groupLabels"]["alertname"], "HighLatency");
  EXPECT_TRUE(n->Silences(false).empty());
  EXPECT_EQ(n->Silences(true).size(), 1u);

  // Expiring by hand ends it at once; a second expiry is an error.
  Silence s2 = s;
  s2.matchers[0].value = "DiskFull";
  s2.ends_at_ms = clock_.WallMs() + 3600'000;
  auto id2 = n->AddSilence(s2, &error);
  ASSERT_TRUE(id2) << error;
  EXPECT_TRUE(n->Silenced({{"alertname", "DiskFull"}}));
  ASSERT_TRUE(n->ExpireSilence(*id2, &error)) << error;
  EXPECT_FALSE(n->Silenced({{"alertname", "DiskFull"}}));
  EXPECT_FALSE(n->ExpireSilence(*id2, &error));
  EXPECT_NE(error.find("no active or pending silence"), std::string::npos);
}

TEST_F(NotifyTest, SilenceAddedByAnotherProcessHolds) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  NotifierOptions only;  // what a `plinth alert silence add` would open
  only.database = dir_ / "notify.db";
  auto cli = Open(only);
  ASSERT_NE(cli, nullptr);
  std::string error;
  Silence s;
  Matcher m;
  ASSERT_TRUE(ParseMatcher("replica=~\"[12]\"", &m, &error));
  s.matchers = {m};
  s.ends_at_ms = clock_.WallMs() + 3600'000;
  ASSERT_TRUE(cli->AddSilence(s, &error)) << error;
  cli->Put(Three());  // ignored: no receivers
  EXPECT_EQ(cli->stats().groups, 0u);
  n->Put(Three());
  Advance(seconds(30));
  EXPECT_EQ(cli->Tick(), 0);  // does not run the controller's group timers
  n->Tick();
  ASSERT_EQ(rx.count(), 1u);
  ASSERT_EQ(rx.got()[0].body["alerts"].size(), 1u);  // replicas 1 and 2 silenced
  EXPECT_EQ(rx.got()[0].body["alerts"][0]["labels"]["replica"], "3");
  ASSERT_EQ(cli->Silences(false).size(), 1u);
  ASSERT_TRUE(cli->ExpireSilence(cli->Silences(false)[0].id, &error)) << error;
  Advance(minutes(5));
  n->Tick();  // expired: replicas 1 and 2 are new firing alerts for the receiver
  ASSERT_EQ(rx.count(), 2u);
  EXPECT_EQ(rx.got()[1].body["alerts"].size(), 3u);
}

TEST_F(NotifyTest, SilenceChecks) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  std::string error;
  Silence s;
  s.ends_at_ms = clock_.WallMs() + 1000;
  EXPECT_FALSE(n->AddSilence(s, &error));
  EXPECT_NE(error.find("at least one matcher"), std::string::npos);
  Matcher m;
  ASSERT_TRUE(ParseMatcher("team=~\".*\"", &m, &error));
  s.matchers = {m};
  EXPECT_FALSE(n->AddSilence(s, &error));
  EXPECT_NE(error.find("every alert"), std::string::npos);
  ASSERT_TRUE(ParseMatcher("team=\"db\"", &m, &error));
  s.matchers = {m};
  s.ends_at_ms = clock_.WallMs() - 1;
  EXPECT_FALSE(n->AddSilence(s, &error));
  // A silence that starts later holds only from then.
  s.starts_at_ms = clock_.WallMs() + 60'000;
  s.ends_at_ms = clock_.WallMs() + 120'000;
  ASSERT_TRUE(n->AddSilence(s, &error)) << error;
  EXPECT_FALSE(n->Silenced({{"team", "db"}}));
  Advance(minutes(1));
  EXPECT_TRUE(n->Silenced({{"team", "db"}}));
  EXPECT_FALSE(n->Silenced({{"team", "web"}}));
}

TEST_F(NotifyTest, StormOfAThousandIsOneNotification) {
  WebhookSink rx;
  auto n = Open(Options(rx.url()));
  std::vector<Alert> storm;
  for (int i = 0; i < 1000; ++i) storm.push_back(Firing("ReplicaDown", {{"replica", std::to_string(i)}}));
  n->Put(storm);
  EXPECT_EQ(n->stats().groups, 1u);
  Advance(seconds(30));
  EXPECT_EQ(n->Tick(), 1);
  ASSERT_EQ(rx.count(), 1u);
  EXPECT_EQ(rx.got()[0].body["alerts"].size(), 1000u);
  Advance(minutes(5));
  n->Tick();
  EXPECT_EQ(rx.count(), 1u);
}

TEST_F(NotifyTest, BoundsCountWhatTheyDrop) {
  auto o = Options("http://127.0.0.1:" + std::to_string(FreePort()) + "/hook");
  o.max_alerts = 5;
  o.max_outbox = 2;
  auto n = Open(o);
  std::vector<Alert> alerts;
  for (int i = 0; i < 7; ++i) alerts.push_back(Firing("A" + std::to_string(i), {}));
  n->Put(alerts);
  EXPECT_EQ(n->stats().dropped_alerts, 2);
  EXPECT_EQ(n->stats().groups, 5u);
  Advance(seconds(30));
  n->Tick();  // five notifications, receiver down, room for two
  EXPECT_EQ(n->stats().outbox, 2u);
  EXPECT_EQ(n->stats().dropped_notifications, 3);
  // One failed request per receiver and Tick: the second waits.
  EXPECT_EQ(n->stats().failed_attempts, 1);
  Advance(seconds(1));
  n->Tick();
  EXPECT_EQ(n->stats().failed_attempts, 2);
}

TEST_F(NotifyTest, ChildRoutesAndMaxAlerts) {
  WebhookSink rx;
  auto o = Options(rx.url());
  Receiver pager = o.receivers[0];
  pager.name = "pager";
  pager.max_alerts = 2;
  o.receivers.push_back(pager);
  Route page;
  page.receiver = "pager";
  Matcher m;
  std::string error;
  ASSERT_TRUE(ParseMatcher("severity=\"page\"", &m, &error));
  page.matchers = {m};
  page.group_by = {"alertname"};
  page.group_wait = seconds(0);
  o.routes.push_back(page);
  auto n = Open(o);
  n->Put({Firing("Down", {{"severity", "page"}, {"i", "1"}}),
          Firing("Down", {{"severity", "page"}, {"i", "2"}}),
          Firing("Down", {{"severity", "page"}, {"i", "3"}}), Firing("Slow", {{"severity", "ticket"}})});
  n->Tick();  // group_wait 0 on the paging route
  auto got = rx.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].body["receiver"], "pager");
  EXPECT_EQ(got[0].body["groupKey"], "{}/{severity=\"page\"}:{alertname=\"Down\"}");
  EXPECT_EQ(got[0].body["alerts"].size(), 2u);
  EXPECT_EQ(got[0].body["truncatedAlerts"], 1);
  Advance(seconds(30));
  n->Tick();
  got = rx.got();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].body["receiver"], "team");
}

TEST_F(NotifyTest, ConfigurationErrors) {
  std::string error;
  auto o = Options("http://127.0.0.1:1/hook");
  o.route.receiver = "nobody";
  EXPECT_EQ(Notifier::Open(o, clock_, &error), nullptr);
  EXPECT_NE(error.find("'nobody'"), std::string::npos);
  o = Options("ftp://x");
  EXPECT_EQ(Notifier::Open(o, clock_, &error), nullptr);
  EXPECT_NE(error.find("http://"), std::string::npos);
  o = Options("http://127.0.0.1:1/hook");
  o.route.group_interval = milliseconds(0);
  EXPECT_EQ(Notifier::Open(o, clock_, &error), nullptr);
  o = Options("http://127.0.0.1:1/hook");
  auto n = Notifier::Open(o, clock_, &error);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(fs::status(dir_ / "notify.db").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
}

// ---------------------------------------------------------------- Alertmanager

TEST(AlertmanagerClient, Payload) {
  Alert a;
  a.labels = {{"alertname", "X"}, {"team", "db"}};
  a.annotations = {{"summary", "s"}};
  a.phase = AlertPhase::Firing;
  a.starts_at_ms = 1'700'000'000'000;
  Alert r = a;
  r.labels["team"] = "web";
  r.phase = AlertPhase::Resolved;
  r.ends_at_ms = 1'700'000'060'000;
  Alert p = a;
  p.phase = AlertPhase::Pending;
  AlertmanagerClientOptions o;
  o.validity_ms = 240'000;
  json j = json::parse(AlertmanagerPayload({a, r, p}, 1'700'000'000'000, o));
  ASSERT_EQ(j.size(), 2u);
  EXPECT_EQ(j[0]["labels"]["team"], "db");
  EXPECT_EQ(j[0]["startsAt"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(j[0]["endsAt"], "2023-11-14T22:17:20.000Z");
  EXPECT_EQ(j[1]["endsAt"], "2023-11-14T22:14:20.000Z");
}

// Needs a running Alertmanager: scripts/alertmanager-test.sh starts one and
// sets PLINTH_ALERTMANAGER_URL.
TEST(AlertmanagerClient, RealAlertmanager) {
  const char* url = std::getenv("PLINTH_ALERTMANAGER_URL");
  if (!url || !*url)
    GTEST_SKIP() << "PLINTH_ALERTMANAGER_URL is not set (scripts/alertmanager-test.sh sets it)";
  AlertRule rule;
  rule.name = "PlinthTestAlert";
  rule.severity = "warning";
  rule.annotations = {{"summary", "sent by the controller's Alertmanager client"}};
  AlertSet set(rule);
  SystemClock clock;
  int64_t now = clock.WallMs();
  set.Evaluate(std::vector<Labels>{{{"replica", "1"}}, {{"replica", "2"}}}, now);
  AlertmanagerClientOptions o;
  o.base_url = url;
  o.generator_url = "http://127.0.0.1/plinth";
  std::string error;
  ASSERT_TRUE(PostAlerts(set.Notifiable(), now, o, &error)) << error;
  // Alertmanager's own API lists them.
  s3::HttpRequest req;
  req.method = "GET";
  req.url = std::string(url) + "/api/v2/alerts?filter=alertname%3D%22PlinthTestAlert%22";
  s3::HttpResponse resp = s3::CurlTransport().Send(req);
  ASSERT_EQ(resp.status, 200) << resp.transport_error << resp.body;
  json got = json::parse(resp.body);
  std::set<std::string> replicas;
  for (const json& a : got) {
    EXPECT_EQ(a["labels"]["severity"], "warning");
    EXPECT_EQ(a["status"]["state"], "active");
    replicas.insert(a["labels"]["replica"].get<std::string>());
  }
  EXPECT_EQ(replicas, (std::set<std::string>{"1", "2"}));
  // A bad request is reported with Alertmanager's answer.
  Alert bad;
  bad.phase = AlertPhase::Firing;  // no labels: Alertmanager refuses it
  EXPECT_FALSE(PostAlerts({bad}, now, o, &error));
  EXPECT_NE(error.find("HTTP 400"), std::string::npos) << error;
}

}  // namespace
}  // namespace plinth::controller
