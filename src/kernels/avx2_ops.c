/* AVX2 + FMA versions of rmsnorm, softmax, swiglu, rope and attention (see
 * avx2_ops.h for how they relate to the reference). Functions carry a target
 * attribute, so the file builds without -mavx2; the avx2 table (avx2.c)
 * points at them and is only chosen where the CPU has AVX2, FMA and F16C. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include "kernels/avx2_ops.h"

#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/avx2_impl.h" /* AVX2 target macro, avx2_hsum8 */
#include "kernels/ref.h"

/* ---- helpers ---------------------------------------------------------- */

AVX2 static inline double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
}

AVX2 static inline float hmax_ps(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* exp(x) for 8 floats, within about 1 ulp of expf over the whole range:
 * x = n ln2 + r with |r| <= ln2/2 (ln2 in two parts, so r is exact enough),
 * exp(r) by a degree-7 minimax polynomial (Cephes' expf coefficients), then
 * scaled by 2^n in two steps of 2^(n/2) so that results down to the
 * denormals and up to overflow (inf) come out right. NaN stays NaN. */
AVX2 static inline __m256 exp_ps(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.8f), lo = _mm256_set1_ps(-104.0f);
    x = _mm256_min_ps(hi, _mm256_max_ps(lo, x)); /* NaN passes through both */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n); /* in [-150, 129] */
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

/* The tail of a row: the first n (< 8) lanes. */
AVX2 static inline __m256i tail_mask(int n) {
    static const int32_t m[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(m + 8 - n));
}

/* ---- rmsnorm -------------------------------------------------------------- */

/* Sum of squares in double, as the reference (only the order differs). */
AVX2 static double sumsq(const float *x, int n) {
    __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a0 = _mm256_fmadd_pd(lo, lo, a0);
        a1 = _mm256_fmadd_pd(hi, hi, a1);
    }
    double ss = hsum_pd(_mm256_add_pd(a0, a1));
    for (; i < n; i++) ss += (double)x[i] * x[i];
    return ss;
}

AVX2 void kern_avx2_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps) {
    for (int t = 0; t < n_tok; t++) {
        const float *xt = x + (size_t)t * n;
        float *yt = y + (size_t)t * n;
        float scale = (float)(1.0 / sqrt(sumsq(xt, n) / n + (double)eps));
        const __m256 vs = _mm256_set1_ps(scale);
        int i = 0;
        if (w) { /* (x * scale) * w, as the reference rounds it */
            for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(yt + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xt + i), vs),
                                                       _mm256_loadu_ps(w + i)));
            for (; i < n; i++) {
                float v = xt[i] * scale;
                yt[i] = v * w[i];
            }
        } else {
            for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(yt + i, _mm256_mul_ps(_mm256_loadu_ps(xt + i), vs));
            for (; i < n; i++) yt[i] = xt[i] * scale;
        }
    }
}

/* ---- softmax -------------------------------------------------------------- */

AVX2 void kern_avx2_softmax(float *x, int n) {
    if (n <= 0) return;
    __m256 vm = _mm256_set1_ps(x[0]);
    int i = 0;
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    float mx = hmax_ps(vm);
    for (; i < n; i++)
        if (x[i] > mx) mx = x[i];
    /* x = exp(x - max), summed in double */
    const __m256 vmx = _mm256_set1_ps(mx);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    if (i < n) {
        __m256i m = tail_mask(n - i);
        __m256 e = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vmx));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(m)); /* lanes past the end add 0 */
        _mm256_maskstore_ps(x + i, m, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / hsum_pd(_mm256_add_pd(s0, s1))));
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    if (i < n) {
        __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
}

/* ---- swiglu --------------------------------------------------------------- */

/* g / (1 + exp(-g)) * up, the reference's operations and rounding order. */
AVX2 static inline __m256 swiglu8(__m256 g, __m256 u) {
    __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), g));
    return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e)), u);
}

