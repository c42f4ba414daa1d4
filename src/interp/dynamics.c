/*
 * dynamics.c: `clens dynamics` (docs/dynamics.md): the same patching sweep on
 * every checkpoint of a training series, and the statistics of recovery vs
 * training step. Each checkpoint is one run of the library's run engine
 * (clens_run_open / execute / finish) in its own folder out/runs/NN-step-S, so
 * a killed series resumes checkpoint by checkpoint and pair by pair. Each
 * run folder is then read back through the compare code (cmp_load_input,
 * cmp_analyze: the profile, its label and the critical layer are exactly
 * `clens compare`'s), and per resid_pre layer the checkpoint means are fitted
 * as a line and as a logistic step (dynamics_fit.c). The bootstrap resamples
 * pair ids jointly across checkpoints (the pairs are shared, so one draw is
 * one alternative pair set seen by every checkpoint). The renderers are in
 * dynamics_report.c.
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "base/path.h"
#include "base/infile.h"
#include "base/outdir.h"
#include "formats/formats.h"
#include "interp/dynamics_internal.h"
#include "report/stats.h"

clens_dynamics_params clens_dynamics_default_params(void)
{
    clens_dynamics_params p;
    memset(&p, 0, sizeof p);
    p.run = clens_run_default_params();
    p.behaviour_n = 100;
    p.resamples = 200;
    p.seed = 0;
    p.min_delta_bic = 10;
    p.max_window_frac = 0.25;
    p.min_inside = 3;
    p.min_amplitude = 10;
    return p;
}

static void say(void (*progress)(void *, const char *), void *user, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(void (*progress)(void *, const char *), void *user, const char *fmt, ...)
{
    if (!progress) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    progress(user, buf);
}

/* "step" followed by an optional '-' or '_' and digits, in s; -1 if none. */
static long step_in_name(const char *s)
{
    long found = -1;
    for (const char *q = s; (q = strstr(q, "step")) != NULL; q += 4) {
        const char *d = q + 4;
        if (*d == '-' || *d == '_') d++;
        if (isdigit((unsigned char)*d)) found = strtol(d, NULL, 10);
    }
    return found;
}

/* The step of a checkpoint: training.json "step" in its folder, else a
 * step-NNN in the folder name (or the revision of org/name@revision). */
static int read_step(const char *arg, const char *dir, long *step, clens_error *err)
{
    char *tj = clens_path_join(dir, "training.json");
    if (!tj) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    struct stat st;
    if (stat(tj, &st) == 0) {
        json_t *root = NULL;
        json_error_t je;
        int rc = clens_json_load_regular(tj, 0, &root, &je, err);
        if (rc) { free(tj); return rc; }
        json_t *s = json_object_get(root, "step");
        if (json_is_integer(s)) {
            *step = (long)json_integer_value(s);
            json_decref(root);
            free(tj);
            return 0;
        }
        json_decref(root);
    }
    free(tj);
    const char *at = strrchr(arg, '@');
    long v = at ? step_in_name(at + 1) : -1;
    if (v < 0) {
        const char *base = strrchr(dir, '/');
        base = base ? base + 1 : dir;
        v = step_in_name(base);
        if (v < 0) v = step_in_name(arg);
    }
    if (v < 0)
        return clens_err(err, CLENS_E_ARG,
                         "%s: no training step (no training.json \"step\", no step-NNN in its name); give --steps", arg);
    *step = v;
    return 0;
}

/* ------------------------------------------------------------- settings */

