/*
 * study.c: the study runner behind `clens study STUDY.json` (docs/study.md):
 * several models through one patching protocol, then the comparison.
 *
 * The study folder is the unit of resumption: settings.json holds the
 * study's canonical settings and their hash (a rerun with other settings is
 * refused, naming the key); pairs are rebuilt deterministically (a shared
 * build, or per model from the append-only generations file of the on-policy
 * builder, which resumes itself); each model's run folder is the run
 * engine's (clens_run_*), which resumes from its records; the comparison and
 * study.md are recomputed from the run folders at the end, atomically. So a
 * study killed at any point and rerun ends with the same files as one that
 * ran straight through, apart from timing fields.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "base/infile.h"
#include "base/outdir.h"
#include "base/path.h"
#include "formats/formats.h"
#include "interp/study_internal.h"
#include "report/report.h"

static char *join(const char *a, const char *b) { return clens_path_join(a, b); }

static char *join3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 3;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s/%s/%s", a, b, c);
    return s;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int clens_study_load(clens_study **out, const char *path, const clens_study_options *opt, clens_error *err)
{
    *out = NULL;
    clens_study *s = calloc(1, sizeof *s);
    if (!s) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    int rc = study_file_parse(s, path, opt ? opt->fidelity : NULL, opt ? opt->out : NULL, err);
    if (rc) {
        clens_study_free(s);
        return rc;
    }
    s->threads = opt ? opt->threads : 0;
    s->shards = 1;
    *out = s;
    return CLENS_OK;
}

void clens_study_free(clens_study *s)
{
    if (!s) return;
    study_file_clear(s);
    free(s);
}

const char *clens_study_settings_hash(const clens_study *s)
{
    return s->settings_hash;
}

const char *clens_study_out(const clens_study *s)
{
    return s->out;
}

char *clens_study_settings_text(const clens_study *s)
{
    return json_dumps(s->settings, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
}

/* ------------------------------------------------------ settings.json */

/* The value at a difference path ("models[1].training") in settings, or NULL. */
static const json_t *value_at(const json_t *v, const char *key)
{
    char part[256];
    while (v && *key) {
        size_t n = strcspn(key, ".[");
        if (n) {
            snprintf(part, sizeof part, "%.*s", (int)(n < 255 ? n : 255), key);
            v = json_object_get(v, part);
            key += n;
        } else if (*key == '[') {
            v = json_array_get(v, strtoul(key + 1, NULL, 10));
            key = strchr(key, ']');
            if (!key) return NULL;
            key++;
        } else {
            key++;
        }
    }
    return v;
}

/* NULL if dir has no study or the same settings; else the differing key (malloc'd) and its two values. */
static int folder_state(const clens_study *s, char **diff, char **was, char **now, clens_error *err)
{
    *diff = *was = *now = NULL;
    char *path = join(s->out, "settings.json");
    if (!path) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!exists(path)) { free(path); return CLENS_OK; }
    json_t *old = NULL;
    json_error_t je;
    int rc = clens_json_load_regular(path, 0, &old, &je, err);
    if (!rc) {
        const json_t *os = json_object_get(old, "settings");
        if (!json_is_object(os)) {
            rc = clens_err(err, CLENS_E_FORMAT, "%s: no \"settings\" object: not a study folder", path);
        } else if ((*diff = study_json_difference(os, s->settings))) {
            *was = clens_json_brief(value_at(os, *diff));
            *now = clens_json_brief(value_at(s->settings, *diff));
        } else {
            const char *h = json_string_value(json_object_get(old, "settings_hash"));
            if (!h || strcmp(h, s->settings_hash) != 0) {
                *diff = strdup("settings_hash");
                *was = strdup(h ? h : "(absent)");
                *now = strdup(s->settings_hash);
            }
        }
    }
    json_decref(old);
    free(path);
    return rc;
}

static int write_or_check_settings(const clens_study *s, clens_error *err)
{
    char *diff, *was, *now;
    int rc = folder_state(s, &diff, &was, &now, err);
    if (rc) return rc;
    if (diff) {
        char what[300];
        snprintf(what, sizeof what, strcmp(diff, "settings_hash") ? "settings.%s" : "%s", diff);
        rc = clens_outdir_refuse_text(err, s->out, "study", what, was, now);
        free(diff); free(was); free(now);
        return rc;
    }
    char *path = join(s->out, "settings.json");
    if (!path) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (exists(path)) { free(path); return CLENS_OK; }
    char file_sha[65];
    if ((rc = clens_sha256_file_hex(s->path, file_sha, err))) { free(path); return rc; }
    json_t *doc = json_object();
    json_object_set_new(doc, "clens_version", json_string(CLENS_VERSION));
    json_object_set_new(doc, "settings_hash", json_string(s->settings_hash));
    json_object_set(doc, "settings", s->settings);
    json_object_set_new(doc, "provenance", json_pack("{s:s, s:s}", "study_file", s->path, "study_file_sha256", file_sha));
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(doc);
    if (!text) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    else {
        size_t n = strlen(text);
        char *t2 = realloc(text, n + 2);
        if (t2) { text = t2; text[n] = '\n'; text[n + 1] = 0; }
        rc = clens_write_file_atomic(path, text, strlen(text), err);
    }
    free(text);
    free(path);
    return rc;
}

