#include "runtime/controller/notify.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/controller/controller.h"
#include "runtime/crypto/aead.h"
#include "runtime/io/durable.h"
#include "runtime/io/sqlite.h"
#include "runtime/s3/http.h"

namespace plinth::controller {
namespace {

using nlohmann::json;

bool ValidLabelName(std::string_view n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

const char* OpText(Matcher::Op op) {
  switch (op) {
    case Matcher::Op::Eq: return "=";
    case Matcher::Op::Ne: return "!=";
    case Matcher::Op::Re: return "=~";
    case Matcher::Op::NotRe: return "!~";
  }
  return "=";
}

bool Matches(const Matcher& m, const Labels& labels) {
  auto it = labels.find(m.name);
  const std::string& v = it == labels.end() ? std::string() : it->second;
  switch (m.op) {
    case Matcher::Op::Eq: return v == m.value;
    case Matcher::Op::Ne: return v != m.value;
    case Matcher::Op::Re:
    case Matcher::Op::NotRe: {
      RE2 re(m.value, RE2::Quiet);
      if (!re.ok()) return false;
      bool full = RE2::FullMatch(v, re);
      return m.op == Matcher::Op::Re ? full : !full;
    }
  }
  return false;
}

json LabelsJson(const Labels& l) {
  json j = json::object();
  for (const auto& [k, v] : l) j[k] = v;
  return j;
}
Labels JsonLabels(const json& j) {
  Labels l;
  if (j.is_object())
    for (auto it = j.begin(); it != j.end(); ++it)
      if (it.value().is_string()) l[it.key()] = it.value().get<std::string>();
  return l;
}

json AlertJson(const Alert& a) {
  return {{"name", a.name},
          {"labels", LabelsJson(a.labels)},
          {"annotations", LabelsJson(a.annotations)},
          {"severity", a.severity},
          {"active_at", a.active_at_ms},
          {"starts_at", a.starts_at_ms},
          {"ends_at", a.ends_at_ms},
          {"phase", AlertPhaseName(a.phase)}};
}
Alert JsonAlert(const json& j) {
  Alert a;
  a.name = j.value("name", "");
  a.labels = JsonLabels(j.value("labels", json::object()));
  a.annotations = JsonLabels(j.value("annotations", json::object()));
  a.severity = j.value("severity", "");
  a.active_at_ms = j.value("active_at", int64_t{0});
  a.starts_at_ms = j.value("starts_at", int64_t{0});
  a.ends_at_ms = j.value("ends_at", int64_t{0});
  a.phase = j.value("phase", "") == "resolved" ? AlertPhase::Resolved : AlertPhase::Firing;
  a.fingerprint = Fingerprint(a.labels);
  return a;
}

json MatchersJson(const std::vector<Matcher>& ms) {
  json j = json::array();
  for (const Matcher& m : ms) j.push_back({{"name", m.name}, {"op", OpText(m.op)}, {"value", m.value}});
  return j;
}
std::vector<Matcher> JsonMatchers(const json& j) {
  std::vector<Matcher> out;
  for (const json& e : j) {
    Matcher m;
    m.name = e.value("name", "");
    std::string op = e.value("op", "=");
    m.op = op == "!="   ? Matcher::Op::Ne
           : op == "=~" ? Matcher::Op::Re
           : op == "!~" ? Matcher::Op::NotRe
                        : Matcher::Op::Eq;
    m.value = e.value("value", "");
    out.push_back(std::move(m));
  }
  return out;
}

std::string RenderLabels(const Labels& l) {
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : l) {
    if (!first) s += ", ";
    first = false;
    s += k + "=" + json(v).dump();
  }
  return s + "}";
}

std::string FpSetJson(const std::set<std::string>& s) {
  return json(std::vector<std::string>(s.begin(), s.end())).dump();
}
std::set<std::string> JsonFpSet(const std::string& text) {
  std::set<std::string> s;
  json j = json::parse(text, nullptr, false);
  if (j.is_array())
    for (const json& e : j)
      if (e.is_string()) s.insert(e.get<std::string>());
  return s;
}

constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS alerts(fingerprint TEXT PRIMARY KEY, group_key TEXT NOT NULL, alert TEXT NOT "
    "NULL);"
    "CREATE INDEX IF NOT EXISTS alerts_group ON alerts(group_key);"
    "CREATE TABLE IF NOT EXISTS groups(group_key TEXT PRIMARY KEY, route INTEGER NOT NULL, labels TEXT NOT "
    "NULL,"
    " next_flush_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS nflog(group_key TEXT PRIMARY KEY, firing TEXT NOT NULL, resolved TEXT NOT "
    "NULL,"
    " sent_at_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS outbox(group_key TEXT PRIMARY KEY, receiver TEXT NOT NULL, body TEXT NOT "
    "NULL,"
    " firing TEXT NOT NULL, resolved TEXT NOT NULL, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    " next_attempt_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS silences(id TEXT PRIMARY KEY, matchers TEXT NOT NULL, starts_at_ms INTEGER "
    "NOT NULL,"
    " ends_at_ms INTEGER NOT NULL, created_by TEXT NOT NULL, comment TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);";

}  // namespace

bool ParseMatcher(std::string_view text, Matcher* out, std::string* error) {
  size_t i = 0;
  while (i < text.size() && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_')) ++i;
  std::string name(text.substr(0, i));
  if (!ValidLabelName(name)) {
    *error = "matcher '" + std::string(text) + "' does not start with a label name: write name=\"value\"";
    return false;
  }
  std::string_view rest = text.substr(i);
  Matcher m;
  m.name = name;
  size_t oplen = 2;
  if (rest.starts_with("=~")) {
    m.op = Matcher::Op::Re;
  } else if (rest.starts_with("!~")) {
    m.op = Matcher::Op::NotRe;
  } else if (rest.starts_with("!=")) {
    m.op = Matcher::Op::Ne;
  } else if (rest.starts_with("=")) {
    m.op = Matcher::Op::Eq;
    oplen = 1;
  } else {
    *error = "matcher '" + std::string(text) + "' has no operator: use =, !=, =~ or !~";
    return false;
  }
  std::string_view v = rest.substr(oplen);
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
    json j = json::parse(v, nullptr, false);
    if (!j.is_string()) {
      *error = "matcher '" + std::string(text) + "' has a badly quoted value";
      return false;
    }
    m.value = j.get<std::string>();
  } else {
    m.value = std::string(v);
  }
  if (m.op == Matcher::Op::Re || m.op == Matcher::Op::NotRe) {
    RE2 re(m.value, RE2::Quiet);
    if (!re.ok()) {
      *error = "matcher '" + std::string(text) + "' has a bad regular expression: " + re.error();
      return false;
    }
  }
  *out = std::move(m);
  return true;
}

std::string MatcherString(const Matcher& m) {
  return m.name + OpText(m.op) + json(m.value).dump();
}

bool MatchesAll(const std::vector<Matcher>& matchers, const Labels& labels) {
  return std::all_of(matchers.begin(), matchers.end(), [&](const Matcher& m) { return Matches(m, labels); });
}

std::string HmacSha256Hex(const std::string& secret, const std::string& body) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), out, &len);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned i = 0; i < len; ++i) {
    s += hex[out[i] >> 4];
    s += hex[out[i] & 15];
  }
  return s;
}

