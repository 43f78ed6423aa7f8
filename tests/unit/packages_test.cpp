// maintenance_window and package of the local provider (docs/packages.md):
// the checks, the window decision on a ManualClock, plan and apply against a
// fake PackageSystem (no root, no dpkg), and DpkgSystem against fake dpkg and
// apt-get programs (arguments, environment, a hung apt-get killed at its
// deadline).
#include "runtime/providers/local/packages.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "runtime/providers/local/provider.h"

namespace plinth::runtime::packages {
namespace {

namespace fs = std::filesystem;

// 2026-12-05 (a Saturday) 12:00 UTC, and Monday 2026-12-07 01:30 UTC (02:30 in Berlin).
constexpr int64_t kSaturdayNoon = 1796472000;
constexpr int64_t kMondayInWindow = 1796607000;
constexpr int64_t kMondayAfterWindow = 1796612400;  // 04:00 in Berlin: the 02:00-04:00 window just closed

bool HasError(const std::vector<std::string>& errors, const std::string& part) {
  for (const auto& e : errors)
    if (e.find(part) != std::string::npos) return true;
  return false;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

ValueMap Nightly() {
  return {{"name", Value::String("nightly")},
          {"days", Value::String("mon-fri")},
          {"start", Value::String("02:00")},
          {"duration", Value::Duration(2 * 3600 * 1000)},
          {"timezone", Value::String("Europe/Berlin")}};
}

ResolvedWindow MustResolve(const ValueMap& attrs) {
  std::string error;
  auto w = WindowOf(attrs, &error);
  EXPECT_TRUE(w) << error;
  return w ? *w : ResolvedWindow{};
}

// A machine's packages in memory; every change is logged.
class FakeSystem : public PackageSystem {
 public:
  std::map<std::string, Installed> installed;
  std::map<std::string, DebInfo> debs;
  std::vector<std::string> calls;

  Result<Installed> Query(const std::string& package) override {
    auto it = installed.find(package);
    return it == installed.end() ? Installed{} : it->second;
  }
  Result<DebInfo> Inspect(const fs::path& deb) override {
    auto it = debs.find(deb.string());
    if (it == debs.end()) return ProviderError{"no such .deb " + deb.string(), false};
    return it->second;
  }
  Result<Done> Install(const std::string& package, const std::string& version, const fs::path& deb) override {
    calls.push_back("install " + package + " " + (deb.empty() ? version : deb.string()));
    Installed& i = installed[package];
    i.version = !deb.empty() ? debs[deb.string()].version : version.empty() ? "9.9-1" : version;
    return Done{};
  }
  Result<Done> Remove(const std::string& package) override {
    calls.push_back("remove " + package);
    installed.erase(package);
    return Done{};
  }
  Result<Done> SetHold(const std::string& package, bool hold) override {
    calls.push_back(std::string(hold ? "hold " : "unhold ") + package);
    installed[package].held = hold;
    return Done{};
  }
};

class PackageTest : public ::testing::Test {
 protected:
  PackageTest() : clock_(kSaturdayNoon * 1000) {
    ctx_.system = &system_;
    ctx_.clock = &clock_;
    ctx_.root = true;
  }

  // A package's configuration as the engine passes it to PlanChange.
  ValueMap Config(const std::string& version, bool with_window = true) {
    ValueMap c = {{"name", Value::String("tool")},
                  {"package", Value::String("plinth-test-pkg")},
                  {"ensure", Value::String("present")},
                  {"hold", Value::Bool(false)},
                  {"timeout", Value::Duration(600000)}};
    if (!version.empty()) c["version"] = Value::String(version);
    if (with_window) {
      ValueMap ref = Nightly();
      ref["address"] = Value::String("maintenance_window.nightly");
      c["window"] = Value::Object(ref);
      ValueMap planned = c;
      NormalizeWindowReference(c, planned);
      return planned;
    }
    return c;
  }

  // Plans `config` over `prior`; fails the test on a plan error.
  ValueMap Plan(ValueMap config, const ValueMap* prior, std::vector<std::string>* notes) {
    auto r = PlanPackage(config, prior, ctx_, notes);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return config;
  }

  void At(int64_t utc_s) { clock_.Advance(std::chrono::milliseconds(utc_s * 1000 - clock_.WallMs())); }

  FakeSystem system_;
  controller::ManualClock clock_;
  PackageContext ctx_;
};

TEST(PackageNames, DebianNamesAndVersionsOnly) {
  EXPECT_TRUE(ValidPackageName("htop"));
  EXPECT_TRUE(ValidPackageName("libstdc++6"));
  EXPECT_TRUE(ValidPackageName("plinth-test-pkg"));
  for (const char* bad : {"", "a", "-o", "Htop", "htop;reboot", "a b", "$(reboot)", "../x", "pkg=1.0"})
    EXPECT_FALSE(ValidPackageName(bad)) << bad;
  for (const char* good : {"1.0-1", "2:8.2.3995-1+deb12u2", "1.0~rc1", "0.9", "1:2.3"})
    EXPECT_TRUE(ValidVersion(good)) << good;
  for (const char* bad :
       {"", "x1.0", "1.0; rm -rf /", "$(reboot)", "1.0 -o", "-1", ":1.0", "1.0-", "1.0\n2", "a:1.0", "1.0/2"})
    EXPECT_FALSE(ValidVersion(bad)) << bad;
}

TEST(WindowConfig, EveryProblemIsNamed) {
  ValueMap c = Nightly();
  EXPECT_TRUE(ValidateWindowConfig(c).empty()) << Joined(ValidateWindowConfig(c));
  c["days"] = Value::String("mon-fir");
  c["start"] = Value::String("25:00");
  c["duration"] = Value::Duration(8LL * 24 * 3600 * 1000);
  c["timezone"] = Value::String("Europe/Berln");
  c["exclude"] = Value::List({Value::String("2026-12-24"), Value::String("2026-13-01")});
  auto errors = ValidateWindowConfig(c);
  EXPECT_TRUE(HasError(errors, "days \"mon-fir\": 'mon-fir' is not a weekday")) << Joined(errors);
  EXPECT_TRUE(HasError(errors, "start '25:00' is not a time of day: give HH:MM")) << Joined(errors);
  EXPECT_TRUE(HasError(errors, "duration must be more than 0 and at most 7 days")) << Joined(errors);
  EXPECT_TRUE(HasError(errors, "unknown time zone 'Europe/Berln'")) << Joined(errors);
  EXPECT_TRUE(HasError(errors, "excluded date '2026-13-01' is not a date")) << Joined(errors);
  EXPECT_FALSE(HasError(errors, "2026-12-24")) << Joined(errors);
  // Unknown values wait for apply.
  ValueMap unknown = Nightly();
  unknown["days"] = Value::Unknown(Type::String());
  EXPECT_TRUE(ValidateWindowConfig(unknown).empty());
}

TEST(WindowConfig, TheProviderValidatesAndPlansIt) {
  char tmpl[] = "/tmp/plinth-window-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  LocalProvider provider(fs::path(tmpl) / "data");
  ValueMap bad = Nightly();
  bad["start"] = Value::String("2am");
  EXPECT_TRUE(HasError(provider.Validate("maintenance_window", bad), "start '2am' is not a time of day"));
  EXPECT_TRUE(provider.Validate("maintenance_window", Nightly()).empty());
  auto plan = provider.PlanChange(PlanRequest{"maintenance_window", nullptr, Nightly()});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  EXPECT_EQ(plan.value().planned.at("id").as_string(), "nightly");
  auto created = provider.Create("maintenance_window", plan.value().planned);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created.value().id, "nightly");
  ValueMap pkg = {{"name", Value::String("tool")},
                  {"version", Value::String("1.0; reboot")},
                  {"ensure", Value::String("present")},
                  {"hold", Value::Bool(false)}};
  EXPECT_TRUE(HasError(provider.Validate("package", pkg), "\"1.0; reboot\" is not a Debian version"));
  fs::remove_all(tmpl);
}

TEST(PackageConfig, Checks) {
  ValueMap c = {{"name", Value::String("tool")},
                {"ensure", Value::String("present")},
                {"hold", Value::Bool(true)},
                {"source", Value::String("debs/x.deb")},
                {"package", Value::String("-o")}};
  auto errors = ValidatePackageConfig(c);
  EXPECT_TRUE(HasError(errors, "package \"-o\" is not a Debian package name")) << Joined(errors);
  EXPECT_TRUE(HasError(errors, "source \"debs/x.deb\" is not an absolute path to a .deb file"))
      << Joined(errors);
  c.erase("source");
  c["package"] = Value::String("htop");
  EXPECT_TRUE(HasError(ValidatePackageConfig(c), "hold = true needs a pinned version"));
  c["version"] = Value::String("3.2.2-2");
  EXPECT_TRUE(ValidatePackageConfig(c).empty()) << Joined(ValidatePackageConfig(c));
  c["ensure"] = Value::String("absent");
  EXPECT_TRUE(HasError(ValidatePackageConfig(c), "ensure = \"absent\" takes no version, source or hold"));
}

TEST(DpkgStatus, Parses) {
  auto a = ParseDpkgStatus("install ok installed 1.0-1");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->version, "1.0-1");
  EXPECT_FALSE(a->held);
  auto h = ParseDpkgStatus("hold ok installed 2:1.1-1");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->version, "2:1.1-1");
  EXPECT_TRUE(h->held);
  auto gone = ParseDpkgStatus("deinstall ok config-files 1.0-1");
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->version, "");
  auto never = ParseDpkgStatus("unknown ok not-installed ");
  ASSERT_TRUE(never);
  EXPECT_EQ(never->version, "");
  EXPECT_FALSE(ParseDpkgStatus("dpkg-query: no packages found matching x"));
  EXPECT_FALSE(ParseDpkgStatus(""));
}

