/*
 * cmd_patch.c: `clens patch MODEL --pairs pairs.jsonl --out DIR`: the study's
 * final-token activation-patching sweep, resumable and shardable. Output
 * files and their schema: docs/patch-output.md.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"
#include "interp/prompts.h"

static void usage(FILE *f)
{
    fprintf(f,
        "usage: clens patch MODEL --pairs pairs.jsonl --out DIR [options]\n\n"
        "For each (clean, corrupted) pair: run the corrupted prompt, replace the final token's activation\n"
        "at each site with the clean run's, and record how much of the clean-vs-corrupted preference for\n"
        "correction tokens comes back. Resumable (rerun the same command), shardable, crash-safe.\n"
        "Writes DIR/settings.json, DIR/records.jsonl (one line per pair), DIR/results.json, DIR/results.md.\n\n"
        "  --pairs F          pairs.jsonl from `clens pairs` (candidates in file order)\n"
        "  --out DIR          output folder (created; a rerun with other settings is refused)\n"
        "  --sites LIST       site types, first = primary: resid_pre (default), resid_post, attn_out,\n"
        "                     mlp_out, z (every head)\n"
        "  --layers LIST      layers to patch, e.g. 0,2,4 (default: all; resid_pre also has n_layers,\n"
        "                     after the last block)\n"
        "  --metric M         logprob_mass (default: log total probability of the correction tokens)\n"
        "                     | logit_mean (the seed's: mean raw logit of the first sub-tokens)\n"
        "  --tokens LIST      correction strings (default Wait,But,Actually,Hmm; logprob_mass also\n"
        "                     uses ' '+word and lower-case, single-token forms only)\n"
        "  --method M         fast (default: batched one-token rows on the corrupted KV cache)\n"
        "                     | rerun (one full forward per site, as peers do)\n"
        "  --prompt P         chat (default: the model's chat template, the problem as the user turn,\n"
        "                     the prefix continuing the assistant's turn) | raw (the seed's plain prompt)\n"
        "  --filter F         default (keep if m_corr - m_clean >= min-diff in logit_mean) | seed (|D| >= min-diff)\n"
        "  --min-diff X       threshold (default 3; 0 keeps every pair with a non-zero difference)\n"
        "  --n N              target kept pairs (default 50)\n"
        "  --shard i/n        process candidates with index mod n == i (merge with `clens merge`)\n"
        "  --bootstrap B      bootstrap resamples for the 95%% CI (default 2000)\n"
        "  --seed S           bootstrap seed (default 0)\n"
        "  --max-tokens T     longest prompt accepted (default min(4096, max_position_embeddings))\n"
        "  --matmul MODE      default | portable | bf16      --threads N\n"
        "  --quiet            no progress and no table on stdout\n\n"
        "example: clens patch ~/models/DeepSeek-R1-Distill-Qwen-7B --pairs pairs.jsonl --out runs/ds --n 50\n"
        "exit codes: 0 done (or resumed to done), 1 error, 2 usage\n");
}

static const char *default_words[] = {"Wait", "But", "Actually", "Hmm"};
static const char *seed_words[] = {"Wait", "But", "Actually", "Hmm", "wait", "but", "actually"};

typedef struct {
    int32_t *ids;
    json_t *strs;
    int n;
} token_set;

static int add_token(token_set *ts, int32_t id, const char *s)
{
    for (int i = 0; i < ts->n; i++)
        if (ts->ids[i] == id) return 0;
    int32_t *nv = realloc(ts->ids, sizeof(int32_t) * (ts->n + 1));
    if (!nv) return -1;
    ts->ids = nv;
    ts->ids[ts->n++] = id;
    json_array_append_new(ts->strs, json_string(s));
    return 0;
}

/* logprob_mass: single-token forms of each word, with and without a leading
 * space, as given and lower-cased; logit_mean (the seed's): the first
 * sub-token of each string, no leading space. */
