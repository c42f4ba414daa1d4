/*
 * steer.c: steering and ablation of a direction in the residual stream
 * (docs/steer.md) through the forward hook API, and its two cheap
 * measurements: the final-token correction metric of a pair, and the side
 * effects on neutral text (KL to the unsteered model, top-1 agreement).
 *
 * The pair metric reuses the fast patching sweep's idea (src/interp/patch.c):
 * steering only the last position leaves every earlier key and value as the
 * unsteered model computed them, so with the prompt minus its last token in
 * the KV cache each steered variant is one ephemeral one-token row, and all
 * variants (every alpha, every control) of both prompts run as one batch:
 * the weights are read once per pair. Steering at every position changes the
 * cache, so those specs are honest full reruns. Every metric comes from
 * clens_logits_from_resid on the final residual (rulings R3).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static const char *mode_names[] = {"add", "ablate", "mean-ablate"};
#define N_MODES (int)(sizeof mode_names / sizeof mode_names[0])
static const char *pos_names[] = {"all", "prompt", "generated", "last"};

const char *clens_steer_mode_name(clens_steer_mode m) { return (int)m >= 0 && (int)m < N_MODES ? mode_names[m] : "?"; }
const char *clens_steer_positions_name(clens_steer_positions p) { return p >= 0 && p <= 3 ? pos_names[p] : "?"; }

int clens_steer_mode_parse(const char *s, clens_steer_mode *m)
{
    for (int i = 0; i < N_MODES; i++)
        if (strcmp(s, mode_names[i]) == 0) { *m = i; return CLENS_OK; }
    return CLENS_E_ARG;
}

int clens_steer_positions_parse(const char *s, clens_steer_positions *p)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, pos_names[i]) == 0) { *p = i; return CLENS_OK; }
    return CLENS_E_ARG;
}

void clens_steer_apply(const clens_steer *s, clens_hook_point pt, int layer, float *x, int C)
{
    if (!s || pt != s->point || layer < 0 || layer >= s->n_layers || (s->active && !s->active[layer])) return;
    const float *v = s->vecs + (size_t)layer * C;
    if (s->mode == CLENS_STEER_ADD) {
        for (int c = 0; c < C; c++) x[c] += s->alpha * v[c];
        return;
    }
    /* x - alpha (x.u - m) u with u = v/|v|, in double: (x.v - m |v|) v / |v|^2;
     * m = 0 (ablate) or the layer's reference mean of x.u (mean-ablate) */
    double vv = 0, xv = 0;
    for (int c = 0; c < C; c++) { vv += (double)v[c] * v[c]; xv += (double)x[c] * v[c]; }
    if (vv == 0) return;
    double m = s->mode == CLENS_STEER_MEAN_ABLATE && s->means ? s->means[layer] : 0;
    double k = s->alpha * (xv - m * sqrt(vv)) / vv;
    for (int c = 0; c < C; c++) x[c] = (float)(x[c] - k * v[c]);
}

int clens_steer_at(const clens_steer *s, int pos, int n)
{
    switch (s->positions) {
    case CLENS_STEER_POS_ALL: return 1;
    case CLENS_STEER_POS_PROMPT: return pos < n;
    case CLENS_STEER_POS_GENERATED: return pos >= n;
    case CLENS_STEER_POS_LAST: return pos == n - 1;
    }
    return 0;
}

void clens_steer_hook_fn(void *user, const clens_hook_event *ev)
{
    const clens_steer_hook *h = user;
    if (ev->layer < 0 || (ev->point != CLENS_HOOK_RESID_POST && ev->point != CLENS_HOOK_RESID_PRE)) return;
    for (int i = 0; i < ev->n_rows; i++) {
        const clens_row *r = &ev->batch[ev->rows[i]];
        const clens_steer *s = h->row_spec ? h->row_spec[ev->rows[i]] : h->spec;
        if (!s || !clens_steer_at(s, r->pos, h->prompt_len[r->seq])) continue;
        clens_steer_apply(s, ev->point, ev->layer, ev->data + (size_t)i * ev->width, ev->width);
    }
}

/* ------------------------------------------------------------ pair metric */

enum { SEQ_PREFIX = 0, SEQ_CLEAN = 1, SEQ_CORR = 2, N_SEQ = 3 };

typedef struct {
    clens_model *m;
    clens_ctx *ctx;
    int C, V, max_rows;
    clens_row *rows;
    float *resid;   /* [max_rows][C] */
    float *logits;  /* [V] */
} pair_work;

/* Runs ids[from, to) committed on seq with an optional hook; the final
 * residual of the last row goes to final (if not NULL). */