std::string WebhookPayload(const std::string& group_key, const std::string& receiver,
                           const Labels& group_labels, const std::vector<Alert>& alerts, size_t truncated,
                           const std::string& external_url) {
  bool any_firing = false;
  Labels common_labels, common_annotations;
  json list = json::array();
  for (size_t i = 0; i < alerts.size(); ++i) {
    const Alert& a = alerts[i];
    bool firing = a.phase != AlertPhase::Resolved;
    any_firing |= firing;
    if (i == 0) {
      common_labels = a.labels;
      common_annotations = a.annotations;
    } else {
      std::erase_if(common_labels, [&](const auto& kv) {
        auto it = a.labels.find(kv.first);
        return it == a.labels.end() || it->second != kv.second;
      });
      std::erase_if(common_annotations, [&](const auto& kv) {
        auto it = a.annotations.find(kv.first);
        return it == a.annotations.end() || it->second != kv.second;
      });
    }
    list.push_back({{"status", firing ? "firing" : "resolved"},
                    {"labels", LabelsJson(a.labels)},
                    {"annotations", LabelsJson(a.annotations)},
                    {"startsAt", Rfc3339Ms(a.starts_at_ms)},
                    {"endsAt", a.ends_at_ms > 0 ? Rfc3339Ms(a.ends_at_ms) : "0001-01-01T00:00:00Z"},
                    {"generatorURL", ""},
                    {"fingerprint", a.fingerprint}});
  }
  json j = {{"version", "4"},
            {"groupKey", group_key},
            {"truncatedAlerts", truncated},
            {"status", any_firing ? "firing" : "resolved"},
            {"receiver", receiver},
            {"groupLabels", LabelsJson(group_labels)},
            {"commonLabels", LabelsJson(common_labels)},
            {"commonAnnotations", LabelsJson(common_annotations)},
            {"externalURL", external_url},
            {"alerts", std::move(list)}};
  return j.dump();
}

