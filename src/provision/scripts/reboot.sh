#!/usr/bin/env bash
# Step "reboot": only when the driver cannot work without one. Check and apply in one go: if the
# module can simply be loaded now, that saves a reboot.
# plan: reboot if nouveau is loaded, if the loaded nvidia module differs from the userspace driver,
# plan: if the module will not load, if it runs with GSP firmware on under --no-gsp, or if a kernel
# plan: update is pending after a driver install;
# plan: otherwise modprobe nvidia. Reboot: sudo systemctl reboot (in the background), then reconnect
set -euo pipefail # also set by lib.sh, which is sent first
reasons=()
if gm_nouveau_loaded; then reasons+=("nouveau is loaded"); fi
userspace=$(gm_userspace_version)
loaded=$(gm_loaded_version)
if [ -z "$loaded" ] && [ -n "$userspace" ] && [ ${#reasons[@]} -eq 0 ]; then
  if out=$($SUDO modprobe nvidia 2>&1); then
    loaded=$(gm_loaded_version)
  else
    echo "$out"
    case "$out" in
      *"Key was rejected"*)
        gm_fail "the nvidia module is not signed with a key this host trusts (Secure Boot)" \
          "Secure Boot is on and DKMS modules cannot be signed: use an Ubuntu image with precompiled modules, or turn Secure Boot off" ;;
    esac
    reasons+=("the nvidia module did not load")
  fi
fi
if [ -n "$loaded" ] && [ -n "$userspace" ] && [ "$loaded" != "$userspace" ]; then
  reasons+=("nvidia module $loaded is loaded but the driver is $userspace")
fi
if [ "${GM_NO_GSP:-0}" = 1 ] && [ -n "$loaded" ] && [ "$(gm_gsp_param)" != 0 ]; then
  reasons+=("the nvidia module was loaded with GSP firmware on")
fi
if [ "${GM_DRIVER_CHANGED:-0}" = 1 ] && gm_reboot_pending; then
  reasons+=("a kernel update is pending")
fi
if [ ${#reasons[@]} -eq 0 ]; then
  gm_done "no reboot needed; nvidia $loaded loaded"
fi
echo "gm: fact boot_id=$(cat "$R/proc/sys/kernel/random/boot_id" 2>/dev/null || true)"
reason_text=$(printf '%s; ' "${reasons[@]}")
echo "gm: rebooting ${reason_text%; }"
# In the background and detached from this channel, so this command returns before sshd goes down.
$SUDO nohup sh -c 'sleep 1; systemctl reboot || reboot' </dev/null >/dev/null 2>&1 &
