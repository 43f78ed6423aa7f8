#include "runtime/crypto/aead.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "runtime/io/durable.h"

namespace plinth::crypto {

namespace fs = std::filesystem;

namespace {

constexpr uint8_t kBlobFormatV1 = 1;  // header not authenticated; read only where asked for
constexpr uint8_t kBlobFormat = 2;
constexpr int kBlobHeader = 1 + 4;  // format, key version
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
constexpr char kFileMagic1[4] = {'P', 'L', 'N', 'F'};
constexpr char kFileMagic2[4] = {'P', 'L', 'N', '2'};
constexpr size_t kFileHeader1 = 4 + 1 + 4 + kNonce;
constexpr unsigned char kFlagDeflated = 1;
constexpr size_t kChunk = 1 << 20;

using Ctx = std::unique_ptr<EVP_CIPHER_CTX, void (*)(EVP_CIPHER_CTX*)>;

Ctx NewCtx() { return Ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free); }

void PutU32(unsigned char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (24 - 8 * i));
}
uint32_t GetU32(const unsigned char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | p[i];
  return v;
}

const unsigned char* U(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

bool InitGcm(EVP_CIPHER_CTX* ctx, bool encrypt, const Key& key, const unsigned char* nonce, std::string_view aad) {
  int len = 0;
  auto init = encrypt ? EVP_EncryptInit_ex : EVP_DecryptInit_ex;
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  return ctx && init(ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, kNonce, nullptr) == 1 &&
         init(ctx, nullptr, nullptr, key.data(), nonce) == 1 &&
         update(ctx, nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1;
}

// A file descriptor closed on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

bool WriteAll(int fd, const unsigned char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads up to n bytes (fewer only at end of file); -1 on error.
ssize_t ReadUpTo(int fd, unsigned char* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = ::read(fd, p + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(got);
}

std::string Quoted(const fs::path& p) {
  std::string out = "'";
  out += p.string();
  out += '\'';
  return out;
}

std::string Errno(const std::string& what, const fs::path& p, int e) {
  return "cannot " + what + " " + Quoted(p) + ": " + std::strerror(e);
}

// Creates `dst`'s directory and its temp file (io::TempFile: exclusive,
// random name, exactly `mode`); the file is committed over `dst` or removed.
bool OpenTempFor(const fs::path& dst, unsigned mode, io::TempFile* tmp, std::string* error) {
  if (int e = io::MakeDirs(dst.parent_path())) {
    *error = Errno("create", dst.parent_path(), e);
    return false;
  }
  if (int e = io::TempFile::Create(dst.parent_path(), dst.filename().string(), mode, tmp)) {
    *error = Errno("write", dst, e);
    return false;
  }
  return true;
}

}  // namespace

bool RandomKey(Key* key) { return RAND_bytes(key->data(), static_cast<int>(key->size())) == 1; }

std::string RandomHex(size_t n) {
  std::vector<unsigned char> b(n);
  if (RAND_bytes(b.data(), static_cast<int>(n)) != 1) return {};
  return Hex(b.data(), n);
}

std::string Hex(const uint8_t* data, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

std::string KeyId(const Key& key, std::string_view label) {
  std::string input(label);
  input.append(reinterpret_cast<const char*>(key.data()), key.size());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), md, &len, EVP_sha256(), nullptr);
  OPENSSL_cleanse(input.data(), input.size());
  return Hex(md, 8);
}

Key Derive(const Key& key, std::string_view label) {
  Key out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), U(label), label.size(), out.data(), &len);
  return out;
}

bool SealBlob(const Key& key, uint32_t key_version, std::string_view aad, std::string_view plaintext,
              std::string* blob, std::string* error) {
  blob->assign(kBlobOverhead + plaintext.size(), '\0');
  auto* p = reinterpret_cast<unsigned char*>(blob->data());
  p[0] = kBlobFormat;
  PutU32(p + 1, key_version);
  unsigned char* nonce = p + 5;
  if (RAND_bytes(nonce, kNonce) != 1) {
    *error = "no random bytes for a nonce";
    return false;
  }
  unsigned char* ct = nonce + kNonce;
  Ctx ctx = NewCtx();
  int len = 0;
  // The format byte and key version are associated data too (format 2).
  bool ok = InitGcm(ctx.get(), true, key, nonce, {}) &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, p, kBlobHeader) == 1 &&
            EVP_EncryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_EncryptUpdate(ctx.get(), ct, &len, U(plaintext), static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, ct + plaintext.size()) == 1;
  if (!ok) *error = "AES-256-GCM encryption failed";
  return ok;
}

