#!/usr/bin/env bash
# Step "driver" on Debian 12 and 13: NVIDIA's cuda-keyring repository with DKMS (Debian has no
# signed precompiled modules, so Secure Boot would need interactive MOK enrollment: refuse instead).
# plan: enable the contrib component in /etc/apt/sources.list.d/debian.sources
# plan: cuda-keyring (debian${GM_OS_VERSION}, from ${GM_CUDA_REPO}); apt-get update
# plan: apt-get install linux-headers-<kernel meta> linux-headers-$(uname -r) nvidia-driver-pinning-${GM_BRANCH}
# plan: (running kernel's headers gone from the archive) + linux-image-<kernel meta>, then reboot into it
# plan: apt-get install ${GM_DKMS_PACKAGE} (with its recommended packages: nvidia-smi, libcuda, nvidia-persistenced)
# plan: systemctl enable nvidia-persistenced (where installed)
# plan: (--no-gsp) /etc/modprobe.d/gpumachine-gsp.conf: options nvidia NVreg_EnableGpuFirmware=0
set -euo pipefail # also set by lib.sh, which is sent first
gm_gsp_option # before the "installed" check: it may be all that changed
if [ "$GM_FLAVOUR" = open ]; then pkg=nvidia-open; else pkg=cuda-drivers; fi
if gm_deb_installed "nvidia-driver-pinning-$GM_BRANCH" && gm_deb_installed "$pkg"; then
  gm_done "driver $GM_BRANCH ($GM_FLAVOUR) installed"
fi
if gm_secure_boot_on; then
  gm_fail "Secure Boot is on and Debian has no signed NVIDIA modules" \
    "Secure Boot is on and DKMS modules cannot be signed: use an Ubuntu image with precompiled modules, or turn Secure Boot off"
fi
if gm_nouveau_loaded; then
  printf 'blacklist nouveau\noptions nouveau modeset=0\n' |
    gm_write /etc/modprobe.d/gpumachine-blacklist-nouveau.conf 0644
fi
gm_debian_contrib # NVIDIA's packages depend on contrib
gm_cuda_keyring "debian$GM_OS_VERSION"
gm_dkms_headers
gm_apt_install "${GM_HEADERS[@]}" "nvidia-driver-pinning-$GM_BRANCH"
# With recommends: NVIDIA's Debian-style packages recommend nvidia-smi, libcuda and
# nvidia-persistenced, which a compute host needs.
gm_apt install "$pkg"
gm_have nvidia-smi || gm_fail "$pkg was installed but nvidia-smi was not" \
  "install it by hand (apt-get install nvidia-smi), then provision again"
gm_enable_if_present nvidia-persistenced
gm_applied "driver $GM_BRANCH ($GM_FLAVOUR)"
