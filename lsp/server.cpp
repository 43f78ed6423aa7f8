#include "lsp/server.h"

#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "compiler/check/checker.h"
#include "compiler/check/loader.h"
#include "lsp/features.h"
#include "lsp/transport.h"

namespace plinth::lsp {

namespace fs = std::filesystem;

namespace {

// JSON-RPC and LSP error codes.
constexpr int kParseError = -32700;
constexpr int kInvalidRequest = -32600;
constexpr int kMethodNotFound = -32601;
constexpr int kInvalidParams = -32602;
constexpr int kInternalError = -32603;
constexpr int kServerNotInitialized = -32002;
constexpr int kRequestFailed = -32803;
constexpr int kRequestCancelled = -32800;
constexpr int kContentModified = -32801;

void Log(const std::string& line) { std::fprintf(stderr, "plinth lsp: %s\n", line.c_str()); }

// Requests whose answer describes one document's current text: dropped
// when an edit of that document is already waiting behind them.
bool DroppedOnEdit(const std::string& method) {
  return method == "textDocument/semanticTokens/full" || method == "textDocument/semanticTokens/full/delta" ||
         method == "textDocument/documentSymbol" || method == "textDocument/foldingRange" ||
         method == "textDocument/inlayHint" || method == "textDocument/codeAction" ||
         method == "textDocument/hover" || method == "textDocument/signatureHelp";
}

class Server {
 public:
  Server(Transport& t, const ServerOptions& o) : t_(t), options_(o) {
    debounce_ms_ = o.debounce_ms;
    cx_ = std::make_unique<Context>(Context{index_, *options_.schemas, Encoding::Utf16, nullptr});
    cx_->evaluated = [this](const std::string& dir) -> std::shared_ptr<const Evaluated> {
      std::lock_guard lock(check_mu_);
      auto it = evaluated_.find(dir);
      return it == evaluated_.end() ? nullptr : it->second;
    };
  }

  int Run() {
    std::thread reader([this] { ReadLoop(); });
    checker_ = std::thread([this] { CheckLoop(); });
    int code = 1;
    for (;;) {
      json message;
      {
        std::unique_lock lock(queue_mu_);
        queue_cv_.wait(lock, [&] { return !queue_.empty() || input_done_; });
        if (queue_.empty()) break;
        message = std::move(queue_.front());
        queue_.pop_front();
      }
      if (message.is_object() && message.value("method", "") == "exit") {
        code = shutdown_ ? 0 : 1;
        break;
      }
      Dispatch(message);
    }
    {
      std::lock_guard lock(check_mu_);
      stopping_ = true;
    }
    check_cv_.notify_all();
    checker_.join();
    // The reader has returned (or is about to): it stops after reading
    // `exit`, and the loop above ends on `exit` or once the reader reported
    // the end of the input. Joined, not detached: it still touches the queue
    // on its way out, and the Server is destroyed when Run returns.
    reader.join();
    return code;
  }

 private:
  // ------------------------------------------------------------ input