uint8_t BlobFormatOf(std::string_view blob) {
  if (blob.size() < kBlobOverhead) return 0;
  uint8_t format = static_cast<uint8_t>(blob[0]);
  return format == kBlobFormatV1 || format == kBlobFormat ? format : 0;
}

bool OpenBlob(const Key& key, std::string_view aad, std::string_view blob, std::string* plaintext,
              uint32_t* key_version, std::string* error, bool accept_format1) {
  uint8_t format = BlobFormatOf(blob);
  if (format == 0) {
    *error = "not a sealed value";
    return false;
  }
  if (format == kBlobFormatV1 && !accept_format1) {
    *error = "sealed in format 1, whose header is not authenticated; it is no longer accepted here";
    return false;
  }
  const unsigned char* p = U(blob);
  const unsigned char* nonce = p + 5;
  const unsigned char* ct = nonce + kNonce;
  size_t ct_len = blob.size() - kBlobOverhead;
  plaintext->assign(ct_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext->data());
  Ctx ctx = NewCtx();
  int len = 0;
  bool ok = InitGcm(ctx.get(), false, key, nonce, {}) &&
            (format == kBlobFormatV1 || EVP_DecryptUpdate(ctx.get(), nullptr, &len, p, kBlobHeader) == 1) &&
            EVP_DecryptUpdate(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) == 1 &&
            EVP_DecryptUpdate(ctx.get(), out, &len, ct, static_cast<int>(ct_len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, const_cast<unsigned char*>(ct + ct_len)) ==
                1 &&
            EVP_DecryptFinal_ex(ctx.get(), out + len, &len) == 1;
  if (!ok) {
    OPENSSL_cleanse(plaintext->data(), plaintext->size());
    plaintext->clear();
    *error = "authentication failed (wrong key, or the value was changed or moved)";
    return false;
  }
  // Only now, authenticated (format 2), is the recorded version worth reporting.
  if (key_version) *key_version = GetU32(p + 1);
  return true;
}

namespace {

// ---- format 2 files (see aead.h)

// Header: magic, flags, key version, file nonce, plaintext size.
constexpr size_t kFileHeader2 = 4 + 1 + 4 + kNonce + 8;

void PutU64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (56 - 8 * i));
}
uint64_t GetU64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

// One chunk's AES-256-GCM operation: nonce = file nonce XOR the chunk index
// (big endian, in the last 8 bytes); associated data = header, chunk index,
// final flag, the caller's associated data.
bool ChunkCrypt(bool encrypt, const Key& key, const unsigned char* header, std::string_view aad, uint64_t index,
                bool final_chunk, const unsigned char* in, size_t n, unsigned char* out, unsigned char* tag) {
  unsigned char nonce[kNonce];
  std::memcpy(nonce, header + 9, kNonce);
  for (int i = 0; i < 8; ++i) nonce[kNonce - 1 - i] ^= static_cast<unsigned char>(index >> (8 * i));
  unsigned char position[9];
  PutU64(position, index);
  position[8] = final_chunk ? 1 : 0;
  Ctx ctx = NewCtx();
  int len = 0, flen = 0;
  auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
  if (!InitGcm(ctx.get(), encrypt, key, nonce, {}) || update(ctx.get(), nullptr, &len, header, kFileHeader2) != 1 ||
      update(ctx.get(), nullptr, &len, position, sizeof position) != 1 ||
      update(ctx.get(), nullptr, &len, U(aad), static_cast<int>(aad.size())) != 1 ||
      (n > 0 && update(ctx.get(), out, &len, in, static_cast<int>(n)) != 1)) {
    return false;
  }
  if (encrypt) {
    return EVP_EncryptFinal_ex(ctx.get(), out + len, &flen) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, tag) == 1;
  }
  return EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx.get(), out + len, &flen) == 1;
}

// Where authenticated plaintext goes: straight to the temp file, or through
// inflate; never more than `limit` bytes in all.
class PlainSink {
 public:
  PlainSink(int fd, bool compressed, uint64_t limit) : fd_(fd), compressed_(compressed), limit_(limit) {
    if (compressed_) {
      started_ = inflateInit(&zs_) == Z_OK;
      zbuf_.resize(kChunk);
    }
  }
  ~PlainSink() {
    if (compressed_ && started_) inflateEnd(&zs_);
  }
  PlainSink(const PlainSink&) = delete;
  PlainSink& operator=(const PlainSink&) = delete;

  enum Result { kOk, kDamaged, kTooLarge, kWriteFailed };

