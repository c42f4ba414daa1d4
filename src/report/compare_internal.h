/*
 * compare_internal.h: the data behind `clens compare` (docs/compare.md),
 * shared by its files: compare_load.c reads each input (a `clens patch` run
 * folder, a results.json, or the seed fixture data/seed_results.json) into
 * cmp_model profiles; compare.c computes the analysis (increments, labels,
 * critical layer, pairwise differences) and comparison.json; compare_md.c,
 * svg.c and html.c render it. Nothing here is public.
 */
#ifndef CLENS_REPORT_COMPARE_INTERNAL_H
#define CLENS_REPORT_COMPARE_INTERNAL_H

#include <jansson.h>

#include "base/base.h"
#include "report/report.h"

/* Where a profile came from. */
typedef enum { CMP_RUN = 0, CMP_RESULTS = 1, CMP_SEED = 2 } cmp_kind;

/* One site type of a run (for pairs.csv and the per-head heat map). */
typedef struct cmp_sitetype {
    char *name;        /* "resid_pre", "attn_out", "z", ... */
    int n_layers;      /* entries of settings.layers[name] */
    int *layers;       /* (n_layers) */
    int is_z;          /* per-head sites: values are (n_layers, n_heads) */
    double *z_mean;    /* z only: mean recovery per (layer, head), NAN where undefined */
} cmp_sitetype;

/* One step of a profile: the increment into point i from point i - 1. */
typedef struct cmp_step {
    int has;             /* both means defined */
    double delta;        /* mean[i] - mean[i-1] */
    int has_ci;
    double lo, hi;       /* paired bootstrap 95% CI of the increment */
    int trivial;         /* ends at resid_pre n_layers (100% by construction): not a candidate */
    int spike;           /* the rule's spike (docs/compare.md "Profile label") */
    int spike_lo, spike_hi; /* the same test with the CI's lower / upper bound as the increment */
} cmp_step;

/* One model's profile: its residual-stream site sampled at n_pts layers. */
typedef struct cmp_model {
    cmp_kind kind;
    char *source;        /* the input argument (plus "#k" for the k-th fixture model) */
    char *label;         /* model label shown everywhere */
    char *training;      /* distilled / RL / SFT / RL-after-SFT / other / unspecified */
    char *mode;          /* which mode produced the data (fidelity / default / published) */
    char *metric;
    char *site_type;     /* the profile's site type as recorded: resid_pre or resid_post */
    int offset;          /* added to a layer to get resid_pre numbering (1 for resid_post) */
    int n_layers;        /* the model's number of blocks */
    int n_pts;
    int *layer;          /* (n_pts) as recorded */
    int *layer_pre;      /* (n_pts) resid_pre numbering */
    double *depth;       /* (n_pts) layer_pre / n_layers */
    double *mean;        /* (n_pts) mean recovery, NAN if undefined */
    double *sd;          /* (n_pts) population SD, NAN if unknown */
    int *n_samples;      /* (n_pts) */
    int has_ci;          /* per-pair data and resamples > 0 */
    double *ci_lo, *ci_hi;
    cmp_step *step;      /* (n_pts); step[0] unused */
    /* per-pair data (n_pairs = 0 for aggregates only) */
    int n_pairs;
    char **pair_id;      /* (n_pairs) */
    double *pair_D;      /* (n_pairs) m_clean - m_corr */
    double *rec;         /* (n_pairs, n_pts) recovery at the profile's points */
    unsigned char *def;  /* (n_pairs, n_pts) */
    json_t *records;     /* kept records used (array, run folders only) or results.json pairs */
    int n_types;
    cmp_sitetype *types; /* every site type of the run (runs only) */
    int z_index;         /* index of the z type in types, -1 if none */
    int n_heads;
    json_t *settings, *provenance, *behaviour; /* borrowed refs owned here (may be NULL) */
    json_t *notes;       /* fixture notes (string) or NULL */
    char *seed_label;    /* the seed's own label (fixture only) */
    double *published_delta; /* (n_pts) fixture only, NAN on the first row */
    int has_tokens;      /* some record carries final prompt tokens */
    /* analysis */
    double median_delta; int has_median;
    char label_point[16], label_lo[16], label_hi[16];
    int crit_idx;        /* first point with mean >= critical_pct, -1 if none */
    int crit_has_ci;
    double crit_lo, crit_hi; /* bootstrap 2.5 / 97.5 percentiles of the critical resid_pre layer (INFINITY: not reached) */
    int crit_not_reached;    /* resamples where no point reached the threshold */
    int peak_idx;
} cmp_model;

/* Pairwise difference of two profiles on the common relative-depth grid. */
typedef struct cmp_diff {
    int a, b;            /* model indices */
    int paired;          /* same pair ids: paired bootstrap */
    int n_common;
    int n_grid;
    double *grid, *diff, *lo, *hi; /* (n_grid); diff NAN outside either model's range */
    int has_ci;
} cmp_diff;

