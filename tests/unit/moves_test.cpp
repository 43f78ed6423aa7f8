// Unit tests for `moved` and `removed` blocks applied to the prior state
// (runtime/plan/moves.h): chains, keys, modules, count/for_each boundaries
// and every conflict.
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/plan/moves.h"

namespace plinth::runtime {
namespace {

PriorResource Prior(const std::string& address, const std::string& id = "") {
  // The type is the last step's first name: module.x.marker.a[0] -> marker.
  std::vector<AddressStep> steps = SplitAddress(address);
  std::string type = steps.empty() ? "" : steps.back().name.substr(0, steps.back().name.find('.'));
  return {address, type, id.empty() ? "id-" + address : id, {}, {}};
}

ResourceInstance Config(const std::string& address) {
  ResourceInstance ri;
  ri.address = address;
  return ri;
}

MoveStatement Move(const std::string& from, const std::string& to) { return {from, to, "", Range{}}; }

std::vector<std::string> Addresses(const MoveOutcome& out) {
  std::vector<std::string> a;
  for (const PriorResource& p : out.prior) a.push_back(p.address);
  std::sort(a.begin(), a.end());
  return a;
}

std::string Problems(const MoveOutcome& out) {
  std::string s;
  for (const PlanProblem& p : out.problems) s += p.message + "\n";
  return s;
}

TEST(Moves, SplitAddress) {
  std::vector<AddressStep> s = SplitAddress(R"(module.net["e.u]"].marker.a[0])");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].name, "module.net");
  EXPECT_EQ(s[0].key, R"(["e.u]"])");
  EXPECT_EQ(s[1].name, "marker.a");
  EXPECT_EQ(s[1].key, "[0]");
  EXPECT_TRUE(SplitAddress("marker").empty());
  EXPECT_TRUE(SplitAddress("marker.a[").empty());
  EXPECT_TRUE(SplitAddress("marker.a.").empty());
}

TEST(Moves, NothingDeclaredLeavesTheStateAsItIs) {
  MoveOutcome out = ApplyMoves({}, {}, {Prior("marker.a")}, {Config("marker.a")});
  EXPECT_EQ(Addresses(out), std::vector<std::string>{"marker.a"});
  EXPECT_TRUE(out.moved_from.empty());
  EXPECT_TRUE(out.problems.empty());
}

TEST(Moves, WholeResourceMovesEveryInstanceKeepingKeys) {
  MoveOutcome out = ApplyMoves({Move("marker.a", "marker.b")}, {},
                               {Prior("marker.a[0]"), Prior("marker.a[1]"), Prior("marker.other")},
                               {Config("marker.b[0]"), Config("marker.b[1]"), Config("marker.other")});
  EXPECT_EQ(Problems(out), "");
  EXPECT_EQ(Addresses(out), (std::vector<std::string>{"marker.b[0]", "marker.b[1]", "marker.other"}));
  EXPECT_EQ(out.moved_from.at("marker.b[1]"), "marker.a[1]");
  EXPECT_EQ(out.moved_from.count("marker.other"), 0u);
  // The id stays: the object is the same.
  for (const PriorResource& p : out.prior) {
    if (p.address == "marker.b[0]") {
      EXPECT_EQ(p.id, "id-marker.a[0]");
    }
  }
}

TEST(Moves, InstanceKeyChanges) {
  MoveOutcome out = ApplyMoves({Move("marker.a[0]", R"(marker.a["x"])")}, {},
                               {Prior("marker.a[0]"), Prior("marker.a[1]")}, {Config(R"(marker.a["x"])")});
  EXPECT_EQ(Problems(out), "");
  EXPECT_EQ(Addresses(out), (std::vector<std::string>{R"(marker.a["x"])", "marker.a[1]"}));
}

