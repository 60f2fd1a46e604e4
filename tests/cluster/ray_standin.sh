#!/bin/sh
# A stand-in for Ray's CLI on the emulated nodes (Ray cannot be installed here), following its
# documented commands: `ray start --head ... --dashboard-host H --dashboard-port D` starts the
# head and its dashboard (here an HTTP server on H:D, started in the background as Ray's daemons
# are), `ray start --address ...` joins a worker, `ray stop` ends what `ray start` started. Every
# call's arguments go to $RAY_STANDIN_DIR/<instance id>.argv, one line per call.
set -eu
dir=${RAY_STANDIN_DIR:?}
node=${EC2EMU_INSTANCE_ID:?}
echo "$*" >>"$dir/$node.argv"
case "${1:-}" in
  start)
    host=
    port=
    while [ $# -gt 0 ]; do
      case "$1" in
        --dashboard-host) host=$2; shift ;;
        --dashboard-port) port=$2; shift ;;
      esac
      shift
    done
    if [ -n "$port" ]; then
      cd "$dir"
      setsid /usr/bin/python3 -m http.server "$port" --bind "${host:-127.0.0.1}" \
        </dev/null >/dev/null 2>&1 &
      server=$!
      echo "$server" >"$dir/$node.pid"
      # As `ray start` does, return once the dashboard answers (or fail when it died).
      until /usr/bin/python3 -c "import socket; socket.create_connection(('${host:-127.0.0.1}', $port), 1)" 2>/dev/null; do
        kill -0 "$server" 2>/dev/null || { echo "ray: the dashboard did not start" >&2; exit 1; }
        sleep 0.1
      done
    fi
    ;;
  stop)
    if [ -f "$dir/$node.pid" ]; then
      kill "$(cat "$dir/$node.pid")"
      rm -f "$dir/$node.pid"
    fi
    ;;
  *)
    echo "ray: unknown command ${1:-}" >&2
    exit 2
    ;;
esac
