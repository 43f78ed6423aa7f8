// Golden tests for plan output, text and JSON.
//
// Each case is a directory tests/golden/plan/NAME/ with
//   before.plinth   (optional) applied first, against the local provider
//   modules/        (optional) copied beside main.plinth, for module calls
//   edit/           (optional) copied over the data root after that apply,
//                   to change the world behind Plinth's back
//   after.plinth    the configuration that is then planned
//   destroy         (optional) plan a destroy (plan --destroy) instead
//   target, exclude, replace
//                   (optional) one address a line: plan with --target,
//                   --exclude or --replace
//   expected.txt    the errors in after.plinth, notes, errors and problems,
//                   the text plan (no color)
//                   and the JSON plan
// The temporary directory's path prints as $DIR. Regenerate with
// scripts/update-golden.sh (PLINTH_UPDATE_GOLDEN=1) and review the git diff.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/engine/engine.h"
#include "tests/support/files.h"

namespace plinth::runtime {
namespace {

namespace fs = std::filesystem;

using plinth::testing::ReadFile;
using plinth::testing::UpdatingGolden;
using plinth::testing::WriteFile;

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
  return s;
}

// Runs one case in a fresh directory; returns the rendered expectation.
std::string RunCase(const fs::path& c) {
  plinth::testing::TempDir tmp("plinth-golden-plan");
  if (tmp.path().empty()) return "cannot create a temporary directory";
  const fs::path& dir = tmp.path();
  std::string out;
  auto engine_options = [&] {
    EngineOptions eo;
    eo.config_dir = dir.string();
    eo.parallelism = 1;
    return eo;
  };
  if (fs::exists(c / "modules")) fs::copy(c / "modules", dir / "modules", fs::copy_options::recursive);
  if (fs::exists(c / "before.plinth")) {
    fs::copy_file(c / "before.plinth", dir / "main.plinth");
    SourceManager sources;
    Diagnostics diags;
    Engine engine(engine_options(), sources, diags);
    EngineResult r = engine.Apply();
    if (!r.ok || diags.has_errors()) out += "(the apply of before.plinth failed)\n";
  }
  if (fs::exists(c / "edit")) {
    fs::copy(c / "edit", dir / ".plinth" / "default" / "data",
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  fs::copy_file(c / "after.plinth", dir / "main.plinth", fs::copy_options::overwrite_existing);
  auto lines = [&](const char* file) {
    std::vector<std::string> out;
    std::ifstream in(c / file);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(line);
    }
    return out;
  };
  EngineOptions planning = engine_options();
  planning.targeting = {lines("target"), lines("exclude"), lines("replace")};
  SourceManager sources;
  Diagnostics diags;
  Engine engine(std::move(planning), sources, diags);
  EngineResult r = engine.Plan(/*destroy=*/fs::exists(c / "destroy"));
  if (diags.has_errors()) {
    out += "(after.plinth has errors)\n";
    for (const Diagnostic& d : diags.Sorted(sources)) {
      if (d.severity == Severity::Error) out += RenderText({d}, sources, RenderOptions{});
    }
  }
  for (const std::string& n : r.notes) out += "note: " + n + "\n";
  for (const std::string& e : r.errors) out += "error: " + e + "\n";
  for (const PlanProblem& p : r.plan.problems) out += "problem: " + p.message + "\n";
  out += "---- text ----\n" + RenderPlanText(r.plan, /*color=*/false);
  out += "---- json ----\n" + RenderPlanJson(r.plan);
  return ReplaceAll(out, dir.string(), "$DIR");
}

TEST(GoldenPlan, AllCases) {
  const fs::path root = fs::path(PLINTH_SOURCE_DIR) / "tests" / "golden" / "plan";
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.is_directory()) cases.push_back(e.path());
  }
  std::sort(cases.begin(), cases.end());
  ASSERT_GE(cases.size(), 7u);
  for (const fs::path& c : cases) {
    SCOPED_TRACE(c.filename().string());
    const std::string got = RunCase(c);
    // Sensitive values never reach plan output, text or JSON.
    EXPECT_EQ(got.find("s3cr3t"), std::string::npos);
    const fs::path expected = c / "expected.txt";
    if (UpdatingGolden()) {
      WriteFile(expected, got);
      continue;
    }
    ASSERT_TRUE(fs::exists(expected)) << "no expected.txt; run scripts/update-golden.sh";
    EXPECT_EQ(ReadFile(expected), got);
  }
}

}  // namespace
}  // namespace plinth::runtime
