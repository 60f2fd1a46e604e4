// This computer's public address, for the SSH rule a driver puts in the cloud's firewall.
// Provider-neutral: every driver that opens SSH to "where gpumachine runs" uses it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace gm::drivers {

/// The canonical form of an IPv4 CIDR block (host bits cleared: 203.0.113.5/24 gives
/// 203.0.113.0/24); nullopt when it is not one.
std::optional<std::string> cidr_network(const std::string& text);

/// The caller's public address as a /32, for the SSH ingress rule: $GPUMACHINE_CALLER_IP when
/// set (tests), else an HTTPS lookup (checkip.amazonaws.com). Throws Error with a hint to pass
/// \a flag (the driver's --<driver>-ssh-cidr) when the lookup fails.
std::string caller_cidr(std::string_view flag);

}  // namespace gm::drivers
