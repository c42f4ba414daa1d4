/*
 * study_file.c: the study file of `clens study` (docs/study.md): parsing and
 * checking every key, the fidelity preset, and the canonical settings whose
 * hash identifies a study folder.
 *
 * Unknown keys are errors (a misspelt "min_dif" would otherwise silently run
 * the default). The fidelity preset "seed" sets every choice of the seed
 * study at once; a key the file sets to something else is refused, naming
 * the key, rather than letting either side win silently. The canonical
 * settings spell out every default, so a study written before a default
 * changes is refused on resume instead of mixing two protocols.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "base/infile.h"
#include "interp/study_internal.h"

/* ------------------------------------------------------- the seed preset */

/* Every choice of the seed study (docs/study.md, "fidelity"), as study-file
 * keys: "pairs.x" is key x of the "pairs" object. */
static json_t *seed_preset(void)
{
    return json_pack("{s:s, s:[s], s:s, s:s, s:n, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:i}",
                     "prompt", "raw", "sites", "resid_post", "layers", "every-2", "metric", "logit_mean",
                     "tokens", "filter", "seed", "min_diff", 3,
                     "pairs.mode", "on-policy", "pairs.site", "seed", "pairs.corrupt", "plus-one",
                     "pairs.cut", "chars-raw:20", "pairs.gen_prompt", "raw", "pairs.max_new", 512);
}

static int values_equal(const json_t *a, const json_t *b)
{
    if (json_is_number(a) && json_is_number(b)) return json_number_value(a) == json_number_value(b);
    return json_equal((json_t *)a, (json_t *)b);
}

/* Sets the preset's keys in root (a copy of the file), refusing a different value. */
static int apply_seed_preset(json_t *root, const char *path, clens_error *err)
{
    json_t *preset = seed_preset(), *v;
    const char *key;
    int rc = CLENS_OK;
    if (!preset) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    json_t *pairs = json_object_get(root, "pairs");
    if (!pairs) {
        pairs = json_object();
        json_object_set_new(root, "pairs", pairs);
    }
    json_object_foreach(preset, key, v) {
        json_t *obj = root;
        const char *k = key;
        if (strncmp(key, "pairs.", 6) == 0) {
            if (!json_is_object(pairs)) break; /* reported by the parser */
            obj = pairs;
            k = key + 6;
        }
        json_t *have = json_object_get(obj, k);
        if (have && !values_equal(have, v)) {
            char *a = json_dumps(have, JSON_ENCODE_ANY | JSON_COMPACT), *b = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
            rc = clens_err(err, CLENS_E_ARG, "%s: %s is %s, but fidelity \"seed\" sets it to %s (remove the key or "
                           "use fidelity \"clens-default\")", path, key, a ? a : "?", b ? b : "?");
            free(a);
            free(b);
            break;
        }
        json_object_set(obj, k, v);
    }
    json_decref(preset);
    return rc;
}

/* ------------------------------------------------------------ key access */

static int check_keys(const json_t *obj, const char *const *allowed, const char *where, const char *path,
                      clens_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++) ok |= strcmp(allowed[i], key) == 0;
        if (!ok) return clens_err(err, CLENS_E_FORMAT, "%s: unknown key %s%s (docs/study.md lists the keys)", path, where, key);
    }
    return CLENS_OK;
}

/* String value of obj[key] (def if absent) among allowed (NULL: any non-empty). */
static int get_str(const json_t *obj, const char *key, const char *where, const char *def, const char *const *allowed,
                   const char *path, char **out, clens_error *err)
{
    json_t *v = json_object_get(obj, key);
    const char *s = def;
    if (v) {
        if (!json_is_string(v) || !json_string_value(v)[0])
            return clens_err(err, CLENS_E_FORMAT, "%s: %s%s: expected a non-empty string", path, where, key);
        s = json_string_value(v);
    }
    if (!s) return clens_err(err, CLENS_E_FORMAT, "%s: %s%s is required", path, where, key);
    if (allowed) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++) ok |= strcmp(allowed[i], s) == 0;
        if (!ok) {
            char list[256] = "";
            for (int i = 0; allowed[i]; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", allowed[i]);
            return clens_err(err, CLENS_E_FORMAT, "%s: %s%s is \"%s\"; expected one of %s", path, where, key, s, list);
        }
    }
    free(*out);
    *out = strdup(s);
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
}

