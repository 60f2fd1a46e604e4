#!/bin/bash
# Port forwarding on loopback, gpumachine side by side with OpenSSH `ssh -N -L`, in one run:
#   - throughput: 1 GiB from a server on the "machine" through one forwarded connection
#     (download), and 1 GiB from the client to a server on the "machine" (upload);
#   - latency: 1,000 one-byte request/response round trips on one connection;
#   - CPU: the forwarder's CPU time (with its OpenSSH master) per GiB moved;
# for the product's `gpumachine forward` (OpenSSH data plane, the default where `ssh` is
# installed), its libssh2 fallback (GPUMACHINE_SSH_CLIENT=libssh2) and `ssh -N -L`. ROUNDS rounds
# (default 2), each measuring every forwarder once, every other round in reverse order; the load
# average is printed before each round and the ratios to `ssh -N -L` of the same round after it.
# Everything runs on 127.0.0.1: a private sshd (own keys and config), a generic machine in a
# temporary GPUMACHINE_HOME, python servers behind the forward. Every process is stopped by pid.
# Usage: [ROUNDS=N] bench/forward_bench.sh [path/to/gpumachine] [MiB (default 1024)] [round trips (1000)]
set -euo pipefail
# The hosts here log in to this very machine: provisioning must refuse it (src/machine/setup.cc).
GM_TEST_REFUSE_BOOT_ID=$(cat /proc/sys/kernel/random/boot_id)
export GM_TEST_REFUSE_BOOT_ID

gm=${1:-build/gpumachine}
mib=${2:-1024}
trips=${3:-1000}
gm=$(readlink -f "$gm")
py=/usr/bin/python3
work=$(mktemp -d /tmp/gm-fwd-bench.XXXXXX)
pids=()
# shellcheck source=scripts/lib/loopback_sshd.sh
source "$(dirname "$0")/../scripts/lib/loopback_sshd.sh"
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  stop_loopback_sshd "$work"
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() {
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "port $1 never opened" >&2
  return 1
}

# --- the "machine": sshd on loopback ---
mkdir -p "$work/home" "$work/user/.ssh"
start_loopback_sshd "$work"
sshd_port=$SSHD_PORT

export GPUMACHINE_HOME=$work/home HOME=$work/user NO_COLOR=1
"$gm" -q create --no-provision --driver generic --generic-ip-address 127.0.0.1 --generic-ssh-port "$sshd_port" \
  --generic-ssh-user "$(id -un)" --generic-ssh-key "$work/user_key" bench >/dev/null

# --- servers behind the forward ---
cat >"$work/servers.py" <<'EOF'
import socket, sys, threading
mode, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
chunk = memoryview(bytes(range(256)) * 4096)  # 1 MiB
def serve(c):
    try:
        run(c)
    except OSError:
        pass  # a port probe that connected and left
    c.close()
def run(c):
    if mode == "source":
        left = size
        while left > 0:
            n = min(left, len(chunk)); c.sendall(chunk[:n]); left -= n
    elif mode == "sink":  # reads to EOF, answers with the byte count
        got = 0
        while True:
            d = c.recv(1 << 20)
            if not d: break
            got += len(d)
        c.sendall(str(got).encode())
    else:
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            d = c.recv(65536)
            if not d: break
            c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
cat >"$work/client.py" <<'EOF'
import socket, sys, time
mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = socket.create_connection(("127.0.0.1", port))
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
if mode == "source":
    buf = bytearray(1 << 20); got = 0; t = time.perf_counter()
    while True:
        k = c.recv_into(buf)
        if not k: break
        got += k
    dt = time.perf_counter() - t
    assert got == n, (got, n)
    print(f"{got / dt / 2**20:.0f} MiB/s")
elif mode == "sink":
    chunk = memoryview(bytes(range(256)) * 4096); left = n; t = time.perf_counter()
    while left > 0:
        k = min(left, len(chunk)); c.sendall(chunk[:k]); left -= k
    c.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = c.recv(64)
        if not d: break
        reply += d
    dt = time.perf_counter() - t
    assert int(reply) == n, (reply, n)
    print(f"{n / dt / 2**20:.0f} MiB/s")
