#include "cli/app.h"

#include "cli/help.h"
#include "cli/verbs.h"
#include "gm/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/spellcheck.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace gm::cli {

const std::vector<VerbEntry>& verb_table() {
  static const std::vector<VerbEntry> verbs = {
      {"create", setup_create},
      {"ls", setup_ls},
      {"status", setup_status},
      {"ip", setup_ip},
      {"inspect", setup_inspect},
      {"ssh", setup_ssh},
      {"scp", setup_scp},
      {"start", setup_start},
      {"stop", setup_stop},
      {"kill", setup_kill},
      {"restart", setup_restart},
      {"rm", setup_rm},
      {"provision", setup_provision},
      {"probe", setup_probe},
      {"forward", setup_forward},
      {"jupyter", setup_jupyter},
      {"tensorboard", setup_tensorboard},
      {"ray", setup_ray},
      {"env", setup_env},
      {"prices", setup_prices},
      {"autostop", setup_autostop},
      {"gc", setup_gc},
      {"ssh-config", setup_ssh_config},
      {"ssh-allow", setup_ssh_allow},
      {"run", setup_run},
      {"jobs", setup_jobs},
      {"logs", setup_logs},
      {"attach", setup_attach},
      {"cancel", setup_cancel},
      {"sync", setup_sync},
      {"compose", setup_compose},
      {"version", setup_version},
  };
  return verbs;
}

std::unique_ptr<CLI::App> make_app(GlobalOptions& globals, Dispatch& dispatch) {
  auto app = std::make_unique<CLI::App>(
      "gpumachine: GPU machines in your own cloud account, ready for deep learning", "gpumachine");
  app->add_option("--home", globals.home, "state directory (default ~/.gpumachine)")
      ->envname("GPUMACHINE_HOME");
  app->add_option("--format", globals.format, "output format: table or json")
      ->envname("GPUMACHINE_FORMAT");
  app->add_flag("-v,--verbose", globals.verbose, "show every API call and remote command");
  app->add_flag("-q,--quiet", globals.quiet, "only errors on stderr");
  app->add_flag("--no-color", globals.no_color, "no colours (also when NO_COLOR is set)");
  app->add_flag("-y,--yes", globals.yes, "answer yes to every question");
  app->set_version_flag("-V,--version", std::string("gpumachine ") + GM_VERSION,
                        "print the version and exit");
  app->require_subcommand(1);
  app->fallthrough();  // global options may follow the verb
  app->footer(
      "Run `gpumachine help VERB` (or `gpumachine VERB --help`) for a verb's options and "
      "examples.");
  for (const VerbEntry& verb : verb_table()) {
    verb.setup(*app, dispatch);
    if (std::string examples = verb_examples(verb.name); !examples.empty()) {
      app->get_subcommand(verb.name)->footer(examples);
    }
  }
  return app;
}

namespace {

/// Every name the options of these apps answer to ("--format", "-v"), for "did you mean".
std::vector<std::string> option_names(const std::vector<const CLI::App*>& scopes) {
  std::vector<std::string> names;
  for (const CLI::App* scope : scopes) {
    for (const CLI::Option* opt : scope->get_options()) {
      for (const std::string& l : opt->get_lnames()) {
        names.push_back("--" + l);
      }
      for (const std::string& s : opt->get_snames()) {
        names.push_back("-" + s);
      }
    }
  }
  return names;
}

/// True for an option that carries a credential: Docker Machine's --amazonec2-secret-key,
/// --amazonec2-session-token, --digitalocean-access-token, --openstack-password, ...
bool is_secret_option(std::string_view name) {
  for (std::string_view word : {"secret", "token", "password", "passwd", "access-key", "api-key"}) {
    if (name.find(word) != std::string_view::npos) {
      return true;
    }
  }
  return false;
}

/// gpumachine takes no credentials on its command line. Before anything can echo them (CLI11's
/// "not expected" error lists the values), the values of credential options are registered as
/// secrets, and the first such option is refused with where credentials go instead. A remote
/// command after "--" is the user's own and is left alone.
void refuse_secret_options(int argc, char** argv) {
  std::string refused;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      break;
    }
    if (!arg.starts_with("--")) {
      continue;
    }
    std::size_t eq = arg.find('=');
    std::string_view name = arg.substr(0, eq);
    if (!is_secret_option(name)) {
      continue;
    }
    if (eq != std::string_view::npos) {
      util::add_secret(std::string(arg.substr(eq + 1)));
    } else if (i + 1 < argc) {
      util::add_secret(argv[i + 1]);
    }
    if (refused.empty()) {
      refused = std::string(name);
    }
  }
  if (!refused.empty()) {
    throw UsageError(refused, "credentials are not taken on the command line",
                     "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile of "
                     "~/.aws/credentials with AWS_PROFILE");
  }
}

/// True when app knows this option word: "--name", "--name=value", "-x" or grouped "-xy".
bool known_option(const CLI::App& app, const std::string& word) {
  std::string name = word.substr(0, word.find('='));
  if (app.get_option_no_throw(name) != nullptr) {
    return true;
  }
  if (name.starts_with("--") || name.size() <= 2) {
    return false;
  }
  return std::all_of(name.begin() + 1, name.end(), [&](char c) {
    return app.get_option_no_throw(std::string{'-', c}) != nullptr;
  });
}