AVX2 void kern_avx2_swiglu(float *out, const float *gate, const float *up, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, swiglu8(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
    if (i < n) {
        __m256i m = tail_mask((int)(n - i));
        _mm256_maskstore_ps(
            out + i, m, swiglu8(_mm256_maskload_ps(gate + i, m), _mm256_maskload_ps(up + i, m)));
    }
}

/* ---- rope ------------------------------------------------------------------ */

#define ROPE_MAX_PAIRS 512 /* wider rotations take the reference */

/* cos/sin of pair i at position pos, exactly as the reference computes them
 * (inv_freq = freq_base^(-2i/n_rot), computed once per call instead of once
 * per token). */
static void rope_cs(const kern_rope_params *p, int i, double inv_freq, double pos, float *c,
                    float *s) {
    double theta_extrap = pos * inv_freq;
    if (p->freq_factors) theta_extrap /= p->freq_factors[i];
    double theta = p->freq_scale * theta_extrap;
    double mscale = p->attn_factor;
    if (p->ext_factor != 0.0f) {
        double lo = p->corr_dims[0], hi = p->corr_dims[1];
        double y = (i - lo) / fmax(0.001, hi - lo);
        double ramp = (1.0 - fmin(1.0, fmax(0.0, y))) * p->ext_factor;
        theta = theta * (1.0 - ramp) + theta_extrap * ramp;
        mscale *= 1.0 + 0.1 * log(1.0 / p->freq_scale);
    }
    *c = (float)(cos(theta) * mscale);
    *s = (float)(sin(theta) * mscale);
}

/* x0' = x0 c - x1 s, x1' = x0 s + x1 c, rounded as the reference (products,
 * then the sum; no fused multiply-add). */
AVX2 void kern_avx2_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                         int head_dim, const int32_t *pos) {
    const int half = p->n_rot / 2;
    if (half > ROPE_MAX_PAIRS || half < 1) {
        kern_ref_rope(p, x, ld, n_tok, n_head, head_dim, pos);
        return;
    }
    double inv_freq[ROPE_MAX_PAIRS];
    for (int i = 0; i < half; i++) inv_freq[i] = pow((double)p->freq_base, -2.0 * i / p->n_rot);
    /* NEOX: c[i], s[i]; NORM: interleaved c[2i] = c[2i+1] = cos, s[2i] = -sin, s[2i+1] = sin */
    float cc[2 * ROPE_MAX_PAIRS], ss[2 * ROPE_MAX_PAIRS];
    const bool neox = p->mode == KERN_ROPE_NEOX;
    for (int t = 0; t < n_tok; t++) {
        for (int i = 0; i < half; i++) {
            float c, s;
            rope_cs(p, i, inv_freq[i], (double)pos[t], &c, &s);
            if (neox) {
                cc[i] = c;
                ss[i] = s;
            } else {
                cc[2 * i] = cc[2 * i + 1] = c;
                ss[2 * i] = -s;
                ss[2 * i + 1] = s;
            }
        }
        float *xt = x + (size_t)t * ld;
        for (int h = 0; h < n_head; h++) {
            float *xh = xt + (size_t)h * head_dim;
            int i = 0;
            if (neox) {
                for (; i + 8 <= half; i += 8) {
                    __m256 x0 = _mm256_loadu_ps(xh + i), x1 = _mm256_loadu_ps(xh + half + i);
                    __m256 c = _mm256_loadu_ps(cc + i), s = _mm256_loadu_ps(ss + i);
                    _mm256_storeu_ps(xh + i,
                                     _mm256_sub_ps(_mm256_mul_ps(x0, c), _mm256_mul_ps(x1, s)));
                    _mm256_storeu_ps(xh + half + i,
                                     _mm256_add_ps(_mm256_mul_ps(x0, s), _mm256_mul_ps(x1, c)));
                }
                for (; i < half; i++) {
                    float x0 = xh[i], x1 = xh[i + half];
                    float a = x0 * cc[i], b = x1 * ss[i], e = x0 * ss[i], f = x1 * cc[i];
                    xh[i] = a - b;
                    xh[i + half] = e + f;
                }
            } else {
                for (; i + 8 <= 2 * half; i += 8) { /* four pairs */
                    __m256 v = _mm256_loadu_ps(xh + i);
                    __m256 sw = _mm256_permute_ps(v, 0xB1); /* (x1, x0) per pair */
                    _mm256_storeu_ps(xh + i,
                                     _mm256_add_ps(_mm256_mul_ps(v, _mm256_loadu_ps(cc + i)),
                                                   _mm256_mul_ps(sw, _mm256_loadu_ps(ss + i))));
                }
                for (; i < 2 * half; i += 2) {
                    float x0 = xh[i], x1 = xh[i + 1];
                    float a = x0 * cc[i], b = x1 * ss[i + 1], e = x0 * ss[i + 1], f = x1 * cc[i];
                    xh[i] = a - b;
                    xh[i + 1] = e + f;
                }
            }
        }
    }
}

