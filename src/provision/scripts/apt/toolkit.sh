#!/usr/bin/env bash
# Step "toolkit" on Ubuntu and Debian: NVIDIA Container Toolkit from NVIDIA's repository, wired
# into Docker. A Docker restart is all it needs (no reboot), and only when its configuration changed.
# plan: curl -fsSL ${GM_TOOLKIT_REPO}/gpgkey | gpg --dearmor -o /usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
# plan: curl -fsSL ${GM_TOOLKIT_REPO}/stable/deb/nvidia-container-toolkit.list (signed-by added) > /etc/apt/sources.list.d/nvidia-container-toolkit.list
# plan: apt-get install nvidia-container-toolkit
# plan: nvidia-ctk runtime configure --runtime=docker; systemctl restart docker (only when that changed its configuration)
set -euo pipefail # also set by lib.sh, which is sent first
daemon_json="$R/etc/docker/daemon.json"
if gm_deb_installed nvidia-container-toolkit && grep -q '"nvidia"' "$daemon_json" 2>/dev/null; then
  gm_done "toolkit $(nvidia-ctk --version 2>/dev/null | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)"
fi
if ! gm_deb_installed nvidia-container-toolkit; then
  gm_need curl gpg
  keyring=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg
  curl -fsSL "$GM_TOOLKIT_REPO/gpgkey" | gpg --dearmor | gm_write "$keyring" 0644
  # The list names NVIDIA's server; a mirror stands in for it.
  curl -fsSL "$GM_TOOLKIT_REPO/stable/deb/nvidia-container-toolkit.list" |
    sed -E -e "s#^deb (https?://)#deb [signed-by=$keyring] \1#" \
      -e "s|$GM_TOOLKIT_UPSTREAM|$GM_TOOLKIT_REPO|g" |
    gm_write /etc/apt/sources.list.d/nvidia-container-toolkit.list 0644
  gm_apt update
  gm_apt_install nvidia-container-toolkit
fi
gm_docker_runtime_configure "$daemon_json"
gm_applied "toolkit $(nvidia-ctk --version | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)"
