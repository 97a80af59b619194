/* gen_crafted DIR: writes hostile GGUF files, one per known attack on GGUF
 * loaders, into DIR, and DIR/manifest.tsv listing them (see run_crafted.c).
 *
 * Every file is derived from one small valid model, written here byte by
 * byte (not with hearth's writer, so any field can be wrong): a llama with
 * n_embd 32, one layer, 2 heads (1 KV head), n_ff 64, and a SentencePiece
 * vocabulary of 272 tokens (3 specials, 256 byte tokens, 13 pieces).
 *
 * Manifest line: name \t inspect \t run \t pattern \t description, where
 * inspect/run are "ok" (exit 0), "fail" (exit 1) or "any" (0 or 1), and
 * pattern lists '|'-separated substrings, one of which the stderr of every
 * failing command must contain (case-insensitive): the message names the
 * problem. Never a signal, in every case. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf/gguf.h" /* GGUF_MAX_KV */

/* ---- byte buffer ----------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void die(const char *what) {
    fprintf(stderr, "gen_crafted: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void put(buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_u32(buf *b, uint32_t v) {
    put(b, &v, 4);
}
static void put_u64(buf *b, uint64_t v) {
    put(b, &v, 8);
}
static void put_str(buf *b, const char *s) {
    put_u64(b, strlen(s));
    put(b, s, strlen(s));
}
static void put_zero(buf *b, size_t n) {
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? n : sizeof z;
        put(b, z, k);
        n -= k;
    }
}

/* ---- field marks (for the truncation cases) --------------------------- */

#define MAX_MARKS 4096
typedef struct mark {
    size_t off;
    const char *label;
} mark;
static mark marks[MAX_MARKS];
static int n_marks;
static bool recording;

static void mark_at(const buf *b, const char *label) {
    if (recording && n_marks < MAX_MARKS) marks[n_marks++] = (mark){b->n, label};
}

/* ---- model description ------------------------------------------------ */

enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8 };

typedef struct kv {
    char key[96];
    uint32_t type;
    buf val; /* the value bytes exactly as in the file */
} kv;

typedef struct tensor {
    char name[96];
    uint32_t n_dims;
    int64_t ne[4];
    uint32_t type;
    bool offset_set;
    uint64_t offset;
    buf data;
} tensor;

#define MAX_KV 64
#define MAX_T  64
typedef struct spec {
    uint32_t version;
    bool n_kv_set, n_t_set;
    uint64_t n_kv, n_t;
    int nkv, nt;
    kv kvs[MAX_KV];
    tensor ts[MAX_T];
    uint32_t alignment; /* for laying out the data (the key may say otherwise) */
} spec;

static void spec_free(spec *s) {
    for (int i = 0; i < s->nkv; i++) free(s->kvs[i].val.p);
    for (int i = 0; i < s->nt; i++) free(s->ts[i].data.p);
}

static kv *add_kv(spec *s, const char *key, uint32_t type) {
    if (s->nkv == MAX_KV) die("too many keys");
    kv *k = &s->kvs[s->nkv++];
    memset(k, 0, sizeof *k);
    snprintf(k->key, sizeof k->key, "%s", key);
    k->type = type;
    return k;
}
static kv *find_kv(spec *s, const char *key) {
    for (int i = 0; i < s->nkv; i++)
        if (!strcmp(s->kvs[i].key, key)) return &s->kvs[i];
    fprintf(stderr, "gen_crafted: no key %s\n", key);
    exit(1);
}
static void kv_u32(spec *s, const char *key, uint32_t v) {
    put_u32(&add_kv(s, key, 4)->val, v);
}
static void kv_f32(spec *s, const char *key, float v) {
    put(&add_kv(s, key, 6)->val, &v, 4);
}
static void kv_bool(spec *s, const char *key, bool v) {
    uint8_t b = v;
    put(&add_kv(s, key, 7)->val, &b, 1);
}
static void kv_str(spec *s, const char *key, const char *v) {
    put_str(&add_kv(s, key, 8)->val, v);
}

static tensor *find_t(spec *s, const char *name) {
    for (int i = 0; i < s->nt; i++)
        if (!strcmp(s->ts[i].name, name)) return &s->ts[i];
    fprintf(stderr, "gen_crafted: no tensor %s\n", name);
    exit(1);
}

/* ---- deterministic weights --------------------------------------------- */

static uint32_t rng = 12345;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return ((float)(rng & 0xffff) / 65535.0f - 0.5f) * 0.2f;
}

static uint16_t f32_to_f16(float f) { /* normal small values, enough here */
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff) - 127 + 15;
    uint32_t man = (u >> 13) & 0x3ff;
    if (exp <= 0) return (uint16_t)sign;
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    return (uint16_t)(sign | (uint32_t)exp << 10 | man);
}

/* Fills t with n = ne0*ne1 values of `type` (norm weights: 1.0). */
static void fill(tensor *t, bool norm) {
    int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
    t->data.n = 0;
    if (t->type == T_F32) {
        for (int64_t i = 0; i < n; i++) {
            float v = norm ? 1.0f : frand();
            put(&t->data, &v, 4);
        }
    } else if (t->type == T_F16) {
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = f32_to_f16(norm ? 1.0f : frand());
            put(&t->data, &h, 2);
        }
    } else if (t->type == T_Q8_0) { /* blocks of 32: f16 scale, 32 x int8 */
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t d = f32_to_f16(0.1f / 127);
            put(&t->data, &d, 2);
            for (int i = 0; i < 32; i++) {
                int8_t q = (int8_t)(frand() * 1270);
                put(&t->data, &q, 1);
            }
        }
    } else if (t->type == T_Q4_0) { /* blocks of 32: f16 scale, 16 bytes of nibbles */
        for (int64_t b = 0; b < n / 32; b++) {
            uint16_t d = f32_to_f16(0.1f / 8);
            put(&t->data, &d, 2);
            for (int i = 0; i < 16; i++) {
                uint8_t q = (uint8_t)((rng = rng * 1103515245u + 12345u) >> 16);
                put(&t->data, &q, 1);
            }
        }
    }
}

