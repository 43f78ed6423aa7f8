// The restic backup engine (runtime/storage/backup.h) against the real restic
// binary, a declared dependency: these tests fail, not skip, without it.
// Fake restic scripts stand in where restic cannot be made to misbehave
// (hanging, echoing the password).
#include "runtime/storage/backup.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/support/files.h"

namespace plinth::storage {
namespace {

namespace fs = std::filesystem;
using plinth::testing::ReadFile;
using plinth::testing::TempDir;
using plinth::testing::WriteFile;
using namespace std::chrono_literals;

constexpr const char* kPassword = "Zq7-correct-horse-battery-staple-91";

TimePoint At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.has_value()) << rfc3339;
  return t.value_or(TimePoint{});
}

// Every error a test sees goes through this: the password never shows.
void ExpectNoPassword(const BackupError& e, const std::string& password = kPassword) {
  EXPECT_EQ(e.message.find(password), std::string::npos) << e.message;
  for (const auto& d : e.details) EXPECT_EQ(d.find(password), std::string::npos) << d;
}

// The tree under `root`: relative path -> "dir" or "file:" + contents.
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    std::string rel = fs::relative(e.path(), root).string();
    out[rel] = e.is_directory() ? "dir" : "file:" + ReadFile(e.path());
  }
  return out;
}

std::string Binary(size_t n) {
  std::string s;
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s.push_back(static_cast<char>(x & 0xff));
  }
  s[7] = '\0';
  return s;
}

void MakeSource(const fs::path& src) {
  fs::create_directories(src / "nested" / "deeper");
  fs::create_directories(src / "empty-dir");
  WriteFile(src / "a.txt", "hello\n");
  WriteFile(src / "empty", "");
  WriteFile(src / "nested" / "b.txt", "in a nested dir\n");
  WriteFile(src / "nested" / "deeper" / "blob.bin", Binary(70000));
}

std::vector<std::string> Ids(const std::vector<Snapshot>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) out.push_back(FormatRfc3339(s.time));
  return out;
}

std::vector<fs::path> DataFiles(const fs::path& repo) {
  std::vector<fs::path> out;
  for (const auto& e : fs::recursive_directory_iterator(repo / "data"))
    if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// ------------------------------------------------------------------ a cheap key

// restic derives the key from the password with scrypt, calibrated at init to
// take about 0.5 s: on small test data that is most of every command. Like
// restic's own tests (TestUseLowSecurityKDFParameters), the template
// repository's key file is rewritten with cheap scrypt parameters: the same
// master key, sealed the way restic seals it (repository format, "Keys,
// Encryption, and MAC"): scrypt gives a 32-byte AES-256-CTR key and a
// Poly1305-AES key (k, r); data is nonce || ciphertext || MAC.

std::string Base64Decode(const std::string& in) {
  std::string out(in.size() / 4 * 3 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return {};
  size_t pad = 0;
  for (size_t i = in.size(); i > 0 && in[i - 1] == '='; --i) ++pad;
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string Base64Encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

const unsigned char* Bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

struct ResticKeys {
  std::string aes;    // 32 bytes
  std::string mac_k;  // 16 bytes
  std::string mac_r;  // 16 bytes
};

bool DeriveKeys(const std::string& password, const std::string& salt, uint64_t n, uint64_t r, uint64_t p,
                ResticKeys* keys) {
  unsigned char out[64];
  if (EVP_PBE_scrypt(password.data(), password.size(), Bytes(salt), salt.size(), n, r, p, 512ull << 20, out,
                     sizeof out) != 1) {
    return false;
  }
  keys->aes.assign(reinterpret_cast<char*>(out), 32);
  keys->mac_k.assign(reinterpret_cast<char*>(out) + 32, 16);
  keys->mac_r.assign(reinterpret_cast<char*>(out) + 48, 16);
  return true;
}

// AES-CTR and AES-ECB (one block) through EVP; empty on failure.
std::string AesRun(const EVP_CIPHER* cipher, const std::string& key, const std::string& iv,
                   const std::string& in) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::string out(in.size() + 16, '\0');
  int n1 = 0, n2 = 0;
  bool ok = EVP_EncryptInit_ex(ctx, cipher, nullptr, Bytes(key), iv.empty() ? nullptr : Bytes(iv)) == 1 &&
            EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
            EVP_EncryptUpdate(ctx, reinterpret_cast<unsigned char*>(out.data()), &n1, Bytes(in),
                              static_cast<int>(in.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(out.data()) + n1, &n2) == 1;
  EVP_CIPHER_CTX_free(ctx);
  if (!ok) return {};
  out.resize(static_cast<size_t>(n1 + n2));
  return out;
}

// restic's Poly1305-AES: the one-time key is r || AES-128_k(nonce).
std::string ResticMac(const ResticKeys& keys, const std::string& nonce, const std::string& msg) {
  std::string s = AesRun(EVP_aes_128_ecb(), keys.mac_k, "", nonce);
  if (s.size() != 16) return {};
  std::string one_time = keys.mac_r + s;
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "POLY1305", nullptr);
  if (!mac) return {};
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac);
  unsigned char out[16];
  size_t len = 0;
  bool ok = EVP_MAC_init(ctx, Bytes(one_time), one_time.size(), nullptr) == 1 &&
            EVP_MAC_update(ctx, Bytes(msg), msg.size()) == 1 &&
            EVP_MAC_final(ctx, out, &len, sizeof out) == 1;
  EVP_MAC_CTX_free(ctx);
  EVP_MAC_free(mac);
  return ok && len == 16 ? std::string(reinterpret_cast<char*>(out), 16) : std::string();
}

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n));
  return s;
}

