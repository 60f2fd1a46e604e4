#!/usr/bin/env bash
# Step "fabric" (NVSwitch hosts only): Fabric Manager of exactly the installed driver's version
# (it refuses to start otherwise), the NVLink subnet manager on Hopper and newer (gen-4 NVSwitch),
# nvidia-persistenced. The services start for real after the reboot that loads the driver.
# plan: install nvidia-fabricmanager-${GM_BRANCH}=<driver version> (apt) or nvidia-fabricmanager-<driver version> (dnf)
# plan: (Hopper and newer) install nvlsm, load ib_umad at boot
# plan: systemctl enable --now nvidia-fabricmanager nvidia-persistenced
set -euo pipefail # also set by lib.sh, which is sent first
version=$(gm_userspace_version)
if [ -z "$version" ]; then
  gm_fail "no NVIDIA driver installed, so no Fabric Manager version to match" \
    "re-run provisioning; the driver step must succeed first"
fi
fm_version() {
  if gm_have dpkg-query; then
    # shellcheck disable=SC2016 # dpkg-query's own format.
    dpkg-query -W -f='${Version}' "nvidia-fabricmanager-$GM_BRANCH" nvidia-fabricmanager 2>/dev/null |
      head -n1 | cut -d- -f1 || true
  else
    rpm -q --qf '%{VERSION}' nvidia-fabricmanager 2>/dev/null || true
  fi
}
nvlsm_ok=1
if [ "${GM_NVLSM:-0}" = 1 ]; then
  if gm_have dpkg-query; then gm_deb_installed nvlsm || nvlsm_ok=0; else gm_rpm_installed nvlsm || nvlsm_ok=0; fi
fi
fm_running() { [ -z "$(gm_loaded_version)" ] || systemctl is-active --quiet nvidia-fabricmanager 2>/dev/null; }
if [ "$(fm_version)" = "$version" ] && [ "$nvlsm_ok" = 1 ] &&
  systemctl is-enabled --quiet nvidia-fabricmanager 2>/dev/null && fm_running; then
  gm_done "Fabric Manager $version"
fi

packages=()
if gm_have apt-get; then
  if gm_deb_installed cuda-keyring; then
    packages+=("nvidia-fabricmanager=$version-*")
  else
    packages+=("nvidia-fabricmanager-$GM_BRANCH=$version-*")
  fi
  if [ "${GM_NVLSM:-0}" = 1 ]; then packages+=(nvlsm); fi
  gm_apt_install "${packages[@]}"
else
  packages+=("nvidia-fabricmanager-$version")
  if [ "${GM_NVLSM:-0}" = 1 ]; then packages+=(nvlsm); fi
  gm_dnf install "${packages[@]}"
fi
if [ "${GM_NVLSM:-0}" = 1 ]; then
  echo ib_umad | gm_write /etc/modules-load.d/gpumachine-nvlsm.conf 0644
fi
$SUDO systemctl enable nvidia-fabricmanager nvidia-persistenced
if [ -n "$(gm_loaded_version)" ]; then
  $SUDO systemctl start nvidia-fabricmanager
else
  gm_note "Fabric Manager starts once the nvidia module is loaded (next boot)"
fi
gm_applied "Fabric Manager $version"
