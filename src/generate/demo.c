#include "generate/demo.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "generate/sampler.h"
#include "gguf/gguf.h"

enum {
    D_EMBD = 256,
    D_LAYER = 4,
    D_HEAD = 4,
    D_HEAD_KV = 2,
    D_FF = 768,
    D_CTX = 2048,
    D_HD = D_EMBD / D_HEAD,
};

static const char CHATML[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}";

/* Merged tokens after the 256 byte tokens, then the specials. */
static const char *const MERGES[] = {"\xc4\xa0 t", "h e", "\xc4\xa0t he"};
static const char *const MERGED[] = {"\xc4\xa0t", "he", "\xc4\xa0the"};
static const char *const SPECIALS[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
#define N_MERGES   3
#define N_SPECIALS 3
#define N_VOCAB    (256 + N_MERGES + N_SPECIALS)
#define ID_EOT     (256 + N_MERGES)     /* <|endoftext|> */
#define ID_IM_END  (256 + N_MERGES + 2) /* <|im_end|> */

/* GPT-2's byte-to-unicode table: printable bytes stand for themselves, the
 * rest map to U+0100 onwards. Writes the UTF-8 of byte b's token. */
static void byte_token(int b, char out[3]) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int k = 0; /* index of b among the non-printable bytes */
        for (int i = 0; i < b; i++)
            if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) k++;
        cp = 256 + k;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

/* Gaussian-ish weights (sum of uniforms), scale `std`. */
static void fill(sampler_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < 4; k++) s += sampler_rng_uniform(r) - 0.5;
        x[i] = (float)(s * std * 1.7320508); /* var of the sum of 4 U(-.5,.5) is 1/3 */
    }
}

static int add_f32(gguf_writer *w, const char *name, uint32_t nd, const int64_t *ne,
                   const float *data, hearth_err *err) {
    return gguf_writer_add_tensor(w, name, HT_F32, nd, ne, data, err);
}

static int add_f16(gguf_writer *w, const char *name, int64_t cols, int64_t rows, const float *x,
                   uint16_t *tmp, hearth_err *err) {
    for (int64_t i = 0; i < cols * rows; i++) tmp[i] = ht_f32_to_f16(x[i]);
    int64_t ne[2] = {cols, rows};
    return gguf_writer_add_tensor(w, name, HT_F16, 2, ne, tmp, err);
}

