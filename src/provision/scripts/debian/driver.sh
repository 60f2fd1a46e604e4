#!/usr/bin/env bash
# Step "driver" on Debian 12: NVIDIA's cuda-keyring repository with DKMS (Debian has no signed
# precompiled modules, so Secure Boot would need interactive MOK enrollment: refuse instead).
# plan: enable the contrib component in /etc/apt/sources.list.d/debian.sources
# plan: cuda-keyring (debian12) + apt-get install linux-headers-$(uname -r) nvidia-driver-pinning-${GM_BRANCH} ${GM_DKMS_PACKAGE}
# plan: systemctl enable nvidia-persistenced
# plan: (--no-gsp) /etc/modprobe.d/gpumachine-gsp.conf: options nvidia NVreg_EnableGpuFirmware=0
set -euo pipefail # also set by lib.sh, which is sent first
gm_gsp_option # before the "installed" check: it may be all that changed
kernel=$(uname -r)
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
gm_cuda_keyring debian12
gm_apt_install "linux-headers-$kernel" "nvidia-driver-pinning-$GM_BRANCH"
gm_apt_install "$pkg"
$SUDO systemctl enable nvidia-persistenced || gm_note "could not enable nvidia-persistenced"
gm_applied "driver $GM_BRANCH ($GM_FLAVOUR)"
