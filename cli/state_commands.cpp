// state list|show|rm|mv|history|pull, show, force-unlock and graph: the
// CLI over the state store (runtime/state) and the planner's graph.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/workspace.h"
#include "compiler/types/user_json.h"
#include "runtime/controller/actions.h"
#include "runtime/crypto/aead.h"
#include "runtime/engine/engine.h"
#include "runtime/plan/plan.h"
#include "runtime/state/lock.h"
#include "runtime/state/sql.h"
#include "runtime/state/state_store.h"

namespace plinth::cli {

std::string ConfigDir(const Options& o) { return o.dir.empty() ? "." : o.dir; }

bool ExistingDir(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      std::fprintf(stderr, "error: directory '%s' does not exist\n", dir.c_str());
    } else {
      std::fprintf(stderr, "error: cannot access directory '%s': %s\n", dir.c_str(), std::strerror(errno));
    }
    return false;
  }
  if (!S_ISDIR(st.st_mode)) {
    std::fprintf(stderr, "error: '%s' is not a directory\n", dir.c_str());
    return false;
  }
  return true;
}

bool StateKey(const Options& o, std::optional<std::array<uint8_t, 32>>* key) {
  key->reset();
  std::string file = o.state_key_file;
  std::string from = "--state-key-file";
  if (file.empty()) {
    const char* env = std::getenv("PLINTH_STATE_KEY_FILE");
    if (env == nullptr || *env == '\0') return true;
    file = env;
    from = "PLINTH_STATE_KEY_FILE";
  }
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "error: the state key file '%s' (%s) %s\n", file.c_str(), from.c_str(), why.c_str());
    return false;
  };
  int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return fail(std::string("cannot be read: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return fail("is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%o", static_cast<unsigned>(st.st_mode & 0777));
    return fail(std::string("is readable by other users (mode ") + mode + "); run chmod 600 on it");
  }
  // 64 hex digits and a line end at most; anything longer is not a key.
  char buf[80];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  std::string text(buf, n > 0 ? static_cast<size_t>(n) : 0);
  OPENSSL_cleanse(buf, sizeof buf);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  std::string raw;
  bool ok = text.size() == 64 && crypto::FromHex(text, &raw) && raw.size() == 32;
  if (ok) {
    std::array<uint8_t, 32> k;
    std::memcpy(k.data(), raw.data(), k.size());
    *key = k;
    OPENSSL_cleanse(k.data(), k.size());
  }
  OPENSSL_cleanse(text.data(), text.size());
  OPENSSL_cleanse(raw.data(), raw.size());
  if (!ok) return fail("is not a key: it must hold 64 hexadecimal digits (e.g. from: openssl rand -hex 32)");
  return true;
}

std::unique_ptr<state::StateStore> OpenState(const Options& o) {
  if (!ExistingDir(ConfigDir(o))) return nullptr;
  state::StoreOptions so;
  so.mode = state::OpenMode::kExisting;
  if (!StateKey(o, &so.encryption_key)) return nullptr;
  auto store = state::StateStore::OpenWorkspace(ConfigDir(o), o.workspace, so);
  if (!store.ok()) {
    std::fprintf(stderr, "error: %s\n", store.error().message.c_str());
    return nullptr;
  }
  return std::move(store.value());
}

