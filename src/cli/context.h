// What a running verb gets: global options, the output sink, the store, and the services a
// driver needs (phase lines, saving, interruption).
#pragma once

#include "cli/output.h"
#include "store/store.h"

#include <memory>
#include <string>

namespace gm::cli {

struct GlobalOptions {
  std::string home;    ///< --home / GPUMACHINE_HOME / ~/.gpumachine
  std::string format;  ///< --format / GPUMACHINE_FORMAT: "table" or "json"
  bool verbose = false;
  bool quiet = false;
  bool no_color = false;
  bool yes = false;
};

class Context {
 public:
  explicit Context(const GlobalOptions& globals);

  const GlobalOptions& globals() const { return m_globals; }
  Output& out() { return m_out; }
  store::Store& store() { return m_store; }
  bool json() const { return m_out.json(); }

 private:
  GlobalOptions m_globals;
  Output m_out;
  store::Store m_store;
};

}  // namespace gm::cli
