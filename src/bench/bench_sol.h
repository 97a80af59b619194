/* The speed of light of generation: bytes read per generated token, and
 * what a measured speed makes of them.
 *
 * Bytes per token = every non-expert weight read in full (attention, dense and
 * shared-expert FFNs, norms, biases, router, output matrix) + one row of
 * token_embd (all of it when the output matrix is tied to it) + the chosen
 * routed experts (n_expert_used / n_expert of each *_exps tensor per MoE
 * layer) + the KV cache read at the mean position (every cached position of
 * every layer). Divided into a tg speed, that is the bandwidth the decode
 * achieved; against the measured read bandwidth (bandwidth.h), how near the
 * limit it runs. */
#ifndef HEARTH_BENCH_SOL_H
#define HEARTH_BENCH_SOL_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "bench/bench_shape.h"
#include "model/model.h"

typedef struct bench_bytes {
    uint64_t weights;  /* non-expert weights read in full, output matrix included */
    uint64_t embd_row; /* one row of token_embd (0 when tied: counted in weights) */
    uint64_t experts;  /* chosen routed experts, all MoE layers */
    uint64_t kv;       /* KV cache read for one token at the mean position */
    uint64_t total;
} bench_bytes;

/* From a tensor list (bench_shape_tensors, or a file's): n_expert_used experts
 * of each *_exps tensor (ne[2] experts); kv_token_layer bytes of cache per
 * position per layer, n_layer layers, kv_positions positions read. */
void bench_bytes_of(const bench_tensor *t, size_t n, int n_expert_used, uint64_t kv_token_layer,
                    int n_layer, double kv_positions, bench_bytes *out);

/* KV bytes per position per layer of hearth's F32 cache for a shape (as
 * model_kv_bytes_per_token reports it once loaded). */
uint64_t bench_shape_kv_bytes(const bench_shape *s);

/* Same for a loaded model: its file's tensors, <arch>.expert_used_count and
 * model_kv_bytes_per_token. */
int bench_model_bytes(const model *m, double kv_positions, bench_bytes *out, hearth_err *err);

/* Mean number of cached positions a token reads while n_gen tokens are
 * generated after n_past: n_past + (n_gen + 1) / 2. */
double bench_mean_kv_positions(int n_past, int n_gen);

/* One line for the end of a run, e.g.
 *   "speed of light: 1.64 GB/token at 14.8 tok/s = 24.3 GB/s, 81% of 30.0 GB/s measured"
 * n_gen tokens generated in `seconds` after n_past cached positions; bw_gbs:
 * a read bandwidth from bw_measure (<= 0: not measured, the % is left out).
 * Writes at most cap bytes (NUL-terminated); returns 0, or -1 when the bytes
 * cannot be counted (message in buf). */
int bench_sol_line(const model *m, int n_past, int n_gen, double seconds, double bw_gbs, char *buf,
                   size_t cap);

#endif
