// Maintenance windows and Debian packages of the local provider: the checks,
// the window decision, plan and apply (packages.h), and DpkgSystem, which runs
// dpkg-query, dpkg-deb, dpkg, apt-get and apt-mark through the process layer.
#include "runtime/providers/local/packages.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <sstream>

#include "runtime/process/process.h"
#include "runtime/provider/values.h"

namespace plinth::runtime::packages {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kDefaultDeadlineMs = 10 * 60 * 1000;

ProviderError Fail(std::string message, bool retryable = false) {
  return ProviderError{std::move(message), retryable};
}

using values::Find;
using values::Flag;
using values::Text;
constexpr auto IsKnownString = values::KnownString;

// The Debian package a package resource manages: `package`, else the label.
std::string PackageName(const ValueMap& m) {
  std::string p = Text(m, "package");
  return p.empty() ? Text(m, "name") : p;
}

// What a change does, for notes and errors: "install plinth-test-pkg 1.0-1".
std::string ChangeText(const std::string& pkg, const std::string& from, const Value& to) {
  if (to.is_unknown()) return "install " + pkg + " (apt's candidate version)";
  const std::string& t = to.as_string();
  if (t.empty()) return "remove " + pkg + " " + from;
  if (from.empty()) return "install " + pkg + " " + t;
  return "change " + pkg + " from " + from + " to " + t;
}

std::string NeedsRoot(const std::string& what) {
  return "cannot " + what +
         ": changing Debian packages needs root; run plinth as root (sudo plinth apply), or "
         "plan this change where it can be applied";
}

}  // namespace

// ------------------------------------------------------ maintenance windows

namespace {

// Parses what is known of a window's settings into `w` and `zone`; each
// problem goes to *errors. `unknown` is set when a setting is not known yet.
void ParseWindow(const ValueMap& c, controller::MaintenanceWindow* w,
                 std::optional<controller::TimeZone>* zone, std::vector<std::string>* errors, bool* unknown) {
  std::string error;
  if (const Value* d = Find(c, "days"); d && d->is_unknown()) {
    *unknown = true;
  } else if (IsKnownString(d)) {
    if (auto days = controller::ParseWeekdays(d->as_string(), &error))
      w->weekdays = *days;
    else
      errors->push_back("days \"" + d->as_string() + "\": " + error);
  }
  if (const Value* s = Find(c, "start"); IsKnownString(s)) {
    if (auto minute = controller::ParseClock(s->as_string(), &error))
      w->start_minute = *minute;
    else
      errors->push_back(error);
  } else {
    *unknown = true;
  }
  if (const Value* d = Find(c, "duration"); d && d->kind() == Value::Kind::Duration) {
    const double ms = d->as_number();
    if (ms > 0 && ms < 1000)
      errors->push_back("duration must be at least 1s");
    else
      w->duration_s = static_cast<int64_t>(ms / 1000);
  } else {
    *unknown = true;
  }
  const Value* tz = Find(c, "timezone");
  if (tz && tz->is_unknown()) {
    *unknown = true;
  } else {
    const std::string name = IsKnownString(tz) ? tz->as_string() : "UTC";
    auto loaded = controller::TimeZone::Load(name, &error);
    if (loaded)
      *zone = std::move(*loaded);
    else
      errors->push_back(error);
  }
  if (const Value* ex = Find(c, "exclude"); ex && ex->ContainsUnknown()) {
    *unknown = true;
  } else if (ex && ex->kind() == Value::Kind::List) {
    for (const Value& d : ex->as_list())
      if (d.kind() == Value::Kind::String) w->excluded_dates.push_back(d.as_string());
  }
  for (std::string& e : controller::ValidateWindow(*w)) {
    if (e.rfind("start ", 0) == 0) continue;  // ParseClock said it already
    errors->push_back(std::move(e));
  }
}

}  // namespace

