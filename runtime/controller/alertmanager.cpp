#include "runtime/controller/alertmanager.h"

#include <nlohmann/json.hpp>

#include "runtime/controller/controller.h"
#include "runtime/s3/http.h"

namespace plinth::controller {

std::string AlertmanagerPayload(const std::vector<Alert>& alerts, int64_t now_ms,
                                const AlertmanagerClientOptions& o) {
  nlohmann::json list = nlohmann::json::array();
  for (const Alert& a : alerts) {
    if (a.phase == AlertPhase::Pending) continue;
    nlohmann::json labels = nlohmann::json::object(), annotations = nlohmann::json::object();
    for (const auto& [k, v] : a.labels) labels[k] = v;
    for (const auto& [k, v] : a.annotations) annotations[k] = v;
    int64_t ends = a.phase == AlertPhase::Resolved ? a.ends_at_ms : now_ms + o.validity_ms;
    list.push_back({{"labels", labels},
                    {"annotations", annotations},
                    {"startsAt", Rfc3339Ms(a.starts_at_ms > 0 ? a.starts_at_ms : now_ms)},
                    {"endsAt", Rfc3339Ms(ends)},
                    {"generatorURL", o.generator_url}});
  }
  return list.dump();
}

bool PostAlerts(const std::vector<Alert>& alerts, int64_t now_ms, const AlertmanagerClientOptions& options,
                std::string* error, s3::Transport* transport) {
  std::string base = options.base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  s3::HttpRequest req;
  req.method = "POST";
  req.url = base + "/api/v2/alerts";
  req.body = AlertmanagerPayload(alerts, now_ms, options);
  req.headers["Content-Type"] = "application/json";
  s3::HttpResponse resp;
  if (transport) {
    resp = transport->Send(req);
  } else {
    s3::CurlOptions co;
    co.request_timeout = options.timeout;
    co.connect_timeout = std::min(options.timeout, std::chrono::milliseconds(5000));
    resp = s3::CurlTransport(co).Send(req);
  }
  if (resp.status >= 200 && resp.status < 300) return true;
  *error = "alertmanager at " + base +
           (resp.status ? " answered HTTP " + std::to_string(resp.status) + ": " + resp.body.substr(0, 200)
                        : " is unreachable: " + resp.transport_error);
  return false;
}

}  // namespace plinth::controller