static json_t *settings_json(const clens_dynamics_params *p, const long *steps)
{
    const clens_run_params *r = &p->run;
    json_t *s = json_object(), *ck = json_array(), *stp = json_array(), *sites = json_array(), *layers = json_array();
    for (int i = 0; i < p->n_checkpoints; i++) {
        json_array_append_new(ck, json_string(p->checkpoints[i]));
        json_array_append_new(stp, json_integer(steps[i]));
    }
    for (int i = 0; i < r->n_site_types; i++) json_array_append_new(sites, json_string(clens_hook_short_name(r->site_types[i])));
    for (int i = 0; i < r->n_layers; i++) json_array_append_new(layers, json_integer(r->layers[i]));
    json_object_set_new(s, "checkpoints", ck);
    json_object_set_new(s, "steps", stp);
    json_object_set_new(s, "pairs", json_string(r->pairs_path));
    json_object_set_new(s, "sites", sites);
    json_object_set_new(s, "layers", r->layers ? layers : json_null());
    if (!r->layers) json_decref(layers);
    json_object_set_new(s, "metric", json_string(clens_metric_name(r->metric)));
    json_object_set_new(s, "prompt", json_string(r->prompt_chat ? "chat" : "raw"));
    json_object_set_new(s, "filter", json_string(clens_filter_name(r->filter)));
    json_object_set_new(s, "min_diff", json_real(r->min_diff));
    json_object_set_new(s, "n", json_integer(r->n_target));
    json_object_set_new(s, "method", json_string(r->method == CLENS_PATCH_RERUN ? "rerun" : r->method == CLENS_PATCH_ATP ? "atp" : "fast"));
    json_object_set_new(s, "behaviour", p->behaviour_path ? json_string(p->behaviour_path) : json_null());
    json_object_set_new(s, "behaviour_n", json_integer(p->behaviour_n));
    json_object_set_new(s, "resamples", json_integer(p->resamples));
    json_object_set_new(s, "seed", json_integer((json_int_t)p->seed));
    json_object_set_new(s, "min_delta_bic", json_real(p->min_delta_bic));
    json_object_set_new(s, "max_window_frac", json_real(p->max_window_frac));
    json_object_set_new(s, "min_inside", json_integer(p->min_inside));
    json_object_set_new(s, "min_amplitude", json_real(p->min_amplitude));
    json_object_set_new(s, "matmul", json_string(p->matmul ? p->matmul : "default"));
    return s;
}

/* Writes out/settings.json, or checks the one there (rulings R19). */
static int check_settings(const char *out, json_t *settings, clens_error *err)
{
    char *path = clens_path_join(out, "settings.json");
    char *canon = json_dumps(settings, JSON_SORT_KEYS | JSON_COMPACT);
    int rc = 0;
    if (!path || !canon) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    char hex[65];
    clens_sha256_hex(canon, strlen(canon), hex);
    int found;
    if ((rc = clens_outdir_check(out, "dynamics run", settings, hex, NULL, &found, err)) || found) goto done;
    {
        json_t *doc = json_object();
        json_object_set(doc, "settings", settings);
        json_object_set_new(doc, "settings_hash", json_string(hex));
        json_object_set_new(doc, "format", json_string("clens-dynamics-settings/1"));
        rc = clens_json_write_atomic(path, doc, err);
        json_decref(doc);
    }
done:
    free(path);
    free(canon);
    return rc;
}

/* ------------------------------------------------------------ running */

static void run_progress(void *user, const clens_run_info *ri)
{
    dyn_series *s = user;
    if (!s->progress) return;
    say(s->progress, s->user, "dynamics: checkpoint %d/%d: %ld/%ld kept, %ld/%ld candidates done", s->cur + 1,
        s->n_ck, ri->kept, ri->target, ri->done, ri->candidates);
}

