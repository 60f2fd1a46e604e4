// Task files (`gpumachine run -f gpumachine.yaml`): the machine to use (or create), the image or
// Dockerfile, setup and run commands, env, ports, downloads and the project folder, in one YAML
// file.
#pragma once

#include "gm/driver.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace gm::cli {

struct TaskFile {
  std::string machine;            ///< machine: NAME, or machine: {name: NAME, create: {...}}
  std::optional<Options> create;  ///< machine file options for creating it when it is missing
  std::string image;
  std::string build;  ///< a Dockerfile path relative to dir
  std::vector<std::string> setup;
  std::string run;
  std::vector<std::string> env;  ///< K=V
  std::vector<std::string> download;
  std::vector<int> ports;     ///< published by the job, forwarded here while it runs
  std::filesystem::path dir;  ///< absolute: `dir:` relative to the task file's folder
};

/// Reads a task file. Throws UsageError naming the file (and the key) for an unreadable file,
/// invalid YAML, unknown keys (with "did you mean") and values of the wrong shape.
TaskFile load_task_file(const std::filesystem::path& path);

}  // namespace gm::cli
