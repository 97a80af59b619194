/* DeepSeek-V2 / V2-Lite / V3 / R1 (`deepseek2`): what the model module shows
 * its tests beyond model.h. The forward pass itself is reached through
 * model_load / model_eval like every architecture.
 *
 * Routing of one token over the routed experts of a MoE layer:
 *   scores = softmax(logits) (gating 1, V2) or sigmoid(logits) (gating 2, V3)
 *   choice = scores + bias   (bias = exp_probs_b, V3; chooses, never weighs)
 *   groups (n_group > 1): experts are split into n_group equal groups; a
 *     group's score is the max of its choice scores (softmax gating, V2's
 *     group_limited_greedy) or the sum of its two best (sigmoid gating, V3's
 *     noaux_tc); only the n_group_used best groups stay eligible.
 *   ids = the n_used eligible experts with the highest choice, best first
 *   weights = scores[ids], divided by their sum when norm, times scale. */
#ifndef HEARTH_MODEL_DEEPSEEK2_H
#define HEARTH_MODEL_DEEPSEEK2_H

#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

enum { DS2_GATING_SOFTMAX = 1, DS2_GATING_SIGMOID = 2 };

typedef struct ds2_router {
    int n_expert;     /* routed experts */
    int n_used;       /* experts per token, 1 <= n_used <= n_expert */
    int gating;       /* DS2_GATING_* */
    bool norm;        /* expert_weights_norm */
    float scale;      /* expert_weights_scale */
    int n_group;      /* expert_group_count; 0 or 1: no groups */
    int n_group_used; /* expert_group_used_count */
} ds2_router;

/* Chooses experts for one token. logits: [n_expert]; bias: [n_expert] or NULL;
 * ids, weights: [n_used]; scratch: [2 * n_expert + n_group] floats. The router
 * must be valid (ds2_router_check). Ties go to the lower index. */
void ds2_route(const ds2_router *r, const float *logits, const float *bias, int *ids,
               float *weights, float *scratch);

/* 0 if r describes a routing that ds2_route can run, else -1 with a message. */
int ds2_router_check(const ds2_router *r, hearth_err *err);

/* Bytes of routed-expert weights (ffn_{gate,up,down}_exps slices) handed to
 * matrix products by this model so far: each chosen expert's three slices
 * once per batch in which some token chose it. 0 for other architectures. */
uint64_t ds2_expert_bytes_read(const model *m);

#endif
