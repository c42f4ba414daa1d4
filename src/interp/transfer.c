/*
 * transfer.c: `clens transfer` (docs/probe.md): do the directions and probes
 * fitted on model A separate clean from corrupted on model B?
 *
 * Same width, no map: A's difference-of-means direction and logistic probe of
 * each layer are applied to B's activations of every layer with the same hook
 * type: AUROC with bootstrap CIs over B's pairs, the cosine between A's and
 * B's own difference-of-means directions, the best B layer per A layer and a
 * random-direction null per B layer.
 *
 * With a map (required when the widths differ): an affine map x_B ~ x_A W + c
 * per layer pair, fitted by ridge regression (probe_ridge_fit, LAPACK) on the
 * two models' activations of the same neutral texts. Positions are aligned by
 * token index when both tokenizers cut the text at the same byte offsets, and
 * by the final position only otherwise. Every fifth text is held out for the
 * R^2. Layer pairs are chosen by relative depth (l_B = round(l_A * L_B / L_A)).
 * A's direction is carried to B as its image d_A W (the B-space displacement
 * of a step along d_A), and so is the probe's weight vector; the null is the
 * same with random Gaussian maps of W's Frobenius norm.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/infile.h"
#include "formats/formats.h"
#include "interp/probe_internal.h"
#include "report/stats.h"
#include "report/report.h"

clens_transfer_params clens_transfer_default_params(void)
{
    clens_transfer_params p = {0};
    p.ridge = 1e-3;
    p.max_texts = 200;
    p.bootstrap = 1000;
    p.random_maps = 20;
    return p;
}

/* "hook_resid_pre" of "blocks.3.hook_resid_pre" (the hook type). */
static const char *hook_type(const char *h)
{
    if (strncmp(h, "blocks.", 7) != 0) return h;
    const char *d = strchr(h + 7, '.');
    return d ? d + 1 : h;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, z = *(const double *)b;
    return x < z ? -1 : x > z;
}

