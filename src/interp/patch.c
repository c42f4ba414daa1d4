/*
 * patch.c: final-token activation patching (study.md §5) over many sites in
 * about one forward pass.
 *
 * Patching only the last position leaves every earlier position's keys and
 * values untouched, so with the corrupted prompt's KV cache in place each
 * patched variant is a one-token recomputation: a row that starts at the
 * site's block from the residual stream there (clean resid_pre for resid_pre
 * sites, the corrupted one for sites inside a block, where a hook then
 * writes the clean value). All variants of a pair run as one batch of
 * ephemeral rows, so each block's weights are read once per pair. Clean and
 * corrupted prompts share every token before the error: that prefix is
 * prefilled once and its cache copied.
 *
 * Every metric comes from clens_logits_from_resid on the final residual
 * (rulings R3), so the site after the last block reproduces the clean metric
 * exactly (100% recovery).
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/base.h"
#include "interp/patch.h"

enum { SEQ_PREFIX = 0, SEQ_CLEAN = 1, SEQ_CORR = 2, N_SEQ = 3 };
/* Final residuals unembedded per call: one read of the unembedding matrix
 * serves this many rows. */
enum { METRIC_ROWS = 32, PATCH_MAX_BATCH = 256 };

struct clens_patcher {
    clens_model *m;
    clens_ctx *ctx;
    int max_tokens, n_sites, n_metrics, L, C, V;
    clens_site *sites;        /* sorted by (start layer) */
    int *site_order;          /* sorted position -> caller's site index */
    clens_metric *metrics;
    int need[CLENS_HOOK_COUNT];
    /* final-position activations: [CLENS_HOOK_COUNT][L+1][width of the point] */
    float *clean_act[CLENS_HOOK_COUNT], *corr_resid_pre;
    float *clean_final, *corr_final;   /* (C) final residual */
    float *init, *out_resid;           /* (n_sites, C) */
    float *logits;                     /* (METRIC_ROWS, V) */
    float *normed;                     /* (METRIC_ROWS, C) */
    float *finals;                     /* (2 + n_sites, C): clean, corr, patched final residuals */
    clens_row *rows;
    int max_rows;
    int *row_site;                     /* (max_rows) fast batch row -> sorted site index */
    int *cols;                         /* (2 + n_sites) out column of each row of finals (fixed at new) */
    int32_t *corr_ids;                 /* (max_tokens) the begun pair's corrupted prompt */
    int cap_tokens, T, ready;
    int finals_pending;                /* fast run: begin left the clean / corrupted metrics to sites */
    clens_patch_method method;
    double phase_s[PATCH_PH_COUNT];    /* the last begin + sites, by phase (patch.h) */
};

void patch_phase_times(const clens_patcher *p, double out[PATCH_PH_COUNT])
{
    for (int i = 0; i < PATCH_PH_COUNT; i++) out[i] = p->phase_s[i];
}

static int site_start(const clens_site *s)
{
    return s->layer; /* resid_pre L starts at L (L = n_layers: no block runs) */
}

void clens_patcher_free(clens_patcher *p)
{
    if (!p) return;
    clens_ctx_free(p->ctx);
    for (int t = 0; t < CLENS_HOOK_COUNT; t++) free(p->clean_act[t]);
    free(p->corr_resid_pre);
    free(p->clean_final);
    free(p->corr_final);
    free(p->init);
    free(p->out_resid);
    free(p->logits);
    free(p->normed);
    free(p->finals);
    free(p->rows);
    free(p->row_site);
    free(p->cols);
    free(p->corr_ids);
    free(p->sites);
    free(p->site_order);
    if (p->metrics)
        for (int i = 0; i < p->n_metrics; i++) free((void *)p->metrics[i].ids);
    free(p->metrics);
    free(p);
}

