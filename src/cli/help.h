// Help that answers the question a user has: examples under each verb's --help, and
// `gpumachine help [VERB]`.
#pragma once

#include <string>

namespace gm::cli {

/// "Examples:\n  gpumachine ..." for a verb's --help footer; empty for a verb without examples.
std::string verb_examples(const std::string& verb);

}  // namespace gm::cli
