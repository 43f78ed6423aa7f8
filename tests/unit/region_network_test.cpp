// Regions isolated in network namespaces (docs/services.md, "Regions that
// fail"): the names and addresses, the plan-time checks of the local
// provider, the service plumbing of the namespace, the replica lookup of the
// `plinth region fail` fallback, and (as root) a real namespace with a
// supervised replica inside it that a second supervisor adopts.
#include "runtime/providers/local/region_network.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "runtime/controller/clock.h"
#include "runtime/controller/region_faults.h"
#include "runtime/controller/region_replicas.h"
#include "runtime/controller/services.h"
#include "runtime/controller/supervisor.h"
#include "runtime/process/process.h"
#include "runtime/providers/local/provider.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;
namespace net = region_network;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;

bool Has(const std::vector<std::string>& errs, const std::string& part) {
  return std::any_of(errs.begin(), errs.end(),
                     [&](const std::string& e) { return e.find(part) != std::string::npos; });
}

std::string Join(const std::vector<std::string>& errs) {
  std::string out;
  for (const auto& e : errs) out += e + "\n";
  return out;
}

TEST(RegionNetwork, NamesComeFromTheRegionsDirectoryAndFitTheKernelsLimit) {
  net::RegionNetwork a = net::NetworkFor("/ws/a/.plinth/default/data/regions/eu", "eu", "10.213.1.2");
  net::RegionNetwork b = net::NetworkFor("/ws/b/.plinth/default/data/regions/eu", "eu", "10.213.1.2");
  EXPECT_EQ(a.netns.rfind("plinth-", 0), 0u);
  EXPECT_EQ(a.netns.size(), std::string("plinth-12345678-eu").size());
  EXPECT_EQ(a.netns.substr(a.netns.size() - 3), "-eu");
  EXPECT_NE(a.netns, b.netns) << "two workspaces share a namespace";
  EXPECT_NE(a.host_link, b.host_link);
  for (const auto* n : {&a, &b}) {
    EXPECT_LE(n->host_link.size(), 15u);
    EXPECT_LE(n->inner_link.size(), 15u);
    EXPECT_NE(n->host_link, n->inner_link);
  }
  EXPECT_EQ(a.netns, net::NamespaceName("/ws/a/.plinth/default/data/regions/eu", "eu"));
  EXPECT_EQ(a.netns, net::NetworkFor("/ws/a/.plinth/default/data/regions/eu", "eu", "10.9.9.9").netns);
  EXPECT_EQ(a.address, "10.213.1.2");
  EXPECT_EQ(a.gateway, "10.213.1.1");
  EXPECT_EQ(net::Subnet24("10.213.7.42"), "10.213.7");
  EXPECT_EQ(net::Subnet24("eu.example"), std::nullopt);
}

TEST(RegionNetwork, ANamespacedRegionsHostIsAPrivateAddressOfItsOwn) {
  EXPECT_EQ(net::NamespaceHostError("10.213.1.2"), "");
  EXPECT_EQ(net::NamespaceHostError("10.0.0.254"), "");
  EXPECT_NE(net::NamespaceHostError("127.0.1.1").find("loopback"), std::string::npos);
  EXPECT_NE(net::NamespaceHostError("192.168.1.2").find("not in 10.0.0.0/8"), std::string::npos);
  EXPECT_NE(net::NamespaceHostError("10.1.2.1").find("ends in .1"), std::string::npos);
  EXPECT_NE(net::NamespaceHostError("10.1.2.0").find("ends in .0"), std::string::npos);
  EXPECT_NE(net::NamespaceHostError("10.1.2.255").find("ends in .255"), std::string::npos);
  EXPECT_NE(net::NamespaceHostError("localhost").find("not an IPv4 address"), std::string::npos);
}

