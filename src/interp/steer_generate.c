/*
 * steer_generate.c: generation under steering and a token ban
 * (docs/steer.md), greedy or sampled as clens_generate samples (the same
 * sampler and per-prompt streams: base/sample.h). Each prompt is prefilled into its own sequence with the
 * steering hook (which knows every sequence's prompt length, so `prompt`,
 * `generated` and `last` positions are exact), then one decode row per
 * unfinished prompt runs per step. The ban is the "NoWait" baseline: the
 * logits of the banned ids are -inf before the argmax. Greedy picks the
 * lowest id on ties, as clens_generate does, so with no spec and no ban the
 * two agree token for token.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/sample.h"

int clens_steer_generate(clens_model *m, const int32_t *const *prompts, const int *plen, int np,
                         const clens_steer *spec, const int32_t *ban, int n_ban, int max_new, const int32_t *stop_ids,
                         int n_stop, int32_t **out, int *out_n, clens_error *err)
{
    clens_sample_params sp = clens_sample_default_params(); /* greedy */
    sp.max_new_tokens = max_new;
    sp.stop_ids = stop_ids;
    sp.n_stop = n_stop;
    return clens_steer_generate_sampled(m, prompts, plen, np, spec, ban, n_ban, &sp, out, out_n, err);
}

int clens_steer_generate_sampled(clens_model *m, const int32_t *const *prompts, const int *plen, int np,
                                 const clens_steer *spec, const int32_t *ban, int n_ban, const clens_sample_params *sp,
                                 int32_t **out, int *out_n, clens_error *err)
{
    int max_new = sp->max_new_tokens, n_stop = sp->n_stop;
    const int32_t *stop_ids = sp->stop_ids;
    const clens_model_info *in = clens_model_get_info(m);
    int V = in->vocab, maxlen = 1, rc = 0;
    for (int i = 0; i < np; i++) {
        out[i] = NULL;
        out_n[i] = 0;
        if (plen[i] < 1) return clens_err(err, CLENS_E_ARG, "steer: prompt %d is empty", i);
        if (plen[i] > maxlen) maxlen = plen[i];
    }
    for (int k = 0; k < n_ban; k++)
        if (ban[k] < 0 || ban[k] >= V) return clens_err(err, CLENS_E_ARG, "steer: banned id %d outside the vocabulary", ban[k]);
    if (max_new < 1) max_new = 1;
    int n_ctx = maxlen + max_new;
    if (n_ctx > in->max_pos) n_ctx = in->max_pos;
    if (maxlen > n_ctx) return clens_err(err, CLENS_E_ARG, "steer: prompt of %d tokens exceeds max_position_embeddings", maxlen);
    clens_ctx *ctx = NULL;
    float *logits = malloc(sizeof(float) * (size_t)V * np), *step = malloc(sizeof(float) * (size_t)V * np);
    int *done = calloc(np, sizeof(int)), *row_prompt = malloc(sizeof(int) * np), *pl = malloc(sizeof(int) * np);
    clens_row *rows = malloc(sizeof *rows * np);
    clens_rng *rng = calloc(np, sizeof *rng);
    void *scratch = malloc(clens_sample_scratch_bytes(V));
    if (!logits || !step || !done || !row_prompt || !pl || !rows || !rng || !scratch) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    for (int i = 0; i < np; i++) clens_rng_stream(&rng[i], sp->seed, i);
    if ((rc = clens_ctx_new(&ctx, m, np, n_ctx, np > 64 ? np : 64, err))) goto end;
    memcpy(pl, plen, sizeof(int) * np);
    clens_steer_hook h = {spec, NULL, pl};
    clens_forward_args a = {0};
    if (spec) { a.hook = clens_steer_hook_fn; a.hook_user = &h; }
    for (int i = 0; i < np; i++) {
        if (!(out[i] = malloc(sizeof(int32_t) * max_new))) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
        if ((rc = clens_prefill(ctx, i, prompts[i], plen[i], NULL, logits + (size_t)i * V, &a, err))) goto end;
    }
    for (int s = 0; s < max_new; s++) {
        int nr = 0;
        for (int i = 0; i < np; i++) {
            if (done[i]) continue;
            float *lg = logits + (size_t)i * V;
            for (int k = 0; k < n_ban; k++) lg[ban[k]] = -INFINITY;
            int t = clens_sample_next(lg, V, sp->temperature, sp->top_k, sp->top_p, &rng[i], scratch);
            out[i][out_n[i]++] = t;
            for (int k = 0; k < n_stop; k++) done[i] |= t == stop_ids[k];
            if (plen[i] + out_n[i] >= n_ctx) done[i] = 1;
            if (done[i]) continue;
            rows[nr] = (clens_row){i, plen[i] + out_n[i] - 1, t, 0, 1, 1};
            row_prompt[nr++] = i;
        }
        if (!nr) break;
        a.out_logits = step;
        if ((rc = clens_forward(ctx, rows, nr, &a, err))) goto end;
        a.out_logits = NULL;
        for (int r = 0; r < nr; r++) memcpy(logits + (size_t)row_prompt[r] * V, step + (size_t)r * V, sizeof(float) * V);
    }
end:
    if (rc)
        for (int i = 0; i < np; i++) { free(out[i]); out[i] = NULL; out_n[i] = 0; }
    clens_ctx_free(ctx);
    free(logits); free(step); free(done); free(row_prompt); free(pl); free(rows); free(rng); free(scratch);
    return rc;
}
