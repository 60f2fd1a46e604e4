#!/usr/bin/env bash
# Step "wait": let first-boot work finish before we touch packages. cloud-init may still be
# installing packages (even ours, from user data) and unattended-upgrades may hold the dpkg lock.
# plan: cloud-init status --wait   (exit 1 fails; absent cloud-init, or one that does not run on this boot, is fine)
# plan: wait while fuser /var/lib/dpkg/lock-frontend (or the rpm lock) is held, up to ${GM_WAIT_TIMEOUT} seconds
set -euo pipefail # also set by lib.sh, which is sent first
GM_WAIT_TIMEOUT="${GM_WAIT_TIMEOUT:-900}"
GM_POLL_SECONDS="${GM_POLL_SECONDS:-2}"
deadline=$(($(date +%s) + GM_WAIT_TIMEOUT))

echo "gm: fact boot_id=$(cat "$R/proc/sys/kernel/random/boot_id" 2>/dev/null || true)"

# cloud-init still runs on this boot when it already started, or (under systemd) one of its stages
# is queued or active. Installed but never run (disabled units, a container without systemd) it
# reports "not run" forever: waiting for it would hang.
cloud_init_pending() {
  case "$(cloud-init status 2>/dev/null | sed -n 's/^status: //p')" in
    "not run" | "not started" | "") ;;
    *) return 0 ;;
  esac
  systemctl list-jobs --no-legend 2>/dev/null | grep -q ' cloud-\(init\|config\|final\)' ||
    systemctl is-active --quiet cloud-init-local.service cloud-init.service cloud-config.service \
      cloud-final.service 2>/dev/null
}
if gm_have cloud-init && ! cloud_init_pending; then
  gm_note "cloud-init is installed but does not run on this boot; not waiting for it"
elif gm_have cloud-init; then
  echo "waiting for cloud-init to finish"
  rc=0
  timeout "$GM_WAIT_TIMEOUT" cloud-init status --wait >/dev/null || rc=$?
  case "$rc" in
    0 | 2) ;; # 2 = done with recoverable errors (cloud-init >= 23.4)
    1) gm_fail "cloud-init finished with an error" \
      "look at /var/log/cloud-init-output.log on the host, or run \"cloud-init status --long\"" ;;
    124) gm_fail "cloud-init still running after ${GM_WAIT_TIMEOUT}s" \
      "see what it is doing with \"cloud-init status --long\" and /var/log/cloud-init-output.log on the host, then provision again" ;;
    *) gm_note "cloud-init status exited with $rc; going on" ;;
  esac
else
  gm_note "no cloud-init on this host"
fi

if gm_have apt-get; then
  locks=("$R/var/lib/dpkg/lock-frontend" "$R/var/lib/dpkg/lock" "$R/var/lib/apt/lists/lock")
else
  locks=("$R/var/lib/rpm/.rpm.lock")
fi
if gm_have fuser; then
  said=""
  while $SUDO fuser "${locks[@]}" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      gm_fail "the package manager is still locked after ${GM_WAIT_TIMEOUT}s" \
        "see which process holds it with \"sudo fuser -v ${locks[0]#"$R"}\""
    fi
    if [ -z "$said" ]; then
      echo "waiting for the package manager lock (held by another process)"
      said=1
    fi
    sleep "$GM_POLL_SECONDS"
  done
  if [ -n "$said" ]; then echo "package manager lock released"; fi
else
  # apt itself waits too (DPkg::Lock::Timeout); dnf waits on its own lock.
  gm_note "no fuser on this host; relying on the package manager's own lock timeout"
fi
echo "gm: ready"
