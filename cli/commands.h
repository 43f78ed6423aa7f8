// CLI commands. Each returns the process exit code (see cli/main.cpp).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace plinth::cli {

inline constexpr const char* kVersion = "0.1.0";

struct Options {
  std::vector<std::string> paths;
  std::vector<std::pair<std::string, std::string>> vars;  // --var NAME=VALUE, in order
  bool json = false;
  bool check = false;  // fmt --check
  bool diff = false;   // fmt --diff
  bool color = true;
  unsigned threads = 0;
};

bool ParseOptions(const std::string& command, const std::vector<std::string>& args, Options& options,
                  std::string* error);

int Validate(const Options& options, bool inspect);
int Fmt(const Options& options);

}  // namespace plinth::cli
