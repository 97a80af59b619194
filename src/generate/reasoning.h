/* Separating a reasoning model's thinking from its answer while text streams
 * in arbitrary chunks (R1 and its distills: "<think>\n...\n</think>\n\nanswer").
 *
 *   reasoning r;
 *   reasoning_init(&r, prompt_ends_in_think);  // template emitted "<think>\n"?
 *   reasoning_feed(&r, chunk, len, emit, ud);  // any split, even inside a marker
 *   reasoning_flush(&r, emit, ud);             // end of generation
 *
 * emit receives (REASONING_THINK | REASONING_ANSWER, bytes) pieces, never the
 * markers themselves. Rules:
 *  - Not started in thinking: leading whitespace is held; if "<think>" follows
 *    it, thinking begins (the whitespace is dropped); anything else starts the
 *    answer and the held text is emitted as answer.
 *  - In thinking, leading whitespace is dropped, text goes out as THINK, and
 *    "</think>" ends it; whitespace right after it is dropped too.
 *  - In the answer, text passes through verbatim: later markers are answer text.
 *  - Text that might be the start of a marker is held until it is decided;
 *    flush emits whatever is held under the current kind. */
#ifndef HEARTH_GENERATE_REASONING_H
#define HEARTH_GENERATE_REASONING_H

#include <stdbool.h>
#include <stddef.h>

typedef enum reasoning_kind { REASONING_THINK = 0, REASONING_ANSWER = 1 } reasoning_kind;

typedef void (*reasoning_emit_fn)(void *ud, reasoning_kind kind, const char *text, size_t len);

#define REASONING_HOLD_MAX 64 /* leading whitespace held before deciding */

typedef struct reasoning {
    int state;     /* private: START, THINK, ANSWER */
    bool skip_ws;  /* drop whitespace until the first other byte */
    int match;     /* bytes of the marker matched so far */
    size_t n_hold; /* START: held whitespace and partial "<think>" */
    char hold[REASONING_HOLD_MAX + 8];
    bool thought; /* a thinking section was seen */
} reasoning;

void reasoning_init(reasoning *r, bool start_in_think);
void reasoning_feed(reasoning *r, const char *text, size_t len, reasoning_emit_fn emit, void *ud);
void reasoning_flush(reasoning *r, reasoning_emit_fn emit, void *ud);
/* True while the stream is inside a thinking section. */
bool reasoning_in_think(const reasoning *r);

#endif
