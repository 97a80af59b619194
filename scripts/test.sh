#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: setup, the Release
# build's tests, a short run of every fuzzer, then the unit, golden and CLI
# tests again under ASan + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)

echo "== format check"
scripts/format.sh --check

echo "== Release build and tests"
scripts/build.sh build
(cd build && ctest -j "$jobs" --output-on-failure)

echo "== fuzz smoke: every libFuzzer harness for 15 s (scripts/fuzz.sh 600 for a longer run)"
scripts/fuzz.sh 15

echo "== ASan + UBSan build and tests"
CC=clang scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_SANITIZE=ON
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest -j "$jobs" --output-on-failure)