struct Notifier::Impl {
  NotifierOptions options;
  Clock& clock;
  sqlite3* db;
  s3::Transport* transport;
  std::string last_error;

  Impl(NotifierOptions o, Clock& c, sqlite3* d, s3::Transport* t)
      : options(std::move(o)), clock(c), db(d), transport(t) {}
  ~Impl() { sqlite3_close(db); }

  const Route& RouteAt(int64_t i) const {
    return i <= 0 || i > static_cast<int64_t>(options.routes.size()) ? options.route : options.routes[i - 1];
  }
  const Receiver* FindReceiver(const std::string& name) const {
    for (const Receiver& r : options.receivers)
      if (r.name == name) return &r;
    return nullptr;
  }
  // 0: the root; i: options.routes[i - 1].
  int64_t RouteFor(const Labels& labels) const {
    for (size_t i = 0; i < options.routes.size(); ++i)
      if (MatchesAll(options.routes[i].matchers, labels)) return static_cast<int64_t>(i) + 1;
    return 0;
  }
  std::string RoutePath(int64_t i) const {
    if (i == 0) return "{}";
    std::string s = "{}/{";
    const auto& ms = RouteAt(i).matchers;
    for (size_t k = 0; k < ms.size(); ++k) {
      if (k) s += ',';
      s += MatcherString(ms[k]);
    }
    s += '}';
    return s;
  }
  Labels GroupLabels(const Route& r, const Labels& labels) const {
    if (std::find(r.group_by.begin(), r.group_by.end(), "...") != r.group_by.end()) return labels;
    Labels g;
    for (const std::string& n : r.group_by) {
      auto it = labels.find(n);
      if (it != labels.end()) g[n] = it->second;
    }
    return g;
  }

  void Count(const char* name, int64_t delta) {
    io::SqliteStmt(db,
                   "INSERT INTO counters(name, value) VALUES(?1, ?2) "
                   "ON CONFLICT(name) DO UPDATE SET value = value + ?2")
        .Bind(1, std::string(name))
        .Bind(2, delta)
        .Done();
  }
  int64_t Counter(const char* name) {
    io::SqliteStmt st(db, "SELECT value FROM counters WHERE name = ?1");
    st.Bind(1, std::string(name));
    return st.Row() ? st.Int(0) : 0;
  }
  int64_t ScalarCount(const char* sql) {
    io::SqliteStmt st(db, sql);
    return st.Row() ? st.Int(0) : 0;
  }

