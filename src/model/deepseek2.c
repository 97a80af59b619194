/* deepseek2: DeepSeek-V2, V2-Lite, V3 and R1.
 *
 * Two ideas on top of a llama-style block (RMSNorm, residuals, SwiGLU):
 *
 * Multi-head Latent Attention (MLA). Keys and values of all heads are
 * decompressed from one small latent per token,
 *   kv_a   = W_kv_a · x                         [kv_lora_rank + n_rot]
 *   c      = rmsnorm(kv_a[:kv_lora_rank])      the latent       [kv_lora_rank]
 *   k_pe   = rope(kv_a[kv_lora_rank:])         shared by heads  [n_rot]
 *   k_h    = [W_kb,h · c, k_pe]                 v_h = W_vb,h · c
 * so the cache holds only [c, k_pe] per token and layer. Attention runs in
 * the "absorbed" form: with q_h = [q_nope,h, q_pe,h],
 *   q_h · k_h(j) = (W_kb,h^T q_nope,h) · c(j) + q_pe,h · k_pe(j)
 *   out_h = W_vb,h · sum_j p_j c(j)
 * which is multi-query attention of H queries of width kv_lora_rank + n_rot
 * over the cached rows, values being the latent part of the same rows.
 * Queries come from x directly (attn_q) or through a low-rank pair
 * (attn_q_a, rmsnorm, attn_q_b) when attention.q_lora_rank is declared.
 *
 * Files carry W_kb and W_vb either fused as attn_kv_b [H*(nope+v)][kv_lora]
 * (older converters; W_kb^T is then applied by accumulating its rows) or
 * split as attn_k_b [H][kv_lora][nope] (already transposed) and attn_v_b
 * [H][v][kv_lora] (newer converters, with key_length_mla/value_length_mla).
 *
 * RoPE touches only the last n_rot dimensions of each query head and k_pe,
 * pairs (2i, 2i+1), with YaRN: freq_scale = 1/factor, ext_factor 1, ramp
 * over the dimensions between beta_fast 32 and beta_slow 1 rotations in the
 * original context. As in the reference runtime the rotation keeps unit
 * magnitude and the attention scale carries YaRN's correction:
 *   mscale   = 1 + yarn_log_multiplier * ln(factor)
 *   kq_scale = mscale^2 / sqrt(nope + n_rot)
 *
 * Mixture of experts. After leading_dense_block_count dense layers, the FFN is
 * n_used of n_expert routed SwiGLU experts (see deepseek2.h for routing) plus
 * shared experts that every token uses. Expert weights are 3D tensors whose
 * expert e is a contiguous slice; a batch is grouped by expert so that each
 * chosen expert's slice is read once per batch and unchosen ones never. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/deepseek2.h"
#include "model/model_impl.h"

/* Bounds on what a file may declare (model.c bounds the common keys). */
#define DS2_MAX_RANK   (1 << 16) /* q_lora_rank, kv_lora_rank */
#define DS2_MAX_HEAD   (1 << 14) /* per-head key / value width */
#define DS2_MAX_EXPERT (1 << 14)
#define DS2_MAX_FF     (1 << 20)
#define DS2_PI         3.14159265358979323846f

typedef struct ds2_layer {
    const float *attn_norm;   /* [n_embd] */
    const float *q_a_norm;    /* [q_lora_rank] (q-LoRA only) */
    const float *kv_a_norm;   /* [kv_lora_rank] */
    const float *ffn_norm;    /* [n_embd] */
    kern_mat wq;              /* [H*head_k][n_embd] (no q-LoRA) */
    kern_mat wq_a;            /* [q_lora_rank][n_embd] */
    kern_mat wq_b;            /* [H*head_k][q_lora_rank] */
    kern_mat wkv_a;           /* [kv_lora_rank + n_rot][n_embd] */
    kern_mat wkv_b;           /* [H*(nope+head_v)][kv_lora_rank] (fused layout) */
    kern_mat wk_b;            /* [H*kv_lora_rank][nope] (split layout) */
    kern_mat wv_b;            /* [H*head_v][kv_lora_rank] (split layout) */
    kern_mat wo;              /* [n_embd][H*head_v] */
    bool moe;                 /* routed experts (else a dense FFN) */
    kern_mat ffn_gate;        /* dense: [n_ff][n_embd] */
    kern_mat ffn_up;          /* dense: [n_ff][n_embd] */
    kern_mat ffn_down;        /* dense: [n_embd][n_ff] */
    kern_mat gate_inp;        /* router: [n_expert][n_embd] */
    const float *exp_probs_b; /* [n_expert] or NULL */
    kern_mat gate_exps;       /* [n_expert*n_ff_exp][n_embd]: expert e = rows e*n_ff_exp.. */
    kern_mat up_exps;         /* [n_expert*n_ff_exp][n_embd] */
    kern_mat down_exps;       /* [n_expert*n_embd][n_ff_exp] */
    kern_mat gate_shexp;      /* [n_ff_shexp][n_embd] (when shared experts exist) */
    kern_mat up_shexp;        /* [n_ff_shexp][n_embd] */
    kern_mat down_shexp;      /* [n_embd][n_ff_shexp] */
} ds2_layer;

typedef struct ds2_weights {
    int q_lora_rank;  /* 0: queries straight from attn_q */
    int kv_lora_rank; /* latent width */
    int n_rot;        /* rotary part of a key head (qk_rope_head_dim) */
    int n_nope;       /* non-rotary part (qk_nope_head_dim) */
    int head_k;       /* n_nope + n_rot */
    int head_v;       /* value head width (v_head_dim) */
    bool split_kv_b;  /* attn_k_b / attn_v_b instead of attn_kv_b */
    int n_lead_dense; /* leading dense layers */
    int n_ff_exp;     /* routed expert width */
    int n_ff_shexp;   /* all shared experts together; 0 = none */
    ds2_router router;
    kern_rope_params rope;
    float kq_scale;
    kern_mat tok_embd; /* [n_vocab][n_embd] */
    kern_mat output;   /* [n_vocab][n_embd] (token_embd when tied) */
    const float *output_norm;
    ds2_layer *layers;  /* [n_layer] */
    uint64_t exp_bytes; /* routed-expert bytes given to matmuls (tests) */
} ds2_weights;

