// Flapping replicas (docs/automation.md, "Flapping replicas"): the sliding
// restart count, the decision to move a flapping replica to the next region
// that is up and to bring it home when its hold ends, where a moved replica
// runs (its home region's relocation block elsewhere), and the store that
// keeps the moves across controller restarts.
#include "runtime/controller/flapping.h"

#include <gtest/gtest.h>

#include "tests/support/files.h"

namespace plinth::controller {
namespace {

using plinth::testing::TempDir;

ServiceSpec Moving(int replicas) {
  ServiceSpec s;
  s.id = "api";
  s.address = "service.api";
  s.regions = {{"eu", "127.0.1.1", false}, {"us", "127.0.2.1", false}};
  s.replicas = replicas;
  s.port = 20100;
  s.argv = {"/bin/sleep", "600"};
  s.flapping = FlappingSpec{3, 600, true, 1800};
  return s;
}

ReplicaSnapshot Snap(const std::string& id, int restarts) {
  ReplicaSnapshot s;
  s.id = id;
  s.restarts = restarts;
  return s;
}

TEST(Flapping, TheTrackerCountsRestartsInASlidingWindow) {
  FlapTracker t;
  EXPECT_EQ(t.Observe("a", 7, 0, 60000), 0);  // earlier restarts have no time: not counted
  EXPECT_EQ(t.Observe("a", 8, 1000, 60000), 1);
  EXPECT_EQ(t.Observe("a", 10, 2000, 60000), 3);
  EXPECT_EQ(t.Observe("a", 10, 61000, 60000), 2);  // the one at 1000 left the window
  EXPECT_EQ(t.Observe("a", 10, 62001, 60000), 0);
  EXPECT_EQ(t.Observe("a", 1, 63000, 60000), 0);  // a new record: starts over
  EXPECT_EQ(t.Observe("a", 2, 64000, 60000), 1);
  t.Forget("a");
  EXPECT_EQ(t.Observe("a", 5, 65000, 60000), 0);
}

TEST(Flapping, AMovedReplicaRunsInTheNextRegionsRelocationBlock) {
  ServiceSpec s = Moving(2);
  s.max_surge = 1;
  EXPECT_TRUE(HasRelocationBlocks(s));
  EXPECT_EQ(PortSlots(s), 5);  // 2 replicas, 1 surge, a block of 2 for the other region
  std::vector<MovedReplica> moved = {{"eu", 1, "us", 0, 5000, "restarted 3 times in 10m"}};
  ServiceSpec running = WithMoved(s, moved, 1000);
  auto specs = ReplicaSpecsFor(running, {}, "/logs");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[0].id, "api.eu.0");
  EXPECT_EQ(specs[1].id, "api.us.0");
  EXPECT_EQ(specs[2].id, "api.us.1");
  EXPECT_EQ(specs[3].id, "api.us.4");  // us's block for eu starts at 2 + 1 surge; eu's replica 1
  EXPECT_EQ(specs[3].host, "127.0.2.1");
  EXPECT_EQ(specs[3].port, 20104);
  EXPECT_EQ(specs[3].env.at("PLINTH_RELOCATED_FROM"), "eu");
  EXPECT_EQ(specs[3].env.at("PLINTH_MOVED"), "flapping");
  EXPECT_EQ(RelocatedFrom(running, "api.us.4"), "eu");

