// Replacing the host key that travelled in user data with one made on the host (host_key.sh).
#pragma once

#include "drivers/ec2/ec2_config.h"
#include "gm/driver.h"
#include "gm/machine.h"

namespace gm::drivers::ec2 {

/// Once per machine, after SSH first answers with the user-data key: has the host make a new
/// ed25519 host key, pins it and makes sshd use it, so the user-data key (readable from the
/// instance metadata for the instance's life) no longer identifies the host. Resumable at every
/// step: cfg.host_key_next holds a key made on the host and not yet seen in use;
/// cfg.host_key_replaced says it is done. \a cfg is written into the record at each save.
void replace_user_data_host_key(MachineRecord& record, Ec2Config& cfg, DriverHost& host);

}  // namespace gm::drivers::ec2
