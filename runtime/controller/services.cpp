#include "runtime/controller/services.h"
#include "runtime/io/durable.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <set>
#include <tuple>

#include "runtime/crypto/aead.h"
#include "runtime/process/process.h"
#include "runtime/storage/keys.h"

namespace plinth::controller {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string SecretsAad(const std::string& id) {
  return std::string("plinth-service-secrets-v1") + '\0' + id;
}

json ProbeJson(const std::optional<ProbeSpec>& p) {
  if (!p) return nullptr;
  const char* kind = p->kind == ProbeKind::kHttp ? "http" : p->kind == ProbeKind::kTcp ? "tcp" : "exec";
  return {{"kind", kind},
          {"path", p->path},
          {"port", p->port},
          {"argv", p->argv},
          {"period_s", p->period_s},
          {"timeout_s", p->timeout_s},
          {"success_threshold", p->success_threshold},
          {"failure_threshold", p->failure_threshold},
          {"initial_delay_s", p->initial_delay_s}};
}

std::optional<ProbeSpec> ProbeFromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  ProbeSpec p;
  std::string kind = j.value("kind", "http");
  p.kind = kind == "tcp" ? ProbeKind::kTcp : kind == "exec" ? ProbeKind::kExec : ProbeKind::kHttp;
  p.path = j.value("path", "/");
  p.port = j.value("port", 0);
  p.argv = j.value("argv", std::vector<std::string>{});
  p.period_s = j.value("period_s", 10);
  p.timeout_s = j.value("timeout_s", 1);
  p.success_threshold = j.value("success_threshold", 1);
  p.failure_threshold = j.value("failure_threshold", 3);
  p.initial_delay_s = j.value("initial_delay_s", 0);
  return p;
}

std::string BucketEnvName(const std::string& name) {
  std::string out = "PLINTH_BUCKET_";
  for (char ch : name)
    out += ch == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return out;
}

std::optional<ProbeSpec> ForReplica(const std::optional<ProbeSpec>& p, int port) {
  if (!p) return std::nullopt;
  ProbeSpec out = *p;
  if (out.port == 0) out.port = port;
  return out;
}

bool Exec(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

}  // namespace

json ServiceJson(const ServiceSpec& s) {
  json regions = json::array();
  for (const auto& r : s.regions) {
    json region = {{"name", r.name}, {"host", r.host}, {"down", r.down}};
    if (!r.netns.empty()) region["netns"] = r.netns;
    regions.push_back(std::move(region));
  }
  json buckets = json::array();
  for (const auto& b : s.buckets) buckets.push_back({{"name", b.name}, {"path", b.path}, {"write", b.write}});
  json out = {{"id", s.id},
              {"address", s.address},
              {"regions", regions},
              {"replicas", s.replicas},
              {"max_unavailable", s.max_unavailable},
              {"max_surge", s.max_surge},
              {"ready_timeout_s", s.ready_timeout_s},
              {"user", s.user},
              {"port", s.port},
              {"argv", s.argv},
              {"env", s.env},
              {"secret_names", s.secret_names},
              {"cwd", s.cwd.string()},
              {"buckets", buckets},
              {"liveness", ProbeJson(s.liveness)},
              {"readiness", ProbeJson(s.readiness)},
              {"startup", ProbeJson(s.startup)},
              {"version", s.version}};
  // Only when set: specs recorded before it existed stay byte-identical.
  if (s.relocate) out["relocate"] = true;
  if (s.flapping)
    out["flapping"] = {{"restarts", s.flapping->restarts},
                       {"within_s", s.flapping->within_s},
                       {"move", s.flapping->move},
                       {"hold_s", s.flapping->hold_s}};
  if (s.autoscale) {
    const AutoscaleSpec& a = s.autoscale->spec;
    auto rules = [](const ScalingRules& r) {
      json policies = json::array();
      for (const ScalingPolicy& p : r.policies)
        policies.push_back({{"kind", p.kind == ScalingPolicy::Kind::kPods ? "pods" : "percent"},
                            {"value", p.value},
                            {"period_ms", p.period_ms}});
      return json{{"stabilization_ms", r.stabilization_ms},
                  {"select", r.select == ScalingRules::Select::kMax   ? "max"
                             : r.select == ScalingRules::Select::kMin ? "min"
                                                                      : "disabled"},
                  {"policies", policies}};
    };
    json targets = json::array();
    for (const auto& t : s.autoscale->targets)
      targets.push_back({{"signal", t.signal}, {"average", t.average}});
    out["autoscale"] = {{"min", a.min},      {"max", a.max},          {"tolerance", a.tolerance},
                        {"up", rules(a.up)}, {"down", rules(a.down)}, {"targets", targets}};
  }
  if (s.window) out["window"] = NamedWindowJson(*s.window);
  return out;
}

