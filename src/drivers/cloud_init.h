// The cloud-init user data every cloud-init driver sends: a #cloud-config part that installs the
// SSH host key gpumachine generated (so the first connection is already verified: no trust on
// first use), merged with the provisioning prelude and the user's own user-data file as
// multi-part MIME. Each driver applies its cloud's size limit (and encoding) to the result.
#pragma once

#include <string>
#include <vector>

namespace gm::drivers {

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

}  // namespace gm::drivers
