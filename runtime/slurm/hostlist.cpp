#include "runtime/slurm/hostlist.h"

#include <cstdint>
#include <map>
#include <set>

namespace plinth::slurm {

namespace {

struct Range {
  uint64_t low = 0, high = 0;
  size_t width = 0;  // zero-padded width, 0: none
};

bool AllDigits(std::string_view s) {
  if (s.empty() || s.size() > 18) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

uint64_t ToNumber(std::string_view s) {
  uint64_t n = 0;
  for (char c : s) n = n * 10 + uint64_t(c - '0');
  return n;
}

std::string Pad(uint64_t n, size_t width) {
  std::string s = std::to_string(n);
  if (s.size() < width) s.insert(0, width - s.size(), '0');
  return s;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// One bracket's content "1-3,5" -> ranges.
bool ParseRanges(std::string_view body, std::vector<Range>* out, std::string* why) {
  size_t start = 0;
  while (start <= body.size()) {
    size_t comma = body.find(',', start);
    std::string_view part =
        Trim(body.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    Range r;
    size_t dash = part.find('-');
    std::string_view lo = part.substr(0, dash);
    std::string_view hi = dash == std::string_view::npos ? lo : part.substr(dash + 1);
    if (!AllDigits(lo) || !AllDigits(hi)) {
      *why = std::string("'").append(part).append("' in brackets is not N or N-M");
      return false;
    }
    r.low = ToNumber(lo);
    r.high = ToNumber(hi);
    if (lo.size() > 1 && lo[0] == '0') r.width = lo.size();
    if (r.high < r.low) {
      *why = "range " + std::string(part) + " ends before it starts: write LOW-HIGH";
      return false;
    }
    out->push_back(r);
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return true;
}

// Expands one item (no top-level commas) into *out.
bool ExpandItem(std::string_view item, std::vector<std::string>* out, size_t limit, std::string* why) {
  if (item.find_first_of(" \t\n") != std::string_view::npos) {
    *why = std::string("'").append(item).append("' has a space inside a name");
    return false;
  }
  std::vector<std::string> partial{""};
  size_t i = 0;
  while (i < item.size()) {
    size_t open = item.find('[', i);
    std::string_view text =
        item.substr(i, open == std::string_view::npos ? std::string_view::npos : open - i);
    if (text.find(']') != std::string_view::npos) {
      *why = "']' without '['";
      return false;
    }
    for (auto& p : partial) p += text;
    if (open == std::string_view::npos) break;
    size_t close = item.find(']', open);
    if (close == std::string_view::npos) {
      *why = "'[' without ']'";
      return false;
    }
    std::vector<Range> ranges;
    if (!ParseRanges(item.substr(open + 1, close - open - 1), &ranges, why)) return false;
    std::vector<std::string> next;
    for (const auto& p : partial) {
      for (const Range& r : ranges) {
        for (uint64_t n = r.low; n <= r.high; ++n) {
          if (out->size() + next.size() >= limit) {
            *why = "expands to more than " + std::to_string(limit) + " names";
            return false;
          }
          next.push_back(p + Pad(n, r.width));
        }
      }
    }
    partial = std::move(next);
    i = close + 1;
  }
  for (auto& p : partial) {
    if (p.empty()) continue;
    if (out->size() >= limit) {
      *why = "expands to more than " + std::to_string(limit) + " names";
      return false;
    }
    out->push_back(std::move(p));
  }
  return true;
}

}  // namespace

std::optional<std::vector<std::string>> ExpandHostlist(std::string_view expr, std::string* error,
                                                       size_t limit) {
  std::vector<std::string> names;
  size_t start = 0, depth = 0;
  std::string why;
  for (size_t i = 0; i <= expr.size(); ++i) {
    char c = i < expr.size() ? expr[i] : ',';
    if (c == '[') {
      if (++depth > 1) {
        why = "nested '['";
        break;
      }
    } else if (c == ']') {
      if (depth == 0) {
        why = "']' without '['";
        break;
      }
      --depth;
    } else if (c == ',' && depth == 0) {
      std::string_view item = Trim(expr.substr(start, i - start));
      if (!item.empty() && !ExpandItem(item, &names, limit, &why)) break;
      start = i + 1;
    }
  }
  if (why.empty() && depth != 0) why = "'[' without ']'";
  if (!why.empty()) {
    if (error) *error = "hostlist '" + std::string(expr) + "': " + why;
    return std::nullopt;
  }
  return names;
}

std::string CompressHostlist(const std::vector<std::string>& names) {
  // Key: prefix + width (0 = unpadded); value: the numbers. Names without a
  // numeric suffix are their own key with no numbers.
  struct Group {
    std::string prefix;
    size_t width = 0;
    bool numbered = false;
    std::set<uint64_t> numbers;
  };
  std::vector<Group> groups;
  std::map<std::pair<std::string, size_t>, size_t> index;  // (prefix, width) -> groups index
  std::set<std::string> plain_seen;
  for (const std::string& name : names) {
    size_t digits = 0;
    while (digits < name.size() && digits < 18 && name[name.size() - 1 - digits] >= '0' &&
           name[name.size() - 1 - digits] <= '9')
      ++digits;
    if (digits == 0 || digits == name.size()) {
      if (plain_seen.insert(name).second) groups.push_back(Group{name, 0, false, {}});
      continue;
    }
    std::string prefix = name.substr(0, name.size() - digits);
    std::string_view number = std::string_view(name).substr(name.size() - digits);
    size_t width = (number.size() > 1 && number[0] == '0') ? number.size() : 0;
    auto key = std::make_pair(prefix, width);
    // "n10" belongs with "n01": an unpadded number as wide as a padded group.
    if (width == 0 && index.count(std::make_pair(prefix, number.size()))) key.second = number.size();
    auto it = index.find(key);
    if (it == index.end()) {
      it = index.emplace(key, groups.size()).first;
      groups.push_back(Group{prefix, key.second, true, {}});
    }
    groups[it->second].numbers.insert(ToNumber(number));
  }
  std::string out;
  for (const Group& g : groups) {
    if (!out.empty()) out += ',';
    if (!g.numbered) {
      out += g.prefix;
      continue;
    }
    if (g.numbers.size() == 1) {
      out += g.prefix + Pad(*g.numbers.begin(), g.width);
      continue;
    }
    out += g.prefix + '[';
    bool first = true;
    auto it = g.numbers.begin();
    while (it != g.numbers.end()) {
      uint64_t low = *it, high = *it;
      auto next = std::next(it);
      while (next != g.numbers.end() && *next == high + 1) {
        high = *next;
        ++next;
      }
      if (!first) out += ',';
      first = false;
      out += Pad(low, g.width);
      if (high != low) out += '-' + Pad(high, g.width);
      it = next;
    }
    out += ']';
  }
  return out;
}

}  // namespace plinth::slurm
