#!/usr/bin/env bash
# Step "wait": let first-boot work finish before we touch packages. cloud-init may still be
# installing packages (even ours, from user data) and unattended-upgrades may hold the dpkg lock.
# plan: cloud-init status --wait   (exit 1 fails; absent cloud-init is fine)
# plan: wait while fuser /var/lib/dpkg/lock-frontend (or the rpm lock) is held, up to ${GM_WAIT_TIMEOUT} seconds
set -euo pipefail # also set by lib.sh, which is sent first
GM_WAIT_TIMEOUT="${GM_WAIT_TIMEOUT:-900}"
GM_POLL_SECONDS="${GM_POLL_SECONDS:-2}"
deadline=$(($(date +%s) + GM_WAIT_TIMEOUT))

echo "gm: fact boot_id=$(cat "$R/proc/sys/kernel/random/boot_id" 2>/dev/null || true)"

if gm_have cloud-init; then
  echo "waiting for cloud-init to finish"
  rc=0
  timeout "$GM_WAIT_TIMEOUT" cloud-init status --wait >/dev/null || rc=$?
  case "$rc" in
    0 | 2) ;; # 2 = done with recoverable errors (cloud-init >= 23.4)
    1) gm_fail "cloud-init finished with an error" \
      "look at /var/log/cloud-init-output.log on the host, or run \"cloud-init status --long\"" ;;
    124) gm_fail "cloud-init still running after ${GM_WAIT_TIMEOUT}s" "raise --wait-timeout" ;;
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
