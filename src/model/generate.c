/*
 * generate.c: batched generation: every prompt is prefilled into its own
 * sequence, then one decode row per unfinished prompt runs per step, so the
 * weights are read once per step for the whole batch. Greedy (argmax, lowest
 * id on ties) or seeded sampling (temperature, top-k, top-p) with one
 * xoshiro256** stream per prompt, so results do not depend on the batch.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sample.h"
#include "base/base.h"
#include "base/infile.h"
#include "model/model.h"

clens_sample_params clens_sample_default_params(void)
{
    clens_sample_params p = {0};
    p.temperature = 0.0f;
    p.top_p = 1.0f;
    p.top_k = 0;
    p.seed = 0;
    p.max_new_tokens = 64;
    return p;
}

static int generate_batch(clens_model *m, const int32_t *const *prompts, const int *plen, int np, int first,
                          const clens_sample_params *sp, int32_t **out, int *out_n, clens_error *err);

int clens_generate(clens_model *m, const int32_t *const *prompts, const int *plen, int np,
                   const clens_sample_params *sp, int32_t **out, int *out_n, clens_error *err)
{
    /* Batches sized so that their KV caches fit the memory plan (R15). */
    int maxlen = 1;
    for (int i = 0; i < np; i++) maxlen = plen[i] > maxlen ? plen[i] : maxlen;
    int per = clens_model_plan_seqs(m, maxlen + (sp->max_new_tokens > 0 ? sp->max_new_tokens : 0));
    for (int i = 0; i < np; i += per) {
        int k = np - i < per ? np - i : per;
        int rc = generate_batch(m, prompts + i, plen + i, k, i, sp, out + i, out_n + i, err);
        if (rc) {
            for (int j = 0; j < i; j++) { free(out[j]); out[j] = NULL; out_n[j] = 0; }
            return rc;
        }
    }
    return CLENS_OK;
}

/* Prompts first .. first + np - 1 of the call: prompt j draws from stream j
 * whichever batch it falls in. */
static int generate_batch(clens_model *m, const int32_t *const *prompts, const int *plen, int np, int first,
                          const clens_sample_params *sp, int32_t **out, int *out_n, clens_error *err)
{
    int V = m->cfg.vocab, maxlen = 0, rc = 0;
    for (int i = 0; i < np; i++) {
        if (plen[i] < 1) return clens_err(err, CLENS_E_ARG, "generate: prompt %d is empty", i);
        if (plen[i] > maxlen) maxlen = plen[i];
        out[i] = NULL;
        out_n[i] = 0;
    }
    int n_ctx = maxlen + (sp->max_new_tokens > 0 ? sp->max_new_tokens : 0);
    if (n_ctx > m->cfg.max_pos) n_ctx = m->cfg.max_pos;
    if (maxlen > n_ctx)
        return clens_err(err, CLENS_E_ARG, "generate: prompt of %d tokens is longer than max_position_embeddings %d",
                         maxlen, m->cfg.max_pos);
    int rows_cap = np > 128 ? np : 128;
    clens_ctx *ctx = NULL;
    float *logits = malloc(sizeof(float) * V * (size_t)np);
    void *c = malloc(clens_sample_scratch_bytes(V));
    clens_rng *rng = calloc(np, sizeof *rng);
    int *done = calloc(np, sizeof(int)), *cur = calloc(np, sizeof(int));
    clens_row *rows = malloc(sizeof *rows * np);
    int *row_prompt = malloc(sizeof(int) * np);
    float *step_logits = malloc(sizeof(float) * V * (size_t)np);
    if (!step_logits || !logits || !c || !rng || !done || !cur || !rows || !row_prompt) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    if ((rc = clens_ctx_new(&ctx, m, np, n_ctx, rows_cap, err))) goto end;
    for (int i = 0; i < np; i++) {
        clens_rng_stream(&rng[i], sp->seed, first + i);
        out[i] = malloc(sizeof(int32_t) * (sp->max_new_tokens > 0 ? sp->max_new_tokens : 1));
        if (!out[i]) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
        if ((rc = clens_prefill(ctx, i, prompts[i], plen[i], NULL, logits + (size_t)i * V, NULL, err))) goto end;
    }
    for (int step = 0; step < sp->max_new_tokens; step++) {
        int nr = 0;
        for (int i = 0; i < np; i++) {
            if (done[i]) continue;
            int t = clens_sample_next(logits + (size_t)i * V, V, sp->temperature, sp->top_k, sp->top_p, &rng[i], c);
            out[i][out_n[i]++] = t;
            for (int k = 0; k < sp->n_stop; k++) done[i] |= t == sp->stop_ids[k];
            if (plen[i] + out_n[i] >= n_ctx) done[i] = 1;
            if (done[i]) continue;
            rows[nr] = (clens_row){i, plen[i] + out_n[i] - 1, t, 0, 1, 1};
            row_prompt[nr++] = i;
        }
        if (nr == 0) break;
        clens_forward_args a = {0};
        a.out_logits = step_logits;
        if ((rc = clens_forward(ctx, rows, nr, &a, err))) goto end;
        for (int r = 0; r < nr; r++)
            memcpy(logits + (size_t)row_prompt[r] * V, step_logits + (size_t)r * V, sizeof(float) * V);
    }
end:
    if (rc)
        for (int i = 0; i < np; i++) { free(out[i]); out[i] = NULL; out_n[i] = 0; }
    clens_ctx_free(ctx);
    free(logits); free(c); free(rng); free(done); free(cur); free(rows); free(row_prompt); free(step_logits);
    return rc;
}

/* eos_token_id of a JSON file in the model folder: appended to ids. */
static int read_eos(const char *dir, const char *name, int32_t **ids, int *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    json_t *o;
    json_error_t je;
    clens_json_load_regular(path, 0, &o, &je, NULL); /* optional file: absent or bad = no ids */
    json_t *e = json_object_get(o, "eos_token_id");
    size_t k = json_is_array(e) ? json_array_size(e) : json_is_integer(e) ? 1 : 0;
    int32_t *d = k ? realloc(*ids, sizeof(int32_t) * (*n + k)) : NULL;
    int oom = k && !d;
    if (d) {
        *ids = d;
        for (size_t i = 0; i < k; i++) {
            json_t *x = json_is_array(e) ? json_array_get(e, i) : e;
            if (json_is_integer(x)) d[(*n)++] = (int32_t)json_integer_value(x);
        }
    }
    json_decref(o);
    return oom ? -1 : 0;
}

int clens_model_stop_ids(const clens_model *m, int32_t **ids, int *n)
{
    const clens_model_info *in = clens_model_get_info(m);
    *ids = NULL;
    *n = 0;
    int oom = read_eos(in->path, "generation_config.json", ids, n);
    if (*n == 0 && !oom) oom = read_eos(in->path, "config.json", ids, n);
    if (*n == 0 && !oom && in->eos_id >= 0) {
        if ((*ids = malloc(sizeof(int32_t)))) (*ids)[(*n)++] = in->eos_id;
        else oom = 1;
    }
    return oom ? CLENS_E_NOMEM : CLENS_OK;
}
