// Services as the runtime keeps them (docs/services.md): replica specs from a
// service (ids, ports, environment, down regions), the service store (secrets
// sealed, generations), and ReconcileService against a real Supervisor:
// scale down, rolling replacement one replica at a time. Every process a test
// starts carries a marker in its environment and is killed when the test
// ends, whatever happened.
#include "runtime/controller/services.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <functional>
#include <random>
#include <thread>

#include "runtime/controller/actions.h"
#include "runtime/controller/clock.h"
#include "runtime/controller/region_faults.h"
#include "runtime/controller/service_autoscaling.h"
#include "tests/support/files.h"

namespace plinth::controller {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;

constexpr const char* kMarkVar = "PLINTH_SERVICES_TEST";

ServiceSpec Sleeper(int replicas) {
  ServiceSpec s;
  s.id = "api";
  s.address = "service.api";
  s.regions = {{"eu", "127.0.1.1", false}, {"us", "127.0.0.1", false}};
  s.replicas = replicas;
  s.port = 20100;
  s.argv = {"/bin/sleep", "600"};
  return s;
}

TEST(ControllerServices, ReplicaSpecsNameRegionsPortsAndEnvironment) {
  ServiceSpec s = Sleeper(2);
  s.env = {{"MODE", "fast"}};
  s.buckets = {{"model-store", "/data/m", false}};
  s.readiness = ProbeSpec{};
  s.readiness->path = "/ready";
  s.version = "v2";
  s.cwd = "/srv/conf";
  s.argv = {"bin/server", "--x"};
  auto specs = ReplicaSpecsFor(s, {{"TOKEN", "t0ps3cret"}}, "/logs");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].id, "api.eu.0");
  EXPECT_EQ(specs[1].id, "api.eu.1");
  EXPECT_EQ(specs[3].id, "api.us.1");
  EXPECT_EQ(specs[1].port, 20101);
  EXPECT_EQ(specs[1].env.at("PORT"), "20101");
  EXPECT_EQ(specs[1].env.at("PLINTH_HOST"), "127.0.1.1");
  EXPECT_EQ(specs[3].env.at("PLINTH_HOST"), "127.0.0.1");
  EXPECT_EQ(specs[1].env.at("PLINTH_REGION"), "eu");
  EXPECT_EQ(specs[1].env.at("PLINTH_REPLICA"), "1");
  EXPECT_EQ(specs[1].env.at("MODE"), "fast");
  EXPECT_EQ(specs[1].env.at("TOKEN"), "t0ps3cret");
  EXPECT_EQ(specs[1].env.at("PLINTH_BUCKET_MODEL_STORE"), "/data/m");
  EXPECT_EQ(specs[1].env.at("PLINTH_SERVICE_VERSION"), "v2");
  EXPECT_EQ(specs[1].argv[0], "/srv/conf/bin/server");
  EXPECT_EQ(specs[1].log_file, fs::path("/logs/api.eu.1.log"));
  ASSERT_TRUE(specs[1].readiness);
  EXPECT_EQ(specs[1].readiness->port, 20101);  // port 0: the replica's own

  s.regions[0].down = true;
  specs = ReplicaSpecsFor(s, {}, "/logs");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].id, "api.us.0");
}

TEST(ControllerServices, AFailedRegionRunsNothingUntilItRecovers) {
  TempDir ws("plinth-faults");
  EXPECT_TRUE(FailedRegions(ws.path()).empty());
  std::string error;
  ASSERT_TRUE(RecordRegionFault(ws.path(), {"eu", 1700000000, "stopped"}, &error)) << error;
  EXPECT_EQ(FailedRegions(ws.path()), std::set<std::string>{"eu"});
  RegionFault f;
  ASSERT_TRUE(ReadRegionFault(ws.path(), "eu", &f));
  EXPECT_EQ(f.since, 1700000000);
  EXPECT_EQ(f.method, "stopped");
  EXPECT_FALSE(ReadRegionFault(ws.path(), "us", &f));

  ServiceSpec s = WithoutFailedRegions(Sleeper(2), FailedRegions(ws.path()));
  auto specs = ReplicaSpecsFor(s, {}, "/logs");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].id, "api.us.0");
  EXPECT_EQ(specs[1].id, "api.us.1");

  ASSERT_TRUE(ClearRegionFault(ws.path(), "eu", &error)) << error;
  ASSERT_TRUE(ClearRegionFault(ws.path(), "eu", &error)) << error;  // nothing recorded: fine
  EXPECT_TRUE(FailedRegions(ws.path()).empty());
  EXPECT_EQ(ReplicaSpecsFor(WithoutFailedRegions(Sleeper(2), FailedRegions(ws.path())), {}, "/logs").size(),
            4u);
}

