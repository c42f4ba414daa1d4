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
#include <glob.h>
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
/* The seed preset as study-file values, from the one table the commands
 * share (clens_fidelity_seed_choices): null for "the engine's default", an
 * integer where the value is one, "sites" a list. */
static json_t *seed_preset(void)
{
    int n;
    const clens_fidelity_choice *c = clens_fidelity_seed_choices(&n);
    json_t *o = json_object();
    for (int i = 0; o && i < n; i++) {
        char *end = NULL;
        long v = c[i].value ? strtol(c[i].value, &end, 10) : 0;
        json_t *j = !c[i].value                               ? json_null()
                    : end && *end == 0 && end != c[i].value    ? json_integer(v)
                    : strcmp(c[i].key, "sites") == 0           ? json_pack("[s]", c[i].value)
                                                               : json_string(c[i].value);
        if (!j || json_object_set_new(o, c[i].key, j)) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
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

/* ----------------------------------------------------------- checkpoints */

static int add_checkpoint(study_model *m, const char *ck, long step, int have_step, const char *where, const char *path,
                          clens_error *err)
{
    if (!have_step) {
        clens_error e2 = {0};
        if (clens_dynamics_checkpoint_step(ck, &step, &e2))
            return clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints: %s", path, where, e2.msg);
    }
    if (m->n_ck >= 10000) return clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints: at most 10000", path, where);
    char **np = realloc(m->ck_paths, sizeof *np * (size_t)(m->n_ck + 1));
    if (np) m->ck_paths = np;
    long *ns = realloc(m->ck_steps, sizeof *ns * (size_t)(m->n_ck + 1));
    if (ns) m->ck_steps = ns;
    if (!np || !ns || !(m->ck_paths[m->n_ck] = strdup(ck))) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    m->ck_steps[m->n_ck++] = step;
    return CLENS_OK;
}

/* "DIR/checkpoints/step-*": the matching folders in step order. */
static int expand_glob(study_model *m, const char *pattern, const char *where, const char *path, clens_error *err)
{
    glob_t g;
    memset(&g, 0, sizeof g);
    int grc = glob(pattern, GLOB_ONLYDIR, NULL, &g);
    if (grc == GLOB_NOMATCH || (grc == 0 && g.gl_pathc == 0)) {
        globfree(&g);
        return clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints: \"%s\" matches no folder", path, where, pattern);
    }
    if (grc) { globfree(&g); return clens_err(err, CLENS_E_IO, "%s: %scheckpoints: cannot expand \"%s\"", path, where, pattern); }
    int first = m->n_ck, rc = CLENS_OK;
    for (size_t i = 0; i < g.gl_pathc && !rc; i++) rc = add_checkpoint(m, g.gl_pathv[i], 0, 0, where, path, err);
    globfree(&g);
    /* insertion sort by step (the series is small) */
    for (int i = first + 1; !rc && i < m->n_ck; i++)
        for (int j = i; j > first && m->ck_steps[j - 1] > m->ck_steps[j]; j--) {
            long t = m->ck_steps[j]; m->ck_steps[j] = m->ck_steps[j - 1]; m->ck_steps[j - 1] = t;
            char *p = m->ck_paths[j]; m->ck_paths[j] = m->ck_paths[j - 1]; m->ck_paths[j - 1] = p;
        }
    return rc;
}

static int parse_checkpoints(study_model *m, const json_t *v, const char *where, const char *path, clens_error *err)
{
    if (!v) return CLENS_OK;
    if (!json_is_array(v) || json_array_size(v) == 0)
        return clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints: expected a non-empty list of folders, org/name@revision, "
                         "globs or {\"path\", \"step\"} objects", path, where);
    int rc = CLENS_OK;
    for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
        const json_t *e = json_array_get(v, i);
        if (json_is_string(e) && json_string_value(e)[0]) {
            const char *c = json_string_value(e);
            if (strpbrk(c, "*?[")) rc = expand_glob(m, c, where, path, err);
            else rc = add_checkpoint(m, c, 0, 0, where, path, err);
        } else if (json_is_object(e)) {
            static const char *const keys[] = {"path", "step", NULL};
            const json_t *pth = json_object_get(e, "path"), *st = json_object_get(e, "step");
            char w2[160];
            snprintf(w2, sizeof w2, "%scheckpoints[%zu].", where, i);
            if ((rc = check_keys(e, keys, w2, path, err))) break;
            if (!json_is_string(pth) || !json_string_value(pth)[0])
                rc = clens_err(err, CLENS_E_FORMAT, "%s: %spath: expected a folder or org/name@revision", path, w2);
            else if (st && (!json_is_integer(st) || json_integer_value(st) < 0))
                rc = clens_err(err, CLENS_E_FORMAT, "%s: %sstep: expected an integer >= 0", path, w2);
            else
                rc = add_checkpoint(m, json_string_value(pth), st ? (long)json_integer_value(st) : 0, st != NULL, where,
                                    path, err);
        } else {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints[%zu]: expected a string or {\"path\", \"step\"}", path,
                           where, i);
        }
    }
    if (rc) return rc;
    if (m->n_ck < 2)
        return clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints: a training series needs at least two checkpoints", path,
                         where);
    for (int k = 1; k < m->n_ck; k++)
        if (m->ck_steps[k] <= m->ck_steps[k - 1])
            return clens_err(err, CLENS_E_FORMAT, "%s: %scheckpoints: %s (step %ld) is not after %s (step %ld); list them "
                             "in training order", path, where, m->ck_paths[k], m->ck_steps[k], m->ck_paths[k - 1],
                             m->ck_steps[k - 1]);
    return CLENS_OK;
}

