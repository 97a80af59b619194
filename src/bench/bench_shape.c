/* Benchmark shapes (see bench_shape.h): tensor lists, type mixes, metadata
 * and the streaming random-weight writer. */
#include "bench/bench_shape.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/threadpool.h"
#include "gguf/gguf.h"

static const bench_shape SHAPES[] = {
    /* DeepSeek-R1-Distill-Qwen-1.5B */
    {.name = "bench-qwen2-1.5b",
     .arch = "qwen2",
     .pre = "qwen2",
     .n_vocab = 151936,
     .n_ctx_train = 131072,
     .n_embd = 1536,
     .n_layer = 28,
     .n_head = 12,
     .n_head_kv = 2,
     .n_ff = 8960,
     .head_dim = 128,
     .rope_theta = 10000.0f,
     .rms_eps = 1e-6f},
    /* DeepSeek-V2-Lite layer sizes with a q-LoRA, 4 layers */
    {.name = "bench-deepseek2-moe",
     .arch = "deepseek2",
     .pre = "deepseek-llm",
     .n_vocab = 102400,
     .n_ctx_train = 163840,
     .n_embd = 2048,
     .n_layer = 4,
     .n_head = 16,
     .n_head_kv = 16,
     .n_ff = 10944,
     .rope_theta = 10000.0f,
     .rms_eps = 1e-6f,
     .n_lead_dense = 1,
     .q_lora_rank = 1536,
     .kv_lora_rank = 512,
     .qk_nope = 128,
     .qk_rope = 64,
     .v_head = 128,
     .n_expert = 64,
     .n_expert_used = 6,
     .n_expert_shared = 2,
     .n_ff_exp = 1408,
     .gating = 1,
     .yarn_factor = 40.0f,
     .yarn_log_mul = 0.0707f,
     .yarn_orig_ctx = 4096},
    /* Test sizes: same architectures and mixes; some rows not a multiple of
     * 256, as in the real MoE shape, so the K-quant fallbacks run. */
    {.name = "tiny-qwen2",
     .arch = "qwen2",
     .pre = "qwen2",
     .n_vocab = 512,
     .n_ctx_train = 2048,
     .n_embd = 256,
     .n_layer = 4,
     .n_head = 4,
     .n_head_kv = 2,
     .n_ff = 512,
     .head_dim = 64,
     .rope_theta = 10000.0f,
     .rms_eps = 1e-6f},
    {.name = "tiny-deepseek2-moe",
     .arch = "deepseek2",
     .pre = "deepseek-llm",
     .n_vocab = 512,
     .n_ctx_train = 2048,
     .n_embd = 256,
     .n_layer = 3,
     .n_head = 4,
     .n_head_kv = 4,
     .n_ff = 384,
     .rope_theta = 10000.0f,
     .rms_eps = 1e-6f,
     .n_lead_dense = 1,
     .q_lora_rank = 256,
     .kv_lora_rank = 128,
     .qk_nope = 32,
     .qk_rope = 16,
     .v_head = 32,
     .n_expert = 8,
     .n_expert_used = 2,
     .n_expert_shared = 2,
     .n_ff_exp = 160,
     .gating = 1,
     .yarn_factor = 40.0f,
     .yarn_log_mul = 0.0707f,
     .yarn_orig_ctx = 256},
};
#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

const bench_shape *bench_shape_at(int i) {
    return i >= 0 && i < N_SHAPES ? &SHAPES[i] : NULL;
}

const bench_shape *bench_shape_find(const char *name) {
    for (int i = 0; name && i < N_SHAPES; i++)
        if (!strcmp(SHAPES[i].name, name)) return &SHAPES[i];
    return NULL;
}

static const char *const FTYPE_NAMES[] = {"F16", "Q8_0", "Q4_K_M"};

int bench_ftype_parse(const char *s) {
    for (int i = 0; s && i < 3; i++)
        if (!strcasecmp(s, FTYPE_NAMES[i])) return i;
    return -1;
}

const char *bench_ftype_name(bench_ftype ft) {
    return (unsigned)ft < 3 ? FTYPE_NAMES[ft] : "?";
}

/* ---- type mixes ---------------------------------------------------------- */

/* The reference quantizer's rule for which layers get more bits. */
static bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

