// Tests for the state store (runtime/state/state_store.h): round trips,
// serials, history replay, the intent journal across a real SIGKILL, damaged
// files left untouched, and encryption at rest.

#include "runtime/state/state_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>
#include <fstream>
#include <iterator>

namespace plinth::state {
namespace {

namespace fs = std::filesystem;

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "plinth-state-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<StateStore> OpenOrDie(StoreOptions options = {}) {
    auto store = StateStore::OpenWorkspace(dir_.string(), "default", options);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store.value()) : nullptr;
  }
  fs::path DbPath() const { return dir_ / ".plinth" / "default" / "state.db"; }

  static ResourceRecord Bucket(const std::string& address, const std::string& id, double quota_gib) {
    ResourceRecord r;
    r.address = address;
    r.type = "bucket";
    r.provider = "local";
    r.id = id;
    r.attributes = {{"name", Value::String(id)},
                    {"quota", Value::Size(quota_gib * 1073741824.0)},
                    {"retention", Value::Duration(30 * 86400000.0)},
                    {"labels", Value::Object({{"team", Value::String("infra")}})}};
    r.dependencies = {"region.eu"};
    return r;
  }

  // Create/update/delete `r` in one intent, as the executor will.
  static void Apply(StateStore& s, int64_t serial, Action action, const ResourceRecord& r) {
    auto id = s.RecordIntent(serial, r.address, action, r);
    ASSERT_TRUE(id.ok()) << id.error().message;
    IntentOutcome outcome;
    if (action != Action::kDelete) outcome.resource = r;
    Status done = s.CompleteIntent(id.value(), outcome);
    ASSERT_TRUE(done.ok()) << done.error().message;
  }

  fs::path dir_;
};

TEST_F(StateStoreTest, CreatesWorkspaceDatabaseAndReopensIt) {
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s);
    EXPECT_EQ(s->workspace(), "default");
    EXPECT_EQ(s->CurrentSerial().value(), 0);
    EXPECT_TRUE(s->Resources().value().empty());
  }
  EXPECT_TRUE(fs::is_regular_file(DbPath()));
  auto again = OpenOrDie();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->CurrentSerial().value(), 0);
  // No temporary files are left behind.
  for (const auto& e : fs::directory_iterator(DbPath().parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos) << e.path();
  }
  for (const char* bad : {"", "../x", ".hidden", "a/b", "sp ace"}) {
    auto r = StateStore::OpenWorkspace(dir_.string(), bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
  StoreOptions no_create;
  no_create.mode = OpenMode::kExisting;
  auto missing = StateStore::Open((dir_ / "nope.db").string(), no_create);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_ / "nope.db"));
}