static int get_int(const json_t *obj, const char *key, const char *where, long def, long lo, long hi,
                   const char *path, long *out, clens_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) { *out = def; return CLENS_OK; }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return clens_err(err, CLENS_E_FORMAT, "%s: %s%s: expected an integer in [%ld, %ld]", path, where, key, lo, hi);
    *out = (long)json_integer_value(v);
    return CLENS_OK;
}

/* ------------------------------------------------------------- sections */

static const char *const trainings[] = {"distilled", "RL", "SFT", "RL-after-SFT", "other", NULL};

static int parse_models(clens_study *s, const json_t *arr, const char *path, clens_error *err)
{
    static const char *const keys[] = {"label", "model", "training", "notes", NULL};
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: models: expected a non-empty array of objects", path);
    size_t n = json_array_size(arr);
    if (n > 1000) return clens_err(err, CLENS_E_FORMAT, "%s: models: at most 1000 models", path);
    s->models = calloc(n, sizeof *s->models);
    if (!s->models) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    s->n_models = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_array_get(arr, i);
        study_model *m = &s->models[i];
        char where[64];
        snprintf(where, sizeof where, "models[%zu].", i);
        if (!json_is_object(o)) return clens_err(err, CLENS_E_FORMAT, "%s: models[%zu]: expected an object", path, i);
        int rc;
        if ((rc = check_keys(o, keys, where, path, err)) || (rc = get_str(o, "model", where, NULL, NULL, path, &m->model, err)) ||
            (rc = get_str(o, "training", where, "other", trainings, path, &m->training, err)))
            return rc;
        /* the label defaults to the model folder's last component */
        const char *base = strrchr(m->model, '/');
        char defl[256];
        snprintf(defl, sizeof defl, "%s", base && base[1] ? base + 1 : m->model);
        if ((rc = get_str(o, "label", where, defl, NULL, path, &m->label, err))) return rc;
        json_t *notes = json_object_get(o, "notes");
        if (notes && !json_is_string(notes))
            return clens_err(err, CLENS_E_FORMAT, "%s: %snotes: expected a string", path, where);
        m->notes = strdup(notes ? json_string_value(notes) : "");
        m->slug = strdup(m->label);
        if (!m->notes || !m->slug) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        if (strchr(m->label, '=') || strlen(m->label) > 200)
            return clens_err(err, CLENS_E_FORMAT, "%s: %slabel \"%s\": no '=' and at most 200 bytes", path, where,
                             m->label);
        for (char *c = m->slug; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && *c != '_') *c = '_';
        if (m->slug[0] == '.') m->slug[0] = '_';
        for (size_t j = 0; j < i; j++)
            if (strcmp(s->models[j].slug, m->slug) == 0)
                return clens_err(err, CLENS_E_FORMAT, "%s: models[%zu] and models[%zu] have the same folder name \"%s\" "
                                 "(labels must differ in letters, digits, '.', '-' or '_')", path, j, i, m->slug);
    }
    return CLENS_OK;
}

