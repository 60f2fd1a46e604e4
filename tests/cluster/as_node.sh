#!/bin/sh
# Runs "$@" as cluster node $NODE_RANK of emulated instances that all live on the test machine: a
# UTS and mount namespace with hostname node$NODE_RANK and an /etc/hosts naming every node at its
# private address (NODE_IPS), since gloo and torchrun's agent use the address the hostname
# resolves to. Everything stays on loopback: the emulator's private addresses are 127.x.
set -eu
hosts=$PWD/.hosts.$NODE_RANK
{
  echo "127.0.0.1 localhost"
  i=0
  for address in $(echo "$NODE_IPS" | tr , ' '); do
    echo "$address node$i"
    i=$((i + 1))
  done
} >"$hosts"
# shellcheck disable=SC2016 # expanded by the inner shell
exec unshare --uts --mount sh -c 'hostname "node$NODE_RANK" && mount --bind "$1" /etc/hosts && shift && exec "$@"' sh "$hosts" "$@"
