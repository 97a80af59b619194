/* avx2_kq.c's tiles with AVX-512 VNNI batches for Q4_K, Q5_K and Q6_K, for
 * the "avx512" variant (see avx2_kq.c). */
#define HEARTH_VNNI 1
#include "avx2_kq.c"
