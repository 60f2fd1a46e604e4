#include "ssh/interactive.h"

#include "gm/error.h"
#include "ssh/known_hosts.h"
#include "ssh/session.h"
#include "ssh/session_impl.h"
#include "util/path_search.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <optional>

namespace gm::ssh {

using Stage = SshError::Stage;

namespace {

// OpenSSH splits option values on whitespace (UserKnownHostsFile takes a list); quoting keeps
// a path with spaces whole.
std::string quote_option_value(const std::string& value) {
  if (value.find_first_of(" \t") == std::string::npos) {
    return value;
  }
  return "\"" + value + "\"";
}

/// Ignores a signal for a scope (the parent of an interactive child must not die of the
/// Ctrl-C meant for the remote side).
class IgnoreSignal {
 public:
  explicit IgnoreSignal(int signal_number) : m_signal(signal_number) {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(m_signal, &ignore, &m_previous);
  }
  ~IgnoreSignal() { sigaction(m_signal, &m_previous, nullptr); }
  IgnoreSignal(const IgnoreSignal&) = delete;
  IgnoreSignal& operator=(const IgnoreSignal&) = delete;

 private:
  int m_signal;
  struct sigaction m_previous {};
};

int run_child(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  std::vector<std::string> storage = argv;
  for (std::string& a : storage) {
    args.push_back(a.data());
  }
  args.push_back(nullptr);
  IgnoreSignal ignore_int(SIGINT);
  IgnoreSignal ignore_quit(SIGQUIT);
  pid_t pid = fork();
  if (pid < 0) {
    throw Error("ssh", "cannot start the OpenSSH client", std::strerror(errno));
  }
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGQUIT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      throw Error("ssh", "cannot wait for the OpenSSH client", std::strerror(errno));
    }
  }
  if (WIFSIGNALED(status)) {
    return 128 + WTERMSIG(status);
  }
  return WEXITSTATUS(status);
}

/// Puts a terminal into raw mode and restores it when destroyed.
class RawMode {
 public:
  explicit RawMode(int fd) : m_fd(fd) {
    if (::isatty(fd) == 0 || tcgetattr(fd, &m_saved) != 0) {
      return;
    }
    termios raw = m_saved;
    cfmakeraw(&raw);
    if (tcsetattr(fd, TCSANOW, &raw) == 0) {
      m_active = true;
    }
  }
  ~RawMode() {
    if (m_active) {
      tcsetattr(m_fd, TCSANOW, &m_saved);
    }
  }
  RawMode(const RawMode&) = delete;
  RawMode& operator=(const RawMode&) = delete;

 private:
  int m_fd;
  bool m_active = false;
  termios m_saved{};
};

volatile std::sig_atomic_t g_window_changed = 0;

/// Notes SIGWINCH in a flag for the pump loop; restores the previous handler when destroyed.
class WindowChangeWatch {
 public:
  WindowChangeWatch() {
    struct sigaction action {};
    action.sa_handler = [](int) { g_window_changed = 1; };
    sigemptyset(&action.sa_mask);
    sigaction(SIGWINCH, &action, &m_previous);
  }
  ~WindowChangeWatch() { sigaction(SIGWINCH, &m_previous, nullptr); }
  WindowChangeWatch(const WindowChangeWatch&) = delete;
  WindowChangeWatch& operator=(const WindowChangeWatch&) = delete;

 private:
  struct sigaction m_previous {};
};

winsize window_size(int fd) {
  winsize size{};
  if (::isatty(fd) == 0 || ioctl(fd, TIOCGWINSZ, &size) != 0 || size.ws_col == 0) {
    size.ws_col = 80;
    size.ws_row = 24;
  }
  return size;
}

