// Tests for the source formatter (compiler/fmt).
//
// Golden cases live in tests/golden/fmt: NAME.plinth is the input and
// NAME.plinth.golden the expected output. Run with PLINTH_UPDATE_GOLDEN=1 to
// rewrite the .golden files from the current formatter (then review the diff).

#include "compiler/fmt/fmt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/syntax/parse.h"
#include "tests/support/files.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

const fs::path kSourceDir = PLINTH_SOURCE_DIR;

using plinth::testing::ReadFile;
using plinth::testing::WriteFile;

// Formats `text`; fails the test on refusal or on an internal failure.
std::string FormatOk(const std::string& text, const std::string& name = "input.plinth") {
  SourceFile file(0, name, text);
  Diagnostics diags;
  bool internal_failure = true;
  std::optional<std::string> out = Format(file, diags, &internal_failure);
  EXPECT_TRUE(out.has_value()) << name << ": refused to format";
  EXPECT_FALSE(internal_failure) << name << ": token check failed";
  return out.value_or("");
}

// nullopt when the file does not parse (formatting is refused).
std::optional<std::string> TryFormat(const std::string& text) {
  SourceFile file(0, "input.plinth", text);
  Diagnostics diags;
  return Format(file, diags);
}

std::vector<fs::path> GoldenInputs() {
  std::vector<fs::path> inputs;
  fs::path dir = kSourceDir / "tests/golden/fmt";
  if (!fs::exists(dir)) return inputs;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".plinth") inputs.push_back(entry.path());
  }
  std::sort(inputs.begin(), inputs.end());
  return inputs;
}

