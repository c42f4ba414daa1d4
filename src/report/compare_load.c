/*
 * compare_load.c: reads the inputs of `clens compare` into profiles
 * (docs/compare.md "Inputs"). Three kinds are recognised:
 *   - a `clens patch` run folder (settings.json + records.jsonl, schema in
 *     docs/patch-output.md): per-pair values are recomputed from the records,
 *     the first settings.n kept pairs in candidate order (rulings R13), so
 *     bootstrap CIs are possible and pairs.csv has clean / corr / patched;
 *   - a results.json (a file, or a folder with results.json but no records):
 *     the per-pair recoveries of its "pairs" list when present, else only the
 *     aggregates of layer_stats / sites;
 *   - the seed fixture data/seed_results.json ("format": "clens-seed-results"):
 *     published means only, one profile per model.
 * The profile's site is resid_pre if the run has it, else resid_post, whose
 * layer L is converted to resid_pre L + 1 (rulings R12).
 * This reader is independent of src/report/results_input.c on purpose: it needs
 * only the documented files, so it keeps working when the run engine moves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/infile.h"
#include "base/path.h"
#include "report/stats.h"
#include "report/compare_internal.h"

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static char *path_join(const char *a, const char *b) { return clens_path_join(a, b); }

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static json_t *load_json_file(const char *path, clens_error *err)
{
    json_error_t je;
    json_t *v = NULL;
    if (clens_json_load_regular(path, 0, &v, &je, err)) return NULL;
    return v;
}

void cmp_model_clear(cmp_model *m)
{
    free(m->source); free(m->label); free(m->training); free(m->mode); free(m->metric);
    free(m->site_type); free(m->layer); free(m->layer_pre); free(m->depth); free(m->mean);
    free(m->sd); free(m->n_samples); free(m->ci_lo); free(m->ci_hi); free(m->step);
    for (int i = 0; i < m->n_pairs; i++) free(m->pair_id ? m->pair_id[i] : NULL);
    free(m->pair_id); free(m->pair_D); free(m->rec); free(m->def);
    for (int t = 0; t < m->n_types; t++) { free(m->types[t].name); free(m->types[t].layers); free(m->types[t].z_mean); }
    free(m->types);
    json_decref(m->records); json_decref(m->settings); json_decref(m->provenance);
    json_decref(m->behaviour); json_decref(m->notes);
    free(m->seed_label); free(m->published_delta);
    memset(m, 0, sizeof *m);
}

/* Allocates the per-point arrays of m for n points. */
static int alloc_points(cmp_model *m, int n)
{
    m->n_pts = n;
    m->layer = calloc((size_t)n, sizeof *m->layer);
    m->layer_pre = calloc((size_t)n, sizeof *m->layer_pre);
    m->depth = calloc((size_t)n, sizeof *m->depth);
    m->mean = calloc((size_t)n, sizeof *m->mean);
    m->sd = calloc((size_t)n, sizeof *m->sd);
    m->n_samples = calloc((size_t)n, sizeof *m->n_samples);
    m->ci_lo = calloc((size_t)n, sizeof *m->ci_lo);
    m->ci_hi = calloc((size_t)n, sizeof *m->ci_hi);
    m->step = calloc((size_t)n, sizeof *m->step);
    if (!m->layer || !m->layer_pre || !m->depth || !m->mean || !m->sd || !m->n_samples ||
        !m->ci_lo || !m->ci_hi || !m->step)
        return -1;
    for (int i = 0; i < n; i++) m->mean[i] = m->sd[i] = m->ci_lo[i] = m->ci_hi[i] = NAN;
    return 0;
}

/* Applies "INPUT=VALUE" overrides: key matches the source as given or its basename. */
static const char *override(const char *const *list, int n, const char *source)
{
    const char *base = strrchr(source, '/');
    base = base && base[1] ? base + 1 : source;
    const char *found = NULL;
    for (int i = 0; i < n; i++) {
        const char *eq = strrchr(list[i], '=');
        if (!eq) continue;
        size_t k = (size_t)(eq - list[i]);
        if ((strlen(source) == k && strncmp(list[i], source, k) == 0) ||
            (strlen(base) == k && strncmp(list[i], base, k) == 0))
            found = eq + 1;
    }
    return found;
}