typedef struct ds2_scratch {
    float *x;     /* [B][n_embd] residual stream */
    float *h;     /* [B][n_embd] normed input of a sub-block */
    float *o;     /* [B][n_embd] output of a sub-block */
    float *qa;    /* [B][q_lora_rank] */
    float *q;     /* [B][H][head_k] */
    float *qm;    /* [B][H][kv_lora_rank + n_rot]: absorbed query, then q_pe */
    float *lat;   /* [B][H][kv_lora_rank]: attention output in latent space */
    float *vo;    /* [B][H][head_v] */
    float *ffg;   /* [B][n_ff_max], or [n_used][n_ff_exp] when larger (decode) */
    float *ffu;   /* the same */
    float *xe;    /* [B][n_embd] tokens routed to one expert, gathered */
    float *ye;    /* [max(B, n_used)][n_embd] that expert's outputs (decode: each chosen one's) */
    float *rl;    /* [B][n_expert] router logits */
    float *wts;   /* [B][n_used] expert weights */
    float *rs;    /* [2*n_expert + n_group] routing scratch */
    float *attn;  /* kern_attention's scratch */
    float *row;   /* [n_threads][n_nope][kv_lora_rank] a head's attn_kv_b rows, dequantized */
    int *ids;     /* [B][n_used] chosen experts */
    int *e_start; /* [n_expert + 1] offsets into e_list */
    int *e_list;  /* [B*n_used] (token * n_used + k), grouped by expert */
    kern_mat *em; /* [3*n_used] decode: the chosen experts' gate, up and down slices */
    kern_mm *emm; /* [2*n_used] decode: their gate and up products */
} ds2_scratch;

/* ---- routing ---------------------------------------------------------- */

int ds2_router_check(const ds2_router *r, hearth_err *err) {
    if (r->n_expert < 1 || r->n_expert > DS2_MAX_EXPERT)
        return hearth_errf(err, "expert_count: expected 1 to %d, found %d", DS2_MAX_EXPERT,
                           r->n_expert);
    if (r->n_used < 1 || r->n_used > r->n_expert)
        return hearth_errf(err, "expert_used_count: expected 1 to expert_count %d, found %d",
                           r->n_expert, r->n_used);
    if (r->gating != DS2_GATING_SOFTMAX && r->gating != DS2_GATING_SIGMOID)
        return hearth_errf(err, "expert_gating_func: expected 1 (softmax) or 2 (sigmoid), found %d",
                           r->gating);
    if (!(isfinite(r->scale) && r->scale > 0))
        return hearth_errf(err, "expert_weights_scale: expected a positive number, found %g",
                           (double)r->scale);
    if (r->n_group > 1) {
        if (r->n_group > r->n_expert || r->n_expert % r->n_group)
            return hearth_errf(err,
                               "expert_group_count: expected a divisor of expert_count %d, "
                               "found %d",
                               r->n_expert, r->n_group);
        int per = r->n_expert / r->n_group;
        if (r->n_group_used < 1 || r->n_group_used > r->n_group ||
            (int64_t)r->n_group_used * per < r->n_used)
            return hearth_errf(err,
                               "expert_group_used_count: expected 1 to %d groups holding at least "
                               "expert_used_count %d experts (%d per group), found %d",
                               r->n_group, r->n_used, per, r->n_group_used);
    }
    return 0;
}

/* Index of the largest v[i] over i < n not yet taken; ties to the lower index. */
static int argmax_masked(const float *v, const unsigned char *taken, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (!taken[i] && (best < 0 || v[i] > v[best])) best = i;
    return best;
}

void ds2_route(const ds2_router *r, const float *logits, const float *bias, int *ids,
               float *weights, float *scratch) {
    const int n = r->n_expert;
    float *score = scratch;      /* [n] */
    float *choice = scratch + n; /* [n] */
    if (r->gating == DS2_GATING_SIGMOID) {
        for (int i = 0; i < n; i++) score[i] = 1.0f / (1.0f + expf(-logits[i]));
    } else {
        memcpy(score, logits, sizeof(float) * (size_t)n);
        kern_softmax(score, n);
    }
    for (int i = 0; i < n; i++) choice[i] = score[i] + (bias ? bias[i] : 0.0f);

    /* taken[i]: expert i is chosen already or its group is out. */
    unsigned char taken[DS2_MAX_EXPERT];
    memset(taken, 0, (size_t)n);
    if (r->n_group > 1 && r->n_group_used < r->n_group) {
        const int per = n / r->n_group;
        float *gscore = scratch + 2 * n; /* [n_group] */
        for (int g = 0; g < r->n_group; g++) {
            const float *cg = choice + (size_t)g * per;
            if (r->gating == DS2_GATING_SIGMOID) { /* V3: sum of the two best */
                int b1 = 0;
                for (int i = 1; i < per; i++)
                    if (cg[i] > cg[b1]) b1 = i;
                int b2 = -1;
                for (int i = 0; i < per; i++)
                    if (i != b1 && (b2 < 0 || cg[i] > cg[b2])) b2 = i;
                gscore[g] = cg[b1] + (b2 >= 0 ? cg[b2] : 0.0f);
            } else { /* V2: the best */
                float mx = cg[0];
                for (int i = 1; i < per; i++)
                    if (cg[i] > mx) mx = cg[i];
                gscore[g] = mx;
            }
        }
        unsigned char gtaken[DS2_MAX_EXPERT];
        memset(gtaken, 0, (size_t)r->n_group);
        for (int k = 0; k < r->n_group_used; k++)
            gtaken[argmax_masked(gscore, gtaken, r->n_group)] = 1;
        /* Experts of groups not chosen are out. */
        for (int i = 0; i < n; i++) taken[i] = !gtaken[i / per];
    }
    for (int k = 0; k < r->n_used; k++) {
        int e = argmax_masked(choice, taken, n);
        taken[e] = 1;
        ids[k] = e;
        weights[k] = score[e];
    }
    if (r->norm) {
        float sum = 0;
        for (int k = 0; k < r->n_used; k++) sum += weights[k];
        if (sum > 0)
            for (int k = 0; k < r->n_used; k++) weights[k] /= sum;
    }
    for (int k = 0; k < r->n_used; k++) weights[k] *= r->scale;
}

uint64_t ds2_expert_bytes_read(const model *m) {
    if (!m || m->arch != &model_arch_deepseek2 || !m->weights) return 0;
    return ((const ds2_weights *)m->weights)->exp_bytes;
}

/* ---- loading ---------------------------------------------------------- */

static int ds2_float(model *m, const char *suffix, float *out, hearth_err *err) {
    char key[128];
    model_key(m, key, suffix);
    if (gguf_opt_f32(m->gf, key, out, err) < 0) return -1;
    if (!isfinite(*out))
        return hearth_errf(err, "%s: expected a finite number, found %g", key, (double)*out);
    return 0;
}

