// The ec2 driver: flags and offline validation, the create pipeline (checks -> record -> key pair
// -> security group -> RunInstances with AZ failover -> running -> SSH), power verbs, and rm.
#include "drivers/ec2/ec2_driver.h"

#include "aws/credentials.h"
#include "aws/endpoints.h"
#include "aws/xml.h"
#include "drivers/ec2/host_key.h"
#include "drivers/ec2/user_data.h"
#include "gm/error.h"
#include "http/curl_transport.h"
#include "machine/connect.h"
#include "provision/provisioner.h"
#include "ssh/keys.h"
#include "ssh/session.h"
#include "util/crypto.h"
#include "util/fs.h"
#include "util/interrupt.h"
#include "util/log.h"
#include "util/time.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>

namespace gm::drivers::ec2 {

namespace {

/// The GPU generation of an instance type's GPU model, as DescribeInstanceTypes names it.
provision::GpuGeneration generation_of(std::string_view gpu_name) {
  static const std::pair<std::string_view, provision::GpuGeneration> k_models[] = {
      {"K80", provision::GpuGeneration::kepler},    {"M60", provision::GpuGeneration::maxwell},
      {"V100", provision::GpuGeneration::volta},    {"T4", provision::GpuGeneration::turing},
      {"A10G", provision::GpuGeneration::ampere},   {"A100", provision::GpuGeneration::ampere},
      {"L40S", provision::GpuGeneration::ada},      {"L4", provision::GpuGeneration::ada},
      {"H100", provision::GpuGeneration::hopper},   {"H200", provision::GpuGeneration::hopper},
      {"B200", provision::GpuGeneration::blackwell}};
  for (const auto& [model, generation] : k_models) {
    if (gpu_name.starts_with(model)) {
      return generation;
    }
  }
  return provision::GpuGeneration::unknown;
}

/// When `create` will provision (driver_config.provision_at_boot), a script for the user data
/// that starts installing the driver, Docker and the toolkit while the instance boots, so the
/// package downloads overlap the boot and SSH wait. Only for the plain Ubuntu images: the Deep
/// Learning AMIs already have everything, and an unknown ami- has no known recipe.
std::string provision_prelude(const MachineRecord& record) {
  const nlohmann::json& cfg = record.driver_config;
  std::string alias = cfg.value("image_alias", "");
  if (!cfg.value("provision_at_boot", false) || !alias.starts_with("ubuntu-")) {
    return {};
  }
  provision::PreludeInputs in;
  in.os_id = "ubuntu";
  in.os_version_id = alias.substr(std::string("ubuntu-").size());
  in.user = record.ssh.user;
  in.overrides = provision::driver_overrides_from_json(
      cfg.value("provision_overrides", nlohmann::json::object()));
  const nlohmann::json& type = record.facts.value("instance_type", nlohmann::json::object());
  int gpus = type.value("gpu_count", 0);
  provision::GpuGeneration generation = generation_of(type.value("gpu_name", ""));
  if (gpus > 0 && generation != provision::GpuGeneration::unknown) {
    in.gpus.assign(static_cast<std::size_t>(gpus), generation);
  }
  // The 8-GPU HGX boards (p4d, p5*, p6) have NVSwitches and need Fabric Manager.
  std::string family = cfg.value("instance_type", "");
  family = family.substr(0, family.find('.'));
  in.nvswitch =
      family == "p4d" || family == "p4de" || family.starts_with("p5") || family.starts_with("p6");
  return provision::cloud_init_prelude(in);
}

}  // namespace

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::chrono::minutes k_state_deadline{10};
constexpr std::chrono::minutes k_ssh_deadline{5};
constexpr std::chrono::minutes k_sg_delete_deadline{5};
// State polls: starting small (a quick change is seen at once), then every half second (create's
// overhead), slowing down on long waits and under throttling.
constexpr milliseconds k_poll_first{100};
constexpr milliseconds k_poll_fast{500};
constexpr milliseconds k_poll_slow{2000};
constexpr std::chrono::seconds k_poll_slow_after{60};
constexpr milliseconds k_poll_throttled_max{15000};
constexpr milliseconds k_ssh_retry_first{20};  // after a failed login, doubling up to k_ssh_retry
constexpr milliseconds k_ssh_retry{250};
constexpr const char* k_default_type = "g4dn.xlarge";
constexpr int k_default_root_gib = 100;
constexpr const char* k_host_key_file = "host_ed25519";

const std::vector<std::string> k_image_aliases = {
    "ubuntu-24.04", "ubuntu-22.04", "dlami-ubuntu-24.04", "dlami-ubuntu-22.04", "dlami-al2023"};
const std::vector<std::string> k_volume_types = {"gp3", "gp2", "io1",     "io2",
                                                 "st1", "sc1", "standard"};

std::string join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (const std::string& p : parts) {
    out += (out.empty() ? "" : std::string(sep)) + p;
  }
  return out;
}

std::string single(const Options& options, const std::string& name, std::string fallback = {}) {
  auto it = options.find(name);
  return it == options.end() || it->second.empty() ? fallback : it->second.back();
}

std::vector<std::string> all(const Options& options, const std::string& name) {
  auto it = options.find(name);
  return it == options.end() ? std::vector<std::string>{} : it->second;
}

std::string subject_of(const MachineRecord& record) {
  return "machine '" + record.name + "'";
}

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

Tags machine_tags(const MachineRecord& record) {
  Tags tags = {{"Name", record.name}, {k_tag_machine, record.name}, {k_tag_id, record.id}};
  for (const auto& [key, field] :
       {std::pair{k_tag_home, "home_id"}, {k_tag_created, "tagged_at"}}) {
    if (!record.driver_config.value(field, "").empty()) {
      tags.emplace_back(key, record.driver_config[field].get<std::string>());
    }
  }
  if (record.driver_config.contains("tags")) {
    for (const auto& [k, v] : record.driver_config["tags"].items()) {
      tags.emplace_back(k, v.get<std::string>());
    }
  }
  return tags;
}

std::string resource_name(const MachineRecord& record) {
  return "gpumachine-" + record.name + "-" + record.id.substr(0, 8);
}

Resource* ledger(MachineRecord& record, std::string_view kind) {
  for (Resource& r : record.resources) {
    if (r.kind == kind && r.status != "deleted") {
      return &r;
    }
  }
  return nullptr;
}

void set_ledger(MachineRecord& record, const std::string& kind, const std::string& id,
                const std::string& status) {
  const std::string& region = record.driver_config["region"].get_ref<const std::string&>();
  if (Resource* r = ledger(record, kind)) {
    r->id = id;
    r->status = status;
    return;
  }
  record.resources.push_back({.kind = kind, .id = id, .region = region, .status = status});
}

/// Sleeps \a d unless interrupted first.
void pause(DriverHost& host, milliseconds d) {
  util::sleep_unless_interrupted(d);
  host.check_interrupted();
}