ServiceSpec ServiceFromJson(const json& j) {
  ServiceSpec s;
  if (!j.is_object()) return s;
  s.id = j.value("id", "");
  s.address = j.value("address", "");
  if (j.contains("regions") && j["regions"].is_array()) {
    for (const auto& r : j["regions"]) {
      if (!r.is_object()) continue;
      s.regions.push_back(
          {r.value("name", ""), r.value("host", "127.0.0.1"), r.value("down", false), r.value("netns", "")});
    }
  }
  s.replicas = j.value("replicas", 1);
  s.max_unavailable = j.value("max_unavailable", 1);
  s.max_surge = j.value("max_surge", 0);
  s.ready_timeout_s = j.value("ready_timeout_s", 60);
  s.user = j.value("user", "");
  s.port = j.value("port", 0);
  s.argv = j.value("argv", std::vector<std::string>{});
  s.env = j.value("env", std::map<std::string, std::string>{});
  s.secret_names = j.value("secret_names", std::vector<std::string>{});
  s.cwd = j.value("cwd", "");
  if (j.contains("buckets") && j["buckets"].is_array()) {
    for (const auto& b : j["buckets"]) {
      if (!b.is_object()) continue;
      s.buckets.push_back({b.value("name", ""), b.value("path", ""), b.value("write", false)});
    }
  }
  s.liveness = ProbeFromJson(j.value("liveness", json()));
  s.readiness = ProbeFromJson(j.value("readiness", json()));
  s.startup = ProbeFromJson(j.value("startup", json()));
  s.version = j.value("version", "");
  s.relocate = j.value("relocate", false);
  if (auto f = j.find("flapping"); f != j.end() && f->is_object())
    s.flapping = FlappingSpec{f->value("restarts", 3), f->value("within_s", 600), f->value("move", false),
                              f->value("hold_s", 1800)};
  if (auto a = j.find("autoscale"); a != j.end() && a->is_object()) {
    ServiceAutoscale as;
    as.spec.min = a->value("min", 1);
    as.spec.max = a->value("max", 1);
    as.spec.tolerance = a->value("tolerance", 0.1);
    auto rules = [](const json& r, ScalingRules* out) {
      if (!r.is_object()) return;
      out->stabilization_ms = r.value("stabilization_ms", out->stabilization_ms);
      const std::string select = r.value("select", "max");
      out->select = select == "min"        ? ScalingRules::Select::kMin
                    : select == "disabled" ? ScalingRules::Select::kDisabled
                                           : ScalingRules::Select::kMax;
      if (auto p = r.find("policies"); p != r.end() && p->is_array()) {
        out->policies.clear();
        for (const json& x : *p)
          if (x.is_object())
            out->policies.push_back({x.value("kind", "pods") == "pods" ? ScalingPolicy::Kind::kPods
                                                                       : ScalingPolicy::Kind::kPercent,
                                     x.value("value", 1), x.value("period_ms", int64_t{15000})});
      }
    };
    rules(a->value("up", json()), &as.spec.up);
    rules(a->value("down", json()), &as.spec.down);
    if (auto t = a->find("targets"); t != a->end() && t->is_array())
      for (const json& x : *t)
        if (x.is_object()) as.targets.push_back({x.value("signal", ""), x.value("average", 0.0)});
    s.autoscale = std::move(as);
  }
  if (auto w = j.find("window"); w != j.end() && w->is_object()) s.window = NamedWindowFromJson(*w);
  return s;
}

bool ReplacesReplicas(const ServiceSpec& a, const ServiceSpec& b) {
  auto buckets = [](const ServiceSpec& s) {
    std::vector<std::tuple<std::string, std::string, bool>> out;
    for (const auto& x : s.buckets) out.emplace_back(x.name, x.path, x.write);
    return out;
  };
  return a.argv != b.argv || a.env != b.env || a.secret_names != b.secret_names || a.version != b.version ||
         a.port != b.port || a.user != b.user || a.cwd != b.cwd || buckets(a) != buckets(b);
}

std::string ReplicaPrefix(const std::string& service_id) {
  return service_id + ".";
}

ServiceSpec WithoutFailedRegions(ServiceSpec spec, const std::set<std::string>& failed) {
  for (ServiceRegion& r : spec.regions)
    if (failed.count(r.name)) r.down = true;
  return spec;
}

bool HasRelocationBlocks(const ServiceSpec& spec) {
  return spec.relocate || (spec.flapping && spec.flapping->move);
}

std::string MoveTarget(const ServiceSpec& spec, const std::string& from) {
  for (const ServiceRegion& r : spec.regions)
    if (!r.down && r.name != from) return r.name;
  return "";
}

ServiceSpec WithMoved(ServiceSpec spec, const std::vector<MovedReplica>& moved, int64_t now_ms) {
  if (!spec.flapping || !spec.flapping->move) return spec;
  for (const MovedReplica& m : moved) {
    if (m.until_ms <= now_ms) continue;
    for (ServiceRegion& r : spec.regions)
      if (r.name == m.region && !r.down && m.index >= 0 && m.index < Slots(spec)) r.moved.insert(m.index);
  }
  return spec;
}

int Slots(const ServiceSpec& spec) {
  return spec.autoscale ? std::max(spec.replicas, spec.autoscale->spec.max) : spec.replicas;
}

int CountIn(const ServiceSpec& spec, const ServiceRegion& region) {
  return region.replicas >= 0 ? std::min(region.replicas, Slots(spec)) : spec.replicas;
}

ServiceSpec WithScale(ServiceSpec spec, const std::map<std::string, int>& counts) {
  if (!spec.autoscale) return spec;
  for (ServiceRegion& r : spec.regions) {
    auto it = counts.find(r.name);
    if (it != counts.end())
      r.replicas =
          std::clamp(it->second, spec.autoscale->spec.min, std::max(spec.autoscale->spec.min, Slots(spec)));
  }
  return spec;
}

std::string ReplicaId(const std::string& service_id, const std::string& region, int index) {
  return ReplicaPrefix(service_id) + region + "." + std::to_string(index);
}

namespace {

// Replica `i` of `region` (any index: the surge ones come after `replicas`,
// then the relocated ones).
ReplicaSpec ReplicaOf(const ServiceSpec& spec, const ServiceRegion& region, int i,
                      const std::map<std::string, std::string>& secrets, const fs::path& logs_dir) {
  ReplicaSpec r;
  r.id = ReplicaId(spec.id, region.name, i);
  r.argv = spec.argv;
  // A relative program path is the configuration's, not the controller's.
  if (!r.argv.empty() && r.argv[0].find('/') != std::string::npos && r.argv[0][0] != '/' && !spec.cwd.empty())
    r.argv[0] = (spec.cwd / r.argv[0]).lexically_normal().string();
  r.port = spec.port + i;
  r.host = region.host;
  r.netns = region.netns;
  r.user = spec.user;
  r.cwd = spec.cwd;
  r.log_file = logs_dir / (r.id + ".log");
  std::map<std::string, std::string> env;
  env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  if (const char* home = std::getenv("HOME")) env["HOME"] = home;
  env["PORT"] = std::to_string(r.port);
  env["PLINTH_HOST"] = region.host;
  env["PLINTH_REGION"] = region.name;
  env["PLINTH_REPLICA"] = std::to_string(i);
  env["PLINTH_SERVICE"] = spec.id;
  for (const auto& b : spec.buckets) env[BucketEnvName(b.name)] = b.path;
  // The version is part of the environment, so a new version is a new process.
  if (!spec.version.empty()) env["PLINTH_SERVICE_VERSION"] = spec.version;
  for (const auto& [k, v] : spec.env) env[k] = v;
  for (const auto& [k, v] : secrets) env[k] = v;
  r.env = std::move(env);
  r.liveness = ForReplica(spec.liveness, r.port);
  r.readiness = ForReplica(spec.readiness, r.port);
  r.startup = ForReplica(spec.startup, r.port);
  return r;
}

}  // namespace

