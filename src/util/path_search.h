// Finding a program the way execvp does.
#pragma once

#include <optional>
#include <string>

namespace gm::util {

/// The first executable `name` in $PATH (an empty entry is the current folder), or nullopt.
std::optional<std::string> find_in_path(const std::string& name);

}  // namespace gm::util
