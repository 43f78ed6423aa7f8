// libFuzzer target for the front end: lexer, parser, formatter, checker and
// diagnostic rendering. Built with -DPLINTH_FUZZ=ON (clang); driven by
// scripts/fuzz.sh. Any crash, sanitizer report, timeout or out-of-memory is a
// bug: every stage must turn any input into diagnostics.
//
// Per input:
//  1. Lex, Parse and ParseExpression of the bytes through a fresh SourceManager.
//  2. Format; when it accepts the input, the documented invariants are checked:
//     the result has the same tokens (SameTokens) and formatting is idempotent.
//     A violation aborts (a formatter bug). Set PLINTH_FUZZ_NO_FMT_INVARIANTS=1
//     to fuzz for crashes only.
//  3. The input is written as main.plinth into a per-process temporary
//     directory and the full Check runs on it (one parser thread: the fuzzer
//     runs one input at a time and threads would only add noise).
//  4. Every diagnostic list is sorted and rendered as text and JSON, which
//     exercises line/column computation on arbitrary bytes.
//  5. For a quarter of the inputs, the language server's features
//     (lsp/features.h) on the input as an open buffer, at positions spread
//     over it and after '.', '{' and '(': hover, completion (a third of the
//     positions), signature help, definition, references, prepareRename and
//     rename, symbols, folding, semantic tokens, formatting (whole and range)
//     and inlay hints; then again after an edit derived from the input (a
//     slice removed, as typing and deleting do).
//     The same quarter also goes through a CheckSession (the server's
//     incremental checks): the input, the input again (everything kept), the
//     edited input and the input once more; each answer must be what a whole
//     Check gives (diagnostics, resource instances, locals, outputs), else
//     the target aborts.
//  6. The protocol's framing (lsp/transport.h): the input as a message body,
//     and as raw header bytes.

#include <unistd.h>

#include <algorithm>
#include <map>
#include <vector>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "compiler/check/checker.h"
#include "compiler/check/loader.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/fmt/fmt.h"
#include "compiler/source/source.h"
#include "compiler/syntax/parse.h"
#include "lsp/features.h"
#include "lsp/transport.h"
#include "runtime/providers/catalog.h"

