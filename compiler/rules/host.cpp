#include "compiler/rules/host.h"

#include <cmath>
#include <cstring>

#include "compiler/source/source.h"

using plinth::rules::HostContext;

extern "C" {

uint8_t plinth_rules_startswith(const HostContext* ctx, uint32_t s, uint32_t prefix) {
  return ctx->strings->Get(s).starts_with(ctx->strings->Get(prefix)) ? 1 : 0;
}

uint8_t plinth_rules_endswith(const HostContext* ctx, uint32_t s, uint32_t suffix) {
  return ctx->strings->Get(s).ends_with(ctx->strings->Get(suffix)) ? 1 : 0;
}

uint8_t plinth_rules_strcontains(const HostContext* ctx, uint32_t s, uint32_t part) {
  return ctx->strings->Get(s).find(ctx->strings->Get(part)) != std::string_view::npos ? 1 : 0;
}

double plinth_rules_strlen(const HostContext* ctx, uint32_t s) {
  return static_cast<double>(plinth::CountCodePoints(ctx->strings->Get(s)));
}

double plinth_rules_regex_count(const HostContext* ctx, uint32_t pattern, uint32_t s) {
  if (pattern >= ctx->regex_count) return -1;
  try {
    return static_cast<double>(ctx->regexes[pattern]->CountMatches(ctx->strings->Get(s)));
  } catch (const std::exception&) {  // std::bad_alloc: generated code must not unwind
    return -1;
  }
}

}  // extern "C"

namespace plinth::rules {

namespace {
double Fmod(double a, double b) { return std::fmod(a, b); }
void* Memset(void* d, int c, size_t n) { return std::memset(d, c, n); }
void* Memcpy(void* d, const void* s, size_t n) { return std::memcpy(d, s, n); }
void* Memmove(void* d, const void* s, size_t n) { return std::memmove(d, s, n); }
}  // namespace

const std::vector<HostSymbol>& HostSymbols() {
  static const std::vector<HostSymbol> symbols = {
      {"plinth_rules_startswith", reinterpret_cast<void*>(&plinth_rules_startswith)},
      {"plinth_rules_endswith", reinterpret_cast<void*>(&plinth_rules_endswith)},
      {"plinth_rules_strcontains", reinterpret_cast<void*>(&plinth_rules_strcontains)},
      {"plinth_rules_strlen", reinterpret_cast<void*>(&plinth_rules_strlen)},
      {"plinth_rules_regex_count", reinterpret_cast<void*>(&plinth_rules_regex_count)},
      // Emitted by LLVM itself: frem lowers to fmod, loop idioms to mem*.
      {"fmod", reinterpret_cast<void*>(&Fmod)},
      {"memset", reinterpret_cast<void*>(&Memset)},
      {"memcpy", reinterpret_cast<void*>(&Memcpy)},
      {"memmove", reinterpret_cast<void*>(&Memmove)},
  };
  return symbols;
}

}  // namespace plinth::rules
