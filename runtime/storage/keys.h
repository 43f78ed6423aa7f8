// Keys for bucket storage (docs/storage.md, "Encryption").
//
// The workspace key (32 random bytes, file mode 0600, by default
// `.plinth/<workspace>/workspace.key`, or the file PLINTH_WORKSPACE_KEY_FILE
// names) wraps one data key per bucket. A bucket's wrapped key is stored in
// the state (the sensitive `key` attribute) and in the bucket's metadata
// file, so neither a lost state record nor a lost metadata file loses it; it
// is useless without the workspace key. The data key seals the bucket's
// stored versions and archive tier; its backup repository's password is
// derived from it (HMAC-SHA-256 with a fixed label), so no password is ever
// stored in clear.
//
// Wrapped form: "pk1:<workspace key id>:<hex of the sealed data key>", where
// the sealed blob (crypto blob format 2, its header authenticated) has the
// associated data "plinth-bucket-key-v1\0<bucket id>". Keys wrapped by older
// versions (blob format 1) still unwrap; they are not rewritten.
#pragma once

#include <filesystem>
#include <string>

#include "runtime/crypto/aead.h"
#include "runtime/provider/provider.h"

namespace plinth::storage {

struct WorkspaceKey {
  crypto::Key key{};
  std::string id;  // crypto::KeyId(key, "plinth-workspace-key-v1")
};

// The workspace key file for a workspace directory (`.plinth/<workspace>`):
// $PLINTH_WORKSPACE_KEY_FILE when set, else `<dir>/workspace.key`.
std::filesystem::path WorkspaceKeyPath(const std::filesystem::path& workspace_dir);

// Loads the key (64 hex characters, optionally followed by a newline);
// creates it with mode 0600 when it is missing and `create` is true. A file
// readable by group or others is refused.
runtime::Result<WorkspaceKey> LoadWorkspaceKey(const std::filesystem::path& path, bool create);

// A fresh data key for `bucket_id`, wrapped.
runtime::Result<std::string> NewWrappedKey(const WorkspaceKey& ws, const std::string& bucket_id);
runtime::Result<crypto::Key> UnwrapKey(const WorkspaceKey& ws, const std::string& wrapped,
                                       const std::string& bucket_id);

// The restic repository password of a bucket (hex of a derived key).
std::string BackupPassword(const crypto::Key& data_key);

}  // namespace plinth::storage
