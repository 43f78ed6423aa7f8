// Tests for the PostgreSQL state backend (runtime/state/sql.h, docs/state.md
// "Backends"): the same store contracts as SQLite against a real server,
// schema isolation, append-only history, the lock as a lease with a fence,
// concurrent writers, encryption, and passwords kept out of messages.
//
// They need a server: scripts/postgres-test.sh starts one
// (tests/fixtures/postgres.sh) and sets PLINTH_TEST_PG_URL and PGPASSWORD;
// without it every test here is skipped.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <set>
#include <thread>

#include "runtime/state/lock.h"
#include "runtime/state/sql.h"
#include "runtime/state/state_store.h"

namespace plinth::state {
namespace {

std::string TestUrl() {
  const char* url = std::getenv("PLINTH_TEST_PG_URL");
  return url ? url : "";
}

// A URL whose schema prefix no other test uses, so tests never share state.
std::string FreshBackend() {
  static std::atomic<int> n{0};
  std::random_device rd;
  return TestUrl() + "?schema=t" + std::to_string(rd() % 1000000) + "_" + std::to_string(n++);
}

ResourceRecord Bucket(const std::string& address, const std::string& id) {
  ResourceRecord r;
  r.address = address;
  r.type = "bucket";
  r.provider = "local";
  r.id = id;
  r.attributes = {{"name", Value::String(id)}, {"quota", Value::Size(1073741824.0)}};
  return r;
}

class PostgresStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TestUrl().empty()) GTEST_SKIP() << "PLINTH_TEST_PG_URL is not set (scripts/postgres-test.sh sets it)";
    backend_ = FreshBackend();
  }
  std::unique_ptr<StateStore> Open(const std::string& workspace = "default", OpenMode mode = OpenMode::kCreate,
                                   std::optional<std::array<uint8_t, 32>> key = std::nullopt,
                                   int64_t lease_ms = 60000) {
    StoreOptions o;
    o.backend = backend_;
    o.mode = mode;
    o.encryption_key = key;
    o.lease_ms = lease_ms;
    auto store = StateStore::OpenWorkspace("/nonexistent-dir-for-postgres", workspace, o);
    EXPECT_TRUE(store.ok()) << (store.ok() ? "" : store.error().message);
    return store.ok() ? std::move(store.value()) : nullptr;
  }
  // Applies one create of `address` as apply does.
  static void Create(StateStore& s, const std::string& address) {
    auto serial = s.BeginApply("apply", "digest");
    ASSERT_TRUE(serial.ok()) << serial.error().message;
    auto intent = s.RecordIntent(serial.value(), address, Action::kCreate, Bucket(address, address + "-id"));
    ASSERT_TRUE(intent.ok()) << intent.error().message;
    IntentOutcome done;
    done.resource = Bucket(address, address + "-id");
    ASSERT_TRUE(s.CompleteIntent(intent.value(), done).ok());
    ASSERT_TRUE(s.FinishApply(serial.value(), ApplyStatus::kSucceeded).ok());
  }
  std::string backend_;
};