/* ---- attention ---------------------------------------------------------- */

#define ATT_BLOCK KERN_ATT_BLOCK /* cache positions per block (see attn_task) */
#define ATT_HEADS KERN_ATT_HEADS /* query heads per task at most */
#define ATT_SPAN  KERN_ATT_SPAN  /* positions per online softmax, merged after */

/* Scores of H query rows q[0..H) against K key rows k[0..K) (n columns):
 * out[h * ATT_BLOCK + kk] = scale * dot. Each (h, kk) is one FMA chain over
 * the 8-column chunks in order (the last one masked), then avx2_hsum8: the
 * same value whatever tile it is computed in. A 4 x 3 tile is 12
 * independent chains (more than the FMA latency times its ports) on 7 loads
 * per 12 FMAs, where one key row against 4 heads took 5 loads for 4 FMAs
 * (MLA's attention 1.4x faster from that alone, kernel-level on Zen 3). */
AVX2 static inline __attribute__((always_inline)) void dot_tile(const float *const *q,
                                                                const float *const *k, int n,
                                                                float scale, float *out,
                                                                const int H, const int K) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 3
        for (int kk = 0; kk < K; kk++) acc[h][kk] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 kv[3];
#pragma GCC unroll 3
        for (int kk = 0; kk < K; kk++) kv[kk] = _mm256_loadu_ps(k[kk] + i);
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            const __m256 qv = _mm256_loadu_ps(q[h] + i);
#pragma GCC unroll 3
            for (int kk = 0; kk < K; kk++) acc[h][kk] = _mm256_fmadd_ps(qv, kv[kk], acc[h][kk]);
        }
    }
    if (i < n) {
        const __m256i m = tail_mask(n - i);
        __m256 kv[3];
#pragma GCC unroll 3
        for (int kk = 0; kk < K; kk++) kv[kk] = _mm256_maskload_ps(k[kk] + i, m);
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) {
            const __m256 qv = _mm256_maskload_ps(q[h] + i, m);
#pragma GCC unroll 3
            for (int kk = 0; kk < K; kk++) acc[h][kk] = _mm256_fmadd_ps(qv, kv[kk], acc[h][kk]);
        }
    }
#pragma GCC unroll 4
    for (int h = 0; h < H; h++)
#pragma GCC unroll 3
        for (int kk = 0; kk < K; kk++) out[h * ATT_BLOCK + kk] = scale * avx2_hsum8(acc[h][kk]);
}

/* Attention is read-bound on the cache at long contexts, and the query heads
 * that share a kv head (GQA; all of them in MLA) read the same rows. So a
 * task takes one token and up to ATT_HEADS query heads of one kv head, and
 * walks the cache in blocks of ATT_BLOCK positions: scores of 4 heads x 3
 * key rows and value sums of 4 heads x 24 columns in registers (dot_tile,
 * add_weighted_tile), each key row read from memory once for all the
 * task's heads, with the softmax done online per head (a running max m and sum
 * l; the output row, used as the accumulator, is rescaled when m grows).
 *
 * The online softmax starts afresh every ATT_SPAN positions, and the spans'
 * partial results (o, m, l) are merged in span order (attn_merge). A batch's
 * task walks its spans one after the other; a decode of a few tokens on
 * several threads gives each span a task of its own instead (the cache read
 * once by all the threads together, where a task per head group would read
 * all of it, each), then merges. Either way every head's arithmetic is the
 * same, whichever heads share its task, whether its token comes alone or in
 * a batch, on any thread count. */