TEST_F(StateStoreTest, ApplyRoundTripsRecordsAndIncrementsSerials) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  auto serial1 = s->BeginApply("apply", "sha256:aaa");
  ASSERT_TRUE(serial1.ok());
  EXPECT_EQ(serial1.value(), 1);
  ResourceRecord b = Bucket("bucket.data", "data-1", 10);
  b.attributes["password"] = Value::String("hunter2").WithSensitive();
  Apply(*s, 1, Action::kCreate, b);
  ASSERT_TRUE(s->FinishApply(1, ApplyStatus::kSucceeded).ok());
  EXPECT_EQ(s->FinishApply(1, ApplyStatus::kFailed).error().code, ErrorCode::kConflict);

  auto got = s->Resource("bucket.data");
  ASSERT_TRUE(got.ok() && got.value().has_value());
  const ResourceRecord& r = *got.value();
  EXPECT_EQ(r.type, "bucket");
  EXPECT_EQ(r.provider, "local");
  EXPECT_EQ(r.id, "data-1");
  EXPECT_EQ(r.dependencies, std::vector<std::string>{"region.eu"});
  EXPECT_EQ(r.serial_created, 1);
  EXPECT_EQ(r.serial_updated, 1);
  EXPECT_EQ(r.attributes.at("quota").kind(), Value::Kind::Size);
  EXPECT_EQ(r.attributes.at("quota").as_number(), 10 * 1073741824.0);
  EXPECT_EQ(r.attributes.at("retention").kind(), Value::Kind::Duration);
  EXPECT_TRUE(r.attributes.at("password").sensitive());
  EXPECT_EQ(r.attributes.at("password").as_string(), "hunter2");
  EXPECT_TRUE(r.attributes.at("labels").Equals(b.attributes.at("labels")));
  EXPECT_FALSE(s->Resource("bucket.none").value().has_value());

  auto serial2 = s->BeginApply("apply", "sha256:bbb");
  ASSERT_EQ(serial2.value(), 2);
  Apply(*s, 2, Action::kUpdate, Bucket("bucket.data", "data-1", 20));
  ASSERT_TRUE(s->FinishApply(2, ApplyStatus::kSucceeded).ok());
  ResourceRecord updated = *s->Resource("bucket.data").value();
  EXPECT_EQ(updated.serial_created, 1);
  EXPECT_EQ(updated.serial_updated, 2);
  EXPECT_EQ(updated.attributes.at("quota").as_number(), 20 * 1073741824.0);
  EXPECT_EQ(s->CurrentSerial().value(), 2);

  auto serials = s->Serials().value();
  ASSERT_EQ(serials.size(), 2u);
  EXPECT_EQ(serials[1].config_digest, "sha256:bbb");
  EXPECT_EQ(serials[1].status, ApplyStatus::kSucceeded);
  EXPECT_GE(serials[1].finished_ms, serials[1].started_ms);

  auto history = s->History("bucket.data").value();
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(history[0].action, Action::kCreate);
  EXPECT_FALSE(history[0].before.has_value());
  EXPECT_EQ(history[1].action, Action::kUpdate);
  EXPECT_EQ(history[1].before->attributes.at("quota").as_number(), 10 * 1073741824.0);
  EXPECT_EQ(history[1].after->attributes.at("quota").as_number(), 20 * 1073741824.0);

  // Intents need a running serial.
  EXPECT_EQ(s->RecordIntent(2, "bucket.x", Action::kCreate, b).error().code, ErrorCode::kConflict);
  EXPECT_EQ(s->RecordIntent(9, "bucket.x", Action::kCreate, b).error().code, ErrorCode::kNotFound);
}

TEST_F(StateStoreTest, ResourcesAtReplaysHistoryForOldSerials) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->BeginApply("apply", "d1").value(), 1);
  Apply(*s, 1, Action::kCreate, Bucket("bucket.a", "a", 1));
  Apply(*s, 1, Action::kCreate, Bucket("bucket.b", "b", 1));
  ASSERT_TRUE(s->FinishApply(1, ApplyStatus::kSucceeded).ok());
  ASSERT_EQ(s->BeginApply("apply", "d2").value(), 2);
  Apply(*s, 2, Action::kUpdate, Bucket("bucket.a", "a", 2));
  Apply(*s, 2, Action::kDelete, Bucket("bucket.b", "b", 1));
  ASSERT_TRUE(s->FinishApply(2, ApplyStatus::kSucceeded).ok());
  ASSERT_EQ(s->BeginApply("apply", "d3").value(), 3);
  Apply(*s, 3, Action::kCreate, Bucket("bucket.c", "c", 3));
  ASSERT_TRUE(s->FinishApply(3, ApplyStatus::kFailed).ok());

  auto at = [&](int64_t serial) {
    std::vector<std::string> out;
    for (const ResourceRecord& r : s->ResourcesAt(serial).value()) {
      out.push_back(r.address + "=" + std::to_string(static_cast<int>(r.attributes.at("quota").as_number() /
                                                                      1073741824.0)));
    }
    return out;
  };
  EXPECT_TRUE(at(0).empty());
  EXPECT_EQ(at(1), (std::vector<std::string>{"bucket.a=1", "bucket.b=1"}));
  EXPECT_EQ(at(2), (std::vector<std::string>{"bucket.a=2"}));
  EXPECT_EQ(at(3), (std::vector<std::string>{"bucket.a=2", "bucket.c=3"}));
  EXPECT_EQ(s->ResourcesAt(4).error().code, ErrorCode::kNotFound);
  // The replay at the current serial equals the live table, serials included.
  auto live = s->Resources().value();
  auto replayed = s->ResourcesAt(3).value();
  ASSERT_EQ(live.size(), replayed.size());
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(live[i].address, replayed[i].address);
    EXPECT_EQ(live[i].serial_created, replayed[i].serial_created);
    EXPECT_EQ(live[i].serial_updated, replayed[i].serial_updated);
    EXPECT_EQ(live[i].id, replayed[i].id);
  }
  EXPECT_EQ(s->History().value().size(), 5u);
}

