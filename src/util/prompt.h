// The one yes/no question on the terminal. Whether to ask at all (--yes, no terminal) is the
// caller's policy; this is only how it is asked and read.
#pragma once

#include <string>

namespace gm::util {

/// True when stdin and stderr are terminals: someone is there to answer.
bool terminal_attached();

/// Prints "question [y/N] " on stderr and reads a line from stdin: "y", "Y", "yes" mean yes.
bool ask_yes_no(const std::string& question);

}  // namespace gm::util
