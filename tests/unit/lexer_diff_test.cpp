// The production lexer (compiler/syntax/fast_lexer.cpp) must produce exactly
// the tokens of the lexer generated from grammar/Plinth.g4, which stays the
// specification. Compared on every example and golden file, on hand-picked
// edge cases and on random token soup.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "compiler/syntax/parse.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

std::string Describe(const std::vector<syntax_testing::LexedToken>& tokens, std::string_view text) {
  std::string s;
  for (const auto& t : tokens) {
    s += std::to_string(t.type) + ":" + std::string(text.substr(t.begin, t.end - t.begin)) + " ";
  }
  return s;
}

void ExpectSameTokens(std::string_view text, const std::string& what) {
  auto ref = syntax_testing::LexWithGeneratedLexer(text);
  auto fast = syntax_testing::LexWithFastLexer(text);
  if (ref != fast) {
    ADD_FAILURE() << what << "\ngenerated: " << Describe(ref, text) << "\nfast:      " << Describe(fast, text);
  }
}

TEST(LexerDiff, ExamplesAndGoldenFiles) {
  size_t files = 0;
  for (const char* dir : {"examples", "tests/golden", "stdlib"}) {
    for (const auto& e : fs::recursive_directory_iterator(fs::path(PLINTH_SOURCE_DIR) / dir)) {
      if (!e.is_regular_file() || e.path().extension() != ".plinth") continue;
      std::ifstream in(e.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      std::string text = ss.str();
      // The generated lexer needs valid UTF-8; those cases test the encoding check.
      if (FindInvalidUtf8(text) != std::string::npos) continue;
      ExpectSameTokens(text, e.path().string());
      ++files;
    }
  }
  EXPECT_GT(files, 30u);
}

TEST(LexerDiff, EdgeCases) {
  const char* cases[] = {
      "1e5 1e5s 1.5h 10GB2 80% 10%3 1. 1.x 007 1e+ 1E-3",
      "a.b.c[0] x[*].y true_x if_ for in if null",
      "\"a${b}c\" \"${ {a = 1}.a }\" \"${\"nested ${x}\"}\" \"$${no}\" \"\\\"\" \"a$\" \"$\"",
      "\"unterminated\n next = 1",
      "\"${ never closed\" x",
      "\"${\n  multi\n}\"",
      "<<EOT\nbody ${x}\nEOT\n<<-IND\n    a\n  IND\nafter",
      "<<EOT\nnever ends\n",
      "<< EOT <<1 << <<= <= < >= > => == = != ! && || & |",
      "/* block */ /* unterminated",
      "# comment\n// comment\r\nx = 1 /* a */ # b",
      "a\r\nb\rc",
      "é ü 日本 'single'",
      "x = 1 ;",
  };
  for (const char* c : cases) ExpectSameTokens(c, c);
}

TEST(LexerDiff, RandomTokenSoup) {
  const std::vector<std::string> pieces = {
      "a", "b1", "_x", "true", "for", "in", "if", "null", "1", "2.5", "1e3", "30s", "5GiB", "80%", "%", "\"s\"",
      "\"${a}\"", "\"${ {x=1} }\"", "\"$\"", "\"\\n\"", "{", "}", "[", "]", "(", ")", "=", "=>", "==", "!=", "!",
      "<", "<=", ">", ">=", "&&", "||", "+", "-", "*", "/", ".", ",", ":", "?", "#c\n", "//c\n", "/*c*/", " ",
      "\n", "\t", "<<E\nx\nE\n", "\"${", "}\"", "\"", "$", "&", "|", "~", "@"};
  std::mt19937 rng(42);
  for (int round = 0; round < 5000; ++round) {
    std::string text;
    int len = 1 + static_cast<int>(rng() % 30);
    for (int i = 0; i < len; ++i) text += pieces[rng() % pieces.size()];
    ExpectSameTokens(text, "random input: " + text);
    if (HasFailure()) break;
  }
}

}  // namespace
}  // namespace plinth
