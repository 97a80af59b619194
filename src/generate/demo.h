/* The demo model: a small llama-architecture model with RANDOM weights that
 * hearth writes itself, so `hearth chat -m demo` runs the whole path
 * (tokenizer, chat template, forward pass, sampler) with no download. Its
 * output is noise, and the CLI says so.
 *
 * Shape: n_embd 256, 4 layers, 4 heads (2 KV heads), n_ff 768, context 2048,
 * F16 matrices. Vocabulary: byte-level BPE ("gpt2" model, "gpt-2"
 * pre-tokenizer): the 256 byte tokens, three merges, and the ChatML specials
 * <|endoftext|> <|im_start|> <|im_end|>; ChatML chat template. The weights
 * come from a fixed seed, so every machine writes the same file. */
#ifndef HEARTH_GENERATE_DEMO_H
#define HEARTH_GENERATE_DEMO_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"

#define DEMO_MODEL_NAME "demo"
#define DEMO_FILE_NAME  "demo-random.gguf"
#define DEMO_NOTICE     "demo model: random weights, its output is noise"

/* Writes the demo model to `path`. */
int demo_model_write(const char *path, hearth_err *err);

/* The demo model's path in the existing directory `dir` (the model store),
 * into out; writes the file when it does not exist yet (*created says so). */
int demo_model_ensure(const char *dir, char *out, size_t cap, bool *created, hearth_err *err);

#endif