TEST_F(StateStoreTest, IntentLeftOpenIsFoundAfterReopen) {
  int64_t intent = 0;
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
    ResourceRecord planned = Bucket("bucket.a", "", 5);
    planned.attributes["id"] = Value::Unknown(Type::String());
    auto id = s->RecordIntent(1, "bucket.a", Action::kCreate, planned);
    ASSERT_TRUE(id.ok());
    intent = id.value();
    // "Crash": the store goes away without CompleteIntent or FinishApply.
  }
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  auto open = s->OpenIntents().value();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].id, intent);
  EXPECT_EQ(open[0].serial, 1);
  EXPECT_EQ(open[0].address, "bucket.a");
  EXPECT_EQ(open[0].action, Action::kCreate);
  EXPECT_TRUE(open[0].planned.attributes.at("id").is_unknown());
  EXPECT_EQ(open[0].planned.attributes.at("quota").as_number(), 5 * 1073741824.0);
  EXPECT_TRUE(s->Resources().value().empty());

  // Reconciliation adopts what the provider created.
  IntentOutcome adopted;
  adopted.resource = Bucket("bucket.a", "a-real-id", 5);
  ASSERT_TRUE(s->CompleteIntent(intent, adopted).ok());
  EXPECT_TRUE(s->OpenIntents().value().empty());
  EXPECT_EQ(s->Resource("bucket.a").value()->id, "a-real-id");
  EXPECT_EQ(s->CompleteIntent(intent, adopted).error().code, ErrorCode::kConflict);
  EXPECT_EQ(s->CompleteIntent(intent + 100, adopted).error().code, ErrorCode::kNotFound);
}

TEST_F(StateStoreTest, FailedAndAbandonedIntentsLeaveResourcesAlone) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
  ResourceRecord b = Bucket("bucket.a", "a", 1);
  auto id = s->RecordIntent(1, "bucket.a", Action::kCreate, b);
  IntentOutcome failed;
  failed.success = false;
  failed.error = "quota exceeded";
  ASSERT_TRUE(s->CompleteIntent(id.value(), failed).ok());
  EXPECT_TRUE(s->Resources().value().empty());
  EXPECT_TRUE(s->History().value().empty());

  // A successful create must say what exists; a mismatched address is refused.
  auto id2 = s->RecordIntent(1, "bucket.a", Action::kCreate, b);
  EXPECT_EQ(s->CompleteIntent(id2.value(), IntentOutcome{}).error().code, ErrorCode::kInvalidArgument);
  IntentOutcome wrong;
  wrong.resource = Bucket("bucket.other", "o", 1);
  EXPECT_EQ(s->CompleteIntent(id2.value(), wrong).error().code, ErrorCode::kInvalidArgument);
  ASSERT_TRUE(s->AbandonIntent(id2.value(), "provider has no such bucket").ok());
  EXPECT_EQ(s->AbandonIntent(id2.value(), "again").error().code, ErrorCode::kConflict);
  EXPECT_TRUE(s->OpenIntents().value().empty());

  // Values with no JSON form are refused before anything is written.
  ResourceRecord nan = b;
  nan.attributes["ratio"] = Value::Number(std::nan(""));
  auto bad = s->RecordIntent(1, "bucket.a", Action::kCreate, nan);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, ErrorCode::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("NaN"), std::string::npos);
}

