// The language server (lsp/, docs/editor.md) driven over pipes like an
// editor would: framed JSON-RPC in, replies and pushed diagnostics out.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "compiler/check/checker.h"
#include "compiler/check/loader.h"
#include "compiler/fmt/fmt.h"
#include "lsp/server.h"
#include "lsp/text.h"
#include "lsp/transport.h"
#include "runtime/providers/catalog.h"

namespace plinth::lsp {
namespace {

namespace fs = std::filesystem;

void Write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

// A client on two pipes with the server on a thread.
class Client {
 public:
  explicit Client(int debounce_ms = 0) {
    int to_server[2], from_server[2];
    EXPECT_EQ(::pipe(to_server), 0);
    EXPECT_EQ(::pipe(from_server), 0);
    out_ = to_server[1];
    in_ = std::make_unique<Transport>(from_server[0], -1);
    ServerOptions options;
    options.schemas = &runtime::BuiltinSchemas();
    options.version = "test";
    options.debounce_ms = debounce_ms;
    int sin = to_server[0], sout = from_server[1];
    server_ = std::async(std::launch::async, [=] {
      int rc = Serve(sin, sout, options);
      ::close(sin);
      ::close(sout);
      return rc;
    });
    read_fd_ = from_server[0];
  }
  ~Client() {
    if (out_ >= 0) ::close(out_);
    if (server_.valid()) server_.wait();
    ::close(read_fd_);
  }

  void SendRaw(const std::string& bytes) { ASSERT_EQ(::write(out_, bytes.data(), bytes.size()), (ssize_t)bytes.size()); }
  static std::string Frame(const json& m) {
    std::string body = m.dump();
    return "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  void Send(const json& m) { SendRaw(Frame(m)); }
  int Id() { return ++id_; }
  json RequestMessage(int id, const std::string& method, json params) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
  }
  // The whole response (result or error) of a request.
  json Call(const std::string& method, json params) {
    int id = Id();
    Send(RequestMessage(id, method, std::move(params)));
    return WaitResponse(id);
  }
  json Result(const std::string& method, json params) {
    json r = Call(method, std::move(params));
    EXPECT_TRUE(r.contains("result")) << r.dump();
    return r.value("result", json());
  }
  void Notify(const std::string& method, json params) {
    Send({{"jsonrpc", "2.0"}, {"method", method}, {"params", std::move(params)}});
  }
  json Next() {
    json m;
    std::string error;
    auto status = in_->Read(&m, &error);
    EXPECT_EQ(status, Transport::ReadStatus::Ok) << error;
    if (status != Transport::ReadStatus::Ok) throw std::runtime_error("no message: " + error);
    return m;
  }
  json WaitResponse(int id) {
    for (auto it = pending_.begin(); it != pending_.end(); ++it)
      if (it->value("id", json()) == id && !it->contains("method")) {
        json m = *it;
        pending_.erase(it);
        return m;
      }
    for (;;) {
      json m = Next();
      if (m.value("id", json()) == id && !m.contains("method")) return m;
      pending_.push_back(m);
    }
  }
  // The next notification `method` (optionally for `uri`).
  json WaitNotification(const std::string& method, const std::string& uri = "") {
    auto match = [&](const json& m) {
      return m.value("method", "") == method && (uri.empty() || m["params"].value("uri", "") == uri);
    };
    for (auto it = pending_.begin(); it != pending_.end(); ++it)
      if (match(*it)) {
        json m = *it;
        pending_.erase(it);
        return m;
      }
    for (;;) {
      json m = Next();
      if (match(m)) return m;
      pending_.push_back(m);
    }
  }
  // Notifications `method` for `uri` received and not consumed yet.
  size_t Pending(const std::string& method, const std::string& uri) const {
    size_t n = 0;
    for (const json& m : pending_) n += m.value("method", "") == method && m["params"].value("uri", "") == uri;
    return n;
  }
  // Diagnostics of `uri` after the next check of its directory.
  json Diagnostics(const std::string& uri) {
    json checked = WaitNotification("$/plinth/checked");
    (void)checked;
    json last = json::array();
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->value("method", "") == "textDocument/publishDiagnostics" && (*it)["params"]["uri"] == uri) {
        last = (*it)["params"]["diagnostics"];
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    return last;
  }
  void Initialize(const std::string& root, bool utf8 = false) {
    json caps = json::object();
    if (utf8) caps["general"] = {{"positionEncodings", {"utf-8", "utf-16"}}};
    json r = Result("initialize", {{"processId", nullptr}, {"rootUri", PathToUri(root)}, {"capabilities", caps}});
    capabilities = r["capabilities"];
    Notify("initialized", json::object());
  }
  void Open(const std::string& path, const std::string& text) {
    Notify("textDocument/didOpen",
           {{"textDocument", {{"uri", PathToUri(path)}, {"languageId", "plinth"}, {"version", 1}, {"text", text}}}});
  }
  int Exit(bool shutdown = true) {
    if (shutdown) Result("shutdown", nullptr);
    Notify("exit", nullptr);
    ::close(out_);
    out_ = -1;
    return server_.get();
  }
  json capabilities;