/* ------------------------------------------------------------ helpers */

static int open_model(const clens_study *s, const char *spec, clens_model **m, clens_error *err)
{
    clens_model_params mp = clens_model_default_params();
    mp.n_threads = s->threads;
    mp.matmul = strcmp(s->matmul, "portable") == 0 ? CLENS_MATMUL_PORTABLE
              : strcmp(s->matmul, "bf16") == 0     ? CLENS_MATMUL_BF16
                                                   : CLENS_MATMUL_DEFAULT;
    return clens_model_open(m, spec, &mp, err);
}

static int pairs_params(const clens_study *s, clens_pairs_params *pp, clens_error *err)
{
    *pp = clens_pairs_default_params();
    pp->data_path = s->data;
    pp->seed = (uint64_t)s->pairs_seed;
    pp->limit = s->limit;
    int rc;
    if ((rc = clens_pairs_parse_format(pp, s->format, err)) || (rc = clens_pairs_parse_cut(pp, s->cut, err)) ||
        (rc = clens_pairs_parse_corrupt(pp, s->corrupt, err)) || (rc = clens_pairs_parse_site(pp, s->site, err)))
        return rc;
    return CLENS_OK;
}

/* The layers to patch for a model of n_layers blocks (NULL = all). */
static int model_layers(const clens_study *s, int n_layers, int **out, int *n, clens_error *err)
{
    *out = NULL;
    *n = 0;
    if (s->layers_kind == STUDY_LAYERS_ALL) return CLENS_OK;
    int top = n_layers - 1; /* resid_pre also has n_layers (after the last block) */
    for (int k = 0; k < s->n_types; k++)
        if (s->types[k] == CLENS_SITE_RESID_PRE) top = n_layers;
    if (s->layers_kind == STUDY_LAYERS_LIST) {
        for (int i = 0; i < s->n_layers; i++)
            if (s->layers[i] > top)
                return clens_err(err, CLENS_E_ARG, "layers: %d is outside 0..%d for this model", s->layers[i], top);
        *out = malloc(sizeof(int) * (size_t)s->n_layers);
        if (!*out) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        memcpy(*out, s->layers, sizeof(int) * (size_t)s->n_layers);
        *n = s->n_layers;
        return CLENS_OK;
    }
    *out = malloc(sizeof(int) * (size_t)(top / 2 + 1));
    if (!*out) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int l = 0; l <= top; l += 2) (*out)[(*n)++] = l;
    return CLENS_OK;
}

static clens_run_params run_params(const clens_study *s, const char *pairs_path, const int *layers, int n_layers)
{
    clens_run_params rp = clens_run_default_params();
    rp.pairs_path = pairs_path;
    rp.site_types = s->types;
    rp.n_site_types = s->n_types;
    rp.layers = layers;
    rp.n_layers = n_layers;
    rp.metric = s->metric;
    rp.words = (const char *const *)s->words;
    rp.n_words = s->n_words;
    rp.method = s->method;
    rp.prompt_chat = s->prompt_chat;
    rp.filter = s->filter;
    rp.min_diff = s->min_diff;
    rp.n_target = s->n_target;
    rp.bootstrap_resamples = s->bootstrap;
    rp.bootstrap_seed = s->bootstrap_seed;
    rp.max_tokens = s->max_tokens;
    rp.matmul = s->matmul;
    rp.fidelity = s->fidelity;
    return rp;
}

/* Records in dir/records.jsonl, and kept among them (whole lines only). */
static void run_counts(const char *dir, long *done, long *kept)
{
    *done = *kept = 0;
    char *path = join(dir, "records.jsonl");
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] != '\n') break;
        json_t *r = json_loads(line, 0, NULL);
        if (r) {
            (*done)++;
            const char *st = json_string_value(json_object_get(r, "status"));
            *kept += st && strcmp(st, "kept") == 0;
        }
        json_decref(r);
    }
    free(line);
    fclose(f);
}

static const char *pairs_mode_name(const clens_study *s)
{
    return s->pairs_mode == STUDY_PAIRS_FILE ? "file" : s->pairs_mode == STUDY_PAIRS_BUILD ? "build" : "on-policy";
}

