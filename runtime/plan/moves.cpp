#include "runtime/plan/moves.h"

#include <algorithm>
#include <optional>
#include <unordered_map>

namespace plinth::runtime {

std::vector<AddressStep> SplitAddress(std::string_view address) {
  std::vector<AddressStep> steps;
  size_t i = 0;
  auto ident = [&]() -> std::string {
    size_t start = i;
    while (i < address.size() && address[i] != '.' && address[i] != '[') ++i;
    return std::string(address.substr(start, i - start));
  };
  while (i < address.size()) {
    std::string first = ident();
    if (first.empty() || i >= address.size() || address[i] != '.') return {};
    ++i;
    std::string second = ident();
    if (second.empty()) return {};
    AddressStep step{first + "." + second, ""};
    if (i < address.size() && address[i] == '[') {
      size_t start = i;
      bool quoted = false;
      for (++i; i < address.size(); ++i) {
        if (quoted && address[i] == '\\') {
          ++i;
        } else if (address[i] == '"') {
          quoted = !quoted;
        } else if (!quoted && address[i] == ']') {
          break;
        }
      }
      if (i >= address.size()) return {};
      ++i;
      step.key = std::string(address.substr(start, i - start));
    }
    steps.push_back(std::move(step));
    if (i < address.size()) {
      if (address[i] != '.') return {};
      ++i;
      if (i == address.size()) return {};
    }
  }
  return steps;
}

namespace {

bool IsModuleStep(const AddressStep& s) { return s.name.compare(0, 7, "module.") == 0; }

std::string Join(const std::vector<AddressStep>& steps) {
  std::string out;
  for (const AddressStep& s : steps) out += (out.empty() ? "" : ".") + s.name + s.key;
  return out;
}

// One end of a statement. `whole`: the last step matches any key (both ends
// of the statement are written without one).
struct Endpoint {
  std::vector<AddressStep> steps;
  bool whole = false;
  bool module() const { return !steps.empty() && IsModuleStep(steps.back()); }
};

// How many leading steps of `address` the endpoint matches, or nullopt. A
// resource endpoint matches an instance address exactly; a module endpoint
// matches the module part of addresses beneath it.
std::optional<size_t> Match(const Endpoint& e, const std::vector<AddressStep>& address) {
  const size_t n = e.steps.size();
  if (n == 0) return std::nullopt;
  if (e.module() ? address.size() <= n : address.size() != n) return std::nullopt;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (!(address[i] == e.steps[i])) return std::nullopt;
  }
  const AddressStep& last = address[n - 1];
  if (last.name != e.steps[n - 1].name) return std::nullopt;
  if (!e.whole && last.key != e.steps[n - 1].key) return std::nullopt;
  return n;
}

std::vector<AddressStep> Rewrite(const std::vector<AddressStep>& address, size_t matched, const Endpoint& to) {
  std::vector<AddressStep> out = to.steps;
  if (to.whole) out.back().key = address[matched - 1].key;
  out.insert(out.end(), address.begin() + static_cast<std::ptrdiff_t>(matched), address.end());
  return out;
}

// True when something `to` moves objects to may be matched by `from`: the
// statement with `from` must run after the one with `to`.
bool Overlaps(const Endpoint& to, const Endpoint& from) {
  const size_t n = std::min(to.steps.size(), from.steps.size());
  for (size_t i = 0; i < n; ++i) {
    if (to.steps[i].name != from.steps[i].name) return false;
    const bool any = (to.whole && i + 1 == to.steps.size()) || (from.whole && i + 1 == from.steps.size());
    if (!any && to.steps[i].key != from.steps[i].key) return false;
  }
  return true;
}

struct Statement {
  const MoveStatement* source;
  Endpoint from, to;
};

}  // namespace