TEST(WindowDecisionTest, BerlinWeekdayNights) {
  ResolvedWindow w = MustResolve(Nightly());
  WindowDecision sat = DecideWindow(w, kSaturdayNoon);
  EXPECT_FALSE(sat.open);
  EXPECT_EQ(sat.next, "next opens 2026-12-07 02:00 Europe/Berlin (UTC+01:00)");
  EXPECT_TRUE(DecideWindow(w, kMondayInWindow).open);
  WindowDecision after = DecideWindow(w, kMondayAfterWindow);
  EXPECT_FALSE(after.open);
  EXPECT_EQ(after.next, "next opens 2026-12-08 02:00 Europe/Berlin (UTC+01:00)");
  ValueMap excluded = Nightly();
  excluded["exclude"] = Value::List({Value::String("2026-12-07")});
  ResolvedWindow x = MustResolve(excluded);
  EXPECT_FALSE(DecideWindow(x, kMondayInWindow).open);
  EXPECT_EQ(DecideWindow(x, kSaturdayNoon).next, "next opens 2026-12-08 02:00 Europe/Berlin (UTC+01:00)");
}

TEST_F(PackageTest, OutsideTheWindowThePlanWaitsAndApplyTouchesNothing) {
  system_.installed["plinth-test-pkg"] = {"1.0-1", false};
  // Created outside the window: the record keeps what is installed.
  std::vector<std::string> notes;
  ValueMap planned = Plan(Config("1.1-1"), nullptr, &notes);
  EXPECT_EQ(planned.at("installed").as_string(), "1.0-1");
  EXPECT_EQ(planned.at("id").as_string(), "plinth-test-pkg");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(
      notes[0],
      "waits for maintenance window nightly: next opens 2026-12-07 02:00 Europe/Berlin (UTC+01:00); then "
      "apply will change plinth-test-pkg from 1.0-1 to 1.1-1");
  auto created = ApplyPackage(planned, ctx_);
  ASSERT_TRUE(created.ok()) << created.error().message;
  EXPECT_TRUE(system_.calls.empty());
  EXPECT_EQ(created.value().attributes.at("installed").as_string(), "1.0-1");

  // Plans stay the same: no change, the same note.
  std::vector<std::string> again;
  ValueMap replanned = Plan(Config("1.1-1"), &created.value().attributes, &again);
  EXPECT_TRUE(replanned.at("installed").Equals(created.value().attributes.at("installed")));
  EXPECT_TRUE(replanned.at("held").Equals(created.value().attributes.at("held")));
  EXPECT_EQ(again, notes);

  // Inside the window the same configuration plans the upgrade, and apply makes it.
  At(kMondayInWindow);
  std::vector<std::string> inside;
  ValueMap upgrade = Plan(Config("1.1-1"), &created.value().attributes, &inside);
  EXPECT_TRUE(inside.empty()) << Joined(inside);
  EXPECT_EQ(upgrade.at("installed").as_string(), "1.1-1");
  auto updated = ApplyPackage(upgrade, ctx_);
  ASSERT_TRUE(updated.ok()) << updated.error().message;
  EXPECT_EQ(system_.calls, std::vector<std::string>{"install plinth-test-pkg 1.1-1"});
  EXPECT_EQ(updated.value().attributes.at("installed").as_string(), "1.1-1");
}

