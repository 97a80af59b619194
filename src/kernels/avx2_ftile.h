/* The float tiles' decode and batch paths, written once over an element
 * format and included by avx2_q.c for each: F32 products (FT_P = f_: F32
 * activations, weights as F32 vectors FV) and, in the avx512 build, BF16
 * products (bf_: activations and weights as BF16 pairs, vdpbf16ps). The
 * includer defines, then this file undefines:
 *   FT_P(name)          the functions' prefix (f_name, bf_name)
 *   FT_ATTR, FT_INLINE  their target attributes
 *   FT_E, FT_V, FT_STEP an activation element, the vector of FT_STEP of them
 *   FT_LD(p)            FT_STEP elements at p as an FT_V
 *   FT_LDW(row, i, fk)  FT_STEP weights at element i of a row as an FT_V
 *   FT_DOT(acc, w, x)   acc (FV) plus the products of w and x
 *   FT_DIRECT(fk)       whether batches read the rows in place (their
 *                       elements are FT_E), else a chunk is staged:
 *   FT_STAGE(dst, v)    v stored as FT_STEP elements at dst
 * and FT_P(finish)(acc, row, x, nv, n, fk): a (row, token) value from its
 * accumulator and the tail columns [nv, n). Decode and batches take the
 * same steps per (row, token) (avx2_q.c's header). No include guard: it
 * is included once per format. */

/* Decode: G rows from r of a tile against one token, y[r..r+G). */
FT_INLINE void FT_P(rows)(const uint8_t *w, size_t rb, int r, const int G, int nr, const FT_E *x,
                          int64_t n, float *y, const int fk) {
    FV acc[8];
    const int64_t nv = n & ~(int64_t)(FT_STEP - 1), es = fk == W_F32 ? 4 : 2;
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) acc[g] = fv_zero();
    const uint8_t *row = w + (size_t)r * rb;
    for (int64_t i = 0; i < nv; i += FT_STEP) {
        if ((i & (es == 2 ? 31 : 15)) == 0) prefetch_ahead(w, rb, r, G, nr, (size_t)(i * es), 64);
        const FT_V xv = FT_LD(x + i);
#pragma GCC unroll 8
        for (int g = 0; g < G; g++)
            acc[g] = FT_DOT(acc[g], FT_LDW(row + (size_t)g * rb, i, fk), xv);
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) y[r + g] = FT_P(finish)(acc[g], row + (size_t)g * rb, x, nv, n, fk);
}

/* Batch micro-kernel: R rows x T tokens over columns [0, kc) (a multiple of
 * FT_STEP) of a chunk; the accumulators live in acc (R x T vectors, row
 * stride ars vectors) between chunks. Row g at wf + g * wstride elements,
 * token t at x[t]. */
FT_INLINE void FT_P(micro)(const FT_E *wf, size_t wstride, const FT_E *const *x, int64_t kc,
                           FV *acc, size_t ars, const int R, const int T) {
    FV a[FV_MR][FV_MT];
#pragma GCC unroll 4
    for (int g = 0; g < R; g++) FV_UNROLL_T for (int t = 0; t < T; t++) a[g][t] = acc[g * ars + t];
    for (int64_t i = 0; i < kc; i += FT_STEP) {
        FT_V xv[FV_MT];
        FV_UNROLL_T for (int t = 0; t < T; t++) xv[t] = FT_LD(x[t] + i);
#pragma GCC unroll 4
        for (int g = 0; g < R; g++) {
            const FT_V wv = FT_LD(wf + g * wstride + i);
            FV_UNROLL_T for (int t = 0; t < T; t++) a[g][t] = FT_DOT(a[g][t], wv, xv[t]);
        }
    }
#pragma GCC unroll 4
    for (int g = 0; g < R; g++) FV_UNROLL_T for (int t = 0; t < T; t++) acc[g * ars + t] = a[g][t];
}

/* The micro-kernels over sr rows x nt tokens of one chunk: a group of
 * tokens stays in L1 while every row group of the chunk passes. */
FT_ATTR static void FT_P(chunk)(const FT_E *wf, size_t wstride, int sr, const FT_E *const *x,
                                int nt, int64_t kc, FV *acc, pf_cursor *pc) {
    for (int t = 0; t < nt;) {
        const int tn = nt - t >= FV_MT ? FV_MT : 1;
        for (int g = 0; g < sr;) {
            const int gn = sr - g >= FV_MR ? FV_MR : 1;
            const FT_E *wg = wf + g * wstride;
            FV *ag = acc + (size_t)g * nt + t;
            pf_advance(pc);
            if (gn == FV_MR && tn == FV_MT)
                FT_P(micro)(wg, wstride, x + t, kc, ag, nt, FV_MR, FV_MT);
            else if (gn == FV_MR)
                FT_P(micro)(wg, wstride, x + t, kc, ag, nt, FV_MR, 1);
            else if (tn == FV_MT)
                FT_P(micro)(wg, wstride, x + t, kc, ag, nt, 1, FV_MT);
            else
                FT_P(micro)(wg, wstride, x + t, kc, ag, nt, 1, 1);
            g += gn;
        }
        t += tn;
    }
}

