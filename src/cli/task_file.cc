#include "cli/task_file.h"

#include "cli/machine_file.h"
#include "cli/verbs.h"
#include "gm/error.h"
#include "util/spellcheck.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>

namespace gm::cli {

namespace {

/// Refuses a key outside `known`, naming the file and the key.
void check_key(const std::string& key, const std::vector<std::string>& known,
               const std::string& source) {
  if (std::find(known.begin(), known.end(), key) == known.end()) {
    std::string all;
    for (const std::string& k : known) {
      all += (all.empty() ? "" : ", ") + k;
    }
    throw UsageError(source + ": key '" + key + "'", "unknown key" + util::did_you_mean(key, known),
                     "the keys here are " + all + " (docs/run.md)");
  }
}

std::string text(const YAML::Node& node, const std::string& subject) {
  if (!node.IsScalar()) {
    throw UsageError(subject, "must be a plain value, not a list or a mapping");
  }
  return node.Scalar();
}

/// A scalar or a list of scalars.
std::vector<std::string> texts(const YAML::Node& node, const std::string& subject) {
  if (!node.IsSequence()) {
    return {text(node, subject)};
  }
  std::vector<std::string> out;
  for (const auto& item : node) {
    out.push_back(text(item, subject + " (each item)"));
  }
  return out;
}

/// A TCP port, 1 to 65535.
int port_number(const std::string& text, const std::string& subject) {
  int port = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
  if (ec != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535) {
    throw UsageError(subject, "'" + text + "' is not a port (1 to 65535)",
                     "e.g. `ports: [8888, 6006]`");
  }
  return port;
}

}  // namespace

TaskFile load_task_file(const std::filesystem::path& path) {
  const std::string source = path.string();
  YAML::Node root;
  try {
    root = YAML::LoadFile(source);
  } catch (const YAML::BadFile&) {
    throw UsageError(source, "cannot read the task file", "check the path");
  } catch (const YAML::Exception& e) {
    throw UsageError(source,
                     "not valid YAML: " + e.msg + " at line " + std::to_string(e.mark.line + 1));
  }
  if (!root.IsMap()) {
    throw UsageError(source, "must be a mapping", "e.g. `machine: gpu1` and `run: make test`");
  }
  TaskFile task;
  task.dir = std::filesystem::absolute(path).parent_path();
  for (const auto& item : root) {
    std::string key = text(item.first, source + ": a key");
    check_key(key, {"machine", "image", "build", "setup", "run", "env", "ports", "download", "dir"},
              source);
    const YAML::Node& value = item.second;
    std::string subject = source + ": key '" + key + "'";
    if (key == "machine" && value.IsMap()) {
      for (const auto& m : value) {
        std::string sub = text(m.first, subject);
        check_key(sub, {"name", "create"}, source + ": machine");
        if (sub == "name") {
          task.machine = text(m.second, subject + ".name");
        } else {
          task.create =
              read_machine_options(m.second, source + ": machine.create", machine_file_keys());
        }
      }
    } else if (key == "machine") {
      task.machine = text(value, subject);
    } else if (key == "image") {
      task.image = text(value, subject);
    } else if (key == "build") {
      task.build = text(value, subject);
    } else if (key == "setup") {
      task.setup = texts(value, subject);
    } else if (key == "run") {
      task.run = text(value, subject);
    } else if (key == "ports") {
      for (const std::string& port : texts(value, subject)) {
        task.ports.push_back(port_number(port, subject));
      }
    } else if (key == "download") {
      task.download = texts(value, subject);
    } else if (key == "dir") {
      task.dir = task.dir / text(value, subject);
    } else if (value.IsMap()) {  // env: a mapping
      for (const auto& kv : value) {
        task.env.push_back(text(kv.first, subject) + "=" + text(kv.second, subject));
      }
    } else {
      throw UsageError(subject, "must be a mapping of names to values", "e.g. `env: {SEED: 1}`");
    }
  }
  if (!task.image.empty() && !task.build.empty()) {
    throw UsageError(source, "has both image: and build:", "keep one of them");
  }
  return task;
}

}  // namespace gm::cli
