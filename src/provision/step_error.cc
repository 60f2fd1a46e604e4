#include "provision/step_error.h"

namespace gm::provision {

StepError::StepError(std::string subject, std::string step, int exit_status, std::string cause,
                     std::vector<std::string> log_tail, std::string hint, std::string log_path)
    : Error(std::move(subject),
            "step \"" + step + "\" failed (exit " + std::to_string(exit_status) + ")",
            std::move(cause), std::move(hint)),
      m_step(std::move(step)),
      m_exit_status(exit_status),
      m_log_tail(std::move(log_tail)),
      m_log_path(std::move(log_path)) {}

}  // namespace gm::provision