  Result Put(const unsigned char* p, size_t n) {
    if (!compressed_) return Emit(p, n);
    if (!started_) return kDamaged;
    zs_.next_in = const_cast<unsigned char*>(p);
    zs_.avail_in = static_cast<uInt>(n);
    while (zs_.avail_in > 0) {
      if (ended_) return kDamaged;  // data after the end of the deflate stream
      zs_.next_out = zbuf_.data();
      zs_.avail_out = static_cast<uInt>(zbuf_.size());
      int rc = inflate(&zs_, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return kDamaged;
      if (Result r = Emit(zbuf_.data(), zbuf_.size() - zs_.avail_out); r != kOk) return r;
      if (rc == Z_STREAM_END) ended_ = true;
      if (rc == Z_BUF_ERROR) break;
    }
    return kOk;
  }
  // Drains inflate; kOk when the stream ended.
  Result Finish() {
    while (compressed_ && !ended_) {
      if (!started_) return kDamaged;
      zs_.next_out = zbuf_.data();
      zs_.avail_out = static_cast<uInt>(zbuf_.size());
      int rc = inflate(&zs_, Z_FINISH);
      size_t got = zbuf_.size() - zs_.avail_out;
      if (Result r = Emit(zbuf_.data(), got); r != kOk) return r;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (got == 0) {
        return kDamaged;
      }
    }
    return kOk;
  }
  uint64_t total() const { return total_; }

 private:
  Result Emit(const unsigned char* p, size_t n) {
    if (n > limit_ - total_) return kTooLarge;
    if (fd_ >= 0 && !WriteAll(fd_, p, n)) return kWriteFailed;
    total_ += n;
    return kOk;
  }

  int fd_;
  bool compressed_;
  uint64_t limit_;
  uint64_t total_ = 0;
  z_stream zs_{};
  bool started_ = false;
  bool ended_ = false;
  std::vector<unsigned char> zbuf_;
};

std::string Damaged(const fs::path& src) {
  return Quoted(src) +
         " failed authentication (wrong key, or the file was changed, truncated or moved); nothing was written";
}

}  // namespace

