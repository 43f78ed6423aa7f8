#include "runtime/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <fstream>
#include <unordered_map>
#include <unordered_set>

#include <openssl/evp.h>

#include "compiler/eval/evaluator.h"
#include "compiler/rules/metric_query.h"
#include "compiler/schema/schema.h"
#include "runtime/exec/executor.h"
#include "runtime/exec/parallel.h"
#include "runtime/io/durable.h"
#include "runtime/plan/moves.h"
#include "runtime/policy/policy.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"
#include "runtime/providers/router.h"
#include "runtime/state/lock.h"
#include "runtime/state/state_store.h"
#include "runtime/storage/keys.h"

namespace plinth::runtime {

namespace fs = std::filesystem;

namespace {

// Where the workspace's files live (EngineOptions::home_dir).
const std::string& HomeDir(const EngineOptions& o) { return o.home_dir.empty() ? o.config_dir : o.home_dir; }
std::filesystem::path WorkspaceDir(const EngineOptions& o) {
  return std::filesystem::path(HomeDir(o)) / ".plinth" / o.workspace;
}

// PLINTH_TIMINGS=1 prints how long each engine phase took (stderr); the
// benchmark uses it to say where time goes.
class PhaseTimer {
 public:
  PhaseTimer() : on_(std::getenv("PLINTH_TIMINGS") != nullptr), last_(std::chrono::steady_clock::now()) {}
  void Mark(const char* phase) {
    if (!on_) return;
    auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "timing: %-22s %8.3f s\n", phase,
                 std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point last_;
};

// Attributes the checker gives every instance; kept in state so that plans
// compare like with like.
void KeepIdentity(const ValueMap& from, ValueMap& to) {
  for (const char* key : {"address", "name"}) {
    auto it = from.find(key);
    if (it != from.end()) to[key] = it->second;
  }
}

bool IsComputedAttribute(const SchemaRegistry& schemas, const std::string& type, const std::string& name) {
  if (name == "id") return true;
  const ResourceSchema* s = schemas.Find(type);
  const AttributeSchema* a = s ? s->body.FindAttribute(name) : nullptr;
  // Optional-computed attributes the user did not set are the provider's to
  // decide at creation; the configuration cannot tell unset from unknown.
  return a && (a->mode == AttrMode::Computed || a->mode == AttrMode::OptionalComputed);
}

// True when a configured (not computed) attribute still holds a value only
// an earlier creation in this apply can reveal.
bool WaitsForDependencies(const SchemaRegistry& schemas, const PlannedResource& r) {
  for (const auto& [name, v] : r.planned) {
    if (IsComputedAttribute(schemas, r.type, name)) continue;
    if (v.ContainsUnknown()) return true;
  }
  return false;
}

// SHA-256 of `text`, in hex.
std::string Sha256Hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char* digits = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

// The data lines of a delete preview, for messages: "3 objects (1.0 MiB), 1 empty backup repository".
std::string DataText(const DeletePreview& d) {
  std::string out;
  for (const std::string& line : d.data) out += (out.empty() ? "" : ", ") + line;
  return out.empty() ? "nothing" : out;
}

// Identifies what a plan was made from: the configuration files loaded by
// one check (files [first, end) of the source manager) and the variable
// values. SHA-256, so equal digests mean equal inputs.
std::string Digest(const SourceManager& sources, size_t first, const VariableSources& vars,
                   const std::string& display_root) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  auto mix = [&](std::string_view s) {
    uint64_t n = s.size();
    EVP_DigestUpdate(ctx, &n, sizeof n);
    EVP_DigestUpdate(ctx, s.data(), s.size());
  };
  std::vector<std::pair<std::string, std::string_view>> files;
  // Paths as the files' absolute names: the loader shows them relative to
  // the display root or the working directory, which may differ between
  // plan --out and apply.
  std::error_code ec;
  for (size_t i = first; i < sources.size(); ++i) {
    const SourceFile& f = sources.Get(static_cast<FileId>(i));
    fs::path p = f.path();
    if (p.is_relative() && !display_root.empty() && fs::exists(fs::path(display_root) / p, ec)) {
      p = fs::path(display_root) / p;
    }
    files.emplace_back(fs::absolute(p, ec).lexically_normal().string(), f.text());
  }
  std::sort(files.begin(), files.end());
  for (const auto& [path, text] : files) {
    mix(path);
    mix(text);
  }
  // Variables files are among the files above (the check loads them).
  for (const auto& [name, value] : vars.environment) {
    mix("env " + name);
    mix(value);
  }
  for (const VariableArgument& a : vars.arguments) {
    mix(a.is_file ? "file" : "var " + a.name);
    mix(a.text);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    hex += digits[md[i] >> 4];
    hex += digits[md[i] & 15];
  }
  return hex;
}

// Plans each instance with the provider while the checker evaluates the
// configuration, so references see planned values.
class PlanHook : public ResourceHook {
 public:
  PlanHook(Provider& provider, ProviderRouter* router,
           const std::unordered_map<std::string, const PriorResource*>& prior,
           const std::vector<std::string>& replace)
      : provider_(provider), router_(router), prior_(prior), replace_(replace) {}

  void ProviderConfigured(const std::string& name, const ValueMap& config) override {
    if (router_) router_->Configure(name, config);
  }

  // An import block (docs/language.md): read the object now, so its target
  // is planned against it. Reads only; apply records it.
  void Import(const ImportStatement& st) override {
    if (!importing) return;  // a destroy plan deletes what the state holds; imports add nothing to it
    if (auto it = prior_.find(st.to); it != prior_.end()) {
      // Already managed: the block has done its work and stays harmless,
      // unless it names another object.
      if (it->second->id != st.id) {
        import_problems.push_back({st.to,
                                   "the import block imports id " + QuoteString(st.id) + " to " + st.to +
                                       ", which already manages id " + QuoteString(it->second->id) +
                                       "; remove the import block, or import to another address",
                                   st.range});
      }
      return;
    }
    Result<ResourceObject> res = provider_.Import(st.type, st.id);
    if (!res.ok()) {
      import_problems.push_back(
          {st.to, "cannot import " + QuoteString(st.id) + " to " + st.to + ": " + res.error().message,
           st.range});
      return;
    }
    import_ranges[st.to] = st.range;
    imported[st.to] = {st.to, st.type, std::move(res.value().id), std::move(res.value().attributes), {}};
    import_ids[st.to] = st.id;
  }

  ValueMap Planned(const ResourceInstance& ri) override {
    auto it = prior_.find(ri.address);
    const PriorResource* p = it == prior_.end() ? nullptr : it->second;
    if (!p && !imported.empty()) {
      if (auto im = imported.find(ri.address); im != imported.end()) {
        KeepIdentity(ri.attributes, im->second.attributes);
        p = &im->second;
      }
    }
    ranges[ri.address] = ri.range;
    for (const std::string& m : provider_.Validate(ri.type, ri.attributes))
      problems.push_back({ri.address, m, ri.range});
    // --replace: planned as the creation the replacement makes, so its
    // computed attributes, and what reads them, are unknown as on any
    // replacement.
    if (p && std::any_of(replace_.begin(), replace_.end(),
                         [&](const std::string& s) { return AddressSelects(s, ri.address); })) {
      std::lock_guard<std::mutex> lock(replace_mu_);
      replace_requested.insert(ri.address);
      p = nullptr;
    }
    PlanRequest req{ri.type, p ? &p->attributes : nullptr, ri.attributes, ri.unset_computed};
    Result<PlanResponse> res = provider_.PlanChange(req);
    if (!res.ok()) {
      problems.push_back({ri.address, res.error().message, ri.range});
      return ri.attributes;
    }
    if (!res.value().replace_because.empty()) replace_because[ri.address] = res.value().replace_because;
    if (!res.value().notes.empty()) {
      std::lock_guard<std::mutex> lock(replace_mu_);
      for (const std::string& n : res.value().notes) notes.push_back(ri.address + ": " + n);
    }
    ValueMap planned = std::move(res.value().planned);
    KeepIdentity(ri.attributes, planned);
    return planned;
  }

