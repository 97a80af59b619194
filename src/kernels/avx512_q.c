/* avx2_q.c's tiles with AVX-512 VNNI dot products, for the "avx512" variant
 * (see avx2_q.c). */
#define HEARTH_VNNI 1
#include "avx2_q.c"
