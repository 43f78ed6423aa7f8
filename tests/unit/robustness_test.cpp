// Robustness of the front end: hostile or degenerate inputs must produce
// diagnostics (or none, where the input is valid), never a crash, a stack
// overflow or a runaway in time. Each test names the diagnostic it expects
// (compiler/diag/codes.def).

#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "compiler/check/checker.h"
#include "compiler/diag/diagnostic.h"
#include "compiler/source/source.h"
#include "compiler/syntax/parse.h"
#include "runtime/providers/catalog.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

std::string Repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

bool HasCode(const Diagnostics& diags, DiagCode code) {
  for (const Diagnostic& d : diags.items()) {
    if (d.code == code) return true;
  }
  return false;
}

std::string Codes(const Diagnostics& diags) {
  std::string s;
  for (const Diagnostic& d : diags.items()) {
    s += std::string(Info(d.code).code) + " " + d.message.substr(0, 120) + "\n";
  }
  return s.empty() ? "(no diagnostics)" : s;
}

// Every diagnostic range lies inside its file, and rendering works.
void ExpectRenderable(const Diagnostics& diags, const SourceManager& sources) {
  for (const Diagnostic& d : diags.items()) {
    if (!d.range.valid()) continue;
    const SourceFile& f = sources.Get(d.range.file);
    EXPECT_LE(d.range.begin, d.range.end);
    EXPECT_LE(d.range.end, f.text().size());
  }
  std::vector<Diagnostic> sorted = diags.Sorted(sources);
  EXPECT_FALSE(RenderText(sorted, sources, {}).empty() && !sorted.empty());
  EXPECT_FALSE(RenderJson(sorted, sources).empty());
}

struct ParseResult {
  SourceManager sources;
  Diagnostics diags;
  ast::File file;
};

std::unique_ptr<ParseResult> ParseText(const std::string& text) {
  auto r = std::make_unique<ParseResult>();
  const SourceFile& f = r->sources.Add("input.plinth", text);
  r->file = Parse(f, r->diags);
  ExpectRenderable(r->diags, r->sources);
  return r;
}

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "plinth-robustness-XXXXXX").string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream out(fs::path(path_) / name, std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }

 private:
  std::string path_;
};

struct CheckResult {
  SourceManager sources;
  Diagnostics diags;
  CheckedConfig config;
};

// Runs the whole checker on a directory holding `text` as main.plinth.
std::unique_ptr<CheckResult> CheckText(const std::string& text) {
  TempDir dir;
  EXPECT_FALSE(dir.path().empty());
  dir.Write("main.plinth", text);
  auto r = std::make_unique<CheckResult>();
  CheckOptions options;
  options.schemas = &runtime::BuiltinSchemas();
  r->config = Check(dir.path(), r->sources, r->diags, options);
  ExpectRenderable(r->diags, r->sources);
  return r;
}

std::string Local(const std::string& expr) { return "locals {\n  x = " + expr + "\n}\n"; }

// Parses and checks `text`, expecting `code` from both.
void ExpectCode(const std::string& text, DiagCode code) {
  auto p = ParseText(text);
  EXPECT_TRUE(HasCode(p->diags, code)) << "parse: expected " << Info(code).code << ", got\n" << Codes(p->diags);
  auto c = CheckText(text);
  EXPECT_TRUE(HasCode(c->diags, code)) << "check: expected " << Info(code).code << ", got\n" << Codes(c->diags);
}

// ------------------------------------------------------------- deep nesting

TEST(Robustness, TenThousandNestedBrackets) {
  ExpectCode(Local(Repeat("[", 10000) + "1" + Repeat("]", 10000)), DiagCode::NestingTooDeep);
}

TEST(Robustness, TenThousandNestedBracketsUnclosed) {
  ExpectCode(Local(Repeat("[", 10000)), DiagCode::NestingTooDeep);
}

TEST(Robustness, TenThousandNestedParens) {
  ExpectCode(Local(Repeat("(", 10000) + "1" + Repeat(")", 10000)), DiagCode::NestingTooDeep);
}

TEST(Robustness, HundredThousandNestedObjects) {
  ExpectCode(Local(Repeat("{ a = ", 100000) + "1" + Repeat(" }", 100000)), DiagCode::NestingTooDeep);
}

TEST(Robustness, HundredThousandTermSum) {
  ExpectCode(Local(Repeat("1 + ", 99999) + "1"), DiagCode::NestingTooDeep);
}

TEST(Robustness, FiftyThousandUnaryMinus) {
  ExpectCode(Local(Repeat("-", 50000) + "1"), DiagCode::NestingTooDeep);
}

TEST(Robustness, FiftyThousandUnaryNot) {
  ExpectCode(Local(Repeat("!", 50000) + "true"), DiagCode::NestingTooDeep);
}

TEST(Robustness, TwentyThousandDeepConditional) {
  std::string e;
  for (int i = 0; i < 20000; ++i) e += "true ? " + std::to_string(i) + " : ";
  ExpectCode(Local(e + "0"), DiagCode::NestingTooDeep);
}