TEST_F(StateStoreTest, IntentIsDurableWhenTheProcessIsKilledRightAfterRecording) {
  { ASSERT_TRUE(OpenOrDie()); }  // created by the parent, closed before fork
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    auto s = StateStore::OpenWorkspace(dir_.string(), "default");
    if (!s.ok()) ::_exit(10);
    auto serial = s.value()->BeginApply("apply", "d");
    if (!serial.ok()) ::_exit(11);
    auto id = s.value()->RecordIntent(serial.value(), "bucket.killed", Action::kCreate,
                                      Bucket("bucket.killed", "", 1));
    if (!id.ok()) ::_exit(12);
    int64_t value = id.value();
    if (::write(fds[1], &value, sizeof value) != sizeof value) ::_exit(13);
    ::raise(SIGKILL);  // no destructors, no close, no checkpoint
    ::_exit(14);
  }
  ::close(fds[1]);
  int64_t recorded = 0;
  ASSERT_EQ(::read(fds[0], &recorded, sizeof recorded), static_cast<ssize_t>(sizeof recorded));
  ::close(fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  auto open = s->OpenIntents().value();
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].id, recorded);
  EXPECT_EQ(open[0].address, "bucket.killed");
  auto serials = s->Serials().value();
  ASSERT_EQ(serials.size(), 1u);
  EXPECT_EQ(serials[0].status, ApplyStatus::kRunning);  // the apply never finished
  EXPECT_EQ(serials[0].finished_ms, 0);
}

TEST_F(StateStoreTest, RewriteAddressesIsOneTransactionOfTheApply) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
  Apply(*s, 1, Action::kCreate, Bucket("bucket.a", "a", 1));
  Apply(*s, 1, Action::kCreate, Bucket("bucket.b", "b", 1));
  Apply(*s, 1, Action::kCreate, Bucket("bucket.c", "c", 1));
  ASSERT_TRUE(s->FinishApply(1, ApplyStatus::kSucceeded).ok());
  ASSERT_EQ(s->BeginApply("apply", "d").value(), 2);
  // A taken new address: nothing at all changes, not even the rename that
  // came before it.
  auto refused = s->RewriteAddresses(2, {{"bucket.a", "bucket.x"}, {"bucket.b", "bucket.c"}}, {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kConflict);
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& r : s->Resources().value()) out.push_back(r.address);
    return out;
  };
  EXPECT_EQ(names(), (std::vector<std::string>{"bucket.a", "bucket.b", "bucket.c"}));
  EXPECT_EQ(s->RewriteAddresses(2, {{"bucket.gone", "bucket.x"}}, {}).error().code, ErrorCode::kNotFound);
  // A chain of renames in one call (a -> b while b -> x), a forget, and the
  // identity that follows the address.
  std::map<std::string, ValueMap> identity = {{"bucket.b", {{"name", Value::String("b")}}}};
  auto done = s->RewriteAddresses(2, {{"bucket.b", "bucket.x"}, {"bucket.a", "bucket.b"}}, {"bucket.c"}, identity);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(names(), (std::vector<std::string>{"bucket.b", "bucket.x"}));
  auto moved = s->Resource("bucket.b").value();
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->id, "a");  // the object recorded as bucket.a
  EXPECT_EQ(moved->attributes.at("name").as_string(), "b");
  EXPECT_EQ(moved->serial_updated, 2);
  size_t deletes = 0, creates = 0;
  for (const auto& h : s->History().value()) {
    if (h.serial != 2) continue;
    (h.action == Action::kDelete ? deletes : creates) += 1;
  }
  EXPECT_EQ(deletes, 3u);  // bucket.c forgotten, bucket.a and bucket.b renamed
  EXPECT_EQ(creates, 2u);
}