std::vector<std::string> ValidateWindowConfig(const ValueMap& config) {
  controller::MaintenanceWindow w;
  std::optional<controller::TimeZone> zone;
  std::vector<std::string> errors;
  bool unknown = false;
  ParseWindow(config, &w, &zone, &errors, &unknown);
  std::vector<std::string> out;
  for (std::string& e : errors) out.push_back("maintenance window: " + e);
  return out;
}

std::optional<ResolvedWindow> WindowOf(const ValueMap& attributes, std::string* error) {
  ResolvedWindow r;
  r.name = Text(attributes, "name");
  std::optional<controller::TimeZone> zone;
  std::vector<std::string> errors;
  bool unknown = false;
  ParseWindow(attributes, &r.window, &zone, &errors, &unknown);
  if (!errors.empty()) return *error = "maintenance window " + r.name + ": " + errors.front(), std::nullopt;
  if (unknown || !zone)
    return *error = "the settings of maintenance window " + r.name + " are not known yet", std::nullopt;
  r.zone = std::move(*zone);
  return r;
}

void NormalizeWindowReference(const ValueMap& config, ValueMap& planned) {
  const Value* ref = Find(config, "window");
  if (!ref || ref->kind() != Value::Kind::Object) return;
  ValueMap out;
  for (const char* k : {"name", "days", "start", "duration", "timezone", "exclude"}) {
    if (const Value* v = Find(ref->as_object(), k); v && !v->is_null()) out[k] = *v;
  }
  planned["window"] = Value::Object(std::move(out));
}

WindowDecision DecideWindow(const ResolvedWindow& w, int64_t now_s) {
  return controller::DecideWindow(w.window, w.zone, now_s);
}

bool WindowsIgnoredByEnvironment() { return controller::WindowsIgnoredByEnvironment(); }

// ------------------------------------------------------------------ packages

bool ValidPackageName(const std::string& name) {
  if (name.size() < 2 || name.size() > 128) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  for (char c : name)
    if (!lower_or_digit(c) && c != '+' && c != '-' && c != '.') return false;
  return true;
}

