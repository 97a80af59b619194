#include "generate/reasoning.h"

#include <string.h>

enum { ST_START, ST_THINK, ST_ANSWER };

static const char OPEN[] = "<think>";
static const char CLOSE[] = "</think>";
#define OPEN_LEN  (sizeof OPEN - 1)
#define CLOSE_LEN (sizeof CLOSE - 1)

/* Output is gathered in runs of one kind and handed out when the kind
 * changes, the run fills up, or the feed ends. */
typedef struct out {
    reasoning_emit_fn emit;
    void *ud;
    reasoning_kind kind;
    size_t n;
    char buf[256];
} out;

static void out_flush(out *o) {
    if (o->n) o->emit(o->ud, o->kind, o->buf, o->n);
    o->n = 0;
}

static void out_put(out *o, reasoning_kind kind, const char *s, size_t len) {
    if (kind != o->kind) {
        out_flush(o);
        o->kind = kind;
    }
    while (len) {
        size_t room = sizeof o->buf - o->n, k = len < room ? len : room;
        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
        if (o->n == sizeof o->buf) out_flush(o);
    }
}

static bool is_ws(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

void reasoning_init(reasoning *r, bool start_in_think) {
    memset(r, 0, sizeof *r);
    r->state = start_in_think ? ST_THINK : ST_START;
    r->skip_ws = start_in_think;
    r->thought = start_in_think;
}

bool reasoning_in_think(const reasoning *r) {
    return r->state == ST_THINK;
}

static void answer_byte(reasoning *r, out *o, char c) {
    if (r->skip_ws && is_ws(c)) return;
    r->skip_ws = false;
    out_put(o, REASONING_ANSWER, &c, 1);
}

static void think_byte(reasoning *r, out *o, char c) {
    for (;;) {
        if (c == CLOSE[r->match]) {
            if (++r->match == CLOSE_LEN) {
                r->match = 0;
                r->state = ST_ANSWER;
                r->skip_ws = true;
            }
            return;
        }
        if (r->match == 0) break;
        /* Mismatch: the held part was text. "</think>" has no border (no
         * proper prefix that is also a suffix), so c is checked afresh. */
        if (r->skip_ws) r->skip_ws = false;
        out_put(o, REASONING_THINK, CLOSE, (size_t)r->match);
        r->match = 0;
    }
    if (r->skip_ws && is_ws(c)) return;
    r->skip_ws = false;
    out_put(o, REASONING_THINK, &c, 1);
}

static void start_to_answer(reasoning *r, out *o) {
    r->state = ST_ANSWER;
    out_put(o, REASONING_ANSWER, r->hold, r->n_hold);
    r->n_hold = 0;
    r->match = 0;
}

static void start_byte(reasoning *r, out *o, char c) {
    if (r->match > 0 || c == '<') {
        if (c == OPEN[r->match]) {
            r->hold[r->n_hold++] = c;
            if (++r->match == OPEN_LEN) {
                r->n_hold = 0;
                r->match = 0;
                r->state = ST_THINK;
                r->skip_ws = true;
                r->thought = true;
            }
            return;
        }
        start_to_answer(r, o);
        answer_byte(r, o, c);
        return;
    }
    if (is_ws(c) && r->n_hold < REASONING_HOLD_MAX) {
        r->hold[r->n_hold++] = c;
        return;
    }
    start_to_answer(r, o);
    answer_byte(r, o, c);
}

void reasoning_feed(reasoning *r, const char *text, size_t len, reasoning_emit_fn emit, void *ud) {
    out o = {.emit = emit, .ud = ud, .kind = REASONING_ANSWER, .n = 0};
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        switch (r->state) {
        case ST_START:
            start_byte(r, &o, c);
            break;
        case ST_THINK:
            think_byte(r, &o, c);
            break;
        default:
            answer_byte(r, &o, c);
            break;
        }
    }
    out_flush(&o);
}

void reasoning_flush(reasoning *r, reasoning_emit_fn emit, void *ud) {
    out o = {.emit = emit, .ud = ud, .kind = REASONING_ANSWER, .n = 0};
    if (r->state == ST_START) {
        start_to_answer(r, &o);
    } else if (r->state == ST_THINK && r->match > 0) {
        out_put(&o, REASONING_THINK, CLOSE, (size_t)r->match);
        r->match = 0;
    }
    out_flush(&o);
}
