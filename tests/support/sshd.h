// Test support: a real OpenSSH sshd on a loopback address and an ephemeral port, with its own
// ed25519 host key and an authorized client key, stopped by pid when the fixture goes away.
#pragma once

#include "gm/machine.h"
#include "support/process.h"

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace gm::testing {

struct SshdOptions {
  /// Listen address; must be in 127.0.0.0/8.
  std::string host = "127.0.0.1";
  /// 0: pick a free ephemeral port.
  int port = 0;
  /// Public key lines allowed to log in; empty: the fixture makes its own client key
  /// (client_key_path()) with ssh-keygen and authorizes that.
  std::vector<std::string> authorized_keys;
  /// authorized_keys options put before every key, e.g. environment="PATH=/stubs:/usr/bin:/bin"
  /// (PermitUserEnvironment is turned on for it).
  std::string key_options;
  /// The sftp subsystem command (e.g. a test's lying SFTP server).
  std::string sftp_subsystem = "internal-sftp";
  /// Extra sshd_config lines appended verbatim.
  std::vector<std::string> extra_config;
  /// argv put before sshd's own, which it must exec in the same process (so that sshd is still
  /// stopped by pid), e.g. `unshare --uts --mount -- sh -c '...; exec "$@"' sh`.
  std::vector<std::string> launcher;
};

/// A running sshd. The user is the current user (root in CI: PermitRootLogin yes).
class SshdFixture {
 public:
  /// Writes the config and keys and starts sshd; returns once the port accepts connections.
  /// Throws std::runtime_error with sshd's log when it does not come up.
  explicit SshdFixture(SshdOptions options = {});
  ~SshdFixture();
  SshdFixture(const SshdFixture&) = delete;
  SshdFixture& operator=(const SshdFixture&) = delete;

  /// The listen address.
  const std::string& host() const { return m_options.host; }
  /// The listen port.
  int port() const { return m_options.port; }
  /// The login user (the current user).
  const std::string& user() const { return m_user; }
  /// The host public key line without comment ("ssh-ed25519 AAAA...").
  const std::string& host_public_key() const { return m_host_public_key; }
  /// The host private key file.
  std::filesystem::path host_key_path() const { return m_dir.path() / "ssh_host_ed25519_key"; }
  /// The fixture's own client private key (only when options.authorized_keys was empty).
  std::filesystem::path client_key_path() const { return m_dir.path() / "client_ed25519"; }
  /// host, port, user, the fixture's client key and the pinned host key.
  SshTarget target() const;
  /// A scratch directory owned by the fixture.
  const std::filesystem::path& dir() const { return m_dir.path(); }
  /// sshd's log so far (stderr with -e).
  std::string log() const;

  /// Stops and starts again: same host key, same port.
  void restart();
  /// Stops sshd (SIGTERM, SIGKILL after a grace period, waitpid).
  void stop();
  /// Starts it after stop().
  void start();
  /// True while sshd runs.
  bool is_running();

 private:
  void write_config();

  SshdOptions m_options;
  TempDir m_dir{"gm-sshd"};
  std::string m_user;
  std::string m_host_public_key;
  std::unique_ptr<Process> m_process;
};

}  // namespace gm::testing
