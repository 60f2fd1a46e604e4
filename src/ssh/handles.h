// RAII owners for libssh2 handles (Transmission's curl_helpers pattern) and the one-time global
// libssh2 initialisation. Internal to ssh/.
#pragma once

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <memory>

namespace gm::ssh {

/// Calls libssh2_init() once per process (thread-safe); throws SshError if it fails.
void global_init();

struct SessionDeleter {
  void operator()(LIBSSH2_SESSION* session) const;
};
struct ChannelDeleter {
  void operator()(LIBSSH2_CHANNEL* channel) const;
};
struct SftpDeleter {
  void operator()(LIBSSH2_SFTP* sftp) const;
};
struct SftpHandleDeleter {
  void operator()(LIBSSH2_SFTP_HANDLE* handle) const;
};
struct AgentDeleter {
  void operator()(LIBSSH2_AGENT* agent) const;
};
struct KnownHostsDeleter {
  void operator()(LIBSSH2_KNOWNHOSTS* hosts) const;
};

using SessionPtr = std::unique_ptr<LIBSSH2_SESSION, SessionDeleter>;
using ChannelPtr = std::unique_ptr<LIBSSH2_CHANNEL, ChannelDeleter>;
using SftpPtr = std::unique_ptr<LIBSSH2_SFTP, SftpDeleter>;
using SftpHandlePtr = std::unique_ptr<LIBSSH2_SFTP_HANDLE, SftpHandleDeleter>;
using AgentPtr = std::unique_ptr<LIBSSH2_AGENT, AgentDeleter>;
using KnownHostsPtr = std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsDeleter>;

/// Owns a socket descriptor.
class Socket {
 public:
  Socket() = default;
  /// Takes ownership of fd (-1: none).
  explicit Socket(int fd) : m_fd(fd) {}
  ~Socket();
  Socket(Socket&& other) noexcept : m_fd(other.release()) {}
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  /// The descriptor, or -1.
  int get() const { return m_fd; }
  /// Gives up ownership.
  int release() {
    int fd = m_fd;
    m_fd = -1;
    return fd;
  }

 private:
  int m_fd = -1;
};

}  // namespace gm::ssh