static size_t FT_P(scratch)(int64_t n) {
    (void)n;
    return sizeof(FV) * SUB * MAX_TOKENS + sizeof(FT_E) * SUB * F_KC + 64;
}

FT_INLINE void FT_P(tile)(const uint8_t *w, size_t rb, int nr, const uint8_t *act,
                          size_t act_stride, int nt, int64_t n, float *y, size_t ldy,
                          uint8_t *scratch, const int fk) {
    if (nt < F_BATCH_MIN || !scratch) {
        for (int t = 0; t < nt; t++) {
            const FT_E *x = (const FT_E *)(act + (size_t)t * act_stride);
            float *yt = y + (size_t)t * ldy;
            int r = 0;
            for (; r + 8 <= nr; r += 8) FT_P(rows)(w, rb, r, 8, nr, x, n, yt, fk);
            for (; r + 4 <= nr; r += 4) FT_P(rows)(w, rb, r, 4, nr, x, n, yt, fk);
            for (; r < nr; r++) FT_P(rows)(w, rb, r, 1, nr, x, n, yt, fk);
        }
        return;
    }
    FV *acc = (FV *)(((uintptr_t)scratch + sizeof(FV) - 1) & ~(uintptr_t)(sizeof(FV) - 1));
    FT_E *wf = (FT_E *)(acc + SUB * MAX_TOKENS);
    const FT_E *x[MAX_TOKENS], *xc[MAX_TOKENS];
    for (int t = 0; t < nt; t++) x[t] = (const FT_E *)(act + (size_t)t * act_stride);
    const int64_t nv = n & ~(int64_t)(FT_STEP - 1);
    for (int r0 = 0; r0 < nr; r0 += SUB) {
        const int sr = nr - r0 < SUB ? nr - r0 : SUB;
        const uint8_t *ws = w + (size_t)r0 * rb;
        for (int k = 0; k < sr * nt; k++) acc[k] = fv_zero();
        const int nx = nr - r0 - sr < SUB ? nr - r0 - sr : SUB; /* rows of the next sub-tile */
        const size_t es = fk == W_F32 ? 4 : 2, calls = (size_t)((nt + FV_MT - 1) / FV_MT) *
                                                       (size_t)((sr + FV_MR - 1) / FV_MR);
        for (int64_t c0 = 0; c0 < nv; c0 += F_KC) {
            const int64_t kc = nv - c0 < F_KC ? nv - c0 : F_KC;
            /* prefetch: the next chunk of these rows, or the first of the next rows */
            pf_cursor pc =
                c0 + kc < nv
                    ? pf_rect(w, rb, r0, r0 + sr, (size_t)(c0 + kc) * es,
                              (size_t)(nv - c0 - kc < F_KC ? nv : c0 + kc + F_KC) * es, calls)
                    : pf_rect(w, rb, r0 + sr, r0 + sr + nx, 0, (size_t)(nv < F_KC ? nv : F_KC) * es,
                              calls);
            for (int t = 0; t < nt; t++) xc[t] = x[t] + c0;
            if (!FT_DIRECT(fk)) { /* the chunk converted once into scratch */
                for (int g = 0; g < sr; g++)
                    for (int64_t i = 0; i < kc; i += FT_STEP)
                        FT_STAGE(wf + g * F_KC + i, FT_LDW(ws + (size_t)g * rb, c0 + i, fk));
                FT_P(chunk)(wf, F_KC, sr, xc, nt, kc, acc, &pc);
            } else {
                FT_P(chunk)((const FT_E *)ws + c0, rb / sizeof(FT_E), sr, xc, nt, kc, acc, &pc);
            }
        }
        for (int g = 0; g < sr; g++)
            for (int t = 0; t < nt; t++)
                y[(size_t)t * ldy + r0 + g] =
                    FT_P(finish)(acc[g * nt + t], ws + (size_t)g * rb, x[t], nv, n, fk);
    }
}

#undef FT_P
#undef FT_ATTR
#undef FT_INLINE
#undef FT_E
#undef FT_V
#undef FT_STEP
#undef FT_LD
#undef FT_LDW
#undef FT_DOT
#undef FT_DIRECT
#undef FT_STAGE