typedef struct attn_job {
    const kern_attn *a;
    int group;    /* query heads per kv head */
    int per_task; /* query heads per task (<= ATT_HEADS) */
    int chunks;   /* tasks per (token, kv head) */
    int n_span;   /* split decode: spans of the longest token */
    double *pl;   /* split decode: partial sums [t][h][span] */
    float *pm;    /* split decode: partial maxima, in the same order */
    float *po;    /* split decode: partial outputs, head_dim_v floats each */
} attn_job;

/* o[0..n) *= f */
AVX2 static void scale_row(float *o, float f, int n) {
    const __m256 vf = _mm256_set1_ps(f);
    int d = 0;
    for (; d + 8 <= n; d += 8) _mm256_storeu_ps(o + d, _mm256_mul_ps(_mm256_loadu_ps(o + d), vf));
    for (; d < n; d++) o[d] *= f;
}

/* o[h][0..dv) += sum_jj p[h][jj] * v[jj][0..dv) for H heads (v rows ldv
 * apart, p rows ATT_BLOCK apart): each element one FMA chain over jj in
 * order, whatever H. 4 heads x 24 columns a step (12 accumulators): each
 * value row chunk is loaded once for 4 heads, half the passes over the
 * block (from L2 for MLA's 512-wide values) that 2 heads at a time took. */
AVX2 static inline __attribute__((always_inline)) void
add_weighted_tile(float *const *o, const float *p, const float *v, size_t ldv, int nb, int dv,
                  const int H) {
    int d = 0;
    for (; d + 24 <= dv; d += 24) {
        __m256 acc[4][3];
#pragma GCC unroll 4
        for (int h = 0; h < H; h++)
#pragma GCC unroll 3
            for (int c = 0; c < 3; c++) acc[h][c] = _mm256_loadu_ps(o[h] + d + 8 * c);
        for (int jj = 0; jj < nb; jj++) {
            const float *vj = v + (size_t)jj * ldv + d;
            __m256 vv[3];
#pragma GCC unroll 3
            for (int c = 0; c < 3; c++) vv[c] = _mm256_loadu_ps(vj + 8 * c);
#pragma GCC unroll 4
            for (int h = 0; h < H; h++) {
                const __m256 ph = _mm256_broadcast_ss(p + h * ATT_BLOCK + jj);
#pragma GCC unroll 3
                for (int c = 0; c < 3; c++) acc[h][c] = _mm256_fmadd_ps(ph, vv[c], acc[h][c]);
            }
        }
#pragma GCC unroll 4
        for (int h = 0; h < H; h++)
#pragma GCC unroll 3
            for (int c = 0; c < 3; c++) _mm256_storeu_ps(o[h] + d + 8 * c, acc[h][c]);
    }
    for (; d < dv; d += 8) {
        const __m256i m = tail_mask(dv - d < 8 ? dv - d : 8);
        __m256 acc[4];
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) acc[h] = _mm256_maskload_ps(o[h] + d, m);
        for (int jj = 0; jj < nb; jj++) {
            const __m256 vv = _mm256_maskload_ps(v + (size_t)jj * ldv + d, m);
#pragma GCC unroll 4
            for (int h = 0; h < H; h++)
                acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + h * ATT_BLOCK + jj), vv, acc[h]);
        }
#pragma GCC unroll 4
        for (int h = 0; h < H; h++) _mm256_maskstore_ps(o[h] + d, m, acc[h]);
    }
}

/* Heads in the next tile, of rem left: 4 at most, and as even as the tile
 * count allows. 6 heads (qwen2's GQA): 3 + 3, two score tiles of 9 chains,
 * where 4 + 2 left the second with 6 (the kernel 15% faster on Zen 3). */
static inline int tile_heads(int rem) {
    const int tiles = (rem + 3) / 4;
    return (rem + tiles - 1) / tiles;
}