std::vector<ReplicaSpec> ReplicaSpecsFor(const ServiceSpec& spec,
                                         const std::map<std::string, std::string>& secrets,
                                         const fs::path& logs_dir) {
  std::vector<ReplicaSpec> out;
  for (const ServiceRegion& region : spec.regions) {
    if (region.down) continue;
    for (int i = 0; i < CountIn(spec, region); ++i)
      if (!region.moved.count(i)) out.push_back(ReplicaOf(spec, region, i, secrets, logs_dir));
  }
  for (ReplicaSpec& r : RelocatedSpecsFor(spec, secrets, logs_dir)) out.push_back(std::move(r));
  return out;
}

std::vector<ReplicaSpec> RelocatedSpecsFor(const ServiceSpec& spec,
                                           const std::map<std::string, std::string>& secrets,
                                           const fs::path& logs_dir) {
  std::vector<ReplicaSpec> out;
  if (!HasRelocationBlocks(spec)) return out;
  for (const ServiceRegion& from : spec.regions) {
    // A down region's replicas all relocate (with on_region_failure =
    // "relocate"); an up region's moved ones (flapping) do.
    if (from.down ? !spec.relocate : from.moved.empty()) continue;
    const std::string to = MoveTarget(spec, from.name);
    auto host = std::find_if(spec.regions.begin(), spec.regions.end(),
                             [&](const ServiceRegion& r) { return r.name == to; });
    if (host == spec.regions.end()) continue;
    const int first = RelocationIndex(spec, host->name, from.name);
    if (first < 0) continue;
    for (int i = 0; i < CountIn(spec, from); ++i) {
      if (!from.down && !from.moved.count(i)) continue;
      ReplicaSpec r = ReplicaOf(spec, *host, first + i, secrets, logs_dir);
      r.env["PLINTH_RELOCATED_FROM"] = from.name;
      if (!from.down) r.env["PLINTH_MOVED"] = "flapping";
      out.push_back(std::move(r));
    }
  }
  return out;
}

int RelocationIndex(const ServiceSpec& spec, const std::string& host, const std::string& from) {
  if (host == from) return -1;
  int k = 0;
  bool host_known = false, from_known = false;
  for (const ServiceRegion& r : spec.regions) {
    if (r.name == host) {
      host_known = true;
      continue;
    }
    if (r.name == from) {
      from_known = true;
      break;
    }
    ++k;
  }
  if (!from_known) return -1;
  for (const ServiceRegion& r : spec.regions) host_known = host_known || r.name == host;
  if (!host_known) return -1;
  return Slots(spec) + spec.max_surge + k * Slots(spec);
}

std::string RelocatedFrom(const ServiceSpec& spec, const std::string& id) {
  const std::string prefix = ReplicaPrefix(spec.id);
  if (!HasRelocationBlocks(spec) || id.rfind(prefix, 0) != 0) return "";
  const std::string rest = id.substr(prefix.size());
  const size_t dot = rest.rfind('.');
  if (dot == std::string::npos) return "";
  const std::string host = rest.substr(0, dot);
  char* end = nullptr;
  const long index = std::strtol(rest.c_str() + dot + 1, &end, 10);
  if (end == rest.c_str() + dot + 1 || *end != '\0') return "";
  for (const ServiceRegion& from : spec.regions) {
    const int first = RelocationIndex(spec, host, from.name);
    if (first >= 0 && index >= first && index < first + Slots(spec)) return from.name;
  }
  return "";
}

int PortSlots(const ServiceSpec& spec) {
  const int others = HasRelocationBlocks(spec) ? static_cast<int>(spec.regions.size()) - 1 : 0;
  return Slots(spec) + spec.max_surge + std::max(0, others) * Slots(spec);
}

std::vector<ReplicaSpec> SurgeSpecsFor(const ServiceSpec& spec,
                                       const std::map<std::string, std::string>& secrets,
                                       const fs::path& logs_dir) {
  std::vector<ReplicaSpec> out;
  for (const ServiceRegion& region : spec.regions) {
    if (region.down) continue;
    for (int i = Slots(spec); i < Slots(spec) + spec.max_surge; ++i)
      out.push_back(ReplicaOf(spec, region, i, secrets, logs_dir));
  }
  return out;
}

// ------------------------------------------------------------------ store