  bool SilencedAt(const Labels& labels, int64_t now) {
    io::SqliteStmt st(db, "SELECT matchers FROM silences WHERE starts_at_ms <= ?1 AND ends_at_ms > ?1");
    st.Bind(1, now);
    while (st.Row()) {
      json j = json::parse(st.Text(0), nullptr, false);
      if (j.is_array() && MatchesAll(JsonMatchers(j), labels)) return true;
    }
    return false;
  }

  void Put(const std::vector<Alert>& alerts) {
    if (options.receivers.empty()) return;  // silences only
    int64_t now = clock.WallMs();
    io::SqliteExec(db, "BEGIN IMMEDIATE", &last_error);
    int64_t held = ScalarCount("SELECT COUNT(*) FROM alerts");
    int64_t dropped = 0;
    for (const Alert& a : alerts) {
      if (a.phase == AlertPhase::Pending) continue;
      std::string fp = Fingerprint(a.labels);
      int64_t route = RouteFor(a.labels);
      const Route& r = RouteAt(route);
      Labels glabels = GroupLabels(r, a.labels);
      std::string key = RoutePath(route) + ":" + RenderLabels(glabels);
      io::SqliteStmt exists(db, "SELECT 1 FROM alerts WHERE fingerprint = ?1");
      exists.Bind(1, fp);
      bool known = exists.Row();
      if (!known && held >= static_cast<int64_t>(options.max_alerts)) {
        ++dropped;
        continue;
      }
      Alert copy = a;
      copy.fingerprint = fp;
      io::SqliteStmt(db,
                     "INSERT INTO alerts(fingerprint, group_key, alert) VALUES(?1, ?2, ?3) "
                     "ON CONFLICT(fingerprint) DO UPDATE SET group_key = ?2, alert = ?3")
          .Bind(1, fp)
          .Bind(2, key)
          .Bind(3, AlertJson(copy).dump())
          .Done();
      if (!known) ++held;
      io::SqliteStmt(
          db, "INSERT OR IGNORE INTO groups(group_key, route, labels, next_flush_ms) VALUES(?1, ?2, ?3, ?4)")
          .Bind(1, key)
          .Bind(2, route)
          .Bind(3, LabelsJson(glabels).dump())
          .Bind(4, now + static_cast<int64_t>(r.group_wait.count()))
          .Done();
    }
    if (dropped) Count("dropped_alerts", dropped);
    io::SqliteExec(db, "COMMIT", &last_error);
  }

  // Alertmanager's DedupStage.needsUpdate.
  static bool NeedsUpdate(bool have_entry, const std::set<std::string>& last_firing,
                          const std::set<std::string>& last_resolved, int64_t sent_at,
                          const std::set<std::string>& firing, const std::set<std::string>& resolved,
                          bool send_resolved, int64_t repeat, int64_t now) {
    if (!have_entry) return !firing.empty();
    if (!std::includes(last_firing.begin(), last_firing.end(), firing.begin(), firing.end())) return true;
    if (firing.empty()) return !last_firing.empty();
    if (send_resolved &&
        !std::includes(last_resolved.begin(), last_resolved.end(), resolved.begin(), resolved.end()))
      return true;
    return sent_at + repeat <= now;
  }

