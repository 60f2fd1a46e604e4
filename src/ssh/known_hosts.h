// Reading the user's OpenSSH known_hosts (plain and hashed entries, [host]:port) and writing
// the one-line pinned known_hosts file each machine keeps.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace gm::ssh {

/// What an OpenSSH known_hosts file says about one host:port.
struct KnownHost {
  /// The key ("type base64") known for it, preferring ed25519; nullopt when none.
  std::optional<std::string> key;
  /// Keys of matching @revoked lines: never to be accepted, whatever else says so.
  std::vector<std::string> revoked;
  /// A matching @cert-authority line: the user trusts host certificates signed by a CA, which
  /// gpumachine cannot check (libssh2 1.10 does not negotiate OpenSSH host certificates).
  bool cert_authority = false;
};

/// Reads host:port's entries (plain and hashed patterns, negation, wildcards, markers) from an
/// OpenSSH known_hosts file; all empty when the file is absent.
KnownHost lookup_known_host(const std::filesystem::path& file, std::string_view host, int port);

/// lookup_known_host(...).key.
std::optional<std::string> find_known_host(const std::filesystem::path& file, std::string_view host,
                                           int port);

/// One known_hosts line for host:port ("host key" or "[host]:port key").
std::string known_hosts_line(std::string_view host, int port, std::string_view key);

}  // namespace gm::ssh