else:
    c.sendall(b"w"); c.recv(1)  # warm up: channel open
    t = time.perf_counter()
    for _ in range(n):
        c.sendall(b"x")
        if c.recv(1) != b"x": raise SystemExit("bad echo")
    dt = time.perf_counter() - t
    print(f"{dt / n * 1e6:.0f} us")
EOF
src_port=$(free_port)
echo_port=$(free_port)
sink_port=$(free_port)
"$py" "$work/servers.py" source "$src_port" $((mib * 1048576)) & pids+=($!)
"$py" "$work/servers.py" echo "$echo_port" 0 & pids+=($!)
"$py" "$work/servers.py" sink "$sink_port" 0 & pids+=($!)
wait_port "$src_port"
wait_port "$echo_port"
wait_port "$sink_port"

measure() {  # label, then the command that forwards l1->src, l2->echo and l3->sink
  local label=$1 l1 l2 l3 pid
  shift
  l1=$(free_port)
  l2=$(free_port)
  l3=$(free_port)
  "$@" "$l1" "$l2" "$l3" &
  pid=$!
  pids+=("$pid")
  wait_port "$l1"
  wait_port "$l2"
  wait_port "$l3"
  local down up lat cpu
  down=$("$py" "$work/client.py" source "$l1" $((mib * 1048576)))
  up=$("$py" "$work/client.py" sink "$l3" $((mib * 1048576)))
  lat=$("$py" "$work/client.py" echo "$l2" "$trips")
  cpu=$(cpu_seconds "$pid")
  printf '%-44s %12s %12s %16s %12s\n' "$label" "$down" "$up" "$lat" \
    "$(awk -v c="$cpu" -v m="$mib" 'BEGIN { printf "%.2f s", c / (2 * m / 1024) }')"
  results[$label]="${down% MiB/s} ${up% MiB/s}"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
}
# CPU time (user + system) of a forwarder and its children (gpumachine's OpenSSH master) so far:
# the cost of moving the bytes, which the load of other tenants does not change.
cpu_seconds() {
  local ticks=0 p f
  for p in "$1" $(pgrep -P "$1"); do
    read -r -a f <"/proc/$p/stat"
    ticks=$((ticks + f[13] + f[14]))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}
gm_forward() {
  # GM_FORWARD_WRAPPER: e.g. "perf record -o /tmp/fwd.perf" to profile the forwarder.
  # shellcheck disable=SC2086
  exec ${GM_FORWARD_WRAPPER:-} "$gm" -q forward bench "$1:127.0.0.1:$src_port" \
    "$2:127.0.0.1:$echo_port" "$3:127.0.0.1:$sink_port" >/dev/null
}
gm_libssh2() { GPUMACHINE_SSH_CLIENT=libssh2 gm_forward "$@"; }
ssh_forward() {
  exec ssh -N -F /dev/null -i "$work/user_key" -p "$sshd_port" -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -L "$1:127.0.0.1:$src_port" -L "$2:127.0.0.1:$echo_port" \
    -L "$3:127.0.0.1:$sink_port" "$(id -un)@127.0.0.1"
}

peer="ssh -N -L (OpenSSH default cipher)"
runs=("gpumachine forward (OpenSSH data plane)" gm_forward
  "$peer" ssh_forward
  "gpumachine forward (libssh2 fallback)" gm_libssh2)
declare -A results
for round in $(seq "${ROUNDS:-2}"); do
  order=(0 2 4)
  ((round % 2 == 0)) && order=(4 2 0)
  printf '\nround %s, load average %s\n' "$round" "$(cut -d' ' -f1-3 /proc/loadavg)"
  printf '%-44s %12s %12s %16s %12s\n' "forwarder ($mib MiB, $trips round trips)" "download" \
    "upload" "latency/round trip" "CPU per GiB"
  for i in "${order[@]}"; do
    measure "${runs[i]}" "${runs[i + 1]}"
  done
  read -r peer_down peer_up <<<"${results[$peer]}"
  for i in 0 4; do
    read -r down up <<<"${results[${runs[i]}]}"
    printf '%-44s %12s %12s\n' "  ratio to ssh -N -L: ${runs[i]#gpumachine forward }" \
      "$(awk -v a="$down" -v b="$peer_down" 'BEGIN { printf "%.2f", a / b }')" \
      "$(awk -v a="$up" -v b="$peer_up" 'BEGIN { printf "%.2f", a / b }')"
  done
done
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
