/* The llama family: llama (Llama 1-3, Mistral...) and qwen2 (Qwen2/2.5,
 * DeepSeek-R1-Distill-Qwen). Pre-norm decoder blocks:
 *
 *   x = embed(token)
 *   per layer: x += Wo . attention(rope(Wq.n(x) + bq), rope(Wk.n(x) + bk), Wv.n(x) + bv)
 *              x += Wdown . (silu(Wgate.n(x)) * Wup.n(x))          n = rmsnorm * weight
 *   logits = Wout . rmsnorm(x) * output_norm
 *
 * They differ in RoPE pairing (llama: (2i, 2i+1), the GGUF converter permutes
 * Wq/Wk for it; qwen2: (i, i + n_rot/2)) and in qwen2's q/k/v biases, which
 * are loaded whenever present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_impl.h"

typedef struct llama_layer {
    const float *attn_norm;    /* [n_embd] */
    kern_mat wq, wk, wv;       /* [n_head*hd_k][n_embd], [n_kv_k][n_embd], [n_kv_v][n_embd] */
    const float *bq, *bk, *bv; /* optional biases (qwen2) */
    kern_mat wo;               /* [n_embd][n_head*hd_v] */
    const float *ffn_norm;     /* [n_embd] */
    kern_mat w_gate, w_up;     /* [n_ff][n_embd] */
    kern_mat w_down;           /* [n_embd][n_ff] */
} llama_layer;

typedef struct llama_weights {
    kern_mat tok_embd;        /* [n_vocab][n_embd] */
    const float *output_norm; /* [n_embd] */
    kern_mat output;          /* [n_vocab][n_embd]; token_embd when tied */
    const float *rope_freqs;  /* [n_rot/2] or NULL */
    kern_rope_params rope;
    llama_layer *layers; /* [n_layer] */
} llama_weights;

/* Per-context activations for n_batch tokens. */
typedef struct llama_scratch {
    float *x;     /* [n_batch][n_embd]  residual stream */
    float *xb;    /* [n_batch][n_embd]  normed input / sublayer output */
    float *q;     /* [n_batch][n_head*hd_k] */
    float *att;   /* [n_batch][n_head*hd_v] attention output */
    float *hb;    /* [n_batch][n_ff]    gate, then silu(gate)*up */
    float *hb2;   /* [n_batch][n_ff]    up */
    float *score; /* kern_attention's scratch */
} llama_scratch;

