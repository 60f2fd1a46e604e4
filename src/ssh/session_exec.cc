// Session::exec: one remote command over a channel, with stdin, stdout and stderr pumped
// independently in non-blocking mode through buffers of a fixed size, so neither a command that
// floods output nor an endless local stdin grows memory. Every wait is bounded by the command
// timeout and ends within a fraction of a second when a signal asks the tool to stop.
#include "ssh/session.h"

#include "ssh/session_impl.h"
#include "util/log.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

namespace gm::ssh {

using Stage = SshError::Stage;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

/// Bytes moved per read of stdin or of the channel (256 KiB piped stdin faster than 64 KiB in
/// the same run, docs/benchmarks.md).
constexpr std::size_t k_exec_buffer = 256 * 1024;
/// How long one wait for the socket lasts before the loop looks at keepalives and deadlines.
constexpr milliseconds k_wait_slice{1000};

/// The command's stdin: fixed bytes, or a descriptor read one bounded chunk at a time.
class Input {
 public:
  Input(std::string_view data, int fd) : m_pending(data), m_fd(fd) {}

  /// Bytes read but not yet taken by the channel.
  std::string_view pending() const { return m_pending; }
  void consumed(std::size_t n) { m_pending.remove_prefix(n); }
  /// True when nothing is pending and nothing more will come.
  bool finished() const { return m_pending.empty() && m_fd < 0; }
  /// The descriptor to poll for more input: only when everything read so far was taken.
  int wanted_fd() const { return m_pending.empty() ? m_fd : -1; }
  /// The command stopped reading: drop the rest.
  void close() {
    m_pending = {};
    m_fd = -1;
  }
  /// Reads the next chunk after poll said wanted_fd() is readable.
  void refill() {
    ssize_t n = ::read(m_fd, m_buffer.data(), m_buffer.size());
    if (n > 0) {
      m_pending = std::string_view(m_buffer.data(), static_cast<std::size_t>(n));
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      m_fd = -1;
    }
  }

