// Scraping Prometheus endpoints into a Window (docs/automation.md, "Metrics").
//
// FetchMetrics: one HTTP GET over libcurl. Only http:// URLs (no other
// protocol, no redirects, no proxy); a deadline for the whole request
// (`timeout`), and a body cap (`max_body_bytes`): the transfer is aborted as
// soon as the body would exceed it, so a target sending 100 MB costs at most
// the cap in memory. Any status but 200 is an error.
//
// Scraper: each Scrape() fetches every target (up to `parallelism` at once,
// each on its own thread, all joined before Scrape returns), parses the body
// (parse.h) and appends to the Window, at the Clock's wall time:
//   - every sample, with the target's labels added, and `instance` = the
//     target's name unless its labels name one (a label the target
//     exposes under the same name is kept as `exported_<name>`, as
//     Prometheus does with honor_labels: false); timestamps in the
//     exposition are ignored: every sample of a scrape gets the scrape time;
//   - per target, like Prometheus: `up` (1 when the fetch and the parse
//     succeeded, else 0 and nothing else from that target),
//     `scrape_duration_seconds` and `scrape_samples_scraped`.
// The last status of each target (error text included) is kept for the
// controller's status document. After appending, the Window is compacted.
//
// Thread safety: Scrape and SetTargets from one thread (the controller's
// loop); Statuses from any.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/controller/clock.h"
#include "runtime/metrics/parse.h"
#include "runtime/metrics/window.h"

namespace plinth::metrics {

struct FetchOptions {
  std::chrono::milliseconds timeout{5000};
  size_t max_body_bytes = 16 * 1024 * 1024;
};

struct FetchResult {
  bool ok = false;
  std::string error;  // when !ok: "GET http://127.0.0.1:9/metrics: Connection refused"
  int status = 0;     // the HTTP status when one arrived
  bool timed_out = false;
  bool too_large = false;
  std::string body;  // when ok
};

FetchResult FetchMetrics(const std::string& url, const FetchOptions& options);

struct ScrapeTarget {
  std::string name;  // for status and errors: "api/0"
  std::string url;   // "http://127.0.0.1:8080/metrics"
  Labels labels;     // added to every sample: service, replica, region...
};

struct ScrapeOptions {
  FetchOptions fetch;
  ParseLimits parse;
  size_t parallelism = 8;
};

struct TargetStatus {
  std::string name, url;
  bool up = false;
  std::string error;           // the last scrape's error; empty when up
  int64_t last_scrape_ms = 0;  // wall time; 0: never
  double duration_s = 0;
  size_t samples = 0;  // appended by the last scrape
};

class Scraper {
 public:
  // `window` and `clock` must outlive the Scraper.
  Scraper(Window& window, const controller::Clock& clock, ScrapeOptions options = {});

  void SetTargets(std::vector<ScrapeTarget> targets);
  // One pass over every target; returns how many were up.
  size_t Scrape();
  std::vector<TargetStatus> Statuses() const;

 private:
  TargetStatus ScrapeOne(const ScrapeTarget& target, int64_t now_ms);

  Window& window_;
  const controller::Clock& clock_;
  ScrapeOptions options_;
  std::vector<ScrapeTarget> targets_;
  mutable std::mutex mu_;
  std::vector<TargetStatus> statuses_;
};

}  // namespace plinth::metrics
