#!/usr/bin/env bash
# Configures and builds gpumachine into build/ (or build-asan/ with GM_SANITIZE=1).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${GM_SANITIZE:-0}" == 1 ]]; then
  dir=build-asan
  flags=(-DGM_SANITIZE=ON -DGM_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug)
else
  dir=build
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$dir" "$@"
