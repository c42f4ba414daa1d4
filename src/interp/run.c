/*
 * run.c: the patching run engine (include/clens.h, "run engine"): a run
 * folder created or resumed, its candidates processed one at a time in the
 * fixed candidate order of the pairs file, each appended to records.jsonl,
 * and results.json / results.md written from the folder at the end. Files
 * and schema: docs/patch-output.md.
 *
 * Per candidate: the token-level check of the pair for this model (study.md
 * §5.2, R6), the clean and corrupted runs, the keep/drop filter on their
 * logit_mean values (run_filter.c), then the patched variants of a kept pair.
 * A pair whose metrics are not finite (NaN/Inf weights or activations) is
 * recorded as dropped with reason "non_finite", never as kept, so results.json
 * can always be written.
 *
 * Resume: the settings (whose hash is in settings.json), the shard and the
 * provenance identity keys (run_settings.c) must equal the folder's; the
 * first differing key is named. Candidates already recorded are skipped; as
 * candidates are processed in order and every started candidate gets a
 * record, the resumed folder holds the records an uninterrupted run would.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "base/path.h"
#include "interp/prompts.h"
#include "interp/atp.h"
#include "interp/run_internal.h"

struct clens_run {
    char *dir, *settings_path, *records_path, *notes;
    clens_model *m; /* borrowed */
    clens_tokenizer *tok;
    clens_chat_template *tmpl;
    clens_prompt_mode pmode;
    clens_patch_method method;
    clens_filter_kind filter;
    double min_diff;
    char *pairs_path;
    clens_pair *pairs;
    size_t n_pairs;
    clens_hook_point types[CLENS_HOOK_COUNT];
    int n_types;
    clens_site *sites;
    int n_sites;
    run_token_set mass, mean;
    clens_patcher *pt;
    tr_atp *atp;           /* method atp: the training-math model */
    clens_metric metrics[3]; /* logprob_mass, logit_mean (the filter's), then a callback */
    int n_metrics;
    const char *metric_names[3];
    char *callback_name;
    int shard_index, shard_count;
    long n_target;
    unsigned char *done;   /* [n_pairs] candidate recorded */
    size_t next;           /* first candidate not yet looked at */
    double *vals;          /* [2][width] */
    size_t width;
    int32_t *ids_c, *ids_r;
    char last_id[256];
    clens_run_info info;
};

clens_run_params clens_run_default_params(void)
{
    clens_run_params p;
    memset(&p, 0, sizeof p);
    p.metric = CLENS_METRIC_LOGPROB_MASS;
    p.method = CLENS_PATCH_FAST;
    p.prompt_chat = 1;
    p.filter = CLENS_FILTER_DEFAULT;
    p.min_diff = 3.0;
    p.n_target = 50;
    p.bootstrap_resamples = 2000;
    p.shard_count = 1;
    return p;
}

void clens_run_free(clens_run *r)
{
    if (!r) return;
    free(r->dir);
    free(r->settings_path);
    free(r->records_path);
    free(r->notes);
    free(r->pairs_path);
    free(r->callback_name);
    free(r->sites);
    free(r->done);
    free(r->vals);
    free(r->ids_c);
    free(r->ids_r);
    run_token_set_clear(&r->mass);
    run_token_set_clear(&r->mean);
    clens_patcher_free(r->pt);
    tr_atp_free(r->atp);
    clens_pairs_free(r->pairs, r->n_pairs);
    clens_chat_template_free(r->tmpl);
    clens_tokenizer_free(r->tok);
    free(r);
}

const clens_run_info *clens_run_get_info(const clens_run *r) { return &r->info; }

/* Adds one line to r->notes. */
static void add_note(clens_run *r, const char *line)
{
    size_t a = r->notes ? strlen(r->notes) : 0, b = strlen(line);
    char *n = realloc(r->notes, a + b + 2);
    if (!n) return; /* a lost note is not worth failing the run for */
    memcpy(n + a, line, b);
    n[a + b] = '\n';
    n[a + b + 1] = '\0';
    r->notes = n;
    r->info.notes = n;
}

static char *join_path(const char *dir, const char *name) { return clens_path_join(dir, name); }