// Replaces the repository's only key file by one with scrypt N=1024, r=8, p=1.
bool UseCheapKey(const fs::path& repo, const std::string& password, std::string* why) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(repo / "keys")) files.push_back(e.path());
  if (files.size() != 1) return *why = "expected one key file", false;
  nlohmann::json key = nlohmann::json::parse(ReadFile(files[0]), nullptr, false);
  if (!key.is_object() || key.value("kdf", "") != "scrypt") return *why = "not a scrypt key file", false;
  std::string data = Base64Decode(key.value("data", ""));
  if (data.size() < 32) return *why = "short key data", false;
  ResticKeys old;
  if (!DeriveKeys(password, Base64Decode(key.value("salt", "")), key.value("N", 0ull), key.value("r", 0ull),
                  key.value("p", 0ull), &old)) {
    return *why = "scrypt failed", false;
  }
  std::string nonce = data.substr(0, 16), sealed = data.substr(16, data.size() - 32),
              tag = data.substr(data.size() - 16);
  if (ResticMac(old, nonce, sealed) != tag) return *why = "the key's MAC does not verify", false;
  std::string master = AesRun(EVP_aes_256_ctr(), old.aes, nonce, sealed);  // CTR: encrypting decrypts

  std::string salt = RandomBytes(64);
  ResticKeys cheap;
  if (!DeriveKeys(password, salt, 1024, 8, 1, &cheap)) return *why = "scrypt failed", false;
  std::string new_nonce = RandomBytes(16);
  std::string new_sealed = AesRun(EVP_aes_256_ctr(), cheap.aes, new_nonce, master);
  key["N"] = 1024;
  key["r"] = 8;
  key["p"] = 1;
  key["salt"] = Base64Encode(salt);
  key["data"] = Base64Encode(new_nonce + new_sealed + ResticMac(cheap, new_nonce, new_sealed));
  std::string text = key.dump();
  unsigned char digest[32];
  SHA256(Bytes(text), text.size(), digest);
  std::string name;
  for (unsigned char c : digest) {
    char hex[3];
    std::snprintf(hex, sizeof hex, "%02x", c);
    name += hex;
  }
  WriteFile(repo / "keys" / name, text);
  fs::remove(files[0]);
  return true;
}

// One repository initialised per test binary and copied by each test:
// restic calibrates its key derivation at init (2-3 s); the copy's cheap key
// (above) makes later commands take about 0.1 s instead of 0.5-1 s.
const fs::path& TemplateRepository() {
  static TempDir dir("plinth-backup-template");
  static const bool made = [] {
    RepositoryOptions o;
    o.repository = (dir.path() / "repo").string();
    o.password = kPassword;
    auto repo = ResticRepository::Create(o);
    if (!repo.ok()) {
      ADD_FAILURE() << "restic is a declared dependency: " << repo.error().message;
      return false;
    }
    auto created = repo.value().Init();
    if (!created.ok()) {
      ADD_FAILURE() << created.error().message;
      return false;
    }
    EXPECT_EQ(created.value(), InitOutcome::kCreated);
    // Only a matter of speed: if restic ever stops accepting the rewritten
    // key, keep the original (a copy kept until restic has opened the new one).
    fs::path saved = dir.path() / "original-keys";
    fs::copy(dir.path() / "repo" / "keys", saved);
    std::string why;
    bool cheap = UseCheapKey(dir.path() / "repo", kPassword, &why);
    if (cheap) {
      auto check = repo.value().Snapshots();
      if (!check.ok()) why = check.error().message;
      cheap = check.ok();
    }
    if (!cheap) {
      std::fprintf(stderr, "note: restic tests run with restic's slow key (%s)\n", why.c_str());
      fs::remove_all(dir.path() / "repo" / "keys");
      fs::copy(saved, dir.path() / "repo" / "keys");
    }
    return true;
  }();
  static const fs::path path = made ? dir.path() / "repo" : fs::path();
  return path;
}

