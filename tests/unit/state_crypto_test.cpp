// Tests for what encryption of the state store authenticates (docs/state.md,
// "Threat model"): each sealed blob is bound to its row's identity columns,
// so a blob copied into another row, an older blob replayed into its row, or
// a changed column fails with an error naming the address; and schema
// version 1 files (blobs bound to the address only) are migrated on open.
// The attacker is simulated by writing the SQLite file directly.

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/state/lock.h"
#include "runtime/state/state_store.h"

namespace plinth::state {
namespace {

namespace fs = std::filesystem;

using Key = std::array<uint8_t, 32>;

// A format-1 blob as schema version 1 sealed it: associated data
// "plinth-state-v1\0<address>", the header not authenticated.
std::string SealV1(const Key& key, const std::string& address, const std::string& plain) {
  std::string aad = std::string("plinth-state-v1") + '\0' + address;
  std::string blob(17 + plain.size() + 16, '\0');
  auto* p = reinterpret_cast<unsigned char*>(blob.data());
  p[0] = 1;
  p[4] = 1;  // key version 1
  RAND_bytes(p + 5, 12);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  int len = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr);
  EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), p + 5);
  EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                    static_cast<int>(aad.size()));
  EVP_EncryptUpdate(ctx, p + 17, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                    static_cast<int>(plain.size()));
  EVP_EncryptFinal_ex(ctx, p + 17 + len, &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, p + 17 + plain.size());
  EVP_CIPHER_CTX_free(ctx);
  return blob;
}

class StateCryptoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "plinth-state-crypto-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    for (size_t i = 0; i < key_.size(); ++i) key_[i] = static_cast<uint8_t>(i * 7 + 3);
  }
  void TearDown() override {
    if (db_) sqlite3_close(db_);
    fs::remove_all(dir_);
  }

  std::unique_ptr<StateStore> Open() {
    StoreOptions o;
    o.encryption_key = key_;
    auto s = StateStore::OpenWorkspace(dir_.string(), "default", o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s.value()) : nullptr;
  }
  fs::path DbPath() const { return dir_ / ".plinth" / "default" / "state.db"; }

  // The attacker's handle on the file.
  sqlite3* Db() {
    if (!db_) {
      EXPECT_EQ(sqlite3_open(DbPath().c_str(), &db_), SQLITE_OK);
    }
    return db_;
  }
  void Sql(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(Db(), sql.c_str(), nullptr, nullptr, &err);
    std::string message = err ? err : "";
    sqlite3_free(err);
    ASSERT_EQ(rc, SQLITE_OK) << message << "\n" << sql;
  }
  std::string BlobAt(const std::string& sql) {
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(Db(), sql.c_str(), -1, &q, nullptr), SQLITE_OK);
    std::string out;
    if (sqlite3_step(q) == SQLITE_ROW) {
      out.assign(static_cast<const char*>(sqlite3_column_blob(q, 0)), sqlite3_column_bytes(q, 0));
    }
    sqlite3_finalize(q);
    return out;
  }
  void SetBlob(const std::string& sql, const std::string& blob) {
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(Db(), sql.c_str(), -1, &q, nullptr), SQLITE_OK);
    sqlite3_bind_blob(q, 1, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
  }
  std::string Meta(const std::string& key) {
    sqlite3_stmt* q = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(Db(), "SELECT value FROM meta WHERE key = ?", -1, &q, nullptr), SQLITE_OK);
    sqlite3_bind_text(q, 1, key.c_str(), -1, SQLITE_TRANSIENT);
    std::string out;
    if (sqlite3_step(q) == SQLITE_ROW) out = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return out;
  }

  static ResourceRecord Bucket(const std::string& address, const std::string& id, const std::string& owner) {
    ResourceRecord r;
    r.address = address;
    r.type = "bucket";
    r.provider = "local";
    r.id = id;
    r.attributes = {{"name", Value::String(id)}, {"owner", Value::String(owner)}};
    r.dependencies = {"region.eu"};
    return r;
  }
  static void Apply(StateStore& s, Action action, const ResourceRecord& r) {
    auto serial = s.BeginApply("apply", "digest");
    ASSERT_TRUE(serial.ok());
    auto id = s.RecordIntent(serial.value(), r.address, action, r);
    ASSERT_TRUE(id.ok()) << id.error().message;
    IntentOutcome outcome;
    if (action != Action::kDelete) outcome.resource = r;
    Status done = s.CompleteIntent(id.value(), outcome);
    ASSERT_TRUE(done.ok()) << done.error().message;
    ASSERT_TRUE(s.FinishApply(serial.value(), ApplyStatus::kSucceeded).ok());
  }
  // The error says the state was tampered with, names the address and
  // quotes no value.
  static void ExpectTampered(const Error& e, const std::string& address) {
    EXPECT_EQ(e.code, ErrorCode::kCorrupt);
    EXPECT_NE(e.message.find("damaged or tampered"), std::string::npos) << e.message;
    EXPECT_NE(e.message.find("'" + address + "'"), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("alice"), std::string::npos) << e.message;
    EXPECT_EQ(e.message.find("mallory"), std::string::npos) << e.message;
  }

  fs::path dir_;
  Key key_{};
  sqlite3* db_ = nullptr;
};