static tensor *add_t(spec *s, const char *name, int n_dims, int64_t ne0, int64_t ne1, uint32_t type,
                     bool norm) {
    if (s->nt == MAX_T) die("too many tensors");
    tensor *t = &s->ts[s->nt++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = (uint32_t)n_dims;
    t->ne[0] = ne0;
    t->ne[1] = n_dims > 1 ? ne1 : 1;
    t->ne[2] = t->ne[3] = 1;
    t->type = type;
    fill(t, norm);
    return t;
}

/* A stack of ne2 matrices [ne1][ne0]. */
static tensor *add_t3(spec *s, const char *name, int64_t ne0, int64_t ne1, int64_t ne2,
                      uint32_t type) {
    tensor *t = add_t(s, name, 2, ne0, ne1, type, false);
    t->n_dims = 3;
    t->ne[2] = ne2;
    fill(t, false);
    return t;
}

static void del_kv(spec *s, const char *key) {
    kv *k = find_kv(s, key);
    free(k->val.p);
    int i = (int)(k - s->kvs);
    memmove(&s->kvs[i], &s->kvs[i + 1], sizeof(kv) * (size_t)(s->nkv - i - 1));
    s->nkv--;
}

/* Changes a tensor's type and refills it. */
static void retype(spec *s, const char *name, uint32_t type) {
    tensor *t = find_t(s, name);
    t->type = type;
    fill(t, false);
}

#define N_EMBD 32
#define N_FF   64

/* Variants of the base model: vocabulary and the type of the matrices. */
enum { VOCAB_SPM = 0, VOCAB_SPM_SMALL, VOCAB_BPE_SMALL };
static int g_vocab = VOCAB_SPM;
static uint32_t g_wtype = T_F32;

static void vocab_arrays(spec *s, int n, const char *(*text)(int, char *, int32_t *, float *)) {
    kv *tk = add_kv(s, "tokenizer.ggml.tokens", 9);
    kv *sc = add_kv(s, "tokenizer.ggml.scores", 9);
    kv *ty = add_kv(s, "tokenizer.ggml.token_type", 9);
    put_u32(&tk->val, 8);
    put_u64(&tk->val, (uint64_t)n);
    put_u32(&sc->val, 6);
    put_u64(&sc->val, (uint64_t)n);
    put_u32(&ty->val, 5);
    put_u64(&ty->val, (uint64_t)n);
    for (int i = 0; i < n; i++) {
        char buf[32];
        int32_t type = 1;
        float score = 0;
        put_str(&tk->val, text(i, buf, &type, &score));
        put(&sc->val, &score, 4);
        put(&ty->val, &type, 4);
    }
}

#define SP "\xe2\x96\x81" /* U+2581, SentencePiece's space */
static const char *spm_pieces[] = {SP,   "h",     "i",  "e",  "l",        "o", SP "h",
                                   "hi", SP "hi", "he", "ll", SP "hello", "lo"};

/* <unk> <s> </s>, <0x00>..<0xFF> (byte fallback), then pieces. */
static const char *spm_text(int i, char *buf, int32_t *type, float *score) {
    if (i < 3) {
        *type = i == 0 ? 2 : 3;
        return i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>";
    }
    if (i < 259) {
        *type = 6;
        snprintf(buf, 32, "<0x%02X>", i - 3);
        return buf;
    }
    *score = -(float)(i - 259);
    return spm_pieces[i - 259];
}

/* <unk> <s> </s>, then pieces: no byte fallback (unknown text is <unk>). */
static const char *spm_small_text(int i, char *buf, int32_t *type, float *score) {
    if (i < 3) return spm_text(i, buf, type, score);
    *score = -(float)(i - 3);
    return spm_pieces[i - 3];
}

/* Byte-level BPE: the printable ASCII bytes, "Ġ" (space), merges, EOS. */
static const char *bpe_text(int i, char *buf, int32_t *type, float *score) {
    (void)score;
    if (i < 94) {
        buf[0] = (char)('!' + i);
        buf[1] = 0;
        return buf;
    }
    static const char *rest[] = {"\xc4\xa0", "hi", "\xc4\xa0h", "\xc4\xa0hi", "<|endoftext|>"};
    if (i == 98) *type = 3;
    return rest[i - 94];
}

static int n_vocab_of(int vocab) {
    return vocab == VOCAB_SPM ? 272 : vocab == VOCAB_SPM_SMALL ? 16 : 99;
}

/* The valid base model. */
static void base_model(spec *s) {
    memset(s, 0, sizeof *s);
    rng = 12345;
    s->version = 3;
    s->alignment = 32;
    kv_str(s, "general.architecture", "llama");
    kv_str(s, "general.name", "crafted tiny llama");
    kv_u32(s, "general.alignment", 32);
    kv_u32(s, "llama.context_length", 64);
    kv_u32(s, "llama.embedding_length", N_EMBD);
    kv_u32(s, "llama.block_count", 1);
    kv_u32(s, "llama.feed_forward_length", N_FF);
    kv_u32(s, "llama.attention.head_count", 2);
    kv_u32(s, "llama.attention.head_count_kv", 1);
    kv_u32(s, "llama.rope.dimension_count", 16);
    kv_f32(s, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_f32(s, "llama.rope.freq_base", 10000.0f);
    int n_vocab = n_vocab_of(g_vocab);
    if (g_vocab == VOCAB_BPE_SMALL) {
        kv_str(s, "tokenizer.ggml.model", "gpt2");
        kv_str(s, "tokenizer.ggml.pre", "default");
        vocab_arrays(s, n_vocab, bpe_text);
        kv *mg = add_kv(s, "tokenizer.ggml.merges", 9);
        put_u32(&mg->val, 8);
        put_u64(&mg->val, 3);
        put_str(&mg->val, "h i");
        put_str(&mg->val, "\xc4\xa0 h");
        put_str(&mg->val, "\xc4\xa0h i");
        kv_u32(s, "tokenizer.ggml.bos_token_id", 98);
        kv_u32(s, "tokenizer.ggml.eos_token_id", 98);
    } else {
        kv_str(s, "tokenizer.ggml.model", "llama");
        vocab_arrays(s, n_vocab, g_vocab == VOCAB_SPM ? spm_text : spm_small_text);
        kv_u32(s, "tokenizer.ggml.bos_token_id", 1);
        kv_u32(s, "tokenizer.ggml.eos_token_id", 2);
        kv_u32(s, "tokenizer.ggml.unknown_token_id", 0);
        kv_bool(s, "tokenizer.ggml.add_bos_token", true);
    }
    kv_str(s, "tokenizer.chat_template",
           "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
           "{% if add_generation_prompt %}<|assistant|>{% endif %}");

    const uint32_t W = g_wtype;
    add_t(s, "token_embd.weight", 2, N_EMBD, n_vocab, W, false);
    add_t(s, "output_norm.weight", 1, N_EMBD, 1, T_F32, true);
    add_t(s, "blk.0.attn_norm.weight", 1, N_EMBD, 1, T_F32, true);
    add_t(s, "blk.0.attn_q.weight", 2, N_EMBD, 32, W, false);
    add_t(s, "blk.0.attn_k.weight", 2, N_EMBD, 16, W, false);
    add_t(s, "blk.0.attn_v.weight", 2, N_EMBD, 16, W, false);
    add_t(s, "blk.0.attn_output.weight", 2, 32, N_EMBD, W, false);
    add_t(s, "blk.0.ffn_norm.weight", 1, N_EMBD, 1, T_F32, true);
    add_t(s, "blk.0.ffn_gate.weight", 2, N_EMBD, N_FF, W, false);
    add_t(s, "blk.0.ffn_up.weight", 2, N_EMBD, N_FF, W, false);
    add_t(s, "blk.0.ffn_down.weight", 2, N_FF, N_EMBD, W, false);
}

/* A tiny deepseek2 (MLA with q-LoRA, YaRN, 1 dense layer + 1 MoE layer of 4
 * routed experts, 2 used, sigmoid gating with exp_probs_b, 1 shared expert),
 * matrices in F16, 16-token SPM vocabulary. */
static void ds2_model(spec *s) {
    memset(s, 0, sizeof *s);
    rng = 777;
    s->version = 3;
    s->alignment = 32;
    const int E = 32, H = 2, QR = 16, KVR = 16, HK = 24, ROT = 8, HV = 16, FF = 64, FFX = 16,
              NX = 4, V = 16;
    kv_str(s, "general.architecture", "deepseek2");
    kv_u32(s, "deepseek2.context_length", 64);
    kv_u32(s, "deepseek2.embedding_length", (uint32_t)E);
    kv_u32(s, "deepseek2.block_count", 2);
    kv_u32(s, "deepseek2.feed_forward_length", (uint32_t)FF);
    kv_u32(s, "deepseek2.attention.head_count", (uint32_t)H);
    kv_u32(s, "deepseek2.attention.head_count_kv", (uint32_t)H);
    kv_u32(s, "deepseek2.attention.key_length", (uint32_t)HK);
    kv_u32(s, "deepseek2.attention.value_length", (uint32_t)HV);
    kv_u32(s, "deepseek2.rope.dimension_count", (uint32_t)ROT);
    kv_f32(s, "deepseek2.attention.layer_norm_rms_epsilon", 1e-6f);
    kv_f32(s, "deepseek2.rope.freq_base", 10000.0f);
    kv_u32(s, "deepseek2.attention.q_lora_rank", (uint32_t)QR);
    kv_u32(s, "deepseek2.attention.kv_lora_rank", (uint32_t)KVR);
    kv_u32(s, "deepseek2.leading_dense_block_count", 1);
    kv_u32(s, "deepseek2.expert_count", (uint32_t)NX);
    kv_u32(s, "deepseek2.expert_used_count", 2);
    kv_u32(s, "deepseek2.expert_shared_count", 1);
    kv_u32(s, "deepseek2.expert_feed_forward_length", (uint32_t)FFX);
    kv_u32(s, "deepseek2.expert_gating_func", 2);
    kv_f32(s, "deepseek2.expert_weights_scale", 2.5f);
    kv_bool(s, "deepseek2.expert_weights_norm", true);
    kv_str(s, "deepseek2.rope.scaling.type", "yarn");
    kv_f32(s, "deepseek2.rope.scaling.factor", 4.0f);
    kv_u32(s, "deepseek2.rope.scaling.original_context_length", 16);
    kv_f32(s, "deepseek2.rope.scaling.yarn_log_multiplier", 0.1f);
    kv_str(s, "tokenizer.ggml.model", "llama");
    vocab_arrays(s, V, spm_small_text);
    kv_u32(s, "tokenizer.ggml.bos_token_id", 1);
    kv_u32(s, "tokenizer.ggml.eos_token_id", 2);
    const uint32_t W = T_F16;
    add_t(s, "token_embd.weight", 2, E, V, W, false);
    add_t(s, "output_norm.weight", 1, E, 1, T_F32, true);
    add_t(s, "output.weight", 2, E, V, W, false);
    for (int il = 0; il < 2; il++) {
        char n[96];
#define NM(x) (snprintf(n, sizeof n, "blk.%d." x, il), n)
        add_t(s, NM("attn_norm.weight"), 1, E, 1, T_F32, true);
        add_t(s, NM("attn_q_a.weight"), 2, E, QR, W, false);
        add_t(s, NM("attn_q_a_norm.weight"), 1, QR, 1, T_F32, true);
        add_t(s, NM("attn_q_b.weight"), 2, QR, H * HK, W, false);
        add_t(s, NM("attn_kv_a_mqa.weight"), 2, E, KVR + ROT, W, false);
        add_t(s, NM("attn_kv_a_norm.weight"), 1, KVR, 1, T_F32, true);
        add_t(s, NM("attn_kv_b.weight"), 2, KVR, H * (HK - ROT + HV), W, false);
        add_t(s, NM("attn_output.weight"), 2, H * HV, E, W, false);
        add_t(s, NM("ffn_norm.weight"), 1, E, 1, T_F32, true);
        if (il == 0) {
            add_t(s, NM("ffn_gate.weight"), 2, E, FF, W, false);
            add_t(s, NM("ffn_up.weight"), 2, E, FF, W, false);
            add_t(s, NM("ffn_down.weight"), 2, FF, E, W, false);
        } else {
            add_t(s, NM("ffn_gate_inp.weight"), 2, E, NX, T_F32, false);
            add_t(s, NM("exp_probs_b.bias"), 1, NX, 1, T_F32, false);
            add_t3(s, NM("ffn_gate_exps.weight"), E, FFX, NX, W);
            add_t3(s, NM("ffn_up_exps.weight"), E, FFX, NX, W);
            add_t3(s, NM("ffn_down_exps.weight"), FFX, E, NX, W);
            add_t(s, NM("ffn_gate_shexp.weight"), 2, E, FFX, W, false);
            add_t(s, NM("ffn_up_shexp.weight"), 2, E, FFX, W, false);
            add_t(s, NM("ffn_down_shexp.weight"), 2, FFX, E, W, false);
        }
#undef NM
    }
}

static void set_u32(spec *s, const char *key, uint32_t v) {
    kv *k = find_kv(s, key);
    k->type = 4;
    k->val.n = 0;
    put_u32(&k->val, v);
}

static void set_f32(spec *s, const char *key, float v) {
    kv *k = find_kv(s, key);
    k->type = 6;
    k->val.n = 0;
    put(&k->val, &v, 4);
}

/* Serializes s (recording field marks when `recording`). */
static void serialize(const spec *s, buf *b) {
    b->n = 0;
    mark_at(b, "magic");
    put(b, "GGUF", 4);
    mark_at(b, "version");
    put_u32(b, s->version);
    mark_at(b, "tensor count");
    put_u64(b, s->n_t_set ? s->n_t : (uint64_t)s->nt);
    mark_at(b, "metadata count");
    put_u64(b, s->n_kv_set ? s->n_kv : (uint64_t)s->nkv);
    for (int i = 0; i < s->nkv; i++) {
        const kv *k = &s->kvs[i];
        mark_at(b, "key length");
        put_u64(b, strlen(k->key));
        mark_at(b, "key bytes");
        put(b, k->key, strlen(k->key));
        mark_at(b, "value type");
        put_u32(b, k->type);
        if (k->type == 9 && k->val.n >= 12) {
            uint32_t et;
            memcpy(&et, k->val.p, 4);
            mark_at(b, "array element type");
            put(b, k->val.p, 4);
            mark_at(b, "array count");
            put(b, k->val.p + 4, 8);
            size_t at = 12;
            if (et == 8) { /* marks for the first two strings only */
                for (int e = 0; e < 2 && at + 8 <= k->val.n; e++) {
                    uint64_t l;
                    memcpy(&l, k->val.p + at, 8);
                    mark_at(b, "array string length");
                    put(b, k->val.p + at, 8);
                    mark_at(b, "array string bytes");
                    put(b, k->val.p + at + 8, l);
                    at += 8 + l;
                }
            } else {
                mark_at(b, "array elements");
            }
            put(b, k->val.p + at, k->val.n - at);
        } else if (k->type == 8) {
            mark_at(b, "string value length");
            put(b, k->val.p, 8);
            mark_at(b, "string value bytes");
            put(b, k->val.p + 8, k->val.n - 8);
        } else {
            mark_at(b, "scalar value");
            put(b, k->val.p, k->val.n);
        }
    }
    /* Tensor offsets: in order, each aligned, unless set. */
    uint64_t a = s->alignment, off = 0, end = 0;
    uint64_t offs[MAX_T];
    for (int i = 0; i < s->nt; i++) {
        offs[i] = s->ts[i].offset_set ? s->ts[i].offset : off;
        off = (off + s->ts[i].data.n + a - 1) / a * a;
    }
    end = off;
    for (int i = 0; i < s->nt; i++) {
        const tensor *t = &s->ts[i];
        mark_at(b, "tensor name length");
        put_u64(b, strlen(t->name));
        mark_at(b, "tensor name bytes");
        put(b, t->name, strlen(t->name));
        mark_at(b, "tensor n_dims");
        put_u32(b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims && d < 8; d++) {
            mark_at(b, "tensor dim");
            put_u64(b, (uint64_t)t->ne[d < 4 ? d : 3]);
        }
        mark_at(b, "tensor type");
        put_u32(b, t->type);
        mark_at(b, "tensor offset");
        put_u64(b, offs[i]);
    }
    mark_at(b, "alignment padding");
    put_zero(b, (a - b->n % a) % a);
    size_t data_start = b->n;
    mark_at(b, "tensor data");
    put_zero(b, end);
    for (int i = 0; i < s->nt; i++) {
        const tensor *t = &s->ts[i];
        if (!t->offset_set) memcpy(b->p + data_start + offs[i], t->data.p, t->data.n);
    }
    if (recording && s->nt) { /* a mark inside the last tensor's data */
        const tensor *t = &s->ts[s->nt - 1];
        if (n_marks < MAX_MARKS)
            marks[n_marks++] = (mark){data_start + offs[s->nt - 1] + t->data.n / 2, "tensor data"};
    }
}

/* ---- output ------------------------------------------------------------ */

static const char *out_dir;
static FILE *manifest;
static int n_cases;

/* A GGUF of n metadata entries of 18 bytes each (5-letter keys, u8 values)
 * and no tensors. */
static buf tiny_keys(uint64_t n) {
    buf b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, 3);
    put_u64(&b, 0);
    put_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        char key[5];
        for (int c = 0, d = 1; c < 5; c++, d *= 26) key[c] = (char)('A' + i / (uint64_t)d % 26);
        put_u64(&b, 5);
        put(&b, key, 5);
        put_u32(&b, 0);
        uint8_t z = (uint8_t)i;
        put(&b, &z, 1);
    }
    return b;
}

