// Services and load balancers of the local provider as configuration
// (docs/services.md): plan-time checks and their messages, planned ids,
// endpoints and backends.
#include "runtime/providers/local/service.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>

namespace plinth::runtime {
namespace {

namespace sc = service_config;

Value S(const std::string& s) {
  return Value::String(s);
}
Value N(double n) {
  return Value::Number(n);
}

Value RegionRef(const std::string& name, int port_base = 20000, int port_count = 1000, Value host = Value()) {
  return Value::Object({{"name", S(name)},
                        {"address", S("region." + name)},
                        {"host", host},
                        {"port_base", N(port_base)},
                        {"port_count", N(port_count)},
                        {"down", Value::Bool(false)},
                        {"path", S("/data/regions/" + name)}});
}

Value Probe(ValueMap fields) {
  ValueMap m = {{"http", Value()},
                {"tcp", Value::Bool(false)},
                {"exec", Value()},
                {"port", Value()},
                {"period", Value::Duration(10000)},
                {"timeout", Value::Duration(1000)},
                {"initial_delay", Value::Duration(0)},
                {"success_threshold", N(1)},
                {"failure_threshold", N(3)}};
  for (auto& [k, v] : fields) m[k] = v;
  return Value::Object(std::move(m));
}

ValueMap ServiceConfig(ValueList regions, ValueMap extra = {}) {
  ValueMap m = {{"name", S("api")},
                {"address", S("service.api")},
                {"regions", Value::List(std::move(regions))},
                {"replicas", N(2)},
                {"port", N(20100)},
                {"command", Value::List({S("/bin/sh"), S("-c"), S("exit 0")})},
                {"env", Value()},
                {"secret_env", Value()},
                {"principal", Value()},
                {"reads", Value()},
                {"writes", Value()},
                {"liveness", Value()},
                {"readiness", Value()},
                {"startup", Value()}};
  for (auto& [k, v] : extra) m[k] = v;
  return m;
}

bool Has(const std::vector<std::string>& errs, const std::string& part) {
  return std::any_of(errs.begin(), errs.end(), [&](const std::string& e) { return e.find(part) != e.npos; });
}

std::string Join(const std::vector<std::string>& errs) {
  std::string s;
  for (const auto& e : errs) s += e + "\n";
  return s;
}

TEST(ServiceConfig, AValidServiceHasNoProblems) {
  auto errs = sc::ValidateService(ServiceConfig(
      {RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us", 20000, 1000, S("127.0.2.1"))},
      {{"readiness", Probe({{"http", S("/ready")}})}, {"liveness", Probe({{"tcp", Value::Bool(true)}})}}));
  EXPECT_TRUE(errs.empty()) << Join(errs);
}

TEST(ServiceConfig, ReplicasMustFitTheRegionsPortRange) {
  auto errs = sc::ValidateService(ServiceConfig({RegionRef("eu", 20000, 100)}, {{"port", N(20099)}}));
  EXPECT_TRUE(Has(errs, "replicas listen on ports 20099-20100 but region eu's port range is 20000-20099"))
      << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"port", N(80)}}));
  EXPECT_TRUE(Has(errs, "port 80 is outside 1024-65535")) << Join(errs);
}

TEST(ServiceConfig, TwoRegionsOnOneHostCollide) {
  auto errs = sc::ValidateService(ServiceConfig({RegionRef("eu"), RegionRef("us")}));
  EXPECT_TRUE(Has(errs, "replicas in regions eu and us would both listen on 127.0.0.1:20100-20101"))
      << Join(errs);
  EXPECT_TRUE(Has(errs, "host = \"127.0.1.1\"")) << Join(errs);
}

TEST(ServiceConfig, RegionsMustBeRegionReferencesOnce) {
  Value bucket = Value::Object({{"name", S("b")}, {"address", S("bucket.b")}});
  auto errs = sc::ValidateService(ServiceConfig({bucket}));
  EXPECT_TRUE(Has(errs, "'regions' takes region references, not bucket.b")) << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu"), RegionRef("eu")}));
  EXPECT_TRUE(Has(errs, "regions names region.eu twice")) << Join(errs);
  errs = sc::ValidateService(ServiceConfig({}));
  EXPECT_TRUE(Has(errs, "regions is empty")) << Join(errs);
}