  void ReadLoop() {
    for (;;) {
      json message;
      std::string error;
      Transport::ReadStatus status = t_.Read(&message, &error);
      if (status == Transport::ReadStatus::BadJson) {
        Log(error);
        t_.Write({{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", kParseError}, {"message", error}}}});
        continue;
      }
      if (status != Transport::ReadStatus::Ok) {
        if (status == Transport::ReadStatus::BadFrame) Log(error + "; stopping");
        std::lock_guard lock(queue_mu_);
        input_done_ = true;
        queue_cv_.notify_all();
        return;
      }
      bool is_exit = message.is_object() && message.value("method", "") == "exit";
      {
        std::lock_guard lock(queue_mu_);
        queue_.push_back(std::move(message));
        queue_cv_.notify_all();
      }
      if (is_exit) {
        std::lock_guard lock(queue_mu_);
        input_done_ = true;
        queue_cv_.notify_all();
        return;
      }
    }
  }

  // Is the request `id` cancelled, or superseded by an edit of `uri`, by a
  // message already waiting in the queue?
  int Superseded(const json& id, const std::string& method, const std::string& uri) {
    std::lock_guard lock(queue_mu_);
    for (const json& m : queue_) {
      if (!m.is_object()) continue;
      std::string mm = m.value("method", "");
      if (mm == "$/cancelRequest" && m.contains("params") && m["params"].value("id", json()) == id)
        return kRequestCancelled;
      if (!uri.empty() && DroppedOnEdit(method) && mm == "textDocument/didChange" && m.contains("params") &&
          m["params"].contains("textDocument") && m["params"]["textDocument"].value("uri", "") == uri)
        return kContentModified;
    }
    return 0;
  }

  // ------------------------------------------------------------ output

  void Reply(const json& id, json result) { t_.Write({{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}); }
  void Fail(const json& id, int code, const std::string& message) {
    t_.Write({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", message}}}});
  }
  void Notify(const std::string& method, json params) {
    t_.Write({{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
  }

  // ------------------------------------------------------------ dispatch

  void Dispatch(const json& m) {
    if (!m.is_object() || m.value("jsonrpc", "") != "2.0") {
      Fail(m.is_object() && m.contains("id") ? m["id"] : json(), kInvalidRequest, "not a JSON-RPC 2.0 message");
      return;
    }
    if (!m.contains("method")) return;  // a response to something we never asked
    if (!m["method"].is_string()) {
      if (m.contains("id")) Fail(m["id"], kInvalidRequest, "'method' is not a string");
      return;
    }
    std::string method = m["method"].get<std::string>();
    bool request = m.contains("id");
    json id = request ? m["id"] : json();
    const json params = m.contains("params") ? m["params"] : json::object();
    if (!initialized_ && method != "initialize") {
      if (request) Fail(id, kServerNotInitialized, "the server is not initialized yet");
      return;
    }
    if (shutdown_ && request) {
      Fail(id, kInvalidRequest, "the server is shutting down");
      return;
    }
    std::string uri;
    if (params.is_object() && params.contains("textDocument") && params["textDocument"].is_object())
      uri = params["textDocument"].value("uri", "");
    if (request) {
      if (int why = Superseded(id, method, uri)) {
        Fail(id, why, why == kRequestCancelled ? "cancelled" : "the document changed");
        return;
      }
    }
    try {
      if (request) {
        Request(id, method, params);
      } else {
        Notification(method, params);
      }
    } catch (const RenameError& e) {
      Fail(id, kRequestFailed, e.what());
    } catch (const json::exception& e) {
      if (request) Fail(id, kInvalidParams, std::string("invalid params for ") + method + ": " + e.what());
      else Log("invalid params for " + method + ": " + e.what());
    } catch (const std::exception& e) {
      Log(method + ": " + e.what());
      if (request) Fail(id, kInternalError, method + ": " + e.what());
    }
  }

  void Request(const json& id, const std::string& method, const json& params) {
    Context& cx = *cx_;
    if (method == "initialize") return Reply(id, Initialize(params));
    if (method == "shutdown") {
      shutdown_ = true;
      return Reply(id, nullptr);
    }
    if (method == "textDocument/hover") return Reply(id, Hover(cx, params));
    if (method == "textDocument/completion") return Reply(id, Completion(cx, params));
    if (method == "textDocument/signatureHelp") return Reply(id, SignatureHelp(cx, params));
    if (method == "textDocument/definition") return Reply(id, Definition(cx, params));
    if (method == "textDocument/references") return Reply(id, References(cx, params));
    if (method == "textDocument/prepareRename") return Reply(id, PrepareRename(cx, params));
    if (method == "textDocument/rename") return Reply(id, Rename(cx, params));
    if (method == "textDocument/documentSymbol") return Reply(id, DocumentSymbols(cx, params));
    if (method == "workspace/symbol") return Reply(id, WorkspaceSymbols(cx, params));
    if (method == "textDocument/foldingRange") return Reply(id, FoldingRanges(cx, params));
    if (method == "textDocument/formatting") return Reply(id, Formatting(cx, params, false));
    if (method == "textDocument/rangeFormatting") return Reply(id, Formatting(cx, params, true));
    if (method == "textDocument/codeAction") return Reply(id, CodeActions(cx, params));
    if (method == "textDocument/inlayHint") return Reply(id, InlayHints(cx, params));
    if (method == "textDocument/semanticTokens/full") return Reply(id, Tokens(params, false));
    if (method == "textDocument/semanticTokens/full/delta") return Reply(id, Tokens(params, true));
    Fail(id, kMethodNotFound, "method not supported: " + method);
  }

  void Notification(const std::string& method, const json& params) {
    if (method == "initialized" || method == "$/cancelRequest" || method == "$/setTrace") return;
    if (method == "textDocument/didOpen") {
      const json& doc = params.at("textDocument");
      std::string uri = doc.at("uri").get<std::string>();
      std::string path = UriToPath(uri);
      if (path.empty()) return;
      docs_[uri] = {path, doc.value("version", 0), doc.at("text").get<std::string>()};
      Changed(uri);
      return;
    }
    if (method == "textDocument/didChange") {
      std::string uri = params.at("textDocument").at("uri").get<std::string>();
      auto it = docs_.find(uri);
      if (it == docs_.end()) return;
      Document& d = it->second;
      for (const json& change : params.at("contentChanges")) {
        if (!change.contains("range")) {
          d.text = change.at("text").get<std::string>();
          continue;
        }
        LineIndex lines(d.text);
        const json& r = change["range"];
        uint32_t b = lines.Offset({r["start"]["line"].get<uint32_t>(), r["start"]["character"].get<uint32_t>()}, cx_->encoding);
        uint32_t e = lines.Offset({r["end"]["line"].get<uint32_t>(), r["end"]["character"].get<uint32_t>()}, cx_->encoding);
        Splice(d.text, b, e, change.at("text").get<std::string>());
      }
      d.version = params["textDocument"].value("version", d.version);
      Changed(uri);
      return;
    }
    if (method == "textDocument/didSave") {
      std::string uri = params.at("textDocument").at("uri").get<std::string>();
      if (docs_.count(uri)) Changed(uri);
      return;
    }
    if (method == "textDocument/didClose") {
      std::string uri = params.at("textDocument").at("uri").get<std::string>();
      auto it = docs_.find(uri);
      if (it == docs_.end()) return;
      std::string path = it->second.path;
      docs_.erase(it);
      index_.Close(path);
      semantic_.erase(uri);
      Schedule(fs::path(path).parent_path().string());
      return;
    }
    if (method == "workspace/didChangeWatchedFiles") {
      for (const json& change : params.value("changes", json::array())) {
        std::string path = UriToPath(change.value("uri", ""));
        if (!path.empty()) Schedule(fs::path(path).parent_path().string());
      }
      return;
    }
  }

  json Initialize(const json& params) {
    initialized_ = true;
    // UTF-8 positions when the client offers them (no conversion), else UTF-16.
    const json& general = params.value("capabilities", json::object()).value("general", json::object());
    for (const json& e : general.value("positionEncodings", json::array()))
      if (e == "utf-8") cx_->encoding = Encoding::Utf8;
    std::vector<std::string> roots;
    for (const json& folder : params.value("workspaceFolders", json::array()))
      if (folder.is_object()) roots.push_back(UriToPath(folder.value("uri", "")));
    if (roots.empty() && params.contains("rootUri") && params["rootUri"].is_string())
      roots.push_back(UriToPath(params["rootUri"].get<std::string>()));
    roots.erase(std::remove(roots.begin(), roots.end(), std::string()), roots.end());
    index_.SetRoots(roots);
    const json& init = params.value("initializationOptions", json::object());
    if (init.is_object() && init.contains("debounceMs") && init["debounceMs"].is_number_integer())
      debounce_ms_ = std::clamp(init["debounceMs"].get<int>(), 0, 5000);
    // false: every check is a whole one (to compare, or to rule the memo out).
    if (init.is_object() && init.contains("incremental") && init["incremental"].is_boolean())
      incremental_ = init["incremental"].get<bool>();
    json caps = {
        {"positionEncoding", cx_->encoding == Encoding::Utf8 ? "utf-8" : "utf-16"},
        {"textDocumentSync", {{"openClose", true}, {"change", 2}, {"save", {{"includeText", false}}}}},
        {"hoverProvider", true},
        {"completionProvider", {{"triggerCharacters", {".", "\""}}, {"resolveProvider", false}}},
        {"signatureHelpProvider", {{"triggerCharacters", {"(", ","}}}},
        {"definitionProvider", true},
        {"referencesProvider", true},
        {"renameProvider", {{"prepareProvider", true}}},
        {"documentSymbolProvider", true},
        {"workspaceSymbolProvider", true},
        {"foldingRangeProvider", true},
        {"documentFormattingProvider", true},
        {"documentRangeFormattingProvider", true},
        {"codeActionProvider", {{"codeActionKinds", {"quickfix"}}}},
        {"inlayHintProvider", true},
        {"semanticTokensProvider", {{"legend", SemanticTokensLegend()}, {"full", {{"delta", true}}}, {"range", false}}},
    };
    return {{"capabilities", caps}, {"serverInfo", {{"name", "plinth"}, {"version", options_.version}}}};
  }

  // ------------------------------------------------------------ documents

  struct Document {
    std::string path;
    int64_t version = 0;
    std::string text;
  };

  void Changed(const std::string& uri) {
    const Document& d = docs_.at(uri);
    index_.Open(d.path, d.text);
    Schedule(fs::path(d.path).parent_path().string());
  }

  // Queues a check of `dir` and of the open modules that call it.
  void Schedule(const std::string& dir) {
    std::set<std::string> dirs{dir};
    std::set<std::string> open_dirs;
    for (const auto& [uri, d] : docs_) open_dirs.insert(fs::path(d.path).parent_path().string());
    for (const std::string& od : open_dirs) {
      if (od == dir) continue;
      auto m = index_.Module(od);
      for (const auto& [call, target] : m->call_dirs)
        if (target == dir) dirs.insert(od);
    }
    {
      std::lock_guard lock(check_mu_);
      ++generation_;
      overlay_ = index_.Buffers();
      open_dirs_ = open_dirs;
      for (const std::string& d : dirs) dirty_.insert(d);
    }
    check_cv_.notify_all();
  }

  // ------------------------------------------------------------ semantic tokens

  json Tokens(const json& params, bool delta) {
    std::string uri = params.at("textDocument").at("uri").get<std::string>();
    std::string path = UriToPath(uri);
    auto f = path.empty() ? nullptr : index_.File(path);
    if (!f) return nullptr;
    std::vector<uint32_t> data = SemanticTokens(*f, cx_->encoding);
    std::string id = std::to_string(++next_result_id_);
    auto previous = semantic_.find(uri);
    json result;
    if (delta && previous != semantic_.end() && params.value("previousResultId", "") == previous->second.first) {
      const std::vector<uint32_t>& old = previous->second.second;
      size_t prefix = 0;
      while (prefix < old.size() && prefix < data.size() && old[prefix] == data[prefix]) ++prefix;
      size_t suffix = 0;
      while (suffix < old.size() - prefix && suffix < data.size() - prefix &&
             old[old.size() - 1 - suffix] == data[data.size() - 1 - suffix])
        ++suffix;
      json edits = json::array();
      if (prefix != old.size() || prefix != data.size() || old.size() != data.size()) {
        edits.push_back({{"start", prefix},
                         {"deleteCount", old.size() - prefix - suffix},
                         {"data", std::vector<uint32_t>(data.begin() + prefix, data.end() - suffix)}});
      }
      result = {{"resultId", id}, {"edits", edits}};
    } else {
      result = {{"resultId", id}, {"data", data}};
    }
    semantic_[uri] = {id, std::move(data)};
    return result;
  }

  // ------------------------------------------------------------ checks

  // A thread that destroys what it is given: freeing the last check's
  // analyses and memo of a large workspace takes tens of milliseconds that
  // the next edit's check need not wait for.
  class Reaper {
   public:
    Reaper() : thread_([this] { Loop(); }) {}
    ~Reaper() {
      {
        std::lock_guard lock(mu_);
        stop_ = true;
      }
      cv_.notify_one();
      thread_.join();
    }
    void Free(std::vector<std::shared_ptr<void>> garbage) {
      {
        std::lock_guard lock(mu_);
        for (auto& g : garbage) garbage_.push_back(std::move(g));
      }
      cv_.notify_one();
    }

   private:
    void Loop() {
      std::unique_lock lock(mu_);
      for (;;) {
        cv_.wait(lock, [&] { return stop_ || !garbage_.empty(); });
        std::vector<std::shared_ptr<void>> batch = std::move(garbage_);
        garbage_.clear();
        lock.unlock();
        batch.clear();
        lock.lock();
        if (stop_ && garbage_.empty()) return;
      }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::shared_ptr<void>> garbage_;
    bool stop_ = false;
    std::thread thread_;  // last: started once the rest is constructed
  };

  void CheckLoop() {
    std::map<std::string, std::unique_ptr<ProviderResolver>> resolvers;
    std::map<std::string, std::unique_ptr<CheckSession>> sessions;
    std::map<std::string, std::set<std::string>> published;  // dir -> uris with diagnostics from its check
    Reaper reaper;  // frees what a check leaves behind while the next one runs
    std::unique_lock lock(check_mu_);
    for (;;) {
      check_cv_.wait(lock, [&] { return stopping_ || !dirty_.empty(); });
      if (stopping_) return;
      // Debounce: start once no edit came for debounce_ms.
      for (uint64_t gen = generation_;;) {
        if (check_cv_.wait_for(lock, std::chrono::milliseconds(debounce_ms_), [&] { return stopping_ || generation_ != gen; })) {
          if (stopping_) return;
          gen = generation_;
          continue;
        }
        break;
      }
      std::string dir = *dirty_.begin();
      dirty_.erase(dirty_.begin());
      std::map<std::string, std::string> overlay = overlay_;
      std::set<std::string> roots = open_dirs_;
      // The values of the last check are dropped now rather than after this
      // one: two sets of every instance's attributes would double the peak
      // memory of a large workspace (hover shows no values meanwhile).
      evaluated_.erase(dir);
      lock.unlock();

      // Files parsed by earlier checks of this directory are reused when
      // their text is unchanged, and declarations whose inputs are unchanged
      // keep their values (CheckSession); a session whose parse cache holds
      // more stale text than live (every edit leaves the old text behind)
      // is started afresh.
      std::unique_ptr<CheckSession>& session = sessions[dir];
      if (!session ||
          session->parse_cache().stale_bytes() >
              std::max<size_t>(size_t{64} << 20, session->parse_cache().live_bytes()) ||
          session->parse_cache().sources().size() > 20000)
        session = std::make_unique<CheckSession>();
      session->set_incremental(incremental_);
      ParseCache* cache = &session->parse_cache();
      SourceManager& sources = cache->sources();
      Diagnostics diags;
      CheckOptions co;
      co.schemas = options_.schemas;
      co.variable_sources = options_.variable_sources;
      co.display_root = "/";
      co.overlay = &overlay;
      co.threads = std::min(4u, std::max(1u, std::thread::hardware_concurrency()));
      if (options_.resolver_for) {
        auto& r = resolvers[dir];
        if (!r) r = options_.resolver_for(dir);
        co.provider_resolver = r.get();
      }
      auto started = std::chrono::steady_clock::now();
      std::shared_ptr<const CheckedConfig> config;
      try {
        config = session->Check(dir, diags, co);
      } catch (const std::exception& e) {
        Log("checking " + dir + ": " + e.what());
      }
      if (!config) config = std::make_shared<CheckedConfig>();
      auto evaluated = std::make_shared<Evaluated>();
      for (const auto& v : config->variables) evaluated->variables[v.name] = v.sensitive ? Value() : v.value;
      for (const auto& l : config->locals) evaluated->locals[l.name] = l.value;
      for (const auto& o : config->outputs) evaluated->outputs[o.name] = o.sensitive ? Value() : o.value;
      evaluated->config = config;
      const size_t files = config->files;
      config.reset();

      lock.lock();
      if (dirty_.count(dir)) continue;  // superseded by a newer edit: its own check will publish
      evaluated_[dir] = evaluated;
      lock.unlock();
      Publish(dir, sources, cache->Used(), diags, roots, published[dir]);
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
      Notify("$/plinth/checked", {{"directory", dir}, {"milliseconds", ms}, {"files", files},
                                     {"evaluated", session->last_stats().evaluated},
                                     {"reused", session->last_stats().reused}});
      reaper.Free(session->TakeRetired());
      lock.lock();
    }
  }

  // `used`: the files the check read (the SourceManager also holds older
  // texts of edited files).
  void Publish(const std::string& dir, const SourceManager& sources, const std::vector<FileId>& used,
               const Diagnostics& diags, const std::set<std::string>& roots, std::set<std::string>& published) {
    struct FileDiags {
      const SourceFile* file;
      std::vector<const Diagnostic*> list;
    };
    std::map<std::string, FileDiags> by_path;
    std::unordered_map<FileId, FileDiags*> by_id;
    for (FileId id : used) {
      const SourceFile& f = sources.Get(id);
      std::string fdir = fs::path(f.path()).parent_path().string();
      // A file of another open module gets its diagnostics from that module's own check.
      if (fdir != dir && roots.count(fdir)) continue;
      if (fs::path(f.path()).extension() != ".plinth") continue;
      FileDiags& fd = by_path[f.path()];
      fd.file = &f;
      by_id[id] = &fd;
    }
    for (const Diagnostic& d : diags.items()) {
      FileDiags* fd = nullptr;
      if (d.range.valid()) {
        if (auto it = by_id.find(d.range.file); it != by_id.end()) fd = it->second;
      } else if (!by_path.empty()) {
        fd = &by_path.begin()->second;
      }
      if (fd) fd->list.push_back(&d);
    }
    // A file's diagnostics are sent only when they differ from what the
    // client was last sent for it: an edit of one file of a large module
    // does not resend (or even render) every other file's. What is compared
    // is everything the rendering reads: the texts (a changed text is a new
    // file id) and each diagnostic's fields.
    auto fingerprint = [&](const FileDiags& fd) {
      std::string fp = std::to_string(fd.file->id()) + "|" + std::to_string(static_cast<int>(cx_->encoding));
      for (const Diagnostic* d : fd.list) {
        fp += "\n" + std::to_string(d->range.file) + ":" + std::to_string(d->range.begin) + "-" +
              std::to_string(d->range.end) + (d->severity == Severity::Error ? "E" : "W") +
              std::string(Info(d->code).code) + "\x1f" + d->message + "\x1f" + d->help;
        for (const DiagNote& n : d->notes)
          fp += "\x1e" + std::to_string(n.range.file) + ":" + std::to_string(n.range.begin) + "-" +
                std::to_string(n.range.end) + n.message;
      }
      return fp;
    };
    std::set<std::string> now;
    for (auto& [path, fd] : by_path) {
      std::string uri = PathToUri(path);
      now.insert(uri);
      std::string fp = fingerprint(fd);
      auto it = sent_.find(uri);
      if (it != sent_.end() ? it->second.fingerprint == fp : fd.list.empty()) continue;
      // Something differs, perhaps only the file's id (its text changed):
      // what the client would see is compared.
      std::stable_sort(fd.list.begin(), fd.list.end(), [](const Diagnostic* a, const Diagnostic* b) {
        return std::tie(a->range.begin, a->range.end) < std::tie(b->range.begin, b->range.end);
      });
      json list = Render(sources, *fd.file, fd.list);
      std::string body = list.dump();
      Sent& sent = sent_[uri];
      sent.fingerprint = std::move(fp);
      if (body == sent.body) continue;
      sent.body = std::move(body);
      Notify("textDocument/publishDiagnostics", {{"uri", uri}, {"diagnostics", std::move(list)}});
    }
    // Files this directory's last check covered and this one did not (deleted, or no longer called).
    for (const std::string& uri : published) {
      if (now.count(uri)) continue;
      if (auto it = sent_.find(uri); it != sent_.end()) {
        bool empty = it->second.body == "[]";
        sent_.erase(it);
        if (!empty) Notify("textDocument/publishDiagnostics", {{"uri", uri}, {"diagnostics", json::array()}});
      }
    }
    published = std::move(now);
  }

  // One file's diagnostics as LSP Diagnostic objects.
  json Render(const SourceManager& sources, const SourceFile& file, const std::vector<const Diagnostic*>& list) {
    json out = json::array();
    const LineIndex li(file.text());
    const std::string uri = PathToUri(file.path());
    const Encoding enc = cx_->encoding;
    for (const Diagnostic* dp : list) {
      const Diagnostic& d = *dp;
      Range r = d.range.valid() ? d.range : Range{0, 0, 0};
      std::string message = d.message;
      if (!d.help.empty()) message += "\nhelp: " + d.help;
      json item = {{"range", RangeJson(li, r, enc)},
                   {"severity", d.severity == Severity::Error ? 1 : 2},
                   {"code", std::string(Info(d.code).code)},
                   {"source", "plinth"},
                   {"message", message}};
      json related = json::array();
      for (const DiagNote& n : d.notes) {
        if (!n.range.valid()) {
          item["message"] = item["message"].get<std::string>() + "\nnote: " + n.message;
          continue;
        }
        const SourceFile& nf = sources.Get(n.range.file);
        LineIndex nl(nf.text());
        related.push_back({{"location", {{"uri", PathToUri(nf.path())}, {"range", RangeJson(nl, n.range, enc)}}},
                           {"message", n.message}});
      }
      if (!related.empty()) item["relatedInformation"] = related;
      json data = {{"help", d.help}};
      if (d.range.valid()) {
        json fixes = FixesFor(d, file.text(), li, enc, uri);
        if (!fixes.empty()) data["fixes"] = fixes;
      }
      item["data"] = data;
      out.push_back(std::move(item));
    }
    return out;
  }

  Transport& t_;
  ServerOptions options_;
  Index index_;
  std::unique_ptr<Context> cx_;
  std::map<std::string, Document> docs_;
  std::map<std::string, std::pair<std::string, std::vector<uint32_t>>> semantic_;
  uint64_t next_result_id_ = 0;
  bool initialized_ = false;
  bool shutdown_ = false;

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<json> queue_;
  bool input_done_ = false;

  std::thread checker_;
  std::mutex check_mu_;
  std::condition_variable check_cv_;
  std::set<std::string> dirty_;
  std::set<std::string> open_dirs_;
  std::map<std::string, std::string> overlay_;
  uint64_t generation_ = 0;
  int debounce_ms_ = 20;
  bool incremental_ = true;
  bool stopping_ = false;
  std::map<std::string, std::shared_ptr<const Evaluated>> evaluated_;
  // uri -> the diagnostics last sent and a fingerprint of what they were
  // rendered from (checker thread only).
  struct Sent {
    std::string fingerprint, body = "[]";
  };
  std::map<std::string, Sent> sent_;
};

}  // namespace

int Serve(int in_fd, int out_fd, const ServerOptions& options) {
  Transport transport(in_fd, out_fd);
  Server server(transport, options);
  return server.Run();
}

}  // namespace plinth::lsp
