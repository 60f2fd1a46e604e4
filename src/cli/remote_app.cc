#include "cli/remote_app.h"

#include "cli/output.h"
#include "cli/tunnel.h"
#include "gm/error.h"
#include "machine/connect.h"
#include "machine/image_pull.h"
#include "util/assets.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/shell.h"

#include <chrono>
#include <cstdlib>
#include <optional>
#include <sstream>

namespace gm::cli {

namespace {

constexpr std::string_view k_script = "cli/remote_app.sh";
// A host server starts in seconds; a container may first pull a multi-GB image.
constexpr std::chrono::seconds k_host_start_timeout{120};
constexpr std::chrono::seconds k_container_start_timeout{900};
constexpr std::chrono::milliseconds k_status_interval{700};

// Each kind's container image: the environment variable that overrides it, and the default.
struct ImageDefault {
  const char* env;
  const char* image;
};
ImageDefault image_default(const std::string& kind) {
  return kind == "jupyter"
             ? ImageDefault{"GPUMACHINE_JUPYTER_IMAGE",
                            "quay.io/jupyter/pytorch-notebook:cuda12-latest"}
             : ImageDefault{"GPUMACHINE_TENSORBOARD_IMAGE", "tensorflow/tensorflow:latest-gpu"};
}

std::string default_image(const std::string& kind) {
  ImageDefault d = image_default(kind);
  const char* env = std::getenv(d.env);
  return env != nullptr && *env != '\0' ? env : d.image;
}

/// "key value" lines of the script's answer, in order.
std::vector<std::pair<std::string, std::string>> parse_lines(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::size_t space = line.find(' ');
    out.emplace_back(line.substr(0, space),
                     space == std::string::npos ? "" : line.substr(space + 1));
  }
  return out;
}

std::string value_of(const std::vector<std::pair<std::string, std::string>>& lines,
                     const std::string& key) {
  for (const auto& [k, v] : lines) {
    if (k == key) {
      return v;
    }
  }
  return {};
}

std::string log_tail(const std::vector<std::pair<std::string, std::string>>& lines) {
  std::string out;
  for (const auto& [k, v] : lines) {
    if (k == "log") {
      out += (out.empty() ? "" : " | ") + v;
    }
  }
  return out;
}

std::string script_command(const std::string& action, const RemoteAppOptions& o,
                           const std::string& mode, const std::string& image) {
  std::string cmd = "bash -s --";
  for (const std::string& arg :
       {action, o.kind, std::to_string(o.port), mode, o.dir, image, o.logdir}) {
    cmd += " " + util::shell_quote(arg);
  }
  return cmd;
}

std::string run_script(ssh::Session& session, const std::string& command,
                       const std::string& subject) {
  ssh::ExecResult r = session.run(command, util::asset(k_script));
  std::string error = value_of(parse_lines(r.out), "error");
  if (!error.empty() || r.exit_status != 0) {
    throw Error(subject, "cannot start it on the machine", error.empty() ? r.err : error);
  }
  return r.out;
}

/// The background forwards of this app's server (its kind and port on the machine).
std::vector<TunnelRecord> app_tunnels(Context& ctx, const RemoteAppOptions& o) {
  std::vector<TunnelRecord> out;
  for (TunnelRecord& t : list_tunnels(ctx.store(), o.name)) {
    if (t.kind == o.kind && !t.specs.empty() && t.specs.front().remote_port == o.port) {
      out.push_back(std::move(t));
    }
  }
  return out;
}

/// A running background forward to this server that answers the request (any local port, or
/// the one asked for): the second `jupyter` call reuses it instead of opening another.
std::optional<TunnelRecord> reusable_tunnel(Context& ctx, const RemoteAppOptions& o) {
  for (TunnelRecord& t : app_tunnels(ctx, o)) {
    if (is_tunnel_running(t) && (o.local_port == 0 || o.local_port == t.specs.front().local_port)) {
      return std::move(t);
    }
  }
  return std::nullopt;
}

int stop_app(Context& ctx, const RemoteAppOptions& o, const MachineRecord& record,
             const std::string& mode, const std::string& image) {
  std::string subject = o.kind + " on " + o.name + ":" + std::to_string(o.port);
  std::unique_ptr<ssh::Session> session = machine::connect(record);
  auto lines = parse_lines(run_script(*session, script_command("stop", o, mode, image), subject));
  std::string state = value_of(lines, "state");
  int forwards = 0;
  for (const TunnelRecord& t : app_tunnels(ctx, o)) {
    stop_tunnel(t);
    ++forwards;
  }
  if (state == "left") {
    throw Error(
        subject, "the server process did not exit", "pid " + value_of(lines, "pid"),
        "stop it with `gpumachine ssh " + o.name + " -- kill -9 " + value_of(lines, "pid") + "`");
  }
  if (ctx.json()) {
    ctx.out().print_json({{"name", o.name},
                          {"kind", o.kind},
                          {"port", o.port},
                          {"state", state == "stopped" ? "stopped" : "not running"},
                          {"forwards_stopped", forwards}});
  } else {
    ctx.out().print_line(state == "stopped"
                             ? "stopped " + subject + " (pid " + value_of(lines, "pid") + ")"
                             : subject + " was not running");
  }
  return 0;
}

}  // namespace