bool ValidVersion(const std::string& version) {
  if (version.empty() || version.size() > 128) return false;
  size_t start = 0;
  if (auto colon = version.find(':'); colon != std::string::npos) {
    if (colon == 0) return false;
    for (size_t i = 0; i < colon; ++i)
      if (version[i] < '0' || version[i] > '9') return false;
    start = colon + 1;
  }
  if (start >= version.size() || version[start] < '0' || version[start] > '9') return false;
  for (size_t i = start; i < version.size(); ++i) {
    const char c = version[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '+' || c == '~' || c == '-' || c == ':';
    if (!ok) return false;
  }
  return version.back() != '-';
}

std::vector<std::string> ValidatePackageConfig(const ValueMap& config) {
  std::vector<std::string> out;
  const Value* pkg = Find(config, "package");
  if (IsKnownString(pkg)) {
    if (!ValidPackageName(pkg->as_string()))
      out.push_back(
          "package \"" + pkg->as_string() +
          "\" is not a Debian package name: give lowercase letters, digits, '+', '-' and '.', starting "
          "with a letter or digit (such as \"htop\")");
  } else if ((!pkg || pkg->is_null()) && IsKnownString(Find(config, "name")) &&
             !ValidPackageName(Text(config, "name"))) {
    out.push_back("the label \"" + Text(config, "name") +
                  "\" is not a Debian package name: give the package's name with package = \"...\"");
  }
  const Value* version = Find(config, "version");
  if (IsKnownString(version) && !ValidVersion(version->as_string()))
    out.push_back(
        "version \"" + version->as_string() +
        "\" is not a Debian version: give [epoch:]upstream[-revision] starting with a digit, such as "
        "\"1.0-1\" or \"2:8.2.3995-1\" (letters, digits and . + ~ - : only)");
  const Value* source = Find(config, "source");
  if (IsKnownString(source)) {
    const std::string& s = source->as_string();
    if (s.empty() || s[0] != '/' || s.size() < 5 || s.compare(s.size() - 4, 4, ".deb") != 0 ||
        s.find('\n') != std::string::npos)
      out.push_back("source \"" + s +
                    "\" is not an absolute path to a .deb file: give one such as \"/srv/debs/" +
                    "tool_1.0-1_amd64.deb\"");
  }
  const Value* ensure = Find(config, "ensure");
  if (IsKnownString(ensure)) {
    const std::string& e = ensure->as_string();
    if (e != "present" && e != "absent")
      out.push_back("ensure \"" + e + "\" is not \"present\" or \"absent\"");
    const bool has_version = version && !version->is_null();
    const bool has_source = source && !source->is_null();
    if (e == "absent" && (has_version || has_source || Flag(config, "hold")))
      out.push_back(
          "ensure = \"absent\" takes no version, source or hold: remove them, or ensure = \"present\"");
    if (e == "present" && Flag(config, "hold") && !has_version && !has_source)
      out.push_back(
          "hold = true needs a pinned version: set version (apt-mark hold then keeps the package at it), or "
          "a "
          "source .deb");
  }
  if (const Value* t = Find(config, "timeout");
      t && t->kind() == Value::Kind::Duration && t->as_number() < 1000)
    out.push_back("timeout must be at least 1s");
  return out;
}

std::optional<Installed> ParseDpkgStatus(const std::string& line) {
  std::istringstream in(line);
  std::string want, error, status, version;
  if (!(in >> want >> error >> status)) return std::nullopt;
  in >> version;
  std::string extra;
  if (in >> extra) return std::nullopt;
  static const char* kWants[] = {"unknown", "install", "hold", "deinstall", "purge"};
  bool known = false;
  for (const char* k : kWants) known = known || want == k;
  if (!known) return std::nullopt;
  Installed out;
  out.held = want == "hold";
  if (status == "installed") out.version = version;
  return out;
}

// ------------------------------------------------------------- DpkgSystem

namespace {

std::mutex& ChangeMutex() {
  static std::mutex mu;  // one dpkg change at a time in this process
  return mu;
}

class Dpkg final : public PackageSystem {
 public:
  Dpkg(std::chrono::milliseconds deadline, DpkgPrograms programs)
      : deadline_(deadline), programs_(std::move(programs)) {}

  Result<Installed> Query(const std::string& package) override {
    process::Outcome out = Run(programs_.dpkg_query, {"-W", "--showformat=${Status} ${Version}\n", package});
    if (!out.ok()) {
      if (out.started && out.exit_code == 1 && out.err.find("no packages found") != std::string::npos)
        return Installed{};
      return Failed("dpkg-query -W " + package, out);
    }
    Installed found;
    std::istringstream lines(out.out);
    std::string line;
    bool any = false;
    while (std::getline(lines, line)) {
      if (line.empty()) continue;
      auto parsed = ParseDpkgStatus(line);
      if (!parsed)
        return Fail("dpkg-query -W " + package + " printed '" + line + "', not a status and version");
      any = true;
      if (!parsed->version.empty() || !found.version.empty()) {
        if (found.version.empty()) found = *parsed;
      } else {
        found.held = found.held || parsed->held;
      }
    }
    if (!any) return Installed{};
    return found;
  }

  Result<DebInfo> Inspect(const fs::path& deb) override {
    process::Outcome out = Run(programs_.dpkg_deb, {"-f", deb.string(), "Package", "Version"});
    if (!out.ok()) return Failed("dpkg-deb -f " + deb.string(), out);
    DebInfo info;
    std::istringstream lines(out.out);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind("Package: ", 0) == 0) info.package = line.substr(9);
      if (line.rfind("Version: ", 0) == 0) info.version = line.substr(9);
    }
    if (!ValidPackageName(info.package) || !ValidVersion(info.version))
      return Fail(deb.string() + " names no valid package and version (Package: '" + info.package +
                  "', Version: '" + info.version + "')");
    return info;
  }

  Result<Done> Install(const std::string& package, const std::string& version, const fs::path& deb) override {
    std::lock_guard lock(ChangeMutex());
    const std::string target = !deb.empty()      ? deb.string()
                               : version.empty() ? package
                                                 : package + "=" + version;
    std::vector<std::string> args = {"-y",
                                     "-q",
                                     "-o",
                                     "DPkg::Lock::Timeout=120",
                                     "-o",
                                     "Dpkg::Options::=--force-confdef",
                                     "-o",
                                     "Dpkg::Options::=--force-confold",
                                     "--no-install-recommends",
                                     "--allow-downgrades",
                                     "--allow-change-held-packages",
                                     "install",
                                     target};
    process::Outcome out = Run(programs_.apt_get, args);
    // A version apt has not heard of yet: read the sources once and try again.
    if (!out.ok() && deb.empty() && out.started && !out.timed_out &&
        (out.err.find("Unable to locate package") != std::string::npos ||
         out.err.find("was not found") != std::string::npos)) {
      process::Outcome update = Run(programs_.apt_get, {"-q", "-o", "DPkg::Lock::Timeout=120", "update"});
      if (!update.ok()) return Failed("apt-get update", update);
      out = Run(programs_.apt_get, args);
    }
    if (!out.ok()) return Failed("apt-get install " + target, out);
    return Done{};
  }

  Result<Done> Remove(const std::string& package) override {
    std::lock_guard lock(ChangeMutex());
    process::Outcome out = Run(programs_.dpkg, {"--remove", package});
    if (!out.ok()) return Failed("dpkg --remove " + package, out);
    return Done{};
  }

  Result<Done> SetHold(const std::string& package, bool hold) override {
    std::lock_guard lock(ChangeMutex());
    const char* verb = hold ? "hold" : "unhold";
    process::Outcome out = Run(programs_.apt_mark, {verb, package});
    if (!out.ok()) return Failed(std::string("apt-mark ") + verb + " " + package, out);
    return Done{};
  }

 private:
  process::Outcome Run(const fs::path& program, std::vector<std::string> args) const {
    process::Spec spec;
    spec.program = program;
    spec.args = std::move(args);
    spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"},
                {"LC_ALL", "C"},
                {"DEBIAN_FRONTEND", "noninteractive"},
                {"APT_LISTCHANGES_FRONTEND", "none"}};
    for (const char* k : {"APT_CONFIG", "http_proxy", "https_proxy", "no_proxy"}) {
      if (const char* v = std::getenv(k)) spec.env[k] = v;
    }
    spec.deadline = deadline_;
    spec.max_stdout = 1 << 20;
    spec.max_stderr = 64 << 10;
    return process::Run(std::move(spec));
  }

  static ProviderError Failed(const std::string& shown, const process::Outcome& out) {
    if (!out.started) return Fail("cannot run '" + shown + "': " + out.start_error);
    std::string program = shown.substr(0, shown.find(' '));
    std::string message = "'" + shown + "' failed: " + out.Describe(program);
    // Another dpkg holds the lock past apt's wait: the same call may work later.
    bool busy = out.err.find("Could not get lock") != std::string::npos ||
                out.err.find("dpkg frontend lock") != std::string::npos;
    return Fail(std::move(message), busy);
  }

  std::chrono::milliseconds deadline_;
  DpkgPrograms programs_;
};

}  // namespace

