// Machine files (yaml-cpp): `create -f machine.yaml` and <home>/config.yaml hold create options
// keyed by flag name without dashes (`ec2-instance-type: g5.xlarge`). Flags beat the file, the
// file beats config.yaml.
#pragma once

#include "gm/driver.h"

#include <filesystem>
#include <set>
#include <string>

namespace gm::cli {

/// Reads a YAML mapping of option name -> scalar or list of scalars (booleans become "true" /
/// "false"). Throws UsageError naming the file and the key for unknown keys (with "did you
/// mean") and for values that are not scalars or lists of scalars.
Options load_machine_file(const std::filesystem::path& path, const std::set<std::string>& known);

/// Overlays `top` on `base`: a key present in top replaces the key in base.
Options overlay(Options base, const Options& top);

}  // namespace gm::cli