/* A stack of n_mat matrices [n_rows][n_cols] (ne = {n_cols, n_rows, n_mat}),
 * kept as one matrix of n_mat*n_rows rows: matrix i starts at row i*n_rows. */
static int ds2_mat3(model *m, kern_mat *out, const char *name, int64_t n_cols, int64_t n_rows,
                    int64_t n_mat, hearth_err *err) {
    int64_t ne[3] = {n_cols, n_rows, n_mat};
    const gguf_tensor *t = model_tensor(m, name, 3, ne, true, err);
    if (!t) return -1;
    if (kern_mat_init(out, t->type, n_cols, n_rows * n_mat, t->data, err) < 0)
        return hearth_err_prefix(err, "%s", name);
    if ((uint64_t)out->n_rows * out->row_bytes > t->nbytes)
        return hearth_errf(err, "%s: expected %llu bytes of data, found %llu", name,
                           (unsigned long long)((uint64_t)out->n_rows * out->row_bytes),
                           (unsigned long long)t->nbytes);
    return model_register_mat(m, t, t->data, (int)n_mat, err);
}

/* The m-th of the stacked matrices of `all`, each n_rows rows. */
static kern_mat ds2_slice(const kern_mat *all, int64_t n_rows, int64_t i) {
    return kern_mat_rows(all, i * n_rows, n_rows);
}

/* YaRN's ramp ends: the dimension pair that turns n_turns times over the
 * original context (the reference runtime's corr_dim, floored/ceiled). */
static float ds2_corr_dim(int n_rot, int n_ctx_orig, float n_turns, float base) {
    return (float)n_rot * logf((float)n_ctx_orig / (n_turns * 2 * DS2_PI)) / (2 * logf(base));
}

static int ds2_rope(model *m, ds2_weights *w, hearth_err *err) {
    char key[128];
    float factor = 1.0f, log_mul = 0.0f, beta_fast = 32.0f, beta_slow = 1.0f;
    int n_ctx_orig = m->hp.n_ctx_train;
    bool yarn = false, linear = false;
    const char *tkey = model_key(m, key, "rope.scaling.type");
    if (gguf_has(m->gf, tkey)) {
        gguf_str s;
        if (gguf_get_str(m->gf, tkey, &s, err) < 0) return -1;
        if (gguf_str_eq(s, "yarn"))
            yarn = true;
        else if (gguf_str_eq(s, "linear"))
            linear = true;
        else if (!gguf_str_eq(s, "none"))
            return hearth_errf(err, "%s: expected none, linear or yarn, found '%.*s'", tkey,
                               s.len > 32 ? 32 : (int)s.len, s.ptr);
    }
    if (ds2_float(m, "rope.scaling.factor", &factor, err) < 0) return -1;
    if (ds2_float(m, "rope.scaling.yarn_log_multiplier", &log_mul, err) < 0) return -1;
    if (ds2_float(m, "rope.scaling.yarn_beta_fast", &beta_fast, err) < 0) return -1;
    if (ds2_float(m, "rope.scaling.yarn_beta_slow", &beta_slow, err) < 0) return -1;
    if (model_key_int(m, "rope.scaling.original_context_length", &n_ctx_orig, false, 1, 1 << 24,
                      err) < 0)
        return -1;
    if (!yarn && !linear) factor = 1.0f;
    if (!(factor >= 1.0f && factor <= 1e6f))
        return hearth_errf(err, "%s: expected a value in [1, 1e6], found %g",
                           model_key(m, key, "rope.scaling.factor"), (double)factor);
    if (!(beta_fast > 0 && beta_slow > 0))
        return hearth_errf(err, "%s: expected positive YaRN betas, found %g and %g", m->hp.arch,
                           (double)beta_fast, (double)beta_slow);

    kern_rope_params p = kern_rope_default(KERN_ROPE_NORM, w->n_rot, m->hp.rope_theta);
    p.freq_scale = 1.0f / factor;
    if (yarn) {
        p.ext_factor = 1.0f;
        /* The rotation's YaRN magnitude (1 + 0.1 ln factor) is cancelled: the
         * scale goes into kq_scale instead. */
        p.attn_factor = 1.0f / (1.0f + 0.1f * logf(factor));
        float lo = floorf(ds2_corr_dim(w->n_rot, n_ctx_orig, beta_fast, p.freq_base));
        float hi = ceilf(ds2_corr_dim(w->n_rot, n_ctx_orig, beta_slow, p.freq_base));
        p.corr_dims[0] = lo > 0 ? lo : 0;
        p.corr_dims[1] = hi < (float)(w->n_rot - 1) ? hi : (float)(w->n_rot - 1);
    }
    w->rope = p;
    float mscale = 1.0f + log_mul * logf(factor);
    w->kq_scale = mscale * mscale / sqrtf((float)w->head_k);
    return 0;
}

/* The layer's matrices used only through kern_matmul(_n) and whole
 * experts' views: repacked where the kernels gain (attn_kv_b, attn_k_b and
 * attn_v_b are read per head and row, and stay as they are). n_exp: the
 * experts stacked in the *_exps tensors (0: a dense layer). */
static void ds2_layer_repack(model *m, ds2_layer *L, int n_exp) {
    kern_mat *mats[] = {&L->wq_a,       &L->wq_b,     &L->wq,        &L->wkv_a,
                        &L->wo,         &L->ffn_gate, &L->ffn_up,    &L->ffn_down,
                        &L->gate_shexp, &L->up_shexp, &L->down_shexp};
    for (size_t i = 0; i < sizeof(mats) / sizeof(mats[0]); i++)
        if (mats[i]->data) model_repack(m, mats[i], 1);
    if (n_exp > 0) {
        model_repack(m, &L->gate_exps, n_exp);
        model_repack(m, &L->up_exps, n_exp);
        model_repack(m, &L->down_exps, n_exp);
    }
}

