// Alert notifications (docs/automation.md, "Alerts and notifications"):
// Alertmanager's grouping, timers and webhook payload, with every group's
// state, every undelivered notification and every silence in one SQLite
// database, so a restarted controller loses nothing and repeats nothing.
//
// Flow: the controller calls Put with the alerts its rules produced
// (alerts.h: Firing and Resolved ones), then Tick. Put routes each alert
// (the first child route whose matchers all match, else the root route) and
// adds or updates it in the group named by the route and the values of its
// `group_by` labels. Tick, for every group whose timer is due:
//   - the first flush is `group_wait` after the group was created; later
//     ones every `group_interval`;
//   - silenced alerts are left out; a notification is made exactly when
//     Alertmanager's dedup stage would make one, against the last delivered
//     notification of the group: no delivery yet and something firing; a
//     firing alert the last delivery did not list as firing; everything
//     resolved while the last delivery listed firing alerts; a resolved
//     alert not yet listed as resolved (when the receiver sends resolved);
//     or nothing new but `repeat_interval` passed since the last delivery;
//   - resolved alerts that were part of the flush are removed from the
//     group; an empty group is removed.
// A notification goes into the outbox (one per group: a newer one replaces
// an undelivered older one and keeps its back-off) and Tick then POSTs every
// due outbox entry with libcurl (a timeout per request). A transport error or
// a non-2xx status is retried after `retry_initial`, doubling up to
// `retry_max`; a 2xx deletes the entry and records what it listed as the
// group's last delivery. Delivery is synchronous, inside Tick; a receiver
// that fails is not tried again in the same Tick (its other due
// notifications wait for the next one), so a Tick takes at most one request
// timeout per receiver that is down, plus the successful requests.
//
// Bounds: at most `max_alerts` alerts held (more are dropped and counted),
// at most `max_outbox` undelivered notifications (the oldest is dropped and
// counted), and a receiver's `max_alerts` caps the alerts in one payload
// (`truncatedAlerts` says how many were left out). A storm of alerts that
// share the group labels is one group and one notification.
//
// Signing: a receiver with an `hmac_secret` sends
// `X-Plinth-Signature: sha256=<hex HMAC-SHA-256(secret, body)>`. Secrets and
// bearer tokens are never logged nor stored in the database.
//
// Time: stored and compared as wall-clock milliseconds from the injected
// Clock (clock.h), so a restart continues the same timers.
//
// Thread safety: one thread at a time (the controller loop).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runtime/controller/alerts.h"
#include "runtime/controller/clock.h"

namespace plinth::s3 {
class Transport;
}

