# shellcheck shell=bash
# Starts a throwaway OpenSSH sshd on 127.0.0.1 for the demo and the benchmarks (sourced).
#   start_loopback_sshd DIR [KEY_OPTIONS]
# makes DIR/host_key and DIR/user_key, authorizes user_key (with authorized_keys options, e.g.
# environment="..."), starts sshd as a daemon with its pid in DIR/sshd.pid, and sets SSHD_PORT.
# stop_loopback_sshd DIR stops it by that pid (also after a simulated reboot restarted it).

start_loopback_sshd() {
  local dir=$1 key_options=${2:-}
  mkdir -p /run/sshd 2>/dev/null || true
  ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$dir/user_key"
  echo "${key_options:+$key_options }$(cat "$dir/user_key.pub")" >"$dir/authorized_keys"
  SSHD_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >"$dir/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PidFile $dir/sshd.pid
UsePAM no
StrictModes no
PermitRootLogin yes
PasswordAuthentication no
PermitUserEnvironment yes
Subsystem sftp internal-sftp
CONF
  /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
  local _
  for _ in $(seq 100); do
    (echo >"/dev/tcp/127.0.0.1/$SSHD_PORT") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "sshd did not start: $(cat "$dir/sshd.log")" >&2
  return 1
}

stop_loopback_sshd() {
  local dir=$1
  if [[ -s "$dir/sshd.pid" ]]; then
    kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
  fi
}

# authorized_keys options that put a login on a simulated host (tests/support/simhost) whose
# reboot stops this sshd and starts it again with the same host key and port.
simhost_key_options() {
  local simhost=$1 host=$2 dir=$3 line options=""
  while IFS= read -r line; do options+="environment=\"$line\","; done < <("$simhost" env "$host")
  options+="environment=\"SIMHOST_ON_SHUTDOWN=kill \$(cat $dir/sshd.pid)\","
  options+="environment=\"SIMHOST_ON_BOOT=/usr/sbin/sshd -f $dir/sshd_config -E $dir/sshd.log\""
  echo "$options"
}