int demo_model_write(const char *path, hearth_err *err) {
    int rc = -1;
    gguf_writer *w = gguf_writer_new();
    size_t big = (size_t)N_VOCAB * D_EMBD > (size_t)D_FF * D_EMBD ? (size_t)N_VOCAB * D_EMBD
                                                                  : (size_t)D_FF * D_EMBD;
    float *x = malloc(big * sizeof *x);
    uint16_t *h = malloc(big * sizeof *h);
    char tokbuf[256][3];
    const char *tokens[N_VOCAB];
    int32_t types[N_VOCAB];
    if (!w || !x || !h) {
        hearth_errf(err, "demo model: out of memory");
        goto done;
    }

    int bad = 0;
    bad |= gguf_writer_set_str(w, "general.architecture", "llama");
    bad |= gguf_writer_set_str(w, "general.name", "hearth demo (random weights)");
    bad |= gguf_writer_set_u32(w, "llama.context_length", D_CTX);
    bad |= gguf_writer_set_u32(w, "llama.embedding_length", D_EMBD);
    bad |= gguf_writer_set_u32(w, "llama.block_count", D_LAYER);
    bad |= gguf_writer_set_u32(w, "llama.feed_forward_length", D_FF);
    bad |= gguf_writer_set_u32(w, "llama.attention.head_count", D_HEAD);
    bad |= gguf_writer_set_u32(w, "llama.attention.head_count_kv", D_HEAD_KV);
    bad |= gguf_writer_set_u32(w, "llama.rope.dimension_count", D_HD);
    bad |= gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f);
    bad |= gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    bad |= gguf_writer_set_u32(w, "llama.vocab_size", N_VOCAB);

    for (int b = 0; b < 256; b++) {
        byte_token(b, tokbuf[b]);
        tokens[b] = tokbuf[b];
        types[b] = 1; /* normal */
    }
    for (int i = 0; i < N_MERGES; i++) {
        tokens[256 + i] = MERGED[i];
        types[256 + i] = 1;
    }
    for (int i = 0; i < N_SPECIALS; i++) {
        tokens[256 + N_MERGES + i] = SPECIALS[i];
        types[256 + N_MERGES + i] = 3; /* control */
    }
    bad |= gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    bad |= gguf_writer_set_str(w, "tokenizer.ggml.pre", "gpt-2");
    bad |= gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", tokens, N_VOCAB);
    bad |= gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, N_VOCAB);
    bad |= gguf_writer_set_str_arr(w, "tokenizer.ggml.merges", MERGES, N_MERGES);
    bad |= gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", ID_EOT);
    bad |= gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", ID_IM_END);
    bad |= gguf_writer_set_u32(w, "tokenizer.ggml.padding_token_id", ID_EOT);
    bad |= gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
    bad |= gguf_writer_set_str(w, "tokenizer.chat_template", CHATML);
    if (bad) {
        hearth_errf(err, "demo model: could not set the metadata (out of memory)");
        goto done;
    }

    sampler_rng r;
    sampler_rng_seed(&r, 0x6865617274680001ULL); /* "hearth" */
    int64_t ne1[1] = {D_EMBD};
    /* Embeddings of unit scale so the residual stream carries the token, plus
     * a constant 8 in dimension 0 that survives the layers: the output matrix
     * reads it to favour printable ASCII (and <|im_end|> a little), so the
     * noise is readable and answers end after ~100-200 tokens. */
    fill(&r, x, (size_t)N_VOCAB * D_EMBD, 1.0f);
    for (int t = 0; t < N_VOCAB; t++) x[(size_t)t * D_EMBD] = 8.0f;
    if (add_f16(w, "token_embd.weight", D_EMBD, N_VOCAB, x, h, err) < 0) goto done;
    for (int i = 0; i < D_EMBD; i++) x[i] = 1.0f;
    if (add_f32(w, "output_norm.weight", 1, ne1, x, err) < 0) goto done;
    /* Output scale: logits of std ~1 around the printable bonus. */
    fill(&r, x, (size_t)N_VOCAB * D_EMBD, 1.0f / sqrtf(D_EMBD));
    for (int t = 0; t < N_VOCAB; t++) {
        bool printable = (t >= 32 && t < 127) || (t >= 256 && t < 256 + N_MERGES);
        x[(size_t)t * D_EMBD] = t == ID_IM_END ? 0.6f : printable ? 0.5f : -1.0f;
    }
    if (add_f16(w, "output.weight", D_EMBD, N_VOCAB, x, h, err) < 0) goto done;

    const float s_in = 1.0f / sqrtf(D_EMBD), s_ff = 1.0f / sqrtf(D_FF);
    for (int l = 0; l < D_LAYER; l++) {
        char n[64];
#define NAME(s) (snprintf(n, sizeof n, "blk.%d." s, l), n)
        for (int i = 0; i < D_EMBD; i++) x[i] = 1.0f;
        if (add_f32(w, NAME("attn_norm.weight"), 1, ne1, x, err) < 0) goto done;
        if (add_f32(w, NAME("ffn_norm.weight"), 1, ne1, x, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_EMBD, s_in);
        if (add_f16(w, NAME("attn_q.weight"), D_EMBD, D_EMBD, x, h, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_HEAD_KV * D_HD, s_in);
        if (add_f16(w, NAME("attn_k.weight"), D_EMBD, D_HEAD_KV * D_HD, x, h, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_HEAD_KV * D_HD, s_in);
        if (add_f16(w, NAME("attn_v.weight"), D_EMBD, D_HEAD_KV * D_HD, x, h, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_EMBD, s_in);
        if (add_f16(w, NAME("attn_output.weight"), D_EMBD, D_EMBD, x, h, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_FF, s_in);
        if (add_f16(w, NAME("ffn_gate.weight"), D_EMBD, D_FF, x, h, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_FF, s_in);
        if (add_f16(w, NAME("ffn_up.weight"), D_EMBD, D_FF, x, h, err) < 0) goto done;
        fill(&r, x, (size_t)D_EMBD * D_FF, s_ff);
        if (add_f16(w, NAME("ffn_down.weight"), D_FF, D_EMBD, x, h, err) < 0) goto done;
#undef NAME
    }
    rc = gguf_writer_write(w, path, err);
done:
    gguf_writer_free(w);
    free(x);
    free(h);
    return rc;
}

int demo_model_ensure(const char *dir, char *out, size_t cap, bool *created, hearth_err *err) {
    if (created) *created = false;
    int n = snprintf(out, cap, "%s/%s", dir, DEMO_FILE_NAME);
    if (n < 0 || (size_t)n >= cap) return hearth_errf(err, "demo model: path too long");
    struct stat st;
    if (stat(out, &st) == 0) return 0;
    if (demo_model_write(out, err) < 0) return -1;
    if (created) *created = true;
    return 0;
}