TEST_F(PackageTest, AWindowThatClosedSincePlanFailsTheChange) {
  At(kMondayInWindow);
  std::vector<std::string> notes;
  ValueMap planned = Plan(Config("1.0-1"), nullptr, &notes);
  EXPECT_EQ(planned.at("installed").as_string(), "1.0-1");
  At(kMondayAfterWindow);
  auto r = ApplyPackage(planned, ctx_);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("maintenance window nightly closed since the plan (next opens 2026-12-08 "
                                   "02:00 Europe/Berlin (UTC+01:00)): did not install plinth-test-pkg 1.0-1"),
            std::string::npos)
      << r.error().message;
  EXPECT_TRUE(system_.calls.empty());
}

TEST_F(PackageTest, DriftOutsidePlinthIsPlannedBackInsideTheWindow) {
  At(kMondayInWindow);
  system_.installed["plinth-test-pkg"] = {"1.0-1", false};
  std::vector<std::string> notes;
  auto created = ApplyPackage(Plan(Config("1.0-1"), nullptr, &notes), ctx_);
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(system_.calls.empty());          // already as configured: adopted
  system_.installed.erase("plinth-test-pkg");  // removed outside Plinth
  auto read = ReadPackage("plinth-test-pkg", created.value().attributes, ctx_);
  ASSERT_TRUE(read.ok() && read.value());
  EXPECT_EQ(read.value()->attributes.at("installed").as_string(), "");
  ValueMap planned = Plan(Config("1.0-1"), &read.value()->attributes, &notes);
  EXPECT_EQ(planned.at("installed").as_string(), "1.0-1");
  ASSERT_TRUE(ApplyPackage(planned, ctx_).ok());
  EXPECT_EQ(system_.installed["plinth-test-pkg"].version, "1.0-1");
}