  std::map<std::string, std::vector<std::string>> replace_because;
  std::vector<std::string> notes;  // the providers' notes, "<address>: <note>"
  std::vector<PlanProblem> problems;
  std::unordered_set<std::string> replace_requested;  // instances planned as replacements (--replace)
  std::unordered_map<std::string, Range> ranges;      // each instance's block, for plan problems
  bool importing = true;                              // false: import blocks are not read (destroy plans)
  // Objects import blocks read, by target address (not in the state), the
  // id each was imported by, and the blocks' locations.
  std::map<std::string, PriorResource> imported;
  std::map<std::string, std::string> import_ids;
  std::map<std::string, Range> import_ranges;
  std::vector<PlanProblem> import_problems;  // at import blocks: the engine adds where each is

 private:
  Provider& provider_;
  ProviderRouter* router_;
  const std::unordered_map<std::string, const PriorResource*>& prior_;
  const std::vector<std::string>& replace_;
  std::mutex replace_mu_;
};

}  // namespace

struct Engine::Impl {
  Impl(EngineOptions options, SourceManager& s, Diagnostics& d)
      : o(std::move(options)), sources(s), diags(d) {}
  EngineOptions o;
  SourceManager& sources;
  Diagnostics& diags;
  std::unique_ptr<state::StateStore> store;
  // Providers in other processes, loaded by the first check that names them;
  // declared before `provider` so the router is destroyed first.
  std::unique_ptr<ExternalProviders> external;
  std::unique_ptr<Provider> provider;
  ProviderRouter* router = nullptr;  // inside `provider` (which tests may wrap)

  // The schemas of this run: built-in providers plus the external ones loaded.
  const SchemaRegistry& Schemas() const { return external ? external->Registry() : BuiltinSchemas(); }

  CheckOptions BaseCheckOptions() {
    CheckOptions co;
    co.variable_sources = o.variable_sources;
    co.schemas = &BuiltinSchemas();
    co.provider_resolver = external.get();
    co.display_root = o.display_root;
    return co;
  }
  // The store is thread-safe; concurrent intent writes share commits.

  bool in_memory = false;    // the store is an empty one in memory: the workspace has no state yet
  size_t total_changes = 0;  // in the graph now running
  bool applying = false;     // plans made by apply fix impure values (timestamp, uuid)

  void Progress(ProgressEvent::Kind kind, const std::string& address, const std::string& line) {
    if (!o.progress) return;
    {
      std::lock_guard<std::mutex> lock(running_mu);
      if (kind == ProgressEvent::Kind::Started) {
        // "bucket.b: creating..." -> "creating..."
        std::string verb = line.size() > address.size() + 2 ? line.substr(address.size() + 2) : line;
        running_changes[address] = {std::chrono::steady_clock::now(), std::move(verb)};
      } else if (kind != ProgressEvent::Kind::Still) {
        running_changes.erase(address);
      }
    }
    o.progress(ProgressEvent{kind, address, line, total_changes});
  }

  // Changes started and not yet ended, for the heartbeat.
  struct RunningChange {
    std::chrono::steady_clock::time_point since;
    std::string verb;  // "creating..."
  };
  std::mutex running_mu;
  std::map<std::string, RunningChange> running_changes;

  // Reports every change still running each o.heartbeat until `done`.
  void Heartbeat(std::stop_token done) {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      // Wakes early only when `done` is requested (the predicate never holds).
      cv.wait_for(lock, done, o.heartbeat, [] { return false; });
      if (done.stop_requested()) return;
      std::vector<ProgressEvent> due;
      {
        std::lock_guard<std::mutex> rl(running_mu);
        auto now = std::chrono::steady_clock::now();
        for (const auto& [address, c] : running_changes) {
          auto secs = std::chrono::duration_cast<std::chrono::seconds>(now - c.since).count();
          due.push_back({ProgressEvent::Kind::Still, address,
                         address + ": still " + c.verb + " (" +
                             FormatDuration(static_cast<double>(secs) * 1000) + " elapsed)",
                         total_changes});
        }
      }
      for (const ProgressEvent& e : due) o.progress(e);
    }
  }

  // The workspace lock for `command`, waiting up to --lock-timeout while
  // another process holds it.
  state::Result<state::AcquiredLock> Lock(const std::string& command) {
    return state::WorkspaceLock::AcquireWithin(
        *store, state::WorkspaceLock::ThisProcess(command), std::chrono::milliseconds(o.lock_timeout_ms),
        [this](const state::Error& e) {
          if (o.on_lock_wait) o.on_lock_wait(e.message);
        });
  }

  // `create`: apply, the one caller that may create the state and the data
  // root; everything else opens an existing state or, when there is none,
  // an empty one in memory (nothing is written to disk).
  bool Open(EngineResult& r, bool create = false) {
    if (store) return true;
    state::StoreOptions so;
    so.encryption_key = o.state_key;
    so.mode = create ? state::OpenMode::kCreate : state::OpenMode::kExisting;
    auto opened = state::StateStore::OpenWorkspace(HomeDir(o), o.workspace, so);
    if (!opened.ok() && opened.error().code == state::ErrorCode::kNotFound && !create && !o.require_state) {
      // Before the first apply that is expected; beside other workspaces'
      // state it may be a mistyped name, which the plan alone would hide.
      if (!state::StateStore::Workspaces(HomeDir(o)).empty()) {
        r.notes.push_back(opened.error().message + "; planning against an empty state");
      }
      so.workspace = o.workspace;
      opened = state::StateStore::OpenEmpty(so);
      in_memory = opened.ok();
    }
    if (!opened.ok()) {
      r.errors.push_back(opened.error().code == state::ErrorCode::kNotFound
                             ? opened.error().message
                             : "cannot open the state: " + opened.error().message);
      return false;
    }
    store = std::move(opened.value());
    std::error_code ec;
    fs::path root = o.data_root.empty() ? WorkspaceDir(o) / "data" : fs::path(o.data_root);
    root = fs::absolute(root, ec);
    if (create) {
      if (int e = io::MakeDirs(root, 0700)) {
        r.errors.push_back("cannot create the data directory '" + root.string() + "': " + std::strerror(e));
        return false;
      }
    }
    external = std::make_unique<ExternalProviders>(HomeDir(o));
    ProviderContext context;
    context.config_dir = o.run_dir.empty() ? o.config_dir : o.run_dir;
    context.data_root = root;
    context.workspace_key = storage::WorkspaceKeyPath(WorkspaceDir(o));
    context.stop = o.stop;
    context.compute_dir = WorkspaceDir(o) / "compute";
    auto routed = std::make_unique<ProviderRouter>(std::move(context), external.get());
    router = routed.get();
    provider = std::move(routed);
    if (o.wrap_provider) provider = o.wrap_provider(std::move(provider));
    return true;
  }

  state::ResourceRecord Record(const std::string& address, const std::string& type, const std::string& id,
                               const ValueMap& attrs, const std::vector<std::string>& deps) {
    state::ResourceRecord rec;
    rec.address = address;
    rec.type = type;
    rec.provider = router ? router->ProviderOf(type) : "local";
    rec.id = id;
    rec.attributes = attrs;
    rec.dependencies = deps;
    return rec;
  }