TEST(ServiceConfig, ACommandThatDoesNotExistIsAPlanError) {
  auto errs = sc::ValidateService(
      ServiceConfig({RegionRef("eu")}, {{"command", Value::List({S("no-such-program-plinth-test")})}}));
  EXPECT_TRUE(Has(errs, "command's program 'no-such-program-plinth-test' is not on PATH")) << Join(errs);
  errs = sc::ValidateService(
      ServiceConfig({RegionRef("eu")}, {{"command", Value::List({S("/nonexistent/server")})}}));
  EXPECT_TRUE(Has(errs, "command's program /nonexistent/server is not an executable file")) << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"command", Value::List({})}}));
  EXPECT_TRUE(Has(errs, "command is empty")) << Join(errs);
}

TEST(ServiceConfig, ProbesAreChecked) {
  auto bad = [](ValueMap probe, const char* kind = "readiness") {
    return sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{kind, Probe(std::move(probe))}}));
  };
  EXPECT_TRUE(Has(bad({}), "readiness probe checks nothing"));
  EXPECT_TRUE(
      Has(bad({{"http", S("/a")}, {"tcp", Value::Bool(true)}}), "sets more than one of http, tcp and exec"));
  EXPECT_TRUE(Has(bad({{"http", S("healthz")}}), "http path \"healthz\" must start with '/'"));
  EXPECT_TRUE(Has(bad({{"exec", Value::List({})}}), "exec is empty"));
  EXPECT_TRUE(Has(bad({{"tcp", Value::Bool(true)}, {"port", N(9999)}}),
                  "readiness probe port 9999 is not a port the replicas listen on (20100-20101)"));
  EXPECT_TRUE(
      Has(bad({{"tcp", Value::Bool(true)}, {"period", Value::Duration(0)}}), "period must be greater"));
  EXPECT_TRUE(Has(bad({{"tcp", Value::Bool(true)}, {"failure_threshold", N(0)}}), "failure_threshold is 0"));
  EXPECT_TRUE(Has(bad({{"tcp", Value::Bool(true)}, {"success_threshold", N(2)}}, "liveness"),
                  "liveness probe: success_threshold must be 1"));
  EXPECT_FALSE(Has(bad({{"tcp", Value::Bool(true)}, {"success_threshold", N(2)}}), "success_threshold"));
  EXPECT_TRUE(bad({{"tcp", Value::Bool(true)}, {"port", N(20101)}}).empty());
}

TEST(ServiceConfig, BucketGrantsApplyToTheServicesPrincipal) {
  Value bucket =
      Value::Object({{"name", S("models")},
                     {"address", S("bucket.models")},
                     {"grant", Value::Object({{"service.api", Value::Object({{"access", S("read")}})}})}});
  auto errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"reads", Value::List({bucket})}}));
  EXPECT_TRUE(errs.empty()) << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"writes", Value::List({bucket})}}));
  EXPECT_TRUE(Has(errs, "service.api writes bucket models, which grants 'service.api' only read"))
      << Join(errs);
}

TEST(ServiceConfig, SecretValuesNeverAppearInMessages) {
  Value secret = Value::String("hunter2-secret-value").WithSensitive(true);
  auto errs = sc::ValidateService(ServiceConfig(
      {RegionRef("eu")},
      {{"secret_env", Value::Object({{"bad name", secret}})}, {"command", Value::List({secret})}}));
  for (const auto& e : errs) EXPECT_EQ(e.find("hunter2"), std::string::npos) << e;
}