static void describe_pairs(const clens_study *s, clens_sb *b)
{
    if (s->pairs_mode == STUDY_PAIRS_FILE) {
        clens_sb_printf(b, "pairs: shared file %s%s\n", s->pairs_file, exists(s->pairs_file) ? "" : " (MISSING)");
        return;
    }
    clens_sb_printf(b, "pairs: %s from %s%s (format %s, cut %s, corrupt %s, site %s, seed %ld, limit %ld",
                    s->pairs_mode == STUDY_PAIRS_BUILD ? "one shared file built" : "per model, on-policy (greedy)",
                    s->data, exists(s->data) ? "" : " (MISSING)", s->format, s->cut, s->corrupt, s->site,
                    s->pairs_seed, s->limit);
    if (s->pairs_mode == STUDY_PAIRS_ON_POLICY)
        clens_sb_printf(b, ", %s generation prompt, %d new tokens, batch %d, pool %ld", s->gen_chat ? "chat" : "raw",
                        s->max_new, s->batch, s->pool);
    clens_sb_printf(b, ") -> %s/%s\n", s->out,
                    s->pairs_mode == STUDY_PAIRS_BUILD ? "pairs.jsonl" : "pairs/<model>.jsonl");
}

static void describe_protocol(const clens_study *s, clens_sb *b)
{
    clens_sb_printf(b, "patching: prompt %s, sites", s->prompt_chat ? "chat" : "raw");
    for (int k = 0; k < s->n_types; k++) clens_sb_printf(b, "%s%s", k ? "," : " ", clens_site_type_name(s->types[k]));
    clens_sb_printf(b, ", layers %s, metric %s", s->layers_kind == STUDY_LAYERS_ALL ? "all"
                                                 : s->layers_kind == STUDY_LAYERS_EVERY2 ? "every-2" : "listed",
                    s->metric == CLENS_METRIC_LOGIT_MEAN ? "logit_mean" : "logprob_mass");
    if (s->words) {
        clens_sb_puts(b, " (tokens");
        for (int i = 0; i < s->n_words; i++) clens_sb_printf(b, "%s%s", i ? "," : " ", s->words[i]);
        clens_sb_puts(b, ")");
    } else if (s->metric == CLENS_METRIC_LOGIT_MEAN) {
        clens_sb_puts(b, " (the seed's 7 strings)");
    }
    clens_sb_printf(b, ", method %s, filter %s (min_diff %g), n %ld, bootstrap %ld (seed %ld), matmul %s\n",
                    s->method == CLENS_PATCH_RERUN ? "rerun" : "fast", clens_filter_name(s->filter), s->min_diff,
                    s->n_target, s->bootstrap, s->bootstrap_seed, s->matmul);
}

/* ---------------------------------------------------------------- plan */

int clens_study_plan(const clens_study *s, char **text, clens_error *err)
{
    clens_sb b = {0};
    char *diff, *was, *now;
    int rc = folder_state(s, &diff, &was, &now, err);
    if (rc) return rc;
    clens_sb_printf(&b, "study: %s -> %s (settings_hash %.16s)\n", s->path, s->out, s->settings_hash);
    clens_sb_printf(&b, "fidelity: %s\n", s->fidelity);
    char *sp = join(s->out, "settings.json");
    if (diff) clens_sb_printf(&b, "folder: REFUSED: settings.%s is %s there but %s now\n", diff, was, now);
    else clens_sb_printf(&b, "folder: %s\n", sp && exists(sp) ? "resume (same settings)" : "new");
    free(sp);
    free(diff); free(was); free(now);
    describe_pairs(s, &b);
    describe_protocol(s, &b);
    clens_sb_printf(&b, "models: %d\n", s->n_models);
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        clens_sb_printf(&b, "  %d. %s [%s] %s\n", i + 1, m->label, m->training, m->model);
        if (m->notes[0]) clens_sb_printf(&b, "     notes: %s\n", m->notes);
        char *resolved = NULL;
        clens_error e2 = {0};
        clens_model *mod = NULL;
        if (hf_resolve_model(m->model, &resolved, &e2)) {
            clens_sb_printf(&b, "     folder: not found (%s)\n", e2.msg);
        } else if (open_model(s, resolved, &mod, &e2)) {
            clens_sb_printf(&b, "     folder: %s (cannot open: %s)\n", resolved, e2.msg);
        } else {
            const clens_model_info *in = clens_model_get_info(mod);
            int *layers = NULL, nl = 0;
            clens_sb_printf(&b, "     folder: %s\n     arch %s, %d layers, %d heads, dtype %s\n", in->path, in->arch_name,
                            in->n_layers, in->n_heads,
                            in->dtype == CLENS_DTYPE_F32 ? "float32" : in->dtype == CLENS_DTYPE_BF16 ? "bfloat16" : "float16");
            if (model_layers(s, in->n_layers, &layers, &nl, &e2)) {
                clens_sb_printf(&b, "     layers: REFUSED: %s\n", e2.msg);
            } else if (layers) {
                clens_sb_puts(&b, "     layers patched:");
                for (int q = 0; q < nl; q++) clens_sb_printf(&b, "%s%d", q ? "," : " ", layers[q]);
                clens_sb_printf(&b, " (%d)\n", nl);
            } else {
                clens_sb_printf(&b, "     layers patched: all\n");
            }
            free(layers);
            int T = s->max_tokens ? s->max_tokens : (in->max_pos < 4096 ? in->max_pos : 4096);
            int lowered = 0;
            int64_t budget = clens_model_kv_budget(mod);
            if (!s->max_tokens && in->kv_bytes_per_token > 0 && (int64_t)3 * T * in->kv_bytes_per_token > budget) {
                int64_t fit = budget / (3 * in->kv_bytes_per_token);
                T = fit < 2 ? 2 : (int)fit;
                lowered = 1;
            }
            double w = (double)in->weight_bytes / 1073741824.0;
            double kv = 3.0 * T * (double)in->kv_bytes_per_token / 1073741824.0;
            clens_sb_printf(&b, "     memory: weights %.2f GiB + KV 3 caches x %d tokens x %.3f MiB = %.2f GiB -> "
                            "about %.2f GiB%s\n", w, T, in->kv_bytes_per_token / 1048576.0, kv, w + kv,
                            lowered ? " (max_tokens lowered to fit this machine)" : "");
        }
        clens_model_free(mod);
        free(resolved);
        char *dir = join3(s->out, "runs", m->slug);
        long done = 0, kept = 0;
        if (dir) run_counts(dir, &done, &kept);
        char *res = dir ? join(dir, "results.json") : NULL;
        if (!dir || !exists(dir)) clens_sb_printf(&b, "     run: %s/runs/%s (new)\n", s->out, m->slug);
        else clens_sb_printf(&b, "     run: %s (%ld records, %ld of %ld kept%s)\n", dir, done, kept, s->n_target,
                             kept >= s->n_target && res && exists(res) ? ", finished" : ", resumes");
        free(res);
        free(dir);
    }
    clens_sb_printf(&b, "runs: %d, then the comparison -> %s/comparison and %s/study.md\n", s->n_models, s->out, s->out);
    *text = clens_sb_take(&b);
    return *text ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
}