  // Open intents left by a killed process: read the provider to learn what
  // happened, then adopt what exists and forget what does not.
  // Providers other than local are configured from their provider blocks,
  // which only the checker can evaluate (and external ones are started by
  // it): a quiet check pass, once, when `types` need such a provider.
  bool providers_configured = false;
  bool ConfigureProvidersFor(const std::vector<std::string>& types) {
    if (providers_configured || !router) return false;
    bool others = std::any_of(types.begin(), types.end(),
                              [](const std::string& t) { return BuiltinSchemas().ProviderOf(t) != "local"; });
    if (!others) return false;
    providers_configured = true;
    SourceManager scratch_sources;
    Diagnostics scratch;
    CheckOptions co = BaseCheckOptions();
    CheckedConfig pre = Check(o.config_dir, scratch_sources, scratch, co);
    for (const auto& [name, config] : pre.providers) router->Configure(name, config);
    return true;
  }

  bool Reconcile(EngineResult& r) {
    auto open = store->OpenIntents();
    if (!open.ok()) {
      r.errors.push_back("cannot read the intent journal: " + open.error().message);
      return false;
    }
    std::vector<std::string> types;
    for (const state::IntentRecord& in : open.value()) types.push_back(in.planned.type);
    ConfigureProvidersFor(types);
    for (const state::IntentRecord& in : open.value()) {
      const state::ResourceRecord& planned = in.planned;
      std::string what = std::string(state::ActionName(in.action)) + " of " + in.address;
      if (planned.id.empty()) {
        (void)store->AbandonIntent(in.id, "no id was known before the call; nothing to look up");
        r.notes.push_back("an interrupted " + what +
                          " had no id to look up; if it left an object behind, import it");
        continue;
      }
      auto read = provider->Read(planned.type, planned.id, planned.attributes);
      if (!read.ok()) {
        r.errors.push_back("cannot check the interrupted " + what + ": " + read.error().message);
        return false;
      }
      const std::optional<ResourceObject>& found = read.value();
      state::IntentOutcome outcome;
      if (in.action == state::Action::kDelete) {
        if (found) {
          (void)store->AbandonIntent(in.id, "the object still exists");
          r.notes.push_back("interrupted " + what + ": it still exists and stays in the state");
          continue;
        }
        outcome.success = true;
        r.notes.push_back("interrupted " + what + ": it is gone; removed from the state");
      } else {
        if (!found) {
          (void)store->AbandonIntent(in.id, "the object does not exist");
          r.notes.push_back("interrupted " + what + ": nothing was created; it will be planned again");
          continue;
        }
        ValueMap attrs = found->attributes;
        KeepIdentity(planned.attributes, attrs);
        outcome.success = true;
        outcome.resource = Record(in.address, planned.type, found->id, attrs, planned.dependencies);
        r.notes.push_back("interrupted " + what + ": found it; adopted into the state");
      }
      auto done = store->CompleteIntent(in.id, outcome);
      if (!done.ok()) {
        r.errors.push_back("cannot record the reconciled " + what + ": " + done.error().message);
        return false;
      }
    }
    return true;
  }