static int parse_pairs(clens_study *s, const json_t *p, const char *path, clens_error *err)
{
    static const char *const keys[] = {"mode", "file", "data", "format", "limit", "cut", "corrupt", "site",
                                       "max_new", "batch", "pool", "gen_prompt", NULL};
    static const char *const modes[] = {"file", "build", "on-policy", NULL};
    static const char *const formats[] = {"math", "gsm8k", NULL};
    static const char *const corrupts[] = {"last-digit", "plus-one", NULL};
    static const char *const sites[] = {"random", "last", "seed", NULL};
    static const char *const gens[] = {"raw", "chat", NULL};
    const char *w = "pairs.";
    if (!json_is_object(p)) return clens_err(err, CLENS_E_FORMAT, "%s: pairs: expected an object", path);
    char *mode = NULL, *gen = NULL;
    long x;
    int rc;
    if ((rc = check_keys(p, keys, w, path, err)) || (rc = get_str(p, "mode", w, NULL, modes, path, &mode, err)))
        goto end;
    s->pairs_mode = strcmp(mode, "file") == 0 ? STUDY_PAIRS_FILE : strcmp(mode, "build") == 0 ? STUDY_PAIRS_BUILD
                                                                                              : STUDY_PAIRS_ON_POLICY;
    if (s->pairs_mode == STUDY_PAIRS_FILE) {
        const char *other[] = {"data", "format", "limit", "cut", "corrupt", "site", "max_new", "batch", "pool", "gen_prompt"};
        for (size_t i = 0; i < sizeof other / sizeof *other; i++)
            if (json_object_get(p, other[i])) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: pairs.%s: not used with pairs.mode \"file\"", path, other[i]);
                goto end;
            }
        rc = get_str(p, "file", w, NULL, NULL, path, &s->pairs_file, err);
        goto end;
    }
    if (json_object_get(p, "file")) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: pairs.file: only with pairs.mode \"file\"", path);
        goto end;
    }
    clens_pairs_params pp = clens_pairs_default_params();
    clens_error e2 = {0};
    if ((rc = get_str(p, "data", w, NULL, NULL, path, &s->data, err)) ||
        (rc = get_str(p, "format", w, NULL, formats, path, &s->format, err)) ||
        (rc = get_int(p, "limit", w, 0, 0, 1000000000L, path, &s->limit, err)) ||
        (rc = get_str(p, "cut", w, "line", NULL, path, &s->cut, err)) ||
        (rc = get_str(p, "corrupt", w, "last-digit", corrupts, path, &s->corrupt, err)) ||
        (rc = get_str(p, "site", w, "random", sites, path, &s->site, err)))
        goto end;
    if (clens_pairs_parse_cut(&pp, s->cut, &e2)) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: pairs.cut: %s", path, e2.msg);
        goto end;
    }
    if (s->pairs_mode == STUDY_PAIRS_BUILD) {
        const char *other[] = {"max_new", "batch", "pool", "gen_prompt"};
        for (size_t i = 0; i < sizeof other / sizeof *other; i++)
            if (json_object_get(p, other[i])) {
                rc = clens_err(err, CLENS_E_FORMAT, "%s: pairs.%s: only with pairs.mode \"on-policy\"", path, other[i]);
                goto end;
            }
        goto end;
    }
    if ((rc = get_int(p, "max_new", w, 512, 1, 100000, path, &x, err))) goto end;
    s->max_new = (int)x;
    if ((rc = get_int(p, "batch", w, 16, 1, 4096, path, &x, err))) goto end;
    s->batch = (int)x;
    if ((rc = get_int(p, "pool", w, 0, 0, 1000000000L, path, &s->pool, err)) ||
        (rc = get_str(p, "gen_prompt", w, "raw", gens, path, &gen, err)))
        goto end;
    s->gen_chat = strcmp(gen, "chat") == 0;
end:
    free(mode);
    free(gen);
    return rc;
}

static int parse_layers(clens_study *s, const json_t *v, const char *path, clens_error *err)
{
    if (!v || (json_is_string(v) && strcmp(json_string_value(v), "all") == 0)) {
        s->layers_kind = STUDY_LAYERS_ALL;
        return CLENS_OK;
    }
    if (json_is_string(v) && strcmp(json_string_value(v), "every-2") == 0) {
        s->layers_kind = STUDY_LAYERS_EVERY2;
        return CLENS_OK;
    }
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 100000)
        return clens_err(err, CLENS_E_FORMAT, "%s: layers: expected \"all\", \"every-2\" or a list of layer numbers", path);
    s->layers_kind = STUDY_LAYERS_LIST;
    s->n_layers = (int)json_array_size(v);
    s->layers = malloc(sizeof(int) * (size_t)s->n_layers);
    if (!s->layers) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n_layers; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 100000)
            return clens_err(err, CLENS_E_FORMAT, "%s: layers[%d]: expected a layer number >= 0", path, i);
        s->layers[i] = (int)json_integer_value(e);
    }
    return CLENS_OK;
}

static int parse_sites(clens_study *s, const json_t *v, const char *path, clens_error *err)
{
    if (!v) {
        s->types[0] = CLENS_HOOK_RESID_PRE;
        s->n_types = 1;
        return CLENS_OK;
    }
    if (!json_is_array(v) || json_array_size(v) == 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: sites: expected a non-empty list of site types", path);
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        clens_hook_point t;
        if (!json_is_string(e) || clens_hook_short_parse(json_string_value(e), &t, NULL) ||
            !clens_hook_patchable(t))
            return clens_err(err, CLENS_E_FORMAT, "%s: sites[%zu]: expected resid_pre, resid_post, attn_out, mlp_out or z",
                             path, i);
        for (int k = 0; k < s->n_types; k++)
            if (s->types[k] == t) return clens_err(err, CLENS_E_FORMAT, "%s: sites[%zu]: listed twice", path, i);
        s->types[s->n_types++] = t;
    }
    return CLENS_OK;
}

