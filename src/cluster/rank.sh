#!/bin/sh
# One rank of a cluster command (src/cluster/fanout.cc): `sh -c "$(cat rank.sh)" gm-rank COMMAND`
# with NODE_RANK, NNODES, NODE_IPS, MASTER_ADDR, MASTER_PORT and GPUS_PER_NODE in the
# environment. Adds NCCL_SOCKET_IFNAME (the interface of this node's route to the master; on the
# master itself the interface that holds its address), runs
# COMMAND in a session (process group) of its own and exits with its status. The client's stdin is
# the stop signal: when it ends (the client closed it because another rank failed, or the
# connection dropped), the whole group gets SIGTERM, then SIGKILL after 5 s.
set -u
command=$1

route=$(ip -o route get "$MASTER_ADDR" 2>/dev/null || :)
ifname=
case $route in
  local\ *)
    # The master is this node: its route is `local ... dev lo`, but the nodes meet on the
    # interface that holds the address.
    ifname=$(ip -o addr show to "$MASTER_ADDR" 2>/dev/null | awk '{ print $2; exit }')
    ;;
esac
if [ -z "$ifname" ]; then
  ifname=$(printf '%s\n' "$route" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
fi
if [ -n "$ifname" ]; then
  NCCL_SOCKET_IFNAME=$ifname
  export NCCL_SOCKET_IFNAME
else
  echo "gpumachine: 'ip -o route get $MASTER_ADDR' named no interface; NCCL_SOCKET_IFNAME is not set" >&2
fi

exec 3<&0
setsid sh -c "$command" </dev/null 3<&- &
group=$!

# The watcher: blocks on the client's stdin; at its end stops the group and waits until it is gone.
(
  read -r _ <&3 || :
  trap '' TERM
  kill -TERM "-$group" 2>/dev/null
  tries=0
  while kill -0 "-$group" 2>/dev/null && [ "$tries" -lt 50 ]; do
    sleep 0.1
    tries=$((tries + 1))
  done
  kill -KILL "-$group" 2>/dev/null
) >/dev/null 2>&1 &
watcher=$!
exec 3<&-

wait "$group"
status=$?
# A watcher still blocked on stdin dies here; one that is stopping the group ignores TERM and is
# waited for, so the rank ends only when its processes are gone.
kill -TERM "$watcher" 2>/dev/null
wait "$watcher"
exit "$status"