namespace plinth::controller {

// A label matcher as Alertmanager writes it: name="value", name!="value",
// name=~"regex", name!~"regex" (RE2, anchored at both ends as in
// Alertmanager). A missing label reads as "".
struct Matcher {
  enum class Op : uint8_t { Eq, Ne, Re, NotRe };
  std::string name;
  Op op = Op::Eq;
  std::string value;
};
// Parses one matcher ("severity=\"page\"", quotes optional). False with
// *error on a bad name, operator or regular expression.
bool ParseMatcher(std::string_view text, Matcher* out, std::string* error);
std::string MatcherString(const Matcher& m);  // severity="page"
// Whether every matcher matches; false for a matcher whose regex does not
// compile.
bool MatchesAll(const std::vector<Matcher>& matchers, const Labels& labels);

struct Receiver {
  std::string name;
  std::string url;           // http(s)://...
  std::string hmac_secret;   // empty: unsigned
  std::string bearer_token;  // empty: no Authorization header
  bool send_resolved = true;
  size_t max_alerts = 0;  // 0: every alert in the payload
  std::chrono::milliseconds timeout{10000};
};

struct Route {
  std::string receiver;
  std::vector<Matcher> matchers;  // child routes only: which alerts it takes
  std::vector<std::string> group_by;
  std::chrono::milliseconds group_wait{30'000};
  std::chrono::milliseconds group_interval{5 * 60'000};
  std::chrono::milliseconds repeat_interval{4 * 3600'000};
};

struct NotifierOptions {
  std::filesystem::path database;  // created 0600 when missing
  std::vector<Receiver> receivers;
  Route route;                // the root: takes what no child takes
  std::vector<Route> routes;  // children, first match wins
  std::string external_url;   // the payload's externalURL
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{5 * 60'000};
  size_t max_alerts = 100'000;
  size_t max_outbox = 1'000;
};

struct Silence {
  std::string id;  // assigned by AddSilence
  std::vector<Matcher> matchers;
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  std::string created_by;
  std::string comment;
  // Active at t: starts_at <= t < ends_at.
  bool ActiveAt(int64_t t) const { return starts_at_ms <= t && t < ends_at_ms; }
};

struct NotifierStats {
  int64_t delivered = 0;              // notifications answered 2xx
  int64_t failed_attempts = 0;        // transport errors and non-2xx answers
  int64_t dropped_alerts = 0;         // over max_alerts
  int64_t dropped_notifications = 0;  // over max_outbox
  int64_t silenced = 0;               // alerts left out of flushes by a silence
  size_t outbox = 0;                  // undelivered notifications now
  size_t groups = 0;
  std::string last_error;  // the last delivery failure, without secrets
};

class Notifier {
 public:
  // Opens (creating) the database and checks the configuration: every route
  // names a receiver that exists, intervals are positive. Null with *error
  // otherwise. `transport` (for tests) defaults to libcurl; both it and
  // `clock` must outlive the Notifier.
  //
  // Options with no receivers, no child routes and an empty root receiver
  // open the database for silences only (Put and Tick do nothing): what a
  // `plinth alert silence` command beside a running controller needs. Both
  // may have the database open at once (WAL, a 5 s busy timeout); silences
  // are read from the database at every flush, so one added by another
  // process holds from the controller's next flush.
  static std::unique_ptr<Notifier> Open(NotifierOptions options, Clock& clock, std::string* error,
                                        s3::Transport* transport = nullptr);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Adds or updates alerts (matched by fingerprint); Pending ones are
  // ignored. An alert no longer Put stays as last Put until it is Put
  // resolved (the caller, like Prometheus, sends resolutions).
  void Put(const std::vector<Alert>& alerts);
  // Runs the due group timers and delivers due notifications; returns how
  // many were delivered in this call.
  int Tick();
  // The earliest wall time (ms) at which Tick has work (a timer or a
  // retry); nullopt when there is none.
  std::optional<int64_t> NextWakeMs();

  // Silences. AddSilence checks the matchers (at least one; one that
  // matches "" on every label would silence everything, refused) and
  // ends_at > starts_at; starts_at 0 means now. Returns the new id.
  std::optional<std::string> AddSilence(Silence silence, std::string* error);
  // Active and pending silences; expired ones too when asked.
  std::vector<Silence> Silences(bool include_expired);
  // Ends a silence now. False with *error when no such silence or already
  // expired.
  bool ExpireSilence(const std::string& id, std::string* error);
  // Whether an active silence matches these labels.
  bool Silenced(const Labels& labels);

  NotifierStats stats();

 private:
  Notifier(NotifierOptions options, Clock& clock, sqlite3* db, s3::Transport* transport);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The Alertmanager webhook payload (version "4") for a group: exposed for
// tests and for `plinth alert` tooling. `alerts` are listed in fingerprint
// order; `truncated` alerts were left out by the receiver's max_alerts.
std::string WebhookPayload(const std::string& group_key, const std::string& receiver,
                           const Labels& group_labels, const std::vector<Alert>& alerts, size_t truncated,
                           const std::string& external_url);

// HMAC-SHA-256(secret, body) as lowercase hex.
std::string HmacSha256Hex(const std::string& secret, const std::string& body);

}  // namespace plinth::controller
