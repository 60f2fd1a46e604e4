#include "drivers/ec2/ec2_api.h"

#include "aws/xml.h"
#include "gm/error.h"

#include <algorithm>

namespace gm::drivers::ec2 {

namespace x = aws::xml;

namespace {

std::map<std::string, std::string> read_tags(const pugi::xml_node& node) {
  std::map<std::string, std::string> tags;
  for (const pugi::xml_node& t : x::items(node, "tagSet")) {
    tags[x::text(t, "key")] = x::text(t, "value");
  }
  return tags;
}

aws::ClientOptions options_for(std::string region) {
  aws::ClientOptions options;
  options.region = std::move(region);
  return options;
}

}  // namespace

Ec2Api::Ec2Api(std::string region)
    : m_client(std::make_unique<aws::AwsClient>(options_for(std::move(region)))) {}

Ec2Api::Ec2Api(std::unique_ptr<aws::AwsClient> client) : m_client(std::move(client)) {}

aws::QueryResult Ec2Api::call(std::string_view action, const aws::QueryParams& params,
                              const aws::CallOptions& options) {
  return m_client->call("ec2", action, params, options);
}

Instance parse_instance(const pugi::xml_node& item) {
  Instance i;
  i.id = x::text(item, "instanceId");
  i.state = x::text(item, "instanceState/name");
  if (i.state.empty()) {
    // Older answers carry only the code; the high byte is internal (use code & 0xFF).
    static const std::map<int, std::string> k_codes = {{0, "pending"},        {16, "running"},
                                                       {32, "shutting-down"}, {48, "terminated"},
                                                       {64, "stopping"},      {80, "stopped"}};
    std::string code = x::text(item, "instanceState/code");
    if (!code.empty()) {
      auto it = k_codes.find(std::stoi(code) & 0xFF);
      i.state = it == k_codes.end() ? "" : it->second;
    }
  }
  i.instance_type = x::text(item, "instanceType");
  i.availability_zone = x::text(item, "placement/availabilityZone");
  i.public_ip = x::text(item, "ipAddress");
  i.private_ip = x::text(item, "privateIpAddress");
  i.launch_index = std::atoi(x::text(item, "amiLaunchIndex").c_str());
  i.launch_time = x::text(item, "launchTime");
  i.client_token = x::text(item, "clientToken");
  i.state_reason = x::text(item, "stateReason/message");
  i.tags = read_tags(item);
  return i;
}

std::vector<Instance> parse_instances(const pugi::xml_node& root) {
  std::vector<Instance> out;
  if (x::child(root, "reservationSet")) {
    for (const pugi::xml_node& r : x::items(root, "reservationSet")) {
      for (const pugi::xml_node& i : x::items(r, "instancesSet")) {
        out.push_back(parse_instance(i));
      }
    }
  } else {
    for (const pugi::xml_node& i : x::items(root, "instancesSet")) {
      out.push_back(parse_instance(i));
    }
  }
  return out;
}

bool is_zone_error(const std::string& code) {
  return code == "InsufficientInstanceCapacity" || code == "Unsupported" ||
         code == "InsufficientHostCapacity" || code == "InsufficientAddressCapacity" ||
         code == "InsufficientVolumeCapacity" || code == "InsufficientFreeAddressesInSubnet" ||
         code == "InsufficientCapacity";
}

bool is_not_found(const std::string& code) {
  return code.ends_with(".NotFound");
}

InstanceTypeInfo Ec2Api::describe_instance_type(const std::string& type) {
  aws::QueryParams p;
  p.set("InstanceType.1", type);
  aws::QueryResult r = call("DescribeInstanceTypes", p);
  std::vector<pugi::xml_node> items = x::items(r.root(), "instanceTypeSet");
  if (items.empty()) {
    throw CloudError("DescribeInstanceTypes", 400, "InvalidInstanceType",
                     "The following supplied instance types do not exist: [" + type + "]",
                     r.request_id);
  }
  const pugi::xml_node& t = items.front();
  InstanceTypeInfo info;
  info.name = x::text(t, "instanceType");
  std::vector<pugi::xml_node> archs = x::items(t, "processorInfo/supportedArchitectures");
  info.architecture = archs.empty() ? "x86_64" : archs.front().text().as_string();
  info.vcpus = std::atoi(x::text(t, "vCpuInfo/defaultVCpus").c_str());
  info.memory_mib = std::atol(x::text(t, "memoryInfo/sizeInMiB").c_str());
  for (const pugi::xml_node& g : x::items(t, "gpuInfo/gpus")) {
    info.gpu_count += std::atoi(x::text(g, "count").c_str());
    info.gpu_name = x::text(g, "name");
    info.gpu_memory_mib = std::atol(x::text(g, "memoryInfo/sizeInMiB").c_str());
  }
  info.efa = x::text(t, "networkInfo/efaSupported") == "true";
  return info;
}

std::vector<std::string> Ec2Api::zones_offering(const std::string& type) {
  std::vector<std::string> zones;
  std::string token;
  do {
    aws::QueryParams p;
    p.set("LocationType", "availability-zone");
    p.add_filter("instance-type", {type});
    if (!token.empty()) {
      p.set("NextToken", token);
    }
    aws::QueryResult r = call("DescribeInstanceTypeOfferings", p);
    for (const pugi::xml_node& o : x::items(r.root(), "instanceTypeOfferingSet")) {
      zones.push_back(x::text(o, "location"));
    }
    token = x::text(r.root(), "nextToken");
  } while (!token.empty());
  std::sort(zones.begin(), zones.end());
  return zones;
}

std::optional<std::string> Ec2Api::ssm_first(const std::vector<std::string>& names) {
  nlohmann::json body = {{"Names", names}};
  nlohmann::json r = m_client->call_json("ssm", "AmazonSSM.GetParameters", body);
  std::map<std::string, std::string> found;
  if (r.contains("Parameters") && r["Parameters"].is_array()) {
    for (const auto& p : r["Parameters"]) {
      found[p.value("Name", "")] = p.value("Value", "");
    }
  }
  for (const std::string& n : names) {
    if (auto it = found.find(n); it != found.end() && !it->second.empty()) {
      return it->second;
    }
  }
  return std::nullopt;
}

namespace {
ImageInfo read_image(const pugi::xml_node& i) {
  return {.id = x::text(i, "imageId"),
          .name = x::text(i, "name"),
          .architecture = x::text(i, "architecture"),
          .root_device_name = x::text(i, "rootDeviceName"),
          .creation_date = x::text(i, "creationDate")};
}
}  // namespace

std::optional<ImageInfo> Ec2Api::describe_image(const std::string& image_id) {
  aws::QueryParams p;
  p.set("ImageId.1", image_id);
  try {
    aws::QueryResult r = call("DescribeImages", p);
    std::vector<pugi::xml_node> items = x::items(r.root(), "imagesSet");
    if (items.empty()) {
      return std::nullopt;
    }
    return read_image(items.front());
  } catch (const CloudError& e) {
    if (e.code() == "InvalidAMIID.NotFound" || e.code() == "InvalidAMIID.Unavailable") {
      return std::nullopt;
    }
    throw;
  }
}

std::optional<ImageInfo> Ec2Api::newest_image(const std::string& owner,
                                              const std::string& name_glob,
                                              const std::string& architecture) {
  aws::QueryParams p;
  p.set("Owner.1", owner);
  p.add_filter("name", {name_glob});
  p.add_filter("architecture", {architecture});
  p.add_filter("state", {"available"});
  aws::QueryResult r = call("DescribeImages", p);
  std::optional<ImageInfo> best;
  for (const pugi::xml_node& i : x::items(r.root(), "imagesSet")) {
    ImageInfo info = read_image(i);
    if (!best || info.creation_date > best->creation_date) {
      best = info;
    }
  }
  return best;
}

std::vector<Instance> Ec2Api::describe_instances(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& filters) {
  std::vector<Instance> out;
  std::string token;
  do {
    aws::QueryParams p;
    for (const auto& [name, values] : filters) {
      p.add_filter(name, values);
    }
    if (!token.empty()) {
      p.set("NextToken", token);
    }
    aws::QueryResult r = call("DescribeInstances", p);
    for (Instance& i : parse_instances(r.root())) {
      out.push_back(std::move(i));
    }
    token = x::text(r.root(), "nextToken");
  } while (!token.empty());
  return out;
}

std::vector<TaggedResource> Ec2Api::tagged_resources(const std::string& tag_key) {
  std::vector<TaggedResource> out;
  for (const Instance& i : describe_instances({{"tag-key", {tag_key}}})) {
    out.push_back({.kind = "instance",
                   .id = i.id,
                   .region = region(),
                   .state = i.state,
                   .detail = i.instance_type,
                   .created = i.launch_time,
                   .tags = i.tags});
  }
  auto scan = [&](std::string_view action, const char* set, const char* kind, const char* id_key,
                  const char* state_key, const char* detail_key, const char* time_key) {
    std::string token;
    do {
      aws::QueryParams p;
      p.add_filter("tag-key", {tag_key});
      if (!token.empty()) {
        p.set("NextToken", token);
      }
      aws::QueryResult r = call(action, p);
      for (const pugi::xml_node& item : x::items(r.root(), set)) {
        out.push_back({.kind = kind,
                       .id = x::text(item, id_key),
                       .region = region(),
                       .state = state_key ? x::text(item, state_key) : "",
                       .detail = detail_key ? x::text(item, detail_key) : "",
                       .created = time_key ? x::text(item, time_key) : "",
                       .tags = read_tags(item)});
      }
      token = x::text(r.root(), "nextToken");
    } while (!token.empty());
  };
  scan("DescribeVolumes", "volumeSet", "volume", "volumeId", "status", "size", "createTime");
  scan("DescribeSecurityGroups", "securityGroupInfo", "security-group", "groupId", nullptr,
       "groupName", nullptr);
  scan("DescribeKeyPairs", "keySet", "key-pair", "keyName", nullptr, "keyType", "createTime");
  return out;
}

}  // namespace gm::drivers::ec2
