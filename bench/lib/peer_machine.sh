# shellcheck shell=bash
# What the benches against OpenSSH share (sourced by a bench run from the repository root with
# `set -euo pipefail`): a throwaway loopback sshd registered as the generic machine b0.
#   start_peer_machine GM
# makes WORK (a temporary directory, removed on exit with the sshd stopped by its pid), exports
# GPUMACHINE_HOME and HOME inside it, creates b0 with GM and sets OPENSSH_OPTS: the options that
# give `ssh` the same key, port and pinned host key (`scp` wants -P for -p), and OPENSSH_DEST.
# shellcheck source=scripts/lib/loopback_sshd.sh
source scripts/lib/loopback_sshd.sh
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)  # never provision this machine
export GM_TEST_REFUSE_BOOT_ID

cleanup_peer_machine() {
  stop_loopback_sshd "$WORK"
  rm -rf "$WORK"
}

start_peer_machine() {
  local gm=$1
  WORK=$(mktemp -d)
  trap cleanup_peer_machine EXIT
  start_loopback_sshd "$WORK"
  export GPUMACHINE_HOME="$WORK/home" HOME="$WORK/user"
  mkdir -p "$HOME"
  "$gm" -q create --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$SSHD_PORT" \
    --generic-ssh-user "$(id -un)" --generic-ssh-key "$WORK/user_key" --no-provision b0 >/dev/null
  echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$WORK/host_key.pub")" >"$WORK/known_hosts"
  # shellcheck disable=SC2034  # read by the bench that sources this
  OPENSSH_OPTS="-i $WORK/user_key -p $SSHD_PORT -o IdentitiesOnly=yes -o BatchMode=yes \
-o UserKnownHostsFile=$WORK/known_hosts -o StrictHostKeyChecking=yes \
-o GlobalKnownHostsFile=/dev/null"
  # shellcheck disable=SC2034
  OPENSSH_DEST="$(id -un)@127.0.0.1"
}