// "${"${"${ ... 1 }"}"}": each level is a string inside an interpolation.
std::string NestedInterpolation(int depth) {
  std::string e = "1";
  for (int i = 0; i < depth; ++i) e = "\"${" + e + "}\"";
  return e;
}

TEST(Robustness, ModeratelyNestedInterpolation) {
  auto start = std::chrono::steady_clock::now();
  auto c = CheckText(Local(NestedInterpolation(12)) + "output \"o\" {\n  value = local.x\n}\n");
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(c->diags.has_errors()) << Codes(c->diags);
  ASSERT_EQ(c->config.outputs.size(), 1u);
  EXPECT_EQ(c->config.outputs[0].value.ToString(), "\"1\"");
  EXPECT_LT(seconds, 5.0);
}

// Regression: with ANTLR's lexer the STRING rule was ambiguous for "${" ('$'
// and '{' also match the plain-character alternative), so time and memory grew
// exponentially with the nesting depth (depth 24: 7 s and 380 MB for a
// 150-byte file). Strings must be scanned in linear time, and nesting beyond
// ast::kMaxNesting must give P0105.
TEST(Robustness, DeeplyNestedInterpolation) {
  auto start = std::chrono::steady_clock::now();
  ExpectCode(Local(NestedInterpolation(300)), DiagCode::NestingTooDeep);
  auto c = CheckText(Local(NestedInterpolation(40)));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 10.0);
}

TEST(Robustness, NestingJustUnderTheLimitIsAccepted) {
  // Well below ast::kMaxNesting: valid and evaluated.
  std::string text = "locals {\n  x = " + Repeat("[", 100) + "1" + Repeat("]", 100) + "\n}\n" +
                     "output \"o\" {\n  value = local.x\n}\n";
  auto c = CheckText(text);
  EXPECT_FALSE(c->diags.has_errors()) << Codes(c->diags);
}

// ----------------------------------------------------------------- encoding

struct EncodingCase {
  const char* name;
  std::string bytes;
};

