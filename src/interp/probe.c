/*
 * probe.c: `clens probe` (docs/probe.md): per hook of a capture folder, a
 * difference-of-means direction (mean corrupted - mean clean) and an L2
 * logistic-regression probe (liblinear), both scored out of fold with k-fold
 * cross-validation whose folds are grouped by pair (the clean and corrupted
 * rows of one pair, at every captured position, always share a fold: a probe
 * tested on the partner of a training row would leak). Per hook: AUROC and
 * accuracy with percentile-bootstrap 95% CIs over pairs, a permutation null
 * (labels swapped within randomly chosen pairs, the whole CV rerun) and a
 * random-direction baseline; the directions fitted on all rows are saved as
 * .npy for `clens transfer`.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "formats/formats.h"
#include "interp/probe_internal.h"
#include "report/stats.h"
#include "report/report.h"

clens_probe_params clens_probe_default_params(void)
{
    clens_probe_params p = {0};
    p.folds = 5;
    p.C = 1.0;
    p.bootstrap = 1000;
    p.permutations = 20;
    p.random_dirs = 20;
    return p;
}

/* Difference of means over rows with use[i] (NULL = all): dir [d]. */
static void diff_of_means(const float *X, const int *y, const unsigned char *use, int n, int d, double *dir)
{
    double n1 = 0, n0 = 0;
    double *m0 = calloc(d, sizeof(double));
    memset(dir, 0, sizeof(double) * d);
    if (!m0) return;
    for (int i = 0; i < n; i++) {
        if (use && !use[i]) continue;
        const float *r = X + (size_t)i * d;
        double *acc = y[i] ? dir : m0;
        for (int j = 0; j < d; j++) acc[j] += r[j];
        if (y[i]) n1++; else n0++;
    }
    for (int j = 0; j < d; j++) dir[j] = (n1 ? dir[j] / n1 : 0) - (n0 ? m0[j] / n0 : 0);
    free(m0);
}

static double dot(const float *x, const double *w, int d)
{
    double s = 0;
    for (int j = 0; j < d; j++) s += x[j] * w[j];
    return s;
}

/* Out-of-fold scores of both probes. dom_s / lr_s [n]; dom_thr [n] (the
 * training folds' midpoint between the class means of the projection, per
 * row's fold). Returns 0 or a liblinear error. */
static int cv_scores(const float *X, const int *y, const int *row_fold, int n, int d, int k, double C,
                     double *dom_s, double *dom_thr, double *lr_s, clens_error *err)
{
    unsigned char *use = malloc(n);
    int *idx = malloc(sizeof(int) * (size_t)n);
    double *dir = malloc(sizeof(double) * d), *w = malloc(sizeof(double) * (d + 1));
    int rc = 0;
    if (!use || !idx || !dir || !w) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int f = 0; f < k && !rc; f++) {
        int nt = 0, ntest = 0;
        for (int i = 0; i < n; i++) {
            use[i] = row_fold[i] != f;
            if (use[i]) idx[nt++] = i; else ntest++;
        }
        if (ntest == 0) continue;
        diff_of_means(X, y, use, n, d, dir);
        double p1 = 0, p0 = 0, c1 = 0, c0 = 0;
        for (int i = 0; i < n; i++) {
            if (!use[i]) continue;
            double s = dot(X + (size_t)i * d, dir, d);
            if (y[i]) { p1 += s; c1++; } else { p0 += s; c0++; }
        }
        double thr = ((c1 ? p1 / c1 : 0) + (c0 ? p0 / c0 : 0)) / 2;
        if ((rc = probe_logreg_fit(X, y, idx, nt, d, C, 1e-4, w, err))) break;
        for (int i = 0; i < n; i++) {
            if (use[i]) continue;
            dom_s[i] = dot(X + (size_t)i * d, dir, d);
            dom_thr[i] = thr;
            lr_s[i] = dot(X + (size_t)i * d, w, d) + w[d];
        }
    }
done:
    free(use);
    free(idx);
    free(dir);
    free(w);
    return rc;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, z = *(const double *)b;
    return x < z ? -1 : x > z;
}