static int parse_tokens(clens_study *s, const json_t *v, const char *path, clens_error *err)
{
    if (!v || json_is_null(v)) return CLENS_OK;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 64)
        return clens_err(err, CLENS_E_FORMAT, "%s: tokens: expected null or a list of 1..64 strings", path);
    s->n_words = (int)json_array_size(v);
    s->words = calloc((size_t)s->n_words, sizeof *s->words);
    if (!s->words) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n_words; i++) {
        json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_string(e) || !json_string_value(e)[0])
            return clens_err(err, CLENS_E_FORMAT, "%s: tokens[%d]: expected a non-empty string", path, i);
        s->words[i] = strdup(json_string_value(e));
        if (!s->words[i]) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    return CLENS_OK;
}

/* ------------------------------------------------- canonical settings */

static json_t *canonical_settings(const clens_study *s)
{
    json_t *o = json_object(), *models = json_array(), *pairs = json_object(), *sites = json_array();
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        json_array_append_new(models, json_pack("{s:s, s:s, s:s, s:s}", "label", m->label, "model", m->model,
                                                "training", m->training, "notes", m->notes));
    }
    json_object_set_new(o, "models", models);
    static const char *const modes[] = {"file", "build", "on-policy"};
    json_object_set_new(pairs, "mode", json_string(modes[s->pairs_mode]));
    if (s->pairs_mode == STUDY_PAIRS_FILE) {
        json_object_set_new(pairs, "file", json_string(s->pairs_file));
    } else {
        json_object_set_new(pairs, "data", json_string(s->data));
        json_object_set_new(pairs, "format", json_string(s->format));
        json_object_set_new(pairs, "limit", json_integer(s->limit));
        json_object_set_new(pairs, "cut", json_string(s->cut));
        json_object_set_new(pairs, "corrupt", json_string(s->corrupt));
        json_object_set_new(pairs, "site", json_string(s->site));
        if (s->pairs_mode == STUDY_PAIRS_ON_POLICY) {
            json_object_set_new(pairs, "max_new", json_integer(s->max_new));
            json_object_set_new(pairs, "batch", json_integer(s->batch));
            json_object_set_new(pairs, "pool", json_integer(s->pool));
            json_object_set_new(pairs, "gen_prompt", json_string(s->gen_chat ? "chat" : "raw"));
        }
    }
    json_object_set_new(o, "pairs", pairs);
    json_object_set_new(o, "fidelity", json_string(s->fidelity));
    json_object_set_new(o, "prompt", json_string(s->prompt_chat ? "chat" : "raw"));
    for (int k = 0; k < s->n_types; k++) json_array_append_new(sites, json_string(clens_hook_short_name(s->types[k])));
    json_object_set_new(o, "sites", sites);
    if (s->layers_kind == STUDY_LAYERS_LIST) {
        json_t *l = json_array();
        for (int i = 0; i < s->n_layers; i++) json_array_append_new(l, json_integer(s->layers[i]));
        json_object_set_new(o, "layers", l);
    } else {
        json_object_set_new(o, "layers", json_string(s->layers_kind == STUDY_LAYERS_ALL ? "all" : "every-2"));
    }
    json_object_set_new(o, "metric", json_string(clens_metric_name(s->metric)));
    if (s->words) {
        json_t *t = json_array();
        for (int i = 0; i < s->n_words; i++) json_array_append_new(t, json_string(s->words[i]));
        json_object_set_new(o, "tokens", t);
    } else {
        json_object_set_new(o, "tokens", json_null());
    }
    json_object_set_new(o, "method", json_string(s->method == CLENS_PATCH_RERUN ? "rerun" : "fast"));
    json_object_set_new(o, "filter", json_string(clens_filter_name(s->filter)));
    json_object_set_new(o, "min_diff", json_real(s->min_diff));
    json_object_set_new(o, "n", json_integer(s->n_target));
    json_object_set_new(o, "seeds", json_pack("{s:I, s:I, s:I}", "pairs", (json_int_t)s->pairs_seed, "bootstrap",
                                              (json_int_t)s->bootstrap_seed, "compare", (json_int_t)s->compare_seed));
    json_object_set_new(o, "bootstrap", json_integer(s->bootstrap));
    json_object_set_new(o, "compare_resamples", json_integer(s->compare_resamples));
    json_object_set_new(o, "max_tokens", json_integer(s->max_tokens));
    json_object_set_new(o, "matmul", json_string(s->matmul));
    /* "out" is not a setting: a study folder may be moved and resumed */
    return o;
}

