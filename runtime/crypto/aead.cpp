#include "runtime/crypto/aead.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/io/durable.h"

namespace plinth::crypto {

namespace fs = std::filesystem;

namespace {

constexpr uint8_t kBlobFormat = 1;
constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;
constexpr char kFileMagic[4] = {'P', 'L', 'N', 'F'};
constexpr size_t kFileHeader = 4 + 1 + 4 + kNonce;
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

}  // namespace

std::string RandomHex(size_t n);

namespace {

// Creates `dst`'s directory and opens its temp file for writing; the file is
// committed with io::CommitTemp, or unlinked on failure.
bool OpenTempFor(const fs::path& dst, unsigned mode, fs::path* tmp, int* fd, std::string* error) {
  if (int e = io::MakeDirs(dst.parent_path())) {
    *error = Errno("create", dst.parent_path(), e);
    return false;
  }
  std::string name = ".";
  name += dst.filename().string();
  name += '.';
  name += RandomHex(8);
  name += ".tmp";
  *tmp = dst.parent_path() / name;
  *fd = ::open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (*fd < 0) {
    *error = Errno("write", dst, errno);
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
  bool ok = InitGcm(ctx.get(), true, key, nonce, aad) &&
            EVP_EncryptUpdate(ctx.get(), ct, &len, U(plaintext), static_cast<int>(plaintext.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, ct + plaintext.size()) == 1;
  if (!ok) *error = "AES-256-GCM encryption failed";
  return ok;
}

bool OpenBlob(const Key& key, std::string_view aad, std::string_view blob, std::string* plaintext,
              uint32_t* key_version, std::string* error) {
  if (blob.size() < kBlobOverhead || static_cast<uint8_t>(blob[0]) != kBlobFormat) {
    *error = "not a sealed value";
    return false;
  }
  const unsigned char* p = U(blob);
  if (key_version) *key_version = GetU32(p + 1);
  const unsigned char* nonce = p + 5;
  const unsigned char* ct = nonce + kNonce;
  size_t ct_len = blob.size() - kBlobOverhead;
  plaintext->assign(ct_len, '\0');
  auto* out = reinterpret_cast<unsigned char*>(plaintext->data());
  Ctx ctx = NewCtx();
  int len = 0;
  bool ok = InitGcm(ctx.get(), false, key, nonce, aad) &&
            EVP_DecryptUpdate(ctx.get(), out, &len, ct, static_cast<int>(ct_len)) == 1 &&
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, const_cast<unsigned char*>(ct + ct_len)) ==
                1 &&
            EVP_DecryptFinal_ex(ctx.get(), out + len, &len) == 1;
  if (!ok) {
    plaintext->clear();
    *error = "authentication failed (wrong key, or the value was changed or moved)";
  }
  return ok;
}

bool SealFile(const Key& key, uint32_t key_version, std::string_view aad, const fs::path& src, const fs::path& dst,
              bool compress, std::string* error, uint64_t* written) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  fs::path tmp;
  int out_fd = -1;
  if (!OpenTempFor(dst, 0600, &tmp, &out_fd, error)) return false;
  Fd out(out_fd);
  auto fail = [&](std::string why) {
    *error = std::move(why);
    ::unlink(tmp.c_str());
    return false;
  };
  unsigned char header[kFileHeader];
  std::memcpy(header, kFileMagic, 4);
  header[4] = compress ? 1 : 0;
  PutU32(header + 5, key_version);
  unsigned char* nonce = header + 9;
  if (RAND_bytes(nonce, kNonce) != 1) return fail("no random bytes for a nonce");
  if (!WriteAll(out.fd, header, kFileHeader)) return fail(Errno("write", dst, errno));
  Ctx ctx = NewCtx();
  if (!InitGcm(ctx.get(), true, key, nonce, aad)) return fail("AES-256-GCM encryption failed");
  // The header is authenticated too: flags and key version cannot be flipped.
  int len = 0;
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &len, header, kFileHeader) != 1) return fail("AES-256-GCM failed");

  std::vector<unsigned char> buf(kChunk), zbuf(kChunk + 1024), cbuf(kChunk + 1024 + 32);
  uint64_t total = kFileHeader;
  auto emit = [&](const unsigned char* p, size_t n) {
    int clen = 0;
    if (n == 0) return true;
    if (EVP_EncryptUpdate(ctx.get(), cbuf.data(), &clen, p, static_cast<int>(n)) != 1) return false;
    total += static_cast<uint64_t>(clen);
    return WriteAll(out.fd, cbuf.data(), static_cast<size_t>(clen));
  };
  z_stream zs{};
  if (compress && deflateInit(&zs, 6) != Z_OK) return fail("cannot start compression");
  std::unique_ptr<z_stream, int (*)(z_stream*)> zguard(compress ? &zs : nullptr, deflateEnd);
  for (;;) {
    ssize_t n = ReadUpTo(in.fd, buf.data(), buf.size());
    if (n < 0) return fail(Errno("read", src, errno));
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
  unsigned char tag[kTag];
  int flen = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), cbuf.data(), &flen) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, tag) != 1) {
    return fail("AES-256-GCM encryption failed");
  }
  if (!WriteAll(out.fd, tag, kTag)) return fail(Errno("write", dst, errno));
  total += kTag;
  if (::fsync(out.fd) != 0) return fail(Errno("sync", dst, errno));
  const char* stage = "write";
  if (int e = io::CommitTemp(tmp, dst, &stage)) {
    *error = Errno(stage, dst, e);
    return false;
  }
  if (written) *written = total;
  return true;
}

