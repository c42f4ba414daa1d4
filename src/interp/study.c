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
 *
 * The work is a list of tasks (build_tasks): on-policy pairs per model, then
 * one run per (model or checkpoint) x shard, then the probe/steer and AtP
 * steps per model; a local run does them in order, a cluster runs them as
 * job arrays (docs/cluster.md). A model with checkpoints gets the layout of
 * `clens dynamics` (dynamics/<label>/runs/NN-step-S), fitted at the end by
 * clens_dynamics_fit, so its folder equals a standalone dynamics run. The
 * steps call the library behind `clens capture`, `clens probe`, `clens
 * steer` and `clens patch --method atp`, and their folders are handed to the
 * comparison (clens_compare_params.probes / steers / atps).
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
#include "interp/steer_study.h"
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

static int build_tasks(clens_study *s, clens_error *err);
static char *unit_dir(const clens_study *s, int model, int ck);
static int file_in(const char *dir, const char *name);

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
    if ((rc = build_tasks(s, err))) {
        clens_study_free(s);
        return rc;
    }
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

int clens_study_settings_text(const clens_study *s, char **out, clens_error *err)
{
    *out = json_dumps(s->settings, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
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
        if (s->types[k] == CLENS_HOOK_RESID_PRE) top = n_layers;
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
    for (int k = 0; k < s->n_types; k++) clens_sb_printf(b, "%s%s", k ? "," : " ", clens_hook_short_name(s->types[k]));
    clens_sb_printf(b, ", layers %s, metric %s", s->layers_kind == STUDY_LAYERS_ALL ? "all"
                                                 : s->layers_kind == STUDY_LAYERS_EVERY2 ? "every-2" : "listed",
                    clens_metric_name(s->metric));
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
        if (m->n_ck) {
            clens_sb_printf(&b, "     checkpoints: %d (steps", m->n_ck);
            for (int k = 0; k < m->n_ck; k++) clens_sb_printf(&b, "%s%ld", k ? "," : " ", m->ck_steps[k]);
            clens_sb_printf(&b, ") -> %s/dynamics/%s (the model below is the last checkpoint unless given)\n", s->out,
                            m->slug);
        }
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
        if (m->n_ck) {
            int fin = 0;
            for (int k = 0; k < m->n_ck; k++) {
                char *d = unit_dir(s, i, k);
                fin += file_in(d, "results.json");
                free(d);
            }
            clens_sb_printf(&b, "     runs: %s/dynamics/%s/runs/NN-step-S (%d of %d finished)\n", s->out, m->slug, fin,
                            m->n_ck);
            continue;
        }
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
    clens_sb_printf(&b, "tasks: %d (%d shard%s)\n", s->n_tasks, s->shards, s->shards > 1 ? "s" : "");
    for (int t = 0; t < s->n_tasks; t++) {
        char *name = NULL;
        clens_study_task_name(s, t, &name, NULL);
        clens_sb_printf(&b, "  %d. %s%s\n", t, name ? name : "?", clens_study_task_finished(s, t) ? " (finished)" : "");
        free(name);
    }
    clens_sb_printf(&b, "then the merge, dynamics fits, the comparison -> %s/comparison and %s/study.md\n", s->out, s->out);
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

/* The finished run folder of a unit: runs/<label> for a plain model, the
 * dynamics layout dynamics/<label>/runs/NN-step-S for checkpoint k. */
static char *unit_dir(const clens_study *s, int model, int ck)
{
    const study_model *m = &s->models[model];
    if (ck < 0) return join3(s->out, "runs", m->slug);
    char part[64];
    snprintf(part, sizeof part, "runs/%02d-step-%ld", ck, m->ck_steps[ck]);
    char *d = join3(s->out, "dynamics", m->slug), *r = d ? join(d, part) : NULL;
    free(d);
    return r;
}

/* The folder a run task writes: its unit's folder unsharded, else
 * shards/<label>/<shard>-of-<n> (shards/<label>/NN-step-S/<shard>-of-<n> for a checkpoint). */
static char *run_task_dir(const clens_study *s, int model, int ck, int shard)
{
    if (s->shards <= 1) return unit_dir(s, model, ck);
    char part[96];
    if (ck < 0) snprintf(part, sizeof part, "%d-of-%d", shard, s->shards);
    else snprintf(part, sizeof part, "%02d-step-%ld/%d-of-%d", ck, s->models[model].ck_steps[ck], shard, s->shards);
    char *a = join3(s->out, "shards", s->models[model].slug), *d = a ? join(a, part) : NULL;
    free(a);
    return d;
}

/* The pairs of a model: the shared file, or pairs/<label>.jsonl (on-policy). */
static char *model_pairs_path(const clens_study *s, int model)
{
    if (s->pairs_mode == STUDY_PAIRS_FILE) return strdup(s->pairs_file);
    if (s->pairs_mode == STUDY_PAIRS_BUILD) return join(s->out, "pairs.jsonl");
    size_t n = strlen(s->out) + strlen(s->models[model].slug) + 16;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/pairs/%s.jsonl", s->out, s->models[model].slug);
    return p;
}

static char *step_dir(const clens_study *s, const char *kind, int model)
{
    return join3(s->out, kind, s->models[model].slug);
}

static int file_in(const char *dir, const char *name)
{
    char *p = dir ? join(dir, name) : NULL;
    int e = p && exists(p);
    free(p);
    return e;
}

/* Names the model in an error of one of its tasks. */
static int model_error(const study_model *sm, int rc, clens_error *err)
{
    char msg[sizeof err->msg];
    snprintf(msg, sizeof msg, "%s", err->msg);
    return clens_err(err, rc, "model %s (%s): %s", sm->label, sm->model, msg);
}

/* The pairs task of an on-policy model: its own greedy solutions -> pairs/<label>.jsonl. */
static int run_pairs_task(const clens_study *s, int i, run_ctx *c, clens_error *err)
{
    const study_model *sm = &s->models[i];
    char *pdir = join(s->out, "pairs"), *path = model_pairs_path(s, i);
    clens_model *m = NULL;
    int rc = pdir && path ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    c->index = i;
    c->label = sm->label;
    if (!rc && exists(path)) {
        say(c, "model %d/%d %s: on-policy pairs already built: %s", i + 1, s->n_models, sm->label, path);
    } else if (!rc && !(rc = clens_mkdir_p(pdir, err)) && !(rc = open_model(s, sm->model, &m, err))) {
        rc = build_on_policy_pairs(s, sm, m, path, c, err);
    }
    if (rc) rc = model_error(sm, rc, err);
    clens_model_free(m);
    free(pdir);
    free(path);
    return rc;
}

static int run_model(const clens_study *s, int i, int ck, int shard, run_ctx *c, clens_error *err)
{
    const study_model *sm = &s->models[i];
    const char *spec = ck >= 0 ? sm->ck_paths[ck] : sm->model;
    clens_model *m = NULL;
    clens_run *run = NULL;
    int *layers = NULL, nl = 0;
    char *pairs_path = model_pairs_path(s, i), *dir = run_task_dir(s, i, ck, shard);
    char what[96] = "";
    if (ck >= 0) snprintf(what, sizeof what, " checkpoint %d/%d (step %ld)", ck + 1, sm->n_ck, sm->ck_steps[ck]);
    c->index = i;
    c->label = sm->label;
    say(c, "model %d/%d %s [%s]%s: opening %s", i + 1, s->n_models, sm->label, sm->training, what, spec);
    int rc = dir && pairs_path ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!rc && !exists(pairs_path))
        rc = clens_err(err, CLENS_E_STATE, "%s: no pairs yet: run the model's pairs task first (clens study without "
                       "--task runs every task in order)", pairs_path);
    if (rc || (rc = open_model(s, spec, &m, err))) goto end;
    const clens_model_info *in = clens_model_get_info(m);
    if ((rc = model_layers(s, in->n_layers, &layers, &nl, err))) goto end;
    clens_run_params rp = run_params(s, pairs_path, layers, nl);
    rp.shard_index = shard;
    rp.shard_count = s->shards;
    if ((rc = clens_mkdir_p(dir, err)) || (rc = clens_run_open(&run, dir, m, &rp, err))) goto end;
    const clens_run_info *ri = clens_run_get_info(run);
    say(c, "model %d/%d %s%s: %s, %d layers, run %s%s (memory: weights %.2f GiB, KV %.2f GiB for %d tokens)", i + 1,
        s->n_models, sm->label, what, in->arch_name, in->n_layers, dir, ri->resumed_done ? " resumed" : "",
        in->weight_bytes / 1073741824.0, 3.0 * ri->max_tokens * in->kv_bytes_per_token / 1073741824.0, ri->max_tokens);
    if ((rc = clens_run_execute(run, on_run_progress, c, err))) goto end;
    if ((rc = clens_run_finish(run, NULL, err))) goto end;
    say(c, "model %d/%d %s%s: done, %ld of %ld pairs kept (%ld candidates recorded)", i + 1, s->n_models, sm->label,
        what, ri->kept, ri->target, ri->done);
end:
    if (rc) rc = model_error(sm, rc, err);
    clens_run_free(run);
    clens_model_free(m);
    free(layers);
    free(pairs_path);
    free(dir);
    return rc;
}

/* The block to steer at `point` for the probe's best entry (the highest
 * difference-of-means AUROC of probe.json): an entry at depth d (resid_pre
 * numbering) is block d at resid_pre, block d-1 at resid_post; entries with
 * no block at that point (the final residual at resid_pre, the embedding at
 * resid_post, hooks off the residual stream) are not candidates. */
static int best_probe_layer(const char *probe_json, clens_hook_point point, int *layer, clens_error *err)
{
    json_t *root = NULL;
    json_error_t je;
    int rc = clens_json_load_regular(probe_json, 0, &root, &je, err);
    if (rc) return rc;
    const json_t *nl = json_object_get(root, "n_layers"); /* the model's blocks (probe.json schema) */
    const long n_layers = json_is_integer(nl) ? (long)json_integer_value(nl) : 0;
    double best = -1;
    *layer = -1;
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(root, "layers"), i, l) {
        const json_t *a = json_object_get(json_object_get(l, "diff_of_means"), "auroc");
        const json_t *d = json_object_get(l, "depth");
        const json_t *lay = json_object_get(l, "layer");
        long block = -1; /* depth null: a hook off the residual stream */
        if (json_is_integer(d)) block = steer_block_at_depth(point, (long)json_integer_value(d));
        else if (!d && json_is_integer(lay)) block = (long)json_integer_value(lay); /* a probe.json without depths */
        if (json_is_number(a) && block >= 0 && (n_layers <= 0 || block < n_layers) && json_number_value(a) > best) {
            best = json_number_value(a);
            *layer = (int)block;
        }
    }
    json_decref(root);
    return *layer >= 0 ? CLENS_OK : clens_err(err, CLENS_E_FORMAT, "%s: no steerable layer with a difference-of-means AUROC", probe_json);
}

