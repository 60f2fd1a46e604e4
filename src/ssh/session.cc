#include "ssh/session.h"

#include "ssh/session_impl.h"
#include "ssh/wire.h"
#include "util/crypto.h"
#include "util/fs.h"
#include "util/interrupt.h"
#include "util/log.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcntl.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace gm::ssh {

using Stage = SshError::Stage;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

/// True when the peer has closed (or reset) the connection on `fd`; nothing is consumed.
bool peer_closed(int fd) {
  char byte;
  ssize_t got = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

constexpr milliseconds k_first_backoff{250};
constexpr milliseconds k_max_backoff{2000};
/// Blocking calls during authentication give up after this long (an agent may ask its user).
constexpr milliseconds k_auth_timeout{30000};
/// What a server may send before its version line (RFC 4253 4.2 allows other lines; OpenSSH's
/// client takes at most 1024 of them).
constexpr std::size_t k_max_pre_banner_bytes = 64 * 1024;

std::string endpoint(const SshTarget& t) {
  return t.host + ":" + std::to_string(t.port);
}

struct TcpResult {
  Socket socket;
  int error = 0;             ///< errno of the last failed attempt
  std::string cause;         ///< text for the message
  bool retryable = false;    ///< worth trying again while the host boots
  bool interrupted = false;  ///< a signal asked the tool to stop
};

bool is_retryable_errno(int e) {
  return e == ECONNREFUSED || e == EHOSTUNREACH || e == ENETUNREACH || e == ETIMEDOUT ||
         e == ECONNRESET || e == ECONNABORTED || e == EAGAIN;
}

// One attempt over every address of host: non-blocking connect bounded by poll, so an
// unanswered SYN (host still booting, firewall dropping) costs `timeout`, not the kernel's
// ~2 minutes.
TcpResult tcp_connect_once(const SshTarget& target, milliseconds timeout) {
  TcpResult result;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  std::string port = std::to_string(target.port);
  int gai = getaddrinfo(target.host.c_str(), port.c_str(), &hints, &list);
  if (gai != 0) {
    result.cause = gai_strerror(gai);
    result.retryable = gai == EAI_AGAIN;
    return result;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(list, &freeaddrinfo);
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    Socket sock(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (sock.get() < 0) {
      result.error = errno;
      continue;
    }
    int rc = ::connect(sock.get(), ai->ai_addr, ai->ai_addrlen);
    int err = rc == 0 ? 0 : errno;
    if (err == EINPROGRESS) {
      pollfd p{sock.get(), POLLOUT, 0};
      int n = util::poll_unless_interrupted(&p, 1, timeout);
      if (n < 0 && errno == EINTR) {
        result.interrupted = true;
        return result;
      }
      if (n == 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t len = sizeof err;
        if (getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
          err = errno;
        }
      }
    }
    if (err != 0) {
      result.error = err;
      continue;
    }
    int flags = fcntl(sock.get(), F_GETFL);
    fcntl(sock.get(), F_SETFL, flags & ~O_NONBLOCK);
    int one = 1;
    setsockopt(sock.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(sock.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    result.socket = std::move(sock);
    result.error = 0;
    return result;
  }
  result.cause = result.error == ETIMEDOUT
                     ? "no answer within " + std::to_string(timeout.count()) + " ms"
                     : std::strerror(result.error);
  result.retryable = is_retryable_errno(result.error);
  return result;
}

bool is_retryable_handshake(int rc) {
  return rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_SOCKET_RECV ||
         rc == LIBSSH2_ERROR_SOCKET_SEND || rc == LIBSSH2_ERROR_BANNER_RECV ||
         rc == LIBSSH2_ERROR_BANNER_SEND || rc == LIBSSH2_ERROR_TIMEOUT ||
         rc == LIBSSH2_ERROR_SOCKET_TIMEOUT || rc == LIBSSH2_ERROR_KEX_FAILURE;
}

// libssh2 picks the host key algorithm from its preference list; putting the pinned key's type
// first makes a server with several host keys show the one we pinned (libgit2 does the same
// from known_hosts).
std::string hostkey_preference(const std::string& pinned_type) {
  static const char* const k_defaults[] = {"ssh-ed25519", "ecdsa-sha2-nistp256",
                                           "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa"};
  std::string pref = pinned_type;
  for (const char* name : k_defaults) {
    if (pinned_type != name) {
      pref += (pref.empty() ? "" : ",") + std::string(name);
    }
  }
  return pref;
}

enum class KeyKind { ed25519, rsa, encrypted, other };

// What the key file holds, without libssh2: the public half of an "openssh-key-v1" file is
// stored unencrypted, PEM files name their type, and a .pub file next to it starts with it.
KeyKind sniff_key(const std::filesystem::path& key_path) {
  std::optional<std::string> pub = util::try_read_file(key_path.string() + ".pub");
  if (pub && pub->rfind("ssh-rsa ", 0) == 0) {
    return KeyKind::rsa;
  }
  std::optional<std::string> text = util::try_read_file(key_path);
  if (!text) {
    return KeyKind::other;
  }
  if (text->find("-----BEGIN RSA PRIVATE KEY-----") != std::string::npos) {
    return KeyKind::rsa;
  }
  if (text->find("Proc-Type: 4,ENCRYPTED") != std::string::npos ||
      text->find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos) {
    return KeyKind::encrypted;
  }
  constexpr std::string_view k_begin = "-----BEGIN OPENSSH PRIVATE KEY-----";
  constexpr std::string_view k_end = "-----END OPENSSH PRIVATE KEY-----";
  std::size_t begin = text->find(k_begin);
  std::size_t end = text->find(k_end);
  if (begin == std::string::npos || end == std::string::npos || end < begin) {
    return KeyKind::other;
  }
  std::string body;
  try {
    body = util::base64_decode(
        std::string_view(*text).substr(begin + k_begin.size(), end - begin - k_begin.size()));
  } catch (const std::invalid_argument&) {
    return KeyKind::other;
  }
  constexpr std::string_view k_magic("openssh-key-v1\0", 15);
  if (body.compare(0, k_magic.size(), k_magic) != 0) {
    return KeyKind::other;
  }
  wire::Reader reader(std::string_view(body).substr(k_magic.size()));
  std::optional<std::string_view> cipher = reader.string();
  reader.string();  // kdf name
  reader.string();  // kdf options
  reader.u32();     // number of keys
  std::optional<std::string_view> public_blob = reader.string();
  if (!cipher || !public_blob) {
    return KeyKind::other;
  }
  wire::Reader blob(*public_blob);
  std::optional<std::string_view> type = blob.string();
  if (type && *type == "ssh-rsa") {
    return KeyKind::rsa;
  }
  if (*cipher != "none") {
    return KeyKind::encrypted;
  }
  return type && *type == "ssh-ed25519" ? KeyKind::ed25519 : KeyKind::other;
}

// RFC 4254 section 6.10 signal names, numbered as on Linux (the remote hosts we manage).
int signal_number(std::string_view name) {
  static constexpr std::pair<std::string_view, int> k_signals[] = {
      {"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"ABRT", 6},
      {"FPE", 8},   {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12},
      {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15}};
  if (name.rfind("SIG", 0) == 0) {
    name.remove_prefix(3);
  }
  for (const auto& [signal_name, number] : k_signals) {
    if (name == signal_name) {
      return number;
    }
  }
  return 127;  // unknown signal: still report "killed" (128+127 = 255)
}

std::string key_type_of(const std::string& blob) {
  wire::Reader reader(blob);
  std::optional<std::string_view> type = reader.string();
  return type ? std::string(*type) : std::string("unknown");
}

milliseconds left_until(Clock::time_point deadline) {
  return std::max(milliseconds(0), std::chrono::ceil<milliseconds>(deadline - Clock::now()));
}

std::string seconds_text(milliseconds d) {
  return std::to_string((d.count() + 999) / 1000) + " s";
}

/// Why one handshake attempt failed.
struct HandshakeFailure {
  SshError error;
  bool retryable = false;
};

// RFC 4253 4.2: a server may send other lines before its version line ("SSH-2.0-..."). They
// are read and dropped here, bounded in bytes and time, and the version line is left in the
// socket for libssh2: libssh2 1.10 would read such lines forever, and without a deadline.
std::optional<HandshakeFailure> skip_pre_banner(const Session::Impl& impl,
                                                Clock::time_point deadline) {
  const std::string where = endpoint(impl.options.target);
  const std::string hint = "check that an SSH server listens on port " +
                           std::to_string(impl.options.target.port) + " of " +
                           impl.options.target.host;
  std::size_t skipped = 0;
  bool line_start = true;
  char buffer[1024];
  while (true) {
    pollfd p{impl.socket.get(), POLLIN, 0};
    if (impl.poll_or_throw(&p, 1, left_until(deadline)) == 0) {
      return HandshakeFailure{SshError(SshError::Stage::handshake, impl.subject,
                                       "SSH handshake with " + where + " failed",
                                       "the server sent no SSH version line within " +
                                           seconds_text(impl.options.handshake_timeout),
                                       hint),
                              false};
    }
    ssize_t got = ::recv(impl.socket.get(), buffer, sizeof buffer, MSG_PEEK);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) {
      continue;
    }
    if (got <= 0) {
      return HandshakeFailure{
          SshError(SshError::Stage::handshake, impl.subject,
                   "SSH handshake with " + where + " failed",
                   got == 0 ? "the server closed the connection before its SSH version line"
                            : std::string(std::strerror(errno)),
                   hint),
          true};
    }
    std::string_view seen(buffer, static_cast<std::size_t>(got));
    if (line_start && seen.size() < 4 && std::string_view("SSH-").starts_with(seen)) {
      util::sleep_unless_interrupted(milliseconds(10));  // the rest of "SSH-" is on its way
      continue;
    }
    if (line_start && seen.starts_with("SSH-")) {
      return std::nullopt;
    }
    std::size_t newline = seen.find('\n');
    std::size_t take = newline == std::string_view::npos ? seen.size() : newline + 1;
    skipped += take;
    if (skipped > k_max_pre_banner_bytes) {
      return HandshakeFailure{
          SshError(SshError::Stage::handshake, impl.subject,
                   "SSH handshake with " + where + " failed",
                   "the server sent more than " + std::to_string(k_max_pre_banner_bytes / 1024) +
                       " KiB without an SSH version line",
                   hint),
          false};
    }
    line_start = newline != std::string_view::npos;
    (void)::recv(impl.socket.get(), buffer, take, 0);
  }
}

/// The key exchange in non-blocking mode, so that the deadline and a signal end it.
std::optional<HandshakeFailure> handshake(Session::Impl& impl, Clock::time_point deadline) {
  if (std::optional<HandshakeFailure> failure = skip_pre_banner(impl, deadline)) {
    return failure;
  }
  LIBSSH2_SESSION* s = impl.session.get();
  int rc;
  {
    NonBlockingScope non_blocking(s);
    while ((rc = libssh2_session_handshake(s, impl.socket.get())) == LIBSSH2_ERROR_EAGAIN) {
      if (Clock::now() >= deadline || !impl.wait_socket(left_until(deadline))) {
        return HandshakeFailure{
            SshError(SshError::Stage::handshake, impl.subject,
                     "SSH handshake with " + endpoint(impl.options.target) + " failed",
                     "the key exchange did not finish within " +
                         seconds_text(impl.options.handshake_timeout),
                     "check that an SSH server listens on port " +
                         std::to_string(impl.options.target.port)),
            false};
      }
    }
  }
  if (rc == 0) {
    return std::nullopt;
  }
  return HandshakeFailure{
      SshError(
          SshError::Stage::handshake, impl.subject,
          "SSH handshake with " + endpoint(impl.options.target) + " failed", impl.last_error(),
          "check that an SSH server listens on port " + std::to_string(impl.options.target.port)),
      is_retryable_handshake(rc)};
}

}  // namespace

int channel_exit_code(LIBSSH2_SESSION* session, LIBSSH2_CHANNEL* channel) {
  char* signal_name = nullptr;
  std::size_t signal_length = 0;
  libssh2_channel_get_exit_signal(channel, &signal_name, &signal_length, nullptr, nullptr, nullptr,
                                  nullptr);
  if (signal_name != nullptr) {
    std::string name(signal_name, signal_length);
    libssh2_free(session, signal_name);
    return 128 + signal_number(name);
  }
  return libssh2_channel_get_exit_status(channel);
}

std::string Session::Impl::last_error() const {
  if (!session) {
    return {};
  }
  char* message = nullptr;
  int length = 0;
  libssh2_session_last_error(session.get(), &message, &length, 0);
  return message != nullptr ? std::string(message, static_cast<std::size_t>(length)) : "";
}

void Session::Impl::fail(Stage stage, std::string problem, std::string hint) const {
  // A signal makes libssh2's own blocking wait fail ("Error waiting on socket"): that is the
  // user stopping the verb, not a broken connection.
  util::throw_if_interrupted(subject);
  throw SshError(stage, subject, std::move(problem), last_error(), std::move(hint));
}

bool Session::Impl::wait_socket(milliseconds timeout) const {
  int directions = libssh2_session_block_directions(session.get());
  pollfd p{socket.get(), 0, 0};
  if ((directions & LIBSSH2_SESSION_BLOCK_INBOUND) != 0) {
    p.events |= POLLIN;
  }
  if ((directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0) {
    p.events |= POLLOUT;
  }
  if (p.events == 0) {
    p.events = POLLIN;
  }
  return poll_or_throw(&p, 1, timeout) > 0;
}

int Session::Impl::poll_or_throw(pollfd* fds, nfds_t count, milliseconds timeout) const {
  int n = util::poll_unless_interrupted(fds, count, timeout);
  if (n < 0 && errno == EINTR) {
    throw InterruptedError(subject);
  }
  return n;
}

Session::Session(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

Session::~Session() {
  // The SFTP channel must go before the session that owns it.
  m_impl->sftp.reset();
  m_impl->session.reset();
}

const std::string& Session::host_key() const {
  return m_impl->host_key;
}
_LIBSSH2_SESSION* Session::raw() const {
  return m_impl->session.get();
}
int Session::socket_fd() const {
  return m_impl->socket.get();
}

bool is_rsa_key(const std::filesystem::path& key_path) {
  return sniff_key(key_path) == KeyKind::rsa;
}

std::unique_ptr<Session> Session::connect(const ConnectOptions& options) {
  global_init();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const SshTarget& target = options.target;
  impl->subject = options.subject.empty() ? target.user + "@" + endpoint(target) : options.subject;

  std::optional<wire::PublicKeyLine> pinned;
  if (options.host_key_policy == HostKeyPolicy::pinned) {
    pinned = wire::parse_public_key_line(target.host_key);
    if (!pinned) {
      throw SshError(Stage::hostkey, impl->subject, "no valid host key is pinned",
                     target.host_key.empty() ? "" : "cannot parse '" + target.host_key + "'",
                     "the machine record lacks its host key; re-register the machine");
    }
  }

  // 1. TCP connect and 2. handshake, retried together until retry_for has passed: a booting
  // host refuses, drops SYNs, or accepts and resets while sshd restarts (cloud-init).
  const Clock::time_point deadline = Clock::now() + options.retry_for;
  milliseconds backoff = k_first_backoff;
  int attempts = 0;
  while (true) {
    ++attempts;
    std::optional<SshError> failure;
    bool retryable = false;
    TcpResult tcp = tcp_connect_once(target, options.connect_timeout);
    if (tcp.interrupted) {
      throw InterruptedError(impl->subject);
    }
    if (tcp.socket.get() < 0) {
      failure.emplace(
          Stage::connect, impl->subject, "cannot connect to " + endpoint(target),
          tcp.cause + (attempts > 1 ? " (" + std::to_string(attempts) + " attempts)" : ""),
          "check that the machine is running and that port " + std::to_string(target.port) +
              " is reachable from here");
      retryable = tcp.retryable;
    } else {
      impl->socket = std::move(tcp.socket);
      impl->session.reset(libssh2_session_init());
      if (!impl->session) {
        throw SshError(Stage::handshake, impl->subject, "cannot create an SSH session",
                       "libssh2_session_init failed (out of memory?)");
      }
      LIBSSH2_SESSION* s = impl->session.get();
      libssh2_session_set_blocking(s, 1);
      libssh2_session_set_timeout(s, static_cast<long>(k_auth_timeout.count()));
      libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY,
                                  hostkey_preference(pinned ? pinned->type : "").c_str());
      std::optional<HandshakeFailure> handshake_failure =
          handshake(*impl, Clock::now() + options.handshake_timeout);
      if (!handshake_failure) {
        break;
      }
      failure.emplace(std::move(handshake_failure->error));
      retryable = handshake_failure->retryable;
      impl->session.reset();
      impl->socket = Socket();
    }
    Clock::time_point now = Clock::now();
    if (!retryable || now >= deadline) {
      throw *failure;
    }
    util::debug(impl->subject + ": " + failure->what() + "; retrying");
    if (!util::sleep_unless_interrupted(
            std::min(backoff, std::chrono::duration_cast<milliseconds>(deadline - now)))) {
      throw InterruptedError(impl->subject);
    }
    backoff = std::min(backoff * 2, k_max_backoff);
  }
  LIBSSH2_SESSION* s = impl->session.get();

  // 3. Host key, checked before any credential is offered to the server.
  std::size_t key_length = 0;
  int key_type = 0;
  const char* key = libssh2_session_hostkey(s, &key_length, &key_type);
  if (key == nullptr) {
    impl->fail(Stage::hostkey, "the server sent no host key");
  }
  std::string blob(key, key_length);
  impl->host_key = key_type_of(blob) + " " + util::base64_encode(blob);
  std::string seen = fingerprint_sha256(impl->host_key);
  for (const std::string& revoked : options.revoked_host_keys) {
    std::optional<wire::PublicKeyLine> line = wire::parse_public_key_line(revoked);
    if (line && line->blob == blob) {
      throw SshError(Stage::hostkey, impl->subject,
                     "REVOKED HOST KEY DETECTED: the host presented a key that known_hosts "
                     "marks @revoked",
                     "server presented " + seen + " (" + key_type_of(blob) + ")",
                     "do not use this host until its administrator replaces its host key; check "
                     "the new key's fingerprint with them before connecting again");
    }
  }
  if (pinned && pinned->blob != blob) {
    std::string hint = options.hostkey_hint;
    if (hint.empty()) {
      hint = k_host_key_mismatch_hint;
    }
    throw SshError(Stage::hostkey, impl->subject,
                   "host key does not match the pinned key (possible man-in-the-middle)",
                   "server presented " + seen + " (" + key_type_of(blob) + "), pinned is " +
                       fingerprint_sha256(target.host_key) + " (" + pinned->type + ")",
                   hint);
  }
  if (!pinned && !options.expected_fingerprint.empty() && options.expected_fingerprint != seen) {
    throw SshError(Stage::hostkey, impl->subject,
                   "host key fingerprint does not match the expected one",
                   "server presented " + seen + ", expected " + options.expected_fingerprint,
                   "check the fingerprint the provider reports for this host");
  }

  if (options.host_key_only) {
    return std::unique_ptr<Session>(new Session(std::move(impl)));
  }

  // 4. Authentication: agent first (when asked), then the key file.
  const std::string& user = target.user;
  const unsigned user_length = static_cast<unsigned>(user.size());
  char* methods = libssh2_userauth_list(s, user.c_str(), user_length);
  if (methods == nullptr && libssh2_userauth_authenticated(s) == 0) {
    // No answer at all (e.g. a host going down for a reboot closed the connection): a transport
    // failure, not a refused login, so waits that retry an unreachable host keep retrying.
    impl->fail(Stage::handshake, "cannot ask the server for authentication methods");
  }
  if (methods != nullptr && std::string_view(methods).find("publickey") == std::string_view::npos) {
    throw SshError(Stage::auth, impl->subject,
                   "the server does not accept public key authentication for " + user,
                   std::string("it offers: ") + methods,
                   "enable PubkeyAuthentication in the host's sshd_config");
  }
  bool authenticated = libssh2_userauth_authenticated(s) != 0;
  if (!authenticated && options.use_agent) {
    AgentPtr agent(libssh2_agent_init(s));
    if (agent && libssh2_agent_connect(agent.get()) == 0 &&
        libssh2_agent_list_identities(agent.get()) == 0) {
      libssh2_agent_publickey* identity = nullptr;
      libssh2_agent_publickey* previous = nullptr;
      while (!authenticated && libssh2_agent_get_identity(agent.get(), &identity, previous) == 0) {
        previous = identity;
        std::string identity_blob(reinterpret_cast<const char*>(identity->blob),
                                  identity->blob_len);
        // RSA identities would be signed with SHA-1 and refused; each refusal spends one of
        // the server's MaxAuthTries.
        if (key_type_of(identity_blob) == "ssh-rsa") {
          continue;
        }
        authenticated = libssh2_agent_userauth(agent.get(), user.c_str(), identity) == 0;
      }
    }
    if (!authenticated) {
      util::debug(impl->subject + ": ssh-agent did not authenticate; trying the key file");
    }
  }
  if (!authenticated) {
    const std::string& key_path = target.key_path;
    if (key_path.empty() || !std::filesystem::exists(key_path)) {
      throw SshError(Stage::keyfile, impl->subject, "key file '" + key_path + "' does not exist",
                     "", "pass an existing private key (ssh-keygen -t ed25519 creates one)");
    }
    switch (sniff_key(key_path)) {
      case KeyKind::rsa:
        throw SshError(
            Stage::auth, impl->subject,
            "cannot authenticate as " + user + " with the RSA key '" + key_path + "'",
            "libssh2 1.10 (the version Debian 12 ships) signs RSA keys only with ssh-rsa "
            "(SHA-1), which OpenSSH 8.8 and newer refuse; rsa-sha2-256/512 arrived in libssh2 "
            "1.11",
            "use an ed25519 key instead (ssh-keygen -t ed25519); `gpumachine create --driver "
            "generic --generic-ssh-key " +
                key_path +
                " ...` offers to install its own ed25519 key on the host with this RSA key "
                "(through your OpenSSH client, once)");
      case KeyKind::encrypted:
        throw SshError(Stage::keyfile, impl->subject,
                       "key file '" + key_path + "' is protected by a passphrase", "",
                       "gpumachine cannot prompt for it; load it into ssh-agent (ssh-add " +
                           key_path + ") or use an unencrypted machine key");
      case KeyKind::ed25519:
      case KeyKind::other:
        break;
    }
    // The public half is derived from the private key (OpenSSL backend), so a missing or stale
    // .pub next to it does not matter.
    int rc = libssh2_userauth_publickey_fromfile_ex(s, user.c_str(), user_length, nullptr,
                                                    key_path.c_str(), nullptr);
    if (rc == LIBSSH2_ERROR_FILE) {
      impl->fail(Stage::keyfile, "cannot read the key file '" + key_path + "'",
                 "check that it is an unencrypted OpenSSH or PEM private key");
    }
    if (rc != 0 && peer_closed(impl->socket.get())) {
      // The connection broke before the server answered (a host going down for a reboot):
      // not a refusal. libssh2 1.10 reports both as PUBLICKEY_UNVERIFIED; a refusing server
      // keeps the connection open for the next method.
      impl->fail(Stage::handshake, "lost the connection while authenticating as " + user);
    }
    if (rc != 0) {
      impl->fail(Stage::auth,
                 "authentication as " + user + " with key '" + key_path + "' was refused",
                 "check that the matching public key is in ~" + user + "/.ssh/authorized_keys on " +
                     target.host +
                     " and that the user name is "
                     "right");
    }
  }

  // 5. Keepalive and the timeout for the blocking calls that follow.
  if (options.keepalive_seconds > 0) {
    libssh2_keepalive_config(s, 1, static_cast<unsigned>(options.keepalive_seconds));
  }
  libssh2_session_set_timeout(s, static_cast<long>(k_blocking_timeout.count()));
  util::debug(impl->subject + ": connected, host key " + seen);
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

}  // namespace gm::ssh