UsageError unknown_option(const std::string& word, const std::vector<const CLI::App*>& scopes,
                          const std::string& hint) {
  std::string name = word.substr(0, word.find('='));
  return UsageError("option '" + name + "'",
                    "unknown option" + util::did_you_mean(name, option_names(scopes)), hint);
}

/// The index of the verb in argv (0 when there is none). Options before it must be global ones:
/// a mistyped one is reported as such, not as an unknown verb (its value would look like one).
int verb_index(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--") {
      return 0;
    }
    if (!arg.starts_with("-") || arg == "-") {
      return i;
    }
    if (!known_option(app, arg)) {
      throw unknown_option(arg, {&app}, "run `gpumachine --help` for the global options");
    }
    const CLI::Option* opt = app.get_option_no_throw(arg.substr(0, arg.find('=')));
    if (opt != nullptr && opt->get_items_expected_min() > 0 && arg.find('=') == std::string::npos) {
      ++i;  // its value
    }
  }
  return 0;
}

void check_verb(const std::string& token) {
  std::vector<std::string> names;
  for (const VerbEntry& verb : verb_table()) {
    if (token == verb.name) {
      return;
    }
    names.emplace_back(verb.name);
  }
  throw UsageError("'" + token + "'", "unknown verb" + util::did_you_mean(token, names),
                   "run `gpumachine help` for the list of verbs");
}

/// `gpumachine help [VERB]` is `gpumachine [VERB] --help`.
std::vector<std::string> rewrite_help(int argc, char** argv, int verb_at) {
  std::vector<std::string> args(argv, argv + argc);
  if (verb_at == 0 || args[verb_at] != "help") {
    return args;
  }
  std::vector<std::string> out(args.begin(), args.begin() + verb_at);
  if (verb_at + 1 < argc) {
    check_verb(args[verb_at + 1]);
    out.push_back(args[verb_at + 1]);
  }
  out.emplace_back("--help");
  return out;
}

/// A parse error in the verb's part of the command line, in our words where we can say more.
UsageError parse_error(const CLI::App& app, const std::string& verb, const CLI::ParseError& e) {
  const CLI::App* sub = verb.empty() ? nullptr : app.get_subcommand(verb);
  std::string hint = verb.empty() ? "run `gpumachine help`" : "run `gpumachine help " + verb + "`";
  if (sub != nullptr) {
    // What neither the verb nor the global options took falls through to the top level.
    for (const CLI::App* scope : {sub, &app}) {
      for (const std::string& word : scope->remaining()) {
        if (word.starts_with("-") && word.size() > 1 && !known_option(*sub, word) &&
            !known_option(app, word)) {
          return unknown_option(word, {sub, &app}, hint + " for its options");
        }
      }
    }
  }
  return UsageError(verb.empty() ? "command line" : verb, e.what(), hint + " for the options");
}

void print_error(const Error& e) {
  bool color = util::log_settings().color;
  std::string text = util::redact(e.what());
  std::fprintf(stderr, "%sgpumachine: error:%s %s\n", color ? "\033[31m" : "",
               color ? "\033[0m" : "", text.c_str());
  if (!e.hint().empty()) {
    std::fprintf(stderr, "  hint: %s\n", util::redact(e.hint()).c_str());
  }
}

void apply_log_settings(const GlobalOptions& globals) {
  util::LogSettings settings;
  settings.verbosity = globals.quiet     ? util::Verbosity::quiet
                       : globals.verbose ? util::Verbosity::verbose
                                         : util::Verbosity::normal;
  settings.color =
      !globals.no_color && std::getenv("NO_COLOR") == nullptr && ::isatty(STDERR_FILENO) == 1;
  util::set_log_settings(settings);
}

}  // namespace

int run_main(int argc, char** argv) {
  GlobalOptions globals;
  Dispatch dispatch;
  try {
    std::unique_ptr<CLI::App> app = make_app(globals, dispatch);
    if (argc == 1) {
      // No verb: the list of verbs is the most useful answer.
      std::fputs(app->help().c_str(), stderr);
      return exit_code::k_usage;
    }
    refuse_secret_options(argc, argv);
    int verb_at = verb_index(*app, argc, argv);
    std::vector<std::string> args = rewrite_help(argc, argv, verb_at);
    std::string verb = verb_at != 0 && args.size() > static_cast<std::size_t>(verb_at) &&
                               !args[verb_at].starts_with("-")
                           ? args[verb_at]
                           : std::string();
    if (!verb.empty()) {
      check_verb(verb);
    }
    try {
      // CLI11 wants the arguments without the program name, in reverse order.
      std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
      app->parse(reversed);
    } catch (const CLI::CallForHelp& e) {
      return app->exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app->exit(e);
    } catch (const CLI::CallForVersion& e) {
      return app->exit(e);
    } catch (const CLI::ParseError& e) {
      throw parse_error(*app, verb, e);
    }
    apply_log_settings(globals);
    util::install_interrupt_handlers();
    Context ctx(globals);
    return dispatch.run(ctx);
  } catch (const Error& e) {
    print_error(e);
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpumachine: internal error (please report): %s\n",
                 util::redact(e.what()).c_str());
    return exit_code::k_internal;
  }
}

}  // namespace gm::cli