  // The state, refreshed from the provider in parallel.
  bool LoadPrior(EngineResult& r, std::vector<PriorResource>& prior, PhaseTimer& timer) {
    auto records = store->Resources();
    if (!records.ok()) {
      r.errors.push_back("cannot read the state: " + records.error().message);
      return false;
    }
    for (const state::ResourceRecord& rec : records.value()) {
      prior.push_back({rec.address, rec.type, rec.id, rec.attributes, rec.dependencies});
    }
    timer.Mark("load state");
    if (!o.refresh || prior.empty()) return true;
    // Resources of other providers are refreshed with their provider blocks'
    // configuration, which only the checker can evaluate: a quiet check pass
    // first (only when the state holds such resources).
    std::vector<std::string> types;
    for (const PriorResource& p : prior) types.push_back(p.type);
    if (ConfigureProvidersFor(types)) timer.Mark("configure providers");
    // Reads are independent: a plain parallel loop (no graph), each read
    // retried with backoff while the provider calls its error retryable.
    std::vector<std::optional<ResourceObject>> reads(prior.size());
    std::vector<std::string> errors(prior.size());
    ParallelFor(prior.size(), o.parallelism, [&](size_t i) {
      for (int attempt = 1;; ++attempt) {
        auto res = provider->Read(prior[i].type, prior[i].id, prior[i].attributes);
        if (res.ok()) {
          reads[i] = std::move(res.value());
          return;
        }
        if (!res.error().retryable || attempt == 4) {
          errors[i] = res.error().message;
          return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100 << attempt));
      }
    });
    std::vector<PriorResource> refreshed;
    refreshed.reserve(prior.size());
    for (size_t i = 0; i < prior.size(); ++i) {
      if (!errors[i].empty()) {
        r.errors.push_back("cannot refresh " + prior[i].address + ": " + errors[i]);
        continue;
      }
      if (!reads[i]) {
        r.notes.push_back(prior[i].address + " was deleted outside Plinth");
        r.drift.push_back({prior[i].address, {}, true});
        continue;
      }
      ValueMap attrs = std::move(reads[i]->attributes);
      KeepIdentity(prior[i].attributes, attrs);
      std::string drifted;
      std::vector<std::string> names;
      for (const auto& [k, v] : attrs) {
        auto old = prior[i].attributes.find(k);
        if (old == prior[i].attributes.end() || !old->second.Equals(v)) {
          drifted += (drifted.empty() ? "" : ", ") + k;
          names.push_back(k);
        }
      }
      if (!drifted.empty()) {
        r.notes.push_back(prior[i].address + " changed outside Plinth: " + drifted);
        r.drift.push_back({prior[i].address, std::move(names), false});
      }
      PriorResource p = std::move(prior[i]);
      p.attributes = std::move(attrs);
      p.id = std::move(reads[i]->id);
      refreshed.push_back(std::move(p));
    }
    prior = std::move(refreshed);
    timer.Mark("refresh");
    return r.errors.empty();
  }

  // Asks the provider what each delete (and replacement) removes with the
  // resource. A delete the provider would refuse is a plan problem, so apply
  // and destroy refuse before changing anything. What the deletes remove
  // joins the configuration digest ("+d<sha256>"): a saved or approved plan
  // is refused when that data changed since it was made.
  bool PreviewDeletes(EngineResult& r) {
    std::vector<PlannedResource*> deleting;
    for (PlannedResource& pr : r.plan.resources) {
      if (pr.action == Action::Delete || pr.action == Action::Replace) deleting.push_back(&pr);
    }
    if (deleting.empty()) return true;
    std::vector<std::string> errors(deleting.size());
    ParallelFor(deleting.size(), std::max(1u, o.parallelism), [&](size_t i) {
      PlannedResource& pr = *deleting[i];
      static const ValueMap kNone;
      const ValueMap& prior = pr.prior ? *pr.prior : kNone;
      auto id = prior.find("id");
      auto res = provider->PlanDelete(
          pr.type,
          id != prior.end() && id->second.kind() == Value::Kind::String ? id->second.as_string() : "", prior);
      if (res.ok()) {
        pr.deletes = std::move(res.value());
      } else {
        errors[i] = res.error().message;
      }
    });
    std::string amounts;
    for (size_t i = 0; i < deleting.size(); ++i) {
      const PlannedResource& pr = *deleting[i];
      if (!errors[i].empty()) {
        r.errors.push_back("cannot tell what deleting " + pr.address + " removes: " + errors[i]);
        continue;
      }
      if (!pr.deletes->refusal.empty()) r.plan.problems.push_back({pr.address, pr.deletes->refusal, Range{}});
      if (pr.deletes->amounts.empty()) continue;
      amounts += pr.address;
      for (const auto& [kind, n] : pr.deletes->amounts) amounts += " " + kind + "=" + std::to_string(n);
      amounts += "\n";
    }
    if (!amounts.empty()) r.config_digest += "+d" + Sha256Hex(amounts);
    return r.errors.empty();
  }

  // Conflicts between planned resources that apply would run into half-way
  // (two regions on one port range), asked of the providers with the whole
  // plan; each is a plan problem that names every resource involved where
  // its block is, so plan fails and apply refuses before changing anything.
  void CheckConflicts(EngineResult& r, const std::unordered_map<std::string, Range>& ranges) {
    std::vector<PlanItem> items;
    items.reserve(r.plan.resources.size());
    for (const PlannedResource& pr : r.plan.resources) {
      if (pr.action == Action::Delete) continue;
      items.push_back(
          {pr.address, pr.type, &pr.planned, pr.action == Action::NoOp || pr.action == Action::Update});
    }
    for (PlanConflict& c : provider->CheckPlan(items)) {
      std::string where;
      for (const std::string& address : c.addresses) {
        auto it = ranges.find(address);
        if (it == ranges.end() || !it->second.valid()) continue;
        const SourceFile& f = sources.Get(it->second.file);
        LineCol lc = f.Position(it->second.begin);
        where += (where.empty() ? "; declared at " : " and ") + f.path() + ":" + std::to_string(lc.line) +
                 ":" + std::to_string(lc.column) + " (" + address + ")";
      }
      std::string address = c.addresses.empty() ? "" : c.addresses.front();
      auto it = ranges.find(address);
      r.plan.problems.push_back({address, c.message + where, it == ranges.end() ? Range{} : it->second});
    }
  }

  // A delete that would now remove more than its plan showed (an object
  // written since, a new backup): the reason to refuse it, or nullopt.
  std::optional<std::string> GrownSincePlan(const PlannedResource& r, const std::string& id,
                                            const ValueMap& prior) {
    auto now = provider->PlanDelete(r.type, id, prior);
    if (!now.ok()) return "cannot tell what deleting it removes: " + now.error().message;
    std::string grown;
    for (const auto& [kind, n] : now.value().amounts) {
      auto then = r.deletes->amounts.find(kind);
      if (n > (then == r.deletes->amounts.end() ? 0 : then->second))
        grown += (grown.empty() ? "" : ", ") + kind;
    }
    if (grown.empty()) return std::nullopt;
    return "refusing to delete " + r.address + ": it now holds more than the plan showed (" + grown +
           "): " + DataText(now.value()) + ", where the plan showed " + DataText(*r.deletes) +
           "; nothing was deleted; run plinth plan again";
  }

  // Alert queries that name a metric none of the controller's targets
  // exported at its last scrape (`<workspace>/controller/metric-names.json`,
  // written by the controller's alert task): a note each, located, since
  // such an alert reads "no data" until a target exports it. Nothing when no
  // controller has scraped yet: then nothing is known.
  void NoteUnexportedMetrics(const CheckedConfig& config, std::vector<std::string>& notes) const {
    if (config.alerts.empty()) return;
    const std::filesystem::path path = WorkspaceDir(o) / "controller" / "metric-names.json";
    std::ifstream in(path);
    if (!in) return;
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, false);
    if (!doc.is_object() || !doc.contains("names") || !doc["names"].is_array()) return;
    std::set<std::string> names;
    for (const auto& n : doc["names"])
      if (n.is_string()) names.insert(n.get<std::string>());
    std::time_t at = static_cast<std::time_t>(doc.value("at_ms", int64_t{0}) / 1000);
    char when[32] = "?";
    std::tm tm{};
    if (gmtime_r(&at, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    for (const AlertInstance& a : config.alerts) {
      if (!a.when) continue;
      std::vector<rules::MetricQuery> queries;
      rules::CollectMetricQueries(*a.when, queries);
      std::set<std::string> said;
      for (const rules::MetricQuery& q : queries) {
        if (names.count(q.metric) || !said.insert(q.metric).second) continue;
        notes.push_back(Where(q.range) + ": " + a.name + ": no target exported metric \"" + q.metric +
                        "\" when the controller last scraped (" + when +
                        "): the alert reads no data (never 0) until one does; check the name and that the "
                        "service exports it");
      }
    }
  }

  // "main.plinth:3:1", or "" for a range with no file.
  std::string Where(Range range) const {
    if (!range.valid()) return "";
    const SourceFile& f = sources.Get(range.file);
    LineCol lc = f.Position(range.begin);
    return f.path() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column);
  }

  // Moved resources say where they came from; what a removed block with
  // destroy = false covers is forgotten instead of deleted; conflicts
  // between the blocks are problems that name the block.
  void MarkMoves(runtime::Plan& plan, const MoveOutcome& moves) {
    for (PlannedResource& pr : plan.resources) {
      if (auto m = moves.moved_from.find(pr.address); m != moves.moved_from.end()) pr.moved_from = m->second;
      auto rm = moves.removed.find(pr.address);
      if (rm == moves.removed.end() || pr.action != Action::Delete) continue;
      const std::string where = Where(rm->second.range);
      pr.reasons = {"removed block at " + where.substr(0, where.rfind(':'))};
      if (!rm->second.destroy) pr.action = Action::Forget;
    }
    for (const PlanProblem& p : moves.problems) {
      std::string where = Where(p.range);
      plan.problems.push_back({p.address, (where.empty() ? "" : where + ": ") + p.message, p.range});
    }
  }

  // The objects import blocks read whose target has no state: each target
  // declared in the configuration is planned against its object (added to
  // `prior`); one that is not is a problem, or, with generate_config, an
  // object returned for the caller to write a block for.
  void TakeImports(EngineResult& r, const CheckedConfig& config, PlanHook& hook,
                   std::vector<PriorResource>& prior) {
    std::unordered_set<std::string> declared;
    declared.reserve(config.resources.size());
    for (const ResourceInstance& ri : config.resources) declared.insert(ri.address);
    for (auto it = hook.imported.begin(); it != hook.imported.end();) {
      const std::string& address = it->first;
      if (declared.count(address)) {
        prior.push_back(it->second);
        ++it;
        continue;
      }
      const std::string& id = hook.import_ids[address];
      if (o.generate_config) {
        r.generated.push_back(
            {address, it->second.type, id, it->second.attributes, Schemas().Find(it->second.type)});
      } else {
        hook.import_problems.push_back(
            {address,
             "the import block imports to " + address +
                 ", which is not in the configuration; add its resource block "
                 "(plinth import --print-config " +
                 address + " " + QuoteString(id) +
                 " prints one), or plan with --generate-config-out=FILE to have it written",
             hook.import_ranges[address]});
      }
      hook.import_ids.erase(address);
      it = hook.imported.erase(it);
    }
  }

  // Marks the planned resources that this plan imports. Importing an object
  // the same plan would replace is refused, as Terraform does: the
  // configuration must describe the object as it is first.
  void MarkImports(EngineResult& r, PlanHook& hook) {
    for (PlannedResource& pr : r.plan.resources) {
      auto it = hook.import_ids.find(pr.address);
      if (it == hook.import_ids.end()) continue;
      pr.import_id = it->second;
      if (pr.action == Action::Replace || pr.action == Action::Delete) {
        std::string why;
        for (const std::string& reason : pr.reasons) why += (why.empty() ? "" : "; ") + reason;
        hook.import_problems.push_back(
            {pr.address,
             "importing " + QuoteString(pr.import_id) + " to " + pr.address + " would " +
                 (pr.action == Action::Replace ? "replace" : "delete") + " it at once" +
                 (why.empty() ? "" : " (" + why + ")") +
                 "; change the configuration to match the object (plinth import --print-config " +
                 pr.address + " " + QuoteString(pr.import_id) + " shows it), then plan again",
             hook.import_ranges[pr.address]});
      }
    }
  }

  // Check + provider planning + diff.
  // `locked`: the caller holds the workspace lock, so interrupted changes
  // are reconciled (written); otherwise nothing is written.
  bool MakePlan(EngineResult& r, bool destroy, bool locked = true) {
    PhaseTimer timer;
    if (!Open(r)) return false;
    timer.Mark("open state");
    if (locked) {
      if (!Reconcile(r)) return false;
    } else if (auto open = store->OpenIntents(); open.ok() && !open.value().empty()) {
      r.notes.push_back(
          std::to_string(open.value().size()) +
          " interrupted or running changes are not reconciled without the lock; this plan may repeat "
          "them (run plinth plan with the lock to settle them)");
    }
    timer.Mark("reconcile intents");
    auto serial = store->CurrentSerial();
    r.serial = serial.ok() ? serial.value() : 0;
    std::vector<PriorResource> prior;
    if (!LoadPrior(r, prior, timer)) return false;
    std::unordered_map<std::string, const PriorResource*> by_address;
    by_address.reserve(prior.size());
    for (const PriorResource& p : prior) by_address[p.address] = &p;
    if (destroy && !o.targeting.replace.empty()) {
      r.errors.push_back(
          "--replace cannot be combined with a destroy plan, which deletes everything anyway; drop "
          "--replace or --destroy");
      return false;
    }
    auto hook = std::make_unique<PlanHook>(*provider, router, by_address, o.targeting.replace);
    hook->importing = !destroy;
    CheckOptions co = BaseCheckOptions();
    co.resource_hook = hook.get();
    co.apply_time = applying;
    size_t first_file = sources.size();
    auto check_diags = std::make_unique<Diagnostics>();
    CheckedConfig config = Check(o.config_dir, sources, *check_diags, co);
    timer.Mark("check + provider plan");
    // moved and removed blocks (runtime/plan/moves.h): the state under its
    // new addresses. The provider planned each moved instance as a creation,
    // so when any object moved the configuration is planned once more,
    // against the moved state (only in the plan that performs the move).
    MoveOutcome moves;
    if (!check_diags->has_errors() && (!config.moves.empty() || !config.removals.empty())) {
      moves = ApplyMoves(config.moves, config.removals, std::move(prior), config.resources);
      prior = std::move(moves.prior);
      if (!moves.moved_from.empty()) {
        // Identity follows the address: the checker's `name` and `address`
        // of the new instance, so that a move alone changes nothing.
        std::unordered_map<std::string, const ResourceInstance*> instances;
        for (const ResourceInstance& ri : config.resources) instances[ri.address] = &ri;
        for (PriorResource& p : prior) {
          if (!moves.moved_from.count(p.address)) continue;
          auto it = instances.find(p.address);
          if (it != instances.end()) KeepIdentity(it->second->attributes, p.attributes);
        }
        by_address.clear();
        for (const PriorResource& p : prior) by_address[p.address] = &p;
        hook = std::make_unique<PlanHook>(*provider, router, by_address, o.targeting.replace);
        hook->importing = !destroy;
        co.resource_hook = hook.get();
        first_file = sources.size();
        check_diags = std::make_unique<Diagnostics>();
        config = Check(o.config_dir, sources, *check_diags, co);
        timer.Mark("check again after moves");
      }
    }
    diags.Append(std::move(*check_diags));
    if (diags.has_errors()) return false;
    if (!destroy) NoteUnexportedMetrics(config, r.notes);
    r.config_digest = Digest(sources, first_file, o.variable_sources, o.display_root);
    r.outputs = config.outputs;
    if (!hook->imported.empty()) TakeImports(r, config, *hook, prior);
    // A destroy plan deletes everything; the configuration still says what
    // is protected (prevent_destroy).
    r.plan = ComputePlan(std::move(config.resources), std::move(prior), hook->replace_because, &Schemas(),
                         destroy, &hook->replace_requested);
    for (PlanProblem& p : hook->problems) r.plan.problems.push_back(std::move(p));
    std::sort(hook->notes.begin(), hook->notes.end());
    for (std::string& n : hook->notes) r.notes.push_back(std::move(n));
    MarkMoves(r.plan, moves);
    if (!hook->import_ids.empty()) MarkImports(r, *hook);
    for (PlanProblem& p : hook->import_problems) {
      if (p.range.valid()) p.message += " (import block at " + Where(p.range) + ")";
      r.plan.problems.push_back(std::move(p));
    }
    timer.Mark("diff");
    if (!o.targeting.empty()) {
      std::vector<std::string> errors = RestrictToTargets(r.plan, o.targeting, destroy);
      if (!errors.empty()) {
        r.errors.insert(r.errors.end(), errors.begin(), errors.end());
        return false;
      }
      timer.Mark("targeting");
    }
    CheckConflicts(r, hook->ranges);
    timer.Mark("plan conflicts");
    if (!PreviewDeletes(r)) return false;
    timer.Mark("delete previews");
    if (!config.policies.empty()) {
      PolicyReport report = EvaluatePolicies(config.policies, r.plan, diags);
      r.plan.policy_findings = std::move(report.findings);
      r.plan.policies = report.policies;
      r.plan.policy_checks = report.checks;
      timer.Mark("policies");
      if (diags.has_errors()) return false;
    }
    return true;
  }

  StepOutcome Run(const GraphNode& node, const PlannedResource& r, int64_t serial,
                  std::unordered_set<std::string>& deferred, std::mutex& deferred_mu) {
    auto now = [] { return std::chrono::steady_clock::now(); };
    auto start = now();
    auto ms = [&] {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now() - start).count()) +
             " ms";
    };
    if (node.step == GraphNode::Step::Destroy) {
      const std::string id =
          r.prior && r.prior->count("id") && r.prior->at("id").kind() == Value::Kind::String
              ? r.prior->at("id").as_string()
              : "";
      state::ResourceRecord before =
          Record(r.address, r.type, id, r.prior ? *r.prior : ValueMap{}, r.depends_on);
      // Delete exactly what the plan showed: data added since refuses it.
      if (r.deletes) {
        if (auto grown = GrownSincePlan(r, id, before.attributes)) {
          Progress(ProgressEvent::Kind::Failed, r.address,
                   r.address + ": failed to destroy (" + ms() + "): " + *grown);
          return {false, false, *grown};
        }
      }
      auto rec = store->RecordIntent(serial, r.address, state::Action::kDelete, before);
      if (!rec.ok()) return {false, false, "cannot record the intent: " + rec.error().message};
      int64_t intent = rec.value();
      Progress(ProgressEvent::Kind::Started, r.address, r.address + ": destroying...");
      auto res = provider->Delete(r.type, id, before.attributes);
      state::IntentOutcome outcome;
      outcome.success = res.ok();
      if (!res.ok()) {
        outcome.error = res.error().message;
        outcome.resource = before;
      }
      // A call whose outcome is unknown leaves its intent open: the next
      // plan settles it by reading the resource, as after a killed apply.
      if (res.ok() || !res.error().outcome_unknown) {
        auto done = store->CompleteIntent(intent, outcome);
        if (!done.ok()) return {false, false, "cannot record the result: " + done.error().message};
      }
      if (!res.ok()) {
        Progress(ProgressEvent::Kind::Failed, r.address,
                 r.address + ": failed to destroy (" + ms() + "): " + res.error().message);
        return {false, res.error().retryable, res.error().message};
      }
      Progress(ProgressEvent::Kind::Finished, r.address, r.address + ": destroyed (" + ms() + ")");
      return {};
    }
    if (!r.import_id.empty()) {
      // The imported object enters the state first, in one intent: a kill
      // before its completion leaves a create intent that the next plan
      // settles by reading the object (it exists: adopted).
      const std::string id =
          r.prior && r.prior->count("id") && r.prior->at("id").kind() == Value::Kind::String
              ? r.prior->at("id").as_string()
              : r.import_id;
      state::ResourceRecord record =
          Record(r.address, r.type, id, r.prior ? *r.prior : ValueMap{}, r.depends_on);
      auto rec = store->RecordIntent(serial, r.address, state::Action::kCreate, record);
      if (!rec.ok()) return {false, false, "cannot record the intent: " + rec.error().message};
      Progress(ProgressEvent::Kind::Started, r.address, r.address + ": importing...");
      state::IntentOutcome outcome;
      outcome.success = true;
      outcome.resource = record;
      auto done = store->CompleteIntent(rec.value(), outcome);
      if (!done.ok()) return {false, false, "cannot record the import: " + done.error().message};
      if (r.action == Action::NoOp) {
        Progress(ProgressEvent::Kind::Finished, r.address, r.address + ": imported (" + ms() + ")");
        return {};
      }
    }
    bool create = r.action == Action::Create || r.action == Action::Replace;
    if (create && WaitsForDependencies(Schemas(), r)) {
      std::lock_guard<std::mutex> lock(deferred_mu);
      deferred.insert(r.address);
      return {false, false, "deferred"};
    }
    std::string id;
    if (auto it = r.planned.find("id"); it != r.planned.end() && it->second.kind() == Value::Kind::String) {
      id = it->second.as_string();
    }
    state::ResourceRecord planned =
        Record(r.address, r.type, id, provider->StateValues(r.type, r.planned), r.depends_on);
    auto rec = store->RecordIntent(serial, r.address,
                                   create ? state::Action::kCreate : state::Action::kUpdate, planned);
    if (!rec.ok()) return {false, false, "cannot record the intent: " + rec.error().message};
    int64_t intent = rec.value();
    Progress(ProgressEvent::Kind::Started, r.address,
             r.address + (create ? ": creating..." : ": updating..."));
    Result<ResourceObject> res =
        create ? provider->Create(r.type, r.planned)
               : provider->Update(
                     r.type,
                     r.prior && r.prior->count("id") && r.prior->at("id").kind() == Value::Kind::String
                         ? r.prior->at("id").as_string()
                         : id,
                     r.prior ? *r.prior : ValueMap{}, r.planned);
    state::IntentOutcome outcome;
    outcome.success = res.ok();
    if (res.ok()) {
      ValueMap attrs = res.value().attributes;
      KeepIdentity(r.planned, attrs);
      outcome.resource =
          Record(r.address, r.type, res.value().id, provider->StateValues(r.type, attrs), r.depends_on);
    } else {
      outcome.error = res.error().message;
    }
    if (!res.ok() && !res.error().import_id.empty()) {
      // The object exists: say how to take it under management instead.
      const std::string id = QuoteString(res.error().import_id);
      res.error().message += "; to manage it, import it: plinth import " + r.address + " " + id +
                             ", or add an import block: import { to = " + r.address + ", id = " + id + " }";
    }
    if (res.ok() || !res.error().outcome_unknown) {  // else the next plan settles it (see Destroy above)
      auto done = store->CompleteIntent(intent, outcome);
      if (!done.ok()) return {false, false, "cannot record the result: " + done.error().message};
    }
    if (!res.ok()) {
      Progress(ProgressEvent::Kind::Failed, r.address,
               r.address + (create ? ": failed to create (" : ": failed to update (") + ms() +
                   "): " + res.error().message);
      return {false, res.error().retryable, res.error().message};
    }
    Progress(ProgressEvent::Kind::Finished, r.address,
             r.address + (create ? ": created (" : ": updated (") + ms() + ")");
    return {};
  }
};

