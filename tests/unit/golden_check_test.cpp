// Golden tests for diagnostics.
//
// Each case is either tests/golden/check/NAME.plinth, which carries its
// expected diagnostics in a trailing comment block, or a directory
// tests/golden/check/NAME/ with an `expected.txt` file. A case whose name
// starts with `fail_` must produce at least one error; any other case must
// produce none. Regenerate every expectation with scripts/update-golden.sh
// (PLINTH_UPDATE_GOLDEN=1) and review the git diff.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "compiler/check/checker.h"
#include "runtime/providers/catalog.h"
#include "runtime/providers/external.h"
#include "tests/support/files.h"

namespace plinth {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMarker = "# ---- expected diagnostics (regenerate: scripts/update-golden.sh) ----";

using plinth::testing::ReadFile;
using plinth::testing::WriteFile;
bool Updating() { return plinth::testing::UpdatingGolden(); }

fs::path CasesDir() { return fs::path(PLINTH_SOURCE_DIR) / "tests" / "golden" / "check"; }

std::vector<fs::path> Cases() {
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(CasesDir())) {
    if (e.is_directory() || e.path().extension() == ".plinth") cases.push_back(e.path());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

// Runs the checker on a case with paths relative to the repository root.
std::string RunCase(const fs::path& path, size_t* errors) {
  fs::path rel = fs::relative(path, PLINTH_SOURCE_DIR);
  fs::path old = fs::current_path();
  fs::current_path(PLINTH_SOURCE_DIR);
  SourceManager sources;
  Diagnostics diags;
  CheckOptions options;
  options.threads = 1;
  options.schemas = &runtime::BuiltinSchemas();
  runtime::ExternalProviders external(rel);
  options.provider_resolver = &external;
  // A directory case may hold plinth.plinthvars and *.auto.plinthvars files.
  options.variable_sources.auto_files = fs::is_directory(path);
  Check(rel.string(), sources, diags, options);
  fs::current_path(old);
  *errors = diags.error_count();
  std::vector<Diagnostic> sorted = diags.Sorted(sources);
  return sorted.empty() ? "(no diagnostics)\n" : RenderText(sorted, sources, RenderOptions{});
}

std::string Commented(const std::string& text) {
  std::string out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out += line.empty() ? "#\n" : "# " + line + "\n";
  return out;
}

TEST(GoldenCheck, AllCases) {
  std::vector<fs::path> cases = Cases();
  ASSERT_FALSE(cases.empty());
  for (const fs::path& c : cases) {
    SCOPED_TRACE(c.string());
    size_t errors = 0;
    std::string got = RunCase(c, &errors);
    bool expect_fail = c.filename().string().rfind("fail_", 0) == 0;
    EXPECT_EQ(expect_fail, errors > 0) << (expect_fail ? "a fail_ case produced no error"
                                                       : "a case without the fail_ prefix produced errors")
                                       << "\n" << got;
    if (fs::is_directory(c)) {
      fs::path exp = c / "expected.txt";
      if (Updating()) {
        WriteFile(exp, got);
      } else {
        EXPECT_EQ(ReadFile(exp), got) << "regenerate with scripts/update-golden.sh and review the diff";
      }
      continue;
    }
    std::string text = ReadFile(c);
    size_t at = text.find(kMarker);
    std::string body = at == std::string::npos ? text : text.substr(0, at);
    std::string expected = at == std::string::npos ? "" : text.substr(at + std::string(kMarker).size() + 1);
    if (Updating()) {
      while (!body.empty() && body.back() == '\n') body.pop_back();
      std::string updated = body + "\n\n" + kMarker + "\n" + Commented(got);
      if (updated != text) {
        WriteFile(c, updated);
        // The block moved nothing above it, but re-run to be sure the
        // expectation is stable.
        size_t e2 = 0;
        EXPECT_EQ(RunCase(c, &e2), got);
      }
    } else {
      EXPECT_EQ(expected, Commented(got)) << "regenerate with scripts/update-golden.sh and review the diff";
    }
  }
}

// Every diagnostic code has a golden test and an entry in docs/diagnostics.md.
TEST(GoldenCheck, EveryCodeIsTestedAndDocumented) {
  std::string all;
  for (const fs::path& c : Cases()) all += fs::is_directory(c) ? ReadFile(c / "expected.txt") : ReadFile(c);
  std::string docs = ReadFile(fs::path(PLINTH_SOURCE_DIR) / "docs" / "diagnostics.md");
  for (DiagCode code : AllDiagCodes()) {
    std::string id(Info(code).code);
    EXPECT_NE(all.find("[" + id + "]"), std::string::npos) << id << " has no golden test in tests/golden/check";
    EXPECT_NE(docs.find("## " + id), std::string::npos) << id << " is not documented in docs/diagnostics.md";
  }
}

}  // namespace
}  // namespace plinth
