// A provider in another process, behind the Provider interface: JSON-RPC 2.0
// over the child's stdin/stdout, one JSON message per line
// (docs/providers/protocol.md is the contract).
//
// Input: the provider's name (its block's label), its executable, the
// environment and working directory to run it with. Start() launches it
// through the process layer (runtime/process/), asks for its schemas and
// checks them (compiler/schema/schema_json.h) before anything uses it.
//
// Failures: a provider that cannot start, exits, crashes, hangs past a
// call's deadline or answers something that is not a valid response fails
// that call with an error naming the provider, the method, the resource and
// the last lines of its stderr; resource calls that change the world are then
// marked outcome_unknown, so their intents stay open until a read settles
// them. A provider that died is started again (schemas checked to be the
// same, configuration sent again) for the next call; a call is never resent.
//
// Thread safety: every method may be called from any thread; calls are
// serialised (one request in flight per process).
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "compiler/schema/schema_json.h"
#include "runtime/provider/provider.h"

namespace plinth::process {
class Child;
}

namespace plinth::runtime {

struct RpcProviderOptions {
  std::string name;                          // the provider block's label
  std::filesystem::path executable;          // absolute
  std::filesystem::path cwd;                 // the configuration directory
  std::map<std::string, std::string> env;    // its whole environment
  std::chrono::milliseconds call_timeout{300'000};
  std::chrono::milliseconds start_timeout{30'000};  // schemas and configure
};

class RpcProvider : public Provider {
 public:
  // Starts the provider and loads its schemas; null with `*error` set when
  // it cannot start or its schemas are invalid.
  static std::unique_ptr<RpcProvider> Start(RpcProviderOptions options, std::string* error);
  ~RpcProvider() override;  // stops the process (Stop)

  const ProviderSchemas& LoadedSchemas() const { return schemas_; }
  // The provider block's evaluated configuration; sent (`configure`) before
  // the next resource call when it differs from what was sent last.
  void SetConfiguration(const ValueMap& config);
  // Closes its stdin and waits for it to exit (5 s, then SIGTERM, SIGKILL).
  void Stop();

  std::string Name() const override { return options_.name; }
  const SchemaSource& Schemas() const override { return source_; }
  std::vector<std::string> Validate(const std::string& type, const ValueMap& config) const override;
  Result<PlanResponse> PlanChange(const PlanRequest& request) override;
  Result<ResourceObject> Create(const std::string& type, const ValueMap& planned) override;
  Result<std::optional<ResourceObject>> Read(const std::string& type, const std::string& id,
                                             const ValueMap& prior) override;
  Result<ResourceObject> Update(const std::string& type, const std::string& id, const ValueMap& prior,
                                const ValueMap& planned) override;
  Result<Done> Delete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  Result<DeletePreview> PlanDelete(const std::string& type, const std::string& id, const ValueMap& prior) override;
  // `check_plan` (optional in the protocol): a provider that does not
  // implement it has no conflicts; one that fails, or answers something
  // malformed, makes one conflict saying so (the plan cannot be trusted).
  std::vector<PlanConflict> CheckPlan(const std::vector<PlanItem>& items) override;
  Result<ResourceObject> Import(const std::string& type, const std::string& id) override;

 private:
  class Source : public SchemaSource {
   public:
    explicit Source(const RpcProvider* p) : p_(p) {}
    std::string ProviderName() const override { return p_->options_.name; }
    std::vector<ResourceSchema> ResourceSchemas() const override { return p_->schemas_.resources; }

   private:
    const RpcProvider* p_;
  };

  explicit RpcProvider(RpcProviderOptions options);

  // One request and its response. `changes`: the call may change the world,
  // so a broken exchange leaves its outcome unknown. `what` names the
  // resource for messages ("textfile_file 'motd.txt'").
  // `secrets`: the sensitive strings in the request, never to be shown.
  Result<nlohmann::json> Call(const std::string& method, nlohmann::json params, const std::string& what,
                              bool changes, const std::vector<std::string>& secrets = {}) const;
  // Under mu_: starts the process and checks its schemas (again after a crash).
  bool Launch(std::string* error) const;
  // Under mu_: sends the configuration if it changed since the last one sent.
  std::optional<ProviderError> SendConfiguration() const;
  // Under mu_: one exchange on the running process.
  Result<nlohmann::json> Exchange(const std::string& method, const nlohmann::json& params,
                                  std::chrono::milliseconds timeout, const std::string& what, bool changes,
                                  const std::vector<std::string>& request_secrets) const;
  // Under mu_: ends the process after a broken exchange; returns its stderr tail.
  std::string Abandon() const;
  ProviderError Broken(const std::string& method, const std::string& what, const std::string& why, bool changes) const;
  Result<ResourceObject> ObjectFrom(const nlohmann::json& result, const std::string& type, const std::string& method,
                                    const std::string& what, bool changes) const;

  RpcProviderOptions options_;
  ProviderSchemas schemas_;
  nlohmann::json schemas_json_;  // as first received, to check a restarted process
  Source source_{this};
  mutable std::mutex mu_;
  mutable std::unique_ptr<process::Child> child_;
  mutable int64_t next_id_ = 1;
  mutable bool configured_ = false;  // child_ has been sent config_
  ValueMap config_;
  std::vector<std::string> config_secrets_;  // sensitive strings in config_
  bool have_config_ = false;
};

// Wire encoding of an attribute map (the lossless value encoding); an error
// when a value has no JSON form (NaN).
Result<nlohmann::json> AttributesToJson(const ValueMap& attributes);

}  // namespace plinth::runtime