Engine::Engine(EngineOptions options, SourceManager& sources, Diagnostics& diags)
    : impl_(std::make_unique<Impl>(std::move(options), sources, diags)) {}

Engine::~Engine() = default;

EngineResult Engine::Plan(bool destroy) {
  EngineResult r;
  Impl& m = *impl_;
  if (!m.o.lock) {
    r.ok = m.MakePlan(r, destroy, /*locked=*/false) && r.errors.empty();
    return r;
  }
  if (!m.Open(r)) return r;
  auto lock = m.Lock(destroy ? "plan --destroy" : "plan");
  if (!lock.ok()) {
    r.lock_held = lock.error().code == state::ErrorCode::kLockHeld;
    r.errors.push_back(state::WorkspaceLock::Describe(lock.error()) +
                       "; plinth plan --lock=false plans without the lock");
    return r;
  }
  if (lock.value().taken_over) {
    r.notes.push_back("took over a stale lock left by pid " +
                      std::to_string(lock.value().taken_over->holder.pid));
  }
  r.ok = m.MakePlan(r, destroy, /*locked=*/true) && r.errors.empty();
  (void)state::WorkspaceLock::Release(*m.store, lock.value().id);
  return r;
}

EngineResult Engine::Apply(bool destroy) {
  return ApplySaved(SavedPlan{}, destroy);
}