/* The score tiles for any head count. */
AVX2 static void scores(const float *const *q, int nh, const float *k, size_t ldk, int nb, int dk,
                        float scale, float (*sc)[ATT_BLOCK]) {
    for (int jj = 0; jj < nb; jj += 3) {
        const int nk = nb - jj < 3 ? nb - jj : 3;
        const float *kr[3];
        for (int kk = 0; kk < 3; kk++) kr[kk] = k + (size_t)(jj + (kk < nk ? kk : 0)) * ldk;
        for (int i = 0, th; i < nh; i += th) {
            float *out = &sc[i][jj];
            th = tile_heads(nh - i);
            switch (th * 4 + nk) {
#define DOT_CASE(h, kk)                                                                            \
    case (h)*4 + (kk):                                                                             \
        dot_tile(q + i, kr, dk, scale, out, h, kk);                                                \
        break;
                DOT_CASE(1, 1)
                DOT_CASE(1, 2)
                DOT_CASE(1, 3)
                DOT_CASE(2, 1)
                DOT_CASE(2, 2)
                DOT_CASE(2, 3)
                DOT_CASE(3, 1)
                DOT_CASE(3, 2)
                DOT_CASE(3, 3)
                DOT_CASE(4, 1)
                DOT_CASE(4, 2)
            default:
                dot_tile(q + i, kr, dk, scale, out, 4, 3);
                break;
#undef DOT_CASE
            }
        }
    }
}

AVX2 static void add_weighted(float *const *o, int nh, float (*p)[ATT_BLOCK], const float *v,
                              size_t ldv, int nb, int dv) {
    for (int i = 0, th; i < nh; i += th) {
        switch (th = tile_heads(nh - i)) {
        case 1:
            add_weighted_tile(o + i, p[i], v, ldv, nb, dv, 1);
            break;
        case 2:
            add_weighted_tile(o + i, p[i], v, ldv, nb, dv, 2);
            break;
        case 3:
            add_weighted_tile(o + i, p[i], v, ldv, nb, dv, 3);
            break;
        default:
            add_weighted_tile(o + i, p[i], v, ldv, nb, dv, 4);
            break;
        }
    }
}

/* Cache positions [p0, p1) for the nh heads q[i] of kv head g, from a fresh
 * online softmax: o[i] (dv floats, overwritten) = sum exp(s - mx[i]) v and
 * l[i] = sum exp(s - mx[i]). */
AVX2 static void attn_span(const kern_attn *a, int g, const float *const *q, float *const *o,
                           int nh, int p0, int p1, float *mx, double *l) {
    const int dk = a->head_dim_k, dv = a->head_dim_v;
    const float *k = a->k + (size_t)g * dk, *v = a->v + (size_t)g * dv;
    float sc[ATT_HEADS][ATT_BLOCK];
    for (int i = 0; i < nh; i++) {
        memset(o[i], 0, sizeof(float) * (size_t)dv);
        mx[i] = -INFINITY;
        l[i] = 0;
    }
    for (int j0 = p0; j0 < p1; j0 += ATT_BLOCK) {
        const int nb = p1 - j0 < ATT_BLOCK ? p1 - j0 : ATT_BLOCK;
        scores(q, nh, k + (size_t)j0 * a->ldk, a->ldk, nb, dk, a->scale, sc);
        for (int i = 0; i < nh; i++) {
            float bm = sc[i][0];
            for (int jj = 1; jj < nb; jj++)
                if (sc[i][jj] > bm) bm = sc[i][jj];
            if (bm > mx[i]) { /* rescale what is accumulated to the new max */
                if (mx[i] != -INFINITY) {
                    const float f = expf(mx[i] - bm);
                    l[i] *= f;
                    scale_row(o[i], f, dv);
                }
                mx[i] = bm;
            }
            /* p = exp(s - max), summed in double */
            const __m256 vm = _mm256_set1_ps(mx[i]);
            __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
            int jj = 0;
            for (; jj + 8 <= nb; jj += 8) {
                __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(&sc[i][jj]), vm));
                _mm256_storeu_ps(&sc[i][jj], e);
                s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
                s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
            }
            if (jj < nb) {
                const __m256i m = tail_mask(nb - jj);
                __m256 e = exp_ps(_mm256_sub_ps(_mm256_maskload_ps(&sc[i][jj], m), vm));
                e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
                _mm256_maskstore_ps(&sc[i][jj], m, e);
                s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
                s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
            }
            l[i] += hsum_pd(_mm256_add_pd(s0, s1));
        }
        add_weighted(o, nh, sc, v + (size_t)j0 * a->ldv, a->ldv, nb, dv);
    }
}