int clens_patcher_new(clens_patcher **out, clens_model *m, int max_tokens, const clens_site *sites, int n_sites,
                      const clens_metric *metrics, int n_metrics, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    *out = NULL;
    if (n_sites < 1 || n_metrics < 1 || max_tokens < 1)
        return clens_err(err, CLENS_E_ARG, "patch: need at least one site, one metric and one token");
    clens_patcher *p = clens_calloc(1, sizeof *p);
    if (!p) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    p->m = m;
    p->max_tokens = max_tokens;
    p->n_sites = n_sites;
    p->n_metrics = n_metrics;
    p->L = in->n_layers;
    p->C = in->d_model;
    p->V = in->vocab;
    int rc = 0;
    p->sites = clens_malloc(sizeof *p->sites * n_sites);
    p->site_order = clens_malloc(sizeof(int) * n_sites);
    p->metrics = clens_calloc(n_metrics, sizeof *p->metrics);
    if (!p->sites || !p->site_order || !p->metrics) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
    for (int i = 0; i < n_metrics; i++) {
        const clens_metric *mt = &metrics[i];
        if ((int)mt->kind < 0 || mt->kind >= CLENS_METRIC_COUNT) {
            rc = clens_err(err, CLENS_E_ARG, "patch: metric %d has an unknown kind %d", i, (int)mt->kind);
            goto fail;
        }
        if (mt->kind == CLENS_METRIC_CALLBACK) {
            if (!mt->fn) { rc = clens_err(err, CLENS_E_ARG, "patch: metric %d is a callback without a function", i); goto fail; }
            p->metrics[i] = *mt;
            p->metrics[i].ids = NULL;
            p->metrics[i].n_ids = 0;
            continue;
        }
        if (metrics[i].n_ids < 1) { rc = clens_err(err, CLENS_E_ARG, "patch: metric %d has no token ids", i); goto fail; }
        int32_t *ids = clens_malloc(sizeof *ids * metrics[i].n_ids);
        if (!ids) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto fail; }
        for (int k = 0; k < metrics[i].n_ids; k++) {
            if (metrics[i].ids[k] < 0 || metrics[i].ids[k] >= p->V) {
                free(ids);
                rc = clens_err(err, CLENS_E_ARG, "patch: metric token id %d outside the vocabulary [0, %d)",
                               metrics[i].ids[k], p->V);
                goto fail;
            }
            ids[k] = metrics[i].ids[k];
        }
        p->metrics[i] = (clens_metric){metrics[i].kind, ids, metrics[i].n_ids, NULL, NULL};
    }
    /* Validate and sort the sites by start layer (stable: insertion sort). */
    for (int i = 0; i < n_sites; i++) {
        const clens_site *s = &sites[i];
        if ((rc = clens_site_check(m, s, err))) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
            rc = clens_err(err, rc, "patch: %s", msg);
            goto fail;
        }
        int j = i;
        while (j > 0 && site_start(&p->sites[j - 1]) > site_start(s)) {
            p->sites[j] = p->sites[j - 1];
            p->site_order[j] = p->site_order[j - 1];
            j--;
        }
        p->sites[j] = *s;
        p->site_order[j] = i;
        p->need[s->point] = 1;
    }
    p->need[CLENS_HOOK_RESID_PRE] = 1;
    size_t LC = (size_t)(p->L + 1);
    for (int t = 0; t < CLENS_HOOK_COUNT; t++)
        if (p->need[t] && !(p->clean_act[t] = clens_calloc(LC * (size_t)clens_hook_width(m, t), sizeof(float)))) {
            rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            goto fail;
        }
    /* One batch holds the shared prefix, both suffixes together, or all the
     * sites: each phase then reads the weights once, as one forward of the
     * prompt does (a prefix cut into 64-row chunks read them twice and ran
     * the second chunk at a small, slow M: issue 24 item 4). */
    p->max_rows = 2 * max_tokens < PATCH_MAX_BATCH ? 2 * max_tokens : PATCH_MAX_BATCH;
    if (p->max_rows < n_sites) p->max_rows = n_sites;
    p->corr_resid_pre = clens_calloc(LC * p->C, sizeof(float));
    p->clean_final = clens_calloc(p->C, sizeof(float));
    p->corr_final = clens_calloc(p->C, sizeof(float));
    p->init = clens_calloc((size_t)p->max_rows * p->C, sizeof(float));
    p->out_resid = clens_calloc((size_t)p->max_rows * p->C, sizeof(float));
    p->logits = clens_calloc((size_t)METRIC_ROWS * p->V, sizeof(float));
    p->normed = clens_calloc((size_t)METRIC_ROWS * p->C, sizeof(float));
    p->finals = clens_calloc((size_t)(2 + n_sites) * p->C, sizeof(float));
    p->rows = clens_calloc(p->max_rows, sizeof *p->rows);
    p->corr_ids = clens_calloc(max_tokens, sizeof *p->corr_ids);
    p->row_site = clens_calloc(p->max_rows, sizeof *p->row_site);
    p->cols = clens_calloc(2 + (size_t)n_sites, sizeof *p->cols);
    p->cap_tokens = max_tokens;
    if (!p->corr_resid_pre || !p->clean_final || !p->corr_final || !p->init || !p->out_resid || !p->logits || !p->rows || !p->corr_ids ||
        !p->normed || !p->finals || !p->row_site || !p->cols) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = clens_ctx_new(&p->ctx, m, N_SEQ, max_tokens, p->max_rows, err))) goto fail;
    for (int i = 0; i < 2 + n_sites; i++) p->cols[i] = i < 2 ? i : 2 + p->site_order[i - 2];
    *out = p;
    return CLENS_OK;
