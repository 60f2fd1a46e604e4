// An authenticated libssh2 session, set up in a fixed order (libgit2): connect with a timeout
// (retried until a deadline while the host boots) -> handshake -> host key checked against the
// pin BEFORE authentication -> authentication -> keepalive. Implements RemoteShell.
#pragma once

#include "gm/machine.h"
#include "ssh/remote_shell.h"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

// Forward-declared so this header does not pull libssh2 into every user.
struct _LIBSSH2_SESSION;

namespace gm::ssh {

enum class HostKeyPolicy {
  pinned,              ///< target.host_key must be set and must match exactly.
  trust_on_first_use,  ///< accept what the server shows (or require expected_fingerprint).
};

struct ConnectOptions {
  SshTarget target;
  HostKeyPolicy host_key_policy = HostKeyPolicy::pinned;
  /// "SHA256:..." the server's key must have under trust_on_first_use; empty = any.
  std::string expected_fingerprint;
  /// Keys ("type base64") refused under any policy: known_hosts @revoked lines.
  std::vector<std::string> revoked_host_keys;
  /// Timeout of one TCP connect attempt.
  std::chrono::milliseconds connect_timeout{5000};
  /// Keep retrying refused/unreachable connects until this much time has passed (0: one try).
  std::chrono::milliseconds retry_for{0};
  /// Limit of one SSH handshake (pre-banner lines, version line, key exchange): a server that
  /// accepts and never speaks, or talks without ever sending its version line, fails here.
  std::chrono::milliseconds handshake_timeout{15000};
  /// Limit of one exec()/run() from start to exit status (0: none). A remote command that never
  /// answers fails with a clear error instead of hanging the verb.
  std::chrono::milliseconds command_timeout{std::chrono::minutes(30)};
  /// Try the SSH agent ($SSH_AUTH_SOCK) before the key file.
  bool use_agent = false;
  /// Seconds between keepalive messages (0: off).
  int keepalive_seconds = 30;
  /// Name used as the error subject ("machine 'gpu1'"); empty: "user@host:port".
  std::string subject;
  /// Stop once the host key is verified, without authenticating: the session can only tell
  /// host_key() (for a first login through another client that must trust the same key).
  bool host_key_only = false;
  /// Hint shown when the host key does not match the pin; empty: a generic one that says how
  /// to re-register a legitimately re-installed host (the CLI fills in the machine name).
  std::string hostkey_hint;
};

class Session final : public RemoteShell {
 public:
  /// Connects, verifies the host key, authenticates. Throws SshError naming the stage:
  /// connect (nothing listening within the deadline), hostkey (mismatch: both fingerprints and
  /// how to re-pin), auth (naming the key file; RSA keys get the libssh2 1.10 explanation).
  static std::unique_ptr<Session> connect(const ConnectOptions& options);
  ~Session() override;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// The server's host key as an OpenSSH public key line without comment ("ssh-ed25519 AAAA").
  const std::string& host_key() const;

  int exec(const std::string& command, const OutputSink& on_stdout, const OutputSink& on_stderr,
           std::string_view stdin_data = {}) override;
  /// exec() with stdin streamed from \a stdin_fd (read in bounded chunks as the command takes
  /// them, EOF at the end; -1: no input), so an endless producer (`yes | ...`) works.
  int exec_fd(const std::string& command, int stdin_fd, const OutputSink& on_stdout,
              const OutputSink& on_stderr);
  std::string describe() const override;
  /// Replaces ConnectOptions::command_timeout for the following commands (0: none).
  void set_command_timeout(std::chrono::milliseconds timeout);
  void upload(const std::string& remote_path, std::string_view content,
              unsigned mode = 0644) override;

  /// Calls count with the bytes each SFTP read or write of upload_path/download_path moves (for
  /// a progress display).
  void on_transfer(std::function<void(std::uint64_t bytes)> count);

  /// SFTP copy keeping permission bits; directories need recursive = true. The destination is
  /// the exact path to create or replace (not a directory to copy into, unlike scp).
  void upload_path(const std::filesystem::path& local, const std::string& remote, bool recursive);
  void download_path(const std::string& remote, const std::filesystem::path& local, bool recursive);

  /// For port forwarding: the raw session and its socket (non-blocking mode is the caller's).
  _LIBSSH2_SESSION* raw() const;
  int socket_fd() const;

  /// Opaque state, defined in ssh/session_impl.h (shared by session.cc and sftp.cc).
  struct Impl;

 private:
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> m_impl;
};

/// True when the private key file holds an RSA key (which libssh2 1.10 signs only with SHA-1
/// ssh-rsa, refused by OpenSSH 8.8 and newer).
bool is_rsa_key(const std::filesystem::path& key_path);

/// "SHA256:<base64 without padding>" of an OpenSSH public key line ("type base64 [comment]").
std::string fingerprint_sha256(std::string_view public_key_line);

}  // namespace gm::ssh