class RegionIsolationPlan : public ::testing::Test {
 protected:
  static ValueMap Region(const std::string& name, ValueMap extra = {}) {
    ValueMap m = {{"name", Value::String(name)},
                  {"address", Value::String("region." + name)},
                  {"id", Value::Unknown(Type::String())},
                  {"root", Value::Unknown(Type::String())},
                  {"path", Value::Unknown(Type::String())},
                  {"port_base", Value::Number(20000)},
                  {"port_count", Value::Number(1000)},
                  {"down", Value::Bool(false)},
                  {"labels", Value()}};
    for (auto& [k, v] : extra) m[k] = v;
    return m;
  }
  static ValueMap Namespaced(const std::string& name, const std::string& host) {
    return Region(name, {{"host", Value::String(host)}, {"isolation", Value::String("namespace")}});
  }
  ValueMap Planned(const ValueMap& config) {
    auto r = provider_.PlanChange(PlanRequest{"region", nullptr, config, {"root"}});
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value().planned : ValueMap{};
  }

  TempDir dir_{"plinth-region-net"};
  LocalProvider provider_{dir_.path() / "data"};
};

TEST_F(RegionIsolationPlan, ValidationNamesWhatIsWrongAndTheFix) {
  auto errs = provider_.Validate("region", Namespaced("eu", "127.0.1.1"));
  EXPECT_TRUE(Has(errs, "region host '127.0.1.1' is a loopback address")) << Join(errs);
  errs = provider_.Validate("region", Region("eu", {{"isolation", Value::String("namespace")}}));
  EXPECT_TRUE(Has(errs, "a region with isolation = \"namespace\" needs its own address")) << Join(errs);
  errs = provider_.Validate("region", Region("eu", {{"isolation", Value::String("vm")}}));
  EXPECT_TRUE(Has(errs, "region isolation 'vm' is not one of \"none\" or \"namespace\"")) << Join(errs);
  // A private address without a namespace stays what it was: not loopback.
  errs = provider_.Validate("region", Region("eu", {{"host", Value::String("10.213.1.2")}}));
  EXPECT_TRUE(Has(errs, "is not a loopback address")) << Join(errs);
  EXPECT_TRUE(Has(errs, "needs isolation = \"namespace\"")) << Join(errs);
  // A loopback host without isolation is fine, as before.
  EXPECT_TRUE(provider_.Validate("region", Region("eu", {{"host", Value::String("127.0.1.1")}})).empty());
  errs = provider_.Validate("region", Namespaced("eu", "10.213.1.2"));
  if (::geteuid() == 0) {
    EXPECT_TRUE(errs.empty()) << Join(errs);
  } else {
    ASSERT_EQ(errs.size(), 1u) << Join(errs);
    EXPECT_TRUE(Has(errs, "needs root")) << Join(errs);
    EXPECT_TRUE(Has(errs, "SIGSTOP")) << "the error names the fallback: " << Join(errs);
  }
}

TEST_F(RegionIsolationPlan, PlannedIsolatedFollowsIsolation) {
  ValueMap eu = Planned(Namespaced("eu", "10.213.1.2"));
  ASSERT_TRUE(eu.count("isolated"));
  EXPECT_TRUE(eu["isolated"].as_bool());
  ValueMap us = Planned(Region("us", {{"port_base", Value::Number(21000)}}));
  EXPECT_FALSE(us["isolated"].as_bool());
  EXPECT_EQ(us["isolation"].as_string(), "none");
}

TEST_F(RegionIsolationPlan, TwoNamespacedRegionsInOneSlash24AreAPlanConflict) {
  ValueMap eu = Planned(Namespaced("eu", "10.213.1.2"));
  ValueMap us = Planned(Namespaced("us", "10.213.1.3"));
  ValueMap ap = Planned(Namespaced("ap", "10.213.2.2"));
  auto c = provider_.CheckPlan({{"region.eu", "region", &eu, false}, {"region.us", "region", &us, false}});
  // Namespaced regions have hosts of their own: the same default port range is no conflict.
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].addresses, (std::vector<std::string>{"region.us", "region.eu"}));
  EXPECT_NE(c[0].message.find("are both in 10.213.1.0/24"), std::string::npos) << c[0].message;
  EXPECT_NE(c[0].message.find("give region.us a host in another /24"), std::string::npos) << c[0].message;
  EXPECT_TRUE(provider_.CheckPlan({{"region.eu", "region", &eu, false}, {"region.ap", "region", &ap, false}})
                  .empty());
}

