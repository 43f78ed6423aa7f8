// The command line's help, through the real binary. Every command and
// subcommand that `plinth help --list-commands` prints — a walk of the CLI11
// definition in cli/command_line.cpp, so a command added there is checked
// here without touching this file — must answer `--help`, `-h` and
// `plinth help ...` with its usage, a described option list, its exit codes
// and an example that runs it. Also: the overview, "did you mean", and the
// bash completion script.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct Ran {
  int status = -1;
  std::string out, err;
};

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path Scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("plinth-cli-help-" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Runs a shell command line; `{plinth}` is replaced by the binary's path.
Ran Shell(std::string command) {
  const std::string plinth = Quote(PLINTH_BINARY);
  for (size_t at; (at = command.find("{plinth}")) != std::string::npos;) command.replace(at, 8, plinth);
  static std::atomic<int> runs{0};
  const std::string n = std::to_string(runs++);
  const fs::path out = Scratch() / ("out" + n), err = Scratch() / ("err" + n);
  int rc = std::system(("(" + command + ") >" + Quote(out) + " 2>" + Quote(err) + " </dev/null").c_str());
  Ran r;
  r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = ReadFile(out);
  r.err = ReadFile(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

Ran Plinth(const std::string& args) {
  return Shell("{plinth} " + args);
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// The lines of a help section ("Options:"), up to the blank line after it.
std::vector<std::string> Section(const std::string& help, const std::string& title) {
  std::vector<std::string> out;
  bool in = false;
  for (const std::string& l : Lines(help)) {
    if (l == title) {
      in = true;
    } else if (in && l.empty()) {
      break;
    } else if (in) {
      out.push_back(l);
    }
  }
  return out;
}

std::vector<std::string> CommandPaths() {
  Ran list = Plinth("help --list-commands");
  EXPECT_EQ(list.status, 0) << list.err;
  return Lines(list.out);
}

TEST(CliHelp, ListsEveryCommand) {
  std::vector<std::string> paths = CommandPaths();
  for (const char* want :
       {"validate", "plan", "apply", "state", "state rm", "state mv", "policy test", "bucket put",
        "storage sweep", "backup check", "restore", "help", "completion bash", "workspace list",
        "workspace new", "workspace select", "workspace delete", "workspace show"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), want), paths.end()) << want;
  }
  EXPECT_GE(paths.size(), 35u);
}

TEST(CliHelp, EveryCommandHasHelp) {
  const std::regex described(R"(^  \S.*\S  +\S.*$)");  // a name, two spaces or more, a description
  // Each command's three spellings of help, run in parallel.
  const std::vector<std::string> paths = CommandPaths();
  std::map<std::string, std::future<Ran>> runs;
  for (const std::string& path : paths) {
    for (const std::string& args : {path + " --help", path + " -h", "help " + path}) {
      runs[args] = std::async(std::launch::async, Plinth, args);
    }
  }
  for (const std::string& path : paths) {
    SCOPED_TRACE("plinth " + path);
    Ran help = runs[path + " --help"].get();
    ASSERT_EQ(help.status, 0) << help.err;
    EXPECT_EQ(help.err, "");
    EXPECT_EQ(help.out.rfind("Usage: plinth " + path + " ", 0), 0u) << help.out;
    EXPECT_NE(help.out.find("\nExit codes:\n  0  "), std::string::npos) << help.out;
    std::vector<std::string> example = Section(help.out, "Example:");
    ASSERT_FALSE(example.empty()) << help.out;
    EXPECT_NE(example[0].find("plinth " + path), std::string::npos)
        << "the example does not run it: " << example[0];
    std::vector<std::string> options = Section(help.out, "Options:");
    EXPECT_FALSE(options.empty()) << help.out;
    for (const std::string& section : {"Options:", "Arguments:", "Commands:"}) {
      for (const std::string& line : Section(help.out, section)) {
        EXPECT_TRUE(std::regex_match(line, described)) << "no description: '" << line << "'";
      }
    }
    for (const std::string& same : {path + " -h", "help " + path}) {
      Ran other = runs[same].get();
      EXPECT_EQ(other.status, 0) << same << ": " << other.err;
      EXPECT_EQ(other.out, help.out) << same;
    }
  }
}

TEST(CliHelp, Overview) {
  for (const char* args : {"--help", "-h", "help"}) {
    Ran r = Plinth(args);
    SCOPED_TRACE(args);
    EXPECT_EQ(r.status, 0);
    EXPECT_EQ(r.out.rfind("Usage: plinth <command>", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("\nExit codes:\n"), std::string::npos);
    EXPECT_NE(r.out.find("\nExample:\n"), std::string::npos);
    for (const std::string& path : CommandPaths()) {
      if (path.find(' ') == std::string::npos)
        EXPECT_NE(r.out.find("\n  " + path + " "), std::string::npos) << path;
    }
  }
  Ran bare = Plinth("");
  EXPECT_EQ(bare.status, 2);
  EXPECT_EQ(bare.out, "");
  EXPECT_EQ(bare.err.rfind("Usage: plinth <command>", 0), 0u) << bare.err;
}

TEST(CliHelp, DidYouMean) {
  struct Case {
    const char* args;
    const char* message;
    const char* help;
  };
  for (const Case& c : {
           Case{"plan --detailed-exit-code .",
                "unknown option '--detailed-exit-code'; did you mean '--detailed-exitcode'?",
                "plinth plan --help"},
           Case{"plann .", "unknown command 'plann'; did you mean 'plan'?", "plinth --help"},
           Case{"state lst", "unknown command 'lst'; did you mean 'list'?", "plinth state --help"},
           Case{"bucket ls bucket.b --versoins", "did you mean '--versions'?", "plinth bucket ls --help"},
           Case{"help state rn", "unknown command 'rn'; did you mean 'rm'?", "plinth state --help"},
           Case{"validate --auto-approve .", "unknown option '--auto-approve' (apply, destroy take it)",
                "plinth validate --help"},
           Case{"validate --bogus", "unknown option '--bogus'", "plinth validate --help"},
       }) {
    SCOPED_TRACE(c.args);
    Ran r = Plinth(c.args);
    EXPECT_EQ(r.status, 2);
    EXPECT_EQ(r.out, "");
    EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.help), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("Commands:"), std::string::npos) << "the usage is dumped: " << r.err;
  }
}

TEST(CliHelp, UsageErrorsExit2) {
  for (const char* args :
       {"state", "state rm", "plan --var", "apply --parallelism=0 .", "show --at=x", "validate a b"}) {
    SCOPED_TRACE(args);
    Ran r = Plinth(args);
    EXPECT_EQ(r.status, 2) << r.err;
    EXPECT_NE(r.err.find("--help"), std::string::npos) << r.err;
  }
}

// A configuration directory of its own for a test.
fs::path Config(const std::string& name) {
  const fs::path dir = Scratch() / name;
  fs::create_directories(dir);
  std::ofstream(dir / "main.plinth") << "region \"eu\" {}\n";
  return dir;
}

TEST(CliHelp, SingleDashLongOptions) {
  const fs::path dir = Config("single-dash");
  Ran json = Plinth("validate -json -threads=1 " + Quote(dir));
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_NE(json.out.find("\"format_version\": 1"), std::string::npos) << json.out;
  // -var is --var (the configuration declares no x), -dir D is --dir=D.
  Ran var = Plinth("validate -var x=1 -dir " + Quote(dir));
  EXPECT_EQ(var.status, 1) << var.err;
  EXPECT_NE(var.err.find("no variable named 'x' is declared"), std::string::npos) << var.err;
  Ran typo = Plinth("apply -auto-aprove " + Quote(dir));
  EXPECT_EQ(typo.status, 2);
  EXPECT_NE(typo.err.find("did you mean '--auto-approve'?"), std::string::npos) << typo.err;
  // -h is still help; a lone - is still an argument (unexpected here).
  EXPECT_EQ(Plinth("plan -h").status, 0);
  Ran dash = Plinth("validate " + Quote(dir) + " -");
  EXPECT_EQ(dash.status, 2);
  EXPECT_NE(dash.err.find("unexpected argument '-'"), std::string::npos) << dash.err;
  // After --, a word is an argument even if it looks like an option.
  Ran after = Plinth("validate -- -json");
  EXPECT_EQ(after.status, 2) << after.err;
  EXPECT_NE(after.err.find("'-json' is not a directory or a .plinth file"), std::string::npos) << after.err;
}

TEST(CliHelp, UsageErrorsExit1WithDetailedExitcode) {
  const fs::path dir = Config("detailed");
  for (const char* args : {"plan --detailed-exitcode --bogus ", "plan -detailed-exitcode --parallelism=0 ",
                           "plan --detailed-exitcode --auto-approve ", "plan --detailed-exitcode extra "}) {
    SCOPED_TRACE(args);
    Ran r = Plinth(std::string(args) + Quote(dir));
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find("--help' for usage"), std::string::npos) << r.err;
  }
  EXPECT_EQ(Plinth("plan --bogus " + Quote(dir)).status, 2);
}

