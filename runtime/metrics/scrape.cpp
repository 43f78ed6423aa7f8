#include "runtime/metrics/scrape.h"

#include <curl/curl.h>

#include <algorithm>
#include <mutex>
#include <system_error>
#include <thread>

namespace plinth::metrics {

namespace {

void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct Sink {
  std::string* body;
  size_t cap;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t bytes = size * n;
  if (sink->body->size() + bytes > sink->cap) {
    sink->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  sink->body->append(data, bytes);
  return bytes;
}

}  // namespace

FetchResult FetchMetrics(const std::string& url, const FetchOptions& options) {
  GlobalInit();
  FetchResult result;
  std::string what = "GET " + url + ": ";
  if (url.rfind("http://", 0) != 0) {
    result.error = what + "only http:// URLs can be scraped";
    return result;
  }
  CURL* curl = curl_easy_init();
  if (!curl) {
    result.error = what + "cannot create an HTTP handle";
    return result;
  }
  char error[CURL_ERROR_SIZE] = {0};
  Sink sink{&result.body, options.max_body_bytes};
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // thread-safe timeouts
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_slist* headers = curl_slist_append(nullptr, "Accept: text/plain;version=0.0.4");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  result.status = static_cast<int>(status);
  if (sink.too_large) {
    result.too_large = true;
    result.error = what + "body larger than " + std::to_string(options.max_body_bytes) +
                   " bytes; the target exports too much or the cap is too low";
  } else if (rc != CURLE_OK) {
    result.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    result.error = what + (error[0] ? error : curl_easy_strerror(rc));
  } else if (status != 200) {
    result.error = what + "HTTP status " + std::to_string(status) + ", expected 200";
  } else {
    result.ok = true;
  }
  if (!result.ok) result.body.clear();
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

Scraper::Scraper(Window& window, const controller::Clock& clock, ScrapeOptions options)
    : window_(window), clock_(clock), options_(std::move(options)) {
  if (options_.parallelism == 0) options_.parallelism = 1;
}

void Scraper::SetTargets(std::vector<ScrapeTarget> targets) {
  targets_ = std::move(targets);
}

TargetStatus Scraper::ScrapeOne(const ScrapeTarget& target, int64_t now_ms) {
  TargetStatus st;
  st.name = target.name;
  st.url = target.url;
  st.last_scrape_ms = now_ms;
  auto begin = clock_.Now();
  FetchResult fetched = FetchMetrics(target.url, options_.fetch);
  ParseResult parsed;
  if (fetched.ok) {
    parsed = ParseExposition(fetched.body, options_.parse);
    if (!parsed.ok) st.error = target.name + ": " + parsed.error;
  } else {
    st.error = target.name + ": " + fetched.error;
  }
  st.duration_s = std::chrono::duration<double>(clock_.Now() - begin).count();
  st.up = fetched.ok && parsed.ok;
  Labels base = target.labels;
  if (std::none_of(base.begin(), base.end(), [](const auto& l) { return l.first == "instance"; }))
    base.emplace_back("instance", target.name);
  // First, so that a target exposing its own `up` cannot hide ours.
  window_.Append("up", base, now_ms, st.up ? 1 : 0);
  window_.Append("scrape_duration_seconds", base, now_ms, st.duration_s);
  window_.Append("scrape_samples_scraped", base, now_ms,
                 st.up ? static_cast<double>(parsed.samples.size()) : 0);
  if (st.up) {
    for (auto& sample : parsed.samples) {
      Labels labels = base;
      for (auto& label : sample.labels) {
        const std::string& k = label.first;  // (a structured binding cannot be captured before C++20 in clang)
        bool clash = std::any_of(base.begin(), base.end(), [&](const auto& l) { return l.first == k; });
        labels.emplace_back(clash ? "exported_" + k : k, label.second);
      }
      if (window_.Append(sample.name, std::move(labels), now_ms, sample.value)) ++st.samples;
    }
  }
  return st;
}

size_t Scraper::Scrape() {
  int64_t now_ms = clock_.WallMs();
  std::vector<TargetStatus> out(targets_.size());
  for (size_t begin = 0; begin < targets_.size(); begin += options_.parallelism) {
    size_t end = std::min(targets_.size(), begin + options_.parallelism);
    std::vector<std::thread> threads;
    for (size_t i = begin; i < end; ++i) {
      try {
        threads.emplace_back([this, i, now_ms, &out] { out[i] = ScrapeOne(targets_[i], now_ms); });
      } catch (const std::system_error&) {
        out[i] = ScrapeOne(targets_[i], now_ms);  // no thread to be had: on this one
      }
    }
    for (auto& t : threads) t.join();
  }
  window_.Compact(now_ms);
  size_t up =
      static_cast<size_t>(std::count_if(out.begin(), out.end(), [](const TargetStatus& s) { return s.up; }));
  std::lock_guard lock(mu_);
  statuses_ = std::move(out);
  return up;
}

std::vector<TargetStatus> Scraper::Statuses() const {
  std::lock_guard lock(mu_);
  return statuses_;
}

}  // namespace plinth::metrics