static void emit_bytes(const char *name, const void *d, size_t n, const char *inspect,
                       const char *run, const char *pattern, const char *fmt, ...) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.gguf", out_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) die(path);
    if (n && fwrite(d, 1, n, f) != n) die(path);
    if (fclose(f)) die(path);
    char desc[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(desc, sizeof desc, fmt, ap);
    va_end(ap);
    fprintf(manifest, "%s\t%s\t%s\t%s\t%s\n", name, inspect, run, pattern, desc);
    n_cases++;
}

static void emit(const char *name, const spec *s, const char *inspect, const char *run,
                 const char *pattern, const char *desc) {
    buf b = {0};
    serialize(s, &b);
    emit_bytes(name, b.p, b.n, inspect, run, pattern, "%s", desc);
    free(b.p);
}

/* Patches 8 bytes at the position of the k-th mark labelled `label` in the
 * serialization of s and emits the result. */
static void emit_patched(const char *name, const spec *s, const char *label, int k,
                         size_t extra_off, uint64_t value, int width, const char *inspect,
                         const char *run, const char *pattern, const char *desc) {
    buf b = {0};
    n_marks = 0;
    recording = true;
    serialize(s, &b);
    recording = false;
    int seen = 0;
    for (int i = 0; i < n_marks; i++) {
        if (strcmp(marks[i].label, label)) continue;
        if (seen++ != k) continue;
        memcpy(b.p + marks[i].off + extra_off, &value, (size_t)width);
        emit_bytes(name, b.p, b.n, inspect, run, pattern, "%s", desc);
        free(b.p);
        return;
    }
    fprintf(stderr, "gen_crafted: no mark '%s' #%d\n", label, k);
    exit(1);
}

