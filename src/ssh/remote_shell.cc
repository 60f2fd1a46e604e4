#include "ssh/remote_shell.h"

#include "gm/error.h"

namespace gm::ssh {

ExecResult RemoteShell::run(const std::string& command, std::string_view stdin_data) {
  ExecResult result;
  auto collect = [&](std::string& into, const char* stream) {
    return [&into, stream, &command, this](std::string_view chunk) {
      if (into.size() + chunk.size() > k_max_collected_output) {
        throw SshError(SshError::Stage::exec, describe(),
                       "the remote command wrote more than " +
                           std::to_string(k_max_collected_output / (1024 * 1024)) + " MiB to " +
                           stream,
                       "command: " + command.substr(0, command.find('\n')),
                       "check what the host prints (login scripts such as ~/.bashrc must stay "
                       "silent for non-interactive shells)");
      }
      into.append(chunk);
    };
  };
  result.exit_status =
      exec(command, collect(result.out, "stdout"), collect(result.err, "stderr"), stdin_data);
  return result;
}

}  // namespace gm::ssh