/* The probe task: capture -> captures/<label>, probe -> probes/<label>, and
 * with "steer" the probe's direction -> steer/<label>; each part skipped when
 * its output is there (capture and probe write their files atomically). */
static int run_probe_task(const clens_study *s, int i, run_ctx *c, clens_error *err)
{
    const study_model *sm = &s->models[i];
    char *pairs = model_pairs_path(s, i), *cap = step_dir(s, "captures", i), *prb = step_dir(s, "probes", i);
    char *str = s->has_steer ? step_dir(s, "steer", i) : NULL, *pj = prb ? join(prb, "probe.json") : NULL;
    clens_model *m = NULL;
    json_t *res = NULL;
    int rc = pairs && cap && prb && pj && (!s->has_steer || str) ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    c->index = i;
    c->label = sm->label;
    if (!rc && !exists(pairs))
        rc = clens_err(err, CLENS_E_STATE, "%s: no pairs yet: run the model's pairs task first", pairs);
    if (!rc && (!file_in(cap, "index.json") || (s->has_steer && !file_in(str, "steer.json"))))
        rc = open_model(s, sm->model, &m, err);
    if (!rc && !file_in(cap, "index.json")) {
        clens_capture_params cp = clens_capture_default_params();
        cp.pairs_path = pairs;
        cp.sites = s->probe_sites;
        cp.positions = strcmp(s->probe_positions, "error") == 0 ? CLENS_CAPTURE_ERROR
                     : strcmp(s->probe_positions, "all") == 0   ? CLENS_CAPTURE_ALL
                                                                : CLENS_CAPTURE_FINAL;
        cp.prompt_chat = s->prompt_chat;
        cp.limit = s->probe_limit;
        say(c, "model %d/%d %s: capture -> %s", i + 1, s->n_models, sm->label, cap);
        rc = clens_capture_pairs(m, &cp, cap, NULL, NULL, err);
    }
    if (!rc && !exists(pj)) {
        clens_probe_params pp = clens_probe_default_params();
        pp.folds = (int)s->probe_folds;
        pp.C = s->probe_C;
        pp.bootstrap = (int)s->probe_bootstrap;
        pp.permutations = (int)s->probe_permutations;
        pp.random_dirs = (int)s->probe_random_dirs;
        pp.seed = (uint64_t)s->probe_seed;
        say(c, "model %d/%d %s: probe -> %s", i + 1, s->n_models, sm->label, prb);
        rc = clens_probe_run(cap, &pp, prb, NULL, err);
    }
    if (!rc && s->has_steer && !file_in(str, "steer.json")) {
        int best = -1;
        steer_study st = {0};
        st.model_arg = sm->model;
        st.direction = pj;
        const clens_hook_point point = strcmp(s->steer_hook, "resid_post") == 0 ? CLENS_HOOK_RESID_POST : CLENS_HOOK_RESID_PRE;
        if (s->steer_layers) {
            st.layers = s->steer_layers;
            st.n_layers_sel = s->n_steer_layers;
        } else if (!(rc = best_probe_layer(pj, point, &best, err))) {
            st.layers = &best;
            st.n_layers_sel = 1;
        }
        st.alphas = s->steer_alphas;
        st.n_alpha = s->n_steer_alphas;
        clens_steer_mode_parse(s->steer_mode, &st.mode);
        st.point = point;
        clens_steer_positions_parse(s->steer_positions, &st.positions);
        st.pairs = pairs;
        st.neutral = s->steer_neutral;
        st.prompt_chat = s->prompt_chat;
        st.n_random = (int)s->steer_random;
        st.seed = (uint64_t)s->steer_seed;
        st.max_new = (int)s->steer_max_new;
        st.k_window = (int)s->steer_k;
        st.n_samples = (int)s->steer_samples;
        st.limit = s->steer_limit;
        st.out_dir = str;
        st.quiet = 1;
        if (!rc) {
            say(c, "model %d/%d %s: steer (%s, layer%s %d%s) -> %s", i + 1, s->n_models, sm->label, s->steer_mode,
                st.n_layers_sel > 1 ? "s" : "", st.layers[0], s->steer_layers ? "" : ", the probe's best", str);
            rc = steer_study_run(m, &st, &res, err);
        }
    }
    if (rc) rc = model_error(sm, rc, err);
    json_decref(res);
    clens_model_free(m);
    free(pairs); free(cap); free(prb); free(str); free(pj);
    return rc;
}