static int ds2_layer_load(model *m, ds2_weights *w, int il, hearth_err *err) {
    const model_hparams *hp = &m->hp;
    ds2_layer *L = &w->layers[il];
    const int64_t E = hp->n_embd, H = hp->n_head, kvr = w->kv_lora_rank;
    char n[96];
#define NAME(s) (snprintf(n, sizeof(n), "blk.%d." s, il), n)
    if (model_vec(m, &L->attn_norm, NAME("attn_norm.weight"), E, true, err) < 0) return -1;
    if (w->q_lora_rank) {
        if (model_mat(m, &L->wq_a, NAME("attn_q_a.weight"), E, w->q_lora_rank, true, err) < 0 ||
            model_vec(m, &L->q_a_norm, NAME("attn_q_a_norm.weight"), w->q_lora_rank, true, err) <
                0 ||
            model_mat(m, &L->wq_b, NAME("attn_q_b.weight"), w->q_lora_rank, H * w->head_k, true,
                      err) < 0)
            return -1;
    } else if (model_mat(m, &L->wq, NAME("attn_q.weight"), E, H * w->head_k, true, err) < 0) {
        return -1;
    }
    if (model_mat(m, &L->wkv_a, NAME("attn_kv_a_mqa.weight"), E, kvr + w->n_rot, true, err) < 0 ||
        model_vec(m, &L->kv_a_norm, NAME("attn_kv_a_norm.weight"), kvr, true, err) < 0)
        return -1;
    if (w->split_kv_b) {
        if (ds2_mat3(m, &L->wk_b, NAME("attn_k_b.weight"), w->n_nope, kvr, H, err) < 0 ||
            ds2_mat3(m, &L->wv_b, NAME("attn_v_b.weight"), kvr, w->head_v, H, err) < 0)
            return -1;
    } else if (model_mat(m, &L->wkv_b, NAME("attn_kv_b.weight"), kvr, H * (w->n_nope + w->head_v),
                         true, err) < 0) {
        return -1;
    }
    if (model_mat(m, &L->wo, NAME("attn_output.weight"), H * w->head_v, E, true, err) < 0 ||
        model_vec(m, &L->ffn_norm, NAME("ffn_norm.weight"), E, true, err) < 0)
        return -1;

    L->moe = il >= w->n_lead_dense;
    if (!L->moe) {
        if (model_mat(m, &L->ffn_gate, NAME("ffn_gate.weight"), E, hp->n_ff, true, err) < 0 ||
            model_mat(m, &L->ffn_up, NAME("ffn_up.weight"), E, hp->n_ff, true, err) < 0 ||
            model_mat(m, &L->ffn_down, NAME("ffn_down.weight"), hp->n_ff, E, true, err) < 0)
            return -1;
        ds2_layer_repack(m, L, 0);
        return 0;
    }
    const int64_t nx = w->router.n_expert, ff = w->n_ff_exp;
    if (model_mat(m, &L->gate_inp, NAME("ffn_gate_inp.weight"), E, nx, true, err) < 0 ||
        model_vec(m, &L->exp_probs_b, NAME("exp_probs_b.bias"), nx, false, err) < 0 ||
        ds2_mat3(m, &L->gate_exps, NAME("ffn_gate_exps.weight"), E, ff, nx, err) < 0 ||
        ds2_mat3(m, &L->up_exps, NAME("ffn_up_exps.weight"), E, ff, nx, err) < 0 ||
        ds2_mat3(m, &L->down_exps, NAME("ffn_down_exps.weight"), ff, E, nx, err) < 0)
        return -1;
    if (w->n_ff_shexp) {
        if (model_mat(m, &L->gate_shexp, NAME("ffn_gate_shexp.weight"), E, w->n_ff_shexp, true,
                      err) < 0 ||
            model_mat(m, &L->up_shexp, NAME("ffn_up_shexp.weight"), E, w->n_ff_shexp, true, err) <
                0 ||
            model_mat(m, &L->down_shexp, NAME("ffn_down_shexp.weight"), w->n_ff_shexp, E, true,
                      err) < 0)
            return -1;
    }
#undef NAME
    ds2_layer_repack(m, L, (int)nx);
    return 0;
}

static int ds2_load(model *m, hearth_err *err) {
    model_hparams *hp = &m->hp;
    ds2_weights *w = model_alloc(m, sizeof(*w), err);
    if (!w) return -1;
    m->weights = w;
    char key[128];

    /* Attention shapes. q_lora_rank is optional: its presence, not the layer
     * count, decides between attn_q and the attn_q_a/attn_q_b pair. */
    if (model_key_int(m, "attention.q_lora_rank", &w->q_lora_rank, false, 0, DS2_MAX_RANK, err) <
            0 ||
        model_key_int(m, "attention.kv_lora_rank", &w->kv_lora_rank, true, 1, DS2_MAX_RANK, err) <
            0)
        return -1;
    if (!gguf_has(m->gf, model_key(m, key, "rope.dimension_count")))
        return hearth_errf(err, "%s: required key is missing", key);
    w->n_rot = hp->n_rot;
    /* Newer files declare the latent as one MQA head (key_length =
     * kv_lora_rank + n_rot, value_length = kv_lora_rank) and the per-head
     * widths under the _mla keys. */
    w->head_k = hp->head_dim_k;
    w->head_v = hp->head_dim_v;
    if (gguf_has(m->gf, model_key(m, key, "attention.key_length_mla")) ||
        gguf_has(m->gf, model_key(m, key, "attention.value_length_mla"))) {
        if (model_key_int(m, "attention.key_length_mla", &w->head_k, true, 1, DS2_MAX_HEAD, err) <
                0 ||
            model_key_int(m, "attention.value_length_mla", &w->head_v, true, 1, DS2_MAX_HEAD, err) <
                0)
            return -1;
    }
    if (w->head_k > DS2_MAX_HEAD || w->head_v > DS2_MAX_HEAD)
        return hearth_errf(err, "%s: expected head widths of at most %d, found key %d, value %d",
                           hp->arch, DS2_MAX_HEAD, w->head_k, w->head_v);
    if (w->n_rot < 2 || w->n_rot % 2 || w->n_rot >= w->head_k)
        return hearth_errf(err, "%s: expected an even number in [2, key head width %d), found %d",
                           model_key(m, key, "rope.dimension_count"), w->head_k, w->n_rot);
    w->n_nope = w->head_k - w->n_rot;
    w->split_kv_b = gguf_find_tensor(m->gf, "blk.0.attn_k_b.weight") != NULL;

    /* Feed-forward shapes. */
    if (model_key_int(m, "leading_dense_block_count", &w->n_lead_dense, false, 0, hp->n_layer,
                      err) < 0)
        return -1;
    if (w->n_lead_dense > 0 && hp->n_ff < 1)
        return hearth_errf(err, "%s: required key is missing (%d dense layers)",
                           model_key(m, key, "feed_forward_length"), w->n_lead_dense);
    ds2_router *r = &w->router;
    r->gating = DS2_GATING_SOFTMAX;
    r->scale = 1.0f;
    if (w->n_lead_dense < hp->n_layer) {
        int n_shared = 0;
        if (model_key_int(m, "expert_count", &r->n_expert, true, 1, DS2_MAX_EXPERT, err) < 0 ||
            model_key_int(m, "expert_used_count", &r->n_used, true, 1, DS2_MAX_EXPERT, err) < 0 ||
            model_key_int(m, "expert_shared_count", &n_shared, false, 0, DS2_MAX_EXPERT, err) < 0 ||
            model_key_int(m, "expert_feed_forward_length", &w->n_ff_exp, true, 1, DS2_MAX_FF, err) <
                0 ||
            model_key_int(m, "expert_gating_func", &r->gating, false, 0, 2, err) < 0 ||
            model_key_int(m, "expert_group_count", &r->n_group, false, 0, DS2_MAX_EXPERT, err) <
                0 ||
            model_key_int(m, "expert_group_used_count", &r->n_group_used, false, 0, DS2_MAX_EXPERT,
                          err) < 0 ||
            ds2_float(m, "expert_weights_scale", &r->scale, err) < 0 ||
            gguf_opt_bool(m->gf, model_key(m, key, "expert_weights_norm"), &r->norm, err) < 0)
            return -1;
        if (r->gating == 0) r->gating = DS2_GATING_SOFTMAX; /* "none": V2 files */
        if (r->scale == 0.0f) r->scale = 1.0f;              /* 0 means unset */
        if (ds2_router_check(r, err) < 0) return hearth_err_prefix(err, "%s", hp->arch);
        if (n_shared && w->n_ff_exp > DS2_MAX_FF / n_shared)
            return hearth_errf(err, "%s: %d shared experts of width %d are too wide", hp->arch,
                               n_shared, w->n_ff_exp);
        w->n_ff_shexp = w->n_ff_exp * n_shared;
        if (n_shared && model_key_int(m, "expert_shared_feed_forward_length", &w->n_ff_shexp, false,
                                      1, DS2_MAX_FF, err) < 0)
            return -1;
    }
    if (ds2_rope(m, w, err) < 0) return -1;

    w->layers = model_alloc(m, sizeof(ds2_layer) * (size_t)hp->n_layer, err);
    if (!w->layers) return -1;
    for (int il = 0; il < hp->n_layer; il++)
        if (ds2_layer_load(m, w, il, err) < 0) return -1;

    if (model_mat(m, &w->tok_embd, "token_embd.weight", hp->n_embd, hp->n_vocab, true, err) < 0 ||
        model_vec(m, &w->output_norm, "output_norm.weight", hp->n_embd, true, err) < 0 ||
        model_mat(m, &w->output, "output.weight", hp->n_embd, hp->n_vocab, false, err) < 0)
        return -1;
    if (!w->output.data) {
        hp->tied_embeddings = true;
        w->output = w->tok_embd;
    } else {
        model_repack(m, &w->output, 1);
    }
    /* The cache row of a token: the latent, then the rotated shared key. */
    hp->kv_k_width = w->kv_lora_rank + w->n_rot;
    hp->kv_v_width = 0;
    hp->head_dim_k = w->head_k;
    hp->head_dim_v = w->head_v;
    return 0;
}