  void Flush(const std::string& key, int64_t route_index, const Labels& glabels, int64_t now) {
    const Route& route = RouteAt(route_index);
    const Receiver* receiver = FindReceiver(route.receiver);
    std::vector<Alert> firing_alerts, resolved_alerts;
    std::set<std::string> firing, resolved, flushed_resolved;
    int64_t silenced = 0;
    {
      io::SqliteStmt st(db, "SELECT alert FROM alerts WHERE group_key = ?1 ORDER BY fingerprint");
      st.Bind(1, key);
      while (st.Row()) {
        json j = json::parse(st.Text(0), nullptr, false);
        if (!j.is_object()) continue;  // an unreadable row is skipped
        Alert a = JsonAlert(j);
        if (a.phase == AlertPhase::Resolved) flushed_resolved.insert(a.fingerprint);
        if (SilencedAt(a.labels, now)) {
          ++silenced;
          continue;
        }
        if (a.phase == AlertPhase::Resolved) {
          resolved.insert(a.fingerprint);
          resolved_alerts.push_back(std::move(a));
        } else {
          firing.insert(a.fingerprint);
          firing_alerts.push_back(std::move(a));
        }
      }
    }
    if (silenced) Count("silenced", silenced);
    bool have_entry = false;
    std::set<std::string> last_firing, last_resolved;
    int64_t sent_at = 0;
    {
      io::SqliteStmt st(db, "SELECT firing, resolved, sent_at_ms FROM nflog WHERE group_key = ?1");
      st.Bind(1, key);
      if (st.Row()) {
        have_entry = true;
        last_firing = JsonFpSet(st.Text(0));
        last_resolved = JsonFpSet(st.Text(1));
        sent_at = st.Int(2);
      }
    }
    bool send_resolved = receiver ? receiver->send_resolved : true;
    if (receiver && NeedsUpdate(have_entry, last_firing, last_resolved, sent_at, firing, resolved,
                                send_resolved, route.repeat_interval.count(), now)) {
      std::vector<Alert> payload = firing_alerts;
      if (send_resolved) payload.insert(payload.end(), resolved_alerts.begin(), resolved_alerts.end());
      std::sort(payload.begin(), payload.end(),
                [](const Alert& a, const Alert& b) { return a.fingerprint < b.fingerprint; });
      size_t truncated = 0;
      if (receiver->max_alerts > 0 && payload.size() > receiver->max_alerts) {
        truncated = payload.size() - receiver->max_alerts;
        payload.resize(receiver->max_alerts);
      }
      if (payload.empty()) {
        // Nothing to show the receiver (everything resolved and it does not
        // want resolutions): only the log moves on, as in Alertmanager.
        RecordDelivery(key, FpSetJson(firing), FpSetJson(resolved), now);
      } else {
        std::string body =
            WebhookPayload(key, receiver->name, glabels, payload, truncated, options.external_url);
        // One undelivered notification per group: a newer one replaces it
        // and keeps its back-off.
        io::SqliteStmt(
            db,
            "INSERT INTO outbox(group_key, receiver, body, firing, resolved, created_ms, attempts, "
            "next_attempt_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 0, ?6) ON CONFLICT(group_key) DO UPDATE "
            "SET receiver = ?2, body = ?3, firing = ?4, resolved = ?5")
            .Bind(1, key)
            .Bind(2, receiver->name)
            .Bind(3, body)
            .Bind(4, FpSetJson(firing))
            .Bind(5, FpSetJson(resolved))
            .Bind(6, now)
            .Done();
        int64_t over = ScalarCount("SELECT COUNT(*) FROM outbox") - static_cast<int64_t>(options.max_outbox);
        if (over > 0) {
          io::SqliteStmt(db,
                         "DELETE FROM outbox WHERE group_key IN (SELECT group_key FROM outbox "
                         "ORDER BY created_ms, group_key LIMIT ?1)")
              .Bind(1, over)
              .Done();
          Count("dropped_notifications", over);
        }
      }
    }
    for (const std::string& fp : flushed_resolved)
      io::SqliteStmt(db, "DELETE FROM alerts WHERE fingerprint = ?1").Bind(1, fp).Done();
    io::SqliteStmt left(db, "SELECT 1 FROM alerts WHERE group_key = ?1 LIMIT 1");
    left.Bind(1, key);
    if (!left.Row()) {
      io::SqliteStmt(db, "DELETE FROM groups WHERE group_key = ?1").Bind(1, key).Done();
    } else {
      io::SqliteStmt(db, "UPDATE groups SET next_flush_ms = ?2 WHERE group_key = ?1")
          .Bind(1, key)
          .Bind(2, now + static_cast<int64_t>(route.group_interval.count()))
          .Done();
    }
  }

