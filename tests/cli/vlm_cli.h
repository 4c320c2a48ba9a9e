// Runs the built `vlm` binary as a user would (a shell command line), for the CLI tests.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace vlm::testing {

struct CliRun {
  int code = -1;
  std::string out, err;
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh path in the temp folder, unique per process and call.
inline std::string temp_path(const std::string& name) {
  static std::atomic<int> n{0};
  return (std::filesystem::temp_directory_path() /
          ("vlm_cli_" + std::to_string(getpid()) + "_" + std::to_string(n++) + "_" + name))
      .string();
}

// args are passed as separate, quoted words; stdout and stderr are captured apart.
inline CliRun vlm(const std::vector<std::string>& args, const std::string& stdin_text = "") {
  const std::string out = temp_path("out"), err = temp_path("err"), in = temp_path("in");
  std::ofstream(in, std::ios::binary) << stdin_text;
  std::string cmd = quote(VLM_BINARY);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " <" + quote(in) + " >" + quote(out) + " 2>" + quote(err);
  CliRun r;
  const int status = std::system(cmd.c_str());
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = slurp(out);
  r.err = slurp(err);
  std::filesystem::remove(out);
  std::filesystem::remove(err);
  std::filesystem::remove(in);
  return r;
}

}  // namespace vlm::testing
