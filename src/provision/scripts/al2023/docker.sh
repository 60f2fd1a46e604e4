#!/usr/bin/env bash
# Step "docker" on Amazon Linux 2023: Amazon's own docker package (Docker publishes no AL2023
# repository), enabled at boot, the SSH user in the docker group.
# plan: dnf install docker; systemctl enable --now docker; usermod -aG docker ${GM_USER}
set -euo pipefail # also set by lib.sh, which is sent first
in_group() { [ "$(id -u "$GM_USER")" -eq 0 ] || id -nG "$GM_USER" | tr ' ' '\n' | grep -qx docker; }
if gm_rpm_installed docker && systemctl is-enabled --quiet docker 2>/dev/null && in_group; then
  gm_done "docker $(docker --version 2>/dev/null | sed -n 's/^Docker version \([^,]*\).*/\1/p')"
fi
if ! gm_rpm_installed docker; then gm_dnf install docker; fi
$SUDO systemctl enable --now docker
if ! in_group; then $SUDO usermod -aG docker "$GM_USER"; fi
gm_applied "docker $(docker --version | sed -n 's/^Docker version \([^,]*\).*/\1/p')"