/* ---- context ---------------------------------------------------------- */

static void ds2_ctx_free(model_ctx *c) {
    ds2_scratch *s = c->scratch;
    if (!s) return;
    float *fl[] = {s->x,   s->h,  s->o,  s->qa, s->q,   s->qm, s->lat,  s->vo, s->ffg,
                   s->ffu, s->xe, s->ye, s->rl, s->wts, s->rs, s->attn, s->row};
    for (size_t i = 0; i < sizeof(fl) / sizeof(fl[0]); i++) free(fl[i]);
    free(s->ids);
    free(s->e_start);
    free(s->e_list);
    free(s->em);
    free(s->emm);
    free(s);
    c->scratch = NULL;
}

/* a * b floats, or SIZE_MAX (which the allocator refuses) on overflow. */
static size_t mul(size_t a, size_t b) {
    return b && a > SIZE_MAX / b ? SIZE_MAX : a * b;
}

static int *ds2_ints(model_ctx *c, size_t n, hearth_err *err) {
    if (n > SIZE_MAX / sizeof(int)) {
        hearth_errf(err, "buffer of %zu integers overflows", n);
        return NULL;
    }
    int *p = calloc(n ? n : 1, sizeof(int));
    if (!p)
        hearth_errf(err, "out of memory allocating %zu bytes", n * sizeof(int));
    else
        c->bytes += n * sizeof(int);
    return p;
}

/* n zeroed items of `size` bytes counted in c->bytes (n is small: 3 * n_used). */
static void *ds2_alloc(model_ctx *c, size_t n, size_t size, hearth_err *err) {
    void *p = calloc(n ? n : 1, size);
    if (!p)
        hearth_errf(err, "out of memory allocating %zu bytes", n * size);
    else
        c->bytes += n * size;
    return p;
}

static int ds2_ctx_init(model_ctx *c, hearth_err *err) {
    const model_hparams *hp = &c->m->hp;
    const ds2_weights *w = c->m->weights;
    ds2_scratch *s = calloc(1, sizeof(*s));
    if (!s) return hearth_errf(err, "out of memory");
    c->scratch = s;
    const size_t B = (size_t)c->n_batch, E = (size_t)hp->n_embd, H = (size_t)hp->n_head;
    const size_t kvr = (size_t)w->kv_lora_rank, nt = (size_t)tp_n_threads(c->m->pool);
    size_t ff = (size_t)w->n_ff_exp;
    if (w->n_lead_dense > 0 && (size_t)hp->n_ff > ff) ff = (size_t)hp->n_ff;
    if ((size_t)w->n_ff_shexp > ff) ff = (size_t)w->n_ff_shexp;
    const size_t nx = (size_t)w->router.n_expert, nu = (size_t)w->router.n_used;
    /* decode runs every chosen expert of the token in one call */
    size_t ffb = mul(B, ff), nub = B > nu ? B : nu;
    if (mul(nu, (size_t)w->n_ff_exp) > ffb) ffb = mul(nu, (size_t)w->n_ff_exp);
    if (!(s->x = model_ctx_floats(c, mul(B, E), err)) ||
        !(s->h = model_ctx_floats(c, mul(B, E), err)) ||
        !(s->o = model_ctx_floats(c, mul(B, E), err)) ||
        !(s->qa = model_ctx_floats(c, mul(B, (size_t)w->q_lora_rank), err)) ||
        !(s->q = model_ctx_floats(c, mul(B, mul(H, (size_t)w->head_k)), err)) ||
        !(s->qm = model_ctx_floats(c, mul(B, mul(H, kvr + (size_t)w->n_rot)), err)) ||
        !(s->lat = model_ctx_floats(c, mul(B, mul(H, kvr)), err)) ||
        !(s->vo = model_ctx_floats(c, mul(B, mul(H, (size_t)w->head_v)), err)) ||
        !(s->ffg = model_ctx_floats(c, ffb, err)) || !(s->ffu = model_ctx_floats(c, ffb, err)) ||
        !(s->xe = model_ctx_floats(c, mul(B, E), err)) ||
        !(s->ye = model_ctx_floats(c, mul(nub, E), err)) ||
        !(s->rl = model_ctx_floats(c, mul(B, nx), err)) ||
        !(s->wts = model_ctx_floats(c, mul(B, nu), err)) ||
        !(s->rs = model_ctx_floats(c, 3 * nx, err)) ||
        !(s->attn = model_ctx_floats(
              c, kern_attn_scratch_floats((int)nt, c->n_ctx, hp->n_head, (int)kvr, c->n_batch),
              err)) ||
        !(s->row =
              model_ctx_floats(c, mul(nt, mul(w->split_kv_b ? 1 : (size_t)w->n_nope, kvr)), err)) ||
        !(s->ids = ds2_ints(c, mul(B, nu), err)) || !(s->e_start = ds2_ints(c, nx + 1, err)) ||
        !(s->e_list = ds2_ints(c, mul(B, nu), err)) ||
        !(s->em = ds2_alloc(c, 3 * nu, sizeof(kern_mat), err)) ||
        !(s->emm = ds2_alloc(c, 2 * nu, sizeof(kern_mm), err))) {
        ds2_ctx_free(c);
        return -1;
    }
    return 0;
}

