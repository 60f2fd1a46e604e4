#include "machine/image_pull.h"

#include "util/assets.h"
#include "util/log.h"
#include "util/progress.h"
#include "util/shell.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <utility>

namespace gm::machine {

void pull_image(ssh::RemoteShell& shell, const std::string& machine_name,
                const std::string& image) {
  std::optional<util::Progress> progress;
  std::map<std::string, std::pair<std::uint64_t, std::uint64_t>> layers;  // current, total
  auto on_line = [&](std::string line) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.starts_with("line ")) {
      util::info("docker pull: " + line.substr(5));
      return;
    }
    nlohmann::json j = nlohmann::json::parse(line.substr(line.find(' ') + 1), nullptr, false);
    if (!line.starts_with("pull {") || !j.is_object()) {
      return;
    }
    if (!progress) {
      progress.emplace("pulling " + image + " on " + machine_name, 0);
    }
    std::string id = j.value("id", "");
    std::string status = j.value("status", "");
    const nlohmann::json& detail = j.contains("progressDetail") ? j["progressDetail"] : j;
    if (status == "Downloading" && detail.contains("current") && detail.contains("total")) {
      layers[id] = {detail.value("current", 0ULL), detail.value("total", 0ULL)};
    } else if ((status == "Download complete" || status == "Pull complete") &&
               layers.contains(id)) {
      layers[id].first = layers[id].second;
    }
    std::uint64_t done = 0;
    std::uint64_t total = 0;
    for (const auto& [layer, bytes] : layers) {
      done += bytes.first;
      total += bytes.second;
    }
    progress->update(done, total);
  };
  std::string pending;
  shell.exec(
      "bash -s -- " + util::shell_quote(image),
      [&](std::string_view chunk) {
        pending += chunk;
        for (std::size_t nl; (nl = pending.find('\n')) != std::string::npos;) {
          on_line(pending.substr(0, nl));
          pending.erase(0, nl + 1);
        }
      },
      [](std::string_view) {}, util::asset("machine/pull_image.sh"));
  if (progress) {
    progress->finish();
  }
}

}  // namespace gm::machine