TEST(Robustness, MalformedUtf8) {
  const std::vector<EncodingCase> cases = {
      {"lone continuation byte", "\x80"},
      {"truncated 3-byte sequence", "\xE2\x82"},
      {"truncated sequence at end of file", "\xF0\x9F\x98"},
      {"overlong '/'", "\xC0\xAF"},
      {"overlong 3-byte NUL", "\xE0\x80\x80"},
      {"UTF-16 surrogate", "\xED\xA0\x80"},
      {"above U+10FFFF", "\xF4\x90\x80\x80"},
      {"invalid lead byte 0xFF", "\xFF"},
      {"invalid lead byte 0xF8", "\xF8\x88\x80\x80\x80"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    // In a string, in a comment and bare.
    for (const std::string& text : {Local("\"a" + c.bytes + "b\""), "# " + c.bytes + "\n", c.bytes}) {
      auto p = ParseText(text);
      ASSERT_TRUE(HasCode(p->diags, DiagCode::InvalidEncoding)) << Codes(p->diags);
      auto k = CheckText(text);
      EXPECT_TRUE(HasCode(k->diags, DiagCode::InvalidEncoding)) << Codes(k->diags);
      SourceManager sm;
      Diagnostics d;
      Lex(sm.Add("lex.plinth", text), d);
      EXPECT_TRUE(HasCode(d, DiagCode::InvalidEncoding));
    }
  }
}

TEST(Robustness, ValidUtf8IsAccepted) {
  auto c = CheckText(Local("\"h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80\"") + "output \"o\" {\n  value = local.x\n}\n");
  EXPECT_FALSE(c->diags.has_errors()) << Codes(c->diags);
}

TEST(Robustness, NulByte) {
  std::string text = Local("\"a") + std::string(1, '\0') + "\"\n";
  ExpectCode(text, DiagCode::InvalidEncoding);
  ExpectCode(std::string(1, '\0'), DiagCode::InvalidEncoding);
}

// ------------------------------------------------------------ size and EOF

TEST(Robustness, TwentyMegabytesOfResources) {
  std::string text;
  text.reserve(21 << 20);
  text += "region \"eu\" {}\n\n";
  size_t i = 0;
  while (text.size() < (20u << 20)) {
    std::string n = std::to_string(i++);
    text += "marker \"m" + n + "\" {\n  path    = \"data/m" + n + "\"\n  content = \"value ${" + n +
            " + 1}\"\n  triggers = { a = \"x\", b = \"y\" }\n}\n\n";
    text += "bucket \"b" + n + "\" {\n  region   = region.eu\n  capacity = 10GiB\n  labels   = { team = \"t\" }\n}\n\n";
  }
  auto start = std::chrono::steady_clock::now();
  auto p = ParseText(text);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_FALSE(p->diags.has_errors()) << Codes(p->diags);
  EXPECT_FALSE(p->file.has_errors);
  EXPECT_EQ(p->file.body.blocks.size(), 2 * i + 1);
  // Generous: Release parses this in a few seconds; sanitizer builds are slower.
  EXPECT_LT(seconds, 180.0) << "parsing 20 MB took " << seconds << " s";
  RecordProperty("parse_seconds", std::to_string(seconds));
}

TEST(Robustness, EmptyFile) {
  auto p = ParseText("");
  EXPECT_EQ(p->diags.items().size(), 0u) << Codes(p->diags);
  EXPECT_FALSE(p->file.has_errors);
  auto c = CheckText("");
  EXPECT_FALSE(c->diags.has_errors()) << Codes(c->diags);
  EXPECT_TRUE(c->config.resources.empty());
}

TEST(Robustness, OnlyComments) {
  std::string text = "# a comment\n// another\n/* a block\n   comment */\n\n# last line without newline";
  auto p = ParseText(text);
  EXPECT_EQ(p->diags.items().size(), 0u) << Codes(p->diags);
  EXPECT_TRUE(p->file.body.blocks.empty());
  auto c = CheckText(text);
  EXPECT_FALSE(c->diags.has_errors()) << Codes(c->diags);
}

TEST(Robustness, OnlyWhitespace) {
  auto c = CheckText(" \t\r\n\n\f  \r\n");
  EXPECT_FALSE(c->diags.has_errors()) << Codes(c->diags);
}

TEST(Robustness, UnterminatedStringAtEof) {
  ExpectCode(Local("\"abc"), DiagCode::UnterminatedString);
  ExpectCode("locals {\n  x = \"abc", DiagCode::UnterminatedString);
  ExpectCode("locals {\n  x = \"abc\\", DiagCode::UnterminatedString);
}

TEST(Robustness, UnterminatedHeredocAtEof) {
  ExpectCode("locals {\n  x = <<EOT\nline one\nline two\n", DiagCode::UnterminatedHeredoc);
  ExpectCode("locals {\n  x = <<-EOT\n  no newline at the end", DiagCode::UnterminatedHeredoc);
  ExpectCode("locals {\n  x = <<EOT\n", DiagCode::UnterminatedHeredoc);
}

TEST(Robustness, UnterminatedCommentAtEof) {
  ExpectCode("locals {\n  x = 1\n}\n/* not closed", DiagCode::UnterminatedComment);
  ExpectCode("/*", DiagCode::UnterminatedComment);
  ExpectCode("/* * ** *", DiagCode::UnterminatedComment);
}

TEST(Robustness, UnclosedBlockAtEof) { ExpectCode("region \"eu\" {\n  port_base = 1", DiagCode::SyntaxError); }

TEST(Robustness, UnterminatedInterpolationAtEof) {
  auto p = ParseText("locals {\n  x = \"${");
  EXPECT_TRUE(p->diags.has_errors()) << Codes(p->diags);
}

// ------------------------------------------------------------- random bytes

TEST(Robustness, RandomBytes) {
  std::mt19937_64 rng(20240611);
  for (int round = 0; round < 200; ++round) {
    size_t size = 1 + rng() % 4096;
    std::string text(size, '\0');
    for (char& c : text) c = static_cast<char>(rng() & 0xFF);
    SCOPED_TRACE("round " + std::to_string(round));
    auto p = ParseText(text);
    // Almost surely not UTF-8; if it happens to be, it is surely not Plinth.
    EXPECT_TRUE(p->diags.has_errors());
    if (round < 20) CheckText(text);
  }
}

TEST(Robustness, RandomPrintableText) {
  // Past the UTF-8 check: random tokens reach the lexer, parser and checker.
  const std::string alphabet =
      "abcxyz_019 \n\t\"'${}[]()=<>!?:.,+-*/%#&|\\";
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    size_t size = 1 + rng() % 2048;
    std::string text(size, ' ');
    for (char& c : text) c = alphabet[rng() % alphabet.size()];
    SCOPED_TRACE("round " + std::to_string(round) + ": " + text.substr(0, 80));
    auto p = ParseText(text);
    if (round < 40) CheckText(text);
    SourceManager sm;
    Diagnostics d;
    Lex(sm.Add("lex.plinth", text), d);
  }
}

TEST(Robustness, RandomTokenSoup) {
  // Plausible tokens in random order: exercises parser recovery.
  const std::vector<std::string> tokens = {
      "region", "bucket", "marker", "locals", "variable", "output", "module", "\"eu\"", "x", "count", "for_each",
      "each.key", "count.index", "var.x", "local.x", "=", "{", "}", "[", "]", "(", ")", ",", ":", "?", "=>",
      "for", "in", "if", "1", "10GiB", "30s", "80%", "\"s\"", "\"${1}\"", "+", "-", "*", "!", "==", "&&", ".", "[*]",
      "<<EOT\nx\nEOT\n", "#c\n", "/*c*/", "\n", "true", "null", "merge(", "length("};
  std::mt19937_64 rng(11);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    size_t n = 1 + rng() % 200;
    for (size_t i = 0; i < n; ++i) text += tokens[rng() % tokens.size()] + " ";
    SCOPED_TRACE("round " + std::to_string(round) + ": " + text.substr(0, 120));
    auto p = ParseText(text);
    if (round < 100) CheckText(text);
  }
}

}  // namespace
}  // namespace plinth
