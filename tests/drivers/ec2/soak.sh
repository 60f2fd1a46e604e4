#!/bin/sh
# The long create/SIGKILL/rm soak against the EC2 emulator (not in the default suite).
# Usage: tests/drivers/ec2/soak.sh [CYCLES] [BUILD_DIR]   (default 50 cycles, ./build)
# Every other cycle also kills the rm; the soak ends with a gc that must find nothing.
# GM_EC2_SOAK_CONSISTENCY=2 turns on the emulator's eventual consistency (2 s invisibility).
set -eu
cycles=${1:-50}
build=${2:-build}
GM_EC2_SOAK_CYCLES=$cycles exec "$build/tests/gm_tests" --gtest_also_run_disabled_tests \
  --gtest_filter='Ec2Interrupt.DISABLED_Soak'