fail:
    clens_patcher_free(p);
    return rc;
}

/* ----------------------------------------------------------------- hooks */

typedef struct {
    clens_patcher *p;
    int pos;                  /* final position */
    float **act;              /* capture targets per hook point, or NULL */
    float *resid_pre;         /* capture resid_pre here if not NULL */
    /* patch mode */
    const clens_site *site;   /* rerun: the one site to write */
    const float *value;       /* its clean value */
    int *row_site;            /* fast: batch row -> sorted site index, -1 = none */
} hook_state;

static void capture_hook(void *user, const clens_hook_event *ev)
{
    hook_state *h = user;
    if (ev->layer < 0) return;
    const clens_hook_point t = ev->point;
    for (int i = 0; i < ev->n_rows; i++) {
        if (ev->batch[ev->rows[i]].pos != h->pos) continue;
        assert(ev->layer <= h->p->L && ev->width == clens_hook_width(h->p->m, t));
        const float *row = ev->data + (size_t)i * ev->width;
        if (h->act && h->act[t]) memcpy(h->act[t] + (size_t)ev->layer * ev->width, row, sizeof(float) * ev->width);
        if (h->resid_pre && t == CLENS_HOOK_RESID_PRE)
            memcpy(h->resid_pre + (size_t)ev->layer * ev->width, row, sizeof(float) * ev->width);
    }
}

/* Captures of a batch holding both suffixes: user is hook_state[N_SEQ],
 * indexed by each row's sequence. */
static void suffix_hook(void *user, const clens_hook_event *ev)
{
    hook_state *hs = user;
    for (int i = 0; i < ev->n_rows; i++) {
        const clens_row *r = &ev->batch[ev->rows[i]];
        assert(r->seq >= 0 && r->seq < N_SEQ);
        if (r->pos != hs[r->seq].pos) continue;
        clens_hook_event single = *ev;
        single.n_rows = 1;
        single.rows = &ev->rows[i];
        single.data = ev->data + (size_t)i * ev->width;
        capture_hook(&hs[r->seq], &single);
    }
}

static const float *clean_value(const clens_patcher *p, const clens_site *s)
{
    /* sites were validated by clens_patcher_new; their activations captured by begin */
    assert(s->point >= 0 && s->point < CLENS_HOOK_COUNT && s->layer >= 0 && s->layer <= p->L);
    assert(p->clean_act[s->point]);
    return p->clean_act[s->point] + (size_t)s->layer * (size_t)clens_hook_width(p->m, s->point);
}

/* Writes the clean value of the features the site covers into row. */
static void write_site(const clens_patcher *p, const clens_site *s, float *row)
{
    int off, n;
    clens_site_span(p->m, s, &off, &n);
    assert(off >= 0 && n > 0);
    memcpy(row + off, clean_value(p, s) + off, sizeof(float) * (size_t)n);
}

