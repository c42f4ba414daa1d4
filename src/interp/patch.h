/*
 * patch.h: the activation-patching engine (moves into include/clens.h once
 * the patching section there is settled).
 */
#ifndef CLENS_PATCH_H
#define CLENS_PATCH_H

#include "clens.h"

typedef enum {
    CLENS_SITE_RESID_PRE = 0, /* layers 0..n_layers (n_layers = after the last block) */
    CLENS_SITE_RESID_POST,    /* layers 0..n_layers-1 */
    CLENS_SITE_ATTN_OUT,
    CLENS_SITE_MLP_OUT,
    CLENS_SITE_Z,             /* per head */
    CLENS_SITE_COUNT
} clens_site_type;

typedef struct clens_site {
    clens_site_type type;
    int layer;
    int head;                 /* z only; -1 otherwise */
} clens_site;

const char *clens_site_type_name(clens_site_type t);
int clens_site_type_parse(const char *s, clens_site_type *t);

typedef enum { CLENS_METRIC_LOGPROB_MASS = 0, CLENS_METRIC_LOGIT_MEAN } clens_metric_kind;

typedef struct clens_metric {
    clens_metric_kind kind;
    const int32_t *ids;
    int n_ids;
} clens_metric;

/* Value of a metric on one row of logits: logprob_mass = log of the total
 * softmax probability of ids; logit_mean = mean raw logit of ids. */
double clens_metric_value(const clens_metric *mt, const float *logits, int vocab);

typedef enum { CLENS_PATCH_FAST = 0, CLENS_PATCH_RERUN } clens_patch_method;

typedef struct clens_patcher clens_patcher;

/* A patcher for prompts of up to max_tokens tokens and a fixed list of sites
 * and metrics. Owns its context; free with clens_patcher_free. */
int clens_patcher_new(clens_patcher **out, clens_model *m, int max_tokens, const clens_site *sites, int n_sites,
                      const clens_metric *metrics, int n_metrics, clens_error *err);
void clens_patcher_free(clens_patcher *p);

/* Patches the final position of the corrupted prompt with the clean run's
 * activation at every site. clean and corr have T tokens each. out is
 * [n_metrics][2 + n_sites]: metric of the clean run, of the corrupted run,
 * then of the run patched at each site. FAST: the shared prefix is computed
 * once, and every patched variant is an ephemeral one-token row on top of the
 * corrupted run's KV cache, all in one batch. RERUN: one plain full forward
 * of the corrupted prompt per site with one hook writing the final position.
 * *shared_prefix (may be NULL) receives the prefix length computed once. */
int clens_patch_run(clens_patcher *p, const int32_t *clean, const int32_t *corr, int T, clens_patch_method method,
                    double *out, int *shared_prefix, clens_error *err);

#endif