TEST(ControllerServices, ADownRegionsReplicasRelocateToTheFirstRegionThatIsUp) {
  ServiceSpec s = Sleeper(2);
  s.regions.push_back({"ap", "127.0.3.1", false});
  s.max_surge = 1;
  s.relocate = true;
  // Per region: 2 replicas, 1 surge, then a block of 2 for each of the two others.
  EXPECT_EQ(PortSlots(s), 7);
  EXPECT_EQ(ReplicaSpecsFor(s, {}, "/logs").size(), 6u);  // nothing down: nothing relocated

  s.regions[0].down = true;  // eu down: its replicas run in us, the first region that is up
  auto specs = ReplicaSpecsFor(s, {{"TOKEN", "x"}}, "/logs");
  ASSERT_EQ(specs.size(), 6u);
  EXPECT_EQ(specs[4].id, "api.us.3");
  EXPECT_EQ(specs[5].id, "api.us.4");
  EXPECT_EQ(specs[5].port, 20104);
  EXPECT_EQ(specs[5].host, "127.0.0.1");
  EXPECT_EQ(specs[5].env.at("PLINTH_REGION"), "us");
  EXPECT_EQ(specs[5].env.at("PLINTH_RELOCATED_FROM"), "eu");
  EXPECT_EQ(specs[5].env.at("PLINTH_REPLICA"), "4");
  EXPECT_EQ(specs[5].env.at("TOKEN"), "x");
  EXPECT_EQ(RelocatedFrom(s, "api.us.3"), "eu");
  EXPECT_EQ(RelocatedFrom(s, "api.us.5"), "ap");  // us's block for ap
  EXPECT_EQ(RelocatedFrom(s, "api.us.1"), "");    // its own replica
  EXPECT_EQ(RelocatedFrom(s, "api.us.2"), "");    // its surge
  EXPECT_EQ(RelocatedFrom(s, "api.us.7"), "");
  EXPECT_EQ(RelocatedFrom(s, "other.us.3"), "");
  EXPECT_EQ(RelocationIndex(s, "us", "us"), -1);
  EXPECT_EQ(RelocationIndex(s, "us", "nowhere"), -1);

  s.regions[1].down = true;  // eu and us down: both in ap, eu's block first
  specs = ReplicaSpecsFor(s, {}, "/logs");
  ASSERT_EQ(specs.size(), 6u);
  EXPECT_EQ(specs[2].id, "api.ap.3");
  EXPECT_EQ(specs[2].env.at("PLINTH_RELOCATED_FROM"), "eu");
  EXPECT_EQ(specs[4].id, "api.ap.5");
  EXPECT_EQ(specs[4].port, 20105);
  EXPECT_EQ(specs[4].env.at("PLINTH_RELOCATED_FROM"), "us");

  s.regions[2].down = true;  // nowhere to go
  EXPECT_TRUE(ReplicaSpecsFor(s, {}, "/logs").empty());

  s.relocate = false;  // "wait": a down region's replicas run nowhere
  s.regions[2].down = false;
  EXPECT_EQ(ReplicaSpecsFor(s, {}, "/logs").size(), 2u);
  EXPECT_EQ(PortSlots(s), 3);
  EXPECT_EQ(RelocatedFrom(s, "api.ap.3"), "");
}

TEST(ControllerServices, AutoscaledCountsStayInBoundsAndIndicesAreLaidOutForMax) {
  ServiceSpec s = Sleeper(1);
  s.max_surge = 1;
  s.relocate = true;
  s.autoscale = ServiceAutoscale{};
  s.autoscale->spec.min = 1;
  s.autoscale->spec.max = 3;
  s.autoscale->targets = {{"requests_per_second", 20}};
  EXPECT_EQ(Slots(s), 3);
  EXPECT_EQ(PortSlots(s), 3 + 1 + 3);  // max, surge, one block of max for the other region
  ServiceSpec scaled = WithScale(s, {{"eu", 5}, {"us", 0}});
  EXPECT_EQ(CountIn(scaled, scaled.regions[0]), 3);  // clamped to max
  EXPECT_EQ(CountIn(scaled, scaled.regions[1]), 1);  // and to min
  auto specs = ReplicaSpecsFor(scaled, {}, "/logs");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[2].id, "api.eu.2");
  EXPECT_EQ(specs[3].id, "api.us.0");
  auto surge = SurgeSpecsFor(scaled, {}, "/logs");
  ASSERT_EQ(surge.size(), 2u);
  EXPECT_EQ(surge[0].id, "api.eu.3");  // after max, not after the current count
  EXPECT_EQ(RelocationIndex(scaled, "us", "eu"), 4);
  scaled.regions[0].down = true;  // eu's 3 run in us's block: 4, 5, 6
  specs = ReplicaSpecsFor(scaled, {}, "/logs");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[3].id, "api.us.6");
  EXPECT_EQ(RelocatedFrom(scaled, "api.us.6"), "eu");
  // Without autoscale the counts are ignored.
  ServiceSpec plain = Sleeper(2);
  EXPECT_EQ(ReplicaSpecsFor(WithScale(plain, {{"eu", 5}}), {}, "/logs").size(), 4u);
  // The spec keeps its autoscale through JSON.
  s.autoscale->spec.down.stabilization_ms = 8000;
  s.autoscale->spec.up.policies = {{ScalingPolicy::Kind::kPods, 2, 30000}};
  ServiceSpec back = ServiceFromJson(ServiceJson(s));
  ASSERT_TRUE(back.autoscale);
  EXPECT_EQ(ServiceJson(back), ServiceJson(s));
  EXPECT_EQ(back.autoscale->spec.down.stabilization_ms, 8000);
  EXPECT_EQ(back.autoscale->targets[0].signal, "requests_per_second");
}

