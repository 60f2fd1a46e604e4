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

/// Writes <path>.pub (0644), then <path> (0600), each atomically: the private key is there only
/// once the pair is whole.
void write_key_pair(const std::filesystem::path& private_path, const KeyPair& pair);

/// Makes a fresh pair at <path> unless both files are there; a half-written pair (a kill between
/// the two files) is made again. Returns true when it made one.
bool ensure_key_pair(const std::filesystem::path& private_path, std::string_view comment);

}  // namespace gm::ssh