typedef struct mix_state {
    const bench_shape *s;
    bench_ftype ft;
    int n_ffn_down; /* tensors whose name contains "ffn_down" */
    int i_attn_v, i_ffn_down;
} mix_state;

/* Type of a 2-D or 3-D weight `kind` ("attn_v", "ffn_down_exps", "output",
 * ...) of layer `layer` (-1 outside blocks), rows of ne0 elements. */
static ht_type pick_type(mix_state *ms, const char *kind, int layer, int64_t ne0) {
    if (ms->ft == BENCH_F16) return HT_F16;
    if (ms->ft == BENCH_Q8_0) return HT_Q8_0;
    ht_type t = HT_Q4_K;
    if (!strcmp(kind, "output")) {
        t = HT_Q6_K;
    } else if (!strcmp(kind, "attn_v")) {
        if (use_more_bits(ms->i_attn_v, ms->s->n_layer)) t = HT_Q6_K;
        ms->i_attn_v++;
    } else if (!strncmp(kind, "ffn_down", 8)) {
        /* With experts the layer index comes from the name, the count stays
         * the number of ffn_down* tensors (as the reference does it). */
        int i = ms->s->n_expert > 1 ? layer : ms->i_ffn_down;
        if (use_more_bits(i, ms->n_ffn_down)) t = HT_Q6_K;
        ms->i_ffn_down++;
    }
    if (ne0 % 256 != 0) t = t == HT_Q6_K ? HT_Q8_0 : HT_Q5_0; /* the reference's fallbacks */
    return t;
}

typedef struct list {
    bench_tensor *t;
    size_t n, cap;
    int failed;
} list;

static void add(list *l, ht_type type, uint32_t n_dims, int64_t ne0, int64_t ne1, int64_t ne2,
                const char *fmt, int layer, const char *suffix) {
    if (l->failed) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        bench_tensor *n = realloc(l->t, cap * sizeof *n);
        if (!n) {
            l->failed = 1;
            return;
        }
        l->t = n;
        l->cap = cap;
    }
    bench_tensor *t = &l->t[l->n++];
    memset(t, 0, sizeof *t);
    if (layer >= 0)
        snprintf(t->name, sizeof t->name, "blk.%d.%s.%s", layer, fmt, suffix);
    else
        snprintf(t->name, sizeof t->name, "%s.%s", fmt, suffix);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims > 1 ? ne1 : 1;
    t->ne[2] = n_dims > 2 ? ne2 : 1;
    t->ne[3] = 1;
    size_t row = 0;
    if (ht_row_size(type, ne0, &row, NULL)) l->failed = 2;
    t->nbytes = (uint64_t)row * (uint64_t)t->ne[1] * (uint64_t)t->ne[2];
}

/* 1-D F32 tensor. */
static void vec(list *l, const char *kind, int layer, const char *suffix, int64_t n) {
    add(l, HT_F32, 1, n, 1, 1, kind, layer, suffix);
}

/* Weight [ne1][ne0] (x ne2 experts) in the mix's type. */
static void mat(list *l, mix_state *ms, const char *kind, int layer, int64_t ne0, int64_t ne1,
                int64_t ne2) {
    ht_type t = pick_type(ms, kind, layer, ne0);
    add(l, t, ne2 > 1 ? 3 : 2, ne0, ne1, ne2, kind, layer, "weight");
}

static void qwen2_tensors(list *l, mix_state *ms) {
    const bench_shape *s = ms->s;
    int64_t e = s->n_embd, q = (int64_t)s->n_head * s->head_dim;
    int64_t kv = (int64_t)s->n_head_kv * s->head_dim, ff = s->n_ff;
    ms->n_ffn_down = s->n_layer;
    mat(l, ms, "token_embd", -1, e, s->n_vocab, 1);
    for (int i = 0; i < s->n_layer; i++) { /* names in the order converters write them */
        vec(l, "attn_k", i, "bias", kv);
        mat(l, ms, "attn_k", i, e, kv, 1);
        vec(l, "attn_norm", i, "weight", e);
        mat(l, ms, "attn_output", i, q, e, 1);
        vec(l, "attn_q", i, "bias", q);
        mat(l, ms, "attn_q", i, e, q, 1);
        vec(l, "attn_v", i, "bias", kv);
        mat(l, ms, "attn_v", i, e, kv, 1);
        mat(l, ms, "ffn_down", i, ff, e, 1);
        mat(l, ms, "ffn_gate", i, e, ff, 1);
        vec(l, "ffn_norm", i, "weight", e);
        mat(l, ms, "ffn_up", i, e, ff, 1);
    }
    vec(l, "output_norm", -1, "weight", e);
    mat(l, ms, "output", -1, e, s->n_vocab, 1);
}

