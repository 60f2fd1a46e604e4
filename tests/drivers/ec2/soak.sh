#!/bin/sh
# The long create/SIGKILL/rm soak against the EC2 emulator (not in the default suite).
# Usage: tests/drivers/ec2/soak.sh [CYCLES] [BUILD_DIR]   (default 50 cycles, ./build)
set -eu
cycles=${1:-50}
build=${2:-build}
GM_EC2_SOAK_CYCLES=$cycles exec "$build/tests/gm_tests" --gtest_also_run_disabled_tests \
  --gtest_filter='Ec2Interrupt.DISABLED_Soak'
