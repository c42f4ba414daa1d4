/*
 * results.c: results.json / results.md of a patching run, and `clens merge` of
 * sharded runs. Input and output schemas: docs/patch-output.md (and its Notes);
 * statistics: src/interp/stats.h; selection of pairs across shards: rulings R13
 * (sort records by candidate, keep the first settings.n kept pairs).
 *
 * Everything in results.json except "timing" is a deterministic function of
 * settings.json and the records: keys are written in a fixed order (embedded
 * settings/provenance objects with sorted keys), numbers in the format of
 * report.h, and the statistics are bit-reproducible (stats.h). So merging the
 * shards of a run gives the same bytes as one unsharded run.
 */
#include "report/report.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/path.h"
#include "interp/run_internal.h"
#include "interp/stats.h"

/* ======================================================== settings, records */

typedef struct site_type {
    char *name;
    int is_z;      /* per-head sites: name "z", sites keyed "L.H" */
    int n_layers;
    int *layers;   /* settings.layers[name], in settings order */
    int n_sites;   /* n_layers, or n_layers * n_heads for z */
    int off;       /* index of the first site in the flat site list */
} site_type;

typedef struct rec {
    long long candidate;
    int kept;
    int src;       /* index into in->sources */
    int line;      /* 1-based line number in that source */
    json_t *j;     /* the parsed record */
    char *text;    /* the original line (no '\n' / '\r') */
} rec;

struct clens_results_input {
    json_t *root;         /* settings.json */
    const json_t *settings;
    char *settings_src;
    const char *metric;
    const char *model;
    site_type *types;
    int n_types;
    int n_sites;
    int n_heads;
    int n_target;
    int boot_resamples;
    uint64_t boot_seed;
    int shard_index, shard_count;
    char **sources;
    int n_sources;
    rec *recs;
    int n_recs, cap_recs;
    int sorted;
};

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

