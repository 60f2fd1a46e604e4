#!/usr/bin/env bash
# Step "facts": everything the plan needs, in one round trip, as one JSON line ("gm: json {...}").
# Read-only: it installs nothing and changes nothing.
# plan: read /etc/os-release, uname, /sys/bus/pci/devices/*/{vendor,device,class}, mokutil --sb-state (or the SecureBoot EFI variable),
# plan: /proc/modules, /sys/module/nvidia/version, /proc/driver/nvidia/{version,params}, nvidia-smi --query-gpu,
# plan: /var/run/reboot-required, dnf needs-restarting -r or a newer /boot/vmlinuz-*, /opt/dlami, docker, nvidia-ctk
set -euo pipefail # also set by lib.sh, which is sent first

js() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  s=${s//$'\r'/}
  s=${s//$'\n'/\\n}
  printf '"%s"' "$s"
}
jb() { if "$@"; then printf true; else printf false; fi; }

declare -A os=()
if [ -r "$R/etc/os-release" ]; then
  while IFS='=' read -r key value; do
    case "$key" in '' | '#'*) continue ;; esac
    value=${value#\"}
    value=${value%\"}
    value=${value#\'}
    value=${value%\'}
    os[$key]=$value
  done <"$R/etc/os-release"
fi

pci=""
for dev in "$R"/sys/bus/pci/devices/*; do
  [ -r "$dev/vendor" ] || continue
  [ "$(cat "$dev/vendor")" = 0x10de ] || continue
  entry="{\"slot\":$(js "${dev##*/}"),\"device\":$(js "$(cat "$dev/device")"),\"class\":$(js "$(cat "$dev/class" 2>/dev/null || true)")}"
  pci="${pci:+$pci,}$entry"
done

sb=$(gm_secure_boot_state)

loaded=$(gm_loaded_version)
loaded_flavour=""
if [ -r "$R/proc/driver/nvidia/version" ]; then
  if grep -q 'Open Kernel Module' "$R/proc/driver/nvidia/version"; then
    loaded_flavour=open
  else
    loaded_flavour=proprietary
  fi
fi
smi_error=""
userspace=""
if gm_have nvidia-smi; then
  if ! smi_out=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>&1); then
    smi_error=$(echo "$smi_out" | head -n1)
  fi
fi
userspace=$(gm_userspace_version)
module_on_disk=""
if gm_have modinfo; then
  module_on_disk=$(modinfo -F version nvidia 2>/dev/null || true)
fi

reboot_required=$(jb gm_reboot_pending)

docker_version=""
docker_active=false
if gm_have docker; then
  docker_version=$(docker --version 2>/dev/null | sed -n 's/^Docker version \([^,]*\).*/\1/p')
  if systemctl is-active --quiet docker 2>/dev/null; then docker_active=true; fi
fi
in_group=false
if [ "$(id -u)" -eq 0 ] || id -nG "$GM_USER" 2>/dev/null | tr ' ' '\n' | grep -qx docker; then
  in_group=true
fi
ctk_version=""
if gm_have nvidia-ctk; then
  ctk_version=$(nvidia-ctk --version 2>/dev/null | sed -n 's/.*version \([0-9][^ ]*\).*/\1/p' | head -n1)
fi
nvidia_runtime=false
if grep -q '"nvidia"' "$R/etc/docker/daemon.json" 2>/dev/null; then nvidia_runtime=true; fi

pkg=none
if gm_have apt-get; then pkg=apt; elif gm_have dnf; then pkg=dnf; fi

printf 'gm: json {'
printf '"os":{"id":%s,"version_id":%s,"codename":%s,"pretty_name":%s,"id_like":%s},' \
  "$(js "${os[ID]:-}")" "$(js "${os[VERSION_ID]:-}")" \
  "$(js "${os[VERSION_CODENAME]:-${os[UBUNTU_CODENAME]:-}}")" "$(js "${os[PRETTY_NAME]:-}")" \
  "$(js "${os[ID_LIKE]:-}")"
printf '"kernel":%s,"arch":%s,"user":%s,"uid":%s,"package_manager":%s,' \
  "$(js "$(uname -r)")" "$(js "$(uname -m)")" "$(js "$GM_USER")" "$(id -u)" "$(js "$pkg")"
printf '"pci":[%s],"secure_boot":%s,"nouveau_loaded":%s,' "$pci" "$(js "$sb")" "$(jb gm_nouveau_loaded)"
printf '"driver":{"loaded_version":%s,"loaded_flavour":%s,"userspace_version":%s,"module_version":%s,"smi_error":%s,"gsp_param":%s},' \
  "$(js "$loaded")" "$(js "$loaded_flavour")" "$(js "$userspace")" "$(js "$module_on_disk")" "$(js "$smi_error")" "$(js "$(gm_gsp_param)")"
printf '"reboot_required":%s,"dlami":%s,"cloud_init":%s,' \
  "$reboot_required" "$(jb test -d "$R/opt/dlami")" "$(jb gm_have cloud-init)"
printf '"docker":{"installed":%s,"version":%s,"active":%s,"user_in_group":%s},' \
  "$(jb gm_have docker)" "$(js "$docker_version")" "$docker_active" "$in_group"
printf '"toolkit":{"installed":%s,"version":%s,"docker_runtime":%s}' \
  "$(jb gm_have nvidia-ctk)" "$(js "$ctk_version")" "$nvidia_runtime"
printf '}\n'