TEST(ControllerServices, SpecSurvivesJson) {
  ServiceSpec s = Sleeper(3);
  s.liveness = ProbeSpec{};
  s.liveness->kind = ProbeKind::kTcp;
  s.liveness->failure_threshold = 5;
  s.version = "v9";
  ServiceSpec back = ServiceFromJson(ServiceJson(s));
  EXPECT_EQ(ServiceJson(back), ServiceJson(s));
  EXPECT_EQ(back.liveness->kind, ProbeKind::kTcp);
  EXPECT_EQ(back.regions[0].host, "127.0.1.1");
  EXPECT_FALSE(back.relocate);
  EXPECT_FALSE(ServiceJson(s).contains("relocate"));  // specs recorded before it existed are unchanged
  s.relocate = true;
  EXPECT_TRUE(ServiceFromJson(ServiceJson(s)).relocate);
}

TEST(ControllerServices, StoreSealsSecretsAndCountsGenerations) {
  TempDir tmp;
  std::string error;
  auto store = ServiceStore::Open(tmp.path() / "services", tmp.path() / "workspace.key", true, &error);
  ASSERT_TRUE(store) << error;
  EXPECT_EQ(store->Version(), 0);
  ASSERT_TRUE(store->Put(Sleeper(1), {{"TOKEN", "sup3r-s3cret-value"}}, &error)) << error;
  EXPECT_EQ(store->Generation("api"), 1);
  ServiceSpec two = Sleeper(2);
  ASSERT_TRUE(store->Put(two, {{"TOKEN", "sup3r-s3cret-value"}}, &error)) << error;
  EXPECT_EQ(store->Generation("api"), 2);
  EXPECT_EQ(store->Version(), 2);
  auto got = store->Get("api");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->replicas, 2);
  EXPECT_EQ(got->secret_names, std::vector<std::string>{"TOKEN"});
  std::map<std::string, std::string> secrets;
  ASSERT_TRUE(store->OpenSecrets("api", &secrets, &error)) << error;
  EXPECT_EQ(secrets.at("TOKEN"), "sup3r-s3cret-value");
  for (const char* f : {"services.db", "services.db-wal"}) {
    fs::path p = tmp.path() / "services" / f;
    if (fs::exists(p)) {
      EXPECT_EQ(ReadFile(p).find("sup3r-s3cret-value"), std::string::npos) << f;
    }
  }
  EXPECT_EQ(fs::status(tmp.path() / "services" / "services.db").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(store->List().size(), 1u);
  ASSERT_TRUE(store->Remove("api", &error)) << error;
  EXPECT_FALSE(store->Get("api"));
  EXPECT_EQ(store->Version(), 3);
}

TEST(ControllerServices, WindowSurvivesJsonAndSpecsWithoutOneStayUnchanged) {
  ServiceSpec s = Sleeper(2);
  EXPECT_FALSE(ServiceJson(s).contains("window"));
  s.window = ServiceWindow{"nightly", MaintenanceWindow{{1, 2}, 120, 7200, {"2026-12-24"}}, "Europe/Berlin"};
  ServiceSpec back = ServiceFromJson(ServiceJson(s));
  ASSERT_TRUE(back.window);
  EXPECT_EQ(back.window->name, "nightly");
  EXPECT_EQ(back.window->window.weekdays, (std::vector<int>{1, 2}));
  EXPECT_EQ(back.window->window.start_minute, 120);
  EXPECT_EQ(back.window->window.duration_s, 7200);
  EXPECT_EQ(back.window->window.excluded_dates, std::vector<std::string>{"2026-12-24"});
  EXPECT_EQ(back.window->timezone, "Europe/Berlin");
}

TEST(ControllerServices, OnlyProcessChangesReplaceReplicas) {
  const ServiceSpec a = Sleeper(2);
  ServiceSpec b = a;
  b.replicas = 5;
  b.max_surge = 1;
  b.readiness = ProbeSpec{};
  b.window = ServiceWindow{};
  EXPECT_FALSE(ReplacesReplicas(a, b)) << "counts, probes, rollout numbers and the window replace nothing";
  auto changed = [&](const std::function<void(ServiceSpec&)>& edit) {
    ServiceSpec c = a;
    edit(c);
    return ReplacesReplicas(a, c);
  };
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.version = "v2"; }));
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.argv.push_back("--fast"); }));
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.env["MODE"] = "x"; }));
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.secret_names = {"TOKEN"}; }));
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.port = 20200; }));
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.user = "nobody"; }));
  EXPECT_TRUE(changed([](ServiceSpec& c) { c.buckets.push_back({"data", "/srv/data", false}); }));
}

TEST(ControllerServices, AServicesWindowDecidesInItsZone) {
  // Daily 02:00-04:00 in Berlin (UTC+1 in December): 2026-12-07 01:30 UTC is
  // 02:30 there (open); 04:30 UTC is 05:30 (closed, next the day after).
  ServiceWindow w{"nightly", MaintenanceWindow{{}, 120, 7200, {}}, "Europe/Berlin"};
  std::string error;
  const int64_t open_at = 1796607000;    // 2026-12-07T01:30:00Z
  const int64_t closed_at = 1796617800;  // 2026-12-07T04:30:00Z
  auto open = DecideServiceWindow(w, open_at, &error);
  ASSERT_TRUE(open) << error;
  EXPECT_TRUE(open->open);
  auto closed = DecideServiceWindow(w, closed_at, &error);
  ASSERT_TRUE(closed) << error;
  EXPECT_FALSE(closed->open);
  EXPECT_EQ(closed->next, "next opens 2026-12-08 02:00 Europe/Berlin (UTC+01:00)");
  ::setenv("PLINTH_IGNORE_WINDOWS", "1", 1);
  auto ignored = DecideServiceWindow(w, closed_at, &error);
  ::unsetenv("PLINTH_IGNORE_WINDOWS");
  ASSERT_TRUE(ignored);
  EXPECT_TRUE(ignored->open);
  w.timezone = "Europe/Berln";
  EXPECT_FALSE(DecideServiceWindow(w, closed_at, &error));
  EXPECT_NE(error.find("Europe/Berln"), std::string::npos) << error;
}