/* (o, m, l) and a span's (os, ms, ls) merged into (o, m, l): both rescaled
 * to the larger max. */
AVX2 static void attn_merge(float *o, float *m, double *l, const float *os, float ms, double ls,
                            int dv) {
    const bool up = ms > *m;
    const float f = up ? expf(*m - ms) : expf(ms - *m);
    const __m256 vf = _mm256_set1_ps(f);
    int d = 0;
    for (; d + 8 <= dv; d += 8) {
        const __m256 x = _mm256_loadu_ps(o + d), y = _mm256_loadu_ps(os + d);
        _mm256_storeu_ps(o + d, up ? _mm256_fmadd_ps(x, vf, y) : _mm256_fmadd_ps(y, vf, x));
    }
    for (; d < dv; d++) o[d] = up ? fmaf(o[d], f, os[d]) : fmaf(os[d], f, o[d]);
    *l = up ? *l * f + ls : *l + ls * f;
    if (up) *m = ms;
}

/* A task's heads: token t, kv head g, query heads h0 .. h0 + nh - 1. */
static void attn_heads(const attn_job *job, int task, int *t, int *g, int *h0, int *nh) {
    const int chunk = task % job->chunks;
    *g = (task / job->chunks) % job->a->n_head_kv;
    *t = task / job->chunks / job->a->n_head_kv;
    *h0 = *g * job->group + chunk * job->per_task;
    const int left = job->group - chunk * job->per_task;
    *nh = left < job->per_task ? left : job->per_task;
}

/* A task's spans one after the other (the first straight into the output
 * rows, the next ones in the thread's scratch), then o / l. */
AVX2 static void attn_task(void *ctx, int task, int thread) {
    const attn_job *job = ctx;
    const kern_attn *a = job->a;
    int t, g, h0, nh;
    attn_heads(job, task, &t, &g, &h0, &nh);
    const int n = a->pos[t] + 1, dk = a->head_dim_k, dv = a->head_dim_v;
    const float *q[ATT_HEADS] = {0};
    float *o[ATT_HEADS] = {0}, *os[ATT_HEADS] = {0}, mx[ATT_HEADS], ms[ATT_HEADS];
    double l[ATT_HEADS], ls[ATT_HEADS];
    for (int i = 0; i < nh; i++) {
        q[i] = a->q + (size_t)t * a->ldq + (size_t)(h0 + i) * dk;
        o[i] = a->out + (size_t)t * a->ldo + (size_t)(h0 + i) * dv;
        os[i] = a->scratch + ((size_t)thread * ATT_HEADS + (size_t)i) * (size_t)dv;
    }
    attn_span(a, g, q, o, nh, 0, n < ATT_SPAN ? n : ATT_SPAN, mx, l);
    for (int p0 = ATT_SPAN; p0 < n; p0 += ATT_SPAN) {
        attn_span(a, g, q, os, nh, p0, n - p0 < ATT_SPAN ? n : p0 + ATT_SPAN, ms, ls);
        for (int i = 0; i < nh; i++) attn_merge(o[i], &mx[i], &l[i], os[i], ms[i], ls[i], dv);
    }
    for (int i = 0; i < nh; i++) scale_row(o[i], (float)(1.0 / l[i]), dv);
}

