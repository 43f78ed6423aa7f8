// A provider that lies on purpose (in the spirit of LevelDB's
// fault_injection_test): it forwards to a real provider and, at the N-th
// mutating call (create, update or delete, counted from 1 across threads),
// injects a fault. Used by unit tests in-process and by the `plinth-fault`
// tool that scripts/crash-test.sh drives.
//
// Fault specs (Parse):
//   fail@N         the N-th call returns a non-retryable error, touching nothing
//   flaky@N        the N-th call returns a retryable error once, touching nothing
//   hang@N         the N-th call blocks until Release() (or forever)
//   kill-before@N  SIGKILL of this process just before the N-th call reaches the provider
//   kill-after@N   SIGKILL just after the N-th call changed the world, before
//                  the engine could record the result
//
// Thread safety: calls may come from any thread; counting is atomic.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/provider/provider.h"

namespace plinth::testing {

struct FaultSpec {
  enum class Kind { Fail, Flaky, Hang, KillBefore, KillAfter } kind = Kind::Fail;
  uint64_t at = 1;  // 1-based index of the mutating call
};

// nullopt (and *error set) when `text` is not a spec of the form above.
std::optional<FaultSpec> ParseFaultSpec(const std::string& text, std::string* error);

class FaultProvider : public runtime::Provider {
 public:
  FaultProvider(std::unique_ptr<runtime::Provider> inner, FaultSpec spec);

  // Mutating calls seen so far (including the faulted one).
  uint64_t calls() const { return calls_.load(); }
  // Reads seen so far.
  uint64_t reads() const { return reads_.load(); }
  // Lets a hung call go on (it then forwards to the real provider).
  void Release();
  // True once a hang@N call is blocked.
  bool hanging() const { return hanging_.load(); }

  std::string Name() const override { return inner_->Name(); }
  const SchemaSource& Schemas() const override { return inner_->Schemas(); }
  std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const override {
    return inner_->Validate(type, config);
  }
  runtime::Result<runtime::PlanResponse> PlanChange(const runtime::PlanRequest& request) override {
    return inner_->PlanChange(request);
  }
  runtime::Result<runtime::ResourceObject> Create(const std::string& type, const ValueMap& planned) override;
  runtime::Result<std::optional<runtime::ResourceObject>> Read(const std::string& type, const std::string& id,
                                                               const ValueMap& prior) override;
  runtime::Result<runtime::ResourceObject> Update(const std::string& type, const std::string& id,
                                                  const ValueMap& prior, const ValueMap& planned) override;
  runtime::Result<runtime::Done> Delete(const std::string& type, const std::string& id,
                                        const ValueMap& prior) override;
  // A read: forwarded, not counted (plans call it for every delete).
  runtime::Result<runtime::DeletePreview> PlanDelete(const std::string& type, const std::string& id,
                                                     const ValueMap& prior) override {
    return inner_->PlanDelete(type, id, prior);
  }
  runtime::Result<runtime::ResourceObject> Import(const std::string& type, const std::string& id) override {
    return inner_->Import(type, id);
  }
  // A read of planned values: forwarded, not counted.
  ValueMap StateValues(const std::string& type, const ValueMap& attributes) override {
    return inner_->StateValues(type, attributes);
  }
  std::vector<runtime::PlanConflict> CheckPlan(const std::vector<runtime::PlanItem>& items) override {
    return inner_->CheckPlan(items);
  }

 private:
  // Before the call: the injected error, if this call fails; may block or kill.
  std::optional<runtime::ProviderError> Before(bool& kill_after);
  void After(bool kill_after);

  std::unique_ptr<runtime::Provider> inner_;
  FaultSpec spec_;
  std::atomic<uint64_t> calls_{0};
  std::atomic<uint64_t> reads_{0};
  std::atomic<bool> hanging_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

}  // namespace plinth::testing