TEST(ControllerServices, AStagedChangeWaitsUntilPromotedAndAPutDropsIt) {
  TempDir tmp;
  std::string error;
  auto store = ServiceStore::Open(tmp.path() / "services", tmp.path() / "workspace.key", true, &error);
  ASSERT_TRUE(store) << error;
  ServiceSpec v1 = Sleeper(2);
  v1.version = "v1";
  ServiceSpec v2 = v1;
  v2.version = "v2";
  EXPECT_FALSE(store->Stage(v2, {}, 1000, &error)) << "a service not recorded yet is never staged";
  EXPECT_NE(error.find("not recorded"), std::string::npos) << error;
  ASSERT_TRUE(store->Put(v1, {{"TOKEN", "old-s3cret"}}, &error)) << error;
  const int64_t g1 = store->Generation("api");
  const int64_t version_before = store->Version();
  ASSERT_TRUE(store->Stage(v2, {{"TOKEN", "new-s3cret"}}, 1234, &error)) << error;
  // Staging moves the store's version (a polling controller looks again) but not the generation.
  EXPECT_GT(store->Version(), version_before);
  EXPECT_EQ(store->Generation("api"), g1);
  EXPECT_EQ(store->Get("api")->version, "v1");
  auto staged = store->Staged("api");
  ASSERT_TRUE(staged);
  EXPECT_EQ(staged->spec.version, "v2");
  EXPECT_EQ(staged->at_ms, 1234);
  std::map<std::string, std::string> secrets;
  ASSERT_TRUE(store->OpenSecrets("api", &secrets, &error)) << error;
  EXPECT_EQ(secrets.at("TOKEN"), "old-s3cret");
  for (const char* f : {"services.db", "services.db-wal"})
    if (fs::exists(tmp.path() / "services" / f)) {
      EXPECT_EQ(ReadFile(tmp.path() / "services" / f).find("new-s3cret"), std::string::npos) << f;
    }
  // Promote: a new generation with the staged spec and secrets; the old one is the previous.
  int64_t g2 = 0;
  ASSERT_TRUE(store->Promote("api", &g2, &error)) << error;
  EXPECT_GT(g2, g1);
  EXPECT_EQ(store->Generation("api"), g2);
  EXPECT_EQ(store->Get("api")->version, "v2");
  EXPECT_FALSE(store->Staged("api"));
  ASSERT_TRUE(store->OpenSecrets("api", &secrets, &error)) << error;
  EXPECT_EQ(secrets.at("TOKEN"), "new-s3cret");
  PreviousSpec previous;
  ASSERT_TRUE(store->Previous("api", &previous, &error)) << error;
  EXPECT_EQ(previous.spec.version, "v1");
  EXPECT_EQ(previous.secrets.at("TOKEN"), "old-s3cret");
  error.clear();
  EXPECT_FALSE(store->Promote("api", &g2, &error)) << "nothing staged";
  EXPECT_TRUE(error.empty()) << error;
  // A Put (the configuration went back, or the window opened at apply) drops what was staged.
  ServiceSpec v3 = v1;
  v3.version = "v3";
  ASSERT_TRUE(store->Stage(v3, {}, 2000, &error)) << error;
  ASSERT_TRUE(store->Put(v2, {{"TOKEN", "new-s3cret"}}, &error)) << error;
  EXPECT_FALSE(store->Staged("api"));
  EXPECT_EQ(store->Get("api")->version, "v2");
}

TEST(ControllerServices, TheActionLogKeepsActionsInOrderAndFiltersBySubject) {
  TempDir tmp;
  std::string error;
  const fs::path path = tmp.path() / "controller" / "actions.db";
  EXPECT_FALSE(ActionLog::Open(path, false, &error));
  auto log = ActionLog::Open(path, true, &error);
  ASSERT_TRUE(log) << error;
  ASSERT_TRUE(log->Record({0, 1000, "rollout", "service.api", "version \"v2\" (generation 4)",
                           "maintenance window nightly is open"},
                          &error))
      << error;
  ASSERT_TRUE(log->Record({0, 2000, "scale", "service.web", "eu: 1 -> 3", "requests_per_second = 60"}, &error));
  ASSERT_TRUE(log->Record({0, 3000, "rollback", "service.api", "version \"v3\"", "replica api.eu.0 exited"},
                          &error));
  auto all = log->List();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].kind, "rollout");
  EXPECT_EQ(all[2].kind, "rollback");
  EXPECT_LT(all[0].seq, all[1].seq);
  auto api = log->List("service.api");
  ASSERT_EQ(api.size(), 2u);
  EXPECT_EQ(api[1].reason, "replica api.eu.0 exited");
  auto last = log->List("", 1);
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].kind, "rollback");
  EXPECT_EQ(ActionJson(last[0])["subject"], "service.api");
  // Reopened, it keeps them; the file is private.
  log.reset();
  log = ActionLog::Open(path, false, &error);
  ASSERT_TRUE(log) << error;
  EXPECT_EQ(log->List().size(), 3u);
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
}

