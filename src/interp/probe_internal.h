/*
 * probe_internal.h: the pieces shared by capture, probe, transfer and lens
 * (src/interp/capture.c, probe*.c, transfer.c, lens.c; docs/probe.md):
 * output folders with settings.json, a float32 .npy reader, a capture folder
 * loaded into memory, AUROC, pair-grouped folds, the bootstrap over pairs, the
 * logistic probe (liblinear) and the ridge solve (LAPACK).
 */
#ifndef CLENS_PROBE_INTERNAL_H
#define CLENS_PROBE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "clens.h"

/* Opens out_dir for a command's outputs (rulings R19): creates it and writes
 * settings.json ({"settings", "settings_hash", "provenance", "clens_version"});
 * if one exists with other settings or another identity in provenance (the
 * model's hashes, kernel), CLENS_E_STATE naming the first differing key.
 * Takes ownership of provenance (may be NULL). */
int probe_settings_open(const char *out_dir, const json_t *settings, json_t *provenance, clens_error *err);
/* Writes dir/name as indented JSON atomically. */
int probe_write_json(const char *dir, const char *name, const json_t *doc, clens_error *err);
/* Writes dir/name text atomically. */
int probe_write_text(const char *dir, const char *name, const char *text, clens_error *err);

/* Depth of a residual-stream hook in the resid_pre numbering (rulings R12):
 * blocks.l.hook_resid_pre -> l, blocks.l.hook_resid_post -> l + 1 (the same
 * activation as resid_pre l + 1), hook_embed -> 0; -1 for every other hook
 * (attention, MLP, head outputs, the final norm's output). */
int probe_hook_depth(const char *hook);

/* Reads a little-endian float32 (or float64, converted) C-order .npy of 1 or
 * 2 dimensions: *data malloc'd [rows][cols] (1-D: rows = 1). */
int probe_npy_read(const char *path, float **data, int64_t *rows, int64_t *cols, clens_error *err);

/* A capture folder (index.json + one .npy per hook). */
typedef struct probe_capture {
    char *dir;
    json_t *index;          /* index.json */
    int n_rows;
    int *y;                 /* [n_rows] 0 clean, 1 corrupted */
    int *group;             /* [n_rows] pair index 0..n_groups-1 (first appearance order) */
    int n_groups;
    int n_files;
    const char **hooks;     /* [n_files] hook names (owned by index) */
    int *layers;            /* [n_files] */
    int *widths;            /* [n_files] */
    const char **files;     /* [n_files] file names */
    int n_layers, d_model;
    const char *model;
} probe_capture;

int probe_capture_load(probe_capture *c, const char *dir, clens_error *err);
void probe_capture_clear(probe_capture *c);
/* The file index of a hook name, or -1. */
int probe_capture_find(const probe_capture *c, const char *hook);
/* Reads the array of file f: [n_rows][widths[f]], malloc'd. */
int probe_capture_read(const probe_capture *c, int f, float **X, clens_error *err);

/* AUROC of scores s for labels y (1 = positive), ties counted 1/2
 * (Mann-Whitney); rows with w[i] == 0 skipped if w is not NULL (w[i] is a
 * multiplicity, for the bootstrap). 0.5 if a class is empty. */
double probe_auroc(const double *s, const int *y, const int *w, int n);
/* Accuracy of (s > thr) against y, weighted as above. */
double probe_accuracy(const double *s, const int *y, const int *w, int n, double thr);

/* Pair-grouped k-fold assignment: groups shuffled by seed, then dealt round
 * robin, so fold sizes differ by at most one group and both rows of a pair
 * always share a fold. fold_of_group [n_groups]. */
void probe_group_folds(int n_groups, int k, uint64_t seed, int *fold_of_group);

/* Percentile-bootstrap 95% CI of a metric (AUROC or accuracy) over groups:
 * resample pairs with replacement; lo/hi at 2.5 / 97.5 %. thr is used by the
 * accuracy only (metric 1). */
void probe_boot_ci(const double *s, const int *y, const int *group, int n, int n_groups, int metric, double thr,
                   int resamples, uint64_t seed, double *lo, double *hi);

/* L2-regularised logistic regression with liblinear (L2R_LR, primal Newton):
 * min_w 0.5 |w|^2 + C sum_i log(1 + exp(-y_i w.[x_i, 1])) with y in {-1, +1}
 * (positive = label 1); the bias is the last weight and is regularised, as in
 * liblinear. rows listed in idx (n_idx of them) of X [.][d]; w [d + 1]. */
int probe_logreg_fit(const float *X, const int *y, const int *idx, int n_idx, int d, double C, double eps,
                     double *w, clens_error *err);

/* Ridge regression with intercept: B = argmin |Y - [X 1] B|^2 + lambda |B_w|^2
 * (the intercept row not penalised; X and Y centred first). X [n][p], Y
 * [n][q] as doubles; W [p][q], c [q]. Solved by Cholesky (LAPACK dposv). */
int probe_ridge_fit(const double *X, const double *Y, int n, int p, int q, double lambda, double *W, double *c,
                    clens_error *err);

/* SVG line chart: n_series series of y [n_series][n_points] against x
 * [n_points], y axis from y0 to y1; malloc'd text (probe_svg.c). */
char *probe_svg_lines(const char *title, const char *xlabel, const char *ylabel, int n_series,
                      const char *const *names, const int *dashed, const double *x, const double *y, int n_points,
                      double y0, double y1);
/* SVG heat map of v [n_rows][n_cols] scaled lo..hi, with optional cell text. */
char *probe_svg_heat(const char *title, int n_rows, const char *const *row_labels, int n_cols,
                     const char *const *col_labels, const double *v, const char *const *cell_text, double lo, double hi);

#endif