// Every .plinth file in the examples, the standard library and the golden tests.
std::vector<fs::path> AllPlinthFiles() {
  std::vector<fs::path> files;
  for (const char* dir : {"examples", "stdlib", "tests/golden"}) {
    fs::path root = kSourceDir / dir;
    if (!fs::exists(root)) continue;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
      if (entry.is_regular_file() && entry.path().extension() == ".plinth") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> CommentTexts(const std::string& text) {
  SourceFile file(0, "x.plinth", text);
  Diagnostics diags;
  std::vector<std::string> comments;
  for (const Token& t : Lex(file, diags)) {
    if (t.kind == TokenKind::LineComment || t.kind == TokenKind::BlockComment) {
      std::string c(text.substr(t.begin, t.end - t.begin));
      while (!c.empty() && (c.back() == ' ' || c.back() == '\r')) c.pop_back();
      comments.push_back(c);
    }
  }
  return comments;
}

TEST(FmtGolden, MatchesExpectedOutput) {
  std::vector<fs::path> inputs = GoldenInputs();
  ASSERT_GE(inputs.size(), 12u) << "golden cases missing from tests/golden/fmt";
  const bool updating = plinth::testing::UpdatingGolden();
  for (const fs::path& input : inputs) {
    SCOPED_TRACE(input.filename().string());
    std::string out = FormatOk(ReadFile(input), input.string());
    fs::path golden = input;
    golden += ".golden";
    if (updating) {
      WriteFile(golden, out);
      continue;
    }
    ASSERT_TRUE(fs::exists(golden)) << golden << " is missing; run with PLINTH_UPDATE_GOLDEN=1";
    EXPECT_EQ(out, ReadFile(golden));
  }
}

TEST(FmtGolden, CanonicalFileIsUnchanged) {
  fs::path path = kSourceDir / "tests/golden/fmt/14_canonical.plinth";
  std::string text = ReadFile(path);
  EXPECT_EQ(FormatOk(text), text);
}

TEST(FmtIdempotence, GoldenInputsAndOutputs) {
  for (const fs::path& input : GoldenInputs()) {
    SCOPED_TRACE(input.filename().string());
    std::string once = FormatOk(ReadFile(input));
    EXPECT_EQ(FormatOk(once), once);
  }
}

TEST(FmtIdempotence, EveryPlinthFileInTheRepository) {
  for (const fs::path& path : AllPlinthFiles()) {
    SCOPED_TRACE(path.string());
    std::optional<std::string> once = TryFormat(ReadFile(path));
    if (!once) continue;  // negative test inputs with syntax errors
    std::optional<std::string> twice = TryFormat(*once);
    ASSERT_TRUE(twice.has_value());
    EXPECT_EQ(*twice, *once);
  }
}

// Rewrites the whitespace between tokens. Horizontal-only mode keeps where
// lines break (and whether a blank line is there), so the formatted result
// must equal that of the original; otherwise line breaks are added and removed
// too, and the result must still be a fixed point with every token kept.
std::string Perturb(const std::string& text, std::mt19937& rng, bool horizontal_only) {
  SourceFile file(0, "x.plinth", text);
  Diagnostics diags;
  std::vector<Token> toks = Lex(file, diags);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  // `keep_separators`: a gap that held whitespace keeps some, for when dropping
  // it merged two tokens (`a b` -> `ab`, `< =` -> `<=`).
  auto build = [&](bool keep_separators) {
    static const char* kSpaces[] = {"", " ", "   ", "\t", " \t "};
    std::string out;
    uint32_t prev_end = 0;
    for (size_t i = 0; i <= toks.size(); ++i) {
      uint32_t begin = i < toks.size() ? toks[i].begin : static_cast<uint32_t>(text.size());
      std::string_view gap = std::string_view(text).substr(prev_end, begin - prev_end);
      int newlines = static_cast<int>(std::count(gap.begin(), gap.end(), '\n'));
      bool line_must_end =
          i > 0 && (toks[i - 1].kind == TokenKind::LineComment || toks[i - 1].kind == TokenKind::Heredoc);
      if (!horizontal_only && i > 0 && i < toks.size()) {
        if (newlines == 0 && pick(4) == 0) {
          newlines = 1 + pick(2);
        } else if (newlines > 0 && !line_must_end && pick(3) == 0) {
          newlines = 0;
        }
      }
      std::string g = kSpaces[pick(5)];
      for (int n = 0; n < (newlines > 1 ? 2 + pick(2) : newlines); ++n)
        g += std::string("\n") + kSpaces[pick(5)];
      if (keep_separators && newlines == 0 && !gap.empty() && g.empty()) g = " ";
      out += g;
      if (i < toks.size()) {
        out.append(text, toks[i].begin, toks[i].end - toks[i].begin);
        prev_end = toks[i].end;
      }
    }
    return out;
  };
  std::string out = build(false);
  if (!SameTokens(text, out)) out = build(true);
  return out;
}

TEST(FmtIdempotence, OnlyLineStructureMatters) {
  std::mt19937 rng(20240611);
  for (const fs::path& input : GoldenInputs()) {
    SCOPED_TRACE(input.filename().string());
    std::string text = ReadFile(input);
    std::string expected = FormatOk(text);
    for (int trial = 0; trial < 20; ++trial) {
      std::string perturbed = Perturb(text, rng, /*horizontal_only=*/true);
      ASSERT_TRUE(SameTokens(text, perturbed)) << perturbed;
      EXPECT_EQ(FormatOk(perturbed), expected) << "input:\n" << perturbed;
    }
  }
}

TEST(FmtIdempotence, RandomLineBreaksGiveFixedPoints) {
  std::mt19937 rng(7);
  for (const fs::path& input : GoldenInputs()) {
    SCOPED_TRACE(input.filename().string());
    std::string text = ReadFile(input);
    for (int trial = 0; trial < 20; ++trial) {
      std::string perturbed = Perturb(text, rng, /*horizontal_only=*/false);
      ASSERT_TRUE(SameTokens(text, perturbed)) << perturbed;
      // Newlines are insignificant in Plinth, so the perturbed file must parse.
      std::string once = FormatOk(perturbed);
      EXPECT_EQ(FormatOk(once), once) << "input:\n" << perturbed;
    }
  }
}

TEST(FmtComments, EveryCommentIsKeptInOrder) {
  std::string text =
      "# top\n"
      "// slashes\n"
      "/* block */ a = 1 # end\n"
      "b { # after brace\n"
      "  /* multi\n"
      "     line */\n"
      "  c = [ # after bracket\n"
      "    1, /* between */ 2, // after comma\n"
      "  ]\n"
      "  d = f(/* first */ x) # last\n"
      "} # after block\n"
      "# bottom\n";
  std::string out = FormatOk(text);
  EXPECT_EQ(CommentTexts(out), CommentTexts(text));
  EXPECT_NE(out.find("  /* multi\n     line */\n"), std::string::npos) << out;
}

TEST(FmtComments, EndOfLineCommentsAlignWithinARun) {
  EXPECT_EQ(FormatOk("a = 1 # one\nlonger = \"x\" # two\n\nz = 1    # alone\n"),
            "a      = 1   # one\nlonger = \"x\" # two\n\nz = 1 # alone\n");
}

TEST(FmtLayout, SmallCases) {
  EXPECT_EQ(FormatOk(""), "");
  EXPECT_EQ(FormatOk("\n\n  \n"), "");
  EXPECT_EQ(FormatOk("a=1"), "a = 1\n");
  EXPECT_EQ(FormatOk("a = 1\r\n# c \r\nb = [\r\n\t1,\r\n]\r\n"), "a = 1\n# c\nb = [\n  1,\n]\n");
  EXPECT_EQ(FormatOk("x = a - -1\ny = - -a\n"), "x = a - -1\ny = - -a\n");
  EXPECT_EQ(FormatOk("x = xs [ * ] . name\n"), "x = xs[*].name\n");
  EXPECT_EQ(FormatOk("x = 80%\ny = 80 %3\n"), "x = 80%\ny = 80 % 3\n");
  EXPECT_EQ(FormatOk("b \"x\"{a=1}\n"), "b \"x\" { a = 1 }\n");
  // A value ending in a name followed by a block is not mistaken for a header.
  EXPECT_EQ(FormatOk("s {\nr = 1\nreplicas = var.replicas\nhealth {\n}\n}\n"),
            "s {\n  r        = 1\n  replicas = var.replicas\n  health {\n  }\n}\n");
  // The heredoc opener loses trailing blanks; the body keeps everything.
  EXPECT_EQ(FormatOk("h = <<EOT  \n  body  \nEOT\n"), "h = <<EOT\n  body  \nEOT\n");
}

TEST(FmtRefusal, SyntaxErrorsAreReportedAndNothingIsReturned) {
  for (const char* text : {"a = \n", "a = [1, 2\n", "b {\n", "a = \"unterminated\n", "a = 1 $\n",
                           "h = <<EOT\nno end\n", "/* open comment\n"}) {
    SCOPED_TRACE(text);
    SourceFile file(0, "bad.plinth", text);
    Diagnostics diags;
    EXPECT_FALSE(Format(file, diags).has_value());
    EXPECT_TRUE(diags.has_errors());
  }
}

TEST(FmtTokenCheck, SameTokensComparesTokenTexts) {
  EXPECT_TRUE(SameTokens("a=1", "a = 1\n"));
  EXPECT_TRUE(SameTokens("x = a - -1 # c  \r\n", "x = a - -1 # c\n"));
  EXPECT_FALSE(SameTokens("a = 1", "a = 2"));
  EXPECT_FALSE(SameTokens("a = b c", "a = bc"));   // merged tokens
  EXPECT_FALSE(SameTokens("a = 1 # c", "a = 1"));  // lost comment
  EXPECT_FALSE(SameTokens("s = \"a  b\"", "s = \"a b\""));
  EXPECT_FALSE(SameTokens("a = 1", "a = \"unterminated"));
}

TEST(FmtTokenCheck, ALayoutThatLosesATokenReturnsTheInputUnchanged) {
  const std::string text = "a   =   1 # keep me\nb = 2\n";
  SourceFile file(0, "x.plinth", text);
  Diagnostics diags;
  bool internal_failure = false;
  // Drops the comment: the layout bug the check exists to catch.
  auto drop_comment = [](const std::string& s) { return std::string("a = 1\nb = 2\n"); };
  std::optional<std::string> out = fmt_testing::FormatTampered(file, diags, drop_comment, &internal_failure);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, text);
  EXPECT_TRUE(internal_failure);
  EXPECT_FALSE(diags.has_errors());

  auto identity = [](std::string s) { return s; };
  out = fmt_testing::FormatTampered(file, diags, identity, &internal_failure);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, "a = 1 # keep me\nb = 2\n");
  EXPECT_FALSE(internal_failure);
}

}  // namespace
}  // namespace plinth
