// `gpumachine env NAME [--shell bash|zsh|fish|powershell] [--unset]`: the variables that point
// the local Docker CLI (and docker compose) at the machine's engine over SSH, in the syntax of
// the given shell, for `eval $(gpumachine env NAME)`.
#include "cli/verbs.h"

#include "gm/error.h"
#include "util/fs.h"
#include "util/log.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>

namespace gm::cli {

namespace {

struct EnvOptions {
  std::string name;
  std::string shell;
  bool unset = false;
};

// Set by docker-machine-era setups or a docker context; either would override or contradict
// DOCKER_HOST (the CLI refuses DOCKER_HOST together with DOCKER_CONTEXT).
const std::vector<std::string> k_conflicting = {"DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH",
                                                "DOCKER_CONTEXT"};

std::string default_shell() {
  const char* shell = std::getenv("SHELL");
  std::string base = shell != nullptr ? std::filesystem::path(shell).filename().string() : "";
  if (base == "zsh" || base == "fish") {
    return base;
  }
  return "bash";
}

std::string dq(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\' || c == '$' || c == '`') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

/// True when ~/.ssh/config has an Include line naming the generated ssh_config.
bool has_include(const std::filesystem::path& user_config, const std::filesystem::path& target) {
  std::optional<std::string> text = util::try_read_file(user_config);
  if (!text) {
    return false;
  }
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string keyword;
    words >> keyword;
    for (char& c : keyword) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (keyword != "include") {
      continue;
    }
    std::string word;
    while (words >> word) {
      if (word.size() >= 2 && word.front() == '"' && word.back() == '"') {
        word = word.substr(1, word.size() - 2);
      }
      if (util::expand_user(word) == target) {
        return true;
      }
    }
  }
  return false;
}

int run_env(Context& ctx, const EnvOptions& opts) {
  std::string shell = opts.shell.empty() ? default_shell() : opts.shell;
  if (shell != "bash" && shell != "zsh" && shell != "fish" && shell != "powershell") {
    throw UsageError("--shell " + shell, "unknown shell", "use bash, zsh, fish or powershell");
  }
  MachineRecord record = ctx.store().load(opts.name);
  ctx.store().update_ssh_config();
  std::filesystem::path ssh_config = ctx.store().ssh_config_path();
  bool included = has_include(util::expand_user("~/.ssh/config"), ssh_config);

  // Docker's ssh:// transport runs the system `ssh NAME`, which finds the machine's address,
  // user, port, key and pinned host key in the generated ssh_config through the Include line.
  std::vector<std::pair<std::string, std::string>> set = {
      {"DOCKER_HOST", "ssh://" + record.name},
      {"GPUMACHINE_ACTIVE_MACHINE", record.name},
  };
  std::vector<std::string> unset = k_conflicting;
  if (opts.unset) {
    for (const auto& [key, value] : set) {
      unset.push_back(key);
    }
    set.clear();
  }

  if (ctx.json()) {
    nlohmann::json vars = nlohmann::json::object();
    for (const auto& [key, value] : set) {
      vars[key] = value;
    }
    ctx.out().print_json({{"name", record.name},
                          {"shell", shell},
                          {"set", vars},
                          {"unset", unset},
                          {"ssh_config", ssh_config.string()},
                          {"ssh_config_included", included}});
    return 0;
  }
  if (!included && !opts.unset) {
    // Docker's ssh:// would fail later, far from the cause, or `eval "$(...)" && docker ...`
    // would drive the local engine. Fail here, loudly; when our output is being captured (for
    // eval), also hand the shell a statement that fails, so the eval's status says so too.
    if (::isatty(STDOUT_FILENO) != 1) {
      ctx.out().print_line(shell == "powershell"
                               ? "throw 'gpumachine env " + record.name + " failed: see above'"
                               : std::string("false;"));
    }
    throw Error("env " + record.name, "Docker's ssh://" + record.name + " cannot reach the machine",
                "~/.ssh/config does not include " + ssh_config.string() + ", so `ssh " +
                    record.name + "` cannot resolve it",
                "run `gpumachine ssh-config --install` once (it adds that Include line), then "
                "run this again");
  }
  if (!opts.unset) {
    util::info("with DOCKER_HOST=ssh://" + record.name +
               ", bind mounts (`docker run -v PATH:...`) "
               "refer to " +
               record.name +
               "'s file system, not this computer's; copy files there "
               "with `gpumachine scp`");
  }
  std::string out;
  // Every statement ends with ';' and comments come last, because `eval $(...)` without quotes
  // joins the lines into one and a '#' would swallow the rest.
  for (const auto& [key, value] : set) {
    if (shell == "fish") {
      out += "set -gx " + key + " " + dq(value) + ";\n";
    } else if (shell == "powershell") {
      out += "$Env:" + key + " = " + dq(value) + "\n";
    } else {
      out += "export " + key + "=" + dq(value) + ";\n";
    }
  }
  for (const std::string& key : unset) {
    if (shell == "fish") {
      out += "set -e " + key + ";\n";
    } else if (shell == "powershell") {
      out += "Remove-Item Env:\\" + key + " -ErrorAction SilentlyContinue\n";
    } else {
      out += "unset " + key + ";\n";
    }
  }
  std::string self = "gpumachine env " + record.name + (opts.unset ? " --unset" : "") +
                     (opts.shell.empty() ? "" : " --shell " + shell);
  if (shell == "powershell") {
    out += "# Run this command to configure your shell:\n# & " + self + " | Invoke-Expression";
  } else if (shell == "fish") {
    out += "# Run this command to configure your shell:\n# eval (" + self + ")";
  } else {
    out += "# Run this command to configure your shell:\n# eval $(" + self + ")";
  }
  ctx.out().print_line(out);
  return 0;
}

}  // namespace

void setup_env(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub =
      app.add_subcommand("env", "print the variables that point local docker at a machine");
  auto opts = std::make_shared<EnvOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("--shell", opts->shell, "bash, zsh, fish or powershell (default from $SHELL)");
  sub->add_flag("--unset", opts->unset, "print the commands that undo it");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_env(ctx, *opts); }; });
}

}  // namespace gm::cli