/* ------------------------------------------------------------- sections */

static const char *const trainings[] = {"distilled", "RL", "SFT", "RL-after-SFT", "other", NULL};

static int parse_models(clens_study *s, const json_t *arr, const char *path, clens_error *err)
{
    static const char *const keys[] = {"label", "model", "checkpoints", "training", "notes", NULL};
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
        if ((rc = check_keys(o, keys, where, path, err)) ||
            (rc = parse_checkpoints(m, json_object_get(o, "checkpoints"), where, path, err)) ||
            (rc = get_str(o, "model", where, m->n_ck ? m->ck_paths[m->n_ck - 1] : NULL, NULL, path, &m->model, err)) ||
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

/* ------------------------------------------- dynamics, probe, steer, atp */

static int get_num(const json_t *obj, const char *key, const char *where, double def, double lo, double hi,
                   const char *path, double *out, clens_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) { *out = def; return CLENS_OK; }
    if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < lo || json_number_value(v) > hi)
        return clens_err(err, CLENS_E_FORMAT, "%s: %s%s: expected a number in [%g, %g]", path, where, key, lo, hi);
    *out = json_number_value(v);
    return CLENS_OK;
}

static int parse_dynamics(clens_study *s, const json_t *d, const char *path, clens_error *err)
{
    static const char *const keys[] = {"resamples", "seed", "min_delta_bic", "max_window", "min_inside", "min_amplitude",
                                       NULL};
    const char *w = "dynamics.";
    if (d && !json_is_object(d)) return clens_err(err, CLENS_E_FORMAT, "%s: dynamics: expected an object", path);
    int any = 0;
    for (int i = 0; i < s->n_models; i++) any |= s->models[i].n_ck > 0;
    if (d && !any) return clens_err(err, CLENS_E_FORMAT, "%s: dynamics: no model has checkpoints", path);
    int rc;
    if ((d && (rc = check_keys(d, keys, w, path, err))) ||
        (rc = get_int(d, "resamples", w, 200, 0, 1L << 20, path, &s->dyn_resamples, err)) ||
        (rc = get_int(d, "seed", w, 0, 0, 0x7fffffffffffffffL, path, &s->dyn_seed, err)) ||
        (rc = get_num(d, "min_delta_bic", w, 10, -1e9, 1e9, path, &s->dyn_min_delta_bic, err)) ||
        (rc = get_num(d, "max_window", w, 0.25, 1e-9, 1e9, path, &s->dyn_max_window, err)) ||
        (rc = get_int(d, "min_inside", w, 3, 1, 1000000, path, &s->dyn_min_inside, err)) ||
        (rc = get_num(d, "min_amplitude", w, 10, 0, 1e9, path, &s->dyn_min_amplitude, err)))
        return rc;
    return CLENS_OK;
}

