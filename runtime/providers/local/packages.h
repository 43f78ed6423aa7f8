// Maintenance windows and Debian packages of the local provider
// (docs/packages.md).
//
// `maintenance_window` is a resource without side effects: its settings
// (days, start, duration, timezone, exclude) are checked at plan through
// runtime/controller/maintenance.h and carried into what refers to it.
//
// `package` manages one Debian package on this machine through dpkg and
// apt-get, every child through the process layer (runtime/process). Its
// computed `installed` (the version dpkg reports; "" when not installed)
// and `held` (apt-mark hold) are what Read observes, so a package removed
// or changed outside Plinth is drift that the next plan shows. Plan decides
// what apply leaves: a change of the installed version (install, upgrade,
// downgrade, removal) is planned only while the package's `window` is open;
// outside it the planned `installed` stays the observed one (no change, the
// state keeps what is there) and the plan carries a note saying when the
// window next opens. Apply changes only what the plan planned and checks the
// window again first: a window that closed since the plan fails the change
// and touches nothing. PLINTH_IGNORE_WINDOWS=1 in the environment treats
// every window as open (emergencies), and the plan says so.
//
// Input: configured and planned values as the engine passes them; a
// PackageSystem (the real one: DpkgSystem) and a Clock for the time.
// Thread safety: the functions are pure apart from the PackageSystem, whose
// DpkgSystem serialises its changes (one dpkg at a time in this process).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/types/types.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/maintenance.h"
#include "runtime/provider/provider.h"

