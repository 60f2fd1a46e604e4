#!/usr/bin/env bash
# Runs on the machine for `gpumachine run`, `jobs`, `logs`, `attach`, `cancel` and `sync`: the one
# place that knows how a job is kept there. A job is a detached container named gm-job-<id> with
# the label gpumachine.job=<id>; it stays after it ends, so its log and exit status outlive the
# laptop's connection. Projects live under ~/gpumachine/projects/<name>, mounted at /workspace.
# Usage: bash -c SCRIPT gpumachine-job ACTION ARGS... (stdin is free for `start`'s environment).
set -euo pipefail

job_container() { printf 'gm-job-%s' "$1"; }

main() {
  local action=$1
  shift
  case $action in
    prepare)  # prepare NAME: make the project and job folders; say where, and what the host has
      local project=$HOME/gpumachine/projects/$1
      if [ -d "$project" ]; then echo "existed 1"; else echo "existed 0"; fi
      mkdir -p "$project" "$HOME/gpumachine/jobs"
      echo "project $project"
      if command -v rsync >/dev/null 2>&1; then echo "rsync 1"; else echo "rsync 0"; fi
      if command -v docker >/dev/null 2>&1; then echo "docker 1"; else echo "docker 0"; fi
      ;;
    build)  # build TAG PROJECT DOCKERFILE (relative to PROJECT); docker keeps the build cache
      docker build -t "$1" -f "$2/$3" "$2" </dev/null
      ;;
    start)  # start ID IMAGE PROJECT GPUS COMMAND [PORTS]: the job's container, detached; stdin:
      # its environment (docker's --env-file lines), kept in a private file only until docker
      # read it. PORTS (space-separated) are published on the machine's 127.0.0.1 only.
      local id=$1 image=$2 project=$3 gpus=$4 command=$5 ports=${6:-}
      local args=(run -d --name "$(job_container "$id")" --label "gpumachine.job=$id"
        --label "gpumachine.command=$command" --label "gpumachine.project=$project"
        --ipc=host -v "$project:/workspace" -w /workspace)
      if [ -n "$ports" ]; then
        # A network of our own: publishing needs a bridge, and docker's default one may be
        # switched off (dockerd --bridge=none); a second job may have just made it.
        docker network inspect gpumachine >/dev/null 2>&1 ||
          docker network create gpumachine >/dev/null 2>&1 ||
          docker network inspect gpumachine >/dev/null
        args+=(--network gpumachine)
        local port
        for port in $ports; do args+=(-p "127.0.0.1:$port:$port"); done
      fi
      local env_file="$HOME/gpumachine/jobs/$id.env"
      (umask 077 && cat >"$env_file")
      if [ "$gpus" = 1 ]; then args+=(--gpus all); fi
      if [ -s "$env_file" ]; then args+=(--env-file "$env_file"); fi
      local status=0
      docker "${args[@]}" "$image" sh -c "$command" </dev/null >/dev/null || status=$?
      rm -f "$env_file"  # the values are in the container now; no copy stays in a file
      return "$status"
      ;;
    logs)  # logs ID FOLLOW(0|1) [SINCE]: the job's output (stdout and stderr apart)
      local args=(logs)
      if [ "$2" = 1 ]; then args+=(-f); fi
      if [ -n "${3:-}" ]; then args+=(--since "$3"); fi
      docker "${args[@]}" "$(job_container "$1")" </dev/null
      ;;
    wait)  # wait ID: prints the exit status once the job has ended
      docker wait "$(job_container "$1")" </dev/null
      ;;
    stop)  # stop ID [background]: SIGTERM, then SIGKILL after docker's grace period
      if [ "${2:-}" = background ]; then
        nohup docker stop "$(job_container "$1")" </dev/null >/dev/null 2>&1 &
      else
        docker stop "$(job_container "$1")" </dev/null >/dev/null
      fi
      ;;
    list)  # list: one tab-separated line per job (id, state, exit, started, finished, command)
      local ids
      ids=$(docker ps -aq --filter label=gpumachine.job </dev/null)
      if [ -n "$ids" ]; then
        # shellcheck disable=SC2086 # one word per container id
        docker inspect --format '{{index .Config.Labels "gpumachine.job"}}	{{.State.Status}}	{{.State.ExitCode}}	{{.State.StartedAt}}	{{.State.FinishedAt}}	{{json (index .Config.Labels "gpumachine.command")}}' $ids </dev/null
      fi
      ;;
    compose)  # compose PROJECT ARGS...: docker compose (v2), else docker-compose (v1), in the project
      local project=$1
      shift
      cd "$project"
      if docker compose version >/dev/null 2>&1; then
        docker compose "$@" </dev/null
      else
        docker-compose "$@" </dev/null
      fi
      ;;
    ports)  # ports PROJECT: what the project's compose containers publish (docker's Ports column)
      docker ps --filter "label=com.docker.compose.project.working_dir=$1" --format '{{.Ports}}' </dev/null
      ;;
    *)
      echo "job.sh: unknown action '$action'" >&2
      return 2
      ;;
  esac
}

main "$@"