EngineResult Engine::ApplySaved(const SavedPlan& saved, bool destroy) {
  const bool check_saved = !saved.config_digest.empty();
  EngineResult r;
  Impl& m = *impl_;
  m.applying = true;
  // A destroy with no state has nothing to delete: it creates nothing.
  if (!m.Open(r, /*create=*/!destroy)) return r;
  auto lock = m.Lock(destroy ? "destroy" : "apply");
  if (!lock.ok()) {
    r.lock_held = lock.error().code == state::ErrorCode::kLockHeld;
    r.errors.push_back(state::WorkspaceLock::Describe(lock.error()));
    return r;
  }
  std::string lock_id = lock.value().id;
  if (lock.value().taken_over)
    r.notes.push_back("took over a stale lock left by pid " +
                      std::to_string(lock.value().taken_over->holder.pid));
  int64_t serial = 0;
  bool failed = false;
  for (int wave = 0; wave < 64 && !failed; ++wave) {
    EngineResult planned;
    if (!m.MakePlan(planned, destroy)) {
      r.errors.insert(r.errors.end(), planned.errors.begin(), planned.errors.end());
      failed = true;
      break;
    }
    r.notes.insert(r.notes.end(), planned.notes.begin(), planned.notes.end());
    if (wave == 0) r.drift = planned.drift;
    r.outputs = planned.outputs;
    if (wave == 0) r.config_digest = planned.config_digest;
    // The first wave's plan is what the caller reports; it moves there
    // once its graph has run (a copy would double apply's memory).
    auto keep_plan = [&] {
      if (wave == 0) r.plan = std::move(planned.plan);
    };
    if (wave == 0 && check_saved) {
      std::string why;
      if (planned.serial != saved.serial) {
        why = "the state changed since the plan was made (serial " + std::to_string(saved.serial) + ", now " +
              std::to_string(planned.serial) + ")";
      } else if (planned.config_digest != saved.config_digest) {
        auto files = [](const std::string& digest) { return digest.substr(0, digest.find("+d")); };
        why = files(planned.config_digest) != files(saved.config_digest)
                  ? "the configuration files or --var values differ from the ones the plan was made from"
                  : "the data its deletes remove changed since the plan was made (objects, versions or "
                    "backups were "
                    "added or removed)";
      } else {
        std::map<std::string, std::string> now;
        for (const PlannedResource& pr : planned.plan.resources) {
          if (pr.action != Action::NoOp || !pr.moved_from.empty() || !pr.import_id.empty())
            now[pr.address] = SavedAction(pr);
        }
        std::map<std::string, std::string> then;
        for (const auto& [a, act] : saved.actions) {
          if (act != "no-op") then[a] = act;
        }
        if (now != then)
          why = "the world changed since the plan was made (a refresh now plans different changes)";
      }
      if (!why.empty()) {
        r.errors.push_back("refusing the " + saved.what + ": " + why + "; run plinth plan again");
        failed = true;
        break;
      }
    }
    if (!planned.plan.problems.empty()) {
      for (const PlanProblem& p : planned.plan.problems) r.errors.push_back(p.message);
      failed = true;
      break;
    }
    if (wave == 0 && m.o.review) {
      // The reviewer shows the plan's notes with it; they are not repeated.
      r.notes.resize(r.notes.size() - planned.notes.size());
      if (!m.o.review(planned)) {
        r.cancelled = true;
        keep_plan();
        break;
      }
    }
    // Policies are evaluated on every wave's plan (values become known as
    // resources are created); a violated deny stops before any change.
    for (const PolicyFinding& f : planned.plan.policy_findings) {
      if (f.outcome != PolicyFinding::Outcome::Violated) continue;
      if (f.deny) {
        r.errors.push_back(f.policy + " denies " + f.address + ": " + f.message);
      } else if (wave == 0) {
        r.notes.push_back("policy warning: " + f.policy + " on " + f.address + ": " + f.message);
      }
    }
    if (planned.plan.Denied()) {
      failed = true;
      break;
    }
    if (!planned.plan.HasChanges()) {
      keep_plan();
      break;
    }
    // Moves and forgets are written first, in one transaction: a kill
    // before it leaves the old addresses (the next plan moves them again),
    // after it the new ones; never an object lost or recorded twice.
    std::vector<std::pair<std::string, std::string>> renames;
    std::vector<std::string> forgets;
    std::map<std::string, ValueMap> identity;  // what follows the new address
    for (const PlannedResource& pr : planned.plan.resources) {
      if (pr.moved_from.empty()) continue;
      renames.emplace_back(pr.moved_from, pr.address);
      KeepIdentity(pr.planned, identity[pr.address]);
    }
    for (const PlannedResource& pr : planned.plan.resources) {
      if (pr.action != Action::Forget) continue;
      // A moved object that is also forgotten is forgotten where it was.
      forgets.push_back(pr.moved_from.empty() ? pr.address : pr.moved_from);
      std::erase_if(renames, [&](const auto& mv) { return mv.second == pr.address; });
    }
    Graph graph = BuildGraph(planned.plan);
    if (!graph.cycle.empty()) {
      std::string path;
      for (const auto& c : graph.cycle) path += (path.empty() ? "" : " -> ") + c;
      r.errors.push_back("the changes form a cycle: " + path);
      failed = true;
      break;
    }
    if (serial == 0) {
      if (m.o.on_begin) {
        std::string why;
        if (!m.o.on_begin(&why)) {
          r.errors.push_back("cannot start the apply: " + why);
          failed = true;
          break;
        }
      }
      auto begun = m.store->BeginApply(destroy ? "destroy" : "apply", r.config_digest, m.o.source);
      if (!begun.ok()) {
        r.errors.push_back("cannot start the apply: " + begun.error().message);
        failed = true;
        break;
      }
      serial = begun.value();
      r.serial = serial;
    }
    if (!renames.empty() || !forgets.empty()) {
      if (auto done = m.store->RewriteAddresses(serial, renames, forgets, identity); !done.ok()) {
        r.errors.push_back("cannot record the moved and removed resources: " + done.error().message);
        failed = true;
        break;
      }
      r.applied += renames.size() + forgets.size();
      for (const auto& [from, to] : renames)
        m.Progress(ProgressEvent::Kind::Finished, to, to + ": moved from " + from);
      for (const std::string& a : forgets) {
        m.Progress(ProgressEvent::Kind::Finished, a,
                   a + ": removed from the state (the object is left in place)");
      }
    }
    std::unordered_map<std::string, const PlannedResource*> by_address;
    for (const PlannedResource& pr : planned.plan.resources) by_address[pr.address] = &pr;
    std::unordered_set<std::string> deferred;
    std::mutex deferred_mu;
    ExecutorOptions eo;
    eo.parallelism = m.o.parallelism;
    eo.stop_flag = m.o.stop;
    m.total_changes = 0;
    for (const GraphNode& n : graph.nodes) m.total_changes += n.step != GraphNode::Step::Group;
    Executor ex(graph, eo);
    std::jthread heartbeat;
    if (m.o.progress && m.o.heartbeat.count() > 0)
      heartbeat = std::jthread([&m](std::stop_token t) { m.Heartbeat(t); });
    ExecutionReport rep = ex.Run([&](const GraphNode& node) {
      return m.Run(node, *by_address.at(node.address), serial, deferred, deferred_mu);
    });
    if (heartbeat.joinable()) {
      heartbeat.request_stop();
      heartbeat.join();
    }
    // --replace replaced them in this wave; later plans (the next waves,
    // the outputs) must not replace them again.
    m.o.targeting.replace.clear();
    size_t progressed = 0;
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      const GraphNode& n = graph.nodes[i];
      if (n.step == GraphNode::Step::Group) continue;
      if (rep.status[i] == NodeStatus::Succeeded) {
        ++r.applied;
        ++progressed;
      } else if (rep.status[i] == NodeStatus::Failed && !deferred.count(n.address)) {
        ++r.failed;
        r.errors.push_back(n.address + ": " + rep.errors[i]);
      } else if (rep.status[i] == NodeStatus::Skipped) {
        ++r.skipped;
      }
    }
    if (r.failed > 0) failed = true;
    const bool stopped = rep.stopped;
    const size_t not_started = rep.not_started + rep.skipped;
    graph = Graph{};
    by_address.clear();
    rep = ExecutionReport{};
    keep_plan();
    // A stop that came while the last changes ran left nothing undone: the
    // apply is complete. Otherwise it ends here, and says what is left.
    if (stopped && (not_started > 0 || !deferred.empty())) {
      r.errors.push_back("stopped on request: " + std::to_string(not_started + deferred.size()) +
                         " changes were not started; run apply again to finish");
      failed = true;
      break;
    }
    if (deferred.empty()) {
      // Outputs that read values only apply could know are evaluated once
      // more against the new state (no refresh: it was just written).
      bool unknown = std::any_of(r.outputs.begin(), r.outputs.end(),
                                 [](const OutputValue& out) { return out.value.ContainsUnknown(); });
      if (unknown) {
        EngineResult after;
        const bool refresh = m.o.refresh;
        m.o.refresh = false;
        if (m.MakePlan(after, destroy)) r.outputs = after.outputs;
        m.o.refresh = refresh;
      }
      break;
    }
    if (progressed == 0) {
      r.errors.push_back("no progress: " + std::to_string(deferred.size()) +
                         " resources wait for values no other change provides");
      failed = true;
    }
    r.skipped = 0;  // deferred work is retried by the next wave
  }
  if (serial != 0) {
    (void)m.store->FinishApply(serial, failed ? state::ApplyStatus::kFailed : state::ApplyStatus::kSucceeded);
  }
  (void)state::WorkspaceLock::Release(*m.store, lock_id);
  r.ok = !failed && r.errors.empty();
  return r;
}

