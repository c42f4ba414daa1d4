/*
 * onpolicy.c: on-policy pairs (docs/pairs.md, "on-policy"; the seed study's source):
 * the model under test writes its own greedy solution to each problem, and
 * the error is injected into that text by the pair builder's own rules
 * (verified step, last digit, cut at the step end, by default).
 *
 * Generation is what costs (512 new tokens a problem on a 7B model), so it is
 * never lost: each finished batch is appended to a generations file (JSONL,
 * fsync'd), whose first line records the settings that determine the text
 * (model identity, tokenizer, prompt, max new tokens, stop ids, matmul mode,
 * batch size). A rerun with the same settings reads the file back and only
 * generates what is missing; other settings are refused. A line cut short by
 * a kill is dropped and rewritten. Pairs are then made from the file in
 * dataset order, so they depend only on the file, never on timing.
 *
 * Prompt. raw (the seed's): "Solve this math problem step by step:\n\n
 * {problem}\n\nSolution:" with the tokenizer's special tokens; chat: the
 * model's template with the generation prompt. The generated ids up to (not
 * including) the first stop id are decoded without special tokens; leading
 * white space is removed (the raw prompt of a pair adds one space after
 * "Solution:", so " To find" becomes "To find" and renders to the same
 * tokens). Stop ids: generation_config.json's eos_token_id (int or list),
 * else config.json's, as transformers' generate() does.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/appendlog.h"
#include "base/base.h"
#include "clens.h"
#include "data/pairs_internal.h"
#include "interp/prompts.h"

clens_onpolicy_params clens_onpolicy_default_params(void)
{
    clens_onpolicy_params p;
    memset(&p, 0, sizeof p);
    p.max_new_tokens = 512;
    p.batch = 16;
    return p;
}

/* ------------------------------------------------------------ the file */

typedef struct gen_rec {
    char *id;
    char *text;           /* decoded, leading white space removed */
    int new_tokens;
    int stopped;          /* 1: a stop id ended it; 0: max_new_tokens */
    char sha[65];         /* sha256 of text */
} gen_rec;

typedef struct gen_file {
    gen_rec *recs;
    size_t n, cap;
} gen_file;

static void gen_file_free(gen_file *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->recs[i].id);
        free(g->recs[i].text);
    }
    free(g->recs);
    memset(g, 0, sizeof *g);
}

static gen_rec *gen_find(const gen_file *g, const char *id)
{
    for (size_t i = g->n; i-- > 0;)
        if (strcmp(g->recs[i].id, id) == 0) return &g->recs[i];
    return NULL;
}

static int gen_add(gen_file *g, const char *id, const char *text, int new_tokens, int stopped)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 64;
        gen_rec *d = realloc(g->recs, cap * sizeof *d);
        if (!d) return -1;
        g->recs = d;
        g->cap = cap;
    }
    gen_rec *r = &g->recs[g->n];
    r->id = strdup(id);
    r->text = strdup(text);
    if (!r->id || !r->text) {
        free(r->id);
        free(r->text);
        return -1;
    }
    r->new_tokens = new_tokens;
    r->stopped = stopped;
    clens_sha256_hex(text, strlen(text), r->sha);
    g->n++;
    return 0;
}

/* Loads an existing generations file: its header must carry settings_sha;
 * a last line without its newline (a kill mid-write) is cut off. */