std::unique_ptr<ServiceStore> ServiceStore::Open(const fs::path& dir, const fs::path& workspace_key,
                                                 bool create, std::string* error) {
  std::unique_ptr<ServiceStore> s(new ServiceStore());
  std::error_code ec;
  // One spelling of the directory whoever opens it (apply, the controller):
  // replica log paths enter the replicas' spec digests.
  s->dir_ = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  if (ec) s->dir_ = fs::absolute(dir).lexically_normal();
  s->key_path_ = workspace_key;
  const fs::path db = s->dir_ / "services.db";
  if (!create && !fs::exists(db)) return *error = "no services recorded in " + s->dir_.string(), nullptr;
  fs::create_directories(s->dir_ / "logs", ec);
  if (ec) return *error = "cannot create " + (s->dir_ / "logs").string() + ": " + ec.message(), nullptr;
  ::chmod(s->dir_.c_str(), 0700);
  ::chmod((s->dir_ / "logs").c_str(), 0700);
  if (int e = io::CreateFileIfMissing(db, 0600); e < 0)
    return *error = "cannot open " + db.string() + ": " + std::strerror(-e), nullptr;
  if (sqlite3_open_v2(db.c_str(), &s->db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    *error = "cannot open " + db.string() + ": " + (s->db_ ? sqlite3_errmsg(s->db_) : "out of memory");
    return nullptr;
  }
  sqlite3_busy_timeout(s->db_, 5000);
  if (!Exec(s->db_,
            "PRAGMA journal_mode=WAL;"
            "PRAGMA synchronous=NORMAL;"
            "CREATE TABLE IF NOT EXISTS services(id TEXT PRIMARY KEY, spec TEXT NOT NULL, secrets BLOB,"
            " generation INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);"
            "INSERT OR IGNORE INTO meta(k, v) VALUES('version', 0);")) {
    *error = "cannot set up " + db.string() + ": " + sqlite3_errmsg(s->db_);
    return nullptr;
  }
  // The spec (and secrets) a Put replaced: what older replicas run. Added to
  // stores made before it existed; an existing column is not an error.
  for (const char* column : {"prev_spec TEXT", "prev_secrets BLOB", "stable_spec TEXT", "stable_secrets BLOB",
                             "stable_generation INTEGER", "rollback TEXT", "scale TEXT",
                             "staged_spec TEXT", "staged_secrets BLOB", "staged_at INTEGER", "moved TEXT"})
    Exec(s->db_, (std::string("ALTER TABLE services ADD COLUMN ") + column).c_str());
  for (const char* suffix : {"-wal", "-shm"}) ::chmod((db.string() + suffix).c_str(), 0600);
  return s;
}

ServiceStore::~ServiceStore() {
  if (db_) sqlite3_close(db_);
}

// Seals `secrets` with the workspace key for service `id` (nullopt in
// *sealed when there are none) and fills stored->secret_names; the values
// are wiped either way.
bool ServiceStore::SealSecrets(ServiceSpec* stored, std::map<std::string, std::string>* secrets,
                               std::optional<std::string>* sealed, std::string* error) {
  auto wipe = [&] {
    for (auto& [k, v] : *secrets) explicit_bzero(v.data(), v.size());
  };
  if (!secrets->empty()) {
    auto key = storage::LoadWorkspaceKey(key_path_, true);
    if (!key.ok()) {
      wipe();
      return *error = "cannot seal the service's secrets: " + key.error().message, false;
    }
    std::string plain = json(*secrets).dump(), blob, why;
    bool ok = crypto::SealBlob(key.value().key, 1, SecretsAad(stored->id), plain, &blob, &why);
    explicit_bzero(plain.data(), plain.size());
    if (!ok) {
      wipe();
      return *error = "cannot seal the service's secrets: " + why, false;
    }
    *sealed = std::move(blob);
  }
  stored->secret_names.clear();
  for (const auto& [k, v] : *secrets) stored->secret_names.push_back(k);
  wipe();
  return true;
}

bool ServiceStore::Put(const ServiceSpec& spec, std::map<std::string, std::string> secrets,
                       std::string* error) {
  std::optional<std::string> sealed;
  ServiceSpec stored = spec;
  if (!SealSecrets(&stored, &secrets, &sealed, error)) return false;
  std::lock_guard lock(mu_);
  if (!Exec(db_, "BEGIN IMMEDIATE"))
    return *error = std::string("cannot record service: ") + sqlite3_errmsg(db_), false;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "INSERT INTO services(id, spec, secrets, generation) VALUES(?1, ?2, ?3,"
                     " (SELECT v + 1 FROM meta WHERE k = 'version')) ON CONFLICT(id) DO UPDATE SET"
                     " prev_spec = CASE WHEN spec != excluded.spec THEN spec ELSE prev_spec END,"
                     " prev_secrets = CASE WHEN spec != excluded.spec THEN secrets ELSE prev_secrets END,"
                     " spec = excluded.spec, secrets = excluded.secrets, generation = excluded.generation,"
                     " staged_spec = NULL, staged_secrets = NULL, staged_at = NULL",
                     -1, &st, nullptr);
  const std::string text = ServiceJson(stored).dump();
  sqlite3_bind_text(st, 1, spec.id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, text.c_str(), -1, SQLITE_TRANSIENT);
  if (sealed)
    sqlite3_bind_blob(st, 3, sealed->data(), static_cast<int>(sealed->size()), SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, 3);
  bool ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  ok = ok && Exec(db_, "UPDATE meta SET v = v + 1 WHERE k = 'version'") && Exec(db_, "COMMIT");
  if (!ok) {
    *error = std::string("cannot record service ") + spec.id + ": " + sqlite3_errmsg(db_);
    Exec(db_, "ROLLBACK");
  }
  return ok;
}

bool ServiceStore::Stage(const ServiceSpec& spec, std::map<std::string, std::string> secrets, int64_t now_ms,
                         std::string* error) {
  std::optional<std::string> sealed;
  ServiceSpec stored = spec;
  if (!SealSecrets(&stored, &secrets, &sealed, error)) return false;
  const std::string text = ServiceJson(stored).dump();
  std::lock_guard lock(mu_);
  if (!Exec(db_, "BEGIN IMMEDIATE"))
    return *error = std::string("cannot stage the service's change: ") + sqlite3_errmsg(db_), false;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "UPDATE services SET staged_spec = ?2, staged_secrets = ?3, staged_at = ?4 WHERE id = ?1",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, spec.id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, text.c_str(), -1, SQLITE_TRANSIENT);
  if (sealed)
    sqlite3_bind_blob(st, 3, sealed->data(), static_cast<int>(sealed->size()), SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(st, 3);
  sqlite3_bind_int64(st, 4, now_ms);
  bool ok = sqlite3_step(st) == SQLITE_DONE;
  const bool found = sqlite3_changes(db_) > 0;
  sqlite3_finalize(st);
  // The version moves so that a polling controller looks again.
  ok = ok && found && Exec(db_, "UPDATE meta SET v = v + 1 WHERE k = 'version'") && Exec(db_, "COMMIT");
  if (!ok) {
    *error = found ? std::string("cannot stage the change of service ") + spec.id + ": " + sqlite3_errmsg(db_)
                   : "service " + spec.id + " is not recorded: a new service is never staged";
    Exec(db_, "ROLLBACK");
  }
  return ok;
}

