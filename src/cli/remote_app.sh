#!/bin/bash
# Runs on the machine for `gpumachine jupyter` / `tensorboard`: start | status | stop of a server
# bound to the machine's 127.0.0.1 only, on the host or in a container.
# Usage: remote_app.sh ACTION KIND PORT MODE DIR IMAGE LOGDIR
#   ACTION start|status|stop; KIND jupyter|tensorboard; MODE host|container.
# Prints "key value" lines: state, pid, listening, and (jupyter, status) one line per server the
# server itself reports: "<source> <json>" with source server|notebook|jpserver|nbserver.
# A container's image is pulled before `start` by machine/pull_image.sh.
set -u
action=$1 kind=$2 port=$3 mode=$4 dir=$5 image=$6 logdir=${7:-}

state_dir="$HOME/.gpumachine"
pidfile="$state_dir/$kind-$port.pid"
logfile="$state_dir/$kind-$port.log"
cname="gm-$kind-$port"
mkdir -p "$state_dir"
[ -n "$dir" ] || dir=$HOME

listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

# The recorded server if it still runs: "pid N" (host) or "container NAME".
running() {
  [ -f "$pidfile" ] || return 1
  read -r what id <"$pidfile" || return 1
  if [ "$what" = container ]; then
    [ "$(docker inspect -f '{{.State.Running}}' "$id" 2>/dev/null)" = true ]
  else
    kill -0 "$id" 2>/dev/null
  fi
}

# In our container when it runs; on the host otherwise (a server someone else started).
in_place() {
  if [ "$mode" = container ] && running; then docker exec "$cname" "$@"; else "$@"; fi
}

discover_jupyter() {
  # Newer servers answer `jupyter server list`, Notebook 6 only `jupyter notebook list`; both
  # write a runtime file with the token, read last.
  in_place jupyter server list --json 2>/dev/null | sed -n 's/^{/server {/p'
  in_place jupyter notebook list --json 2>/dev/null | sed -n 's/^{/notebook {/p'
  # shellcheck disable=SC2016
  in_place sh -c 'd=$(jupyter --runtime-dir 2>/dev/null) || exit 0
    for f in "$d"/jpserver-*.json "$d"/nbserver-*.json; do
      [ -f "$f" ] || continue
      case $f in */jpserver-*) k=jpserver ;; *) k=nbserver ;; esac
      printf "%s %s\n" "$k" "$(tr -d "\n" <"$f")"
    done' 2>/dev/null
}

start_host() {
  cd "$dir" || { echo "error cannot enter $dir"; exit 1; }
  if [ "$kind" = jupyter ]; then
    if jupyter lab --version >/dev/null 2>&1; then sub=lab; else sub=notebook; fi
    set -- jupyter "$sub" --no-browser --ip=127.0.0.1 "--port=$port" --port-retries=0 --allow-root
  else
    set -- tensorboard --logdir "$logdir" --host 127.0.0.1 --port "$port"
  fi
  command -v "$1" >/dev/null 2>&1 || { echo "error $1 is not installed on the host"; exit 1; }
  # setsid: its own process group, so stop can end it with its kernels; nohup: survives the
  # SSH channel that started it.
  nohup setsid "$@" >"$logfile" 2>&1 </dev/null &
  echo "pid $!" >"$pidfile"
}

start_container() {
  docker rm -f "$cname" >/dev/null 2>&1
  if [ "$kind" = jupyter ]; then
    set -- jupyter lab --no-browser --ip=127.0.0.1 "--port=$port" --port-retries=0 --allow-root \
      "--ServerApp.root_dir=$dir"
    mount=$dir
  else
    set -- tensorboard --logdir "$logdir" --host 127.0.0.1 --port "$port"
    mount=$logdir
  fi
  # Host networking with a 127.0.0.1 bind: reachable through SSH only, never on a public port.
  docker run -d --name "$cname" --gpus all --network host -v "$mount:$mount" -w "$mount" \
    "$image" "$@" >"$logfile" 2>&1 || { echo "error docker run failed: $(tail -n 5 "$logfile")"; exit 1; }
  echo "container $cname" >"$pidfile"
}

case $action in
start)
  if running; then
    echo "state reused"
  elif listening; then
    echo "state foreign"
  else
    if [ "$mode" = container ]; then start_container; else start_host; fi
    echo "state started"
  fi
  ;;
status)
  if running; then
    echo "state running"
  else
    echo "state dead"
    [ -f "$logfile" ] && tail -n 5 "$logfile" | sed 's/^/log /'
  fi
  if listening; then echo "listening yes"; else echo "listening no"; fi
  if [ "$kind" = jupyter ]; then discover_jupyter; fi
  exit 0 # what was found is in the lines above; a failed probe is not a failed status
  ;;
stop)
  if [ ! -f "$pidfile" ]; then
    echo "state absent"
    exit 0
  fi
  read -r what id <"$pidfile"
  if [ "$what" = container ]; then
    docker rm -f "$id" >/dev/null 2>&1
  elif kill -0 "$id" 2>/dev/null; then
    # The whole group: the server and the kernels it started.
    kill -TERM -- "-$id" 2>/dev/null || kill -TERM "$id"
    for _ in $(seq 100); do
      kill -0 -- "-$id" 2>/dev/null || kill -0 "$id" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$id" 2>/dev/null
    kill -KILL "$id" 2>/dev/null
    for _ in $(seq 50); do
      kill -0 -- "-$id" 2>/dev/null || kill -0 "$id" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -f "$pidfile"
  if kill -0 "$id" 2>/dev/null; then echo "state left"; else echo "state stopped"; fi
  echo "pid $id"
  ;;
esac
