#include "cli/app.h"

#include "cli/verbs.h"
#include "gm/error.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/spellcheck.h"

#include <unistd.h>

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
      {"env", setup_env},
      {"prices", setup_prices},
      {"autostop", setup_autostop},
      {"gc", setup_gc},
      {"ssh-config", setup_ssh_config},
      {"ssh-allow", setup_ssh_allow},
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
  app->require_subcommand(1);
  app->fallthrough();  // global options may follow the verb
  for (const VerbEntry& verb : verb_table()) {
    verb.setup(*app, dispatch);
  }
  return app;
}

namespace {

/// The first word that is not a global option: the verb the user meant.
std::string verb_token(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") {
      return {};
    }
    if (arg == "--home" || arg == "--format") {
      ++i;
      continue;
    }
    if (!arg.starts_with("-")) {
      return std::string(arg);
    }
  }
  return {};
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

void check_verb(int argc, char** argv) {
  std::string token = verb_token(argc, argv);
  if (token.empty()) {
    return;  // CLI11 reports "a verb is required" or prints help
  }
  std::vector<std::string> names;
  for (const VerbEntry& verb : verb_table()) {
    if (token == verb.name) {
      return;
    }
    names.emplace_back(verb.name);
  }
  throw UsageError("'" + token + "'", "unknown verb" + util::did_you_mean(token, names),
                   "run `gpumachine --help` for the list of verbs");
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
    if (argc == 1) {
      // No verb: the list of verbs is the most useful answer.
      std::unique_ptr<CLI::App> app = make_app(globals, dispatch);
      std::fputs(app->help().c_str(), stderr);
      return exit_code::k_usage;
    }
    refuse_secret_options(argc, argv);
    check_verb(argc, argv);
    std::unique_ptr<CLI::App> app = make_app(globals, dispatch);
    try {
      app->parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return app->exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return app->exit(e);
    } catch (const CLI::ParseError& e) {
      throw UsageError("command line", e.what(), "run `gpumachine VERB --help` for the options");
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