/* The AtP task: `clens patch --method atp` on the model's pairs -> atp/<label>. */
static int run_atp_task(const clens_study *s, int i, run_ctx *c, clens_error *err)
{
    const study_model *sm = &s->models[i];
    char *pairs = model_pairs_path(s, i), *dir = step_dir(s, "atp", i);
    clens_model *m = NULL;
    clens_run *run = NULL;
    int *layers = NULL, nl = 0;
    int rc = pairs && dir ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    c->index = i;
    c->label = sm->label;
    if (!rc && !exists(pairs)) rc = clens_err(err, CLENS_E_STATE, "%s: no pairs yet: run the model's pairs task first", pairs);
    if (!rc && !(rc = open_model(s, sm->model, &m, err)) &&
        !(rc = model_layers(s, clens_model_get_info(m)->n_layers, &layers, &nl, err))) {
        clens_run_params rp = run_params(s, pairs, layers, nl);
        rp.method = CLENS_PATCH_ATP;
        say(c, "model %d/%d %s: attribution patching -> %s", i + 1, s->n_models, sm->label, dir);
        if (!(rc = clens_mkdir_p(dir, err)) && !(rc = clens_run_open(&run, dir, m, &rp, err)) &&
            !(rc = clens_run_execute(run, on_run_progress, c, err)))
            rc = clens_run_finish(run, NULL, err);
    }
    if (rc) rc = model_error(sm, rc, err);
    clens_run_free(run);
    clens_model_free(m);
    free(layers);
    free(pairs);
    free(dir);
    return rc;
}

