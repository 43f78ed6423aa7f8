// Tests for AES-256-GCM sealing (runtime/crypto/aead.h) and wrapped bucket
// keys (runtime/storage/keys.h): authenticated blob headers, the chunked
// file format (tampering, truncation, reordering, header flips, a forged
// plaintext size), format-1 files and keys written by older versions, and
// the bound on what a tampered compressed file can make OpenFile write.
//
// The format writers below are independent implementations of the layouts
// documented in aead.h, with a key the test knows: they craft what an
// attacker cannot (valid tags over hostile content) to check OpenFile's
// limits, and what older versions wrote.

#include "runtime/crypto/aead.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "runtime/storage/keys.h"

namespace plinth::crypto {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunk = 1 << 20;
constexpr size_t kHeader2 = 29;

std::string ReadBytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string RandomBytes(size_t n) {
  std::string s(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(s.data()), static_cast<int>(n));
  return s;
}

std::string Deflate(const std::string& in) {
  uLongf n = compressBound(static_cast<uLong>(in.size()));
  std::string out(n, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(in.data()),
                      static_cast<uLong>(in.size()), 6),
            Z_OK);
  out.resize(n);
  return out;
}

// AES-256-GCM over `aad` and `plain`; returns ciphertext followed by the tag.
std::string Gcm(const Key& key, const unsigned char* nonce, const std::string& aad,
                const std::string& plain) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  std::string out(plain.size() + 16, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, 12, nullptr);
  EVP_EncryptInit_ex(ctx, nullptr, nullptr, key.data(), nonce);
  EVP_EncryptUpdate(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                    static_cast<int>(aad.size()));
  if (!plain.empty()) {
    EVP_EncryptUpdate(ctx, o, &len, reinterpret_cast<const unsigned char*>(plain.data()),
                      static_cast<int>(plain.size()));
  }
  EVP_EncryptFinal_ex(ctx, o + plain.size(), &len);
  EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, o + plain.size());
  EVP_CIPHER_CTX_free(ctx);
  return out;
}

std::string U64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>(v >> (56 - 8 * i));
  return s;
}

// A format-1 blob as older versions sealed it: the header is not associated data.
std::string SealBlobV1(const Key& key, uint32_t version, const std::string& aad, const std::string& plain) {
  std::string blob(17, '\0');
  blob[0] = 1;
  for (int i = 0; i < 4; ++i) blob[1 + i] = static_cast<char>(version >> (24 - 8 * i));
  RAND_bytes(reinterpret_cast<unsigned char*>(&blob[5]), 12);
  return blob + Gcm(key, reinterpret_cast<const unsigned char*>(&blob[5]), aad, plain);
}

// A format-1 file: header "PLNF", flags, key version, nonce; one GCM over the
// stream with the header as associated data; one tag at the end.
std::string SealFileV1(const Key& key, const std::string& aad, const std::string& stream, bool deflated) {
  std::string header = "PLNF";
  header += static_cast<char>(deflated ? 1 : 0);
  header += std::string("\0\0\0\1", 4);
  header += RandomBytes(12);
  // Older versions passed the caller's associated data first, then the header.
  return header + Gcm(key, reinterpret_cast<const unsigned char*>(&header[9]), aad + header, stream);
}

// A format-2 file whose header records `plain_size`, whatever the stream is.
std::string SealFileV2(const Key& key, const std::string& aad, const std::string& stream, bool deflated,
                       uint64_t plain_size) {
  std::string header = "PLN2";
  header += static_cast<char>(deflated ? 1 : 0);
  header += std::string("\0\0\0\1", 4);
  header += RandomBytes(12);
  header += U64(plain_size);
  std::string out = header;
  size_t chunks = stream.empty() ? 1 : (stream.size() + kChunk - 1) / kChunk;
  for (size_t i = 0; i < chunks; ++i) {
    unsigned char nonce[12];
    std::memcpy(nonce, &header[9], 12);
    for (int b = 0; b < 8; ++b)
      nonce[11 - b] ^= static_cast<unsigned char>(static_cast<uint64_t>(i) >> (8 * b));
    bool final_chunk = i + 1 == chunks;
    std::string chunk_aad = header + U64(i) + std::string(1, final_chunk ? '\1' : '\0') + aad;
    out += Gcm(key, nonce, chunk_aad, stream.substr(i * kChunk, kChunk));
  }
  return out;
}

class AeadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "plinth-aead-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    ASSERT_TRUE(RandomKey(&key_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Seal(const std::string& content, bool compress) {
    WriteBytes(dir_ / "src", content);
    std::string error;
    EXPECT_TRUE(SealFile(key_, 1, kAad, dir_ / "src", dir_ / "sealed", compress, &error)) << error;
    return dir_ / "sealed";
  }
  // Opens `sealed` into dir_/out/dst; on failure checks that nothing is left there.
  bool Open(const fs::path& sealed, std::string* error) {
    fs::remove_all(dir_ / "out");
    bool ok = OpenFile(key_, kAad, sealed, dir_ / "out" / "dst", error);
    if (!ok) {
      EXPECT_FALSE(fs::exists(dir_ / "out" / "dst"));
      if (fs::exists(dir_ / "out")) {
        EXPECT_TRUE(fs::is_empty(dir_ / "out")) << "a temporary file was left";
      }
    }
    return ok;
  }
  void ExpectRejected(const std::string& sealed_bytes, const char* what) {
    WriteBytes(dir_ / "bad", sealed_bytes);
    std::string error;
    EXPECT_FALSE(Open(dir_ / "bad", &error)) << what;
    EXPECT_NE(error.find("failed authentication"), std::string::npos) << what << ": " << error;
  }

  // Runs OpenFile in a child process whose files may not grow beyond
  // `limit` bytes; returns the child's error message ("" when it succeeded,
  // "file size limit" when it tried to write more).
  std::string OpenWithFileSizeLimit(const fs::path& sealed, rlim_t limit) {
    int pipe_fds[2];
    EXPECT_EQ(::pipe(pipe_fds), 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipe_fds[0]);
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl = {limit, limit};
      if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(3);
      std::string error;
      bool ok = OpenFile(key_, kAad, sealed, dir_ / "out" / "dst", &error);
      if (!ok && error.find("File too large") != std::string::npos) error = "file size limit";
      if (::write(pipe_fds[1], error.data(), error.size()) < 0) ::_exit(4);
      ::_exit(ok ? 0 : 1);
    }
    ::close(pipe_fds[1]);
    std::string message;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) message.append(buf, static_cast<size_t>(n));
    ::close(pipe_fds[0]);
    int status = 0;
    EXPECT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status));
    return message;
  }

  const std::string kAad = std::string("bucket eu/data\0object a.bin", 27);
  fs::path dir_;
  Key key_{};
};

// ---- blobs

TEST_F(AeadTest, BlobRoundTripsAndReportsItsKeyVersion) {
  std::string blob, plain, error;
  ASSERT_TRUE(SealBlob(key_, 7, "where", "secret", &blob, &error));
  EXPECT_EQ(blob[0], 2);
  uint32_t version = 0;
  ASSERT_TRUE(OpenBlob(key_, "where", blob, &plain, &version, &error)) << error;
  EXPECT_EQ(plain, "secret");
  EXPECT_EQ(version, 7u);
  EXPECT_FALSE(OpenBlob(key_, "elsewhere", blob, &plain, nullptr, &error));
}

TEST_F(AeadTest, ForgedBlobHeaderFailsAuthentication) {
  std::string blob, plain, error;
  ASSERT_TRUE(SealBlob(key_, 1, "where", "secret", &blob, &error));
  std::string forged = blob;
  forged[4] = 9;  // key version 1 -> 9
  EXPECT_FALSE(OpenBlob(key_, "where", forged, &plain, nullptr, &error));
  EXPECT_NE(error.find("authentication failed"), std::string::npos) << error;
  // Relabelled as format 1, whose header is not authenticated: the tag no longer matches.
  std::string downgraded = blob;
  downgraded[0] = 1;
  EXPECT_FALSE(OpenBlob(key_, "where", downgraded, &plain, nullptr, &error, /*accept_format1=*/true));
}

TEST_F(AeadTest, Format1BlobsOpenOnlyWhenAskedFor) {
  std::string v1 = SealBlobV1(key_, 1, "where", "old secret");
  std::string plain, error;
  EXPECT_FALSE(OpenBlob(key_, "where", v1, &plain, nullptr, &error));
  EXPECT_NE(error.find("format 1"), std::string::npos) << error;
  ASSERT_TRUE(OpenBlob(key_, "where", v1, &plain, nullptr, &error, /*accept_format1=*/true)) << error;
  EXPECT_EQ(plain, "old secret");
}

// ---- wrapped bucket keys