TEST(ServiceConfig, PlannedEndpointsFollowRegionsThenReplicas) {
  ValueMap config = ServiceConfig(
      {RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us", 21000, 1000)}, {{"port", N(20100)}});
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  sc::PlanService(planned);
  EXPECT_EQ(planned["id"].as_string(), "api");
  ASSERT_EQ(planned["endpoints"].kind(), Value::Kind::List);
  std::vector<std::string> got;
  for (const Value& v : planned["endpoints"].as_list()) got.push_back(v.as_string());
  EXPECT_EQ(got, (std::vector<std::string>{"eu/0 127.0.1.1:20100", "eu/1 127.0.1.1:20101",
                                           "us/0 127.0.0.1:20100", "us/1 127.0.0.1:20101"}));
  // Only the regions' identity is kept.
  EXPECT_FALSE(planned["regions"].as_list()[0].as_object().count("path"));
  auto e = sc::ParseEndpoint(got[1]);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->region, "eu");
  EXPECT_EQ(e->index, 1);
  EXPECT_EQ(e->host, "127.0.1.1");
  EXPECT_EQ(e->port, 20101);
  EXPECT_FALSE(sc::ParseEndpoint("eu 127.0.0.1:1"));
  EXPECT_FALSE(sc::ParseEndpoint("eu/x 127.0.0.1:1"));
  EXPECT_FALSE(sc::ParseEndpoint("eu/0 127.0.0.1:70000"));
}

// A namespaced region (docs/services.md, "Regions that fail"): its private
// host is checked like a loopback one, and its path and isolation reach the
// service (the replicas' namespace is named from the path).
TEST(ServiceConfig, ANamespacedRegionKeepsItsPathAndItsPortRangeIsChecked) {
  Value eu = RegionRef("eu", 20000, 100, S("10.213.1.2"));
  ValueMap with = eu.as_object();
  with["isolation"] = S("namespace");
  eu = Value::Object(with);
  auto errs = sc::ValidateService(ServiceConfig({eu}, {{"port", N(20099)}}));
  EXPECT_TRUE(Has(errs, "replicas listen on ports 20099-20100 but region eu's port range is 20000-20099"))
      << Join(errs);
  ValueMap config = ServiceConfig({eu, RegionRef("us", 21000, 1000)}, {{"port", N(20050)}});
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  const ValueMap& kept = planned["regions"].as_list()[0].as_object();
  ASSERT_TRUE(kept.count("path") && kept.count("isolation"));
  EXPECT_EQ(kept.at("path").as_string(), "/data/regions/eu");
  EXPECT_EQ(kept.at("isolation").as_string(), "namespace");
  EXPECT_FALSE(planned["regions"].as_list()[1].as_object().count("isolation"));
}

TEST(ServiceConfig, UnknownInputsLeaveEndpointsUnknown) {
  ValueMap planned = ServiceConfig({RegionRef("eu")}, {{"port", Value::Unknown(Type::Int())}});
  sc::PlanService(planned);
  EXPECT_TRUE(planned["endpoints"].is_unknown());
}

ValueMap LbConfig(Value service, ValueMap extra = {}) {
  ValueMap m = {{"name", S("front")},       {"address", S("load_balancer.front")},
                {"service", service},       {"port", N(8080)},
                {"listen", S("127.0.0.1")}, {"mode", S("round_robin")},
                {"primary", Value()}};
  for (auto& [k, v] : extra) m[k] = v;
  return m;
}

Value PlannedServiceRef() {
  ValueMap config = ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")});
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  sc::PlanService(planned);
  return Value::Object(std::move(planned));
}

TEST(ServiceConfig, RolloutIsCheckedAndSurgePortsMustFit) {
  auto rollout = [](double unavailable, double surge) {
    return Value::Object({{"max_unavailable", N(unavailable)}, {"max_surge", N(surge)}});
  };
  auto errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"rollout", rollout(0, 0)}}));
  EXPECT_TRUE(Has(errs, "rollout.max_unavailable and rollout.max_surge are both 0")) << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"rollout", rollout(-1, 1)}}));
  EXPECT_TRUE(Has(errs, "rollout.max_unavailable is -1")) << Join(errs);
  // Replicas and one surge (20100-20102) fit 20000-20102; a surge of 2 does not.
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu", 20000, 103)}, {{"rollout", rollout(1, 1)}}));
  EXPECT_TRUE(errs.empty()) << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu", 20000, 103)}, {{"rollout", rollout(0, 2)}}));
  EXPECT_TRUE(Has(errs, "replicas and their surge listen on ports 20100-20103 but region eu's port range"))
      << Join(errs);
}

