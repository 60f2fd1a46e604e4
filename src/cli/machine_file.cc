#include "cli/machine_file.h"

#include "gm/error.h"
#include "util/spellcheck.h"

#include <yaml-cpp/yaml.h>

namespace gm::cli {

namespace {

/// The text of a scalar, or UsageError naming where it sits.
std::string scalar(const YAML::Node& node, const std::string& subject, const std::string& what) {
  if (!node.IsScalar()) {
    throw UsageError(subject, what + " must be a plain value, not a list or a mapping",
                     "e.g. `ec2-instance-type: g5.xlarge`, `ec2-tag: {team: ml}`");
  }
  return node.Scalar();
}

/// "true" or "false" for a YAML boolean (yaml-cpp's reading of YAML 1.1), else UsageError.
std::string switch_value(const YAML::Node& value, const std::string& subject) {
  bool on = false;
  if (!value.IsScalar() || !YAML::convert<bool>::decode(value, on)) {
    std::string found = value.IsScalar() ? "'" + value.Scalar() + "'"
                                         : (value.IsSequence() ? "a list" : "a mapping");
    throw UsageError(subject, "is a switch: its value must be true or false, not " + found,
                     "write `true` or `false` (yes/no and on/off are read the same way)");
  }
  return on ? "true" : "false";
}

}  // namespace

Options load_machine_file(const std::filesystem::path& path, const MachineFileKeys& keys) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw UsageError(path.string(), "cannot read the machine file: it is a directory",
                     "give the path of a YAML file, e.g. -f examples/gpu-jupyter.yaml");
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    throw UsageError(path.string(), "cannot read the machine file", "check the path");
  } catch (const YAML::Exception& e) {
    throw UsageError(path.string(),
                     "not valid YAML: " + e.msg + " at line " + std::to_string(e.mark.line + 1));
  }
  return read_machine_options(root, path.string(), keys);
}

Options read_machine_options(const YAML::Node& root, const std::string& source,
                             const MachineFileKeys& keys) {
  Options options;
  if (root.IsNull()) {
    return options;
  }
  if (!root.IsMap()) {
    throw UsageError(source, "must be a mapping of option names to values",
                     "e.g. `driver: ec2` and `ec2-instance-type: g5.xlarge`, one per line");
  }
  std::vector<std::string> candidates(keys.known.begin(), keys.known.end());
  for (const auto& item : root) {
    if (!item.first.IsScalar()) {
      throw UsageError(source, "keys must be option names, not lists or mappings",
                       "e.g. `ec2-instance-type: g5.xlarge`");
    }
    std::string key = item.first.Scalar();
    if (key.starts_with("--")) {
      key = key.substr(2);
    }
    std::string subject = source + ": key '" + key + "'";
    if (!keys.known.contains(key)) {
      throw UsageError(subject, "unknown option" + util::did_you_mean(key, candidates),
                       "keys are create flags without the leading dashes; see `gpumachine "
                       "create --help`");
    }
    const YAML::Node& value = item.second;
    std::vector<std::string> values;
    if (value.IsNull() || !value.IsDefined()) {
      throw UsageError(subject, "has no value");
    } else if (keys.switches.contains(key)) {
      values.push_back(switch_value(value, subject));
    } else if (value.IsScalar()) {
      values.push_back(value.Scalar());
    } else if (value.IsSequence()) {
      for (const auto& v : value) {
        values.push_back(scalar(v, subject, "each list item"));
      }
    } else {
      // `ec2-tag: {team: ml}` reads naturally; it means --ec2-tag team=ml.
      for (const auto& kv : value) {
        values.push_back(scalar(kv.first, subject, "each mapping key") + "=" +
                         scalar(kv.second, subject, "each mapping value"));
      }
    }
    options[key] = values;
  }
  return options;
}

Options overlay(Options base, const Options& top) {
  for (const auto& [key, values] : top) {
    base[key] = values;
  }
  return base;
}

}  // namespace gm::cli
