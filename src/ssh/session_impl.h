// Session::Impl, shared by session.cc (connect, auth, exec) and sftp.cc. Internal to ssh/.
#pragma once

#include "gm/error.h"
#include "ssh/handles.h"
#include "ssh/session.h"

#include <poll.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace gm::ssh {

/// For a loop that moves a channel's data: true when it should go round again instead of
/// waiting in poll(): it moved something (`progress`), or data is already queued inside libssh2
/// (read off the socket while draining the other stream), which would not wake poll().
/// libssh2_poll_channel_read answers 1 for that, but a negative error when any tiny packet is
/// queued, so only 1 counts, and only a few times in a row (`spins` counts them).
inline bool read_again(LIBSSH2_CHANNEL* ch, bool progress, int& spins) {
  if (progress) {
    spins = 0;
    return true;
  }
  if (libssh2_poll_channel_read(ch, 1) == 1 && ++spins < 4) {
    return true;
  }
  spins = 0;
  return false;
}

/// What to do about a host key that does not match the pin (libssh2 and OpenSSH logins alike).
inline constexpr const char* k_host_key_mismatch_hint =
    "if the host was legitimately re-installed, re-register it: gpumachine rm NAME && "
    "gpumachine create ...; otherwise check the host: someone may be intercepting the "
    "connection";

/// Blocking libssh2 calls give up after this long (a dead peer must not hang a verb forever).
inline constexpr std::chrono::milliseconds k_blocking_timeout{120000};

struct Session::Impl {
  ConnectOptions options;
  std::string subject;
  Socket socket;
  SessionPtr session;
  SftpPtr sftp;
  std::string host_key;
  /// Told the bytes each SFTP read or write moved (Session::on_transfer); may be empty.
  std::function<void(std::uint64_t)> transferred;

  /// libssh2_session_last_error's text ("" when none).
  std::string last_error() const;
  /// Throws SshError(stage) with libssh2's last error as the cause (InterruptedError when a
  /// signal cut the libssh2 call short).
  [[noreturn]] void fail(SshError::Stage stage, std::string problem, std::string hint = {}) const;
  /// Waits until the socket is ready in the direction libssh2 is blocked on; false on timeout.
  /// Throws InterruptedError when a signal asks the tool to stop.
  bool wait_socket(std::chrono::milliseconds timeout) const;
  /// util::poll_unless_interrupted, throwing InterruptedError(subject) on a signal.
  int poll_or_throw(pollfd* fds, nfds_t count, std::chrono::milliseconds timeout) const;
  /// The SFTP subsystem, started on first use.
  LIBSSH2_SFTP* sftp_session();
  /// Throws SshError(sftp) naming path, with the SFTP status (or libssh2's error) as the cause.
  [[noreturn]] void fail_sftp(const std::string& what, const std::string& path) const;
};

/// The finished channel's status: the exit status, or 128+N when an exit-signal was sent.
int channel_exit_code(LIBSSH2_SESSION* session, LIBSSH2_CHANNEL* channel);

/// Switches a session to non-blocking mode for a scope and back to blocking afterwards.
class NonBlockingScope {
 public:
  explicit NonBlockingScope(LIBSSH2_SESSION* session) : m_session(session) {
    libssh2_session_set_blocking(m_session, 0);
  }
  ~NonBlockingScope() { libssh2_session_set_blocking(m_session, 1); }
  NonBlockingScope(const NonBlockingScope&) = delete;
  NonBlockingScope& operator=(const NonBlockingScope&) = delete;

 private:
  LIBSSH2_SESSION* m_session;
};

}  // namespace gm::ssh