class ControllerServicesReconcile : public ::testing::Test {
 protected:
  ControllerServicesReconcile() {
    mark_ = std::to_string(std::random_device{}()) + "-" + std::to_string(::getpid());
  }
  ~ControllerServicesReconcile() override {
    const std::string needle = std::string(kMarkVar) + "=" + mark_;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::string env = ReadFile(entry.path() / "environ");
      for (size_t at = 0; at < env.size();) {
        size_t end = env.find('\0', at);
        if (end == std::string::npos) end = env.size();
        if (env.compare(at, end - at, needle) == 0) ::kill(std::stoi(name), SIGKILL);
        at = end + 1;
      }
    }
  }
  ServiceSpec Marked(int replicas) {
    ServiceSpec s = Sleeper(replicas);
    s.env[kMarkVar] = mark_;
    return s;
  }
  static bool TickUntil(Supervisor& sup, const std::function<bool()>& done) {
    auto until = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      sup.Tick();
      if (done()) return true;
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(20ms);
    }
  }
  static int ReadyCount(const Supervisor& sup) {
    int n = 0;
    for (const auto& s : ServiceReplicas(sup, "api")) n += s.ready ? 1 : 0;
    return n;
  }
  TempDir tmp_;
  std::string mark_;
  ManualClock clock_;
};

TEST_F(ControllerServicesReconcile, ScalesDownAndReplacesOnePerRegionAtATime) {
  std::string error;
  Supervisor::Options o;
  o.stop_grace = 0ms;
  auto sup = Supervisor::Open(tmp_.path() / "replicas.db", clock_, o, &error);
  ASSERT_TRUE(sup) << error;
  ASSERT_TRUE(ReconcileService(*sup, Marked(2), {}, tmp_.path() / "logs", true, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return ReadyCount(*sup) == 4; }));
  std::map<std::string, pid_t> pids;
  for (const auto& s : ServiceReplicas(*sup, "api")) pids[s.id] = s.pid;

  // Reconciling the same spec again changes nothing.
  ASSERT_TRUE(ReconcileService(*sup, Marked(2), {}, tmp_.path() / "logs", true, &error)) << error;
  sup->Tick();
  for (const auto& s : ServiceReplicas(*sup, "api")) EXPECT_EQ(s.pid, pids[s.id]) << s.id;

  // A new version: one replica per region at a time (max_unavailable 1),
  // each once the others have been ready for the settle time (1 s without a
  // readiness probe).
  ServiceSpec v2 = Marked(2);
  v2.version = "v2";
  ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
  EXPECT_EQ(ReadyCount(*sup), 4);  // ready, but not for the settle time yet: nothing replaced
  clock_.Advance(SettleTime(v2));
  sup->Tick();
  ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
  EXPECT_EQ(ReadyCount(*sup), 2);  // exactly one per region is being replaced
  EXPECT_TRUE(sup->Ready("api.eu.1") && sup->Ready("api.us.1"));
  clock_.Advance(SettleTime(v2));
  ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
  EXPECT_EQ(ReadyCount(*sup), 2);  // no second one while it is not ready
  int replaced = 0;
  for (int round = 0; round < 8 && replaced < 4; ++round) {
    ASSERT_TRUE(TickUntil(*sup, [&] { return ReadyCount(*sup) == 4; }));
    // Just ready: not settled, so nothing else is replaced yet.
    ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
    EXPECT_EQ(ReadyCount(*sup), 4);
    clock_.Advance(SettleTime(v2));
    sup->Tick();
    ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
    replaced = 0;
    for (const auto& s : ServiceReplicas(*sup, "api")) replaced += s.pid != pids[s.id] ? 1 : 0;
  }
  ASSERT_TRUE(TickUntil(*sup, [&] { return ReadyCount(*sup) == 4; }));
  for (const auto& s : ServiceReplicas(*sup, "api"))
    EXPECT_NE(s.pid, pids[s.id]) << s.id << " was not replaced";

  // Fewer replicas: the extra ones go.
  ASSERT_TRUE(ReconcileService(
      *sup,
      [&] {
        ServiceSpec one = v2;
        one.replicas = 1;
        return one;
      }(),
      {}, tmp_.path() / "logs", true, &error))
      << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return ServiceReplicas(*sup, "api").size() == 2; }));
  auto left = ServiceReplicas(*sup, "api");
  EXPECT_EQ(left[0].id, "api.eu.0");
  EXPECT_EQ(left[1].id, "api.us.0");

  // Removing the service removes its replicas.
  RemoveServiceReplicas(*sup, "api");
  ASSERT_TRUE(TickUntil(*sup, [&] { return ServiceReplicas(*sup, "api").empty(); }));
}

