// Pools and jobs of the local provider through the workspace's compute queue
// (runtime/compute/queue.h; docs/compute.md). The configuration side (schemas,
// checks, planned values, specs) is compute.{h,cpp}; this file only applies
// planned pools and jobs and reads them back.
//
// A pool is a row of the queue (its spec) plus the node agents it starts; a
// job is a row plus its runs. A job's Create submits it and, unless `wait =
// false`, waits until it ends (a first Ctrl-C stops the wait, not the job);
// a job that failed or was cancelled fails the create, and the next apply
// submits it again under the same id, which runs it again.
#include <chrono>
#include <ctime>
#include <optional>
#include <thread>

#include <unistd.h>

#include <cstdlib>

#include "runtime/compute/queue.h"
#include "runtime/process/process.h"
#include "runtime/providers/local/compute.h"
#include "runtime/providers/local/file_resources.h"
#include "runtime/providers/local/provider.h"
#include "runtime/storage/keys.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

ProviderError ComputeFail(std::string message) {
  return ProviderError{std::move(message), false};
}

std::string Rfc3339(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool KnownBool(const ValueMap& m, const std::string& key, bool fallback) {
  auto it = m.find(key);
  if (it == m.end() || it->second.kind() != Value::Kind::Bool) return fallback;
  return it->second.as_bool();
}

// The planned (or prior) attributes with what the job's record says now.
ValueMap JobAttributes(ValueMap attrs, const compute::JobState& s) {
  attrs["status"] = Value::String(compute::JobStatusName(s.status));
  attrs["exit_code"] = s.exit_code ? Value::Number(*s.exit_code) : Value();
  attrs["attempts"] = Value::Number(s.attempts);
  attrs["node"] = Value::String(s.node);
  attrs["reason"] = Value::String(s.reason);
  attrs["started_at"] = s.started_at_ms ? Value::String(Rfc3339(s.started_at_ms)) : Value();
  attrs["finished_at"] = s.finished_at_ms ? Value::String(Rfc3339(s.finished_at_ms)) : Value();
  attrs["log_path"] = Value::String(s.log_path);
  return attrs;
}

// "exit code 3", "signal 9", or the reason.
std::string HowItEnded(const compute::JobState& s) {
  std::string how;
  if (s.exit_code)
    how = "exit code " + std::to_string(*s.exit_code);
  else if (s.signal)
    how = "killed by signal " + std::to_string(*s.signal);
  if (!s.reason.empty()) how += (how.empty() ? "" : ": ") + s.reason;
  return how.empty() ? "no reason recorded" : how;
}

}  // namespace

ValueMap LocalProvider::StateValues(const std::string& type, const ValueMap& attributes) {
  if (type == "config_file") return config_file::StateValues(attributes, FileContext());
  if (type != "job" && type != "service") return attributes;
  auto it = attributes.find("secret_env");
  if (it == attributes.end() || it->second.is_null()) return attributes;
  auto key = storage::LoadWorkspaceKey(workspace_key_, true);
  if (key.ok()) return compute_config::WithSecretDigests(attributes, key.value().key);
  // Without the key no digest can stand for the values: they are dropped
  // (the next plan then shows the job as changed, never the values).
  ValueMap out = attributes;
  out["secret_env"] = Value::Object(ValueMap{}).WithSensitive();
  return out;
}

fs::path LocalProvider::ComputeDir() const {
  return compute_dir_.empty() ? root_.parent_path() / "compute" : compute_dir_;
}

Result<compute::Queue*> LocalProvider::ComputeQueue(bool create) {
  std::lock_guard<std::mutex> lock(compute_mu_);
  if (queue_) return queue_.get();
  fs::path dir = ComputeDir();
  std::error_code ec;
  if (!create && !fs::exists(dir / "compute.db", ec)) return static_cast<compute::Queue*>(nullptr);
  compute::QueueOptions options;
  options.workspace_key = workspace_key_;
  if (const char* agent = std::getenv("PLINTH_AGENT_PROGRAM"); agent && *agent) options.agent_program = agent;
  std::string error;
  queue_ = compute::Queue::Open(dir, std::move(options), create, &error);
  if (!queue_) return ComputeFail("cannot open the compute queue: " + error);
  return queue_.get();
}

Result<ResourceObject> LocalProvider::WritePool(const ValueMap& planned) {
  std::string error;
  auto spec = compute_config::PoolSpecFromPlanned(planned, &error);
  if (!spec) return ComputeFail("cannot apply the pool: " + error);
  // The patch commands as the agents run them: absolute, in the configuration's directory.
  if (!spec->patch.empty() && !compute_config::ResolvePatchCommands(&spec->patch, config_dir_, spec->id, &error))
    return ComputeFail(error);
  auto q = ComputeQueue(true);
  if (!q.ok()) return q.error();
  if (!q.value()->PutPool(*spec, &error))
    return ComputeFail("cannot record pool '" + spec->id + "': " + error);
  ValueMap attrs = planned;
  attrs["nodes"] = Value::Number(static_cast<double>(q.value()->ListNodes(spec->id, false).size()));
  return ResourceObject{spec->id, std::move(attrs)};
}

