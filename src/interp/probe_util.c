/*
 * probe_util.c: the shared pieces of capture, probe, transfer and lens
 * (declared in probe_internal.h): output folders with settings.json, the .npy
 * reader, capture folders, AUROC / accuracy, pair-grouped folds, the
 * bootstrap over pairs, the logistic fit through liblinear and the ridge
 * solve through LAPACK. Numerics are delegated to liblinear and LAPACK on
 * purpose: the tests compare them with independent numpy fits.
 */
#include <cblas.h>
#include <linear.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/infile.h"
#include "base/outdir.h"
#include "interp/probe_internal.h"
#include "interp/run_internal.h"
#include "report/stats.h"

/* LAPACK's Cholesky solve, as OpenBLAS exports it (no LAPACKE header here). */
extern void dposv_(const char *uplo, const int *n, const int *nrhs, double *a, const int *lda, double *b,
                   const int *ldb, int *info);

/* ------------------------------------------------------------ folders */

int probe_write_json(const char *dir, const char *name, const json_t *doc, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = json_dumps(doc, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    if (!s) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) { free(s); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path); }
    t[n] = '\n';
    t[n + 1] = 0;
    int rc = clens_write_file_atomic(path, t, n + 1, err);
    free(t);
    return rc;
}

int probe_write_text(const char *dir, const char *name, const char *text, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return clens_write_file_atomic(path, text, strlen(text), err);
}

int probe_settings_open(const char *out_dir, const json_t *settings, json_t *provenance, clens_error *err)
{
    int rc = clens_mkdir_p(out_dir, err);
    if (rc) { json_decref(provenance); return rc; }
    int found;
    /* a model's provenance (capture, lens) is part of the folder's identity, as
     * for a patching run (rulings R19): a capture resumed with another model's
     * rows would be silently mixed */
    if ((rc = clens_outdir_check(out_dir, "result", settings, NULL, provenance, &found, err))) {
        json_decref(provenance);
        return rc;
    }
    char *canon = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    char hex[65] = "";
    if (canon) clens_sha256_hex(canon, strlen(canon), hex);
    free(canon);
    json_t *doc = json_object();
    json_object_set_new(doc, "clens_version", json_string(CLENS_VERSION));
    json_object_set(doc, "settings", (json_t *)settings);
    json_object_set_new(doc, "settings_hash", json_string(hex));
    json_object_set_new(doc, "provenance", provenance ? provenance : json_object());
    rc = probe_write_json(out_dir, "settings.json", doc, err);
    json_decref(doc);
    return rc;
}

/* ---------------------------------------------------------------- npy */

