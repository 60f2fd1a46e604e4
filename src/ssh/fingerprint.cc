#include "gm/error.h"
#include "ssh/session.h"
#include "ssh/wire.h"
#include "util/crypto.h"

namespace gm::ssh {

std::string fingerprint_sha256(std::string_view public_key_line) {
  std::optional<wire::PublicKeyLine> key = wire::parse_public_key_line(public_key_line);
  if (!key) {
    throw Error("public key", "not an OpenSSH public key line",
                std::string(public_key_line.substr(0, 40)));
  }
  // ssh-keygen -l prints the digest in base64 without '=' padding.
  std::string digest = util::base64_encode(util::sha256(key->blob));
  while (!digest.empty() && digest.back() == '=') {
    digest.pop_back();
  }
  return "SHA256:" + digest;
}

}  // namespace gm::ssh