/* study.md: a checkpoint model's verdict, from dynamics/<label>/dynamics.json. */
static int summary_dynamics(const clens_study *s, int i, clens_sb *b, clens_error *err)
{
    const study_model *m = &s->models[i];
    char *dir = step_dir(s, "dynamics", i), *path = dir ? join(dir, "dynamics.json") : NULL;
    json_t *d = NULL;
    json_error_t je;
    int rc = path ? clens_json_load_regular(path, 0, &d, &je, err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!rc) {
        const json_t *h = json_object_get(d, "headline"), *layers = json_object_get(d, "layers");
        clens_sb_printf(b, "\n## Training dynamics: %s (%d checkpoints, steps %ld to %ld)\n\n", m->label, m->n_ck,
                        m->ck_steps[0], m->ck_steps[m->n_ck - 1]);
        if (json_is_object(h))
            clens_sb_printf(b, "Verdict: **%s** at resid_pre layer %lld (%s).\n\n",
                            json_string_value(json_object_get(h, "verdict")),
                            (long long)json_integer_value(json_object_get(h, "layer_resid_pre")),
                            json_is_true(json_object_get(h, "is_critical_layer")) ? "the last checkpoint's critical layer"
                                                                                  : "the layer that changes most");
        else
            clens_sb_puts(b, "Verdict: **flat** (no layer's recovery changes by the rule's amplitude).\n\n");
        int count[4] = {0};
        static const char *const names[4] = {"gradual", "transition", "too sparse to decide", "flat"};
        size_t k;
        json_t *l;
        json_array_foreach(layers, k, l) {
            const char *v = json_string_value(json_object_get(l, "verdict"));
            for (int q = 0; v && q < 4; q++) count[q] += strcmp(v, names[q]) == 0;
        }
        clens_sb_printf(b, "Layers: %d gradual, %d transition, %d too sparse to decide, %d flat. Heat map "
                        "`dynamics/%s/heatmap.svg`, fits `dynamics/%s/curves.svg`, report `dynamics/%s/report.html`, "
                        "table `dynamics/%s/dynamics.md`; the comparison shows the last checkpoint.\n",
                        count[0], count[1], count[2], count[3], m->slug, m->slug, m->slug, m->slug);
    }
    json_decref(d);
    free(path);
    free(dir);
    return rc;
}

