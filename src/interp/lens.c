/*
 * lens.c: the logit lens (`clens lens`, docs/probe.md): the residual stream
 * before every block (and after the last one) read through the model's own
 * final norm and unembedding (clens_logits_from_resid_rows, the one function
 * of rulings R3), so the last layer of the lens is exactly the model's
 * logits. Per (layer, position): the top-k tokens with probabilities and the
 * log probability mass of the correction tokens (the same set as the run
 * engine's logprob_mass metric, src/interp/run_tokens.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "interp/probe_internal.h"
#include "interp/prompts.h"
#include "interp/run_internal.h"
#include "report/report.h"

clens_lens_params clens_lens_default_params(void)
{
    clens_lens_params p = {0};
    p.top_k = 5;
    p.positions = CLENS_CAPTURE_FINAL;
    p.prompt_chat = 1;
    p.limit = 4;
    return p;
}

/* One lens row: softmax in double; top-k by repeated selection (k small). */
static json_t *lens_row(const clens_tokenizer *tok, const float *logits, int V, const int32_t *corr, int n_corr, int k,
                        double *corr_lp, int *top1)
{
    double mx = -INFINITY;
    for (int v = 0; v < V; v++) if (logits[v] > mx) mx = logits[v];
    double z = 0;
    for (int v = 0; v < V; v++) z += exp((double)logits[v] - mx);
    double lz = mx + log(z), mass = 0;
    for (int i = 0; i < n_corr; i++)
        if (corr[i] >= 0 && corr[i] < V) mass += exp((double)logits[corr[i]] - lz);
    *corr_lp = log(mass);
    json_t *top = json_array();
    int chosen[64];
    if (k > 64) k = 64;
    for (int r = 0; r < k && r < V; r++) {
        int best = -1;
        for (int v = 0; v < V; v++) {
            int taken = 0;
            for (int q = 0; q < r; q++) taken |= chosen[q] == v;
            if (!taken && (best < 0 || logits[v] > logits[best])) best = v;
        }
        chosen[r] = best;
        const char *s = tok ? clens_tokenizer_id_to_token(tok, best) : NULL;
        json_t *o = json_object();
        json_object_set_new(o, "id", json_integer(best));
        json_object_set_new(o, "token", json_string(s ? s : ""));
        json_object_set_new(o, "prob", json_real(exp((double)logits[best] - lz)));
        json_object_set_new(o, "logit", json_real(logits[best]));
        json_array_append_new(top, o);
    }
    *top1 = chosen[0];
    return top;
}

