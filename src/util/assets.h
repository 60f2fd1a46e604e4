// Remote scripts embedded at build time (cmake/embed_assets.cmake), keyed by path under src/.
#pragma once

#include <map>
#include <string_view>

namespace gm::util {

/// Every embedded file, e.g. assets().at("provision/steps/docker.sh").
const std::map<std::string_view, std::string_view>& assets();

/// The embedded file at that path; throws std::out_of_range naming the path when absent.
std::string_view asset(std::string_view path);

}  // namespace gm::util