/// The id of the security group called \a name that carries this machine's id tag; empty when
/// there is none (or it belongs to someone else).
std::string own_security_group(Ec2Api& api, const MachineRecord& record, const std::string& name) {
  aws::QueryParams d;
  d.add_filter("group-name", {name});
  d.add_filter("tag:" + std::string(k_tag_id), {record.id});
  aws::QueryResult found = api.call("DescribeSecurityGroups", d);
  auto items = aws::xml::items(found.root(), "securityGroupInfo");
  return items.empty() ? "" : aws::xml::text(items.front(), "groupId");
}

/// How long after a create call EC2 may still answer "not found" for what it made (eventual
/// consistency: seconds, at times minutes). GPUMACHINE_EC2_CONSISTENCY_WINDOW (seconds)
/// overrides it for emulators and tests.
std::chrono::seconds consistency_window() {
  if (const char* env = std::getenv("GPUMACHINE_EC2_CONSISTENCY_WINDOW");
      env != nullptr && *env != '\0') {
    if (std::optional<std::chrono::seconds> d = util::parse_duration(env)) {
      return *d;
    }
    throw UsageError("GPUMACHINE_EC2_CONSISTENCY_WINDOW '" + std::string(env) + "'",
                     "not a duration", "e.g. GPUMACHINE_EC2_CONSISTENCY_WINDOW=30s");
  }
  return std::chrono::minutes(2);
}

/// True while EC2 may still hide what a create call sent at \a stamp (RFC 3339) made; an
/// absent stamp (older records) counts from the machine's creation.
bool maybe_invisible(const MachineRecord& record, const std::string& stamp) {
  std::optional<util::SystemTime> at =
      util::parse_rfc3339(stamp.empty() ? record.created_at : stamp);
  return !at || std::chrono::system_clock::now() < *at + consistency_window();
}

bool is_throttling(const CloudError& e) {
  return e.code() == "RequestLimitExceeded" || e.code() == "Throttling" ||
         e.code() == "ThrottlingException";
}

/// Polls the instance until its state is one of \a targets. Missing from the answer means
/// "not visible yet" (eventual consistency) unless \a missing_is_gone. Throws when it lands in
/// one of \a failures or the deadline passes.
std::optional<Instance> wait_for_state(Ec2Api& api, const MachineRecord& record,
                                       const std::string& id,
                                       const std::vector<std::string>& targets,
                                       const std::vector<std::string>& failures,
                                       bool missing_is_gone, DriverHost& host) {
  auto start = Clock::now();
  milliseconds interval = k_poll_first;
  std::string last = "?";
  while (true) {
    host.check_interrupted();
    try {
      std::vector<Instance> found = api.describe_instances({{"instance-id", {id}}});
      if (found.empty()) {
        if (missing_is_gone) {
          return std::nullopt;
        }
      } else {
        const Instance& i = found.front();
        last = i.state;
        if (std::find(targets.begin(), targets.end(), i.state) != targets.end()) {
          return i;
        }
        if (std::find(failures.begin(), failures.end(), i.state) != failures.end()) {
          throw Error(subject_of(record), "instance " + id + " went to " + i.state,
                      i.state_reason.empty() ? "" : i.state_reason,
                      "`gpumachine rm " + record.name + "` removes what is left");
        }
      }
      interval = Clock::now() - start > k_poll_slow_after
                     ? std::max(interval, k_poll_slow)
                     : std::max(interval, std::min(interval * 3 / 2, k_poll_fast));
    } catch (const CloudError& e) {
      if (!is_throttling(e)) {
        throw;
      }
      interval = std::min(interval * 2, k_poll_throttled_max);
      host.debug("ec2: throttled while polling; next poll in " + std::to_string(interval.count()) +
                 " ms");
    }
    if (Clock::now() - start > k_state_deadline) {
      throw Error(
          subject_of(record),
          "instance " + id + " did not reach " + join(targets, " or ") + " within 10 minutes",
          "last state: " + last,
          "check the EC2 console; `gpumachine status " + record.name + "` asks again");
    }
    pause(host, interval);
  }
}

/// Authorize/RevokeSecurityGroupIngress parameters for the machine's rules (SSH and every
/// --ec2-open-port) from \a cidr.
aws::QueryParams ingress_rules(const nlohmann::json& cfg, const std::string& group_id,
                               const std::string& cidr) {
  aws::QueryParams p;
  p.set("GroupId", group_id);
  std::vector<std::pair<int, std::string>> rules = {{22, "tcp"}};
  for (const auto& port : cfg["open_ports"]) {
    rules.emplace_back(port["port"].get<int>(), port["protocol"].get<std::string>());
  }
  for (std::size_t i = 0; i < rules.size(); ++i) {
    std::string prefix = "IpPermissions." + std::to_string(i + 1) + ".";
    p.set(prefix + "IpProtocol", rules[i].second);
    p.set(prefix + "FromPort", rules[i].first);
    p.set(prefix + "ToPort", rules[i].first);
    p.set(prefix + "IpRanges.1.CidrIp", cidr);
    p.set(prefix + "IpRanges.1.Description",
          rules[i].first == 22 ? std::string("ssh") : "--ec2-open-port");
  }
  return p;
}

/// A one-time spot instance cannot stop (EC2 answers InvalidParameterCombination at launch and
/// on ModifyInstanceAttribute): refuse before any call, with the ways out.
void check_shutdown_behavior(const MachineRecord& record, std::string_view behavior) {
  if (behavior == "stop" && record.driver_config.value("spot", false)) {
    throw UsageError(subject_of(record) + ": autostop action 'stop'",
                     "a one-time spot instance cannot stop, only terminate (EC2 refuses it)",
                     "use --autostop-action terminate (autostop: --action terminate), or an "
                     "on-demand instance (no --ec2-spot) to keep the disk");
  }
}

bool is_connection_level(const SshError& e) {
  return e.stage() == SshError::Stage::connect || e.stage() == SshError::Stage::handshake;
}

/// Connects until SSH answers with the pinned host key (never trusting whatever answers).
void wait_for_ssh(const MachineRecord& record, DriverHost& host) {
  auto deadline = Clock::now() + k_ssh_deadline;
  milliseconds retry = k_ssh_retry_first;
  while (true) {
    machine::wait_for_port(record, host, deadline);
    try {
      std::unique_ptr<ssh::Session> session = machine::connect(record);
      return;
    } catch (const SshError& e) {
      // Auth may fail for a moment while cloud-init installs the login key; a wrong host key
      // never becomes right, so it ends the wait at once.
      bool transient = is_connection_level(e) || e.stage() == SshError::Stage::auth;
      if (!transient || Clock::now() > deadline) {
        throw;
      }
    }
    pause(host, retry);
    retry = std::min(retry * 2, k_ssh_retry);
  }
}

struct Problem {
  std::string subject;
  std::string problem;
  std::string hint;
};