/* ----------------------------------------------------------------- run */

typedef struct run_ctx {
    void (*progress)(void *user, const char *line);
    void *user;
    int index, count;
    const char *label;
} run_ctx;

static void say(const run_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run_ctx *c, const char *fmt, ...)
{
    if (!c->progress) return;
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    c->progress(c->user, line);
}

static void on_run_progress(void *user, const clens_run_info *ri)
{
    const run_ctx *c = user;
    say(c, "model %d/%d %s: %ld/%ld kept, %ld/%ld candidates done, %.2f s/pair", c->index + 1, c->count, c->label,
        ri->kept, ri->target, ri->done, ri->candidates, ri->ran ? ri->seconds / (double)ri->ran : 0.0);
}

static void on_gen_progress(void *user, long done, long total, long generated, long pairs)
{
    const run_ctx *c = user;
    say(c, "model %d/%d %s: on-policy pairs: %ld/%ld problems, %ld generated this run, %ld pairs", c->index + 1,
        c->count, c->label, done, total, generated, pairs);
}

/* Writes pairs atomically unless path already holds exactly these bytes. */
static int write_pairs(const char *path, const clens_pair *pairs, size_t n, clens_error *err)
{
    return clens_pairs_write_jsonl(path, pairs, n, err);
}

static int build_shared_pairs(const clens_study *s, const char *path, const run_ctx *c, clens_error *err)
{
    clens_pairs_params pp;
    clens_pair *pairs = NULL;
    size_t n = 0;
    clens_pairs_stats st;
    int rc = pairs_params(s, &pp, err);
    if (!rc) rc = clens_pairs_build(&pp, &pairs, &n, &st, err);
    if (!rc) rc = write_pairs(path, pairs, n, err);
    if (!rc) say(c, "pairs: %zu pairs from %s (%ld problems read) -> %s", n, s->data, st.problems, path);
    clens_pairs_free(pairs, n);
    return rc;
}

static int build_on_policy_pairs(const clens_study *s, const study_model *sm, clens_model *m, const char *path,
                                 run_ctx *c, clens_error *err)
{
    const char *dir = clens_model_get_info(m)->path;
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_pairs_params pp;
    clens_pair *pairs = NULL;
    size_t n = 0;
    clens_pairs_stats st;
    char *gen = malloc(strlen(path) + 32);
    if (!gen) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    snprintf(gen, strlen(path) + 32, "%.*s.generations.jsonl", (int)(strlen(path) - 6), path);
    int rc = pairs_params(s, &pp, err);
    if (!rc) rc = clens_tokenizer_open(&tok, dir, err);
    if (!rc && s->gen_chat) rc = clens_chat_template_open(&tmpl, dir, err);
    if (!rc) {
        clens_onpolicy_params op = clens_onpolicy_default_params();
        op.generations_path = gen;
        op.max_new_tokens = s->max_new;
        op.batch = s->batch;
        op.pool = s->pool;
        op.prompt_chat = s->gen_chat;
        op.model_label = sm->model;
        op.progress = on_gen_progress;
        op.progress_user = c;
        rc = clens_pairs_build_on_policy(m, tok, tmpl, &pp, &op, &pairs, &n, &st, err);
    }
    if (!rc) rc = write_pairs(path, pairs, n, err);
    if (!rc) say(c, "model %d/%d %s: %zu on-policy pairs -> %s", c->index + 1, c->count, c->label, n, path);
    clens_pairs_free(pairs, n);
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    free(gen);
    return rc;
}