EngineResult Engine::Refresh() {
  EngineResult r;
  Impl& m = *impl_;
  if (!m.Open(r)) return r;
  auto lock = m.Lock("refresh");
  if (!lock.ok()) {
    r.errors.push_back(state::WorkspaceLock::Describe(lock.error()));
    return r;
  }
  PhaseTimer timer;
  bool ok = m.Reconcile(r);
  auto before = ok ? m.store->Resources() : state::Result<std::vector<state::ResourceRecord>>(state::Error{});
  std::vector<PriorResource> refreshed;
  ok = ok && before.ok() && m.LoadPrior(r, refreshed, timer);
  if (ok) {
    std::unordered_map<std::string, const PriorResource*> now;
    for (const PriorResource& p : refreshed) now[p.address] = &p;
    int64_t serial = 0;
    for (const state::ResourceRecord& rec : before.value()) {
      auto it = now.find(rec.address);
      bool gone = it == now.end();
      if (!gone && it->second->id == rec.id) {
        bool same = it->second->attributes.size() == rec.attributes.size();
        for (const auto& [k, v] : rec.attributes) {
          auto a = it->second->attributes.find(k);
          same = same && a != it->second->attributes.end() && a->second.Equals(v);
        }
        if (same) continue;
      }
      if (serial == 0) {
        auto begun = m.store->BeginApply("refresh", "", m.o.source);
        if (!begun.ok()) {
          r.errors.push_back("cannot record the refresh: " + begun.error().message);
          ok = false;
          break;
        }
        serial = begun.value();
        r.serial = serial;
      }
      state::ResourceRecord after = rec;
      if (!gone) {
        after.id = it->second->id;
        after.attributes = it->second->attributes;
      }
      auto intent = m.store->RecordIntent(serial, rec.address,
                                          gone ? state::Action::kDelete : state::Action::kUpdate, after);
      state::IntentOutcome outcome;
      outcome.success = true;
      if (!gone) outcome.resource = after;
      if (!intent.ok() || !m.store->CompleteIntent(intent.value(), outcome).ok()) {
        r.errors.push_back("cannot record the refreshed " + rec.address);
        ok = false;
        break;
      }
      ++r.applied;
    }
    if (serial != 0) {
      (void)m.store->FinishApply(serial, ok ? state::ApplyStatus::kSucceeded : state::ApplyStatus::kFailed);
    }
  }
  (void)state::WorkspaceLock::Release(*m.store, lock.value().id);
  r.ok = ok && r.errors.empty();
  return r;
}