TEST(Moves, AcrossTheCountBoundary) {
  // Adding count: the instance without a key becomes [0]; removing it, back.
  MoveOutcome on = ApplyMoves({Move("marker.a", "marker.a[0]")}, {}, {Prior("marker.a")}, {Config("marker.a[0]")});
  EXPECT_EQ(Problems(on), "");
  EXPECT_EQ(Addresses(on), std::vector<std::string>{"marker.a[0]"});
  MoveOutcome off = ApplyMoves({Move("marker.a[0]", "marker.a")}, {}, {Prior("marker.a[0]"), Prior("marker.a[1]")},
                               {Config("marker.a")});
  EXPECT_EQ(Problems(off), "");
  EXPECT_EQ(Addresses(off), (std::vector<std::string>{"marker.a", "marker.a[1]"}));
}

TEST(Moves, ModuleCallMovesEverythingBeneath) {
  MoveOutcome out = ApplyMoves(
      {Move("module.old", "module.new")}, {},
      {Prior(R"(module.old["eu"].marker.a)"), Prior(R"(module.old["us"].module.inner.marker.b[2])"),
       Prior("module.older.marker.a")},
      {Config(R"(module.new["eu"].marker.a)")});
  EXPECT_EQ(Problems(out), "");
  EXPECT_EQ(Addresses(out), (std::vector<std::string>{R"(module.new["eu"].marker.a)",
                                                      R"(module.new["us"].module.inner.marker.b[2])",
                                                      "module.older.marker.a"}));
}

TEST(Moves, ModuleInstanceAndResourceIntoAModule) {
  MoveOutcome out =
      ApplyMoves({Move(R"(module.net["a"])", "module.solo"), Move("marker.x", "module.solo.marker.x")}, {},
                 {Prior(R"(module.net["a"].marker.y)"), Prior(R"(module.net["b"].marker.y)"), Prior("marker.x")},
                 {});
  EXPECT_EQ(Problems(out), "");
  EXPECT_EQ(Addresses(out), (std::vector<std::string>{R"(module.net["b"].marker.y)", "module.solo.marker.x",
                                                      "module.solo.marker.y"}));
}

TEST(Moves, DeclaredInAModuleInstance) {
  // The checker makes addresses absolute: module.net["eu"] declared marker.a -> marker.b.
  MoveStatement m{R"(module.net["eu"].marker.a)", R"(module.net["eu"].marker.b)", R"(module.net["eu"])", Range{}};
  MoveOutcome out = ApplyMoves({m}, {}, {Prior(R"(module.net["eu"].marker.a)"), Prior(R"(module.net["us"].marker.a)")},
                               {});
  EXPECT_EQ(Addresses(out), (std::vector<std::string>{R"(module.net["eu"].marker.b)", R"(module.net["us"].marker.a)"}));
}

TEST(Moves, ChainsResolveToTheLastAddressWhateverTheOrder) {
  for (bool reversed : {false, true}) {
    std::vector<MoveStatement> moves = {Move("marker.a", "marker.b"), Move("marker.b", "marker.c")};
    if (reversed) std::reverse(moves.begin(), moves.end());
    MoveOutcome out = ApplyMoves(moves, {}, {Prior("marker.a")}, {Config("marker.c")});
    EXPECT_EQ(Problems(out), "");
    EXPECT_EQ(Addresses(out), std::vector<std::string>{"marker.c"});
    EXPECT_EQ(out.moved_from.at("marker.c"), "marker.a");
  }
  // A chain through a module move: the resource moved into module.a, then module.a moved.
  MoveOutcome out = ApplyMoves({Move("module.a", "module.b"), Move("marker.x", "module.a.marker.x")}, {},
                               {Prior("marker.x")}, {});
  EXPECT_EQ(Addresses(out), std::vector<std::string>{"module.b.marker.x"});
}

TEST(Moves, NothingRecordedAtFromIsSkipped) {
  MoveOutcome out = ApplyMoves({Move("marker.gone", "marker.b")}, {}, {Prior("marker.b")}, {Config("marker.b")});
  EXPECT_EQ(Problems(out), "");
  EXPECT_EQ(Addresses(out), std::vector<std::string>{"marker.b"});
  EXPECT_TRUE(out.moved_from.empty());
}