std::vector<JupyterServer> parse_jupyter_servers(std::string_view text) {
  std::vector<JupyterServer> out;
  for (const auto& [source, body] : parse_lines(std::string(text))) {
    if (source != "server" && source != "notebook" && source != "jpserver" &&
        source != "nbserver") {
      continue;
    }
    nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_object() || !j.contains("port")) {
      continue;
    }
    JupyterServer s;
    s.source = source;
    s.port = j.value("port", 0);
    s.pid = j.value("pid", 0);
    s.token = j.value("token", "");
    s.base_url = j.value("base_url", "/");
    if (s.base_url.empty() || s.base_url.back() != '/') {
      s.base_url += '/';
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string jupyter_url(const JupyterServer& server, int local_port) {
  bool classic = server.source == "notebook" || server.source == "nbserver";
  std::string url = "http://127.0.0.1:" + std::to_string(local_port) + server.base_url +
                    (classic ? "tree" : "lab");
  if (!server.token.empty()) {
    url += "?token=" + server.token;
  }
  return url;
}

int run_remote_app(Context& ctx, const RemoteAppOptions& o) {
  if (o.port < 1 || o.port > 65535) {
    throw UsageError("--port " + std::to_string(o.port), "not a port number (1-65535)");
  }
  if (o.local_port < 0 || o.local_port > 65535) {
    throw UsageError("--local-port " + std::to_string(o.local_port), "not a port number (1-65535)");
  }
  if (o.kind == "tensorboard" && o.logdir.empty() && !o.stop) {
    throw UsageError("tensorboard " + o.name, "--logdir is required",
                     "gpumachine tensorboard " + o.name + " --logdir runs");
  }
  MachineRecord record = machine::load_for_ssh(ctx.store(), o.name, o.kind);
  std::string mode = o.host ? "host" : "container";
  std::string image = o.image.empty() ? default_image(o.kind) : o.image;
  if (o.stop) {
    return stop_app(ctx, o, record, mode, image);
  }
  std::string subject = o.kind + " on " + o.name + ":" + std::to_string(o.port);

  std::optional<TunnelRecord> running = reusable_tunnel(ctx, o);
  std::optional<ssh::Forwarder> forwarder;
  int local_port = 0;
  if (running) {
    local_port = running->specs.front().local_port;
  } else {
    ssh::ForwardSpec spec;
    spec.remote_port = o.port;
    spec.local_port =
        o.local_port != 0 ? o.local_port : ssh::suggest_free_port(spec.local_addr, o.port);
    // Listen before starting anything: a taken --local-port is a usage error up front.
    forwarder.emplace(std::vector<ssh::ForwardSpec>{spec}, tunnel_options(ctx, o.name));
    local_port = forwarder->specs().front().local_port;
  }

  std::unique_ptr<ssh::Session> session = machine::connect(record);
  if (!o.host) {
    machine::pull_image(*session, o.name, image);
  }
  auto start = parse_lines(run_script(*session, script_command("start", o, mode, image), subject));
  std::string started = value_of(start, "state");
  if (started == "started") {
    util::info("started " + subject + ", waiting until it answers");
  } else if (started == "foreign") {
    util::info("port " + std::to_string(o.port) + " on " + o.name +
               " is taken by a server gpumachine did not start; using it if it is " + o.kind);
  } else {
    util::info("reusing the " + o.kind + " already running on " + o.name + ":" +
               std::to_string(o.port));
  }

  auto deadline = std::chrono::steady_clock::now() +
                  (o.host ? k_host_start_timeout : k_container_start_timeout);
  std::optional<JupyterServer> server;
  while (true) {
    std::string text = run_script(*session, script_command("status", o, mode, image), subject);
    auto lines = parse_lines(text);
    bool listening = value_of(lines, "listening") == "yes";
    if (listening && o.kind == "jupyter") {
      for (const JupyterServer& s : parse_jupyter_servers(text)) {
        if (s.port == o.port) {
          server = s;
          break;
        }
      }
    }
    if (listening && (o.kind != "jupyter" || server)) {
      break;
    }
    if (started == "foreign" && listening && o.kind == "jupyter" && !server) {
      throw Error(subject, "the port is taken by another program",
                  "what listens there does not report itself as a Jupyter server",
                  "pick another --port, or stop what listens on " + std::to_string(o.port) +
                      " on the machine");
    }
    if (value_of(lines, "state") == "dead" && started == "started") {
      throw Error(subject, "the server exited while starting", log_tail(lines),
                  "its log is ~/.gpumachine/" + o.kind + "-" + std::to_string(o.port) +
                      ".log on the machine");
    }
    if (std::chrono::steady_clock::now() > deadline) {
      throw Error(subject, "did not answer in time",
                  listening ? "something listens on the port but no Jupyter server reports it"
                            : "nothing listens on the port",
                  "see ~/.gpumachine/" + o.kind + "-" + std::to_string(o.port) +
                      ".log on the machine, or pick another --port");
    }
    if (!util::sleep_unless_interrupted(k_status_interval)) {
      throw InterruptedError(subject);
    }
  }

  TunnelInfo info;
  info.kind = o.kind;
  info.open_browser = o.open;
  info.stop_command =
      "gpumachine " + o.kind + " " + o.name + " --port " + std::to_string(o.port) + " --stop";
  info.extra = {{"remote_port", o.port},
                {"local_port", local_port},
                {"mode", mode},
                {"reused", started != "started"}};
  if (server) {
    info.urls = {jupyter_url(*server, local_port)};
    info.extra["token"] = server->token;
    info.extra["server_pid"] = server->pid;
    info.extra["flavor"] =
        server->source == "notebook" || server->source == "nbserver" ? "notebook" : "lab";
  } else {
    info.urls = {"http://127.0.0.1:" + std::to_string(local_port) + "/"};
  }
  if (running) {
    return report_reused_tunnel(ctx, *running, info);
  }
  return run_tunnel(ctx, o.name, *forwarder, std::move(session), info, o.background);
}

void add_remote_app_options(CLI::App& sub, Dispatch& dispatch,
                            const std::shared_ptr<RemoteAppOptions>& opts) {
  sub.add_option("--port", opts->port, "port on the machine (its 127.0.0.1)")
      ->capture_default_str();
  sub.add_option("--local-port", opts->local_port, "local port (default: --port when free)");
  ImageDefault d = image_default(opts->kind);
  CLI::Option* image =
      sub.add_option("--image", opts->image,
                     std::string("container image (default $") + d.env + " or " + d.image + ")");
  CLI::Option* host =
      sub.add_flag("--host", opts->host, "use the " + opts->kind + " installed on the host");
  image->excludes(host);
  sub.add_flag("--open", opts->open, "open the URL in the browser");
  sub.add_flag("--stop", opts->stop, "stop the server and its background forward");
  sub.add_flag("--background", opts->background, "detach the forward");
  sub.callback([&dispatch, opts] {
    dispatch.run = [opts](Context& ctx) { return run_remote_app(ctx, *opts); };
  });
}

}  // namespace gm::cli