/* study.md: where the probe, steering and AtP steps wrote, and the probe's best layer. */
static int summary_steps(const clens_study *s, clens_sb *b, clens_error *err)
{
    clens_sb_puts(b, "\n## Probe, steering and AtP\n\n| model | probe (best DoM layer) | steering | AtP |\n|---|---|---|---|\n");
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        char pb[256] = "-", sb[256] = "-", ab[256] = "-";
        if (s->has_probe) {
            char *d = step_dir(s, "probes", i), *pj = d ? join(d, "probe.json") : NULL;
            int best = -1;
            clens_error e2 = {0};
            if (!pj) { free(d); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
            const clens_hook_point point =
                s->has_steer && strcmp(s->steer_hook, "resid_post") == 0 ? CLENS_HOOK_RESID_POST : CLENS_HOOK_RESID_PRE;
            if (best_probe_layer(pj, point, &best, &e2) == 0)
                snprintf(pb, sizeof pb, "`probes/%s` (%s %d)", m->slug, clens_hook_short_name(point), best);
            free(pj);
            free(d);
        }
        if (s->has_steer) snprintf(sb, sizeof sb, "`steer/%s` (%s)", m->slug, s->steer_mode);
        if (s->has_atp) snprintf(ab, sizeof ab, "`atp/%s`", m->slug);
        clens_sb_printf(b, "| %s | %s | %s | %s |\n", m->label, pb, sb, ab);
    }
    return CLENS_OK;
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
        char *dir = unit_dir(s, i, m->n_ck ? m->n_ck - 1 : -1), *path = dir ? join(dir, "results.json") : NULL;
        json_error_t je;
        if (!path) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        else rc = clens_json_load_regular(path, 0, &res[i], &je, err);
        if (!rc) {
            const json_t *r = res[i], *prov = json_object_get(r, "provenance"), *cnt = json_object_get(r, "counts");
            const json_t *bl = json_object_get(r, "best_layer"), *br = json_object_get(r, "best_recovery");
            char blb[32] = "-", brb[32] = "-";
            if (json_is_integer(bl)) snprintf(blb, sizeof blb, "%lld", (long long)json_integer_value(bl));
            if (json_is_number(br)) snprintf(brb, sizeof brb, "%.1f", json_number_value(br));
            clens_sb_printf(&b, "| %s | %s | `%s` | %lld | %lld / %lld | %s | %s | %s |\n", m->label, m->training,
                            dir + strlen(s->out) + 1, (long long)json_integer_value(json_object_get(prov, "n_layers")),
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
    for (int i = 0; i < s->n_models && !rc; i++)
        if (s->models[i].n_ck) rc = summary_dynamics(s, i, &b, err);
    if (!rc && (s->has_probe || s->has_atp)) rc = summary_steps(s, &b, err);
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

/* The plan: pairs tasks, run tasks (unit x shard), step tasks (docs/cluster.md). */
static int build_tasks(clens_study *s, clens_error *err)
{
    int n = 0;
    for (int i = 0; i < s->n_models; i++) {
        int units = s->models[i].n_ck ? s->models[i].n_ck : 1;
        n += (s->pairs_mode == STUDY_PAIRS_ON_POLICY) + units * s->shards + s->has_probe + s->has_atp;
    }
    study_task *t = calloc((size_t)n, sizeof *t);
    if (!t) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    int k = 0;
    if (s->pairs_mode == STUDY_PAIRS_ON_POLICY)
        for (int i = 0; i < s->n_models; i++) t[k++] = (study_task){STUDY_TASK_PAIRS, i, -1, 0};
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        for (int c = m->n_ck ? 0 : -1; c < (m->n_ck ? m->n_ck : 0); c++)
            for (int sh = 0; sh < s->shards; sh++) t[k++] = (study_task){STUDY_TASK_RUN, i, c, sh};
    }
    for (int i = 0; i < s->n_models; i++) {
        if (s->has_probe) t[k++] = (study_task){STUDY_TASK_PROBE, i, -1, 0};
        if (s->has_atp) t[k++] = (study_task){STUDY_TASK_ATP, i, -1, 0};
    }
    free(s->tasks);
    s->tasks = t;
    s->n_tasks = k;
    return CLENS_OK;
}

int clens_study_set_shards(clens_study *s, int shards, clens_error *err)
{
    if (shards < 1 || shards > 100000) return clens_err(err, CLENS_E_ARG, "shards: expected 1..100000, got %d", shards);
    s->shards = shards;
    return build_tasks(s, err);
}

int clens_study_task_count(const clens_study *s)
{
    return s->n_tasks;
}

int clens_study_task_finished(const clens_study *s, int task)
{
    if (task < 0 || task >= s->n_tasks) return 0;
    const study_task *t = &s->tasks[task];
    char *dir = NULL;
    int done = 0;
    switch (t->kind) {
    case STUDY_TASK_PAIRS:
        dir = model_pairs_path(s, t->model);
        done = dir && exists(dir);
        break;
    case STUDY_TASK_RUN:
        dir = run_task_dir(s, t->model, t->ck, t->shard);
        done = file_in(dir, "results.json");
        break;
    case STUDY_TASK_PROBE:
        dir = step_dir(s, "probes", t->model);
        done = file_in(dir, "probe.json");
        if (done && s->has_steer) {
            free(dir);
            dir = step_dir(s, "steer", t->model);
            done = file_in(dir, "steer.json");
        }
        break;
    case STUDY_TASK_ATP:
        dir = step_dir(s, "atp", t->model);
        done = file_in(dir, "results.json");
        break;
    }
    free(dir);
    return done;
}

int clens_study_task_name(const clens_study *s, int task, char **out, clens_error *err)
{
    *out = NULL;
    if (task < 0 || task >= s->n_tasks) return clens_err(err, CLENS_E_ARG, "task %d outside 0..%d", task, s->n_tasks - 1);
    const study_task *t = &s->tasks[task];
    const study_model *m = &s->models[t->model];
    static const char *const kinds[] = {"pairs", "run", "probe", "atp"};
    char buf[512];
    int n = snprintf(buf, sizeof buf, "%s %s", t->kind == STUDY_TASK_PROBE && s->has_steer ? "probe+steer" : kinds[t->kind],
                     m->label);
    if (t->kind == STUDY_TASK_RUN && t->ck >= 0 && n > 0 && (size_t)n < sizeof buf)
        n += snprintf(buf + n, sizeof buf - (size_t)n, " step %ld", m->ck_steps[t->ck]);
    if (t->kind == STUDY_TASK_RUN && s->shards > 1 && n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n, " shard %d/%d", t->shard, s->shards);
    *out = strdup(buf);
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
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
    if (task < 0 || task >= s->n_tasks)
        return clens_err(err, CLENS_E_ARG, "task %d: the study has tasks 0..%d", task, s->n_tasks - 1);
    run_ctx c = {progress, user, 0, s->n_models, ""};
    char *shared = s->pairs_mode == STUDY_PAIRS_ON_POLICY ? NULL : model_pairs_path(s, 0);
    char *sp = join(s->out, "settings.json");
    int rc = CLENS_OK;
    const study_task *t = &s->tasks[task];
    if (!sp || (s->pairs_mode != STUDY_PAIRS_ON_POLICY && !shared)) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
    else if (!exists(sp) || (shared && !exists(shared)))
        rc = clens_err(err, CLENS_E_STATE, "%s: the study is not prepared (no %s): run `clens study` without --task "
                       "first (--slurm does)", s->out, !exists(sp) ? sp : shared);
    else if (!(rc = write_or_check_settings(s, err))) {
        switch (t->kind) {
        case STUDY_TASK_PAIRS: rc = run_pairs_task(s, t->model, &c, err); break;
        case STUDY_TASK_RUN: rc = run_model(s, t->model, t->ck, t->shard, &c, err); break;
        case STUDY_TASK_PROBE: rc = run_probe_task(s, t->model, &c, err); break;
        case STUDY_TASK_ATP: rc = run_atp_task(s, t->model, &c, err); break;
        }
    }
    free(sp);
    free(shared);
    return rc;
}

/* Merges the shards of one unit into its folder. */
static int merge_unit(const clens_study *s, int i, int ck, run_ctx *c, clens_error *err)
{
    char **dirs = calloc((size_t)s->shards, sizeof *dirs), *out = unit_dir(s, i, ck);
    int rc = dirs && out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int k = 0; !rc && k < s->shards; k++) {
        if (!(dirs[k] = run_task_dir(s, i, ck, k))) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        else if (!file_in(dirs[k], "results.json"))
            rc = clens_err(err, CLENS_E_STATE, "model %s: shard %s has not finished (no results.json); rerun its task",
                           s->models[i].label, dirs[k]);
    }
    if (!rc) {
        char *warn = NULL;
        say(c, "model %d/%d %s: merging %d shards -> %s", i + 1, s->n_models, s->models[i].label, s->shards, out);
        if (ck >= 0) {
            char *parent = unit_dir(s, i, ck), *slash = parent ? strrchr(parent, '/') : NULL;
            if (slash) *slash = 0;
            rc = parent ? clens_mkdir_p(parent, err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
            free(parent);
        }
        if (!rc) rc = clens_results_merge((const char *const *)dirs, s->shards, out, &warn, err);
        free(warn);
    }
    for (int k = 0; dirs && k < s->shards; k++) free(dirs[k]);
    free(dirs);
    free(out);
    return rc;
}

/* The dynamics of a checkpoint model (clens_dynamics_fit over its finished runs). */
static int fit_dynamics(const clens_study *s, int i, run_ctx *c, clens_error *err)
{
    const study_model *sm = &s->models[i];
    char *dir = step_dir(s, "dynamics", i), *pairs = model_pairs_path(s, i);
    clens_model *m = NULL;
    int *layers = NULL, nl = 0;
    int rc = dir && pairs ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
    if (!rc && !(rc = open_model(s, sm->ck_paths[sm->n_ck - 1], &m, err)))
        rc = model_layers(s, clens_model_get_info(m)->n_layers, &layers, &nl, err);
    clens_model_free(m);
    if (!rc) {
        clens_dynamics_params dp = clens_dynamics_default_params();
        dp.checkpoints = (const char *const *)sm->ck_paths;
        dp.n_checkpoints = sm->n_ck;
        dp.steps = sm->ck_steps;
        dp.run = run_params(s, pairs, layers, nl);
        dp.run.matmul = NULL; /* dp.matmul is the one the dynamics settings record */
        dp.resamples = (int)s->dyn_resamples;
        dp.seed = (uint64_t)s->dyn_seed;
        dp.min_delta_bic = s->dyn_min_delta_bic;
        dp.max_window_frac = s->dyn_max_window;
        dp.min_inside = (int)s->dyn_min_inside;
        dp.min_amplitude = s->dyn_min_amplitude;
        dp.matmul = s->matmul;
        dp.threads = s->threads;
        say(c, "model %d/%d %s: training dynamics over %d checkpoints -> %s", i + 1, s->n_models, sm->label, sm->n_ck, dir);
        rc = clens_dynamics_fit(&dp, dir, NULL, NULL, NULL, err);
    }
    if (rc) rc = model_error(sm, rc, err);
    free(layers);
    free(pairs);
    free(dir);
    return rc;
}

/* "INPUT=DIR" for every model whose step folder holds file (compare's attachments). */
static int attachments(const clens_study *s, char **inputs, const char *kind, const char *file, char ***out, int *n,
                       clens_error *err)
{
    *n = 0;
    *out = calloc((size_t)s->n_models, sizeof **out);
    if (!*out) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int i = 0; i < s->n_models; i++) {
        char *d = step_dir(s, kind, i);
        if (!d) return clens_err(err, CLENS_E_NOMEM, "out of memory");
        if (file_in(d, file)) {
            size_t len = strlen(inputs[i]) + strlen(d) + 2;
            if (!((*out)[*n] = malloc(len))) { free(d); return clens_err(err, CLENS_E_NOMEM, "out of memory"); }
            snprintf((*out)[(*n)++], len, "%s=%s", inputs[i], d);
        }
        free(d);
    }
    return CLENS_OK;
}

static void free_list(char **l, int n)
{
    for (int i = 0; l && i < n; i++) free(l[i]);
    free(l);
}

int clens_study_finalize(clens_study *s, void (*progress)(void *user, const char *line), void *user, char **summary_md,
                         clens_error *err)
{
    run_ctx c = {progress, user, 0, s->n_models, ""};
    char *cmp_dir = join(s->out, "comparison"), *cmp_md = NULL;
    char **inputs = calloc((size_t)s->n_models, sizeof *inputs);
    char **labels = calloc((size_t)s->n_models, sizeof *labels);
    char **trains = calloc((size_t)s->n_models, sizeof *trains);
    char **probes = NULL, **steers = NULL, **atps = NULL;
    int np = 0, ns = 0, na = 0;
    int rc = CLENS_OK;
    if (summary_md) *summary_md = NULL;
    if (!cmp_dir || !inputs || !labels || !trains) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto end;
    }
    if ((rc = write_or_check_settings(s, err))) goto end;
    for (int t = 0; t < s->n_tasks; t++)
        if (s->tasks[t].kind != STUDY_TASK_RUN && !clens_study_task_finished(s, t)) {
            char *name = NULL;
            clens_study_task_name(s, t, &name, NULL);
            rc = clens_err(err, CLENS_E_STATE, "task %d (%s) has not finished; rerun it", t, name ? name : "?");
            free(name);
            goto end;
        }
    for (int i = 0; i < s->n_models; i++) {
        const study_model *m = &s->models[i];
        /* the comparison shows a series by its last checkpoint */
        inputs[i] = unit_dir(s, i, m->n_ck ? m->n_ck - 1 : -1);
        size_t n = (inputs[i] ? strlen(inputs[i]) : 0) + strlen(m->label) + strlen(m->training) + 4;
        labels[i] = malloc(n);
        trains[i] = malloc(n);
        if (!inputs[i] || !labels[i] || !trains[i]) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto end; }
        snprintf(labels[i], n, "%s=%s", inputs[i], m->label);
        snprintf(trains[i], n, "%s=%s", inputs[i], m->training);
        if (s->shards > 1)
            for (int k = m->n_ck ? 0 : -1; k < (m->n_ck ? m->n_ck : 0); k++)
                if ((rc = merge_unit(s, i, k, &c, err))) goto end;
        if (m->n_ck && (rc = fit_dynamics(s, i, &c, err))) goto end;
    }
    if ((rc = attachments(s, inputs, "probes", "probe.json", &probes, &np, err)) ||
        (rc = attachments(s, inputs, "steer", "steer.json", &steers, &ns, err)) ||
        (rc = attachments(s, inputs, "atp", "results.json", &atps, &na, err)))
        goto end;
    clens_compare_params cp = clens_compare_default_params();
    cp.resamples = (int)s->compare_resamples;
    cp.seed = (uint64_t)s->compare_seed;
    cp.labels = (const char *const *)labels;
    cp.n_labels = s->n_models;
    cp.trainings = (const char *const *)trains;
    cp.n_trainings = s->n_models;
    cp.probes = np ? (const char *const *)probes : NULL;
    cp.n_probes = np;
    cp.steers = ns ? (const char *const *)steers : NULL;
    cp.n_steers = ns;
    cp.atps = na ? (const char *const *)atps : NULL;
    cp.n_atps = na;
    /* compare shows each model's probe, steering and AtP beside its patching profile (docs/compare.md) */
    for (int k = 0; k < np; k++) say(&c, "comparison: probe %s", probes[k]);
    for (int k = 0; k < ns; k++) say(&c, "comparison: steer %s", steers[k]);
    for (int k = 0; k < na; k++) say(&c, "comparison: atp %s", atps[k]);
    say(&c, "comparison of %d models -> %s", s->n_models, cmp_dir);
    if ((rc = clens_compare_write((const char *const *)inputs, s->n_models, &cp, cmp_dir, &cmp_md, err))) goto end;
    if ((rc = write_summary(s, cmp_md, summary_md, err))) goto end;
    say(&c, "study done: %s/study.md, %s/comparison.md", s->out, cmp_dir);
end:
    free_list(inputs, s->n_models);
    free_list(labels, s->n_models);
    free_list(trains, s->n_models);
    free_list(probes, np);
    free_list(steers, ns);
    free_list(atps, na);
    free(cmp_md);
    free(cmp_dir);
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
                        k ? "Final job: merge the shards, fit the dynamics, compare"
                          : "Job arrays: pairs, (model or checkpoint) x shard, steps", s->path);
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
        if (s->tasks[i].kind != STUDY_TASK_PAIRS && !clens_study_task_finished(s, i)) {
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

int clens_study_unfinished_pairs_tasks(const clens_study *s, char **out, clens_error *err)
{
    clens_sb a = {0};
    for (int i = 0, first = 1; i < s->n_tasks; i++)
        if (s->tasks[i].kind == STUDY_TASK_PAIRS && !clens_study_task_finished(s, i)) {
            clens_sb_printf(&a, first ? "%d" : ",%d", i);
            first = 0;
        }
    char *t = clens_sb_take(&a);
    *out = t ? t : strdup("");
    return *out ? CLENS_OK : clens_err(err, CLENS_E_NOMEM, "out of memory");
}
