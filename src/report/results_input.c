/*
 * results_input.c: the parser of a patching run's folder files for
 * results.json: settings.json (the site types, layers, metric, bootstrap and
 * shard settings) and records.jsonl (one record per candidate, checked line
 * by line against the settings, messages naming source and line). Schemas:
 * docs/patch-output.md.
 */
#include "report/results_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/path.h"

void clens_results_input_free(clens_results_input *in)
{
    if (!in) return;
    for (int t = 0; t < in->n_types; t++) {
        free(in->types[t].name);
        free(in->types[t].layers);
    }
    free(in->types);
    for (int i = 0; i < in->n_recs; i++) {
        json_decref(in->recs[i].j);
        free(in->recs[i].text);
    }
    free(in->recs);
    for (int i = 0; i < in->n_sources; i++) free(in->sources[i]);
    free(in->sources);
    free(in->settings_src);
    json_decref(in->root);
    free(in);
}

int results_get_int(const json_t *obj, const char *key, long long lo, long long hi, long long *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return -1;
    long long x = json_integer_value(v);
    if (x < lo || x > hi) return -1;
    *out = x;
    return 0;
}

int clens_results_input_new(clens_results_input **out, const char *settings_json, const char *source,
                            clens_error *err)
{
    *out = NULL;
    const char *S = source ? source : "settings.json";
    json_error_t je;
    json_t *root = json_loads(settings_json, JSON_REJECT_DUPLICATES, &je);
    if (!root) return clens_err(err, CLENS_E_FORMAT, "%s:%d:%d: %s", S, je.line, je.column, je.text);
    clens_results_input *in = calloc(1, sizeof *in);
    if (!in) { json_decref(root); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", S); }
    in->root = root;
    int rc = CLENS_E_FORMAT;
    long long x, y;
    in->settings_src = strdup(S);
    if (!in->settings_src) goto oom;
    const json_t *st = json_object_get(root, "settings");
    if (!json_is_object(root) || !json_is_object(st)) {
        clens_err(err, rc, "%s: expected an object with a \"settings\" object", S);
        goto fail;
    }
    in->settings = st;
    if (!json_is_string(json_object_get(root, "settings_hash"))) {
        clens_err(err, rc, "%s: \"settings_hash\": expected a string", S);
        goto fail;
    }
    json_t *shard = json_object_get(root, "shard");
    in->shard_index = 0;
    in->shard_count = 1;
    if (shard && !json_is_null(shard)) {
        if (!json_is_object(shard) || results_get_int(shard, "count", 1, 1000000, &y) ||
            results_get_int(shard, "index", 0, y - 1, &x)) {
            clens_err(err, rc, "%s: \"shard\": expected {\"index\": i, \"count\": n} with 0 <= i < n", S);
            goto fail;
        }
        in->shard_index = (int)x;
        in->shard_count = (int)y;
    }
    in->model = json_string_value(json_object_get(st, "model"));
    if (!in->model) { clens_err(err, rc, "%s: settings.model: expected a string", S); goto fail; }
    in->metric = json_string_value(json_object_get(st, "metric"));
    if (!in->metric || !*in->metric) { clens_err(err, rc, "%s: settings.metric: expected a metric name", S); goto fail; }
    if (results_get_int(st, "n", 1, INT32_MAX, &x)) {
        clens_err(err, rc, "%s: settings.n: expected a positive integer (target kept pairs)", S);
        goto fail;
    }
    in->n_target = (int)x;
    json_t *bs = json_object_get(st, "bootstrap");
    if (!json_is_object(bs) || results_get_int(bs, "resamples", 0, 10000000, &x) ||
        results_get_int(bs, "seed", 0, INT64_MAX, &y)) {
        clens_err(err, rc, "%s: settings.bootstrap: expected {\"resamples\": 0..10000000, \"seed\": >= 0}", S);
        goto fail;
    }
    in->boot_resamples = (int)x;
    in->boot_seed = (uint64_t)y;

    json_t *types = json_object_get(st, "site_types");
    json_t *layers = json_object_get(st, "layers");
    size_t nt = json_array_size(types);
    if (!json_is_array(types) || nt == 0) {
        clens_err(err, rc, "%s: settings.site_types: expected a non-empty array of names", S);
        goto fail;
    }
    if (!json_is_object(layers)) {
        clens_err(err, rc, "%s: settings.layers: expected an object {site type: [layers]}", S);
        goto fail;
    }
    in->types = calloc(nt, sizeof *in->types);
    if (!in->types) goto oom;
    for (size_t t = 0; t < nt; t++) {
        const char *name = json_string_value(json_array_get(types, t));
        if (!name || !*name) {
            clens_err(err, rc, "%s: settings.site_types[%zu]: expected a non-empty string", S, t);
            goto fail;
        }
        for (size_t u = 0; u < t; u++)
            if (strcmp(in->types[u].name, name) == 0) {
                clens_err(err, rc, "%s: settings.site_types: \"%s\" listed twice", S, name);
                goto fail;
            }
        site_type *ty = &in->types[t];
        in->n_types = (int)t + 1;
        ty->name = strdup(name);
        if (!ty->name) goto oom;
        { clens_hook_point pt; ty->is_z = !clens_hook_short_parse(name, &pt, NULL) && clens_hook_per_head(pt); }
        json_t *ls = json_object_get(layers, name);
        size_t nl = json_array_size(ls);
        if (!json_is_array(ls) || nl == 0 || nl > 100000) {
            clens_err(err, rc, "%s: settings.layers.%s: expected a non-empty array of layer numbers", S, name);
            goto fail;
        }
        ty->layers = malloc(sizeof(int) * nl);
        if (!ty->layers) goto oom;
        ty->n_layers = (int)nl;
        for (size_t i = 0; i < nl; i++) {
            json_t *l = json_array_get(ls, i);
            if (!json_is_integer(l) || json_integer_value(l) < 0 || json_integer_value(l) > 1000000) {
                clens_err(err, rc, "%s: settings.layers.%s[%zu]: expected a layer number >= 0", S, name, i);
                goto fail;
            }
            ty->layers[i] = (int)json_integer_value(l);
            for (size_t k = 0; k < i; k++)
                if (ty->layers[k] == ty->layers[i]) {
                    clens_err(err, rc, "%s: settings.layers.%s: layer %d listed twice", S, name, ty->layers[i]);
                    goto fail;
                }
        }
    }
    for (int t = 0; t < in->n_types; t++) {
        if (!in->types[t].is_z) continue;
        if (results_get_int(st, "n_heads", 1, 100000, &x)) {
            clens_err(err, rc, "%s: settings.n_heads: expected a positive integer (needed for z sites)", S);
            goto fail;
        }
        in->n_heads = (int)x;
    }
    for (int t = 0; t < in->n_types; t++) {
        site_type *ty = &in->types[t];
        ty->n_sites = ty->n_layers * (ty->is_z ? in->n_heads : 1);
        ty->off = in->n_sites;
        in->n_sites += ty->n_sites;
    }
    *out = in;
    return CLENS_OK;
oom:
    rc = clens_err(err, CLENS_E_NOMEM, "%s: out of memory", S);
fail:
    clens_results_input_free(in);
    return rc;
}

/* Checks one number-or-null value of a patched array. */
static int is_num_or_null(const json_t *v) { return json_is_number(v) || json_is_null(v); }

/* Validates a record (object already parsed). Returns 0 or an error. */
static int check_record(const clens_results_input *in, json_t *j, const char *S, int line, rec *r,
                        clens_error *err)
{
    const int rc = CLENS_E_FORMAT;
    if (!json_is_object(j)) return clens_err(err, rc, "%s:%d: expected a JSON object", S, line);
    json_t *c = json_object_get(j, "candidate");
    if (!json_is_integer(c) || json_integer_value(c) < 0)
        return clens_err(err, rc, "%s:%d: \"candidate\": expected an integer >= 0", S, line);
    r->candidate = json_integer_value(c);
    long long cand = r->candidate;
    json_t *id = json_object_get(j, "id");
    if (id && !json_is_string(id) && !json_is_null(id))
        return clens_err(err, rc, "%s:%d: candidate %lld: \"id\": expected a string", S, line, cand);
    json_t *sec = json_object_get(j, "seconds");
    if (sec && !json_is_number(sec) && !json_is_null(sec))
        return clens_err(err, rc, "%s:%d: candidate %lld: \"seconds\": expected a number", S, line, cand);
    const char *status = json_string_value(json_object_get(j, "status"));
    if (!status || (strcmp(status, "kept") && strcmp(status, "dropped")))
        return clens_err(err, rc, "%s:%d: candidate %lld: \"status\": expected \"kept\" or \"dropped\"", S,
                         line, cand);
    r->kept = strcmp(status, "kept") == 0;
    if (!r->kept) {
        json_t *reason = json_object_get(j, "reason");
        if (reason && !json_is_string(reason) && !json_is_null(reason))
            return clens_err(err, rc, "%s:%d: candidate %lld: \"reason\": expected a string or null", S, line,
                             cand);
        return CLENS_OK;
    }
    json_t *m = json_object_get(json_object_get(j, "metrics"), in->metric);
    if (!json_is_object(m))
        return clens_err(err, rc, "%s:%d: candidate %lld: kept pair without metrics.%s", S, line, cand,
                         in->metric);
    if (!json_is_number(json_object_get(m, "clean")) || !json_is_number(json_object_get(m, "corr")))
        return clens_err(err, rc, "%s:%d: candidate %lld: metrics.%s: expected numbers \"clean\" and \"corr\"",
                         S, line, cand, in->metric);
    json_t *pt = json_object_get(m, "patched");
    if (!json_is_object(pt))
        return clens_err(err, rc, "%s:%d: candidate %lld: metrics.%s.patched: expected an object", S, line,
                         cand, in->metric);
    for (int t = 0; t < in->n_types; t++) {
        const site_type *ty = &in->types[t];
        json_t *a = json_object_get(pt, ty->name);
        if (!json_is_array(a) || (int)json_array_size(a) != ty->n_layers)
            return clens_err(err, rc,
                             "%s:%d: candidate %lld: metrics.%s.patched.%s: expected an array of %d values "
                             "(one per settings.layers.%s), got %s%zu",
                             S, line, cand, in->metric, ty->name, ty->n_layers, ty->name,
                             json_is_array(a) ? "" : "no array, size ", json_array_size(a));
        for (int i = 0; i < ty->n_layers; i++) {
            json_t *v = json_array_get(a, (size_t)i);
            if (!ty->is_z) {
                if (!is_num_or_null(v))
                    return clens_err(err, rc, "%s:%d: candidate %lld: metrics.%s.patched.%s[%d]: expected a number",
                                     S, line, cand, in->metric, ty->name, i);
                continue;
            }
            if (!json_is_array(v) || (int)json_array_size(v) != in->n_heads)
                return clens_err(err, rc,
                                 "%s:%d: candidate %lld: metrics.%s.patched.z[%d]: expected an array of %d values "
                                 "(settings.n_heads)",
                                 S, line, cand, in->metric, i, in->n_heads);
            for (int h = 0; h < in->n_heads; h++)
                if (!is_num_or_null(json_array_get(v, (size_t)h)))
                    return clens_err(err, rc, "%s:%d: candidate %lld: metrics.%s.patched.z[%d][%d]: expected a number",
                                     S, line, cand, in->metric, i, h);
        }
    }
    return CLENS_OK;
}

int clens_results_input_add(clens_results_input *in, const char *text, size_t len, const char *source,
                            int shard_index, int shard_count, clens_error *err)
{
    const char *S = source ? source : "records.jsonl";
    if (shard_count < 1) shard_count = 1;
    char *src = strdup(S);
    char **ns = src ? realloc(in->sources, sizeof(char *) * (size_t)(in->n_sources + 1)) : NULL;
    if (!ns) { free(src); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", S); }
    in->sources = ns;
    in->sources[in->n_sources++] = src;
    int src_idx = in->n_sources - 1;
    in->sorted = 0;

    size_t pos = 0;
    int line = 0;
    while (pos < len) {
        line++;
        const char *p = text + pos;
        const char *nl = memchr(p, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - p) : len - pos;
        pos += n + (nl ? 1 : 0);
        if (n > 0 && p[n - 1] == '\r') n--;
        size_t k = 0;
        while (k < n && (p[k] == ' ' || p[k] == '\t')) k++;
        if (k == n) continue; /* blank line */
        json_error_t je;
        json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
        if (!j) return clens_err(err, CLENS_E_FORMAT, "%s:%d: malformed JSON at column %d: %s", S, line, je.column, je.text);
        rec r = {0};
        int rc = check_record(in, j, S, line, &r, err);
        if (rc) { json_decref(j); return rc; }
        if (r.candidate % shard_count != shard_index) {
            json_decref(j);
            return clens_err(err, CLENS_E_FORMAT, "%s:%d: candidate %lld does not belong to shard %d of %d", S, line,
                             r.candidate, shard_index, shard_count);
        }
        if (in->n_recs == in->cap_recs) {
            int cap = in->cap_recs ? in->cap_recs * 2 : 64;
            rec *nr = realloc(in->recs, sizeof(rec) * (size_t)cap);
            if (!nr) { json_decref(j); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", S); }
            in->recs = nr;
            in->cap_recs = cap;
        }
        r.text = malloc(n + 1);
        if (!r.text) { json_decref(j); return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", S); }
        memcpy(r.text, p, n);
        r.text[n] = '\0';
        r.j = j;
        r.src = src_idx;
        r.line = line;
        in->recs[in->n_recs++] = r;
    }
    return CLENS_OK;
}

static int cmp_rec(const void *a, const void *b)
{
    const rec *x = a, *y = b;
    if (x->candidate != y->candidate) return x->candidate < y->candidate ? -1 : 1;
    if (x->src != y->src) return x->src < y->src ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

int results_sort_records(clens_results_input *in, clens_error *err)
{
    if (!in->sorted) {
        if (in->n_recs > 1) qsort(in->recs, (size_t)in->n_recs, sizeof(rec), cmp_rec);
        in->sorted = 1;
    }
    for (int i = 1; i < in->n_recs; i++) {
        const rec *a = &in->recs[i - 1], *b = &in->recs[i];
        if (a->candidate == b->candidate)
            return clens_err(err, CLENS_E_FORMAT, "candidate %lld recorded twice: %s:%d and %s:%d", a->candidate,
                             in->sources[a->src], a->line, in->sources[b->src], b->line);
    }
    return CLENS_OK;
}

int clens_results_input_records_text(clens_results_input *in, char **text, size_t *len, clens_error *err)
{
    *text = NULL;
    *len = 0;
    int rc = results_sort_records(in, err);
    if (rc) return rc;
    clens_sb b = {0};
    for (int i = 0; i < in->n_recs; i++) {
        clens_sb_puts(&b, in->recs[i].text);
        clens_sb_put(&b, "\n", 1);
    }
    size_t n = b.len;
    char *t = clens_sb_take(&b);
    if (!t) return clens_err(err, CLENS_E_NOMEM, "records: out of memory");
    *text = t;
    *len = n;
    return CLENS_OK;
}

/* ------------------------------------------------------------ folder files */

int results_read_in(const char *dir, const char *name, char **data, size_t *len, char **path, clens_error *err)
{
    *data = NULL;
    *path = clens_path_join(dir, name);
    if (!*path) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", dir);
    return clens_read_file(*path, data, len, err);
}

int results_write_out(const char *dir, const char *name, const char *data, size_t len, clens_error *err)
{
    char *p = clens_path_join(dir, name);
    if (!p) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", dir);
    int rc = clens_write_file_atomic(p, data, len, err);
    free(p);
    return rc;
}