 private:
  int out_ = -1, read_fd_ = -1, id_ = 0;
  std::unique_ptr<Transport> in_;
  std::future<int> server_;
  std::vector<json> pending_;
};

json At(const std::string& path, uint32_t line, uint32_t character) {
  return {{"textDocument", {{"uri", PathToUri(path)}}}, {"position", {{"line", line}, {"character", character}}}};
}
json Doc(const std::string& path) { return {{"textDocument", {{"uri", PathToUri(path)}}}}; }

std::vector<std::string> Labels(const json& completion) {
  std::vector<std::string> out;
  for (const json& i : completion["items"]) out.push_back(i["label"]);
  return out;
}
bool Has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

constexpr const char* kMain = R"(variable "env" {
  type        = string
  default     = "dev"
  description = "The stage."
}

region "eu" {}

module "net" {
  source = "./modules/net"
  cidr   = "10.0.0.0/16"
}

locals {
  tags = { env = var.env }
}

bucket "data" {
  region   = region.eu
  capacity = 10GiB
  labels   = merge(local.tags, { net = module.net.id })
}
)";

constexpr const char* kNet = R"(variable "cidr" {
  type = string
}

output "id" {
  value = "net-${var.cidr}"
}
)";

class LspTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("plinth-lsp-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    main_ = (root_ / "main.plinth").string();
    net_ = (root_ / "modules/net/net.plinth").string();
    Write(main_, kMain);
    Write(net_, kNet);
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
  std::string main_, net_;
};

TEST_F(LspTest, LifecycleAndProtocolErrors) {
  Client c;
  // Before initialize: refused.
  json early = c.Call("textDocument/hover", At(main_, 0, 0));
  EXPECT_EQ(early["error"]["code"], -32002);
  c.Initialize(root_.string());
  EXPECT_EQ(c.capabilities["positionEncoding"], "utf-16");
  EXPECT_TRUE(c.capabilities["renameProvider"]["prepareProvider"]);
  EXPECT_TRUE(c.capabilities["semanticTokensProvider"]["full"]["delta"]);
  // Not JSON: a parse error, and the server goes on.
  c.SendRaw("Content-Length: 5\r\n\r\n{oops");
  json parse_error = c.Next();
  EXPECT_EQ(parse_error["error"]["code"], -32700);
  EXPECT_EQ(c.Call("no/such/method", json::object())["error"]["code"], -32601);
  // Params of the wrong shape: InvalidParams, not a crash.
  EXPECT_EQ(c.Call("textDocument/hover", {{"textDocument", 5}})["error"]["code"], -32602);
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, ExitWithoutShutdownIsOne) {
  Client c;
  c.Initialize(root_.string());
  EXPECT_EQ(c.Exit(false), 1);
}