TEST(ServiceConfig, RolloutNumbersMayBePercentagesOfTheReplicas) {
  auto with = [](double replicas, Value unavailable, Value surge) {
    return ServiceConfig(
        {RegionRef("eu")},
        {{"replicas", N(replicas)},
         {"rollout", Value::Object({{"max_unavailable", unavailable}, {"max_surge", surge}})}});
  };
  // Kubernetes' rounding: unavailable down, surge up.
  auto r = sc::ResolveRollout(with(10, S("25%"), S("25%")));
  EXPECT_EQ(r.max_unavailable, 2);
  EXPECT_EQ(r.max_surge, 3);
  EXPECT_TRUE(r.errors.empty());
  r = sc::ResolveRollout(with(3, S("0%"), S("34%")));
  EXPECT_EQ(r.max_unavailable, 0);
  EXPECT_EQ(r.max_surge, 2);
  // Both come to 0 with few replicas: one may be unavailable.
  r = sc::ResolveRollout(with(2, S("10%"), S("0%")));
  EXPECT_EQ(r.max_unavailable, 1);
  EXPECT_EQ(r.max_surge, 0);
  r = sc::ResolveRollout(with(4, N(1), S("100%")));
  EXPECT_EQ(r.max_unavailable, 1);
  EXPECT_EQ(r.max_surge, 4);
  // The surge's ports count: 4 replicas + 4 surge from 20100 leave 20000-20107.
  auto errs = sc::ValidateService(
      ServiceConfig({RegionRef("eu", 20000, 107)},
                    {{"replicas", N(4)},
                     {"rollout", Value::Object({{"max_unavailable", N(0)}, {"max_surge", S("100%")}})}}));
  EXPECT_TRUE(Has(errs, "replicas and their surge listen on ports 20100-20107")) << Join(errs);
  for (const Value& bad : {S("25"), S("150%"), S("-5%"), S("x%"), Value::Bool(true), N(1.5)}) {
    errs = sc::ValidateService(with(4, bad, N(0)));
    EXPECT_TRUE(Has(errs, "rollout.max_unavailable")) << bad.ToString() << ": " << Join(errs);
  }
  errs = sc::ValidateService(with(4, S("150%"), N(0)));
  EXPECT_TRUE(Has(errs,
                  "rollout.max_unavailable is \"150%\": give a number of replicas (1) or a percentage of "
                  "them from \"0%\" to \"100%\""))
      << Join(errs);
}

TEST(ServiceConfig, SurgeEndpointsFollowTheReplicasAndTheLoadBalancerListsThem) {
  ValueMap config =
      ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")},
                    {{"rollout", Value::Object({{"max_unavailable", N(0)}, {"max_surge", N(1)}})}});
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  sc::PlanService(planned);
  std::vector<std::string> got;
  for (const Value& v : planned["surge_endpoints"].as_list()) got.push_back(v.as_string());
  EXPECT_EQ(got, (std::vector<std::string>{"eu/2 127.0.1.1:20102", "us/2 127.0.0.1:20102"}));

  ValueMap lb = LbConfig(Value::Object(planned), {{"mode", S("failover")}, {"primary", RegionRef("eu")}});
  EXPECT_TRUE(sc::ValidateLoadBalancer(lb).empty());
  sc::PlanLoadBalancer(lb);
  got.clear();
  for (const Value& v : lb["backends"].as_list()) got.push_back(v.as_string());
  EXPECT_EQ(got,
            (std::vector<std::string>{"eu/0 127.0.1.1:20100", "eu/1 127.0.1.1:20101",
                                      "us/0 127.0.0.1:20100 backup", "us/1 127.0.0.1:20101 backup",
                                      "eu/2 127.0.1.1:20102 surge", "us/2 127.0.0.1:20102 backup surge"}));
  auto e = sc::ParseEndpoint(got.back());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->index, 2);
  EXPECT_EQ(e->port, 20102);
  // The load balancer's port may not be a surge port.
  auto errs = sc::ValidateLoadBalancer(LbConfig(Value::Object(planned), {{"port", N(20102)}}));
  EXPECT_TRUE(Has(errs, "port 20102 on 127.0.0.1 is taken by a replica of service.api in region us"))
      << Join(errs);
}