// A repository under a fresh temp dir, created with the real restic.
class ResticFixture : public ::testing::Test {
 protected:
  RepositoryOptions Options(const std::string& password = kPassword) {
    RepositoryOptions o;
    o.repository = (dir_.path() / "repo").string();
    o.password = password;
    o.cache_dir = dir_.path() / "cache";
    return o;
  }
  ResticRepository Open(const std::string& password = kPassword) {
    auto r = ResticRepository::Create(Options(password));
    // restic is a declared dependency: its absence is a failure, not a skip.
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
    if (!r.ok()) throw std::runtime_error("restic unavailable: " + r.error().message);
    return std::move(r).value();
  }
  ResticRepository Initialised() {
    const fs::path& from = TemplateRepository();
    if (from.empty()) throw std::runtime_error("no template repository");
    fs::copy(from, dir_.path() / "repo", fs::copy_options::recursive);
    return Open();
  }
  Snapshot BackupAt(const ResticRepository& repo, const fs::path& src, const char* when,
                    std::vector<std::string> tags = {"t"}) {
    BackupOptions bo;
    bo.tags = std::move(tags);
    bo.time = At(when);
    auto r = repo.Backup(src, bo);
    EXPECT_TRUE(r.ok()) << when << ": " << (r.ok() ? "" : r.error().message);
    return r.ok() ? r.value().snapshot : Snapshot{};
  }

  TempDir dir_{"plinth-backup"};
};

// ------------------------------------------------------------------ pure helpers

TEST(ResticTime, ParsesRfc3339WithFractionsAndOffsets) {
  using namespace std::chrono;
  TimePoint base = sys_days(year(2026) / 11 / 20) + 10h;
  EXPECT_EQ(ParseRfc3339("2026-11-20T10:00:00Z"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-20T11:30:00+01:30"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-20T05:00:00-05:00"), base);
  EXPECT_EQ(ParseRfc3339("2026-11-20T10:00:00.5Z"), base + 500ms);
  EXPECT_EQ(
      ParseRfc3339("2026-11-20T10:00:00.109262558Z"),
      base + time_point_cast<system_clock::duration>(sys_time<nanoseconds>(109262558ns)).time_since_epoch());
  EXPECT_EQ(ParseRfc3339("2026-11-20T10:00:00.123456789123+00:00"), base + 123456789ns);
  for (const char* bad : {"", "2026-11-20", "2026-11-20T10:00:00", "2026-13-01T00:00:00Z",
                          "2026-02-30T00:00:00Z", "2026-11-20T10:00:00.Z", "2026-11-20T10:00:00+0100",
                          "2026-11-20T10:00:00Zjunk", "2026-11-20T24:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339(bad).has_value()) << bad;
  }
  EXPECT_EQ(FormatRfc3339(base), "2026-11-20T10:00:00Z");
  EXPECT_EQ(FormatRfc3339(base + 250ms), "2026-11-20T10:00:00.25Z");
  EXPECT_EQ(FormatRfc3339(TimePoint{}), "1970-01-01T00:00:00Z");
  EXPECT_EQ(ParseRfc3339(FormatRfc3339(base + 1234567us)), base + 1234567us);
}

TEST(ResticTime, NewestAtOrBeforeAndBackupAge) {
  std::vector<Snapshot> snaps(3);
  snaps[0].id = "b";
  snaps[0].time = At("2026-11-20T12:00:00Z");
  snaps[1].id = "a";
  snaps[1].time = At("2026-11-18T12:00:00Z");
  snaps[2].id = "c";
  snaps[2].time = At("2026-11-19T12:00:00Z");
  EXPECT_FALSE(NewestAtOrBefore(snaps, At("2026-11-18T11:59:59Z")).has_value());
  EXPECT_EQ(NewestAtOrBefore(snaps, At("2026-11-18T12:00:00Z"))->id, "a");  // "at" counts
  EXPECT_EQ(NewestAtOrBefore(snaps, At("2026-11-20T11:59:59Z"))->id, "c");
  EXPECT_EQ(NewestAtOrBefore(snaps, At("2027-01-01T00:00:00Z"))->id, "b");
  EXPECT_FALSE(NewestAtOrBefore({}, At("2027-01-01T00:00:00Z")).has_value());

  EXPECT_FALSE(BackupAge(std::nullopt, At("2026-11-20T12:00:00Z")).has_value());
  EXPECT_EQ(BackupAge(At("2026-11-20T12:00:00Z"), At("2026-11-20T13:00:30Z")), 3630s);
}

// ------------------------------------------------------------------ without restic

TEST(ResticSetup, MissingBinaryIsAClearError) {
  RepositoryOptions o;
  o.repository = "/tmp/never-used";
  o.password = kPassword;
  o.restic_binary = "/nonexistent/bin/restic";
  auto r = ResticRepository::Create(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, BackupErrorCode::kResticMissing);
  EXPECT_NE(r.error().message.find("'/nonexistent/bin/restic' is not an executable file"), std::string::npos)
      << r.error().message;

  o.restic_binary = "plinth-no-such-restic";
  r = ResticRepository::Create(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, BackupErrorCode::kResticMissing);
  EXPECT_NE(r.error().message.find("restic is not installed: no 'plinth-no-such-restic' on PATH"),
            std::string::npos)
      << r.error().message;
  ExpectNoPassword(r.error());

  o.restic_binary.clear();
  o.password.clear();
  r = ResticRepository::Create(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, BackupErrorCode::kInvalidArgument);
}

TEST_F(ResticFixture, RejectsMalformedArgumentsBeforeRunningRestic) {
  ResticRepository repo = Open();  // no repository exists: nothing below may reach restic
  BackupOptions bo;
  bo.tags = {"a,b"};
  auto b = repo.Backup(dir_.path(), bo);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, BackupErrorCode::kInvalidArgument);
  EXPECT_EQ(repo.Backup(dir_.path() / "missing").error().code, BackupErrorCode::kIo);
  EXPECT_EQ(repo.Forget(KeepPolicy{}).error().code, BackupErrorCode::kInvalidArgument);
  KeepPolicy negative;
  negative.daily = -1;
  EXPECT_EQ(repo.Forget(negative).error().code, BackupErrorCode::kInvalidArgument);
  EXPECT_EQ(repo.Restore("--target=/", dir_.path() / "out").error().code, BackupErrorCode::kInvalidArgument);
  EXPECT_EQ(repo.Restore("XYZ", dir_.path() / "out").error().code, BackupErrorCode::kInvalidArgument);
  CheckOptions co;
  co.read_data_subset = "1/x";
  EXPECT_EQ(repo.Check(co).error().code, BackupErrorCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(dir_.path() / "repo"));
  EXPECT_FALSE(fs::exists(dir_.path() / "out"));
}