/* ---- forward ---------------------------------------------------------- */

/* Per-head products, one task per head (each head's matrices are small, so
 * the heads, not the rows, are spread over the threads). */
typedef struct ds2_heads {
    const ds2_weights *w;
    const ds2_layer *L;
    ds2_scratch *s;
    int n_tok, n_head;
} ds2_heads;

/* qm[t][h][:kvr] = W_kb,h^T q_nope[t][h]: the query in latent space. */
static void ds2_absorb_task(void *ctx, int h, int thread) {
    const ds2_heads *a = ctx;
    const ds2_weights *w = a->w;
    const size_t kvr = (size_t)w->kv_lora_rank, ldq = (size_t)a->n_head * (size_t)w->head_k;
    const size_t ldm = (size_t)a->n_head * (kvr + (size_t)w->n_rot);
    const float *q = a->s->q + (size_t)h * (size_t)w->head_k;
    float *qm = a->s->qm + (size_t)h * (kvr + (size_t)w->n_rot);
    if (w->split_kv_b) { /* attn_k_b is stored transposed: a plain product */
        kern_mat kb = ds2_slice(&a->L->wk_b, (int64_t)kvr, h);
        kern_matmul(NULL, &kb, q, ldq, qm, ldm, a->n_tok);
        return;
    }
    /* attn_kv_b rows h*(nope+v) + d are W_kb,h[d][:]: dequantized once per
     * call, then summed weighted by q_nope[d], in d order (kern_matmul_kn:
     * each element's sum is the same in a batch as alone). */
    float *rows = a->s->row + (size_t)thread * (size_t)w->n_nope * kvr;
    const int64_t base = (int64_t)h * (w->n_nope + w->head_v);
    for (int d = 0; d < w->n_nope; d++)
        kern_get_row(&a->L->wkv_b, base + d, rows + (size_t)d * kvr);
    kern_matmul_kn(q, ldq, rows, kvr, w->n_nope, (int)kvr, qm, ldm, a->n_tok);
}

/* vo[t][h] = W_vb,h · lat[t][h]: values leave latent space after attention. */
static void ds2_expand_task(void *ctx, int h, int thread) {
    (void)thread;
    const ds2_heads *a = ctx;
    const ds2_weights *w = a->w;
    const size_t kvr = (size_t)w->kv_lora_rank, H = (size_t)a->n_head;
    kern_mat vb;
    if (w->split_kv_b) {
        vb = ds2_slice(&a->L->wv_b, w->head_v, h);
    } else { /* rows h*(nope+v) + nope .. + v of attn_kv_b */
        vb = kern_mat_rows(&a->L->wkv_b, (int64_t)h * (w->n_nope + w->head_v) + w->n_nope,
                           w->head_v);
    }
    kern_matmul(NULL, &vb, a->s->lat + (size_t)h * kvr, H * kvr,
                a->s->vo + (size_t)h * (size_t)w->head_v, H * (size_t)w->head_v, a->n_tok);
}