static int build_token_sets(const clens_tokenizer *tok, const char *const *words, int nw, int seed_mode_words,
                            token_set *mass, token_set *mean, clens_error *err)
{
    mass->strs = json_array();
    mean->strs = json_array();
    for (int w = 0; w < nw; w++) {
        char forms[4][256];
        snprintf(forms[0], 256, "%.200s", words[w]);
        snprintf(forms[1], 256, " %.200s", words[w]);
        snprintf(forms[2], 256, "%.200s", words[w]);
        for (char *c = forms[2]; *c; c++) if (*c >= 'A' && *c <= 'Z') *c += 32;
        snprintf(forms[3], 256, " %.200s", forms[2]);
        for (int f = 0; f < 4; f++) {
            int32_t *ids = NULL;
            size_t n = 0;
            if (clens_prompt_tokenize(tok, forms[f], 0, &ids, &n, err)) return -1;
            if (n == 1 && add_token(mass, ids[0], forms[f])) { free(ids); return -1; }
            free(ids);
        }
    }
    const char *const *mw = seed_mode_words ? seed_words : words;
    int nm = seed_mode_words ? 7 : nw;
    for (int w = 0; w < nm; w++) {
        int32_t *ids = NULL;
        size_t n = 0;
        if (clens_prompt_tokenize(tok, mw[w], 0, &ids, &n, err)) return -1;
        if (n > 0 && add_token(mean, ids[0], mw[w])) { free(ids); return -1; }
        free(ids);
    }
    if (mass->n == 0) return clens_err(err, CLENS_E_ARG, "no correction string is a single token in this vocabulary"), -1;
    return 0;
}

static json_t *ids_json(const token_set *ts)
{
    json_t *a = json_array();
    for (int i = 0; i < ts->n; i++) json_array_append_new(a, json_integer(ts->ids[i]));
    return a;
}

static int parse_layers(const char *s, int **out, int *n)
{
    int32_t *v;
    if (cli_parse_ids(s, &v, n)) return -1;
    *out = malloc(sizeof(int) * *n);
    if (!*out) { free(v); return -1; }
    for (int i = 0; i < *n; i++) (*out)[i] = v[i];
    free(v);
    return 0;
}


static void host_cpu(char *buf, size_t n)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    snprintf(buf, n, "unknown");
    if (!f) return;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            char *c = strchr(line, ':');
            if (c) { snprintf(buf, n, "%s", c + 2); buf[strcspn(buf, "\n")] = 0; }
            break;
        }
    fclose(f);
}

typedef struct {
    const char *cmd;
    int quiet, tty;
    double t0;
} progress;

static void show_progress(progress *pg, long done, long kept, long target, long todo, double per_pair)
{
    if (pg->quiet) return;
    double eta = per_pair * (double)(target - kept > 0 ? (target - kept) : 0) * (kept > 0 ? (double)done / kept : 1.0);
    if (todo < done) eta = 0;
    fprintf(stderr, "%spatch: %ld/%ld kept, %ld/%ld candidates done, %.1f s/pair, ETA %.0fs%s", pg->tty ? "\r" : "",
            kept, target, done, todo, per_pair, eta, pg->tty ? "   " : "\n");
    fflush(stderr);
}

