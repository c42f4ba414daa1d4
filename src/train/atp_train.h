/*
 * atp_train.h: the training math as an attribution-patching engine
 * (atp_train.c, docs/dynamics.md "Attribution patching"): a Qwen2 / Qwen3 /
 * Llama / OLMo-2 / OLMo-3 model from its Hugging Face folder as a training plan, one sequence run
 * forward and, for a metric at the last position, backward, giving the last
 * position's activation and d metric / d activation at every site. fp32 for
 * the run engine, fp64 for the finite-difference tests; the same code
 * (train_math.inc).
 */
#ifndef CLENS_TRAIN_ATP_TRAIN_H
#define CLENS_TRAIN_ATP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "clens.h"

typedef struct tr_atp tr_atp;

/* Opens the model folder dir for sequences of up to max_T tokens; f64 selects
 * the fp64 build. CLENS_E_UNSUPPORTED for what the training math lacks (an
 * o_proj bias: attention_bias true outside Qwen2; the message names it). */
int tr_atp_open(tr_atp **out, const char *dir, int max_T, int f64, clens_error *err);
void tr_atp_free(tr_atp *a);

/* Values per run: n_layers * (3 d_model + n_heads head_dim) + d_model. */
size_t tr_atp_width(const tr_atp *a);
/* Offset (and *n, the width) of one site in that layout: resid_pre L (0..n_layers),
 * resid_post L (= resid_pre L+1), attn_out, mlp_out, z head h. -1 if out of range. */
long tr_atp_site_offset(const tr_atp *a, clens_hook_point t, int layer, int head, int *n);

/* Runs ids[0..T) (T <= max_T). act (tr_atp_width values) gets the last
 * position's activations; *value the metric there. If grad is not NULL, the
 * backward pass of the metric fills it (same layout). */
int tr_atp_run(tr_atp *a, const int32_t *ids, int T, const clens_metric *mt, double *value, double *act, double *grad,
               clens_error *err);

/* The same model's parameters, for the finite-difference test (fp64 build only;
 * NULL otherwise): the flat buffer and the offset of the embedding row of token id. */
double *tr_atp_params_f64(tr_atp *a, size_t *embed_row_offset, int32_t id);

/* train_math.inc: switches a workspace to attribution patching (head NULL: off). */
struct tr_work_f32;
struct tr_work_f64;
void tr_work_set_atp_f32(struct tr_work_f32 *w, void (*head)(void *, const float *, float *, int), void *user,
                         float *head_buf, float *site_act, float *site_grad);
void tr_work_set_atp_f64(struct tr_work_f64 *w, void (*head)(void *, const double *, double *, int), void *user,
                         double *head_buf, double *site_act, double *site_grad);

#endif