// A fake restic that records its argv and environment, then fails quoting
// the password: argv must not hold it, the environment must, and the error
// must not.
TEST(ResticChild, PasswordTravelsOnlyInTheEnvironment) {
  TempDir dir("plinth-backup");
  fs::path fake = dir.path() / "fake-restic";
  WriteFile(fake,
            "#!/bin/sh\n"
            "d=$(dirname \"$0\")\n"
            "printf '%s\\n' \"$@\" > \"$d/argv\"\n"
            "env > \"$d/env\"\n"
            "echo \"Fatal: cannot do it, password $RESTIC_PASSWORD rejected\" >&2\n"
            "exit 1\n");
  chmod(fake.c_str(), 0755);
  setenv("RESTIC_REPOSITORY", "/somewhere/else", 1);
  setenv("RESTIC_PASSWORD_FILE", "/somewhere/else/pw", 1);
  RepositoryOptions o;
  o.repository = (dir.path() / "repo").string();
  o.password = kPassword;
  o.restic_binary = fake.string();
  auto repo = ResticRepository::Create(o);
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  auto r = repo.value().Snapshots({"x"});
  unsetenv("RESTIC_REPOSITORY");
  unsetenv("RESTIC_PASSWORD_FILE");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, BackupErrorCode::kFailed);
  ExpectNoPassword(r.error());
  EXPECT_NE(r.error().message.find("password (sensitive) rejected"), std::string::npos) << r.error().message;

  std::string argv = ReadFile(dir.path() / "argv");
  EXPECT_EQ(argv.find(kPassword), std::string::npos) << argv;
  EXPECT_EQ(argv, "--repo=" + o.repository + "\n--no-cache\nsnapshots\n--json\n--tag=x\n");
  std::string env = ReadFile(dir.path() / "env");
  EXPECT_NE(env.find(std::string("RESTIC_PASSWORD=") + kPassword + "\n"), std::string::npos);
  EXPECT_NE(env.find("TZ=UTC\n"), std::string::npos);
  EXPECT_EQ(env.find("RESTIC_REPOSITORY"), std::string::npos);
  EXPECT_EQ(env.find("RESTIC_PASSWORD_FILE"), std::string::npos);
}

