#include "runtime/providers/local/region_network.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <vector>

#include "runtime/process/process.h"

namespace plinth::runtime::region_network {
namespace fs = std::filesystem;
namespace {

constexpr std::chrono::milliseconds kIpDeadline{10'000};
// The metric of the region's fallback route: "unreachable X.Y.Z.0/24" under
// the link's own route (metric 0), so that while the link is down the
// region's addresses fail at once instead of following the default route.
constexpr const char* kFallbackMetric = "4242";

std::string DirHash(const fs::path& dir) {
  const std::string text = dir.string();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < 4 && i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// Runs `ip args...`; the outcome (a missing `ip` reads as not started).
process::Outcome Ip(std::vector<std::string> args) {
  process::Outcome out;
  auto ip = IpProgram();
  if (!ip) {
    out.start_error = "the 'ip' command (iproute2) is not installed: install iproute2";
    return out;
  }
  process::Spec spec;
  spec.program = *ip;
  spec.args = std::move(args);
  spec.env = {{"PATH", "/usr/sbin:/usr/bin:/sbin:/bin"}, {"LC_ALL", "C"}};
  spec.deadline = kIpDeadline;
  return process::Run(std::move(spec));
}

// Runs `ip args...`; false with *error naming the command when it fails.
bool IpOk(std::vector<std::string> args, std::string* error) {
  std::string shown = "ip";
  for (const auto& a : args) shown += " " + a;
  process::Outcome out = Ip(std::move(args));
  if (out.ok()) return true;
  *error = out.started ? "'" + shown + "' failed: " + out.Describe("ip") : out.start_error;
  return false;
}

bool LinkExists(const std::string& link, const std::string& netns) {
  std::vector<std::string> args;
  if (!netns.empty()) args = {"-n", netns};
  for (const char* a : {"link", "show", "dev"}) args.push_back(a);
  args.push_back(link);
  return Ip(std::move(args)).ok();
}

bool NamespaceExists(const std::string& netns) {
  process::Outcome out = Ip({"netns", "list"});
  if (!out.ok()) return false;
  // Lines: "NAME" or "NAME (id: N)".
  size_t at = 0;
  while (at < out.out.size()) {
    size_t end = out.out.find('\n', at);
    if (end == std::string::npos) end = out.out.size();
    std::string line = out.out.substr(at, end - at);
    at = end + 1;
    if (line == netns || line.rfind(netns + " ", 0) == 0) return true;
  }
  return false;
}

// The inner link holds exactly the region's address.
bool Addressed(const RegionNetwork& net) {
  process::Outcome out = Ip({"-n", net.netns, "-o", "-4", "addr", "show", "dev", net.inner_link});
  return out.ok() && out.out.find(" " + net.address + "/24 ") != std::string::npos;
}

}  // namespace

std::string NamespaceName(const fs::path& region_dir, const std::string& region) {
  return "plinth-" + DirHash(region_dir) + "-" + region;
}

RegionNetwork NetworkFor(const fs::path& region_dir, const std::string& region, const std::string& host) {
  RegionNetwork n;
  const std::string hash = DirHash(region_dir);
  n.region = region;
  n.netns = "plinth-" + hash + "-" + region;
  n.host_link = "pl" + hash + "h";
  n.inner_link = "pl" + hash + "n";
  n.address = host;
  if (auto subnet = Subnet24(host)) n.gateway = *subnet + ".1";
  return n;
}

std::optional<std::string> Subnet24(const std::string& host) {
  in_addr a{};
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return std::nullopt;
  const uint32_t v = ntohl(a.s_addr);
  return std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
         std::to_string((v >> 8) & 255);
}

std::string NamespaceHostError(const std::string& host) {
  in_addr a{};
  const std::string example = "give a private address such as host = \"10.213.1.2\"";
  if (::inet_pton(AF_INET, host.c_str(), &a) != 1) return "'" + host + "' is not an IPv4 address: " + example;
  const uint32_t v = ntohl(a.s_addr);
  if ((v >> 24) == 127)
    return "'" + host +
           "' is a loopback address, which a network namespace cannot have as its own: " + example;
  if ((v >> 24) != 10) return "'" + host + "' is not in 10.0.0.0/8: " + example;
  const uint32_t last = v & 255;
  if (last == 0 || last == 1 || last == 255)
    return "'" + host + "' ends in ." + std::to_string(last) +
           " (.0 and .255 are the /24's network and broadcast addresses, .1 is the host side of the "
           "region's link): " +
           example;
  return "";
}

std::string NamespacePrivilegeError() {
  if (::geteuid() == 0) return "";
  return "isolation = \"namespace\" needs root (network namespaces and veth links); run plinth as root, or "
         "leave isolation unset: `plinth region fail` then stops the region's replicas instead (SIGSTOP)";
}

std::optional<fs::path> IpProgram() {
  std::string list = "/usr/sbin:/sbin:/usr/bin:/bin";
  if (const char* path = std::getenv("PATH")) list = std::string(path) + ":" + list;
  return process::FindExecutable("ip", list);
}

bool Intact(const RegionNetwork& net) {
  return NamespaceExists(net.netns) && LinkExists(net.inner_link, net.netns) && LinkExists(net.host_link, "");
}

bool Remove(const RegionNetwork& net, std::string* error) {
  if (!net.gateway.empty()) {
    const std::string subnet = net.gateway.substr(0, net.gateway.rfind('.')) + ".0/24";
    Ip({"route", "del", "unreachable", subnet, "metric", kFallbackMetric});  // none there is fine
  }
  // Deleting the namespace deletes the inner end and with it the pair; the
  // host side is removed on its own for a pair whose namespace went first.
  if (NamespaceExists(net.netns) && !IpOk({"netns", "del", net.netns}, error)) return false;
  if (LinkExists(net.host_link, "") && !IpOk({"link", "del", "dev", net.host_link}, error)) {
    // The pair may be going with its namespace right now.
    if (LinkExists(net.host_link, "")) return false;
  }
  return true;
}

bool Create(const RegionNetwork& net, std::string* error) {
  if (net.gateway.empty()) return *error = "region host '" + net.address + "' is not an IPv4 address", false;
  const std::string cidr = net.address + "/24", gw_cidr = net.gateway + "/24";
  const std::string subnet = net.gateway.substr(0, net.gateway.rfind('.')) + ".0/24";
  const std::vector<std::string> fallback = {"route", "replace", "unreachable",
                                             subnet,  "metric",  kFallbackMetric};
  if (Intact(net) && Addressed(net)) return IpOk(fallback, error);
  if (!Remove(net, error)) return false;
  const std::vector<std::vector<std::string>> steps = {
      {"netns", "add", net.netns},
      {"link", "add", net.host_link, "type", "veth", "peer", "name", net.inner_link, "netns", net.netns},
      {"addr", "add", gw_cidr, "dev", net.host_link},
      {"link", "set", "dev", net.host_link, "up"},
      {"-n", net.netns, "link", "set", "dev", "lo", "up"},
      {"-n", net.netns, "addr", "add", cidr, "dev", net.inner_link},
      {"-n", net.netns, "link", "set", "dev", net.inner_link, "up"},
      {"-n", net.netns, "route", "add", "default", "via", net.gateway},
      fallback,
  };
  for (const auto& step : steps) {
    if (IpOk(step, error)) continue;
    std::string ignored;
    Remove(net, &ignored);
    *error = "cannot set up the network namespace of region '" + net.region + "': " + *error;
    return false;
  }
  return true;
}

bool SetNetem(const RegionNetwork& net, const std::string& delay, const std::string& loss,
              std::string* error) {
  std::string list = "/usr/sbin:/sbin:/usr/bin:/bin";
  if (const char* path = std::getenv("PATH")) list = std::string(path) + ":" + list;
  auto tc = process::FindExecutable("tc", list);
  if (!tc) return *error = "the 'tc' command (iproute2) is not installed: install iproute2", false;
  std::vector<std::string> args = {"netns", "exec", net.netns, tc->string(), "qdisc"};
  const bool off = (delay == "0ms" || delay == "0") && loss.empty();
  for (const char* a : {off ? "del" : "replace", "dev"}) args.push_back(a);
  args.push_back(net.inner_link);
  args.push_back("root");
  if (!off) {
    for (const char* a : {"netem", "delay"}) args.push_back(a);
    args.push_back(delay);
    if (!loss.empty()) {
      args.push_back("loss");
      args.push_back(loss);
    }
  }
  process::Outcome out = Ip(args);
  if (out.ok()) return true;
  // Removing what is not there is no error.
  if (off && out.err.find("Cannot delete qdisc with handle of zero") != std::string::npos) return true;
  if (out.err.find("qdisc kind is unknown") != std::string::npos)
    return *error = "the kernel has no netem qdisc: load sch_netem (modprobe sch_netem)", false;
  std::string shown = "tc";
  for (size_t i = 4; i < args.size(); ++i) shown += " " + args[i];
  *error = out.started ? "'" + shown + "' in namespace " + net.netns + " failed: " + out.Describe("tc")
                       : out.start_error;
  return false;
}

bool SetLinkUp(const RegionNetwork& net, bool up, std::string* error) {
  return IpOk({"link", "set", "dev", net.host_link, up ? "up" : "down"}, error);
}

std::optional<bool> LinkUp(const RegionNetwork& net) {
  process::Outcome out = Ip({"-o", "link", "show", "dev", net.host_link});
  if (!out.ok()) return std::nullopt;
  // "N: NAME@...: <BROADCAST,MULTICAST,UP,LOWER_UP> ..." : UP among the flags.
  size_t open = out.out.find('<'), close = out.out.find('>');
  if (open == std::string::npos || close == std::string::npos || close < open) return false;
  std::string flags = "," + out.out.substr(open + 1, close - open - 1) + ",";
  return flags.find(",UP,") != std::string::npos;
}

}  // namespace plinth::runtime::region_network