/* Integer field of an object, in [lo, hi]. Returns 0 if ok. */
static int get_int(const json_t *obj, const char *key, long long lo, long long hi, long long *out)
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
        if (!json_is_object(shard) || get_int(shard, "count", 1, 1000000, &y) ||
            get_int(shard, "index", 0, y - 1, &x)) {
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
    if (get_int(st, "n", 1, INT32_MAX, &x)) {
        clens_err(err, rc, "%s: settings.n: expected a positive integer (target kept pairs)", S);
        goto fail;
    }
    in->n_target = (int)x;
    json_t *bs = json_object_get(st, "bootstrap");
    if (!json_is_object(bs) || get_int(bs, "resamples", 0, 10000000, &x) ||
        get_int(bs, "seed", 0, INT64_MAX, &y)) {
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
        ty->is_z = strcmp(name, "z") == 0;
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
        if (get_int(st, "n_heads", 1, 100000, &x)) {
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

/* Sorts the records by candidate and rejects duplicates. */
static int sort_records(clens_results_input *in, clens_error *err)
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
    int rc = sort_records(in, err);
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

/* ============================================================ computation */

typedef struct reason_count {
    const char *reason;
    int count;
} reason_count;

typedef struct calc {
    int n;                   /* pairs used (first n_target kept, candidate order) */
    int n_used_recs;         /* records up to and including the last pair used */
    const rec **pair;        /* [n] */
    double *D;               /* [n] m_clean - m_corr, primary metric */
    double *R, *P;           /* [n_sites][n] recovery %, m_patched - m_corr */
    unsigned char *def;      /* [n_sites][n] recovery defined */
    clens_site_stats *st;    /* [n_sites] */
    clens_delta_stats *dl;   /* [n_sites]: vs previous layer of the same (non-z) type */
    unsigned char *has_dl;   /* [n_sites] */
    reason_count *reasons;   /* dropped, by reason, sorted by name */
    int n_reasons;
    int n_dropped;
    double seconds_total;    /* all records */
    int best;                /* best site of the primary type, -1 if none */
} calc;

static void calc_free(calc *c)
{
    free(c->pair);
    free(c->D);
    free(c->R);
    free(c->P);
    free(c->def);
    free(c->st);
    free(c->dl);
    free(c->has_dl);
    free(c->reasons);
}

static int cmp_reason(const void *a, const void *b)
{
    return strcmp(((const reason_count *)a)->reason, ((const reason_count *)b)->reason);
}

/* Site s of type ty: layer index i, head h (0 for non-z). */
static void site_pos(const clens_results_input *in, const site_type *ty, int s, int *i, int *h)
{
    int k = s - ty->off;
    if (ty->is_z) { *i = k / in->n_heads; *h = k % in->n_heads; }
    else { *i = k; *h = 0; }
}

static const char *site_key(const clens_results_input *in, const site_type *ty, int s, char *buf, size_t n)
{
    int i, h;
    site_pos(in, ty, s, &i, &h);
    if (ty->is_z) snprintf(buf, n, "%d.%d", ty->layers[i], h);
    else snprintf(buf, n, "%d", ty->layers[i]);
    return buf;
}

static int compute(clens_results_input *in, calc *c, clens_error *err)
{
    memset(c, 0, sizeof *c);
    c->best = -1;
    int rc = sort_records(in, err);
    if (rc) return rc;

    /* Selection (rulings R13): the first n_target kept pairs in candidate order. */
    int kept = 0, last = in->n_recs - 1;
    for (int i = 0; i < in->n_recs; i++) {
        if (in->recs[i].kept && ++kept == in->n_target) { last = i; break; }
    }
    c->n = kept;
    c->n_used_recs = last + 1;
    /* Every candidate up to the last one used must be recorded: a gap means an
     * incomplete shard or a truncated file, and the pairs kept would differ
     * from a complete run's. */
    for (int i = 0; i <= last; i++) {
        long long want = (long long)in->shard_index + (long long)i * in->shard_count;
        if (in->recs[i].candidate != want)
            return clens_err(err, CLENS_E_STATE,
                             "candidate %lld has no record but candidate %lld (%s:%d) does: a shard is incomplete "
                             "(rerun it to resume) or records.jsonl is truncated",
                             want, in->recs[i].candidate, in->sources[in->recs[i].src], in->recs[i].line);
    }

    const int n = c->n, NS = in->n_sites;
    size_t cells = (size_t)NS * (size_t)(n ? n : 1);
    c->pair = calloc((size_t)(n ? n : 1), sizeof *c->pair);
    c->D = calloc((size_t)(n ? n : 1), sizeof *c->D);
    c->R = calloc(cells, sizeof *c->R);
    c->P = calloc(cells, sizeof *c->P);
    c->def = calloc(cells, 1);
    c->st = calloc((size_t)NS, sizeof *c->st);
    c->dl = calloc((size_t)NS, sizeof *c->dl);
    c->has_dl = calloc((size_t)NS, 1);
    c->reasons = calloc((size_t)c->n_used_recs + 1, sizeof *c->reasons);
    if (!c->pair || !c->D || !c->R || !c->P || !c->def || !c->st || !c->dl || !c->has_dl || !c->reasons)
        return clens_err(err, CLENS_E_NOMEM, "results: out of memory");

    for (int i = 0; i < in->n_recs; i++) {
        json_t *s = json_object_get(in->recs[i].j, "seconds");
        if (json_is_number(s)) c->seconds_total += json_number_value(s);
    }
    int k = 0;
    for (int i = 0; i < c->n_used_recs; i++) {
        const rec *r = &in->recs[i];
        if (r->kept) { c->pair[k++] = r; continue; }
        c->n_dropped++;
        const char *why = json_string_value(json_object_get(r->j, "reason"));
        if (!why) why = "unspecified";
        int q = 0;
        while (q < c->n_reasons && strcmp(c->reasons[q].reason, why)) q++;
        if (q == c->n_reasons) c->reasons[c->n_reasons++].reason = why;
        c->reasons[q].count++;
    }
    if (c->n_reasons > 1) qsort(c->reasons, (size_t)c->n_reasons, sizeof *c->reasons, cmp_reason);

    for (int i = 0; i < n; i++) {
        json_t *m = json_object_get(json_object_get(c->pair[i]->j, "metrics"), in->metric);
        double clean = json_number_value(json_object_get(m, "clean"));
        double corr = json_number_value(json_object_get(m, "corr"));
        c->D[i] = clean - corr;
        json_t *pt = json_object_get(m, "patched");
        for (int t = 0; t < in->n_types; t++) {
            const site_type *ty = &in->types[t];
            json_t *a = json_object_get(pt, ty->name);
            for (int s = ty->off; s < ty->off + ty->n_sites; s++) {
                int li, h;
                site_pos(in, ty, s, &li, &h);
                json_t *v = json_array_get(a, (size_t)li);
                if (ty->is_z) v = json_array_get(v, (size_t)h);
                size_t cell = (size_t)s * (size_t)n + (size_t)i;
                if (!json_is_number(v)) continue; /* null: undefined at this site */
                double p = json_number_value(v);
                c->def[cell] = (unsigned char)clens_recovery(p, clean, corr, &c->R[cell]);
                c->P[cell] = p - corr;
            }
        }
    }

    clens_boot *boot = NULL;
    rc = clens_boot_new(&boot, in->boot_resamples, in->boot_seed, err);
    if (rc) return rc;
    for (int s = 0; s < NS && !rc; s++) {
        size_t o = (size_t)s * (size_t)n;
        rc = clens_site_stats_compute(boot, c->R + o, c->P + o, c->D, c->def + o, n, &c->st[s], err);
    }
    for (int t = 0; t < in->n_types && !rc; t++) {
        const site_type *ty = &in->types[t];
        if (ty->is_z) continue;
        for (int s = ty->off + 1; s < ty->off + ty->n_sites && !rc; s++) {
            size_t oa = (size_t)(s - 1) * (size_t)n, ob = (size_t)s * (size_t)n;
            rc = clens_delta_stats_compute(boot, c->R + oa, c->def + oa, &c->st[s - 1], c->R + ob, c->def + ob,
                                           &c->st[s], n, &c->dl[s], err);
            c->has_dl[s] = 1;
        }
    }
    clens_boot_free(boot);
    if (rc) return rc;

    const site_type *pt = &in->types[0];
    for (int s = pt->off; s < pt->off + pt->n_sites; s++)
        if (c->st[s].has_mean && (c->best < 0 || c->st[s].mean > c->st[c->best].mean)) c->best = s;
    return CLENS_OK;
}

/* ================================================================ JSON */

static void opt_num(clens_sb *b, int has, double x)
{
    if (has) clens_sb_json_num(b, x);
    else clens_sb_puts(b, "null");
}

static void opt_pair(clens_sb *b, int has, double lo, double hi)
{
    if (!has) { clens_sb_puts(b, "null"); return; }
    clens_sb_puts(b, "[");
    clens_sb_json_num(b, lo);
    clens_sb_puts(b, ", ");
    clens_sb_json_num(b, hi);
    clens_sb_puts(b, "]");
}

static void emit_stats(clens_sb *b, const calc *c, const site_type *ty, int s)
{
    const clens_site_stats *st = &c->st[s];
    clens_sb_puts(b, "{\"mean_recovery\": ");
    opt_num(b, st->has_mean, st->mean);
    clens_sb_puts(b, ", \"std_recovery\": ");
    opt_num(b, st->has_mean, st->sd);
    clens_sb_printf(b, ", \"n_samples\": %d, \"ratio_of_sums\": ", st->n_samples);
    opt_num(b, st->has_ratio, st->ratio_of_sums);
    clens_sb_puts(b, ", \"median\": ");
    opt_num(b, st->has_mean, st->median);
    clens_sb_puts(b, ", \"ci95\": ");
    opt_pair(b, st->has_ci, st->ci_lo, st->ci_hi);
    clens_sb_printf(b, ", \"n_undefined\": %d", st->n_undefined);
    if (!ty->is_z) {
        const clens_delta_stats *d = &c->dl[s];
        int first = !c->has_dl[s];
        clens_sb_puts(b, ", \"delta\": ");
        opt_num(b, !first && d->has_delta, d->delta);
        clens_sb_puts(b, ", \"delta_ci95\": ");
        opt_pair(b, !first && d->has_ci, d->ci_lo, d->ci_hi);
    }
    clens_sb_puts(b, "}");
}

static void emit_type_stats(clens_sb *b, const clens_results_input *in, const calc *c, const site_type *ty,
                            int indent)
{
    char key[64];
    clens_sb_puts(b, "{\n");
    for (int s = ty->off; s < ty->off + ty->n_sites; s++) {
        clens_sb_indent(b, indent + 2);
        clens_sb_json_str(b, site_key(in, ty, s, key, sizeof key));
        clens_sb_puts(b, ": ");
        emit_stats(b, c, ty, s);
        clens_sb_puts(b, s + 1 < ty->off + ty->n_sites ? ",\n" : "\n");
    }
    clens_sb_indent(b, indent);
    clens_sb_puts(b, "}");
}

static const char *model_name(const char *path, char *buf, size_t n)
{
    size_t l = strlen(path);
    while (l > 1 && path[l - 1] == '/') l--;
    size_t s = l;
    while (s > 0 && path[s - 1] != '/') s--;
    size_t k = l - s < n - 1 ? l - s : n - 1;
    memcpy(buf, path + s, k);
    buf[k] = '\0';
    return buf;
}

static void emit_rec_value(clens_sb *b, const calc *c, int s, int i)
{
    size_t cell = (size_t)s * (size_t)c->n + (size_t)i;
    opt_num(b, c->def[cell], c->R[cell]);
}

static void render_json(clens_sb *b, const clens_results_input *in, const calc *c)
{
    const site_type *pt = &in->types[0];
    char name[512];
    clens_sb_puts(b, "{\n  \"site_type\": ");
    clens_sb_json_str(b, pt->name);
    clens_sb_puts(b, ",\n  \"model\": ");
    clens_sb_json_str(b, model_name(in->model, name, sizeof name));
    clens_sb_printf(b, ",\n  \"n_pairs\": %d,\n  \"layers\": [", c->n);
    for (int i = 0; i < pt->n_layers; i++) clens_sb_printf(b, i ? ", %d" : "%d", pt->layers[i]);
    clens_sb_puts(b, "],\n  \"layer_stats\": ");
    emit_type_stats(b, in, c, pt, 2);
    clens_sb_puts(b, ",\n  \"sites\": {");
    for (int t = 1; t < in->n_types; t++) {
        clens_sb_puts(b, t > 1 ? ",\n    " : "\n    ");
        clens_sb_json_str(b, in->types[t].name);
        clens_sb_puts(b, ": ");
        emit_type_stats(b, in, c, &in->types[t], 4);
    }
    clens_sb_puts(b, in->n_types > 1 ? "\n  },\n" : "},\n");
    if (c->best >= 0) {
        int li, h;
        site_pos(in, pt, c->best, &li, &h);
        clens_sb_printf(b, "  \"best_layer\": %d,\n", pt->layers[li]);
        if (pt->is_z) clens_sb_printf(b, "  \"best_head\": %d,\n", h);
        clens_sb_puts(b, "  \"best_recovery\": ");
        clens_sb_json_num(b, c->st[c->best].mean);
    } else {
        clens_sb_puts(b, "  \"best_layer\": null,\n");
        if (pt->is_z) clens_sb_puts(b, "  \"best_head\": null,\n");
        clens_sb_puts(b, "  \"best_recovery\": null");
    }
    clens_sb_puts(b, ",\n  \"metric\": ");
    clens_sb_json_str(b, in->metric);
    clens_sb_puts(b, ",\n  \"sign_convention\": \"D = m_clean - m_corr (usually < 0)\"");
    clens_sb_printf(b, ",\n  \"counts\": {\"attempted\": %d, \"kept\": %d, \"dropped\": {", c->n_used_recs, c->n);
    for (int q = 0; q < c->n_reasons; q++) {
        if (q) clens_sb_puts(b, ", ");
        clens_sb_json_str(b, c->reasons[q].reason);
        clens_sb_printf(b, ": %d", c->reasons[q].count);
    }
    clens_sb_puts(b, "}},\n  \"pairs\": [");
    for (int i = 0; i < c->n; i++) {
        const rec *r = c->pair[i];
        clens_sb_printf(b, "%s\n    {\"candidate\": %lld, \"id\": ", i ? "," : "", r->candidate);
        const char *id = json_string_value(json_object_get(r->j, "id"));
        if (id) clens_sb_json_str(b, id);
        else clens_sb_puts(b, "null");
        clens_sb_puts(b, ", \"D\": ");
        clens_sb_json_num(b, c->D[i]);
        clens_sb_puts(b, ", \"recovery\": {");
        for (int t = 0; t < in->n_types; t++) {
            const site_type *ty = &in->types[t];
            if (t) clens_sb_puts(b, ", ");
            clens_sb_json_str(b, ty->name);
            clens_sb_puts(b, ": [");
            for (int li = 0; li < ty->n_layers; li++) {
                if (li) clens_sb_puts(b, ", ");
                if (!ty->is_z) { emit_rec_value(b, c, ty->off + li, i); continue; }
                clens_sb_puts(b, "[");
                for (int h = 0; h < in->n_heads; h++) {
                    if (h) clens_sb_puts(b, ", ");
                    emit_rec_value(b, c, ty->off + li * in->n_heads + h, i);
                }
                clens_sb_puts(b, "]");
            }
            clens_sb_puts(b, "]");
        }
        clens_sb_puts(b, "}}");
    }
    clens_sb_puts(b, c->n ? "\n  ],\n  \"settings\": " : "],\n  \"settings\": ");
    clens_sb_json_value(b, in->settings, 2);
    clens_sb_puts(b, ",\n  \"settings_hash\": ");
    clens_sb_json_str(b, json_string_value(json_object_get(in->root, "settings_hash")));
    clens_sb_puts(b, ",\n  \"provenance\": ");
    json_t *prov = json_object_get(in->root, "provenance");
    if (prov) clens_sb_json_value(b, prov, 2);
    else clens_sb_puts(b, "null");
    clens_sb_printf(b, ",\n  \"shard\": {\"index\": %d, \"count\": %d}", in->shard_index, in->shard_count);
    clens_sb_puts(b, ",\n  \"clens_version\": ");
    clens_sb_json_str(b, CLENS_VERSION);
    clens_sb_puts(b, ",\n  \"timing\": {\"seconds_total\": ");
    clens_sb_json_num(b, c->seconds_total);
    clens_sb_puts(b, ", \"seconds_per_pair\": ");
    opt_num(b, c->n > 0, c->seconds_total / (c->n > 0 ? c->n : 1));
    clens_sb_puts(b, "}\n}\n");
}

/* ============================================================ markdown */

/* "%.1f" without a negative zero. */
static const char *f1(char *buf, size_t n, double x)
{
    snprintf(buf, n, "%.1f", x);
    if (strcmp(buf, "-0.0") == 0) snprintf(buf, n, "0.0");
    return buf;
}

static const char *f1_signed(char *buf, size_t n, double x)
{
    snprintf(buf, n, "%+.1f", x);
    if (strcmp(buf, "-0.0") == 0 || strcmp(buf, "+0.0") == 0) snprintf(buf, n, "0.0");
    return buf;
}

static void md_row(clens_sb *b, const calc *c, const char *label, int s, int bold, int with_delta)
{
    const clens_site_stats *st = &c->st[s];
    char x[64], y[64];
    const char *B = bold ? "**" : "";
    clens_sb_printf(b, "| %s%s%s | ", B, label, B);
    if (st->has_mean) clens_sb_printf(b, "%s%s%s", B, f1(x, sizeof x, st->mean), B);
    else clens_sb_puts(b, "n/a");
    if (with_delta) {
        const clens_delta_stats *d = &c->dl[s];
        if (c->has_dl[s] && d->has_delta) clens_sb_printf(b, " | %s", f1_signed(x, sizeof x, d->delta));
        else clens_sb_puts(b, " | -");
    }
    if (st->has_ci) clens_sb_printf(b, " | [%s, %s]", f1(x, sizeof x, st->ci_lo), f1(y, sizeof y, st->ci_hi));
    else clens_sb_puts(b, " | n/a");
    if (st->has_ratio) clens_sb_printf(b, " | %s", f1(x, sizeof x, st->ratio_of_sums));
    else clens_sb_puts(b, " | n/a");
    if (st->has_mean) clens_sb_printf(b, " | %s", f1(x, sizeof x, st->median));
    else clens_sb_puts(b, " | n/a");
    clens_sb_printf(b, " | %d", st->n_samples);
    if (st->n_undefined) clens_sb_printf(b, " (+%d undefined)", st->n_undefined);
    clens_sb_puts(b, " |\n");
}

static void md_layer_table(clens_sb *b, const clens_results_input *in, const calc *c, const site_type *ty, int best)
{
    char key[64];
    clens_sb_puts(b, "| Layer | Recovery % | Δ | 95% CI | ratio of sums | median | n |\n"
                     "|------:|-----------:|--:|:------:|--------------:|-------:|--:|\n");
    for (int s = ty->off; s < ty->off + ty->n_sites; s++)
        md_row(b, c, site_key(in, ty, s, key, sizeof key), s, s == best, 1);
}

typedef struct head_rank { int s; double mean; } head_rank;
static int cmp_head(const void *a, const void *b)
{
    const head_rank *x = a, *y = b;
    if (x->mean != y->mean) return x->mean > y->mean ? -1 : 1;
    return (x->s > y->s) - (x->s < y->s);
}

static void md_head_table(clens_sb *b, const clens_results_input *in, const calc *c, const site_type *ty)
{
    head_rank *hr = malloc(sizeof *hr * (size_t)ty->n_sites);
    if (!hr) { b->oom = 1; return; }
    int k = 0;
    for (int s = ty->off; s < ty->off + ty->n_sites; s++)
        if (c->st[s].has_mean) hr[k++] = (head_rank){s, c->st[s].mean};
    qsort(hr, (size_t)k, sizeof *hr, cmp_head);
    int top = k < 10 ? k : 10;
    clens_sb_printf(b, "Top %d of %d heads by mean recovery (key layer.head):\n\n", top, ty->n_sites);
    clens_sb_puts(b, "| Head | Recovery % | 95% CI | ratio of sums | median | n |\n"
                     "|-----:|-----------:|:------:|--------------:|-------:|--:|\n");
    char key[64];
    for (int i = 0; i < top; i++) md_row(b, c, site_key(in, ty, hr[i].s, key, sizeof key), hr[i].s, 0, 0);
    free(hr);
}

static const char *sget(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "?";
}

static void md_value(clens_sb *b, const json_t *v)
{
    if (!v) { clens_sb_puts(b, "?"); return; }
    if (json_is_string(v)) { clens_sb_puts(b, json_string_value(v)); return; }
    clens_sb_json_value(b, v, 0);
}

static void render_md(clens_sb *b, const clens_results_input *in, const calc *c)
{
    const site_type *pt = &in->types[0];
    const json_t *st = in->settings;
    char name[512], x[64];
    clens_sb_printf(b, "# Activation patching: %s\n\n", model_name(in->model, name, sizeof name));
    clens_sb_printf(b,
                    "Site type `%s`, metric `%s`, %d kept pairs (target %d). Recovery %% = 100 · (m_patched − m_corr) "
                    "/ (m_clean − m_corr), mean over pairs; D = m_clean − m_corr (usually < 0). "
                    "Δ = change of the mean from the previous row; 95%% CI = percentile bootstrap over pairs "
                    "(%d resamples, seed %llu); ratio of sums = 100 · ΣP / ΣD.\n\n",
                    pt->name, in->metric, c->n, in->n_target, in->boot_resamples,
                    (unsigned long long)in->boot_seed);
    if (pt->is_z) md_head_table(b, in, c, pt);
    else md_layer_table(b, in, c, pt, c->best);
    if (c->best >= 0) {
        char key[64];
        clens_sb_printf(b, "\nBest %s: %s (%s%%).\n", pt->is_z ? "head" : "layer",
                        site_key(in, pt, c->best, key, sizeof key), f1(x, sizeof x, c->st[c->best].mean));
    }
    for (int t = 1; t < in->n_types; t++) {
        const site_type *ty = &in->types[t];
        clens_sb_printf(b, "\n## Site type `%s`\n\n", ty->name);
        if (ty->is_z) md_head_table(b, in, c, ty);
        else md_layer_table(b, in, c, ty, -1);
    }
    clens_sb_printf(b, "\n## Pairs\n\nCandidates attempted: %d; kept: %d; dropped: %d", c->n_used_recs, c->n,
                    c->n_dropped);
    for (int q = 0; q < c->n_reasons; q++)
        clens_sb_printf(b, "%s%s %d", q ? ", " : " (", c->reasons[q].reason, c->reasons[q].count);
    clens_sb_puts(b, c->n_reasons ? ").\n" : ".\n");
    if (c->n < in->n_target)
        clens_sb_printf(b, "Only %d of the %d target pairs were kept: the candidate pool ran out.\n", c->n,
                        in->n_target);

    clens_sb_puts(b, "\n## Settings\n\n");
    static const char *keys[] = {"model", "method", "prompt", "metric", "filter", "min_diff", "n", "matmul",
                                 "pairs_file", "pairs_sha256"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(st, keys[i]);
        if (!v) continue;
        clens_sb_printf(b, "- %s: ", keys[i]);
        md_value(b, v);
        clens_sb_puts(b, "\n");
    }
    clens_sb_puts(b, "- site types:");
    for (int t = 0; t < in->n_types; t++)
        clens_sb_printf(b, "%s %s (%d layers)", t ? "," : "", in->types[t].name, in->types[t].n_layers);
    clens_sb_puts(b, "\n");
    json_t *mets = json_object_get(st, "metrics");
    if (json_is_object(mets)) {
        const char *k;
        json_t *v;
        json_object_foreach(mets, k, v) {
            clens_sb_printf(b, "- metric %s tokens: ", k);
            md_value(b, json_object_get(v, "tokens"));
            clens_sb_puts(b, "\n");
        }
    }
    clens_sb_printf(b, "- settings_hash: %s\n", sget(in->root, "settings_hash"));
    clens_sb_printf(b, "- shard: %d of %d\n", in->shard_index, in->shard_count);
    json_t *prov = json_object_get(in->root, "provenance");
    if (json_is_object(prov)) {
        clens_sb_puts(b, "- provenance:");
        static const char *pk[] = {"arch", "n_layers", "dtype", "kernel", "host_cpu"};
        int first = 1;
        for (size_t i = 0; i < sizeof pk / sizeof pk[0]; i++) {
            json_t *v = json_object_get(prov, pk[i]);
            if (!v) continue;
            clens_sb_printf(b, "%s %s ", first ? "" : ",", pk[i]);
            md_value(b, v);
            first = 0;
        }
        clens_sb_puts(b, "\n");
    }
    clens_sb_printf(b, "- time: %.1f s over all records", c->seconds_total);
    if (c->n > 0) clens_sb_printf(b, ", %.2f s per kept pair", c->seconds_total / c->n);
    clens_sb_puts(b, "\n");
}

int clens_results_input_render(clens_results_input *in, char **results_json, char **results_md, clens_error *err)
{
    *results_json = NULL;
    if (results_md) *results_md = NULL;
    calc c;
    int rc = compute(in, &c, err);
    if (rc) { calc_free(&c); return rc; }
    clens_sb j = {0}, m = {0};
    render_json(&j, in, &c);
    if (results_md) render_md(&m, in, &c);
    calc_free(&c);
    char *js = clens_sb_take(&j);
    char *ms = results_md ? clens_sb_take(&m) : NULL;
    if (!js || (results_md && !ms)) {
        free(js);
        free(ms);
        return clens_err(err, CLENS_E_NOMEM, "results: out of memory");
    }
    *results_json = js;
    if (results_md) *results_md = ms;
    return CLENS_OK;
}

/* ========================================================== public API */

int clens_results_build(const char *settings_json, const char *records_jsonl, size_t len, char **results_json,
                        char **results_md, clens_error *err)
{
    clens_results_input *in = NULL;
    int rc = clens_results_input_new(&in, settings_json, "settings.json", err);
    if (rc) return rc;
    rc = clens_results_input_add(in, records_jsonl ? records_jsonl : "", records_jsonl ? len : 0, "records.jsonl",
                                 in->shard_index, in->shard_count, err);
    if (!rc) rc = clens_results_input_render(in, results_json, results_md, err);
    clens_results_input_free(in);
    return rc;
}

/* Reads DIR/NAME into a malloc'd buffer. */
static int read_in(const char *dir, const char *name, char **data, size_t *len, char **path, clens_error *err)
{
    *data = NULL;
    *path = clens_path_join(dir, name);
    if (!*path) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", dir);
    return clens_read_file(*path, data, len, err);
}

static int write_out(const char *dir, const char *name, const char *data, size_t len, clens_error *err)
{
    char *p = clens_path_join(dir, name);
    if (!p) return clens_err(err, CLENS_E_NOMEM, "%s: out of memory", dir);
    int rc = clens_write_file_atomic(p, data, len, err);
    free(p);
    return rc;
}

int clens_results_write(const char *dir, char **results_md, clens_error *err)
{
    if (results_md) *results_md = NULL;
    char *st = NULL, *recs = NULL, *sp = NULL, *rp = NULL, *js = NULL, *md = NULL;
    size_t sl = 0, rl = 0;
    clens_results_input *in = NULL;
    int rc = read_in(dir, "settings.json", &st, &sl, &sp, err);
    if (!rc) rc = read_in(dir, "records.jsonl", &recs, &rl, &rp, err);
    if (!rc) rc = clens_results_input_new(&in, st, sp, err);
    if (!rc) rc = clens_results_input_add(in, recs, rl, rp, in->shard_index, in->shard_count, err);
    if (!rc) rc = clens_results_input_render(in, &js, &md, err);
    if (!rc) rc = write_out(dir, "results.json", js, strlen(js), err);
    if (!rc) rc = write_out(dir, "results.md", md, strlen(md), err);
    if (!rc && results_md) { *results_md = md; md = NULL; }
    clens_results_input_free(in);
    free(st); free(recs); free(sp); free(rp); free(js); free(md);
    return rc;
}

/* ---------------------------------------------------------------- merge */

typedef struct shard_in {
    const char *dir;
    char *settings_path;
    char *settings_text;
    json_t *root;
    int index, count;
} shard_in;

/* Provenance keys that identify the setup (model files, tokenizer, template,
 * dtype, kernel path): shards must agree on them (src/interp/run_settings.c). */
static int is_identity_key(const char *k) { return run_provenance_key_is_identity(k); }

static int same_file(const char *a, const char *b)
{
    struct stat x, y;
    if (stat(a, &x) || stat(b, &y)) return 0;
    return x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int clens_results_merge(const char *const *dirs, int n_dirs, const char *out_dir, char **warnings,
                        clens_error *err)
{
    if (warnings) *warnings = NULL;
    if (n_dirs < 1) return clens_err(err, CLENS_E_ARG, "no shard directories given");
    shard_in *sh = calloc((size_t)n_dirs, sizeof *sh);
    if (!sh) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    clens_sb warn = {0}, missing = {0};
    clens_results_input *in = NULL;
    char *merged_settings = NULL, *recs_text = NULL, *js = NULL, *md = NULL;
    size_t recs_len = 0;
    int *order = NULL;
    int rc = CLENS_OK;

    for (int i = 0; i < n_dirs && !rc; i++) {
        sh[i].dir = dirs[i];
        size_t len;
        rc = read_in(dirs[i], "settings.json", &sh[i].settings_text, &len, &sh[i].settings_path, err);
        if (rc) break;
        json_error_t je;
        sh[i].root = json_loads(sh[i].settings_text, JSON_REJECT_DUPLICATES, &je);
        if (!sh[i].root) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%d:%d: %s", sh[i].settings_path, je.line, je.column, je.text);
            break;
        }
        json_t *shard = json_object_get(sh[i].root, "shard");
        long long x, y;
        if (!json_is_object(shard) || get_int(shard, "count", 1, 1000000, &y) || get_int(shard, "index", 0, y - 1, &x)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: \"shard\": expected {\"index\": i, \"count\": n} with 0 <= i < n",
                           sh[i].settings_path);
            break;
        }
        sh[i].index = (int)x;
        sh[i].count = (int)y;
        if (!json_is_string(json_object_get(sh[i].root, "settings_hash")) ||
            !json_is_object(json_object_get(sh[i].root, "settings"))) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: expected \"settings_hash\" and \"settings\"", sh[i].settings_path);
            break;
        }
    }
    if (rc) goto done;

    /* One study: same settings_hash, same settings, same shard count, distinct indices, none missing. */
    const char *h0 = json_string_value(json_object_get(sh[0].root, "settings_hash"));
    for (int i = 1; i < n_dirs; i++) {
        const char *h = json_string_value(json_object_get(sh[i].root, "settings_hash"));
        if (strcmp(h, h0) || !json_equal(json_object_get(sh[i].root, "settings"), json_object_get(sh[0].root, "settings"))) {
            const json_t *s0 = json_object_get(sh[0].root, "settings"), *si = json_object_get(sh[i].root, "settings");
            const char *key = run_json_first_difference(s0, si);
            char *a = key ? run_json_brief(json_object_get(s0, key)) : NULL;
            char *c = key ? run_json_brief(json_object_get(si, key)) : NULL;
            rc = clens_err(err, CLENS_E_STATE,
                           "%s and %s belong to different studies (settings_hash %.12s vs %.12s)%s%s%s%s%s%s",
                           sh[0].settings_path, sh[i].settings_path, h0, h, key ? ": settings." : "",
                           key ? key : "", key ? " is " : "", a ? a : "", key ? " vs " : "", c ? c : "");
            free(a);
            free(c);
            goto done;
        }
        if (sh[i].count != sh[0].count) {
            rc = clens_err(err, CLENS_E_STATE, "%s is shard %d of %d but %s is shard %d of %d",
                           sh[0].settings_path, sh[0].index, sh[0].count, sh[i].settings_path, sh[i].index, sh[i].count);
            goto done;
        }
    }
    const int count = sh[0].count;
    order = malloc(sizeof(int) * (size_t)count);
    if (!order) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int k = 0; k < count; k++) order[k] = -1;
    for (int i = 0; i < n_dirs; i++) {
        if (order[sh[i].index] >= 0) {
            rc = clens_err(err, CLENS_E_STATE, "%s and %s are both shard %d of %d", sh[order[sh[i].index]].dir,
                           sh[i].dir, sh[i].index, count);
            goto done;
        }
        order[sh[i].index] = i;
    }
    int n_missing = 0;
    for (int k = 0; k < count; k++)
        if (order[k] < 0) clens_sb_printf(&missing, "%s%d", n_missing++ ? ", " : "", k);
    if (n_missing) {
        rc = clens_err(err, CLENS_E_STATE, "shard%s %s of %d missing (got %d director%s)", n_missing > 1 ? "s" : "",
                       missing.p ? missing.p : "?", count, n_dirs, n_dirs == 1 ? "y" : "ies");
        goto done;
    }

    /* Provenance: identity keys must agree; other differences are reported. */
    const shard_in *s0 = &sh[order[0]];
    json_t *p0 = json_object_get(s0->root, "provenance");
    for (int k = 1; k < count; k++) {
        const shard_in *s = &sh[order[k]];
        json_t *p = json_object_get(s->root, "provenance");
        if (!json_is_object(p0) || !json_is_object(p)) {
            if (!json_equal(p0, p) && (p0 || p)) {
                rc = clens_err(err, CLENS_E_STATE, "%s and %s: provenance missing in one", s0->settings_path,
                               s->settings_path);
                goto done;
            }
            continue;
        }
        const char *key;
        json_t *v;
        json_object_foreach(p0, key, v) {
            json_t *w = json_object_get(p, key);
            if (w && json_equal(v, w)) continue;
            if (is_identity_key(key)) {
                rc = clens_err(err, CLENS_E_STATE, "shard %d (%s) and shard %d (%s) ran different setups: provenance.%s differs",
                               s0->index, s0->dir, s->index, s->dir, key);
                goto done;
            }
            clens_sb_printf(&warn, "shard %d (%s): provenance.%s differs from shard 0's; results.json keeps shard 0's\n",
                            s->index, s->dir, key);
        }
        json_object_foreach(p, key, v) {
            if (json_object_get(p0, key)) continue;
            if (is_identity_key(key)) {
                rc = clens_err(err, CLENS_E_STATE, "shard %d (%s) and shard %d (%s) ran different setups: provenance.%s differs",
                               s0->index, s0->dir, s->index, s->dir, key);
                goto done;
            }
            clens_sb_printf(&warn, "shard %d (%s): provenance.%s is absent in shard 0\n", s->index, s->dir, key);
        }
    }

    /* Output dir: create it; never one of the inputs; never another study's. */
    if (mkdir(out_dir, 0777) && errno != EEXIST) {
        rc = clens_err(err, CLENS_E_IO, "%s: cannot create directory: %s", out_dir, strerror(errno));
        goto done;
    }
    for (int i = 0; i < n_dirs; i++)
        if (same_file(out_dir, sh[i].dir)) {
            rc = clens_err(err, CLENS_E_ARG, "the output directory %s is also an input shard", out_dir);
            goto done;
        }
    {
        char *op = clens_path_join(out_dir, "settings.json");
        if (!op) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        json_t *old = json_load_file(op, 0, NULL);
        int other = old && (!json_is_string(json_object_get(old, "settings_hash")) ||
                            strcmp(json_string_value(json_object_get(old, "settings_hash")), h0));
        json_decref(old);
        if (other) {
            rc = clens_err(err, CLENS_E_STATE, "%s: holds a different study (settings_hash differs); refusing to overwrite", op);
            free(op);
            goto done;
        }
        free(op);
    }

    /* Merged settings: shard 0's, with shard {0, 1}. */
    {
        json_t *m = json_deep_copy(s0->root);
        json_t *shard = json_pack("{s:i,s:i}", "index", 0, "count", 1);
        if (!m || !shard || json_object_set_new(m, "shard", shard)) {
            json_decref(m);
            rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            goto done;
        }
        clens_sb t = {0};
        clens_sb_json_value_ordered(&t, m, 0); /* shard 0's key order */
        clens_sb_puts(&t, "\n");
        json_decref(m);
        merged_settings = clens_sb_take(&t);
        if (!merged_settings) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    }
    rc = clens_results_input_new(&in, merged_settings, "merged settings.json", err);
    for (int k = 0; k < count && !rc; k++) {
        const shard_in *s = &sh[order[k]];
        char *data = NULL, *path = NULL;
        size_t len = 0;
        rc = read_in(s->dir, "records.jsonl", &data, &len, &path, err);
        if (!rc) rc = clens_results_input_add(in, data, len, path, s->index, s->count, err);
        free(data);
        free(path);
    }
    if (!rc) rc = clens_results_input_records_text(in, &recs_text, &recs_len, err);
    if (!rc) rc = clens_results_input_render(in, &js, &md, err);
    if (!rc) rc = write_out(out_dir, "settings.json", merged_settings, strlen(merged_settings), err);
    if (!rc) rc = write_out(out_dir, "records.jsonl", recs_text, recs_len, err);
    if (!rc) rc = write_out(out_dir, "results.json", js, strlen(js), err);
    if (!rc) rc = write_out(out_dir, "results.md", md, strlen(md), err);

done:
    if (!rc && warnings && warn.len) *warnings = clens_sb_take(&warn);
    clens_sb_free(&warn);
    clens_sb_free(&missing);
    clens_results_input_free(in);
    for (int i = 0; i < n_dirs; i++) {
        free(sh[i].settings_path);
        free(sh[i].settings_text);
        json_decref(sh[i].root);
    }
    free(sh);
    free(order);
    free(merged_settings);
    free(recs_text);
    free(js);
    free(md);
    return rc;
}
