// `gpumachine ssh NAME [-- cmd args]`: an interactive shell, or a command whose output is
// streamed and whose exit status becomes ours. Words after -- are joined with spaces, as OpenSSH
// does, and run by the remote user's shell.
#include "cli/verbs.h"

#include "gm/error.h"
#include "machine/connect.h"
#include "ssh/interactive.h"
#include "util/interrupt.h"

#include <unistd.h>

#include <cstdio>

namespace gm::cli {

namespace {

struct SshOptions {
  std::string name;
  std::vector<std::string> command;
  bool no_stdin = false;
};

void write_all(FILE* stream, std::string_view chunk) {
  std::fwrite(chunk.data(), 1, chunk.size(), stream);
  std::fflush(stream);
}

int run_ssh(Context& ctx, const SshOptions& opts) {
  MachineRecord record = machine::load_for_ssh(ctx.store(), opts.name, "ssh");
  if (opts.command.empty()) {
    return ssh::interactive_session(record.ssh, ctx.store().known_hosts_path(opts.name));
  }
  std::string command;
  for (const std::string& word : opts.command) {
    command += (command.empty() ? "" : " ") + word;
  }
  // Local stdin goes to the remote command when it is a pipe or file (`-n` turns that off),
  // streamed as the command reads it.
  int input = !opts.no_stdin && ::isatty(STDIN_FILENO) != 1 ? STDIN_FILENO : -1;
  std::unique_ptr<ssh::Session> session = machine::connect(record);
  session->set_command_timeout({});  // the user's command runs as long as it likes
  try {
    return session->exec_fd(
        command, input, [](std::string_view c) { write_all(stdout, c); },
        [](std::string_view c) { write_all(stderr, c); });
  } catch (const InterruptedError&) {
    // Like OpenSSH killed by the signal: 130 for SIGINT, 143 for SIGTERM, no error message; the
    // connection closes as OpenSSH's would.
    return util::interrupt_exit_code();
  }
}

}  // namespace

void setup_ssh(CLI::App& app, Dispatch& dispatch) {
  CLI::App* sub = app.add_subcommand("ssh", "open a shell on a machine, or run a command there");
  auto opts = std::make_shared<SshOptions>();
  sub->add_option("name", opts->name, "machine name")->required();
  sub->add_option("command", opts->command, "command to run (after --)");
  sub->add_flag("-n,--no-stdin", opts->no_stdin, "do not send local stdin to the command");
  sub->callback(
      [&dispatch, opts] { dispatch.run = [opts](Context& ctx) { return run_ssh(ctx, *opts); }; });
}

}  // namespace gm::cli
