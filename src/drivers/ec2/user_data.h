// EC2's user data: the shared cloud-init document (drivers/cloud_init.h), gzip-compressed when it
// exceeds EC2's limit.
#pragma once

#include <cstddef>
#include <string>

#include "drivers/cloud_init.h"

namespace gm::drivers::ec2 {

/// EC2 takes at most this many bytes of user data, counted before base64.
inline constexpr std::size_t k_user_data_limit = 16384;

/// What RunInstances gets (before base64): `rendered` as it is when it fits EC2's limit, else
/// gzip-compressed (cloud-init inflates gzip user data before reading it). Throws, naming
/// `subject` and the user's --ec2-user-data file, when even that does not fit.
std::string user_data_for_ec2(const std::string& rendered, const std::string& subject);

}  // namespace gm::drivers::ec2