TEST(ServiceConfig, RelocationReservesABlockPerOtherRegionAndTheLoadBalancerListsIt) {
  const Value relocate = S("relocate");
  ValueMap config =
      ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")},
                    {{"on_region_failure", relocate},
                     {"rollout", Value::Object({{"max_unavailable", N(0)}, {"max_surge", N(1)}})}});
  EXPECT_TRUE(sc::ValidateService(config).empty()) << Join(sc::ValidateService(config));
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  sc::PlanService(planned);
  std::vector<std::string> got;
  for (const Value& v : planned["relocation_endpoints"].as_list()) got.push_back(v.as_string());
  // After 2 replicas and 1 surge, each region's block for the other region.
  EXPECT_EQ(got, (std::vector<std::string>{"eu/3 127.0.1.1:20103", "eu/4 127.0.1.1:20104",
                                           "us/3 127.0.0.1:20103", "us/4 127.0.0.1:20104"}));
  ValueMap lb = LbConfig(Value::Object(planned), {{"mode", S("failover")}, {"primary", RegionRef("eu")}});
  sc::NormalizeLoadBalancerReferences(lb, lb);
  sc::PlanLoadBalancer(lb);
  got.clear();
  for (const Value& v : lb["backends"].as_list()) got.push_back(v.as_string());
  ASSERT_EQ(got.size(), 10u);
  EXPECT_EQ(got[6], "eu/3 127.0.1.1:20103 relocated");
  EXPECT_EQ(got[9], "us/4 127.0.0.1:20104 backup relocated");
  auto e = sc::ParseEndpoint(got[9]);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->index, 4);
  // The load balancer may not listen on a relocation port.
  auto errs = sc::ValidateLoadBalancer(LbConfig(Value::Object(planned), {{"port", N(20104)}}));
  EXPECT_TRUE(Has(errs, "port 20104 on 127.0.0.1 is taken by a replica of service.api in region us"))
      << Join(errs);

  // The blocks must fit each region's port range (20100-20104 here).
  errs = sc::ValidateService(
      ServiceConfig({RegionRef("eu", 20000, 104, S("127.0.1.1")), RegionRef("us")},
                    {{"on_region_failure", relocate},
                     {"rollout", Value::Object({{"max_unavailable", N(0)}, {"max_surge", N(1)}})}}));
  EXPECT_TRUE(Has(errs,
                  "replicas, their surge and the relocation blocks listen on ports 20100-20104 but region "
                  "eu's port range is 20000-20103"))
      << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"on_region_failure", relocate}}));
  EXPECT_TRUE(Has(errs, "on_region_failure = \"relocate\" needs a second region to relocate to"))
      << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu"), RegionRef("us", 21000, 1000, S("127.0.2.1"))},
                                           {{"on_region_failure", S("move")}}));
  EXPECT_TRUE(Has(errs, "on_region_failure is \"move\": give \"wait\"")) << Join(errs);

  // Unset ("wait"): no relocation endpoints.
  ValueMap waiting = ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")});
  ValueMap wplanned = waiting;
  sc::NormalizeServiceReferences(waiting, wplanned);
  sc::PlanService(wplanned);
  ASSERT_EQ(wplanned["relocation_endpoints"].kind(), Value::Kind::List);
  EXPECT_TRUE(wplanned["relocation_endpoints"].as_list().empty());
}

