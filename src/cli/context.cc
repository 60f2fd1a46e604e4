#include "cli/context.h"

#include "util/fs.h"

namespace gm::cli {

namespace {
std::filesystem::path resolve_home(const std::string& home) {
  return std::filesystem::absolute(util::expand_user(home.empty() ? "~/.gpumachine" : home));
}
}  // namespace

Context::Context(const GlobalOptions& globals)
    : m_globals(globals),
      m_out(parse_format(globals.format)),
      m_store(resolve_home(globals.home)) {}

}  // namespace gm::cli