/* Label, training regime and mode from settings (or defaults), then overrides. */
static int name_model(cmp_set *s, cmp_model *m, const char *fallback_label)
{
    const char *label = NULL, *training = NULL;
    if (m->settings) {
        label = json_string_value(json_object_get(m->settings, "label"));
        training = json_string_value(json_object_get(m->settings, "training"));
    }
    if (!label) label = fallback_label;
    const char *o = override(s->p.labels, s->p.n_labels, m->source);
    if (o) label = o;
    o = override(s->p.trainings, s->p.n_trainings, m->source);
    if (o) training = o;
    free(m->label); free(m->training);
    m->label = xstrdup(label ? label : m->source);
    m->training = xstrdup(training ? training : "unspecified");
    if (!m->mode && m->settings) {
        const char *fid = json_string_value(json_object_get(m->settings, "fidelity"));
        const char *filter = json_string_value(json_object_get(m->settings, "filter"));
        const char *prompt = json_string_value(json_object_get(m->settings, "prompt"));
        char buf[512];
        snprintf(buf, sizeof buf, "%s (metric %s, filter %s, prompt %s, site %s)",
                 fid && strcmp(fid, "seed") == 0 ? "seed fidelity (--fidelity seed)"
                 : fid ? fid : "clens default",
                 m->metric ? m->metric : "?", filter ? filter : "?", prompt ? prompt : "?",
                 m->site_type ? m->site_type : "?");
        m->mode = xstrdup(buf);
    }
    return m->label && m->training ? 0 : -1;
}

static cmp_model *new_model(cmp_set *s, cmp_kind kind, const char *source)
{
    cmp_model *nm = realloc(s->m, (size_t)(s->n_models + 1) * sizeof *nm);
    if (!nm) return NULL;
    s->m = nm;
    cmp_model *m = &s->m[s->n_models++];
    memset(m, 0, sizeof *m);
    m->kind = kind;
    m->source = xstrdup(source);
    m->z_index = -1;
    m->crit_idx = m->peak_idx = -1;
    return m;
}

/* Sets layer / layer_pre / depth of point i. */
static void set_point(cmp_model *m, int i, int layer)
{
    m->layer[i] = layer;
    m->layer_pre[i] = layer + m->offset;
    m->depth[i] = (double)m->layer_pre[i] / (double)m->n_layers;
}

/* The profile site type of a run: resid_pre if present, else resid_post. */
static const char *profile_type(json_t *site_types)
{
    const char *found = NULL;
    size_t i;
    json_t *v;
    json_array_foreach(site_types, i, v) {
        const char *t = json_string_value(v);
        if (t && strcmp(t, "resid_pre") == 0) return "resid_pre";
        if (t && strcmp(t, "resid_post") == 0) found = "resid_post";
    }
    return found;
}

static int n_layers_of(json_t *provenance, const char *src, int *out, clens_error *err)
{
    json_t *v = json_object_get(provenance, "n_layers");
    if (!json_is_integer(v) || json_integer_value(v) < 1)
        return clens_err(err, CLENS_E_FORMAT, "%s: provenance.n_layers missing (needed for relative depth)", src);
    *out = (int)json_integer_value(v);
    return 0;
}

/* ------------------------------------------------------------ seed fixture */

