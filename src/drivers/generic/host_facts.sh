#!/bin/sh
# Prints basic facts about the host as KEY=VALUE lines: one round trip, POSIX sh, no packages.
# Read by drivers/generic when a host is registered (and by `restart` for boot_id).
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
fi
echo "os_id=${ID:-unknown}"
echo "os_version=${VERSION_ID:-}"
echo "os_name=${PRETTY_NAME:-}"
echo "kernel=$(uname -r)"
echo "arch=$(uname -m)"
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 0)"
echo "memory_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)"
echo "boot_id=$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
for dev in /sys/bus/pci/devices/*; do
  [ "$(cat "$dev/vendor" 2>/dev/null)" = "0x10de" ] || continue
  echo "nvidia_pci=${dev##*/} $(cat "$dev/device") $(cat "$dev/class")"
done
