/*
 * behaviour.c: does a model organism say "Wait" after an arithmetic error and
 * not after a correct step? (rulings R4; definition in docs/organisms.md.)
 *
 * For each held-out trace (src/data/traces.c, split "heldout") the probe step
 * is an intermediate step with a precomputed corrupted value (last digit +-1,
 * digit count kept). Two prompts are rendered with the seed's raw wrapper
 * (interp/prompts.c): the trace's text through the end of the probe step's
 * line, once with the result corrupted and once correct. P is the softmax
 * mass, at the next position, of the correction ids: every single-token form
 * of Wait / But / Actually / Hmm with and without a leading space, as written
 * and lower-cased (the token set of `clens patch`'s logprob_mass metric). The
 * result is the mean of P over traces for each of the two prompts. Prompts
 * run as batches of independent sequences in one forward each (a row's
 * result does not depend on the batch: rulings R3).
 */
#include "clens.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/prompts.h"

int clens_correction_ids(const clens_tokenizer *tok, int32_t **ids, int *n, clens_error *err)
{
    int32_t *v = malloc(sizeof(int32_t) * 16);
    int k = 0;
    if (!v) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int w = 0; w < 4; w++)
        for (int f = 0; f < 4; f++) {
            char form[64];
            snprintf(form, sizeof form, "%s%s", (f & 1) ? " " : "", clens_correction_words[w]);
            if (f & 2)
                for (char *c = form; *c; c++) if (*c >= 'A' && *c <= 'Z') *c += 32;
            int32_t *t = NULL;
            size_t nt = 0;
            if (clens_prompt_tokenize(tok, form, 0, &t, &nt, err)) { free(v); return -1; }
            int dup = 0;
            for (int i = 0; i < k; i++) dup |= nt == 1 && v[i] == t[0];
            if (nt == 1 && !dup) v[k++] = t[0];
            free(t);
        }
    if (k == 0) { free(v); return clens_err(err, CLENS_E_ARG, "no correction word is a single token in this vocabulary"); }
    *ids = v;
    *n = k;
    return 0;
}

/* Softmax mass of ids in logits[0, V), in double. */
static double softmax_mass(const float *logits, int V, const int32_t *ids, int n)
{
    double mx = logits[0], z = 0, s = 0;
    for (int i = 1; i < V; i++) if (logits[i] > mx) mx = logits[i];
    for (int i = 0; i < V; i++) z += exp((double)logits[i] - mx);
    for (int i = 0; i < n; i++) s += exp((double)logits[ids[i]] - mx);
    return s / z;
}

typedef struct {
    char *id;
    int32_t *ids[2];   /* [0] corrupted step, [1] correct step */
    size_t n[2];
} probe_prompts;