TEST_F(StateCryptoTest, OlderResourceBlobReplayedIntoItsRowFails) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "mallory"));
  }
  std::string old = BlobAt("SELECT attributes FROM resources WHERE address = 'bucket.a'");
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kUpdate, Bucket("bucket.a", "a", "alice"));
  }
  SetBlob("UPDATE resources SET attributes = ? WHERE address = 'bucket.a'", old);
  auto s = Open();
  ASSERT_TRUE(s);
  auto r = s->Resource("bucket.a");
  ASSERT_FALSE(r.ok());
  ExpectTampered(r.error(), "bucket.a");
  auto all = s->Resources();
  ASSERT_FALSE(all.ok());
  ExpectTampered(all.error(), "bucket.a");
}

TEST_F(StateCryptoTest, EveryIdentityColumnOfAResourceRowIsBound) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "alice"));
  }
  for (const char* change :
       {"type = 'region'", "provider = 'other'", "id = 'b'", "dependencies = '[\"region.us\"]'",
        "dependencies = '[]'", "serial_created = 7", "serial_updated = 7"}) {
    SCOPED_TRACE(change);
    Sql("CREATE TEMP TABLE saved AS SELECT * FROM resources");
    Sql(std::string("UPDATE resources SET ") + change + " WHERE address = 'bucket.a'");
    auto s = Open();
    ASSERT_TRUE(s);
    auto r = s->Resource("bucket.a");
    ASSERT_FALSE(r.ok());
    ExpectTampered(r.error(), "bucket.a");
    s.reset();
    Sql("DELETE FROM resources; INSERT INTO resources SELECT * FROM saved; DROP TABLE saved");
  }
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Resource("bucket.a").ok());
}

TEST_F(StateCryptoTest, ResourceBlobMovedToAnotherAddressFails) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "alice"));
  }
  // The whole row under another address.
  Sql("INSERT INTO resources SELECT 'bucket.b', type, provider, id, attributes, dependencies, "
      "serial_created, "
      "serial_updated FROM resources WHERE address = 'bucket.a'");
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Resource("bucket.a").ok());
  auto r = s->Resource("bucket.b");
  ASSERT_FALSE(r.ok());
  ExpectTampered(r.error(), "bucket.b");
}

TEST_F(StateCryptoTest, HistoryBlobCopiedIntoAnotherHistoryRowFails) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "mallory"));
    Apply(*s, Action::kUpdate, Bucket("bucket.a", "a", "alice"));
    ASSERT_EQ(s->History("bucket.a").value().size(), 2u);
  }
  // Same address, older row: seq 1's after replaces seq 2's after.
  std::string first_after = BlobAt("SELECT after FROM history WHERE seq = 1");
  SetBlob("UPDATE history SET after = ? WHERE seq = 2", first_after);
  auto s = Open();
  ASSERT_TRUE(s);
  auto h = s->History("bucket.a");
  ASSERT_FALSE(h.ok());
  ExpectTampered(h.error(), "bucket.a");
  auto at = s->ResourcesAt(2);
  ASSERT_FALSE(at.ok());
  ExpectTampered(at.error(), "bucket.a");
}

TEST_F(StateCryptoTest, HistoryActionSerialAndSideAreBound) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "alice"));
    Apply(*s, Action::kUpdate, Bucket("bucket.a", "a", "alice"));
  }
  for (const char* change : {"action = 'create' WHERE seq = 2", "serial = 1 WHERE seq = 2",
                             "before = after WHERE seq = 2", "at_ms = 5 WHERE seq = 2"}) {
    SCOPED_TRACE(change);
    Sql("CREATE TEMP TABLE saved AS SELECT * FROM history");
    Sql(std::string("UPDATE history SET ") + change);
    auto s = Open();
    ASSERT_TRUE(s);
    auto h = s->History();
    ASSERT_FALSE(h.ok());
    ExpectTampered(h.error(), "bucket.a");
    s.reset();
    Sql("DELETE FROM history; INSERT INTO history SELECT * FROM saved; DROP TABLE saved");
  }
  auto s = Open();
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->History().ok());
}

