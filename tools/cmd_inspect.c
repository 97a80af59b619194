/* hearth inspect MODEL.gguf [--json]: what is in a GGUF file, and what it
 * costs to run: metadata (arrays summarized, long strings cut, the chat
 * template in full), tensors, parameter count, bytes per type and the KV cache
 * bytes per token. Reads only the header and metadata (through mmap), so it is
 * instant on any size of file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model_arg.h"
#include "gguf/gguf.h"

#define STR_SHOW  72 /* characters of a string value shown before cutting */
#define ARR_SHOW  5  /* elements of an array shown */
#define NAME_COLS 36

/* ---- text output helpers ---- */

/* Prints up to `max` bytes of s with control bytes escaped; returns bytes used. */
static uint64_t put_escaped(FILE *out, gguf_str s, uint64_t max) {
    uint64_t n = s.len < max ? s.len : max;
    for (uint64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        if (c == '\n')
            fputs("\\n", out);
        else if (c == '\t')
            fputs("\\t", out);
        else if (c == '\r')
            fputs("\\r", out);
        else if (c == '"')
            fputs("\\\"", out);
        else if (c == '\\')
            fputs("\\\\", out);
        else if (c < 32 || c == 127)
            fprintf(out, "\\x%02x", c);
        else
            fputc(c, out);
    }
    return n;
}

static void put_str_value(FILE *out, gguf_str s) {
    fputc('"', out);
    put_escaped(out, s, STR_SHOW);
    fputc('"', out);
    if (s.len > STR_SHOW) fprintf(out, "... (%" PRIu64 " bytes)", s.len);
}

static void put_scalar(FILE *out, gguf_vtype t, const uint8_t *p) {
    gguf_arr one = {t, 1, p, NULL};
    switch (t) {
    case GGUF_FLOAT32:
    case GGUF_FLOAT64:
        fprintf(out, "%.9g", gguf_arr_float(&one, 0));
        break;
    case GGUF_BOOL:
        fputs(p[0] ? "true" : "false", out);
        break;
    case GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        fprintf(out, "%" PRIu64, v);
        break;
    }
    default:
        fprintf(out, "%" PRId64, gguf_arr_int(&one, 0));
        break;
    }
}

static void put_array(FILE *out, const gguf_arr *a) {
    fprintf(out, "[%" PRIu64 "]", a->n);
    for (uint64_t i = 0; i < a->n && i < ARR_SHOW; i++) {
        fputs(i ? ", " : ": ", out);
        if (a->type == GGUF_STRING) {
            gguf_str s = gguf_arr_str(a, i);
            fputc('"', out);
            put_escaped(out, s, 24);
            fputs(s.len > 24 ? "...\"" : "\"", out);
        } else {
            put_scalar(out, a->type, a->data + i * gguf_vtype_size(a->type));
        }
    }
    if (a->n > ARR_SHOW) fputs(", ...", out);
}

static const char *human(double bytes, char *buf, size_t cap) {
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4) bytes /= 1024, u++;
    snprintf(buf, cap, u ? "%.2f %s" : "%.0f %s", bytes, unit[u]);
    return buf;
}

/* ---- what the file costs ---- */

typedef struct summary {
    char arch[64];
    uint64_t n_params;
    uint64_t n_bytes;
    uint64_t type_count[HT_TYPE_COUNT], type_elems[HT_TYPE_COUNT], type_bytes[HT_TYPE_COUNT];
    bool has_kv;
    uint64_t kv_elems_per_token; /* K and V elements cached per token, all layers */
    char kv_formula[160];
    uint32_t n_ctx;
} summary;

static uint32_t arch_u32(const gguf_file *f, const char *arch, const char *key, uint32_t dflt,
                         bool *found) {
    char k[160];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    uint32_t v = dflt;
    bool ok = gguf_has(f, k) && gguf_get_u32(f, k, &v, NULL) == 0;
    if (found) *found = ok;
    return ok ? v : dflt;
}

/* n_head_kv may be one number or (for some models) one per layer. */
static uint64_t sum_head_kv(const gguf_file *f, const char *arch, uint32_t n_layer,
                            uint32_t n_head) {
    char k[160];
    snprintf(k, sizeof k, "%s.attention.head_count_kv", arch);
    const gguf_kv *kv = gguf_find(f, k);
    if (kv && kv->type == GGUF_ARRAY && kv->arr.type != GGUF_STRING) {
        uint64_t s = 0;
        for (uint64_t i = 0; i < kv->arr.n && i < n_layer; i++) {
            int64_t v = gguf_arr_int(&kv->arr, i);
            if (v > 0) s += (uint64_t)v;
        }
        return s;
    }
    return (uint64_t)n_layer * arch_u32(f, arch, "attention.head_count_kv", n_head, NULL);
}

