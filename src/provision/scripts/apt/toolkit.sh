#!/usr/bin/env bash
# Step "toolkit" on Ubuntu and Debian: NVIDIA Container Toolkit from NVIDIA's repository, wired
# into Docker. A Docker restart is all it needs (no reboot).
# plan: curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
# plan: curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list (signed-by added) > /etc/apt/sources.list.d/nvidia-container-toolkit.list
# plan: apt-get install nvidia-container-toolkit
# plan: nvidia-ctk runtime configure --runtime=docker; systemctl restart docker
set -euo pipefail # also set by lib.sh, which is sent first
daemon_json="$R/etc/docker/daemon.json"
if gm_deb_installed nvidia-container-toolkit && grep -q '"nvidia"' "$daemon_json" 2>/dev/null; then
  gm_done "toolkit $(nvidia-ctk --version 2>/dev/null | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)"
fi
if ! gm_deb_installed nvidia-container-toolkit; then
  gm_need curl gpg
  keyring=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  curl -fsSL https://nvidia.github.io/libnvidia-container/gpgkey | gpg --dearmor |
    gm_write "$keyring" 0644
  curl -fsSL https://nvidia.github.io/libnvidia-container/stable/deb/nvidia-container-toolkit.list |
    sed "s#deb https://#deb [signed-by=$keyring] https://#g" |
    gm_write /etc/apt/sources.list.d/nvidia-container-toolkit.list 0644
  gm_apt update
  gm_apt_install nvidia-container-toolkit
fi
$SUDO nvidia-ctk runtime configure --runtime=docker --config="$daemon_json"
$SUDO systemctl restart docker
gm_applied "toolkit $(nvidia-ctk --version | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)"