std::optional<StagedSpec> ServiceStore::Staged(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT staged_spec, staged_at FROM services WHERE id = ?1 AND staged_spec IS NOT NULL",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<StagedSpec> out;
  if (sqlite3_step(st) == SQLITE_ROW)
    out = StagedSpec{
        ServiceFromJson(json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false)),
        sqlite3_column_int64(st, 1)};
  sqlite3_finalize(st);
  return out;
}

bool ServiceStore::Promote(const std::string& id, int64_t* generation, std::string* error) {
  std::lock_guard lock(mu_);
  if (!Exec(db_, "BEGIN IMMEDIATE"))
    return *error = std::string("cannot put the staged change in place: ") + sqlite3_errmsg(db_), false;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_,
                     "UPDATE services SET"
                     " prev_spec = CASE WHEN spec != staged_spec THEN spec ELSE prev_spec END,"
                     " prev_secrets = CASE WHEN spec != staged_spec THEN secrets ELSE prev_secrets END,"
                     " spec = staged_spec, secrets = staged_secrets,"
                     " generation = (SELECT v + 1 FROM meta WHERE k = 'version'),"
                     " staged_spec = NULL, staged_secrets = NULL, staged_at = NULL"
                     " WHERE id = ?1 AND staged_spec IS NOT NULL",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  bool ok = sqlite3_step(st) == SQLITE_DONE;
  const bool promoted = sqlite3_changes(db_) > 0;
  sqlite3_finalize(st);
  if (ok && !promoted) {
    Exec(db_, "ROLLBACK");
    return false;
  }
  ok = ok && Exec(db_, "UPDATE meta SET v = v + 1 WHERE k = 'version'") && Exec(db_, "COMMIT");
  if (!ok) {
    *error = std::string("cannot put the staged change of service ") + id + " in place: " + sqlite3_errmsg(db_);
    Exec(db_, "ROLLBACK");
    return false;
  }
  sqlite3_prepare_v2(db_, "SELECT generation FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  if (generation) *generation = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return true;
}

bool ServiceStore::Previous(const std::string& id, PreviousSpec* out, std::string* error) {
  std::string text, blob;
  {
    std::lock_guard lock(mu_);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "SELECT prev_spec, prev_secrets FROM services WHERE id = ?1", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
      text = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
      if (sqlite3_column_type(st, 1) != SQLITE_NULL)
        blob.assign(static_cast<const char*>(sqlite3_column_blob(st, 1)), sqlite3_column_bytes(st, 1));
    }
    sqlite3_finalize(st);
  }
  if (text.empty()) return false;
  out->spec = ServiceFromJson(json::parse(text, nullptr, false));
  out->secrets.clear();
  if (!blob.empty() && !UnsealSecrets(id, blob, &out->secrets, error)) return false;
  return true;
}

std::optional<ServiceSpec> ServiceStore::Get(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT spec FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<ServiceSpec> out;
  if (sqlite3_step(st) == SQLITE_ROW)
    out = ServiceFromJson(
        json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false));
  sqlite3_finalize(st);
  return out;
}

std::vector<ServiceSpec> ServiceStore::List() {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT spec FROM services ORDER BY id", -1, &st, nullptr);
  std::vector<ServiceSpec> out;
  while (sqlite3_step(st) == SQLITE_ROW)
    out.push_back(ServiceFromJson(
        json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false)));
  sqlite3_finalize(st);
  return out;
}

int64_t ServiceStore::Generation(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT generation FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  int64_t g = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return g;
}

int64_t ServiceStore::Version() {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT v FROM meta WHERE k = 'version'", -1, &st, nullptr);
  int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return v;
}

bool ServiceStore::Remove(const std::string& id, std::string* error) {
  std::lock_guard lock(mu_);
  if (!Exec(db_, "BEGIN IMMEDIATE"))
    return *error = std::string("cannot remove service: ") + sqlite3_errmsg(db_), false;
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "DELETE FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  bool ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  ok = ok && Exec(db_, "UPDATE meta SET v = v + 1 WHERE k = 'version'") && Exec(db_, "COMMIT");
  if (!ok) {
    *error = std::string("cannot remove service ") + id + ": " + sqlite3_errmsg(db_);
    Exec(db_, "ROLLBACK");
  }
  return ok;
}

bool ServiceStore::MarkStable(const std::string& id, int64_t generation) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  // A later generation that converged ends the story of an earlier rollback.
  sqlite3_prepare_v2(
      db_,
      "UPDATE services SET stable_spec = spec, stable_secrets = secrets, stable_generation = ?2,"
      " rollback = CASE WHEN rollback IS NOT NULL AND"
      " json_extract(rollback, '$.to_generation') < ?2 THEN NULL ELSE rollback END"
      " WHERE id = ?1 AND generation = ?2 AND (stable_generation IS NULL OR stable_generation != ?2)",
      -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(st, 2, generation);
  bool ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_) > 0;
  sqlite3_finalize(st);
  return ok;
}