static int run_checkpoint(dyn_series *s, const clens_dynamics_params *p, int k, clens_error *err)
{
    dyn_ckpt *c = &s->ck[k];
    clens_model_params mp = clens_model_default_params();
    mp.n_threads = p->threads;
    if (p->matmul && strcmp(p->matmul, "portable") == 0) mp.matmul = CLENS_MATMUL_PORTABLE;
    else if (p->matmul && strcmp(p->matmul, "bf16") == 0) mp.matmul = CLENS_MATMUL_BF16;
    clens_model *m = NULL;
    clens_run *run = NULL;
    clens_tokenizer *tok = NULL;
    int rc;
    s->cur = k;
    if ((rc = clens_model_open(&m, c->path, &mp, err))) goto done;
    clens_run_params rp = p->run;
    rp.matmul = p->matmul;
    if ((rc = clens_run_open(&run, c->run_dir, m, &rp, err))) goto done;
    const clens_run_info *ri = clens_run_get_info(run);
    if (ri->resumed_done) say(s->progress, s->user, "dynamics: checkpoint %d/%d (step %ld): resuming, %ld pairs recorded", k + 1, s->n_ck, c->step, ri->resumed_done);
    if ((rc = clens_run_execute(run, run_progress, s, err))) goto done;
    if ((rc = clens_run_finish(run, NULL, err))) goto done;
    if (p->behaviour_path) {
        char name[64];
        snprintf(name, sizeof name, "behaviour-%02d.json", k);
        char *path = clens_path_join(s->out, name);
        if (!path) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        struct stat st;
        json_t *old = NULL;
        json_error_t je;
        if (stat(path, &st) == 0 && clens_json_load_regular(path, 0, &old, &je, NULL) == 0 &&
            json_is_number(json_object_get(old, "p_correction_after_error"))) {
            c->beh.p_correction_after_error = json_number_value(json_object_get(old, "p_correction_after_error"));
            c->beh.p_correction_after_correct = json_number_value(json_object_get(old, "p_correction_after_correct"));
            c->beh.n_traces = (int)json_integer_value(json_object_get(old, "n_traces"));
            c->has_beh = 1;
        } else {
            if ((rc = clens_tokenizer_open(&tok, c->path, err)) ||
                (rc = clens_behaviour_measure(m, tok, p->behaviour_path, p->behaviour_n, &c->beh, NULL, err))) {
                free(path);
                json_decref(old);
                goto done;
            }
            c->has_beh = 1;
            clens_sb b = {0};
            clens_sb_puts(&b, "{\"n_traces\": ");
            clens_sb_printf(&b, "%d, \"p_correction_after_error\": ", c->beh.n_traces);
            clens_sb_json_num(&b, c->beh.p_correction_after_error);
            clens_sb_puts(&b, ", \"p_correction_after_correct\": ");
            clens_sb_json_num(&b, c->beh.p_correction_after_correct);
            clens_sb_puts(&b, "}\n");
            char *t = clens_sb_take(&b);
            rc = t ? clens_write_file_atomic(path, t, strlen(t), err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
            free(t);
        }
        json_decref(old);
        free(path);
        if (rc) goto done;
    }
    c->n_kept = ri->kept;
    say(s->progress, s->user, "dynamics: checkpoint %d/%d (step %ld) done: %ld pairs kept%s", k + 1, s->n_ck, c->step,
        ri->kept, ri->kept ? "" : " (no profile: the checkpoint has no value in the series)");
done:
    clens_tokenizer_free(tok);
    clens_run_free(run);
    clens_model_free(m);
    return rc;
}

/* ------------------------------------------------------------ analysis */

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Mean over the drawn ids (idx, k of them; NULL = every id once) of layer j at checkpoint c. */
static double mean_at(const dyn_series *s, int c, int j, const int *idx, int k)
{
    double sum = 0;
    int cnt = 0;
    int n = idx ? k : s->n_ids;
    for (int t = 0; t < n; t++) {
        int id = idx ? idx[t] : t;
        double v = s->rec[((size_t)c * s->n_ids + (size_t)id) * s->n_pts + (size_t)j];
        if (!isnan(v)) { sum += v; cnt++; }
    }
    return cnt ? sum / cnt : NAN;
}

int dyn_analyze(dyn_series *s, const clens_dynamics_params *p, clens_error *err)
{
    int K = s->n_ck, P = s->n_pts, rc = 0;
    double *t = malloc(sizeof *t * (size_t)K), *y = malloc(sizeof *y * (size_t)K);
    int *idx = s->n_ids ? malloc(sizeof *idx * (size_t)s->n_ids) : NULL;
    double *locs = p->resamples ? malloc(sizeof *locs * (size_t)p->resamples) : NULL;
    double *wids = p->resamples ? malloc(sizeof *wids * (size_t)p->resamples) : NULL;
    s->layer = calloc((size_t)P, sizeof *s->layer);
    if (!t || !y || !s->layer || (s->n_ids && !idx) || (p->resamples && (!locs || !wids))) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto done;
    }
    for (int j = 0; j < P; j++) {
        dyn_layer *L = &s->layer[j];
        L->mean = malloc(sizeof *L->mean * (size_t)K);
        if (!L->mean) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        int n = 0;
        for (int c = 0; c < K; c++) {
            L->mean[c] = mean_at(s, c, j, NULL, 0);
            if (!isnan(L->mean[c])) { t[n] = (double)s->ck[c].step; y[n] = L->mean[c]; n++; }
        }
        L->n_fit = n;
        L->loc_lo = L->loc_hi = L->w_lo = L->w_hi = NAN;
        if (n >= 2) dyn_fit_linear(t, y, n, &L->lin);
        else { L->lin.sse = L->lin.bic = NAN; }
        if ((rc = dyn_fit_logistic(t, y, n, NULL, &L->lg))) { rc = clens_err(err, rc, "out of memory"); goto done; }
        L->verdict = dyn_decide(p, t, y, n, &L->lin, &L->lg, &L->n_inside);
        if (!L->lg.ok || L->verdict == DYN_FLAT || p->resamples <= 0 || s->n_ids == 0) continue;
        /* joint bootstrap over pair ids */
        clens_rng g;
        clens_rng_seed(&g, p->seed);
        int nb = 0;
        for (int b = 0; b < p->resamples; b++) {
            for (int q = 0; q < s->n_ids; q++) idx[q] = (int)clens_rng_below(&g, (uint64_t)s->n_ids);
            int m = 0;
            for (int c = 0; c < K; c++) {
                double v = mean_at(s, c, j, idx, s->n_ids);
                if (!isnan(v)) { t[m] = (double)s->ck[c].step; y[m] = v; m++; }
            }
            dyn_logistic f;
            if ((rc = dyn_fit_logistic(t, y, m, &L->lg, &f))) { rc = clens_err(err, rc, "out of memory"); goto done; }
            if (!f.ok) continue;
            locs[nb] = f.loc;
            wids[nb] = f.width;
            nb++;
        }
        L->n_boot = nb;
        if (nb > 0) {
            qsort(locs, (size_t)nb, sizeof *locs, cmp_dbl);
            qsort(wids, (size_t)nb, sizeof *wids, cmp_dbl);
            L->loc_lo = clens_percentile_sorted(locs, nb, 0.025);
            L->loc_hi = clens_percentile_sorted(locs, nb, 0.975);
            L->w_lo = clens_percentile_sorted(wids, nb, 0.025);
            L->w_hi = clens_percentile_sorted(wids, nb, 0.975);
        }
    }
    /* the headline curve: the last checkpoint's critical layer, else the largest change */
    s->headline = -1;
    const cmp_model *last = dyn_model(&s->ck[K - 1]);
    if (last && last->crit_idx >= 0 && s->layer[last->crit_idx].verdict != DYN_FLAT) s->headline = last->crit_idx;
    if (s->headline < 0) {
        double best = -1;
        for (int j = 0; j < P; j++) {
            const dyn_layer *L = &s->layer[j];
            if (L->verdict == DYN_FLAT || !L->lg.ok) continue;
            double amp = fabs(L->lg.hi - L->lg.lo);
            if (amp > best) { best = amp; s->headline = j; }
        }
    }
    s->headline_is_critical = s->headline >= 0 && last && s->headline == last->crit_idx;
done:
    free(t); free(y); free(idx); free(locs); free(wids);
    return rc;
}

