// A client for a real Alertmanager (docs/automation.md, "Alerts and
// notifications"): for teams who run their own, the controller can hand its
// alerts to Alertmanager's API instead of (or besides) notifying webhooks
// itself.
//
// PostAlerts sends `POST <base_url>/api/v2/alerts` with a JSON array of
// {labels, annotations, startsAt, endsAt, generatorURL}, as Prometheus does.
// Firing alerts get endsAt = now + `validity_ms` (Prometheus uses four
// resend intervals), so Alertmanager resolves them by itself if the
// controller stops resending; resolved alerts carry their real endsAt.
// Pending alerts are not sent. Synchronous, libcurl with `timeout`; safe
// from several threads at once (one handle per call).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "runtime/controller/alerts.h"

namespace plinth::s3 {
class Transport;
}

namespace plinth::controller {

struct AlertmanagerClientOptions {
  std::string base_url;  // "http://127.0.0.1:9093"
  std::string generator_url;
  int64_t validity_ms = 4 * 60'000;
  std::chrono::milliseconds timeout{10000};
};

// The request body PostAlerts sends.
std::string AlertmanagerPayload(const std::vector<Alert>& alerts, int64_t now_ms,
                                const AlertmanagerClientOptions& o);

// True on a 2xx answer; false with *error ("alertmanager at
// http://127.0.0.1:9093 answered HTTP 400: ...") otherwise. `transport`
// (tests) defaults to libcurl.
bool PostAlerts(const std::vector<Alert>& alerts, int64_t now_ms, const AlertmanagerClientOptions& options,
                std::string* error, s3::Transport* transport = nullptr);

}  // namespace plinth::controller
