// The ec2 driver's own typed config, kept in record.driver_config (which only this folder reads):
// what the flags chose, what the checks before create resolved, and how far create got.
#pragma once

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace gm::drivers::ec2 {

/// One --ec2-open-port.
struct OpenPort {
  int port = 0;
  std::string protocol = "tcp";

  bool operator==(const OpenPort&) const = default;
};

/// A RunInstances whose answer was not seen yet: repeated exactly (zone, ClientToken) on resume.
/// An empty token: none.
struct PendingLaunch {
  std::string zone;
  std::string token;
  std::string at;  ///< RFC 3339, when it was sent

  explicit operator bool() const { return !token.empty(); }
};

struct Ec2Config {
  // The flags (configure()).
  std::string image;  ///< --ec2-image as given: an alias, an ami-, or empty (the default)
  int root_size = 100;
  std::string volume_type = "gp3";
  std::string zone;
  std::string subnet_id;
  std::string vpc_id;
  std::vector<std::string> security_group_ids;  ///< the user's own; empty: gpumachine makes one
  std::string ssh_cidr;                         ///< the range SSH is allowed from
  std::vector<OpenPort> open_ports;
  std::string iam_instance_profile;
  std::map<std::string, std::string> tags;  ///< --ec2-tag
  std::string user_data_file;
  std::string ssh_user;
  std::string keypair_name;  ///< --ec2-keypair-name: the user's own pair

  // Resolved before anything is made (preflight()); image_id set means it ran.
  std::vector<std::string> zones;
  std::map<std::string, std::string> zone_subnets;
  std::string image_alias;
  std::string image_id;
  std::string image_name;
  std::string root_device;
  std::string architecture;
  bool efa = false;  ///< the type can have an EFA interface (a cluster's nodes get one)

  // How far create got.
  std::string home_id;    ///< gpumachine:home of what it makes
  std::string tagged_at;  ///< gpumachine:created of what it makes; set once, before any launch
  std::string key_name;   ///< the key pair gpumachine imported
  std::string sg_name;
  std::string sg_created_at;
  bool sg_ingress_done = false;
  std::vector<std::string> client_tokens;  ///< every RunInstances ClientToken sent
  PendingLaunch pending_launch;
  std::vector<std::string> zone_attempts;  ///< set when every zone refused the launch
  std::string instance_id;
  std::string host_key_next;  ///< a host key made on the host, not yet seen in use
  bool host_key_replaced = false;
};

NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(OpenPort, port, protocol)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PendingLaunch, zone, token, at)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(
    Ec2Config, image, root_size, volume_type, zone, subnet_id, vpc_id, security_group_ids, ssh_cidr,
    open_ports, iam_instance_profile, tags, user_data_file, ssh_user, keypair_name, zones,
    zone_subnets, image_alias, image_id, image_name, root_device, architecture, efa, home_id,
    tagged_at, key_name, sg_name, sg_created_at, sg_ingress_done, client_tokens, pending_launch,
    zone_attempts, instance_id, host_key_next, host_key_replaced)

}  // namespace gm::drivers::ec2
