// Small file helpers shared by the tests: whole-file read and write, the
// golden-update switch, and a temporary directory removed with its contents.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace plinth::testing {

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// True when golden expectations are being regenerated
// (PLINTH_UPDATE_GOLDEN=1, scripts/update-golden.sh).
inline bool UpdatingGolden() {
  const char* u = std::getenv("PLINTH_UPDATE_GOLDEN");
  return u && std::string(u) == "1";
}

// A fresh directory under the system temp dir, removed with its contents when
// the object goes. path() is empty when it could not be created.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "plinth-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (mkdtemp(tmpl.data())) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace plinth::testing
