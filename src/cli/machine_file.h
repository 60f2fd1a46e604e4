// Machine files (yaml-cpp): `create -f machine.yaml` and <home>/config.yaml hold create options
// keyed by flag name without dashes (`ec2-instance-type: g5.xlarge`). Flags beat the file, the
// file beats config.yaml.
#pragma once

#include "gm/driver.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <string>

namespace gm::cli {

/// The keys a machine file may hold; a switch's value must be a YAML boolean.
struct MachineFileKeys {
  std::set<std::string> known;
  std::set<std::string> switches;  ///< a subset of known
};

/// Reads a YAML mapping of option name -> scalar, list of scalars, or mapping of scalars (read as
/// KEY=VALUE items). A switch's value is a YAML 1.1 boolean as yaml-cpp reads it (true/false,
/// yes/no, on/off, y/n in lower, Title or UPPER case) and becomes "true" or "false". Throws
/// UsageError naming the file (and the key) for an unreadable file or a directory, unknown keys
/// (with "did you mean"), any other switch value, and values nested deeper than that.
Options load_machine_file(const std::filesystem::path& path, const MachineFileKeys& keys);

/// load_machine_file's reading of an already parsed node (e.g. a section of a task file);
/// errors name `source`.
Options read_machine_options(const YAML::Node& root, const std::string& source,
                             const MachineFileKeys& keys);

/// Overlays `top` on `base`: a key present in top replaces the key in base.
Options overlay(Options base, const Options& top);

}  // namespace gm::cli
