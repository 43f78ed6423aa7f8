// alert export|status|silence|silences|expire (docs/automation.md, "Alert
// rules" and "Silences"): the configuration's alert rules as a Prometheus
// rule file, what the controller's alerts are doing, and silences in the
// controller's notification database (<DIR>/.plinth/<ws>/controller/alerts.db),
// which a running controller reads at its next flush.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "runtime/controller/alert_rules.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/notify.h"
#include "runtime/plan/plan.h"
#include "runtime/providers/external.h"

namespace plinth::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "error: %s\n", runtime::EscapeControls(message).c_str());
  return 1;
}

std::string IsoTime(int64_t ms) {
  time_t s = static_cast<time_t>(ms / 1000);
  struct tm tm {};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

fs::path AlertsDb(const Options& o, const std::string& dir) {
  return fs::path(dir) / ".plinth" / o.workspace / "controller" / "alerts.db";
}

// The silences-only Notifier on the workspace's database.
std::unique_ptr<controller::Notifier> OpenSilences(const Options& o, const std::string& dir, controller::Clock& clock,
                                                   bool create, std::string* error) {
  fs::path db = AlertsDb(o, dir);
  std::error_code ec;
  if (!create && !fs::exists(db, ec)) {
    *error = "no controller has kept alerts for workspace '" + o.workspace + "' in " + dir +
             " (no " + db.string() + "); start one with: plinth controller " + dir;
    return nullptr;
  }
  fs::create_directories(db.parent_path(), ec);
  controller::NotifierOptions no;
  no.database = db;
  return controller::Notifier::Open(no, clock, error);
}

int Export(const Options& o, const std::string& dir) {
  SourceManager sources;
  Diagnostics diags;
  runtime::ExternalProviders external(dir);
  CheckOptions co = ConfigCheckOptions(VariableSourcesOf(o), external);
  CheckedConfig config = Check(dir, sources, diags, co);
  if (!diags.has_errors()) controller::CheckAlertRules(config.alerts, diags);
  std::string text;
  if (!diags.has_errors()) {
    const int64_t interval = config.notification.declared ? config.notification.evaluation_interval_ms : 15'000;
    text = controller::PrometheusRuleFile(config.alerts, "plinth-" + o.workspace, interval, diags);
  }
  if (diags.has_errors()) {
    PrintDiagnostics(o, sources, diags);
    return 1;
  }
  if (o.out.empty() || o.out == "-") {
    std::cout << text;
    return 0;
  }
  std::string tmp = o.out + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return Fail("cannot write " + tmp);
  }
  std::error_code ec;
  fs::rename(tmp, o.out, ec);
  if (ec) return Fail("cannot write " + o.out + ": " + ec.message());
  std::fprintf(stderr, "wrote %zu alert rules to %s (check with: promtool check rules %s)\n", config.alerts.size(),
               o.out.c_str(), o.out.c_str());
  return 0;
}

int ShowStatus(const Options& o, const std::string& dir) {
  fs::path path = fs::path(dir) / ".plinth" / o.workspace / "controller" / "status.json";
  std::ifstream in(path);
  if (!in) return Fail("no controller has run for workspace '" + o.workspace + "' (start one with: plinth controller " + dir + ")");
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded()) return Fail("'" + path.string() + "' is not JSON; a controller rewrites it on its next pass");
  json alerts = doc.value("alerts", json::object());
  if (o.json) {
    std::cout << alerts.dump(2) << "\n";
    return 0;
  }
  json rules = alerts.value("rules", json::array());
  if (rules.empty()) {
    std::printf("no alert rules are evaluated (%s)\n", alerts.value("summary", std::string("no alerts task yet")).c_str());
    return 0;
  }
  for (const json& r : rules) {
    std::string state = r.value("state", std::string("?"));
    if (r.value("no_data", false)) state += " (no data)";
    std::string value = r.contains("value") ? " value " + r["value"].dump() : "";
    std::printf("%-28s %-22s%s\n", r.value("name", std::string()).c_str(), state.c_str(), value.c_str());
    if (const json a = r.value("alert", json()); a.is_object()) {
      for (const auto& [k, v] : a.value("annotations", json::object()).items()) {
        if (v.is_string()) std::printf("    %s: %s\n", k.c_str(), v.get<std::string>().c_str());
      }
    }
  }
  if (const json n = alerts.value("notifications", json()); n.is_object()) {
    std::printf("notifications: %lld delivered, %lld waiting, %lld failed attempts%s\n",
                static_cast<long long>(n.value("delivered", int64_t{0})),
                static_cast<long long>(n.value("outbox", int64_t{0})),
                static_cast<long long>(n.value("failed_attempts", int64_t{0})),
                n.value("last_error", std::string()).empty() ? ""
                                                             : ("; last error: " + n.value("last_error", std::string())).c_str());
  }
  return 0;
}

