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

work=$(mktemp -d)
sshd_pid=
cleanup() {
  # The simulated reboot restarts sshd as a daemon: its pid file names the live one.
  if [[ -s "$work/sshd.pid" ]]; then kill "$(cat "$work/sshd.pid")" 2>/dev/null || true; fi
  if [[ -n "$sshd_pid" ]]; then kill "$sshd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "starting a throwaway OpenSSH server on 127.0.0.1 whose logins land on a simulated Ubuntu 24.04 host with a T4"
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
simhost=tests/support/simhost/simhost
"$simhost" init "$work/host" --os ubuntu-24.04 --gpu t4 --nouveau --reboot-delay 1
options=""
while IFS= read -r line; do options+="environment=\"$line\","; done < <("$simhost" env "$work/host")
# A simulated reboot stops this sshd and starts it again (daemonized, same host key and port).
options+="environment=\"SIMHOST_ON_SHUTDOWN=kill \$(cat $work/sshd.pid)\","
options+="environment=\"SIMHOST_ON_BOOT=/usr/sbin/sshd -f $work/sshd_config -E $work/sshd.log\""
echo "$options $(cat "$work/user_key.pub")" >"$work/authorized_keys"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$work/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $port
HostKey $work/host_key
AuthorizedKeysFile $work/authorized_keys
PidFile $work/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
PermitUserEnvironment yes
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -f "$work/sshd_config" -E "$work/sshd.log"
for _ in $(seq 50); do [[ -s "$work/sshd.pid" ]] && break; sleep 0.1; done
sshd_pid=$(cat "$work/sshd.pid")
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "sshd pid $sshd_pid listening on 127.0.0.1:$port"

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