static int parse_probe(clens_study *s, const json_t *p, const char *path, clens_error *err)
{
    static const char *const keys[] = {"sites", "positions", "folds", "C", "bootstrap", "permutations", "random_dirs",
                                       "seed", "limit", NULL};
    static const char *const positions[] = {"final", "error", "all", NULL};
    const char *w = "probe.";
    if (!p) return CLENS_OK;
    if (!json_is_object(p)) return clens_err(err, CLENS_E_FORMAT, "%s: probe: expected an object ({} for the defaults)", path);
    s->has_probe = 1;
    int rc;
    if ((rc = check_keys(p, keys, w, path, err)) ||
        (rc = get_str(p, "sites", w, "blocks.*.hook_resid_pre,blocks.-1.hook_resid_post", NULL, path, &s->probe_sites, err)) ||
        (rc = get_str(p, "positions", w, "final", positions, path, &s->probe_positions, err)) ||
        (rc = get_int(p, "folds", w, 5, 2, 1000, path, &s->probe_folds, err)) ||
        (rc = get_num(p, "C", w, 1, 1e-12, 1e12, path, &s->probe_C, err)) ||
        (rc = get_int(p, "bootstrap", w, 1000, 0, 1000000, path, &s->probe_bootstrap, err)) ||
        (rc = get_int(p, "permutations", w, 20, 0, 100000, path, &s->probe_permutations, err)) ||
        (rc = get_int(p, "random_dirs", w, 20, 0, 100000, path, &s->probe_random_dirs, err)) ||
        (rc = get_int(p, "seed", w, 0, 0, 0x7fffffffffffffffL, path, &s->probe_seed, err)) ||
        (rc = get_int(p, "limit", w, 0, 0, 1L << 40, path, &s->probe_limit, err)))
        return rc;
    return CLENS_OK;
}

