// The OpenSSH client as the data plane of a forward: one master connection (`ssh -M -S CTL -N`)
// logged in with the machine's key against its pinned host key only, and each forwarded
// connection handed to it as a file descriptor over its control socket (OpenSSH's multiplexing
// protocol, PROTOCOL.mux: the MUX_C_NEW_STDIO_FWD request `ssh -S CTL -W HOST:PORT` makes), so
// the bytes go through OpenSSH's cipher and never through this process.
#pragma once

#include "gm/machine.h"
#include "util/fd.h"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace gm::ssh {

/// Where the OpenSSH client logs in: the machine's address, user and key, and the known_hosts
/// file that holds only its pinned host key.
struct OpenSshLogin {
  SshTarget target;
  std::filesystem::path known_hosts;
  std::string subject;  ///< names the machine in errors (default: user@host:port)
};

/// The OpenSSH client forwards use: `ssh` from PATH; nullopt when GPUMACHINE_SSH_CLIENT=libssh2
/// asks for the libssh2 data plane or there is no `ssh`. GPUMACHINE_SSH_CLIENT=openssh requires
/// it (an Error when absent); any other value is a UsageError.
std::optional<std::string> openssh_for_forwards();

/// The master's argv (ssh_path first): the login of openssh_argv, and batch mode, no config file
/// of the user's, no agent or X11 forwarding, no forwards of its own, keepalives, and the control
/// socket at control.
std::vector<std::string> openssh_master_argv(const std::string& ssh_path, const OpenSshLogin& login,
                                             const std::filesystem::path& control);

/// What a control connection said (read_reply).
enum class MuxEvent {
  none,     ///< nothing complete yet
  opened,   ///< the server opened the channel: bytes flow
  refused,  ///< the server (or the master) refused it: the client's connection is closed
  closed,   ///< the forward ended (the master closed the control connection)
};

class OpenSshMaster {
 public:
  /// Starts the master (in its own process group, so a Ctrl-C on the terminal reaches only us;
  /// on Linux it gets SIGTERM should this process die) and waits until it is logged in. Throws
  /// SshError naming the stage (host key, login, connect) with what OpenSSH said as the cause,
  /// InterruptedError on Ctrl-C.
  OpenSshMaster(const std::string& ssh_path, const OpenSshLogin& login);
  /// Ends the master by pid (SIGTERM, SIGKILL after a grace period) and removes its private
  /// control directory.
  ~OpenSshMaster();
  OpenSshMaster(const OpenSshMaster&) = delete;
  OpenSshMaster& operator=(const OpenSshMaster&) = delete;

  /// Becomes readable when the master writes to stderr or exits (for poll).
  int event_fd() const { return m_stderr.get(); }
  /// Reads what the master wrote (to the debug log); false once it has exited.
  bool check_alive();
  /// Why it exited: the last thing it said, or its exit status.
  std::string why() const;
  /// Hands fd (a connected socket; the caller may close its copy) to the master as a forward to
  /// host:port. Returns the control connection, non-blocking, for read_reply: the master closes
  /// it when the forward ends, and closing it ends the forward. An invalid Fd when the master
  /// cannot be reached.
  util::Fd forward(int fd, const std::string& host, int port);
  /// Reads the master's replies on a control connection into buffer; reason gets a refusal's
  /// text.
  static MuxEvent read_reply(int control, std::string& buffer, std::string& reason);

 private:
  void drain_stderr();
  /// Ends the process (if it runs) by its pid and reaps it.
  void end_process();
  /// end_process() and removes the control directory.
  void stop();

  pid_t m_pid = -1;
  int m_status = -1;  ///< wait status once reaped
  util::Fd m_stderr;
  std::string m_said;  ///< the tail of its stderr
  std::filesystem::path m_dir;
  std::filesystem::path m_control;
};

}  // namespace gm::ssh