/* Split decode, first step: one span of a task's heads, into the partials. */
AVX2 static void attn_split_task(void *ctx, int task, int thread) {
    (void)thread;
    const attn_job *job = ctx;
    const kern_attn *a = job->a;
    const int s = task % job->n_span;
    int t, g, h0, nh;
    attn_heads(job, task / job->n_span, &t, &g, &h0, &nh);
    const int n = a->pos[t] + 1, p0 = s * ATT_SPAN;
    if (p0 >= n) return; /* a shorter token of the batch */
    const size_t dv = (size_t)a->head_dim_v;
    const size_t at = ((size_t)t * (size_t)a->n_head + (size_t)h0) * (size_t)job->n_span + s;
    const float *q[ATT_HEADS] = {0};
    float *o[ATT_HEADS] = {0}, mx[ATT_HEADS];
    double l[ATT_HEADS];
    for (int i = 0; i < nh; i++) {
        q[i] = a->q + (size_t)t * a->ldq + (size_t)(h0 + i) * (size_t)a->head_dim_k;
        o[i] = job->po + (at + (size_t)i * job->n_span) * dv;
    }
    attn_span(a, g, q, o, nh, p0, n - p0 < ATT_SPAN ? n : p0 + ATT_SPAN, mx, l);
    for (int i = 0; i < nh; i++) {
        job->pm[at + (size_t)i * job->n_span] = mx[i];
        job->pl[at + (size_t)i * job->n_span] = l[i];
    }
}

/* Split decode, second step: a (token, head)'s spans merged in order. */
AVX2 static void attn_merge_task(void *ctx, int task, int thread) {
    (void)thread;
    const attn_job *job = ctx;
    const kern_attn *a = job->a;
    const int t = task / a->n_head, h = task % a->n_head, n = a->pos[t] + 1;
    const int dv = a->head_dim_v;
    const size_t at = (size_t)task * (size_t)job->n_span;
    float *o = a->out + (size_t)t * a->ldo + (size_t)h * (size_t)dv;
    memcpy(o, job->po + at * (size_t)dv, sizeof(float) * (size_t)dv);
    float m = job->pm[at];
    double l = job->pl[at];
    for (int s = 1; s < n / ATT_SPAN + (n % ATT_SPAN != 0); s++)
        attn_merge(o, &m, &l, job->po + (at + s) * (size_t)dv, job->pm[at + s], job->pl[at + s],
                   dv);
    scale_row(o, (float)(1.0 / l), dv);
}

void kern_avx2_attention(tp_pool *pool, const kern_attn *a) {
    if (a->n_tok <= 0 || a->n_head <= 0 || a->n_head_kv <= 0) return;
    attn_job job = {.a = a, .group = a->n_head / a->n_head_kv};
    const int threads = tp_n_threads(pool);
    int n_max = 0;
    for (int t = 0; t < a->n_tok; t++)
        if (a->pos[t] + 1 > n_max) n_max = a->pos[t] + 1;
    job.per_task = job.group < ATT_HEADS ? job.group : ATT_HEADS;
    const int64_t base = (int64_t)a->n_tok * a->n_head_kv;
    if (threads > 1 && a->n_tok <= KERN_ATT_SPLIT_TOK && n_max > ATT_SPAN) {
        job.chunks = (job.group + job.per_task - 1) / job.per_task;
        job.n_span = (n_max + ATT_SPAN - 1) / ATT_SPAN;
        const size_t parts = (size_t)a->n_tok * (size_t)a->n_head * (size_t)job.n_span;
        job.pl = (double *)(((uintptr_t)a->scratch + 7) & ~(uintptr_t)7);
        job.pm = (float *)(job.pl + parts);
        job.po = job.pm + parts;
        tp_run(pool, attn_split_task, &job, (int)(base * job.chunks * job.n_span));
        tp_run(pool, attn_merge_task, &job, a->n_tok * a->n_head);
        return;
    }
    /* as many heads per task as keeps every thread busy (2 tasks each), at
     * most ATT_HEADS: the results are the same for any choice */
    const int64_t want = 2 * (int64_t)threads;
    while (job.per_task > 1 && base * ((job.group + job.per_task - 1) / job.per_task) < want)
        job.per_task = (job.per_task + 1) / 2;
    job.chunks = (job.group + job.per_task - 1) / job.per_task;
    tp_run(pool, attn_task, &job, (int)(base * job.chunks));
}

/* kern_matmul_kn: tiles of up to 4 tokens x 32 columns (16 accumulators;
 * the column tail 8 at a time, the last masked), d walked in order. Every
 * element is acc = fma(x[t][d], b[d][i], acc) from 0 over d = 0..k-1,
 * whatever tile it falls in: a token's row is the same alone or in a batch. */