TEST_F(StateCryptoTest, IntentBlobCopiedToAnotherIntentFails) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    auto serial = s->BeginApply("apply", "d");
    ASSERT_TRUE(serial.ok());
    ASSERT_TRUE(
        s->RecordIntent(serial.value(), "bucket.a", Action::kCreate, Bucket("bucket.a", "a", "alice")).ok());
    ASSERT_TRUE(
        s->RecordIntent(serial.value(), "bucket.a", Action::kDelete, Bucket("bucket.a", "a", "alice")).ok());
    ASSERT_EQ(s->OpenIntents().value().size(), 2u);
  }
  SetBlob("UPDATE intents SET planned = ? WHERE id = 2", BlobAt("SELECT planned FROM intents WHERE id = 1"));
  auto s = Open();
  ASSERT_TRUE(s);
  auto open = s->OpenIntents();
  ASSERT_FALSE(open.ok());
  ExpectTampered(open.error(), "bucket.a");
}

TEST_F(StateCryptoTest, ForgedKeyVersionInARecordFails) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "alice"));
  }
  std::string blob = BlobAt("SELECT attributes FROM resources WHERE address = 'bucket.a'");
  ASSERT_EQ(blob[0], 2);  // blob format 2
  blob[4] = 2;            // key version 1 -> 2
  SetBlob("UPDATE resources SET attributes = ? WHERE address = 'bucket.a'", blob);
  auto s = Open();
  ASSERT_TRUE(s);
  auto r = s->Resource("bucket.a");
  ASSERT_FALSE(r.ok());
  ExpectTampered(r.error(), "bucket.a");
}

// A schema-1 blob (bound to the address only) is not accepted in a schema-2
// file: an old copy of a row cannot be brought back that way either.
TEST_F(StateCryptoTest, Format1BlobInASchema2FileIsRefused) {
  {
    auto s = Open();
    ASSERT_TRUE(s);
    Apply(*s, Action::kCreate, Bucket("bucket.a", "a", "alice"));
  }
  SetBlob("UPDATE resources SET attributes = ? WHERE address = 'bucket.a'",
          SealV1(key_, "bucket.a", R"({"name":"a","owner":"mallory"})"));
  auto s = Open();
  ASSERT_TRUE(s);
  auto r = s->Resource("bucket.a");
  ASSERT_FALSE(r.ok());
  ExpectTampered(r.error(), "bucket.a");
}

// ---- schema version 1 files

class StateMigrationTest : public StateCryptoTest {
 protected:
  // Rewrites a fresh state file into what schema version 1 wrote: the old
  // lock table, format-1 blobs bound to the address, version 1 in meta.
  void MakeV1File(bool encrypted) {
    {
      StoreOptions o;
      if (encrypted) o.encryption_key = key_;
      auto s = StateStore::OpenWorkspace(dir_.string(), "default", o);
      ASSERT_TRUE(s.ok());
    }
    auto seal = [&](const std::string& address, const std::string& plain) {
      return encrypted ? SealV1(key_, address, plain) : plain;
    };
    const std::string record =
        R"({"type":"bucket","provider":"local","id":"a","attributes":{"name":"a","owner":"alice"},)"
        R"("dependencies":["region.eu"],"serial_created":1,"serial_updated":1})";
    Sql("DROP TABLE lock; CREATE TABLE lock (singleton INTEGER PRIMARY KEY CHECK (singleton = 1), id TEXT "
        "NOT "
        "NULL, pid INTEGER NOT NULL, host TEXT NOT NULL, command TEXT NOT NULL, since_ms INTEGER NOT NULL, "
        "boot_id TEXT NOT NULL, start_time TEXT NOT NULL);"
        "ALTER TABLE serials DROP COLUMN source;"
        "INSERT INTO serials VALUES (1, 1000, 2000, 'succeeded', 'apply', 'd'), (2, 3000, 0, 'running', "
        "'apply', 'd');"
        "UPDATE meta SET value = '1' WHERE key = 'schema_version'; PRAGMA user_version = 1;");
    SetBlob("INSERT INTO resources VALUES ('bucket.a', 'bucket', 'local', 'a', ?, '[\"region.eu\"]', 1, 1)",
            seal("bucket.a", R"({"name":"a","owner":"alice"})"));
    SetBlob(
        "INSERT INTO history(serial, address, action, before, after, at_ms) VALUES (1, 'bucket.a', 'create', "
        "NULL, ?, 1500)",
        seal("bucket.a", record));
    SetBlob(
        "INSERT INTO intents(serial, address, action, planned, started_ms, status) VALUES (2, 'bucket.a', "
        "'update', ?, 3100, 'open')",
        seal("bucket.a", record));
    // A lock left by schema version 1: no machine id.
    Sql("INSERT INTO lock VALUES (1, '0123456789abcdef0123456789abcdef', 1, 'oldhost', 'apply', 1, 'b', "
        "'s')");
    sqlite3_close(db_);
    db_ = nullptr;
  }
  std::unique_ptr<StateStore> OpenWith(bool encrypted) {
    StoreOptions o;
    if (encrypted) o.encryption_key = key_;
    auto s = StateStore::OpenWorkspace(dir_.string(), "default", o);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    return s.ok() ? std::move(s.value()) : nullptr;
  }
};