MoveOutcome ApplyMoves(const std::vector<MoveStatement>& moves, const std::vector<RemovedStatement>& removals,
                       std::vector<PriorResource> prior, const std::vector<ResourceInstance>& config) {
  MoveOutcome out;
  if (moves.empty() && removals.empty()) {
    out.prior = std::move(prior);
    return out;
  }
  std::vector<std::vector<AddressStep>> config_steps;
  config_steps.reserve(config.size());
  for (const ResourceInstance& ri : config) config_steps.push_back(SplitAddress(ri.address));

  // Parse, drop exact duplicates (one module's block seen twice is not a
  // conflict), and find ambiguous pairs.
  std::vector<Statement> stmts;
  std::unordered_map<std::string, size_t> by_from, by_to;
  for (const MoveStatement& m : moves) {
    Statement s{&m, {SplitAddress(m.from), false}, {SplitAddress(m.to), false}};
    if (s.from.steps.empty() || s.to.steps.empty()) {
      out.problems.push_back({m.from, "moved block from " + m.from + " to " + m.to + ": not an address", m.range});
      continue;
    }
    s.from.whole = s.to.whole = s.from.steps.back().key.empty() && s.to.steps.back().key.empty();
    auto f = by_from.find(m.from);
    if (f != by_from.end()) {
      if (stmts[f->second].source->to == m.to) continue;
      out.problems.push_back({m.from, "two moved blocks move " + m.from + ", one to " + stmts[f->second].source->to +
                                          " and one to " + m.to + "; an object can move to one place only: keep one "
                                          "of them",
                              m.range});
      continue;
    }
    if (auto t = by_to.find(m.to); t != by_to.end()) {
      out.problems.push_back({m.to, "two moved blocks move objects to " + m.to + ", one from " +
                                        stmts[t->second].source->from + " and one from " + m.from +
                                        "; only one object can be at an address: keep one of them (to chain "
                                        "moves, move " + m.from + " to the first one's 'from')",
                              m.range});
      continue;
    }
    // A `from` the configuration still declares has not moved.
    for (size_t i = 0; i < config.size(); ++i) {
      if (Match(s.from, config_steps[i])) {
        out.problems.push_back({m.from, "moved block from " + m.from + ": " + config[i].address +
                                            " is still in the configuration, so it cannot have moved to " + m.to +
                                            "; remove the moved block, or rename the resource in the configuration",
                                m.range});
        s.from.steps.clear();
        break;
      }
    }
    if (s.from.steps.empty()) continue;
    by_from.emplace(m.from, stmts.size());
    by_to.emplace(m.to, stmts.size());
    stmts.push_back(std::move(s));
  }

  // Dependency order (Kahn): a statement runs after every statement whose
  // `to` overlaps its `from`. Statements are few; the pairwise pass is fine.
  const size_t n = stmts.size();
  std::vector<std::vector<size_t>> next(n);
  std::vector<size_t> indegree(n, 0);
  for (size_t a = 0; a < n; ++a) {
    for (size_t b = 0; b < n; ++b) {
      if (a != b && Overlaps(stmts[a].to, stmts[b].from)) {
        next[a].push_back(b);
        ++indegree[b];
      }
    }
  }
  std::vector<size_t> order, ready;
  for (size_t i = n; i-- > 0;) {
    if (indegree[i] == 0) ready.push_back(i);
  }
  while (!ready.empty()) {
    size_t i = ready.back();
    ready.pop_back();
    order.push_back(i);
    for (size_t j : next[i]) {
      if (--indegree[j] == 0) ready.push_back(j);
    }
  }
  if (order.size() < n) {
    // Follow edges among the leftovers until one repeats: that is the cycle.
    size_t cur = 0;
    while (indegree[cur] == 0) ++cur;
    std::vector<size_t> path;
    std::vector<int> seen(n, -1);
    while (seen[cur] < 0) {
      seen[cur] = static_cast<int>(path.size());
      path.push_back(cur);
      for (size_t a = 0; a < n; ++a) {
        if (indegree[a] > 0 && std::find(next[a].begin(), next[a].end(), cur) != next[a].end()) {
          cur = a;
          break;
        }
      }
    }
    std::string text;
    for (size_t k = static_cast<size_t>(seen[cur]); k < path.size(); ++k) {
      text = stmts[path[k]].source->from + " -> " + stmts[path[k]].source->to + (text.empty() ? "" : ", ") + text;
    }
    const MoveStatement& m = *stmts[cur].source;
    out.problems.push_back({m.from, "moved blocks form a cycle (" + text +
                                        "): no order of them leaves each object at one address; remove the block "
                                        "that moves an object back",
                            m.range});
  }

  // Apply each statement to every recorded object, in order.
  std::vector<std::vector<AddressStep>> steps(prior.size());
  std::unordered_map<std::string, size_t> at;  // current address -> object
  at.reserve(prior.size());
  for (size_t i = 0; i < prior.size(); ++i) {
    steps[i] = SplitAddress(prior[i].address);
    at.emplace(prior[i].address, i);
  }
  std::vector<std::string> original(prior.size());
  for (size_t si : order) {
    const Statement& s = stmts[si];
    std::vector<std::pair<size_t, std::vector<AddressStep>>> renames;
    for (size_t i = 0; i < prior.size(); ++i) {
      if (auto matched = Match(s.from, steps[i])) renames.emplace_back(i, Rewrite(steps[i], *matched, s.to));
    }
    if (renames.empty()) continue;  // nothing recorded there: skipped, as Terraform does
    for (const auto& [i, to] : renames) at.erase(prior[i].address);
    for (auto& [i, to] : renames) {
      std::string address = Join(to);
      if (auto blocker = at.find(address); blocker != at.end()) {
        const PriorResource& b = prior[blocker->second];
        std::string what = b.id.empty() ? "" : " (id " + QuoteString(b.id) + ")";
        if (!original[blocker->second].empty()) what += ", moved there from " + original[blocker->second];
        out.problems.push_back({address, "cannot move " + prior[i].address + " to " + address + ": " + address +
                                             " already has its own object in the state" + what +
                                             "; forget one of them first (plinth state rm ADDRESS) or correct the "
                                             "moved block",
                                s.source->range});
        at.emplace(prior[i].address, i);  // stays where it was
        continue;
      }
      if (original[i].empty()) original[i] = prior[i].address;
      prior[i].address = address;
      steps[i] = std::move(to);
      at.emplace(prior[i].address, i);
    }
  }
  for (size_t i = 0; i < prior.size(); ++i) {
    if (!original[i].empty() && original[i] != prior[i].address) out.moved_from[prior[i].address] = original[i];
  }

  // Removed blocks: after the moves; whole resources and module calls.
  for (const RemovedStatement& r : removals) {
    Endpoint e{SplitAddress(r.from), true};
    if (e.steps.empty()) {
      out.problems.push_back({r.from, "removed block from " + r.from + ": not an address", r.range});
      continue;
    }
    bool declared = false;
    for (size_t i = 0; i < config.size() && !declared; ++i) {
      if (Match(e, config_steps[i])) {
        out.problems.push_back({r.from, "removed block from " + r.from + ": " + config[i].address +
                                            " is still in the configuration; delete its block, or remove the "
                                            "removed block",
                                r.range});
        declared = true;
      }
    }
    if (declared) continue;
    for (size_t i = 0; i < prior.size(); ++i) {
      if (Match(e, steps[i])) out.removed.emplace(prior[i].address, r);
    }
  }
  out.prior = std::move(prior);
  return out;
}

}  // namespace plinth::runtime