storage::WorkspaceKey TestWorkspaceKey(const Key& key) {
  storage::WorkspaceKey ws;
  ws.key = key;
  ws.id = KeyId(key, "plinth-workspace-key-v1");
  return ws;
}

// "pk1:<id>:<hex>" with the sealed blob's byte `index` replaced by `value`.
std::string WithBlobByte(const std::string& wrapped, size_t index, char value) {
  size_t colon = wrapped.rfind(':');
  std::string blob;
  EXPECT_TRUE(FromHex(wrapped.substr(colon + 1), &blob));
  blob[index] = value;
  return wrapped.substr(0, colon + 1) + Hex(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
}

TEST_F(AeadTest, WrappedKeyWithAForgedKeyVersionDoesNotUnwrap) {
  storage::WorkspaceKey ws = TestWorkspaceKey(key_);
  auto wrapped = storage::NewWrappedKey(ws, "eu/data");
  ASSERT_TRUE(wrapped.ok());
  ASSERT_TRUE(storage::UnwrapKey(ws, wrapped.value(), "eu/data").ok());
  auto forged = storage::UnwrapKey(ws, WithBlobByte(wrapped.value(), 4, 2), "eu/data");
  ASSERT_FALSE(forged.ok());
  EXPECT_NE(forged.error().message.find("cannot be unwrapped"), std::string::npos);
}

TEST_F(AeadTest, KeysWrappedByOlderVersionsStillUnwrap) {
  storage::WorkspaceKey ws = TestWorkspaceKey(key_);
  Key data{};
  ASSERT_TRUE(RandomKey(&data));
  std::string aad = std::string("plinth-bucket-key-v1") + '\0' + "eu/data";
  std::string blob = SealBlobV1(key_, 1, aad, std::string(reinterpret_cast<const char*>(data.data()), 32));
  std::string wrapped =
      "pk1:" + ws.id + ":" + Hex(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  auto k = storage::UnwrapKey(ws, wrapped, "eu/data");
  ASSERT_TRUE(k.ok()) << k.error().message;
  EXPECT_EQ(k.value(), data);
  EXPECT_FALSE(storage::UnwrapKey(ws, wrapped, "eu/other").ok());
}

// ---- files

TEST_F(AeadTest, FilesRoundTripAtChunkBoundariesWithMode0600) {
  for (size_t size : {size_t{0}, size_t{1}, kChunk - 1, kChunk, kChunk + 1, 3 * kChunk}) {
    for (bool compress : {false, true}) {
      std::string content = RandomBytes(size / 2) + std::string(size - size / 2, 'z');
      fs::path sealed = Seal(content, compress);
      std::string error;
      uint64_t written = 0;
      fs::remove_all(dir_ / "out");
      ASSERT_TRUE(OpenFile(key_, kAad, sealed, dir_ / "out" / "dst", &error, &written))
          << size << " " << compress << ": " << error;
      EXPECT_EQ(ReadBytes(dir_ / "out" / "dst"), content) << size << " " << compress;
      EXPECT_EQ(written, size);
      struct stat st;
      ASSERT_EQ(::stat((dir_ / "out" / "dst").c_str(), &st), 0);
      EXPECT_EQ(st.st_mode & 0777, 0600u);
      size_t chunks = size == 0 ? 1 : (size + kChunk - 1) / kChunk;
      if (!compress) {
        EXPECT_EQ(fs::file_size(sealed), kHeader2 + size + 16 * chunks);
      }
    }
  }
}

TEST_F(AeadTest, AlteredTruncatedOrReorderedChunksFail) {
  const std::string sealed = ReadBytes(Seal(RandomBytes(3 * kChunk + 100), /*compress=*/false));
  const size_t c = kChunk + 16;  // a stored chunk
  ASSERT_EQ(sealed.size(), kHeader2 + 3 * c + 100 + 16);
  std::string altered = sealed;
  altered[kHeader2 + c + 5] ^= 1;
  ExpectRejected(altered, "a flipped ciphertext bit in chunk 1");
  ExpectRejected(sealed.substr(0, kHeader2 + 3 * c), "the last chunk dropped (cut at a chunk boundary)");
  ExpectRejected(sealed.substr(0, sealed.size() - 1), "the last byte cut off");
  std::string error;
  WriteBytes(dir_ / "bad", sealed.substr(0, kHeader2));
  EXPECT_FALSE(Open(dir_ / "bad", &error)) << "every chunk dropped";
  std::string reordered = sealed.substr(0, kHeader2) + sealed.substr(kHeader2 + c, c) +
                          sealed.substr(kHeader2, c) + sealed.substr(kHeader2 + 2 * c);
  ExpectRejected(reordered, "chunks 0 and 1 swapped");
  std::string duplicated = sealed.substr(0, kHeader2 + c) + sealed.substr(kHeader2);
  ExpectRejected(duplicated, "chunk 0 repeated");
  ExpectRejected(sealed + sealed.substr(kHeader2 + c, c), "a chunk appended");
}

TEST_F(AeadTest, HeaderFlipsFail) {
  const std::string sealed = ReadBytes(Seal(std::string(5000, 'x'), /*compress=*/true));
  for (size_t byte : {size_t{4}, size_t{8}, size_t{9}, size_t{28}}) {  // flags, key version, nonce, size
    std::string flipped = sealed;
    flipped[byte] ^= 1;
    ExpectRejected(flipped, ("header byte " + std::to_string(byte)).c_str());
  }
  std::string error;
  WriteBytes(dir_ / "bad", "PLNX" + sealed.substr(4));
  EXPECT_FALSE(Open(dir_ / "bad", &error));
  EXPECT_NE(error.find("not a sealed object file"), std::string::npos) << error;
}

TEST_F(AeadTest, FileMovedToAnotherObjectFails) {
  fs::path sealed = Seal("payload", /*compress=*/false);
  std::string error;
  EXPECT_FALSE(
      OpenFile(key_, std::string("bucket eu/data\0object b.bin", 27), sealed, dir_ / "out" / "dst", &error));
  EXPECT_FALSE(fs::exists(dir_ / "out" / "dst"));
}

// An authentic stream that inflates far beyond the size the header records
// (which only the key holder could write) is cut off at that size.
TEST_F(AeadTest, OutputIsCappedAtTheRecordedPlaintextSize) {
  std::string bomb = Deflate(std::string(64 * kChunk, '\0'));
  WriteBytes(dir_ / "bomb", SealFileV2(key_, kAad, bomb, /*deflated=*/true, /*plain_size=*/kChunk));
  std::string error = OpenWithFileSizeLimit(dir_ / "bomb", 4 * kChunk);
  EXPECT_NE(error.find("failed authentication"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir_ / "out" / "dst"));
  // The same stream with its true size opens.
  WriteBytes(dir_ / "honest", SealFileV2(key_, kAad, bomb, /*deflated=*/true, 64 * kChunk));
  error.clear();
  EXPECT_TRUE(Open(dir_ / "honest", &error)) << error;
  EXPECT_EQ(fs::file_size(dir_ / "out" / "dst"), 64 * kChunk);
}

// The case: a tampered format-1 archive (one tag at the end) used to
// be inflated into the destination's temporary file before its tag was
// checked. Now nothing is written unless the whole file verifies first.
TEST_F(AeadTest, TamperedFormat1CompressedFileWritesNothing) {
  std::string stream = Deflate(std::string(64 * kChunk, '\0'));
  std::string file = SealFileV1(key_, kAad, stream, /*deflated=*/true);
  file[file.size() - 1] ^= 1;  // the tag
  WriteBytes(dir_ / "bomb", file);
  std::string error = OpenWithFileSizeLimit(dir_ / "bomb", 4 * kChunk);
  EXPECT_NE(error.find("failed authentication"), std::string::npos) << error;
  EXPECT_FALSE(fs::exists(dir_ / "out" / "dst"));
  if (fs::exists(dir_ / "out")) {
    EXPECT_TRUE(fs::is_empty(dir_ / "out"));
  }
}

TEST_F(AeadTest, Format1FilesWrittenByOlderVersionsStillOpen) {
  std::string content = RandomBytes(kChunk) + std::string(2 * kChunk + 7, 'q');
  WriteBytes(dir_ / "plain1", SealFileV1(key_, kAad, content, /*deflated=*/false));
  WriteBytes(dir_ / "zip1", SealFileV1(key_, kAad, Deflate(content), /*deflated=*/true));
  for (const char* name : {"plain1", "zip1"}) {
    std::string error;
    ASSERT_TRUE(Open(dir_ / name, &error)) << name << ": " << error;
    EXPECT_EQ(ReadBytes(dir_ / "out" / "dst"), content) << name;
  }
  std::string altered = SealFileV1(key_, kAad, content, /*deflated=*/false);
  altered[40] ^= 1;
  ExpectRejected(altered, "an altered uncompressed format-1 file");
}

}  // namespace
}  // namespace plinth::crypto