TEST(ServiceConfig, FlappingIsCheckedAndMoveReservesRelocationBlocks) {
  auto flapping = [](ValueMap f) { return Value::Object(std::move(f)); };
  const ValueList two = {RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")};
  ValueMap config =
      ServiceConfig(two, {{"flapping", flapping({{"restarts", N(2)},
                                                 {"within", Value::Duration(60000)},
                                                 {"remedy", S("move")},
                                                 {"hold", Value::Duration(20000)}})}});
  EXPECT_TRUE(sc::ValidateService(config).empty()) << Join(sc::ValidateService(config));
  std::vector<std::string> errs;
  auto spec = sc::FlappingOf(config, &errs);
  ASSERT_TRUE(spec) << Join(errs);
  EXPECT_EQ(spec->restarts, 2);
  EXPECT_EQ(spec->within_s, 60);
  EXPECT_TRUE(spec->move);
  EXPECT_EQ(spec->hold_s, 20);
  EXPECT_EQ(sc::RelocationBlocks(config), true);
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  sc::PlanService(planned);
  ASSERT_EQ(planned["relocation_endpoints"].kind(), Value::Kind::List);
  EXPECT_EQ(planned["relocation_endpoints"].as_list().size(), 4u);  // a block of 2 in each region

  // remedy = "alert": no blocks.
  ValueMap alerting = ServiceConfig(two, {{"flapping", flapping({{"remedy", S("alert")}})}});
  EXPECT_TRUE(sc::ValidateService(alerting).empty()) << Join(sc::ValidateService(alerting));
  EXPECT_EQ(sc::RelocationBlocks(alerting), false);

  errs = sc::ValidateService(ServiceConfig(two, {{"flapping", flapping({{"restarts", N(1)}})}}));
  EXPECT_TRUE(Has(errs, "flapping.restarts is 1: give 2 to 1000")) << Join(errs);
  errs = sc::ValidateService(ServiceConfig(two, {{"flapping", flapping({{"within", Value::Duration(5000)}})}}));
  EXPECT_TRUE(Has(errs, "flapping.within is 5s: give 10s to 7d")) << Join(errs);
  errs = sc::ValidateService(ServiceConfig(two, {{"flapping", flapping({{"remedy", S("restart")}})}}));
  EXPECT_TRUE(Has(errs, "flapping.remedy is \"restart\": give \"alert\"")) << Join(errs);
  errs = sc::ValidateService(
      ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1"))}, {{"flapping", flapping({{"remedy", S("move")}})}}));
  EXPECT_TRUE(Has(errs, "flapping.remedy = \"move\" needs a second region")) << Join(errs);
  // The blocks must fit the region's port range like relocation's.
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu", 20000, 101, S("127.0.1.1")), RegionRef("us")},
                                           {{"flapping", flapping({{"remedy", S("move")}})}}));
  EXPECT_TRUE(Has(errs, "replicas and their relocation blocks listen on ports 20100-20103")) << Join(errs);
}

