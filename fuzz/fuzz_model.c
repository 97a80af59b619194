/* Fuzz harness: model loading on top of the GGUF reader (hyperparameters
 * and tensor shapes that do not fit the architecture, quantized weights
 * holding NaN/Inf scales). The input is a GGUF file; it is written to a
 * memfd and loaded by path with model_load, the way `hearth run` loads a
 * model. When the model loads, its tokenizer is loaded too and, if both
 * work, a context of 8 positions evaluates two tokens: whatever the weights
 * hold, that must not crash (NaN logits are allowed). */
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "model/model.h"
#include "text/tokenizer.h"

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (64u << 20)) return 0;
    if (memfd < 0) {
        memfd = memfd_create("fuzz_model", MFD_CLOEXEC);
        if (memfd < 0) return 0;
    }
    if (ftruncate(memfd, 0) != 0) return 0;
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(memfd, data + done, size - done, (off_t)done);
        if (w <= 0) return 0;
        done += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", memfd);

    hearth_err err;
    err.msg[0] = 0;
    model_params mp = model_default_params();
    mp.n_threads = 1;
    model *m = model_load(path, &mp, &err);
    if (!m) {
        FZ_CHECK(err.msg[0] != 0);
        return 0;
    }
    const model_hparams *hp = model_hparams_of(m);
    FZ_CHECK(hp->n_vocab > 0 && hp->n_embd > 0 && hp->n_layer > 0);
    FZ_CHECK(hp->weight_bytes <= size);

    tok_vocab *v = tok_load(model_gguf(m), &err);
    if (!v) FZ_CHECK(err.msg[0] != 0);
    model_ctx *c = model_ctx_new(m, 8, 4, &err);
    if (c) {
        float *logits = malloc(sizeof(float) * (size_t)hp->n_vocab * 2);
        if (logits) {
            int32_t toks[2] = {0, (int32_t)(size % (size_t)hp->n_vocab)};
            if (v && tok_bos(v) >= 0 && tok_bos(v) < hp->n_vocab) toks[0] = tok_bos(v);
            int rc = model_eval(c, toks, 2, 0, logits, MODEL_LOGITS_ALL, &err);
            if (rc == 0) FZ_CHECK(model_ctx_n_past(c) == 2);
            /* Out-of-range tokens and positions are refused, not read. */
            int32_t bad = hp->n_vocab;
            FZ_CHECK(model_eval(c, &bad, 1, 0, logits, MODEL_LOGITS_LAST, &err) < 0);
            FZ_CHECK(model_eval(c, toks, 1, 8, logits, MODEL_LOGITS_LAST, &err) < 0);
            free(logits);
        }
        model_ctx_free(c);
    } else {
        FZ_CHECK(err.msg[0] != 0);
    }
    tok_free(v);
    model_free(m);
    return 0;
}
