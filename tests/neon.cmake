# The NEON kernels (src/kernels/neon.c) on an emulated aarch64:
# scripts/test-neon.sh cross-compiles test_kernels.c with the base, tensor and
# kernels modules and runs it under qemu-user, with and without the
# dot-product extension. Registered only where the cross compiler and qemu
# exist (scripts/setup.sh installs them).
find_program(HEARTH_AARCH64_CC aarch64-linux-gnu-gcc)
find_program(HEARTH_QEMU_AARCH64 qemu-aarch64)
if(HEARTH_AARCH64_CC AND HEARTH_QEMU_AARCH64)
  add_test(NAME kernels.neon_qemu
           COMMAND ${CMAKE_SOURCE_DIR}/scripts/test-neon.sh ${CMAKE_BINARY_DIR}/neon-cross)
  set_tests_properties(kernels.neon_qemu PROPERTIES
    ENVIRONMENT "${HEARTH_TEST_ENV};AARCH64_CC=${HEARTH_AARCH64_CC};QEMU_AARCH64=${HEARTH_QEMU_AARCH64}"
    TIMEOUT 900)
else()
  message(STATUS "NEON kernel test off: needs aarch64-linux-gnu-gcc and qemu-aarch64")
endif()
