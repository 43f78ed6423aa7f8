#include "runtime/storage/backup.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>

#include "runtime/process/process.h"

namespace plinth::storage {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* BackupErrorCodeName(BackupErrorCode code) {
  switch (code) {
    case BackupErrorCode::kResticMissing: return "restic-missing";
    case BackupErrorCode::kNoRepository: return "no-repository";
    case BackupErrorCode::kWrongPassword: return "wrong-password";
    case BackupErrorCode::kCorrupt: return "corrupt";
    case BackupErrorCode::kLocked: return "locked";
    case BackupErrorCode::kTimeout: return "timeout";
    case BackupErrorCode::kNotFound: return "not-found";
    case BackupErrorCode::kInvalidArgument: return "invalid-argument";
    case BackupErrorCode::kIo: return "io";
    case BackupErrorCode::kFailed: return "failed";
  }
  return "failed";
}

namespace {

BackupError Fail(BackupErrorCode code, std::string message, bool retryable = false) {
  return BackupError{code, std::move(message), retryable, {}};
}

std::string Quoted(const std::string& s) {
  return "'" + s + "'";
}

std::string Lowered(std::string reason) {
  if (!reason.empty()) reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  return reason;
}

std::string ErrnoText(int err) {
  return Lowered(std::strerror(err));
}

// ------------------------------------------------------------------ time

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::optional<TimePoint> ParseRfc3339(std::string_view s) {
  using namespace std::chrono;
  int y, mo, d, h, mi, sec;
  if (!Digits(s, 0, 4, &y) || s.size() < 20 || s[4] != '-' || !Digits(s, 5, 2, &mo) || s[7] != '-' ||
      !Digits(s, 8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !Digits(s, 11, 2, &h) ||
      s[13] != ':' || !Digits(s, 14, 2, &mi) || s[16] != ':' || !Digits(s, 17, 2, &sec)) {
    return std::nullopt;
  }
  year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;  // 60: a leap second
  size_t pos = 19;
  nanoseconds frac{0};
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    size_t start = pos;
    int64_t ns = 0, scale = 100000000;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      ns += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
    frac = nanoseconds(ns);
  }
  minutes offset{0};
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!Digits(s, pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !Digits(s, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = minutes(oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  auto t = sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) + frac - offset;
  return time_point_cast<system_clock::duration>(t);
}

std::string FormatRfc3339(TimePoint t) {
  using namespace std::chrono;
  auto day_start = floor<days>(t);
  year_month_day ymd{day_start};
  auto in_day = t - day_start;
  auto secs = floor<seconds>(in_day);
  auto sub = duration_cast<nanoseconds>(in_day - secs).count();
  hh_mm_ss<seconds> hms{secs};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  std::string out = buf;
  if (sub != 0) {
    char f[16];
    std::snprintf(f, sizeof f, ".%09lld", static_cast<long long>(sub));
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    out += fs;
  }
  return out + "Z";
}

namespace {

// restic backup --time takes "2006-01-02 15:04:05" in the child's zone (UTC).
std::string ResticTimeArg(TimePoint t) {
  std::string s = FormatRfc3339(std::chrono::floor<std::chrono::seconds>(t));
  s[10] = ' ';
  s.pop_back();  // the 'Z'
  return s;
}

// ------------------------------------------------------------------ child processes

// restic runs through the process layer (runtime/process/process.h).
constexpr size_t kErrKeep = 256 * 1024;               // restic's stderr tail kept for errors
constexpr size_t kOutKeep = size_t{256} << 20;        // restic's JSON output (snapshot lists)
constexpr auto kTermGrace = std::chrono::seconds(5);  // from SIGTERM at the deadline to SIGKILL

bool Executable(const fs::path& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
}

// ------------------------------------------------------------------ validation

bool IsUrlRepository(const std::string& repo) {
  for (const char* scheme :
       {"local:", "sftp:", "rest:", "s3:", "azure:", "gs:", "b2:", "swift:", "rclone:"}) {
    if (repo.rfind(scheme, 0) == 0) return true;
  }
  return false;
}

std::optional<BackupError> CheckTags(const std::vector<std::string>& tags) {
  for (const auto& t : tags) {
    if (t.empty() || t.find(',') != std::string::npos || t.find('\0') != std::string::npos ||
        t.find('\n') != std::string::npos) {
      return Fail(BackupErrorCode::kInvalidArgument,
                  "invalid backup tag " + Quoted(t) + ": a tag is not empty and has no comma or newline");
    }
  }
  return std::nullopt;
}

// restic --tag a,b selects snapshots with both tags.
std::optional<std::string> TagFilter(const std::vector<std::string>& tags) {
  if (tags.empty()) return std::nullopt;
  std::string s = "--tag=";
  for (size_t i = 0; i < tags.size(); ++i) s += (i ? "," : "") + tags[i];
  return s;
}

std::string TagList(const std::vector<std::string>& tags) {
  std::string s;
  for (size_t i = 0; i < tags.size(); ++i) s += (i ? ", " : "") + tags[i];
  return s;
}

bool IsSnapshotRef(std::string_view id) {
  if (id == "latest") return true;
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f');
  });
}

bool ValidSubset(const std::string& s) {
  if (s.empty()) return false;
  auto all_digits = [](std::string_view v) {
    return !v.empty() && std::all_of(v.begin(), v.end(),
                                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  };
  if (auto slash = s.find('/'); slash != std::string::npos) {
    return all_digits(std::string_view(s).substr(0, slash)) &&
           all_digits(std::string_view(s).substr(slash + 1));
  }
  if (s.back() == '%') {
    std::string_view num = std::string_view(s).substr(0, s.size() - 1);
    auto dot = num.find('.');
    if (dot == std::string_view::npos) return all_digits(num);
    return all_digits(num.substr(0, dot)) && all_digits(num.substr(dot + 1));
  }
  std::string_view num = s;
  if (std::string("KMGTkmgt").find(s.back()) != std::string::npos) num = num.substr(0, num.size() - 1);
  return all_digits(num);
}

// ------------------------------------------------------------------ restic output

uint64_t U64(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  return static_cast<uint64_t>(std::max(0.0, it->get<double>()));
}

double F64(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::vector<std::string> Strings(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || !it->is_array()) return out;
  for (const auto& v : *it)
    if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

// One snapshot object of `restic snapshots --json` / `forget --json`.
std::optional<Snapshot> ParseSnapshot(const json& j, std::string* why) {
  if (!j.is_object()) {
    *why = "a snapshot is not an object";
    return std::nullopt;
  }
  Snapshot s;
  s.id = Str(j, "id");
  auto t = ParseRfc3339(Str(j, "time"));
  if (s.id.empty() || !t) {
    *why = "a snapshot has no id or an unreadable time";
    return std::nullopt;
  }
  s.time = *t;
  s.short_id = Str(j, "short_id");
  if (s.short_id.empty()) s.short_id = s.id.substr(0, 8);
  s.hostname = Str(j, "hostname");
  s.paths = Strings(j, "paths");
  s.tags = Strings(j, "tags");
  if (auto it = j.find("summary"); it != j.end() && it->is_object()) {
    SnapshotSummary sum;
    sum.files_new = U64(*it, "files_new");
    sum.files_changed = U64(*it, "files_changed");
    sum.files_unmodified = U64(*it, "files_unmodified");
    sum.data_added = U64(*it, "data_added");
    sum.total_files_processed = U64(*it, "total_files_processed");
    sum.total_bytes_processed = U64(*it, "total_bytes_processed");
    s.summary = sum;
  }
  return s;
}

void SortByTime(std::vector<Snapshot>& v) {
  std::sort(v.begin(), v.end(), [](const Snapshot& a, const Snapshot& b) {
    return a.time != b.time ? a.time < b.time : a.id < b.id;
  });
}

// The first JSON document in `out` that starts a line with '[' or '{'
// (restic 0.14 prints prune's text after forget's JSON on the same stream).
std::optional<json> FirstJson(const std::string& out, char opener) {
  size_t pos = 0;
  while (pos < out.size()) {
    size_t nl = out.find('\n', pos);
    std::string_view line =
        std::string_view(out).substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (!line.empty() && line[0] == opener) {
      json j = json::parse(line, nullptr, false);
      if (!j.is_discarded()) return j;
    }
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return std::nullopt;
}

// stderr lines that say nothing about a failure.
bool Noise(std::string_view line) {
  static const char* const kNoise[] = {"using temporary cache",
                                       "create exclusive lock",
                                       "load indexes",
                                       "check all packs",
                                       "check snapshots",
                                       "no errors were found",
                                       "Load(",
                                       "restoring <Snapshot",
                                       "read group #",
                                       "[0:",
                                       "Is there a repository",
                                       "read all data",
                                       "created new cache"};
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return true;
  for (const char* n : kNoise)
    if (line.find(n) != std::string_view::npos) return true;
  return false;
}

std::vector<std::string> ErrorLines(const std::string& err, const std::string& repo) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < err.size()) {
    size_t nl = err.find('\n', pos);
    std::string line = err.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!Noise(line) && line != repo) out.push_back(line);
    if (nl == std::string::npos) break;
    pos = nl + 1;
  }
  return out;
}

std::string StripFatal(std::string line) {
  if (line.rfind("Fatal: ", 0) == 0) line.erase(0, 7);
  return Lowered(line);
}

bool Contains(const std::string& hay, const char* needle) {
  return hay.find(needle) != std::string::npos;
}

// ------------------------------------------------------------------ restore staging

// The first entry under `staging` whose counterpart under `target` is of
// another kind (a directory where a file goes, or the reverse); empty if none.
fs::path FirstConflict(const fs::path& staging, const fs::path& target, std::error_code& ec) {
  for (auto it = fs::directory_iterator(staging, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    fs::path dest = target / it->path().filename();
    auto dest_status = fs::symlink_status(dest, ec);
    if (ec) {
      if (ec == std::errc::no_such_file_or_directory) {
        ec.clear();
        continue;
      }
      return {};
    }
    if (!fs::exists(dest_status)) continue;
    bool src_dir = it->is_directory(ec) && !it->is_symlink(ec);
    bool dest_dir = fs::is_directory(dest_status);
    if (src_dir != dest_dir) return dest;
    if (src_dir) {
      fs::path inner = FirstConflict(it->path(), dest, ec);
      if (!inner.empty() || ec) return inner;
    }
  }
  return {};
}

// Moves the entries of `staging` into `target`: new entries by rename,
// files over same-named files (atomic rename), directories merged.
void MergeInto(const fs::path& staging, const fs::path& target, std::error_code& ec) {
  std::vector<fs::path> entries;
  for (auto it = fs::directory_iterator(staging, ec); !ec && it != fs::directory_iterator(); it.increment(ec))
    entries.push_back(it->path());
  for (const auto& src : entries) {
    if (ec) return;
    fs::path dest = target / src.filename();
    auto st = fs::symlink_status(dest, ec);
    ec.clear();
    if (fs::is_directory(st) && fs::is_directory(fs::symlink_status(src, ec))) {
      MergeInto(src, dest, ec);
    } else {
      fs::rename(src, dest, ec);
    }
  }
}

}  // namespace

// ------------------------------------------------------------------ repository

struct ResticRepository::Run {
  process::Outcome child;
  bool ok() const { return child.ok(); }
};

BackupResult<ResticRepository> ResticRepository::Create(RepositoryOptions options) {
  if (options.repository.empty()) {
    return Fail(BackupErrorCode::kInvalidArgument, "no backup repository given");
  }
  if (options.password.empty()) {
    return Fail(BackupErrorCode::kInvalidArgument,
                "no password for backup repository " + Quoted(options.repository) + "; restic requires one");
  }
  if (options.host.empty() || options.host.find_first_of(",\n") != std::string::npos) {
    return Fail(BackupErrorCode::kInvalidArgument, "invalid backup host name " + Quoted(options.host));
  }
  if (options.timeout.count() <= 0) {
    return Fail(BackupErrorCode::kInvalidArgument, "the restic timeout must be positive");
  }
  std::error_code ec;
  if (!IsUrlRepository(options.repository)) {
    options.repository = fs::absolute(options.repository, ec).lexically_normal().string();
    if (ec) return Fail(BackupErrorCode::kIo, "cannot resolve the backup repository path: " + ec.message());
    if (options.repository.size() > 1 && options.repository.back() == '/') options.repository.pop_back();
  }
  if (!options.cache_dir.empty()) options.cache_dir = fs::absolute(options.cache_dir, ec).lexically_normal();

  std::string wanted = options.restic_binary.empty() ? "restic" : options.restic_binary;
  std::string binary;
  if (wanted.find('/') != std::string::npos) {
    fs::path p = fs::absolute(wanted, ec);
    if (!Executable(p)) {
      return Fail(BackupErrorCode::kResticMissing,
                  "restic is not available: " + Quoted(p.string()) + " is not an executable file");
    }
    binary = p.string();
  } else {
    // The process layer's lookup: absolute PATH entries only, never the
    // current directory.
    const char* path_env = std::getenv("PATH");
    std::string path = path_env && *path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    std::optional<fs::path> found = process::FindExecutable(wanted, path);
    if (!found) {
      return Fail(BackupErrorCode::kResticMissing, "restic is not installed: no " + Quoted(wanted) +
                                                       " on PATH (" + path +
                                                       "); install the restic package to use backups");
    }
    binary = found->lexically_normal().string();
  }
  return ResticRepository(std::move(options), std::move(binary));
}

std::string ResticRepository::Scrub(std::string text) const {
  // A password shorter than 4 characters would turn ordinary words into
  // "(sensitive)"; restic never prints the password, so this is a second line
  // of defence, not the first.
  const std::string& pw = options_.password;
  if (pw.size() < 4) return text;
  for (size_t pos = text.find(pw); pos != std::string::npos; pos = text.find(pw, pos + 11)) {
    text.replace(pos, pw.size(), "(sensitive)");
  }
  return text;
}

ResticRepository::Run ResticRepository::Restic(std::vector<std::string> args, const fs::path& cwd,
                                               const std::function<void(std::string_view)>& on_line) const {
  process::Spec spec;
  spec.program = binary_;
  spec.args = {"--repo=" + options_.repository};
  if (options_.cache_dir.empty()) spec.args.push_back("--no-cache");
  for (auto& a : args) spec.args.push_back(std::move(a));

  spec.env = process::CurrentEnvironment();
  process::DropStateCredentials(spec.env);
  // PWD would make restic (Go's Getwd) record the caller's directory
  // spelling instead of the source's real path.
  std::erase_if(spec.env, [](const auto& kv) {
    const std::string& k = kv.first;
    return k.rfind("RESTIC_", 0) == 0 || k == "TZ" || k == "PWD" || k == "OLDPWD";
  });
  spec.env["TZ"] = "UTC";
  spec.env["RESTIC_PROGRESS_FPS"] = "2";
  if (!options_.cache_dir.empty()) spec.env["RESTIC_CACHE_DIR"] = options_.cache_dir.string();
  // The password's only way to restic; the layer wipes it once restic has started.
  spec.env["RESTIC_PASSWORD"] = options_.password;

  spec.cwd = cwd;
  spec.deadline = std::chrono::duration_cast<std::chrono::milliseconds>(options_.timeout);
  spec.kill_grace = kTermGrace;
  spec.max_stdout = kOutKeep;
  spec.max_stderr = kErrKeep;
  spec.on_stdout_line = on_line;

  Run run;
  run.child = process::Run(std::move(spec));
  run.child.err = Scrub(std::move(run.child.err));
  run.child.out = Scrub(std::move(run.child.out));
  return run;
}

// Classifies a failed run. `what` says what was attempted ("cannot back up
// '/src' to '/repo'").
BackupError ResticRepository::Failure(const Run& run, const std::string& what) const {
  const process::Outcome& c = run.child;
  const std::string& repo = options_.repository;
  if (!c.started) return Fail(BackupErrorCode::kResticMissing, what + ": " + c.start_error);
  if (c.timed_out) {
    return Fail(BackupErrorCode::kTimeout,
                what + ": restic did not finish within " + std::to_string(options_.timeout.count()) +
                    " s and was stopped; the repository may keep a stale lock until restic removes it",
                true);
  }
  const std::string& err = c.err;
  std::vector<std::string> lines = ErrorLines(err, repo);
  BackupError e;
  e.details = lines;
  if (Contains(err, "wrong password or no key found")) {
    e.code = BackupErrorCode::kWrongPassword;
    e.message = what + ": wrong password for the backup repository at " + Quoted(repo) +
                " (none of its keys opens with it)";
    return e;
  }
  if (Contains(err, "unable to open config file") ||
      Contains(err, "Is there a repository at the following location")) {
    e.code = BackupErrorCode::kNoRepository;
    std::string hint = options_.missing_hint.empty() ? "run `restic -r " + repo + " init` to create it"
                                                     : options_.missing_hint;
    e.message = what + ": no backup repository at " + Quoted(repo) + "; " + hint;
    return e;
  }
  if (Contains(err, "repository is already locked") || Contains(err, "unable to create lock")) {
    e.code = BackupErrorCode::kLocked;
    e.retryable = true;
    e.message = what + ": the backup repository at " + Quoted(repo) +
                " is locked by another restic process; retry when it has finished";
    return e;
  }
  if (Contains(err, "repository contains errors") || Contains(err, "ciphertext verification failed") ||
      Contains(err, "Pack ID does not match") || Contains(err, "unexpected file size") ||
      Contains(err, "ReadFull: unexpected EOF") ||
      (Contains(err, "data/") && Contains(err, "no such file"))) {
    e.code = BackupErrorCode::kCorrupt;
    std::string first;
    size_t problems = 0;
    for (const auto& l : lines) {
      if (l.rfind("Fatal:", 0) == 0 || (l.rfind("ignoring error for", 0) == 0 && Contains(l, "UtimesNano")))
        continue;
      if (first.empty()) first = l.rfind("ignoring error for ", 0) == 0 ? l.substr(19) : l;
      ++problems;
    }
    e.message =
        (what.empty() ? "" : what + ": ") + "the backup repository at " + Quoted(repo) + " is damaged";
    if (!first.empty()) {
      e.message += ": " + Lowered(first);
      if (problems > 1) e.message += " (and " + std::to_string(problems - 1) + " more problems)";
    }
    e.message += "; nothing was deleted or repaired";
    return e;
  }
  e.code = BackupErrorCode::kFailed;
  std::string reason;
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    if (it->rfind("Fatal:", 0) == 0) {
      reason = StripFatal(*it);
      break;
    }
  }
  if (reason.empty() && !lines.empty()) reason = Lowered(lines.back());
  if (reason.empty()) {
    reason = c.signal ? "restic was killed by signal " + std::to_string(c.signal)
                      : "restic exited with status " + std::to_string(c.exit_code) + " and said nothing";
  }
  e.message = what + " (backup repository " + Quoted(repo) + "): " + reason;
  return e;
}

BackupResult<InitOutcome> ResticRepository::Init() const {
  std::string what = "cannot initialise backups";
  Run probe = Restic({"cat", "config"});
  if (probe.ok()) return InitOutcome::kExisted;
  BackupError why = Failure(probe, what);
  if (why.code != BackupErrorCode::kNoRepository) return why;

  if (!IsUrlRepository(options_.repository)) {
    // restic would add its files to any directory; refuse one that holds
    // something else, so a wrong path never mixes a repository into data.
    std::error_code ec;
    fs::path p = options_.repository;
    if (fs::exists(p, ec) && !fs::is_directory(p, ec)) {
      return Fail(
          BackupErrorCode::kInvalidArgument,
          "cannot create a backup repository at " + Quoted(p.string()) + ": it is a file, not a directory");
    }
    if (fs::is_directory(p, ec) && !fs::is_empty(p, ec)) {
      return Fail(
          BackupErrorCode::kInvalidArgument,
          "cannot create a backup repository at " + Quoted(p.string()) +
              ": the directory is not empty and is not a restic repository; give an empty or new directory");
    }
  }
  Run init = Restic({"init"});
  if (init.ok()) return InitOutcome::kCreated;
  if (Contains(init.child.err, "config file already exists")) {  // created meanwhile by someone else
    Run again = Restic({"cat", "config"});
    if (again.ok()) return InitOutcome::kExisted;
    return Failure(again, what);
  }
  return Failure(init, what);
}

BackupResult<BackupStats> ResticRepository::Backup(const fs::path& source,
                                                   const BackupOptions& options) const {
  std::error_code ec;
  fs::path src = fs::absolute(source, ec).lexically_normal();
  std::string what = "cannot back up " + Quoted(src.string());
  if (auto bad = CheckTags(options.tags)) return *bad;
  if (!fs::is_directory(src, ec)) {
    return Fail(BackupErrorCode::kIo,
                what + ": " + (fs::exists(src) ? "it is not a directory" : "no such directory"));
  }
  std::vector<std::string> args = {"backup", "--json", "--host=" + options_.host};
  for (const auto& t : options.tags) args.push_back("--tag=" + t);
  if (options.time) args.push_back("--time=" + ResticTimeArg(*options.time));
  args.push_back(".");  // run in the source, so the snapshot's tree holds its entries at the root

  std::optional<json> summary;
  std::vector<std::string> unreadable;
  auto on_line = [&](std::string_view line) {
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return;
    std::string type = Str(j, "message_type");
    if (type == "status") {
      if (!options.on_progress) return;
      BackupProgress p;
      p.fraction_done = F64(j, "percent_done");
      p.files_done = U64(j, "files_done");
      p.total_files = U64(j, "total_files");
      p.bytes_done = U64(j, "bytes_done");
      p.total_bytes = U64(j, "total_bytes");
      p.seconds_elapsed = F64(j, "seconds_elapsed");
      options.on_progress(p);
    } else if (type == "summary") {
      summary = std::move(j);
    } else if (type == "error") {
      std::string item = Str(j, "item");
      std::string msg;
      if (auto it = j.find("error"); it != j.end()) {
        msg = it->is_string() ? it->get<std::string>() : it->is_object() ? Str(*it, "message") : "";
      }
      if (msg.empty()) msg = Str(j, "during");
      unreadable.push_back(Scrub(item + (msg.empty() ? "" : ": " + msg)));
    }
  };
  Run run = Restic(std::move(args), src, on_line);
  // restic 0.14: 3 means the snapshot was written without some unreadable files.
  bool partial = run.child.started && !run.child.timed_out && run.child.exit_code == 3;
  if (!run.ok() && !partial) return Failure(run, what);
  if (!summary) {
    return Fail(BackupErrorCode::kFailed, what + ": restic finished without a summary line");
  }
  std::string id = Str(*summary, "snapshot_id");
  if (!IsSnapshotRef(id) || id == "latest") {
    return Fail(BackupErrorCode::kFailed, what + ": restic's summary names no snapshot");
  }
  BackupStats stats;
  stats.files_new = U64(*summary, "files_new");
  stats.files_changed = U64(*summary, "files_changed");
  stats.files_unmodified = U64(*summary, "files_unmodified");
  stats.files_total = U64(*summary, "total_files_processed");
  stats.bytes_total = U64(*summary, "total_bytes_processed");
  stats.bytes_added = U64(*summary, "data_added");
  stats.duration = std::chrono::milliseconds(static_cast<int64_t>(F64(*summary, "total_duration") * 1000.0));
  stats.unreadable = std::move(unreadable);
  if (partial && stats.unreadable.empty())
    stats.unreadable.push_back("restic could not read some source files");

  // restic 0.14 prints a short id. In a local repository the full one is
  // the name of the snapshot's file (restic's repository format), and with
  // an explicit time every field of the record is known; otherwise restic
  // lists the snapshot (one more run, which pays for the key derivation).
  if (options.time && id.size() >= 8 && !IsUrlRepository(options_.repository)) {
    std::string full;
    int matches = 0;
    for (auto it = fs::directory_iterator(fs::path(options_.repository) / "snapshots", ec);
         !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::string name = it->path().filename().string();
      if (name.size() == 64 && name.rfind(id, 0) == 0) {
        full = name;
        ++matches;
      }
    }
    fs::path recorded = fs::canonical(src, ec);
    if (matches == 1 && !ec) {
      Snapshot& s = stats.snapshot;
      s.id = full;
      s.short_id = full.substr(0, 8);
      s.time = std::chrono::floor<std::chrono::seconds>(*options.time);
      s.hostname = options_.host;
      s.paths = {recorded.string()};
      s.tags = options.tags;
      return stats;
    }
    ec.clear();
  }
  Run list = Restic({"snapshots", "--json", id});
  if (!list.ok()) return Failure(list, "backup done, but cannot list its snapshot " + id);
  auto arr = FirstJson(list.child.out, '[');
  std::string why = "no such snapshot";
  std::optional<Snapshot> snap;
  if (arr && arr->is_array() && arr->size() == 1) snap = ParseSnapshot((*arr)[0], &why);
  if (!snap)
    return Fail(BackupErrorCode::kFailed, "backup done, but cannot read its snapshot " + id + ": " + why);
  stats.snapshot = std::move(*snap);
  return stats;
}

BackupResult<std::vector<Snapshot>> ResticRepository::Snapshots(const std::vector<std::string>& tags) const {
  std::string what = "cannot list backups";
  if (auto bad = CheckTags(tags)) return *bad;
  std::vector<std::string> args = {"snapshots", "--json"};
  if (auto f = TagFilter(tags)) args.push_back(*f);
  Run run = Restic(std::move(args));
  if (!run.ok()) return Failure(run, what);
  auto arr = FirstJson(run.child.out, '[');
  if (!arr || !arr->is_array())
    return Fail(BackupErrorCode::kFailed, what + ": restic printed no snapshot list");
  std::vector<Snapshot> out;
  for (const auto& j : *arr) {
    std::string why;
    auto s = ParseSnapshot(j, &why);
    if (!s) return Fail(BackupErrorCode::kFailed, what + ": " + why);
    out.push_back(std::move(*s));
  }
  SortByTime(out);
  return out;
}

BackupResult<ForgetOutcome> ResticRepository::Forget(const KeepPolicy& keep,
                                                     const ForgetOptions& options) const {
  std::string what = "cannot apply the retention policy";
  if (auto bad = CheckTags(options.tags)) return *bad;
  std::vector<std::string> args = {"forget", "--json", "--group-by=" + options.group_by};
  bool any = false;
  for (auto [flag, n] : {std::pair{"--keep-last=", keep.last},
                         {"--keep-hourly=", keep.hourly},
                         {"--keep-daily=", keep.daily},
                         {"--keep-weekly=", keep.weekly},
                         {"--keep-monthly=", keep.monthly},
                         {"--keep-yearly=", keep.yearly}}) {
    if (n < 0) return Fail(BackupErrorCode::kInvalidArgument, what + ": keep counts cannot be negative");
    if (n == 0) continue;
    any = true;
    args.push_back(flag + std::to_string(n));
  }
  if (!any) {
    // restic would keep everything; a policy that keeps nothing is a mistake, not a request.
    return Fail(BackupErrorCode::kInvalidArgument,
                what + ": the keep policy keeps nothing; set at least one count");
  }
  if (auto f = TagFilter(options.tags)) args.push_back(*f);
  if (options.dry_run) args.push_back("--dry-run");
  Run run = Restic(std::move(args));
  if (!run.ok()) return Failure(run, what);
  auto groups = FirstJson(run.child.out, '[');
  if (!groups || !groups->is_array())
    return Fail(BackupErrorCode::kFailed, what + ": restic printed no forget report");
  ForgetOutcome outcome;
  for (const auto& g : *groups) {
    for (auto [key, dest] : {std::pair{"keep", &outcome.kept}, {"remove", &outcome.removed}}) {
      auto it = g.find(key);
      if (it == g.end() || !it->is_array()) continue;  // null when empty
      for (const auto& j : *it) {
        std::string why;
        auto s = ParseSnapshot(j, &why);
        if (!s) return Fail(BackupErrorCode::kFailed, what + ": " + why);
        dest->push_back(std::move(*s));
      }
    }
  }
  SortByTime(outcome.kept);
  SortByTime(outcome.removed);
  if (options.prune && !options.dry_run && !outcome.removed.empty()) {
    Run prune = Restic({"prune", "--quiet"});
    if (!prune.ok()) {
      return Failure(prune, "forgot " + std::to_string(outcome.removed.size()) +
                                " snapshots, but cannot prune their data (a later prune can)");
    }
  }
  return outcome;
}

BackupResult<BackupDone> ResticRepository::Check(const CheckOptions& options) const {
  return CheckAs(options, "");
}

// A damaged repository's message is the verdict itself ("the backup
// repository at … is damaged: …"), after `what` when the check is part of
// something else.
BackupResult<BackupDone> ResticRepository::CheckAs(const CheckOptions& options,
                                                   const std::string& what) const {
  std::vector<std::string> args = {"check"};
  if (options.read_all_data) {
    args.push_back("--read-data");
  } else if (!options.read_data_subset.empty()) {
    if (!ValidSubset(options.read_data_subset)) {
      return Fail(BackupErrorCode::kInvalidArgument, "invalid data subset " +
                                                         Quoted(options.read_data_subset) +
                                                         "; use \"n/t\", \"p%\" or a size like \"50M\"");
    }
    args.push_back("--read-data-subset=" + options.read_data_subset);
  }
  Run run = Restic(std::move(args));
  if (run.ok()) return BackupDone{};
  BackupError e = Failure(run, what.empty() ? "cannot check backups" : what);
  if (e.code == BackupErrorCode::kCorrupt) {
    if (what.empty()) e = Failure(run, "");
    e.details.erase(std::remove_if(e.details.begin(), e.details.end(),
                                   [](const std::string& l) { return l.rfind("Fatal:", 0) == 0; }),
                    e.details.end());
  }
  return e;
}

BackupResult<RestoreOutcome> ResticRepository::Restore(std::string_view snapshot_id, const fs::path& target,
                                                       const RestoreOptions& options) const {
  std::error_code ec;
  fs::path dest = fs::absolute(target, ec).lexically_normal();
  if (!dest.has_filename()) dest = dest.parent_path();
  std::string what =
      "cannot restore backup " + Quoted(std::string(snapshot_id)) + " to " + Quoted(dest.string());
  if (!IsSnapshotRef(snapshot_id)) {
    return Fail(BackupErrorCode::kInvalidArgument,
                what + ": not a snapshot id (hexadecimal digits, or \"latest\")");
  }
  if (options.include.find('\0') != std::string::npos || options.include.find('\n') != std::string::npos) {
    return Fail(BackupErrorCode::kInvalidArgument, what + ": the include path has a NUL or newline");
  }
  if (fs::exists(fs::symlink_status(dest, ec)) && !fs::is_directory(dest, ec)) {
    return Fail(BackupErrorCode::kIo, what + ": the target exists and is not a directory");
  }

  // Resolve the id (a prefix, or "latest") to one snapshot first: a missing
  // snapshot is reported before anything is created.
  Run list = Restic({"snapshots", "--json", std::string(snapshot_id)});
  if (!list.ok()) return Failure(list, what);
  auto arr = FirstJson(list.child.out, '[');
  if (!arr || !arr->is_array() || arr->empty()) {
    return Fail(BackupErrorCode::kNotFound, what + ": no such backup in " + Quoted(options_.repository));
  }
  if (arr->size() > 1) {
    return Fail(BackupErrorCode::kInvalidArgument,
                what + ": the id matches " + std::to_string(arr->size()) + " backups; give more of it");
  }
  std::string why;
  auto snap = ParseSnapshot((*arr)[0], &why);
  if (!snap) return Fail(BackupErrorCode::kFailed, what + ": " + why);
  return RestoreSnapshot(std::move(*snap), dest, options, what);
}

BackupResult<RestoreOutcome> ResticRepository::RestoreSnapshot(Snapshot snap, const fs::path& dest,
                                                               const RestoreOptions& options,
                                                               const std::string& what) const {
  std::error_code ec;
  if (options.check_first) {
    auto checked = CheckAs({}, what);
    if (!checked.ok()) {
      BackupError e = checked.error();
      e.message += "; the target was not changed";
      return e;
    }
  }

  // restic writes into a staging directory beside the target (same file
  // system, so the final moves are renames); the target changes only after
  // restic succeeded.
  fs::path parent = dest.parent_path();
  fs::create_directories(parent, ec);
  if (ec)
    return Fail(BackupErrorCode::kIo,
                what + ": cannot create " + Quoted(parent.string()) + ": " + ec.message());
  std::string tmpl = (parent / ("." + dest.filename().string() + ".plinth-restore-XXXXXX")).string();
  if (!mkdtemp(tmpl.data())) {
    return Fail(BackupErrorCode::kIo, what + ": cannot create a staging directory in " +
                                          Quoted(parent.string()) + ": " + ErrnoText(errno));
  }
  fs::path staging = tmpl;
  auto discard_staging = [&] {
    std::error_code ignored;
    fs::remove_all(staging, ignored);  // only what this call created
  };

  std::vector<std::string> args = {"restore", snap.id, "--target=" + staging.string()};
  if (!options.include.empty()) {
    std::string inc = options.include;
    if (inc[0] != '/') inc = "/" + inc;  // anchored at the snapshot's root
    args.push_back("--include=" + inc);
  }
  Run run = Restic(std::move(args));
  if (!run.ok()) {
    discard_staging();
    BackupError e = Failure(run, what);
    e.message += "; the target was not changed";
    return e;
  }

  if (!fs::exists(fs::symlink_status(dest, ec))) {
    fs::rename(staging, dest, ec);
    if (ec) {
      discard_staging();
      return Fail(BackupErrorCode::kIo,
                  what + ": cannot move the restored files into place: " + ec.message());
    }
  } else {
    fs::path conflict = FirstConflict(staging, dest, ec);
    if (ec || !conflict.empty()) {
      discard_staging();
      if (ec) return Fail(BackupErrorCode::kIo, what + ": cannot compare with the target: " + ec.message());
      return Fail(BackupErrorCode::kIo, what + ": " + Quoted(conflict.string()) +
                                            " is in the way (a directory where the backup has a file, or the "
                                            "reverse); the target was not changed");
    }
    MergeInto(staging, dest, ec);
    if (ec) {
      std::string msg = ec.message();
      discard_staging();
      return Fail(BackupErrorCode::kIo,
                  what + ": moving the restored files into place failed part way: " + msg);
    }
    discard_staging();  // now only emptied directories
  }
  return RestoreOutcome{std::move(snap), dest};
}

std::optional<Snapshot> NewestAtOrBefore(const std::vector<Snapshot>& snapshots, TimePoint at) {
  const Snapshot* best = nullptr;
  for (const auto& s : snapshots) {
    if (s.time > at) continue;
    if (!best || s.time > best->time || (s.time == best->time && s.id > best->id)) best = &s;
  }
  if (!best) return std::nullopt;
  return *best;
}

BackupResult<RestoreOutcome> ResticRepository::RestoreAt(TimePoint at, const fs::path& target,
                                                         const RestoreOptions& options) const {
  auto list = Snapshots(options.tags);
  if (!list.ok()) return list.error();
  const auto& snaps = list.value();
  auto pick = NewestAtOrBefore(snaps, at);
  if (!pick) {
    std::string tagged = options.tags.empty() ? "" : " tagged " + TagList(options.tags);
    std::string msg =
        "no backup" + tagged + " at or before " + FormatRfc3339(at) + " in " + Quoted(options_.repository);
    if (snaps.empty()) {
      msg += "; there are no backups" + tagged + " yet";
    } else {
      msg += "; the oldest is " + FormatRfc3339(snaps.front().time) + " (" + snaps.front().short_id + ")";
    }
    return Fail(BackupErrorCode::kNotFound, msg);
  }
  std::error_code ec;
  fs::path dest = fs::absolute(target, ec).lexically_normal();
  if (!dest.has_filename()) dest = dest.parent_path();
  std::string what = "cannot restore backup '" + pick->short_id + "' (" + FormatRfc3339(pick->time) +
                     ") to " + Quoted(dest.string());
  if (options.include.find('\0') != std::string::npos || options.include.find('\n') != std::string::npos) {
    return Fail(BackupErrorCode::kInvalidArgument, what + ": the include path has a NUL or newline");
  }
  if (fs::exists(fs::symlink_status(dest, ec)) && !fs::is_directory(dest, ec)) {
    return Fail(BackupErrorCode::kIo, what + ": the target exists and is not a directory");
  }
  return RestoreSnapshot(std::move(*pick), dest, options, what);
}

BackupResult<RepositoryStats> ResticRepository::Stats(const std::vector<std::string>& tags) const {
  std::string what = "cannot read the backup repository's size";
  if (auto bad = CheckTags(tags)) return *bad;
  std::vector<std::string> args = {"stats", "--json", "--mode=raw-data"};
  if (auto f = TagFilter(tags)) args.push_back(*f);
  Run run = Restic(std::move(args));
  if (!run.ok()) return Failure(run, what);
  auto j = FirstJson(run.child.out, '{');
  if (!j) return Fail(BackupErrorCode::kFailed, what + ": restic printed no statistics");
  RepositoryStats stats;
  stats.stored_bytes = U64(*j, "total_size");
  stats.blobs = U64(*j, "total_blob_count");
  stats.snapshots = U64(*j, "snapshots_count");
  auto last = LastBackupTime(tags);
  if (!last.ok()) return last.error();
  stats.latest = last.value();
  return stats;
}

BackupResult<std::optional<TimePoint>> ResticRepository::LastBackupTime(
    const std::vector<std::string>& tags) const {
  auto list = Snapshots(tags);
  if (!list.ok()) return list.error();
  if (list.value().empty()) return std::optional<TimePoint>();
  return std::optional<TimePoint>(list.value().back().time);
}

std::optional<std::chrono::seconds> BackupAge(const std::optional<TimePoint>& last, TimePoint now) {
  if (!last) return std::nullopt;
  return std::chrono::floor<std::chrono::seconds>(now - *last);
}

// ------------------------------------------------------------------ deleting repositories

BackupResult<RepositoryContents> InspectLocalRepository(const fs::path& repo) {
  RepositoryContents c;
  std::string what = "cannot read the backup repository at " + Quoted(repo.string());
  std::error_code ec;
  auto st = fs::symlink_status(repo, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return Fail(BackupErrorCode::kIo, what + ": " + ec.message());
  if (!fs::exists(st)) return c;
  c.exists = true;
  if (!fs::is_directory(st)) {
    c.files = 1;
    return c;
  }
  c.repository = fs::is_regular_file(fs::symlink_status(repo / "config", ec));
  for (fs::recursive_directory_iterator it(repo, ec), end; !ec && it != end; it.increment(ec)) {
    auto entry = it->symlink_status(ec);
    if (ec) break;
    if (fs::is_directory(entry)) continue;
    ++c.files;
    if (!fs::is_regular_file(entry)) continue;
    c.bytes += it->file_size(ec);
    if (ec) break;
    if (it.depth() == 1 && it->path().parent_path().filename() == "snapshots") ++c.snapshots;
  }
  if (ec) return Fail(BackupErrorCode::kIo, what + ": " + ec.message());
  return c;
}

BackupResult<BackupDone> DeleteDeletingLeftover(const fs::path& leftover) {
  std::string name = leftover.filename().string();
  std::string suffix = kDeletingSuffix;
  if (name.size() <= suffix.size() + 1 || name[0] != '.' ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return Fail(BackupErrorCode::kInvalidArgument,
                "refusing to remove " + Quoted(leftover.string()) + ": it is not a repository being deleted");
  }
  std::error_code ec;
  fs::remove_all(leftover, ec);
  if (ec) {
    return Fail(BackupErrorCode::kIo,
                "cannot finish deleting the backup repository at " + Quoted(leftover.string()) + ": " + ec.message());
  }
  return BackupDone{};
}

BackupResult<BackupDone> DeleteLocalRepository(const fs::path& repo) {
  std::string what = "cannot delete the backup repository at " + Quoted(repo.string());
  fs::path leftover = repo.parent_path() / ("." + repo.filename().string() + kDeletingSuffix);
  std::error_code ec;
  auto st = fs::symlink_status(repo, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) return Fail(BackupErrorCode::kIo, what + ": " + ec.message());
  if (!fs::exists(st)) {  // gone, or renamed by a delete that was interrupted
    if (fs::exists(fs::symlink_status(leftover, ec))) return DeleteDeletingLeftover(leftover);
    return BackupDone{};
  }
  if (!fs::is_directory(st) || !fs::is_regular_file(fs::symlink_status(repo / "config", ec))) {
    return Fail(BackupErrorCode::kInvalidArgument,
                what + ": it is not a restic repository (no config file); nothing was deleted");
  }
  if (fs::exists(fs::symlink_status(leftover, ec))) {
    if (auto done = DeleteDeletingLeftover(leftover); !done.ok()) return done.error();
  }
  // One rename takes the whole repository out of use; then its files go.
  fs::rename(repo, leftover, ec);
  if (ec) return Fail(BackupErrorCode::kIo, what + ": " + ec.message());
  return DeleteDeletingLeftover(leftover);
}

}  // namespace plinth::storage