static void patch_hook(void *user, const clens_hook_event *ev)
{
    hook_state *h = user;
    if (ev->layer < 0) return;
    const clens_hook_point t = ev->point;
    for (int i = 0; i < ev->n_rows; i++) {
        const clens_row *r = &ev->batch[ev->rows[i]];
        if (r->pos != h->pos) continue;
        const clens_site *s = h->site;
        if (h->row_site) {
            int k = h->row_site[ev->rows[i]];
            s = k >= 0 ? &h->p->sites[k] : NULL;
        }
        if (!s) continue;
        /* rerun: resid_pre after the last block is written at resid_post of the last block */
        clens_hook_point st = s->point;
        int sl = s->layer;
        if (st == CLENS_HOOK_RESID_PRE && sl == h->p->L) { st = CLENS_HOOK_RESID_POST; sl = h->p->L - 1; }
        if (st != t || sl != ev->layer) continue;
        assert(ev->width == clens_hook_width(h->p->m, t));
        if (h->value) memcpy(ev->data + (size_t)i * ev->width, h->value, sizeof(float) * ev->width);
        else write_site(h->p, s, ev->data + (size_t)i * ev->width);
    }
}

/* Runs ids[from, to) committed on seq, in chunks; copies the residual of the
 * last position into final (if not NULL). */
static int run_tokens(clens_patcher *p, int seq, const int32_t *ids, int from, int to, clens_hook_fn hook,
                      void *user, float *final, clens_error *err)
{
    clens_forward_args a = {0};
    a.hook = hook;
    a.hook_user = user;
    assert(seq >= 0 && seq < N_SEQ && from >= 0 && to <= p->max_tokens && p->rows && p->out_resid);
    for (int s = from; s < to;) {
        int k = to - s < p->max_rows ? to - s : p->max_rows;
        for (int i = 0; i < k; i++) p->rows[i] = (clens_row){seq, s + i, ids[s + i], 0, 1, 0};
        a.out_resid = s + k == to && final ? p->out_resid : NULL;
        int rc = clens_forward(p->ctx, p->rows, k, &a, err);
        if (rc) return rc;
        if (a.out_resid) memcpy(final, p->out_resid + (size_t)(k - 1) * p->C, sizeof(float) * p->C);
        s += k;
    }
    return CLENS_OK;
}

/* Metrics of n final residuals resid[n][C] into columns cols[i]; rows are
 * unembedded METRIC_ROWS at a time by clens_logits_from_resid_rows. The
 * built-in metrics of a batch run on the context's threads (a log-softmax
 * over 150k logits in double costs about 1 ms a row); a caller's callback
 * stays on the calling thread. */
static void metrics_rows(clens_patcher *p, const float *resid, int n, const int *cols, double *out)
{
    int builtin = 1;
    for (int i = 0; i < p->n_metrics; i++) builtin &= p->metrics[i].kind != CLENS_METRIC_CALLBACK;
    for (int done = 0; done < n;) {
        int k = n - done < METRIC_ROWS ? n - done : METRIC_ROWS;
        for (int r = 0; r < k; r++) assert(cols[done + r] >= 0 && cols[done + r] < 2 + p->n_sites);
        clens_logits_from_resid_rows(p->m, resid + (size_t)done * p->C, k, p->normed, p->logits);
        int nt = builtin && k > 1 ? clens_ctx_get_threads(p->ctx) : 1;
        #pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
        for (int r = 0; r < k; r++)
            for (int i = 0; i < p->n_metrics; i++)
                out[(size_t)i * (2 + p->n_sites) + cols[done + r]] =
                    clens_metric_value(&p->metrics[i], p->logits + (size_t)r * p->V, p->V);
        done += k;
    }
}

static void metrics_of(clens_patcher *p, const float *resid, double *out, int col)
{
    metrics_rows(p, resid, 1, &col, out);
}

/* defer_finals: the fast method leaves the clean and corrupted metrics to
 * clens_patch_sites, which unembeds them in the same pass as the sites'. */