TEST(CliHelp, DirectoryAsDirOrDirOption) {
  const fs::path dir = Config("dir-option");
  for (const char* command : {"validate", "inspect", "plan", "graph", "refresh"}) {
    SCOPED_TRACE(command);
    Ran r = Plinth(std::string(command) + " --dir=" + Quote(dir));
    EXPECT_EQ(r.status, 0) << r.err;
    Ran both = Plinth(std::string(command) + " --dir=" + Quote(dir) + " " + Quote(dir));
    EXPECT_EQ(both.status, 2);
    EXPECT_NE(both.err.find("the directory is given twice"), std::string::npos) << both.err;
  }
  // A saved plan records its directory and workspace: neither is given again.
  std::ofstream(Scratch() / "release.plan") << "{}";
  for (const char* option : {"--dir=", "--workspace=x "}) {
    SCOPED_TRACE(option);
    Ran r = Plinth(std::string("apply ") + option + (option[2] == 'd' ? Quote(dir) : "") + " " +
                   Quote(Scratch() / "release.plan"));
    EXPECT_EQ(r.status, 2);
    EXPECT_NE(r.err.find("a saved plan records its directory and workspace"), std::string::npos) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir / ".plinth")) << "a command that does not apply created state";
}

TEST(CliHelp, ADirAfterOtherArgumentsSelectsItsWorkspace) {
  // `region status|fail NAME DIR`: the workspace selected in DIR, not in the current directory.
  const fs::path dir = Config("dir-later");
  ASSERT_EQ(Plinth("workspace new stage --dir=" + Quote(dir)).status, 0);
  Ran status = Plinth("region status " + Quote(dir));
  EXPECT_NE(status.out.find(".plinth/stage"), std::string::npos) << status.out << status.err;
  Ran fail = Plinth("region fail eu " + Quote(dir));
  EXPECT_EQ(fail.status, 1);
  EXPECT_NE(fail.err.find(".plinth/stage"), std::string::npos) << fail.err;
}

