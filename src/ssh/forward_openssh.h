// The OpenSSH data plane of a Forwarder: its listeners and accept loop stay here, each accepted
// connection goes to an OpenSshMaster, and a master that exits is started again with backoff.
// Internal to ssh/ (forward.cc).
#pragma once

#include "ssh/forward.h"
#include "ssh/handles.h"
#include "ssh/openssh_master.h"

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

namespace gm::ssh {

/// Sleeps up to d, waking early when stop() turns true; false when it did.
bool sleep_unless_stopped(const std::function<bool()>& stop, std::chrono::milliseconds d);
/// "reconnect failed: CAUSE; retrying in 1.00 s", the notice both data planes give.
std::string reconnect_failed_notice(const std::string& cause, std::chrono::milliseconds backoff);

class OpenSshPlane {
 public:
  /// Serves listeners[i] as specs[i]; the references must outlive the plane.
  OpenSshPlane(std::string ssh_path, const std::vector<ForwardSpec>& specs,
               const std::vector<Socket>& listeners, const ForwarderOptions& options,
               ForwardStats& stats);
  /// Starts the first master; throws what OpenSshMaster throws.
  void start();
  /// Serves until options.stop_requested(), restarting the master when it exits.
  void run();

 private:
  struct Conn {
    util::Fd control;     ///< the mux control connection that carries this forward
    std::string replies;  ///< what the master said on it so far
    std::size_t listener = 0;
  };
  /// Serves until the master exits or stop is asked.
  void serve();
  void accept_from(std::size_t index);

  std::string m_ssh;
  const std::vector<ForwardSpec>& m_specs;
  const std::vector<Socket>& m_listeners;
  const ForwarderOptions& m_options;
  ForwardStats& m_stats;
  std::unique_ptr<OpenSshMaster> m_master;
  std::list<Conn> m_conns;
};

}  // namespace gm::ssh
