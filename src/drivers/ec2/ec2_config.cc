// The ec2 driver's flags, validated offline: every problem found is reported at once.
#include "drivers/ec2/ec2_internal.h"

#include "aws/endpoints.h"
#include "gm/error.h"
#include "util/fs.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <regex>

namespace gm::drivers::ec2 {

namespace {

const std::vector<std::string> k_image_aliases = {
    "ubuntu-24.04", "ubuntu-22.04", "dlami-ubuntu-24.04", "dlami-ubuntu-22.04", "dlami-al2023"};
const std::vector<std::string> k_volume_types = {"gp3", "gp2", "io1",     "io2",
                                                 "st1", "sc1", "standard"};

struct Problem {
  std::string subject;
  std::string problem;
  std::string hint;
};

std::optional<int> parse_int(const std::string& s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

void Ec2Driver::configure(const Options& options, MachineRecord& record) {
  std::vector<Problem> problems;
  auto bad = [&](std::string flag, const std::string& value, std::string problem,
                 std::string hint) {
    problems.push_back({"--" + flag + (value.empty() ? "" : " '" + value + "'"), std::move(problem),
                        std::move(hint)});
  };
  Ec2Config cfg;

  std::string region_flag = single(options, "ec2-region");
  std::string region;
  try {
    region = aws::load_region(region_flag.empty() ? std::nullopt
                                                  : std::optional<std::string>(region_flag));
    static const std::regex k_region(R"(^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d+$)");
    if (!std::regex_match(region, k_region)) {
      bad("ec2-region", region, "not a region name", "use a name like us-east-1 or eu-west-2");
    }
  } catch (const UsageError& e) {
    problems.push_back({"--ec2-region", e.problem(), e.hint()});
  }
  record.size.region = region;

  std::string type = single(options, "ec2-instance-type", k_default_type);
  static const std::regex k_type(R"(^[a-z][a-z0-9-]*\.[a-z0-9-]+$)");
  if (!std::regex_match(type, k_type)) {
    bad("ec2-instance-type", type, "not an instance type name",
        "e.g. g4dn.xlarge, g5.xlarge, t3.medium");
  }
  record.size.instance_type = type;

  std::string image = single(options, "ec2-image");
  static const std::regex k_ami(R"(^ami-([0-9a-f]{8}|[0-9a-f]{17})$)");
  if (!image.empty() &&
      std::find(k_image_aliases.begin(), k_image_aliases.end(), image) == k_image_aliases.end() &&
      !std::regex_match(image, k_ami)) {
    bad("ec2-image", image, "unknown image",
        "use one of " + join(k_image_aliases, ", ") + ", or an ami- id");
  }
  cfg.image = image;

  std::string root = single(options, "ec2-root-size", std::to_string(k_default_root_gib));
  std::optional<int> root_gib = parse_int(root);
  if (!root_gib || *root_gib < 8 || *root_gib > 16384) {
    bad("ec2-root-size", root, "not a size in GiB from 8 to 16384", "e.g. --ec2-root-size 200");
  }
  cfg.root_size = root_gib.value_or(k_default_root_gib);

  std::string volume_type = single(options, "ec2-volume-type", "gp3");
  if (std::find(k_volume_types.begin(), k_volume_types.end(), volume_type) ==
      k_volume_types.end()) {
    bad("ec2-volume-type", volume_type, "unknown volume type",
        "use one of " + join(k_volume_types, ", "));
  }
  cfg.volume_type = volume_type;

  std::string zone = single(options, "ec2-zone");
  if (!zone.empty()) {
    if (zone.size() == 1 && zone[0] >= 'a' && zone[0] <= 'z') {
      zone = region + zone;
    } else if (!zone.starts_with(region) || zone.size() != region.size() + 1 ||
               !std::islower(static_cast<unsigned char>(zone.back()))) {
      bad("ec2-zone", zone, "not an availability zone of " + region,
          "give a letter (--ec2-zone b) or a full name like " + region + "b");
    }
  }
  cfg.zone = zone;

  auto check_id = [&](const char* flag, const std::string& value, const char* prefix) {
    static const std::regex k_hex(R"(^[a-z]+-[0-9a-f]{8,17}$)");
    if (!value.empty() && (!value.starts_with(prefix) || !std::regex_match(value, k_hex))) {
      bad(flag, value, std::string("not a ") + prefix + " id",
          std::string("ids look like ") + prefix + "0123456789abcdef0");
    }
  };
  cfg.subnet_id = single(options, "ec2-subnet-id");
  check_id("ec2-subnet-id", cfg.subnet_id, "subnet-");
  cfg.vpc_id = single(options, "ec2-vpc-id");
  check_id("ec2-vpc-id", cfg.vpc_id, "vpc-");
  cfg.security_group_ids = all(options, "ec2-security-group-id");
  for (const std::string& sg : all(options, "ec2-security-group-id")) {
    check_id("ec2-security-group-id", sg, "sg-");
  }
  if (record.cluster && !cfg.security_group_ids.empty()) {
    bad("ec2-security-group-id", cfg.security_group_ids.front(), "cannot be used with --nodes",
        "a cluster's own security group admits its nodes to each other (and SSH from your "
        "address only); drop --ec2-security-group-id");
  }
  if (!cfg.subnet_id.empty() && !zone.empty()) {
    bad("ec2-zone", zone, "cannot be combined with --ec2-subnet-id",
        "a subnet lives in one zone; drop --ec2-zone");
  }

  std::string cidr = single(options, "ec2-ssh-cidr");
  if (!cidr.empty()) {
    std::optional<std::string> network = cidr_network(cidr);
    if (!network) {
      bad("ec2-ssh-cidr", cidr, "not an IPv4 CIDR block", "e.g. 203.0.113.5/32");
    } else if (*network != cidr) {
      // A typo more often than not (a /24 after one address): say which block it would open.
      bad("ec2-ssh-cidr", cidr, "has bits set after the prefix",
          "for the block write " + *network + "; for one address, " +
              cidr.substr(0, cidr.find('/')) + "/32");
    }
  }
  cfg.ssh_cidr = cidr;

  std::vector<OpenPort> ports;
  for (const std::string& p : all(options, "ec2-open-port")) {
    std::string number = p, proto = "tcp";
    if (auto slash = p.find('/'); slash != std::string::npos) {
      number = p.substr(0, slash);
      proto = p.substr(slash + 1);
    }
    std::optional<int> n = parse_int(number);
    if (!n || *n < 1 || *n > 65535 || (proto != "tcp" && proto != "udp")) {
      bad("ec2-open-port", p, "not a port", "use PORT or PORT/tcp or PORT/udp, e.g. 8888/tcp");
      continue;
    }
    ports.push_back({.port = *n, .protocol = proto});
  }
  cfg.open_ports = ports;

  bool spot = options.contains("ec2-spot");
  record.size.spot = spot;
  cfg.iam_instance_profile = single(options, "ec2-iam-instance-profile");

  std::map<std::string, std::string> tags;
  for (const std::string& t : all(options, "ec2-tag")) {
    auto eq = t.find('=');
    std::string key = eq == std::string::npos ? "" : t.substr(0, eq);
    if (key.empty() || key.size() > 128 || t.size() - eq - 1 > 256) {
      bad("ec2-tag", t, "not KEY=VALUE (key 1-128, value up to 256 characters)",
          "e.g. --ec2-tag team=ml");
      continue;
    }
    if (key.starts_with("aws:") || key.starts_with("gpumachine:") || key == "Name") {
      bad("ec2-tag", t, "the key '" + key + "' is reserved",
          "keys starting with aws: or gpumachine:, and Name, are set by AWS or gpumachine");
      continue;
    }
    tags[key] = t.substr(eq + 1);
  }
  cfg.tags = tags;

  std::string user_data = single(options, "ec2-user-data");
  if (!user_data.empty()) {
    std::filesystem::path path = std::filesystem::absolute(util::expand_user(user_data));
    std::optional<std::string> text = util::try_read_file(path);
    if (!text) {
      bad("ec2-user-data", user_data, "cannot read the file", "check the path");
    } else if (text->size() > 12 * 1024) {
      bad("ec2-user-data", user_data, "larger than 12 KiB",
          "EC2 takes 16 KiB of user data and gpumachine adds the host key; keep yours smaller");
    }
    cfg.user_data_file = path.string();
  } else {
    cfg.user_data_file = "";
  }

  std::string user = single(options, "ec2-ssh-user");
  static const std::regex k_user(R"(^[a-z_][a-z0-9_.-]{0,31}$)");
  if (!user.empty() && !std::regex_match(user, k_user)) {
    bad("ec2-ssh-user", user, "not a user name", "e.g. ubuntu or ec2-user");
  }
  cfg.ssh_user = user;
  std::string keypair = single(options, "ec2-keypair-name");
  if (keypair.size() > 255) {
    bad("ec2-keypair-name", keypair.substr(0, 20) + "...", "longer than 255 characters", "");
  }
  cfg.keypair_name = keypair;
  // A later cost-control feature sets terminate; one-time spot instances cannot stop.
  record.cost.power_off_action = spot ? "terminate" : "stop";
  record.progress.incomplete = true;

  if (problems.size() == 1) {
    throw UsageError(problems[0].subject, problems[0].problem, problems[0].hint);
  }
  if (!problems.empty()) {
    std::vector<std::string> lines, hints;
    for (const Problem& p : problems) {
      lines.push_back(p.subject + ": " + p.problem);
      if (!p.hint.empty()) {
        hints.push_back(p.hint);
      }
    }
    throw UsageError("ec2 options",
                     std::to_string(problems.size()) + " problems: " + join(lines, "; "),
                     join(hints, "; "));
  }
  record.driver_config = cfg;
  record.ssh.port = 22;
  record.ssh.user = user;
  if (record.ssh.key_path.empty()) {
    throw Error("ec2 driver", "no key path for the machine", {}, "internal: set by create");
  }
}

}  // namespace gm::drivers::ec2
