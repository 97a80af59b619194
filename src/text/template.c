/* Jinja2 subset for chat templates: lexer, parser, evaluator (see template.h).
 *
 * Memory: everything a parse or a render allocates comes from one arena that
 * is freed at the end, so values need no reference counts. Errors inside the
 * recursive parser and evaluator unwind with longjmp to the public entry
 * point, which turns them into a hearth_err value; this is safe because no
 * allocation outside the arena is live between setjmp and longjmp. */
#include "text/template.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* Arena                                                                     */

typedef struct ablk {
    struct ablk *next;
    size_t cap, used;
    _Alignas(16) unsigned char data[];
} ablk;

typedef struct arena {
    ablk *head;
    size_t total, limit;
} arena;

/* NULL when over the arena's limit or out of memory. */
static void *arena_alloc(arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (n > a->limit) return NULL;
    if (a->head && a->head->cap - a->head->used >= n) {
        void *p = a->head->data + a->head->used;
        a->head->used += n;
        return p;
    }
    size_t cap = n > 65536 ? n : 65536;
    if (a->total + cap > a->limit) return NULL;
    ablk *b = malloc(sizeof *b + cap);
    if (!b) return NULL;
    b->cap = cap;
    b->used = n;
    /* A big one-off block goes behind the head so the head's free room stays usable. */
    if (a->head && cap == n && a->head->cap - a->head->used > 4096) {
        b->next = a->head->next;
        a->head->next = b;
    } else {
        b->next = a->head;
        a->head = b;
    }
    a->total += cap;
    return b->data;
}

