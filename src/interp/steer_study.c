/*
 * steer_study.c: the experiment behind `clens steer` (docs/steer.md).
 *
 * Conditions: the direction at every alpha; n_random random directions
 * (seeded Gaussian, per layer scaled to the direction's norm there) at the
 * same alphas; the unsteered model; and, in generation, a ban of the
 * correction ids (the "NoWait" baseline). Measurements:
 *   pairs      clens_steer_pair per pair: every condition's final-token
 *              correction metric (logprob_mass over the correction ids of
 *              docs/patch-output.md) of clean and corrupted prompts;
 *   generation greedy continuations of prompts after an error and after a
 *              correct step; the fraction whose first K tokens hold a
 *              correction id, and sample texts;
 *   neutral    mean KL(unsteered || steered) and top-1 agreement.
 * The folder follows rulings R19: settings.json (settings, provenance,
 * settings_hash) first, steer.json and the SVG curves written atomically.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/appendlog.h"
#include "base/base.h"
#include "base/infile.h"
#include "base/outdir.h"
#include "interp/prompts.h"
#include "interp/run_internal.h"
#include "interp/steer_study.h"

/* ------------------------------------------------------------ random dirs */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double gauss(uint64_t *st)
{
    double u = ((splitmix(st) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double v = ((splitmix(st) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* Draw r: per active layer a Gaussian direction with the norm of vecs there. */
static void random_dirs(const float *vecs, const unsigned char *active, int L, int C, uint64_t seed, float *out)
{
    uint64_t st = seed * 0x2545f4914f6cdd1dULL + 0x1234567ULL;
    memset(out, 0, sizeof(float) * (size_t)L * C);
    for (int l = 0; l < L; l++) {
        if (!active[l]) continue;
        double nv = 0, nr = 0;
        float *o = out + (size_t)l * C;
        for (int c = 0; c < C; c++) { nv += (double)vecs[(size_t)l * C + c] * vecs[(size_t)l * C + c]; o[c] = (float)gauss(&st); nr += (double)o[c] * o[c]; }
        double k = nr > 0 ? sqrt(nv / nr) : 0;
        for (int c = 0; c < C; c++) o[c] = (float)(o[c] * k);
    }
}

/* ------------------------------------------------------------ inputs */

typedef struct { char *text; int error; } gen_prompt;

static int read_lines(const char *path, char ***lines, size_t *n, clens_error *err)
{
    char *data;
    size_t len;
    *lines = NULL;
    *n = 0;
    FILE *f;
    int rc = clens_fopen_regular(path, &f, err);
    if (rc) return rc;
    fclose(f);
    if ((rc = clens_read_file(path, &data, &len, err))) return rc;
    size_t cap = 0;
    for (char *s = data; s < data + len;) {
        char *e = memchr(s, '\n', (size_t)(data + len - s));
        if (!e) e = data + len;
        if (e > s) {
            if (*n == cap) {
                cap = cap ? 2 * cap : 16;
                char **nl = realloc(*lines, sizeof(char *) * cap);
                if (!nl) { free(data); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
                *lines = nl;
            }
            (*lines)[(*n)++] = strndup(s, (size_t)(e - s));
        }
        s = e + 1;
    }
    free(data);
    return CLENS_OK;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++) free(l[i]);
    free(l);
}

/* ------------------------------------------------------------ svg */

static const char *colors[] = {"#1f77b4", "#d62728", "#7f7f7f", "#2ca02c", "#9467bd"};

/* A line chart of series ys[k][n_alpha] against alphas; NaN points skipped. */
static char *svg_lines(const char *title, const char *ylabel, const double *alphas, int n, const double *const *ys,
                       const char *const *names, int n_series)
{
    double x0 = alphas[0], x1 = alphas[0], y0 = INFINITY, y1 = -INFINITY;
    for (int i = 0; i < n; i++) { x0 = fmin(x0, alphas[i]); x1 = fmax(x1, alphas[i]); }
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < n; i++)
            if (isfinite(ys[k][i])) { y0 = fmin(y0, ys[k][i]); y1 = fmax(y1, ys[k][i]); }
    if (!isfinite(y0)) { y0 = 0; y1 = 1; }
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    if (x1 - x0 < 1e-9) { x0 -= 0.5; x1 += 0.5; }
    const double W = 560, H = 340, ml = 60, mr = 150, mt = 30, mb = 40;
    size_t cap = 65536;
    char *s = malloc(cap);
    if (!s) return NULL;
    int o = snprintf(s, cap,
                     "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" font-size=\"11\">\n"
                     "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%g\" y=\"18\" font-size=\"13\">%s</text>\n"
                     "<line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/><line x1=\"%g\" y1=\"%g\" x2=\"%g\" y2=\"%g\" stroke=\"black\"/>\n"
                     "<text x=\"%g\" y=\"%g\">alpha</text><text x=\"4\" y=\"%g\">%s</text>\n"
                     "<text x=\"%g\" y=\"%g\">%.3g</text><text x=\"%g\" y=\"%g\">%.3g</text>\n"
                     "<text x=\"4\" y=\"%g\">%.3g</text><text x=\"4\" y=\"%g\">%.3g</text>\n",
                     W, H, ml, title, ml, H - mb, W - mr, H - mb, ml, mt, ml, H - mb, (W - mr + ml) / 2, H - 8, mt - 6,
                     ylabel, ml, H - mb + 14, x0, W - mr - 20, H - mb + 14, x1, H - mb, y0, mt + 8, y1);
    for (int k = 0; k < n_series && o < (int)cap - 4096; k++) {
        o += snprintf(s + o, cap - o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", colors[k % 5]);
        for (int i = 0; i < n; i++) {
            if (!isfinite(ys[k][i])) continue;
            double x = ml + (alphas[i] - x0) / (x1 - x0) * (W - mr - ml), y = H - mb - (ys[k][i] - y0) / (y1 - y0) * (H - mb - mt);
            o += snprintf(s + o, cap - o, "%.1f,%.1f ", x, y);
        }
        o += snprintf(s + o, cap - o, "\"/>\n<text x=\"%g\" y=\"%g\" fill=\"%s\">%s</text>\n", W - mr + 8, mt + 16.0 * k + 10,
                      colors[k % 5], names[k]);
    }
    snprintf(s + o, cap - o, "</svg>\n");
    return s;
}

/* ------------------------------------------------------------ helpers */

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *num_array(const double *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, num(v[i]));
    return a;
}

static int has_id(const run_token_set *ts, int32_t id)
{
    for (int i = 0; i < ts->n; i++)
        if (ts->ids[i] == id) return 1;
    return 0;
}

static int write_text(const char *dir, const char *name, const char *text, clens_error *err)
{
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return clens_write_file_atomic(p, text, strlen(text), err);
}

static int write_json(const char *dir, const char *name, const json_t *j, clens_error *err)
{
    char *t = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(17) | JSON_ENSURE_ASCII);
    if (!t) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    size_t n = strlen(t);
    char *t2 = realloc(t, n + 2);
    if (!t2) { free(t); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    t2[n] = '\n';
    t2[n + 1] = 0;
    int rc = write_text(dir, name, t2, err);
    free(t2);
    return rc;
}

static json_t *settings_json(const steer_study *s, const char *model_path)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(model_path)); /* resolved folder, as clens patch */
    json_object_set_new(o, "direction", s->direction ? json_string(s->direction) : json_null());
    json_t *cv = json_array();
    for (int i = 0; i < s->n_cvec; i++) {
        json_t *e = json_object();
        json_object_set_new(e, "file", json_string(s->cvec_files[i]));
        json_object_set_new(e, "scale", json_real(s->cvec_scales[i]));
        json_array_append_new(cv, e);
    }
    json_object_set_new(o, "control_vectors", cv);
    json_object_set_new(o, "control_vector_layer_range", json_pack("[ii]", s->cv_start, s->cv_end));
    json_t *ly = json_array();
    for (int i = 0; s->layers && i < s->n_layers_sel; i++) json_array_append_new(ly, json_integer(s->layers[i]));
    json_object_set_new(o, "layers", s->layers ? ly : (json_decref(ly), json_null()));
    json_object_set_new(o, "alphas", num_array(s->alphas, s->n_alpha));
    json_object_set_new(o, "mode", json_string(clens_steer_mode_name(s->mode)));
    json_object_set_new(o, "hook", json_string(s->point == CLENS_HOOK_RESID_PRE ? "resid_pre" : "resid_post"));
    json_object_set_new(o, "positions", json_string(clens_steer_positions_name(s->positions)));
    json_object_set_new(o, "pairs", s->pairs ? json_string(s->pairs) : json_null());
    json_object_set_new(o, "prompts", s->prompts ? json_string(s->prompts) : json_null());
    json_object_set_new(o, "neutral", s->neutral ? json_string(s->neutral) : json_null());
    json_object_set_new(o, "prompt", json_string(s->prompt_chat ? "chat" : "raw"));
    json_object_set_new(o, "n_random", json_integer(s->n_random));
    json_object_set_new(o, "seed", json_integer((json_int_t)s->seed));
    json_object_set_new(o, "max_new", json_integer(s->max_new));
    json_object_set_new(o, "k", json_integer(s->k_window));
    json_object_set_new(o, "n_samples", json_integer(s->n_samples));
    json_object_set_new(o, "limit", json_integer(s->limit));
    json_object_set_new(o, "method", json_string(s->rerun ? "rerun" : "fast"));
    return o;
}

/* settings.json: a new folder gets it; an existing one must match (the
 * first differing key is named). Returns 1 in *done if steer.json is there. */
static int settings_check(const steer_study *s, json_t *doc, const char *hash, int *done, clens_error *err)
{
    char p[4200];
    int rc;
    *done = 0;
    if ((rc = clens_mkdir_p(s->out_dir, err))) return rc;
    snprintf(p, sizeof p, "%s/settings.json", s->out_dir);
    struct stat st;
    if (stat(p, &st) == 0) {
        int found;
        if ((rc = clens_outdir_check(s->out_dir, "steer run", json_object_get(doc, "settings"), NULL,
                                     json_object_get(doc, "provenance"), &found, err)))
            return rc;
        json_error_t je;
        snprintf(p, sizeof p, "%s/steer.json", s->out_dir);
        json_t *res;
        if (stat(p, &st) == 0 && clens_json_load_regular(p, 0, &res, &je, NULL) == 0) {
            const char *h = json_string_value(json_object_get(res, "settings_hash"));
            *done = h && strcmp(h, hash) == 0;
            json_decref(res);
        }
        return CLENS_OK;
    }
    return write_json(s->out_dir, "settings.json", doc, err);
}

/* ------------------------------------------------------------ the study */

typedef struct {
    clens_model *m;
    const steer_study *s;
    int L, C, n_cond, n_specs;   /* conditions: 0 direction, 1..n_random random draws */
    float *vecs;                 /* [n_cond][L][C] */
    float *means;                /* [n_cond][L] mean-ablate: reference mean of x.u per layer */
    long n_reference;            /* the rows those means are over */
    unsigned char *active;
    clens_steer *specs;          /* [n_cond][n_alpha] */
    clens_tokenizer *tok;
    clens_chat_template *tmpl;
    run_token_set mass, mean;
    /* the journal (a killed run resumes): steer.partial.jsonl in the output
     * folder, one line per finished unit (a pair, a generation condition, a
     * neutral direction), appended with fsync; replay holds the lines of an
     * earlier run, used in order before anything is computed again */
    char journal[4200];
    json_t *replay;
    size_t cursor;
} study;

static void progress(const study *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const study *st, const char *fmt, ...)
{
    if (st->s->quiet) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Doubles in the journal, exactly: 17 significant digits, non-finite as strings. */
static json_t *jexact(double x)
{
    return isfinite(x) ? json_real(x) : json_string(isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
}

static double jexact_get(const json_t *v)
{
    const char *t = json_string_value(v);
    if (!t) return json_number_value(v);
    return strcmp(t, "inf") == 0 ? INFINITY : strcmp(t, "-inf") == 0 ? -INFINITY : NAN;
}

/* The next replayed line if the earlier run finished this unit (phase, key),
 * else NULL (compute it); a line for another unit: CLENS_E_FORMAT in *rc. */
static json_t *journal_take(study *st, const char *phase, const char *key, json_int_t k, int *rc, clens_error *err)
{
    *rc = CLENS_OK;
    if (!st->replay || st->cursor >= json_array_size(st->replay)) return NULL;
    json_t *o = json_array_get(st->replay, st->cursor);
    const char *ph = json_string_value(json_object_get(o, "phase"));
    json_t *kv = json_object_get(o, key);
    if (!ph || strcmp(ph, phase) != 0 || !json_is_integer(kv) || json_integer_value(kv) != k) {
        *rc = clens_err(err, CLENS_E_FORMAT, "%s:%zu: not the next unit of this run (%s %lld expected); delete it to start over",
                        st->journal, st->cursor + 2, phase, (long long)k);
        return NULL;
    }
    st->cursor++;
    return o;
}

static int journal_put(study *st, json_t *line, clens_error *err)
{
    char *txt = json_dumps(line, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(line);
    if (!txt) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    int rc = clens_append_line_durable(st->journal, txt, err);
    free(txt);
    return rc;
}

/* What the journal's units were computed from: the settings (their hash) and
 * the contents of the files they name (settings hold paths; a file rewritten
 * between a kill and the rerun must not be mixed with the old results). */
static int journal_identity(const steer_study *s, const char *hash, json_t **out, clens_error *err)
{
    json_t *id = json_pack("{s:s}", "settings_hash", hash), *files = json_object();
    const char *paths[] = {s->direction, s->pairs, s->prompts, s->neutral};
    int rc = CLENS_OK;
    for (size_t i = 0; i < sizeof paths / sizeof paths[0] && !rc; i++) {
        char hex[65];
        if (paths[i] && !(rc = clens_sha256_file_hex(paths[i], hex, err)))
            json_object_set_new(files, paths[i], json_string(hex));
    }
    for (int i = 0; i < s->n_cvec && !rc; i++) {
        char hex[65];
        if (!(rc = clens_sha256_file_hex(s->cvec_files[i], hex, err)))
            json_object_set_new(files, s->cvec_files[i], json_string(hex));
    }
    json_object_set_new(id, "inputs_sha256", files);
    if (rc) json_decref(id);
    *out = rc ? NULL : id;
    return rc;
}

/* Reads the journal of an earlier run of these settings and inputs (first
 * line: journal_identity) into st->replay; another journal is refused. */
static int journal_open(study *st, const char *hash, clens_error *err)
{
    snprintf(st->journal, sizeof st->journal, "%s/steer.partial.jsonl", st->s->out_dir);
    json_t *ident = NULL;
    int rc = journal_identity(st->s, hash, &ident, err);
    if (rc) return rc;
    char *data = NULL;
    size_t len = 0, torn = 0;
    if ((rc = clens_appendlog_read(st->journal, &data, &len, &torn, err))) {
        json_decref(ident);
        return rc;
    }
    if (!data || len == 0) {
        free(data);
        return journal_put(st, ident, err);
    }
    st->replay = json_array();
    long lineno = 0;
    for (size_t at = 0; at < len && !rc;) {
        json_t *o = clens_appendlog_next_json(data, len, &at);
        if (!json_is_object(o)) rc = clens_err(err, CLENS_E_FORMAT, "%s:%ld: not a JSON object", st->journal, lineno + 1);
        else if (lineno == 0) {
            const char *h = json_string_value(json_object_get(o, "settings_hash"));
            if (!h || strcmp(h, hash) != 0)
                rc = clens_err(err, CLENS_E_FORMAT, "%s: the journal of other settings (settings_hash %s, now %s); delete it to start over",
                               st->journal, h ? h : "missing", hash);
            else if (!json_equal(json_object_get(o, "inputs_sha256"), json_object_get(ident, "inputs_sha256")))
                rc = clens_err(err, CLENS_E_FORMAT, "%s: the journal of other input files (a direction, pairs, prompts or "
                               "neutral file changed since); delete it to start over", st->journal);
        } else {
            json_array_append(st->replay, o);
        }
        json_decref(o);
        lineno++;
    }
    free(data);
    json_decref(ident);
    if (!rc) progress(st, "steer: resuming: %zu finished units in %s\n", json_array_size(st->replay), st->journal);
    return rc;
}

/* Line lineno (1-based) of --prompts: its ids (special tokens on; caller
 * frees) and kind (*is_err 1 "error", 0 "correct"). A line that is not
 * {"prompt": TEXT, "kind": "error"|"correct"}, or encodes to no token, is
 * refused naming it. */
static int prompt_line(const study *st, const char *line, size_t lineno, int32_t **ids, size_t *n, int *is_err,
                       clens_error *err)
{
    const char *path = st->s->prompts;
    json_t *o = json_loads(line, 0, NULL);
    const char *p = json_string_value(json_object_get(o, "prompt")), *k = json_string_value(json_object_get(o, "kind"));
    int rc;
    *ids = NULL;
    if (!p || !k || (strcmp(k, "error") && strcmp(k, "correct")))
        rc = clens_err(err, CLENS_E_FORMAT, "%s:%zu: expected {\"prompt\": TEXT, \"kind\": \"error\"|\"correct\"}", path,
                       lineno);
    else if (!(rc = clens_prompt_tokenize(st->tok, p, 1, ids, n, err)) && *n == 0)
        rc = clens_err(err, CLENS_E_FORMAT, "%s:%zu: empty prompt", path, lineno);
    if (!rc) *is_err = strcmp(k, "error") == 0;
    json_decref(o);
    if (rc) {
        free(*ids);
        *ids = NULL;
    }
    return rc;
}

/* mean-ablate's reference: per condition and steered layer, the mean of x.u
 * (u = v/|v|) over the activations at the hook point of the clean prompts of
 * the pairs (else the "correct" prompts of --prompts), at the positions the
 * steering acts on within a prompt (all / prompt: every position; last /
 * generated: the final prompt token), unsteered. One journal unit. */
static int run_means(study *st, const clens_pair *pairs, size_t np, json_t *out, clens_error *err)
{
    const steer_study *s = st->s;
    int L = st->L, C = st->C, rc = CLENS_OK;
    json_t *old = journal_take(st, "means", "unit", 0, &rc, err);
    if (rc) return rc;
    double *sum = calloc((size_t)st->n_cond * L, sizeof(double)), *inv = calloc((size_t)st->n_cond * L, sizeof(double));
    char *names = malloc((size_t)L * 48 + 1);
    char **lines = NULL;
    size_t nl = 0;
    clens_cache cache = {0};
    long rows = 0; /* activations per layer the means are over */
    if (!sum || !inv || !names) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    if (old) {
        json_t *m = json_object_get(old, "means");
        if (json_array_size(m) != (size_t)st->n_cond * L) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: the means unit holds %zu values, not %d", st->journal, json_array_size(m),
                           st->n_cond * L);
            goto end;
        }
        for (int k = 0; k < st->n_cond * L; k++) st->means[k] = (float)jexact_get(json_array_get(m, k));
        rows = (long)json_integer_value(json_object_get(old, "rows"));
        goto report;
    }
    /* the hooks of the steered layers; 1/|v| per condition and layer */
    names[0] = 0;
    for (int l = 0, n = 0; l < L; l++) {
        if (!st->active[l]) continue;
        char h[48];
        clens_hook_name(s->point, l, h, sizeof h);
        n += snprintf(names + n, 48, "%s%s", n ? "," : "", h);
        for (int c = 0; c < st->n_cond; c++) {
            const float *v = st->vecs + ((size_t)c * L + l) * C;
            double vv = 0;
            for (int k = 0; k < C; k++) vv += (double)v[k] * v[k];
            inv[(size_t)c * L + l] = vv > 0 ? 1 / sqrt(vv) : 0;
        }
    }
    if ((rc = clens_hooks_resolve(st->m, names, &cache, err))) goto end;
    int maxT = clens_model_get_info(st->m)->max_pos, every = s->positions == CLENS_STEER_POS_ALL || s->positions == CLENS_STEER_POS_PROMPT;
    if (s->prompts && !s->pairs && (rc = read_lines(s->prompts, &lines, &nl, err))) goto end;
    long used = 0;
    for (size_t i = 0; i < (s->pairs ? np : nl) && (s->limit <= 0 || used < s->limit) && !rc; i++) {
        int32_t *ids = NULL, *other = NULL;
        size_t T = 0;
        const char *reason = NULL;
        if (s->pairs) {
            rc = clens_pair_token_check(st->tok, st->tmpl, s->prompt_chat ? CLENS_PROMPT_CHAT : CLENS_PROMPT_RAW, &pairs[i],
                                        maxT, &reason, &ids, &other, &T, err);
        } else {
            int is_err = 0;
            rc = prompt_line(st, lines[i], i + 1, &ids, &T, &is_err, err);
            if (!rc && is_err) reason = "error prompt";
            else if (!rc && T > (size_t)maxT) reason = "length";
        }
        free(other);
        if (!rc && !reason) {
            int last = (int)T - 1;
            rc = clens_run_with_cache(st->m, ids, (int)T, every ? NULL : &last, every ? (int)T : 1, &cache, NULL, err);
            for (int e = 0; e < cache.n && !rc; e++) {
                int l = cache.entries[e].layer;
                for (int r = 0; r < cache.n_pos; r++) {
                    const float *x = cache.entries[e].data + (size_t)r * C;
                    for (int c = 0; c < st->n_cond; c++) {
                        const float *v = st->vecs + ((size_t)c * L + l) * C;
                        double xv = 0;
                        for (int k = 0; k < C; k++) xv += (double)x[k] * v[k];
                        sum[(size_t)c * L + l] += xv * inv[(size_t)c * L + l];
                    }
                }
            }
            if (!rc) { rows += cache.n_pos; used++; }
        }
        free(ids);
    }
    if (rc) goto end;
    if (used == 0) {
        rc = clens_err(err, CLENS_E_ARG, "steer: --mode mean-ablate needs reference prompts: the clean prompts of --pairs "
                       "or \"correct\" prompts in --prompts (none usable)");
        goto end;
    }
    json_t *arr = json_array();
    for (int k = 0; k < st->n_cond * L; k++) {
        st->means[k] = (float)(sum[k] / (double)rows);
        json_array_append_new(arr, jexact(st->means[k]));
    }
    if ((rc = journal_put(st, json_pack("{s:s,s:i,s:I,s:o}", "phase", "means", "unit", 0, "rows", (json_int_t)rows,
                                        "means", arr), err)))
        goto end;
    progress(st, "steer: mean-ablate: reference means over %ld rows of %ld prompts\n", rows, used);
report:;
    json_t *m = json_object(), *ly = json_array(), *dir = json_array(), *rnd = json_array();
    for (int l = 0; l < L; l++)
        if (st->active[l]) {
            json_array_append_new(ly, json_integer(l));
            json_array_append_new(dir, json_real(st->means[l]));
        }
    for (int c = 1; c < st->n_cond; c++) {
        json_t *r = json_array();
        for (int l = 0; l < L; l++)
            if (st->active[l]) json_array_append_new(r, json_real(st->means[(size_t)c * L + l]));
        json_array_append_new(rnd, r);
    }
    json_object_set_new(m, "layers", ly);
    json_object_set_new(m, "direction", dir);
    json_object_set_new(m, "random_draws", rnd);
    json_object_set_new(m, "rows_per_layer", json_integer(rows));
    json_object_set_new(m, "reference", json_string(s->pairs ? "clean prompts of the pairs" : "correct prompts"));
    json_object_set_new(out, "means", m);
end:
    clens_cache_free(&cache);
    free_lines(lines, nl);
    free(sum);
    free(inv);
    free(names);
    return rc;
}

static int run_pairs(study *st, const clens_pair *pairs, size_t np, json_t *out, clens_error *err)
{
    const steer_study *s = st->s;
    int W = 2 * (1 + st->n_specs), rc = 0;
    double *vals = malloc(sizeof(double) * W);
    double *sum = calloc(W, sizeof(double));
    double *cl = calloc(2 * (size_t)s->n_alpha + 1, sizeof(double)), *co = cl ? cl + s->n_alpha : NULL; /* per alpha */
    json_t *per = json_array(), *drops = json_object();
    clens_metric met = {CLENS_METRIC_LOGPROB_MASS, st->mass.ids, st->mass.n, NULL, NULL};
    long used = 0;
    if (!vals || !sum || !cl) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    for (size_t i = 0; i < np && (s->limit <= 0 || used < s->limit); i++) {
        const char *reason = NULL;
        int32_t *ic = NULL, *ir = NULL;
        size_t n = 0;
        if ((rc = clens_pair_token_check(st->tok, st->tmpl, s->prompt_chat ? CLENS_PROMPT_CHAT : CLENS_PROMPT_RAW, &pairs[i],
                                         clens_model_get_info(st->m)->max_pos, &reason, &ic, &ir, &n, err)))
            goto end;
        if (reason) {
            json_object_set_new(drops, reason, json_integer(json_integer_value(json_object_get(drops, reason)) + 1));
            free(ic);
            free(ir);
            continue;
        }
        int P = 0;
        json_t *old = journal_take(st, "pair", "i", (json_int_t)i, &rc, err);
        if (old) {
            json_t *v = json_object_get(old, "values");
            const char *id = json_string_value(json_object_get(old, "id"));
            if (!id || strcmp(id, pairs[i].id) != 0)
                rc = clens_err(err, CLENS_E_FORMAT, "%s: pair %zu is '%s' there, '%s' in %s; delete it to start over",
                               st->journal, i, id ? id : "?", pairs[i].id, s->pairs);
            else if (json_array_size(v) != (size_t)W || !json_is_integer(json_object_get(old, "shared_prefix")))
                rc = clens_err(err, CLENS_E_FORMAT, "%s: pair %zu: expected %d values and shared_prefix", st->journal, i, W);
            for (int k = 0; k < W && !rc; k++) vals[k] = jexact_get(json_array_get(v, k));
            P = (int)json_integer_value(json_object_get(old, "shared_prefix"));
        } else if (!rc) {
            rc = clens_steer_pair(st->m, ic, ir, (int)n, st->specs, st->n_specs, &met, 1, s->rerun, vals, &P, err);
            json_t *v = json_array();
            for (int k = 0; k < W && !rc; k++) json_array_append_new(v, jexact(vals[k]));
            if (!rc) rc = journal_put(st, json_pack("{s:s,s:I,s:s,s:i,s:o}", "phase", "pair", "i", (json_int_t)i, "id",
                                                    pairs[i].id, "shared_prefix", P, "values", v), err);
            else json_decref(v);
        }
        free(ic);
        free(ir);
        if (rc) goto end;
        for (int k = 0; k < W; k++) sum[k] += vals[k];
        json_t *e = json_object();
        json_object_set_new(e, "id", json_string(pairs[i].id));
        json_object_set_new(e, "n_tokens", json_integer((json_int_t)n));
        json_object_set_new(e, "shared_prefix", json_integer(P));
        json_object_set_new(e, "values", num_array(vals, W));
        json_array_append_new(per, e);
        used++;
        progress(st, "steer: pair %ld (%s): corrupted %.4f -> %.4f at alpha %g\n", used, pairs[i].id, vals[1], vals[3],
                 s->alphas[0]);
    }
    if (used == 0) { /* every mean below would be NaN with exit 0 */
        rc = clens_err(err, CLENS_E_FORMAT, "steer: no usable pair in %s (%zu read; empty, or every one dropped)", s->pairs,
                       np);
        goto end;
    }
    json_t *o = json_object();
    json_object_set_new(o, "n_pairs", json_integer(used));
    json_object_set_new(o, "drops", drops);
    drops = NULL;
    json_object_set_new(o, "metric", json_string("logprob_mass"));
    json_object_set_new(o, "values_layout", json_string("[unsteered clean, unsteered corrupted, then (clean, corrupted) per "
                                                        "condition (direction, random 1..n) and alpha, alpha fastest]"));
    double d = used ? (double)used : NAN;
    json_object_set_new(o, "unsteered", json_pack("{s:o,s:o}", "clean", num(sum[0] / d), "corrupted", num(sum[1] / d)));
    for (int c = 0; c < st->n_cond; c++) {
        for (int a = 0; a < s->n_alpha; a++) {
            int j = c * s->n_alpha + a;
            cl[a] = sum[2 * (1 + j)] / d;
            co[a] = sum[2 * (1 + j) + 1] / d;
        }
        json_t *e = json_pack("{s:o,s:o}", "clean", num_array(cl, s->n_alpha), "corrupted", num_array(co, s->n_alpha));
        if (c == 0) json_object_set_new(o, "direction", e);
        else {
            json_t *r = json_object_get(o, "random_draws");
            if (!r) { r = json_array(); json_object_set_new(o, "random_draws", r); }
            json_array_append_new(r, e);
        }
    }
    if (st->n_cond > 1) { /* mean over draws */
        for (int a = 0; a < s->n_alpha; a++) {
            cl[a] = co[a] = 0;
            for (int c = 1; c < st->n_cond; c++) {
                int j = c * s->n_alpha + a;
                cl[a] += sum[2 * (1 + j)] / d / (st->n_cond - 1);
                co[a] += sum[2 * (1 + j) + 1] / d / (st->n_cond - 1);
            }
        }
        json_object_set_new(o, "random", json_pack("{s:o,s:o}", "clean", num_array(cl, s->n_alpha), "corrupted", num_array(co, s->n_alpha)));
    }
    json_object_set_new(o, "per_pair", per);
    per = NULL;
    json_object_set_new(out, "pairs", o);
end:
    json_decref(per);
    json_decref(drops);
    free(vals);
    free(sum);
    free(cl);
    return rc;
}

/* One generation condition over every prompt: rates by kind, samples. */
static int gen_condition(study *st, int32_t **ids, int *lens, const int *is_err, int n, const clens_steer *spec, int ban,
                         double *rate_err, double *rate_ok, json_t *samples, const char *label, clens_error *err)
{
    const steer_study *s = st->s;
    int32_t **out = calloc(n, sizeof *out);
    int *out_n = calloc(n, sizeof *out_n);
    if (!out || !out_n) { free(out); free(out_n); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
    int32_t *stops = NULL;
    int nstop = 0;
    clens_model_stop_ids(st->m, &stops, &nstop);
    int rc = clens_steer_generate(st->m, (const int32_t *const *)ids, lens, n, spec, ban ? st->mass.ids : NULL,
                                  ban ? st->mass.n : 0, s->max_new, stops, nstop, out, out_n, err);
    free(stops);
    if (!rc) {
        int ne = 0, no = 0, he = 0, ho = 0;
        for (int i = 0; i < n; i++) {
            int hit = 0;
            for (int k = 0; k < out_n[i] && k < s->k_window; k++) hit |= has_id(&st->mass, out[i][k]);
            if (is_err[i]) { ne++; he += hit; } else { no++; ho += hit; }
            if (samples && i < s->n_samples) {
                char *txt = NULL;
                size_t tl = 0;
                clens_error e2 = {0};
                json_t *jid = json_array();
                for (int k = 0; k < out_n[i]; k++) json_array_append_new(jid, json_integer(out[i][k]));
                json_t *jt = clens_detokenize(st->tok, out[i], out_n[i], 0, &txt, &tl, &e2) == 0 ? json_stringn_nocheck(txt, tl) : json_null();
                free(txt);
                json_array_append_new(samples, json_pack("{s:s,s:i,s:s,s:o,s:o}", "condition", label, "prompt", i, "kind",
                                                         is_err[i] ? "error" : "correct", "ids", jid, "text", jt ? jt : json_null()));
            }
        }
        *rate_err = ne ? (double)he / ne : NAN;
        *rate_ok = no ? (double)ho / no : NAN;
    }
    for (int i = 0; i < n; i++) free(out[i]);
    free(out);
    free(out_n);
    return rc;
}

/* gen_condition through the journal: unit k of the generation phase. */
static int gen_unit(study *st, int k, int32_t **ids, int *lens, const int *is_err, int n, const clens_steer *spec, int ban,
                    double *rate_err, double *rate_ok, json_t *samples, const char *label, clens_error *err)
{
    int rc;
    json_t *old = journal_take(st, "generation", "unit", k, &rc, err);
    if (rc) return rc;
    if (old) {
        *rate_err = jexact_get(json_object_get(old, "error"));
        *rate_ok = jexact_get(json_object_get(old, "correct"));
        json_t *sm = json_object_get(old, "samples");
        if (samples && json_is_array(sm)) json_array_extend(samples, sm);
        return CLENS_OK;
    }
    size_t s0 = samples ? json_array_size(samples) : 0;
    if ((rc = gen_condition(st, ids, lens, is_err, n, spec, ban, rate_err, rate_ok, samples, label, err))) return rc;
    json_t *sm = json_array();
    for (size_t i = s0; samples && i < json_array_size(samples); i++) json_array_append(sm, json_array_get(samples, i));
    return journal_put(st, json_pack("{s:s,s:i,s:s,s:o,s:o,s:o}", "phase", "generation", "unit", k, "label", label, "error",
                                     jexact(*rate_err), "correct", jexact(*rate_ok), "samples", sm), err);
}

static int run_generation(study *st, const clens_pair *pairs, size_t np, json_t *out, clens_error *err)
{
    const steer_study *s = st->s;
    int cap = 0, n = 0, rc = 0;
    int32_t **ids = NULL;
    int *lens = NULL, *is_err = NULL;
    char **lines = NULL;
    size_t nl = 0;
    double *rer = calloc(4 * (size_t)s->n_alpha, sizeof(double)), *ror = rer + s->n_alpha, *mre = ror + s->n_alpha,
           *mro = mre + s->n_alpha;
    if (!rer) return clens_err(err, CLENS_E_NOMEM, "out of memory");
#define PUSH(ID, LEN, ERR)                                                                                    \
    do {                                                                                                      \
        if (n == cap) {                                                                                       \
            cap = cap ? 2 * cap : 16;                                                                         \
            ids = realloc(ids, sizeof *ids * cap);                                                            \
            lens = realloc(lens, sizeof *lens * cap);                                                         \
            is_err = realloc(is_err, sizeof *is_err * cap);                                                   \
            if (!ids || !lens || !is_err) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; } \
        }                                                                                                     \
        ids[n] = (ID); lens[n] = (int)(LEN); is_err[n] = (ERR); n++;                                          \
    } while (0)
    if (s->prompts) {
        if ((rc = read_lines(s->prompts, &lines, &nl, err))) goto end;
        for (size_t i = 0; i < nl && (s->limit <= 0 || (long)n < 2 * s->limit); i++) {
            int32_t *v = NULL;
            size_t vn = 0;
            int e = 0;
            if ((rc = prompt_line(st, lines[i], i + 1, &v, &vn, &e, err))) goto end;
            PUSH(v, vn, e);
        }
    } else {
        for (size_t i = 0; i < np && (s->limit <= 0 || (long)n < 2 * s->limit); i++)
            for (int e = 0; e < 2; e++) {
                int32_t *v = NULL;
                size_t vn = 0;
                if ((rc = clens_prompt_ids(st->tok, st->tmpl, s->prompt_chat ? CLENS_PROMPT_CHAT : CLENS_PROMPT_RAW, pairs[i].problem,
                                           e ? pairs[i].corrupted_prefix : pairs[i].clean_prefix, &v, &vn, err)))
                    goto end;
                PUSH(v, vn, e);
            }
    }
#undef PUSH
    if (n == 0) {
        rc = clens_err(err, CLENS_E_FORMAT, "%s: no generation prompt", s->prompts ? s->prompts : s->pairs);
        goto end;
    }
    json_t *o = json_object(), *samples = json_array();
    int ne = 0;
    for (int i = 0; i < n; i++) ne += is_err[i];
    json_object_set_new(o, "k", json_integer(s->k_window));
    json_object_set_new(o, "n_error", json_integer(ne));
    json_object_set_new(o, "n_correct", json_integer(n - ne));
    json_object_set_new(o, "samples", samples);
    json_object_set_new(out, "generation", o);
    double re, ro;
    if ((rc = gen_unit(st, 0, ids, lens, is_err, n, NULL, 0, &re, &ro, samples, "unsteered", err))) goto end;
    json_object_set_new(o, "unsteered", json_pack("{s:o,s:o}", "error", num(re), "correct", num(ro)));
    progress(st, "steer: generation unsteered: correction rate %.3f after an error, %.3f after a correct step\n", re, ro);
    if ((rc = gen_unit(st, 1, ids, lens, is_err, n, NULL, 1, &re, &ro, samples, "ban", err))) goto end;
    json_object_set_new(o, "ban", json_pack("{s:o,s:o}", "error", num(re), "correct", num(ro)));
    for (int c = 0; c < st->n_cond; c++) {
        for (int a = 0; a < s->n_alpha; a++) {
            char label[64];
            if (c) snprintf(label, sizeof label, "random%d alpha=%g", c, s->alphas[a]);
            else snprintf(label, sizeof label, "direction alpha=%g", s->alphas[a]);
            if ((rc = gen_unit(st, 2 + c * s->n_alpha + a, ids, lens, is_err, n, &st->specs[c * s->n_alpha + a], 0, &rer[a], &ror[a],
                               c ? NULL : samples, label, err)))
                goto end;
            if (c) { mre[a] += rer[a] / (st->n_cond - 1); mro[a] += ror[a] / (st->n_cond - 1); }
        }
        if (!c) json_object_set_new(o, "direction", json_pack("{s:o,s:o}", "error", num_array(rer, s->n_alpha), "correct", num_array(ror, s->n_alpha)));
        progress(st, "steer: generation condition %d/%d done\n", c + 1, st->n_cond);
    }
    if (st->n_cond > 1)
        json_object_set_new(o, "random", json_pack("{s:o,s:o}", "error", num_array(mre, s->n_alpha), "correct", num_array(mro, s->n_alpha)));
end:
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(is_err);
    free(rer);
    free_lines(lines, nl);
    return rc;
}

static int run_neutral(study *st, json_t *out, clens_error *err)
{
    const steer_study *s = st->s;
    char **lines = NULL;
    size_t nl = 0;
    int rc = read_lines(s->neutral, &lines, &nl, err);
    if (rc) return rc;
    int nt = 0;
    int32_t **ids = calloc(nl ? nl : 1, sizeof *ids);
    size_t *lens = calloc(nl ? nl : 1, sizeof *lens);
    double *kl = calloc((size_t)st->n_specs + s->n_alpha, sizeof(double)), *ag = calloc((size_t)st->n_specs + s->n_alpha, sizeof(double));
    if (!ids || !lens || !kl || !ag) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    for (size_t i = 0; i < nl && (s->limit <= 0 || nt < s->limit); i++) {
        json_t *o = lines[i][0] == '{' ? json_loads(lines[i], 0, NULL) : NULL;
        const char *t = o ? json_string_value(json_object_get(o, "text")) : lines[i];
        if (!t) { json_decref(o); rc = clens_err(err, CLENS_E_FORMAT, "%s:%zu: a JSON line needs \"text\"", s->neutral, i + 1); goto end; }
        rc = clens_prompt_tokenize(st->tok, t, 1, &ids[nt], &lens[nt], err);
        json_decref(o);
        if (rc) goto end;
        if (lens[nt] > (size_t)clens_model_get_info(st->m)->max_pos) lens[nt] = (size_t)clens_model_get_info(st->m)->max_pos;
        if (lens[nt]) nt++;
        else free(ids[nt]);
    }
    if (nt == 0) { /* means over no text would be NaN with exit 0 */
        rc = clens_err(err, CLENS_E_FORMAT, "%s: no neutral text (the file is empty or every text encodes to no tokens)",
                       s->neutral);
        goto end;
    }
    for (int j = 0; j < st->n_specs; j++) {
        json_t *old = journal_take(st, "neutral", "spec", j, &rc, err);
        if (rc) goto end;
        if (old) {
            kl[j] = jexact_get(json_object_get(old, "mean_kl"));
            ag[j] = jexact_get(json_object_get(old, "top1_agree"));
            continue;
        }
        for (int i = 0; i < nt; i++) {
            double k, a;
            if ((rc = clens_steer_kl(st->m, ids[i], (int)lens[i], &st->specs[j], &k, &a, err))) goto end;
            kl[j] += k / nt;
            ag[j] += a / nt;
        }
        if ((rc = journal_put(st, json_pack("{s:s,s:i,s:o,s:o}", "phase", "neutral", "spec", j, "mean_kl", jexact(kl[j]),
                                            "top1_agree", jexact(ag[j])), err)))
            goto end;
    }
    json_t *o = json_object();
    json_object_set_new(o, "n_texts", json_integer(nt));
    json_object_set_new(o, "direction", json_pack("{s:o,s:o}", "mean_kl", num_array(kl, s->n_alpha), "top1_agree", num_array(ag, s->n_alpha)));
    if (st->n_cond > 1) {
        double *mk = kl + st->n_specs, *ma = ag + st->n_specs; /* the spare n_alpha of each */
        for (int a = 0; a < s->n_alpha; a++) {
            mk[a] = ma[a] = 0;
            for (int c = 1; c < st->n_cond; c++) { mk[a] += kl[c * s->n_alpha + a] / (st->n_cond - 1); ma[a] += ag[c * s->n_alpha + a] / (st->n_cond - 1); }
        }
        json_object_set_new(o, "random", json_pack("{s:o,s:o}", "mean_kl", num_array(mk, s->n_alpha), "top1_agree", num_array(ma, s->n_alpha)));
    }
    json_object_set_new(out, "neutral", o);
    progress(st, "steer: neutral texts: %d\n", nt);
end:
    for (int i = 0; i < nt; i++) free(ids[i]);
    free(ids);
    free(lens);
    free(kl);
    free(ag);
    free_lines(lines, nl);
    return rc;
}

static double jget(json_t *o, const char *a, const char *b, int i)
{
    json_t *v = json_object_get(json_object_get(o, a), b);
    v = i >= 0 ? json_array_get(v, (size_t)i) : v;
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static int write_svgs(const steer_study *s, json_t *res, clens_error *err)
{
    int rc = 0, n = s->n_alpha;
    double *y[3] = {calloc(3 * (size_t)n + 1, sizeof(double)), NULL, NULL};
    if (!y[0]) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    y[1] = y[0] + n;
    y[2] = y[1] + n;
    const double *ys[3] = {y[0], y[1], y[2]};
    json_t *p = json_object_get(res, "pairs");
    if (p) {
        for (int a = 0; a < n; a++) {
            y[0][a] = jget(p, "direction", "corrupted", a);
            y[1][a] = jget(p, "random", "corrupted", a);
            y[2][a] = jget(p, "unsteered", "corrupted", -1);
        }
        const char *names[3] = {"direction", "random (mean)", "unsteered"};
        char *svg = svg_lines("Correction metric on corrupted prompts", "logprob_mass", s->alphas, n, ys, names, 3);
        if (!svg) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        rc = write_text(s->out_dir, "steer_pairs.svg", svg, err);
        free(svg);
        if (rc) goto done;
    }
    json_t *g = json_object_get(res, "generation");
    if (g) {
        for (int a = 0; a < n; a++) {
            y[0][a] = jget(g, "direction", "error", a);
            y[1][a] = jget(g, "random", "error", a);
            y[2][a] = jget(g, "ban", "error", -1);
        }
        const char *names[3] = {"direction", "random (mean)", "token ban"};
        char *svg = svg_lines("Correction-word rate after an error", "rate in first K tokens", s->alphas, n, ys, names, 3);
        if (!svg) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        rc = write_text(s->out_dir, "steer_generation.svg", svg, err);
        free(svg);
    }
done:
    free(y[0]);
    return rc;
}

int steer_study_run(clens_model *m, const steer_study *s, json_t **result, clens_error *err)
{
    const clens_model_info *in = clens_model_get_info(m);
    study st = {0};
    st.m = m;
    st.s = s;
    st.L = in->n_layers;
    st.C = in->d_model;
    st.n_cond = 1 + s->n_random;
    st.n_specs = st.n_cond * s->n_alpha;
    *result = NULL;
    int rc = 0;
    json_t *doc = NULL, *res = NULL;
    clens_pair *pairs = NULL;
    size_t np = 0;
    size_t LC = (size_t)st.L * st.C;
    st.vecs = calloc(LC * st.n_cond, sizeof(float));
    st.active = calloc(st.L, 1);
    st.specs = calloc(st.n_specs, sizeof *st.specs);
    st.means = calloc((size_t)st.n_cond * st.L, sizeof(float));
    unsigned char *has = calloc(st.L, 1);
    if (!st.vecs || !st.active || !st.specs || !st.means || !has) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
    if (s->n_alpha < 1) { rc = clens_err(err, CLENS_E_ARG, "steer: no alpha"); goto end; }
    /* The direction. */
    if (s->n_cvec) {
        clens_cvec cv = {0};
        clens_steer tmp;
        for (int i = 0; i < s->n_cvec && !rc; i++) rc = clens_cvec_load(&cv, s->cvec_files[i], s->cvec_scales[i], err);
        if (!rc) rc = clens_cvec_steer(&cv, st.L, st.C, s->cv_start, s->cv_end, st.vecs, has, &tmp, err);
        clens_cvec_free(&cv);
        if (rc) goto end;
    } else if ((rc = steer_direction_load_at(s->direction, s->point, st.L, st.C, st.vecs, has, err))) {
        goto end;
    }
    for (int l = 0; l < st.L; l++) st.active[l] = has[l] && !s->layers;
    for (int i = 0; s->layers && i < s->n_layers_sel; i++) {
        int l = s->layers[i];
        if (l < 0 || l >= st.L || !has[l]) {
            rc = clens_err(err, CLENS_E_ARG, "steer: layer %d %s", l, l < 0 || l >= st.L ? "is outside the model" : "has no direction in the file");
            goto end;
        }
        st.active[l] = 1;
    }
    int n_active = 0;
    for (int l = 0; l < st.L; l++) n_active += st.active[l];
    if (!n_active) { rc = clens_err(err, CLENS_E_ARG, "steer: the direction gives no layer to steer"); goto end; }
    for (int c = 1; c < st.n_cond; c++) random_dirs(st.vecs, st.active, st.L, st.C, s->seed + (uint64_t)c, st.vecs + LC * c);
    for (int c = 0; c < st.n_cond; c++)
        for (int a = 0; a < s->n_alpha; a++)
            st.specs[c * s->n_alpha + a] = (clens_steer){s->mode, s->point, s->positions, (float)s->alphas[a], st.L,
                                                          st.vecs + LC * c, st.active, st.means + (size_t)st.L * c};
    /* Tokenizer, correction ids. */
    if ((rc = clens_tokenizer_open(&st.tok, in->path, err))) goto end;
    if (s->prompt_chat && (rc = clens_chat_template_open(&st.tmpl, in->path, err))) goto end;
    if ((rc = run_token_sets_build(st.tok, NULL, 0, &st.mass, &st.mean, err))) goto end;
    /* settings.json */
    doc = json_object();
    json_object_set_new(doc, "clens_version", json_string(CLENS_VERSION));
    char *abs_model = realpath(in->path, NULL); /* the folder however it was named */
    json_t *sj = settings_json(s, abs_model ? abs_model : in->path);
    free(abs_model);
    json_object_set_new(sj, "correction_ids", run_token_set_json(&st.mass));
    json_object_set_new(doc, "settings", sj);
    char *canon = json_dumps(sj, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    char hash[65] = "";
    if (canon) clens_sha256_hex(canon, strlen(canon), hash);
    free(canon);
    json_object_set_new(doc, "settings_hash", json_string(hash));
    json_object_set_new(doc, "provenance", run_provenance_json(m, st.tok, st.tmpl));
    int done = 0;
    if ((rc = settings_check(s, doc, hash, &done, err))) goto end;
    if (done) {
        char p[4200];
        json_error_t je;
        snprintf(p, sizeof p, "%s/steer.json", s->out_dir);
        rc = clens_json_load_regular(p, 0, &res, &je, err);
        progress(&st, "steer: %s is complete with these settings\n", p);
        snprintf(p, sizeof p, "%s/steer.partial.jsonl", s->out_dir);
        unlink(p); /* a kill between steer.json and the journal's removal */
        goto end;
    }
    res = json_object();
    json_object_set_new(res, "schema", json_string("clens.steer/1"));
    json_object_set_new(res, "settings_hash", json_string(hash));
    json_object_set_new(res, "hook", json_string(s->point == CLENS_HOOK_RESID_PRE ? "resid_pre" : "resid_post"));
    json_object_set_new(res, "mode", json_string(clens_steer_mode_name(s->mode)));
    json_object_set_new(res, "positions", json_string(clens_steer_positions_name(s->positions)));
    json_object_set_new(res, "alphas", num_array(s->alphas, s->n_alpha));
    json_t *ly = json_array(), *nrm = json_array();
    for (int l = 0; l < st.L; l++)
        if (st.active[l]) {
            double nv = 0;
            for (int c = 0; c < st.C; c++) nv += (double)st.vecs[(size_t)l * st.C + c] * st.vecs[(size_t)l * st.C + c];
            if (!isfinite(nv)) {
                rc = clens_err(err, CLENS_E_NONFINITE, "steer: the vector of layer %d holds NaN or Inf (or overflows) in %s", l,
                               s->direction ? s->direction : "the control vectors");
                json_decref(ly);
                json_decref(nrm);
                goto end;
            }
            json_array_append_new(ly, json_integer(l));
            json_array_append_new(nrm, json_real(sqrt(nv)));
        }
    json_object_set_new(res, "layers", ly);
    json_object_set_new(res, "direction_norms", nrm);
    json_object_set_new(res, "n_random", json_integer(s->n_random));
    if (s->pairs && (rc = clens_pairs_read_jsonl(s->pairs, &pairs, &np, err))) goto end;
    if ((rc = journal_open(&st, hash, err))) goto end;
    if (s->mode == CLENS_STEER_MEAN_ABLATE && (rc = run_means(&st, pairs, np, res, err))) goto end;
    if (s->pairs && (rc = run_pairs(&st, pairs, np, res, err))) goto end;
    if ((s->prompts || s->pairs) && (rc = run_generation(&st, pairs, np, res, err))) goto end;
    if (s->neutral && (rc = run_neutral(&st, res, err))) goto end;
    if ((rc = write_svgs(s, res, err))) goto end;
    if ((rc = write_json(s->out_dir, "steer.json", res, err))) goto end;
    unlink(st.journal); /* steer.json holds it all now */
end:
    json_decref(st.replay);
    if (rc) { json_decref(res); res = NULL; }
    *result = res;
    json_decref(doc);
    clens_pairs_free(pairs, np);
    run_token_set_clear(&st.mass);
    run_token_set_clear(&st.mean);
    clens_tokenizer_free(st.tok);
    clens_chat_template_free(st.tmpl);
    free(st.vecs);
    free(st.active);
    free(st.specs);
    free(st.means);
    free(has);
    return rc;
}