TEST_F(PackageTest, ChangesNeedRootAndPlansThatChangeNothingDoNot) {
  At(kMondayInWindow);
  ctx_.root = false;
  ValueMap config = Config("1.0-1");
  std::vector<std::string> notes;
  auto r = PlanPackage(config, nullptr, ctx_, &notes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(
      r.error().message.find("cannot install plinth-test-pkg 1.0-1: changing Debian packages needs root"),
      std::string::npos)
      << r.error().message;
  system_.installed["plinth-test-pkg"] = {"1.0-1", false};
  ValueMap same = Config("1.0-1");
  EXPECT_TRUE(PlanPackage(same, nullptr, ctx_, &notes).ok());
  // Outside the window nothing changes now, so nothing needs root yet.
  At(kSaturdayNoon);
  ValueMap later = Config("1.1-1");
  EXPECT_TRUE(PlanPackage(later, nullptr, ctx_, &notes).ok());
}

TEST_F(PackageTest, TheEmergencyOverrideIsSaidInThePlan) {
  ctx_.ignore_windows = true;
  std::vector<std::string> notes;
  ValueMap planned = Plan(Config("1.0-1"), nullptr, &notes);
  EXPECT_EQ(planned.at("installed").as_string(), "1.0-1");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("is closed (next opens 2026-12-07 02:00 Europe/Berlin (UTC+01:00)), but "
                          "PLINTH_IGNORE_WINDOWS=1: apply will install plinth-test-pkg 1.0-1 now"),
            std::string::npos)
      << notes[0];
  ASSERT_TRUE(ApplyPackage(planned, ctx_).ok());
  EXPECT_EQ(system_.calls, std::vector<std::string>{"install plinth-test-pkg 1.0-1"});
}