  // The hold ended: home again.
  specs = ReplicaSpecsFor(WithMoved(s, moved, 5000), {}, "/logs");
  ASSERT_EQ(specs.size(), 4u);
  EXPECT_EQ(specs[1].id, "api.eu.1");
  // A service whose remedy is not "move" keeps every replica home.
  ServiceSpec alert_only = s;
  alert_only.flapping->move = false;
  EXPECT_FALSE(HasRelocationBlocks(alert_only));
  EXPECT_EQ(ReplicaSpecsFor(WithMoved(alert_only, moved, 1000), {}, "/logs")[1].id, "api.eu.1");
  // eu down (without on_region_failure = "relocate"): nothing of eu runs, moved or not.
  ServiceSpec down = WithMoved(WithoutFailedRegions(s, {"eu"}), moved, 1000);
  specs = ReplicaSpecsFor(down, {}, "/logs");
  ASSERT_EQ(specs.size(), 2u);
  EXPECT_EQ(specs[0].id, "api.us.0");
  EXPECT_EQ(specs[1].id, "api.us.1");
}

TEST(Flapping, AReplicaThatFlapsMovesForItsHoldAndComesHome) {
  ServiceSpec s = Moving(2);
  FlapTracker t;
  std::vector<ReplicaSnapshot> snaps = {Snap("api.eu.0", 0), Snap("api.eu.1", 0), Snap("api.us.0", 0)};
  FlapDecision d = DecideFlapping(s, {}, snaps, t, 1000);
  EXPECT_FALSE(d.Changed());
  snaps[1].restarts = 2;
  snaps[2].restarts = 1;
  EXPECT_FALSE(DecideFlapping(s, {}, snaps, t, 2000).Changed());  // 2 of 3
  snaps[1].restarts = 3;
  d = DecideFlapping(s, {}, snaps, t, 3000);
  ASSERT_EQ(d.started.size(), 1u);
  EXPECT_EQ(d.started[0].region, "eu");
  EXPECT_EQ(d.started[0].index, 1);
  EXPECT_EQ(d.started[0].to, "us");
  EXPECT_EQ(d.started[0].until_ms, 3000 + 1800 * 1000);
  EXPECT_EQ(d.started[0].reason, "restarted 3 times in 10m");
  ASSERT_EQ(d.moved.size(), 1u);

  // While it is away nothing changes; when its hold ends it comes home.
  ServiceSpec running = WithMoved(s, d.moved, 4000);
  EXPECT_FALSE(DecideFlapping(running, d.moved, {Snap("api.eu.0", 0), Snap("api.us.3", 9)}, t, 4000).Changed());
  const int64_t end = d.moved[0].until_ms;
  FlapDecision home = DecideFlapping(WithMoved(s, d.moved, end), d.moved, snaps, t, end);
  ASSERT_EQ(home.ended.size(), 1u);
  EXPECT_TRUE(home.moved.empty());

  // Restarts of a surge or relocated replica, or spread wider than `within`, move nothing.
  FlapTracker t2;
  std::vector<ReplicaSnapshot> other = {Snap("api.eu.2", 0), Snap("api.us.3", 0), Snap("api.eu.0", 0)};
  DecideFlapping(s, {}, other, t2, 0);
  other = {Snap("api.eu.2", 5), Snap("api.us.3", 5), Snap("api.eu.0", 2)};
  EXPECT_FALSE(DecideFlapping(s, {}, other, t2, 1000).Changed());
  other[2].restarts = 3;
  EXPECT_FALSE(DecideFlapping(s, {}, other, t2, 700000).Changed());  // the first two left the window

  // Nowhere to go (the only other region is down): it restarts where it is.
  FlapTracker t3;
  ServiceSpec us_down = WithoutFailedRegions(s, {"us"});
  DecideFlapping(us_down, {}, {Snap("api.eu.0", 0)}, t3, 0);
  EXPECT_FALSE(DecideFlapping(us_down, {}, {Snap("api.eu.0", 3)}, t3, 1000).Changed());
  // A service that stops moving (remedy back to "alert") ends its moves at once.
  ServiceSpec alert_only = s;
  alert_only.flapping->move = false;
  FlapDecision stop = DecideFlapping(alert_only, d.moved, {}, t, 5000);
  EXPECT_EQ(stop.ended.size(), 1u);
  EXPECT_TRUE(stop.moved.empty());
}

TEST(Flapping, TheStoreKeepsMovesAndTheSpecItsFlappingBlock) {
  TempDir tmp;
  std::string error;
  auto store = ServiceStore::Open(tmp.path() / "services", tmp.path() / "workspace.key", true, &error);
  ASSERT_TRUE(store) << error;
  ServiceSpec s = Moving(2);
  ASSERT_TRUE(store->Put(s, {}, &error)) << error;
  EXPECT_TRUE(store->Moved("api").empty());
  ASSERT_TRUE(store->SetMoved("api", {{"eu", 1, "us", 10, 20, "restarted 3 times in 10m"}}));
  EXPECT_FALSE(store->SetMoved("nope", {}));
  ASSERT_TRUE(store->Put(s, {}, &error)) << error;  // a new generation keeps the moves
  auto moved = store->Moved("api");
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].region, "eu");
  EXPECT_EQ(moved[0].index, 1);
  EXPECT_EQ(moved[0].to, "us");
  EXPECT_EQ(moved[0].until_ms, 20);
  EXPECT_EQ(moved[0].reason, "restarted 3 times in 10m");
  EXPECT_EQ(RunningSpec(*store->Get("api"), {}, *store, 15).regions[0].moved, std::set<int>{1});
  EXPECT_TRUE(RunningSpec(*store->Get("api"), {}, *store, 20).regions[0].moved.empty());

  ServiceSpec back = ServiceFromJson(ServiceJson(s));
  ASSERT_TRUE(back.flapping);
  EXPECT_EQ(back.flapping->restarts, 3);
  EXPECT_EQ(back.flapping->within_s, 600);
  EXPECT_TRUE(back.flapping->move);
  EXPECT_EQ(back.flapping->hold_s, 1800);
  EXPECT_FALSE(ServiceJson(Moving(1)).dump().find("moved") != std::string::npos);
  EXPECT_FALSE(ServiceFromJson(ServiceJson(ServiceSpec{})).flapping);
}

TEST(Flapping, ShortDurationsReadAsWritten) {
  EXPECT_EQ(ShortDuration(600), "10m");
  EXPECT_EQ(ShortDuration(7200), "2h");
  EXPECT_EQ(ShortDuration(90), "90s");
  EXPECT_EQ(ShortDuration(0), "0s");
}

}  // namespace
}  // namespace plinth::controller