static void summarize(const gguf_file *f, summary *s) {
    memset(s, 0, sizeof *s);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        uint64_t n = (uint64_t)gguf_tensor_n_elements(t);
        s->n_params += n;
        s->n_bytes += t->nbytes;
        s->type_count[t->type]++;
        s->type_elems[t->type] += n;
        s->type_bytes[t->type] += t->nbytes;
    }
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch, NULL) != 0 || arch.len == 0 ||
        arch.len >= sizeof s->arch)
        return;
    memcpy(s->arch, arch.ptr, arch.len);
    s->arch[arch.len] = 0;
    for (char *c = s->arch; *c; c++)
        if (*c < 32 || *c == 127) *c = '?';
    bool ok;
    uint32_t n_layer = arch_u32(f, s->arch, "block_count", 0, &ok);
    if (!ok || n_layer == 0) return;
    s->n_ctx = arch_u32(f, s->arch, "context_length", 0, NULL);
    bool mla = false;
    uint32_t kv_lora = arch_u32(f, s->arch, "attention.kv_lora_rank", 0, &mla);
    if (mla && kv_lora > 0) {
        /* MLA caches the compressed latent (kv_lora_rank) and the shared
         * RoPE key part (qk_rope_head_dim) per layer, for all heads at once. */
        uint32_t rope = arch_u32(f, s->arch, "rope.dimension_count", 0, NULL);
        s->kv_elems_per_token = (uint64_t)n_layer * (kv_lora + rope);
        snprintf(s->kv_formula, sizeof s->kv_formula,
                 "MLA: n_layer %u * (kv_lora_rank %u + qk_rope_head_dim %u)", n_layer, kv_lora,
                 rope);
        s->has_kv = true;
        return;
    }
    uint32_t n_embd = arch_u32(f, s->arch, "embedding_length", 0, NULL);
    uint32_t n_head = arch_u32(f, s->arch, "attention.head_count", 0, &ok);
    if (!ok || n_head == 0) return;
    uint32_t k_dim = arch_u32(f, s->arch, "attention.key_length", n_embd / n_head, NULL);
    uint32_t v_dim = arch_u32(f, s->arch, "attention.value_length", k_dim, NULL);
    uint64_t heads = sum_head_kv(f, s->arch, n_layer, n_head);
    s->kv_elems_per_token = heads * (k_dim + v_dim);
    snprintf(s->kv_formula, sizeof s->kv_formula,
             "n_layer %u * n_head_kv %" PRIu64 " * (key %u + value %u)", n_layer, heads / n_layer,
             k_dim, v_dim);
    s->has_kv = true;
}

/* ---- text report ---- */

