// Local port forwarding over one SSH session (OpenSSH's `ssh -L`): a listener per spec, one
// direct-tcpip channel per accepted connection, every socket and channel driven by a single
// non-blocking poll loop with bounded buffers in both directions. When the session dies the
// forwarder closes the open connections, reconnects with backoff and keeps its listeners.
#pragma once

#include "ssh/openssh_master.h"
#include "ssh/session.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gm::ssh {

/// One forwarded port: connections to local_addr:local_port reach remote_host:remote_port as
/// seen from the SSH server.
struct ForwardSpec {
  std::string local_addr = "127.0.0.1";
  int local_port = 0;  ///< 0: any free port (resolved when bound)
  std::string remote_host = "127.0.0.1";
  int remote_port = 0;

  /// "127.0.0.1:8888 -> 127.0.0.1:8888".
  std::string describe() const;
};

/// Parses "[LOCAL_ADDR:]LOCAL_PORT:REMOTE_HOST:REMOTE_PORT" or "PORT" (same port on both sides,
/// remote host 127.0.0.1). IPv6 addresses go in brackets. Throws UsageError naming the spec.
ForwardSpec parse_forward_spec(std::string_view text);

/// A port on addr that was free a moment ago: preferred when it is, else one the kernel picks.
int suggest_free_port(const std::string& addr, int preferred);

/// Counters for tests and benchmarks.
struct ForwardStats {
  std::uint64_t connections = 0;  ///< accepted client connections
  std::uint64_t refused = 0;      ///< channels the server refused (remote port closed)
  std::uint64_t reconnects = 0;   ///< sessions re-established after a drop
};

struct ForwarderOptions {
  /// Opens a fresh session after a drop (re-reading the machine record: the address may have
  /// changed). Throws on failure; the forwarder retries with backoff.
  std::function<std::unique_ptr<Session>()> reconnect;
  /// The OpenSSH client's login, asked on every (re)connect. When set and the OpenSSH client is
  /// chosen (openssh_for_forwards()), an OpenSSH master carries the bytes and `reconnect` and
  /// the libssh2 tuning below are not used.
  std::function<OpenSshLogin()> openssh_login;
  /// Receives one line for each event the user should see (drops, reconnects).
  std::function<void(const std::string&)> notice;
  /// Polled at least every 500 ms and after every signal; true ends run().
  std::function<bool()> stop_requested;
  std::chrono::milliseconds first_backoff{500};
  std::chrono::milliseconds max_backoff{30000};
  /// Idle time before TCP keepalive probes on the session socket; with TCP_USER_TIMEOUT it
  /// bounds how long a silently dead network goes unnoticed.
  std::chrono::seconds keepalive{15};
  /// Per-connection buffer in each direction; a full one stops reading from the other side.
  /// Memory is touched only as far as a buffer ever fills. As large as the window: every
  /// libssh2_channel_read first decrypts all that waits on the socket into libssh2's queue and
  /// then hands over at most this much, so a smaller buffer starves the client while the next
  /// read drains the socket again (256 KiB ran at a quarter of the speed, docs/benchmarks.md).
  std::size_t buffer_bytes = 2 * 1024 * 1024;
  /// Receive window each channel opens with (the remote may send this much ahead of us);
  /// libssh2 tops it up to this plus the read size. 2 MiB is OpenSSH's for forwarded channels;
  /// larger windows made the drain above longer and were slower on loopback.
  std::uint32_t window_bytes = 2 * 1024 * 1024;
  /// Most client connections served at once; more wait in the listen backlog.
  std::size_t max_connections = 1000;
};

class Forwarder {
 public:
  /// Binds a listener for every spec before anything else, so a taken port fails early: throws
  /// UsageError ("local port P is in use") with a free port in the hint.
  Forwarder(std::vector<ForwardSpec> specs, ForwarderOptions options);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  /// The specs with the local ports actually bound.
  const std::vector<ForwardSpec>& specs() const;
  /// True when the OpenSSH client carries the bytes: start() needs no session then.
  bool uses_openssh() const;
  /// Connects the data plane: starts the OpenSSH master (any session given is closed; throws
  /// SshError when it cannot log in), or takes session for libssh2.
  void start(std::unique_ptr<Session> session);
  /// Serves connections (reconnecting after drops) until stop_requested(); after start().
  void run();
  /// start(session), then run().
  void run(std::unique_ptr<Session> session);
  /// Counters so far.
  ForwardStats stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> m_impl;
};

}  // namespace gm::ssh