/* Reads every run folder back through the compare code and gathers the per-pair recoveries. */
static int load_series(dyn_series *s, const clens_dynamics_params *p, clens_error *err)
{
    int rc = 0, first = -1;
    for (int k = 0; k < s->n_ck; k++) {
        dyn_ckpt *c = &s->ck[k];
        c->set.p = clens_compare_default_params();
        c->set.p.resamples = p->resamples;
        c->set.p.seed = p->seed;
        if (c->n_kept == 0) continue;
        if ((rc = cmp_load_input(&c->set, c->run_dir, err))) return rc;
        if ((rc = cmp_analyze(&c->set.p, &c->set.m[0], err))) return rc;
        const cmp_model *m = &c->set.m[0];
        if (first < 0) {
            first = k;
            s->n_pts = m->n_pts;
            s->n_layers = m->n_layers;
            s->layer_pre = malloc(sizeof *s->layer_pre * (size_t)m->n_pts);
            if (!s->layer_pre) return clens_err(err, CLENS_E_NOMEM, "out of memory");
            memcpy(s->layer_pre, m->layer_pre, sizeof *s->layer_pre * (size_t)m->n_pts);
        } else if (m->n_pts != s->n_pts || memcmp(m->layer_pre, s->layer_pre, sizeof *s->layer_pre * (size_t)m->n_pts)) {
            return clens_err(err, CLENS_E_FORMAT, "%s: its profile's layers differ from %s's (checkpoints of different models?)",
                             c->arg, s->ck[first].arg);
        }
        for (int i = 0; i < m->n_pairs; i++) {
            int found = 0;
            for (int q = 0; q < s->n_ids && !found; q++) found = strcmp(s->ids[q], m->pair_id[i]) == 0;
            if (found) continue;
            char **ni = realloc(s->ids, sizeof *ni * (size_t)(s->n_ids + 1));
            if (!ni) return clens_err(err, CLENS_E_NOMEM, "out of memory");
            s->ids = ni;
            if (!(s->ids[s->n_ids] = strdup(m->pair_id[i]))) return clens_err(err, CLENS_E_NOMEM, "out of memory");
            s->n_ids++;
        }
    }
    if (first < 0)
        return clens_err(err, CLENS_E_ARG, "no checkpoint kept a pair (see %s/runs/*/records.jsonl: lower --min-diff or "
                                           "use --filter seed)", s->out);
    size_t n = (size_t)s->n_ck * (size_t)(s->n_ids ? s->n_ids : 1) * (size_t)s->n_pts;
    s->rec = malloc(sizeof *s->rec * n);
    if (!s->rec) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) s->rec[i] = NAN;
    for (int k = 0; k < s->n_ck; k++) {
        const cmp_model *m = dyn_model(&s->ck[k]);
        for (int i = 0; m && i < m->n_pairs; i++) {
            int q = 0;
            while (strcmp(s->ids[q], m->pair_id[i]) != 0) q++;
            for (int j = 0; j < s->n_pts; j++)
                if (m->def[(size_t)i * (size_t)m->n_pts + (size_t)j])
                    s->rec[((size_t)k * s->n_ids + (size_t)q) * s->n_pts + (size_t)j] = m->rec[(size_t)i * (size_t)m->n_pts + (size_t)j];
        }
    }
    return 0;
}