static int load_common(model *m, kern_rope_mode mode, hearth_err *err) {
    model_hparams *hp = &m->hp;
    const int64_t E = hp->n_embd, F = hp->n_ff, V = hp->n_vocab;
    const int64_t QD = (int64_t)hp->n_head * hp->head_dim_k;
    const int64_t KD = (int64_t)hp->n_head_kv * hp->head_dim_k;
    const int64_t VD = (int64_t)hp->n_head_kv * hp->head_dim_v;
    const int64_t OD = (int64_t)hp->n_head * hp->head_dim_v;
    if (F < 1) {
        char key[128];
        return hearth_errf(err, "%s: required key is missing",
                           model_key(m, key, "feed_forward_length"));
    }
    hp->kv_k_width = (int)KD;
    hp->kv_v_width = (int)VD;

    llama_weights *w = model_alloc(m, sizeof(*w), err);
    if (!w) return -1;
    m->weights = w;
    w->layers = model_alloc(m, sizeof(llama_layer) * (size_t)hp->n_layer, err);
    if (!w->layers) return -1;

    if (model_mat(m, &w->tok_embd, "token_embd.weight", E, V, true, err) < 0) return -1;
    if (model_vec(m, &w->output_norm, "output_norm.weight", E, true, err) < 0) return -1;
    if (model_mat(m, &w->output, "output.weight", E, V, false, err) < 0) return -1;
    hp->tied_embeddings = w->output.data == NULL;
    if (hp->tied_embeddings) w->output = w->tok_embd;
    if (model_vec(m, &w->rope_freqs, "rope_freqs.weight", hp->n_rot / 2, false, err) < 0) return -1;
    if (w->rope_freqs)
        for (int i = 0; i < hp->n_rot / 2; i++)
            if (!(w->rope_freqs[i] > 0 && w->rope_freqs[i] < 1e30f))
                return hearth_errf(err,
                                   "rope_freqs.weight[%d]: expected a positive factor, "
                                   "found %g",
                                   i, (double)w->rope_freqs[i]);
    w->rope = kern_rope_default(mode, hp->n_rot, hp->rope_theta);
    w->rope.freq_factors = w->rope_freqs;

    for (int l = 0; l < hp->n_layer; l++) {
        llama_layer *L = &w->layers[l];
        char n[96];
#define NAME(s) (snprintf(n, sizeof(n), "blk.%d." s, l), n)
        if (model_vec(m, &L->attn_norm, NAME("attn_norm.weight"), E, true, err) < 0 ||
            model_mat(m, &L->wq, NAME("attn_q.weight"), E, QD, true, err) < 0 ||
            model_mat(m, &L->wk, NAME("attn_k.weight"), E, KD, true, err) < 0 ||
            model_mat(m, &L->wv, NAME("attn_v.weight"), E, VD, true, err) < 0 ||
            model_vec(m, &L->bq, NAME("attn_q.bias"), QD, false, err) < 0 ||
            model_vec(m, &L->bk, NAME("attn_k.bias"), KD, false, err) < 0 ||
            model_vec(m, &L->bv, NAME("attn_v.bias"), VD, false, err) < 0 ||
            model_mat(m, &L->wo, NAME("attn_output.weight"), OD, E, true, err) < 0 ||
            model_vec(m, &L->ffn_norm, NAME("ffn_norm.weight"), E, true, err) < 0 ||
            model_mat(m, &L->w_gate, NAME("ffn_gate.weight"), E, F, true, err) < 0 ||
            model_mat(m, &L->w_up, NAME("ffn_up.weight"), E, F, true, err) < 0 ||
            model_mat(m, &L->w_down, NAME("ffn_down.weight"), F, E, true, err) < 0)
            return -1;
#undef NAME
        /* used only through kern_matmul(_n): repacked where the kernels gain */
        kern_mat *mats[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]); i++) model_repack(m, mats[i], 1);
    }
    if (!hp->tied_embeddings) model_repack(m, &w->output, 1);
    return 0;
}

static int llama_load(model *m, hearth_err *err) {
    return load_common(m, KERN_ROPE_NORM, err);
}

static int qwen2_load(model *m, hearth_err *err) {
    return load_common(m, KERN_ROPE_NEOX, err);
}

static int llama_ctx_init(model_ctx *c, hearth_err *err) {
    const model_hparams *hp = &c->m->hp;
    llama_scratch *s = calloc(1, sizeof(*s));
    if (!s) return hearth_errf(err, "out of memory");
    c->scratch = s;
    size_t B = (size_t)c->n_batch;
    if (!(s->x = model_ctx_floats(c, B * hp->n_embd, err)) ||
        !(s->xb = model_ctx_floats(c, B * hp->n_embd, err)) ||
        !(s->q = model_ctx_floats(c, B * hp->n_head * hp->head_dim_k, err)) ||
        !(s->att = model_ctx_floats(c, B * hp->n_head * hp->head_dim_v, err)) ||
        !(s->hb = model_ctx_floats(c, B * hp->n_ff, err)) ||
        !(s->hb2 = model_ctx_floats(c, B * hp->n_ff, err)) ||
        !(s->score =
              model_ctx_floats(c,
                               kern_attn_scratch_floats(model_n_threads(c->m), c->n_ctx, hp->n_head,
                                                        hp->head_dim_v, c->n_batch),
                               err)))
        return -1;
    return 0;
}

static void llama_ctx_free(model_ctx *c) {
    llama_scratch *s = c->scratch;
    free(s->x);
    free(s->xb);
    free(s->q);
    free(s->att);
    free(s->hb);
    free(s->hb2);
    free(s->score);
    free(s);
    c->scratch = NULL;
}

