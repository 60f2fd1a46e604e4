#!/usr/bin/env bash
# mmdebstrap's customize hook for build-image.sh: runs on the host with the new root as $1.
set -euo pipefail
root=$1

# cloud-init as on a cloud image, but with no network configuration (it would DHCP the host's
# interface: the container shares the host's network) and only the NoCloud seed as datasource.
# The default locale is one the image has: minimal Debian generates none, and cloud-init's locale
# module would fail on its default en_US.UTF-8 (a cloud image ships a working default).
cat >"$root/etc/cloud/cloud.cfg.d/90-gm-realhost.cfg" <<'CFG'
network: {config: disabled}
datasource_list: [ NoCloud, None ]
locale: C.UTF-8
system_info:
  default_user:
    name: admin
CFG

# The login user, like "admin" on Debian's AMIs: passwordless sudo, unlocked for key logins.
chroot "$root" useradd --create-home --shell /bin/bash --groups sudo admin
chroot "$root" usermod -p '*' admin
echo 'admin ALL=(ALL) NOPASSWD:ALL' >"$root/etc/sudoers.d/90-admin"
chmod 0440 "$root/etc/sudoers.d/90-admin"

# No apt sources, no name server: nothing inside reaches beyond loopback.
rm -f "$root/etc/apt/sources.list" "$root"/etc/apt/sources.list.d/*
rm -rf "$root"/var/lib/apt/lists/*
mkdir -p "$root/var/lib/apt/lists/partial"
echo '# loopback only: no name server' >"$root/etc/resolv.conf"
printf '127.0.0.1 localhost\n::1 localhost\n' >"$root/etc/hosts"

# Timers that would take the apt lock at random moments; tests hold it on purpose instead.
for t in apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$root/etc/systemd/system/$t"
done

# sshd listens only where a test tells it: the fixture rewrites this file before each boot.
echo 'ListenAddress 127.0.0.1:1' >"$root/etc/ssh/sshd_config.d/50-gm-listen.conf"
