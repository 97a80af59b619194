/* The "avx512emu" kernel variant, for test programs: avx2.c's driver and ops built as
 * the avx512 variant's, with AVX-512 emulated exactly on AVX2
 * (src/kernels/avx512_emu.h); see tests/avx512emu.cmake. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HEARTH_VNNI         1
#define HEARTH_VNNI_EMULATE 1
#include "kernels/avx2.c"
#else
typedef int avx512emu_none; /* not x86-64: nothing to build */
#endif