static void arena_free(arena *a) {
    ablk *b = a->head;
    while (b) {
        ablk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */

typedef enum vtype {
    V_UNDEF,
    V_NONE,
    V_BOOL,
    V_INT,
    V_FLOAT,
    V_STR,
    V_LIST, /* list or tuple */
    V_DICT,
    V_NS,   /* namespace(): a dict with attribute access and assignment */
    V_FUNC, /* macro, builtin, bound method, caller */
    V_LOOP, /* the `loop` variable of a for loop */
    V_NOARG /* internal: argument not given */
} vtype;

typedef struct tstr {
    size_t len;
    char s[]; /* len bytes + NUL */
} tstr;

typedef struct tval tval;
typedef struct tlist tlist;
typedef struct tdict tdict;
typedef struct tfunc tfunc;
typedef struct tloop tloop;

struct tval {
    uint8_t t;
    union {
        bool b;
        int64_t i;
        double f;
        tstr *s; /* V_STR; V_UNDEF: the reason, for error messages (may be NULL) */
        tlist *l;
        tdict *d;
        tfunc *fn;
        tloop *loop;
    };
};

struct tlist {
    size_t n, cap;
    tval *v;
    bool tuple, frozen;
};

struct tdict {
    size_t n, cap;
    tval *k, *v;
    uint32_t *idx; /* open addressing, entry index + 1; NULL while small */
    size_t idx_cap;
    bool frozen;
};

struct tloop {
    int64_t index0, length;
    tlist *items;
    int depth;
};

typedef struct scope scope;
struct node;

enum { FN_BUILTIN, FN_METHOD, FN_MACRO, FN_CALLER };

struct tfunc {
    int kind;
    int id;         /* builtin id */
    tval self;      /* bound method receiver */
    tstr *name;     /* method or macro name */
    struct node *n; /* macro or call block */
    scope *sc;      /* caller: the scope of the call block */
};

static const tval NONE = {.t = V_NONE};
static const tval NOARG = {.t = V_NOARG};

static tval mk_bool(bool b) {
    tval v = {.t = V_BOOL};
    v.b = b;
    return v;
}
static tval mk_int(int64_t i) {
    tval v = {.t = V_INT};
    v.i = i;
    return v;
}
static tval mk_float(double f) {
    tval v = {.t = V_FLOAT};
    v.f = f;
    return v;
}
static tval mk_strv(tstr *s) {
    tval v = {.t = V_STR};
    v.s = s;
    return v;
}
static tval mk_listv(tlist *l) {
    tval v = {.t = V_LIST};
    v.l = l;
    return v;
}
static tval mk_dictv(tdict *d) {
    tval v = {.t = V_DICT};
    v.d = d;
    return v;
}

/* ------------------------------------------------------------------------ */
/* UTF-8 and Python's idea of whitespace                                     */

/* Decodes one code point at s[i] (i < n); an invalid byte decodes as itself. */
static uint32_t utf8_next(const char *s, size_t n, size_t *i) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned char c = u[*i];
    size_t need = (c >= 0xf0 && c < 0xf8)   ? 3
                  : (c >= 0xe0 && c < 0xf0) ? 2
                  : (c >= 0xc2 && c < 0xe0) ? 1
                                            : 0;
    if (need == 0 || *i + need >= n) {
        (*i)++;
        return c;
    }
    uint32_t cp = c & (0x3f >> need);
    for (size_t k = 1; k <= need; k++) {
        if ((u[*i + k] & 0xc0) != 0x80) {
            (*i)++;
            return c;
        }
        cp = cp << 6 | (u[*i + k] & 0x3f);
    }
    *i += need + 1;
    return cp;
}

static size_t utf8_put(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static bool py_space(uint32_t c) {
    return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Length in bytes of the whitespace code point at s[i], 0 if none. */
static size_t space_at(const char *s, size_t n, size_t i) {
    size_t j = i;
    uint32_t c = utf8_next(s, n, &j);
    return py_space(c) ? j - i : 0;
}

/* Byte offset where trailing whitespace of s[0..n) begins. */
static size_t rstrip_ws(const char *s, size_t n) {
    size_t i = 0, end = 0;
    while (i < n) {
        uint32_t c = utf8_next(s, n, &i);
        if (!py_space(c)) end = i;
    }
    return end;
}

static size_t lstrip_ws(const char *s, size_t n) {
    size_t i = 0, k;
    while (i < n && (k = space_at(s, n, i)) > 0) i += k;
    return i;
}

static size_t utf8_count(const char *s, size_t n) {
    size_t c = 0, i = 0;
    while (i < n) {
        utf8_next(s, n, &i);
        c++;
    }
    return c;
}

/* ------------------------------------------------------------------------ */
/* Lexer                                                                     */

typedef enum ttype {
    T_TEXT,
    T_VAR_BEGIN,
    T_VAR_END,
    T_BLOCK_BEGIN,
    T_BLOCK_END,
    T_NAME,
    T_STRING,
    T_INT,
    T_FLOAT,
    T_OP,
    T_EOF
} ttype;

typedef enum op {
    OP_ADD = 1,
    OP_SUB,
    OP_MUL,
    OP_DIV,
    OP_FLOORDIV,
    OP_MOD,
    OP_POW,
    OP_TILDE,
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_ASSIGN,
    OP_DOT,
    OP_COMMA,
    OP_COLON,
    OP_PIPE,
    OP_LPAREN,
    OP_RPAREN,
    OP_LBRACKET,
    OP_RBRACKET,
    OP_LBRACE,
    OP_RBRACE,
    OP_IN, /* compare ops only, never lexed */
    OP_NOTIN
} op;

static const char *const op_text[] = {
    "",   "+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">",
    ">=", "=", ".", ",", ":", "|",  "(", ")",  "[", "]",  "{",  "}", "in", "not in"};

typedef struct tok {
    uint8_t type, op;
    int line, col;
    tstr *s; /* text, name, string value */
    int64_t i;
    double f;
} tok;

typedef struct parser {
    jmp_buf jb;
    hearth_err *err;
    arena *ar;
    const char *src;
    size_t n;
    tok *toks;
    size_t ntok, captok;
    size_t pos; /* parser: current token */
    int depth;
    int loops; /* for loops around the current point (break/continue) */
    /* lexer position */
    size_t lp;
    int line;
    size_t line_start;
} parser;

static _Noreturn void pfail(parser *P, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static _Noreturn void pfail(parser *P, int line, int col, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hearth_errf(P->err, "template line %d column %d: %s", line, col, msg);
    longjmp(P->jb, 1);
}

static void *palloc(parser *P, size_t n) {
    void *p = arena_alloc(P->ar, n);
    if (!p) pfail(P, P->line, 0, "out of memory while parsing the template");
    return p;
}

static tstr *pstr(parser *P, const char *s, size_t n) {
    tstr *t = palloc(P, sizeof *t + n + 1);
    t->len = n;
    if (n) memcpy(t->s, s, n);
    t->s[n] = 0;
    return t;
}

static tok *push_tok(parser *P, ttype type, int line, int col) {
    if (P->ntok == P->captok) {
        size_t nc = P->captok ? P->captok * 2 : 256;
        tok *nt = palloc(P, nc * sizeof *nt);
        if (P->ntok) memcpy(nt, P->toks, P->ntok * sizeof *nt);
        P->toks = nt;
        P->captok = nc;
    }
    tok *t = &P->toks[P->ntok++];
    memset(t, 0, sizeof *t);
    t->type = (uint8_t)type;
    t->line = line;
    t->col = col;
    return t;
}

/* Line and column of byte offset p (1-based). Calls come in increasing order
 * of p, so the scan resumes where the last one stopped. */
static void line_col(parser *P, size_t p, int *line, int *col) {
    if (p > P->n) p = P->n;
    if (p < P->lp) {
        P->lp = 0;
        P->line = 1;
        P->line_start = 0;
    }
    for (size_t i = P->lp; i < p; i++)
        if (P->src[i] == '\n') {
            P->line++;
            P->line_start = i + 1;
        }
    P->lp = p;
    *line = P->line;
    *col = (int)(p - P->line_start + 1);
}

static bool is_name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_name_char(char c) {
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* A string literal starting at P->src[p] (a quote). Python escapes. */
static size_t lex_string(parser *P, size_t p, tok *t) {
    char q = P->src[p];
    size_t i = p + 1, start = p + 1;
    /* first pass: find the end */
    while (i < P->n && P->src[i] != q) {
        if (P->src[i] == '\\') i++;
        i++;
    }
    if (i >= P->n) pfail(P, t->line, t->col, "unterminated string literal");
    size_t end = i;
    char *o = palloc(P, sizeof(tstr) + (end - start) + 1);
    tstr *s = (tstr *)o;
    char *w = s->s;
    for (size_t k = start; k < end; k++) {
        char c = P->src[k];
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        char e = P->src[++k];
        switch (e) {
        case 'n':
            *w++ = '\n';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '\'':
            *w++ = '\'';
            break;
        case '"':
            *w++ = '"';
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'v':
            *w++ = '\v';
            break;
        case 'a':
            *w++ = '\a';
            break;
        case '0':
            *w++ = '\0';
            break;
        case '\n':
            break; /* line continuation */
        case 'x':
        case 'u':
        case 'U': {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int d = 0; d < nd; d++) {
                char h = k + 1 < end ? P->src[k + 1] : 0;
                int hv = h >= '0' && h <= '9'   ? h - '0'
                         : h >= 'a' && h <= 'f' ? h - 'a' + 10
                         : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                : -1;
                if (hv < 0) pfail(P, t->line, t->col, "bad \\%c escape in string literal", e);
                cp = cp << 4 | (uint32_t)hv;
                k++;
            }
            if (cp > 0x10ffff) pfail(P, t->line, t->col, "\\%c escape out of range", e);
            w += utf8_put(w, cp); /* never longer than the escape itself */
            break;
        }
        default:
            *w++ = '\\';
            *w++ = e;
        }
    }
    s->len = (size_t)(w - s->s);
    *w = 0;
    t->s = s;
    return end + 1;
}

/* Lexes tokens inside a tag until its end ("%}" or "}}", with -/+ modifiers).
 * Returns the position after the end marker; *mod gets '-', '+' or 0. */
static size_t lex_tag(parser *P, size_t p, char endc, int *mod) {
    int bal = 0;
    const char *s = P->src;
    size_t n = P->n;
    for (;;) {
        while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
        int line, col;
        line_col(P, p, &line, &col);
        if (p >= n)
            pfail(P, line, col, "unexpected end of template inside a tag (missing '%c}')", endc);
        if (bal == 0) {
            if ((s[p] == '-' || s[p] == '+') && p + 2 < n && s[p + 1] == endc && s[p + 2] == '}') {
                *mod = s[p];
                return p + 3;
            }
            if (s[p] == endc && p + 1 < n && s[p + 1] == '}') {
                *mod = 0;
                return p + 2;
            }
        }
        tok *t = push_tok(P, T_OP, line, col);
        char c = s[p];
        if (is_name_start(c)) {
            size_t st = p;
            while (p < n && is_name_char(s[p])) p++;
            t->type = T_NAME;
            t->s = pstr(P, s + st, p - st);
            continue;
        }
        if (c >= '0' && c <= '9') {
            size_t st = p;
            bool is_float = false;
            char buf[64];
            size_t bl = 0;
            int base = 10;
            if (c == '0' && p + 1 < n && strchr("xXoObB", s[p + 1]) && s[p + 1]) {
                base = (s[p + 1] | 32) == 'x' ? 16 : (s[p + 1] | 32) == 'o' ? 8 : 2;
                p += 2;
                while (p < n && (is_name_char(s[p]))) {
                    if (s[p] != '_' && bl < sizeof buf - 1) buf[bl++] = s[p];
                    p++;
                }
            } else {
                while (p < n && ((s[p] >= '0' && s[p] <= '9') || s[p] == '_')) {
                    if (s[p] != '_' && bl < sizeof buf - 1) buf[bl++] = s[p];
                    p++;
                }
                bool after_dot = st > 0 && s[st - 1] == '.';
                if (!after_dot && p + 1 < n && s[p] == '.' && s[p + 1] >= '0' && s[p + 1] <= '9') {
                    is_float = true;
                    buf[bl++] = s[p++];
                    while (p < n && ((s[p] >= '0' && s[p] <= '9') || s[p] == '_')) {
                        if (s[p] != '_' && bl < sizeof buf - 1) buf[bl++] = s[p];
                        p++;
                    }
                }
                if (!after_dot && p < n && (s[p] == 'e' || s[p] == 'E')) {
                    size_t q = p + 1;
                    if (q < n && (s[q] == '+' || s[q] == '-')) q++;
                    if (q < n && s[q] >= '0' && s[q] <= '9') {
                        is_float = true;
                        while (p < q && bl < sizeof buf - 1) buf[bl++] = s[p++];
                        while (p < n && ((s[p] >= '0' && s[p] <= '9') || s[p] == '_')) {
                            if (s[p] != '_' && bl < sizeof buf - 1) buf[bl++] = s[p];
                            p++;
                        }
                    }
                }
            }
            if (bl >= sizeof buf - 1) pfail(P, line, col, "number literal too long");
            buf[bl] = 0;
            char *e = NULL;
            if (is_float) {
                t->type = T_FLOAT;
                t->f = strtod(buf, &e);
            } else {
                t->type = T_INT;
                errno = 0;
                unsigned long long u = strtoull(buf, &e, base);
                if (errno || u > INT64_MAX) pfail(P, line, col, "integer literal out of range");
                t->i = (int64_t)u;
            }
            if (bl == 0 || (e && *e)) pfail(P, line, col, "malformed number literal");
            continue;
        }
        if (c == '\'' || c == '"') {
            t->type = T_STRING;
            p = lex_string(P, p, t);
            continue;
        }
        static const char *const ops2[] = {"//", "**", "==", "!=", "<=", ">="};
        static const uint8_t opc2[] = {OP_FLOORDIV, OP_POW, OP_EQ, OP_NE, OP_LE, OP_GE};
        bool found = false;
        for (int k = 0; k < 6 && p + 1 < n; k++)
            if (s[p] == ops2[k][0] && s[p + 1] == ops2[k][1]) {
                t->op = opc2[k];
                p += 2;
                found = true;
                break;
            }
        if (found) continue;
        static const char ops1[] = "+-*/%~<>=.,:|()[]{}";
        static const uint8_t opc1[] = {OP_ADD,      OP_SUB,      OP_MUL,    OP_DIV,    OP_MOD,
                                       OP_TILDE,    OP_LT,       OP_GT,     OP_ASSIGN, OP_DOT,
                                       OP_COMMA,    OP_COLON,    OP_PIPE,   OP_LPAREN, OP_RPAREN,
                                       OP_LBRACKET, OP_RBRACKET, OP_LBRACE, OP_RBRACE};
        const char *hit = c ? strchr(ops1, c) : NULL;
        if (!hit) {
            if ((unsigned char)c >= 0x20 && (unsigned char)c < 0x7f)
                pfail(P, line, col, "unexpected character '%c' in tag", c);
            pfail(P, line, col, "unexpected byte 0x%02x in tag", (unsigned char)c);
        }
        t->op = opc1[hit - ops1];
        if (t->op == OP_LPAREN || t->op == OP_LBRACKET || t->op == OP_LBRACE) {
            if (++bal > TMPL_MAX_NESTING) pfail(P, line, col, "brackets nested too deeply");
        }
        if (t->op == OP_RPAREN || t->op == OP_RBRACKET || t->op == OP_RBRACE) {
            if (bal > 0) bal--;
        }
        p++;
    }
}

/* Is "{% name" (with optional -/+) at p, followed by only spaces until "%}"?
 * Returns the position after "%}" or 0; lmod and rmod get the modifiers. */
static size_t match_simple_tag(const parser *P, size_t p, const char *name, int *lmod, int *rmod) {
    const char *s = P->src;
    size_t n = P->n, nl = strlen(name);
    if (p + 2 > n || s[p] != '{' || s[p + 1] != '%') return 0;
    p += 2;
    *lmod = 0;
    if (p < n && (s[p] == '-' || s[p] == '+')) *lmod = s[p++];
    while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
    if (p + nl > n || memcmp(s + p, name, nl) != 0) return 0;
    p += nl;
    if (p < n && is_name_char(s[p])) return 0;
    while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')) p++;
    *rmod = 0;
    if (p < n && (s[p] == '-' || s[p] == '+')) *rmod = s[p++];
    if (p + 2 > n || s[p] != '%' || s[p + 1] != '}') return 0;
    return p + 2;
}

static void emit_text(parser *P, size_t a, size_t b) {
    if (b <= a) return;
    int line, col;
    line_col(P, a, &line, &col);
    tok *t = push_tok(P, T_TEXT, line, col);
    t->s = pstr(P, P->src + a, b - a);
}

/* Applies the whitespace rules of the tag starting at `tag` to the text
 * [a, tag): '-' strips all whitespace before it; lstrip_blocks strips spaces
 * and tabs between the start of the line and a block or comment tag. */
static size_t strip_before_tag(parser *P, size_t a, size_t tag, int kind, int mod,
                               bool line_starting) {
    const char *s = P->src;
    if (mod == '-') return a + rstrip_ws(s + a, tag - a);
    if (mod == '+' || kind == '{') return tag;
    size_t lpos = tag;
    while (lpos > a && s[lpos - 1] != '\n') lpos--;
    if (lpos == a && !(lpos > a) && !line_starting) {
        /* no newline in the text and the previous token did not end a line */
        return tag;
    }
    for (size_t i = lpos; i < tag; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\f' && s[i] != '\v' && s[i] != '\r') return tag;
    return lpos;
}

/* Whitespace after a tag end: '-' strips all, trim_blocks one newline after
 * blocks and comments. Returns the new position; *line_starting says whether
 * what was consumed ended a line. */
static size_t skip_after_tag(parser *P, size_t p, int kind, int mod, bool *line_starting) {
    const char *s = P->src;
    size_t n = P->n;
    if (mod == '-') {
        size_t k;
        *line_starting = p > 0 && s[p - 1] == '\n';
        while (p < n && (k = space_at(s, n, p)) > 0) {
            p += k;
            *line_starting = s[p - 1] == '\n';
        }
        return p;
    }
    *line_starting = false;
    if (mod != '+' && kind != '{' && p < n && s[p] == '\n') {
        *line_starting = true;
        return p + 1;
    }
    return p;
}

static void lex(parser *P) {
    const char *s = P->src;
    size_t n = P->n, p = 0;
    bool line_starting = true;
    while (p < n) {
        /* find the next tag start */
        size_t q = p;
        while (q + 1 < n &&
               !(s[q] == '{' && (s[q + 1] == '{' || s[q + 1] == '%' || s[q + 1] == '#')))
            q++;
        if (q + 1 >= n) {
            emit_text(P, p, n);
            break;
        }
        int kind = s[q + 1];
        int lmod = (q + 2 < n && (s[q + 2] == '-' || s[q + 2] == '+')) ? s[q + 2] : 0;
        size_t tend = strip_before_tag(P, p, q, kind, lmod, line_starting);
        emit_text(P, p, tend);
        int line, col;
        line_col(P, q, &line, &col);
        int rmod = 0;
        if (kind == '#') {
            if (q + 2 + (lmod ? 1 : 0) >= n) break; /* "{#" ending the source: Jinja drops it */
            size_t e = q + 2;
            while (e + 1 < n && !(s[e] == '#' && s[e + 1] == '}')) e++;
            if (e + 1 >= n) pfail(P, line, col, "unclosed comment (missing '#}')");
            rmod = (e > q + 2 && (s[e - 1] == '-' || s[e - 1] == '+')) ? s[e - 1] : 0;
            p = skip_after_tag(P, e + 2, kind, rmod, &line_starting);
            continue;
        }
        if (kind == '%') {
            int l2, r2;
            size_t after = match_simple_tag(P, q, "raw", &l2, &r2);
            if (after) {
                /* raw: no trim_blocks after the opening tag */
                size_t cs = after;
                if (r2 == '-') cs += lstrip_ws(s + after, n - after);
                size_t e = cs;
                size_t after_end = 0;
                int le = 0, re = 0;
                for (; e + 1 < n; e++)
                    if (s[e] == '{' && s[e + 1] == '%' &&
                        (after_end = match_simple_tag(P, e, "endraw", &le, &re)) != 0)
                        break;
                if (!after_end) pfail(P, line, col, "unclosed 'raw' block (missing endraw)");
                size_t ce = strip_before_tag(P, cs, e, '%', le, false);
                emit_text(P, cs, ce);
                p = skip_after_tag(P, after_end, '%', re, &line_starting);
                continue;
            }
        }
        push_tok(P, kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, line, col);
        size_t after = lex_tag(P, q + 2 + (lmod ? 1 : 0), kind == '{' ? '}' : '%', &rmod);
        int el, ec;
        line_col(P, after - 2, &el, &ec);
        push_tok(P, kind == '{' ? T_VAR_END : T_BLOCK_END, el, ec);
        p = skip_after_tag(P, after, kind, rmod, &line_starting);
    }
    int line, col;
    line_col(P, n, &line, &col);
    push_tok(P, T_EOF, line, col);
}

/* ------------------------------------------------------------------------ */
/* Syntax tree                                                               */

typedef enum nkind {
    /* expressions */
    N_CONST,
    N_NAME,
    N_ATTR,
    N_ITEM,
    N_SLICE,
    N_CALL,
    N_FILTER,
    N_TEST,
    N_NEG,
    N_POS,
    N_NOT,
    N_BIN,
    N_AND,
    N_OR,
    N_CMP,
    N_COND,
    N_LIST,
    N_TUPLE,
    N_DICT,
    /* statements */
    N_BODY,
    N_TEXT,
    N_OUT,
    N_IF,
    N_FOR,
    N_SET,
    N_SETBLOCK,
    N_MACRO,
    N_CALLBLOCK,
    N_FILTERBLOCK,
    N_BREAK,
    N_CONTINUE,
    N_DO,
    N_WITH,
} nkind;

typedef struct node {
    uint8_t kind, op;
    bool neg;
    int line, col;
    int id; /* filter or test id */
    struct node *a, *b, *c, *d, *e;
    struct node **list, **list2;
    int n, n2;
    uint8_t *ops; /* N_CMP: n operators */
    tstr *name;
    tstr **names; /* keyword names (N_CALL, N_FILTER), macro parameters */
    tval val;
} node;

struct tmpl_template {
    arena ar;
    node *root;
};

/* Filters and tests, resolved at parse time. */
enum {
    F_ABS,
    F_ATTR,
    F_CAPITALIZE,
    F_LENGTH,
    F_DEFAULT,
    F_DICTSORT,
    F_ESCAPE,
    F_FIRST,
    F_FLOAT,
    F_INDENT,
    F_INT,
    F_ITEMS,
    F_JOIN,
    F_LAST,
    F_LIST,
    F_LOWER,
    F_MAP,
    F_MAX,
    F_MIN,
    F_REJECT,
    F_REJECTATTR,
    F_REPLACE,
    F_REVERSE,
    F_ROUND,
    F_SAFE,
    F_SELECT,
    F_SELECTATTR,
    F_SORT,
    F_STRING,
    F_SUM,
    F_TITLE,
    F_TOJSON,
    F_TRIM,
    F_UNIQUE,
    F_UPPER,
    F_WORDCOUNT,
    F_FORMAT,
};

static const struct {
    const char *name;
    int id;
} filter_names[] = {
    {"abs", F_ABS},
    {"attr", F_ATTR},
    {"capitalize", F_CAPITALIZE},
    {"count", F_LENGTH},
    {"length", F_LENGTH},
    {"default", F_DEFAULT},
    {"d", F_DEFAULT},
    {"dictsort", F_DICTSORT},
    {"escape", F_ESCAPE},
    {"e", F_ESCAPE},
    {"forceescape", F_ESCAPE},
    {"first", F_FIRST},
    {"float", F_FLOAT},
    {"indent", F_INDENT},
    {"int", F_INT},
    {"items", F_ITEMS},
    {"join", F_JOIN},
    {"last", F_LAST},
    {"list", F_LIST},
    {"lower", F_LOWER},
    {"map", F_MAP},
    {"max", F_MAX},
    {"min", F_MIN},
    {"reject", F_REJECT},
    {"rejectattr", F_REJECTATTR},
    {"replace", F_REPLACE},
    {"reverse", F_REVERSE},
    {"round", F_ROUND},
    {"safe", F_SAFE},
    {"select", F_SELECT},
    {"selectattr", F_SELECTATTR},
    {"sort", F_SORT},
    {"string", F_STRING},
    {"sum", F_SUM},
    {"title", F_TITLE},
    {"tojson", F_TOJSON},
    {"trim", F_TRIM},
    {"unique", F_UNIQUE},
    {"upper", F_UPPER},
    {"wordcount", F_WORDCOUNT},
    {"format", F_FORMAT},
};

static const char *const unsupported_filters[] = {
    "batch",     "center",   "filesizeformat", "groupby", "pprint",   "random", "slice",
    "striptags", "truncate", "urlencode",      "urlize",  "wordwrap", "xmlattr"};

enum {
    X_DEFINED,
    X_UNDEFINED,
    X_NONE,
    X_BOOLEAN,
    X_TRUE,
    X_FALSE,
    X_INTEGER,
    X_FLOAT,
    X_NUMBER,
    X_STRING,
    X_MAPPING,
    X_ITERABLE,
    X_SEQUENCE,
    X_CALLABLE,
    X_EVEN,
    X_ODD,
    X_DIVISIBLEBY,
    X_EQ,
    X_NE,
    X_LT,
    X_LE,
    X_GT,
    X_GE,
    X_IN,
    X_LOWER,
    X_UPPER,
    X_SAMEAS,
    X_ESCAPED,
};

static const struct {
    const char *name;
    int id;
} test_names[] = {
    {"defined", X_DEFINED},
    {"undefined", X_UNDEFINED},
    {"none", X_NONE},
    {"boolean", X_BOOLEAN},
    {"true", X_TRUE},
    {"false", X_FALSE},
    {"integer", X_INTEGER},
    {"float", X_FLOAT},
    {"number", X_NUMBER},
    {"string", X_STRING},
    {"mapping", X_MAPPING},
    {"iterable", X_ITERABLE},
    {"sequence", X_SEQUENCE},
    {"callable", X_CALLABLE},
    {"even", X_EVEN},
    {"odd", X_ODD},
    {"divisibleby", X_DIVISIBLEBY},
    {"eq", X_EQ},
    {"equalto", X_EQ},
    {"==", X_EQ},
    {"ne", X_NE},
    {"!=", X_NE},
    {"lt", X_LT},
    {"lessthan", X_LT},
    {"<", X_LT},
    {"le", X_LE},
    {"<=", X_LE},
    {"gt", X_GT},
    {"greaterthan", X_GT},
    {">", X_GT},
    {"ge", X_GE},
    {">=", X_GE},
    {"in", X_IN},
    {"lower", X_LOWER},
    {"upper", X_UPPER},
    {"sameas", X_SAMEAS},
    {"escaped", X_ESCAPED},
};

/* ------------------------------------------------------------------------ */
/* Parser                                                                    */

static tok *cur(parser *P) {
    return &P->toks[P->pos];
}
static tok *peek(parser *P, size_t k) {
    size_t i = P->pos + k;
    return &P->toks[i < P->ntok ? i : P->ntok - 1];
}
static void advance(parser *P) {
    if (P->pos + 1 < P->ntok) P->pos++;
}

static const char *tok_desc(tok *t, char *buf, size_t n) {
    switch (t->type) {
    case T_TEXT:
        return "template text";
    case T_VAR_BEGIN:
        return "'{{'";
    case T_VAR_END:
        return "'}}'";
    case T_BLOCK_BEGIN:
        return "'{%'";
    case T_BLOCK_END:
        return "'%}'";
    case T_NAME:
        snprintf(buf, n, "'%.60s'", t->s->s);
        return buf;
    case T_STRING:
        return "a string";
    case T_INT:
        return "an integer";
    case T_FLOAT:
        return "a float";
    case T_OP:
        snprintf(buf, n, "'%s'", op_text[t->op]);
        return buf;
    default:
        return "end of template";
    }
}

static _Noreturn void perr_expected(parser *P, const char *what) {
    char b[96];
    tok *t = cur(P);
    pfail(P, t->line, t->col, "expected %s, found %s", what, tok_desc(t, b, sizeof b));
}

static bool is_op(parser *P, int op) {
    return cur(P)->type == T_OP && cur(P)->op == op;
}
static bool accept_op(parser *P, int op) {
    if (!is_op(P, op)) return false;
    advance(P);
    return true;
}
static void expect_op(parser *P, int op) {
    if (!accept_op(P, op)) {
        char w[32];
        snprintf(w, sizeof w, "'%s'", op_text[op]);
        perr_expected(P, w);
    }
}
static bool is_name(parser *P, const char *kw) {
    return cur(P)->type == T_NAME && !strcmp(cur(P)->s->s, kw);
}
static bool accept_name(parser *P, const char *kw) {
    if (!is_name(P, kw)) return false;
    advance(P);
    return true;
}
static tstr *expect_ident(parser *P, const char *what) {
    if (cur(P)->type != T_NAME) perr_expected(P, what);
    tstr *s = cur(P)->s;
    advance(P);
    return s;
}
static void expect_block_end(parser *P, const char *tag) {
    if (cur(P)->type != T_BLOCK_END) {
        char w[96];
        snprintf(w, sizeof w, "'%%}' to end the '%s' tag", tag);
        perr_expected(P, w);
    }
    advance(P);
}

static node *mk_node(parser *P, int kind, tok *at) {
    node *n = palloc(P, sizeof *n);
    memset(n, 0, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* Growable node-pointer vector in the arena. */
typedef struct nvec {
    node **v;
    int n, cap;
} nvec;
static void nvec_push(parser *P, nvec *a, node *x) {
    if (a->n == a->cap) {
        int nc = a->cap ? a->cap * 2 : 4;
        node **nv = palloc(P, (size_t)nc * sizeof *nv);
        if (a->n) memcpy(nv, a->v, (size_t)a->n * sizeof *nv);
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
}

static void enter(parser *P) {
    if (++P->depth > TMPL_MAX_NESTING)
        pfail(P, cur(P)->line, cur(P)->col, "template nested too deeply (more than %d levels)",
              TMPL_MAX_NESTING);
}
static void leave(parser *P) {
    P->depth--;
}

static node *parse_expression(parser *P, bool with_condexpr);
static node *parse_unary(parser *P, bool with_filter);
static node *parse_primary(parser *P);
static node *parse_postfix(parser *P, node *x);

static bool starts_expression(parser *P) {
    tok *t = cur(P);
    if (t->type == T_NAME || t->type == T_STRING || t->type == T_INT || t->type == T_FLOAT)
        return true;
    return t->type == T_OP && (t->op == OP_LPAREN || t->op == OP_LBRACKET || t->op == OP_LBRACE ||
                               t->op == OP_SUB || t->op == OP_ADD);
}

/* expr (',' expr)* [','] -> a tuple when there is a comma. */
static node *parse_tuple(parser *P, bool with_condexpr, bool explicit_parens) {
    tok *at = cur(P);
    node *first = parse_expression(P, with_condexpr);
    if (!is_op(P, OP_COMMA)) return first;
    nvec items = {0};
    nvec_push(P, &items, first);
    while (accept_op(P, OP_COMMA)) {
        if (!starts_expression(P) || is_name(P, "if") || is_name(P, "recursive")) break;
        if (!explicit_parens && is_name(P, "in")) break;
        nvec_push(P, &items, parse_expression(P, with_condexpr));
    }
    node *t = mk_node(P, N_TUPLE, at);
    t->list = items.v;
    t->n = items.n;
    return t;
}

static void parse_call_args(parser *P, node *call) {
    /* at '(' */
    expect_op(P, OP_LPAREN);
    nvec args = {0}, kwv = {0};
    tstr **kwn = NULL;
    int nkw = 0, capkw = 0;
    while (!is_op(P, OP_RPAREN)) {
        if (is_op(P, OP_MUL) || is_op(P, OP_POW))
            pfail(P, cur(P)->line, cur(P)->col, "*args and **kwargs in calls are not supported");
        if (cur(P)->type == T_NAME && peek(P, 1)->type == T_OP && peek(P, 1)->op == OP_ASSIGN) {
            tstr *k = cur(P)->s;
            advance(P);
            advance(P);
            if (nkw == capkw) {
                int nc = capkw ? capkw * 2 : 4;
                tstr **nn = palloc(P, (size_t)nc * sizeof *nn);
                if (nkw) memcpy(nn, kwn, (size_t)nkw * sizeof *nn);
                kwn = nn;
                capkw = nc;
            }
            kwn[nkw++] = k;
            nvec_push(P, &kwv, parse_expression(P, true));
        } else {
            if (nkw) perr_expected(P, "a keyword argument (positional after keyword)");
            nvec_push(P, &args, parse_expression(P, true));
        }
        if (!accept_op(P, OP_COMMA)) break;
    }
    expect_op(P, OP_RPAREN);
    call->list = args.v;
    call->n = args.n;
    call->list2 = kwv.v;
    call->n2 = kwv.n;
    call->names = kwn;
}

static tstr *parse_dotted_name(parser *P, const char *what) {
    tstr *s = expect_ident(P, what);
    while (is_op(P, OP_DOT) && peek(P, 1)->type == T_NAME) {
        advance(P);
        tstr *s2 = cur(P)->s;
        advance(P);
        char buf[256];
        int k = snprintf(buf, sizeof buf, "%s.%s", s->s, s2->s);
        s = pstr(P, buf, (size_t)(k < (int)sizeof buf ? k : (int)sizeof buf - 1));
    }
    return s;
}

static node *parse_filter(parser *P, node *input) {
    /* after '|' */
    tok *at = cur(P);
    tstr *name = parse_dotted_name(P, "a filter name");
    node *f = mk_node(P, N_FILTER, at);
    f->a = input;
    f->name = name;
    f->id = -1;
    for (size_t i = 0; i < sizeof filter_names / sizeof filter_names[0]; i++)
        if (!strcmp(filter_names[i].name, name->s)) f->id = filter_names[i].id;
    /* Like Jinja 3, an unknown filter is an error when it runs, not when it
     * is parsed: templates guard optional filters with if-branches. */
    if (f->id < 0)
        for (size_t i = 0; i < sizeof unsupported_filters / sizeof unsupported_filters[0]; i++)
            if (!strcmp(unsupported_filters[i], name->s)) f->id = -2;
    if (is_op(P, OP_LPAREN)) parse_call_args(P, f);
    return f;
}

static node *parse_test(parser *P, node *x) {
    /* after 'is' */
    tok *at = cur(P);
    bool neg = accept_name(P, "not");
    tok *nt = cur(P);
    tstr *name;
    if (nt->type == T_OP && (nt->op == OP_EQ || nt->op == OP_NE || nt->op == OP_LT ||
                             nt->op == OP_LE || nt->op == OP_GT || nt->op == OP_GE)) {
        name = pstr(P, op_text[nt->op], strlen(op_text[nt->op]));
        advance(P);
    } else {
        name = parse_dotted_name(P, "a test name after 'is'");
    }
    node *t = mk_node(P, N_TEST, at);
    t->a = x;
    t->neg = neg;
    t->name = name;
    t->id = -1;
    for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
        if (!strcmp(test_names[i].name, name->s)) t->id = test_names[i].id;
    if (t->id < 0 && (!strcmp(name->s, "filter") || !strcmp(name->s, "test"))) t->id = -2;
    t->col = nt->col; /* unknown tests, like filters, fail when they run */
    if (is_op(P, OP_LPAREN)) {
        parse_call_args(P, t);
    } else {
        tok *c = cur(P);
        bool arg =
            c->type == T_NAME || c->type == T_STRING || c->type == T_INT || c->type == T_FLOAT ||
            (c->type == T_OP && (c->op == OP_LPAREN || c->op == OP_LBRACKET || c->op == OP_LBRACE));
        if (c->type == T_NAME &&
            (!strcmp(c->s->s, "else") || !strcmp(c->s->s, "or") || !strcmp(c->s->s, "and")))
            arg = false;
        if (arg) {
            if (is_name(P, "is")) pfail(P, c->line, c->col, "cannot chain tests with 'is'");
            node *a = parse_postfix(P, parse_primary(P));
            t->list = palloc(P, sizeof(node *));
            t->list[0] = a;
            t->n = 1;
        }
    }
    return t;
}

static node *parse_filter_expr(parser *P, node *x) {
    for (;;) {
        if (accept_op(P, OP_PIPE)) {
            x = parse_filter(P, x);
        } else if (is_name(P, "is")) {
            advance(P);
            x = parse_test(P, x);
        } else if (is_op(P, OP_LPAREN)) {
            node *c = mk_node(P, N_CALL, cur(P));
            c->a = x;
            parse_call_args(P, c);
            x = c;
        } else {
            return x;
        }
    }
}

static node *parse_subscript_arg(parser *P) {
    if (is_op(P, OP_COLON) || is_op(P, OP_RBRACKET) || is_op(P, OP_COMMA)) return NULL;
    return parse_expression(P, true);
}

static node *parse_postfix(parser *P, node *x) {
    for (;;) {
        tok *at = cur(P);
        if (accept_op(P, OP_DOT)) {
            tok *t = cur(P);
            if (t->type == T_NAME) {
                node *a = mk_node(P, N_ATTR, at);
                a->a = x;
                a->name = t->s;
                advance(P);
                x = a;
            } else if (t->type == T_INT) {
                node *a = mk_node(P, N_ITEM, at);
                a->a = x;
                a->b = mk_node(P, N_CONST, t);
                a->b->val = mk_int(t->i);
                advance(P);
                x = a;
            } else {
                perr_expected(P, "an attribute name after '.'");
            }
        } else if (accept_op(P, OP_LBRACKET)) {
            enter(P);
            node *s0 = parse_subscript_arg(P);
            if (is_op(P, OP_COLON)) {
                node *sl = mk_node(P, N_SLICE, at);
                sl->a = x;
                sl->b = s0;
                advance(P);
                sl->c = parse_subscript_arg(P);
                if (accept_op(P, OP_COLON)) sl->d = parse_subscript_arg(P);
                x = sl;
            } else {
                if (!s0) perr_expected(P, "an index or a slice");
                node *it = mk_node(P, N_ITEM, at);
                it->a = x;
                it->b = s0;
                x = it;
            }
            expect_op(P, OP_RBRACKET);
            leave(P);
        } else if (is_op(P, OP_LPAREN)) {
            node *c = mk_node(P, N_CALL, at);
            c->a = x;
            parse_call_args(P, c);
            x = c;
        } else {
            return x;
        }
    }
}

static node *parse_primary(parser *P) {
    tok *t = cur(P);
    node *x;
    switch (t->type) {
    case T_NAME: {
        const char *s = t->s->s;
        x = mk_node(P, N_CONST, t);
        if (!strcmp(s, "true") || !strcmp(s, "True"))
            x->val = mk_bool(true);
        else if (!strcmp(s, "false") || !strcmp(s, "False"))
            x->val = mk_bool(false);
        else if (!strcmp(s, "none") || !strcmp(s, "None"))
            x->val = NONE;
        else {
            x->kind = N_NAME;
            x->name = t->s;
        }
        advance(P);
        return x;
    }
    case T_STRING: {
        x = mk_node(P, N_CONST, t);
        tstr *s = t->s;
        advance(P);
        while (cur(P)->type == T_STRING) { /* adjacent literals concatenate */
            tstr *s2 = cur(P)->s;
            tstr *c = palloc(P, sizeof *c + s->len + s2->len + 1);
            c->len = s->len + s2->len;
            memcpy(c->s, s->s, s->len);
            memcpy(c->s + s->len, s2->s, s2->len);
            c->s[c->len] = 0;
            s = c;
            advance(P);
        }
        x->val = mk_strv(s);
        return x;
    }
    case T_INT:
        x = mk_node(P, N_CONST, t);
        x->val = mk_int(t->i);
        advance(P);
        return x;
    case T_FLOAT:
        x = mk_node(P, N_CONST, t);
        x->val = mk_float(t->f);
        advance(P);
        return x;
    case T_OP:
        if (t->op == OP_LPAREN) {
            advance(P);
            enter(P);
            if (accept_op(P, OP_RPAREN)) {
                x = mk_node(P, N_TUPLE, t);
            } else {
                x = parse_tuple(P, true, true);
                expect_op(P, OP_RPAREN);
            }
            leave(P);
            return x;
        }
        if (t->op == OP_LBRACKET || t->op == OP_LBRACE) {
            bool is_dict = t->op == OP_LBRACE;
            int close = is_dict ? OP_RBRACE : OP_RBRACKET;
            advance(P);
            enter(P);
            nvec a = {0}, b = {0};
            while (!is_op(P, close)) {
                nvec_push(P, &a, parse_expression(P, true));
                if (is_dict) {
                    expect_op(P, OP_COLON);
                    nvec_push(P, &b, parse_expression(P, true));
                }
                if (!accept_op(P, OP_COMMA)) break;
            }
            expect_op(P, close);
            leave(P);
            x = mk_node(P, is_dict ? N_DICT : N_LIST, t);
            x->list = a.v;
            x->n = a.n;
            x->list2 = b.v;
            x->n2 = b.n;
            return x;
        }
        break;
    default:
        break;
    }
    perr_expected(P, "an expression");
}

static node *parse_unary(parser *P, bool with_filter) {
    tok *t = cur(P);
    node *x;
    enter(P);
    if (accept_op(P, OP_SUB) || accept_op(P, OP_ADD)) {
        x = mk_node(P, t->op == OP_SUB ? N_NEG : N_POS, t);
        x->a = parse_unary(P, false);
    } else {
        x = parse_postfix(P, parse_primary(P));
    }
    if (with_filter) x = parse_filter_expr(P, x);
    leave(P);
    return x;
}

static node *mk_bin(parser *P, tok *at, int op, node *a, node *b) {
    node *x = mk_node(P, N_BIN, at);
    x->op = (uint8_t)op;
    x->a = a;
    x->b = b;
    return x;
}

static node *parse_pow(parser *P) {
    node *x = parse_unary(P, true);
    while (is_op(P, OP_POW)) {
        tok *at = cur(P);
        advance(P);
        x = mk_bin(P, at, OP_POW, x, parse_unary(P, true));
    }
    return x;
}

static node *parse_math2(parser *P) {
    node *x = parse_pow(P);
    while (is_op(P, OP_MUL) || is_op(P, OP_DIV) || is_op(P, OP_FLOORDIV) || is_op(P, OP_MOD)) {
        tok *at = cur(P);
        advance(P);
        x = mk_bin(P, at, at->op, x, parse_pow(P));
    }
    return x;
}

static node *parse_concat(parser *P) {
    node *x = parse_math2(P);
    while (is_op(P, OP_TILDE)) {
        tok *at = cur(P);
        advance(P);
        x = mk_bin(P, at, OP_TILDE, x, parse_math2(P));
    }
    return x;
}

static node *parse_math1(parser *P) {
    node *x = parse_concat(P);
    while (is_op(P, OP_ADD) || is_op(P, OP_SUB)) {
        tok *at = cur(P);
        advance(P);
        x = mk_bin(P, at, at->op, x, parse_concat(P));
    }
    return x;
}

static node *parse_compare(parser *P) {
    tok *at = cur(P);
    node *x = parse_math1(P);
    nvec rest = {0};
    uint8_t ops[64];
    int nops = 0;
    for (;;) {
        int op = 0;
        tok *t = cur(P);
        if (t->type == T_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT ||
                                t->op == OP_LE || t->op == OP_GT || t->op == OP_GE)) {
            op = t->op;
            advance(P);
        } else if (is_name(P, "in")) {
            op = OP_IN;
            advance(P);
        } else if (is_name(P, "not") && peek(P, 1)->type == T_NAME &&
                   !strcmp(peek(P, 1)->s->s, "in")) {
            op = OP_NOTIN;
            advance(P);
            advance(P);
        } else {
            break;
        }
        if (nops == (int)sizeof ops) pfail(P, t->line, t->col, "too many chained comparisons");
        ops[nops++] = (uint8_t)op;
        nvec_push(P, &rest, parse_math1(P));
    }
    if (!nops) return x;
    node *c = mk_node(P, N_CMP, at);
    c->a = x;
    c->list = rest.v;
    c->n = rest.n;
    c->ops = palloc(P, (size_t)nops);
    memcpy(c->ops, ops, (size_t)nops);
    return c;
}

static node *parse_not(parser *P) {
    tok *at = cur(P);
    if (accept_name(P, "not")) {
        enter(P);
        node *x = mk_node(P, N_NOT, at);
        x->a = parse_not(P);
        leave(P);
        return x;
    }
    return parse_compare(P);
}

static node *parse_and(parser *P) {
    node *x = parse_not(P);
    while (is_name(P, "and")) {
        tok *at = cur(P);
        advance(P);
        node *y = mk_node(P, N_AND, at);
        y->a = x;
        y->b = parse_not(P);
        x = y;
    }
    return x;
}

static node *parse_or(parser *P) {
    node *x = parse_and(P);
    while (is_name(P, "or")) {
        tok *at = cur(P);
        advance(P);
        node *y = mk_node(P, N_OR, at);
        y->a = x;
        y->b = parse_and(P);
        x = y;
    }
    return x;
}

static node *parse_expression(parser *P, bool with_condexpr) {
    enter(P);
    node *x = parse_or(P);
    while (with_condexpr && is_name(P, "if")) {
        tok *at = cur(P);
        advance(P);
        node *c = mk_node(P, N_COND, at);
        c->a = parse_or(P);
        c->b = x;
        if (accept_name(P, "else")) c->c = parse_expression(P, true);
        x = c;
    }
    leave(P);
    return x;
}

/* Targets of for/set/with: a name, names separated by commas, or (set only) ns.attr. */
static node *parse_target(parser *P, bool allow_attr, bool allow_tuple) {
    tok *at = cur(P);
    bool paren = allow_tuple && accept_op(P, OP_LPAREN);
    nvec names = {0};
    for (;;) {
        tok *t = cur(P);
        tstr *nm = expect_ident(P, "a variable name");
        node *x = mk_node(P, N_NAME, t);
        x->name = nm;
        if (allow_attr && !paren && names.n == 0 && is_op(P, OP_DOT)) {
            advance(P);
            node *a = mk_node(P, N_ATTR, t);
            a->a = x;
            a->name = expect_ident(P, "an attribute name");
            return a;
        }
        nvec_push(P, &names, x);
        if (!allow_tuple || !accept_op(P, OP_COMMA)) break;
        if (paren && is_op(P, OP_RPAREN)) break;
    }
    if (paren) expect_op(P, OP_RPAREN);
    if (names.n == 1 && !paren) return names.v[0];
    node *t = mk_node(P, N_TUPLE, at);
    t->list = names.v;
    t->n = names.n;
    return t;
}

typedef struct body_ctx {
    const char *const *ends; /* tag names that end this body */
    const char *opener;      /* the tag that opened it */
    int line;                /* ... at this line */
} body_ctx;

static node *parse_body(parser *P, const body_ctx *bc, const char **found);

static const char *const unsupported_tags[] = {
    "block", "extends", "include", "import", "from", "autoescape", "trans", "pluralize",
};

/* Parameters "(a, b=default, ...)" of a macro or a call block. */
static void parse_params(parser *P, node *m) {
    expect_op(P, OP_LPAREN);
    nvec defs = {0};
    tstr **names = NULL;
    int n = 0, cap = 0;
    while (!is_op(P, OP_RPAREN)) {
        tstr *nm = expect_ident(P, "a parameter name");
        if (n == cap) {
            int nc = cap ? cap * 2 : 4;
            tstr **nn = palloc(P, (size_t)nc * sizeof *nn);
            if (n) memcpy(nn, names, (size_t)n * sizeof *nn);
            names = nn;
            cap = nc;
        }
        names[n++] = nm;
        node *d = NULL;
        if (accept_op(P, OP_ASSIGN)) d = parse_expression(P, true);
        nvec_push(P, &defs, d);
        if (!accept_op(P, OP_COMMA)) break;
    }
    expect_op(P, OP_RPAREN);
    m->names = names;
    m->n2 = n;
    m->list2 = defs.v;
}

static node *parse_statement(parser *P) {
    tok *bt = cur(P); /* the tag name */
    const char *nm = bt->s->s;
    advance(P);
    if (!strcmp(nm, "if")) {
        node *x = mk_node(P, N_IF, bt);
        nvec conds = {0}, bodies = {0};
        static const char *const ends[] = {"elif", "else", "endif", NULL};
        static const char *const ends2[] = {"endif", NULL};
        body_ctx bc = {ends, "if", bt->line};
        const char *found;
        for (;;) {
            nvec_push(P, &conds, parse_tuple(P, true, false));
            expect_block_end(P, "if");
            nvec_push(P, &bodies, parse_body(P, &bc, &found));
            if (strcmp(found, "elif")) break;
        }
        if (!strcmp(found, "else")) {
            expect_block_end(P, "else");
            body_ctx bc2 = {ends2, "if", bt->line};
            x->c = parse_body(P, &bc2, &found);
        }
        expect_block_end(P, "endif");
        x->list = conds.v;
        x->list2 = bodies.v;
        x->n = conds.n;
        return x;
    }
    if (!strcmp(nm, "for")) {
        node *x = mk_node(P, N_FOR, bt);
        x->a = parse_target(P, false, true);
        if (!accept_name(P, "in")) perr_expected(P, "'in' in the for tag");
        x->b = parse_tuple(P, false, false);
        if (accept_name(P, "if")) x->c = parse_expression(P, true);
        if (is_name(P, "recursive"))
            pfail(P, cur(P)->line, cur(P)->col, "recursive for loops are not supported");
        expect_block_end(P, "for");
        static const char *const ends[] = {"else", "endfor", NULL};
        static const char *const ends2[] = {"endfor", NULL};
        body_ctx bc = {ends, "for", bt->line};
        const char *found;
        P->loops++;
        x->d = parse_body(P, &bc, &found);
        P->loops--;
        if (!strcmp(found, "else")) {
            expect_block_end(P, "else");
            body_ctx bc2 = {ends2, "for", bt->line};
            x->e = parse_body(P, &bc2, &found);
        }
        expect_block_end(P, "endfor");
        return x;
    }
    if (!strcmp(nm, "set")) {
        node *target = parse_target(P, true, true);
        if (accept_op(P, OP_ASSIGN)) {
            node *x = mk_node(P, N_SET, bt);
            x->a = target;
            x->b = parse_tuple(P, true, false);
            expect_block_end(P, "set");
            return x;
        }
        if (target->kind != N_NAME)
            perr_expected(P, "'=' (a block set takes a single variable name)");
        node *x = mk_node(P, N_SETBLOCK, bt);
        x->a = target;
        while (accept_op(P, OP_PIPE)) x->c = parse_filter(P, x->c);
        expect_block_end(P, "set");
        static const char *const ends[] = {"endset", NULL};
        body_ctx bc = {ends, "set", bt->line};
        const char *found;
        x->d = parse_body(P, &bc, &found);
        expect_block_end(P, "endset");
        return x;
    }
    if (!strcmp(nm, "macro") || !strcmp(nm, "call")) {
        bool is_macro = nm[0] == 'm';
        node *x = mk_node(P, is_macro ? N_MACRO : N_CALLBLOCK, bt);
        if (is_macro) {
            x->name = expect_ident(P, "a macro name");
            parse_params(P, x);
        } else {
            if (is_op(P, OP_LPAREN)) parse_params(P, x);
            x->a = parse_expression(P, true);
            if (x->a->kind != N_CALL)
                pfail(P, bt->line, bt->col, "expected a call in the call tag");
        }
        expect_block_end(P, nm);
        static const char *const mends[] = {"endmacro", NULL};
        static const char *const cends[] = {"endcall", NULL};
        body_ctx bc = {is_macro ? mends : cends, is_macro ? "macro" : "call", bt->line};
        const char *found;
        int saved = P->loops;
        P->loops = 0;
        x->d = parse_body(P, &bc, &found);
        P->loops = saved;
        if (is_macro && cur(P)->type == T_NAME) advance(P); /* {% endmacro name %} */
        expect_block_end(P, is_macro ? "endmacro" : "endcall");
        return x;
    }
    if (!strcmp(nm, "filter")) {
        node *x = mk_node(P, N_FILTERBLOCK, bt);
        x->c = parse_filter(P, NULL);
        while (accept_op(P, OP_PIPE)) x->c = parse_filter(P, x->c);
        expect_block_end(P, "filter");
        static const char *const ends[] = {"endfilter", NULL};
        body_ctx bc = {ends, "filter", bt->line};
        const char *found;
        x->d = parse_body(P, &bc, &found);
        expect_block_end(P, "endfilter");
        return x;
    }
    if (!strcmp(nm, "break") || !strcmp(nm, "continue")) {
        if (P->loops == 0) pfail(P, bt->line, bt->col, "'%s' outside of a for loop", nm);
        node *x = mk_node(P, nm[0] == 'b' ? N_BREAK : N_CONTINUE, bt);
        expect_block_end(P, nm);
        return x;
    }
    if (!strcmp(nm, "do")) {
        node *x = mk_node(P, N_DO, bt);
        x->a = parse_tuple(P, true, false);
        expect_block_end(P, "do");
        return x;
    }
    if (!strcmp(nm, "with")) {
        node *x = mk_node(P, N_WITH, bt);
        nvec targets = {0}, vals = {0};
        while (cur(P)->type != T_BLOCK_END) {
            if (targets.n) expect_op(P, OP_COMMA);
            nvec_push(P, &targets, parse_target(P, false, false));
            expect_op(P, OP_ASSIGN);
            nvec_push(P, &vals, parse_expression(P, true));
        }
        expect_block_end(P, "with");
        x->list = targets.v;
        x->n = targets.n;
        x->list2 = vals.v;
        x->n2 = vals.n;
        static const char *const ends[] = {"endwith", NULL};
        body_ctx bc = {ends, "with", bt->line};
        const char *found;
        x->d = parse_body(P, &bc, &found);
        expect_block_end(P, "endwith");
        return x;
    }
    if (!strcmp(nm, "generation")) { /* transformers' assistant-mask marker: renders its body */
        expect_block_end(P, "generation");
        static const char *const ends[] = {"endgeneration", NULL};
        body_ctx bc = {ends, "generation", bt->line};
        const char *found;
        node *b = parse_body(P, &bc, &found);
        expect_block_end(P, "endgeneration");
        return b;
    }
    for (size_t i = 0; i < sizeof unsupported_tags / sizeof unsupported_tags[0]; i++)
        if (!strcmp(unsupported_tags[i], nm))
            pfail(P, bt->line, bt->col, "the '%s' tag is not supported", nm);
    pfail(P, bt->line, bt->col, "unknown tag '%s'", nm);
}

static node *parse_body(parser *P, const body_ctx *bc, const char **found) {
    tok *start = cur(P);
    node *b = mk_node(P, N_BODY, start);
    nvec items = {0};
    enter(P);
    for (;;) {
        tok *t = cur(P);
        if (t->type == T_EOF) {
            if (bc)
                pfail(P, t->line, t->col,
                      "unexpected end of template: expected 'end%s' to close the '%s' tag from "
                      "line %d",
                      bc->opener, bc->opener, bc->line);
            break;
        }
        if (t->type == T_TEXT) {
            node *x = mk_node(P, N_TEXT, t);
            x->val = mk_strv(t->s);
            nvec_push(P, &items, x);
            advance(P);
            continue;
        }
        if (t->type == T_VAR_BEGIN) {
            advance(P);
            node *x = mk_node(P, N_OUT, t);
            x->a = parse_tuple(P, true, false);
            if (cur(P)->type != T_VAR_END) perr_expected(P, "'}}'");
            advance(P);
            nvec_push(P, &items, x);
            continue;
        }
        if (t->type != T_BLOCK_BEGIN) {
            char d[96];
            pfail(P, t->line, t->col, "unexpected %s", tok_desc(t, d, sizeof d));
        }
        advance(P);
        tok *nt = cur(P);
        if (nt->type != T_NAME) perr_expected(P, "a tag name after '{%'");
        bool is_end = false;
        for (int i = 0; bc && bc->ends[i]; i++)
            if (!strcmp(bc->ends[i], nt->s->s)) {
                *found = bc->ends[i];
                is_end = true;
            }
        if (is_end) {
            advance(P);
            break;
        }
        if (!strncmp(nt->s->s, "end", 3) || !strcmp(nt->s->s, "elif") ||
            !strcmp(nt->s->s, "else")) {
            if (bc)
                pfail(P, nt->line, nt->col, "unexpected '%s' inside the '%s' tag from line %d",
                      nt->s->s, bc->opener, bc->line);
            pfail(P, nt->line, nt->col, "unexpected '%s': no open block to close", nt->s->s);
        }
        nvec_push(P, &items, parse_statement(P));
    }
    leave(P);
    b->list = items.v;
    b->n = items.n;
    return b;
}

/* ------------------------------------------------------------------------ */
/* Render state                                                              */

#define MAX_STEPS 20000000u /* statements executed plus calls: bounds exponential macro fan-out */

typedef struct var {
    tstr *name;
    tval v;
} var;

struct scope {
    scope *parent;
    var *v;
    int n, cap;
};

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

enum { CTL_NONE, CTL_BREAK, CTL_CONTINUE };

typedef struct R {
    jmp_buf jb;
    hearth_err *err;
    arena *ar;
    arena arena_storage;
    buf *out;
    int line;
    int depth;
    uint64_t iterations, steps;
    int ctl;
    scope *root;
    const tdict *globals;
} R;

static _Noreturn void rfail(R *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void rfail(R *r, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    hearth_errf(r->err, "template line %d: %s", r->line, msg);
    longjmp(r->jb, 1);
}

static void *ralloc(R *r, size_t n) {
    void *p = arena_alloc(r->ar, n);
    if (!p) rfail(r, "rendering needs more than %u MiB of memory (limit)", TMPL_MAX_MEMORY >> 20);
    return p;
}

static size_t mul_size(R *r, size_t a, size_t b) {
    size_t c;
    if (__builtin_mul_overflow(a, b, &c)) rfail(r, "size overflow");
    return c;
}

static tstr *new_str(R *r, const char *s, size_t n) {
    if (n > TMPL_MAX_MEMORY) rfail(r, "string too large");
    tstr *t = ralloc(r, sizeof *t + n + 1);
    t->len = n;
    if (n) memcpy(t->s, s, n);
    t->s[n] = 0;
    return t;
}
static tval str_val(R *r, const char *s, size_t n) {
    return mk_strv(new_str(r, s, n));
}
static tval cstr_val(R *r, const char *s) {
    return str_val(r, s, strlen(s));
}

static tval undef_because(R *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tval undef_because(R *r, const char *fmt, ...) {
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tval v = {.t = V_UNDEF};
    v.s = new_str(r, msg, strlen(msg));
    return v;
}

static _Noreturn void fail_undef(R *r, tval u) {
    rfail(r, "%s", u.s ? u.s->s : "value is undefined");
}

static void buf_reserve(R *r, buf *b, size_t extra) {
    if (b->n + extra <= b->cap) return;
    if (extra > TMPL_MAX_OUTPUT || b->n + extra > TMPL_MAX_OUTPUT)
        rfail(r, "output is larger than the limit of %u MiB", TMPL_MAX_OUTPUT >> 20);
    size_t nc = b->cap ? b->cap * 2 : 256;
    while (nc < b->n + extra) nc *= 2;
    char *np = ralloc(r, nc + 1);
    if (b->n) memcpy(np, b->p, b->n);
    b->p = np;
    b->cap = nc;
}
static void buf_put(R *r, buf *b, const char *s, size_t n) {
    buf_reserve(r, b, n);
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
}
static void buf_puts(R *r, buf *b, const char *s) {
    buf_put(r, b, s, strlen(s));
}
static void buf_putc(R *r, buf *b, char c) {
    buf_reserve(r, b, 1);
    b->p[b->n++] = c;
}
static tval buf_val(R *r, buf *b) {
    return str_val(r, b->p ? b->p : "", b->n);
}

/* Lists and dicts */

static tlist *list_new(R *r, size_t cap) {
    tlist *l = ralloc(r, sizeof *l);
    memset(l, 0, sizeof *l);
    if (cap) {
        l->v = ralloc(r, mul_size(r, cap, sizeof(tval)));
        l->cap = cap;
    }
    return l;
}
static void list_push(R *r, tlist *l, tval v) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        tval *nv = ralloc(r, mul_size(r, nc, sizeof *nv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof *nv);
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = v;
}

static uint64_t hash_d(R *r, tval v, int depth) {
    if (depth > TMPL_MAX_EVAL_DEPTH) rfail(r, "dict key nested too deeply");
    switch (v.t) {
    case V_STR: {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < v.s->len; i++) h = (h ^ (unsigned char)v.s->s[i]) * 1099511628211ull;
        return h;
    }
    case V_BOOL:
        return (uint64_t)v.b * 0x9e3779b97f4a7c15ull;
    case V_INT:
        return (uint64_t)v.i * 0x9e3779b97f4a7c15ull;
    case V_FLOAT:
        if (v.f == floor(v.f) && fabs(v.f) < 9e18)
            return (uint64_t)(int64_t)v.f * 0x9e3779b97f4a7c15ull;
        {
            uint64_t u;
            memcpy(&u, &v.f, sizeof u);
            return u * 0x9e3779b97f4a7c15ull;
        }
    case V_NONE:
        return 0x5bd1e995u;
    case V_LIST:
        if (v.l->tuple) {
            uint64_t h = 7;
            for (size_t i = 0; i < v.l->n; i++) h = h * 31 + hash_d(r, v.l->v[i], depth + 1);
            return h;
        }
        break;
    default:
        break;
    }
    rfail(r, "unhashable value used as a dict key");
}

static uint64_t hash_val(R *r, tval v) {
    return hash_d(r, v, 0);
}

/* Python ==. Depth-bounded (values can nest arbitrarily deep); eq() is for
 * call sites that have the render state `r` in scope. */
static bool eq_d(R *r, tval a, tval b, int depth);
#define eq(a, b) eq_d(r, (a), (b), 0)

static void dict_reindex(R *r, tdict *d) {
    size_t cap = 16;
    while (cap < d->n * 2 + 2) cap *= 2;
    d->idx = ralloc(r, mul_size(r, cap, sizeof *d->idx));
    memset(d->idx, 0, cap * sizeof *d->idx);
    d->idx_cap = cap;
    for (size_t i = 0; i < d->n; i++) {
        size_t h = (size_t)hash_val(r, d->k[i]) & (cap - 1);
        while (d->idx[h]) h = (h + 1) & (cap - 1);
        d->idx[h] = (uint32_t)(i + 1);
    }
}

/* Index of key k, or -1. */
static long dict_find(R *r, const tdict *d, tval k) {
    if (!d->idx) {
        for (size_t i = 0; i < d->n; i++)
            if (eq(d->k[i], k)) return (long)i;
        if (k.t == V_LIST && !k.l->tuple) rfail(r, "unhashable type: 'list'");
        if (k.t == V_DICT) rfail(r, "unhashable type: 'dict'");
        return -1;
    }
    size_t h = (size_t)hash_val(r, k) & (d->idx_cap - 1);
    while (d->idx[h]) {
        size_t i = d->idx[h] - 1;
        if (eq(d->k[i], k)) return (long)i;
        h = (h + 1) & (d->idx_cap - 1);
    }
    return -1;
}

static tdict *dict_new(R *r) {
    tdict *d = ralloc(r, sizeof *d);
    memset(d, 0, sizeof *d);
    return d;
}

static void dict_set(R *r, tdict *d, tval k, tval v) {
    long i = dict_find(r, d, k);
    if (i >= 0) {
        d->v[i] = v;
        return;
    }
    if (d->n >= UINT32_MAX - 1) rfail(r, "dict too large");
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        tval *nk = ralloc(r, mul_size(r, nc, sizeof *nk));
        tval *nv = ralloc(r, mul_size(r, nc, sizeof *nv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof *nk);
            memcpy(nv, d->v, d->n * sizeof *nv);
        }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
    if (d->n > 8 && (!d->idx || d->n * 2 + 2 > d->idx_cap)) {
        dict_reindex(r, d);
    } else if (d->idx) {
        size_t h = (size_t)hash_val(r, k) & (d->idx_cap - 1);
        while (d->idx[h]) h = (h + 1) & (d->idx_cap - 1);
        d->idx[h] = (uint32_t)d->n;
    }
}

static bool dict_get(R *r, const tdict *d, tval k, tval *out) {
    long i = dict_find(r, d, k);
    if (i < 0) return false;
    *out = d->v[i];
    return true;
}

/* ------------------------------------------------------------------------ */
/* Python semantics: truth, equality, order, str(), repr(), json.dumps()     */

static const char *type_name(tval v) {
    switch (v.t) {
    case V_UNDEF:
        return "Undefined";
    case V_NONE:
        return "NoneType";
    case V_BOOL:
        return "bool";
    case V_INT:
        return "int";
    case V_FLOAT:
        return "float";
    case V_STR:
        return "str";
    case V_LIST:
        return v.l->tuple ? "tuple" : "list";
    case V_DICT:
        return "dict";
    case V_NS:
        return "Namespace";
    case V_FUNC:
        return "function";
    case V_LOOP:
        return "LoopContext";
    default:
        return "?";
    }
}

static bool truthy(tval v) {
    switch (v.t) {
    case V_BOOL:
        return v.b;
    case V_INT:
        return v.i != 0;
    case V_FLOAT:
        return v.f != 0;
    case V_STR:
        return v.s->len != 0;
    case V_LIST:
        return v.l->n != 0;
    case V_DICT:
        return v.d->n != 0;
    case V_NS:
    case V_FUNC:
    case V_LOOP:
        return true;
    default:
        return false;
    }
}

static bool is_num(tval v) {
    return v.t == V_INT || v.t == V_BOOL || v.t == V_FLOAT;
}
static double num_f(tval v) {
    return v.t == V_FLOAT ? v.f : v.t == V_INT ? (double)v.i : (double)v.b;
}
static int64_t num_i(tval v) {
    return v.t == V_INT ? v.i : (int64_t)v.b;
}

static bool eq_d(R *r, tval a, tval b, int depth) {
    if (depth > TMPL_MAX_EVAL_DEPTH) rfail(r, "values nested too deeply to compare");
    if (is_num(a) && is_num(b)) {
        if (a.t == V_FLOAT || b.t == V_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a.t != b.t) return false;
    switch (a.t) {
    case V_UNDEF:
    case V_NONE:
        return true;
    case V_STR:
        return a.s->len == b.s->len && !memcmp(a.s->s, b.s->s, a.s->len);
    case V_LIST:
        if (a.l->tuple != b.l->tuple || a.l->n != b.l->n) return false;
        for (size_t i = 0; i < a.l->n; i++)
            if (!eq_d(r, a.l->v[i], b.l->v[i], depth + 1)) return false;
        return true;
    case V_DICT:
        if (a.d->n != b.d->n) return false;
        for (size_t i = 0; i < a.d->n; i++) {
            bool found = false;
            for (size_t j = 0; j < b.d->n && !found; j++)
                if (eq_d(r, a.d->k[i], b.d->k[j], depth + 1)) {
                    if (!eq_d(r, a.d->v[i], b.d->v[j], depth + 1)) return false;
                    found = true;
                }
            if (!found) return false;
        }
        return true;
    case V_NS:
        return a.d == b.d;
    case V_FUNC:
        return a.fn == b.fn;
    case V_LOOP:
        return a.loop == b.loop;
    default:
        return false;
    }
}

/* <0, 0, >0 like Python's ordering; error for types that do not order. */
static int cmp_d(R *r, tval a, tval b, bool fold_case, int depth) {
    if (depth > TMPL_MAX_EVAL_DEPTH) rfail(r, "values nested too deeply to compare");
    if (is_num(a) && is_num(b)) {
        if (a.t == V_FLOAT || b.t == V_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a.t == V_STR && b.t == V_STR) {
        size_t n = a.s->len < b.s->len ? a.s->len : b.s->len;
        for (size_t i = 0; i < n; i++) {
            unsigned char x = (unsigned char)a.s->s[i], y = (unsigned char)b.s->s[i];
            if (fold_case) {
                if (x >= 'A' && x <= 'Z') x += 32;
                if (y >= 'A' && y <= 'Z') y += 32;
            }
            if (x != y) return x < y ? -1 : 1;
        }
        return a.s->len < b.s->len ? -1 : a.s->len > b.s->len ? 1 : 0;
    }
    if (a.t == V_LIST && b.t == V_LIST) {
        size_t n = a.l->n < b.l->n ? a.l->n : b.l->n;
        for (size_t i = 0; i < n; i++) {
            if (eq(a.l->v[i], b.l->v[i])) continue;
            return cmp_d(r, a.l->v[i], b.l->v[i], fold_case, depth + 1);
        }
        return a.l->n < b.l->n ? -1 : a.l->n > b.l->n ? 1 : 0;
    }
    if (a.t == V_UNDEF) fail_undef(r, a);
    if (b.t == V_UNDEF) fail_undef(r, b);
    rfail(r, "cannot order values of type '%s' and '%s'", type_name(a), type_name(b));
}

static int cmp_vals(R *r, tval a, tval b, bool fold_case) {
    return cmp_d(r, a, b, fold_case, 0);
}

/* Python's repr() of a float: the shortest digits that read back the same. */
static void fmt_float(double d, char *out, size_t outn) {
    if (isnan(d)) {
        snprintf(out, outn, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(out, outn, d < 0 ? "-inf" : "inf");
        return;
    }
    char tmp[40];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp = [-]D[.DDD]e[+-]XX */
    char digits[24];
    int nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 20) digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char *o = out;
    size_t left = outn;
#define EMIT(c)                                                                                    \
    do {                                                                                           \
        if (left > 1) {                                                                            \
            *o++ = (c);                                                                            \
            left--;                                                                                \
        }                                                                                          \
    } while (0)
    if (neg) EMIT('-');
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            EMIT('0');
            EMIT('.');
            for (int i = 0; i < -exp - 1; i++) EMIT('0');
            for (int i = 0; i < nd; i++) EMIT(digits[i]);
        } else {
            for (int i = 0; i <= exp; i++) EMIT(i < nd ? digits[i] : '0');
            EMIT('.');
            if (nd > exp + 1)
                for (int i = exp + 1; i < nd; i++) EMIT(digits[i]);
            else
                EMIT('0');
        }
    } else {
        EMIT(digits[0]);
        if (nd > 1) {
            EMIT('.');
            for (int i = 1; i < nd; i++) EMIT(digits[i]);
        }
        EMIT('e');
        EMIT(exp < 0 ? '-' : '+');
        int ae = exp < 0 ? -exp : exp;
        char eb[16];
        snprintf(eb, sizeof eb, "%02d", ae);
        for (char *q = eb; *q; q++) EMIT(*q);
    }
#undef EMIT
    *o = 0;
}

static void write_repr(R *r, buf *b, tval v, int depth);

/* str(v) */
static void write_str(R *r, buf *b, tval v, int depth) {
    char tmp[48];
    switch (v.t) {
    case V_UNDEF:
        return;
    case V_NONE:
        buf_puts(r, b, "None");
        return;
    case V_BOOL:
        buf_puts(r, b, v.b ? "True" : "False");
        return;
    case V_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.i);
        buf_puts(r, b, tmp);
        return;
    case V_FLOAT:
        fmt_float(v.f, tmp, sizeof tmp);
        buf_puts(r, b, tmp);
        return;
    case V_STR:
        buf_put(r, b, v.s->s, v.s->len);
        return;
    default:
        write_repr(r, b, v, depth);
    }
}

static void repr_string(R *r, buf *b, const char *s, size_t n) {
    bool has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    buf_putc(r, b, q);
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        uint32_t c = utf8_next(s, n, &i);
        char e[16];
        if (c == (uint32_t)q || c == '\\') {
            buf_putc(r, b, '\\');
            buf_putc(r, b, (char)c);
        } else if (c == '\n') {
            buf_puts(r, b, "\\n");
        } else if (c == '\r') {
            buf_puts(r, b, "\\r");
        } else if (c == '\t') {
            buf_puts(r, b, "\\t");
        } else if (c < 0x20 || (c >= 0x7f && c < 0xa1) || c == 0xad) {
            snprintf(e, sizeof e, "\\x%02x", c);
            buf_puts(r, b, e);
        } else if ((c >= 0x2000 && c <= 0x200f) || (c >= 0x2028 && c <= 0x202f) ||
                   (c >= 0x205f && c <= 0x206f) || c == 0x3000 || c == 0xfeff || c == 0x1680) {
            snprintf(e, sizeof e, "\\u%04x", c);
            buf_puts(r, b, e);
        } else {
            buf_put(r, b, s + st, i - st);
        }
    }
    buf_putc(r, b, q);
}

/* repr(v), as Python prints containers */
static void write_repr(R *r, buf *b, tval v, int depth) {
    if (depth > TMPL_MAX_EVAL_DEPTH) rfail(r, "value nested too deeply to print");
    switch (v.t) {
    case V_STR:
        repr_string(r, b, v.s->s, v.s->len);
        return;
    case V_UNDEF:
        return;
    case V_LIST: {
        buf_putc(r, b, v.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) buf_puts(r, b, ", ");
            write_repr(r, b, v.l->v[i], depth + 1);
        }
        if (v.l->tuple && v.l->n == 1) buf_putc(r, b, ',');
        buf_putc(r, b, v.l->tuple ? ')' : ']');
        return;
    }
    case V_DICT:
    case V_NS: {
        buf_puts(r, b, v.t == V_NS ? "<Namespace {" : "{");
        for (size_t i = 0; i < v.d->n; i++) {
            if (i) buf_puts(r, b, ", ");
            write_repr(r, b, v.d->k[i], depth + 1);
            buf_puts(r, b, ": ");
            write_repr(r, b, v.d->v[i], depth + 1);
        }
        buf_puts(r, b, v.t == V_NS ? "}>" : "}");
        return;
    }
    case V_FUNC:
        buf_puts(r, b, "<function ");
        if (v.fn->name) buf_put(r, b, v.fn->name->s, v.fn->name->len);
        buf_putc(r, b, '>');
        return;
    case V_LOOP:
        buf_puts(r, b, "<LoopContext>");
        return;
    default:
        write_str(r, b, v, depth);
    }
}

static tstr *to_str(R *r, tval v) {
    if (v.t == V_STR) return v.s;
    buf b = {0};
    write_str(r, &b, v, 0);
    return new_str(r, b.p ? b.p : "", b.n);
}

typedef struct json_opts {
    const char *indent; /* NULL: single line */
    const char *item_sep, *key_sep;
    bool sort_keys, ensure_ascii;
} json_opts;

static void json_str_out(R *r, buf *b, const char *s, size_t n, bool ensure_ascii) {
    buf_putc(r, b, '"');
    size_t i = 0;
    while (i < n) {
        size_t st = i;
        uint32_t c = utf8_next(s, n, &i);
        char e[16];
        switch (c) {
        case '"':
            buf_puts(r, b, "\\\"");
            continue;
        case '\\':
            buf_puts(r, b, "\\\\");
            continue;
        case '\n':
            buf_puts(r, b, "\\n");
            continue;
        case '\r':
            buf_puts(r, b, "\\r");
            continue;
        case '\t':
            buf_puts(r, b, "\\t");
            continue;
        case '\b':
            buf_puts(r, b, "\\b");
            continue;
        case '\f':
            buf_puts(r, b, "\\f");
            continue;
        default:
            break;
        }
        if (c < 0x20 || (ensure_ascii && c >= 0x7f)) {
            if (c >= 0x10000) {
                uint32_t x = c - 0x10000;
                snprintf(e, sizeof e, "\\u%04x\\u%04x", 0xd800 + (x >> 10), 0xdc00 + (x & 0x3ff));
            } else {
                snprintf(e, sizeof e, "\\u%04x", c);
            }
            buf_puts(r, b, e);
        } else {
            buf_put(r, b, s + st, i - st);
        }
    }
    buf_putc(r, b, '"');
}

static void json_newline(R *r, buf *b, const json_opts *o, int level) {
    buf_putc(r, b, '\n');
    for (int i = 0; i < level; i++) buf_puts(r, b, o->indent);
}

static void sort_perm(R *r, tval *keys, size_t n, size_t *perm);

static void json_dump(R *r, buf *b, tval v, const json_opts *o, int level) {
    char tmp[48];
    if (level > TMPL_MAX_EVAL_DEPTH) rfail(r, "value nested too deeply for tojson");
    switch (v.t) {
    case V_NONE:
        buf_puts(r, b, "null");
        return;
    case V_BOOL:
        buf_puts(r, b, v.b ? "true" : "false");
        return;
    case V_INT:
        snprintf(tmp, sizeof tmp, "%lld", (long long)v.i);
        buf_puts(r, b, tmp);
        return;
    case V_FLOAT:
        if (isnan(v.f))
            buf_puts(r, b, "NaN");
        else if (isinf(v.f))
            buf_puts(r, b, v.f < 0 ? "-Infinity" : "Infinity");
        else {
            fmt_float(v.f, tmp, sizeof tmp);
            buf_puts(r, b, tmp);
        }
        return;
    case V_STR:
        json_str_out(r, b, v.s->s, v.s->len, o->ensure_ascii);
        return;
    case V_LIST:
        if (v.l->n == 0) {
            buf_puts(r, b, "[]");
            return;
        }
        buf_putc(r, b, '[');
        for (size_t i = 0; i < v.l->n; i++) {
            if (i) buf_puts(r, b, o->item_sep);
            if (o->indent) json_newline(r, b, o, level + 1);
            json_dump(r, b, v.l->v[i], o, level + 1);
        }
        if (o->indent) json_newline(r, b, o, level);
        buf_putc(r, b, ']');
        return;
    case V_DICT:
    case V_NS: {
        if (v.d->n == 0) {
            buf_puts(r, b, "{}");
            return;
        }
        size_t n = v.d->n;
        size_t *perm = ralloc(r, mul_size(r, n, sizeof *perm));
        for (size_t i = 0; i < n; i++) perm[i] = i;
        if (o->sort_keys) sort_perm(r, v.d->k, n, perm);
        buf_putc(r, b, '{');
        for (size_t j = 0; j < n; j++) {
            size_t i = perm[j];
            if (j) buf_puts(r, b, o->item_sep);
            if (o->indent) json_newline(r, b, o, level + 1);
            tval k = v.d->k[i];
            if (k.t == V_STR) {
                json_str_out(r, b, k.s->s, k.s->len, o->ensure_ascii);
            } else if (k.t == V_INT || k.t == V_FLOAT || k.t == V_BOOL || k.t == V_NONE) {
                buf tb = {0};
                json_dump(r, &tb, k, o, level + 1);
                json_str_out(r, b, tb.p, tb.n, o->ensure_ascii);
            } else {
                rfail(r, "tojson: keys must be str, int, float, bool or None, not %s",
                      type_name(k));
            }
            buf_puts(r, b, o->key_sep);
            json_dump(r, b, v.d->v[i], o, level + 1);
        }
        if (o->indent) json_newline(r, b, o, level);
        buf_putc(r, b, '}');
        return;
    }
    case V_UNDEF:
        rfail(r, "tojson: Object of type Undefined is not JSON serializable");
    default:
        rfail(r, "tojson: Object of type %s is not JSON serializable", type_name(v));
    }
}

/* Stable merge sort of a permutation by cmp_vals on keys[perm[i]]. */

static void merge_sort_idx(R *r, tval *keys, size_t *a, size_t *tmp, size_t n, bool fold) {
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort_idx(r, keys, a, tmp, h, fold);
    merge_sort_idx(r, keys, a + h, tmp, n - h, fold);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (cmp_vals(r, keys[a[j]], keys[a[i]], fold) < 0)
            tmp[k++] = a[j++];
        else
            tmp[k++] = a[i++];
    }
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

static void sort_perm_fold(R *r, tval *keys, size_t n, size_t *perm, bool fold) {
    size_t *tmp = ralloc(r, mul_size(r, n ? n : 1, sizeof *tmp));
    merge_sort_idx(r, keys, perm, tmp, n, fold);
}

static void sort_perm(R *r, tval *keys, size_t n, size_t *perm) {
    sort_perm_fold(r, keys, n, perm, false);
}

/* ------------------------------------------------------------------------ */
/* Scopes and names                                                          */

static void scope_set(R *r, scope *sc, tstr *name, tval v) {
    for (int i = 0; i < sc->n; i++)
        if (sc->v[i].name->len == name->len && !memcmp(sc->v[i].name->s, name->s, name->len)) {
            sc->v[i].v = v;
            return;
        }
    if (sc->n == sc->cap) {
        int nc = sc->cap ? sc->cap * 2 : 8;
        var *nv = ralloc(r, (size_t)nc * sizeof *nv);
        if (sc->n) memcpy(nv, sc->v, (size_t)sc->n * sizeof *nv);
        sc->v = nv;
        sc->cap = nc;
    }
    sc->v[sc->n].name = name;
    sc->v[sc->n].v = v;
    sc->n++;
}

static scope *new_scope(R *r, scope *parent) {
    scope *s = ralloc(r, sizeof *s);
    memset(s, 0, sizeof *s);
    s->parent = parent;
    return s;
}

static tstr *lit_name(R *r, const char *s) {
    return new_str(r, s, strlen(s));
}

enum { B_RANGE, B_NAMESPACE, B_DICT, B_RAISE, B_STRFTIME, B_COUNT };
static const char *const builtin_names[B_COUNT] = {"range", "namespace", "dict", "raise_exception",
                                                   "strftime_now"};

static tval lookup(R *r, scope *sc, tstr *name) {
    for (scope *s = sc; s; s = s->parent)
        for (int i = s->n - 1; i >= 0; i--)
            if (s->v[i].name->len == name->len && !memcmp(s->v[i].name->s, name->s, name->len))
                return s->v[i].v;
    tval v;
    if (r->globals && dict_get(r, r->globals, mk_strv(name), &v)) return v;
    for (int i = 0; i < B_COUNT; i++)
        if (!strcmp(builtin_names[i], name->s)) {
            tfunc *f = ralloc(r, sizeof *f);
            memset(f, 0, sizeof *f);
            f->kind = FN_BUILTIN;
            f->id = i;
            f->name = name;
            tval fv = {.t = V_FUNC};
            fv.fn = f;
            return fv;
        }
    return undef_because(r, "'%.200s' is undefined", name->s);
}

/* ------------------------------------------------------------------------ */
/* Arguments                                                                 */

typedef struct args {
    int n;
    tval *v;
    int nk;
    tstr **kn;
    tval *kv;
} args;

/* Maps positional and keyword arguments onto params[]; absent ones are NOARG. */
static void bind(R *r, const char *what, const args *a, int skip, const char *const *params, int np,
                 tval *out) {
    for (int i = 0; i < np; i++) out[i] = NOARG;
    if (a->n - skip > np)
        rfail(r, "%s takes at most %d argument%s (%d given)", what, np, np == 1 ? "" : "s",
              a->n - skip);
    for (int i = skip; i < a->n; i++) out[i - skip] = a->v[i];
    for (int k = 0; k < a->nk; k++) {
        int j;
        for (j = 0; j < np; j++)
            if (!strcmp(params[j], a->kn[k]->s)) break;
        if (j == np) rfail(r, "%s got an unexpected keyword argument '%s'", what, a->kn[k]->s);
        if (out[j].t != V_NOARG)
            rfail(r, "%s got multiple values for argument '%s'", what, params[j]);
        out[j] = a->kv[k];
    }
}

static int64_t want_int(R *r, tval v, const char *what) {
    if (v.t == V_INT) return v.i;
    if (v.t == V_BOOL) return v.b;
    if (v.t == V_UNDEF) fail_undef(r, v);
    rfail(r, "%s: expected an integer, found %s", what, type_name(v));
}

static tstr *want_str(R *r, tval v, const char *what) {
    if (v.t == V_STR) return v.s;
    if (v.t == V_UNDEF) fail_undef(r, v);
    rfail(r, "%s: expected a string, found %s", what, type_name(v));
}

/* Items of an iterable: list/tuple items, dict keys, string characters. */
static void iter_items(R *r, tval v, tval **items, size_t *n) {
    switch (v.t) {
    case V_LIST:
        *items = v.l->v;
        *n = v.l->n;
        return;
    case V_DICT:
        *items = v.d->k;
        *n = v.d->n;
        return;
    case V_STR: {
        size_t cnt = utf8_count(v.s->s, v.s->len), i = 0, k = 0;
        tval *out = ralloc(r, mul_size(r, cnt ? cnt : 1, sizeof *out));
        while (i < v.s->len) {
            size_t st = i;
            utf8_next(v.s->s, v.s->len, &i);
            out[k++] = str_val(r, v.s->s + st, i - st);
        }
        *items = out;
        *n = k;
        return;
    }
    case V_UNDEF:
        *items = NULL;
        *n = 0;
        return;
    default:
        rfail(r, "'%s' object is not iterable", type_name(v));
    }
}

static tlist *to_list(R *r, tval v) {
    tval *items;
    size_t n;
    iter_items(r, v, &items, &n);
    tlist *l = list_new(r, n);
    if (n) memcpy(l->v, items, n * sizeof *items);
    l->n = n;
    return l;
}

static tval mk_tuple2(R *r, tval a, tval b) {
    tlist *l = list_new(r, 2);
    l->tuple = true;
    l->v[0] = a;
    l->v[1] = b;
    l->n = 2;
    return mk_listv(l);
}

/* ------------------------------------------------------------------------ */
/* Strings: Python's str methods (case mapping is ASCII only)                */

/* Byte offset of code point index ci (clamped to the end). */
static size_t cp_offset(const tstr *s, size_t ci) {
    size_t i = 0;
    while (ci > 0 && i < s->len) {
        utf8_next(s->s, s->len, &i);
        ci--;
    }
    return i;
}

static bool in_cpset(const uint32_t *set, size_t n, uint32_t c) {
    for (size_t i = 0; i < n; i++)
        if (set[i] == c) return true;
    return false;
}

/* mode: 1 left, 2 right, 3 both. chars: NOARG/NONE for whitespace. */
static tval str_strip(R *r, tstr *s, tval chars, int mode) {
    uint32_t *set = NULL;
    size_t nset = 0;
    bool ws = chars.t == V_NOARG || chars.t == V_NONE;
    if (!ws) {
        tstr *c = want_str(r, chars, "strip");
        set = ralloc(r, mul_size(r, c->len + 1, sizeof *set));
        size_t i = 0;
        while (i < c->len) set[nset++] = utf8_next(c->s, c->len, &i);
    }
    size_t i = 0, start = s->len, end = 0;
    bool seen = false;
    while (i < s->len) {
        size_t st = i;
        uint32_t c = utf8_next(s->s, s->len, &i);
        bool strip = ws ? py_space(c) : in_cpset(set, nset, c);
        if (!strip) {
            if (!seen) start = st;
            seen = true;
            end = i;
        }
    }
    if (!seen) return str_val(r, "", 0); /* all stripped, whichever side */
    size_t a = (mode & 1) ? start : 0, b = (mode & 2) ? end : s->len;
    return str_val(r, s->s + a, b - a);
}

static const char *find_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn == 0) return h;
    if (nn > hn) return NULL;
    return memmem(h, hn, nd, nn);
}

static const char *rfind_bytes(const char *h, size_t hn, const char *nd, size_t nn) {
    if (nn > hn) return NULL;
    for (size_t i = hn - nn + 1; i-- > 0;)
        if (!memcmp(h + i, nd, nn)) return h + i;
    return NULL;
}

static tval str_split(R *r, tstr *s, tval sepv, tval maxv, bool from_right) {
    int64_t maxsplit = maxv.t == V_NOARG ? -1 : want_int(r, maxv, "split");
    tlist *out = list_new(r, 0);
    if (sepv.t == V_NOARG || sepv.t == V_NONE) {
        /* runs of whitespace; tokens as byte ranges */
        size_t cap = 16, nt = 0;
        size_t *ts = ralloc(r, cap * sizeof *ts), *te = ralloc(r, cap * sizeof *te);
        size_t i = 0;
        while (i < s->len) {
            size_t k;
            while (i < s->len && (k = space_at(s->s, s->len, i)) > 0) i += k;
            if (i >= s->len) break;
            size_t st = i;
            while (i < s->len && space_at(s->s, s->len, i) == 0) utf8_next(s->s, s->len, &i);
            if (nt == cap) {
                size_t *a = ralloc(r, mul_size(r, cap * 2, sizeof *a));
                size_t *b = ralloc(r, mul_size(r, cap * 2, sizeof *b));
                memcpy(a, ts, nt * sizeof *a);
                memcpy(b, te, nt * sizeof *b);
                ts = a;
                te = b;
                cap *= 2;
            }
            ts[nt] = st;
            te[nt] = i;
            nt++;
        }
        if (maxsplit < 0 || (size_t)maxsplit >= nt) {
            for (size_t t = 0; t < nt; t++)
                list_push(r, out, str_val(r, s->s + ts[t], te[t] - ts[t]));
        } else if (!from_right) {
            for (size_t t = 0; t < (size_t)maxsplit; t++)
                list_push(r, out, str_val(r, s->s + ts[t], te[t] - ts[t]));
            size_t st = ts[maxsplit];
            list_push(r, out, str_val(r, s->s + st, s->len - st));
        } else {
            size_t keep = nt - (size_t)maxsplit; /* tokens merged into the first piece */
            size_t en = te[keep - 1];
            list_push(r, out, str_val(r, s->s, en));
            for (size_t t = keep; t < nt; t++)
                list_push(r, out, str_val(r, s->s + ts[t], te[t] - ts[t]));
        }
        return mk_listv(out);
    }
    tstr *sep = want_str(r, sepv, "split");
    if (sep->len == 0) rfail(r, "split: empty separator");
    if (!from_right) {
        size_t p = 0;
        int64_t done = 0;
        for (;;) {
            const char *f = (maxsplit < 0 || done < maxsplit)
                                ? find_bytes(s->s + p, s->len - p, sep->s, sep->len)
                                : NULL;
            if (!f) {
                list_push(r, out, str_val(r, s->s + p, s->len - p));
                break;
            }
            size_t at = (size_t)(f - s->s);
            list_push(r, out, str_val(r, s->s + p, at - p));
            p = at + sep->len;
            done++;
        }
        return mk_listv(out);
    }
    /* from the right: collect pieces backwards, then reverse */
    size_t end = s->len;
    int64_t done = 0;
    for (;;) {
        const char *f =
            (maxsplit < 0 || done < maxsplit) ? rfind_bytes(s->s, end, sep->s, sep->len) : NULL;
        if (!f) {
            list_push(r, out, str_val(r, s->s, end));
            break;
        }
        size_t at = (size_t)(f - s->s);
        list_push(r, out, str_val(r, s->s + at + sep->len, end - at - sep->len));
        end = at;
        done++;
    }
    for (size_t i = 0, j = out->n - 1; i < j; i++, j--) {
        tval t = out->v[i];
        out->v[i] = out->v[j];
        out->v[j] = t;
    }
    return mk_listv(out);
}

static tval str_replace(R *r, tstr *s, tstr *old, tstr *nw, int64_t count) {
    buf b = {0};
    if (old->len == 0) {
        size_t i = 0;
        int64_t done = 0;
        if (count != 0) {
            buf_put(r, &b, nw->s, nw->len);
            done++;
        }
        while (i < s->len) {
            size_t st = i;
            utf8_next(s->s, s->len, &i);
            buf_put(r, &b, s->s + st, i - st);
            if (count < 0 || done < count) {
                buf_put(r, &b, nw->s, nw->len);
                done++;
            }
        }
        return buf_val(r, &b);
    }
    size_t p = 0;
    int64_t done = 0;
    for (;;) {
        const char *f =
            (count < 0 || done < count) ? find_bytes(s->s + p, s->len - p, old->s, old->len) : NULL;
        if (!f) break;
        size_t at = (size_t)(f - s->s);
        buf_put(r, &b, s->s + p, at - p);
        buf_put(r, &b, nw->s, nw->len);
        p = at + old->len;
        done++;
    }
    buf_put(r, &b, s->s + p, s->len - p);
    return buf_val(r, &b);
}

/* Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
 * and fullwidth Latin (Python maps all of Unicode, incl. 'ß' -> 'SS'; the
 * rest is left unchanged here). */
static uint32_t cp_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0xb5) return c;
    if (c == 0xb5) return 0x39c;
    if ((c >= 0xe0 && c <= 0xfe && c != 0xf7)) return c - 32;
    if (c == 0xff) return 0x178;
    if (c >= 0x100 && c <= 0x17f) {
        if (c == 0x131) return 'I';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c : c - 1;
        if (c == 0x138 || c == 0x149 || c == 0x17f) return c == 0x17f ? 'S' : c;
        return (c & 1) ? c - 1 : c;
    }
    if ((c >= 0x3b1 && c <= 0x3c1) || (c >= 0x3c3 && c <= 0x3cb)) return c - 32;
    if (c == 0x3c2) return 0x3a3;
    if (c == 0x3ac) return 0x386;
    if (c >= 0x3ad && c <= 0x3af) return c - 37;
    if (c == 0x3cc) return 0x38c;
    if (c == 0x3cd || c == 0x3ce) return c - 63;
    if (c >= 0x430 && c <= 0x44f) return c - 32;
    if (c >= 0x450 && c <= 0x45f) return c - 80;
    if (c >= 0xff41 && c <= 0xff5a) return c - 32;
    return c;
}

static uint32_t cp_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0xc0) return c;
    if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 32;
    if (c == 0x178) return 0xff;
    if (c >= 0x100 && c <= 0x17f) {
        if (c == 0x130) return 'i';
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17e)) return (c & 1) ? c + 1 : c;
        if (c == 0x138 || c == 0x149 || c == 0x17f) return c;
        return (c & 1) ? c : c + 1;
    }
    if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab)) return c + 32;
    if (c == 0x386) return 0x3ac;
    if (c >= 0x388 && c <= 0x38a) return c + 37;
    if (c == 0x38c) return 0x3cc;
    if (c == 0x38e || c == 0x38f) return c + 63;
    if (c >= 0x410 && c <= 0x42f) return c + 32;
    if (c >= 0x400 && c <= 0x40f) return c + 80;
    if (c >= 0xff21 && c <= 0xff3a) return c + 32;
    return c;
}