void dyn_series_free(dyn_series *s)
{
    for (int k = 0; k < s->n_ck; k++) {
        dyn_ckpt *c = &s->ck[k];
        free(c->path);
        free(c->run_dir);
        for (int i = 0; i < c->set.n_models; i++) cmp_model_clear(&c->set.m[i]);
        free(c->set.m);
    }
    free(s->ck);
    for (int i = 0; i < s->n_ids; i++) free(s->ids[i]);
    free(s->ids);
    free(s->rec);
    free(s->layer_pre);
    for (int j = 0; s->layer && j < s->n_pts; j++) free(s->layer[j].mean);
    free(s->layer);
    memset(s, 0, sizeof *s);
}

static int write_text(const char *dir, const char *name, char *text, clens_error *err)
{
    if (!text) return clens_err(err, CLENS_E_NOMEM, "out of memory rendering %s", name);
    char *p = clens_path_join(dir, name);
    int rc = p ? clens_write_file_atomic(p, text, strlen(text), err) : clens_err(err, CLENS_E_NOMEM, "out of memory");
    free(p);
    return rc;
}

/* Resolves every checkpoint and its step, checks the order, writes or checks
 * out_dir/settings.json and names the run folders (out_dir/runs/NN-step-S). */
static int series_open(dyn_series *s, const clens_dynamics_params *p, const char *out_dir,
                       void (*progress)(void *, const char *), void *user, json_t **settings, clens_error *err)
{
    *settings = NULL;
    memset(s, 0, sizeof *s);
    if (!p || !out_dir || !p->checkpoints || p->n_checkpoints < 2)
        return clens_err(err, CLENS_E_ARG, "dynamics needs at least two checkpoints and an output folder");
    if (!p->run.pairs_path) return clens_err(err, CLENS_E_ARG, "dynamics needs a pairs file");
    if (p->resamples < 0 || p->min_inside < 1 || !(p->max_window_frac > 0) || !isfinite(p->min_delta_bic) ||
        !(p->min_amplitude >= 0))
        return clens_err(err, CLENS_E_ARG, "bad parameters (resamples >= 0, min_inside >= 1, max_window_frac > 0)");
    s->out = out_dir;
    s->progress = progress;
    s->user = user;
    s->params = p;
    int rc = 0;
    long *steps = malloc(sizeof *steps * (size_t)p->n_checkpoints);
    s->ck = calloc((size_t)p->n_checkpoints, sizeof *s->ck);
    if (!steps || !s->ck) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    s->n_ck = p->n_checkpoints;
    for (int k = 0; k < s->n_ck; k++) {
        dyn_ckpt *c = &s->ck[k];
        c->arg = p->checkpoints[k];
        if ((rc = hf_resolve_model(c->arg, &c->path, err))) goto done;
        if (p->steps) c->step = p->steps[k];
        else if ((rc = read_step(c->arg, c->path, &c->step, err))) goto done;
        if (k > 0 && c->step <= s->ck[k - 1].step) {
            rc = clens_err(err, CLENS_E_ARG, "%s: step %ld is not after the previous checkpoint's (%ld); give the "
                                             "checkpoints in training order", c->arg, c->step, s->ck[k - 1].step);
            goto done;
        }
        steps[k] = c->step;
    }
    if ((rc = clens_mkdir_p(out_dir, err))) goto done;
    *settings = settings_json(p, steps);
    if (!*settings) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    if ((rc = check_settings(out_dir, *settings, err))) goto done;
    {
        char *runs = clens_path_join(out_dir, "runs");
        if (!runs) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        rc = clens_mkdir_p(runs, err);
        for (int k = 0; !rc && k < s->n_ck; k++) {
            char name[64];
            snprintf(name, sizeof name, "%02d-step-%ld", k, s->ck[k].step);
            if (!(s->ck[k].run_dir = clens_path_join(runs, name))) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        }
        free(runs);
    }
done:
    free(steps);
    return rc;
}