static int gen_load(const char *path, const char *settings_sha, gen_file *g, int *exists,
                    clens_error *err)
{
    char *data;
    size_t keep, torn;
    *exists = 0;
    int rc = clens_appendlog_read(path, &data, &keep, &torn, err);
    if (rc || !data) return rc;
    if (torn) fprintf(stderr, "pairs: %s: dropped an unfinished last line (%zu bytes)\n", path, torn);
    *exists = keep > 0;
    long lineno = 0;
    for (size_t pos = 0; pos < keep;) {
        json_t *o = clens_appendlog_next_json(data, keep, &pos);
        lineno++;
        if (!json_is_object(o)) {
            json_decref(o);
            free(data);
            return clens_err(err, CLENS_E_FORMAT, "%s:%ld: not a JSON object", path, lineno);
        }
        if (lineno == 1) {
            const char *h = json_string_value(json_object_get(o, "settings_sha256"));
            if (!h || strcmp(h, settings_sha) != 0) {
                rc = clens_err(err, CLENS_E_ARG,
                               "%s: written with other settings (settings_sha256 %s, now %s); "
                               "use another --generations file or the same model and options",
                               path, h ? h : "missing", settings_sha);
                json_decref(o);
                free(data);
                return rc;
            }
            json_decref(o);
            continue;
        }
        const char *id = json_string_value(json_object_get(o, "id"));
        const char *text = json_string_value(json_object_get(o, "text"));
        json_t *nt = json_object_get(o, "new_tokens");
        json_t *st = json_object_get(o, "stopped");
        if (!id || !text || !json_is_integer(nt) || !json_is_boolean(st)) {
            json_decref(o);
            free(data);
            return clens_err(err, CLENS_E_FORMAT,
                             "%s:%ld: expected \"id\", \"text\", \"new_tokens\", \"stopped\"", path,
                             lineno);
        }
        rc = gen_add(g, id, text, (int)json_integer_value(nt), json_is_true(st));
        json_decref(o);
        if (rc) {
            free(data);
            return clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
    }
    free(data);
    return 0;
}

/* ------------------------------------------------------------ settings */


/* The settings that decide the generated text, as a JSON object. */
static json_t *gen_settings(clens_model *m, const clens_tokenizer *tok,
                            const clens_chat_template *tmpl, const clens_onpolicy_params *op,
                            const int32_t *stop, int nstop, const char *data_sha)
{
    const clens_model_info *in = clens_model_get_info(m);
    json_t *s = json_object();
    json_object_set_new(s, "model", json_string(op->model_label ? op->model_label : in->path));
    char config_sha[65], weights_sha[65];
    clens_model_fingerprint(m, config_sha, weights_sha);
    json_object_set_new(s, "config_sha256", json_string(config_sha));
    json_object_set_new(s, "weights_sha256", json_string(weights_sha));
    json_object_set_new(s, "tokenizer_sha256", json_string(clens_tokenizer_sha256(tok)));
    json_object_set_new(s, "prompt", json_string(op->prompt_chat ? "chat" : "raw"));
    json_object_set_new(s, "template_sha256",
                        op->prompt_chat && tmpl ? json_string(clens_chat_template_sha256(tmpl))
                                                : json_null());
    json_object_set_new(s, "decoding", json_string("greedy"));
    json_object_set_new(s, "max_new_tokens", json_integer(op->max_new_tokens));
    json_t *st = json_array();
    for (int i = 0; i < nstop; i++) json_array_append_new(st, json_integer(stop[i]));
    json_object_set_new(s, "stop_ids", st);
    /* Fast kernels give batch-size dependent rounding: greedy ties may differ. */
    json_object_set_new(s, "batch", json_integer(op->batch));
    json_object_set_new(s, "kernel", json_string(clens_model_kernel_name(m)));
    json_object_set_new(s, "dataset_sha256", json_string(data_sha));
    return s;
}

/* ------------------------------------------------------------ generation */

static void lstrip_ws(char *t)
{
    size_t a = 0;
    while (t[a] == ' ' || t[a] == '\t' || t[a] == '\n' || t[a] == '\r') a++;
    if (a) memmove(t, t + a, strlen(t + a) + 1);
}

/* Generates the rows idx[0..k) and appends them to the file and to g. */
static int gen_batch(clens_model *m, const clens_tokenizer *tok, const clens_chat_template *tmpl,
                     const clens_onpolicy_params *op, const char *data_path, const pairs_row *rows, const size_t *idx,
                     int k, const int32_t *stop, int nstop, gen_file *g, clens_error *err)
{
    int32_t **prompts = calloc((size_t)k, sizeof *prompts), **out = calloc((size_t)k, sizeof *out);
    int *plen = calloc((size_t)k, sizeof *plen), *out_n = calloc((size_t)k, sizeof *out_n);
    int rc = 0;
    if (!prompts || !out || !plen || !out_n) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    for (int i = 0; i < k; i++) {
        const pairs_row *r = &rows[idx[i]];
        size_t n = 0;
        rc = op->prompt_chat
                 ? clens_prompt_ids(tok, tmpl, CLENS_PROMPT_CHAT, r->problem, "", &prompts[i], &n, err)
                 : clens_prompt_generation_ids(tok, r->problem, &prompts[i], &n, err);
        if (rc) goto end;
        plen[i] = (int)n;
        int max_pos = clens_model_get_info(m)->max_pos;
        if (plen[i] >= max_pos) {
            rc = clens_err(err, CLENS_E_ARG,
                           "%s:%lld (%s): the generation prompt has %d tokens, the model's context "
                           "(max_position_embeddings) is %d",
                           data_path, (long long)r->line, r->id, plen[i],
                           max_pos);
            goto end;
        }
    }
    clens_sample_params sp = clens_sample_default_params();
    sp.max_new_tokens = op->max_new_tokens;
    sp.stop_ids = stop;
    sp.n_stop = nstop;
    if ((rc = clens_generate(m, (const int32_t *const *)prompts, plen, k, &sp, out, out_n, err)))
        goto end;
    for (int i = 0; i < k && !rc; i++) {
        int n = out_n[i], stopped = 0;
        for (int s = 0; n > 0 && s < nstop; s++) stopped |= out[i][n - 1] == stop[s];
        char *text = NULL;
        size_t tl = 0;
        rc = clens_detokenize(tok, out[i], n - stopped, 1, &text, &tl, err);
        if (rc) break;
        lstrip_ws(text);
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(rows[idx[i]].id));
        json_object_set_new(o, "line", json_integer(rows[idx[i]].line));
        json_object_set_new(o, "prompt_tokens", json_integer(plen[i]));
        json_object_set_new(o, "new_tokens", json_integer(n));
        json_object_set_new(o, "stopped", json_boolean(stopped));
        json_t *ids = json_array();
        for (int t = 0; t < n; t++) json_array_append_new(ids, json_integer(out[i][t]));
        json_object_set_new(o, "ids", ids);
        json_object_set_new(o, "text", json_string(text));
        char *line = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!line) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: generation of %s cannot be written as JSON",
                           op->generations_path, rows[idx[i]].id);
        } else {
            rc = clens_append_line_durable(op->generations_path, line, err);
            if (!rc && gen_add(g, rows[idx[i]].id, text, n, stopped))
                rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
        free(line);
        free(text);
    }