static int check_params(const clens_run_params *p, const clens_model_info *in, clens_error *err)
{
    if (!p->pairs_path) return clens_err(err, CLENS_E_ARG, "run: no pairs file given");
    if (!p->site_types || p->n_site_types < 1) return clens_err(err, CLENS_E_ARG, "run: no site type given");
    if (p->n_target < 1) return clens_err(err, CLENS_E_ARG, "run: the target number of pairs must be >= 1");
    if (!isfinite(p->min_diff) || p->min_diff < 0)
        return clens_err(err, CLENS_E_ARG, "run: min_diff must be a finite number >= 0, got %g", p->min_diff);
    if (p->filter < 0 || p->filter >= CLENS_FILTER_COUNT) return clens_err(err, CLENS_E_ARG, "run: unknown filter");
    if ((int)p->metric < 0 || p->metric >= CLENS_METRIC_COUNT) return clens_err(err, CLENS_E_ARG, "run: unknown metric");
    if (p->metric == CLENS_METRIC_CALLBACK) {
        clens_metric_kind k;
        if (!p->metric_fn || !p->metric_name || !*p->metric_name)
            return clens_err(err, CLENS_E_ARG, "run: a callback metric needs its function and its name");
        if (clens_metric_parse(p->metric_name, &k, NULL) == CLENS_OK || strcmp(p->metric_name, "callback") == 0)
            return clens_err(err, CLENS_E_ARG, "run: a callback metric cannot be named '%s' (a built-in's name)",
                             p->metric_name);
        if (p->method == CLENS_PATCH_ATP)
            return clens_err(err, CLENS_E_ARG, "run: attribution patching needs the metric's gradient, which only the "
                             "built-in metrics have: use method fast or rerun with a callback metric");
    }
    /* The results reader accepts at most 10^6 shards and 10^7 resamples: refuse
     * here what it would refuse after the whole run. */
    if (p->shard_count < 1 || p->shard_count > 1000000 || p->shard_index < 0 || p->shard_index >= p->shard_count)
        return clens_err(err, CLENS_E_ARG, "run: shard %d of %d: expected 0 <= index < count <= 1000000",
                         p->shard_index, p->shard_count);
    if (p->bootstrap_resamples < 0 || p->bootstrap_resamples > 10000000 || p->bootstrap_seed < 0)
        return clens_err(err, CLENS_E_ARG, "run: bootstrap resamples must be in 0..10000000 and the seed >= 0");
    if (p->max_tokens < 0 || p->max_tokens == 1 || p->max_tokens > in->max_pos)
        return clens_err(err, CLENS_E_ARG,
                         "run: max_tokens %d is outside 2..%d (the model's max_position_embeddings)", p->max_tokens,
                         in->max_pos);
    return CLENS_OK;
}

/* The site list in types order (a per-head point: every head of a layer), and settings.layers. */
static int build_sites(clens_run *r, const clens_run_params *p, const clens_model_info *in, json_t *layers_json,
                       clens_error *err)
{
    const int L = in->n_layers, H = in->n_heads;
    for (int q = 0; q < p->n_layers; q++)
        if (p->layers[q] < 0 || p->layers[q] > L)
            return clens_err(err, CLENS_E_ARG, "run: layer %d is outside 0..%d", p->layers[q], L);
    for (int k = 0; k < p->n_site_types; k++) {
        clens_hook_point st = p->site_types[k];
        if (!clens_hook_patchable(st))
            return clens_err(err, CLENS_E_ARG, "run: %s is not a patching site type (resid_pre, resid_post, "
                             "attn_out, mlp_out, z)", clens_hook_short_name(st));
        int dup = 0;
        for (int j = 0; j < r->n_types; j++) dup |= r->types[j] == st;
        if (!dup) r->types[r->n_types++] = st;
    }
    r->sites = malloc(sizeof *r->sites * (size_t)r->n_types * (size_t)(L + 1) * (size_t)(H + 1));
    if (!r->sites) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    for (int k = 0; k < r->n_types; k++) {
        const clens_hook_point st = r->types[k];
        const int maxl = clens_hook_max_layer(st, L);
        json_t *lj = json_array();
        for (int l = 0; l <= maxl; l++) {
            int want = !p->layers;
            for (int q = 0; q < p->n_layers; q++) want |= p->layers[q] == l;
            if (!want) continue;
            json_array_append_new(lj, json_integer(l));
            if (clens_hook_per_head(st))
                for (int h = 0; h < H; h++) r->sites[r->n_sites++] = (clens_site){st, l, h};
            else r->sites[r->n_sites++] = (clens_site){st, l, -1};
        }
        json_object_set_new(layers_json, clens_hook_short_name(st), lj);
    }
    if (!r->n_sites) return clens_err(err, CLENS_E_ARG, "run: no site selected (check the layers)");
    return CLENS_OK;
}

