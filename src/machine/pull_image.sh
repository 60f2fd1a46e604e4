#!/bin/bash
# Runs on the machine before a container starts (`jupyter`, `tensorboard`, `probe --container`):
# pulls the image when it is missing. Usage: pull_image.sh IMAGE
# Prints "pull present" when the image is there, else the pull's progress as it comes:
# "pull <json>" lines of the Engine API's stream (bytes per layer), or "line <text>" lines of
# `docker pull` when the API cannot be reached with curl.
set -u
image=$1

if docker image inspect "$image" >/dev/null 2>&1; then
  echo "pull present"
  exit 0
fi
# Without a terminal `docker pull` shows no byte counts; the API's JSON stream does.
set -o pipefail
curl -sSfN --unix-socket /var/run/docker.sock -X POST \
  "http://localhost/images/create?fromImage=$image" 2>/dev/null | sed -u 's/^/pull /' ||
  docker pull "$image" 2>&1 | sed -u 's/^/line /'
# A failed pull is not an error here: `docker run` pulls again and says why it cannot.
exit 0