TEST_F(PostgresStateTest, ApplyJournalHistoryAndReopen) {
  auto s = Open();
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->postgres());
  auto serial = s->BeginApply("apply", "d1", R"({"commit":"abc"})");
  ASSERT_TRUE(serial.ok()) << serial.error().message;
  EXPECT_EQ(serial.value(), 1);
  auto intent = s->RecordIntent(1, "bucket.a", Action::kCreate, Bucket("bucket.a", "a"));
  ASSERT_TRUE(intent.ok()) << intent.error().message;
  // A killed process leaves the intent open: a second connection sees it.
  {
    auto other = Open("default", OpenMode::kExisting);
    auto open = other->OpenIntents();
    ASSERT_TRUE(open.ok());
    ASSERT_EQ(open->size(), 1u);
    EXPECT_EQ(open.value()[0].address, "bucket.a");
  }
  IntentOutcome done;
  done.resource = Bucket("bucket.a", "a");
  ASSERT_TRUE(s->CompleteIntent(intent.value(), done).ok());
  EXPECT_EQ(s->CompleteIntent(intent.value(), done).error().code, ErrorCode::kConflict);
  ASSERT_TRUE(s->FinishApply(1, ApplyStatus::kSucceeded).ok());
  Create(*s, "bucket.b");
  ASSERT_TRUE(s->StateMv("bucket.b", "bucket.c").ok());

  auto again = Open("default", OpenMode::kExisting);
  auto resources = again->Resources();
  ASSERT_TRUE(resources.ok());
  ASSERT_EQ(resources->size(), 2u);
  EXPECT_EQ(resources.value()[0].address, "bucket.a");
  EXPECT_EQ(resources.value()[1].address, "bucket.c");
  EXPECT_EQ(resources.value()[0].attributes.at("name").as_string(), "a");
  auto history = again->History();
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 4u);  // create a, create b, mv b->c (delete + create)
  for (size_t i = 1; i < history->size(); ++i) EXPECT_GT(history.value()[i].seq, history.value()[i - 1].seq);
  auto at1 = again->ResourcesAt(1);
  ASSERT_TRUE(at1.ok());
  ASSERT_EQ(at1->size(), 1u);
  auto serials = again->Serials();
  ASSERT_TRUE(serials.ok());
  ASSERT_EQ(serials->size(), 3u);
  EXPECT_EQ(serials.value()[0].source, R"({"commit":"abc"})");
  EXPECT_TRUE(again->OpenIntents()->empty());
  auto exported = again->ExportJson();
  ASSERT_TRUE(exported.ok());
  EXPECT_EQ(exported.value()["serial"], 3);
}

TEST_F(PostgresStateTest, MissingWorkspaceIsNotCreatedAndNamesTheOthers) {
  auto s = Open("prod");
  ASSERT_NE(s, nullptr);
  StoreOptions o;
  o.backend = backend_;
  o.mode = OpenMode::kExisting;
  auto missing = StateStore::OpenWorkspace("/x", "prdo", o);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::kNotFound);
  EXPECT_NE(missing.error().message.find("prod"), std::string::npos) << missing.error().message;
  auto names = StateStore::PostgresWorkspaces(backend_);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(names.value(), std::vector<std::string>{"prod"});
}