static void deepseek2_tensors(list *l, mix_state *ms) {
    const bench_shape *s = ms->s;
    int64_t e = s->n_embd, h = s->n_head;
    int64_t ffx = s->n_ff_exp, ffs = (int64_t)s->n_ff_exp * s->n_expert_shared;
    ms->n_ffn_down = s->n_lead_dense + 2 * (s->n_layer - s->n_lead_dense);
    mat(l, ms, "token_embd", -1, e, s->n_vocab, 1);
    for (int i = 0; i < s->n_layer; i++) {
        bool dense = i < s->n_lead_dense;
        mat(l, ms, "attn_kv_a_mqa", i, e, s->kv_lora_rank + s->qk_rope, 1);
        vec(l, "attn_kv_a_norm", i, "weight", s->kv_lora_rank);
        mat(l, ms, "attn_kv_b", i, s->kv_lora_rank, h * (s->qk_nope + s->v_head), 1);
        vec(l, "attn_norm", i, "weight", e);
        mat(l, ms, "attn_output", i, h * s->v_head, e, 1);
        mat(l, ms, "attn_q_a", i, e, s->q_lora_rank, 1);
        vec(l, "attn_q_a_norm", i, "weight", s->q_lora_rank);
        mat(l, ms, "attn_q_b", i, s->q_lora_rank, h * (s->qk_nope + s->qk_rope), 1);
        if (dense) {
            mat(l, ms, "ffn_down", i, s->n_ff, e, 1);
            mat(l, ms, "ffn_gate", i, e, s->n_ff, 1);
            vec(l, "ffn_norm", i, "weight", e);
            mat(l, ms, "ffn_up", i, e, s->n_ff, 1);
        } else {
            mat(l, ms, "ffn_down_exps", i, ffx, e, s->n_expert);
            mat(l, ms, "ffn_down_shexp", i, ffs, e, 1);
            mat(l, ms, "ffn_gate_exps", i, e, ffx, s->n_expert);
            /* the router stays F32, as converters and quantizers leave it */
            add(l, HT_F32, 2, e, s->n_expert, 1, "ffn_gate_inp", i, "weight");
            mat(l, ms, "ffn_gate_shexp", i, e, ffs, 1);
            vec(l, "ffn_norm", i, "weight", e);
            mat(l, ms, "ffn_up_exps", i, e, ffx, s->n_expert);
            mat(l, ms, "ffn_up_shexp", i, e, ffs, 1);
        }
    }
    vec(l, "output_norm", -1, "weight", e);
    mat(l, ms, "output", -1, e, s->n_vocab, 1);
}

int bench_shape_tensors(const bench_shape *s, bench_ftype ft, bench_tensor **out, size_t *n,
                        hearth_err *err) {
    if (!s || (unsigned)ft > BENCH_Q4_K_M) return hearth_errf(err, "bench: bad shape or type");
    list l = {0};
    mix_state ms = {.s = s, .ft = ft};
    if (!strcmp(s->arch, "qwen2"))
        qwen2_tensors(&l, &ms);
    else
        deepseek2_tensors(&l, &ms);
    if (l.failed) {
        free(l.t);
        return hearth_errf(err, "%s: %s", s->name,
                           l.failed == 1 ? "out of memory" : "a row is not whole blocks");
    }
    *out = l.t;
    *n = l.n;
    return 0;
}

/* ---- random weights ------------------------------------------------------ */

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

typedef struct gen_ctx {
    const bench_tensor *t;
    uint64_t seed; /* of this tensor */
    float std;     /* 0: every element 1 (norm weights) */
    size_t row_size;
    tp_pool *pool;
    float *scratch; /* [n_threads][max row] */
    int64_t max_row;
    /* the current chunk, for the pool's tasks */
    int64_t row0;
    uint8_t *dst;
    int failed;
} gen_ctx;