/* ------------------------------------------------------------- the file */

int study_file_parse(clens_study *s, const char *path, const char *fidelity, const char *out_override,
                     clens_error *err)
{
    static const char *const keys[] = {"out", "fidelity", "models", "pairs", "prompt", "sites", "layers", "metric",
                                       "tokens", "method", "filter", "min_diff", "n", "seeds", "bootstrap",
                                       "compare_resamples", "max_tokens", "matmul", "description", NULL};
    static const char *const fids[] = {"seed", "clens-default", NULL};
    static const char *const prompts[] = {"chat", "raw", NULL};
    static const char *const metrics[] = {"logprob_mass", "logit_mean", NULL};
    static const char *const methods[] = {"fast", "rerun", NULL};
    static const char *const filters[] = {"default", "seed", NULL};
    static const char *const matmuls[] = {"default", "portable", "bf16", NULL};
    json_t *root = NULL;
    json_error_t je;
    char *str = NULL;
    long x;
    int rc = clens_json_load_regular(path, 0, &root, &je, err);
    if (rc) return rc;
    if (!(s->path = strdup(path))) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    if (!json_is_object(root)) { rc = clens_err(err, CLENS_E_FORMAT, "%s: expected a JSON object", path); goto end; }
    if ((rc = check_keys(root, keys, "", path, err))) goto end;
    if (json_object_get(root, "description") && !json_is_string(json_object_get(root, "description"))) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: description: expected a string", path);
        goto end;
    }
    if ((rc = get_str(root, "fidelity", "", "clens-default", fids, path, &s->fidelity, err))) goto end;
    if (fidelity) {
        int ok = strcmp(fidelity, "seed") == 0 || strcmp(fidelity, "clens-default") == 0;
        if (!ok) { rc = clens_err(err, CLENS_E_ARG, "fidelity: expected seed or clens-default, got \"%s\"", fidelity); goto end; }
        if (json_object_get(root, "fidelity") && strcmp(s->fidelity, fidelity) != 0) {
            rc = clens_err(err, CLENS_E_ARG, "%s: fidelity is \"%s\" but --fidelity %s was given", path, s->fidelity,
                           fidelity);
            goto end;
        }
        free(s->fidelity);
        s->fidelity = strdup(fidelity);
    }
    if (strcmp(s->fidelity, "seed") == 0 && (rc = apply_seed_preset(root, path, err))) goto end;
    if (out_override) {
        s->out = strdup(out_override);
    } else if ((rc = get_str(root, "out", "", NULL, NULL, path, &s->out, err))) {
        goto end;
    }
    if (!s->out) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    if (strchr(s->out, '=')) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: out \"%s\": the study folder's path may not contain '='", path, s->out);
        goto end;
    }
    if ((rc = parse_models(s, json_object_get(root, "models"), path, err))) goto end;
    if (!json_object_get(root, "pairs")) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: pairs is required (mode file, build or on-policy)", path);
        goto end;
    }
    if ((rc = parse_pairs(s, json_object_get(root, "pairs"), path, err))) goto end;
    if ((rc = get_str(root, "prompt", "", "chat", prompts, path, &str, err))) goto end;
    s->prompt_chat = strcmp(str, "chat") == 0;
    if ((rc = parse_sites(s, json_object_get(root, "sites"), path, err)) ||
        (rc = parse_layers(s, json_object_get(root, "layers"), path, err)))
        goto end;
    if ((rc = get_str(root, "metric", "", "logprob_mass", metrics, path, &str, err))) goto end;
    if (clens_metric_parse(str, &s->metric, NULL)) s->metric = CLENS_METRIC_LOGPROB_MASS; /* get_str checked the word */
    if ((rc = parse_tokens(s, json_object_get(root, "tokens"), path, err))) goto end;
    if ((rc = get_str(root, "method", "", "fast", methods, path, &str, err))) goto end;
    s->method = strcmp(str, "rerun") == 0 ? CLENS_PATCH_RERUN : CLENS_PATCH_FAST;
    if ((rc = get_str(root, "filter", "", "default", filters, path, &str, err))) goto end;
    clens_filter_parse(str, &s->filter);
    json_t *md = json_object_get(root, "min_diff");
    s->min_diff = 3.0;
    if (md) {
        if (!json_is_number(md) || !isfinite(json_number_value(md)) || json_number_value(md) < 0) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: min_diff: expected a finite number >= 0", path);
            goto end;
        }
        s->min_diff = json_number_value(md);
    }
    if ((rc = get_int(root, "n", "", 50, 1, 1L << 30, path, &s->n_target, err)) ||
        (rc = get_int(root, "bootstrap", "", 2000, 1, 1L << 24, path, &s->bootstrap, err)) ||
        (rc = get_int(root, "compare_resamples", "", 2000, 0, 1L << 24, path, &s->compare_resamples, err)) ||
        (rc = get_int(root, "max_tokens", "", 0, 0, 1L << 20, path, &x, err)))
        goto end;
    if (x == 1) { rc = clens_err(err, CLENS_E_FORMAT, "%s: max_tokens: 0 (automatic) or >= 2", path); goto end; }
    s->max_tokens = (int)x;
    json_t *seeds = json_object_get(root, "seeds");
    static const char *const seed_keys[] = {"pairs", "bootstrap", "compare", NULL};
    if (seeds && !json_is_object(seeds)) { rc = clens_err(err, CLENS_E_FORMAT, "%s: seeds: expected an object", path); goto end; }
    if (seeds && (rc = check_keys(seeds, seed_keys, "seeds.", path, err))) goto end;
    if ((rc = get_int(seeds, "pairs", "seeds.", 0, 0, 0x7fffffffffffffffL, path, &s->pairs_seed, err)) ||
        (rc = get_int(seeds, "bootstrap", "seeds.", 0, 0, 0x7fffffffffffffffL, path, &s->bootstrap_seed, err)) ||
        (rc = get_int(seeds, "compare", "seeds.", 0, 0, 0x7fffffffffffffffL, path, &s->compare_seed, err)))
        goto end;
    if ((rc = get_str(root, "matmul", "", "default", matmuls, path, &s->matmul, err))) goto end;

    s->settings = canonical_settings(s);
    char *canon = s->settings ? json_dumps(s->settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) : NULL;
    if (!canon) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    clens_sha256_hex(canon, strlen(canon), s->settings_hash);
    free(canon);