/// The canonical form of an IPv4 CIDR block (host bits cleared: 203.0.113.5/24 gives
/// 203.0.113.0/24); nullopt when it is not one.
std::optional<std::string> cidr_network(const std::string& text) {
  static const std::regex k_re(R"(^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$)");
  std::smatch m;
  if (!std::regex_match(text, m, k_re)) {
    return std::nullopt;
  }
  std::uint32_t address = 0;
  for (int i = 1; i <= 4; ++i) {
    int octet = std::stoi(m[i]);
    if (octet > 255) {
      return std::nullopt;
    }
    address = address << 8 | static_cast<std::uint32_t>(octet);
  }
  int bits = std::stoi(m[5]);
  if (bits > 32) {
    return std::nullopt;
  }
  std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
  address &= mask;
  return std::to_string(address >> 24) + "." + std::to_string(address >> 16 & 255) + "." +
         std::to_string(address >> 8 & 255) + "." + std::to_string(address & 255) + "/" +
         std::to_string(bits);
}

std::optional<int> parse_int(const std::string& s) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

class Ec2Driver final : public Driver {
 public:
  std::string_view name() const override { return "ec2"; }
  Capabilities capabilities() const override {
    return {.power = true, .reboot = true, .shutdown_behavior = true};
  }

  void configure(const Options& options, MachineRecord& record) override;
  void create(MachineRecord& record, DriverHost& host) override;
  MachineState state(MachineRecord& record, DriverHost& host) override;
  void start(MachineRecord& record, DriverHost& host) override;
  void stop(MachineRecord& record, DriverHost& host) override { power_off(record, host, false); }
  void kill(MachineRecord& record, DriverHost& host) override { power_off(record, host, true); }
  void restart(MachineRecord& record, DriverHost& host) override;
  std::vector<std::string> remove(MachineRecord& record, DriverHost& host) override;
  void set_shutdown_behavior(MachineRecord& record, DriverHost& host,
                             std::string_view behavior) override;
  std::string allow_ssh_from(MachineRecord& record, DriverHost& host,
                             const std::string& cidr) override;
  std::string explain_unreachable(const MachineRecord& record) override;