/* Roughly normal: the sum of four 16-bit uniforms (Irwin-Hall), scaled. */
static void gen_row(float *x, int64_t n, uint64_t seed, float std) {
    if (std == 0) {
        for (int64_t i = 0; i < n; i++) x[i] = 1.0f;
        return;
    }
    uint64_t st = seed;
    const float scale = std / 37837.23f; /* std of the sum: 65536 / sqrt(3) */
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix(&st);
        int32_t s = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) +
                    (int32_t)((r >> 32) & 0xffff) + (int32_t)(r >> 48) - 131070;
        x[i] = (float)s * scale;
    }
}

/* Quantized rows are made directly as random blocks of the type: uniform
 * quants, scales picked so that the values have about the wanted std and
 * mean 0. Running the reference quantizer over 1.5 G floats would take many
 * minutes; the speed of a kernel does not depend on the values. Returns false
 * for types without a block generator. Layouts as in tensor/quant.c. */
static void put_f16(uint8_t *p, float x) {
    uint16_t h = ht_f32_to_f16(x);
    memcpy(p, &h, 2);
}

static bool gen_blocks(uint8_t *dst, ht_type type, int64_t n, uint64_t seed, float std) {
    uint64_t st = seed;
    uint8_t r[8];
    int nr = 0;
#define RND() (nr ? r[--nr] : (memcpy(r, &(uint64_t){splitmix(&st)}, 8), nr = 7, r[7]))
    switch (type) {
    case HT_Q8_0: /* d, qs[32] int8 in [-127, 127] (std 73.6) */
        for (int64_t b = 0; b < n / 32; b++, dst += 34) {
            put_f16(dst, std / 73.6f);
            for (int i = 0; i < 32; i++) dst[2 + i] = (uint8_t)(int8_t)(RND() % 255 - 127);
        }
        return true;
    case HT_Q5_0: /* d, qh[4], qs[16]: d * (q - 16), q in [0, 31] (std 9.23) */
        for (int64_t b = 0; b < n / 32; b++, dst += 22) {
            put_f16(dst, std / 9.23f);
            for (int i = 2; i < 22; i++) dst[i] = RND();
        }
        return true;
    case HT_Q4_K: /* d, dmin, scales[12], qs[128]: d*sc*q - dmin*m, q in [0, 15] */
        for (int64_t b = 0; b < n / 256; b++, dst += 144) {
            uint8_t sc[8], *q = dst + 4;
            float sum = 0;
            for (int j = 0; j < 8; j++) sc[j] = (uint8_t)(16 + RND() % 48), sum += sc[j];
            float d = std / (sum / 8 * 4.61f); /* 4.61: std of q */
            put_f16(dst, d);
            put_f16(dst + 2, 7.5f * d); /* m = sc: each sub-block has mean 0 */
            for (int j = 0; j < 4; j++) {
                q[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
                q[j + 4] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
                q[j + 8] = (uint8_t)((sc[j + 4] & 0xf) | ((sc[j + 4] & 0xf) << 4));
            }
            for (int i = 16; i < 144; i++) dst[i] = RND();
        }
        return true;
    case HT_Q6_K: /* ql[128], qh[64], scales[16] int8, d: d*sc*(q - 32), q in [0, 63] */
        for (int64_t b = 0; b < n / 256; b++, dst += 210) {
            float sum = 0;
            for (int i = 0; i < 192; i++) dst[i] = RND();
            for (int j = 0; j < 16; j++)
                dst[192 + j] = (uint8_t)(16 + RND() % 48), sum += dst[192 + j];
            put_f16(dst + 208, std / (sum / 16 * 18.47f)); /* 18.47: std of q */
        }
        return true;
    default:
        return false;
    }
#undef RND
}

static void gen_task(void *ud, int task, int thread) {
    gen_ctx *g = ud;
    int64_t row = g->row0 + task;
    float *x = g->scratch + (size_t)thread * (size_t)g->max_row;
    uint64_t rs = g->seed ^ ((uint64_t)row * 0xd1b54a32d192ed03ULL);
    uint8_t *dst = g->dst + (size_t)task * g->row_size;
    if (g->std > 0 && gen_blocks(dst, g->t->type, g->t->ne[0], rs, g->std)) return;
    gen_row(x, g->t->ne[0], rs, g->std);
    if (g->t->type == HT_F32)
        memcpy(dst, x, sizeof(float) * (size_t)g->t->ne[0]);
    else if (ht_quantize_row(g->t->type, x, dst, g->t->ne[0]))
        g->failed = 1;
}

static int gen_rows(void *ud, int64_t row0, int64_t n_rows, void *dst, hearth_err *err) {
    gen_ctx *g = ud;
    g->row0 = row0;
    g->dst = dst;
    g->failed = 0;
    tp_run(g->pool, gen_task, g, (int)n_rows);
    return g->failed ? hearth_errf(err, "cannot quantize to %s", ht_type_get(g->t->type)->name) : 0;
}

/* ---- metadata ------------------------------------------------------------ */

/* GPT-2's byte-to-unicode map: printable bytes stand for themselves, the
 * rest for U+0100 onwards. */
static void byte_token(int b, char out[4]) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int k = 0;
        for (int c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

static const char BOS[] = "<\xef\xbd\x9c"
                          "begin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";
static const char EOS[] = "<\xef\xbd\x9c"
                          "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>";

/* Synthetic byte-level BPE vocabulary of the shape's size: the 256 byte
 * tokens, "t256".."tN", and BOS/EOS as the last two ids. */
static int set_vocab(gguf_writer *w, const bench_shape *s, hearth_err *err) {
    int n = s->n_vocab;
    char **tok = calloc((size_t)n, sizeof *tok);
    int32_t *type = calloc((size_t)n, sizeof *type);
    char *text = malloc((size_t)n * 16);
    int bad = !tok || !type || !text;
    for (int i = 0; !bad && i < n; i++) {
        char *p = text + (size_t)i * 16;
        type[i] = 1;
        if (i < 256)
            byte_token(i, p);
        else
            snprintf(p, 16, "t%d", i);
        tok[i] = p;
    }
    if (!bad) {
        tok[n - 2] = (char *)BOS, type[n - 2] = 3;
        tok[n - 1] = (char *)EOS, type[n - 1] = 3;
        bad |= gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
        bad |= gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
        bad |= gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", (const char *const *)tok,
                                       (uint64_t)n);
        bad |= gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, type, (uint64_t)n);
        bad |= gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", NULL, 0);
        bad |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(n - 2));
        bad |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(n - 1));
        bad |= gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
        bad |= gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    }
    free(tok);
    free(type);
    free(text);
    return bad ? hearth_errf(err, "%s: out of memory for the vocabulary", s->name) : 0;
}

