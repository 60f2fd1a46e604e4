// The narrow, typed slice of the EC2 and SSM APIs the ec2 driver uses (Docker Machine's
// ec2client.go idea): each call builds its Query parameters, goes through aws::AwsClient (and so
// through THE retry policy), and reads the answer by local element names into plain structs.
#pragma once

#include "aws/client.h"

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gm::drivers::ec2 {

/// Tags as EC2 carries them.
using Tags = std::vector<std::pair<std::string, std::string>>;

/// The fields of a DescribeInstances item the driver needs.
struct Instance {
  std::string id;
  std::string state;  ///< pending, running, shutting-down, terminated, stopping, stopped
  std::string instance_type;
  std::string availability_zone;
  std::string public_ip;  ///< empty until assigned
  std::string private_ip;
  int launch_index = 0;  ///< amiLaunchIndex: the instance's place in its RunInstances
  std::string launch_time;
  std::string client_token;
  std::string state_reason;  ///< stateReason/message, empty when none
  std::map<std::string, std::string> tags;
};

/// What DescribeInstanceTypes says about a type.
struct InstanceTypeInfo {
  std::string name;
  std::string architecture;  ///< x86_64 or arm64
  int vcpus = 0;
  long memory_mib = 0;
  int gpu_count = 0;
  std::string gpu_name;  ///< "T4"; empty for CPU types
  long gpu_memory_mib = 0;
  bool efa = false;  ///< networkInfo/efaSupported: it can have an EFA interface
};

/// What DescribeImages says about an image.
struct ImageInfo {
  std::string id;
  std::string name;
  std::string architecture;
  std::string root_device_name;
  std::string creation_date;
};

/// A tagged resource found by a scan (gc).
struct TaggedResource {
  std::string kind;  ///< instance, volume, security-group, key-pair
  std::string id;
  std::string region;
  std::string state;
  std::string detail;   ///< instance type, volume size, group name...
  std::string created;  ///< launchTime / createTime (RFC 3339); empty for security groups
  std::map<std::string, std::string> tags;
};

/// Typed EC2/SSM calls for one region. Not thread-safe (one per thread, like AwsClient).
class Ec2Api {
 public:
  /// A client for \a region with the default credentials chain and endpoints.
  explicit Ec2Api(std::string region);
  /// Wraps an existing client (tests).
  explicit Ec2Api(std::unique_ptr<aws::AwsClient> client);

  const std::string& region() const { return m_client->region(); }
  aws::AwsClient& client() { return *m_client; }

  /// DescribeInstanceTypes for one type; throws CloudError (InvalidInstanceType) when unknown.
  InstanceTypeInfo describe_instance_type(const std::string& type);
  /// AZs (sorted) that offer \a type, per DescribeInstanceTypeOfferings.
  std::vector<std::string> zones_offering(const std::string& type);
  /// The first SSM parameter of \a names that exists (GetParameters, one call): its value.
  std::optional<std::string> ssm_first(const std::vector<std::string>& names);
  /// DescribeImages by id; nullopt when EC2 says InvalidAMIID.NotFound.
  std::optional<ImageInfo> describe_image(const std::string& image_id);
  /// The newest image by owner and name pattern (DescribeImages fallback when SSM fails).
  std::optional<ImageInfo> newest_image(const std::string& owner, const std::string& name_glob,
                                        const std::string& architecture);

  /// DescribeInstances with these filters (instance-id etc.), every page.
  std::vector<Instance> describe_instances(
      const std::vector<std::pair<std::string, std::vector<std::string>>>& filters);

  /// Raw call (for the driver's own parameter sets).
  aws::QueryResult call(std::string_view action, const aws::QueryParams& params,
                        const aws::CallOptions& options = {});

  /// Every instance, volume, security group and key pair carrying a tag key \a tag_key.
  std::vector<TaggedResource> tagged_resources(const std::string& tag_key);

 private:
  std::unique_ptr<aws::AwsClient> m_client;
};

/// Reads one DescribeInstances / RunInstances instance item.
Instance parse_instance(const pugi::xml_node& item);
/// The instances of a RunInstances answer or of a DescribeInstances page.
std::vector<Instance> parse_instances(const pugi::xml_node& root);

/// True for the capacity-like codes that mean "try another zone" (InsufficientInstanceCapacity,
/// Unsupported, Insufficient*Capacity, InsufficientFreeAddressesInSubnet).
bool is_zone_error(const std::string& code);
/// True when \a code says the thing is already gone ("*.NotFound").
bool is_not_found(const std::string& code);

}  // namespace gm::drivers::ec2
