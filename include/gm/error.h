// The error contract: every failure that ends a verb is a gm::Error (or a subclass) carrying the
// subject, what failed, the cause from the layer below, a hint with the fix, and the exit code.
// main() alone turns it into a message and an exit status.
#pragma once

#include <stdexcept>
#include <string>

namespace gm {

/// Documented exit codes (docs/cli.md). `ssh NAME -- cmd` exits with the remote status instead.
namespace exit_code {
inline constexpr int k_ok = 0;
inline constexpr int k_failure = 1;
inline constexpr int k_usage = 2;
inline constexpr int k_not_found = 3;
inline constexpr int k_locked = 4;
inline constexpr int k_unsupported = 5;
inline constexpr int k_no_gpu = 6;
inline constexpr int k_internal = 70;
inline constexpr int k_interrupted = 130;
}  // namespace exit_code

/// Root of the error hierarchy. what() is "subject: problem: cause" (empty parts left out).
class Error : public std::runtime_error {
 public:
  Error(std::string subject, std::string problem, std::string cause = {}, std::string hint = {},
        int exit_code = exit_code::k_failure);

  const std::string& subject() const { return m_subject; }
  const std::string& problem() const { return m_problem; }
  const std::string& cause() const { return m_cause; }
  const std::string& hint() const { return m_hint; }
  int exit_code() const { return m_exit_code; }

 private:
  std::string m_subject;
  std::string m_problem;
  std::string m_cause;
  std::string m_hint;
  int m_exit_code;
};

/// Bad command line or option values; nothing was touched (exit 2).
class UsageError : public Error {
 public:
  UsageError(std::string subject, std::string problem, std::string hint = {});
};

/// A machine (or other named thing) does not exist (exit 3).
class NotFoundError : public Error {
 public:
  NotFoundError(std::string subject, std::string problem, std::string hint = {});
};

/// Another gpumachine process holds the machine's lock (exit 4).
class LockedError : public Error {
 public:
  LockedError(std::string subject, std::string problem, std::string hint = {});
};

/// The driver cannot do this (e.g. `stop` on a generic machine) (exit 5).
class UnsupportedError : public Error {
 public:
  UnsupportedError(std::string subject, std::string problem, std::string hint = {});
};

/// The user pressed Ctrl-C or the process got SIGTERM (exit 130).
class InterruptedError : public Error {
 public:
  explicit InterruptedError(std::string subject);
};

/// An SSH connection, host-key check, authentication, command or file transfer failed.
class SshError : public Error {
 public:
  enum class Stage { connect, handshake, hostkey, auth, channel, exec, sftp, keyfile };
  SshError(Stage stage, std::string subject, std::string problem, std::string cause = {},
           std::string hint = {});
  Stage stage() const { return m_stage; }

 private:
  Stage m_stage;
};

/// A call to a cloud API failed (after retries). Carries the provider's code and request id.
class CloudError : public Error {
 public:
  CloudError(std::string action, int http_status, std::string code, std::string message,
             std::string request_id, std::string hint = {});
  const std::string& action() const { return m_action; }
  int http_status() const { return m_http_status; }
  const std::string& code() const { return m_code; }
  const std::string& message() const { return m_message; }
  const std::string& request_id() const { return m_request_id; }

 private:
  std::string m_action;
  int m_http_status;
  std::string m_code;
  std::string m_message;
  std::string m_request_id;
};

}  // namespace gm
