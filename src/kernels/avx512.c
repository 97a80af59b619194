/* The "avx512" kernel variant: avx2.c's driver and ops, built again over the
 * AVX-512 VNNI tiles of avx512_q.c (see avx2.c). Chosen where the CPU has
 * AVX512F, BW, VL and VNNI. */
#define HEARTH_VNNI 1
#include "avx2.c"
