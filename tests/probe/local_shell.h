// LocalShell: a RemoteShell that runs commands with /bin/sh on this machine and writes uploads to
// the local filesystem. Lets the probe (and anything else behind the seam) be tested end to end
// without an SSH server.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "ssh/remote_shell.h"

namespace gm::test {

class LocalShell : public ssh::RemoteShell {
 public:
  /// env entries are added to every command's environment (e.g. a PATH with stub executables).
  explicit LocalShell(std::map<std::string, std::string> env = {}) : m_env(std::move(env)) {}

  int exec(const std::string& command, const ssh::OutputSink& on_stdout,
           const ssh::OutputSink& on_stderr, std::string_view stdin_data = {}) override;
  void upload(const std::string& remote_path, std::string_view content,
              unsigned mode = 0644) override;

  /// Every command exec() ran, in order.
  const std::vector<std::string>& commands() const { return m_commands; }

 private:
  std::map<std::string, std::string> m_env;
  std::vector<std::string> m_commands;
};

}  // namespace gm::test
