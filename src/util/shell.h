// Quoting words for a POSIX shell: the one quoter for every command line gpumachine builds.
#pragma once

#include <string>
#include <string_view>

namespace gm::util {

/// \a word as one single-quoted shell word ('...', an embedded ' written as '\''): the shell
/// expands nothing inside, so quotes, newlines, $(...) and the empty word arrive unchanged.
std::string shell_quote(std::string_view word);

}  // namespace gm::util