TEST(Moves, TwoMovesFromOneAddress) {
  MoveOutcome out = ApplyMoves({Move("marker.a", "marker.b"), Move("marker.a", "marker.c")}, {}, {Prior("marker.a")},
                               {});
  EXPECT_NE(Problems(out).find("two moved blocks move marker.a, one to marker.b and one to marker.c"),
            std::string::npos)
      << Problems(out);
  // The same block twice is no conflict.
  MoveOutcome same = ApplyMoves({Move("marker.a", "marker.b"), Move("marker.a", "marker.b")}, {}, {Prior("marker.a")},
                                {Config("marker.b")});
  EXPECT_EQ(Problems(same), "");
}

TEST(Moves, TwoMovesToOneAddress) {
  MoveOutcome out = ApplyMoves({Move("marker.a", "marker.c"), Move("marker.b", "marker.c")}, {}, {}, {});
  EXPECT_NE(Problems(out).find("two moved blocks move objects to marker.c, one from marker.a and one from marker.b"),
            std::string::npos)
      << Problems(out);
}

TEST(Moves, Cycle) {
  MoveOutcome out = ApplyMoves({Move("marker.a", "marker.b"), Move("marker.b", "marker.a")}, {},
                               {Prior("marker.a"), Prior("marker.b")}, {});
  EXPECT_NE(Problems(out).find("moved blocks form a cycle"), std::string::npos) << Problems(out);
  // Nothing on the cycle moved.
  EXPECT_TRUE(out.moved_from.empty());
}

TEST(Moves, FromStillInTheConfiguration) {
  MoveOutcome out = ApplyMoves({Move("marker.a[0]", "marker.b")}, {}, {Prior("marker.a[0]")},
                               {Config("marker.a[0]"), Config("marker.b")});
  EXPECT_NE(Problems(out).find("marker.a[0] is still in the configuration, so it cannot have moved to marker.b"),
            std::string::npos)
      << Problems(out);
  EXPECT_EQ(Addresses(out), std::vector<std::string>{"marker.a[0]"});
}

TEST(Moves, ToAlreadyHoldsAnObject) {
  MoveOutcome out = ApplyMoves({Move("marker.a", "marker.b")}, {}, {Prior("marker.a"), Prior("marker.b", "m/b")},
                               {Config("marker.b")});
  EXPECT_NE(Problems(out).find("cannot move marker.a to marker.b: marker.b already has its own object in the state "
                               "(id \"m/b\")"),
            std::string::npos)
      << Problems(out);
  EXPECT_EQ(Addresses(out), (std::vector<std::string>{"marker.a", "marker.b"}));
  // Both ends of a chain recorded: the second cannot land where the first did.
  MoveOutcome chain = ApplyMoves({Move("marker.a", "marker.b"), Move("marker.b", "marker.c")}, {},
                                 {Prior("marker.a"), Prior("marker.b")}, {Config("marker.c")});
  EXPECT_NE(Problems(chain).find("already has its own object"), std::string::npos) << Problems(chain);
}

TEST(Moves, RemovedForgetsOrDestroysAfterTheMoves) {
  RemovedStatement keep{"marker.kept", "", false, Range{}};
  RemovedStatement gone{"module.old", "", true, Range{}};
  MoveOutcome out = ApplyMoves({Move("marker.a", "marker.kept")}, {keep, gone},
                               {Prior("marker.a"), Prior(R"(module.old["x"].marker.y)"), Prior("marker.z")},
                               {Config("marker.z")});
  EXPECT_EQ(Problems(out), "");
  ASSERT_EQ(out.removed.size(), 2u);
  EXPECT_FALSE(out.removed.at("marker.kept").destroy);
  EXPECT_TRUE(out.removed.at(R"(module.old["x"].marker.y)").destroy);
  EXPECT_EQ(out.removed.count("marker.z"), 0u);
}

TEST(Moves, RemovedStillInTheConfiguration) {
  MoveOutcome out = ApplyMoves({}, {{"module.net.marker.a", "", false, Range{}}}, {Prior("module.net.marker.a")},
                               {Config("module.net.marker.a")});
  EXPECT_NE(Problems(out).find("module.net.marker.a is still in the configuration"), std::string::npos)
      << Problems(out);
  EXPECT_TRUE(out.removed.empty());
}

}  // namespace
}  // namespace plinth::runtime
