// The error a failed provisioning step throws: which step, its exit status, the last lines of its
// output (what the host's log got), and what to do about it.
#pragma once

#include "gm/error.h"

#include <string>
#include <vector>

namespace gm::provision {

/// A remote step script exited non-zero. what() is "<subject>: step "<step>" failed (exit N):
/// <the script's own error line>"; hint() names the fix (or how to resume).
class StepError : public Error {
 public:
  StepError(std::string subject, std::string step, int exit_status, std::string cause,
            std::vector<std::string> log_tail, std::string hint, std::string log_path);

  /// "driver", "toolkit", ...
  const std::string& step() const { return m_step; }
  /// The script's exit status (128+N when killed by signal N).
  int exit_status() const { return m_exit_status; }
  /// The last (up to 20) lines the step printed; the same lines end the host's log.
  const std::vector<std::string>& log_tail() const { return m_log_tail; }
  /// The full log on the host.
  const std::string& log_path() const { return m_log_path; }

 private:
  std::string m_step;
  int m_exit_status;
  std::vector<std::string> m_log_tail;
  std::string m_log_path;
};

}  // namespace gm::provision