static double gauss(clens_rng *r)
{
    double u1 = ((clens_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((clens_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
}

static json_t *ci_json(double lo, double hi)
{
    json_t *a = json_array();
    json_array_append_new(a, isfinite(lo) ? json_real(lo) : json_null());
    json_array_append_new(a, isfinite(hi) ? json_real(hi) : json_null());
    return a;
}

/* Loads A's direction files of one layer entry of probe.json. */
static int load_dirs(const char *probe_dir, json_t *layer, float **dom, float **lr, int *d, clens_error *err)
{
    char path[4096];
    int64_t r, c, r2, c2;
    snprintf(path, sizeof path, "%s/%s", probe_dir, json_string_value(json_object_get(json_object_get(layer, "diff_of_means"), "file")));
    int rc = probe_npy_read(path, dom, &r, &c, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/%s", probe_dir, json_string_value(json_object_get(json_object_get(layer, "logreg"), "file")));
    if ((rc = probe_npy_read(path, lr, &r2, &c2, err))) { free(*dom); return rc; }
    if (c2 != c + 1) { free(*dom); free(*lr); return clens_err(err, CLENS_E_FORMAT, "%s: %lld weights for a direction of %lld", path, (long long)c2, (long long)c); }
    *d = (int)c;
    return 0;
}

/* Scores of X [n][d] on direction v [d] (double). */
static void project(const float *X, int n, int d, const double *v, double *s)
{
    for (int i = 0; i < n; i++) {
        double a = 0;
        for (int j = 0; j < d; j++) a += X[(size_t)i * d + j] * v[j];
        s[i] = a;
    }
}

/* ------------------------------------------------------ same width */

static int same_width(const char *probe_dir, json_t *A, const probe_capture *B, const clens_transfer_params *p,
                      json_t *doc, clens_sb *md, clens_error *err)
{
    json_t *alayers = json_object_get(A, "layers");
    int nA = (int)json_array_size(alayers), n = B->n_rows, rc = 0;
    double *s = malloc(sizeof(double) * n), *v = NULL, *dB = NULL;
    json_t *rows = json_array(), *best = json_array();
    float **XB = calloc(B->n_files, sizeof(float *));
    if (!s || !XB) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    clens_sb_puts(md, "| A hook | B hook | DoM AUROC [CI] | LR AUROC [CI] | cos(dA, dB) | random-dir p95 |\n|---|---|---|---|---|---|\n");
    for (int a = 0; a < nA && !rc; a++) {
        json_t *la = json_array_get(alayers, a);
        const char *ah = json_string_value(json_object_get(la, "hook"));
        float *dom = NULL, *lr = NULL;
        int d;
        if ((rc = load_dirs(probe_dir, la, &dom, &lr, &d, err))) break;
        v = realloc(v, sizeof(double) * (d + 1));
        dB = realloc(dB, sizeof(double) * d);
        double best_a = -1;
        int best_b = -1;
        for (int f = 0; f < B->n_files && !rc; f++) {
            if (strcmp(hook_type(B->hooks[f]), hook_type(ah)) != 0) continue;
            if (B->widths[f] != d) { rc = clens_err(err, CLENS_E_ARG, "transfer: %s has width %d, A's %s %d: use --map", B->hooks[f], B->widths[f], ah, d); break; }
            if (!XB[f] && (rc = probe_capture_read(B, f, &XB[f], err))) break;
            for (int j = 0; j < d; j++) v[j] = dom[j];
            project(XB[f], n, d, v, s);
            double a_dom = probe_auroc(s, B->y, NULL, n), ci[2][2];
            probe_boot_ci(s, B->y, B->group, n, B->n_groups, 0, 0, p->bootstrap, p->seed + 1, &ci[0][0], &ci[0][1]);
            for (int j = 0; j < d; j++) v[j] = lr[j];
            project(XB[f], n, d, v, s);
            for (int i = 0; i < n; i++) s[i] += lr[d];
            double a_lr = probe_auroc(s, B->y, NULL, n), acc_lr = probe_accuracy(s, B->y, NULL, n, 0);
            probe_boot_ci(s, B->y, B->group, n, B->n_groups, 0, 0, p->bootstrap, p->seed + 2, &ci[1][0], &ci[1][1]);
            /* B's own difference of means and the cosine */
            double n1 = 0, n0 = 0, na = 0, nb = 0, dotp = 0;
            memset(dB, 0, sizeof(double) * d);
            for (int i = 0; i < n; i++) { if (B->y[i]) n1++; else n0++; }
            for (int i = 0; i < n; i++)
                for (int j = 0; j < d; j++) dB[j] += XB[f][(size_t)i * d + j] * (B->y[i] ? 1.0 / n1 : -1.0 / n0);
            for (int j = 0; j < d; j++) { dotp += dB[j] * dom[j]; na += (double)dom[j] * dom[j]; nb += dB[j] * dB[j]; }
            double cosv = na > 0 && nb > 0 ? dotp / sqrt(na * nb) : NAN;
            /* random directions */
            clens_rng r;
            clens_rng_seed(&r, p->seed + 31);
            double *rv = malloc(sizeof(double) * (p->random_maps + 1));
            if (!rv) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
            for (int k = 0; k < p->random_maps; k++) {
                for (int j = 0; j < d; j++) v[j] = gauss(&r);
                project(XB[f], n, d, v, s);
                double x = probe_auroc(s, B->y, NULL, n);
                rv[k] = x > 0.5 ? x : 1 - x;
            }
            qsort(rv, p->random_maps, sizeof(double), cmp_d);
            double r95 = p->random_maps ? clens_percentile_sorted(rv, p->random_maps, 0.95) : NAN;
            free(rv);
            json_t *o = json_object();
            json_object_set_new(o, "a_hook", json_string(ah));
            json_object_set_new(o, "a_layer", json_object_get(la, "layer") ? json_incref(json_object_get(la, "layer")) : json_null());
            json_object_set_new(o, "b_hook", json_string(B->hooks[f]));
            json_object_set_new(o, "b_layer", json_integer(B->layers[f]));
            json_object_set_new(o, "dom_auroc", json_real(a_dom));
            json_object_set_new(o, "dom_auroc_ci95", ci_json(ci[0][0], ci[0][1]));
            json_object_set_new(o, "lr_auroc", json_real(a_lr));
            json_object_set_new(o, "lr_auroc_ci95", ci_json(ci[1][0], ci[1][1]));
            json_object_set_new(o, "lr_accuracy", json_real(acc_lr));
            json_object_set_new(o, "cosine", isfinite(cosv) ? json_real(cosv) : json_null());
            json_object_set_new(o, "random_direction_p95", isfinite(r95) ? json_real(r95) : json_null());
            json_array_append_new(rows, o);
            clens_sb_printf(md, "| %s | %s | %.3f [%.3f, %.3f] | %.3f [%.3f, %.3f] | %.3f | %.3f |\n", ah, B->hooks[f], a_dom,
                            ci[0][0], ci[0][1], a_lr, ci[1][0], ci[1][1], cosv, r95);
            if (a_dom > best_a) { best_a = a_dom; best_b = f; }
        }
        free(dom);
        free(lr);
        if (best_b >= 0) {
            json_t *o = json_object();
            json_object_set_new(o, "a_hook", json_string(ah));
            json_object_set_new(o, "b_hook", json_string(B->hooks[best_b]));
            json_object_set_new(o, "dom_auroc", json_real(best_a));
            json_array_append_new(best, o);
        }
    }
    json_object_set_new(doc, "mode", json_string("same_width"));
    json_object_set(doc, "pairs", rows);
    json_object_set(doc, "best_b_layer", best);
    json_object_set_new(doc, "best_rule", json_string("per A layer, the B layer of the same hook type with the highest diff-of-means AUROC"));
done:
    for (int f = 0; XB && f < B->n_files; f++) free(XB[f]);
    free(XB);
    free(s);
    free(v);
    free(dB);
    json_decref(rows);
    json_decref(best);
    return rc;
}

/* ------------------------------------------------------------ mapped */

typedef struct {
    int32_t *ids[2];
    int n[2];
    int *pos[2];   /* positions used in each model's sequence */
    int n_pos;
    int aligned;   /* 1: all positions, by token index */
} neutral_text;

/* Reads up to max lines {"text": ...}. */
static int read_texts(const char *path, int max, char ***texts, int *n, clens_error *err)
{
    FILE *f;
    int rc = clens_fopen_regular(path, &f, err);
    if (rc) return rc;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long ln = 0;
    *texts = NULL;
    *n = 0;
    while (*n < max && (len = getline(&line, &cap, f)) > 0) {
        ln++;
        if (len <= 1) continue;
        json_error_t je;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        const char *t = json_string_value(json_object_get(o, "text"));
        if (!t || !*t) {
            json_decref(o);
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: expected {\"text\": \"...\"} with a non-empty text", path, ln);
            break;
        }
        char **nt = realloc(*texts, sizeof(char *) * (*n + 1));
        if (!nt) { json_decref(o); rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
        *texts = nt;
        (*texts)[(*n)++] = strdup(t);
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (!rc && *n < 5) rc = clens_err(err, CLENS_E_ARG, "%s: %d texts; the map needs at least 5 (every fifth is held out)", path, *n);
    return rc;
}

static int mapped(const char *probe_dir, json_t *A, const probe_capture *B, const clens_transfer_params *p,
                  const char *out_dir, json_t *doc, clens_sb *md, clens_error *err)
{
    const char *model_a = json_string_value(json_object_get(A, "model")), *model_b = B->model;
    json_t *alayers = json_object_get(A, "layers");
    clens_model *ma = NULL, *mb = NULL;
    clens_tokenizer *ta = NULL, *tb = NULL;
    char **texts = NULL;
    int n_texts = 0, rc = 0;
    neutral_text *nt = NULL;
    json_t *rows = json_array();
    if (!model_a || !model_b) return clens_err(err, CLENS_E_FORMAT, "transfer: the probe or capture folder does not name its model");
    clens_model_params mp = clens_model_default_params();
    if ((rc = clens_model_open(&ma, model_a, &mp, err))) goto done;
    if ((rc = clens_model_open(&mb, model_b, &mp, err))) goto done;
    if ((rc = clens_tokenizer_open(&ta, model_a, err))) goto done;
    if ((rc = clens_tokenizer_open(&tb, model_b, err))) goto done;
    if ((rc = read_texts(p->map_texts, p->max_texts, &texts, &n_texts, err))) goto done;
    nt = calloc(n_texts, sizeof *nt);
    if (!nt) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    int n_aligned = 0;
    for (int t = 0; t < n_texts && !rc; t++) {
        size_t *off[2] = {NULL, NULL};
        const clens_tokenizer *tk[2] = {ta, tb};
        for (int s = 0; s < 2 && !rc; s++) rc = clens_tokenize(tk[s], texts[t], strlen(texts[t]), 1, &nt[t].ids[s], &nt[t].n[s], &off[s], err);
        if (!rc) {
            nt[t].aligned = nt[t].n[0] == nt[t].n[1] && memcmp(off[0], off[1], sizeof(size_t) * 2 * nt[t].n[0]) == 0;
            nt[t].n_pos = nt[t].aligned ? nt[t].n[0] : 1;
            n_aligned += nt[t].aligned;
            for (int s = 0; s < 2; s++) {
                nt[t].pos[s] = malloc(sizeof(int) * nt[t].n_pos);
                if (!nt[t].pos[s]) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); break; }
                for (int k = 0; k < nt[t].n_pos; k++) nt[t].pos[s][k] = nt[t].aligned ? k : nt[t].n[s] - 1;
            }
        }
        free(off[0]);
        free(off[1]);
    }
    if (rc) goto done;
    int LA = clens_model_get_info(ma)->n_layers, LB = clens_model_get_info(mb)->n_layers;
    int CA = clens_model_get_info(ma)->d_model, CB = clens_model_get_info(mb)->d_model;
    char maps[4096];
    snprintf(maps, sizeof maps, "%s/maps", out_dir);
    if ((rc = clens_mkdir_p(maps, err))) goto done;
    clens_sb_puts(md, "| A hook | B hook | map R^2 (held out) | DoM AUROC [CI] | LR AUROC | random-map null p95 |\n|---|---|---|---|---|---|\n");
    int nA = (int)json_array_size(alayers);
    for (int a = 0; a < nA && !rc; a++) {
        json_t *la = json_array_get(alayers, a);
        const char *ah = json_string_value(json_object_get(la, "hook"));
        int l_a = (int)json_integer_value(json_object_get(la, "layer"));
        if (l_a < 0) continue;
        int l_b = (int)floor((double)l_a * LB / LA + 0.5);
        if (l_b >= LB) l_b = LB - 1;
        char bh[160], list_a[160], list_b[160];
        snprintf(bh, sizeof bh, "blocks.%d.%s", l_b, hook_type(ah));
        snprintf(list_a, sizeof list_a, "%s", ah);
        snprintf(list_b, sizeof list_b, "%s", bh);
        int fb = probe_capture_find(B, bh);
        if (fb < 0) continue; /* B's capture does not hold the paired layer */
        clens_cache ca = {0}, cb = {0};
        if ((rc = clens_hooks_resolve(ma, list_a, &ca, err))) break;
        if ((rc = clens_hooks_resolve(mb, list_b, &cb, err))) { clens_cache_free(&ca); break; }
        int p_ = ca.entries[0].width, q_ = cb.entries[0].width;
        /* rows: every position of every text, train = texts t % 5 != 4 */
        size_t rows_tot = 0, rows_tr = 0;
        for (int t = 0; t < n_texts; t++) { rows_tot += nt[t].n_pos; if (t % 5 != 4) rows_tr += nt[t].n_pos; }
        double *XA = malloc(sizeof(double) * rows_tot * p_), *XBn = malloc(sizeof(double) * rows_tot * q_);
        float *XAf = malloc(sizeof(float) * rows_tot * p_), *XBf = malloc(sizeof(float) * rows_tot * q_);
        unsigned char *is_train = malloc(rows_tot);
        double *W = malloc(sizeof(double) * (size_t)p_ * q_), *c = malloc(sizeof(double) * q_);
        if (!XA || !XBn || !XAf || !XBf || !is_train || !W || !c) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        size_t r_tr = 0, r_te = rows_tr;
        for (int t = 0; t < n_texts && !rc; t++) {
            if ((rc = clens_run_with_cache(ma, nt[t].ids[0], nt[t].n[0], nt[t].pos[0], nt[t].n_pos, &ca, NULL, err))) break;
            if ((rc = clens_run_with_cache(mb, nt[t].ids[1], nt[t].n[1], nt[t].pos[1], nt[t].n_pos, &cb, NULL, err))) break;
            /* training rows first, then held-out rows */
            size_t *r = t % 5 != 4 ? &r_tr : &r_te;
            for (int k = 0; k < nt[t].n_pos; k++, (*r)++) {
                for (int j = 0; j < p_; j++) XA[*r * p_ + j] = XAf[*r * p_ + j] = ca.entries[0].data[(size_t)k * p_ + j];
                for (int j = 0; j < q_; j++) XBn[*r * q_ + j] = XBf[*r * q_ + j] = cb.entries[0].data[(size_t)k * q_ + j];
                is_train[*r] = t % 5 != 4;
            }
        }
        clens_cache_free(&ca);
        clens_cache_free(&cb);
        double lambda = 0, r2 = NAN;
        if (!rc) {
            /* lambda relative to the mean variance of A's training features */
            double *mx = calloc(p_, sizeof(double));
            if (!mx) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            for (size_t i = 0; !rc && i < rows_tr; i++) for (int j = 0; j < p_; j++) mx[j] += XA[i * p_ + j] / rows_tr;
            for (size_t i = 0; !rc && i < rows_tr; i++) for (int j = 0; j < p_; j++) lambda += (XA[i * p_ + j] - mx[j]) * (XA[i * p_ + j] - mx[j]);
            lambda *= p->ridge / p_;
            free(mx);
        }
        if (!rc) rc = probe_ridge_fit(XA, XBn, (int)rows_tr, p_, q_, lambda, W, c, err);
        if (!rc) {
            /* held-out R^2 = 1 - SSE / SST, summed over B's features, SST about the held-out mean */
            size_t nte = rows_tot - rows_tr;
            double sse = 0, sst = 0;
            double *my = calloc(q_, sizeof(double));
            for (size_t i = rows_tr; my && i < rows_tot; i++) for (int k = 0; k < q_; k++) my[k] += XBn[i * q_ + k] / nte;
            for (size_t i = rows_tr; my && i < rows_tot; i++)
                for (int k = 0; k < q_; k++) {
                    double pred = c[k];
                    for (int j = 0; j < p_; j++) pred += XA[i * p_ + j] * W[(size_t)j * q_ + k];
                    sse += (XBn[i * q_ + k] - pred) * (XBn[i * q_ + k] - pred);
                    sst += (XBn[i * q_ + k] - my[k]) * (XBn[i * q_ + k] - my[k]);
                }
            free(my);
            r2 = sst > 0 ? 1 - sse / sst : NAN;
            /* the map and its data, for checking */
            char path[4400];
            int64_t sh[2] = {(int64_t)rows_tot, p_};
            snprintf(path, sizeof path, "%.4000s/%.300s.XA.npy", maps, ah);
            rc = npy_write_f32(path, XAf, sh, 2, err);
            sh[1] = q_;
            snprintf(path, sizeof path, "%.4000s/%.300s.XB.npy", maps, ah);
            if (!rc) rc = npy_write_f32(path, XBf, sh, 2, err);
            float *Wf = malloc(sizeof(float) * ((size_t)p_ * q_ + q_));
            if (!Wf && !rc) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            if (!rc) {
                for (size_t i = 0; i < (size_t)p_ * q_; i++) Wf[i] = (float)W[i];
                sh[0] = p_;
                sh[1] = q_;
                snprintf(path, sizeof path, "%.4000s/%.300s.W.npy", maps, ah);
                rc = npy_write_f32(path, Wf, sh, 2, err);
                for (int k = 0; k < q_; k++) Wf[k] = (float)c[k];
                int64_t s1[1] = {q_};
                snprintf(path, sizeof path, "%.4000s/%.300s.c.npy", maps, ah);
                if (!rc) rc = npy_write_f32(path, Wf, s1, 1, err);
            }
            free(Wf);
        }
        /* transferred AUROC on B's capture */
        float *dom = NULL, *lr = NULL, *X = NULL;
        int d = 0;
        double a_dom = NAN, a_lr = NAN, ci[2] = {NAN, NAN}, n95 = NAN, nmean = NAN;
        if (!rc) rc = load_dirs(probe_dir, la, &dom, &lr, &d, err);
        if (!rc && d != p_) rc = clens_err(err, CLENS_E_FORMAT, "transfer: A's %s direction has width %d, model A %d", ah, d, p_);
        if (!rc) rc = probe_capture_read(B, fb, &X, err);
        if (!rc && B->widths[fb] != q_) rc = clens_err(err, CLENS_E_FORMAT, "transfer: B's %s has width %d, model B %d", bh, B->widths[fb], q_);
        double *v = malloc(sizeof(double) * q_), *s = malloc(sizeof(double) * B->n_rows), *Wr = malloc(sizeof(double) * (size_t)p_ * q_);
        if (!rc && (!v || !s || !Wr)) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        if (!rc) {
            for (int k = 0; k < q_; k++) { v[k] = 0; for (int j = 0; j < p_; j++) v[k] += dom[j] * W[(size_t)j * q_ + k]; }
            project(X, B->n_rows, q_, v, s);
            a_dom = probe_auroc(s, B->y, NULL, B->n_rows);
            probe_boot_ci(s, B->y, B->group, B->n_rows, B->n_groups, 0, 0, p->bootstrap, p->seed + 3, &ci[0], &ci[1]);
            for (int k = 0; k < q_; k++) { v[k] = 0; for (int j = 0; j < p_; j++) v[k] += lr[j] * W[(size_t)j * q_ + k]; }
            project(X, B->n_rows, q_, v, s);
            a_lr = probe_auroc(s, B->y, NULL, B->n_rows);
            /* random-map null: Gaussian maps with W's Frobenius norm, best-sign AUROC of d_A W_rand */
            double fro = 0;
            for (size_t i = 0; i < (size_t)p_ * q_; i++) fro += W[i] * W[i];
            clens_rng r;
            clens_rng_seed(&r, p->seed + 41);
            double *nv = malloc(sizeof(double) * (p->random_maps + 1));
            if (!nv) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            nmean = 0;
            for (int k = 0; !rc && k < p->random_maps; k++) {
                double fr = 0;
                for (size_t i = 0; i < (size_t)p_ * q_; i++) { Wr[i] = gauss(&r); fr += Wr[i] * Wr[i]; }
                double sc = fr > 0 ? sqrt(fro / fr) : 0;
                for (int kk = 0; kk < q_; kk++) { v[kk] = 0; for (int j = 0; j < p_; j++) v[kk] += dom[j] * Wr[(size_t)j * q_ + kk] * sc; }
                project(X, B->n_rows, q_, v, s);
                double x = probe_auroc(s, B->y, NULL, B->n_rows);
                nv[k] = x > 0.5 ? x : 1 - x;
                nmean += nv[k] / p->random_maps;
            }
            if (!rc && p->random_maps) { qsort(nv, p->random_maps, sizeof(double), cmp_d); n95 = clens_percentile_sorted(nv, p->random_maps, 0.95); }
            free(nv);
        }
        if (!rc) {
            json_t *o = json_object();
            json_object_set_new(o, "a_hook", json_string(ah));
            json_object_set_new(o, "a_layer", json_integer(l_a));
            json_object_set_new(o, "b_hook", json_string(bh));
            json_object_set_new(o, "b_layer", json_integer(l_b));
            json_object_set_new(o, "map_rows_train", json_integer((json_int_t)rows_tr));
            json_object_set_new(o, "map_rows_heldout", json_integer((json_int_t)(rows_tot - rows_tr)));
            json_object_set_new(o, "lambda", json_real(lambda));
            json_object_set_new(o, "r2_heldout", isfinite(r2) ? json_real(r2) : json_null());
            json_object_set_new(o, "dom_auroc", json_real(a_dom));
            json_object_set_new(o, "dom_auroc_ci95", ci_json(ci[0], ci[1]));
            json_object_set_new(o, "lr_auroc", json_real(a_lr));
            json_object_set_new(o, "random_map_mean", json_real(nmean));
            json_object_set_new(o, "random_map_p95", isfinite(n95) ? json_real(n95) : json_null());
            json_array_append_new(rows, o);
            clens_sb_printf(md, "| %s | %s | %.3f | %.3f [%.3f, %.3f] | %.3f | %.3f |\n", ah, bh, r2, a_dom, ci[0], ci[1], a_lr, n95);
        }
        free(dom); free(lr); free(X); free(v); free(s); free(Wr);
        free(XA); free(XBn); free(XAf); free(XBf); free(is_train); free(W); free(c);
    }
    if (!rc && json_array_size(rows) == 0) rc = clens_err(err, CLENS_E_ARG, "transfer: no layer of A has a paired layer in B's capture");
    json_object_set_new(doc, "mode", json_string("affine_map"));
    json_object_set_new(doc, "layer_pairing", json_string("relative depth: l_B = round(l_A * L_B / L_A)"));
    json_object_set_new(doc, "alignment", json_string("by token index when both tokenizers give the same byte offsets, else the final position only"));
    json_object_set_new(doc, "n_texts", json_integer(n_texts));
    json_object_set_new(doc, "n_texts_aligned", json_integer(n_aligned));
    json_object_set_new(doc, "width_a", json_integer(CA));
    json_object_set_new(doc, "width_b", json_integer(CB));
    json_object_set(doc, "pairs", rows);
done:
    for (int t = 0; nt && t < n_texts; t++) for (int s = 0; s < 2; s++) { free(nt[t].ids[s]); free(nt[t].pos[s]); }
    free(nt);
    for (int t = 0; t < n_texts; t++) free(texts[t]);
    free(texts);
    json_decref(rows);
    clens_tokenizer_free(ta);
    clens_tokenizer_free(tb);
    clens_model_free(ma);
    clens_model_free(mb);
    return rc;
}

int clens_transfer_run(const char *probe_dir, const char *capture_dir, const clens_transfer_params *p,
                       const char *out_dir, char **table_md, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/probe.json", probe_dir);
    json_t *A = NULL, *settings = json_object(), *doc = json_object();
    json_error_t je;
    probe_capture B;
    memset(&B, 0, sizeof B);
    clens_sb md = {0};
    int rc = clens_json_load_regular(path, 0, &A, &je, err);
    if (rc) goto done;
    if (!json_is_array(json_object_get(A, "layers"))) { rc = clens_err(err, CLENS_E_FORMAT, "%s: no \"layers\" array", path); goto done; }
    if ((rc = probe_capture_load(&B, capture_dir, err))) goto done;
    char sha_a[65] = "", sha_b[65] = "", sha_m[65] = "", ipath[4096];
    clens_sha256_file_hex(path, sha_a, NULL);
    snprintf(ipath, sizeof ipath, "%s/index.json", capture_dir);
    clens_sha256_file_hex(ipath, sha_b, NULL);
    if (p->map_texts && (rc = clens_sha256_file_hex(p->map_texts, sha_m, err))) goto done;
    json_object_set_new(settings, "command", json_string("transfer"));
    json_object_set_new(settings, "from", json_string(probe_dir));
    json_object_set_new(settings, "from_probe_sha256", json_string(sha_a));
    json_object_set_new(settings, "to", json_string(capture_dir));
    json_object_set_new(settings, "to_index_sha256", json_string(sha_b));
    json_object_set_new(settings, "map", p->map_texts ? json_string(p->map_texts) : json_null());
    json_object_set_new(settings, "map_sha256", p->map_texts ? json_string(sha_m) : json_null());
    json_object_set_new(settings, "ridge", json_real(p->ridge));
    json_object_set_new(settings, "max_texts", json_integer(p->max_texts));
    json_object_set_new(settings, "bootstrap", json_integer(p->bootstrap));
    json_object_set_new(settings, "random_maps", json_integer(p->random_maps));
    json_object_set_new(settings, "seed", json_integer((json_int_t)p->seed));
    if ((rc = probe_settings_open(out_dir, settings, NULL, err))) goto done;
    int wa = (int)json_integer_value(json_object_get(A, "d_model"));
    clens_sb_printf(&md, "# Transfer: probes of %s applied to %s\n\n", probe_dir, capture_dir);
    if (p->map_texts) rc = mapped(probe_dir, A, &B, p, out_dir, doc, &md, err);
    else if (wa != B.d_model)
        rc = clens_err(err, CLENS_E_ARG, "transfer: widths differ (A %d, B %d): give --map neutral.jsonl", wa, B.d_model);
    else rc = same_width(probe_dir, A, &B, p, doc, &md, err);
    if (rc) goto done;
    json_object_set_new(doc, "schema", json_string("clens-transfer/1"));
    json_object_set_new(doc, "from", json_string(probe_dir));
    json_object_set_new(doc, "to", json_string(capture_dir));
    if ((rc = probe_write_json(out_dir, "transfer.json", doc, err))) goto done;
    char *t = clens_sb_take(&md);
    if (!t) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    rc = probe_write_text(out_dir, "transfer.md", t, err);
    if (table_md && !rc) *table_md = t;
    else free(t);
done:
    clens_sb_free(&md);
    json_decref(A);
    json_decref(settings);
    json_decref(doc);
    probe_capture_clear(&B);
    return rc;
}
