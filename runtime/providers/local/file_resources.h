// `config_file` resources of the local provider (docs/providers/local.md,
// "Configuration files"): a file anywhere on this machine, by absolute path,
// with its content, mode, owner and group, an optional validation command
// run on the new content before it is swapped in, and an optional reload
// command run after the swap.
//
// Write (create and update): the content goes into a temp file created
// exclusively in the target's own directory (io::TempFile), which gets its
// owner, group and mode, is fsynced, and is checked by `validate` (argv, with
// "{path}" replaced by the temp file's path); only when that exits 0 is it
// renamed over the target and the directory fsynced; then `reload` runs. A
// validation that fails, hangs past `timeout` or cannot start removes the
// temp file and leaves the old file exactly as it was; a reload that fails is
// an error after the swap (the file is in place; the next apply writes it
// again, which changes nothing, and runs reload again). Children go through
// runtime/process with the `timeout` deadline (SIGTERM, then SIGKILL).
//
// Read reports what is on disk: `content_digest` ("sha256:<hex>", or for
// sensitive content "hmac:<hex>" keyed by the workspace key so the state
// holds no guessable digest of a secret), `mode`, `owner`/`group` (only where
// the configuration sets them), `exists` (false when the file is gone or a
// symlink or directory stands at the path), and the content itself when it
// is not sensitive and is UTF-8 (the plan then shows what is on disk against
// what is configured). Sensitive content never leaves this file: the state
// holds its digest in its place (StateValues), validation output is withheld
// from messages, and the plan compares digests.
//
// Paths: absolute and clean (no ".", "..", "//", trailing "/"); not inside
// the workspace directory (state, keys, the data root). The target's
// directory must exist; the final component is never followed (a symlink
// there is replaced by the rename, and reads as the file missing).
//
// Thread safety: every function is pure or touches only its own file; two
// config_file resources with one path are refused at plan (CheckPlan).
#pragma once

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "runtime/provider/provider.h"

namespace plinth::runtime::config_file {

struct Context {
  std::filesystem::path workspace_dir;      // refused as a target; holds the state and keys
  std::filesystem::path workspace_key;      // keys the digest of sensitive content
  const std::atomic<bool>* stop = nullptr;  // Ctrl-C: a running validate/reload is ended
};

// Configuration errors (path, mode, owner, group, commands, timeout), each a
// complete message naming the attribute and what to do.
std::vector<std::string> Validate(const ValueMap& config);

// Planned values: mode normalised to four octal digits, `exists` true,
// `content_digest` of the configured content (unknown while the content is),
// and, when the prior state holds the digest of sensitive content equal to
// the configured content's, the prior's content value (no spurious change).
// `id` is set to the path. `prior`: the refreshed state or null.
void Plan(ValueMap& planned, const ValueMap* prior, const Context& ctx);

// Create and Update: the write described above.
Result<ResourceObject> Write(const ValueMap& planned, const Context& ctx);

// The file as it is on disk, as above; nullopt never (a missing file is
// drift an update repairs: `exists` false). `prior`: the state.
Result<std::optional<ResourceObject>> Read(const std::string& id, const ValueMap& prior, const Context& ctx);

// Removes the file (keep_on_destroy: leaves it). A file already gone is done.
Result<Done> Delete(const std::string& id, const ValueMap& prior);

// Takes an existing file under management: its content (non-sensitive),
// mode, owner and group.
Result<ResourceObject> Import(const std::string& id, const Context& ctx);

// What the state keeps: sensitive content replaced by its keyed digest.
ValueMap StateValues(const ValueMap& attributes, const Context& ctx);

// "sha256:<hex>" of `content`, or "hmac:<hex>" (HMAC-SHA-256 under `key` of
// the path and content) when `sensitive`; empty when a key is needed and
// there is none.
std::string ContentDigest(const std::string& path, const std::string& content, bool sensitive,
                          const std::filesystem::path& workspace_key, bool create_key);

}  // namespace plinth::runtime::config_file
