// Regions isolated in network namespaces (docs/services.md, "Regions that
// fail"): a region with `isolation = "namespace"` gets its own network
// namespace, joined to the root namespace by a veth pair, so that cutting the
// pair's host side cuts the region's replicas off the network for real.
//
// Input: the region's directory (names are derived from it, so two
// workspaces on one machine never share a namespace), its name and its host
// address. Output: the namespace and links themselves, made and removed with
// iproute2's `ip` through runtime/process (the one process layer).
//
// Layout for host X.Y.Z.W (a private 10.0.0.0/8 address):
//   namespace  plinth-<8 hex>-<region>   (hex: SHA-256 of the directory)
//   host side  pl<8 hex>h  X.Y.Z.1/24, up       (in the root namespace)
//   inside     pl<8 hex>n  X.Y.Z.W/24, up; lo up; default route via X.Y.Z.1
//   route      unreachable X.Y.Z.0/24 metric 4242 (root namespace): while the
//              link is down the region is unreachable at once, never routed
//              out through the default route
// Link names stay within the kernel's 15 characters.
//
// Invariants: every function that changes something needs root (CAP_NET_ADMIN
// and CAP_SYS_ADMIN); the name helpers and NamespaceHostError are pure.
// Thread safety: every function may be called from any thread; two callers
// changing one region's network at once race (the provider serialises them).
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace plinth::runtime::region_network {

struct RegionNetwork {
  std::string region;
  std::string netns;       // plinth-<hex>-<region>
  std::string host_link;   // pl<hex>h, in the root namespace
  std::string inner_link;  // pl<hex>n, inside netns
  std::string address;     // the region's host, X.Y.Z.W
  std::string gateway;     // X.Y.Z.1, the host side's address
};

// The names and addresses of a region's network. `region_dir` should be the
// region's absolute data directory (it is hashed as given).
RegionNetwork NetworkFor(const std::filesystem::path& region_dir, const std::string& region,
                         const std::string& host);

// "plinth-<hex>-<region>" alone (what a service's replicas are started in).
std::string NamespaceName(const std::filesystem::path& region_dir, const std::string& region);

// "" when `host` can be a namespaced region's address (an IPv4 address in
// 10.0.0.0/8 whose last byte is not 0, 1 or 255), else why not and what to
// give instead (lowercase, no trailing period).
std::string NamespaceHostError(const std::string& host);

// "X.Y.Z" of an IPv4 address, nullopt when `host` is not one.
std::optional<std::string> Subnet24(const std::string& host);

// What namespaces need: "" when this process runs as root, else the error
// naming the fallback.
std::string NamespacePrivilegeError();

// Creates the network (idempotent): a whole, correctly addressed network is
// kept as it is (its link state too: a failed region stays failed); anything
// partial or differently addressed is removed and made again. False with
// *error (and nothing left behind) when `ip` fails.
bool Create(const RegionNetwork& net, std::string* error);

// Removes the namespace and the host-side link; what is already gone is not
// an error.
bool Remove(const RegionNetwork& net, std::string* error);

// The namespace exists and holds the inner link, and the host link exists.
bool Intact(const RegionNetwork& net);

// Sets the host-side link up or down (a down link: the region loses its
// network while its processes keep running). False with *error.
bool SetLinkUp(const RegionNetwork& net, bool up, std::string* error);

// Whether the host-side link is administratively up; nullopt when it does not
// exist.
std::optional<bool> LinkUp(const RegionNetwork& net);

// Injected latency and loss (`tc qdisc replace dev INNER root netem delay
// DELAY [loss LOSS]` inside the namespace): the region's traffic leaves it
// `delay` late (tc's syntax: "50ms") and `loss` of it is dropped ("1%"; empty:
// none). `delay` "0ms" with no loss removes the qdisc. False with *error;
// a kernel without sch_netem says so ("the kernel has no netem qdisc: load
// sch_netem").
bool SetNetem(const RegionNetwork& net, const std::string& delay, const std::string& loss,
              std::string* error);

// The `ip` program (iproute2) found on PATH or in /usr/sbin, /sbin, /usr/bin,
// /bin; nullopt when it is not installed.
std::optional<std::filesystem::path> IpProgram();

}  // namespace plinth::runtime::region_network