std::unique_ptr<PackageSystem> DpkgSystem(std::chrono::milliseconds deadline, DpkgPrograms programs) {
  return std::make_unique<Dpkg>(deadline, std::move(programs));
}

Machine::Machine(const ValueMap* attributes) {
  int64_t ms = kDefaultDeadlineMs;
  if (attributes) {
    if (const Value* t = Find(*attributes, "timeout");
        t && t->kind() == Value::Kind::Duration && t->as_number() > 0)
      ms = static_cast<int64_t>(t->as_number());
  }
  system_ = DpkgSystem(std::chrono::milliseconds(ms));
  ctx_.system = system_.get();
  ctx_.clock = &clock_;
  ctx_.ignore_windows = WindowsIgnoredByEnvironment();
  ctx_.root = ::geteuid() == 0;
}

// ------------------------------------------------------------ plan, apply

namespace {

// The window of a package's attributes: none (no window), open, or closed
// with when it opens next. An error when its settings are invalid.
struct WindowState {
  bool has_window = false;
  bool known = true;  // false: settings unknown until apply
  std::string name;
  WindowDecision decision;
};

Result<WindowState> WindowNow(const ValueMap& attrs, const PackageContext& ctx) {
  WindowState s;
  const Value* w = Find(attrs, "window");
  if (!w || w->is_null()) return s;
  s.has_window = true;
  if (w->kind() != Value::Kind::Object || w->ContainsUnknown()) {
    s.known = false;
    return s;
  }
  std::string error;
  auto resolved = WindowOf(w->as_object(), &error);
  if (!resolved) return Fail(error);
  s.name = resolved->name;
  s.decision = DecideWindow(*resolved, ctx.clock->WallMs() / 1000);
  return s;
}

}  // namespace