/* Memory plan (rulings R15): three KV caches (prefix, clean, corrupted) of
 * max_tokens tokens must fit the KV budget. */
static int plan_max_tokens(const clens_model *m, int requested, int *from_memory)
{
    const clens_model_info *in = clens_model_get_info(m);
    *from_memory = 0;
    if (requested) return requested;
    int maxT = in->max_pos < 4096 ? in->max_pos : 4096;
    int64_t fit = clens_model_kv_budget(m) / (3 * in->kv_bytes_per_token + 1);
    if (fit < maxT) {
        maxT = fit > 64 ? (int)fit : 64;
        if (maxT > in->max_pos) maxT = in->max_pos;
        *from_memory = 1;
    }
    return maxT;
}

/* settings.matmul: the mode the products really ran in. CLENS_KERNEL=avx512-bf16
 * selects the bf16-dot path even when "default" was asked for, and that path
 * rounds activations, so it must show in the settings (and their hash). */
static const char *effective_matmul(const char *requested, const char *kernel)
{
    if (strcmp(kernel, "avx512-bf16") == 0) return "bf16";
    if (!requested || strcmp(requested, "bf16") == 0) return "default";
    return requested;
}

static json_t *settings_json(const clens_run *r, const clens_run_params *p, const clens_model_info *in,
                             json_t *layers_json, const char *pairs_sha, int max_tokens)
{
    json_t *s = json_object();
    json_object_set_new(s, "model", json_string(in->path));
    json_object_set_new(s, "method", json_string(p->method == CLENS_PATCH_RERUN ? "rerun" : p->method == CLENS_PATCH_ATP ? "atp" : "fast"));
    json_object_set_new(s, "prompt", json_string(p->prompt_chat ? "chat" : "raw"));
    json_object_set_new(s, "metric", json_string(p->metric == CLENS_METRIC_CALLBACK ? p->metric_name
                                                                                  : clens_metric_name(p->metric)));
    json_t *mets = json_object();
    json_object_set_new(mets, "logprob_mass", run_token_set_json(&r->mass));
    json_object_set_new(mets, "logit_mean", run_token_set_json(&r->mean));
    if (p->metric == CLENS_METRIC_CALLBACK) {
        json_t *cb = json_object();
        json_object_set_new(cb, "kind", json_string("callback"));
        json_object_set_new(mets, p->metric_name, cb);
    }
    json_object_set_new(s, "metrics", mets);
    json_t *types = json_array();
    for (int k = 0; k < r->n_types; k++) json_array_append_new(types, json_string(clens_hook_short_name(r->types[k])));
    json_object_set_new(s, "site_types", types);
    json_object_set(s, "layers", layers_json);
    json_object_set_new(s, "n_heads", json_integer(in->n_heads));
    json_object_set_new(s, "filter", json_string(clens_filter_name(p->filter)));
    json_object_set_new(s, "min_diff", json_real(p->min_diff));
    json_object_set_new(s, "n", json_integer(p->n_target));
    json_t *bj = json_object();
    json_object_set_new(bj, "resamples", json_integer(p->bootstrap_resamples));
    json_object_set_new(bj, "seed", json_integer(p->bootstrap_seed));
    json_object_set_new(s, "bootstrap", bj);
    json_object_set_new(s, "pairs_file", json_string(p->pairs_path));
    json_object_set_new(s, "pairs_sha256", json_string(pairs_sha));
    json_object_set_new(s, "matmul", json_string(effective_matmul(p->matmul, clens_model_kernel_name(r->m))));
    json_object_set_new(s, "max_tokens", json_integer(max_tokens));
    if (p->fidelity) json_object_set_new(s, "fidelity", json_string(p->fidelity));
    return s;
}

/* The output-folder refusal (base/outdir.h) for SECTION.KEY. */
static int refuse_difference(const char *dir, const char *section, const json_t *old, const json_t *now,
                             const char *key, clens_error *err)
{
    char what[300];
    snprintf(what, sizeof what, "%s.%s", section, key);
    return clens_outdir_refuse(err, dir, "run", what, json_object_get(old, key), json_object_get(now, key));
}