TEST_F(ControllerServicesReconcile, SurgeKeepsEveryRegionAtFullStrengthAndGoesWhenTheRolloutEnds) {
  std::string error;
  Supervisor::Options o;
  o.stop_grace = 0ms;
  auto sup = Supervisor::Open(tmp_.path() / "replicas.db", clock_, o, &error);
  ASSERT_TRUE(sup) << error;
  ASSERT_TRUE(ReconcileService(*sup, Marked(2), {}, tmp_.path() / "logs", true, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return ReadyCount(*sup) == 4; }));
  std::map<std::string, pid_t> pids;
  for (const auto& s : ServiceReplicas(*sup, "api")) pids[s.id] = s.pid;
  clock_.Advance(SettleTime(Marked(2)));
  sup->Tick();

  ServiceSpec v2 = Marked(2);
  v2.version = "v2";
  v2.max_unavailable = 0;
  v2.max_surge = 1;
  auto ready_in = [&](const std::string& region) {
    int n = 0;
    for (const auto& s : ServiceReplicas(*sup, "api"))
      n += s.ready && s.id.rfind("api." + region + ".", 0) == 0 ? 1 : 0;
    return n;
  };
  // The surge replicas (index 2, port 20102) start first; nothing old stops.
  ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
  auto surge = sup->Snapshot("api.eu.2");
  ASSERT_TRUE(surge.has_value());
  EXPECT_TRUE(sup->Snapshot("api.us.2").has_value());
  auto surge_specs = SurgeSpecsFor(v2, {}, tmp_.path() / "logs");
  ASSERT_EQ(surge_specs.size(), 2u);
  EXPECT_EQ(surge_specs[0].port, 20102);
  EXPECT_EQ(surge_specs[0].env.at("PLINTH_SERVICE_VERSION"), "v2");
  EXPECT_EQ(ready_in("eu"), 2);

  int min_ready = 2;
  bool done = false;
  for (int round = 0; round < 12 && !done; ++round) {
    ASSERT_TRUE(TickUntil(*sup, [&] {
      for (const auto& s : ServiceReplicas(*sup, "api"))
        if (!s.ready) return false;
      return true;
    }));
    clock_.Advance(SettleTime(v2));
    sup->Tick();
    ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
    min_ready = std::min({min_ready, ready_in("eu"), ready_in("us")});
    done = true;
    for (const auto& r : ReplicaSpecsFor(v2, {}, tmp_.path() / "logs"))
      done = done && sup->Unchanged(r) && sup->Ready(r.id);
  }
  ASSERT_TRUE(done) << "the rollout did not finish";
  EXPECT_GE(min_ready, 2) << "a region dropped below its replicas during a surge rollout";
  for (const auto& [id, pid] : pids) EXPECT_NE(sup->Snapshot(id)->pid, pid) << id << " was not replaced";
  // Once every replica serves the new spec, the surge goes.
  clock_.Advance(SettleTime(v2));
  sup->Tick();
  ASSERT_TRUE(ReconcileService(*sup, v2, {}, tmp_.path() / "logs", true, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return ServiceReplicas(*sup, "api").size() == 4; }));
  EXPECT_FALSE(sup->Snapshot("api.eu.2").has_value());
}

TEST_F(ControllerServicesReconcile, RelocatedReplicasStayUntilTheirRegionServesAgain) {
  std::string error;
  Supervisor::Options o;
  o.stop_grace = 0ms;
  auto sup = Supervisor::Open(tmp_.path() / "replicas.db", clock_, o, &error);
  ASSERT_TRUE(sup) << error;
  ServiceSpec spec = Marked(1);
  spec.relocate = true;
  const fs::path logs = tmp_.path() / "logs";
  ASSERT_TRUE(ReconcileService(*sup, spec, {}, logs, true, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return ReadyCount(*sup) == 2; }));
  const pid_t us0 = sup->Snapshot("api.us.0")->pid;

  // eu fails: its replica stops, and runs in us as api.us.1 (port 20101) meanwhile.
  ServiceSpec failed = WithoutFailedRegions(spec, {"eu"});
  ASSERT_TRUE(ReconcileService(*sup, failed, {}, logs, true, &error)) << error;
  ASSERT_TRUE(TickUntil(
      *sup, [&] { return !sup->Snapshot("api.eu.0") && sup->Ready("api.us.1") && sup->Ready("api.us.0"); }));
  EXPECT_EQ(sup->Snapshot("api.us.0")->pid, us0) << "us's own replica was restarted";

  // eu recovers: its replica starts; the relocated one stays until it serves
  // (ready for the settle time), then goes.
  ASSERT_TRUE(ReconcileService(*sup, spec, {}, logs, true, &error)) << error;
  EXPECT_TRUE(sup->Snapshot("api.us.1").has_value());
  ASSERT_TRUE(TickUntil(*sup, [&] { return sup->Ready("api.eu.0"); }));
  ASSERT_TRUE(ReconcileService(*sup, spec, {}, logs, true, &error)) << error;
  sup->Tick();
  EXPECT_TRUE(sup->Snapshot("api.us.1").has_value()) << "the relocated replica went before eu served";
  clock_.Advance(SettleTime(spec));
  sup->Tick();
  ASSERT_TRUE(ReconcileService(*sup, spec, {}, logs, true, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return !sup->Snapshot("api.us.1").has_value(); }));
  EXPECT_EQ(sup->Snapshot("api.us.0")->pid, us0);
}