Result<Done> PlanPackage(ValueMap& planned, const ValueMap* prior, const PackageContext& ctx,
                         std::vector<std::string>* notes) {
  const std::string pkg = PackageName(planned);
  if (!ValidPackageName(pkg))
    return Fail("\"" + pkg +
                "\" is not a Debian package name: give the package's name with package = \"...\" " +
                "(lowercase letters, digits, '+', '-' and '.')");
  planned["package"] = Value::String(pkg);
  planned["id"] = Value::String(pkg);
  const std::string ensure = Text(planned, "ensure").empty() ? "present" : Text(planned, "ensure");

  // What is installed: the refreshed state, or dpkg when there is none.
  Installed now;
  const Value* prior_installed = prior ? Find(*prior, "installed") : nullptr;
  if (prior && IsKnownString(prior_installed) && Text(*prior, "package") == pkg) {
    now.version = prior_installed->as_string();
    now.held = Flag(*prior, "held");
  } else {
    auto q = ctx.system->Query(pkg);
    if (!q.ok()) return q.error();
    now = q.value();
  }

  // What apply should leave.
  Value target = Value::Unknown(Type::String());
  const Value* version = Find(planned, "version");
  const Value* source = Find(planned, "source");
  if (IsKnownString(version) && !ValidVersion(version->as_string()))
    return Fail("version \"" + version->as_string() + "\" is not a Debian version");
  if (ensure == "absent") {
    target = Value::String("");
  } else if (IsKnownString(version)) {
    target = *version;
  } else if (version && version->is_unknown()) {
    // known at apply only
  } else if (IsKnownString(source)) {
    auto info = ctx.system->Inspect(source->as_string());
    if (!info.ok()) return info.error();
    if (info.value().package != pkg)
      return Fail("source " + source->as_string() + " holds package " + info.value().package + ", not " +
                  pkg + ": give package = \"" + info.value().package + "\", or the .deb of " + pkg);
    target = Value::String(info.value().version);
  } else if (source && source->is_unknown()) {
    // known at apply only
  } else if (!now.version.empty()) {
    target = Value::String(now.version);  // unpinned and installed: whatever it is
  }
  if (IsKnownString(version) && IsKnownString(source)) {
    auto info = ctx.system->Inspect(source->as_string());
    if (!info.ok()) return info.error();
    if (info.value().version != version->as_string())
      return Fail("source " + source->as_string() + " holds version " + info.value().version + ", not " +
                  version->as_string() + ": give version = \"" + info.value().version +
                  "\" or leave version out");
  }
  const bool want_held = ensure == "present" && Flag(planned, "hold");
  const bool version_change = target.is_unknown() || target.as_string() != now.version;
  const bool hold_change = want_held != now.held && !now.version.empty();

  planned["installed"] = Value::String(now.version);
  planned["held"] = Value::Bool(now.held);
  if (!version_change && !hold_change) return Done{};

  const std::string change = version_change ? ChangeText(pkg, now.version, target)
                                            : std::string(want_held ? "hold " : "unhold ") + pkg;
  if (version_change) {
    auto window = WindowNow(planned, ctx);
    if (!window.ok()) return window.error();
    const WindowState& w = window.value();
    if (w.has_window && w.known && !w.decision.open) {
      if (!ctx.ignore_windows) {
        // Deferred: the plan leaves the package as it is, and says why.
        notes->push_back("waits for maintenance window " + w.name + ": " + w.decision.next +
                         "; then apply will " + change);
        return Done{};
      }
      notes->push_back("maintenance window " + w.name + " is closed (" + w.decision.next +
                       "), but PLINTH_IGNORE_WINDOWS=1: apply will " + change + " now");
    }
  }
  if (!ctx.root) return Fail(NeedsRoot(change));
  if (version_change) planned["installed"] = target;
  planned["held"] = Value::Bool(want_held);
  return Done{};
}