/* The lens of one sequence as a JSON object (new reference) or NULL + err. */
static json_t *lens_json(clens_model *m, const clens_tokenizer *tok, const int32_t *ids, int T, const int *positions,
                         int n_pos, const int32_t *corr, int n_corr, const clens_lens_params *p, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    int L = in->n_layers, C = in->d_model, V = in->vocab;
    char list[128];
    snprintf(list, sizeof list, "blocks.*.hook_resid_pre,blocks.%d.hook_resid_post", L - 1);
    clens_cache cache;
    if (clens_hooks_resolve(m, list, &cache, err)) return NULL;
    float *normed = malloc(sizeof(float) * (size_t)n_pos * C), *logits = malloc(sizeof(float) * (size_t)n_pos * V);
    json_t *out = NULL;
    if (!normed || !logits) { clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    if (clens_run_with_cache(m, ids, T, positions, n_pos, &cache, NULL, err)) goto done;
    out = json_object();
    json_t *pos = json_array(), *toks = json_array(), *layers = json_array();
    for (int i = 0; i < n_pos; i++) {
        int t = positions ? positions[i] : i;
        const char *s = tok ? clens_tokenizer_id_to_token(tok, ids[t]) : NULL;
        json_array_append_new(pos, json_integer(t));
        json_array_append_new(toks, json_string(s ? s : ""));
    }
    json_object_set_new(out, "n_tokens", json_integer(T));
    json_object_set_new(out, "positions", pos);
    json_object_set_new(out, "position_tokens", toks);
    for (int l = 0; l <= L; l++) {
        clens_cache_entry *e = &cache.entries[l]; /* resid_pre 0..L-1, then resid_post L-1 */
        clens_logits_from_resid_rows(m, e->data, n_pos, normed, logits);
        json_t *lo = json_object(), *rows = json_array();
        json_object_set_new(lo, "layer", json_integer(l));
        json_object_set_new(lo, "hook", json_string(e->name));
        for (int i = 0; i < n_pos; i++) {
            double clp;
            int top1;
            json_t *r = json_object();
            json_object_set_new(r, "top", lens_row(tok, logits + (size_t)i * V, V, corr, n_corr, p->top_k, &clp, &top1));
            json_object_set_new(r, "correction_logprob", isfinite(clp) ? json_real(clp) : json_null());
            json_array_append_new(rows, r);
        }
        json_object_set_new(lo, "rows", rows);
        json_array_append_new(layers, lo);
    }
    json_object_set_new(out, "layers", layers);
done:
    clens_cache_free(&cache);
    free(normed);
    free(logits);
    return out;
}

int clens_lens_run(clens_model *m, const clens_tokenizer *tok, const int32_t *ids, int T, const int *positions,
                   int n_pos, const int32_t *corr_ids, int n_corr, const clens_lens_params *p, char **json,
                   clens_error *err)
{
    if (!positions) n_pos = T;
    json_t *o = lens_json(m, tok, ids, T, positions, n_pos, corr_ids, n_corr, p, err);
    if (!o) return err && err->code ? err->code : CLENS_E_NOMEM;
    *json = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    json_decref(o);
    return *json ? 0 : clens_err(err, CLENS_E_NOMEM, "out of memory");
}

int clens_lens_write(clens_model *m, const clens_lens_params *p, const char *text, const char *pairs_path,
                     const char *out_dir, char **table_md, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    int L = in->n_layers;
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_pair *pairs = NULL;
    size_t n_pairs = 0;
    run_token_set mass = {0}, mean = {0};
    json_t *seqs = json_array(), *settings = json_object(), *doc = NULL;
    clens_sb md = {0};
    int rc;
    if (!text == !pairs_path) return clens_err(err, CLENS_E_ARG, "lens: give a text or a pairs file");
    if (p->top_k < 1 || p->top_k > 64) return clens_err(err, CLENS_E_ARG, "lens: top-k must be 1..64");
    if (text && p->positions == CLENS_CAPTURE_ERROR) return clens_err(err, CLENS_E_ARG, "lens: --positions error needs --pairs");
    if ((rc = clens_tokenizer_open(&tok, in->path, err))) goto done;
    if ((rc = run_token_sets_build(tok, NULL, 0, &mass, &mean, err))) goto done;
    if (pairs_path && p->prompt_chat && (rc = clens_chat_template_open(&tmpl, in->path, err))) goto done;
    json_object_set_new(settings, "command", json_string("lens"));
    json_object_set_new(settings, "model", json_string(in->path));
    json_object_set_new(settings, "text", text ? json_string(text) : json_null());
    json_object_set_new(settings, "pairs", pairs_path ? json_string(pairs_path) : json_null());
    json_object_set_new(settings, "positions", json_string(clens_capture_positions_name(p->positions)));
    json_object_set_new(settings, "prompt", json_string(p->prompt_chat ? "chat" : "raw"));
    json_object_set_new(settings, "top_k", json_integer(p->top_k));
    json_object_set_new(settings, "limit", json_integer(p->limit));
    if ((rc = probe_settings_open(out_dir, settings, run_provenance_json(m, tok, tmpl), err))) goto done;
    /* the sequences: the text, or clean and corrupted of each usable pair */
    int n_seq = 0;
    if (text) {
        int32_t *ids;
        size_t T;
        if ((rc = clens_prompt_tokenize(tok, text, 1, &ids, &T, err))) goto done;
        int *pos = malloc(sizeof(int) * (T ? T : 1));
        int np = 0;
        if (pos) {
            if (p->positions == CLENS_CAPTURE_ALL) for (size_t t = 0; t < T; t++) pos[np++] = (int)t;
            else if (T) pos[np++] = (int)T - 1;
        }
        json_t *o = pos && T ? lens_json(m, tok, ids, (int)T, pos, np, mass.ids, mass.n, p, err) : NULL;
        free(ids);
        free(pos);
        if (!o) { rc = err && err->code ? err->code : clens_err(err, CLENS_E_ARG, "the text encodes to no tokens"); goto done; }
        json_object_set_new(o, "label", json_string("text"));
        json_array_append_new(seqs, o);
        n_seq = 1;
    } else {
        if ((rc = clens_pairs_read_jsonl(pairs_path, &pairs, &n_pairs, err))) goto done;
        long kept = 0;
        for (size_t i = 0; i < n_pairs && kept < p->limit; i++) {
            const char *reason = NULL;
            int32_t *ids[2] = {NULL, NULL};
            size_t T = 0;
            if ((rc = clens_pair_token_check(tok, tmpl, p->prompt_chat ? CLENS_PROMPT_CHAT : CLENS_PROMPT_RAW, &pairs[i],
                                             in->max_pos, &reason, &ids[0], &ids[1], &T, err)))
                goto done;
            int pos = (int)T - 1;
            if (!reason && p->positions == CLENS_CAPTURE_ERROR) {
                pos = -1;
                for (int t = (int)T - 1; t >= 0 && pos < 0; t--) if (ids[0][t] != ids[1][t]) pos = t;
                if (pos < 0) reason = "identical";
            }
            for (int side = 0; side < 2 && !reason && !rc; side++) {
                json_t *o = lens_json(m, tok, ids[side], (int)T, &pos, 1, mass.ids, mass.n, p, err);
                if (!o) { rc = err && err->code ? err->code : CLENS_E_NOMEM; break; }
                json_object_set_new(o, "label", json_string(side ? "corrupted" : "clean"));
                json_object_set_new(o, "pair", json_string(pairs[i].id));
                json_object_set_new(o, "candidate", json_integer(pairs[i].candidate_index));
                json_array_append_new(seqs, o);
                n_seq++;
            }
            free(ids[0]);
            free(ids[1]);
            if (rc) goto done;
            if (!reason) kept++;
        }
        if (kept == 0) { rc = clens_err(err, CLENS_E_ARG, "lens: no usable pair in %s", pairs_path); goto done; }
    }
    doc = json_object();
    json_object_set_new(doc, "schema", json_string("clens-lens/1"));
    json_object_set_new(doc, "model", json_string(in->path));
    json_object_set_new(doc, "n_layers", json_integer(L));
    json_object_set_new(doc, "correction_tokens", run_token_set_json(&mass));
    json_object_set(doc, "sequences", seqs);
    if ((rc = probe_write_json(out_dir, "lens.json", doc, err))) goto done;
    /* table and heat map: one column per (sequence, position), at most 16 */
    int n_col = 0;
    char **labels = calloc(16, sizeof(char *));
    double *vals = malloc(sizeof(double) * 16 * (size_t)(L + 1));
    char **cells = calloc(16 * (size_t)(L + 1), sizeof(char *));
    char **rowl = calloc((size_t)L + 1, sizeof(char *));
    if (!labels || !vals || !cells || !rowl) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto figs_done; }
    for (size_t s = 0; s < json_array_size(seqs) && n_col < 16; s++) {
        json_t *o = json_array_get(seqs, s), *pos = json_object_get(o, "positions");
        for (size_t k = 0; k < json_array_size(pos) && n_col < 16; k++, n_col++) {
            char lab[128];
            snprintf(lab, sizeof lab, "%s%zu %s @%lld", text ? "" : "p", text ? (size_t)0 : s / 2,
                     json_string_value(json_object_get(o, "label")), (long long)json_integer_value(json_array_get(pos, k)));
            labels[n_col] = strdup(lab);
            json_t *layers = json_object_get(o, "layers");
            for (int l = 0; l <= L; l++) {
                json_t *row = json_array_get(json_object_get(json_array_get(layers, l), "rows"), k);
                json_t *cl = json_object_get(row, "correction_logprob");
                vals[(size_t)l * 16 + n_col] = json_is_number(cl) ? json_number_value(cl) : NAN;
                const char *t1 = json_string_value(json_object_get(json_array_get(json_object_get(row, "top"), 0), "token"));
                cells[(size_t)l * 16 + n_col] = strdup(t1 ? t1 : "");
            }
        }
    }
    clens_sb_printf(&md, "# Logit lens: %s\n\nCorrection log-mass (natural log of the summed probability of %d correction tokens) and the top-1 token, per layer (resid_pre; layer %d = after the last block).\n\n| layer |",
                    in->path, mass.n, L);
    for (int c = 0; c < n_col; c++) clens_sb_printf(&md, " %s |", labels[c]);
    clens_sb_puts(&md, "\n|---|");
    for (int c = 0; c < n_col; c++) clens_sb_puts(&md, "---|");
    clens_sb_puts(&md, "\n");
    double lo = INFINITY, hi = -INFINITY;
    double *packed = malloc(sizeof(double) * (size_t)(L + 1) * (n_col ? n_col : 1));
    const char **pcells = malloc(sizeof(char *) * (size_t)(L + 1) * (n_col ? n_col : 1));
    if (!packed || !pcells) { free(packed); free(pcells); rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto figs_done; }
    for (int l = 0; l <= L; l++) {
        char rl[32];
        snprintf(rl, sizeof rl, "layer %d", l);
        rowl[l] = strdup(rl);
        clens_sb_printf(&md, "| %d |", l);
        for (int c = 0; c < n_col; c++) {
            double v = vals[(size_t)l * 16 + c];
            packed[(size_t)l * n_col + c] = v;
            pcells[(size_t)l * n_col + c] = cells[(size_t)l * 16 + c];
            if (isfinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; }
            clens_sb_printf(&md, " %.3f `%s` |", v, cells[(size_t)l * 16 + c]);
        }
        clens_sb_puts(&md, "\n");
    }
    char *svg = probe_svg_heat("Logit lens: correction log-mass (colour), top-1 token (text)", L + 1,
                               (const char *const *)rowl, n_col, (const char *const *)labels, packed, pcells, lo, hi);
    free(packed);
    free(pcells);
    if (!svg) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto figs_done; }
    rc = probe_write_text(out_dir, "lens.svg", svg, err);
    free(svg);
    if (rc) goto figs_done;
    char *t = clens_sb_take(&md);
    if (!t) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto figs_done; }
    rc = probe_write_text(out_dir, "lens.md", t, err);
    if (table_md && !rc) *table_md = t;
    else free(t);
figs_done:
    for (int c = 0; labels && c < 16; c++) free(labels[c]);
    for (size_t i = 0; cells && i < 16 * (size_t)(L + 1); i++) free(cells[i]);
    for (int l = 0; rowl && l <= L; l++) free(rowl[l]);
    free(labels);
    free(vals);
    free(cells);
    free(rowl);
done:
    clens_sb_free(&md);
    json_decref(seqs);
    json_decref(settings);
    json_decref(doc);
    run_token_set_clear(&mass);
    run_token_set_clear(&mean);
    clens_pairs_free(pairs, n_pairs);
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    return rc;
}
