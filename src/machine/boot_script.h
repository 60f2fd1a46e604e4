// The first-boot script a cloud driver hands its provider (DriverHost::boot_script()): the host
// key pinned before the first connection, and the provisioning prelude that starts installing the
// NVIDIA driver, Docker and the toolkit while the machine boots.
#pragma once

#include "gm/driver.h"

#include <filesystem>

namespace gm::machine {

/// Makes (once; reused on resume, so a resumed launch sends the same bytes) the machine's host
/// key pair at \a host_key_path (+ ".pub") and pins its public half in record.ssh.host_key. The
/// prelude is there when the machine will be provisioned (record.provision.at_boot) and \a image
/// names an OS with a recipe.
BootScript make_boot_script(MachineRecord& record, const BootImage& image,
                            const std::filesystem::path& host_key_path);

}  // namespace gm::machine