/* Resume check of an existing settings.json against this run's document. */
static int check_resume(clens_run *r, const json_t *old, const json_t *doc, clens_error *err)
{
    const json_t *os = json_object_get(old, "settings"), *ns = json_object_get(doc, "settings");
    const char *key = run_json_first_difference(os, ns);
    if (key) return refuse_difference(r->dir, "settings", os, ns, key, err);
    const char *oh = json_string_value(json_object_get(old, "settings_hash"));
    const char *nh = json_string_value(json_object_get(doc, "settings_hash"));
    if (!oh || strcmp(oh, nh))
        return clens_err(err, CLENS_E_STATE, "%s: settings_hash %.12s does not match its settings (%.12s): the file "
                         "was edited; refusing to resume", r->settings_path, oh ? oh : "(absent)", nh);
    const json_t *osh = json_object_get(old, "shard"), *nsh = json_object_get(doc, "shard");
    key = run_json_first_difference(osh, nsh);
    if (key) return refuse_difference(r->dir, "shard", osh, nsh, key, err);
    const json_t *op = json_object_get(old, "provenance"), *np = json_object_get(doc, "provenance");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)np, k, v) {
        json_t *w = json_object_get(op, k);
        if (w && json_equal(v, w)) continue;
        if (run_provenance_key_is_identity(k)) return refuse_difference(r->dir, "provenance", op, np, k, err);
        char *a = run_json_brief(w), *b = run_json_brief(v), line[512];
        snprintf(line, sizeof line, "resuming with provenance.%s %s (the run began with %s)", k, b ? b : "?",
                 a ? a : "?");
        add_note(r, line);
        free(a);
        free(b);
    }
    json_object_foreach((json_t *)op, k, v)
        if (!json_object_get(np, k) && run_provenance_key_is_identity(k))
            return refuse_difference(r->dir, "provenance", op, np, k, err);
    return CLENS_OK;
}

/* Writes settings.json for a new run, or checks an existing one. */
static int open_folder(clens_run *r, const json_t *doc, clens_error *err)
{
    int rc = clens_mkdir_p(r->dir, err);
    if (rc) return rc;
    json_error_t je;
    json_t *old = json_load_file(r->settings_path, 0, &je);
    if (old) {
        rc = check_resume(r, old, doc, err);
        json_decref(old);
        return rc;
    }
    if (access(r->settings_path, F_OK) == 0)
        return clens_err(err, CLENS_E_FORMAT, "%s:%d: %s", r->settings_path, je.line, je.text);
    char *txt = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    if (!txt) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    rc = clens_write_file_atomic(r->settings_path, txt, strlen(txt), err);
    free(txt);
    return rc;
}