static bool alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool cp_cased(uint32_t c) {
    return c == 0xdf || cp_upper(c) != c || cp_lower(c) != c;
}

/* kind: 'u' upper, 'l' lower, 'c' capitalize, 't' Python title, 'j' Jinja title filter */
static tval str_case(R *r, tstr *s, char kind) {
    buf b = {0};
    buf_reserve(r, &b, s->len + 8);
    bool prev_cased = false, word_start = true, first = true;
    size_t i = 0;
    while (i < s->len) {
        size_t st = i;
        uint32_t c = utf8_next(s->s, s->len, &i), o = c;
        if (i - st == 1 && c >= 0x80) { /* an invalid byte: kept as is */
            buf_putc(r, &b, (char)c);
            prev_cased = first = word_start = false;
            continue;
        }
        bool prev_was_cased = prev_cased, at_start = kind == 'c' ? first : word_start;
        switch (kind) {
        case 'u':
            o = cp_upper(c);
            break;
        case 'l':
            o = cp_lower(c);
            break;
        case 'c':
            o = first ? cp_upper(c) : cp_lower(c);
            break;
        case 't':
            o = prev_cased ? cp_lower(c) : cp_upper(c);
            prev_cased = cp_cased(c);
            break;
        case 'j': {
            bool sep = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '-' || c == '(' ||
                       c == '{' || c == '[' || c == '<' || c == '\f' || c == '\v';
            o = word_start ? cp_upper(c) : cp_lower(c);
            word_start = sep;
            break;
        }
        default:
            break;
        }
        first = false;
        if (c == 0xdf && o == 0xdf && kind != 'l' &&
            (kind == 'u' || (kind == 't' && !prev_was_cased) ||
             ((kind == 'c' || kind == 'j') && at_start))) {
            buf_puts(r, &b,
                     (kind == 'u' || kind == 'j')
                         ? "SS"
                         : "Ss"); /* Python's full case mapping of sharp s */
            continue;
        }
        if (c == 0x130 && kind != 'u' && o == 'i') {
            buf_puts(r, &b, "i\xcc\x87"); /* 'İ'.lower() is 'i' + U+0307 */
            continue;
        }
        char e[4];
        buf_put(r, &b, e, utf8_put(e, o));
    }
    return buf_val(r, &b);
}