static int patch_begin(clens_patcher *p, const int32_t *clean, const int32_t *corr, int T, clens_patch_method method,
                       double *out, int *shared_prefix, int defer_finals, clens_error *err)
{
    p->ready = 0;
    p->finals_pending = 0;
    if (T < 1 || T > p->max_tokens)
        return clens_err(err, CLENS_E_ARG, "patch: prompt of %d tokens, the patcher holds 1..%d", T, p->max_tokens);
    if (T > p->cap_tokens) return clens_err(err, CLENS_E_ARG, "patch: internal token buffer too small");
    memcpy(p->corr_ids, corr, sizeof(int32_t) * T);
    p->T = T;
    p->method = method;
    int rc, P = 0;
    hook_state cap = {p, T - 1, p->clean_act, NULL, NULL, NULL, NULL};
    if (method == CLENS_PATCH_RERUN) {
        /* Reference method: plain full forwards. */
        clens_ctx_seq_clear(p->ctx, 0);
        if ((rc = run_tokens(p, 0, clean, 0, T, capture_hook, &cap, p->clean_final, err))) return rc;
        metrics_of(p, p->clean_final, out, 0);
        clens_ctx_seq_clear(p->ctx, 0);
        if ((rc = run_tokens(p, 0, corr, 0, T, NULL, NULL, p->corr_final, err))) return rc;
        metrics_of(p, p->corr_final, out, 1);
    } else {
        /* The shared prefix stops before the last token so that both final
         * positions are computed (and captured) in their own suffix runs. */
        while (P < T - 1 && clean[P] == corr[P]) P++;
        double t0 = clens_now();
        for (int s = 0; s < N_SEQ; s++) clens_ctx_seq_clear(p->ctx, s);
        if (P > 0 && (rc = run_tokens(p, SEQ_PREFIX, clean, 0, P, NULL, NULL, NULL, err))) return rc;
        double t1 = clens_now();
        if ((rc = clens_ctx_seq_copy(p->ctx, SEQ_CLEAN, SEQ_PREFIX, P, err)) ||
            (rc = clens_ctx_seq_copy(p->ctx, SEQ_CORR, SEQ_PREFIX, P, err)))
            return rc;
        double t2 = clens_now();
        hook_state cc = {p, T - 1, NULL, p->corr_resid_pre, NULL, NULL, NULL};
        int S = T - P;
        assert(P >= 0 && P < T && S >= 1);
        if (2 * S <= p->max_rows) {
            /* Both suffixes as one batch: the weights are read once for both. */
            hook_state both[N_SEQ];
            both[SEQ_CLEAN] = cap;
            both[SEQ_CORR] = cc;
            for (int i = 0; i < S; i++) {
                p->rows[i] = (clens_row){SEQ_CLEAN, P + i, clean[P + i], 0, 1, 0};
                p->rows[S + i] = (clens_row){SEQ_CORR, P + i, corr[P + i], 0, 1, 0};
            }
            clens_forward_args a = {0};
            a.hook = suffix_hook;
            a.hook_user = both;
            a.out_resid = p->out_resid;
            if ((rc = clens_forward(p->ctx, p->rows, 2 * S, &a, err))) return rc;
            memcpy(p->clean_final, p->out_resid + (size_t)(S - 1) * p->C, sizeof(float) * p->C);
            memcpy(p->corr_final, p->out_resid + (size_t)(2 * S - 1) * p->C, sizeof(float) * p->C);
        } else if ((rc = run_tokens(p, SEQ_CLEAN, clean, P, T, capture_hook, &cap, p->clean_final, err)) ||
                   (rc = run_tokens(p, SEQ_CORR, corr, P, T, capture_hook, &cc, p->corr_final, err))) {
            return rc;
        }
        double t3 = clens_now();
        memcpy(p->corr_resid_pre + (size_t)p->L * p->C, p->corr_final, sizeof(float) * p->C);
        memcpy(p->finals, p->clean_final, sizeof(float) * p->C);
        memcpy(p->finals + p->C, p->corr_final, sizeof(float) * p->C);
        if (defer_finals) p->finals_pending = 1;
        else metrics_rows(p, p->finals, 2, p->cols, out);
        p->phase_s[PATCH_PH_PREFIX] = t1 - t0;
        p->phase_s[PATCH_PH_COPY] = t2 - t1;
        p->phase_s[PATCH_PH_SUFFIX] = t3 - t2;
        p->phase_s[PATCH_PH_UNEMBED] = clens_now() - t3;
    }
    memcpy(p->clean_act[CLENS_HOOK_RESID_PRE] + (size_t)p->L * p->C, p->clean_final, sizeof(float) * p->C);
    if (shared_prefix) *shared_prefix = P;
    p->ready = 1;
    return CLENS_OK;
}

