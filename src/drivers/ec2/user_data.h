// The instance's user data: a #cloud-config part that installs the SSH host key gpumachine
// generated (so the first connection is already verified: no trust on first use), merged with the
// user's own --ec2-user-data as multi-part MIME.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace gm::drivers::ec2 {

/// What goes into the user data.
struct UserDataParts {
  std::string host_private_key;              ///< OpenSSH PEM of the instance's ed25519 host key
  std::string host_public_key;               ///< "ssh-ed25519 AAAA..."
  std::vector<std::string> authorized_keys;  ///< extra login keys (with --ec2-keypair-name)
  std::string user_data;  ///< the user's own document (script or cloud-config); may be empty
  /// A shell script that starts the driver/Docker/toolkit installation during boot
  /// (provision::cloud_init_prelude); empty when create will not provision.
  std::string provision_prelude;
  std::string boundary;  ///< MIME boundary; deterministic so a resumed launch sends the same bytes
};

/// The #cloud-config document alone.
std::string cloud_config(const UserDataParts& parts);
/// The user data to send (before base64): the cloud-config alone, or multi-part MIME with the
/// user's document as a second part (text/x-shellscript for "#!", else its #-header's type).
std::string render_user_data(const UserDataParts& parts);

/// EC2 takes at most this many bytes of user data, counted before base64.
inline constexpr std::size_t k_user_data_limit = 16384;

/// What RunInstances gets (before base64): `rendered` as it is when it fits EC2's limit, else
/// gzip-compressed (cloud-init inflates gzip user data before reading it). Throws, naming
/// `subject` and the user's --ec2-user-data file, when even that does not fit.
std::string user_data_for_ec2(const std::string& rendered, const std::string& subject);

}  // namespace gm::drivers::ec2