TEST_F(PackageTest, HeldPackagesAreUnheldForTheChangeAndHeldAgain) {
  At(kMondayInWindow);
  system_.installed["plinth-test-pkg"] = {"1.0-1", true};
  ValueMap config = Config("1.1-1");
  config["hold"] = Value::Bool(true);
  std::vector<std::string> notes;
  ValueMap planned = Plan(config, nullptr, &notes);
  EXPECT_TRUE(planned.at("held").as_bool());
  auto r = ApplyPackage(planned, ctx_);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(system_.calls,
            (std::vector<std::string>{"unhold plinth-test-pkg", "install plinth-test-pkg 1.1-1",
                                      "hold plinth-test-pkg"}));
  EXPECT_TRUE(r.value().attributes.at("held").as_bool());
}

TEST_F(PackageTest, UnpinnedKeepsWhatIsInstalledAndInstallsTheCandidateOtherwise) {
  At(kMondayInWindow);
  std::vector<std::string> notes;
  ValueMap fresh = Plan(Config(""), nullptr, &notes);
  EXPECT_TRUE(fresh.at("installed").is_unknown());
  auto r = ApplyPackage(fresh, ctx_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().attributes.at("installed").as_string(), "9.9-1");
  ValueMap again = Plan(Config(""), &r.value().attributes, &notes);
  EXPECT_EQ(again.at("installed").as_string(), "9.9-1");
}

TEST_F(PackageTest, SourceDebsMustBeThePackage) {
  At(kMondayInWindow);
  system_.debs["/srv/x_1.1-1.deb"] = {"plinth-test-pkg", "1.1-1"};
  system_.debs["/srv/other.deb"] = {"other", "1.0"};
  ValueMap config = Config("");
  config["source"] = Value::String("/srv/x_1.1-1.deb");
  std::vector<std::string> notes;
  ValueMap planned = Plan(config, nullptr, &notes);
  EXPECT_EQ(planned.at("installed").as_string(), "1.1-1");
  ASSERT_TRUE(ApplyPackage(planned, ctx_).ok());
  EXPECT_EQ(system_.calls, std::vector<std::string>{"install plinth-test-pkg /srv/x_1.1-1.deb"});
  config["source"] = Value::String("/srv/other.deb");
  auto r = PlanPackage(config, nullptr, ctx_, &notes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("holds package other, not plinth-test-pkg"), std::string::npos);
}

TEST_F(PackageTest, DestroyRemovesOnlyInsideTheWindow) {
  system_.installed["plinth-test-pkg"] = {"1.0-1", false};
  ValueMap prior = Config("1.0-1");
  prior["installed"] = Value::String("1.0-1");
  auto preview = PlanDeletePackage("plinth-test-pkg", prior, ctx_);
  ASSERT_TRUE(preview.ok());
  EXPECT_NE(
      preview.value().refusal.find("removing plinth-test-pkg 1.0-1 waits for maintenance window nightly: "
                                   "next opens 2026-12-07 02:00"),
      std::string::npos)
      << preview.value().refusal;
  EXPECT_FALSE(DeletePackage("plinth-test-pkg", prior, ctx_).ok());
  EXPECT_TRUE(system_.calls.empty());
  At(kMondayInWindow);
  preview = PlanDeletePackage("plinth-test-pkg", prior, ctx_);
  ASSERT_TRUE(preview.ok());
  EXPECT_EQ(preview.value().refusal, "");
  EXPECT_EQ(preview.value().data, std::vector<std::string>{"the Debian package plinth-test-pkg 1.0-1"});
  ASSERT_TRUE(DeletePackage("plinth-test-pkg", prior, ctx_).ok());
  EXPECT_EQ(system_.calls, std::vector<std::string>{"remove plinth-test-pkg"});
}