static void print_text(FILE *out, const gguf_file *f) {
    char b1[32], b2[32];
    fprintf(out,
            "file: %s\n  %zu bytes (%s), GGUF v%u, alignment %u, data section at offset %" PRIu64
            "\n",
            gguf_path(f), gguf_file_size(f), human((double)gguf_file_size(f), b1, sizeof b1),
            gguf_version(f), gguf_alignment(f), gguf_data_offset(f));

    fprintf(out, "\nmetadata (%" PRIu64 " keys):\n", gguf_n_kv(f));
    const gguf_kv *tmpl = NULL;
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        fputs("  ", out);
        int w = (int)put_escaped(out, kv->key, 200);
        fprintf(out, "%*s ", w < NAME_COLS ? NAME_COLS - w : 0, "");
        if (kv->type == GGUF_ARRAY) {
            char t[32];
            snprintf(t, sizeof t, "%s[]", gguf_vtype_name(kv->arr.type));
            fprintf(out, "%-10s ", t);
            put_array(out, &kv->arr);
        } else {
            fprintf(out, "%-10s ", gguf_vtype_name(kv->type));
            if (kv->type == GGUF_STRING) {
                gguf_str s = gguf_kv_str(kv);
                if (gguf_str_eq(kv->key, "tokenizer.chat_template")) {
                    tmpl = kv;
                    fprintf(out, "(%" PRIu64 " bytes, printed in full below)", s.len);
                } else {
                    put_str_value(out, s);
                }
            } else {
                put_scalar(out, kv->type, kv->value);
            }
        }
        fputc('\n', out);
    }

    fprintf(out, "\ntensors (%" PRIu64 "):\n", gguf_n_tensors(f));
    fprintf(out, "  %-*s %-7s %-24s %14s\n", NAME_COLS, "name", "type", "shape", "bytes");
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char shape[96];
        int p = snprintf(shape, sizeof shape, "[");
        for (uint32_t d = 0; d < t->n_dims && p < (int)sizeof shape; d++)
            p += snprintf(shape + p, sizeof shape - (size_t)p, "%s%" PRId64, d ? ", " : "",
                          t->ne[d]);
        if (p < (int)sizeof shape) snprintf(shape + p, sizeof shape - (size_t)p, "]");
        fputs("  ", out);
        int w = (int)put_escaped(out, t->name, 200);
        fprintf(out, "%*s %-7s %-24s %14" PRIu64 "\n", w < NAME_COLS ? NAME_COLS - w : 0, "",
                ht_type_get(t->type)->name, shape, t->nbytes);
    }

    summary s;
    summarize(f, &s);
    fprintf(out, "\nparameters: %" PRIu64 " (%.3f M)\n", s.n_params, (double)s.n_params / 1e6);
    fprintf(out, "tensor bytes: %" PRIu64 " (%s), %.3f bits per parameter\n", s.n_bytes,
            human((double)s.n_bytes, b1, sizeof b1),
            s.n_params ? 8.0 * (double)s.n_bytes / (double)s.n_params : 0.0);
    if (s.n_bytes) {
        fprintf(out, "bytes per type:\n");
        for (int t = 0; t < HT_TYPE_COUNT; t++) {
            if (!s.type_count[t]) continue;
            fprintf(out,
                    "  %-7s %5" PRIu64 " tensors %14" PRIu64 " elements %14" PRIu64
                    " bytes (%s, %.1f%%)%s\n",
                    ht_type_get((uint32_t)t)->name, s.type_count[t], s.type_elems[t],
                    s.type_bytes[t], human((double)s.type_bytes[t], b1, sizeof b1),
                    100.0 * (double)s.type_bytes[t] / (double)s.n_bytes,
                    ht_type_get((uint32_t)t)->can_compute ? "" : "  (hearth cannot run this type)");
        }
    }
    if (s.has_kv) {
        fprintf(out,
                "KV cache bytes per token: %" PRIu64 " (F32 cache), %" PRIu64
                " (F16 cache)\n  = %s * element size\n",
                s.kv_elems_per_token * 4, s.kv_elems_per_token * 2, s.kv_formula);
        if (s.n_ctx)
            fprintf(out, "  at the full context of %u tokens: %s (F32), %s (F16)\n", s.n_ctx,
                    human((double)s.kv_elems_per_token * 4 * s.n_ctx, b1, sizeof b1),
                    human((double)s.kv_elems_per_token * 2 * s.n_ctx, b2, sizeof b2));
    } else if (gguf_n_tensors(f)) {
        fprintf(out, "KV cache bytes per token: unknown (no attention shape keys for '%s')\n",
                s.arch[0] ? s.arch : "?");
    }
    if (tmpl) {
        gguf_str t = gguf_kv_str(tmpl);
        fprintf(out, "\nchat template (tokenizer.chat_template, %" PRIu64 " bytes):\n", t.len);
        fwrite(t.ptr, 1, (size_t)t.len, out);
        if (t.len && t.ptr[t.len - 1] != '\n') fputc('\n', out);
    }
}

/* ---- JSON report ---- */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static int utf8_len(const unsigned char *p, uint64_t n) {
    unsigned char c = p[0];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || (uint64_t)len > n) return 0;
    for (int i = 1; i < len; i++)
        if ((p[i] & 0xc0) != 0x80) return 0;
    if (len == 2 && c < 0xc2) return 0;                  /* overlong */
    if (len == 3 && c == 0xe0 && p[1] < 0xa0) return 0;  /* overlong */
    if (len == 3 && c == 0xed && p[1] >= 0xa0) return 0; /* surrogate */
    if (len == 4 && (c > 0xf4 || (c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
        return 0;
    return len;
}

/* A JSON string; invalid UTF-8 becomes U+FFFD so the output always parses. */
static void json_str(FILE *out, gguf_str s, uint64_t max) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    uint64_t n = s.len < max ? s.len : max;
    fputc('"', out);
    for (uint64_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c), i++;
        else if (c == '\n')
            fputs("\\n", out), i++;
        else if (c == '\t')
            fputs("\\t", out), i++;
        else if (c < 32 || c == 127)
            fprintf(out, "\\u%04x", c), i++;
        else {
            int l = utf8_len(p + i, n - i);
            if (l)
                fwrite(p + i, 1, (size_t)l, out), i += (uint64_t)l;
            else
                fputs("\\ufffd", out), i++;
        }
    }
    fputc('"', out);
}

static void json_cstr(FILE *out, const char *s) {
    json_str(out, (gguf_str){s, strlen(s)}, UINT64_MAX);
}