TEST_F(LspTest, DiagnosticsOnOpenAndChangeWithFixes) {
  Client c;
  c.Initialize(root_.string());
  std::string text = kMain;
  text.replace(text.find("region.eu"), 9, "region.euu");
  c.Open(main_, text);
  json diags = c.Diagnostics(PathToUri(main_));
  ASSERT_EQ(diags.size(), 1u) << diags.dump();
  EXPECT_EQ(diags[0]["code"], "P0202");
  EXPECT_EQ(diags[0]["severity"], 1);
  EXPECT_NE(diags[0]["message"].get<std::string>().find("help: did you mean 'region.eu'?"), std::string::npos);
  EXPECT_EQ(diags[0]["range"]["start"]["line"], 18);
  // An edit that changes no diagnostic (a comment at the end) sends none again:
  // a large module's other files are not resent on every keystroke.
  c.Notify("textDocument/didChange",
           {{"textDocument", {{"uri", PathToUri(main_)}, {"version", 2}}},
            {"contentChanges", json::array({{{"range", {{"start", {{"line", 1000}, {"character", 0}}},
                                                        {"end", {{"line", 1000}, {"character", 0}}}}},
                                             {"text", "# a comment\n"}}})}});
  c.WaitNotification("$/plinth/checked");
  EXPECT_EQ(c.Pending("textDocument/publishDiagnostics", PathToUri(main_)), 0u);
  // The quick fix the help names.
  json actions = c.Result("textDocument/codeAction",
                          {{"textDocument", {{"uri", PathToUri(main_)}}},
                           {"range", diags[0]["range"]},
                           {"context", {{"diagnostics", diags}}}});
  ASSERT_EQ(actions.size(), 1u) << actions.dump();
  json edit = actions[0]["edit"]["changes"][PathToUri(main_)][0];
  EXPECT_EQ(edit["newText"], "region.eu");
  // An incremental edit that applies the fix clears the diagnostics.
  c.Notify("textDocument/didChange", {{"textDocument", {{"uri", PathToUri(main_)}, {"version", 3}}},
                                      {"contentChanges", json::array({{{"range", edit["range"]}, {"text", "region.eu"}}})}});
  EXPECT_EQ(c.Diagnostics(PathToUri(main_)).size(), 0u);
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, UndeclaredRegionGetsADeclareFix) {
  Client c;
  c.Initialize(root_.string());
  std::string text = kMain;
  text.replace(text.find("region.eu"), 9, "region.us");
  c.Open(main_, text);
  json diags = c.Diagnostics(PathToUri(main_));
  ASSERT_FALSE(diags.empty());
  bool declare = false;
  for (const json& f : diags[0]["data"].value("fixes", json::array()))
    if (f["title"] == "Declare region \"us\"") {
      declare = true;
      EXPECT_EQ(f["edit"]["changes"][PathToUri(main_)][0]["newText"], "\nregion \"us\" {}\n");
    }
  EXPECT_TRUE(declare) << diags.dump();
}

