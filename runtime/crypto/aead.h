// AES-256-GCM sealing (OpenSSL EVP) shared by the state store and bucket
// storage: one blob format for records and keys, and a streaming file format
// for objects in a bucket's archive tier and stored versions
// (docs/storage.md, "Sealed files"; docs/state.md, "Encryption").
//
// Blob (records, wrapped keys), format 2:
//   byte 0      format (2)
//   bytes 1-4   key version (big endian)
//   bytes 5-16  nonce (12 random bytes, fresh for every seal)
//   ...         ciphertext
//   last 16     GCM tag
// The GCM associated data is bytes 0-4 followed by the caller's associated
// data, so the format byte and key version cannot be changed either.
// Format 1 had the same layout but authenticated only the caller's data (a
// forged key version went unnoticed); OpenBlob reads it only when the caller
// asks (accept_format1: wrapped bucket keys written by older versions, and
// the state store's one-time migration). Turning a format-2 blob into a
// format-1 one does not help an attacker: the tag no longer matches.
//
// File, format 2 (archived objects, stored versions; everything SealFile
// writes):
//   bytes 0-3    magic "PLN2"
//   byte 4       flags (bit 0: the plaintext was deflated with zlib)
//   bytes 5-8    key version (big endian)
//   bytes 9-20   file nonce (12 random bytes)
//   bytes 21-28  plaintext size in bytes (big endian; before compression)
//   then chunks: the sealed stream (the plaintext, or its deflate stream) cut
//   into 1 MiB pieces, each stored as its ciphertext followed by its own
//   16-byte GCM tag. Every chunk but the last holds exactly 1 MiB; the last
//   holds 0 to 1 MiB (an empty file is one empty last chunk).
// Chunk i is sealed with nonce = file nonce XOR i (big endian, in the last 8
// bytes) and associated data = the 29 header bytes, i (8 bytes, big endian),
// a final-chunk byte (1 for the last chunk, else 0), the caller's associated
// data. So the header is authenticated by every chunk, and a chunk that is
// altered, moved, reordered, dropped or cut off (truncation leaves a last
// chunk not sealed as final) fails. OpenFile authenticates each chunk before
// it uses a byte of it: only authenticated data reaches inflate, and its
// output is capped at the recorded plaintext size, which must be matched
// exactly. A chunk failing halfway through leaves at most the authenticated
// output of the earlier chunks in the temporary file, which is removed.
//
// File, format 1 (written by older versions, still read): the magic "PLNF",
// the flags byte, the key version, the nonce, then the ciphertext of the
// whole stream and one tag (16 bytes) at the end; the 21 header bytes are
// associated data. Uncompressed: decrypted into the temporary file and
// committed only once the tag verified. Compressed: a first pass decrypts,
// inflates and counts the output, writing nothing, and checks the tag; only
// an authentic file gets a second pass that writes at most the counted size
// and checks the tag again. Rewriting such an object (archiving it again, a
// new version) stores it in format 2.
//
// OpenFile writes the plaintext to a temporary file (mode 0600) and renames
// it into place only after everything verified, so a tampered file never
// leaves unauthenticated bytes at the destination.
//
// The associated data binds a sealed value to where it belongs (a state
// row, a bucket and object key): a blob copied elsewhere fails to open.
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
// version recorded in it once authenticated. Format-1 blobs are refused
// unless `accept_format1` (see the header comment). Errors: "not a sealed
// value", "sealed in format 1 ...", "authentication failed (wrong key, or the
// value was changed or moved)".
bool OpenBlob(const Key& key, std::string_view aad, std::string_view blob, std::string* plaintext,
              uint32_t* key_version, std::string* error, bool accept_format1 = false);
// The format byte of something that looks like a sealed blob (1 or 2); 0 when
// it is too short or has another first byte.
uint8_t BlobFormatOf(std::string_view blob);
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