TEST(CliHelp, WorkspaceTypoCreatesNothing) {
  const fs::path dir = Config("ws-typo");
  Ran select = Plinth("workspace select prod --dir=" + Quote(dir));
  EXPECT_EQ(select.status, 1);
  EXPECT_NE(select.err.find("plinth workspace new prod"), std::string::npos) << select.err;
  Ran bad = Plinth("workspace new .x --dir=" + Quote(dir));
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.err.find("invalid workspace name '.x'"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir / ".plinth"));
  ASSERT_EQ(Plinth("workspace new prod --dir=" + Quote(dir)).status, 0);
  EXPECT_EQ(ReadFile(dir / ".plinth" / ".workspace"), "prod\n");
  EXPECT_EQ(Plinth("workspace show --dir=" + Quote(dir)).out, "prod\n");
  Ran typo = Plinth("workspace select prd --dir=" + Quote(dir));
  EXPECT_EQ(typo.status, 1);
  EXPECT_NE(typo.err.find("did you mean 'prod'?"), std::string::npos) << typo.err;
  EXPECT_EQ(Plinth("plan --workspace=prd " + Quote(dir)).status, 0);
  EXPECT_EQ(Plinth("workspace select default --dir=" + Quote(dir)).status, 0);
  EXPECT_FALSE(fs::exists(dir / ".plinth" / ".workspace"));
  EXPECT_EQ(Shell("PLINTH_WORKSPACE=prod {plinth} workspace list --dir=" + Quote(dir)).out, "* prod\n");
  // A broken selection record is an error (not a usage error) that select repairs.
  std::ofstream(dir / ".plinth" / ".workspace") << "../up\n";
  Ran broken = Plinth("state list --dir=" + Quote(dir));
  EXPECT_EQ(broken.status, 1);
  EXPECT_NE(broken.err.find(".workspace' does not hold a workspace name; run plinth workspace select NAME"),
            std::string::npos)
      << broken.err;
  EXPECT_EQ(Plinth("workspace select prod --dir=" + Quote(dir)).status, 0);
  EXPECT_EQ(Plinth("state list --dir=" + Quote(dir)).status, 0);
  EXPECT_EQ(Plinth("workspace select default --dir=" + Quote(dir)).status, 0);
  // Only prod has state; default, prd and ".workspace" are no workspaces.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(dir / ".plinth")) entries.push_back(e.path().filename());
  EXPECT_EQ(entries, std::vector<std::string>{"prod"});
}

TEST(CliHelp, BashCompletion) {
  Ran script = Plinth("completion bash");
  ASSERT_EQ(script.status, 0) << script.err;
  const fs::path file = Scratch() / "plinth.bash";
  std::ofstream(file) << script.out;
  Ran syntax = Shell("bash -n " + Quote(file));
  EXPECT_EQ(syntax.status, 0) << syntax.err;
  // What the script completes, as bash would call it.
  auto complete = [&](const std::string& line) {
    Ran r = Shell("bash -c " +
                  Quote("source " + Quote(file) +
                        R"(; read -ra COMP_WORDS <<< "$1"; [[ $1 == *" " ]] && COMP_WORDS+=("");)" +
                        R"( COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _plinth; echo "${COMPREPLY[*]}")") +
                  " _ " + Quote(line));
    EXPECT_EQ(r.status, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  };
  EXPECT_EQ(complete("plinth st"), "state storage status");
  EXPECT_EQ(complete("plinth state r"), "rm");
  EXPECT_EQ(complete("plinth help state "), "list show rm mv history pull migrate");
  EXPECT_EQ(complete("plinth plan --detailed-e"), "--detailed-exitcode");
  EXPECT_EQ(complete("plinth state list --d"), "--dir=");
  EXPECT_EQ(complete("plinth bucket get --vers"), "--version=");
}

}  // namespace
