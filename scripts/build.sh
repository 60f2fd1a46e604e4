#!/usr/bin/env bash
# Configures and builds gpumachine into build/ (or build-asan/ with GM_SANITIZE=1), with warnings
# as errors: the project's own developer and CI build.
# GM_RELEASE=1 instead builds what a user or a packager builds: Release, Debian's packaging flags
# (dpkg-buildflags), warnings not errors, into build-release/ (CI builds the binary only).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${GM_SANITIZE:-0}" == 1 ]]; then
  dir=build-asan
  flags=(-DGM_WERROR=ON -DGM_SANITIZE=ON -DGM_BENCH=OFF -DCMAKE_BUILD_TYPE=Debug)
elif [[ "${GM_RELEASE:-0}" == 1 ]]; then
  dir=build-release
  flags=(-DCMAKE_BUILD_TYPE=Release -DGM_BENCH=OFF
    "-DCMAKE_CXX_FLAGS=$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
    "-DCMAKE_C_FLAGS=$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
    "-DCMAKE_EXE_LINKER_FLAGS=$(dpkg-buildflags --get LDFLAGS)")
else
  dir=build
  flags=(-DGM_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" >/dev/null
ninja -C "$dir" "$@"