static bool starts_with(tstr *s, tstr *p) {
    return p->len <= s->len && !memcmp(s->s, p->s, p->len);
}
static bool ends_with(tstr *s, tstr *p) {
    return p->len <= s->len && !memcmp(s->s + s->len - p->len, p->s, p->len);
}

static bool affix_match(R *r, tstr *s, tval arg, bool end, const char *what) {
    if (arg.t == V_LIST && arg.l->tuple) {
        for (size_t i = 0; i < arg.l->n; i++) {
            tstr *p = want_str(r, arg.l->v[i], what);
            if (end ? ends_with(s, p) : starts_with(s, p)) return true;
        }
        return false;
    }
    tstr *p = want_str(r, arg, what);
    return end ? ends_with(s, p) : starts_with(s, p);
}

static tval str_find(tstr *s, tstr *sub, bool right) {
    const char *f = right ? rfind_bytes(s->s, s->len, sub->s, sub->len)
                          : find_bytes(s->s, s->len, sub->s, sub->len);
    if (!f) return mk_int(-1);
    return mk_int((int64_t)utf8_count(s->s, (size_t)(f - s->s)));
}

static tval str_lines(R *r, tstr *s) {
    tlist *out = list_new(r, 0);
    size_t st = 0, i = 0;
    while (i < s->len) {
        char c = s->s[i];
        if (c == '\n' || c == '\r') {
            list_push(r, out, str_val(r, s->s + st, i - st));
            if (c == '\r' && i + 1 < s->len && s->s[i + 1] == '\n') i++;
            st = ++i;
        } else {
            i++;
        }
    }
    if (st < s->len) list_push(r, out, str_val(r, s->s + st, s->len - st));
    return mk_listv(out);
}

