#include "util/assets.h"

#include <stdexcept>
#include <string>

namespace gm::util {

std::string_view asset(std::string_view path) {
  auto it = assets().find(path);
  if (it == assets().end()) {
    throw std::out_of_range("embedded asset not found: " + std::string(path));
  }
  return it->second;
}

}  // namespace gm::util
