// The digitalocean driver: droplets (CPU and GPU sizes) in the user's own DigitalOcean account.
// Per machine: one registered SSH key (the machine's own ed25519 key), one tag naming the machine
// id, a cloud firewall on that tag admitting 22/tcp from the caller's /32 only (created before
// the droplet, so the droplet is never open), and the droplet with the pinned host key in its
// user data. Each is in the ledger and saved before the next side effect. A powered-off droplet
// is billed in full: only destroy stops billing (facts 2.6).
#pragma once

#include "gm/driver.h"

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace gm::drivers::digitalocean {

/// Tags on every droplet (DigitalOcean tags are names, so key:value): "gpumachine" and these
/// prefixes followed by the value.
inline constexpr const char* k_tag_all = "gpumachine";
inline constexpr const char* k_tag_id = "gpumachine:id:";
inline constexpr const char* k_tag_machine = "gpumachine:machine:";
inline constexpr const char* k_tag_home = "gpumachine:home:";

/// The registry row for this driver (flags, factory, batched ls).
DriverInfo driver_info();
std::unique_ptr<Driver> make_driver();

/// `gc`: droplets tagged gpumachine that no local record owns, with the firewalls and SSH keys of
/// machines without a record; nothing when no token is configured (DigitalOcean is not in use).
std::vector<Orphan> find_orphans(const OrphanScope& scope);
/// `gc --delete`: droplets (each waited for until gone), then firewalls and keys.
std::vector<std::string> delete_orphans(const std::vector<Orphan>& orphans);

/// The portable state of a droplet status (new, active, off, archive).
MachineState map_status(std::string_view status);

/// The image a size boots when --do-image is not given (facts 3.3): the NVIDIA AI/ML-ready
/// images for NVIDIA GPU sizes (the NVLink one for 8 GPUs), the AMD one for MI3xx sizes, else
/// Ubuntu 24.04.
std::string default_image(std::string_view size_slug);

}  // namespace gm::drivers::digitalocean