TEST_F(StateStoreTest, StateRmAndMvAreNewSerialsWithHistory) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
  Apply(*s, 1, Action::kCreate, Bucket("bucket.a", "a", 1));
  Apply(*s, 1, Action::kCreate, Bucket("bucket.b", "b", 1));
  ASSERT_TRUE(s->FinishApply(1, ApplyStatus::kSucceeded).ok());

  auto mv = s->StateMv("bucket.a", "bucket.renamed");
  ASSERT_TRUE(mv.ok()) << mv.error().message;
  EXPECT_EQ(mv.value(), 2);
  EXPECT_FALSE(s->Resource("bucket.a").value().has_value());
  auto moved = s->Resource("bucket.renamed").value();
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->id, "a");
  EXPECT_EQ(moved->serial_created, 1);
  EXPECT_EQ(moved->serial_updated, 2);
  EXPECT_EQ(s->StateMv("bucket.renamed", "bucket.b").error().code, ErrorCode::kConflict);
  EXPECT_EQ(s->StateMv("bucket.gone", "bucket.c").error().code, ErrorCode::kNotFound);

  auto rm = s->StateRm("bucket.b");
  ASSERT_TRUE(rm.ok());
  EXPECT_EQ(rm.value(), 3);
  EXPECT_EQ(s->StateRm("bucket.b").error().code, ErrorCode::kNotFound);
  EXPECT_EQ(s->CurrentSerial().value(), 3);

  auto serials = s->Serials().value();
  EXPECT_EQ(serials[1].command, "state mv bucket.a bucket.renamed");
  EXPECT_EQ(serials[2].command, "state rm bucket.b");
  auto names = [&](int64_t serial) {
    std::vector<std::string> out;
    for (const auto& r : s->ResourcesAt(serial).value()) out.push_back(r.address);
    return out;
  };
  EXPECT_EQ(names(1), (std::vector<std::string>{"bucket.a", "bucket.b"}));
  EXPECT_EQ(names(2), (std::vector<std::string>{"bucket.b", "bucket.renamed"}));
  EXPECT_EQ(names(3), (std::vector<std::string>{"bucket.renamed"}));
  auto history = s->History().value();
  ASSERT_EQ(history.size(), 5u);
  EXPECT_EQ(history[2].address, "bucket.a");
  EXPECT_EQ(history[2].action, Action::kDelete);
  EXPECT_EQ(history[3].address, "bucket.renamed");
  EXPECT_EQ(history[3].action, Action::kCreate);
  EXPECT_EQ(history[4].action, Action::kDelete);
}

TEST_F(StateStoreTest, ExportJsonHasADocumentedVersionedFormat) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
  ResourceRecord b = Bucket("bucket.a", "a", 1);
  b.attributes["token"] = Value::String("t0k").WithSensitive();
  Apply(*s, 1, Action::kCreate, b);
  ASSERT_TRUE(s->RecordIntent(1, "bucket.pending", Action::kDelete, Bucket("bucket.pending", "p", 1)).ok());
  auto j = s->ExportJson();
  ASSERT_TRUE(j.ok());
  const nlohmann::json& doc = j.value();
  EXPECT_EQ(doc["format_version"], kExportFormatVersion);
  EXPECT_EQ(doc["workspace"], "default");
  EXPECT_EQ(doc["serial"], 1);
  ASSERT_EQ(doc["resources"].size(), 1u);
  const auto& r = doc["resources"][0];
  EXPECT_EQ(r["address"], "bucket.a");
  EXPECT_EQ(r["type"], "bucket");
  EXPECT_EQ(r["id"], "a");
  EXPECT_EQ(r["attributes"]["quota"]["$size"], 1073741824);
  EXPECT_EQ(r["attributes"]["token"]["$sensitive"], "t0k");
  EXPECT_EQ(r["dependencies"], nlohmann::json::array({"region.eu"}));
  ASSERT_EQ(doc["open_intents"].size(), 1u);
  EXPECT_EQ(doc["open_intents"][0]["action"], "delete");
}

// ---- damaged files

TEST_F(StateStoreTest, GarbageFileIsRefusedAndLeftUntouched) {
  fs::create_directories(DbPath().parent_path());
  std::string garbage;
  for (int i = 0; i < 8192; ++i) garbage += static_cast<char>((i * 7919) % 251);
  for (const std::string& bytes : {garbage, std::string(), std::string("SQLite format 3")}) {
    WriteBytes(DbPath(), bytes);
    auto s = StateStore::OpenWorkspace(dir_.string(), "default");
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::kCorrupt);
    EXPECT_NE(s.error().message.find("not a Plinth state database"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("left untouched"), std::string::npos);
    EXPECT_EQ(ReadBytes(DbPath()), bytes);
  }
}

