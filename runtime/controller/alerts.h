// Alert instances for the controller (docs/automation.md, "Alerts and
// notifications"): what an alert rule's evaluations turn into, and what the
// Notifier (notify.h) and the Alertmanager client (alertmanager.h) send.
//
// One AlertRule produces one instance per label set its expression is true
// for (a scalar condition has one, empty, label set). Prometheus semantics per
// instance, evaluated at `now_ms` (wall-clock milliseconds):
//   - active and not yet known: Pending (active_at = now), or Firing at once
//     when `for_ms` is 0;
//   - Pending and active for `for_ms` (now - active_at >= for_ms): Firing
//     (starts_at = now, the moment it fired, as Prometheus sends it);
//   - Pending and not active: dropped (it never fired, nothing is notified);
//   - Firing and not active: stays Firing until it has been inactive for
//     `keep_firing_for_ms` (0: resolves on the first inactive evaluation);
//     then Resolved with ends_at = now; active again within that time: the
//     inactive streak is forgotten;
//   - Resolved: kept for `resolved_retention_ms` (Prometheus: 15 min) so the
//     resolution is sent, then forgotten; active again: a new Pending
//     instance (a new streak, a new starts_at).
// A label set absent from an evaluation counts as not active.
//
// Instance labels: the label set, then the rule's labels over it (the rule
// wins, as in Prometheus), then `alertname` = the rule's name and, when set,
// `severity`. The fingerprint is a 64-bit FNV-1a hash of the sorted labels
// (name NUL value NUL ...), as 16 hex digits: equal label sets, equal
// fingerprints, across processes and restarts.
//
// Thread safety: plain values; an AlertSet is used by one thread at a time.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace plinth::controller {

using Labels = std::map<std::string, std::string>;

enum class AlertPhase : uint8_t { Pending, Firing, Resolved };
const char* AlertPhaseName(AlertPhase p);  // "pending", "firing", "resolved"

struct Alert {
  std::string name;  // the rule's name (also labels["alertname"])
  Labels labels;
  Labels annotations;
  std::string severity;      // also labels["severity"] when not empty
  int64_t active_at_ms = 0;  // first active evaluation of the streak
  int64_t starts_at_ms = 0;  // when it fired (0 while Pending)
  int64_t ends_at_ms = 0;    // when it resolved (0 unless Resolved)
  AlertPhase phase = AlertPhase::Pending;
  std::string fingerprint;  // Fingerprint(labels)
};

// 16 lowercase hex digits; see the header comment.
std::string Fingerprint(const Labels& labels);

struct AlertRule {
  std::string name;  // [A-Za-z_][A-Za-z0-9_]*: checked by the caller (the compiler)
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::string severity;
  Labels labels;
  Labels annotations;
  int64_t resolved_retention_ms = 15 * 60 * 1000;
};

class AlertSet {
 public:
  explicit AlertSet(AlertRule rule);

  // One evaluation at `now_ms`: the label sets the expression is true for.
  // Timestamps must not go backwards (an earlier one is treated as the
  // latest seen).
  void Evaluate(const std::vector<Labels>& active, int64_t now_ms);
  // A scalar condition: one instance with no extra labels.
  void Evaluate(bool active, int64_t now_ms) {
    Evaluate(active ? std::vector<Labels>{{}} : std::vector<Labels>{}, now_ms);
  }

  // Every known instance (Pending, Firing, Resolved within retention), by
  // fingerprint order.
  std::vector<Alert> Alerts() const;
  // Firing and Resolved ones: what a notifier is told about (Pending
  // instances are not sent, as in Prometheus).
  std::vector<Alert> Notifiable() const;
  const AlertRule& rule() const { return rule_; }

  // The instances (labels, phase, times) as JSON, and back: a restarted or
  // reloaded controller carries on where the last one left, so a pending
  // alert keeps its `for` progress, a firing one is not sent again as new,
  // and one that stopped while no controller ran is resolved at the next
  // evaluation (Prometheus restores its `for` state the same way). Restore
  // replaces every instance; entries it cannot read are skipped.
  nlohmann::json State() const;
  void Restore(const nlohmann::json& state);

 private:
  struct Instance {
    Alert alert;
    int64_t inactive_since_ms = 0;  // Firing: start of the inactive streak (0: active)
  };
  Labels InstanceLabels(const Labels& series) const;

  AlertRule rule_;
  std::map<std::string, Instance> instances_;  // by fingerprint
  int64_t last_now_ = 0;
};

}  // namespace plinth::controller