int clens_patch_begin(clens_patcher *p, const int32_t *clean, const int32_t *corr, int T, clens_patch_method method,
                      double *out, int *shared_prefix, clens_error *err)
{
    return patch_begin(p, clean, corr, T, method, out, shared_prefix, 0, err);
}

int clens_patch_sites(clens_patcher *p, double *out, clens_error *err)
{
    if (!p->ready) return clens_err(err, CLENS_E_STATE, "patch: clens_patch_sites without a successful clens_patch_begin");
    int rc, T = p->T;
    const int32_t *corr = p->corr_ids;
    if (p->method == CLENS_PATCH_RERUN) {
        for (int k = 0; k < p->n_sites; k++) {
            const clens_site *s = &p->sites[k];
            hook_state ph = {p, T - 1, NULL, NULL, s, NULL, NULL};
            if (s->point == CLENS_HOOK_RESID_PRE && s->layer == p->L) ph.value = p->clean_final;
            clens_ctx_seq_clear(p->ctx, 0);
            if ((rc = run_tokens(p, 0, corr, 0, T, patch_hook, &ph, p->corr_final, err))) return rc;
            metrics_of(p, p->corr_final, out, 2 + p->site_order[k]);
        }
        return CLENS_OK;
    }
    /* All patched variants as one batch of ephemeral rows at the final position. */
    double t0 = clens_now();
    int *row_site = p->row_site;
    for (int done = 0; done < p->n_sites;) {
        int k = p->n_sites - done < p->max_rows ? p->n_sites - done : p->max_rows;
        assert(k >= 1 && k <= p->max_rows);
        for (int i = 0; i < k; i++) {
            const clens_site *s = &p->sites[done + i];
            p->rows[i] = (clens_row){SEQ_CORR, T - 1, corr[T - 1], site_start(s), 0, 0};
            /* resid_pre sites start from the clean value itself, the others from
             * the corrupted residual (rows at block 0 start from the embedding
             * instead, and the hook writes resid_pre 0) */
            const float *init = s->point == CLENS_HOOK_RESID_PRE ? clean_value(p, s)
                                                                : p->corr_resid_pre + (size_t)s->layer * p->C;
            memcpy(p->init + (size_t)i * p->C, init, sizeof(float) * p->C);
            row_site[i] = done + i; /* the hook writes the clean value at the site */
        }
        hook_state ph = {p, T - 1, NULL, NULL, NULL, NULL, row_site};
        clens_forward_args a = {0};
        a.hook = patch_hook;
        a.hook_user = &ph;
        a.init_resid = p->init;
        a.out_resid = p->out_resid;
        if ((rc = clens_forward(p->ctx, p->rows, k, &a, err))) return rc;
        memcpy(p->finals + (size_t)(2 + done) * p->C, p->out_resid, sizeof(float) * (size_t)k * p->C);
        done += k;
    }
    /* The patched rows' metrics in batched unembeddings; clens_logits_from_resid_rows
     * gives each row the bits it has alone, so these columns are exactly
     * comparable with the clean and corrupted ones computed by begin. */
    double t1 = clens_now();
    int first = p->finals_pending ? 0 : 2;
    metrics_rows(p, p->finals + (size_t)first * p->C, 2 + p->n_sites - first, p->cols + first, out);
    p->finals_pending = 0;
    p->phase_s[PATCH_PH_SITES] = t1 - t0;
    p->phase_s[PATCH_PH_UNEMBED] += clens_now() - t1;
    return CLENS_OK;
}

int clens_patch_run(clens_patcher *p, const int32_t *clean, const int32_t *corr, int T, clens_patch_method method,
                    double *out, int *shared_prefix, clens_error *err)
{
    int rc = patch_begin(p, clean, corr, T, method, out, shared_prefix, 1, err);
    return rc ? rc : clens_patch_sites(p, out, err);
}