TEST_F(StateStoreTest, TruncatedDatabaseIsRefusedAndLeftUntouched) {
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
    for (int i = 0; i < 60; ++i) {
      ResourceRecord b = Bucket("bucket.b" + std::to_string(i), "b", 1);
      b.attributes["blob"] = Value::String(std::string(2000, static_cast<char>('a' + i % 26)));
      Apply(*s, 1, Action::kCreate, b);
    }
  }  // the last connection checkpoints the WAL into state.db
  std::string full = ReadBytes(DbPath());
  ASSERT_GT(full.size(), 64u * 1024);
  std::string truncated = full.substr(0, full.size() / 2);
  WriteBytes(DbPath(), truncated);
  fs::remove(DbPath().string() + "-wal");
  fs::remove(DbPath().string() + "-shm");
  auto s = StateStore::OpenWorkspace(dir_.string(), "default");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kCorrupt) << s.error().message;
  EXPECT_NE(s.error().message.find("damaged"), std::string::npos) << s.error().message;
  EXPECT_EQ(ReadBytes(DbPath()), truncated);
}

TEST_F(StateStoreTest, ForeignAndNewerDatabasesAreRefused) {
  fs::create_directories(DbPath().parent_path());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  std::string before = ReadBytes(DbPath());
  auto s = StateStore::OpenWorkspace(dir_.string(), "default");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(s.error().message.find("not a Plinth state database"), std::string::npos);
  EXPECT_EQ(ReadBytes(DbPath()), before);

  fs::remove(DbPath());
  { ASSERT_TRUE(OpenOrDie()); }
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto newer = StateStore::OpenWorkspace(dir_.string(), "default");
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.error().code, ErrorCode::kSchemaTooNew);
  EXPECT_NE(newer.error().message.find("upgrade Plinth"), std::string::npos);
}

// ---- encryption

TEST_F(StateStoreTest, EncryptionHidesAttributesAndNeedsTheRightKey) {
  const std::string secret = "correct-horse-battery-staple-4242";
  StoreOptions enc;
  enc.encryption_key.emplace();
  for (size_t i = 0; i < 32; ++i) (*enc.encryption_key)[i] = static_cast<uint8_t>(i * 13 + 1);
  {
    auto s = OpenOrDie(enc);
    ASSERT_TRUE(s);
    EXPECT_TRUE(s->encrypted());
    ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
    ResourceRecord b = Bucket("bucket.a", "a", 1);
    b.attributes["password"] = Value::String(secret).WithSensitive();
    Apply(*s, 1, Action::kCreate, b);
    ASSERT_TRUE(s->RecordIntent(1, "bucket.a", Action::kUpdate, b).ok());
    // While open, the data may still sit in the WAL: check both files.
    std::string bytes = ReadBytes(DbPath()) + ReadBytes(DbPath().string() + "-wal");
    EXPECT_EQ(bytes.find(secret), std::string::npos);
    EXPECT_EQ(bytes.find("infra"), std::string::npos);  // non-sensitive attributes are encrypted too
  }
  std::string at_rest = ReadBytes(DbPath());
  EXPECT_EQ(at_rest.find(secret), std::string::npos);
  {
    auto s = OpenOrDie(enc);
    ASSERT_TRUE(s);
    auto r = s->Resource("bucket.a").value();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->attributes.at("password").as_string(), secret);
    EXPECT_TRUE(r->attributes.at("password").sensitive());
    EXPECT_EQ(s->History().value().size(), 1u);
    EXPECT_EQ(s->OpenIntents().value().size(), 1u);
  }
  at_rest = ReadBytes(DbPath());

  StoreOptions wrong = enc;
  (*wrong.encryption_key)[0] ^= 1;
  auto w = StateStore::OpenWorkspace(dir_.string(), "default", wrong);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, ErrorCode::kWrongKey);
  EXPECT_NE(w.error().message.find("wrong encryption key"), std::string::npos);
  auto none = StateStore::OpenWorkspace(dir_.string(), "default");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, ErrorCode::kKeyRequired);
  EXPECT_EQ(ReadBytes(DbPath()), at_rest);

  // The same check on a plain state finds the secret, so the search above is meaningful.
  fs::remove_all(dir_ / ".plinth");
  {
    auto s = OpenOrDie();
    ASSERT_TRUE(s);
    ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
    ResourceRecord b = Bucket("bucket.a", "a", 1);
    b.attributes["password"] = Value::String(secret).WithSensitive();
    Apply(*s, 1, Action::kCreate, b);
  }
  EXPECT_NE(ReadBytes(DbPath()).find(secret), std::string::npos);
  auto keyed = StateStore::OpenWorkspace(dir_.string(), "default", enc);
  ASSERT_FALSE(keyed.ok());
  EXPECT_EQ(keyed.error().code, ErrorCode::kNotEncrypted);
}