TEST(ServiceConfig, AutoscaleIsCheckedAndLaysOutEndpointsForMax) {
  auto autoscale = [](ValueMap extra) {
    ValueMap a = {{"min", N(1)},
                  {"max", N(3)},
                  {"tolerance", N(0.1)},
                  {"target", Value::Object({{"requests_per_second", Value::Object({{"average", N(20)}})}})}};
    for (auto& [k, v] : extra) a[k] = v;
    return Value::Object(std::move(a));
  };
  ValueMap config = ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")},
                                  {{"replicas", N(1)}, {"autoscale", autoscale({})}});
  EXPECT_TRUE(sc::ValidateService(config).empty()) << Join(sc::ValidateService(config));
  std::vector<std::string> errs;
  auto spec = sc::AutoscaleOf(config, &errs);
  ASSERT_TRUE(spec) << Join(errs);
  EXPECT_EQ(spec->spec.max, 3);
  ASSERT_EQ(spec->targets.size(), 1u);
  EXPECT_EQ(spec->targets[0].signal, "requests_per_second");
  EXPECT_EQ(spec->spec.down.stabilization_ms, 300000);  // Kubernetes' default without scale_down
  ValueMap planned = config;
  sc::NormalizeServiceReferences(config, planned);
  sc::PlanService(planned);
  ASSERT_EQ(planned["endpoints"].as_list().size(), 6u);  // max 3 per region
  EXPECT_EQ(planned["endpoints"].as_list()[2].as_string(), "eu/2 127.0.1.1:20102");

  auto with = [&](ValueMap extra, double replicas = 1) {
    return sc::ValidateService(ServiceConfig({RegionRef("eu", 20000, 1000, S("127.0.1.1")), RegionRef("us")},
                                             {{"replicas", N(replicas)}, {"autoscale", autoscale(extra)}}));
  };
  errs = with({{"target", Value::Object({{"rps", Value::Object({{"average", N(5)}})}})}});
  EXPECT_TRUE(
      Has(errs, "autoscale target \"rps\" is not a signal: give requests_per_second, in_flight or cpu"))
      << Join(errs);
  errs = with({}, 5);
  EXPECT_TRUE(Has(errs, "replicas is 5 but autoscale keeps 1-3")) << Join(errs);
  errs = with({{"min", N(4)}});
  EXPECT_TRUE(Has(errs, "autoscale: max 3 is below min 4")) << Join(errs);
  errs = with({{"min", N(0)}});
  EXPECT_TRUE(Has(errs, "autoscale.min is 0")) << Join(errs);
  // No target is allowed: scale_rule blocks may be the service's only signals.
  errs = with({{"target", Value::Object({})}});
  EXPECT_TRUE(errs.empty()) << Join(errs);
  errs = with(
      {{"scale_up",
        Value::Object({{"policy", Value::List({Value::Object({{"pods", N(2)}, {"percent", N(50)}})})}})}});
  EXPECT_TRUE(Has(errs, "autoscale.scale_up: a policy sets exactly one of pods = N or percent = N"))
      << Join(errs);
  // The ports for max (and a surge after it) must fit: 20100-20103 in 20000-20102 does not.
  errs = sc::ValidateService(
      ServiceConfig({RegionRef("eu", 20000, 103, S("127.0.1.1"))},
                    {{"replicas", N(1)},
                     {"autoscale", autoscale({})},
                     {"rollout", Value::Object({{"max_unavailable", N(0)}, {"max_surge", N(1)}})}}));
  EXPECT_TRUE(Has(errs, "replicas and their surge listen on ports 20100-20103")) << Join(errs);
}

TEST(ServiceConfig, AUserMustExist) {
  auto errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"user", S("no-such-user-plinth")}}));
  EXPECT_TRUE(Has(errs, "user 'no-such-user-plinth' does not exist on this machine: create it"))
      << Join(errs);
  errs = sc::ValidateService(ServiceConfig({RegionRef("eu")}, {{"user", S("root")}}));
  EXPECT_EQ(Has(errs, "user 'root'"), ::geteuid() != 0) << Join(errs);
}

TEST(LoadBalancerConfig, FailoverNeedsAPrimaryAmongTheServicesRegions) {
  auto errs = sc::ValidateLoadBalancer(LbConfig(PlannedServiceRef(), {{"mode", S("failover")}}));
  EXPECT_TRUE(Has(errs, "mode \"failover\" needs a primary region")) << Join(errs);
  errs = sc::ValidateLoadBalancer(
      LbConfig(PlannedServiceRef(), {{"mode", S("failover")}, {"primary", RegionRef("ap")}}));
  EXPECT_TRUE(Has(errs, "primary region ap is not one of the service's regions (eu, us)")) << Join(errs);
  errs = sc::ValidateLoadBalancer(
      LbConfig(PlannedServiceRef(), {{"mode", S("failover")}, {"primary", RegionRef("eu")}}));
  EXPECT_TRUE(errs.empty()) << Join(errs);
  errs = sc::ValidateLoadBalancer(LbConfig(PlannedServiceRef(), {{"primary", RegionRef("eu")}}));
  EXPECT_TRUE(Has(errs, "primary is only used with mode = \"failover\"")) << Join(errs);
}

