#!/usr/bin/env bash
# Step "driver" on Amazon Linux 2023: NVIDIA's amzn2023 repository, the dnf module stream of the
# branch, compute-only packages, DKMS (pinned to the running kernel's devel/extra packages).
# plan: dnf install dkms kernel-devel-$(uname -r) kernel-modules-extra-$(uname -r)
# plan: dnf config-manager --add-repo https://developer.download.nvidia.com/compute/cuda/repos/amzn2023/$(uname -m)/cuda-amzn2023.repo
# plan: dnf module enable nvidia-driver:${GM_DNF_STREAM}
# plan: dnf install nvidia-driver-cuda ${GM_KMOD_PACKAGE} nvidia-persistenced
# plan: systemctl enable nvidia-persistenced
# plan: (--no-gsp) /etc/modprobe.d/gpumachine-gsp.conf: options nvidia NVreg_EnableGpuFirmware=0
set -euo pipefail # also set by lib.sh, which is sent first
gm_gsp_option # before the "installed" check: it may be all that changed
kernel=$(uname -r)
if [ "$GM_FLAVOUR" = open ]; then
  stream="$GM_BRANCH-open"
  kmod="kmod-nvidia-open-dkms"
else
  stream="$GM_BRANCH-dkms"
  kmod="kmod-nvidia-latest-dkms"
fi
version_of() { rpm -q --qf '%{VERSION}' "$1" 2>/dev/null || true; }
if gm_rpm_installed "$kmod" && gm_rpm_installed nvidia-driver-cuda &&
  [ "$(version_of nvidia-driver-cuda | cut -d. -f1)" = "$GM_BRANCH" ]; then
  gm_done "driver $GM_BRANCH ($GM_FLAVOUR) installed"
fi
if gm_secure_boot_on; then
  gm_fail "Secure Boot is on and DKMS modules cannot be signed" \
    "Secure Boot is on and DKMS modules cannot be signed: use an Ubuntu image with precompiled modules, or turn Secure Boot off"
fi
if gm_nouveau_loaded; then
  printf 'blacklist nouveau\noptions nouveau modeset=0\n' |
    gm_write /etc/modprobe.d/gpumachine-blacklist-nouveau.conf 0644
fi
gm_dnf install dkms "kernel-devel-$kernel" "kernel-modules-extra-$kernel"
$SUDO dnf config-manager --add-repo \
  "https://developer.download.nvidia.com/compute/cuda/repos/amzn2023/$(uname -m)/cuda-amzn2023.repo"
gm_dnf module enable "nvidia-driver:$stream"
gm_dnf install nvidia-driver-cuda "$kmod" nvidia-persistenced
$SUDO systemctl enable nvidia-persistenced || gm_note "could not enable nvidia-persistenced"
gm_applied "driver $GM_BRANCH ($GM_FLAVOUR)"