TEST_F(LspTest, SyntaxErrorsLeaveTheRestWorking) {
  Client c;
  c.Initialize(root_.string());
  // A broken block in the middle of the file.
  std::string text = kMain;
  text.insert(text.find("locals {"), "bucket \"broken\" {\n  capacity = = 1\n}\n\n");
  c.Open(main_, text);
  json diags = c.Diagnostics(PathToUri(main_));
  ASSERT_FALSE(diags.empty());
  EXPECT_EQ(diags[0]["range"]["start"]["line"], 14);  // the broken line
  // Hover, definition and completion still work below the damage.
  uint32_t line = 24;  // labels = merge(local.tags, ...)
  json hover = c.Result("textDocument/hover", At(main_, line, 23));
  ASSERT_TRUE(hover.is_object()) << text;
  EXPECT_NE(hover["contents"]["value"].get<std::string>().find("local.tags"), std::string::npos);
  json def = c.Result("textDocument/definition", At(main_, line, 23));
  EXPECT_EQ(def["range"]["start"]["line"], 18);
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, HoverShowsDocsValuesAndSignatures) {
  Client c;
  c.Initialize(root_.string());
  c.Open(main_, kMain);
  c.Diagnostics(PathToUri(main_));  // the check's values are known from here on
  // var.env inside local.tags: description, default and value.
  std::string v = c.Result("textDocument/hover", At(main_, 14, 21))["contents"]["value"];
  EXPECT_NE(v.find("variable \"env\": string"), std::string::npos) << v;
  EXPECT_NE(v.find("The stage."), std::string::npos);
  EXPECT_NE(v.find("value: `\"dev\"`"), std::string::npos) << v;
  // A resource attribute: the schema's doc and type.
  std::string cap = c.Result("textDocument/hover", At(main_, 19, 4))["contents"]["value"];
  EXPECT_NE(cap.find("capacity: size"), std::string::npos) << cap;
  EXPECT_NE(cap.find("Size quota"), std::string::npos) << cap;
  // A function's signature.
  std::string merge = c.Result("textDocument/hover", At(main_, 20, 16))["contents"]["value"];
  EXPECT_NE(merge.find("merge(maps map(any)...)"), std::string::npos) << merge;
  // A unit literal's canonical value.
  std::string size = c.Result("textDocument/hover", At(main_, 19, 14))["contents"]["value"];
  EXPECT_NE(size.find("10737418240 bytes"), std::string::npos) << size;
  json sig = c.Result("textDocument/signatureHelp", At(main_, 20, 29));
  EXPECT_EQ(sig["signatures"][0]["label"], "merge(maps map(any)...) map(any)");
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, CompletionEverywhere) {
  Client c;
  c.Initialize(root_.string());
  std::string text = std::string(kMain) +
                     "\n\nbucket \"more\" {\n  region = region.\n  \n  labels = { a = \"${var.}\", b = module.net. }\n"
                     "  capacity = 10Gi\n  encryption = \"\"\n}\n";
  c.Open(main_, text);
  uint32_t base = 24;  // the line of `bucket "more"`
  // region. -> region names
  auto names = Labels(c.Result("textDocument/completion", At(main_, base + 1, 18)));
  EXPECT_TRUE(Has(names, "eu"));
  // An item position in a bucket: attributes and nested blocks of its schema.
  names = Labels(c.Result("textDocument/completion", At(main_, base + 2, 2)));
  EXPECT_TRUE(Has(names, "capacity"));
  EXPECT_TRUE(Has(names, "backup"));
  EXPECT_TRUE(Has(names, "lifecycle"));
  EXPECT_FALSE(Has(names, "region"));  // already set
  // Inside ${ } in a string: variables.
  names = Labels(c.Result("textDocument/completion", At(main_, base + 3, 24)));
  EXPECT_EQ(names, std::vector<std::string>{"env"});
  // module.net. -> the module's outputs.
  names = Labels(c.Result("textDocument/completion", At(main_, base + 3, 43)));
  EXPECT_EQ(names, std::vector<std::string>{"id"});
  // Unit suffixes after digits.
  names = Labels(c.Result("textDocument/completion", At(main_, base + 4, 17)));
  EXPECT_TRUE(Has(names, "GiB"));
  EXPECT_TRUE(Has(names, "ms"));
  // Enum values inside a string.
  names = Labels(c.Result("textDocument/completion", At(main_, base + 5, 16)));
  EXPECT_TRUE(Has(names, "aes-256-gcm")) << ::testing::PrintToString(names);
  // The top level: block keywords and resource types with snippets.
  json top = c.Result("textDocument/completion", At(main_, base - 1, 0));
  names = Labels(top);
  EXPECT_TRUE(Has(names, "variable"));
  EXPECT_TRUE(Has(names, "bucket"));
  // Expression start: functions and references.
  names = Labels(c.Result("textDocument/completion", At(main_, 20, 13)));
  EXPECT_TRUE(Has(names, "merge"));
  EXPECT_TRUE(Has(names, "var"));
  // Right after `region =`: the regions first; after `encryption =`: its values, quoted.
  c.Notify("textDocument/didChange",
           {{"textDocument", {{"uri", PathToUri(main_)}, {"version", 2}}},
            {"contentChanges", json::array({{{"text", text + "bucket \"z\" {\n  region = \n  encryption = \n}\n"}}})}});
  uint32_t z = base + 8;  // the line of `region = ` in bucket "z"
  json after = c.Result("textDocument/completion", At(main_, z, 11));
  EXPECT_EQ(after["items"][0]["label"], "region.eu") << after["items"][0].dump();
  names = Labels(c.Result("textDocument/completion", At(main_, z + 1, 15)));
  EXPECT_TRUE(Has(names, "\"aes-256-gcm\"")) << ::testing::PrintToString(names);
  // Module arguments: the called module's variables.
  names = Labels(c.Result("textDocument/completion", At(main_, 10, 2)));
  EXPECT_TRUE(Has(names, "source") || Has(names, "count"));
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, DefinitionReferencesAndRenameAcrossModules) {
  Client c;
  c.Initialize(root_.string());
  c.Open(main_, kMain);
  // module.net.id -> output "id" in modules/net.
  json def = c.Result("textDocument/definition", At(main_, 20, 50));
  EXPECT_EQ(def["uri"], PathToUri(net_));
  EXPECT_EQ(def["range"]["start"]["line"], 4);
  // The argument `cidr` -> variable "cidr".
  def = c.Result("textDocument/definition", At(main_, 10, 3));
  EXPECT_EQ(def["uri"], PathToUri(net_));
  EXPECT_EQ(def["range"]["start"]["line"], 0);
  // A module's source -> the module's file.
  def = c.Result("textDocument/definition", At(main_, 9, 15));
  EXPECT_EQ(def["uri"], PathToUri(net_));
  // References of var.cidr from inside the module include the caller's argument.
  json refs = c.Result("textDocument/references",
                       {{"textDocument", {{"uri", PathToUri(net_)}}},
                        {"position", {{"line", 0}, {"character", 11}}},
                        {"context", {{"includeDeclaration", true}}}});
  EXPECT_EQ(refs.size(), 3u) << refs.dump();
  // prepareRename: the name and its range; nothing on a function name.
  json prep = c.Result("textDocument/prepareRename", At(main_, 0, 11));
  EXPECT_EQ(prep["placeholder"], "env");
  EXPECT_TRUE(c.Result("textDocument/prepareRename", At(main_, 20, 15)).is_null());
  // Rename the module's output from the caller: both files change.
  json edit = c.Result("textDocument/rename", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                               {"position", {{"line", 20}, {"character", 50}}},
                                               {"newName", "network_id"}});
  ASSERT_TRUE(edit["changes"].contains(PathToUri(net_))) << edit.dump();
  ASSERT_TRUE(edit["changes"].contains(PathToUri(main_)));
  EXPECT_EQ(edit["changes"][PathToUri(net_)][0]["newText"], "network_id");
  // Rename a variable of the module: the declaration, its use and the caller's argument.
  edit = c.Result("textDocument/rename", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                          {"position", {{"line", 10}, {"character", 3}}},
                                          {"newName", "block"}});
  EXPECT_EQ(edit["changes"][PathToUri(net_)].size(), 2u) << edit.dump();
  EXPECT_EQ(edit["changes"][PathToUri(main_)].size(), 1u);
  // A resource keeps its objects in the state: renaming it adds a moved block.
  edit = c.Result("textDocument/rename", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                          {"position", {{"line", 17}, {"character", 9}}},
                                          {"newName", "datasets"}});
  json main_edits = edit["changes"][PathToUri(main_)];
  ASSERT_EQ(main_edits.size(), 2u) << edit.dump();
  EXPECT_EQ(main_edits[0]["newText"], "datasets");
  EXPECT_EQ(main_edits[1]["newText"], "\nmoved {\n  from = bucket.data\n  to   = bucket.datasets\n}\n");
  // Not a name, or a name already taken: refused with a reason.
  json bad = c.Call("textDocument/rename", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                            {"position", {{"line", 0}, {"character", 11}}},
                                            {"newName", "two words"}});
  EXPECT_EQ(bad["error"]["code"], -32803);
  json taken = c.Call("textDocument/rename", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                              {"position", {{"line", 6}, {"character", 9}}},
                                              {"newName", "eu"}});
  EXPECT_EQ(taken["error"]["code"], -32803);
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, SymbolsFoldingAndSemanticTokens) {
  Client c;
  c.Initialize(root_.string());
  c.Open(main_, kMain);
  json symbols = c.Result("textDocument/documentSymbol", Doc(main_));
  std::vector<std::string> names;
  for (const json& s : symbols) names.push_back(s["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"variable \"env\"", "region.eu", "module \"net\"", "locals", "bucket.data"}));
  json ws = c.Result("workspace/symbol", {{"query", "cidr"}});
  ASSERT_EQ(ws.size(), 1u) << ws.dump();
  EXPECT_EQ(ws[0]["name"], "var.cidr");
  json folds = c.Result("textDocument/foldingRange", Doc(main_));
  bool variable_fold = false;
  for (const json& f : folds) variable_fold |= f["startLine"] == 0 && f["endLine"] == 3;
  EXPECT_TRUE(variable_fold) << folds.dump();
  json full = c.Result("textDocument/semanticTokens/full", Doc(main_));
  std::vector<uint32_t> data = full["data"];
  ASSERT_EQ(data.size() % 5, 0u);
  // The first token: `variable` (keyword, index 6) at 0:0, 8 long.
  EXPECT_EQ((std::vector<uint32_t>(data.begin(), data.begin() + 5)), (std::vector<uint32_t>{0, 0, 8, 6, 0}));
  // An edit, then a delta against the previous result.
  std::string changed = kMain;
  changed.replace(changed.find("10GiB"), 5, "20GiB");
  c.Notify("textDocument/didChange", {{"textDocument", {{"uri", PathToUri(main_)}, {"version", 2}}},
                                      {"contentChanges", json::array({{{"text", changed}}})}});
  json delta = c.Result("textDocument/semanticTokens/full/delta",
                        {{"textDocument", {{"uri", PathToUri(main_)}}}, {"previousResultId", full["resultId"]}});
  ASSERT_TRUE(delta.contains("edits")) << delta.dump();
  EXPECT_EQ(delta["edits"].size(), 0u);  // same tokens: nothing to send
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, FormattingGivesTheFormatterOutput) {
  Client c;
  c.Initialize(root_.string());
  std::string messy = "region   \"eu\" {}\nbucket \"b\" {\n region=region.eu\n      capacity   =   1GiB\n}\n";
  c.Open(main_, messy);
  json edits = c.Result("textDocument/formatting", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                                    {"options", {{"tabSize", 2}, {"insertSpaces", true}}}});
  ASSERT_FALSE(edits.empty());
  // Apply the edits back to front: the formatter's output.
  std::string text = messy;
  LineIndex lines(messy);
  std::vector<std::pair<uint32_t, std::pair<uint32_t, std::string>>> spans;
  for (const json& e : edits) {
    uint32_t b = lines.Offset({e["range"]["start"]["line"], e["range"]["start"]["character"]}, Encoding::Utf16);
    uint32_t en = lines.Offset({e["range"]["end"]["line"], e["range"]["end"]["character"]}, Encoding::Utf16);
    spans.push_back({b, {en, e["newText"]}});
  }
  std::sort(spans.rbegin(), spans.rend());
  for (const auto& [b, rest] : spans) Splice(text, b, rest.first, rest.second);
  SourceFile f(0, "x.plinth", messy);
  plinth::Diagnostics d;
  EXPECT_EQ(text, *Format(f, d));
  // Range formatting touches only the lines asked for.
  json ranged = c.Result("textDocument/rangeFormatting",
                         {{"textDocument", {{"uri", PathToUri(main_)}}},
                          {"range", {{"start", {{"line", 2}, {"character", 0}}}, {"end", {{"line", 2}, {"character", 5}}}}},
                          {"options", {{"tabSize", 2}, {"insertSpaces", true}}}});
  for (const json& e : ranged) {
    EXPECT_GE(e["range"]["start"]["line"].get<int>(), 1);
    EXPECT_LE(e["range"]["end"]["line"].get<int>(), 3);
  }
  EXPECT_LT(ranged.size(), edits.size());
  // A file with syntax errors is never rewritten.
  c.Notify("textDocument/didChange", {{"textDocument", {{"uri", PathToUri(main_)}, {"version", 2}}},
                                      {"contentChanges", json::array({{{"text", "bucket \"b\" {\n  x = = 1\n}\n"}}})}});
  EXPECT_TRUE(c.Result("textDocument/formatting", {{"textDocument", {{"uri", PathToUri(main_)}}},
                                                   {"options", {{"tabSize", 2}, {"insertSpaces", true}}}})
                  .is_null());
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, Utf8AndUtf16Positions) {
  // "é" is one UTF-16 unit and two bytes; "𝄞" two units and four bytes.
  LineIndex lines("a = \"é𝄞x\"\n");
  EXPECT_EQ(lines.Offset({0, 6}, Encoding::Utf16), 7u);   // after é (bytes 5-6)
  EXPECT_EQ(lines.Offset({0, 8}, Encoding::Utf16), 11u);  // after 𝄞
  EXPECT_EQ(lines.At(11, Encoding::Utf16).character, 8u);
  EXPECT_EQ(lines.At(11, Encoding::Utf8).character, 11u);
  EXPECT_EQ(lines.Offset({5, 0}, Encoding::Utf16), 14u);  // past the end: clamped
  EXPECT_EQ(UriToPath(PathToUri("/tmp/a b/ü.plinth")), "/tmp/a b/ü.plinth");
  Client c;
  c.Initialize(root_.string(), /*utf8=*/true);
  EXPECT_EQ(c.capabilities["positionEncoding"], "utf-8");
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, CancelledAndSupersededRequestsAreNotComputed) {
  Client c;
  c.Initialize(root_.string());
  // A large buffer keeps the main thread parsing while the rest queues up.
  std::string big;
  for (int i = 0; i < 20000; ++i) big += "marker \"m" + std::to_string(i) + "\" {\n  path = \"p" + std::to_string(i) + "\"\n}\n";
  std::string batch = Client::Frame({{"jsonrpc", "2.0"},
                                     {"method", "textDocument/didOpen"},
                                     {"params", {{"textDocument", {{"uri", PathToUri(main_)}, {"languageId", "plinth"},
                                                                   {"version", 1}, {"text", big}}}}}});
  batch += Client::Frame(c.RequestMessage(1001, "textDocument/hover", At(main_, 0, 0)));
  batch += Client::Frame({{"jsonrpc", "2.0"}, {"method", "$/cancelRequest"}, {"params", {{"id", 1001}}}});
  batch += Client::Frame(c.RequestMessage(1002, "textDocument/semanticTokens/full", Doc(main_)));
  batch += Client::Frame({{"jsonrpc", "2.0"},
                          {"method", "textDocument/didChange"},
                          {"params", {{"textDocument", {{"uri", PathToUri(main_)}, {"version", 2}}},
                                      {"contentChanges", json::array({{{"text", "region \"eu\" {}\n"}}})}}}});
  c.SendRaw(batch);
  EXPECT_EQ(c.WaitResponse(1001)["error"]["code"], -32800);
  EXPECT_EQ(c.WaitResponse(1002)["error"]["code"], -32801);
  EXPECT_EQ(c.Exit(), 0);
}

