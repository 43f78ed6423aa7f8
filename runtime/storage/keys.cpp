#include "runtime/storage/keys.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "runtime/io/durable.h"

namespace plinth::storage {

namespace fs = std::filesystem;
using runtime::ProviderError;
using runtime::Result;

namespace {

constexpr const char* kWorkspaceLabel = "plinth-workspace-key-v1";
constexpr const char* kWrapPrefix = "pk1:";

std::string WrapAad(const std::string& bucket_id) {
  std::string aad = "plinth-bucket-key-v1";
  aad.push_back('\0');
  aad += bucket_id;
  return aad;
}

ProviderError Fail(std::string m) { return ProviderError{std::move(m), false}; }

}  // namespace

fs::path WorkspaceKeyPath(const fs::path& workspace_dir) {
  if (const char* env = std::getenv("PLINTH_WORKSPACE_KEY_FILE"); env && *env) return fs::path(env);
  return workspace_dir / "workspace.key";
}

Result<WorkspaceKey> LoadWorkspaceKey(const fs::path& path, bool create) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return Fail("cannot read the workspace key '" + path.string() + "': " + std::strerror(errno));
    if (!create) {
      return Fail("no workspace key at '" + path.string() +
                  "'; it is created by the first apply of a bucket (or set PLINTH_WORKSPACE_KEY_FILE)");
    }
    WorkspaceKey k;
    if (!crypto::RandomKey(&k.key)) return Fail("no random bytes for the workspace key");
    if (int e = io::MakeDirs(path.parent_path())) {
      return Fail("cannot create '" + path.parent_path().string() + "': " + std::strerror(e));
    }
    std::string text = crypto::Hex(k.key.data(), k.key.size()) + "\n";
    // O_EXCL semantics through a link: two processes creating the key at the
    // same time must agree on one, so write a temp file and link it.
    fs::path tmp = path.parent_path() / ("." + path.filename().string() + "." + crypto::RandomHex(4) + ".tmp");
    const char* stage = "write";
    if (int e = io::WriteFileAtomic(tmp, text, 0600, &stage)) {
      return Fail("cannot " + std::string(stage) + " the workspace key '" + path.string() + "': " + std::strerror(e));
    }
    int rc = ::link(tmp.c_str(), path.c_str());
    int e = errno;
    ::unlink(tmp.c_str());
    if (rc != 0 && e != EEXIST) {
      return Fail("cannot write the workspace key '" + path.string() + "': " + std::strerror(e));
    }
    io::SyncDir(path.parent_path());
    return LoadWorkspaceKey(path, false);
  }
  if (!S_ISREG(st.st_mode)) return Fail("the workspace key '" + path.string() + "' is not a regular file");
  if ((st.st_mode & 077) != 0) {
    std::ostringstream mode;
    mode << std::oct << (st.st_mode & 0777);
    return Fail("the workspace key '" + path.string() + "' is readable by other users (mode " + mode.str() +
                "); run chmod 600 on it");
  }
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  std::string raw;
  WorkspaceKey k;
  if (text.size() != 64 || !crypto::FromHex(text, &raw) || raw.size() != 32) {
    return Fail("the workspace key '" + path.string() + "' is damaged (expected 64 hexadecimal characters)");
  }
  std::memcpy(k.key.data(), raw.data(), 32);
  k.id = crypto::KeyId(k.key, kWorkspaceLabel);
  return k;
}

Result<std::string> NewWrappedKey(const WorkspaceKey& ws, const std::string& bucket_id) {
  crypto::Key data{};
  if (!crypto::RandomKey(&data)) return Fail("no random bytes for a bucket key");
  std::string blob, error;
  bool ok = crypto::SealBlob(ws.key, 1, WrapAad(bucket_id),
                             std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), &blob, &error);
  data.fill(0);
  if (!ok) return Fail(error);
  return std::string(kWrapPrefix) + ws.id + ":" +
         crypto::Hex(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
}

Result<crypto::Key> UnwrapKey(const WorkspaceKey& ws, const std::string& wrapped, const std::string& bucket_id) {
  std::string_view w = wrapped;
  if (w.substr(0, 4) != kWrapPrefix) return Fail("the key of bucket '" + bucket_id + "' is not a wrapped key");
  w.remove_prefix(4);
  size_t colon = w.find(':');
  if (colon == std::string_view::npos) return Fail("the key of bucket '" + bucket_id + "' is damaged");
  std::string_view id = w.substr(0, colon);
  if (id != ws.id) {
    return Fail("the key of bucket '" + bucket_id + "' was wrapped by workspace key " + std::string(id) +
                "; the workspace key in use is " + ws.id +
                " (restore the workspace key file it was created with, or set PLINTH_WORKSPACE_KEY_FILE)");
  }
  // Keys wrapped by older versions are format-1 blobs: their key version
  // byte is not authenticated, but nothing reads it (every wrap uses version
  // 1), and a format-2 blob relabelled as format 1 fails authentication, so
  // accepting them keeps existing buckets readable without weakening new ones.
  std::string blob, plain, error;
  if (!crypto::FromHex(w.substr(colon + 1), &blob) ||
      !crypto::OpenBlob(ws.key, WrapAad(bucket_id), blob, &plain, nullptr, &error, /*accept_format1=*/true) ||
      plain.size() != 32) {
    return Fail("the key of bucket '" + bucket_id + "' cannot be unwrapped: it is damaged or belongs elsewhere");
  }
  crypto::Key k{};
  std::memcpy(k.data(), plain.data(), 32);
  return k;
}

std::string BackupPassword(const crypto::Key& data_key) {
  crypto::Key p = crypto::Derive(data_key, "plinth-restic-password-v1");
  return crypto::Hex(p.data(), p.size());
}

}  // namespace plinth::storage