Result<ResourceObject> ApplyPackage(const ValueMap& planned, const PackageContext& ctx) {
  const std::string pkg = PackageName(planned);
  if (!ValidPackageName(pkg)) return Fail("package \"" + pkg + "\" is not a Debian package name");
  auto q = ctx.system->Query(pkg);
  if (!q.ok()) return q.error();
  const Installed now = q.value();
  const Value* target = Find(planned, "installed");
  const bool want_held = Flag(planned, "held");
  const bool version_change =
      !target || target->is_unknown() || (IsKnownString(target) && target->as_string() != now.version);
  if (version_change) {
    const Value unknown = Value::Unknown(Type::String());
    const std::string change = ChangeText(pkg, now.version, target ? *target : unknown);
    auto window = WindowNow(planned, ctx);
    if (!window.ok()) return window.error();
    const WindowState& w = window.value();
    if (w.has_window && !w.known) return Fail("cannot " + change + ": the maintenance window is not known");
    if (w.has_window && !w.decision.open && !ctx.ignore_windows)
      return Fail("maintenance window " + w.name + " closed since the plan (" + w.decision.next +
                  "): did not " + change +
                  "; apply again inside the window (PLINTH_IGNORE_WINDOWS=1 overrides it in an " +
                  "emergency)");
    if (!ctx.root) return Fail(NeedsRoot(change));
    if (now.held) {
      if (auto r = ctx.system->SetHold(pkg, false); !r.ok()) return r.error();
    }
    if (IsKnownString(target) && target->as_string().empty()) {
      if (auto r = ctx.system->Remove(pkg); !r.ok()) return r.error();
    } else {
      const std::string source = Text(planned, "source");
      const std::string version = source.empty() ? Text(planned, "version") : "";
      if (!version.empty() && !ValidVersion(version))
        return Fail("version \"" + version + "\" is not a Debian version");
      if (auto r = ctx.system->Install(pkg, version, source); !r.ok()) return r.error();
    }
  }
  auto after = ctx.system->Query(pkg);
  if (!after.ok()) return after.error();
  if (!after.value().version.empty() && after.value().held != want_held) {
    if (!ctx.root) return Fail(NeedsRoot(std::string(want_held ? "hold " : "unhold ") + pkg));
    if (auto r = ctx.system->SetHold(pkg, want_held); !r.ok()) return r.error();
    after = ctx.system->Query(pkg);
    if (!after.ok()) return after.error();
  }
  if (IsKnownString(target) && after.value().version != target->as_string())
    return Fail("after the change dpkg reports " + pkg + " " +
                (after.value().version.empty() ? "not installed" : "at " + after.value().version) +
                ", not the planned " + (target->as_string().empty() ? "removal" : target->as_string()));
  ValueMap attrs = planned;
  attrs["installed"] = Value::String(after.value().version);
  attrs["held"] = Value::Bool(after.value().held);
  attrs["id"] = Value::String(pkg);
  return ResourceObject{pkg, std::move(attrs)};
}

