#include "gm/error.h"

#include "util/interrupt.h"

namespace gm {

namespace {
std::string join_message(const std::string& subject, const std::string& problem,
                         const std::string& cause) {
  std::string out = subject;
  for (const std::string* part : {&problem, &cause}) {
    if (part->empty()) {
      continue;
    }
    if (!out.empty()) {
      out += ": ";
    }
    out += *part;
  }
  return out;
}
}  // namespace

Error::Error(std::string subject, std::string problem, std::string cause, std::string hint,
             int exit_code)
    : std::runtime_error(join_message(subject, problem, cause)),
      m_subject(std::move(subject)),
      m_problem(std::move(problem)),
      m_cause(std::move(cause)),
      m_hint(std::move(hint)),
      m_exit_code(exit_code) {}

UsageError::UsageError(std::string subject, std::string problem, std::string hint)
    : Error(std::move(subject), std::move(problem), {}, std::move(hint), exit_code::k_usage) {}

NotFoundError::NotFoundError(std::string subject, std::string problem, std::string hint)
    : Error(std::move(subject), std::move(problem), {}, std::move(hint), exit_code::k_not_found) {}

LockedError::LockedError(std::string subject, std::string problem, std::string hint)
    : Error(std::move(subject), std::move(problem), {}, std::move(hint), exit_code::k_locked) {}

UnsupportedError::UnsupportedError(std::string subject, std::string problem, std::string hint)
    : Error(std::move(subject), std::move(problem), {}, std::move(hint), exit_code::k_unsupported) {
}

// 128+signal, as a shell reports a process the signal killed: 130 for SIGINT, 143 for SIGTERM.
InterruptedError::InterruptedError(std::string subject)
    : Error(std::move(subject), "interrupted", {}, {}, util::interrupt_exit_code()) {}

SshError::SshError(Stage stage, std::string subject, std::string problem, std::string cause,
                   std::string hint)
    : Error(std::move(subject), std::move(problem), std::move(cause), std::move(hint)),
      m_stage(stage) {}

CloudError::CloudError(std::string action, int http_status, std::string code, std::string message,
                       std::string request_id, std::string hint)
    : Error(action, "HTTP " + std::to_string(http_status) + (code.empty() ? "" : " " + code),
            message + (request_id.empty() ? "" : " (request id " + request_id + ")"),
            std::move(hint)),
      m_action(std::move(action)),
      m_http_status(http_status),
      m_code(std::move(code)),
      m_message(std::move(message)),
      m_request_id(std::move(request_id)) {}

}  // namespace gm