static int set_meta(gguf_writer *w, const bench_shape *s, bench_ftype ft, hearth_err *err) {
    char k[128];
    int bad = 0;
#define KEY(suffix) (snprintf(k, sizeof k, "%s.%s", s->arch, suffix), k)
    bad |= gguf_writer_set_str(w, "general.architecture", s->arch);
    char name[96];
    snprintf(name, sizeof name, "%s %s (random weights)", s->name, bench_ftype_name(ft));
    bad |= gguf_writer_set_str(w, "general.name", name);
    bad |= gguf_writer_set_u32(w, KEY("context_length"), (uint32_t)s->n_ctx_train);
    bad |= gguf_writer_set_u32(w, KEY("embedding_length"), (uint32_t)s->n_embd);
    bad |= gguf_writer_set_u32(w, KEY("block_count"), (uint32_t)s->n_layer);
    bad |= gguf_writer_set_u32(w, KEY("feed_forward_length"), (uint32_t)s->n_ff);
    bad |= gguf_writer_set_u32(w, KEY("attention.head_count"), (uint32_t)s->n_head);
    bad |= gguf_writer_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)s->n_head_kv);
    bad |= gguf_writer_set_f32(w, KEY("rope.freq_base"), s->rope_theta);
    bad |= gguf_writer_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps);
    if (!strcmp(s->arch, "deepseek2")) {
        bad |= gguf_writer_set_u32(w, KEY("leading_dense_block_count"), (uint32_t)s->n_lead_dense);
        bad |= gguf_writer_set_u32(w, KEY("attention.q_lora_rank"), (uint32_t)s->q_lora_rank);
        bad |= gguf_writer_set_u32(w, KEY("attention.kv_lora_rank"), (uint32_t)s->kv_lora_rank);
        bad |= gguf_writer_set_u32(w, KEY("attention.key_length"),
                                   (uint32_t)(s->qk_nope + s->qk_rope));
        bad |= gguf_writer_set_u32(w, KEY("attention.value_length"), (uint32_t)s->v_head);
        bad |= gguf_writer_set_u32(w, KEY("rope.dimension_count"), (uint32_t)s->qk_rope);
        bad |= gguf_writer_set_u32(w, KEY("expert_count"), (uint32_t)s->n_expert);
        bad |= gguf_writer_set_u32(w, KEY("expert_used_count"), (uint32_t)s->n_expert_used);
        bad |= gguf_writer_set_u32(w, KEY("expert_shared_count"), (uint32_t)s->n_expert_shared);
        bad |= gguf_writer_set_u32(w, KEY("expert_feed_forward_length"), (uint32_t)s->n_ff_exp);
        bad |= gguf_writer_set_f32(w, KEY("expert_weights_scale"), 1.0f);
        bad |= gguf_writer_set_bool(w, KEY("expert_weights_norm"), false);
        bad |= gguf_writer_set_u32(w, KEY("expert_gating_func"), (uint32_t)s->gating);
        bad |= gguf_writer_set_str(w, KEY("rope.scaling.type"), "yarn");
        bad |= gguf_writer_set_f32(w, KEY("rope.scaling.factor"), s->yarn_factor);
        bad |= gguf_writer_set_u32(w, KEY("rope.scaling.original_context_length"),
                                   (uint32_t)s->yarn_orig_ctx);
        bad |= gguf_writer_set_f32(w, KEY("rope.scaling.yarn_log_multiplier"), s->yarn_log_mul);
    }
