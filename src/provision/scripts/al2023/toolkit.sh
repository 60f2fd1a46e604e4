#!/usr/bin/env bash
# Step "toolkit" on Amazon Linux 2023: NVIDIA Container Toolkit from NVIDIA's rpm repository.
# plan: curl -fsSL ${GM_TOOLKIT_REPO}/stable/rpm/nvidia-container-toolkit.repo > /etc/yum.repos.d/nvidia-container-toolkit.repo
# plan: dnf install nvidia-container-toolkit
# plan: nvidia-ctk runtime configure --runtime=docker; systemctl restart docker (only when that changed its configuration)
set -euo pipefail # also set by lib.sh, which is sent first
daemon_json="$R/etc/docker/daemon.json"
if gm_rpm_installed nvidia-container-toolkit && grep -q '"nvidia"' "$daemon_json" 2>/dev/null; then
  gm_done "toolkit $(nvidia-ctk --version 2>/dev/null | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)"
fi
if ! gm_rpm_installed nvidia-container-toolkit; then
  curl -fsSL "$GM_TOOLKIT_REPO/stable/rpm/nvidia-container-toolkit.repo" |
    sed "s|$GM_TOOLKIT_UPSTREAM|$GM_TOOLKIT_REPO|g" |
    gm_write /etc/yum.repos.d/nvidia-container-toolkit.repo 0644
  gm_dnf install nvidia-container-toolkit
fi
gm_docker_runtime_configure "$daemon_json"
gm_applied "toolkit $(nvidia-ctk --version | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)"