  void RecordDelivery(const std::string& key, const std::string& firing, const std::string& resolved,
                      int64_t now) {
    io::SqliteStmt(db,
                   "INSERT INTO nflog(group_key, firing, resolved, sent_at_ms) VALUES(?1, ?2, ?3, ?4) "
                   "ON CONFLICT(group_key) DO UPDATE SET firing = ?2, resolved = ?3, sent_at_ms = ?4")
        .Bind(1, key)
        .Bind(2, firing)
        .Bind(3, resolved)
        .Bind(4, now)
        .Done();
  }

  int Deliver(int64_t now) {
    struct Due {
      std::string key, receiver, body, firing, resolved;
      int64_t attempts;
    };
    std::vector<Due> due;
    {
      io::SqliteStmt st(db,
                        "SELECT group_key, receiver, body, firing, resolved, attempts FROM outbox "
                        "WHERE next_attempt_ms <= ?1 ORDER BY next_attempt_ms, created_ms, group_key");
      st.Bind(1, now);
      while (st.Row()) due.push_back({st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), st.Int(5)});
    }
    int delivered = 0;
    // A receiver that failed once in this call is not tried again in it:
    // a Tick waits at most one timeout per receiver that is down.
    std::set<std::string> failed;
    for (const Due& d : due) {
      if (failed.count(d.receiver)) continue;
      const Receiver* r = FindReceiver(d.receiver);
      if (!r) {
        // The configuration lost the receiver since the notification was
        // stored: nowhere to send it.
        io::SqliteStmt(db, "DELETE FROM outbox WHERE group_key = ?1").Bind(1, d.key).Done();
        Count("dropped_notifications", 1);
        last_error = "receiver '" + d.receiver + "' is no longer configured: its notification was dropped";
        continue;
      }
      s3::HttpRequest req;
      req.method = "POST";
      req.url = r->url;
      req.body = d.body;
      req.headers["Content-Type"] = "application/json";
      req.headers["User-Agent"] = "plinth-notifier";
      if (!r->hmac_secret.empty())
        req.headers["X-Plinth-Signature"] = "sha256=" + HmacSha256Hex(r->hmac_secret, d.body);
      if (!r->bearer_token.empty()) req.headers["Authorization"] = "Bearer " + r->bearer_token;
      s3::HttpResponse resp;
      if (transport) {
        resp = transport->Send(req);
      } else {
        s3::CurlOptions co;
        co.request_timeout = r->timeout;
        co.connect_timeout = std::min(r->timeout, std::chrono::milliseconds(5000));
        resp = s3::CurlTransport(co).Send(req);
      }
      int64_t after = clock.WallMs();
      if (resp.status >= 200 && resp.status < 300) {
        io::SqliteExec(db, "BEGIN IMMEDIATE", &last_error);
        // Only the version that was sent leaves the outbox (Flush runs in
        // the same thread, so nothing replaced it meanwhile).
        io::SqliteStmt(db, "DELETE FROM outbox WHERE group_key = ?1").Bind(1, d.key).Done();
        RecordDelivery(d.key, d.firing, d.resolved, after);
        Count("delivered", 1);
        io::SqliteExec(db, "COMMIT", &last_error);
        ++delivered;
        continue;
      }
      failed.insert(d.receiver);
      int64_t attempts = d.attempts + 1;
      int64_t backoff = options.retry_initial.count();
      for (int64_t i = 1; i < attempts && backoff < options.retry_max.count(); ++i) backoff *= 2;
      backoff = std::min<int64_t>(backoff, options.retry_max.count());
      io::SqliteStmt(db, "UPDATE outbox SET attempts = ?2, next_attempt_ms = ?3 WHERE group_key = ?1")
          .Bind(1, d.key)
          .Bind(2, attempts)
          .Bind(3, after + backoff)
          .Done();
      Count("failed_attempts", 1);
      last_error = "receiver '" + r->name + "': " +
                   (resp.status ? "answered HTTP " + std::to_string(resp.status) : resp.transport_error) +
                   " (attempt " + std::to_string(attempts) + ", next in " + std::to_string(backoff) + " ms)";
    }
    return delivered;
  }
};