static int run_committed(pair_work *w, int seq, const int32_t *ids, int from, int to, clens_steer_hook *h,
                         float *final, clens_error *err)
{
    clens_forward_args a = {0};
    if (h) { a.hook = clens_steer_hook_fn; a.hook_user = h; }
    for (int s = from; s < to;) {
        int k = to - s < w->max_rows ? to - s : w->max_rows;
        for (int i = 0; i < k; i++) w->rows[i] = (clens_row){seq, s + i, ids[s + i], 0, 1, 0};
        a.out_resid = final && s + k == to ? w->resid : NULL;
        int rc = clens_forward(w->ctx, w->rows, k, &a, err);
        if (rc) return rc;
        if (a.out_resid) memcpy(final, w->resid + (size_t)(k - 1) * w->C, sizeof(float) * w->C);
        s += k;
    }
    return CLENS_OK;
}

static void put_metrics(pair_work *w, const float *final, const clens_metric *metrics, int n_metrics, double *out,
                        int width, int col)
{
    clens_logits_from_resid(w->m, final, w->logits);
    for (int i = 0; i < n_metrics; i++) out[(size_t)i * width + col] = clens_metric_value(&metrics[i], w->logits, w->V);
}

static int fast_spec(const clens_steer *s)
{
    return s->positions == CLENS_STEER_POS_LAST || s->positions == CLENS_STEER_POS_GENERATED;
}

int clens_steer_pair(clens_model *m, const int32_t *clean, const int32_t *corr, int T, const clens_steer *specs,
                     int n_specs, const clens_metric *metrics, int n_metrics, int rerun, double *out,
                     int *shared_prefix, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    if (T < 1) return clens_err(err, CLENS_E_ARG, "steer: empty prompt");
    for (int i = 0; i < n_metrics; i++)
        for (int k = 0; k < metrics[i].n_ids; k++)
            if (metrics[i].ids[k] < 0 || metrics[i].ids[k] >= in->vocab)
                return clens_err(err, CLENS_E_ARG, "steer: metric token id %d outside the vocabulary", metrics[i].ids[k]);
    int width = 2 * (1 + n_specs), rc = 0;
    pair_work w = {m, NULL, in->d_model, in->vocab, 0, NULL, NULL, NULL};
    int n_fast = 0;
    for (int j = 0; j < n_specs; j++) n_fast += !rerun && fast_spec(&specs[j]);
    w.max_rows = 2 * (1 + n_fast) > 64 ? 2 * (1 + n_fast) : 64;
    w.rows = malloc(sizeof *w.rows * w.max_rows);
    w.resid = malloc(sizeof(float) * (size_t)w.max_rows * w.C);
    w.logits = malloc(sizeof(float) * (size_t)w.V);
    const clens_steer **row_spec = calloc(w.max_rows, sizeof *row_spec);
    float *final = malloc(sizeof(float) * w.C);
    int *col = malloc(sizeof(int) * w.max_rows); /* out column of each fast batch row */
    if (!w.rows || !w.resid || !w.logits || !row_spec || !final || !col) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    if ((rc = clens_ctx_new(&w.ctx, m, N_SEQ, T, w.max_rows, err))) goto end;
    int plen[N_SEQ] = {T, T, T}, P = 0;
    const int32_t *prompt[2] = {clean, corr};
    /* Full steered (or plain) reruns: the reference method, and the specs
     * that steer earlier positions. */
    for (int j = -1; j < n_specs; j++) {
        if (j < 0 ? !rerun : !rerun && fast_spec(&specs[j])) continue;
        clens_steer_hook h = {j < 0 ? NULL : &specs[j], NULL, plen};
        for (int p = 0; p < 2; p++) {
            clens_ctx_seq_clear(w.ctx, SEQ_PREFIX);
            if ((rc = run_committed(&w, SEQ_PREFIX, prompt[p], 0, T, j < 0 ? NULL : &h, final, err))) goto end;
            put_metrics(&w, final, metrics, n_metrics, out, width, 2 * (1 + j) + p);
        }
    }
    if (!rerun) {
        /* The common prefix once, then each prompt up to its last token. */
        while (P < T - 1 && clean[P] == corr[P]) P++;
        for (int s = 0; s < N_SEQ; s++) clens_ctx_seq_clear(w.ctx, s);
        if (P > 0 && (rc = run_committed(&w, SEQ_PREFIX, clean, 0, P, NULL, NULL, err))) goto end;
        for (int p = 0; p < 2; p++) {
            int seq = p ? SEQ_CORR : SEQ_CLEAN;
            if ((rc = clens_ctx_seq_copy(w.ctx, seq, SEQ_PREFIX, P, err))) goto end;
            if (T - 1 > P && (rc = run_committed(&w, seq, prompt[p], P, T - 1, NULL, NULL, err))) goto end;
        }
        /* One batch: (unsteered, each fast spec) x (clean, corrupted), ephemeral rows at T-1. */
        int nr = 0;
        for (int j = -1; j < n_specs; j++) {
            if (j >= 0 && !fast_spec(&specs[j])) continue;
            for (int p = 0; p < 2; p++) {
                w.rows[nr] = (clens_row){p ? SEQ_CORR : SEQ_CLEAN, T - 1, prompt[p][T - 1], 0, 0, 0};
                row_spec[nr] = j < 0 ? NULL : &specs[j];
                col[nr++] = 2 * (1 + j) + p;
            }
        }
        clens_steer_hook h = {NULL, row_spec, plen};
        clens_forward_args a = {0};
        a.hook = clens_steer_hook_fn;
        a.hook_user = &h;
        a.out_resid = w.resid;
        if ((rc = clens_forward(w.ctx, w.rows, nr, &a, err))) goto end;
        for (int r = 0; r < nr; r++) put_metrics(&w, w.resid + (size_t)r * w.C, metrics, n_metrics, out, width, col[r]);
    }
    if (shared_prefix) *shared_prefix = P;
end:
    clens_ctx_free(w.ctx);
    free(w.rows); free(w.resid); free(w.logits); free(row_spec); free(final); free(col);
    return rc;
}