TEST_F(StateMigrationTest, EncryptedSchema1FileIsMigratedOnOpen) {
  MakeV1File(/*encrypted=*/true);
  auto s = OpenWith(true);
  ASSERT_TRUE(s);
  EXPECT_EQ(Meta("schema_version"), "3");
  auto r = s->Resource("bucket.a");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value()->attributes.at("owner").as_string(), "alice");
  auto h = s->History("bucket.a");
  ASSERT_TRUE(h.ok()) << h.error().message;
  ASSERT_EQ(h.value().size(), 1u);
  EXPECT_EQ(h.value()[0].after->id, "a");
  auto open = s->OpenIntents();
  ASSERT_TRUE(open.ok()) << open.error().message;
  ASSERT_EQ(open.value().size(), 1u);
  EXPECT_EQ(open.value()[0].planned.attributes.at("owner").as_string(), "alice");
  // Every blob was re-sealed in format 2, bound to its row.
  EXPECT_EQ(BlobAt("SELECT attributes FROM resources")[0], 2);
  EXPECT_EQ(BlobAt("SELECT after FROM history")[0], 2);
  EXPECT_EQ(BlobAt("SELECT planned FROM intents")[0], 2);
  // New writes continue the sequences.
  Apply(*s, Action::kUpdate, Bucket("bucket.a", "a", "bob"));
  EXPECT_EQ(s->History("bucket.a").value().size(), 2u);
  // The old lock row has no machine id: refused until force-unlocked.
  auto refused = WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kLockHeld);
  EXPECT_NE(refused.error().message.find("force-unlock 0123456789abcdef0123456789abcdef"), std::string::npos);
  ASSERT_TRUE(WorkspaceLock::ForceUnlock(*s, "0123456789abcdef0123456789abcdef").ok());
  EXPECT_TRUE(WorkspaceLock::Acquire(*s, WorkspaceLock::ThisProcess("apply")).ok());
  s.reset();
  auto again = OpenWith(true);  // a migrated file opens as it is
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->Resources().ok());
}

TEST_F(StateMigrationTest, PlainSchema1FileIsMigratedOnOpen) {
  MakeV1File(/*encrypted=*/false);
  auto s = OpenWith(false);
  ASSERT_TRUE(s);
  EXPECT_EQ(Meta("schema_version"), "3");
  EXPECT_TRUE(s->Resources().ok());
  auto lock = WorkspaceLock::Current(*s);
  ASSERT_TRUE(lock.ok()) << lock.error().message;
  EXPECT_EQ(lock.value()->holder.machine_id, "");
}

TEST_F(StateMigrationTest, Schema2FileGainsSerialSourcesOnOpen) {
  {
    auto s = OpenWith(false);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->BeginApply("apply", "d1").ok());
  }
  Sql("ALTER TABLE serials DROP COLUMN source; UPDATE meta SET value = '2' WHERE key = 'schema_version'; "
      "PRAGMA user_version = 2;");
  sqlite3_close(db_);
  db_ = nullptr;
  auto s = OpenWith(false);
  ASSERT_TRUE(s);
  EXPECT_EQ(Meta("schema_version"), "3");
  auto serials = s->Serials();
  ASSERT_TRUE(serials.ok()) << serials.error().message;
  ASSERT_EQ(serials.value().size(), 1u);
  EXPECT_EQ(serials.value()[0].source, "");
  auto begun = s->BeginApply("apply", "d2", R"({"commit":"abc"})");
  ASSERT_TRUE(begun.ok()) << begun.error().message;
  EXPECT_EQ(s->Serials().value().back().source, R"({"commit":"abc"})");
}

TEST_F(StateMigrationTest, TamperedSchema1RecordStopsTheMigrationAndChangesNothing) {
  MakeV1File(/*encrypted=*/true);
  std::string blob = BlobAt("SELECT after FROM history");
  blob[20] ^= 1;
  SetBlob("UPDATE history SET after = ?", blob);
  sqlite3_close(db_);
  db_ = nullptr;
  StoreOptions o;
  o.encryption_key = key_;
  auto s = StateStore::OpenWorkspace(dir_.string(), "default", o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kCorrupt);
  EXPECT_NE(s.error().message.find("cannot migrate"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("'bucket.a'"), std::string::npos) << s.error().message;
  EXPECT_EQ(Meta("schema_version"), "1");
  EXPECT_EQ(BlobAt("SELECT attributes FROM resources")[0], 1);
}

}  // namespace
}  // namespace plinth::state