namespace plinth::runtime::packages {

// ------------------------------------------------------ maintenance windows

// The problems of a maintenance_window configuration, one message each
// ("days 'mon-fir': 'mon-fir' is not a weekday: ..."); unknown values are
// left to apply.
std::vector<std::string> ValidateWindowConfig(const ValueMap& config);

// A window as a package sees it: its name, its schedule and its zone.
struct ResolvedWindow {
  std::string name;
  controller::MaintenanceWindow window;
  controller::TimeZone zone = controller::TimeZone::Fixed(0);
};
// The window that a maintenance_window's attributes (or a package's
// `window` value, which carries them) describe; nullopt with *error when
// they are invalid or not known yet.
std::optional<ResolvedWindow> WindowOf(const ValueMap& attributes, std::string* error);

// A package's `window` as planned: the referenced window's name and
// settings (the state keeps them, so apply and destroy need no other
// resource), from the configuration's reference object.
void NormalizeWindowReference(const ValueMap& config, ValueMap& planned);

using controller::WindowDecision;
WindowDecision DecideWindow(const ResolvedWindow& w, int64_t now_s);

// PLINTH_IGNORE_WINDOWS=1: every window counts as open.
bool WindowsIgnoredByEnvironment();

// ------------------------------------------------------------------ packages

// Debian package names: lowercase letters, digits, '+', '-', '.', at least
// two characters, starting with a letter or digit (Debian policy 5.6.1).
bool ValidPackageName(const std::string& name);
// Debian versions: [epoch:]upstream[-revision], upstream starting with a
// digit, only letters, digits and . + ~ - : (Debian policy 5.6.12).
bool ValidVersion(const std::string& version);

std::vector<std::string> ValidatePackageConfig(const ValueMap& config);

// What dpkg says about a package.
struct Installed {
  std::string version;  // "" when not installed (also: removed, config files left)
  bool held = false;    // selection "hold"
};
// One line of `dpkg-query -W -f='${Status} ${Version}'`: "install ok
// installed 1.0-1", "hold ok installed 1.0-1", "deinstall ok config-files
// 1.0-1"; nullopt when it is not that.
std::optional<Installed> ParseDpkgStatus(const std::string& line);

struct DebInfo {
  std::string package, version;
};

// dpkg and apt-get on this machine; a fake in tests. Errors name the
// command and the last line of its stderr.
class PackageSystem {
 public:
  virtual ~PackageSystem() = default;
  // Not installed (or unknown to dpkg): Installed{}.
  virtual Result<Installed> Query(const std::string& package) = 0;
  // The package and version inside a .deb file (dpkg-deb -f).
  virtual Result<DebInfo> Inspect(const std::filesystem::path& deb) = 0;
  // Installs `version` of `package` from apt's sources, or the .deb `deb`
  // when not empty. An empty version: apt's candidate.
  virtual Result<Done> Install(const std::string& package, const std::string& version,
                               const std::filesystem::path& deb) = 0;
  // Removes the package (dpkg --remove: refused while another package
  // depends on it; configuration files stay).
  virtual Result<Done> Remove(const std::string& package) = 0;
  virtual Result<Done> SetHold(const std::string& package, bool hold) = 0;
};

// The programs DpkgSystem runs (absolute paths; tests put fakes there).
struct DpkgPrograms {
  std::filesystem::path dpkg_query = "/usr/bin/dpkg-query";
  std::filesystem::path dpkg_deb = "/usr/bin/dpkg-deb";
  std::filesystem::path dpkg = "/usr/bin/dpkg";
  std::filesystem::path apt_get = "/usr/bin/apt-get";
  std::filesystem::path apt_mark = "/usr/bin/apt-mark";
};
// Every child gets PATH, LC_ALL=C, DEBIAN_FRONTEND=noninteractive and, when
// set here, APT_CONFIG (an apt configuration file: other sources, a test
// repository) and the proxy variables; `deadline` bounds each command (a
// hung dpkg is killed and the change fails).
std::unique_ptr<PackageSystem> DpkgSystem(std::chrono::milliseconds deadline, DpkgPrograms programs = {});

// How plan and apply see the world besides the configuration.
struct PackageContext {
  PackageSystem* system = nullptr;
  const controller::Clock* clock = nullptr;
  bool ignore_windows = false;  // PLINTH_IGNORE_WINDOWS=1
  bool root = false;            // may change packages (euid 0)
};

// Plans a package: fills `planned` (package, installed, held, id) from the
// configuration in it and what is installed (`prior`'s refreshed values, or
// a Query at create), and appends notes (a change that waits for its
// window). An error when a change is due now but cannot be made (not root,
// a .deb that is another package).
Result<Done> PlanPackage(ValueMap& planned, const ValueMap* prior, const PackageContext& ctx,
                         std::vector<std::string>* notes);
// Create and Update: makes the package what `planned` says, inside its
// window; returns the attributes with what dpkg reports after.
Result<ResourceObject> ApplyPackage(const ValueMap& planned, const PackageContext& ctx);
// The state's attributes with what dpkg reports now.
Result<std::optional<ResourceObject>> ReadPackage(const std::string& id, const ValueMap& prior,
                                                  const PackageContext& ctx);
// Destroy removes an installed package (ensure = "present"), inside the
// window; PlanDelete says beforehand when it would refuse.
Result<DeletePreview> PlanDeletePackage(const std::string& id, const ValueMap& prior,
                                        const PackageContext& ctx);
Result<Done> DeletePackage(const std::string& id, const ValueMap& prior, const PackageContext& ctx);

// Two package resources managing one Debian package would undo each
// other's changes: a conflict naming both (CheckPlan).
std::vector<PlanConflict> CheckPackages(const std::vector<PlanItem>& items);

// The real machine: DpkgSystem with the deadline of `attributes`' `timeout`
// (10 minutes when unset), the system clock, the environment's
// PLINTH_IGNORE_WINDOWS and whether the effective uid is 0.
class Machine {
 public:
  explicit Machine(const ValueMap* attributes);
  const PackageContext& context() const { return ctx_; }

 private:
  std::unique_ptr<PackageSystem> system_;
  controller::SystemClock clock_;
  PackageContext ctx_;
};

}  // namespace plinth::runtime::packages