int clens_run_open(clens_run **out, const char *dir, clens_model *m, const clens_run_params *p, clens_error *err)
{
    *out = NULL;
    const clens_model_info *in = clens_model_get_info(m);
    int rc = check_params(p, in, err);
    if (rc) return rc;
    clens_run *r = calloc(1, sizeof *r);
    if (!r) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    json_t *layers_json = json_object(), *settings = NULL, *doc = NULL;
    r->m = m;
    r->dir = strdup(dir);
    r->settings_path = join_path(dir, "settings.json");
    r->records_path = join_path(dir, "records.jsonl");
    r->pairs_path = strdup(p->pairs_path);
    if (!r->dir || !r->settings_path || !r->records_path || !r->pairs_path || !layers_json) {
        rc = clens_err(err, CLENS_E_NOMEM, "out of memory");
        goto done;
    }
    r->pmode = p->prompt_chat ? CLENS_PROMPT_CHAT : CLENS_PROMPT_RAW;
    r->method = p->method;
    r->filter = p->filter;
    r->min_diff = p->min_diff;
    r->shard_index = p->shard_index;
    r->shard_count = p->shard_count;
    r->n_target = p->n_target;

    if ((rc = clens_tokenizer_open(&r->tok, in->path, err))) goto done;
    if (r->pmode == CLENS_PROMPT_CHAT && (rc = clens_chat_template_open(&r->tmpl, in->path, err))) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        rc = clens_err(err, rc, "chat prompt: %s", msg);
        goto done;
    }
    if ((rc = clens_pairs_read_jsonl(p->pairs_path, &r->pairs, &r->n_pairs, err))) goto done;
    if ((rc = run_token_sets_build(r->tok, p->words, p->n_words, &r->mass, &r->mean, err))) goto done;
    if ((rc = build_sites(r, p, in, layers_json, err))) goto done;

    int from_memory;
    const int maxT = plan_max_tokens(m, p->max_tokens, &from_memory);
    char pairs_sha[65];
    if ((rc = clens_sha256_file_hex(p->pairs_path, pairs_sha, err))) goto done;
    settings = settings_json(r, p, in, layers_json, pairs_sha, maxT);
    char *canon = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    if (!canon) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
    char settings_hash[65];
    clens_sha256_hex(canon, strlen(canon), settings_hash);
    free(canon);
    doc = json_object();
    json_object_set_new(doc, "clens_version", json_string(CLENS_VERSION));
    json_object_set_new(doc, "settings_hash", json_string(settings_hash));
    json_object_set(doc, "settings", settings);
    json_t *sh = json_object();
    json_object_set_new(sh, "index", json_integer(r->shard_index));
    json_object_set_new(sh, "count", json_integer(r->shard_count));
    json_object_set_new(doc, "shard", sh);
    json_object_set_new(doc, "provenance", run_provenance_json(m, r->tok, r->tmpl));
    if ((rc = open_folder(r, doc, err))) goto done;

    run_records_scan scan;
    rc = run_records_scan_file(r->records_path, r->n_pairs, r->shard_index, r->shard_count, &scan, err);
    r->done = scan.done;
    if (rc) goto done;
    if (scan.torn_bytes) {
        char line[4200];
        snprintf(line, sizeof line, "%s: dropped an unfinished last line (%zu bytes)", r->records_path,
                 scan.torn_bytes);
        add_note(r, line);
    }
    /* An empty records.jsonl, so a run of no candidate still has its results. */
    if (access(r->records_path, F_OK) != 0 && (rc = clens_write_file_atomic(r->records_path, "", 0, err))) goto done;

    r->metrics[0] = (clens_metric){CLENS_METRIC_LOGPROB_MASS, r->mass.ids, r->mass.n, NULL, NULL};
    r->metrics[1] = (clens_metric){CLENS_METRIC_LOGIT_MEAN, r->mean.ids, r->mean.n, NULL, NULL};
    r->metric_names[0] = clens_metric_name(CLENS_METRIC_LOGPROB_MASS);
    r->metric_names[1] = clens_metric_name(CLENS_METRIC_LOGIT_MEAN);
    r->n_metrics = 2;
    if (p->metric == CLENS_METRIC_CALLBACK) {
        if (!(r->callback_name = strdup(p->metric_name))) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }
        r->metrics[2] = (clens_metric){CLENS_METRIC_CALLBACK, NULL, 0, p->metric_fn, p->metric_user};
        r->metric_names[2] = r->callback_name;
        r->n_metrics = 3;
    }
    if ((rc = clens_patcher_new(&r->pt, m, maxT, r->sites, r->n_sites, r->metrics, r->n_metrics, err))) goto done;
    if (r->method == CLENS_PATCH_ATP && (rc = tr_atp_open(&r->atp, clens_model_get_info(m)->path, maxT, 0, err))) goto done;
    r->width = 2 + (size_t)r->n_sites;
    r->vals = malloc(sizeof(double) * (size_t)r->n_metrics * r->width);
    if (!r->vals) { rc = clens_err(err, CLENS_E_NOMEM, "out of memory"); goto done; }

    clens_run_info *info = &r->info;
    for (size_t c = 0; c < r->n_pairs; c++) info->candidates += (long)(c % (size_t)r->shard_count) == r->shard_index;
    info->target = r->n_target;
    info->done = info->resumed_done = scan.n_done;
    info->kept = info->resumed_kept = scan.n_kept;
    info->max_tokens = maxT;
    info->max_tokens_from_memory = from_memory;
    info->n_sites = r->n_sites;
    info->finished = info->kept >= r->n_target || info->done >= info->candidates;
    r->next = (size_t)r->shard_index;
done:
    json_decref(layers_json);
    json_decref(settings);
    json_decref(doc);
    if (rc) clens_run_free(r);
    else *out = r;
    return rc;
}

/* 1 if every value the pair produced is finite (a NaN/Inf weight or
 * activation shows up here even when the forward pass does not report it). */
static int all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