AVX2 static inline __attribute__((always_inline)) void kn_tile(const float *x, size_t ldx,
                                                               const float *b, size_t ldb, int k,
                                                               float *y, size_t ldy, const int T,
                                                               const int V, __m256i mask) {
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) acc[t][v] = _mm256_setzero_ps();
    for (int d = 0; d < k; d++) {
        const float *bd = b + (size_t)d * ldb;
        __m256 bv[4];
#pragma GCC unroll 4
        for (int v = 0; v < V; v++)
            bv[v] = V == 1 ? _mm256_maskload_ps(bd, mask) : _mm256_loadu_ps(bd + 8 * v);
#pragma GCC unroll 4
        for (int t = 0; t < T; t++) {
            const __m256 a = _mm256_broadcast_ss(x + (size_t)t * ldx + (size_t)d);
#pragma GCC unroll 4
            for (int v = 0; v < V; v++) acc[t][v] = _mm256_fmadd_ps(a, bv[v], acc[t][v]);
        }
    }
#pragma GCC unroll 4
    for (int t = 0; t < T; t++)
#pragma GCC unroll 4
        for (int v = 0; v < V; v++) {
            float *yt = y + (size_t)t * ldy + 8 * v;
            if (V == 1)
                _mm256_maskstore_ps(yt, mask, acc[t][v]);
            else
                _mm256_storeu_ps(yt, acc[t][v]);
        }
}

/* kn_tile for nt (1..4) tokens: the token count as a constant. */
AVX2 static inline __attribute__((always_inline)) void kn_tiles(const float *x, size_t ldx,
                                                                const float *b, size_t ldb, int k,
                                                                float *y, size_t ldy, int nt,
                                                                const int V, __m256i mask) {
    switch (nt) {
    case 1:
        kn_tile(x, ldx, b, ldb, k, y, ldy, 1, V, mask);
        break;
    case 2:
        kn_tile(x, ldx, b, ldb, k, y, ldy, 2, V, mask);
        break;
    case 3:
        kn_tile(x, ldx, b, ldb, k, y, ldy, 3, V, mask);
        break;
    default:
        kn_tile(x, ldx, b, ldb, k, y, ldy, 4, V, mask);
        break;
    }
}

AVX2 void kern_avx2_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                              float *y, size_t ldy, int n_tok) {
    for (int t0 = 0; t0 < n_tok; t0 += 4) {
        const int nt = n_tok - t0 < 4 ? n_tok - t0 : 4;
        const float *xt = x + (size_t)t0 * ldx;
        float *yt = y + (size_t)t0 * ldy;
        int i = 0;
        for (; i + 32 <= m; i += 32)
            kn_tiles(xt, ldx, b + i, ldb, k, yt + i, ldy, nt, 4, _mm256_set1_epi32(-1));
        for (; i < m; i += 8)
            kn_tiles(xt, ldx, b + i, ldb, k, yt + i, ldy, nt, 1, tail_mask(m - i < 8 ? m - i : 8));
    }
}

#else /* not x86-64: the avx2 table is empty there; these only keep tests linking */

#include "kernels/avx2_ops.h"
#include "kernels/ref.h"

void kern_avx2_rmsnorm(float *y, const float *x, const float *w, int n, int n_tok, float eps) {
    kern_ref_rmsnorm(y, x, w, n, n_tok, eps);
}
void kern_avx2_softmax(float *x, int n) {
    kern_ref_softmax(x, n);
}
void kern_avx2_swiglu(float *out, const float *gate, const float *up, int64_t n) {
    kern_ref_swiglu(out, gate, up, n);
}
void kern_avx2_rope(const kern_rope_params *p, float *x, size_t ld, int n_tok, int n_head,
                    int head_dim, const int32_t *pos) {
    kern_ref_rope(p, x, ld, n_tok, n_head, head_dim, pos);
}
void kern_avx2_attention(tp_pool *pool, const kern_attn *a) {
    kern_ref_attention(pool, a);
}
void kern_avx2_matmul_kn(const float *x, size_t ldx, const float *b, size_t ldb, int k, int m,
                         float *y, size_t ldy, int n_tok) {
    kern_ref_matmul_kn(x, ldx, b, ldb, k, m, y, ldy, n_tok);
}

#endif