end:
    for (int i = 0; i < k; i++) {
        if (prompts) free(prompts[i]);
        if (out) free(out[i]);
    }
    free(prompts);
    free(out);
    free(plen);
    free(out_n);
    return rc;
}

/* The pair of row i from its generation (generator fields filled in). */
static int pair_of(const clens_pairs_params *pp, const pairs_row *row, const gen_rec *gr,
                   const char *settings_sha, const char *model_label, clens_pair *out,
                   clens_pairs_stats *st, clens_error *err)
{
    int got = pairs_from_row(pp, row, gr->text, out, st, err);
    if (got != 1) return got;
    json_t *g = json_object();
    json_object_set_new(g, "model", json_string(model_label));
    json_object_set_new(g, "settings_sha256", json_string(settings_sha));
    json_object_set_new(g, "new_tokens", json_integer(gr->new_tokens));
    json_object_set_new(g, "stopped", json_boolean(gr->stopped));
    json_object_set_new(g, "text_sha256", json_string(gr->sha));
    out->generator = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(g);
    if (!out->generator) {
        clens_pair_clear(out);
        return -clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    return 1;
}

int clens_pairs_build_on_policy(clens_model *m, const clens_tokenizer *tok,
                                const clens_chat_template *tmpl, const clens_pairs_params *pp,
                                const clens_onpolicy_params *op, clens_pair **pairs_out,
                                size_t *n_out, clens_pairs_stats *stats_out, clens_error *err)
{
    char *data = NULL, sha[65], settings_sha[65];
    size_t len = 0, nrows = 0, n = 0;
    pairs_row *rows = NULL;
    clens_pair *pairs = NULL;
    gen_file g = {0};
    int32_t *stop = NULL;
    int nstop = 0, rc, exists;
    clens_pairs_stats st;
    memset(&st, 0, sizeof st);
    *pairs_out = NULL;
    *n_out = 0;
    if (!op->generations_path)
        return clens_err(err, CLENS_E_ARG, "pairs: on-policy mode needs a generations file");
    if (op->max_new_tokens < 1 || op->batch < 1)
        return clens_err(err, CLENS_E_ARG, "pairs: max_new_tokens and batch must be >= 1");
    if (op->prompt_chat && !tmpl)
        return clens_err(err, CLENS_E_ARG,
                         "pairs: --gen-prompt chat needs the model's chat template (none found)");
    if (!pp->data_path) return clens_err(err, CLENS_E_ARG, "pairs: no data file given");
    if ((rc = clens_read_file(pp->data_path, &data, &len, err))) return rc;
    rc = pairs_read_rows(pp, data, len, &rows, &nrows, sha, err);
    free(data);
    if (rc) return rc;
    clens_model_stop_ids(m, &stop, &nstop);
    const char *label = op->model_label ? op->model_label : clens_model_get_info(m)->path;
    json_t *settings = gen_settings(m, tok, tmpl, op, stop, nstop, sha);
    char *canon = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS);
    if (!canon) {
        json_decref(settings);
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    clens_sha256_hex(canon, strlen(canon), settings_sha);
    free(canon);
    rc = gen_load(op->generations_path, settings_sha, &g, &exists, err);
    if (!rc && !exists) {
        json_t *h = json_object();
        json_object_set_new(h, "clens_generations", json_integer(1));
        json_object_set_new(h, "clens_version", json_string(CLENS_VERSION));
        json_object_set_new(h, "settings_sha256", json_string(settings_sha));
        json_object_set(h, "settings", settings);
        char *line = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(h);
        rc = line ? clens_append_line_durable(op->generations_path, line, err)
                  : clens_err(err, CLENS_E_NOMEM, "out of memory");
        free(line);
    }
    json_decref(settings);
    if (rc) goto end;
    size_t pool = op->pool > 0 && (size_t)op->pool < nrows ? (size_t)op->pool : nrows;
    if (pool && !(pairs = calloc(pool, sizeof *pairs))) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    size_t *idx = malloc(sizeof(size_t) * (size_t)op->batch);
    if (!idx) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    size_t next = 0; /* rows before next have their pairs made */
    long generated = 0;
    while (next < pool && !(pp->limit > 0 && (long)n >= pp->limit)) {
        /* the next chunk: rows up to op->batch missing generations */
        size_t stop_at = next;
        int k = 0;
        while (stop_at < pool && k < op->batch) {
            if (!gen_find(&g, rows[stop_at].id)) idx[k++] = stop_at;
            stop_at++;
        }
        if (k) {
            rc = gen_batch(m, tok, tmpl, op, pp->data_path, rows, idx, k, stop, nstop, &g, err);
            if (rc) break;
            generated += k;
        }
        for (; next < stop_at && !(pp->limit > 0 && (long)n >= pp->limit); next++) {
            st.problems++;
            int got = pair_of(pp, &rows[next], gen_find(&g, rows[next].id), settings_sha, label,
                              &pairs[n], &st, err);
            if (got < 0) { rc = -got; break; }
            if (got == 0) continue;
            if (pairs_finish(&pairs[n], pp, sha, (int64_t)n)) {
                n++;
                rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
                break;
            }
            n++;
        }
        if (rc) break;
        if (op->progress) op->progress(op->progress_user, (long)next, (long)pool, generated, (long)n);
    }
    free(idx);
    if (rc) goto end;
    st.pairs = (long)n;
    memcpy(st.source_sha256, sha, sizeof sha);
    if (stats_out) *stats_out = st;
    *pairs_out = pairs;
    *n_out = n;
    pairs = NULL;
    n = 0;
end:
    clens_pairs_free(pairs, n);
    pairs_rows_free(rows, nrows);
    gen_file_free(&g);
    free(stop);
    return rc;
}
