/*
 * atp_train.c: attribution patching on the training math (docs/dynamics.md
 * "Attribution patching"). The model folder is read into a training plan
 * (tr_plan, the Hugging Face tensor order `clens train` uses; every
 * architecture clens runs: Qwen2 and OLMo-3 as trained, Llama, Qwen3 and
 * OLMo-2 through the same math, train_math.inc); the RoPE tables, scaling
 * included, are the inference engine's (src/model/rope.c), so the angles are
 * formed in one place; one sequence goes through the
 * training forward, the metric's gradient at the last position's logits is
 * handed to the training backward in place of the cross-entropy
 * (train_math.inc's attribution mode), and the backward leaves the last
 * position's activation and d metric / d activation at every site. Reusing
 * the backward that trains models (checked against finite differences and
 * torch in tests/unit/test_train.c) means there is one backward to trust.
 * The weights are copied to fp32 (or fp64) and the parameter gradients are
 * computed too (the training backward always does): memory is about three
 * copies of the model.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "model/model.h"
#include "train/atp_train.h"
#include "train/train.h"

struct tr_atp {
    tr_plan plan;
    int f64, max_T;
    tr_work_f32 *w32;
    tr_work_f64 *w64;
    float *p32, *g32, *buf32, *act32, *grad32;
    double *p64, *g64, *buf64, *act64, *grad64;
    size_t width;
    const clens_metric *mt; /* of the current run */
    double value;
    int32_t *ids;
    uint8_t *mask;
};

/* d metric / d logits and the metric, in double whatever the precision. */
static double head_grad(const clens_metric *mt, const double *lg, double *d, int V)
{
    for (int j = 0; j < V; j++) d[j] = 0;
    if (mt->kind == CLENS_METRIC_LOGIT_MEAN) {
        double s = 0;
        for (int i = 0; i < mt->n_ids; i++) { s += lg[mt->ids[i]]; d[mt->ids[i]] += 1.0 / mt->n_ids; }
        return s / mt->n_ids;
    }
    /* logprob_mass = lse(lg[ids]) - lse(lg): d_j = [j in ids] p_j / P(ids) - p_j */
    double mx = -INFINITY;
    for (int j = 0; j < V; j++) mx = lg[j] > mx ? lg[j] : mx;
    double z = 0, zc = 0;
    for (int j = 0; j < V; j++) z += exp(lg[j] - mx);
    for (int i = 0; i < mt->n_ids; i++) zc += exp(lg[mt->ids[i]] - mx);
    for (int j = 0; j < V; j++) d[j] = -exp(lg[j] - mx) / z;
    for (int i = 0; i < mt->n_ids; i++) d[mt->ids[i]] += exp(lg[mt->ids[i]] - mx) / zc;
    return log(zc) - log(z);
}

static void head32(void *user, const float *lg, float *d, int V)
{
    tr_atp *a = user;
    double *l = calloc((size_t)V * 2, sizeof *l);
    if (!l) { for (int j = 0; j < V; j++) d[j] = NAN; a->value = NAN; return; }
    for (int j = 0; j < V; j++) l[j] = lg[j];
    a->value = head_grad(a->mt, l, l + V, V);
    for (int j = 0; j < V; j++) d[j] = (float)l[V + j];
    free(l);
}

static void head64(void *user, const double *lg, double *d, int V)
{
    tr_atp *a = user;
    a->value = head_grad(a->mt, lg, d, V);
}

void tr_atp_free(tr_atp *a)
{
    if (!a) return;
    if (a->w32) tr_work_free_f32(a->w32);
    if (a->w64) tr_work_free_f64(a->w64);
    free(a->p32); free(a->g32); free(a->buf32); free(a->act32); free(a->grad32);
    free(a->p64); free(a->g64); free(a->buf64); free(a->act64); free(a->grad64);
    free(a->ids); free(a->mask);
    tr_plan_free(&a->plan);
    free(a);
}