bool ServiceStore::RollBack(const std::string& id, int64_t from_generation, const std::string& reason,
                            int64_t now_ms, Rollback* out, std::string* error) {
  std::lock_guard lock(mu_);
  if (!Exec(db_, "BEGIN IMMEDIATE"))
    return *error = std::string("cannot roll back: ") + sqlite3_errmsg(db_), false;
  auto fail = [&](std::string why) {
    Exec(db_, "ROLLBACK");
    *error = std::move(why);
    return false;
  };
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT spec, generation, stable_spec FROM services WHERE id = ?1", -1, &st,
                     nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::string spec, stable;
  int64_t generation = 0;
  if (sqlite3_step(st) == SQLITE_ROW) {
    spec = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    generation = sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 2) != SQLITE_NULL)
      stable = reinterpret_cast<const char*>(sqlite3_column_text(st, 2));
  }
  sqlite3_finalize(st);
  if (spec.empty()) return fail("service " + id + " is not recorded");
  if (generation != from_generation)
    return fail("generation " + std::to_string(from_generation) + " of service " + id +
                " is no longer current (it is " + std::to_string(generation) + ")");
  if (stable.empty())
    return fail("service " + id + " has no earlier version that ran: nothing to roll back to");
  if (stable == spec) return fail("the failing spec of service " + id + " is the last one that ran");
  Rollback r;
  r.from_generation = from_generation;
  r.version = ServiceFromJson(json::parse(spec, nullptr, false)).version;
  r.reason = reason;
  r.at_ms = now_ms;
  sqlite3_prepare_v2(db_,
                     "UPDATE services SET prev_spec = spec, prev_secrets = secrets, spec = stable_spec,"
                     " secrets = stable_secrets, generation = (SELECT v + 1 FROM meta WHERE k = 'version'),"
                     " rollback = ?2 WHERE id = ?1",
                     -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  // to_generation is the one this update writes: meta's version + 1.
  int64_t to = 0;
  {
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db_, "SELECT v + 1 FROM meta WHERE k = 'version'", -1, &q, nullptr);
    if (sqlite3_step(q) == SQLITE_ROW) to = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
  }
  r.to_generation = to;
  const std::string record = json{
      {"from_generation", r.from_generation},
      {"to_generation", r.to_generation},
      {"version", r.version},
      {"reason", r.reason},
      {"at_ms", r.at_ms}}.dump();
  sqlite3_bind_text(st, 2, record.c_str(), -1, SQLITE_TRANSIENT);
  bool ok = sqlite3_step(st) == SQLITE_DONE;
  sqlite3_finalize(st);
  ok = ok && Exec(db_, "UPDATE meta SET v = v + 1 WHERE k = 'version'") && Exec(db_, "COMMIT");
  if (!ok) return fail(std::string("cannot roll back service ") + id + ": " + sqlite3_errmsg(db_));
  if (out) *out = r;
  return true;
}

int64_t ServiceStore::StableGeneration(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT stable_generation FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  int64_t g = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  return g;
}

nlohmann::json ServiceStore::ScaleState(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT scale FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  json out = json::object();
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    json j = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false);
    if (j.is_object()) out = std::move(j);
  }
  sqlite3_finalize(st);
  return out;
}

std::map<std::string, int> ServiceStore::Scale(const std::string& id) {
  std::map<std::string, int> out;
  const json j = ScaleState(id);
  if (auto c = j.find("replicas"); c != j.end() && c->is_object())
    for (const auto& [region, n] : c->items())
      if (n.is_number_integer() && n.get<int>() >= 0) out[region] = n.get<int>();
  return out;
}

bool ServiceStore::SetScale(const std::string& id, const std::map<std::string, int>& counts,
                            const nlohmann::json& state) {
  std::lock_guard lock(mu_);
  const std::string text = json{{"replicas", counts}, {"autoscalers", state}}.dump();
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "UPDATE services SET scale = ?2 WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, text.c_str(), -1, SQLITE_TRANSIENT);
  const bool ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_) == 1;
  sqlite3_finalize(st);
  return ok;
}

std::vector<MovedReplica> ServiceStore::Moved(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT moved FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::vector<MovedReplica> out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    const json j = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false);
    if (j.is_array())
      for (const json& m : j)
        if (m.is_object())
          out.push_back({m.value("region", ""), m.value("index", 0), m.value("to", ""),
                         m.value("since_ms", int64_t{0}), m.value("until_ms", int64_t{0}), m.value("reason", "")});
  }
  sqlite3_finalize(st);
  return out;
}

bool ServiceStore::SetMoved(const std::string& id, const std::vector<MovedReplica>& moved) {
  json j = json::array();
  for (const MovedReplica& m : moved)
    j.push_back({{"region", m.region},
                 {"index", m.index},
                 {"to", m.to},
                 {"since_ms", m.since_ms},
                 {"until_ms", m.until_ms},
                 {"reason", m.reason}});
  const std::string text = j.dump();
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "UPDATE services SET moved = ?2 WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, text.c_str(), -1, SQLITE_TRANSIENT);
  const bool ok = sqlite3_step(st) == SQLITE_DONE && sqlite3_changes(db_) == 1;
  sqlite3_finalize(st);
  return ok;
}

ServiceSpec RunningSpec(const ServiceSpec& spec, const std::set<std::string>& failed, ServiceStore& store,
                        int64_t now_ms) {
  return WithMoved(WithScale(WithoutFailedRegions(spec, failed), store.Scale(spec.id)), store.Moved(spec.id),
                   now_ms);
}

std::optional<Rollback> ServiceStore::LastRollback(const std::string& id) {
  std::lock_guard lock(mu_);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db_, "SELECT rollback FROM services WHERE id = ?1", -1, &st, nullptr);
  sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
  std::optional<Rollback> out;
  if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
    json j = json::parse(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), nullptr, false);
    if (j.is_object()) {
      Rollback r;
      r.from_generation = j.value("from_generation", int64_t{0});
      r.to_generation = j.value("to_generation", int64_t{0});
      r.version = j.value("version", "");
      r.reason = j.value("reason", "");
      r.at_ms = j.value("at_ms", int64_t{0});
      out = r;
    }
  }
  sqlite3_finalize(st);
  return out;
}