#undef KEY
    if (bad) return hearth_errf(err, "%s: out of memory for the metadata", s->name);
    if (set_vocab(w, s, err)) return -1;
    static const uint32_t file_type[] = {1, 7, 15}; /* llama_ftype: MOSTLY_F16, Q8_0, Q4_K_M */
    bad |= gguf_writer_set_u32(w, "general.quantization_version", 2);
    bad |= gguf_writer_set_u32(w, "general.file_type", file_type[ft]);
    return bad ? hearth_errf(err, "%s: out of memory for the metadata", s->name) : 0;
}

int bench_shape_write(const bench_shape *s, bench_ftype ft, uint64_t seed, const char *path,
                      int n_threads, hearth_err *err) {
    bench_tensor *t = NULL;
    size_t n = 0;
    if (bench_shape_tensors(s, ft, &t, &n, err)) return -1;
    int rc = -1;
    gguf_writer *w = gguf_writer_new();
    gen_ctx *g = calloc(n, sizeof *g);
    tp_pool *pool = tp_new(n_threads, err);
    float *scratch = NULL;
    int64_t max_row = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].ne[0] > max_row) max_row = t[i].ne[0];
    if (pool) scratch = malloc(sizeof(float) * (size_t)max_row * (size_t)tp_n_threads(pool));
    if (!w || !g || !pool || !scratch) {
        if (pool) hearth_errf(err, "%s: out of memory", path);
        goto done;
    }
    if (set_meta(w, s, ft, err)) goto done;
    uint64_t base = splitmix(&seed);
    for (size_t i = 0; i < n; i++) {
        bool norm = strstr(t[i].name, "norm.weight") != NULL;
        bool bias = strstr(t[i].name, ".bias") != NULL;
        size_t row = 0;
        ht_row_size(t[i].type, t[i].ne[0], &row, NULL);
        g[i] = (gen_ctx){.t = &t[i],
                         .seed = base ^ hash_str(t[i].name),
                         .std = norm   ? 0.0f
                                : bias ? 0.1f
                                       : 1.0f / sqrtf((float)t[i].ne[0]),
                         .row_size = row,
                         .pool = pool,
                         .scratch = scratch,
                         .max_row = max_row};
        if (gguf_writer_add_tensor_gen(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne, gen_rows,
                                       &g[i], err))
            goto done;
    }
    rc = gguf_writer_write(w, path, err);
done:
    gguf_writer_free(w);
    tp_free(pool);
    free(scratch);
    free(g);
    free(t);
    return rc;
}