int tr_atp_open(tr_atp **out, const char *dir, int max_T, int f64, clens_error *err)
{
    *out = NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    model_config c;
    int rc = config_load(&c, path, err);
    if (rc) return rc;
    tr_shape sh;
    memset(&sh, 0, sizeof sh);
    const char *mt = c.arch->model_type, *bad = NULL;
    static const struct { const char *name; tr_arch arch; } archs[] = {
        {"qwen2", TR_QWEN2}, {"olmo3", TR_OLMO3}, {"llama", TR_LLAMA}, {"qwen3", TR_QWEN3}, {"olmo2", TR_OLMO2}};
    int found = 0;
    for (size_t i = 0; i < sizeof archs / sizeof *archs; i++)
        if (strcmp(mt, archs[i].name) == 0) { sh.arch = archs[i].arch; found = 1; }
    if (!found) bad = "architecture";
    /* o_proj has a bias too when attention_bias is set outside Qwen2; the math has none. */
    if (!bad && (c.attn_bias != 0) != tr_qkv_bias(sh.arch)) bad = "attention_bias true";
    if (!bad && c.n_layers > TR_MAX_LAYERS) bad = "num_hidden_layers";
    if (!bad && (c.head_dim % 2 || c.head_dim / 2 > TR_MAX_HALF)) bad = "head_dim";
    if (bad) {
        rc = clens_err(err, CLENS_E_UNSUPPORTED,
                       "%s: attribution patching runs on the training math, which supports qwen2, qwen3, llama, "
                       "olmo2 and olmo3 without attention_bias (bar qwen2's q/k/v bias) (this model: %s; "
                       "unsupported: %s)",
                       dir, mt, bad);
        config_free(&c);
        return rc;
    }
    sh.L = c.n_layers; sh.C = c.d_model; sh.H = c.n_heads; sh.Hkv = c.n_kv_heads; sh.F = c.d_ff; sh.V = c.vocab;
    sh.D = c.head_dim;
    sh.tied = c.tied; sh.ctx = c.max_pos; sh.eps = c.rms_eps; sh.theta = c.rope.theta; sh.window = c.window;
    for (int l = 0; l < sh.L; l++) sh.sliding[l] = c.layer_sliding ? c.layer_sliding[l] : 0;
    /* RoPE as the inference engine builds it (src/model/model.c): table 0 the
     * configured one, table 1 default RoPE for OLMo-3's sliding layers. */
    rope_config def = c.rope;
    def.type = ROPE_DEFAULT;
    rope_table rt[2] = {{0}, {0}};
    if ((rc = rope_init(&rt[0], &c.rope, c.head_dim, c.max_pos, err)) ||
        (rc = rope_init(&rt[1], &def, c.head_dim, c.max_pos, err))) {
        rope_free(&rt[0]);
        rope_free(&rt[1]);
        config_free(&c);
        return rc;
    }
    sh.rope_given = 1;
    for (int k = 0; k < 2; k++) {
        memcpy(sh.inv_freq[k], rt[k].inv_freq, sizeof(float) * (size_t)(c.head_dim / 2));
        sh.rope_mult[k] = rt[k].attn_factor;
        rope_free(&rt[k]);
    }
    for (int l = 0; l < sh.L; l++) sh.rope_table[l] = c.arch->rope_scaling_full_only && sh.sliding[l];
    config_free(&c);
    if (max_T < 2 || max_T > sh.ctx) max_T = max_T < 2 ? 2 : sh.ctx;
    tr_atp *a = calloc(1, sizeof *a);
    if (!a) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if ((rc = tr_plan_init(&a->plan, &sh, err))) { free(a); return rc; }
    const tr_shape *s = &a->plan.s;
    a->f64 = f64;
    a->max_T = max_T;
    a->width = (size_t)s->L * (size_t)(3 * s->C + s->H * s->D) + (size_t)s->C;
    size_t n = a->plan.n_params;
    a->p32 = malloc(sizeof(float) * n);
    a->ids = calloc((size_t)max_T, sizeof *a->ids);
    a->mask = calloc((size_t)max_T, 1);
    if (!a->p32 || !a->ids || !a->mask) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    if ((rc = tr_hf_load(dir, &a->plan, a->p32, err))) goto fail;
    if (f64) {
        a->p64 = malloc(sizeof(double) * n);
        a->g64 = malloc(sizeof(double) * n);
        a->buf64 = malloc(sizeof(double) * (size_t)s->V);
        a->act64 = malloc(sizeof(double) * a->width);
        a->grad64 = malloc(sizeof(double) * a->width);
        a->w64 = tr_work_new_f64(&a->plan, 1, max_T);
        if (!a->p64 || !a->g64 || !a->buf64 || !a->act64 || !a->grad64 || !a->w64) {
            rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            goto fail;
        }
        for (size_t i = 0; i < n; i++) a->p64[i] = a->p32[i];
        free(a->p32);
        a->p32 = NULL;
        tr_work_set_atp_f64(a->w64, head64, a, a->buf64, a->act64, a->grad64);
    } else {
        a->g32 = malloc(sizeof(float) * n);
        a->buf32 = malloc(sizeof(float) * (size_t)s->V);
        a->act32 = malloc(sizeof(float) * a->width);
        a->grad32 = malloc(sizeof(float) * a->width);
        a->w32 = tr_work_new_f32(&a->plan, 1, max_T);
        if (!a->g32 || !a->buf32 || !a->act32 || !a->grad32 || !a->w32) {
            rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            goto fail;
        }
        tr_work_set_atp_f32(a->w32, head32, a, a->buf32, a->act32, a->grad32);
    }
    *out = a;
    return 0;
fail:
    tr_atp_free(a);
    return rc;
}