std::unique_ptr<Notifier> Notifier::Open(NotifierOptions options, Clock& clock, std::string* error,
                                         s3::Transport* transport) {
  std::set<std::string> names;
  for (const Receiver& r : options.receivers) {
    if (r.name.empty() || !names.insert(r.name).second) {
      *error = "receiver names must be unique and not empty ('" + r.name + "')";
      return nullptr;
    }
    if (!r.url.starts_with("http://") && !r.url.starts_with("https://")) {
      *error = "receiver '" + r.name + "' needs an http:// or https:// url";
      return nullptr;
    }
  }
  // No receivers and no routes: silences only (a CLI beside the controller).
  const bool silences_only =
      options.receivers.empty() && options.routes.empty() && options.route.receiver.empty();
  std::vector<const Route*> routes;
  if (!silences_only) routes.push_back(&options.route);
  for (const Route& r : options.routes) routes.push_back(&r);
  for (const Route* r : routes) {
    if (!names.count(r->receiver)) {
      *error =
          "a route names receiver '" + r->receiver + "', which is not configured: add it or fix the name";
      return nullptr;
    }
    if (r->group_wait.count() < 0 || r->group_interval.count() <= 0 || r->repeat_interval.count() <= 0) {
      *error = "a route's group_interval and repeat_interval must be positive and group_wait not negative";
      return nullptr;
    }
  }
  if (options.retry_initial.count() <= 0 || options.retry_max < options.retry_initial) {
    *error = "retry_initial must be positive and retry_max at least retry_initial";
    return nullptr;
  }
  const std::filesystem::path& path = options.database;
  sqlite3* db = io::OpenPrivateDatabase(path, "notification database",
                                        (std::string("PRAGMA journal_mode=WAL;") + kSchema).c_str(), error);
  if (!db) return nullptr;
  return std::unique_ptr<Notifier>(new Notifier(std::move(options), clock, db, transport));
}

Notifier::Notifier(NotifierOptions options, Clock& clock, sqlite3* db, s3::Transport* transport)
    : impl_(std::make_unique<Impl>(std::move(options), clock, db, transport)) {}
Notifier::~Notifier() = default;

void Notifier::Put(const std::vector<Alert>& alerts) {
  impl_->Put(alerts);
}

int Notifier::Tick() {
  if (impl_->options.receivers.empty()) return 0;  // silences only: the controller's timers are not ours
  int64_t now = impl_->clock.WallMs();
  struct Due {
    std::string key;
    int64_t route;
    std::string labels;
  };
  std::vector<Due> due;
  {
    io::SqliteStmt st(
        impl_->db,
        "SELECT group_key, route, labels FROM groups WHERE next_flush_ms <= ?1 ORDER BY group_key");
    st.Bind(1, now);
    while (st.Row()) due.push_back({st.Text(0), st.Int(1), st.Text(2)});
  }
  if (!due.empty()) {
    io::SqliteExec(impl_->db, "BEGIN IMMEDIATE", &impl_->last_error);
    for (const Due& d : due)
      impl_->Flush(d.key, d.route, JsonLabels(json::parse(d.labels, nullptr, false)), now);
    io::SqliteExec(impl_->db, "COMMIT", &impl_->last_error);
  }
  return impl_->Deliver(now);
}

std::optional<int64_t> Notifier::NextWakeMs() {
  io::SqliteStmt st(impl_->db,
                    "SELECT MIN(t) FROM (SELECT MIN(next_flush_ms) AS t FROM groups UNION ALL "
                    "SELECT MIN(next_attempt_ms) FROM outbox)");
  if (st.Row() && !st.Null(0)) return st.Int(0);
  return std::nullopt;
}