int Silence(const Options& o, const std::string& dir, const std::vector<std::string>& texts) {
  if (texts.empty()) return Fail("plinth alert silence needs at least one matcher, such as 'alertname=ModelSlow'");
  controller::Silence s;
  for (const std::string& t : texts) {
    controller::Matcher m;
    std::string why;
    if (!controller::ParseMatcher(t, &m, &why)) return Fail("matcher '" + t + "': " + why);
    s.matchers.push_back(std::move(m));
  }
  int64_t duration_ms = 0;
  const std::string& d = o.alert.duration.empty() ? std::string("1h") : o.alert.duration;
  if (!ParseDuration(d, &duration_ms) || duration_ms <= 0) {
    std::fprintf(stderr, "error: --for takes a duration such as 30m or 2h, not '%s'\n", d.c_str());
    return 2;
  }
  controller::SystemClock clock;
  s.starts_at_ms = clock.WallMs();
  s.ends_at_ms = s.starts_at_ms + duration_ms;
  const char* user = std::getenv("USER");
  s.created_by = !o.alert.author.empty() ? o.alert.author : user ? user : "plinth";
  s.comment = o.alert.comment;
  std::string error;
  auto n = OpenSilences(o, dir, clock, true, &error);
  if (!n) return Fail(error);
  std::optional<std::string> id = n->AddSilence(s, &error);
  if (!id) return Fail(error);
  if (o.json) {
    std::cout << json{{"id", *id}, {"ends_at", IsoTime(s.ends_at_ms)}}.dump() << "\n";
  } else {
    std::printf("silence %s: until %s\n", id->c_str(), IsoTime(s.ends_at_ms).c_str());
  }
  return 0;
}

int ListSilences(const Options& o, const std::string& dir) {
  controller::SystemClock clock;
  std::string error;
  auto n = OpenSilences(o, dir, clock, false, &error);
  if (!n) return Fail(error);
  json out = json::array();
  for (const controller::Silence& s : n->Silences(false)) {
    json matchers = json::array();
    for (const controller::Matcher& m : s.matchers) matchers.push_back(controller::MatcherString(m));
    out.push_back({{"id", s.id},
                   {"matchers", matchers},
                   {"starts_at", IsoTime(s.starts_at_ms)},
                   {"ends_at", IsoTime(s.ends_at_ms)},
                   {"active", s.ActiveAt(clock.WallMs())},
                   {"created_by", s.created_by},
                   {"comment", s.comment}});
  }
  if (o.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  if (out.empty()) std::printf("no silences\n");
  for (const json& s : out) {
    std::string m;
    for (const json& x : s["matchers"]) m += (m.empty() ? "" : ", ") + x.get<std::string>();
    std::printf("%s  {%s}  %s until %s, by %s%s\n", s["id"].get<std::string>().c_str(), m.c_str(),
                s["active"].get<bool>() ? "active" : "pending", s["ends_at"].get<std::string>().c_str(),
                s["created_by"].get<std::string>().c_str(),
                s["comment"].get<std::string>().empty() ? "" : (": " + s["comment"].get<std::string>()).c_str());
  }
  return 0;
}

int Expire(const Options& o, const std::string& dir, const std::string& id) {
  controller::SystemClock clock;
  std::string error;
  auto n = OpenSilences(o, dir, clock, false, &error);
  if (!n) return Fail(error);
  if (!n->ExpireSilence(id, &error)) return Fail(error);
  std::printf("silence %s expired\n", id.c_str());
  return 0;
}

}  // namespace

int Alert(const Options& options) {
  const std::vector<std::string>& p = options.paths;
  if (p.empty()) return Fail("plinth alert needs a subcommand: export, status, silence, silences or expire");
  const std::string& sub = p[0];
  std::string dir = ConfigDir(options);
  if (sub == "export" || sub == "status" || sub == "silences") {
    if (p.size() > 1) dir = p[1];
  }
  if (!ExistingDir(dir)) return 1;
  if (sub == "export") return Export(options, dir);
  if (sub == "status") return ShowStatus(options, dir);
  if (sub == "silences") return ListSilences(options, dir);
  if (sub == "silence") return Silence(options, dir, std::vector<std::string>(p.begin() + 1, p.end()));
  if (sub == "expire") {
    if (p.size() < 2) return Fail("plinth alert expire needs a silence id (see: plinth alert silences)");
    return Expire(options, dir, p[1]);
  }
  return Fail("plinth alert has no subcommand '" + sub + "'");
}

}  // namespace plinth::cli
