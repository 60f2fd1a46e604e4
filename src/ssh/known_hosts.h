// Reading the user's OpenSSH known_hosts (plain and hashed entries, [host]:port) and writing
// the one-line pinned known_hosts file each machine keeps.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace gm::ssh {

/// The key ("type base64") known for host:port in an OpenSSH known_hosts file, preferring
/// ed25519; nullopt when the file or a matching entry is absent. Skips @revoked/@cert-authority.
std::optional<std::string> find_known_host(const std::filesystem::path& file, std::string_view host,
                                           int port);

/// One known_hosts line for host:port ("host key" or "[host]:port key").
std::string known_hosts_line(std::string_view host, int port, std::string_view key);

}  // namespace gm::ssh
