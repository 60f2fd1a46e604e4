#!/usr/bin/env bash
# Step "driver" on Ubuntu: Canonical's precompiled, Canonical-signed kernel modules (no DKMS, no
# compiler, loads under Secure Boot); NVIDIA's cuda-keyring repository with DKMS only when no
# precompiled module exists for the running kernel.
# plan: apt-get install linux-modules-nvidia-${GM_BRANCH}-server${GM_OPEN_SUFFIX}-$(uname -r) linux-modules-nvidia-${GM_BRANCH}-server${GM_OPEN_SUFFIX}-<kernel meta: aws, generic-hwe-22.04, aws-lts-22.04...> nvidia-headless-no-dkms-${GM_BRANCH}-server${GM_OPEN_SUFFIX} nvidia-utils-${GM_BRANCH}-server
# plan: (no precompiled module for the kernel) cuda-keyring repo (from ${GM_CUDA_REPO}) + linux-headers-<kernel meta> linux-headers-$(uname -r) nvidia-driver-pinning-${GM_BRANCH} + nvidia-open|cuda-drivers (DKMS, with recommends)
# plan: systemctl enable nvidia-persistenced (where installed)
# plan: (--no-gsp) /etc/modprobe.d/gpumachine-gsp.conf: options nvidia NVreg_EnableGpuFirmware=0
set -euo pipefail # also set by lib.sh, which is sent first
gm_gsp_option # before the "installed" check: it may be all that changed
suffix=""
if [ "$GM_FLAVOUR" = open ]; then suffix="-open"; fi
kernel=$(uname -r)
precompiled=("linux-modules-nvidia-$GM_BRANCH-server$suffix-$kernel"
  "nvidia-headless-no-dkms-$GM_BRANCH-server$suffix" "nvidia-utils-$GM_BRANCH-server")
if [ "$GM_FLAVOUR" = open ]; then dkms_pkg=nvidia-open; else dkms_pkg=cuda-drivers; fi

installed() {
  local p
  for p in "$@"; do gm_deb_installed "$p" || return 1; done
}
if installed "${precompiled[@]}" || installed "nvidia-driver-pinning-$GM_BRANCH" "$dkms_pkg"; then
  gm_done "driver $GM_BRANCH ($GM_FLAVOUR) installed"
fi

if gm_nouveau_loaded; then
  # The packages blacklist nouveau too; ours makes sure the next boot gives the GPU to nvidia.
  printf 'blacklist nouveau\noptions nouveau modeset=0\n' |
    gm_write /etc/modprobe.d/gpumachine-blacklist-nouveau.conf 0644
fi

gm_apt update
if gm_apt_available "linux-modules-nvidia-$GM_BRANCH-server$suffix-$kernel"; then
  echo "installing precompiled signed modules for kernel $kernel"
  extra=()
  # The meta package of the kernel's own meta (aws, generic-hwe-22.04, aws-lts-22.04...) pulls
  # matching modules with every future kernel the host gets.
  meta="linux-modules-nvidia-$GM_BRANCH-server$suffix-$(gm_kernel_meta)"
  if gm_apt_available "$meta"; then extra+=("$meta"); fi
  if [ "$(dpkg --print-architecture)" = amd64 ] && gm_apt_available "linux-signatures-nvidia-$kernel"; then
    extra+=("linux-signatures-nvidia-$kernel")
  fi
  gm_apt_install "${precompiled[@]}" "${extra[@]}"
else
  if gm_secure_boot_on; then
    gm_fail "no precompiled NVIDIA $GM_BRANCH module for kernel $kernel, and Secure Boot is on" \
      "Secure Boot is on and DKMS modules cannot be signed: use an Ubuntu image whose kernel has precompiled modules, or turn Secure Boot off"
  fi
  echo "no precompiled module for kernel $kernel: using NVIDIA's repository with DKMS"
  gm_cuda_keyring "ubuntu${GM_OS_VERSION//./}"
  gm_dkms_headers
  gm_apt_install "${GM_HEADERS[@]}" "nvidia-driver-pinning-$GM_BRANCH"
  # With recommends: NVIDIA's packages recommend nvidia-smi, libcuda and nvidia-persistenced.
  gm_apt install "$dkms_pkg"
fi
gm_have nvidia-smi || gm_fail "the driver packages were installed but nvidia-smi was not" \
  "install it by hand (apt-get install nvidia-utils-$GM_BRANCH-server), then provision again"
gm_enable_if_present nvidia-persistenced
gm_applied "driver $GM_BRANCH ($GM_FLAVOUR)"
