// The command line: global options, the table of verbs, and deferred dispatch. Parsing only
// records which verb was chosen (and its options); main() runs it afterwards and alone turns
// errors into messages and exit codes (CLI11 runs callbacks inside parse(), so running verbs
// there would let our exceptions escape through the parser).
#pragma once

#include "cli/context.h"

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace gm::cli {

/// What a verb's parse callback leaves behind: the function to run after parsing.
struct Dispatch {
  std::function<int(Context&)> run;
};

/// A row of the verb table: its name and the function that registers its subcommand.
struct VerbEntry {
  const char* name;
  void (*setup)(CLI::App& app, Dispatch& dispatch);
};

/// Every verb, in help order.
const std::vector<VerbEntry>& verb_table();

/// Builds the parser with global options and every verb.
std::unique_ptr<CLI::App> make_app(GlobalOptions& globals, Dispatch& dispatch);

/// Parses argv, runs the chosen verb and returns the process exit status. Catches every error.
int run_main(int argc, char** argv);

}  // namespace gm::cli