/* str.format with "{}", "{0}", "{name}", "{0[key]}"-free fields and optional
 * !s / !r; a format spec after ':' is an error that says so. */
static tval str_format(R *r, tstr *fmt, const args *a) {
    buf b = {0};
    size_t next = 0, i = 0;
    const char *s = fmt->s;
    while (i < fmt->len) {
        char c = s[i];
        if (c == '}') {
            if (i + 1 < fmt->len && s[i + 1] == '}') {
                buf_putc(r, &b, '}');
                i += 2;
                continue;
            }
            rfail(r, "str.format: single '}' encountered in format string");
        }
        if (c != '{') {
            buf_putc(r, &b, c);
            i++;
            continue;
        }
        if (i + 1 < fmt->len && s[i + 1] == '{') {
            buf_putc(r, &b, '{');
            i += 2;
            continue;
        }
        const char *close = memchr(s + i, '}', fmt->len - i);
        if (!close) rfail(r, "str.format: expected '}' before end of string");
        const char *f = s + i + 1, *fe = close;
        const char *bang = memchr(f, '!', (size_t)(fe - f));
        const char *colon = memchr(f, ':', (size_t)(fe - f));
        if (colon)
            rfail(r, "str.format: format specs ('%.*s') are not supported", (int)(fe - colon),
                  colon);
        char conv = 's';
        if (bang) {
            if (fe - bang != 2 || (bang[1] != 's' && bang[1] != 'r'))
                rfail(r, "str.format: only !s and !r conversions are supported");
            conv = bang[1];
            fe = bang;
        }
        tval v;
        size_t fl = (size_t)(fe - f);
        if (fl == 0) {
            if (next >= (size_t)a->n) rfail(r, "str.format: not enough positional arguments");
            v = a->v[next++];
        } else if (f[0] >= '0' && f[0] <= '9') {
            size_t k = 0;
            for (size_t j = 0; j < fl; j++) {
                if (f[j] < '0' || f[j] > '9' || k > 100000) rfail(r, "str.format: bad field");
                k = k * 10 + (size_t)(f[j] - '0');
            }
            if (k >= (size_t)a->n) rfail(r, "str.format: index %zu out of range", k);
            v = a->v[k];
        } else {
            int k;
            for (k = 0; k < a->nk; k++)
                if (a->kn[k]->len == fl && !memcmp(a->kn[k]->s, f, fl)) break;
            if (k == a->nk) rfail(r, "str.format: no argument named '%.*s'", (int)fl, f);
            v = a->kv[k];
        }
        if (conv == 'r')
            write_repr(r, &b, v, 0);
        else
            write_str(r, &b, v, 0);
        i = (size_t)(close - s) + 1;
    }
    return buf_val(r, &b);
}

static tval str_join(R *r, tstr *sep, tval items_v, const char *attr);

static const char *const str_methods[] = {
    "strip",   "lstrip",  "rstrip",     "split",        "rsplit",       "startswith", "endswith",
    "replace", "upper",   "lower",      "title",        "capitalize",   "find",       "rfind",
    "index",   "count",   "join",       "isdigit",      "isalpha",      "isalnum",    "isspace",
    "islower", "isupper", "splitlines", "removeprefix", "removesuffix", "format",     NULL};
static const char *const dict_methods[] = {"items", "keys", "values", "get", NULL};
static const char *const list_methods[] = {"append", "extend", "pop", "insert",
                                           "index",  "count",  NULL};

static bool in_names(const char *const *names, const char *s) {
    for (; *names; names++)
        if (!strcmp(*names, s)) return true;
    return false;
}

static bool has_method(tval self, const char *name) {
    switch (self.t) {
    case V_STR:
        return in_names(str_methods, name);
    case V_DICT:
        return in_names(dict_methods, name);
    case V_LIST:
        return in_names(list_methods, name);
    case V_LOOP:
        return !strcmp(name, "cycle");
    default:
        return false;
    }
}

static bool str_all(tstr *s, int kind) {
    if (s->len == 0) return false;
    bool any_cased = false;
    size_t i = 0;
    while (i < s->len) {
        uint32_t c = utf8_next(s->s, s->len, &i);
        bool d = c >= '0' && c <= '9', a = c < 0x80 && alpha((char)c);
        switch (kind) {
        case 'd':
            if (!d) return false;
            break;
        case 'a':
            if (!a) return false;
            break;
        case 'n':
            if (!a && !d) return false;
            break;
        case 's':
            if (!py_space(c)) return false;
            break;
        case 'l':
            if (c >= 'A' && c <= 'Z') return false;
            any_cased |= c >= 'a' && c <= 'z';
            break;
        case 'u':
            if (c >= 'a' && c <= 'z') return false;
            any_cased |= c >= 'A' && c <= 'Z';
            break;
        default:
            break;
        }
    }
    return (kind == 'l' || kind == 'u') ? any_cased : true;
}

static void check_mutable(R *r, tlist *l) {
    if (l->frozen) rfail(r, "cannot modify a list passed to the template (values are read-only)");
}

static tval call_method(R *r, tval self, const char *name, const args *a) {
    tval p[3];
    char what[64];
    snprintf(what, sizeof what, "%s.%s()", type_name(self), name);
    if (self.t == V_STR) {
        tstr *s = self.s;
        if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
            static const char *const ps[] = {"chars"};
            bind(r, what, a, 0, ps, 1, p);
            return str_strip(r, s, p[0], name[0] == 'l' ? 1 : name[0] == 'r' ? 2 : 3);
        }
        if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
            static const char *const ps[] = {"sep", "maxsplit"};
            bind(r, what, a, 0, ps, 2, p);
            return str_split(r, s, p[0], p[1], name[0] == 'r');
        }
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            static const char *const ps[] = {"prefix"};
            bind(r, what, a, 0, ps, 1, p);
            if (p[0].t == V_NOARG) rfail(r, "%s takes exactly one argument", what);
            return mk_bool(affix_match(r, s, p[0], name[0] == 'e', what));
        }
        if (!strcmp(name, "replace")) {
            static const char *const ps[] = {"old", "new", "count"};
            bind(r, what, a, 0, ps, 3, p);
            if (p[1].t == V_NOARG) rfail(r, "%s takes at least 2 arguments", what);
            return str_replace(r, s, want_str(r, p[0], what), want_str(r, p[1], what),
                               p[2].t == V_NOARG ? -1 : want_int(r, p[2], what));
        }
        if (!strcmp(name, "upper")) return str_case(r, s, 'u');
        if (!strcmp(name, "lower")) return str_case(r, s, 'l');
        if (!strcmp(name, "title")) return str_case(r, s, 't');
        if (!strcmp(name, "capitalize")) return str_case(r, s, 'c');
        if (!strcmp(name, "find") || !strcmp(name, "rfind") || !strcmp(name, "index") ||
            !strcmp(name, "count")) {
            static const char *const ps[] = {"sub"};
            bind(r, what, a, 0, ps, 1, p);
            tstr *sub = want_str(r, p[0], what);
            if (name[0] == 'c') {
                if (sub->len == 0) return mk_int((int64_t)utf8_count(s->s, s->len) + 1);
                int64_t c = 0;
                size_t q = 0;
                const char *f;
                while ((f = find_bytes(s->s + q, s->len - q, sub->s, sub->len)) != NULL) {
                    c++;
                    q = (size_t)(f - s->s) + sub->len;
                }
                return mk_int(c);
            }
            tval v = str_find(s, sub, name[0] == 'r');
            if (name[0] == 'i' && v.i < 0) rfail(r, "%s: substring not found", what);
            return v;
        }
        if (!strcmp(name, "join")) {
            static const char *const ps[] = {"iterable"};
            bind(r, what, a, 0, ps, 1, p);
            tval *items;
            size_t n;
            iter_items(r, p[0], &items, &n);
            for (size_t i = 0; i < n; i++)
                if (items[i].t != V_STR)
                    rfail(r, "%s: sequence item %zu: expected str, found %s", what, i,
                          type_name(items[i]));
            return str_join(r, s, p[0], NULL);
        }
        if (!strncmp(name, "is", 2)) {
            bind(r, what, a, 0, NULL, 0, p);
            int k = !strcmp(name, "isdigit")   ? 'd'
                    : !strcmp(name, "isalpha") ? 'a'
                    : !strcmp(name, "isalnum") ? 'n'
                    : !strcmp(name, "isspace") ? 's'
                    : !strcmp(name, "islower") ? 'l'
                                               : 'u';
            return mk_bool(str_all(s, k));
        }
        if (!strcmp(name, "splitlines")) return str_lines(r, s);
        if (!strcmp(name, "format")) return str_format(r, s, a);
        if (!strcmp(name, "removeprefix") || !strcmp(name, "removesuffix")) {
            static const char *const ps[] = {"affix"};
            bind(r, what, a, 0, ps, 1, p);
            tstr *x = want_str(r, p[0], what);
            if (name[6] == 'p')
                return starts_with(s, x) ? str_val(r, s->s + x->len, s->len - x->len) : self;
            return ends_with(s, x) ? str_val(r, s->s, s->len - x->len) : self;
        }
    } else if (self.t == V_DICT) {
        tdict *d = self.d;
        if (!strcmp(name, "items") || !strcmp(name, "keys") || !strcmp(name, "values")) {
            bind(r, what, a, 0, NULL, 0, p);
            tlist *l = list_new(r, d->n);
            for (size_t i = 0; i < d->n; i++)
                l->v[i] = name[0] == 'i'   ? mk_tuple2(r, d->k[i], d->v[i])
                          : name[0] == 'k' ? d->k[i]
                                           : d->v[i];
            l->n = d->n;
            return mk_listv(l);
        }
        if (!strcmp(name, "get")) {
            static const char *const ps[] = {"key", "default"};
            bind(r, what, a, 0, ps, 2, p);
            if (p[0].t == V_NOARG) rfail(r, "%s takes at least 1 argument", what);
            tval v;
            if (dict_get(r, d, p[0], &v)) return v;
            return p[1].t == V_NOARG ? NONE : p[1];
        }
    } else if (self.t == V_LIST) {
        tlist *l = self.l;
        if (!strcmp(name, "append")) {
            static const char *const ps[] = {"item"};
            bind(r, what, a, 0, ps, 1, p);
            if (p[0].t == V_NOARG) rfail(r, "%s takes exactly one argument", what);
            if (l->tuple) rfail(r, "'tuple' object has no attribute 'append'");
            check_mutable(r, l);
            list_push(r, l, p[0]);
            return NONE;
        }
        if (!strcmp(name, "extend")) {
            static const char *const ps[] = {"iterable"};
            bind(r, what, a, 0, ps, 1, p);
            check_mutable(r, l);
            tval *items;
            size_t n;
            iter_items(r, p[0], &items, &n);
            for (size_t i = 0; i < n; i++) list_push(r, l, items[i]);
            return NONE;
        }
        if (!strcmp(name, "pop") || !strcmp(name, "insert")) {
            static const char *const ps[] = {"index", "item"};
            bind(r, what, a, 0, ps, 2, p);
            check_mutable(r, l);
            int64_t n = (int64_t)l->n;
            if (name[0] == 'p') {
                int64_t i = p[0].t == V_NOARG ? n - 1 : want_int(r, p[0], what);
                if (i < 0) i += n;
                if (i < 0 || i >= n) rfail(r, "pop index out of range");
                tval v = l->v[i];
                memmove(l->v + i, l->v + i + 1, (size_t)(n - i - 1) * sizeof *l->v);
                l->n--;
                return v;
            }
            int64_t i = want_int(r, p[0], what);
            if (p[1].t == V_NOARG) rfail(r, "%s takes exactly 2 arguments", what);
            if (i < 0) i += n;
            if (i < 0) i = 0;
            if (i > n) i = n;
            list_push(r, l, NONE);
            memmove(l->v + i + 1, l->v + i, (size_t)(n - i) * sizeof *l->v);
            l->v[i] = p[1];
            return NONE;
        }
        if (!strcmp(name, "index") || !strcmp(name, "count")) {
            static const char *const ps[] = {"value"};
            bind(r, what, a, 0, ps, 1, p);
            int64_t c = 0;
            for (size_t i = 0; i < l->n; i++)
                if (eq(l->v[i], p[0])) {
                    if (name[0] == 'i') return mk_int((int64_t)i);
                    c++;
                }
            if (name[0] == 'i') rfail(r, "%s: value is not in list", what);
            return mk_int(c);
        }
    } else if (self.t == V_LOOP && !strcmp(name, "cycle")) {
        if (a->n == 0) rfail(r, "loop.cycle() needs at least one argument");
        return a->v[self.loop->index0 % a->n];
    }
    rfail(r, "'%s' object has no method '%s'", type_name(self), name);
}

/* ------------------------------------------------------------------------ */
/* Attribute and item access                                                 */

static tval bound_method(R *r, tval self, const char *name) {
    tfunc *f = ralloc(r, sizeof *f);
    memset(f, 0, sizeof *f);
    f->kind = FN_METHOD;
    f->self = self;
    f->name = lit_name(r, name);
    tval v = {.t = V_FUNC};
    v.fn = f;
    return v;
}

