/*
 * steer_study.h: the experiment behind `clens steer` (docs/steer.md): a
 * direction, a dose-response over alphas on pairs (cached final-token
 * metric), in generation (correction-word rate) and on neutral text (KL,
 * top-1 agreement), with random-direction and token-ban controls; the output
 * folder (settings.json, steer.json, SVG curves) follows rulings R19.
 */
#ifndef CLENS_STEER_STUDY_H
#define CLENS_STEER_STUDY_H

#include <jansson.h>
#include <stdint.h>

#include "clens.h"

typedef struct steer_study {
    const char *model_arg;
    const char *direction;            /* .npy / probe.json / .gguf, or NULL with control vectors */
    const char *const *cvec_files;    /* --control-vector FILE[:SCALE], summed */
    const float *cvec_scales;
    int n_cvec, cv_start, cv_end;     /* --control-vector-layer-range (<= 0: defaults) */
    const int *layers;                /* layers to steer; NULL = every layer the direction gives */
    int n_layers_sel;
    const double *alphas;
    int n_alpha;
    clens_steer_mode mode;
    clens_hook_point point;
    clens_steer_positions positions;
    const char *pairs, *prompts, *neutral;
    int prompt_chat;                  /* pairs rendered with the chat template (else raw) */
    int n_random;
    uint64_t seed;
    int max_new, k_window, n_samples;
    long limit;                       /* pairs / prompts / neutral texts used (0 = all) */
    int rerun;                        /* pair metric by full reruns (reference method) */
    const char *out_dir;
    int quiet;
} steer_study;

/* Runs the study into s->out_dir; *result (caller decrefs) is steer.json's
 * content. A folder holding another study's settings.json is refused naming
 * the first differing key; one already complete is returned as it is. */
int steer_study_run(clens_model *m, const steer_study *s, json_t **result, clens_error *err);

/* The block whose `point` (resid_pre or resid_post) is the residual at
 * `depth` (resid_pre numbering): depth at resid_pre, depth - 1 at resid_post;
 * the caller checks the range. */
long steer_block_at_depth(clens_hook_point point, long depth);

/* clens_steer_direction_load for steering at resid_pre or resid_post: a
 * probe.json entry with a "depth" steers block depth (resid_pre) or depth-1
 * (resid_post). */
int steer_direction_load_at(const char *path, clens_hook_point point, int n_layers, int C, float *vecs,
                            unsigned char *has, clens_error *err);

#endif