static void json_scalar(FILE *out, gguf_vtype t, const uint8_t *p) {
    if (t == GGUF_FLOAT32 || t == GGUF_FLOAT64) {
        gguf_arr one = {t, 1, p, NULL};
        double v = gguf_arr_float(&one, 0);
        if (v != v || v - v != 0)
            fputs("null", out); /* NaN / inf: not JSON */
        else
            fprintf(out, "%.17g", v);
        return;
    }
    put_scalar(out, t, p);
}

static void print_json(FILE *out, const gguf_file *f) {
    fputs("{\"file\": ", out);
    json_cstr(out, gguf_path(f));
    fprintf(out, ", \"size\": %zu, \"version\": %u, \"alignment\": %u, \"data_offset\": %" PRIu64,
            gguf_file_size(f), gguf_version(f), gguf_alignment(f), gguf_data_offset(f));
    fputs(",\n \"metadata\": {", out);
    for (uint64_t i = 0; i < gguf_n_kv(f); i++) {
        const gguf_kv *kv = gguf_kv_at(f, i);
        fputs(i ? ",\n  " : "\n  ", out);
        json_str(out, kv->key, UINT64_MAX);
        fputs(": ", out);
        if (kv->type == GGUF_STRING) {
            json_str(out, gguf_kv_str(kv), UINT64_MAX);
        } else if (kv->type == GGUF_ARRAY) {
            fprintf(out, "{\"type\": \"%s\", \"length\": %" PRIu64 ", \"first\": [",
                    gguf_vtype_name(kv->arr.type), kv->arr.n);
            for (uint64_t j = 0; j < kv->arr.n && j < ARR_SHOW; j++) {
                if (j) fputs(", ", out);
                if (kv->arr.type == GGUF_STRING)
                    json_str(out, gguf_arr_str(&kv->arr, j), UINT64_MAX);
                else
                    json_scalar(out, kv->arr.type,
                                kv->arr.data + j * gguf_vtype_size(kv->arr.type));
            }
            fputs("]}", out);
        } else {
            json_scalar(out, kv->type, kv->value);
        }
    }
    fputs("},\n \"tensors\": [", out);
    for (uint64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        fputs(i ? ",\n  {\"name\": " : "\n  {\"name\": ", out);
        json_str(out, t->name, UINT64_MAX);
        fprintf(out, ", \"type\": \"%s\", \"shape\": [", ht_type_get(t->type)->name);
        for (uint32_t d = 0; d < t->n_dims; d++)
            fprintf(out, "%s%" PRId64, d ? ", " : "", t->ne[d]);
        fprintf(out, "], \"offset\": %" PRIu64 ", \"bytes\": %" PRIu64 "}", t->offset, t->nbytes);
    }
    summary s;
    summarize(f, &s);
    fprintf(out,
            "],\n \"n_params\": %" PRIu64 ", \"tensor_bytes\": %" PRIu64 ",\n \"bytes_by_type\": {",
            s.n_params, s.n_bytes);
    bool first = true;
    for (int t = 0; t < HT_TYPE_COUNT; t++) {
        if (!s.type_count[t]) continue;
        fprintf(out,
                "%s\"%s\": {\"tensors\": %" PRIu64 ", \"elements\": %" PRIu64
                ", \"bytes\": %" PRIu64 "}",
                first ? "" : ", ", ht_type_get((uint32_t)t)->name, s.type_count[t], s.type_elems[t],
                s.type_bytes[t]);
        first = false;
    }
    fputs("}", out);
    if (s.has_kv)
        fprintf(out, ",\n \"kv_bytes_per_token\": {\"f32\": %" PRIu64 ", \"f16\": %" PRIu64 "}",
                s.kv_elems_per_token * 4, s.kv_elems_per_token * 2);
    fputs("}\n", out);
}

static void usage(FILE *out) {
    fputs("usage: hearth inspect [--json] MODEL.gguf\n"
          "  Shows the metadata, tensors, parameter count, bytes per type and KV cache\n"
          "  bytes per token of a GGUF file. --json prints the same as one JSON object.\n",
          out);
}

int cmd_inspect(int argc, char **argv) {
    bool json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "hearth inspect: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (path) {
            fprintf(stderr, "hearth inspect: expected one file, found '%s' and '%s'\n", path,
                    argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    hearth_err err;
    char resolved[4096];
    if (cli_model_path("inspect", path, resolved, sizeof resolved) < 0) return 1;
    path = resolved;
    gguf_file *f = gguf_open(path, &err);
    if (!f) {
        fprintf(stderr, "hearth inspect: %s\n", err.msg); /* the message starts with the path */
        return 1;
    }
    if (json)
        print_json(stdout, f);
    else
        print_text(stdout, f);
    gguf_close(f);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "hearth inspect: %s: cannot write the report\n", path);
        return 1;
    }
    return 0;
}
