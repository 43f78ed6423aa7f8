// Interned strings for rules: every string a rule compares (a literal in the
// rule, a field value in a record) is replaced by a dense id, so equality is
// an integer compare in both the interpreter and generated code.
//
// Thread safety: Intern() takes a lock and may run concurrently with other
// Intern() calls, but not with Get(): evaluation reads strings without a
// lock, so build record batches (which intern) before evaluating, not during.
// Strings are never removed; a view returned by Get() stays valid for the
// pool's life.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace plinth::rules {

class StringPool {
 public:
  uint32_t Intern(std::string_view s);
  std::string_view Get(uint32_t id) const { return strings_[id]; }
  size_t size() const { return strings_.size(); }

 private:
  std::mutex mu_;
  std::deque<std::string> strings_;  // a deque keeps references stable
  std::unordered_map<std::string_view, uint32_t> ids_;
};

}  // namespace plinth::rules