/* One resid_pre layer of a model's evidence (compare_evidence.c): cause
 * (recovery), probe (AUROC) and control (steering effect); NAN where absent. */
typedef struct cmp_ev_row {
    int layer_pre;
    int has_rec;
    double rec, rec_lo, rec_hi;          /* mean recovery % and its CI */
    int has_probe;
    char probe_hook[64];
    double auroc, auroc_lo, auroc_hi;    /* logistic probe, cross-validated */
    double null_p95, null_p;             /* permutation null: 95th percentile, p-value */
    double random_p95, dom_auroc;
    int has_steer;
    int steer_layer, steer_n;            /* as recorded; pairs used */
    char steer_hook[16], steer_mode[16];
    double alpha;                        /* the alpha used (largest |alpha|) */
    double eff, eff_lo, eff_hi;          /* direction: mean change of the corrupted metric */
    double ctl, ctl_lo, ctl_hi;          /* random directions (mean over draws) */
} cmp_ev_row;

/* AtP beside exact (docs/compare.md): the flag thresholds. */
#define CMP_ATP_SIGN_MIN 1.0   /* points: opposite signs count when both |x| >= this */
#define CMP_ATP_ABS 10.0       /* points: |atp - exact| > this ... */
#define CMP_ATP_REL 0.25       /* ... and > this fraction of |exact| */

typedef struct cmp_atp_site {
    int type;            /* index into the exact model's types */
    int layer, head;     /* head -1 unless z */
    int n;               /* pairs with both recoveries defined */
    double exact, atp;   /* mean recovery % */
    int flag;            /* 0 none, 1 sign, 2 magnitude */
} cmp_atp_site;

typedef struct cmp_atp_type {
    int type, first, n_sites, n_flagged;
    double pearson, spearman; /* over the type's sites (NAN: < 3 sites or no variance) */
} cmp_atp_type;

typedef struct cmp_evidence {
    int has;
    char *probe_src;
    char **steer_src;
    int n_steer;
    char *steer_metric;
    int n_rows;
    cmp_ev_row *rows;    /* ascending layer_pre */
    char *line;          /* the plain-language agreement line */
    char *atp_src;
    int atp_n_common;
    int n_atp_sites;
    cmp_atp_site *atp_sites;
    int n_atp_types;
    cmp_atp_type *atp_types;
} cmp_evidence;

typedef struct cmp_set {
    clens_compare_params p;
    int n_models;
    cmp_model *m;
    int n_diffs;
    cmp_diff *d;
    char *paragraph;     /* the plain-language summary (markdown-free text) */
    cmp_evidence *ev;    /* (n_models) or NULL: no probe/steer/AtP attachments */
} cmp_set;

/* compare_evidence.c: attachments (probes, steers, atps of the params) read
 * after the inputs; finish after the analysis (recovery column, agreement). */
int cmp_evidence_load(cmp_set *s, clens_error *err);
int cmp_evidence_finish(cmp_set *s, clens_error *err);
void cmp_evidence_free(cmp_set *s);
json_t *cmp_evidence_json(const cmp_set *s, int model);
const char *cmp_atp_flag_name(int flag);
/* The agreement and AtP sentences for the plain-language paragraph (malloc'd). */
char *cmp_evidence_paragraph(const cmp_set *s);
/* svg.c: evidence panels and the AtP scatter of one model (NULL if none). */
char *cmp_svg_evidence(const cmp_set *s, int model);
char *cmp_svg_atp(const cmp_set *s, int model);
/* compare_md.c */
void cmp_md_evidence(clens_sb *b, const cmp_set *s, int model);

/* compare_load.c: appends the profiles of one input (a run folder, a
 * results.json or the seed fixture) to s. */
int cmp_load_input(cmp_set *s, const char *input, clens_error *err);
void cmp_model_clear(cmp_model *m);

/* compare.c: the analysis of one loaded profile (increments, label, critical
 * layer with CI) outside clens_compare_write; used by clens dynamics. */
int cmp_analyze(const clens_compare_params *p, cmp_model *m, clens_error *err);

/* compare.c helpers used by the renderers. */
const char *cmp_kind_name(cmp_kind k);
/* "%.1f" or "–" for NAN, into buf. */
const char *cmp_f1(char *buf, size_t n, double x);

/* compare_md.c */
char *cmp_render_md(const cmp_set *s);
/* svg.c: each returns malloc'd SVG text (NULL on OOM). */
char *cmp_svg_profiles(const cmp_set *s, int by_depth);
char *cmp_svg_deltas(const cmp_set *s, int model);
char *cmp_svg_heat(const cmp_set *s, int model);
/* html.c */
char *cmp_render_html(const cmp_set *s, const char *comparison_json);
/* Escapes text for HTML into b. */
void cmp_html_esc(clens_sb *b, const char *s);

#endif
