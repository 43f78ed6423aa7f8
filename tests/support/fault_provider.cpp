#include "tests/support/fault_provider.h"

#include <signal.h>
#include <unistd.h>

namespace plinth::testing {

using runtime::Done;
using runtime::ProviderError;
using runtime::ResourceObject;
using runtime::Result;

std::optional<FaultSpec> ParseFaultSpec(const std::string& text, std::string* error) {
  static const std::pair<const char*, FaultSpec::Kind> kinds[] = {
      {"fail", FaultSpec::Kind::Fail},
      {"flaky", FaultSpec::Kind::Flaky},
      {"hang", FaultSpec::Kind::Hang},
      {"kill-before", FaultSpec::Kind::KillBefore},
      {"kill-after", FaultSpec::Kind::KillAfter},
  };
  const size_t at = text.find('@');
  const std::string name = text.substr(0, at);
  for (const auto& [n, kind] : kinds) {
    if (name != n || at == std::string::npos) continue;
    const std::string number = text.substr(at + 1);
    if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos || number.size() > 18) break;
    FaultSpec spec{kind, std::stoull(number)};
    if (spec.at == 0) break;
    return spec;
  }
  *error = "'" + text + "' is not a fault spec; use fail@N, flaky@N, hang@N, kill-before@N or kill-after@N (N >= 1)";
  return std::nullopt;
}

FaultProvider::FaultProvider(std::unique_ptr<runtime::Provider> inner, FaultSpec spec)
    : inner_(std::move(inner)), spec_(spec) {}

void FaultProvider::Release() {
  std::lock_guard<std::mutex> lock(mu_);
  released_ = true;
  cv_.notify_all();
}

std::optional<ProviderError> FaultProvider::Before(bool& kill_after) {
  kill_after = false;
  const uint64_t n = ++calls_;
  if (n != spec_.at) return std::nullopt;
  switch (spec_.kind) {
    case FaultSpec::Kind::Fail:
      return ProviderError{"injected failure at call " + std::to_string(n), false};
    case FaultSpec::Kind::Flaky:
      return ProviderError{"injected transient failure at call " + std::to_string(n), true};
    case FaultSpec::Kind::Hang: {
      std::unique_lock<std::mutex> lock(mu_);
      hanging_ = true;
      cv_.wait(lock, [&] { return released_; });
      hanging_ = false;
      return std::nullopt;
    }
    case FaultSpec::Kind::KillBefore:
      kill(getpid(), SIGKILL);
      pause();  // SIGKILL cannot be caught; this is never reached
      return std::nullopt;
    case FaultSpec::Kind::KillAfter:
      kill_after = true;
      return std::nullopt;
  }
  return std::nullopt;
}

void FaultProvider::After(bool kill_after) {
  if (!kill_after) return;
  kill(getpid(), SIGKILL);
  pause();
}

Result<ResourceObject> FaultProvider::Create(const std::string& type, const ValueMap& planned) {
  bool kill_after = false;
  if (auto e = Before(kill_after)) return *e;
  Result<ResourceObject> r = inner_->Create(type, planned);
  After(kill_after);
  return r;
}

Result<std::optional<ResourceObject>> FaultProvider::Read(const std::string& type, const std::string& id,
                                                          const ValueMap& prior) {
  ++reads_;
  return inner_->Read(type, id, prior);
}

Result<ResourceObject> FaultProvider::Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                             const ValueMap& planned) {
  bool kill_after = false;
  if (auto e = Before(kill_after)) return *e;
  Result<ResourceObject> r = inner_->Update(type, id, prior, planned);
  After(kill_after);
  return r;
}

Result<Done> FaultProvider::Delete(const std::string& type, const std::string& id, const ValueMap& prior) {
  bool kill_after = false;
  if (auto e = Before(kill_after)) return *e;
  Result<Done> r = inner_->Delete(type, id, prior);
  After(kill_after);
  return r;
}

}  // namespace plinth::testing
