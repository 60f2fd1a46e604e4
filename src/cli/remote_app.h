// `jupyter` and `tensorboard` share this: start a web app on the machine bound to its
// 127.0.0.1 (on the host, or in a container with the GPUs), wait until it answers, find its URL
// (Jupyter: the token from the server itself), forward its port, and stop it again.
#pragma once

#include "cli/app.h"
#include "cli/context.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gm::cli {

struct RemoteAppOptions {
  std::string kind;  ///< "jupyter" or "tensorboard"
  std::string name;
  int port = 0;        ///< on the machine
  int local_port = 0;  ///< 0: the same as port when free, else any free one
  std::string dir;     ///< working directory on the machine (empty: home)
  std::string logdir;  ///< tensorboard
  std::string image;   ///< container image (empty: the kind's default)
  bool host = false;   ///< run on the host instead of a container
  bool open = false;
  bool stop = false;
  bool background = false;
};

/// One server a Jupyter installation reports: from `jupyter server list --json` ("server"),
/// `jupyter notebook list --json` ("notebook") or a runtime file ("jpserver", "nbserver").
struct JupyterServer {
  std::string source;
  int port = 0;
  int pid = 0;
  std::string token;
  std::string base_url = "/";
};

/// Parses the "<source> <json>" lines the remote script prints; other lines are skipped.
std::vector<JupyterServer> parse_jupyter_servers(std::string_view text);

/// The browser URL for a server reached at 127.0.0.1:local_port: /lab for jupyter_server
/// based servers, /tree for Notebook 6 (which has no /lab).
std::string jupyter_url(const JupyterServer& server, int local_port);

/// Registers what `jupyter` and `tensorboard` share (--port, --local-port, --image | --host,
/// --open, --stop, --background) and the verb's run, for the kind already set in opts.
void add_remote_app_options(CLI::App& sub, Dispatch& dispatch,
                            const std::shared_ptr<RemoteAppOptions>& opts);

/// Runs the verb: start or reuse, wait, forward (or with stop: stop the server and the local
/// background forward).
int run_remote_app(Context& ctx, const RemoteAppOptions& opts);

}  // namespace gm::cli