static int parse_steer(clens_study *s, const json_t *p, const char *path, clens_error *err)
{
    static const char *const keys[] = {"mode", "alpha", "layers", "positions", "hook", "random", "seed", "neutral",
                                       "max_new", "k", "samples", "limit", NULL};
    static const char *const modes[] = {"add", "ablate", "mean-ablate", NULL};
    static const char *const positions[] = {"all", "prompt", "generated", "last", NULL};
    static const char *const hooks[] = {"resid_pre", "resid_post", NULL};
    const char *w = "steer.";
    if (!p) return CLENS_OK;
    if (!json_is_object(p)) return clens_err(err, CLENS_E_FORMAT, "%s: steer: expected an object", path);
    if (!s->has_probe)
        return clens_err(err, CLENS_E_FORMAT, "%s: steer: the direction is the model's probe: add \"probe\": {} too", path);
    s->has_steer = 1;
    int rc;
    if ((rc = check_keys(p, keys, w, path, err)) ||
        (rc = get_str(p, "mode", w, "ablate", modes, path, &s->steer_mode, err)) ||
        (rc = get_str(p, "positions", w, "last", positions, path, &s->steer_positions, err)) ||
        (rc = get_str(p, "hook", w, strstr(s->probe_sites, "resid_post") ? "resid_post" : "resid_pre", hooks, path,
                      &s->steer_hook, err)) ||
        (rc = get_int(p, "random", w, 3, 0, 64, path, &s->steer_random, err)) ||
        (rc = get_int(p, "seed", w, 0, 0, 0x7fffffffffffffffL, path, &s->steer_seed, err)) ||
        (rc = get_int(p, "max_new", w, 16, 1, 1 << 16, path, &s->steer_max_new, err)) ||
        (rc = get_int(p, "k", w, 8, 1, 1 << 16, path, &s->steer_k, err)) ||
        (rc = get_int(p, "samples", w, 4, 0, 1 << 16, path, &s->steer_samples, err)) ||
        (rc = get_int(p, "limit", w, 0, 0, 1L << 40, path, &s->steer_limit, err)))
        return rc;
    const json_t *n = json_object_get(p, "neutral");
    if (n && !json_is_null(n) && (rc = get_str(p, "neutral", w, NULL, NULL, path, &s->steer_neutral, err))) return rc;
    const json_t *a = json_object_get(p, "alpha");
    if (a && (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 256))
        return clens_err(err, CLENS_E_FORMAT, "%s: steer.alpha: expected a list of 1..256 numbers", path);
    s->n_steer_alphas = a ? (int)json_array_size(a) : 3;
    s->steer_alphas = malloc(sizeof(double) * (size_t)s->n_steer_alphas);
    if (!s->steer_alphas) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n_steer_alphas; i++) {
        const json_t *e = a ? json_array_get(a, (size_t)i) : NULL;
        if (a && (!json_is_number(e) || !isfinite(json_number_value(e))))
            return clens_err(err, CLENS_E_FORMAT, "%s: steer.alpha[%d]: expected a number", path, i);
        s->steer_alphas[i] = a ? json_number_value(e) : (double)i * 0.5; /* default 0, 0.5, 1 */
    }
    const json_t *l = json_object_get(p, "layers");
    if (l && !(json_is_string(l) && strcmp(json_string_value(l), "best") == 0)) {
        if (!json_is_array(l) || json_array_size(l) == 0 || json_array_size(l) > 4096)
            return clens_err(err, CLENS_E_FORMAT, "%s: steer.layers: expected \"best\" or a list of layer numbers", path);
        s->n_steer_layers = (int)json_array_size(l);
        s->steer_layers = malloc(sizeof(int) * (size_t)s->n_steer_layers);
        if (!s->steer_layers) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        for (int i = 0; i < s->n_steer_layers; i++) {
            const json_t *e = json_array_get(l, (size_t)i);
            if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 100000)
                return clens_err(err, CLENS_E_FORMAT, "%s: steer.layers[%d]: expected a layer number >= 0", path, i);
            s->steer_layers[i] = (int)json_integer_value(e);
        }
    }
    return CLENS_OK;
}

static int parse_atp(clens_study *s, const json_t *v, const char *path, clens_error *err)
{
    if (!v) return CLENS_OK;
    if (!json_is_boolean(v)) return clens_err(err, CLENS_E_FORMAT, "%s: atp: expected true or false", path);
    s->has_atp = json_is_true(v);
    return CLENS_OK;
}

/* ------------------------------------------------- canonical settings */