TEST_F(StateStoreTest, TamperedEncryptedRecordIsAnErrorNotGarbage) {
  StoreOptions enc;
  enc.encryption_key.emplace();
  enc.encryption_key->fill(7);
  {
    auto s = OpenOrDie(enc);
    ASSERT_TRUE(s);
    ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
    Apply(*s, 1, Action::kCreate, Bucket("bucket.a", "a", 1));
    Apply(*s, 1, Action::kCreate, Bucket("bucket.b", "b", 2));
  }
  // Swap the two encrypted blobs: each is bound to its address.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(DbPath().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE resources SET attributes = (SELECT attributes FROM resources WHERE address = "
                         "'bucket.b') WHERE address = 'bucket.a'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto s = OpenOrDie(enc);
  ASSERT_TRUE(s);
  auto r = s->Resource("bucket.a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(r.error().message.find("fails authentication"), std::string::npos);
  EXPECT_NE(r.error().message.find("'bucket.a'"), std::string::npos);
  EXPECT_TRUE(s->Resource("bucket.b").ok());
}

}  // namespace
}  // namespace plinth::state

namespace plinth::state {
namespace {

// Concurrent intent writes share commits (group commit) without mixing up
// results: every writer gets its own id, every successful write is stored,
// and a failing write in a batch undoes only itself.
TEST_F(StateStoreTest, ConcurrentIntentWritesAreAllRecordedAndIsolated) {
  auto s = OpenOrDie();
  ASSERT_TRUE(s);
  ASSERT_EQ(s->BeginApply("apply", "d").value(), 1);
  constexpr int kThreads = 8, kPerThread = 40;
  std::vector<std::vector<int64_t>> ids(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string address = "bucket.t" + std::to_string(t) + "_" + std::to_string(i);
        ResourceRecord r = Bucket(address, address, 1);
        // Every fifth write names a serial that is not running: it must fail alone.
        int64_t serial = i % 5 == 4 ? 99 : 1;
        auto id = s->RecordIntent(serial, address, Action::kCreate, r);
        if (!id.ok()) {
          ++failures;
          continue;
        }
        ids[t].push_back(id.value());
        IntentOutcome outcome;
        outcome.resource = r;
        if (!s->CompleteIntent(id.value(), outcome).ok()) ++failures;
      }
    });
  }
  for (auto& th : pool) th.join();
  std::set<int64_t> unique;
  for (const auto& v : ids) unique.insert(v.begin(), v.end());
  const int expected_ok = kThreads * (kPerThread - kPerThread / 5);
  EXPECT_EQ(failures.load(), kThreads * (kPerThread / 5));
  EXPECT_EQ(static_cast<int>(unique.size()), expected_ok);
  EXPECT_EQ(static_cast<int>(s->Resources().value().size()), expected_ok);
  EXPECT_TRUE(s->OpenIntents().value().empty());
  // And it all survives a reopen.
  s.reset();
  auto again = OpenOrDie();
  EXPECT_EQ(static_cast<int>(again->Resources().value().size()), expected_ok);
}

}  // namespace
}  // namespace plinth::state