int probe_npy_read(const char *path, float **data, int64_t *rows, int64_t *cols, clens_error *err)
{
    char *buf = NULL;
    size_t len = 0;
    *data = NULL;
    int rc = clens_read_file(path, &buf, &len, err);
    if (rc) return rc;
    rc = clens_err(err, CLENS_E_FORMAT, "%s: not a float32/float64 C-order .npy of 1 or 2 dimensions", path);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) goto done;
    size_t hl, off;
    if (buf[6] == 1) { hl = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8); off = 10; }
    else if (len >= 12) { hl = (unsigned char)buf[8] | ((size_t)(unsigned char)buf[9] << 8) | ((size_t)(unsigned char)buf[10] << 16); off = 12; }
    else goto done;
    if (off + hl > len) goto done;
    char *hdr = strndup(buf + off, hl);
    if (!hdr) goto done;
    int f8 = strstr(hdr, "'<f8'") != NULL, f4 = strstr(hdr, "'<f4'") != NULL;
    char *sh = strstr(hdr, "'shape': (");
    int fortran = strstr(hdr, "'fortran_order': True") != NULL;
    int64_t dims[2] = {1, 1};
    int nd = 0;
    if (sh) {
        char *p = sh + 10;
        while (*p && *p != ')' && nd < 3) {
            while (*p == ' ' || *p == ',') p++;
            if (*p == ')') break;
            char *e;
            long long v = strtoll(p, &e, 10);
            if (e == p) break;
            if (nd < 2) dims[nd] = v;
            nd++;
            p = e;
        }
    }
    free(hdr);
    if (!(f4 || f8) || fortran || !sh || nd < 1 || nd > 2 || dims[0] < 0 || dims[1] < 0) goto done;
    if (nd == 1) { dims[1] = dims[0]; dims[0] = 1; }
    size_t n = (size_t)dims[0] * (size_t)dims[1], es = f8 ? 8 : 4;
    if (len - off - hl < n * es) goto done;
    float *d = malloc(sizeof(float) * (n ? n : 1));
    if (!d) { rc = clens_err(err, CLENS_E_NOMEM, "%s: out of memory", path); goto done; }
    const char *src = buf + off + hl;
    for (size_t i = 0; i < n; i++) {
        if (f8) { double v; memcpy(&v, src + 8 * i, 8); d[i] = (float)v; }
        else memcpy(&d[i], src + 4 * i, 4);
    }
    /* NaN/Inf never reach the fits: liblinear does not converge on them (a
     * capture with one NaN made `clens probe` spin forever) */
    int64_t bad = clens_first_nonfinite(d, n);
    if (bad >= 0) {
        rc = clens_err(err, CLENS_E_NONFINITE, "%s: non-finite value (%s) at row %lld, column %lld", path,
                       isnan(d[bad]) ? "NaN" : "Inf", (long long)(bad / dims[1]), (long long)(bad % dims[1]));
        free(d);
        goto done;
    }
    *data = d;
    *rows = dims[0];
    *cols = dims[1];
    rc = 0;
done:
    free(buf);
    return rc;
}

/* ------------------------------------------------------- capture folders */

void probe_capture_clear(probe_capture *c)
{
    free(c->dir);
    json_decref(c->index);
    free(c->y);
    free(c->group);
    free(c->hooks);
    free(c->layers);
    free(c->widths);
    free(c->files);
    memset(c, 0, sizeof *c);
}

int probe_hook_depth(const char *hook)
{
    clens_hook_point p;
    int l;
    if (!hook || clens_hook_parse(hook, &p, &l, NULL)) return -1;
    return p == CLENS_HOOK_RESID_PRE ? l : p == CLENS_HOOK_RESID_POST ? l + 1 : p == CLENS_HOOK_EMBED ? 0 : -1;
}

