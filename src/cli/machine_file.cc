#include "cli/machine_file.h"

#include "gm/error.h"
#include "util/spellcheck.h"

#include <yaml-cpp/yaml.h>

namespace gm::cli {

Options load_machine_file(const std::filesystem::path& path, const std::set<std::string>& known) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path.string());
  } catch (const YAML::BadFile&) {
    throw UsageError(path.string(), "cannot read the machine file", "check the path");
  } catch (const YAML::Exception& e) {
    throw UsageError(path.string(),
                     "not valid YAML: " + e.msg + " at line " + std::to_string(e.mark.line + 1));
  }
  Options options;
  if (root.IsNull()) {
    return options;
  }
  if (!root.IsMap()) {
    throw UsageError(path.string(), "must be a mapping of option names to values",
                     "e.g. `driver: ec2` and `ec2-instance-type: g5.xlarge`, one per line");
  }
  std::vector<std::string> candidates(known.begin(), known.end());
  for (const auto& item : root) {
    std::string key = item.first.as<std::string>();
    if (key.starts_with("--")) {
      key = key.substr(2);
    }
    if (!known.contains(key)) {
      throw UsageError(path.string() + ": key '" + key + "'",
                       "unknown option" + util::did_you_mean(key, candidates),
                       "keys are create flags without the leading dashes; see `gpumachine "
                       "create --help`");
    }
    const YAML::Node& value = item.second;
    std::vector<std::string> values;
    if (value.IsScalar()) {
      values.push_back(value.as<std::string>());
    } else if (value.IsSequence()) {
      for (const auto& v : value) {
        if (!v.IsScalar()) {
          throw UsageError(path.string() + ": key '" + key + "'", "list items must be scalars");
        }
        values.push_back(v.as<std::string>());
      }
    } else if (value.IsMap()) {
      // `ec2-tag: {team: ml}` reads naturally; it means --ec2-tag team=ml.
      for (const auto& kv : value) {
        values.push_back(kv.first.as<std::string>() + "=" + kv.second.as<std::string>());
      }
    } else {
      throw UsageError(path.string() + ": key '" + key + "'", "has no value");
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
