#!/usr/bin/env bash
# Sets up (apt-get, a no-op when all is present), builds, and runs every test: the C++ suite
# under CTest, the EC2 emulator's own tests, and shellcheck over every remote script.
# GM_SANITIZE=1 builds and runs the C++ suite under AddressSanitizer and UBSan instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
dir=build
[[ "${GM_SANITIZE:-0}" == 1 ]] && dir=build-asan

if [[ "${GM_SANITIZE:-0}" != 1 ]]; then  # the sanitizer pass re-runs only the C++ suite
echo "== shellcheck"
mapfile -t scripts < <(git ls-files '*.sh' tests/support/simhost/simhost .ci/run)
if ((${#scripts[@]})); then
  shellcheck -x "${scripts[@]}"
fi

if [[ -d tests/emulator ]]; then
  echo "== EC2 emulator tests"
  # Debian's python3 (with botocore, an independent SigV4 signer for the emulator's own tests).
  /usr/bin/python3 -m unittest discover -s tests/emulator
fi
fi

echo "== real test host"
# A Debian root booted with systemd-nspawn (tests/support/realhost): built once, then cached.
if [[ $(id -u) -eq 0 ]]; then
  tests/support/realhost/build-image.sh >/dev/null
  export GM_REALHOST_REQUIRED=1
else
  echo "not root: the RealHost tests will be skipped"
fi

echo "== C++ tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir "$dir" --output-on-failure --timeout 600 -j2
