// RAII owners for libssh2 handles (Transmission's curl_helpers pattern) and the one-time global
// libssh2 initialisation. Internal to ssh/.
#pragma once

#include "util/fd.h"

#include <libssh2.h>
#include <libssh2_sftp.h>

#include <memory>

namespace gm::ssh {

/// Calls libssh2_init() once per process (thread-safe); throws SshError if it fails.
void global_init();

/// Deleter: libssh2_session_disconnect + libssh2_session_free.
struct SessionDeleter {
  void operator()(LIBSSH2_SESSION* session) const;
};
/// Deleter: libssh2_channel_free.
struct ChannelDeleter {
  void operator()(LIBSSH2_CHANNEL* channel) const;
};
/// Deleter: libssh2_sftp_shutdown.
struct SftpDeleter {
  void operator()(LIBSSH2_SFTP* sftp) const;
};
/// Deleter: libssh2_sftp_close_handle.
struct SftpHandleDeleter {
  void operator()(LIBSSH2_SFTP_HANDLE* handle) const;
};
/// Deleter: libssh2_agent_disconnect + libssh2_agent_free.
struct AgentDeleter {
  void operator()(LIBSSH2_AGENT* agent) const;
};
/// Deleter: libssh2_knownhost_free.
struct KnownHostsDeleter {
  void operator()(LIBSSH2_KNOWNHOSTS* hosts) const;
};

/// Owning handles.
using SessionPtr = std::unique_ptr<LIBSSH2_SESSION, SessionDeleter>;
using ChannelPtr = std::unique_ptr<LIBSSH2_CHANNEL, ChannelDeleter>;
using SftpPtr = std::unique_ptr<LIBSSH2_SFTP, SftpDeleter>;
using SftpHandlePtr = std::unique_ptr<LIBSSH2_SFTP_HANDLE, SftpHandleDeleter>;
using AgentPtr = std::unique_ptr<LIBSSH2_AGENT, AgentDeleter>;
using KnownHostsPtr = std::unique_ptr<LIBSSH2_KNOWNHOSTS, KnownHostsDeleter>;

/// Owns a socket descriptor (closed when destroyed).
using Socket = util::Fd;

}  // namespace gm::ssh
