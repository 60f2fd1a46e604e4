#!/usr/bin/env bash
# The demo of the main job on the built-in setup (no cloud account needed): a real OpenSSH sshd
# on loopback plays the user's existing GPU host. Its logins land on a SIMULATED host
# (tests/support/simhost: stub apt-get, nvidia-smi, reboot... modelling an Ubuntu 24.04 machine
# with a T4), so the real provisioning scripts run unmodified and nothing is installed here.
# create (register, provision: driver, reboot, Docker, toolkit) -> ssh -> scp -> probe -> ls -> rm.
# Everything it starts is stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh gpumachine >/dev/null
gm="$PWD/build/gpumachine"

# shellcheck source=scripts/lib/loopback_sshd.sh
source scripts/lib/loopback_sshd.sh
work=$(mktemp -d)
cleanup() {
  stop_loopback_sshd "$work"
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "starting a throwaway OpenSSH server on 127.0.0.1 whose logins land on a simulated Ubuntu 24.04 host with a T4"
simhost=tests/support/simhost/simhost
"$simhost" init "$work/host" --os ubuntu-24.04 --gpu t4 --nouveau --reboot-delay 1
start_loopback_sshd "$work" "$(simhost_key_options "$simhost" "$work/host" "$work")"
port=$SSHD_PORT
echo "sshd pid $(cat "$work/sshd.pid") listening on 127.0.0.1:$port"

export GPUMACHINE_HOME="$work/home"
step "register it as a machine: host key pinned, facts collected, then provisioned (driver, reboot, Docker, toolkit)"
run "$gm" create --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$port" \
  --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" --no-probe demo

step "provisioning again is a no-op: every step's check passes"
run "$gm" provision demo

step "run a command on it (its exit status becomes ours)"
run "$gm" ssh demo -- nvidia-smi --query-gpu=name,driver_version --format=csv
set +e
"$gm" ssh demo -- 'exit 7'
echo "remote 'exit 7' gave exit status $?"
set -e

step "the GPU probe runs real CUDA kernels; this simulated host has no real NVIDIA driver, so it says so (exit 6)"
set +e
"$gm" probe demo
echo "probe exit status $?"
set -e

step "copy a file there and back"
head -c 10485760 /dev/urandom >"$work/data.bin"
run "$gm" scp "$work/data.bin" "demo:$work/remote.bin"
run "$gm" scp "demo:$work/remote.bin" "$work/back.bin"
sha256sum "$work/data.bin" "$work/back.bin"

step "list machines"
run "$gm" ls
run "$gm" inspect demo --format json | head -n 20

step "remove it"
run "$gm" rm demo
run "$gm" ls
echo
echo "demo finished: nothing left behind (sshd stopped by pid, temp home and simulated host removed)"