TEST(PackagePlanCheck, TwoResourcesForOnePackageConflict) {
  ValueMap a = {{"package", Value::String("htop")}};
  ValueMap b = {{"package", Value::String("htop")}};
  ValueMap c = {{"package", Value::String("curl")}};
  std::vector<PlanItem> items = {{"package.old", "package", &a, true},
                                 {"package.new", "package", &b, false},
                                 {"package.curl", "package", &c, false}};
  auto conflicts = CheckPackages(items);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].addresses, (std::vector<std::string>{"package.new", "package.old"}));
  EXPECT_EQ(conflicts[0].message,
            "package.new manages the Debian package htop as package.old does: they would undo each other's "
            "changes; keep one of them");
}

// DpkgSystem against shell scripts standing in for dpkg-query and apt-get.
class DpkgSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/plinth-dpkg-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Script(const std::string& name, const std::string& body) {
    fs::path p = dir_ / name;
    std::ofstream(p) << "#!/bin/sh\n" << body;
    ::chmod(p.c_str(), 0755);
    return p;
  }
  std::string Slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  fs::path dir_;
};

TEST_F(DpkgSystemTest, QueriesAndInstallsWithArgvAndTheEnvironment) {
  DpkgPrograms programs;
  programs.dpkg_query = Script("dpkg-query",
                               "if [ \"$3\" = plinth-test-pkg ]; then printf 'hold ok installed 1.0-1\\n'; "
                               "else echo \"dpkg-query: no packages found matching $3\" >&2; exit 1; fi\n");
  programs.apt_get =
      Script("apt-get", "for a in \"$@\"; do echo \"$a\"; done >" + (dir_ / "args").string() +
                            "\necho \"$DEBIAN_FRONTEND $LC_ALL\" >" + (dir_ / "env").string() + "\n");
  auto system = DpkgSystem(std::chrono::seconds(10), programs);
  auto held = system->Query("plinth-test-pkg");
  ASSERT_TRUE(held.ok()) << held.error().message;
  EXPECT_EQ(held.value().version, "1.0-1");
  EXPECT_TRUE(held.value().held);
  auto none = system->Query("other-pkg");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_EQ(none.value().version, "");
  ASSERT_TRUE(system->Install("plinth-test-pkg", "1.1-1", {}).ok());
  std::string args = Slurp(dir_ / "args");
  EXPECT_NE(args.find("-y\n-q\n"), std::string::npos) << args;
  EXPECT_NE(args.find("install\nplinth-test-pkg=1.1-1\n"), std::string::npos) << args;
  EXPECT_EQ(Slurp(dir_ / "env"), "noninteractive C\n");
}

TEST_F(DpkgSystemTest, AHungAptGetIsKilledAtItsDeadline) {
  DpkgPrograms programs;
  programs.apt_get = Script("apt-get", "echo 'Waiting for cache lock' >&2\nsleep 30\n");
  auto system = DpkgSystem(std::chrono::milliseconds(300), programs);
  auto start = std::chrono::steady_clock::now();
  auto r = system->Install("plinth-test-pkg", "1.0-1", {});
  ASSERT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(r.error().message.find("'apt-get install plinth-test-pkg=1.0-1' failed"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("deadline"), std::string::npos) << r.error().message;
}

TEST_F(DpkgSystemTest, FailuresCarryStderr) {
  DpkgPrograms programs;
  programs.dpkg =
      Script("dpkg", "echo 'dpkg: dependency problems prevent removal of plinth-test-pkg:' >&2\nexit 1\n");
  auto system = DpkgSystem(std::chrono::seconds(10), programs);
  auto r = system->Remove("plinth-test-pkg");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("'dpkg --remove plinth-test-pkg' failed: dpkg exited with status 1: dpkg: "
                                   "dependency problems prevent removal"),
            std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace plinth::runtime::packages