/* One batch: tokens[0..T) at positions c->pos[0..T) = pos0.. */
static int llama_forward(model_ctx *c, const int32_t *tokens, int T, int pos0, float *logits,
                         int logits_mode, hearth_err *err) {
    model *m = c->m;
    const model_hparams *hp = &m->hp;
    const llama_weights *w = m->weights;
    llama_scratch *s = c->scratch;
    tp_pool *pool = m->pool;
    const int E = hp->n_embd, F = hp->n_ff;
    const int QD = hp->n_head * hp->head_dim_k, OD = hp->n_head * hp->head_dim_v;
    const int KD = hp->kv_k_width, VD = hp->kv_v_width;

    /* x[t] = token_embd[tokens[t]]                                   x: [T][E] */
    for (int t = 0; t < T; t++) kern_get_row(&w->tok_embd, tokens[t], s->x + (size_t)t * E);

    for (int l = 0; l < hp->n_layer; l++) {
        const llama_layer *L = &w->layers[l];
        float *kc = model_k_at(c, l, pos0); /* [T][KD] cache rows of this batch */
        float *vc = model_v_at(c, l, pos0); /* [T][VD] */

        /* --- attention ---------------------------------------------------- */
        kern_rmsnorm(s->xb, s->x, L->attn_norm, E, T, hp->rms_eps); /* xb: [T][E] */
        /* q: [T][QD], k and v straight into the cache: one input, one dispatch */
        const kern_mm qkv[3] = {{&L->wq, s->q, QD}, {&L->wk, kc, KD}, {&L->wv, vc, VD}};
        model_matmul_n(c, qkv, 3, s->xb, E, T);
        if (L->bq) kern_add_bias(s->q, L->bq, QD, T);
        if (L->bk) kern_add_bias(kc, L->bk, KD, T);
        if (L->bv) kern_add_bias(vc, L->bv, VD, T);
        kern_rope(&w->rope, s->q, QD, T, hp->n_head, hp->head_dim_k, c->pos);
        kern_rope(&w->rope, kc, KD, T, hp->n_head_kv, hp->head_dim_k, c->pos);

        /* att[t] = softmax(q[t] . K[0..pos[t]] / sqrt(hd)) . V      att: [T][OD] */
        kern_attn a = {
            .n_tok = T,
            .n_kv = pos0 + T,
            .n_head = hp->n_head,
            .n_head_kv = hp->n_head_kv,
            .head_dim_k = hp->head_dim_k,
            .head_dim_v = hp->head_dim_v,
            .scale = (float)(1.0 / sqrt((double)hp->head_dim_k)),
            .pos = c->pos,
            .q = s->q,
            .ldq = QD,
            .k = model_k_at(c, l, 0),
            .ldk = KD,
            .v = model_v_at(c, l, 0),
            .ldv = VD,
            .out = s->att,
            .ldo = OD,
            .scratch = s->score,
        };
        kern_attention(pool, &a);
        model_matmul(c, &L->wo, s->att, OD, s->xb, E, T); /* xb: [T][E] */
        kern_add(s->x, s->xb, (int64_t)T * E);

        /* --- feed-forward (SwiGLU) ------------------------------------------ */
        kern_rmsnorm(s->xb, s->x, L->ffn_norm, E, T, hp->rms_eps);
        const kern_mm gu[2] = {{&L->w_gate, s->hb, F}, {&L->w_up, s->hb2, F}}; /* [T][F] each */
        model_matmul_n(c, gu, 2, s->xb, E, T);
        kern_swiglu(s->hb, s->hb, s->hb2, (int64_t)T * F);
        model_matmul(c, &L->w_down, s->hb, F, s->xb, E, T); /* xb:  [T][E] */
        kern_add(s->x, s->xb, (int64_t)T * E);
    }

    /* --- output: only the rows asked for --------------------------------------- */
    if (logits_mode == MODEL_LOGITS_NONE) return 0;
    int first = logits_mode == MODEL_LOGITS_LAST ? T - 1 : 0, n = T - first;
    float *xr = s->x + (size_t)first * E;
    kern_rmsnorm(xr, xr, w->output_norm, E, n, hp->rms_eps);
    model_matmul(c, &w->output, xr, E, logits, (size_t)hp->n_vocab, n); /* [n][n_vocab] */
    (void)err;
    return 0;
}

const model_arch model_arch_llama = {
    .name = "llama",
    .load = llama_load,
    .ctx_init = llama_ctx_init,
    .ctx_free = llama_ctx_free,
    .forward = llama_forward,
};

const model_arch model_arch_qwen2 = {
    .name = "qwen2",
    .load = qwen2_load,
    .ctx_init = llama_ctx_init,
    .ctx_free = llama_ctx_free,
    .forward = llama_forward,
};
