#include "ssh/keys.h"

#include "gm/error.h"
#include "ssh/wire.h"
#include "util/crypto.h"
#include "util/fs.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstdint>
#include <memory>

namespace gm::ssh {

namespace {

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};

constexpr std::string_view k_key_type = "ssh-ed25519";
constexpr std::size_t k_pem_columns = 70;

/// std::string that is wiped when destroyed (holds private key material).
struct SecretString {
  std::string value;
  ~SecretString() { OPENSSL_cleanse(value.data(), value.size()); }
};

[[noreturn]] void fail(std::string_view what) {
  throw Error("ed25519 key generation", std::string(what), "OpenSSL error");
}

}  // namespace

KeyPair generate_ed25519(std::string_view comment) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter> ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1) {
    fail("cannot set up the key generator");
  }
  EVP_PKEY* raw_key = nullptr;
  if (EVP_PKEY_keygen(ctx.get(), &raw_key) != 1) {
    fail("cannot generate a key");
  }
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(raw_key);

  SecretString priv;
  std::string pub(32, '\0');
  priv.value.assign(32, '\0');
  std::size_t priv_len = priv.value.size();
  std::size_t pub_len = pub.size();
  if (EVP_PKEY_get_raw_private_key(key.get(), reinterpret_cast<unsigned char*>(priv.value.data()),
                                   &priv_len) != 1 ||
      EVP_PKEY_get_raw_public_key(key.get(), reinterpret_cast<unsigned char*>(pub.data()),
                                  &pub_len) != 1 ||
      priv_len != 32 || pub_len != 32) {
    fail("cannot read the raw key");
  }

  std::string public_blob;
  wire::put_string(public_blob, k_key_type);
  wire::put_string(public_blob, pub);

  // PROTOCOL.key (OpenSSH): the private section starts with a random check integer written
  // twice, holds the ed25519 secret as seed||public (64 bytes), and is padded with 1,2,3,... to
  // the cipher block size (8 for "none").
  SecretString section;
  std::uint32_t check = 0;
  std::string random = util::random_bytes(4);
  for (unsigned char c : random) {
    check = (check << 8) | c;
  }
  wire::put_u32(section.value, check);
  wire::put_u32(section.value, check);
  wire::put_string(section.value, k_key_type);
  wire::put_string(section.value, pub);
  SecretString secret{priv.value + pub};
  wire::put_string(section.value, secret.value);
  wire::put_string(section.value, comment);
  for (char pad = 1; section.value.size() % 8 != 0; ++pad) {
    section.value += pad;
  }

  SecretString body;
  body.value.append("openssh-key-v1", 15);  // includes the terminating NUL
  wire::put_string(body.value, "none");     // cipher
  wire::put_string(body.value, "none");     // kdf
  wire::put_string(body.value, "");         // kdf options
  wire::put_u32(body.value, 1);             // number of keys
  wire::put_string(body.value, public_blob);
  wire::put_string(body.value, section.value);

  SecretString encoded{util::base64_encode(body.value)};
  KeyPair pair;
  pair.private_openssh = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (std::size_t i = 0; i < encoded.value.size(); i += k_pem_columns) {
    pair.private_openssh.append(encoded.value, i, k_pem_columns);
    pair.private_openssh += '\n';
  }
  pair.private_openssh += "-----END OPENSSH PRIVATE KEY-----\n";
  pair.public_openssh = std::string(k_key_type) + " " + util::base64_encode(public_blob);
  if (!comment.empty()) {
    pair.public_openssh += " ";
    pair.public_openssh += comment;
  }
  return pair;
}

void write_key_pair(const std::filesystem::path& private_path, const KeyPair& pair) {
  std::filesystem::path public_path = private_path;
  public_path += ".pub";
  util::write_file_atomic(public_path, pair.public_openssh + "\n", 0644);
  util::write_file_atomic(private_path, pair.private_openssh, 0600);
}

bool ensure_key_pair(const std::filesystem::path& private_path, std::string_view comment) {
  std::filesystem::path public_path = private_path;
  public_path += ".pub";
  if (std::filesystem::exists(private_path) && std::filesystem::exists(public_path)) {
    return false;
  }
  write_key_pair(private_path, generate_ed25519(comment));
  return true;
}

}  // namespace gm::ssh