TEST_F(ControllerServicesReconcile, AutoscalingMeasuresRequestsPerReplicaAndDecidesPerRegion) {
  std::string error;
  Supervisor::Options o;
  o.stop_grace = 0ms;
  auto sup = Supervisor::Open(tmp_.path() / "replicas.db", clock_, o, &error);
  ASSERT_TRUE(sup) << error;
  ServiceSpec spec = Marked(1);
  spec.autoscale = ServiceAutoscale{};
  spec.autoscale->spec.min = 1;
  spec.autoscale->spec.max = 3;
  spec.autoscale->targets = {{"requests_per_second", 20}, {"in_flight", 10}};
  ASSERT_TRUE(ReconcileService(*sup, spec, {}, tmp_.path() / "logs", true, &error)) << error;
  ASSERT_TRUE(TickUntil(*sup, [&] { return ReadyCount(*sup) == 2; }));
  ServiceAutoscaling scaling;
  std::map<std::string, LbServerState> load;
  load["api.eu.0"].responses = 1000;
  load["api.eu.0"].current_sessions = 2;
  // The first pass has nothing to compare with: no rate yet; in_flight 2 of 10 is within... no: it
  // recommends 1.
  ServiceScaleStep step = scaling.Step(spec, *sup, load, nlohmann::json::object(), 0);
  EXPECT_EQ(step.counts.at("eu"), 1);
  EXPECT_TRUE(step.status["eu"]["signals"]["requests_per_second"].is_null());
  // 10 s later eu answered 1,000 more: 100 per second for one replica, target 20 -> 5, max 3.
  load["api.eu.0"].responses = 2000;
  step = scaling.Step(spec, *sup, load, nlohmann::json::object(), 10'000);
  EXPECT_EQ(step.counts.at("eu"), 3);
  EXPECT_EQ(step.status["eu"]["signals"]["requests_per_second"], 100);
  EXPECT_TRUE(step.changed);
  ASSERT_EQ(step.changes.size(), 1u);
  EXPECT_NE(step.changes[0].find("eu: 1 -> 3: requests_per_second = 100 per replica (target 20)"),
            std::string::npos)
      << step.changes[0];
  // us has no load balancer entry: no data, it keeps 1.
  EXPECT_EQ(step.counts.at("us"), 1);
  EXPECT_NE(step.status["us"]["reason"].get<std::string>().find("no data"), std::string::npos);
  // A new controller continues the history it saved: a dip right away does not scale down (300 s window).
  ServiceAutoscaling next;
  ServiceSpec three = WithScale(spec, step.counts);
  load["api.eu.0"].responses = 2000;
  ServiceScaleStep again = next.Step(three, *sup, load, step.state, 11'000);
  EXPECT_EQ(again.counts.at("eu"), 3);
}

// Scale rules' votes (docs/automation.md, "Scale rules"): up asks for at
// least one and 25% more, down for one and 20% fewer, through the same
// autoscaler: bounds, the scale-down stabilization window, and no vote for
// a stale or undecided rule.
TEST(ControllerServices, ScaleRuleVotesMoveReplicasThroughTheAutoscaler) {
  EXPECT_EQ(VotedCount({"r", true, false, false, 0}, 1), 2);
  EXPECT_EQ(VotedCount({"r", true, false, false, 0}, 8), 10);
  EXPECT_EQ(VotedCount({"r", false, true, false, 0}, 10), 8);
  EXPECT_EQ(VotedCount({"r", false, true, false, 0}, 1), 0);
  EXPECT_TRUE(std::isnan(VotedCount({"r", false, false, false, 0}, 3)));
  EXPECT_TRUE(std::isnan(VotedCount({"r", true, false, true, 0}, 3)));

  TempDir tmp;
  ManualClock clock(1'000'000);
  std::string error;
  auto sup = Supervisor::Open(tmp.path() / "replicas.db", clock, {}, &error);
  ASSERT_TRUE(sup) << error;
  ServiceSpec spec = Sleeper(1);
  spec.regions = {{"eu", "127.0.1.1", false}};
  spec.autoscale = ServiceAutoscale{};
  spec.autoscale->spec.min = 1;
  spec.autoscale->spec.max = 4;
  spec.autoscale->spec.down.stabilization_ms = 60'000;
  ServiceAutoscaling scaling;
  const int64_t t0 = 1'000'000;
  // Up three times: 1 -> 2 -> 3 -> 4, then max holds it.
  int64_t t = t0;
  for (int expected : {2, 3, 4, 4}) {
    ServiceScaleStep step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t,
                                         {{"scale_rule.latency", true, false, false, t}});
    EXPECT_EQ(step.counts.at("eu"), expected) << step.status.dump();
    EXPECT_EQ(step.status["eu"]["signals"]["scale_rule.latency"], "up");
    spec = WithScale(spec, step.counts);
    t += 15'000;
  }
  // Down: waits out the 60 s stabilization window, then 4 -> 3.
  ServiceScaleStep step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t,
                                       {{"scale_rule.latency", false, true, false, t}});
  EXPECT_EQ(step.counts.at("eu"), 4) << step.status.dump();
  t += 61'000;
  step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t, {{"scale_rule.latency", false, true, false, t}});
  EXPECT_EQ(step.counts.at("eu"), 3) << step.status.dump();
  ASSERT_EQ(step.changes.size(), 1u);
  EXPECT_NE(step.changes[0].find("scale_rule.latency (down_when true)"), std::string::npos) << step.changes[0];
  spec = WithScale(spec, step.counts);
  // A stale vote (the alert task stopped) and an undecided one are no votes: the count stays.
  t += 61'000;
  step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t,
                      {{"scale_rule.latency", false, true, false, t - kScaleVoteTtlMs - 1}});
  EXPECT_EQ(step.counts.at("eu"), 3) << step.status.dump();
  EXPECT_TRUE(step.status["eu"]["signals"]["scale_rule.latency"].is_null());
  step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t, {{"scale_rule.latency", false, false, true, t}});
  EXPECT_EQ(step.counts.at("eu"), 3) << step.status.dump();
  // A rule of another region (region = "us") is no vote in eu.
  step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t,
                      {{"scale_rule.us_latency", true, false, false, t, "us"}});
  EXPECT_EQ(step.counts.at("eu"), 3) << step.status.dump();
  EXPECT_FALSE(step.status["eu"]["signals"].contains("scale_rule.us_latency"));
  step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t,
                      {{"scale_rule.eu_latency", true, false, false, t, "eu"}});
  EXPECT_EQ(step.counts.at("eu"), 4) << step.status.dump();
}