#define TRUNC_MSG "end of the file|past the end|too short|cannot fit|data section"
#define COUNT_MSG "cannot fit|past the end|end of the file"

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_crafted DIR\n");
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    char mpath[4096];
    snprintf(mpath, sizeof mpath, "%s/manifest.tsv", out_dir);
    manifest = fopen(mpath, "w");
    if (!manifest) die(mpath);

    spec s;
    base_model(&s);
    emit("valid", &s, "ok", "ok", "", "the valid base model (control: both commands succeed)");
    {
        typedef struct variant {
            const char *name;
            int vocab;
            uint32_t wtype;
            const char *desc;
        } variant;
        static const variant va[] = {
            {"valid_q8_0", VOCAB_SPM, T_Q8_0, "valid, matrices in Q8_0"},
            {"valid_q4_0", VOCAB_SPM, T_Q4_0, "valid, matrices in Q4_0"},
            {"valid_f16", VOCAB_SPM, T_F16, "valid, matrices in F16"},
            {"valid_spm_small", VOCAB_SPM_SMALL, T_Q8_0, "valid, 16-token SPM vocabulary, Q8_0"},
            {"valid_bpe_small", VOCAB_BPE_SMALL, T_Q8_0, "valid, 99-token BPE vocabulary, Q8_0"},
        };
        for (size_t i = 0; i < sizeof va / sizeof va[0]; i++) {
            spec v;
            g_vocab = va[i].vocab;
            g_wtype = va[i].wtype;
            base_model(&v);
            emit(va[i].name, &v, "ok", "ok", "", va[i].desc);
            spec_free(&v);
        }
        g_vocab = VOCAB_SPM;
        g_wtype = T_F32;
        /* Every metadata value type, scalar and array (no tensors). */
        spec v;
        memset(&v, 0, sizeof v);
        v.version = 3;
        v.alignment = 32;
        static const uint8_t val[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
        static const uint32_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        for (uint32_t t = 0; t < 13; t++) {
            char key[32];
            if (t == 8) {
                kv_str(&v, "t.string", "a string \xe2\x96\x81");
                kv *a = add_kv(&v, "t.array.string", 9);
                put_u32(&a->val, 8);
                put_u64(&a->val, 3);
                put_str(&a->val, "");
                put_str(&a->val, "x");
                put_str(&a->val, "yz");
                continue;
            }
            if (t == 9) continue;
            snprintf(key, sizeof key, "t.scalar.%u", t);
            put(&add_kv(&v, key, t)->val, val, sizes[t]);
            snprintf(key, sizeof key, "t.array.%u", t);
            kv *a = add_kv(&v, key, 9);
            put_u32(&a->val, t);
            put_u64(&a->val, 2);
            put(&a->val, val, 2 * sizes[t]);
        }
        kv *e = add_kv(&v, "t.array.empty", 9);
        put_u32(&e->val, 4);
        put_u64(&e->val, 0);
        emit("all_value_types", &v, "ok", "fail", "architecture",
             "every metadata value type, scalar and array, no tensors (valid GGUF, no model)");
        v.version = 2;
        emit("all_value_types_v2", &v, "ok", "fail", "architecture", "the same as GGUF v2");
        spec_free(&v);
    }

    /* Truncated at every field boundary (the first three of each kind) and
     * one byte into it. */
    {
        buf b = {0};
        n_marks = 0;
        recording = true;
        serialize(&s, &b);
        recording = false;
        typedef struct seen {
            const char *label;
            int n;
        } seen;
        seen sn[64];
        int nsn = 0;
        for (int i = 0; i < n_marks; i++) {
            int j;
            for (j = 0; j < nsn; j++)
                if (!strcmp(sn[j].label, marks[i].label)) break;
            if (j == nsn) {
                if (nsn == 64) continue;
                sn[nsn++] = (seen){marks[i].label, 0};
            }
            if (sn[j].n++ >= 3) continue;
            for (int plus = 0; plus < 2; plus++) {
                size_t at = marks[i].off + (size_t)plus;
                if (at >= b.n) continue;
                char name[128], label[64];
                snprintf(label, sizeof label, "%s", marks[i].label);
                for (char *c = label; *c; c++)
                    if (*c == ' ') *c = '_';
                snprintf(name, sizeof name, "trunc_%03d_%s%s", i, label, plus ? "_plus1" : "");
                emit_bytes(name, b.p, at, "fail", "fail", TRUNC_MSG, "truncated at byte %zu: %s %s",
                           at, plus ? "one byte into" : "before", marks[i].label);
            }
        }
        free(b.p);
    }

    /* Not GGUF at all. */
    emit_bytes("empty_file", "", 0, "fail", "fail", "not a GGUF|too short|magic", "an empty file");
    emit_bytes("bad_magic", "GGML\3\0\0\0", 8, "fail", "fail", "magic", "wrong magic bytes");
    {
        spec v = s;
        v.version = 1;
        emit("version_1", &v, "fail", "fail", "version", "GGUF version 1");
        v.version = 0x7fffffff;
        emit("version_huge", &v, "fail", "fail", "version", "GGUF version 2^31-1");
        v.version = 0x03000000;
        emit("version_big_endian", &v, "fail", "fail", "big-endian|version",
             "big-endian GGUF (version bytes swapped)");
    }

    /* Counts near 2^64. */
    static const uint64_t huge[] = {UINT64_MAX, UINT64_MAX - 1, 1ull << 63, 1ull << 62,
                                    (1ull << 61) + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char name[64], desc[128];
        spec v = s;
        v.n_kv_set = true, v.n_kv = huge[i];
        snprintf(name, sizeof name, "kv_count_%zu", i);
        snprintf(desc, sizeof desc, "metadata count %llu", (unsigned long long)huge[i]);
        emit(name, &v, "fail", "fail", COUNT_MSG, desc);
        v = s;
        v.n_t_set = true, v.n_t = huge[i];
        snprintf(name, sizeof name, "tensor_count_%zu", i);
        snprintf(desc, sizeof desc, "tensor count %llu", (unsigned long long)huge[i]);
        emit(name, &v, "fail", "fail", COUNT_MSG, desc);
        snprintf(name, sizeof name, "array_count_%zu", i);
        snprintf(desc, sizeof desc, "string array tokenizer.ggml.tokens of %llu elements",
                 (unsigned long long)huge[i]);
        emit_patched(name, &s, "array count", 0, 0, huge[i], 8, "fail", "fail", COUNT_MSG, desc);
        snprintf(name, sizeof name, "f32_array_count_%zu", i);
        snprintf(desc, sizeof desc, "float32 array tokenizer.ggml.scores of %llu elements",
                 (unsigned long long)huge[i]);
        emit_patched(name, &s, "array count", 1, 0, huge[i], 8, "fail", "fail", COUNT_MSG, desc);
    }
    {
        spec v = s; /* one more key than present: the last entry reads into the tensor infos */
        v.n_kv_set = true, v.n_kv = (uint64_t)s.nkv + 1;
        emit("kv_count_plus1", &v, "fail", "fail", "", "metadata count one more than present");
        v = s;
        v.n_t_set = true, v.n_t = (uint64_t)s.nt + 1;
        emit("tensor_count_plus1", &v, "fail", "fail", "", "tensor count one more than present");
    }

    /* String lengths past EOF. */
    static const uint64_t big_len[] = {UINT64_MAX, 1ull << 63, 1ull << 32, 100000000};
    for (size_t i = 0; i < sizeof big_len / sizeof big_len[0]; i++) {
        char name[64], desc[160];
        snprintf(name, sizeof name, "key_len_%zu", i);
        snprintf(desc, sizeof desc, "key length %llu", (unsigned long long)big_len[i]);
        emit_patched(name, &s, "key length", 1, 0, big_len[i], 8, "fail", "fail",
                     "past the end|end of the file", desc);
        snprintf(name, sizeof name, "str_value_len_%zu", i);
        snprintf(desc, sizeof desc, "string value length %llu", (unsigned long long)big_len[i]);
        emit_patched(name, &s, "string value length", 0, 0, big_len[i], 8, "fail", "fail",
                     "past the end|end of the file", desc);
        snprintf(name, sizeof name, "array_str_len_%zu", i);
        snprintf(desc, sizeof desc, "length %llu of a string in a string array",
                 (unsigned long long)big_len[i]);
        emit_patched(name, &s, "array string length", 1, 0, big_len[i], 8, "fail", "fail",
                     "past the end|end of the file", desc);
        snprintf(name, sizeof name, "tensor_name_len_%zu", i);
        snprintf(desc, sizeof desc, "tensor name length %llu", (unsigned long long)big_len[i]);
        emit_patched(name, &s, "tensor name length", 0, 0, big_len[i], 8, "fail", "fail",
                     "past the end|end of the file", desc);
    }
    emit_patched("key_empty", &s, "key length", 0, 0, 0, 8, "fail", "fail", "empty key|key",
                 "a key of length 0 (the rest of the file misread)");

    /* Unknown type ids. */
    static const uint32_t bad_vt[] = {13, 0xffffffffu};
    for (size_t i = 0; i < 2; i++) {
        char name[64], desc[128];
        snprintf(name, sizeof name, "value_type_%u", bad_vt[i]);
        snprintf(desc, sizeof desc, "metadata value type id %u", bad_vt[i]);
        emit_patched(name, &s, "value type", 0, 0, bad_vt[i], 4, "fail", "fail", "type", desc);
        snprintf(name, sizeof name, "array_type_%u", bad_vt[i]);
        snprintf(desc, sizeof desc, "array element type id %u", bad_vt[i]);
        emit_patched(name, &s, "array element type", 0, 0, bad_vt[i], 4, "fail", "fail", "type",
                     desc);
    }
    emit_patched("array_nested", &s, "array element type", 0, 0, 9, 4, "fail", "fail", "nested",
                 "array of arrays");
    static const uint32_t bad_tt[] = {4, 5, 31, 40, 41, 1000, 0xffffffffu};
    for (size_t i = 0; i < sizeof bad_tt / sizeof bad_tt[0]; i++) {
        char name[64], desc[128];
        snprintf(name, sizeof name, "tensor_type_%u", bad_tt[i]);
        snprintf(desc, sizeof desc, "tensor type id %u", bad_tt[i]);
        emit_patched(name, &s, "tensor type", 3, 0, bad_tt[i], 4, "fail", "fail",
                     "unknown tensor type|type", desc);
    }
    {
        spec v;
        base_model(&v); /* a type the reader knows but the model cannot compute with */
        tensor *t = find_t(&v, "blk.0.attn_q.weight");
        t->type = 39; /* MXFP4: 17 bytes per 32, the reader knows it, kernels do not */
        emit("tensor_type_mxfp4", &v, "ok", "fail", "type",
             "attn_q stored as MXFP4 (valid GGUF, not a type hearth computes with)");
        spec_free(&v);
    }
    /* Wrong metadata types for the keys the model reads. */
    emit_patched("key_type_mismatch", &s, "value type", 4, 0, 8, 4, "fail", "fail", "",
                 "llama.context_length's type id changed to string (the rest misread)");
    {
        spec v;
        base_model(&v);
        kv *k = find_kv(&v, "llama.embedding_length");
        k->type = 8;
        k->val.n = 0;
        put_str(&k->val, "thirty-two");
        emit("hparam_wrong_type", &v, "any", "fail", "embedding_length",
             "llama.embedding_length is a string");
        spec_free(&v);
    }

    /* Dimensions. */
    typedef struct dims_case {
        const char *name;
        uint32_t n_dims;
        int64_t ne[4];
        const char *inspect, *run, *pattern, *desc;
    } dims_case;
    static const dims_case dc[] = {
        {"dims_product_overflow",
         2,
         {1ll << 32, 1ll << 32, 1, 1},
         "fail",
         "fail",
         "overflow",
         "dims 2^32 x 2^32 (element count overflows int64)"},
        {"dims_product_overflow4",
         4,
         {1 << 16, 1 << 16, 1 << 16, 1 << 16},
         "fail",
         "fail",
         "overflow",
         "dims 2^16 x 4 (2^64 elements)"},
        {"dims_bytes_overflow",
         2,
         {1ll << 61, 2, 1, 1},
         "fail",
         "fail",
         "overflow|past the end",
         "2^62 F32 elements (byte size overflows)"},
        {"dims_int64_max",
         1,
         {INT64_MAX, 1, 1, 1},
         "fail",
         "fail",
         "overflow|past the end|multiple",
         "a dim of 2^63-1"},
        {"dims_negative", 2, {-1, 32, 1, 1}, "fail", "fail", "negative", "a negative dim"},
        {"dims_zero_count", 0, {32, 1, 1, 1}, "fail", "fail", "dims", "n_dims 0"},
        {"dims_five", 5, {32, 1, 1, 1}, "fail", "fail", "dims", "n_dims 5"},
        {"dims_huge_count", 0xffffffffu, {32, 1, 1, 1}, "fail", "fail", "dims", "n_dims 2^32-1"},
        {"dims_zero_rows",
         2,
         {N_EMBD, 0, 1, 1},
         "any",
         "fail",
         "token_embd|rows|shape",
         "token_embd of 0 rows (zero-sized dim)"},
        {"dims_zero_cols",
         2,
         {0, 272, 1, 1},
         "any",
         "fail",
         "token_embd|shape",
         "token_embd of 0 columns (zero-sized dim)"},
        {"dims_past_eof",
         2,
         {N_EMBD, 1 << 24, 1, 1},
         "fail",
         "fail",
         "past the end",
         "token_embd of 2^24 rows: data past the end of the file"},
    };
    for (size_t i = 0; i < sizeof dc / sizeof dc[0]; i++) {
        spec v;
        base_model(&v);
        tensor *t = find_t(&v, "token_embd.weight");
        t->n_dims = dc[i].n_dims;
        memcpy(t->ne, dc[i].ne, sizeof t->ne);
        emit(dc[i].name, &v, dc[i].inspect, dc[i].run, dc[i].pattern, dc[i].desc);
        spec_free(&v);
    }

    /* Offsets. */
    {
        spec v;
        base_model(&v);
        tensor *t = find_t(&v, "blk.0.ffn_down.weight");
        t->offset_set = true;
        t->offset = 1ull << 40;
        emit("offset_past_eof", &v, "fail", "fail", "past the end", "tensor offset 2^40");
        t->offset = UINT64_MAX - 31;
        emit("offset_near_2_64", &v, "fail", "fail", "past the end", "tensor offset 2^64-32");
        t->offset = 1;
        emit("offset_misaligned", &v, "fail", "fail", "alignment|multiple",
             "tensor offset 1 (not a multiple of the alignment 32)");
        t->offset = 0;
        emit("offset_overlap", &v, "fail", "fail", "overlap",
             "ffn_down at offset 0, overlapping token_embd");
        spec_free(&v);
        base_model(&v);
        for (int i = 0; i < v.nkv; i++)
            if (!strcmp(v.kvs[i].key, "general.alignment")) v.kvs[i].val.n = 0;
        static const uint32_t bad_al[] = {0, 3, 48, 1u << 31};
        for (size_t i = 0; i < 4; i++) {
            char name[64], desc[128];
            kv *k = find_kv(&v, "general.alignment");
            k->val.n = 0;
            put_u32(&k->val, bad_al[i]);
            snprintf(name, sizeof name, "alignment_%u", bad_al[i]);
            snprintf(desc, sizeof desc, "general.alignment = %u", bad_al[i]);
            emit(name, &v, "fail", "fail", "alignment", desc);
        }
        kv *k = find_kv(&v, "general.alignment");
        k->type = 5;
        k->val.n = 0;
        put_u32(&k->val, (uint32_t)-32);
        emit("alignment_negative", &v, "fail", "fail", "alignment", "general.alignment = -32");
        k->type = 8;
        k->val.n = 0;
        put_str(&k->val, "32");
        emit("alignment_string", &v, "fail", "fail", "alignment", "general.alignment is a string");
        spec_free(&v);
    }

    /* Duplicates. */
    {
        spec v;
        base_model(&v);
        kv_u32(&v, "llama.block_count", 1);
        emit("duplicate_key", &v, "fail", "fail", "duplicate", "llama.block_count twice");
        spec_free(&v);
        base_model(&v);
        tensor *t = add_t(&v, "blk.0.attn_q.weight", 2, N_EMBD, 32, T_F32, false);
        (void)t;
        emit("duplicate_tensor", &v, "fail", "fail", "duplicate", "blk.0.attn_q.weight twice");
        spec_free(&v);
    }

    /* Shapes that do not fit the architecture (valid GGUF). */
    {
        spec v;
        base_model(&v);
        tensor *t = find_t(&v, "blk.0.attn_k.weight");
        t->ne[1] = 32;
        fill(t, false);
        emit("shape_attn_k", &v, "ok", "fail", "attn_k|shape",
             "attn_k is [32, 32], the hyperparameters say [32, 16]");
        spec_free(&v);
        base_model(&v);
        find_kv(&v, "llama.block_count")->val.p[0] = 2;
        emit("shape_missing_layer", &v, "ok", "fail", "blk.1|missing",
             "block_count 2, tensors for one layer");
        spec_free(&v);
        base_model(&v);
        find_kv(&v, "llama.attention.head_count_kv")->val.p[0] = 3;
        emit("hparam_head_kv", &v, "ok", "fail", "head_count_kv|divisor",
             "head_count_kv 3 does not divide head_count 2");
        spec_free(&v);
        base_model(&v);
        kv *k = find_kv(&v, "llama.embedding_length");
        k->val.n = 0;
        put_u32(&k->val, 0x80000000u);
        emit("hparam_embd_huge", &v, "ok", "fail", "embedding_length", "embedding_length 2^31");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "llama.block_count");
        k->val.n = 0;
        put_u32(&k->val, 0xffffffffu);
        emit("hparam_layers_huge", &v, "ok", "fail", "block_count", "block_count 2^32-1");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "llama.attention.head_count");
        k->val.n = 0;
        put_u32(&k->val, 0);
        emit("hparam_heads_zero", &v, "ok", "fail", "head_count", "head_count 0");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "llama.attention.layer_norm_rms_epsilon");
        float nan = __builtin_nanf("");
        memcpy(k->val.p, &nan, 4);
        emit("hparam_eps_nan", &v, "ok", "fail", "epsilon", "rms epsilon NaN");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "llama.context_length");
        k->val.n = 0;
        put_u32(&k->val, 0xffffffffu);
        emit("hparam_ctx_huge", &v, "ok", "fail", "context_length", "context_length 2^32-1");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "general.architecture");
        k->val.n = 0;
        put_str(&k->val, "gpt-neox");
        emit("arch_unknown", &v, "ok", "fail", "architecture", "general.architecture gpt-neox");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "tokenizer.ggml.bos_token_id");
        k->val.n = 0;
        put_u32(&k->val, 1000000);
        emit("tok_bos_out_of_range", &v, "any", "any", "bos_token_id|range|BOS",
             "BOS id 1000000 in a vocabulary of 272 (ignored, as the reference does)");
        spec_free(&v);
        base_model(&v);
        k = find_kv(&v, "tokenizer.ggml.scores");
        uint64_t fewer = 10;
        memcpy(k->val.p + 4, &fewer, 8);
        emit("tok_scores_short", &v, "fail", "fail", "",
             "scores array count 10 for 272 tokens "
             "(the rest of the file misread)");
        spec_free(&v);
    }

    /* NaN/Inf in weights and in quantized block scales: the file is valid;
     * hearth must not crash or hang (see docs/fuzzing.md for the policy). */
    {
        typedef struct nan_case {
            const char *name, *tensor;
            uint32_t type;
            uint16_t bits16; /* f16 pattern written into the scales/elements */
            const char *desc;
        } nan_case;
        static const nan_case nc[] = {
            {"nan_q8_0_scales", "blk.0.attn_q.weight", T_Q8_0, 0x7e00,
             "attn_q in Q8_0 with NaN block scales"},
            {"inf_q8_0_scales", "blk.0.ffn_up.weight", T_Q8_0, 0x7c00,
             "ffn_up in Q8_0 with +Inf block scales"},
            {"nan_q4_0_scales", "blk.0.ffn_down.weight", T_Q4_0, 0x7e00,
             "ffn_down in Q4_0 with NaN block scales"},
            {"inf_q4_0_scales", "blk.0.attn_v.weight", T_Q4_0, 0xfc00,
             "attn_v in Q4_0 with -Inf block scales"},
            {"nan_f16_weights", "blk.0.ffn_gate.weight", T_F16, 0x7e00, "ffn_gate in F16, all NaN"},
            {"inf_f16_embd", "token_embd.weight", T_F16, 0x7c00,
             "token_embd (and tied output) in F16, all +Inf"},
            {"nan_f32_norm", "output_norm.weight", T_F32, 0, "output_norm in F32, all NaN"},
            {"nan_q8_0_norm", "blk.0.attn_norm.weight", T_Q8_0, 0x7e00,
             "attn_norm (dequantized at load) in Q8_0 with NaN scales"},
        };
        for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) {
            spec v;
            base_model(&v);
            retype(&v, nc[i].tensor, nc[i].type);
            tensor *t = find_t(&v, nc[i].tensor);
            if (nc[i].type == T_F32) {
                float nan = __builtin_nanf("");
                for (size_t o = 0; o + 4 <= t->data.n; o += 4) memcpy(t->data.p + o, &nan, 4);
            } else if (nc[i].type == T_F16) {
                for (size_t o = 0; o + 2 <= t->data.n; o += 2)
                    memcpy(t->data.p + o, &nc[i].bits16, 2);
            } else {
                size_t bs = nc[i].type == T_Q8_0 ? 34 : 18;
                for (size_t o = 0; o + bs <= t->data.n; o += bs)
                    memcpy(t->data.p + o, &nc[i].bits16, 2);
            }
            emit(nc[i].name, &v, "ok", "any", "nan|inf|finite", nc[i].desc);
            spec_free(&v);
        }
    }

    /* deepseek2: MLA and MoE shapes and hyperparameters. */
    {
        spec v;
        ds2_model(&v);
        emit("valid_deepseek2", &v, "ok", "ok", "",
             "valid tiny deepseek2 (MLA, q-LoRA, MoE, YaRN)");
        spec_free(&v);
        typedef struct ds2_case {
            const char *name, *key;
            uint32_t u;
            const char *pattern, *desc;
        } ds2_case;
        static const ds2_case dk[] = {
            {"ds2_used_gt_count", "deepseek2.expert_used_count", 5, "expert_used_count",
             "expert_used_count 5 > expert_count 4"},
            {"ds2_expert_count_huge", "deepseek2.expert_count", 0xffffffffu, "expert_count",
             "expert_count 2^32-1"},
            {"ds2_expert_count_mismatch", "deepseek2.expert_count", 8, "exps|shape",
             "expert_count 8, expert tensors hold 4"},
            {"ds2_gating_bad", "deepseek2.expert_gating_func", 7, "gating", "expert_gating_func 7"},
            {"ds2_rope_ge_head", "deepseek2.rope.dimension_count", 24, "dimension_count",
             "rope.dimension_count 24 = key head width"},
            {"ds2_rope_odd", "deepseek2.rope.dimension_count", 7, "dimension_count",
             "rope.dimension_count 7 (odd)"},
            {"ds2_kv_lora_huge", "deepseek2.attention.kv_lora_rank", 1u << 30, "kv_lora_rank",
             "kv_lora_rank 2^30"},
            {"ds2_kv_lora_zero", "deepseek2.attention.kv_lora_rank", 0, "kv_lora_rank",
             "kv_lora_rank 0"},
            {"ds2_dense_gt_layers", "deepseek2.leading_dense_block_count", 9,
             "leading_dense_block_count", "leading_dense_block_count 9 > block_count 2"},
            {"ds2_all_dense", "deepseek2.leading_dense_block_count", 2, "blk.1.ffn_gate|missing",
             "two dense layers, the second has expert tensors"},
            {"ds2_ff_exp_huge", "deepseek2.expert_feed_forward_length", 0x7fffffffu,
             "expert_feed_forward_length", "expert_feed_forward_length 2^31-1"},
            {"ds2_key_len_huge", "deepseek2.attention.key_length", 1u << 20, "key_length|head",
             "key_length 2^20"},
            {"ds2_orig_ctx_zero", "deepseek2.rope.scaling.original_context_length", 0,
             "original_context_length", "rope.scaling.original_context_length 0"},
        };
        for (size_t i = 0; i < sizeof dk / sizeof dk[0]; i++) {
            ds2_model(&v);
            set_u32(&v, dk[i].key, dk[i].u);
            emit(dk[i].name, &v, "ok", "fail", dk[i].pattern, dk[i].desc);
            spec_free(&v);
        }
        ds2_model(&v);
        set_f32(&v, "deepseek2.rope.scaling.factor", __builtin_nanf(""));
        emit("ds2_yarn_factor_nan", &v, "ok", "fail", "scaling.factor", "YaRN factor NaN");
        spec_free(&v);
        ds2_model(&v);
        set_f32(&v, "deepseek2.expert_weights_scale", -__builtin_inff());
        emit("ds2_scale_neg_inf", &v, "ok", "fail", "expert_weights_scale",
             "expert_weights_scale -Inf");
        spec_free(&v);
        ds2_model(&v);
        kv *k = find_kv(&v, "deepseek2.rope.scaling.type");
        k->val.n = 0;
        put_str(&k->val, "bogus");
        emit("ds2_scaling_type_bad", &v, "ok", "fail", "scaling.type", "rope.scaling.type bogus");
        spec_free(&v);
        ds2_model(&v);
        del_kv(&v, "deepseek2.attention.q_lora_rank");
        emit("ds2_no_q_lora", &v, "ok", "fail", "attn_q|missing",
             "no q_lora_rank: attn_q expected, the file has attn_q_a/attn_q_b");
        spec_free(&v);
        ds2_model(&v);
        tensor *t = find_t(&v, "blk.1.ffn_up_exps.weight");
        t->ne[2] = 3;
        fill(t, false);
        emit("ds2_exps_shape", &v, "ok", "fail", "ffn_up_exps|shape",
             "ffn_up_exps holds 3 experts, expert_count 4");
        spec_free(&v);
        ds2_model(&v);
        t = find_t(&v, "blk.1.ffn_gate_inp.weight");
        for (size_t o = 0; o + 4 <= t->data.n; o += 4) {
            float nan = __builtin_nanf("");
            memcpy(t->data.p + o, &nan, 4);
        }
        emit("ds2_router_nan", &v, "ok", "any", "nan|finite",
             "router weights all NaN (expert choice from NaN scores)");
        spec_free(&v);
        ds2_model(&v);
        t = find_t(&v, "blk.1.exp_probs_b.bias");
        for (size_t o = 0; o + 4 <= t->data.n; o += 4) {
            float inf = -__builtin_inff();
            memcpy(t->data.p + o, &inf, 4);
        }
        emit("ds2_probs_bias_inf", &v, "ok", "any", "nan|finite|inf",
             "exp_probs_b all -Inf (every expert score -Inf)");
        spec_free(&v);
    }

    /* KV cache amplification: 4 MiB of attention weights declaring 2 x 8192
     * wide heads; at the default context (4096) the cache is 512 MiB of
     * address space, of which `hearth run -n 4` must touch only what it uses. */
    {
        spec v;
        base_model(&v);
        set_u32(&v, "llama.context_length", 4096);
        set_u32(&v, "llama.attention.head_count_kv", 2);
        kv_u32(&v, "llama.attention.key_length", 8192);
        kv_u32(&v, "llama.attention.value_length", 8192);
        static const char *const wide[] = {"blk.0.attn_q.weight", "blk.0.attn_k.weight",
                                           "blk.0.attn_v.weight", "blk.0.attn_output.weight"};
        for (int i = 0; i < 4; i++) {
            tensor *t = find_t(&v, wide[i]);
            t->type = T_F16;
            if (i < 3)
                t->ne[1] = 2 * 8192;
            else
                t->ne[0] = 2 * 8192;
            fill(t, false);
        }
        emit("kv_cache_wide", &v, "ok", "ok", "",
             "2 heads of 8192 (4 MiB of weights), context 4096: a 512 MiB KV cache");
        spec_free(&v);
    }

    /* Memory amplification: many 18-byte metadata entries. The reader's
     * bound on keys refuses 8 MiB of them; exactly the bound opens. */
    {
        uint64_t n = (8u << 20) / 18;
        buf b = tiny_keys(n);
        emit_bytes("many_keys_8mib", b.p, b.n, "fail", "fail", "limit",
                   "%llu metadata entries of 18 bytes (8 MiB): over the key limit",
                   (unsigned long long)n);
        free(b.p);
        n = GGUF_MAX_KV;
        b = tiny_keys(n);
        emit_bytes("max_keys", b.p, b.n, "any", "fail", "architecture",
                   "%llu metadata entries, the limit: opens, memory stays bounded",
                   (unsigned long long)n);
        free(b.p);
        /* 127k zero-sized tensors in 4 MiB: over the bound on tensors. */
        b = (buf){0};
        n = (4u << 20) / 33;
        put(&b, "GGUF", 4);
        put_u32(&b, 3);
        put_u64(&b, n);
        put_u64(&b, 0);
        for (uint64_t i = 0; i < n; i++) {
            char name[8];
            snprintf(name, sizeof name, "%05llx", (unsigned long long)i);
            put_u64(&b, 5);
            put(&b, name, 5);
            put_u32(&b, 1);
            put_u64(&b, 0);
            put_u32(&b, 0);
            put_u64(&b, 0);
        }
        put_zero(&b, (32 - b.n % 32) % 32);
        emit_bytes("many_tensors_4mib", b.p, b.n, "fail", "fail", "limit",
                   "%llu zero-sized tensors (4 MiB): over the tensor limit", (unsigned long long)n);
        free(b.p);
    }

    spec_free(&s);
    if (fclose(manifest)) die(mpath);
    printf("gen_crafted: wrote %d cases to %s\n", n_cases, out_dir);
    return 0;
}