namespace {

std::string Time(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// `state migrate`: copies the locked `source` into the backend --to names,
// compares counts and digests, and marks the source as moved.
int MigrateState(const Options& o, state::StateStore& source) {
  state::StoreOptions so;
  so.mode = state::OpenMode::kCreate;
  so.backend = o.migrate_to == "sqlite" ? "" : o.migrate_to;
  if (!so.backend.empty() && !state::IsPostgresUrl(so.backend)) {
    std::fprintf(stderr, "error: --to must be a PostgreSQL URL (postgres://USER@HOST/DB) or sqlite\n");
    return 2;
  }
  if (so.backend.empty() == !source.postgres()) {
    std::fprintf(stderr, "error: the state is already in %s; --to names where it should go\n",
                 source.postgres() ? "PostgreSQL (give --backend for the source)" : "the SQLite file");
    return 2;
  }
  if (!StateKey(o, &so.encryption_key)) return 1;
  so.key_version = source.key_version();
  auto dest = state::StateStore::OpenWorkspace(ConfigDir(o), o.workspace, so);
  if (!dest.ok()) return std::fprintf(stderr, "error: %s\n", dest.error().message.c_str()), 1;
  auto before = source.Summarize();
  if (!before.ok()) return std::fprintf(stderr, "error: %s\n", before.error().message.c_str()), 1;
  std::fprintf(stderr,
               "copying workspace '%s': %lld serials, %lld resources, %lld history rows, %lld journal intents\n",
               o.workspace.c_str(), static_cast<long long>(before->serials), static_cast<long long>(before->resources),
               static_cast<long long>(before->history), static_cast<long long>(before->intents));
  if (auto s = source.CopyInto(*dest.value()); !s.ok()) {
    return std::fprintf(stderr, "error: %s\n", s.error().message.c_str()), 1;
  }
  auto after = dest.value()->Summarize();
  if (!after.ok()) return std::fprintf(stderr, "error: %s\n", after.error().message.c_str()), 1;
  if (after->serials != before->serials || after->resources != before->resources ||
      after->history != before->history || after->intents != before->intents || after->digest != before->digest) {
    std::fprintf(stderr,
                 "error: the copy in %s differs from the source (digest %s, source %s); the source was left as "
                 "it is and is still the state\n",
                 dest.value()->path().c_str(), after->digest.c_str(), before->digest.c_str());
    return 1;
  }
  if (auto s = source.MarkMigrated(dest.value()->path()); !s.ok()) {
    return std::fprintf(stderr, "error: the copy is complete but the source could not be marked as moved: %s\n",
                        s.error().message.c_str()),
           1;
  }
  std::printf("moved workspace '%s' from %s to %s: %lld serials, %lld resources, %lld history rows, %lld journal "
              "intents; digest %s on both sides\n",
              o.workspace.c_str(), source.path().c_str(), dest.value()->path().c_str(),
              static_cast<long long>(after->serials), static_cast<long long>(after->resources),
              static_cast<long long>(after->history), static_cast<long long>(after->intents),
              after->digest.c_str());
  std::printf("the old copy is kept as a backup and refuses to open; from now on %s\n",
              so.backend.empty() ? "leave --backend and PLINTH_BACKEND unset"
                                 : "pass --backend=URL or set PLINTH_BACKEND (the password in PGPASSWORD)");
  return 0;
}

void PrintRecord(const state::ResourceRecord& r) {
  std::printf("# %s\n", r.address.c_str());
  std::printf("    %-12s = %s\n", "(id)", QuoteString(r.id).c_str());
  size_t width = 0;
  for (const auto& [k, v] : r.attributes) width = std::max(width, k.size());
  for (const auto& [k, v] : r.attributes) {
    std::printf("    %-*s = %s\n", static_cast<int>(width), k.c_str(), v.ToString().c_str());
  }
  if (!r.dependencies.empty()) {
    std::string deps;
    for (const auto& d : r.dependencies) deps += (deps.empty() ? "" : ", ") + d;
    std::printf("    (depends on %s)\n", deps.c_str());
  }
}

}  // namespace

int State(const Options& o) {
  if (o.paths.empty()) {
    std::fprintf(stderr, "plinth state: missing subcommand (list, show, rm, mv, history, pull)\n");
    return 2;
  }
  const std::string sub = o.paths[0];
  std::vector<std::string> args(o.paths.begin() + 1, o.paths.end());
  auto need = [&](size_t n, const char* usage) {
    if (args.size() == n) return true;
    std::fprintf(stderr, "usage: plinth state %s\n", usage);
    return false;
  };
  if (sub != "list" && sub != "show" && sub != "rm" && sub != "mv" && sub != "history" && sub != "pull" &&
      sub != "migrate") {
    std::fprintf(stderr, "plinth state: unknown subcommand '%s' (list, show, rm, mv, history, pull, migrate)\n",
                 sub.c_str());
    return 2;
  }
  auto store = OpenState(o);
  if (!store) return 1;
  if (sub == "migrate") {
    if (!need(0, "migrate --to=URL|sqlite")) return 2;
    return WithLock(*store, "state migrate", [&] { return MigrateState(o, *store); });
  }
  if (sub == "list") {
    if (!need(0, "list [--dir=DIR]")) return 2;
    auto rs = store->Resources();
    if (!rs.ok()) return std::fprintf(stderr, "error: %s\n", rs.error().message.c_str()), 1;
    for (const auto& r : rs.value()) std::printf("%s\n", r.address.c_str());
    return 0;
  }
  if (sub == "show") {
    if (!need(1, "show ADDRESS")) return 2;
    auto r = store->Resource(args[0]);
    if (!r.ok()) return std::fprintf(stderr, "error: %s\n", r.error().message.c_str()), 1;
    if (!r.value()) return std::fprintf(stderr, "error: no resource '%s' in the state\n", args[0].c_str()), 1;
    PrintRecord(*r.value());
    return 0;
  }
  if (sub == "rm") {
    if (!need(1, "rm ADDRESS")) return 2;
    return WithLock(*store, "state rm " + args[0], [&] {
      auto s = store->StateRm(args[0]);
      if (!s.ok()) return std::fprintf(stderr, "error: %s\n", s.error().message.c_str()), 1;
      std::printf("removed %s from the state (serial %lld); the object itself was not touched\n", args[0].c_str(),
                  static_cast<long long>(s.value()));
      return 0;
    });
  }
  if (sub == "mv") {
    if (!need(2, "mv FROM TO")) return 2;
    return WithLock(*store, "state mv " + args[0] + " " + args[1], [&] {
      auto s = store->StateMv(args[0], args[1]);
      if (!s.ok()) return std::fprintf(stderr, "error: %s\n", s.error().message.c_str()), 1;
      std::printf("moved %s to %s (serial %lld)\n", args[0].c_str(), args[1].c_str(), static_cast<long long>(s.value()));
      return 0;
    });
  }
  if (sub == "history") {
    if (args.size() > 1) return std::fprintf(stderr, "usage: plinth state history [ADDRESS]\n"), 2;
    auto serials = store->Serials();
    auto h = store->History(args.empty() ? "" : args[0]);
    if (!h.ok() || !serials.ok()) {
      std::fprintf(stderr, "error: %s\n", (!h.ok() ? h.error() : serials.error()).message.c_str());
      return 1;
    }
    if (args.empty()) {
      for (const auto& s : serials.value()) {
        std::printf("serial %lld  %s  %-8s %-10s\n", static_cast<long long>(s.serial), Time(s.started_ms).c_str(),
                    s.command.c_str(), state::ApplyStatusName(s.status));
      }
      std::printf("\n");
    }
    for (const auto& e : h.value()) {
      std::printf("serial %lld  %s  %-6s %s\n", static_cast<long long>(e.serial), Time(e.at_ms).c_str(),
                  state::ActionName(e.action), e.address.c_str());
    }
    return 0;
  }
  // pull
  if (!need(0, "pull")) return 2;
  auto doc = store->ExportJson();
  if (!doc.ok()) return std::fprintf(stderr, "error: %s\n", doc.error().message.c_str()), 1;
  std::cout << doc.value().dump(2) << "\n";
  return 0;
}

int History(const Options& o) {
  const std::string address = o.paths.empty() ? "" : o.paths[0];
  if (o.paths.size() > 1) return std::fprintf(stderr, "usage: plinth history [ADDRESS] [--dir=DIR] [--json]\n"), 2;
  auto store = OpenState(o);
  if (!store) return 1;
  auto serials = store->Serials();
  auto changes = store->History(address);
  if (!serials.ok() || !changes.ok()) {
    std::fprintf(stderr, "error: %s\n", (!serials.ok() ? serials.error() : changes.error()).message.c_str());
    return 1;
  }
  // The controller's automatic actions (runtime/controller/actions.h), when one ever acted.
  std::vector<controller::Action> actions;
  const std::filesystem::path actions_db =
      std::filesystem::path(ConfigDir(o)) / ".plinth" / o.workspace / "controller" / "actions.db";
  std::error_code ec;
  if (std::filesystem::exists(actions_db, ec)) {
    std::string error;
    auto log = controller::ActionLog::Open(actions_db, false, &error);
    if (!log) return std::fprintf(stderr, "error: %s\n", error.c_str()), 1;
    actions = log->List(address);
  }
  // One timeline: applies (with what each changed) and actions, by time.
  std::map<int64_t, std::vector<std::string>> changed;  // serial -> "update service.model"
  for (const auto& e : changes.value())
    changed[e.serial].push_back(std::string(state::ActionName(e.action)) + " " + e.address);
  struct Row {
    int64_t at_ms;
    nlohmann::json doc;
  };
  std::vector<Row> rows;
  for (const auto& s : serials.value()) {
    auto it = changed.find(s.serial);
    if (!address.empty() && it == changed.end()) continue;
    nlohmann::json doc = {{"kind", "apply"},
                          {"at", Time(s.started_ms)},
                          {"serial", s.serial},
                          {"command", s.command},
                          {"status", state::ApplyStatusName(s.status)},
                          {"changes", it == changed.end() ? nlohmann::json::array() : nlohmann::json(it->second)}};
    // Where the configuration came from (docs/gitops.md): a git commit.
    if (!s.source.empty()) {
      nlohmann::json source = nlohmann::json::parse(s.source, nullptr, false);
      if (source.is_object()) doc["source"] = std::move(source);
    }
    rows.push_back({s.started_ms, std::move(doc)});
  }
  for (const auto& a : actions) {
    nlohmann::json doc = controller::ActionJson(a);
    doc["action"] = doc["kind"];
    doc["kind"] = "controller";
    doc["at"] = Time(a.at_ms);
    doc.erase("at_ms");
    rows.push_back({a.at_ms, std::move(doc)});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.at_ms < b.at_ms; });
  if (o.json) {
    nlohmann::json list = nlohmann::json::array();
    for (auto& r : rows) list.push_back(std::move(r.doc));
    std::cout << nlohmann::json{{"format_version", 1}, {"entries", list}}.dump(2) << "\n";
    return 0;
  }
  for (const Row& r : rows) {
    const nlohmann::json& d = r.doc;
    if (d["kind"] == "apply") {
      const size_t n = d["changes"].size();
      std::printf("%s  %-8s serial %lld, %s, %zu change%s\n", d["at"].get<std::string>().c_str(),
                  d["command"].get<std::string>().c_str(), static_cast<long long>(d["serial"].get<int64_t>()),
                  d["status"].get<std::string>().c_str(), n, n == 1 ? "" : "s");
      if (d.contains("source")) {
        const nlohmann::json& g = d["source"];
        const std::string path = g.value("path", std::string());
        // Names, paths and the summary come from the repository: never raw.
        auto text = [&](const char* key) { return runtime::EscapeControls(g.value(key, std::string())); };
        std::printf("    from %s@%s%s%s, commit %s by %s <%s> at %s: %s\n", text("repo").c_str(), text("ref").c_str(),
                    path.empty() ? "" : " path ", runtime::EscapeControls(path).c_str(),
                    text("commit").substr(0, 12).c_str(), text("author").c_str(), text("email").c_str(),
                    Time(g.value("time_s", int64_t{0}) * 1000).c_str(), text("summary").c_str());
      }
      for (const auto& c : d["changes"]) std::printf("    %s\n", c.get<std::string>().c_str());
    } else {
      std::printf("%s  %-8s %s: %s %s\n    because %s\n", d["at"].get<std::string>().c_str(), "auto",
                  d["subject"].get<std::string>().c_str(), d["action"].get<std::string>().c_str(),
                  d["detail"].get<std::string>().c_str(), d["reason"].get<std::string>().c_str());
    }
  }
  if (rows.empty()) std::printf("no applies%s yet\n", address.empty() ? "" : (" changed " + address).c_str());
  return 0;
}

