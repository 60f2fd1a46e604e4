// A job's environment from `-e K=V`, `-e K` (the value from this process's environment) and
// `--env-file F` (docker's format: K=V or K per line, # comments), as docker --env-file lines.
// Checked before anything is touched. The values travel on the job command's stdin, never on a
// command line or in the log.
#pragma once

#include <string>
#include <vector>

namespace gm::run {

/// Throws UsageError naming the flag for a bad name, a value with a newline, an unset variable
/// or an unreadable file. Later settings of one name win (files first, then -e in order).
std::string job_env(const std::vector<std::string>& settings,
                    const std::vector<std::string>& env_files);

}  // namespace gm::run
