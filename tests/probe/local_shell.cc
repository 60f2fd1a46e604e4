#include "probe/local_shell.h"

#include "support/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace gm::test {

int LocalShell::exec(const std::string& command, const ssh::OutputSink& on_stdout,
                     const ssh::OutputSink& on_stderr, std::string_view stdin_data) {
  m_commands.push_back(command);
  std::map<std::string, std::string> env = testing::current_environment();
  for (const auto& [k, v] : m_env) {
    env[k] = v;
  }
  return testing::run_streaming({"/bin/sh", "-c", command}, env, {}, stdin_data, on_stdout,
                                on_stderr);
}

void LocalShell::upload(const std::string& remote_path, std::string_view content, unsigned mode) {
  {
    std::ofstream f(remote_path, std::ios::binary | std::ios::trunc);
    if (!f)
      throw std::runtime_error("cannot write " + remote_path);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
  }
  chmod(remote_path.c_str(), mode);
}

}  // namespace gm::test