int Show(const Options& o) {
  auto store = OpenState(o);
  if (!store) return 1;
  auto rs = o.at_serial > 0 ? store->ResourcesAt(o.at_serial) : store->Resources();
  if (!rs.ok()) return std::fprintf(stderr, "error: %s\n", rs.error().message.c_str()), 1;
  if (o.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& r : rs.value()) {
      nlohmann::json attrs = nlohmann::json::object();
      for (const auto& [k, v] : r.attributes) attrs[k] = ValueToUserJson(v);
      list.push_back({{"address", r.address}, {"type", r.type}, {"provider", r.provider}, {"id", r.id},
                      {"depends_on", r.dependencies}, {"attributes", attrs}});
    }
    auto serial = store->CurrentSerial();
    std::cout << nlohmann::json{{"format_version", 1},
                                {"serial", o.at_serial > 0 ? o.at_serial : (serial.ok() ? serial.value() : 0)},
                                {"resources", list}}
                     .dump(2)
              << "\n";
    return 0;
  }
  if (rs.value().empty()) std::printf("The state is empty.\n");
  for (const auto& r : rs.value()) {
    PrintRecord(r);
    std::printf("\n");
  }
  return 0;
}

int ForceUnlock(const Options& o) {
  if (o.paths.size() != 1) {
    std::fprintf(stderr, "usage: plinth force-unlock [--dir=DIR] LOCK_ID\n");
    return 2;
  }
  auto store = OpenState(o);
  if (!store) return 1;
  auto current = state::WorkspaceLock::Current(*store);
  auto s = state::WorkspaceLock::ForceUnlock(*store, o.paths[0]);
  if (!s.ok()) return std::fprintf(stderr, "error: %s\n", s.error().message.c_str()), 1;
  if (current.ok() && current.value()) {
    const auto& h = current.value()->holder;
    std::printf("removed the lock held by pid %lld on %s (%s) since %s\n", static_cast<long long>(h.pid),
                h.host.c_str(), h.command.c_str(), Time(h.since_ms).c_str());
  } else {
    std::printf("removed the lock\n");
  }
  return 0;
}

}  // namespace plinth::cli