TEST(RegionServices, TheNamespaceReachesTheReplicasAndTheirDigest) {
  controller::ServiceSpec s;
  s.id = "model";
  s.port = 20100;
  s.replicas = 1;
  s.argv = {"sleep", "1"};
  s.regions = {{"eu", "10.213.1.2", false, "plinth-0123abcd-eu"}, {"us", "127.0.2.1", false, ""}};
  auto replicas = controller::ReplicaSpecsFor(s, {}, "/logs");
  ASSERT_EQ(replicas.size(), 2u);
  EXPECT_EQ(replicas[0].netns, "plinth-0123abcd-eu");
  EXPECT_EQ(replicas[0].host, "10.213.1.2");
  EXPECT_EQ(replicas[1].netns, "");
  // The store's JSON keeps it, and leaves it out where there is none.
  nlohmann::json j = controller::ServiceJson(s);
  EXPECT_EQ(j["regions"][0]["netns"], "plinth-0123abcd-eu");
  EXPECT_FALSE(j["regions"][1].contains("netns"));
  EXPECT_EQ(controller::ServiceFromJson(j).regions[0].netns, "plinth-0123abcd-eu");
  EXPECT_EQ(controller::ServiceFromJson(j).regions[1].netns, "");
}

TEST(RegionReplicas, TheRegionOfAReplicaIdIsBetweenTheFirstAndLastDot) {
  EXPECT_EQ(controller::RegionOfReplicaId("model.eu.0"), "eu");
  EXPECT_EQ(controller::RegionOfReplicaId("model.eu-west.1.12"), "eu-west.1");
  EXPECT_EQ(controller::RegionOfReplicaId("model.eu"), "");
  EXPECT_EQ(controller::RegionOfReplicaId("model.eu.x"), "");
  EXPECT_EQ(controller::RegionOfReplicaId(".eu.0"), "");
  std::vector<controller::RecordedReplica> none;
  std::string error;
  EXPECT_TRUE(controller::LiveReplicasOf("/nonexistent/replicas.db", "eu", &none, &error)) << error;
  EXPECT_TRUE(none.empty());
}

TEST(RegionFaults, FailAndRecoverRecordsAreWhatStatusReads) {
  TempDir ws("plinth-region-fault");
  std::string error;
  ASSERT_TRUE(controller::RecordRegionFault(ws.path(), {"eu", 1700000000, "namespace"}, &error)) << error;
  controller::RegionFault f;
  ASSERT_TRUE(controller::ReadRegionFault(ws.path(), "eu", &f));
  EXPECT_EQ(f.method, "namespace");
  EXPECT_EQ(f.since, 1700000000);
  EXPECT_EQ(controller::FailedRegions(ws.path()), std::set<std::string>{"eu"});
  ASSERT_TRUE(controller::ClearRegionFault(ws.path(), "eu", &error)) << error;
  EXPECT_TRUE(controller::FailedRegions(ws.path()).empty());
}

// ----------------------------------------------- a real namespace (root only)

std::string NetNsOf(pid_t pid) {
  std::error_code ec;
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/net", ec).string();
}

char ProcState(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  return close == std::string::npos || close + 2 >= stat.size() ? '?' : stat[close + 2];
}

bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(RegionNamespace, AReplicaRunsInsideAndIsAdoptedAndFrozenByPidAndStartTime) {
  if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
  if (!net::IpProgram()) GTEST_SKIP() << "iproute2 is not installed";
  TempDir dir("plinth-region-ns");
  // A /24 chosen per run, so that parallel runs do not collide.
  const int third = 100 + static_cast<int>(std::random_device{}() % 100);
  const std::string host = "10.214." + std::to_string(third) + ".2";
  const net::RegionNetwork n = net::NetworkFor(dir.path() / "regions" / "eu", "eu", host);
  struct Cleanup {
    const net::RegionNetwork& n;
    std::vector<pid_t> pids;
    ~Cleanup() {
      for (pid_t p : pids) {
        ::kill(p, SIGCONT);
        ::kill(p, SIGKILL);
      }
      std::string ignored;
      net::Remove(n, &ignored);
    }
  } cleanup{n, {}};
  std::string error;
  ASSERT_TRUE(net::Create(n, &error)) << error;
  if (!net::Intact(n)) GTEST_SKIP() << "ip netns add does not work here";
  EXPECT_EQ(net::LinkUp(n), true);
  // Idempotent: a second create keeps what is there.
  ASSERT_TRUE(net::Create(n, &error)) << error;

  controller::ManualClock clock;
  const fs::path db = dir.path() / "controller" / "replicas.db";
  controller::ReplicaSpec spec;
  spec.id = "model.eu.0";
  spec.argv = {"sleep", "1000"};
  spec.env["PATH"] = "/usr/bin:/bin";
  spec.host = host;
  spec.netns = n.netns;
  spec.log_file = dir.path() / "logs" / "model.eu.0.log";
  pid_t pid = 0;
  uint64_t start = 0;
  {
    auto sup = controller::Supervisor::Open(db, clock, {}, &error);
    ASSERT_TRUE(sup) << error;
    ASSERT_TRUE(sup->Add(spec, &error)) << error;
    sup->Tick();
    auto s = sup->Snapshot("model.eu.0");
    ASSERT_TRUE(s && s->pid > 0) << (s ? s->last_error : "no snapshot");
    pid = s->pid;
    start = s->start_time;
    cleanup.pids.push_back(pid);
  }
  // ip execs the program: the pid is the replica itself, in the namespace.
  ASSERT_TRUE(Eventually([&] { return ReadFile("/proc/" + std::to_string(pid) + "/comm") == "sleep\n"; }))
      << ReadFile("/proc/" + std::to_string(pid) + "/comm");
  EXPECT_EQ(process::ProcessStartTime(pid), start);
  EXPECT_NE(NetNsOf(pid), NetNsOf(::getpid()));
  struct stat ns_file {};
  ASSERT_EQ(::stat(("/run/netns/" + n.netns).c_str(), &ns_file), 0);
  EXPECT_EQ(NetNsOf(pid), "net:[" + std::to_string(ns_file.st_ino) + "]");

  // A second supervisor adopts it: same pid, no restart.
  {
    auto sup = controller::Supervisor::Open(db, clock, {}, &error);
    ASSERT_TRUE(sup) << error;
    ASSERT_TRUE(sup->Add(spec, &error)) << error;
    sup->Tick();
    sup->Tick();
    auto s = sup->Snapshot("model.eu.0");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->pid, pid);
    EXPECT_EQ(s->restarts, 0);
  }

  // The fallback's lookup finds it by region, and freezes and continues it.
  std::vector<controller::RecordedReplica> found;
  ASSERT_TRUE(controller::LiveReplicasOf(db, "eu", &found, &error)) << error;
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].pid, pid);
  std::vector<controller::RecordedReplica> other;
  ASSERT_TRUE(controller::LiveReplicasOf(db, "us", &other, &error)) << error;
  EXPECT_TRUE(other.empty());
  EXPECT_EQ(controller::SignalReplicas(found, SIGSTOP), 1);
  EXPECT_TRUE(Eventually([&] { return ProcState(pid) == 'T'; })) << ProcState(pid);
  EXPECT_EQ(controller::SignalReplicas(found, SIGCONT), 1);
  EXPECT_TRUE(Eventually([&] { return ProcState(pid) == 'S'; })) << ProcState(pid);

  // Failing the region is its link going down; the namespace stays whole.
  ASSERT_TRUE(net::SetLinkUp(n, false, &error)) << error;
  EXPECT_EQ(net::LinkUp(n), false);
  EXPECT_TRUE(net::Intact(n));
  ASSERT_TRUE(net::SetLinkUp(n, true, &error)) << error;
  EXPECT_EQ(net::LinkUp(n), true);

  ASSERT_TRUE(net::Remove(n, &error)) << error;
  EXPECT_FALSE(net::Intact(n));
  EXPECT_EQ(net::LinkUp(n), std::nullopt);
  EXPECT_TRUE(net::Remove(n, &error)) << "removing what is gone is no error: " << error;
}

}  // namespace
}  // namespace plinth::runtime