 private:
  void preflight(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void ensure_local_keys(MachineRecord& record);
  void import_key_pair(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void ensure_security_group(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void launch(Ec2Api& api, MachineRecord& record, DriverHost& host);
  aws::QueryParams run_params(const MachineRecord& record, const std::string& zone,
                              const std::string& subnet, const std::string& token);
  std::vector<Instance> find_instances(Ec2Api& api, const MachineRecord& record);
  void adopt(MachineRecord& record, const Instance& instance, DriverHost& host);
  void record_address(MachineRecord& record, const Instance& instance);
  void power_off(MachineRecord& record, DriverHost& host, bool force);
  void await_pending_launch(Ec2Api& api, MachineRecord& record, DriverHost& host);
  void rollback(Ec2Api& api, MachineRecord& record, DriverHost& host);
  std::string instance_id(const MachineRecord& record) const {
    return record.driver_config.value("instance_id", "");
  }
};

void Ec2Driver::configure(const Options& options, MachineRecord& record) {
  std::vector<Problem> problems;
  auto bad = [&](std::string flag, const std::string& value, std::string problem,
                 std::string hint) {
    problems.push_back({"--" + flag + (value.empty() ? "" : " '" + value + "'"), std::move(problem),
                        std::move(hint)});
  };
  nlohmann::json cfg = nlohmann::json::object();

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
  cfg["region"] = region;

  std::string type = single(options, "ec2-instance-type", k_default_type);
  static const std::regex k_type(R"(^[a-z][a-z0-9-]*\.[a-z0-9-]+$)");
  if (!std::regex_match(type, k_type)) {
    bad("ec2-instance-type", type, "not an instance type name",
        "e.g. g4dn.xlarge, g5.xlarge, t3.medium");
  }
  cfg["instance_type"] = type;

  std::string image = single(options, "ec2-image");
  static const std::regex k_ami(R"(^ami-([0-9a-f]{8}|[0-9a-f]{17})$)");
  if (!image.empty() &&
      std::find(k_image_aliases.begin(), k_image_aliases.end(), image) == k_image_aliases.end() &&
      !std::regex_match(image, k_ami)) {
    bad("ec2-image", image, "unknown image",
        "use one of " + join(k_image_aliases, ", ") + ", or an ami- id");
  }
  cfg["image"] = image;

  std::string root = single(options, "ec2-root-size", std::to_string(k_default_root_gib));
  std::optional<int> root_gib = parse_int(root);
  if (!root_gib || *root_gib < 8 || *root_gib > 16384) {
    bad("ec2-root-size", root, "not a size in GiB from 8 to 16384", "e.g. --ec2-root-size 200");
  }
  cfg["root_size"] = root_gib.value_or(k_default_root_gib);

  std::string volume_type = single(options, "ec2-volume-type", "gp3");
  if (std::find(k_volume_types.begin(), k_volume_types.end(), volume_type) ==
      k_volume_types.end()) {
    bad("ec2-volume-type", volume_type, "unknown volume type",
        "use one of " + join(k_volume_types, ", "));
  }
  cfg["volume_type"] = volume_type;

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
  cfg["zone"] = zone;

  auto check_id = [&](const char* flag, const std::string& value, const char* prefix) {
    static const std::regex k_hex(R"(^[a-z]+-[0-9a-f]{8,17}$)");
    if (!value.empty() && (!value.starts_with(prefix) || !std::regex_match(value, k_hex))) {
      bad(flag, value, std::string("not a ") + prefix + " id",
          std::string("ids look like ") + prefix + "0123456789abcdef0");
    }
  };
  cfg["subnet_id"] = single(options, "ec2-subnet-id");
  check_id("ec2-subnet-id", cfg["subnet_id"], "subnet-");
  cfg["vpc_id"] = single(options, "ec2-vpc-id");
  check_id("ec2-vpc-id", cfg["vpc_id"], "vpc-");
  cfg["security_group_ids"] = all(options, "ec2-security-group-id");
  for (const std::string& sg : all(options, "ec2-security-group-id")) {
    check_id("ec2-security-group-id", sg, "sg-");
  }
  if (!cfg["subnet_id"].get<std::string>().empty() && !zone.empty()) {
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
  cfg["ssh_cidr"] = cidr;

  nlohmann::json ports = nlohmann::json::array();
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
    ports.push_back({{"port", *n}, {"protocol", proto}});
  }
  cfg["open_ports"] = ports;

  bool spot = options.contains("ec2-spot");
  cfg["spot"] = spot;
  cfg["iam_instance_profile"] = single(options, "ec2-iam-instance-profile");

  nlohmann::json tags = nlohmann::json::object();
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
  cfg["tags"] = tags;

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
    cfg["user_data_file"] = path.string();
  } else {
    cfg["user_data_file"] = "";
  }

  std::string user = single(options, "ec2-ssh-user");
  static const std::regex k_user(R"(^[a-z_][a-z0-9_.-]{0,31}$)");
  if (!user.empty() && !std::regex_match(user, k_user)) {
    bad("ec2-ssh-user", user, "not a user name", "e.g. ubuntu or ec2-user");
  }
  cfg["ssh_user"] = user;
  std::string keypair = single(options, "ec2-keypair-name");
  if (keypair.size() > 255) {
    bad("ec2-keypair-name", keypair.substr(0, 20) + "...", "longer than 255 characters", "");
  }
  cfg["keypair_name"] = keypair;
  // A later cost-control feature sets terminate; one-time spot instances cannot stop.
  cfg["shutdown_behavior"] = spot ? "terminate" : "stop";
  cfg["create_incomplete"] = true;

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

void Ec2Driver::preflight(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  nlohmann::json& cfg = record.driver_config;
  host.phase("checking credentials, image and instance type in " + api.region());
  // Credentials first, so a missing profile is reported as that and not as a failed call.
  aws::default_credentials();
  std::string type = cfg["instance_type"];
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
  std::string image = cfg["image"];
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
  std::string subnet = cfg["subnet_id"];
  std::string vpc = cfg["vpc_id"];
  nlohmann::json zone_subnets = nlohmann::json::object();
  if (!subnet.empty()) {
    aws::QueryParams p;
    p.set("SubnetId.1", subnet);
    aws::QueryResult r = api.call("DescribeSubnets", p);
    auto items = aws::xml::items(r.root(), "subnetSet");
    if (items.empty()) {
      throw UsageError("--ec2-subnet-id '" + subnet + "'", "no such subnet in " + api.region(), "");
    }
    cfg["vpc_id"] = aws::xml::text(items.front(), "vpcId");
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
  cfg["zone_subnets"] = zone_subnets;
  std::vector<std::string> zones;
  if (subnet.empty()) {
    zones = api.zones_offering(type);
    if (!vpc.empty()) {
      std::erase_if(zones, [&](const std::string& z) { return !zone_subnets.contains(z); });
    }
    std::string wanted = cfg["zone"];
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
  cfg["zones"] = zones;
  cfg["image_alias"] = image.starts_with("ami-") ? "" : alias;
  cfg["image_id"] = image_id;
  cfg["image_name"] = img->name;
  cfg["root_device"] = img->root_device_name.empty() ? "/dev/sda1" : img->root_device_name;
  cfg["architecture"] = info.architecture;
  if (cfg["ssh_user"].get<std::string>().empty()) {
    record.ssh.user = default_user_for(alias, img->name);
  }
  record.facts["instance_type"] = {{"vcpus", info.vcpus},
                                   {"memory_mib", info.memory_mib},
                                   {"gpu_count", info.gpu_count},
                                   {"gpu_name", info.gpu_name},
                                   {"gpu_memory_mib", info.gpu_memory_mib}};
}

void Ec2Driver::ensure_local_keys(MachineRecord& record) {
  // Both keys are made once and reused on resume: the user data (and so the ClientToken's
  // parameters) must be the same bytes each time.
  // A pair is only used (imported, put into user data) once whole, so a half-written one (a
  // kill between its two files) is safe to make again.
  std::filesystem::path key = record.ssh.key_path;
  ssh::ensure_key_pair(key, "gpumachine-" + record.name);
  std::filesystem::path host_key = key.parent_path() / k_host_key_file;
  ssh::ensure_key_pair(host_key, "host-" + record.name);
  if (record.driver_config.value("host_key_replaced", false)) {
    return;  // the pin is the key made on the host, not this one
  }
  std::string pub = util::read_file(host_key.string() + ".pub");
  // known_hosts holds "type base64" without the comment.
  auto second_space = pub.find(' ', pub.find(' ') + 1);
  record.ssh.host_key = pub.substr(0, std::min(second_space, pub.find('\n')));
}

void Ec2Driver::import_key_pair(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  nlohmann::json& cfg = record.driver_config;
  if (!cfg["keypair_name"].get<std::string>().empty()) {
    return;  // the user's own pair; ours goes in through cloud-init's ssh_authorized_keys
  }
  Resource* r = ledger(record, "key-pair");
  if (r != nullptr && r->status == "created") {
    return;
  }
  std::string name = resource_name(record);
  host.phase("importing key pair " + name);
  set_ledger(record, "key-pair", name, "creating");
  cfg["key_name"] = name;
  host.save(record);
  aws::QueryParams p;
  p.set("KeyName", name);
  p.set("PublicKeyMaterial", util::base64_encode(util::read_file(record.ssh.key_path + ".pub")));
  p.add_tag_specification("key-pair", machine_tags(record));
  try {
    api.call("ImportKeyPair", p);
  } catch (const CloudError& e) {
    if (e.code() != "InvalidKeyPair.Duplicate") {
      throw;
    }
    // Ours from an interrupted run (the answer was lost)? Only when it carries our id.
    aws::QueryParams d;
    d.add_filter("key-name", {name});
    d.add_filter("tag:" + std::string(k_tag_id), {record.id});
    aws::QueryResult found = api.call("DescribeKeyPairs", d);
    if (aws::xml::items(found.root(), "keySet").empty()) {
      throw Error(subject_of(record), "key pair " + name + " exists and is not this machine's",
                  e.message(), "delete it (`aws ec2 delete-key-pair --key-name " + name + "`)");
    }
  }
  set_ledger(record, "key-pair", name, "created");
  host.save(record);
}

void Ec2Driver::ensure_security_group(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  nlohmann::json& cfg = record.driver_config;
  if (!cfg["security_group_ids"].empty()) {
    return;  // the user's own groups, used as given and never modified
  }
  Resource* r = ledger(record, "security-group");
  if (r != nullptr && r->status == "created" && cfg.value("sg_ingress_done", false)) {
    return;
  }
  std::string name = resource_name(record);
  host.phase("creating security group " + name);
  std::string cidr = cfg["ssh_cidr"];
  if (cidr.empty()) {
    cidr = caller_cidr();
    cfg["ssh_cidr"] = cidr;
  }
  std::string group_id = (r != nullptr && r->id.starts_with("sg-")) ? r->id : "";
  if (group_id.empty()) {
    set_ledger(record, "security-group", name, "creating");
    cfg["sg_name"] = name;
    cfg["sg_created_at"] = util::rfc3339(std::chrono::system_clock::now());
    host.save(record);
    aws::QueryParams p;
    p.set("GroupName", name);
    p.set("GroupDescription", "gpumachine " + record.name + ": SSH from " + cidr);
    if (!cfg["vpc_id"].get<std::string>().empty()) {
      p.set("VpcId", cfg["vpc_id"].get<std::string>());
    }
    p.add_tag_specification("security-group", machine_tags(record));
    try {
      aws::QueryResult made = api.call("CreateSecurityGroup", p);
      group_id = aws::xml::text(made.root(), "groupId");
    } catch (const CloudError& e) {
      if (e.code() != "InvalidGroup.Duplicate") {
        throw;
      }
      group_id = own_security_group(api, record, name);
      if (group_id.empty()) {
        throw Error(subject_of(record), "security group " + name + " exists and is not ours",
                    e.message(), "delete it, then run `gpumachine create " + record.name + "`");
      }
    }
    set_ledger(record, "security-group", group_id, "created");
    host.save(record);
  }
  aws::QueryParams p = ingress_rules(cfg, group_id, cidr);
  // A group just created may not be visible yet (eventual consistency): wait it out.
  milliseconds delay{500};
  auto deadline = Clock::now() + std::chrono::minutes(2);
  while (true) {
    try {
      api.call("AuthorizeSecurityGroupIngress", p);
      break;
    } catch (const CloudError& e) {
      if (e.code() == "InvalidPermission.Duplicate") {
        break;
      }
      if (e.code() != "InvalidGroup.NotFound" || Clock::now() > deadline) {
        throw;
      }
      host.debug("ec2: " + group_id + " not visible yet; retrying");
    }
    pause(host, delay);
    delay = std::min(delay * 2, milliseconds(5000));
  }
  cfg["sg_ingress_done"] = true;
  host.save(record);
}

aws::QueryParams Ec2Driver::run_params(const MachineRecord& record, const std::string& zone,
                                       const std::string& subnet, const std::string& token) {
  const nlohmann::json& cfg = record.driver_config;
  aws::QueryParams p;
  p.set("ImageId", cfg["image_id"].get<std::string>());
  p.set("InstanceType", cfg["instance_type"].get<std::string>());
  p.set("MinCount", 1);
  p.set("MaxCount", 1);
  std::string keypair = cfg["keypair_name"];
  p.set("KeyName", keypair.empty() ? cfg["key_name"].get<std::string>() : keypair);
  std::vector<std::string> groups = cfg["security_group_ids"].get<std::vector<std::string>>();
  if (groups.empty()) {
    const Resource* sg = nullptr;
    for (const Resource& r : record.resources) {
      if (r.kind == "security-group" && r.status == "created") {
        sg = &r;
      }
    }
    groups.push_back(sg != nullptr ? sg->id : "");
  }
  p.set_list("SecurityGroupId", groups);
  p.set("ClientToken", token);
  if (!subnet.empty()) {
    p.set("SubnetId", subnet);
  } else if (!zone.empty()) {
    p.set("Placement.AvailabilityZone", zone);
  }
  p.set("BlockDeviceMapping.1.DeviceName", cfg["root_device"].get<std::string>());
  p.set("BlockDeviceMapping.1.Ebs.VolumeSize", cfg["root_size"].get<int>());
  p.set("BlockDeviceMapping.1.Ebs.VolumeType", cfg["volume_type"].get<std::string>());
  p.set("BlockDeviceMapping.1.Ebs.DeleteOnTermination", true);
  p.set("MetadataOptions.HttpTokens", "required");
  p.set("MetadataOptions.HttpEndpoint", "enabled");
  p.set("MetadataOptions.HttpPutResponseHopLimit", 2);
  p.set("InstanceInitiatedShutdownBehavior", cfg["shutdown_behavior"].get<std::string>());
  if (cfg["spot"].get<bool>()) {
    p.set("InstanceMarketOptions.MarketType", "spot");
    p.set("InstanceMarketOptions.SpotOptions.SpotInstanceType", "one-time");
    p.set("InstanceMarketOptions.SpotOptions.InstanceInterruptionBehavior", "terminate");
  }
  std::string profile = cfg["iam_instance_profile"];
  if (!profile.empty()) {
    p.set(profile.starts_with("arn:") ? "IamInstanceProfile.Arn" : "IamInstanceProfile.Name",
          profile);
  }
  Tags tags = machine_tags(record);
  p.add_tag_specification("instance", tags);
  p.add_tag_specification("volume", tags);
  p.add_tag_specification("network-interface", tags);
  if (cfg["spot"].get<bool>()) {
    p.add_tag_specification("spot-instances-request", tags);
  }
  std::filesystem::path host_key =
      std::filesystem::path(record.ssh.key_path).parent_path() / k_host_key_file;
  UserDataParts parts;
  parts.host_private_key = util::read_file(host_key);
  parts.host_public_key = record.ssh.host_key;
  if (!keypair.empty()) {
    std::string pub = util::read_file(record.ssh.key_path + ".pub");
    parts.authorized_keys.push_back(pub.substr(0, pub.find('\n')));
  }
  std::string user_file = cfg["user_data_file"];
  if (!user_file.empty()) {
    parts.user_data = util::read_file(user_file);
  }
  parts.boundary = "==gpumachine-" + record.id + "==";
  parts.provision_prelude = provision_prelude(record);
  p.set("UserData", util::base64_encode(user_data_for_ec2(render_user_data(parts),
                                                          "machine '" + record.name + "'")));
  return p;
}

std::vector<Instance> Ec2Driver::find_instances(Ec2Api& api, const MachineRecord& record) {
  // By tag (tags are applied atomically at launch) and by every ClientToken we ever sent.
  std::map<std::string, Instance> found;
  for (Instance& i : api.describe_instances({{"tag:" + std::string(k_tag_id), {record.id}}})) {
    found[i.id] = std::move(i);
  }
  const nlohmann::json& cfg = record.driver_config;
  if (cfg.contains("client_tokens") && !cfg["client_tokens"].empty()) {
    for (Instance& i : api.describe_instances(
             {{"client-token", cfg["client_tokens"].get<std::vector<std::string>>()}})) {
      found[i.id] = std::move(i);
    }
  }
  std::vector<Instance> out;
  for (auto& [id, i] : found) {
    if (i.state != "terminated") {
      out.push_back(std::move(i));
    }
  }
  return out;
}

void Ec2Driver::await_pending_launch(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  // A RunInstances whose answer never came launched something until proven otherwise: look it
  // up by its token until EC2's consistency window has passed (an empty answer within it proves
  // nothing).
  nlohmann::json& cfg = record.driver_config;
  if (!cfg.contains("pending_launch")) {
    return;
  }
  std::string token = cfg["pending_launch"].value("token", "");
  std::string at = cfg["pending_launch"].value("at", "");
  while (true) {
    std::vector<Instance> found = api.describe_instances({{"client-token", {token}}});
    if (!found.empty()) {
      adopt(record, found.front(), host);  // terminate_all takes it from the ledger
      return;
    }
    if (!maybe_invisible(record, at)) {
      cfg.erase("pending_launch");  // proven: nothing was launched
      host.save(record);
      return;
    }
    host.phase("looking for the launch whose answer never came (EC2 may not show it yet)");
    pause(host, k_poll_slow);
  }
}

void Ec2Driver::adopt(MachineRecord& record, const Instance& instance, DriverHost& host) {
  set_ledger(record, "instance", instance.id, "created");
  record.driver_config["instance_id"] = instance.id;
  record.driver_config.erase("pending_launch");
  record.facts["availability_zone"] = instance.availability_zone;
  host.save(record);
}

void Ec2Driver::record_address(MachineRecord& record, const Instance& instance) {
  record.ssh.host = instance.public_ip;
  record.facts["launched_at"] = instance.launch_time;
  record.facts["availability_zone"] = instance.availability_zone;
  record.last_state = std::string(to_string(map_state(instance.state)));
}

void Ec2Driver::launch(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  nlohmann::json& cfg = record.driver_config;
  if (!instance_id(record).empty()) {
    return;
  }
  // An earlier run may have launched it and died before writing the id down.
  if (cfg.contains("client_tokens")) {
    std::vector<Instance> existing = find_instances(api, record);
    if (!existing.empty()) {
      util::info("found instance " + existing.front().id + " from an earlier attempt");
      adopt(record, existing.front(), host);
      return;
    }
  }
  std::string subnet = cfg["subnet_id"];
  std::vector<std::string> zones =
      subnet.empty() ? cfg["zones"].get<std::vector<std::string>>() : std::vector<std::string>{""};
  std::string reuse_token;
  if (cfg.contains("pending_launch")) {
    // The last request's outcome was never seen: repeat it exactly (same zone, same token) so
    // EC2's idempotency returns that launch instead of making a second one.
    std::string zone = cfg["pending_launch"]["zone"];
    reuse_token = cfg["pending_launch"]["token"];
    std::erase(zones, zone);
    zones.insert(zones.begin(), zone);
  }
  std::vector<std::string> attempts;
  std::string type = cfg["instance_type"];
  for (const std::string& zone : zones) {
    host.check_interrupted();
    std::string token = reuse_token.empty() ? util::uuid4() : reuse_token;
    reuse_token.clear();
    cfg["client_tokens"].push_back(token);
    cfg["pending_launch"] = {
        {"zone", zone}, {"token", token}, {"at", util::rfc3339(std::chrono::system_clock::now())}};
    host.save(record);
    std::string zone_subnet = subnet;
    if (zone_subnet.empty() && cfg["zone_subnets"].contains(zone)) {
      zone_subnet = cfg["zone_subnets"][zone];
    }
    std::string where = zone.empty() ? "subnet " + subnet : zone;
    host.phase("launching " + type + " in " + where);
    aws::QueryResult result;
    try {
      result = api.call("RunInstances", run_params(record, zone, zone_subnet, token));
    } catch (const CloudError& e) {
      cfg.erase("pending_launch");
      if (e.code() == "IdempotentInstanceTerminated" || !is_zone_error(e.code())) {
        host.save(record);
        throw;
      }
      attempts.push_back(where + ": " + e.code());
      util::info("  " + where + ": " + e.code() + " (" + e.message() + "); trying the next zone");
      host.save(record);
      continue;
    } catch (const Error&) {
      // No answer (connection lost after the retries): it may have launched. Look before
      // giving up; pending_launch stays so a re-run repeats this exact request.
      std::vector<Instance> existing = api.describe_instances({{"client-token", {token}}});
      if (!existing.empty()) {
        adopt(record, existing.front(), host);
        return;
      }
      throw;
    }
    std::vector<Instance> launched = parse_instances(result.root());
    if (launched.empty()) {
      throw Error(subject_of(record), "RunInstances returned no instance", result.request_id);
    }
    adopt(record, launched.front(), host);
    return;
  }
  cfg["zone_attempts"] = attempts;
  throw Error(subject_of(record),
              "no zone of " + api.region() + " could launch " + type + " (tried " +
                  std::to_string(attempts.size()) + ")",
              join(attempts, "; "),
              "try again later, another --ec2-instance-type, or another --ec2-region");
}

void Ec2Driver::rollback(Ec2Api& api, MachineRecord& record, DriverHost& host) {
  // Nothing was launched: take back the key pair and group so a failed create leaves nothing.
  try {
    remove(record, host);
    record.driver_config["rolled_back"] = true;
    host.save(record);
  } catch (const Error& e) {
    util::warn(subject_of(record) + ": could not undo the partial create: " + e.what() +
               "; `gpumachine rm " + record.name + "` finishes it");
  }
  (void)api;
}

void Ec2Driver::create(MachineRecord& record, DriverHost& host) {
  nlohmann::json& cfg = record.driver_config;
  check_shutdown_behavior(record, cfg.value("shutdown_behavior", "stop"));
  if (!cfg.contains("home_id") && !cfg.contains("client_tokens")) {
    // Fixed once (a resumed launch must repeat its parameters): the tags gc tells homes and
    // ages apart by.
    cfg["home_id"] = host.home_id();
    cfg["tagged_at"] = util::rfc3339(std::chrono::system_clock::now());
  }
  Ec2Api api(cfg["region"].get<std::string>());
  if (!cfg.contains("image_id")) {
    preflight(api, record, host);
  }
  host.check_interrupted();
  cfg["create_incomplete"] = true;
  host.save(record);  // the record exists before anything is created
  try {
    ensure_local_keys(record);
    host.save(record);
    import_key_pair(api, record, host);
    host.check_interrupted();
    ensure_security_group(api, record, host);
    host.check_interrupted();
    launch(api, record, host);
  } catch (const CloudError&) {
    if (instance_id(record).empty() && !cfg.contains("pending_launch")) {
      rollback(api, record, host);
    }
    throw;
  } catch (const UsageError&) {
    if (instance_id(record).empty() && !cfg.contains("pending_launch")) {
      rollback(api, record, host);
    }
    throw;
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error& e) {
    // The all-zones failure is definitive; a lost connection is not (keep it for a resume).
    if (instance_id(record).empty() && !cfg.contains("pending_launch") &&
        cfg.contains("zone_attempts")) {
      rollback(api, record, host);
    }
    throw;
  }
  host.phase("waiting for " + instance_id(record) + " to run");
  std::optional<Instance> running;
  try {
    running = wait_for_state(api, record, instance_id(record), {"running"},
                             {"shutting-down", "terminated", "stopping", "stopped"}, false, host);
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error& e) {
    if (e.subject() == subject_of(record)) {
      throw;  // the instance's own outcome (it stopped, or never ran in time)
    }
    // EC2 could not be asked; the launch stands, so say what keeps billing.
    throw Error(subject_of(record),
                "instance " + instance_id(record) + " in " + api.region() +
                    " was launched and is running and billing, but its state cannot be read",
                e.what(),
                "`gpumachine create " + record.name + "` resumes the wait; `gpumachine rm " +
                    record.name + "` terminates it");
  }
  record_address(record, *running);
  host.save(record);
  if (host.wait_target() == "ssh") {
    host.phase("waiting for SSH on " + record.ssh.host);
    wait_for_ssh(record, host);
    replace_user_data_host_key(record, host);
  }
  cfg["create_incomplete"] = false;
  record.last_state = "running";
  host.save(record);
}

MachineState Ec2Driver::state(MachineRecord& record, DriverHost&) {
  std::string id = instance_id(record);
  if (id.empty()) {
    return record.driver_config.value("create_incomplete", false) ? MachineState::pending
                                                                  : MachineState::unknown;
  }
  Ec2Api api(record.driver_config["region"].get<std::string>());
  std::vector<Instance> found = api.describe_instances({{"instance-id", {id}}});
  if (found.empty()) {
    return MachineState::terminated;
  }
  MachineState s = map_state(found.front().state);
  if (s == MachineState::running && !found.front().public_ip.empty()) {
    record.ssh.host = found.front().public_ip;
  }
  return s;
}

void Ec2Driver::start(MachineRecord& record, DriverHost& host) {
  std::string id = instance_id(record);
  if (id.empty()) {
    throw Error(subject_of(record), "has no instance yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  Ec2Api api(record.driver_config["region"].get<std::string>());
  std::vector<Instance> found = api.describe_instances({{"instance-id", {id}}});
  if (found.empty() || found.front().state == "terminated" ||
      found.front().state == "shutting-down") {
    throw Error(subject_of(record), "instance " + id + " is terminated", {},
                "`gpumachine rm " + record.name + "` removes the record");
  }
  if (found.front().state == "stopping") {
    host.phase("waiting for " + id + " to finish stopping");
    wait_for_state(api, record, id, {"stopped"}, {"terminated"}, false, host);
  }
  if (found.front().state != "running" && found.front().state != "pending") {
    host.phase("starting " + id);
    aws::QueryParams p;
    p.set("InstanceId.1", id);
    api.call("StartInstances", p);
  }
  host.phase("waiting for " + id + " to run");
  std::optional<Instance> running = wait_for_state(
      api, record, id, {"running"}, {"shutting-down", "terminated", "stopped"}, false, host);
  record_address(record, *running);
  host.save(record);  // new address -> record and ssh_config
  if (host.wait_target() == "ssh") {
    host.phase("waiting for SSH on " + record.ssh.host);
    wait_for_ssh(record, host);
    replace_user_data_host_key(record, host);
  }
}

void Ec2Driver::power_off(MachineRecord& record, DriverHost& host, bool force) {
  std::string id = instance_id(record);
  if (id.empty()) {
    throw Error(subject_of(record), "has no instance yet", {},
                "`gpumachine rm " + record.name + "` removes what was created");
  }
  Ec2Api api(record.driver_config["region"].get<std::string>());
  host.phase(std::string(force ? "force-stopping " : "stopping ") + id);
  aws::QueryParams p;
  p.set("InstanceId.1", id);
  if (force) {
    p.set("Force", true);
  }
  try {
    api.call("StopInstances", p);
  } catch (const CloudError& e) {
    if (e.code() != "IncorrectInstanceState") {
      throw;
    }
    // Pending: wait until it runs, then stop it.
    wait_for_state(api, record, id, {"running", "stopped"}, {"terminated"}, false, host);
    api.call("StopInstances", p);
  }
  host.phase("waiting for " + id + " to stop");
  wait_for_state(api, record, id, {"stopped"}, {"terminated"}, false, host);
  record.ssh.host.clear();  // the public address is released on stop
  record.last_state = "stopped";
  host.save(record);
}

void Ec2Driver::set_shutdown_behavior(MachineRecord& record, DriverHost& host,
                                      std::string_view behavior) {
  check_shutdown_behavior(record, behavior);
  std::string id = instance_id(record);
  if (id.empty()) {
    throw Error(subject_of(record), "has no instance yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  Ec2Api api(record.driver_config["region"].get<std::string>());
  host.phase("setting " + id + "'s shutdown behavior to " + std::string(behavior));
  aws::QueryParams p;
  p.set("InstanceId", id);
  p.set("InstanceInitiatedShutdownBehavior.Value", std::string(behavior));
  api.call("ModifyInstanceAttribute", p);
  record.driver_config["shutdown_behavior"] = std::string(behavior);
  host.save(record);
}

std::string Ec2Driver::allow_ssh_from(MachineRecord& record, DriverHost& host,
                                      const std::string& wanted) {
  nlohmann::json& cfg = record.driver_config;
  if (!cfg.value("security_group_ids", nlohmann::json::array()).empty()) {
    throw UsageError(subject_of(record),
                     "uses your own security groups (--ec2-security-group-id), which gpumachine "
                     "never modifies",
                     "change their rules in the EC2 console or with `aws ec2 "
                     "authorize-security-group-ingress`");
  }
  Resource* sg = ledger(record, "security-group");
  if (sg == nullptr || sg->status != "created" || !sg->id.starts_with("sg-")) {
    throw Error(subject_of(record), "has no security group of its own yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  std::string cidr = wanted.empty() ? caller_cidr() : wanted;
  std::optional<std::string> network = cidr_network(cidr);
  if (!network || *network != cidr) {
    throw UsageError("--cidr '" + cidr + "'", "not an IPv4 CIDR block with no host bits set",
                     "e.g. --cidr 203.0.113.5/32");
  }
  std::string old = cfg.value("ssh_cidr", "");
  if (cidr == old) {
    return old;
  }
  Ec2Api api(cfg["region"].get<std::string>());
  // The new rule first, so SSH is never shut out in between.
  host.phase("allowing SSH to " + sg->id + " from " + cidr);
  try {
    api.call("AuthorizeSecurityGroupIngress", ingress_rules(cfg, sg->id, cidr));
  } catch (const CloudError& e) {
    if (e.code() != "InvalidPermission.Duplicate") {
      throw;
    }
  }
  cfg["ssh_cidr"] = cidr;
  host.save(record);
  if (!old.empty()) {
    host.phase("removing the rule for " + old);
    try {
      api.call("RevokeSecurityGroupIngress", ingress_rules(cfg, sg->id, old));
    } catch (const CloudError& e) {
      if (e.code() != "InvalidPermission.NotFound") {
        throw;
      }
    }
  }
  return old;
}

std::string Ec2Driver::explain_unreachable(const MachineRecord& record) {
  const nlohmann::json& cfg = record.driver_config;
  std::string allowed = cfg.value("ssh_cidr", "");
  if (!cfg.value("security_group_ids", nlohmann::json::array()).empty() ||
      !allowed.ends_with("/32")) {
    return {};
  }
  static std::optional<std::string> here;  // one lookup per process: create retries connects
  if (!here) {
    try {
      here = caller_cidr();
    } catch (const Error&) {
      here = "";
    }
  }
  if (here->empty() || *here == allowed) {
    return {};
  }
  return "this computer's public address is now " + *here + ", but the security group of '" +
         record.name + "' lets SSH in only from " + allowed + ": `gpumachine ssh-allow " +
         record.name + "` replaces that rule";
}

void Ec2Driver::restart(MachineRecord& record, DriverHost& host) {
  std::string id = instance_id(record);
  if (id.empty()) {
    throw Error(subject_of(record), "has no instance yet", {},
                "run `gpumachine create " + record.name + "` to finish creating it");
  }
  Ec2Api api(record.driver_config["region"].get<std::string>());
  // The boot before the reboot, so the wait below is not ended by the old boot's sshd, which
  // keeps answering until the guest begins to shut down. Unreachable now: any answer is new.
  std::string old_boot;
  if (host.wait_target() == "ssh" && !record.ssh.host.empty()) {
    try {
      old_boot = machine::boot_id(*machine::connect(record));
    } catch (const SshError& e) {
      if (!machine::is_unreachable(e)) {
        throw;
      }
    }
  }
  host.phase("rebooting " + id);
  aws::QueryParams p;
  p.set("InstanceId.1", id);
  api.call("RebootInstances", p);
  std::optional<Instance> running =
      wait_for_state(api, record, id, {"running"}, {"terminated", "stopped"}, false, host);
  record_address(record, *running);
  host.save(record);
  if (host.wait_target() == "ssh") {
    host.phase("waiting for " + record.name + " to come back from the reboot");
    machine::wait_for_new_boot(record, host, old_boot, k_ssh_deadline);
    replace_user_data_host_key(record, host);
  }
}

std::vector<std::string> Ec2Driver::remove(MachineRecord& record, DriverHost& host) {
  std::vector<std::string> done;
  nlohmann::json& cfg = record.driver_config;
  std::string region = cfg.value("region", "");
  if (region.empty() || !cfg.contains("image_id")) {
    return {"nothing was created in AWS"};
  }
  Ec2Api api(region);
  std::vector<std::string> errors;

  // 1. Instances: the ledger's, plus any found by tag or ClientToken (a create killed before it
  // wrote the id down).
  auto terminate_all = [&]() {
    await_pending_launch(api, record, host);
    std::set<std::string> ids;
    for (const Resource& r : record.resources) {
      if (r.kind == "instance" && r.status != "deleted") {
        ids.insert(r.id);
      }
    }
    for (const Instance& i : find_instances(api, record)) {
      if (!ids.contains(i.id)) {
        record.resources.push_back(
            {.kind = "instance", .id = i.id, .region = region, .status = "created"});
        host.save(record);
        ids.insert(i.id);
      }
    }
    for (const std::string& id : ids) {
      host.phase("terminating " + id);
      aws::QueryParams p;
      p.set("InstanceId.1", id);
      try {
        api.call("TerminateInstances", p);
      } catch (const CloudError& e) {
        if (!is_not_found(e.code())) {
          throw;
        }
      }
    }
    for (const std::string& id : ids) {
      host.phase("waiting for " + id + " to terminate");
      wait_for_state(api, record, id, {"terminated"}, {}, true, host);
      for (Resource& r : record.resources) {
        if (r.kind == "instance" && r.id == id) {
          r.status = "deleted";
        }
      }
      host.save(record);
      done.push_back("terminated instance " + id + " in " + region);
    }
  };
  try {
    terminate_all();
  } catch (const InterruptedError&) {
    throw;
  } catch (const Error& e) {
    errors.push_back(e.what());
  }

  // 2. Our security group (never the user's). It may still be "in use" for a while after the
  // instance is gone: retry DependencyViolation with backoff.
  Resource* sg = ledger(record, "security-group");
  if (sg != nullptr && errors.empty()) {
    try {
      std::string group_id = sg->id;
      const std::string made_at = cfg.value("sg_created_at", "");
      while (!group_id.starts_with("sg-")) {
        // Known by name only (killed while CreateSecurityGroup's answer was in flight).
        std::string found = own_security_group(api, record, group_id);
        if (!found.empty() || !maybe_invisible(record, made_at)) {
          group_id = found;
          break;
        }
        host.phase("looking for security group " + group_id + " (EC2 may not show it yet)");
        pause(host, k_poll_slow);
      }
      if (!group_id.empty()) {
        host.phase("deleting security group " + group_id);
        milliseconds delay{1000};
        auto deadline = Clock::now() + k_sg_delete_deadline;
        while (true) {
          aws::QueryParams p;
          p.set("GroupId", group_id);
          try {
            api.call("DeleteSecurityGroup", p);
            break;
          } catch (const CloudError& e) {
            // Not found right after CreateSecurityGroup is EC2 not showing it yet, not "gone".
            if (is_not_found(e.code()) && !maybe_invisible(record, made_at)) {
              break;
            }
            bool retry = e.code() == "DependencyViolation" || is_not_found(e.code());
            if (!retry || Clock::now() > deadline) {
              throw;
            }
            host.debug("ec2: " + group_id + " still in use; retrying in " +
                       std::to_string(delay.count()) + " ms");
          }
          pause(host, delay);
          delay = std::min(delay * 2, milliseconds(10000));
          terminate_all();  // an instance that was not visible before may be now
        }
        done.push_back("deleted security group " + group_id);
      }
      sg->status = "deleted";
      host.save(record);
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
  }

  // 3. Our key pair (never --ec2-keypair-name's). DeleteKeyPair of a missing name succeeds.
  Resource* key = ledger(record, "key-pair");
  if (key != nullptr) {
    try {
      host.phase("deleting key pair " + key->id);
      aws::QueryParams p;
      p.set("KeyName", key->id);
      api.call("DeleteKeyPair", p);
      done.push_back("deleted key pair " + key->id);
      key->status = "deleted";
      host.save(record);
    } catch (const InterruptedError&) {
      throw;
    } catch (const Error& e) {
      errors.push_back(e.what());
    }
  }
  if (!errors.empty()) {
    throw Error(subject_of(record), "cloud cleanup is incomplete", join(errors, "; "),
                "run `gpumachine rm " + record.name +
                    "` again; `--force` deletes the record anyway and lists what was left");
  }
  return done;
}

}  // namespace

std::unique_ptr<Driver> make_driver() {
  return std::make_unique<Ec2Driver>();
}

MachineState map_state(std::string_view s) {
  static const std::map<std::string_view, MachineState> k_map = {
      {"pending", MachineState::pending},        {"running", MachineState::running},
      {"shutting-down", MachineState::stopping}, {"terminated", MachineState::terminated},
      {"stopping", MachineState::stopping},      {"stopped", MachineState::stopped},
  };
  auto it = k_map.find(s);
  if (it == k_map.end()) {
    util::debug("ec2: unmapped instance state '" + std::string(s) + "'");
    return MachineState::unknown;
  }
  return it->second;
}

std::string caller_cidr() {
  if (const char* env = std::getenv("GPUMACHINE_CALLER_IP"); env != nullptr && *env != '\0') {
    std::string v = env;
    std::string cidr = v.find('/') == std::string::npos ? v + "/32" : v;
    std::optional<std::string> network = cidr_network(cidr);
    if (!network || *network != cidr) {
      throw UsageError(
          "GPUMACHINE_CALLER_IP '" + v + "'",
          network ? "has bits set after the prefix" : "not an IPv4 address",
          network ? "for the block write " + *network : "e.g. GPUMACHINE_CALLER_IP=203.0.113.5");
    }
    return cidr;
  }
  try {
    http::CurlTransport transport;
    http::Request request;
    request.url = "https://checkip.amazonaws.com/";
    request.timeout = std::chrono::seconds(5);
    http::Response response = transport.send(request);
    std::string ip = response.body;
    while (!ip.empty() && std::isspace(static_cast<unsigned char>(ip.back()))) {
      ip.pop_back();
    }
    if (response.status == 200 && cidr_network(ip + "/32")) {
      return ip + "/32";
    }
    throw Error("caller address", "unexpected answer from checkip.amazonaws.com",
                "HTTP " + std::to_string(response.status));
  } catch (const Error& e) {
    throw Error("--ec2-ssh-cidr", "cannot find this machine's public address", e.what(),
                "pass the address range SSH comes from, e.g. --ec2-ssh-cidr 203.0.113.5/32");
  } catch (const std::exception& e) {
    throw Error("--ec2-ssh-cidr", "cannot find this machine's public address", e.what(),
                "pass the address range SSH comes from, e.g. --ec2-ssh-cidr 203.0.113.5/32");
  }
}

}  // namespace gm::drivers::ec2
