#!/usr/bin/env bash
# Tests the NEON kernels (src/kernels/neon.c) without an ARM machine:
# cross-compiles the base, tensor and kernels modules with
# tests/kernels/test_kernels.c for aarch64 (cmocka replaced by the small
# tests/kernels/cmocka_shim/cmocka.h, since there is no aarch64 cmocka) and
# runs it under qemu-user twice:
#   -march=armv8.2-a+dotprod on `-cpu max`       (vdotq_s32 path)
#   -march=armv8-a           on `-cpu cortex-a53` (vmull/vpadal path)
# Each run checks the default variant (neon) and ref against the naive
# double-precision references, with test_kernels.c's error bounds.
# Needs gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user (setup.sh).
# Usage: scripts/test-neon.sh [BUILD_DIR]   (default: build-neon-cross)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/build-neon-cross}"
CC="${AARCH64_CC:-aarch64-linux-gnu-gcc}"
QEMU="${QEMU_AARCH64:-qemu-aarch64}"
SYSROOT="${AARCH64_SYSROOT:-/usr/aarch64-linux-gnu}"
for tool in "$CC" "$QEMU"; do
  command -v "$tool" >/dev/null || { echo "test-neon: $tool not found (run scripts/setup.sh)" >&2; exit 1; }
done
mkdir -p "$out"
srcs=("$root"/src/base/*.c "$root"/src/tensor/*.c "$root"/src/kernels/*.c "$root"/tests/kernels/test_kernels.c)
status=0
for cfg in "armv8.2-a+dotprod max" "armv8-a cortex-a53"; do
  read -r march cpu <<<"$cfg"
  exe="$out/test_kernels-${march//[^a-z0-9.]/_}"
  echo "== test-neon: -march=$march, qemu -cpu $cpu" >&2
  "$CC" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -march="$march" \
    -I"$root/tests/kernels/cmocka_shim" -I"$root/src" -I"$root/include" -I"$root/tests" \
    "${srcs[@]}" -o "$exe" -lpthread -lm
  if [ "$march" = "armv8.2-a+dotprod" ]; then
    # the dot-product path must really be the one compiled here
    macros="$("$CC" -march="$march" -dM -E - </dev/null)"
    grep -q __ARM_FEATURE_DOTPROD <<<"$macros" || { echo "test-neon: $CC -march=$march lacks dotprod" >&2; exit 1; }
  fi
  if ! env -u HEARTH_KERNELS "$QEMU" -cpu "$cpu" -L "$SYSROOT" "$exe"; then
    echo "test-neon: FAILED with -march=$march on -cpu $cpu" >&2
    status=1
  fi
  # HEARTH_KERNELS=neon forces it too
  if ! HEARTH_KERNELS=neon "$QEMU" -cpu "$cpu" -L "$SYSROOT" "$exe" >/dev/null; then
    echo "test-neon: FAILED with HEARTH_KERNELS=neon, -march=$march on -cpu $cpu" >&2
    status=1
  fi
done
exit $status
