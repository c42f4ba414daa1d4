/*
 * study_internal.h: the parsed study file (src/interp/study_file.c) shared
 * with the study runner (src/interp/study.c). Format: docs/study.md.
 */
#ifndef CLENS_STUDY_INTERNAL_H
#define CLENS_STUDY_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "clens.h"

typedef struct study_model {
    char *label;     /* as written; names the model in the comparison */
    char *model;     /* folder or org/name */
    char *training;  /* distilled | RL | SFT | RL-after-SFT | other */
    char *notes;     /* free text, may be "" */
    char *slug;      /* folder name under runs/ and pairs/ */
    /* a training series (docs/study.md "Checkpoints"): expanded, in step
     * order; n_ck = 0 for a plain model. model is then the last checkpoint
     * unless given (it generates on-policy pairs and runs the steps). */
    char **ck_paths;
    long *ck_steps;
    int n_ck;
} study_model;

/* One unit of work (docs/cluster.md): tasks are numbered pairs first (one
 * per model, on-policy only), then runs (model or checkpoint) x shard, then
 * the steps (probe + steer, AtP) per model. */
typedef enum { STUDY_TASK_PAIRS = 0, STUDY_TASK_RUN, STUDY_TASK_PROBE, STUDY_TASK_ATP } study_task_kind;
typedef struct study_task {
    study_task_kind kind;
    int model;
    int ck;      /* checkpoint index, -1 for a plain model */
    int shard;
} study_task;

typedef enum { STUDY_PAIRS_FILE = 0, STUDY_PAIRS_BUILD, STUDY_PAIRS_ON_POLICY } study_pairs_mode;

/* "all" layers, every second layer (0, 2, ...), or an explicit list. */
typedef enum { STUDY_LAYERS_ALL = 0, STUDY_LAYERS_EVERY2, STUDY_LAYERS_LIST } study_layers_kind;

struct clens_study {
    char *path;                /* the study file */
    char *out;                 /* study folder */
    char *fidelity;            /* "seed" | "clens-default" */
    study_model *models;
    int n_models;

    study_pairs_mode pairs_mode;
    char *pairs_file;          /* FILE mode */
    char *data, *format, *cut, *corrupt, *site; /* BUILD / ON_POLICY */
    long pairs_seed, limit;
    int max_new, batch, gen_chat;
    long pool;

    int prompt_chat;
    clens_hook_point types[CLENS_HOOK_COUNT];
    int n_types;
    study_layers_kind layers_kind;
    int *layers;
    int n_layers;
    clens_metric_kind metric;
    char **words;              /* NULL: the defaults of the run engine */
    int n_words;
    clens_patch_method method;
    clens_filter_kind filter;
    double min_diff;
    long n_target;
    long bootstrap;
    long bootstrap_seed;
    long compare_resamples;
    long compare_seed;
    int max_tokens;
    char *matmul;              /* default | portable | bf16 */

    /* dynamics of checkpoint series ("dynamics": {...}; clens_dynamics_params) */
    long dyn_resamples, dyn_seed, dyn_min_inside;
    double dyn_min_delta_bic, dyn_max_window, dyn_min_amplitude;
    /* "probe": capture + probe per model */
    int has_probe;
    char *probe_sites, *probe_positions;
    long probe_folds, probe_bootstrap, probe_permutations, probe_random_dirs, probe_seed, probe_limit;
    double probe_C;
    /* "steer": the probe's direction, per model */
    int has_steer;
    char *steer_mode, *steer_positions, *steer_hook, *steer_neutral;
    double *steer_alphas;
    int n_steer_alphas;
    int *steer_layers;         /* NULL: the probe's best layer (highest difference-of-means AUROC) */
    int n_steer_layers;
    long steer_random, steer_seed, steer_max_new, steer_k, steer_samples, steer_limit;
    /* "atp": a --method atp run per model */
    int has_atp;

    study_task *tasks;         /* the plan (not a setting: depends on shards) */
    int n_tasks;

    int threads;               /* not a setting: does not change results */
    int shards;                /* shards per model (1: runs/<label> directly; n: shards/<label>/<i>-of-<n>, merged) */
    json_t *settings;          /* canonical settings (every default filled in) */
    char settings_hash[65];
};

/* Parses the study file at path into s (zeroed by the caller), applying the
 * fidelity preset (fidelity: NULL = the file's "fidelity" key, else "seed" /
 * "clens-default") and filling s->settings / s->settings_hash. out_override
 * (may be NULL) replaces the file's "out". */
int study_file_parse(clens_study *s, const char *path, const char *fidelity, const char *out_override,
                     clens_error *err);
void study_file_clear(clens_study *s);

/* "a.b[2].c": the first place where settings a and b differ, or NULL if equal
 * (malloc'd). */
char *study_json_difference(const json_t *a, const json_t *b);

#endif
