// Unit tests for the planner core: actions, reasons, attribute changes,
// ignore_changes, prevent_destroy and the execution graph's order.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <unordered_set>
#include <nlohmann/json.hpp>

#include "runtime/plan/plan.h"

namespace plinth::runtime {
namespace {

ResourceInstance Instance(const std::string& address, const std::string& type, ValueMap attrs,
                          std::vector<std::string> deps = {}) {
  ResourceInstance ri;
  ri.address = address;
  ri.type = type;
  ri.name = address.substr(address.find('.') + 1);
  attrs["address"] = Value::String(address);
  ri.attributes = std::move(attrs);
  ri.depends_on = std::move(deps);
  return ri;
}

PriorResource Prior(const std::string& address, const std::string& type, ValueMap attrs,
                    std::vector<std::string> deps = {}) {
  attrs["address"] = Value::String(address);
  return {address, type, "id-" + address, std::move(attrs), std::move(deps)};
}

const PlannedResource& Get(const Plan& p, const std::string& address) {
  for (const auto& r : p.resources) {
    if (r.address == address) return r;
  }
  static PlannedResource none;
  ADD_FAILURE() << "no " << address;
  return none;
}

TEST(Plan, CreateUpdateNoOpDelete) {
  std::vector<ResourceInstance> config = {
      Instance("marker.new", "marker", {{"path", Value::String("a")}}),
      Instance("marker.same", "marker", {{"path", Value::String("b")}, {"id", Value::Unknown(Type::String())}}),
      Instance("marker.changed", "marker", {{"path", Value::String("c")}, {"content", Value::String("v2")}}),
  };
  std::vector<PriorResource> prior = {
      Prior("marker.same", "marker", {{"path", Value::String("b")}, {"id", Value::String("x")}}),
      Prior("marker.changed", "marker", {{"path", Value::String("c")}, {"content", Value::String("v1")}}),
      Prior("marker.gone", "marker", {{"path", Value::String("d")}}),
  };
  Plan p = ComputePlan(config, prior, {});
  EXPECT_EQ(Get(p, "marker.new").action, Action::Create);
  // A computed id that is unknown again is not a change for an existing resource.
  EXPECT_EQ(Get(p, "marker.same").action, Action::NoOp);
  EXPECT_EQ(Get(p, "marker.same").planned.at("id").as_string(), "x");
  const PlannedResource& changed = Get(p, "marker.changed");
  EXPECT_EQ(changed.action, Action::Update);
  ASSERT_EQ(changed.changes.size(), 1u);
  EXPECT_EQ(changed.changes[0].name, "content");
  EXPECT_EQ(Get(p, "marker.gone").action, Action::Delete);
  EXPECT_EQ(Get(p, "marker.gone").reasons, std::vector<std::string>{"not in the configuration"});
  EXPECT_EQ(p.Count(Action::Create), 1u);
  EXPECT_TRUE(p.HasChanges());
}

TEST(Plan, ReplaceNamesTheForcingAttribute) {
  std::vector<ResourceInstance> config = {Instance("marker.m", "marker", {{"path", Value::String("new")}})};
  std::vector<PriorResource> prior = {Prior("marker.m", "marker", {{"path", Value::String("old")}})};
  Plan p = ComputePlan(config, prior, {{"marker.m", {"path"}}});
  const PlannedResource& r = Get(p, "marker.m");
  EXPECT_EQ(r.action, Action::Replace);
  EXPECT_EQ(r.reasons, std::vector<std::string>{"'path' forces replacement"});
  ASSERT_EQ(r.changes.size(), 1u);
  EXPECT_TRUE(r.changes[0].forces_replacement);
  std::string text = RenderPlanText(p, false);
  EXPECT_NE(text.find("-/+ marker.m"), std::string::npos) << text;
  EXPECT_NE(text.find("path = \"old\" -> \"new\" # forces replacement"), std::string::npos) << text;
  EXPECT_NE(text.find("Plan: 0 to create, 0 to update, 1 to replace, 0 to delete."), std::string::npos) << text;
}

TEST(Plan, WhatADeleteRemovesIsShownUnderItsLine) {
  std::vector<PriorResource> prior = {
      Prior("bucket.data", "bucket", {{"name", Value::String("data")}}),
      Prior("bucket.kept", "bucket", {{"name", Value::String("kept")}}),
      Prior("marker.m", "marker", {{"path", Value::String("m")}}),
  };
  Plan p = ComputePlan({}, prior, {});
  for (PlannedResource& r : p.resources) {
    if (r.address == "bucket.data") {
      r.deletes = DeletePreview{{"2 objects (8 B)", "backup repository 'regions/us/backups/eu-data' with 1 snapshot (2.0 KiB)"},
                                {{"objects", 2}, {"object_bytes", 8}, {"snapshots", 1}},
                                ""};
    } else if (r.address == "bucket.kept") {
      r.deletes = DeletePreview{{"1 object (3 B)"}, {{"objects", 1}, {"object_bytes", 3}},
                                "bucket.kept still holds 1 object (3 B); empty it first"};
    }
  }
  std::string text = RenderPlanText(p, false);
  EXPECT_NE(text.find("- bucket.data\n"
                      "      ! deletes 2 objects (8 B)\n"
                      "      ! deletes backup repository 'regions/us/backups/eu-data' with 1 snapshot (2.0 KiB)\n"
                      "      - name = \"data\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("- bucket.kept\n"
                      "      ! holds 1 object (3 B)\n"
                      "      x delete refused: bucket.kept still holds 1 object (3 B); empty it first\n"),
            std::string::npos)
      << text;
  nlohmann::json doc = nlohmann::json::parse(RenderPlanJson(p));
  for (const auto& c : doc["resource_changes"]) {
    if (c["address"] == "bucket.data") {
      EXPECT_EQ(c["deletes"]["data"].size(), 2u);
      EXPECT_EQ(c["deletes"]["amounts"]["objects"], 2);
      EXPECT_TRUE(c["deletes"]["refused"].is_null());
    } else if (c["address"] == "bucket.kept") {
      EXPECT_EQ(c["deletes"]["refused"], "bucket.kept still holds 1 object (3 B); empty it first");
    } else {
      EXPECT_TRUE(c["deletes"].is_null()) << "not asked: null";
    }
  }
}

TEST(Plan, IgnoreChangesAndPreventDestroy) {
  ResourceInstance ri = Instance("bucket.b", "bucket", {{"labels", Value::Object({{"a", Value::String("2")}})}});
  ri.ignore_changes = {"labels"};
  ri.prevent_destroy = true;
  std::vector<PriorResource> prior = {
      Prior("bucket.b", "bucket", {{"labels", Value::Object({{"a", Value::String("1")}})}})};
  Plan p = ComputePlan({ri}, prior, {});
  EXPECT_EQ(Get(p, "bucket.b").action, Action::NoOp);
  EXPECT_TRUE(p.problems.empty());
  p = ComputePlan({ri}, prior, {{"bucket.b", {"region"}}});
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_NE(p.problems[0].message.find("prevent_destroy"), std::string::npos);
}

TEST(Plan, SensitiveValuesAreNotRendered) {
  std::vector<ResourceInstance> config = {
      Instance("marker.s", "marker", {{"content", Value::String("hunter2").WithSensitive()}})};
  Plan p = ComputePlan(config, {}, {});
  std::string text = RenderPlanText(p, false);
  EXPECT_EQ(text.find("hunter2"), std::string::npos);
  EXPECT_NE(text.find("(sensitive)"), std::string::npos);
  std::string json = RenderPlanJson(p);
  EXPECT_EQ(json.find("hunter2"), std::string::npos);
  EXPECT_NE(json.find("\"sensitive\": true"), std::string::npos);
}

TEST(Plan, JsonDocument) {
  std::vector<ResourceInstance> config = {
      Instance("marker.m", "marker", {{"path", Value::String("a")}, {"id", Value::Unknown(Type::String())}})};
  nlohmann::json doc = nlohmann::json::parse(RenderPlanJson(ComputePlan(config, {}, {})));
  EXPECT_EQ(doc["format_version"], 1);
  EXPECT_EQ(doc["summary"]["create"], 1);
  EXPECT_EQ(doc["resource_changes"][0]["action"], "create");
  EXPECT_EQ(doc["resource_changes"][0]["after"]["path"], "a");
  EXPECT_EQ(doc["resource_changes"][0]["after"]["id"]["unknown"], true);
  EXPECT_TRUE(doc["resource_changes"][0]["before"].is_null());
}

size_t Position(const Graph& g, const std::string& address, GraphNode::Step step) {
  for (size_t k = 0; k < g.order.size(); ++k) {
    const GraphNode& n = g.nodes[g.order[k]];
    if (n.address == address && n.step == step) return k;
  }
  ADD_FAILURE() << "no node for " << address;
  return 0;
}

TEST(Graph, CreatesFollowDependenciesAndDeletesGoInReverse) {
  std::vector<ResourceInstance> config = {
      Instance("region.site[\"eu\"]", "region", {}),
      Instance("region.site[\"us\"]", "region", {}),
      Instance("bucket.b", "bucket", {}, {"region.site"}),
      Instance("module.m.marker.x", "marker", {}, {"bucket.b"}),
      Instance("marker.after_module", "marker", {}, {"module.m"}),
  };
  std::vector<PriorResource> prior = {
      Prior("region.old", "region", {}),
      Prior("bucket.old", "bucket", {}, {"region.old"}),
  };
  Plan p = ComputePlan(config, prior, {});
  Graph g = BuildGraph(p);
  ASSERT_TRUE(g.cycle.empty());
  EXPECT_LT(Position(g, "region.site[\"eu\"]", GraphNode::Step::Apply), Position(g, "bucket.b", GraphNode::Step::Apply));
  EXPECT_LT(Position(g, "region.site[\"us\"]", GraphNode::Step::Apply), Position(g, "bucket.b", GraphNode::Step::Apply));
  EXPECT_LT(Position(g, "bucket.b", GraphNode::Step::Apply),
            Position(g, "module.m.marker.x", GraphNode::Step::Apply));
  EXPECT_LT(Position(g, "module.m.marker.x", GraphNode::Step::Apply),
            Position(g, "marker.after_module", GraphNode::Step::Apply));
  // The bucket that used the old region is deleted first.
  EXPECT_LT(Position(g, "bucket.old", GraphNode::Step::Destroy), Position(g, "region.old", GraphNode::Step::Destroy));
}

TEST(Graph, ReplacementOrder) {
  ResourceInstance a = Instance("marker.a", "marker", {{"path", Value::String("2")}});
  ResourceInstance b = Instance("marker.b", "marker", {{"path", Value::String("2")}});
  b.create_before_destroy = true;
  std::vector<PriorResource> prior = {Prior("marker.a", "marker", {{"path", Value::String("1")}}),
                                      Prior("marker.b", "marker", {{"path", Value::String("1")}})};
  Graph g = BuildGraph(ComputePlan({a, b}, prior, {{"marker.a", {"path"}}, {"marker.b", {"path"}}}));
  EXPECT_LT(Position(g, "marker.a", GraphNode::Step::Destroy), Position(g, "marker.a", GraphNode::Step::Apply));
  EXPECT_LT(Position(g, "marker.b", GraphNode::Step::Apply), Position(g, "marker.b", GraphNode::Step::Destroy));
}

TEST(Graph, LinearInSizeWithGroupNodes) {
  // 20,000 instances that all depend on a 20,000-instance resource: edges go
  // through one group node, not 400 million pairs.
  std::vector<ResourceInstance> config;
  for (int i = 0; i < 20000; ++i) {
    config.push_back(Instance("marker.base[" + std::to_string(i) + "]", "marker", {}));
    config.push_back(Instance("marker.dep[" + std::to_string(i) + "]", "marker", {}, {"marker.base"}));
  }
  Graph g = BuildGraph(ComputePlan(config, {}, {}));
  size_t edges = 0;
  for (const GraphNode& n : g.nodes) edges += n.after.size();
  EXPECT_EQ(g.order.size(), g.nodes.size());
  EXPECT_LT(edges, 100000u);
  EXPECT_LT(Position(g, "marker.base[19999]", GraphNode::Step::Apply),
            Position(g, "marker.dep[0]", GraphNode::Step::Apply));
}

}  // namespace
}  // namespace plinth::runtime