int clens_run_next(clens_run *r, int *finished, clens_error *err)
{
    clens_run_info *info = &r->info;
    *finished = 0;
    while (r->next < r->n_pairs && r->done[r->next]) r->next += (size_t)r->shard_count;
    if (info->kept >= r->n_target || r->next >= r->n_pairs) {
        info->finished = *finished = 1;
        return CLENS_OK;
    }
    const size_t c = r->next;
    const clens_pair *pr = &r->pairs[c];
    const double t0 = clens_now();
    free(r->ids_c);
    free(r->ids_r);
    r->ids_c = r->ids_r = NULL;
    size_t nc = 0;
    const char *reason = NULL;
    int rc = clens_pair_token_check(r->tok, r->tmpl, r->pmode, pr, info->max_tokens, &reason, &r->ids_c, &r->ids_r,
                                    &nc, err);
    if (rc) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err ? err->msg : "");
        return clens_err(err, rc, "%s: pair %zu (%s): %s", r->pairs_path, c, pr->id, msg);
    }
    /* final_tokens: the check returns one length, the clean prompt's; with
     * length_mismatch the corrupted prompt is tokenized again for its own. */
    size_t nr = nc;
    if (reason && strcmp(reason, "length_mismatch") == 0) {
        free(r->ids_r);
        r->ids_r = NULL;
        if ((rc = clens_prompt_ids(r->tok, r->tmpl, r->pmode, pr->problem, pr->corrupted_prefix, &r->ids_r, &nr, err)))
            return rc;
    }
    int P = 0, ran_model = 0;
    if (!reason) {
        /* The forward pass stops at the first NaN/Inf (CLENS_E_NONFINITE):
         * that pair is dropped as non_finite, the run goes on. AtP runs the
         * fast path for the clean and corrupted values, then its own sites. */
        clens_patch_method pm = r->method == CLENS_PATCH_ATP ? CLENS_PATCH_FAST : r->method;
        rc = clens_patch_begin(r->pt, r->ids_c, r->ids_r, (int)nc, pm, r->vals, &P, err);
        if (rc == CLENS_E_NONFINITE) {
            reason = "non_finite";
        } else if (rc) {
            return rc;
        } else {
            ran_model = 1;
            const double *lm = r->vals + r->width; /* logit_mean: clean, corr */
            if (!all_finite(r->vals, 2) || !all_finite(lm, 2) ||
                (r->n_metrics > 2 && !all_finite(r->vals + 2 * r->width, 2)))
                reason = "non_finite";
            else reason = clens_filter_decide(r->filter, r->min_diff, lm[0], lm[1]);
        }
        if (!reason) {
            if (r->atp) rc = atp_fill_sites(r->atp, r->sites, r->n_sites, r->metrics, 2, r->ids_c, r->ids_r, (int)nc,
                                            r->vals, r->width, err);
            else rc = clens_patch_sites(r->pt, r->vals, err);
            if (rc && rc != CLENS_E_NONFINITE) return rc;
            if (rc || !all_finite(r->vals, (size_t)r->n_metrics * r->width)) reason = "non_finite";
        }
        if (err) err->code = CLENS_OK;
    }
    const double secs = clens_now() - t0;
    run_record rec = {(long)c, pr->id, reason, (long)nc, P, ran_model, r->vals, r->width,
                      r->sites, r->n_sites, r->types, r->n_types, secs, r->tok, r->ids_c, r->ids_r, nc, nr,
                      r->metric_names, r->n_metrics};
    char *line = run_record_line(&rec);
    if (!line) return clens_err(err, CLENS_E_NOMEM, "out of memory");
    rc = run_record_append(r->records_path, line, err);
    free(line);
    if (rc) return rc;
    r->done[c] = 1;
    r->next += (size_t)r->shard_count;
    info->done++;
    info->kept += reason == NULL;
    info->ran++;
    info->seconds += secs;
    snprintf(r->last_id, sizeof r->last_id, "%s", pr->id ? pr->id : "");
    info->last_id = r->last_id;
    info->last_reason = reason;
    return CLENS_OK;
}

int clens_run_execute(clens_run *r, void (*progress)(void *user, const clens_run_info *info), void *user,
                      clens_error *err)
{
    for (;;) {
        int finished;
        int rc = clens_run_next(r, &finished, err);
        if (rc) return rc;
        if (finished) return CLENS_OK;
        if (progress) progress(user, &r->info);
    }
}

int clens_run_finish(clens_run *r, char **results_md, clens_error *err)
{
    return clens_results_write(r->dir, results_md, err);
}