bool SealFile(const Key& key, uint32_t key_version, std::string_view aad, const fs::path& src, const fs::path& dst,
              bool compress, std::string* error, uint64_t* written) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  struct stat st;
  if (::fstat(in.fd, &st) != 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  const uint64_t plain_size = static_cast<uint64_t>(st.st_size);
  io::TempFile tmp;
  if (!OpenTempFor(dst, 0600, &tmp, error)) return false;
  const int out_fd = tmp.fd();
  auto fail = [&](std::string why) {
    *error = std::move(why);
    tmp.Discard();
    return false;
  };
  unsigned char header[kFileHeader2];
  std::memcpy(header, kFileMagic2, 4);
  header[4] = compress ? kFlagDeflated : 0;
  PutU32(header + 5, key_version);
  if (RAND_bytes(header + 9, kNonce) != 1) return fail("no random bytes for a nonce");
  PutU64(header + 9 + kNonce, plain_size);
  if (!WriteAll(out_fd, header, kFileHeader2)) return fail(Errno("write", dst, errno));

  // The sealed stream (the plaintext, or its deflate stream) is cut into
  // chunks of kChunk bytes; a full chunk is held back until more data shows
  // it is not the last one, so exactly the last chunk carries the final flag.
  std::vector<unsigned char> buf(kChunk), zbuf(kChunk), pending, cbuf(kChunk), tag(kTag);
  pending.reserve(kChunk);
  uint64_t total = kFileHeader2, index = 0;
  auto seal_pending = [&](bool final_chunk) {
    if (!ChunkCrypt(true, key, header, aad, index, final_chunk, pending.data(), pending.size(), cbuf.data(),
                    tag.data())) {
      return false;
    }
    if (!WriteAll(out_fd, cbuf.data(), pending.size()) || !WriteAll(out_fd, tag.data(), kTag)) return false;
    total += pending.size() + kTag;
    ++index;
    pending.clear();
    return true;
  };
  auto emit = [&](const unsigned char* p, size_t n) {
    while (n > 0) {
      if (pending.size() == kChunk && !seal_pending(false)) return false;
      size_t take = std::min(n, kChunk - pending.size());
      pending.insert(pending.end(), p, p + take);
      p += take;
      n -= take;
    }
    return true;
  };
  z_stream zs{};
  if (compress && deflateInit(&zs, 6) != Z_OK) return fail("cannot start compression");
  std::unique_ptr<z_stream, int (*)(z_stream*)> zguard(compress ? &zs : nullptr, deflateEnd);
  uint64_t read_total = 0;
  for (;;) {
    ssize_t n = ReadUpTo(in.fd, buf.data(), buf.size());
    if (n < 0) return fail(Errno("read", src, errno));
    read_total += static_cast<uint64_t>(n);
    bool last = static_cast<size_t>(n) < buf.size();
    if (!compress) {
      if (!emit(buf.data(), static_cast<size_t>(n))) return fail(Errno("write", dst, errno));
    } else {
      zs.next_in = buf.data();
      zs.avail_in = static_cast<uInt>(n);
      int flush = last ? Z_FINISH : Z_NO_FLUSH;
      int rc = Z_OK;
      do {
        zs.next_out = zbuf.data();
        zs.avail_out = static_cast<uInt>(zbuf.size());
        rc = deflate(&zs, flush);
        if (rc == Z_STREAM_ERROR) return fail("compression failed");
        if (!emit(zbuf.data(), zbuf.size() - zs.avail_out)) return fail(Errno("write", dst, errno));
      } while (zs.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
    }
    if (last) break;
  }
  if (read_total != plain_size) {
    return fail(Quoted(src) + " changed while it was being sealed; try again when nothing writes to it");
  }
  if (!seal_pending(true)) return fail(Errno("write", dst, errno));
  if (::fsync(out_fd) != 0) return fail(Errno("sync", dst, errno));
  const char* stage = "write";
  if (int e = tmp.Commit(dst.filename().string(), &stage)) {
    *error = Errno(stage, dst, e);
    return false;
  }
  if (written) *written = total;
  return true;
}

namespace {

// Format 2: every chunk is authenticated before its plaintext is used.
bool OpenFile2(const Key& key, std::string_view aad, int in_fd, uint64_t size, const fs::path& src,
               const fs::path& dst, std::string* error, uint64_t* written) {
  unsigned char header[kFileHeader2];
  if (size < kFileHeader2 + kTag || ReadUpTo(in_fd, header, kFileHeader2) != static_cast<ssize_t>(kFileHeader2)) {
    *error = Quoted(src) + " is not a sealed object file (damaged or truncated)";
    return false;
  }
  const bool compressed = (header[4] & kFlagDeflated) != 0;
  const uint64_t plain_size = GetU64(header + 9 + kNonce);
  io::TempFile tmp;
  if (!OpenTempFor(dst, 0600, &tmp, error)) return false;
  const int out_fd = tmp.fd();
  auto fail = [&](std::string why) {
    *error = std::move(why);
    tmp.Discard();
    return false;
  };
  PlainSink sink(out_fd, compressed, plain_size);
  auto sink_failed = [&](PlainSink::Result r) {
    if (r == PlainSink::kWriteFailed) return fail(Errno("write", dst, errno));
    return fail(Damaged(src));
  };
  std::vector<unsigned char> cbuf(kChunk + kTag), pbuf(kChunk);
  uint64_t remaining = size - kFileHeader2;
  for (uint64_t index = 0;; ++index) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(remaining, cbuf.size()));
    if (n < kTag) return fail(Damaged(src));
    if (ReadUpTo(in_fd, cbuf.data(), n) != static_cast<ssize_t>(n)) return fail(Errno("read", src, errno));
    remaining -= n;
    const bool final_chunk = remaining == 0;
    size_t ct_len = n - kTag;
    if (!ChunkCrypt(false, key, header, aad, index, final_chunk, cbuf.data(), ct_len, pbuf.data(),
                    cbuf.data() + ct_len)) {
      return fail(Damaged(src));
    }
    if (PlainSink::Result r = sink.Put(pbuf.data(), ct_len); r != PlainSink::kOk) return sink_failed(r);
    if (final_chunk) break;
  }
  if (PlainSink::Result r = sink.Finish(); r != PlainSink::kOk) return sink_failed(r);
  if (sink.total() != plain_size) return fail(Damaged(src));
  if (::fsync(out_fd) != 0) return fail(Errno("sync", dst, errno));
  const char* stage = "write";
  if (int e = tmp.Commit(dst.filename().string(), &stage)) {
    *error = Errno(stage, dst, e);
    return false;
  }
  if (written) *written = sink.total();
  return true;
}