static int load_seed(cmp_set *s, json_t *root, const char *src, clens_error *err)
{
    const char *site = json_string_value(json_object_get(root, "site_type"));
    const char *metric = json_string_value(json_object_get(root, "metric"));
    const char *mode = json_string_value(json_object_get(root, "mode"));
    json_t *models = json_object_get(root, "models");
    if (!site || !json_is_array(models) || json_array_size(models) == 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: seed fixture needs site_type and models", src);
    if (strcmp(site, "resid_post") != 0 && strcmp(site, "resid_pre") != 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: site_type '%s' is not resid_pre or resid_post", src, site);
    size_t k;
    json_t *jm;
    json_array_foreach(models, k, jm) {
        char source[4096];
        snprintf(source, sizeof source, "%s#%zu", src, k + 1);
        cmp_model *m = new_model(s, CMP_SEED, source);
        if (!m) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        m->site_type = xstrdup(site);
        m->metric = xstrdup(metric ? metric : "?");
        m->mode = xstrdup(mode ? mode : "published seed results");
        m->offset = strcmp(site, "resid_post") == 0;
        json_t *layers = json_object_get(jm, "layers"), *means = json_object_get(jm, "mean_recovery");
        json_t *pd = json_object_get(jm, "published_delta");
        json_t *nl = json_object_get(jm, "n_layers"), *np = json_object_get(jm, "n_pairs");
        if (!json_is_array(layers) || !json_is_array(means) || json_array_size(layers) != json_array_size(means) ||
            json_array_size(layers) < 2 || !json_is_integer(nl))
            return clens_err(err, CLENS_E_FORMAT, "%s: model %zu needs layers, mean_recovery (same length, >= 2) and n_layers",
                             src, k + 1);
        m->n_layers = (int)json_integer_value(nl);
        m->n_pairs = 0;
        if (alloc_points(m, (int)json_array_size(layers))) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        m->published_delta = calloc((size_t)m->n_pts, sizeof *m->published_delta);
        if (!m->published_delta) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        for (int i = 0; i < m->n_pts; i++) {
            json_t *l = json_array_get(layers, (size_t)i), *v = json_array_get(means, (size_t)i);
            if (!json_is_integer(l) || !json_is_number(v))
                return clens_err(err, CLENS_E_FORMAT, "%s: model %zu point %d is not a number", src, k + 1, i);
            set_point(m, i, (int)json_integer_value(l));
            m->mean[i] = json_number_value(v);
            m->n_samples[i] = json_is_integer(np) ? (int)json_integer_value(np) : 0;
            json_t *d = json_array_get(pd, (size_t)i);
            m->published_delta[i] = json_is_number(d) ? json_number_value(d) : NAN;
        }
        m->settings = json_deep_copy(jm);
        json_object_del(m->settings, "layers");
        json_object_del(m->settings, "mean_recovery");
        json_object_del(m->settings, "published_delta");
        json_object_set_new(m->settings, "site_type", json_string(site));
        json_object_set_new(m->settings, "metric", json_string(m->metric));
        json_t *notes = json_object_get(jm, "notes");
        if (notes) m->notes = json_incref(notes);
        m->seed_label = xstrdup(json_string_value(json_object_get(jm, "seed_label")));
        m->provenance = json_pack("{s:s, s:O?}", "source", json_string_value(json_object_get(root, "source")) ?
                                  json_string_value(json_object_get(root, "source")) : src,
                                  "fixture_notes", json_object_get(root, "notes"));
        if (name_model(s, m, json_string_value(json_object_get(jm, "label"))))
            return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------- run folder */

typedef struct rec_ref { long cand; json_t *rec; int line; } rec_ref;

static int cmp_cand(const void *a, const void *b)
{
    const rec_ref *x = a, *y = b;
    return (x->cand > y->cand) - (x->cand < y->cand);
}

/* The number value of v, or NAN for null / non-numbers. */
static double num_or_nan(json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

/* Builds m->types from settings (layers per type). */
static int read_types(cmp_model *m, json_t *settings, const char *src, clens_error *err)
{
    json_t *st = json_object_get(settings, "site_types"), *layers = json_object_get(settings, "layers");
    if (!json_is_array(st) || !json_is_object(layers))
        return clens_err(err, CLENS_E_FORMAT, "%s: settings.site_types / settings.layers missing", src);
    m->n_types = (int)json_array_size(st);
    m->types = calloc((size_t)m->n_types, sizeof *m->types);
    if (!m->types) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    json_t *nh = json_object_get(settings, "n_heads");
    m->n_heads = json_is_integer(nh) ? (int)json_integer_value(nh) : 0;
    for (int t = 0; t < m->n_types; t++) {
        const char *name = json_string_value(json_array_get(st, (size_t)t));
        json_t *ls = name ? json_object_get(layers, name) : NULL;
        if (!json_is_array(ls))
            return clens_err(err, CLENS_E_FORMAT, "%s: settings.layers has no list for site type %s", src, name ? name : "?");
        cmp_sitetype *ty = &m->types[t];
        ty->name = xstrdup(name);
        ty->n_layers = (int)json_array_size(ls);
        ty->layers = calloc((size_t)(ty->n_layers ? ty->n_layers : 1), sizeof *ty->layers);
        if (!ty->name || !ty->layers) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        for (int i = 0; i < ty->n_layers; i++) ty->layers[i] = (int)json_integer_value(json_array_get(ls, (size_t)i));
        { clens_hook_point pt; ty->is_z = !clens_hook_short_parse(name, &pt, NULL) && clens_hook_per_head(pt); }
        if (ty->is_z) {
            if (m->n_heads < 1) return clens_err(err, CLENS_E_FORMAT, "%s: site type z needs settings.n_heads", src);
            m->z_index = t;
        }
    }
    return 0;
}

/* Fills the profile points and per-pair arrays of m from the pairs' values at
 * the profile type: value(i, j) gives (rec, defined) of pair i at point j. */
static int alloc_pairs(cmp_model *m, int n_pairs)
{
    m->n_pairs = n_pairs;
    size_t np = (size_t)(n_pairs ? n_pairs : 1), cells = np * (size_t)m->n_pts;
    m->pair_id = calloc(np, sizeof *m->pair_id);
    m->pair_D = calloc(np, sizeof *m->pair_D);
    m->rec = calloc(cells, sizeof *m->rec);
    m->def = calloc(cells, 1);
    return m->pair_id && m->pair_D && m->rec && m->def ? 0 : -1;
}

static char *id_string(json_t *rec, long cand)
{
    json_t *id = json_object_get(rec, "id");
    char buf[64];
    if (json_is_string(id)) return xstrdup(json_string_value(id));
    if (json_is_integer(id)) { snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(id)); return xstrdup(buf); }
    snprintf(buf, sizeof buf, "candidate-%ld", cand);
    return xstrdup(buf);
}

static int load_run(cmp_set *s, const char *dir, clens_error *err)
{
    char *sp = path_join(dir, "settings.json"), *rp = path_join(dir, "records.jsonl");
    char *resp = path_join(dir, "results.json");
    char *text = NULL;
    size_t len = 0;
    json_t *root = NULL, *kept = NULL;
    rec_ref *refs = NULL;
    int nrefs = 0, rc = 0;
    if (!sp || !rp || !resp) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    root = load_json_file(sp, err);
    if (!root) { rc = err ? err->code : CLENS_E_FORMAT; goto done; }
    json_t *settings = json_object_get(root, "settings");
    if (!json_is_object(settings)) { rc = clens_err(err, CLENS_E_FORMAT, "%s: no \"settings\" object", sp); goto done; }
    const char *metric = json_string_value(json_object_get(settings, "metric"));
    const char *ptype = profile_type(json_object_get(settings, "site_types"));
    if (!metric) { rc = clens_err(err, CLENS_E_FORMAT, "%s: settings.metric missing", sp); goto done; }
    if (!ptype) { rc = clens_err(err, CLENS_E_FORMAT, "%s: the run has no resid_pre or resid_post site type: no profile", sp); goto done; }
    json_t *nj = json_object_get(settings, "n");
    long n_target = json_is_integer(nj) ? (long)json_integer_value(nj) : 0x7fffffffL;

    cmp_model *m = new_model(s, CMP_RUN, dir);
    if (!m) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    m->settings = json_incref(settings);
    m->provenance = json_incref(json_object_get(root, "provenance"));
    if (m->provenance && json_is_null(m->provenance)) { json_decref(m->provenance); m->provenance = NULL; }
    m->metric = xstrdup(metric);
    m->site_type = xstrdup(ptype);
    m->offset = strcmp(ptype, "resid_post") == 0;
    if ((rc = n_layers_of(m->provenance, sp, &m->n_layers, err))) goto done;
    if ((rc = read_types(m, settings, sp, err))) goto done;
    int pt = 0;
    while (strcmp(m->types[pt].name, ptype) != 0) pt++;
    if (alloc_points(m, m->types[pt].n_layers)) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    for (int j = 0; j < m->n_pts; j++) set_point(m, j, m->types[pt].layers[j]);

    /* records: parse, sort by candidate, keep the first n kept */
    if ((rc = clens_read_file(rp, &text, &len, err))) goto done;
    int line = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            json_error_t je;
            json_t *r = json_loads(p, 0, &je);
            if (!r || !json_is_object(r) || !json_is_integer(json_object_get(r, "candidate"))) {
                json_decref(r);
                rc = clens_err(err, CLENS_E_FORMAT, "%s:%d: not a record (%s)", rp, line, r ? "no candidate" : je.text);
                goto done;
            }
            rec_ref *nr = realloc(refs, (size_t)(nrefs + 1) * sizeof *nr);
            if (!nr) { json_decref(r); rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
            refs = nr;
            refs[nrefs].cand = (long)json_integer_value(json_object_get(r, "candidate"));
            refs[nrefs].rec = r;
            refs[nrefs].line = line;
            nrefs++;
        }
        p = nl ? nl + 1 : NULL;
    }
    qsort(refs, (size_t)nrefs, sizeof *refs, cmp_cand);
    for (int i = 1; i < nrefs; i++)
        if (refs[i].cand == refs[i - 1].cand) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s:%d: candidate %ld recorded twice (also line %d)", rp,
                           refs[i].line, refs[i].cand, refs[i - 1].line);
            goto done;
        }
    kept = json_array();
    for (int i = 0; i < nrefs && (long)json_array_size(kept) < n_target; i++) {
        const char *st = json_string_value(json_object_get(refs[i].rec, "status"));
        if (st && strcmp(st, "kept") == 0) json_array_append(kept, refs[i].rec);
    }
    int np = (int)json_array_size(kept);
    if (np == 0) { rc = clens_err(err, CLENS_E_FORMAT, "%s: no kept pairs", rp); goto done; }
    if (alloc_pairs(m, np)) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    cmp_sitetype *zt = m->z_index >= 0 ? &m->types[m->z_index] : NULL;
    double *zsum = NULL;
    int *zcnt = NULL;
    if (zt) {
        size_t cells = (size_t)zt->n_layers * (size_t)m->n_heads;
        zt->z_mean = calloc(cells ? cells : 1, sizeof *zt->z_mean);
        zsum = calloc(cells ? cells : 1, sizeof *zsum);
        zcnt = calloc(cells ? cells : 1, sizeof *zcnt);
        if (!zt->z_mean || !zsum || !zcnt) { free(zsum); free(zcnt); rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    }
    for (int i = 0; i < np && !rc; i++) {
        json_t *r = json_array_get(kept, (size_t)i);
        long cand = (long)json_integer_value(json_object_get(r, "candidate"));
        json_t *mm = json_object_get(json_object_get(r, "metrics"), metric);
        json_t *pat = json_object_get(mm, "patched");
        json_t *vals = json_object_get(pat, ptype);
        double clean = num_or_nan(json_object_get(mm, "clean")), corr = num_or_nan(json_object_get(mm, "corr"));
        if (!json_is_array(vals) || (int)json_array_size(vals) != m->n_pts || isnan(clean) || isnan(corr)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: candidate %ld: metrics.%s needs clean, corr and patched.%s with %d values",
                           rp, cand, metric, ptype, m->n_pts);
            break;
        }
        m->pair_id[i] = id_string(r, cand);
        m->pair_D[i] = clean - corr;
        if (json_is_object(json_object_get(r, "final_tokens"))) m->has_tokens = 1;
        for (int j = 0; j < m->n_pts; j++) {
            double v = num_or_nan(json_array_get(vals, (size_t)j)), out = 0;
            int ok = !isnan(v) && clens_recovery(v, clean, corr, &out);
            m->rec[(size_t)i * (size_t)m->n_pts + (size_t)j] = ok ? out : 0;
            m->def[(size_t)i * (size_t)m->n_pts + (size_t)j] = (unsigned char)ok;
        }
        if (zt) {
            json_t *zv = json_object_get(pat, "z");
            for (int l = 0; l < zt->n_layers; l++) {
                json_t *row = json_array_get(zv, (size_t)l);
                for (int h = 0; h < m->n_heads; h++) {
                    double v = num_or_nan(json_array_get(row, (size_t)h)), out = 0;
                    if (!isnan(v) && clens_recovery(v, clean, corr, &out)) {
                        zsum[(size_t)l * (size_t)m->n_heads + (size_t)h] += out;
                        zcnt[(size_t)l * (size_t)m->n_heads + (size_t)h]++;
                    }
                }
            }
        }
    }
    if (zt) {
        for (size_t c = 0; c < (size_t)zt->n_layers * (size_t)m->n_heads; c++)
            zt->z_mean[c] = zcnt[c] ? zsum[c] / zcnt[c] : NAN;
        free(zsum); free(zcnt);
    }
    if (rc) goto done;
    m->records = kept;
    kept = NULL;
    /* behaviour from results.json if present */
    if (file_exists(resp)) {
        clens_error e2 = {0};
        json_t *res = load_json_file(resp, &e2);
        json_t *b = res ? json_object_get(res, "behaviour") : NULL;
        if (b) m->behaviour = json_incref(b);
        json_decref(res);
    }
    if (!m->behaviour && json_object_get(settings, "behaviour"))
        m->behaviour = json_incref(json_object_get(settings, "behaviour"));
    {   /* default label: the last component of settings.model ("/m/qwen/" -> "qwen") */
        const char *model = json_string_value(json_object_get(settings, "model"));
        char lab[1024];
        snprintf(lab, sizeof lab, "%s", model ? model : dir);
        size_t ll = strlen(lab);
        while (ll > 1 && lab[ll - 1] == '/') lab[--ll] = 0;
        const char *base = strrchr(lab, '/');
        if (name_model(s, m, base && base[1] ? base + 1 : lab)) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    }
done:
    for (int i = 0; i < nrefs; i++) json_decref(refs[i].rec);
    free(refs);
    json_decref(kept);
    json_decref(root);
    free(text); free(sp); free(rp); free(resp);
    return rc;
}

/* ----------------------------------------------------------- results.json */

static int load_results(cmp_set *s, json_t *root, const char *src, clens_error *err)
{
    json_t *settings = json_object_get(root, "settings");
    const char *primary = json_string_value(json_object_get(root, "site_type"));
    const char *ptype = NULL;
    json_t *stats = NULL;
    if (primary && (strcmp(primary, "resid_pre") == 0 || strcmp(primary, "resid_post") == 0)) {
        ptype = primary;
        stats = json_object_get(root, "layer_stats");
    } else {
        json_t *sites = json_object_get(root, "sites");
        if (json_object_get(sites, "resid_pre")) ptype = "resid_pre";
        else if (json_object_get(sites, "resid_post")) ptype = "resid_post";
        stats = ptype ? json_object_get(sites, ptype) : NULL;
    }
    if (!ptype || !json_is_object(stats))
        return clens_err(err, CLENS_E_FORMAT, "%s: no resid_pre or resid_post statistics (layer_stats / sites)", src);
    cmp_model *m = new_model(s, CMP_RESULTS, src);
    if (!m) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (json_is_object(settings)) m->settings = json_incref(settings);
    json_t *prov = json_object_get(root, "provenance");
    if (json_is_object(prov)) m->provenance = json_incref(prov);
    json_t *b = json_object_get(root, "behaviour");
    if (b) m->behaviour = json_incref(b);
    const char *metric = json_string_value(json_object_get(root, "metric"));
    m->metric = xstrdup(metric ? metric : "?");
    m->site_type = xstrdup(ptype);
    m->offset = strcmp(ptype, "resid_post") == 0;
    int rc = n_layers_of(m->provenance, src, &m->n_layers, err);
    if (rc) return rc;
    /* point order: settings.layers[ptype] if present, else the numeric keys sorted */
    json_t *ls = json_object_get(json_object_get(settings, "layers"), ptype);
    int n = json_is_array(ls) ? (int)json_array_size(ls) : (int)json_object_size(stats);
    if (n < 1) return clens_err(err, CLENS_E_FORMAT, "%s: empty %s statistics", src, ptype);
    if (alloc_points(m, n)) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (json_is_array(ls)) {
        for (int j = 0; j < n; j++) set_point(m, j, (int)json_integer_value(json_array_get(ls, (size_t)j)));
    } else {
        const char *key;
        json_t *v;
        int j = 0;
        json_object_foreach(stats, key, v) set_point(m, j++, atoi(key));
        for (int a = 1; a < n; a++) /* insertion sort by layer */
            for (int c = a; c > 0 && m->layer[c] < m->layer[c - 1]; c--) {
                int t = m->layer[c]; m->layer[c] = m->layer[c - 1]; m->layer[c - 1] = t;
            }
        for (int q = 0; q < n; q++) set_point(m, q, m->layer[q]);
    }
    for (int j = 0; j < n; j++) {
        char key[32];
        snprintf(key, sizeof key, "%d", m->layer[j]);
        json_t *e = json_object_get(stats, key);
        if (!e) return clens_err(err, CLENS_E_FORMAT, "%s: %s has no entry for layer %s", src, ptype, key);
        m->mean[j] = num_or_nan(json_object_get(e, "mean_recovery"));
        m->sd[j] = num_or_nan(json_object_get(e, "std_recovery"));
        json_t *ns = json_object_get(e, "n_samples");
        m->n_samples[j] = json_is_integer(ns) ? (int)json_integer_value(ns) : 0;
    }
    /* per-pair recoveries when results.json lists them */
    json_t *pairs = json_object_get(root, "pairs");
    int usable = json_is_array(pairs) && json_array_size(pairs) > 0;
    size_t i;
    json_t *p;
    json_array_foreach(pairs, i, p) {
        json_t *r = json_object_get(json_object_get(p, "recovery"), ptype);
        if (!json_is_array(r) || (int)json_array_size(r) != n) usable = 0;
    }
    if (usable) {
        if (alloc_pairs(m, (int)json_array_size(pairs))) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        json_array_foreach(pairs, i, p) {
            json_t *r = json_object_get(json_object_get(p, "recovery"), ptype);
            long cand = json_is_integer(json_object_get(p, "candidate")) ? (long)json_integer_value(json_object_get(p, "candidate")) : (long)i;
            m->pair_id[i] = id_string(p, cand);
            m->pair_D[i] = num_or_nan(json_object_get(p, "D"));
            for (int j = 0; j < n; j++) {
                double v = num_or_nan(json_array_get(r, (size_t)j));
                m->rec[i * (size_t)n + (size_t)j] = isnan(v) ? 0 : v;
                m->def[i * (size_t)n + (size_t)j] = !isnan(v);
            }
        }
        m->records = json_incref(pairs);
    }
    const char *model = json_string_value(json_object_get(root, "model"));
    return name_model(s, m, model ? model : src) ? clens_err(err, CLENS_E_NOMEM, "out of memory") : 0;
}

int cmp_load_input(cmp_set *s, const char *input, clens_error *err)
{
    if (is_dir(input)) {
        char *rp = path_join(input, "records.jsonl"), *sp = path_join(input, "settings.json");
        char *resp = path_join(input, "results.json");
        int rc;
        if (!rp || !sp || !resp) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        else if (file_exists(rp) && file_exists(sp)) rc = load_run(s, input, err);
        else if (file_exists(resp)) {
            json_t *root = load_json_file(resp, err);
            rc = root ? load_results(s, root, resp, err) : CLENS_E_FORMAT;
            json_decref(root);
        } else
            rc = clens_err(err, CLENS_E_IO, "%s: neither settings.json + records.jsonl nor results.json", input);
        free(rp); free(sp); free(resp);
        return rc;
    }
    struct stat sb; /* a FIFO or device is named as such by the regular-file loader below */
    if (stat(input, &sb) != 0) return clens_err(err, CLENS_E_IO, "%s: no such file or folder", input);
    json_t *root = load_json_file(input, err);
    if (!root) return CLENS_E_FORMAT;
    int rc;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    if (fmt && strcmp(fmt, "clens-seed-results") == 0) rc = load_seed(s, root, input, err);
    else if (json_object_get(root, "layer_stats") || json_object_get(root, "sites")) rc = load_results(s, root, input, err);
    else rc = clens_err(err, CLENS_E_FORMAT, "%s: not a results.json (no layer_stats) nor a seed fixture (format)", input);
    json_decref(root);
    return rc;
}
