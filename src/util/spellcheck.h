// "Did you mean ...?" suggestions (ninja's SpellcheckStringV).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::util {

/// Levenshtein distance.
std::size_t edit_distance(std::string_view a, std::string_view b);
/// The closest candidate within a small distance (or sharing a prefix), or nullopt.
std::optional<std::string> closest_match(std::string_view word,
                                         const std::vector<std::string>& candidates);
/// " (did you mean 'x'?)" or "" — ready to append to a message.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace gm::util