// A scale rule's value (scale_rule { value, average }): replicas =
// ceil(value / average) through the same autoscaler; no data holds the count.
TEST(ControllerServices, AScaleRuleValueIsKeptAtItsAveragePerReplica) {
  TempDir tmp;
  ManualClock clock(1'000'000);
  std::string error;
  auto sup = Supervisor::Open(tmp.path() / "replicas.db", clock, {}, &error);
  ASSERT_TRUE(sup) << error;
  ServiceSpec spec = Sleeper(1);
  spec.regions = {{"eu", "127.0.1.1", false}};
  spec.autoscale = ServiceAutoscale{};
  spec.autoscale->spec.min = 1;
  spec.autoscale->spec.max = 8;
  spec.autoscale->spec.down.stabilization_ms = 0;
  ServiceAutoscaling scaling;
  int64_t t = 1'000'000;
  auto vote = [&](double value) {
    ScaleVote v;
    v.rule = "scale_rule.queue";
    v.at_ms = t;
    v.value = value;
    v.average = 10;
    v.no_data = std::isnan(value);
    return std::vector<ScaleVote>{v};
  };
  // 35 queued, 10 per replica: 4.
  ServiceScaleStep step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t, vote(35));
  EXPECT_EQ(step.counts.at("eu"), 4) << step.status.dump();
  EXPECT_EQ(step.status["eu"]["signals"]["scale_rule.queue"], 35);
  ASSERT_EQ(step.changes.size(), 1u);
  EXPECT_NE(step.changes[0].find("scale_rule.queue = 35 (target 10)"), std::string::npos) << step.changes[0];
  spec = WithScale(spec, step.counts);
  // Within the tolerance (41 for 4 x 10): no change; no data: no change.
  t += 15'000;
  EXPECT_EQ(scaling.Step(spec, *sup, {}, nlohmann::json::object(), t, vote(41)).counts.at("eu"), 4);
  t += 15'000;
  step = scaling.Step(spec, *sup, {}, nlohmann::json::object(), t, vote(NAN));
  EXPECT_EQ(step.counts.at("eu"), 4);
  EXPECT_TRUE(step.status["eu"]["signals"]["scale_rule.queue"].is_null());
  // The queue drains: down to min.
  t += 15'000;
  EXPECT_EQ(scaling.Step(spec, *sup, {}, nlohmann::json::object(), t, vote(0)).counts.at("eu"), 1);
}

TEST_F(ControllerServicesReconcile, ANewDriverAdoptsReplicasOfThePreviousSpecAndRollsTheChangeOut) {
  std::string error;
  Supervisor::Options o;
  o.stop_grace = 0ms;
  std::map<std::string, pid_t> pids;
  {
    auto first = Supervisor::Open(tmp_.path() / "replicas.db", clock_, o, &error);
    ASSERT_TRUE(first) << error;
    ASSERT_TRUE(ReconcileService(*first, Marked(2), {{"TOKEN", "one"}}, tmp_.path() / "logs", true, &error));
    ASSERT_TRUE(TickUntil(*first, [&] { return ReadyCount(*first) == 4; }));
    for (const auto& s : ServiceReplicas(*first, "api")) pids[s.id] = s.pid;
  }  // the apply that started them is gone; they run on
  auto sup = Supervisor::Open(tmp_.path() / "replicas.db", clock_, o, &error);
  ASSERT_TRUE(sup) << error;
  ServiceSpec v2 = Marked(2);
  v2.version = "v2";
  PreviousSpec previous{Marked(2), {{"TOKEN", "one"}}};
  ASSERT_TRUE(
      ReconcileService(*sup, v2, {{"TOKEN", "two"}}, tmp_.path() / "logs", true, &error, nullptr, &previous))
      << error;
  // Adopted with the spec they run: none restarted at once, none unmanaged.
  for (const auto& s : ServiceReplicas(*sup, "api")) {
    EXPECT_NE(s.phase, ReplicaPhase::kUnmanaged) << s.id;
    EXPECT_EQ(s.pid, pids[s.id]) << s.id;
  }
  sup->Tick();
  EXPECT_EQ(ReadyCount(*sup), 4);
  // Then the rolling update: one per region.
  clock_.Advance(SettleTime(v2));
  sup->Tick();
  ASSERT_TRUE(
      ReconcileService(*sup, v2, {{"TOKEN", "two"}}, tmp_.path() / "logs", true, &error, nullptr, &previous));
  EXPECT_EQ(ReadyCount(*sup), 2);
}

}  // namespace
}  // namespace plinth::controller