bool write_fully(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN) {
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

std::vector<std::string> openssh_argv(const std::string& ssh_path, const SshTarget& target,
                                      const std::filesystem::path& known_hosts_file,
                                      const std::vector<std::string>& extra_ssh_args,
                                      const std::string& command, bool allocate_tty) {
  std::vector<std::string> argv = {
      ssh_path,
      "-i",
      target.key_path,
      "-p",
      std::to_string(target.port),
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "UserKnownHostsFile=" + quote_option_value(known_hosts_file.string()),
      "-o",
      "StrictHostKeyChecking=yes",
      "-o",
      "GlobalKnownHostsFile=/dev/null"};
  if (!command.empty() && allocate_tty) {
    argv.push_back("-t");
  }
  argv.insert(argv.end(), extra_ssh_args.begin(), extra_ssh_args.end());
  argv.push_back(target.user + "@" + target.host);
  if (!command.empty()) {
    // Everything after the destination is the remote command; "--" is not needed by ssh.
    argv.push_back(command);
  }
  return argv;
}

int run_openssh(std::vector<std::string> argv) {
  std::optional<std::string> ssh = util::find_in_path(argv.at(0));
  if (!ssh) {
    throw Error("ssh", "no OpenSSH client ('" + argv[0] + "' is not in PATH)", "",
                "install it (Debian: apt-get install openssh-client)");
  }
  argv[0] = *ssh;
  return run_child(argv);
}

int interactive_session(const SshTarget& target, const std::filesystem::path& known_hosts_file,
                        const std::vector<std::string>& extra_ssh_args,
                        const std::string& command) {
  if (std::optional<std::string> ssh = util::find_in_path("ssh")) {
    return run_child(
        openssh_argv(*ssh, target, known_hosts_file, extra_ssh_args, command, ::isatty(0) != 0));
  }
  return native_session(target, known_hosts_file, command);
}

int native_session(const SshTarget& target, const std::filesystem::path& known_hosts_file,
                   const std::string& command, int in_fd, int out_fd, int err_fd) {
  ConnectOptions options;
  options.target = target;
  if (options.target.host_key.empty()) {
    options.target.host_key =
        find_known_host(known_hosts_file, target.host, target.port).value_or("");
  }
  std::unique_ptr<Session> session = Session::connect(options);
  LIBSSH2_SESSION* s = session->raw();
  std::string subject = target.user + "@" + target.host + ":" + std::to_string(target.port);
  auto fail = [&](const std::string& problem) {
    char* message = nullptr;
    libssh2_session_last_error(s, &message, nullptr, 0);
    throw SshError(Stage::channel, subject, problem, message != nullptr ? message : "");
  };

  ChannelPtr channel(libssh2_channel_open_session(s));
  if (!channel) {
    fail("cannot open an SSH channel");
  }
  const char* term_env = std::getenv("TERM");
  std::string term = term_env != nullptr && *term_env != '\0' ? term_env : "xterm";
  winsize size = window_size(in_fd);
  if (libssh2_channel_request_pty_ex(channel.get(), term.c_str(),
                                     static_cast<unsigned>(term.size()), nullptr, 0, size.ws_col,
                                     size.ws_row, 0, 0) != 0) {
    fail("the server refused a terminal");
  }
  int rc = command.empty() ? libssh2_channel_shell(channel.get())
                           : libssh2_channel_exec(channel.get(), command.c_str());
  if (rc != 0) {
    fail(command.empty() ? "cannot start a shell" : "cannot start the remote command");
  }

  RawMode raw(in_fd);
  WindowChangeWatch watch;
  NonBlockingScope non_blocking(s);
  LIBSSH2_CHANNEL* ch = channel.get();
  std::string pending;  // read from in_fd, not yet accepted by the channel
  bool input_open = true;
  bool eof_sent = false;
  char buffer[32768];
  int queued_spins = 0;
  while (libssh2_channel_eof(ch) == 0) {
    if (g_window_changed != 0) {
      g_window_changed = 0;
      winsize now = window_size(in_fd);
      while (libssh2_channel_request_pty_size(ch, now.ws_col, now.ws_row) == LIBSSH2_ERROR_EAGAIN) {
        pollfd p{session->socket_fd(), POLLOUT, 0};
        ::poll(&p, 1, 200);
      }
    }
    bool progress = false;
    for (int stream = 0; stream < 2; ++stream) {
      ssize_t n;
      while ((n = libssh2_channel_read_ex(ch, stream, buffer, sizeof buffer)) > 0) {
        progress = true;
        write_fully(stream == 0 ? out_fd : err_fd, buffer, static_cast<std::size_t>(n));
      }
      if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
        fail("lost the connection");
      }
    }
    while (!pending.empty()) {
      ssize_t n = libssh2_channel_write(ch, pending.data(), pending.size());
      if (n == LIBSSH2_ERROR_EAGAIN) {
        break;
      }
      if (n < 0) {
        pending.clear();
        input_open = false;
        break;
      }
      pending.erase(0, static_cast<std::size_t>(n));
      progress = true;
    }
    if (!input_open && pending.empty() && !eof_sent &&
        libssh2_channel_send_eof(ch) != LIBSSH2_ERROR_EAGAIN) {
      eof_sent = true;
    }
    if (read_again(ch, progress, queued_spins)) {
      continue;
    }
    pollfd fds[2];
    int directions = libssh2_session_block_directions(s);
    fds[0] = {session->socket_fd(), POLLIN, 0};
    if ((directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0) {
      fds[0].events |= POLLOUT;
    }
    nfds_t count = 1;
    if (input_open && pending.empty()) {
      fds[1] = {in_fd, POLLIN, 0};
      count = 2;
    }
    if (::poll(fds, count, 200) > 0 && count == 2 && fds[1].revents != 0) {
      ssize_t n = ::read(in_fd, buffer, sizeof buffer);
      if (n > 0) {
        pending.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        input_open = false;
      }
    }
  }
  // Output that arrived together with the EOF.
  for (int stream = 0; stream < 2; ++stream) {
    ssize_t n;
    while ((n = libssh2_channel_read_ex(ch, stream, buffer, sizeof buffer)) > 0) {
      write_fully(stream == 0 ? out_fd : err_fd, buffer, static_cast<std::size_t>(n));
    }
  }
  auto wait = [&] {
    pollfd p{session->socket_fd(), POLLIN, 0};
    ::poll(&p, 1, 200);
  };
  while (libssh2_channel_close(ch) == LIBSSH2_ERROR_EAGAIN) {
    wait();
  }
  while (libssh2_channel_wait_closed(ch) == LIBSSH2_ERROR_EAGAIN) {
    wait();
  }
  return channel_exit_code(s, ch);
}

}  // namespace gm::ssh