bool OpenFile(const Key& key, std::string_view aad, const fs::path& src, const fs::path& dst, std::string* error,
              uint64_t* written) {
  Fd in(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  off_t size = ::lseek(in.fd, 0, SEEK_END);
  if (size < 0 || ::lseek(in.fd, 0, SEEK_SET) != 0) {
    *error = Errno("read", src, errno);
    return false;
  }
  unsigned char header[kFileHeader];
  if (static_cast<size_t>(size) < kFileHeader + kTag || ReadUpTo(in.fd, header, kFileHeader) != kFileHeader ||
      std::memcmp(header, kFileMagic, 4) != 0) {
    *error = Quoted(src) + " is not a sealed object file (damaged or truncated)";
    return false;
  }
  bool compressed = (header[4] & 1) != 0;
  const unsigned char* nonce = header + 9;
  fs::path tmp;
  int out_fd = -1;
  if (!OpenTempFor(dst, 0644, &tmp, &out_fd, error)) return false;
  Fd out(out_fd);
  auto fail = [&](std::string why) {
    *error = std::move(why);
    ::unlink(tmp.c_str());
    return false;
  };
  Ctx ctx = NewCtx();
  int len = 0;
  if (!InitGcm(ctx.get(), false, key, nonce, aad) ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, header, kFileHeader) != 1) {
    return fail("AES-256-GCM decryption failed");
  }
  uint64_t remaining = static_cast<uint64_t>(size) - kFileHeader - kTag;
  std::vector<unsigned char> buf(kChunk), pbuf(kChunk + 32), zbuf(4 * kChunk);
  uint64_t total = 0;
  z_stream zs{};
  if (compressed && inflateInit(&zs) != Z_OK) return fail("cannot start decompression");
  std::unique_ptr<z_stream, int (*)(z_stream*)> zguard(compressed ? &zs : nullptr, inflateEnd);
  bool stream_end = !compressed;
  const std::string damaged = Quoted(src) +
                              " failed authentication (wrong key, or the file was changed, truncated or moved); "
                              "nothing was written";
  while (remaining > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, buf.size()));
    if (ReadUpTo(in.fd, buf.data(), want) != static_cast<ssize_t>(want)) return fail(Errno("read", src, errno));
    remaining -= want;
    int plen = 0;
    if (EVP_DecryptUpdate(ctx.get(), pbuf.data(), &plen, buf.data(), static_cast<int>(want)) != 1) {
      return fail("AES-256-GCM decryption failed");
    }
    if (!compressed) {
      if (!WriteAll(out.fd, pbuf.data(), static_cast<size_t>(plen))) return fail(Errno("write", dst, errno));
      total += static_cast<uint64_t>(plen);
      continue;
    }
    zs.next_in = pbuf.data();
    zs.avail_in = static_cast<uInt>(plen);
    while (zs.avail_in > 0 && !stream_end) {
      zs.next_out = zbuf.data();
      zs.avail_out = static_cast<uInt>(zbuf.size());
      int rc = inflate(&zs, Z_NO_FLUSH);
      if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return fail(damaged);
      size_t got = zbuf.size() - zs.avail_out;
      if (!WriteAll(out.fd, zbuf.data(), got)) return fail(Errno("write", dst, errno));
      total += got;
      if (rc == Z_STREAM_END) stream_end = true;
      if (rc == Z_BUF_ERROR) break;
    }
  }
  // Drain what inflate still holds.
  while (compressed && !stream_end) {
    zs.next_out = zbuf.data();
    zs.avail_out = static_cast<uInt>(zbuf.size());
    int rc = inflate(&zs, Z_FINISH);
    size_t got = zbuf.size() - zs.avail_out;
    if (got > 0 && !WriteAll(out.fd, zbuf.data(), got)) return fail(Errno("write", dst, errno));
    total += got;
    if (rc == Z_STREAM_END) stream_end = true;
    else if (got == 0) return fail(damaged);
  }
  unsigned char tag[kTag];
  if (ReadUpTo(in.fd, tag, kTag) != static_cast<ssize_t>(kTag)) return fail(Errno("read", src, errno));
  int flen = 0;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), pbuf.data(), &flen) != 1) {
    return fail(damaged);
  }
  if (::fsync(out.fd) != 0) return fail(Errno("sync", dst, errno));
  const char* stage = "write";
  if (int e = io::CommitTemp(tmp, dst, &stage)) {
    *error = Errno(stage, dst, e);
    return false;
  }
  if (written) *written = total;
  return true;
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