TEST_F(LspTest, InlayHintsShowValuesAndUnits) {
  Client c;
  c.Initialize(root_.string());
  std::string text = kMain;
  text.replace(text.find("10GiB"), 5, "1024MiB");
  c.Open(main_, text);
  c.Diagnostics(PathToUri(main_));  // values are known once the check ran
  json hints = c.Result("textDocument/inlayHint",
                        {{"textDocument", {{"uri", PathToUri(main_)}}},
                         {"range", {{"start", {{"line", 0}, {"character", 0}}}, {"end", {{"line", 30}, {"character", 0}}}}}});
  std::vector<std::string> labels;
  for (const json& h : hints) labels.push_back(h["label"]);
  EXPECT_TRUE(Has(labels, "= 1GiB")) << hints.dump();
  EXPECT_TRUE(Has(labels, "= { env = \"dev\" }")) << hints.dump();
  // Outside the range asked for: none.
  json none = c.Result("textDocument/inlayHint",
                       {{"textDocument", {{"uri", PathToUri(main_)}}},
                        {"range", {{"start", {{"line", 0}, {"character", 0}}}, {"end", {{"line", 2}, {"character", 0}}}}}});
  EXPECT_TRUE(none.empty()) << none.dump();
  EXPECT_EQ(c.Exit(), 0);
}

