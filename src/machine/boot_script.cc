#include "machine/boot_script.h"

#include "provision/provisioner.h"
#include "ssh/keys.h"
#include "util/fs.h"

#include <algorithm>
#include <utility>

namespace gm::machine {

namespace {

/// The GPU generation of a GPU model as provider catalogues name it ("T4", "H100").
provision::GpuGeneration generation_of(std::string_view gpu_model) {
  static const std::pair<std::string_view, provision::GpuGeneration> k_models[] = {
      {"K80", provision::GpuGeneration::kepler},    {"M60", provision::GpuGeneration::maxwell},
      {"V100", provision::GpuGeneration::volta},    {"T4", provision::GpuGeneration::turing},
      {"A10G", provision::GpuGeneration::ampere},   {"A100", provision::GpuGeneration::ampere},
      {"L40S", provision::GpuGeneration::ada},      {"L4", provision::GpuGeneration::ada},
      {"H100", provision::GpuGeneration::hopper},   {"H200", provision::GpuGeneration::hopper},
      {"B200", provision::GpuGeneration::blackwell}};
  for (const auto& [model, generation] : k_models) {
    if (gpu_model.starts_with(model)) {
      return generation;
    }
  }
  return provision::GpuGeneration::unknown;
}

std::string prelude(const MachineRecord& record, const BootImage& image) {
  if (!record.provision.at_boot || image.os_id.empty()) {
    return {};
  }
  provision::PreludeInputs in;
  in.os_id = image.os_id;
  in.os_version_id = image.os_version;
  in.user = record.ssh.user;
  in.overrides = provision::driver_overrides_from_json(record.provision.overrides);
  provision::GpuGeneration generation = generation_of(record.size.gpu_model);
  if (record.size.gpu_count > 0 && generation != provision::GpuGeneration::unknown) {
    in.gpus.assign(static_cast<std::size_t>(record.size.gpu_count), generation);
  }
  in.nvswitch = image.nvswitch;
  return provision::cloud_init_prelude(in);
}

}  // namespace

BootScript make_boot_script(MachineRecord& record, const BootImage& image,
                            const std::filesystem::path& host_key_path) {
  // A pair is only used once whole, so a half-written one (a kill between its two files) is
  // safe to make again.
  ssh::ensure_key_pair(host_key_path, "host-" + record.name);
  std::string pub = util::read_file(host_key_path.string() + ".pub");
  // known_hosts holds "type base64" without the comment.
  auto second_space = pub.find(' ', pub.find(' ') + 1);
  BootScript boot;
  boot.host_private_key = util::read_file(host_key_path);
  boot.host_public_key = pub.substr(0, std::min(second_space, pub.find('\n')));
  record.ssh.host_key = boot.host_public_key;
  boot.script = prelude(record, image);
  return boot;
}

}  // namespace gm::machine