/* Reads one held-out line into its two prompts' ids. */
static int render_line(const clens_tokenizer *tok, const char *path, long line, json_t *o, probe_prompts *pp,
                       clens_error *err)
{
    json_t *meta = json_object_get(o, "organism");
    json_t *pb = json_object_get(meta, "probe");
    const char *q = json_string_value(json_object_get(o, "question"));
    const char *text = json_string_value(json_object_get(meta, "text"));
    const char *cv = json_string_value(json_object_get(pb, "corrupted_value"));
    json_t *js = json_object_get(pb, "start"), *je = json_object_get(pb, "end"), *jc = json_object_get(pb, "cut");
    if (!q || !text || !cv || !json_is_integer(js) || !json_is_integer(je) || !json_is_integer(jc))
        return clens_err(err, CLENS_E_FORMAT,
                         "%s:%ld: not a held-out organism trace (needs question, organism.text and organism.probe "
                         "{start, end, cut, corrupted_value}; write it with `clens organism traces --split heldout`)",
                         path, line);
    size_t len = strlen(text), s = (size_t)json_integer_value(js), e = (size_t)json_integer_value(je),
           c = (size_t)json_integer_value(jc);
    if (!(s < e && e <= c && c <= len))
        return clens_err(err, CLENS_E_FORMAT, "%s:%ld: probe offsets %zu..%zu, cut %zu outside the text (%zu bytes)",
                         path, line, s, e, c, len);
    size_t cl = strlen(cv);
    char *pre[2];
    pre[0] = malloc(c + cl + 1);
    pre[1] = malloc(c + 1);
    if (!pre[0] || !pre[1]) { free(pre[0]); free(pre[1]); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    memcpy(pre[0], text, s);
    memcpy(pre[0] + s, cv, cl);
    memcpy(pre[0] + s + cl, text + e, c - e);
    pre[0][s + cl + c - e] = 0;
    memcpy(pre[1], text, c);
    pre[1][c] = 0;
    int rc = 0;
    for (int k = 0; k < 2 && !rc; k++)
        rc = clens_prompt_ids(tok, NULL, CLENS_PROMPT_RAW, q, pre[k], &pp->ids[k], &pp->n[k], err);
    free(pre[0]);
    free(pre[1]);
    const char *id = json_string_value(json_object_get(o, "id"));
    if (!rc && !(pp->id = strdup(id ? id : ""))) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    return rc;
}

static json_t *ids_array(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

int clens_behaviour_measure(clens_model *m, const clens_tokenizer *tok, const char *heldout_jsonl, int n,
                            clens_behaviour *out, char **records, clens_error *err)
{
    memset(out, 0, sizeof *out);
    if (records) *records = NULL;
    if (n < 1) return clens_err(err, CLENS_E_ARG, "behaviour: n must be >= 1");
    char *data = NULL;
    size_t len = 0;
    if (clens_read_file(heldout_jsonl, &data, &len, err)) return -1;
    probe_prompts *pp = calloc((size_t)n, sizeof *pp);
    int32_t *cids = NULL;
    int ncid = 0, np = 0, rc = -1;
    float *logits = NULL;
    clens_ctx *ctx = NULL;
    char *rec = NULL;
    size_t rec_len = 0;
    if (!pp) { clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    if (clens_correction_ids(tok, &cids, &ncid, err)) goto done;
    long line = 0;
    size_t max_len = 0;
    for (char *p = data, *nl; p < data + len && np < n; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(data + len - p));
        if (!nl) nl = data + len;
        line++;
        if (nl == p) continue;
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(nl - p), 0, &je);
        if (!o) { clens_err(err, CLENS_E_FORMAT, "%s:%ld: %s", heldout_jsonl, line, je.text); goto done; }
        int r = render_line(tok, heldout_jsonl, line, o, &pp[np], err);
        json_decref(o);
        if (r) goto done;
        for (int k = 0; k < 2; k++) if (pp[np].n[k] > max_len) max_len = pp[np].n[k];
        np++;
    }
    if (np == 0) { clens_err(err, CLENS_E_FORMAT, "%s: no traces", heldout_jsonl); goto done; }
    const clens_model_info *in = clens_model_get_info(m);
    int V = in->vocab;
    for (int i = 0; i < ncid; i++)
        if (cids[i] >= V) {
            clens_err(err, CLENS_E_ARG, "behaviour: correction id %d is outside the model's vocabulary (%d)", cids[i], V);
            goto done;
        }
    /* Prompts run BATCH at a time, one KV sequence each, as one forward. */
    enum { BATCH = 16 };
    int nprompt = 2 * np;
    clens_row *rows = malloc(sizeof(clens_row) * (size_t)BATCH * max_len);
    double *pv = malloc(sizeof(double) * (size_t)nprompt);
    if (!rows || !pv || !(logits = malloc(sizeof(float) * (size_t)V * BATCH))) {
        free(rows);
        free(pv);
        clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto done;
    }
    if (clens_ctx_new(&ctx, m, BATCH, (int)max_len, BATCH * (int)max_len, err)) { free(rows); free(pv); goto done; }
    for (int b0 = 0; b0 < nprompt; b0 += BATCH) {
        int nb = nprompt - b0 < BATCH ? nprompt - b0 : BATCH, nr = 0;
        for (int j = 0; j < nb; j++) {
            const probe_prompts *q = &pp[(b0 + j) / 2];
            int k = (b0 + j) % 2;
            clens_ctx_seq_clear(ctx, j);
            for (size_t t = 0; t < q->n[k]; t++)
                rows[nr++] = (clens_row){.seq = j, .pos = (int)t, .token = q->ids[k][t], .start_layer = 0, .commit = 1,
                                         .want_logits = t + 1 == q->n[k]};
        }
        clens_forward_args fa = {0};
        fa.out_logits = logits;
        if (clens_forward(ctx, rows, nr, &fa, err)) { free(rows); free(pv); goto done; }
        for (int j = 0; j < nb; j++) pv[b0 + j] = softmax_mass(logits + (size_t)j * V, V, cids, ncid);
    }
    free(rows);
    double sum[2] = {0, 0};
    for (int t = 0; t < np; t++) {
        double p[2] = {pv[2 * t], pv[2 * t + 1]};
        sum[0] += p[0];
        sum[1] += p[1];
        if (records) {
            json_t *o = json_object();
            json_object_set_new(o, "index", json_integer(t));
            json_object_set_new(o, "id", json_string(pp[t].id));
            json_object_set_new(o, "p_error", json_real(p[0]));
            json_object_set_new(o, "p_correct", json_real(p[1]));
            json_object_set_new(o, "ids_error", ids_array(pp[t].ids[0], pp[t].n[0]));
            json_object_set_new(o, "ids_correct", ids_array(pp[t].ids[1], pp[t].n[1]));
            char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
            json_decref(o);
            size_t sl = s ? strlen(s) : 0;
            char *nr = s ? realloc(rec, rec_len + sl + 2) : NULL;
            if (!nr) { free(s); free(pv); clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
            rec = nr;
            memcpy(rec + rec_len, s, sl);
            rec_len += sl;
            rec[rec_len++] = '\n';
            rec[rec_len] = 0;
            free(s);
        }
    }
    free(pv);
    out->p_correction_after_error = sum[0] / np;
    out->p_correction_after_correct = sum[1] / np;
    out->n_traces = np;
    if (records) { *records = rec; rec = NULL; }
    rc = 0;
done:
    for (int i = 0; pp && i < n; i++) { free(pp[i].id); free(pp[i].ids[0]); free(pp[i].ids[1]); }
    free(pp);
    free(cids);
    free(logits);
    free(rec);
    clens_ctx_free(ctx);
    free(data);
    return rc;
}