/* ----------------------------------------------------------- side effects */

/* KL(p || q) in double of two logit rows; *same = 1 if their argmaxes agree. */
static double kl_rows(const float *p, const float *q, int V, int *same)
{
    double mp = -INFINITY, mq = -INFINITY, zp = 0, zq = 0, k = 0;
    int ap = 0, aq = 0;
    for (int v = 0; v < V; v++) {
        if (p[v] > p[ap]) ap = v;
        if (q[v] > q[aq]) aq = v;
        mp = fmax(mp, p[v]);
        mq = fmax(mq, q[v]);
    }
    for (int v = 0; v < V; v++) { zp += exp(p[v] - mp); zq += exp(q[v] - mq); }
    double lzp = mp + log(zp), lzq = mq + log(zq);
    for (int v = 0; v < V; v++) {
        double lp = p[v] - lzp;
        k += exp(lp) * (lp - (q[v] - lzq));
    }
    *same = ap == aq;
    return k;
}

/* The unsteered (sequence 0) and steered (sequence 1) passes run side by
 * side in chunks of KL_CHUNK positions, so memory stays at 2 * KL_CHUNK
 * logit rows whatever the text length. */
enum { KL_CHUNK = 16 };

int clens_steer_kl(clens_model *m, const int32_t *ids, int n, const clens_steer *spec, double *mean_kl,
                   double *top1_agree, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    int V = in->vocab, rc;
    if (n < 1) return clens_err(err, CLENS_E_ARG, "steer: empty neutral text");
    clens_ctx *ctx = NULL;
    float *lg = malloc(sizeof(float) * (size_t)2 * KL_CHUNK * V);
    clens_row rows[2 * KL_CHUNK];
    const clens_steer *row_spec[2 * KL_CHUNK];
    if (!lg) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if ((rc = clens_ctx_new(&ctx, m, 2, n, 2 * KL_CHUNK, err))) goto end;
    int plen[2] = {n, n};
    clens_steer_hook h = {NULL, row_spec, plen};
    clens_forward_args a = {0};
    a.hook = clens_steer_hook_fn;
    a.hook_user = &h;
    a.out_logits = lg;
    double kl = 0;
    int agree = 0;
    for (int s = 0; s < n; s += KL_CHUNK) {
        int k = n - s < KL_CHUNK ? n - s : KL_CHUNK;
        for (int q = 0; q < 2; q++)
            for (int i = 0; i < k; i++) {
                rows[q * k + i] = (clens_row){q, s + i, ids[s + i], 0, 1, 1};
                row_spec[q * k + i] = q ? spec : NULL;
            }
        if ((rc = clens_forward(ctx, rows, 2 * k, &a, err))) goto end;
        for (int i = 0; i < k; i++) {
            int same;
            kl += kl_rows(lg + (size_t)i * V, lg + (size_t)(k + i) * V, V, &same);
            agree += same;
        }
    }
    *mean_kl = kl / n;
    *top1_agree = (double)agree / n;
end:
    clens_ctx_free(ctx);
    free(lg);
    return rc;
}