TEST(ResticChild, HungChildIsStoppedAtTheDeadline) {
  TempDir dir("plinth-backup");
  fs::path fake = dir.path() / "fake-restic";
  WriteFile(fake, "#!/bin/sh\nexec sleep 30\n");
  chmod(fake.c_str(), 0755);
  RepositoryOptions o;
  o.repository = (dir.path() / "repo").string();
  o.password = kPassword;
  o.restic_binary = fake.string();
  o.timeout = 1s;
  auto repo = ResticRepository::Create(o);
  ASSERT_TRUE(repo.ok()) << repo.error().message;
  auto start = std::chrono::steady_clock::now();
  auto r = repo.value().Check();
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, BackupErrorCode::kTimeout);
  EXPECT_TRUE(r.error().retryable);
  EXPECT_NE(r.error().message.find("did not finish within 1 s"), std::string::npos) << r.error().message;
  EXPECT_LT(took, 5s);
}

// ------------------------------------------------------------------ with restic

TEST_F(ResticFixture, BackupThenRestoreGivesAnIdenticalTree) {
  ResticRepository repo = Initialised();  // a copy of one Init() created (kCreated, checked there)
  auto again = repo.Init();
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again.value(), InitOutcome::kExisted);

  fs::path src = dir_.path() / "src";
  MakeSource(src);
  auto before = Tree(src);
  std::vector<BackupProgress> progress;
  BackupOptions bo;
  bo.tags = {"bucket-eu", "plinth"};
  bo.time = At("2026-11-20T10:00:00Z");
  bo.on_progress = [&](const BackupProgress& p) { progress.push_back(p); };
  auto b = repo.Backup(src, bo);
  ASSERT_TRUE(b.ok()) << b.error().message;
  const BackupStats& st = b.value();
  EXPECT_EQ(st.snapshot.id.size(), 64u);
  EXPECT_EQ(st.snapshot.short_id, st.snapshot.id.substr(0, 8));
  EXPECT_EQ(st.snapshot.time, At("2026-11-20T10:00:00Z"));
  EXPECT_EQ(st.snapshot.hostname, "plinth");
  EXPECT_EQ(st.snapshot.tags, (std::vector<std::string>{"bucket-eu", "plinth"}));
  EXPECT_EQ(st.snapshot.paths, (std::vector<std::string>{src.string()}));
  EXPECT_EQ(st.files_total, 4u);
  EXPECT_EQ(st.files_new, 4u);
  EXPECT_EQ(st.bytes_total, 6u + 16u + 70000u);
  EXPECT_GT(st.bytes_added, 0u);
  EXPECT_TRUE(st.unreadable.empty());
  for (const auto& p : progress) EXPECT_LE(p.fraction_done, 1.0);

  auto listed = repo.Snapshots({"plinth"});
  ASSERT_TRUE(listed.ok()) << listed.error().message;
  ASSERT_EQ(listed.value().size(), 1u);
  EXPECT_EQ(listed.value()[0].id, st.snapshot.id);
  EXPECT_TRUE(repo.Snapshots({"plinth", "other"}).value().empty());  // tags select with AND

  fs::remove_all(src);
  auto restored = repo.Restore(st.snapshot.short_id, src);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(restored.value().snapshot.id, st.snapshot.id);
  EXPECT_EQ(Tree(src), before);

  // Into an existing directory: same-named files are replaced, others kept.
  fs::path target = dir_.path() / "existing";
  fs::create_directories(target / "nested");
  WriteFile(target / "a.txt", "old contents");
  WriteFile(target / "nested" / "mine.txt", "keep me");
  RestoreOptions ro;
  ro.check_first = false;
  auto into = repo.Restore(st.snapshot.id, target, ro);
  ASSERT_TRUE(into.ok()) << into.error().message;
  auto expected = before;
  expected["nested/mine.txt"] = "file:keep me";
  EXPECT_EQ(Tree(target), expected);

  // One path only.
  ro.include = "nested/deeper";
  auto one = repo.Restore("latest", dir_.path() / "one", ro);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_EQ(
      Tree(dir_.path() / "one"),
      (std::map<std::string, std::string>{
          {"nested", "dir"}, {"nested/deeper", "dir"}, {"nested/deeper/blob.bin", "file:" + Binary(70000)}}));
  // No staging directory is left beside the targets.
  for (const auto& e : fs::directory_iterator(dir_.path()))
    EXPECT_EQ(e.path().filename().string().find("plinth-restore"), std::string::npos) << e.path();

  auto missing = repo.Restore("deadbeef", dir_.path() / "nothing", ro);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, BackupErrorCode::kNotFound);
  EXPECT_FALSE(fs::exists(dir_.path() / "nothing"));
}