size_t tr_atp_width(const tr_atp *a) { return a->width; }

long tr_atp_site_offset(const tr_atp *a, clens_hook_point t, int layer, int head, int *n)
{
    const tr_shape *s = &a->plan.s;
    const long C = s->C, D = s->D, SW = 3 * C + s->H * D;
    if (t == CLENS_HOOK_RESID_POST) { t = CLENS_HOOK_RESID_PRE; layer++; }
    if (layer < 0 || layer > s->L || (layer == s->L && t != CLENS_HOOK_RESID_PRE)) return -1;
    *n = (int)C;
    switch (t) {
    case CLENS_HOOK_RESID_PRE: return layer * SW;
    case CLENS_HOOK_ATTN_OUT: return layer * SW + C;
    case CLENS_HOOK_MLP_OUT: return layer * SW + 2 * C;
    case CLENS_HOOK_ATTN_Z:
        if (head < -1 || head >= s->H) return -1;
        if (head < 0) { *n = (int)(s->H * D); return layer * SW + 3 * C; }
        *n = (int)D;
        return layer * SW + 3 * C + head * D;
    default: return -1;
    }
}

int tr_atp_run(tr_atp *a, const int32_t *ids, int T, const clens_metric *mt, double *value, double *act, double *grad,
               clens_error *err)
{
    if (T < 1 || T > a->max_T) return clens_err(err, CLENS_E_ARG, "attribution patching: %d tokens (1..%d)", T, a->max_T);
    for (int i = 0; i < T; i++)
        if (ids[i] < 0 || ids[i] >= a->plan.s.V)
            return clens_err(err, CLENS_E_ARG, "attribution patching: token id %d outside the vocabulary", ids[i]);
    a->mt = mt;
    a->value = NAN;
    memcpy(a->ids, ids, sizeof *ids * (size_t)T);
    if (a->f64) {
        tr_loss_grad_f64(a->w64, a->p64, grad ? a->g64 : NULL, a->ids, a->mask, 1, T, NULL);
        memcpy(act, a->act64, sizeof(double) * a->width);
        if (grad) memcpy(grad, a->grad64, sizeof(double) * a->width);
    } else {
        tr_loss_grad_f32(a->w32, a->p32, grad ? a->g32 : NULL, a->ids, a->mask, 1, T, NULL);
        for (size_t i = 0; i < a->width; i++) act[i] = a->act32[i];
        if (grad)
            for (size_t i = 0; i < a->width; i++) grad[i] = a->grad32[i];
    }
    *value = a->value;
    if (!isfinite(*value)) return clens_err(err, CLENS_E_NONFINITE, "attribution patching: the metric is not finite");
    return 0;
}

double *tr_atp_params_f64(tr_atp *a, size_t *embed_row_offset, int32_t id)
{
    if (!a->f64) return NULL;
    *embed_row_offset = a->plan.embed + (size_t)id * (size_t)a->plan.s.C;
    return a->p64;
}
