#!/usr/bin/env bash
# Step "driver" on Amazon Linux 2023: NVIDIA's amzn2023 repository, the dnf module stream of the
# branch, compute-only packages, DKMS (pinned to the running kernel's devel/extra packages).
# plan: dnf install dkms kernel-devel-$(uname -r) kernel-modules-extra-$(uname -r) (kernel6.12-devel-... on 6.12 kernels)
# plan: dnf config-manager --add-repo ${GM_CUDA_REPO}/amzn2023/<x86_64|sbsa>/cuda-amzn2023.repo
# plan: dnf module reset nvidia-driver; dnf module enable nvidia-driver:${GM_DNF_STREAM}
# plan: dnf install nvidia-driver-cuda ${GM_KMOD_PACKAGE} nvidia-persistenced
# plan: systemctl enable nvidia-persistenced (where installed)
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
# The default 6.1 kernel's packages are kernel-*; the newer kernels' carry their series
# (kernel6.12-devel, kernel6.12-modules-extra).
series=$(echo "$kernel" | cut -d. -f1-2)
kpkg=kernel
if [ "$series" != 6.1 ]; then kpkg="kernel$series"; fi
gm_dnf install dkms "$kpkg-devel-$kernel" "$kpkg-modules-extra-$kernel"
# NVIDIA publishes aarch64 (Graviton) packages under sbsa.
arch=$(uname -m)
if [ "$arch" = aarch64 ]; then arch=sbsa; fi
$SUDO dnf config-manager --add-repo "$GM_CUDA_REPO/amzn2023/$arch/cuda-amzn2023.repo"
for f in "$R"/etc/yum.repos.d/cuda-amzn2023*.repo; do
  if [ -f "$f" ]; then $SUDO sed -i "s|$GM_CUDA_UPSTREAM|$GM_CUDA_REPO|g" "$f"; fi
done
# A stream enabled before (another branch or flavour) blocks enabling this one until reset.
gm_dnf module reset nvidia-driver
gm_dnf module enable "nvidia-driver:$stream"
# --allowerasing: the other flavour's kmod package conflicts with this one.
gm_dnf install --allowerasing nvidia-driver-cuda "$kmod" nvidia-persistenced
gm_enable_if_present nvidia-persistenced
gm_applied "driver $GM_BRANCH ($GM_FLAVOUR)"