namespace plinth::runtime {
namespace {

// A rename: the create of the new address waits for the delete of the old
// one when they are the same object (same type, planned id = recorded id).
TEST(Plan, ACreateWaitsForTheDeleteOfTheSameObject) {
  std::vector<ResourceInstance> config = {
      Instance("marker.b", "marker", {{"path", Value::String("m/x")}, {"id", Value::String("m/x")}}),
      Instance("marker.new", "marker", {{"path", Value::String("m/n")}, {"id", Value::String("m/n")}}),
      Instance("marker.later", "marker", {{"id", Value::Unknown(Type::String())}}),
      Instance("bucket.x", "bucket", {{"id", Value::String("m/y")}}),
  };
  std::vector<PriorResource> prior = {
      Prior("marker.a", "marker", {{"path", Value::String("m/x")}, {"id", Value::String("m/x")}}),
      Prior("marker.y", "marker", {{"path", Value::String("m/y")}, {"id", Value::String("m/y")}}),
  };
  Plan p = ComputePlan(config, prior, {});
  EXPECT_EQ(Get(p, "marker.b").waits_for_deletes, std::vector<std::string>{"marker.a"});
  EXPECT_TRUE(Get(p, "marker.new").waits_for_deletes.empty());
  EXPECT_TRUE(Get(p, "marker.later").waits_for_deletes.empty()) << "an unknown id matches nothing";
  EXPECT_TRUE(Get(p, "bucket.x").waits_for_deletes.empty()) << "another type is another object";

  Graph g = BuildGraph(p);
  ASSERT_TRUE(g.cycle.empty());
  uint32_t create_b = 0, delete_a = 0;
  for (uint32_t i = 0; i < g.nodes.size(); ++i) {
    if (g.nodes[i].address == "marker.b") create_b = i;
    if (g.nodes[i].address == "marker.a") delete_a = i;
  }
  EXPECT_EQ(g.nodes[delete_a].step, GraphNode::Step::Destroy);
  EXPECT_NE(std::find(g.nodes[create_b].after.begin(), g.nodes[create_b].after.end(), delete_a),
            g.nodes[create_b].after.end());
  EXPECT_NE(RenderPlanText(p, false).find("+ marker.b\n      waits for the delete of marker.a (same object \"m/x\")\n"),
            std::string::npos)
      << RenderPlanText(p, false);
  nlohmann::json doc = nlohmann::json::parse(RenderPlanJson(p));
  for (const auto& r : doc["resource_changes"]) {
    EXPECT_EQ(r["waits_for_deletes"].size(), r["address"] == "marker.b" ? 1u : 0u) << r["address"];
  }
}

// A replacement whose new id is an object another address deletes waits too.
TEST(Plan, AReplacementWaitsForTheDeleteOfItsNewObject) {
  std::vector<ResourceInstance> config = {
      Instance("marker.r", "marker", {{"path", Value::String("m/old")}, {"id", Value::String("m/old")}})};
  std::vector<PriorResource> prior = {
      Prior("marker.r", "marker", {{"path", Value::String("m/r")}, {"id", Value::String("m/r")}}),
      Prior("marker.old", "marker", {{"path", Value::String("m/old")}, {"id", Value::String("m/old")}}),
  };
  Plan p = ComputePlan(config, prior, {{"marker.r", {"path"}}});
  EXPECT_EQ(Get(p, "marker.r").action, Action::Replace);
  EXPECT_EQ(Get(p, "marker.r").waits_for_deletes, std::vector<std::string>{"marker.old"});
}

// A destroy plan deletes everything; a prevent_destroy resource still in the
// configuration is a problem; one no longer in it is not protected.
TEST(Plan, DestroyRefusesPreventDestroyResourcesStillConfigured) {
  ResourceInstance kept = Instance("marker.kept", "marker", {{"path", Value::String("k")}});
  kept.prevent_destroy = true;
  ResourceInstance never = Instance("marker.never_applied", "marker", {{"path", Value::String("n")}});
  never.prevent_destroy = true;
  std::vector<PriorResource> prior = {Prior("marker.kept", "marker", {{"path", Value::String("k")}}),
                                      Prior("marker.other", "marker", {{"path", Value::String("o")}})};
  Plan p = ComputePlan({kept, never}, prior, {}, nullptr, /*destroy=*/true);
  EXPECT_EQ(p.resources.size(), 2u);
  EXPECT_EQ(Get(p, "marker.kept").action, Action::Delete);
  EXPECT_EQ(Get(p, "marker.other").action, Action::Delete);
  // The reason per resource: asked for, or gone from the configuration anyway.
  EXPECT_EQ(Get(p, "marker.kept").reasons, std::vector<std::string>{"destroy requested"});
  EXPECT_EQ(Get(p, "marker.other").reasons, std::vector<std::string>{"not in the configuration"});
  ASSERT_EQ(p.problems.size(), 1u);
  EXPECT_EQ(p.problems[0].address, "marker.kept");
  EXPECT_NE(p.problems[0].message.find("would be destroyed"), std::string::npos);
  EXPECT_NE(p.problems[0].message.find("remove prevent_destroy"), std::string::npos);

  // Not a destroy: removed from the configuration, it is deleted freely.
  p = ComputePlan({}, prior, {});
  EXPECT_TRUE(p.problems.empty());
  EXPECT_EQ(p.Count(Action::Delete), 2u);
}

TEST(Plan, EscapeControlsEscapesEveryControlCharacter) {
  EXPECT_EQ(EscapeControls("plain text, é ü"), "plain text, é ü");
  EXPECT_EQ(EscapeControls("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(EscapeControls("\x1b[31mred\x1b[0m\x07\x7f"), "\\x1b[31mred\\x1b[0m\\x07\\x7f");
  EXPECT_EQ(EscapeControls("\xc2\x9b" "2J \xc2\xa0"), "\\u009b2J \xc2\xa0");  // C1 CSI escaped, NBSP kept
  EXPECT_EQ(EscapeControls(std::string("nul\0x", 5)), "nul\\x00x");
}

}  // namespace
}  // namespace plinth::runtime

namespace plinth::runtime {
namespace {

// --target, --exclude and --replace (docs/cli.md, "Targeting").

// region.a <- marker.b <- marker.c (c depends on b, b on a), and an unrelated
// marker.d; all to be created.
std::vector<ResourceInstance> TargetChain() {
  return {Instance("region.a", "region", {}), Instance("marker.b", "marker", {}, {"region.a"}),
          Instance("marker.c", "marker", {}, {"marker.b"}), Instance("marker.d", "marker", {})};
}

std::vector<std::string> Addresses(const Plan& p) {
  std::vector<std::string> out;
  for (const auto& r : p.resources) out.push_back(r.address);
  return out;
}

TEST(Targeting, ATargetKeepsWhatItDependsOnNotItsDependents) {
  Plan p = ComputePlan(TargetChain(), {}, {});
  Targeting t;
  t.targets = {"marker.b"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  EXPECT_EQ(Addresses(p), (std::vector<std::string>{"marker.b", "region.a"}));
  EXPECT_EQ(p.left_out, 2u);
  EXPECT_EQ(p.left_out_changes, 2u);
  std::string text = RenderPlanText(p, false);
  EXPECT_NE(text.find("Note: targeting is in effect (--target=marker.b)"), std::string::npos) << text;
  EXPECT_NE(text.find("2 other resources were left as they are (2 with changes pending)"), std::string::npos) << text;
  nlohmann::json doc = nlohmann::json::parse(RenderPlanJson(p));
  EXPECT_EQ(doc["targeting"]["targets"], nlohmann::json::array({"marker.b"}));
  EXPECT_EQ(doc["targeting"]["left_out"], 2);
  EXPECT_EQ(doc["summary"]["create"], 2);
}

TEST(Targeting, AnUntargetedPlanHasNoTargetingInItsJson) {
  Plan p = ComputePlan(TargetChain(), {}, {});
  EXPECT_TRUE(RestrictToTargets(p, Targeting{}, false).empty());
  EXPECT_EQ(p.resources.size(), 4u);
  EXPECT_FALSE(nlohmann::json::parse(RenderPlanJson(p)).contains("targeting"));
  EXPECT_EQ(RenderPlanText(p, false).find("targeting"), std::string::npos);
}

TEST(Targeting, AnExcludeLeavesOutWhatDependsOnIt) {
  Plan p = ComputePlan(TargetChain(), {}, {});
  Targeting t;
  t.excludes = {"region.a"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  EXPECT_EQ(Addresses(p), (std::vector<std::string>{"marker.d"}));
  EXPECT_NE(RenderPlanText(p, false).find("the excluded resources and what depends on them were left out"),
            std::string::npos);
}

TEST(Targeting, InstancesResourcesAndModulesAreAddresses) {
  std::vector<ResourceInstance> config = {
      Instance("marker.m[0]", "marker", {}), Instance("marker.m[1]", "marker", {}),
      Instance("marker.k[\"x\"]", "marker", {}), Instance("module.net.marker.n", "marker", {}),
      Instance("module.net.module.sub.marker.s", "marker", {}), Instance("module.other.marker.n", "marker", {}),
      Instance("marker.uses_net", "marker", {}, {"module.net"})};
  auto kept = [&](std::vector<std::string> targets) {
    Plan p = ComputePlan(config, {}, {});
    Targeting t;
    t.targets = std::move(targets);
    std::vector<std::string> errors = RestrictToTargets(p, t, false);
    EXPECT_TRUE(errors.empty()) << errors[0];
    return Addresses(p);
  };
  EXPECT_EQ(kept({"marker.m[1]"}), std::vector<std::string>{"marker.m[1]"});
  EXPECT_EQ(kept({"marker.m"}), (std::vector<std::string>{"marker.m[0]", "marker.m[1]"}));
  EXPECT_EQ(kept({"marker.k[\"x\"]"}), std::vector<std::string>{"marker.k[\"x\"]"});
  EXPECT_EQ(kept({"module.net"}),
            (std::vector<std::string>{"module.net.marker.n", "module.net.module.sub.marker.s"}));
  // A dependency on a module is one on everything in it.
  EXPECT_EQ(kept({"marker.uses_net"}), (std::vector<std::string>{"marker.uses_net", "module.net.marker.n",
                                                                 "module.net.module.sub.marker.s"}));
  EXPECT_EQ(kept({"marker.m[0]", "module.other"}),
            (std::vector<std::string>{"marker.m[0]", "module.other.marker.n"}));
}

TEST(Targeting, AnAddressThatMatchesNothingIsAnErrorWithASuggestion) {
  Plan p = ComputePlan(TargetChain(), {}, {});
  Targeting t;
  t.targets = {"marker.bb"};
  std::vector<std::string> errors = RestrictToTargets(p, t, false);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0], "--target 'marker.bb' matches no resource in the configuration or the state; did you mean "
                       "'marker.b'?");
  EXPECT_EQ(p.resources.size(), 4u);  // unchanged
  EXPECT_TRUE(p.targeting.empty());
  t.targets.clear();
  t.replace = {"zzz.qqqqqq"};
  errors = RestrictToTargets(p, t, false);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("--replace 'zzz.qqqqqq' matches no resource"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("an address is type.name"), std::string::npos) << errors[0];
  t.replace.clear();
  t.targets = {"marker.b"};
  t.excludes = {"marker.c"};
  errors = RestrictToTargets(p, t, false);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("--target and --exclude cannot be combined"), std::string::npos);
  EXPECT_EQ(p.resources.size(), 4u);
}

TEST(Targeting, ATargetOnlyInTheStatePlansItsDelete) {
  std::vector<PriorResource> prior = {Prior("marker.gone", "marker", {{"path", Value::String("g")}}),
                                      Prior("marker.other", "marker", {{"path", Value::String("o")}})};
  Plan p = ComputePlan({}, prior, {});
  Targeting t;
  t.targets = {"marker.gone"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  ASSERT_EQ(p.resources.size(), 1u);
  EXPECT_EQ(p.resources[0].address, "marker.gone");
  EXPECT_EQ(p.resources[0].action, Action::Delete);
  EXPECT_EQ(p.left_out_changes, 1u);
}

TEST(Targeting, NoChangesAmongTheTargetsIsNotCalledAMatch) {
  // marker.same is unchanged; marker.gone would be deleted by a full plan.
  auto plan = [] {
    return ComputePlan({Instance("marker.same", "marker", {{"path", Value::String("s")}})},
                       {Prior("marker.same", "marker", {{"path", Value::String("s")}}),
                        Prior("marker.gone", "marker", {{"path", Value::String("g")}})},
                       {});
  };
  Plan p = plan();
  Targeting t;
  t.targets = {"marker.same"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  std::string text = RenderPlanText(p, false);
  EXPECT_EQ(text.rfind("No changes in the targeted resources.\n", 0), 0u) << text;
  EXPECT_NE(text.find("1 other resource was left as it is (1 with changes pending)"), std::string::npos) << text;
  EXPECT_NE(RenderPlanText(plan(), false).find("1 to delete"), std::string::npos);
}

TEST(Targeting, ADestroyTargetTakesItsDependentsAndAnExcludeKeepsItsDependencies) {
  auto prior = [] {
    return std::vector<PriorResource>{Prior("region.a", "region", {}), Prior("marker.b", "marker", {}, {"region.a"}),
                                      Prior("marker.d", "marker", {})};
  };
  Plan p = ComputePlan({}, prior(), {}, nullptr, /*destroy=*/true);
  Targeting t;
  t.targets = {"region.a"};
  EXPECT_TRUE(RestrictToTargets(p, t, true).empty());
  EXPECT_EQ(Addresses(p), (std::vector<std::string>{"marker.b", "region.a"}));
  Plan q = ComputePlan({}, prior(), {}, nullptr, /*destroy=*/true);
  t = Targeting{};
  t.excludes = {"marker.b"};
  EXPECT_TRUE(RestrictToTargets(q, t, true).empty());
  EXPECT_EQ(Addresses(q), std::vector<std::string>{"marker.d"});
}

TEST(Targeting, ALeftOutResourcesProblemDoesNotBlockTheTargets) {
  std::vector<ResourceInstance> config = {Instance("marker.a", "marker", {{"path", Value::String("new")}}),
                                          Instance("marker.b", "marker", {})};
  config[0].prevent_destroy = true;
  std::vector<PriorResource> prior = {Prior("marker.a", "marker", {{"path", Value::String("old")}})};
  Plan p = ComputePlan(config, prior, {{"marker.a", {"path"}}});
  ASSERT_EQ(p.problems.size(), 1u);
  Targeting t;
  t.targets = {"marker.b"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  EXPECT_TRUE(p.problems.empty());
}

TEST(Targeting, AReplaceRequestReplacesAnUnchangedInstance) {
  std::vector<ResourceInstance> config = {
      // Planned as a creation (its computed id unknown), as the engine does.
      Instance("marker.m", "marker", {{"path", Value::String("p")}, {"id", Value::Unknown(Type::String())}}),
      Instance("marker.new", "marker", {{"path", Value::String("n")}})};
  std::vector<PriorResource> prior = {
      Prior("marker.m", "marker", {{"path", Value::String("p")}, {"id", Value::String("p")}})};
  std::unordered_set<std::string> requested = {"marker.m", "marker.new"};
  Plan p = ComputePlan(config, prior, {}, nullptr, false, &requested);
  const PlannedResource& m = Get(p, "marker.m");
  EXPECT_EQ(m.action, Action::Replace);
  EXPECT_EQ(m.reasons, std::vector<std::string>{"replace requested by --replace"});
  // The replacement's id is known only after apply: what reads it updates.
  ASSERT_EQ(m.changes.size(), 1u);
  EXPECT_EQ(m.changes[0].name, "id");
  EXPECT_TRUE(m.planned.at("id").is_unknown());
  EXPECT_EQ(Get(p, "marker.new").action, Action::Create);  // nothing to replace
  EXPECT_NE(RenderPlanText(p, false).find("# marker.m must be replaced (replace requested by --replace)"),
            std::string::npos);
  // Without the request the same inputs are no change.
  Plan q = ComputePlan({config[0]}, {prior[0]}, {});
  EXPECT_EQ(Get(q, "marker.m").action, Action::NoOp);
}

TEST(Targeting, ARenamedResourcesCreateTakesTheDeleteOfTheSameObject) {
  // marker.old renamed to marker.new, the same object (id "m/x"): targeting
  // the new address also plans the delete it must wait for; excluding the
  // old address leaves the creation out too.
  auto plan = [] {
    std::vector<ResourceInstance> config = {
        Instance("marker.new", "marker", {{"path", Value::String("m/x")}, {"id", Value::String("m/x")}}),
        Instance("marker.z", "marker", {})};
    std::vector<PriorResource> prior = {
        Prior("marker.old", "marker", {{"path", Value::String("m/x")}, {"id", Value::String("m/x")}})};
    return ComputePlan(config, prior, {});
  };
  Plan p = plan();
  Targeting t;
  t.targets = {"marker.new"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  EXPECT_EQ(Addresses(p), (std::vector<std::string>{"marker.new", "marker.old"}));
  Plan q = plan();
  t = Targeting{};
  t.excludes = {"marker.old"};
  EXPECT_TRUE(RestrictToTargets(q, t, false).empty());
  EXPECT_EQ(Addresses(q), std::vector<std::string>{"marker.z"});
}

TEST(Targeting, TheClosureIsLinear) {
  // A 50,000-long chain, each depending on the one before, plus 50,000
  // instances of one resource all depending on a 50,000-instance resource:
  // quadratic work here would not finish within CTest's timeout. (No
  // timing is asserted: performance belongs in bench/.)
  const int n = 50000;
  std::vector<ResourceInstance> config;
  config.reserve(3 * n);
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> deps;
    if (i > 0) deps.push_back("marker.c" + std::to_string(i - 1));
    config.push_back(Instance("marker.c" + std::to_string(i), "marker", {}, std::move(deps)));
    config.push_back(Instance("marker.base[" + std::to_string(i) + "]", "marker", {}));
    config.push_back(Instance("marker.dep[" + std::to_string(i) + "]", "marker", {}, {"marker.base"}));
  }
  Plan p = ComputePlan(config, {}, {});
  Plan q = ComputePlan(std::move(config), {}, {});
  Targeting t;
  t.targets = {"marker.c" + std::to_string(n - 1), "marker.dep"};
  EXPECT_TRUE(RestrictToTargets(p, t, false).empty());
  EXPECT_EQ(p.resources.size(), 3u * n);
  t = Targeting{};
  t.excludes = {"marker.c0", "marker.base[7]"};
  EXPECT_TRUE(RestrictToTargets(q, t, false).empty());
  EXPECT_EQ(q.resources.size(), static_cast<size_t>(n - 1));  // all of marker.base but [7]
}

}  // namespace
}  // namespace plinth::runtime