int cmd_patch(int argc, char **argv)
{
    const char *model = NULL, *pairs_path = NULL, *out = NULL, *sites_s = "resid_pre", *layers_s = NULL;
    const char *metric_s = "logprob_mass", *tokens_s = NULL, *method_s = "fast", *prompt_s = "chat";
    const char *filter_s = "default", *shard_s = NULL, *mm = NULL;
    double min_diff = 3.0;
    long n_target = 50, boot = 2000, seed = 0, threads = 0, max_tokens = 0;
    int quiet = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (cli_is_help(a)) { usage(stdout); return 0; }
        if (strcmp(a, "--quiet") == 0) { quiet = 1; continue; }
        if (a[0] != '-') {
            if (model) return cli_usage_error("patch", "unexpected argument '%s'", a);
            model = a;
            continue;
        }
        if (!v) return cli_usage_error("patch", "%s needs a value", a);
        int bad = 0;
        if (strcmp(a, "--pairs") == 0) pairs_path = v;
        else if (strcmp(a, "--out") == 0) out = v;
        else if (strcmp(a, "--sites") == 0) sites_s = v;
        else if (strcmp(a, "--layers") == 0) layers_s = v;
        else if (strcmp(a, "--metric") == 0) metric_s = v;
        else if (strcmp(a, "--tokens") == 0) tokens_s = v;
        else if (strcmp(a, "--method") == 0) method_s = v;
        else if (strcmp(a, "--prompt") == 0) prompt_s = v;
        else if (strcmp(a, "--filter") == 0) filter_s = v;
        else if (strcmp(a, "--shard") == 0) shard_s = v;
        else if (strcmp(a, "--matmul") == 0) mm = v;
        else if (strcmp(a, "--min-diff") == 0) bad = cli_parse_float("patch", a, v, &min_diff);
        else if (strcmp(a, "--n") == 0) bad = cli_parse_int("patch", a, v, 1, 1 << 30, &n_target);
        else if (strcmp(a, "--bootstrap") == 0) bad = cli_parse_int("patch", a, v, 1, 1 << 24, &boot);
        else if (strcmp(a, "--seed") == 0) bad = cli_parse_int("patch", a, v, 0, 0x7fffffffffffffffL, &seed);
        else if (strcmp(a, "--threads") == 0) bad = cli_parse_int("patch", a, v, 0, 1024, &threads);
        else if (strcmp(a, "--max-tokens") == 0) bad = cli_parse_int("patch", a, v, 2, 1 << 20, &max_tokens);
        else return cli_usage_error("patch", "unknown option '%s'", a);
        if (bad) return bad;
        i++;
    }
    if (!model || !pairs_path || !out) return cli_usage_error("patch", "MODEL, --pairs and --out are required");
    int metric_primary = strcmp(metric_s, "logprob_mass") == 0 ? 0 : strcmp(metric_s, "logit_mean") == 0 ? 1 : -1;
    if (metric_primary < 0) return cli_usage_error("patch", "--metric expects logprob_mass or logit_mean");
    clens_patch_method method = strcmp(method_s, "fast") == 0 ? CLENS_PATCH_FAST : CLENS_PATCH_RERUN;
    if (strcmp(method_s, "fast") && strcmp(method_s, "rerun")) return cli_usage_error("patch", "--method expects fast or rerun");
    clens_prompt_mode pmode;
    if (clens_prompt_mode_parse(prompt_s, &pmode)) return cli_usage_error("patch", "--prompt expects raw or chat");
    int seed_filter = strcmp(filter_s, "seed") == 0;
    if (!seed_filter && strcmp(filter_s, "default")) return cli_usage_error("patch", "--filter expects default or seed");
    if (min_diff < 0) return cli_usage_error("patch", "--min-diff must be >= 0");
    long shard_i = 0, shard_n = 1;
    if (shard_s && (sscanf(shard_s, "%ld/%ld", &shard_i, &shard_n) != 2 || shard_n < 1 || shard_i < 0 || shard_i >= shard_n))
        return cli_usage_error("patch", "--shard expects i/n with 0 <= i < n, got '%s'", shard_s);

    /* Site types. */
    clens_site_type types[CLENS_SITE_COUNT];
    int n_types = 0;
    {
        char *list = strdup(sites_s);
        for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
            clens_site_type st;
            if (clens_site_type_parse(t, &st)) {
                int r = cli_usage_error("patch", "unknown site type '%s'", t);
                free(list);
                return r;
            }
            int dup = 0;
            for (int k = 0; k < n_types; k++) dup |= types[k] == st;
            if (!dup) types[n_types++] = st;
        }
        free(list);
        if (!n_types) return cli_usage_error("patch", "--sites is empty");
    }
    int *layer_list = NULL, n_layer_list = 0;
    if (layers_s && parse_layers(layers_s, &layer_list, &n_layer_list))
        return cli_usage_error("patch", "--layers expects comma-separated layer numbers");

    int rc = 0;
    clens_error err = {0};
    clens_model *m = NULL;
    clens_tokenizer *tok = NULL;
    clens_chat_template *tmpl = NULL;
    clens_pair *pairs = NULL;
    size_t n_pairs = 0;
    clens_patcher *pt = NULL;
    clens_site *sites = NULL;
    token_set mass = {0}, mean = {0};
    json_t *settings = NULL, *doc = NULL, *done_set = NULL;
    char *tokens_copy = NULL;
    const char **words = NULL;
    double *vals = NULL;
    int32_t *ids_c = NULL, *ids_r = NULL;
    char *md = NULL;

    if ((rc = cli_open_model("patch", model, mm, (int)threads, &m))) goto end;
    const clens_model_info *in = clens_model_get_info(m);
    if (clens_tokenizer_open(&tok, in->path, &err)) { rc = cli_fail("patch", &err); goto end; }
    if (pmode == CLENS_PROMPT_CHAT && clens_chat_template_open(&tmpl, in->path, &err)) {
        rc = cli_errorf("patch", 1, "--prompt chat: %s", err.msg);
        goto end;
    }
    if (clens_pairs_read_jsonl(pairs_path, &pairs, &n_pairs, &err)) { rc = cli_fail("patch", &err); goto end; }

    /* Correction tokens. */
    int nw = 4, seed_words_mode = 1;
    words = malloc(sizeof *words * 64);
    if (!words) { rc = cli_errorf("patch", 1, "out of memory"); goto end; }
    if (tokens_s) {
        tokens_copy = strdup(tokens_s);
        nw = 0;
        for (char *t = strtok(tokens_copy, ","); t && nw < 64; t = strtok(NULL, ",")) words[nw++] = t;
        seed_words_mode = 0;
        if (!nw) { rc = cli_usage_error("patch", "--tokens is empty"); goto end; }
    } else {
        for (int i = 0; i < 4; i++) words[i] = default_words[i];
    }
    if (build_token_sets(tok, words, nw, seed_words_mode, &mass, &mean, &err)) { rc = cli_fail("patch", &err); goto end; }

    /* Sites. */
    int L = in->n_layers, H = in->n_heads, n_sites = 0;
    sites = malloc(sizeof *sites * (size_t)(n_types * (L + 1) * (H + 1)));
    json_t *layers_json = json_object();
    for (int k = 0; k < n_types; k++) {
        int maxl = types[k] == CLENS_SITE_RESID_PRE ? L : L - 1;
        json_t *lj = json_array();
        for (int l = 0; l <= maxl; l++) {
            int want = !layer_list;
            for (int q = 0; q < n_layer_list; q++) want |= layer_list[q] == l;
            if (!want) continue;
            json_array_append_new(lj, json_integer(l));
            if (types[k] == CLENS_SITE_Z)
                for (int h = 0; h < H; h++) sites[n_sites++] = (clens_site){types[k], l, h};
            else sites[n_sites++] = (clens_site){types[k], l, -1};
        }
        for (int q = 0; q < n_layer_list; q++)
            if (layer_list[q] < 0 || layer_list[q] > L) {
                json_decref(lj);
                json_decref(layers_json);
                rc = cli_usage_error("patch", "--layers: %d is outside 0..%d", layer_list[q], L);
                goto end;
            }
        json_object_set_new(layers_json, clens_site_type_name(types[k]), lj);
    }
    if (!n_sites) { json_decref(layers_json); rc = cli_usage_error("patch", "no site selected"); goto end; }

    /* Settings and provenance. */
    char pairs_sha[65];
    if (clens_sha256_file_hex(pairs_path, pairs_sha, &err)) { json_decref(layers_json); rc = cli_fail("patch", &err); goto end; }
    settings = json_object();
    json_object_set_new(settings, "model", json_string(in->path));
    json_object_set_new(settings, "method", json_string(method_s));
    json_object_set_new(settings, "prompt", json_string(prompt_s));
    json_object_set_new(settings, "metric", json_string(metric_s));
    json_t *metrics_j = json_object(), *mj;
    mj = json_object();
    json_object_set_new(mj, "ids", ids_json(&mass));
    json_object_set(mj, "tokens", mass.strs);
    json_object_set_new(metrics_j, "logprob_mass", mj);
    mj = json_object();
    json_object_set_new(mj, "ids", ids_json(&mean));
    json_object_set(mj, "tokens", mean.strs);
    json_object_set_new(metrics_j, "logit_mean", mj);
    json_object_set_new(settings, "metrics", metrics_j);
    json_t *types_j = json_array();
    for (int k = 0; k < n_types; k++) json_array_append_new(types_j, json_string(clens_site_type_name(types[k])));
    json_object_set_new(settings, "site_types", types_j);
    json_object_set_new(settings, "layers", layers_json);
    json_object_set_new(settings, "n_heads", json_integer(H));
    json_object_set_new(settings, "filter", json_string(filter_s));
    json_object_set_new(settings, "min_diff", json_real(min_diff));
    json_object_set_new(settings, "n", json_integer(n_target));
    json_t *bj = json_object();
    json_object_set_new(bj, "resamples", json_integer(boot));
    json_object_set_new(bj, "seed", json_integer(seed));
    json_object_set_new(settings, "bootstrap", bj);
    json_object_set_new(settings, "pairs_file", json_string(pairs_path));
    json_object_set_new(settings, "pairs_sha256", json_string(pairs_sha));
    json_object_set_new(settings, "matmul", json_string(mm ? mm : "default"));
    char *canon = json_dumps(settings, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    char settings_hash[65];
    clens_sha256_hex(canon, strlen(canon), settings_hash);
    free(canon);

    doc = json_object();
    json_object_set_new(doc, "clens_version", json_string(CLENS_VERSION));
    json_object_set_new(doc, "settings_hash", json_string(settings_hash));
    json_object_set(doc, "settings", settings);
    json_t *sh = json_object();
    json_object_set_new(sh, "index", json_integer(shard_i));
    json_object_set_new(sh, "count", json_integer(shard_n));
    json_object_set_new(doc, "shard", sh);
    json_t *prov = json_object();
    char config_sha[65], weights_sha[65];
    clens_model_fingerprint(m, config_sha, weights_sha);
    json_object_set_new(prov, "config_sha256", config_sha[0] ? json_string(config_sha) : json_null());
    json_object_set_new(prov, "weights_index_sha256", weights_sha[0] ? json_string(weights_sha) : json_null());
    json_object_set_new(prov, "tokenizer_sha256", json_string(clens_tokenizer_sha256(tok)));
    json_object_set_new(prov, "template_sha256", tmpl ? json_string(clens_chat_template_sha256(tmpl)) : json_null());
    json_object_set_new(prov, "dtype", json_string(in->dtype == CLENS_DTYPE_F32 ? "float32"
                                                   : in->dtype == CLENS_DTYPE_BF16 ? "bfloat16" : "float16"));
    json_object_set_new(prov, "kernel", json_string(clens_model_kernel_name(m)));
    json_object_set_new(prov, "arch", json_string(in->arch_name));
    json_object_set_new(prov, "n_layers", json_integer(L));
    char cpu[256];
    host_cpu(cpu, sizeof cpu);
    json_object_set_new(prov, "host_cpu", json_string(cpu));
    json_object_set_new(doc, "provenance", prov);

    /* The output folder: new, or the same study (resume). */
    char path[4096], rpath[4096];
    if (clens_mkdir_p(out, &err)) { rc = cli_fail("patch", &err); goto end; }
    snprintf(path, sizeof path, "%s/settings.json", out);
    snprintf(rpath, sizeof rpath, "%s/records.jsonl", out);
    json_error_t je;
    json_t *old = json_load_file(path, 0, &je);
    if (old) {
        const char *oh = json_string_value(json_object_get(old, "settings_hash"));
        json_t *os = json_object_get(old, "shard");
        int same = oh && strcmp(oh, settings_hash) == 0 &&
                   json_integer_value(json_object_get(os, "index")) == shard_i &&
                   json_integer_value(json_object_get(os, "count")) == shard_n;
        json_decref(old);
        if (!same) {
            rc = cli_errorf("patch", 1, "%s holds a run with different settings (or shard); refusing to mix them: "
                            "use another --out", out);
            goto end;
        }
    } else if (access(path, F_OK) == 0) {
        rc = cli_errorf("patch", 1, "%s:%d: %s", path, je.line, je.text);
        goto end;
    } else {
        char *txt = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        int w = clens_write_file_atomic(path, txt, strlen(txt), &err);
        free(txt);
        if (w) { rc = cli_fail("patch", &err); goto end; }
    }

    /* Resume: candidates already recorded. A torn last line (killed mid-write
     * cannot happen with one write(), but a foreign edit can) is an error. */
    done_set = json_object();
    long kept = 0, done = 0;
    {
        FILE *f = fopen(rpath, "r");
        char *line = NULL;
        size_t cap = 0;
        long ln = 0;
        while (f && getline(&line, &cap, f) > 0) {
            ln++;
            if (line[0] == '\n') continue;
            json_t *r = json_loads(line, 0, &je);
            json_t *c = r ? json_object_get(r, "candidate") : NULL;
            if (!json_is_integer(c)) {
                json_decref(r);
                free(line);
                fclose(f);
                rc = cli_errorf("patch", 1, "%s:%ld: not a record line", rpath, ln);
                goto end;
            }
            char key[32];
            snprintf(key, sizeof key, "%lld", (long long)json_integer_value(c));
            json_object_set_new(done_set, key, json_true());
            const char *st = json_string_value(json_object_get(r, "status"));
            kept += st && strcmp(st, "kept") == 0;
            done++;
            json_decref(r);
        }
        free(line);
        if (f) fclose(f);
    }

    /* The patcher. */
    /* Memory plan (R15): three KV caches (prefix, clean, corrupted) of maxT tokens. */
    int64_t fit = clens_model_kv_budget(m) / (3 * in->kv_bytes_per_token + 1);
    int maxT = max_tokens ? (int)max_tokens : (in->max_pos < 4096 ? in->max_pos : 4096);
    if (!max_tokens && fit < maxT) maxT = fit > 64 ? (int)fit : 64;
    if (!quiet)
        fprintf(stderr, "patch: memory plan: weights %.2f GiB, KV %.2f MiB/token x 3 caches x %d tokens = %.2f GiB, "
                        "%d sites per batch\n",
                in->weight_bytes / 1073741824.0, in->kv_bytes_per_token / 1048576.0, maxT,
                3.0 * maxT * in->kv_bytes_per_token / 1073741824.0, n_sites);
    clens_metric metrics[2] = {{CLENS_METRIC_LOGPROB_MASS, mass.ids, mass.n}, {CLENS_METRIC_LOGIT_MEAN, mean.ids, mean.n}};
    if (clens_patcher_new(&pt, m, maxT, sites, n_sites, metrics, 2, &err)) { rc = cli_fail("patch", &err); goto end; }
    size_t W = 2 + (size_t)n_sites;
    vals = malloc(sizeof(double) * 2 * W);
    if (!vals) { rc = cli_errorf("patch", 1, "out of memory"); goto end; }

    progress pg = {"patch", quiet, isatty(2), clens_now()};
    long todo = 0;
    for (size_t c = 0; c < n_pairs; c++) todo += (long)(c % (size_t)shard_n) == shard_i;
    double secs_sum = 0;
    long ran = 0;
    if (!quiet && done)
        fprintf(stderr, "patch: resuming %s: %ld pairs recorded, %ld kept\n", out, done, kept);
    for (size_t c = 0; c < n_pairs && kept < n_target; c++) {
        if ((long)(c % (size_t)shard_n) != shard_i) continue;
        char key[32];
        snprintf(key, sizeof key, "%zu", c);
        if (json_object_get(done_set, key)) continue;
        double t0 = clens_now();
        const clens_pair *pr = &pairs[c];
        size_t nc = 0;
        free(ids_c); free(ids_r);
        ids_c = ids_r = NULL;
        const char *reason = NULL;
        if (clens_pair_token_check(tok, tmpl, pmode, pr, maxT, &reason, &ids_c, &ids_r, &nc, &err)) {
            rc = cli_errorf("patch", 1, "%s: pair %zu (%s): %s", pairs_path, c, pr->id, err.msg);
            goto end;
        }
        int P = 0, ran_model = 0;
        if (!reason) {
            if (clens_patch_begin(pt, ids_c, ids_r, (int)nc, method, vals, &P, &err)) { rc = cli_fail("patch", &err); goto end; }
            ran_model = 1;
            double D = vals[W + 0] - vals[W + 1]; /* logit_mean: m_clean - m_corr */
            /* D = m_clean - m_corr in logit_mean, usually < 0 (the seed's sign).
             * --min-diff 0 keeps every pair with a non-zero difference. */
            if (D == 0) reason = "too_small";
            else if (min_diff == 0) reason = NULL;
            else if (seed_filter) reason = fabs(D) >= min_diff ? NULL : "too_small";
            else reason = -D >= min_diff ? NULL : D >= min_diff ? "wrong_sign" : "too_small";
            if (!reason && clens_patch_sites(pt, vals, &err)) { rc = cli_fail("patch", &err); goto end; }
        }
        double secs = clens_now() - t0;
        json_t *rec = json_object();
        json_object_set_new(rec, "candidate", json_integer((json_int_t)c));
        json_object_set_new(rec, "id", json_string(pr->id));
        json_object_set_new(rec, "status", json_string(reason ? "dropped" : "kept"));
        json_object_set_new(rec, "reason", reason ? json_string(reason) : json_null());
        json_object_set_new(rec, "n_tokens", json_integer((json_int_t)nc));
        json_object_set_new(rec, "shared_prefix", json_integer(P));
        if (ran_model) {
            json_t *mets = json_object();
            const char *mnames[2] = {"logprob_mass", "logit_mean"};
            for (int k = 0; k < 2; k++) {
                const double *o = vals + k * W;
                json_t *mo = json_object();
                json_object_set_new(mo, "clean", json_real(o[0]));
                json_object_set_new(mo, "corr", json_real(o[1]));
                if (!reason) {
                    json_t *pj = json_object();
                    int s = 0;
                    for (int t = 0; t < n_types; t++) {
                        json_t *arr = json_array();
                        for (; s < n_sites && sites[s].type == types[t];) {
                            if (types[t] == CLENS_SITE_Z) {
                                json_t *heads = json_array();
                                int l = sites[s].layer;
                                while (s < n_sites && sites[s].type == types[t] && sites[s].layer == l)
                                    json_array_append_new(heads, json_real(o[2 + s++]));
                                json_array_append_new(arr, heads);
                            } else {
                                json_array_append_new(arr, json_real(o[2 + s++]));
                            }
                        }
                        json_object_set_new(pj, clens_site_type_name(types[t]), arr);
                    }
                    json_object_set_new(mo, "patched", pj);
                }
                json_object_set_new(mets, mnames[k], mo);
            }
            json_object_set_new(rec, "metrics", mets);
        }
        json_object_set_new(rec, "seconds", json_real(round(secs * 1000) / 1000));
        char *line = json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
        json_decref(rec);
        int w = line ? clens_append_line_durable(rpath, line, &err) : clens_err(&err, CLENS_E_NOMEM, "out of memory");
        free(line);
        if (w) { rc = cli_fail("patch", &err); goto end; }
        json_object_set_new(done_set, key, json_true());
        done++;
        kept += reason == NULL;
        secs_sum += secs;
        ran++;
        show_progress(&pg, done, kept, n_target, todo, secs_sum / ran);
    }
    if (!quiet && pg.tty) fputc('\n', stderr);
    if (kept < n_target && !quiet)
        fprintf(stderr, "patch: candidates exhausted with %ld of %ld pairs kept\n", kept, n_target);
    if (clens_results_write(out, &md, &err)) { rc = cli_fail("patch", &err); goto end; }
    if (!quiet && md) fputs(md, stdout);
end:
    free(md);
    free(ids_c);
    free(ids_r);
    free(vals);
    free(words);
    free(tokens_copy);
    free(sites);
    free(layer_list);
    free(mass.ids);
    free(mean.ids);
    json_decref(mass.strs);
    json_decref(mean.strs);
    json_decref(settings);
    json_decref(doc);
    json_decref(done_set);
    clens_patcher_free(pt);
    clens_pairs_free(pairs, n_pairs);
    clens_chat_template_free(tmpl);
    clens_tokenizer_free(tok);
    clens_model_free(m);
    return rc;
}
