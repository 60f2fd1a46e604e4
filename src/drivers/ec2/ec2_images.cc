// The checks before anything is made: credentials, the instance type, the image (an alias
// resolved through SSM or a name search), the zones and subnets.
#include "drivers/ec2/ec2_internal.h"

#include "aws/credentials.h"
#include "aws/xml.h"
#include "gm/error.h"

namespace gm::drivers::ec2 {

namespace {

bool is_gpu_type(const InstanceTypeInfo& info) {
  return info.gpu_count > 0;
}

/// SSM parameter names for an --ec2-image alias, best first; \a arch is x86_64 or arm64.
std::vector<std::string> ssm_names(const std::string& alias, const std::string& arch) {
  std::string deb = arch == "arm64" ? "arm64" : "amd64";
  const std::string ubuntu = "/aws/service/canonical/ubuntu/server/";
  const std::string dl = "/aws/service/deeplearning/ami/" + arch + "/base-oss-nvidia-driver-gpu-";
  if (alias == "ubuntu-24.04") {
    return {ubuntu + "24.04/stable/current/" + deb + "/hvm/ebs-gp3/ami-id"};
  }
  if (alias == "ubuntu-22.04") {
    return {ubuntu + "22.04/stable/current/" + deb + "/hvm/ebs-gp3/ami-id",
            ubuntu + "22.04/stable/current/" + deb + "/hvm/ebs-gp2/ami-id"};
  }
  if (alias == "dlami-ubuntu-24.04") {
    return {dl + "ubuntu-24.04/latest/ami-id"};
  }
  if (alias == "dlami-ubuntu-22.04") {
    return {dl + "ubuntu-22.04/latest/ami-id"};
  }
  return {dl + "amazon-linux-2023/latest/ami-id"};
}

/// DescribeImages fallback when SSM is unavailable: {owner, name glob}.
std::pair<std::string, std::string> image_search(const std::string& alias,
                                                 const std::string& arch) {
  std::string deb = arch == "arm64" ? "arm64" : "amd64";
  if (alias == "ubuntu-24.04") {
    return {"099720109477", "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-" + deb + "-server-*"};
  }
  if (alias == "ubuntu-22.04") {
    return {"099720109477", "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-" + deb + "-server-*"};
  }
  const std::string dl = "Deep Learning Base OSS Nvidia Driver GPU AMI ";
  if (alias == "dlami-ubuntu-24.04") {
    return {"amazon", dl + "(Ubuntu 24.04) *"};
  }
  if (alias == "dlami-ubuntu-22.04") {
    return {"amazon", dl + "(Ubuntu 22.04) *"};
  }
  return {"amazon", dl + "(Amazon Linux 2023) *"};
}

/// The login user an image's family uses.
std::string default_user_for(const std::string& alias, const std::string& image_name) {
  if (alias.find("al2023") != std::string::npos || image_name.find("al2023") != std::string::npos ||
      image_name.find("Amazon Linux") != std::string::npos ||
      image_name.find("amzn") != std::string::npos) {
    return "ec2-user";
  }
  return "ubuntu";
}

}  // namespace

void Ec2Driver::preflight(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  Ec2Config& cfg = m_cfg;
  host.phase("checking credentials, image and instance type in " + api.region());
  // Credentials first, so a missing profile is reported as that and not as a failed call.
  aws::default_credentials();
  std::string type = record.size.instance_type;
  InstanceTypeInfo info;
  try {
    info = api.describe_instance_type(type);
  } catch (const CloudError& e) {
    if (e.code() == "InvalidInstanceType" || e.code() == "InvalidParameterValue") {
      throw UsageError("--ec2-instance-type '" + type + "'",
                       "not an instance type in " + api.region(),
                       "list them with `aws ec2 describe-instance-types`; e.g. g4dn.xlarge, "
                       "g5.xlarge, g6.xlarge, t3.medium");
    }
    throw;
  }
  std::string image = cfg.image;
  std::string alias =
      image.empty() ? (is_gpu_type(info) ? "dlami-ubuntu-24.04" : "ubuntu-24.04") : image;
  std::string image_id;
  if (image.starts_with("ami-")) {
    image_id = image;
  } else {
    try {
      image_id = api.ssm_first(ssm_names(alias, info.architecture)).value_or("");
    } catch (const CloudError& e) {
      host.debug("ssm: " + std::string(e.what()) + "; falling back to DescribeImages");
    }
    if (image_id.empty()) {
      auto [owner, glob] = image_search(alias, info.architecture);
      if (auto found = api.newest_image(owner, glob, info.architecture)) {
        image_id = found->id;
      }
    }
    if (image_id.empty()) {
      throw UsageError("--ec2-image " + alias,
                       "no " + info.architecture + " image found in " + api.region(),
                       "pass an ami- id with --ec2-image");
    }
  }
  std::optional<ImageInfo> img = api.describe_image(image_id);
  if (!img) {
    throw UsageError(
        "--ec2-image '" + image_id + "'", "no such image in " + api.region(),
        "AMI ids are per region; use an alias such as ubuntu-24.04, or an id from " + api.region());
  }
  if (!img->architecture.empty() && img->architecture != info.architecture) {
    throw UsageError("--ec2-image '" + image_id + "'",
                     "is " + img->architecture + " but " + type + " is " + info.architecture,
                     "pick an image for " + info.architecture + " or another instance type");
  }
  std::string subnet = cfg.subnet_id;
  std::string vpc = cfg.vpc_id;
  nlohmann::json zone_subnets = nlohmann::json::object();
  if (!subnet.empty()) {
    aws::QueryParams p;
    p.set("SubnetId.1", subnet);
    aws::QueryResult r = api.call("DescribeSubnets", p);
    auto items = aws::xml::items(r.root(), "subnetSet");
    if (items.empty()) {
      throw UsageError("--ec2-subnet-id '" + subnet + "'", "no such subnet in " + api.region(), "");
    }
    cfg.vpc_id = aws::xml::text(items.front(), "vpcId");
  } else if (!vpc.empty()) {
    aws::QueryParams p;
    p.add_filter("vpc-id", {vpc});
    aws::QueryResult r = api.call("DescribeSubnets", p);
    for (const auto& s : aws::xml::items(r.root(), "subnetSet")) {
      std::string az = aws::xml::text(s, "availabilityZone");
      if (!zone_subnets.contains(az)) {
        zone_subnets[az] = aws::xml::text(s, "subnetId");
      }
    }
    if (zone_subnets.empty()) {
      throw UsageError(
          "--ec2-vpc-id '" + vpc + "'", "has no subnets in " + api.region(),
          "create a subnet with a route to an internet gateway, or pass --ec2-subnet-id");
    }
  }
  cfg.zone_subnets = zone_subnets;
  std::vector<std::string> zones;
  if (subnet.empty()) {
    zones = api.zones_offering(type);
    if (!vpc.empty()) {
      std::erase_if(zones, [&](const std::string& z) { return !zone_subnets.contains(z); });
    }
    std::string wanted = cfg.zone;
    if (!wanted.empty()) {
      if (std::find(zones.begin(), zones.end(), wanted) == zones.end()) {
        throw UsageError("--ec2-zone " + wanted, type + " is not offered there",
                         zones.empty() ? "no zone of " + api.region() + " offers it"
                                       : "zones that offer it: " + join(zones, ", "));
      }
      zones = {wanted};
    }
    if (zones.empty()) {
      throw UsageError("--ec2-instance-type '" + type + "'",
                       "not offered in any zone of " + api.region(),
                       "try another region with --ec2-region");
    }
  }
  cfg.zones = zones;
  cfg.image_alias = image.starts_with("ami-") ? "" : alias;
  cfg.image_id = image_id;
  cfg.image_name = img->name;
  cfg.root_device = img->root_device_name.empty() ? "/dev/sda1" : img->root_device_name;
  cfg.architecture = info.architecture;
  cfg.efa = info.efa;
  if (cfg.ssh_user.empty()) {
    record.ssh.user = default_user_for(alias, img->name);
  }
  record.size.vcpus = info.vcpus;
  record.size.memory_mib = info.memory_mib;
  record.size.gpu_count = info.gpu_count;
  record.size.gpu_model = info.gpu_name;
  record.size.gpu_memory_mib = info.gpu_memory_mib;
}

}  // namespace gm::drivers::ec2