static json_t *canonical_settings(const clens_study *s)
{
    json_t *o = json_object(), *models = json_array(), *pairs = json_object(), *sites = json_array();
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        json_t *mo = json_pack("{s:s, s:s, s:s, s:s}", "label", m->label, "model", m->model, "training", m->training,
                               "notes", m->notes);
        if (m->n_ck) {
            json_t *cks = json_array();
            for (int k = 0; k < m->n_ck; k++)
                json_array_append_new(cks, json_pack("{s:s, s:I}", "path", m->ck_paths[k], "step", (json_int_t)m->ck_steps[k]));
            json_object_set_new(mo, "checkpoints", cks);
        }
        json_array_append_new(models, mo);
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
    /* the optional parts appear only when used, so a study without them keeps its hash */
    int any_ck = 0;
    for (int i = 0; i < s->n_models; i++) any_ck |= s->models[i].n_ck > 0;
    if (any_ck)
        json_object_set_new(o, "dynamics", json_pack("{s:I, s:I, s:f, s:f, s:I, s:f}", "resamples",
                                                     (json_int_t)s->dyn_resamples, "seed", (json_int_t)s->dyn_seed,
                                                     "min_delta_bic", s->dyn_min_delta_bic, "max_window",
                                                     s->dyn_max_window, "min_inside", (json_int_t)s->dyn_min_inside,
                                                     "min_amplitude", s->dyn_min_amplitude));
    if (s->has_probe)
        json_object_set_new(o, "probe", json_pack("{s:s, s:s, s:I, s:f, s:I, s:I, s:I, s:I, s:I}", "sites", s->probe_sites,
                                                  "positions", s->probe_positions, "folds", (json_int_t)s->probe_folds,
                                                  "C", s->probe_C, "bootstrap", (json_int_t)s->probe_bootstrap,
                                                  "permutations", (json_int_t)s->probe_permutations, "random_dirs",
                                                  (json_int_t)s->probe_random_dirs, "seed", (json_int_t)s->probe_seed,
                                                  "limit", (json_int_t)s->probe_limit));
    if (s->has_steer) {
        json_t *a = json_array(), *l;
        for (int i = 0; i < s->n_steer_alphas; i++) json_array_append_new(a, json_real(s->steer_alphas[i]));
        if (s->steer_layers) {
            l = json_array();
            for (int i = 0; i < s->n_steer_layers; i++) json_array_append_new(l, json_integer(s->steer_layers[i]));
        } else {
            l = json_string("best");
        }
        json_object_set_new(o, "steer", json_pack("{s:s, s:o, s:o, s:s, s:s, s:I, s:I, s:o, s:I, s:I, s:I, s:I}", "mode",
                                                  s->steer_mode, "alpha", a, "layers", l, "positions", s->steer_positions,
                                                  "hook", s->steer_hook, "random", (json_int_t)s->steer_random, "seed",
                                                  (json_int_t)s->steer_seed, "neutral",
                                                  s->steer_neutral ? json_string(s->steer_neutral) : json_null(),
                                                  "max_new", (json_int_t)s->steer_max_new, "k", (json_int_t)s->steer_k,
                                                  "samples", (json_int_t)s->steer_samples, "limit",
                                                  (json_int_t)s->steer_limit));
    }
    if (s->has_atp) json_object_set_new(o, "atp", json_true());
    /* "out" is not a setting: a study folder may be moved and resumed */
    return o;
}

/* ------------------------------------------------------------- the file */

int study_file_parse(clens_study *s, const char *path, const char *fidelity, const char *out_override,
                     clens_error *err)
{
    static const char *const keys[] = {"out", "fidelity", "models", "pairs", "prompt", "sites", "layers", "metric",
                                       "tokens", "method", "filter", "min_diff", "n", "seeds", "bootstrap",
                                       "compare_resamples", "max_tokens", "matmul", "description", "dynamics",
                                       "probe", "steer", "atp", NULL};
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
    if ((rc = parse_dynamics(s, json_object_get(root, "dynamics"), path, err)) ||
        (rc = parse_probe(s, json_object_get(root, "probe"), path, err)) ||
        (rc = parse_steer(s, json_object_get(root, "steer"), path, err)) ||
        (rc = parse_atp(s, json_object_get(root, "atp"), path, err)))
        goto end;

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
        for (int k = 0; k < s->models[i].n_ck; k++) free(s->models[i].ck_paths[k]);
        free(s->models[i].ck_paths);
        free(s->models[i].ck_steps);
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
    free(s->probe_sites);
    free(s->probe_positions);
    free(s->steer_mode);
    free(s->steer_positions);
    free(s->steer_hook);
    free(s->steer_neutral);
    free(s->steer_alphas);
    free(s->steer_layers);
    free(s->tasks);
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