TEST_F(PostgresStateTest, WorkspacesAndPrefixesAreIsolated) {
  auto a = Open("a");
  auto b = Open("b");
  Create(*a, "bucket.only_in_a");
  EXPECT_TRUE(b->Resources()->empty());
  EXPECT_EQ(b->CurrentSerial().value(), 0);
  // A lock on one workspace does not block another.
  auto la = WorkspaceLock::Acquire(*a, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(la.ok());
  auto lb = WorkspaceLock::Acquire(*b, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(lb.ok()) << lb.error().message;
  Create(*b, "bucket.only_in_b");
  EXPECT_EQ(a->Resources()->size(), 1u);
  ASSERT_TRUE(WorkspaceLock::Release(*a, la->id).ok());
  ASSERT_TRUE(WorkspaceLock::Release(*b, lb->id).ok());
  // The same workspace name under another prefix is another state.
  backend_ = FreshBackend();
  auto other = Open("a");
  EXPECT_TRUE(other->Resources()->empty());
}

TEST_F(PostgresStateTest, HistoryIsAppendOnly) {
  auto s = Open();
  Create(*s, "bucket.a");
  auto url = ParseBackendUrl(backend_);
  ASSERT_TRUE(url.ok());
  auto db = OpenPostgres(url->conninfo, StateStore::PostgresSchema(url->schema_prefix, "default"));
  ASSERT_TRUE(db.ok()) << db.error().message;
  Status update = db.value()->Exec("UPDATE history SET address = 'bucket.x'", "rewrite history");
  ASSERT_FALSE(update.ok());
  EXPECT_NE(update.error().message.find("append-only"), std::string::npos) << update.error().message;
  EXPECT_FALSE(db.value()->Exec("DELETE FROM history", "delete history").ok());
  EXPECT_EQ(s->History()->size(), 1u);
}

TEST_F(PostgresStateTest, SecondApplierIsRefusedNamingTheRealHolder) {
  auto a = Open();
  auto b = Open("default", OpenMode::kExisting);
  LockHolder elsewhere = WorkspaceLock::ThisProcess("apply");
  elsewhere.host = "ci-runner-7";
  elsewhere.pid = 4242;
  elsewhere.machine_id = "0123456789abcdef0123456789abcdef";  // another machine: not checkable from here
  auto held = WorkspaceLock::Acquire(*a, elsewhere);
  ASSERT_TRUE(held.ok()) << held.error().message;
  auto refused = WorkspaceLock::Acquire(*b, WorkspaceLock::ThisProcess("plan"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  EXPECT_NE(refused.error().message.find("pid 4242 on ci-runner-7"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("lease"), std::string::npos) << refused.error().message;
  ASSERT_TRUE(refused.error().holder.has_value());
  EXPECT_EQ(refused.error().holder->id, held->id);
  ASSERT_TRUE(WorkspaceLock::Release(*a, held->id).ok());
  EXPECT_TRUE(WorkspaceLock::Acquire(*b, WorkspaceLock::ThisProcess("plan")).ok());
}

TEST_F(PostgresStateTest, RenewedLeaseHoldsAndAnAbandonedOneExpires) {
  LockHolder elsewhere = WorkspaceLock::ThisProcess("apply");
  elsewhere.host = "builder-2";
  elsewhere.machine_id = "fedcba9876543210fedcba9876543210";
  auto a = Open("default", OpenMode::kCreate, std::nullopt, /*lease_ms=*/600);
  auto b = Open("default", OpenMode::kExisting, std::nullopt, 600);
  auto held = WorkspaceLock::Acquire(*a, elsewhere);
  ASSERT_TRUE(held.ok());
  // Renewed every 200 ms: still held after three lease lengths.
  std::this_thread::sleep_for(std::chrono::milliseconds(1800));
  EXPECT_EQ(WorkspaceLock::Acquire(*b, WorkspaceLock::ThisProcess("apply")).error().code, ErrorCode::kLockHeld);
  // The holder goes away without releasing (its renewer stops with it).
  a.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  auto taken = WorkspaceLock::Acquire(*b, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  ASSERT_TRUE(taken->taken_over.has_value());
  EXPECT_EQ(taken->taken_over->holder.host, "builder-2");
}

TEST_F(PostgresStateTest, DeposedHolderWritesNothing) {
  auto a = Open();
  auto b = Open("default", OpenMode::kExisting);
  auto held = WorkspaceLock::Acquire(*a, WorkspaceLock::ThisProcess("apply"));
  ASSERT_TRUE(held.ok());
  auto serial = a->BeginApply("apply", "d");
  ASSERT_TRUE(serial.ok());
  // An operator breaks the lock and another applier takes it.
  ASSERT_TRUE(WorkspaceLock::ForceUnlock(*b, held->id).ok());
  LockHolder other = WorkspaceLock::ThisProcess("apply");
  other.host = "other-host";
  other.machine_id = "00000000000000000000000000000001";
  auto second = WorkspaceLock::Acquire(*b, other);
  ASSERT_TRUE(second.ok()) << second.error().message;
  auto intent = a->RecordIntent(serial.value(), "bucket.late", Action::kCreate, Bucket("bucket.late", "x"));
  ASSERT_FALSE(intent.ok());
  EXPECT_EQ(intent.error().code, ErrorCode::kLockHeld);
  EXPECT_NE(intent.error().message.find("other-host"), std::string::npos) << intent.error().message;
  EXPECT_TRUE(b->OpenIntents()->empty());
}

TEST_F(PostgresStateTest, ConcurrentWritersNeverShareAKey) {
  auto s = Open();
  auto serial = s->BeginApply("apply", "d");
  ASSERT_TRUE(serial.ok());
  // Threads of one store (group commit) and a second connection at once.
  auto second = Open("default", OpenMode::kExisting);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      StateStore& store = t % 2 ? *second : *s;
      for (int i = 0; i < 20; ++i) {
        const std::string address = "bucket.b" + std::to_string(t) + "_" + std::to_string(i);
        auto intent = store.RecordIntent(serial.value(), address, Action::kCreate, Bucket(address, address));
        IntentOutcome done;
        done.resource = Bucket(address, address);
        if (!intent.ok() || !store.CompleteIntent(intent.value(), done).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  auto history = s->History();
  ASSERT_TRUE(history.ok()) << history.error().message;
  EXPECT_EQ(history->size(), 160u);
  std::set<int64_t> seqs;
  for (const auto& h : history.value()) seqs.insert(h.seq);
  EXPECT_EQ(seqs.size(), 160u);
  EXPECT_EQ(s->Resources()->size(), 160u);
}

TEST_F(PostgresStateTest, EncryptedStateNeedsItsKey) {
  std::array<uint8_t, 32> key{};
  key.fill(7);
  auto s = Open("default", OpenMode::kCreate, key);
  Create(*s, "bucket.secret");
  StoreOptions o;
  o.backend = backend_;
  o.mode = OpenMode::kExisting;
  auto no_key = StateStore::OpenWorkspace("/x", "default", o);
  ASSERT_FALSE(no_key.ok());
  EXPECT_EQ(no_key.error().code, ErrorCode::kKeyRequired);
  std::array<uint8_t, 32> wrong{};
  wrong.fill(8);
  o.encryption_key = wrong;
  EXPECT_EQ(StateStore::OpenWorkspace("/x", "default", o).error().code, ErrorCode::kWrongKey);
  auto again = Open("default", OpenMode::kExisting, key);
  ASSERT_EQ(again->Resources()->size(), 1u);
  // The attributes are sealed: the row holds no plain value.
  auto url = ParseBackendUrl(backend_);
  auto db = OpenPostgres(url->conninfo, StateStore::PostgresSchema(url->schema_prefix, "default"));
  ASSERT_TRUE(db.ok());
  auto q = db.value()->Prepare("SELECT attributes FROM resources");
  ASSERT_EQ(q->Step(), kRow);
  EXPECT_EQ(q->Blob(0).find("bucket.secret-id"), std::string::npos);
}

TEST_F(PostgresStateTest, PasswordsNeverAppearInMessages) {
  StoreOptions o;
  o.backend = "postgresql://plinth:hunter2-secret@127.0.0.1:1/plinth";
  auto refused = StateStore::OpenWorkspace("/x", "default", o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kIo);
  EXPECT_EQ(refused.error().message.find("hunter2"), std::string::npos) << refused.error().message;
  EXPECT_NE(refused.error().message.find("plinth:***@127.0.0.1:1"), std::string::npos) << refused.error().message;
  EXPECT_EQ(RedactConnInfo("host=h password=pw1 user=u"), "host=h password=*** user=u");
  EXPECT_EQ(RedactConnInfo("postgres://u@h/db?password=pw2&sslmode=require"),
            "postgres://u@h/db?password=***&sslmode=require");
  o.backend = TestUrl() + "?schema=bad-prefix";
  EXPECT_EQ(StateStore::OpenWorkspace("/x", "default", o).error().code, ErrorCode::kInvalidArgument);
  o.backend = "mysql://nope";
  EXPECT_EQ(StateStore::OpenWorkspace("/x", "default", o).error().code, ErrorCode::kInvalidArgument);
}

TEST_F(PostgresStateTest, ALostConnectionIsReestablishedBetweenTransactions) {
  auto s = Open();
  Create(*s, "bucket.a");
  auto url = ParseBackendUrl(backend_);
  auto admin = OpenPostgres(url->conninfo, "public");
  ASSERT_TRUE(admin.ok());
  // The server ends every other Plinth connection (a restart, a failover).
  ASSERT_TRUE(admin.value()
                  ->Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                         "'plinth' AND pid <> pg_backend_pid()",
                         "terminate")
                  .ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // The call that meets the broken connection fails (kIo, retryable); the next reconnects.
  auto first = s->Resources();
  if (!first.ok()) {
    EXPECT_EQ(first.error().code, ErrorCode::kIo) << first.error().message;
  }
  auto again = s->Resources();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->size(), 1u);
  Create(*s, "bucket.b");
  EXPECT_EQ(s->Resources()->size(), 2u);
}

TEST(PostgresUrlTest, SchemaPrefixIsPlinthsOwnParameter) {
  auto u = ParseBackendUrl("postgres://u@h:5432/db?sslmode=verify-full&schema=team_a");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->conninfo, "postgres://u@h:5432/db?sslmode=verify-full");
  EXPECT_EQ(u->schema_prefix, "team_a");
  auto plain = ParseBackendUrl("postgres://u@h/db");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->schema_prefix, "plinth");
  EXPECT_FALSE(ParseBackendUrl("postgres://u@h/db?schema=a;drop").ok());
  EXPECT_EQ(QuoteIdentifier("a\"b"), "\"a\"\"b\"");
}

}  // namespace
}  // namespace plinth::state