// A problem inside a called module is published for the module's file (when
// the module is not open itself); closing a file re-checks its directory.
TEST_F(LspTest, DiagnosticsOfCalledModulesAndClose) {
  Client c;
  c.Initialize(root_.string());
  Write(net_, std::string(kNet) + "\noutput \"bad\" {\n  value = var.nope\n}\n");
  c.Open(main_, kMain);
  c.WaitNotification("$/plinth/checked");
  json module_diags = c.WaitNotification("textDocument/publishDiagnostics", PathToUri(net_));
  ASSERT_FALSE(module_diags["params"]["diagnostics"].empty());
  EXPECT_EQ(module_diags["params"]["diagnostics"][0]["code"], "P0202");
  c.Notify("textDocument/didClose", {{"textDocument", {{"uri", PathToUri(main_)}}}});
  // The file on disk is what was open: the check keeps every declaration
  // (CheckSession) and says so.
  json again = c.WaitNotification("$/plinth/checked");
  EXPECT_GT(again["params"]["reused"].get<int>(), 0) << again.dump();
  EXPECT_EQ(again["params"]["files"].get<int>(), 2) << again.dump();
  EXPECT_EQ(c.Exit(), 0);
}

// The checker's parse cache (what makes the server's re-checks cheaper): an
// unchanged file keeps its tree and FileId, an edited one is parsed again,
// and a cached file's syntax errors are reported on every check.
TEST_F(LspTest, ParseCacheReusesUnchangedFiles) {
  ParseCache cache;
  std::map<std::string, std::string> overlay;
  auto check = [&](std::vector<std::string>* paths) {
    cache.BeginCheck();
    plinth::Diagnostics diags;
    CheckOptions co;
    co.schemas = &runtime::BuiltinSchemas();
    co.display_root = "/";
    co.overlay = &overlay;
    co.parse_cache = &cache;
    Check(root_.string(), cache.sources(), diags, co);
    paths->clear();
    for (FileId id : cache.Used()) paths->push_back(cache.sources().Get(id).path() + "#" + std::to_string(id));
    return diags.Sorted(cache.sources());
  };
  std::vector<std::string> first, second, third;
  EXPECT_TRUE(check(&first).size() <= 1u);  // at most the encryption caveat
  ASSERT_EQ(first.size(), 2u);              // main.plinth and the module's file
  EXPECT_TRUE(check(&second).size() <= 1u);
  EXPECT_EQ(first, second);                 // same files, same ids: nothing parsed again
  EXPECT_EQ(cache.stale_bytes(), 0u);
  // An edited buffer is parsed again (a new id); the module's file is not.
  overlay[main_] = std::string(kMain) + "\nbucket \"x\" {\n  capacity = = 1\n}\n";
  auto diags = check(&third);
  ASSERT_EQ(third.size(), 2u);
  EXPECT_NE(third, second);
  EXPECT_TRUE(std::find(third.begin(), third.end(), second[1]) != third.end() ||
              std::find(third.begin(), third.end(), second[0]) != third.end());
  EXPECT_EQ(cache.stale_bytes(), std::string(kMain).size());
  bool syntax = false;
  for (const auto& d : diags) syntax |= d.severity == Severity::Error;
  EXPECT_TRUE(syntax);
  // Checked again unchanged: the syntax error comes from the cache, once.
  std::vector<std::string> fourth;
  auto again = check(&fourth);
  EXPECT_EQ(fourth, third);
  EXPECT_EQ(again.size(), diags.size());
}

}  // namespace
}  // namespace plinth::lsp
