/* Fuzz harness: importance-matrix files (src/quant/imatrix.c), GGUF and the
 * legacy binary format. A refused input must say why; an accepted one must
 * hold only finite values >= 0 for every entry, and save and load again with
 * the same entries. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_common.h"
#include "gguf/gguf.h"
#include "quant/imatrix.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hearth_err err;
    err.msg[0] = 0;
    imat *im = imat_load_memory(data, size, &err);
    if (!im) {
        FZ_CHECK(err.msg[0] != 0);
        return 0;
    }
    FZ_CHECK(imat_n_entries(im) >= 1 || size > 4);
    /* the GGUF form lists its entries as tensors: look each one up */
    gguf_file *f =
        size >= 4 && !memcmp(data, "GGUF", 4) ? gguf_open_memory(data, size, &err) : NULL;
    for (uint64_t i = 0; f && i < gguf_n_tensors(f); i++) {
        const gguf_tensor *t = gguf_tensor_at(f, i);
        char name[600];
        if (t->name.len < 8 || t->name.len - 8 >= sizeof name) continue;
        if (memcmp(t->name.ptr + t->name.len - 8, ".in_sum2", 8)) continue;
        snprintf(name, sizeof name, "%.*s", (int)(t->name.len - 8), t->name.ptr);
        const int64_t nc = t->ne[0], nm = t->ne[1];
        for (int64_t m = 0; m < nm && m < 8; m++) {
            const float *v = NULL;
            FZ_CHECK(imat_values(im, name, (int)m, (int)nm, nc, &v, &err) == 0);
            for (int64_t j = 0; v && j < nc; j++) FZ_CHECK(isfinite(v[j]) && v[j] >= 0);
        }
    }
    gguf_close(f);
    imat_free(im);
    return 0;
}