int probe_capture_load(probe_capture *c, const char *dir, clens_error *err)
{
    memset(c, 0, sizeof *c);
    char path[4096];
    snprintf(path, sizeof path, "%s/index.json", dir);
    json_error_t je;
    int rc = clens_json_load_regular(path, 0, &c->index, &je, err);
    if (rc) return rc;
    c->dir = strdup(dir);
    json_t *rows = json_object_get(c->index, "rows"), *files = json_object_get(c->index, "files");
    if (!json_is_array(rows) || !json_is_array(files) || json_array_size(rows) == 0 || json_array_size(files) == 0) {
        probe_capture_clear(c);
        return clens_err(err, CLENS_E_FORMAT, "%s: expected non-empty \"rows\" and \"files\" arrays", path);
    }
    c->n_rows = (int)json_array_size(rows);
    c->n_files = (int)json_array_size(files);
    c->y = malloc(sizeof(int) * c->n_rows);
    c->group = malloc(sizeof(int) * c->n_rows);
    c->hooks = calloc(c->n_files, sizeof *c->hooks);
    c->files = calloc(c->n_files, sizeof *c->files);
    c->layers = calloc(c->n_files, sizeof(int));
    c->widths = calloc(c->n_files, sizeof(int));
    if (!c->y || !c->group || !c->hooks || !c->files || !c->layers || !c->widths) {
        probe_capture_clear(c);
        return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    c->n_layers = (int)json_integer_value(json_object_get(c->index, "n_layers"));
    c->d_model = (int)json_integer_value(json_object_get(c->index, "d_model"));
    c->model = json_string_value(json_object_get(c->index, "model"));
    /* groups: pairs by candidate index (or pair id), in order of appearance */
    json_t *seen = json_object();
    for (int i = 0; i < c->n_rows; i++) {
        json_t *r = json_array_get(rows, i);
        json_t *yv = json_object_get(r, "y"), *cand = json_object_get(r, "candidate"), *pid = json_object_get(r, "pair");
        if (!json_is_integer(yv) || (json_integer_value(yv) != 0 && json_integer_value(yv) != 1) || (!cand && !pid)) {
            json_decref(seen);
            probe_capture_clear(c);
            return clens_err(err, CLENS_E_FORMAT, "%s: row %d needs \"y\" (0 or 1) and \"candidate\" or \"pair\"", path, i);
        }
        c->y[i] = (int)json_integer_value(yv);
        char key[512];
        if (json_is_integer(cand)) snprintf(key, sizeof key, "c%lld", (long long)json_integer_value(cand));
        else snprintf(key, sizeof key, "p%.500s", json_string_value(pid) ? json_string_value(pid) : "");
        json_t *g = json_object_get(seen, key);
        if (!g) {
            json_object_set_new(seen, key, json_integer(c->n_groups));
            c->group[i] = c->n_groups++;
        } else {
            c->group[i] = (int)json_integer_value(g);
        }
    }
    json_decref(seen);
    for (int f = 0; f < c->n_files; f++) {
        json_t *o = json_array_get(files, f);
        c->hooks[f] = json_string_value(json_object_get(o, "hook"));
        c->files[f] = json_string_value(json_object_get(o, "file"));
        c->layers[f] = (int)json_integer_value(json_object_get(o, "layer"));
        c->widths[f] = (int)json_integer_value(json_object_get(o, "width"));
        if (!c->hooks[f] || !c->files[f] || c->widths[f] <= 0 || strchr(c->files[f], '/')) {
            probe_capture_clear(c);
            return clens_err(err, CLENS_E_FORMAT, "%s: files[%d] needs \"hook\", \"file\" (a name in the folder), \"width\"", path, f);
        }
    }
    return 0;
}

int probe_capture_find(const probe_capture *c, const char *hook)
{
    for (int f = 0; f < c->n_files; f++)
        if (strcmp(c->hooks[f], hook) == 0) return f;
    return -1;
}

int probe_capture_read(const probe_capture *c, int f, float **X, clens_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", c->dir, c->files[f]);
    int64_t r, w;
    int rc = probe_npy_read(path, X, &r, &w, err);
    if (rc) return rc;
    if (r != c->n_rows || w != c->widths[f]) {
        free(*X);
        *X = NULL;
        return clens_err(err, CLENS_E_FORMAT, "%s: shape (%lld, %lld), index.json says (%d, %d)", path, (long long)r,
                         (long long)w, c->n_rows, c->widths[f]);
    }
    return 0;
}

/* ------------------------------------------------------------- metrics */

typedef struct { double s; int y, w; } scored;

static int cmp_scored(const void *a, const void *b)
{
    double x = ((const scored *)a)->s, z = ((const scored *)b)->s;
    return x < z ? -1 : x > z;
}

double probe_auroc(const double *s, const int *y, const int *w, int n)
{
    scored *v = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (!v) return NAN;
    int m = 0;
    double npos = 0, nneg = 0;
    for (int i = 0; i < n; i++) {
        int wi = w ? w[i] : 1;
        if (wi <= 0) continue;
        v[m++] = (scored){s[i], y[i], wi};
        if (y[i]) npos += wi; else nneg += wi;
    }
    qsort(v, m, sizeof *v, cmp_scored);
    /* rank-sum with mid-ranks over tied blocks */
    double rank = 0, sum_pos = 0;
    for (int i = 0; i < m;) {
        int j = i;
        double wt = 0, wp = 0;
        while (j < m && v[j].s == v[i].s) { wt += v[j].w; if (v[j].y) wp += v[j].w; j++; }
        double mid = rank + (wt + 1) / 2.0;
        sum_pos += wp * mid;
        rank += wt;
        i = j;
    }
    free(v);
    if (npos == 0 || nneg == 0) return 0.5;
    return (sum_pos - npos * (npos + 1) / 2.0) / (npos * nneg);
}

double probe_accuracy(const double *s, const int *y, const int *w, int n, double thr)
{
    double ok = 0, tot = 0;
    for (int i = 0; i < n; i++) {
        int wi = w ? w[i] : 1;
        tot += wi;
        if ((s[i] > thr) == (y[i] == 1)) ok += wi;
    }
    return tot > 0 ? ok / tot : NAN;
}

void probe_group_folds(int n_groups, int k, uint64_t seed, int *fold_of_group)
{
    int *perm = malloc(sizeof(int) * (size_t)(n_groups ? n_groups : 1));
    if (!perm) { for (int g = 0; g < n_groups; g++) fold_of_group[g] = g % k; return; }
    for (int g = 0; g < n_groups; g++) perm[g] = g;
    clens_rng r;
    clens_rng_seed(&r, seed);
    for (int g = n_groups - 1; g > 0; g--) {
        int j = (int)clens_rng_below(&r, (uint64_t)g + 1);
        int t = perm[g]; perm[g] = perm[j]; perm[j] = t;
    }
    for (int i = 0; i < n_groups; i++) fold_of_group[perm[i]] = i % k;
    free(perm);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, z = *(const double *)b;
    return x < z ? -1 : x > z;
}

void probe_boot_ci(const double *s, const int *y, const int *group, int n, int n_groups, int metric, double thr,
                   int resamples, uint64_t seed, double *lo, double *hi)
{
    *lo = *hi = NAN;
    if (resamples <= 0 || n_groups <= 0) return;
    int *gw = malloc(sizeof(int) * n_groups), *w = malloc(sizeof(int) * (size_t)n);
    double *vals = malloc(sizeof(double) * resamples);
    if (!gw || !w || !vals) { free(gw); free(w); free(vals); return; }
    clens_rng r;
    clens_rng_seed(&r, seed);
    for (int b = 0; b < resamples; b++) {
        memset(gw, 0, sizeof(int) * n_groups);
        for (int g = 0; g < n_groups; g++) gw[clens_rng_below(&r, (uint64_t)n_groups)]++;
        for (int i = 0; i < n; i++) w[i] = gw[group[i]];
        vals[b] = metric ? probe_accuracy(s, y, w, n, thr) : probe_auroc(s, y, w, n);
    }
    qsort(vals, resamples, sizeof(double), cmp_double);
    *lo = clens_percentile_sorted(vals, resamples, 0.025);
    *hi = clens_percentile_sorted(vals, resamples, 0.975);
    free(gw);
    free(w);
    free(vals);
}

/* -------------------------------------------------------- logistic probe */

static void quiet(const char *s) { (void)s; }

int probe_logreg_fit(const float *X, const int *y, const int *idx, int n_idx, int d, double C, double eps,
                     double *w, clens_error *err)
{
    set_print_string_function(quiet);
    struct feature_node *nodes = malloc(sizeof *nodes * (size_t)n_idx * (d + 2));
    struct feature_node **xs = malloc(sizeof *xs * (size_t)n_idx);
    double *ys = malloc(sizeof(double) * (size_t)n_idx);
    if (!nodes || !xs || !ys) { free(nodes); free(xs); free(ys); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    int has[2] = {0, 0};
    for (int i = 0; i < n_idx; i++) {
        struct feature_node *p = nodes + (size_t)i * (d + 2);
        xs[i] = p;
        const float *row = X + (size_t)idx[i] * d;
        /* dense rows: every feature is written, zeros included, so that the
           problem is exactly the one stated (liblinear skips nothing itself) */
        for (int j = 0; j < d; j++) p[j] = (struct feature_node){j + 1, row[j]};
        p[d] = (struct feature_node){d + 1, 1.0}; /* the bias feature */
        p[d + 1] = (struct feature_node){-1, 0};
        ys[i] = y[idx[i]] ? 1 : -1;
        has[y[idx[i]] ? 1 : 0] = 1;
    }
    int rc = 0;
    if (!has[0] || !has[1]) {
        memset(w, 0, sizeof(double) * (d + 1));
        goto done;
    }
    struct problem prob = {.l = n_idx, .n = d + 1, .y = ys, .x = xs, .bias = 1.0};
    struct parameter par;
    memset(&par, 0, sizeof par);
    par.solver_type = L2R_LR;
    par.eps = eps;
    par.C = C;
    const char *bad = check_parameter(&prob, &par);
    if (bad) { rc = clens_err(err, CLENS_E_ARG, "liblinear: %s", bad); goto done; }
    struct model *mod = train(&prob, &par);
    if (!mod) { rc = clens_err(err, CLENS_E_NOMEM, "liblinear: training failed"); goto done; }
    /* liblinear's w scores its first label (the first row's class) positive */
    double sign = mod->label[0] == 1 ? 1.0 : -1.0;
    for (int j = 0; j <= d; j++) w[j] = sign * mod->w[j];
    free_and_destroy_model(&mod);
done:
    free(nodes);
    free(xs);
    free(ys);
    return rc;
}

/* ------------------------------------------------------------------ ridge */

int probe_ridge_fit(const double *X, const double *Y, int n, int p, int q, double lambda, double *W, double *c,
                    clens_error *err)
{
    double *mx = calloc(p, sizeof(double)), *my = calloc(q, sizeof(double));
    double *Xc = malloc(sizeof(double) * (size_t)n * p), *Yc = malloc(sizeof(double) * (size_t)n * q);
    double *G = malloc(sizeof(double) * (size_t)p * p);
    int rc = 0;
    if (!mx || !my || !Xc || !Yc || !G) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory for the ridge fit"); goto done; }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < p; j++) mx[j] += X[(size_t)i * p + j] / n;
        for (int j = 0; j < q; j++) my[j] += Y[(size_t)i * q + j] / n;
    }
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < p; j++) Xc[(size_t)i * p + j] = X[(size_t)i * p + j] - mx[j];
        for (int j = 0; j < q; j++) Yc[(size_t)i * q + j] = Y[(size_t)i * q + j] - my[j];
    }
    /* G = Xc^T Xc + lambda I ; W = Xc^T Yc, then G W = Xc^T Yc by Cholesky */
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, p, n, 1.0, Xc, p, Xc, p, 0.0, G, p);
    for (int j = 0; j < p; j++) G[(size_t)j * p + j] += lambda;
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, q, n, 1.0, Xc, p, Yc, q, 0.0, W, q);
    /* G is symmetric, so its row-major layout is its column-major one; W
       row-major [p][q] is column-major [q][p]: solve for W^T's columns by
       transposing in and out. */
    double *Bt = malloc(sizeof(double) * (size_t)p * q);
    if (!Bt) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory for the ridge fit"); goto done; }
    for (int j = 0; j < p; j++)
        for (int k = 0; k < q; k++) Bt[(size_t)k * p + j] = W[(size_t)j * q + k];
    int info = 0, ldb = p;
    dposv_("L", &p, &q, G, &p, Bt, &ldb, &info);
    for (int j = 0; j < p; j++)
        for (int k = 0; k < q; k++) W[(size_t)j * q + k] = Bt[(size_t)k * p + j];
    free(Bt);
    if (info != 0) { rc = clens_err(err, CLENS_E_ARG, "ridge: the Gram matrix is not positive definite (LAPACK dposv info %d); raise --ridge", info); goto done; }
    for (int k = 0; k < q; k++) {
        double s = my[k];
        for (int j = 0; j < p; j++) s -= mx[j] * W[(size_t)j * q + k];
        c[k] = s;
    }
done:
    free(mx);
    free(my);
    free(Xc);
    free(Yc);
    free(G);
    return rc;
}