Result<std::optional<ResourceObject>> ReadPackage(const std::string& id, const ValueMap& prior,
                                                  const PackageContext& ctx) {
  using Out = std::optional<ResourceObject>;
  if (!ValidPackageName(id)) return Fail("package id \"" + id + "\" is not a Debian package name");
  auto q = ctx.system->Query(id);
  if (!q.ok()) return q.error();
  // The resource is Plinth's record of the package: it exists whether or not
  // the package is installed, which is the drift the next plan corrects.
  ValueMap attrs = prior;
  attrs["installed"] = Value::String(q.value().version);
  attrs["held"] = Value::Bool(q.value().held);
  return Out(ResourceObject{id, std::move(attrs)});
}

namespace {

// Why destroying the package would be refused now; empty: it would not.
// *installed: the version a destroy removes ("" when nothing).
Result<std::string> DeleteRefusal(const std::string& id, const ValueMap& prior, const PackageContext& ctx,
                                  Installed* installed) {
  if (!ValidPackageName(id)) return Fail("package id \"" + id + "\" is not a Debian package name");
  auto q = ctx.system->Query(id);
  if (!q.ok()) return q.error();
  *installed = q.value();
  if (installed->version.empty() || Text(prior, "ensure") == "absent") {
    installed->version.clear();
    return std::string();
  }
  auto window = WindowNow(prior, ctx);
  if (!window.ok()) return window.error();
  const WindowState& w = window.value();
  if (w.has_window && w.known && !w.decision.open && !ctx.ignore_windows)
    return "removing " + id + " " + installed->version + " waits for maintenance window " + w.name + ": " +
           w.decision.next +
           "; destroy inside the window (PLINTH_IGNORE_WINDOWS=1 overrides it in an emergency)";
  if (!ctx.root) return NeedsRoot("remove " + id + " " + installed->version);
  return std::string();
}

}  // namespace

Result<DeletePreview> PlanDeletePackage(const std::string& id, const ValueMap& prior,
                                        const PackageContext& ctx) {
  Installed installed;
  auto refusal = DeleteRefusal(id, prior, ctx, &installed);
  if (!refusal.ok()) return refusal.error();
  DeletePreview p;
  if (!installed.version.empty()) p.data.push_back("the Debian package " + id + " " + installed.version);
  p.refusal = refusal.value();
  return p;
}

Result<Done> DeletePackage(const std::string& id, const ValueMap& prior, const PackageContext& ctx) {
  Installed installed;
  auto refusal = DeleteRefusal(id, prior, ctx, &installed);
  if (!refusal.ok()) return refusal.error();
  if (!refusal.value().empty()) return Fail(refusal.value());
  if (installed.version.empty()) return Done{};
  if (installed.held) {
    if (auto r = ctx.system->SetHold(id, false); !r.ok()) return r.error();
  }
  return ctx.system->Remove(id);
}

std::vector<PlanConflict> CheckPackages(const std::vector<PlanItem>& items) {
  std::vector<PlanConflict> out;
  std::map<std::string, const PlanItem*> by_package;
  for (const PlanItem& item : items) {
    if (item.type != "package" || !item.planned) continue;
    const Value* p = Find(*item.planned, "package");
    if (!IsKnownString(p)) continue;
    auto [it, fresh] = by_package.emplace(p->as_string(), &item);
    if (fresh) continue;
    // The one to change is the newer one: of an existing and a new resource, the new one.
    const PlanItem* change = it->second->existing && !item.existing ? &item : it->second;
    const PlanItem* other = change == &item ? it->second : &item;
    out.push_back({{change->address, other->address},
                   change->address + " manages the Debian package " + p->as_string() + " as " +
                       other->address + " does: they would undo each other's changes; keep one of them"});
  }
  return out;
}

}  // namespace plinth::runtime::packages