Result<std::optional<ResourceObject>> LocalProvider::ReadPool(const std::string& id, const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  auto q = ComputeQueue(false);
  if (!q.ok()) return q.error();
  if (!q.value() || !q.value()->GetPool(id)) return Out();
  ValueMap attrs = prior;
  attrs["nodes"] = Value::Number(static_cast<double>(q.value()->ListNodes(id, false).size()));
  return Out(ResourceObject{id, std::move(attrs)});
}

Result<Done> LocalProvider::DeletePool(const std::string& id) {
  auto q = ComputeQueue(false);
  if (!q.ok()) return q.error();
  if (!q.value() || !q.value()->GetPool(id)) return Done{};
  std::string error;
  if (!q.value()->RemovePool(id, /*force=*/false, &error)) return ComputeFail(error);
  return Done{};
}

Result<ResourceObject> LocalProvider::CreateJob(const ValueMap& planned) {
  std::map<std::string, std::string> secrets;
  std::string error;
  auto spec = compute_config::JobSpecFromPlanned(planned, &secrets, &error);
  if (!spec) return ComputeFail("cannot apply the job: " + error);
  auto key = storage::LoadWorkspaceKey(workspace_key_, true);
  if (!key.ok()) return key.error();
  auto q = ComputeQueue(true);
  if (!q.ok()) return q.error();
  compute::Queue& queue = *q.value();
  if (!queue.GetPool(spec->pool))
    return ComputeFail("pool '" + spec->pool + "' is not in the compute queue; apply its pool first");
  auto state = queue.Submit(*spec, std::move(secrets), &error);
  if (!state) return ComputeFail("cannot submit job '" + spec->id + "': " + error);
  if (KnownBool(planned, "wait", true)) {
    // Waits for the job's end; a stop request (the first Ctrl-C) ends the
    // wait and records the job as it is: it goes on running.
    // A job that waits with no live node and none being provisioned for
    // kStuck is not left waiting for ever: the create fails with why (the
    // pool's last event), and the job stays queued for a later node.
    constexpr auto kStuck = std::chrono::seconds(30);
    auto next_reconcile = std::chrono::steady_clock::now();
    bool nodeless = false;  // no live node since nodeless_since
    std::chrono::steady_clock::time_point nodeless_since{};
    while (!compute::IsTerminal(state->status) && !(stop_ && stop_->load())) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      auto now_time = std::chrono::steady_clock::now();
      if (now_time >= next_reconcile) {
        queue.Reconcile();
        next_reconcile = now_time + std::chrono::seconds(1);
        if (state->status == compute::JobStatus::kPending && queue.ListNodes(spec->pool, false).empty()) {
          std::string why;
          if (queue.EnsureCapacity(spec->pool, &why) && queue.ListNodes(spec->pool, false).empty() &&
              why.empty())
            why = "no node of the pool can take it";
          if (!nodeless) {
            nodeless = true;
            nodeless_since = now_time;
          }
          if (now_time - nodeless_since >= kStuck) {
            auto events = queue.Events(spec->pool, 1);
            std::string last = events.empty() ? why : events.back().text;
            return ComputeFail(
                "job '" + spec->id + "' has waited " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kStuck).count()) +
                " s with no node to run on: " + (last.empty() ? why : last) +
                " (plinth compute status shows the pool's nodes and events; the job stays queued)");
          }
        } else {
          nodeless = false;
        }
      }
      auto now = queue.GetJob(spec->id);
      if (!now)
        return ComputeFail("job '" + spec->id + "' was removed from the queue while apply waited for it");
      state = std::move(now);
    }
    if (state->status == compute::JobStatus::kFailed || state->status == compute::JobStatus::kCancelled) {
      return ComputeFail("job '" + spec->id + "' " + compute::JobStatusName(state->status) + " after " +
                         std::to_string(state->attempts) + (state->attempts == 1 ? " run" : " runs") + " (" +
                         HowItEnded(*state) + "); its output: plinth job logs " + spec->id +
                         "; the next apply runs it again");
    }
  }
  return ResourceObject{spec->id,
                        compute_config::WithSecretDigests(JobAttributes(planned, *state), key.value().key)};
}

Result<std::optional<ResourceObject>> LocalProvider::ReadJob(const std::string& id, const ValueMap& prior) {
  using Out = std::optional<ResourceObject>;
  auto q = ComputeQueue(false);
  if (!q.ok()) return q.error();
  if (!q.value()) return Out();
  auto state = q.value()->GetJob(id);
  if (!state) return Out();
  return Out(ResourceObject{id, JobAttributes(prior, *state)});
}

Result<Done> LocalProvider::DeleteJob(const std::string& id) {
  auto q = ComputeQueue(false);
  if (!q.ok()) return q.error();
  if (!q.value() || !q.value()->GetJob(id)) return Done{};
  std::string error;
  if (!q.value()->RemoveJob(id, &error)) return ComputeFail("cannot remove job '" + id + "': " + error);
  return Done{};
}

}  // namespace plinth::runtime
