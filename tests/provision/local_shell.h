// A RemoteShell that runs commands on this machine inside a simulated host (tests/support/simhost):
// `bash -c COMMAND` with a clean environment whose PATH holds only the host's stubs and a short
// list of harmless real tools. It is how the provisioning scripts are tested end to end before a
// real sshd is in the loop; it refuses to run anywhere but in a simulated host's directory.
#pragma once

#include "ssh/remote_shell.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace gm::provision::testing {

class LocalShell : public ssh::RemoteShell {
 public:
  /// state_dir is a directory made by `simhost init`; throws std::runtime_error otherwise.
  explicit LocalShell(std::filesystem::path state_dir);

  int exec(const std::string& command, const ssh::OutputSink& on_stdout,
           const ssh::OutputSink& on_stderr, std::string_view stdin_data = {}) override;
  /// Writes under the host's sysroot (GM_SYSROOT), never outside it.
  void upload(const std::string& remote_path, std::string_view content, unsigned mode) override;

  /// The environment every command gets (what a real sshd login must set too).
  const std::map<std::string, std::string>& environment() const { return m_env; }

 private:
  std::filesystem::path m_state;
  std::map<std::string, std::string> m_env;
};

/// The simulated host's management script (tests/support/simhost/simhost).
std::filesystem::path simhost_script();
/// Runs `simhost ARGS...`; returns its exit status.
int run_simhost(const std::vector<std::string>& args);

}  // namespace gm::provision::testing
