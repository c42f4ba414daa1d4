/*
 * dynamics_internal.h: the data of one `clens dynamics` series, shared by
 * dynamics.c (running, loading, fitting) and dynamics_report.c (dynamics.json,
 * dynamics.md, the SVGs and report.html). Nothing here is public.
 */
#ifndef CLENS_INTERP_DYNAMICS_INTERNAL_H
#define CLENS_INTERP_DYNAMICS_INTERNAL_H

#include <jansson.h>

#include "interp/dynamics.h"
#include "report/compare_internal.h"

typedef struct dyn_ckpt {
    const char *arg;     /* as given */
    char *path;          /* resolved folder */
    long step;
    char *run_dir;       /* out/runs/NN-step-S */
    long n_kept;         /* pairs its run kept; 0: no profile (set.n_models == 0), no value in the series */
    cmp_set set;         /* its run read back by the compare code: set.m[0] (dyn_model) */
    int has_beh;
    clens_behaviour beh;
} dyn_ckpt;

typedef struct dyn_layer {
    double *mean;        /* (n_ck) mean recovery over the kept pairs defined there, NAN if none */
    int n_fit;           /* checkpoints with a mean */
    dyn_linear lin;
    dyn_logistic lg;
    dyn_verdict verdict;
    int n_inside;        /* checkpoints inside the logistic's 10-90% window */
    int n_boot;          /* resamples whose logistic fit converged */
    double loc_lo, loc_hi, w_lo, w_hi; /* bootstrap 95% CIs (NAN: none) */
} dyn_layer;

typedef struct dyn_series {
    const clens_dynamics_params *params;
    const char *out;
    void (*progress)(void *, const char *);
    void *user;
    int cur;
    int n_ck;
    dyn_ckpt *ck;
    int n_pts, n_layers;
    int *layer_pre;      /* (n_pts) resid_pre numbering */
    int n_ids;
    char **ids;          /* pair ids kept by any checkpoint */
    double *rec;         /* (n_ck, n_ids, n_pts), NAN = not kept there / undefined */
    dyn_layer *layer;    /* (n_pts) */
    int headline;        /* the layer the verdict paragraph leads with, -1 if every layer is flat */
    int headline_is_critical;
} dyn_series;

/* The checkpoint's profile, NULL if its run kept no pair. */
static inline const cmp_model *dyn_model(const dyn_ckpt *c) { return c->set.n_models > 0 ? &c->set.m[0] : NULL; }

/* dynamics.c: the fits of every layer (needs rec, ck[].step, ck[].set). */
int dyn_analyze(dyn_series *s, const clens_dynamics_params *p, clens_error *err);
void dyn_series_free(dyn_series *s);

/* dynamics_report.c: each returns malloc'd text or NULL on OOM. */
char *dyn_render_json(const dyn_series *s, json_t *settings);
char *dyn_render_md(const dyn_series *s);
char *dyn_svg_heat(const dyn_series *s);
char *dyn_svg_curves(const dyn_series *s);
char *dyn_render_html(const dyn_series *s, const char *md, const char *heat, const char *curves, const char *json);

#endif
