/* BPE pre-tokenizer on PCRE2. The regex lists follow the reference
 * tokenizer (llama.cpp's llm_tokenizer_bpe, which took them from each model's
 * tokenizer.json); where the reference runs a hand-written splitter instead of
 * the regex (gpt-2 and llama3 patterns), the pattern here is the one that
 * splitter implements (the gpt-2 one gains the trailing `|\s+`).
 *
 * Cost: one pcre2_match per piece found, JIT-compiled when available. */
#include "text/pretok.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdlib.h>
#include <string.h>

#define MAX_REGEXES 6

/* 's|'t|... ?\p{L}+ ... as GPT-2 (and the reference's custom splitter). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

#define RE_LLAMA3                                                                                  \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"   \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_QWEN2                                                                                   \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"        \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* CJK ranges used by the DeepSeek splitters: U+4E00-U+9FA5, U+0800-U+4E00, U+AC00-U+D7FF. */
#define RE_DEEPSEEK_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

typedef struct pre_def {
    const char *names; /* '|'-separated names that select this list */
    tok_pretok_info info;
    const char *re[MAX_REGEXES];
} pre_def;

static const pre_def defs[] = {
    {"default",
     {false, false},
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"llama3|llama-v3|llama-bpe|falcon3|pixtral", {true, true}, {RE_LLAMA3}},
    {"dbrx|smaug-bpe", {false, false}, {RE_LLAMA3}},
    {"deepseek-llm",
     {false, false},
     {"[\r\n]",
      "\\s?[\\x{41}-\\x{5A}\\x{61}-\\x{7A}\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}"
      "\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}"
      "\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}"
      "\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}"
      "\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"
      "\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}"
      "\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}"
      "\\x{1F50}-\\x{1F57}\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}"
      "\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
      "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}"
      "\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}"
      "\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}"
      "\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}"
      "\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"
      "\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-\\x{FB06}"
      "\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}"
      "\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"
      "\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+"}},
    {"deepseek-coder",
     {false, false},
     {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"}},
    {"deepseek-v3",
     {false, false},
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}},
    {"falcon", {false, false}, {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"}},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b",
     {false, false},
     {"\\p{N}", RE_GPT2}},
    {"gpt-2|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|mpt|olmo|jais|exaone4",
     {false, false},
     {RE_GPT2}},
    {"qwen2|deepseek-r1-qwen|megrez|stablelm2|hunyuan", {false, false}, {RE_QWEN2}},
    /* Not checked against fixtures here: the original tokenizer.json regexes,
     * which PCRE2 runs as they are. */
    {"gpt-4o|llama4",
     {false, false},
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}"
      "\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}"
      "\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|"
      "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}},
    {"tekken",
     {true, true},
     {"[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}"
      "\\p{M}]+|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}"
      "\\p{Lm}\\p{Lo}\\p{M}]*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+"}},
    {"poro-chat|bloom|gpt3-finnish",
     {false, false},
     {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+"}},
    {"viking",
     {false, false},
     {" ?[^(\\s|.,!?\\x{2026}\\x{3002}\\x{FF0C}\\x{3001}\\x{964}\\x{6D4}\\x{60C})]+", "\\p{N}"}},
};

const char *tok_pretok_name_at(size_t i) {
    return i < sizeof defs / sizeof defs[0] ? defs[i].names : NULL;
}

struct tok_pretok {
    size_t n_re;
    pcre2_code *re[MAX_REGEXES];
};

const char *tok_pretok_known(void) {
    return "default, gpt-2, llama-bpe (llama3), qwen2, deepseek-r1-qwen, deepseek-llm, "
           "deepseek-coder, deepseek-v3, falcon, starcoder, dbrx, gpt-4o, llama4, tekken, bloom, "
           "viking, and aliases of these";
}

static bool name_in(const char *names, const char *name) {
    size_t n = strlen(name);
    for (const char *p = names; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

void tok_pretok_free(tok_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_re; i++) pcre2_code_free(p->re[i]);
    free(p);
}

tok_pretok *tok_pretok_new(const char *name, tok_pretok_info *info, hearth_err *err) {
    const pre_def *def = NULL;
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++)
        if (name_in(defs[i].names, name)) def = &defs[i];
    if (!def) {
        hearth_errf(err, "unknown pre-tokenizer '%s' (tokenizer.ggml.pre); hearth knows: %s", name,
                    tok_pretok_known());
        return NULL;
    }
    tok_pretok *p = calloc(1, sizeof *p);
    if (!p) {
        hearth_errf(err, "out of memory for the pre-tokenizer");
        return NULL;
    }
    for (size_t i = 0; i < MAX_REGEXES && def->re[i]; i++) {
        int code;
        PCRE2_SIZE off;
        p->re[i] = pcre2_compile((PCRE2_SPTR)def->re[i], PCRE2_ZERO_TERMINATED,
                                 PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &code, &off, NULL);
        if (!p->re[i]) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(code, msg, sizeof msg);
            hearth_errf(err, "pre-tokenizer '%s': regex %zu does not compile at offset %zu: %s",
                        name, i, (size_t)off, (const char *)msg);
            tok_pretok_free(p);
            return NULL;
        }
        p->n_re = i + 1;
        (void)pcre2_jit_compile(p->re[i], PCRE2_JIT_COMPLETE); /* interpreter if no JIT */
    }
    if (info) *info = def->info;
    return p;
}

static int push(tok_spans *s, size_t off, size_t len, hearth_err *err) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        tok_span *v = realloc(s->v, cap * sizeof *v);
        if (!v) return hearth_errf(err, "out of memory splitting text into words");
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = (tok_span){off, len};
    return 0;
}

static size_t char_len(const uint8_t *s, size_t n) {
    size_t k = 1;
    while (k < n && (s[k] & 0xC0) == 0x80) k++;
    return k;
}

/* Splits every span of `in` by regex `re` into `out`: unmatched stretches and
 * matches, in order. The subject of each match is the span alone, so
 * lookaheads and `$` see the span's end as the end of the text. */
static int split_one(const pcre2_code *re, const uint8_t *text, const tok_spans *in, tok_spans *out,
                     pcre2_match_data *md, pcre2_match_context *mc, hearth_err *err) {
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const uint8_t *subj = text + in->v[i].off;
        size_t n = in->v[i].len, pos = 0, ustart = 0;
        if (char_len(subj, n) == n) { /* one character: no regex can split it */
            if (push(out, in->v[i].off, n, err)) return -1;
            continue;
        }
        while (pos < n) {
            int rc = pcre2_match(re, subj, n, pos, PCRE2_NO_UTF_CHECK, md, mc);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            if (rc < 0) {
                PCRE2_UCHAR msg[256];
                pcre2_get_error_message(rc, msg, sizeof msg);
                return hearth_errf(err, "pre-tokenizer regex failed on this input: %s",
                                   (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t m0 = ov[0], m1 = ov[1];
            if (m1 <= m0) { /* empty match: the character stays unmatched */
                pos = m0 + char_len(subj + m0, n - m0);
                continue;
            }
            if (m0 > ustart && push(out, in->v[i].off + ustart, m0 - ustart, err)) return -1;
            if (push(out, in->v[i].off + m0, m1 - m0, err)) return -1;
            ustart = pos = m1;
        }
        if (ustart < n && push(out, in->v[i].off + ustart, n - ustart, err)) return -1;
    }
    return 0;
}

struct tok_pretok_ctx {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js;
};

void tok_pretok_ctx_free(tok_pretok_ctx *c) {
    if (!c) return;
    pcre2_jit_stack_free(c->js);
    pcre2_match_context_free(c->mc);
    pcre2_match_data_free(c->md);
    free(c);
}

tok_pretok_ctx *tok_pretok_ctx_new(hearth_err *err) {
    tok_pretok_ctx *c = calloc(1, sizeof *c);
    if (c) {
        c->md = pcre2_match_data_create(16, NULL);
        c->mc = pcre2_match_context_create(NULL);
        c->js = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    }
    if (!c || !c->md || !c->mc || !c->js) {
        tok_pretok_ctx_free(c);
        hearth_errf(err, "out of memory for the pre-tokenizer's match state");
        return NULL;
    }
    pcre2_jit_stack_assign(c->mc, NULL, c->js);
    return c;
}

int tok_pretok_split(const tok_pretok *p, tok_pretok_ctx *c, const uint8_t *text, size_t n,
                     tok_spans *out, tok_spans *tmp, hearth_err *err) {
    out->n = 0;
    if (n == 0) return 0;
    if (push(out, 0, n, err)) return -1;
    for (size_t r = 0; r < p->n_re; r++) {
        if (split_one(p->re[r], text, out, tmp, c->md, c->mc, err)) return -1;
        tok_spans t = *out;
        *out = *tmp;
        *tmp = t;
    }
    return 0;
}
