// What `forward`, `jupyter` and `tensorboard` share: serving a Forwarder in the foreground or as
// a detached background process, and the records (<machine dir>/forward-<port>.json, with the
// log next to it) through which `--list` and `--stop` find those processes again.
#pragma once

#include "cli/context.h"
#include "ssh/forward.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace gm::cli {

/// A background forward as recorded on disk.
struct TunnelRecord {
  std::string machine;
  std::string kind;  ///< "forward", "jupyter" or "tensorboard"
  int pid = 0;
  long long start_ticks = 0;  ///< /proc/PID/stat starttime: tells our process from a reused pid
  std::vector<ssh::ForwardSpec> specs;
  std::string url;  ///< jupyter/tensorboard: what to open
  std::string log;
  std::string started_at;
  std::filesystem::path path;  ///< the record file
};

/// The JSON form used in records and in --format json output.
nlohmann::json to_json(const TunnelRecord& record);
/// JSON array of forward specs ({local_addr, local_port, remote_host, remote_port}).
nlohmann::json specs_json(const std::vector<ssh::ForwardSpec>& specs);

/// The background forwards of one machine (name set) or of all machines, sorted.
std::vector<TunnelRecord> list_tunnels(const store::Store& store,
                                       const std::optional<std::string>& name);
/// True when the recorded pid runs and is the process that wrote the record.
bool is_tunnel_running(const TunnelRecord& record);
/// SIGTERM to the recorded process (only when it is ours), SIGKILL after a grace period, then
/// removes the record. Returns true when a process was stopped.
bool stop_tunnel(const TunnelRecord& record);

/// Forwarder options for a machine: reconnects re-read its record (a new address is picked up),
/// notices are timestamped stderr lines, Ctrl-C / SIGTERM stop it.
ssh::ForwarderOptions tunnel_options(Context& ctx, const std::string& name);

/// What the verb wants said about the forward once it serves.
struct TunnelInfo {
  std::string kind = "forward";
  /// Printed, one per line; the first is the one opened with open_browser and recorded.
  std::vector<std::string> urls;
  nlohmann::json extra = nlohmann::json::object();  ///< merged into the JSON output
  bool open_browser = false;
  std::string
      stop_command;  ///< the command that stops it (default: `gpumachine forward NAME --stop`)
};

/// Says that the background forward \a running already serves what info describes, instead of
/// opening a second one; returns 0.
int report_reused_tunnel(Context& ctx, const TunnelRecord& running, const TunnelInfo& info);

/// Serves forwarder over session until Ctrl-C (foreground: exit 130), or detaches first
/// (background: prints the summary, writes the record and returns 0 in the caller right away).
int run_tunnel(Context& ctx, const std::string& name, ssh::Forwarder& forwarder,
               std::unique_ptr<ssh::Session> session, const TunnelInfo& info, bool background);

}  // namespace gm::cli