// One pass over a format-1 file: decrypts the whole ciphertext into `sink`
// (which may have no file) and checks the single tag at the end.
bool PassFile1(const Key& key, std::string_view aad, int in_fd, uint64_t size, const unsigned char* header,
               PlainSink& sink, PlainSink::Result* sink_result) {
  if (::lseek(in_fd, static_cast<off_t>(kFileHeader1), SEEK_SET) != static_cast<off_t>(kFileHeader1)) return false;
  Ctx ctx = NewCtx();
  int len = 0;
  if (!InitGcm(ctx.get(), false, key, header + 9, aad) ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, header, kFileHeader1) != 1) {
    return false;
  }
  uint64_t remaining = size - kFileHeader1 - kTag;
  std::vector<unsigned char> buf(kChunk), pbuf(kChunk + 32);
  while (remaining > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
    if (ReadUpTo(in_fd, buf.data(), want) != static_cast<ssize_t>(want)) return false;
    remaining -= want;
    int plen = 0;
    if (EVP_DecryptUpdate(ctx.get(), pbuf.data(), &plen, buf.data(), static_cast<int>(want)) != 1) return false;
    if (*sink_result == PlainSink::kOk) *sink_result = sink.Put(pbuf.data(), static_cast<size_t>(plen));
    if (*sink_result == PlainSink::kWriteFailed || *sink_result == PlainSink::kTooLarge) return false;
  }
  if (*sink_result == PlainSink::kOk) *sink_result = sink.Finish();
  unsigned char tag[kTag];
  int flen = 0;
  return ReadUpTo(in_fd, tag, kTag) == static_cast<ssize_t>(kTag) &&
         EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) == 1 &&
         EVP_DecryptFinal_ex(ctx.get(), pbuf.data(), &flen) == 1;
}

// Format 1 (one tag for the whole file). Uncompressed: one pass into the temp
// file, committed only when the tag verifies. Compressed: a first pass
// decrypts and inflates without writing anything, counting the output, and
// checks the tag; only an authentic file gets a second pass, which writes at
// most the counted size (so a file swapped between the passes cannot make it
// write more) and checks the tag again before the commit.
bool OpenFile1(const Key& key, std::string_view aad, int in_fd, uint64_t size, const fs::path& src,
               const fs::path& dst, std::string* error, uint64_t* written) {
  unsigned char header[kFileHeader1];
  if (size < kFileHeader1 + kTag || ReadUpTo(in_fd, header, kFileHeader1) != static_cast<ssize_t>(kFileHeader1)) {
    *error = Quoted(src) + " is not a sealed object file (damaged or truncated)";
    return false;
  }
  const bool compressed = (header[4] & kFlagDeflated) != 0;
  uint64_t limit = std::numeric_limits<uint64_t>::max();
  if (compressed) {
    PlainSink counter(-1, true, limit);
    PlainSink::Result r = PlainSink::kOk;
    if (!PassFile1(key, aad, in_fd, size, header, counter, &r) || r != PlainSink::kOk) {
      *error = Damaged(src);
      return false;
    }
    limit = counter.total();
  }
  io::TempFile tmp;
  if (!OpenTempFor(dst, 0600, &tmp, error)) return false;
  const int out_fd = tmp.fd();
  PlainSink sink(out_fd, compressed, limit);
  PlainSink::Result r = PlainSink::kOk;
  bool ok = PassFile1(key, aad, in_fd, size, header, sink, &r);
  if (r == PlainSink::kWriteFailed) {
    *error = Errno("write", dst, errno);
    tmp.Discard();
    return false;
  }
  if (!ok || r != PlainSink::kOk || (compressed && sink.total() != limit)) {
    *error = Damaged(src);
    tmp.Discard();
    return false;
  }
  if (::fsync(out_fd) != 0) {
    *error = Errno("sync", dst, errno);
    tmp.Discard();
    return false;
  }
  const char* stage = "write";
  if (int e = tmp.Commit(dst.filename().string(), &stage)) {
    *error = Errno(stage, dst, e);
    return false;
  }
  if (written) *written = sink.total();
  return true;
}

}  // namespace

bool OpenFile(const Key& key, std::string_view aad, const fs::path& src, const fs::path& dst, std::string* error,
              uint64_t* written) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  struct stat st;
  if (::fstat(in.fd, &st) != 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  unsigned char magic[4];
  if (ReadUpTo(in.fd, magic, 4) != 4 || ::lseek(in.fd, 0, SEEK_SET) != 0) {
    *error = Quoted(src) + " is not a sealed object file (damaged or truncated)";
    return false;
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (std::memcmp(magic, kFileMagic2, 4) == 0) return OpenFile2(key, aad, in.fd, size, src, dst, error, written);
  if (std::memcmp(magic, kFileMagic1, 4) == 0) return OpenFile1(key, aad, in.fd, size, src, dst, error, written);
  *error = Quoted(src) + " is not a sealed object file (damaged or truncated)";
  return false;
}

bool WriteFileAtomic(const fs::path& path, std::string_view data, unsigned mode, std::string* error) {
  const char* stage = "write";
  if (int e = io::WriteFileAtomic(path, data, mode, &stage)) {
    *error = Errno(stage, path, e);
    return false;
  }
  return true;
}

}  // namespace plinth::crypto