bool ServiceStore::OpenSecrets(const std::string& id, std::map<std::string, std::string>* out,
                               std::string* error) {
  std::string blob;
  {
    std::lock_guard lock(mu_);
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db_, "SELECT secrets FROM services WHERE id = ?1", -1, &st, nullptr);
    sqlite3_bind_text(st, 1, id.c_str(), -1, SQLITE_TRANSIENT);
    bool row = sqlite3_step(st) == SQLITE_ROW;
    if (row && sqlite3_column_type(st, 0) != SQLITE_NULL)
      blob.assign(static_cast<const char*>(sqlite3_column_blob(st, 0)), sqlite3_column_bytes(st, 0));
    sqlite3_finalize(st);
    if (blob.empty()) return true;
  }
  return UnsealSecrets(id, blob, out, error);
}

bool ServiceStore::UnsealSecrets(const std::string& id, const std::string& blob,
                                 std::map<std::string, std::string>* out, std::string* error) {
  auto key = storage::LoadWorkspaceKey(key_path_, false);
  if (!key.ok()) return *error = "cannot open the service's secrets: " + key.error().message, false;
  std::string plain;
  if (!crypto::OpenBlob(key.value().key, SecretsAad(id), blob, &plain, nullptr, error))
    return *error = "cannot open the service's secrets: " + *error, false;
  json j = json::parse(plain, nullptr, false);
  explicit_bzero(plain.data(), plain.size());
  if (!j.is_object()) return *error = "cannot open the service's secrets: not a JSON object", false;
  for (auto& [k, v] : j.items())
    if (v.is_string()) (*out)[k] = v.get<std::string>();
  return true;
}

// -------------------------------------------------------------- reconcile

namespace {

// "api.eu.3" -> "eu" (region names hold no '.').
std::string RegionOfReplica(const std::string& id) {
  const size_t last = id.rfind('.');
  const size_t first = id.find('.');
  return first == std::string::npos || last == first ? "" : id.substr(first + 1, last - first - 1);
}

}  // namespace

bool ReconcileService(Supervisor& supervisor, const ServiceSpec& spec,
                      const std::map<std::string, std::string>& secrets, const fs::path& logs_dir,
                      bool one_at_a_time, std::string* error, TrafficGate* gate,
                      const PreviousSpec* previous) {
  std::vector<ReplicaSpec> wanted = ReplicaSpecsFor(spec, secrets, logs_dir);
  // A new driver (an apply, a controller in a new term) sees the running
  // replicas as recorded but unmanaged: adopt each with the spec it runs, the
  // current one or the previous one, so a changed spec rolls out below
  // instead of restarting them all at once on Add.
  const std::string prefix = ReplicaPrefix(spec.id);
  std::map<std::string, ReplicaSpec> older;
  bool unmanaged = false;
  for (const ReplicaSnapshot& s : supervisor.Snapshots())
    unmanaged = unmanaged || (s.id.rfind(prefix, 0) == 0 && s.phase == ReplicaPhase::kUnmanaged);
  if (unmanaged && previous) {
    ServiceSpec all = previous->spec;
    for (ServiceRegion& r : all.regions) {
      r.down = false;
      // As many as the autoscaler runs now.
      for (const ServiceRegion& now : spec.regions)
        if (now.name == r.name && all.autoscale) r.replicas = now.replicas;
    }
    for (ReplicaSpec& r : ReplicaSpecsFor(all, previous->secrets, logs_dir))
      older.emplace(r.id, std::move(r));
    for (ReplicaSpec& r : SurgeSpecsFor(all, previous->secrets, logs_dir)) older.emplace(r.id, std::move(r));
  }
  if (unmanaged) {
    std::map<std::string, const ReplicaSpec*> current;
    for (const ReplicaSpec& r : wanted) current[r.id] = &r;
    for (const ReplicaSnapshot& s : supervisor.Snapshots()) {
      if (s.id.rfind(prefix, 0) != 0 || s.phase != ReplicaPhase::kUnmanaged) continue;
      if (auto c = current.find(s.id); c != current.end() && supervisor.Adopt(*c->second)) continue;
      if (auto o = older.find(s.id); o != older.end()) supervisor.Adopt(o->second);
    }
  }
  for (auto& [id, r] : older) process::WipeEnvironment(r.env);
  if (gate) gate->Refresh();
  const int64_t settle_ms = SettleTime(spec).count();
  // Ready, settled and (where a load balancer fronts it) taking traffic again;
  // a load balancer that never reports it UP holds a rollout for at most
  // kRotationWait.
  auto serving = [&](const std::string& id) {
    auto s = supervisor.Snapshot(id);
    if (!s || !s->ready || s->ready_for_ms < settle_ms) return false;
    return !gate || gate->InRotation(id) || s->ready_for_ms >= kRotationWait.count();
  };
  auto managed = [&](const std::string& id) {
    auto s = supervisor.Snapshot(id);
    return s && s->phase != ReplicaPhase::kUnmanaged;
  };
  // A rollout is under way while a replica runs an older spec, and until every
  // replica serves again once surge replicas run: only then do they stop.
  std::vector<ReplicaSpec> surge = SurgeSpecsFor(spec, secrets, logs_dir);
  bool changed = false, all_serving = true, surge_runs = false;
  for (const ReplicaSpec& r : wanted) {
    changed = changed || (managed(r.id) && !supervisor.Unchanged(r));
    all_serving = all_serving && serving(r.id);
  }
  std::set<std::string> surge_ids;
  for (const ReplicaSpec& r : surge) {
    surge_runs = surge_runs || managed(r.id);
    surge_ids.insert(r.id);
  }
  if (one_at_a_time && (changed || (surge_runs && !all_serving)))
    for (ReplicaSpec& r : surge) wanted.push_back(std::move(r));
  std::set<std::string> wanted_ids;
  for (const auto& r : wanted) wanted_ids.insert(r.id);

  // Per region, how many of its own replicas serve: a replica relocated out
  // of a region that is up again stays until that region's replicas all serve.
  std::map<std::string, int> region_serving;
  for (const ReplicaSpec& r : wanted)
    if (RelocatedFrom(spec, r.id).empty() && serving(r.id)) ++region_serving[RegionOfReplica(r.id)];
  std::set<std::string> up_regions;
  for (const ServiceRegion& r : spec.regions)
    if (!r.down) up_regions.insert(r.name);

  // Replicas no longer wanted go first (a dropped region, fewer replicas, the
  // surge after a rollout, a relocated one whose region serves again); one
  // that serves is drained out of the load balancers first.
  for (const ReplicaSnapshot& s : supervisor.Snapshots()) {
    if (s.id.rfind(prefix, 0) != 0 || wanted_ids.count(s.id)) continue;
    if (const std::string from = RelocatedFrom(spec, s.id); !from.empty() && up_regions.count(from) &&
                                                            s.phase != ReplicaPhase::kUnmanaged &&
                                                            region_serving[from] < [&] {
                                                              for (const ServiceRegion& r : spec.regions)
                                                                if (r.name == from) return CountIn(spec, r);
                                                              return spec.replicas;
                                                            }())
      continue;
    if (gate && s.ready && !gate->Drain(s.id)) continue;
    std::string e;
    supervisor.Remove(s.id, &e);
  }
  // Per region, how many replicas serve now: a rolling replacement takes one
  // out of service only while at least replicas - max_unavailable others do.
  // (A region hosting relocated replicas keeps as many more serving.)
  std::map<std::string, int> available, floor;
  for (const ReplicaSpec& r : wanted) {
    const std::string region = RegionOfReplica(r.id);
    if (serving(r.id)) ++available[region];
    if (!surge_ids.count(r.id)) ++floor[region];
  }
  for (auto& [region, n] : floor) n -= spec.max_unavailable;
  for (ReplicaSpec& r : wanted) {
    auto snap = supervisor.Snapshot(r.id);
    if (!snap || snap->phase == ReplicaPhase::kUnmanaged) {
      if (!supervisor.Add(std::move(r), error)) return false;
      continue;
    }
    if (supervisor.Unchanged(r)) {
      // Current and ready: back into rotation wherever it was drained.
      if (gate && snap->ready && !gate->InRotation(r.id)) gate->Admit(r.id);
      continue;
    }
    if (one_at_a_time && snap->ready) {
      int& region_available = available[RegionOfReplica(r.id)];
      const int after = region_available - (serving(r.id) ? 1 : 0);
      if (after < floor[RegionOfReplica(r.id)]) continue;
      region_available = after;
      // Drained out of the load balancers before it stops.
      if (gate && !gate->Drain(r.id)) continue;
    } else if (one_at_a_time) {
      // One that is down (exited, failing readiness) serves nothing: it is
      // replaced at once. One whose probes have not spoken yet (just adopted,
      // starting) may be serving: it waits for them.
      const bool down = snap->phase == ReplicaPhase::kBackoff || snap->phase == ReplicaPhase::kStopped ||
                        snap->phase == ReplicaPhase::kTerminating || snap->readiness == ProbeState::kFailed;
      if (!down) continue;
    }
    if (!supervisor.Update(std::move(r), error)) return false;
  }
  return true;
}