/* s->o = attention of the normed s->h; writes the layer's cache rows. */
static void ds2_attention(model_ctx *c, int il, int n_tok, int pos) {
    const model_hparams *hp = &c->m->hp;
    const ds2_weights *w = c->m->weights;
    const ds2_layer *L = &w->layers[il];
    ds2_scratch *s = c->scratch;
    tp_pool *pool = c->m->pool;
    const int H = hp->n_head, kvr = w->kv_lora_rank, nr = w->n_rot;
    const size_t ldc = (size_t)(kvr + nr), ldq = (size_t)H * (size_t)w->head_k;
    const size_t ldm = (size_t)H * ldc;

    /* Both products of the normed input in one call: the queries (or their
     * low-rank half) and the new cache rows [c, k_pe], computed in place. */
    float *kv = model_k_at(c, il, pos);
    const kern_mm in[2] = {
        w->q_lora_rank ? (kern_mm){&L->wq_a, s->qa, (size_t)w->q_lora_rank} /* [n_tok][q_lora] */
                       : (kern_mm){&L->wq, s->q, ldq},                      /* [n_tok][H][head_k] */
        {&L->wkv_a, kv, ldc},                                               /* [n_tok][kvr + nr] */
    };
    model_matmul_n(c, in, 2, s->h, (size_t)hp->n_embd, n_tok);

    /* Queries [n_tok][H][nope + n_rot]. */
    if (w->q_lora_rank) {
        kern_rmsnorm(s->qa, s->qa, L->q_a_norm, w->q_lora_rank, n_tok, hp->rms_eps);
        model_matmul(c, &L->wq_b, s->qa, (size_t)w->q_lora_rank, s->q, ldq, n_tok);
    }
    kern_rope(&w->rope, s->q + w->n_nope, ldq, n_tok, H, w->head_k, c->pos);

    for (int t = 0; t < n_tok; t++) {
        float *r = kv + (size_t)t * ldc;
        kern_rmsnorm(r, r, L->kv_a_norm, kvr, 1, hp->rms_eps);
    }
    kern_rope(&w->rope, kv + kvr, ldc, n_tok, 1, nr, c->pos);

    /* Absorbed queries [n_tok][H][kvr + n_rot] = [W_kb^T q_nope, q_pe]. */
    ds2_heads hd = {.w = w, .L = L, .s = s, .n_tok = n_tok, .n_head = H};
    if (c->obs && w->split_kv_b) /* each head's attn_k_b reads its q_nope */
        for (int h = 0; h < H; h++) {
            const kern_mat kb = ds2_slice(&L->wk_b, kvr, h);
            model_observe(c, &kb, s->q + (size_t)h * (size_t)w->head_k, ldq, n_tok);
        }
    tp_run(pool, ds2_absorb_task, &hd, H);
    for (int t = 0; t < n_tok; t++)
        for (int h = 0; h < H; h++)
            memcpy(s->qm + (size_t)t * ldm + (size_t)h * ldc + (size_t)kvr,
                   s->q + (size_t)t * ldq + (size_t)h * (size_t)w->head_k + (size_t)w->n_nope,
                   sizeof(float) * (size_t)nr);

    /* Multi-query attention over the cache: keys are whole rows, values the
     * latent part of the same rows. */
    kern_attn a = {
        .n_tok = n_tok,
        .n_kv = pos + n_tok,
        .n_head = H,
        .n_head_kv = 1,
        .head_dim_k = kvr + nr,
        .head_dim_v = kvr,
        .scale = w->kq_scale,
        .pos = c->pos,
        .q = s->qm,
        .ldq = ldm,
        .k = model_k_at(c, il, 0),
        .ldk = ldc,
        .v = model_k_at(c, il, 0),
        .ldv = ldc,
        .out = s->lat,
        .ldo = (size_t)H * (size_t)kvr,
        .scratch = s->attn,
    };
    kern_attention(pool, &a);

    if (c->obs && w->split_kv_b) /* each head's attn_v_b reads its latent output */
        for (int h = 0; h < H; h++) {
            const kern_mat vb = ds2_slice(&L->wv_b, w->head_v, h);
            model_observe(c, &vb, s->lat + (size_t)h * (size_t)kvr, (size_t)H * (size_t)kvr, n_tok);
        }
    tp_run(pool, ds2_expand_task, &hd, H);
    model_matmul(c, &L->wo, s->vo, (size_t)H * (size_t)w->head_v, s->o, (size_t)hp->n_embd, n_tok);
}

/* out[t] = W_down · (silu(W_gate x[t]) * W_up x[t]) for n_tok rows. */
static void ds2_swiglu_ffn(model_ctx *c, const kern_mat *gate, const kern_mat *up,
                           const kern_mat *down, const float *x, float *out, int n_tok,
                           ds2_scratch *s) {
    const size_t n_in = (size_t)gate->n_cols, n_ff = (size_t)gate->n_rows;
    const kern_mm gu[2] = {{gate, s->ffg, n_ff}, {up, s->ffu, n_ff}};
    model_matmul_n(c, gu, 2, x, n_in, n_tok);
    kern_swiglu(s->ffg, s->ffg, s->ffu, (int64_t)(n_ff * (size_t)n_tok));
    model_matmul(c, down, s->ffg, n_ff, out, (size_t)down->n_rows, n_tok);
}

/* Decode: the chosen experts' down products y[k] = D_k a[k], as one set of
 * tasks over the pool (a task is a tile of one expert's rows, computed on
 * the thread that runs it), so the experts share one dispatch and one tail. */
typedef struct ds2_downs {
    const kern_mat *d; /* [nu] the experts' down slices, [n_embd][n_ff_exp] each */
    const float *a;    /* [nu][n_ff_exp] their activations */
    float *y;          /* [nu][n_embd] */
    int64_t rows;      /* rows per task */
    int tiles;         /* tasks per expert */
} ds2_downs;

static void ds2_down_task(void *ctx, int task, int thread) {
    (void)thread;
    const ds2_downs *j = ctx;
    const int k = task / j->tiles;
    const int64_t r0 = (int64_t)(task % j->tiles) * j->rows;
    if (r0 >= j->d[k].n_rows) return;
    const kern_mat m =
        kern_mat_rows(&j->d[k], r0, j->d[k].n_rows - r0 < j->rows ? j->d[k].n_rows - r0 : j->rows);
    const size_t ff = (size_t)m.n_cols, E = (size_t)j->d[k].n_rows;
    kern_matmul(NULL, &m, j->a + (size_t)k * ff, ff, j->y + (size_t)k * E + (size_t)r0, E, 1);
}

/* Decode with at most this many experts per token takes the one-call path. */
#define DS2_DECODE_MAX_USED 64

/* One token: every chosen expert's gate and up in one call (they share the
 * input), the downs in one dispatch, then the weighted sum in ascending
 * expert order, as the grouped path adds them. */
static void ds2_moe_one(model_ctx *c, const ds2_layer *L) {
    ds2_weights *w = c->m->weights;
    ds2_scratch *s = c->scratch;
    const int nu = w->router.n_used;
    const size_t E = (size_t)c->m->hp.n_embd, ff = (size_t)w->n_ff_exp;
    kern_mat *g = s->em, *u = s->em + nu, *d = s->em + 2 * nu;
    for (int k = 0; k < nu; k++) {
        const int e = s->ids[k];
        g[k] = ds2_slice(&L->gate_exps, (int64_t)ff, e);
        u[k] = ds2_slice(&L->up_exps, (int64_t)ff, e);
        d[k] = ds2_slice(&L->down_exps, (int64_t)E, e);
        w->exp_bytes += (uint64_t)g[k].n_rows * g[k].row_bytes +
                        (uint64_t)u[k].n_rows * u[k].row_bytes +
                        (uint64_t)d[k].n_rows * d[k].row_bytes;
        s->emm[2 * k] = (kern_mm){&g[k], s->ffg + (size_t)k * ff, ff};
        s->emm[2 * k + 1] = (kern_mm){&u[k], s->ffu + (size_t)k * ff, ff};
    }
    model_matmul_n(c, s->emm, 2 * nu, s->h, E, 1); /* ffg, ffu: [nu][ff] */
    kern_swiglu(s->ffg, s->ffg, s->ffu, (int64_t)((size_t)nu * ff));
    if (c->obs) /* the downs run as tiles below */
        for (int k = 0; k < nu; k++) model_observe(c, &d[k], s->ffg + (size_t)k * ff, ff, 1);

    const int nt = tp_n_threads(c->m->pool);
    ds2_downs j = {.d = d, .a = s->ffg, .y = s->ye};
    j.tiles = (8 * nt + nu - 1) / nu; /* about 8 tasks per thread */
    if ((int64_t)j.tiles > (int64_t)E) j.tiles = (int)E;
    j.rows = ((int64_t)E + j.tiles - 1) / j.tiles;
    const int align = nu ? kern_mat_row_align(&d[0]) : 1; /* repacked rows: whole groups */
    j.rows = (j.rows + align - 1) / align * align;
    tp_run(c->m->pool, ds2_down_task, &j, nu * j.tiles); /* ye: [nu][E] */

    unsigned char done[DS2_DECODE_MAX_USED] = {0};
    for (int n = 0; n < nu; n++) {
        int k = -1; /* the smallest expert id not yet added */
        for (int i = 0; i < nu; i++)
            if (!done[i] && (k < 0 || s->ids[i] < s->ids[k])) k = i;
        done[k] = 1;
        const float wt = s->wts[k];
        const float *src = s->ye + (size_t)k * E;
        for (size_t i = 0; i < E; i++) s->o[i] += wt * src[i];
    }
}