end:
    free(str);
    json_decref(root);
    return rc;
}

void study_file_clear(clens_study *s)
{
    free(s->path);
    free(s->out);
    free(s->fidelity);
    for (int i = 0; s->models && i < s->n_models; i++) {
        free(s->models[i].label);
        free(s->models[i].model);
        free(s->models[i].training);
        free(s->models[i].notes);
        free(s->models[i].slug);
    }
    free(s->models);
    free(s->pairs_file);
    free(s->data);
    free(s->format);
    free(s->cut);
    free(s->corrupt);
    free(s->site);
    free(s->layers);
    for (int i = 0; s->words && i < s->n_words; i++) free(s->words[i]);
    free(s->words);
    free(s->matmul);
    json_decref(s->settings);
    memset(s, 0, sizeof *s);
}

/* ---------------------------------------------------------- differences */

static char *difference_at(const json_t *a, const json_t *b, const char *prefix)
{
    char buf[1024];
    if (json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)a, key, v) {
            snprintf(buf, sizeof buf, "%s%s%s", prefix, prefix[0] ? "." : "", key);
            json_t *w = json_object_get(b, key);
            if (!w) return strdup(buf);
            char *d = difference_at(v, w, buf);
            if (d) return d;
        }
        json_object_foreach((json_t *)b, key, v)
            if (!json_object_get(a, key)) {
                snprintf(buf, sizeof buf, "%s%s%s", prefix, prefix[0] ? "." : "", key);
                return strdup(buf);
            }
        return NULL;
    }
    if (json_is_array(a) && json_is_array(b) && json_array_size(a) == json_array_size(b)) {
        /* a list of objects (models) names the element; a list of scalars is one value */
        int objects = json_array_size(a) > 0 && json_is_object(json_array_get(a, 0));
        if (objects)
            for (size_t i = 0; i < json_array_size(a); i++) {
                snprintf(buf, sizeof buf, "%s[%zu]", prefix, i);
                char *d = difference_at(json_array_get(a, i), json_array_get(b, i), buf);
                if (d) return d;
            }
        else if (!json_equal((json_t *)a, (json_t *)b))
            return strdup(prefix);
        return NULL;
    }
    return values_equal(a, b) ? NULL : strdup(prefix[0] ? prefix : "(settings)");
}

char *study_json_difference(const json_t *a, const json_t *b)
{
    return difference_at(a, b, "");
}