TEST(LoadBalancerConfig, ListenAndPortAreChecked) {
  auto errs = sc::ValidateLoadBalancer(LbConfig(PlannedServiceRef(), {{"listen", S("0.0.0.0")}}));
  EXPECT_TRUE(Has(errs, "listen \"0.0.0.0\" is not a loopback address")) << Join(errs);
  errs = sc::ValidateLoadBalancer(LbConfig(PlannedServiceRef(), {{"port", N(20101)}}));
  EXPECT_TRUE(Has(errs, "port 20101 on 127.0.0.1 is taken by a replica of service.api in region us"))
      << Join(errs);
  errs = sc::ValidateLoadBalancer(LbConfig(Value::Object({{"name", S("b")}, {"address", S("bucket.b")}})));
  EXPECT_TRUE(Has(errs, "'service' takes a service reference, not bucket.b")) << Join(errs);
}

TEST(LoadBalancerConfig, PlannedAddressAndBackups) {
  ValueMap planned = LbConfig(PlannedServiceRef(), {{"mode", S("failover")}, {"primary", RegionRef("eu")}});
  sc::PlanLoadBalancer(planned);
  EXPECT_EQ(planned["endpoint"].as_string(), "127.0.0.1:8080");
  EXPECT_EQ(planned["url"].as_string(), "http://127.0.0.1:8080");
  std::vector<std::string> got;
  for (const Value& v : planned["backends"].as_list()) got.push_back(v.as_string());
  EXPECT_EQ(got, (std::vector<std::string>{"eu/0 127.0.1.1:20100", "eu/1 127.0.1.1:20101",
                                           "us/0 127.0.0.1:20100 backup", "us/1 127.0.0.1:20101 backup"}));
}

TEST(LoadBalancerConfig, HealthComesFromTheServicesReadiness) {
  ValueMap service = PlannedServiceRef().as_object();
  service["readiness"] = Probe({{"http", S("/ready")}});
  ValueMap config = LbConfig(Value::Object(service), {{"mode", S("failover")}, {"primary", RegionRef("eu")}});
  ValueMap planned = config;
  sc::NormalizeLoadBalancerReferences(config, planned);
  EXPECT_EQ(planned["health"].as_string(), "http /ready, every 10s, rise 1, fall 3");
  // Only the service's identity and endpoints are kept, and the primary's name.
  EXPECT_FALSE(planned["service"].as_object().count("readiness"));
  EXPECT_TRUE(planned["service"].as_object().count("endpoints"));
  EXPECT_EQ(planned["primary"].as_object().size(), 1u);
  sc::PlanLoadBalancer(planned);
  EXPECT_EQ(planned["backends"].as_list().size(), 4u);

  service["readiness"] = Probe({{"tcp", Value::Bool(true)}});
  config["service"] = Value::Object(service);
  planned = config;
  sc::NormalizeLoadBalancerReferences(config, planned);
  EXPECT_EQ(planned["health"].as_string(), "tcp, every 10s, rise 1, fall 3");
}

TEST(LoadBalancerConfig, LoopbackCheck) {
  EXPECT_TRUE(sc::IsLoopbackIpv4("127.0.0.1"));
  EXPECT_TRUE(sc::IsLoopbackIpv4("127.255.3.9"));
  EXPECT_FALSE(sc::IsLoopbackIpv4("128.0.0.1"));
  EXPECT_FALSE(sc::IsLoopbackIpv4("localhost"));
  EXPECT_FALSE(sc::IsLoopbackIpv4("127.0.0"));
  EXPECT_FALSE(sc::IsLoopbackIpv4(""));
}

}  // namespace
}  // namespace plinth::runtime