 private:
  std::string_view m_pending;
  int m_fd;
  std::string m_buffer = std::string(k_exec_buffer, '\0');
};

/// The first line of a command, short, for messages.
std::string command_summary(const std::string& command) {
  std::string line = command.substr(0, command.find('\n'));
  return line.size() > 80 ? line.substr(0, 77) + "..." : line;
}

std::string duration_text(milliseconds d) {
  auto seconds = std::chrono::ceil<std::chrono::seconds>(d).count();
  return seconds % 60 == 0 ? std::to_string(seconds / 60) + " min" : std::to_string(seconds) + " s";
}

int pump(Session::Impl& impl, const std::string& command, Input& input, const OutputSink& on_stdout,
         const OutputSink& on_stderr) {
  LIBSSH2_SESSION* s = impl.session.get();
  util::debug(impl.subject + ": exec " + util::redact(command));
  const milliseconds limit = impl.options.command_timeout;
  const std::optional<Clock::time_point> deadline =
      limit.count() > 0 ? std::optional(Clock::now() + limit) : std::nullopt;
  auto check_deadline = [&] {
    if (deadline && Clock::now() >= *deadline) {
      throw SshError(Stage::exec, impl.subject,
                     "the remote command did not finish within " + duration_text(limit),
                     "command: " + util::redact(command_summary(command)),
                     "check the host: the command may wait for input or a lock; run it by hand "
                     "with `gpumachine ssh NAME`");
    }
  };
  // Non-blocking before the channel exists, so that it is also freed without blocking: a
  // command given up on (timeout, signal) is not waited for.
  NonBlockingScope non_blocking(s);
  auto wait = [&] {
    check_deadline();
    impl.wait_socket(k_wait_slice);
  };
  ChannelPtr channel;
  while (!channel) {
    channel.reset(libssh2_channel_open_session(s));
    if (!channel && libssh2_session_last_errno(s) != LIBSSH2_ERROR_EAGAIN) {
      impl.fail(Stage::channel, "cannot open an SSH channel");
    }
    if (!channel) {
      wait();
    }
  }
  LIBSSH2_CHANNEL* ch = channel.get();
  int started;
  while ((started = libssh2_channel_exec(ch, command.c_str())) == LIBSSH2_ERROR_EAGAIN) {
    wait();
  }
  if (started != 0) {
    impl.fail(Stage::exec, "cannot start the remote command");
  }

  bool eof_sent = false;
  bool done[2] = {false, false};
  const OutputSink* sinks[2] = {&on_stdout, &on_stderr};
  std::string buffer(k_exec_buffer, '\0');
  int silent_zero_reads = 0;
  int queued_spins = 0;
  while (!(done[0] && done[1])) {
    bool progress = false;
    while (!eof_sent && !input.pending().empty()) {
      ssize_t n = libssh2_channel_write(ch, input.pending().data(), input.pending().size());
      if (n == LIBSSH2_ERROR_EAGAIN) {
        break;
      }
      if (n < 0) {
        input.close();  // the command closed its stdin or exited: the rest has no reader
        break;
      }
      input.consumed(static_cast<std::size_t>(n));
      progress = true;
    }
    if (!eof_sent && input.finished() && libssh2_channel_send_eof(ch) != LIBSSH2_ERROR_EAGAIN) {
      eof_sent = true;
      progress = true;
    }
    for (int stream = 0; stream < 2; ++stream) {
      while (!done[stream]) {
        ssize_t n = libssh2_channel_read_ex(ch, stream, buffer.data(), buffer.size());
        if (n > 0) {
          progress = true;
          silent_zero_reads = 0;
          if (*sinks[stream]) {
            (*sinks[stream])(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
          }
          continue;
        }
        if (n == LIBSSH2_ERROR_EAGAIN) {
          break;
        }
        if (n < 0) {
          impl.fail(Stage::exec, "lost the connection while running the remote command");
        }
        if (libssh2_channel_eof(ch) != 0) {
          done[stream] = true;
          progress = true;
        } else if (++silent_zero_reads > 100) {
          // libssh2 reports a transport failure during read as 0 without EOF.
          throw SshError(Stage::exec, impl.subject,
                         "lost the connection while running the remote command",
                         impl.last_error().empty() ? "the socket closed" : impl.last_error());
        }
        break;
      }
    }
    check_deadline();
    if (read_again(ch, progress, queued_spins)) {
      continue;
    }
    int next_keepalive = 0;
    if (impl.options.keepalive_seconds > 0 && libssh2_keepalive_send(s, &next_keepalive) != 0 &&
        libssh2_session_last_errno(s) != LIBSSH2_ERROR_EAGAIN) {
      impl.fail(Stage::exec, "lost the connection while running the remote command");
    }
    int directions = libssh2_session_block_directions(s);
    pollfd fds[2] = {{impl.socket.get(), POLLIN, 0}, {input.wanted_fd(), POLLIN, 0}};
    if ((directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0) {
      fds[0].events |= POLLOUT;
    }
    nfds_t count = !eof_sent && input.wanted_fd() >= 0 ? 2 : 1;
    if (impl.poll_or_throw(fds, count, k_wait_slice) > 0 && count == 2 && fds[1].revents != 0) {
      input.refill();
    }
  }

  // Close our side, then wait for the server's close: exit-status/exit-signal arrive before
  // it.
  Clock::time_point close_deadline = Clock::now() + k_blocking_timeout;
  auto until_done = [&](auto call, const char* what) {
    int rc;
    while ((rc = call()) == LIBSSH2_ERROR_EAGAIN) {
      if (Clock::now() > close_deadline) {
        throw SshError(Stage::exec, impl.subject, std::string("timed out ") + what);
      }
      wait();
    }
    if (rc != 0) {
      impl.fail(Stage::exec, std::string("failed ") + what);
    }
  };
  until_done([&] { return libssh2_channel_close(ch); }, "closing the channel");
  until_done([&] { return libssh2_channel_wait_closed(ch); }, "waiting for the channel to close");

  return channel_exit_code(s, ch);
}

}  // namespace

int Session::exec(const std::string& command, const OutputSink& on_stdout,
                  const OutputSink& on_stderr, std::string_view stdin_data) {
  Input input(stdin_data, -1);
  return pump(*m_impl, command, input, on_stdout, on_stderr);
}

int Session::exec_fd(const std::string& command, int stdin_fd, const OutputSink& on_stdout,
                     const OutputSink& on_stderr) {
  Input input({}, stdin_fd);
  return pump(*m_impl, command, input, on_stdout, on_stderr);
}

std::string Session::describe() const {
  return m_impl->subject;
}

void Session::set_command_timeout(milliseconds timeout) {
  m_impl->options.command_timeout = timeout;
}

}  // namespace gm::ssh