static tval loop_attr(R *r, tloop *L, const char *name) {
    int64_t i = L->index0, n = L->length;
    if (!strcmp(name, "index")) return mk_int(i + 1);
    if (!strcmp(name, "index0")) return mk_int(i);
    if (!strcmp(name, "revindex")) return mk_int(n - i);
    if (!strcmp(name, "revindex0")) return mk_int(n - i - 1);
    if (!strcmp(name, "first")) return mk_bool(i == 0);
    if (!strcmp(name, "last")) return mk_bool(i == n - 1);
    if (!strcmp(name, "length")) return mk_int(n);
    if (!strcmp(name, "depth")) return mk_int(L->depth);
    if (!strcmp(name, "depth0")) return mk_int(L->depth - 1);
    if (!strcmp(name, "previtem"))
        return i > 0 ? L->items->v[i - 1] : undef_because(r, "there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? L->items->v[i + 1] : undef_because(r, "there is no next item");
    if (!strcmp(name, "cycle")) return bound_method(r, (tval){.t = V_LOOP, .loop = L}, "cycle");
    return undef_because(r, "'LoopContext object' has no attribute '%.100s'", name);
}

static tval get_attr(R *r, tval obj, tstr *name) {
    tval v;
    switch (obj.t) {
    case V_UNDEF:
        fail_undef(r, obj);
    case V_DICT:
        if (has_method(obj, name->s)) return bound_method(r, obj, name->s);
        if (dict_get(r, obj.d, mk_strv(name), &v)) return v;
        return undef_because(r, "'dict object' has no attribute '%.200s'", name->s);
    case V_NS:
        if (dict_get(r, obj.d, mk_strv(name), &v)) return v;
        return undef_because(r, "'Namespace object' has no attribute '%.200s'", name->s);
    case V_LOOP:
        return loop_attr(r, obj.loop, name->s);
    default:
        if (has_method(obj, name->s)) return bound_method(r, obj, name->s);
        return undef_because(r, "'%s object' has no attribute '%.200s'", type_name(obj), name->s);
    }
}

static int64_t norm_index(int64_t i, int64_t n) {
    return i < 0 ? i + n : i;
}

static tval get_item(R *r, tval obj, tval key) {
    tval v;
    switch (obj.t) {
    case V_UNDEF:
        fail_undef(r, obj);
    case V_DICT:
    case V_NS:
        if (dict_get(r, obj.d, key, &v)) return v;
        if (key.t == V_STR) return get_attr(r, obj, key.s);
        break;
    case V_LIST:
        if (key.t == V_INT || key.t == V_BOOL) {
            int64_t i = norm_index(num_i(key), (int64_t)obj.l->n);
            if (i >= 0 && i < (int64_t)obj.l->n) return obj.l->v[i];
            return undef_because(r, "%s index %lld out of range", type_name(obj),
                                 (long long)num_i(key));
        }
        if (key.t == V_STR) return get_attr(r, obj, key.s);
        break;
    case V_STR:
        if (key.t == V_INT || key.t == V_BOOL) {
            int64_t n = (int64_t)utf8_count(obj.s->s, obj.s->len);
            int64_t i = norm_index(num_i(key), n);
            if (i >= 0 && i < n) {
                size_t st = cp_offset(obj.s, (size_t)i), en = st;
                utf8_next(obj.s->s, obj.s->len, &en);
                return str_val(r, obj.s->s + st, en - st);
            }
            return undef_because(r, "string index %lld out of range", (long long)num_i(key));
        }
        if (key.t == V_STR) return get_attr(r, obj, key.s);
        break;
    case V_LOOP:
        if (key.t == V_STR) return loop_attr(r, obj.loop, key.s->s);
        break;
    default:
        break;
    }
    if (key.t == V_STR)
        return undef_because(r, "'%s object' has no attribute '%.200s'", type_name(obj), key.s->s);
    return undef_because(r, "'%s object' has no item of that key", type_name(obj));
}

/* Python slice semantics on a sequence of n items. */
static void slice_indices(R *r, int64_t n, tval a, tval b, tval c, int64_t *start, int64_t *stop,
                          int64_t *step) {
    *step = (c.t == V_NOARG || c.t == V_NONE) ? 1 : want_int(r, c, "slice step");
    if (*step == 0) rfail(r, "slice step cannot be zero");
    if (*step == INT64_MIN) *step = -INT64_MAX;
    bool neg = *step < 0;
    int64_t lo_ = neg ? -1 : 0, hi_ = neg ? n - 1 : n;
    if (a.t == V_NOARG || a.t == V_NONE) {
        *start = neg ? hi_ : lo_;
    } else {
        int64_t x = want_int(r, a, "slice start");
        if (x < 0) {
            x = x < -n ? lo_ : x + n;
            if (x < lo_) x = lo_;
        } else if (x > hi_) {
            x = hi_;
        }
        *start = x;
    }
    if (b.t == V_NOARG || b.t == V_NONE) {
        *stop = neg ? lo_ : hi_;
    } else {
        int64_t x = want_int(r, b, "slice stop");
        if (x < 0) {
            x = x < -n ? lo_ : x + n;
            if (x < lo_) x = lo_;
        } else if (x > hi_) {
            x = hi_;
        }
        *stop = x;
    }
}

static tval do_slice(R *r, tval obj, tval a, tval b, tval c) {
    if (obj.t == V_UNDEF) fail_undef(r, obj);
    int64_t start, stop, step;
    if (obj.t == V_LIST) {
        slice_indices(r, (int64_t)obj.l->n, a, b, c, &start, &stop, &step);
        tlist *l = list_new(r, 0);
        l->tuple = obj.l->tuple;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            list_push(r, l, obj.l->v[i]);
        return mk_listv(l);
    }
    if (obj.t == V_STR) {
        tstr *s = obj.s;
        size_t n = utf8_count(s->s, s->len);
        size_t *off = ralloc(r, mul_size(r, n + 1, sizeof *off));
        size_t i = 0, k = 0;
        while (i < s->len) {
            off[k++] = i;
            utf8_next(s->s, s->len, &i);
        }
        off[k] = s->len;
        slice_indices(r, (int64_t)n, a, b, c, &start, &stop, &step);
        buf o = {0};
        for (int64_t j = start; step > 0 ? j < stop : j > stop; j += step)
            buf_put(r, &o, s->s + off[j], off[j + 1] - off[j]);
        return buf_val(r, &o);
    }
    rfail(r, "'%s' object cannot be sliced", type_name(obj));
}

/* ------------------------------------------------------------------------ */
/* Operators                                                                 */

static _Noreturn void bad_operands(R *r, int op, tval a, tval b) {
    if (a.t == V_UNDEF) fail_undef(r, a);
    if (b.t == V_UNDEF) fail_undef(r, b);
    rfail(r, "unsupported operand types for %s: '%s' and '%s'", op_text[op], type_name(a),
          type_name(b));
}

static _Noreturn void int_overflow(R *r) {
    rfail(r, "integer overflow (template integers are 64-bit)");
}

static tval repeat_val(R *r, tval seq, int64_t times) {
    if (times < 0) times = 0;
    if (seq.t == V_STR) {
        size_t total = mul_size(r, seq.s->len, (size_t)times);
        if (total > TMPL_MAX_OUTPUT) rfail(r, "string repetition result too large");
        buf b = {0};
        buf_reserve(r, &b, total);
        for (int64_t i = 0; i < times; i++) buf_put(r, &b, seq.s->s, seq.s->len);
        return buf_val(r, &b);
    }
    size_t total = mul_size(r, seq.l->n, (size_t)times);
    if (total > TMPL_MAX_OUTPUT) rfail(r, "list repetition result too large");
    tlist *l = list_new(r, total);
    l->tuple = seq.l->tuple;
    for (int64_t i = 0; i < times; i++)
        for (size_t k = 0; k < seq.l->n; k++) l->v[l->n++] = seq.l->v[k];
    return mk_listv(l);
}

static tval percent_format(R *r, tstr *fmt, tval args);

static tval arith(R *r, int op, tval a, tval b) {
    if (op == OP_TILDE) {
        buf o = {0};
        write_str(r, &o, a, 0);
        write_str(r, &o, b, 0);
        return buf_val(r, &o);
    }
    if (is_num(a) && is_num(b)) {
        bool fl = a.t == V_FLOAT || b.t == V_FLOAT;
        if (op == OP_DIV) {
            double y = num_f(b);
            if (y == 0) rfail(r, "division by zero");
            return mk_float(num_f(a) / y);
        }
        if (fl) {
            double x = num_f(a), y = num_f(b);
            switch (op) {
            case OP_ADD:
                return mk_float(x + y);
            case OP_SUB:
                return mk_float(x - y);
            case OP_MUL:
                return mk_float(x * y);
            case OP_FLOORDIV:
                if (y == 0) rfail(r, "float floor division by zero");
                return mk_float(floor(x / y));
            case OP_MOD: {
                if (y == 0) rfail(r, "float modulo by zero");
                double m = fmod(x, y);
                if (m != 0 && ((m < 0) != (y < 0))) m += y;
                return mk_float(m);
            }
            case OP_POW:
                if (x < 0 && y != floor(y)) rfail(r, "negative number to a fractional power");
                if (x == 0 && y < 0) rfail(r, "0.0 cannot be raised to a negative power");
                return mk_float(pow(x, y));
            default:
                break;
            }
        } else {
            int64_t x = num_i(a), y = num_i(b), z;
            switch (op) {
            case OP_ADD:
                if (__builtin_add_overflow(x, y, &z)) int_overflow(r);
                return mk_int(z);
            case OP_SUB:
                if (__builtin_sub_overflow(x, y, &z)) int_overflow(r);
                return mk_int(z);
            case OP_MUL:
                if (__builtin_mul_overflow(x, y, &z)) int_overflow(r);
                return mk_int(z);
            case OP_FLOORDIV:
            case OP_MOD: {
                if (y == 0) rfail(r, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) {
                    if (op == OP_MOD) return mk_int(0);
                    int_overflow(r);
                }
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q--;
                    m += y;
                }
                return mk_int(op == OP_MOD ? m : q);
            }
            case OP_POW: {
                if (y < 0) {
                    if (x == 0) rfail(r, "0 cannot be raised to a negative power");
                    return mk_float(pow((double)x, (double)y));
                }
                int64_t res = 1, base = x;
                while (y > 0) {
                    if (y & 1)
                        if (__builtin_mul_overflow(res, base, &res)) int_overflow(r);
                    y >>= 1;
                    if (y && __builtin_mul_overflow(base, base, &base)) int_overflow(r);
                }
                return mk_int(res);
            }
            default:
                break;
            }
        }
    }
    if (op == OP_ADD && a.t == V_STR && b.t == V_STR) {
        buf o = {0};
        buf_reserve(r, &o, a.s->len + b.s->len);
        buf_put(r, &o, a.s->s, a.s->len);
        buf_put(r, &o, b.s->s, b.s->len);
        return buf_val(r, &o);
    }
    if (op == OP_ADD && a.t == V_LIST && b.t == V_LIST && a.l->tuple == b.l->tuple) {
        tlist *l = list_new(r, a.l->n + b.l->n);
        l->tuple = a.l->tuple;
        if (a.l->n) memcpy(l->v, a.l->v, a.l->n * sizeof *l->v);
        if (b.l->n) memcpy(l->v + a.l->n, b.l->v, b.l->n * sizeof *l->v);
        l->n = a.l->n + b.l->n;
        return mk_listv(l);
    }
    if (op == OP_MUL && (a.t == V_STR || a.t == V_LIST) && (b.t == V_INT || b.t == V_BOOL))
        return repeat_val(r, a, num_i(b));
    if (op == OP_MUL && (b.t == V_STR || b.t == V_LIST) && (a.t == V_INT || a.t == V_BOOL))
        return repeat_val(r, b, num_i(a));
    if (op == OP_MOD && a.t == V_STR) return percent_format(r, a.s, b);
    bad_operands(r, op, a, b);
}

/* Python's printf-style formatting: fmt % args (the `%` operator and the
 * `format` filter). Flags, width, precision and %(name)s keys are supported;
 * conversions s r d i u f F e E g G x X o c %. */
static tval percent_format(R *r, tstr *fmt, tval args) {
    tval *items = &args;
    size_t nitems = 1, next = 0;
    const tdict *map = NULL;
    if (args.t == V_LIST && args.l->tuple) {
        items = args.l->v;
        nitems = args.l->n;
    } else if (args.t == V_DICT) {
        map = args.d;
    }
    buf b = {0};
    const char *f = fmt->s, *end = fmt->s + fmt->len;
    while (f < end) {
        const char *pc = memchr(f, '%', (size_t)(end - f));
        if (!pc) {
            buf_put(r, &b, f, (size_t)(end - f));
            break;
        }
        buf_put(r, &b, f, (size_t)(pc - f));
        f = pc + 1;
        tval v = NOARG;
        if (f < end && *f == '(') {
            const char *close = memchr(f, ')', (size_t)(end - f));
            if (!close || !map) rfail(r, "format: '%%(key)' needs a closing ')' and a dict");
            tval key = str_val(r, f + 1, (size_t)(close - f - 1));
            if (!dict_get(r, map, key, &v)) rfail(r, "format: key '%s' not found", key.s->s);
            f = close + 1;
        }
        char spec[32];
        size_t sl = 0;
        spec[sl++] = '%';
        while (f < end && strchr("-+ 0#", *f) && sl < 8) spec[sl++] = *f++;
        int width = 0, prec = -1;
        while (f < end && *f >= '0' && *f <= '9' && width < 10000)
            width = width * 10 + (*f++ - '0');
        if (f < end && *f == '.') {
            f++;
            prec = 0;
            while (f < end && *f >= '0' && *f <= '9' && prec < 10000)
                prec = prec * 10 + (*f++ - '0');
        }
        if (width > 4096 || prec > 4096) rfail(r, "format: width or precision too large");
        if (f >= end) rfail(r, "format: incomplete format");
        char conv = *f++;
        if (conv == '%') {
            buf_putc(r, &b, '%');
            continue;
        }
        if (v.t == V_NOARG) {
            if (map)
                v = args;
            else if (next < nitems)
                v = items[next++];
            else
                rfail(r, "format: not enough arguments for format string");
        }
        char out[8300];
        int k;
        sl += (size_t)snprintf(spec + sl, sizeof spec - sl, "*.*");
        switch (conv) {
        case 's':
        case 'r': {
            buf tb = {0};
            if (conv == 's')
                write_str(r, &tb, v, 0);
            else
                write_repr(r, &tb, v, 0);
            size_t cps = utf8_count(tb.p ? tb.p : "", tb.n), cut = tb.n;
            if (prec >= 0 && (size_t)prec < cps) {
                size_t i = 0, c = 0;
                while (i < tb.n && c < (size_t)prec) {
                    utf8_next(tb.p, tb.n, &i);
                    c++;
                }
                cut = i;
                cps = (size_t)prec;
            }
            bool left = memchr(spec, '-', sl) != NULL;
            size_t pad = (size_t)width > cps ? (size_t)width - cps : 0;
            if (!left)
                for (size_t i = 0; i < pad; i++) buf_putc(r, &b, ' ');
            buf_put(r, &b, tb.p ? tb.p : "", cut);
            if (left)
                for (size_t i = 0; i < pad; i++) buf_putc(r, &b, ' ');
            continue;
        }
        case 'd':
        case 'i':
        case 'u':
        case 'x':
        case 'X':
        case 'o':
        case 'c': {
            if (!is_num(v)) rfail(r, "format: %%%c needs a number, not %s", conv, type_name(v));
            int64_t x = v.t == V_FLOAT ? (int64_t)v.f : num_i(v);
            if (v.t == V_FLOAT && !(fabs(v.f) < 9.2e18)) rfail(r, "format: number out of range");
            if (conv == 'c') {
                char e[4];
                if (x < 0 || x > 0x10ffff) rfail(r, "format: %%c arg not in range");
                buf_put(r, &b, e, utf8_put(e, (uint32_t)x));
                continue;
            }
            char c2 = conv == 'i' || conv == 'u' ? 'd' : conv;
            spec[sl - 3] = 0; /* integers: no precision */
            size_t l2 = strlen(spec);
            snprintf(spec + l2, sizeof spec - l2, "*ll%c", c2);
            if ((c2 == 'x' || c2 == 'X' || c2 == 'o') && x < 0) {
                k = snprintf(out, sizeof out, spec, width, (long long)-x);
                buf_putc(r, &b, '-');
            } else {
                k = snprintf(out, sizeof out, spec, width, (long long)x);
            }
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G': {
            if (!is_num(v)) rfail(r, "format: %%%c needs a number, not %s", conv, type_name(v));
            snprintf(spec + sl, sizeof spec - sl, "%c", conv);
            k = snprintf(out, sizeof out, spec, width, prec < 0 ? 6 : prec, num_f(v));
            break;
        }
        default:
            rfail(r, "format: unsupported format character '%c'", conv);
        }
        if (k < 0 || (size_t)k >= sizeof out) rfail(r, "format: result too long");
        buf_put(r, &b, out, (size_t)k);
    }
    if (!map && next < nitems && !(nitems == 1 && args.t != V_LIST))
        rfail(r, "format: not all arguments converted during string formatting");
    return buf_val(r, &b);
}

static bool contains(R *r, tval container, tval item) {
    switch (container.t) {
    case V_STR:
        if (item.t != V_STR) {
            if (item.t == V_UNDEF) fail_undef(r, item);
            rfail(r, "'in <string>' requires a string as left operand, not %s", type_name(item));
        }
        return find_bytes(container.s->s, container.s->len, item.s->s, item.s->len) != NULL;
    case V_LIST:
        for (size_t i = 0; i < container.l->n; i++)
            if (eq(container.l->v[i], item)) return true;
        return false;
    case V_DICT:
        return dict_find(r, container.d, item) >= 0;
    case V_UNDEF:
        return false;
    default:
        rfail(r, "argument of type '%s' is not iterable", type_name(container));
    }
}

static bool compare(R *r, int op, tval a, tval b) {
    switch (op) {
    case OP_EQ:
        return eq(a, b);
    case OP_NE:
        return !eq(a, b);
    case OP_LT:
        return cmp_vals(r, a, b, false) < 0;
    case OP_LE:
        return cmp_vals(r, a, b, false) <= 0;
    case OP_GT:
        return cmp_vals(r, a, b, false) > 0;
    case OP_GE:
        return cmp_vals(r, a, b, false) >= 0;
    case OP_IN:
        return contains(r, b, a);
    case OP_NOTIN:
        return !contains(r, b, a);
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Filters and tests                                                         */

static tval apply_filter_v(R *r, int id, const char *fname, tval in, const args *a);
static bool apply_test_v(R *r, int id, const char *tname, tval v, const args *a, int skip);

static tval soft_str(R *r, tval v) {
    return v.t == V_STR ? v : mk_strv(to_str(r, v));
}

/* jinja's make_attrgetter: "a.b.0" looks up a, then b, then item 0. */
static tval attr_path(R *r, tval item, tstr *path) {
    const char *p = path->s, *end = path->s + path->len;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot) dot = end;
        size_t n = (size_t)(dot - p);
        bool digits = n > 0;
        for (size_t i = 0; i < n; i++) digits &= p[i] >= '0' && p[i] <= '9';
        tval key = digits && n < 18 ? mk_int(strtoll(p, NULL, 10)) : str_val(r, p, n);
        if (item.t == V_UNDEF) return item;
        item = get_item(r, item, key);
        p = dot + 1;
        if (dot == end) break;
    }
    return item;
}

static tval str_join(R *r, tstr *sep, tval items_v, const char *attr) {
    tval *items;
    size_t n;
    iter_items(r, items_v, &items, &n);
    buf b = {0};
    tstr *ap = attr ? lit_name(r, attr) : NULL;
    for (size_t i = 0; i < n; i++) {
        if (i) buf_put(r, &b, sep->s, sep->len);
        write_str(r, &b, ap ? attr_path(r, items[i], ap) : items[i], 0);
    }
    return buf_val(r, &b);
}

static int filter_id(const char *name) {
    for (size_t i = 0; i < sizeof filter_names / sizeof filter_names[0]; i++)
        if (!strcmp(filter_names[i].name, name)) return filter_names[i].id;
    return -1;
}
static int test_id(const char *name) {
    for (size_t i = 0; i < sizeof test_names / sizeof test_names[0]; i++)
        if (!strcmp(test_names[i].name, name)) return test_names[i].id;
    return -1;
}

/* select/reject/selectattr/rejectattr */
static tval filter_select(R *r, tval seq, const args *a, bool by_attr, bool keep, const char *fn) {
    tval *items;
    size_t n;
    iter_items(r, seq, &items, &n);
    int skip = 0;
    tstr *attr = NULL;
    if (by_attr) {
        if (a->n < 1) rfail(r, "%s needs an attribute name", fn);
        attr = want_str(r, a->v[0], fn);
        skip = 1;
    }
    int tid = -1;
    const char *tname = NULL;
    if (a->n > skip) {
        tname = want_str(r, a->v[skip], fn)->s;
        tid = test_id(tname);
        if (tid < 0) rfail(r, "%s: unknown test '%s'", fn, tname);
        skip++;
    }
    tlist *out = list_new(r, 0);
    for (size_t i = 0; i < n; i++) {
        tval v = attr ? attr_path(r, items[i], attr) : items[i];
        bool ok = tid < 0 ? truthy(v) : apply_test_v(r, tid, tname, v, a, skip);
        if (ok == keep) list_push(r, out, items[i]);
    }
    return mk_listv(out);
}

static tval sort_key(R *r, tval v, tstr *attr) {
    return attr ? attr_path(r, v, attr) : v;
}

