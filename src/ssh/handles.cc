#include "ssh/handles.h"

#include "gm/error.h"

#include <unistd.h>

#include <mutex>
#include <string>

namespace gm::ssh {

void global_init() {
  static std::once_flag once;
  static int rc = 0;
  std::call_once(once, [] { rc = libssh2_init(0); });
  if (rc != 0) {
    throw SshError(SshError::Stage::connect, "libssh2", "initialisation failed",
                   "libssh2_init returned " + std::to_string(rc));
  }
}

// The goodbye message to a dead peer must not hold up teardown (an error path, Ctrl-C): it gets a
// short timeout, and errors are ignored (destructors never throw).
void SessionDeleter::operator()(LIBSSH2_SESSION* session) const {
  libssh2_session_set_blocking(session, 1);
  libssh2_session_set_timeout(session, 2000);
  libssh2_session_disconnect(session, "bye");
  libssh2_session_free(session);
}

void ChannelDeleter::operator()(LIBSSH2_CHANNEL* channel) const {
  libssh2_channel_free(channel);
}

void SftpDeleter::operator()(LIBSSH2_SFTP* sftp) const {
  libssh2_sftp_shutdown(sftp);
}

void SftpHandleDeleter::operator()(LIBSSH2_SFTP_HANDLE* handle) const {
  libssh2_sftp_close_handle(handle);
}

void AgentDeleter::operator()(LIBSSH2_AGENT* agent) const {
  libssh2_agent_disconnect(agent);
  libssh2_agent_free(agent);
}

void KnownHostsDeleter::operator()(LIBSSH2_KNOWNHOSTS* hosts) const {
  libssh2_knownhost_free(hosts);
}

}  // namespace gm::ssh
