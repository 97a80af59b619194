/* Bytes per generated token and the speed-of-light line (see bench_sol.h). */
#include "bench/bench_sol.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !memcmp(s + n - k, suffix, k);
}

void bench_bytes_of(const bench_tensor *t, size_t n, int n_expert_used, uint64_t kv_token_layer,
                    int n_layer, double kv_positions, bench_bytes *out) {
    memset(out, 0, sizeof *out);
    bool tied = true;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(t[i].name, "output.weight")) tied = false;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(t[i].name, "token_embd.weight")) {
            if (tied)
                out->weights += t[i].nbytes;
            else if (t[i].ne[1] > 0 && t[i].ne[2] > 0 && t[i].ne[3] > 0)
                out->embd_row += t[i].nbytes / (uint64_t)(t[i].ne[1] * t[i].ne[2] * t[i].ne[3]);
        } else if (ends_with(t[i].name, "_exps.weight") && t[i].ne[2] > 0) {
            int used = n_expert_used < t[i].ne[2] ? n_expert_used : (int)t[i].ne[2];
            out->experts += t[i].nbytes / (uint64_t)t[i].ne[2] * (uint64_t)(used > 0 ? used : 0);
        } else {
            out->weights += t[i].nbytes;
        }
    }
    double kv = (double)kv_token_layer * (double)n_layer * (kv_positions > 0 ? kv_positions : 0);
    out->kv = (uint64_t)(kv + 0.5);
    out->total = out->weights + out->embd_row + out->experts + out->kv;
}

uint64_t bench_shape_kv_bytes(const bench_shape *s) {
    if (!strcmp(s->arch, "deepseek2")) /* MLA: the latent and the shared rotary key */
        return (uint64_t)(s->kv_lora_rank + s->qk_rope) * sizeof(float);
    return 2 * (uint64_t)s->n_head_kv * (uint64_t)s->head_dim * sizeof(float);
}

double bench_mean_kv_positions(int n_past, int n_gen) {
    return (double)n_past + (double)(n_gen + 1) / 2.0;
}

int bench_model_bytes(const model *m, double kv_positions, bench_bytes *out, hearth_err *err) {
    const gguf_file *f = model_gguf(m);
    const model_hparams *hp = model_hparams_of(m);
    uint64_t n = gguf_n_tensors(f);
    bench_tensor *t = calloc(n ? (size_t)n : 1, sizeof *t);
    if (!t) return hearth_errf(err, "out of memory for %llu tensors", (unsigned long long)n);
    for (uint64_t i = 0; i < n; i++) {
        const gguf_tensor *g = gguf_tensor_at(f, i);
        /* Names longer than the field are cut; none of the names classified
         * above is that long. */
        size_t len =
            g->name.len < sizeof t[i].name - 1 ? (size_t)g->name.len : sizeof t[i].name - 1;
        memcpy(t[i].name, g->name.ptr, len);
        t[i].type = g->type;
        t[i].n_dims = g->n_dims;
        memcpy(t[i].ne, g->ne, sizeof t[i].ne);
        t[i].nbytes = g->nbytes;
    }
    uint32_t used = 0;
    char key[96];
    snprintf(key, sizeof key, "%s.expert_used_count", hp->arch);
    if (gguf_opt_u32(f, key, &used, err)) {
        free(t);
        return -1;
    }
    bench_bytes_of(t, (size_t)n, (int)(used > 1u << 20 ? 1u << 20 : used),
                   model_kv_bytes_per_token(m), hp->n_layer, kv_positions, out);
    free(t);
    return 0;
}

int bench_sol_line(const model *m, int n_past, int n_gen, double seconds, double bw_gbs, char *buf,
                   size_t cap) {
    if (!buf || !cap) return -1;
    bench_bytes b;
    hearth_err err;
    if (bench_model_bytes(m, bench_mean_kv_positions(n_past, n_gen), &b, &err)) {
        snprintf(buf, cap, "speed of light: %s", err.msg);
        return -1;
    }
    double tps = seconds > 0 && n_gen > 0 ? n_gen / seconds : 0;
    double gbs = (double)b.total * tps / 1e9;
    int k = snprintf(buf, cap, "speed of light: %.3f GB/token at %.2f tok/s = %.1f GB/s",
                     (double)b.total / 1e9, tps, gbs);
    if (k >= 0 && (size_t)k < cap && bw_gbs > 0)
        snprintf(buf + k, cap - (size_t)k, ", %.0f%% of %.1f GB/s measured", 100.0 * gbs / bw_gbs,
                 bw_gbs);
    return 0;
}