/* s->o = the MoE FFN of s->h: shared experts plus the routed ones. */
static void ds2_moe(model_ctx *c, int il, int n_tok) {
    const model_hparams *hp = &c->m->hp;
    ds2_weights *w = c->m->weights;
    const ds2_layer *L = &w->layers[il];
    const ds2_router *r = &w->router;
    ds2_scratch *s = c->scratch;
    const size_t E = (size_t)hp->n_embd, fs = (size_t)w->n_ff_shexp;
    const int nx = r->n_expert, nu = r->n_used;

    /* The router and the shared experts' gate and up read the same input. */
    const kern_mm in[3] = {{&L->gate_inp, s->rl, (size_t)nx},
                           {&L->gate_shexp, s->ffg, fs},
                           {&L->up_shexp, s->ffu, fs}};
    model_matmul_n(c, in, fs ? 3 : 1, s->h, E, n_tok);
    if (fs) {
        kern_swiglu(s->ffg, s->ffg, s->ffu, (int64_t)(fs * (size_t)n_tok));
        model_matmul(c, &L->down_shexp, s->ffg, fs, s->o, E, n_tok);
    } else {
        memset(s->o, 0, sizeof(float) * E * (size_t)n_tok);
    }

    /* Route every token. */
    for (int t = 0; t < n_tok; t++)
        ds2_route(r, s->rl + (size_t)t * nx, L->exp_probs_b, s->ids + (size_t)t * nu,
                  s->wts + (size_t)t * nu, s->rs);
    if (n_tok == 1 && nu <= DS2_DECODE_MAX_USED) {
        ds2_moe_one(c, L);
        return;
    }

    /* List the (token, k) pairs by expert. */
    memset(s->e_start, 0, sizeof(int) * (size_t)(nx + 1));
    for (int i = 0; i < n_tok * nu; i++) s->e_start[s->ids[i] + 1]++;
    for (int e = 0; e < nx; e++) s->e_start[e + 1] += s->e_start[e];
    for (int i = 0; i < n_tok * nu; i++) s->e_list[s->e_start[s->ids[i]]++] = i;
    for (int e = nx; e > 0; e--) s->e_start[e] = s->e_start[e - 1]; /* undo the fill's shift */
    s->e_start[0] = 0;

    /* Each chosen expert once, over all its tokens. */
    const int64_t ff = w->n_ff_exp;
    for (int e = 0; e < nx; e++) {
        const int b = s->e_start[e], n = s->e_start[e + 1] - b;
        if (n == 0) continue;
        for (int j = 0; j < n; j++)
            memcpy(s->xe + (size_t)j * E, s->h + (size_t)(s->e_list[b + j] / nu) * E,
                   sizeof(float) * E);
        kern_mat g = ds2_slice(&L->gate_exps, ff, e), u = ds2_slice(&L->up_exps, ff, e);
        kern_mat d = ds2_slice(&L->down_exps, (int64_t)E, e);
        w->exp_bytes += (uint64_t)g.n_rows * g.row_bytes + (uint64_t)u.n_rows * u.row_bytes +
                        (uint64_t)d.n_rows * d.row_bytes;
        ds2_swiglu_ffn(c, &g, &u, &d, s->xe, s->ye, n, s);
        for (int j = 0; j < n; j++) {
            const int i = s->e_list[b + j];
            const float wt = s->wts[i];
            float *dst = s->o + (size_t)(i / nu) * E;
            const float *src = s->ye + (size_t)j * E;
            for (size_t k = 0; k < E; k++) dst[k] += wt * src[k];
        }
    }
}

static int ds2_forward(model_ctx *c, const int32_t *tokens, int n_tok, int pos, float *logits,
                       int logits_mode, hearth_err *err) {
    (void)err;
    const model_hparams *hp = &c->m->hp;
    const ds2_weights *w = c->m->weights;
    ds2_scratch *s = c->scratch;
    const size_t E = (size_t)hp->n_embd;

    for (int t = 0; t < n_tok; t++) kern_get_row(&w->tok_embd, tokens[t], s->x + (size_t)t * E);
    for (int il = 0; il < hp->n_layer; il++) {
        const ds2_layer *L = &w->layers[il];
        kern_rmsnorm(s->h, s->x, L->attn_norm, hp->n_embd, n_tok, hp->rms_eps);
        ds2_attention(c, il, n_tok, pos);
        kern_add(s->x, s->o, (int64_t)(E * (size_t)n_tok));

        kern_rmsnorm(s->h, s->x, L->ffn_norm, hp->n_embd, n_tok, hp->rms_eps);
        if (L->moe)
            ds2_moe(c, il, n_tok);
        else
            ds2_swiglu_ffn(c, &L->ffn_gate, &L->ffn_up, &L->ffn_down, s->h, s->o, n_tok, s);
        kern_add(s->x, s->o, (int64_t)(E * (size_t)n_tok));
    }
    if (logits_mode == MODEL_LOGITS_NONE) return 0;
    const int first = logits_mode == MODEL_LOGITS_ALL ? 0 : n_tok - 1;
    const int n_out = n_tok - first;
    kern_rmsnorm(s->h, s->x + (size_t)first * E, w->output_norm, hp->n_embd, n_out, hp->rms_eps);
    model_matmul(c, &w->output, s->h, E, logits, (size_t)hp->n_vocab, n_out);
    return 0;
}

const model_arch model_arch_deepseek2 = {
    .name = "deepseek2",
    .load = ds2_load,
    .free = NULL, /* everything lives in model_alloc blocks */
    .ctx_init = ds2_ctx_init,
    .ctx_free = ds2_ctx_free,
    .forward = ds2_forward,
};