/* Reads the series back, fits it and writes the reports. */
static int fit_and_write(dyn_series *s, const clens_dynamics_params *p, const char *out_dir, json_t *settings,
                         char **verdict_md, clens_error *err)
{
    int rc;
    if ((rc = load_series(s, p, err))) return rc;
    say(s->progress, s->user, "dynamics: fitting %d layers x %d checkpoints, %d resamples", s->n_pts, s->n_ck,
        p->resamples);
    if ((rc = dyn_analyze(s, p, err))) return rc;
    char *json = dyn_render_json(s, settings);
    if ((rc = write_text(out_dir, "dynamics.json", json, err))) { free(json); return rc; }
    char *md = dyn_render_md(s);
    char *heat = dyn_svg_heat(s), *curves = dyn_svg_curves(s);
    char *html = md && heat && curves && json ? dyn_render_html(s, md, heat, curves, json) : NULL;
    if (!(rc = write_text(out_dir, "dynamics.md", md, err)) && !(rc = write_text(out_dir, "heatmap.svg", heat, err)) &&
        !(rc = write_text(out_dir, "curves.svg", curves, err)))
        rc = write_text(out_dir, "report.html", html, err);
    free(json); free(heat); free(curves); free(html);
    if (!rc && verdict_md) { *verdict_md = md; md = NULL; }
    free(md);
    return rc;
}

int clens_dynamics_run(const clens_dynamics_params *p, const char *out_dir, void (*progress)(void *, const char *),
                       void *user, char **verdict_md, clens_error *err)
{
    if (verdict_md) *verdict_md = NULL;
    dyn_series s;
    json_t *settings = NULL;
    int rc = series_open(&s, p, out_dir, progress, user, &settings, err);
    for (int k = 0; !rc && k < s.n_ck; k++) {
        say(progress, user, "dynamics: checkpoint %d/%d: %s (step %ld)", k + 1, s.n_ck, s.ck[k].arg, s.ck[k].step);
        rc = run_checkpoint(&s, p, k, err);
    }
    if (!rc) rc = fit_and_write(&s, p, out_dir, settings, verdict_md, err);
    json_decref(settings);
    dyn_series_free(&s);
    return rc;
}

int clens_dynamics_fit(const clens_dynamics_params *p, const char *out_dir, void (*progress)(void *, const char *),
                       void *user, char **verdict_md, clens_error *err)
{
    if (verdict_md) *verdict_md = NULL;
    dyn_series s;
    json_t *settings = NULL;
    int rc = series_open(&s, p, out_dir, progress, user, &settings, err);
    if (!rc && p->behaviour_path)
        rc = clens_err(err, CLENS_E_ARG, "dynamics fit: behaviour is measured while running (clens_dynamics_run)");
    for (int k = 0; !rc && k < s.n_ck; k++) {
        /* the kept count of a finished run folder (run by the caller, or merged from shards) */
        char *path = clens_path_join(s.ck[k].run_dir, "results.json");
        json_t *res = NULL;
        json_error_t je;
        if (!path) rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        else if ((rc = clens_json_load_regular(path, 0, &res, &je, err))) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = clens_err(err, rc, "checkpoint %s has not finished: %s", s.ck[k].arg, msg);
        } else
            s.ck[k].n_kept = (long)json_integer_value(json_object_get(json_object_get(res, "counts"), "kept"));
        json_decref(res);
        free(path);
    }
    if (!rc) rc = fit_and_write(&s, p, out_dir, settings, verdict_md, err);
    json_decref(settings);
    dyn_series_free(&s);
    return rc;
}

int clens_dynamics_checkpoint_step(const char *checkpoint, long *step, clens_error *err)
{
    char *path = NULL;
    int rc = hf_resolve_model(checkpoint, &path, err);
    if (!rc) rc = read_step(checkpoint, path, step, err);
    free(path);
    return rc;
}
