/*
 * metrics.c: the metrics of final logits (include/clens.h, "patching"): the
 * table of built-ins, each a name and a function of (ids, logits), and the
 * caller's callback. Every engine that reads a metric (patcher, run engine,
 * steering) goes through clens_metric_value, so a callback is accepted
 * wherever a built-in is. Attribution patching also needs a built-in's
 * gradient; that lives with the backward pass (train/atp_train.c).
 */
#include <math.h>
#include <string.h>

#include "base/base.h"

typedef double (*builtin_fn)(const int32_t *ids, int n_ids, const float *logits, int V);

/* log of the total softmax probability of ids, as lse(ids) - lse(all), each
 * around its own maximum. */
static double logprob_mass(const int32_t *ids, int n_ids, const float *logits, int V)
{
    double mx = -INFINITY, mxs = -INFINITY, all = 0, sel = 0;
    for (int v = 0; v < V; v++) mx = fmax(mx, logits[v]);
    for (int i = 0; i < n_ids; i++) mxs = fmax(mxs, logits[ids[i]]);
    for (int v = 0; v < V; v++) all += exp(logits[v] - mx);
    for (int i = 0; i < n_ids; i++) sel += exp(logits[ids[i]] - mxs);
    return (mxs + log(sel)) - (mx + log(all));
}

static double logit_mean(const int32_t *ids, int n_ids, const float *logits, int V)
{
    (void)V;
    double s = 0;
    for (int i = 0; i < n_ids; i++) s += logits[ids[i]];
    return s / n_ids;
}

static const struct metric_row {
    const char *name;
    builtin_fn fn; /* NULL: the caller's callback */
} metric_table[CLENS_METRIC_COUNT] = {
    [CLENS_METRIC_LOGPROB_MASS] = {"logprob_mass", logprob_mass},
    [CLENS_METRIC_LOGIT_MEAN] = {"logit_mean", logit_mean},
    [CLENS_METRIC_CALLBACK] = {"callback", NULL},
};

const char *clens_metric_name(clens_metric_kind k)
{
    return (int)k >= 0 && k < CLENS_METRIC_COUNT ? metric_table[k].name : "?";
}

int clens_metric_parse(const char *s, clens_metric_kind *k, clens_error *err)
{
    for (int i = 0; s && i < CLENS_METRIC_COUNT; i++)
        if (metric_table[i].fn && strcmp(s, metric_table[i].name) == 0) {
            *k = i;
            return CLENS_OK;
        }
    return clens_err(err, CLENS_E_ARG, "unknown metric '%.200s': expected logprob_mass or logit_mean",
                     s ? s : "(null)");
}

double clens_metric_value(const clens_metric *mt, const float *logits, int V)
{
    if ((int)mt->kind < 0 || mt->kind >= CLENS_METRIC_COUNT) return NAN;
    if (mt->kind == CLENS_METRIC_CALLBACK) return mt->fn ? mt->fn(mt->user, logits, V) : NAN;
    return metric_table[mt->kind].fn(mt->ids, mt->n_ids, logits, V);
}
