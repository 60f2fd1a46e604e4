#!/usr/bin/env bash
# The demo of the main job on the built-in setup (no cloud account needed): a real OpenSSH sshd
# on loopback plays the user's existing host, registered with the generic driver, then
# create -> ssh -> scp -> ls -> rm. Everything it starts is stopped by pid on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh gpumachine >/dev/null
gm="$PWD/build/gpumachine"

work=$(mktemp -d)
sshd_pid=
cleanup() {
  if [[ -n "$sshd_pid" ]]; then kill "$sshd_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "starting a throwaway OpenSSH server on 127.0.0.1 (the 'existing host')"
mkdir -p /run/sshd 2>/dev/null || true
ssh-keygen -q -t ed25519 -N '' -f "$work/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$work/user_key"
cp "$work/user_key.pub" "$work/authorized_keys"
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
Subsystem sftp internal-sftp
CONF
/usr/sbin/sshd -D -e -f "$work/sshd_config" 2>"$work/sshd.log" &
sshd_pid=$!
for _ in $(seq 50); do
  (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.1
done
echo "sshd pid $sshd_pid listening on 127.0.0.1:$port"

export GPUMACHINE_HOME="$work/home"
step "register it as a machine (host key pinned, facts collected)"
run "$gm" create --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$port" \
  --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" demo

step "run a command on it (its exit status becomes ours)"
# shellcheck disable=SC2016 # expanded on the remote host, on purpose
run "$gm" ssh demo -- 'echo "hello from $(hostname), kernel $(uname -r)"'
set +e
"$gm" ssh demo -- 'exit 7'
echo "remote 'exit 7' gave exit status $?"
set -e

step "copy a file there and back"
head -c 10485760 /dev/urandom >"$work/data.bin"
run "$gm" scp "$work/data.bin" demo:/tmp/gpumachine-demo.bin
run "$gm" scp demo:/tmp/gpumachine-demo.bin "$work/back.bin"
sha256sum "$work/data.bin" "$work/back.bin"
"$gm" ssh demo -- rm -f /tmp/gpumachine-demo.bin

step "list machines"
run "$gm" ls
run "$gm" inspect demo --format json | head -n 20

step "remove it"
run "$gm" rm demo
run "$gm" ls
echo
echo "demo finished: nothing left behind (sshd pid $sshd_pid stopped, temp home removed)"