std::string RolloutFailure(const Supervisor& supervisor, const ServiceSpec& spec,
                           const std::map<std::string, std::string>& secrets, const fs::path& logs_dir,
                           int64_t now_wall_ms) {
  std::string why;
  std::vector<ReplicaSpec> replicas = ReplicaSpecsFor(spec, secrets, logs_dir);
  for (ReplicaSpec& r : SurgeSpecsFor(spec, secrets, logs_dir)) replicas.push_back(std::move(r));
  for (ReplicaSpec& r : replicas) {
    const bool current = why.empty() && supervisor.Unchanged(r);
    process::WipeEnvironment(r.env);
    if (!current) continue;
    auto s = supervisor.Snapshot(r.id);
    if (!s || s->ready) continue;
    if (s->phase == ReplicaPhase::kBackoff && !s->last_error.empty()) {
      why = (s->last_error.find(r.id) != std::string::npos ? s->last_error
                                                           : "replica " + r.id + ": " + s->last_error) +
            " (log: " + (logs_dir / (r.id + ".log")).string() + ")";
    } else if ((s->phase == ReplicaPhase::kRunning || s->phase == ReplicaPhase::kStarting) &&
               s->last_start_ms > 0 && now_wall_ms - s->last_start_ms > 1000LL * spec.ready_timeout_s) {
      // (A replica being replaced still shows its old process's start.)
      why = "replica " + r.id + " was not ready " + std::to_string(spec.ready_timeout_s) +
            "s after it started (readiness probe " + std::string(ProbeStateName(s->readiness)) + ")";
    }
  }
  return why;
}

std::chrono::milliseconds SettleTime(const ServiceSpec& spec) {
  if (!spec.readiness) return std::chrono::milliseconds(1000);
  return std::chrono::milliseconds(1000LL * spec.readiness->period_s + 1000);
}

void RemoveServiceReplicas(Supervisor& supervisor, const std::string& id) {
  const std::string prefix = ReplicaPrefix(id);
  for (const ReplicaSnapshot& s : supervisor.Snapshots()) {
    if (s.id.rfind(prefix, 0) != 0) continue;
    std::string e;
    supervisor.Remove(s.id, &e);
  }
}

std::vector<ReplicaSnapshot> ServiceReplicas(const Supervisor& supervisor, const std::string& id) {
  const std::string prefix = ReplicaPrefix(id);
  std::vector<ReplicaSnapshot> out;
  for (ReplicaSnapshot& s : supervisor.Snapshots())
    if (s.id.rfind(prefix, 0) == 0) out.push_back(std::move(s));
  return out;
}

}  // namespace plinth::controller
