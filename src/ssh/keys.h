// Key pairs gpumachine generates for machines (and instance host keys): ed25519, made with
// OpenSSL, written in OpenSSH's own formats so plain `ssh -i` and sshd accept them.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace gm::ssh {

struct KeyPair {
  std::string private_openssh;  ///< "-----BEGIN OPENSSH PRIVATE KEY-----" PEM, unencrypted.
  std::string public_openssh;   ///< "ssh-ed25519 AAAA... comment"
};

/// A fresh ed25519 key pair.
KeyPair generate_ed25519(std::string_view comment);

/// Writes <path> (0600) and <path>.pub (0644) atomically.
void write_key_pair(const std::filesystem::path& private_path, const KeyPair& pair);

}  // namespace gm::ssh
