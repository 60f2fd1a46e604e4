// `gpumachine ssh-config [--install]`: where the generated ssh_config is, and (only when asked)
// the one-time Include line in ~/.ssh/config that makes `ssh NAME`, scp, rsync and VS Code work.
#include "cli/verbs.h"

#include "util/fs.h"

namespace gm::cli {

void setup_ssh_config(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand(
      "ssh-config", "print the generated ssh_config, or --install its Include in ~/.ssh/config");
  auto install = std::make_shared<bool>(false);
  sub->add_flag("--install", *install, "add `Include <home>/ssh_config` to ~/.ssh/config (once)");
  sub->callback([&dispatch, install] {
    dispatch.run = [install](Context& ctx) {
      ctx.store().update_ssh_config();
      std::filesystem::path path = ctx.store().ssh_config_path();
      std::filesystem::path user_config = util::expand_user("~/.ssh/config");
      bool changed = false;
      if (*install) {
        changed = store::install_ssh_config_include(user_config, path);
      }
      if (ctx.json()) {
        ctx.out().print_json({{"path", path.string()},
                              {"include_line", "Include " + path.string()},
                              {"installed", *install},
                              {"changed", changed}});
      } else if (*install) {
        ctx.out().print_line(changed ? "added `Include " + path.string() + "` to " +
                                           user_config.string()
                                     : user_config.string() + " already includes " + path.string());
      } else {
        ctx.out().print_line(util::read_file(path));
      }
      return 0;
    };
  });
}

}  // namespace gm::cli
