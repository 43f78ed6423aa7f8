// AES-256-GCM sealing (OpenSSL EVP) shared by the state store and bucket
// storage: one blob format for records and keys, and a streaming file format
// for objects in a bucket's archive tier and stored versions.
//
// Blob (records, wrapped keys):
//   byte 0      format (1)
//   bytes 1-4   key version (big endian)
//   bytes 5-16  nonce (12 random bytes, fresh for every seal)
//   ...         ciphertext
//   last 16     GCM tag
//
// File (archived objects, stored versions): the magic "PLNF", one flags byte
// (bit 0: the plaintext was deflated with zlib before sealing), the key
// version (4 bytes, big endian), the nonce (12 bytes), the ciphertext, the
// tag (16 bytes). Files are sealed and opened in 1 MiB chunks, so objects of
// any size stream through a fixed buffer. OpenFile writes the plaintext to a
// temporary file and renames it into place only after the tag verified, so a
// tampered file never leaves unauthenticated bytes at the destination.
//
// The associated data binds a sealed value to where it belongs (a state
// address, a bucket and object key): a blob copied elsewhere fails to open.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace plinth::crypto {

using Key = std::array<uint8_t, 32>;

// 32 random bytes from OpenSSL's CSPRNG; false only if it has no entropy.
bool RandomKey(Key* key);
// `n` random bytes as lowercase hex (2n characters).
std::string RandomHex(size_t n);

// First 8 bytes of SHA-256(label || key), hex: names a key without revealing it.
std::string KeyId(const Key& key, std::string_view label);

// HMAC-SHA-256(key, label): a sub-key or secret derived for one purpose.
Key Derive(const Key& key, std::string_view label);

std::string Hex(const uint8_t* data, size_t n);
bool FromHex(std::string_view hex, std::string* out);

// Blob sealing. Seal fails only when OpenSSL does (no randomness).
bool SealBlob(const Key& key, uint32_t key_version, std::string_view aad, std::string_view plaintext,
              std::string* blob, std::string* error);
// Opens a blob sealed with `key`; `key_version` (if not null) receives the
// version recorded in it. Errors: "not a sealed value", "authentication
// failed (wrong key, or the value was changed or moved)".
bool OpenBlob(const Key& key, std::string_view aad, std::string_view blob, std::string* plaintext,
              uint32_t* key_version, std::string* error);
constexpr size_t kBlobOverhead = 1 + 4 + 12 + 16;

// File sealing (see the header comment). `dst` is written atomically (temp
// file in its directory, fsync, rename, fsync of the directory). Returns the
// sealed file's size in `written` when not null.
bool SealFile(const Key& key, uint32_t key_version, std::string_view aad, const std::filesystem::path& src,
              const std::filesystem::path& dst, bool compress, std::string* error, uint64_t* written = nullptr);
bool OpenFile(const Key& key, std::string_view aad, const std::filesystem::path& src,
              const std::filesystem::path& dst, std::string* error, uint64_t* written = nullptr);

// Writes `data` to `path` atomically with the given permission bits.
bool WriteFileAtomic(const std::filesystem::path& path, std::string_view data, unsigned mode, std::string* error);

}  // namespace plinth::crypto