std::optional<std::string> Notifier::AddSilence(Silence s, std::string* error) {
  int64_t now = impl_->clock.WallMs();
  if (s.matchers.empty()) {
    *error = "a silence needs at least one matcher";
    return std::nullopt;
  }
  for (const Matcher& m : s.matchers) {
    if (!ValidLabelName(m.name)) {
      *error = "silence matcher label '" + m.name + "' is not a valid label name";
      return std::nullopt;
    }
    if (m.op == Matcher::Op::Re || m.op == Matcher::Op::NotRe) {
      RE2 re(m.value, RE2::Quiet);
      if (!re.ok()) {
        *error = "silence matcher " + MatcherString(m) + " has a bad regular expression: " + re.error();
        return std::nullopt;
      }
    }
  }
  if (MatchesAll(s.matchers, Labels{})) {
    *error =
        "the silence's matchers all match an empty label set, so it would silence every alert: "
        "add a matcher that requires a label value";
    return std::nullopt;
  }
  if (s.starts_at_ms == 0) s.starts_at_ms = now;
  if (s.ends_at_ms <= s.starts_at_ms) {
    *error = "a silence must end after it starts";
    return std::nullopt;
  }
  if (s.ends_at_ms <= now) {
    *error = "a silence must end in the future";
    return std::nullopt;
  }
  s.id = crypto::RandomHex(8);
  io::SqliteStmt st(impl_->db,
                    "INSERT INTO silences(id, matchers, starts_at_ms, ends_at_ms, created_by, comment) "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)");
  st.Bind(1, s.id)
      .Bind(2, MatchersJson(s.matchers).dump())
      .Bind(3, s.starts_at_ms)
      .Bind(4, s.ends_at_ms)
      .Bind(5, s.created_by)
      .Bind(6, s.comment);
  if (!st.Done()) {
    *error = std::string("cannot store the silence: ") + sqlite3_errmsg(impl_->db);
    return std::nullopt;
  }
  return s.id;
}

std::vector<Silence> Notifier::Silences(bool include_expired) {
  std::vector<Silence> out;
  io::SqliteStmt st(impl_->db,
                    "SELECT id, matchers, starts_at_ms, ends_at_ms, created_by, comment FROM silences "
                    "WHERE ?1 OR ends_at_ms > ?2 ORDER BY starts_at_ms, id");
  st.Bind(1, int64_t{include_expired}).Bind(2, impl_->clock.WallMs());
  while (st.Row()) {
    Silence s;
    s.id = st.Text(0);
    s.matchers = JsonMatchers(json::parse(st.Text(1), nullptr, false));
    s.starts_at_ms = st.Int(2);
    s.ends_at_ms = st.Int(3);
    s.created_by = st.Text(4);
    s.comment = st.Text(5);
    out.push_back(std::move(s));
  }
  return out;
}

bool Notifier::ExpireSilence(const std::string& id, std::string* error) {
  int64_t now = impl_->clock.WallMs();
  io::SqliteStmt st(impl_->db,
                    "UPDATE silences SET ends_at_ms = ?2, starts_at_ms = MIN(starts_at_ms, ?2) "
                    "WHERE id = ?1 AND ends_at_ms > ?2");
  st.Bind(1, id).Bind(2, now);
  if (!st.Done() || sqlite3_changes(impl_->db) == 0) {
    *error = "no active or pending silence '" + id + "': see the list of silences";
    return false;
  }
  return true;
}

bool Notifier::Silenced(const Labels& labels) {
  return impl_->SilencedAt(labels, impl_->clock.WallMs());
}

NotifierStats Notifier::stats() {
  NotifierStats s;
  s.delivered = impl_->Counter("delivered");
  s.failed_attempts = impl_->Counter("failed_attempts");
  s.dropped_alerts = impl_->Counter("dropped_alerts");
  s.dropped_notifications = impl_->Counter("dropped_notifications");
  s.silenced = impl_->Counter("silenced");
  s.outbox = static_cast<size_t>(impl_->ScalarCount("SELECT COUNT(*) FROM outbox"));
  s.groups = static_cast<size_t>(impl_->ScalarCount("SELECT COUNT(*) FROM groups"));
  s.last_error = impl_->last_error;
  return s;
}

}  // namespace plinth::controller