// Ten snapshots over four ISO weeks of January 2026, forgotten with
// {daily 3, weekly 3}. Newest first: the 23rd, 22nd (20:00) and 21st fill
// the daily slots; the 23rd also takes week 4's weekly slot, the 12th and
// 5th weeks 3 and 2. Everything else goes.
TEST_F(ResticFixture, RetentionKeepsExactlyThePolicysSnapshots) {
  ResticRepository repo = Initialised();
  fs::path src = dir_.path() / "src";
  fs::create_directories(src);
  const char* times[] = {"2026-01-01T10:00:00Z", "2026-01-05T10:00:00Z", "2026-01-12T10:00:00Z",
                         "2026-01-19T10:00:00Z", "2026-01-20T09:00:00Z", "2026-01-20T18:00:00Z",
                         "2026-01-21T10:00:00Z", "2026-01-22T08:00:00Z", "2026-01-22T20:00:00Z",
                         "2026-01-23T10:00:00Z"};
  int n = 0;
  for (const char* t : times) {
    WriteFile(src / "counter", std::to_string(n++));
    BackupAt(repo, src, t, {"t"});
  }
  BackupAt(repo, src, "2026-01-02T10:00:00Z", {"other"});  // not selected by the tag below

  KeepPolicy keep;
  keep.daily = 3;
  keep.weekly = 3;
  ForgetOptions fo;
  fo.tags = {"t"};
  fo.dry_run = true;
  auto dry = repo.Forget(keep, fo);
  ASSERT_TRUE(dry.ok()) << dry.error().message;
  EXPECT_EQ(dry.value().removed.size(), 5u);
  EXPECT_EQ(repo.Snapshots().value().size(), 11u);  // a dry run changes nothing

  fo.dry_run = false;
  auto done = repo.Forget(keep, fo);
  ASSERT_TRUE(done.ok()) << done.error().message;
  const std::vector<std::string> kept = {"2026-01-05T10:00:00Z", "2026-01-12T10:00:00Z",
                                         "2026-01-21T10:00:00Z", "2026-01-22T20:00:00Z",
                                         "2026-01-23T10:00:00Z"};
  EXPECT_EQ(Ids(done.value().kept), kept);
  EXPECT_EQ(Ids(done.value().removed),
            (std::vector<std::string>{"2026-01-01T10:00:00Z", "2026-01-19T10:00:00Z", "2026-01-20T09:00:00Z",
                                      "2026-01-20T18:00:00Z", "2026-01-22T08:00:00Z"}));
  EXPECT_EQ(Ids(repo.Snapshots({"t"}).value()), kept);
  EXPECT_EQ(Ids(repo.Snapshots({"other"}).value()), std::vector<std::string>{"2026-01-02T10:00:00Z"});
  auto check = repo.Check();  // prune left a consistent repository
  EXPECT_TRUE(check.ok()) << check.error().message;
}

TEST_F(ResticFixture, RestoreAtPicksTheNewestBackupAtOrBeforeTheTime) {
  ResticRepository repo = Initialised();
  fs::path src = dir_.path() / "src";
  fs::create_directories(src);
  WriteFile(src / "v", "one");
  BackupAt(repo, src, "2026-11-18T10:00:00Z");
  WriteFile(src / "v", "two");
  Snapshot second = BackupAt(repo, src, "2026-11-19T10:00:00Z");
  WriteFile(src / "v", "three");
  BackupAt(repo, src, "2026-11-20T10:00:00Z");

  RestoreOptions ro;
  ro.tags = {"t"};
  ro.check_first = false;
  auto r = repo.RestoreAt(At("2026-11-20T09:59:59Z"), dir_.path() / "out", ro);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().snapshot.id, second.id);
  EXPECT_EQ(ReadFile(dir_.path() / "out" / "v"), "two");

  auto none = repo.RestoreAt(At("2026-11-17T10:00:00Z"), dir_.path() / "never", ro);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, BackupErrorCode::kNotFound);
  EXPECT_EQ(none.error().message.rfind("no backup tagged t at or before 2026-11-17T10:00:00Z in '", 0), 0u)
      << none.error().message;
  EXPECT_NE(none.error().message.find("; the oldest is 2026-11-18T10:00:00Z ("), std::string::npos)
      << none.error().message;
  EXPECT_FALSE(fs::exists(dir_.path() / "never"));

  auto last = repo.LastBackupTime({"t"});
  ASSERT_TRUE(last.ok()) << last.error().message;
  EXPECT_EQ(last.value(), At("2026-11-20T10:00:00Z"));
  EXPECT_EQ(repo.LastBackupTime({"absent"}).value(), std::nullopt);
  auto stats = repo.Stats();
  ASSERT_TRUE(stats.ok()) << stats.error().message;
  EXPECT_EQ(stats.value().snapshots, 3u);
  EXPECT_GT(stats.value().stored_bytes, 0u);
  EXPECT_EQ(stats.value().latest, At("2026-11-20T10:00:00Z"));
}

