#!/usr/bin/env bash
# Tests the NEON kernels (src/kernels/neon.c) without an ARM machine:
# cross-compiles the base, tensor and kernels modules with
# tests/kernels/test_kernels.c for aarch64 (cmocka replaced by the small
# tests/kernels/cmocka_shim/cmocka.h, since there is no aarch64 cmocka) and
# runs it under qemu-user: built once for baseline Armv8.0, on `-cpu max`
# (the dot-product path, chosen at run time), on the same CPU with
# HEARTH_NEON_SDOT=0 and on `-cpu cortex-a53` (the vmull/vpadal path).
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
# One binary for baseline Armv8.0 (as a distribution builds it); the
# dot-product path is chosen at run time from HWCAP.
exe="$out/test_kernels"
"$CC" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Wno-unused-parameter -march=armv8-a \
  -I"$root/tests/kernels/cmocka_shim" -I"$root/src" -I"$root/include" -I"$root/tests" \
  "${srcs[@]}" -o "$exe" -lpthread -lm
run() { # CPU, HEARTH_EXPECT_SDOT, then environment assignments
  local cpu="$1" expect="$2"
  shift 2
  echo "== test-neon: qemu -cpu $cpu, SDOT expected: $expect ${*:-}" >&2
  if ! env -u HEARTH_KERNELS HEARTH_EXPECT_SDOT="$expect" "$@" "$QEMU" -cpu "$cpu" -L "$SYSROOT" "$exe"; then
    echo "test-neon: FAILED on -cpu $cpu ${*:-}" >&2
    status=1
  fi
}
run max 1                               # SDOT (Armv8.2 dot product)
run max 0 HEARTH_NEON_SDOT=0            # the Armv8.0 path on the same CPU
run cortex-a53 0                        # a CPU without it
run cortex-a53 0 HEARTH_KERNELS=neon    # forced by name too
exit $status
