// Runs the real gpumachine binary as a user would: its own GPUMACHINE_HOME and HOME (so the
// user's ~/.ssh is never read or written), stdin from /dev/null unless given.
#pragma once

#include "support/process.h"

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace gm::testing {

class CliRunner {
 public:
  CliRunner() : m_dir("gm-cli") {
    std::filesystem::create_directories(m_dir / "user");
    m_env["GPUMACHINE_HOME"] = (m_dir / "home").string();
    m_env["HOME"] = (m_dir / "user").string();
    m_env["NO_COLOR"] = "1";
    m_env["GPUMACHINE_FORMAT"] = "table";
  }

  /// Runs `gpumachine args...`.
  CaptureResult run(const std::vector<std::string>& args,
                    const std::string& stdin_data = {}) const {
    std::vector<std::string> argv = {GM_BINARY_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    SpawnOptions options;
    options.env = m_env;
    return run_capture(argv, stdin_data, options);
  }

  /// Runs with --format json and parses stdout (fails the test on bad JSON).
  nlohmann::json json(const std::vector<std::string>& args) const {
    std::vector<std::string> full = {"--format", "json"};
    full.insert(full.end(), args.begin(), args.end());
    CaptureResult r = run(full);
    return nlohmann::json::parse(r.out);
  }

  /// `create --driver generic` against a fixture's sshd, with provisioning off.
  std::vector<std::string> generic_create_args(const std::string& name, const std::string& host,
                                               int port, const std::string& user,
                                               const std::string& key) const {
    return {"create",
            "--driver",
            "generic",
            "--generic-ip-address",
            host,
            "--generic-ssh-port",
            std::to_string(port),
            "--generic-ssh-user",
            user,
            "--generic-ssh-key",
            key,
            "--no-provision",
            name};
  }

  std::map<std::string, std::string>& env() { return m_env; }
  std::filesystem::path home() const { return m_dir / "home"; }
  std::filesystem::path user_home() const { return m_dir / "user"; }
  const TempDir& dir() const { return m_dir; }

 private:
  TempDir m_dir;
  std::map<std::string, std::string> m_env;
};

}  // namespace gm::testing