TEST_F(ResticFixture, WrongPasswordIsAClearError) {
  Initialised();
  const std::string other = "another-password-entirely-42";
  ResticRepository wrong = Open(other);
  auto init = wrong.Init();
  ASSERT_FALSE(init.ok());
  EXPECT_EQ(init.error().code, BackupErrorCode::kWrongPassword);
  EXPECT_NE(
      init.error().message.find("wrong password for the backup repository at '" + Options().repository + "'"),
      std::string::npos)
      << init.error().message;
  ExpectNoPassword(init.error(), other);
  ExpectNoPassword(init.error());
  auto list = wrong.Snapshots();
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().code, BackupErrorCode::kWrongPassword);
  ExpectNoPassword(list.error(), other);
  EXPECT_FALSE(list.error().retryable);
}

TEST_F(ResticFixture, MissingRepositoryIsAClearError) {
  ResticRepository repo = Open();
  fs::path src = dir_.path() / "src";
  MakeSource(src);
  auto b = repo.Backup(src);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, BackupErrorCode::kNoRepository);
  EXPECT_NE(b.error().message.find("no backup repository at '" + Options().repository + "'; run `restic -r " +
                                   Options().repository + " init` to create it"),
            std::string::npos)
      << b.error().message;
  ExpectNoPassword(b.error());
  EXPECT_FALSE(fs::exists(dir_.path() / "repo"));  // reading never creates it

  RepositoryOptions o = Options();
  o.missing_hint = "`plinth apply` creates it";
  auto hinted = ResticRepository::Create(o).value();
  auto r = hinted.RestoreAt(At("2026-11-20T10:00:00Z"), dir_.path() / "out");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, BackupErrorCode::kNoRepository);
  EXPECT_NE(r.error().message.find("; `plinth apply` creates it"), std::string::npos) << r.error().message;
  EXPECT_EQ(hinted.Check().error().code, BackupErrorCode::kNoRepository);

  // Init refuses a non-empty directory that is not a repository.
  fs::create_directories(dir_.path() / "repo");
  WriteFile(dir_.path() / "repo" / "precious.txt", "data");
  auto init = repo.Init();
  ASSERT_FALSE(init.ok());
  EXPECT_EQ(init.error().code, BackupErrorCode::kInvalidArgument);
  EXPECT_EQ(ReadFile(dir_.path() / "repo" / "precious.txt"), "data");
}

// A truncated pack, a deleted pack and an altered pack: Check says which,
// Restore fails without touching its target, and nothing in the repository
// is deleted or repaired.
TEST_F(ResticFixture, CorruptRepositoryIsReportedAndNothingIsDeleted) {
  ResticRepository repo = Initialised();
  fs::path src = dir_.path() / "src";
  MakeSource(src);
  BackupAt(repo, src, "2026-11-20T10:00:00Z");
  fs::path target = dir_.path() / "target";
  fs::create_directories(target);
  WriteFile(target / "keep.txt", "already here");
  fs::path repo_dir = dir_.path() / "repo";
  std::vector<fs::path> packs = DataFiles(repo_dir);
  ASSERT_FALSE(packs.empty());
  fs::path biggest = *std::max_element(packs.begin(), packs.end(), [](const fs::path& a, const fs::path& b) {
    return fs::file_size(a) < fs::file_size(b);
  });
  std::string pack_id = biggest.filename().string();
  std::string original = ReadFile(biggest);
  auto expect_target_untouched = [&] {
    EXPECT_EQ(Tree(target), (std::map<std::string, std::string>{{"keep.txt", "file:already here"}}));
    for (const auto& e : fs::directory_iterator(dir_.path()))
      EXPECT_EQ(e.path().filename().string().find("plinth-restore"), std::string::npos) << e.path();
  };

  // Truncated.
  fs::permissions(biggest, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(biggest, 100);
  auto check = repo.Check();
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().code, BackupErrorCode::kCorrupt);
  EXPECT_NE(check.error().message.find("is damaged: pack " + pack_id + ": unexpected file size"),
            std::string::npos)
      << check.error().message;
  EXPECT_NE(check.error().message.find("nothing was deleted or repaired"), std::string::npos);
  EXPECT_FALSE(check.error().details.empty());
  ExpectNoPassword(check.error());
  auto restore = repo.Restore("latest", target);
  ASSERT_FALSE(restore.ok());
  EXPECT_EQ(restore.error().code, BackupErrorCode::kCorrupt);
  EXPECT_EQ(restore.error().message.rfind("cannot restore backup 'latest' to '" + target.string() + "': ", 0),
            0u)
      << restore.error().message;
  EXPECT_NE(restore.error().message.find("the target was not changed"), std::string::npos);
  ExpectNoPassword(restore.error());
  expect_target_untouched();

  // Deleted.
  fs::remove(biggest);
  check = repo.Check();
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().code, BackupErrorCode::kCorrupt);
  EXPECT_NE(check.error().message.find("pack " + pack_id + ": does not exist"), std::string::npos)
      << check.error().message;
  ExpectNoPassword(check.error());

  // Altered in place (same size): only reading the data finds it; a restore
  // without the structural check fails on the ciphertext.
  original[original.size() / 2] ^= 0x5a;
  WriteFile(biggest, original);
  EXPECT_TRUE(repo.Check().ok());
  CheckOptions all;
  all.read_all_data = true;
  check = repo.Check(all);
  ASSERT_FALSE(check.ok());
  EXPECT_EQ(check.error().code, BackupErrorCode::kCorrupt);
  EXPECT_NE(check.error().message.find("is damaged"), std::string::npos) << check.error().message;
  RestoreOptions ro;
  ro.check_first = false;
  restore = repo.Restore("latest", target, ro);
  ASSERT_FALSE(restore.ok());
  EXPECT_EQ(restore.error().code, BackupErrorCode::kCorrupt) << restore.error().message;
  ExpectNoPassword(restore.error());
  expect_target_untouched();

  // Nothing in the repository went away.
  EXPECT_EQ(DataFiles(repo_dir), packs);
  EXPECT_EQ(repo.Snapshots().value().size(), 1u);
}