static json_t *ci_json(double lo, double hi)
{
    json_t *a = json_array();
    json_array_append_new(a, isfinite(lo) ? json_real(lo) : json_null());
    json_array_append_new(a, isfinite(hi) ? json_real(hi) : json_null());
    return a;
}

/* Accuracy of the DoM probe with per-row thresholds (shifted scores). */
static void shifted(const double *s, const double *thr, int n, double *out)
{
    for (int i = 0; i < n; i++) out[i] = s[i] - thr[i];
}

static int probe_one(const probe_capture *c, int f, const clens_probe_params *p, const int *row_fold, const char *out_dir,
                     json_t *layers, clens_sb *md, double *auroc_dom, double *auroc_lr, double *null_p95, double *rand_p95,
                     clens_error *err)
{
    int n = c->n_rows, d = c->widths[f], G = c->n_groups;
    float *X = NULL;
    int rc = probe_capture_read(c, f, &X, err);
    if (rc) return rc;
    double *dom_s = calloc(n, sizeof(double)), *thr = calloc(n, sizeof(double)), *lr_s = calloc(n, sizeof(double));
    double *tmp = calloc(n, sizeof(double)), *dir = calloc(d, sizeof(double)), *w = calloc(d + 1, sizeof(double));
    int *yp = malloc(sizeof(int) * n), *all = malloc(sizeof(int) * n);
    double *nulls = calloc(p->permutations + 1, sizeof(double)), *rands = calloc(p->random_dirs + 1, sizeof(double));
    float *dirf = calloc(d + 1, sizeof(float));
    if (!dom_s || !thr || !lr_s || !tmp || !dir || !w || !yp || !all || !nulls || !rands || !dirf) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = cv_scores(X, c->y, row_fold, n, d, p->folds, p->C, dom_s, thr, lr_s, err))) goto done;
    double a_dom = probe_auroc(dom_s, c->y, NULL, n), a_lr = probe_auroc(lr_s, c->y, NULL, n);
    shifted(dom_s, thr, n, tmp);
    double acc_dom = probe_accuracy(tmp, c->y, NULL, n, 0), acc_lr = probe_accuracy(lr_s, c->y, NULL, n, 0);
    double ci[4][2];
    uint64_t bs = p->seed ^ 0x9e3779b97f4a7c15ULL;
    probe_boot_ci(dom_s, c->y, c->group, n, G, 0, 0, p->bootstrap, bs, &ci[0][0], &ci[0][1]);
    probe_boot_ci(tmp, c->y, c->group, n, G, 1, 0, p->bootstrap, bs, &ci[1][0], &ci[1][1]);
    probe_boot_ci(lr_s, c->y, c->group, n, G, 0, 0, p->bootstrap, bs, &ci[2][0], &ci[2][1]);
    probe_boot_ci(lr_s, c->y, c->group, n, G, 1, 0, p->bootstrap, bs, &ci[3][0], &ci[3][1]);

    /* permutation null: labels swapped within a random half of the pairs */
    clens_rng r;
    clens_rng_seed(&r, p->seed + 17);
    unsigned char *flip = malloc(G ? G : 1);
    if (!flip) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    int ge = 0;
    for (int k = 0; k < p->permutations && !rc; k++) {
        for (int g = 0; g < G; g++) flip[g] = (unsigned char)(clens_rng_next(&r) >> 63);
        for (int i = 0; i < n; i++) yp[i] = c->y[i] ^ flip[c->group[i]];
        rc = cv_scores(X, yp, row_fold, n, d, p->folds, p->C, dom_s + 0, thr, tmp, err);
        nulls[k] = probe_auroc(tmp, yp, NULL, n);
        if (nulls[k] >= a_lr) ge++;
    }
    free(flip);
    if (rc) goto done;
    /* cv_scores overwrote dom_s and thr: recompute the real ones */
    if ((rc = cv_scores(X, c->y, row_fold, n, d, p->folds, p->C, dom_s, thr, lr_s, err))) goto done;
    qsort(nulls, p->permutations, sizeof(double), cmp_d);
    double nm = 0;
    for (int k = 0; k < p->permutations; k++) nm += nulls[k] / p->permutations;
    double n95 = p->permutations ? clens_percentile_sorted(nulls, p->permutations, 0.95) : NAN;

    /* random directions: best-sign AUROC max(a, 1 - a) of the projection */
    clens_rng_seed(&r, p->seed + 29);
    double rm = 0;
    for (int k = 0; k < p->random_dirs; k++) {
        for (int j = 0; j < d; j++) {
            /* Box-Muller from two uniforms in (0, 1) */
            double u1 = ((clens_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
            double u2 = ((clens_rng_next(&r) >> 11) + 0.5) / 9007199254740992.0;
            dir[j] = sqrt(-2 * log(u1)) * cos(6.283185307179586 * u2);
        }
        for (int i = 0; i < n; i++) tmp[i] = dot(X + (size_t)i * d, dir, d);
        double a = probe_auroc(tmp, c->y, NULL, n);
        rands[k] = a > 0.5 ? a : 1 - a;
        rm += rands[k] / p->random_dirs;
    }
    qsort(rands, p->random_dirs, sizeof(double), cmp_d);
    double r95 = p->random_dirs ? clens_percentile_sorted(rands, p->random_dirs, 0.95) : NAN;

    /* the directions on all rows */
    diff_of_means(X, c->y, NULL, n, d, dir);
    double norm = 0;
    for (int j = 0; j < d; j++) norm += dir[j] * dir[j];
    norm = sqrt(norm);
    for (int j = 0; j < d; j++) dirf[j] = (float)(norm > 0 ? dir[j] / norm : 0);
    char path[4096], fname[200];
    snprintf(fname, sizeof fname, "directions/%s.dom.npy", c->hooks[f]);
    snprintf(path, sizeof path, "%s/%s", out_dir, fname);
    int64_t shape[1] = {d};
    if ((rc = npy_write_f32(path, dirf, shape, 1, err))) goto done;
    for (int i = 0; i < n; i++) all[i] = i;
    /* the saved probe is fitted tighter than the CV folds (liblinear's eps: gradient norm relative to the start) */
    if ((rc = probe_logreg_fit(X, c->y, all, n, d, p->C, 1e-7, w, err))) goto done;
    for (int j = 0; j <= d; j++) dirf[j] = (float)w[j];
    char lrname[200];
    snprintf(lrname, sizeof lrname, "directions/%s.lr.npy", c->hooks[f]);
    snprintf(path, sizeof path, "%s/%s", out_dir, lrname);
    shape[0] = d + 1;
    if ((rc = npy_write_f32(path, dirf, shape, 1, err))) goto done;
    for (int i = 0; i < n; i++) tmp[i] = dot(X + (size_t)i * d, w, d) + w[d];
    double a_in = probe_auroc(tmp, c->y, NULL, n);

    json_t *o = json_object(), *dj = json_object(), *lj = json_object(), *pj = json_object(), *rj = json_object();
    json_object_set_new(o, "hook", json_string(c->hooks[f]));
    json_object_set_new(o, "layer", json_integer(c->layers[f]));
    int depth = probe_hook_depth(c->hooks[f]);
    json_object_set_new(o, "depth", depth >= 0 ? json_integer(depth) : json_null());
    json_object_set_new(o, "width", json_integer(d));
    json_object_set_new(dj, "file", json_string(fname));
    json_object_set_new(dj, "norm", json_real(norm));
    json_object_set_new(dj, "auroc", json_real(a_dom));
    json_object_set_new(dj, "auroc_ci95", ci_json(ci[0][0], ci[0][1]));
    json_object_set_new(dj, "accuracy", json_real(acc_dom));
    json_object_set_new(dj, "accuracy_ci95", ci_json(ci[1][0], ci[1][1]));
    json_object_set_new(o, "diff_of_means", dj);
    json_object_set_new(lj, "file", json_string(lrname));
    json_object_set_new(lj, "C", json_real(p->C));
    json_object_set_new(lj, "auroc", json_real(a_lr));
    json_object_set_new(lj, "auroc_ci95", ci_json(ci[2][0], ci[2][1]));
    json_object_set_new(lj, "accuracy", json_real(acc_lr));
    json_object_set_new(lj, "accuracy_ci95", ci_json(ci[3][0], ci[3][1]));
    json_object_set_new(lj, "in_sample_auroc", json_real(a_in));
    json_object_set_new(o, "logreg", lj);
    json_object_set_new(pj, "n", json_integer(p->permutations));
    json_object_set_new(pj, "mean", json_real(nm));
    json_object_set_new(pj, "p95", isfinite(n95) ? json_real(n95) : json_null());
    json_object_set_new(pj, "p_value", json_real((1.0 + ge) / (1.0 + p->permutations)));
    json_object_set_new(o, "permutation_null", pj);
    json_object_set_new(rj, "n", json_integer(p->random_dirs));
    json_object_set_new(rj, "mean", json_real(rm));
    json_object_set_new(rj, "p95", isfinite(r95) ? json_real(r95) : json_null());
    json_object_set_new(o, "random_direction", rj);
    json_array_append_new(layers, o);
    clens_sb_printf(md, "| %s | %.3f [%.3f, %.3f] | %.3f | %.3f [%.3f, %.3f] | %.3f | %.3f | %.3f | %.4g |\n", c->hooks[f], a_dom,
                    ci[0][0], ci[0][1], acc_dom, a_lr, ci[2][0], ci[2][1], acc_lr, n95, r95, norm);
    *auroc_dom = a_dom;
    *auroc_lr = a_lr;
    *null_p95 = n95;
    *rand_p95 = r95;
done:
    free(X);
    free(dom_s);
    free(thr);
    free(lr_s);
    free(tmp);
    free(dir);
    free(w);
    free(yp);
    free(all);
    free(nulls);
    free(rands);
    free(dirf);
    return rc;
}

int clens_probe_run(const char *capture_dir, const clens_probe_params *p, const char *out_dir, char **table_md,
                    clens_error *err)
{
    if (p->folds < 2) return clens_err(err, CLENS_E_ARG, "probe: --folds must be >= 2");
    if (!(p->C > 0)) return clens_err(err, CLENS_E_ARG, "probe: --C must be > 0");
    probe_capture c;
    int rc = probe_capture_load(&c, capture_dir, err);
    if (rc) return rc;
    if (c.n_groups < p->folds) {
        rc = clens_err(err, CLENS_E_ARG, "probe: %d pairs in %s, fewer than --folds %d", c.n_groups, capture_dir, p->folds);
        probe_capture_clear(&c);
        return rc;
    }
    json_t *settings = json_object(), *layers = json_array(), *doc = json_object();
    char cap_sha[65] = "";
    char ipath[4096];
    snprintf(ipath, sizeof ipath, "%s/index.json", capture_dir);
    clens_sha256_file_hex(ipath, cap_sha, NULL);
    json_object_set_new(settings, "command", json_string("probe"));
    json_object_set_new(settings, "capture", json_string(capture_dir));
    json_object_set_new(settings, "capture_index_sha256", json_string(cap_sha));
    json_object_set_new(settings, "folds", json_integer(p->folds));
    json_object_set_new(settings, "C", json_real(p->C));
    json_object_set_new(settings, "bootstrap", json_integer(p->bootstrap));
    json_object_set_new(settings, "permutations", json_integer(p->permutations));
    json_object_set_new(settings, "random_dirs", json_integer(p->random_dirs));
    json_object_set_new(settings, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(settings, "hooks", p->hook_filter ? json_string(p->hook_filter) : json_null());
    int *fold_of_group = malloc(sizeof(int) * c.n_groups), *row_fold = malloc(sizeof(int) * c.n_rows);
    double *xs = calloc(c.n_files, sizeof(double)), *ys = calloc(4 * (size_t)c.n_files, sizeof(double));
    clens_sb md = {0};
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s/directions", out_dir);
    if (!fold_of_group || !row_fold || !xs || !ys) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    if ((rc = probe_settings_open(out_dir, settings, NULL, err))) goto done;
    if ((rc = clens_mkdir_p(dirs, err))) goto done;
    probe_group_folds(c.n_groups, p->folds, p->seed, fold_of_group);
    for (int i = 0; i < c.n_rows; i++) row_fold[i] = fold_of_group[c.group[i]];
    clens_sb_printf(&md, "# Probes: %s\n\n%d pairs, %d rows, %d-fold CV grouped by pair, C = %g; AUROC out of fold with bootstrap 95%% CI over pairs.\n\n",
                    capture_dir, c.n_groups, c.n_rows, p->folds, p->C);
    clens_sb_puts(&md, "| hook | DoM AUROC [CI] | DoM acc | LR AUROC [CI] | LR acc | perm null p95 | random dir p95 | DoM norm |\n"
                       "|---|---|---|---|---|---|---|---|\n");
    int np = 0;
    for (int f = 0; f < c.n_files && !rc; f++) {
        if (p->hook_filter && !strstr(c.hooks[f], p->hook_filter)) continue;
        double a = NAN, b = NAN, nn = NAN, rr = NAN;
        rc = probe_one(&c, f, p, row_fold, out_dir, layers, &md, &a, &b, &nn, &rr, err);
        /* plotted at its depth (resid_post l after resid_pre l), other hooks at their layer */
        xs[np] = probe_hook_depth(c.hooks[f]) >= 0 ? probe_hook_depth(c.hooks[f]) : c.layers[f];
        ys[np] = a;
        ys[c.n_files + np] = b;
        ys[2 * (size_t)c.n_files + np] = nn;
        ys[3 * (size_t)c.n_files + np] = rr;
        np++;
    }
    if (rc) goto done;
    if (np == 0) { rc = clens_err(err, CLENS_E_ARG, "probe: no hook of %s matches '%s'", capture_dir, p->hook_filter); goto done; }
    json_t *rf = json_array(), *folds = json_object();
    for (int i = 0; i < c.n_rows; i++) json_array_append_new(rf, json_integer(row_fold[i]));
    json_object_set_new(folds, "k", json_integer(p->folds));
    json_object_set_new(folds, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(folds, "row_fold", rf);
    json_object_set_new(doc, "schema", json_string("clens-probe/1"));
    json_object_set_new(doc, "capture", json_string(capture_dir));
    json_object_set_new(doc, "model", json_string(c.model ? c.model : ""));
    json_object_set_new(doc, "n_layers", json_integer(c.n_layers));
    json_object_set_new(doc, "d_model", json_integer(c.d_model));
    json_object_set_new(doc, "n_pairs", json_integer(c.n_groups));
    json_object_set_new(doc, "n_rows", json_integer(c.n_rows));
    json_object_set_new(doc, "folds", folds);
    json_object_set(doc, "layers", layers);
    if ((rc = probe_write_json(out_dir, "probe.json", doc, err))) goto done;
    /* compact series for the chart: the 4 series are stored with stride n_files */
    double *yy = malloc(sizeof(double) * 4 * (size_t)np);
    if (!yy) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int s = 0; s < 4; s++) memcpy(yy + (size_t)s * np, ys + (size_t)s * c.n_files, sizeof(double) * np);
    const char *names[4] = {"diff of means", "logistic (L2)", "permutation null p95", "random dir p95"};
    int dashed[4] = {0, 0, 1, 1};
    char *svg = probe_svg_lines("Probe AUROC (out of fold) vs depth", "depth (resid_pre numbering; other hooks: layer)", "AUROC", 4, names, dashed, xs, yy, np, 0.4, 1.0);
    free(yy);
    if (!svg) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    rc = probe_write_text(out_dir, "auroc.svg", svg, err);
    free(svg);
    if (rc) goto done;
    char *text = clens_sb_take(&md);
    if (!text) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    rc = probe_write_text(out_dir, "probe.md", text, err);
    if (table_md && !rc) *table_md = text;
    else free(text);
done:
    clens_sb_free(&md);
    free(fold_of_group);
    free(row_fold);
    free(xs);
    free(ys);
    json_decref(settings);
    json_decref(layers);
    json_decref(doc);
    probe_capture_clear(&c);
    return rc;
}
