#include "ssh/remote_shell.h"

namespace gm::ssh {

ExecResult RemoteShell::run(const std::string& command, std::string_view stdin_data) {
  ExecResult result;
  result.exit_status = exec(
      command, [&](std::string_view c) { result.out.append(c); },
      [&](std::string_view c) { result.err.append(c); }, stdin_data);
  return result;
}

}  // namespace gm::ssh