EngineResult Engine::ImportObject(const std::string& address, const std::string& type,
                                  const std::string& id) {
  EngineResult r;
  Impl& m = *impl_;
  if (!m.Open(r)) return r;
  // Providers other than local are configured from the configuration's provider blocks.
  m.ConfigureProvidersFor({type});
  if (!m.Schemas().Find(type)) {
    std::string near = ClosestName(type, m.Schemas().TypeNames());
    r.errors.push_back("no resource type '" + type + "' in " + address +
                       (near.empty() ? "" : "; did you mean '" + near + "'?"));
    return r;
  }
  Result<ResourceObject> res = m.provider->Import(type, id);
  if (!res.ok()) {
    r.errors.push_back("cannot import " + QuoteString(id) + " as " + type + ": " + res.error().message);
    return r;
  }
  r.generated.push_back({address, type, id, std::move(res.value().attributes), m.Schemas().Find(type)});
  r.ok = true;
  return r;
}

EngineResult Engine::Import(const std::string& address, const std::string& id) {
  EngineResult r;
  Impl& m = *impl_;
  if (!m.Open(r)) return r;
  CheckOptions co = m.BaseCheckOptions();
  CheckedConfig config = Check(m.o.config_dir, m.sources, m.diags, co);
  if (m.diags.has_errors()) return r;
  const ResourceInstance* target = nullptr;
  std::vector<std::string> addresses;
  for (const ResourceInstance& ri : config.resources) {
    if (ri.address == address) target = &ri;
    addresses.push_back(ri.address);
  }
  if (!target) {
    std::string near = ClosestName(address, addresses);
    r.errors.push_back(address + " is not in the configuration" +
                       (near.empty() ? "" : " (did you mean " + near + "?)") +
                       "; declare its resource block first (plinth import --print-config " + address + " " +
                       QuoteString(id) + " prints one to start from)");
    return r;
  }
  for (const auto& [name, values] : config.providers) m.router->Configure(name, values);
  auto managed = [&](EngineResult& out) {
    auto records = m.store->Resources();
    if (!records.ok()) {
      out.errors.push_back("cannot read the state: " + records.error().message);
      return true;
    }
    for (const state::ResourceRecord& rec : records.value()) {
      if (rec.address != address) continue;
      out.errors.push_back(address + " is already managed (id " + QuoteString(rec.id) +
                           "); to import another object to it, run plinth state rm " + address +
                           " first (that forgets it without deleting it)");
      return true;
    }
    return false;
  };
  if (managed(r)) return r;
  // Read the object before anything is written: a wrong id leaves no trace.
  Result<ResourceObject> res = m.provider->Import(target->type, id);
  if (!res.ok()) {
    r.errors.push_back("cannot import " + QuoteString(id) + " to " + address + ": " + res.error().message);
    return r;
  }
  // Import records state: the one command besides apply that creates it.
  if (m.in_memory) {
    state::StoreOptions so;
    so.encryption_key = m.o.state_key;
    so.mode = state::OpenMode::kCreate;
    auto opened = state::StateStore::OpenWorkspace(HomeDir(m.o), m.o.workspace, so);
    if (!opened.ok()) {
      r.errors.push_back("cannot create the state: " + opened.error().message);
      return r;
    }
    m.store = std::move(opened.value());
    m.in_memory = false;
  }
  auto lock = m.Lock("import");
  if (!lock.ok()) {
    r.errors.push_back(state::WorkspaceLock::Describe(lock.error()));
    return r;
  }
  auto release = [&] { (void)state::WorkspaceLock::Release(*m.store, lock.value().id); };
  // Under the lock: interrupted changes settled, and nobody took the address since.
  if (!m.Reconcile(r) || managed(r)) return release(), r;
  ValueMap attrs = std::move(res.value().attributes);
  KeepIdentity(target->attributes, attrs);
  state::ResourceRecord record = m.Record(address, target->type, res.value().id, attrs, target->depends_on);
  auto begun = m.store->BeginApply("import", "", m.o.source);
  if (!begun.ok()) {
    r.errors.push_back("cannot record the import: " + begun.error().message);
    return release(), r;
  }
  r.serial = begun.value();
  auto intent = m.store->RecordIntent(r.serial, address, state::Action::kCreate, record);
  state::IntentOutcome outcome;
  outcome.success = true;
  outcome.resource = record;
  bool recorded = intent.ok() && m.store->CompleteIntent(intent.value(), outcome).ok();
  (void)m.store->FinishApply(r.serial,
                             recorded ? state::ApplyStatus::kSucceeded : state::ApplyStatus::kFailed);
  release();
  if (!recorded) {
    r.errors.push_back("cannot record the import of " + address + " in the state");
    return r;
  }
  r.generated.push_back({address, target->type, id, std::move(attrs), m.Schemas().Find(target->type)});
  r.applied = 1;
  r.ok = true;
  return r;
}

}  // namespace plinth::runtime