namespace {

namespace fs = std::filesystem;

std::string g_dir;  // per-process temporary directory holding main.plinth
bool g_fmt_invariants = true;

void RemoveDir() {
  if (!g_dir.empty()) {
    std::error_code ec;
    fs::remove_all(g_dir, ec);
  }
}

void Render(const plinth::Diagnostics& diags, const plinth::SourceManager& sources) {
  std::vector<plinth::Diagnostic> sorted = diags.Sorted(sources);
  plinth::RenderOptions ro;
  std::string text = plinth::RenderText(sorted, sources, ro);
  std::string json = plinth::RenderJson(sorted, sources);
  // Keep the results alive so nothing is optimized away.
  if (text.size() + json.size() == 1) std::abort();
}

[[noreturn]] void Fail(const char* what, const std::string& a, const std::string& b) {
  std::fprintf(stderr, "plinth-fuzz: %s\n--- first (%zu bytes) ---\n%s\n--- second (%zu bytes) ---\n%s\n", what,
               a.size(), a.c_str(), b.size(), b.c_str());
  std::abort();
}

// Every feature of the language server at `offsets` of the buffer `text`.
// What a check gives, as text that does not depend on file ids.
std::string Describe(const plinth::CheckedConfig& c, const plinth::Diagnostics& diags,
                     const plinth::SourceManager& sources) {
  std::vector<std::string> lines;
  for (const plinth::Diagnostic& d : diags.items()) lines.push_back(plinth::RenderText({d}, sources, {}));
  std::sort(lines.begin(), lines.end());
  for (const plinth::ResourceInstance& r : c.resources) {
    std::string line = r.address + " " + plinth::Value::Object(r.attributes).ToString(true);
    for (const std::string& d : r.depends_on) line += " " + d;
    lines.push_back(line);
  }
  for (const auto& l : c.locals) lines.push_back("local " + l.name + " " + l.value.ToString(true));
  for (const auto& o : c.outputs) lines.push_back("output " + o.name + " " + o.value.ToString(true));
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// A CheckSession's answer for `text` as main.plinth must be a whole Check's.
void CompareSession(plinth::CheckSession& session, const std::string& text) {
  std::map<std::string, std::string> overlay{{g_dir + "/main.plinth", text}};
  plinth::CheckOptions options;
  options.threads = 1;
  options.schemas = &plinth::runtime::BuiltinSchemas();
  options.overlay = &overlay;
  plinth::Diagnostics diags;
  std::shared_ptr<const plinth::CheckedConfig> got = session.Check(g_dir, diags, options);
  std::string incremental = Describe(*got, diags, session.parse_cache().sources());
  plinth::SourceManager sources;
  plinth::Diagnostics whole_diags;
  plinth::CheckedConfig whole = plinth::Check(g_dir, sources, whole_diags, options);
  std::string expected = Describe(whole, whole_diags, sources);
  if (incremental != expected) Fail("an incremental check differs from a whole one", expected, incremental);
}

void Features(plinth::lsp::Index& index, const std::string& path, const std::string& text,
              const std::vector<uint32_t>& offsets) {
  using plinth::lsp::json;
  const plinth::lsp::ParsedFile& file = index.Open(path, text);
  plinth::lsp::Context cx{index, plinth::runtime::BuiltinSchemas(), plinth::lsp::Encoding::Utf16, nullptr};
  json doc = {{"uri", file.uri}};
  for (size_t k = 0; k < offsets.size(); ++k) {
    plinth::lsp::Position p = file.lines.At(offsets[k], plinth::lsp::Encoding::Utf16);
    json at = {{"textDocument", doc}, {"position", {{"line", p.line}, {"character", p.character}}}};
    plinth::lsp::Hover(cx, at);
    if (k % 3 == 2) plinth::lsp::Completion(cx, at);  // the costliest answer: at a third of the positions
    plinth::lsp::SignatureHelp(cx, at);
    plinth::lsp::Definition(cx, at);
    plinth::lsp::References(cx, at);
    plinth::lsp::PrepareRename(cx, at);
    at["newName"] = "renamed";
    try {
      plinth::lsp::Rename(cx, at);
    } catch (const plinth::lsp::RenameError&) {
    }
  }
  json whole = {{"textDocument", doc}};
  plinth::lsp::DocumentSymbols(cx, whole);
  plinth::lsp::FoldingRanges(cx, whole);
  plinth::lsp::InlayHints(cx, whole);
  plinth::lsp::Formatting(cx, whole, false);
  whole["range"] = {{"start", {{"line", 1}, {"character", 0}}}, {"end", {{"line", 3}, {"character", 0}}}};
  plinth::lsp::Formatting(cx, whole, true);
  plinth::lsp::SemanticTokens(file, plinth::lsp::Encoding::Utf16);
  plinth::lsp::SemanticTokens(file, plinth::lsp::Encoding::Utf8);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* no_fmt = std::getenv("PLINTH_FUZZ_NO_FMT_INVARIANTS");
  g_fmt_invariants = !(no_fmt && *no_fmt && std::string(no_fmt) != "0");
  std::string tmpl = (fs::temp_directory_path() / "plinth-fuzz-XXXXXX").string();
  if (!mkdtemp(tmpl.data())) {
    std::perror("plinth-fuzz: mkdtemp");
    std::exit(1);
  }
  g_dir = tmpl;
  std::atexit(RemoveDir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);

  // 1-2. Lexer, parser, formatter on one file.
  {
    plinth::SourceManager sources;
    const plinth::SourceFile& file = sources.Add("fuzz.plinth", text);
    plinth::Diagnostics lex_diags, parse_diags, expr_diags, fmt_diags;
    std::vector<plinth::Token> tokens = plinth::Lex(file, lex_diags);
    for (const plinth::Token& t : tokens) {
      if (t.begin > t.end || t.end > size) Fail("token range outside the file", text, "");
    }
    plinth::ast::File tree = plinth::Parse(file, parse_diags);
    (void)tree;
    plinth::ast::ExprPtr expr = plinth::ParseExpression(file, expr_diags);
    if (!expr) Fail("ParseExpression returned null", text, "");

    bool internal_failure = false;
    std::optional<std::string> formatted = plinth::Format(file, fmt_diags, &internal_failure);
    if (formatted && g_fmt_invariants) {
      if (internal_failure) Fail("formatter token check failed (input returned unchanged)", text, *formatted);
      if (!plinth::SameTokens(text, *formatted)) Fail("formatted text has different tokens", text, *formatted);
      const plinth::SourceFile& again = sources.Add("fuzz-formatted.plinth", *formatted);
      plinth::Diagnostics again_diags;
      std::optional<std::string> twice = plinth::Format(again, again_diags);
      if (!twice) Fail("formatted text does not parse", text, *formatted);
      if (*twice != *formatted) Fail("formatting is not idempotent", *formatted, *twice);
    }
    Render(lex_diags, sources);
    Render(parse_diags, sources);
    Render(expr_diags, sources);
    Render(fmt_diags, sources);
  }

  // 3-4. The full check on a directory holding the input as its only file.
  {
    {
      std::ofstream out(g_dir + "/main.plinth", std::ios::binary | std::ios::trunc);
      out.write(text.data(), static_cast<std::streamsize>(text.size()));
      if (!out) {
        std::perror("plinth-fuzz: write");
        std::exit(1);
      }
    }
    plinth::SourceManager sources;
    plinth::Diagnostics diags;
    plinth::CheckOptions options;
    options.threads = 1;
    options.schemas = &plinth::runtime::BuiltinSchemas();  // no resolver: nothing is started
    plinth::CheckedConfig config = plinth::Check(g_dir, sources, diags, options);
    (void)config;
    Render(diags, sources);
  }

  // 5. The language server's features, before and after an edit: for a
  // quarter of the inputs (chosen by their bytes, so a replay does the same),
  // which keeps most of the time for the parser and checker above.
  if (size > 0 && (data[size / 2] & 3) == 0) {
    std::vector<uint32_t> offsets;
    for (uint32_t k = 0; k <= 4; ++k) offsets.push_back(static_cast<uint32_t>(size * k / 4));
    // Positions after '.', '{' and '(' (where completion and signature help
    // work hardest), seven spread over the input.
    std::vector<uint32_t> marks;
    for (uint32_t i = 0; i < size; ++i)
      if (text[i] == '.' || text[i] == '{' || text[i] == '(') marks.push_back(i + 1);
    for (size_t k = 0; k < 7 && !marks.empty(); ++k) offsets.push_back(marks[marks.size() * k / 7]);
    plinth::lsp::Index index;
    std::string path = g_dir + "/main.plinth";
    Features(index, path, text, offsets);
    std::string edited = text;
    if (size > 2) {
      size_t at = data[0] % size, len = 1 + data[size - 1] % 16;
      edited.erase(at, std::min(len, size - at));
    }
    for (uint32_t& o : offsets) o = std::min<uint32_t>(o, static_cast<uint32_t>(edited.size()));
    Features(index, path, edited, offsets);
    index.Close(path);
    plinth::CheckSession session;
    for (const std::string* t : {&text, &text, &edited, &text}) CompareSession(session, *t);
  }

  // 6. The framing: the input as one message body, then as raw header bytes.
  {
    for (const std::string& bytes :
         {"Content-Length: " + std::to_string(size) + "\r\n\r\n" + text, text}) {
      int fds[2];
      if (::pipe(fds) != 0) std::exit(1);
      if (bytes.size() < 60000) {
        if (::write(fds[1], bytes.data(), bytes.size()) < 0) std::exit(1);
      }
      ::close(fds[1]);
      plinth::lsp::Transport transport(fds[0], -1);
      plinth::lsp::json message;
      std::string error;
      for (int i = 0; i < 4; ++i) {
        auto status = transport.Read(&message, &error);
        if (status == plinth::lsp::Transport::ReadStatus::Eof ||
            status == plinth::lsp::Transport::ReadStatus::BadFrame)
          break;
      }
      ::close(fds[0]);
    }
  }
  return 0;
}