static tval filter_int(tval v, tval def, int64_t base) {
    if (v.t == V_INT) return v;
    if (v.t == V_BOOL) return mk_int(v.b);
    if (v.t == V_FLOAT) {
        if (isfinite(v.f) && fabs(v.f) < 9.2e18) return mk_int((int64_t)v.f);
        return def;
    }
    if (v.t == V_STR) {
        const char *s = v.s->s;
        char *e;
        errno = 0;
        long long x = strtoll(s, &e, (int)base);
        while (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r') e++;
        if (e != s && !*e && !errno && e == s + v.s->len) return mk_int(x);
        double d = strtod(s, &e);
        while (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r') e++;
        if (e != s && !*e && isfinite(d) && fabs(d) < 9.2e18) return mk_int((int64_t)d);
    }
    return def;
}

static tval filter_float(tval v, tval def) {
    if (v.t == V_FLOAT) return v;
    if (v.t == V_INT || v.t == V_BOOL) return mk_float(num_f(v));
    if (v.t == V_STR) {
        char *e;
        double d = strtod(v.s->s, &e);
        while (*e == ' ' || *e == '\t' || *e == '\n' || *e == '\r') e++;
        if (e != v.s->s && !*e && e == v.s->s + v.s->len) return mk_float(d);
    }
    return def;
}

static tval filter_indent(R *r, tstr *s, tval width, bool first, bool blank) {
    tstr *ind;
    if (width.t == V_STR) {
        ind = width.s;
    } else {
        int64_t w = width.t == V_NOARG ? 4 : want_int(r, width, "indent");
        if (w < 0) w = 0;
        if (w > 4096) rfail(r, "indent: width %lld too large", (long long)w);
        char *sp = ralloc(r, (size_t)w + 1);
        memset(sp, ' ', (size_t)w);
        ind = new_str(r, sp, (size_t)w);
    }
    tval lines_v = str_lines(r, s);
    tlist *lines = lines_v.l;
    buf b = {0};
    if (first) buf_put(r, &b, ind->s, ind->len);
    for (size_t i = 0; i < lines->n; i++) {
        tstr *ln = lines->v[i].s;
        if (i) {
            buf_putc(r, &b, '\n');
            if (blank || ln->len) buf_put(r, &b, ind->s, ind->len);
        }
        buf_put(r, &b, ln->s, ln->len);
    }
    /* "s\n" keeps its trailing newline: splitlines() on s + "\n" drops only the added one */
    if (s->len && s->s[s->len - 1] == '\n') {
        buf_putc(r, &b, '\n');
        if (blank) buf_put(r, &b, ind->s, ind->len);
    }
    return buf_val(r, &b);
}

static tval apply_filter_v(R *r, int id, const char *fname, tval in, const args *a) {
    tval p[4];
    char what[64];
    snprintf(what, sizeof what, "filter '%s'", fname);
    switch (id) {
    case F_ABS:
        bind(r, what, a, 0, NULL, 0, p);
        if (in.t == V_INT) {
            if (in.i == INT64_MIN) int_overflow(r);
            return mk_int(in.i < 0 ? -in.i : in.i);
        }
        if (in.t == V_BOOL) return mk_int(in.b);
        if (in.t == V_FLOAT) return mk_float(fabs(in.f));
        bad_operands(r, OP_SUB, in, in);
    case F_ATTR: {
        static const char *const ps[] = {"name"};
        bind(r, what, a, 0, ps, 1, p);
        if (in.t == V_UNDEF) fail_undef(r, in);
        return get_attr(r, in, want_str(r, p[0], what));
    }
    case F_CAPITALIZE:
        bind(r, what, a, 0, NULL, 0, p);
        return str_case(r, soft_str(r, in).s, 'c');
    case F_LOWER:
        bind(r, what, a, 0, NULL, 0, p);
        return str_case(r, soft_str(r, in).s, 'l');
    case F_UPPER:
        bind(r, what, a, 0, NULL, 0, p);
        return str_case(r, soft_str(r, in).s, 'u');
    case F_TITLE:
        bind(r, what, a, 0, NULL, 0, p);
        return str_case(r, soft_str(r, in).s, 'j');
    case F_LENGTH:
        bind(r, what, a, 0, NULL, 0, p);
        switch (in.t) {
        case V_STR:
            return mk_int((int64_t)utf8_count(in.s->s, in.s->len));
        case V_LIST:
            return mk_int((int64_t)in.l->n);
        case V_DICT:
            return mk_int((int64_t)in.d->n);
        case V_UNDEF:
            return mk_int(0);
        default:
            rfail(r, "object of type '%s' has no len()", type_name(in));
        }
    case F_DEFAULT: {
        static const char *const ps[] = {"default_value", "boolean"};
        bind(r, what, a, 0, ps, 2, p);
        tval def = p[0].t == V_NOARG ? str_val(r, "", 0) : p[0];
        bool boolean = p[1].t != V_NOARG && truthy(p[1]);
        if (in.t == V_UNDEF || (boolean && !truthy(in))) return def;
        return in;
    }
    case F_DICTSORT: {
        static const char *const ps[] = {"case_sensitive", "by", "reverse"};
        bind(r, what, a, 0, ps, 3, p);
        if (in.t != V_DICT) rfail(r, "dictsort: expected a dict, found %s", type_name(in));
        bool cs = p[0].t != V_NOARG && truthy(p[0]);
        bool by_value = p[1].t != V_NOARG && !strcmp(want_str(r, p[1], what)->s, "value");
        if (p[1].t != V_NOARG && !by_value && strcmp(p[1].s->s, "key"))
            rfail(r, "dictsort: 'by' must be 'key' or 'value'");
        size_t n = in.d->n;
        size_t *perm = ralloc(r, mul_size(r, n ? n : 1, sizeof *perm));
        for (size_t i = 0; i < n; i++) perm[i] = i;
        sort_perm_fold(r, by_value ? in.d->v : in.d->k, n, perm, !cs);
        bool rev = p[2].t != V_NOARG && truthy(p[2]);
        tlist *l = list_new(r, n);
        for (size_t i = 0; i < n; i++) {
            size_t k = perm[rev ? n - 1 - i : i];
            l->v[i] = mk_tuple2(r, in.d->k[k], in.d->v[k]);
        }
        l->n = n;
        return mk_listv(l);
    }
    case F_ESCAPE: {
        bind(r, what, a, 0, NULL, 0, p);
        tstr *s = soft_str(r, in).s;
        buf b = {0};
        for (size_t i = 0; i < s->len; i++) {
            switch (s->s[i]) {
            case '&':
                buf_puts(r, &b, "&amp;");
                break;
            case '<':
                buf_puts(r, &b, "&lt;");
                break;
            case '>':
                buf_puts(r, &b, "&gt;");
                break;
            case '"':
                buf_puts(r, &b, "&#34;");
                break;
            case '\'':
                buf_puts(r, &b, "&#39;");
                break;
            default:
                buf_putc(r, &b, s->s[i]);
            }
        }
        return buf_val(r, &b);
    }
    case F_FIRST:
    case F_LAST: {
        bind(r, what, a, 0, NULL, 0, p);
        tval *items;
        size_t n;
        if (in.t == V_STR) {
            if (in.s->len == 0) return undef_because(r, "no %s item, sequence was empty", fname);
            tval idx = mk_int(id == F_FIRST ? 0 : -1);
            return get_item(r, in, idx);
        }
        iter_items(r, in, &items, &n);
        if (n == 0) return undef_because(r, "no %s item, sequence was empty", fname);
        return items[id == F_FIRST ? 0 : n - 1];
    }
    case F_FLOAT: {
        static const char *const ps[] = {"default"};
        bind(r, what, a, 0, ps, 1, p);
        return filter_float(in, p[0].t == V_NOARG ? mk_float(0) : p[0]);
    }
    case F_INT: {
        static const char *const ps[] = {"default", "base"};
        bind(r, what, a, 0, ps, 2, p);
        int64_t base = p[1].t == V_NOARG ? 10 : want_int(r, p[1], what);
        if (base != 0 && (base < 2 || base > 36)) rfail(r, "int: base must be 0 or 2..36");
        return filter_int(in, p[0].t == V_NOARG ? mk_int(0) : p[0], base);
    }
    case F_INDENT: {
        static const char *const ps[] = {"width", "first", "blank"};
        bind(r, what, a, 0, ps, 3, p);
        return filter_indent(r, soft_str(r, in).s, p[0], p[1].t != V_NOARG && truthy(p[1]),
                             p[2].t != V_NOARG && truthy(p[2]));
    }
    case F_ITEMS: {
        bind(r, what, a, 0, NULL, 0, p);
        if (in.t == V_UNDEF) return mk_listv(list_new(r, 0));
        if (in.t != V_DICT && in.t != V_NS)
            rfail(r, "items: expected a mapping, found %s", type_name(in));
        args none = {0};
        return call_method(r, mk_dictv(in.d), "items", &none);
    }
    case F_JOIN: {
        static const char *const ps[] = {"d", "attribute"};
        bind(r, what, a, 0, ps, 2, p);
        tstr *sep = p[0].t == V_NOARG ? lit_name(r, "") : soft_str(r, p[0]).s;
        const char *attr = p[1].t == V_NOARG ? NULL : soft_str(r, p[1]).s->s;
        return str_join(r, sep, in, attr);
    }
    case F_LIST:
        bind(r, what, a, 0, NULL, 0, p);
        return mk_listv(to_list(r, in));
    case F_MAP: {
        tval *items;
        size_t n;
        iter_items(r, in, &items, &n);
        tlist *out = list_new(r, n);
        tval attr = NOARG, def = NOARG;
        for (int k = 0; k < a->nk; k++) {
            if (!strcmp(a->kn[k]->s, "attribute"))
                attr = a->kv[k];
            else if (!strcmp(a->kn[k]->s, "default"))
                def = a->kv[k];
            else if (attr.t == V_NOARG)
                rfail(r, "map: unexpected keyword argument '%s'", a->kn[k]->s);
        }
        if (attr.t != V_NOARG) {
            tstr *ap = soft_str(r, attr).s;
            for (size_t i = 0; i < n; i++) {
                tval v = attr_path(r, items[i], ap);
                out->v[i] = (v.t == V_UNDEF && def.t != V_NOARG) ? def : v;
            }
        } else {
            if (a->n < 1) rfail(r, "map: expected a filter name or attribute=");
            const char *fn2 = want_str(r, a->v[0], what)->s;
            int fid = filter_id(fn2);
            if (fid < 0) rfail(r, "map: unknown filter '%s'", fn2);
            args rest = *a;
            rest.n--;
            rest.v++;
            for (size_t i = 0; i < n; i++) out->v[i] = apply_filter_v(r, fid, fn2, items[i], &rest);
        }
        out->n = n;
        return mk_listv(out);
    }
    case F_MAX:
    case F_MIN: {
        static const char *const ps[] = {"case_sensitive", "attribute"};
        bind(r, what, a, 0, ps, 2, p);
        tval *items;
        size_t n;
        iter_items(r, in, &items, &n);
        if (n == 0) return undef_because(r, "no %s item, sequence was empty", fname);
        bool cs = p[0].t != V_NOARG && truthy(p[0]);
        tstr *ap = p[1].t == V_NOARG ? NULL : soft_str(r, p[1]).s;
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            int c = cmp_vals(r, sort_key(r, items[i], ap), sort_key(r, items[best], ap), !cs);
            if (id == F_MAX ? c > 0 : c < 0) best = i;
        }
        return items[best];
    }
    case F_SELECT:
        return filter_select(r, in, a, false, true, what);
    case F_REJECT:
        return filter_select(r, in, a, false, false, what);
    case F_SELECTATTR:
        return filter_select(r, in, a, true, true, what);
    case F_REJECTATTR:
        return filter_select(r, in, a, true, false, what);
    case F_REPLACE: {
        static const char *const ps[] = {"old", "new", "count"};
        bind(r, what, a, 0, ps, 3, p);
        if (p[1].t == V_NOARG) rfail(r, "replace needs the old and the new string");
        return str_replace(r, soft_str(r, in).s, soft_str(r, p[0]).s, soft_str(r, p[1]).s,
                           p[2].t == V_NOARG || p[2].t == V_NONE ? -1 : want_int(r, p[2], what));
    }
    case F_REVERSE: {
        bind(r, what, a, 0, NULL, 0, p);
        if (in.t == V_STR) return do_slice(r, in, NOARG, NOARG, mk_int(-1));
        tlist *l = to_list(r, in);
        for (size_t i = 0, j = l->n ? l->n - 1 : 0; l->n && i < j; i++, j--) {
            tval t = l->v[i];
            l->v[i] = l->v[j];
            l->v[j] = t;
        }
        return mk_listv(l);
    }
    case F_ROUND: {
        static const char *const ps[] = {"precision", "method"};
        bind(r, what, a, 0, ps, 2, p);
        int64_t prec = p[0].t == V_NOARG ? 0 : want_int(r, p[0], what);
        const char *method = p[1].t == V_NOARG ? "common" : want_str(r, p[1], what)->s;
        if (strcmp(method, "common") && strcmp(method, "ceil") && strcmp(method, "floor"))
            rfail(r, "round: method must be common, ceil or floor");
        if (!is_num(in)) bad_operands(r, OP_MUL, in, mk_int(1));
        if (prec < -300 || prec > 300) rfail(r, "round: precision out of range");
        if (!strcmp(method, "common")) {
            if (in.t != V_FLOAT) return mk_int(num_i(in)); /* Python round(int, n) stays int */
            if (prec >= 0) {
                char tmp[400];
                snprintf(tmp, sizeof tmp, "%.*f", (int)prec,
                         in.f); /* correctly rounded, half-even */
                return mk_float(strtod(tmp, NULL));
            }
            double m = pow(10, (double)-prec);
            return mk_float(nearbyint(in.f / m) * m);
        }
        double m = pow(10, (double)prec);
        double x = num_f(in) * m;
        return mk_float((method[0] == 'c' ? ceil(x) : floor(x)) / m);
    }
    case F_SAFE:
        bind(r, what, a, 0, NULL, 0, p);
        return in;
    case F_SORT: {
        static const char *const ps[] = {"reverse", "case_sensitive", "attribute"};
        bind(r, what, a, 0, ps, 3, p);
        tlist *l = to_list(r, in);
        bool rev = p[0].t != V_NOARG && truthy(p[0]);
        bool cs = p[1].t != V_NOARG && truthy(p[1]);
        tstr *ap = p[2].t == V_NOARG || p[2].t == V_NONE ? NULL : soft_str(r, p[2]).s;
        size_t n = l->n;
        tval *keys = ralloc(r, mul_size(r, n ? n : 1, sizeof *keys));
        size_t *perm = ralloc(r, mul_size(r, n ? n : 1, sizeof *perm));
        for (size_t i = 0; i < n; i++) {
            keys[i] = sort_key(r, l->v[i], ap);
            perm[i] = i;
        }
        sort_perm_fold(r, keys, n, perm, !cs);
        tlist *o = list_new(r, n);
        for (size_t i = 0; i < n; i++) o->v[i] = l->v[perm[rev ? n - 1 - i : i]];
        o->n = n;
        return mk_listv(o);
    }
    case F_STRING:
        bind(r, what, a, 0, NULL, 0, p);
        return soft_str(r, in);
    case F_SUM: {
        static const char *const ps[] = {"attribute", "start"};
        bind(r, what, a, 0, ps, 2, p);
        tval acc = p[1].t == V_NOARG ? mk_int(0) : p[1];
        tstr *ap = p[0].t == V_NOARG || p[0].t == V_NONE ? NULL : soft_str(r, p[0]).s;
        tval *items;
        size_t n;
        iter_items(r, in, &items, &n);
        for (size_t i = 0; i < n; i++) acc = arith(r, OP_ADD, acc, sort_key(r, items[i], ap));
        return acc;
    }
    case F_TOJSON: {
        /* transformers: tojson(x, ensure_ascii=False, indent=None, separators=None,
         * sort_keys=False) */
        static const char *const ps[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
        bind(r, what, a, 0, ps, 4, p);
        json_opts o = {NULL, ", ", ": ", false, false};
        o.ensure_ascii = p[0].t != V_NOARG && truthy(p[0]);
        if (p[1].t != V_NOARG && p[1].t != V_NONE) {
            if (p[1].t == V_STR) {
                o.indent = p[1].s->s;
            } else {
                int64_t w = want_int(r, p[1], what);
                if (w < 0) w = 0;
                if (w > 1024) rfail(r, "tojson: indent %lld too large", (long long)w);
                char *sp = ralloc(r, (size_t)w + 1);
                memset(sp, ' ', (size_t)w);
                sp[w] = 0;
                o.indent = sp;
            }
            o.item_sep = ",";
        }
        if (p[2].t != V_NOARG && p[2].t != V_NONE) {
            if (p[2].t != V_LIST || p[2].l->n != 2)
                rfail(r, "tojson: separators must be a pair (item_separator, key_separator)");
            o.item_sep = want_str(r, p[2].l->v[0], what)->s;
            o.key_sep = want_str(r, p[2].l->v[1], what)->s;
        }
        o.sort_keys = p[3].t != V_NOARG && truthy(p[3]);
        buf b = {0};
        json_dump(r, &b, in, &o, 0);
        return buf_val(r, &b);
    }
    case F_TRIM: {
        static const char *const ps[] = {"chars"};
        bind(r, what, a, 0, ps, 1, p);
        return str_strip(r, soft_str(r, in).s, p[0], 3);
    }
    case F_UNIQUE: {
        static const char *const ps[] = {"case_sensitive", "attribute"};
        bind(r, what, a, 0, ps, 2, p);
        bool cs = p[0].t != V_NOARG && truthy(p[0]);
        tstr *ap = p[1].t == V_NOARG || p[1].t == V_NONE ? NULL : soft_str(r, p[1]).s;
        tval *items;
        size_t n;
        iter_items(r, in, &items, &n);
        tlist *out = list_new(r, 0);
        tdict *seen = dict_new(r);
        for (size_t i = 0; i < n; i++) {
            tval k = sort_key(r, items[i], ap);
            if (!cs && k.t == V_STR) k = str_case(r, k.s, 'l');
            if (dict_find(r, seen, k) >= 0) continue;
            dict_set(r, seen, k, NONE);
            list_push(r, out, items[i]);
        }
        return mk_listv(out);
    }
    case F_WORDCOUNT: {
        bind(r, what, a, 0, NULL, 0, p);
        tstr *s = soft_str(r, in).s;
        int64_t c = 0;
        bool inw = false;
        for (size_t i = 0; i < s->len; i++) {
            unsigned char ch = (unsigned char)s->s[i];
            bool w = is_name_char((char)ch) || ch >= 0x80;
            if (w && !inw) c++;
            inw = w;
        }
        return mk_int(c);
    }
    case F_FORMAT: {
        /* value|format(*args) is value % args; with keywords, value % kwargs */
        if (a->n && a->nk) rfail(r, "format: positional and keyword arguments cannot be mixed");
        if (a->nk) {
            tdict *d = dict_new(r);
            for (int k = 0; k < a->nk; k++) dict_set(r, d, mk_strv(a->kn[k]), a->kv[k]);
            return percent_format(r, soft_str(r, in).s, mk_dictv(d));
        }
        tlist *l = list_new(r, (size_t)a->n);
        l->tuple = true;
        for (int k = 0; k < a->n; k++) l->v[k] = a->v[k];
        l->n = (size_t)a->n;
        return percent_format(r, soft_str(r, in).s, mk_listv(l));
    }
    default:
        rfail(r, "filter '%s' is not implemented", fname);
    }
}

static bool apply_test_v(R *r, int id, const char *tname, tval v, const args *a, int skip) {
    tval arg = a->n > skip ? a->v[skip] : (a->nk ? a->kv[0] : NOARG);
    bool needs_arg = id == X_DIVISIBLEBY || id == X_EQ || id == X_NE || id == X_LT || id == X_LE ||
                     id == X_GT || id == X_GE || id == X_IN || id == X_SAMEAS;
    if (needs_arg && arg.t == V_NOARG) rfail(r, "test '%s' needs an argument", tname);
    if (!needs_arg && (a->n > skip || a->nk)) rfail(r, "test '%s' takes no arguments", tname);
    switch (id) {
    case X_DEFINED:
        return v.t != V_UNDEF;
    case X_UNDEFINED:
        return v.t == V_UNDEF;
    case X_NONE:
        return v.t == V_NONE;
    case X_BOOLEAN:
        return v.t == V_BOOL;
    case X_TRUE:
        return v.t == V_BOOL && v.b;
    case X_FALSE:
        return v.t == V_BOOL && !v.b;
    case X_INTEGER:
        return v.t == V_INT;
    case X_FLOAT:
        return v.t == V_FLOAT;
    case X_NUMBER:
        return is_num(v);
    case X_STRING:
        return v.t == V_STR;
    case X_MAPPING:
        return v.t == V_DICT;
    case X_ITERABLE:
        return v.t == V_STR || v.t == V_LIST || v.t == V_DICT || v.t == V_UNDEF;
    case X_SEQUENCE:
        return v.t == V_STR || v.t == V_LIST || v.t == V_DICT || v.t == V_UNDEF;
    case X_CALLABLE:
        return v.t == V_FUNC;
    case X_EVEN:
    case X_ODD: {
        if (!is_num(v)) bad_operands(r, OP_MOD, v, mk_int(2));
        tval m = arith(r, OP_MOD, v, mk_int(2));
        return (num_f(m) == 0) == (id == X_EVEN);
    }
    case X_DIVISIBLEBY:
        return num_f(arith(r, OP_MOD, v, arg)) == 0;
    case X_EQ:
        return eq(v, arg);
    case X_NE:
        return !eq(v, arg);
    case X_LT:
        return cmp_vals(r, v, arg, false) < 0;
    case X_LE:
        return cmp_vals(r, v, arg, false) <= 0;
    case X_GT:
        return cmp_vals(r, v, arg, false) > 0;
    case X_GE:
        return cmp_vals(r, v, arg, false) >= 0;
    case X_IN:
        return contains(r, arg, v);
    case X_LOWER:
        return v.t == V_STR && str_all(v.s, 'l');
    case X_UPPER:
        return v.t == V_STR && str_all(v.s, 'u');
    case X_SAMEAS:
        if (v.t != arg.t) return false;
        switch (v.t) {
        case V_NONE:
        case V_UNDEF:
            return true;
        case V_BOOL:
            return v.b == arg.b;
        case V_INT:
            return v.i == arg.i;
        case V_STR:
            return v.s == arg.s;
        default:
            return v.l == arg.l;
        }
    case X_ESCAPED:
        return false;
    default:
        rfail(r, "test '%s' is not implemented", tname);
    }
}

/* ------------------------------------------------------------------------ */
/* Evaluation                                                                */

static tval eval(R *r, scope *sc, node *n);
static void exec_node(R *r, scope *sc, node *n);
static void exec_body(R *r, scope *sc, node *b);

static void enter_r(R *r, node *n) {
    if (++r->depth > TMPL_MAX_EVAL_DEPTH)
        rfail(r, "evaluation nested too deeply (more than %d levels; runaway recursion?)",
              TMPL_MAX_EVAL_DEPTH);
    if (++r->steps > MAX_STEPS)
        rfail(r, "template does too much work (more than %u steps)", MAX_STEPS);
    r->line = n->line;
}

static void eval_args(R *r, scope *sc, node *n, args *a) {
    memset(a, 0, sizeof *a);
    a->n = n->n;
    a->nk = n->n2;
    if (n->n) {
        a->v = ralloc(r, (size_t)n->n * sizeof *a->v);
        for (int i = 0; i < n->n; i++) a->v[i] = eval(r, sc, n->list[i]);
    }
    if (n->n2) {
        a->kn = n->names;
        a->kv = ralloc(r, (size_t)n->n2 * sizeof *a->kv);
        for (int i = 0; i < n->n2; i++) a->kv[i] = eval(r, sc, n->list2[i]);
    }
}

/* Runs body into a fresh buffer and returns the text. */
static tval capture(R *r, scope *sc, node *body) {
    buf b = {0}, *saved = r->out;
    r->out = &b;
    exec_body(r, sc, body);
    r->out = saved;
    return buf_val(r, &b);
}

static void bind_target(R *r, scope *sc, node *t, tval v) {
    if (t->kind == N_NAME) {
        scope_set(r, sc, t->name, v);
        return;
    }
    /* tuple unpacking */
    tval *items;
    size_t n;
    if (v.t == V_UNDEF) fail_undef(r, v);
    iter_items(r, v, &items, &n);
    if (n != (size_t)t->n)
        rfail(r, "%s values to unpack (expected %d, got %zu)",
              n < (size_t)t->n ? "not enough" : "too many", t->n, n);
    for (int i = 0; i < t->n; i++) bind_target(r, sc, t->list[i], items[i]);
}

/* Binds call arguments to parameters (macro or call block) in scope s. */
static void bind_params(R *r, scope *s, node *m, const char *what, const args *a) {
    if (a->n > m->n2) rfail(r, "%s takes not more than %d argument(s)", what, m->n2);
    for (int k = 0; k < a->nk; k++) {
        int j;
        for (j = 0; j < m->n2; j++)
            if (!strcmp(m->names[j]->s, a->kn[k]->s)) break;
        if (j == m->n2) rfail(r, "%s takes no keyword argument '%s'", what, a->kn[k]->s);
        if (j < a->n) rfail(r, "%s got multiple values for argument '%s'", what, a->kn[k]->s);
    }
    for (int j = 0; j < m->n2; j++) {
        tval v = NOARG;
        if (j < a->n) v = a->v[j];
        for (int k = 0; k < a->nk; k++)
            if (!strcmp(m->names[j]->s, a->kn[k]->s)) v = a->kv[k];
        if (v.t == V_NOARG) {
            if (m->list2[j])
                v = eval(r, s, m->list2[j]);
            else
                v = undef_because(r, "parameter '%s' was not provided", m->names[j]->s);
        }
        scope_set(r, s, m->names[j], v);
    }
}

static tval call_builtin(R *r, int id, const args *a) {
    tval p[3];
    switch (id) {
    case B_RANGE: {
        static const char *const ps[] = {"start", "stop", "step"};
        bind(r, "range()", a, 0, ps, 3, p);
        if (p[0].t == V_NOARG) rfail(r, "range expected at least 1 argument");
        int64_t start = 0, stop, step = 1;
        if (p[1].t == V_NOARG) {
            stop = want_int(r, p[0], "range()");
        } else {
            start = want_int(r, p[0], "range()");
            stop = want_int(r, p[1], "range()");
            if (p[2].t != V_NOARG) step = want_int(r, p[2], "range()");
        }
        if (step == 0) rfail(r, "range() arg 3 must not be zero");
        /* count without overflow */
        double cnt = step > 0 ? ceil(((double)stop - (double)start) / (double)step)
                              : ceil(((double)start - (double)stop) / (double)-step);
        if (cnt < 0) cnt = 0;
        if (cnt > TMPL_MAX_RANGE)
            rfail(r, "range too big: %.0f items (the sandbox limit is %d)", cnt, TMPL_MAX_RANGE);
        size_t n = (size_t)cnt;
        tlist *l = list_new(r, n);
        int64_t x = start;
        for (size_t i = 0; i < n; i++) {
            if (step > 0 ? x >= stop : x <= stop) break;
            l->v[l->n++] = mk_int(x);
            if (__builtin_add_overflow(x, step, &x)) break;
        }
        return mk_listv(l);
    }
    case B_NAMESPACE:
    case B_DICT: {
        tdict *d = dict_new(r);
        if (a->n > 1) rfail(r, "%s() takes at most one positional argument", builtin_names[id]);
        if (a->n == 1) {
            tval src = a->v[0];
            if (src.t == V_DICT || src.t == V_NS) {
                for (size_t i = 0; i < src.d->n; i++) dict_set(r, d, src.d->k[i], src.d->v[i]);
            } else {
                tval *items;
                size_t n;
                iter_items(r, src, &items, &n);
                for (size_t i = 0; i < n; i++) {
                    tval *kv;
                    size_t m;
                    iter_items(r, items[i], &kv, &m);
                    if (m != 2) rfail(r, "%s(): sequence items must be pairs", builtin_names[id]);
                    dict_set(r, d, kv[0], kv[1]);
                }
            }
        }
        for (int k = 0; k < a->nk; k++) dict_set(r, d, mk_strv(a->kn[k]), a->kv[k]);
        tval v = {.t = id == B_NAMESPACE ? V_NS : V_DICT};
        v.d = d;
        return v;
    }
    case B_RAISE: {
        static const char *const ps[] = {"message"};
        bind(r, "raise_exception()", a, 0, ps, 1, p);
        tstr *m = p[0].t == V_NOARG ? lit_name(r, "") : to_str(r, p[0]);
        rfail(r, "raise_exception: %.800s", m->s);
    }
    case B_STRFTIME: {
        static const char *const ps[] = {"format"};
        bind(r, "strftime_now()", a, 0, ps, 1, p);
        tstr *f = want_str(r, p[0], "strftime_now()");
        time_t now = time(NULL);
        struct tm tmv;
        localtime_r(&now, &tmv);
        char out[512];
        size_t k = f->len ? strftime(out, sizeof out, f->s, &tmv) : 0;
        if (f->len && k == 0) rfail(r, "strftime_now: formatted date too long or empty");
        return str_val(r, out, k);
    }
    default:
        rfail(r, "unknown builtin");
    }
}

static tval call_value(R *r, tval fv, const args *a, tval caller, const char *what) {
    if (fv.t == V_UNDEF) fail_undef(r, fv);
    if (fv.t != V_FUNC) rfail(r, "'%s' object is not callable (%s)", type_name(fv), what);
    tfunc *f = fv.fn;
    if (++r->steps > MAX_STEPS)
        rfail(r, "template does too much work (more than %u steps)", MAX_STEPS);
    switch (f->kind) {
    case FN_BUILTIN:
        return call_builtin(r, f->id, a);
    case FN_METHOD:
        return call_method(r, f->self, f->name->s, a);
    case FN_MACRO:
    case FN_CALLER: {
        node *m = f->n;
        char w[160];
        snprintf(w, sizeof w, "%s '%s'", f->kind == FN_MACRO ? "macro" : "caller",
                 f->kind == FN_MACRO ? m->name->s : "caller");
        scope *s = new_scope(r, f->kind == FN_MACRO ? r->root : f->sc);
        int saved_line = r->line;
        bind_params(r, s, m, w, a);
        if (caller.t != V_NOARG) scope_set(r, s, lit_name(r, "caller"), caller);
        int saved_ctl = r->ctl;
        tval out = capture(r, s, m->d);
        r->ctl = saved_ctl;
        r->line = saved_line;
        return out;
    }
    default:
        rfail(r, "cannot call this value");
    }
}

static tval eval_call(R *r, scope *sc, node *n, tval caller) {
    args a;
    node *callee = n->a;
    if (callee->kind == N_ATTR) {
        tval obj = eval(r, sc, callee->a);
        if (obj.t == V_UNDEF) fail_undef(r, obj);
        eval_args(r, sc, n, &a);
        r->line = n->line;
        if (has_method(obj, callee->name->s)) return call_method(r, obj, callee->name->s, &a);
        tval f = get_attr(r, obj, callee->name);
        return call_value(r, f, &a, caller, callee->name->s);
    }
    tval f = eval(r, sc, callee);
    eval_args(r, sc, n, &a);
    r->line = n->line;
    return call_value(r, f, &a, caller, callee->kind == N_NAME ? callee->name->s : "expression");
}

static void check_known(R *r, node *n, const char *what) {
    if (n->id >= 0) return;
    r->line = n->line;
    if (n->id == -2) rfail(r, "column %d: %s '%s' is not supported", n->col, what, n->name->s);
    rfail(r, "column %d: unknown %s '%s'", n->col, what, n->name->s);
}

static tval eval_filter(R *r, scope *sc, node *f, tval in) {
    check_known(r, f, "filter");
    if (f->a) in = eval(r, sc, f->a);
    args a;
    eval_args(r, sc, f, &a);
    r->line = f->line;
    return apply_filter_v(r, f->id, f->name->s, in, &a);
}

/* A filter chain whose innermost input is the given value (filter blocks, set blocks). */
static tval eval_filter_chain(R *r, scope *sc, node *f, tval in) {
    check_known(r, f, "filter");
    if (f->a) in = eval_filter_chain(r, sc, f->a, in);
    args a;
    eval_args(r, sc, f, &a);
    r->line = f->line;
    return apply_filter_v(r, f->id, f->name->s, in, &a);
}

static tval eval(R *r, scope *sc, node *n) {
    enter_r(r, n);
    tval v;
    switch (n->kind) {
    case N_CONST:
        v = n->val;
        break;
    case N_NAME:
        v = lookup(r, sc, n->name);
        break;
    case N_ATTR:
        v = get_attr(r, eval(r, sc, n->a), n->name);
        break;
    case N_ITEM: {
        tval o = eval(r, sc, n->a);
        v = get_item(r, o, eval(r, sc, n->b));
        break;
    }
    case N_SLICE: {
        tval o = eval(r, sc, n->a);
        tval a = n->b ? eval(r, sc, n->b) : NOARG;
        tval b = n->c ? eval(r, sc, n->c) : NOARG;
        tval c = n->d ? eval(r, sc, n->d) : NOARG;
        v = do_slice(r, o, a, b, c);
        break;
    }
    case N_CALL:
        v = eval_call(r, sc, n, NOARG);
        break;
    case N_FILTER:
        v = eval_filter(r, sc, n, NOARG);
        break;
    case N_TEST: {
        check_known(r, n, "test");
        tval x = eval(r, sc, n->a);
        args a;
        eval_args(r, sc, n, &a);
        r->line = n->line;
        bool b = apply_test_v(r, n->id, n->name->s, x, &a, 0);
        v = mk_bool(n->neg ? !b : b);
        break;
    }
    case N_NEG:
    case N_POS: {
        tval x = eval(r, sc, n->a);
        if (x.t == V_INT || x.t == V_BOOL) {
            int64_t i = num_i(x);
            if (n->kind == N_NEG && i == INT64_MIN) int_overflow(r);
            v = mk_int(n->kind == N_NEG ? -i : i);
        } else if (x.t == V_FLOAT) {
            v = mk_float(n->kind == N_NEG ? -x.f : x.f);
        } else {
            if (x.t == V_UNDEF) fail_undef(r, x);
            rfail(r, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+',
                  type_name(x));
        }
        break;
    }
    case N_NOT:
        v = mk_bool(!truthy(eval(r, sc, n->a)));
        break;
    case N_AND: {
        tval x = eval(r, sc, n->a);
        v = truthy(x) ? eval(r, sc, n->b) : x;
        break;
    }
    case N_OR: {
        tval x = eval(r, sc, n->a);
        v = truthy(x) ? x : eval(r, sc, n->b);
        break;
    }
    case N_BIN: {
        tval x = eval(r, sc, n->a);
        tval y = eval(r, sc, n->b);
        r->line = n->line;
        v = arith(r, n->op, x, y);
        break;
    }
    case N_CMP: {
        tval x = eval(r, sc, n->a);
        v = mk_bool(true);
        for (int i = 0; i < n->n; i++) {
            tval y = eval(r, sc, n->list[i]);
            r->line = n->line;
            if (!compare(r, n->ops[i], x, y)) {
                v = mk_bool(false);
                break;
            }
            x = y;
        }
        break;
    }
    case N_COND:
        if (truthy(eval(r, sc, n->a)))
            v = eval(r, sc, n->b);
        else
            v = n->c ? eval(r, sc, n->c) : undef_because(r, "the inline if had no else branch");
        break;
    case N_LIST:
    case N_TUPLE: {
        tlist *l = list_new(r, (size_t)n->n);
        l->tuple = n->kind == N_TUPLE;
        for (int i = 0; i < n->n; i++) l->v[i] = eval(r, sc, n->list[i]);
        l->n = (size_t)n->n;
        v = mk_listv(l);
        break;
    }
    case N_DICT: {
        tdict *d = dict_new(r);
        for (int i = 0; i < n->n; i++) {
            tval k = eval(r, sc, n->list[i]);
            dict_set(r, d, k, eval(r, sc, n->list2[i]));
        }
        v = mk_dictv(d);
        break;
    }
    default:
        rfail(r, "internal: not an expression");
    }
    r->depth--;
    return v;
}

/* ------------------------------------------------------------------------ */
/* Statements                                                                */

static void exec_for(R *r, scope *sc, node *n) {
    tval it = eval(r, sc, n->b);
    r->line = n->line;
    if (it.t == V_NONE) rfail(r, "'NoneType' object is not iterable");
    tval *items;
    size_t cnt;
    iter_items(r, it, &items, &cnt);
    scope *isc = new_scope(r, sc);
    tlist *seq = list_new(r, 0);
    if (n->c) {
        for (size_t i = 0; i < cnt; i++) {
            if (++r->iterations > TMPL_MAX_ITERATIONS)
                rfail(r, "more than %d loop iterations", TMPL_MAX_ITERATIONS);
            isc->n = 0;
            bind_target(r, isc, n->a, items[i]);
            if (truthy(eval(r, isc, n->c))) list_push(r, seq, items[i]);
        }
    } else {
        seq->v = items;
        seq->n = seq->cap = cnt;
        seq->frozen = true;
    }
    if (seq->n == 0) {
        if (n->e) exec_body(r, sc, n->e);
        return;
    }
    /* in the arena: a template may keep `loop` (or a caller) beyond the loop */
    tloop *L = ralloc(r, sizeof *L);
    *L = (tloop){.index0 = 0, .length = (int64_t)seq->n, .items = seq, .depth = 1};
    tval lv = {.t = V_LOOP};
    lv.loop = L;
    tstr *loop_name = lit_name(r, "loop");
    for (size_t i = 0; i < seq->n; i++) {
        if (++r->iterations > TMPL_MAX_ITERATIONS)
            rfail(r, "more than %d loop iterations", TMPL_MAX_ITERATIONS);
        L->index0 = (int64_t)i;
        isc->n = 0;
        scope_set(r, isc, loop_name, lv);
        bind_target(r, isc, n->a, seq->v[i]);
        exec_body(r, isc, n->d);
        if (r->ctl == CTL_BREAK) {
            r->ctl = CTL_NONE;
            break;
        }
        r->ctl = CTL_NONE;
    }
}

static void exec_node(R *r, scope *sc, node *n) {
    enter_r(r, n);
    switch (n->kind) {
    case N_BODY:
        exec_body(r, sc, n);
        break;
    case N_TEXT:
        buf_put(r, r->out, n->val.s->s, n->val.s->len);
        break;
    case N_OUT: {
        tval v = eval(r, sc, n->a);
        write_str(r, r->out, v, 0);
        break;
    }
    case N_IF: {
        int i;
        for (i = 0; i < n->n; i++)
            if (truthy(eval(r, sc, n->list[i]))) {
                exec_body(r, sc, n->list2[i]);
                break;
            }
        if (i == n->n && n->c) exec_body(r, sc, n->c);
        break;
    }
    case N_FOR:
        exec_for(r, sc, n);
        break;
    case N_SET: {
        tval v = eval(r, sc, n->b);
        r->line = n->line;
        if (n->a->kind == N_ATTR) {
            tval ns = lookup(r, sc, n->a->a->name);
            if (ns.t != V_NS) rfail(r, "cannot assign attribute on non-namespace object");
            dict_set(r, ns.d, mk_strv(n->a->name), v);
        } else {
            bind_target(r, sc, n->a, v);
        }
        break;
    }
    case N_SETBLOCK: {
        tval v = capture(r, sc, n->d);
        if (n->c) v = eval_filter_chain(r, sc, n->c, v);
        scope_set(r, sc, n->a->name, v);
        break;
    }
    case N_MACRO: {
        tfunc *f = ralloc(r, sizeof *f);
        memset(f, 0, sizeof *f);
        f->kind = FN_MACRO;
        f->n = n;
        f->name = n->name;
        tval fv = {.t = V_FUNC};
        fv.fn = f;
        scope_set(r, sc, n->name, fv);
        break;
    }
    case N_CALLBLOCK: {
        tfunc *f = ralloc(r, sizeof *f);
        memset(f, 0, sizeof *f);
        f->kind = FN_CALLER;
        f->n = n;
        f->sc = sc;
        f->name = lit_name(r, "caller");
        tval cv = {.t = V_FUNC};
        cv.fn = f;
        tval out = eval_call(r, sc, n->a, cv);
        write_str(r, r->out, out, 0);
        break;
    }
    case N_FILTERBLOCK: {
        tval v = capture(r, sc, n->d);
        write_str(r, r->out, eval_filter_chain(r, sc, n->c, v), 0);
        break;
    }
    case N_BREAK:
        r->ctl = CTL_BREAK;
        break;
    case N_CONTINUE:
        r->ctl = CTL_CONTINUE;
        break;
    case N_DO:
        eval(r, sc, n->a);
        break;
    case N_WITH: {
        scope *ws = new_scope(r, sc);
        for (int i = 0; i < n->n; i++) bind_target(r, ws, n->list[i], eval(r, ws, n->list2[i]));
        exec_body(r, ws, n->d);
        break;
    }
    default:
        rfail(r, "internal: not a statement");
    }
    r->depth--;
}

static void exec_body(R *r, scope *sc, node *b) {
    for (int i = 0; i < b->n; i++) {
        exec_node(r, sc, b->list[i]);
        if (r->ctl != CTL_NONE) return;
    }
}

/* ------------------------------------------------------------------------ */
/* Public API                                                                */

tmpl_template *tmpl_parse(const char *src, size_t len, hearth_err *err) {
    if (!src && len) {
        hearth_errf(err, "template: no source");
        return NULL;
    }
    if (len > TMPL_MAX_SOURCE) {
        hearth_errf(err, "template: source is %zu bytes, the limit is %u", len, TMPL_MAX_SOURCE);
        return NULL;
    }
    tmpl_template *t = calloc(1, sizeof *t);
    parser *P = calloc(1, sizeof *P);
    if (!t || !P) {
        free(t);
        free(P);
        hearth_errf(err, "template: out of memory");
        return NULL;
    }
    t->ar.limit = TMPL_MAX_MEMORY;
    P->ar = &t->ar;
    P->err = err;
    P->line = 1;
    if (setjmp(P->jb)) {
        arena_free(&t->ar);
        free(t);
        free(P);
        return NULL;
    }
    /* Newlines normalised to \n and one trailing newline dropped, as Jinja's
     * lexer does with keep_trailing_newline=False. */
    char *s = palloc(P, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n') n--;
    s[n] = 0;
    P->src = s;
    P->n = n;
    lex(P);
    P->pos = 0;
    P->lp = 0;
    t->root = parse_body(P, NULL, NULL);
    free(P);
    return t;
}

void tmpl_free(tmpl_template *t) {
    if (!t) return;
    arena_free(&t->ar);
    free(t);
}

struct tmpl_vars {
    arena ar;
    tdict *d;
};

tmpl_vars *tmpl_vars_new(void) {
    tmpl_vars *v = calloc(1, sizeof *v);
    if (v) v->ar.limit = TMPL_MAX_MEMORY;
    return v;
}

void tmpl_vars_free(tmpl_vars *v) {
    if (!v) return;
    arena_free(&v->ar);
    free(v);
}

/* Values in vars are built with a render state over the vars' own arena. */
static R *vars_r(tmpl_vars *v, hearth_err *err) {
    R *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->ar = &v->ar;
    r->err = err;
    return r;
}

static tval json_to_val(R *r, const json_t *j, int depth) {
    if (depth > TMPL_MAX_NESTING) rfail(r, "JSON nested more than %d levels", TMPL_MAX_NESTING);
    switch (json_typeof(j)) {
    case JSON_NULL:
        return NONE;
    case JSON_TRUE:
        return mk_bool(true);
    case JSON_FALSE:
        return mk_bool(false);
    case JSON_INTEGER:
        return mk_int((int64_t)json_integer_value(j));
    case JSON_REAL:
        return mk_float(json_real_value(j));
    case JSON_STRING:
        return str_val(r, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        tlist *l = list_new(r, n);
        for (size_t i = 0; i < n; i++) l->v[i] = json_to_val(r, json_array_get(j, i), depth + 1);
        l->n = n;
        l->frozen = true;
        return mk_listv(l);
    }
    case JSON_OBJECT: {
        tdict *d = dict_new(r);
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)j, k, x) {
            dict_set(r, d, cstr_val(r, k), json_to_val(r, x, depth + 1));
        }
        d->frozen = true;
        return mk_dictv(d);
    }
    default:
        return NONE;
    }
}

static int vars_put(tmpl_vars *v, const char *name, const json_t *j, int kind, const char *s,
                    size_t len, int64_t i, hearth_err *err) {
    if (!v || !name) return hearth_errf(err, "template variables: no variable name");
    R *r = vars_r(v, err);
    if (!r) return hearth_errf(err, "template variables: out of memory");
    if (setjmp(r->jb)) {
        hearth_err_prefix(err, "variable '%s'", name);
        free(r);
        return -1;
    }
    r->line = 0;
    if (!v->d) v->d = dict_new(r);
    tval x;
    switch (kind) {
    case 'j':
        x = json_to_val(r, j, 0);
        break;
    case 's':
        x = str_val(r, s ? s : "", s ? len : 0);
        break;
    case 'b':
        x = mk_bool(i != 0);
        break;
    case 'i':
        x = mk_int(i);
        break;
    default:
        x = NONE;
    }
    dict_set(r, v->d, cstr_val(r, name), x);
    free(r);
    return 0;
}

int tmpl_vars_set_str(tmpl_vars *v, const char *name, const char *s, size_t len, hearth_err *err) {
    return vars_put(v, name, NULL, 's', s, len, 0, err);
}
int tmpl_vars_set_bool(tmpl_vars *v, const char *name, bool b, hearth_err *err) {
    return vars_put(v, name, NULL, 'b', NULL, 0, b, err);
}
int tmpl_vars_set_int(tmpl_vars *v, const char *name, int64_t i, hearth_err *err) {
    return vars_put(v, name, NULL, 'i', NULL, 0, i, err);
}
int tmpl_vars_set_none(tmpl_vars *v, const char *name, hearth_err *err) {
    return vars_put(v, name, NULL, 'n', NULL, 0, 0, err);
}
int tmpl_vars_set_json(tmpl_vars *v, const char *name, const struct json_t *j, hearth_err *err) {
    if (!j) return hearth_errf(err, "variable '%s': no JSON value", name ? name : "?");
    return vars_put(v, name, j, 'j', NULL, 0, 0, err);
}

static json_t *parse_json(const char *text, size_t len, const char *what, hearth_err *err) {
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        hearth_errf(err, "%s: invalid JSON at line %d column %d: %s", what, je.line, je.column,
                    je.text);
    return j;
}

int tmpl_vars_set_json_text(tmpl_vars *v, const char *name, const char *json, size_t len,
                            hearth_err *err) {
    json_t *j = parse_json(json, len, name ? name : "variable", err);
    if (!j) return -1;
    int rc = tmpl_vars_set_json(v, name, j, err);
    json_decref(j);
    return rc;
}

int tmpl_vars_set_json_object_keys(tmpl_vars *v, const char *json, size_t len, hearth_err *err) {
    json_t *j = parse_json(json, len, "extra variables", err);
    if (!j) return -1;
    if (!json_is_object(j)) {
        json_decref(j);
        return hearth_errf(err, "extra variables: expected a JSON object");
    }
    const char *k;
    json_t *x;
    int rc = 0;
    json_object_foreach(j, k, x) {
        if ((rc = tmpl_vars_set_json(v, k, x, err)) != 0) break;
    }
    json_decref(j);
    return rc;
}

int tmpl_render(const tmpl_template *t, const tmpl_vars *vars, char **out, size_t *out_len,
                hearth_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!t) return hearth_errf(err, "template: nothing to render");
    R *r = calloc(1, sizeof *r);
    scope *root = calloc(1, sizeof *root);
    buf *ob = calloc(1, sizeof *ob);
    if (!r || !root || !ob) {
        free(r);
        free(root);
        free(ob);
        return hearth_errf(err, "template: out of memory");
    }
    r->arena_storage.limit = TMPL_MAX_MEMORY;
    r->ar = &r->arena_storage;
    r->err = err;
    r->globals = vars ? vars->d : NULL;
    r->root = root;
    r->out = ob;
    r->line = 1;
    if (setjmp(r->jb)) {
        arena_free(r->ar);
        free(r);
        free(root);
        free(ob);
        return -1;
    }
    exec_body(r, root, t->root);
    char *res = malloc(ob->n + 1);
    if (!res) rfail(r, "out of memory");
    if (ob->n) memcpy(res, ob->p, ob->n);
    res[ob->n] = 0;
    *out = res;
    if (out_len) *out_len = ob->n;
    arena_free(r->ar);
    free(r);
    free(root);
    free(ob);
    return 0;
}