/* The run folder of a task: runs/<label> unsharded, else shards/<label>/<shard>-of-<n>. */
static char *task_dir(const clens_study *s, int model, int shard)
{
    if (s->shards <= 1) return join3(s->out, "runs", s->models[model].slug);
    char part[64];
    snprintf(part, sizeof part, "%d-of-%d", shard, s->shards);
    char *a = join3(s->out, "shards", s->models[model].slug), *d = a ? join(a, part) : NULL;
    free(a);
    return d;
}

static int run_model(const clens_study *s, int i, int shard, const char *shared_pairs, run_ctx *c, clens_error *err)
{
    const study_model *sm = &s->models[i];
    clens_model *m = NULL;
    clens_run *run = NULL;
    int *layers = NULL, nl = 0;
    char *pairs_path = NULL, *dir = task_dir(s, i, shard);
    c->index = i;
    c->label = sm->label;
    say(c, "model %d/%d %s [%s]: opening %s", i + 1, s->n_models, sm->label, sm->training, sm->model);
    int rc = dir ? open_model(s, sm->model, &m, err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (rc) goto end;
    const clens_model_info *in = clens_model_get_info(m);
    if (s->pairs_mode == STUDY_PAIRS_ON_POLICY) {
        char *pdir = join(s->out, "pairs");
        if (!pdir || (rc = clens_mkdir_p(pdir, err))) {
            if (!pdir) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
            free(pdir);
            goto end;
        }
        size_t n = strlen(pdir) + strlen(sm->slug) + 8;
        pairs_path = malloc(n);
        if (pairs_path) snprintf(pairs_path, n, "%s/%s.jsonl", pdir, sm->slug);
        free(pdir);
        if (!pairs_path) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
        if ((rc = build_on_policy_pairs(s, sm, m, pairs_path, c, err))) goto end;
    } else {
        pairs_path = strdup(shared_pairs);
    }
    if ((rc = model_layers(s, in->n_layers, &layers, &nl, err))) goto end;
    clens_run_params rp = run_params(s, pairs_path, layers, nl);
    rp.shard_index = shard;
    rp.shard_count = s->shards;
    if ((rc = clens_mkdir_p(dir, err)) || (rc = clens_run_open(&run, dir, m, &rp, err))) goto end;
    const clens_run_info *ri = clens_run_get_info(run);
    say(c, "model %d/%d %s: %s, %d layers, run %s%s (memory: weights %.2f GiB, KV %.2f GiB for %d tokens)", i + 1,
        s->n_models, sm->label, in->arch_name, in->n_layers, dir, ri->resumed_done ? " resumed" : "",
        in->weight_bytes / 1073741824.0, 3.0 * ri->max_tokens * in->kv_bytes_per_token / 1073741824.0, ri->max_tokens);
    if ((rc = clens_run_execute(run, on_run_progress, c, err))) goto end;
    if ((rc = clens_run_finish(run, NULL, err))) goto end;
    say(c, "model %d/%d %s: done, %ld of %ld pairs kept (%ld candidates recorded)", i + 1, s->n_models, sm->label,
        ri->kept, ri->target, ri->done);
end:
    if (rc) {
        /* name the model in the error */
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        clens_err(err, rc, "model %s (%s): %s", sm->label, sm->model, msg);
    }
    clens_run_free(run);
    clens_model_free(m);
    free(layers);
    free(pairs_path);
    free(dir);
    return rc;
}

/* study.md: the models, the mode, and each model's profile as mean +- SD (the seed's presentation). */
static int write_summary(const clens_study *s, const char *cmp_md, char **summary, clens_error *err)
{
    clens_sb b = {0};
    clens_sb_printf(&b, "# Study %s\n\n", s->path);
    clens_sb_printf(&b, "Mode: **%s** (fidelity \"%s\"). Settings hash `%.16s`; settings in `settings.json`.\n\n",
                    strcmp(s->fidelity, "seed") == 0 ? "seed fidelity (--fidelity seed)" : "clens default",
                    s->fidelity, s->settings_hash);
    clens_sb_printf(&b, "Pairs: %s", pairs_mode_name(s));
    if (s->pairs_mode == STUDY_PAIRS_FILE) clens_sb_printf(&b, " `%s`", s->pairs_file);
    else clens_sb_printf(&b, " from `%s` (cut %s, corrupt %s, site %s)", s->data, s->cut, s->corrupt, s->site);
    clens_sb_puts(&b, ".\n\n| model | training | folder | layers | pairs kept / recorded | best layer | best recovery % | notes |\n"
                      "|---|---|---|---|---|---|---|---|\n");
    json_t **res = calloc((size_t)s->n_models, sizeof *res);
    if (!res) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    int rc = CLENS_OK;
    for (int i = 0; i < s->n_models && !rc; i++) {
        const study_model *m = &s->models[i];
        char *dir = join3(s->out, "runs", m->slug), *path = dir ? join(dir, "results.json") : NULL;
        json_error_t je;
        if (!path) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        else rc = clens_json_load_regular(path, 0, &res[i], &je, err);
        if (!rc) {
            const json_t *r = res[i], *prov = json_object_get(r, "provenance"), *cnt = json_object_get(r, "counts");
            const json_t *bl = json_object_get(r, "best_layer"), *br = json_object_get(r, "best_recovery");
            char blb[32] = "-", brb[32] = "-";
            if (json_is_integer(bl)) snprintf(blb, sizeof blb, "%lld", (long long)json_integer_value(bl));
            if (json_is_number(br)) snprintf(brb, sizeof brb, "%.1f", json_number_value(br));
            clens_sb_printf(&b, "| %s | %s | `runs/%s` | %lld | %lld / %lld | %s | %s | %s |\n", m->label, m->training,
                            m->slug, (long long)json_integer_value(json_object_get(prov, "n_layers")),
                            (long long)json_integer_value(json_object_get(cnt, "kept")),
                            (long long)json_integer_value(json_object_get(cnt, "attempted")), blb, brb, m->notes);
        }
        free(path);
        free(dir);
    }
    for (int i = 0; i < s->n_models && !rc; i++) {
        const json_t *r = res[i], *layers = json_object_get(r, "layers"), *ls = json_object_get(r, "layer_stats");
        clens_sb_printf(&b, "\n## %s (%s, %s)\n\n| layer | recovery %%, mean ± SD | n |\n|---|---|---|\n",
                        s->models[i].label, s->models[i].training, json_string_value(json_object_get(r, "site_type")));
        const char *key;
        json_t *st;
        size_t li = 0;
        json_object_foreach((json_t *)ls, key, st) {
            const json_t *mean = json_object_get(st, "mean_recovery"), *sd = json_object_get(st, "std_recovery");
            json_t *l = json_array_get(layers, li++);
            char lb[32];
            snprintf(lb, sizeof lb, "%s", key);
            if (json_is_integer(l)) snprintf(lb, sizeof lb, "%lld", (long long)json_integer_value(l));
            if (json_is_number(mean) && json_is_number(sd))
                clens_sb_printf(&b, "| %s | %.1f ± %.1f | %lld |\n", lb, json_number_value(mean), json_number_value(sd),
                                (long long)json_integer_value(json_object_get(st, "n_samples")));
            else
                clens_sb_printf(&b, "| %s | - | %lld |\n", lb, (long long)json_integer_value(json_object_get(st, "n_samples")));
        }
    }
    for (int i = 0; i < s->n_models; i++) json_decref(res[i]);
    free(res);
    if (rc) { clens_sb_free(&b); return rc; }
    clens_sb_puts(&b, "\n## Comparison\n\nFull report: `comparison/comparison.md`, `comparison/report.html`.\n\n");
    if (cmp_md) clens_sb_puts(&b, cmp_md);
    char *text = clens_sb_take(&b);
    if (!text) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    char *path = join(s->out, "study.md");
    rc = path ? clens_write_file_atomic(path, text, strlen(text), err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
    free(path);
    if (!rc && summary) *summary = text;
    else free(text);
    return rc;
}

int clens_study_set_shards(clens_study *s, int shards, clens_error *err)
{
    if (shards < 1 || shards > 100000) return clens_err(err, CLENS_E_ARG, "shards: expected 1..100000, got %d", shards);
    s->shards = shards;
    return CLENS_OK;
}

int clens_study_task_count(const clens_study *s)
{
    return s->n_models * s->shards;
}

int clens_study_task_finished(const clens_study *s, int task)
{
    if (task < 0 || task >= clens_study_task_count(s)) return 0;
    char *dir = task_dir(s, task / s->shards, task % s->shards), *res = dir ? join(dir, "results.json") : NULL;
    int done = res && exists(res);
    free(res);
    free(dir);
    return done;
}

/* The shared pairs file of modes file and build (NULL for on-policy). */
static char *shared_pairs_path(const clens_study *s)
{
    if (s->pairs_mode == STUDY_PAIRS_FILE) return strdup(s->pairs_file);
    if (s->pairs_mode == STUDY_PAIRS_BUILD) return join(s->out, "pairs.jsonl");
    return NULL;
}

int clens_study_prepare(clens_study *s, void (*progress)(void *user, const char *line), void *user, clens_error *err)
{
    run_ctx c = {progress, user, 0, s->n_models, ""};
    char *runs = join(s->out, "runs"), *shared = NULL;
    int rc = runs ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!rc && !((rc = clens_mkdir_p(s->out, err)) || (rc = write_or_check_settings(s, err)) ||
                 (rc = clens_mkdir_p(runs, err)))) {
        say(&c, "study %s -> %s: %d models, pairs %s, fidelity %s%s", s->path, s->out, s->n_models,
            pairs_mode_name(s), s->fidelity, s->shards > 1 ? ", sharded" : "");
        if (s->pairs_mode == STUDY_PAIRS_BUILD) {
            shared = join(s->out, "pairs.jsonl");
            rc = shared ? build_shared_pairs(s, shared, &c, err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
    }
    free(shared);
    free(runs);
    return rc;
}

int clens_study_run_task(clens_study *s, int task, void (*progress)(void *user, const char *line), void *user,
                         clens_error *err)
{
    if (task < 0 || task >= clens_study_task_count(s))
        return clens_err(err, CLENS_E_ARG, "task %d: the study has tasks 0..%d (%d models x %d shards)", task,
                         clens_study_task_count(s) - 1, s->n_models, s->shards);
    run_ctx c = {progress, user, 0, s->n_models, ""};
    char *shared = shared_pairs_path(s), *sp = join(s->out, "settings.json");
    int rc = CLENS_OK;
    if (!sp || (s->pairs_mode != STUDY_PAIRS_ON_POLICY && !shared)) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    else if (!exists(sp) || (shared && !exists(shared)))
        rc = clens_err(err, CLENS_E_STATE, "%s: the study is not prepared (no %s): run `clens study` without --task "
                       "first (--slurm does)", s->out, !exists(sp) ? sp : shared);
    else if (!(rc = write_or_check_settings(s, err)))
        rc = run_model(s, task / s->shards, task % s->shards, shared, &c, err);
    free(sp);
    free(shared);
    return rc;
}

int clens_study_finalize(clens_study *s, void (*progress)(void *user, const char *line), void *user, char **summary_md,
                         clens_error *err)
{
    run_ctx c = {progress, user, 0, s->n_models, ""};
    char *runs = join(s->out, "runs"), *cmp_dir = join(s->out, "comparison"), *cmp_md = NULL;
    char **inputs = calloc((size_t)s->n_models, sizeof *inputs);
    char **labels = calloc((size_t)s->n_models, sizeof *labels);
    char **trains = calloc((size_t)s->n_models, sizeof *trains);
    char **shard_dirs = calloc((size_t)s->shards, sizeof *shard_dirs);
    int rc = CLENS_OK;
    if (summary_md) *summary_md = NULL;
    if (!runs || !cmp_dir || !inputs || !labels || !trains || !shard_dirs) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    if ((rc = write_or_check_settings(s, err))) goto end;
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        inputs[i] = join(runs, m->slug);
        size_t n = strlen(runs) + strlen(m->slug) + strlen(m->label) + strlen(m->training) + 4;
        labels[i] = malloc(n);
        trains[i] = malloc(n);
        if (!inputs[i] || !labels[i] || !trains[i]) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
        snprintf(labels[i], n, "%s=%s", inputs[i], m->label);
        snprintf(trains[i], n, "%s=%s", inputs[i], m->training);
        if (s->shards > 1) {
            for (int k = 0; k < s->shards; k++) {
                free(shard_dirs[k]);
                shard_dirs[k] = task_dir(s, i, k);
                if (!shard_dirs[k]) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
                if (!clens_study_task_finished(s, i * s->shards + k)) {
                    rc = clens_err(err, CLENS_E_STATE, "model %s: shard %s has not finished (no results.json); "
                                   "rerun its task", m->label, shard_dirs[k]);
                    goto end;
                }
            }
            char *warn = NULL;
            say(&c, "model %d/%d %s: merging %d shards -> %s", i + 1, s->n_models, m->label, s->shards, inputs[i]);
            rc = clens_results_merge((const char *const *)shard_dirs, s->shards, inputs[i], &warn, err);
            free(warn);
            if (rc) goto end;
        }
    }
    clens_compare_params cp = clens_compare_default_params();
    cp.resamples = (int)s->compare_resamples;
    cp.seed = (uint64_t)s->compare_seed;
    cp.labels = (const char *const *)labels;
    cp.n_labels = s->n_models;
    cp.trainings = (const char *const *)trains;
    cp.n_trainings = s->n_models;
    say(&c, "comparison of %d models -> %s", s->n_models, cmp_dir);
    if ((rc = clens_compare_write((const char *const *)inputs, s->n_models, &cp, cmp_dir, &cmp_md, err))) goto end;
    if ((rc = write_summary(s, cmp_md, summary_md, err))) goto end;
    say(&c, "study done: %s/study.md, %s/comparison.md", s->out, cmp_dir);
end:
    for (int i = 0; i < s->n_models; i++) {
        if (inputs) free(inputs[i]);
        if (labels) free(labels[i]);
        if (trains) free(trains[i]);
    }
    for (int k = 0; shard_dirs && k < s->shards; k++) free(shard_dirs[k]);
    free(shard_dirs);
    free(inputs);
    free(labels);
    free(trains);
    free(cmp_md);
    free(cmp_dir);
    free(runs);
    return rc;
}

int clens_study_run(clens_study *s, void (*progress)(void *user, const char *line), void *user, char **summary_md,
                    clens_error *err)
{
    int rc = clens_study_prepare(s, progress, user, err);
    for (int t = 0; !rc && t < clens_study_task_count(s); t++) rc = clens_study_run_task(s, t, progress, user, err);
    return rc ? rc : clens_study_finalize(s, progress, user, summary_md, err);
}

/* --------------------------------------------------------------- Slurm */

/* 'text' quoted for a POSIX shell. */
static void sh_quote(clens_sb *b, const char *t)
{
    clens_sb_puts(b, "'");
    for (; *t; t++) {
        if (*t == '\'') clens_sb_puts(b, "'\\''");
        else clens_sb_put(b, t, 1);
    }
    clens_sb_puts(b, "'");
}

/* Memory per task from the memory plan (R15): the largest model's weights +
 * three fp32 KV caches of max_tokens tokens + 1 GiB for the process. */
static int plan_mem_mb(const clens_study *s, long *mb, clens_error *err)
{
    double worst = 0;
    for (int i = 0; i < s->n_models; i++) {
        clens_model *m = NULL;
        int rc = open_model(s, s->models[i].model, &m, err);
        if (rc) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return clens_err(err, rc, "model %s: %s (the memory plan needs the folder; or give the memory per task)",
                             s->models[i].label, msg);
        }
        const clens_model_info *in = clens_model_get_info(m);
        int T = s->max_tokens ? s->max_tokens : (in->max_pos < 4096 ? in->max_pos : 4096);
        double bytes = (double)in->weight_bytes + 3.0 * T * (double)in->kv_bytes_per_token + 1073741824.0;
        if (bytes > worst) worst = bytes;
        clens_model_free(m);
    }
    *mb = (long)(worst / 1048576.0) + 1;
    return CLENS_OK;
}

int clens_study_slurm_scripts(const clens_study *s, const clens_study_slurm_params *p, char **task_script,
                              char **final_script, char **array, clens_error *err)
{
    *task_script = *final_script = *array = NULL;
    if (s->pairs_mode == STUDY_PAIRS_ON_POLICY && s->shards > 1)
        return clens_err(err, CLENS_E_UNSUPPORTED, "not yet: shards > 1 with pairs.mode \"on-policy\" (the shards of "
                         "a model would generate into one file at once); use 1 shard, or build the pairs first and "
                         "use pairs.mode \"file\"");
    if (!p->clens || !p->workdir || p->cpus_per_task < 1) return clens_err(err, CLENS_E_ARG, "slurm: clens, workdir, cpus");
    long mb = p->mem_mb;
    int rc = mb > 0 ? CLENS_OK : plan_mem_mb(s, &mb, err);
    if (rc) return rc;
    clens_sb t = {0}, f = {0}, a = {0};
    char name[32];
    snprintf(name, sizeof name, "clens-%.8s", s->settings_hash);
    for (int k = 0; k < 2; k++) {
        clens_sb *b = k ? &f : &t;
        clens_sb_printf(b, "#!/bin/sh\n# %s of the study %s (clens study --slurm; docs/cluster.md)\n",
                        k ? "Final job: merge the shards, compare" : "Job array: task = model x shards + shard", s->path);
        clens_sb_printf(b, "#SBATCH --job-name=%s%s\n", name, k ? "-final" : "");
        clens_sb_puts(b, "#SBATCH --chdir=");
        clens_sb_puts(b, p->workdir);
        clens_sb_printf(b, "\n#SBATCH --output=%s/slurm/%s.log\n", s->out, k ? "final-%j" : "task-%A_%a");
        clens_sb_printf(b, "#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=%d\n#SBATCH --mem=%ldM\n",
                        k ? 1 : p->cpus_per_task, k ? 1024 : mb);
        clens_sb_puts(b, "exec ");
        sh_quote(b, p->clens);
        clens_sb_puts(b, " study ");
        sh_quote(b, s->path);
        clens_sb_puts(b, " --out ");
        sh_quote(b, s->out);
        clens_sb_printf(b, " --fidelity %s --shards %d", s->fidelity, s->shards);
        if (k) clens_sb_puts(b, " --finalize --quiet\n");
        else clens_sb_printf(b, " --threads %d --task \"$SLURM_ARRAY_TASK_ID\" --quiet\n", p->cpus_per_task);
    }
    for (int i = 0, first = 1; i < clens_study_task_count(s); i++)
        if (!clens_study_task_finished(s, i)) {
            clens_sb_printf(&a, first ? "%d" : ",%d", i);
            first = 0;
        }
    *task_script = clens_sb_take(&t);
    *final_script = clens_sb_take(&f);
    *array = clens_sb_take(&a);
    if (!*array) *array = strdup("");
    if (!*task_script || !*final_script || !*array) {
        free(*task_script); free(*final_script); free(*array);
        *task_script = *final_script = *array = NULL;
        return clens_err(err, CLENS_E_NOMEM, "out of memory");
    }
    return CLENS_OK;
}