// ------------------------------------------------------------------ deleting repositories

TEST_F(ResticFixture, InspectCountsSnapshotsWithoutRunningRestic) {
  ResticRepository repo = Initialised();
  const fs::path repo_dir = dir_.path() / "repo";
  auto empty = InspectLocalRepository(repo_dir);
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  EXPECT_TRUE(empty.value().exists);
  EXPECT_TRUE(empty.value().repository);
  EXPECT_EQ(empty.value().snapshots, 0u);
  EXPECT_GT(empty.value().bytes, 0u);  // config and key files
  fs::path src = dir_.path() / "src";
  MakeSource(src);
  BackupAt(repo, src, "2026-11-20T10:00:00Z");
  BackupAt(repo, src, "2026-11-21T10:00:00Z");
  auto two = InspectLocalRepository(repo_dir);
  ASSERT_TRUE(two.ok());
  EXPECT_EQ(two.value().snapshots, repo.Snapshots().value().size());
  EXPECT_EQ(two.value().snapshots, 2u);
  EXPECT_GT(two.value().bytes, empty.value().bytes);
  auto none = InspectLocalRepository(dir_.path() / "nothing-here");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none.value().exists);
}

TEST_F(ResticFixture, DeleteRemovesOnlyRepositoriesAndFinishesInterruptedDeletes) {
  // Not a repository: refused, and every file stays.
  fs::path data = dir_.path() / "backups" / "eu-data";
  fs::create_directories(data);
  WriteFile(data / "precious.csv", "a,b\n");
  auto refused = DeleteLocalRepository(data);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, BackupErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message.find("not a restic repository"), std::string::npos) << refused.error().message;
  EXPECT_EQ(ReadFile(data / "precious.csv"), "a,b\n");
  EXPECT_FALSE(DeleteDeletingLeftover(data).ok()) << "only a .NAME.plinth-deleting leftover";
  EXPECT_TRUE(fs::exists(data / "precious.csv"));

  // A repository with a snapshot: gone, with no leftover beside it.
  ResticRepository repo = Initialised();
  fs::path src = dir_.path() / "src";
  MakeSource(src);
  BackupAt(repo, src, "2026-11-20T10:00:00Z");
  const fs::path repo_dir = dir_.path() / "repo";
  ASSERT_TRUE(DeleteLocalRepository(repo_dir).ok());
  EXPECT_FALSE(fs::exists(repo_dir));
  EXPECT_FALSE(fs::exists(dir_.path() / ".repo.plinth-deleting"));
  EXPECT_TRUE(DeleteLocalRepository(repo_dir).ok()) << "gone already: success";

  // A delete killed after its rename: the next call finishes it.
  fs::copy(TemplateRepository(), repo_dir, fs::copy_options::recursive);
  fs::rename(repo_dir, dir_.path() / ".repo.plinth-deleting");
  ASSERT_TRUE(DeleteLocalRepository(repo_dir).ok());
  EXPECT_FALSE(fs::exists(dir_.path() / ".repo.plinth-deleting"));
}

}  // namespace
}  // namespace plinth::storage