int tmpl_render_chat(const char *template_src, size_t template_len, const tmpl_chat *c, char **out,
                     size_t *out_len, hearth_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    if (!c || !c->messages_json) return hearth_errf(err, "chat template: no messages");
    tmpl_template *t = tmpl_parse(template_src, template_len, err);
    if (!t) return -1;
    tmpl_vars *v = tmpl_vars_new();
    int rc = -1;
    if (!v) {
        hearth_errf(err, "chat template: out of memory");
        goto done;
    }
    json_t *msgs = parse_json(c->messages_json, strlen(c->messages_json), "messages", err);
    if (!msgs) goto done;
    if (!json_is_array(msgs)) {
        json_decref(msgs);
        hearth_errf(err, "messages: expected a JSON array of messages");
        goto done;
    }
    rc = tmpl_vars_set_json(v, "messages", msgs, err);
    json_decref(msgs);
    if (rc) goto done;
    rc = -1;
    if (c->tools_json && strcmp(c->tools_json, "null") != 0) {
        if (tmpl_vars_set_json_text(v, "tools", c->tools_json, strlen(c->tools_json), err))
            goto done;
    } else if (tmpl_vars_set_none(v, "tools", err)) {
        goto done;
    }
    if (tmpl_vars_set_none(v, "documents", err) ||
        tmpl_vars_set_bool(v, "add_generation_prompt", c->add_generation_prompt, err))
        goto done;
    if (c->bos_token && tmpl_vars_set_str(v, "bos_token", c->bos_token, strlen(c->bos_token), err))
        goto done;
    if (c->eos_token && tmpl_vars_set_str(v, "eos_token", c->eos_token, strlen(c->eos_token), err))
        goto done;
    if (c->extra_json &&
        tmpl_vars_set_json_object_keys(v, c->extra_json, strlen(c->extra_json), err))
        goto done;
    rc = tmpl_render(t, v, out, out_len, err);
done:
    tmpl_vars_free(v);
    tmpl_free(t);
    return rc;
}
